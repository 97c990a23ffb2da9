#include "core/duration.h"
#include "core/errors.h"
#include "tests/test.h"

#include <errno.h>

static int64_t parse_ok(const char *s)
{
    int64_t ns = -1;
    char err[256] = "";
    int rc = rc_duration_parse(s, strlen(s), &ns, err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("\"%s\" rejected: %s", s, err);
    return ns;
}

/* Checks that `s` is rejected and that the message contains `needle`. */
static void parse_bad(const char *s, const char *needle)
{
    int64_t ns = 12345;
    char err[256] = "";
    int rc = rc_duration_parse(s, strlen(s), &ns, err, sizeof(err));
    if (rc != RC_EPARSE)
        RC_TEST_FAIL("\"%s\" accepted (%lld ns), expected rejection", s, (long long)ns);
    ASSERT_EQ(ns, 12345);
    if (strstr(err, needle) == NULL)
        RC_TEST_FAIL("\"%s\": message \"%s\" lacks \"%s\"", s, err, needle);
}

static void roundtrip(int64_t ns, const char *want)
{
    char buf[RC_DURATION_STR_MAX];
    int n = rc_duration_format(ns, buf, sizeof(buf));
    ASSERT_GT(n, 0);
    ASSERT_EQ((size_t)n, strlen(buf));
    ASSERT_STR_EQ(buf, want);
    ASSERT_EQ(parse_ok(buf), ns < 0 ? 0 : ns);
}

int main(void)
{
    const int64_t S = RC_NS_PER_SEC;
    ASSERT_EQ(parse_ok("PT0.2S"), 200 * RC_NS_PER_MS);
    ASSERT_EQ(parse_ok("PT1M30S"), 90 * S);
    ASSERT_EQ(parse_ok("P1D"), 86400 * S);
    ASSERT_EQ(parse_ok("PT0S"), 0);
    ASSERT_EQ(parse_ok("PT60S"), 60 * S);
    ASSERT_EQ(parse_ok("PT30S"), 30 * S);
    ASSERT_EQ(parse_ok("PT1H"), 3600 * S);
    ASSERT_EQ(parse_ok("P2W"), 14 * 86400 * S);
    ASSERT_EQ(parse_ok("P1DT2H3M4.5S"), 86400 * S + 7200 * S + 180 * S + 4 * S + S / 2);
    ASSERT_EQ(parse_ok("PT0,25S"), 250 * RC_NS_PER_MS);
    ASSERT_EQ(parse_ok("PT1.5M"), 90 * S);
    ASSERT_EQ(parse_ok("PT0.000000001S"), 1);
    ASSERT_EQ(parse_ok("PT0.0000000019S"), 1); /* beyond ns precision: truncated */
    ASSERT_EQ(parse_ok("PT100000S"), 100000 * S);
    ASSERT_EQ(parse_ok("PT0000010S"), 10 * S);
    ASSERT_EQ(parse_ok("P0D"), 0);
    /* Largest representable: INT64_MAX ns = 9223372036.854775807 s. */
    ASSERT_EQ(parse_ok("PT9223372036.854775807S"), INT64_MAX);

    parse_bad("", "empty");
    parse_bad("0.2", "must start with 'P'");
    parse_bad("pt1s", "must start with 'P'");
    parse_bad("-PT1S", "signs");
    parse_bad("P", "no components");
    parse_bad("PT", "nothing after 'T'");
    parse_bad("P1Y", "years and months");
    parse_bad("P1M", "years and months");
    parse_bad("PT1", "without a unit");
    parse_bad("PT1X", "unknown time designator 'X'");
    parse_bad("P1H", "unknown date designator 'H'");
    parse_bad("PT1S1M", "out of order");
    parse_bad("PT1S2S", "out of order");
    parse_bad("P1DT1H1D", "unknown time designator 'D'");
    parse_bad("PTT1S", "'T' appears twice");
    parse_bad("PT1.S", "digit must follow");
    parse_bad("PT.5S", "expected a digit");
    parse_bad("PT0.5M1S", "only the last component");
    parse_bad("PT-1S", "expected a digit");
    parse_bad("PT1s", "unknown time designator 's'");
    parse_bad("P1W1D", "weeks (W) cannot be combined");
    parse_bad("P1WT1S", "weeks (W) cannot be combined");
    parse_bad("PT 1S", "expected a digit");
    parse_bad("PT1S ", "expected a digit");
    parse_bad("PT9223372037S", "too large");
    parse_bad("PT99999999999999999999999999S", "too large");
    parse_bad("P999999999999D", "too large");
    parse_bad("PT9223372036.854775808S", "too large");
    parse_bad("P106751D1000000H", "unknown date designator");
    parse_bad("P106751DT23H59M59S", "too large");

    /* Length is honoured: the text need not be NUL-terminated. */
    int64_t ns = 0;
    ASSERT_EQ(rc_duration_parse("PT5Sgarbage", 4, &ns, NULL, 0), 0);
    ASSERT_EQ(ns, 5 * S);
    ASSERT_EQ(rc_duration_parse(NULL, 0, &ns, NULL, 0), RC_EPARSE);

    /* A long value is quoted shortened in the message. */
    char big[300];
    memset(big, '9', sizeof(big));
    big[0] = 'P';
    big[1] = 'T';
    char err[512];
    ASSERT_EQ(rc_duration_parse(big, sizeof(big), &ns, err, sizeof(err)), RC_EPARSE);
    ASSERT(strstr(err, "...") != NULL);
    ASSERT_LT(strlen(err), 300);

    roundtrip(0, "PT0S");
    roundtrip(200 * RC_NS_PER_MS, "PT0.2S");
    roundtrip(90 * S, "PT1M30S");
    roundtrip(86400 * S, "P1D");
    roundtrip(86400 * S + 3600 * S, "P1DT1H");
    roundtrip(3600 * S + 1, "PT1H0.000000001S");
    roundtrip(60 * S, "PT1M");
    roundtrip(INT64_MAX, "P106751DT23H47M16.854775807S");
    roundtrip(-5, "PT0S");

    char tiny[4];
    ASSERT_EQ(rc_duration_format(90 * S, tiny, sizeof(tiny)), -ENOSPC);
    ASSERT_STR_EQ(tiny, "");
    return 0;
}
