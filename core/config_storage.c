/* Where brokers keep their events (docs/config.md, "Storage"; docs/durability.md).
 *
 *   RingcastConfig spec.storage: {type: memory | file | redis, directory: /abs/path,
 *                                 durability: none | batch | sync, flushInterval: 10ms}
 *   Broker metadata.annotations: ringcast.dev/storage-type, ringcast.dev/storage-directory,
 *                                ringcast.dev/storage-durability,
 *                                ringcast.dev/storage-flush-interval
 *
 * A Broker gives its own storage in annotations, not in spec: Knative's Broker spec is a closed
 * schema (config, delivery) that an API server prunes or refuses unknown fields of, and
 * annotations are where Knative itself puts per-broker choices (eventing.knative.dev/
 * broker.class). Each field a Broker gives wins over spec.storage's; the rest comes from it.
 *
 * Nothing is accepted that the store would not do: durability batch and sync need a file store,
 * and the flush interval applies to batch only. Type redis (docs/scaleout.md) is the same
 * field, not a setting of its own: a Broker opts in with ringcast.dev/storage-type: redis like
 * it opts into files, and needs RingcastConfig spec.redis (config_redis.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/config_internal.h"
#include "core/errors.h"

#define ANNOTATION_PREFIX "ringcast.dev/storage"
#define FLUSH_MIN_MS      1u
#define FLUSH_MAX_MS      10000u
#define FLUSH_DEFAULT_MS  10u

const char *rc_config_storage_type_name(rc_config_storage_type_t t)
{
    return t == RC_CONFIG_STORAGE_FILE ? "file" : t == RC_CONFIG_STORAGE_REDIS ? "redis" : "memory";
}

const char *rc_config_durability_name(rc_config_durability_t d)
{
    return d == RC_CONFIG_DURABILITY_SYNC    ? "sync"
           : d == RC_CONFIG_DURABILITY_BATCH ? "batch"
                                             : "none";
}

/* The four fields, whichever way they are written (`field` names them in messages). */

static int get_type(rc__config_ctx_t *x, yaml_node_t *v, const char *field, rc_config_storage_t *s)
{
    const char *t = NULL;
    int rc = rc__config_get_string(x, v, field, &t);
    if (rc != 0)
        return rc;
    if (strcmp(t, "memory") == 0)
        s->type = RC_CONFIG_STORAGE_MEMORY;
    else if (strcmp(t, "file") == 0)
        s->type = RC_CONFIG_STORAGE_FILE;
    else if (strcmp(t, "redis") == 0)
        s->type = RC_CONFIG_STORAGE_REDIS;
    else
        return rc__config_fail(x, v, "'%s' must be memory, file or redis, not '%s'", field, t);
    s->type_line = rc__config_line(v);
    return 0;
}

static int get_directory(rc__config_ctx_t *x, yaml_node_t *v, const char *field,
                         rc_config_storage_t *s)
{
    const char *d = NULL;
    int rc = rc__config_get_string(x, v, field, &d);
    if (rc != 0)
        return rc;
    /* Absolute: a relative one would depend on the directory serve was started from. */
    if (d[0] != '/')
        return rc__config_fail(x, v, "'%s' must be an absolute path, not '%s'", field, d);
    if (strlen(d) > RC_CONFIG_STORAGE_DIR_MAX)
        return rc__config_fail(x, v, "'%s' is longer than %d bytes", field,
                               RC_CONFIG_STORAGE_DIR_MAX);
    snprintf(s->directory, sizeof(s->directory), "%s", d);
    s->directory_line = rc__config_line(v);
    return 0;
}

static int get_durability(rc__config_ctx_t *x, yaml_node_t *v, const char *field,
                          rc_config_storage_t *s)
{
    const char *d = NULL;
    int rc = rc__config_get_string(x, v, field, &d);
    if (rc != 0)
        return rc;
    if (strcmp(d, "none") == 0)
        s->durability = RC_CONFIG_DURABILITY_NONE;
    else if (strcmp(d, "batch") == 0)
        s->durability = RC_CONFIG_DURABILITY_BATCH;
    else if (strcmp(d, "sync") == 0)
        s->durability = RC_CONFIG_DURABILITY_SYNC;
    else
        return rc__config_fail(x, v, "'%s' must be none, batch or sync, not '%s'", field, d);
    s->durability_line = rc__config_line(v);
    return 0;
}

/* Shorter than 1 ms would fdatasync back to back (that is sync without its promise); longer
 * than 10 s loses more on a power failure than anyone configuring batch means to. */
static int get_flush_interval(rc__config_ctx_t *x, yaml_node_t *v, const char *field,
                              rc_config_storage_t *s)
{
    uint32_t ms = 0;
    int rc = rc__config_get_duration(x, v, field, &ms);
    if (rc != 0)
        return rc;
    if (ms < FLUSH_MIN_MS || ms > FLUSH_MAX_MS)
        return rc__config_fail(x, v, "'%s' must be between 1ms and 10s, not %ums", field, ms);
    s->flush_interval_ms = ms;
    s->flush_interval_line = rc__config_line(v);
    return 0;
}

/* ---- RingcastConfig spec.storage ------------------------------------------------------------ */

static int settings_field(rc__config_ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_storage_t *s = arg;
    if (strcmp(key, "type") == 0)
        return get_type(x, v, "spec.storage.type", s);
    if (strcmp(key, "directory") == 0)
        return get_directory(x, v, "spec.storage.directory", s);
    if (strcmp(key, "durability") == 0)
        return get_durability(x, v, "spec.storage.durability", s);
    if (strcmp(key, "flushInterval") == 0)
        return get_flush_interval(x, v, "spec.storage.flushInterval", s);
    return rc__config_unknown_field(x, v, "spec.storage.", key);
}

int rc__config_storage_settings(rc__config_ctx_t *x, yaml_node_t *v)
{
    return rc__config_walk_map(x, v, "spec.storage", settings_field, &x->cfg->storage);
}

/* ---- Broker annotations --------------------------------------------------------------------- */

int rc__config_storage_annotation(rc__config_ctx_t *x, const char *key, yaml_node_t *v,
                                  rc_config_storage_t *s)
{
    if (strncmp(key, ANNOTATION_PREFIX, sizeof(ANNOTATION_PREFIX) - 1) != 0)
        return 0; /* other annotations are decorative */
    char field[96];
    snprintf(field, sizeof(field), "metadata.annotations.%s", key);
    const char *name = key + sizeof(ANNOTATION_PREFIX) - 1;
    if (strcmp(name, "-type") == 0)
        return get_type(x, v, field, s);
    if (strcmp(name, "-directory") == 0)
        return get_directory(x, v, field, s);
    if (strcmp(name, "-durability") == 0)
        return get_durability(x, v, field, s);
    if (strcmp(name, "-flush-interval") == 0)
        return get_flush_interval(x, v, field, s);
    return rc__config_fail(x, v,
                           "unknown annotation '%s' (a Broker's storage annotations are "
                           "ringcast.dev/storage-type, -directory, -durability and "
                           "-flush-interval)",
                           key);
}

/* ---- after the last document ------------------------------------------------------------------
 */

/* "FILE:LINE: message" for a setting whose node is gone (the documents are freed by now). */
__attribute__((format(printf, 3, 4))) static int fail_at(rc__config_ctx_t *x, int line,
                                                         const char *fmt, ...)
{
    int n = snprintf(x->err, x->err_len, "%s:%d: ", x->file, line);
    if (n > 0 && (size_t)n < x->err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->err + n, x->err_len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return RC_ECONFIG;
}

/* batch and sync are promises about a disk; a memory store (/dev/shm) has none to keep them on,
 * and a flush interval means nothing but to batch. */
static int check_durability(rc__config_ctx_t *x, const rc_config_broker_t *b,
                            const rc_config_storage_t *s)
{
    if (s->type == RC_CONFIG_STORAGE_MEMORY && s->durability != RC_CONFIG_DURABILITY_NONE)
        return fail_at(x, s->durability_line,
                       "Broker %s/%s: durability %s needs storage type file (a memory store "
                       "lives in /dev/shm, which no fdatasync puts on a disk); set type: file "
                       "with a directory, or durability: none",
                       b->ns, b->name, rc_config_durability_name(s->durability));
    if (s->type == RC_CONFIG_STORAGE_REDIS && s->durability != RC_CONFIG_DURABILITY_NONE)
        return fail_at(x, s->durability_line,
                       "Broker %s/%s: durability %s applies to storage type file; a redis "
                       "store answers 202 once Redis acknowledged the event (and, with "
                       "spec.redis.replicas, its replicas): remove it",
                       b->ns, b->name, rc_config_durability_name(s->durability));
    if (s->flush_interval_line != 0 && s->durability != RC_CONFIG_DURABILITY_BATCH)
        return fail_at(x, s->flush_interval_line,
                       "Broker %s/%s: flushInterval applies to durability batch only, and this "
                       "broker's durability is %s; remove it",
                       b->ns, b->name, rc_config_durability_name(s->durability));
    return 0;
}

/* A redis store needs spec.redis; deduplication is refused with it: the table is each node's
 * own (a retry reaching another node is not seen) and it remembers a key at the publish, before
 * Redis acknowledged, so a refused XADD would make the client's retry look like a duplicate. */
static int check_redis(rc__config_ctx_t *x, const rc_config_broker_t *b,
                       const rc_config_storage_t *s)
{
    if (s->type != RC_CONFIG_STORAGE_REDIS)
        return 0;
    if (x->cfg->redis.host[0] == '\0')
        return fail_at(x, s->type_line ? s->type_line : b->line,
                       "Broker %s/%s: storage type redis needs 'spec.redis.addresses' in the "
                       "RingcastConfig (the Redis server's host:port)",
                       b->ns, b->name);
    if (b->dedup_window_ms != 0)
        return fail_at(x, b->dedup_line,
                       "Broker %s/%s: ringcast.dev/dedup-window is not supported with storage "
                       "type redis yet (docs/scaleout.md); remove one of them",
                       b->ns, b->name);
    return 0;
}

int rc__config_storage_resolve(rc__config_ctx_t *x)
{
    rc_config_t *c = x->cfg;
    const rc_config_storage_t *d = &c->storage;
    int files = 0, redis = 0;
    for (size_t i = 0; i < c->broker_count; i++) {
        rc_config_broker_t *b = &c->brokers[i];
        rc_config_storage_t *s = &b->storage;
        int own_dir = s->directory_line != 0;
        if (s->type_line == 0) {
            s->type = d->type;
            s->type_line = d->type_line;
        }
        if (!own_dir) {
            memcpy(s->directory, d->directory, sizeof(s->directory));
            s->directory_line = d->directory_line;
        }
        if (s->durability_line == 0) {
            s->durability = d->durability;
            s->durability_line = d->durability_line;
        }
        if (s->flush_interval_line == 0) {
            s->flush_interval_ms = d->flush_interval_ms;
            s->flush_interval_line = d->flush_interval_line;
        }
        if (s->flush_interval_ms == 0)
            s->flush_interval_ms = FLUSH_DEFAULT_MS;
        int rc = check_durability(x, b, s);
        if (rc != 0)
            return rc;
        if (s->type == RC_CONFIG_STORAGE_FILE && s->directory[0] == '\0')
            return fail_at(x, s->type_line ? s->type_line : b->line,
                           "Broker %s/%s: storage type file needs a directory "
                           "('spec.storage.directory', or the Broker's annotation "
                           "ringcast.dev/storage-directory)",
                           b->ns, b->name);
        if (s->type != RC_CONFIG_STORAGE_FILE && own_dir)
            return fail_at(x, s->directory_line,
                           "Broker %s/%s: annotation ringcast.dev/storage-directory applies to "
                           "storage type file, and this broker's type is %s (add "
                           "ringcast.dev/storage-type: file, or remove the directory)",
                           b->ns, b->name, rc_config_storage_type_name(s->type));
        rc = check_redis(x, b, s);
        if (rc != 0)
            return rc;
        files += s->type == RC_CONFIG_STORAGE_FILE;
        redis += s->type == RC_CONFIG_STORAGE_REDIS;
    }
    if (c->redis.line != 0 && redis == 0)
        return fail_at(x, c->redis.line,
                       "'spec.redis' is given, but no broker keeps its events in Redis "
                       "(spec.storage.type is %s and no Broker has the annotation "
                       "ringcast.dev/storage-type: redis)",
                       rc_config_storage_type_name(d->type));
    /* A directory for file stores that no broker has would be ignored. */
    if (d->directory_line != 0 && files == 0)
        return fail_at(x, d->directory_line,
                       "'spec.storage.directory' is given, but no broker keeps its events in "
                       "files (spec.storage.type is %s and no Broker has the annotation "
                       "ringcast.dev/storage-type: file)",
                       rc_config_storage_type_name(d->type));
    return 0;
}
