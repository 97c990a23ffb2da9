/* Inside the redis back end (docs/scaleout.md): what storage_redis.c (the store, its writer
 * thread and the workers' synchronous appends) and storage_redis_mirror.c (the checks at start
 * and the mirror thread) share. */
#ifndef RC_NET_STORAGE_REDIS_INTERNAL_H
#define RC_NET_STORAGE_REDIS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/config.h"
#include "net/storage/storage_internal.h"

struct redisContext;
struct rc_redis_cluster;

/** Longest stream key: "ringcast:{" ns "/" broker "/" partition "}". */
#define RC__REDIS_KEY_MAX (32 + 2 * RC_CONFIG_NAME_MAX)

/** The field of a stream entry that holds the ring record (core/record.h bytes, as is). */
#define RC__REDIS_FIELD "r"

/** A stream entry ID (ms-seq). */
typedef struct {
    uint64_t ms, seq;
} rc__redis_id_t;

/** What the store was opened with, kept for attached handles (workers) and reconnects. */
typedef struct {
    char host[RC_CONFIG_REDIS_HOST_MAX + 1]; /* the first address (standalone: the only one) */
    int port;
    rc_config_redis_addr_t addresses[RC_CONFIG_REDIS_ADDRESSES]; /* the seeds */
    uint32_t n_addresses;
    int cluster; /* the server said cluster_enabled:1 at open (redis_cluster.c routes) */
    char password[RC_CONFIG_REDIS_PASSWORD_MAX + 1];
    uint32_t partitions;
    uint64_t max_len;
    uint64_t max_age_ms; /* XTRIM MINID of entries older than this (the mirror's turns); 0: none */
    uint32_t replicas;
    uint32_t wait_timeout_ms;
    char ns[RC_CONFIG_NAME_MAX + 1], broker[RC_CONFIG_NAME_MAX + 1];
    char keys[RC_CONFIG_REDIS_PARTITIONS][RC__REDIS_KEY_MAX];
} rc__redis_conf_t;

/** The mirror: a thread that copies the broker's streams into its local ring. */
typedef struct {
    rc_storage_t *ring;                              /* borrowed: the store's */
    const rc__redis_conf_t *conf;                    /* borrowed */
    struct redisContext *c;                          /* the thread's connection (NULL: down) */
    struct rc_redis_cluster *cl;                     /* instead of `c` in a Redis Cluster */
    rc__redis_id_t last[RC_CONFIG_REDIS_PARTITIONS]; /* the last ID copied per partition */
    int fd;                                          /* the side object keeping `last` */
    uint64_t ring_id;
    pthread_t thread;
    int started;
    _Atomic int stop;
    _Atomic uint64_t copied;  /* events copied into the ring */
    _Atomic uint64_t skipped; /* entries that were no ring record */
    /* The lag (docs/scaleout.md "Mirror lag"), sampled by the thread (XINFO STREAM): `added`
     * is each stream's entries-added count at `last` (valid when `added_known`), so the
     * entries behind are entries-added now minus it; more than the stream holds means Redis
     * trimmed entries the mirror had not copied. */
    uint64_t added[RC_CONFIG_REDIS_PARTITIONS];
    uint8_t added_known[RC_CONFIG_REDIS_PARTITIONS];
    /* A batch read and not yet in the ring (the mirror waits for room): its last IDs and
     * entries per partition, so a sample while it waits counts from where Redis was read. */
    rc__redis_id_t pend_last[RC_CONFIG_REDIS_PARTITIONS];
    uint32_t pend_seen[RC_CONFIG_REDIS_PARTITIONS];
    int pending;
    int lag_warned, trim_warned; /* an XINFO, an XTRIM refused was logged */
    uint64_t lost_log;           /* trimmed entries not logged yet (at most one line per 10 s) */
    uint32_t lost_p, lost_parts; /* the last partition that lost some, how many did */
    rc__redis_id_t lost_first;   /* where that stream starts now */
    int64_t next_lost_log_ms;
    int64_t next_sample_ms;          /* monotonic: when the lag is sampled next */
    int64_t next_trim_ms;            /* monotonic: when maxAge trims next */
    struct rc_redis_cluster *lag_cl; /* a cluster's sampling connections (the poll's are busy) */
    _Atomic uint64_t lag_entries;    /* entries in the streams not yet in the ring */
    _Atomic uint64_t lag_ms;         /* how long the oldest of them has waited (Redis' ms) */
    _Atomic uint64_t trimmed;        /* entries Redis trimmed before the mirror copied them */
    _Atomic uint64_t aged;           /* entries maxAge trimmed (this node's XTRIMs) */
} rc__redis_mirror_t;

/** Connects to the configured server with a timeout and authenticates. Returns the context, or
 *  NULL with `err` saying what failed (address, password). */
struct redisContext *rc__redis_connect(const rc__redis_conf_t *conf, int timeout_ms, char *err,
                                       size_t errlen);

/** The checks at start on `c` (a fresh connection): each partition key is a stream or absent,
 *  and no other ringcast node mirrors the broker (logged loudly, not refused). Then opens the
 *  mirror's position (`m->fd`, `m->last`): the one this ring had, or each stream's newest ID
 *  for a ring that is new (its events start now). Takes `c` on success. 0, or a negative code
 *  with `err` filled. */
int rc__redis_mirror_open(rc__redis_mirror_t *m, struct redisContext *c, char *err, size_t errlen);

/** The partition whose stream is named `key`, or -1 (a stream reply names its key). */
int rc__redis_partition_of(const rc__redis_conf_t *cf, const char *key);

/** The client name of a broker's mirror connections ("ringcast-mirror:<ns>/<broker>"). */
void rc__redis_mirror_name(const rc__redis_conf_t *conf, char *out, size_t len);

/** The mirror's reply timeout (ms). */
#define RC__REDIS_MIRROR_TIMEOUT 2200

/** A consumer group reader on the streams `conf` names (storage_redis_group.c): creates the
 *  group on each partition stream (XGROUP CREATE ... MKSTREAM) on a connection of its own,
 *  and watches `ring` (the mirror's, borrowed) to learn when to read again. As
 *  rc_storage_group_open. */
int rc__redis_group_open(const rc__redis_conf_t *conf, rc_storage_t *ring,
                         const rc_storage_group_opts_t *o, rc_storage_reader_t **out, char *err,
                         size_t errlen);

/** Starts and stops the mirror thread. */
int rc__redis_mirror_start(rc__redis_mirror_t *m);
void rc__redis_mirror_stop(rc__redis_mirror_t *m);

/** Opens a set of connections (redis_cluster.h) on the conf's seeds, with the password, the
 *  timeouts and a client name (NULL: none). 0, or a negative code with `err` filled. */
int rc__redis_cluster_open(const rc__redis_conf_t *conf, int timeout_ms, const char *name,
                           struct rc_redis_cluster **out, char *err, size_t errlen);

/** One XADD of a batch to a Redis Cluster: the key and the record; `rc` is the answer (0,
 *  RC_ESTORE_UNAVAILABLE, RC_ESTORE_UNREPLICATED). The fields ending in _ are the sender's. */
typedef struct {
    const char *key;
    const void *data;
    uint32_t len;
    int rc;
    int state_, ask_, node_, wait_node_;
} rc__redis_xadd_t;

/** Appends the items to their slots' masters (storage_redis_xadd.c): pipelined per node, WAIT
 *  per node when conf->replicas > 0, MOVED and ASK followed. Sets each item's rc; `err` says
 *  the first failure ("" when none). Blocking: the writer thread, or a worker's commit. */
void rc__redis_cluster_xadd(struct rc_redis_cluster *cl, const rc__redis_conf_t *conf,
                            rc__redis_xadd_t *items, size_t n, char *err, size_t errlen);

#endif
