/* The strict JSON scanner shared by core's JSON readers (core/json_scan.h). Moved out of
 * core/codec_json.c unchanged so that the CEL data walker validates data exactly as the codec
 * validates bodies. */
#include "core/json_scan.h"

#include "core/errors.h"

#include <stdint.h>
#include <string.h>

int rc__json_malformed(rc__json_t *j)
{
    if (j->err) {
        j->err->field = RC_STR_NULL;
        j->err->rule = "malformed JSON";
    }
    return RC_EINVALID_EVENT;
}

static int hex4(const char *p, size_t n)
{
    if (n < 4)
        return -1;
    int v = 0;
    for (int k = 0; k < 4; k++) {
        int h = rc__json_hexval(p[k]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

size_t rc__json_put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Unescapes the inside of a string literal (already checked by scan_string) into `out` (at least
 * `in.len` bytes: an escape is never shorter than what it stands for). Returns the length, or -1
 * on a lone surrogate. */
long rc__json_unescape(rc_str_t in, char *out)
{
    const char *p = in.ptr;
    size_t n = in.len, o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\') {
            out[o++] = p[i];
            continue;
        }
        i++;
        switch (p[i]) {
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            uint32_t c = (uint32_t)hex4(p + i + 1, n - i - 1);
            i += 4;
            if (c >= 0xd800 && c <= 0xdbff) {
                int lo;
                if (n - i < 7 || p[i + 1] != '\\' || p[i + 2] != 'u' ||
                    (lo = hex4(p + i + 3, n - i - 3)) < 0xdc00 || lo > 0xdfff)
                    return -1;
                c = 0x10000 + ((c - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
                i += 6;
            } else if (c >= 0xdc00 && c <= 0xdfff) {
                return -1;
            }
            o += rc__json_put_utf8(out + o, c);
            break;
        }
        default:
            out[o++] = p[i];
            break; /* '"', '\\', '/' */
        }
    }
    return (long)o;
}

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Non-zero when a byte of `w` ends a plain run inside a string: '"', '\\' or a control byte. */
static inline uint64_t stop_bytes(uint64_t w)
{
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
    uint64_t zq = (q - ONES) & ~q, zb = (b - ONES) & ~b, lt = (w - ONES * 0x20) & ~w;
    return (zq | zb | lt) & HIGHS;
}

/* Scans the string literal at p[i] == '"'. `raw` gets the bytes between the quotes, `*escaped`
 * whether they hold escapes. Raw control characters and malformed escapes are errors. */
int rc__json_scan_string(rc__json_t *j, rc_str_t *raw, bool *escaped)
{
    const char *p = j->p;
    size_t i = j->i + 1, n = j->n;
    *escaped = false;
    for (;;) {
        /* Plain runs dominate: skip them 8 bytes at a time, then byte by byte up to the stop. */
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (stop_bytes(w) != 0)
                break;
            i += 8;
        }
        while (i < n && (unsigned char)p[i] >= 0x20 && p[i] != '"' && p[i] != '\\')
            i++;
        if (i >= n || (unsigned char)p[i] < 0x20)
            return rc__json_malformed(j);
        if (p[i] == '"')
            break;
        *escaped = true;
        if (++i >= n)
            return rc__json_malformed(j);
        char c = p[i];
        if (c == 'u') {
            /* Surrogates must pair up: a lone one is no character and cannot be UTF-8. */
            int cp = hex4(p + i + 1, n - i - 1);
            if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff))
                return rc__json_malformed(j);
            i += 5;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                int lo;
                if (n - i < 6 || p[i] != '\\' || p[i + 1] != 'u' ||
                    (lo = hex4(p + i + 2, n - i - 2)) < 0xdc00 || lo > 0xdfff)
                    return rc__json_malformed(j);
                i += 6;
            }
        } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
                   c == 'r' || c == 't') {
            i++;
        } else {
            return rc__json_malformed(j);
        }
    }
    *raw = (rc_str_t){p + j->i + 1, i - j->i - 1};
    j->i = i + 1;
    return 0;
}

int rc__json_expect_literal(rc__json_t *j, const char *lit, size_t len)
{
    if (j->n - j->i < len || memcmp(j->p + j->i, lit, len) != 0)
        return rc__json_malformed(j);
    j->i += len;
    return 0;
}

/* Validates and skips any JSON value. */
int rc__json_skip_value(rc__json_t *j, int depth)
{
    if (j->i >= j->n)
        return rc__json_malformed(j);
    char c = j->p[j->i];
    rc_str_t raw;
    bool flag;
    switch (c) {
    case '"':
        return rc__json_scan_string(j, &raw, &flag);
    case 't':
        return rc__json_expect_literal(j, "true", 4);
    case 'f':
        return rc__json_expect_literal(j, "false", 5);
    case 'n':
        return rc__json_expect_literal(j, "null", 4);
    case '{':
    case '[': {
        if (depth >= RC__JSON_MAX_DEPTH)
            return rc__json_malformed(j);
        char close = c == '{' ? '}' : ']';
        j->i++;
        rc__json_skip_ws(j);
        if (j->i < j->n && j->p[j->i] == close) {
            j->i++;
            return 0;
        }
        for (;;) {
            int rc;
            if (c == '{') {
                if (j->i >= j->n || j->p[j->i] != '"' ||
                    (rc = rc__json_scan_string(j, &raw, &flag)) != 0)
                    return rc__json_malformed(j);
                rc__json_skip_ws(j);
                if (j->i >= j->n || j->p[j->i] != ':')
                    return rc__json_malformed(j);
                j->i++;
                rc__json_skip_ws(j);
            }
            if ((rc = rc__json_skip_value(j, depth + 1)) != 0)
                return rc;
            rc__json_skip_ws(j);
            if (j->i >= j->n)
                return rc__json_malformed(j);
            if (j->p[j->i] == close) {
                j->i++;
                return 0;
            }
            if (j->p[j->i] != ',')
                return rc__json_malformed(j);
            j->i++;
            rc__json_skip_ws(j);
        }
    }
    default:
        if (c == '-' || rc__json_is_digit(c))
            return rc__json_scan_number(j, &flag);
        return rc__json_malformed(j);
    }
}

/* Scans a number; `*integral` when it has neither fraction nor exponent. */
int rc__json_scan_number(rc__json_t *j, bool *integral)
{
    const char *p = j->p;
    size_t i = j->i, n = j->n;
    if (i < n && p[i] == '-')
        i++;
    if (i >= n || !rc__json_is_digit(p[i]))
        return rc__json_malformed(j);
    if (p[i] == '0')
        i++;
    else
        while (i < n && rc__json_is_digit(p[i]))
            i++;
    *integral = true;
    if (i < n && p[i] == '.') {
        *integral = false;
        if (++i >= n || !rc__json_is_digit(p[i]))
            return rc__json_malformed(j);
        while (i < n && rc__json_is_digit(p[i]))
            i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        *integral = false;
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= n || !rc__json_is_digit(p[i]))
            return rc__json_malformed(j);
        while (i < n && rc__json_is_digit(p[i]))
            i++;
    }
    j->i = i;
    return 0;
}
