/* CloudEvents SQL (CESQL v1.0) expressions, compiled once and evaluated per event.
 *
 * rc_cesql_compile parses an expression, resolves its functions, folds its constant parts and
 * emits a compact program. rc_cesql_eval runs that program against one event, reading the
 * event's attributes through a caller-supplied accessor; it never allocates and never fails:
 * like the language itself, evaluation is total and reports problems as an error kind next to
 * the value. Evaluation is fail-fast (spec section 4.1): the first error stops it.
 *
 * A compiled program is immutable: any number of threads may evaluate it concurrently.
 * core/cesql_record.h has the accessors and entry points for ring records and rc_event_t;
 * docs/cesql.md describes the semantics chosen where the spec is ambiguous. */
#ifndef RC_CORE_CESQL_H
#define RC_CORE_CESQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Value types of the language. 0 is never a valid type. */
typedef enum {
    RC_CESQL_TYPE_BOOL = 1,
    RC_CESQL_TYPE_INT = 2,
    RC_CESQL_TYPE_STRING = 3,
} rc_cesql_type_t;

/** A value: a Boolean, a 32-bit Integer or a String (bytes, UTF-8, not NUL-terminated). A string
 *  borrows its bytes from the event, the program or the evaluation's scratch memory. */
typedef struct {
    uint32_t type; /* rc_cesql_type_t */
    uint32_t len;  /* RC_CESQL_TYPE_STRING: length in bytes */
    union {
        bool b;
        int32_t i;
        const char *s;
    } u;
} rc_cesql_value_t;

_Static_assert(sizeof(rc_cesql_value_t) == 16, "values are two words");

/** Error kinds, named as the CESQL TCK names them (rc_cesql_errkind_name). */
typedef enum {
    RC_CESQL_OK = 0,
    RC_CESQL_ERR_PARSE,
    RC_CESQL_ERR_MATH,
    RC_CESQL_ERR_CAST,
    RC_CESQL_ERR_MISSING_ATTRIBUTE,
    RC_CESQL_ERR_MISSING_FUNCTION,
    RC_CESQL_ERR_FUNCTION_EVALUATION,
    RC_CESQL_ERR_GENERIC,
} rc_cesql_errkind_t;

/** Nesting limit: deeper expressions (parentheses, operators, calls) are a parse error. */
#define RC_CESQL_MAX_DEPTH 64
/** Evaluation stack limit: expressions needing more slots (e.g. a call with hundreds of
 *  arguments) are a parse error. */
#define RC_CESQL_MAX_STACK 256
/** Longest expression accepted, in bytes. */
#define RC_CESQL_MAX_EXPR (64u * 1024u)
/** Scratch memory rc_cesql_match uses for strings built by functions (CONCAT, LOWER, ...). */
#define RC_CESQL_MATCH_SCRATCH 4096

/** A compile error: where (byte offset into the expression), what was expected there and a full
 *  message naming both. kind is RC_CESQL_ERR_PARSE or RC_CESQL_ERR_MISSING_FUNCTION (unknown
 *  function, or a known one with a wrong number of arguments). */
typedef struct {
    rc_cesql_errkind_t kind;
    uint32_t pos;
    const char *expected; /* static text such as "')'" or "expression"; NULL when not relevant */
    char msg[200];        /* "offset 4: expected ')' but found end of expression" */
} rc_cesql_error_t;

/** Well-known context attributes: `core` of rc_cesql_attr_t (same order as the event model's
 *  core attribute slots), or RC_CESQL_CORE_NONE for an extension. */
enum {
    RC_CESQL_CORE_NONE = -1,
    RC_CESQL_CORE_SPECVERSION = 0,
    RC_CESQL_CORE_ID = 1,
    RC_CESQL_CORE_SOURCE = 2,
    RC_CESQL_CORE_TYPE = 3,
    RC_CESQL_CORE_DATACONTENTTYPE = 4,
    RC_CESQL_CORE_DATASCHEMA = 5,
    RC_CESQL_CORE_SUBJECT = 6,
    RC_CESQL_CORE_TIME = 7,
};

/** An attribute an expression reads. Names are folded to lower case at compile time. */
typedef struct {
    const char *name; /* NUL-terminated, lower case */
    uint32_t len;
    uint32_t hash;  /* FNV-1a of the name (rc_ce_name_hash): record lookups need no hashing */
    uint16_t index; /* 0 .. rc_cesql_attr_count() - 1: lets an accessor keep per-program keys */
    int16_t core;   /* RC_CESQL_CORE_*, or RC_CESQL_CORE_NONE for an extension */
} rc_cesql_attr_t;

/** Attribute accessor: looks up `attr` in `event`. Returns true and fills `out` when the event
 *  has it, false when it does not. A value that is not a Boolean or an Integer is given as its
 *  canonical String (URI, timestamp, ...). String bytes must stay valid until the evaluation
 *  returns. Must not fail otherwise; called from the evaluating thread. */
typedef bool (*rc_cesql_get_fn)(const void *event, const rc_cesql_attr_t *attr,
                                rc_cesql_value_t *out);

/** Outcome of an evaluation: the value and the first error (RC_CESQL_OK when none). On error the
 *  value is the failing node's own value when it is the whole expression (ABS(-2147483648) is
 *  2147483647), otherwise the zero value of the expression's type (false when unknown). */
typedef struct {
    rc_cesql_value_t value;
    rc_cesql_errkind_t error;
} rc_cesql_result_t;

typedef struct rc_cesql_program_s rc_cesql_program_t;

/** Compiles `len` bytes of `expr` (need not be NUL-terminated). On success returns 0 and sets
 *  `*out` to a new program (free with rc_cesql_destroy). On failure sets `*out` to NULL and
 *  returns RC_EPARSE (syntax, nesting, size limits; err->kind RC_CESQL_ERR_PARSE),
 *  RC_ECESQL_FUNCTION (err->kind RC_CESQL_ERR_MISSING_FUNCTION) or -ENOMEM, filling `err`
 *  (may be NULL). Setup path: allocates, formats messages. Thread-safe. */
int rc_cesql_compile(const char *expr, size_t len, rc_cesql_program_t **out, rc_cesql_error_t *err);

/** Frees a program. NULL is a no-op. */
void rc_cesql_destroy(rc_cesql_program_t *prog);

/** Evaluates `prog` against `event`, reading attributes through `get`. `scratch` (`scratch_len`
 *  bytes, may be NULL/0) holds strings built during evaluation; a result string may point into
 *  it, into the program or into the event, so it is valid while all three are. Running out of
 *  scratch is a RC_CESQL_ERR_GENERIC error. Never allocates, never blocks, bounded time:
 *  linear in the program size and the attribute lengths (LIKE is O(value x pattern) at worst).
 *  Any thread; the program is read-only. */
void rc_cesql_eval(const rc_cesql_program_t *prog, rc_cesql_get_fn get, const void *event,
                   char *scratch, size_t scratch_len, rc_cesql_result_t *out);

/** Filter entry point: true when `prog` evaluates to the Boolean true without error (spec 1.2).
 *  When `err` is not NULL it receives the evaluation's error kind (RC_CESQL_OK when none), so
 *  callers can count failures. Uses RC_CESQL_MATCH_SCRATCH bytes of stack scratch. */
bool rc_cesql_match(const rc_cesql_program_t *prog, rc_cesql_get_fn get, const void *event,
                    rc_cesql_errkind_t *err);

/** Number of distinct attributes the program reads, and attribute `i` of them. */
uint32_t rc_cesql_attr_count(const rc_cesql_program_t *prog);
const rc_cesql_attr_t *rc_cesql_attr_at(const rc_cesql_program_t *prog, uint32_t i);

/** Number of instructions of the compiled program (1 for a fully folded constant). */
uint32_t rc_cesql_insn_count(const rc_cesql_program_t *prog);

/** Static type of the expression's result, or 0 when it depends on the event (a lone
 *  attribute). */
uint32_t rc_cesql_result_type(const rc_cesql_program_t *prog);

/** TCK name of an error kind: "parse", "math", "cast", "missingAttribute", "missingFunction",
 *  "functionEvaluation", "generic"; NULL for RC_CESQL_OK. */
const char *rc_cesql_errkind_name(rc_cesql_errkind_t kind);

#endif
