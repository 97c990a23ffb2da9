/* CEL routing rules (core/cel.h): every supported form true and false, over an in-memory event
 * and over the same event encoded as a ring record; Dapr's documented examples; CEL's error
 * absorption by && and ||; numbers in data as doubles; every refused construct with its message
 * and column; malformed, huge and deeply nested input; data that is not JSON.
 *
 * The API answers only "match or not", so a result is told apart by also evaluating its
 * negation: true matches; false does not, but !(e) does; an error matches neither way. */
#include "core/cel.h"
#include "core/errors.h"
#include "core/record.h"
#include "tests/test.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum { R_FALSE, R_TRUE, R_ERROR } result_t;

static const char *const result_name[] = {"false", "true", "error"};

/* The event the tests read, built by make_event. */
typedef struct {
    rc_event_t ev;
    rc_ce_ext_t ext[8];
    void *rec;
    rc_record_view_t view;
} test_event_t;

static const char default_data[] =
    "{\"widget\": {\"price\": 150, \"name\": \"gizmo\", \"tags\": [\"a\", \"b\"]},"
    " \"n\": 1.0, \"big\": 1e300, \"neg\": -2.5, \"zero\": 0,"
    " \"items\": [1, \"two\", {\"k\": true}, [3]],"
    " \"s\": \"caf\\u00e9 \\\"q\\\" \\ud83d\\ude00\", \"esc\\u0041\": \"named\","
    " \"nul\": null, \"flag\": true, \"off\": false, \"dup\": 1, \"dup\": 2, \"empty\": \"\","
    " \"num_s\": \"42\", \"dbl_s\": \"2.5\", \"\": \"blank key\"}";

/* An event with the core attributes, extensions of each type, and `data` under `dct` (NULL:
 * absent). */
static void make_event(test_event_t *t, const char *dct, const char *data, size_t data_len)
{
    rc_event_init(&t->ev, t->ext, 8);
    t->ev.specversion = RC_STR("1.0");
    t->ev.id = RC_STR("e-1");
    t->ev.source = RC_STR("https://example.com/orders");
    t->ev.type = RC_STR("widget");
    t->ev.subject = RC_STR("sub/42");
    t->ev.time = RC_STR("2024-05-01T10:00:00Z");
    t->ev.datacontenttype = rc_str(dct);
    t->ev.data = data ? (rc_str_t){data, data_len} : RC_STR_NULL;
    ASSERT_EQ(rc_event_set_ext(&t->ev, NULL, RC_STR("topic"), RC_STR("orders"), RC_CE_STRING), 0);
    ASSERT_EQ(rc_event_set_ext(&t->ev, NULL, RC_STR("priority"), RC_STR("5"), RC_CE_INTEGER), 0);
    ASSERT_EQ(rc_event_set_ext(&t->ev, NULL, RC_STR("urgent"), RC_STR("true"), RC_CE_BOOLEAN), 0);
    ASSERT_EQ(rc_event_set_ext(&t->ev, NULL, RC_STR("empty"), RC_STR(""), RC_CE_STRING), 0);
    size_t size = rc_record_size(&t->ev), len;
    ASSERT(size > 0);
    t->rec = aligned_alloc(8, size);
    ASSERT(t->rec != NULL);
    ASSERT_EQ(rc_record_encode(&t->ev, t->rec, size, &len), 0);
    ASSERT_EQ(rc_record_decode(t->rec, len, &t->view), 0);
}

static void free_event(test_event_t *t)
{
    free(t->rec);
}

static test_event_t ev_json;

/* Compiles `expr` (it must compile) and returns its result over `t`, checking that the event and
 * the record agree. */
static result_t eval_on(const char *expr, const test_event_t *t, int line)
{
    char err[256];
    rc_cel_t *p = NULL, *np = NULL;
    size_t n = strlen(expr);
    char *neg = malloc(n + 4);
    ASSERT(neg != NULL);
    snprintf(neg, n + 4, "!(%s)", expr);
    if (rc_cel_compile(expr, n, &p, err, sizeof(err)) != 0 ||
        rc_cel_compile(neg, n + 3, &np, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s:%d: `%s` does not compile: %s\n", __FILE__, line, expr, err);
        exit(1);
    }
    bool m = rc_cel_match_event(p, &t->ev), nm = rc_cel_match_event(np, &t->ev);
    if (m != rc_cel_match_record(p, &t->view) || nm != rc_cel_match_record(np, &t->view)) {
        fprintf(stderr, "%s:%d: `%s`: event and record disagree\n", __FILE__, line, expr);
        exit(1);
    }
    ASSERT(!(m && nm));
    rc_cel_free(p);
    rc_cel_free(np);
    free(neg);
    return m ? R_TRUE : (nm ? R_FALSE : R_ERROR);
}

static void check_on(const char *expr, const test_event_t *t, result_t want, int line)
{
    result_t got = eval_on(expr, t, line);
    if (got != want) {
        fprintf(stderr, "%s:%d: `%s`: got %s, want %s\n", __FILE__, line, expr, result_name[got],
                result_name[want]);
        exit(1);
    }
}

#define T(e)       check_on(e, &ev_json, R_TRUE, __LINE__)
#define F(e)       check_on(e, &ev_json, R_FALSE, __LINE__)
#define E(e)       check_on(e, &ev_json, R_ERROR, __LINE__)
#define T_ON(t, e) check_on(e, t, R_TRUE, __LINE__)
#define F_ON(t, e) check_on(e, t, R_FALSE, __LINE__)
#define E_ON(t, e) check_on(e, t, R_ERROR, __LINE__)

/* Compiling `expr` (`len` bytes) fails with RC_ECONFIG and exactly the message `want`. */
static void refused_len(const char *expr, size_t len, const char *want, int line)
{
    char err[256];
    rc_cel_t *p = (rc_cel_t *)1;
    int rc = rc_cel_compile(expr, len, &p, err, sizeof(err));
    if (rc != RC_ECONFIG || p != NULL || strcmp(err, want) != 0) {
        fprintf(stderr, "%s:%d: `%.60s`: rc %d, message \"%s\", want \"%s\"\n", __FILE__, line,
                expr, rc, rc == 0 ? "" : err, want);
        exit(1);
    }
}

#define REFUSED(e, msg) refused_len(e, strlen(e), msg, __LINE__)

static void test_dapr_examples(void)
{
    T("event.type == \"widget\"");
    F("event.type == \"order.priority\"");
    T("event.data.widget.price > 100");
    F("event.data.widget.price > 150");
    T("has(event.data.widget)");
    F("has(event.data.gadget)");
    T("event.source.startsWith(\"https://example.com\")");
    F("event.source.startsWith(\"x\")");
    T("event.type == \"widget\" && event.data.widget.price > 100");
    T("event.type == \"order.priority\" || event.data.widget.name == \"gizmo\"");
}

static void test_attributes(void)
{
    T("event.id == 'e-1'");
    F("event.id == 'e-2'");
    T("event.specversion == '1.0'");
    T("event.source == 'https://example.com/orders'");
    T("event.subject == 'sub/42'");
    T("event.time == '2024-05-01T10:00:00Z'");
    T("event.datacontenttype == 'application/json'");
    F("event.subject == 'sub/4'");
    /* Absent attributes are errors, has() tells them apart. */
    E("event.dataschema == 'x'");
    E("event.dataschema != 'x'");
    F("has(event.dataschema)");
    T("has(event.type)");
    T("has(event.data)");
    /* Extensions: strings, Integer as a double (Dapr's JSON numbers), Boolean. */
    T("event.topic == 'orders'");
    T("event.priority == 5");
    T("event.priority == 5.0");
    T("event.priority > 4 && event.priority < 6");
    F("event.priority < 5");
    F("event.priority == '5'");
    T("event.urgent");
    T("event.urgent == true");
    F("!event.urgent");
    T("event.empty == ''");
    T("has(event.topic)");
    F("has(event.missing)");
    E("event.missing == 'x'");
    /* event["name"] selects as event.name does. */
    T("event['type'] == 'widget'");
    T("event[\"data\"][\"n\"] == 1");
    T("event['topic'].startsWith('ord')");
    /* A string against a number: unequal, not an error; ordering them is an error. */
    F("event.type == 1");
    T("event.type != 1");
    E("event.type < 1");
    E("event.type.x == 1");
    E("event.type[0] == 'w'");
}

static void test_data_paths(void)
{
    T("event.data.n == 1"); /* 1.0 in the data: numbers are doubles, and 1 == 1.0 */
    T("event.data.n == 1.0");
    F("event.data.n == 2");
    T("event.data.zero == 0");
    T("event.data.widget.price == 150");
    T("event.data.widget.price == 150.0");
    T("event.data['widget']['name'] == 'gizmo'");
    T("event.data.widget['tags'][1] == 'b'");
    T("event.data.items[0] == 1");
    T("event.data.items[1] == 'two'");
    T("event.data.items[2].k");
    T("event.data.items[3][0] == 3");
    T("event.data.escA == 'named'"); /* the member name "esc\u0041" */
    T("event.data[''] == 'blank key'");
    T("event.data.dup == 2"); /* repeated names: the last one, as Go's decoder keeps */
    T("event.data.nul == null");
    F("event.data.nul != null");
    T("event.data.flag");
    F("event.data.off");
    T("!event.data.off");
    T("event.data.empty == ''");
    T("event.data.big > 1e299");
    T("event.data.neg < -2");
    T("-event.data.neg == 2.5");
    T("event.data.s == 'caf\\u00e9 \"q\" \\U0001F600'");
    T("event.data.s == 'café \"q\" 😀'");
    F("event.data.s == 'café \"q\" 😁'");
    F("event.data.s == 'café'");
    /* Missing fields, out-of-range indexes and steps into scalars are errors. */
    E("event.data.missing == 1");
    E("event.data.widget.tags[2] == 'c'");
    E("event.data.widget.tags[-1] == 'b'");
    E("event.data.widget.price.x == 1");
    E("event.data.items.k == 1");
    E("event.data.widget[0] == 1");
    E("event.data.s[0] == 'c'");
    /* has() */
    T("has(event.data.widget.price)");
    F("has(event.data.widget.nope)");
    T("has(event.data.nul)");
    T("has(event.data.widget['tags'].x) || true");
    E("has(event.data.nope.x)");
    E("has(event.data.n.x)");
    E("has(event.data.items.x)");
    /* The whole of event.data: an object is unequal to any scalar. */
    F("event.data == 'x'");
    T("event.data != 1");
    E("event.data < 1");
    E("event.data.widget == event.data.widget"); /* object equality is not supported */
    /* `in` over data: elements of an array, names of an object. */
    T("'b' in event.data.widget.tags");
    F("'c' in event.data.widget.tags");
    T("1 in event.data.items");
    T("'two' in event.data.items");
    T("3 in event.data.items[3]");
    T("'widget' in event.data");
    T("'escA' in event.data");
    F("'nope' in event.data");
    F("1 in event.data");
    E("1 in event.data.n");
    E("1 in event.data.missing");
    E("event.data.missing in [1]");
}

static void test_operators(void)
{
    T("1 < 2");
    F("2 < 1");
    T("2 <= 2");
    F("3 <= 2");
    T("3 > 2");
    F("2 > 2");
    T("2 >= 2");
    F("2 >= 3");
    T("1 == 1.0");
    F("1 != 1.0");
    T("2 > 1.5");
    T("1.5 < 2");
    T("-1 < 0");
    T("0x10 == 16");
    T("0XfF == 255");
    T("1e3 == 1000");
    T(".5 == 0.5");
    T("2.5e-3 < 0.01");
    T("007 == 7");
    /* int64 against double, exactly: 2^63 - 1 is not 2^63. */
    T("9223372036854775807 > 9223372036854775806");
    F("9223372036854775807 == 9223372036854775807.0");
    T("9223372036854775807 < 9223372036854775808.0");
    T("-9223372036854775808 < -9223372036854775807");
    T("-9223372036854775808 == -9223372036854775808.0");
    T("1 < 1.5 && 1.5 > 1 && 2 > 1.5 && 1.5 < 2");
    F("-1 > -0.5");
    /* Strings order byte-wise (code point order for UTF-8), booleans false < true. */
    T("'a' < 'b'");
    T("'abc' < 'abd'");
    T("'ab' < 'abc'");
    F("'b' <= 'a'");
    T("'é' > 'z'");
    T("false < true");
    T("true >= true");
    T("true == true");
    F("true == false");
    T("null == null");
    F("null != null");
    T("null != 1");
    F("null == false");
    F("'1' == 1");
    T("'1' != 1");
    F("true == 1");
    E("null < 1");
    E("'a' < 1");
    E("true < 1");
    E("null < null");
    /* NaN is unordered and unequal to itself. */
    F("double('nan') == double('nan')");
    T("double('nan') != double('nan')");
    F("double('nan') < 1");
    F("double('nan') >= 1");
    F("1 >= double('nan')");
    /* Comparisons chain left to right: (1 < 2) < 3 orders a bool against an int. */
    E("1 < 2 < 3");
    T("1 < 2 == true");
    /* Unary operators. */
    T("!false");
    F("!true");
    T("!!true");
    E("!1");
    E("!'a'");
    T("-(1) == -1");
    T("--1 == 1");
    T("-(-2.5) == 2.5");
    T("-event.data.n == -1");
    E("-'a' == 1");
    E("-(-9223372036854775808) == 1"); /* int64 overflow */
    T("(((event.type))) == ((('widget')))");
}

static void test_logic(void)
{
    T("true && true");
    F("true && false");
    F("false && true");
    T("false || true");
    F("false || false");
    T("false || false || false || true");
    F("true && true && true && false");
    T("true || false && false"); /* && binds tighter */
    F("(true || false) && false");
    /* Errors: absorbed when the other side decides, in either order. */
    T("true || event.missing == 1");
    T("event.missing == 1 || true");
    F("false && event.missing == 1");
    F("event.missing == 1 && false");
    E("true && event.missing == 1");
    E("event.missing == 1 && true");
    E("false || event.missing == 1");
    E("event.missing == 1 || false");
    E("event.missing == 1 || event.missing == 2");
    T("event.missing == 1 || event.missing == 2 || event.type == 'widget'");
    F("event.missing == 1 && event.type == 'x' && event.missing == 2");
    /* A non-bool operand is an error, absorbed in the same way. */
    E("'a' && true");
    F("'a' && false");
    T("1 || true");
    E("1 || false");
    E("!(event.missing == 1)");
    /* `in` with a list literal. */
    T("event.type in ['a', 'widget']");
    F("event.type in ['a', 'b']");
    F("'x' in []");
    T("1 in [1.0, 2]");
    T("event.data.n in [3, 1]");
    T("event.type in [event.subject, 'widget']");
    T("event.type in [1, null, true, 'widget',]");
    F("event.type in [1, null, true]");
    T("null in [null]");
    E("event.type in ['a', event.missing]"); /* an error in the list is an error */
    E("event.missing in ['a']");
    E("'a' in event.type");
    T("(event.type in ['widget']) == true");
    T("event.type in (['widget'])");
}

static void test_functions(void)
{
    T("int('42') == 42");
    T("int(event.data.num_s) == 42");
    T("int('+7') == 7");
    T("int('-9223372036854775808') < 0");
    T("int(2.9) == 2");
    T("int(-2.9) == -2");
    T("int(event.data.n) == 1");
    T("int(event.priority) == 5");
    T("int(7) == 7");
    E("int('9223372036854775808') == 0");
    E("int('4x') == 4");
    E("int(' 4') == 4");
    E("int('4 ') == 4");
    E("int('') == 0");
    E("int('0x10') == 16");
    E("int(1e19) == 0");
    E("int(double('nan')) == 0");
    E("int(true) == 1");
    E("int(null) == 0");
    T("double('2.5') == 2.5");
    T("double(event.data.dbl_s) == 2.5");
    T("double('-1e3') == -1000");
    T("double(3) == 3.0");
    T("double(2.5) == 2.5");
    T("double('1e-400') == 0.0");
    E("double('x') == 1.0");
    E("double('') == 0.0");
    E("double(' 1') == 1.0");
    E("double('1e999') > 0.0");
    E("double(true) == 1.0");
    T("string(42) == '42'");
    T("string(-7) == '-7'");
    T("string(-9223372036854775808) == '-9223372036854775808'");
    T("string(1.5) == '1.5'");
    T("string(100.0) == '100'");
    T("string(0.1) == '0.1'");
    T("string(1e6) == '1e+06'");
    T("string(123456.0) == '123456'");
    T("string(1234567.0) == '1.234567e+06'");
    T("string(0.0001) == '0.0001'");
    T("string(0.00001) == '1e-05'");
    T("string(-0.0) == '-0'");
    T("string(1e300) == '1e+300'");
    T("string(-1.7976931348623157e308) == '-1.7976931348623157e+308'");
    T("string(double('inf')) == '+Inf'");
    T("string(double('-inf')) == '-Inf'");
    T("string(double('nan')) == 'NaN'");
    T("string(true) == 'true'");
    T("string(false) == 'false'");
    T("string('x') == 'x'");
    T("string(event.data.n) == '1'");
    T("string(event.data.widget.price) == '150'");
    T("string(event.priority) == '5'");
    T("string(event.data.s) == event.data.s");
    E("string(null) == 'null'");
    E("string(event.data.widget) == ''");
    /* The string methods. */
    T("event.type.startsWith('wid')");
    F("event.type.startsWith('get')");
    T("event.type.endsWith('get')");
    F("event.type.endsWith('wid')");
    T("event.type.contains('idg')");
    F("event.type.contains('z')");
    T("event.type.startsWith('')");
    T("event.type.endsWith('')");
    T("event.type.contains('')");
    T("''.contains('')");
    F("''.contains('a')");
    F("'ab'.endsWith('abc')");
    T("'widget'.startsWith(event.type)");
    T("string(event.priority).startsWith('5')");
    T("event.data.s.startsWith('café \"')");
    T("event.data.s.endsWith('😀')");
    T("event.data.s.endsWith('\" 😀')");
    F("event.data.s.endsWith('😁')");
    T("event.data.s.contains('é \"q')");
    F("event.data.s.contains('é q')");
    T("event.data.s.contains(event.data.s)");
    T("'xx café \"q\" 😀 yy'.contains(event.data.s)");
    F("'café \"q\"'.contains(event.data.s)");
    E("event.data.n.startsWith('1')");
    E("event.type.startsWith(1)");
    E("event.missing.startsWith('a')");
    E("event.type.contains(event.missing)");
}

static void test_literals(void)
{
    T("'a\\nb' == \"a\\nb\"");
    T("'\\x41\\101\\u0041\\U00000041' == 'AAAA'");
    T("'\\xe9' == 'é'"); /* \x in a string names a code point, as in cel-go */
    T("'\\a\\b\\f\\n\\r\\t\\v\\\\\\'\\\"\\`\\?' == "
      "\"\\x07\\x08\\x0c\\x0a\\x0d\\x09\\x0b\\x5c'\\x22`?\"");
    T("r'\\n' == '\\\\n'");
    T("R\"a\\\\\" == 'a\\\\\\\\'");
    T("'''it's''' == \"it's\"");
    T("\"\"\"say \"hi\"\n\"\"\" == 'say \"hi\"\\n'");
    T("'' == \"\"");
    T("event.type == 'widget' // a comment\n");
    T("// leading comment\nevent.type == 'widget'");
    T("\t event.type\r\n==\f'widget' ");
    /* A source that is not NUL-terminated is read to its length only. */
    char err[128];
    rc_cel_t *p = NULL;
    ASSERT_EQ(rc_cel_compile("event.type == 'widget'garbage", 22, &p, err, sizeof(err)), 0);
    ASSERT(rc_cel_match_event(p, &ev_json.ev));
    rc_cel_free(p);
    rc_cel_free(NULL);
}

static void test_data_kinds(void)
{
    test_event_t t;
    /* Not JSON: event.data is the bytes as a string. */
    make_event(&t, "text/plain", "hello world", 11);
    T_ON(&t, "event.data == 'hello world'");
    T_ON(&t, "event.data.startsWith('hello')");
    T_ON(&t, "event.data.contains('o w')");
    F_ON(&t, "event.data == 'hello'");
    E_ON(&t, "event.data.x == 1");
    E_ON(&t, "has(event.data.x)");
    T_ON(&t, "has(event.data)");
    free_event(&t);
    /* ... even when the bytes look like JSON, and with NUL bytes in them. */
    make_event(&t, "application/octet-stream", "{\"a\":1}", 7);
    T_ON(&t, "event.data == '{\"a\":1}'");
    E_ON(&t, "event.data.a == 1");
    free_event(&t);
    make_event(&t, "text/plain", "a\0b", 3);
    T_ON(&t, "event.data.contains('b')");
    T_ON(&t, "event.data == 'a\\x00b'");
    free_event(&t);
    /* JSON media types: absent, application/json with parameters, text/json, +json. */
    const char *json_types[] = {NULL, "application/json; charset=utf-8", "text/json",
                                "application/cloudevents+json", "application/vnd.x+JSON"};
    for (size_t k = 0; k < sizeof(json_types) / sizeof(json_types[0]); k++) {
        make_event(&t, json_types[k], "{\"n\": 2}", 8);
        T_ON(&t, "event.data.n == 2");
        free_event(&t);
    }
    /* A JSON scalar as the whole data. */
    make_event(&t, "application/json", " \"hi\\n\" ", 8);
    T_ON(&t, "event.data == 'hi\\n'");
    free_event(&t);
    make_event(&t, "application/json", "3", 1);
    T_ON(&t, "event.data == 3");
    E_ON(&t, "event.data.x == 3");
    free_event(&t);
    /* No data at all. */
    make_event(&t, NULL, NULL, 0);
    E_ON(&t, "event.data == 1");
    F_ON(&t, "has(event.data)");
    E_ON(&t, "has(event.data.x)");
    T_ON(&t, "event.type == 'widget' || event.data.x == 1");
    free_event(&t);
}

/* Data that claims to be JSON and is not: every use of event.data is an error. */
static void test_malformed_data(void)
{
    static const char *const bad[] = {
        "",
        "{\"n\": 1,",
        "{\"n\": 1} x",
        "{\"n\": 01}",
        "{\"n\": 1,}",
        "{'n': 1}",
        "{\"n\": \"\\q\"}",
        "{\"n\": \"\\ud800\"}",
        "{\"n\": \"a\x01\"}",
        "{\"n\": tru}",
        "{\"n\": \"\xff\"}",
        "[1, 2",
        "{\"n\" 1}",
        "{n: 1}",
        "nul",
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        test_event_t t;
        make_event(&t, "application/json", bad[k], strlen(bad[k]));
        E_ON(&t, "event.data.n == 1");
        E_ON(&t, "has(event.data.n)");
        E_ON(&t, "event.data == ''");
        T_ON(&t, "has(event.data)");
        T_ON(&t, "event.data.n == 1 || event.type == 'widget'");
        free_event(&t);
    }
    /* Numbers beyond a double, or too long to read, are errors where they are used. */
    test_event_t t;
    const char *nums = "{\"inf\": 1e400, \"ok\": 1}";
    make_event(&t, NULL, nums, strlen(nums));
    E_ON(&t, "event.data.inf > 0");
    T_ON(&t, "event.data.ok == 1");
    free_event(&t);
    char longnum[1100];
    memcpy(longnum, "{\"n\": 1.", 8);
    memset(longnum + 8, '0', 1000);
    memcpy(longnum + 1008, "}", 2);
    make_event(&t, NULL, longnum, strlen(longnum));
    E_ON(&t, "event.data.n == 1");
    free_event(&t);
}

/* Deep and large data: nesting up to the scanner's limit is read, beyond it is malformed; a
 * value at the end of a megabyte is found. */
static void test_big_data(void)
{
    test_event_t t;
    char *deep = malloc(2048);
    ASSERT(deep != NULL);
    for (int depth = 200; depth <= 300; depth += 100) {
        size_t n = 0;
        for (int k = 0; k < depth; k++)
            n += (size_t)sprintf(deep + n, "{\"a\":");
        n += (size_t)sprintf(deep + n, "7");
        for (int k = 0; k < depth; k++)
            deep[n++] = '}';
        make_event(&t, NULL, deep, n);
        if (depth == 200) {
            char path[256] = "event.data";
            for (int k = 0; k < 64; k++)
                strcat(path, ".a");
            strcat(path, " != null");
            T_ON(&t, path);
            T_ON(&t, "has(event.data.a.a.a)");
        } else {
            E_ON(&t, "has(event.data.a)");
        }
        free_event(&t);
    }
    free(deep);

    size_t cap = 1u << 20, n = 0;
    char *big = malloc(cap + 64);
    ASSERT(big != NULL);
    n += (size_t)sprintf(big, "{\"pad\": [");
    for (int k = 0; n < cap - 64; k++)
        n += (size_t)sprintf(big + n, "%s%d", k ? "," : "", k);
    n += (size_t)sprintf(big + n, "], \"last\": \"end\"}");
    make_event(&t, NULL, big, n);
    T_ON(&t, "event.data.last == 'end'");
    T_ON(&t, "event.data.pad[100000] == 100000");
    T_ON(&t, "100000 in event.data.pad");
    F_ON(&t, "-1 in event.data.pad");
    free_event(&t);
    free(big);
}

static void test_refused(void)
{
    /* Functions, macros and operators outside the subset. */
    REFUSED("event.type.matches(\"w.*\")", "column 12: unsupported function 'matches'");
    REFUSED("matches(event.type, 'w')", "column 1: unsupported function 'matches'");
    REFUSED("size(event.type) > 1", "column 1: unsupported function 'size'");
    REFUSED("event.type.size() > 1", "column 12: unsupported function 'size'");
    REFUSED("timestamp(event.time) > timestamp('2020-01-01T00:00:00Z')",
            "column 1: unsupported function 'timestamp'");
    REFUSED("duration('1s') > duration('0s')", "column 1: unsupported function 'duration'");
    REFUSED("type(event.type) == string", "column 1: unsupported function 'type'");
    REFUSED("dyn(1) == 1", "column 1: unsupported function 'dyn'");
    REFUSED("uint(1) == 1", "column 1: unsupported function 'uint'");
    REFUSED("event.data.items.all(x, x > 1)", "column 18: unsupported macro 'all'");
    REFUSED("event.data.items.exists(x, x > 1)", "column 18: unsupported macro 'exists'");
    REFUSED("event.data.items.exists_one(x, x)", "column 18: unsupported macro 'exists_one'");
    REFUSED("event.data.items.map(x, x) == []", "column 18: unsupported macro 'map'");
    REFUSED("event.data.items.filter(x, x) == []", "column 18: unsupported macro 'filter'");
    REFUSED("event.data.n + 1 == 2", "column 14: unsupported arithmetic operator '+'");
    REFUSED("event.data.n - 1 == 0", "column 14: unsupported arithmetic operator '-'");
    REFUSED("event.data.n * 2 == 2", "column 14: unsupported arithmetic operator '*'");
    REFUSED("event.data.n / 2 == 2", "column 14: unsupported arithmetic operator '/'");
    REFUSED("event.data.n % 2 == 1", "column 14: unsupported arithmetic operator '%'");
    REFUSED("1 == event.data.n + 1", "column 19: unsupported arithmetic operator '+'");
    REFUSED("event.type == 'a' ? true : false", "column 19: unsupported conditional operator '?:'");
    REFUSED("{'a': 1}.a == 1", "column 1: unsupported map literal");
    REFUSED("event.data == b'abc'", "column 15: unsupported bytes literal");
    REFUSED("event.data == B\"abc\"", "column 15: unsupported bytes literal");
    REFUSED("event.data == rb'abc'", "column 15: unsupported bytes literal");
    REFUSED("event.data == Br'abc'", "column 15: unsupported bytes literal");
    REFUSED("event.data.n == 1u", "column 17: unsupported unsigned integer literal");
    REFUSED("event.data.n == 0x1U", "column 17: unsupported unsigned integer literal");
    /* has() and paths. */
    REFUSED("has(event.data['x'])", "column 5: has() needs a field selection, like event.data.x");
    REFUSED("has(event['type'])", "column 5: has() needs a field selection, like event.data.x");
    REFUSED("has(1)", "column 5: has() needs a field selection, like event.data.x");
    REFUSED("has(event.data.x, 1)", "column 1: has() takes exactly one argument");
    REFUSED("int() == 1", "column 1: int() takes exactly one argument");
    REFUSED("event.type.startsWith() ", "column 12: startsWith() takes exactly one argument");
    REFUSED("event.type.contains('a', 'b')", "column 12: contains() takes exactly one argument");
    REFUSED("foo == 1", "column 1: unknown identifier 'foo' (only 'event' is defined)");
    REFUSED("event == 1", "column 1: 'event' needs an attribute, like event.type");
    REFUSED("event.size()", "column 1: 'event' needs an attribute, like event.type");
    REFUSED("event[0] == 1", "column 7: expected an attribute name string in 'event[...]', "
                             "found '0'");
    REFUSED("event.data[event.type] == 1", "column 12: index must be a string or integer literal");
    REFUSED("event.data[1.5] == 1", "column 12: index must be a string or integer literal");
    REFUSED("int('1').x == 1", "column 9: field selection is only supported on event attributes "
                               "and data");
    REFUSED("'abc'[0] == 'a'", "column 6: indexing is only supported on event attributes and data");
    REFUSED("[1] == [1]", "column 1: a list is only supported on the right of 'in'");
    REFUSED("[1] in [[1]]", "column 1: a list is only supported on the right of 'in'");
    REFUSED("1 in [[1]]", "column 7: a list is only supported on the right of 'in'");
    REFUSED("![true]", "column 2: a list is only supported on the right of 'in'");
    REFUSED("[true]", "column 1: a list is only supported on the right of 'in'");
    REFUSED("[1].contains(1)", "column 1: a list is only supported on the right of 'in'");
    REFUSED("true || [true]", "column 9: a list is only supported on the right of 'in'");
    /* Lexical errors. */
    REFUSED("event.type == 'abc", "column 15: unterminated string literal");
    REFUSED("event.type == 'a\nb'", "column 15: unterminated string literal");
    REFUSED("event.type == '''abc''", "column 15: unterminated string literal");
    REFUSED("event.type == '\\q'", "column 16: invalid escape sequence in string literal");
    REFUSED("event.type == '\\ud800'", "column 16: invalid escape sequence in string literal");
    REFUSED("event.type == '\\U00110000'", "column 16: invalid escape sequence in string literal");
    REFUSED("event.type == '\\x4'", "column 16: invalid escape sequence in string literal");
    REFUSED("event.type == '\\400'", "column 16: invalid escape sequence in string literal");
    REFUSED("1 == 9223372036854775808", "column 6: integer literal out of range");
    REFUSED("1 == -9223372036854775809", "column 7: integer literal out of range");
    REFUSED("1 == 99999999999999999999", "column 6: integer literal out of range");
    REFUSED("1 == 0x", "column 6: malformed hexadecimal literal");
    REFUSED("1 == 1abc", "column 7: malformed number literal");
    REFUSED("event.type = 'a'", "column 12: unexpected '=' (comparison is '==')");
    REFUSED("true & false", "column 6: unexpected '&' (logical operators are '&&')");
    REFUSED("true | false", "column 6: unexpected '|' (logical operators are '||')");
    REFUSED("event.type == 'a' ;", "column 19: unexpected character ';'");
    REFUSED("event.type == \x01", "column 15: unexpected character 0x01");
    REFUSED("event.type == 'a' 'b'", "column 19: expected an operator or the end of the "
                                     "expression, found ''b''");
    REFUSED(".event.type == 'a'", "column 1: expected an operand, found '.'");
    REFUSED("event.type ==", "column 14: expected an operand, found end of expression");
    REFUSED("(event.type == 'a'", "column 19: expected ')', found end of expression");
    REFUSED("event.", "column 7: expected an attribute name after 'event.', found end of "
                      "expression");
    REFUSED("event.data.", "column 12: expected a field or method name after '.', found end of "
                           "expression");
    REFUSED("event.data[0", "column 13: expected ']', found end of expression");
    REFUSED("event.type in [1, 2", "column 20: expected ',' or ']', found end of expression");
    REFUSED("int(1", "column 6: expected ',' or ')', found end of expression");
    REFUSED("event.type == 'this is a rather long string literal' 'x'",
            "column 54: expected an operator or the end of the expression, found ''x''");
    REFUSED("true true_but_a_very_long_identifier_name",
            "column 6: expected an operator or the end of the expression, found "
            "'true_but_a_very_long_ide...'");
    /* Columns count characters; quoted tokens stay on one line and end on a character. */
    REFUSED("'é' == 'é' ;", "column 12: unexpected character ';'");
    REFUSED("true '''a\nb'''", "column 6: expected an operator or the end of the expression, "
                               "found ''''a b''''");
    REFUSED("true 'ééééééééééééé'", "column 6: expected an operator or the end of the "
                                    "expression, found ''ééééééééééé...'");
    REFUSED("", "empty expression");
    REFUSED("   // nothing\n", "empty expression");
    refused_len("event.type == '\xff'", 18, "expression is not valid UTF-8", __LINE__);
    refused_len("true\0", 5, "column 5: unexpected character 0x00", __LINE__);
    /* NULL message buffers are allowed. */
    rc_cel_t *p = (rc_cel_t *)1;
    ASSERT_EQ(rc_cel_compile("foo", 3, &p, NULL, 0), RC_ECONFIG);
    ASSERT(p == NULL);
    char tiny[8];
    ASSERT_EQ(rc_cel_compile("foo", 3, &p, tiny, sizeof(tiny)), RC_ECONFIG);
    ASSERT_STR_EQ(tiny, "column ");
}

/* `src`, at a limit, compiles and matches (no room to wrap it in a negation). */
static void matches_at_limit(const char *src)
{
    rc_cel_t *p;
    char err[128];
    if (rc_cel_compile(src, strlen(src), &p, err, sizeof(err)) != 0)
        RC_TEST_FAIL("`%.60s...` does not compile: %s", src, err);
    ASSERT(rc_cel_match_event(p, &ev_json.ev) && rc_cel_match_record(p, &ev_json.view));
    rc_cel_free(p);
}

/* Length and nesting limits: at the limit compiles, past it is refused. */
static void test_limits(void)
{
    char *src = malloc(RC_CEL_MAX_EXPR + 2);
    ASSERT(src != NULL);
    /* A long flat || chain at exactly the length limit. */
    size_t n = 0;
    while (n + 20 < RC_CEL_MAX_EXPR)
        n += (size_t)sprintf(src + n, "%sfalse", n ? " || " : "");
    n += (size_t)sprintf(src + n, " || true");
    while (n < RC_CEL_MAX_EXPR)
        src[n++] = ' ';
    src[n] = '\0';
    ASSERT_EQ(n, RC_CEL_MAX_EXPR);
    matches_at_limit(src);
    src[n++] = ' ';
    src[n] = '\0';
    char want[128];
    snprintf(want, sizeof(want), "expression longer than the limit (%u bytes, limit %u)",
             RC_CEL_MAX_EXPR + 1, RC_CEL_MAX_EXPR);
    REFUSED(src, want);

    /* 63 parentheses (64 levels with the whole) compile, one more does not. */
    for (int depth = 63; depth <= 64; depth++) {
        n = 0;
        for (int k = 0; k < depth; k++)
            src[n++] = '(';
        n += (size_t)sprintf(src + n, "true");
        for (int k = 0; k < depth; k++)
            src[n++] = ')';
        src[n] = '\0';
        if (depth == 63)
            matches_at_limit(src);
        else
            REFUSED(src, "column 65: expression nested too deeply (limit 64 levels)");
    }
    /* The same for ! chains, lists and calls, and 10,000 of them stay refused, not a crash. */
    memset(src, '!', 10000);
    strcpy(src + 10000, "true");
    REFUSED(src, "column 64: expression nested too deeply (limit 64 levels)");
    memset(src, '[', 10000);
    src[10000] = '\0';
    REFUSED(src, "column 65: expression nested too deeply (limit 64 levels)");
    n = 0;
    for (int k = 0; k < 3000; k++)
        n += (size_t)sprintf(src + n, "int(");
    src[n] = '\0';
    REFUSED(src, "column 257: expression nested too deeply (limit 64 levels)");
    /* A comparison chain makes the tree taller even without parentheses. */
    n = (size_t)sprintf(src, "true");
    for (int k = 0; k < 70; k++)
        n += (size_t)sprintf(src + n, " == true");
    REFUSED(src, "column 510: expression nested too deeply (limit 64 levels)");
    /* A path of 64 steps compiles, 65 do not. */
    n = (size_t)sprintf(src, "event.data");
    for (int k = 0; k < 64; k++)
        n += (size_t)sprintf(src + n, ".a");
    n += (size_t)sprintf(src + n, " == 1");
    E(src);
    n = (size_t)sprintf(src, "event.data");
    for (int k = 0; k < 65; k++)
        n += (size_t)sprintf(src + n, ".a");
    REFUSED(src, "column 139: path longer than 64 steps");
    free(src);
}

/* A program is immutable: threads evaluating one program over their own events agree. */
typedef struct {
    const rc_cel_t *p;
    const test_event_t *yes, *no;
    int mismatches;
} thread_arg_t;

static void *evaluate_many(void *arg)
{
    thread_arg_t *a = arg;
    for (int k = 0; k < 20000; k++) {
        if (!rc_cel_match_event(a->p, &a->yes->ev) || rc_cel_match_event(a->p, &a->no->ev) ||
            !rc_cel_match_record(a->p, &a->yes->view) || rc_cel_match_record(a->p, &a->no->view))
            a->mismatches++;
    }
    return NULL;
}

static void test_threads(void)
{
    const char *expr = "event.data.widget.price > 100 && event.data.s.endsWith('😀') && "
                       "string(event.data.n) == '1' && 'b' in event.data.widget.tags";
    rc_cel_t *p;
    char err[128];
    ASSERT_EQ(rc_cel_compile(expr, strlen(expr), &p, err, sizeof(err)), 0);
    test_event_t no;
    const char *other = "{\"widget\": {\"price\": 99}}";
    make_event(&no, NULL, other, strlen(other));
    pthread_t th[4];
    thread_arg_t args[4];
    for (int k = 0; k < 4; k++) {
        args[k] = (thread_arg_t){p, &ev_json, &no, 0};
        ASSERT_EQ(pthread_create(&th[k], NULL, evaluate_many, &args[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        ASSERT_EQ(pthread_join(th[k], NULL), 0);
        ASSERT_EQ(args[k].mismatches, 0);
    }
    free_event(&no);
    rc_cel_free(p);
}

int main(void)
{
    make_event(&ev_json, "application/json", default_data, strlen(default_data));
    test_dapr_examples();
    test_attributes();
    test_data_paths();
    test_operators();
    test_logic();
    test_functions();
    test_literals();
    test_data_kinds();
    test_malformed_data();
    test_big_data();
    test_refused();
    test_limits();
    test_threads();
    free_event(&ev_json);
    printf("test_cel: ok\n");
    return 0;
}
