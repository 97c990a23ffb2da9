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

int main(void)
{
    test_model();
    test_from_config();
    test_classify();
    test_backoff();
    test_retry_after();
    test_dead_letter();
    return 0;
}
