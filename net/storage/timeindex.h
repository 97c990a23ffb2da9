/* The sparse time index of a broker's ring (docs/durability.md, "Replay"): a fixed-size
 * circular table of samples (wall time, head position, head sequence number) that the broker
 * process takes every 100 ms while events arrive, kept beside the ring (a shm object
 * "<ring name>.timeindex" for a memory ring, the file "<ns>.<broker>.timeindex" for a file
 * store). A sample (t, pos, seq) says: every event stored after time t has a sequence number
 * >= seq and lies at or after pos. So "from time T" is a binary search for the newest sample at
 * or before T (less a slack for clock steps), then a short forward scan that decodes the events'
 * knativearrivaltime.
 *
 * The table is advisory: a missing, foreign or damaged one only makes a seek scan from the
 * oldest record. One writer (the broker's sampler thread) and any number of readers in any
 * process; each entry is a seqlock, so a reader never takes an entry being overwritten. */
#ifndef RC_NET_STORAGE_TIMEINDEX_H
#define RC_NET_STORAGE_TIMEINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "net/storage/storage.h"

/** Entries of a broker's table (32 bytes each: 256 KiB). */
#define RC_TIMEINDEX_ENTRIES 8192u
/** How often the broker samples its ring's head (when it moved far enough). */
#define RC_TIMEINDEX_INTERVAL_MS 100u
/** A seek starts at the newest sample at or before T minus this: a wall clock stepped back by
 *  up to this much between a sample and an event's arrival stamp still finds the event. */
#define RC_TIMEINDEX_SLACK_NS 1000000000ll

typedef struct rc_timeindex_s rc_timeindex_t;

/** One sample. */
typedef struct {
    int64_t t_ns; /* wall clock (Unix ns), read after the head */
    uint64_t pos; /* the ring's head then: the next record starts here */
    uint64_t seq; /* the next event's sequence number */
} rc_timeindex_entry_t;

/** Maps the table kept in `fd` (a file or shm object, opened by the caller, who closes it
 *  after) for the ring whose identity is `ring_id`. Writable (the broker): a table that is
 *  empty, of another ring, size or format is made anew (`*reset` = 1 and `why` says why when it
 *  was not empty); `entries` is the table's size (0: RC_TIMEINDEX_ENTRIES). Read-only (`entries`
 *  ignored): such a table is refused with -EBADMSG and `why`. Either way a table another user
 *  owns, or that others may open, is refused with -EPERM (whoever can write it could make a
 *  replay skip events). Returns 0 or a negative code. */
int rc_timeindex_map(int fd, uint64_t ring_id, uint32_t entries, int writable, rc_timeindex_t **out,
                     int *reset, char *why, size_t whylen);

/** Unmaps the table (it stays for the next process). NULL is a no-op. */
void rc_timeindex_close(rc_timeindex_t *ix);

/** Writer: appends a sample, overwriting the oldest when the table is full. A sample that is
 *  not after the newest (time going back, or a head that did not move) is not added. Returns 1
 *  when added, 0 when not. */
int rc_timeindex_add(rc_timeindex_t *ix, int64_t t_ns, uint64_t pos, uint64_t seq);

/** Writer: empties the table (its ring lost events the samples point at: recovery cut it). */
void rc_timeindex_clear(rc_timeindex_t *ix);

/** The newest sample, for the writer's own bookkeeping: 0 or -ENOENT (empty). */
int rc_timeindex_newest(const rc_timeindex_t *ix, rc_timeindex_entry_t *out);

/** Samples added since the table was made (the table holds the last `entries` of them). */
uint64_t rc_timeindex_count(const rc_timeindex_t *ix);

/** The newest sample at or before `t_ns`: 0 and `*out`; -ENOENT when there is none (the table
 *  is empty, or every sample it holds is later); -EBADMSG when the samples are not in order
 *  (the table was damaged). Any process, concurrently with the writer. */
int rc_timeindex_lookup(const rc_timeindex_t *ix, int64_t t_ns, rc_timeindex_entry_t *out);

/* ---- seeking a ring by time (implemented with the ring, in storage_shm.c) ------------------- */

struct rc_ring_s;

/** rc_storage_seek_time on a ring attached directly (`ringcast tail`): `index` is the table's
 *  shm object name ("/<ring>.timeindex") or, with `index_is_file`, its path; NULL: scan. */
int rc_storage_ring_seek_time(struct rc_ring_s *ring, const char *index, int index_is_file,
                              int64_t t_ns, rc_storage_seek_t *out);

/** The arrival time (knativearrivaltime, Unix ns) of the event record `data` (`len` bytes as
 *  the ring holds it, `flags` its ring flags: a checksum trailer is left out). Returns 0, or
 *  -ENOENT when it is not an event record or has no parsable arrival time. */
int rc_storage_record_arrival(const void *data, uint32_t len, uint16_t flags, int64_t *t_ns);

#endif
