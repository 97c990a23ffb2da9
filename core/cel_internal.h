/* CEL internals shared by the lexer (cel_lex.c), the parser (cel_parse.c), the evaluator
 * (cel_eval.c), the JSON data walker (cel_data.c) and the value operations (cel_value.c).
 * Not part of the public API.
 *
 * A program is a tree of nodes kept in one array (children before parents, the root last), with
 * three side arrays: the child lists of n-ary nodes (&&, ||, list literals), the steps of paths
 * (`event.data.a["b"][0]`) and a pool with the bytes of every string literal and path name. It
 * is never written after compilation, so any number of threads may evaluate it. Evaluation walks
 * the tree recursively (its height is bounded by RC__CEL_MAX_DEPTH) with values on the stack. */
#ifndef RC_CORE_CEL_INTERNAL_H
#define RC_CORE_CEL_INTERNAL_H

#include "core/cel.h"
#include "core/event.h"
#include "core/str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Nesting limit: parentheses, lists, calls, unary operators and chains of comparisons all
 *  count, as in CESQL (RC_CESQL_MAX_DEPTH). Also the most steps one path may have. */
#define RC__CEL_MAX_DEPTH 64

/* ---- tokens (cel_lex.c) ---- */

typedef enum {
    RC__CT_END,
    RC__CT_IDENT,
    RC__CT_INT,    /* value in ival (INT64_MIN only when `negative` was asked for) */
    RC__CT_DOUBLE, /* value in dval */
    RC__CT_STRING, /* unescaped into the pool: str_off, str_len */
    RC__CT_LPAREN,
    RC__CT_RPAREN,
    RC__CT_LBRACK,
    RC__CT_RBRACK,
    RC__CT_LBRACE,
    RC__CT_DOT,
    RC__CT_COMMA,
    RC__CT_QUESTION,
    RC__CT_COLON,
    RC__CT_PLUS,
    RC__CT_MINUS,
    RC__CT_STAR,
    RC__CT_SLASH,
    RC__CT_PERCENT,
    RC__CT_EQ,
    RC__CT_NE,
    RC__CT_LT,
    RC__CT_LE,
    RC__CT_GT,
    RC__CT_GE,
    RC__CT_AND,
    RC__CT_OR,
    RC__CT_NOT,
    RC__CT_IN,
    RC__CT_TRUE,
    RC__CT_FALSE,
    RC__CT_NULL,
} rc__cel_tok_kind_t;

typedef struct {
    rc__cel_tok_kind_t kind;
    size_t pos; /* byte offset in the source */
    size_t len; /* bytes of source */
    int64_t ival;
    double dval;
    uint32_t str_off, str_len;
    bool int_max_plus_one; /* 9223372036854775808: valid only after a unary minus */
} rc__cel_tok_t;

/* A growable byte pool (string literals and names). */
typedef struct {
    char *p;
    size_t n, cap;
} rc__cel_pool_t;

/* The lexer: `src`/`len`, the position of the next token, the pool its strings go to, and the
 * first error (message in `err`, `failed` set). */
typedef struct {
    const char *src;
    size_t len;
    size_t pos;
    rc__cel_pool_t *pool;
    char *err;
    size_t err_len;
    bool failed;
} rc__cel_lexer_t;

/** Reads the next token into `t`. Returns false (with the message set) on a lexical error or
 *  a construct refused at the token level (bytes literals, unsigned integers). */
bool rc__cel_lex(rc__cel_lexer_t *lx, rc__cel_tok_t *t);

/** Records the first error: "column N: <message>", N counting characters up to byte offset
 *  `pos`. Returns false. */
bool rc__cel_fail(rc__cel_lexer_t *lx, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Appends `n` bytes to the pool; returns the offset or UINT32_MAX when out of memory. */
uint32_t rc__cel_pool_add(rc__cel_pool_t *pool, const char *p, size_t n);

/* ---- the program (cel_parse.c) ---- */

typedef enum {
    RC__CN_NULL,
    RC__CN_BOOL,
    RC__CN_INT,
    RC__CN_DOUBLE,
    RC__CN_STRING,
    RC__CN_LIST, /* kids[a .. a+b) */
    RC__CN_PATH, /* root attribute (key) or data, then steps[a .. a+b) */
    RC__CN_HAS,  /* has(path): a is the PATH node, whose last step (or root) is tested */
    RC__CN_NOT,  /* a */
    RC__CN_NEG,  /* a */
    RC__CN_AND,  /* kids[a .. a+b) */
    RC__CN_OR,   /* kids[a .. a+b) */
    RC__CN_EQ,   /* a, b */
    RC__CN_NE,
    RC__CN_LT,
    RC__CN_LE,
    RC__CN_GT,
    RC__CN_GE,
    RC__CN_IN,     /* a in b */
    RC__CN_TO_INT, /* int(a) */
    RC__CN_TO_DOUBLE,
    RC__CN_TO_STRING,
    RC__CN_STARTS, /* a.startsWith(b) */
    RC__CN_ENDS,
    RC__CN_CONTAINS,
} rc__cel_op_t;

typedef enum {
    RC__CS_KEY,   /* .name or ["name"]: pool[off .. off+len) */
    RC__CS_INDEX, /* [idx] */
} rc__cel_step_kind_t;

typedef struct {
    uint8_t kind;
    uint32_t off, len;
    int64_t idx;
} rc__cel_step_t;

typedef struct {
    uint8_t op;     /* rc__cel_op_t */
    uint8_t height; /* 1 for leaves, 1 + the tallest child otherwise */
    uint32_t col;   /* 1-based source column, for compile-time messages */
    uint32_t a, b;  /* children, or (first, count) of kids/steps; see rc__cel_op_t */
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            uint32_t off, len;
        } s; /* RC__CN_STRING */
        struct {
            bool data;       /* event.data */
            bool field;      /* the last selection was `.name` (what has() accepts) */
            uint32_t off;    /* attribute name in the pool (key.name.len bytes) */
            rc_ce_key_t key; /* the attribute, its name pointing into the pool */
        } path;
    } u;
} rc__cel_node_t;

struct rc_cel_s {
    rc__cel_node_t *nodes;
    rc__cel_step_t *steps;
    uint32_t *kids;
    char *pool;
    uint32_t root;
};

/* ---- values (cel_value.c, cel_data.c) ---- */

typedef enum {
    RC__CV_ERR,
    RC__CV_NULL,
    RC__CV_BOOL,
    RC__CV_INT,
    RC__CV_DOUBLE,
    RC__CV_STRING,
    RC__CV_MAP,  /* a JSON object of event data: s starts at its '{' */
    RC__CV_LIST, /* a JSON array of event data: s starts at its '[' */
} rc__cel_kind_t;

/* A value during evaluation. Strings from JSON data stay escaped (`esc`) and are decoded on the
 * fly by the string operations, so nothing is copied; strings made by string() live in `buf`
 * (`inl`), which keeps the value safe to copy by assignment. */
typedef struct {
    uint8_t kind; /* rc__cel_kind_t */
    bool esc;     /* STRING: s is the inside of a JSON string literal, escapes included */
    bool inl;     /* STRING: the bytes are buf[0 .. s.len) */
    union {
        bool b;
        int64_t i;
        double d;
        rc_str_t s;
    } u;
    char buf[32];
} rc__cel_val_t;

/** The bytes of a string value that is neither escaped nor inline (callers check `esc`). */
static inline rc_str_t rc__cel_str(const rc__cel_val_t *v)
{
    return v->inl ? (rc_str_t){v->buf, v->u.s.len} : v->u.s;
}

/** CEL equality (heterogeneous: int and double compare numerically, other kind mismatches
 *  are false). Returns 1, 0, or -1 when it is an error (equality of two JSON objects or
 *  arrays is not supported). */
int rc__cel_equal(const rc__cel_val_t *a, const rc__cel_val_t *b);

/** CEL ordering: -1, 0, 1; 2 when unordered (NaN); -2 when the kinds do not order together. */
int rc__cel_compare(const rc__cel_val_t *a, const rc__cel_val_t *b);

/** startsWith / endsWith / contains of two string values. */
bool rc__cel_starts_with(const rc__cel_val_t *s, const rc__cel_val_t *prefix);
bool rc__cel_ends_with(const rc__cel_val_t *s, const rc__cel_val_t *suffix);
bool rc__cel_contains(const rc__cel_val_t *s, const rc__cel_val_t *part);

/** int(), double(), string() of `in` (RC__CV_ERR when not convertible). */
rc__cel_val_t rc__cel_to_int(const rc__cel_val_t *in);
rc__cel_val_t rc__cel_to_double(const rc__cel_val_t *in);
rc__cel_val_t rc__cel_to_string(const rc__cel_val_t *in);

/* ---- JSON data (cel_data.c) ---- */

/** Whether `data` is one valid JSON value (surrounding whitespace allowed) in UTF-8. */
bool rc__cel_json_valid(rc_str_t data);

/** The value that starts at the first non-blank byte of `text` (already validated). Numbers
 *  are doubles (Dapr's rule); objects and arrays are MAP and LIST views. */
void rc__cel_json_value(rc_str_t text, rc__cel_val_t *out);

/** Member `key` (a STRING value) of the MAP `map` (the last one when the name repeats, as
 *  Go's decoder keeps). Returns true and `out` (may be NULL), or false when there is none. */
bool rc__cel_json_member(const rc__cel_val_t *map, const rc__cel_val_t *key, rc__cel_val_t *out);

/** Element `idx` of the LIST `list`; false when out of range. */
bool rc__cel_json_index(const rc__cel_val_t *list, int64_t idx, rc__cel_val_t *out);

/** Iterates the elements of a LIST: init, then next until it returns false (`out` may be NULL
 *  to step over an element). */
typedef struct {
    const char *p;
    size_t n, i;
    bool started;
} rc__cel_json_iter_t;

void rc__cel_json_iter_init(rc__cel_json_iter_t *it, const rc__cel_val_t *list);
bool rc__cel_json_iter_next(rc__cel_json_iter_t *it, rc__cel_val_t *out);

#endif
