#include "core/delivery_policy.h"
#include "core/duration.h"
#include "core/errors.h"
#include "tests/test.h"

#include <errno.h>

#define S  RC_NS_PER_SEC
#define MS RC_NS_PER_MS

static void set_ok(rc_delivery_t *d, const char *field, const char *value)
{
    char err[256] = "";
    if (rc_delivery_set(d, field, value, strlen(value), err, sizeof(err)) != 0)
        RC_TEST_FAIL("%s=%s rejected: %s", field, value, err);
}

static void set_bad(const char *field, const char *value, const char *needle)
{
    rc_delivery_t d, before;
    rc_delivery_init(&d);
    before = d;
    char err[512] = "";
    int rc = rc_delivery_set(&d, field, value, strlen(value), err, sizeof(err));
    if (rc != RC_ECONFIG)
        RC_TEST_FAIL("%s=\"%s\" accepted", field, value);
    ASSERT(memcmp(&d, &before, sizeof(d)) == 0);
    if (strstr(err, needle) == NULL)
        RC_TEST_FAIL("%s=\"%s\": message \"%s\" lacks \"%s\"", field, value, err, needle);
}

static void test_model(void)
{
    rc_delivery_t d;
    rc_delivery_init(&d);
    ASSERT_EQ(d.set, 0);
    ASSERT_EQ(d.retry, 10);
    ASSERT_EQ(d.backoff_policy, RC_BACKOFF_EXPONENTIAL);
    ASSERT_EQ(d.backoff_delay_ns, 200 * MS);
    ASSERT_EQ(d.backoff_max_ns, 60 * S);
    ASSERT_EQ(d.timeout_ns, 30 * S);
    ASSERT_EQ(d.retry_after_max_ns, 60 * S);
    ASSERT_STR_EQ(d.dead_letter_uri, "");
    ASSERT_EQ(d.format, RC_DELIVERY_FORMAT_BINARY);

    set_ok(&d, "retry", "3");
    set_ok(&d, "backoffPolicy", "linear");
    set_ok(&d, "backoffDelay", "PT1S");
    set_ok(&d, "backoffMax", "PT5S");
    set_ok(&d, "timeout", "PT0.5S");
    set_ok(&d, "retryAfterMax", "PT0S");
    set_ok(&d, "deadLetterSink.uri", "http://127.0.0.1:9999/dls");
    set_ok(&d, "format", "json");
    ASSERT_EQ(d.retry, 3);
    ASSERT_EQ(d.backoff_policy, RC_BACKOFF_LINEAR);
    ASSERT_EQ(d.backoff_delay_ns, S);
    ASSERT_EQ(d.backoff_max_ns, 5 * S);
    ASSERT_EQ(d.timeout_ns, 500 * MS);
    ASSERT_EQ(d.retry_after_max_ns, 0);
    ASSERT_STR_EQ(d.dead_letter_uri, "http://127.0.0.1:9999/dls");
    ASSERT_EQ(d.format, RC_DELIVERY_FORMAT_JSON);
    ASSERT_EQ(d.set, 0xff);
    set_ok(&d, "retry", "0");
    ASSERT_EQ(d.retry, 0);
    set_ok(&d, "retry", "2147483647");
    set_ok(&d, "backoffPolicy", "exponential");
    set_ok(&d, "format", "binary");
    set_ok(&d, "backoffDelay", "PT0S");
    ASSERT_EQ(d.backoff_delay_ns, 0);

    /* Value need not be NUL-terminated. */
    rc_delivery_init(&d);
    ASSERT_EQ(rc_delivery_set(&d, "retry", "42xyz", 2, NULL, 0), 0);
    ASSERT_EQ(d.retry, 42);

    set_bad("retry", "-1", "spec.delivery.retry: \"-1\": must be a non-negative integer");
    set_bad("retry", "", "non-negative integer");
    set_bad("retry", "1.5", "non-negative integer");
    set_bad("retry", " 3", "non-negative integer");
    set_bad("retry", "2147483648", "too large");
    set_bad("retry", "99999999999999999999999", "too large");
    set_bad("backoffPolicy", "Exponential", "must be \"exponential\" or \"linear\"");
    set_bad("backoffPolicy", "", "must be \"exponential\" or \"linear\"");
    set_bad("format", "structured", "must be \"binary\" or \"json\"");
    set_bad("backoffDelay", "0.2", "spec.delivery.backoffDelay: invalid ISO-8601 duration");
    set_bad("backoffDelay", "P1M", "years and months");
    set_bad("backoffMax", "PT0S", "must be greater than zero");
    set_bad("timeout", "PT0S", "spec.delivery.timeout");
    set_bad("timeout", "30s", "must start with 'P'");
    set_bad("retryAfterMax", "PTS", "expected a digit");
    set_bad("deadLetterSink.uri", "", "must not be empty");
    set_bad("deadLetterSink", "x", "unknown field");
    set_bad("retries", "3", "spec.delivery.retries: unknown field");
    char longuri[1100];
    memset(longuri, 'a', sizeof(longuri) - 1);
    longuri[sizeof(longuri) - 1] = '\0';
    set_bad("deadLetterSink.uri", longuri, "longer than 1023");
    ASSERT_EQ(rc_delivery_set(&d, "deadLetterSink.uri", "a\0b", 3, NULL, 0), RC_ECONFIG);

    /* The effective block: a trigger's block replaces the broker's entirely. */
    rc_delivery_t broker, trigger, out;
    rc_delivery_init(&broker);
    rc_delivery_init(&trigger);
    rc_delivery_effective(NULL, NULL, &out);
    ASSERT_EQ(out.retry, 10);
    ASSERT_EQ(out.backoff_delay_ns, 200 * MS);
    rc_delivery_effective(&trigger, &broker, &out); /* neither set anything */
    ASSERT_EQ(out.retry, 10);
    ASSERT_EQ(out.set, 0);
    set_ok(&broker, "retry", "5");
    set_ok(&broker, "deadLetterSink.uri", "http://127.0.0.1:1/broker-dls");
    rc_delivery_effective(&trigger, &broker, &out);
    ASSERT_EQ(out.retry, 5);
    ASSERT_STR_EQ(out.dead_letter_uri, "http://127.0.0.1:1/broker-dls");
    rc_delivery_effective(NULL, &broker, &out);
    ASSERT_EQ(out.retry, 5);
    set_ok(&trigger, "backoffDelay", "PT1S");
    rc_delivery_effective(&trigger, &broker, &out);
    ASSERT_EQ(out.backoff_delay_ns, S);
    ASSERT_EQ(out.retry, 10);               /* not the broker's 5: replaced entirely */
    ASSERT_STR_EQ(out.dead_letter_uri, ""); /* nor the broker's sink */
    rc_delivery_effective(&trigger, NULL, &out);
    ASSERT_EQ(out.backoff_delay_ns, S);
}

static void test_from_config(void)
{
    rc_config_delivery_t cfg = {.retry = -1};
    rc_delivery_t d;
    char err[256] = "";
    ASSERT_EQ(rc_delivery_from_config(&cfg, &d, err, sizeof(err)), 0);
    ASSERT_EQ(d.set, 0);
    ASSERT_EQ(d.retry, 10);

    cfg.retry = 3;
    cfg.backoff_policy = "linear";
    cfg.backoff_delay = "PT0.5S";
    cfg.backoff_max = "PT10S";
    cfg.timeout = "PT2S";
    cfg.retry_after_max = "PT0S";
    cfg.dead_letter_uri = "http://127.0.0.1:7/dls";
    cfg.format = "json";
    ASSERT_EQ(rc_delivery_from_config(&cfg, &d, err, sizeof(err)), 0);
    ASSERT_EQ(d.set, 0xff);
    ASSERT_EQ(d.retry, 3);
    ASSERT_EQ(d.backoff_policy, RC_BACKOFF_LINEAR);
    ASSERT_EQ(d.backoff_delay_ns, 500 * MS);
    ASSERT_EQ(d.backoff_max_ns, 10 * S);
    ASSERT_EQ(d.timeout_ns, 2 * S);
    ASSERT_EQ(d.retry_after_max_ns, 0);
    ASSERT_STR_EQ(d.dead_letter_uri, "http://127.0.0.1:7/dls");
    ASSERT_EQ(d.format, RC_DELIVERY_FORMAT_JSON);

    /* The loader lets years through; delivery does not, and `out` stays untouched. */
    rc_delivery_t before = d;
    cfg.backoff_max = "P1Y";
    ASSERT_EQ(rc_delivery_from_config(&cfg, &d, err, sizeof(err)), RC_ECONFIG);
    ASSERT(strstr(err, "spec.delivery.backoffMax") != NULL);
    ASSERT(strstr(err, "years and months") != NULL);
    ASSERT(memcmp(&d, &before, sizeof(d)) == 0);
    cfg.backoff_max = NULL;
    cfg.timeout = "PT0S";
    ASSERT_EQ(rc_delivery_from_config(&cfg, &d, err, sizeof(err)), RC_ECONFIG);
    ASSERT(strstr(err, "spec.delivery.timeout") != NULL);
}

static void test_classify(void)
{
    for (int s = 200; s <= 299; s++)
        ASSERT_EQ(rc_delivery_classify(s), RC_DELIVERY_SUCCESS);
    for (int s = 500; s <= 599; s++)
        ASSERT_EQ(rc_delivery_classify(s), RC_DELIVERY_RETRY);
    int retry[] = {404, 408, 409, 429, -ECONNREFUSED, -ECONNRESET, -ETIMEDOUT, -EPIPE, RC_EPARSE};
    for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
        ASSERT_EQ(rc_delivery_classify(retry[i]), RC_DELIVERY_RETRY);
    int fail[] = {0,   100, 101, 199, 300, 301, 302, 304, 307, 399, 400, 401, 403, 405,
                  406, 407, 410, 411, 413, 415, 422, 428, 430, 431, 451, 499, 600, 999};
    for (size_t i = 0; i < sizeof(fail) / sizeof(fail[0]); i++) {
        if (rc_delivery_classify(fail[i]) != RC_DELIVERY_FAIL)
            RC_TEST_FAIL("status %d should fail at once", fail[i]);
    }
    rc_delivery_t d;
    rc_delivery_init(&d);
    ASSERT(rc_delivery_may_retry(&d, 0));
    ASSERT(rc_delivery_may_retry(&d, 9));
    ASSERT(!rc_delivery_may_retry(&d, 10));
    d.retry = 0;
    ASSERT(!rc_delivery_may_retry(&d, 0));
}

static void test_backoff(void)
{
    rc_delivery_t d;
    rc_delivery_init(&d); /* exponential, 200 ms, cap 60 s */
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 0), 200 * MS);
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 1), 400 * MS);
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 2), 800 * MS);
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 8), 51200 * MS);
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 9), 60 * S); /* 102.4 s capped */
    uint32_t big[] = {31, 32, 33, 62, 63, 64, 65, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
        ASSERT_EQ(rc_delivery_backoff_ns(&d, big[i]), 60 * S);
    /* Without a meaningful cap, huge exponents saturate instead of wrapping. */
    d.backoff_max_ns = INT64_MAX;
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 30), 200 * MS * (INT64_C(1) << 30));
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 40), INT64_MAX);
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 60), INT64_MAX);
    ASSERT_EQ(rc_delivery_backoff_ns(&d, UINT32_MAX), INT64_MAX);
    d.backoff_delay_ns = 1;
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 62), INT64_C(1) << 62);
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 63), INT64_MAX);
    d.backoff_delay_ns = 0;
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 100), 0);

    rc_delivery_init(&d);
    d.backoff_policy = RC_BACKOFF_LINEAR;
    d.backoff_delay_ns = 500 * MS;
    d.backoff_max_ns = 2 * S;
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 0), 500 * MS);
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 1), 1000 * MS);
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 2), 1500 * MS);
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 3), 2 * S);
    ASSERT_EQ(rc_delivery_backoff_ns(&d, UINT32_MAX), 2 * S);
    d.backoff_max_ns = INT64_MAX;
    ASSERT_EQ(rc_delivery_backoff_ns(&d, UINT32_MAX), 500 * MS * ((int64_t)UINT32_MAX + 1));
    d.backoff_delay_ns = INT64_MAX / 2;
    ASSERT_EQ(rc_delivery_backoff_ns(&d, 2), INT64_MAX);

    /* Retry-After: max(backoff, min(retry_after, retryAfterMax)), only for 429 and 503. */
    rc_delivery_init(&d);
    ASSERT_EQ(rc_delivery_wait_ns(&d, 0, 429, 5 * S), 5 * S);
    ASSERT_EQ(rc_delivery_wait_ns(&d, 0, 503, 5 * S), 5 * S);
    ASSERT_EQ(rc_delivery_wait_ns(&d, 0, 429, 0), 200 * MS);
    ASSERT_EQ(rc_delivery_wait_ns(&d, 0, 429, -1), 200 * MS);
    ASSERT_EQ(rc_delivery_wait_ns(&d, 0, 500, 5 * S), 200 * MS);
    ASSERT_EQ(rc_delivery_wait_ns(&d, 0, -ECONNRESET, 5 * S), 200 * MS);
    ASSERT_EQ(rc_delivery_wait_ns(&d, 0, 429, 3600 * S), 60 * S); /* capped by retryAfterMax */
    ASSERT_EQ(rc_delivery_wait_ns(&d, 0, 429, INT64_MAX), 60 * S);
    ASSERT_EQ(rc_delivery_wait_ns(&d, 5, 429, 1 * S), 6400 * MS); /* backoff is larger */
    d.retry_after_max_ns = 0;                                     /* PT0S disables Retry-After */
    ASSERT_EQ(rc_delivery_wait_ns(&d, 0, 429, 30 * S), 200 * MS);
    d.retry_after_max_ns = 10 * S;
    ASSERT_EQ(rc_delivery_wait_ns(&d, 0, 429, 30 * S), 10 * S);
}

static void ra_ok(const char *v, int64_t now_ns, int64_t want)
{
    int64_t got = -7;
    if (rc_retry_after_parse(v, strlen(v), now_ns, &got) != 0)
        RC_TEST_FAIL("Retry-After \"%s\" rejected", v);
    if (got != want)
        RC_TEST_FAIL("Retry-After \"%s\": %lld vs %lld", v, (long long)got, (long long)want);
}

static void ra_bad(const char *v)
{
    int64_t got = -7;
    if (rc_retry_after_parse(v, strlen(v), 0, &got) != RC_EPARSE)
        RC_TEST_FAIL("Retry-After \"%s\" accepted (%lld)", v, (long long)got);
    ASSERT_EQ(got, -7);
}

static void test_retry_after(void)
{
    /* 784111777 = Sun, 06 Nov 1994 08:49:37 GMT */
    const int64_t t = INT64_C(784111777);
    ra_ok("0", 0, 0);
    ra_ok("120", 0, 120 * S);
    ra_ok("  7 ", 0, 7 * S);
    ra_ok("007", 0, 7 * S);
    ra_ok("99999999999999999999999999", 0, INT64_MAX);
    ra_ok("9223372036", 0, INT64_MAX); /* beyond int64 ns: saturates */
    ra_ok("9223372035", 0, 9223372035 * S);
    ra_ok("Sun, 06 Nov 1994 08:49:37 GMT", (t - 10) * S, 10 * S);
    ra_ok("Sun, 06 Nov 1994 08:49:37 GMT", (t - 10) * S + 250 * MS, 9750 * MS);
    ra_ok("Sun, 06 Nov 1994 08:49:37 GMT", t * S, 0);
    ra_ok("Sun, 06 Nov 1994 08:49:37 GMT", (t + 1000) * S, 0); /* past: no wait */
    ra_ok("Sunday, 06-Nov-94 08:49:37 GMT", (t - 3) * S, 3 * S);
    ra_ok("Sun Nov  6 08:49:37 1994", (t - 60) * S, 60 * S);
    ra_ok("Sun Nov 16 08:49:37 1994", (t - 60) * S, (60 + 10 * 86400) * S);
    ra_ok("Thu, 01 Jan 1970 00:00:00 GMT", 0, 0);
    ra_ok("Wed, 29 Feb 2024 00:00:00 GMT", INT64_C(1709164800) * S - S, S);
    /* RFC 850 two-digit years: more than 50 years ahead means the previous century. */
    ra_ok("Friday, 01-Jan-27 00:00:00 GMT", INT64_C(1798761600) * S - 5 * S, 5 * S);
    ra_ok("Saturday, 01-Jan-00 00:00:00 GMT", INT64_C(946684800) * S - 2 * S, 2 * S);
    ra_ok("Sun, 06 Nov 9999 08:49:37 GMT", 0, INT64_MAX);

    ra_bad("");
    ra_bad("   ");
    ra_bad("-5");
    ra_bad("1.5");
    ra_bad("5s");
    ra_bad("tomorrow");
    ra_bad("Sun, 06 Nov 1994 08:49:37 UTC");
    ra_bad("Sun, 06 Nov 1994 08:49:37");
    ra_bad("Sun, 6 Nov 1994 08:49:37 GMT");
    ra_bad("sun, 06 Nov 1994 08:49:37 GMT");
    ra_bad("Sun, 06 Foo 1994 08:49:37 GMT");
    ra_bad("Sun, 32 Jan 1994 08:49:37 GMT");
    ra_bad("Sun, 29 Feb 2023 08:49:37 GMT");
    ra_bad("Sun, 06 Nov 1994 24:00:00 GMT");
    ra_bad("Sun, 06 Nov 1994 08:60:00 GMT");
    ra_bad("Sun, 06 Nov 1994 08:49:37 GMT extra");
    ra_bad("Sun Nov 6 08:49:37 1994");
    ra_bad("Sunday, 06-Nov-1994 08:49:37 GMT");
    int64_t got;
    ASSERT_EQ(rc_retry_after_parse(NULL, 0, 0, &got), RC_EPARSE);
    /* Length is honoured. */
    ASSERT_EQ(rc_retry_after_parse("12abc", 2, 0, &got), 0);
    ASSERT_EQ(got, 12 * S);
}

static void test_dead_letter(void)
{
    ASSERT_EQ(rc_dead_letter_code(500), 500);
    ASSERT_EQ(rc_dead_letter_code(400), 400);
    ASSERT_EQ(rc_dead_letter_code(302), 302);
    ASSERT_EQ(rc_dead_letter_code(-ECONNREFUSED), 500);
    ASSERT_EQ(rc_dead_letter_code(-ETIMEDOUT), 500);

    char out[RC_DEAD_LETTER_DATA_MAX + 1];
    ASSERT_EQ(rc_dead_letter_data("", 0, out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "");
    ASSERT_EQ(rc_dead_letter_data("f", 1, out, sizeof(out)), 4);
    ASSERT_STR_EQ(out, "Zg==");
    ASSERT_EQ(rc_dead_letter_data("fo", 2, out, sizeof(out)), 4);
    ASSERT_STR_EQ(out, "Zm8=");
    ASSERT_EQ(rc_dead_letter_data("foo", 3, out, sizeof(out)), 4);
    ASSERT_STR_EQ(out, "Zm9v");
    ASSERT_EQ(rc_dead_letter_data("foobar", 6, out, sizeof(out)), 8);
    ASSERT_STR_EQ(out, "Zm9vYmFy");
    const unsigned char bin[] = {0x00, 0xff, 0xfe, 0x80};
    ASSERT_EQ(rc_dead_letter_data(bin, sizeof(bin), out, sizeof(out)), 8);
    ASSERT_STR_EQ(out, "AP/+gA==");

    /* Bodies larger than 768 bytes are cut so the encoding is at most 1024 characters. */
    static char body[5000];
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)('a' + i % 26);
    size_t sizes[] = {766, 767, 768, 769, 770, 1000, 5000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = rc_dead_letter_data(body, sizes[k], out, sizeof(out));
        ASSERT_EQ(n, strlen(out));
        ASSERT_LE(n, RC_DEAD_LETTER_DATA_MAX);
        ASSERT_EQ(n % 4, 0);
        ASSERT_EQ(n, sizes[k] >= 768 ? 1024 : ((sizes[k] + 2) / 3) * 4);
    }
    /* A small buffer holds whole groups only, NUL-terminated. */
    char small[10];
    ASSERT_EQ(rc_dead_letter_data("foobarbaz", 9, small, sizeof(small)), 8);
    ASSERT_STR_EQ(small, "Zm9vYmFy");
    ASSERT_EQ(rc_dead_letter_data("foo", 3, small, 1), 0);
    ASSERT_STR_EQ(small, "");
    ASSERT_EQ(rc_dead_letter_data("foo", 3, small, 0), 0);
}

/* The status of an app's answer as the Dapr sidecar reads it (Go's encoding/json). */
static void st_is(const char *body, rc_dapr_status_t want)
{
    rc_dapr_status_t got = rc_dapr_app_status(body, strlen(body), false);
    if (got != want)
        RC_TEST_FAIL("status of '%s': %d, want %d", body, (int)got, (int)want);
}

static void test_dapr_status(void)
{
    /* What the SDKs send. */
    st_is("{\"status\":\"SUCCESS\"}", RC_DAPR_STATUS_SUCCESS);
    st_is("{\"status\":\"RETRY\"}", RC_DAPR_STATUS_RETRY);
    st_is("{\"status\":\"DROP\"}", RC_DAPR_STATUS_DROP);
    st_is(" \r\n\t{ \"status\" : \"DROP\" } ", RC_DAPR_STATUS_DROP);
    /* Nothing to read: success. */
    st_is("", RC_DAPR_STATUS_NONE);
    st_is("   ", RC_DAPR_STATUS_NONE);
    st_is("OK", RC_DAPR_STATUS_NONE);
    st_is("<html>RETRY</html>", RC_DAPR_STATUS_NONE);
    st_is("{}", RC_DAPR_STATUS_NONE);
    st_is("null", RC_DAPR_STATUS_NONE);
    st_is("[{\"status\":\"RETRY\"}]", RC_DAPR_STATUS_NONE);
    st_is("\"RETRY\"", RC_DAPR_STATUS_NONE);
    st_is("{\"state\":\"RETRY\",\"n\":[1,2,{\"status\":\"DROP\"}]}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"\"}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":null}", RC_DAPR_STATUS_NONE);
    /* Values are compared exactly (Dapr does not upper-case them): anything else retries. */
    st_is("{\"status\":\"success\"}", RC_DAPR_STATUS_UNKNOWN);
    st_is("{\"status\":\"retry\"}", RC_DAPR_STATUS_UNKNOWN);
    st_is("{\"status\":\"SUCCESS \"}", RC_DAPR_STATUS_UNKNOWN);
    st_is("{\"status\":\"OK\"}", RC_DAPR_STATUS_UNKNOWN);
    st_is("{\"status\":\"SUCCESSSUCCESSSUCCESS\"}", RC_DAPR_STATUS_UNKNOWN);
    st_is("{\"status\":\"\\u0052ETRY\"}", RC_DAPR_STATUS_RETRY);
    st_is("{\"status\":\"DR\\u004fP\"}", RC_DAPR_STATUS_DROP);
    st_is("{\"status\":\"\\u00c9\"}", RC_DAPR_STATUS_UNKNOWN);
    /* Names match as Go matches field names: case folded, U+017F as s. */
    st_is("{\"Status\":\"RETRY\"}", RC_DAPR_STATUS_RETRY);
    st_is("{\"STATUS\":\"DROP\"}", RC_DAPR_STATUS_DROP);
    st_is("{\"\\u0073tatus\":\"RETRY\"}", RC_DAPR_STATUS_RETRY);
    st_is("{\"\xc5\xbftatu\xc5\xbf\":\"RETRY\"}", RC_DAPR_STATUS_RETRY);
    st_is("{\"\\u017ftatus\":\"RETRY\"}", RC_DAPR_STATUS_RETRY);
    st_is("{\"statuses\":\"RETRY\"}", RC_DAPR_STATUS_NONE);
    st_is("{\"statu\":\"RETRY\"}", RC_DAPR_STATUS_NONE);
    st_is("{\"stat\\u0000us\":\"RETRY\"}", RC_DAPR_STATUS_NONE);
    /* The last one wins, "" and null included as Go decodes them. */
    st_is("{\"status\":\"RETRY\",\"status\":\"SUCCESS\"}", RC_DAPR_STATUS_SUCCESS);
    st_is("{\"status\":\"RETRY\",\"status\":\"\"}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY\",\"status\":null}", RC_DAPR_STATUS_RETRY);
    st_is("{\"status\":\"DROP\",\"x\":{\"status\":\"RETRY\"},\"y\":[\"a\",{}]}",
          RC_DAPR_STATUS_DROP);
    /* Only the first value is read: what follows it does not count. */
    st_is("{\"status\":\"RETRY\"} trailing garbage {", RC_DAPR_STATUS_RETRY);
    st_is("{\"status\":\"RETRY\"}{\"status\":\"DROP\"}", RC_DAPR_STATUS_RETRY);
    /* Lying apps: a status that is not a string fails Go's decoding, which Dapr takes for
     * success, whatever else the object says. */
    st_is("{\"status\":1}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":true}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":[\"RETRY\"]}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":{\"v\":\"RETRY\"}}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY\",\"status\":2}", RC_DAPR_STATUS_NONE);
    /* Syntax errors anywhere in the object: success too. */
    st_is("{\"status\":\"SUCCESS\"", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY\"", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY\",}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY\" \"x\":1}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY\",\"x\":01}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY\",\"x\":-}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY\",\"x\":1.}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY\",\"x\":1e}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY\",\"x\":tru}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY\",\"x\":nul,\"y\":1}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY\",\"x\":[1,2}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY\",\"x\":{\"a\"}}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY\",\"x\":\"\\q\"}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RETRY\",\"x\":\"\\u12G4\"}", RC_DAPR_STATUS_NONE);
    st_is("{\"status\":\"RE\tTRY\"}", RC_DAPR_STATUS_NONE);
    st_is("{status:\"RETRY\"}", RC_DAPR_STATUS_NONE);
    st_is("{'status':'RETRY'}", RC_DAPR_STATUS_NONE);
    /* Valid numbers and nesting are skipped. */
    st_is("{\"a\":-0.5e+10,\"b\":[true,false,null,0,1E3,\"\\\"\"],\"status\":\"DROP\"}",
          RC_DAPR_STATUS_DROP);
    /* A NUL byte is a control character inside a string, and ends nothing outside one. */
    ASSERT_EQ(rc_dapr_app_status("{\"status\":\"RETRY\"}\0x", 20, false), RC_DAPR_STATUS_RETRY);
    ASSERT_EQ(rc_dapr_app_status("{\"status\":\"RE\0TRY\"}", 19, false), RC_DAPR_STATUS_NONE);
    ASSERT_EQ(rc_dapr_app_status(NULL, 0, false), RC_DAPR_STATUS_NONE);
}

static void test_dapr_hostile(void)
{
    /* Deep nesting: up to Go's limit it is skipped, past it the decode fails (success). */
    size_t depth = 20000;
    char *b = malloc(2 * depth + 64);
    ASSERT(b != NULL);
    size_t n = (size_t)sprintf(b, "{\"status\":\"RETRY\",\"x\":");
    for (size_t i = 0; i < 9990; i++)
        b[n++] = '[';
    for (size_t i = 0; i < 9990; i++)
        b[n++] = ']';
    b[n++] = '}';
    ASSERT_EQ(rc_dapr_app_status(b, n, false), RC_DAPR_STATUS_RETRY);
    n = (size_t)sprintf(b, "{\"status\":\"RETRY\",\"x\":");
    for (size_t i = 0; i < depth; i++)
        b[n++] = '[';
    size_t open_end = n;
    for (size_t i = 0; i < depth; i++)
        b[n++] = ']';
    b[n++] = '}';
    ASSERT_EQ(rc_dapr_app_status(b, n, false), RC_DAPR_STATUS_NONE);
    ASSERT_EQ(rc_dapr_app_status(b, open_end, true), RC_DAPR_STATUS_NONE);
    free(b);

    /* A huge body, cut by the HTTP client: the status seen in a prefix that is valid so far
     * counts (the sidecar would have read it all); a prefix already broken does not. */
    size_t big = 2u << 20;
    b = malloc(big + 64);
    ASSERT(b != NULL);
    n = (size_t)sprintf(b, "{\"status\":\"RETRY\",\"pad\":\"");
    memset(b + n, 'x', big - n);
    ASSERT_EQ(rc_dapr_app_status(b, big, true), RC_DAPR_STATUS_RETRY);
    ASSERT_EQ(rc_dapr_app_status(b, big, false), RC_DAPR_STATUS_NONE);
    n = (size_t)sprintf(b, "{\"pad\":[");
    for (; n + 2 < big; n += 2)
        memcpy(b + n, "1,", 2);
    ASSERT_EQ(rc_dapr_app_status(b, n, true), RC_DAPR_STATUS_NONE);
    memcpy(b, "{\"status\":\"DROP\",\"p\":[", 22);
    ASSERT_EQ(rc_dapr_app_status(b, n, true), RC_DAPR_STATUS_DROP);
    memcpy(b, "{\"status\":\"DROP\",\"p\":[1,,", 25);
    ASSERT_EQ(rc_dapr_app_status(b, n, true), RC_DAPR_STATUS_NONE);
    free(b);
    /* Cut inside an escape, a literal or a number: still valid so far. */
    const char *cut_ok[] = {"{\"status\":\"DROP\",\"x\":\"\\u00", "{\"status\":\"DROP\",\"x\":fa",
                            "{\"status\":\"DROP\",\"x\":12",      "{\"status\":\"DROP\",\"x\":-",
                            "{\"status\":\"DROP\",\"x\":{\"k\"",  "{\"status\":\"DROP\","};
    for (size_t i = 0; i < sizeof(cut_ok) / sizeof(cut_ok[0]); i++)
        ASSERT_EQ(rc_dapr_app_status(cut_ok[i], strlen(cut_ok[i]), true), RC_DAPR_STATUS_DROP);
    const char *cut_none[] = {"{\"status\":\"DR", "{\"status\":1", "{\"status\":\"DROP\",\"x\":fx"};
    for (size_t i = 0; i < sizeof(cut_none) / sizeof(cut_none[0]); i++)
        ASSERT_EQ(rc_dapr_app_status(cut_none[i], strlen(cut_none[i]), true), RC_DAPR_STATUS_NONE);

    /* Random bytes never crash nor read past the length (ASan, valgrind). */
    unsigned seed = 12345;
    char r[64];
    for (int k = 0; k < 200000; k++) {
        size_t len = (size_t)(k % 64);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            r[i] = "{}[]\",:\\ \tsStatu0123456789-+.eERTYDOPnul"[(seed >> 16) % 40];
        }
        char *h = malloc(len ? len : 1);
        ASSERT(h != NULL);
        memcpy(h, r, len);
        rc_dapr_status_t st = rc_dapr_app_status(h, len, k % 2);
        ASSERT(st <= RC_DAPR_STATUS_UNKNOWN);
        free(h);
    }
}

static void test_dapr_classify(void)
{
    const char *retry = "{\"status\":\"RETRY\"}", *drop = "{\"status\":\"DROP\"}";
    ASSERT_EQ(rc_dapr_classify(200, "", 0, false), RC_DAPR_SUCCESS);
    ASSERT_EQ(rc_dapr_classify(204, NULL, 0, false), RC_DAPR_SUCCESS);
    ASSERT_EQ(rc_dapr_classify(202, "accepted", 8, false), RC_DAPR_SUCCESS);
    ASSERT_EQ(rc_dapr_classify(200, "{\"status\":\"SUCCESS\"}", 20, false), RC_DAPR_SUCCESS);
    ASSERT_EQ(rc_dapr_classify(299, retry, strlen(retry), false), RC_DAPR_RETRY);
    ASSERT_EQ(rc_dapr_classify(200, "{\"status\":\"later\"}", 18, false), RC_DAPR_RETRY);
    ASSERT_EQ(rc_dapr_classify(201, drop, strlen(drop), false), RC_DAPR_DROP);
    /* 404 drops whatever the body says; other statuses retry whatever it says. */
    ASSERT_EQ(rc_dapr_classify(404, retry, strlen(retry), false), RC_DAPR_NOT_FOUND);
    ASSERT_EQ(rc_dapr_classify(404, NULL, 0, false), RC_DAPR_NOT_FOUND);
    int retried[] = {100, 199, 300, 301, 304, 400, 401, 403, 405, 408,
                     409, 410, 413, 429, 500, 502, 503, 504, 999};
    for (size_t i = 0; i < sizeof(retried) / sizeof(retried[0]); i++)
        ASSERT_EQ(rc_dapr_classify(retried[i], drop, strlen(drop), false), RC_DAPR_RETRY);
    /* Transport errors and timeouts. */
    int errs[] = {-ECONNREFUSED, -ECONNRESET, -ETIMEDOUT, -EPIPE, -EHOSTUNREACH, -ENOMEM};
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
        ASSERT_EQ(rc_dapr_classify(errs[i], NULL, 0, false), RC_DAPR_RETRY);
    ASSERT_STR_EQ(rc_dapr_outcome_name(RC_DAPR_NOT_FOUND), "not_found");
    ASSERT_STR_EQ(rc_dapr_outcome_name(RC_DAPR_DROP), "drop");
    ASSERT_STR_EQ(rc_dapr_outcome_name((rc_dapr_outcome_t)9), "unknown");
}

int main(void)
{
    test_model();
    test_from_config();
    test_classify();
    test_backoff();
    test_retry_after();
    test_dead_letter();
    test_dapr_status();
    test_dapr_hostile();
    test_dapr_classify();
    return 0;
}
