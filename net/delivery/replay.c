/* A replay of a dead-lettered event, the worker's half (the admin's is net/admin_events.c): the
 * admin API leaves a request in the trigger's stats slot (worker_stats.h: replay_pos,
 * replay_seq, replay_req); the worker that owns the trigger takes it here, reads the event at
 * that position again through its own handle of the store with a lossy read (never holding
 * producers back; the event may have been overwritten since the admin looked), and queues it
 * for this trigger alone: the other triggers of the broker never see it again. docs/dashboard.md,
 * "Replay". */
#include <errno.h>
#include <stdlib.h>

#include "core/errors.h"
#include "core/log.h"
#include "core/metric.h"
#include "net/delivery/worker_internal.h"

/* The record read back; grown to the largest one replayed (a worker replays rarely). */
static void *replay_buf;
static size_t replay_cap;

/* Reads the event at (pos, seq) into replay_buf. Returns 0 and `*len`, or a negative code. */
static int read_back(rc__wtrig_t *t, uint64_t pos, uint64_t seq, size_t *len)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = rc_storage_read_at(t->prod, pos, seq, replay_buf, replay_cap, len);
        if (rc != -ENOBUFS)
            return rc;
        void *nb = NULL;
        if (posix_memalign(&nb, 8, *len) != 0)
            return -ENOMEM;
        free(replay_buf);
        replay_buf = nb;
        replay_cap = *len;
    }
    return -ENOBUFS;
}

int rc__replay_poll(rc__wtrig_t *t)
{
    rc_trigger_stats_t *st = t->st;
    uint64_t req = atomic_load_explicit(&st->replay_req, memory_order_acquire);
    if (req == atomic_load_explicit(&st->replay_done, memory_order_relaxed))
        return 0;
    uint64_t pos = atomic_load_explicit(&st->replay_pos, memory_order_relaxed);
    uint64_t seq = atomic_load_explicit(&st->replay_seq, memory_order_relaxed);
    size_t len = 0;
    int rc = t->prod != NULL ? read_back(t, pos, seq, &len) : -ENOTSUP;
    const char *why = NULL;
    if (rc == 0 && (rc = rc__replay_keep(t, replay_buf, len, pos, seq, &why)) == 0) {
        rc_metric_add(&st->replayed, 1);
        rc_log_info("worker", "trigger %s/%s: replaying the event at position %llu (seq %llu)",
                    t->wt->cfg->ns, t->wt->cfg->name, (unsigned long long)pos,
                    (unsigned long long)seq);
    } else {
        rc_log_warn("worker", "trigger %s/%s: cannot replay the event at position %llu: %s",
                    t->wt->cfg->ns, t->wt->cfg->name, (unsigned long long)pos,
                    rc == -ENOENT ? "the ring no longer holds it (overwritten)"
                    : why != NULL ? why
                                  : rc_strerror(rc));
    }
    atomic_store_explicit(&st->replay_result, rc, memory_order_relaxed);
    atomic_store_explicit(&st->replay_done, req, memory_order_release);
    return rc == 0;
}
