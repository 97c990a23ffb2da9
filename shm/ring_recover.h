/* Recovering a ring file when its broker starts (docs/durability.md, "Recovery"): the scan that
 * checks every record the file holds, pads over what is damaged and cuts a torn tail. Used by
 * the file store (net/storage/storage_file.c); not part of the installed SDK. */
#ifndef RC_SHM_RING_RECOVER_H
#define RC_SHM_RING_RECOVER_H

#include <stdint.h>

#include "shm/reader.h"
#include "shm/ring.h"

/** What rc_ring_recover found and did. Positions and sequence numbers as in rc_ring_view_t. */
typedef struct {
    uint64_t events;     /* records of a user type kept (their checks passed) */
    uint64_t unchecked;  /* of which carried no checksum (the verify callback said so) */
    uint64_t oldest_seq; /* sequence numbers of the oldest and newest kept; oldest > newest */
    uint64_t newest_seq; /*   when none was kept */
    uint64_t oldest_pos;
    uint64_t corrupt; /* records or damaged stretches inside the region, padded over */
    uint64_t swept;   /* claims of producers that died before committing, padded over */
    uint64_t head_before, seq_before; /* the head found */
    uint64_t head, head_seq;          /* the head after (lower when a torn tail was cut) */
    uint64_t clamped;                 /* reader slots past the new head moved back to it */
    uint64_t groups_clamped;          /* consumer groups whose positions past it moved back */
    char stop[192];                   /* where and why the scan ended, in words */
} rc_ring_recovery_t;

/** Checks one record's contents (a checksum, say): 0 intact, 1 intact but without a checksum
 *  to check, negative when corrupt. `v` points into the mapping (`lost` is 0). */
typedef int (*rc_ring_verify_fn)(void *arg, const rc_ring_view_t *v);

/** Told of each corrupt record or damaged stretch, padded over so readers skip it: its
 *  position, its bytes, and why ("its checksum does not match", ...). */
typedef void (*rc_ring_report_fn)(void *arg, uint64_t pos, uint64_t len, const char *why);

/** Scans the ring from the oldest record it still holds to the head, checking every record:
 *  its header (stamp, commit word, length within the area) and, for user types, `verify`.
 *  - a claim whose producer died before committing it is padded over, as a sweeper would;
 *  - a record that fails `verify`, or a stretch of bytes with no valid header followed by
 *    valid records, is padded over (readers skip it) and reported;
 *  - the first stretch of bytes with no valid header that no valid record follows up to the
 *    head is a torn tail (a crash in the middle of writing): the head moves back to its start,
 *    the bytes after it are zeroed, and reader slots and consumer groups (their shared
 *    cursor, lag floor and members' ranges) past it move back to it.
 *  Needs the broker lock (rc_ring_lock; -EPERM without it), since it rewrites headers and the
 *  head: nobody may produce into the ring meanwhile, and a pending claim found is taken as its
 *  producer's death. `verify` may be NULL (no content check), `report` too. Returns 0 and
 *  fills `out`, or -EPERM, or -EBUSY when the head moved under it. Setup path. */
int rc_ring_recover(rc_ring_t *ring, rc_ring_verify_fn verify, rc_ring_report_fn report, void *arg,
                    rc_ring_recovery_t *out);

/** The bytes of the record area at position `pos` (records never cross its end): for the sync
 *  journal (net/storage/journal.h), which copies committed records from there. */
const void *rc_ring_area_at(const rc_ring_t *ring, uint64_t pos);

/** Puts `len` bytes saved from position `pos` (whole records, as the journal copied them) back
 *  into the area, and moves the head to their end when it is behind it (its sequence number
 *  past the last record in them). For a crash of the machine that lost page-cache writes of the
 *  ring file the journal held; before rc_ring_recover, which then checks every record. Needs
 *  the broker lock (-EPERM); -EINVAL when the bytes would cross the end of the area. */
int rc_ring_restore(rc_ring_t *ring, uint64_t pos, const void *bytes, uint32_t len);

#endif
