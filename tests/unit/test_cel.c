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

static void test_refused(void)
{
    REFUSED("event.type.matches(\"w.*\")", "column 12: unsupported function 'matches'");
    REFUSED("size(event.type) > 1", "column 1: unsupported function 'size'");
    REFUSED("event.data.items.all(x, x > 1)", "column 18: unsupported macro 'all'");
    REFUSED("event.data.n + 1 == 2", "column 14: unsupported arithmetic operator '+'");
    REFUSED("event.type == 'a' ? true : false", "column 19: unsupported conditional operator '?:'");
    REFUSED("{'a': 1}.a == 1", "column 1: unsupported map literal");
    REFUSED("event.data == b'abc'", "column 15: unsupported bytes literal");
    REFUSED("event.data.n == 1u", "column 17: unsupported unsigned integer literal");
    REFUSED("", "empty expression");
}

int main(void)
{
    make_event(&ev_json, "application/json", default_data, strlen(default_data));
    test_dapr_examples();
    test_refused();
    free_event(&ev_json);
    printf("test_cel: ok\n");
    return 0;
}
