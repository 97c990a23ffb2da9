/* The receiving side of the pub/sub scenarios: one thread per consumer, each measuring
 * publish-to-delivery latency from the `rcbts` stamp (CLOCK_MONOTONIC, same host) and recording
 * which `rcbseq` numbers arrived, so a run can report lost and duplicated events.
 *  - shm: a lossless ringcast reader attached to the broker's ring (decodes each record);
 *  - shm-group: a member of a ringcast consumer group on that ring (shm/group.h), zero copy;
 *  - redis: XREADGROUP on its own consumer group (fan-out, NOACK) or a shared group (competing;
 *    with `ack`, without NOACK and an XACK of each reply's entries, as Dapr's Redis Streams
 *    component does);
 *  - nats: a plain subscription (SUB) on the subject prefix. */
#ifndef RC_BENCH_CONSUMERS_H
#define RC_BENCH_CONSUMERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bench/hist.h"

typedef enum {
    RC_CONS_SHM = 0,
    RC_CONS_SHM_GROUP,
    RC_CONS_REDIS,
    RC_CONS_NATS,
} rc_cons_kind_t;

typedef struct {
    /* set by the caller before rc_consumer_start */
    rc_cons_kind_t kind;
    const char *ring;  /* shm: ring name */
    int port;          /* redis, nats */
    const char *topic; /* redis stream / nats subject prefix */
    char group[32];    /* redis consumer group / ringcast consumer group */
    char name[32];     /* redis consumer name / reader name */
    uint32_t spin;     /* shm: polls before sleeping on the futex (0: the reader's default) */
    int ack;           /* redis: acknowledge (XACK) instead of NOACK */
    uint32_t linger_us; /* shm: linger after a wake (rc_reader_opts_t.linger_ns) */
    /* results, read after rc_consumer_stop (unique also while running) */
    rc_hist_t lat;           /* publish -> delivery, ns */
    _Atomic uint64_t unique; /* distinct events received */
    uint64_t received;       /* all events received, duplicates included */
    uint64_t dups;
    uint64_t bad; /* events without readable stamps */
    uint64_t last_rx_ns;
    double cpu_s; /* the consumer thread's CPU time */
    int error;    /* < 0 when the consumer failed; err says why */
    char err[160];
    /* private */
    pthread_t thread_;
    atomic_int stop_;
    atomic_int ready_;
    uint8_t *seen_;
    uint64_t seen_cap_;
    int fd_;
    void *ring_;
    void *reader_;
} rc_consumer_t;


/** Starts the consumer's thread and waits (up to 5 s) until it is attached or subscribed, so
 *  that everything published afterwards reaches it. Returns 0 or a negative code (c->err says
 *  why; the thread is then joined). */
int rc_consumer_start(rc_consumer_t *c);

/** Stops and joins the thread. Results stay readable until rc_consumer_free. */
void rc_consumer_stop(rc_consumer_t *c);

/** Acknowledged events (acked[seq] != 0, seq < n) this consumer did not receive. */
uint64_t rc_consumer_lost(const rc_consumer_t *c, const uint8_t *acked, uint64_t n);

/** Competing consumers: acknowledged events that none of the `n` consumers received. Adds to
 *  *dups the events more than one of them received (and each one's own duplicates). */
uint64_t rc_consumers_lost_any(const rc_consumer_t *cs, int n, const uint8_t *acked, uint64_t count,
                               uint64_t *dups);

/** Frees the received-sequence table. */
void rc_consumer_free(rc_consumer_t *c);

#endif
