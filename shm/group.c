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
 *    ORPHAN cell by whoever notices; its [lo, hi) is then claimed like any source. */
#include "shm/group.h"

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
#include "shm/ring_internal.h"

#define GROUP_BLOCK       2048u /* bytes of one group: header (128) + member cells */
#define CELL_BYTES        64u
#define DEFAULT_BATCH     32u
#define MAX_BATCH         1024u
#define DEFAULT_SPIN      4000u
#define JOIN_TIMEOUT_NS   2000000000ull
#define HEARTBEAT_NS      10000000ull  /* members refresh their heartbeats at most every 10 ms */
#define DEAD_SCAN_NS      100000000ull /* and look for dead members at most every 100 ms */
#define MAX_SLEEP_NS      50000000ll   /* sleepers wake at least this often (orphans, stalls) */
#define STALL_CHECK_EVERY 1024u
#define POS_MAX           UINT64_MAX
#define ROLE_STALE_NS     200000000ull /* a ring role older than this was left by a dead member */
#define ORPHAN_TAG        1ull         /* bit 0 of an orphan cell's lo: claimable source */

/* Group header states. */
#define G_FREE    0u
#define G_CLAIMED 1u /* a creator took it; name not valid yet */
#define G_INIT    2u /* name valid, creation in progress */
#define G_ACTIVE  3u

/* Member cell states. */
#define C_FREE   0u
#define C_INIT   1u
#define C_ACTIVE 2u
#define C_ORPHAN 3u /* owner dead or gone: its [lo, hi) is a source for the others */

/* Group header: 128 bytes, two lines. Line 0 is identity and bookkeeping (rarely written),
 * line 1 the shared cursor every claim CASes. */
typedef struct {
    /* FREE -> CLAIMED (CAS by a creator) -> INIT (seq_cst, after the name) -> ACTIVE (release,
     * after slot and next); back to FREE by the last member's leave or by a dissolver. */
    _Atomic uint32_t state;
    _Atomic uint32_t slot;        /* reader slot index; written before ACTIVE */
    _Atomic uint32_t members;     /* joined members not known dead; CAS from > 0 only */
    _Atomic uint32_t orphans;     /* ORPHAN cells not yet drained: a hint for claimers */
    _Atomic uint32_t creator_pid; /* while CLAIMED/INIT */
    uint32_t reserved0;
    _Atomic uint64_t since;   /* rc_now_ns() when CLAIMED */
    _Atomic uint64_t name[4]; /* NUL-padded name, 32 bytes; written while CLAIMED */
    /* --- line 1 --- */
    _Atomic uint64_t next;        /* first record no member claimed; CAS seq_cst by claimers */
    _Atomic uint64_t redelivered; /* records claimed from dead members' cells; relaxed */
    _Atomic uint64_t handed_over; /* records claimed from departed members' cells; relaxed */
    /* Waiting (see rc_group_wait): at most one member sleeps on the ring's futex, holding
     * `ring_role` (rc_now_ns() when taken, 0 = free); the others sleep on `gwake`, counted in
     * `gsleepers` (seq_cst, paired with the wakers' seq_cst load), and are woken one at a time
     * (increment, then FUTEX_WAKE 1) when there is work left or the role is free again. */
    _Atomic uint64_t ring_role;
    _Atomic uint32_t gwake;
    _Atomic uint32_t gsleepers;
    uint8_t pad1_[RC__CACHE_LINE - 40];
} group_hdr_t;

/* Member cell: 64 bytes, written by its owner except lo (also CASed by claimers once ORPHAN)
 * and state (ACTIVE -> ORPHAN by whoever notices the owner's death; ORPHAN -> FREE by whoever
 * drains it). */
typedef struct {
    _Atomic uint32_t state;
    _Atomic uint32_t pid;        /* owner; written in INIT */
    _Atomic uint64_t start_time; /* owner's start time; written in INIT */
    _Atomic uint64_t heartbeat;  /* owner's last sign of life; relaxed */
    _Atomic uint64_t lo;         /* seq_cst stores when announcing, release when acknowledging */
    _Atomic uint64_t hi;         /* seq_cst */
    _Atomic uint32_t dead;       /* ORPHAN because the owner died (1) or left (0) */
    uint32_t reserved0;
    uint8_t pad_[16];
} group_cell_t;

_Static_assert(sizeof(group_hdr_t) == 2 * RC__CACHE_LINE, "group header is two lines");
_Static_assert(offsetof(group_hdr_t, name) == 32, "name on line 0");
_Static_assert(offsetof(group_hdr_t, next) == RC__CACHE_LINE, "cursor on its own line");
_Static_assert(offsetof(group_hdr_t, gsleepers) == RC__CACHE_LINE + 36, "wait words on line 1");
_Static_assert(sizeof(group_cell_t) == CELL_BYTES, "member cell is a line");
_Static_assert(sizeof(group_hdr_t) + RC_GROUP_MAX_MEMBERS * CELL_BYTES == GROUP_BLOCK,
               "a group block holds its header and its member cells");
_Static_assert(RC_GROUP_MAX *GROUP_BLOCK == RC__DEFAULT_GROUPS * RC__GROUP_BYTES,
               "the groups fill the ring's reserved group table");
_Static_assert(RC_GROUP_NAME_MAX + 1 == sizeof(((group_hdr_t *)0)->name), "name fits");

struct rc_group_member_s {
    rc_ring_t *ring;
    group_hdr_t *g;
    group_cell_t *cells;
    group_cell_t *me;
    rc__reader_slot_t *slot;
    uint32_t gidx, idx;
    uint32_t batch, spin;
    int manual;
    uint32_t pid;
    uint64_t start_time;
    uint64_t cur;     /* next position to return */
    uint64_t hi;      /* end of the claimed range */
    uint64_t acked;   /* mirror of me->lo */
    uint64_t ret_end; /* position after the last record returned (or the range start) */
    uint64_t delivered;
    uint64_t last_hb, last_scan, last_owner;
    uint64_t pub_acked; /* acked when the gate was last published */
    uint64_t stall_pos, stall_since;
    uint32_t stall_polls;
    char slot_name[24];
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static uint32_t group_count(const rc_ring_t *r)
{
    uint64_t n = (uint64_t)r->hdr->group_count * RC__GROUP_BYTES / GROUP_BLOCK;
    return n < RC_GROUP_MAX ? (uint32_t)n : RC_GROUP_MAX;
}

static group_hdr_t *group_at(const rc_ring_t *r, uint32_t i)
{
    return (group_hdr_t *)(r->base + r->hdr->groups_off + (size_t)i * GROUP_BLOCK);
}

static group_cell_t *cells_of(group_hdr_t *g)
{
    return (group_cell_t *)((uint8_t *)g + sizeof(group_hdr_t));
}

static int valid_name(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return 0;
    size_t n = 0;
    for (const char *c = name; *c; c++, n++) {
        if (n >= RC_GROUP_NAME_MAX)
            return 0;
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == ':' || *c == '-'))
            return 0;
    }
    return 1;
}

static void pack_name(const char *name, uint64_t w[4])
{
    char buf[32] = {0};
    memcpy(buf, name, strlen(name));
    memcpy(w, buf, sizeof(buf));
}

/* Relaxed word loads: a name may be rewritten while we compare (a header freed and taken
 * again); callers re-check the state after comparing. */
static int name_is(group_hdr_t *g, const uint64_t w[4])
{
    for (int i = 0; i < 4; i++)
        if (atomic_load_explicit(&g->name[i], memory_order_relaxed) != w[i])
            return 0;
    return 1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Whether reader slot `s` is still the one this group created. */
static int slot_ours(const rc__reader_slot_t *s, const char *slot_name)
{
    if (atomic_load_explicit(&((rc__reader_slot_t *)s)->state, memory_order_acquire) !=
            RC__SLOT_ACTIVE ||
        atomic_load_explicit(&((rc__reader_slot_t *)s)->mode, memory_order_relaxed) !=
            RC_READER_LOSSLESS)
        return 0;
    return strncmp(s->name, slot_name, sizeof(s->name) - 1) == 0;
}

static void make_slot_name(const char *name, char out[24])
{
    memset(out, 0, 24);
    snprintf(out, 24, "g:%s", name);
}

/* ---- gating --------------------------------------------------------------------------------- */

/* Lowest position some cell still needs, folded into `min`. Returns whether an ORPHAN cell was
 * seen (then the caller scans a second time). */
static int scan_cells(group_cell_t *cells, uint64_t *min)
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
        if (lo < hi && lo < *min)
            *min = lo;
    }
    return orphan;
}

/* Recomputes the group's gating position and raises the slot's position to it. */
static void publish_gate(rc_group_member_t *m)
{
    if (!slot_ours(m->slot, m->slot_name))
        return; /* reclaimed, maybe another reader's now: never move it */
    uint64_t min = atomic_load_explicit(&m->g->next, memory_order_seq_cst);
    if (scan_cells(m->cells, &min))
        scan_cells(m->cells, &min);
    uint64_t cur = atomic_load_explicit(&m->slot->position, memory_order_relaxed);
    /* Release: pairs with producers' acquire in rc__min_lossless (as a reader's publish). */
    while (min > cur &&
           !atomic_compare_exchange_weak_explicit(&m->slot->position, &cur, min,
                                                  memory_order_release, memory_order_relaxed))
        ;
}

/* ---- liveness ------------------------------------------------------------------------------- */

void rc_group_heartbeat(rc_group_member_t *m)
{
    uint64_t now = rc_now_ns();
    m->last_hb = now;
    atomic_store_explicit(&m->me->heartbeat, now, memory_order_relaxed);
    if (!slot_ours(m->slot, m->slot_name))
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
static int scan_dead(rc_group_member_t *m)
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

static void settle(rc_group_member_t *m, uint64_t x, uint64_t y)
{
    m->cur = m->acked = m->ret_end = x;
    m->hi = y;
}

static void go_idle(rc_group_member_t *m, uint64_t x)
{
    atomic_store_explicit(&m->me->lo, x, memory_order_seq_cst);
    atomic_store_explicit(&m->me->hi, x, memory_order_seq_cst);
    settle(m, x, x);
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
        settle(m, x, y);
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
            settle(m, x, y);
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
    if (!slot_ours(m->slot, m->slot_name))
        return RC_EGROUP_GONE;
    uint64_t now = rc_now_ns();
    if (now - m->last_hb >= HEARTBEAT_NS)
        rc_group_heartbeat(m);
    if (now - m->last_scan >= DEAD_SCAN_NS)
        scan_dead(m);
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
        publish_gate(m);
    }
    return 0;
}

/* ---- consuming ------------------------------------------------------------------------------ */

static void ack_to(rc_group_member_t *m, uint64_t p)
{
    m->acked = p;
    /* Release: pairs with publish_gate's load; our reads of the records before p happen
     * before producers may reuse their space. */
    atomic_store_explicit(&m->me->lo, p, memory_order_release);
}

static int poll_once(rc_group_member_t *m, rc_ring_view_t *v, int force_stall)
{
    rc_ring_t *ring = m->ring;
    if (!m->manual && m->acked != m->ret_end)
        ack_to(m, m->ret_end);
    for (;;) {
        while (m->cur < m->hi) {
            uint64_t p = rc__skip_gap(ring, m->cur);
            if (p >= m->hi) {
                m->cur = m->hi;
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
            v->lost = 0;
            v->data = (const uint8_t *)rec + RC__REC_HDR;
            v->len = len - RC__REC_HDR;
            v->type = RC__W_TYPE(w);
            v->flags = RC__W_FLAGS(w);
            m->ret_end = m->cur;
            m->delivered++;
            return 0;
        }
        /* Range delivered. What follows the last returned record is padding: acknowledged
         * along with it. */
        if (m->acked < m->hi) {
            if (m->acked < m->ret_end)
                return RC_EGROUP_UNACKED;
            ack_to(m, m->hi);
        }
        m->ret_end = m->hi;
        if (m->pub_acked != m->acked) {
            m->pub_acked = m->acked;
            publish_gate(m);
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
    if (pos < m->acked || pos > m->ret_end || (pos & 7) != 0)
        return -EINVAL;
    if (pos != m->acked)
        ack_to(m, pos);
    return 0;
}

/* ---- joining and leaving -------------------------------------------------------------------- */

/* Frees a header we hold (CLAIMED, INIT, or the last member's ACTIVE). `since` goes back to 0
 * first, so that reset_stuck never judges the next creator by our timestamp. */
static void release_hdr(group_hdr_t *g)
{
    atomic_store_explicit(&g->since, 0, memory_order_relaxed);
    /* Release: the next creator that takes the header sees the cleared fields. */
    atomic_store_explicit(&g->state, G_FREE, memory_order_release);
}

static void clear_cells(group_hdr_t *g)
{
    group_cell_t *cells = cells_of(g);
    for (uint32_t i = 0; i < RC_GROUP_MAX_MEMBERS; i++) {
        atomic_store_explicit(&cells[i].lo, 0, memory_order_relaxed);
        atomic_store_explicit(&cells[i].hi, 0, memory_order_relaxed);
        atomic_store_explicit(&cells[i].state, C_FREE, memory_order_release);
    }
    atomic_store_explicit(&g->orphans, 0, memory_order_relaxed);
}

/* Takes a free member cell. Returns its index or -1. */
static int take_cell(rc_group_member_t *m)
{
    for (uint32_t i = 0; i < RC_GROUP_MAX_MEMBERS; i++) {
        group_cell_t *c = &m->cells[i];
        uint32_t st = C_FREE;
        if (!atomic_compare_exchange_strong_explicit(&c->state, &st, C_INIT, memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;
        /* Idle (lo == hi) until the first claim; not gating, not a source. */
        atomic_store_explicit(&c->lo, 0, memory_order_relaxed);
        atomic_store_explicit(&c->hi, 0, memory_order_relaxed);
        atomic_store_explicit(&c->pid, m->pid, memory_order_relaxed);
        atomic_store_explicit(&c->start_time, m->start_time, memory_order_relaxed);
        atomic_store_explicit(&c->heartbeat, rc_now_ns(), memory_order_relaxed);
        atomic_store_explicit(&c->dead, 0, memory_order_relaxed);
        /* seq_cst: pairs with scan_cells' seq_cst state load. */
        atomic_store_explicit(&c->state, C_ACTIVE, memory_order_seq_cst);
        return (int)i;
    }
    return -1;
}

/* Whether some member cell belongs to a live process. */
static int any_live_member(group_hdr_t *g)
{
    group_cell_t *cells = cells_of(g);
    for (uint32_t i = 0; i < RC_GROUP_MAX_MEMBERS; i++) {
        group_cell_t *c = &cells[i];
        uint32_t st = atomic_load_explicit(&c->state, memory_order_acquire);
        if (st != C_ACTIVE && st != C_INIT)
            continue;
        if (rc_proc_alive((pid_t)atomic_load_explicit(&c->pid, memory_order_relaxed),
                          atomic_load_explicit(&c->start_time, memory_order_relaxed)))
            return 1;
    }
    return 0;
}

/* A group whose reader slot was reclaimed (every member dead past the heartbeat timeout):
 * frees its header so it can be created again. */
static void dissolve(group_hdr_t *g)
{
    if (any_live_member(g))
        return;
    uint32_t st = G_ACTIVE;
    if (!atomic_compare_exchange_strong_explicit(&g->state, &st, G_CLAIMED, memory_order_acq_rel,
                                                 memory_order_relaxed))
        return;
    atomic_store_explicit(&g->members, 0, memory_order_seq_cst);
    clear_cells(g);
    release_hdr(g);
}

/* Joins existing group header `g`. Returns 0, -EAGAIN (look again), RC_EGROUP_MEMBERS. */
static int attach(rc_group_member_t *m, group_hdr_t *g, const uint64_t w[4])
{
    uint32_t c = atomic_load_explicit(&g->members, memory_order_acquire);
    do {
        if (c == 0)
            return -EAGAIN; /* being deleted or created */
    } while (!atomic_compare_exchange_weak_explicit(&g->members, &c, c + 1, memory_order_acq_rel,
                                                    memory_order_acquire));
    m->g = g;
    m->cells = cells_of(g);
    uint32_t slot = atomic_load_explicit(&g->slot, memory_order_acquire);
    m->slot = rc__slot(m->ring, slot);
    if (atomic_load_explicit(&g->state, memory_order_seq_cst) != G_ACTIVE || !name_is(g, w)) {
        atomic_fetch_sub_explicit(&g->members, 1, memory_order_acq_rel);
        return -EAGAIN;
    }
    if (slot >= m->ring->hdr->slot_count || !slot_ours(m->slot, m->slot_name)) {
        atomic_fetch_sub_explicit(&g->members, 1, memory_order_acq_rel);
        dissolve(g);
        return -EAGAIN;
    }
    int idx = take_cell(m);
    if (idx < 0) {
        m->last_scan = 0;
        scan_dead(m); /* dead members' cells become free once drained */
        idx = take_cell(m);
    }
    if (idx < 0) {
        atomic_fetch_sub_explicit(&g->members, 1, memory_order_acq_rel);
        return RC_EGROUP_MEMBERS;
    }
    m->idx = (uint32_t)idx;
    m->me = &m->cells[idx];
    rc_group_heartbeat(m);
    return 0;
}

/* Creates group `name` in header `g` (state CLAIMED, ours). Returns 0, -EAGAIN (another
 * creator of the same name, or any creator racing us: back off), or an error. */
static int create(rc_group_member_t *m, group_hdr_t *g, const uint64_t w[4],
                  const rc_group_opts_t *o)
{
    rc_ring_t *ring = m->ring;
    atomic_store_explicit(&g->creator_pid, m->pid, memory_order_relaxed);
    atomic_store_explicit(&g->since, rc_now_ns(), memory_order_relaxed);
    for (int i = 0; i < 4; i++)
        atomic_store_explicit(&g->name[i], w[i], memory_order_relaxed);
    atomic_store_explicit(&g->members, 0, memory_order_relaxed);
    clear_cells(g);
    /* seq_cst, then a scan of the other headers: of two creators racing, at least one sees
     * the other and backs off. */
    atomic_store_explicit(&g->state, G_INIT, memory_order_seq_cst);
    for (uint32_t i = 0; i < group_count(ring); i++) {
        group_hdr_t *o2 = group_at(ring, i);
        if (o2 == g)
            continue;
        uint32_t st = atomic_load_explicit(&o2->state, memory_order_seq_cst);
        if (st == G_CLAIMED || ((st == G_INIT || st == G_ACTIVE) && name_is(o2, w))) {
            release_hdr(g);
            return -EAGAIN;
        }
    }
    rc_reader_opts_t ro = {.mode = RC_READER_LOSSLESS,
                           .start = o->start,
                           .name = m->slot_name,
                           .flags = RC_READER_F_MANUAL_ACK};
    rc_reader_t *r;
    int rc = rc_reader_open(ring, &ro, &r);
    if (rc != 0) {
        release_hdr(g);
        return rc;
    }
    uint64_t start = rc_reader_acked(r);
    uint32_t slot = rc_reader_slot(r);
    rc_reader_forget(r); /* the slot stays, gating at `start`; the group owns it now */
    atomic_store_explicit(&g->slot, slot, memory_order_relaxed);
    atomic_store_explicit(&g->next, start, memory_order_relaxed);
    atomic_store_explicit(&g->redelivered, 0, memory_order_relaxed);
    atomic_store_explicit(&g->handed_over, 0, memory_order_relaxed);
    atomic_store_explicit(&g->ring_role, 0, memory_order_relaxed);
    atomic_store_explicit(&g->gsleepers, 0, memory_order_relaxed);
    atomic_store_explicit(&g->members, 1, memory_order_relaxed);
    /* Release: an attacher that acquires ACTIVE sees slot, next and the cleared cells. */
    atomic_store_explicit(&g->state, G_ACTIVE, memory_order_seq_cst);
    m->g = g;
    m->cells = cells_of(g);
    m->slot = rc__slot(ring, slot);
    int idx = take_cell(m);
    m->idx = (uint32_t)idx; /* the table was just cleared: cell 0 is free */
    m->me = &m->cells[idx];
    rc_group_heartbeat(m);
    return 0;
}

/* A CLAIMED or INIT header whose creator died (or stalled past the join timeout). */
static void reset_stuck(group_hdr_t *g, uint32_t st, uint64_t now)
{
    uint64_t since = atomic_load_explicit(&g->since, memory_order_relaxed);
    if (since == 0 || now - since < JOIN_TIMEOUT_NS)
        return;
    pid_t pid = (pid_t)atomic_load_explicit(&g->creator_pid, memory_order_relaxed);
    if (pid != 0 && rc_proc_alive(pid, rc_proc_start_time(pid)) &&
        now - since < 4 * JOIN_TIMEOUT_NS)
        return;
    atomic_compare_exchange_strong_explicit(&g->state, &st, G_FREE, memory_order_acq_rel,
                                            memory_order_relaxed);
}

int rc_group_join(rc_ring_t *ring, const char *name, const rc_group_opts_t *opts,
                  rc_group_member_t **out)
{
    rc_group_opts_t defaults = {.start = RC_START_OLDEST};
    if (out != NULL)
        *out = NULL;
    if (ring == NULL || out == NULL)
        return -EINVAL;
    if (!valid_name(name))
        return RC_EGROUP_NAME;
    const rc_group_opts_t *o = opts ? opts : &defaults;
    if ((o->start != RC_START_OLDEST && o->start != RC_START_LATEST) || o->batch > MAX_BATCH ||
        (o->flags & ~RC_GROUP_F_MANUAL_ACK) != 0)
        return -EINVAL;
    if (group_count(ring) == 0)
        return RC_EGROUP_FULL;
    rc_group_member_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return -ENOMEM;
    m->ring = ring;
    m->batch = o->batch ? o->batch : DEFAULT_BATCH;
    m->spin = o->spin ? o->spin : DEFAULT_SPIN;
    m->manual = (o->flags & RC_GROUP_F_MANUAL_ACK) != 0;
    m->pid = (uint32_t)getpid();
    m->start_time = rc_proc_start_time(getpid());
    make_slot_name(name, m->slot_name);
    uint64_t w[4];
    pack_name(name, w);
    uint64_t deadline = rc_now_ns() + JOIN_TIMEOUT_NS;
    unsigned backoff = (unsigned)getpid() * 2654435761u + (unsigned)rc_now_ns();
    int rc;
    for (;;) {
        uint64_t now = rc_now_ns();
        group_hdr_t *found = NULL, *free_hdr = NULL;
        int busy = 0;
        for (uint32_t i = 0; i < group_count(ring); i++) {
            group_hdr_t *g = group_at(ring, i);
            uint32_t st = atomic_load_explicit(&g->state, memory_order_seq_cst);
            if (st == G_FREE) {
                if (free_hdr == NULL)
                    free_hdr = g;
            } else if (st == G_CLAIMED) {
                busy = 1;
                reset_stuck(g, st, now);
            } else if (name_is(g, w)) {
                if (st == G_ACTIVE) {
                    found = g;
                } else {
                    busy = 1;
                    reset_stuck(g, st, now);
                }
            }
        }
        rc = -EAGAIN;
        if (found != NULL) {
            rc = attach(m, found, w);
        } else if (!busy) {
            if (free_hdr == NULL) {
                rc = RC_EGROUP_FULL;
            } else {
                uint32_t st = G_FREE;
                if (atomic_compare_exchange_strong_explicit(&free_hdr->state, &st, G_CLAIMED,
                                                            memory_order_seq_cst,
                                                            memory_order_relaxed))
                    rc = create(m, free_hdr, w, o);
            }
        }
        if (rc != -EAGAIN)
            break;
        if (rc_now_ns() > deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        backoff = backoff * 1103515245u + 12345u;
        sleep_ms(1 + (long)((backoff >> 16) % 3));
    }
    if (rc != 0) {
        free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void rc_group_leave(rc_group_member_t *m)
{
    if (m == NULL)
        return;
    group_hdr_t *g = m->g;
    if (!m->manual && m->acked != m->ret_end)
        ack_to(m, m->ret_end);
    if (atomic_fetch_sub_explicit(&g->members, 1, memory_order_acq_rel) == 1) {
        /* Last member: nobody can attach any more (attach needs members > 0). Delete the
         * group; its slot stops gating. */
        uint32_t active = RC__SLOT_ACTIVE;
        if (slot_ours(m->slot, m->slot_name))
            atomic_compare_exchange_strong_explicit(&m->slot->state, &active, RC__SLOT_FREE,
                                                    memory_order_release, memory_order_relaxed);
        atomic_store_explicit(&g->state, G_CLAIMED, memory_order_seq_cst);
        clear_cells(g);
        release_hdr(g);
    } else if (m->acked < m->hi) {
        /* Hand what is left of the batch over: the others claim it like a dead member's. */
        atomic_store_explicit(&m->me->dead, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&g->orphans, 1, memory_order_seq_cst);
        atomic_store_explicit(&m->me->state, C_ORPHAN, memory_order_seq_cst);
        atomic_store_explicit(&m->me->lo, m->acked | ORPHAN_TAG, memory_order_seq_cst);
        publish_gate(m);
        rc__wake(m->ring);
    } else {
        atomic_store_explicit(&m->me->state, C_FREE, memory_order_seq_cst);
        publish_gate(m);
    }
    free(m);
}

void rc_group_stats(rc_group_member_t *m, rc_group_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->members = atomic_load_explicit(&m->g->members, memory_order_relaxed);
    st->position = atomic_load_explicit(&m->slot->position, memory_order_relaxed);
    st->next = atomic_load_explicit(&m->g->next, memory_order_relaxed);
    st->redelivered = atomic_load_explicit(&m->g->redelivered, memory_order_relaxed);
    st->handed_over = atomic_load_explicit(&m->g->handed_over, memory_order_relaxed);
    st->delivered = m->delivered;
}

uint32_t rc_group_member_index(const rc_group_member_t *m)
{
    return m->idx;
}
