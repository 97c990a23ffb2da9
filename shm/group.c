/* Consumer groups: a named shared cursor in the ring's group table, members that claim batches
 * from it, acknowledgements, hand-over of a dead or departed member's unacknowledged records,
 * and the lossless reader slot through which a group gates producers.
 *
 * How it works (docs/groups.md has the user's view):
 *  - Each member owns a cell holding its range [lo, hi): the records it claimed and has not
 *    acknowledged. lo moves as it acknowledges; lo == hi means idle.
 *  - Sources of work are the group's cursor `next` and the cells of dead or departed members
 *    (ORPHAN, lo tagged with bit 0). A member claims from a source at x by first announcing
 *    [x, MAX) in its own cell, re-checking the source still says x, walking up to `batch`
 *    records to y, announcing [x, y), and only then moving the source x -> y with one CAS.
 *  - The group's gating position (its reader slot's position, which producers honour like any
 *    lossless reader's) is min(next, lo of every non-idle cell), raised with a CAS-max. Because
 *    every claim is announced before the source moves, a scan that reads the source after the
 *    move sees the announcement (the scan reads `next` first, then the cells twice when an
 *    orphan cell exists, since an orphan source is itself a cell).
 *  - A member whose process is gone (heartbeat stale, then pid + start time) is turned into an
 *    ORPHAN cell by whoever notices; its [lo, hi) is then claimed like any source.
 *  - Lag limit (rc_group_enforce_lag): a skipper moves the sources (the cursor, orphan cells)
 *    up to head - limit with the same CASes claimers use, counts what it passes, and raises
 *    the group's `floor` past the batches members still hold below that point. A range that
 *    starts below the floor is skipped: it never gates again, claimers drop what is left of
 *    it, and its owner finds out before it returns one more record from it. */
#include "core/clock.h"
#include "shm/group_internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shm/proc.h"

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ---- gating --------------------------------------------------------------------------------- */

/* Lowest position some cell still needs, folded into `min`; ranges starting below `floor` were
 * skipped (see the file comment). Returns whether an ORPHAN cell was seen (then the caller
 * scans a second time). */
static int scan_cells(group_cell_t *cells, uint64_t floor, uint64_t *min)
{
    int orphan = 0;
    for (uint32_t i = 0; i < RC_GROUP_MAX_MEMBERS; i++) {
        group_cell_t *c = &cells[i];
        /* seq_cst: pairs with the claimers' seq_cst announcement stores and source CASes. */
        uint32_t st = atomic_load_explicit(&c->state, memory_order_seq_cst);
        if (st != C_ACTIVE && st != C_ORPHAN)
            continue;
        /* lo before hi: an announcement stores hi = MAX before lo, so a new lo comes with an
         * open range. Acquire on lo pairs with the owner's release when acknowledging: its
         * reads of those records happen before producers reuse the space. */
        uint64_t lo = atomic_load_explicit(&c->lo, memory_order_seq_cst) & ~ORPHAN_TAG;
        uint64_t hi = atomic_load_explicit(&c->hi, memory_order_seq_cst);
        if (st == C_ORPHAN)
            orphan = 1;
        if (lo < hi && lo >= floor && lo < *min)
            *min = lo;
    }
    return orphan;
}

/* Raises reader slot `s` to `pos` (CAS-max: gates only move forward). */
static void raise_slot(rc__reader_slot_t *s, uint64_t pos)
{
    uint64_t cur = atomic_load_explicit(&s->position, memory_order_relaxed);
    /* Release: pairs with producers' acquire in rc__min_lossless (as a reader's publish). */
    while (pos > cur && !atomic_compare_exchange_weak_explicit(
                            &s->position, &cur, pos, memory_order_release, memory_order_relaxed))
        ;
}

/* Recomputes the group's gating position and raises the slot's position to it. */
void rc__group_publish_gate(rc_group_member_t *m)
{
    if (!rc__group_slot_ours(m->slot, m->slot_name))
        return; /* reclaimed, maybe another reader's now: never move it */
    /* The floor first: a skip that raises it after this load only makes the scan below count
     * a skipped range, which holds the gate lower than it could be, never higher. */
    uint64_t floor = atomic_load_explicit(&m->g->floor, memory_order_seq_cst);
    uint64_t min = atomic_load_explicit(&m->g->next, memory_order_seq_cst);
    if (scan_cells(m->cells, floor, &min))
        scan_cells(m->cells, floor, &min);
    raise_slot(m->slot, min);
}

/* ---- liveness ------------------------------------------------------------------------------- */

void rc_group_heartbeat(rc_group_member_t *m)
{
    uint64_t now = rc_now_ns();
    m->last_hb = now;
    atomic_store_explicit(&m->me->heartbeat, now, memory_order_relaxed);
    if (!rc__group_slot_ours(m->slot, m->slot_name))
        return;
    atomic_store_explicit(&m->slot->heartbeat, now, memory_order_relaxed);
    if (now - m->last_owner < DEAD_SCAN_NS)
        return;
    m->last_owner = now;
    /* The slot carries one owner identity for rc_ring_reclaim; when that member is gone, a
     * live member takes it over, so the slot is reclaimed only when every member is dead.
     * The heartbeat above is stored first, so a reclaimer never sees both a stale heartbeat
     * and a half-written identity. */
    uint32_t pid = atomic_load_explicit(&m->slot->pid, memory_order_relaxed);
    if (pid == m->pid)
        return;
    if (rc_proc_alive((pid_t)pid, atomic_load_explicit(&m->slot->start_time, memory_order_relaxed)))
        return;
    atomic_store_explicit(&m->slot->start_time, m->start_time, memory_order_seq_cst);
    atomic_store_explicit(&m->slot->pid, m->pid, memory_order_seq_cst);
}

/* Turns a dead member's cell into an ORPHAN source. The winner of the state CAS alone writes
 * the tag; claimers wait for it. */
static void orphan_dead(rc_group_member_t *m, group_cell_t *c)
{
    uint32_t st = C_ACTIVE;
    if (!atomic_compare_exchange_strong_explicit(&c->state, &st, C_ORPHAN, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return;
    uint64_t lo = atomic_load_explicit(&c->lo, memory_order_seq_cst);
    uint64_t hi = atomic_load_explicit(&c->hi, memory_order_seq_cst);
    /* Died while announcing, before it knew the end: it never moved the source. */
    if (hi == POS_MAX)
        atomic_store_explicit(&c->hi, lo, memory_order_seq_cst);
    atomic_store_explicit(&c->dead, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->g->orphans, 1, memory_order_seq_cst);
    atomic_fetch_sub_explicit(&m->g->members, 1, memory_order_acq_rel);
    /* seq_cst: after `dead`, so a claimer that sees the tag counts redeliveries right. */
    atomic_store_explicit(&c->lo, lo | ORPHAN_TAG, memory_order_seq_cst);
}

/* Members of other processes whose heartbeat is stale and whose process is gone. Members in
 * this process are never judged: a thread's exit is not visible here. Returns how many. */
int rc__group_scan_dead(rc_group_member_t *m)
{
    uint64_t now = rc_now_ns();
    uint64_t timeout = m->ring->hdr->heartbeat_timeout_ns;
    int n = 0;
    m->last_scan = now;
    for (uint32_t i = 0; i < RC_GROUP_MAX_MEMBERS; i++) {
        group_cell_t *c = &m->cells[i];
        if (c == m->me || atomic_load_explicit(&c->state, memory_order_acquire) != C_ACTIVE)
            continue;
        if (atomic_load_explicit(&c->heartbeat, memory_order_relaxed) + timeout > now)
            continue;
        uint32_t pid = atomic_load_explicit(&c->pid, memory_order_relaxed);
        if (pid == m->pid ||
            rc_proc_alive((pid_t)pid, atomic_load_explicit(&c->start_time, memory_order_relaxed)))
            continue;
        orphan_dead(m, c);
        n++;
    }
    return n;
}

/* ---- waking ------------------------------------------------------------------------------- */

/* Wakes one member sleeping on the group's futex, if any. */
static void wake_one(group_hdr_t *g)
{
    /* seq_cst: pairs with the sleeper's seq_cst increment before its re-check. */
    if (atomic_load_explicit(&g->gsleepers, memory_order_seq_cst) == 0)
        return;
    atomic_fetch_add_explicit(&g->gwake, 1, memory_order_release);
    syscall(SYS_futex, &g->gwake, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Takes the ring-sleeper role: free, or left stale by a member that died asleep. */
static int take_role(group_hdr_t *g, uint64_t now, uint64_t *mine)
{
    uint64_t cur = atomic_load_explicit(&g->ring_role, memory_order_relaxed);
    if (cur != 0 && now - cur < ROLE_STALE_NS)
        return 0;
    if (!atomic_compare_exchange_strong_explicit(&g->ring_role, &cur, now, memory_order_acq_rel,
                                                 memory_order_relaxed))
        return 0;
    *mine = now;
    return 1;
}

/* Gives the role up and wakes a group sleeper to take it over. */
static void drop_role(group_hdr_t *g, uint64_t mine)
{
    atomic_compare_exchange_strong_explicit(&g->ring_role, &mine, 0, memory_order_acq_rel,
                                            memory_order_relaxed);
    wake_one(g);
}

/* ---- claiming ------------------------------------------------------------------------------- */

/* Walks committed records from `x`, up to `batch` of them (padding does not count) and not
 * past `limit`; returns the position after the last one and their number in *n. */
static uint64_t walk(const rc_ring_t *ring, uint64_t x, uint64_t limit, uint32_t batch, uint32_t *n)
{
    uint64_t p = x;
    *n = 0;
    while (*n < batch && p < limit) {
        uint64_t q = rc__skip_gap(ring, p);
        if (q >= limit)
            break;
        rc__rec_hdr_t *rec = rc__rec(ring, q);
        /* Acquire: pairs with the producer's release store of the stamp. */
        if (atomic_load_explicit(&rec->stamp, memory_order_acquire) != (q ^ ring->key))
            break;
        /* Acquire: pairs with the commit CAS. */
        uint64_t w = atomic_load_explicit(&rec->word, memory_order_acquire);
        if (!(w & RC__W_COMMITTED))
            break;
        uint32_t len = RC__W_LEN(w);
        if (len < RC__REC_HDR || len > ring->max_claim)
            break;
        if (RC__W_TYPE(w) != RC__TYPE_PAD)
            (*n)++;
        p = q + rc__align8(len);
    }
    return p;
}

static void announce(rc_group_member_t *m, uint64_t x)
{
    /* hi first: a scan that sees the new lo sees an open range (see scan_cells). */
    atomic_store_explicit(&m->me->hi, POS_MAX, memory_order_seq_cst);
    atomic_store_explicit(&m->me->lo, x, memory_order_seq_cst);
}

/* The member now holds [x, y), `n` records as its claim walk counted them. */
static void settle(rc_group_member_t *m, uint64_t x, uint64_t y, uint64_t n)
{
    m->cur = m->acked = m->ret_end = x;
    m->hi = y;
    m->left = n;
}

static void go_idle(rc_group_member_t *m, uint64_t x)
{
    atomic_store_explicit(&m->me->lo, x, memory_order_seq_cst);
    atomic_store_explicit(&m->me->hi, x, memory_order_seq_cst);
    settle(m, x, x, 0);
}

/* Claims part of an ORPHAN cell's range. Returns 1 claimed, 0 nothing there. */
static int claim_orphan(rc_group_member_t *m, group_cell_t *d)
{
    for (;;) {
        uint64_t dl = atomic_load_explicit(&d->lo, memory_order_seq_cst);
        if (!(dl & ORPHAN_TAG) || atomic_load_explicit(&d->state, memory_order_seq_cst) != C_ORPHAN)
            return 0;
        uint64_t x = dl & ~ORPHAN_TAG;
        uint64_t dh = atomic_load_explicit(&d->hi, memory_order_seq_cst);
        if (x < dh && x < atomic_load_explicit(&m->g->floor, memory_order_seq_cst)) {
            /* Left by a member the lag limit had skipped (its records were counted then and
             * may be overwritten): drop it, never deliver it. */
            atomic_compare_exchange_strong_explicit(&d->lo, &dl, dh | ORPHAN_TAG,
                                                    memory_order_seq_cst, memory_order_seq_cst);
            continue;
        }
        if (x >= dh) {
            uint32_t st = C_ORPHAN;
            if (atomic_compare_exchange_strong_explicit(&d->state, &st, C_FREE,
                                                        memory_order_acq_rel, memory_order_relaxed))
                atomic_fetch_sub_explicit(&m->g->orphans, 1, memory_order_relaxed);
            return 0;
        }
        announce(m, x);
        /* seq_cst re-check after the announcement: from here on no gate passes x. */
        if (atomic_load_explicit(&d->lo, memory_order_seq_cst) != dl)
            continue;
        uint32_t n;
        uint64_t y = walk(m->ring, x, dh, m->batch, &n);
        if (y >= dh || n == 0)
            y = dh; /* take the rest: trailing padding, or a range we cannot walk */
        atomic_store_explicit(&m->me->hi, y, memory_order_seq_cst);
        if (!atomic_compare_exchange_strong_explicit(&d->lo, &dl, y | ORPHAN_TAG,
                                                     memory_order_seq_cst, memory_order_seq_cst))
            continue;
        if (atomic_load_explicit(&d->dead, memory_order_relaxed))
            atomic_fetch_add_explicit(&m->g->redelivered, n, memory_order_relaxed);
        else
            atomic_fetch_add_explicit(&m->g->handed_over, n, memory_order_relaxed);
        settle(m, x, y, n);
        if (y < dh)
            wake_one(m->g); /* more of it left: let another member help */
        return 1;
    }
}

/* Called when nothing is committed at `x` though it may be claimed: after the pad timeout,
 * pads over a claim whose producer died (as a waiting reader does). */
static void stalled(rc_group_member_t *m, uint64_t x, int force)
{
    if (m->stall_pos != x) {
        m->stall_pos = x;
        m->stall_polls = 0;
        m->stall_since = 0;
        if (!force)
            return;
    }
    if (!force && (++m->stall_polls % STALL_CHECK_EVERY) != 0)
        return;
    rc_ring_t *ring = m->ring;
    if (atomic_load_explicit(&ring->hdr->head.pos, memory_order_acquire) <= x)
        return;
    uint64_t now = rc_now_ns();
    if (m->stall_since == 0) {
        m->stall_since = now;
        return;
    }
    if (now - m->stall_since >= ring->hdr->pad_timeout_ns)
        rc__try_sweep(ring, x, now - m->stall_since);
}

/* Claims a batch from the group's cursor. Returns 1 claimed, 0 nothing committed there. */
static int claim_next(rc_group_member_t *m, int force_stall)
{
    group_hdr_t *g = m->g;
    int announced = 0;
    for (;;) {
        uint64_t x = atomic_load_explicit(&g->next, memory_order_seq_cst);
        /* Peek first (loads only): an empty poll writes nothing, so idle and spinning members
         * do not bounce their cells' lines. What the peek reads is only a hint; the walk
         * below, after the announcement, is what counts. */
        uint32_t n;
        uint64_t y = walk(m->ring, x, POS_MAX, 1, &n);
        if (n == 0) {
            if (announced)
                go_idle(m, x); /* withdraw an announcement a lost race left behind */
            stalled(m, rc__skip_gap(m->ring, y), force_stall);
            return 0;
        }
        announce(m, x);
        announced = 1;
        if (atomic_load_explicit(&g->next, memory_order_seq_cst) != x)
            continue;
        y = walk(m->ring, x, POS_MAX, m->batch, &n);
        if (n == 0) {
            go_idle(m, x);
            stalled(m, rc__skip_gap(m->ring, y), force_stall);
            return 0;
        }
        atomic_store_explicit(&m->me->hi, y, memory_order_seq_cst);
        /* seq_cst: ordered after the announcement above, paired with publish_gate's seq_cst
         * load of `next` before its cell scan. */
        if (atomic_compare_exchange_strong_explicit(&g->next, &x, y, memory_order_seq_cst,
                                                    memory_order_seq_cst)) {
            settle(m, x, y, n);
            /* Records committed beyond our batch: wake one sleeping member to take them. */
            uint32_t more;
            walk(m->ring, y, POS_MAX, 1, &more);
            if (more)
                wake_one(g);
            return 1;
        }
    }
}

static int claim(rc_group_member_t *m, int force_stall)
{
    if (!rc__group_slot_ours(m->slot, m->slot_name))
        return RC_EGROUP_GONE;
    uint64_t now = rc_now_ns();
    if (now - m->last_hb >= HEARTBEAT_NS)
        rc_group_heartbeat(m);
    if (now - m->last_scan >= DEAD_SCAN_NS)
        rc__group_scan_dead(m);
    if (atomic_load_explicit(&m->g->orphans, memory_order_seq_cst) != 0) {
        for (uint32_t i = 0; i < RC_GROUP_MAX_MEMBERS; i++) {
            group_cell_t *d = &m->cells[i];
            if (d != m->me && atomic_load_explicit(&d->state, memory_order_seq_cst) == C_ORPHAN &&
                claim_orphan(m, d))
                return 1;
        }
    }
    if (claim_next(m, force_stall))
        return 1;
    /* Nothing claimed: withdraw an announcement a lost race left in our cell (claim_orphan
     * gives up without one), and publish, since a scan may have counted it meanwhile. */
    if (atomic_load_explicit(&m->me->lo, memory_order_relaxed) !=
        atomic_load_explicit(&m->me->hi, memory_order_relaxed)) {
        go_idle(m, m->hi);
        rc__group_publish_gate(m);
    }
    return 0;
}

/* ---- consuming ------------------------------------------------------------------------------ */

void rc__group_ack_to(rc_group_member_t *m, uint64_t p)
{
    m->acked = p;
    /* Release: pairs with publish_gate's load; our reads of the records before p happen
     * before producers may reuse their space. */
    atomic_store_explicit(&m->me->lo, p, memory_order_release);
}

/* The lag limit skipped the rest of our batch (the skipper counted it in `lagged`): none of
 * it is returned, all of it counts as acknowledged, and the next view reports it as lost. */
static void batch_skipped(rc_group_member_t *m)
{
    m->lost += m->left;
    m->lost_unreported += m->left;
    m->left = 0;
    m->skip_lo = m->acked;
    m->skip_hi = m->hi;
    m->cur = m->ret_end = m->hi;
    rc__group_ack_to(m, m->hi);
}

static int poll_once(rc_group_member_t *m, rc_ring_view_t *v, int force_stall)
{
    rc_ring_t *ring = m->ring;
    if (!m->manual && m->acked != m->ret_end)
        rc__group_ack_to(m, m->ret_end);
    for (;;) {
        while (m->cur < m->hi) {
            uint64_t p = rc__skip_gap(ring, m->cur);
            if (p >= m->hi) {
                m->cur = m->hi;
                break;
            }
            /* Acquire: pairs with the skipper's CAS of the floor, which comes before it lets
             * producers reuse the space. A range below the floor was skipped whole. */
            if (atomic_load_explicit(&m->g->floor, memory_order_acquire) > p) {
                batch_skipped(m);
                break;
            }
            rc__rec_hdr_t *rec = rc__rec(ring, p);
            /* Acquire: pairs with the commit CAS (the claim walk saw it committed, possibly in
             * another process: this load makes the payload visible to this thread). */
            uint64_t w = atomic_load_explicit(&rec->word, memory_order_acquire);
            uint32_t len = RC__W_LEN(w);
            if (!(w & RC__W_COMMITTED) || len < RC__REC_HDR || len > ring->max_claim)
                return RC_ERING_CORRUPT;
            m->cur = p + rc__align8(len);
            if (RC__W_TYPE(w) == RC__TYPE_PAD)
                continue;
            v->pos = p;
            v->next = m->cur;
            v->seq = atomic_load_explicit(&rec->seq, memory_order_relaxed);
            v->lost = m->lost_unreported;
            v->data = (const uint8_t *)rec + RC__REC_HDR;
            v->len = len - RC__REC_HDR;
            v->type = RC__W_TYPE(w);
            v->flags = RC__W_FLAGS(w);
            m->lost_unreported = 0;
            m->left -= m->left > 0;
            m->ret_end = m->cur;
            m->delivered++;
            return 0;
        }
        /* Range delivered. What follows the last returned record is padding: acknowledged
         * along with it. */
        if (m->acked < m->hi) {
            if (m->acked < m->ret_end)
                return RC_EGROUP_UNACKED;
            rc__group_ack_to(m, m->hi);
        }
        m->ret_end = m->hi;
        if (m->pub_acked != m->acked) {
            m->pub_acked = m->acked;
            rc__group_publish_gate(m);
        }
        int rc = claim(m, force_stall);
        if (rc <= 0)
            return rc == 0 ? RC_ERING_EMPTY : rc;
    }
}

int rc_group_poll(rc_group_member_t *m, rc_ring_view_t *v)
{
    return poll_once(m, v, 0);
}

int rc_group_wait(rc_group_member_t *m, rc_ring_view_t *v, int64_t timeout_ns)
{
    rc__ring_hdr_t *h = m->ring->hdr;
    int rc;
    for (uint32_t i = 0; i < m->spin; i++) {
        rc = poll_once(m, v, 0);
        if (rc != RC_ERING_EMPTY)
            return rc;
        cpu_relax();
    }
    if (timeout_ns == 0)
        return poll_once(m, v, 0);
    group_hdr_t *g = m->g;
    uint64_t start = rc_now_ns();
    for (;;) {
        rc_group_heartbeat(m);
        int64_t sleep_ns = MAX_SLEEP_NS;
        if (timeout_ns > 0) {
            int64_t left = timeout_ns - (int64_t)(rc_now_ns() - start);
            if (left <= 0)
                return RC_ERING_EMPTY;
            if (left < sleep_ns)
                sleep_ns = left;
        }
        /* One member sleeps on the ring's futex, so a commit wakes one thread, not all of
         * them; the others sleep on the group's futex until work is left over or the role
         * is free (and at most MAX_SLEEP_NS). */
        uint64_t role = 0;
        int frc;
        if (take_role(g, rc_now_ns(), &role)) {
            /* Dekker with producers, as in rc_reader_wait: flag (seq_cst) and fence, read
             * the futex word, re-check, sleep. */
            atomic_store_explicit(&h->sleepers, 1, memory_order_seq_cst);
            atomic_thread_fence(memory_order_seq_cst);
            uint32_t seen = atomic_load_explicit(&h->notify, memory_order_acquire);
            rc = poll_once(m, v, 0);
            if (rc != RC_ERING_EMPTY) {
                drop_role(g, role);
                return rc;
            }
            frc = rc__futex_wait(&h->notify, seen, sleep_ns);
            drop_role(g, role);
        } else {
            /* seq_cst: pairs with wake_one's load; a waker that missed us made its work
             * visible before our re-check. */
            atomic_fetch_add_explicit(&g->gsleepers, 1, memory_order_seq_cst);
            uint32_t seen = atomic_load_explicit(&g->gwake, memory_order_acquire);
            rc = poll_once(m, v, 0);
            if (rc == RC_ERING_EMPTY &&
                atomic_load_explicit(&g->ring_role, memory_order_relaxed) != 0)
                frc = rc__futex_wait(&g->gwake, seen, sleep_ns);
            else
                frc = 0; /* the role went free meanwhile: loop and take it */
            atomic_fetch_sub_explicit(&g->gsleepers, 1, memory_order_relaxed);
            if (rc != RC_ERING_EMPTY)
                return rc;
        }
        rc = poll_once(m, v, 1);
        if (rc != RC_ERING_EMPTY)
            return rc;
        if (frc == -EINTR)
            return -EINTR;
    }
}

int rc_group_ack(rc_group_member_t *m, uint64_t pos)
{
    if (pos < m->acked && pos > m->skip_lo && pos <= m->skip_hi)
        return 0; /* a view of a skipped batch: acknowledged with it */
    if (pos < m->acked || pos > m->ret_end || (pos & 7) != 0)
        return -EINVAL;
    if (pos != m->acked)
        rc__group_ack_to(m, pos);
    return 0;
}

/* ---- lag limit ------------------------------------------------------------------------------ */

/* The cursor part of a skip: moves `next` from below `t` to the first record boundary at or
 * after it (or as far as records are committed), with the CAS claimers use. Returns the
 * records passed. */
static uint64_t skip_cursor(const rc_ring_t *ring, group_hdr_t *g, uint64_t t)
{
    for (;;) {
        uint64_t x = atomic_load_explicit(&g->next, memory_order_seq_cst);
        if (x >= t)
            return 0;
        uint32_t n;
        uint64_t y = walk(ring, x, t, UINT32_MAX, &n);
        if (y == x)
            return 0; /* nothing committed at x yet: a claim in progress, swept if it died */
        /* seq_cst: as a claim; a member that announced x fails its own CAS and claims at y. */
        if (atomic_compare_exchange_strong_explicit(&g->next, &x, y, memory_order_seq_cst,
                                                    memory_order_seq_cst))
            return n;
    }
}

/* The orphan part: moves orphan cell `c` (lo tagged, read as `lo_raw`) from below `t` up to
 * the first record at or after it within [lo, hi), like a claimer that drops what it takes.
 * Returns the records passed in *n and the cell's new lo, or UINT64_MAX when a claimer moved
 * it first (look again). */
static uint64_t skip_orphan(const rc_ring_t *ring, group_cell_t *c, uint64_t lo_raw, uint64_t hi,
                            uint64_t t, uint64_t *n)
{
    uint64_t lo = lo_raw & ~ORPHAN_TAG;
    uint32_t k;
    uint64_t y = walk(ring, lo, t < hi ? t : hi, UINT32_MAX, &k);
    if (y > hi)
        y = hi;
    *n = 0;
    if (y == lo)
        return lo;
    if (!atomic_compare_exchange_strong_explicit(&c->lo, &lo_raw, y | ORPHAN_TAG,
                                                 memory_order_seq_cst, memory_order_seq_cst))
        return UINT64_MAX;
    *n = k;
    return y;
}

/* Where the group may be moved to once the sources below `t` are: the lowest position still
 * needed by the cursor or a range starting at or after `t` (orphan ranges below it are moved
 * first; member ranges below it are skipped whole, and by the disjointness of claimed ranges
 * they end at or before that position). Adds the orphan records passed to *n. Returns
 * UINT64_MAX when it must look again (a claimer moved an orphan first). */
static uint64_t skip_target(const rc_ring_t *ring, group_hdr_t *g, uint64_t floor, uint64_t t,
                            uint64_t *n)
{
    group_cell_t *cells = rc__group_cells(g);
    uint64_t f = atomic_load_explicit(&g->next, memory_order_seq_cst);
    for (uint32_t i = 0; i < RC_GROUP_MAX_MEMBERS; i++) {
        group_cell_t *c = &cells[i];
        uint32_t st = atomic_load_explicit(&c->state, memory_order_seq_cst);
        if (st != C_ACTIVE && st != C_ORPHAN)
            continue;
        uint64_t lo_raw = atomic_load_explicit(&c->lo, memory_order_seq_cst);
        uint64_t lo = lo_raw & ~ORPHAN_TAG;
        uint64_t hi = atomic_load_explicit(&c->hi, memory_order_seq_cst);
        if (lo >= hi || lo < floor)
            continue; /* idle, or skipped before */
        if (lo < t && st == C_ORPHAN && (lo_raw & ORPHAN_TAG)) {
            uint64_t k;
            lo = skip_orphan(ring, c, lo_raw, hi, t, &k);
            if (lo == UINT64_MAX)
                return UINT64_MAX;
            *n += k;
            if (lo >= hi)
                continue;
        }
        /* Below t: a member's batch, or one whose owner is being found dead (not tagged
         * yet): skipped whole by the floor. */
        if (lo >= t || (st == C_ORPHAN && (lo_raw & ORPHAN_TAG))) {
            if (lo < f)
                f = lo;
        }
    }
    return f;
}

/* Records of the ranges that start in [floor, f): members' batches (or what they left when
 * they died or left meanwhile), skipped by raising the floor to f. A range still being
 * announced (hi = MAX) comes from a source that has moved on: its claim fails and it is not
 * counted. */
static uint64_t held_below(const rc_ring_t *ring, group_hdr_t *g, uint64_t floor, uint64_t f)
{
    group_cell_t *cells = rc__group_cells(g);
    uint64_t n = 0;
    for (uint32_t i = 0; i < RC_GROUP_MAX_MEMBERS; i++) {
        group_cell_t *c = &cells[i];
        uint32_t st = atomic_load_explicit(&c->state, memory_order_seq_cst);
        if (st != C_ACTIVE && st != C_ORPHAN)
            continue;
        uint64_t lo = atomic_load_explicit(&c->lo, memory_order_seq_cst) & ~ORPHAN_TAG;
        uint64_t hi = atomic_load_explicit(&c->hi, memory_order_seq_cst);
        if (lo >= hi || lo < floor || lo >= f || hi == POS_MAX)
            continue;
        uint32_t k;
        walk(ring, lo, hi, UINT32_MAX, &k);
        n += k;
    }
    return n;
}

/* One group past its limit (`t` = head - limit): cursor, orphans, then the floor past the
 * member ranges below the new position, then the reader slot, in that order, so that no
 * record is passed before it was counted and the space is released last. Returns the records
 * skipped. */
static uint64_t skip_group(rc_ring_t *ring, group_hdr_t *g, rc__reader_slot_t *slot, uint64_t t)
{
    uint64_t n = skip_cursor(ring, g, t);
    uint64_t floor = atomic_load_explicit(&g->floor, memory_order_seq_cst);
    uint64_t f = UINT64_MAX;
    for (int round = 0; round < 8 && f == UINT64_MAX; round++)
        f = skip_target(ring, g, floor, t, &n);
    /* The floor goes to f (another skipper may have raised it further meanwhile: then what
     * lies below f is below the floor already, and that skipper counted it). seq_cst, before
     * the slot moves: a member that acquires the new floor stops reading its range before
     * producers may overwrite it. */
    while (f != UINT64_MAX && f > floor) {
        uint64_t held = held_below(ring, g, floor, f);
        if (atomic_compare_exchange_strong_explicit(&g->floor, &floor, f, memory_order_seq_cst,
                                                    memory_order_seq_cst)) {
            n += held;
            break;
        }
    }
    if (n > 0)
        atomic_fetch_add_explicit(&g->lagged, n, memory_order_relaxed);
    /* Everything below f is skipped, acknowledged, or below the floor now. */
    if (f != UINT64_MAX)
        raise_slot(slot, f);
    return n;
}

/* The group's name from the header's words, and its reader slot's name as rc_group_join made
 * it ("g:" and as much of the name as a slot name holds). */
static void name_of(group_hdr_t *g, char name[RC_GROUP_NAME_MAX + 1], char slot_name[24])
{
    for (int i = 0; i < 4; i++) {
        uint64_t w = atomic_load_explicit(&g->name[i], memory_order_relaxed);
        memcpy(name + 8 * i, &w, 8);
    }
    name[RC_GROUP_NAME_MAX] = '\0';
    memset(slot_name, 0, 24);
    snprintf(slot_name, 24, "g:%.21s", name);
}

int rc_group_enforce_lag(rc_ring_t *ring, uint64_t default_limit, uint64_t *skipped)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < rc__group_count(ring); i++) {
        group_hdr_t *g = rc__group_at(ring, i);
        if (atomic_load_explicit(&g->state, memory_order_seq_cst) != G_ACTIVE)
            continue;
        uint64_t limit = atomic_load_explicit(&g->lag_limit, memory_order_relaxed);
        if (limit == 0)
            limit = default_limit;
        if (limit == 0 || limit == RC_GROUP_LAG_BLOCK)
            continue;
        uint32_t si = atomic_load_explicit(&g->slot, memory_order_acquire);
        if (si >= ring->hdr->slot_count)
            continue;
        rc__reader_slot_t *slot = rc__slot(ring, si);
        char name[RC_GROUP_NAME_MAX + 1], sname[24];
        name_of(g, name, sname);
        if (!rc__group_slot_ours(slot, sname))
            continue; /* reclaimed: the group is being dissolved */
        uint64_t head = atomic_load_explicit(&ring->hdr->head.pos, memory_order_acquire);
        uint64_t gate = atomic_load_explicit(&slot->position, memory_order_acquire);
        if (head <= gate || head - gate <= limit)
            continue;
        total += skip_group(ring, g, slot, head - limit);
    }
    if (skipped != NULL)
        *skipped = total;
    return 0;
}

int rc_group_list(rc_ring_t *ring, rc_group_info_t *out, uint32_t max)
{
    int n = 0;
    for (uint32_t i = 0; i < rc__group_count(ring); i++) {
        group_hdr_t *g = rc__group_at(ring, i);
        if (atomic_load_explicit(&g->state, memory_order_acquire) != G_ACTIVE)
            continue;
        if ((uint32_t)n < max) {
            rc_group_info_t *o = &out[n];
            char sname[24];
            memset(o, 0, sizeof(*o));
            name_of(g, o->name, sname);
            o->members = atomic_load_explicit(&g->members, memory_order_relaxed);
            uint32_t si = atomic_load_explicit(&g->slot, memory_order_acquire);
            if (si < ring->hdr->slot_count)
                o->position =
                    atomic_load_explicit(&rc__slot(ring, si)->position, memory_order_relaxed);
            o->next = atomic_load_explicit(&g->next, memory_order_relaxed);
            o->lag_limit = atomic_load_explicit(&g->lag_limit, memory_order_relaxed);
            o->lagged = atomic_load_explicit(&g->lagged, memory_order_relaxed);
        }
        n++;
    }
    return n;
}
