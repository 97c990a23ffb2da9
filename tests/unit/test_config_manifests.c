/* Unit test of core/config with manifests as users keep them for a cluster (issue 14, item 4):
 * Kubernetes kinds kept beside are skipped with one info note each while other unknown kinds
 * still fail; a Service's targetPort (a number; a named one is refused); the warnings for fields
 * ringcast cannot honour, with their exact text; deadLetterSink.ref to a Service (Broker and
 * Trigger, with and without a path) and to one that does not exist; ringcast.dev/ annotations
 * ringcast does not read; a directory and an unreadable file given as the config. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/errors.h"
#include "tests/test.h"

#define BROKER "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default}\n"
#define SVC(name, ports)                                                                           \
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: " name "}\nspec:\n  ports: " ports "\n"
#define TRIGGER_REF(name, svc)                                                                     \
    "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: " name "}\n"        \
    "spec:\n  broker: default\n  subscriber: {ref: {apiVersion: v1, kind: Service, name: " svc     \
    "}}\n"

static char err[RC_CONFIG_ERR_MAX];

static void load_ok(rc_config_t *c, const char *yaml)
{
    if (rc_config_load_string(c, "t.yaml", yaml, strlen(yaml), err, sizeof(err)) != 0)
        RC_TEST_FAIL("rejected: %s\n%s", err, yaml);
}

static void expect_error(const char *yaml, const char *message)
{
    rc_config_t c;
    int rc = rc_config_load_string(&c, "t.yaml", yaml, strlen(yaml), err, sizeof(err));
    if (rc == 0)
        RC_TEST_FAIL("accepted, expected \"%s\":\n%s", message, yaml);
    ASSERT_EQ(rc, RC_ECONFIG);
    ASSERT_STR_EQ(err, message);
    ASSERT(c.note_count == 0 && c.notes == NULL && c.broker_count == 0);
}

static void test_skipped_kinds(void)
{
    static const char y[] =
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n"                /* 1 */
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x, namespace: shop}\n" /* 5 */
        "spec: {replicas: 2, template: {spec: {containers: [{name: c, image: i}]}}}\n---\n"
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: ksvc}\n" /* 10 */
        "spec: {template: {spec: {containers: [{image: i}]}}}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: b}\n---\n" /* 15 */
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\n"                   /* 20 */
        "apiVersion: v1\nkind: ServiceAccount\n---\n"                                /* 24 */
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: ss}\n---\n"        /* 27 */
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ds}\n---\n" BROKER;  /* 31 */
    static const char *want[] = {
        "t.yaml:1: skipping v1 Namespace shop: not a ringcast kind",
        "t.yaml:5: skipping apps/v1 Deployment shop/x: not a ringcast kind",
        "t.yaml:10: skipping serving.knative.dev/v1 Service default/ksvc: not a ringcast kind",
        "t.yaml:15: skipping v1 ConfigMap default/cm: not a ringcast kind",
        "t.yaml:20: skipping v1 Secret default/s: not a ringcast kind",
        "t.yaml:24: skipping v1 ServiceAccount default/(no name): not a ringcast kind",
        "t.yaml:27: skipping apps/v1 StatefulSet default/ss: not a ringcast kind",
        "t.yaml:31: skipping apps/v1 DaemonSet default/ds: not a ringcast kind",
    };
    rc_config_t c;
    load_ok(&c, y);
    ASSERT_EQ(c.note_count, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < c.note_count; i++) {
        ASSERT_EQ(c.notes[i].level, RC_CONFIG_NOTE_INFO);
        ASSERT_STR_EQ(c.notes[i].text, want[i]);
        ASSERT_STR_EQ(c.notes[i].text + c.notes[i].msg, strchr(want[i], ' ') + 1);
    }
    ASSERT_EQ(c.broker_count, 1);
    ASSERT_EQ(c.service_count, 0); /* the Knative Service is not a local subscriber */
    rc_config_close(&c);
    ASSERT(c.notes == NULL && c.note_count == 0);

    /* Kinds not on the list, and listed kinds under another apiVersion, still fail. */
    expect_error("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
                 "t.yaml:2: unknown kind 'Pod' (known: Broker and Trigger in "
                 "eventing.knative.dev/v1, Service in v1, RingcastConfig and DaprApp in "
                 "ringcast.dev/v1alpha1, Component in dapr.io/v1alpha1, Subscription in "
                 "dapr.io/v2alpha1 or v1alpha1)");
    expect_error("apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: d}\n",
                 "t.yaml:2: unknown kind 'Deployment' (known: Broker and Trigger in "
                 "eventing.knative.dev/v1, Service in v1, RingcastConfig and DaprApp in "
                 "ringcast.dev/v1alpha1, Component in dapr.io/v1alpha1, Subscription in "
                 "dapr.io/v2alpha1 or v1alpha1)");
    expect_error("apiVersion: serving.knative.dev/v2\nkind: Service\nmetadata: {name: d}\n",
                 "t.yaml:1: Service must have apiVersion v1, not 'serving.knative.dev/v2'");
    /* A skipped document does not hide an error after it (nor its notes survive it). */
    expect_error("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n" BROKER
                 "spec: {bogus: 1}\n",
                 "t.yaml:8: unknown field 'spec.bogus'");
    /* A ref to a Knative Service (skipped) does not resolve: there is no port to send to. */
    expect_error("apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: k}\n"
                 "---\n" BROKER TRIGGER_REF("t", "k"),
                 "t.yaml:14: Trigger default/t: 'spec.subscriber.ref' names Service 'k', which "
                 "is not defined in namespace default");
}

static void test_target_port(void)
{
    rc_config_t c;
    load_ok(&c, BROKER SVC("a", "[{port: 80, targetPort: 8080, protocol: TCP, name: http}]")
                    SVC("b", "[{port: 81}]") TRIGGER_REF("ta", "a") TRIGGER_REF("tb", "b"));
    ASSERT_EQ(c.note_count, 0);
    ASSERT_EQ(c.services[0].port, 80);
    ASSERT_EQ(c.services[0].target_port, 8080);
    ASSERT_EQ(rc_config_service_port(&c.services[0]), 8080);
    ASSERT_EQ(c.services[1].target_port, 0);
    ASSERT_STR_EQ(rc_config_find_trigger(&c, "default", "ta")->subscriber_uri,
                  "http://127.0.0.1:8080/");
    ASSERT_STR_EQ(rc_config_find_trigger(&c, "default", "tb")->subscriber_uri,
                  "http://127.0.0.1:81/");
    rc_config_close(&c);

    expect_error(BROKER SVC("a", "[{port: 80, targetPort: http}]"),
                 "t.yaml:9: Service default/a: 'spec.ports[0].targetPort' is the named port "
                 "'http': ringcast cannot look up a container's port names; give the port number "
                 "the subscriber listens on");
    expect_error(BROKER SVC("a", "[{port: 80, targetPort: 70000}]"),
                 "t.yaml:9: Service default/a: 'spec.ports[0].targetPort' must be an integer "
                 "from 1 to 65535, not '70000'");
    expect_error(BROKER SVC("a", "[{port: 80, targetPort: 0}]"),
                 "t.yaml:9: Service default/a: 'spec.ports[0].targetPort' must be an integer "
                 "from 1 to 65535, not '0'");
    expect_error(BROKER SVC("a", "[{port: 80, protocol: UDP}]"),
                 "t.yaml:9: Service default/a: 'spec.ports[0].protocol' must be TCP (events go "
                 "over HTTP), not 'UDP'");
    expect_error(BROKER SVC("a", "[{port: 80, bogus: 1}]"),
                 "t.yaml:9: Service default/a: unknown field 'spec.ports[0].bogus'");
    expect_error(BROKER SVC("a", "[{targetPort: 80}]"),
                 "t.yaml:9: Service default/a: 'spec.ports[0]' must be a mapping with 'port'");
    expect_error(BROKER "---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n"
                        "spec: {ports: [{port: 80}]}\nbogus: 1\n",
                 "t.yaml:9: Service default/a: unknown field 'bogus'");
}

#define SVC_EP(name, eps)                                                                          \
    "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: " name "\n  annotations:\n"            \
    "    ringcast.dev/endpoints: " eps "\nspec:\n  ports: [{port: 80}]\n"

/* A Service's ringcast.dev/endpoints: the replicas of a Trigger's subscriber (issue 15, item 1). */
static void test_endpoints(void)
{
    rc_config_t c;
    load_ok(&c, BROKER SVC_EP("a", "\"127.0.0.1:9001, http://localhost:9002/,[::1]:9003\"")
                    TRIGGER_REF("ta", "a") TRIGGER_REF("tb", "a"));
    const rc_config_service_t *s = &c.services[0];
    ASSERT_EQ(s->endpoint_count, 3);
    ASSERT_STR_EQ(s->endpoints[0], "http://127.0.0.1:9001");
    ASSERT_STR_EQ(s->endpoints[1], "http://localhost:9002");
    ASSERT_STR_EQ(s->endpoints[2], "http://[::1]:9003");
    const rc_config_trigger_t *t = rc_config_find_trigger(&c, "default", "ta");
    ASSERT_EQ(t->endpoint_count, 3);
    ASSERT(t->endpoints == s->endpoints);
    ASSERT_STR_EQ(t->subscriber_uri, "http://127.0.0.1:80/");
    rc_config_close(&c);

    /* Line 10: the annotation's value. */
    expect_error(BROKER SVC_EP("a", "\"127.0.0.1\""),
                 "t.yaml:10: Service default/a: ringcast.dev/endpoints: '127.0.0.1' is not "
                 "HOST:PORT (a port from 1 to 65535)");
    expect_error(BROKER SVC_EP("a", "\"h:0\""),
                 "t.yaml:10: Service default/a: ringcast.dev/endpoints: 'h:0' is not HOST:PORT "
                 "(a port from 1 to 65535)");
    expect_error(BROKER SVC_EP("a", "\"h:99999\""),
                 "t.yaml:10: Service default/a: ringcast.dev/endpoints: 'h:99999' is not "
                 "HOST:PORT (a port from 1 to 65535)");
    expect_error(BROKER SVC_EP("a", "\"https://h:1\""),
                 "t.yaml:10: Service default/a: ringcast.dev/endpoints: 'https://h:1': only "
                 "http:// is supported");
    expect_error(BROKER SVC_EP("a", "\"h:1/x\""),
                 "t.yaml:10: Service default/a: ringcast.dev/endpoints: 'h:1/x' has a path: an "
                 "endpoint is HOST:PORT (the path is the Trigger's spec.subscriber.uri)");
    expect_error(BROKER SVC_EP("a", "\"h:1, http://h:1\""),
                 "t.yaml:10: Service default/a: ringcast.dev/endpoints: h:1 is listed twice");
    expect_error(BROKER SVC_EP("a", "\" , \""),
                 "t.yaml:10: Service default/a: ringcast.dev/endpoints is empty (give "
                 "HOST:PORT, ...)");
    expect_error(BROKER SVC_EP("a", "\"h_1:1\""),
                 "t.yaml:10: Service default/a: ringcast.dev/endpoints: 'h_1:1' is not "
                 "HOST:PORT (a port from 1 to 65535)");
    expect_error(BROKER SVC_EP("a", "[a, b]"),
                 "t.yaml:10: Service default/a: 'metadata.annotations.ringcast.dev/endpoints' "
                 "must be a string");
    expect_error(BROKER "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\n"
                        "  annotations: {ringcast.dev/endpoint: \"h:1\"}\n"
                        "spec: {ports: [{port: 80}]}\n",
                 "t.yaml:9: Service default/a: unknown annotation 'ringcast.dev/endpoint' (a "
                 "Service's is ringcast.dev/endpoints)");
    char many[2048] = "\"";
    for (int i = 0; i <= 64; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "h:%d,", 1000 + i);
    strcat(many, "\"");
    char y[4096];
    snprintf(y, sizeof(y),
             BROKER "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  annotations:\n"
                    "    ringcast.dev/endpoints: %s\nspec:\n  ports: [{port: 80}]\n",
             many);
    expect_error(y, "t.yaml:10: Service default/a: ringcast.dev/endpoints: more than 64 "
                    "endpoints");
}

static void test_warnings(void)
{
    rc_config_t c;
    load_ok(&c, BROKER "spec:\n  config: {apiVersion: v1, kind: ConfigMap, name: br}\n"
                       "---\napiVersion: v1\nkind: Service\nmetadata: {name: a, labels: {app: a}}\n"
                       "spec:\n  type: ClusterIP\n  selector: {app: a}\n"
                       "  ports: [{port: 80, targetPort: 8080, nodePort: 30080}, {port: 443}]\n"
                       "status: {loadBalancer: {}}\n");
    ASSERT_EQ(c.note_count, 2);
    ASSERT_EQ(c.notes[0].level, RC_CONFIG_NOTE_WARN);
    ASSERT_STR_EQ(c.notes[0].text,
                  "t.yaml:5: Broker default/default: 'spec.config' ignored: ringcast has one "
                  "broker class, set up by the RingcastConfig document");
    ASSERT_EQ(c.notes[1].level, RC_CONFIG_NOTE_WARN);
    ASSERT_STR_EQ(c.notes[1].text,
                  "t.yaml:7: Service default/a: spec.type, spec.selector, spec.ports[0].nodePort, "
                  "spec.ports[1:] ignored: ringcast sends this Service's events to "
                  "127.0.0.1:8080");
    ASSERT_EQ(c.notes[1].msg, strlen("t.yaml:7: "));
    rc_config_close(&c);

    /* Labels, other tools' annotations and status are no warning. */
    load_ok(
        &c,
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n"
        "  labels: {a: b}\n  annotations: {eventing.knative.dev/broker.class: MT}\n"
        "status: {ready: true}\n" SVC(
            "a",
            "[{port: 80}]") "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
                            "metadata: {name: t, annotations: {kubectl.kubernetes.io/x: y}}\n"
                            "spec: {broker: default, subscriber: {uri: http://127.0.0.1:9/}}\n");
    ASSERT_EQ(c.note_count, 0);
    rc_config_close(&c);
}

static void test_dead_letter_ref(void)
{
    rc_config_t c;
    load_ok(&c,
            "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default}\n"
            "spec:\n  delivery:\n    deadLetterSink:\n"
            "      ref: {apiVersion: v1, kind: Service, name: dead, namespace: default}\n"
            "      uri: /broker-dead\n" SVC(
                "dead",
                "[{port: 80, targetPort: 9090}]") "---\napiVersion: eventing.knative.dev/v1\nkind: "
                                                  "Trigger\nmetadata: {name: t}\n"
                                                  "spec:\n  broker: default\n  subscriber: {uri: "
                                                  "http://127.0.0.1:9/}\n"
                                                  "  delivery: {deadLetterSink: {ref: {apiVersion: "
                                                  "serving.knative.dev/v1, "
                                                  "kind: Service, name: dead2}}}\n" SVC(
                                                      "dead2", "[{port: 7070}]"));
    ASSERT_STR_EQ(c.brokers[0].delivery.dead_letter_uri, "http://127.0.0.1:9090/broker-dead");
    ASSERT_STR_EQ(c.brokers[0].delivery.dead_letter_ref, "dead");
    ASSERT_EQ(c.brokers[0].delivery.dead_letter_line, 7);
    const rc_config_trigger_t *t = rc_config_find_trigger(&c, "default", "t");
    ASSERT_STR_EQ(t->delivery.dead_letter_uri, "http://127.0.0.1:7070/");
    rc_config_close(&c);

    expect_error(BROKER "spec:\n  delivery:\n    deadLetterSink:\n"
                        "      ref: {apiVersion: v1, kind: Service, name: nosuch}\n",
                 "t.yaml:7: Broker default/default: 'spec.delivery.deadLetterSink.ref' names "
                 "Service 'nosuch', which is not defined in namespace default");
    expect_error(BROKER "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
                        "metadata: {name: t}\nspec:\n  broker: default\n"
                        "  subscriber: {uri: http://127.0.0.1:9/}\n"
                        "  delivery:\n    deadLetterSink: {ref: {kind: Service, name: nosuch}}\n",
                 "t.yaml:12: Trigger default/t: 'spec.delivery.deadLetterSink.ref' names "
                 "Service 'nosuch', which is not defined in namespace default");
    expect_error(BROKER
                 "spec:\n  delivery:\n    deadLetterSink:\n"
                 "      ref: {kind: Service, name: d, namespace: other}\n" SVC("d", "[{port: 80}]"),
                 "t.yaml:7: Broker default/default: 'spec.delivery.deadLetterSink.ref.namespace' "
                 "must be its own (default)");
    expect_error(BROKER "spec:\n  delivery:\n    deadLetterSink:\n"
                        "      ref: {kind: Deployment, name: d}\n",
                 "t.yaml:7: 'spec.delivery.deadLetterSink.ref.kind' must be Service (the only "
                 "kind ringcast resolves), not 'Deployment'");
    expect_error(BROKER "spec:\n  delivery:\n    deadLetterSink:\n"
                        "      ref: {kind: Service}\n",
                 "t.yaml:7: 'spec.delivery.deadLetterSink.ref' has no name");
    expect_error(BROKER "spec:\n  delivery:\n    deadLetterSink:\n"
                        "      ref: {kind: Service, name: d}\n      uri: http://x/\n",
                 "t.yaml:8: with spec.delivery.deadLetterSink.ref, "
                 "'spec.delivery.deadLetterSink.uri' must be a path starting with '/', not "
                 "'http://x/'");
    expect_error(BROKER "spec:\n  delivery:\n    deadLetterSink: {}\n",
                 "t.yaml:6: 'spec.delivery.deadLetterSink' needs uri or ref");
}

/* The annotations ringcast reads, as the unknown-annotation message lists them. */
#define READS                                                                                      \
    "ringcast.dev/max-inflight, ringcast.dev/rate-limit, ringcast.dev/lag-limit, "                 \
    "ringcast.dev/lag-policy and ringcast.dev/start-from on a Trigger, ringcast.dev/storage-type, " \
    "-directory, -durability, -flush-interval, ringcast.dev/dedup-window and -capacity on a "      \
    "Broker, ringcast.dev/endpoints on a Service"

/* A trigger with ringcast.dev/rate-limit: `v` (a YAML scalar as written), then the broker. */
static const char *rate_trigger(const char *v)
{
    static char buf[512];
    snprintf(buf, sizeof(buf),
             "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n"
             "  annotations: {ringcast.dev/rate-limit: %s}\n"
             "spec: {broker: default, subscriber: {uri: http://127.0.0.1:9/}}\n---\n" BROKER,
             v);
    return buf;
}

/* ringcast.dev/rate-limit: events per second, at most 3 decimals, 0.001 to 1000000. */
static void test_rate_limit(void)
{
    static const struct {
        const char *v;
        uint64_t milli;
    } good[] = {{"\"500\"", 500000},
                {"\"0.5\"", 500},
                {"\"12.25\"", 12250},
                {"\"0.001\"", 1},
                {"\"007\"", 7000},
                {"\"1000000\"", 1000000000},
                {"\"999999.999\"", 999999999},
                {"200", 200000}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        rc_config_t c;
        load_ok(&c, rate_trigger(good[i].v));
        ASSERT_EQ(c.triggers[0].rate_milli, good[i].milli);
        rc_config_close(&c);
    }
    rc_config_t c;
    load_ok(&c, BROKER "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n"
                       "  name: t\nspec: {broker: default, subscriber: {uri: http://x:9/}}\n");
    ASSERT_EQ(c.triggers[0].rate_milli, 0); /* none */
    rc_config_close(&c);
    static const char *const bad[] = {
        "\"0\"",     "\"0.0\"", "\"0.0004\"",      "\"-5\"",      "\"+5\"",
        "\"1e3\"",   "\"1.\"",  "\".5\"",          "\"\"",        "\" 5\"",
        "\"5 \"",    "\"5/s\"", "\"1000000.001\"", "\"2000000\"", "\"99999999999999999999999\"",
        "\"1.2.3\"", "\"1,5\"", "\"0x10\"",        "\"1.2345\"",  "[1]",
        "{a: 1}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[256];
        const char *v = bad[i];
        char shown[64];
        if (v[0] == '"') {
            snprintf(shown, sizeof(shown), "%.*s", (int)strlen(v) - 2, v + 1);
        } else {
            snprintf(shown, sizeof(shown), "(not a scalar)");
        }
        snprintf(want, sizeof(want),
                 "t.yaml:5: Trigger default/t: 'metadata.annotations.ringcast.dev/rate-limit' "
                 "must be a number of events per second from 0.001 to 1000000 (at most 3 "
                 "decimals), not '%s'",
                 shown);
        expect_error(rate_trigger(v), want);
    }
}

static void test_annotations(void)
{
    expect_error("apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n"
                 "  annotations: {ringcast.dev/rate-limits: \"5\"}\n"
                 "spec: {broker: default, subscriber: {uri: http://127.0.0.1:9/}}\n"
                 "---\n" BROKER,
                 "t.yaml:5: Trigger default/t: unknown annotation 'ringcast.dev/rate-limits': "
                 "ringcast reads " READS);
    /* Near misses of the lag annotations were once taken as "not a lag annotation" and
     * ignored. */
    expect_error("apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n"
                 "  annotations: {ringcast.dev/lag-limits: \"10%\"}\n"
                 "spec: {broker: default, subscriber: {uri: http://127.0.0.1:9/}}\n"
                 "---\n" BROKER,
                 "t.yaml:5: Trigger default/t: unknown annotation 'ringcast.dev/lag-limits': "
                 "ringcast reads " READS);
    expect_error("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: b\n"
                 "  annotations:\n    other/x: y\n    ringcast.dev/max-inflight: \"5\"\n",
                 "t.yaml:7: Broker default/b: unknown annotation 'ringcast.dev/max-inflight': "
                 "ringcast reads " READS);
    rc_config_t c;
    load_ok(&c, BROKER "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n"
                       "  name: t\n  annotations: {ringcast.dev/max-inflight: \"3\", "
                       "ringcast.dev/lag-limit: \"10%\", ringcast.dev/lag-policy: block}\n"
                       "spec: {broker: default, subscriber: {uri: http://127.0.0.1:9/}}\n");
    ASSERT_EQ(c.triggers[0].max_inflight, 3);
    ASSERT_EQ(c.triggers[0].lag.permille, 100);
    ASSERT_EQ(c.triggers[0].lag.policy, RC_LAG_BLOCK);
    rc_config_close(&c);
}

static void test_files(void)
{
    char dir[] = "/tmp/rc-cfg-XXXXXX";
    ASSERT(mkdtemp(dir) != NULL);
    rc_config_t c;
    int rc = rc_config_load_file(&c, dir, err, sizeof(err));
    ASSERT_EQ(rc, -EISDIR);
    char want[128];
    snprintf(want, sizeof(want), "%s is a directory, not a config file", dir);
    ASSERT_STR_EQ(err, want);
    char path[64];
    snprintf(path, sizeof(path), "%s/missing.yaml", dir);
    ASSERT_EQ(rc_config_load_file(&c, path, err, sizeof(err)), -ENOENT);
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
    ASSERT_STR_EQ(err, want);
    if (geteuid() != 0) { /* root reads a mode-000 file anyway */
        FILE *f = fopen(path, "w");
        ASSERT(f != NULL);
        fputs(BROKER, f);
        fclose(f);
        ASSERT_EQ(chmod(path, 0), 0);
        ASSERT_EQ(rc_config_load_file(&c, path, err, sizeof(err)), -EACCES);
        snprintf(want, sizeof(want), "%s: cannot open: Permission denied", path);
        ASSERT_STR_EQ(err, want);
    }
    unlink(path);
    ASSERT_EQ(rmdir(dir), 0);
}

int main(void)
{
    test_skipped_kinds();
    test_target_port();
    test_endpoints();
    test_warnings();
    test_dead_letter_ref();
    test_annotations();
    test_rate_limit();
    test_files();
    printf("test_config_manifests: ok\n");
    return 0;
}
