/* The delivery's saved cursors: one per trigger and one per feed, in the cursor table of the
 * broker's store (net/storage/storage.h), so they survive the worker, the broker process and a
 * restart alike (docs/delivery.md, "Cursors").
 *
 * A trigger's slot is named "<namespace>/<name>" (its identity on its broker; DNS labels hold
 * no '/'), a feed's "~feed<worker>". A trigger with something unfinished keeps in its slot the
 * oldest unfinished event (link 0). An idle trigger follows its feed instead (link = 1 + the
 * feed slot's number): its cursor is then the later of its own and the feed's read cursor, so
 * it costs nothing per event that does not match it. A feed's slot holds its read cursor:
 * every event below it has been routed to the feed's triggers by the worker reading the feed
 * now. */
#ifndef RC_NET_DELIVERY_CURSOR_H
#define RC_NET_DELIVERY_CURSOR_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "net/delivery/worker.h"
#include "net/storage/storage.h"

/** Writes the slot name of trigger `ns`/`name` into `buf`. Returns 0, or -ENAMETOOLONG. */
int rc_cursor_trigger_name(const char *ns, const char *name, char *buf, size_t cap);

/** Writes the slot name of worker `worker`'s feed into `buf` (at least 16 bytes). */
void rc_cursor_feed_name(int worker, char *buf, size_t cap);

/** Whether the slot is a trigger's (by its name). */
int rc_cursor_is_trigger(const rc_storage_cursor_t *c);

/** Stores a cursor: every event below `seq` (at `pos`) is finished; `link` 0 (it has
 *  unfinished events from `seq` on) or 1 + the slot of the feed it follows from there. Only the
 *  slot's owner (the worker of the trigger, or the supervisor while no worker runs). Relaxed
 *  stores and one release: cheap enough for every event a trigger finishes. */
static inline void rc_cursor_store(rc_storage_cursor_t *c, uint64_t seq, uint64_t pos,
                                   uint32_t link)
{
    atomic_store_explicit(&c->seq, seq, memory_order_relaxed);
    atomic_store_explicit(&c->pos, pos, memory_order_relaxed);
    /* Release: pairs with the acquire load in rc_cursor_load; who sees the link sees the
     * cursor stored with it. */
    atomic_store_explicit(&c->link, link, memory_order_release);
}

/** A feed's read cursor: every event below `seq` (at `pos`) was routed. The feed's worker
 *  only, after the event was queued on every trigger it matched. */
static inline void rc_cursor_store_read(rc_storage_cursor_t *feed, uint64_t seq, uint64_t pos)
{
    atomic_store_explicit(&feed->pos, pos, memory_order_relaxed);
    /* Release: pairs with the acquire load of the feed's seq in rc_cursor_load. */
    atomic_store_explicit(&feed->seq, seq, memory_order_release);
}

/** A trigger's cursor as its slot `t` and `feed`, the slot of the feed it follows (or NULL),
 *  say: every event below `*seq` (at `*pos`) is finished for it. Any process. */
void rc_cursor_load(const rc_storage_cursor_t *t, const rc_storage_cursor_t *feed, uint64_t *seq,
                    uint64_t *pos);

/** With no worker running: makes every trigger in `tab` that follows a feed hold its cursor
 *  itself (link 0), so the feeds' read cursors may start again. Used on a table a previous
 *  broker process left. */
void rc_cursor_settle_all(rc_storage_cursors_t *tab);

/* ---- the supervisor's side: slots are taken and dropped only while no worker runs ----------- */

/** Opens the cursor table of each of the `n` brokers' stores into a new array `*tabs` (freed by
 *  rc_cursor_tables_close, also after a failure). A table an earlier broker process left
 *  (adopted[b] = 1) is settled (rc_cursor_settle_all). Returns 0, or a negative code (logged
 *  with the store's message). Main thread, before forking. */
int rc_cursor_tables_open(const rc_worker_broker_t *brokers, size_t n, rc_storage_cursors_t ***tabs,
                          int *adopted);

/** Closes the `n` tables and frees the array. NULL is a no-op. */
void rc_cursor_tables_close(rc_storage_cursors_t **tabs, size_t n);

/** Trigger `t`'s slot in `tab`, the table of `store`: the one saved under its identity (it
 *  resumes there, whatever its ringcast.dev/start-from says), or a new one (`*fresh` = 1)
 *  whose cursor starts where t->start_from says: the store's latest event by default
 *  (`from_oldest`: at 0, before every event kept), the oldest event held, or the first event
 *  that arrived at or after a time (rc_storage_seek_time). `*need` gets the position its feed
 *  must start at or before for the trigger to see its first event, or -1. NULL when the table
 *  is full. */
rc_storage_cursor_t *rc_cursor_take_trigger(rc_storage_cursors_t *tab, rc_storage_t *store,
                                            const rc_config_trigger_t *t, int from_oldest,
                                            int *fresh, int64_t *need);

/** Worker `worker`'s feed slot in `tab` and, in `*link`, what a trigger that follows it stores
 *  as its link. NULL when the table is full. */
rc_storage_cursor_t *rc_cursor_take_feed(rc_storage_cursors_t *tab, int worker, uint32_t *link);

/** With no worker running: makes each of the `n` triggers hold the cursor it has through its
 *  feed (`feeds[trig[i].feed]`) itself, so the feeds may be replaced. */
void rc_cursor_settle(const rc_worker_trigger_t *trig, size_t n, const rc_worker_feed_t *feeds);

/** Drops every slot of the brokers' tables that none of the triggers and feeds uses (triggers
 *  removed or renamed, or taken for a table that was then rejected; feeds of workers gone),
 *  logging each trigger's. Every trigger must hold its own cursor (no link). */
void rc_cursor_drop_stale(rc_storage_cursors_t **tabs, const rc_worker_broker_t *brokers,
                          size_t nbrokers, const rc_worker_trigger_t *trig, size_t ntrig,
                          const rc_worker_feed_t *feeds, size_t nfeeds);

#endif
