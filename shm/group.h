/* Consumer groups on a ringcast ring (competing consumers, as Dapr pub/sub consumer groups or
 * Redis Streams groups): the members of a named group share one cursor, and each committed
 * record after the group's start position goes to exactly one live member.
 *
 *  - Members are threads or processes attached to the same ring. They claim small batches of
 *    records from the group's shared cursor (one CAS per batch), read them zero copy and
 *    acknowledge them.
 *  - The group holds one lossless reader slot: producers never overwrite a record some member
 *    has not acknowledged yet (or that nobody has claimed).
 *  - At least once: when a member dies (its process is gone) or leaves, the records it claimed
 *    and did not acknowledge go to the next member that asks for work. Nothing acknowledged is
 *    delivered again; records appear twice only after a member death.
 *  - The group exists while it has members: the last rc_group_leave deletes it (its backlog is
 *    dropped, as when a lossless reader closes). When every member dies, the group's slot is
 *    reclaimed like a dead reader's after the ring's heartbeat timeout; a member joining before
 *    that inherits the dead members' unacknowledged records.
 * Liveness is per process (pid + start time): a member thread that exits without leaving holds
 * its unacknowledged records until its process exits.
 *
 * Lag limit: a group whose members stop reading (a SIGSTOPped or hung member is alive, so its
 * records are never handed over) would hold producers back for good. rc_group_enforce_lag,
 * which the broker owning the ring runs every 10 ms, moves a group that is more than its lag
 * limit behind the head up to the limit: the records it skips are dropped and counted
 * (rc_group_stats_t.lagged), and a member whose batch was skipped learns it from its next poll
 * (rc_ring_view_t.lost). A group created with RC_GROUP_LAG_BLOCK is never skipped.
 * See docs/groups.md. */
#ifndef RC_SHM_GROUP_H
#define RC_SHM_GROUP_H

#include <stdint.h>

#include "shm/reader.h"
#include "shm/ring.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits of the group table in the ring header (64 x 256 bytes). */
#define RC_GROUP_NAME_MAX    31u /* bytes of a group name, [A-Za-z0-9._:-] */
#define RC_GROUP_MAX         8u  /* groups per ring */
#define RC_GROUP_MAX_MEMBERS 30u /* live (or not yet drained) members per group */

typedef struct rc_group_member_s rc_group_member_t;

/* Flags for rc_group_opts_t.flags. */
#define RC_GROUP_F_MANUAL_ACK 1u /* polls do not acknowledge earlier views: call rc_group_ack */

/* rc_group_opts_t.lag_limit: the group is never skipped; producers wait for it. */
#define RC_GROUP_LAG_BLOCK UINT64_MAX
/* Smallest lag limit a group may set. */
#define RC_GROUP_LAG_MIN 4096u

typedef struct {
    rc_reader_start_t start; /* where a NEW group starts: RC_START_OLDEST or RC_START_LATEST
                              * (ignored when the group exists) */
    uint32_t batch;          /* records claimed at a time; 0 = default (32), at most 1024 */
    uint32_t spin;           /* polls rc_group_wait spins before sleeping; 0 = default (4000) */
    uint32_t flags;          /* RC_GROUP_F_* */
    uint64_t lag_limit;      /* a NEW group's lag limit: bytes from RC_GROUP_LAG_MIN to the
                              * ring's capacity; 0 = the default of whoever enforces it (the
                              * broker: its spec.lag); RC_GROUP_LAG_BLOCK = never skipped.
                              * Ignored when the group exists. */
} rc_group_opts_t;

typedef struct {
    uint32_t members;     /* members counted in the group (live, or dead and not yet noticed) */
    uint64_t position;    /* the group's gating position: all before it is acknowledged */
    uint64_t next;        /* the shared cursor: first record no member has claimed */
    uint64_t redelivered; /* records handed over from dead members (each possibly delivered) */
    uint64_t handed_over; /* records handed over from members that left (never delivered) */
    uint64_t delivered;   /* records this member returned */
    uint64_t lagged;      /* records the group skipped, past its lag limit, before they were
                           * acknowledged (dropped; with automatic acks at most one of them per
                           * stopped member had been returned to it) */
    uint64_t lost;        /* records of this member's batches skipped before it returned them */
} rc_group_stats_t;

/** One group as rc_group_list describes it. */
typedef struct {
    char name[RC_GROUP_NAME_MAX + 1];
    uint32_t members;
    uint64_t position;  /* gating position (the group's reader slot's) */
    uint64_t next;      /* the shared cursor */
    uint64_t lag_limit; /* as the group was created: 0 (the enforcer's default), bytes, or
                         * RC_GROUP_LAG_BLOCK */
    uint64_t lagged;    /* records skipped past the lag limit so far */
} rc_group_info_t;

/** Joins group `name` on `ring` (creating it on first join, at opts->start) and returns the
 *  member in `*out`. `opts` may be NULL (oldest, defaults). Returns 0, RC_EGROUP_NAME (empty,
 *  longer than RC_GROUP_NAME_MAX, or characters outside [A-Za-z0-9._:-]), RC_EGROUP_FULL (the
 *  ring already has RC_GROUP_MAX groups), RC_EGROUP_MEMBERS (the group has
 *  RC_GROUP_MAX_MEMBERS members), RC_ERING_NO_SLOT (creating needs a reader slot), -EINVAL
 *  (bad options), -ENOMEM, -ETIMEDOUT (another process kept creating the same group for more
 *  than 2 s). Borrows `ring` until rc_group_leave. Any thread; the member is then used by one
 *  thread at a time. */
int rc_group_join(rc_ring_t *ring, const char *name, const rc_group_opts_t *opts,
                  rc_group_member_t **out);

/** Leaves the group and frees the member. Records returned by polls count as acknowledged
 *  unless RC_GROUP_F_MANUAL_ACK (then only what rc_group_ack acknowledged); the member's
 *  claimed records not acknowledged go to the other members. The last member to leave deletes
 *  the group. NULL is a no-op. */
void rc_group_leave(rc_group_member_t *m);

/** Returns the next record for this member in `*v` without blocking (a zero-copy view into the
 *  mapping, valid until it is acknowledged, or until the group falls past its lag limit: see
 *  rc_group_enforce_lag). Without RC_GROUP_F_MANUAL_ACK every record returned earlier counts
 *  as acknowledged from this call on. `v->lost` counts the records of this member's batch the
 *  lag limit skipped since its last view (0 normally). Returns 0, RC_ERING_EMPTY (no
 *  record for this member now), RC_EGROUP_UNACKED (manual ack: the member's batch is all
 *  delivered and must be acknowledged before it gets more), RC_EGROUP_GONE (the group's reader
 *  slot was reclaimed, e.g. no member polled for longer than the heartbeat timeout and its
 *  owner process died: leave and join again), RC_ERING_CORRUPT. */
int rc_group_poll(rc_group_member_t *m, rc_ring_view_t *v);

/** Like rc_group_poll, waiting up to `timeout_ns` (< 0: forever): spins, then sleeps on the
 *  ring's futex as rc_reader_wait does. Returns rc_group_poll's codes, RC_ERING_EMPTY on
 *  timeout, or -EINTR when a signal interrupted the sleep. */
int rc_group_wait(rc_group_member_t *m, rc_ring_view_t *v, int64_t timeout_ns);

/** Acknowledges every record this member returned before position `pos` (a view's next, in
 *  order). Returns 0 or -EINVAL (`pos` outside the records returned and not yet acknowledged,
 *  or not a record boundary returned by a poll). Views of a batch the lag limit skipped count
 *  as acknowledged: acknowledging them again returns 0. */
int rc_group_ack(rc_group_member_t *m, uint64_t pos);

/** Refreshes this member's and the group's heartbeat. Polls and waits do it on their own; a
 *  member that works on one batch for longer than the ring's heartbeat timeout calls it. */
void rc_group_heartbeat(rc_group_member_t *m);

/** Fills `st` (plain loads; fields individually consistent). */
void rc_group_stats(rc_group_member_t *m, rc_group_stats_t *st);

/** Index of the member's cell (0..RC_GROUP_MAX_MEMBERS-1) in its group; for logs. */
uint32_t rc_group_member_index(const rc_group_member_t *m);

/** Applies the lag limit of every group on `ring`: a group whose gating position is more than
 *  its limit (its own, else `default_limit`; 0 = none) behind the head skips ahead to the first
 *  record at or after head - limit. Skipped are the records no member claimed yet, the
 *  unclaimed rest of departed or dead members' batches, and the batches of members still
 *  holding them (alive but stopped or hung: such a member finds out at its next poll, and a
 *  view it still holds may be overwritten from then on). Each skipped record is counted once in
 *  the group's `lagged`. Producers are then free to reuse that space. Safe against the
 *  members; meant for one caller per ring (the broker that owns it, from its timer); needs no
 *  membership. Sets `*skipped` (may be NULL) to the records skipped by this call. Returns 0.
 *  Any thread. */
int rc_group_enforce_lag(rc_ring_t *ring, uint64_t default_limit, uint64_t *skipped);

/** Describes the groups on `ring`: fills up to `max` entries of `out` and returns how many
 *  groups there are (plain loads; fields individually consistent). Any thread. */
int rc_group_list(rc_ring_t *ring, rc_group_info_t *out, uint32_t max);

#ifdef __cplusplus
}
#endif

#endif
