/* Dapr subscriptions as the delivery sees them (config.h, rc_config_dapr_sub_t), whichever way
 * they come: from a Subscription document for each app in its scopes (config_dapr.c) or from an
 * app's GET /dapr/subscribe answer (rc_config_add_dapr_subscription, here). Both go through the
 * same checks (topics, paths, routes and their CEL) and the same builder of the internal trigger
 * that delivers them (rc__config_dapr_attach). No YAML here: messages are phrases ("'spec.topic'
 * is empty") that the caller places after a file and line or after an app's name. */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cel.h"
#include "core/config_internal.h"
#include "core/errors.h"
#include "core/filter.h"

/* A route path is appended to a replica's base URL (at most 7 + 255 + 6 bytes), and the sum must
 * stay a URI the HTTP client takes (RC_DELIVERY_URI_MAX, 1024). */
#define PATH_MAX_BYTES    512
#define TRIGGER_NAME_KEEP 54 /* bytes kept of a long name: 54 + '~' + 8 hex digits = 63 */

__attribute__((format(printf, 3, 4))) static int bad(char *why, size_t why_len, const char *fmt,
                                                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    return RC_ECONFIG;
}

/* ---- checks shared by declarative and programmatic subscriptions ----------------------------- */

int rc__config_dapr_check_topic(const char *s, const char *field, char *why, size_t n)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0)
        return bad(why, n, "'%s' is empty", field);
    if (len > RC_CONFIG_TOPIC_MAX)
        return bad(why, n, "'%s' is longer than %d bytes (%zu)", field, RC_CONFIG_TOPIC_MAX, len);
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return bad(why, n, "'%s' contains a control character at offset %zu", field, i);
    }
    return 0;
}

static int check_path(const char *s, const char *field, char *why, size_t n)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0)
        return bad(why, n, "'%s' is empty", field);
    if (len > PATH_MAX_BYTES)
        return bad(why, n, "'%s' is longer than %d bytes", field, PATH_MAX_BYTES);
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f || s[i] == '#')
            return bad(why, n, "'%s' contains a space, control character or '#' at offset %zu",
                       field, i);
    }
    if (s[0] != '/')
        return bad(why, n, "'%s' must be a path starting with '/', not '%s'", field, s);
    return 0;
}

void rc__config_dapr_sub_free(rc_config_dapr_sub_t *s)
{
    for (size_t i = 0; i < s->rule_count; i++) {
        free(s->rules[i].match);
        free(s->rules[i].path);
        rc_cel_free(s->rules[i].cel);
    }
    free(s->rules);
    free(s->default_path);
    free(s->dead_letter_topic);
    memset(s, 0, sizeof(*s));
}

/* A rule without match takes every event, like the default (Dapr's rule), so it becomes the
 * default path; anything after it would never be used, and is refused rather than ignored. */
int rc__config_dapr_routes(rc_config_dapr_sub_t *s, const rc__config_dapr_routes_t *in, char *why,
                           size_t n, int *line)
{
    const char *fallback = in->default_path;
    char field[48];
    *line = in->default_line;
    if (in->count > RC_CONFIG_DAPR_RULES_MAX)
        return bad(why, n, "routes.rules has %zu rules, more than %u", in->count,
                   RC_CONFIG_DAPR_RULES_MAX);
    if (in->count > 0 && (s->rules = calloc(in->count, sizeof(*s->rules))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < in->count; i++) {
        const char *m = in->match ? in->match[i] : NULL, *p = in->path ? in->path[i] : NULL;
        *line = in->path_line ? in->path_line[i] : 0;
        snprintf(field, sizeof(field), "routes.rules[%zu].path", i);
        int rc = check_path(p, field, why, n);
        if (rc != 0)
            return rc;
        *line = in->match_line ? in->match_line[i] : 0;
        if (m == NULL || m[0] == '\0') {
            if (i + 1 < in->count)
                return bad(why, n,
                           "routes.rules[%zu] has an empty match, so it takes every event and "
                           "routes.rules[%zu] would never be used",
                           i, i + 1);
            if (in->default_path != NULL)
                return bad(why, n,
                           "routes.rules[%zu] has an empty match, so it takes every event and "
                           "'%s' would never be used",
                           i, in->default_field);
            fallback = p;
            continue;
        }
        rc_config_dapr_rule_t *r = &s->rules[s->rule_count++];
        char msg[256];
        rc = rc_cel_compile(m, strlen(m), &r->cel, msg, sizeof(msg));
        if (rc == RC_ECONFIG)
            return bad(why, n, "routes.rules[%zu].match: %s", i, msg);
        if (rc != 0)
            return rc;
        r->line = *line;
        r->match = strdup(m);
        r->path = strdup(p);
        if (r->match == NULL || r->path == NULL)
            return -ENOMEM;
    }
    *line = in->default_line;
    if (fallback == in->default_path && fallback != NULL) {
        int rc = check_path(fallback, in->default_field, why, n);
        if (rc != 0)
            return rc;
    }
    if (fallback != NULL && (s->default_path = strdup(fallback)) == NULL)
        return -ENOMEM;
    return 0;
}

int rc__config_dapr_sub_clone(rc_config_dapr_sub_t *dst, const rc_config_dapr_sub_t *src, char *why,
                              size_t n)
{
    *dst = *src;
    dst->rules = NULL;
    dst->rule_count = 0;
    dst->default_path = dst->dead_letter_topic = NULL;
    if (src->rule_count > 0 && (dst->rules = calloc(src->rule_count, sizeof(*dst->rules))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < src->rule_count; i++) {
        const rc_config_dapr_rule_t *a = &src->rules[i];
        rc_config_dapr_rule_t *r = &dst->rules[dst->rule_count++];
        char msg[256];
        int rc = rc_cel_compile(a->match, strlen(a->match), &r->cel, msg, sizeof(msg));
        if (rc != 0)
            return rc == RC_ECONFIG ? bad(why, n, "routes.rules[%zu].match: %s", i, msg) : rc;
        r->line = a->line;
        r->match = strdup(a->match);
        r->path = strdup(a->path);
        if (r->match == NULL || r->path == NULL)
            return -ENOMEM;
    }
    if (src->default_path != NULL && (dst->default_path = strdup(src->default_path)) == NULL)
        return -ENOMEM;
    if (src->dead_letter_topic != NULL &&
        (dst->dead_letter_topic = strdup(src->dead_letter_topic)) == NULL)
        return -ENOMEM;
    return 0;
}

/* ---- internal triggers ----------------------------------------------------------------------- */

/* "<group>:<a>" or "<group>:<a>:<b>"; one longer than a trigger name is cut to 54 bytes (never
 * inside a UTF-8 sequence) + '~' + the 32-bit FNV-1a hash of the whole name in hex, so it stays
 * stable from one load to the next (the group's position is kept by name). */
static void trigger_name(char out[RC_CONFIG_NAME_MAX + 1], const char *group, const char *a,
                         const char *b)
{
    char full[2 * RC_CONFIG_NAME_MAX + RC_CONFIG_TOPIC_MAX + 4];
    int len = snprintf(full, sizeof(full), "%s:%s%s%s", group, a, b ? ":" : "", b ? b : "");
    if (len <= RC_CONFIG_NAME_MAX) {
        memcpy(out, full, (size_t)len + 1);
        return;
    }
    uint32_t h = 2166136261u;
    for (int i = 0; i < len; i++)
        h = (h ^ (unsigned char)full[i]) * 16777619u;
    size_t keep = TRIGGER_NAME_KEEP;
    while (keep > 0 && ((unsigned char)full[keep] & 0xc0) == 0x80)
        keep--;
    snprintf(out, RC_CONFIG_NAME_MAX + 1, "%.*s~%08x", (int)keep, full, h);
}

static uint32_t app_inflight(const rc_config_dapr_app_t *app)
{
    if (app->max_concurrency == 0)
        return RC_CONFIG_MAX_INFLIGHT_DEFAULT;
    uint64_t n = (uint64_t)app->max_concurrency * app->endpoint_count;
    return n > RC_CONFIG_MAX_INFLIGHT_MAX ? RC_CONFIG_MAX_INFLIGHT_MAX : (uint32_t)n;
}

/* The refusals that depend on what `c` already holds: the same app on the same pubsub and topic
 * twice (-EEXIST, as Dapr refuses it), or two apps in one consumer group on one topic (a group
 * delivers to the replicas of one app; they share a group only through a consumerID). */
static int check_taken(const rc_config_t *c, const rc_config_dapr_sub_t *s, char *why, size_t n)
{
    for (size_t i = 0; i < c->dapr_sub_count; i++) {
        const rc_config_dapr_sub_t *o = c->dapr_subs[i];
        if (strcmp(o->pubsub, s->pubsub) != 0 || strcmp(o->topic, s->topic) != 0)
            continue;
        if (o->app == s->app) {
            if (o->programmatic)
                bad(why, n, "app %s already subscribes to %s/%s (programmatically)", s->app->name,
                    s->pubsub, s->topic);
            else
                bad(why, n, "app %s already subscribes to %s/%s (Subscription %s/%s at line %d)",
                    s->app->name, s->pubsub, s->topic, o->ns, o->name, o->line);
            return -EEXIST;
        }
        if (strcmp(o->ns, s->ns) == 0 && strcmp(o->group, s->group) == 0)
            return bad(why, n,
                       "apps %s and %s would share consumer group '%s' (metadata consumerID of "
                       "Component %s) on topic %s: not supported, a group delivers to the "
                       "replicas of one app (give each app its own Component or no consumerID)",
                       o->app->name, s->app->name, s->group, s->pubsub, s->topic);
    }
    return 0;
}

/* Builds the internal trigger of `s`: the Trigger loader's defaults (no delivery of its own,
 * retry -1: the broker's applies), filter topic == <topic>, the app's first replica. */
static int make_trigger(rc_config_trigger_t *t, rc_config_dapr_sub_t *s,
                        const rc_config_pubsub_t *p, char *why, size_t n)
{
    rc_filter_error_t e;
    memset(t, 0, sizeof(*t));
    t->delivery.retry = -1;
    strcpy(t->ns, s->ns);
    strcpy(t->broker, p->broker);
    if (s->programmatic)
        trigger_name(t->name, s->group, s->pubsub, s->topic);
    else
        trigger_name(t->name, s->group, s->name, NULL);
    /* ':' and '~' are not in DNS labels: never the name of a Knative Trigger. */
    assert(!rc__config_valid_dns_label(t->name));
    t->max_inflight = app_inflight(s->app);
    t->line = s->line;
    t->dapr = s;
    int rc = rc_filter_create(&t->filter);
    if (rc == 0)
        rc = rc_filter_add_attribute(t->filter, (rc_str_t){"topic", 5},
                                     (rc_str_t){s->topic, strlen(s->topic)}, s->line, &e);
    if (rc == 0)
        rc = rc_filter_finish(t->filter, &e);
    if (rc != 0)
        return rc == -ENOMEM ? rc : bad(why, n, "topic filter: %s", e.msg);
    t->subscriber_uri = strdup(s->app->endpoints[0]);
    return t->subscriber_uri ? 0 : -ENOMEM;
}

/* Both arrays grow before either takes anything, so a failure leaves `c` as it was. */
int rc__config_dapr_attach(rc_config_t *c, rc_config_dapr_sub_t *s, const rc_config_pubsub_t *p,
                           char *why, size_t n)
{
    strcpy(s->group, p->consumer_id[0] ? p->consumer_id : s->app->name);
    int rc = check_taken(c, s, why, n);
    if (rc != 0)
        return rc;
    if (c->trigger_count >= RC_CONFIG_TRIGGERS_MAX)
        return bad(why, n, "more than %u triggers (Dapr subscriptions included)",
                   RC_CONFIG_TRIGGERS_MAX);
    rc_config_trigger_t t;
    rc = make_trigger(&t, s, p, why, n);
    const rc_config_trigger_t *o = rc == 0 ? rc_config_find_trigger(c, t.ns, t.name) : NULL;
    if (o != NULL)
        rc = bad(why, n, "its trigger name '%s' is already taken (by the trigger of line %d)",
                 t.name, o->line); /* only a hash collision of two cut names gets here */
    rc_config_dapr_sub_t **ns = NULL;
    rc_config_trigger_t *nt = NULL;
    if (rc == 0) {
        ns = realloc(c->dapr_subs, (c->dapr_sub_count + 1) * sizeof(*ns));
        if (ns != NULL)
            c->dapr_subs = ns;
        nt = ns ? realloc(c->triggers, (c->trigger_count + 1) * sizeof(*nt)) : NULL;
        if (nt == NULL)
            rc = -ENOMEM;
    }
    if (rc != 0) {
        rc__config_trigger_free(&t);
        return rc;
    }
    c->triggers = nt;
    c->triggers[c->trigger_count++] = t;
    c->dapr_subs[c->dapr_sub_count++] = s;
    return 0;
}

/* ---- programmatic subscriptions -------------------------------------------------------------- */

/* Everything of `spec` but the pubsub into `s`; `why` names the field at fault. */
static int programmatic_sub(rc_config_dapr_sub_t *s, const rc_config_dapr_sub_spec_t *spec,
                            char *why, size_t n)
{
    int rc = rc__config_dapr_check_topic(spec->topic, "topic", why, n);
    if (rc != 0)
        return rc;
    strcpy(s->topic, spec->topic);
    if (spec->dead_letter_topic != NULL) {
        rc = rc__config_dapr_check_topic(spec->dead_letter_topic, "deadLetterTopic", why, n);
        if (rc != 0)
            return rc;
        if (strcmp(spec->dead_letter_topic, spec->topic) == 0)
            return bad(why, n,
                       "'deadLetterTopic' must differ from 'topic': its dead letters would come "
                       "back to it");
        if ((s->dead_letter_topic = strdup(spec->dead_letter_topic)) == NULL)
            return -ENOMEM;
    }
    if (spec->bulk_max_messages > RC__CONFIG_DAPR_BULK_MESSAGES_MAX)
        return bad(why, n, "'bulkSubscribe.maxMessagesCount' must be from 1 to %d, not %u",
                   RC__CONFIG_DAPR_BULK_MESSAGES_MAX, spec->bulk_max_messages);
    if (spec->bulk_max_await_ms > RC__CONFIG_DAPR_BULK_AWAIT_MAX_MS)
        return bad(why, n, "'bulkSubscribe.maxAwaitDurationMs' must be from 1 to %d, not %u",
                   RC__CONFIG_DAPR_BULK_AWAIT_MAX_MS, spec->bulk_max_await_ms);
    s->raw_payload = spec->raw_payload != 0;
    s->bulk = spec->bulk != 0;
    s->bulk_max_messages =
        spec->bulk_max_messages ? spec->bulk_max_messages : RC__CONFIG_DAPR_BULK_MESSAGES_DEF;
    s->bulk_max_await_ms =
        spec->bulk_max_await_ms ? spec->bulk_max_await_ms : RC__CONFIG_DAPR_BULK_AWAIT_DEF_MS;
    s->programmatic = 1;
    rc__config_dapr_routes_t in = {.count = spec->rule_count,
                                   .match = spec->match,
                                   .path = spec->path,
                                   .default_path = spec->default_path,
                                   .default_field = "routes.default"};
    int line;
    rc = rc__config_dapr_routes(s, &in, why, n, &line);
    if (rc == 0 && s->rule_count == 0 && s->default_path == NULL)
        rc = bad(why, n, "no route (give route, routes.rules or routes.default)");
    return rc;
}

/* Whether app `a` may subscribe to pubsub `ps` (`p`, NULL when unknown); `why` if not. */
static int programmatic_pubsub(const rc_config_dapr_app_t *a, const char *ps,
                               const rc_config_pubsub_t *p, char *why, size_t n)
{
    if (a == NULL)
        return bad(why, n, "not a DaprApp of this configuration");
    if (ps[0] == '\0')
        return bad(why, n, "'pubsubname' is empty");
    if (p == NULL)
        return bad(why, n, "pubsub '%s' is not a Component of this configuration", ps);
    if (strcmp(p->ns, a->ns) != 0)
        return bad(why, n,
                   "Component %s/%s is of another namespace (an app uses the Components of its "
                   "own namespace)",
                   p->ns, p->name);
    return 0;
}

int rc_config_add_dapr_subscription(rc_config_t *c, const rc_config_dapr_app_t *app,
                                    const rc_config_dapr_sub_spec_t *spec, char *err,
                                    size_t err_len)
{
    char why[RC_CONFIG_ERR_MAX];
    const char *ps = spec->pubsub ? spec->pubsub : "";
    const rc_config_dapr_app_t *a = rc_config_find_dapr_app(c, app->ns, app->name);
    const rc_config_pubsub_t *p = rc_config_find_pubsub(c, ps, strlen(ps));
    rc_config_dapr_sub_t *s = NULL;
    int rc = programmatic_pubsub(a, ps, p, why, sizeof(why));
    if (rc != 0)
        goto fail;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    strcpy(s->ns, a->ns);
    strcpy(s->pubsub, p->name);
    s->app = a;
    rc = programmatic_sub(s, spec, why, sizeof(why));
    if (rc == 0)
        rc = rc__config_dapr_attach(c, s, p, why, sizeof(why));
    if (rc == 0)
        return 0;
    rc__config_dapr_sub_free(s);
    free(s);
fail:
    if (rc == -ENOMEM)
        snprintf(why, sizeof(why), "out of memory");
    snprintf(err, err_len, "app %s: subscription to %s/%s: %s", app->name, ps,
             spec->topic ? spec->topic : "", why);
    return rc;
}
