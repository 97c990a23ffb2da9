/* CESQL lexer: expression text -> tokens, one at a time, for the parser (cesql_parse.c).
 *
 * Tokens follow the lexer of the spec's ANTLR grammar (CESQLLexer.g4): keywords are
 * case-insensitive (the grammar lexes an upper-cased stream), integers are bare digits (the
 * sign is the parser's business, so that -2147483648 can be a literal), strings take single or
 * double quotes. A word of letters and digits is an attribute name or a keyword; a word of
 * letters and '_' can only be a function name, so the lexer tells the two apart and the parser
 * can say which rule a bad name broke. */
#include "core/cesql_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef rc__cesql_lexer_t lexer_t;
typedef rc__cesql_tok_t tok_t;

static const struct {
    const char *word;
    rc__cesql_tok_kind_t kind;
} keywords[] = {
    {"AND", RC__T_AND},       {"OR", RC__T_OR},     {"XOR", RC__T_XOR},
    {"NOT", RC__T_NOT},       {"LIKE", RC__T_LIKE}, {"IN", RC__T_IN},
    {"EXISTS", RC__T_EXISTS}, {"TRUE", RC__T_TRUE}, {"FALSE", RC__T_FALSE},
};

void rc__cesql_syntax_verror(lexer_t *lx, uint32_t pos, const char *expected, const char *fmt,
                             va_list ap)
{
    if (lx->failed)
        return;
    lx->failed = true;
    if (lx->err == NULL)
        return;
    char msg[160];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    rc__cesql_set_error(lx->err, RC_CESQL_ERR_PARSE, pos, expected, "%s", msg);
}

__attribute__((format(printf, 4, 5))) static void fail(lexer_t *lx, uint32_t pos,
                                                       const char *expected, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rc__cesql_syntax_verror(lx, pos, expected, fmt, ap);
    va_end(ap);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool word_eq_ci(const char *w, size_t n, const char *upper)
{
    size_t i = 0;
    for (; i < n && upper[i] != '\0'; i++) {
        char c = w[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 32);
        if (c != upper[i])
            return false;
    }
    return i == n && upper[i] == '\0';
}

/* Lexes a quoted string starting at lx->at (the quote). Inside, a backslash escapes the next
 * byte: "\<quote>" is the quote itself, any other pair is kept verbatim so LIKE patterns see
 * their "\%" and "\_" escapes (as the Go and Java SDKs do). A doubled quote is one quote (SQL). */
static bool lex_string(lexer_t *lx, tok_t *t)
{
    const char *s = lx->src;
    char q = s[lx->at];
    uint32_t i = lx->at + 1;
    char *out = rc__cesql_arena_alloc(lx->arena, (size_t)(lx->len - lx->at) + 1);
    if (out == NULL) {
        fail(lx, lx->at, NULL, "out of memory");
        return false;
    }
    uint32_t n = 0;
    for (;;) {
        if (i >= lx->len) {
            fail(lx, lx->at, "closing quote", "unterminated string literal");
            return false;
        }
        char c = s[i];
        if (c == '\\' && i + 1 < lx->len) {
            if (s[i + 1] != q)
                out[n++] = '\\';
            out[n++] = s[i + 1];
            i += 2;
        } else if (c == q) {
            if (i + 1 < lx->len && s[i + 1] == q) {
                out[n++] = q;
                i += 2;
            } else {
                i++;
                break;
            }
        } else {
            out[n++] = c;
            i++;
        }
    }
    out[n] = '\0';
    t->kind = RC__T_STRING;
    t->str = out;
    t->str_len = n;
    t->len = i - lx->at;
    lx->at = i;
    return true;
}

/* Punctuation and operators: sets t->kind and returns the token's width, 0 when `c` starts no
 * operator, -1 after a failure. */
static int lex_operator(lexer_t *lx, tok_t *t, char c, char c2)
{
    switch (c) {
    case '(':
        t->kind = RC__T_LPAREN;
        return 1;
    case ')':
        t->kind = RC__T_RPAREN;
        return 1;
    case ',':
        t->kind = RC__T_COMMA;
        return 1;
    case '+':
        t->kind = RC__T_PLUS;
        return 1;
    case '-':
        t->kind = RC__T_MINUS;
        return 1;
    case '*':
        t->kind = RC__T_STAR;
        return 1;
    case '/':
        t->kind = RC__T_SLASH;
        return 1;
    case '%':
        t->kind = RC__T_PERCENT;
        return 1;
    case '=':
        t->kind = RC__T_EQ;
        return 1;
    case '!':
        if (c2 != '=') {
            fail(lx, lx->at, "'!='", "unexpected character '!'");
            return -1;
        }
        t->kind = RC__T_NE;
        return 2;
    case '<':
        t->kind = c2 == '=' ? RC__T_LE : c2 == '>' ? RC__T_NE : RC__T_LT;
        return t->kind == RC__T_LT ? 1 : 2;
    case '>':
        t->kind = c2 == '=' ? RC__T_GE : RC__T_GT;
        return t->kind == RC__T_GT ? 1 : 2;
    default:
        return 0;
    }
}

/* Digits up to 2^31 + 1 are kept exactly; past that only the overflow matters, reported by the
 * parser, which knows whether a '-' came before. */
static void lex_int(tok_t *t, const char *word, uint32_t w)
{
    int64_t v = 0;
    for (uint32_t i = 0; i < w; i++) {
        v = v * 10 + (word[i] - '0');
        if (v > 2147483648LL) {
            t->int_overflow = true;
            v = 2147483648LL;
        }
    }
    t->kind = RC__T_INT;
    t->ival = v;
}

/* A word of letters, digits and '_' at lx->at: an integer, a function name, a keyword or an
 * attribute name. Returns its width, 0 after a failure. */
static uint32_t lex_word(lexer_t *lx, tok_t *t)
{
    const char *s = lx->src;
    uint32_t e = lx->at;
    bool digits = true, under = false;
    while (e < lx->len && (rc__cesql_is_alpha(s[e]) || is_digit(s[e]) || s[e] == '_')) {
        digits &= is_digit(s[e]);
        under |= s[e] == '_';
        e++;
    }
    uint32_t w = e - lx->at;
    const char *word = s + lx->at;
    if (digits) {
        lex_int(t, word, w);
    } else if (under) {
        /* Function names are letters and '_' (FUNCTION_IDENTIFIER_WITH_UNDERSCORE). */
        bool ok = rc__cesql_is_alpha(word[0]);
        for (uint32_t i = 0; i < w && ok; i++)
            ok = rc__cesql_is_alpha(word[i]) || word[i] == '_';
        if (!ok) {
            fail(lx, lx->at, NULL,
                 "invalid name '%.*s': attribute names are letters and digits, function "
                 "names letters and '_'",
                 (int)(w > 40 ? 40 : w), word);
            return 0;
        }
        t->kind = RC__T_FNAME;
    } else {
        t->kind = RC__T_IDENT;
        for (size_t k = 0; k < sizeof(keywords) / sizeof(keywords[0]); k++) {
            if (word_eq_ci(word, w, keywords[k].word)) {
                t->kind = keywords[k].kind;
                break;
            }
        }
    }
    return w;
}

bool rc__cesql_lex(lexer_t *lx, tok_t *t)
{
    const char *s = lx->src;
    while (lx->at < lx->len &&
           (s[lx->at] == ' ' || s[lx->at] == '\t' || s[lx->at] == '\r' || s[lx->at] == '\n'))
        lx->at++;
    memset(t, 0, sizeof(*t));
    t->pos = lx->at;
    if (lx->at >= lx->len) {
        t->kind = RC__T_END;
        return true;
    }
    char c = s[lx->at];
    if (c == '\'' || c == '"')
        return lex_string(lx, t);
    int w = lex_operator(lx, t, c, lx->at + 1 < lx->len ? s[lx->at + 1] : '\0');
    if (w < 0)
        return false;
    if (w == 0) {
        if (!rc__cesql_is_alpha(c) && !is_digit(c) && c != '_') {
            if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
                fail(lx, lx->at, NULL, "unexpected character '%c'", c);
            else
                fail(lx, lx->at, NULL, "unexpected byte 0x%02x", (unsigned char)c);
            return false;
        }
        w = (int)lex_word(lx, t);
        if (w == 0)
            return false;
    }
    t->len = (uint32_t)w;
    lx->at += (uint32_t)w;
    return true;
}
