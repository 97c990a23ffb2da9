/* CESQL internals shared by the lexer (cesql_lex.c), the parser (cesql_parse.c), the compiler
 * (cesql_compile.c), the virtual machine (cesql_eval.c), the LIKE matcher (cesql_like.c) and the
 * built-in functions (cesql_func.c). Not part of the public API. */
#ifndef RC_CORE_CESQL_INTERNAL_H
#define RC_CORE_CESQL_INTERNAL_H

#include "core/cesql.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- compile-time memory: a bump arena freed in one call ---- */

typedef struct rc__cesql_block_s rc__cesql_block_t;
typedef struct {
    rc__cesql_block_t *head;
    size_t next_cap; /* size of the next block; grows so small programs stay small */
} rc__cesql_arena_t;

void *rc__cesql_arena_alloc(rc__cesql_arena_t *a, size_t size);
void rc__cesql_arena_free(rc__cesql_arena_t *a);

/* ---- tokens (cesql_lex.c) ---- */

typedef enum {
    RC__T_END,
    RC__T_INT,    /* digits; value in tok.ival (or overflow) */
    RC__T_STRING, /* unescaped into tok.str */
    RC__T_IDENT,  /* letters and digits, not a keyword */
    RC__T_FNAME,  /* letters and '_' with at least one '_': only valid as a function name */
    RC__T_LPAREN,
    RC__T_RPAREN,
    RC__T_COMMA,
    RC__T_PLUS,
    RC__T_MINUS,
    RC__T_STAR,
    RC__T_SLASH,
    RC__T_PERCENT,
    RC__T_EQ,
    RC__T_NE, /* != and <> */
    RC__T_LT,
    RC__T_LE,
    RC__T_GT,
    RC__T_GE,
    RC__T_AND,
    RC__T_OR,
    RC__T_XOR,
    RC__T_NOT,
    RC__T_LIKE,
    RC__T_IN,
    RC__T_EXISTS,
    RC__T_TRUE,
    RC__T_FALSE,
} rc__cesql_tok_kind_t;

typedef struct {
    rc__cesql_tok_kind_t kind;
    uint32_t pos, len; /* source span */
    int64_t ival;      /* RC__T_INT, up to 2^31 (checked by the parser) */
    bool int_overflow; /* RC__T_INT over 2^31 */
    char *str;         /* RC__T_STRING contents (arena, NUL-terminated) */
    uint32_t str_len;
} rc__cesql_tok_t;

/* The source being read and the first syntax error met, shared by the lexer and the parser. */
typedef struct {
    const char *src;
    uint32_t len;
    uint32_t at;              /* next byte to lex */
    rc__cesql_arena_t *arena; /* string literals */
    rc_cesql_error_t *err;    /* may be NULL */
    bool failed;
} rc__cesql_lexer_t;

/** Lexes the token at lx->at into `t` (RC__T_END at the end) and moves past it. Returns false
 *  after a syntax error (recorded in the lexer). */
bool rc__cesql_lex(rc__cesql_lexer_t *lx, rc__cesql_tok_t *t);

/** Records a syntax error at byte `pos` (RC_CESQL_ERR_PARSE; `expected` may be NULL) unless
 *  one was recorded already: the first error is the one reported. */
void rc__cesql_syntax_verror(rc__cesql_lexer_t *lx, uint32_t pos, const char *expected,
                             const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/** ASCII letters: the letters of CESQL names. */
static inline bool rc__cesql_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ---- syntax tree ---- */

typedef enum {
    RC__N_LIT,    /* lit */
    RC__N_ATTR,   /* name */
    RC__N_EXISTS, /* name */
    RC__N_NOT,    /* kids[0] */
    RC__N_NEG,    /* kids[0] */
    RC__N_BIN,    /* op; kids[0] op kids[1] */
    RC__N_LOGIC,  /* chain kids[0] ops[0] kids[1] ops[1] ... kids[n-1], right-associative */
    RC__N_LIKE,   /* kids[0] LIKE pattern (str/len); negate */
    RC__N_IN,     /* kids[0] IN (kids[1..]); negate */
    RC__N_CALL,   /* name(kids...) */
} rc__cesql_kind_t;

/* Binary operators (RC__N_BIN) and logic operators (RC__N_LOGIC chains). */
typedef enum {
    RC__OP_MUL,
    RC__OP_DIV,
    RC__OP_MOD,
    RC__OP_ADD,
    RC__OP_SUB,
    RC__OP_EQ,
    RC__OP_NE,
    RC__OP_LT,
    RC__OP_LE,
    RC__OP_GT,
    RC__OP_GE,
    RC__OP_AND,
    RC__OP_OR,
    RC__OP_XOR,
} rc__cesql_op_t;

typedef struct rc__cesql_node_s rc__cesql_node_t;
struct rc__cesql_node_s {
    uint8_t kind;         /* rc__cesql_kind_t */
    uint8_t op;           /* rc__cesql_op_t for RC__N_BIN */
    uint8_t negate;       /* NOT LIKE / NOT IN */
    uint8_t type;         /* static result type (rc_cesql_type_t), 0 = known only at run time */
    uint32_t pos;         /* byte offset of the node's first token (calls: the name) */
    rc_cesql_value_t lit; /* RC__N_LIT; for RC__N_LIKE the pattern as a string */
    const char *name;     /* attribute (lower-cased) or function name, NUL-terminated */
    uint32_t name_len;
    uint32_t nkids;
    rc__cesql_node_t **kids;
    uint8_t *ops; /* RC__N_LOGIC: nkids - 1 operators */
    int fn;       /* RC__N_CALL: index into rc__cesql_funcs after resolution */
};

/** Parses an expression into a tree allocated from `arena`. Returns the root or NULL with
 *  `err` filled (RC_CESQL_ERR_PARSE). Rejects nesting deeper than RC_CESQL_MAX_DEPTH. */
rc__cesql_node_t *rc__cesql_parse(const char *expr, size_t len, rc__cesql_arena_t *arena,
                                  rc_cesql_error_t *err);

/** Formats a compile error into `err` (may be NULL). */
void rc__cesql_set_error(rc_cesql_error_t *err, rc_cesql_errkind_t kind, uint32_t pos,
                         const char *expected, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- built-in functions ---- */

/* Parameter type "any": the function takes the argument as it is (the casting functions). */
#define RC__CESQL_ANY 0

/* Scratch memory of one evaluation: a bump allocator over caller memory. */
typedef struct {
    char *base;
    size_t len;
    size_t used;
} rc__cesql_scratch_t;

/* A built-in function: min_args..max_args (max_args < 0: variadic), parameter types (the last
 * one repeats for variadic tails) and the return type. `call` gets the arguments already cast
 * to the parameter types, writes the result (and on error the function's own error value) to
 * `out` and returns RC_CESQL_OK or an error kind. */
typedef struct {
    const char *name;
    int8_t min_args;
    int8_t max_args;
    uint8_t ret;
    uint8_t params[3];
    rc_cesql_errkind_t (*call)(const rc_cesql_value_t *args, uint32_t n, rc__cesql_scratch_t *s,
                               rc_cesql_value_t *out);
} rc__cesql_func_t;

extern const rc__cesql_func_t rc__cesql_funcs[];
extern const uint32_t rc__cesql_nfuncs;

/** Finds a built-in by case-insensitive name and argument count. Returns its index, -1 when no
 *  function has that name, -2 when the name exists but not with `nargs` arguments. */
int rc__cesql_func_find(const char *name, size_t len, uint32_t nargs);

/** Parameter type of argument `i` of function `f`. */
uint8_t rc__cesql_func_param(const rc__cesql_func_t *f, uint32_t i);

/* ---- casts and strings ---- */

/** Allocates `n` bytes of scratch, NULL when exhausted. */
char *rc__cesql_scratch_alloc(rc__cesql_scratch_t *s, size_t n);

/** Casts `v` in place to `type` (spec 3.7). Returns RC_CESQL_OK, RC_CESQL_ERR_CAST (the value
 *  becomes the zero value of `type`) or RC_CESQL_ERR_GENERIC (scratch exhausted). */
rc_cesql_errkind_t rc__cesql_cast(rc_cesql_value_t *v, uint32_t type, rc__cesql_scratch_t *s);

/** Creates the UTF-8 locale LOWER and UPPER use for non-ASCII letters. Called once (under
 *  pthread_once) by rc_cesql_compile, before any program can be evaluated. */
void rc__cesql_locale_init(void);

/** Parses a base-10 32-bit integer with optional sign: the String -> Integer cast. */
bool rc__cesql_parse_int(const char *s, size_t len, int32_t *out);

/** Formats `v` in base 10 into `buf` (at least 12 bytes); returns the length. */
uint32_t rc__cesql_format_int(int32_t v, char *buf);

/** Number of characters of a UTF-8 string. A character starts at offset 0 and at every byte
 *  that is not a continuation byte, so malformed input never loses or splits bytes. */
uint32_t rc__cesql_utf8_len(const char *s, size_t len);

/** Byte offset of character `n` (0-based) counted from the start, clamped to `len`. */
size_t rc__cesql_utf8_offset(const char *s, size_t len, uint32_t n);

/** Byte equality of two equal-length strings. Compares the first and last 8 bytes inline
 *  before calling memcmp, so most unequal attribute values of the same length (event types
 *  share long prefixes) are told apart without a call. */
static inline bool rc__cesql_bytes_eq(const char *a, const char *b, size_t n)
{
    if (n >= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y)
            return false;
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        if (x != y)
            return false;
        return n <= 16 || memcmp(a + 8, b + 8, n - 16) == 0;
    }
    return n == 0 || memcmp(a, b, n) == 0;
}

/* ---- LIKE ---- */

/* A compiled LIKE pattern: the pattern split at unescaped '%' into segments; each segment is a
 * run of literal bytes and '_' wildcards (one character each). */
typedef struct {
    uint32_t off;     /* into rc__cesql_like_t.bytes */
    uint32_t len;     /* bytes, '_' stored as RC__LIKE_ANY markers in `any` */
    uint32_t any_off; /* into rc__cesql_like_t.any: one flag byte per segment byte */
    uint32_t has_any; /* segment contains a '_' wildcard */
} rc__cesql_seg_t;

typedef struct {
    uint32_t nsegs; /* >= 1; nsegs - 1 '%' wildcards separate them */
    rc__cesql_seg_t *segs;
    char *bytes;  /* literal bytes of all segments */
    uint8_t *any; /* 1 where the segment byte is a '_' wildcard */
} rc__cesql_like_t;

/** Compiles `pattern` (escapes: "\%" and "\_" are literal; any other backslash is a literal
 *  backslash). Memory from `arena`. Returns 0 or -ENOMEM. */
int rc__cesql_like_compile(const char *pattern, size_t len, rc__cesql_arena_t *arena,
                           rc__cesql_like_t *out);

/** True when `s` matches the compiled pattern. O(len x pattern) at worst, no recursion. */
bool rc__cesql_like_match(const rc__cesql_like_t *p, const char *s, size_t len);

/* ---- program ---- */

typedef enum {
    RC__I_CONST,       /* push consts[b] */
    RC__I_ATTR,        /* push attribute a (missing: MissingAttributeError) */
    RC__I_EXISTS,      /* push EXISTS attribute a */
    RC__I_NOT,         /* top = NOT bool(top) */
    RC__I_NEG,         /* top = -int(top) */
    RC__I_BOOL,        /* top = bool(top) */
    RC__I_ARITH,       /* flag = op: top-1 = int(top-1) op int(top) */
    RC__I_CMP,         /* flag = op: top-1 = top-1 op top */
    RC__I_XOR,         /* top-1 = bool(top-1) XOR bool(top), both already Boolean */
    RC__I_AND_JUMP,    /* top = bool(top); false: jump to b keeping it, true: pop */
    RC__I_OR_JUMP,     /* top = bool(top); true: jump to b keeping it, false: pop */
    RC__I_LIKE,        /* top = string(top) LIKE likes[b], negated when flag */
    RC__I_IN_TEST,     /* element on top, x below: pop element; equal: top = !flag, jump b */
    RC__I_IN_END,      /* no element matched: top = flag (false, or true for NOT IN) */
    RC__I_CALL,        /* a arguments on top, function b */
    RC__I_ATTR_EQ_STR, /* push (attribute a = consts[b]) (string constant), negated when flag */
    RC__I_ATTR_LIKE,   /* push (attribute a LIKE likes[b]), negated when flag */
    RC__I_ATTR_IN,     /* push (attribute a IN sets[b]) (all elements constant), neg. flag */
} rc__cesql_opcode_t;

typedef struct {
    uint8_t op;
    uint8_t flag;
    uint16_t a;
    uint32_t b;
} rc__cesql_insn_t;

_Static_assert(sizeof(rc__cesql_insn_t) == 8, "instructions are one word");

/* A constant IN set, with every element pre-cast to each possible target type. */
typedef struct {
    uint32_t n;
    rc_cesql_value_t *as_str; /* always castable */
    int32_t *as_int;
    uint8_t *int_ok; /* element casts to Integer */
    uint8_t *as_bool;
    uint8_t *bool_ok; /* element casts to Boolean */
} rc__cesql_set_t;

struct rc_cesql_program_s {
    /* Programs that are one `core-attribute = 'text'` comparison (the most common trigger
     * filter) are matched against records without entering the virtual machine. */
    int16_t fast_core;   /* core attribute slot, or -1 when there is no fast path */
    uint8_t fast_negate; /* != / <> */
    uint32_t fast_len;
    const char *fast_str;
    rc__cesql_insn_t *code;
    uint32_t ncode;
    uint32_t max_stack;
    uint32_t root_type; /* static result type, 0 when it depends on the event */
    uint32_t nconsts, nattrs, nlikes, nsets;
    rc_cesql_value_t *consts;
    rc_cesql_attr_t *attrs;
    rc__cesql_like_t *likes;
    rc__cesql_set_t *sets;
    rc__cesql_arena_t mem; /* everything above lives here */
};

#endif
