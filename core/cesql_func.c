/* CESQL casts (spec 3.7), UTF-8 helpers and the built-in functions (spec 3.5 plus the casting
 * functions the TCK uses: INT, BOOL, STRING, IS_INT, IS_BOOL).
 *
 * Strings are UTF-8 and characters are counted as code points: every byte that is not a
 * continuation byte (10xxxxxx) starts a character, so invalid bytes count one each and nothing
 * here can read out of bounds on malformed input. Functions that cut strings (LEFT, RIGHT,
 * SUBSTRING, TRIM) return views of their argument; only CONCAT, CONCAT_WS, LOWER, UPPER and
 * Integer -> String casts write, into the evaluation's scratch memory. */
#include "core/cesql_internal.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <wctype.h>

/* ---- scratch and casts ---- */

char *rc__cesql_scratch_alloc(rc__cesql_scratch_t *s, size_t n)
{
    if (s->len - s->used < n)
        return NULL;
    char *p = s->base + s->used;
    s->used += n;
    return p;
}

bool rc__cesql_parse_int(const char *s, size_t len, int32_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len)
        return false;
    int64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
        if (v > 2147483648LL)
            return false;
    }
    if (neg)
        v = -v;
    if (v > INT32_MAX)
        return false;
    *out = (int32_t)v;
    return true;
}

uint32_t rc__cesql_format_int(int32_t v, char *buf)
{
    char tmp[12];
    uint32_t n = 0;
    /* Work on the negative magnitude so INT32_MIN needs no special case. */
    int64_t x = v;
    bool neg = x < 0;
    if (neg)
        x = -x;
    do {
        tmp[n++] = (char)('0' + x % 10);
        x /= 10;
    } while (x != 0);
    uint32_t len = 0;
    if (neg)
        buf[len++] = '-';
    while (n > 0)
        buf[len++] = tmp[--n];
    return len;
}

static const char str_true[] = "true";
static const char str_false[] = "false";

rc_cesql_errkind_t rc__cesql_cast(rc_cesql_value_t *v, uint32_t type, rc__cesql_scratch_t *s)
{
    if (type == RC__CESQL_ANY || v->type == type)
        return RC_CESQL_OK;
    switch (type) {
    case RC_CESQL_TYPE_STRING:
        if (v->type == RC_CESQL_TYPE_BOOL) {
            bool b = v->u.b;
            v->u.s = b ? str_true : str_false;
            v->len = b ? 4 : 5;
        } else {
            char *buf = rc__cesql_scratch_alloc(s, 12);
            if (buf == NULL) {
                v->type = RC_CESQL_TYPE_STRING;
                v->u.s = "";
                v->len = 0;
                return RC_CESQL_ERR_GENERIC;
            }
            v->len = rc__cesql_format_int(v->u.i, buf);
            v->u.s = buf;
            s->used -= 12 - v->len;
        }
        v->type = RC_CESQL_TYPE_STRING;
        return RC_CESQL_OK;
    case RC_CESQL_TYPE_INT:
        if (v->type == RC_CESQL_TYPE_BOOL) {
            v->u.i = v->u.b ? 1 : 0;
            v->type = RC_CESQL_TYPE_INT;
            return RC_CESQL_OK;
        } else {
            int32_t i = 0;
            bool ok = rc__cesql_parse_int(v->u.s, v->len, &i);
            v->type = RC_CESQL_TYPE_INT;
            v->len = 0;
            v->u.i = ok ? i : 0;
            return ok ? RC_CESQL_OK : RC_CESQL_ERR_CAST;
        }
    default: /* RC_CESQL_TYPE_BOOL */
        if (v->type == RC_CESQL_TYPE_INT) {
            v->u.b = v->u.i != 0;
            v->type = RC_CESQL_TYPE_BOOL;
            return RC_CESQL_OK;
        } else {
            bool t = v->len == 4 && strncasecmp(v->u.s, "true", 4) == 0;
            bool f = v->len == 5 && strncasecmp(v->u.s, "false", 5) == 0;
            v->type = RC_CESQL_TYPE_BOOL;
            v->len = 0;
            v->u.b = t;
            return t || f ? RC_CESQL_OK : RC_CESQL_ERR_CAST;
        }
    }
}

/* ---- UTF-8 ---- */

static bool is_cont(char c)
{
    return ((unsigned char)c & 0xC0) == 0x80;
}

uint32_t rc__cesql_utf8_len(const char *s, size_t len)
{
    /* A character starts at offset 0 and at every byte that is not a continuation byte. */
    uint32_t n = len > 0 && is_cont(s[0]);
    for (size_t i = 0; i < len; i++)
        n += !is_cont(s[i]);
    return n;
}

size_t rc__cesql_utf8_offset(const char *s, size_t len, uint32_t n)
{
    size_t i = 0;
    while (n > 0 && i < len) {
        i++;
        while (i < len && is_cont(s[i]))
            i++;
        n--;
    }
    return i;
}

/* Decodes one well-formed UTF-8 sequence at s[0..len); returns its length, 0 when malformed. */
static uint32_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    uint32_t n, v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (uint32_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) || (n == 4 && v < 0x10000) ||
        v > 0x10FFFF)
        return 0;
    *cp = v;
    return n;
}

static uint32_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Unicode White_Space (what TRIM removes). */
static bool is_space_cp(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* Non-ASCII case mapping uses the C.UTF-8 locale's tables (simple, one-to-one Unicode case
 * mapping). rc_cesql_compile creates the locale once before any program exists, so evaluating
 * threads only read it. Without the locale, only ASCII letters change case. */
static locale_t utf8_locale;

void rc__cesql_locale_init(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static rc_cesql_errkind_t map_case(const rc_cesql_value_t *x, bool upper, rc__cesql_scratch_t *s,
                                   rc_cesql_value_t *out)
{
    /* One-to-one mappings grow a character by at most one byte (2 -> 3, e.g. U+023A). */
    size_t cap = (size_t)x->len * 2;
    size_t mark = s->used;
    char *buf = rc__cesql_scratch_alloc(s, cap);
    out->type = RC_CESQL_TYPE_STRING;
    if (buf == NULL) {
        out->u.s = "";
        out->len = 0;
        return RC_CESQL_ERR_GENERIC;
    }
    const unsigned char *in = (const unsigned char *)x->u.s;
    size_t n = 0;
    for (size_t i = 0; i < x->len;) {
        unsigned char c = in[i];
        if (c < 0x80) {
            if (upper && c >= 'a' && c <= 'z')
                c = (unsigned char)(c - 32);
            else if (!upper && c >= 'A' && c <= 'Z')
                c = (unsigned char)(c + 32);
            buf[n++] = (char)c;
            i++;
            continue;
        }
        uint32_t cp;
        uint32_t k = utf8_decode(in + i, x->len - i, &cp);
        if (k == 0 || utf8_locale == (locale_t)0) {
            buf[n++] = (char)c;
            i++;
            continue;
        }
        wint_t m =
            upper ? towupper_l((wint_t)cp, utf8_locale) : towlower_l((wint_t)cp, utf8_locale);
        if (m > 0x10FFFF || (m >= 0xD800 && m <= 0xDFFF))
            m = cp;
        n += utf8_encode((uint32_t)m, buf + n);
        i += k;
    }
    s->used = mark + n;
    out->u.s = buf;
    out->len = (uint32_t)n;
    return RC_CESQL_OK;
}

/* ---- built-ins ---- */

#define ARGS const rc_cesql_value_t *a, uint32_t n, rc__cesql_scratch_t *s, rc_cesql_value_t *out

static void set_str(rc_cesql_value_t *out, const char *p, size_t len)
{
    out->type = RC_CESQL_TYPE_STRING;
    out->u.s = p;
    out->len = (uint32_t)len;
}

static void set_int(rc_cesql_value_t *out, int32_t i)
{
    out->type = RC_CESQL_TYPE_INT;
    out->len = 0;
    out->u.i = i;
}

static void set_bool(rc_cesql_value_t *out, bool b)
{
    out->type = RC_CESQL_TYPE_BOOL;
    out->len = 0;
    out->u.b = b;
}

static rc_cesql_errkind_t fn_abs(ARGS)
{
    if (a[0].u.i == INT32_MIN) {
        set_int(out, INT32_MAX);
        return RC_CESQL_ERR_MATH;
    }
    set_int(out, a[0].u.i < 0 ? -a[0].u.i : a[0].u.i);
    return RC_CESQL_OK;
}

static rc_cesql_errkind_t fn_length(ARGS)
{
    set_int(out, (int32_t)rc__cesql_utf8_len(a[0].u.s, a[0].len));
    return RC_CESQL_OK;
}

static rc_cesql_errkind_t join(const rc_cesql_value_t *delim, const rc_cesql_value_t *a, uint32_t n,
                               rc__cesql_scratch_t *s, rc_cesql_value_t *out)
{
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += a[i].len + (delim != NULL && i > 0 ? delim->len : 0);
    if (n == 1) {
        *out = a[0];
        return RC_CESQL_OK;
    }
    char *buf = rc__cesql_scratch_alloc(s, total);
    if (buf == NULL && total > 0) {
        set_str(out, "", 0);
        return RC_CESQL_ERR_GENERIC;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (delim != NULL && i > 0) {
            memcpy(buf + k, delim->u.s, delim->len);
            k += delim->len;
        }
        memcpy(buf + k, a[i].u.s, a[i].len);
        k += a[i].len;
    }
    set_str(out, total ? buf : "", total);
    return RC_CESQL_OK;
}

static rc_cesql_errkind_t fn_concat(ARGS)
{
    return join(NULL, a, n, s, out);
}

static rc_cesql_errkind_t fn_concat_ws(ARGS)
{
    return join(&a[0], a + 1, n - 1, s, out);
}

static rc_cesql_errkind_t fn_lower(ARGS)
{
    return map_case(&a[0], false, s, out);
}

static rc_cesql_errkind_t fn_upper(ARGS)
{
    return map_case(&a[0], true, s, out);
}

static rc_cesql_errkind_t fn_trim(ARGS)
{
    const unsigned char *p = (const unsigned char *)a[0].u.s;
    size_t b = 0, e = a[0].len;
    while (b < e) {
        uint32_t cp, k = utf8_decode(p + b, e - b, &cp);
        if (k == 0 || !is_space_cp(cp))
            break;
        b += k;
    }
    while (e > b) {
        size_t st = e - 1;
        while (st > b && is_cont((char)p[st]))
            st--;
        uint32_t cp, k = utf8_decode(p + st, e - st, &cp);
        if (k != e - st || !is_space_cp(cp))
            break;
        e = st;
    }
    set_str(out, a[0].u.s + b, e - b);
    return RC_CESQL_OK;
}

static rc_cesql_errkind_t fn_left(ARGS)
{
    if (a[1].u.i < 0) {
        *out = a[0];
        return RC_CESQL_ERR_FUNCTION_EVALUATION;
    }
    set_str(out, a[0].u.s, rc__cesql_utf8_offset(a[0].u.s, a[0].len, (uint32_t)a[1].u.i));
    return RC_CESQL_OK;
}

static rc_cesql_errkind_t fn_right(ARGS)
{
    if (a[1].u.i < 0) {
        *out = a[0];
        return RC_CESQL_ERR_FUNCTION_EVALUATION;
    }
    uint32_t chars = rc__cesql_utf8_len(a[0].u.s, a[0].len);
    uint32_t want = (uint32_t)a[1].u.i;
    size_t off = want >= chars ? 0 : rc__cesql_utf8_offset(a[0].u.s, a[0].len, chars - want);
    set_str(out, a[0].u.s + off, a[0].len - off);
    return RC_CESQL_OK;
}

static rc_cesql_errkind_t fn_substring(ARGS)
{
    int64_t chars = rc__cesql_utf8_len(a[0].u.s, a[0].len);
    int64_t pos = a[1].u.i;
    set_str(out, "", 0);
    if (pos > chars || pos < -chars || (n == 3 && a[2].u.i < 0))
        return RC_CESQL_ERR_FUNCTION_EVALUATION;
    if (pos == 0)
        return RC_CESQL_OK;
    int64_t start = pos > 0 ? pos - 1 : chars + pos; /* 0-based first character */
    int64_t count = n == 3 ? a[2].u.i : chars - start;
    if (count > chars - start)
        count = chars - start;
    size_t b = rc__cesql_utf8_offset(a[0].u.s, a[0].len, (uint32_t)start);
    size_t e = rc__cesql_utf8_offset(a[0].u.s, a[0].len, (uint32_t)(start + count));
    set_str(out, a[0].u.s + b, e - b);
    return RC_CESQL_OK;
}

static rc_cesql_errkind_t cast_to(const rc_cesql_value_t *x, uint32_t type, rc__cesql_scratch_t *s,
                                  rc_cesql_value_t *out)
{
    *out = *x;
    return rc__cesql_cast(out, type, s);
}

static rc_cesql_errkind_t fn_int(ARGS)
{
    return cast_to(&a[0], RC_CESQL_TYPE_INT, s, out);
}

static rc_cesql_errkind_t fn_bool(ARGS)
{
    return cast_to(&a[0], RC_CESQL_TYPE_BOOL, s, out);
}

static rc_cesql_errkind_t fn_string(ARGS)
{
    return cast_to(&a[0], RC_CESQL_TYPE_STRING, s, out);
}

static rc_cesql_errkind_t fn_is_int(ARGS)
{
    int32_t i;
    set_bool(out, a[0].type != RC_CESQL_TYPE_STRING || rc__cesql_parse_int(a[0].u.s, a[0].len, &i));
    return RC_CESQL_OK;
}

static rc_cesql_errkind_t fn_is_bool(ARGS)
{
    bool ok = a[0].type != RC_CESQL_TYPE_STRING ||
              (a[0].len == 4 && strncasecmp(a[0].u.s, "true", 4) == 0) ||
              (a[0].len == 5 && strncasecmp(a[0].u.s, "false", 5) == 0);
    set_bool(out, ok);
    return RC_CESQL_OK;
}

#define S RC_CESQL_TYPE_STRING
#define I RC_CESQL_TYPE_INT
#define B RC_CESQL_TYPE_BOOL
#define A RC__CESQL_ANY

const rc__cesql_func_t rc__cesql_funcs[] = {
    {"ABS", 1, 1, I, {I}, fn_abs},         {"LENGTH", 1, 1, I, {S}, fn_length},
    {"CONCAT", 0, -1, S, {S}, fn_concat},  {"CONCAT_WS", 1, -1, S, {S, S}, fn_concat_ws},
    {"LOWER", 1, 1, S, {S}, fn_lower},     {"UPPER", 1, 1, S, {S}, fn_upper},
    {"TRIM", 1, 1, S, {S}, fn_trim},       {"LEFT", 2, 2, S, {S, I}, fn_left},
    {"RIGHT", 2, 2, S, {S, I}, fn_right},  {"SUBSTRING", 2, 3, S, {S, I, I}, fn_substring},
    {"INT", 1, 1, I, {A}, fn_int},         {"BOOL", 1, 1, B, {A}, fn_bool},
    {"STRING", 1, 1, S, {A}, fn_string},   {"IS_INT", 1, 1, B, {A}, fn_is_int},
    {"IS_BOOL", 1, 1, B, {A}, fn_is_bool},
};

const uint32_t rc__cesql_nfuncs = sizeof(rc__cesql_funcs) / sizeof(rc__cesql_funcs[0]);

int rc__cesql_func_find(const char *name, size_t len, uint32_t nargs)
{
    for (uint32_t i = 0; i < rc__cesql_nfuncs; i++) {
        const rc__cesql_func_t *f = &rc__cesql_funcs[i];
        if (strlen(f->name) != len || strncasecmp(f->name, name, len) != 0)
            continue;
        if (nargs < (uint32_t)f->min_args || (f->max_args >= 0 && nargs > (uint32_t)f->max_args))
            return -2;
        return (int)i;
    }
    return -1;
}

uint8_t rc__cesql_func_param(const rc__cesql_func_t *f, uint32_t i)
{
    uint32_t declared = f->max_args < 0 ? (uint32_t)f->min_args + 1 : (uint32_t)f->max_args;
    if (declared == 0)
        return RC__CESQL_ANY;
    return f->params[i < declared ? i : declared - 1];
}
