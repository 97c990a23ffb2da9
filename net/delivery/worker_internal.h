/* Inside a worker process (net/worker.c, net/worker_attempt.c): a trigger's queue of matched
 * events, its in-flight window entries, the feeds. One thread; nothing here is shared. */
#ifndef RC_NET_WORKER_INTERNAL_H
#define RC_NET_WORKER_INTERNAL_H

#include <signal.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/delivery_policy.h"
#include "core/route.h"
#include "net/http/http_client.h"
#include "net/delivery/worker.h"

enum { RC__E_SENDING = 1, RC__E_WAITING = 2, RC__E_DONE = 3 };

typedef struct rc__wtrig_s rc__wtrig_t;

/* An event in a trigger's in-flight window: the current attempt and its buffers. Entries are
 * allocated when the window first grows that far and reused after (a free list per trigger). */
typedef struct rc__wentry_s {
    rc__wtrig_t *t;
    uint64_t pos, seq;
    const uint8_t *rec; /* the record in the mapping: stays valid until the feed acks past it */
    uint32_t rec_len;
    int state;
    int to_dlq;       /* attempts now go to the dead-letter sink */
    uint32_t retries; /* retries done towards the current destination */
    int64_t due_ns;   /* RC__E_WAITING: when the next attempt goes */
    uint64_t sent_ns; /* start of the current attempt */
    int last_result;  /* of the subscriber, for knativeerrorcode */
    char *errdata;    /* knativeerrordata (base64 of the subscriber's last body) */
    char *hdr;
    size_t hdr_len, hdr_cap;
    char *body;
    size_t body_cap;
    struct iovec iov;
    struct rc__wentry_s *next_free;
} rc__wentry_t;

/* A matched event in a trigger's queue. The queue is in ring order; its first `nwin` events are
 * the window (each with an entry), the rest wait for room (pending, no copy of the record). */
typedef struct {
    uint64_t pos, seq;
    const uint8_t *rec;
    uint32_t len;
    rc__wentry_t *e;
} rc__wref_t;

typedef struct rc__wfeed_s rc__wfeed_t;

struct rc__wtrig_s {
    const rc_worker_trigger_t *wt;
    const rc_delivery_t *d;
    rc__wfeed_t *feed;
    rc_storage_t *prod; /* this worker's handle of the broker store, for replies */
    rc_trigger_stats_t *st;
    rc_http_endpoint_t *ep, *dlq;
    const char *uri;
    rc__wref_t *q;
    uint32_t qcap, qhead, qlen; /* power-of-two ring of refs, grown on demand */
    uint32_t nwin, max_win;
    rc__wentry_t *free_e;
    uint32_t sending;    /* entries with a request outstanding */
    uint64_t skip_seq;   /* events below it were finished by an earlier worker */
    uint64_t cesql_base; /* the slot's cesql_errors when this worker started */
    uint32_t route_idx;  /* its index in the feed's route program */
    int dirty;           /* the window front may have finished */
    int active;          /* in the worker's active list (queue not empty) */
};

struct rc__wfeed_s {
    const rc_worker_feed_t *wf;
    rc_storage_reader_t *reader;
    rc_route_t *route;
    rc__wtrig_t **trig; /* route program index -> trigger */
    uint32_t ntrig;
    uint32_t *match;             /* ntrig entries */
    uint64_t read_seq, read_pos; /* after the last event routed (published in wf->stats) */
    uint64_t acked, ack_to;
};

/** Set by SIGTERM: the worker drains and stops. */
extern volatile sig_atomic_t rc__worker_stop;

/** Starts the current attempt of `e` (its state must be RC__E_WAITING); a failure to start is
 *  handled like a failed attempt. The outcome moves `e` to RC__E_WAITING (retry) or RC__E_DONE
 *  (and sets e->t->dirty). */
void rc__worker_send(rc_http_client_t *c, rc__wentry_t *e);

#endif
