/* A trigger's replicas: the endpoints of one subscriber that compete for its events (the
 * replicas of a Dapr app; issue 15's HTTP replicas of a Knative trigger reuse it). Each attempt
 * goes to one replica, the one with the fewest attempts in flight among those that are up and
 * below their own limit, ties taken in turn. A replica that refuses a connection is skipped for
 * a while (1 s, doubling with each refusal up to 30 s, back to nothing with its first answer) and
 * the attempt goes at once to another one that is up, without counting as a retry; when every
 * replica is skipped the trigger's ordinary retries and backoff apply, through the replica whose
 * skip ends first. Per-replica counters are in the stats segment (worker_stats.h). */
#include "net/delivery/worker_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metric.h"

#define SKIP_FIRST_NS (1000000000ll)
#define SKIP_MAX_NS   (30 * 1000000000ll)
#define URL_MAX       2048

int rc__replicas_init(rc__wtrig_t *t, rc_http_client_t *c, const char *const *bases, size_t n,
                      uint32_t cap, const char *const *paths, size_t npaths)
{
    t->rep = calloc(n ? n : 1, sizeof(*t->rep));
    if (t->rep == NULL)
        return -ENOMEM;
    t->nrep = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        rc__replica_t *r = &t->rep[i];
        r->base = bases[i];
        r->cap = cap;
        r->st = t->wt->stats_replicas != NULL && i < RC_STATS_REPLICAS ? &t->wt->stats_replicas[i]
                                                                       : NULL;
        r->ep = calloc(npaths ? npaths : 1, sizeof(*r->ep));
        if (r->ep == NULL)
            return -ENOMEM;
        /* A base URL ends without '/' and a path starts with one; either way one '/' joins
         * them. */
        size_t blen = strlen(r->base);
        if (blen > 0 && r->base[blen - 1] == '/')
            blen--;
        for (size_t p = 0; p < npaths; p++) {
            char url[URL_MAX], err[256];
            int k = snprintf(url, sizeof(url), "%.*s%s", (int)blen, r->base, paths[p]);
            int rc = k > 0 && (size_t)k < sizeof(url)
                         ? rc_http_client_endpoint(c, url, &r->ep[p], err, sizeof(err))
                         : (snprintf(err, sizeof(err), "longer than %d bytes", URL_MAX - 1), -1);
            if (rc == -ENOMEM)
                return rc;
            if (rc != 0)
                rc_log_error("worker", "trigger %s/%s: replica %s%s: %s (attempts fail)",
                             t->wt->cfg->ns, t->wt->cfg->name, r->base, paths[p], err);
        }
    }
    return 0;
}

void rc__replicas_close(rc__wtrig_t *t)
{
    for (uint32_t i = 0; t->rep != NULL && i < t->nrep; i++)
        free(t->rep[i].ep);
    free(t->rep);
    t->rep = NULL;
    t->nrep = 0;
}

rc__replica_t *rc__replica_pick(rc__wtrig_t *t, int64_t now)
{
    rc__replica_t *best = NULL, *soonest = NULL;
    uint32_t best_i = 0;
    int any_up = 0;
    uint32_t i = t->rr < t->nrep ? t->rr : 0;
    for (uint32_t k = 0; k < t->nrep; k++, i = i + 1 == t->nrep ? 0 : i + 1) {
        rc__replica_t *r = &t->rep[i];
        int full = r->cap != 0 && r->inflight >= r->cap;
        if (r->down_until > now) {
            if (!full && (soonest == NULL || r->down_until < soonest->down_until))
                soonest = r;
            continue;
        }
        any_up = 1;
        /* Strictly fewer: of equals, the first after the last one chosen wins (round robin). */
        if (!full && (best == NULL || r->inflight < best->inflight)) {
            best = r;
            best_i = i;
        }
    }
    if (best != NULL) {
        t->rr = best_i + 1 == t->nrep ? 0 : best_i + 1;
        return best;
    }
    if (any_up || soonest == NULL) {
        /* The replicas that are up are full: a response frees one; a skipped one with room may
         * take it when its skip ends. */
        t->rep_wake_ns = soonest != NULL ? soonest->down_until : INT64_MAX;
        return NULL;
    }
    return soonest;
}

void rc__replica_start(rc__wentry_t *e, rc__replica_t *r)
{
    e->rep = r;
    r->inflight++;
    if (r->st != NULL)
        atomic_store_explicit(&r->st->inflight, r->inflight, memory_order_relaxed);
}

rc__replica_t *rc__replica_release(rc__wentry_t *e)
{
    rc__replica_t *r = e->rep;
    if (r == NULL)
        return NULL;
    e->rep = NULL;
    r->inflight--;
    if (r->st != NULL)
        atomic_store_explicit(&r->st->inflight, r->inflight, memory_order_relaxed);
    return r;
}

void rc__replica_count(rc__replica_t *r, int ok)
{
    if (r != NULL && r->st != NULL)
        rc_metric_add(ok ? &r->st->delivered : &r->st->failed, 1);
}

int rc__replica_refusal(int result)
{
    /* Resets of a kept-alive connection the replica closed while idle never get here: the
     * client sends those requests again itself (http_client.c, conn_fail). */
    return result == -ECONNREFUSED || result == -ECONNRESET || result == -EHOSTUNREACH ||
           result == -ENETUNREACH || result == -EADDRNOTAVAIL;
}

int rc__replica_refused(rc__wtrig_t *t, rc__replica_t *r, int64_t now, int result)
{
    if (r->down_until <= now) {
        /* Up until now, or its skip is over: a new skip. Attempts that were in flight to it
         * when it went find it skipped already and leave the back-off as it is. */
        r->backoff_ns = r->backoff_ns == 0                 ? SKIP_FIRST_NS
                        : r->backoff_ns >= SKIP_MAX_NS / 2 ? SKIP_MAX_NS
                                                           : 2 * r->backoff_ns;
        r->down_until = now + r->backoff_ns;
        rc_log_warn("worker", "trigger %s/%s: replica %s: %s; skipped for %lld ms", t->wt->cfg->ns,
                    t->wt->cfg->name, r->base, strerror(-result),
                    (long long)(r->backoff_ns / 1000000));
    }
    for (uint32_t i = 0; i < t->nrep; i++) {
        if (&t->rep[i] != r && t->rep[i].down_until <= now)
            return 1;
    }
    return 0;
}

void rc__replica_answered(rc__wtrig_t *t, rc__replica_t *r)
{
    if (r->backoff_ns == 0)
        return;
    rc_log_info("worker", "trigger %s/%s: replica %s answers again", t->wt->cfg->ns,
                t->wt->cfg->name, r->base);
    r->backoff_ns = 0;
    r->down_until = 0;
}
