/* CEL value operations: equality and ordering with CEL's heterogeneous numeric rules, the
 * string methods, and the int() / double() / string() conversions, with cel-go's results.
 *
 * Strings read from JSON data keep their escapes (a value flagged `esc`): a cursor decodes them
 * byte by byte while they are compared, so evaluation copies nothing and needs no scratch
 * memory, however long the strings are. */
#include "core/cel_internal.h"
#include "core/json_scan.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- string cursors ------------------------------------------------------------------------- */

/* Reads a string value's bytes in order, decoding JSON escapes when the value has them. */
typedef struct {
    const char *p;
    size_t n, i;
    bool esc;
    uint8_t np, pi; /* decoded bytes of the current escape, and how many were read */
    char pend[12];
} cursor_t;

static void cursor_init(cursor_t *c, const rc__cel_val_t *v)
{
    rc_str_t s = rc__cel_str(v);
    *c = (cursor_t){.p = s.ptr, .n = s.len, .esc = v->esc};
}

/* Bytes of the escape at p[i] == '\\' (validated by the JSON scanner): \uD8xx-\uDBxx is the
 * first half of a surrogate pair and takes the following \uDCxx with it. */
static size_t escape_len(const cursor_t *c)
{
    if (c->p[c->i + 1] != 'u')
        return 2;
    char h = c->p[c->i + 2], s = c->p[c->i + 3];
    bool high = (h == 'd' || h == 'D') && strchr("89abAB", s) != NULL && s != '\0';
    return high ? 12 : 6;
}

/* The next byte (0..255), or -1 at the end. */
static int cursor_next(cursor_t *c)
{
    if (c->pi < c->np)
        return (unsigned char)c->pend[c->pi++];
    if (c->i >= c->n)
        return -1;
    char ch = c->p[c->i];
    if (!c->esc || ch != '\\') {
        c->i++;
        return (unsigned char)ch;
    }
    size_t k = escape_len(c);
    long m = rc__json_unescape((rc_str_t){c->p + c->i, k}, c->pend);
    c->i += k;
    c->np = (uint8_t)(m > 0 ? m : 0);
    c->pi = 0;
    return c->np > 0 ? (unsigned char)c->pend[c->pi++] : -1;
}

static size_t decoded_len(const rc__cel_val_t *v)
{
    if (!v->esc)
        return rc__cel_str(v).len;
    cursor_t c;
    cursor_init(&c, v);
    size_t n = 0;
    while (cursor_next(&c) >= 0)
        n++;
    return n;
}

/* Whether the bytes of `part` come next in `c` (which advances). */
static bool cursor_match(cursor_t *c, const rc__cel_val_t *part)
{
    cursor_t q;
    cursor_init(&q, part);
    for (int b; (b = cursor_next(&q)) >= 0;)
        if (cursor_next(c) != b)
            return false;
    return true;
}

static int str_compare(const rc__cel_val_t *a, const rc__cel_val_t *b)
{
    if (!a->esc && !b->esc) {
        rc_str_t x = rc__cel_str(a), y = rc__cel_str(b);
        size_t n = x.len < y.len ? x.len : y.len;
        int r = n ? memcmp(x.ptr, y.ptr, n) : 0;
        if (r != 0)
            return r < 0 ? -1 : 1;
        return x.len == y.len ? 0 : (x.len < y.len ? -1 : 1);
    }
    cursor_t x, y;
    cursor_init(&x, a);
    cursor_init(&y, b);
    for (;;) {
        int p = cursor_next(&x), q = cursor_next(&y);
        if (p != q)
            return p < q ? -1 : 1;
        if (p < 0)
            return 0;
    }
}

bool rc__cel_starts_with(const rc__cel_val_t *s, const rc__cel_val_t *prefix)
{
    cursor_t c;
    cursor_init(&c, s);
    return cursor_match(&c, prefix);
}

bool rc__cel_ends_with(const rc__cel_val_t *s, const rc__cel_val_t *suffix)
{
    size_t ls = decoded_len(s), lx = decoded_len(suffix);
    if (lx > ls)
        return false;
    cursor_t c;
    cursor_init(&c, s);
    for (size_t k = 0; k < ls - lx; k++)
        cursor_next(&c);
    return cursor_match(&c, suffix);
}

bool rc__cel_contains(const rc__cel_val_t *s, const rc__cel_val_t *part)
{
    if (!s->esc && !part->esc) {
        rc_str_t h = rc__cel_str(s), n = rc__cel_str(part);
        return n.len == 0 || (h.len > 0 && memmem(h.ptr, h.len, n.ptr, n.len) != NULL);
    }
    size_t ls = decoded_len(s), lp = decoded_len(part);
    cursor_t c;
    cursor_init(&c, s);
    for (size_t k = 0; k + lp <= ls; k++) {
        cursor_t at = c;
        if (cursor_match(&at, part))
            return true;
        cursor_next(&c);
    }
    return false;
}

/* ---- equality and ordering ------------------------------------------------------------------ */

static bool is_num(const rc__cel_val_t *v)
{
    return v->kind == RC__CV_INT || v->kind == RC__CV_DOUBLE;
}

/* An int against a double, exactly (no rounding of the int): -1, 0, 1, or 2 for NaN. */
static int cmp_int_double(int64_t i, double d)
{
    if (isnan(d))
        return 2;
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    double t = trunc(d);
    int64_t ti = (int64_t)t;
    if (i != ti)
        return i < ti ? -1 : 1;
    return d > t ? -1 : (d < t ? 1 : 0);
}

static int cmp_num(const rc__cel_val_t *a, const rc__cel_val_t *b)
{
    if (a->kind == RC__CV_INT && b->kind == RC__CV_INT)
        return a->u.i < b->u.i ? -1 : (a->u.i > b->u.i ? 1 : 0);
    if (a->kind == RC__CV_INT)
        return cmp_int_double(a->u.i, b->u.d);
    if (b->kind == RC__CV_INT) {
        int r = cmp_int_double(b->u.i, a->u.d);
        return r == 2 ? 2 : -r;
    }
    if (isnan(a->u.d) || isnan(b->u.d))
        return 2;
    return a->u.d < b->u.d ? -1 : (a->u.d > b->u.d ? 1 : 0);
}

int rc__cel_equal(const rc__cel_val_t *a, const rc__cel_val_t *b)
{
    if (is_num(a) && is_num(b))
        return cmp_num(a, b) == 0;
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case RC__CV_NULL:
        return 1;
    case RC__CV_BOOL:
        return a->u.b == b->u.b;
    case RC__CV_STRING:
        return str_compare(a, b) == 0;
    default:
        return -1; /* objects and arrays of data: not supported */
    }
}

int rc__cel_compare(const rc__cel_val_t *a, const rc__cel_val_t *b)
{
    if (is_num(a) && is_num(b))
        return cmp_num(a, b);
    if (a->kind != b->kind)
        return -2;
    if (a->kind == RC__CV_STRING)
        return str_compare(a, b);
    if (a->kind == RC__CV_BOOL)
        return a->u.b == b->u.b ? 0 : (a->u.b ? 1 : -1);
    return -2;
}

/* ---- conversions ---------------------------------------------------------------------------- */

static rc__cel_val_t err_val(void)
{
    return (rc__cel_val_t){.kind = RC__CV_ERR};
}

/* Copies a string value's decoded bytes into `buf` (`cap` bytes, NUL-terminated); false when
 * they do not fit or hold a NUL (no number contains one). */
static bool copy_small(const rc__cel_val_t *v, char *buf, size_t cap)
{
    cursor_t c;
    cursor_init(&c, v);
    size_t n = 0;
    for (int b; (b = cursor_next(&c)) >= 0;) {
        if (n + 1 >= cap || b == 0)
            return false;
        buf[n++] = (char)b;
    }
    buf[n] = '\0';
    return true;
}

/* Go's strconv.ParseInt(s, 10, 64) and ParseFloat(s, 64) take the whole string with no blanks
 * around it; the decoded bytes go through a small buffer (no number is longer). */
static bool number_text(const rc__cel_val_t *in, char *buf, size_t cap)
{
    return copy_small(in, buf, cap) && buf[0] != '\0' && strchr(" \t\n\v\f\r", buf[0]) == NULL;
}

rc__cel_val_t rc__cel_to_int(const rc__cel_val_t *in)
{
    rc__cel_val_t r = {.kind = RC__CV_INT};
    char buf[32], *end;
    switch (in->kind) {
    case RC__CV_INT:
        r.u.i = in->u.i;
        return r;
    case RC__CV_DOUBLE:
        /* cel-go: truncation toward zero, an error outside int64 (and for NaN). */
        if (!(in->u.d > -9223372036854775809.0 && in->u.d < 9223372036854775808.0))
            return err_val();
        r.u.i = (int64_t)in->u.d;
        return r;
    case RC__CV_STRING:
        if (!number_text(in, buf, sizeof(buf)) ||
            !(isdigit((unsigned char)buf[0]) || buf[0] == '-' || buf[0] == '+'))
            return err_val();
        errno = 0;
        r.u.i = strtoll(buf, &end, 10);
        return *end == '\0' && errno == 0 ? r : err_val();
    default:
        return err_val();
    }
}

rc__cel_val_t rc__cel_to_double(const rc__cel_val_t *in)
{
    rc__cel_val_t r = {.kind = RC__CV_DOUBLE};
    char buf[128], *end;
    switch (in->kind) {
    case RC__CV_DOUBLE:
        r.u.d = in->u.d;
        return r;
    case RC__CV_INT:
        r.u.d = (double)in->u.i;
        return r;
    case RC__CV_STRING:
        if (!number_text(in, buf, sizeof(buf)))
            return err_val();
        errno = 0;
        r.u.d = strtod(buf, &end);
        return *end == '\0' && !(errno == ERANGE && isinf(r.u.d)) ? r : err_val();
    default:
        return err_val();
    }
}

/* `d` as Go's %g writes it (cel-go's string() of a double): the shortest digits that read back
 * as `d`, in %e form (two-digit exponent at least) when the decimal exponent is below -4 or at
 * least 6, else in %f form: 100 -> "100", 1e6 -> "1e+06", 0.0001 -> "0.0001", 1.5 -> "1.5". */
static size_t format_double(double d, char *buf, size_t cap)
{
    if (isnan(d))
        return (size_t)snprintf(buf, cap, "NaN");
    if (isinf(d))
        return (size_t)snprintf(buf, cap, d > 0 ? "+Inf" : "-Inf");
    if (d == 0)
        return (size_t)snprintf(buf, cap, signbit(d) ? "-0" : "0");
    int digits = 1;
    char tmp[40];
    for (; digits < 17; digits++) {
        snprintf(tmp, sizeof(tmp), "%.*e", digits - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    snprintf(tmp, sizeof(tmp), "%.*e", digits - 1, d);
    int exp = atoi(strchr(tmp, 'e') + 1);
    if (exp < -4 || exp >= 6)
        return (size_t)snprintf(buf, cap, "%s", tmp);
    int frac = digits - 1 - exp;
    return (size_t)snprintf(buf, cap, "%.*f", frac > 0 ? frac : 0, d);
}

rc__cel_val_t rc__cel_to_string(const rc__cel_val_t *in)
{
    if (in->kind == RC__CV_STRING)
        return *in;
    rc__cel_val_t r = {.kind = RC__CV_STRING, .inl = true};
    size_t n;
    if (in->kind == RC__CV_INT)
        n = (size_t)snprintf(r.buf, sizeof(r.buf), "%" PRId64, in->u.i);
    else if (in->kind == RC__CV_DOUBLE)
        n = format_double(in->u.d, r.buf, sizeof(r.buf));
    else if (in->kind == RC__CV_BOOL)
        n = (size_t)snprintf(r.buf, sizeof(r.buf), "%s", in->u.b ? "true" : "false");
    else
        return err_val();
    r.u.s = (rc_str_t){NULL, n}; /* the bytes are in buf (inl) */
    return r;
}
