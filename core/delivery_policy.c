#include "core/delivery_policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/config_uri.h"
#include "core/duration.h"
#include "core/errors.h"

void rc_delivery_init(rc_delivery_t *d)
{
    memset(d, 0, sizeof(*d));
    d->retry = RC_DELIVERY_DEFAULT_RETRY;
    d->backoff_policy = RC_BACKOFF_EXPONENTIAL;
    d->format = RC_DELIVERY_FORMAT_BINARY;
    d->backoff_delay_ns = RC_DELIVERY_DEFAULT_BACKOFF_DELAY_NS;
    d->backoff_max_ns = RC_DELIVERY_DEFAULT_BACKOFF_MAX_NS;
    d->timeout_ns = RC_DELIVERY_DEFAULT_TIMEOUT_NS;
    d->retry_after_max_ns = RC_DELIVERY_DEFAULT_RETRY_AFTER_MAX_NS;
}

static bool value_is(const char *v, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(v, word, len) == 0;
}

static int set_error(char *err, size_t errlen, const char *field, const char *v, size_t len,
                     const char *why)
{
    if (err != NULL && errlen > 0) {
        /* A URI is quoted with its user information masked: the message goes to logs. */
        char copy[RC_DELIVERY_URI_MAX], masked[RC_DELIVERY_URI_MAX];
        if (strcmp(field, "deadLetterSink.uri") == 0) {
            size_t n = len < sizeof(copy) - 1 ? len : sizeof(copy) - 1;
            memcpy(copy, v, n);
            copy[n] = '\0';
            v = rc_config_uri_redact(copy, masked, sizeof(masked));
            len = strlen(v) + (len - n); /* still "..." when the value was cut */
        }
        int shown = len > 64 ? 64 : (int)len;
        snprintf(err, errlen, "spec.delivery.%s: \"%.*s%s\": %s", field, shown, v,
                 len > 64 ? "..." : "", why);
    }
    return RC_ECONFIG;
}

static int parse_duration_field(const char *field, const char *v, size_t len, bool allow_zero,
                                int64_t *out, char *err, size_t errlen)
{
    char why[256];
    int64_t ns;
    if (rc_duration_parse(v, len, &ns, why, sizeof(why)) != 0) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "spec.delivery.%s: %s", field, why);
        return RC_ECONFIG;
    }
    if (!allow_zero && ns == 0)
        return set_error(err, errlen, field, v, len, "must be greater than zero");
    *out = ns;
    return 0;
}

int rc_delivery_set(rc_delivery_t *d, const char *field, const char *value, size_t value_len,
                    char *err, size_t errlen)
{
    const char *v = value != NULL ? value : "";
    size_t len = value != NULL ? value_len : 0;

    if (strcmp(field, "retry") == 0) {
        uint64_t n = 0;
        if (len == 0)
            return set_error(err, errlen, field, v, len, "must be a non-negative integer");
        for (size_t i = 0; i < len; i++) {
            if (v[i] < '0' || v[i] > '9')
                return set_error(err, errlen, field, v, len, "must be a non-negative integer");
            n = n * 10 + (uint64_t)(v[i] - '0');
            if (n > INT32_MAX)
                return set_error(err, errlen, field, v, len, "too large (at most 2147483647)");
        }
        d->retry = (uint32_t)n;
        d->set |= RC_DELIVERY_HAS_RETRY;
        return 0;
    }
    if (strcmp(field, "backoffPolicy") == 0) {
        if (value_is(v, len, "exponential"))
            d->backoff_policy = RC_BACKOFF_EXPONENTIAL;
        else if (value_is(v, len, "linear"))
            d->backoff_policy = RC_BACKOFF_LINEAR;
        else
            return set_error(err, errlen, field, v, len, "must be \"exponential\" or \"linear\"");
        d->set |= RC_DELIVERY_HAS_BACKOFF_POLICY;
        return 0;
    }
    if (strcmp(field, "format") == 0) {
        if (value_is(v, len, "binary"))
            d->format = RC_DELIVERY_FORMAT_BINARY;
        else if (value_is(v, len, "json"))
            d->format = RC_DELIVERY_FORMAT_JSON;
        else
            return set_error(err, errlen, field, v, len, "must be \"binary\" or \"json\"");
        d->set |= RC_DELIVERY_HAS_FORMAT;
        return 0;
    }
    if (strcmp(field, "deadLetterSink.uri") == 0) {
        if (len == 0)
            return set_error(err, errlen, field, v, len, "must not be empty");
        if (len >= RC_DELIVERY_URI_MAX)
            return set_error(err, errlen, field, v, len, "longer than 1023 characters");
        if (memchr(v, '\0', len) != NULL)
            return set_error(err, errlen, field, v, len, "contains a NUL byte");
        /* The grammar the HTTP client sends with (core/config_uri.h): a sink it could not
         * reach is refused here, at load, rather than at the first dead letter. */
        char uri[RC_DELIVERY_URI_MAX], why[256];
        rc_config_uri_t parts;
        memcpy(uri, v, len);
        uri[len] = '\0';
        if (rc_config_uri_parse(uri, &parts, why, sizeof(why)) != 0)
            return set_error(err, errlen, field, v, len, why);
        memcpy(d->dead_letter_uri, v, len);
        d->dead_letter_uri[len] = '\0';
        d->set |= RC_DELIVERY_HAS_DEAD_LETTER;
        return 0;
    }

    struct {
        const char *name;
        bool allow_zero;
        uint32_t bit;
        int64_t *dst;
    } durations[] = {
        {"backoffDelay", true, RC_DELIVERY_HAS_BACKOFF_DELAY, &d->backoff_delay_ns},
        {"backoffMax", false, RC_DELIVERY_HAS_BACKOFF_MAX, &d->backoff_max_ns},
        {"timeout", false, RC_DELIVERY_HAS_TIMEOUT, &d->timeout_ns},
        {"retryAfterMax", true, RC_DELIVERY_HAS_RETRY_AFTER_MAX, &d->retry_after_max_ns},
    };
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        if (strcmp(field, durations[i].name) != 0)
            continue;
        int rc = parse_duration_field(field, v, len, durations[i].allow_zero, durations[i].dst, err,
                                      errlen);
        if (rc == 0)
            d->set |= durations[i].bit;
        return rc;
    }
    if (err != NULL && errlen > 0)
        snprintf(err, errlen,
                 "spec.delivery.%s: unknown field (known: retry, backoffPolicy, backoffDelay, "
                 "backoffMax, timeout, retryAfterMax, deadLetterSink, format)",
                 field);
    return RC_ECONFIG;
}

int rc_delivery_from_config(const rc_config_delivery_t *cfg, rc_delivery_t *out, char *err,
                            size_t errlen)
{
    rc_delivery_t d;
    rc_delivery_init(&d);
    if (cfg->retry >= 0) {
        char num[24];
        int n = snprintf(num, sizeof(num), "%lld", (long long)cfg->retry);
        if (rc_delivery_set(&d, "retry", num, (size_t)n, err, errlen) != 0)
            return RC_ECONFIG;
    }
    const struct {
        const char *field;
        const char *value;
    } fields[] = {
        {"backoffPolicy", cfg->backoff_policy},
        {"backoffDelay", cfg->backoff_delay},
        {"backoffMax", cfg->backoff_max},
        {"timeout", cfg->timeout},
        {"retryAfterMax", cfg->retry_after_max},
        {"deadLetterSink.uri", cfg->dead_letter_uri},
        {"format", cfg->format},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (fields[i].value != NULL && rc_delivery_set(&d, fields[i].field, fields[i].value,
                                                       strlen(fields[i].value), err, errlen) != 0)
            return RC_ECONFIG;
    }
    *out = d;
    return 0;
}

void rc_delivery_effective(const rc_delivery_t *trigger, const rc_delivery_t *broker,
                           rc_delivery_t *out)
{
    if (trigger != NULL && trigger->set != 0)
        *out = *trigger;
    else if (broker != NULL && broker->set != 0)
        *out = *broker;
    else
        rc_delivery_init(out);
}

rc_delivery_class_t rc_delivery_classify(int result)
{
    if (result < 0)
        return RC_DELIVERY_RETRY;
    if (result >= 200 && result <= 299)
        return RC_DELIVERY_SUCCESS;
    if ((result >= 500 && result <= 599) || result == 404 || result == 408 || result == 409 ||
        result == 429)
        return RC_DELIVERY_RETRY;
    return RC_DELIVERY_FAIL;
}

bool rc_delivery_may_retry(const rc_delivery_t *d, uint32_t retries_done)
{
    return retries_done < d->retry;
}

int64_t rc_delivery_backoff_ns(const rc_delivery_t *d, uint32_t i)
{
    int64_t delay = d->backoff_delay_ns > 0 ? d->backoff_delay_ns : 0;
    int64_t cap = d->backoff_max_ns > 0 ? d->backoff_max_ns : INT64_MAX;
    int64_t wait;
    if (d->backoff_policy == RC_BACKOFF_LINEAR) {
        if (__builtin_mul_overflow(delay, (int64_t)i + 1, &wait))
            wait = INT64_MAX;
    } else if (delay == 0) {
        wait = 0;
    } else if (i >= 63 || delay > (INT64_MAX >> i)) {
        wait = INT64_MAX;
    } else {
        wait = delay << i;
    }
    return wait < cap ? wait : cap;
}

int64_t rc_delivery_wait_ns(const rc_delivery_t *d, uint32_t i, int result, int64_t retry_after_ns)
{
    int64_t wait = rc_delivery_backoff_ns(d, i);
    if ((result == 429 || result == 503) && retry_after_ns >= 0) {
        int64_t honoured =
            retry_after_ns < d->retry_after_max_ns ? retry_after_ns : d->retry_after_max_ns;
        if (honoured > wait)
            wait = honoured;
    }
    return wait;
}

/* --- Retry-After ------------------------------------------------------------------------- */

typedef struct {
    const char *p;
    const char *end;
} cursor_t;

static bool cur_lit(cursor_t *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* Reads exactly `min`..`max` digits. */
static bool cur_num(cursor_t *c, int min, int max, int *out)
{
    int n = 0, v = 0;
    while (c->p < c->end && n < max && *c->p >= '0' && *c->p <= '9') {
        v = v * 10 + (*c->p - '0');
        c->p++;
        n++;
    }
    if (n < min)
        return false;
    *out = v;
    return true;
}

static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static bool cur_month(cursor_t *c, int *month)
{
    for (int m = 0; m < 12; m++) {
        if (cur_lit(c, month_names[m])) {
            *month = m + 1;
            return true;
        }
    }
    return false;
}

static bool cur_weekday(cursor_t *c, bool long_form)
{
    static const char *const short_names[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    static const char *const long_names[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                             "Friday", "Saturday", "Sunday"};
    for (int i = 0; i < 7; i++) {
        if (cur_lit(c, long_form ? long_names[i] : short_names[i]))
            return true;
    }
    return false;
}

static bool cur_time(cursor_t *c, int *h, int *m, int *s)
{
    return cur_num(c, 2, 2, h) && cur_lit(c, ":") && cur_num(c, 2, 2, m) && cur_lit(c, ":") &&
           cur_num(c, 2, 2, s);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's civil algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool valid_date(int y, int mo, int d, int h, int mi, int s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || s > 60)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(mo == 2 && d == 29 && !leap);
}

/* Parses the three HTTP-date forms of RFC 9110 section 5.6.7 into Unix seconds. */
static bool parse_http_date(cursor_t c, int64_t now_unix_s, int64_t *out)
{
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    cursor_t k = c;
    /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
    if (cur_weekday(&k, false) && cur_lit(&k, ", ") && cur_num(&k, 2, 2, &d) && cur_lit(&k, " ") &&
        cur_month(&k, &mo) && cur_lit(&k, " ") && cur_num(&k, 4, 4, &y) && cur_lit(&k, " ") &&
        cur_time(&k, &h, &mi, &s) && cur_lit(&k, " GMT") && k.p == k.end)
        goto done;
    /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
    k = c;
    if (cur_weekday(&k, true) && cur_lit(&k, ", ") && cur_num(&k, 2, 2, &d) && cur_lit(&k, "-") &&
        cur_month(&k, &mo) && cur_lit(&k, "-") && cur_num(&k, 2, 2, &y) && cur_lit(&k, " ") &&
        cur_time(&k, &h, &mi, &s) && cur_lit(&k, " GMT") && k.p == k.end) {
        /* A two-digit year more than 50 years in the future means the past century. */
        int64_t now_year = 1970 + now_unix_s / 31556952;
        int64_t full = (now_year / 100) * 100 + y;
        if (full > now_year + 50)
            full -= 100;
        else if (full <= now_year - 50)
            full += 100;
        y = (int)full;
        goto done;
    }
    /* asctime: Sun Nov  6 08:49:37 1994 */
    k = c;
    if (cur_weekday(&k, false) && cur_lit(&k, " ") && cur_month(&k, &mo) && cur_lit(&k, " ")) {
        if (!cur_lit(&k, " ") && !(k.p < k.end && *k.p >= '1' && *k.p <= '3'))
            return false;
        if (cur_num(&k, 1, 2, &d) && cur_lit(&k, " ") && cur_time(&k, &h, &mi, &s) &&
            cur_lit(&k, " ") && cur_num(&k, 4, 4, &y) && k.p == k.end)
            goto done;
    }
    return false;
done:
    if (!valid_date(y, mo, d, h, mi, s))
        return false;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return true;
}

int rc_retry_after_parse(const char *v, size_t len, int64_t now_unix_ns, int64_t *out_ns)
{
    if (v == NULL)
        return RC_EPARSE;
    cursor_t c = {v, v + len};
    while (c.p < c.end && (*c.p == ' ' || *c.p == '\t'))
        c.p++;
    while (c.end > c.p && (c.end[-1] == ' ' || c.end[-1] == '\t'))
        c.end--;
    if (c.p == c.end)
        return RC_EPARSE;

    if (*c.p >= '0' && *c.p <= '9') {
        int64_t secs = 0;
        for (const char *p = c.p; p < c.end; p++) {
            if (*p < '0' || *p > '9')
                return RC_EPARSE;
            if (secs < INT64_MAX / RC_NS_PER_SEC)
                secs = secs * 10 + (*p - '0');
        }
        *out_ns = secs >= INT64_MAX / RC_NS_PER_SEC ? INT64_MAX : secs * RC_NS_PER_SEC;
        return 0;
    }
    int64_t when;
    int64_t now_s = now_unix_ns / RC_NS_PER_SEC;
    if (!parse_http_date(c, now_s, &when))
        return RC_EPARSE;
    /* Dates are whole seconds; compare against the precise now so a date one second away waits
     * at most one second. Dates far beyond the int64 nanosecond range saturate. */
    if (when <= now_s && when * RC_NS_PER_SEC <= now_unix_ns) {
        *out_ns = 0;
        return 0;
    }
    if (when - now_s >= INT64_MAX / RC_NS_PER_SEC - 1) {
        *out_ns = INT64_MAX;
        return 0;
    }
    int64_t wait = when * RC_NS_PER_SEC - now_unix_ns;
    *out_ns = wait > 0 ? wait : 0;
    return 0;
}

/* --- dead letter ------------------------------------------------------------------------- */

int rc_dead_letter_code(int result)
{
    return result > 0 ? result : 500;
}

size_t rc_dead_letter_data(const void *body, size_t len, char *out, size_t cap)
{
    if (cap == 0)
        return 0;
    size_t limit = cap - 1 < RC_DEAD_LETTER_DATA_MAX ? cap - 1 : RC_DEAD_LETTER_DATA_MAX;
    size_t max_in = (limit / 4) * 3;
    size_t n = rc_base64_encode(body, len < max_in ? len : max_in, out);
    out[n] = '\0';
    return n;
}

/* ---- Dapr apps ---------------------------------------------------------------------------------
 */

/* A scan of the body as Go's json.Decoder reads its first value. The steps answer JS_OK, JS_BAD
 * (a syntax error: Go fails) or JS_END (the input ran out inside the value: a syntax error too,
 * unless the body was cut by the client). */
enum { JS_OK = 0, JS_BAD = -1, JS_END = -2 };

#define JS_MAX_DEPTH 10000 /* Go's encoding/json nesting limit */
#define JS_WORD      16    /* decoded bytes kept of a key or a status value */

typedef struct {
    const unsigned char *p;
    size_t n, i;
} js_t;

static void js_ws(js_t *j)
{
    while (j->i < j->n &&
           (j->p[j->i] == ' ' || j->p[j->i] == '\t' || j->p[j->i] == '\n' || j->p[j->i] == '\r'))
        j->i++;
}

static int js_hex(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Appends the UTF-8 bytes of code point `cp` to `out` (as far as `cap` goes); counts them all. */
static void js_put_cp(uint32_t cp, char *out, size_t cap, size_t *o)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else {
        /* Surrogates and the rest: only ASCII and U+017F are ever compared, so any three
         * non-ASCII bytes stand for them. */
        b[0] = (unsigned char)(0xe0 | (cp >> 12 & 0x0f));
        b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    }
    for (size_t k = 0; k < n; k++, (*o)++)
        if (*o < cap)
            out[*o] = (char)b[k];
}

/* A string at j->i (its opening quote): decoded into `out` as far as `cap` goes, its decoded
 * length in *len. `out` may be NULL (cap 0) to only check it. */
static int js_string(js_t *j, char *out, size_t cap, size_t *len)
{
    size_t o = 0;
    j->i++;
    while (j->i < j->n) {
        unsigned char c = j->p[j->i++];
        if (c == '"') {
            *len = o;
            return JS_OK;
        }
        if (c < 0x20)
            return JS_BAD;
        if (c != '\\') {
            if (o < cap)
                out[o] = (char)c;
            o++;
            continue;
        }
        if (j->i >= j->n)
            return JS_END;
        c = j->p[j->i++];
        static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";
        const char *k = c != '\0' ? strchr(esc_in, c) : NULL;
        if (k != NULL) {
            if (o < cap)
                out[o] = esc_out[k - esc_in];
            o++;
            continue;
        }
        if (c != 'u')
            return JS_BAD;
        uint32_t cp = 0;
        for (int d = 0; d < 4; d++, j->i++) {
            if (j->i >= j->n)
                return JS_END;
            int h = js_hex(j->p[j->i]);
            if (h < 0)
                return JS_BAD;
            cp = cp << 4 | (uint32_t)h;
        }
        js_put_cp(cp, out, cap, &o);
    }
    return JS_END;
}

/* A literal (true, false, null) or a number, per JSON's grammar. */
static int js_scalar(js_t *j)
{
    static const char *const words[] = {"true", "false", "null"};
    for (size_t w = 0; w < 3; w++) {
        size_t n = strlen(words[w]);
        if (j->p[j->i] != (unsigned char)words[w][0])
            continue;
        size_t avail = j->n - j->i < n ? j->n - j->i : n;
        if (memcmp(j->p + j->i, words[w], avail) != 0)
            return JS_BAD;
        j->i += avail;
        return avail < n ? JS_END : JS_OK;
    }
    /* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    size_t i = j->i;
    if (i < j->n && j->p[i] == '-')
        i++;
    if (i >= j->n)
        return JS_END;
    if (j->p[i] == '0')
        i++;
    else if (j->p[i] >= '1' && j->p[i] <= '9')
        while (i < j->n && j->p[i] >= '0' && j->p[i] <= '9')
            i++;
    else
        return JS_BAD;
    for (int part = 0; part < 2; part++) {
        if (i >= j->n)
            break;
        if (part == 0 ? j->p[i] != '.' : (j->p[i] != 'e' && j->p[i] != 'E'))
            continue;
        i++;
        if (part == 1 && i < j->n && (j->p[i] == '+' || j->p[i] == '-'))
            i++;
        if (i >= j->n)
            return JS_END;
        if (j->p[i] < '0' || j->p[i] > '9')
            return JS_BAD;
        while (i < j->n && j->p[i] >= '0' && j->p[i] <= '9')
            i++;
    }
    j->i = i;
    /* A number that ends with the input may go on in the bytes that were cut or never sent;
     * inside an object the closing brace decides anyway. */
    return JS_OK;
}

/* An object member's "key": (then the colon), at j->i (the key's quote). */
static int js_key(js_t *j, char *out, size_t cap, size_t *len)
{
    if (j->i >= j->n)
        return JS_END;
    if (j->p[j->i] != '"')
        return JS_BAD;
    int rc = js_string(j, out, cap, len);
    if (rc != JS_OK)
        return rc;
    js_ws(j);
    if (j->i >= j->n)
        return JS_END;
    if (j->p[j->i] != ':')
        return JS_BAD;
    j->i++;
    return JS_OK;
}

/* Skips one value of any kind, checking its syntax; nesting is kept in a bit stack (1: object),
 * so hostile depth costs no recursion. */
static int js_skip(js_t *j)
{
    unsigned char stack[JS_MAX_DEPTH / 8 + 1];
    size_t depth = 0, klen;
    int rc;
value:
    js_ws(j);
    if (j->i >= j->n)
        return JS_END;
    if (j->p[j->i] == '{' || j->p[j->i] == '[') {
        int obj = j->p[j->i] == '{';
        if (depth == JS_MAX_DEPTH)
            return JS_BAD;
        stack[depth / 8] =
            (unsigned char)((stack[depth / 8] & ~(1u << depth % 8)) | (unsigned)obj << depth % 8);
        depth++;
        j->i++;
        js_ws(j);
        if (j->i >= j->n)
            return JS_END;
        if (j->p[j->i] == (obj ? '}' : ']')) {
            j->i++;
            depth--;
            goto after;
        }
        if (obj && (rc = js_key(j, NULL, 0, &klen)) != JS_OK)
            return rc;
        goto value;
    }
    rc = j->p[j->i] == '"' ? js_string(j, NULL, 0, &klen) : js_scalar(j);
    if (rc != JS_OK)
        return rc;
after:
    if (depth == 0)
        return JS_OK;
    js_ws(j);
    if (j->i >= j->n)
        return JS_END;
    int in_obj = stack[(depth - 1) / 8] >> (depth - 1) % 8 & 1;
    if (j->p[j->i] == ',') {
        j->i++;
        js_ws(j);
        if (in_obj && (rc = js_key(j, NULL, 0, &klen)) != JS_OK)
            return rc;
        goto value;
    }
    if (j->p[j->i] != (in_obj ? '}' : ']'))
        return JS_BAD;
    j->i++;
    depth--;
    goto after;
}

/* Whether a decoded key names the field `want` (lower case ASCII) as Go matches names: ASCII
 * case folded, and U+017F (long s, UTF-8 C5 BF) taken for an s, as Go's simple folding does. */
static bool js_key_is(const char *k, size_t len, const char *want)
{
    size_t i = 0;
    for (; *want != '\0'; want++) {
        if (i >= len)
            return false;
        unsigned char c = (unsigned char)k[i];
        if (*want == 's' && c == 0xc5 && i + 1 < len && (unsigned char)k[i + 1] == 0xbf) {
            i += 2;
            continue;
        }
        if ((c | 0x20) != (unsigned char)*want)
            return false;
        i++;
    }
    return i == len;
}

static rc_dapr_status_t js_status_value(const char *v, size_t len)
{
    if (len == 0)
        return RC_DAPR_STATUS_NONE;
    if (len == 7 && memcmp(v, "SUCCESS", 7) == 0)
        return RC_DAPR_STATUS_SUCCESS;
    if (len == 5 && memcmp(v, "RETRY", 5) == 0)
        return RC_DAPR_STATUS_RETRY;
    if (len == 4 && memcmp(v, "DROP", 4) == 0)
        return RC_DAPR_STATUS_DROP;
    return RC_DAPR_STATUS_UNKNOWN;
}

/* One member's value when its key is the status: a string sets it, null leaves it (Go), any
 * other type is a decode error (*type_err). */
static int js_status_member(js_t *j, rc_dapr_status_t *st, bool *type_err)
{
    js_ws(j);
    if (j->i >= j->n)
        return JS_END;
    if (j->p[j->i] == '"') {
        char v[JS_WORD];
        size_t len;
        int rc = js_string(j, v, sizeof(v), &len);
        if (rc == JS_OK)
            *st = len > sizeof(v) ? RC_DAPR_STATUS_UNKNOWN : js_status_value(v, len);
        return rc;
    }
    if (j->p[j->i] != 'n')
        *type_err = true;
    return js_skip(j);
}

/* After a member or element: past blanks, the `close` that ends its object or array (taken,
 * *more = 0) or a ',' (taken, *more = 1). */
static int js_next(js_t *j, char close, int *more)
{
    js_ws(j);
    if (j->i >= j->n)
        return JS_END;
    char c = (char)j->p[j->i];
    if (c != close && c != ',')
        return JS_BAD;
    j->i++;
    *more = c == ',';
    return JS_OK;
}

/* The members of the object at j->i (its '{'), up to and past its '}': `fn` gets each key
 * (decoded into `k` as far as JS_WORD bytes go, `klen` its whole length: more than JS_WORD
 * names no field we look for) and reads its value. */
typedef int (*js_member_fn)(js_t *j, const char *k, size_t klen, void *arg);

static int js_object(js_t *j, js_member_fn fn, void *arg)
{
    j->i++;
    js_ws(j);
    if (j->i >= j->n)
        return JS_END;
    if (j->p[j->i] == '}') {
        j->i++;
        return JS_OK;
    }
    for (;;) {
        char k[JS_WORD];
        size_t klen;
        int rc = js_key(j, k, sizeof(k), &klen);
        if (rc == JS_OK)
            rc = fn(j, k, klen, arg);
        int more = 0;
        if (rc == JS_OK)
            rc = js_next(j, '}', &more);
        if (rc != JS_OK || !more)
            return rc;
        js_ws(j);
    }
}

/* Whether key `k` (as js_object gives it) is the field `want`. */
static bool js_field(const char *k, size_t klen, const char *want)
{
    return klen <= JS_WORD && js_key_is(k, klen, want);
}

typedef struct {
    rc_dapr_status_t st;
    bool type_err;
} app_status_t;

static int app_status_member(js_t *j, const char *k, size_t klen, void *arg)
{
    app_status_t *a = arg;
    return js_field(k, klen, "status") ? js_status_member(j, &a->st, &a->type_err) : js_skip(j);
}

rc_dapr_status_t rc_dapr_app_status(const char *body, size_t len, bool truncated)
{
    js_t j = {(const unsigned char *)body, body != NULL ? len : 0, 0};
    app_status_t a = {RC_DAPR_STATUS_NONE, false};
    js_ws(&j);
    /* Anything but an object is empty (EOF), a syntax error or a type error for Go. */
    if (j.i >= j.n || j.p[j.i] != '{')
        return RC_DAPR_STATUS_NONE;
    int rc = js_object(&j, app_status_member, &a);
    if (rc == JS_BAD || (rc == JS_END && !truncated) || a.type_err)
        return RC_DAPR_STATUS_NONE;
    return a.st;
}

rc_dapr_outcome_t rc_dapr_classify(int result, const char *body, size_t len, bool truncated)
{
    if (result == 404)
        return RC_DAPR_NOT_FOUND;
    if (result < 200 || result > 299)
        return RC_DAPR_RETRY;
    switch (rc_dapr_app_status(body, len, truncated)) {
    case RC_DAPR_STATUS_NONE:
    case RC_DAPR_STATUS_SUCCESS:
        return RC_DAPR_SUCCESS;
    case RC_DAPR_STATUS_DROP:
        return RC_DAPR_DROP;
    default:
        return RC_DAPR_RETRY;
    }
}

const char *rc_dapr_outcome_name(rc_dapr_outcome_t o)
{
    static const char *const names[] = {"success", "retry", "drop", "not_found"};
    return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "unknown";
}

/* ---- Dapr bulk answers ---------------------------------------------------------------------- */

typedef struct {
    rc_str_t id;
    uint32_t idx; /* into the caller's ids and out */
} bulk_id_t;

typedef struct {
    bulk_id_t *sorted; /* the caller's ids, sorted for bsearch */
    size_t n;
    rc_dapr_status_t *out;
    bool type_err; /* Go's decoder would return an UnmarshalTypeError */
} bulk_t;

/* One element of `statuses` as it is read. */
typedef struct {
    bulk_t *b;
    char id[RC_DAPR_BULK_ID_MAX];
    size_t idlen; /* more than RC_DAPR_BULK_ID_MAX: too long to name any entry */
    rc_dapr_status_t st;
} bulk_elem_t;

static int bulk_id_cmp(const void *a, const void *b)
{
    const rc_str_t *x = &((const bulk_id_t *)a)->id, *y = &((const bulk_id_t *)b)->id;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = m > 0 ? memcmp(x->ptr, y->ptr, m) : 0;
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

static void bulk_reset(bulk_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        b->out[i] = RC_DAPR_STATUS_MISSING;
}

/* `entryId`: a string sets it, null leaves it (Go), anything else is a type error. */
static int bulk_id_member(js_t *j, bulk_elem_t *e)
{
    js_ws(j);
    if (j->i >= j->n)
        return JS_END;
    if (j->p[j->i] == '"')
        return js_string(j, e->id, sizeof(e->id), &e->idlen);
    if (j->p[j->i] != 'n')
        e->b->type_err = true;
    return js_skip(j);
}

static int bulk_elem_member(js_t *j, const char *k, size_t klen, void *arg)
{
    bulk_elem_t *e = arg;
    if (js_field(k, klen, "entryid"))
        return bulk_id_member(j, e);
    if (js_field(k, klen, "status"))
        return js_status_member(j, &e->st, &e->b->type_err);
    return js_skip(j);
}

/* One element of `statuses`, applied once it is complete (the answer's last word on an entry
 * wins). null is Go's zero element, with an empty entryId that names no entry; any type other
 * than an object or null is a type error. */
static int bulk_element(js_t *j, bulk_t *b)
{
    js_ws(j);
    if (j->i >= j->n)
        return JS_END;
    if (j->p[j->i] != '{') {
        if (j->p[j->i] != 'n')
            b->type_err = true;
        return js_skip(j);
    }
    bulk_elem_t e = {.b = b, .idlen = 0, .st = RC_DAPR_STATUS_NONE};
    int rc = js_object(j, bulk_elem_member, &e);
    if (rc != JS_OK || e.idlen > sizeof(e.id))
        return rc;
    bulk_id_t key = {{e.id, e.idlen}, 0};
    const bulk_id_t *hit =
        b->n > 0 ? bsearch(&key, b->sorted, b->n, sizeof(key), bulk_id_cmp) : NULL;
    if (hit != NULL)
        b->out[hit->idx] = e.st;
    return JS_OK;
}

/* The `statuses` member: an array replaces what an earlier `statuses` member said, as Go
 * decodes into the slice anew; null empties it; any other type is a type error. */
static int bulk_top_member(js_t *j, const char *k, size_t klen, void *arg)
{
    bulk_t *b = arg;
    if (!js_field(k, klen, "statuses"))
        return js_skip(j);
    js_ws(j);
    if (j->i >= j->n)
        return JS_END;
    if (j->p[j->i] != '[') {
        if (j->p[j->i] == 'n')
            bulk_reset(b);
        else
            b->type_err = true;
        return js_skip(j);
    }
    bulk_reset(b);
    j->i++;
    js_ws(j);
    if (j->i >= j->n)
        return JS_END;
    if (j->p[j->i] == ']') {
        j->i++;
        return JS_OK;
    }
    for (;;) {
        int more = 0;
        int rc = bulk_element(j, b);
        if (rc == JS_OK)
            rc = js_next(j, ']', &more);
        if (rc != JS_OK || !more)
            return rc;
    }
}

int rc_dapr_bulk_statuses(const char *body, size_t len, bool truncated, const rc_str_t *ids,
                          size_t n, rc_dapr_status_t *out)
{
    bulk_t b = {NULL, n, out, false};
    if (n > 0 && (b.sorted = malloc(n * sizeof(*b.sorted))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        b.sorted[i] = (bulk_id_t){ids[i], (uint32_t)i};
    if (n > 1)
        qsort(b.sorted, n, sizeof(*b.sorted), bulk_id_cmp);
    bulk_reset(&b);
    js_t j = {(const unsigned char *)body, body != NULL ? len : 0, 0};
    int rc;
    js_ws(&j);
    if (j.i >= j.n)
        rc = JS_BAD; /* Go: EOF */
    else if (j.p[j.i] == '{')
        rc = js_object(&j, bulk_top_member, &b);
    else if (j.p[j.i] == 'n')
        rc = js_scalar(&j); /* null decodes into nothing: every entry missing */
    else
        rc = JS_BAD; /* a syntax error, or a type error once Go has read the value */
    free(b.sorted);
    if (rc == JS_BAD || (rc == JS_END && !truncated) || b.type_err)
        return RC_EPARSE;
    return 0;
}

rc_dapr_outcome_t rc_dapr_bulk_outcome(rc_dapr_status_t st)
{
    switch (st) {
    case RC_DAPR_STATUS_SUCCESS:
        return RC_DAPR_SUCCESS;
    case RC_DAPR_STATUS_DROP:
        return RC_DAPR_DROP;
    default:
        return RC_DAPR_RETRY;
    }
}
