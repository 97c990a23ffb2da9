/* Consumer groups, folder-internal: the shared layout of a group (header and member cells in
 * the ring's group table), the member handle, and what shm/group.c (claiming, consuming,
 * gating, liveness) and shm/group_join.c (joining, creating, leaving) share. Not a public
 * header; docs/groups.md describes the protocol. */
#ifndef RC_SHM_GROUP_INTERNAL_H
#define RC_SHM_GROUP_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "shm/group.h"
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
    /* Lag limit (rc_group_enforce_lag): `floor` is where the last skip moved the group to; every
     * range that starts below it was skipped, so it gates nothing and its records are never
     * returned again. Raised by a skipper (CAS, seq_cst) after it moved the sources below it
     * and before it raises the reader slot; members acquire it before they return a record.
     * 0 for a new group. */
    _Atomic uint64_t floor;
    _Atomic uint64_t lagged;    /* records skipped; relaxed */
    _Atomic uint64_t lag_limit; /* as created: 0 = enforcer's default, or RC_GROUP_LAG_BLOCK */
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
_Static_assert(offsetof(group_hdr_t, lag_limit) == 2 * RC__CACHE_LINE - 8, "lag words fill line 1");
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
    uint64_t left;    /* records of [cur, hi) not returned yet (as the claim walk counted) */
    uint64_t delivered;
    uint64_t lost, lost_unreported; /* records of our batches the lag limit skipped */
    uint64_t skip_lo, skip_hi;      /* the last batch skipped: its views count as acknowledged */
    uint64_t last_hb, last_scan, last_owner;
    uint64_t pub_acked; /* acked when the gate was last published */
    uint64_t stall_pos, stall_since;
    uint32_t stall_polls;
    char slot_name[24];
};

/* Whether reader slot `s` is still the one this group created. */
static inline int rc__group_slot_ours(const rc__reader_slot_t *s, const char *slot_name)
{
    if (atomic_load_explicit(&((rc__reader_slot_t *)s)->state, memory_order_acquire) !=
            RC__SLOT_ACTIVE ||
        atomic_load_explicit(&((rc__reader_slot_t *)s)->mode, memory_order_relaxed) !=
            RC_READER_LOSSLESS)
        return 0;
    return strncmp(s->name, slot_name, sizeof(s->name) - 1) == 0;
}

/* The group table: header `i` of the ring's groups, the member cells behind a header. */
static inline uint32_t rc__group_count(const rc_ring_t *r)
{
    uint64_t n = (uint64_t)r->hdr->group_count * RC__GROUP_BYTES / GROUP_BLOCK;
    return n < RC_GROUP_MAX ? (uint32_t)n : RC_GROUP_MAX;
}

static inline group_hdr_t *rc__group_at(const rc_ring_t *r, uint32_t i)
{
    return (group_hdr_t *)(r->base + r->hdr->groups_off + (size_t)i * GROUP_BLOCK);
}

static inline group_cell_t *rc__group_cells(group_hdr_t *g)
{
    return (group_cell_t *)((uint8_t *)g + sizeof(group_hdr_t));
}

/* shm/group.c */

/** Recomputes the group's gating position (min of the cursor and every non-idle cell) and
 *  raises the group's reader slot to it; never moves a slot that is no longer the group's. */
void rc__group_publish_gate(rc_group_member_t *m);

/** Turns the cells of members of other processes whose heartbeat is stale and whose process
 *  is gone into ORPHAN sources (their [lo, hi) becomes claimable). Returns how many. */
int rc__group_scan_dead(rc_group_member_t *m);

/** Acknowledges this member's records before `p`: moves its cell's lo (release); the gate
 *  follows at the next rc__group_publish_gate. */
void rc__group_ack_to(rc_group_member_t *m, uint64_t p);

#endif
