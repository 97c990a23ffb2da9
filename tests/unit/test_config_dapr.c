/* Unit test of the Dapr kinds of the config loader (core/config_dapr.c): the exact shapes of
 * issue 12, both Subscription versions, scopes, consumerID, dead-letter topics, bulkSubscribe,
 * rawPayload, the internal triggers they become, programmatic subscriptions, spec.dapr.listen,
 * and every bad input with its exact message (file, line, kind, object and field). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/errors.h"
#include "core/filter.h"
#include "tests/test.h"

static char err[RC_CONFIG_ERR_MAX];

/* Allocation failures: the test is linked with --wrap for the allocators the loader calls, so
 * that test_alloc_failures can make the n-th one fail and ASan can check that nothing leaks on
 * any of those paths. */
static long alloc_budget = -1; /* allocations left before one fails; -1: never fails */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static int alloc_fails(void)
{
    if (alloc_budget < 0)
        return 0;
    return alloc_budget-- == 0;
}

void *__wrap_malloc(size_t n)
{
    return alloc_fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return alloc_fails() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return alloc_fails() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return alloc_fails() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return alloc_fails() ? NULL : __real_strndup(s, n);
}

/* The block of issue 12, "Configuration", as users write it. */
static const char issue_block[] =
    "apiVersion: dapr.io/v1alpha1\n"
    "kind: Component\n"
    "metadata: {name: pubsub, namespace: default}\n"
    "spec:\n"
    "  type: pubsub.ringcast\n"
    "  version: v1\n"
    "  metadata:\n"
    "  - {name: broker, value: default}        # the ringcast Broker holding this pubsub's "
    "topics\n"
    "---\n"
    "apiVersion: ringcast.dev/v1alpha1\n"
    "kind: DaprApp                             # what `dapr run --app-id --app-port` tells a "
    "sidecar\n"
    "metadata: {name: checkout, namespace: default}       # the app id\n"
    "spec:\n"
    "  endpoints: [\"http://127.0.0.1:3001\", \"http://127.0.0.1:3002\"]   # its replicas\n"
    "  maxConcurrency: 100                     # Dapr's app-max-concurrency, per replica "
    "(optional)\n"
    "---\n"
    "apiVersion: dapr.io/v2alpha1              # v1alpha1 (single `route`) too\n"
    "kind: Subscription\n"
    "metadata: {name: orders, namespace: default}\n"
    "spec:\n"
    "  pubsubname: pubsub\n"
    "  topic: orders\n"
    "  routes:\n"
    "    rules: [{match: 'event.type == \"order.priority\"', path: /priority}]\n"
    "    default: /orders\n"
    "  deadLetterTopic: orders-dead\n"
    "scopes: [checkout]\n";

/* Lines 1-6: a Component; 7-12: a DaprApp; from 13: a Subscription whose spec is open at 17. */
#define COMP                                                                                       \
    "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\nspec:\n"             \
    "  type: pubsub.ringcast\n  version: v1\n"
#define APP                                                                                        \
    "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata: {name: checkout}\nspec:\n"   \
    "  endpoints: [\"http://127.0.0.1:3001\"]\n"
#define SUB_V2                                                                                     \
    "---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: orders}\nspec:\n"
#define SUB_V1                                                                                     \
    "---\napiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata: {name: orders}\nspec:\n"
/* Lines 18-19 under SUB_V2 / SUB_V1. */
#define PS_TOPIC "  pubsubname: pubsub\n  topic: orders\n"

static void load_ok(rc_config_t *c, const char *yaml)
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
        RC_TEST_FAIL("for:\n%s\ngot      \"%s\"\nexpected \"%s\"", yaml, err, message);
    /* nothing half-loaded */
    ASSERT(c.pubsubs == NULL && c.dapr_apps == NULL && c.dapr_subs == NULL);
    ASSERT(c.triggers == NULL && c.trigger_count == 0 && c.dapr_sub_count == 0);
    rc_config_close(&c);
}

static const rc_config_trigger_t *dapr_trigger(const rc_config_t *c, const rc_config_dapr_sub_t *s)
{
    for (size_t i = 0; i < c->trigger_count; i++) {
        if (c->triggers[i].dapr == s)
            return &c->triggers[i];
    }
    RC_TEST_FAIL("subscription %s/%s of app %s has no trigger", s->pubsub, s->topic, s->app->name);
}

/* What every internal trigger must be, whatever the subscription. */
static void check_triggers(const rc_config_t *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->trigger_count; i++) {
        const rc_config_trigger_t *t = &c->triggers[i];
        if (t->dapr == NULL)
            continue;
        n++;
        char f[512], want[512];
        ASSERT(strchr(t->name, ':') != NULL || strchr(t->name, '~') != NULL);
        ASSERT_LE(strlen(t->name), RC_CONFIG_NAME_MAX);
        ASSERT_STR_EQ(t->ns, t->dapr->ns);
        ASSERT_STR_EQ(t->subscriber_uri, t->dapr->app->endpoints[0]);
        ASSERT_EQ(t->delivery.retry, -1);
        ASSERT(t->delivery.backoff_delay == NULL && t->delivery.dead_letter_uri == NULL);
        ASSERT(t->service_ref == NULL);
        ASSERT(t->filter != NULL);
        rc_filter_format(t->filter, f, sizeof(f));
        rc_filter_t *w = NULL;
        rc_filter_error_t e;
        ASSERT_EQ(rc_filter_create(&w), 0);
        ASSERT_EQ(rc_filter_add_attribute(w, (rc_str_t){"topic", 5},
                                          (rc_str_t){t->dapr->topic, strlen(t->dapr->topic)}, 1,
                                          &e),
                  0);
        ASSERT_EQ(rc_filter_finish(w, &e), 0);
        rc_filter_format(w, want, sizeof(want));
        rc_filter_destroy(w);
        ASSERT_STR_EQ(f, want);
        const rc_config_pubsub_t *p =
            rc_config_find_pubsub(c, t->dapr->pubsub, strlen(t->dapr->pubsub));
        ASSERT(p != NULL);
        ASSERT_STR_EQ(t->broker, p->broker);
        ASSERT_STR_EQ(t->dapr->group, p->consumer_id[0] ? p->consumer_id : t->dapr->app->name);
    }
    ASSERT_EQ(n, c->dapr_sub_count);
}

static void test_issue_block(void)
{
    rc_config_t c;
    load_ok(&c, issue_block);
    ASSERT_EQ(c.pubsub_count, 1);
    const rc_config_pubsub_t *p = rc_config_find_pubsub(&c, "pubsub", 6);
    ASSERT(p == &c.pubsubs[0]);
    ASSERT(rc_config_find_pubsub(&c, "pubsu", 5) == NULL);
    ASSERT_STR_EQ(p->ns, "default");
    ASSERT_STR_EQ(p->broker, "default");
    ASSERT_STR_EQ(p->consumer_id, "");
    ASSERT_EQ(p->line, 1);
    ASSERT_EQ(c.dapr_app_count, 1);
    const rc_config_dapr_app_t *a = rc_config_find_dapr_app(&c, "default", "checkout");
    ASSERT(a == &c.dapr_apps[0]);
    ASSERT(rc_config_find_dapr_app(&c, "other", "checkout") == NULL);
    ASSERT_EQ(a->endpoint_count, 2);
    ASSERT_STR_EQ(a->endpoints[0], "http://127.0.0.1:3001");
    ASSERT_STR_EQ(a->endpoints[1], "http://127.0.0.1:3002");
    ASSERT_EQ(a->max_concurrency, 100);
    ASSERT_EQ(a->line, 10);
    ASSERT_EQ(c.dapr_sub_count, 1);
    const rc_config_dapr_sub_t *s = c.dapr_subs[0];
    ASSERT_STR_EQ(s->ns, "default");
    ASSERT_STR_EQ(s->name, "orders");
    ASSERT_STR_EQ(s->pubsub, "pubsub");
    ASSERT_STR_EQ(s->topic, "orders");
    ASSERT(s->app == a);
    ASSERT_STR_EQ(s->group, "checkout");
    ASSERT_EQ(s->rule_count, 1);
    ASSERT_STR_EQ(s->rules[0].match, "event.type == \"order.priority\"");
    ASSERT(s->rules[0].cel != NULL);
    ASSERT_STR_EQ(s->rules[0].path, "/priority");
    ASSERT_EQ(s->rules[0].line, 24);
    ASSERT_STR_EQ(s->default_path, "/orders");
    ASSERT_STR_EQ(s->dead_letter_topic, "orders-dead");
    ASSERT_EQ(s->raw_payload, 0);
    ASSERT_EQ(s->bulk, 0);
    ASSERT_EQ(s->bulk_max_messages, 100);
    ASSERT_EQ(s->bulk_max_await_ms, 1000);
    ASSERT_EQ(s->programmatic, 0);
    ASSERT_EQ(s->line, 17);
    /* Its trigger: on the default broker, beside the Knative ones. */
    ASSERT_EQ(c.trigger_count, 1);
    const rc_config_trigger_t *t = rc_config_find_trigger(&c, "default", "checkout:orders");
    ASSERT(t != NULL && t->dapr == s);
    ASSERT(t == dapr_trigger(&c, s));
    ASSERT_STR_EQ(t->broker, "default");
    ASSERT_STR_EQ(t->subscriber_uri, "http://127.0.0.1:3001");
    ASSERT_EQ(t->max_inflight, 200); /* maxConcurrency 100 x 2 replicas */
    ASSERT_EQ(t->line, 17);
    ASSERT_EQ(t->lag.line, 0);
    check_triggers(&c);
    ASSERT_EQ(c.dapr_port, 0);
    rc_config_close(&c);
    ASSERT(c.pubsubs == NULL && c.dapr_apps == NULL && c.dapr_subs == NULL);
    rc_config_close(&c); /* twice is harmless */
}

/* Documents in any order; v1alpha1 with `route`; a Knative Trigger on the same topic; several
 * apps (no scopes: all of the namespace), several brokers and namespaces; consumerID; every
 * optional field. */
static void test_shapes(void)
{
    static const char y[] =
        "apiVersion: dapr.io/v1alpha1\nkind: Subscription\n"
        "metadata: {name: pay, namespace: shop}\n"
        "spec:\n  pubsubname: shop-bus\n  topic: payments/eu\n  route: /pay\n"
        "  deadLetterTopic: payments-dead\n"
        "  bulkSubscribe: {enabled: true, maxMessagesCount: 50, maxAwaitDurationMs: 200}\n"
        "  metadata: {rawPayload: \"true\"}\n"
        "---\n"
        "apiVersion: dapr.io/v2alpha1\nkind: Subscription\n"
        "metadata: {name: all, namespace: shop}\n"
        "spec:\n  pubsubname: shop-bus\n  topic: audit\n"
        "  routes:\n    rules:\n    - {match: 'event.data.n > 1', path: /big}\n"
        "    - {path: /rest}\n"
        "  bulkSubscribe: {enabled: false}\n"
        "  metadata: {rawPayload: \"false\"}\n"
        "scopes: []\n"
        "---\n"
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: shop-bus, namespace: "
        "shop}\n"
        "spec:\n  type: pubsub.ringcast\n  version: v1\n  metadata:\n"
        "  - name: broker\n    value: orders\n  - {name: consumerID, value: shop-group}\n"
        "scopes: [billing]\n"
        "---\n"
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: orders, namespace: "
        "shop}\n"
        "---\n"
        "apiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata: {name: billing, namespace: "
        "shop}\n"
        "spec:\n  endpoints: [\"http://127.0.0.1:4001/\", \"http://[::1]:4002\", "
        "\"http://localhost:4001\"]\n"
        "  maxConcurrency: 10000\n"
        "---\n"
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
        "metadata: {name: audit-all, namespace: shop}\n"
        "spec:\n  broker: orders\n  filter: {attributes: {topic: audit}}\n"
        "  subscriber: {uri: http://127.0.0.1:5000/}\n"
        "---\n"
        "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\n"
        "spec: {dapr: {listen: 127.0.0.1:3500}}\n";
    rc_config_t c;
    load_ok(&c, y);
    ASSERT_STR_EQ(c.dapr_host, "127.0.0.1");
    ASSERT_EQ(c.dapr_port, 3500);
    ASSERT_EQ(c.dapr_app_count, 1);
    const rc_config_dapr_app_t *a = &c.dapr_apps[0];
    ASSERT_EQ(a->endpoint_count, 3);
    ASSERT_STR_EQ(a->endpoints[0], "http://127.0.0.1:4001"); /* trailing '/' dropped */
    ASSERT_STR_EQ(a->endpoints[1], "http://[::1]:4002");
    ASSERT_STR_EQ(a->endpoints[2], "http://localhost:4001");
    const rc_config_pubsub_t *p = rc_config_find_pubsub(&c, "shop-bus", 8);
    ASSERT(p != NULL);
    ASSERT_STR_EQ(p->broker, "orders");
    ASSERT_STR_EQ(p->consumer_id, "shop-group");
    ASSERT_EQ(c.dapr_sub_count, 2);
    const rc_config_dapr_sub_t *s = c.dapr_subs[0];
    ASSERT_STR_EQ(s->name, "pay");
    ASSERT_STR_EQ(s->topic, "payments/eu");
    ASSERT_EQ(s->rule_count, 0);
    ASSERT_STR_EQ(s->default_path, "/pay");
    ASSERT_STR_EQ(s->dead_letter_topic, "payments-dead");
    ASSERT_EQ(s->bulk, 1);
    ASSERT_EQ(s->bulk_max_messages, 50);
    ASSERT_EQ(s->bulk_max_await_ms, 200);
    ASSERT_EQ(s->raw_payload, 1);
    ASSERT_STR_EQ(s->group, "shop-group");
    const rc_config_trigger_t *t = dapr_trigger(&c, s);
    ASSERT_STR_EQ(t->name, "shop-group:pay");
    ASSERT_STR_EQ(t->ns, "shop");
    ASSERT_STR_EQ(t->broker, "orders");
    ASSERT_EQ(t->max_inflight, RC_CONFIG_MAX_INFLIGHT_MAX); /* 10000 x 3, capped */
    s = c.dapr_subs[1];
    ASSERT_STR_EQ(s->name, "all");
    ASSERT_EQ(s->rule_count, 1);
    ASSERT_STR_EQ(s->rules[0].path, "/big");
    ASSERT_STR_EQ(s->default_path, "/rest"); /* a rule without match is the fallback */
    ASSERT(s->dead_letter_topic == NULL);
    ASSERT_EQ(s->bulk, 0);
    ASSERT_EQ(s->raw_payload, 0);
    ASSERT_STR_EQ(dapr_trigger(&c, s)->name, "shop-group:all");
    /* The Knative trigger and the Dapr ones side by side: each receives every audit event. */
    ASSERT_EQ(c.trigger_count, 3);
    ASSERT(rc_config_find_trigger(&c, "shop", "audit-all")->dapr == NULL);
    check_triggers(&c);
    rc_config_close(&c);
}

/* No scopes: every DaprApp of the namespace, each its own group getting every event; apps of
 * other namespaces are not in it. With scopes: only those. */
static void test_scopes(void)
{
    static const char y[] =
        COMP APP "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata: {name: cart}\n"
                 "spec: {endpoints: [\"http://127.0.0.1:3101\", \"http://127.0.0.1:3102\"]}\n"
                 "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\n"
                 "metadata: {name: elsewhere, namespace: other}\n"
                 "spec: {endpoints: [\"http://127.0.0.1:3201\"]}\n"
                 "---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: orders}\n"
                 "spec: {pubsubname: pubsub, topic: orders, routes: {default: /o}}\n"
                 "---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: carts}\n"
                 "spec: {pubsubname: pubsub, topic: carts, routes: {default: /c}}\n"
                 "scopes: [cart]\n";
    rc_config_t c;
    load_ok(&c, y);
    ASSERT_EQ(c.dapr_sub_count, 3);
    ASSERT_STR_EQ(c.dapr_subs[0]->app->name, "checkout");
    ASSERT_STR_EQ(c.dapr_subs[0]->topic, "orders");
    ASSERT_STR_EQ(c.dapr_subs[1]->app->name, "cart");
    ASSERT_STR_EQ(c.dapr_subs[1]->topic, "orders");
    ASSERT_STR_EQ(c.dapr_subs[2]->app->name, "cart");
    ASSERT_STR_EQ(c.dapr_subs[2]->topic, "carts");
    ASSERT(rc_config_find_trigger(&c, "default", "checkout:orders") != NULL);
    ASSERT(rc_config_find_trigger(&c, "default", "cart:orders") != NULL);
    ASSERT(rc_config_find_trigger(&c, "default", "cart:carts") != NULL);
    ASSERT_EQ(c.trigger_count, 3);
    /* Each subscription owns its program and strings (freed once each by close). */
    ASSERT(c.dapr_subs[0]->default_path != c.dapr_subs[1]->default_path);
    ASSERT_EQ(rc_config_find_trigger(&c, "default", "cart:orders")->max_inflight, 100);
    check_triggers(&c);
    rc_config_close(&c);
}

/* A name longer than a trigger's: cut to 54 bytes + '~' + the FNV-1a hash of the whole. */
static void test_long_names(void)
{
    char group[64], name[64], y[4096], full[160], want[64];
    memset(group, 'g', 63);
    group[63] = '\0';
    memset(name, 's', 63);
    name[63] = '\0';
    snprintf(y, sizeof(y),
             "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\n"
             "spec:\n  type: pubsub.ringcast\n  version: v1\n"
             "  metadata: [{name: consumerID, value: %s}]\n" APP
             "---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: %s}\n"
             "spec: {pubsubname: pubsub, topic: orders, routes: {default: /o}}\n",
             group, name);
    rc_config_t c;
    load_ok(&c, y);
    snprintf(full, sizeof(full), "%s:%s", group, name);
    uint32_t h = 2166136261u;
    for (const char *q = full; *q; q++)
        h = (h ^ (unsigned char)*q) * 16777619u;
    snprintf(want, sizeof(want), "%.54s~%08x", full, h);
    ASSERT_EQ(strlen(want), 63);
    ASSERT_EQ(c.trigger_count, 1);
    ASSERT_STR_EQ(c.triggers[0].name, want);
    check_triggers(&c);
    rc_config_close(&c);
    /* Never cut inside a UTF-8 sequence: 'é' is 2 bytes, the cut falls after 53. */
    snprintf(y, sizeof(y), COMP APP);
    rc_config_t d;
    load_ok(&d, y);
    char topic[64];
    memset(topic, 'a', 37);
    snprintf(topic + 37, sizeof(topic) - 37, "\xc3\xa9zzzzzzzzzzzz");
    rc_config_dapr_sub_spec_t spec = {.pubsub = "pubsub", .topic = topic, .default_path = "/x"};
    ASSERT_EQ(rc_config_add_dapr_subscription(&d, &d.dapr_apps[0], &spec, err, sizeof(err)), 0);
    /* "checkout:pubsub:" is 16 bytes, the topic's 'é' starts at 16 + 37 = 53 */
    snprintf(full, sizeof(full), "checkout:pubsub:%s", topic);
    h = 2166136261u;
    for (const char *q = full; *q; q++)
        h = (h ^ (unsigned char)*q) * 16777619u;
    snprintf(want, sizeof(want), "%.53s~%08x", full, h);
    ASSERT_STR_EQ(d.triggers[0].name, want);
    check_triggers(&d);
    rc_config_close(&d);
}

/* rc_config_add_dapr_subscription: added after the declarative ones, same rules, -EEXIST for
 * the same app, pubsub and topic; every refusal leaves the config as it was. */
static void test_programmatic(void)
{
    rc_config_t c;
    load_ok(&c, issue_block);
    const rc_config_dapr_app_t *a = &c.dapr_apps[0];
    const char *match[] = {"event.type == \"x\"", ""};
    const char *path[] = {"/x", "/fallback"};
    rc_config_dapr_sub_spec_t s = {.pubsub = "pubsub",
                                   .topic = "payments",
                                   .match = match,
                                   .path = path,
                                   .rule_count = 2,
                                   .dead_letter_topic = "payments-dead",
                                   .raw_payload = 1,
                                   .bulk = 1};
    ASSERT_EQ(rc_config_add_dapr_subscription(&c, a, &s, err, sizeof(err)), 0);
    ASSERT_EQ(c.dapr_sub_count, 2);
    ASSERT_EQ(c.trigger_count, 2);
    const rc_config_dapr_sub_t *p = c.dapr_subs[1];
    ASSERT_EQ(p->programmatic, 1);
    ASSERT_STR_EQ(p->name, "");
    ASSERT_STR_EQ(p->ns, "default");
    ASSERT(p->app == a);
    ASSERT_EQ(p->rule_count, 1);
    ASSERT_STR_EQ(p->rules[0].match, "event.type == \"x\"");
    ASSERT_STR_EQ(p->default_path, "/fallback");
    ASSERT_STR_EQ(p->dead_letter_topic, "payments-dead");
    ASSERT_EQ(p->raw_payload, 1);
    ASSERT_EQ(p->bulk, 1);
    ASSERT_EQ(p->bulk_max_messages, 100);
    ASSERT_EQ(p->bulk_max_await_ms, 1000);
    const rc_config_trigger_t *t =
        rc_config_find_trigger(&c, "default", "checkout:pubsub:payments");
    ASSERT(t != NULL && t->dapr == p);
    ASSERT_EQ(t->max_inflight, 200);
    ASSERT_EQ(t->line, 0);
    /* The declarative trigger is still found after the table moved. */
    ASSERT(rc_config_find_trigger(&c, "default", "checkout:orders")->dapr == c.dapr_subs[0]);
    check_triggers(&c);

    /* Same app, pubsub and topic as the Subscription: it wins. */
    rc_config_dapr_sub_spec_t dup = {.pubsub = "pubsub", .topic = "orders", .default_path = "/o"};
    ASSERT_EQ(rc_config_add_dapr_subscription(&c, a, &dup, err, sizeof(err)), -EEXIST);
    ASSERT_STR_EQ(err, "app checkout: subscription to pubsub/orders: app checkout already "
                       "subscribes to pubsub/orders (Subscription default/orders at line 17)");
    s.rule_count = 0;
    s.default_path = "/p";
    ASSERT_EQ(rc_config_add_dapr_subscription(&c, a, &s, err, sizeof(err)), -EEXIST);
    ASSERT_STR_EQ(err, "app checkout: subscription to pubsub/payments: app checkout already "
                       "subscribes to pubsub/payments (programmatically)");

    static const struct {
        rc_config_dapr_sub_spec_t spec;
        const char *msg;
    } bad[] = {
        {{.pubsub = "nope", .topic = "orders", .default_path = "/o"},
         "app checkout: subscription to nope/orders: pubsub 'nope' is not a Component of this "
         "configuration"},
        {{.pubsub = "", .topic = "orders", .default_path = "/o"},
         "app checkout: subscription to /orders: 'pubsubname' is empty"},
        {{.pubsub = "pubsub", .topic = "", .default_path = "/o"},
         "app checkout: subscription to pubsub/: 'topic' is empty"},
        {{.pubsub = "pubsub", .topic = "t\x01", .default_path = "/o"},
         "app checkout: subscription to pubsub/t\x01: 'topic' contains a control character at "
         "offset 1"},
        {{.pubsub = "pubsub", .topic = "t"},
         "app checkout: subscription to pubsub/t: no route (give route, routes.rules or "
         "routes.default)"},
        {{.pubsub = "pubsub", .topic = "t", .default_path = "o"},
         "app checkout: subscription to pubsub/t: 'routes.default' must be a path starting with "
         "'/', not 'o'"},
        {{.pubsub = "pubsub", .topic = "t", .default_path = "/o", .dead_letter_topic = "t"},
         "app checkout: subscription to pubsub/t: 'deadLetterTopic' must differ from 'topic': its "
         "dead letters would come back to it"},
        {{.pubsub = "pubsub", .topic = "t", .default_path = "/o", .bulk_max_messages = 1001},
         "app checkout: subscription to pubsub/t: 'bulkSubscribe.maxMessagesCount' must be from 1 "
         "to 1000, not 1001"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ASSERT_EQ(rc_config_add_dapr_subscription(&c, a, &bad[i].spec, err, sizeof(err)),
                  RC_ECONFIG);
        ASSERT_STR_EQ(err, bad[i].msg);
    }
    const char *bad_match[] = {"event.type.matches(\"x\")"}, *bad_path[] = {"/x"};
    rc_config_dapr_sub_spec_t cel = {
        .pubsub = "pubsub", .topic = "t", .match = bad_match, .path = bad_path, .rule_count = 1};
    ASSERT_EQ(rc_config_add_dapr_subscription(&c, a, &cel, err, sizeof(err)), RC_ECONFIG);
    ASSERT_STR_EQ(err, "app checkout: subscription to pubsub/t: routes.rules[0].match: column "
                       "12: unsupported function 'matches'");
    const char *nopath[] = {NULL};
    cel.match = match;
    cel.path = nopath;
    ASSERT_EQ(rc_config_add_dapr_subscription(&c, a, &cel, err, sizeof(err)), RC_ECONFIG);
    ASSERT_STR_EQ(err, "app checkout: subscription to pubsub/t: 'routes.rules[0].path' is empty");
    const char *m2[] = {"", "event.type == \"y\""}, *p2[] = {"/a", "/b"};
    rc_config_dapr_sub_spec_t unreachable = {
        .pubsub = "pubsub", .topic = "t", .match = m2, .path = p2, .rule_count = 2};
    ASSERT_EQ(rc_config_add_dapr_subscription(&c, a, &unreachable, err, sizeof(err)), RC_ECONFIG);
    ASSERT_STR_EQ(err, "app checkout: subscription to pubsub/t: routes.rules[0] has an empty "
                       "match, so it takes every event and routes.rules[1] would never be used");
    rc_config_dapr_app_t stranger = {.ns = "default", .name = "stranger"};
    ASSERT_EQ(rc_config_add_dapr_subscription(&c, &stranger, &dup, err, sizeof(err)), RC_ECONFIG);
    ASSERT_STR_EQ(err, "app stranger: subscription to pubsub/orders: not a DaprApp of this "
                       "configuration");
    ASSERT_EQ(c.dapr_sub_count, 2);
    ASSERT_EQ(c.trigger_count, 2);
    check_triggers(&c);
    rc_config_close(&c);
}

/* Programmatic subscriptions of two apps that share a group through consumerID, and the same
 * topic on two pubsubs of one app (distinct trigger names). */
static void test_programmatic_groups(void)
{
    static const char y[] =
        COMP "  metadata: [{name: consumerID, value: grp}]\n" APP
             "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata: {name: cart}\n"
             "spec: {endpoints: [\"http://127.0.0.1:3101\"]}\n"
             "---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: second}\n"
             "spec: {type: pubsub.ringcast, version: v1}\n";
    rc_config_t c;
    load_ok(&c, y);
    rc_config_dapr_sub_spec_t s = {.pubsub = "pubsub", .topic = "orders", .default_path = "/o"};
    ASSERT_EQ(rc_config_add_dapr_subscription(&c, &c.dapr_apps[0], &s, err, sizeof(err)), 0);
    ASSERT(rc_config_find_trigger(&c, "default", "grp:pubsub:orders") != NULL);
    ASSERT_EQ(rc_config_add_dapr_subscription(&c, &c.dapr_apps[1], &s, err, sizeof(err)),
              RC_ECONFIG);
    ASSERT_STR_EQ(err, "app cart: subscription to pubsub/orders: apps checkout and cart would "
                       "share consumer group 'grp' (metadata consumerID of Component pubsub) on "
                       "topic orders: not supported, a group delivers to the replicas of one app "
                       "(give each app its own Component or no consumerID)");
    s.pubsub = "second";
    ASSERT_EQ(rc_config_add_dapr_subscription(&c, &c.dapr_apps[0], &s, err, sizeof(err)), 0);
    ASSERT_EQ(rc_config_add_dapr_subscription(&c, &c.dapr_apps[1], &s, err, sizeof(err)), 0);
    ASSERT(rc_config_find_trigger(&c, "default", "checkout:second:orders") != NULL);
    ASSERT(rc_config_find_trigger(&c, "default", "cart:second:orders") != NULL);
    ASSERT_EQ(c.trigger_count, 3);
    check_triggers(&c);
    rc_config_close(&c);
}

static void test_listen(void)
{
    rc_config_t c;
    load_ok(&c, "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\n"
                "spec: {listen: 127.0.0.1:8080, dapr: {listen: \"127.0.0.2:8080\"}}\n");
    ASSERT_STR_EQ(c.dapr_host, "127.0.0.2");
    ASSERT_EQ(c.dapr_port, 8080);
    ASSERT_EQ(c.pubsub_count, 0);
    rc_config_close(&c);
    load_ok(&c, "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\n"
                "spec: {listen: \"[::1]:0\", dapr: {listen: \"[::1]:3500\"}}\n");
    ASSERT_STR_EQ(c.dapr_host, "::1");
    ASSERT_EQ(c.dapr_port, 3500);
    rc_config_close(&c);
}

static const struct {
    const char *yaml;
    const char *msg;
} cases[] = {
    /* ---- Component */
    {"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\nspec:\n"
     "  type: pubsub.redis\n  version: v1\n",
     "t.yaml:5: Component default/pubsub: 'spec.type' must be pubsub.ringcast (the only "
     "component type ringcast provides), not 'pubsub.redis'"},
    {"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\nspec:\n"
     "  type: pubsub.ringcast\n  version: v2\n",
     "t.yaml:6: Component default/pubsub: 'spec.version' must be v1, not 'v2'"},
    {"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\nspec:\n"
     "  type: pubsub.ringcast\n",
     "t.yaml:1: Component default/pubsub has no spec.version (v1)"},
    {"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\nspec:\n"
     "  version: v1\n",
     "t.yaml:1: Component default/pubsub has no spec.type (pubsub.ringcast)"},
    {"apiVersion: dapr.io/v1alpha1\nkind: Component\nspec: {type: pubsub.ringcast}\n",
     "t.yaml:1: Component has no metadata.name"},
    {"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: Pub_Sub}\n",
     "t.yaml:3: Component: 'metadata.name' must be a DNS label (lowercase letters, digits and "
     "'-', at most 63 characters), not 'Pub_Sub'"},
    {"apiVersion: dapr.io/v2alpha1\nkind: Component\nmetadata: {name: pubsub}\n",
     "t.yaml:1: Component must have apiVersion dapr.io/v1alpha1, not 'dapr.io/v2alpha1'"},
    {COMP "  initTimeout: 5s\n", "t.yaml:7: Component default/pubsub: unknown field "
                                 "'spec.initTimeout'"},
    {COMP "auth: {secretStore: x}\n", "t.yaml:7: Component default/pubsub: unknown field 'auth'"},
    {COMP "  metadata:\n  - {name: redisHost, value: \"localhost:6379\"}\n",
     "t.yaml:8: Component default/pubsub: unknown metadata 'redisHost' in 'spec.metadata[0]' "
     "(known: broker, consumerID)"},
    {COMP "  metadata:\n  - {name: broker, secretKeyRef: {name: s, key: k}}\n",
     "t.yaml:8: Component default/pubsub: 'spec.metadata[0].secretKeyRef' is not supported "
     "(write the value)"},
    {COMP "  metadata:\n  - {name: broker, valu: x}\n",
     "t.yaml:8: Component default/pubsub: unknown field 'spec.metadata[0].valu'"},
    {COMP "  metadata:\n  - {name: broker}\n",
     "t.yaml:8: Component default/pubsub: 'spec.metadata[0]' (broker) has no value"},
    {COMP "  metadata:\n  - {value: x}\n",
     "t.yaml:8: Component default/pubsub: 'spec.metadata[0]' has no name"},
    {COMP "  metadata: {broker: default}\n",
     "t.yaml:7: Component default/pubsub: 'spec.metadata' must be an array of {name, value}"},
    {COMP "  metadata:\n  - broker\n",
     "t.yaml:8: Component default/pubsub: 'spec.metadata[0]' must be a mapping {name, value}"},
    {COMP "  metadata:\n  - {name: broker, value: default}\n  - {name: broker, value: b}\n",
     "t.yaml:9: Component default/pubsub: metadata 'broker' is given twice (first at line 8)"},
    {COMP "  metadata:\n  - {name: broker, value: Default}\n",
     "t.yaml:8: Component default/pubsub: metadata 'broker' must be a Broker name (a DNS label), "
     "not 'Default'"},
    {COMP "  metadata:\n  - {name: consumerID, value: \"{appID}\"}\n",
     "t.yaml:8: Component default/pubsub: metadata 'consumerID' must be a consumer group name (a "
     "DNS label), not '{appID}'"},
    {COMP "  metadata:\n  - {name: broker, value: other}\n",
     "t.yaml:8: Component default/pubsub: metadata 'broker' names broker 'other', which is not "
     "defined in namespace default"},
    {"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: p, namespace: shop}\n"
     "spec: {type: pubsub.ringcast, version: v1}\n",
     "t.yaml:1: Component shop/p: metadata 'broker' names broker 'default', which is not defined "
     "in namespace shop"},
    {COMP "---\napiVersion: dapr.io/v1alpha1\nkind: Component\n"
          "metadata: {name: pubsub, namespace: other}\n"
          "spec: {type: pubsub.ringcast, version: v1}\n",
     "t.yaml:8: Component other/pubsub: pubsub name 'pubsub' is already used by Component "
     "default/pubsub (line 1); Component names are unique over the file, since the Dapr API names "
     "a pubsub without its namespace"},
    {COMP "scopes: checkout\n", "t.yaml:7: Component default/pubsub: 'scopes' must be an array of "
                                "app ids"},
    {COMP "scopes: [Checkout]\n", "t.yaml:7: Component default/pubsub: 'scopes[0]' must be an app "
                                  "id (a DNS label), not 'Checkout'"},
    /* ---- DaprApp */
    {COMP "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata: {name: checkout}\n"
          "spec:\n  endpoints: [\"ftp://127.0.0.1:3001\"]\n",
     "t.yaml:12: DaprApp default/checkout: 'spec.endpoints[0]' \"ftp://127.0.0.1:3001\": the "
     "scheme must be http:// (an absolute URI such as http://127.0.0.1:8080/events)"},
    {COMP "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata: {name: checkout}\n"
          "spec:\n  endpoints: [\"http://u:s3cret@127.0.0.1:3001\"]\n",
     "t.yaml:12: DaprApp default/checkout: 'spec.endpoints[0]' \"http://***@127.0.0.1:3001\": "
     "user information (user:password@) is not supported: ringcast sends no credentials (use an "
     "address that needs none, or a local proxy that adds them)"},
    {COMP "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata: {name: checkout}\n"
          "spec:\n  endpoints: [\"http://127.0.0.1:3001/api\"]\n",
     "t.yaml:12: DaprApp default/checkout: 'spec.endpoints[0]' \"http://127.0.0.1:3001/api\" must "
     "be a base URL such as http://127.0.0.1:3001, without a path, query or fragment (paths come "
     "from the subscriptions)"},
    {COMP "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata: {name: checkout}\n"
          "spec:\n  endpoints: [\"http://127.0.0.1:3001#x\"]\n",
     "t.yaml:12: DaprApp default/checkout: 'spec.endpoints[0]' \"http://127.0.0.1:3001#x\" must "
     "be a base URL such as http://127.0.0.1:3001, without a path, query or fragment (paths come "
     "from the subscriptions)"},
    {COMP "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata: {name: checkout}\n"
          "spec:\n  endpoints:\n  - http://127.0.0.1:3001\n  - http://127.0.0.1:3001/\n",
     "t.yaml:14: DaprApp default/checkout: 'spec.endpoints[1]' \"http://127.0.0.1:3001/\" is the "
     "same replica as spec.endpoints[0]"},
    {COMP "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata: {name: checkout}\n"
          "spec:\n  endpoints: [\"http://LocalHost\", \"http://localhost:80\"]\n",
     "t.yaml:12: DaprApp default/checkout: 'spec.endpoints[1]' \"http://localhost:80\" is the "
     "same replica as spec.endpoints[0]"},
    {COMP "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata: {name: checkout}\n"
          "spec:\n  endpoints: []\n",
     "t.yaml:12: DaprApp default/checkout: 'spec.endpoints' must be a non-empty array of http:// "
     "URLs (one per replica)"},
    {COMP "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata: {name: checkout}\n"
          "spec:\n  endpoints: [[x]]\n",
     "t.yaml:12: DaprApp default/checkout: 'spec.endpoints[0]' must be a string"},
    {COMP "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata: {name: checkout}\n"
          "spec:\n  maxConcurrency: 5\n",
     "t.yaml:8: DaprApp default/checkout has no spec.endpoints"},
    {COMP APP "  maxConcurrency: 0\n",
     "t.yaml:13: DaprApp default/checkout: 'spec.maxConcurrency' must be an integer from 1 to "
     "10000, not '0'"},
    {COMP APP "  maxConcurrency: 10001\n",
     "t.yaml:13: DaprApp default/checkout: 'spec.maxConcurrency' must be an integer from 1 to "
     "10000, not '10001'"},
    {COMP APP "  appPort: 3001\n",
     "t.yaml:13: DaprApp default/checkout: unknown field 'spec.appPort'"},
    {COMP APP APP, "t.yaml:14: DaprApp default/checkout is defined twice (first at line 8)"},
    {COMP "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nspec: {}\n",
     "t.yaml:8: DaprApp has no metadata.name (the app id)"},
    /* ---- Subscription */
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: orders}\n",
     "t.yaml:20: Subscription default/orders: 'routes.default' must be a path starting with '/', "
     "not 'orders'"},
    {COMP APP SUB_V2 PS_TOPIC "  routes:\n    rules: [{match: 'event.type == \"a\"', path: a}]\n",
     "t.yaml:21: Subscription default/orders: 'routes.rules[0].path' must be a path starting "
     "with '/', not 'a'"},
    {COMP APP SUB_V2 PS_TOPIC "  routes:\n    rules: [{match: 'event.type == \"a\"', path: "
                              "\"/a b\"}]\n",
     "t.yaml:21: Subscription default/orders: 'routes.rules[0].path' contains a space, control "
     "character or '#' at offset 2"},
    {COMP APP SUB_V2 PS_TOPIC "  routes:\n    rules: [{match: 'event.type == \"a\"'}]\n",
     "t.yaml:21: Subscription default/orders: 'spec.routes.rules[0]' has no path"},
    {COMP APP SUB_V2 PS_TOPIC "  routes:\n    rules: [{match: x, path: /a, when: y}]\n",
     "t.yaml:21: Subscription default/orders: unknown field 'spec.routes.rules[0].when'"},
    {COMP APP SUB_V2 PS_TOPIC "  routes:\n    rules: {match: x, path: /a}\n",
     "t.yaml:21: Subscription default/orders: 'spec.routes.rules' must be an array of {match, "
     "path}"},
    {COMP APP SUB_V2 PS_TOPIC "  routes:\n    rules:\n    - {path: /all}\n"
                              "    - {match: 'event.type == \"a\"', path: /a}\n",
     "t.yaml:22: Subscription default/orders: routes.rules[0] has an empty match, so it takes "
     "every event and routes.rules[1] would never be used"},
    {COMP APP SUB_V2 PS_TOPIC "  routes:\n    rules:\n    - {match: '', path: /all}\n"
                              "    default: /d\n",
     "t.yaml:22: Subscription default/orders: routes.rules[0] has an empty match, so it takes "
     "every event and 'routes.default' would never be used"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: /d}\n  route: /r\n",
     "t.yaml:21: Subscription default/orders: give 'spec.route' or 'spec.routes.default', not "
     "both"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {}\n",
     "t.yaml:14: Subscription default/orders has no route (spec.routes.rules or "
     "spec.routes.default)"},
    {COMP APP SUB_V1 PS_TOPIC, "t.yaml:14: Subscription default/orders has no route (spec.route)"},
    {COMP APP SUB_V1 PS_TOPIC "  route: checkout\n",
     "t.yaml:20: Subscription default/orders: 'spec.route' must be a path starting with '/', not "
     "'checkout'"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: /d, other: /x}\n",
     "t.yaml:20: Subscription default/orders: unknown field 'spec.routes.other'"},
    {COMP APP SUB_V2 "  pubsubname: nope\n  topic: orders\n  routes: {default: /d}\n",
     "t.yaml:18: Subscription default/orders: 'spec.pubsubname' names pubsub 'nope', which is not "
     "a Component of this file"},
    {COMP APP SUB_V2 "  pubsubname: Nope\n",
     "t.yaml:18: Subscription default/orders: 'spec.pubsubname' must be a Component name (a DNS "
     "label), not 'Nope'"},
    {COMP APP
     "---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: o, namespace: x}\n"
     "spec:\n" PS_TOPIC "  routes: {default: /d}\n",
     "t.yaml:18: Subscription x/o: 'spec.pubsubname' names Component default/pubsub, of another "
     "namespace (a Subscription uses the Components of its own namespace)"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: /d}\nscopes: [checkout, cart]\n",
     "t.yaml:21: Subscription default/orders: 'scopes[1]' names app 'cart', which is not a DaprApp "
     "of namespace default"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: /d}\nscopes: [checkout, checkout]\n",
     "t.yaml:21: Subscription default/orders: 'scopes[1]' repeats app 'checkout' (scopes[0])"},
    {COMP SUB_V2 PS_TOPIC "  routes: {default: /d}\n",
     "t.yaml:8: Subscription default/orders applies to no app: it has no scopes and namespace "
     "default has no DaprApp"},
    {COMP APP SUB_V2 PS_TOPIC
     "  routes: {default: /d}\n"
     "---\napiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata: {name: orders2}\n"
     "spec:\n" PS_TOPIC "  route: /o\n",
     "t.yaml:22: Subscription default/orders2: app checkout already subscribes to pubsub/orders "
     "(Subscription default/orders at line 14)"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: /d}\n" SUB_V1 PS_TOPIC "  route: /o\n",
     "t.yaml:22: Subscription default/orders is defined twice (first at line 14)"},
    {"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\nspec:\n"
     "  type: pubsub.ringcast\n  version: v1\n  metadata: [{name: consumerID, value: grp}]\n" APP
     "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata: {name: cart}\n"
     "spec: {endpoints: [\"http://127.0.0.1:3101\"]}\n" SUB_V2 PS_TOPIC "  routes: {default: /d}\n",
     "t.yaml:20: Subscription default/orders: apps checkout and cart would share consumer group "
     "'grp' (metadata consumerID of Component pubsub) on topic orders: not supported, a group "
     "delivers to the replicas of one app (give each app its own Component or no consumerID)"},
    {COMP APP SUB_V2 "  pubsubname: pubsub\n  topic: \"a\\x01b\"\n",
     "t.yaml:19: Subscription default/orders: 'spec.topic' contains a control character at "
     "offset 1"},
    {COMP APP SUB_V2 "  pubsubname: pubsub\n  topic: \"\"\n",
     "t.yaml:19: Subscription default/orders: 'spec.topic' is empty"},
    {COMP APP SUB_V2 "  pubsubname: pubsub\n  topic: [a]\n",
     "t.yaml:19: Subscription default/orders: 'spec.topic' must be a string"},
    {COMP APP SUB_V2 "  pubsubname: pubsub\n  routes: {default: /d}\n",
     "t.yaml:14: Subscription default/orders has no spec.topic"},
    {COMP APP SUB_V2 "  topic: orders\n  routes: {default: /d}\n",
     "t.yaml:14: Subscription default/orders has no spec.pubsubname"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: /d}\n  deadLetterTopic: orders\n",
     "t.yaml:14: Subscription default/orders: 'spec.deadLetterTopic' must differ from "
     "'spec.topic' (orders): its dead letters would come back to it"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: /d}\n  deadLetterTopic: \"\"\n",
     "t.yaml:21: Subscription default/orders: 'spec.deadLetterTopic' is empty"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: /d}\n  metadata: {rawPayload: maybe}\n",
     "t.yaml:21: Subscription default/orders: 'spec.metadata.rawPayload' must be \"true\" or "
     "\"false\", not 'maybe'"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: /d}\n  metadata: {ttlInSeconds: \"5\"}\n",
     "t.yaml:21: Subscription default/orders: unknown key 'spec.metadata.ttlInSeconds' (known: "
     "rawPayload)"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: /d}\n  bulkSubscribe: {enabled: yes}\n",
     "t.yaml:21: Subscription default/orders: 'spec.bulkSubscribe.enabled' must be true or false, "
     "not 'yes'"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: /d}\n  bulkSubscribe: {maxMessagesCount: 0}\n",
     "t.yaml:21: Subscription default/orders: 'spec.bulkSubscribe.maxMessagesCount' must be an "
     "integer from 1 to 1000, not '0'"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: /d}\n"
                              "  bulkSubscribe: {maxAwaitDurationMs: 60001}\n",
     "t.yaml:21: Subscription default/orders: 'spec.bulkSubscribe.maxAwaitDurationMs' must be an "
     "integer from 1 to 60000, not '60001'"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: /d}\n  bulkSubscribe: {maxBulkSubCount: 5}\n",
     "t.yaml:21: Subscription default/orders: unknown field 'spec.bulkSubscribe.maxBulkSubCount'"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: /d}\n  version: v2alpha1\n",
     "t.yaml:21: Subscription default/orders: unknown field 'spec.version'"},
    {COMP APP SUB_V2 PS_TOPIC "  routes: {default: /d}\nstatus: {}\n",
     "t.yaml:21: Subscription default/orders: unknown field 'status'"},
    {COMP APP "---\napiVersion: dapr.io/v3\nkind: Subscription\n",
     "t.yaml:14: Subscription must have apiVersion dapr.io/v2alpha1 or dapr.io/v1alpha1, not "
     "'dapr.io/v3'"},
    {COMP APP "---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\nspec: {}\n",
     "t.yaml:14: Subscription has no metadata.name"},
    /* ---- spec.dapr */
    {"apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n  dapr:\n"
     "    listen: nowhere\n",
     "t.yaml:5: 'spec.dapr.listen' must be IP:PORT such as 127.0.0.1:3500 or [::1]:3500, not "
     "'nowhere'"},
    {"apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n  dapr:\n"
     "    listen: localhost:3500\n",
     "t.yaml:5: 'spec.dapr.listen' must be IP:PORT such as 127.0.0.1:3500 or [::1]:3500, not "
     "'localhost:3500'"},
    {"apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n  dapr:\n"
     "    listen: 127.0.0.1:0\n",
     "t.yaml:5: 'spec.dapr.listen' needs a port from 1 to 65535, not 0 (the Dapr SDKs are told "
     "the sidecar's port)"},
    {"apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n  dapr: 127.0.0.1:3500\n",
     "t.yaml:4: spec.dapr must be a mapping"},
    {"apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n  dapr: {port: 3500}\n",
     "t.yaml:4: unknown field 'spec.dapr.port'"},
    {"apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n  dapr:\n"
     "    listen: 127.0.0.1:8080\n",
     "t.yaml:5: 'spec.dapr.listen' (127.0.0.1:8080) takes the port of 'spec.listen' "
     "(127.0.0.1:8080): the Dapr listener needs a port of its own"},
    {"apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n  dapr:\n"
     "    listen: 0.0.0.0:9001\n  admin: 127.0.0.1:9001\n",
     "t.yaml:5: 'spec.dapr.listen' (0.0.0.0:9001) takes the port of 'spec.admin' "
     "(127.0.0.1:9001): the Dapr listener needs a port of its own"},
    {"apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n  dapr:\n"
     "    listen: \"[::1]:7000\"\n  listen: \"[::]:7000\"\n",
     "t.yaml:5: 'spec.dapr.listen' ([::1]:7000) takes the port of 'spec.listen' ([::]:7000): the "
     "Dapr listener needs a port of its own"},
};

/* Every case, reporting all mismatches before failing. */
static void test_errors(void)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rc_config_t c;
        const char *y = cases[i].yaml;
        int rc = rc_config_load_string(&c, "t.yaml", y, strlen(y), err, sizeof(err));
        if (rc != RC_ECONFIG || strcmp(err, cases[i].msg) != 0) {
            fprintf(stderr, "case %zu (rc %d):\n%s\ngot      \"%s\"\nexpected \"%s\"\n\n", i, rc, y,
                    rc ? err : "(accepted)", cases[i].msg);
            failed++;
        }
        ASSERT(c.pubsubs == NULL && c.dapr_apps == NULL && c.dapr_subs == NULL);
        ASSERT(c.triggers == NULL && c.trigger_count == 0 && c.dapr_sub_count == 0);
        rc_config_close(&c);
    }
    if (failed)
        RC_TEST_FAIL("%d of %zu error cases failed", failed, sizeof(cases) / sizeof(cases[0]));
}

/* A match that does not compile: the message of core/cel.c after the file, line, subscription
 * and field. */
static void test_bad_cel(void)
{
    static const char y[] = COMP APP SUB_V2 PS_TOPIC
        "  routes:\n    rules:\n    - match: 'event.type == \"a\"'\n      path: /a\n"
        "    - match: 'event.type.matches(\"b\")'\n      path: /b\n";
    rc_config_t c;
    int rc = rc_config_load_string(&c, "t.yaml", y, sizeof(y) - 1, err, sizeof(err));
    ASSERT_EQ(rc, RC_ECONFIG);
    ASSERT_STR_EQ(err, "t.yaml:24: Subscription default/orders: routes.rules[1].match: column 12: "
                       "unsupported function 'matches'");
    rc_config_close(&c);
}

/* Limits given as counts: endpoints and rules. */
static void test_counts(void)
{
    char y[16384];
    size_t n = (size_t)snprintf(y, sizeof(y),
                                COMP "---\napiVersion: ringcast.dev/v1alpha1\n"
                                     "kind: DaprApp\nmetadata: {name: checkout}\n"
                                     "spec:\n  endpoints:\n");
    for (unsigned i = 0; i <= RC_CONFIG_DAPR_REPLICAS_MAX; i++)
        n += (size_t)snprintf(y + n, sizeof(y) - n, "  - http://127.0.0.1:%u\n", 3000 + i);
    expect_error(y, "t.yaml:13: DaprApp default/checkout: 'spec.endpoints' has 65 replicas, more "
                    "than 64");
    n = (size_t)snprintf(y, sizeof(y), COMP APP SUB_V2 PS_TOPIC "  routes:\n    rules:\n");
    for (unsigned i = 0; i <= RC_CONFIG_DAPR_RULES_MAX; i++)
        n += (size_t)snprintf(y + n, sizeof(y) - n,
                              "    - {match: 'event.type == \"t%u\"', path: /p%u}\n", i, i);
    expect_error(y, "t.yaml:22: Subscription default/orders: 'spec.routes.rules' has 65 rules, "
                    "more than 64");
    /* 64 rules load. */
    y[n - strlen("    - {match: 'event.type == \"t64\"', path: /p64}\n")] = '\0';
    rc_config_t c;
    load_ok(&c, y);
    ASSERT_EQ(c.dapr_subs[0]->rule_count, 64);
    ASSERT_STR_EQ(c.dapr_subs[0]->rules[63].path, "/p63");
    rc_config_close(&c);
}

/* Makes each allocation of a load and of a programmatic add fail in turn: every one ends in
 * -ENOMEM with nothing kept (ASan's leak check at exit covers the frees). */
static void test_alloc_failures(void)
{
    static const char y[] = COMP APP
        "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata: {name: cart}\n"
        "spec: {endpoints: [\"http://127.0.0.1:3101\", \"http://127.0.0.1:3102\"]}\n" SUB_V2
            PS_TOPIC "  routes:\n    rules: [{match: 'event.type == \"a\"', path: /a}]\n"
        "    default: /d\n  deadLetterTopic: dead\n"
        "---\napiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\n"
        "spec: {dapr: {listen: 127.0.0.1:3500}}\n";
    const char *match[] = {"event.type == \"b\""}, *path[] = {"/b"};
    rc_config_dapr_sub_spec_t spec = {.pubsub = "pubsub",
                                      .topic = "more",
                                      .match = match,
                                      .path = path,
                                      .rule_count = 1,
                                      .default_path = "/m",
                                      .dead_letter_topic = "dead"};
    int load_done = 0, add_done = 0;
    for (long n = 0; n < 100000 && !(load_done && add_done); n++) {
        rc_config_t c;
        alloc_budget = n;
        int rc = rc_config_load_string(&c, "t.yaml", y, sizeof(y) - 1, err, sizeof(err));
        if (rc != 0) {
            alloc_budget = -1;
            if (rc != -ENOMEM)
                RC_TEST_FAIL("allocation %ld failing: load returned %d: %s", n, rc, err);
            ASSERT(c.dapr_subs == NULL && c.triggers == NULL && c.pubsubs == NULL);
            rc_config_close(&c);
            continue;
        }
        load_done = 1;
        rc = rc_config_add_dapr_subscription(&c, &c.dapr_apps[1], &spec, err, sizeof(err));
        alloc_budget = -1;
        ASSERT(rc == 0 || rc == -ENOMEM);
        ASSERT_EQ(c.dapr_sub_count, rc == 0 ? 3 : 2);
        ASSERT_EQ(c.trigger_count, c.dapr_sub_count);
        if (rc == -ENOMEM)
            ASSERT_STR_EQ(err, "app cart: subscription to pubsub/more: out of memory");
        add_done = rc == 0;
        check_triggers(&c);
        rc_config_close(&c);
    }
    ASSERT(load_done && add_done);
}

int main(void)
{
    test_issue_block();
    test_shapes();
    test_scopes();
    test_long_names();
    test_programmatic();
    test_programmatic_groups();
    test_listen();
    test_errors();
    test_bad_cel();
    test_counts();
    test_alloc_failures();
    printf("test_config_dapr: ok\n");
    return 0;
}
