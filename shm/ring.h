/* The shared-memory event ring: one per broker, a POSIX shm object (memory mode) or a file
 * (durable mode) with the same layout. Producers (threads and processes) claim space, write a
 * record in place and commit it; readers (shm/reader.h) follow at their own pace.
 *
 * Positions are 64-bit byte offsets that only grow; a record's position is its event offset.
 * Records are 8-byte aligned, carry a 32-bit length and a 16-bit type plus 15 flag bits, and
 * their payload is opaque bytes. Return codes: 0 or a negative code (-errno or RC_E* from
 * core/errors.h). See docs/ring.md. */
#ifndef RC_SHM_RING_H
#define RC_SHM_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rc_ring_s rc_ring_t;

/* Record types 0..15 are the ring's own (0 = padding, never seen by readers); applications use
 * RC_REC_TYPE_USER and above. */
#define RC_REC_TYPE_USER 16u

/* Bytes of ring space a record with `payload_len` bytes of payload takes (header + payload,
 * rounded up to 8). Use it to size a batch. */
#define RC_RING_RECORD_SIZE(payload_len) ((((uint64_t)(payload_len) + 24u) + 7u) & ~(uint64_t)7u)

/* Flags for rc_ring_config_t.flags. */
#define RC_RING_F_REPLACE                                                                          \
    1u                       /* create: replace an existing object/file of that name, unless it    \
                              * belongs to another user or a live broker holds its lock */
#define RC_RING_F_DURABLE 2u /* recorded in the header by rc_ring_create_file */
#define RC_RING_F_LOCK    4u /* create: take the broker lock (rc_ring_lock) before sizing it */

typedef struct {
    uint64_t capacity;             /* record area bytes, power of two, >= 64 KiB; default 64 MiB */
    uint32_t reader_slots;         /* default 64, at most 4096 */
    uint32_t max_record;           /* largest record incl. header; default min(capacity/4, 16 MiB) */
    uint64_t heartbeat_timeout_ns; /* default 2 s */
    uint64_t pad_timeout_ns;       /* default 1 s */
    uint32_t flags;                /* RC_RING_F_* */
    mode_t mode;                   /* permission bits, the owner's only (default 0600): a ring
                                    * is never open to group or other users (rc_ring_open) */
} rc_ring_config_t;

/** Fills `cfg` with the defaults above. */
void rc_ring_config_init(rc_ring_config_t *cfg);

/** Creates a ring as POSIX shm object `name` ("broker" or "/broker"; at most 62 characters, no
 *  further '/'), maps it and returns the handle in `*out`. The layout version is written last,
 *  so openers never see a half-initialised ring as ready. `cfg` may be NULL (defaults).
 *  With RC_RING_F_REPLACE an existing object of that name is removed first, but only one this
 *  user owns and no live broker holds (checked under its lock, so two processes replacing a
 *  broken ring at once cannot remove each other's new one); with RC_RING_F_LOCK the new
 *  object is locked for its broker before anyone can see it sized.
 *  Returns 0, -EEXIST (exists and RC_RING_F_REPLACE not set, or another process created it
 *  meanwhile), -EINVAL (bad name or config), -EPERM (the object to replace is another user's
 *  or open to other users, as rc_ring_open), -EBUSY (a live broker holds it, as rc_ring_lock),
 *  -EACCES, -ENOMEM, ... On failure `err` (if not NULL) receives a readable message.
 *  Setup path; any thread. */
int rc_ring_create(const char *name, const rc_ring_config_t *cfg, rc_ring_t **out, char *err,
                   size_t errlen);

/** Like rc_ring_create, over the file at `path` (durable mode; same layout). */
int rc_ring_create_file(const char *path, const rc_ring_config_t *cfg, rc_ring_t **out,
                        char *err, size_t errlen);

/** Attaches to an existing ring by shm name, checking who may have used it, then the layout:
 *  -ENOENT (no such ring), -EACCES (permission denied), -EPERM (the object is not owned by
 *  this process's effective uid, or its mode gives group or other users access: whoever could
 *  open it could read the events and inject some, so it is refused even by root; the message
 *  names the object, its owner or mode, and the fix), RC_ERING_NOT_READY (creator has not
 *  finished: size 0 or version 0), RC_ERING_BAD_MAGIC (not a ring), RC_ERING_BAD_VERSION
 *  (other layout version), RC_ERING_TRUNCATED (object shorter than the header says),
 *  RC_ERING_CORRUPT (inconsistent header). `err` receives a message naming the ring and the
 *  problem. Every mapping is known to the SIGBUS guard (rc_ring_guard_sigbus). Any thread. */
int rc_ring_open(const char *name, rc_ring_t **out, char *err, size_t errlen);

/** Like rc_ring_open, for a ring file at `path`. */
int rc_ring_open_file(const char *path, rc_ring_t **out, char *err, size_t errlen);

/** Gives a ring file that is shorter than its header says (RC_ERING_TRUNCATED from
 *  rc_ring_open_file: a copy cut short, a file system that lost the file's end) its size back:
 *  the lost bytes of the record area read as zeros, which rc_ring_recover then finds and
 *  reports. Checks owner and mode as rc_ring_open_file, takes the broker lock for the change
 *  (-EBUSY when a broker holds it) and checks the header. `*was` and `*now` get the size before
 *  and after. Returns 0 (also when the file was not short), RC_ERING_TRUNCATED when the cut is
 *  inside the header or the reader and group tables (nothing to recover from), the codes of
 *  rc_ring_open_file, or -errno; `err` says which. Setup path. */
int rc_ring_extend_file(const char *path, uint64_t *was, uint64_t *now, char *err, size_t errlen);

/** Unmaps and frees the handle; the ring itself stays (see rc_ring_unlink). NULL is a no-op.
 *  Readers opened on the handle must be closed first. */
void rc_ring_close(rc_ring_t *ring);

/** Removes shm object `name` (existing mappings stay valid). Returns 0 or -errno. */
int rc_ring_unlink(const char *name);

/* ---- one broker per ring, and a ring that shrinks under its users ---------------------------- */

/** Takes the ring's broker lock: an exclusive flock(2) on the object, held until every
 *  descriptor of it that this process opened and its children inherited is closed (forked
 *  delivery workers keep it with the mapping, so a broker whose workers are still running still
 *  holds it). Records this process in the header so a refused broker can name the holder.
 *  Returns 0 (also when this handle holds it already); -EBUSY at once when the holder is a live
 *  process (or cannot be named); when the recorded holder is gone, its children still hold
 *  it: waits up to `wait_ns` for them to exit, then -EAGAIN; -ESTALE when the name now names
 *  another object (replaced while we attached: open again). `err` names the ring, the pid
 *  holding it and what to do. Setup path, before forking; any thread. */
int rc_ring_lock(rc_ring_t *ring, uint64_t wait_ns, char *err, size_t errlen);

/** Checks that the ring object still has the size this handle maps and is still the ring it
 *  opened (someone may have truncated or recreated it): 0, RC_ERING_TRUNCATED or
 *  RC_ERING_CORRUPT with a message naming the object. Cheap (one fstat); any thread. */
int rc_ring_check(rc_ring_t *ring, char *err, size_t errlen);

/** Installs, once per process, a SIGBUS handler for the pages of ring mappings: a ring object
 *  truncated by someone else makes the next access to a lost page fault; the handler then
 *  writes one line naming the ring, its mapped and current sizes and what to do, and ends the
 *  process with _exit(1) instead of a crash. Faults outside ring mappings (and SIGBUS sent by
 *  kill) go to the disposition that was in place before. Forked children inherit it. Returns 0
 *  or -errno. Call it from the main thread during setup (a broker, `ringcast tail`); a library
 *  user with its own SIGBUS handling may leave it out. */
int rc_ring_guard_sigbus(void);

/* ---- inspecting and removing (ringcast rings) ------------------------------------------------ */

/** What `ringcast rings ls` shows of a ring, read without the lock and without a reader slot. */
typedef struct {
    pid_t owner;         /* live process holding the broker lock, 0 when none (stale ring) */
    uint64_t oldest_seq; /* sequence numbers of the oldest and newest event still held; both */
    uint64_t newest_seq; /* meaningful only when `events` is 1 (a racing producer may move them) */
    int events;          /* 1 when the ring holds at least one event */
    int durable;         /* RC_RING_F_DURABLE: a file store */
} rc_ring_info_t;

/** Fills `info` for `ring` by plain loads (header, the oldest record-start hint, /proc): takes
 *  no lock, registers no reader, writes nothing, so a running broker is not disturbed. The
 *  owner is the lock holder the header names if that process lives, else the live process
 *  /proc/locks shows holding the lock. Any thread. */
void rc_ring_inspect(rc_ring_t *ring, rc_ring_info_t *info);

/** Removes shm ring `name` ("broker" or "/broker") the way a replacing creator does: only one
 *  this user owns and no live broker (or its workers) holds, checked under its lock, which is
 *  taken only for the removal. Returns 0, -ENOENT, -EBUSY (held; `err` names the pid), -EPERM,
 *  -EINVAL or -errno, with a message in `err`. Setup path. */
int rc_ring_remove(const char *name, char *err, size_t errlen);

/* ---- producing ------------------------------------------------------------------------------ */

/** One record of a batch claim: the caller sets len/type/flags, claim fills pos and data. */
typedef struct {
    uint32_t len;   /* payload bytes */
    uint16_t type;  /* >= RC_REC_TYPE_USER */
    uint16_t flags; /* 15 bits for the application */
    uint64_t pos;   /* out: record position (event offset) */
    void *data;     /* out: where to write the payload, inside the mapping */
} rc_ring_rec_t;

/** A claim in progress: filled by rc_ring_claim / rc_ring_claim_batch, consumed by commit or
 *  abort. Public fields are read-only for the caller. */
typedef struct {
    uint64_t pos;  /* position of the first record */
    uint64_t seq;  /* event sequence number of the first record (dense across producers) */
    void *data;    /* payload of the first record (write `len` bytes here) */
    uint32_t len;  /* payload bytes of the first record */
    uint32_t count; /* records in the claim */
    /* private */
    rc_ring_t *ring_;
    uint64_t word_; /* committed word of the first record */
    uint32_t bytes_; /* claimed bytes from pos */
    uint32_t pending_pid_;
    uint32_t pad_; /* padding this claim placed before pos, at the end of the area */
} rc_ring_claim_t;

/** Claims space for one record with `len` payload bytes and returns a pointer into the mapping
 *  (`claim->data`) where the caller writes the payload, then calls rc_ring_commit (or
 *  rc_ring_abort). Never blocks: RC_ERING_FULL when a lossless reader has not consumed the space
 *  yet (retry later, e.g. answer 429), RC_ERING_TOO_BIG when the record can never fit,
 *  -EINVAL for a type below RC_REC_TYPE_USER or flags above 15 bits, RC_ERING_NO_SLOT when
 *  the ring's producer-slot table (one slot per producing thread and handle) is full of live
 *  owners. Any thread, concurrently with other producers in this and other processes; not
 *  across fork() (open the ring again in the child). Keep the claim short: a claim pending
 *  longer than the ring's pad timeout whose process has died is padded over. */
int rc_ring_claim(rc_ring_t *ring, uint32_t len, uint16_t type, uint16_t flags,
                  rc_ring_claim_t *claim);

/** Claims contiguous space for `count` records at once (batch ingest). Fills recs[i].pos and
 *  recs[i].data. rc_ring_commit then publishes all of them together: readers see all or none
 *  (an abort, or a producer dying before commit, publishes none). Same codes as rc_ring_claim;
 *  RC_ERING_TOO_BIG when the batch exceeds the largest claim (capacity / 2). */
int rc_ring_claim_batch(rc_ring_t *ring, rc_ring_rec_t *recs, uint32_t count,
                        rc_ring_claim_t *claim);

/** Publishes the claimed record(s) (release order: everything written to `data` before the call
 *  is visible to a reader that sees the record) and wakes sleeping readers if any. Returns 0, or
 *  RC_ERING_SWEPT if a sweeper already padded over this claim (the events were NOT stored). */
int rc_ring_commit(rc_ring_claim_t *claim);

/** rc_ring_commit without the wake: sleeping readers are left asleep until this thread calls
 *  rc_ring_wake_sleepers. For a producer that commits a batch of requests in one turn of its
 *  loop: one wake at the end serves them all, where a wake per commit would have a reader
 *  woken, drained and asleep again several times per turn (each wake a FUTEX_WAKE and, for a
 *  reader on another CPU, an interrupt). Same returns as rc_ring_commit. */
int rc_ring_commit_quiet(rc_ring_claim_t *claim);

/** Wakes the readers asleep on `ring`, if any: after rc_ring_commit_quiet, from the thread that
 *  committed (its commits come before this in its order, which pairs with readers announcing
 *  their sleep). One shared load when no reader sleeps. Any thread. */
void rc_ring_wake_sleepers(rc_ring_t *ring);

/** Gives a claim up: its space becomes padding, readers skip it. Returns 0 or RC_ERING_SWEPT. */
int rc_ring_abort(rc_ring_claim_t *claim);

/* ---- metrics and liveness ------------------------------------------------------------------- */

typedef struct {
    uint64_t capacity;
    uint64_t head;          /* next position to be claimed */
    uint64_t head_seq;      /* next event sequence number */
    uint64_t tail;          /* slowest lossless reader's position (head when there is none) */
    uint64_t fill;          /* head - tail: bytes producers cannot reuse yet */
    uint32_t readers;       /* active reader slots (a dead reader's until it is reclaimed) */
    uint32_t lossless;      /* of which lossless */
    uint32_t sleepers;      /* 1 when some reader may be asleep on the futex */
    uint64_t swept;         /* claims padded over after their producer died */
    uint64_t reclaimed;     /* reader slots reclaimed from dead readers */
    uint64_t full;          /* claims refused because the ring was full */
} rc_ring_stats_t;

/** Fills `st` with a snapshot (plain loads; fields are individually consistent). Any thread;
 *  cheap enough for a metrics scrape (one pass over the reader slots). */
void rc_ring_stats(rc_ring_t *ring, rc_ring_stats_t *st);

/** The lossless reader that holds producers back: the one whose position is the ring's tail. */
typedef struct {
    char name[24];       /* its slot name: "feed~w0" (a broker worker's feed), "g:<group>" (a
                          * consumer group), or what the reader passed to rc_reader_open */
    uint32_t pid;        /* its owner process (for a group: one of its members) */
    uint32_t slot;       /* index in the slot table */
    uint64_t position;   /* its position: producers cannot reuse anything from here on */
    uint64_t lag_bytes;  /* head - position */
    uint64_t lag_events; /* events committed or claimed from its position to the head */
} rc_ring_slowest_t;

/** Fills `out` with the slowest lossless reader (the lowest position; the first slot on a tie)
 *  and how far it is behind the head. Returns 0, or -ENOENT when no lossless reader is
 *  attached (then nothing holds producers back but claims still being written). Plain loads,
 *  one pass over the slots: cheap enough for a metrics scrape. Any thread. */
int rc_ring_slowest(rc_ring_t *ring, rc_ring_slowest_t *out);

/** One attached reader as rc_ring_readers describes it. */
typedef struct {
    char name[24];       /* its slot name (as in rc_ring_slowest_t); "" for an unnamed reader */
    uint32_t pid;        /* its owner process */
    uint32_t slot;       /* index in the slot table */
    int lossless;        /* 1: holds producers back; 0: lossy (is overwritten when it lags) */
    uint64_t position;   /* where it reads (a lossy reader's last published position) */
    uint64_t lag_bytes;  /* head - position (0 when it is at or past the head read) */
    uint64_t lag_events; /* events from its position to the head (0 when unknown: the space
                          * there was reused meanwhile) */
} rc_ring_reader_info_t;

/** Describes the attached readers (active slots, in slot order): fills up to `max` entries of
 *  `out` and returns how many there are. Plain loads, one pass over the slots: cheap enough for
 *  a metrics scrape. Any thread. */
int rc_ring_readers(rc_ring_t *ring, rc_ring_reader_info_t *out, uint32_t max);

/** Next position to be claimed (one atomic load; for metrics and "latest"). Any thread. */
uint64_t rc_ring_head(const rc_ring_t *ring);

/** The head as one pair: the next position to be claimed and the sequence number its event
 *  gets (one 16-byte atomic read; a time index samples it). Any thread. */
void rc_ring_head_load(const rc_ring_t *ring, uint64_t *pos, uint64_t *seq);

/** Sleeps until the head's sequence number is no longer `seq` (an event was claimed since),
 *  up to `timeout_ns`, on the ring's futex as readers do: for a thread that learns from the
 *  ring when to look elsewhere (a redis group reader's watch, net/storage/storage_redis_group.c)
 *  and holds no reader slot. Returns 0, RC_ERING_EMPTY (timeout, or woken for another reason:
 *  look again) or -EINTR. Any thread. */
int rc_ring_wait_head(rc_ring_t *ring, uint64_t seq, int64_t timeout_ns);

/** Record area bytes. */
uint64_t rc_ring_capacity(const rc_ring_t *ring);

/** This ring's identity: a random nonzero number its creator chose, so a ring that replaced
 *  another of the same name is told from it (state kept beside a ring, such as saved cursors,
 *  records it). Any thread. */
uint64_t rc_ring_id(const rc_ring_t *ring);

/** Frees the slots of dead readers (pid gone or reused, heartbeat older than the heartbeat
 *  timeout) so they stop gating producers. Returns the number reclaimed. Producers call it
 *  themselves when they find the ring full; a supervisor may call it periodically. */
int rc_ring_reclaim(rc_ring_t *ring);

/** Like rc_ring_reclaim, without waiting out the heartbeat timeout: frees the slot of every
 *  reader whose process is gone, however recent its last heartbeat, except consumer groups'
 *  slots (their owner identity passes between members, so they keep the timeout). The
 *  heartbeat timeout protects a dead process's slot that its forked children still use (a
 *  broker's feeds, polled by its workers); those children hold the broker lock until they
 *  exit, so only the lock's holder may skip it. Returns the number reclaimed, or -EPERM when
 *  this handle does not hold the broker lock. Any thread. */
int rc_ring_reclaim_dead(rc_ring_t *ring);

/** Supervisor pass: reclaims dead readers, then pads over claims that block a reader and whose
 *  producer process is dead (or, if the claim never got a header, that have blocked longer than
 *  the pad timeout across calls on this handle). Returns the number of claims padded over.
 *  Readers do the same on their own while they wait. One thread per handle. */
int rc_ring_sweep(rc_ring_t *ring);

#ifdef __cplusplus
}
#endif

#endif
