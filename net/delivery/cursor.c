/* Trigger and feed cursors in the store's cursor table: names, the follow-the-feed rule,
 * settling links, and the supervisor's bookkeeping of slots (taken at start and reload, dropped
 * when their trigger or feed is gone). */
#include "net/delivery/cursor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/event.h"
#include "core/log.h"

#define FEED_PREFIX "~feed"
/* Slots per broker's table: room for every trigger and feed a config may have. */
#define TABLE_SLOTS (RC_CONFIG_TRIGGERS_MAX + RC_CONFIG_WORKERS_MAX)

int rc_cursor_trigger_name(const char *ns, const char *name, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s", ns, name);
    return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

void rc_cursor_feed_name(int worker, char *buf, size_t cap)
{
    snprintf(buf, cap, FEED_PREFIX "%d", worker);
}

int rc_cursor_is_trigger(const rc_storage_cursor_t *c)
{
    return strchr(c->name, '/') != NULL;
}

void rc_cursor_load(const rc_storage_cursor_t *t, const rc_storage_cursor_t *feed, uint64_t *seq,
                    uint64_t *pos)
{
    /* Acquire: pairs with the release store of the link in rc_cursor_store; the cursor read
     * after it is at least as new as the state the link announced. */
    uint32_t link = atomic_load_explicit(&t->link, memory_order_acquire);
    *seq = atomic_load_explicit(&t->seq, memory_order_relaxed);
    *pos = atomic_load_explicit(&t->pos, memory_order_relaxed);
    if (link == 0 || feed == NULL)
        return;
    /* Acquire: pairs with the release store in rc_cursor_store_read. */
    uint64_t fseq = atomic_load_explicit(&feed->seq, memory_order_acquire);
    uint64_t fpos = atomic_load_explicit(&feed->pos, memory_order_relaxed);
    if (fseq > *seq) {
        *seq = fseq;
        *pos = fpos;
    }
}

void rc_cursor_settle_all(rc_storage_cursors_t *tab)
{
    for (rc_storage_cursor_t *c = rc_storage_cursor_next(tab, NULL); c != NULL;
         c = rc_storage_cursor_next(tab, c)) {
        uint32_t link = atomic_load_explicit(&c->link, memory_order_acquire);
        if (!rc_cursor_is_trigger(c) || link == 0)
            continue;
        /* A link to anything but a feed (a table damaged by hand) counts as no link: the
         * trigger's own cursor is older, so it can only send more, never skip. */
        rc_storage_cursor_t *feed = rc_storage_cursor_at(tab, link - 1);
        if (feed != NULL && rc_cursor_is_trigger(feed))
            feed = NULL;
        uint64_t seq, pos;
        rc_cursor_load(c, feed, &seq, &pos);
        rc_cursor_store(c, seq, pos, 0);
    }
}

int rc_cursor_tables_open(const rc_worker_broker_t *brokers, size_t n, rc_storage_cursors_t ***tabs,
                          int *adopted)
{
    rc_storage_cursors_t **t = calloc(n ? n : 1, sizeof(*t));
    *tabs = t;
    if (t == NULL)
        return -ENOMEM;
    for (size_t b = 0; b < n; b++) {
        char err[512];
        int rc = rc_storage_cursors_open(brokers[b].store, TABLE_SLOTS, &t[b], &adopted[b], err,
                                         sizeof(err));
        if (rc != 0) {
            rc_log_error("supervisor", "broker %s/%s: %s", brokers[b].ns, brokers[b].name, err);
            return rc;
        }
        if (adopted[b])
            rc_cursor_settle_all(t[b]);
    }
    return 0;
}

void rc_cursor_tables_close(rc_storage_cursors_t **tabs, size_t n)
{
    for (size_t b = 0; tabs != NULL && b < n; b++)
        rc_storage_cursors_close(tabs[b]);
    free(tabs);
}

/* Where a new trigger with ringcast.dev/start-from oldest or a time starts: the first event
 * (by sequence number) that arrived at or after the time, as Kafka's offsetsForTimes does, and
 * every event after it. Logged, since it decides what a subscriber gets. */
static void start_at_time(rc_storage_cursor_t *c, rc_storage_t *store, const rc_config_trigger_t *t,
                          int64_t *need)
{
    int oldest = t->start_from == RC_START_FROM_OLDEST;
    char when[RC_CE_TIME_BUF] = "oldest", got[RC_CE_TIME_BUF] = "";
    if (!oldest)
        rc_ce_time_format(t->start_from_ns, when);
    rc_storage_seek_t sk;
    int rc = rc_storage_seek_time(store, oldest ? INT64_MIN : t->start_from_ns, &sk);
    if (rc != 0) {
        rc_storage_stats_t st;
        rc_storage_stats(store, &st);
        rc_cursor_store(c, st.head_seq, st.head, 0);
        rc_log_warn("supervisor",
                    "trigger %s/%s: cannot look for start-from %s in its broker's store (%s); "
                    "it starts at the latest event",
                    t->ns, t->name, when, rc_strerror(rc));
        return;
    }
    rc_cursor_store(c, sk.seq, sk.pos, 0);
    *need = (int64_t)sk.pos;
    if (sk.found)
        rc_ce_time_format(sk.arrival_ns, got);
    if (!sk.found)
        rc_log_info("supervisor",
                    "trigger %s/%s: new, start-from %s: no event held arrived then or later; "
                    "it starts at the next event (seq %llu)",
                    t->ns, t->name, when, (unsigned long long)sk.seq);
    else if (sk.before_oldest && !oldest && sk.oldest_seq > 0)
        rc_log_info("supervisor",
                    "trigger %s/%s: new, start-from %s is before the oldest event held (seq "
                    "%llu, arrived %s): it starts there; the events before it were overwritten",
                    t->ns, t->name, when, (unsigned long long)sk.seq, got);
    else
        rc_log_info("supervisor",
                    "trigger %s/%s: new, start-from %s: starts at event seq %llu (arrived %s; "
                    "%llu records scanned%s)",
                    t->ns, t->name, when, (unsigned long long)sk.seq, got,
                    (unsigned long long)sk.scanned, sk.indexed ? " from the time index" : "");
}

rc_storage_cursor_t *rc_cursor_take_trigger(rc_storage_cursors_t *tab, rc_storage_t *store,
                                            const rc_config_trigger_t *t, int from_oldest,
                                            int *fresh, int64_t *need)
{
    char name[RC_STORAGE_CURSOR_NAME_MAX + 1];
    *fresh = 0;
    *need = -1;
    if (rc_cursor_trigger_name(t->ns, t->name, name, sizeof(name)) != 0)
        return NULL;
    rc_storage_cursor_t *c = rc_storage_cursor_take(tab, name, fresh);
    if (c == NULL || !*fresh)
        return c;
    /* No worker runs yet, so the cursor needs no link. */
    if (t->start_from == RC_START_FROM_OLDEST || t->start_from == RC_START_FROM_TIME) {
        start_at_time(c, store, t, need);
        return c;
    }
    rc_storage_stats_t st;
    rc_storage_stats(store, &st);
    if (t->start_from == RC_START_FROM_LATEST)
        from_oldest = 0;
    rc_cursor_store(c, from_oldest ? 0 : st.head_seq, from_oldest ? 0 : st.head, 0);
    return c;
}

rc_storage_cursor_t *rc_cursor_take_feed(rc_storage_cursors_t *tab, int worker, uint32_t *link)
{
    char name[24];
    rc_cursor_feed_name(worker, name, sizeof(name));
    rc_storage_cursor_t *c = rc_storage_cursor_take(tab, name, NULL);
    if (c != NULL)
        *link = 1 + rc_storage_cursor_index(tab, c);
    return c;
}

void rc_cursor_settle(const rc_worker_trigger_t *trig, size_t n, const rc_worker_feed_t *feeds)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t seq, pos;
        rc_cursor_load(trig[i].cursor, feeds[trig[i].feed].cursor, &seq, &pos);
        rc_cursor_store(trig[i].cursor, seq, pos, 0);
    }
}

void rc_cursor_drop_stale(rc_storage_cursors_t **tabs, const rc_worker_broker_t *brokers,
                          size_t nbrokers, const rc_worker_trigger_t *trig, size_t ntrig,
                          const rc_worker_feed_t *feeds, size_t nfeeds)
{
    uint8_t *live = malloc(TABLE_SLOTS);
    if (live == NULL)
        return; /* they stay until the next time; an unused slot only takes room */
    for (size_t b = 0; b < nbrokers; b++) {
        rc_storage_cursors_t *tab = tabs[b];
        memset(live, 0, TABLE_SLOTS);
        for (size_t i = 0; i < ntrig; i++) {
            if (trig[i].broker_idx == b && trig[i].cursor != NULL)
                live[rc_storage_cursor_index(tab, trig[i].cursor)] = 1;
        }
        for (size_t i = 0; i < nfeeds; i++) {
            if (feeds[i].broker_idx == b)
                live[rc_storage_cursor_index(tab, feeds[i].cursor)] = 1;
        }
        rc_storage_cursor_t *c = rc_storage_cursor_next(tab, NULL);
        while (c != NULL) {
            rc_storage_cursor_t *next = rc_storage_cursor_next(tab, c);
            if (!live[rc_storage_cursor_index(tab, c)]) {
                if (rc_cursor_is_trigger(c))
                    rc_log_info("supervisor", "broker %s/%s: saved cursor of trigger %s dropped",
                                brokers[b].ns, brokers[b].name, c->name);
                rc_storage_cursor_drop(tab, c);
            }
            c = next;
        }
    }
    free(live);
}
