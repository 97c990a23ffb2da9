/* The strict JSON scanner (RFC 8259) that core's JSON readers share: the structured-mode codec
 * (core/codec_json.c) and the CEL data walker (core/cel_data.c). It validates and steps over
 * values without building anything and allocates nothing: strings come back as views of the
 * input (with a flag when they hold escapes), numbers as their exact text.
 *
 * Internal to core/. Every function takes the scanner at the first byte of the token and
 * leaves `i` just past it; on malformed input it returns RC_EINVALID_EVENT (errors.h) and sets
 * `err` ("malformed JSON") when `err` is not NULL. */
#ifndef RC_CORE_JSON_SCAN_H
#define RC_CORE_JSON_SCAN_H

#include "core/arena.h"
#include "core/event.h"
#include "core/str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Nesting limit for values: deep enough for real payloads, bounded for the stack. */
#define RC__JSON_MAX_DEPTH 256

/** A scan position in `n` bytes at `p`. `arena` is for callers that unescape (the scanner
 *  itself never allocates); `err` may be NULL. */
typedef struct {
    const char *p;
    size_t n;
    size_t i;
    rc_arena_t *arena;
    rc_ce_error_t *err;
} rc__json_t;

static inline bool rc__json_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline bool rc__json_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/** The value of hexadecimal digit `c`, or -1. */
static inline int rc__json_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static inline void rc__json_skip_ws(rc__json_t *j)
{
    /* Compact bodies have no whitespace at most places this is called: test once, then loop. */
    if (j->i < j->n && !rc__json_is_ws(j->p[j->i]))
        return;
    while (j->i < j->n && rc__json_is_ws(j->p[j->i]))
        j->i++;
}

/** Records "malformed JSON" in j->err and returns RC_EINVALID_EVENT. */
int rc__json_malformed(rc__json_t *j);

/** Scans the string literal at p[i] == '"': `raw` gets the bytes between the quotes,
 *  `*escaped` whether they hold escapes. Raw control characters, malformed escapes and lone
 *  surrogates are errors. */
int rc__json_scan_string(rc__json_t *j, rc_str_t *raw, bool *escaped);

/** Scans a number; `*integral` when it has neither fraction nor exponent. */
int rc__json_scan_number(rc__json_t *j, bool *integral);

/** Scans the literal `lit` (`len` bytes: true, false, null). */
int rc__json_expect_literal(rc__json_t *j, const char *lit, size_t len);

/** Validates and skips any JSON value; `depth` is the nesting level of the value (0 at the
 *  top), refused past RC__JSON_MAX_DEPTH. */
int rc__json_skip_value(rc__json_t *j, int depth);

/** Unescapes the inside of a string literal that rc__json_scan_string accepted into `out` (at
 *  least `in.len` bytes: an escape is never shorter than what it stands for). Returns the
 *  length, or -1 on a lone surrogate. */
long rc__json_unescape(rc_str_t in, char *out);

/** Writes code point `cp` (at most U+10FFFF, not a surrogate) as UTF-8 into `o` (4 bytes of
 *  room); returns the bytes written. */
size_t rc__json_put_utf8(char *o, uint32_t cp);

#endif
