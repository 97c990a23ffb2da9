/* Logging: one line per message on stderr, "2026-11-23T08:40:00.123Z level component: text".
 * Setup and control paths log; hot paths count in metrics instead. */
#ifndef RC_CORE_LOG_H
#define RC_CORE_LOG_H

typedef enum {
    RC_LOG_ERROR = 0,
    RC_LOG_WARN = 1,
    RC_LOG_INFO = 2,
    RC_LOG_DEBUG = 3,
} rc_log_level_t;

/** Sets the most verbose level printed (default RC_LOG_INFO). Any thread. */
void rc_log_set_level(rc_log_level_t level);

/** Parses "error", "warn", "info" or "debug"; returns 0 and sets *out, or -EINVAL. */
int rc_log_parse_level(const char *s, rc_log_level_t *out);

/** Returns 1 when messages of `level` are printed. Any thread. */
int rc_log_enabled(rc_log_level_t level);

/** Prints one line (a trailing newline is added) when `level` is enabled. Lines from several
 *  threads never interleave. `component` names the part speaking ("serve", "ingress"). */
void rc_log(rc_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define rc_log_error(comp, ...) rc_log(RC_LOG_ERROR, comp, __VA_ARGS__)
#define rc_log_warn(comp, ...)  rc_log(RC_LOG_WARN, comp, __VA_ARGS__)
#define rc_log_info(comp, ...)  rc_log(RC_LOG_INFO, comp, __VA_ARGS__)
#define rc_log_debug(comp, ...) rc_log(RC_LOG_DEBUG, comp, __VA_ARGS__)

#endif
