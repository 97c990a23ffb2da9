/* Where a broker's events are kept: the one interface net/ uses to append events, read them
 * from a position, acknowledge them and keep cursors, whatever holds them. Three back ends
 * implement it (net/storage/storage_internal.h, modelled on the HTTP client's back ends): the
 * shared-memory ring (net/storage/storage_shm.c over shm/), the same ring in a file, with a
 * checksum per record and recovery at start (net/storage/storage_file.c, docs/durability.md),
 * and Redis Streams, whose commit completes when Redis acknowledges and whose events readers
 * read from a shm ring the store mirrors them into (net/storage/storage_redis.c,
 * docs/scaleout.md).
 *
 * Reads are zero-copy: a view points into the store's mapping and stays valid until its reader
 * acknowledges past it. Paths that need the ring itself, not this interface, and so include
 * shm/ headers in net/: the shm back end (storage_shm.c) and `ringcast tail`
 * (net/cli/cmd_tail.c), a local consumer that reads the ring as any other local reader does
 * (lossy readers and consumer groups, shm/reader.h and shm/group.h). */
#ifndef RC_NET_STORAGE_H
#define RC_NET_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

typedef struct rc_storage_s rc_storage_t;
typedef struct rc_storage_reader_s rc_storage_reader_t;

/** Which back end holds a broker's events. */
typedef enum {
    RC_STORAGE_SHM = 1,  /**< a shared-memory ring in /dev/shm: survives a broker crash */
    RC_STORAGE_FILE = 2, /**< a ring file in a directory: survives a broker crash and, with
                          *   its cursors beside it, the loss of /dev/shm (docs/durability.md) */
    RC_STORAGE_REDIS = 3, /**< Redis Streams, mirrored into a shm ring that readers use
                           *   (storage_redis.c, docs/scaleout.md) */
} rc_storage_kind_t;

/** When an accepted event is on disk (file stores; docs/durability.md). */
typedef enum {
    RC_STORAGE_DURABILITY_NONE = 0,  /**< the page cache: the kernel writes it back when it likes */
    RC_STORAGE_DURABILITY_BATCH = 1, /**< a flusher thread fdatasyncs at most every
                                      *   flush_interval_ms when something was committed */
    RC_STORAGE_DURABILITY_SYNC = 2,  /**< commit returns once the event is on disk (group
                                      *   commit: one fdatasync covers every commit before it) */
} rc_storage_durability_t;

/** What rc_storage_open needs. Strings are borrowed during the call. */
typedef struct {
    rc_storage_kind_t kind;
    const char *ns; /**< the broker's namespace and name (for names and messages) */
    const char *broker;
    const char *prefix;    /**< RC_STORAGE_SHM: the ring name prefix (net/storage/ring_name.h) */
    const char *directory; /**< RC_STORAGE_FILE: where the ring and cursor files are */
    rc_storage_durability_t durability; /**< RC_STORAGE_FILE */
    uint32_t flush_interval_ms;         /**< RC_STORAGE_DURABILITY_BATCH (0: 10 ms) */
    uint64_t capacity;                  /**< bytes of event space (a power of two) */
    uint32_t readers;                   /**< cursors and local readers it must hold at once */
    /* RC_STORAGE_REDIS (docs/scaleout.md): the server, its password (NULL or "": no AUTH), the
     * partition streams, XADD's MAXLEN ~ (0: none), and WAIT for replicas (0: none). */
    const char *redis_host;
    int redis_port;
    /* All of spec.redis.addresses (a Redis Cluster's seeds); 0 of them: redis_host:port. */
    const rc_config_redis_addr_t *redis_addresses;
    uint32_t redis_n_addresses;
    const char *redis_password;
    uint32_t redis_partitions;
    uint64_t redis_max_len;
    uint64_t redis_max_age_ms; /* spec.redis maxAge (0: none) */
    uint32_t redis_replicas;
    uint32_t redis_wait_timeout_ms;
} rc_storage_config_t;

/** Opens the broker's store: attaches to an existing one of the configured capacity (its
 *  events and cursors survive a restart), creates it otherwise, and logs which. A shm store of
 *  another capacity, or one it cannot use, is replaced; a file store is never replaced (its
 *  events would be lost): it is refused with a message saying what to do, and recovered
 *  (checked record by record, docs/durability.md) before this returns. Returns 0, or a
 *  negative code with `err` naming the problem. Main thread, before forking. */
int rc_storage_open(const rc_storage_config_t *cfg, rc_storage_t **out, char *err, size_t errlen);

/** Opens a second handle on the store `s` names, owned by the calling process: a forked worker
 *  appends through its own handle, so a worker that dies mid-append is cleaned up after.
 *  Returns 0 or a negative code with `err` filled. */
int rc_storage_attach(const rc_storage_t *s, rc_storage_t **out, char *err, size_t errlen);

/** Closes the handle; the store itself stays (others may have it open). NULL is a no-op. */
void rc_storage_close(rc_storage_t *s);

/* ---- appending ---------------------------------------------------------------------------- */

/** One record to append: `len` bytes of a core/record.h event record. rc_storage_claim sets
 *  `data` (where to encode it) and `pos` (its position). The layout is the shm ring's
 *  rc_ring_rec_t (checked in storage_shm.c), so a batch needs no conversion. A store that
 *  keeps a checksum per record computes it at commit and puts it after the `len` bytes. */
typedef struct {
    uint32_t len;
    uint16_t type_;  /* private: set by the store */
    uint16_t flags_; /* private */
    uint64_t pos;
    void *data;
} rc_storage_rec_t;

/** Space claimed for `count` records, all or nothing; write every record, then commit (or
 *  abort). Claims are not shared between threads. */
typedef struct {
    uint64_t pos; /**< position of the first record */
    uint64_t seq; /**< event sequence number of the first record */
    uint32_t count;
    uint32_t flags;  /**< set between claim and commit: RC_STORAGE_COMMIT_F_* (claim zeroes it) */
    uint64_t ticket; /**< RC_STORAGE_COMMIT_F_NOWAIT: set by the commit, for
                      *   rc_storage_durable_wait (0: nothing to wait for) */
    _Alignas(8) unsigned char priv_[80]; /* the back end's claim */
} rc_storage_claim_t;

/** Durability sync: the commit returns at once instead of waiting for the flush; the caller
 *  waits with rc_storage_durable_wait(claim.ticket) (the ingress holds its answer). A redis
 *  store's commit is the same: it returns once the XADDs are queued, and the wait ends when
 *  Redis answered them, with 0 or RC_ESTORE_UNAVAILABLE / RC_ESTORE_UNREPLICATED (nothing, or
 *  not enough, was stored: the ingress answers 503). */
#define RC_STORAGE_COMMIT_F_NOWAIT 0x1u
/** The commit leaves readers of this store that sleep asleep: the caller wakes them with
 *  rc_storage_wake once it has committed what its loop turn had (rc_ring_commit_quiet). A store
 *  whose readers are elsewhere (Redis) ignores it. */
#define RC_STORAGE_COMMIT_F_QUIET 0x2u

/** Claims room for `n` records (`recs[i].len` each) and sets each `recs[i].data`. Borrows
 *  `recs` until the commit or abort (a file store checksums the records then). Returns 0,
 *  RC_ERING_FULL (no room now: the caller answers 429 or retries later), RC_ERING_TOO_BIG (one
 *  record, or the batch, can never fit), -EINVAL. Any thread with its own handle or claims. */
int rc_storage_claim(rc_storage_t *s, rc_storage_rec_t *recs, uint32_t n,
                     rc_storage_claim_t *claim);

/** Makes the claimed records visible to readers, in order. Returns 0 or a store error (the
 *  records are then not stored). */
int rc_storage_commit(rc_storage_t *s, rc_storage_claim_t *claim);

/** Wakes this store's sleeping readers after commits made with RC_STORAGE_COMMIT_F_QUIET, from
 *  the thread that made them. Nothing to do for a store without local readers. */
void rc_storage_wake(rc_storage_t *s);

/** Gives the claimed space up (readers skip it). */
void rc_storage_abort(rc_storage_t *s, rc_storage_claim_t *claim);

/* ---- cursors -------------------------------------------------------------------------------- */

/** Where a new cursor starts. */
typedef enum {
    RC_STORAGE_FROM_LATEST = 0, /**< the next event appended */
    RC_STORAGE_FROM_OLDEST = 1, /**< the oldest event still kept */
    RC_STORAGE_FROM_AT = 2,     /**< `position`, a record start still kept */
} rc_storage_start_t;

typedef struct {
    const char *name; /**< up to 23 bytes; a cursor left behind is found by it */
    rc_storage_start_t start;
    uint64_t position;
    uint32_t flags; /**< RC_STORAGE_READER_F_* */
} rc_storage_reader_opts_t;

/** Reader flag: check each record's checksum (file stores keep one per record; shm stores
 *  none, so there is nothing to check). A record that fails is skipped, logged with its
 *  position and counted (rc_storage_stats_t.corrupt). Recovery checks every record at start
 *  anyway; this catches damage done to the file while the broker runs. */
#define RC_STORAGE_READER_F_VERIFY 1u

/** The ring record flag of a record that carries a checksum (file stores set it on every
 *  record): its payload is the record, then an 8-byte trailer: the CRC32C (core/crc32c.h) of
 *  the record's sequence number (8 bytes) followed by its bytes, then the record's length, both
 *  32-bit in host byte order like the record itself. Readers of the ring that do not know the
 *  flag still decode the record (core/record.h reads its own size). docs/ring.md. */
#define RC_STORAGE_REC_F_CRC   0x0001u
#define RC_STORAGE_CRC_TRAILER 8u

/** Checks one ring record's checksum: `data` and `len` its payload as the ring holds it,
 *  `flags` its ring flags, `seq` its sequence number. Returns 1 when it carries none, 0 when it
 *  matches, RC_EBAD_RECORD when it does not (or the trailer is not one); `*rec_len` (may be
 *  NULL) gets the record's own length (without a trailer). Any thread. */
int rc_storage_record_check(const void *data, uint32_t len, uint16_t flags, uint64_t seq,
                            uint32_t *rec_len);

/** One event as a cursor returns it, borrowed from the store until the cursor acknowledges a
 *  position past it. */
typedef struct {
    uint64_t pos;  /**< position (event offset) */
    uint64_t next; /**< position after it */
    uint64_t seq;  /**< event sequence number */
    const uint8_t *data;
    uint32_t len;
} rc_storage_view_t;

/** Opens a cursor: it reads every event from its start, and the store keeps every event it has
 *  not acknowledged (producers get RC_ERING_FULL rather than overwrite them). Returns 0,
 *  RC_ERING_NO_SLOT, RC_ERING_BAD_POS (FROM_AT at a position no longer kept), -ENOMEM. The
 *  handle may be inherited by forked children (they call rc_storage_resume). */
int rc_storage_reader_open(rc_storage_t *s, const rc_storage_reader_opts_t *o,
                           rc_storage_reader_t **out);

/** A reader of a consumer group that the store keeps itself, across nodes (redis stores: one
 *  Redis consumer group per trigger on each partition stream, docs/scaleout.md). Each event
 *  reaches one consumer of the group; its position is this node's own count (monotonic over
 *  the life of the process that opened it, shared with the processes it forks), not a place
 *  in the ring. */
typedef struct {
    const char *group;        /**< the group's name: the trigger's "namespace/name" */
    const char *consumer;     /**< this node's consumer name (stable across restarts) */
    rc_storage_start_t start; /**< where a group made now starts: LATEST or OLDEST, or
                               *   FROM_AT with `start_ms` (entries after that Unix time) */
    int64_t start_ms;
    uint32_t claim_idle_ms; /**< take over other consumers' entries idle longer (0: never) */
} rc_storage_group_opts_t;

/** Opens a reader of group o->group, creating the group when there is none (then it starts
 *  at o->start; an existing group keeps its own position). The reader connects in the process
 *  that polls it (a forked worker), so open it before forking. resume makes it read its
 *  consumer's pending entries (those read and not acknowledged by an earlier process) again
 *  first. Returns 0, -ENOTSUP (the store keeps no groups: use rc_storage_reader_open), or a
 *  negative code with `err` naming the problem. Main thread. */
int rc_storage_group_open(rc_storage_t *s, const rc_storage_group_opts_t *o,
                          rc_storage_reader_t **out, char *err, size_t errlen);

/** A group reader's counters, shared by every process with the reader (for /metrics). */
typedef struct {
    uint64_t pending; /**< entries of the group read and not acknowledged, by any node
                       *   (XPENDING, refreshed about every second by the reading process) */
    uint64_t claimed; /**< entries this node took over from other consumers (XAUTOCLAIM) */
    uint64_t acked;   /**< entries this node acknowledged (XACK) */
    uint64_t read;    /**< entries this node read (new, its own pending again, claimed) */
} rc_storage_group_stats_t;

/** Fills `st` when `r` is a group reader and returns 0; else -ENOTSUP. Any thread. */
int rc_storage_group_stats(const rc_storage_reader_t *r, rc_storage_group_stats_t *st);

/** Removes the cursor and frees the handle. NULL is a no-op. */
void rc_storage_reader_close(rc_storage_reader_t *r);

/** Frees the handle but keeps the cursor in the store, still holding its events, for the next
 *  broker process (rc_storage_find_cursor). NULL is a no-op. */
void rc_storage_reader_forget(rc_storage_reader_t *r);

/** Next event without blocking: 0, or RC_ERING_EMPTY. */
int rc_storage_poll(rc_storage_reader_t *r, rc_storage_view_t *v);

/** Like rc_storage_poll, waiting up to `timeout_ns`: 0, RC_ERING_EMPTY, -EINTR. */
int rc_storage_wait(rc_storage_reader_t *r, rc_storage_view_t *v, int64_t timeout_ns);

/** Acknowledges everything before `pos` (a position this cursor returned, or its current
 *  position): the store may drop those events. Returns 0 or -EINVAL. */
int rc_storage_ack(rc_storage_reader_t *r, uint64_t pos);

/** Position of the next event the cursor returns. */
uint64_t rc_storage_position(const rc_storage_reader_t *r);

/** The acknowledged position (as the store keeps it: valid in any process with the handle). */
uint64_t rc_storage_acked(const rc_storage_reader_t *r);

/** Moves the read position back to the acknowledged one: a process that inherited the cursor
 *  resumes where the acknowledgements of the last one ended. Returns 0. */
int rc_storage_resume(rc_storage_reader_t *r);

/** Finds a cursor named `name` that a process now gone left in the store and returns its
 *  acknowledged position. Returns 0 or -ENOENT. */
int rc_storage_find_cursor(rc_storage_t *s, const char *name, uint64_t *pos);

/** Drops cursors and readers of processes that are gone. Returns how many, or a negative code. */
int rc_storage_reclaim(rc_storage_t *s);

/* ---- saved cursors -------------------------------------------------------------------------- */

/* A store keeps, beside its events, a table of saved cursors: one slot per named consumer (a
 * trigger, a feed), found again by name by the next broker process. The table lives as long as
 * the events it points into and no longer: a store that replaced another (a ring of another
 * size, say) starts with an empty one. It is memory shared by every process that has it open,
 * so a consumer moves its cursor with plain atomic stores, as cheap as a store into the broker's
 * own memory. */

/** Longest slot name, without the NUL. */
#define RC_STORAGE_CURSOR_NAME_MAX 127

/** One saved cursor. Every event below `seq` (the store's event sequence number, at position
 *  `pos`) is finished for the consumer the slot is named after. `link` is the owner's to use
 *  (the delivery supervisor: 1 + the slot of the feed a trigger follows while it is idle,
 *  docs/delivery.md). seq, pos and link are written by one process at a time, the slot's
 *  owner, with atomic stores, and read by any; the name is written by whoever takes the slot,
 *  before anyone else can find it. */
typedef struct {
    _Atomic uint64_t seq;
    _Atomic uint64_t pos;
    _Atomic uint32_t link;
    uint32_t reserved_;
    uint8_t pad_[40];
    char name[RC_STORAGE_CURSOR_NAME_MAX + 1];
} rc_storage_cursor_t;

typedef struct rc_storage_cursors_s rc_storage_cursors_t;

/** Opens the store's cursor table with room for at least `slots` cursors, creating it when
 *  there is none. `*adopted` is 1 when it holds the cursors an earlier process saved for this
 *  store, 0 when it starts empty (there was none, it belonged to a store this one replaced, or
 *  it named positions this store never had: the last two are logged). Returns 0, or a negative
 *  code with `err` naming the problem (-EPERM: the table is another user's or open to other
 *  users, who could make consumers skip events with it). The mapping is inherited by
 *  forked children, which use the slots but never take or drop one. Main thread, before
 *  forking. */
int rc_storage_cursors_open(rc_storage_t *s, uint32_t slots, rc_storage_cursors_t **out,
                            int *adopted, char *err, size_t errlen);

/** Unmaps the table; the saved cursors stay for the next process. NULL is a no-op. */
void rc_storage_cursors_close(rc_storage_cursors_t *t);

/** The cursor saved under `name`, or NULL. */
rc_storage_cursor_t *rc_storage_cursor_find(rc_storage_cursors_t *t, const char *name);

/** The cursor saved under `name`; when there is none, a free slot is named so, with seq, pos
 *  and link 0, and `*fresh` (may be NULL) is set to 1. Returns NULL when the table is full or
 *  the name too long. Only while no other process uses the table's slots. */
rc_storage_cursor_t *rc_storage_cursor_take(rc_storage_cursors_t *t, const char *name, int *fresh);

/** Frees the slot: its cursor is forgotten. Only while no other process uses it. */
void rc_storage_cursor_drop(rc_storage_cursors_t *t, rc_storage_cursor_t *c);

/** Walks the saved cursors: the first one after `prev` (NULL: the first of all), or NULL. */
rc_storage_cursor_t *rc_storage_cursor_next(rc_storage_cursors_t *t, rc_storage_cursor_t *prev);

/** The slot's number in its table (what `link` fields hold), and the slot with number `i`
 *  (NULL when free or out of range). */
uint32_t rc_storage_cursor_index(const rc_storage_cursors_t *t, const rc_storage_cursor_t *c);
rc_storage_cursor_t *rc_storage_cursor_at(rc_storage_cursors_t *t, uint32_t i);

/* ---- waking an owner that sleeps elsewhere -------------------------------------------------- */

/* An owner that sleeps in its own wait (a worker sleeps in its HTTP client's io_uring or epoll
 * wait) learns that events arrived in one of two ways: it sleeps on the store's futex word
 * itself, where its wait can (rc_storage_prepare_sleep with io_uring's futex waits), or a watch
 * thread sleeps in the store for it and signals it. */

/** After rc_storage_poll found nothing and before the owner sleeps: makes the next event
 *  stored wake a futex word and returns it. Returns 0 with `*word` (a shared 32-bit futex
 *  word) and `*val`: sleep while *word holds *val, until a FUTEX_WAKE on it (e.g. with
 *  rc_http_client_wake_on_futex). Returns 1 when an event arrived meanwhile (poll instead, do
 *  not sleep), -ENOTSUP when the store has no such word (use a watch). Call it before every
 *  sleep: it also does what a sleeping reader owes the store (heartbeat, clearing the way
 *  after a dead producer). Owner's thread. */
int rc_storage_prepare_sleep(rc_storage_reader_t *r, const uint32_t **word, uint32_t *val);

/** A helper thread that sleeps in the store on behalf of a cursor's owner, so that the owner
 *  can sleep on something else (a worker sleeps in its HTTP client's io_uring or epoll wait)
 *  and still learn at once that events arrived. */
typedef struct rc_storage_watch_s rc_storage_watch_t;

/** Called on the watch's thread when the cursor has an event to read. It must only signal
 *  the owner (write an eventfd, rc_http_client_wake): never touch the cursor. */
typedef void (*rc_storage_wake_cb)(void *arg);

/** Starts a watch on `r` that calls `wake(arg)` once per rc_storage_watch_arm, when an event
 *  can be read at the position the cursor had then. The thread blocks every signal. Borrows
 *  `r` until rc_storage_watch_stop. Returns 0, -ENOMEM, or a pthread_create error (negative).
 *  The owner's thread. */
int rc_storage_watch_start(rc_storage_reader_t *r, rc_storage_wake_cb wake, void *arg,
                           rc_storage_watch_t **out);

/** The owner is about to sleep, having polled `r` to RC_ERING_EMPTY: the next event stored
 *  at its read position calls `wake` (at once if one already is). Free when already armed at
 *  that position, one futex wake when the watch fired since it was last armed. Owner's
 *  thread. */
void rc_storage_watch_arm(rc_storage_watch_t *w);

/** Stops the thread and frees the watch; `wake` is not called after it returns. NULL is a
 *  no-op. Owner's thread. */
void rc_storage_watch_stop(rc_storage_watch_t *w);

/* ---- durability sync: waiting for a commit to be on disk ----------------------------------- */

/** A wait for one commit's flush (caller's memory, untouched by the store after `done`). */
typedef struct rc_storage_durable_s {
    uint64_t ticket;                                      /**< the commit's claim.ticket */
    void (*done)(struct rc_storage_durable_s *w, int rc); /**< the flusher's thread: 0, or the
                                                           *   fdatasync failure (-EIO...) */
    struct rc_storage_durable_s *next;                    /* the store's */
} rc_storage_durable_t;

/** Asks for w->done once the commit w->ticket is on disk. Returns 1 when it already is (or
 *  the store does not flush: done is not called), 0 when queued, or the store's sticky
 *  fdatasync failure (done not called). done is not called after rc_storage_close. Any
 *  thread. */
int rc_storage_durable_wait(rc_storage_t *s, rc_storage_durable_t *w);

/** Makes durable what this handle committed without a flusher to wait for: a forked worker's
 *  handle (rc_storage_attach) of a durability-sync file store, whose commits (replies, dead
 *  letters) return at once. Runs one fdatasync when the handle committed since the last one,
 *  covering all of those commits; else returns at once. Returns 0, or the first fdatasync
 *  failure (-EIO...), sticky: after it the handle's commits are never known durable. Other
 *  stores and modes: 0 (their commits are as durable as they get when commit returns). Blocks
 *  the caller for the fdatasync; one thread per handle. */
int rc_storage_sync(rc_storage_t *s);

/* ---- replay: where an arrival time is in the store (docs/durability.md, "Replay") ---------- */

/** What rc_storage_seek_time found. */
typedef struct {
    uint64_t pos, seq;   /**< where to start: the first event (by sequence number) whose
                          *   arrival is at or after the time; the end of the store when none */
    int found;           /**< 1: an event with such an arrival is held (pos, seq, arrival_ns) */
    int64_t arrival_ns;  /**< its knativearrivaltime */
    int before_oldest;   /**< the time is before the oldest event held: the seek started there */
    uint64_t oldest_seq; /**< with before_oldest: that event's sequence number (> 0: events
                          *   before it were overwritten or cut) */
    int indexed;         /**< 1: the time index gave the start of the scan; 0: it scanned from
                          *   the oldest event (no index, no sample old enough, or a damaged
                          *   index, which is logged) */
    uint64_t scanned;    /**< records the scan decoded */
} rc_storage_seek_t;

/** Finds the first event, by sequence number, whose knativearrivaltime is at or after `t_ns`
 *  (Unix ns; INT64_MIN: the oldest event held), with the time index and a short scan. Events
 *  without an arrival time are passed over. Returns 0 (also when none is found) or a negative
 *  code (-ENOMEM, RC_ERING_NO_SLOT: the scan needs a reader slot). Any thread; never blocks
 *  producers. */
int rc_storage_seek_time(rc_storage_t *s, int64_t t_ns, rc_storage_seek_t *out);

/* ---- lossy looks: a sample of recent events, one event by position ------------------------ */

/* What the admin API reads while the broker runs (docs/dashboard.md): a lossy reader copies
 * each record out and re-validates it, so these never hold producers back, and a record being
 * overwritten is skipped, never returned torn. */

/** Called for each event of a scan: `v` (its data a copy, valid during the call; a file store's
 *  checksum trailer left out, the checksum checked) is an event record (core/record.h). Return
 *  0 to go on, anything else to stop the scan. */
typedef int (*rc_storage_scan_cb)(void *arg, const rc_storage_view_t *v);

/** How a scan went. */
typedef struct {
    uint64_t scanned;  /**< events passed to the callback */
    uint64_t lost;     /**< events producers overwrote before the scan read them */
    uint64_t corrupt;  /**< records whose checksum did not match (skipped) */
    int from_oldest;   /**< 1: it started at the oldest event held (nothing older was missed) */
    uint64_t head_seq; /**< the head's sequence number when it started: it stops there */
} rc_storage_scan_t;

/** Reads the events from the newest time-index sample at or before `since_ns` (Unix ns;
 *  INT64_MIN, no such sample or one no longer held: the oldest event held) up to the head as it
 *  was when the scan started, at most `max` of them, with a lossy reader. Returns 0 (also when
 *  the callback stopped it), RC_ERING_NO_SLOT (every reader slot is taken), -ENOMEM,
 *  -ENOTSUP (a store that cannot), -EINVAL. Any thread. */
int rc_storage_scan(rc_storage_t *s, int64_t since_ns, uint64_t max, rc_storage_scan_cb cb,
                    void *arg, rc_storage_scan_t *out);

/** Copies the event at position `pos` whose sequence number is `seq` into `buf` (`cap` bytes,
 *  8-byte aligned) with a lossy reader: 0 and `*len`; -ENOENT when the store no longer holds
 *  it (overwritten, or `pos` never was that event's); -ENOBUFS with `*len` the room needed;
 *  RC_ERING_NO_SLOT, -ENOTSUP, -EINVAL. Any thread. */
int rc_storage_read_at(rc_storage_t *s, uint64_t pos, uint64_t seq, void *buf, size_t cap,
                       size_t *len);

/* ---- state -------------------------------------------------------------------------------- */

typedef struct {
    uint64_t capacity;
    uint64_t head;          /**< next position to be appended */
    uint64_t head_seq;      /**< next event sequence number (events ever appended) */
    uint64_t used;          /**< bytes held for the slowest cursor */
    uint32_t readers;       /**< cursors and local readers */
    uint32_t lossless;      /**< of which hold events back */
    const char *kind;       /**< "memory" (a shm ring), "file" or "redis" */
    const char *durability; /**< "none", "batch" or "sync" ("redis": acknowledged by Redis) */
    uint64_t file_bytes;    /**< size of the ring file (file stores), else 0 */
    uint64_t corrupt;       /**< corrupt records found: at start (recovery) and by verifying
                             *   readers of this process */
    uint64_t fsyncs;        /**< fdatasyncs of the ring file done by this process */
    uint64_t fsync_ns;      /**< the time they took, summed */
    uint64_t durable_seq;   /**< events known on disk (batch, sync): head_seq when flushed */
    /* redis stores (docs/scaleout.md), counted by this process: events Redis acknowledged
     * and events refused (503), events the mirror copied into the ring and entries it skipped
     * (not a ringcast record, or larger than the ring) */
    uint64_t redis_acked, redis_refused, mirrored, mirror_skipped;
    /* the mirror's lag (entries in the streams not in the ring yet, how long the oldest has
     * waited), entries Redis trimmed before it copied them, entries maxAge trimmed */
    uint64_t mirror_lag_entries, mirror_lag_ms, mirror_trimmed, redis_aged;
    int redis_down; /* 1 while its connection is down or its last append was refused: the
                     * ingress answers 503 (/readyz and the Broker's status say so) */
} rc_storage_stats_t;

/** Reads the store's counters (relaxed: a consistent snapshot is not promised). Any thread. */
void rc_storage_stats(rc_storage_t *s, rc_storage_stats_t *st);

/* ---- lag: who holds producers back, consumer groups ---------------------------------------- */

/** The cursor or local reader whose position is the store's tail: what a full store waits for. */
typedef struct {
    char name[24];       /**< a worker's feed "feed~w<N>", a consumer group "g:<name>", or the
                          *   name a local reader gave; "" when none */
    uint32_t pid;        /**< its process (a group: one of its members') */
    uint64_t lag_bytes;  /**< head - its position: the space it holds */
    uint64_t lag_events; /**< events from its position to the head */
    uint64_t refused;    /**< appends refused so far because the store was full (all causes) */
} rc_storage_holder_t;

/** Fills `out` with the slowest cursor or reader. Returns 0, or -ENOENT when none holds events
 *  back (`refused` is set either way). Any thread; cheap enough for a metrics scrape. */
int rc_storage_holder(rc_storage_t *s, rc_storage_holder_t *out);

/** A local reader of the store: a program attached to its ring directly (`ringcast tail`, an
 *  SDK consumer), not a worker's feed or a consumer group. */
typedef struct {
    char name[24];       /**< the name it gave ("" when none) */
    uint32_t pid;        /**< its process */
    uint32_t slot;       /**< its slot: tells unnamed readers apart */
    int lossless;        /**< 1: holds producers back; 0: lossy */
    uint64_t lag_bytes;  /**< head - its position */
    uint64_t lag_events; /**< events from its position to the head (0: unknown) */
} rc_storage_local_reader_t;

/** Describes up to `max` local readers in `out`; returns how many there are (feeds and groups
 *  are not counted), or a negative code. Any thread; cheap enough for a metrics scrape. */
int rc_storage_readers(rc_storage_t *s, rc_storage_local_reader_t *out, size_t max);

/** One consumer group of the store (competing local readers: `ringcast tail --group`). */
typedef struct {
    char name[32];
    uint32_t members;
    uint64_t lag_bytes; /**< head - its position */
    uint64_t limit;     /**< its own lag limit in bytes; 0 = the default given to
                         *   rc_storage_groups; UINT64_MAX = block */
    uint64_t lagged;    /**< events it skipped (dropped) past its lag limit since it was made */
} rc_storage_group_t;

/** Applies the lag limit of the store's consumer groups (a group's own, else `default_limit`
 *  bytes; 0 = none, they hold producers back as long as they lag): a group further behind
 *  skips to the limit and its skipped events are dropped and counted. Then describes up to
 *  `max` groups in `out` and sets `*skipped` (may be NULL) to the events skipped now. Returns
 *  how many groups there are, or a negative code. One thread per store (the broker's timer). */
int rc_storage_groups(rc_storage_t *s, uint64_t default_limit, uint64_t *skipped,
                      rc_storage_group_t *out, size_t max);

#endif
