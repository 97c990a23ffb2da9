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
#define RC_RING_F_REPLACE 1u /* create: replace an existing object/file of that name */
#define RC_RING_F_DURABLE 2u /* recorded in the header by rc_ring_create_file */

typedef struct {
    uint64_t capacity;             /* record area bytes, power of two, >= 64 KiB; default 64 MiB */
    uint32_t reader_slots;         /* default 64, at most 4096 */
    uint32_t max_record;           /* largest record incl. header; default min(capacity/4, 16 MiB) */
    uint64_t heartbeat_timeout_ns; /* default 2 s */
    uint64_t pad_timeout_ns;       /* default 1 s */
    uint32_t flags;                /* RC_RING_F_* */
    mode_t mode;                   /* permission bits; default 0600 */
} rc_ring_config_t;

/** Fills `cfg` with the defaults above. */
void rc_ring_config_init(rc_ring_config_t *cfg);

/** Creates a ring as POSIX shm object `name` ("broker" or "/broker"; at most 62 characters, no
 *  further '/'), maps it and returns the handle in `*out`. The layout version is written last,
 *  so openers never see a half-initialised ring as ready. `cfg` may be NULL (defaults).
 *  Returns 0, -EEXIST (exists and RC_RING_F_REPLACE not set), -EINVAL (bad name or config),
 *  -EACCES, -ENOMEM, ... On failure `err` (if not NULL) receives a readable message.
 *  Setup path; any thread. */
int rc_ring_create(const char *name, const rc_ring_config_t *cfg, rc_ring_t **out, char *err,
                   size_t errlen);

/** Like rc_ring_create, over the file at `path` (durable mode; same layout). */
int rc_ring_create_file(const char *path, const rc_ring_config_t *cfg, rc_ring_t **out,
                        char *err, size_t errlen);

/** Attaches to an existing ring by shm name, checking the layout: -ENOENT (no such ring),
 *  -EACCES (permission denied), RC_ERING_NOT_READY (creator has not finished: size 0 or version
 *  0), RC_ERING_BAD_MAGIC (not a ring), RC_ERING_BAD_VERSION (other layout version),
 *  RC_ERING_TRUNCATED (object shorter than the header says), RC_ERING_CORRUPT (inconsistent
 *  header). `err` receives a message naming the ring and the problem. Any thread. */
int rc_ring_open(const char *name, rc_ring_t **out, char *err, size_t errlen);

/** Like rc_ring_open, for a ring file at `path`. */
int rc_ring_open_file(const char *path, rc_ring_t **out, char *err, size_t errlen);

/** Unmaps and frees the handle; the ring itself stays (see rc_ring_unlink). NULL is a no-op.
 *  Readers opened on the handle must be closed first. */
void rc_ring_close(rc_ring_t *ring);

/** Removes shm object `name` (existing mappings stay valid). Returns 0 or -errno. */
int rc_ring_unlink(const char *name);

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

/** Gives a claim up: its space becomes padding, readers skip it. Returns 0 or RC_ERING_SWEPT. */
int rc_ring_abort(rc_ring_claim_t *claim);

/* ---- metrics and liveness ------------------------------------------------------------------- */

typedef struct {
    uint64_t capacity;
    uint64_t head;          /* next position to be claimed */
    uint64_t head_seq;      /* next event sequence number */
    uint64_t tail;          /* slowest lossless reader's position (head when there is none) */
    uint64_t fill;          /* head - tail: bytes producers cannot reuse yet */
    uint32_t readers;       /* active reader slots */
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

/** Next position to be claimed (one atomic load; for metrics and "latest"). Any thread. */
uint64_t rc_ring_head(const rc_ring_t *ring);

/** Record area bytes. */
uint64_t rc_ring_capacity(const rc_ring_t *ring);

/** Frees the slots of dead readers (pid gone or reused, heartbeat older than the heartbeat
 *  timeout) so they stop gating producers. Returns the number reclaimed. Producers call it
 *  themselves when they find the ring full; a supervisor may call it periodically. */
int rc_ring_reclaim(rc_ring_t *ring);

/** Supervisor pass: reclaims dead readers, then pads over claims that block a reader and whose
 *  producer process is dead (or, if the claim never got a header, that have blocked longer than
 *  the pad timeout across calls on this handle). Returns the number of claims padded over.
 *  Readers do the same on their own while they wait. One thread per handle. */
int rc_ring_sweep(rc_ring_t *ring);

#ifdef __cplusplus
}
#endif

#endif
