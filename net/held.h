/* HTTP answers held until a store's flush covers their commit (durability sync,
 * docs/durability.md "Durability batch and sync"). A request handler publishes with a ticket
 * (rc_publish_opts_t.ticket), sets res->hold and hands a wait to rc_held_wait; the store's
 * flusher thread reports the flush, the loop's uv_async_t picks the finished waits up, calls
 * each one's answer function and sends what it filled with rc_http_server_respond. The loop
 * never blocks on an fdatasync, so it goes on reading and committing other requests, which the
 * next flush then covers together (group commit). Used by the Knative ingress (net/ingress.c)
 * and the Dapr publish API (net/dapr.c), on every ingress loop and on spec.dapr.listen. */
#ifndef RC_NET_HELD_H
#define RC_NET_HELD_H

#include <stdint.h>

#include <uv.h>

#include "net/http/http_server.h"
#include "net/storage/storage.h"

/** One per (loop, HTTP server): the async handle and the list of finished waits. */
typedef struct rc_held_s rc_held_t;

typedef struct rc_held_wait_s rc_held_wait_t;

/** Fills `res` (zeroed) with the held request's answer: rc is 0 once the commit is on disk, or
 *  the store's fdatasync failure (-EIO...). Loop thread. `res` is sent right after it returns;
 *  the wait is freed after that. */
typedef void (*rc_held_answer_fn)(rc_held_wait_t *w, int rc, rc_http_server_response_t *res);

/** A held answer. Callers embed it first in a struct of their own (what the answer needs),
 *  allocated with malloc: once rc_held_wait took it, this module frees it. */
struct rc_held_wait_s {
    rc_storage_durable_t w; /* first: the store hands it back */
    rc_held_answer_fn answer;
    uint64_t conn_id; /* the request's (req->conn_id) */
    rc_held_t *held;  /* set by rc_held_wait */
    int rc;           /* the flush's result, for the loop */
    struct rc_held_wait_s *next;
};

/** Makes the holder for `loop` and `srv` (borrowed until rc_held_detach). Returns 0 or
 *  -ENOMEM. Loop thread, or before the loop runs. */
int rc_held_attach(uv_loop_t *loop, rc_http_server_t *srv, rc_held_t **out);

/** Holds `w`'s answer until the store's flush covers `ticket` (w->answer and w->conn_id set by
 *  the caller). Returns 1 (held: `w` is this module's now; set res->hold), 0 (already on disk,
 *  or the store does not flush: answer now; `w` stays the caller's), or the store's sticky
 *  fdatasync failure (-EIO...; `w` stays the caller's). Loop thread. */
int rc_held_wait(rc_held_t *h, rc_storage_t *store, uint64_t ticket, rc_held_wait_t *w);

/** Closes the holder (its loop then can end); waits that finish later are freed unanswered.
 *  Call once the server is closed. NULL is a no-op. Loop thread. */
void rc_held_detach(rc_held_t *h);

/** Whether `s` is in durability sync or a redis store (its commits are held for the flush, or
 *  for Redis' acknowledgement). Any thread. */
int rc_held_store_syncs(rc_storage_t *s);

#endif
