/* The admin API. /healthz, /readyz and /metrics are plain text; the status API builds each
 * answer as a cJSON tree from the serve process's view (rc_admin_view_t: the ring gauges that
 * /metrics renders, and the supervisor's trigger table with the counters of the shared stats
 * segment), so a number `ringcast get` shows is the number /metrics shows. The objects keep the
 * Kubernetes shapes (List with `items`, a Status body for 404) so that kubectl-minded tools
 * read them; what ringcast adds is in `status`. */
#include "net/admin.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/filter.h"
#include "core/log.h"
#include "net/admin_internal.h"
#include "net/dashboard.h"

#define KNATIVE_API  "eventing.knative.dev/v1"
#define DAPR_API     "dapr.io/v2alpha1"
#define RINGCAST_API "ringcast.dev/v1alpha1"

int rc__admin_path_is(const rc_http_server_request_t *req, const char *p)
{
    size_t n = strlen(p);
    return req->path_len == n && memcmp(req->path, p, n) == 0;
}

#define path_is rc__admin_path_is

/* Copies `text` (NUL-terminated, n bytes) into the admin's buffer, which the response borrows
 * until the callback returns. Returns 0, or -1 when it cannot grow. */
static int keep_body(rc_admin_t *a, const char *text, size_t n)
{
    if (n + 1 > a->cap) {
        char *nb = realloc(a->buf, n + 4096);
        if (nb == NULL)
            return -1;
        a->buf = nb;
        a->cap = n + 4096;
    }
    memcpy(a->buf, text, n + 1);
    return 0;
}

/* Answers `status` with the JSON `text` (freed here; NULL counts as a failure), or `fail_status`
 * with `fail_msg` when the buffer cannot hold it. */
static void answer_text(rc_admin_t *a, rc_http_server_response_t *res, int status, char *text,
                        int fail_status, const char *fail_msg)
{
    if (text == NULL || keep_body(a, text, strlen(text)) != 0) {
        free(text);
        rc_http_response_error(res, fail_status, fail_msg);
        return;
    }
    res->status = status;
    res->content_type = "application/json";
    res->body = a->buf;
    res->body_len = strlen(text);
    free(text);
}

void rc__admin_answer_json(rc_admin_t *a, rc_http_server_response_t *res, int status, cJSON *o,
                           int fail_status, const char *fail_msg)
{
    char *text = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    answer_text(a, res, status, text, fail_status, fail_msg);
}

/* "2024-05-01T12:00:00Z" for wall-clock milliseconds. */
static void rfc3339(char out[32], int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void add_time(cJSON *o, const char *key, int64_t ms)
{
    char ts[32];
    rfc3339(ts, ms);
    cJSON_AddStringToObject(o, key, ts);
}

/* An ISO-8601 duration as the config takes it ("PT0.2S"). */
static void add_duration(cJSON *o, const char *key, int64_t ns)
{
    char d[48];
    snprintf(d, sizeof(d), "PT%gS", (double)ns / 1e9);
    cJSON_AddStringToObject(o, key, d);
}

static cJSON *new_object(const char *api, const char *kind, const char *ns, const char *name,
                         int64_t created_ms)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", api);
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON *m = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(m, "name", name);
    cJSON_AddStringToObject(m, "namespace", ns);
    if (created_ms > 0)
        add_time(m, "creationTimestamp", created_ms);
    return o;
}

/* status.conditions with the one condition ringcast keeps: Ready. */
static cJSON *add_status(cJSON *o, const char *ready, const char *reason, const char *message)
{
    cJSON *st = cJSON_AddObjectToObject(o, "status");
    cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "type", "Ready");
    cJSON_AddStringToObject(c, "status", ready);
    cJSON_AddStringToObject(c, "reason", reason);
    cJSON_AddStringToObject(c, "message", message);
    cJSON_AddItemToArray(conds, c);
    return st;
}

/* ---- brokers ------------------------------------------------------------------------------- */

/* Where the events are kept, the consumer groups and the local readers of one broker's ring
 * (`ringcast get rings|groups`). */
static void add_ring_users(cJSON *r, const rc_ring_gauge_t *g)
{
    cJSON *st = cJSON_AddObjectToObject(r, "storage");
    cJSON_AddStringToObject(st, "type", g->storage != NULL ? g->storage : "memory");
    if (g->durability != NULL)
        cJSON_AddStringToObject(st, "durability", g->durability);
    if (g->file_bytes != 0)
        cJSON_AddNumberToObject(st, "fileBytes", (double)g->file_bytes);
    cJSON *groups = cJSON_AddArrayToObject(r, "groups");
    for (size_t j = 0; j < g->ngroups; j++) {
        const rc_storage_group_t *gr = &g->groups[j];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", gr->name);
        cJSON_AddNumberToObject(e, "members", gr->members);
        cJSON_AddNumberToObject(e, "lagBytes", (double)gr->lag_bytes);
        if (gr->limit == 0)
            cJSON_AddStringToObject(e, "lagPolicy", "block");
        else
            cJSON_AddNumberToObject(e, "lagLimitBytes", (double)gr->limit);
        cJSON_AddNumberToObject(e, "skipped", (double)gr->lagged);
        cJSON_AddItemToArray(groups, e);
    }
    cJSON *readers = cJSON_AddArrayToObject(r, "localReaders");
    for (size_t j = 0; j < g->nreaders; j++) {
        const rc_storage_local_reader_t *rd = &g->readers_list[j];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", rd->name);
        cJSON_AddNumberToObject(e, "slot", rd->slot);
        cJSON_AddNumberToObject(e, "pid", rd->pid);
        cJSON_AddStringToObject(e, "mode", rd->lossless ? "lossless" : "lossy");
        cJSON_AddNumberToObject(e, "lagBytes", (double)rd->lag_bytes);
        cJSON_AddNumberToObject(e, "lagEvents", (double)rd->lag_events);
        cJSON_AddItemToArray(readers, e);
    }
}

static cJSON *broker_object(const rc_admin_t *a, const rc_admin_view_t *v, size_t i)
{
    const rc_ring_gauge_t *g = &v->brokers[i];
    cJSON *o = new_object(KNATIVE_API, "Broker", g->ns, g->name, v->started_ms);
    int open = g->capacity_bytes > 0, accepting = a->ready(a->arg), down = g->redis_down;
    char msg[160];
    snprintf(msg, sizeof(msg), "%s",
             !open        ? "its store is not open"
             : !accepting ? "the broker is starting or shutting down"
             : down       ? "its Redis does not answer or refuses appends: events are refused "
                            "(503) until it does"
                          : "its store is open and the ingress accepts events");
    cJSON *st = add_status(o, open && accepting && !down ? "True" : "False",
                           !open        ? "StoreNotOpen"
                           : !accepting ? "NotAccepting"
                           : down       ? "StoreUnavailable"
                                        : "Ready",
                           msg);
    char url[RC_CONFIG_ADDR_MAX + 2 * RC_CONFIG_NAME_MAX + 32];
    snprintf(url, sizeof(url), "http://%s/%s/%s", v->ingress, g->ns, g->name);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(st, "address"), "url", url);
    cJSON *r = cJSON_AddObjectToObject(st, "ring");
    cJSON_AddNumberToObject(r, "usedBytes", (double)g->used_bytes);
    cJSON_AddNumberToObject(r, "capacityBytes", (double)g->capacity_bytes);
    cJSON_AddNumberToObject(
        r, "fill", g->capacity_bytes ? (double)g->used_bytes / (double)g->capacity_bytes : 0.0);
    cJSON_AddNumberToObject(r, "events", (double)g->events);
    cJSON_AddNumberToObject(r, "readers", g->readers);
    cJSON_AddNumberToObject(r, "losslessReaders", g->lossless);
    cJSON_AddNumberToObject(r, "refused", (double)g->refused);
    if (g->holder != NULL) {
        cJSON *h = cJSON_AddObjectToObject(r, "heldBackBy");
        cJSON_AddStringToObject(h, "reader", g->holder);
        if (g->holder_trigger != NULL && g->holder_trigger[0] != '\0')
            cJSON_AddStringToObject(h, "trigger", g->holder_trigger);
        cJSON_AddNumberToObject(h, "lagBytes", (double)g->holder_lag_bytes);
        cJSON_AddNumberToObject(h, "lagEvents", (double)g->holder_lag_events);
    }
    add_ring_users(r, g);
    if (g->storage != NULL && strcmp(g->storage, "redis") == 0) {
        /* How far this node's ring is behind the broker's Redis streams (docs/scaleout.md). */
        cJSON *m = cJSON_AddObjectToObject(st, "redisMirror");
        cJSON_AddNumberToObject(m, "lagEntries", (double)g->mirror_lag_entries);
        cJSON_AddNumberToObject(m, "lagSeconds", (double)g->mirror_lag_ms / 1000.0);
        cJSON_AddNumberToObject(m, "copied", (double)g->mirrored);
        cJSON_AddNumberToObject(m, "trimmedBeforeCopied", (double)g->mirror_trimmed);
    }
    return o;
}

/* ---- triggers and Dapr subscriptions --------------------------------------------------------- */

/* "HTTP 500" or the transport error's text. */
static void outcome_text(char *out, size_t cap, int result)
{
    if (result > 0)
        snprintf(out, cap, "HTTP %d", result);
    else
        snprintf(out, cap, "%s", rc_strerror(result));
}

static void add_outcome(cJSON *st, const char *key, uint64_t packed)
{
    if (packed == 0)
        return;
    int result;
    int64_t ms;
    rc_worker_stats_unpack(packed, &result, &ms);
    cJSON *o = cJSON_AddObjectToObject(st, key);
    add_time(o, "time", ms);
    char text[128];
    outcome_text(text, sizeof(text), result);
    if (result > 0)
        cJSON_AddNumberToObject(o, "status", result);
    else
        cJSON_AddNumberToObject(o, "code", result);
    cJSON_AddStringToObject(o, "message", text);
}

/* Ready: its worker runs and the latest attempt reached the subscriber and was accepted
 * (Unknown before any attempt). */
static void trigger_conditions(cJSON *o, const rc_supervisor_trigger_t *t, cJSON **status)
{
    uint64_t last = atomic_load_explicit(&t->stats->last_attempt, memory_order_relaxed);
    int result = 0;
    int64_t ms = 0;
    char msg[256], ts[32], text[128];
    if (last != 0) {
        rc_worker_stats_unpack(last, &result, &ms);
        rfc3339(ts, ms);
        outcome_text(text, sizeof(text), result);
    }
    uint64_t paused = atomic_load_explicit(&t->stats->paused_ms, memory_order_relaxed);
    if (paused != 0) {
        /* False, not Unknown: the operator's pause is known to stop deliveries. */
        rfc3339(ts, (int64_t)paused);
        snprintf(msg, sizeof(msg),
                 "paused since %s: nothing new is sent, events wait in the ring (ringcast resume "
                 "trigger %s -n %s)",
                 ts, t->cfg->name, t->cfg->ns);
        *status = add_status(o, "False", "Paused", msg);
    } else if (t->worker_pid <= 0) {
        *status = add_status(o, "False", "WorkerNotRunning",
                             "its worker process is being restarted, or the workers stop");
    } else if (last == 0) {
        *status = add_status(o, "Unknown", "NoAttempt", "no delivery attempted yet");
    } else if (result >= 200 && result <= 299) {
        snprintf(msg, sizeof(msg), "the latest attempt (%s) succeeded: %s", ts, text);
        *status = add_status(o, "True", "Delivering", msg);
    } else {
        snprintf(msg, sizeof(msg), "the latest attempt (%s) failed: %s", ts, text);
        *status =
            add_status(o, "False", result > 0 ? "DeliveryFailed" : "SubscriberUnreachable", msg);
    }
}

static void add_delivery_policy(cJSON *st, const rc_supervisor_trigger_t *t)
{
    const rc_delivery_t *d = t->delivery;
    cJSON *p = cJSON_AddObjectToObject(st, "deliveryPolicy");
    cJSON_AddNumberToObject(p, "retry", d->retry);
    cJSON_AddStringToObject(p, "backoffPolicy",
                            d->backoff_policy == RC_BACKOFF_LINEAR ? "linear" : "exponential");
    add_duration(p, "backoffDelay", d->backoff_delay_ns);
    add_duration(p, "backoffMax", d->backoff_max_ns);
    add_duration(p, "timeout", d->timeout_ns);
    add_duration(p, "retryAfterMax", d->retry_after_max_ns);
    cJSON_AddStringToObject(p, "format", d->format == RC_DELIVERY_FORMAT_JSON ? "json" : "binary");
    cJSON_AddNumberToObject(p, "maxInflight", t->cfg->max_inflight);
    if (t->cfg->rate_milli != 0) /* ringcast.dev/rate-limit, events per second */
        cJSON_AddNumberToObject(p, "rateLimit", (double)t->cfg->rate_milli / 1000.0);
    if (t->cfg->ordering == RC_ORDERING_PARTITIONKEY)
        cJSON_AddStringToObject(p, "ordering", "partitionkey");
    if (d->dead_letter_uri[0] != '\0')
        cJSON_AddStringToObject(st, "deadLetterSinkUri", d->dead_letter_uri);
    if (t->cfg->dapr == NULL && t->cfg->endpoint_count > 0) {
        /* HTTP replicas (a Service's ringcast.dev/endpoints): each event goes to one */
        cJSON *eps = cJSON_AddArrayToObject(st, "subscriberEndpoints");
        for (size_t i = 0; i < t->cfg->endpoint_count; i++)
            cJSON_AddItemToArray(eps, cJSON_CreateString(t->cfg->endpoints[i]));
    }
}

/* status.recentOutcomes: the latest attempts to the subscriber, newest first (a one-object GET
 * only: lists and the dashboard's Overview stay small). */
static void add_recent(cJSON *st, const rc_trigger_stats_t *s)
{
    rc_outcome_t out[RC_OUTCOMES];
    size_t n = rc_worker_stats_outcomes(s, out, RC_OUTCOMES);
    cJSON *arr = cJSON_AddArrayToObject(st, "recentOutcomes");
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        char text[128];
        add_time(o, "time", out[i].ms);
        outcome_text(text, sizeof(text), out[i].result);
        if (out[i].result > 0)
            cJSON_AddNumberToObject(o, "status", out[i].result);
        else
            cJSON_AddNumberToObject(o, "code", out[i].result);
        cJSON_AddStringToObject(o, "message", text);
        cJSON_AddNumberToObject(o, "durationSeconds", (double)out[i].dur_ns / 1e9);
        cJSON_AddStringToObject(o, "eventId", out[i].id);
        cJSON_AddItemToArray(arr, o);
    }
}

/* status.deadLetters: the latest events the dead-letter sink accepted, newest first, which
 * .../replay can send again while the ring holds them; status.replay: the last replay asked
 * (a one-object GET only). */
static void add_dead_letters(cJSON *st, const rc_trigger_stats_t *s)
{
    rc_dead_letter_t dl[RC_DEAD_LETTERS];
    size_t n = rc_worker_stats_dead_letters(s, dl, RC_DEAD_LETTERS);
    cJSON *arr = cJSON_AddArrayToObject(st, "deadLetters");
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        char text[128];
        add_time(o, "time", dl[i].ms);
        cJSON_AddStringToObject(o, "eventId", dl[i].id);
        cJSON_AddNumberToObject(o, "position", (double)dl[i].pos);
        cJSON_AddNumberToObject(o, "sequence", (double)dl[i].seq);
        outcome_text(text, sizeof(text), dl[i].result);
        cJSON_AddStringToObject(o, "lastError", text);
        cJSON_AddItemToArray(arr, o);
    }
    uint64_t req = atomic_load_explicit(&s->replay_req, memory_order_acquire);
    if (req == 0)
        return;
    uint64_t done = atomic_load_explicit(&s->replay_done, memory_order_acquire);
    cJSON *r = cJSON_AddObjectToObject(st, "replay");
    cJSON_AddNumberToObject(r, "requests", (double)req);
    cJSON_AddNumberToObject(r, "replayed",
                            (double)atomic_load_explicit(&s->replayed, memory_order_relaxed));
    cJSON_AddNumberToObject(r, "position",
                            (double)atomic_load_explicit(&s->replay_pos, memory_order_relaxed));
    int64_t res = atomic_load_explicit(&s->replay_result, memory_order_relaxed);
    cJSON_AddStringToObject(r, "state", req != done ? "Pending" : res == 0 ? "Queued" : "Failed");
    if (req == done && res != 0)
        cJSON_AddStringToObject(r, "message",
                                res == -ENOENT ? "the ring no longer holds the event (overwritten)"
                                               : rc_strerror((int)res));
}

/* What a Trigger and a Dapr Subscription both show in status; `detail`: the recent outcomes. */
static void add_delivery_status(cJSON *st, const rc_supervisor_trigger_t *t, int detail)
{
    const rc_trigger_stats_t *s = t->stats;
#define LD(x) ((double)atomic_load_explicit(&s->x, memory_order_relaxed))
    cJSON *c = cJSON_AddObjectToObject(st, "stats");
    cJSON_AddNumberToObject(c, "delivered", LD(delivered));
    cJSON_AddNumberToObject(c, "failed", LD(failed));
    cJSON_AddNumberToObject(c, "retried", LD(retried));
    cJSON_AddNumberToObject(c, "deadLettered", LD(dead_lettered));
    cJSON_AddNumberToObject(c, "dropped", LD(dropped));
    cJSON_AddNumberToObject(c, "inflight", LD(inflight));
    cJSON_AddNumberToObject(c, "lagEvents", (double)t->lag.events);
    cJSON_AddNumberToObject(c, "lagBytes", (double)t->lag.bytes);
#undef LD
    uint64_t n;
    double p50 = rc_worker_stats_latency_quantile(s, 0.5, &n);
    if (n > 0) {
        /* of ringcast_trigger_delivery_seconds, since the trigger was added */
        cJSON *l = cJSON_AddObjectToObject(st, "deliveryLatency");
        cJSON_AddNumberToObject(l, "count", (double)n);
        cJSON_AddNumberToObject(l, "p50Seconds", p50);
        cJSON_AddNumberToObject(l, "p99Seconds", rc_worker_stats_latency_quantile(s, 0.99, &n));
    }
    /* The same over the last 30 to 60 s (worker_stats.h, RC_LATENCY_HALF_S): what it is now,
     * not since the trigger was added. */
    uint64_t now = rc_now_ns();
    double r50 = rc_worker_stats_recent_quantile(s, 0.5, now, &n);
    if (n > 0) {
        cJSON *l = cJSON_AddObjectToObject(st, "recentLatency");
        cJSON_AddNumberToObject(l, "windowSeconds", 2 * RC_LATENCY_HALF_S);
        cJSON_AddNumberToObject(l, "count", (double)n);
        cJSON_AddNumberToObject(l, "p50Seconds", r50);
        cJSON_AddNumberToObject(l, "p99Seconds", rc_worker_stats_recent_quantile(s, 0.99, now, &n));
    }
    uint64_t paused = atomic_load_explicit(&s->paused_ms, memory_order_relaxed);
    cJSON_AddBoolToObject(st, "paused", paused != 0);
    if (paused != 0)
        add_time(st, "pausedTime", (int64_t)paused);
    add_outcome(st, "lastAttempt", atomic_load_explicit(&s->last_attempt, memory_order_relaxed));
    add_outcome(st, "lastError", atomic_load_explicit(&s->last_error, memory_order_relaxed));
    if (detail) {
        add_recent(st, s);
        add_dead_letters(st, s);
    }
    add_delivery_policy(st, t);
    if (t->worker_pid > 0)
        cJSON_AddNumberToObject(st, "workerPid", t->worker_pid);
}

static cJSON *trigger_object(const rc_supervisor_trigger_t *t, int detail)
{
    const rc_config_trigger_t *c = t->cfg;
    cJSON *o = new_object(KNATIVE_API, "Trigger", c->ns, c->name, t->stats->added_ms);
    cJSON *spec = cJSON_AddObjectToObject(o, "spec");
    cJSON_AddStringToObject(spec, "broker", c->broker);
    cJSON *sub = cJSON_AddObjectToObject(spec, "subscriber");
    if (c->service_ref != NULL) {
        cJSON *ref = cJSON_AddObjectToObject(sub, "ref");
        cJSON_AddStringToObject(ref, "apiVersion", "v1");
        cJSON_AddStringToObject(ref, "kind", "Service");
        cJSON_AddStringToObject(ref, "name", c->service_ref);
    } else {
        cJSON_AddStringToObject(sub, "uri", c->subscriber_uri);
    }
    cJSON *st;
    trigger_conditions(o, t, &st);
    cJSON_AddStringToObject(st, "subscriberUri", c->subscriber_uri);
    char filter[1024];
    if (c->filter != NULL)
        rc_filter_format(c->filter, filter, sizeof(filter));
    else
        strcpy(filter, "true");
    cJSON_AddStringToObject(st, "filter", filter);
    add_delivery_status(st, t, detail);
    return o;
}

static cJSON *subscription_object(const rc_supervisor_trigger_t *t, int detail)
{
    const rc_config_dapr_sub_t *d = t->cfg->dapr;
    cJSON *o = new_object(DAPR_API, "Subscription", t->cfg->ns, t->cfg->name, t->stats->added_ms);
    cJSON *labels = cJSON_AddObjectToObject(cJSON_GetObjectItem(o, "metadata"), "labels");
    if (d->app != NULL)
        cJSON_AddStringToObject(labels, "dapr.io/app-id", d->app->name);
    if (d->name[0] != '\0')
        cJSON_AddStringToObject(labels, "ringcast.dev/subscription", d->name);
    cJSON_AddStringToObject(labels, "ringcast.dev/origin",
                            d->programmatic ? "programmatic" : "declarative");
    cJSON *spec = cJSON_AddObjectToObject(o, "spec");
    cJSON_AddStringToObject(spec, "pubsubname", d->pubsub);
    cJSON_AddStringToObject(spec, "topic", d->topic);
    cJSON *routes = cJSON_AddObjectToObject(spec, "routes");
    cJSON *rules = cJSON_AddArrayToObject(routes, "rules");
    for (size_t i = 0; i < d->rule_count; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "match", d->rules[i].match);
        cJSON_AddStringToObject(r, "path", d->rules[i].path);
        cJSON_AddItemToArray(rules, r);
    }
    if (d->default_path != NULL)
        cJSON_AddStringToObject(routes, "default", d->default_path);
    if (d->dead_letter_topic != NULL)
        cJSON_AddStringToObject(spec, "deadLetterTopic", d->dead_letter_topic);
    if (d->bulk) {
        cJSON *b = cJSON_AddObjectToObject(spec, "bulkSubscribe");
        cJSON_AddBoolToObject(b, "enabled", 1);
        cJSON_AddNumberToObject(b, "maxMessagesCount", d->bulk_max_messages);
        cJSON_AddNumberToObject(b, "maxAwaitDurationMs", d->bulk_max_await_ms);
    }
    if (d->raw_payload)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(spec, "metadata"), "rawPayload", "true");
    cJSON *scopes = cJSON_AddArrayToObject(o, "scopes");
    if (d->app != NULL)
        cJSON_AddItemToArray(scopes, cJSON_CreateString(d->app->name));
    cJSON *st;
    trigger_conditions(o, t, &st);
    cJSON_AddStringToObject(st, "broker", t->cfg->broker);
    cJSON_AddStringToObject(st, "consumerGroup", d->group);
    cJSON_AddStringToObject(st, "subscriberUri", t->cfg->subscriber_uri);
    add_delivery_status(st, t, detail);
    return o;
}

/* ---- routing ------------------------------------------------------------------------------- */

typedef enum { RES_BROKERS, RES_TRIGGERS, RES_SUBSCRIPTIONS } resource_t;

/* A parsed status path: the resource, and the namespace and name ("" when not given). */
typedef struct {
    resource_t res;
    char ns[RC_CONFIG_NAME_MAX + 1];
    char name[2 * RC_CONFIG_NAME_MAX + 2];
} query_t;

int rc__admin_segment(const char **p, const char *end, char *out, size_t cap)
{
    const char *s = *p, *e = memchr(s, '/', (size_t)(end - s));
    if (e == NULL)
        e = end;
    size_t n = (size_t)(e - s);
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    *p = e < end ? e + 1 : end;
    return (int)n;
}

#define segment rc__admin_segment

/* /apis/GROUP/VERSION[/namespaces/NS]/RESOURCE[/NAME]. Returns 0, or -1: not a status path. */
static int parse_query(const char *path, size_t len, query_t *q)
{
    const char *end = path + len, *p;
    char res[32];
    memset(q, 0, sizeof(*q));
    int dapr = 0;
    static const char kn[] = "/apis/" KNATIVE_API "/", da[] = "/apis/" DAPR_API "/";
    if (len >= sizeof(kn) && memcmp(path, kn, sizeof(kn) - 1) == 0) {
        p = path + sizeof(kn) - 1;
    } else if (len >= sizeof(da) && memcmp(path, da, sizeof(da) - 1) == 0) {
        p = path + sizeof(da) - 1;
        dapr = 1;
    } else {
        return -1;
    }
    if ((size_t)(end - p) > 11 && memcmp(p, "namespaces/", 11) == 0) {
        p += 11;
        if (segment(&p, end, q->ns, sizeof(q->ns)) < 0)
            return -1;
    }
    if (segment(&p, end, res, sizeof(res)) < 0)
        return -1;
    if (p < end && segment(&p, end, q->name, sizeof(q->name)) < 0)
        return -1;
    if (p < end)
        return -1;
    if (dapr && strcmp(res, "subscriptions") == 0)
        q->res = RES_SUBSCRIPTIONS;
    else if (!dapr && strcmp(res, "brokers") == 0)
        q->res = RES_BROKERS;
    else if (!dapr && strcmp(res, "triggers") == 0)
        q->res = RES_TRIGGERS;
    else
        return -1;
    return 0;
}

static int selected(const query_t *q, const char *ns, const char *name)
{
    return (q->ns[0] == '\0' || strcmp(q->ns, ns) == 0) &&
           (q->name[0] == '\0' || strcmp(q->name, name) == 0);
}

/* The matching objects of `q`, into `items`. */
static void collect(const rc_admin_t *a, const rc_admin_view_t *v, const query_t *q, cJSON *items)
{
    if (q->res == RES_BROKERS) {
        for (size_t i = 0; i < v->nbrokers; i++) {
            if (selected(q, v->brokers[i].ns, v->brokers[i].name))
                cJSON_AddItemToArray(items, broker_object(a, v, i));
        }
        return;
    }
    if (v->sup == NULL)
        return;
    size_t n = rc_supervisor_triggers(v->sup, NULL, 0);
    rc_supervisor_trigger_t *t = calloc(n ? n : 1, sizeof(*t));
    if (t == NULL)
        return;
    n = rc_supervisor_triggers(v->sup, t, n);
    for (size_t i = 0; i < n; i++) {
        int dapr = t[i].cfg->dapr != NULL;
        if ((q->res == RES_SUBSCRIPTIONS) != dapr || !selected(q, t[i].cfg->ns, t[i].cfg->name))
            continue;
        int detail = q->name[0] != '\0';
        cJSON_AddItemToArray(items, dapr ? subscription_object(&t[i], detail)
                                         : trigger_object(&t[i], detail));
    }
    free(t);
}

void rc__admin_collect_all(const rc_admin_t *a, const rc_admin_view_t *v, cJSON *brokers,
                           cJSON *triggers, cJSON *subscriptions)
{
    query_t q;
    memset(&q, 0, sizeof(q));
    q.res = RES_BROKERS;
    collect(a, v, &q, brokers);
    q.res = RES_TRIGGERS;
    collect(a, v, &q, triggers);
    q.res = RES_SUBSCRIPTIONS;
    collect(a, v, &q, subscriptions);
}

static const char *const kinds[] = {"Broker", "Trigger", "Subscription"};
static const char *const plurals[] = {"brokers", "triggers", "subscriptions"};

/* A Kubernetes Status body for a name not found. */
static cJSON *not_found(const query_t *q)
{
    const char *group = q->res == RES_SUBSCRIPTIONS ? "dapr.io" : "eventing.knative.dev";
    char msg[256];
    snprintf(msg, sizeof(msg), "%s.%s \"%s\" not found%s%s", plurals[q->res], group, q->name,
             q->ns[0] ? " in namespace " : "", q->ns);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddStringToObject(o, "kind", "Status");
    cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(o, "status", "Failure");
    cJSON_AddStringToObject(o, "message", msg);
    cJSON_AddStringToObject(o, "reason", "NotFound");
    cJSON *d = cJSON_AddObjectToObject(o, "details");
    cJSON_AddStringToObject(d, "name", q->name);
    cJSON_AddStringToObject(d, "group", group);
    cJSON_AddStringToObject(d, "kind", plurals[q->res]);
    cJSON_AddNumberToObject(o, "code", 404);
    return o;
}

static void serve_status(rc_admin_t *a, const query_t *q, rc_http_server_response_t *res)
{
    rc_admin_view_t v;
    memset(&v, 0, sizeof(v));
    a->view(a->arg, &v);
    cJSON *items = cJSON_CreateArray(), *out = NULL;
    collect(a, &v, q, items);
    int status = 200;
    if (q->name[0] == '\0') {
        char kind[32];
        snprintf(kind, sizeof(kind), "%sList", kinds[q->res]);
        out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "apiVersion",
                                q->res == RES_SUBSCRIPTIONS ? DAPR_API : KNATIVE_API);
        cJSON_AddStringToObject(out, "kind", kind);
        cJSON_AddObjectToObject(out, "metadata");
        cJSON_AddItemToObject(out, "items", items);
        items = NULL;
    } else if (cJSON_GetArraySize(items) > 0) {
        /* Without a namespace, a name may be in several: the first (config order). */
        out = cJSON_DetachItemFromArray(items, 0);
    } else {
        out = not_found(q);
        status = 404;
    }
    cJSON_Delete(items);
    rc__admin_answer_json(a, res, status, out, 503, "out of memory");
}

static void serve_metrics(rc_admin_t *a, rc_http_server_response_t *res)
{
    size_t need = a->metrics(a->arg, a->buf, a->cap);
    if (need >= a->cap) {
        size_t cap = need + 4096;
        char *nb = realloc(a->buf, cap);
        if (nb == NULL) {
            rc_http_response_error(res, 503, "out of memory");
            return;
        }
        a->buf = nb;
        a->cap = cap;
        need = a->metrics(a->arg, a->buf, a->cap);
    }
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    res->body = a->buf;
    res->body_len = need < a->cap ? need : a->cap;
}

/* ---- writes -------------------------------------------------------------------------------- */

#define WRITE_API "/apis/" RINGCAST_API "/"

void rc__admin_status_answer(rc_admin_t *a, rc_http_server_response_t *res, int status,
                             const char *reason, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddStringToObject(o, "kind", "Status");
    cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(o, "status", "Failure");
    cJSON_AddStringToObject(o, "message", msg);
    cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddNumberToObject(o, "code", status);
    rc__admin_answer_json(a, res, status, o, status, msg);
}

#define status_answer rc__admin_status_answer

/* Compares without an early exit, so the time taken does not tell how much of a guess was
 * right. */
static int same_secret(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    unsigned char d = alen != blen;
    for (size_t i = 0; i < alen; i++)
        d |= (unsigned char)(a[i] ^ b[i % (blen ? blen : 1)]);
    return d == 0;
}

int rc__admin_loopback_trusted(const rc_http_server_request_t *req)
{
    /* Browsers send Origin (every POST) or Sec-Fetch-Site; the CLI and curl send neither. A
     * page in the operator's browser, of this listener or of any other site (a form POST needs
     * no preflight; a page can rebind its DNS name to 127.0.0.1), is no proof of the operator:
     * without a token the dashboard is read-only. */
    return req->peer_loopback && rc_http_find_header(req, "origin") == NULL &&
           rc_http_find_header(req, "sec-fetch-site") == NULL;
}

int rc__admin_may_read_data(const rc_admin_t *a, const rc_http_server_request_t *req)
{
    if (a->token == NULL)
        return rc__admin_loopback_trusted(req);
    const rc_http_header_t *h = rc_http_find_header(req, "authorization");
    if (h == NULL || h->value.len <= 7 || strncasecmp(h->value.ptr, "Bearer ", 7) != 0)
        return 0;
    return same_secret(h->value.ptr + 7, h->value.len - 7, a->token);
}

int rc__admin_authorized(rc_admin_t *a, const rc_http_server_request_t *req,
                         rc_http_server_response_t *res)
{
    if (a->token == NULL) {
        if (rc__admin_loopback_trusted(req))
            return 0;
        status_answer(a, res, 403, "Forbidden",
                      req->peer_loopback
                          ? "a browser may write only when spec.admin.token is set (then with "
                            "Authorization: Bearer TOKEN): without a token the dashboard is "
                            "read-only"
                          : "writes are accepted from loopback only unless spec.admin.token is "
                            "set (then with Authorization: Bearer TOKEN)");
        return -1;
    }
    const rc_http_header_t *h = rc_http_find_header(req, "authorization");
    const char *v = h != NULL ? h->value.ptr : NULL;
    size_t n = h != NULL ? h->value.len : 0;
    size_t tok = 0;
    int bearer = n > 7 && strncasecmp(v, "Bearer ", 7) == 0;
    if (bearer) {
        tok = n - 7;
        for (size_t i = 7; i < n; i++)
            bearer &= v[i] > ' ' && v[i] < 0x7f;
    }
    if (!bearer || tok == 0) {
        status_answer(a, res, 401, "Unauthorized",
                      h == NULL ? "this broker's admin API needs a bearer token for writes "
                                  "(Authorization: Bearer TOKEN; ringcast --token or "
                                  "RINGCAST_ADMIN_TOKEN)"
                                : "the Authorization header must be 'Bearer TOKEN'");
        res->headers = "WWW-Authenticate: Bearer realm=\"ringcast\"\r\n";
        res->headers_len = strlen(res->headers);
        return -1;
    }
    if (!same_secret(v + 7, tok, a->token)) {
        status_answer(a, res, 403, "Forbidden", "the bearer token is not this broker's");
        return -1;
    }
    return 0;
}

/* /readyz: 200 while the ingress accepts events for every broker; 503 while starting or
 * stopping, or while a broker's Redis does not answer (its events get 503: a load balancer
 * sends producers to another node). */
static void serve_readyz(rc_admin_t *a, rc_http_server_response_t *res)
{
    if (!a->ready(a->arg)) {
        rc_http_response_error(res, 503, "not ready: shutting down");
        return;
    }
    rc_admin_view_t v;
    a->view(a->arg, &v);
    for (size_t i = 0; i < v.nbrokers; i++) {
        if (v.brokers[i].redis_down) {
            char msg[2 * RC_CONFIG_NAME_MAX + 96];
            snprintf(msg, sizeof(msg),
                     "not ready: broker %s/%s: its Redis does not answer or refuses appends",
                     v.brokers[i].ns, v.brokers[i].name);
            rc_http_response_error(res, 503, msg);
            return;
        }
    }
    res->status = 200;
    res->content_type = "text/plain";
    res->body = "ready\n";
    res->body_len = 6;
}

static void serve_write(rc_admin_t *a, rc_apply_op_t op, const rc_http_server_request_t *req,
                        rc_http_server_response_t *res)
{
    if (req->method != RC_HTTP_POST) {
        status_answer(a, res, 405, "MethodNotAllowed",
                      "apply and delete take POST with a YAML body of manifests");
        res->headers = "Allow: POST\r\n";
        res->headers_len = strlen(res->headers);
        return;
    }
    if (rc__admin_authorized(a, req, res) != 0)
        return;
    char *json = NULL;
    int status = a->write(a->arg, op, req->body != NULL ? req->body : "", req->body_len,
                          req->conn_id, &json);
    if (status == 0) {
        res->hold = 1; /* answered once the reload is applied */
        return;
    }
    answer_text(a, res, status, json, 503, "out of memory");
}

/* ---- pause and resume ------------------------------------------------------------------------ */

/* WRITE_API "namespaces/NS/triggers/NAME/(pause|resume)": returns 1 (pause) or 0 (resume) with
 * the namespace and name, -1 for another path. */
static int parse_pause(const rc_http_server_request_t *req, char *ns, size_t nscap, char *name,
                       size_t namecap)
{
    static const char pre[] = WRITE_API "namespaces/";
    const char *p = req->path, *end = req->path + req->path_len;
    char res[16], verb[16];
    if (req->path_len < sizeof(pre) || memcmp(p, pre, sizeof(pre) - 1) != 0)
        return -1;
    p += sizeof(pre) - 1;
    if (segment(&p, end, ns, nscap) < 0 || segment(&p, end, res, sizeof(res)) < 0 ||
        strcmp(res, "triggers") != 0 || segment(&p, end, name, namecap) < 0 ||
        segment(&p, end, verb, sizeof(verb)) < 0 || p < end || end[-1] == '/')
        return -1;
    if (strcmp(verb, "pause") == 0)
        return 1;
    return strcmp(verb, "resume") == 0 ? 0 : -1;
}

/* Sets or clears the trigger's paused_ms in the shared stats slot, which its worker reads before
 * each send: in effect within one loop turn of the worker, no reload. Answers the Trigger. */
static void serve_pause(rc_admin_t *a, int pause, const char *ns, const char *name,
                        const rc_http_server_request_t *req, rc_http_server_response_t *res)
{
    if (req->method != RC_HTTP_POST) {
        status_answer(a, res, 405, "MethodNotAllowed", "pause and resume take POST (no body)");
        res->headers = "Allow: POST\r\n";
        res->headers_len = strlen(res->headers);
        return;
    }
    if (rc__admin_authorized(a, req, res) != 0)
        return;
    query_t q;
    memset(&q, 0, sizeof(q));
    q.res = RES_TRIGGERS;
    snprintf(q.ns, sizeof(q.ns), "%s", ns);
    snprintf(q.name, sizeof(q.name), "%s", name);
    rc_admin_view_t v;
    memset(&v, 0, sizeof(v));
    a->view(a->arg, &v);
    size_t n = v.sup != NULL ? rc_supervisor_triggers(v.sup, NULL, 0) : 0;
    rc_supervisor_trigger_t *t = calloc(n ? n : 1, sizeof(*t));
    if (t == NULL) {
        rc_http_response_error(res, 503, "out of memory");
        return;
    }
    n = v.sup != NULL ? rc_supervisor_triggers(v.sup, t, n) : 0;
    const rc_supervisor_trigger_t *found = NULL;
    for (size_t i = 0; i < n && found == NULL; i++) {
        if (t[i].cfg->dapr == NULL && strcmp(t[i].cfg->ns, ns) == 0 &&
            strcmp(t[i].cfg->name, name) == 0)
            found = &t[i];
    }
    int status = 200;
    cJSON *o;
    if (found == NULL) {
        o = not_found(&q);
        status = 404;
    } else {
        _Atomic uint64_t *flag = &found->stats->paused_ms;
        uint64_t was = atomic_load_explicit(flag, memory_order_relaxed);
        if (pause && was == 0)
            atomic_store_explicit(flag, (uint64_t)(rc_wall_ns() / 1000000), memory_order_relaxed);
        else if (!pause)
            atomic_store_explicit(flag, 0, memory_order_relaxed);
        if ((pause != 0) != (was != 0))
            rc_log_info("admin", "trigger %s/%s %s", ns, name, pause ? "paused" : "resumed");
        o = trigger_object(found, 1);
    }
    free(t);
    rc__admin_answer_json(a, res, status, o, 503, "out of memory");
}

static void on_request(void *data, const rc_http_server_request_t *req,
                       rc_http_server_response_t *res)
{
    rc_admin_t *a = data;
    char pns[RC_CONFIG_NAME_MAX + 1], pname[RC_CONFIG_NAME_MAX + 1];
    int pause = a->view != NULL ? parse_pause(req, pns, sizeof(pns), pname, sizeof(pname)) : -1;
    if (pause >= 0) {
        serve_pause(a, pause, pns, pname, req, res);
        return;
    }
    if (rc__admin_events_route(a, req, res)) /* events, replay, a subscription's pause */
        return;
    if (a->write != NULL && (path_is(req, WRITE_API "apply") || path_is(req, WRITE_API "delete"))) {
        serve_write(a, path_is(req, WRITE_API "apply") ? RC_APPLY_APPLY : RC_APPLY_DELETE, req,
                    res);
        return;
    }
    if (rc_dashboard_route(a, req, res)) /* `/`, `/ui/...` and the overview (net/dashboard.c) */
        return;
    query_t q;
    int status_api = a->view != NULL && parse_query(req->path, req->path_len, &q) == 0;
    int known = status_api || path_is(req, "/healthz") || path_is(req, "/readyz") ||
                path_is(req, "/metrics");
    if (!known) {
        rc_http_response_error(
            res, 404,
            "unknown admin path (try /healthz, /readyz, /metrics, "
            "/apis/" KNATIVE_API "/brokers, /apis/" KNATIVE_API "/triggers, "
            "/apis/" DAPR_API "/subscriptions, POST /apis/" RINGCAST_API
            "/apply and /delete, POST /apis/" RINGCAST_API
            "/namespaces/NS/triggers/NAME/pause, /resume and /replay, GET /apis/" RINGCAST_API
            "/namespaces/NS/brokers/NAME/events)");
        return;
    }
    if (req->method != RC_HTTP_GET && req->method != RC_HTTP_HEAD) {
        rc_http_response_error(res, 405, "admin endpoints answer GET only");
        res->headers = "Allow: GET, HEAD\r\n";
        res->headers_len = strlen(res->headers);
        return;
    }
    if (status_api) {
        serve_status(a, &q, res);
    } else if (path_is(req, "/healthz")) {
        res->status = 200;
        res->content_type = "text/plain";
        res->body = "ok\n";
        res->body_len = 3;
    } else if (path_is(req, "/readyz")) {
        serve_readyz(a, res);
    } else {
        serve_metrics(a, res);
    }
}

void rc_admin_handler(rc_admin_t *a, rc_http_handler_t *h)
{
    memset(h, 0, sizeof(*h));
    h->on_request = on_request;
    h->data = a;
}

void rc_admin_close(rc_admin_t *a)
{
    free(a->buf);
    a->buf = NULL;
    a->cap = 0;
}
