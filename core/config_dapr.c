/* Loading the Dapr kinds (docs/config.md, "Dapr"):
 *
 *   Component     dapr.io/v1alpha1, spec.type pubsub.ringcast: a pubsub name for a Broker
 *   DaprApp       ringcast.dev/v1alpha1: an app id and the base URLs of its replicas
 *   Subscription  dapr.io/v2alpha1 (spec.routes) or v1alpha1 (spec.route): a topic of a pubsub,
 *                 for the apps in its scopes (every DaprApp of its namespace without scopes)
 *
 * and RingcastConfig spec.dapr.
 *
 * A Subscription may name Components and DaprApps that come later in the file, so it is kept as
 * read (a template in x->dapr) until the last document is in; rc__config_dapr_resolve then makes
 * one rc_config_dapr_sub_t per app in its scopes, each with its internal trigger, through
 * config_dapr_sub.c, which programmatic subscriptions go through too. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config_internal.h"
#include "core/config_uri.h"
#include "core/delivery_policy.h"
#include "core/errors.h"

typedef rc__config_ctx_t ctx_t;

#define WHO_MAX (2 * RC_CONFIG_NAME_MAX + 24)

/* One Subscription document between its parse and rc__config_dapr_resolve. */
typedef struct {
    rc_config_dapr_sub_t tmpl;              /* all but app and group */
    char (*scopes)[RC_CONFIG_NAME_MAX + 1]; /* app ids; none: every DaprApp of the namespace */
    int *scope_lines;
    size_t scope_count;
    int pubsub_line;
} decl_t;

struct rc__config_dapr_s {
    decl_t *decls;
    size_t decl_count;
    int *broker_lines; /* one per c->pubsubs entry: where its broker is named (or its document) */
    int listen_line;   /* spec.dapr.listen, 0 if not given */
};

/* rc__config_fail for a line kept from an earlier document (the node is gone by then). */
__attribute__((format(printf, 3, 4))) static int fail_at(ctx_t *x, int line, const char *fmt, ...)
{
    int off = snprintf(x->err, x->err_len, "%s:%d: ", x->file, line);
    if (off < 0 || (size_t)off >= x->err_len)
        return RC_ECONFIG;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err + off, x->err_len - (size_t)off, fmt, ap);
    va_end(ap);
    return RC_ECONFIG;
}

static struct rc__config_dapr_s *state(ctx_t *x)
{
    if (x->dapr == NULL)
        x->dapr = calloc(1, sizeof(*x->dapr));
    return x->dapr;
}

static const char *scalar_or(const yaml_node_t *v)
{
    const char *s = rc__config_scalar(v);
    return s ? s : "(not a scalar)";
}

/* ---- Component ------------------------------------------------------------------------------- */

typedef struct {
    ctx_t *x;
    rc_config_pubsub_t *p;
    char who[WHO_MAX];
    int type_seen, version_seen;
    int broker_line, consumer_line;
} comp_ctx_t;

/* Top-level `scopes`: app ids. Kept for a Subscription (`d`), only checked for a Component
 * (ringcast does not restrict who uses a pubsub; docs/config.md). */
static int read_scopes(ctx_t *x, yaml_node_t *v, const char *who, decl_t *d)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return rc__config_fail(x, v, "%s: 'scopes' must be an array of app ids", who);
    size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (d != NULL && count > 0) {
        d->scopes = calloc(count, sizeof(*d->scopes));
        d->scope_lines = calloc(count, sizeof(*d->scope_lines));
        if (d->scopes == NULL || d->scope_lines == NULL)
            return -ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *it = rc__config_node(x, v->data.sequence.items.start[i]);
        const char *s = rc__config_scalar(it);
        if (s == NULL || !rc__config_valid_dns_label(s))
            return rc__config_fail(x, it,
                                   "%s: 'scopes[%zu]' must be an app id (a DNS label), not '%s'",
                                   who, i, scalar_or(it));
        for (size_t j = 0; j < i; j++) {
            const char *prev =
                rc__config_scalar(rc__config_node(x, v->data.sequence.items.start[j]));
            if (strcmp(prev, s) == 0)
                return rc__config_fail(x, it, "%s: 'scopes[%zu]' repeats app '%s' (scopes[%zu])",
                                       who, i, s, j);
        }
        if (d != NULL) {
            strcpy(d->scopes[i], s);
            d->scope_lines[i] = rc__config_line(it);
            d->scope_count = i + 1;
        }
    }
    return 0;
}

static int component_meta_value(comp_ctx_t *cc, size_t i, const char *name, yaml_node_t *v)
{
    ctx_t *x = cc->x;
    const char *s = rc__config_scalar(v);
    int *seen = strcmp(name, "broker") == 0       ? &cc->broker_line
                : strcmp(name, "consumerID") == 0 ? &cc->consumer_line
                                                  : NULL;
    if (seen == NULL)
        return rc__config_fail(x, v,
                               "%s: unknown metadata '%s' in 'spec.metadata[%zu]' (known: broker, "
                               "consumerID)",
                               cc->who, name, i);
    if (*seen != 0)
        return rc__config_fail(x, v, "%s: metadata '%s' is given twice (first at line %d)", cc->who,
                               name, *seen);
    if (s == NULL || !rc__config_valid_dns_label(s))
        return rc__config_fail(
            x, v, "%s: metadata '%s' must be a %s (a DNS label), not '%s'", cc->who, name,
            seen == &cc->broker_line ? "Broker name" : "consumer group name", scalar_or(v));
    *seen = rc__config_line(v);
    strcpy(seen == &cc->broker_line ? cc->p->broker : cc->p->consumer_id, s);
    return 0;
}

static int component_meta(comp_ctx_t *cc, size_t i, yaml_node_t *item)
{
    ctx_t *x = cc->x;
    yaml_node_t *name = NULL, *value = NULL;
    if (item->type != YAML_MAPPING_NODE)
        return rc__config_fail(x, item, "%s: 'spec.metadata[%zu]' must be a mapping {name, value}",
                               cc->who, i);
    for (yaml_node_pair_t *p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = rc__config_node(x, p->key);
        const char *key = rc__config_scalar(k);
        if (key != NULL && strcmp(key, "name") == 0) {
            name = rc__config_node(x, p->value);
        } else if (key != NULL && strcmp(key, "value") == 0) {
            value = rc__config_node(x, p->value);
        } else if (key != NULL &&
                   (strcmp(key, "secretKeyRef") == 0 || strcmp(key, "envRef") == 0)) {
            return rc__config_fail(x, k,
                                   "%s: 'spec.metadata[%zu].%s' is not supported (write the value)",
                                   cc->who, i, key);
        } else {
            return rc__config_fail(x, k, "%s: unknown field 'spec.metadata[%zu].%s'", cc->who, i,
                                   key ? key : "(not a scalar)");
        }
    }
    if (name == NULL || rc__config_scalar(name) == NULL)
        return rc__config_fail(x, name ? name : item, "%s: 'spec.metadata[%zu]' has no name",
                               cc->who, i);
    if (value == NULL)
        return rc__config_fail(x, item, "%s: 'spec.metadata[%zu]' (%s) has no value", cc->who, i,
                               rc__config_scalar(name));
    return component_meta_value(cc, i, rc__config_scalar(name), value);
}

static int component_spec_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    comp_ctx_t *cc = arg;
    const char *s = rc__config_scalar(v);
    if (strcmp(key, "type") == 0) {
        cc->type_seen = 1;
        if (s == NULL || strcmp(s, "pubsub.ringcast") != 0)
            return rc__config_fail(x, v,
                                   "%s: 'spec.type' must be pubsub.ringcast (the only component "
                                   "type ringcast provides), not '%s'",
                                   cc->who, scalar_or(v));
        return 0;
    }
    if (strcmp(key, "version") == 0) {
        cc->version_seen = 1;
        if (s == NULL || strcmp(s, "v1") != 0)
            return rc__config_fail(x, v, "%s: 'spec.version' must be v1, not '%s'", cc->who,
                                   scalar_or(v));
        return 0;
    }
    if (strcmp(key, "metadata") == 0) {
        if (v->type != YAML_SEQUENCE_NODE)
            return rc__config_fail(x, v, "%s: 'spec.metadata' must be an array of {name, value}",
                                   cc->who);
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        for (size_t i = 0; i < n; i++) {
            int rc = component_meta(cc, i, rc__config_node(x, v->data.sequence.items.start[i]));
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    return rc__config_fail(x, v, "%s: unknown field 'spec.%s'", cc->who, key);
}

static int component_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    comp_ctx_t *cc = arg;
    if (strcmp(key, "apiVersion") == 0 || strcmp(key, "kind") == 0 || strcmp(key, "metadata") == 0)
        return 0; /* names were read first */
    if (strcmp(key, "spec") == 0)
        return rc__config_walk_map(x, v, "spec", component_spec_field, cc);
    if (strcmp(key, "scopes") == 0)
        return read_scopes(x, v, cc->who, NULL);
    return rc__config_fail(x, v, "%s: unknown field '%s'", cc->who, key);
}

int rc__config_parse_component(ctx_t *x, yaml_node_t *root)
{
    rc_config_t *c = x->cfg;
    rc_config_pubsub_t p;
    memset(&p, 0, sizeof(p));
    strcpy(p.ns, "default");
    strcpy(p.broker, "default");
    p.line = rc__config_line(root);
    comp_ctx_t cc = {.x = x, .p = &p};
    yaml_node_t *md = NULL;
    if (!rc__config_find_key(x, root, "metadata", &md))
        return rc__config_fail(x, root, "Component has no metadata.name");
    int rc = rc__config_metadata_names(x, md, "Component", p.ns, p.name);
    if (rc != 0)
        return rc;
    if (p.name[0] == '\0')
        return rc__config_fail(x, md, "Component has no metadata.name");
    snprintf(cc.who, sizeof(cc.who), "Component %s/%s", p.ns, p.name);
    const rc_config_pubsub_t *o = rc_config_find_pubsub(c, p.name, strlen(p.name));
    if (o != NULL)
        return rc__config_fail(x, root,
                               "%s: pubsub name '%s' is already used by Component %s/%s (line %d); "
                               "Component names are unique over the file, since the Dapr API "
                               "names a pubsub without its namespace",
                               cc.who, p.name, o->ns, o->name, o->line);
    rc = rc__config_walk_map(x, root, "Component", component_field, &cc);
    if (rc == 0 && !cc.type_seen)
        rc = rc__config_fail(x, root, "%s has no spec.type (pubsub.ringcast)", cc.who);
    if (rc == 0 && !cc.version_seen)
        rc = rc__config_fail(x, root, "%s has no spec.version (v1)", cc.who);
    if (rc != 0)
        return rc;
    struct rc__config_dapr_s *st = state(x);
    if (st == NULL)
        return -ENOMEM;
    int *lines = realloc(st->broker_lines, (c->pubsub_count + 1) * sizeof(*lines));
    if (lines == NULL)
        return -ENOMEM;
    st->broker_lines = lines;
    rc_config_pubsub_t *np = realloc(c->pubsubs, (c->pubsub_count + 1) * sizeof(*np));
    if (np == NULL)
        return -ENOMEM;
    c->pubsubs = np;
    lines[c->pubsub_count] = cc.broker_line ? cc.broker_line : p.line;
    c->pubsubs[c->pubsub_count++] = p;
    return 0;
}

/* ---- DaprApp --------------------------------------------------------------------------------- */

typedef struct {
    ctx_t *x;
    rc_config_dapr_app_t *a;
    char who[WHO_MAX];
    yaml_node_t *endpoints;
} app_ctx_t;

static void app_free(rc_config_dapr_app_t *a)
{
    for (size_t i = 0; i < a->endpoint_count; i++)
        free(a->endpoints[i]);
    free(a->endpoints);
    a->endpoints = NULL;
    a->endpoint_count = 0;
}

/* One replica's base URL: an http:// URI with nothing after the authority but an optional '/',
 * which is dropped (the routes' paths start with one). Two URLs with the same host and port are
 * the same replica. */
static int app_endpoint(app_ctx_t *ac, size_t i, yaml_node_t *v)
{
    ctx_t *x = ac->x;
    rc_config_dapr_app_t *a = ac->a;
    const char *s = rc__config_scalar(v);
    char why[256], shown[RC_DELIVERY_URI_MAX];
    rc_config_uri_t u, o;
    if (s == NULL)
        return rc__config_fail(x, v, "%s: 'spec.endpoints[%zu]' must be a string", ac->who, i);
    if (strlen(s) >= RC_DELIVERY_URI_MAX || rc_config_uri_parse(s, &u, why, sizeof(why)) != 0) {
        if (strlen(s) >= RC_DELIVERY_URI_MAX)
            snprintf(why, sizeof(why), "longer than %d bytes", RC_DELIVERY_URI_MAX - 1);
        rc_config_uri_redact(s, shown, sizeof(shown));
        size_t n = strlen(shown);
        return rc__config_fail(x, v, "%s: 'spec.endpoints[%zu]' \"%.*s%s\": %s", ac->who, i,
                               n > 80 ? 80 : (int)n, shown, n > 80 ? "..." : "", why);
    }
    size_t base = u.authority_off + u.authority_len;
    if (strcmp(s + base, "") != 0 && strcmp(s + base, "/") != 0)
        return rc__config_fail(x, v,
                               "%s: 'spec.endpoints[%zu]' \"%s\" must be a base URL such as "
                               "http://127.0.0.1:3001, without a path, query or fragment (paths "
                               "come from the subscriptions)",
                               ac->who, i, rc_config_uri_redact(s, shown, sizeof(shown)));
    for (size_t j = 0; j < a->endpoint_count; j++) {
        rc_config_uri_parse(a->endpoints[j], &o, NULL, 0);
        if (o.port == u.port && strcasecmp(o.host, u.host) == 0)
            return rc__config_fail(x, v,
                                   "%s: 'spec.endpoints[%zu]' \"%s\" is the same replica as "
                                   "spec.endpoints[%zu]",
                                   ac->who, i, s, j);
    }
    a->endpoints[a->endpoint_count] = strndup(s, base);
    if (a->endpoints[a->endpoint_count] == NULL)
        return -ENOMEM;
    a->endpoint_count++;
    return 0;
}

static int app_spec_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    app_ctx_t *ac = arg;
    if (strcmp(key, "endpoints") == 0) {
        size_t n = v->type == YAML_SEQUENCE_NODE
                       ? (size_t)(v->data.sequence.items.top - v->data.sequence.items.start)
                       : 0;
        ac->endpoints = v;
        if (n == 0)
            return rc__config_fail(x, v,
                                   "%s: 'spec.endpoints' must be a non-empty array of http:// "
                                   "URLs (one per replica)",
                                   ac->who);
        if (n > RC_CONFIG_DAPR_REPLICAS_MAX)
            return rc__config_fail(x, v, "%s: 'spec.endpoints' has %zu replicas, more than %u",
                                   ac->who, n, RC_CONFIG_DAPR_REPLICAS_MAX);
        ac->a->endpoints = calloc(n, sizeof(char *));
        if (ac->a->endpoints == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            int rc = app_endpoint(ac, i, rc__config_node(x, v->data.sequence.items.start[i]));
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    if (strcmp(key, "maxConcurrency") == 0) {
        int64_t i;
        if (rc__config_get_int(x, v, "spec.maxConcurrency", 1, 10000, &i) != 0)
            return rc__config_fail(x, v,
                                   "%s: 'spec.maxConcurrency' must be an integer from 1 to 10000, "
                                   "not '%s'",
                                   ac->who, scalar_or(v));
        ac->a->max_concurrency = (uint32_t)i;
        return 0;
    }
    return rc__config_fail(x, v, "%s: unknown field 'spec.%s'", ac->who, key);
}

static int app_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    app_ctx_t *ac = arg;
    if (strcmp(key, "apiVersion") == 0 || strcmp(key, "kind") == 0 || strcmp(key, "metadata") == 0)
        return 0;
    if (strcmp(key, "spec") == 0)
        return rc__config_walk_map(x, v, "spec", app_spec_field, ac);
    return rc__config_fail(x, v, "%s: unknown field '%s'", ac->who, key);
}

int rc__config_parse_dapr_app(ctx_t *x, yaml_node_t *root)
{
    rc_config_t *c = x->cfg;
    rc_config_dapr_app_t a;
    memset(&a, 0, sizeof(a));
    strcpy(a.ns, "default");
    a.line = rc__config_line(root);
    app_ctx_t ac = {.x = x, .a = &a};
    yaml_node_t *md = NULL;
    if (!rc__config_find_key(x, root, "metadata", &md))
        return rc__config_fail(x, root, "DaprApp has no metadata.name (the app id)");
    int rc = rc__config_metadata_names(x, md, "DaprApp", a.ns, a.name);
    if (rc != 0)
        return rc;
    if (a.name[0] == '\0')
        return rc__config_fail(x, md, "DaprApp has no metadata.name (the app id)");
    snprintf(ac.who, sizeof(ac.who), "DaprApp %s/%s", a.ns, a.name);
    const rc_config_dapr_app_t *o = rc_config_find_dapr_app(c, a.ns, a.name);
    if (o != NULL)
        return rc__config_fail(x, root, "%s is defined twice (first at line %d)", ac.who, o->line);
    rc = rc__config_walk_map(x, root, "DaprApp", app_field, &ac);
    if (rc == 0 && ac.endpoints == NULL)
        rc = rc__config_fail(x, root, "%s has no spec.endpoints", ac.who);
    if (rc == 0) {
        rc_config_dapr_app_t *na = realloc(c->dapr_apps, (c->dapr_app_count + 1) * sizeof(*na));
        if (na != NULL) {
            c->dapr_apps = na;
            c->dapr_apps[c->dapr_app_count++] = a;
            return 0;
        }
        rc = -ENOMEM;
    }
    app_free(&a);
    return rc;
}

/* ---- Subscription ---------------------------------------------------------------------------- */

typedef struct {
    ctx_t *x;
    decl_t *d;
    char who[WHO_MAX];
    int v1;             /* dapr.io/v1alpha1 */
    yaml_node_t *rules; /* spec.routes.rules */
    yaml_node_t *route; /* spec.route (v1) */
    yaml_node_t *deflt; /* spec.routes.default */
} sub_ctx_t;

static int bulk_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    sub_ctx_t *sc = arg;
    rc_config_dapr_sub_t *s = &sc->d->tmpl;
    const char *str = rc__config_scalar(v);
    int64_t n;
    if (strcmp(key, "enabled") == 0) {
        if (str == NULL || (strcmp(str, "true") != 0 && strcmp(str, "false") != 0))
            return rc__config_fail(
                x, v, "%s: 'spec.bulkSubscribe.enabled' must be true or false, not '%s'", sc->who,
                scalar_or(v));
        s->bulk = strcmp(str, "true") == 0;
        return 0;
    }
    int messages = strcmp(key, "maxMessagesCount") == 0;
    if (!messages && strcmp(key, "maxAwaitDurationMs") != 0)
        return rc__config_fail(x, v, "%s: unknown field 'spec.bulkSubscribe.%s'", sc->who, key);
    int64_t hi = messages ? RC__CONFIG_DAPR_BULK_MESSAGES_MAX : RC__CONFIG_DAPR_BULK_AWAIT_MAX_MS;
    if (rc__config_get_int(x, v, key, 1, hi, &n) != 0)
        return rc__config_fail(x, v,
                               "%s: 'spec.bulkSubscribe.%s' must be an integer from 1 to %lld, "
                               "not '%s'",
                               sc->who, key, (long long)hi, scalar_or(v));
    *(messages ? &s->bulk_max_messages : &s->bulk_max_await_ms) = (uint32_t)n;
    return 0;
}

static int sub_metadata_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    sub_ctx_t *sc = arg;
    const char *s = rc__config_scalar(v);
    if (strcmp(key, "rawPayload") != 0)
        return rc__config_fail(x, v, "%s: unknown key 'spec.metadata.%s' (known: rawPayload)",
                               sc->who, key);
    if (s == NULL || (strcmp(s, "true") != 0 && strcmp(s, "false") != 0))
        return rc__config_fail(x, v,
                               "%s: 'spec.metadata.rawPayload' must be \"true\" or \"false\", not "
                               "'%s'",
                               sc->who, scalar_or(v));
    sc->d->tmpl.raw_payload = strcmp(s, "true") == 0;
    return 0;
}

static int routes_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    sub_ctx_t *sc = arg;
    if (strcmp(key, "rules") == 0) {
        if (v->type != YAML_SEQUENCE_NODE)
            return rc__config_fail(
                x, v, "%s: 'spec.routes.rules' must be an array of {match, path}", sc->who);
        sc->rules = v;
        return 0;
    }
    if (strcmp(key, "default") == 0) {
        if (rc__config_scalar(v) == NULL)
            return rc__config_fail(x, v, "%s: 'spec.routes.default' must be a path", sc->who);
        sc->deflt = v;
        return 0;
    }
    return rc__config_fail(x, v, "%s: unknown field 'spec.routes.%s'", sc->who, key);
}

static int sub_spec_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    sub_ctx_t *sc = arg;
    rc_config_dapr_sub_t *s = &sc->d->tmpl;
    const char *str = rc__config_scalar(v);
    char why[RC_CONFIG_ERR_MAX];
    if (strcmp(key, "pubsubname") == 0) {
        if (str == NULL || !rc__config_valid_dns_label(str))
            return rc__config_fail(x, v,
                                   "%s: 'spec.pubsubname' must be a Component name (a DNS label), "
                                   "not '%s'",
                                   sc->who, scalar_or(v));
        strcpy(s->pubsub, str);
        sc->d->pubsub_line = rc__config_line(v);
        return 0;
    }
    if (strcmp(key, "topic") == 0 || strcmp(key, "deadLetterTopic") == 0) {
        int topic = key[0] == 't';
        const char *field = topic ? "spec.topic" : "spec.deadLetterTopic";
        if (str == NULL)
            return rc__config_fail(x, v, "%s: '%s' must be a string", sc->who, field);
        if (rc__config_dapr_check_topic(str, field, why, sizeof(why)) != 0)
            return rc__config_fail(x, v, "%s: %s", sc->who, why);
        if (topic)
            strcpy(s->topic, str);
        else if ((s->dead_letter_topic = strdup(str)) == NULL)
            return -ENOMEM;
        return 0;
    }
    if (strcmp(key, "route") == 0) {
        if (str == NULL)
            return rc__config_fail(x, v, "%s: 'spec.route' must be a path", sc->who);
        sc->route = v;
        return 0;
    }
    if (strcmp(key, "routes") == 0)
        return rc__config_walk_map(x, v, "spec.routes", routes_field, sc);
    if (strcmp(key, "bulkSubscribe") == 0)
        return rc__config_walk_map(x, v, "spec.bulkSubscribe", bulk_field, sc);
    if (strcmp(key, "metadata") == 0)
        return rc__config_walk_map(x, v, "spec.metadata", sub_metadata_field, sc);
    return rc__config_fail(x, v, "%s: unknown field 'spec.%s'", sc->who, key);
}

static int sub_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    sub_ctx_t *sc = arg;
    if (strcmp(key, "apiVersion") == 0 || strcmp(key, "kind") == 0 || strcmp(key, "metadata") == 0)
        return 0;
    if (strcmp(key, "spec") == 0)
        return rc__config_walk_map(x, v, "spec", sub_spec_field, sc);
    if (strcmp(key, "scopes") == 0)
        return read_scopes(x, v, sc->who, sc->d);
    return rc__config_fail(x, v, "%s: unknown field '%s'", sc->who, key);
}

/* spec.routes.rules, spec.routes.default and spec.route, read, into the template's routes. */
static int sub_routes(sub_ctx_t *sc, yaml_node_t *root)
{
    ctx_t *x = sc->x;
    size_t n =
        sc->rules
            ? (size_t)(sc->rules->data.sequence.items.top - sc->rules->data.sequence.items.start)
            : 0;
    const char *match[RC_CONFIG_DAPR_RULES_MAX], *path[RC_CONFIG_DAPR_RULES_MAX];
    int match_line[RC_CONFIG_DAPR_RULES_MAX], path_line[RC_CONFIG_DAPR_RULES_MAX];
    if (sc->route != NULL && sc->deflt != NULL)
        return rc__config_fail(x, sc->route,
                               "%s: give 'spec.route' or 'spec.routes.default', not both", sc->who);
    if (n > RC_CONFIG_DAPR_RULES_MAX)
        return rc__config_fail(x, sc->rules, "%s: 'spec.routes.rules' has %zu rules, more than %u",
                               sc->who, n, RC_CONFIG_DAPR_RULES_MAX);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *r = rc__config_node(x, sc->rules->data.sequence.items.start[i]);
        yaml_node_t *m = NULL, *p = NULL;
        if (r->type != YAML_MAPPING_NODE)
            return rc__config_fail(
                x, r, "%s: 'spec.routes.rules[%zu]' must be a mapping {match, path}", sc->who, i);
        for (yaml_node_pair_t *kv = r->data.mapping.pairs.start; kv < r->data.mapping.pairs.top;
             kv++) {
            yaml_node_t *k = rc__config_node(x, kv->key);
            const char *key = rc__config_scalar(k);
            yaml_node_t **dst = key == NULL                 ? NULL
                                : strcmp(key, "match") == 0 ? &m
                                : strcmp(key, "path") == 0  ? &p
                                                            : NULL;
            if (dst == NULL)
                return rc__config_fail(x, k, "%s: unknown field 'spec.routes.rules[%zu].%s'",
                                       sc->who, i, key ? key : "(not a scalar)");
            *dst = rc__config_node(x, kv->value);
            if (rc__config_scalar(*dst) == NULL)
                return rc__config_fail(x, *dst, "%s: 'spec.routes.rules[%zu].%s' must be a string",
                                       sc->who, i, key);
        }
        if (p == NULL)
            return rc__config_fail(x, r, "%s: 'spec.routes.rules[%zu]' has no path", sc->who, i);
        match[i] = m ? rc__config_scalar(m) : NULL;
        match_line[i] = rc__config_line(m ? m : r);
        path[i] = rc__config_scalar(p);
        path_line[i] = rc__config_line(p);
    }
    yaml_node_t *dn = sc->route ? sc->route : sc->deflt;
    rc__config_dapr_routes_t in = {.count = n,
                                   .match = match,
                                   .path = path,
                                   .match_line = match_line,
                                   .path_line = path_line,
                                   .default_path = dn ? rc__config_scalar(dn) : NULL,
                                   .default_field = sc->route ? "spec.route" : "routes.default",
                                   .default_line = rc__config_line(dn)};
    char why[RC_CONFIG_ERR_MAX];
    int line = 0;
    int rc = rc__config_dapr_routes(&sc->d->tmpl, &in, why, sizeof(why), &line);
    if (rc == RC_ECONFIG)
        return fail_at(x, line ? line : rc__config_line(root), "%s: %s", sc->who, why);
    if (rc == 0 && sc->d->tmpl.rule_count == 0 && sc->d->tmpl.default_path == NULL)
        return rc__config_fail(x, root, "%s has no route (%s)", sc->who,
                               sc->v1 ? "spec.route" : "spec.routes.rules or spec.routes.default");
    return rc;
}

static void decl_free(decl_t *d)
{
    rc__config_dapr_sub_free(&d->tmpl);
    free(d->scopes);
    free(d->scope_lines);
    memset(d, 0, sizeof(*d));
}

/* Reads the document into `d`; the caller frees it on failure. */
static int read_subscription(sub_ctx_t *sc, yaml_node_t *root)
{
    ctx_t *x = sc->x;
    rc_config_dapr_sub_t *s = &sc->d->tmpl;
    int rc = rc__config_walk_map(x, root, "Subscription", sub_field, sc);
    if (rc != 0)
        return rc;
    if (s->pubsub[0] == '\0')
        return rc__config_fail(x, root, "%s has no spec.pubsubname", sc->who);
    if (s->topic[0] == '\0')
        return rc__config_fail(x, root, "%s has no spec.topic", sc->who);
    if (s->dead_letter_topic != NULL && strcmp(s->dead_letter_topic, s->topic) == 0)
        return rc__config_fail(x, root,
                               "%s: 'spec.deadLetterTopic' must differ from 'spec.topic' (%s): "
                               "its dead letters would come back to it",
                               sc->who, s->topic);
    return sub_routes(sc, root);
}

int rc__config_parse_subscription(ctx_t *x, yaml_node_t *root)
{
    struct rc__config_dapr_s *st = state(x);
    if (st == NULL)
        return -ENOMEM;
    decl_t d;
    memset(&d, 0, sizeof(d));
    rc_config_dapr_sub_t *s = &d.tmpl;
    strcpy(s->ns, "default");
    s->line = rc__config_line(root);
    s->bulk_max_messages = RC__CONFIG_DAPR_BULK_MESSAGES_DEF;
    s->bulk_max_await_ms = RC__CONFIG_DAPR_BULK_AWAIT_DEF_MS;
    yaml_node_t *md = NULL, *an = NULL;
    sub_ctx_t sc = {.x = x, .d = &d};
    rc__config_find_key(x, root, "apiVersion", &an);
    sc.v1 = strcmp(rc__config_scalar(an), "dapr.io/v1alpha1") == 0;
    if (!rc__config_find_key(x, root, "metadata", &md))
        return rc__config_fail(x, root, "Subscription has no metadata.name");
    int rc = rc__config_metadata_names(x, md, "Subscription", s->ns, s->name);
    if (rc != 0)
        return rc;
    if (s->name[0] == '\0')
        return rc__config_fail(x, md, "Subscription has no metadata.name");
    snprintf(sc.who, sizeof(sc.who), "Subscription %s/%s", s->ns, s->name);
    for (size_t i = 0; i < st->decl_count; i++) {
        const rc_config_dapr_sub_t *o = &st->decls[i].tmpl;
        if (strcmp(o->ns, s->ns) == 0 && strcmp(o->name, s->name) == 0)
            return rc__config_fail(x, root, "%s is defined twice (first at line %d)", sc.who,
                                   o->line);
    }
    rc = read_subscription(&sc, root);
    if (rc == 0) {
        decl_t *nd = realloc(st->decls, (st->decl_count + 1) * sizeof(*nd));
        if (nd != NULL) {
            st->decls = nd;
            st->decls[st->decl_count++] = d;
            return 0;
        }
        rc = -ENOMEM;
    }
    decl_free(&d);
    return rc;
}

/* ---- RingcastConfig spec.dapr ---------------------------------------------------------------- */

static int dapr_settings_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_t *c = arg;
    const char *s = NULL;
    if (strcmp(key, "listen") != 0)
        return rc__config_unknown_field(x, v, "spec.dapr.", key);
    int rc = rc__config_get_string(x, v, "spec.dapr.listen", &s);
    if (rc != 0)
        return rc;
    if (rc_config_parse_addr(s, c->dapr_host, sizeof(c->dapr_host), &c->dapr_port) != 0)
        return rc__config_fail(
            x, v,
            "'spec.dapr.listen' must be IP:PORT such as 127.0.0.1:3500 or [::1]:3500, not '%s'", s);
    if (c->dapr_port == 0)
        return rc__config_fail(x, v,
                               "'spec.dapr.listen' needs a port from 1 to 65535, not 0 (the Dapr "
                               "SDKs are told the sidecar's port)");
    state(x)->listen_line = rc__config_line(v);
    return 0;
}

int rc__config_dapr_settings(ctx_t *x, yaml_node_t *v)
{
    if (state(x) == NULL)
        return -ENOMEM;
    return rc__config_walk_map(x, v, "spec.dapr", dapr_settings_field, x->cfg);
}

/* ---- after the last document ----------------------------------------------------------------- */

/* Whether two listeners would take the same port: same port, and the same address or either the
 * wildcard (0.0.0.0 or ::, which takes every address of the machine). */
static int same_socket(const char *h1, int p1, const char *h2, int p2)
{
    unsigned char a[16] = {0}, b[16] = {0}, zero[16] = {0};
    if (p1 == 0 || p1 != p2)
        return 0;
    int fa = strchr(h1, ':') ? AF_INET6 : AF_INET, fb = strchr(h2, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fa, h1, a) != 1 || inet_pton(fb, h2, b) != 1)
        return strcmp(h1, h2) == 0;
    return memcmp(a, zero, 16) == 0 || memcmp(b, zero, 16) == 0 ||
           (fa == fb && memcmp(a, b, 16) == 0);
}

static int check_listen(ctx_t *x)
{
    const rc_config_t *c = x->cfg;
    const char *other = NULL, *host = NULL;
    int port = 0;
    if (c->dapr_port == 0)
        return 0;
    if (same_socket(c->dapr_host, c->dapr_port, c->listen_host, c->listen_port)) {
        other = "spec.listen";
        host = c->listen_host;
        port = c->listen_port;
    } else if (same_socket(c->dapr_host, c->dapr_port, c->admin_host, c->admin_port)) {
        other = "spec.admin";
        host = c->admin_host;
        port = c->admin_port;
    }
    if (other == NULL)
        return 0;
    int v6 = strchr(host, ':') != NULL, d6 = strchr(c->dapr_host, ':') != NULL;
    return fail_at(x, x->dapr->listen_line,
                   "'spec.dapr.listen' (%s%s%s:%d) takes the port of '%s' (%s%s%s:%d): the Dapr "
                   "listener needs a port of its own",
                   d6 ? "[" : "", c->dapr_host, d6 ? "]" : "", c->dapr_port, other, v6 ? "[" : "",
                   host, v6 ? "]" : "", port);
}

/* One subscription of declaration `d` for `app`. */
static int expand_one(ctx_t *x, const decl_t *d, const char *who, const rc_config_dapr_app_t *app,
                      const rc_config_pubsub_t *p)
{
    char why[RC_CONFIG_ERR_MAX];
    rc_config_dapr_sub_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    int rc = rc__config_dapr_sub_clone(s, &d->tmpl, why, sizeof(why));
    s->app = app;
    if (rc == 0)
        rc = rc__config_dapr_attach(x->cfg, s, p, why, sizeof(why));
    if (rc == 0)
        return 0;
    rc__config_dapr_sub_free(s);
    free(s);
    if (rc == -ENOMEM)
        return rc;
    return fail_at(x, d->tmpl.line, "%s: %s", who, why);
}

static int expand(ctx_t *x, const decl_t *d)
{
    rc_config_t *c = x->cfg;
    const rc_config_dapr_sub_t *t = &d->tmpl;
    char who[WHO_MAX];
    snprintf(who, sizeof(who), "Subscription %s/%s", t->ns, t->name);
    const rc_config_pubsub_t *p = rc_config_find_pubsub(c, t->pubsub, strlen(t->pubsub));
    if (p == NULL)
        return fail_at(x, d->pubsub_line,
                       "%s: 'spec.pubsubname' names pubsub '%s', which is not a Component of this "
                       "file",
                       who, t->pubsub);
    if (strcmp(p->ns, t->ns) != 0)
        return fail_at(x, d->pubsub_line,
                       "%s: 'spec.pubsubname' names Component %s/%s, of another namespace (a "
                       "Subscription uses the Components of its own namespace)",
                       who, p->ns, p->name);
    for (size_t i = 0; i < d->scope_count; i++) {
        const rc_config_dapr_app_t *app = rc_config_find_dapr_app(c, t->ns, d->scopes[i]);
        if (app == NULL)
            return fail_at(x, d->scope_lines[i],
                           "%s: 'scopes[%zu]' names app '%s', which is not a DaprApp of namespace "
                           "%s",
                           who, i, d->scopes[i], t->ns);
        int rc = expand_one(x, d, who, app, p);
        if (rc != 0)
            return rc;
    }
    if (d->scope_count > 0)
        return 0;
    size_t apps = 0;
    for (size_t i = 0; i < c->dapr_app_count; i++) {
        if (strcmp(c->dapr_apps[i].ns, t->ns) != 0)
            continue;
        apps++;
        int rc = expand_one(x, d, who, &c->dapr_apps[i], p);
        if (rc != 0)
            return rc;
    }
    if (apps == 0)
        return fail_at(x, t->line,
                       "%s applies to no app: it has no scopes and namespace %s has no DaprApp",
                       who, t->ns);
    return 0;
}

int rc__config_dapr_resolve(ctx_t *x)
{
    rc_config_t *c = x->cfg;
    if (x->dapr == NULL)
        return 0; /* no Dapr document and no spec.dapr */
    int rc = check_listen(x);
    for (size_t i = 0; rc == 0 && i < c->pubsub_count; i++) {
        const rc_config_pubsub_t *p = &c->pubsubs[i];
        if (rc_config_find_broker(c, p->ns, strlen(p->ns), p->broker, strlen(p->broker)) == NULL)
            rc = fail_at(x, x->dapr->broker_lines[i],
                         "Component %s/%s: metadata 'broker' names broker '%s', which is not "
                         "defined in namespace %s",
                         p->ns, p->name, p->broker, p->ns);
    }
    for (size_t i = 0; rc == 0 && i < x->dapr->decl_count; i++)
        rc = expand(x, &x->dapr->decls[i]);
    return rc;
}

void rc__config_dapr_end(ctx_t *x)
{
    struct rc__config_dapr_s *st = x->dapr;
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->decl_count; i++)
        decl_free(&st->decls[i]);
    free(st->decls);
    free(st->broker_lines);
    free(st);
    x->dapr = NULL;
}

/* ---- lookups and release --------------------------------------------------------------------- */

const rc_config_pubsub_t *rc_config_find_pubsub(const rc_config_t *c, const char *name,
                                                size_t name_len)
{
    for (size_t i = 0; i < c->pubsub_count; i++) {
        const rc_config_pubsub_t *p = &c->pubsubs[i];
        if (strlen(p->name) == name_len && memcmp(p->name, name, name_len) == 0)
            return p;
    }
    return NULL;
}

const rc_config_dapr_app_t *rc_config_find_dapr_app(const rc_config_t *c, const char *ns,
                                                    const char *name)
{
    for (size_t i = 0; i < c->dapr_app_count; i++) {
        if (strcmp(c->dapr_apps[i].ns, ns) == 0 && strcmp(c->dapr_apps[i].name, name) == 0)
            return &c->dapr_apps[i];
    }
    return NULL;
}

void rc__config_dapr_free(rc_config_t *c)
{
    for (size_t i = 0; i < c->dapr_sub_count; i++) {
        rc__config_dapr_sub_free(c->dapr_subs[i]);
        free(c->dapr_subs[i]);
    }
    free(c->dapr_subs);
    for (size_t i = 0; i < c->dapr_app_count; i++)
        app_free(&c->dapr_apps[i]);
    free(c->dapr_apps);
    free(c->pubsubs);
    c->dapr_subs = NULL;
    c->dapr_apps = NULL;
    c->pubsubs = NULL;
    c->dapr_sub_count = c->dapr_app_count = c->pubsub_count = 0;
}
