/* The Knative Broker ingress: `POST /{namespace}/{broker}` with a CloudEvent in binary,
 * structured or batch mode, stored in the broker's ring; statuses as in CONTRACTS.md (Ingress).
 * One rc_ingress_t per ingress loop: it holds that loop's metrics and scratch memory; the
 * broker table is shared read-only by all loops. */
#ifndef RC_NET_INGRESS_H
#define RC_NET_INGRESS_H

#define RC_INGRESS_OWED 8

#include <stdint.h>

#include "core/arena.h"
#include "core/config.h"
#include "net/http/http_server.h"
#include "net/metrics.h"
#include "net/storage/storage.h"

/** A broker as the ingress sees it: its names and its store. */
typedef struct {
    const char *ns;
    const char *name;
    rc_storage_t *store; /* shared by every loop: claims are multi-producer safe */
    struct rc_dedup_s *dedup; /* ringcast.dev/dedup-window (net/dedup.h), or NULL */
    char label[2 * RC_CONFIG_NAME_MAX + 2]; /* "ns/name", for messages */
} rc_ingress_broker_t;

typedef struct {
    const rc_ingress_broker_t *brokers; /* borrowed, read-only while serving */
    size_t broker_count;
    rc_config_limits_t limits;
    uint32_t retry_after_s;
    rc_ingress_metrics_t metrics;
    char retry_after_line[40];      /* "Retry-After: 1\r\n" */
    struct rc_dapr_s *dapr;         /* the Dapr API on this listener (net/dapr.h), or NULL */
    struct rc_held_s *held;         /* answers held for durability sync (rc_ingress_attach) */
    /* Waking readers once per loop turn (rc_ingress_attach): the turn's first commit wakes
     * sleeping readers at once; later commits of the turn are quiet and the brokers they went
     * to (up to RC_INGRESS_OWED; past that a commit wakes itself) get one rc_storage_wake when
     * the turn's I/O is done (uv_check), or before the loop blocks (uv_prepare). */
    uv_check_t turn_check;
    uv_prepare_t turn_prepare;
    int turn_on;
    uint32_t turn_commits, nowed;
    uint32_t owed[RC_INGRESS_OWED]; /* broker indexes */
    rc_arena_t arena;           /* per request: decoded values, extension tables, batch arrays */
    char arena_buf[256 * 1024]; /* the arena's first block: most requests never malloc */
} rc_ingress_t;

/** Prepares `ig` (64-byte aligned storage) for one loop. Returns 0. */
int rc_ingress_init(rc_ingress_t *ig, const rc_ingress_broker_t *brokers, size_t count,
                    const rc_config_limits_t *limits, uint32_t retry_after_s);

/** Fills `h` with the ingress handler for `ig` (borrowed until the server is closed). */
void rc_ingress_handler(rc_ingress_t *ig, rc_http_handler_t *h);

/** Starts the end-of-turn wake on `loop` (see rc_ingress_t.turn_check). Durability sync
 *  (docs/durability.md): when a broker's store is in durability sync, the ingress on `loop`
 *  (serving with `srv`) holds each 202 until the store's flush covers the event, instead of
 *  blocking the loop in the commit (net/held.h), and so does the Dapr API on the same listener
 *  (ig->dapr, set before); without such a broker the request path is unchanged. Returns 0 or
 *  -ENOMEM. Loop thread, before it runs. */
int rc_ingress_attach(rc_ingress_t *ig, uv_loop_t *loop, rc_http_server_t *srv);

/** Closes the handles rc_ingress_attach made (its loop then can end), waking what the turn
 *  owes; answers that complete later are dropped. Call when the server is closed. Loop
 *  thread. */
void rc_ingress_detach(rc_ingress_t *ig);

/** Releases what rc_ingress_init allocated. */
void rc_ingress_close(rc_ingress_t *ig);

#endif
