/* The CEL lexer: CEL's token grammar (cel-spec, "Syntax"), with string literals unescaped into
 * the program's pool as they are read. Constructs that CEL has but ringcast does not support
 * (bytes literals, unsigned integers) are refused here, naming the construct and its column. */
#include "core/cel_internal.h"
#include "core/json_scan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest number literal read (CEL has no use for more digits than a double holds). */
#define NUM_MAX 128

bool rc__cel_fail(rc__cel_lexer_t *lx, size_t pos, const char *fmt, ...)
{
    if (lx->failed)
        return false;
    lx->failed = true;
    if (lx->err == NULL || lx->err_len == 0)
        return false;
    /* Columns count characters, as CEL's own messages do: UTF-8 continuation bytes are not
     * columns of their own. */
    size_t col = 1;
    for (size_t i = 0; i < pos && i < lx->len; i++)
        col += ((unsigned char)lx->src[i] & 0xc0) != 0x80;
    int k = snprintf(lx->err, lx->err_len, "column %zu: ", col);
    if (k >= 0 && (size_t)k < lx->err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(lx->err + k, lx->err_len - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return false;
}

uint32_t rc__cel_pool_add(rc__cel_pool_t *pool, const char *p, size_t n)
{
    if (pool->n + n > pool->cap) {
        size_t cap = pool->cap ? pool->cap : 256;
        while (cap < pool->n + n)
            cap *= 2;
        char *np = realloc(pool->p, cap);
        if (np == NULL)
            return UINT32_MAX;
        pool->p = np;
        pool->cap = cap;
    }
    uint32_t off = (uint32_t)pool->n;
    if (n > 0)
        memcpy(pool->p + pool->n, p, n);
    pool->n += n;
    return off;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char peek(const rc__cel_lexer_t *lx, size_t at)
{
    return at < lx->len ? lx->src[at] : '\0';
}

/* `ndig` digits of base `base` at `at` as a number, or -1. */
static long digits(const rc__cel_lexer_t *lx, size_t at, int ndig, int base)
{
    long v = 0;
    for (int k = 0; k < ndig; k++) {
        int d = rc__json_hexval(peek(lx, at + (size_t)k));
        if (d < 0 || d >= base || at + (size_t)k >= lx->len)
            return -1;
        v = v * base + d;
    }
    return v;
}

/* One escape at src[*i] == '\\' of a string literal: the bytes it stands for into `out` (room
 * for 4), their count in `*n`. CEL's escapes: \a \b \f \n \r \t \v \\ \' \" \` \? , \xHH,
 * \uHHHH, \UHHHHHHHH and \ooo (in strings, \x and \ooo name code points, as cel-go reads them). */
static bool escape(rc__cel_lexer_t *lx, size_t *i, char *out, size_t *n)
{
    static const char simple_in[] = "abfnrtv\\'\"`?", simple_out[] = "\a\b\f\n\r\t\v\\'\"`?";
    size_t at = *i;
    char c = peek(lx, at + 1);
    const char *s = c ? strchr(simple_in, c) : NULL;
    if (s != NULL) {
        out[0] = simple_out[s - simple_in];
        *n = 1;
        *i = at + 2;
        return true;
    }
    long cp;
    size_t width;
    if (c == 'x' || c == 'X')
        width = 2, cp = digits(lx, at + 2, 2, 16);
    else if (c == 'u')
        width = 4, cp = digits(lx, at + 2, 4, 16);
    else if (c == 'U')
        width = 8, cp = digits(lx, at + 2, 8, 16);
    else if (c >= '0' && c <= '3')
        width = 3, cp = digits(lx, at + 1, 3, 8);
    else
        return rc__cel_fail(lx, at, "invalid escape sequence in string literal");
    if (cp < 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return rc__cel_fail(lx, at, "invalid escape sequence in string literal");
    *n = rc__json_put_utf8(out, (uint32_t)cp);
    *i = at + (c >= '0' && c <= '3' ? 1 : 2) + width;
    return true;
}

/* A string literal whose opening quote (one or three) starts at `at`; `raw` for r"...". */
static bool lex_string(rc__cel_lexer_t *lx, size_t at, bool raw, rc__cel_tok_t *t)
{
    char q = lx->src[at];
    bool triple = peek(lx, at + 1) == q && peek(lx, at + 2) == q;
    size_t i = at + (triple ? 3 : 1);
    t->str_off = (uint32_t)lx->pool->n;
    for (;;) {
        if (i >= lx->len || (!triple && (lx->src[i] == '\n' || lx->src[i] == '\r')))
            return rc__cel_fail(lx, at, "unterminated string literal");
        char c = lx->src[i];
        if (c == q && (!triple || (peek(lx, i + 1) == q && peek(lx, i + 2) == q))) {
            i += triple ? 3 : 1;
            break;
        }
        char buf[4] = {c};
        size_t n = 1;
        if (c == '\\' && !raw) {
            if (!escape(lx, &i, buf, &n))
                return false;
        } else {
            i++;
        }
        if (rc__cel_pool_add(lx->pool, buf, n) == UINT32_MAX)
            return rc__cel_fail(lx, at, "out of memory");
    }
    t->kind = RC__CT_STRING;
    t->str_len = (uint32_t)(lx->pool->n - t->str_off);
    t->len = i - t->pos;
    lx->pos = i;
    return true;
}

/* Decimal or hexadecimal integer digits of t->pos .. end into t->ival. */
static bool int_value(rc__cel_lexer_t *lx, rc__cel_tok_t *t, size_t start, size_t end, int base)
{
    uint64_t v = 0;
    for (size_t k = start; k < end; k++) {
        uint64_t d = (uint64_t)rc__json_hexval(lx->src[k]);
        if (v > (UINT64_MAX - d) / (uint64_t)base)
            return rc__cel_fail(lx, t->pos, "integer literal out of range");
        v = v * (uint64_t)base + d;
    }
    if (v > (uint64_t)INT64_MAX + 1)
        return rc__cel_fail(lx, t->pos, "integer literal out of range");
    t->int_max_plus_one = v == (uint64_t)INT64_MAX + 1;
    t->ival = t->int_max_plus_one ? INT64_MIN : (int64_t)v;
    t->kind = RC__CT_INT;
    return true;
}

/* A number literal at t->pos: 12, 0x1F, 1.5, .5, 1e3, 2.5e-3. */
static bool lex_number(rc__cel_lexer_t *lx, rc__cel_tok_t *t)
{
    size_t i = t->pos;
    bool is_double = false;
    if (peek(lx, i) == '0' && (peek(lx, i + 1) == 'x' || peek(lx, i + 1) == 'X')) {
        i += 2;
        while (rc__json_hexval(peek(lx, i)) >= 0)
            i++;
        if (i == t->pos + 2)
            return rc__cel_fail(lx, t->pos, "malformed hexadecimal literal");
        if (!int_value(lx, t, t->pos + 2, i, 16))
            return false;
    } else {
        while (is_digit(peek(lx, i)))
            i++;
        if (peek(lx, i) == '.' && is_digit(peek(lx, i + 1))) {
            is_double = true;
            for (i++; is_digit(peek(lx, i)); i++) {
            }
        }
        char e = peek(lx, i);
        size_t x = i + 1 + (peek(lx, i + 1) == '+' || peek(lx, i + 1) == '-');
        if ((e == 'e' || e == 'E') && is_digit(peek(lx, x))) {
            is_double = true;
            for (i = x; is_digit(peek(lx, i)); i++) {
            }
        }
        if (!is_double && !int_value(lx, t, t->pos, i, 10))
            return false;
    }
    if (is_double) {
        char buf[NUM_MAX];
        if (i - t->pos >= sizeof(buf))
            return rc__cel_fail(lx, t->pos, "number literal too long");
        memcpy(buf, lx->src + t->pos, i - t->pos);
        buf[i - t->pos] = '\0';
        t->dval = strtod(buf, NULL);
        t->kind = RC__CT_DOUBLE;
    }
    char c = peek(lx, i);
    if (c == 'u' || c == 'U')
        return rc__cel_fail(lx, t->pos, "unsupported unsigned integer literal");
    if (is_alpha(c) || is_digit(c) || c == '.')
        return rc__cel_fail(lx, i, "malformed number literal");
    t->len = i - t->pos;
    lx->pos = i;
    return true;
}

/* An identifier, keyword, or the prefix of a raw or bytes string literal. */
static bool lex_word(rc__cel_lexer_t *lx, rc__cel_tok_t *t)
{
    size_t i = t->pos;
    while (i < lx->len && (is_alpha(lx->src[i]) || is_digit(lx->src[i])))
        i++;
    size_t n = i - t->pos;
    const char *w = lx->src + t->pos;
    char q = peek(lx, i);
    if ((q == '"' || q == '\'') && n <= 2) {
        bool bytes = memchr(w, 'b', n) || memchr(w, 'B', n);
        bool raw = memchr(w, 'r', n) || memchr(w, 'R', n);
        if (bytes && (n == 1 || raw))
            return rc__cel_fail(lx, t->pos, "unsupported bytes literal");
        if (raw && n == 1)
            return lex_string(lx, i, true, t);
    }
    static const struct {
        const char *word;
        rc__cel_tok_kind_t kind;
    } kw[] = {
        {"true", RC__CT_TRUE}, {"false", RC__CT_FALSE}, {"null", RC__CT_NULL}, {"in", RC__CT_IN}};
    t->kind = RC__CT_IDENT;
    for (size_t k = 0; k < sizeof(kw) / sizeof(kw[0]); k++)
        if (strlen(kw[k].word) == n && memcmp(w, kw[k].word, n) == 0)
            t->kind = kw[k].kind;
    t->len = n;
    lx->pos = i;
    return true;
}

/* Operators and punctuation. */
static bool lex_punct(rc__cel_lexer_t *lx, rc__cel_tok_t *t)
{
    static const struct {
        const char *text;
        rc__cel_tok_kind_t kind;
    } ops[] = {
        {"==", RC__CT_EQ},      {"!=", RC__CT_NE},    {"<=", RC__CT_LE},     {">=", RC__CT_GE},
        {"&&", RC__CT_AND},     {"||", RC__CT_OR},    {"<", RC__CT_LT},      {">", RC__CT_GT},
        {"!", RC__CT_NOT},      {"(", RC__CT_LPAREN}, {")", RC__CT_RPAREN},  {"[", RC__CT_LBRACK},
        {"]", RC__CT_RBRACK},   {"{", RC__CT_LBRACE}, {".", RC__CT_DOT},     {",", RC__CT_COMMA},
        {"?", RC__CT_QUESTION}, {":", RC__CT_COLON},  {"+", RC__CT_PLUS},    {"-", RC__CT_MINUS},
        {"*", RC__CT_STAR},     {"/", RC__CT_SLASH},  {"%", RC__CT_PERCENT},
    };
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        size_t n = strlen(ops[k].text);
        if (lx->len - t->pos >= n && memcmp(lx->src + t->pos, ops[k].text, n) == 0) {
            t->kind = ops[k].kind;
            t->len = n;
            lx->pos = t->pos + n;
            return true;
        }
    }
    unsigned char c = (unsigned char)lx->src[t->pos];
    if (c == '=')
        return rc__cel_fail(lx, t->pos, "unexpected '=' (comparison is '==')");
    if (c == '&' || c == '|')
        return rc__cel_fail(lx, t->pos, "unexpected '%c' (logical operators are '%c%c')", c, c, c);
    if (c >= 0x21 && c < 0x7f)
        return rc__cel_fail(lx, t->pos, "unexpected character '%c'", c);
    return rc__cel_fail(lx, t->pos, "unexpected character 0x%02x", c);
}

bool rc__cel_lex(rc__cel_lexer_t *lx, rc__cel_tok_t *t)
{
    if (lx->failed)
        return false;
    for (;;) {
        while (lx->pos < lx->len && strchr(" \t\n\r\f", lx->src[lx->pos]) && lx->src[lx->pos])
            lx->pos++;
        if (peek(lx, lx->pos) != '/' || peek(lx, lx->pos + 1) != '/')
            break;
        while (lx->pos < lx->len && lx->src[lx->pos] != '\n')
            lx->pos++;
    }
    *t = (rc__cel_tok_t){.kind = RC__CT_END, .pos = lx->pos};
    if (lx->pos >= lx->len)
        return true;
    char c = lx->src[lx->pos];
    if (is_digit(c) || (c == '.' && is_digit(peek(lx, lx->pos + 1))))
        return lex_number(lx, t);
    if (is_alpha(c))
        return lex_word(lx, t);
    if (c == '"' || c == '\'')
        return lex_string(lx, lx->pos, false, t);
    return lex_punct(lx, t);
}
