/* RingcastConfig spec.redis: where brokers of storage type redis keep their events
 * (docs/config.md "Redis", docs/scaleout.md).
 *
 *   spec.redis: {addresses: [host:port], password: s | passwordFile: /abs/path,
 *                partitions: 1, maxLen: 1000000, replicas: 0, waitTimeout: 1s,
 *                maxAge: 24h, claimIdle: 30s, nodeId: hostname:port}
 *
 * One address for a standalone server; for a Redis Cluster, one or more seeds (the masters and
 * slots are found from them: net/storage/redis_cluster.c). Several addresses of a server that
 * is not a cluster are refused at start, not reduced to the first. The password may come from a
 * file so that it stays out of the config (a Kubernetes Secret mounted as a file); it is read once,
 * here, like the rest of the config. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/config_internal.h"
#include "core/errors.h"

#define MAXLEN_DEFAULT       1000000u
#define WAIT_TIMEOUT_DEFAULT 1000u
#define REPLICAS_MAX         16
#define CLAIM_IDLE_DEFAULT   30000u
#define MAX_AGE_MIN_MS       1000ull             /* the mirror trims once a second */
#define MAX_AGE_MAX_MS       (8760ull * 3600000) /* a year */
/* Below it, a node in a pause or a slow retry loses its events to the others: a test setting. */
#define CLAIM_IDLE_MIN 100u

/* host:port, the host a name or an IPv4 literal, or [IPv6]:port. */
static int parse_address(const char *s, char *host, size_t host_len, int *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return -EINVAL;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (s[0] == '[') {
        if (hl < 3 || s[hl - 1] != ']')
            return -EINVAL;
        h = s + 1;
        hl -= 2;
    } else {
        for (size_t i = 0; i < hl; i++) {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-'))
                return -EINVAL;
        }
    }
    if (hl == 0 || hl >= host_len)
        return -EINVAL;
    long p = 0;
    const char *d = colon + 1;
    if (*d == '\0' || strlen(d) > 5)
        return -EINVAL;
    for (; *d != '\0'; d++) {
        if (*d < '0' || *d > '9')
            return -EINVAL;
        p = p * 10 + (*d - '0');
    }
    if (p < 1 || p > 65535)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

static int get_addresses(rc__config_ctx_t *x, yaml_node_t *v, rc_config_redis_t *r)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return rc__config_fail(x, v, "'spec.redis.addresses' must be a list of host:port");
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0)
        return rc__config_fail(x, v,
                               "'spec.redis.addresses' is empty: give the Redis server's "
                               "host:port");
    if (n > RC_CONFIG_REDIS_ADDRESSES)
        return rc__config_fail(x, rc__config_node(x, v->data.sequence.items.start[n - 1]),
                               "'spec.redis.addresses' lists %zu addresses; at most %d (a few "
                               "seeds of a Redis Cluster are enough: the rest is found from them)",
                               n, RC_CONFIG_REDIS_ADDRESSES);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = rc__config_node(x, v->data.sequence.items.start[i]);
        const char *s = rc__config_scalar(item);
        if (s == NULL)
            return rc__config_fail(x, item,
                                   "'spec.redis.addresses' items must be host:port strings");
        rc_config_redis_addr_t *a = &r->addresses[i];
        if (parse_address(s, a->host, sizeof(a->host), &a->port) != 0)
            return rc__config_fail(x, item,
                                   "'spec.redis.addresses' item must be host:port such as "
                                   "127.0.0.1:6379, redis.example:6379 or [::1]:6379, not '%s'",
                                   s);
        for (size_t k = 0; k < i; k++)
            if (r->addresses[k].port == a->port && strcmp(r->addresses[k].host, a->host) == 0)
                return rc__config_fail(x, item,
                                       "'spec.redis.addresses' lists '%s' twice (items %zu "
                                       "and %zu)",
                                       s, k + 1, i + 1);
    }
    r->n_addresses = (uint32_t)n;
    memcpy(r->host, r->addresses[0].host, sizeof(r->host));
    r->port = r->addresses[0].port;
    r->addresses_line = rc__config_line(v);
    return 0;
}

/* The password file's first line (a trailing newline is not part of it). */
static int get_password_file(rc__config_ctx_t *x, yaml_node_t *v, rc_config_redis_t *r)
{
    const char *path = NULL;
    int rc = rc__config_get_string(x, v, "spec.redis.passwordFile", &path);
    if (rc != 0)
        return rc;
    if (path[0] != '/')
        return rc__config_fail(x, v, "'spec.redis.passwordFile' must be an absolute path, not '%s'",
                               path);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return rc__config_fail(x, v, "'spec.redis.passwordFile' %s: %s", path, strerror(errno));
    char buf[RC_CONFIG_REDIS_PASSWORD_MAX + 2];
    size_t got = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[got] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (buf[0] == '\0')
        return rc__config_fail(x, v, "'spec.redis.passwordFile' %s is empty", path);
    if (strlen(buf) > RC_CONFIG_REDIS_PASSWORD_MAX)
        return rc__config_fail(x, v,
                               "'spec.redis.passwordFile' %s: the password is longer than "
                               "%d bytes",
                               path, RC_CONFIG_REDIS_PASSWORD_MAX);
    memcpy(r->password, buf, strlen(buf) + 1); /* fits: checked above */
    return 0;
}

static int get_password(rc__config_ctx_t *x, yaml_node_t *v, rc_config_redis_t *r)
{
    const char *s = NULL;
    int rc = rc__config_get_string(x, v, "spec.redis.password", &s);
    if (rc != 0)
        return rc;
    if (s[0] == '\0' || strlen(s) > RC_CONFIG_REDIS_PASSWORD_MAX)
        return rc__config_fail(x, v, "'spec.redis.password' must be 1 to %d bytes",
                               RC_CONFIG_REDIS_PASSWORD_MAX);
    snprintf(r->password, sizeof(r->password), "%s", s);
    return 0;
}

/* The node's consumer name in the triggers' groups: printable, no spaces (it appears in
 * XINFO and in logs), stable across restarts of the node. */
static int get_node_id(rc__config_ctx_t *x, yaml_node_t *v, rc_config_redis_t *r)
{
    const char *s = NULL;
    int rc = rc__config_get_string(x, v, "spec.redis.nodeId", &s);
    if (rc != 0)
        return rc;
    size_t n = strlen(s);
    if (n == 0 || n > RC_CONFIG_REDIS_NODE_ID_MAX)
        return rc__config_fail(x, v, "'spec.redis.nodeId' must be 1 to %d bytes",
                               RC_CONFIG_REDIS_NODE_ID_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':'))
            return rc__config_fail(x, v,
                                   "'spec.redis.nodeId' may hold letters, digits and . - _ : "
                                   "only, not '%c' in '%s'",
                                   c, s);
    }
    memcpy(r->node_id, s, n + 1);
    return 0;
}

/* Retention by time: entries older than this are trimmed (XTRIM MINID, docs/scaleout.md),
 * besides maxLen. Longer than the 24h of other durations: a week of events is a fair ask. */
static int get_max_age(rc__config_ctx_t *x, yaml_node_t *v, rc_config_redis_t *r)
{
    const char *s = rc__config_scalar(v);
    uint64_t ms = 0;
    if (s == NULL || rc_config_parse_duration_ms(s, &ms) != 0 || ms < MAX_AGE_MIN_MS ||
        ms > MAX_AGE_MAX_MS)
        return rc__config_fail(x, v,
                               "'spec.redis.maxAge' must be a duration from 1s to 8760h (a year) "
                               "such as 30m, 24h or 168h, not '%s' (leave it out to keep entries "
                               "of any age, up to maxLen)",
                               s ? s : "(not a scalar)");
    r->max_age_ms = ms;
    return 0;
}

typedef struct {
    rc_config_redis_t *r;
    int password_line, file_line;
} walk_t;

static int redis_field(rc__config_ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    walk_t *w = arg;
    rc_config_redis_t *r = w->r;
    int64_t n = 0;
    int rc;
    if (strcmp(key, "addresses") == 0)
        return get_addresses(x, v, r);
    if (strcmp(key, "password") == 0 || strcmp(key, "passwordFile") == 0) {
        int *mine = key[8] == '\0' ? &w->password_line : &w->file_line;
        int other = key[8] == '\0' ? w->file_line : w->password_line;
        if (other != 0)
            return rc__config_fail(x, v,
                                   "give 'spec.redis.password' or 'passwordFile', not both "
                                   "(the other is on line %d)",
                                   other);
        *mine = rc__config_line(v);
        return key[8] == '\0' ? get_password(x, v, r) : get_password_file(x, v, r);
    }
    if (strcmp(key, "partitions") == 0) {
        rc = rc__config_get_int(x, v, "spec.redis.partitions", 1, RC_CONFIG_REDIS_PARTITIONS, &n);
        r->partitions = (uint32_t)n;
        return rc;
    }
    if (strcmp(key, "maxLen") == 0) {
        rc = rc__config_get_int(x, v, "spec.redis.maxLen", 0, INT64_MAX, &n);
        r->max_len = (uint64_t)n;
        return rc;
    }
    if (strcmp(key, "maxAge") == 0)
        return get_max_age(x, v, r);
    if (strcmp(key, "replicas") == 0) {
        rc = rc__config_get_int(x, v, "spec.redis.replicas", 0, REPLICAS_MAX, &n);
        r->replicas = (uint32_t)n;
        return rc;
    }
    if (strcmp(key, "waitTimeout") == 0)
        return rc__config_get_duration(x, v, "spec.redis.waitTimeout", &r->wait_timeout_ms);
    if (strcmp(key, "claimIdle") == 0) {
        rc = rc__config_get_duration(x, v, "spec.redis.claimIdle", &r->claim_idle_ms);
        if (rc == 0 && r->claim_idle_ms < CLAIM_IDLE_MIN)
            return rc__config_fail(x, v,
                                   "'spec.redis.claimIdle' must be at least %ums: entries idle "
                                   "that long are taken from the node that read them",
                                   CLAIM_IDLE_MIN);
        return rc;
    }
    if (strcmp(key, "nodeId") == 0)
        return get_node_id(x, v, r);
    return rc__config_unknown_field(x, v, "spec.redis.", key);
}

int rc__config_redis_settings(rc__config_ctx_t *x, yaml_node_t *v)
{
    rc_config_redis_t *r = &x->cfg->redis;
    r->partitions = 1;
    r->max_len = MAXLEN_DEFAULT;
    r->wait_timeout_ms = WAIT_TIMEOUT_DEFAULT;
    r->claim_idle_ms = CLAIM_IDLE_DEFAULT;
    r->line = rc__config_line(v);
    walk_t w = {.r = r};
    int rc = rc__config_walk_map(x, v, "spec.redis", redis_field, &w);
    if (rc != 0)
        return rc;
    if (r->host[0] == '\0')
        return rc__config_fail(x, v,
                               "'spec.redis' needs 'addresses' (the Redis server's "
                               "host:port)");
    return 0;
}
