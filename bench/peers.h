/* The servers a scenario compares, each started on a free loopback port from a private
 * temporary directory and stopped by its pid: ringcast (`ringcast serve`, its own ring name;
 * or with a file store), nginx (`return 202`, one worker), redis-server (no persistence, or an
 * append-only file) and nats-server. */
#ifndef RC_BENCH_PEERS_H
#define RC_BENCH_PEERS_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef enum {
    RC_PEER_RINGCAST = 0,
    RC_PEER_NGINX,
    RC_PEER_REDIS,
    RC_PEER_NATS,
} rc_peer_kind_t;

typedef struct {
    rc_peer_kind_t kind;
    pid_t pid;
    int port;
    int admin_port;  /* ringcast: its admin listener (/readyz, /metrics) */
    char dir[64];    /* private temporary directory */
    char ring[64];   /* ringcast: the broker's shm ring name */
    char store[256]; /* a file store's or Redis AOF's directory, made for this run ("": none) */
    double cpu0;     /* CPU seconds at rc_bench_peer_mark */
} rc_peer_t;

/** Name used in reports ("ringcast", "nginx", "redis", "nats"). */
const char *rc_bench_peer_name(rc_peer_kind_t kind);

/** 1 when the peer's program is installed (ringcast: next to ringcast-bench or in
 *  $RC_BIN_DIR); else 0 and a message saying what to install in `why`. */
int rc_bench_peer_available(rc_peer_kind_t kind, char *why, size_t cap);

/** Starts a peer and waits until it accepts connections. `ring_bytes` sizes ringcast's ring
 *  (power of two). Returns 0, or a negative code with a message in `err`. */
int rc_bench_peer_start(rc_peer_kind_t kind, uint64_t ring_bytes, rc_peer_t *p, char *err,
                        size_t errlen);

/** Starts nginx (one worker) as a reverse proxy to 127.0.0.1:`ports[0..n)` (round-robin, with
 *  keep-alive upstream connections), like rc_bench_peer_start. Returns 0 or a negative code with
 *  a message in `err`. */
int rc_bench_nginx_proxy_start(const int *ports, int n, rc_peer_t *p, char *err, size_t errlen);

/** Writes YAML documents appended to ringcast's config (each starting with "---"). */
typedef int (*rc_bench_yaml_fn)(FILE *f, const char *dir, void *arg);

/** Starts `ringcast serve` like rc_bench_peer_start, with `spec.workers: workers` (0: not set)
 *  and the documents `extra` writes (Triggers, ...) after the Broker `default/default`, and waits
 *  until its admin /readyz answers 200. A config that does not load gives its message in
 *  `err`. */
int rc_bench_ringcast_start(uint64_t ring_bytes, int workers, rc_bench_yaml_fn extra, void *arg,
                            rc_peer_t *p, char *err, size_t errlen);

/** A node of a broker whose store is Redis (docs/scaleout.md). */
typedef struct {
    int port;            /* the redis-server on 127.0.0.1 */
    int partitions;      /* spec.redis.partitions, the same on every node */
    const char *node_id; /* spec.redis.nodeId: distinct per node */
} rc_bench_redis_node_t;

/** rc_bench_ringcast_start with the Broker `default/default` stored in Redis
 *  (`ringcast.dev/storage-type: redis`, spec.redis from `rn`, claimIdle 30 s): several such
 *  nodes on one Redis share the broker, each trigger one consumer group across them. */
int rc_bench_ringcast_start_redis(const rc_bench_redis_node_t *rn, uint64_t ring_bytes, int workers,
                                  rc_bench_yaml_fn extra, void *arg, rc_peer_t *p, char *err,
                                  size_t errlen);

/** Starts a peer that writes to disk, in a fresh directory `<parent>/rcbench<pid>-store-XXXXXX`
 *  (`parent` NULL: $TMPDIR, else /tmp) removed at rc_bench_peer_stop: ringcast with
 *  `spec.storage: {type: file, durability: mode}` (mode none, batch or sync), or redis-server
 *  with `--appendonly yes --appendfsync mode` (mode always, everysec or no). Else as
 *  rc_bench_peer_start. */
int rc_bench_peer_start_store(rc_peer_kind_t kind, uint64_t ring_bytes, const char *mode,
                              const char *parent, rc_peer_t *p, char *err, size_t errlen);

/** Counters of a ringcast file store's flusher, from /metrics on the admin port. */
typedef struct {
    double fsyncs;  /* ringcast_storage_fsyncs_total */
    double fsync_s; /* ringcast_storage_fsync_seconds_sum */
    double durable; /* ringcast_storage_durable_events */
} rc_bench_fsyncs_t;

/** Reads the flusher counters of a ringcast peer (summed over its brokers). Returns 0,
 *  -ENOENT when the broker reports none (a memory store, or durability none), or -errno when
 *  /metrics cannot be read. */
int rc_bench_peer_fsyncs(const rc_peer_t *p, rc_bench_fsyncs_t *out);

/** The value of `field` in a Redis peer's `INFO section` reply into `val` (text). Returns 0,
 *  -ENOENT when the reply has no such field, or -errno. */
int rc_bench_redis_info(const rc_peer_t *p, const char *section, const char *field, char *val,
                        size_t cap);

/** Remembers the peer's CPU time now (the start of a measured interval). */
void rc_bench_peer_mark(rc_peer_t *p);

/** CPU seconds since rc_bench_peer_mark, peak RSS and its shared-memory part now, in MiB
 *  (read before stopping). */
void rc_bench_peer_usage(const rc_peer_t *p, double *cpu_s, double *rss_mib, double *shm_mib);

/** Stops the peer by pid, reaps it, removes its directory and ring. No-op when not started. */
void rc_bench_peer_stop(rc_peer_t *p);

#endif
