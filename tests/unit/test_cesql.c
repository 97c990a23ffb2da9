/* CESQL unit tests beyond the TCK: precedence and associativity, every cast path, 32-bit
 * overflow, LIKE escapes and pathological patterns, Unicode, nesting and size limits, parse
 * error positions, fail-fast values, fused instructions, constant folding and the program API. */
#include "core/cesql.h"
#include "core/errors.h"
#include "tests/test.h"

#include <stdbool.h>

typedef struct {
    const char *name;
    rc_cesql_value_t v;
} kv_t;

typedef struct {
    const kv_t *kv;
    int n;
} ev_t;

static bool get(const void *event, const rc_cesql_attr_t *attr, rc_cesql_value_t *out)
{
    const ev_t *ev = event;
    for (int i = 0; ev != NULL && i < ev->n; i++) {
        if (strcmp(ev->kv[i].name, attr->name) == 0) {
            *out = ev->kv[i].v;
            return true;
        }
    }
    return false;
}

// clang-format off
#define S(n, str) {n, {.type = RC_CESQL_TYPE_STRING, .len = sizeof(str) - 1, .u.s = str}}
#define I(n, x) {n, {.type = RC_CESQL_TYPE_INT, .u.i = x}}
#define B(n, x) {n, {.type = RC_CESQL_TYPE_BOOL, .u.b = x}}
// clang-format on

static const kv_t kv_default[] = {
    S("specversion", "1.0"),
    S("id", "e-1"),
    S("source", "https://example.com/orders"),
    S("type", "com.example.order.created"),
    S("subject", "héllo wörld"),
    I("myint", 10),
    B("mybool", true),
    S("numstr", "42"),
    S("boolstr", "true"),
    S("empty", ""),
};
static const ev_t ev_default = {kv_default, sizeof(kv_default) / sizeof(kv_default[0])};

static char scratch[1 << 16];

/* Compiles and evaluates `expr` (the program must outlive the result, which may point into
 * it) and checks the value's type, value and error kind. */
static void check(const char *expr, const ev_t *ev, uint32_t type, int32_t i, bool b, const char *s,
                  rc_cesql_errkind_t want_err, int line)
{
    rc_cesql_program_t *p;
    rc_cesql_error_t err;
    if (rc_cesql_compile(expr, strlen(expr), &p, &err) != 0) {
        fprintf(stderr, "%s:%d: `%.80s` does not compile: %s\n", __FILE__, line, expr, err.msg);
        exit(1);
    }
    rc_cesql_result_t r;
    rc_cesql_eval(p, get, ev, scratch, sizeof(scratch), &r);
    bool ok = r.error == want_err && r.value.type == type;
    if (ok && type == RC_CESQL_TYPE_INT)
        ok = r.value.u.i == i;
    if (ok && type == RC_CESQL_TYPE_BOOL)
        ok = r.value.u.b == b;
    if (ok && type == RC_CESQL_TYPE_STRING)
        ok = r.value.len == strlen(s) && memcmp(r.value.u.s, s, r.value.len) == 0;
    if (!ok) {
        fprintf(stderr, "%s:%d: `%.80s`: got type %u ", __FILE__, line, expr, r.value.type);
        if (r.value.type == RC_CESQL_TYPE_INT)
            fprintf(stderr, "%d", r.value.u.i);
        else if (r.value.type == RC_CESQL_TYPE_BOOL)
            fprintf(stderr, "%s", r.value.u.b ? "true" : "false");
        else if (r.value.type == RC_CESQL_TYPE_STRING)
            fprintf(stderr, "'%.*s'", (int)r.value.len, r.value.u.s);
        fprintf(stderr, " error %s\n", rc_cesql_errkind_name(r.error) ?: "none");
        exit(1);
    }
    rc_cesql_destroy(p);
}

#define T_BOOL(e, b) check(e, &ev_default, RC_CESQL_TYPE_BOOL, 0, b, NULL, RC_CESQL_OK, __LINE__)
#define T_INT(e, i)  check(e, &ev_default, RC_CESQL_TYPE_INT, i, false, NULL, RC_CESQL_OK, __LINE__)
#define T_STR(e, s)  check(e, &ev_default, RC_CESQL_TYPE_STRING, 0, false, s, RC_CESQL_OK, __LINE__)
#define T_BOOL_ERR(e, b, k)                                                                        \
    check(e, &ev_default, RC_CESQL_TYPE_BOOL, 0, b, NULL, RC_CESQL_ERR_##k, __LINE__)
#define T_INT_ERR(e, i, k)                                                                         \
    check(e, &ev_default, RC_CESQL_TYPE_INT, i, false, NULL, RC_CESQL_ERR_##k, __LINE__)
#define T_STR_ERR(e, s, k)                                                                         \
    check(e, &ev_default, RC_CESQL_TYPE_STRING, 0, false, s, RC_CESQL_ERR_##k, __LINE__)

/* Compiling `expr` fails with `kind` at byte `pos`, and the message names `expected`. */
static void compile_fails(const char *expr, size_t len, rc_cesql_errkind_t kind, int64_t pos,
                          const char *expected, int line)
{
    rc_cesql_program_t *p = (rc_cesql_program_t *)1;
    rc_cesql_error_t err;
    int rc = rc_cesql_compile(expr, len, &p, &err);
    bool ok = rc != 0 && p == NULL && err.kind == kind && (pos < 0 || err.pos == pos) &&
              (expected == NULL || strstr(err.msg, expected) != NULL) &&
              rc == (kind == RC_CESQL_ERR_PARSE ? RC_EPARSE : RC_ECESQL_FUNCTION);
    if (!ok) {
        fprintf(stderr, "%s:%d: `%.60s`: rc %d kind %d pos %u msg \"%s\"\n", __FILE__, line, expr,
                rc, err.kind, err.pos, err.msg);
        exit(1);
    }
}

#define PARSE_ERR(e, pos, what) compile_fails(e, strlen(e), RC_CESQL_ERR_PARSE, pos, what, __LINE__)
#define FUNC_ERR(e, pos, what)                                                                     \
    compile_fails(e, strlen(e), RC_CESQL_ERR_MISSING_FUNCTION, pos, what, __LINE__)

static void test_precedence(void)
{
    T_INT("2 + 3 * 4", 14);
    T_INT("10 - 2 - 3", 5);
    T_INT("100 / 10 / 5", 2);
    T_INT("7 % 4 % 2", 1);
    T_INT("2 * 3 + 4 * 5 - 6 / 2", 23);
    /* NOT and '-' bind tighter than everything else: (NOT 'a') fails the Boolean cast. */
    T_BOOL_ERR("NOT 'a' = 'a'", false, CAST);
    T_BOOL("-1 LIKE '-1'", true);
    T_BOOL("NOT FALSE AND FALSE", false);
    /* LIKE and IN bind tighter than arithmetic: 1 + (TRUE IN (TRUE)) = 2. */
    T_INT("1 + TRUE IN (TRUE)", 2);
    T_INT("1 + 'ab' LIKE 'a%'", 2);
    /* All comparisons share one left-associative level. */
    T_BOOL("1 < 2 = TRUE", true);
    T_BOOL("3 > 2 > 1", false);
    /* AND, OR and XOR share one right-associative level. */
    T_BOOL("FALSE AND FALSE OR TRUE", false);
    T_BOOL("TRUE OR TRUE AND FALSE", true);
    T_BOOL("TRUE XOR TRUE AND FALSE", true);
    T_BOOL("FALSE XOR FALSE OR TRUE XOR TRUE", false);
    T_BOOL("TRUE AND FALSE XOR TRUE", true);
    T_BOOL("(FALSE AND FALSE) OR TRUE", true);
    /* Short circuits inside chains: the division by zero is never evaluated. */
    T_BOOL("TRUE XOR FALSE AND (1 / 0 = 1)", true);
    T_BOOL("type = 'x' AND (1 / 0 = 1) OR TRUE", false);
    T_BOOL("type = 'com.example.order.created' OR 1 / 0 = 1", true);
    T_BOOL_ERR("type = 'x' OR 1 / 0 = 1", false, MATH);
}

static void test_casts(void)
{
    /* Integer -> String */
    T_BOOL("1 = '1'", true);
    T_BOOL("-5 = '-5'", true);
    T_BOOL("-2147483648 = '-2147483648'", true);
    T_BOOL("2147483647 = '2147483647'", true);
    T_STR("STRING(0)", "0");
    T_STR("CONCAT(1, -20)", "1-20");
    /* Integer -> Boolean */
    T_BOOL("NOT 0", true);
    T_BOOL("NOT 10", false);
    T_BOOL("BOOL(-50)", true);
    T_BOOL("TRUE = 5", false);
    T_BOOL("5 AND TRUE", true);
    /* String -> Integer */
    T_INT("'+5' + 0", 5);
    T_INT("'-2147483648' + 0", INT32_MIN);
    T_INT("'007' * 1", 7);
    T_INT_ERR("' 5' + 0", 0, CAST);
    T_INT_ERR("'5 ' + 0", 0, CAST);
    T_INT_ERR("'2147483648' + 0", 0, CAST);
    T_INT_ERR("'' + 0", 0, CAST);
    T_INT_ERR("'-' + 0", 0, CAST);
    T_INT_ERR("'5a' + 0", 0, CAST);
    T_INT_ERR("'0x10' + 0", 0, CAST);
    T_BOOL_ERR("'abc' < 1", false, CAST);
    /* String -> Boolean */
    T_BOOL("'TrUe' AND TRUE", true);
    T_BOOL("NOT 'FALSE'", true);
    T_BOOL_ERR("'yes' AND TRUE", false, CAST);
    T_BOOL_ERR("BOOL('1')", false, CAST);
    /* Boolean -> Integer, Boolean -> String */
    T_INT("TRUE + TRUE", 2);
    T_INT("-FALSE", 0);
    T_BOOL("TRUE = 'true'", true);
    T_BOOL("FALSE = 'FALSE'", false);
    T_STR("CONCAT(TRUE, FALSE)", "truefalse");
    /* '=' casts the left operand to the right operand's type. */
    T_BOOL("'1' = 1", true);
    T_BOOL("'01' = 1", true);
    T_BOOL("1 = '01'", false);
    T_BOOL_ERR("'x' = 1", false, CAST);
    T_BOOL("'true' = TRUE", true);
    /* Attributes of each type through the fused `attr = 'text'` and the generic path. */
    T_BOOL("myint = '10'", true);
    T_BOOL("myint = '010'", false);
    T_BOOL("myint != '10'", false);
    T_BOOL("myint = 10", true);
    T_BOOL("mybool = 'true'", true);
    T_BOOL("mybool = 'TRUE'", false);
    T_BOOL("mybool <> 'false'", true);
    T_BOOL("numstr = 42", true);
    T_BOOL("numstr < 50", true);
    T_BOOL("boolstr = TRUE", true);
    T_BOOL_ERR("type = 1", false, CAST);
    T_INT("myint * 2", 20);
    T_BOOL("IS_INT(numstr) AND NOT IS_INT(type) AND IS_INT(TRUE)", true);
    T_BOOL("IS_BOOL(boolstr) AND IS_BOOL(1) AND NOT IS_BOOL('x')", true);
}

static void test_overflow(void)
{
    T_INT_ERR("2147483647 + 1", 0, MATH);
    T_INT_ERR("-2147483648 - 1", 0, MATH);
    T_INT_ERR("65536 * 65536", 0, MATH);
    T_INT_ERR("-2147483648 * -1", 0, MATH);
    T_INT_ERR("-2147483648 / -1", 0, MATH);
    T_INT("-2147483648 % -1", 0);
    T_INT("-2147483647 / -1", 2147483647);
    T_INT_ERR("-(-2147483648)", 0, MATH);
    T_INT_ERR("--2147483648", 0, MATH);
    T_INT("-2147483648", INT32_MIN);
    T_INT("2147483647", INT32_MAX);
    T_INT_ERR("ABS(-2147483648)", INT32_MAX, MATH);
    T_INT_ERR("ABS(-2147483648) + 0", 0, MATH);
    T_INT("7 / -2", -3);
    T_INT("-7 / 2", -3);
    T_INT("-7 % 2", -1);
    T_INT("7 % -2", 1);
    T_INT_ERR("1 % 0", 0, MATH);
    T_INT("+5", 5);
    T_BOOL("+5 = 5", true);
    PARSE_ERR("2147483648", 0, "32-bit");
    PARSE_ERR("-2147483649", 1, "32-bit");
    PARSE_ERR("99999999999999999999999", 0, "32-bit");
    PARSE_ERR("+ 5", 0, "expected expression");
}

static void test_like(void)
{
    T_BOOL("'a%' LIKE 'a\\%'", true);
    T_BOOL("'ab' LIKE 'a\\%'", false);
    T_BOOL("'a_' LIKE 'a\\_'", true);
    T_BOOL("'ab' LIKE 'a\\_'", false);
    T_BOOL("'a\\b' LIKE 'a\\b'", true);   /* a lone backslash is literal */
    T_BOOL("'a\\%' LIKE 'a\\\\%'", true); /* "\\%": a backslash, then an escaped % */
    T_BOOL("'' LIKE '%'", true);
    T_BOOL("'' LIKE '_'", false);
    T_BOOL("'' LIKE ''", true);
    T_BOOL("'abc' LIKE '%%'", true);
    T_BOOL("'abc' LIKE '%_%_%_%'", true);
    T_BOOL("'ab' LIKE '%_%_%_%'", false);
    T_BOOL("'xaXbYc' LIKE '%a_b_c'", true);
    T_BOOL("'aXbYcaXbYd' LIKE '%a_b_%d'", true);
    T_BOOL("'abcabd' LIKE '%ab_'", true);
    T_BOOL("'abcab' LIKE '%ab_'", false);
    T_BOOL("'mississippi' LIKE '%iss%ppi'", true);
    T_BOOL("'mississippi' LIKE 'm%iss%iss%'", true);
    T_BOOL("'mississippi' LIKE 'm%iss%iss%iss%'", false);
    T_BOOL("'ABC' LIKE 'abc'", false);
    T_BOOL("'héllo' LIKE 'h_llo'", true);
    T_BOOL("'日本語' LIKE '__語'", true);
    T_BOOL("'日本語' LIKE '_'", false);
    T_BOOL("'日本語' LIKE '___'", true);
    T_BOOL("'日本語' LIKE '%本%'", true);
    T_BOOL("'x日本語' LIKE '%_語'", true);
    T_BOOL("subject LIKE 'h_llo%'", true);
    T_BOOL("subject NOT LIKE '%wörld'", false);
    T_BOOL("myint LIKE '1_'", true);
    T_BOOL("mybool LIKE 'tr%'", true);
    T_BOOL("(myint + 1) LIKE '11'", true);
    T_BOOL_ERR("missing LIKE '%'", false, MISSING_ATTRIBUTE);
    PARSE_ERR("type LIKE type", 10, "string literal (LIKE pattern)");
    PARSE_ERR("type LIKE", 9, "string literal (LIKE pattern)");
    PARSE_ERR("type NOT 'x'", 5, "end of expression but found 'NOT'");

    /* Pathological patterns: a backtracking matcher is exponential here, this one is not. */
    size_t n = 20000;
    char *expr = malloc(n + 200);
    ASSERT(expr != NULL);
    strcpy(expr, "'");
    memset(expr + 1, 'a', n);
    strcpy(expr + 1 + n, "' LIKE '%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%b'");
    T_BOOL(expr, false);
    strcpy(expr + 1 + n, "' LIKE '%a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_b%'");
    T_BOOL(expr, false);
    strcpy(expr + 1 + n, "' LIKE '%a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a'");
    T_BOOL(expr, true);
    strcpy(expr + 1 + n, "' LIKE '_%_%_%_%_%_%_%_%_%_%_%_%_%_%_%_%_%_%_'");
    T_BOOL(expr, true);
    free(expr);
}

static void test_unicode(void)
{
    T_INT("LENGTH('héllo')", 5);
    T_INT("LENGTH('日本語')", 3);
    T_INT("LENGTH('😀x')", 2);
    T_INT("LENGTH(subject)", 11);
    T_INT("LENGTH('\xff\xfe')", 2); /* invalid bytes count one character each */
#define CC "\x80\x80" /* two stray continuation bytes */
    T_INT("LENGTH('" CC "a')", 2); /* they join the character before (here: the first) */
    T_STR("LEFT('" CC "ab', 0)", "");
    T_STR("LEFT('" CC "ab', 1)", CC);
    T_STR("RIGHT('" CC "ab', 3)", CC "ab");
    T_STR("SUBSTRING('" CC "ab', 2)", "ab");
    T_BOOL("'" CC "ab' LIKE '_ab'", true);
    T_BOOL("'" CC "ab' LIKE '%_b'", true);
#undef CC
    T_STR("UPPER('héllo')", "HÉLLO");
    T_STR("LOWER('ÀÉÎ ÇA')", "àéî ça");
    T_STR("UPPER('straße')", "STRAßE"); /* simple one-to-one mapping only */
    T_STR("UPPER('a\xff')", "A\xff");
    T_STR("LEFT('日本語', 2)", "日本");
    T_STR("RIGHT('日本語', 1)", "語");
    T_STR("SUBSTRING('日本語', 2, 1)", "本");
    T_STR("SUBSTRING('日本語', -1)", "語");
    T_STR("TRIM('\xe3\x80\x80 x\xc2\xa0\t')", "x"); /* U+3000, U+00A0 */
    T_STR("TRIM('\x01x\x01')", "\x01x\x01");        /* control characters are not space */
    T_BOOL("'é' = 'é'", true);
    T_STR("'ünïcödé'", "ünïcödé");
}

static void test_functions(void)
{
    T_INT("abs(-3)", 3);
    T_INT("Length('x')", 1);
    T_STR("concat_ws('-', 'a', 'b', 1)", "a-b-1");
    T_STR("CONCAT()", "");
    T_STR("CONCAT_WS(',')", "");
    T_STR("CONCAT(type, '/', id)", "com.example.order.created/e-1");
    T_STR("LEFT(type, 3)", "com");
    T_STR("LEFT(type, 0)", "");
    T_STR_ERR("LEFT('abc', -1)", "abc", FUNCTION_EVALUATION);
    T_STR_ERR("RIGHT('abc', -1)", "abc", FUNCTION_EVALUATION);
    T_STR("RIGHT('abc', 3)", "abc");
    T_STR("SUBSTRING('abc', 3)", "c");
    T_STR("SUBSTRING('abc', -3)", "abc");
    T_STR("SUBSTRING('abc', 2, 0)", "");
    T_STR("SUBSTRING('abc', 2, 100)", "bc");
    T_STR_ERR("SUBSTRING('abc', 1, -1)", "", FUNCTION_EVALUATION);
    T_STR_ERR("SUBSTRING('', 1)", "", FUNCTION_EVALUATION);
    T_STR("SUBSTRING('', 0)", "");
    T_STR("TRIM('')", "");
    T_STR("TRIM('   ')", "");
    T_INT("INT(numstr) + 1", 43);
    T_INT_ERR("INT(type)", 0, CAST);
    T_STR("STRING(mybool)", "true");
    T_INT_ERR("ABS('x')", 0, CAST);
    T_STR("LOWER(type)", "com.example.order.created");
    /* An error inside an argument: the enclosing call returns its zero value (fail-fast). */
    T_INT_ERR("LENGTH(LEFT('abc', -1))", 0, FUNCTION_EVALUATION);
    T_INT_ERR("LENGTH(missing)", 0, MISSING_ATTRIBUTE);
    FUNC_ERR("FOO(1)", 0, "unknown function FOO");
    FUNC_ERR("1 + abs(1, 2)", 4, "does not take 2");
    FUNC_ERR("CONCAT_WS()", 0, "does not take 0");
    FUNC_ERR("TRUE OR NOPE()", 8, "unknown function NOPE");
    FUNC_ERR("SUBSTRING('a', 1, 2, 3)", 0, NULL);
    PARSE_ERR("LENGTH1('x')", 0, "letters and '_'");
    PARSE_ERR("my_attr = 1", 0, "not a valid attribute name");
    PARSE_ERR("ABC(", 4, "expected expression");
    PARSE_ERR("ABS(1,", 6, "expected expression");
    PARSE_ERR("ABS(1 2)", 6, "',' or ')'");
}

static void test_missing_and_exists(void)
{
    T_BOOL_ERR("missing", false, MISSING_ATTRIBUTE);
    T_INT_ERR("missing + 1", 0, MISSING_ATTRIBUTE);
    T_INT_ERR("1 / missing", 0, MISSING_ATTRIBUTE);
    T_BOOL_ERR("TRUE AND missing", false, MISSING_ATTRIBUTE);
    T_BOOL("FALSE AND missing", false);
    T_BOOL("TRUE OR missing", true);
    T_BOOL_ERR("missing OR TRUE", false, MISSING_ATTRIBUTE);
    T_BOOL_ERR("type IN ('a', missing)", false, MISSING_ATTRIBUTE);
    T_BOOL("type IN ('com.example.order.created', missing)", true);
    T_BOOL("EXISTS missing", false);
    T_BOOL("EXISTS TYPE AND EXISTS MyInt", true);
    T_BOOL("Type = 'com.example.order.created'", true);
    T_BOOL("EXISTS empty AND empty = ''", true);
    PARSE_ERR("EXISTS 1", 7, "attribute name after EXISTS");
    PARSE_ERR("EXISTS", 6, "attribute name after EXISTS");
    T_STR("id", "e-1");
    T_INT("myint", 10);
    T_BOOL("mybool", true);
}

static void test_in(void)
{
    T_BOOL("myint IN ('10', 20)", true);
    T_BOOL_ERR("myint IN ('x', 10)", false, CAST);
    T_BOOL("myint IN (10, 'x')", true);
    T_BOOL("myint NOT IN (1, 2)", true);
    T_BOOL("mybool IN ('TRUE')", true);
    T_BOOL_ERR("mybool IN ('yes')", false, CAST);
    T_BOOL("boolstr IN (1, TRUE)", true);
    T_BOOL("numstr IN (41, 42)", true);
    T_BOOL("type NOT IN ('a', 'b', 'c')", true);
    /* Non-constant sets take the generic path, with the same semantics. */
    T_BOOL("myint IN ('10', id)", true);
    T_BOOL_ERR("myint IN (id, 10)", false, CAST);
    T_BOOL_ERR("(myint + 0) IN ('x', 10)", false, CAST);
    T_BOOL("id IN (source, type, id)", true);
    T_BOOL("id NOT IN (source, type)", true);
    T_BOOL_ERR("1 IN (2, 1 / 0, 1) = TRUE", false, MATH);
    T_BOOL("LENGTH(id) IN (3)", true);
    T_BOOL("1 IN (1, 1 / 0)", true);
    PARSE_ERR("x IN ()", 6, "expected expression");
    PARSE_ERR("x IN 1", 5, "'('");
    PARSE_ERR("x IN (1", 7, "',' or ')'");
}

static void test_literals_and_syntax(void)
{
    T_STR("'it''s'", "it's");
    T_STR("\"say \\\"hi\\\"\"", "say \"hi\"");
    T_STR("'a\\nb'", "a\\nb");
    T_STR("'\\''", "'");
    T_STR("\"\"", "");
    T_BOOL("tRuE", true);
    T_BOOL("nOt FaLsE", true);
    T_BOOL("'x' lIkE 'X' Or 1 iN (1)", true);
    T_INT(" \t\r\n1\n", 1);
    PARSE_ERR("", 0, "expected expression");
    PARSE_ERR("   ", 3, "expected expression");
    PARSE_ERR("(1 + 2", 6, "')'");
    PARSE_ERR("1 +", 3, "expected expression");
    PARSE_ERR("1 2", 2, "end of expression");
    PARSE_ERR("'abc", 0, "unterminated string literal");
    PARSE_ERR("\"abc\\\"", 0, "unterminated string literal");
    PARSE_ERR("x = @", 4, "unexpected character '@'");
    PARSE_ERR("x ! y", 2, "unexpected character '!'");
    PARSE_ERR("x == 1", 3, "expected expression");
    PARSE_ERR("TRUE FALSE", 5, "end of expression");
    PARSE_ERR("NOT", 3, "expected expression");
    PARSE_ERR("a_b_", 0, "not a valid attribute name");
    PARSE_ERR("a1_b(1)", 0, "invalid name");
    PARSE_ERR("x = \x01", 4, "unexpected byte 0x01");
    PARSE_ERR(")", 0, "expected expression");
    /* An embedded NUL is an unexpected byte, not the end of the expression. */
    compile_fails("1 =\0 1", 6, RC_CESQL_ERR_PARSE, 3, "unexpected byte 0x00", __LINE__);
}

/* 123abc is a valid attribute name (letters and digits); this event lacks it. */
static void test_missing_numeric_name(void)
{
    check("123abc = 1", &ev_default, RC_CESQL_TYPE_BOOL, 0, false, NULL,
          RC_CESQL_ERR_MISSING_ATTRIBUTE, __LINE__);
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * n + tl + 1);
    ASSERT(s != NULL);
    memcpy(s, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(s + hl + i * ul, unit, ul);
    memcpy(s + hl + n * ul, tail, tl + 1);
    return s;
}

static void test_limits(void)
{
    /* Hostile nesting (within the size limit) is a parse error, never a stack overflow. */
    char *e = repeat("", "(", 60000, "1");
    PARSE_ERR(e, -1, "nested too deeply");
    free(e);
    e = repeat("", "NOT ", 16000, "TRUE");
    PARSE_ERR(e, -1, "nested too deeply");
    free(e);
    e = repeat("", "-", 60000, "1");
    PARSE_ERR(e, -1, "nested too deeply");
    free(e);
    e = repeat("", "ABS(", 16000, "1");
    PARSE_ERR(e, -1, "nested too deeply");
    free(e);
    e = repeat("1", " LIKE '1'", 7000, "");
    PARSE_ERR(e, -1, "nested too deeply");
    free(e);
    e = repeat("1", " + 1", 1000, "");
    PARSE_ERR(e, -1, "nested too deeply");
    free(e);
    /* Moderate nesting is fine. */
    e = repeat("", "(", 40, "1");
    char *e2 = repeat(e, ")", 40, " + 1");
    T_INT(e2, 2);
    free(e);
    free(e2);
    e = repeat("0", " + 1", 40, "");
    T_INT(e, 40);
    free(e);
    /* Long AND/OR chains are flat: no depth limit, one instruction per clause plus a jump. */
    e = repeat("", "type = 'nope' OR ", 3000, "type = 'com.example.order.created'");
    T_BOOL(e, true);
    free(e);
    e = repeat("", "EXISTS id AND ", 4000, "myint = 10");
    T_BOOL(e, true);
    free(e);
    /* XOR operands and call arguments stay on the stack: bounded by RC_CESQL_MAX_STACK. */
    e = repeat("", "mybool XOR ", 300, "mybool");
    PARSE_ERR(e, 0, "evaluation slots");
    free(e);
    e = repeat("", "mybool XOR ", 99, "mybool");
    T_BOOL(e, false);
    free(e);
    e = repeat("CONCAT(id", ", id", 299, ")");
    PARSE_ERR(e, 0, "evaluation slots");
    free(e);
    /* Expressions over the size limit are refused before parsing. */
    e = repeat("'", "x", RC_CESQL_MAX_EXPR, "'");
    PARSE_ERR(e, 0, "byte limit");
    free(e);
    e = repeat("'", "x", RC_CESQL_MAX_EXPR - 10, "' = 'x'");
    T_BOOL(e, false);
    free(e);
}

static void test_folding_and_program(void)
{
    rc_cesql_program_t *p;
    rc_cesql_error_t err;
#define INSNS(e, n)                                                                                \
    do {                                                                                           \
        ASSERT_EQ(rc_cesql_compile(e, strlen(e), &p, &err), 0);                                    \
        ASSERT_EQ(rc_cesql_insn_count(p), n);                                                      \
        rc_cesql_destroy(p);                                                                       \
    } while (0)
    INSNS("1 + 2 * 3 = 7", 1);
    INSNS("CONCAT('a', LOWER('B'), STRING(1)) = 'ab1'", 1);
    INSNS("FALSE AND (1 / 0 = 1)", 1);
    INSNS("TRUE OR missing", 1);
    INSNS("type = 'x'", 1);
    INSNS("type LIKE 'x%'", 1);
    INSNS("type IN ('a', 'b', 'c')", 1);
    INSNS("type = CONCAT('a', 'b')", 1);
    INSNS("1 / 0", 3);            /* raises at run time, so it stays */
    INSNS("ABS(-2147483648)", 2); /* the argument folds, the call raises */
    INSNS("type = 'x' AND myint > 1 + 1", 5);
#undef INSNS
    const char *e = "type = 'a' AND myext = 1 AND TYPE != 'b' AND EXISTS time";
    ASSERT_EQ(rc_cesql_compile(e, strlen(e), &p, &err), 0);
    ASSERT_EQ(rc_cesql_attr_count(p), 3);
    const rc_cesql_attr_t *a = rc_cesql_attr_at(p, 0);
    ASSERT_STR_EQ(a->name, "type");
    ASSERT_EQ(a->core, RC_CESQL_CORE_TYPE);
    ASSERT_EQ(a->index, 0);
    a = rc_cesql_attr_at(p, 1);
    ASSERT_STR_EQ(a->name, "myext");
    ASSERT_EQ(a->core, RC_CESQL_CORE_NONE);
    ASSERT_EQ(rc_cesql_attr_at(p, 2)->core, RC_CESQL_CORE_TIME);
    ASSERT(rc_cesql_attr_at(p, 3) == NULL);
    ASSERT_EQ(rc_cesql_result_type(p), RC_CESQL_TYPE_BOOL);
    rc_cesql_destroy(p);
    ASSERT_EQ(rc_cesql_compile("id", 2, &p, &err), 0);
    ASSERT_EQ(rc_cesql_result_type(p), 0);
    rc_cesql_destroy(p);
    rc_cesql_destroy(NULL);
    /* Error kinds have the TCK's names. */
    ASSERT(rc_cesql_errkind_name(RC_CESQL_OK) == NULL);
    ASSERT_STR_EQ(rc_cesql_errkind_name(RC_CESQL_ERR_MISSING_ATTRIBUTE), "missingAttribute");
    ASSERT_STR_EQ(rc_cesql_errkind_name(RC_CESQL_ERR_FUNCTION_EVALUATION), "functionEvaluation");
    ASSERT_STR_EQ(rc_strerror(RC_ECESQL_FUNCTION),
                  "unknown CESQL function or wrong argument count");
    /* The expression need not be NUL-terminated. */
    ASSERT_EQ(rc_cesql_compile("1 = 1 garbage", 5, &p, &err), 0);
    rc_cesql_destroy(p);
    ASSERT_EQ(rc_cesql_compile("x", 1, &p, NULL), 0);
    rc_cesql_destroy(p);
    ASSERT_EQ(rc_cesql_compile("(", 1, &p, NULL), RC_EPARSE);
    /* The error names what was expected, separately from the message. */
    ASSERT_EQ(rc_cesql_compile("(1", 2, &p, &err), RC_EPARSE);
    ASSERT_EQ(err.kind, RC_CESQL_ERR_PARSE);
    ASSERT_EQ(err.pos, 2);
    ASSERT_STR_EQ(err.expected, "')'");
    ASSERT_STR_EQ(err.msg, "offset 2: expected ')' but found end of expression");
    ASSERT_EQ(rc_cesql_compile("a LIKE 1", 8, &p, &err), RC_EPARSE);
    ASSERT_STR_EQ(err.expected, "string literal (LIKE pattern)");
    ASSERT_EQ(rc_cesql_compile("a b", 3, &p, &err), RC_EPARSE);
    ASSERT_STR_EQ(err.expected, "an operator or end of expression");
    ASSERT_EQ(rc_cesql_compile("x = #", 5, &p, &err), RC_EPARSE);
    ASSERT(err.expected == NULL);
    ASSERT_EQ(rc_cesql_compile("lower()", 7, &p, &err), RC_ECESQL_FUNCTION);
    ASSERT_EQ(err.kind, RC_CESQL_ERR_MISSING_FUNCTION);
    ASSERT_STR_EQ(err.msg, "offset 0: function lower does not take 0 argument(s)");
}

static void test_match_and_scratch(void)
{
    rc_cesql_program_t *p;
    rc_cesql_errkind_t k;
    ASSERT_EQ(rc_cesql_compile("type LIKE 'com.%'", 17, &p, NULL), 0);
    ASSERT(rc_cesql_match(p, get, &ev_default, &k));
    ASSERT_EQ(k, RC_CESQL_OK);
    rc_cesql_destroy(p);
    ASSERT_EQ(rc_cesql_compile("myint", 5, &p, NULL), 0); /* not a Boolean: no match */
    ASSERT(!rc_cesql_match(p, get, &ev_default, &k));
    ASSERT_EQ(k, RC_CESQL_OK);
    rc_cesql_destroy(p);
    ASSERT_EQ(rc_cesql_compile("nope = 'x'", 10, &p, NULL), 0);
    ASSERT(!rc_cesql_match(p, get, &ev_default, &k));
    ASSERT_EQ(k, RC_CESQL_ERR_MISSING_ATTRIBUTE);
    ASSERT(!rc_cesql_match(p, get, &ev_default, NULL));
    rc_cesql_destroy(p);
    /* Strings built at run time need scratch; running out is a generic error, not a crash. */
    const char *e = "CONCAT(type, type) = 'x'";
    ASSERT_EQ(rc_cesql_compile(e, strlen(e), &p, NULL), 0);
    rc_cesql_result_t r;
    char small[16];
    rc_cesql_eval(p, get, &ev_default, small, sizeof(small), &r);
    ASSERT_EQ(r.error, RC_CESQL_ERR_GENERIC);
    ASSERT_EQ(r.value.type, RC_CESQL_TYPE_BOOL);
    rc_cesql_eval(p, get, &ev_default, NULL, 0, &r);
    ASSERT_EQ(r.error, RC_CESQL_ERR_GENERIC);
    rc_cesql_eval(p, get, &ev_default, scratch, sizeof(scratch), &r);
    ASSERT_EQ(r.error, RC_CESQL_OK);
    rc_cesql_destroy(p);
    /* Temporaries of comparisons are released: a long IN over casts fits a small scratch. */
    e = "sx IN (n, n, n, n, n, n, n, n, n, 10)";
    ASSERT_EQ(rc_cesql_compile(e, strlen(e), &p, NULL), 0);
    const kv_t kv[] = {S("sx", "10"), I("n", 7)};
    const ev_t ev = {kv, 2};
    char tiny[12];
    rc_cesql_eval(p, get, &ev, tiny, sizeof(tiny), &r);
    ASSERT_EQ(r.error, RC_CESQL_OK);
    ASSERT(r.value.u.b);
    rc_cesql_destroy(p);
}

int main(void)
{
    test_precedence();
    test_casts();
    test_overflow();
    test_like();
    test_unicode();
    test_functions();
    test_missing_and_exists();
    test_in();
    test_literals_and_syntax();
    test_missing_numeric_name();
    test_limits();
    test_folding_and_program();
    test_match_and_scratch();
    printf("test_cesql: ok\n");
    return 0;
}
