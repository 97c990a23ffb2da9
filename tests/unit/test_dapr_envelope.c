/* Unit tests of the Dapr publish envelope (net/dapr_envelope.h) and the bulk body
 * (net/dapr_bulk.h): ids, trace context, metadata.* parameters, the envelope of each kind of
 * body, CloudEvent bodies with Dapr's defaults, and every refusal with its errorCode. Each built
 * event must validate and render as the structured JSON the contract describes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec_json.h"
#include "core/record.h"
#include "core/validate.h"
#include "net/dapr_bulk.h"
#include "net/dapr_envelope.h"
#include "tests/test.h"

static rc_arena_t arena;
static rc_dapr_gen_t gen;

/* 2026-01-02T03:04:05Z */
#define NOW_NS (1767323045ll * 1000000000ll + 123)

static rc_dapr_publish_t pub(const char *ct)
{
    rc_dapr_publish_t p;
    memset(&p, 0, sizeof(p));
    p.pubsub = RC_STR("pubsub");
    p.topic = RC_STR("orders/eu");
    p.app_id = RC_STR("ringcast");
    p.content_type = rc_str(ct);
    p.now_ns = NOW_NS;
    return p;
}

static rc_dapr_meta_t meta(const char *query)
{
    rc_dapr_meta_t m;
    rc_dapr_error_t e;
    memset(&m, 0, sizeof(m));
    if (query != NULL && rc_dapr_meta_query(query, strlen(query), &arena, &m, &e) != 0)
        RC_TEST_FAIL("query %s: %s", query, e.msg);
    return m;
}

static const char *ext(const rc_event_t *ev, const char *name)
{
    static char buf[4][512];
    static int k;
    const rc_ce_ext_t *x = rc_event_find_ext(ev, rc_str(name));
    if (x == NULL)
        return "(absent)";
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%.*s", (int)x->value.len, x->value.ptr);
    return buf[k];
}

static const char *s(rc_str_t v)
{
    static char buf[4][512];
    static int k;
    if (v.ptr == NULL)
        return "(absent)";
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%.*s", (int)v.len, v.ptr);
    return buf[k];
}

/* The event as structured JSON, which is how Dapr subscribers and `ringcast tail` see it. */
static const char *json(const rc_event_t *ev)
{
    static char buf[8192];
    size_t len;
    int rc = rc_ce_write_structured(ev, 0, buf, sizeof(buf) - 1, &len);
    ASSERT_EQ(rc, 0);
    buf[len] = '\0';
    return buf;
}

/* Builds an envelope that must succeed, and checks it validates and encodes as a record. */
static void build(const rc_dapr_publish_t *req, const rc_dapr_meta_t *m, const char *body,
                  size_t len, rc_event_t *ev)
{
    rc_dapr_error_t e;
    rc_dapr_publish_t copy = *req, *p = &copy;
    if (rc_dapr_request_check(p, &e) != 0 ||
        rc_dapr_envelope(&gen, p, m, (rc_str_t){body, len}, &arena, ev, &e) != 0)
        RC_TEST_FAIL("envelope of %.*s: %s %s", (int)len, body, rc_dapr_code_name(e.code), e.msg);
    ASSERT_EQ(rc_event_validate(ev, NULL), 0);
    ASSERT_GT(rc_record_size(ev), 0);
}

static void refuse(const rc_dapr_publish_t *req, const rc_dapr_meta_t *m, const char *body,
                   rc_dapr_code_t code, int status, const char *msg_part)
{
    rc_dapr_error_t e;
    rc_dapr_publish_t copy = *req, *p = &copy;
    rc_event_t ev;
    memset(&e, 0, sizeof(e));
    int rc = rc_dapr_request_check(p, &e);
    if (rc == 0)
        rc = rc_dapr_envelope(&gen, p, m, rc_str(body), &arena, &ev, &e);
    if (rc == 0)
        RC_TEST_FAIL("%s was accepted: %s", body, json(&ev));
    if (e.code != code || e.status != status || strstr(e.msg, msg_part) == NULL)
        RC_TEST_FAIL("%s: got %s %d '%s', want %s %d containing '%s'", body,
                     rc_dapr_code_name(e.code), e.status, e.msg, rc_dapr_code_name(code), status,
                     msg_part);
}

static void test_ids(void)
{
    char a[RC_DAPR_UUID_LEN + 1] = {0}, b[RC_DAPR_UUID_LEN + 1] = {0};
    for (int i = 0; i < 1000; i++) {
        rc_dapr_uuid4(&gen.rng, a);
        ASSERT(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
        ASSERT_EQ(a[14], '4');
        ASSERT(strchr("89ab", a[19]) != NULL);
        for (int k = 0; k < RC_DAPR_UUID_LEN; k++)
            ASSERT(k == 8 || k == 13 || k == 18 || k == 23 || strchr("0123456789abcdef", a[k]));
        ASSERT(strcmp(a, b) != 0);
        memcpy(b, a, sizeof(a));
    }
    char tp[RC_DAPR_TRACEPARENT_LEN + 1] = {0};
    rc_dapr_traceparent(&gen.rng, tp);
    ASSERT(rc_dapr_traceparent_valid(rc_str(tp)));
    ASSERT(strncmp(tp, "00-", 3) == 0 && strcmp(tp + 52, "-01") == 0);
    static const char *const good[] = {
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future",
    };
    static const char *const bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!rc_dapr_traceparent_valid(rc_str(good[i])))
            RC_TEST_FAIL("valid traceparent refused: %s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rc_dapr_traceparent_valid(rc_str(bad[i])))
            RC_TEST_FAIL("invalid traceparent accepted: %s", bad[i]);
}

static void test_meta_query(void)
{
    rc_dapr_meta_t m = meta("x=1&metadata.rawPayload=true&METADATA.ttlInSeconds=10&"
                            "metadata.cloudevent.id=a%20b+c&metadata.rawPayload=false&"
                            "metadata.unknownKey=1&metadata.partitionKey=&metadata.&=&&");
    ASSERT_STR_EQ(s(m.v[RC_DAPR_META_RAW_PAYLOAD]), "true"); /* the first one wins */
    ASSERT_STR_EQ(s(m.v[RC_DAPR_META_TTL]), "10");
    ASSERT_STR_EQ(s(m.v[RC_DAPR_META_CE_ID]), "a b c");
    ASSERT_STR_EQ(s(m.v[RC_DAPR_META_PARTITION_KEY]), "");
    ASSERT_STR_EQ(s(m.v[RC_DAPR_META_CE_SOURCE]), "(absent)");
    ASSERT_EQ(m.from_entry, 0);
    m = meta("metadata.cloudevent.type=%F0%9F%98%80");
    ASSERT_STR_EQ(s(m.v[RC_DAPR_META_CE_TYPE]), "\xf0\x9f\x98\x80");
    ASSERT_EQ(rc_dapr_meta_lookup(RC_STR("cloudevent.traceparent")), RC_DAPR_META_CE_TRACEPARENT);
    ASSERT_EQ(rc_dapr_meta_lookup(RC_STR("rawpayload")), -1); /* names are case-sensitive */

    static const char *const bad[] = {"metadata.rawPayload=%zz", "metadata.ttl%2", "metadata.x=%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rc_dapr_meta_t mm;
        rc_dapr_error_t e;
        memset(&mm, 0, sizeof(mm));
        ASSERT_EQ(rc_dapr_meta_query(bad[i], strlen(bad[i]), &arena, &mm, &e), -1);
        ASSERT_EQ(e.code, RC_DAPR_E_MALFORMED);
        ASSERT_EQ(e.status, 400);
        ASSERT(strstr(e.msg, "%-escape") != NULL);
    }
    /* A parameter that is not metadata is not decoded, so its escapes cannot fail. */
    rc_dapr_meta_t mm = meta("other=%zz");
    ASSERT_STR_EQ(s(mm.v[RC_DAPR_META_RAW_PAYLOAD]), "(absent)");
}

static void check_envelope_attrs(const rc_event_t *ev, const char *ct)
{
    ASSERT_STR_EQ(s(ev->specversion), "1.0");
    ASSERT_EQ(ev->id.len, RC_DAPR_UUID_LEN);
    ASSERT_EQ(ev->id.ptr[14], '4');
    ASSERT_STR_EQ(s(ev->source), "ringcast");
    ASSERT_STR_EQ(s(ev->type), "com.dapr.event.sent");
    ASSERT_STR_EQ(s(ev->datacontenttype), ct);
    ASSERT_STR_EQ(s(ev->time), "2026-01-02T03:04:05Z");
    ASSERT_STR_EQ(ext(ev, "topic"), "orders/eu");
    ASSERT_STR_EQ(ext(ev, "pubsubname"), "pubsub");
    ASSERT(rc_dapr_traceparent_valid(rc_str(ext(ev, "traceparent"))));
    ASSERT_STR_EQ(ext(ev, "traceid"), ext(ev, "traceparent"));
}

static void test_json_body(void)
{
    rc_dapr_publish_t p = pub("application/json");
    rc_dapr_meta_t m = meta(NULL);
    rc_event_t ev;
    const char *body = " \n{\"total\": 1.10, \"big\": 12345678901234567890, \"s\":\"\\u00e9\"}\r\n";
    build(&p, &m, body, strlen(body), &ev);
    check_envelope_attrs(&ev, "application/json");
    ASSERT_STR_EQ(s(ev.data),
                  "{\"total\": 1.10, \"big\": 12345678901234567890, \"s\":\"\\u00e9\"}");
    ASSERT_STR_EQ(ext(&ev, "tracestate"), "(absent)");
    ASSERT(strstr(json(&ev), ",\"data\":{\"total\": 1.10, \"big\": 12345678901234567890") != NULL);

    /* A JSON content type over something that is no JSON: a string, as in Dapr. */
    p = pub("application/merge-patch+json; charset=utf-8");
    build(&p, &m, "not \"json\"\n{", 12, &ev);
    ASSERT_STR_EQ(s(ev.data), "\"not \\\"json\\\"\\u000a{\"");
    ASSERT(strstr(json(&ev), ",\"data\":\"not \\\"json\\\"\\n{\"") != NULL ||
           strstr(json(&ev), ",\"data\":\"not \\\"json\\\"\\u000a{\"") != NULL);
    build(&p, &m, "", 0, &ev);
    ASSERT_STR_EQ(s(ev.data), "\"\"");
    /* Bytes no JSON string can hold stay bytes. */
    build(&p, &m, "\xff\xfe", 2, &ev);
    ASSERT_EQ(ev.data.len, 2);
    ASSERT(strstr(json(&ev), "\"data_base64\":\"//4=\"") != NULL);
}

static void test_text_and_binary_bodies(void)
{
    rc_dapr_meta_t m = meta(NULL);
    rc_event_t ev;
    rc_dapr_publish_t p = pub(NULL);
    build(&p, &m, "hello {", 7, &ev);
    check_envelope_attrs(&ev, "text/plain");
    ASSERT_STR_EQ(s(ev.data), "hello {");
    ASSERT(strstr(json(&ev), ",\"data\":\"hello {\"}") != NULL);
    build(&p, &m, "", 0, &ev);
    ASSERT_STR_EQ(s(ev.data), "");

    p = pub("application/octet-stream");
    const char bin[] = {0, 1, (char)0xff, 'x'};
    build(&p, &m, bin, sizeof(bin), &ev);
    check_envelope_attrs(&ev, "application/octet-stream");
    ASSERT_EQ(ev.data.len, sizeof(bin));
    ASSERT(memcmp(ev.data.ptr, bin, sizeof(bin)) == 0);
    ASSERT(strstr(json(&ev), ",\"data_base64\":\"AAH/eA==\"") != NULL);

    p = pub("garbage");
    refuse(&p, &m, "x", RC_DAPR_E_MALFORMED, 400, "Content-Type 'garbage' is not a media type");
    p = pub("text/plain");
    p.app_id = RC_STR("my app");
    refuse(&p, &m, "x", RC_DAPR_E_MALFORMED, 400, "dapr-app-id 'my app'");
    p = pub("text/plain");
    p.topic = RC_STR("a\nb");
    refuse(&p, &m, "x", RC_DAPR_E_MALFORMED, 400, "topic 'a\nb'");
}

static void test_trace_headers(void)
{
    rc_dapr_meta_t m = meta(NULL);
    rc_event_t ev;
    rc_dapr_publish_t p = pub("text/plain");
    p.traceparent = RC_STR("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    p.tracestate = RC_STR("congo=t61rcWkgMzE");
    p.app_id = RC_STR("checkout");
    build(&p, &m, "x", 1, &ev);
    ASSERT_STR_EQ(ext(&ev, "traceparent"),
                  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    ASSERT_STR_EQ(ext(&ev, "traceid"), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    ASSERT_STR_EQ(ext(&ev, "tracestate"), "congo=t61rcWkgMzE");
    ASSERT_STR_EQ(s(ev.source), "checkout");
    /* A traceparent header that is none: a new one. A tracestate no attribute can hold: none. */
    p.traceparent = RC_STR("garbage");
    p.tracestate = RC_STR("a\x01");
    build(&p, &m, "x", 1, &ev);
    ASSERT(rc_dapr_traceparent_valid(rc_str(ext(&ev, "traceparent"))));
    ASSERT_STR_EQ(ext(&ev, "tracestate"), "(absent)");
}

static void test_metadata_overrides(void)
{
    rc_dapr_meta_t m =
        meta("metadata.cloudevent.id=my-id&metadata.cloudevent.source=%2Fshop&"
             "metadata.cloudevent.type=order.placed&metadata.cloudevent.subject=o-1&"
             "metadata.cloudevent.traceid=tid&metadata.cloudevent.traceparent=tp&"
             "metadata.cloudevent.tracestate=ts&metadata.partitionKey=customer-7&"
             "metadata.ttlInSeconds=90&metadata.rawPayload=false&metadata.somethingElse=1");
    rc_event_t ev;
    rc_dapr_publish_t p = pub("application/json");
    build(&p, &m, "{}", 2, &ev);
    ASSERT_STR_EQ(s(ev.id), "my-id");
    ASSERT_STR_EQ(s(ev.source), "/shop");
    ASSERT_STR_EQ(s(ev.type), "order.placed");
    ASSERT_STR_EQ(s(ev.subject), "o-1");
    ASSERT_STR_EQ(ext(&ev, "traceid"), "tid");
    ASSERT_STR_EQ(ext(&ev, "traceparent"), "tp");
    ASSERT_STR_EQ(ext(&ev, "tracestate"), "ts");
    ASSERT_STR_EQ(ext(&ev, "partitionkey"), "customer-7");
    ASSERT_STR_EQ(ext(&ev, "expiration"), "2026-01-02T03:05:35Z");
    ASSERT_STR_EQ(ext(&ev, "rawpayload"), "(absent)");
    ASSERT_STR_EQ(ext(&ev, "somethingelse"), "(absent)");
    ASSERT_EQ(rc_event_find_ext(&ev, RC_STR("expiration"))->type, RC_CE_TIMESTAMP);

    /* Empty overrides change nothing. */
    m = meta("metadata.cloudevent.id=&metadata.cloudevent.source=");
    build(&p, &m, "{}", 2, &ev);
    ASSERT_EQ(ev.id.len, RC_DAPR_UUID_LEN);
    ASSERT_STR_EQ(s(ev.source), "ringcast");

    static const struct {
        const char *query, *msg;
    } bad[] = {
        {"metadata.rawPayload=maybe", "metadata.rawPayload: 'maybe' is not a boolean"},
        {"metadata.rawPayload=", "metadata.rawPayload: '' is not a boolean"},
        {"metadata.ttlInSeconds=0", "metadata.ttlInSeconds: '0' is not a positive"},
        {"metadata.ttlInSeconds=-5", "metadata.ttlInSeconds: '-5'"},
        {"metadata.ttlInSeconds=1e3", "metadata.ttlInSeconds: '1e3'"},
        {"metadata.ttlInSeconds=ten", "metadata.ttlInSeconds: 'ten'"},
        {"metadata.ttlInSeconds=99999999999999999999", "metadata.ttlInSeconds"},
        {"metadata.cloudevent.source=a%20b", "metadata.cloudevent.source: 'a b' is not a URI"},
        {"metadata.cloudevent.id=%01", "metadata.cloudevent.id"},
        {"metadata.cloudevent.traceparent=%0A", "metadata.cloudevent.traceparent"},
        {"metadata.partitionKey=%FF", "metadata.partitionKey"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m = meta(bad[i].query);
        refuse(&p, &m, "{}", RC_DAPR_E_METADATA, 400, bad[i].msg);
    }
    /* Go's ParseBool spellings. */
    m = meta("metadata.rawPayload=True");
    build(&p, &m, "{}", 2, &ev);
    ASSERT_STR_EQ(ext(&ev, "rawpayload"), "true");
    m = meta("metadata.rawPayload=0&metadata.ttlInSeconds=%2B7");
    build(&p, &m, "{}", 2, &ev);
    ASSERT_STR_EQ(ext(&ev, "rawpayload"), "(absent)");
    ASSERT_STR_EQ(ext(&ev, "expiration"), "2026-01-02T03:04:12Z");
}

static void test_raw_payload(void)
{
    rc_dapr_meta_t m = meta("metadata.rawPayload=true");
    rc_event_t ev;
    rc_dapr_publish_t p = pub(NULL);
    build(&p, &m, "not json {", 10, &ev);
    check_envelope_attrs(&ev, "application/octet-stream");
    ASSERT_STR_EQ(s(ev.data), "not json {");
    ASSERT_STR_EQ(ext(&ev, "rawpayload"), "true");
    /* Under a JSON type the bytes are not quoted; a CloudEvent body is not decoded. */
    p = pub("application/json");
    build(&p, &m, " [1] ", 5, &ev);
    ASSERT_STR_EQ(s(ev.data), " [1] ");
    p = pub("application/cloudevents+json");
    build(&p, &m, "{\"id\":1}", 8, &ev);
    ASSERT_STR_EQ(s(ev.data), "{\"id\":1}");
    ASSERT_STR_EQ(s(ev.type), "com.dapr.event.sent");
}

static void test_cloudevent_body(void)
{
    rc_dapr_meta_t m = meta(NULL);
    rc_event_t ev;
    rc_dapr_publish_t p = pub("application/cloudevents+json; charset=utf-8");
    const char *full =
        "{\"specversion\":\"1.0\",\"id\":\"e-1\",\"source\":\"/app\",\"type\":\"t\","
        "\"topic\":\"other\",\"pubsubname\":\"other\",\"myext\":7,"
        "\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\","
        "\"time\":\"2020-01-01T00:00:00Z\",\"data\":{\"n\":1.50}}";
    build(&p, &m, full, strlen(full), &ev);
    ASSERT_STR_EQ(s(ev.id), "e-1");
    ASSERT_STR_EQ(s(ev.source), "/app");
    ASSERT_STR_EQ(s(ev.type), "t");
    ASSERT_STR_EQ(s(ev.time), "2020-01-01T00:00:00Z");
    ASSERT_STR_EQ(ext(&ev, "topic"), "orders/eu");
    ASSERT_STR_EQ(ext(&ev, "pubsubname"), "pubsub");
    ASSERT_STR_EQ(ext(&ev, "myext"), "7");
    ASSERT_STR_EQ(ext(&ev, "traceparent"),
                  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    ASSERT_STR_EQ(ext(&ev, "traceid"), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    ASSERT_STR_EQ(s(ev.data), "{\"n\":1.50}");

    /* Dapr's defaults: source, type, specversion (and ringcast's id), missing or null. */
    const char *bare = " {\"source\": null, \"data\": [1.0, 2e10], \"subject\":\"s\"} ";
    build(&p, &m, bare, strlen(bare), &ev);
    ASSERT_STR_EQ(s(ev.specversion), "1.0");
    ASSERT_STR_EQ(s(ev.source), "Dapr");
    ASSERT_STR_EQ(s(ev.type), "com.dapr.event.sent");
    ASSERT_EQ(ev.id.len, RC_DAPR_UUID_LEN);
    ASSERT_STR_EQ(s(ev.subject), "s");
    ASSERT_STR_EQ(s(ev.data), "[1.0, 2e10]");
    ASSERT_STR_EQ(s(ev.time), "2026-01-02T03:04:05Z");
    ASSERT(rc_dapr_traceparent_valid(rc_str(ext(&ev, "traceid"))));
    build(&p, &m, "{}", 2, &ev);
    ASSERT_STR_EQ(s(ev.source), "Dapr");
    build(&p, &m, "{ }", 3, &ev);
    ASSERT_STR_EQ(s(ev.type), "com.dapr.event.sent");
    /* Overrides apply to a CloudEvent body too. */
    m = meta("metadata.cloudevent.type=x.y&metadata.ttlInSeconds=1");
    build(&p, &m, full, strlen(full), &ev);
    ASSERT_STR_EQ(s(ev.type), "x.y");
    ASSERT_STR_EQ(ext(&ev, "expiration"), "2026-01-02T03:04:06Z");

    m = meta(NULL);
    static const struct {
        const char *body, *msg;
    } bad[] = {
        {"not json", "malformed JSON"},
        {"", "malformed JSON"},
        {"[1]", "event must be a JSON object"},
        {"{x}", "malformed JSON"},
        {"{\"id\":\"1\"} x", "malformed JSON"},
        {"{\"a\":1,}", "malformed JSON"},
        {"{\"specversion\":\"0.3\"}", "specversion"},
        {"{\"id\":\"\"}", "id"},
        {"{\"source\":\"a b\"}", "source"},
        {"{\"time\":\"yesterday\"}", "time"},
        {"{\"data\":1,\"data_base64\":\"AA==\"}", "data_base64"},
        {"{\"Bad_Ext\":\"x\"}", "Bad_Ext"},
        {"{\"source\":null,\"source\":\"x\"}", "source: duplicate attribute"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        refuse(&p, &m, bad[i].body, RC_DAPR_E_CLOUD_EVENT, 500, bad[i].msg);
    refuse(&p, &m, "{\"id\":\"\"}", RC_DAPR_E_CLOUD_EVENT, 500,
           "for topic 'orders/eu' pubsub 'pubsub'");
}

/* ---- bulk -------------------------------------------------------------------------------- */

static rc_dapr_bulk_entry_t *bulk(const char *body, const char *query, size_t *n)
{
    static rc_dapr_meta_t m; /* the entries borrow it */
    m = meta(query);
    rc_dapr_bulk_entry_t *en;
    rc_dapr_error_t e;
    if (rc_dapr_bulk_parse(rc_str(body), &m, 100, &arena, &en, n, &e) != 0)
        RC_TEST_FAIL("bulk %s: %s %s", body, rc_dapr_code_name(e.code), e.msg);
    return en;
}

static void bulk_refused(const char *body, size_t max, rc_dapr_code_t code, const char *msg)
{
    rc_dapr_meta_t m = meta(NULL);
    rc_dapr_bulk_entry_t *en;
    size_t n;
    rc_dapr_error_t e;
    memset(&e, 0, sizeof(e));
    if (rc_dapr_bulk_parse(rc_str(body), &m, max, &arena, &en, &n, &e) == 0)
        RC_TEST_FAIL("bulk %s accepted", body);
    if (e.code != code || strstr(e.msg, msg) == NULL)
        RC_TEST_FAIL("bulk %s: got %s '%s', want %s with '%s'", body, rc_dapr_code_name(e.code),
                     e.msg, rc_dapr_code_name(code), msg);
}

static void test_bulk(void)
{
    size_t n;
    const char *body =
        " [{\"entryId\":\"1\",\"event\":{\"a\": 1.50},\"contentType\":\"application/json\"},\n"
        "  {\"entryId\":\"2\",\"event\":\"h\\u00e9llo\",\"contentType\":\"text/plain\","
        "   \"metadata\":{\"ttlInSeconds\":\"5\",\"partitionKey\":\"k\",\"other\":\"x\"}},"
        "  {\"entryId\":\"3\",\"event\":\"AAH/\",\"contentType\":\"application/octet-stream\"},"
        "  {\"entryId\":\"4\",\"contentType\":\"application/cloudevents+json\",\"extra\":[1],"
        "   \"event\":{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"s\",\"type\":\"t\"}},"
        "  {\"entryId\":\"5\",\"event\":[true]},{\"entryId\":\"6\",\"event\":\"plain\"},"
        "  {\"entryId\":\"7\",\"event\":\"quoted\",\"contentType\":\"application/json\"}] ";
    rc_dapr_bulk_entry_t *en = bulk(body, "metadata.ttlInSeconds=60&metadata.rawPayload=false", &n);
    ASSERT_EQ(n, 7);
    ASSERT_STR_EQ(s(en[0].entry_id), "1");
    ASSERT_STR_EQ(s(en[0].body), "{\"a\": 1.50}");
    ASSERT_STR_EQ(s(en[0].meta->v[RC_DAPR_META_TTL]), "60");
    ASSERT_STR_EQ(s(en[1].body), "h\xc3\xa9llo");
    ASSERT_STR_EQ(s(en[1].meta->v[RC_DAPR_META_TTL]), "5"); /* the entry's wins */
    ASSERT_STR_EQ(s(en[1].meta->v[RC_DAPR_META_RAW_PAYLOAD]), "false");
    ASSERT_STR_EQ(s(en[1].meta->v[RC_DAPR_META_PARTITION_KEY]), "k");
    ASSERT_EQ(en[1].meta->from_entry, 1u << RC_DAPR_META_TTL | 1u << RC_DAPR_META_PARTITION_KEY);
    ASSERT(en[0].meta == en[2].meta); /* entries without metadata share the request's */
    ASSERT_EQ(en[2].body.len, 3);
    ASSERT(memcmp(en[2].body.ptr, "\x00\x01\xff", 3) == 0);
    ASSERT_STR_EQ(s(en[3].body),
                  "{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"s\",\"type\":\"t\"}");
    ASSERT_STR_EQ(s(en[4].content_type), "application/json");
    ASSERT_STR_EQ(s(en[4].body), "[true]");
    ASSERT_STR_EQ(s(en[5].content_type), "text/plain");
    ASSERT_STR_EQ(s(en[5].body), "plain");
    ASSERT_STR_EQ(s(en[6].body), "\"quoted\"");

    /* Each entry's envelope. */
    rc_dapr_publish_t p = pub(NULL);
    rc_event_t ev;
    p.entry = RC_STR("2");
    p.content_type = en[1].content_type;
    build(&p, en[1].meta, en[1].body.ptr, en[1].body.len, &ev);
    ASSERT_STR_EQ(ext(&ev, "expiration"), "2026-01-02T03:04:10Z");
    ASSERT_STR_EQ(ext(&ev, "partitionkey"), "k");
    p.content_type = en[3].content_type;
    build(&p, en[3].meta, en[3].body.ptr, en[3].body.len, &ev);
    ASSERT_STR_EQ(s(ev.id), "x");
    ASSERT_STR_EQ(ext(&ev, "expiration"), "2026-01-02T03:05:05Z");
    rc_dapr_meta_t bad = *en[1].meta;
    bad.v[RC_DAPR_META_RAW_PAYLOAD] = RC_STR("nope");
    bad.from_entry |= 1u << RC_DAPR_META_RAW_PAYLOAD;
    p.entry = RC_STR("e-9");
    refuse(&p, &bad, "x", RC_DAPR_E_METADATA, 400, "entry 'e-9': rawPayload: 'nope'");

    en = bulk("[]", NULL, &n);
    ASSERT_EQ(n, 0);
    en = bulk(" [ ] ", NULL, &n);
    ASSERT_EQ(n, 0);

    bulk_refused("", 100, RC_DAPR_E_EVENTS_SER, "must be a JSON array");
    bulk_refused("{}", 100, RC_DAPR_E_EVENTS_SER, "must be a JSON array");
    bulk_refused("[{\"entryId\":\"1\",\"event\":1}", 100, RC_DAPR_E_EVENTS_SER, "JSON array");
    bulk_refused("[1,2] x", 100, RC_DAPR_E_EVENTS_SER, "entry 0: must be a JSON object");
    bulk_refused("[{\"entryId\":\"1\",\"event\":1}] x", 100, RC_DAPR_E_EVENTS_SER, "JSON array");
    bulk_refused("[{\"entryId\":\"1\",\"event\":1},]", 100, RC_DAPR_E_EVENTS_SER, "JSON array");
    bulk_refused("[{\"entryId\":\"1\",\"event\":1} {}]", 100, RC_DAPR_E_EVENTS_SER, "JSON array");
    bulk_refused("[{\"entryId\":\"1\",\"event\":1,}]", 100, RC_DAPR_E_EVENTS_SER, "JSON array");
    bulk_refused("[x]", 100, RC_DAPR_E_EVENTS_SER, "JSON array");
    bulk_refused("[", 100, RC_DAPR_E_EVENTS_SER, "JSON array");
    bulk_refused("[\"\xff\"]", 100, RC_DAPR_E_EVENTS_SER, "JSON array");
    bulk_refused("[1]", 100, RC_DAPR_E_EVENTS_SER, "entry 0: must be a JSON object");
    bulk_refused("[{\"event\":1}]", 100, RC_DAPR_E_EVENTS_SER, "entry 0: entryId is missing");
    bulk_refused("[{\"entryId\":\"a\",\"event\":1},{\"entryId\":\"\",\"event\":1}]", 100,
                 RC_DAPR_E_EVENTS_SER, "entry 1: entryId is missing, empty");
    bulk_refused("[{\"entryId\":7,\"event\":1}]", 100, RC_DAPR_E_EVENTS_SER, "entryId");
    bulk_refused("[{\"entryId\":\"a\",\"event\":1},{\"entryId\":\"b\",\"event\":1},"
                 "{\"entryId\":\"a\",\"event\":2}]",
                 100, RC_DAPR_E_EVENTS_SER, "entryId 'a' is duplicated (entries 0 and 2)");
    bulk_refused("[{\"entryId\":\"a\"}]", 100, RC_DAPR_E_EVENTS_SER, "entry 'a': event is missing");
    bulk_refused("[{\"entryId\":\"a\",\"event\":null}]", 100, RC_DAPR_E_EVENTS_SER, "missing");
    bulk_refused("[{\"entryId\":\"a\",\"event\":{},\"contentType\":\"text/plain\"}]", 100,
                 RC_DAPR_E_EVENTS_SER, "entry 'a': event must be a JSON string");
    bulk_refused(
        "[{\"entryId\":\"a\",\"event\":\"@@\",\"contentType\":\"application/octet-stream\"}]", 100,
        RC_DAPR_E_EVENTS_SER, "entry 'a': event must be base64");
    bulk_refused("[{\"entryId\":\"a\",\"event\":\"x\",\"contentType\":5}]", 100,
                 RC_DAPR_E_EVENTS_SER, "contentType must be a string");
    bulk_refused("[{\"entryId\":\"a\",\"event\":\"x\",\"metadata\":{\"ttlInSeconds\":5}}]", 100,
                 RC_DAPR_E_EVENTS_SER, "metadata must be an object of strings (ttlInSeconds)");
    bulk_refused("[{\"entryId\":\"a\",\"event\":\"x\",\"metadata\":[]}]", 100, RC_DAPR_E_EVENTS_SER,
                 "metadata must be an object");
    bulk_refused("[{\"entryId\":\"a\",\"event\":1},{\"entryId\":\"b\",\"event\":1}]", 1,
                 RC_DAPR_E_TOO_LARGE, "more than 1 entries");
    /* Many entries: the duplicate check is a hash table, not a pairwise scan. */
    static char big[100 * 40 + 16];
    size_t o = 0;
    o += (size_t)sprintf(big + o, "[");
    for (int i = 0; i < 100; i++)
        o += (size_t)sprintf(big + o, "%s{\"entryId\":\"id-%d\",\"event\":%d}", i ? "," : "", i, i);
    sprintf(big + o, "]");
    en = bulk(big, NULL, &n);
    ASSERT_EQ(n, 100);
    ASSERT_STR_EQ(s(en[99].entry_id), "id-99");
    ASSERT_STR_EQ(s(en[99].body), "99");
}

int main(void)
{
    static char buf[1 << 16];
    rc_arena_init(&arena, buf, sizeof(buf), 64u << 20);
    rc_dapr_gen_init(&gen);
    test_ids();
    test_meta_query();
    test_json_body();
    test_text_and_binary_bodies();
    test_trace_headers();
    test_metadata_overrides();
    test_raw_payload();
    test_cloudevent_body();
    test_bulk();
    rc_arena_close(&arena);
    printf("test_dapr_envelope: ok\n");
    return 0;
}
