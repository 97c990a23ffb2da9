/* Unit tests of the CloudEvent model (core/event.h), the arena, base64 and validation
 * (core/validate.h): every rule, with the message it gives. */
#include "core/arena.h"
#include "core/base64.h"
#include "core/errors.h"
#include "core/event.h"
#include "core/validate.h"
#include "tests/test.h"

#include <errno.h>

static void test_arena(void)
{
    char buf[64];
    rc_arena_t a;
    rc_arena_init(&a, buf, sizeof(buf), 0);
    char *p = rc_arena_alloc(&a, 10, 1);
    ASSERT(p >= buf && p + 10 <= buf + sizeof(buf));
    void *q = rc_arena_alloc(&a, 8, 8);
    ASSERT(((uintptr_t)q & 7) == 0);
    ASSERT(q >= (void *)buf && (char *)q + 8 <= buf + sizeof(buf));
    /* Past the initial buffer it chains heap chunks. */
    char *big = rc_arena_alloc(&a, 10000, 16);
    ASSERT(big != NULL);
    memset(big, 1, 10000);
    ASSERT_EQ(rc_arena_alloc(&a, 3, 3), NULL); /* bad alignment */
    char *s = rc_arena_strndup(&a, "hello", 5);
    ASSERT_STR_EQ(s, "hello");
    ASSERT_GE(rc_arena_used(&a), 10000 + 10 + 8 + 6);
    rc_arena_reset(&a);
    ASSERT_EQ(rc_arena_used(&a), 0);
    p = rc_arena_alloc(&a, 1, 1);
    ASSERT(p >= buf && p < buf + sizeof(buf));
    ASSERT(rc_arena_alloc(&a, 0, 1) != NULL);
    rc_arena_close(&a);
    rc_arena_close(NULL);

    /* The limit turns into NULL, never an abort; the arena stays usable below it. */
    rc_arena_init(&a, NULL, 0, 8192);
    ASSERT(rc_arena_alloc(&a, 5000, 8) != NULL);
    ASSERT_EQ(rc_arena_alloc(&a, 5000, 8), NULL);
    ASSERT(rc_arena_alloc(&a, 100, 8) != NULL);
    ASSERT_EQ(rc_arena_alloc(&a, SIZE_MAX - 4, 8), NULL);
    rc_arena_close(&a);

    /* Many small allocations in chunks, all distinct and writable. */
    rc_arena_init(&a, NULL, 0, 0);
    char *prev = NULL;
    for (int i = 0; i < 10000; i++) {
        char *x = rc_arena_alloc(&a, 24, 8);
        ASSERT(x != NULL && x != prev);
        memset(x, i & 0xff, 24);
        prev = x;
    }
    rc_arena_close(&a);
}

static void test_base64(void)
{
    static const struct {
        const char *plain, *enc;
    } v[] = { { "", "" },         { "f", "Zg==" },       { "fo", "Zm8=" },
              { "foo", "Zm9v" },  { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
              { "Ma", "TWE=" },   { "foobar", "Zm9vYmFy" } };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char out[32];
        size_t n = rc_base64_encode(v[i].plain, strlen(v[i].plain), out);
        ASSERT_MEM_STR(out, n, v[i].enc);
        ASSERT_EQ(n, rc_base64_encoded_len(strlen(v[i].plain)));
        long k = rc_base64_decode(v[i].enc, strlen(v[i].enc), out);
        ASSERT_MEM_STR(out, k, v[i].plain);
        ASSERT(rc_base64_is_canonical(v[i].enc, strlen(v[i].enc)));
    }
    char out[16];
    ASSERT_EQ(rc_base64_decode("Zg=", 3, out), -1);
    ASSERT_EQ(rc_base64_decode("Z===", 4, out), -1);
    ASSERT_EQ(rc_base64_decode("Zg==Zg==", 8, out), -1);
    ASSERT_EQ(rc_base64_decode("Zm9*", 4, out), -1);
    ASSERT_EQ(rc_base64_decode("Zm 9", 4, out), -1);
    ASSERT_EQ(rc_base64_decode("Z=g=", 4, out), -1);
    ASSERT(!rc_base64_is_canonical("Zh==", 4)); /* non-zero padding bits */
    ASSERT(!rc_base64_is_canonical("Zm9=", 4));
    for (int len = 0; len < 40; len++) {
        unsigned char in[40], enc[64], dec[48];
        for (int i = 0; i < len; i++)
            in[i] = (unsigned char)(i * 37 + len);
        size_t n = rc_base64_encode(in, (size_t)len, (char *)enc);
        ASSERT_EQ(rc_base64_decode((char *)enc, n, dec), len);
        ASSERT(memcmp(in, dec, (size_t)len) == 0);
    }
}

static void test_model(void)
{
    rc_ce_ext_t ext[2];
    rc_event_t ev;
    rc_arena_t a;
    rc_arena_init(&a, NULL, 0, 0);
    rc_event_init(&ev, ext, 2);
    ev.specversion = RC_STR("1.0");
    ev.id = RC_STR("1");
    ev.source = RC_STR("/src");
    ev.type = RC_STR("t");
    ASSERT_EQ(rc_event_set_ext(&ev, NULL, RC_STR("a"), RC_STR("1"), RC_CE_INTEGER), 0);
    ASSERT_EQ(rc_event_set_ext(&ev, NULL, RC_STR("b"), RC_STR("x"), RC_CE_STRING), 0);
    /* full, no arena */
    ASSERT_EQ(rc_event_set_ext(&ev, NULL, RC_STR("c"), RC_STR("y"), RC_CE_STRING), -ENOMEM);
    /* replacing needs no room */
    ASSERT_EQ(rc_event_set_ext(&ev, NULL, RC_STR("b"), RC_STR("z"), RC_CE_STRING), 0);
    ASSERT_EQ(rc_event_set_ext(&ev, &a, RC_STR("c"), RC_STR("y"), RC_CE_STRING), 0);
    ASSERT_EQ(ev.ext_count, 3);
    ASSERT(ev.ext != ext);
    const rc_ce_ext_t *e = rc_event_find_ext(&ev, RC_STR("b"));
    ASSERT(e != NULL);
    ASSERT_MEM_STR(e->value.ptr, e->value.len, "z");
    ASSERT_EQ(rc_event_find_ext(&ev, RC_STR("zz")), NULL);

    rc_ce_value_t v;
    ASSERT_EQ(rc_event_get(&ev, RC_STR("source"), &v), 0);
    ASSERT_MEM_STR(v.value.ptr, v.value.len, "/src");
    ASSERT_EQ(v.type, RC_CE_URI_REF);
    ASSERT_EQ(rc_event_get(&ev, RC_STR("a"), &v), 0);
    ASSERT_EQ(v.type, RC_CE_INTEGER);
    ASSERT_EQ(rc_event_get(&ev, RC_STR("time"), &v), -ENOENT);
    ASSERT_EQ(rc_event_get(&ev, RC_STR("nope"), &v), -ENOENT);
    rc_ce_key_t key;
    rc_ce_key_init(&key, RC_STR("c"));
    ASSERT_EQ(key.core, -1);
    ASSERT_EQ(rc_event_get_key(&ev, &key, &v), 0);
    ASSERT_MEM_STR(v.value.ptr, v.value.len, "y");
    ASSERT_EQ(rc_event_validate(&ev, NULL), 0);

    ASSERT(rc_event_remove_ext(&ev, RC_STR("a")));
    ASSERT(!rc_event_remove_ext(&ev, RC_STR("a")));
    ASSERT_EQ(ev.ext_count, 2);
    ASSERT_MEM_STR(ev.ext[0].name.ptr, ev.ext[0].name.len, "b");

    rc_event_t copy;
    ASSERT_EQ(rc_event_copy(&copy, &ev, &a), 0);
    ASSERT(rc_event_equal(&copy, &ev));
    ASSERT(copy.id.ptr != ev.id.ptr);
    copy.subject = RC_STR("s");
    ASSERT(!rc_event_equal(&copy, &ev));

    for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++) {
        const char *name = rc_ce_attr_name((rc_ce_attr_t)i);
        ASSERT_EQ(rc_ce_attr_index(rc_str(name)), i);
        rc_ce_key_init(&key, rc_str(name));
        ASSERT_EQ(key.core, i);
    }
    static const char *const not_core[] = { "", "i", "ID", "tyme", "sourc", "subjekt", "data",
                                            "specversions", "datacontenttypf", "dataschemX" };
    for (size_t i = 0; i < sizeof(not_core) / sizeof(not_core[0]); i++)
        ASSERT_EQ(rc_ce_attr_index(rc_str(not_core[i])), -1);
    ASSERT_STR_EQ(rc_ce_type_name(RC_CE_URI_REF), "URI-reference");
    ASSERT_STR_EQ(rc_ce_type_name((rc_ce_type_t)99), "unknown");

    /* The table grows up to RC_CE_EXT_MAX and refuses more. */
    rc_event_init(&ev, NULL, 0);
    char names[RC_CE_EXT_MAX + 1][8];
    for (int i = 0; i <= RC_CE_EXT_MAX; i++) {
        size_t n = (size_t)snprintf(names[i], sizeof(names[i]), "x%d", i);
        int rc = rc_event_set_ext(&ev, &a, (rc_str_t){ names[i], n }, RC_STR("v"), RC_CE_STRING);
        ASSERT_EQ(rc, i < RC_CE_EXT_MAX ? 0 : -E2BIG);
    }
    rc_arena_close(&a);
}

static void test_int(void)
{
    static const struct {
        const char *s;
        int ok;
        int32_t v;
    } c[] = { { "0", 1, 0 },
              { "10", 1, 10 },
              { "-5", 1, -5 },
              { "2147483647", 1, INT32_MAX },
              { "-2147483648", 1, INT32_MIN },
              { "2147483648", 0, 0 },
              { "-2147483649", 0, 0 },
              { "007", 0, 0 },
              { "-0", 0, 0 },
              { "+1", 0, 0 },
              { "", 0, 0 },
              { "-", 0, 0 },
              { "1.5", 0, 0 },
              { " 1", 0, 0 },
              { "99999999999", 0, 0 } };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        int32_t v = 12345;
        int rc = rc_ce_int_parse(rc_str(c[i].s), &v);
        if (c[i].ok) {
            ASSERT_EQ(rc, 0);
            ASSERT_EQ(v, c[i].v);
            char buf[12];
            size_t n = rc_ce_int_format(v, buf);
            ASSERT_MEM_STR(buf, n, c[i].s);
        } else if (rc != -EINVAL) {
            RC_TEST_FAIL("int \"%s\" should be rejected", c[i].s);
        }
    }
}

static void test_time(void)
{
    static const struct {
        const char *s;
        int ok;
        int64_t sec;
        uint32_t ns;
    } c[] = {
        { "2018-04-05T17:31:00Z", 1, 1522949460, 0 },
        { "2018-04-05T18:31:00+01:00", 1, 1522949460, 0 },
        { "2018-04-05T16:31:00-01:00", 1, 1522949460, 0 },
        { "2018-04-05T17:31:00.000000000Z", 1, 1522949460, 0 },
        { "2018-04-05t17:31:00.5z", 1, 1522949460, 500000000 },
        { "2018-04-05T17:31:00.123456789123Z", 1, 1522949460, 123456789 },
        { "1970-01-01T00:00:00Z", 1, 0, 0 },
        { "1969-12-31T23:59:59Z", 1, -1, 0 },
        { "2000-02-29T00:00:00Z", 1, 951782400, 0 },
        { "2016-12-31T23:59:60Z", 1, 1483228800, 0 }, /* leap second */
        { "1900-02-29T00:00:00Z", 0, 0, 0 },
        { "2001-02-29T00:00:00Z", 0, 0, 0 },
        { "2018-04-31T00:00:00Z", 0, 0, 0 },
        { "2018-13-01T00:00:00Z", 0, 0, 0 },
        { "2018-00-01T00:00:00Z", 0, 0, 0 },
        { "2018-04-05T24:00:00Z", 0, 0, 0 },
        { "2018-04-05T23:60:00Z", 0, 0, 0 },
        { "2018-04-05T23:59:61Z", 0, 0, 0 },
        { "lunchtime", 0, 0, 0 },
        { "2018-04-05T18:31Z", 0, 0, 0 },
        { "2018-04-05T18:31:00X", 0, 0, 0 },
        { "2018-04-05T18:31:00+25:00", 0, 0, 0 },
        { "2018-04-05T18:31:00+05:60", 0, 0, 0 },
        { "2018-04-05T18:31:00+xx:00", 0, 0, 0 },
        { "2018-04-05T18:31:00+05", 0, 0, 0 },
        { "2018-04-05T18:31:00", 0, 0, 0 },
        { "2018-04-05 18:31:00Z", 0, 0, 0 },
        { "2018-04-05T18:31:00.Z", 0, 0, 0 },
        { "2018-04-05T18:31:00ZZ", 0, 0, 0 },
        { "2018-4-05T18:31:00Z", 0, 0, 0 },
        { "", 0, 0, 0 },
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        int64_t sec = 0;
        uint32_t ns = 0;
        int rc = rc_ce_time_parse(rc_str(c[i].s), &sec, &ns);
        if (c[i].ok != (rc == 0))
            RC_TEST_FAIL("time \"%s\": expected %s", c[i].s, c[i].ok ? "valid" : "invalid");
        if (c[i].ok) {
            ASSERT_EQ(sec, c[i].sec);
            ASSERT_EQ(ns, c[i].ns);
        }
    }
    char buf[RC_CE_TIME_BUF];
    size_t n = rc_ce_time_format(1522949460123456789LL, buf);
    ASSERT_MEM_STR(buf, n, "2018-04-05T17:31:00.123456789Z");
    /* Same second again: the cached date and time, new nanoseconds. */
    n = rc_ce_time_format(1522949460000000007LL, buf);
    ASSERT_MEM_STR(buf, n, "2018-04-05T17:31:00.000000007Z");
    n = rc_ce_time_format(1522949461000000000LL, buf);
    ASSERT_MEM_STR(buf, n, "2018-04-05T17:31:01.000000000Z");
    n = rc_ce_time_format(0, buf);
    ASSERT_MEM_STR(buf, n, "1970-01-01T00:00:00.000000000Z");
    n = rc_ce_time_format(-1, buf);
    ASSERT_MEM_STR(buf, n, "1969-12-31T23:59:59.999999999Z");
    /* format and parse are inverses */
    for (int64_t t = -86400LL * 365 * 50; t < 86400LL * 365 * 200; t += 86400LL * 37 + 12345) {
        int64_t ns = t * 1000000000 + (t & 0x3fffffff) % 1000000000;
        n = rc_ce_time_format(ns, buf);
        int64_t sec;
        uint32_t nsec;
        ASSERT_EQ(rc_ce_time_parse((rc_str_t){ buf, n }, &sec, &nsec), 0);
        ASSERT_EQ(sec * 1000000000 + nsec, ns);
    }
}

static void test_syntax(void)
{
    static const char *const uris[] = { "https://cloudevents.io", "urn:uuid:6e8bc430",
                                        "mailto:a@b.c", "http://[::1]:8080/p?q=1#f",
                                        "a+b-c.d:x", "http://h/%41" };
    static const char *const not_uris[] = { "", "/relative", "#frag", "1http://x", "http",
                                            "http://exa mple", "http://x/%4", "http://x/%zz",
                                            "http://x#a#b", "http://x/\xc3\xa9", ":nope",
                                            "http://x/<>" };
    for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
        if (!rc_ce_is_uri(rc_str(uris[i])) || !rc_ce_is_uri_ref(rc_str(uris[i])))
            RC_TEST_FAIL("\"%s\" should be a URI", uris[i]);
    }
    for (size_t i = 0; i < sizeof(not_uris) / sizeof(not_uris[0]); i++) {
        if (rc_ce_is_uri(rc_str(not_uris[i])))
            RC_TEST_FAIL("\"%s\" should not be a URI", not_uris[i]);
    }
    static const char *const refs[] = { "/mycontext/subcontext", "#fragment", "//authority/path",
                                        "a/b:c", "?q", ".", "x", "../up" };
    static const char *const not_refs[] = { "", "a:b c", "with space", "a:b/%g0", "x:y#1#2",
                                            "1a:b", "\"q\"" };
    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++)
        if (!rc_ce_is_uri_ref(rc_str(refs[i])))
            RC_TEST_FAIL("\"%s\" should be a URI-reference", refs[i]);
    for (size_t i = 0; i < sizeof(not_refs) / sizeof(not_refs[0]); i++)
        if (rc_ce_is_uri_ref(rc_str(not_refs[i])))
            RC_TEST_FAIL("\"%s\" should not be a URI-reference", not_refs[i]);
    ASSERT(!rc_ce_is_uri_ref(RC_STR_NULL));

    static const char *const media[] = { "text/plain", "application/json; charset=utf-8",
                                         "application/vnd.a+json", "text/plain;charset=\"a b\"",
                                         "a/b ; x=y ;z=w", "text/plain; q=\"a\\\"b\"" };
    static const char *const not_media[] = { "", "xyz", "text/", "/plain", "text/plain;",
                                             "text/plain; charset", "text/plain; a=",
                                             "text /plain", "text/plain; a=\"open",
                                             "text/pl\xc3\xa4in", "text/plain\r\nX: y", "text/plain ",
                                             "text/plain; a=b " };
    for (size_t i = 0; i < sizeof(media) / sizeof(media[0]); i++)
        if (!rc_ce_is_media_type(rc_str(media[i])))
            RC_TEST_FAIL("\"%s\" should be a media type", media[i]);
    for (size_t i = 0; i < sizeof(not_media) / sizeof(not_media[0]); i++)
        if (rc_ce_is_media_type(rc_str(not_media[i])))
            RC_TEST_FAIL("\"%s\" should not be a media type", not_media[i]);

    ASSERT(rc_ce_is_json_media_type(RC_STR("application/json")));
    ASSERT(rc_ce_is_json_media_type(RC_STR("Application/JSON; charset=utf-8")));
    ASSERT(rc_ce_is_json_media_type(RC_STR("text/json")));
    ASSERT(rc_ce_is_json_media_type(RC_STR("application/cloudevents+json")));
    ASSERT(!rc_ce_is_json_media_type(RC_STR("text/plain")));
    ASSERT(!rc_ce_is_json_media_type(RC_STR("image/json")));
    ASSERT(!rc_ce_is_json_media_type(RC_STR("application/jsonx")));
    ASSERT(!rc_ce_is_json_media_type(RC_STR("json")));

    ASSERT(rc_ce_is_ext_name(RC_STR("a")));
    ASSERT(rc_ce_is_ext_name(RC_STR("abcdefghij0123456789")));
    ASSERT(!rc_ce_is_ext_name(RC_STR("abcdefghij01234567890")));
    ASSERT(!rc_ce_is_ext_name(RC_STR("")));
    ASSERT(!rc_ce_is_ext_name(RC_STR("MyExt")));
    ASSERT(!rc_ce_is_ext_name(RC_STR("my.ext")));
    ASSERT(!rc_ce_is_ext_name(RC_STR("my_ext")));

    ASSERT(rc_ce_is_valid_string(RC_STR("plain ascii ~")));
    ASSERT(rc_ce_is_valid_string(RC_STR("caf\xc3\xa9 \xf0\x9f\x8c\x8e \xe2\x82\xac")));
    ASSERT(rc_ce_is_valid_string(RC_STR("")));
    static const char *const bad_strings[] = { "tab\t", "nl\n", "del\x7f", "\xc3", "\xc0\xaf",
                                               "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                               "\xc2\x85", "\xff", "\x80" };
    for (size_t i = 0; i < sizeof(bad_strings) / sizeof(bad_strings[0]); i++)
        if (rc_ce_is_valid_string(rc_str(bad_strings[i])))
            RC_TEST_FAIL("bad string %zu accepted", i);
    ASSERT(!rc_ce_is_valid_string((rc_str_t){ "a\0b", 3 }));

    ASSERT_EQ(rc_ce_check_value(RC_CE_BOOLEAN, RC_STR("true")), NULL);
    ASSERT_EQ(rc_ce_check_value(RC_CE_BOOLEAN, RC_STR("false")), NULL);
    ASSERT(rc_ce_check_value(RC_CE_BOOLEAN, RC_STR("True")) != NULL);
    ASSERT_EQ(rc_ce_check_value(RC_CE_BINARY, RC_STR("TWE=")), NULL);
    ASSERT(rc_ce_check_value(RC_CE_BINARY, RC_STR("TWE")) != NULL);
    ASSERT_EQ(rc_ce_check_value(RC_CE_INTEGER, RC_STR("-7")), NULL);
    ASSERT(rc_ce_check_value(RC_CE_INTEGER, RC_STR("7.0")) != NULL);
    ASSERT_EQ(rc_ce_check_value(RC_CE_URI, RC_STR("https://cloudevents.io")), NULL);
    ASSERT(rc_ce_check_value(RC_CE_URI, RC_STR("//authority/path")) != NULL);
    ASSERT_EQ(rc_ce_check_value(RC_CE_URI_REF, RC_STR("//authority/path")), NULL);
    ASSERT_EQ(rc_ce_check_value(RC_CE_TIMESTAMP, RC_STR("2023-03-31T15:12:00Z")), NULL);
    ASSERT(rc_ce_check_value(RC_CE_TIMESTAMP, RC_STR("2023-03-31")) != NULL);
    ASSERT(rc_ce_check_value((rc_ce_type_t)42, RC_STR("x")) != NULL);
}

/* One event per rule, each with the exact message the ingress will send. */
static void test_validate(void)
{
    struct {
        int attr;          /* core attribute to change, or -1 */
        const char *value; /* NULL = remove */
        const char *ext_name, *ext_value;
        rc_ce_type_t ext_type;
        const char *message; /* NULL = valid */
    } c[] = {
        { -1, NULL, NULL, NULL, 0, NULL },
        { RC_CE_ATTR_SPECVERSION, NULL, NULL, NULL, 0, "specversion: is required" },
        { RC_CE_ATTR_SPECVERSION, "", NULL, NULL, 0, "specversion: must be \"1.0\"" },
        { RC_CE_ATTR_SPECVERSION, "0.3", NULL, NULL, 0, "specversion: must be \"1.0\"" },
        { RC_CE_ATTR_ID, NULL, NULL, NULL, 0, "id: is required" },
        { RC_CE_ATTR_ID, "", NULL, NULL, 0, "id: must be a non-empty string" },
        { RC_CE_ATTR_ID, "a\nb", NULL, NULL, 0,
          "id: must be valid UTF-8 without control characters" },
        { RC_CE_ATTR_SOURCE, NULL, NULL, NULL, 0, "source: is required" },
        { RC_CE_ATTR_SOURCE, "", NULL, NULL, 0, "source: must be a non-empty URI-reference" },
        { RC_CE_ATTR_SOURCE, "not a uri", NULL, NULL, 0,
          "source: must be a non-empty URI-reference" },
        { RC_CE_ATTR_TYPE, NULL, NULL, NULL, 0, "type: is required" },
        { RC_CE_ATTR_TYPE, "", NULL, NULL, 0, "type: must be a non-empty string" },
        { RC_CE_ATTR_TYPE, "\xff", NULL, NULL, 0,
          "type: must be valid UTF-8 without control characters" },
        { RC_CE_ATTR_DATACONTENTTYPE, "", NULL, NULL, 0,
          "datacontenttype: must be an RFC 2046 media type" },
        { RC_CE_ATTR_DATACONTENTTYPE, "xyz", NULL, NULL, 0,
          "datacontenttype: must be an RFC 2046 media type" },
        { RC_CE_ATTR_DATACONTENTTYPE, "text/plain", NULL, NULL, 0, NULL },
        { RC_CE_ATTR_DATACONTENTTYPE, "text/plain; a=\"\xed\"", NULL, NULL, 0,
          "datacontenttype: must be an RFC 2046 media type" },
        { RC_CE_ATTR_DATACONTENTTYPE, "text/plain; a=\"x\ty\"", NULL, NULL, 0,
          "datacontenttype: must be an RFC 2046 media type" },
        { RC_CE_ATTR_DATACONTENTTYPE, "text/plain; a=\"caf\xc3\xa9\"", NULL, NULL, 0, NULL },
        { RC_CE_ATTR_DATASCHEMA, "", NULL, NULL, 0, "dataschema: must be an absolute URI" },
        { RC_CE_ATTR_DATASCHEMA, "/relative", NULL, NULL, 0,
          "dataschema: must be an absolute URI" },
        { RC_CE_ATTR_DATASCHEMA, "https://x/s.json", NULL, NULL, 0, NULL },
        { RC_CE_ATTR_SUBJECT, "", NULL, NULL, 0,
          "subject: must be a non-empty string when present" },
        { RC_CE_ATTR_SUBJECT, "\x01", NULL, NULL, 0,
          "subject: must be valid UTF-8 without control characters" },
        { RC_CE_ATTR_SUBJECT, "ok", NULL, NULL, 0, NULL },
        { RC_CE_ATTR_TIME, "", NULL, NULL, 0, "time: must be an RFC 3339 timestamp" },
        { RC_CE_ATTR_TIME, "2018-04-05", NULL, NULL, 0, "time: must be an RFC 3339 timestamp" },
        { RC_CE_ATTR_TIME, "2018-04-05T17:31:00Z", NULL, NULL, 0, NULL },
        { -1, NULL, "MyExt", "v", RC_CE_STRING,
          "MyExt: extension name must be 1-20 characters of [a-z0-9]" },
        { -1, NULL, "my.ext", "v", RC_CE_STRING,
          "my.ext: extension name must be 1-20 characters of [a-z0-9]" },
        { -1, NULL, "abcdefghijklmnopqrstu", "v", RC_CE_STRING,
          "abcdefghijklmnopqrstu: extension name must be 1-20 characters of [a-z0-9]" },
        { -1, NULL, "", "v", RC_CE_STRING, "extension name must be 1-20 characters of [a-z0-9]" },
        { -1, NULL, "data", "v", RC_CE_STRING, "data: is reserved for the event data" },
        { -1, NULL, "subject", "v", RC_CE_STRING, "subject: is a core attribute, not an extension" },
        { -1, NULL, "dup", "v", RC_CE_STRING, "dup: duplicate attribute" },
        { -1, NULL, "n", "1.5", RC_CE_INTEGER, "n: must be a 32-bit integer" },
        { -1, NULL, "b", "yes", RC_CE_BOOLEAN, "b: must be a boolean (true or false)" },
        { -1, NULL, "bin", "!!", RC_CE_BINARY, "bin: must be base64" },
        { -1, NULL, "u", "rel/x", RC_CE_URI, "u: must be an absolute URI" },
        { -1, NULL, "r", "a b", RC_CE_URI_REF, "r: must be a non-empty URI-reference" },
        { -1, NULL, "ts", "noon", RC_CE_TIMESTAMP, "ts: must be an RFC 3339 timestamp" },
        { -1, NULL, "s", "a\x7f", RC_CE_STRING,
          "s: must be valid UTF-8 without control characters" },
        { -1, NULL, "ok1", "https://x", RC_CE_URI, NULL },
        { -1, NULL, "ok2", "TWE=", RC_CE_BINARY, NULL },
        { -1, NULL, "ok3", "", RC_CE_STRING, NULL },
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        rc_ce_ext_t ext[4];
        rc_event_t ev;
        rc_event_init(&ev, ext, 4);
        ev.specversion = RC_STR("1.0");
        ev.id = RC_STR("id-1");
        ev.source = RC_STR("https://example.com/src");
        ev.type = RC_STR("com.example.t");
        ext[0] = (rc_ce_ext_t){ RC_STR("dup"), RC_STR("x"), RC_CE_STRING };
        ev.ext_count = 1;
        if (c[i].attr >= 0)
            ev.attr[c[i].attr] = c[i].value ? rc_str(c[i].value) : RC_STR_NULL;
        if (c[i].ext_name)
            ext[ev.ext_count++] = (rc_ce_ext_t){ rc_str(c[i].ext_name), rc_str(c[i].ext_value),
                                                 c[i].ext_type };
        rc_ce_error_t err = { .index = -1 };
        int rc = rc_event_validate(&ev, &err);
        if (c[i].message == NULL) {
            if (rc != 0)
                RC_TEST_FAIL("case %zu should be valid, got %s", i, err.rule);
            continue;
        }
        ASSERT_EQ(rc, RC_EINVALID_EVENT);
        char msg[256];
        size_t n = rc_ce_error_format(&err, msg, sizeof(msg));
        ASSERT_EQ(n, strlen(msg));
        ASSERT_STR_EQ(msg, c[i].message);
    }

    rc_ce_error_t err = { .index = 3, .field = RC_STR("source"), .rule = "must be x" };
    char msg[64];
    rc_ce_error_format(&err, msg, sizeof(msg));
    ASSERT_STR_EQ(msg, "event 3: source: must be x");
    /* Truncation reports the full length, like snprintf. */
    char small[8];
    size_t n = rc_ce_error_format(&err, small, sizeof(small));
    ASSERT_EQ(n, strlen("event 3: source: must be x"));
    ASSERT_STR_EQ(small, "event 3");
    /* Hostile field bytes cannot break a JSON error body. */
    err = (rc_ce_error_t){ .index = -1, .field = RC_STR("a\"b\\\n"), .rule = "bad" };
    rc_ce_error_format(&err, msg, sizeof(msg));
    ASSERT_STR_EQ(msg, "a?b??: bad");
    char longname[200];
    memset(longname, 'x', sizeof(longname));
    err.field = (rc_str_t){ longname, sizeof(longname) };
    char wide[128];
    n = rc_ce_error_format(&err, wide, sizeof(wide));
    ASSERT(n < 80 && strstr(wide, "...: bad") != NULL);
}

static void test_ttl_arrival(void)
{
    rc_arena_t a;
    rc_arena_init(&a, NULL, 0, 0);
    rc_event_t ev;
    rc_event_init(&ev, NULL, 0);
    int32_t ttl = 0;
    ASSERT_EQ(rc_event_ttl_get(&ev, &ttl), -ENOENT);
    rc_ce_error_t err = { .index = -1 };
    ASSERT_EQ(rc_event_ttl_ingress(&ev, &a, &err), 0);
    ASSERT_EQ(rc_event_ttl_get(&ev, &ttl), 0);
    ASSERT_EQ(ttl, 255);
    ASSERT_EQ(rc_event_find_ext(&ev, RC_STR("knativebrokerttl"))->type, RC_CE_INTEGER);

    /* A binary-mode string value is kept and re-typed. */
    rc_event_init(&ev, NULL, 0);
    rc_event_set_ext(&ev, &a, RC_STR("knativebrokerttl"), RC_STR("7"), RC_CE_STRING);
    ASSERT_EQ(rc_event_ttl_ingress(&ev, &a, &err), 0);
    ASSERT_EQ(rc_event_find_ext(&ev, RC_STR("knativebrokerttl"))->type, RC_CE_INTEGER);
    ASSERT_EQ(rc_event_ttl_get(&ev, &ttl), 0);
    ASSERT_EQ(ttl, 7);

    rc_event_set_ext(&ev, &a, RC_STR("knativebrokerttl"), RC_STR("0"), RC_CE_STRING);
    ASSERT_EQ(rc_event_ttl_ingress(&ev, &a, &err), RC_ETTL_EXPIRED);
    ASSERT_STR_EQ(err.rule, "must be greater than 0 (broker TTL expired)");
    rc_event_set_ext(&ev, &a, RC_STR("knativebrokerttl"), RC_STR("-3"), RC_CE_INTEGER);
    ASSERT_EQ(rc_event_ttl_ingress(&ev, &a, &err), RC_ETTL_EXPIRED);
    rc_event_set_ext(&ev, &a, RC_STR("knativebrokerttl"), RC_STR("lots"), RC_CE_STRING);
    ASSERT_EQ(rc_event_ttl_ingress(&ev, &a, &err), RC_EINVALID_EVENT);
    ASSERT_STR_EQ(err.rule, "must be an integer");
    rc_event_set_ext(&ev, &a, RC_STR("knativebrokerttl"), RC_STR("true"), RC_CE_BOOLEAN);
    ASSERT_EQ(rc_event_ttl_get(&ev, &ttl), RC_EINVALID_EVENT);

    /* Replies count down; the one that would reach 0 is refused. */
    rc_event_init(&ev, NULL, 0);
    ASSERT_EQ(rc_event_ttl_reply(&ev, &a, 255), 0);
    ASSERT_EQ(rc_event_ttl_get(&ev, &ttl), 0);
    ASSERT_EQ(ttl, 254);
    ASSERT_EQ(rc_event_ttl_reply(&ev, &a, 2), 0);
    ASSERT_EQ(rc_event_ttl_get(&ev, &ttl), 0);
    ASSERT_EQ(ttl, 1);
    ASSERT_EQ(rc_event_ttl_reply(&ev, &a, 1), RC_ETTL_EXPIRED);
    ASSERT_EQ(rc_event_ttl_reply(&ev, &a, 0), RC_ETTL_EXPIRED);
    ASSERT_EQ(ev.ext_count, 1);

    /* Arrival time replaces whatever the producer sent and is a valid Timestamp. */
    rc_event_set_ext(&ev, &a, RC_STR("knativearrivaltime"), RC_STR("forged"), RC_CE_STRING);
    ASSERT_EQ(rc_event_stamp_arrival(&ev, &a, 1522949460000000001LL), 0);
    const rc_ce_ext_t *e = rc_event_find_ext(&ev, RC_STR("knativearrivaltime"));
    ASSERT(e != NULL && e->type == RC_CE_TIMESTAMP);
    ASSERT_MEM_STR(e->value.ptr, e->value.len, "2018-04-05T17:31:00.000000001Z");
    ASSERT_EQ(rc_ce_check_value(RC_CE_TIMESTAMP, e->value), NULL);
    ASSERT_EQ(ev.ext_count, 2);
    rc_arena_close(&a);
}

int main(void)
{
    test_arena();
    test_base64();
    test_model();
    test_int();
    test_time();
    test_syntax();
    test_validate();
    test_ttl_arrival();
    puts("test_event: ok");
    return 0;
}
