/* Loading `Trigger` (eventing.knative.dev/v1) and `Service` (v1) manifests: metadata and the
 * ringcast.dev/ annotations, spec.broker, spec.filter / spec.filters through the filter builder
 * (core/filter.h), spec.subscriber (uri, or a ref to a Service of the same file), spec.delivery;
 * a Service's ports[0] (port, targetPort); and, once every document is in, the refs to Services
 * (subscribers and dead-letter sinks of Brokers and Triggers) turned into URLs. Every message
 * names the file, the line, the trigger and the field. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_internal.h"
#include "core/config_uri.h"
#include "core/delivery_policy.h"
#include "core/errors.h"
#include "core/filter.h"
#include "core/validate.h"

typedef struct {
    rc__config_ctx_t *x;
    rc_config_trigger_t *t;
    char who[2 * RC_CONFIG_NAME_MAX + 16]; /* "Trigger ns/name" for messages */
    yaml_node_t *ref;                      /* spec.subscriber.ref, resolved later */
    yaml_node_t *sub;                      /* spec.subscriber */
    yaml_node_t *uri;                      /* spec.subscriber.uri, checked once ref is known */
    char ref_ns[RC_CONFIG_NAME_MAX + 1];
} trig_ctx_t;

static rc_str_t str_of(const char *s)
{
    return (rc_str_t){s, strlen(s)};
}

/* A builder error: its message already names the path under spec. */
static int filter_fail(trig_ctx_t *tc, yaml_node_t *at, int rc, const rc_filter_error_t *e)
{
    if (rc == -ENOMEM)
        return rc;
    return rc__config_fail(tc->x, at, "%s: %s", tc->who, e->msg);
}

/* ---- metadata ---------------------------------------------------------------------------- */

/* ringcast.dev/start-from: oldest, latest or an RFC 3339 time with its offset (the
 * knativearrivaltime an event must have reached). */
static int start_from(trig_ctx_t *tc, yaml_node_t *v)
{
    const char *s = rc__config_scalar(v);
    int64_t sec = 0;
    uint32_t nsec = 0;
    if (s != NULL && strcmp(s, "oldest") == 0) {
        tc->t->start_from = RC_START_FROM_OLDEST;
    } else if (s != NULL && strcmp(s, "latest") == 0) {
        tc->t->start_from = RC_START_FROM_LATEST;
    } else if (s != NULL && rc_ce_time_parse(str_of(s), &sec, &nsec) == 0 && sec >= 0 &&
               sec < INT64_MAX / 1000000000 - 1) {
        tc->t->start_from = RC_START_FROM_TIME;
        tc->t->start_from_ns = sec * 1000000000 + (int64_t)nsec;
    } else {
        return rc__config_fail(tc->x, v,
                               "%s: 'metadata.annotations.ringcast.dev/start-from' must be "
                               "oldest, latest or an RFC 3339 time such as "
                               "2026-01-02T15:04:05Z, not '%s'",
                               tc->who, s ? s : "(not a scalar)");
    }
    return 0;
}

/* ringcast.dev/rate-limit: events per second, a decimal number with at most 3 decimals (kept
 * in thousandths, so the worker's arithmetic is integer), from 0.001 to 1,000,000. No sign, no
 * exponent, no unit: "500", "0.5", "12.25". */
static int rate_annotation(trig_ctx_t *tc, yaml_node_t *v)
{
    const char *s = rc__config_scalar(v);
    uint64_t milli = 0;
    int digits = 0, decimals = -1, ok = s != NULL && *s != '\0';
    for (const char *p = s; ok && *p != '\0'; p++) {
        if (*p == '.' && decimals < 0 && digits > 0 && p[1] != '\0') {
            decimals = 0;
        } else if (*p >= '0' && *p <= '9' && decimals < 3 && milli <= RC_CONFIG_RATE_MILLI_MAX) {
            milli = milli * 10 + (uint64_t)(*p - '0');
            digits++;
            decimals += decimals >= 0;
        } else {
            ok = 0;
        }
    }
    for (int i = decimals < 0 ? 0 : decimals; ok && i < 3; i++)
        milli *= 10;
    if (!ok || milli == 0 || milli > RC_CONFIG_RATE_MILLI_MAX)
        return rc__config_fail(tc->x, v,
                               "%s: 'metadata.annotations.ringcast.dev/rate-limit' must be a "
                               "number of events per second from 0.001 to 1000000 (at most 3 "
                               "decimals), not '%s'",
                               tc->who, s ? s : "(not a scalar)");
    tc->t->rate_milli = milli;
    return 0;
}

/* Annotations outside ringcast.dev/ belong to other tools and are left alone; one inside it
 * that ringcast does not read is refused, since it would do nothing (a misspelling, or a
 * setting ringcast does not have). */
static int annotation(trig_ctx_t *tc, const char *key, yaml_node_t *v)
{
    if (strcmp(key, "ringcast.dev/lag-limit") == 0 || strcmp(key, "ringcast.dev/lag-policy") == 0)
        return rc__config_lag_annotation(tc->x, tc->who, key, v, &tc->t->lag);
    if (strncmp(key, "ringcast.dev/", 13) != 0)
        return 0;
    if (strcmp(key, "ringcast.dev/start-from") == 0)
        return start_from(tc, v);
    if (strcmp(key, "ringcast.dev/rate-limit") == 0)
        return rate_annotation(tc, v);
    if (strcmp(key, "ringcast.dev/max-inflight") != 0)
        return rc__config_unknown_annotation(tc->x, v, tc->who, key);
    const char *s = rc__config_scalar(v);
    char *end = NULL;
    errno = 0;
    long n = s ? strtol(s, &end, 10) : 0;
    if (s == NULL || *s == '\0' || *end != '\0' || errno != 0 || n < 1 ||
        n > (long)RC_CONFIG_MAX_INFLIGHT_MAX)
        return rc__config_fail(
            tc->x, v,
            "%s: 'metadata.annotations.ringcast.dev/max-inflight' must be an integer "
            "from 1 to %u, not '%s'",
            tc->who, RC_CONFIG_MAX_INFLIGHT_MAX, s ? s : "(not a scalar)");
    tc->t->max_inflight = (uint32_t)n;
    return 0;
}

static int annotations_field(rc__config_ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    (void)x;
    return annotation(arg, key, v);
}

/* ---- spec.filter / spec.filters ---------------------------------------------------------- */

static int filter_object(trig_ctx_t *tc, yaml_node_t *v, rc_filter_node_t *parent);

static int filter_value(trig_ctx_t *tc, rc_filter_node_t *obj, rc_filter_dialect_t d,
                        yaml_node_t *v)
{
    rc__config_ctx_t *x = tc->x;
    rc_filter_t *f = tc->t->filter;
    rc_filter_error_t e;
    int rc;
    switch (d) {
    case RC_FILTER_EXACT:
    case RC_FILTER_PREFIX:
    case RC_FILTER_SUFFIX:
        if (v->type != YAML_MAPPING_NODE)
            return filter_fail(tc, v,
                               rc_filter_error_at(f, obj, rc__config_line(v), &e,
                                                  "must be a map of attribute names to strings"),
                               &e);
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = rc__config_node(x, p->key), *val = rc__config_node(x, p->value);
            if (rc__config_scalar(k) == NULL || rc__config_scalar(val) == NULL)
                return filter_fail(tc, val,
                                   rc_filter_error_at(f, obj, rc__config_line(val), &e,
                                                      "must be a map of attribute names to "
                                                      "strings"),
                                   &e);
            rc = rc_filter_add_pair(f, obj, str_of(rc__config_scalar(k)),
                                    str_of(rc__config_scalar(val)), rc__config_line(k), &e);
            if (rc != 0)
                return filter_fail(tc, k, rc, &e);
        }
        return 0;
    case RC_FILTER_ALL:
    case RC_FILTER_ANY:
        if (v->type != YAML_SEQUENCE_NODE)
            return filter_fail(tc, v,
                               rc_filter_error_at(f, obj, rc__config_line(v), &e,
                                                  "must be an array of filter objects"),
                               &e);
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            rc = filter_object(tc, rc__config_node(x, *it), obj);
            if (rc != 0)
                return rc;
        }
        return 0;
    case RC_FILTER_NOT:
        return filter_object(tc, v, obj);
    case RC_FILTER_CESQL:
        if (rc__config_scalar(v) == NULL)
            return filter_fail(tc, v,
                               rc_filter_error_at(f, obj, rc__config_line(v), &e,
                                                  "must be a string (a CESQL expression)"),
                               &e);
        rc = rc_filter_set_cesql(f, obj, str_of(rc__config_scalar(v)), rc__config_line(v), &e);
        return rc != 0 ? filter_fail(tc, v, rc, &e) : 0;
    }
    return filter_fail(tc, v, rc_filter_error_at(f, obj, rc__config_line(v), &e, "unknown dialect"),
                       &e);
}

static int filter_object(trig_ctx_t *tc, yaml_node_t *v, rc_filter_node_t *parent)
{
    rc__config_ctx_t *x = tc->x;
    rc_filter_t *f = tc->t->filter;
    rc_filter_error_t e;
    rc_filter_node_t *obj = NULL;
    int rc = rc_filter_add_object(f, parent, rc__config_line(v), &obj, &e);
    if (rc != 0)
        return filter_fail(tc, v, rc, &e);
    if (v->type != YAML_MAPPING_NODE)
        return filter_fail(tc, v,
                           rc_filter_error_at(f, obj, rc__config_line(v), &e,
                                              "must be a filter object (a mapping with one "
                                              "dialect)"),
                           &e);
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = rc__config_node(x, p->key);
        const char *key = rc__config_scalar(k);
        if (key == NULL)
            return filter_fail(
                tc, k,
                rc_filter_error_at(f, obj, rc__config_line(k), &e, "keys must be plain strings"),
                &e);
        rc_filter_dialect_t d;
        rc = rc_filter_set_dialect(f, obj, str_of(key), rc__config_line(k), &d, &e);
        if (rc != 0)
            return filter_fail(tc, k, rc, &e);
        rc = filter_value(tc, obj, d, rc__config_node(x, p->value));
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int filter_attrs_field(rc__config_ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    trig_ctx_t *tc = arg;
    rc_filter_error_t e;
    if (strcmp(key, "attributes") != 0)
        return rc__config_fail(x, v, "%s: unknown field 'spec.filter.%s'", tc->who, key);
    if (v->type != YAML_MAPPING_NODE)
        return rc__config_fail(
            x, v,
            "%s: 'spec.filter.attributes' must be a mapping of attribute names to "
            "strings",
            tc->who);
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = rc__config_node(x, p->key), *val = rc__config_node(x, p->value);
        if (rc__config_scalar(k) == NULL || rc__config_scalar(val) == NULL)
            return rc__config_fail(
                x, val,
                "%s: 'spec.filter.attributes' must be a mapping of attribute names to "
                "strings",
                tc->who);
        int rc = rc_filter_add_attribute(tc->t->filter, str_of(rc__config_scalar(k)),
                                         str_of(rc__config_scalar(val)), rc__config_line(k), &e);
        if (rc != 0)
            return filter_fail(tc, k, rc, &e);
    }
    return 0;
}

/* ---- spec.subscriber --------------------------------------------------------------------- */

static int ref_field(rc__config_ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    trig_ctx_t *tc = arg;
    const char *s = rc__config_scalar(v);
    if (strcmp(key, "kind") == 0) {
        if (s == NULL || strcmp(s, "Service") != 0)
            return rc__config_fail(
                x, v,
                "%s: 'spec.subscriber.ref.kind' must be Service (the only kind ringcast "
                "resolves), not '%s'",
                tc->who, s ? s : "(not a scalar)");
        return 0;
    }
    if (strcmp(key, "apiVersion") == 0) {
        if (s == NULL || (strcmp(s, "v1") != 0 && strcmp(s, "serving.knative.dev/v1") != 0))
            return rc__config_fail(x, v,
                                   "%s: 'spec.subscriber.ref.apiVersion' must be v1 or "
                                   "serving.knative.dev/v1, not '%s'",
                                   tc->who, s ? s : "(not a scalar)");
        return 0;
    }
    if (strcmp(key, "name") == 0 || strcmp(key, "namespace") == 0) {
        if (s == NULL || !rc__config_valid_dns_label(s))
            return rc__config_fail(x, v,
                                   "%s: 'spec.subscriber.ref.%s' must be a DNS label, not '%s'",
                                   tc->who, key, s ? s : "(not a scalar)");
        if (strcmp(key, "name") == 0) {
            free(tc->t->service_ref);
            tc->t->service_ref = strdup(s);
            return tc->t->service_ref ? 0 : -ENOMEM;
        }
        strcpy(tc->ref_ns, s);
        return 0;
    }
    return rc__config_fail(x, v, "%s: unknown field 'spec.subscriber.ref.%s'", tc->who, key);
}

static int subscriber_field(rc__config_ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    trig_ctx_t *tc = arg;
    if (strcmp(key, "uri") == 0) {
        const char *s = rc__config_scalar(v);
        if (s == NULL || *s == '\0')
            return rc__config_fail(x, v, "%s: 'spec.subscriber.uri' must be a non-empty string",
                                   tc->who);
        if (strlen(s) >= RC_DELIVERY_URI_MAX)
            return rc__config_fail(x, v, "%s: 'spec.subscriber.uri' is longer than %d bytes",
                                   tc->who, RC_DELIVERY_URI_MAX - 1);
        for (const char *c = s; *c; c++) {
            if ((unsigned char)*c <= ' ' || *c == 0x7f)
                return rc__config_fail(x, v,
                                       "%s: 'spec.subscriber.uri' contains a space or control "
                                       "character",
                                       tc->who);
        }
        free(tc->t->subscriber_uri);
        tc->t->subscriber_uri = strdup(s);
        tc->uri = v;
        return tc->t->subscriber_uri ? 0 : -ENOMEM;
    }
    if (strcmp(key, "ref") == 0) {
        tc->ref = v;
        return rc__config_walk_map(x, v, "spec.subscriber.ref", ref_field, tc);
    }
    return rc__config_fail(x, v, "%s: unknown field 'spec.subscriber.%s'", tc->who, key);
}

/* A subscriber URI of its own (no ref) must be one the HTTP client can send to: refused here,
 * with its line, rather than at every delivery. The URI is quoted with any user information
 * masked, since the message is logged (a reload) or printed. */
static int check_subscriber_uri(trig_ctx_t *tc)
{
    rc_config_uri_t u;
    char why[256], shown[RC_DELIVERY_URI_MAX];
    if (rc_config_uri_parse(tc->t->subscriber_uri, &u, why, sizeof(why)) == 0)
        return 0;
    rc_config_uri_redact(tc->t->subscriber_uri, shown, sizeof(shown));
    size_t n = strlen(shown);
    return rc__config_fail(tc->x, tc->uri, "%s: 'spec.subscriber.uri' \"%.*s%s\": %s", tc->who,
                           n > 80 ? 80 : (int)n, shown, n > 80 ? "..." : "", why);
}

/* ---- Trigger ----------------------------------------------------------------------------- */

static int trigger_spec_field(rc__config_ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    trig_ctx_t *tc = arg;
    rc_config_trigger_t *t = tc->t;
    if (strcmp(key, "broker") == 0) {
        const char *s = rc__config_scalar(v);
        if (s == NULL || !rc__config_valid_dns_label(s))
            return rc__config_fail(
                x, v, "%s: 'spec.broker' must be a broker name (a DNS label), not '%s'", tc->who,
                s ? s : "(not a scalar)");
        strcpy(t->broker, s);
        return 0;
    }
    if (strcmp(key, "filter") == 0)
        return rc__config_walk_map(x, v, "spec.filter", filter_attrs_field, tc);
    if (strcmp(key, "filters") == 0) {
        if (v->type != YAML_SEQUENCE_NODE)
            return rc__config_fail(x, v, "%s: 'spec.filters' must be an array of filter objects",
                                   tc->who);
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            int rc = filter_object(tc, rc__config_node(x, *it), NULL);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    if (strcmp(key, "subscriber") == 0) {
        t->subscriber_line = rc__config_line(v);
        tc->sub = v;
        return rc__config_walk_map(x, v, "spec.subscriber", subscriber_field, tc);
    }
    if (strcmp(key, "delivery") == 0) {
        int rc = rc__config_delivery(x, v, &t->delivery);
        if (rc == RC_ECONFIG) {
            /* Put the trigger's name after "FILE:LINE: ". */
            char *colon = strstr(x->err, ": ");
            if (colon != NULL) {
                char rest[RC_CONFIG_ERR_MAX];
                snprintf(rest, sizeof(rest), "%s", colon + 2);
                size_t off = (size_t)(colon + 2 - x->err);
                snprintf(colon + 2, x->err_len - off, "%s: %s", tc->who, rest);
            }
        }
        return rc;
    }
    return rc__config_fail(x, v, "%s: unknown field 'spec.%s'", tc->who, key);
}

static int trigger_field(rc__config_ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    trig_ctx_t *tc = arg;
    if (strcmp(key, "apiVersion") == 0 || strcmp(key, "kind") == 0 || strcmp(key, "status") == 0)
        return 0;
    if (strcmp(key, "metadata") == 0) {
        yaml_node_t *ann = NULL;
        if (rc__config_find_key(x, v, "annotations", &ann))
            return rc__config_walk_map(x, ann, "metadata.annotations", annotations_field, tc);
        return 0; /* names were read first */
    }
    if (strcmp(key, "spec") == 0)
        return rc__config_walk_map(x, v, "spec", trigger_spec_field, tc);
    return rc__config_fail(x, v, "%s: unknown field '%s'", tc->who, key);
}

void rc__config_trigger_free(rc_config_trigger_t *t)
{
    rc_filter_destroy(t->filter);
    free(t->subscriber_uri);
    free(t->service_ref);
    rc__config_delivery_free(&t->delivery);
    memset(t, 0, sizeof(*t));
}

int rc__config_parse_trigger(rc__config_ctx_t *x, yaml_node_t *root)
{
    rc_config_t *c = x->cfg;
    rc_config_trigger_t t;
    memset(&t, 0, sizeof(t));
    t.delivery.retry = -1;
    t.max_inflight = RC_CONFIG_MAX_INFLIGHT_DEFAULT;
    t.line = rc__config_line(root);
    strcpy(t.ns, "default");
    trig_ctx_t tc = {.x = x, .t = &t};
    yaml_node_t *md = NULL;
    int rc = 0;
    if (c->trigger_count >= RC_CONFIG_TRIGGERS_MAX)
        return rc__config_fail(x, root, "more than %u triggers", RC_CONFIG_TRIGGERS_MAX);
    if (!rc__config_find_key(x, root, "metadata", &md))
        return rc__config_fail(x, root, "Trigger has no metadata.name");
    rc = rc__config_metadata_names(x, md, "Trigger", t.ns, t.name);
    if (rc != 0)
        return rc;
    if (t.name[0] == '\0')
        return rc__config_fail(x, md, "Trigger has no metadata.name");
    snprintf(tc.who, sizeof(tc.who), "Trigger %s/%s", t.ns, t.name);
    strcpy(tc.ref_ns, t.ns);
    for (size_t i = 0; i < c->trigger_count; i++) {
        if (strcmp(c->triggers[i].ns, t.ns) == 0 && strcmp(c->triggers[i].name, t.name) == 0)
            return rc__config_fail(x, root, "%s is defined twice (first at line %d)", tc.who,
                                   c->triggers[i].line);
    }
    rc = rc_filter_create(&t.filter);
    if (rc == 0)
        rc = rc__config_walk_map(x, root, "Trigger", trigger_field, &tc);
    if (rc == 0 && t.broker[0] == '\0')
        rc = rc__config_fail(x, root, "%s has no spec.broker", tc.who);
    if (rc == 0 && t.subscriber_line == 0)
        rc = rc__config_fail(x, root, "%s has no spec.subscriber", tc.who);
    if (rc == 0 && tc.ref != NULL && t.service_ref == NULL)
        rc = rc__config_fail(x, tc.ref, "%s: 'spec.subscriber.ref' has no name", tc.who);
    if (rc == 0 && t.subscriber_uri == NULL && t.service_ref == NULL)
        rc = rc__config_fail(x, tc.sub, "%s: spec.subscriber needs uri or ref", tc.who);
    if (rc == 0 && t.service_ref == NULL)
        rc = check_subscriber_uri(&tc);
    if (rc == 0 && t.service_ref != NULL && t.subscriber_uri != NULL &&
        t.subscriber_uri[0] != '/') {
        char shown[RC_DELIVERY_URI_MAX];
        rc = rc__config_fail(
            x, tc.sub,
            "%s: with spec.subscriber.ref, 'spec.subscriber.uri' must be a path starting "
            "with '/', not '%s'",
            tc.who, rc_config_uri_redact(t.subscriber_uri, shown, sizeof(shown)));
    }
    if (rc == 0 && t.service_ref != NULL && strcmp(tc.ref_ns, t.ns) != 0)
        rc = rc__config_fail(x, tc.ref,
                             "%s: 'spec.subscriber.ref.namespace' must be the trigger's own (%s)",
                             tc.who, t.ns);
    if (rc == 0) {
        rc_filter_error_t e;
        int frc = rc_filter_finish(t.filter, &e);
        if (frc != 0)
            rc = e.line > 0 ? filter_fail(&tc, root, frc, &e)
                            : rc__config_fail(x, root, "%s: %s", tc.who, e.msg);
        if (frc != 0 && e.line > 0) {
            /* Report the line the builder located the problem at. */
            snprintf(x->err, x->err_len, "%s:%d: %s: %s", x->file, e.line, tc.who, e.msg);
        }
    }
    if (rc == 0) {
        rc_delivery_t check;
        char msg[256];
        if (rc_delivery_from_config(&t.delivery, &check, msg, sizeof(msg)) != 0)
            rc = rc__config_fail(x, root, "%s: %s", tc.who, msg);
    }
    if (rc == 0) {
        rc_config_trigger_t *nt = realloc(c->triggers, (c->trigger_count + 1) * sizeof(*nt));
        if (nt == NULL) {
            rc = -ENOMEM;
        } else {
            c->triggers = nt;
            c->triggers[c->trigger_count++] = t;
            return 0;
        }
    }
    rc__config_trigger_free(&t);
    return rc;
}

/* ---- Service ----------------------------------------------------------------------------- */

/* A Service stands for a local subscriber: only spec.ports[0] means something here. What else a
 * Kubernetes Service says (selector, type, more ports, ...) is read, named in one warning and
 * otherwise left alone, so a manifest kept for a cluster loads unchanged. */
typedef struct {
    rc_config_service_t *s;
    char who[2 * RC_CONFIG_NAME_MAX + 16];
    char ignored[256]; /* "spec.selector, spec.type" */
    yaml_node_t *ports;
} svc_ctx_t;

static void ignore(svc_ctx_t *sc, const char *field)
{
    size_t n = strlen(sc->ignored);
    if (n + strlen(field) + 8 >= sizeof(sc->ignored)) {
        if (n + 5 < sizeof(sc->ignored) && strcmp(sc->ignored + n - 3, "...") != 0)
            strcpy(sc->ignored + n, ", ...");
        return;
    }
    snprintf(sc->ignored + n, sizeof(sc->ignored) - n, "%s%s", n ? ", " : "", field);
}

static int port_number(rc__config_ctx_t *x, yaml_node_t *v, const char *who, const char *field,
                       int *out)
{
    const char *s = rc__config_scalar(v);
    char *end = NULL;
    errno = 0;
    long n = s ? strtol(s, &end, 10) : 0;
    if (s == NULL || *s == '\0' || *end != '\0' || errno != 0 || n < 1 || n > 65535)
        return rc__config_fail(x, v, "%s: '%s' must be an integer from 1 to 65535, not '%s'", who,
                               field, s ? s : "(not a scalar)");
    *out = (int)n;
    return 0;
}

static int port_field(rc__config_ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    svc_ctx_t *sc = arg;
    const char *s = rc__config_scalar(v);
    if (strcmp(key, "port") == 0)
        return port_number(x, v, sc->who, "spec.ports[0].port", &sc->s->port);
    if (strcmp(key, "targetPort") == 0) {
        /* Kubernetes allows a container port's name here; ringcast runs no pods to ask. */
        if (s != NULL && *s != '\0' && strspn(s, "0123456789") != strlen(s))
            return rc__config_fail(x, v,
                                   "%s: 'spec.ports[0].targetPort' is the named port '%s': "
                                   "ringcast cannot look up a container's port names; give "
                                   "the port number the subscriber listens on",
                                   sc->who, s);
        return port_number(x, v, sc->who, "spec.ports[0].targetPort", &sc->s->target_port);
    }
    if (strcmp(key, "protocol") == 0) {
        if (s == NULL || strcmp(s, "TCP") != 0)
            return rc__config_fail(x, v,
                                   "%s: 'spec.ports[0].protocol' must be TCP (events go over "
                                   "HTTP), not '%s'",
                                   sc->who, s ? s : "(not a scalar)");
        return 0;
    }
    if (strcmp(key, "name") == 0 || strcmp(key, "appProtocol") == 0)
        return 0; /* labels for people and tools: nothing to honour */
    if (strcmp(key, "nodePort") == 0) {
        ignore(sc, "spec.ports[0].nodePort");
        return 0;
    }
    return rc__config_fail(x, v, "%s: unknown field 'spec.ports[0].%s'", sc->who, key);
}

/* One item of ringcast.dev/endpoints, "HOST:PORT" or "http://HOST:PORT", into `out` as a base
 * URL; `item` is not NUL-terminated. Returns 0, or -1 with `why` filled. */
static int endpoint_item(const char *item, size_t n, char *out, size_t cap, char *why,
                         size_t why_len)
{
    if (n >= 7 && strncmp(item, "http://", 7) == 0)
        item += 7, n -= 7;
    else if (memmem(item, n, "://", 3) != NULL) {
        snprintf(why, why_len, "'%.*s': only http:// is supported", (int)n, item);
        return -1;
    }
    if (n > 0 && item[n - 1] == '/')
        n--; /* a base URL may end with '/' */
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++) {
        char c = item[i];
        if (c == '/') {
            snprintf(why, why_len,
                     "'%.*s' has a path: an endpoint is HOST:PORT (the path is the Trigger's "
                     "spec.subscriber.uri)",
                     (int)n, item);
            return -1;
        }
        if (c == ':' && item[0] != '[')
            colon = &item[i];
        else if (c == ']' && i + 1 < n && item[i + 1] == ':')
            colon = &item[i + 1];
        else if (!(isalnum((unsigned char)c) || c == '.' || c == '-' || c == '[' || c == ']' ||
                   (c == ':' && item[0] == '[')))
            break;
    }
    char *end = NULL;
    long port = colon != NULL ? strtol(colon + 1, &end, 10) : 0;
    if (colon == NULL || colon == item || end != item + n || port < 1 || port > 65535) {
        snprintf(why, why_len, "'%.*s' is not HOST:PORT (a port from 1 to 65535)", (int)n, item);
        return -1;
    }
    if ((size_t)snprintf(out, cap, "http://%.*s", (int)n, item) >= cap) {
        snprintf(why, why_len, "'%.*s' is too long", (int)n, item);
        return -1;
    }
    return 0;
}

/* ringcast.dev/endpoints: "HOST:PORT, HOST:PORT, ..." (docs/delivery.md, "HTTP replicas"). */
static int service_endpoints(rc__config_ctx_t *x, yaml_node_t *v, svc_ctx_t *sc)
{
    rc_config_service_t *svc = sc->s;
    const char *s = rc__config_scalar(v);
    if (s == NULL)
        return rc__config_fail(x, v, "%s: 'metadata.annotations.ringcast.dev/endpoints' must be "
                                     "a string",
                               sc->who);
    while (*s != '\0') {
        while (*s == ' ' || *s == ',')
            s++;
        size_t n = strcspn(s, ",");
        while (n > 0 && s[n - 1] == ' ')
            n--;
        if (n == 0)
            break;
        char url[RC_DELIVERY_URI_MAX], why[256];
        if (endpoint_item(s, n, url, sizeof(url), why, sizeof(why)) != 0)
            return rc__config_fail(x, v, "%s: ringcast.dev/endpoints: %s", sc->who, why);
        for (size_t i = 0; i < svc->endpoint_count; i++) {
            if (strcmp(svc->endpoints[i], url) == 0)
                return rc__config_fail(x, v, "%s: ringcast.dev/endpoints: %s is listed twice",
                                       sc->who, url + 7);
        }
        if (svc->endpoint_count == RC_CONFIG_DAPR_REPLICAS_MAX)
            return rc__config_fail(x, v, "%s: ringcast.dev/endpoints: more than %u endpoints",
                                   sc->who, RC_CONFIG_DAPR_REPLICAS_MAX);
        char **list = realloc(svc->endpoints, (svc->endpoint_count + 1) * sizeof(*list));
        if (list == NULL)
            return -ENOMEM;
        svc->endpoints = list;
        if ((list[svc->endpoint_count] = strdup(url)) == NULL)
            return -ENOMEM;
        svc->endpoint_count++;
        s += strcspn(s, ",");
    }
    if (svc->endpoint_count == 0)
        return rc__config_fail(x, v, "%s: ringcast.dev/endpoints is empty (give HOST:PORT, ...)",
                               sc->who);
    return 0;
}

/* A Service's annotations: ringcast.dev/endpoints; any other ringcast.dev/ one is an error. */
static int service_annotations(rc__config_ctx_t *x, yaml_node_t *md, svc_ctx_t *sc)
{
    yaml_node_t *ann = NULL;
    if (!rc__config_find_key(x, md, "annotations", &ann) || ann->type != YAML_MAPPING_NODE)
        return 0;
    for (yaml_node_pair_t *p = ann->data.mapping.pairs.start; p < ann->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = rc__config_node(x, p->key);
        const char *key = rc__config_scalar(k);
        if (key == NULL || strncmp(key, "ringcast.dev/", 13) != 0)
            continue;
        if (strcmp(key, "ringcast.dev/endpoints") != 0)
            return rc__config_fail(x, k,
                                   "%s: unknown annotation '%s' (a Service's is "
                                   "ringcast.dev/endpoints)",
                                   sc->who, key);
        int rc = service_endpoints(x, rc__config_node(x, p->value), sc);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int service_spec_field(rc__config_ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    svc_ctx_t *sc = arg;
    if (strcmp(key, "ports") != 0) {
        char field[80];
        snprintf(field, sizeof(field), "spec.%s", key);
        ignore(sc, field);
        return 0;
    }
    sc->ports = v;
    if (v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.start == v->data.sequence.items.top)
        return rc__config_fail(x, v, "%s: 'spec.ports' must be a non-empty array", sc->who);
    yaml_node_t *p0 = rc__config_node(x, *v->data.sequence.items.start);
    if (p0->type != YAML_MAPPING_NODE)
        return rc__config_fail(x, p0, "%s: 'spec.ports[0]' must be a mapping with 'port'", sc->who);
    int rc = rc__config_walk_map(x, p0, "spec.ports[0]", port_field, sc);
    if (rc == 0 && sc->s->port == 0)
        return rc__config_fail(x, p0, "%s: 'spec.ports[0]' must be a mapping with 'port'", sc->who);
    if (rc == 0 && v->data.sequence.items.top - v->data.sequence.items.start > 1)
        ignore(sc, "spec.ports[1:]");
    return rc;
}

static int service_field(rc__config_ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    svc_ctx_t *sc = arg;
    if (strcmp(key, "apiVersion") == 0 || strcmp(key, "kind") == 0 || strcmp(key, "status") == 0 ||
        strcmp(key, "metadata") == 0)
        return 0; /* names were read first; status is output only */
    if (strcmp(key, "spec") == 0)
        return rc__config_walk_map(x, v, "spec", service_spec_field, sc);
    return rc__config_fail(x, v, "%s: unknown field '%s'", sc->who, key);
}

int rc__config_parse_service(rc__config_ctx_t *x, yaml_node_t *root)
{
    rc_config_t *c = x->cfg;
    rc_config_service_t s;
    memset(&s, 0, sizeof(s));
    strcpy(s.ns, "default");
    s.line = rc__config_line(root);
    svc_ctx_t sc = {.s = &s};
    yaml_node_t *md = NULL;
    if (!rc__config_find_key(x, root, "metadata", &md))
        return rc__config_fail(x, root, "Service has no metadata.name");
    int rc = rc__config_metadata_names(x, md, "Service", s.ns, s.name);
    if (rc != 0)
        return rc;
    if (s.name[0] == '\0')
        return rc__config_fail(x, md, "Service has no metadata.name");
    snprintf(sc.who, sizeof(sc.who), "Service %s/%s", s.ns, s.name);
    for (size_t i = 0; i < c->service_count; i++) {
        if (strcmp(c->services[i].ns, s.ns) == 0 && strcmp(c->services[i].name, s.name) == 0)
            return rc__config_fail(x, root, "%s is defined twice (first at line %d)", sc.who,
                                   c->services[i].line);
    }
    yaml_node_t *spec = NULL;
    if (!rc__config_find_key(x, root, "spec", &spec) || spec->type != YAML_MAPPING_NODE)
        return rc__config_fail(x, root, "%s has no spec (a mapping with ports)", sc.who);
    rc = rc__config_walk_map(x, root, "Service", service_field, &sc);
    if (rc == 0)
        rc = service_annotations(x, md, &sc);
    if (rc == 0 && sc.ports == NULL)
        rc = rc__config_fail(x, root, "%s has no spec.ports", sc.who);
    if (rc != 0) {
        for (size_t i = 0; i < s.endpoint_count; i++)
            free(s.endpoints[i]);
        free(s.endpoints);
        return rc;
    }
    if (sc.ignored[0] != '\0' &&
        (rc = rc__config_note(x, root, RC_CONFIG_NOTE_WARN,
                              "%s: %s ignored: ringcast sends this Service's events to "
                              "127.0.0.1:%d",
                              sc.who, sc.ignored, rc_config_service_port(&s))) != 0)
        return rc;
    rc_config_service_t *ns = realloc(c->services, (c->service_count + 1) * sizeof(*ns));
    if (ns == NULL) {
        for (size_t i = 0; i < s.endpoint_count; i++)
            free(s.endpoints[i]);
        free(s.endpoints);
        return -ENOMEM;
    }
    c->services = ns;
    c->services[c->service_count++] = s;
    return 0;
}

/* ---- after the last document: brokers and Service refs --------------------------------------- */

static const rc_config_service_t *find_service(const rc_config_t *c, const char *ns,
                                               const char *name)
{
    for (size_t j = 0; j < c->service_count; j++) {
        if (strcmp(c->services[j].ns, ns) == 0 && strcmp(c->services[j].name, name) == 0)
            return &c->services[j];
    }
    return NULL;
}

/* "http://127.0.0.1:<port><path>" into `*out` (replacing what was there). */
static int service_url(const rc_config_service_t *s, const char *path, char **out)
{
    char url[RC_DELIVERY_URI_MAX];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", rc_config_service_port(s),
             path ? path : "/");
    char *u = strdup(url);
    if (u == NULL)
        return -ENOMEM;
    free(*out);
    *out = u;
    return 0;
}

/* A dead-letter sink's ref (of Broker or Trigger `who` in namespace `ns`) turned into its URL. */
static int resolve_dead_letter(rc__config_ctx_t *x, rc_config_delivery_t *d, const char *who,
                               const char *ns)
{
    if (d->dead_letter_ref == NULL)
        return 0;
    if (d->dead_letter_ref_ns[0] != '\0' && strcmp(d->dead_letter_ref_ns, ns) != 0) {
        snprintf(x->err, x->err_len,
                 "%s:%d: %s: 'spec.delivery.deadLetterSink.ref.namespace' must be its own (%s)",
                 x->file, d->dead_letter_line, who, ns);
        return RC_ECONFIG;
    }
    const rc_config_service_t *s = find_service(x->cfg, ns, d->dead_letter_ref);
    if (s == NULL) {
        snprintf(x->err, x->err_len,
                 "%s:%d: %s: 'spec.delivery.deadLetterSink.ref' names Service '%s', which is not "
                 "defined in namespace %s",
                 x->file, d->dead_letter_line, who, d->dead_letter_ref, ns);
        return RC_ECONFIG;
    }
    int rc = service_url(s, d->dead_letter_path, &d->dead_letter_uri);
    if (rc != 0)
        return rc;
    /* The path was checked for shape only: the delivery policy decides on the whole URL. */
    rc_delivery_t check;
    char msg[256];
    rc_delivery_init(&check);
    if (rc_delivery_set(&check, "deadLetterSink.uri", d->dead_letter_uri,
                        strlen(d->dead_letter_uri), msg, sizeof(msg)) != 0) {
        snprintf(x->err, x->err_len, "%s:%d: %s: %s", x->file, d->dead_letter_line, who, msg);
        return RC_ECONFIG;
    }
    return 0;
}

int rc__config_resolve_refs(rc__config_ctx_t *x)
{
    rc_config_t *c = x->cfg;
    char who[2 * RC_CONFIG_NAME_MAX + 16];
    for (size_t i = 0; i < c->broker_count; i++) {
        rc_config_broker_t *b = &c->brokers[i];
        snprintf(who, sizeof(who), "Broker %s/%s", b->ns, b->name);
        int rc = resolve_dead_letter(x, &b->delivery, who, b->ns);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < c->trigger_count; i++) {
        rc_config_trigger_t *t = &c->triggers[i];
        if (rc_config_find_broker(c, t->ns, strlen(t->ns), t->broker, strlen(t->broker)) == NULL) {
            snprintf(x->err, x->err_len,
                     "%s:%d: Trigger %s/%s: 'spec.broker' names broker '%s', which is not "
                     "defined in namespace %s",
                     x->file, t->line, t->ns, t->name, t->broker, t->ns);
            return RC_ECONFIG;
        }
        snprintf(who, sizeof(who), "Trigger %s/%s", t->ns, t->name);
        int rc = resolve_dead_letter(x, &t->delivery, who, t->ns);
        if (rc != 0)
            return rc;
        if (t->service_ref == NULL)
            continue;
        const rc_config_service_t *s = find_service(c, t->ns, t->service_ref);
        if (s == NULL) {
            snprintf(x->err, x->err_len,
                     "%s:%d: Trigger %s/%s: 'spec.subscriber.ref' names Service '%s', which is "
                     "not defined in namespace %s",
                     x->file, t->subscriber_line, t->ns, t->name, t->service_ref, t->ns);
            return RC_ECONFIG;
        }
        char *path = t->subscriber_uri;
        t->subscriber_uri = NULL;
        rc = service_url(s, path, &t->subscriber_uri);
        free(path);
        if (rc != 0)
            return rc;
        t->endpoints = s->endpoints;
        t->endpoint_count = s->endpoint_count;
    }
    return 0;
}
