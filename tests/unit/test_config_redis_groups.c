/* Unit test of the settings of the triggers' Redis consumer groups in RingcastConfig
 * spec.redis (docs/scaleout.md, "Once per trigger across nodes"): claimIdle and nodeId, their
 * defaults, and every bad value with its exact message (file and line). */
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/errors.h"
#include "tests/test.h"

static char err[RC_CONFIG_ERR_MAX];

/* spec.redis with `fields` (a flow mapping's tail, after the address) on line 4, and a broker
 * that keeps its events in Redis. */
static void doc(char *out, size_t cap, const char *fields)
{
    snprintf(out, cap,
             "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
             "  redis: {addresses: [\"127.0.0.1:6379\"]%s}\n"
             "---\napiVersion: eventing.knative.dev/v1\nkind: Broker\n"
             "metadata:\n  name: a\n  annotations: {ringcast.dev/storage-type: redis}\n",
             fields);
}

static void load(rc_config_t *c, const char *fields)
{
    char y[1024];
    doc(y, sizeof(y), fields);
    int rc = rc_config_load_string(c, "t.yaml", y, strlen(y), err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("config rejected (%d): %s\n%s", rc, err, y);
}

static void expect_error(const char *fields, const char *message)
{
    char y[1024];
    rc_config_t c;
    doc(y, sizeof(y), fields);
    int rc = rc_config_load_string(&c, "t.yaml", y, strlen(y), err, sizeof(err));
    if (rc == 0)
        RC_TEST_FAIL("config was accepted, expected error \"%s\":\n%s", message, y);
    ASSERT_EQ(rc, RC_ECONFIG);
    if (strcmp(err, message) != 0)
        RC_TEST_FAIL("message\n  \"%s\"\nexpected\n  \"%s\"\nfor:\n%s", err, message, y);
}

static void test_defaults_and_values(void)
{
    rc_config_t c;
    load(&c, "");
    ASSERT_EQ(c.redis.claim_idle_ms, 30000);
    ASSERT_STR_EQ(c.redis.node_id, ""); /* serve makes hostname:port of it */
    rc_config_close(&c);
    load(&c, ", claimIdle: 100ms, nodeId: \"node-1.eu_west:8080\"");
    ASSERT_EQ(c.redis.claim_idle_ms, 100);
    ASSERT_STR_EQ(c.redis.node_id, "node-1.eu_west:8080");
    rc_config_close(&c);
    char id[80];
    snprintf(id, sizeof(id), ", nodeId: %.*s", RC_CONFIG_REDIS_NODE_ID_MAX,
             "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");
    load(&c, id);
    ASSERT_EQ(strlen(c.redis.node_id), RC_CONFIG_REDIS_NODE_ID_MAX);
    rc_config_close(&c);
    load(&c, ", claimIdle: 2m");
    ASSERT_EQ(c.redis.claim_idle_ms, 120000);
    rc_config_close(&c);
}

static void test_bad_values(void)
{
    expect_error(", claimIdle: 99ms",
                 "t.yaml:4: 'spec.redis.claimIdle' must be at least 100ms: entries idle that long "
                 "are taken from the node that read them");
    expect_error(", claimIdle: 0s",
                 "t.yaml:4: 'spec.redis.claimIdle' must be a duration from 1ms to 24h such as "
                 "500ms, 10s or 2m, not '0s'");
    expect_error(", nodeId: \"\"", "t.yaml:4: 'spec.redis.nodeId' must be 1 to 64 bytes");
    expect_error(", nodeId: \"a b\"",
                 "t.yaml:4: 'spec.redis.nodeId' may hold letters, digits and . - _ : only, not "
                 "' ' in 'a b'");
    expect_error(", nodeId: \"n/1\"",
                 "t.yaml:4: 'spec.redis.nodeId' may hold letters, digits and . - _ : only, not "
                 "'/' in 'n/1'");
    expect_error(", nodeId: "
                 "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn",
                 "t.yaml:4: 'spec.redis.nodeId' must be 1 to 64 bytes");
}

/* What the duration parser says about claimIdle is its own message: only that it names the
 * field and the line is checked. */
static void test_not_a_duration(void)
{
    char y[1024];
    rc_config_t c;
    doc(y, sizeof(y), ", claimIdle: soon");
    ASSERT_EQ(rc_config_load_string(&c, "t.yaml", y, strlen(y), err, sizeof(err)), RC_ECONFIG);
    if (strncmp(err, "t.yaml:4: ", 10) != 0 || strstr(err, "spec.redis.claimIdle") == NULL)
        RC_TEST_FAIL("message \"%s\"", err);
    doc(y, sizeof(y), ", nodeId: [a]");
    ASSERT_EQ(rc_config_load_string(&c, "t.yaml", y, strlen(y), err, sizeof(err)), RC_ECONFIG);
    if (strncmp(err, "t.yaml:4: ", 10) != 0 || strstr(err, "spec.redis.nodeId") == NULL)
        RC_TEST_FAIL("message \"%s\"", err);
}

int main(void)
{
    test_defaults_and_values();
    test_bad_values();
    test_not_a_duration();
    printf("test_config_redis_groups: ok\n");
    return 0;
}
