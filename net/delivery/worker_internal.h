/* Inside a worker process (net/delivery/worker.c, worker_attempt.c): a trigger's queue of matched
 * events, its in-flight window entries, the feeds. One thread; nothing here is shared. */
#ifndef RC_NET_WORKER_INTERNAL_H
#define RC_NET_WORKER_INTERNAL_H

#include <signal.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/delivery_policy.h"
#include "core/record.h"
#include "core/route.h"
#include "net/http/http_client.h"
#include "net/delivery/worker.h"

enum { RC__E_SENDING = 1, RC__E_WAITING = 2, RC__E_DONE = 3 };

typedef struct rc__wtrig_s rc__wtrig_t;

/* One routed event, shared by every trigger of the feed that matched it: the record is decoded
 * once when it is routed, and what goes on the wire is built once, on the first attempt that
 * needs it (the binary-mode `ce-*` header block, or the structured-mode body), then reused by
 * every trigger and every retry. Dead-letter attempts add extensions and build their own. It
 * lives until the last trigger holding it is done (refs), then goes back to the worker's free
 * list with its buffers. */
typedef struct rc__wevent_s {
    uint32_t refs;
    uint32_t built;      /* RC__EV_* */
    rc_record_view_t rv; /* into the mapping: valid until the feed acknowledges past it */
    const char *data; /* its data bytes (set with the first build) */
    size_t data_len;
    char *bin;           /* binary mode: the ce-* header lines and Content-Type */
    size_t bin_len, bin_cap;
    char *json; /* structured mode: the body */
    size_t json_len, json_cap;
    struct rc__wevent_s *next_free;
} rc__wevent_t;

enum { RC__EV_BIN = 1, RC__EV_JSON = 2 };

/* An event in a trigger's in-flight window: the current attempt and its buffers. Entries are
 * allocated when the window first grows that far and reused after (a free list per trigger). */
typedef struct rc__wentry_s {
    rc__wtrig_t *t;
    uint64_t pos, seq;
    rc__wevent_t *ev; /* the event, shared with the other triggers that matched it */
    int state;
    int to_dlq;       /* attempts now go to the dead-letter sink */
    uint32_t retries; /* retries done towards the current destination */
    int64_t due_ns;   /* RC__E_WAITING: when the next attempt goes */
    uint64_t sent_ns; /* start of the current attempt */
    int last_result;  /* of the subscriber, for knativeerrorcode */
    char *errdata;    /* knativeerrordata (base64 of the subscriber's last body) */
    char *hdr; /* dead-letter attempts only: their own headers or body */
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
    rc__wevent_t *ev;
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
    char lines[RC_CONFIG_NAME_MAX + 48]; /* its own header lines: Prefer, Kn-Namespace */
    size_t lines_len;
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
    rc__wevent_t *free_ev;       /* events no trigger holds any more, for reuse */
    uint64_t acked, ack_to;
};

/** Set by SIGTERM: the worker drains and stops. */
extern volatile sig_atomic_t rc__worker_stop;

/** Gives up one trigger's hold on `ev`; the last one returns it to the free list `*free_list`. */
static inline void rc__wevent_release(rc__wevent_t *ev, rc__wevent_t **free_list)
{
    if (--ev->refs == 0) {
        ev->next_free = *free_list;
        *free_list = ev;
    }
}

/** Starts the current attempt of `e` (its state must be RC__E_WAITING); a failure to start is
 *  handled like a failed attempt. The outcome moves `e` to RC__E_WAITING (retry) or RC__E_DONE
 *  (and sets e->t->dirty). */
void rc__worker_send(rc_http_client_t *c, rc__wentry_t *e);

#endif
