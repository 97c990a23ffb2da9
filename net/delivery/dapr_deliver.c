/* Delivery of a Dapr subscription (one internal trigger per subscription and app, core/config.h
 * rc_config_dapr_sub_t): the wire behaviour of CONTRACTS.md, "Delivery to an app".
 *
 * Each event goes to one replica of the app (replica.c: least in flight first, maxConcurrency
 * each, refusing replicas skipped). On its first attempt the event is checked against its
 * `expiration` and routed: the subscription's rules in order (CEL over the ring record), the
 * first match giving the path, else the default path. It is POSTed as the whole structured
 * event (the JSON body every trigger shares; a rawPayload subscription gets a synthesised event
 * carrying the data as data_base64), with no Prefer or Kn-Namespace lines, and the answer is
 * classified by rc_dapr_classify. Retries follow the trigger's effective spec.delivery.
 *
 * An event that is not delivered (retries exhausted, DROP, 404, no route, expired) is
 * republished on the subscription's dead-letter topic on the same broker: the same event with
 * `topic` set to that topic and `ringcastdaprreason` saying why (plus knativeerrorcode and
 * knativeerrordest when an app answered or failed), through the worker's reply queue (reply.c),
 * so that a full ring delays it instead of losing it. Without a dead-letter topic it is dropped
 * and counted. Its knativebrokerttl goes down by one, as a reply's does, which ends loops of
 * dead-letter topics. A bulkSubscribe subscription sends its events in batches
 * (dapr_bulk_deliver.c) with the same per-event steps (rc__dapr_admit, rc__dapr_body,
 * rc__dapr_apply). docs/delivery.md, "Dapr subscriptions". */
#include "net/delivery/worker_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/cel.h"
#include "core/clock.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/metric.h"
#include "core/record.h"
#include "core/validate.h"

#define LOG_WINDOW_NS (1000000000ll)
#define LOG_LINES     10 /* outcomes logged one by one per trigger and window */
#define ID_MAX        64

/* Why an event is not delivered: the value of ringcastdaprreason. */
enum { R_RETRIES, R_DROP, R_NOT_FOUND, R_NO_ROUTE, R_EXPIRED, R_COUNT };
static const char *const reason_names[R_COUNT] = {"retries_exhausted", "drop", "not_found",
                                                  "no_route", "expired"};

struct rc__dapr_s {
    const rc_config_dapr_sub_t *sub;
    rc_delivery_t delivery; /* the trigger's effective block, without a dead-letter sink */
    const char **paths;     /* the distinct paths of the rules and the default */
    size_t npaths;
    int32_t *rule_path;   /* per rule: its index in paths */
    int32_t default_path; /* -1: none */
    int64_t log_since;    /* start of the current window of outcome logs */
    uint32_t log_lines;
    uint32_t folded[R_COUNT]; /* outcomes not logged one by one in it */
};

/* ---- setup ------------------------------------------------------------------------------------
 */

static int32_t add_path(rc__dapr_t *d, const char *path)
{
    for (size_t i = 0; i < d->npaths; i++) {
        if (strcmp(d->paths[i], path) == 0)
            return (int32_t)i;
    }
    d->paths[d->npaths] = path;
    return (int32_t)d->npaths++;
}

int rc__dapr_setup(rc__wtrig_t *t, rc_http_client_t *c)
{
    const rc_config_trigger_t *cfg = t->wt->cfg;
    const rc_config_dapr_sub_t *sub = cfg->dapr;
    rc__dapr_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return -ENOMEM;
    t->dapr = d;
    d->sub = sub;
    /* A Broker's deadLetterSink is Knative's: a Dapr subscription's dead letters go to its
     * deadLetterTopic, and the reply queue must not send them to a sink either. */
    d->delivery = t->wt->delivery;
    d->delivery.dead_letter_uri[0] = '\0';
    d->delivery.set &= ~(uint32_t)RC_DELIVERY_HAS_DEAD_LETTER;
    t->d = &d->delivery;
    t->lines_len = 0; /* no Prefer: reply, no Kn-Namespace */
    d->paths = calloc(sub->rule_count + 1, sizeof(*d->paths));
    d->rule_path = calloc(sub->rule_count ? sub->rule_count : 1, sizeof(*d->rule_path));
    if (d->paths == NULL || d->rule_path == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < sub->rule_count; i++)
        d->rule_path[i] = add_path(d, sub->rules[i].path);
    d->default_path = sub->default_path != NULL ? add_path(d, sub->default_path) : -1;
    const char *const *bases = (const char *const *)&cfg->subscriber_uri;
    size_t n = 1;
    uint32_t cap = 0;
    if (sub->app != NULL && sub->app->endpoint_count > 0) {
        bases = (const char *const *)sub->app->endpoints;
        n = sub->app->endpoint_count;
        cap = sub->app->max_concurrency;
    }
    int rc = rc__replicas_init(t, c, bases, n, cap, d->paths, d->npaths);
    if (rc == 0 && sub->bulk)
        rc = rc__bulk_setup(t, d->npaths);
    return rc;
}

void rc__dapr_close(rc__wtrig_t *t)
{
    rc__bulk_close(t);
    rc__replicas_close(t);
    if (t->dapr == NULL)
        return;
    free(t->dapr->paths);
    free(t->dapr->rule_path);
    free(t->dapr);
    t->dapr = NULL;
}

/* ---- logs -------------------------------------------------------------------------------------
 */

/* An attribute for a log line: cut to fit, bytes that are not printable ASCII become '?'. */
static void copy_id(char *dst, size_t cap, rc_str_t s)
{
    size_t n = 0;
    for (; s.ptr != NULL && n < s.len && n + 1 < cap; n++) {
        unsigned char c = (unsigned char)s.ptr[n];
        dst[n] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[n] = '\0';
}

static void log_roll(rc__wtrig_t *t, int64_t now, int force)
{
    rc__dapr_t *d = t->dapr;
    if (!force && now - d->log_since < LOG_WINDOW_NS)
        return;
    char by[160];
    size_t n = 0;
    uint32_t folded = 0;
    by[0] = '\0';
    for (int i = 0; i < R_COUNT; i++) {
        if (d->folded[i] == 0)
            continue;
        folded += d->folded[i];
        int k = snprintf(by + n, sizeof(by) - n, "%s%s %u", n > 0 ? ", " : "", reason_names[i],
                         d->folded[i]);
        if (k > 0 && (size_t)k < sizeof(by) - n)
            n += (size_t)k;
        d->folded[i] = 0;
    }
    if (folded > 0) {
        char trig[2 * RC_CONFIG_NAME_MAX + 2];
        snprintf(trig, sizeof(trig), "%s/%s", t->wt->cfg->ns, t->wt->cfg->name);
        rc_log_field_t f[] = {RC_LOG_STR("trigger", trig), RC_LOG_INT("suppressed", folded)};
        rc_log_fields(RC_LOG_WARN, "worker", f, 2,
                      "trigger %s: %u more event%s not delivered in the last %.1f s (%s; not "
                      "logged one by one)",
                      trig, folded, folded == 1 ? "" : "s", (double)(now - d->log_since) / 1e9, by);
    }
    d->log_lines = 0;
    d->log_since = now;
}

void rc__dapr_log_flush(rc__wtrig_t *t, int64_t now, int force)
{
    if (t->dapr != NULL)
        log_roll(t, now, force);
    rc__bulk_log_flush(t, now, force);
}

/* One line per event not delivered, ten a second per trigger at most; the rest are folded
 * into the summary log_roll writes, so the log adds up to the counters. */
static void log_outcome(rc__wentry_t *e, int reason, int result, int to_topic)
{
    rc__wtrig_t *t = e->t;
    rc__dapr_t *d = t->dapr;
    log_roll(t, rc__now_ns(), 0);
    if (d->log_lines >= LOG_LINES) {
        d->folded[reason]++;
        return;
    }
    d->log_lines++;
    char id[ID_MAX], why[128];
    copy_id(id, sizeof(id), rc_record_attr(&e->ev->rv, RC_CE_ATTR_ID));
    if (reason == R_RETRIES && result > 0)
        snprintf(why, sizeof(why), "delivery failed after %u retries (last answer: %d)", e->retries,
                 result);
    else if (reason == R_RETRIES)
        snprintf(why, sizeof(why), "delivery failed after %u retries (last: %s)", e->retries,
                 rc_strerror(result));
    else
        snprintf(why, sizeof(why), "%s",
                 reason == R_DROP        ? "the app answered DROP"
                 : reason == R_NOT_FOUND ? "the app answered 404"
                 : reason == R_NO_ROUTE  ? "no routing rule matched and there is no default route"
                                         : "its expiration had passed");
    /* The same fields as a Knative trigger's line (worker_attempt.c, rc__drop_log), and the
     * reason as ringcastdaprreason says it. */
    char trig[2 * RC_CONFIG_NAME_MAX + 2], source[ID_MAX], type[ID_MAX];
    snprintf(trig, sizeof(trig), "%s/%s", t->wt->cfg->ns, t->wt->cfg->name);
    copy_id(source, sizeof(source), rc_record_attr(&e->ev->rv, RC_CE_ATTR_SOURCE));
    copy_id(type, sizeof(type), rc_record_attr(&e->ev->rv, RC_CE_ATTR_TYPE));
    rc_log_field_t f[10];
    size_t n = 0;
    f[n++] = RC_LOG_STR("trigger", trig);
    f[n++] = RC_LOG_STR("event_id", id);
    f[n++] = RC_LOG_STR("source", source);
    f[n++] = RC_LOG_STR("type", type);
    f[n++] = RC_LOG_STR("outcome", to_topic ? "dead-lettered" : "dropped");
    f[n++] = RC_LOG_STR("reason", reason_names[reason]);
    if (result > 0)
        f[n++] = RC_LOG_INT("status", result);
    else if (result < 0)
        f[n++] = RC_LOG_STR("error", rc_strerror(result));
    f[n++] = RC_LOG_INT("retries", e->retries);
    if (to_topic)
        f[n++] = RC_LOG_STR("dead_letter_topic", d->sub->dead_letter_topic);
    rc_log_fields(RC_LOG_WARN, "worker", f, n, "trigger %s: event %s not delivered (%s: %s); %s%s",
                  trig, id, reason_names[reason], why,
                  to_topic ? "dead-lettered to topic " : "dropped (no dead-letter topic)",
                  to_topic ? d->sub->dead_letter_topic : "");
}

/* ---- dead letters -----------------------------------------------------------------------------
 */

static int32_t event_ttl(const rc_record_view_t *rv)
{
    rc_ce_value_t v;
    int32_t ttl = RC_CE_TTL_DEFAULT;
    if (rc_record_get(rv, RC_STR("knativebrokerttl"), &v) == 0)
        (void)rc_ce_int_parse(v.value, &ttl);
    return ttl;
}

/* The event for the dead-letter topic, stored or queued by the reply machinery (counted
 * dead_lettered or dropped there). `dest` is where the last attempt went (NULL: none). */
static int dead_letter(rc__wentry_t *e, int reason, int result, const char *dest)
{
    rc__wtrig_t *t = e->t;
    rc_ce_ext_t ext[RC_CE_EXT_MAX + 4];
    rc_event_t ev;
    int rc = rc_record_to_event(&e->ev->rv, &ev, ext, RC_CE_EXT_MAX);
    if (rc != 0)
        return rc;
    ev.ext_cap = RC_CE_EXT_MAX + 4;
    /* An expired event keeps its data but not its expiration: the dead-letter topic's
     * subscribers would never get it otherwise. Knative's error attributes of an earlier dead
     * letter say nothing about this one. */
    if (reason == R_EXPIRED)
        rc_event_remove_ext(&ev, RC_STR("expiration"));
    rc_event_remove_ext(&ev, RC_STR("knativeerrorcode"));
    rc_event_remove_ext(&ev, RC_STR("knativeerrordest"));
    rc_event_remove_ext(&ev, RC_STR("knativeerrordata"));
    char code[16];
    rc = rc_event_set_ext(&ev, NULL, RC_STR("topic"), rc_str(t->dapr->sub->dead_letter_topic),
                          RC_CE_STRING);
    if (rc == 0)
        rc = rc_event_set_ext(&ev, NULL, RC_STR("ringcastdaprreason"), rc_str(reason_names[reason]),
                              RC_CE_STRING);
    if (rc == 0 && dest != NULL) {
        snprintf(code, sizeof(code), "%d", rc_dead_letter_code(result));
        rc = rc_event_set_ext(&ev, NULL, RC_STR("knativeerrorcode"), rc_str(code), RC_CE_STRING);
        if (rc == 0)
            rc =
                rc_event_set_ext(&ev, NULL, RC_STR("knativeerrordest"), rc_str(dest), RC_CE_STRING);
    }
    if (rc == 0)
        rc = rc__write_event(&ev, 1, &e->hdr, &e->hdr_cap, &e->hdr_len);
    if (rc != 0)
        return rc;
    static const rc_str_t ct_name = RC_STR("Content-Type");
    static const rc_str_t ct_value = RC_STR("application/cloudevents+json");
    rc_reply_t r = {
        .names = &ct_name,
        .values = &ct_value,
        .n = 1,
        .body = {e->hdr, e->hdr_len},
        .parent_ttl = event_ttl(&e->ev->rv),
        .arrival_ns = rc_wall_ns(),
        .dead_letter = 1,
    };
    rc__reply_take(t, &r, rc_record_attr(&e->ev->rv, RC_CE_ATTR_ID));
    return 0;
}

/* The event is finished without being delivered: to the dead-letter topic, else dropped. */
static void give_up(rc__wentry_t *e, int reason, int result, const rc__replica_t *rep)
{
    rc__wtrig_t *t = e->t;
    const char *topic = t->dapr->sub->dead_letter_topic;
    int to_topic = topic != NULL && topic[0] != '\0';
    log_outcome(e, reason, result, to_topic);
    if (!to_topic) {
        rc_metric_add(&t->st->dropped, 1);
        rc__entry_finish(e);
        return;
    }
    char dest[2048];
    if (rep != NULL)
        snprintf(dest, sizeof(dest), "%s%s", rep->base, t->dapr->paths[e->path]);
    int rc = dead_letter(e, reason, result, rep != NULL ? dest : NULL);
    if (rc != 0) {
        char id[ID_MAX];
        copy_id(id, sizeof(id), rc_record_attr(&e->ev->rv, RC_CE_ATTR_ID));
        rc_log_error("worker",
                     "trigger %s/%s: event %s cannot be written as a dead letter (%s); "
                     "dropped",
                     t->wt->cfg->ns, t->wt->cfg->name, id, rc_strerror(rc));
        rc_metric_add(&t->st->dropped, 1);
    }
    rc__entry_finish(e);
}

/* ---- attempts ---------------------------------------------------------------------------------
 */

/* The path of the first rule that matches (a rule without a program is an empty `match`: it
 * always does), else the default path; -1 when neither. */
static int32_t route(const rc__dapr_t *d, const rc_record_view_t *rv)
{
    for (size_t i = 0; i < d->sub->rule_count; i++) {
        const rc_cel_t *cel = d->sub->rules[i].cel;
        if (cel == NULL || rc_cel_match_record(cel, rv))
            return d->rule_path[i];
    }
    return d->default_path;
}

/* On its first attempt: its expiration (an unreadable one is ignored, as Dapr does) and its
 * path. */
static void prepare(rc__dapr_t *d, rc__wentry_t *e)
{
    e->prepared = 1;
    e->expires_ns = 0;
    rc_ce_value_t v;
    int64_t sec;
    uint32_t nsec;
    if (rc_record_get(&e->ev->rv, RC_STR("expiration"), &v) == 0 &&
        rc_ce_time_parse(v.value, &sec, &nsec) == 0) {
        if (sec >= INT64_MAX / 1000000000 - 1)
            e->expires_ns = INT64_MAX;
        else if (sec < 0)
            e->expires_ns = 1; /* long past; 0 means none */
        else
            e->expires_ns = sec * 1000000000 + nsec;
    }
    e->path = route(d, &e->ev->rv);
}

/* A rawPayload subscription's body: an event of Dapr's own shape carrying the data bytes as
 * data_base64 (the structured writer would put UTF-8 data as a string), into e->body. */
static int build_raw(rc__wentry_t *e, size_t *len)
{
    const rc_config_dapr_sub_t *sub = e->t->dapr->sub;
    const rc_record_view_t *rv = &e->ev->rv;
    rc_ce_ext_t ext[2] = {
        {RC_STR("topic"), rc_str(sub->topic), RC_CE_STRING},
        {RC_STR("pubsubname"), rc_str(sub->pubsub), RC_CE_STRING},
    };
    rc_event_t ev;
    rc_event_init(&ev, ext, 2);
    ev.ext_count = 2;
    ev.specversion = RC_STR("1.0");
    ev.id = rc_record_attr(rv, RC_CE_ATTR_ID);
    ev.source = rc_record_attr(rv, RC_CE_ATTR_SOURCE);
    ev.type = RC_STR("com.dapr.event.sent");
    ev.datacontenttype = RC_STR("application/octet-stream");
    int rc = rc__write_event(&ev, 1, &e->body, &e->body_cap, len);
    if (rc != 0)
        return rc;
    rc_str_t data = rc_record_data(rv);
    static const char member[] = ",\"data_base64\":\"";
    size_t b64 = rc_base64_encoded_len(data.ptr != NULL ? data.len : 0);
    size_t need = *len - 1 + sizeof(member) - 1 + b64 + 2;
    if (need > e->body_cap) {
        char *nb = realloc(e->body, need);
        if (nb == NULL)
            return -ENOMEM;
        e->body = nb;
        e->body_cap = need;
    }
    char *at = e->body + *len - 1; /* over the closing brace */
    memcpy(at, member, sizeof(member) - 1);
    at += sizeof(member) - 1;
    if (b64 > 0)
        at += rc_base64_encode(data.ptr, data.len, at);
    memcpy(at, "\"}", 2);
    *len = need;
    return 0;
}

int rc__dapr_admit(rc__wentry_t *e)
{
    rc__wtrig_t *t = e->t;
    if (!e->prepared)
        prepare(t->dapr, e);
    /* Expiry first, as Dapr checks it before routing. */
    if (e->expires_ns != 0 && rc_wall_ns() >= e->expires_ns) {
        rc_metric_add(&t->st->expired, 1);
        give_up(e, R_EXPIRED, 0, NULL);
        return 1;
    }
    if (e->path < 0) {
        rc_metric_add(&t->st->dapr_unrouted, 1);
        give_up(e, R_NO_ROUTE, 0, NULL);
        return 1;
    }
    return 0;
}

int rc__dapr_body(rc__wentry_t *e, struct iovec *iov)
{
    rc__wtrig_t *t = e->t;
    int raw = t->dapr->sub->raw_payload;
    size_t len = 0;
    int rc = raw ? build_raw(e, &len) : rc__event_build(e->ev, 1);
    if (rc != 0) {
        char id[ID_MAX];
        copy_id(id, sizeof(id), rc_record_attr(&e->ev->rv, RC_CE_ATTR_ID));
        rc_log_error("worker", "trigger %s/%s: event %s cannot be sent (%s); dropped",
                     t->wt->cfg->ns, t->wt->cfg->name, id, rc_strerror(rc));
        rc_metric_add(&t->st->dropped, 1);
        rc__entry_finish(e);
        return 1;
    }
    *iov = raw ? (struct iovec){e->body, len} : (struct iovec){e->ev->json, e->ev->json_len};
    return 0;
}

int rc__dapr_send(rc_http_client_t *c, rc__wentry_t *e)
{
    rc__wtrig_t *t = e->t;
    if (rc__dapr_admit(e))
        return 1;
    rc__replica_t *r = rc__replica_pick(t, rc__now_ns());
    if (r == NULL)
        return 0;
    if (rc__dapr_body(e, &e->iov) != 0)
        return 1;
    rc_http_request_t req = {
        .endpoint = r->ep[e->path],
        .timeout_ms = (uint32_t)((t->d->timeout_ns + 999999) / 1000000),
        .headers = RC__JSON_CT_LINE,
        .headers_len = sizeof(RC__JSON_CT_LINE) - 1,
        .body = &e->iov,
        .body_iovcnt = 1,
    };
    rc__replica_start(e, r);
    e->sent_ns = rc_now_ns();
    if (req.endpoint == NULL) {
        rc__on_response(-EHOSTUNREACH, NULL, e); /* an URL that did not resolve */
        return 1;
    }
    int rc = rc_http_client_request(c, &req, rc__on_response, e);
    if (rc != 0) {
        rc__on_response(rc, NULL, e);
        return 1;
    }
    e->state = RC__E_SENDING;
    t->sending++;
    return 1;
}

void rc__dapr_outcome(rc__wentry_t *e, int result, const rc_http_response_t *resp,
                      rc__replica_t *rep)
{
    rc__wtrig_t *t = e->t;
    int64_t now = rc__now_ns();
    int refused = rc__replica_refusal(result);
    if (rep != NULL && refused) {
        rc__replica_count(rep, 0);
        /* Another replica is up: the event goes there at once, and it is no retry. */
        if (rc__replica_refused(t, rep, now, result)) {
            e->state = RC__E_WAITING;
            e->due_ns = 0;
            return;
        }
    } else if (rep != NULL && result > 0) {
        rc__replica_answered(t, rep);
    }
    rc_dapr_outcome_t o =
        rc_dapr_classify(result, resp != NULL ? resp->body : NULL,
                         resp != NULL ? resp->body_len : 0, resp != NULL && resp->body_truncated);
    if (rep != NULL && !refused)
        rc__replica_count(rep, o == RC_DAPR_SUCCESS);
    rc__dapr_apply(e, o, result, resp, rep, now);
}

void rc__dapr_apply(rc__wentry_t *e, rc_dapr_outcome_t o, int result,
                    const rc_http_response_t *resp, const rc__replica_t *rep, int64_t now)
{
    rc__wtrig_t *t = e->t;
    switch (o) {
    case RC_DAPR_SUCCESS:
        rc_metric_add(&t->st->delivered, 1);
        rc_worker_stats_observe_at(t->st, rc_now_ns() - e->sent_ns, rc_now_ns());
        rc__observe_e2e(e);
        rc__entry_finish(e);
        return;
    case RC_DAPR_RETRY:
        if (rc_delivery_may_retry(t->d, e->retries)) {
            e->due_ns = now + rc__retry_wait_ns(t->d, e->retries, result, resp);
            e->retries++;
            e->state = RC__E_WAITING;
            rc_metric_add(&t->st->retried, 1);
            return;
        }
        rc_metric_add(&t->st->failed, 1);
        give_up(e, R_RETRIES, result, rep);
        return;
    case RC_DAPR_DROP:
        rc_metric_add(&t->st->dapr_drop, 1);
        give_up(e, R_DROP, result, rep);
        return;
    case RC_DAPR_NOT_FOUND:
        rc_metric_add(&t->st->dapr_not_found, 1);
        give_up(e, R_NOT_FOUND, result, rep);
        return;
    }
}
