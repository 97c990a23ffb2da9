/* Logging: one line per message on stderr, in one of two formats (docs/operations.md, "Logs"):
 *   text: "2026-11-23T08:40:00.123Z level component: text key=value ..."
 *   json: {"time":"2026-11-23T08:40:00.123Z","level":"warn","component":"worker","pid":12,
 *          "msg":"text","key":"value",...}
 * Each line goes out in one write(2) of at most RC_LOG_LINE_MAX bytes, so lines of the forked
 * worker processes and of the ingress threads never interleave on a pipe or an O_APPEND file.
 * Setup and control paths log; hot paths count in metrics instead, and the few per-event lines
 * (events dropped or dead-lettered) go through a rate limit (rc_log_limit_t). */
#ifndef RC_CORE_LOG_H
#define RC_CORE_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    RC_LOG_ERROR = 0,
    RC_LOG_WARN = 1,
    RC_LOG_INFO = 2,
    RC_LOG_DEBUG = 3,
} rc_log_level_t;

typedef enum {
    RC_LOG_TEXT = 0,
    RC_LOG_JSON = 1,
} rc_log_format_t;

/* The longest line written, newline included (PIPE_BUF: one write to a pipe stays whole). A
 * longer line is cut; a JSON line is cut inside its "msg" or drops its last fields, and stays
 * one valid JSON object. */
#define RC_LOG_LINE_MAX 4096

/** Sets the most verbose level printed (default RC_LOG_INFO). Any thread. */
void rc_log_set_level(rc_log_level_t level);

/** Parses "error", "warn", "info" or "debug"; returns 0 and sets *out, or -EINVAL. */
int rc_log_parse_level(const char *s, rc_log_level_t *out);

/** Sets the line format (default RC_LOG_TEXT). Call before threads or workers start. */
void rc_log_set_format(rc_log_format_t format);

/** Parses "text" or "json"; returns 0 and sets *out, or -EINVAL. */
int rc_log_parse_format(const char *s, rc_log_format_t *out);

/** Returns 1 when messages of `level` are printed. Any thread. */
int rc_log_enabled(rc_log_level_t level);

/** A structured field of a line: a string (`str` not NULL) or an integer (`str` NULL). */
typedef struct {
    const char *key; /* [a-z_]+, not time, level, component, pid or msg */
    const char *str;
    int64_t num;
} rc_log_field_t;

#define RC_LOG_STR(k, v) ((rc_log_field_t){(k), (v) != NULL ? (v) : "", 0})
#define RC_LOG_INT(k, v) ((rc_log_field_t){(k), NULL, (int64_t)(v)})

/** Prints one line (a trailing newline is added) when `level` is enabled. Lines from several
 *  threads or processes never interleave. `component` names the part speaking ("serve",
 *  "ingress", "worker"). Any thread. */
void rc_log(rc_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** As rc_log, with `n` structured fields: JSON members in the json format, `key=value` pairs
 *  after the message in the text format (a value with a space, quote, '=' or control character
 *  is quoted, as logfmt does). Borrows `fields` for the call. Any thread. */
void rc_log_fields(rc_log_level_t level, const char *component, const rc_log_field_t *fields,
                   size_t n, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define rc_log_error(comp, ...) rc_log(RC_LOG_ERROR, comp, __VA_ARGS__)
#define rc_log_warn(comp, ...)  rc_log(RC_LOG_WARN, comp, __VA_ARGS__)
#define rc_log_info(comp, ...)  rc_log(RC_LOG_INFO, comp, __VA_ARGS__)
#define rc_log_debug(comp, ...) rc_log(RC_LOG_DEBUG, comp, __VA_ARGS__)

/* A rate limit for lines of one kind and one source (one trigger's dropped events): at most
 * `per_window` lines per window, the rest counted. Caller-owned, zero-initialised, one thread. */
typedef struct {
    int64_t since_ns;    /* start of the current window; 0: none yet */
    uint32_t lines;      /* lines let through in the current window */
    uint64_t suppressed; /* lines held back in the current window */
} rc_log_limit_t;

#define RC_LOG_LIMIT_WINDOW_NS 1000000000ll

/** Whether one more line may be written at `now_ns` (monotonic); counts it as suppressed when
 *  not. Before deciding it closes a window that has ended: *summary gets the number of lines
 *  that window held back (0: none), which the caller logs as one "suppressed" line. */
int rc_log_limit_take(rc_log_limit_t *l, int64_t now_ns, uint32_t per_window, uint64_t *summary);

/** Closes the current window when it has ended at `now_ns`, or at once with `force`; returns the
 *  lines it held back (to log as one summary line), 0 when none. */
uint64_t rc_log_limit_flush(rc_log_limit_t *l, int64_t now_ns, int force);

#endif
