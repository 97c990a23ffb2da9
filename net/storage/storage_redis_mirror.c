/* The redis back end's local fast path (docs/scaleout.md): a thread that reads the broker's
 * partition streams with XREAD from where it left and appends each entry's ring record to the
 * broker's shm ring, so triggers, `ringcast tail`, local readers and groups read Redis' events
 * as they read any ring. Where it left is kept in a shm object beside the ring,
 * "/dev/shm/<ring name>.redis", with the ring's identity: a ring that was replaced (or is new)
 * starts at the streams' newest entries, one that survived a restart resumes after the last
 * entry it copied. The position is written right after each commit into the ring, so a crash
 * between the two copies that batch (up to MIRROR_COUNT entries) a second time; nothing else
 * repeats and nothing is skipped. Also the checks at start: the address answers, the password
 * is right, the keys are streams. On a Redis Cluster the thread polls each partition on its
 * master instead of one blocking XREAD (cluster_poll). */
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "core/record.h"
#include "net/storage/redis_cluster.h"
#include "net/storage/storage_redis_internal.h"

#define MIRROR_COUNT    512 /* entries per XREAD */
#define MIRROR_BLOCK_MS 200 /* XREAD BLOCK: also how soon the thread sees a stop */
#define RECONNECT_MS    250
#define POLL_IDLE_MAX   10 /* ms: a Redis Cluster's mirror polls (no BLOCK over several slots) */
#define POS_MAGIC1      0x5243524544495331ull /* "RCREDIS1": positions only (read, not written) */
#define POS_MAGIC       0x5243524544495332ull /* "RCREDIS2": and the entries-added counts */
#define SAMPLE_MS       500  /* the lag is sampled that often (XINFO STREAM per partition) */
#define TRIM_MS         1000 /* maxAge trims that often (XTRIM MINID per partition) */
/* After a sample or trim that failed (Redis away, a master down): not before this, so that a
 * master that does not answer costs the mirror one connect timeout per 5 s, not per turn. */
#define TURN_RETRY_MS 5000
#define LOST_LOG_MS   10000 /* at most one warning of trimmed entries per 10 s */

typedef struct {
    uint64_t magic;
    uint64_t ring_id;
    uint32_t partitions;
    uint32_t reserved;
    rc__redis_id_t last[RC_CONFIG_REDIS_PARTITIONS];
    /* RCREDIS2 from here: the mirror's entries-added count at `last` (mirror_t.added) */
    uint64_t added[RC_CONFIG_REDIS_PARTITIONS];
    uint8_t added_known[RC_CONFIG_REDIS_PARTITIONS];
} pos_file_t;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

redisContext *rc__redis_connect(const rc__redis_conf_t *conf, int timeout_ms, char *err,
                                size_t errlen)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(conf->host, conf->port, tv);
    if (c == NULL || c->err) {
        snprintf(err, errlen, "cannot connect to Redis at %s:%d: %s", conf->host, conf->port,
                 c != NULL ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r = NULL;
    if (conf->password[0] != '\0') {
        r = redisCommand(c, "AUTH %s", conf->password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "Redis at %s:%d refused the password (spec.redis.password): %s",
                     conf->host, conf->port, r != NULL ? r->str : c->errstr);
            goto fail;
        }
        freeReplyObject(r);
    }
    r = redisCommand(c, "PING");
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        int noauth = r != NULL && strncmp(r->str, "NOAUTH", 6) == 0;
        snprintf(err, errlen, "Redis at %s:%d: %s%s", conf->host, conf->port,
                 r != NULL ? r->str : c->errstr,
                 noauth ? " (give spec.redis.password or passwordFile)" : "");
        goto fail;
    }
    freeReplyObject(r);
    return c;
fail:
    freeReplyObject(r);
    redisFree(c);
    return NULL;
}

static int parse_id(const char *s, rc__redis_id_t *id)
{
    char *end = NULL;
    errno = 0;
    id->ms = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '-')
        return -EINVAL;
    const char *q = end + 1;
    id->seq = strtoull(q, &end, 10);
    return errno != 0 || end == q || *end != '\0' ? -EINVAL : 0;
}

/* A command on one key (argv[1]): on `c`, or routed to the key's master in a cluster. */
static redisReply *key_command(rc__redis_mirror_t *m, redisContext *c, int argc, const char **argv)
{
    size_t lens[8];
    for (int i = 0; i < argc && i < 8; i++)
        lens[i] = strlen(argv[i]);
    return m->cl != NULL ? rc_redis_cluster_argv(m->cl, argv[1], argc, argv, lens)
                         : redisCommandArgv(c, argc, argv, lens);
}

static const char *conn_error(const rc__redis_mirror_t *m, const redisContext *c)
{
    return m->cl != NULL ? rc_redis_cluster_error(m->cl) : c->errstr;
}

/* Each key is a stream or absent; the newest ID of each into `newest` (0-0 when empty). */
static int check_keys(rc__redis_mirror_t *m, redisContext *c, rc__redis_id_t *newest, char *err,
                      size_t errlen)
{
    const rc__redis_conf_t *cf = m->conf;
    for (uint32_t p = 0; p < cf->partitions; p++) {
        redisReply *r = key_command(m, c, 2, (const char *[]){"TYPE", cf->keys[p]});
        if (r == NULL || r->type != REDIS_REPLY_STATUS) {
            snprintf(err, errlen, "Redis at %s:%d: TYPE %s: %s", cf->host, cf->port, cf->keys[p],
                     r != NULL && r->str != NULL ? r->str : conn_error(m, c));
            freeReplyObject(r);
            return RC_ESTORE_UNAVAILABLE;
        }
        if (strcmp(r->str, "stream") != 0 && strcmp(r->str, "none") != 0) {
            snprintf(err, errlen,
                     "Redis key '%s' holds a %s, not a stream; broker %s/%s keeps its events "
                     "there (rename or delete the key)",
                     cf->keys[p], r->str, cf->ns, cf->broker);
            freeReplyObject(r);
            return -EEXIST;
        }
        freeReplyObject(r);
        r = key_command(m, c, 6,
                        (const char *[]){"XREVRANGE", cf->keys[p], "+", "-", "COUNT", "1"});
        newest[p] = (rc__redis_id_t){0, 0};
        if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
            snprintf(err, errlen, "Redis at %s:%d: XREVRANGE %s: %s", cf->host, cf->port,
                     cf->keys[p], r != NULL && r->str != NULL ? r->str : conn_error(m, c));
            freeReplyObject(r);
            return RC_ESTORE_UNAVAILABLE;
        }
        if (r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
            r->element[0]->elements >= 1 && r->element[0]->element[0]->type == REDIS_REPLY_STRING)
            (void)parse_id(r->element[0]->element[0]->str, &newest[p]);
        freeReplyObject(r);
    }
    return 0;
}

int rc__redis_partition_of(const rc__redis_conf_t *cf, const char *key)
{
    for (uint32_t p = 0; p < cf->partitions; p++)
        if (strcmp(cf->keys[p], key) == 0)
            return (int)p;
    return -1;
}

void rc__redis_mirror_name(const rc__redis_conf_t *conf, char *out, size_t len)
{
    snprintf(out, len, "ringcast-mirror:%s/%s", conf->ns, conf->broker);
}

/* Names this connection after the broker and says how many other nodes mirror it (their
 * triggers share the events through the triggers' consumer groups, docs/scaleout.md). In a
 * Redis Cluster, on the master of partition 0 (every mirror connects to it). */
static void check_other_nodes(const rc__redis_conf_t *cf, redisContext *c)
{
    if (c == NULL)
        return;
    char name[2 * RC_CONFIG_NAME_MAX + 32];
    rc__redis_mirror_name(cf, name, sizeof(name));
    freeReplyObject(redisCommand(c, "CLIENT SETNAME %s", name));
    redisReply *r = redisCommand(c, "CLIENT LIST");
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return; /* CLIENT LIST may be forbidden (ACL): then nothing is known */
    }
    char needle[sizeof(name) + 8];
    snprintf(needle, sizeof(needle), " name=%s ", name);
    int n = 0;
    for (const char *s = r->str; (s = strstr(s, needle)) != NULL; s += strlen(needle))
        n++;
    freeReplyObject(r);
    if (n > 1) /* each trigger is a Redis consumer group: the nodes share its events */
        rc_log_info("serve",
                    "broker %s/%s: %d other ringcast node(s) mirror this broker's Redis streams; "
                    "each trigger's events are shared among the nodes through its Redis "
                    "consumer group (docs/scaleout.md)",
                    cf->ns, cf->broker, n - 1);
}

/* Opens "/dev/shm/<ring>.redis" and adopts the position it keeps when it is this ring's. */
static int open_position(rc__redis_mirror_t *m, const rc__redis_id_t *newest, char *err,
                         size_t errlen)
{
    char ring[256], name[300];
    int rc = rc__storage_shm_identity(m->ring, ring, sizeof(ring), &m->ring_id);
    if (rc != 0) {
        snprintf(err, errlen, "the redis store's ring is not a shm ring");
        return rc;
    }
    snprintf(name, sizeof(name), "/%s.redis", ring);
    m->fd = shm_open(name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (m->fd < 0) {
        int e = errno;
        snprintf(err, errlen, "mirror position /dev/shm%s: %s", name, strerror(e));
        return -e;
    }
    pos_file_t pf;
    memset(&pf, 0, sizeof(pf));
    ssize_t got = pread(m->fd, &pf, sizeof(pf), 0);
    const rc__redis_conf_t *cf = m->conf;
    /* A position of the version before the lag (RCREDIS1) is adopted without its counts: they
     * are learnt when the mirror catches up (sample_partition). */
    int v1 = got >= (ssize_t)offsetof(pos_file_t, added) && pf.magic == POS_MAGIC1;
    if ((v1 || (got == (ssize_t)sizeof(pf) && pf.magic == POS_MAGIC)) && pf.ring_id == m->ring_id &&
        pf.partitions == cf->partitions) {
        memcpy(m->last, pf.last, sizeof(m->last));
        if (!v1) {
            memcpy(m->added, pf.added, sizeof(m->added));
            memcpy(m->added_known, pf.added_known, sizeof(m->added_known));
        }
        rc_log_info("serve",
                    "broker %s/%s: mirroring Redis %s:%d from where this ring left "
                    "(partition 0 after %llu-%llu)",
                    cf->ns, cf->broker, cf->host, cf->port, (unsigned long long)m->last[0].ms,
                    (unsigned long long)m->last[0].seq);
        return 0;
    }
    memcpy(m->last, newest, sizeof(m->last[0]) * cf->partitions);
    rc_log_info("serve",
                "broker %s/%s: mirroring Redis %s:%d from its newest entries (the ring "
                "is new%s)",
                cf->ns, cf->broker, cf->host, cf->port,
                got > 0 && pf.partitions != cf->partitions && pf.ring_id == m->ring_id
                    ? ", or the partitions changed"
                    : "");
    return 0;
}

static void save_position(rc__redis_mirror_t *m)
{
    pos_file_t pf;
    memset(&pf, 0, sizeof(pf));
    pf.magic = POS_MAGIC;
    pf.ring_id = m->ring_id;
    pf.partitions = m->conf->partitions;
    memcpy(pf.last, m->last, sizeof(pf.last));
    memcpy(pf.added, m->added, sizeof(pf.added));
    memcpy(pf.added_known, m->added_known, sizeof(pf.added_known));
    if (pwrite(m->fd, &pf, sizeof(pf), 0) != (ssize_t)sizeof(pf))
        rc_log_warn("serve", "broker %s/%s: cannot save the mirror position: %s", m->conf->ns,
                    m->conf->broker, strerror(errno));
}

int rc__redis_mirror_open(rc__redis_mirror_t *m, redisContext *c, char *err, size_t errlen)
{
    rc__redis_id_t newest[RC_CONFIG_REDIS_PARTITIONS];
    m->fd = -1;
    int rc = check_keys(m, c, newest, err, errlen);
    if (rc != 0)
        return rc;
    check_other_nodes(m->conf, m->cl != NULL
                                   ? rc_redis_cluster_conn(
                                         m->cl, rc_redis_cluster_node_of(m->cl, m->conf->keys[0]))
                                   : c);
    rc = open_position(m, newest, err, errlen);
    if (rc != 0)
        return rc;
    save_position(m);
    m->c = c;
    return 0;
}

/* ---- the thread --------------------------------------------------------------------------- */

/* ---- lag, trimmed entries, maxAge (docs/scaleout.md "Mirror lag") ------------------------- */

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int id_cmp(const rc__redis_id_t *a, const rc__redis_id_t *b)
{
    return a->ms != b->ms     ? (a->ms < b->ms ? -1 : 1)
           : a->seq != b->seq ? (a->seq < b->seq ? -1 : 1)
                              : 0;
}

/* What XINFO STREAM says of one stream (an absent stream: all zero, entries-added known). */
typedef struct {
    uint64_t length, added;
    rc__redis_id_t lastgen, first;
    int has_first, has_added;
} xinfo_t;

static void parse_xinfo(const redisReply *r, xinfo_t *x)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING && k->type != REDIS_REPLY_STATUS)
            continue;
        if (strcmp(k->str, "length") == 0 && v->type == REDIS_REPLY_INTEGER) {
            x->length = (uint64_t)v->integer;
        } else if (strcmp(k->str, "entries-added") == 0 && v->type == REDIS_REPLY_INTEGER) {
            x->added = (uint64_t)v->integer;
            x->has_added = 1;
        } else if (strcmp(k->str, "last-generated-id") == 0 && v->type == REDIS_REPLY_STRING) {
            (void)parse_id(v->str, &x->lastgen);
        } else if (strcmp(k->str, "first-entry") == 0 && v->type == REDIS_REPLY_ARRAY &&
                   v->elements >= 1 && v->element[0]->type == REDIS_REPLY_STRING) {
            x->has_first = parse_id(v->element[0]->str, &x->first) == 0;
        }
    }
}

/* A command on partition p's key by the sampler: on the standalone connection (idle between
 * XREADs and while the mirror waits for room), or on a cluster's own sampling connections
 * (the poll's may have replies pending while it waits). NULL: no connection now. */
static redisReply *lag_command(rc__redis_mirror_t *m, uint32_t p, int argc, const char **argv)
{
    size_t lens[8];
    for (int i = 0; i < argc && i < 8; i++)
        lens[i] = strlen(argv[i]);
    if (m->cl == NULL)
        return m->c != NULL ? redisCommandArgv(m->c, argc, argv, lens) : NULL;
    if (m->lag_cl == NULL) {
        char err[256];
        if (rc__redis_cluster_open(m->conf, RC__REDIS_MIRROR_TIMEOUT, NULL, &m->lag_cl, err,
                                   sizeof(err)) != 0)
            return NULL;
    }
    return rc_redis_cluster_argv(m->lag_cl, m->conf->keys[p], argc, argv, lens);
}

/* Partition p's entries not in the ring, from `x` and the count kept at m->last[p]; entries
 * Redis trimmed before the mirror copied them into `*lost` (counted once: the count moves
 * past them). Entries-added counts every XADD, so entries-added minus the count at `last` is
 * what came after `last`; what of it the stream no longer holds was trimmed (or XDEL'd). A
 * count not known yet (a new ring, a position of an older version) is learnt when the mirror
 * is caught up, or when the stream starts after `last`. */
static uint64_t sample_partition(rc__redis_mirror_t *m, uint32_t p, const xinfo_t *x,
                                 uint64_t *lost)
{
    *lost = 0;
    /* Redis was read up to the batch waiting for room, if any: lost is counted from there. */
    const rc__redis_id_t *last = m->pending ? &m->pend_last[p] : &m->last[p];
    uint64_t pend = m->pending ? m->pend_seen[p] : 0;
    int caught_up = id_cmp(last, &x->lastgen) >= 0;
    int before_first = x->length == 0 || (x->has_first && id_cmp(last, &x->first) < 0);
    if (!x->has_added) /* Redis before 7: only what the stream's start says */
        return (before_first && !caught_up ? x->length : 0) + pend;
    if (m->added_known[p] && x->added < m->added[p] + pend)
        m->added_known[p] = 0; /* the stream was deleted and made again */
    if (!m->added_known[p]) {
        uint64_t at = caught_up ? x->added : x->added - x->length;
        if ((!caught_up && !before_first) || at < pend)
            return pend; /* somewhere inside the stream: known once caught up */
        m->added[p] = at - pend;
        m->added_known[p] = 1;
        return (caught_up ? 0 : x->length) + pend;
    }
    uint64_t behind = x->added - m->added[p] - pend;
    uint64_t held = caught_up            ? 0
                    : before_first       ? x->length
                    : behind < x->length ? behind
                                         : x->length;
    if (behind > held) {
        *lost = behind - held;
        m->added[p] += *lost;
    }
    return held + pend;
}

/* How long the oldest entry of partition p the mirror has not copied has waited (ms, by the
 * node's clock against the entry ID's, which is Redis' clock). */
static uint64_t oldest_wait_ms(rc__redis_mirror_t *m, uint32_t p, const xinfo_t *x)
{
    rc__redis_id_t id = x->first;
    if (!(x->has_first && id_cmp(&m->last[p], &x->first) < 0)) {
        char from[48];
        snprintf(from, sizeof(from), "(%llu-%llu", (unsigned long long)m->last[p].ms,
                 (unsigned long long)m->last[p].seq);
        redisReply *r = lag_command(
            m, p, 6, (const char *[]){"XRANGE", m->conf->keys[p], from, "+", "COUNT", "1"});
        int ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                 r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 1 &&
                 r->element[0]->element[0]->type == REDIS_REPLY_STRING &&
                 parse_id(r->element[0]->element[0]->str, &id) == 0;
        freeReplyObject(r);
        if (!ok)
            return 0;
    }
    int64_t now = clock_ms(CLOCK_REALTIME);
    return now > (int64_t)id.ms ? (uint64_t)(now - (int64_t)id.ms) : 0;
}

/* spec.redis maxAge: XTRIM MINID of each partition (exact: the cost is the entries removed,
 * once a second). Every node mirroring the broker does it; a second XTRIM finds nothing.
 * -1 when Redis did not answer. */
static int trim_by_age(rc__redis_mirror_t *m)
{
    int64_t minid = clock_ms(CLOCK_REALTIME) - (int64_t)m->conf->max_age_ms;
    if (minid <= 0)
        return 0;
    char id[32];
    snprintf(id, sizeof(id), "%lld-0", (long long)minid);
    for (uint32_t p = 0; p < m->conf->partitions; p++) {
        redisReply *r =
            lag_command(m, p, 4, (const char *[]){"XTRIM", m->conf->keys[p], "MINID", id});
        if (r == NULL)
            return -1;
        if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
            atomic_fetch_add(&m->aged, (uint64_t)r->integer);
        else if (r->type == REDIS_REPLY_ERROR && !m->trim_warned++) /* said once */
            rc_log_warn("serve",
                        "broker %s/%s: maxAge: XTRIM %s MINID: %s (Redis 6.2 or later trims by "
                        "age; entries older than maxAge stay while it fails)",
                        m->conf->ns, m->conf->broker, m->conf->keys[p], r->str);
        freeReplyObject(r);
    }
    return 0;
}

/* The entries trimmed before the mirror copied them, counted since the last warning: at most
 * one warning per LOST_LOG_MS (a mirror held back while Redis trims finds more every sample). */
static void log_lost(rc__redis_mirror_t *m)
{
    int64_t now = clock_ms(CLOCK_MONOTONIC);
    if (m->lost_log == 0 || now < m->next_lost_log_ms)
        return;
    const rc__redis_conf_t *cf = m->conf;
    rc_log_warn("serve",
                "broker %s/%s: Redis trimmed %llu entries of %s%s (maxLen or maxAge) before the "
                "mirror copied them: they are not in this node's ring (mirror at %llu-%llu, the "
                "stream starts at %llu-%llu)",
                cf->ns, cf->broker, (unsigned long long)m->lost_log, cf->keys[m->lost_p],
                m->lost_parts > 1 ? " and other partitions" : "",
                (unsigned long long)m->last[m->lost_p].ms,
                (unsigned long long)m->last[m->lost_p].seq, (unsigned long long)m->lost_first.ms,
                (unsigned long long)m->lost_first.seq);
    m->lost_log = 0;
    m->lost_parts = 0;
    m->next_lost_log_ms = now + LOST_LOG_MS;
}

/* One sample of every partition: the lag gauges, and a warning per trimmed gap. -1 when
 * Redis did not answer or refused (the gauges keep their last values). */
static int sample_lag(rc__redis_mirror_t *m)
{
    const rc__redis_conf_t *cf = m->conf;
    uint64_t entries = 0, wait_ms = 0;
    for (uint32_t p = 0; p < cf->partitions; p++) {
        redisReply *r = lag_command(m, p, 3, (const char *[]){"XINFO", "STREAM", cf->keys[p]});
        xinfo_t x;
        memset(&x, 0, sizeof(x));
        x.has_added = 1; /* an absent stream: nothing added, nothing behind */
        if (r != NULL && r->type == REDIS_REPLY_ERROR && strstr(r->str, "no such key") == NULL &&
            !m->lag_warned++) /* an ACL without XINFO, say: said once */
            rc_log_warn("serve",
                        "broker %s/%s: mirror lag: XINFO STREAM %s: %s (the lag gauges are "
                        "not updated while it fails)",
                        cf->ns, cf->broker, cf->keys[p], r->str);
        if (r == NULL || (r->type == REDIS_REPLY_ERROR && strstr(r->str, "no such key") == NULL)) {
            freeReplyObject(r);
            return -1;
        }
        if (r->type == REDIS_REPLY_ARRAY) {
            x.has_added = 0;
            parse_xinfo(r, &x);
        }
        freeReplyObject(r);
        uint64_t lost = 0, held = sample_partition(m, p, &x, &lost);
        if (lost > 0) {
            atomic_fetch_add(&m->trimmed, lost);
            m->lost_parts += m->lost_log == 0 || m->lost_p != p;
            m->lost_log += lost;
            m->lost_p = p;
            m->lost_first = x.first;
        }
        entries += held;
        if (held > 0) {
            uint64_t w = oldest_wait_ms(m, p, &x);
            wait_ms = w > wait_ms ? w : wait_ms;
        }
    }
    atomic_store(&m->lag_entries, entries);
    atomic_store(&m->lag_ms, wait_ms);
    log_lost(m);
    return 0;
}

/* The mirror's periodic work between reads and while it waits for room: maxAge first (so a
 * trim past the mirror is seen in the same turn), then the lag. */
static void mirror_turn(rc__redis_mirror_t *m)
{
    int64_t now = clock_ms(CLOCK_MONOTONIC);
    if (m->conf->max_age_ms > 0 && now >= m->next_trim_ms) {
        m->next_trim_ms = now + (trim_by_age(m) == 0 ? TRIM_MS : TURN_RETRY_MS);
    }
    if (now >= m->next_sample_ms)
        m->next_sample_ms = now + (sample_lag(m) == 0 ? SAMPLE_MS : TURN_RETRY_MS);
}

/* One reply's entries, in stream order per partition. */
typedef struct {
    rc_storage_rec_t *recs;
    const redisReply **vals;
    uint32_t n;
} batch_t;

/* Claims room for b's records in the ring, waiting while it is full (a trigger behind holds
 * it: Redis keeps the events meanwhile). Returns 0, 1 (stopping), or RC_ERING_TOO_BIG. */
static int claim_wait(rc__redis_mirror_t *m, batch_t *b, rc_storage_claim_t *claim)
{
    int warned = 0;
    for (;;) {
        int rc = rc_storage_claim(m->ring, b->recs, b->n, claim);
        if (rc != RC_ERING_FULL)
            return rc;
        if (!warned++)
            rc_log_warn("serve",
                        "broker %s/%s: the ring is full; the mirror waits for its "
                        "readers (Redis keeps the events)",
                        m->conf->ns, m->conf->broker);
        if (atomic_load(&m->stop))
            return 1;
        mirror_turn(m); /* the lag grows while the mirror waits: the gauges say so */
        sleep_ms(5);
    }
}

/* Appends b's records (one claim; one at a time when the batch is larger than the ring). */
static int append(rc__redis_mirror_t *m, batch_t *b)
{
    rc_storage_claim_t claim;
    int rc = claim_wait(m, b, &claim);
    if (rc == RC_ERING_TOO_BIG && b->n > 1) {
        for (uint32_t i = 0; i < b->n; i++) {
            batch_t one = {b->recs + i, b->vals + i, 1};
            if ((rc = append(m, &one)) == 1)
                return 1;
        }
        return 0;
    }
    if (rc == RC_ERING_TOO_BIG) {
        rc_log_warn("serve",
                    "broker %s/%s: a Redis entry of %u bytes is larger than the ring "
                    "can hold: skipped",
                    m->conf->ns, m->conf->broker, b->recs[0].len);
        atomic_fetch_add(&m->skipped, 1);
        return 0;
    }
    if (rc != 0)
        return rc;
    for (uint32_t i = 0; i < b->n; i++)
        memcpy(b->recs[i].data, b->vals[i]->str, b->recs[i].len);
    rc = rc_storage_commit(m->ring, &claim);
    if (rc == 0)
        atomic_fetch_add(&m->copied, b->n);
    return rc;
}

/* The record of one entry [id, [field, value, ...]], NULL when it carries none that decodes;
 * `*has_id` is 1 when the entry had an ID (into `*id`). */
static const redisReply *entry_record(const redisReply *e, rc__redis_id_t *id, int *has_id)
{
    *has_id = 0;
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || parse_id(e->element[0]->str, id) != 0)
        return NULL;
    *has_id = 1;
    const redisReply *f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, RC__REDIS_FIELD) == 0 &&
            v->type == REDIS_REPLY_STRING) {
            rc_record_view_t view;
            return rc_record_decode(v->str, v->len, &view) == 0 ? v : NULL;
        }
    }
    return NULL;
}

/* Copies one XREAD reply: [[key, [entry...]]...]. Returns 0, or 1 when stopping (the position
 * is then not moved: the next start reads those entries again). */
static int copy_reply(rc__redis_mirror_t *m, const redisReply *r, batch_t *b)
{
    rc__redis_id_t last[RC_CONFIG_REDIS_PARTITIONS];
    uint32_t seen[RC_CONFIG_REDIS_PARTITIONS] = {0}; /* entries read per partition */
    memcpy(last, m->last, sizeof(last));
    b->n = 0;
    for (size_t s = 0; s < r->elements; s++) {
        const redisReply *st = r->element[s];
        if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
            st->element[0]->type != REDIS_REPLY_STRING)
            continue;
        int p = rc__redis_partition_of(m->conf, st->element[0]->str);
        const redisReply *es = st->element[1];
        if (p < 0 || es->type != REDIS_REPLY_ARRAY)
            continue;
        for (size_t i = 0; i < es->elements && b->n < MIRROR_COUNT * RC_CONFIG_REDIS_PARTITIONS;
             i++) {
            rc__redis_id_t id;
            int has_id;
            const redisReply *v = entry_record(es->element[i], &id, &has_id);
            if (has_id) {
                last[p] = id;
                seen[p]++;
            }
            if (v == NULL) {
                if (atomic_fetch_add(&m->skipped, 1) == 0)
                    rc_log_warn("serve",
                                "broker %s/%s: Redis stream %s holds an entry that is "
                                "no ringcast record (field '" RC__REDIS_FIELD "'): "
                                "skipped (logged once)",
                                m->conf->ns, m->conf->broker, m->conf->keys[p]);
                continue;
            }
            b->recs[b->n] = (rc_storage_rec_t){.len = (uint32_t)v->len};
            b->vals[b->n++] = v;
        }
    }
    if (b->n > 0) {
        memcpy(m->pend_last, last, sizeof(last));
        memcpy(m->pend_seen, seen, sizeof(seen));
        m->pending = 1;
        int rc = append(m, b);
        m->pending = 0;
        if (rc == 1)
            return 1;
        if (rc != 0)
            rc_log_error("serve", "broker %s/%s: the mirror cannot append to the ring: %s",
                         m->conf->ns, m->conf->broker, rc_strerror(rc));
    }
    memcpy(m->last, last, sizeof(last));
    for (uint32_t p = 0; p < m->conf->partitions; p++)
        m->added[p] += seen[p];
    save_position(m);
    return 0;
}

/* XREAD COUNT BLOCK STREAMS k... id... from the saved position. */
static redisReply *read_streams(rc__redis_mirror_t *m)
{
    const rc__redis_conf_t *cf = m->conf;
    uint32_t np = cf->partitions;
    const char *argv[6 + 2 * RC_CONFIG_REDIS_PARTITIONS];
    size_t lens[6 + 2 * RC_CONFIG_REDIS_PARTITIONS];
    char ids[RC_CONFIG_REDIS_PARTITIONS][48], count[16], block[16];
    snprintf(count, sizeof(count), "%d", MIRROR_COUNT);
    snprintf(block, sizeof(block), "%d", MIRROR_BLOCK_MS);
    int argc = 0;
    argv[argc++] = "XREAD";
    argv[argc++] = "COUNT";
    argv[argc++] = count;
    argv[argc++] = "BLOCK";
    argv[argc++] = block;
    argv[argc++] = "STREAMS";
    for (uint32_t p = 0; p < np; p++)
        argv[argc++] = cf->keys[p];
    for (uint32_t p = 0; p < np; p++) {
        snprintf(ids[p], sizeof(ids[p]), "%llu-%llu", (unsigned long long)m->last[p].ms,
                 (unsigned long long)m->last[p].seq);
        argv[argc++] = ids[p];
    }
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return redisCommandArgv(m->c, argc, argv, lens);
}

/* XREAD [COUNT] STREAMS key id for partition p, as argv (`id` is the caller's buffer). */
static int xread_argv(const rc__redis_mirror_t *m, uint32_t p, const char **argv, size_t *lens,
                      char *id, size_t idlen, char *count, size_t countlen)
{
    snprintf(id, idlen, "%llu-%llu", (unsigned long long)m->last[p].ms,
             (unsigned long long)m->last[p].seq);
    snprintf(count, countlen, "%d", MIRROR_COUNT);
    const char *a[] = {"XREAD", "COUNT", count, "STREAMS", m->conf->keys[p], id};
    for (int i = 0; i < 6; i++) {
        argv[i] = a[i];
        lens[i] = strlen(a[i]);
    }
    return 6;
}

/* One reply of the poll below: copies it when it has entries (NULL: nothing). */
static int cluster_copy(rc__redis_mirror_t *m, redisReply *r, batch_t *b, uint64_t *got)
{
    int rc = 0;
    if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
        uint64_t before = atomic_load(&m->copied) + atomic_load(&m->skipped);
        rc = copy_reply(m, r, b);
        *got += atomic_load(&m->copied) + atomic_load(&m->skipped) - before;
    } else if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        rc_log_warn("serve", "broker %s/%s: mirror: XREAD: %s", m->conf->ns, m->conf->broker,
                    r->str);
    }
    freeReplyObject(r);
    return rc;
}

/* A Redis Cluster's partitions are in different slots, which one XREAD cannot read together
 * (CROSSSLOT), and one BLOCKing XREAD per partition would wait on each in turn: so one XREAD
 * per partition without BLOCK, pipelined per master, all masters at once. A MOVED or ASK is
 * followed at once (rc_redis_cluster_argv); a lost master marks the map stale, and the next
 * poll reads that partition from its new master, from the saved position. Returns the
 * entries seen (0: nothing new), or -1 when stopping. */
static int64_t cluster_poll(rc__redis_mirror_t *m, batch_t *b)
{
    const rc__redis_conf_t *cf = m->conf;
    rc_redis_cluster_t *cl = m->cl;
    int node[RC_CONFIG_REDIS_PARTITIONS];
    char ids[RC_CONFIG_REDIS_PARTITIONS][48], count[16];
    const char *argv[6];
    size_t lens[6];
    uint8_t dead[RC_REDIS_CLUSTER_NODES_MAX] = {0};
    uint32_t moved[RC_CONFIG_REDIS_PARTITIONS], nmoved = 0;
    for (uint32_t p = 0; p < cf->partitions; p++) /* owners first: a refresh happens here */
        node[p] = rc_redis_cluster_node_of(cl, cf->keys[p]);
    for (uint32_t p = 0; p < cf->partitions; p++) {
        /* One connect per node and poll: a master that does not answer costs one timeout. */
        redisContext *c =
            node[p] >= 0 && !dead[node[p]] ? rc_redis_cluster_conn(cl, node[p]) : NULL;
        if (c == NULL) {
            if (node[p] >= 0)
                dead[node[p]] = 1;
            node[p] = -1;
            continue;
        }
        int argc = xread_argv(m, p, argv, lens, ids[p], sizeof(ids[p]), count, sizeof(count));
        redisAppendCommandArgv(c, argc, argv, lens);
    }
    for (uint32_t p = 0; p < cf->partitions; p++) {
        int done = 0;
        redisContext *c = node[p] >= 0 ? rc_redis_cluster_conn(cl, node[p]) : NULL;
        while (c != NULL && !done)
            if (redisBufferWrite(c, &done) != REDIS_OK)
                break;
    }
    uint64_t got = 0;
    for (uint32_t p = 0; p < cf->partitions; p++) {
        if (node[p] < 0 || dead[node[p]])
            continue;
        redisContext *c = rc_redis_cluster_conn(cl, node[p]);
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            rc_log_warn("serve", "broker %s/%s: mirror: lost Redis at %s: %s", cf->ns, cf->broker,
                        rc_redis_cluster_node_name(cl, node[p]), c->errstr);
            rc_redis_cluster_drop(cl, node[p]);
            dead[node[p]] = 1;
            continue;
        }
        int to = -1;
        if (rc_redis_cluster_redirect(cl, r, node[p], &to) > 0) {
            freeReplyObject(r); /* the slot moved (or is moving): read it below */
            moved[nmoved++] = p;
            continue;
        }
        if (cluster_copy(m, r, b, &got) == 1)
            return -1;
    }
    /* Only now, with no reply pending on any connection: routing may refresh the map. */
    for (uint32_t k = 0; k < nmoved; k++) {
        uint32_t p = moved[k];
        int argc = xread_argv(m, p, argv, lens, ids[p], sizeof(ids[p]), count, sizeof(count));
        if (cluster_copy(m, rc_redis_cluster_argv(cl, cf->keys[p], argc, argv, lens), b, &got) == 1)
            return -1;
    }
    return (int64_t)got;
}

/* The mirror of a Redis Cluster: polls, sleeping a little longer each time nothing came (up
 * to POLL_IDLE_MAX ms), not at all while entries come. */
static void cluster_main(rc__redis_mirror_t *m, batch_t *b)
{
    int idle_ms = 0;
    while (!atomic_load(&m->stop)) {
        mirror_turn(m);
        int64_t got = cluster_poll(m, b);
        if (got < 0)
            return;
        if (got > 0) {
            idle_ms = 0;
            continue;
        }
        idle_ms = idle_ms == 0 ? 1 : idle_ms * 2 > POLL_IDLE_MAX ? POLL_IDLE_MAX : idle_ms * 2;
        sleep_ms(idle_ms);
    }
}

static void *mirror_main(void *arg)
{
    rc__redis_mirror_t *m = arg;
    const rc__redis_conf_t *cf = m->conf;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    batch_t b = {
        .recs = calloc(MIRROR_COUNT * RC_CONFIG_REDIS_PARTITIONS, sizeof(rc_storage_rec_t)),
        .vals = calloc(MIRROR_COUNT * RC_CONFIG_REDIS_PARTITIONS, sizeof(redisReply *)),
    };
    int down = 0;
    if (m->cl != NULL && b.recs != NULL && b.vals != NULL)
        cluster_main(m, &b);
    while (m->cl == NULL && b.recs != NULL && b.vals != NULL && !atomic_load(&m->stop)) {
        if (m->c == NULL) {
            char err[256];
            m->c = rc__redis_connect(cf, 1000, err, sizeof(err));
            if (m->c == NULL) {
                if (!down++)
                    rc_log_warn("serve", "broker %s/%s: mirror: %s; retrying", cf->ns, cf->broker,
                                err);
                sleep_ms(RECONNECT_MS);
                continue;
            }
            rc_log_info("serve", "broker %s/%s: mirror: connected to Redis %s:%d again", cf->ns,
                        cf->broker, cf->host, cf->port);
            down = 0;
        }
        mirror_turn(m);
        redisReply *r = read_streams(m);
        if (r == NULL) {
            rc_log_warn("serve", "broker %s/%s: mirror: lost Redis %s:%d: %s", cf->ns, cf->broker,
                        cf->host, cf->port, m->c->errstr);
            redisFree(m->c);
            m->c = NULL;
            down = 1;
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            if (!down++)
                rc_log_error("serve", "broker %s/%s: mirror: XREAD: %s; retrying", cf->ns,
                             cf->broker, r->str);
            sleep_ms(RECONNECT_MS);
        } else if (r->type == REDIS_REPLY_ARRAY) {
            down = 0;
            if (copy_reply(m, r, &b) == 1) {
                freeReplyObject(r);
                break;
            }
        }
        freeReplyObject(r);
    }
    free(b.recs);
    free(b.vals);
    return NULL;
}

int rc__redis_mirror_start(rc__redis_mirror_t *m)
{
    struct timeval tv = {(MIRROR_BLOCK_MS + 2000) / 1000, ((MIRROR_BLOCK_MS + 2000) % 1000) * 1000};
    if (m->c != NULL)
        redisSetTimeout(m->c, tv); /* BLOCK plus a margin: a dead server is noticed */
    int rc = pthread_create(&m->thread, NULL, mirror_main, m);
    if (rc != 0)
        return -rc;
    m->started = 1;
    return 0;
}

void rc__redis_mirror_stop(rc__redis_mirror_t *m)
{
    if (m->started) {
        atomic_store(&m->stop, 1);
        pthread_join(m->thread, NULL);
        m->started = 0;
    }
    if (m->c != NULL)
        redisFree(m->c);
    m->c = NULL;
    rc_redis_cluster_close(m->cl);
    m->cl = NULL;
    rc_redis_cluster_close(m->lag_cl);
    m->lag_cl = NULL;
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
}
