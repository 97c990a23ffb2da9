#include "core/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = RC_LOG_INFO;
static _Atomic int log_format = RC_LOG_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void rc_log_set_level(rc_log_level_t level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

int rc_log_parse_level(const char *s, rc_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (rc_log_level_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

void rc_log_set_format(rc_log_format_t format)
{
    atomic_store_explicit(&log_format, (int)format, memory_order_relaxed);
}

int rc_log_parse_format(const char *s, rc_log_format_t *out)
{
    if (strcmp(s, "text") == 0)
        *out = RC_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = RC_LOG_JSON;
    else
        return -EINVAL;
    return 0;
}

int rc_log_enabled(rc_log_level_t level)
{
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* ---- building a line ------------------------------------------------------------------------ */

/* A bounded buffer: appends that do not fit whole are refused, so what is in it always ends at
 * a boundary the caller chose (an escape, a field). */
typedef struct {
    char *p;
    size_t len, cap;
} out_t;

static int put(out_t *o, const char *s, size_t n)
{
    if (n > o->cap - o->len)
        return -1;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    return 0;
}

static int puts_(out_t *o, const char *s)
{
    return put(o, s, strlen(s));
}

/* The length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one (a stray
 * continuation byte, an overlong form, a surrogate, past U+10FFFF, cut short). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (c < 0xC2 || c > 0xF4 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return len;
}

/* Appends `s` as the inside of a JSON string, as much of it as fits in whole escapes: a byte
 * that is not valid UTF-8 becomes U+FFFD, so the line is valid JSON whatever a client sent. */
static int put_json_chars(out_t *o, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        char esc[8];
        const char *w = esc;
        size_t wl = 1, step = 1;
        unsigned c = u[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            wl = 2;
        } else if (c == '\n' || c == '\t' || c == '\r') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
            wl = 2;
        } else if (c < 0x20 || c == 0x7F) {
            wl = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
        } else if (c < 0x80) {
            esc[0] = (char)c;
        } else if ((step = utf8_len(u + i, n - i)) != 0) {
            w = s + i;
            wl = step;
        } else {
            w = "\\ufffd";
            wl = 6;
            step = 1;
        }
        if (put(o, w, wl) != 0)
            return -1;
        i += step;
    }
    return 0;
}

static int put_json_string(out_t *o, const char *s)
{
    size_t mark = o->len;
    /* A value cut short is left out whole rather than ending mid-way without saying so. */
    if (puts_(o, "\"") != 0 || put_json_chars(o, s, strlen(s)) != 0 || puts_(o, "\"") != 0) {
        o->len = mark;
        return -1;
    }
    return 0;
}

/* A text value as logfmt writes it: bare when it is one plain word, else quoted. */
static int put_text_value(out_t *o, const char *s)
{
    int bare = s[0] != '\0';
    for (const char *c = s; *c != '\0' && bare; c++)
        bare = (unsigned char)*c > 0x20 && *c != '"' && *c != '=' && *c != 0x7F;
    if (bare)
        return puts_(o, s);
    if (puts_(o, "\"") != 0)
        return -1;
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        char esc[8];
        size_t wl = 1;
        if (*c == '"' || *c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*c;
            wl = 2;
        } else if (*c < 0x20 || *c == 0x7F) {
            wl = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *c);
        } else {
            esc[0] = (char)*c;
        }
        if (put(o, esc, wl) != 0)
            return -1;
    }
    return puts_(o, "\"");
}

/* The fields, each whole or not at all: ",\"k\":v" (json) or " k=v" (text). */
static void put_fields(out_t *o, int json, const rc_log_field_t *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t mark = o->len;
        char num[24];
        int rc = puts_(o, json ? ",\"" : " ");
        rc = rc != 0 ? rc : puts_(o, f[i].key);
        rc = rc != 0 ? rc : puts_(o, json ? "\":" : "=");
        if (rc == 0 && f[i].str == NULL) {
            snprintf(num, sizeof(num), "%" PRId64, f[i].num);
            rc = puts_(o, num);
        } else if (rc == 0) {
            rc = json ? put_json_string(o, f[i].str) : put_text_value(o, f[i].str);
        }
        if (rc != 0)
            o->len = mark;
    }
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(2, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere to report it: the log itself is what failed */
        p += w;
        n -= (size_t)w;
    }
}

static void vlog(rc_log_level_t level, const char *component, const rc_log_field_t *fields,
                 size_t n, const char *fmt, va_list ap)
{
    int json = atomic_load_explicit(&log_format, memory_order_relaxed) == RC_LOG_JSON;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t wl = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + wl, sizeof(when) - wl, ".%03ldZ", ts.tv_nsec / 1000000);

    char msg[RC_LOG_LINE_MAX];
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    /* The fields are laid out first, in their own buffer, so that a long message is what gets
     * cut, not the fields a reader filters on. Half a line at most goes to them. */
    char fbuf[RC_LOG_LINE_MAX / 2];
    out_t fo = {fbuf, 0, sizeof(fbuf)};
    put_fields(&fo, json, fields, n);

    char line[RC_LOG_LINE_MAX];
    /* Room is kept for the fields, the closing `"}` and the newline. */
    out_t o = {line, 0, sizeof(line) - fo.len - 3};
    if (json) {
        char head[160];
        snprintf(head, sizeof(head), "{\"time\":\"%s\",\"level\":\"%s\",\"component\":", when,
                 level_names[level]);
        puts_(&o, head);
        if (put_json_string(&o, component) != 0)
            puts_(&o, "\"\"");
        snprintf(head, sizeof(head), ",\"pid\":%d,\"msg\":\"", (int)getpid());
        puts_(&o, head);
        (void)put_json_chars(&o, msg, strlen(msg));
        o.cap = sizeof(line);
        puts_(&o, "\"");
        put(&o, fbuf, fo.len);
        puts_(&o, "}\n");
    } else {
        char head[160];
        snprintf(head, sizeof(head), "%s %s %s: ", when, level_names[level], component);
        puts_(&o, head);
        put(&o, msg, strlen(msg) < o.cap - o.len ? strlen(msg) : o.cap - o.len);
        o.cap = sizeof(line);
        put(&o, fbuf, fo.len);
        puts_(&o, "\n");
    }
    write_all(line, o.len);
}

void rc_log(rc_log_level_t level, const char *component, const char *fmt, ...)
{
    if (!rc_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, component, NULL, 0, fmt, ap);
    va_end(ap);
}

void rc_log_fields(rc_log_level_t level, const char *component, const rc_log_field_t *fields,
                   size_t n, const char *fmt, ...)
{
    if (!rc_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, component, fields, n, fmt, ap);
    va_end(ap);
}

/* ---- rate limit ----------------------------------------------------------------------------- */

uint64_t rc_log_limit_flush(rc_log_limit_t *l, int64_t now_ns, int force)
{
    if (l->since_ns == 0 || (!force && now_ns - l->since_ns < RC_LOG_LIMIT_WINDOW_NS))
        return 0;
    uint64_t held = l->suppressed;
    *l = (rc_log_limit_t){0};
    return held;
}

int rc_log_limit_take(rc_log_limit_t *l, int64_t now_ns, uint32_t per_window, uint64_t *summary)
{
    *summary = rc_log_limit_flush(l, now_ns, 0);
    if (l->since_ns == 0)
        l->since_ns = now_ns != 0 ? now_ns : 1;
    if (l->lines < per_window) {
        l->lines++;
        return 1;
    }
    l->suppressed++;
    return 0;
}
