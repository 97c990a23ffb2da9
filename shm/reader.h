/* Reading a ringcast ring (the rc_reader_* API for workers and local consumers).
 *
 * A reader holds a slot in the ring's header (pid, start time, heartbeat, position, name, mode).
 *  - Lossless readers gate producers: nothing they have not consumed is overwritten. Views point
 *    into the mapping (zero copy) and stay valid until the next poll/wait on the same reader.
 *  - Lossy readers never slow producers. They copy each record into a private buffer and
 *    re-validate it, so they never return torn data; when lapped they skip to the oldest record
 *    still intact and report exactly how many events they lost.
 * A reader handle is used by one thread at a time. */
#ifndef RC_SHM_READER_H
#define RC_SHM_READER_H

#include <stdint.h>

#include "shm/ring.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rc_reader_s rc_reader_t;

typedef enum {
    RC_READER_LOSSLESS = 1,
    RC_READER_LOSSY = 2,
} rc_reader_mode_t;

typedef enum {
    RC_START_OLDEST = 0, /* oldest record still retained (lossless: the slowest lossless reader's
                          * position; otherwise the oldest record-start hint still intact) */
    RC_START_LATEST = 1, /* the next record to be committed after the reader joined */
    RC_START_AT = 2,     /* opts.position, a saved position (a record start, e.g. view.next) */
} rc_reader_start_t;

typedef struct {
    rc_reader_mode_t mode;
    rc_reader_start_t start;
    uint64_t position; /* for RC_START_AT */
    const char *name;  /* shown in the slot table; may be NULL; truncated to 23 bytes */
    uint32_t spin;     /* polls rc_reader_wait spins before sleeping; 0 = default (4000) */
    uint32_t linger_ns; /* after a futex sleep ends, wait this long before reading, so records
                         * committed meanwhile come in one batch: fewer wakeups (and CPU) per
                         * event under load, up to linger_ns more latency (like Kafka's
                         * fetch.max.wait.ms); 0 = read at once. At most 100 ms. */
    uint32_t flags;    /* RC_READER_F_* */
} rc_reader_opts_t;

/* Flags for rc_reader_opts_t.flags. */
#define RC_READER_F_MANUAL_ACK 1u /* lossless only: polls never publish the position; the slot
                                   * gates producers at what rc_reader_ack says, so views stay
                                   * valid until acknowledged (several records in flight). */

typedef struct {
    uint64_t pos;     /* record position = event offset */
    uint64_t next;    /* position after this record (resume here to not see it again) */
    uint64_t seq;     /* event sequence number */
    uint64_t lost;    /* lossy: events lost right before this one (0 for lossless) */
    const void *data; /* payload: lossless in the mapping, lossy in the reader's buffer */
    uint32_t len;     /* payload bytes */
    uint16_t type;
    uint16_t flags;
} rc_ring_view_t;

/** Takes a reader slot in `ring` and returns the reader in `*out`. Returns 0, RC_ERING_NO_SLOT
 *  (all slots taken by live readers), RC_ERING_BAD_POS (RC_START_AT with a position that is not
 *  a record start still retained, or beyond the head), -EINVAL (bad options), -ENOMEM.
 *  Borrows `ring` until rc_reader_close. Any thread. */
int rc_reader_open(rc_ring_t *ring, const rc_reader_opts_t *opts, rc_reader_t **out);

/** Releases the slot (a lossless reader stops gating) and frees the reader. NULL is a no-op. */
void rc_reader_close(rc_reader_t *r);

/** Frees the handle but leaves its slot in the ring, still gating at its published position:
 *  a manual-ack reader whose cursor should outlive this process (rc_reader_find_orphan finds
 *  it once the process is gone; until then or until it is reclaimed, it holds producers back).
 *  NULL is a no-op. */
void rc_reader_forget(rc_reader_t *r);

/** Returns the next committed record in `*v` without blocking: 0, or RC_ERING_EMPTY when there
 *  is none yet. The previous view of this reader becomes invalid (its space is released to
 *  producers). Skips padding; pads over a claim whose producer died (see rc_ring_sweep). */
int rc_reader_poll(rc_reader_t *r, rc_ring_view_t *v);

/** Like rc_reader_poll but waits up to `timeout_ns` (< 0: forever): spins `spin` polls, then
 *  sleeps on the ring's futex (producers wake it only when someone sleeps). Returns 0,
 *  RC_ERING_EMPTY on timeout, or -EINTR when a signal interrupted the sleep. An event loop
 *  (libuv) that must not block calls it with a short timeout from a timer or a helper thread,
 *  or calls rc_reader_poll and re-arms a timer on RC_ERING_EMPTY. */
int rc_reader_wait(rc_reader_t *r, rc_ring_view_t *v, int64_t timeout_ns);

/** Sleeps until a poll of `r` at position `pos` would return something: a record is committed
 *  at `pos` (or padding, or producers lapped a lossy reader there). For an owner that sleeps
 *  somewhere else (an io_uring or epoll wait): a helper thread calls this with the position
 *  the owner found empty and then wakes the owner. It touches only the ring and a part of `r`
 *  the owner's calls leave alone, so it may run on another thread while the owner polls `r`
 *  (one such thread per reader). Like rc_reader_wait it raises the ring's sleepers flag, so a
 *  commit wakes it, refreshes the slot's heartbeat, and every 50 ms pads over a claim whose
 *  producer died at `pos`.
 *  Returns 0 (readable), RC_ERING_EMPTY when `timeout_ns` (< 0: none) passed or the ring was
 *  woken for something else (a commit at another position, rc_reader_wake): the caller checks
 *  what it waits for and calls again. -EINTR when a signal interrupted the sleep. */
int rc_reader_wait_past(rc_reader_t *r, uint64_t pos, int64_t timeout_ns);

/** Wakes every thread sleeping on r's ring (rc_reader_wait, rc_reader_wait_past,
 *  rc_group_wait; in every process): each looks again and goes back to sleep or returns. It
 *  ends a helper thread's rc_reader_wait_past at once, e.g. to stop it. Any thread. */
void rc_reader_wake(const rc_reader_t *r);

/** The first half of rc_reader_wait for a caller that sleeps in its own event loop, on the
 *  ring's futex word (io_uring's IORING_OP_FUTEX_WAIT, or futex(2)), after a poll found
 *  nothing: refreshes the heartbeat, pads over a claim whose producer died at the reader's
 *  position, raises the sleepers flag so the next commit wakes the word, and re-checks.
 *  Returns 0 with `*word` (a shared 32-bit futex word in the mapping) and `*val`: sleep while
 *  *word holds *val, until a FUTEX_WAKE on it (every change comes with one). Returns 1 when a
 *  record arrived meanwhile: poll instead. Call it before every sleep, with the same thread
 *  rules as rc_reader_poll. */
int rc_reader_prepare_sleep(rc_reader_t *r, const uint32_t **word, uint32_t *val);

/** Position of the next record this reader will return (save it to resume with RC_START_AT). */
uint64_t rc_reader_position(const rc_reader_t *r);

/** Manual-ack readers: publishes `pos` as the slot's position (everything before it is done;
 *  producers may reuse that space). `pos` must be a record start this reader returned (a
 *  view's pos or next) or its current position, at or after the last acknowledged one, at or
 *  before rc_reader_position. Returns 0 or -EINVAL (not manual, or out of that range). */
int rc_reader_ack(rc_reader_t *r, uint64_t pos);

/** The position published in the reader's slot (what gates producers): for a manual-ack reader
 *  the last acknowledged position. Reads shared memory: valid from any process that inherited
 *  the handle. */
uint64_t rc_reader_acked(const rc_reader_t *r);

/** Manual-ack readers: moves the read position back to the slot's published position, so the
 *  next poll returns the oldest unacknowledged record again. A worker process that inherited
 *  the handle through fork() (the slot stays owned by the parent, which keeps it alive across
 *  the worker's crashes) calls it before its first poll to resume where the last worker's
 *  acknowledgements ended. Returns 0 or -EINVAL (not manual). */
int rc_reader_resume(rc_reader_t *r);

/** Finds a lossless reader slot named `name` (as rc_reader_opts_t.name stored it) whose owner
 *  process is dead, e.g. a trigger's cursor left by a previous broker process, and returns its
 *  position in `*pos` (a record start to reopen at with RC_START_AT; the dead slot keeps gating
 *  until it is reclaimed). Returns 0 or -ENOENT. Any thread. */
int rc_reader_find_orphan(rc_ring_t *ring, const char *name, uint64_t *pos);

/** Events this (lossy) reader lost in total so far. */
uint64_t rc_reader_lost(const rc_reader_t *r);

/** Index of the reader's slot in the ring's slot table. */
uint32_t rc_reader_slot(const rc_reader_t *r);

/** Refreshes the slot's heartbeat. Polls do it on their own every few thousand calls and before
 *  sleeping; a reader that holds a view for a long time without polling calls it. */
void rc_reader_heartbeat(rc_reader_t *r);

#ifdef __cplusplus
}
#endif

#endif
