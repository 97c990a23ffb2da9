/* Unit tests of the HTTP binding (core/codec_http.h): content-mode classification,
 * percent-encoding, binary-mode decoding (every rejection), binary-mode writing, the request
 * entry point, round trips over generated events, and the no-malloc property of the binary
 * path. */
#include "core/codec_http.h"
#include "core/errors.h"
#include "core/validate.h"
#include "tests/test.h"
#include "tests/unit/event_gen.h"

#include <errno.h>
#include <stdlib.h>

#define H(n, v) ((rc_http_header_t){ RC_STR(n), RC_STR(v) })
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void test_classify(void)
{
    static const struct {
        const char *ct;
        rc_ce_mode_t mode;
    } c[] = {
        { "application/json", RC_CE_MODE_BINARY },
        { "text/plain; charset=utf-8", RC_CE_MODE_BINARY },
        { "", RC_CE_MODE_BINARY },
        { "application/cloudevents+json", RC_CE_MODE_STRUCTURED },
        { "application/cloudevents+json; charset=utf-8", RC_CE_MODE_STRUCTURED },
        { "  Application/CloudEvents+JSON ;charset=UTF-8", RC_CE_MODE_STRUCTURED },
        { "application/cloudevents+json ", RC_CE_MODE_STRUCTURED },
        { "application/cloudevents-batch+json", RC_CE_MODE_BATCH },
        { "APPLICATION/CLOUDEVENTS-BATCH+JSON; charset=utf-8", RC_CE_MODE_BATCH },
        { "application/cloudevents+xml", RC_CE_MODE_UNSUPPORTED },
        { "application/cloudevents+avro", RC_CE_MODE_UNSUPPORTED },
        { "application/cloudevents+protobuf", RC_CE_MODE_UNSUPPORTED },
        { "application/cloudevents-batch+xml", RC_CE_MODE_UNSUPPORTED },
        { "application/cloudevents", RC_CE_MODE_UNSUPPORTED },
        { "application/cloudevents; charset=utf-8", RC_CE_MODE_UNSUPPORTED },
        { "application/cloudeventsish", RC_CE_MODE_BINARY },
        { "application/cloudevents+jsonx", RC_CE_MODE_UNSUPPORTED },
    };
    for (size_t i = 0; i < COUNT(c); i++)
        if (rc_ce_classify(rc_str(c[i].ct)) != c[i].mode)
            RC_TEST_FAIL("classify \"%s\": got %d want %d", c[i].ct,
                         (int)rc_ce_classify(rc_str(c[i].ct)), (int)c[i].mode);
    ASSERT_EQ(rc_ce_classify(RC_STR_NULL), RC_CE_MODE_BINARY);
}

static void test_percent(void)
{
    rc_arena_t a;
    rc_arena_init(&a, NULL, 0, 0);
    rc_str_t out;
    rc_str_t in = RC_STR("plain value");
    ASSERT_EQ(rc_ce_percent_decode(in, &a, &out), 0);
    ASSERT(out.ptr == in.ptr && out.len == in.len); /* no copy without '%' */
    ASSERT_EQ(rc_ce_percent_decode(RC_STR("a%20b%22c%25"), &a, &out), 0);
    ASSERT_MEM_STR(out.ptr, out.len, "a b\"c%");
    ASSERT_EQ(rc_ce_percent_decode(RC_STR("%e2%82%AC%F0%9F%8C%8E"), &a, &out), 0);
    ASSERT_MEM_STR(out.ptr, out.len, "\xe2\x82\xac\xf0\x9f\x8c\x8e");
    ASSERT_EQ(rc_ce_percent_decode(RC_STR("100%"), &a, &out), -EINVAL);
    ASSERT_EQ(rc_ce_percent_decode(RC_STR("%4"), &a, &out), -EINVAL);
    ASSERT_EQ(rc_ce_percent_decode(RC_STR("%zz"), &a, &out), -EINVAL);
    ASSERT_EQ(rc_ce_percent_decode(RC_STR("%%41"), &a, &out), -EINVAL);
    ASSERT_EQ(rc_ce_percent_decode(RC_STR(""), &a, &out), 0);
    ASSERT_EQ(out.len, 0);

    char buf[64];
    rc_str_t raw = RC_STR("a b\"%\xc3\xa9\n~!\x7f");
    size_t n = rc_ce_percent_encode(raw, buf, sizeof(buf));
    ASSERT_MEM_STR(buf, n, "a%20b%22%25%C3%A9%0A~!%7F");
    ASSERT_EQ(rc_ce_percent_encode(raw, buf, 3), n); /* reports the full length */
    ASSERT_EQ(rc_ce_percent_decode((rc_str_t){ buf, n }, &a, &out), 0);
    ASSERT(rc_str_eq(out, raw));
    /* Every byte value survives encode + decode. */
    char all[256], enc[768];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    n = rc_ce_percent_encode((rc_str_t){ all, 256 }, enc, sizeof(enc));
    for (size_t i = 0; i < n; i++)
        ASSERT(enc[i] > 0x20 && enc[i] < 0x7f && enc[i] != '"');
    ASSERT_EQ(rc_ce_percent_decode((rc_str_t){ enc, n }, &a, &out), 0);
    ASSERT(out.len == 256 && memcmp(out.ptr, all, 256) == 0);
    rc_arena_close(&a);
}

static int decode(const rc_http_header_t *h, size_t n, const char *body, rc_event_t *ev,
                  rc_arena_t *a, char *msg, size_t cap)
{
    rc_ce_error_t err = { .index = -1 };
    int rc = rc_ce_decode_binary(h, n, rc_str(body), a, ev, &err);
    msg[0] = '\0';
    if (rc != 0 && err.rule)
        rc_ce_error_format(&err, msg, cap);
    return rc;
}

static void test_binary_decode(void)
{
    rc_arena_t a;
    char scratch[4096];
    /* Heap limit of 1 byte: any malloc would fail, so success proves the scratch buffer was
     * enough (the ingress hands each connection such a buffer). */
    rc_arena_init(&a, scratch, sizeof(scratch), 1);
    rc_event_t ev;
    char msg[256];
    rc_http_header_t h[] = {
        H("Host", "example.com"),
        H("ce-specversion", "1.0"),
        H("CE-Type", "com.example.someevent"),
        H("ce-time", "2018-04-05T03:56:24Z"),
        H("Ce-Id", "1234-1234-1234"),
        H("ce-source", "/mycontext/subcontext"),
        H("ce-subject", "caf%C3%A9%20%22quoted%22"),
        H("Content-Type", "application/json; charset=utf-8"),
        H("ce-MyExtension", "value"),
        H("ce-comexampleextension2", "%7B%22othervalue%22%3A5%7D"),
        H("user-agent", "foo"),
    };
    const char *body = "{\"message\": \"Hello World!\"}";
    ASSERT_EQ(decode(h, COUNT(h), body, &ev, &a, msg, sizeof(msg)), 0);
    ASSERT_EQ(a.heap, 0);
    ASSERT_MEM_STR(ev.specversion.ptr, ev.specversion.len, "1.0");
    ASSERT_MEM_STR(ev.id.ptr, ev.id.len, "1234-1234-1234");
    ASSERT_MEM_STR(ev.type.ptr, ev.type.len, "com.example.someevent");
    ASSERT_MEM_STR(ev.source.ptr, ev.source.len, "/mycontext/subcontext");
    ASSERT_MEM_STR(ev.time.ptr, ev.time.len, "2018-04-05T03:56:24Z");
    ASSERT_MEM_STR(ev.subject.ptr, ev.subject.len, "caf\xc3\xa9 \"quoted\"");
    ASSERT_MEM_STR(ev.datacontenttype.ptr, ev.datacontenttype.len,
                   "application/json; charset=utf-8");
    ASSERT(ev.id.ptr == h[4].value.ptr); /* borrowed, not copied */
    ASSERT(ev.data.ptr == body);
    ASSERT_EQ(ev.ext_count, 2);
    ASSERT_MEM_STR(ev.ext[0].name.ptr, ev.ext[0].name.len, "myextension");
    ASSERT_EQ(ev.ext[0].type, RC_CE_STRING);
    ASSERT_MEM_STR(ev.ext[1].value.ptr, ev.ext[1].value.len, "{\"othervalue\":5}");
    ASSERT_EQ(ev.dataschema.ptr, NULL);
    /* Room for the ingress stamps without growing the table. */
    ASSERT_GE(ev.ext_cap, ev.ext_count + 2);
    ASSERT_EQ(rc_event_stamp_arrival(&ev, &a, 0), 0);
    ASSERT_EQ(rc_event_ttl_ingress(&ev, &a, NULL), 0);
    ASSERT_EQ(a.heap, 0);
    rc_arena_reset(&a);

    /* An empty body is "no data"; headers other than ce-* and Content-Type are ignored. */
    rc_http_header_t min[] = { H("ce-specversion", "1.0"), H("ce-id", "1"), H("ce-source", "s"),
                               H("ce-type", "t"), H("x-ce-id", "zzz"), H("cex", "1") };
    ASSERT_EQ(decode(min, COUNT(min), "", &ev, &a, msg, sizeof(msg)), 0);
    ASSERT_EQ(ev.data.ptr, NULL);
    ASSERT_EQ(ev.ext_count, 0);
    ASSERT_EQ(ev.datacontenttype.ptr, NULL);
    rc_arena_reset(&a);

    const struct {
        rc_http_header_t extra;
        const char *message;
    } bad[] = {
        { H("ce-id", "2"), "id: duplicate attribute" },
        { H("CE-ID", "1"), "id: duplicate attribute" },
        { H("ce-datacontenttype", "text/plain"), "datacontenttype: duplicate attribute" },
        { H("ce-subject", "100%"), "subject: invalid percent-encoding" },
        { H("ce-subject", "%zz"), "subject: invalid percent-encoding" },
        { H("ce-subject", "%FF"), "subject: must be valid UTF-8 without control characters" },
        { H("ce-subject", "a%0Ab"), "subject: must be valid UTF-8 without control characters" },
        { H("ce-subject", ""), "subject: must be a non-empty string when present" },
        { H("ce-", "x"), "ce-: header has no attribute name" },
        { H("ce-my-ext", "x"), "my-ext: extension name must be 1-20 characters of [a-z0-9]" },
        { H("ce-my_ext", "x"), "my_ext: extension name must be 1-20 characters of [a-z0-9]" },
        { H("ce-abcdefghijklmnopqrstu", "x"),
          "abcdefghijklmnopqrstu: extension name must be 1-20 characters of [a-z0-9]" },
        { H("ce-data", "x"), "data: is reserved for the event data" },
        { H("ce-time", "yesterday"), "time: must be an RFC 3339 timestamp" },
        { H("ce-dataschema", "rel/x"), "dataschema: must be an absolute URI" },
        { H("Content-Type", "nonsense"), "datacontenttype: must be an RFC 2046 media type" },
        { H("ce-ext", "1%00"), "ext: must be valid UTF-8 without control characters" },
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        rc_http_header_t hh[8];
        memcpy(hh, min, 4 * sizeof(hh[0]));
        hh[4] = H("Content-Type", "text/plain");
        hh[5] = bad[i].extra;
        size_t n = 6;
        if (strncmp(bad[i].extra.name.ptr, "Content-Type", 12) == 0)
            hh[4] = H("x", "y");
        int rc = decode(hh, n, "d", &ev, &a, msg, sizeof(msg));
        if (rc != RC_EINVALID_EVENT || strcmp(msg, bad[i].message) != 0)
            RC_TEST_FAIL("bad[%zu]: rc %d msg \"%s\", want \"%s\"", i, rc, msg, bad[i].message);
        rc_arena_reset(&a);
    }
    /* Two Content-Type headers. */
    rc_http_header_t two_ct[] = { H("ce-specversion", "1.0"), H("ce-id", "1"), H("ce-source", "s"),
                                  H("ce-type", "t"), H("content-type", "text/plain"),
                                  H("CONTENT-TYPE", "text/html") };
    ASSERT_EQ(decode(two_ct, COUNT(two_ct), "x", &ev, &a, msg, sizeof(msg)), RC_EINVALID_EVENT);
    ASSERT_STR_EQ(msg, "datacontenttype: duplicate Content-Type");
    rc_arena_reset(&a);
    /* Missing required attributes, in spec order. */
    ASSERT_EQ(decode(min + 1, 3, "", &ev, &a, msg, sizeof(msg)), RC_EINVALID_EVENT);
    ASSERT_STR_EQ(msg, "specversion: is required");
    rc_http_header_t sv09[] = { H("ce-specversion", "0.3"), H("ce-id", "1"), H("ce-source", "s"),
                                H("ce-type", "t") };
    ASSERT_EQ(decode(sv09, 4, "", &ev, &a, msg, sizeof(msg)), RC_EINVALID_EVENT);
    ASSERT_STR_EQ(msg, "specversion: must be \"1.0\"");
    ASSERT_EQ(decode(min, 3, "", &ev, &a, msg, sizeof(msg)), RC_EINVALID_EVENT);
    ASSERT_STR_EQ(msg, "type: is required");
    ASSERT_EQ(decode(NULL, 0, "body", &ev, &a, msg, sizeof(msg)), RC_EINVALID_EVENT);
    ASSERT_STR_EQ(msg, "specversion: is required");
    rc_arena_reset(&a);

    /* Extension count limit. */
    rc_arena_close(&a);
    rc_arena_init(&a, NULL, 0, 0);
    enum { N = RC_CE_EXT_MAX + 5 };
    rc_http_header_t *many = calloc(N, sizeof(*many));
    char (*names)[16] = calloc(N, 16);
    memcpy(many, min, 4 * sizeof(many[0]));
    for (int i = 4; i < N; i++) {
        size_t n = (size_t)snprintf(names[i], 16, "ce-x%d", i);
        many[i] = (rc_http_header_t){ { names[i], n }, RC_STR("v") };
    }
    ASSERT_EQ(decode(many, RC_CE_EXT_MAX + 4, "", &ev, &a, msg, sizeof(msg)), 0);
    ASSERT_EQ(decode(many, N, "", &ev, &a, msg, sizeof(msg)), RC_EINVALID_EVENT);
    ASSERT(strstr(msg, "too many extensions") != NULL);
    free(many);
    free(names);

    /* An arena too small for the table is -ENOMEM, not a crash. */
    rc_arena_close(&a);
    char tiny[16];
    rc_arena_init(&a, tiny, sizeof(tiny), 1);
    ASSERT_EQ(decode(h, COUNT(h), body, &ev, &a, msg, sizeof(msg)), -ENOMEM);
    rc_arena_close(&a);
}

static void test_binary_write(void)
{
    rc_ce_ext_t ext[4];
    rc_event_t ev;
    rc_event_init(&ev, ext, 4);
    ev.specversion = RC_STR("1.0");
    ev.id = RC_STR("a b");
    ev.source = RC_STR("/s");
    ev.type = RC_STR("t\xc3\xa9");
    ev.datacontenttype = RC_STR("text/plain");
    rc_event_set_ext(&ev, NULL, RC_STR("knativebrokerttl"), RC_STR("255"), RC_CE_INTEGER);
    rc_event_set_ext(&ev, NULL, RC_STR("flag"), RC_STR("true"), RC_CE_BOOLEAN);
    char buf[512];
    size_t len;
    ASSERT_EQ(rc_ce_write_binary(&ev, 0, buf, sizeof(buf), &len), 0);
    ASSERT_MEM_STR(buf, len,
                   "ce-specversion: 1.0\r\nce-id: a%20b\r\nce-source: /s\r\nce-type: t%C3%A9\r\n"
                   "ce-knativebrokerttl: 255\r\nce-flag: true\r\nContent-Type: text/plain\r\n");
    size_t full = len;
    ASSERT_EQ(rc_ce_write_binary(&ev, RC_CE_WRITE_NO_TTL, buf, sizeof(buf), &len), 0);
    ASSERT(strstr(buf, "knativebrokerttl") == NULL || len < full);
    ASSERT_EQ(len, full - strlen("ce-knativebrokerttl: 255\r\n"));
    for (size_t cap = 0; cap < full; cap += 7) {
        ASSERT_EQ(rc_ce_write_binary(&ev, 0, buf, cap, &len), -ENOBUFS);
        ASSERT_EQ(len, full);
    }
    /* Values with CR/LF are percent-encoded; names and Content-Type that could inject header
     * lines are refused. */
    ev.subject = RC_STR("a\r\nX-Injected: 1");
    ASSERT_EQ(rc_ce_write_binary(&ev, 0, buf, sizeof(buf), &len), 0);
    ASSERT(memmem(buf, len, "\r\nX-Injected", 13) == NULL);
    ASSERT(memmem(buf, len, "ce-subject: a%0D%0AX-Injected:%201\r\n", 36) != NULL);
    ev.datacontenttype = RC_STR("text/plain\r\nX-Injected: 1");
    ASSERT_EQ(rc_ce_write_binary(&ev, 0, buf, sizeof(buf), &len), -EINVAL);
    ASSERT_EQ(len, 0);
    ev.datacontenttype = RC_STR("text/plain");
    ev.ext[1].name = RC_STR("x\r\ny");
    ASSERT_EQ(rc_ce_write_binary(&ev, 0, buf, sizeof(buf), &len), -EINVAL);
    ev.ext[1].name = RC_STR("Upper");
    ASSERT_EQ(rc_ce_write_binary(&ev, 0, buf, sizeof(buf), &len), -EINVAL);
}

/* Splits a written header block back into headers, as an HTTP parser would. */
static size_t split_headers(char *block, size_t len, rc_http_header_t *out, size_t max)
{
    size_t n = 0, i = 0;
    while (i < len && n < max) {
        char *line = block + i;
        char *crlf = memmem(line, len - i, "\r\n", 2);
        ASSERT(crlf != NULL);
        char *colon = memchr(line, ':', (size_t)(crlf - line));
        ASSERT(colon != NULL && colon[1] == ' ');
        out[n].name = (rc_str_t){ line, (size_t)(colon - line) };
        out[n].value = (rc_str_t){ colon + 2, (size_t)(crlf - colon - 2) };
        n++;
        i = (size_t)(crlf - block) + 2;
    }
    return n;
}

static void test_binary_round_trips(void)
{
    gen_rng_t r = { 0x1234567 };
    rc_arena_t a;
    rc_arena_init(&a, NULL, 0, 0);
    static char block[1 << 16];
    rc_http_header_t hdrs[RC_CE_EXT_MAX + 16];
    for (int iter = 0; iter < 5000; iter++) {
        rc_event_t ev, back;
        gen_event(&r, &a, &ev, GEN_NO_EMPTY_DATA);
        size_t len;
        ASSERT_EQ(rc_ce_write_binary(&ev, 0, block, sizeof(block), &len), 0);
        size_t n = split_headers(block, len, hdrs, COUNT(hdrs));
        rc_ce_error_t err = { .index = -1 };
        int rc = rc_ce_decode_binary(hdrs, n, ev.data, &a, &back, &err);
        if (rc != 0)
            RC_TEST_FAIL("iteration %d: %s: %.*s", iter, err.rule, (int)err.field.len,
                         err.field.ptr);
        /* Binary mode carries no types: every extension comes back as a String. */
        for (uint32_t i = 0; i < ev.ext_count; i++)
            ev.ext[i].type = RC_CE_STRING;
        if (!rc_event_equal(&ev, &back))
            RC_TEST_FAIL("binary round trip %d differs", iter);
        rc_arena_reset(&a);
    }
    rc_arena_close(&a);
}

static void test_decode_request(void)
{
    rc_arena_t a;
    rc_arena_init(&a, NULL, 0, 0);
    rc_event_t *evs;
    size_t n;
    rc_ce_error_t err;
    rc_http_header_t bin[] = { H("ce-specversion", "1.0"), H("ce-id", "1"), H("ce-source", "s"),
                               H("ce-type", "t"), H("content-type", "text/plain") };
    ASSERT_EQ(rc_ce_decode_request(bin, COUNT(bin), RC_STR("hi"), &a, 10, &evs, &n, &err), 0);
    ASSERT_EQ(n, 1);
    ASSERT_MEM_STR(evs[0].data.ptr, evs[0].data.len, "hi");

    rc_http_header_t st[] = { H("Content-Type", "application/cloudevents+json; charset=utf-8"),
                              H("ce-id", "ignored in structured mode") };
    const char *one = "{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"s\",\"type\":\"t\"}";
    ASSERT_EQ(rc_ce_decode_request(st, COUNT(st), rc_str(one), &a, 10, &evs, &n, &err), 0);
    ASSERT_EQ(n, 1);
    ASSERT_MEM_STR(evs[0].id.ptr, evs[0].id.len, "x");

    rc_http_header_t bt[] = { H("Content-Type", "application/cloudevents-batch+json") };
    char batch[512];
    snprintf(batch, sizeof(batch), "[%s,%s,%s]", one, one, one);
    ASSERT_EQ(rc_ce_decode_request(bt, 1, rc_str(batch), &a, 10, &evs, &n, &err), 0);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(rc_ce_decode_request(bt, 1, rc_str(batch), &a, 2, &evs, &n, &err), RC_ETOO_LARGE);
    ASSERT_EQ(n, 0);
    ASSERT_EQ(evs, NULL);

    rc_http_header_t xml[] = { H("Content-Type", "application/cloudevents+xml") };
    ASSERT_EQ(rc_ce_decode_request(xml, 1, RC_STR("<x/>"), &a, 10, &evs, &n, &err),
              RC_EUNSUPPORTED_MEDIA);
    rc_http_header_t two[] = { H("Content-Type", "application/cloudevents+json"),
                               H("Content-Type", "text/plain") };
    ASSERT_EQ(rc_ce_decode_request(two, 2, rc_str(one), &a, 10, &evs, &n, &err),
              RC_EINVALID_EVENT);
    ASSERT_EQ(rc_ce_decode_request(st, 1, RC_STR("{"), &a, 10, &evs, &n, &err), RC_EINVALID_EVENT);
    ASSERT_EQ(err.index, -1);
    ASSERT_STR_EQ(err.rule, "malformed JSON");
    rc_arena_close(&a);
}

int main(void)
{
    test_classify();
    test_percent();
    test_binary_decode();
    test_binary_write();
    test_binary_round_trips();
    test_decode_request();
    puts("test_codec_http: ok");
    return 0;
}
