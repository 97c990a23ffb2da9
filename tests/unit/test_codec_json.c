/* Unit tests of the JSON event format (core/codec_json.h): structured-mode decoding (data
 * mapping, every rejection), batches (all-or-nothing, index in the message), the structured
 * writer, and round trips over generated events. */
#include "core/codec_http.h"
#include "core/codec_json.h"
#include "core/errors.h"
#include "core/validate.h"
#include "tests/test.h"
#include "tests/unit/event_gen.h"

#include <errno.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define BASE "\"specversion\":\"1.0\",\"id\":\"i\",\"source\":\"/s\",\"type\":\"t\""

static rc_arena_t arena;

static int decode(const char *json, rc_event_t *ev, char *msg, size_t cap)
{
    rc_ce_error_t err = { .index = 99 };
    int rc = rc_ce_decode_structured(rc_str(json), &arena, ev, &err);
    msg[0] = '\0';
    if (rc != 0) {
        ASSERT_EQ(err.index, -1);
        rc_ce_error_format(&err, msg, cap);
    }
    return rc;
}

static void expect_data(const char *json, const char *data, size_t len)
{
    rc_event_t ev;
    char msg[256];
    if (decode(json, &ev, msg, sizeof(msg)) != 0)
        RC_TEST_FAIL("%s: %s", json, msg);
    if (data == NULL) {
        ASSERT_EQ(ev.data.ptr, NULL);
        return;
    }
    if (ev.data.ptr == NULL || ev.data.len != len || memcmp(ev.data.ptr, data, len) != 0)
        RC_TEST_FAIL("%s: data \"%.*s\"", json, (int)ev.data.len, ev.data.ptr);
}

static void test_structured(void)
{
    rc_event_t ev;
    char msg[256];
    const char *full = "{ \"specversion\" : \"1.0\", \"id\":\"allCore\", \"type\":\"io.x\","
                       "\"source\":\"https://cloudevents.io\", \"datacontenttype\":\"text/plain\","
                       "\"dataschema\":\"https://cloudevents.io/dataschema\", \"subject\":"
                       "\"t\\u00e9sts\\n\\\"x\\\"\", \"time\":\"2018-04-05T17:31:00Z\","
                       "\"extint\":10, \"extbool\":true, \"extstr\":\"text\", \"extneg\":-2147483648,"
                       "\"extfloatint\": 3.0, \"extnull\": null }";
    ASSERT_EQ(decode(full, &ev, msg, sizeof(msg)), RC_EINVALID_EVENT);
    ASSERT_STR_EQ(msg, "subject: must be valid UTF-8 without control characters");
    full = "{ \"specversion\" : \"1.0\", \"id\":\"allCore\", \"type\":\"io.x\","
           "\"source\":\"https://cloudevents.io\", \"datacontenttype\":\"text/plain\","
           "\"dataschema\":\"https://cloudevents.io/dataschema\", \"subject\":"
           "\"t\\u00e9sts \\\"x\\\"\", \"time\":\"2018-04-05T17:31:00Z\","
           "\"extint\":10, \"extbool\":true, \"extstr\":\"text\", \"extneg\":-2147483648,"
           "\"extfloatint\": 3.0, \"extnull\": null }";
    ASSERT_EQ(decode(full, &ev, msg, sizeof(msg)), 0);
    ASSERT_MEM_STR(ev.id.ptr, ev.id.len, "allCore");
    ASSERT_MEM_STR(ev.subject.ptr, ev.subject.len, "t\xc3\xa9sts \"x\"");
    ASSERT_MEM_STR(ev.dataschema.ptr, ev.dataschema.len, "https://cloudevents.io/dataschema");
    ASSERT_EQ(ev.data.ptr, NULL);
    ASSERT_EQ(ev.ext_count, 5);
    const rc_ce_ext_t *e = rc_event_find_ext(&ev, RC_STR("extint"));
    ASSERT(e && e->type == RC_CE_INTEGER);
    ASSERT_MEM_STR(e->value.ptr, e->value.len, "10");
    e = rc_event_find_ext(&ev, RC_STR("extbool"));
    ASSERT(e && e->type == RC_CE_BOOLEAN);
    ASSERT_MEM_STR(e->value.ptr, e->value.len, "true");
    e = rc_event_find_ext(&ev, RC_STR("extstr"));
    ASSERT(e && e->type == RC_CE_STRING);
    e = rc_event_find_ext(&ev, RC_STR("extneg"));
    ASSERT_MEM_STR(e->value.ptr, e->value.len, "-2147483648");
    e = rc_event_find_ext(&ev, RC_STR("extfloatint"));
    ASSERT_MEM_STR(e->value.ptr, e->value.len, "3");
    ASSERT_EQ(rc_event_find_ext(&ev, RC_STR("extnull")), NULL);
    ASSERT_GE(ev.ext_cap, ev.ext_count + 2);

    /* Data mapping. JSON data is the exact input text, whitespace and number spelling kept. */
    expect_data("{" BASE ",\"data\": { \"a\" : 12345678901234567890, \"b\": 1.50 } }",
                "{ \"a\" : 12345678901234567890, \"b\": 1.50 }", 41);
    expect_data("{" BASE ",\"datacontenttype\":\"application/json\",\"data\":\"Hello\"}",
                "\"Hello\"", 7);
    expect_data("{" BASE ",\"data\":[1,\"]\",{\"x\":\"}\"}]}", "[1,\"]\",{\"x\":\"}\"}]", 17);
    expect_data("{\"data\":true," BASE "}", "true", 4);
    expect_data("{" BASE ",\"data\":-1.5e3}", "-1.5e3", 6);
    expect_data("{" BASE ",\"datacontenttype\":\"application/vnd.x+json\",\"data\":{}}", "{}", 2);
    expect_data("{" BASE ",\"datacontenttype\":\"text/plain\",\"data\":\"Simple text\"}",
                "Simple text", 11);
    expect_data("{" BASE ",\"datacontenttype\":\"text/plain\",\"data\":\"a\\u0000b\\ud83c\\udf0e\"}",
                "a\0b\xf0\x9f\x8c\x8e", 7);
    expect_data("{" BASE ",\"datacontenttype\":\"text/plain\",\"data\":{\"k\":1}}", "{\"k\":1}", 7);
    expect_data("{" BASE ",\"data_base64\":\"TWE=\"}", "Ma", 2);
    expect_data("{" BASE ",\"data_base64\":\"\"}", "", 0);
    expect_data("{" BASE ",\"data\":null}", NULL, 0);
    expect_data("{" BASE ",\"data\":null,\"data_base64\":\"TWE=\"}", "Ma", 2);
    expect_data("{" BASE ",\"\\u0064ata\":[0]}", "[0]", 3); /* escaped member name */
    expect_data("{" BASE ",\"data\":\"\\u0000\"}", "\"\\u0000\"", 8);

    static const struct {
        const char *json, *message;
    } bad[] = {
        { "", "malformed JSON" },
        { "{", "malformed JSON" },
        { "{" BASE "} x", "malformed JSON" },
        { "{" BASE "}{}", "malformed JSON" },
        { "\x06{" BASE "}", "malformed JSON" }, /* raw control bytes are not JSON whitespace */
        { "{" BASE ",\"subject\":\"a\x01\"}", "malformed JSON" },
        { "[]", "event must be a JSON object" },
        { "\"event\"", "event must be a JSON object" },
        { "{\"id\":\"i\",\"source\":\"/s\",\"type\":\"t\"}", "specversion: is required" },
        { "{\"specversion\":null,\"id\":\"i\",\"source\":\"/s\",\"type\":\"t\"}",
          "specversion: is required" },
        { "{\"specversion\":1.0,\"id\":\"i\",\"source\":\"/s\",\"type\":\"t\"}",
          "specversion: must be a string" },
        { "{\"specversion\":\"1.0\",\"id\":25,\"source\":\"/s\",\"type\":\"t\"}",
          "id: must be a string" },
        { "{\"specversion\":\"1.0\",\"id\":{\"x\":1},\"source\":\"/s\",\"type\":\"t\"}",
          "id: must be a string" },
        { "{\"specversion\":\"1.0\",\"id\":\"i\",\"source\":\"/s\",\"type\":\"t\",\"id\":\"j\"}",
          "id: duplicate attribute" },
        { "{" BASE ",\"data\":1,\"data_base64\":\"TWE=\"}",
          "data_base64: must not be present together with data" },
        { "{" BASE ",\"data_base64\":\"T\"}", "data_base64: must be a base64 string" },
        { "{" BASE ",\"data_base64\":7}", "data_base64: must be a base64 string" },
        { "{" BASE ",\"MyExtension\":\"bad\"}",
          "MyExtension: extension name must be 1-20 characters of [a-z0-9]" },
        { "{" BASE ",\"my.extension\":1.5}",
          "my.extension: extension name must be 1-20 characters of [a-z0-9]" },
        { "{" BASE ",\"ext\":1.5}", "ext: must be a 32-bit integer" },
        { "{" BASE ",\"ext\":2147483648}", "ext: must be a 32-bit integer" },
        { "{" BASE ",\"ext\":1e400}", "ext: must be a 32-bit integer" },
        { "{" BASE ",\"ext\":{}}", "ext: must be a string, integer or boolean" },
        { "{" BASE ",\"ext\":[1]}", "ext: must be a string, integer or boolean" },
        { "{" BASE ",\"ext\":\"a\\u0000b\"}", "ext: must be valid UTF-8 without control characters" },
        { "{\"specversion\":\"1.0\",\"id\":\"i\\u0000\",\"source\":\"/s\",\"type\":\"t\"}",
          "id: must be valid UTF-8 without control characters" },
        { "{" BASE ",\"ext\":\"\\ud800\"}", "malformed JSON" }, /* lone surrogates */
        { "{" BASE ",\"ext\":\"\\udc00\\ud800\"}", "malformed JSON" },
        { "{" BASE ",\"data\":[\"\\ud83c\\n\"]}", "malformed JSON" },
        { "{" BASE ",\"datacontenttype\":\"text/plain\",\"data\":\"\\ud800\"}",
          "malformed JSON" },
        { "{" BASE ",\"time\":\"2018-04-05T18:31Z\"}", "time: must be an RFC 3339 timestamp" },
        { "{" BASE ",\"datacontenttype\":\"xyz\"}",
          "datacontenttype: must be an RFC 2046 media type" },
        { "{" BASE ",\"subject\":\"\"}", "subject: must be a non-empty string when present" },
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        int rc = decode(bad[i].json, &ev, msg, sizeof(msg));
        if (rc != RC_EINVALID_EVENT || strcmp(msg, bad[i].message) != 0)
            RC_TEST_FAIL("bad[%zu] %s: rc %d \"%s\", want \"%s\"", i, bad[i].json, rc, msg,
                         bad[i].message);
    }
    /* JSON grammar (RFC 8259) inside data, where nothing else would notice. */
    static const char *const bad_data[] = {
        "01", "1.", "-", "1e", "1e+", "+1", ".5", "tru", "nul", "[1,]", "{\"a\":1,}", "{\"a\"}",
        "{1:2}", "[1 2]", "\"a\\x\"", "\"a\\u12\"", "'a'", "[", "{\"a\":[}", "\"\t\"", "NaN",
        "Infinity", "0x10", "[1]]", "{\"a\":1}}",
    };
    for (size_t i = 0; i < COUNT(bad_data); i++) {
        char json[256];
        snprintf(json, sizeof(json), "{" BASE ",\"data\":%s}", bad_data[i]);
        if (decode(json, &ev, msg, sizeof(msg)) != RC_EINVALID_EVENT ||
            strcmp(msg, "malformed JSON") != 0)
            RC_TEST_FAIL("data %s accepted or wrong message \"%s\"", bad_data[i], msg);
    }
    static const char *const good_data[] = {
        "0", "-0", "1.5e-3", "1E+2", "true", "false", "\"\"", "[]", "{}", "[[[]]]",
        "{\"a\":{\"b\":[1,{\"c\":null}]}}", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83c\\udf0e\"",
        "[ 1 , 2 ]", "\"\xc3\xa9\xf0\x9f\x8c\x8e\"",
    };
    for (size_t i = 0; i < COUNT(good_data); i++) {
        char json[256];
        snprintf(json, sizeof(json), "{" BASE ",\"data\":%s}", good_data[i]);
        expect_data(json, good_data[i], strlen(good_data[i]));
    }
    /* Invalid UTF-8 anywhere in the body. */
    ASSERT_EQ(decode("{" BASE ",\"data\":\"\xc3\"}", &ev, msg, sizeof(msg)), RC_EINVALID_EVENT);
    ASSERT_STR_EQ(msg, "malformed JSON");
    ASSERT_EQ(decode("\xef\xbb\xbf{" BASE "}", &ev, msg, sizeof(msg)), RC_EINVALID_EVENT);
    /* Escaped attribute values are unescaped; plain ones are views of the body. */
    const char *esc = "{\"specversion\":\"1.0\",\"id\":\"a\\/b\",\"source\":\"/s\",\"type\":\"t\"}";
    ASSERT_EQ(decode(esc, &ev, msg, sizeof(msg)), 0);
    ASSERT_MEM_STR(ev.id.ptr, ev.id.len, "a/b");
    ASSERT(ev.source.ptr > esc && ev.source.ptr < esc + strlen(esc));
    /* An empty object lists every missing attribute, the first one first. */
    ASSERT_EQ(decode(" { } ", &ev, msg, sizeof(msg)), RC_EINVALID_EVENT);
    ASSERT_STR_EQ(msg, "specversion: is required");

    /* Too many extensions. */
    char big[8192];
    size_t n = (size_t)snprintf(big, sizeof(big), "{" BASE);
    for (int i = 0; i < RC_CE_EXT_MAX + 1; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, ",\"x%d\":1", i);
    snprintf(big + n, sizeof(big) - n, "}");
    ASSERT_EQ(decode(big, &ev, msg, sizeof(msg)), RC_EINVALID_EVENT);
    ASSERT(strstr(msg, "too many extensions") != NULL);
    /* The JSON nesting limit of cJSON holds: deep data is rejected, not a stack overflow. */
    static char deep[20000];
    n = (size_t)snprintf(deep, sizeof(deep), "{" BASE ",\"data\":");
    for (int i = 0; i < 5000; i++)
        deep[n++] = '[';
    for (int i = 0; i < 5000; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = '\0';
    ASSERT_EQ(decode(deep, &ev, msg, sizeof(msg)), RC_EINVALID_EVENT);
    ASSERT_STR_EQ(msg, "malformed JSON");
}

static int decode_batch(const char *json, size_t max, rc_event_t **evs, size_t *n, char *msg,
                        size_t cap)
{
    rc_ce_error_t err = { .index = 99 };
    int rc = rc_ce_decode_batch(rc_str(json), &arena, max, evs, n, &err);
    msg[0] = '\0';
    if (rc != 0) {
        ASSERT_EQ(*n, 0);
        ASSERT_EQ(*evs, NULL);
        if (err.rule)
            rc_ce_error_format(&err, msg, cap);
    }
    return rc;
}

static void test_batch(void)
{
    rc_event_t *evs;
    size_t n;
    char msg[256];
    ASSERT_EQ(decode_batch(" [ ] ", 10, &evs, &n, msg, sizeof(msg)), 0);
    ASSERT_EQ(n, 0);
    const char *two = "[ {" BASE ",\"data\": {\"k\" : 1}} ,\n{\"specversion\":\"1.0\",\"id\":\"j\","
                      "\"source\":\"/s\",\"type\":\"t\",\"data\":[2]} ]";
    ASSERT_EQ(decode_batch(two, 10, &evs, &n, msg, sizeof(msg)), 0);
    ASSERT_EQ(n, 2);
    ASSERT_MEM_STR(evs[0].data.ptr, evs[0].data.len, "{\"k\" : 1}");
    ASSERT_MEM_STR(evs[1].id.ptr, evs[1].id.len, "j");
    ASSERT_MEM_STR(evs[1].data.ptr, evs[1].data.len, "[2]");
    ASSERT_EQ(decode_batch(two, 2, &evs, &n, msg, sizeof(msg)), 0);
    ASSERT_EQ(decode_batch(two, 1, &evs, &n, msg, sizeof(msg)), RC_ETOO_LARGE);

    static const struct {
        const char *json, *message;
    } bad[] = {
        { "{" BASE "}", "batch must be a JSON array" },
        { "[", "event 0: malformed JSON" },
        { "[{" BASE "},]", "event 1: malformed JSON" },
        { "[] []", "malformed JSON" },
        { "[\x06{" BASE "}]", "event 0: malformed JSON" },
        { "[\"not an object\",{" BASE "}]", "event 0: event must be a JSON object" },
        { "[{" BASE "},{\"specversion\":\"0.9\",\"id\":\"i\",\"source\":\"/s\",\"type\":\"t\"}]",
          "event 1: specversion: must be \"1.0\"" },
        { "[{" BASE "},{" BASE "},{\"specversion\":\"1.0\",\"source\":\"/s\",\"type\":\"t\"}]",
          "event 2: id: is required" },
        { "[{" BASE "},{" BASE ",\"a\":1,\"a\":2}]", "event 1: a: duplicate attribute" },
        { "[null]", "event 0: event must be a JSON object" },
        { "[[{" BASE "}]]", "event 0: event must be a JSON object" },
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        int rc = decode_batch(bad[i].json, 10, &evs, &n, msg, sizeof(msg));
        if (rc != RC_EINVALID_EVENT || strcmp(msg, bad[i].message) != 0)
            RC_TEST_FAIL("batch bad[%zu]: rc %d \"%s\", want \"%s\"", i, rc, msg, bad[i].message);
    }
}

static void test_write(void)
{
    rc_ce_ext_t ext[8];
    rc_event_t ev;
    rc_event_init(&ev, ext, 8);
    ev.specversion = RC_STR("1.0");
    ev.id = RC_STR("q\"\\");
    ev.source = RC_STR("/s");
    ev.type = RC_STR("t\xc3\xa9");
    ev.time = RC_STR("2018-04-05T17:31:00Z");
    rc_event_set_ext(&ev, NULL, RC_STR("n"), RC_STR("-5"), RC_CE_INTEGER);
    rc_event_set_ext(&ev, NULL, RC_STR("b"), RC_STR("false"), RC_CE_BOOLEAN);
    rc_event_set_ext(&ev, NULL, RC_STR("bin"), RC_STR("TWE="), RC_CE_BINARY);
    rc_event_set_ext(&ev, NULL, RC_STR("knativebrokerttl"), RC_STR("255"), RC_CE_INTEGER);
    char buf[1024];
    size_t len;
    const char *head = "{\"specversion\":\"1.0\",\"id\":\"q\\\"\\\\\",\"source\":\"/s\","
                       "\"type\":\"t\xc3\xa9\"";
    const char *mid = ",\"time\":\"2018-04-05T17:31:00Z\",\"n\":-5,\"b\":false,\"bin\":\"TWE=\"";
    char want[1024];
    static const struct {
        const char *ct;
        const char *data;
        size_t len;
        const char *tail;
    } c[] = {
        { NULL, NULL, 0, "}" },
        { NULL, "{\"a\": [1, 2]}", 13, ",\"data\":{\"a\": [1, 2]}}" },
        { "application/json", "\"str\"", 5, ",\"data\":\"str\"}" },
        { "application/json", "not json", 8, ",\"data_base64\":\"bm90IGpzb24=\"}" },
        { NULL, "{}\n", 3, ",\"data_base64\":\"e30K\"}" },
        { NULL, "", 0, ",\"data_base64\":\"\"}" },
        { "text/plain", "line1\nline2 \"q\" \x01", 17,
          ",\"data\":\"line1\\nline2 \\\"q\\\" \\u0001\"}" },
        { "text/plain", "a\0b", 3, ",\"data\":\"a\\u0000b\"}" },
        { "text/plain", "\xc3", 1, ",\"data_base64\":\"ww==\"}" }, /* not UTF-8 */
        { "application/octet-stream", "\xff\xfe", 2,
          ",\"data_base64\":\"//4=\"}" },
        /* binary by its type, UTF-8 or not (Dapr and the SDKs read data_base64 there) */
        { "application/octet-stream", "Ma", 2, ",\"data_base64\":\"TWE=\"}" },
        { "Application/Octet-Stream; x=1", "Ma", 2, ",\"data_base64\":\"TWE=\"}" },
        { "application/octet-streamy", "Ma", 2, ",\"data\":\"Ma\"}" },
    };
    for (size_t i = 0; i < COUNT(c); i++) {
        ev.datacontenttype = c[i].ct ? rc_str(c[i].ct) : RC_STR_NULL;
        ev.data = c[i].data ? (rc_str_t){ c[i].data, c[i].len } : RC_STR_NULL;
        ASSERT_EQ(rc_ce_write_structured(&ev, RC_CE_WRITE_NO_TTL, buf, sizeof(buf), &len), 0);
        snprintf(want, sizeof(want), "%s%s%s%s%s", head, c[i].ct ? ",\"datacontenttype\":\"" : "",
                 c[i].ct ? c[i].ct : "", c[i].ct ? "\"" : "", mid);
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s", c[i].tail);
        if (len != strlen(want) || memcmp(buf, want, len) != 0)
            RC_TEST_FAIL("write[%zu]: %.*s\n want %s", i, (int)len, buf, want);
        /* and it reads back */
        rc_event_t back;
        rc_ce_error_t err;
        ASSERT_EQ(rc_ce_decode_structured((rc_str_t){ buf, len }, &arena, &back, &err), 0);
        ASSERT(rc_str_eq(back.data, ev.data));
    }
    size_t full = len;
    ASSERT_EQ(rc_ce_write_structured(&ev, 0, buf, sizeof(buf), &len), 0);
    ASSERT_EQ(len, full + strlen(",\"knativebrokerttl\":255"));
    for (size_t cap = 0; cap < len; cap += 5) {
        size_t l2;
        ASSERT_EQ(rc_ce_write_structured(&ev, 0, buf, cap, &l2), -ENOBUFS);
        ASSERT_EQ(l2, len);
    }
    /* What would make invalid JSON is refused. */
    ev.subject = RC_STR("\xff");
    ASSERT_EQ(rc_ce_write_structured(&ev, 0, buf, sizeof(buf), &len), -EINVAL);
    ASSERT_EQ(len, 0);
    ev.subject = RC_STR_NULL;
    ev.ext[0].value = RC_STR("12abc"); /* an Integer that would go out bare */
    ASSERT_EQ(rc_ce_write_structured(&ev, 0, buf, sizeof(buf), &len), -EINVAL);
    ev.ext[0].value = RC_STR("-5");
    ev.ext[1].value = RC_STR("yes");
    ASSERT_EQ(rc_ce_write_structured(&ev, 0, buf, sizeof(buf), &len), -EINVAL);
    ev.ext[1].value = RC_STR("false");
    ASSERT_EQ(rc_ce_write_structured(&ev, 0, buf, sizeof(buf), &len), 0);
}

static void test_round_trips(void)
{
    gen_rng_t r = { 0xfeedface };
    static char buf[1 << 17];
    for (int iter = 0; iter < 5000; iter++) {
        rc_event_t ev, back;
        gen_event(&r, &arena, &ev, 0);
        size_t len;
        ASSERT_EQ(rc_ce_write_structured(&ev, 0, buf, sizeof(buf), &len), 0);
        rc_ce_error_t err = { .index = -1 };
        if (rc_ce_decode_structured((rc_str_t){ buf, len }, &arena, &back, &err) != 0)
            RC_TEST_FAIL("round trip %d: %.*s: %s\n%.*s", iter, (int)err.field.len,
                         err.field.ptr, err.rule, (int)len, buf);
        /* JSON keeps Integer and Boolean; the other types travel as strings. */
        for (uint32_t i = 0; i < ev.ext_count; i++)
            if (ev.ext[i].type != RC_CE_INTEGER && ev.ext[i].type != RC_CE_BOOLEAN)
                ev.ext[i].type = RC_CE_STRING;
        if (!rc_event_equal(&ev, &back))
            RC_TEST_FAIL("structured round trip %d differs:\n%.*s", iter, (int)len, buf);
        /* A batch of the same event twice decodes to two equal events. */
        static char batch[(1 << 17) * 2 + 8];
        size_t bl = 0;
        batch[bl++] = '[';
        memcpy(batch + bl, buf, len);
        bl += len;
        batch[bl++] = ',';
        memcpy(batch + bl, buf, len);
        bl += len;
        batch[bl++] = ']';
        rc_event_t *evs;
        size_t n;
        ASSERT_EQ(rc_ce_decode_batch((rc_str_t){ batch, bl }, &arena, 2, &evs, &n, &err), 0);
        ASSERT_EQ(n, 2);
        ASSERT(rc_event_equal(&evs[0], &back) && rc_event_equal(&evs[1], &back));
        rc_arena_reset(&arena);
    }
}

int main(void)
{
    rc_arena_init(&arena, NULL, 0, 0);
    test_structured();
    test_batch();
    test_write();
    test_round_trips();
    rc_arena_close(&arena);
    puts("test_codec_json: ok");
    return 0;
}
