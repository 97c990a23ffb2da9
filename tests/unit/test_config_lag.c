/* Unit test of the lag settings of core/config: spec.lag and spec.watchdogTimeout of
 * RingcastConfig, the Trigger annotations ringcast.dev/lag-limit and ringcast.dev/lag-policy,
 * how a trigger's limit is resolved, and every error with its exact message (file and line). */
#include <errno.h>
#include <stdio.h>

#include "core/config.h"
#include "core/errors.h"
#include "tests/test.h"

static char err[RC_CONFIG_ERR_MAX];

static const char settings[] = "apiVersion: ringcast.dev/v1alpha1\n"
                               "kind: RingcastConfig\n"
                               "spec:\n";

static const char broker[] = "---\n"
                             "apiVersion: eventing.knative.dev/v1\n"
                             "kind: Broker\n"
                             "metadata: {name: default}\n";

/* A Trigger with the given annotation lines ("    key: value\n"), or none. */
static void trigger(char *out, size_t cap, const char *name, const char *annotations)
{
    snprintf(out, cap,
             "---\n"
             "apiVersion: eventing.knative.dev/v1\n"
             "kind: Trigger\n"
             "metadata:\n"
             "  name: %s\n"
             "%s%s"
             "spec:\n"
             "  broker: default\n"
             "  subscriber: {uri: \"http://127.0.0.1:9/\"}\n",
             name, annotations[0] ? "  annotations:\n" : "", annotations);
}

static void load(rc_config_t *c, const char *yaml)
{
    int rc = rc_config_load_string(c, "t.yaml", yaml, strlen(yaml), err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("config rejected (%d): %s\n%s", rc, err, yaml);
}

static void expect_error(const char *yaml, const char *message)
{
    rc_config_t c;
    int rc = rc_config_load_string(&c, "t.yaml", yaml, strlen(yaml), err, sizeof(err));
    if (rc == 0)
        RC_TEST_FAIL("config was accepted, expected error \"%s\":\n%s", message, yaml);
    ASSERT_EQ(rc, RC_ECONFIG);
    ASSERT_STR_EQ(err, message);
    rc_config_close(&c);
}

static void test_parse_limit(void)
{
    uint32_t pm;
    uint64_t b;
    ASSERT_EQ(rc_config_parse_lag_limit("50%", &pm, &b), 0);
    ASSERT_EQ(pm, 500);
    ASSERT_U64_EQ(b, 0);
    ASSERT_EQ(rc_config_parse_lag_limit("12.5%", &pm, &b), 0);
    ASSERT_EQ(pm, 125);
    ASSERT_EQ(rc_config_parse_lag_limit("0.1%", &pm, &b), 0);
    ASSERT_EQ(pm, 1);
    ASSERT_EQ(rc_config_parse_lag_limit("100%", &pm, &b), 0);
    ASSERT_EQ(pm, 1000);
    ASSERT_EQ(rc_config_parse_lag_limit("8Mi", &pm, &b), 0);
    ASSERT_EQ(pm, 0);
    ASSERT_U64_EQ(b, 8u << 20);
    ASSERT_EQ(rc_config_parse_lag_limit("65536", &pm, &b), 0);
    ASSERT_U64_EQ(b, 65536);
    const char *bad[] = {"",    "%",   "0%",  "0.0%",  "100.1%", "101%", "1000000000000%",
                         "-5%", "5.%", ".5%", "5.25%", "5 %",    "5%%",  "x%",
                         "0",   "8Xi", "-1",  "1e3%",  "50%x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (rc_config_parse_lag_limit(bad[i], &pm, &b) != -EINVAL)
            RC_TEST_FAIL("'%s' was accepted as a lag limit", bad[i]);
    }
}

static void test_defaults(void)
{
    rc_config_t c;
    ASSERT_EQ(rc_config_init_default(&c), 0);
    ASSERT_EQ(c.watchdog_ms, RC_CONFIG_WATCHDOG_DEFAULT_MS);
    ASSERT_EQ(c.lag.permille, 500);
    ASSERT_EQ(c.lag.policy, RC_LAG_DEAD_LETTER);
    uint64_t bytes = 0;
    ASSERT_EQ(rc_config_lag_limit(&c, NULL, &bytes), RC_LAG_DEAD_LETTER);
    ASSERT_U64_EQ(bytes, c.ring_bytes / 2);
    rc_config_close(&c);
}

static void test_settings_and_annotations(void)
{
    char yaml[4096], t1[512], t2[512], t3[512], t4[512];
    trigger(t1, sizeof(t1), "plain", "");
    trigger(t2, sizeof(t2), "own",
            "    ringcast.dev/lag-limit: \"25%\"\n"
            "    ringcast.dev/lag-policy: dead-letter\n");
    trigger(t3, sizeof(t3), "bytes", "    ringcast.dev/lag-limit: 128Ki\n");
    trigger(t4, sizeof(t4), "blocks",
            "    ringcast.dev/lag-policy: block\n"
            "    other.example/x: \"y\"\n");
    snprintf(yaml, sizeof(yaml),
             "%s  watchdogTimeout: 2s\n  ring: {size: 1Mi}\n  lag:\n    limit: 12.5%%\n"
             "    policy: block\n  limits: {maxEventBytes: 128Ki, maxBatchBytes: 256Ki, "
             "maxBatchEvents: 50}\n%s%s%s%s%s",
             settings, broker, t1, t2, t3, t4);
    rc_config_t c;
    load(&c, yaml);
    ASSERT_EQ(c.watchdog_ms, 2000);
    ASSERT_EQ(c.lag.permille, 125);
    ASSERT_EQ(c.lag.policy, RC_LAG_BLOCK);
    ASSERT_EQ(c.lag.line, 7);
    uint64_t b = 0;
    /* Groups and triggers without annotations follow spec.lag. */
    ASSERT_EQ(rc_config_lag_limit(&c, NULL, &b), RC_LAG_BLOCK);
    ASSERT_U64_EQ(b, (1u << 20) / 8);
    const rc_config_trigger_t *t = rc_config_find_trigger(&c, "default", "plain");
    ASSERT_EQ(rc_config_lag_limit(&c, t, &b), RC_LAG_BLOCK);
    ASSERT_U64_EQ(b, (1u << 20) / 8);
    t = rc_config_find_trigger(&c, "default", "own");
    ASSERT_EQ(t->lag.permille, 250);
    ASSERT_EQ(rc_config_lag_limit(&c, t, &b), RC_LAG_DEAD_LETTER);
    ASSERT_U64_EQ(b, (1u << 20) / 4);
    /* A limit without a policy takes spec.lag's policy, and the other way round. */
    t = rc_config_find_trigger(&c, "default", "bytes");
    ASSERT_EQ(rc_config_lag_limit(&c, t, &b), RC_LAG_BLOCK);
    ASSERT_U64_EQ(b, 128 * 1024);
    t = rc_config_find_trigger(&c, "default", "blocks");
    ASSERT_EQ(rc_config_lag_limit(&c, t, &b), RC_LAG_BLOCK);
    ASSERT_U64_EQ(b, (1u << 20) / 8);
    rc_config_close(&c);

    /* A limit in bytes is checked against a ring size that comes after it. */
    snprintf(yaml, sizeof(yaml),
             "%s  lag: {limit: 4Mi}\n  ring: {size: 4Mi}\n  limits: "
             "{maxEventBytes: 512Ki, maxBatchBytes: 1Mi, maxBatchEvents: 100}\n%s",
             settings, broker);
    load(&c, yaml);
    ASSERT_EQ(rc_config_lag_limit(&c, NULL, &b), RC_LAG_DEAD_LETTER);
    ASSERT_U64_EQ(b, 4u << 20);
    rc_config_close(&c);
}

static void test_errors(void)
{
    char yaml[4096], t[512];
    snprintf(yaml, sizeof(yaml), "%s  lag: {limit: half}\n", settings);
    expect_error(yaml, "t.yaml:4: 'spec.lag.limit' must be a percentage of the ring such as 50% "
                       "(0.1% to 100%) or a size such as 8Mi, not 'half'");
    snprintf(yaml, sizeof(yaml), "%s  lag:\n    limit: 150%%\n", settings);
    expect_error(yaml, "t.yaml:5: 'spec.lag.limit' must be a percentage of the ring such as 50% "
                       "(0.1% to 100%) or a size such as 8Mi, not '150%'");
    snprintf(yaml, sizeof(yaml), "%s  lag: {policy: drop}\n", settings);
    expect_error(yaml, "t.yaml:4: 'spec.lag.policy' must be dead-letter or block, not 'drop'");
    snprintf(yaml, sizeof(yaml), "%s  lag: {limt: 5%%}\n", settings);
    expect_error(yaml, "t.yaml:4: unknown field 'spec.lag.limt'");
    snprintf(yaml, sizeof(yaml), "%s  lag: 50%%\n", settings);
    expect_error(yaml, "t.yaml:4: spec.lag must be a mapping");
    snprintf(yaml, sizeof(yaml), "%s  lag:\n    limit: 32Mi\n", settings);
    expect_error(yaml, "t.yaml:5: 'spec.lag.limit' is 33554432 bytes; it must be from 65536 bytes "
                       "to the ring's size ('spec.ring.size', 16777216 bytes), or a percentage");
    snprintf(yaml, sizeof(yaml), "%s  lag:\n    limit: 4Ki\n", settings);
    expect_error(yaml, "t.yaml:5: 'spec.lag.limit' is 4096 bytes; it must be from 65536 bytes "
                       "to the ring's size ('spec.ring.size', 16777216 bytes), or a percentage");
    snprintf(yaml, sizeof(yaml), "%s  watchdogTimeout: 100ms\n", settings);
    expect_error(yaml, "t.yaml:4: 'spec.watchdogTimeout' must be at least 500ms, not 100ms");
    snprintf(yaml, sizeof(yaml), "%s  watchdogTimeout: soon\n", settings);
    expect_error(yaml, "t.yaml:4: 'spec.watchdogTimeout' must be a duration from 1ms to 24h such "
                       "as 500ms, 10s or 2m, not 'soon'");

    trigger(t, sizeof(t), "t", "    ringcast.dev/lag-limit: \"0%\"\n");
    snprintf(yaml, sizeof(yaml), "%s%s", broker + 4, t);
    expect_error(yaml,
                 "t.yaml:10: Trigger default/t: 'metadata.annotations.ringcast.dev/lag-limit' "
                 "must be a percentage of the ring such as 50% (0.1% to 100%) or a size "
                 "such as 8Mi, not '0%'");
    trigger(t, sizeof(t), "t", "    ringcast.dev/lag-policy: drop-oldest\n");
    snprintf(yaml, sizeof(yaml), "%s%s", broker + 4, t);
    expect_error(yaml, "t.yaml:10: Trigger default/t: "
                       "'metadata.annotations.ringcast.dev/lag-policy' must be dead-letter or "
                       "block, not 'drop-oldest'");
    /* Checked against the ring once every document is in, at the annotation's line. */
    trigger(t, sizeof(t), "t", "    ringcast.dev/lag-limit: 2Mi\n");
    snprintf(yaml, sizeof(yaml),
             "%s%s---\n%s  ring: {size: 1Mi}\n  limits: {maxEventBytes: "
             "128Ki, maxBatchBytes: 256Ki, maxBatchEvents: 50}\n",
             broker + 4, t, settings);
    expect_error(yaml, "t.yaml:10: Trigger default/t: "
                       "'metadata.annotations.ringcast.dev/lag-limit' is 2097152 bytes; it must "
                       "be from 65536 bytes to the ring's size ('spec.ring.size', 1048576 bytes), "
                       "or a percentage");
}

int main(void)
{
    test_parse_limit();
    test_defaults();
    test_settings_and_annotations();
    test_errors();
    printf("test_config_lag: ok\n");
    return 0;
}
