/* Unit test of core/config: defaults, a full valid file, value syntaxes, and every error a
 * config can have, each with its exact message (file and line included); the URI grammar of
 * core/config_uri.h; the ring size against the limits (issue 11, defects 5 and 9b). */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "core/config.h"
#include "core/config_uri.h"
#include "core/errors.h"
#include "tests/test.h"

static char err[RC_CONFIG_ERR_MAX];

static void expect_error(const char *yaml, const char *message)
{
    rc_config_t c;
    int rc = rc_config_load_string(&c, "t.yaml", yaml, strlen(yaml), err, sizeof(err));
    if (rc == 0)
        RC_TEST_FAIL("config was accepted, expected error \"%s\":\n%s", message, yaml);
    ASSERT_EQ(rc, RC_ECONFIG);
    ASSERT_STR_EQ(err, message);
    ASSERT(c.brokers == NULL && c.broker_count == 0); /* nothing half-loaded */
    rc_config_close(&c);
}

static void test_defaults(void)
{
    rc_config_t c;
    ASSERT_EQ(rc_config_init_default(&c), 0);
    ASSERT_STR_EQ(c.listen_host, "127.0.0.1");
    ASSERT_EQ(c.listen_port, 8080);
    ASSERT_STR_EQ(c.admin_host, "127.0.0.1");
    ASSERT_EQ(c.admin_port, 8081);
    ASSERT_EQ(c.ingress_loops, 1);
    ASSERT_STR_EQ(c.ring_prefix, "ringcast");
    ASSERT_STR_EQ(c.log_format, "text");
    ASSERT_EQ(c.broker_count, 1);
    ASSERT_STR_EQ(c.brokers[0].ns, "default");
    ASSERT_STR_EQ(c.brokers[0].name, "default");
    ASSERT_U64_EQ(c.limits.max_event_bytes, 1024 * 1024);
    ASSERT(rc_config_find_broker(&c, "default", 7, "default", 7) != NULL);
    ASSERT(rc_config_find_broker(&c, "default", 7, "defaul", 6) == NULL);
    rc_config_close(&c);
    rc_config_close(&c); /* twice is harmless */
}

static const char full[] = "# a comment\n"
                           "apiVersion: ringcast.dev/v1alpha1\n"
                           "kind: RingcastConfig\n"
                           "metadata:\n"
                           "  name: ringcast\n"
                           "spec:\n"
                           "  listen: 0.0.0.0:9000\n"
                           "  admin: \"[::1]:9001\"\n"
                           "  ingressLoops: 2\n"
                           "  retryAfterSeconds: 3\n"
                           "  shutdownTimeout: 1500ms\n"
                           "  logLevel: debug\n"
                           "  ring:\n"
                           "    size: 64Mi\n"
                           "    namePrefix: rc_test-1\n"
                           "  limits:\n"
                           "    maxEventBytes: 512Ki\n"
                           "    maxBatchBytes: 8Mi\n"
                           "    maxBatchEvents: 50\n"
                           "    maxHeaderBytes: 8Ki\n"
                           "    maxConnections: 100\n"
                           "    headerTimeout: 2s\n"
                           "    bodyTimeout: 1m\n"
                           "    idleTimeout: 250\n"
                           "---\n"
                           "apiVersion: eventing.knative.dev/v1\n"
                           "kind: Broker\n"
                           "metadata:\n"
                           "  name: orders\n"
                           "  namespace: shop\n"
                           "  annotations:\n"
                           "    eventing.knative.dev/broker.class: MTChannelBasedBroker\n"
                           "spec:\n"
                           "  delivery:\n"
                           "    retry: 5\n"
                           "    backoffPolicy: linear\n"
                           "    backoffDelay: PT0.5S\n"
                           "    backoffMax: PT1M\n"
                           "    timeout: PT10S\n"
                           "    retryAfterMax: PT0S\n"
                           "    format: json\n"
                           "    deadLetterSink:\n"
                           "      uri: http://127.0.0.1:9999/dead\n"
                           "---\n"
                           "---\n"
                           "apiVersion: eventing.knative.dev/v1\n"
                           "kind: Broker\n"
                           "metadata:\n"
                           "  name: default\n";

static void test_full(void)
{
    rc_config_t c;
    int rc = rc_config_load_string(&c, "full.yaml", full, strlen(full), err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("%s", err);
    ASSERT_STR_EQ(c.listen_host, "0.0.0.0");
    ASSERT_EQ(c.listen_port, 9000);
    ASSERT_STR_EQ(c.admin_host, "::1");
    ASSERT_EQ(c.admin_port, 9001);
    ASSERT_EQ(c.ingress_loops, 2);
    ASSERT_EQ(c.retry_after_s, 3);
    ASSERT_EQ(c.shutdown_timeout_ms, 1500);
    ASSERT_STR_EQ(c.log_level, "debug");
    ASSERT_U64_EQ(c.ring_bytes, 64ull << 20);
    ASSERT_STR_EQ(c.ring_prefix, "rc_test-1");
    ASSERT_U64_EQ(c.limits.max_event_bytes, 512 * 1024);
    ASSERT_U64_EQ(c.limits.max_batch_bytes, 8ull << 20);
    ASSERT_EQ(c.limits.max_batch_events, 50);
    ASSERT_EQ(c.limits.max_header_bytes, 8192);
    ASSERT_EQ(c.limits.max_connections, 100);
    ASSERT_EQ(c.limits.header_timeout_ms, 2000);
    ASSERT_EQ(c.limits.body_timeout_ms, 60000);
    ASSERT_EQ(c.limits.idle_timeout_ms, 250);
    ASSERT_EQ(c.broker_count, 2);
    ASSERT_STR_EQ(c.brokers[0].ns, "shop");
    ASSERT_STR_EQ(c.brokers[0].name, "orders");
    ASSERT_EQ(c.brokers[0].line, 26);
    ASSERT_EQ(c.brokers[0].delivery.retry, 5);
    ASSERT_STR_EQ(c.brokers[0].delivery.backoff_policy, "linear");
    ASSERT_STR_EQ(c.brokers[0].delivery.backoff_delay, "PT0.5S");
    ASSERT_STR_EQ(c.brokers[0].delivery.backoff_max, "PT1M");
    ASSERT_STR_EQ(c.brokers[0].delivery.timeout, "PT10S");
    ASSERT_STR_EQ(c.brokers[0].delivery.retry_after_max, "PT0S");
    ASSERT_STR_EQ(c.brokers[0].delivery.format, "json");
    ASSERT_STR_EQ(c.brokers[0].delivery.dead_letter_uri, "http://127.0.0.1:9999/dead");
    ASSERT_EQ(c.brokers[0].delivery.dead_letter_line, 43);
    ASSERT_STR_EQ(c.brokers[1].ns, "default");
    ASSERT_STR_EQ(c.brokers[1].name, "default");
    ASSERT_EQ(c.brokers[1].delivery.retry, -1);
    ASSERT(c.brokers[1].delivery.format == NULL);
    ASSERT_STR_EQ(c.source, "full.yaml");
    rc_config_close(&c);

    /* Settings only: the default broker is added. An empty file too. */
    const char *only = "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\n";
    ASSERT_EQ(rc_config_load_string(&c, "s.yaml", only, strlen(only), err, sizeof(err)), 0);
    ASSERT_EQ(c.broker_count, 1);
    ASSERT_STR_EQ(c.brokers[0].name, "default");
    rc_config_close(&c);
    ASSERT_EQ(rc_config_load_string(&c, "e.yaml", "", 0, err, sizeof(err)), 0);
    ASSERT_EQ(c.broker_count, 1);
    rc_config_close(&c);
}

static void test_files(void)
{
    rc_config_t c;
    int rc = rc_config_load_file(&c, "/nonexistent/ringcast.yaml", err, sizeof(err));
    ASSERT_EQ(rc, -ENOENT);
    ASSERT_STR_EQ(err, "/nonexistent/ringcast.yaml: cannot open: No such file or directory");
    char path[] = "/tmp/rc_test_config_XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, full, strlen(full)), (ssize_t)strlen(full));
    close(fd);
    ASSERT_EQ(rc_config_load_file(&c, path, err, sizeof(err)), 0);
    ASSERT_EQ(c.broker_count, 2);
    rc_config_close(&c);
    unlink(path);
}

static void test_values(void)
{
    uint64_t v;
    ASSERT_EQ(rc_config_parse_size("1024", &v), 0);
    ASSERT_U64_EQ(v, 1024);
    ASSERT_EQ(rc_config_parse_size("4Ki", &v), 0);
    ASSERT_U64_EQ(v, 4096);
    ASSERT_EQ(rc_config_parse_size("2M", &v), 0);
    ASSERT_U64_EQ(v, 2 << 20);
    ASSERT_EQ(rc_config_parse_size("1Gi", &v), 0);
    ASSERT_U64_EQ(v, 1 << 30);
    ASSERT_EQ(rc_config_parse_size("", &v), -EINVAL);
    ASSERT_EQ(rc_config_parse_size("-1", &v), -EINVAL);
    ASSERT_EQ(rc_config_parse_size("1Ti", &v), -EINVAL);
    ASSERT_EQ(rc_config_parse_size("1Kix", &v), -EINVAL);
    ASSERT_EQ(rc_config_parse_size("99999999999999999999", &v), -EINVAL);
    ASSERT_EQ(rc_config_parse_size("17179869184Gi", &v), -EINVAL);
    ASSERT_EQ(rc_config_parse_duration_ms("250ms", &v), 0);
    ASSERT_U64_EQ(v, 250);
    ASSERT_EQ(rc_config_parse_duration_ms("3s", &v), 0);
    ASSERT_U64_EQ(v, 3000);
    ASSERT_EQ(rc_config_parse_duration_ms("2m", &v), 0);
    ASSERT_U64_EQ(v, 120000);
    ASSERT_EQ(rc_config_parse_duration_ms("1h", &v), 0);
    ASSERT_U64_EQ(v, 3600000);
    ASSERT_EQ(rc_config_parse_duration_ms("75", &v), 0);
    ASSERT_U64_EQ(v, 75);
    ASSERT_EQ(rc_config_parse_duration_ms("1.5s", &v), -EINVAL);
    ASSERT_EQ(rc_config_parse_duration_ms("s", &v), -EINVAL);
    ASSERT_EQ(rc_config_parse_duration_ms("10d", &v), -EINVAL);
    char host[RC_CONFIG_ADDR_MAX];
    int port;
    ASSERT_EQ(rc_config_parse_addr("127.0.0.1:0", host, sizeof(host), &port), 0);
    ASSERT_STR_EQ(host, "127.0.0.1");
    ASSERT_EQ(port, 0);
    ASSERT_EQ(rc_config_parse_addr("[::]:80", host, sizeof(host), &port), 0);
    ASSERT_STR_EQ(host, "::");
    ASSERT_EQ(port, 80);
    ASSERT_EQ(rc_config_parse_addr("::1:80", host, sizeof(host), &port), -EINVAL);
    ASSERT_EQ(rc_config_parse_addr("localhost:80", host, sizeof(host), &port), -EINVAL);
    ASSERT_EQ(rc_config_parse_addr("127.0.0.1", host, sizeof(host), &port), -EINVAL);
    ASSERT_EQ(rc_config_parse_addr("127.0.0.1:", host, sizeof(host), &port), -EINVAL);
    ASSERT_EQ(rc_config_parse_addr("127.0.0.1:65536", host, sizeof(host), &port), -EINVAL);
    ASSERT_EQ(rc_config_parse_addr(":80", host, sizeof(host), &port), -EINVAL);
    ASSERT_EQ(rc_config_parse_addr("[::1]80", host, sizeof(host), &port), -EINVAL);
}

#define BROKER   "apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
#define SETTINGS "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\n"

static void test_log_format(void)
{
    static const char yaml[] = SETTINGS "spec:\n  logFormat: json\n";
    rc_config_t c;
    ASSERT_EQ(rc_config_load_string(&c, "t.yaml", yaml, strlen(yaml), err, sizeof(err)), 0);
    ASSERT_STR_EQ(c.log_format, "json");
    rc_config_close(&c);
}

static void test_errors(void)
{
    expect_error("kind: Broker\n  bad: [\n", "t.yaml:2: YAML syntax error: mapping values are not "
                                             "allowed in this context");
    expect_error("a: [1, 2\n", "t.yaml:2: YAML syntax error: did not find expected ',' or ']' "
                               "while parsing a flow sequence");
    expect_error("- 1\n- 2\n", "t.yaml:1: a document must be a mapping with apiVersion and kind");
    expect_error("apiVersion: v1\n", "t.yaml:1: document has no 'kind'");
    expect_error("kind: Broker\n", "t.yaml:1: Broker has no 'apiVersion'");
    expect_error("apiVersion: v1\nkind: Pod\n",
                 "t.yaml:2: unknown kind 'Pod' (known: Broker and Trigger in "
                 "eventing.knative.dev/v1, Service in v1, "
                 "RingcastConfig and DaprApp in ringcast.dev/v1alpha1, Component in "
                 "dapr.io/v1alpha1, Subscription in dapr.io/v2alpha1 or v1alpha1)");
    expect_error("apiVersion: eventing.knative.dev/v1beta1\nkind: Broker\n",
                 "t.yaml:1: Broker must have apiVersion eventing.knative.dev/v1, not "
                 "'eventing.knative.dev/v1beta1'");
    expect_error(BROKER "metadata:\n  namespace: x\n", "t.yaml:1: Broker has no metadata.name");
    expect_error(BROKER "metadata:\n  name: Orders\n",
                 "t.yaml:4: 'metadata.name' must be a DNS label (lowercase letters, digits and "
                 "'-', at most 63 characters), not 'Orders'");
    expect_error(BROKER "metadata:\n  name: a\n  namespace: -x\n",
                 "t.yaml:5: 'metadata.namespace' must be a DNS label (lowercase letters, digits "
                 "and '-', at most 63 characters), not '-x'");
    expect_error(BROKER "metadata:\n  name: a\n  uid: 5\n",
                 "t.yaml:5: unknown field 'metadata.uid'");
    expect_error(BROKER "metadata:\n  name: a\n  name: b\n",
                 "t.yaml:5: metadata: duplicate field 'name'");
    expect_error(BROKER "metadata:\n  name: [a]\n", "t.yaml:4: 'metadata.name' must be a string");
    expect_error(BROKER "metadata: x\n", "t.yaml:3: metadata must be a mapping");
    expect_error(BROKER "metadata:\n  name: a\nspce: {}\n", "t.yaml:5: unknown field 'spce'");
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  filter: {}\n",
                 "t.yaml:6: unknown field 'spec.filter'");
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    retry: -1\n",
                 "t.yaml:7: 'spec.delivery.retry' must be an integer from 0 to 1000, not '-1'");
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    retry: three\n",
                 "t.yaml:7: 'spec.delivery.retry' must be an integer from 0 to 1000, not 'three'");
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    backoffPolicy: random\n",
                 "t.yaml:7: 'spec.delivery.backoffPolicy' must be exponential or linear, not "
                 "'random'");
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    backoffDelay: 2s\n",
                 "t.yaml:7: spec.delivery.backoffDelay: invalid ISO-8601 duration \"2s\": must "
                 "start with 'P' (for example PT0.2S)");
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    backoffMax: P1Y\n",
                 "t.yaml:7: spec.delivery.backoffMax: invalid ISO-8601 duration \"P1Y\": years "
                 "and months have no fixed length; use days (D) or a time part (PT...)");
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    backoffMax: PT0S\n",
                 "t.yaml:7: spec.delivery.backoffMax: \"PT0S\": must be greater than zero");
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    timeout: PT\n",
                 "t.yaml:7: spec.delivery.timeout: invalid ISO-8601 duration \"PT\": nothing after "
                 "'T'");
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    format: xml\n",
                 "t.yaml:7: 'spec.delivery.format' must be binary or json, not 'xml'");
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    deadLetterSink:\n"
                        "      ref: {kind: Service, name: x}\n",
                 "t.yaml:8: Broker default/a: 'spec.delivery.deadLetterSink.ref' names Service "
                 "'x', which is not defined in namespace default");
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    deadLetterSink:\n"
                        "      uri: /relative\n",
                 "t.yaml:8: 'spec.delivery.deadLetterSink.uri' must be an absolute URI, not "
                 "'/relative'");
    {
        char yaml[1400], msg[1400];
        char uri[1100];
        memset(uri, 'a', sizeof(uri) - 1);
        uri[sizeof(uri) - 1] = '\0';
        memcpy(uri, "http://", 7);
        snprintf(yaml, sizeof(yaml),
                 BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    deadLetterSink:\n"
                        "      uri: %s\n",
                 uri);
        snprintf(msg, sizeof(msg), "t.yaml:8: spec.delivery.deadLetterSink.uri: \"%.60s", uri);
        rc_config_t c;
        ASSERT_EQ(rc_config_load_string(&c, "t.yaml", yaml, strlen(yaml), err, sizeof(err)),
                  RC_ECONFIG);
        ASSERT(strncmp(err, msg, strlen(msg)) == 0);
        const char *tail = "...\": longer than 1023 characters";
        ASSERT_STR_EQ(err + strlen(err) - strlen(tail), tail);
    }
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    retries: 3\n",
                 "t.yaml:7: unknown field 'spec.delivery.retries'");
    expect_error(BROKER "metadata:\n  name: a\n---\n" BROKER "metadata:\n  name: a\n",
                 "t.yaml:6: Broker default/a is defined twice (first at line 1)");
    expect_error(SETTINGS "---\n" SETTINGS,
                 "t.yaml:4: a second RingcastConfig document (the first is at line 1)");
    expect_error(SETTINGS "spec:\n  listen: localhost:80\n",
                 "t.yaml:4: 'spec.listen' must be IP:PORT such as 127.0.0.1:8080 or [::1]:8080, "
                 "not 'localhost:80'");
    expect_error(SETTINGS "spec:\n  admin: 127.0.0.1\n",
                 "t.yaml:4: 'spec.admin' must be IP:PORT such as 127.0.0.1:8080 or [::1]:8080, "
                 "not '127.0.0.1'");
    expect_error(SETTINGS "spec:\n  ingressLoops: 0\n",
                 "t.yaml:4: 'spec.ingressLoops' must be an integer from 1 to 64, not '0'");
    expect_error(SETTINGS "spec:\n  ring:\n    size: 3Mi\n",
                 "t.yaml:5: 'spec.ring.size' must be a power of two, not 3145728");
    expect_error(SETTINGS "spec:\n  ring:\n    size: 1Ki\n",
                 "t.yaml:5: 'spec.ring.size' must be between 65536 and 68719476736 bytes, not "
                 "1024");
    expect_error(SETTINGS "spec:\n  ring:\n    size: lots\n",
                 "t.yaml:5: 'spec.ring.size' must be a size such as 1048576, 512Ki or 16Mi, not "
                 "'lots'");
    expect_error(SETTINGS "spec:\n  ring:\n    namePrefix: a.b\n",
                 "t.yaml:5: 'spec.ring.namePrefix' must be 1-24 characters of [A-Za-z0-9_-], not "
                 "'a.b'");
    expect_error(SETTINGS "spec:\n  ring:\n    durable: true\n",
                 "t.yaml:5: unknown field 'spec.ring.durable'");
    expect_error(SETTINGS "spec:\n  limits:\n    headerTimeout: soon\n",
                 "t.yaml:5: 'spec.limits.headerTimeout' must be a duration from 1ms to 24h such "
                 "as 500ms, 10s or 2m, not 'soon'");
    expect_error(SETTINGS "spec:\n  limits:\n    idleTimeout: 0s\n",
                 "t.yaml:5: 'spec.limits.idleTimeout' must be a duration from 1ms to 24h such as "
                 "500ms, 10s or 2m, not '0s'");
    expect_error(SETTINGS "spec:\n  limits:\n    maxEventBytes: 100\n",
                 "t.yaml:5: 'spec.limits.maxEventBytes' must be between 256 and 1073741824 bytes, "
                 "not 100");
    expect_error(SETTINGS "spec:\n  limits:\n    maxBatchEvents: 0\n",
                 "t.yaml:5: 'spec.limits.maxBatchEvents' must be an integer from 1 to 1000000, "
                 "not '0'");
    expect_error(SETTINGS "spec:\n  limits:\n    maxEventBytes: 2Mi\n    maxBatchBytes: 1Mi\n",
                 "t.yaml:1: 'spec.limits.maxBatchBytes' (1048576) is smaller than "
                 "'spec.limits.maxEventBytes' (2097152)");
    expect_error(SETTINGS "spec:\n  limits:\n    maxBodyBytes: 1Mi\n",
                 "t.yaml:5: unknown field 'spec.limits.maxBodyBytes'");
    expect_error(SETTINGS "spec:\n  logLevel: verbose\n",
                 "t.yaml:4: 'spec.logLevel' must be error, warn, info or debug, not 'verbose'");
    expect_error(SETTINGS "spec:\n  logFormat: logfmt\n",
                 "t.yaml:4: 'spec.logFormat' must be text or json, not 'logfmt'");
    expect_error(SETTINGS "spec:\n  logFormat: [json]\n",
                 "t.yaml:4: 'spec.logFormat' must be a string");
    expect_error(SETTINGS "spec:\n  [a]: 1\n", "t.yaml:4: spec: keys must be plain strings");
    /* An error in the last document still leaves nothing loaded. */
    expect_error(BROKER "metadata:\n  name: a\n---\n" BROKER "metadata:\n  name: b\n  x: 1\n",
                 "t.yaml:10: unknown field 'metadata.x'");
}

/* Defect 5 of issue 11: user information and empty ports in dead-letter URIs are refused at
 * load, and the message masks the password. */
static void test_uri_errors(void)
{
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    deadLetterSink:\n"
                        "      uri: http://dls:s3cret@127.0.0.1:9/dead\n",
                 "t.yaml:8: spec.delivery.deadLetterSink.uri: \"http://***@127.0.0.1:9/dead\": "
                 "user information (user:password@) is not supported: ringcast sends no "
                 "credentials (use an address that needs none, or a local proxy that adds them)");
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    deadLetterSink:\n"
                        "      uri: dls:s3cret@sink.example/dead\n",
                 "t.yaml:8: 'spec.delivery.deadLetterSink.uri' must be an absolute URI, not "
                 "'***@sink.example/dead'");
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    deadLetterSink:\n"
                        "      uri: \"http://127.0.0.1:/dead\"\n",
                 "t.yaml:8: spec.delivery.deadLetterSink.uri: \"http://127.0.0.1:/dead\": empty "
                 "port after ':' (write a port, or leave out the ':' for 80)");
    expect_error(BROKER "metadata:\n  name: a\nspec:\n  delivery:\n    deadLetterSink:\n"
                        "      uri: ftp://127.0.0.1/dead\n",
                 "t.yaml:8: spec.delivery.deadLetterSink.uri: \"ftp://127.0.0.1/dead\": the "
                 "scheme must be http:// (an absolute URI such as http://127.0.0.1:8080/events)");
    ASSERT(strstr(err, "s3cret") == NULL);
}

static void test_uri_parse(void)
{
    rc_config_uri_t u;
    char why[256];
    const char *s = "http://Sink.Example:8080/a/b?c=d#frag";
    ASSERT_EQ(rc_config_uri_parse(s, &u, why, sizeof(why)), 0);
    ASSERT_STR_EQ(u.host, "Sink.Example");
    ASSERT_EQ(u.host_kind, RC_CONFIG_HOST_NAME);
    ASSERT_EQ(u.port, 8080);
    ASSERT_MEM_STR(s + u.authority_off, u.authority_len, "Sink.Example:8080");
    ASSERT_MEM_STR(s + u.target_off, u.target_len, "/a/b?c=d");
    ASSERT_EQ(rc_config_uri_parse("HTTP://[::1]", &u, NULL, 0), 0);
    ASSERT_STR_EQ(u.host, "::1");
    ASSERT_EQ(u.host_kind, RC_CONFIG_HOST_IPV6);
    ASSERT_EQ(u.port, 80);
    ASSERT_EQ(u.target_len, 0);
    ASSERT_EQ(rc_config_uri_parse("http://10.1.2.3:65535#x", &u, NULL, 0), 0);
    ASSERT_EQ(u.host_kind, RC_CONFIG_HOST_IPV4);
    ASSERT_EQ(u.port, 65535);
    ASSERT_EQ(u.target_len, 0);
    ASSERT_EQ(rc_config_uri_parse("http://svc_1.ns.svc.cluster.local./e", &u, NULL, 0), 0);
    ASSERT_EQ(rc_config_uri_parse("http://h/p@q", &u, NULL, 0), 0); /* '@' in the path is data */
    char host[300] = "http://";
    memset(host + 7, 'a', 254);
    host[7 + 254] = '\0';
    ASSERT_EQ(rc_config_uri_parse(host, &u, why, sizeof(why)), RC_ECONFIG);
    ASSERT_STR_EQ(why, "the host is longer than 253 characters");
    ASSERT_EQ(rc_config_uri_parse("http://a.b:/", &u, why, sizeof(why)), RC_ECONFIG);
    ASSERT_STR_EQ(why, "empty port after ':' (write a port, or leave out the ':' for 80)");
    ASSERT_EQ(rc_config_uri_parse("http://u:pw@[::1]:/", &u, why, sizeof(why)), RC_ECONFIG);
    ASSERT(strncmp(why, "user information", 16) == 0); /* before the port: nothing quoted */
    ASSERT_EQ(rc_config_uri_parse("", &u, why, sizeof(why)), RC_ECONFIG);
    ASSERT_STR_EQ(why, "empty");
    ASSERT_EQ(rc_config_uri_parse(NULL, &u, NULL, 0), RC_ECONFIG);

    char out[64];
    ASSERT_STR_EQ(rc_config_uri_redact("http://u:pw@h:1/x@y", out, sizeof(out)),
                  "http://***@h:1/x@y");
    ASSERT_STR_EQ(rc_config_uri_redact("http://a@b@c/", out, sizeof(out)), "http://***@c/");
    ASSERT_STR_EQ(rc_config_uri_redact("http://h/x@y", out, sizeof(out)), "http://h/x@y");
    ASSERT_STR_EQ(rc_config_uri_redact("u:pw@h/x", out, sizeof(out)), "***@h/x");
    ASSERT_STR_EQ(rc_config_uri_redact("ftp://u:pw@h", out, sizeof(out)), "ftp://***@h");
    ASSERT_STR_EQ(rc_config_uri_redact("http://u:pw@h/", out, 10), "http://**");
}

/* Defect 9b of issue 11: a ring too small for the largest event or batch the limits allow is an
 * error at load that names both settings, their values and what fits. */
static void test_ring_limits(void)
{
    expect_error(SETTINGS "spec:\n  ring:\n    size: 4Mi\n",
                 "t.yaml:5: 'spec.ring.size' (4194304) is too small for "
                 "'spec.limits.maxEventBytes' (1048576, the default) and "
                 "'spec.limits.maxHeaderBytes' (16384, the default): the largest event takes "
                 "1069056 bytes of ring (4096 of them record overhead) and one record may take at "
                 "most 1048576 (a quarter of the ring, at most 16Mi); use a ring of at least 8Mi "
                 "or lower those limits");
    expect_error(SETTINGS "spec:\n  ring:\n    size: 8Mi\n",
                 "t.yaml:5: 'spec.ring.size' (8388608) is too small for "
                 "'spec.limits.maxBatchBytes' (4194304, the default) and "
                 "'spec.limits.maxBatchEvents' (1000, the default): the largest batch takes "
                 "8290304 bytes of ring (4096 per event of record overhead) and one batch may "
                 "take at most 4194304 (half the ring, at most 2Gi); use a ring of at least 16Mi "
                 "or lower those limits");
    expect_error(SETTINGS "spec:\n  limits:\n    maxEventBytes: 8Mi\n    maxBatchBytes: 8Mi\n",
                 "t.yaml:5: 'spec.ring.size' (16777216, the default) is too small for "
                 "'spec.limits.maxEventBytes' (8388608) and 'spec.limits.maxHeaderBytes' (16384, "
                 "the default): the largest event takes 8409088 bytes of ring (4096 of them "
                 "record overhead) and one record may take at most 4194304 (a quarter of the "
                 "ring, at most 16Mi); use a ring of at least 64Mi or lower those limits");
    expect_error(SETTINGS "spec:\n  limits:\n    maxHeaderBytes: 64Ki\n  ring: {size: 64Ki}\n",
                 "t.yaml:6: 'spec.ring.size' (65536) is too small for "
                 "'spec.limits.maxEventBytes' (1048576, the default) and "
                 "'spec.limits.maxHeaderBytes' (65536): the largest event takes 1118208 bytes of "
                 "ring (4096 of them record overhead) and one record may take at most 16384 (a "
                 "quarter of the ring, at most 16Mi); use a ring of at least 8Mi or lower those "
                 "limits");
    expect_error(SETTINGS "spec:\n  ring:\n    size: 1Gi\n  limits:\n    maxEventBytes: 16Mi\n"
                          "    maxBatchBytes: 16Mi\n",
                 "t.yaml:5: 'spec.ring.size' (1073741824) is too small for "
                 "'spec.limits.maxEventBytes' (16777216) and 'spec.limits.maxHeaderBytes' (16384, "
                 "the default): the largest event takes 16797696 bytes of ring (4096 of them "
                 "record overhead) and one record may take at most 16777216 (a quarter of the "
                 "ring, at most 16Mi); lower those limits (no ring takes more than 16Mi in one "
                 "record)");
    expect_error(SETTINGS "spec:\n  limits:\n    maxBatchEvents: 2000\n",
                 "t.yaml:5: 'spec.ring.size' (16777216, the default) is too small for "
                 "'spec.limits.maxBatchBytes' (4194304, the default) and "
                 "'spec.limits.maxBatchEvents' (2000): the largest batch takes 12386304 bytes of "
                 "ring (4096 per event of record overhead) and one batch may take at most 8388608 "
                 "(half the ring, at most 2Gi); use a ring of at least 32Mi or lower those "
                 "limits");
    expect_error(SETTINGS "spec:\n  ring: {size: 64Ki}\n  limits: {maxEventBytes: 16Ki, "
                          "maxHeaderBytes: 1Ki, maxBatchBytes: 16Ki, maxBatchEvents: 1}\n",
                 "t.yaml:4: 'spec.ring.size' (65536) is too small for "
                 "'spec.limits.maxEventBytes' (16384) and 'spec.limits.maxHeaderBytes' (1024): the "
                 "largest event takes 21504 bytes of ring (4096 of them record overhead) and one "
                 "record may take at most 16384 (a quarter of the ring, at most 16Mi); use a ring "
                 "of at least 128Ki or lower those limits");

    /* The rule is exact at the boundary: a 64 KiB ring takes 8 KiB events with 4 KiB of
     * headers, and batches of 8 KiB of up to 6 events; one byte or one event more does not. */
    static const char fits[] = SETTINGS "spec:\n  ring: {size: 64Ki}\n  limits: {maxEventBytes: "
                                        "8Ki, maxHeaderBytes: 4Ki, maxBatchBytes: 8Ki, "
                                        "maxBatchEvents: 6}\n";
    rc_config_t c;
    if (rc_config_load_string(&c, "t.yaml", fits, strlen(fits), err, sizeof(err)) != 0)
        RC_TEST_FAIL("%s", err);
    rc_config_close(&c);
    expect_error(SETTINGS "spec:\n  ring: {size: 64Ki}\n  limits: {maxEventBytes: 8193, "
                          "maxHeaderBytes: 4Ki, maxBatchBytes: 9Ki, maxBatchEvents: 6}\n",
                 "t.yaml:4: 'spec.ring.size' (65536) is too small for "
                 "'spec.limits.maxEventBytes' (8193) and 'spec.limits.maxHeaderBytes' (4096): the "
                 "largest event takes 16385 bytes of ring (4096 of them record overhead) and one "
                 "record may take at most 16384 (a quarter of the ring, at most 16Mi); use a ring "
                 "of at least 128Ki or lower those limits");
    expect_error(SETTINGS "spec:\n  ring: {size: 64Ki}\n  limits: {maxEventBytes: 8Ki, "
                          "maxHeaderBytes: 4Ki, maxBatchBytes: 8Ki, maxBatchEvents: 7}\n",
                 "t.yaml:4: 'spec.ring.size' (65536) is too small for "
                 "'spec.limits.maxBatchBytes' (8192) and 'spec.limits.maxBatchEvents' (7): the "
                 "largest batch takes 36864 bytes of ring (4096 per event of record overhead) and "
                 "one batch may take at most 32768 (half the ring, at most 2Gi); use a ring of at "
                 "least 128Ki or lower those limits");
}

/* spec.limits.maxBodyMemory: request bodies held in memory over all ingress loops. */
static void test_body_memory(void)
{
    rc_config_t c;
    ASSERT_EQ(rc_config_init_default(&c), 0);
    ASSERT_U64_EQ(c.limits.max_body_memory, 256ull << 20);
    rc_config_close(&c);
    static const char yaml[] = SETTINGS "spec:\n  limits:\n    maxBodyMemory: 64Mi\n";
    int rc = rc_config_load_string(&c, "t.yaml", yaml, strlen(yaml), err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("%s", err);
    ASSERT_U64_EQ(c.limits.max_body_memory, 64ull << 20);
    rc_config_close(&c);
    expect_error(SETTINGS "spec:\n  limits:\n    maxBodyMemory: 100\n",
                 "t.yaml:5: 'spec.limits.maxBodyMemory' must be between 1024 and 1099511627776 "
                 "bytes, not 100");
    /* Less than the largest body allowed: such a request could never be read. */
    expect_error(SETTINGS "spec:\n  ring: {size: 64Mi}\n  limits:\n    maxBatchBytes: 8Mi\n"
                          "    maxBodyMemory: 4Mi\n",
                 "t.yaml:1: 'spec.limits.maxBodyMemory' (4194304) is smaller than "
                 "'spec.limits.maxBatchBytes' (8388608)");
}

int main(void)
{
    test_defaults();
    test_full();
    test_files();
    test_values();
    test_errors();
    test_log_format();
    test_uri_errors();
    test_uri_parse();
    test_ring_limits();
    test_body_memory();
    printf("ok\n");
    return 0;
}
