/* CESQL over ringcast's event representations: rc_cesql_get_record (ring records) and
 * rc_cesql_get_event (the in-memory model) must give the same answers, with Integer and Boolean
 * extensions typed and every other type read as its canonical String. */
#include "core/cesql.h"
#include "core/cesql_record.h"
#include "core/event.h"
#include "core/record.h"
#include "tests/test.h"

#include <pthread.h>

static rc_event_t ev;
static rc_record_view_t view;

static void build(void)
{
    static rc_ce_ext_t ext[16];
    rc_event_init(&ev, ext, 16);
    ev.specversion = RC_STR("1.0");
    ev.id = RC_STR("order-17");
    ev.source = RC_STR("https://example.com/shop");
    ev.type = RC_STR("com.example.order.created");
    ev.time = RC_STR("2026-11-23T08:00:00.5+01:00");
    ASSERT_EQ(rc_event_set_ext(&ev, NULL, RC_STR("priority"), RC_STR("-3"), RC_CE_INTEGER), 0);
    ASSERT_EQ(rc_event_set_ext(&ev, NULL, RC_STR("urgent"), RC_STR("false"), RC_CE_BOOLEAN), 0);
    ASSERT_EQ(rc_event_set_ext(&ev, NULL, RC_STR("region"), RC_STR("eu-west"), RC_CE_STRING), 0);
    ASSERT_EQ(
        rc_event_set_ext(&ev, NULL, RC_STR("callback"), RC_STR("https://cb.example/x"), RC_CE_URI),
        0);
    ASSERT_EQ(rc_event_set_ext(&ev, NULL, RC_STR("blob"), RC_STR("AQID"), RC_CE_BINARY), 0);
    ASSERT_EQ(rc_event_set_ext(&ev, NULL, RC_STR("empty"), RC_STR(""), RC_CE_STRING), 0);
    size_t size = rc_record_size(&ev), len;
    void *rec = aligned_alloc(8, size);
    ASSERT(rec != NULL);
    ASSERT_EQ(rc_record_encode(&ev, rec, size, &len), 0);
    ASSERT_EQ(rc_record_decode(rec, len, &view), 0);
}

/* Evaluates over both accessors; both must agree with the expectation. */
static void expect(const char *expr, uint32_t type, int32_t i, const char *s, rc_cesql_errkind_t e)
{
    rc_cesql_program_t *p;
    rc_cesql_error_t err;
    if (rc_cesql_compile(expr, strlen(expr), &p, &err) != 0)
        RC_TEST_FAIL("`%s`: %s", expr, err.msg);
    char scratch[256];
    for (int pass = 0; pass < 3; pass++) {
        rc_cesql_result_t r;
        if (pass == 0)
            rc_cesql_eval(p, rc_cesql_get_record, &view, scratch, sizeof(scratch), &r);
        else if (pass == 1)
            rc_cesql_eval(p, rc_cesql_get_event, &ev, scratch, sizeof(scratch), &r);
        else
            rc_cesql_eval_record(p, &view, scratch, sizeof(scratch), &r);
        const char *via = pass == 0 ? "record" : pass == 1 ? "event" : "eval_record";
        if (r.error != e || r.value.type != type)
            RC_TEST_FAIL("`%s` via %s: type %u error %d, want type %u error %d", expr, via,
                         r.value.type, r.error, type, e);
        if (type == RC_CESQL_TYPE_STRING &&
            (r.value.len != strlen(s) || memcmp(r.value.u.s, s, r.value.len) != 0))
            RC_TEST_FAIL("`%s` via %s: '%.*s', want '%s'", expr, via, (int)r.value.len, r.value.u.s,
                         s);
        if (type != RC_CESQL_TYPE_STRING && r.value.u.i != i &&
            !(type == RC_CESQL_TYPE_BOOL && r.value.u.b == (i != 0)))
            RC_TEST_FAIL("`%s` via %s: %d, want %d", expr, via, r.value.u.i, i);
    }
    /* The filter entry points agree with the evaluation, fast path included. */
    rc_cesql_errkind_t k1, k2;
    bool m1 = rc_cesql_match_record(p, &view, &k1);
    bool m2 = rc_cesql_match(p, rc_cesql_get_event, &ev, &k2);
    bool want = e == RC_CESQL_OK && type == RC_CESQL_TYPE_BOOL && i != 0;
    if (m1 != want || m2 != want || k1 != e || k2 != e)
        RC_TEST_FAIL("`%s`: match_record %d (%d), match %d (%d), want %d (%d)", expr, m1, k1, m2,
                     k2, want, e);
    ASSERT_EQ(rc_cesql_match_record(p, &view, NULL), want);
    rc_cesql_destroy(p);
}

#define BOOL(e, b) expect(e, RC_CESQL_TYPE_BOOL, b, NULL, RC_CESQL_OK)
#define INT(e, v)  expect(e, RC_CESQL_TYPE_INT, v, NULL, RC_CESQL_OK)
#define STR(e, v)  expect(e, RC_CESQL_TYPE_STRING, 0, v, RC_CESQL_OK)

/* Threads compile their own programs (the first compile initialises the case-mapping locale)
 * and share one program: evaluation must be race-free (run under TSan too). */
static rc_cesql_program_t *shared_prog;

static void *worker(void *arg)
{
    (void)arg;
    const char *e = "UPPER(region) = 'EU-WEST' AND priority < 0";
    rc_cesql_program_t *own;
    if (rc_cesql_compile(e, strlen(e), &own, NULL) != 0)
        return (void *)1;
    uintptr_t bad = 0;
    for (int i = 0; i < 20000; i++) {
        rc_cesql_errkind_t k;
        bad += !rc_cesql_match_record(own, &view, &k) || k != RC_CESQL_OK;
        bad += !rc_cesql_match_record(shared_prog, &view, &k) || k != RC_CESQL_OK;
    }
    rc_cesql_destroy(own);
    return (void *)bad;
}

static void test_threads(void)
{
    const char *e = "LOWER(type) LIKE '%order%' AND region IN ('eu-west') AND NOT urgent";
    ASSERT_EQ(rc_cesql_compile(e, strlen(e), &shared_prog, NULL), 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, worker, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        ASSERT_EQ(pthread_join(t[i], &bad), 0);
        ASSERT_EQ((uintptr_t)bad, 0);
    }
    rc_cesql_destroy(shared_prog);
}

int main(void)
{
    build();
    STR("type", "com.example.order.created");
    STR("time", "2026-11-23T08:00:00.5+01:00"); /* as carried, not re-formatted */
    STR("source", "https://example.com/shop");
    INT("priority", -3);
    INT("priority * 2", -6);
    BOOL("urgent", false);
    BOOL("NOT urgent AND priority < 0", true);
    STR("region", "eu-west");
    STR("callback", "https://cb.example/x");
    STR("blob", "AQID");
    STR("empty", "");
    BOOL("EXISTS empty AND EXISTS id AND NOT EXISTS subject AND NOT EXISTS nothere", true);
    BOOL("type = 'com.example.order.created' AND source LIKE 'https://%'", true);
    BOOL("region IN ('us-east', 'eu-west') AND priority IN ('-3')", true);
    BOOL("urgent = 'false' AND priority = '-3'", true);
    BOOL("Region = 'eu-west'", true);
    /* One-comparison programs on core attributes take the record fast path. */
    BOOL("type = 'com.example.order.created'", true);
    BOOL("type = 'com.example.order.updated'", false);
    BOOL("type = 'com.example.order.create'", false);
    BOOL("type != 'com.example.order.created'", false);
    BOOL("type <> 'x'", true);
    BOOL("id = 'order-17'", true);
    BOOL("id = 'order-18'", false);
    BOOL("specversion = '1.0'", true);
    BOOL("time = '2026-11-23T08:00:00.5+01:00'", true);
    expect("subject = 'x'", RC_CESQL_TYPE_BOOL, 0, NULL, RC_CESQL_ERR_MISSING_ATTRIBUTE);
    expect("subject <> 'x'", RC_CESQL_TYPE_BOOL, 0, NULL, RC_CESQL_ERR_MISSING_ATTRIBUTE);
    BOOL("region = 'eu-west'", true);
    BOOL("priority = '-3'", true);
    BOOL("urgent != 'false'", false);
    expect("subject", RC_CESQL_TYPE_BOOL, 0, NULL, RC_CESQL_ERR_MISSING_ATTRIBUTE);
    expect("nothere = 1", RC_CESQL_TYPE_BOOL, 0, NULL, RC_CESQL_ERR_MISSING_ATTRIBUTE);
    test_threads();
    free((void *)view.base);
    printf("test_cesql_record: ok\n");
    return 0;
}
