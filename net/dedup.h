/* Deduplication at the ingress (docs/delivery.md, "Deduplication"): a broker with
 * `ringcast.dev/dedup-window` remembers the (source, id) of every event it accepted within the
 * window, and an event it sees again within it gets its 202 without being stored a second
 * time: what a producer that retries after a lost 202 needs.
 *
 * A key is a 128-bit fingerprint of (source, id) under a seed chosen at random per process (two
 * keys that differ collide with a probability of about n^2 / 2^129 for n keys held, and nobody
 * outside the process can aim at the index); the table holds at most `capacity` keys, oldest
 * first out: a FIFO of fixed entries and an open-addressing index over it, both allocated once.
 * When it is full, the oldest key goes before its window ends (counted: the window that holds is
 * then shorter, and the metrics say so). One mutex per table: every ingress loop of the broker
 * uses it, for a few hundred nanoseconds per event. */
#ifndef RC_NET_DEDUP_H
#define RC_NET_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

typedef struct rc_dedup_s rc_dedup_t;

/** Keys held when the config gives no capacity: the window times this many events per second,
 *  within [RC_DEDUP_MIN_KEYS, RC_DEDUP_DEFAULT_MAX_KEYS]. */
#define RC_DEDUP_DEFAULT_RATE     1000u
#define RC_DEDUP_MIN_KEYS         1024u
#define RC_DEDUP_DEFAULT_MAX_KEYS (4u << 20)
/** Bytes per key held (FIFO entry and index slots): for sizing. */
#define RC_DEDUP_BYTES_PER_KEY 48u

/** One event's key. */
typedef struct {
    uint64_t a, b;
} rc_dedup_key_t;

/** What the table counted (plain loads; fields individually consistent). */
typedef struct {
    uint64_t capacity;   /* keys it can hold */
    uint64_t keys;       /* keys held now (expired ones go at the next use) */
    uint64_t duplicates; /* events answered as duplicates */
    uint64_t evicted;    /* keys that left before their window ended (the table was full) */
    int64_t oldest_ns;   /* arrival of the oldest key held (0: none): the window that holds */
    uint64_t window_ns;
} rc_dedup_stats_t;

/** Makes a table for `window_ns` (> 0) holding at most `capacity` keys (0: the default for the
 *  window). Returns 0 and *out, or -ENOMEM / -EINVAL. */
int rc_dedup_open(uint64_t window_ns, uint64_t capacity, rc_dedup_t **out);

void rc_dedup_close(rc_dedup_t *d);

/** The key of (source, id) in this process. */
rc_dedup_key_t rc_dedup_key(const rc_dedup_t *d, rc_str_t source, rc_str_t id);

/** Whether `k` was remembered within the window before `now_ns` (Unix ns). When it was, counts
 *  a duplicate and sets *ticket (may be NULL) to the durability ticket it was stored with (0:
 *  nothing to wait for), so the duplicate's answer can wait for the same flush. Any thread. */
int rc_dedup_seen(rc_dedup_t *d, rc_dedup_key_t k, int64_t now_ns, uint64_t *ticket);

/** Remembers `k` as accepted at `arrival_ns` (Unix ns) with durability ticket `ticket`. A key
 *  already held is kept as it is. Keys must come in about arrival order: the table expires
 *  them oldest first. Any thread. */
void rc_dedup_remember(rc_dedup_t *d, rc_dedup_key_t k, int64_t arrival_ns, uint64_t ticket);

/** Counts `n` duplicates the caller found on its own (repeats within one batch). */
void rc_dedup_add_duplicates(rc_dedup_t *d, uint64_t n);

/** Fills the table from the events store `s` holds whose arrival (knativearrivaltime) is
 *  within the window before `now_ns`: a restarted broker remembers what its last run
 *  accepted, as long as the store kept it. Reads with a cursor of its own from where the window
 *  starts (the store's time index finds it), before the ingress starts. Sets *loaded to the
 *  keys remembered. Returns 0 or a negative code. */
struct rc_storage_s;
int rc_dedup_load(rc_dedup_t *d, struct rc_storage_s *s, int64_t now_ns, uint64_t *loaded);

/** Fills `st`. Any thread. */
void rc_dedup_stats(rc_dedup_t *d, rc_dedup_stats_t *st);

#endif
