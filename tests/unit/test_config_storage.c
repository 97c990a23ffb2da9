/* Unit test of the storage settings of core/config: RingcastConfig spec.storage, a Broker's
 * annotations ringcast.dev/storage-*, how each broker's effective storage is resolved, and every
 * bad input with its exact message (file and line). */
#include <errno.h>
#include <stdio.h>

#include "core/config.h"
#include "core/errors.h"
#include "tests/test.h"

static char err[RC_CONFIG_ERR_MAX];

static const char settings[] = "apiVersion: ringcast.dev/v1alpha1\n" /* line 1 */
                               "kind: RingcastConfig\n"
                               "spec:\n"
                               "  storage:\n"; /* line 4; fields from line 5 */

/* A Broker document named `name` with annotation lines ("    key: value\n"), or none. */
static size_t broker(char *out, size_t cap, const char *name, const char *annotations)
{
    return (size_t)snprintf(out, cap,
                            "---\n"
                            "apiVersion: eventing.knative.dev/v1\n"
                            "kind: Broker\n"
                            "metadata:\n"
                            "  name: %s\n"
                            "%s%s",
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
    if (strcmp(err, message) != 0)
        RC_TEST_FAIL("message\n  \"%s\"\nexpected\n  \"%s\"\nfor:\n%s", err, message, yaml);
    ASSERT_EQ(c.broker_count, 0); /* nothing to release after a failed load */
}

/* spec.storage lines (indented by four), then the given Broker documents. */
static void doc(char *out, size_t cap, const char *storage, const char *brokers)
{
    snprintf(out, cap, "%s%s%s", settings, storage, brokers);
}

static void test_defaults(void)
{
    rc_config_t c;
    load(&c, "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: a}\n");
    ASSERT_EQ(c.storage.type, RC_CONFIG_STORAGE_MEMORY);
    ASSERT_EQ(c.brokers[0].storage.type, RC_CONFIG_STORAGE_MEMORY);
    ASSERT_EQ(c.brokers[0].storage.durability, RC_CONFIG_DURABILITY_NONE);
    ASSERT_STR_EQ(c.brokers[0].storage.directory, "");
    rc_config_close(&c);
    ASSERT_EQ(rc_config_init_default(&c), 0);
    ASSERT_EQ(c.brokers[0].storage.type, RC_CONFIG_STORAGE_MEMORY);
    rc_config_close(&c);
    ASSERT_STR_EQ(rc_config_storage_type_name(RC_CONFIG_STORAGE_FILE), "file");
    ASSERT_STR_EQ(rc_config_storage_type_name(RC_CONFIG_STORAGE_MEMORY), "memory");
    ASSERT_STR_EQ(rc_config_durability_name(RC_CONFIG_DURABILITY_NONE), "none");
    ASSERT_STR_EQ(rc_config_durability_name(RC_CONFIG_DURABILITY_SYNC), "sync");
    ASSERT_STR_EQ(rc_config_durability_name(RC_CONFIG_DURABILITY_BATCH), "batch");
}

/* spec.storage applies to every broker, including the default one a file without Broker
 * gets; a Broker's annotations win field by field. */
static void test_resolve(void)
{
    char y[4096], b1[512], b2[512], b3[512];
    rc_config_t c;
    doc(y, sizeof(y), "    type: file\n    directory: /var/lib/ringcast\n    durability: none\n",
        "");
    load(&c, y);
    ASSERT_EQ(c.broker_count, 1);
    ASSERT_EQ(c.brokers[0].storage.type, RC_CONFIG_STORAGE_FILE);
    ASSERT_STR_EQ(c.brokers[0].storage.directory, "/var/lib/ringcast");
    ASSERT_EQ(c.brokers[0].storage.type_line, 5);
    ASSERT_EQ(c.brokers[0].storage.durability_line, 7);
    rc_config_close(&c);

    broker(b1, sizeof(b1), "inherits", "");
    broker(b2, sizeof(b2), "memory", "    ringcast.dev/storage-type: memory\n");
    broker(b3, sizeof(b3), "own",
           "    ringcast.dev/storage-directory: /srv/own\n"
           "    ringcast.dev/storage-durability: none\n"
           "    other.io/anything: kept\n");
    char all[2048];
    snprintf(all, sizeof(all), "%s%s%s", b1, b2, b3);
    doc(y, sizeof(y), "    type: file\n    directory: /var/lib/ringcast\n", all);
    load(&c, y);
    ASSERT_EQ(c.broker_count, 3);
    ASSERT_EQ(c.brokers[0].storage.type, RC_CONFIG_STORAGE_FILE);
    ASSERT_STR_EQ(c.brokers[0].storage.directory, "/var/lib/ringcast");
    ASSERT_EQ(c.brokers[1].storage.type, RC_CONFIG_STORAGE_MEMORY);
    ASSERT_EQ(c.brokers[2].storage.type, RC_CONFIG_STORAGE_FILE);
    ASSERT_STR_EQ(c.brokers[2].storage.directory, "/srv/own");
    rc_config_close(&c);

    /* Memory by default, one broker in files with its own directory. */
    broker(b1, sizeof(b1), "plain", "");
    broker(b2, sizeof(b2), "durable",
           "    ringcast.dev/storage-type: file\n    ringcast.dev/storage-directory: /d\n");
    snprintf(all, sizeof(all), "%s%s", b1, b2);
    load(&c, all + 4); /* without the first "---\n" */
    ASSERT_EQ(c.brokers[0].storage.type, RC_CONFIG_STORAGE_MEMORY);
    ASSERT_EQ(c.brokers[1].storage.type, RC_CONFIG_STORAGE_FILE);
    ASSERT_STR_EQ(c.brokers[1].storage.directory, "/d");
    rc_config_close(&c);

    /* spec.storage's directory serves brokers that choose files, memory being the default. */
    broker(b1, sizeof(b1), "plain", "");
    broker(b2, sizeof(b2), "durable", "    ringcast.dev/storage-type: file\n");
    snprintf(all, sizeof(all), "%s%s", b1, b2);
    doc(y, sizeof(y), "    directory: /var/lib/ringcast\n", all);
    load(&c, y);
    ASSERT_EQ(c.brokers[0].storage.type, RC_CONFIG_STORAGE_MEMORY);
    ASSERT_EQ(c.brokers[1].storage.type, RC_CONFIG_STORAGE_FILE);
    ASSERT_STR_EQ(c.brokers[1].storage.directory, "/var/lib/ringcast");
    rc_config_close(&c);
    /* batch with the default interval, a Broker in sync, a Broker with its own interval. */
    broker(b1, sizeof(b1), "batch", "");
    broker(b2, sizeof(b2), "sync", "    ringcast.dev/storage-durability: sync\n");
    broker(b3, sizeof(b3), "slow", "    ringcast.dev/storage-flush-interval: 250ms\n");
    snprintf(all, sizeof(all), "%s%s%s", b1, b2, b3);
    doc(y, sizeof(y), "    type: file\n    directory: /d\n    durability: batch\n", all);
    load(&c, y);
    ASSERT_EQ(c.brokers[0].storage.durability, RC_CONFIG_DURABILITY_BATCH);
    ASSERT_EQ(c.brokers[0].storage.flush_interval_ms, 10);
    ASSERT_EQ(c.brokers[1].storage.durability, RC_CONFIG_DURABILITY_SYNC);
    ASSERT_EQ(c.brokers[2].storage.durability, RC_CONFIG_DURABILITY_BATCH);
    ASSERT_EQ(c.brokers[2].storage.flush_interval_ms, 250);
    rc_config_close(&c);
    doc(y, sizeof(y),
        "    type: file\n    directory: /d\n    durability: batch\n    flushInterval: 1ms\n", "");
    load(&c, y);
    ASSERT_EQ(c.brokers[0].storage.flush_interval_ms, 1);
    rc_config_close(&c);
}

static void test_bad_settings(void)
{
    char y[4096];
    doc(y, sizeof(y), "    type: disk\n", "");
    expect_error(y, "t.yaml:5: 'spec.storage.type' must be memory, file or redis, not 'disk'");
    doc(y, sizeof(y), "    type: [file]\n", "");
    expect_error(y, "t.yaml:5: 'spec.storage.type' must be a string");
    doc(y, sizeof(y), "    type: file\n    directory: var/lib\n", "");
    expect_error(y, "t.yaml:6: 'spec.storage.directory' must be an absolute path, not 'var/lib'");
    char longdir[1100] = "/";
    memset(longdir + 1, 'a', 1030);
    longdir[1031] = '\0';
    char line[1200];
    snprintf(line, sizeof(line), "    type: file\n    directory: %s\n", longdir);
    doc(y, sizeof(y), line, "");
    expect_error(y, "t.yaml:6: 'spec.storage.directory' is longer than 1023 bytes");
    doc(y, sizeof(y), "    durability: batch\n", "");
    expect_error(y, "t.yaml:5: Broker default/default: durability batch needs storage type file "
                    "(a memory store lives in /dev/shm, which no fdatasync puts on a disk); set "
                    "type: file with a directory, or durability: none");
    doc(y, sizeof(y), "    durability: always\n", "");
    expect_error(y, "t.yaml:5: 'spec.storage.durability' must be none, batch or sync, not "
                    "'always'");
    doc(y, sizeof(y), "    type: file\n    directory: /d\n    flushInterval: 10ms\n", "");
    expect_error(y, "t.yaml:7: Broker default/default: flushInterval applies to durability batch "
                    "only, and this broker's durability is none; remove it");
    doc(y, sizeof(y),
        "    type: file\n    directory: /d\n    durability: sync\n    flushInterval: 5ms\n", "");
    expect_error(y, "t.yaml:8: Broker default/default: flushInterval applies to durability batch "
                    "only, and this broker's durability is sync; remove it");
    doc(y, sizeof(y),
        "    type: file\n    directory: /d\n    durability: batch\n    flushInterval: 11s\n", "");
    expect_error(y, "t.yaml:8: 'spec.storage.flushInterval' must be between 1ms and 10s, not "
                    "11000ms");
    doc(y, sizeof(y), "    flushInterval: soon\n", "");
    expect_error(y, "t.yaml:5: 'spec.storage.flushInterval' must be a duration from 1ms to 24h "
                    "such as 500ms, 10s or 2m, not 'soon'");
    doc(y, sizeof(y), "    size: 1Gi\n", "");
    expect_error(y, "t.yaml:5: unknown field 'spec.storage.size'");
    doc(y, sizeof(y), "    type: file\n    type: memory\n", "");
    expect_error(y, "t.yaml:6: spec.storage: duplicate field 'type'");
    expect_error("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                 "  storage: file\n",
                 "t.yaml:4: spec.storage must be a mapping");
    doc(y, sizeof(y), "    type: file\n", "");
    expect_error(y, "t.yaml:5: Broker default/default: storage type file needs a directory "
                    "('spec.storage.directory', or the Broker's annotation "
                    "ringcast.dev/storage-directory)");
    doc(y, sizeof(y), "    directory: /var/lib/ringcast\n", "");
    expect_error(y, "t.yaml:5: 'spec.storage.directory' is given, but no broker keeps its "
                    "events in files (spec.storage.type is memory and no Broker has the "
                    "annotation ringcast.dev/storage-type: file)");
}

static void test_bad_annotations(void)
{
    char y[2048];
    /* Lines: 1 ---, 2 apiVersion, 3 kind, 4 metadata, 5 name, 6 annotations, 7 the first. */
    broker(y, sizeof(y), "a", "    ringcast.dev/storage-type: tape\n");
    expect_error(y + 4, "t.yaml:6: 'metadata.annotations.ringcast.dev/storage-type' must be "
                        "memory, file or redis, not 'tape'");
    broker(y, sizeof(y), "a", "    ringcast.dev/storage-type: file\n");
    expect_error(y + 4, "t.yaml:6: Broker default/a: storage type file needs a directory "
                        "('spec.storage.directory', or the Broker's annotation "
                        "ringcast.dev/storage-directory)");
    broker(y, sizeof(y), "a", "    ringcast.dev/storage-directory: /d\n");
    expect_error(y + 4, "t.yaml:6: Broker default/a: annotation ringcast.dev/storage-directory "
                        "applies to storage type file, and this broker's type is memory (add "
                        "ringcast.dev/storage-type: file, or remove the directory)");
    broker(y, sizeof(y), "a",
           "    ringcast.dev/storage-type: file\n    ringcast.dev/storage-directory: rel\n");
    expect_error(y + 4, "t.yaml:7: 'metadata.annotations.ringcast.dev/storage-directory' must "
                        "be an absolute path, not 'rel'");
    broker(y, sizeof(y), "a", "    ringcast.dev/storage-durability: sync\n");
    expect_error(y + 4, "t.yaml:6: Broker default/a: durability sync needs storage type file (a "
                        "memory store lives in /dev/shm, which no fdatasync puts on a disk); set "
                        "type: file with a directory, or durability: none");
    broker(y, sizeof(y), "a",
           "    ringcast.dev/storage-type: file\n    ringcast.dev/storage-directory: /d\n"
           "    ringcast.dev/storage-flush-interval: 5ms\n");
    expect_error(y + 4, "t.yaml:8: Broker default/a: flushInterval applies to durability batch "
                        "only, and this broker's durability is none; remove it");
    broker(y, sizeof(y), "a", "    ringcast.dev/storage-flush-interval: 0ms\n");
    expect_error(y + 4, "t.yaml:6: 'metadata.annotations.ringcast.dev/storage-flush-interval' "
                        "must be a duration from 1ms to 24h such as 500ms, 10s or 2m, not '0ms'");
    broker(y, sizeof(y), "a", "    ringcast.dev/storage-size: 1Gi\n");
    expect_error(y + 4, "t.yaml:6: unknown annotation 'ringcast.dev/storage-size' (a Broker's "
                        "storage annotations are ringcast.dev/storage-type, -directory, "
                        "-durability and -flush-interval)");
    broker(y, sizeof(y), "a", "    ringcast.dev/storage-type: 1\n");
    expect_error(y + 4, "t.yaml:6: 'metadata.annotations.ringcast.dev/storage-type' must be "
                        "memory, file or redis, not '1'");
    broker(y, sizeof(y), "a", "    ringcast.dev/storage-type: {a: b}\n");
    expect_error(y + 4,
                 "t.yaml:6: 'metadata.annotations.ringcast.dev/storage-type' must be a string");
}

/* ringcast.dev/dedup-window and -capacity: read, defaults, and every bad value. */
static void test_dedup(void)
{
    char y[2048];
    rc_config_t c;
    broker(y, sizeof(y), "a",
           "    ringcast.dev/dedup-window: 5m\n    ringcast.dev/dedup-capacity: \"200000\"\n");
    load(&c, y + 4);
    ASSERT_EQ(c.brokers[0].dedup_window_ms, 300000);
    ASSERT_U64_EQ(c.brokers[0].dedup_capacity, 200000);
    ASSERT_EQ(c.brokers[0].dedup_line, 6);
    rc_config_close(&c);
    broker(y, sizeof(y), "a", "    ringcast.dev/dedup-window: 1s\n");
    load(&c, y + 4);
    ASSERT_EQ(c.brokers[0].dedup_window_ms, 1000);
    ASSERT_U64_EQ(c.brokers[0].dedup_capacity, 0);
    rc_config_close(&c);
    broker(y, sizeof(y), "a", "");
    load(&c, y + 4);
    ASSERT_EQ(c.brokers[0].dedup_window_ms, 0); /* off */
    rc_config_close(&c);
    broker(y, sizeof(y), "a", "    ringcast.dev/dedup-window: 500ms\n");
    expect_error(y + 4, "t.yaml:6: 'metadata.annotations.ringcast.dev/dedup-window' must be "
                        "from 1s to 24h, not 500ms");
    broker(y, sizeof(y), "a", "    ringcast.dev/dedup-window: 25h\n");
    expect_error(y + 4, "t.yaml:6: 'metadata.annotations.ringcast.dev/dedup-window' must be a "
                        "duration from 1ms to 24h such as 500ms, 10s or 2m, not '25h'");
    broker(y, sizeof(y), "a", "    ringcast.dev/dedup-window: forever\n");
    expect_error(y + 4, "t.yaml:6: 'metadata.annotations.ringcast.dev/dedup-window' must be a "
                        "duration from 1ms to 24h such as 500ms, 10s or 2m, not 'forever'");
    broker(y, sizeof(y), "a",
           "    ringcast.dev/dedup-window: 1m\n    ringcast.dev/dedup-capacity: \"10\"\n");
    expect_error(y + 4, "t.yaml:7: 'metadata.annotations.ringcast.dev/dedup-capacity' must be "
                        "an integer from 1024 to 67108864, not '10'");
    broker(y, sizeof(y), "a", "    ringcast.dev/dedup-capacity: \"5000\"\n");
    expect_error(y + 4, "t.yaml:6: Broker default/a: ringcast.dev/dedup-capacity applies with "
                        "ringcast.dev/dedup-window (the window turns deduplication on)");
    broker(y, sizeof(y), "a", "    ringcast.dev/dedup-size: 1\n");
    expect_error(y + 4, "t.yaml:6: unknown annotation 'ringcast.dev/dedup-size' (a Broker's "
                        "deduplication annotations are ringcast.dev/dedup-window and "
                        "ringcast.dev/dedup-capacity)");
}

/* spec.redis: defaults, every field, a broker opting in by annotation or by spec.storage. */
static void test_redis(void)
{
    rc_config_t c;
    char y[2048];
    snprintf(y, sizeof(y),
             "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
             "  redis: {addresses: [\"redis.local:6380\"]}\n"
             "---\napiVersion: eventing.knative.dev/v1\nkind: Broker\n"
             "metadata:\n  name: a\n  annotations: {ringcast.dev/storage-type: redis}\n"
             "---\napiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: b}\n");
    load(&c, y);
    ASSERT_STR_EQ(c.redis.host, "redis.local");
    ASSERT_EQ(c.redis.port, 6380);
    ASSERT_STR_EQ(c.redis.password, "");
    ASSERT_EQ(c.redis.partitions, 1);
    ASSERT_EQ(c.redis.max_len, 1000000);
    ASSERT_EQ(c.redis.max_age_ms, 0); /* no retention by time unless asked */
    ASSERT_EQ(c.redis.replicas, 0);
    ASSERT_EQ(c.redis.wait_timeout_ms, 1000);
    ASSERT_EQ(c.brokers[0].storage.type, RC_CONFIG_STORAGE_REDIS);
    ASSERT_EQ(c.brokers[1].storage.type, RC_CONFIG_STORAGE_MEMORY);
    ASSERT_STR_EQ(rc_config_storage_type_name(RC_CONFIG_STORAGE_REDIS), "redis");
    rc_config_close(&c);
    snprintf(y, sizeof(y),
             "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
             "  storage: {type: redis}\n"
             "  redis: {addresses: [\"[::1]:7000\"], password: pw, partitions: 8, maxLen: 0,"
             " replicas: 2, waitTimeout: 250ms, maxAge: 168h}\n");
    load(&c, y);
    ASSERT_STR_EQ(c.redis.host, "::1");
    ASSERT_EQ(c.redis.port, 7000);
    ASSERT_STR_EQ(c.redis.password, "pw");
    ASSERT_EQ(c.redis.partitions, 8);
    ASSERT_EQ(c.redis.max_len, 0);
    ASSERT_EQ(c.redis.max_age_ms, 168ull * 3600 * 1000); /* beyond other durations' 24h */
    ASSERT_EQ(c.redis.replicas, 2);
    ASSERT_EQ(c.redis.wait_timeout_ms, 250);
    ASSERT_EQ(c.brokers[0].storage.type, RC_CONFIG_STORAGE_REDIS); /* the default broker */
    ASSERT_EQ(c.redis.n_addresses, 1);
    rc_config_close(&c);
    /* A Redis Cluster's seeds: every one kept, in order; the first is also host:port. */
    snprintf(y, sizeof(y),
             "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
             "  storage: {type: redis}\n"
             "  redis: {addresses: [\"10.0.0.1:7000\", \"node-b:7001\", \"[::1]:7002\"]}\n");
    load(&c, y);
    ASSERT_EQ(c.redis.n_addresses, 3);
    ASSERT_STR_EQ(c.redis.host, "10.0.0.1");
    ASSERT_EQ(c.redis.port, 7000);
    ASSERT_STR_EQ(c.redis.addresses[1].host, "node-b");
    ASSERT_EQ(c.redis.addresses[1].port, 7001);
    ASSERT_STR_EQ(c.redis.addresses[2].host, "::1");
    ASSERT_EQ(c.redis.addresses[2].port, 7002);
    rc_config_close(&c);
    expect_error("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                 "  redis:\n    addresses:\n    - \"h:1\"\n    - \"h:2\"\n    - \"h:1\"\n",
                 "t.yaml:8: 'spec.redis.addresses' lists 'h:1' twice (items 1 and 3)");
    expect_error("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                 "  redis:\n    addresses:\n    - \"h:1\"\n    - \"h:2x\"\n",
                 "t.yaml:7: 'spec.redis.addresses' item must be host:port such as "
                 "127.0.0.1:6379, redis.example:6379 or [::1]:6379, not 'h:2x'");
    char many[2048];
    int off = snprintf(many, sizeof(many),
                       "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                       "  redis:\n    addresses:\n");
    for (int i = 0; i < RC_CONFIG_REDIS_ADDRESSES + 1; i++)
        off += snprintf(many + off, sizeof(many) - (size_t)off, "    - \"h:%d\"\n", i + 1);
    expect_error(many, "t.yaml:22: 'spec.redis.addresses' lists 17 addresses; at most 16 (a few "
                       "seeds of a Redis Cluster are enough: the rest is found from them)");
    expect_error("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                 "  redis: {addresses: []}\n",
                 "t.yaml:4: 'spec.redis.addresses' is empty: give the Redis server's host:port");
    expect_error("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                 "  redis: {addresses: \"127.0.0.1:6379\"}\n",
                 "t.yaml:4: 'spec.redis.addresses' must be a list of host:port");
    expect_error("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                 "  redis: {addresses: [\"bad host:1\"]}\n",
                 "t.yaml:4: 'spec.redis.addresses' item must be host:port such as "
                 "127.0.0.1:6379, redis.example:6379 or [::1]:6379, not 'bad host:1'");
    expect_error("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                 "  redis: {addresses: [\"h:1\"], passwordFile: rel/pw}\n",
                 "t.yaml:4: 'spec.redis.passwordFile' must be an absolute path, not 'rel/pw'");
    /* maxAge: 1s (the mirror trims once a second) to a year, a duration. */
    static const char *const bad_ages[] = {"999ms", "0", "8761h", "a day", "-1h"};
    for (size_t i = 0; i < sizeof(bad_ages) / sizeof(bad_ages[0]); i++) {
        char doc_[512], msg[512];
        snprintf(doc_, sizeof(doc_),
                 "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                 "  redis:\n    addresses: [\"h:1\"]\n    maxAge: \"%s\"\n",
                 bad_ages[i]);
        snprintf(msg, sizeof(msg),
                 "t.yaml:6: 'spec.redis.maxAge' must be a duration from 1s to 8760h (a year) such "
                 "as 30m, 24h or 168h, not '%s' (leave it out to keep entries of any age, up to "
                 "maxLen)",
                 bad_ages[i]);
        expect_error(doc_, msg);
    }
    expect_error("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                 "  redis: {addresses: [\"h:1\"], maxAge: {d: 1}}\n",
                 "t.yaml:4: 'spec.redis.maxAge' must be a duration from 1s to 8760h (a year) "
                 "such as 30m, 24h or 168h, not '(not a scalar)' (leave it out to keep entries "
                 "of any age, up to maxLen)");
}

int main(void)
{
    test_defaults();
    test_resolve();
    test_bad_settings();
    test_bad_annotations();
    test_dedup();
    test_redis();
    printf("test_config_storage: ok\n");
    return 0;
}
