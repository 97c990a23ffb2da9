/* A Redis Cluster aware set of blocking hiredis connections (docs/scaleout.md "Redis
 * Cluster"). Debian's hiredis (0.14) has no cluster support, so this is the small layer the
 * redis store needs: seeds, the slot map from CLUSTER SLOTS, the key slot (CRC16 with hash
 * tags), routing a command by its key, MOVED (the map is updated and a full refresh is due)
 * and ASK (ASKING, then the command, once), and a refresh from any reachable node after a
 * connection error. When the server says cluster_enabled:0 the set is one node owning every
 * slot: the same calls work against a standalone server.
 *
 * Not thread-safe: one set per thread (the writer, the mirror, each worker's handle). */
#ifndef RC_NET_STORAGE_REDIS_CLUSTER_H
#define RC_NET_STORAGE_REDIS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

struct redisContext;
struct redisReply;

#define RC_REDIS_CLUSTER_SLOTS     16384
#define RC_REDIS_CLUSTER_NODES_MAX 64 /* masters a set knows at once */

typedef struct rc_redis_cluster rc_redis_cluster_t;

/** What a set is opened with. Strings are copied. */
typedef struct {
    const rc_config_redis_addr_t *seeds; /**< where to ask for the slot map first */
    uint32_t nseeds;
    const char *password;    /**< NULL or "": no AUTH */
    int connect_timeout_ms;  /**< for each connect (a dead node must not stall the rest long) */
    int timeout_ms;          /**< for each reply */
    const char *client_name; /**< CLIENT SETNAME on every connection; NULL: none */
} rc_redis_cluster_conf_t;

/** The slot of a key: CRC16 (XMODEM) of the key, or of its hash tag (the bytes between the
 *  first '{' and the next '}' when there are any), modulo 16384. As CLUSTER KEYSLOT. */
uint16_t rc_redis_keyslot(const char *key, size_t len);

/** Connects to the first seed that answers (connect, AUTH, PING), asks INFO cluster and, in
 *  a cluster, CLUSTER SLOTS. A wrong password or a seed that does not answer fails with `err`
 *  naming the address and the problem (when no seed answers: the last seed's). 0, or a
 *  negative code. */
int rc_redis_cluster_open(const rc_redis_cluster_conf_t *conf, rc_redis_cluster_t **out, char *err,
                          size_t errlen);
void rc_redis_cluster_close(rc_redis_cluster_t *cl);

/** 1 when the server is a Redis Cluster (cluster_enabled:1), 0 when standalone. */
int rc_redis_cluster_enabled(const rc_redis_cluster_t *cl);

/** Runs one command on the node owning `key` (a printf-like hiredis format, as redisCommand),
 *  following MOVED and ASK, refreshing the map after a connection error; at most 4 tries. The
 *  reply (free with freeReplyObject), or NULL with the reason in rc_redis_cluster_error: a
 *  NULL after a command was sent means its fate is unknown (it may have run). */
struct redisReply *rc_redis_cluster_command(rc_redis_cluster_t *cl, const char *key,
                                            const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct redisReply *rc_redis_cluster_argv(rc_redis_cluster_t *cl, const char *key, int argc,
                                         const char **argv, const size_t *lens);
/** The same with a command hiredis formatted already (redisFormatCommand). */
struct redisReply *rc_redis_cluster_formatted(rc_redis_cluster_t *cl, const char *key,
                                              const char *cmd, size_t len);

/** How many masters own slots in the map (1 for a standalone server). */
int rc_redis_cluster_masters(const rc_redis_cluster_t *cl);

/** What the last failure was ("" when none). */
const char *rc_redis_cluster_error(const rc_redis_cluster_t *cl);

/* ---- for pipelines (the writer, the mirror): group commands by node ---------------------- */

/** The node owning `key`'s slot, refreshing the map first when it is stale; -1 when no node is
 *  known for it (the cluster is down). */
int rc_redis_cluster_node_of(rc_redis_cluster_t *cl, const char *key);

/** The node's connection, made (and authenticated) when there is none; NULL when it cannot
 *  be made (then the map is marked stale). */
struct redisContext *rc_redis_cluster_conn(rc_redis_cluster_t *cl, int node);

/** Drops a node's connection after an I/O error and marks the map stale. */
void rc_redis_cluster_drop(rc_redis_cluster_t *cl, int node);

/** Looks at an error reply that node `from` gave: MOVED (the slot's owner is updated, a full
 *  refresh is due) gives 1 and the new node in `*node`; ASK gives 2 and the node to ask (send
 *  ASKING first, once); anything else 0. -1 when the node named cannot be added (the set is
 *  full). */
int rc_redis_cluster_redirect(rc_redis_cluster_t *cl, const struct redisReply *r, int from,
                              int *node);

/** Parses "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>" (an IPv6 host in
 *  brackets or not; an empty host means the node that answered): 1 (MOVED) or 2 (ASK) with
 *  the parts filled, 0 for anything else or anything malformed. */
int rc_redis_parse_redirect(const char *msg, int *slot, char *host, size_t hostlen, int *port);

/** Refreshes the slot map now from any node that answers (the known ones, then the seeds). 0,
 *  or a negative code when none answered. At most once per 100 ms unless `force`. */
int rc_redis_cluster_refresh(rc_redis_cluster_t *cl, int force);

/** Where a node is, for messages ("host:port"). */
const char *rc_redis_cluster_node_name(const rc_redis_cluster_t *cl, int node);

/** How often the map was loaded, and redirects seen (for logs and tests). */
typedef struct {
    uint64_t refreshes, moved, asked, conn_errors;
} rc_redis_cluster_stats_t;
void rc_redis_cluster_stats(const rc_redis_cluster_t *cl, rc_redis_cluster_stats_t *out);

#endif
