/* Loading the broker's YAML configuration with libyaml's document API: every node carries its
 * line, so each error names the file and line of the offending node. Parsing fills a private
 * rc_config_t that is handed to the caller only when the whole file is valid. */
#include "core/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "core/config_internal.h"
#include "core/delivery_policy.h"
#include "core/errors.h"

#define MAX_CONFIG_FILE (16u * 1024 * 1024)

typedef rc__config_ctx_t ctx_t;

typedef int (*doc_parser_t)(ctx_t *x, yaml_node_t *root);

static int parse_broker(ctx_t *x, yaml_node_t *root);
static int parse_settings(ctx_t *x, yaml_node_t *root);

/* The kinds a config file may hold. */
static const struct {
    const char *api_version;
    const char *kind;
    doc_parser_t parse;
} kinds[] = {
    {"eventing.knative.dev/v1", "Broker", parse_broker},
    {"ringcast.dev/v1alpha1", "RingcastConfig", parse_settings},
    {"eventing.knative.dev/v1", "Trigger", rc__config_parse_trigger},
    {"v1", "Service", rc__config_parse_service},
};

static int line_of(const yaml_node_t *n)
{
    return n ? (int)n->start_mark.line + 1 : 0;
}

__attribute__((format(printf, 3, 4))) static int fail(ctx_t *x, const yaml_node_t *n,
                                                      const char *fmt, ...)
{
    int off = snprintf(x->err, x->err_len, "%s:%d: ", x->file, line_of(n));
    if (off < 0 || (size_t)off >= x->err_len)
        return RC_ECONFIG;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err + off, x->err_len - (size_t)off, fmt, ap);
    va_end(ap);
    return RC_ECONFIG;
}

static yaml_node_t *node(ctx_t *x, int index)
{
    return yaml_document_get_node(x->doc, index);
}

static const char *scalar(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Walks a mapping, calling `field` for every key; refuses non-scalar and duplicate keys. */
typedef int (*field_fn)(ctx_t *x, const char *key, yaml_node_t *value, void *arg);

static int walk_map(ctx_t *x, yaml_node_t *map, const char *what, field_fn field, void *arg)
{
    if (map->type != YAML_MAPPING_NODE)
        return fail(x, map, "%s must be a mapping", what);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node(x, p->key);
        const char *key = scalar(k);
        if (key == NULL)
            return fail(x, k, "%s: keys must be plain strings", what);
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            const char *prev = scalar(node(x, q->key));
            if (prev != NULL && strcmp(prev, key) == 0)
                return fail(x, k, "%s: duplicate field '%s'", what, key);
        }
        int rc = field(x, key, node(x, p->value), arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int unknown_field(ctx_t *x, yaml_node_t *v, const char *where, const char *key)
{
    return fail(x, v, "unknown field '%s%s'", where, key);
}

static int get_string(ctx_t *x, yaml_node_t *v, const char *field, const char **out)
{
    const char *s = scalar(v);
    if (s == NULL)
        return fail(x, v, "'%s' must be a string", field);
    *out = s;
    return 0;
}

static int get_int(ctx_t *x, yaml_node_t *v, const char *field, int64_t lo, int64_t hi,
                   int64_t *out)
{
    const char *s = scalar(v);
    char *end = NULL;
    errno = 0;
    long long n = s ? strtoll(s, &end, 10) : 0;
    if (s == NULL || *s == '\0' || *end != '\0' || errno != 0 || n < lo || n > hi)
        return fail(x, v, "'%s' must be an integer from %lld to %lld, not '%s'", field,
                    (long long)lo, (long long)hi, s ? s : "(not a scalar)");
    *out = n;
    return 0;
}

static int get_size(ctx_t *x, yaml_node_t *v, const char *field, uint64_t lo, uint64_t hi,
                    uint64_t *out)
{
    const char *s = scalar(v);
    uint64_t n = 0;
    if (s == NULL || rc_config_parse_size(s, &n) != 0)
        return fail(x, v, "'%s' must be a size such as 1048576, 512Ki or 16Mi, not '%s'", field,
                    s ? s : "(not a scalar)");
    if (n < lo || n > hi)
        return fail(x, v, "'%s' must be between %llu and %llu bytes, not %llu", field,
                    (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)n);
    *out = n;
    return 0;
}

static int get_duration(ctx_t *x, yaml_node_t *v, const char *field, uint32_t *out)
{
    const char *s = scalar(v);
    uint64_t ms = 0;
    if (s == NULL || rc_config_parse_duration_ms(s, &ms) != 0 || ms == 0 || ms > 86400000)
        return fail(x, v,
                    "'%s' must be a duration from 1ms to 24h such as 500ms, 10s or 2m, "
                    "not '%s'",
                    field, s ? s : "(not a scalar)");
    *out = (uint32_t)ms;
    return 0;
}

static int valid_dns_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RC_CONFIG_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return 0;
    }
    return 1;
}

static int dup_string(ctx_t *x, yaml_node_t *v, const char *field, char **out)
{
    const char *s = NULL;
    int rc = get_string(x, v, field, &s);
    if (rc != 0)
        return rc;
    free(*out);
    *out = strdup(s);
    return *out ? 0 : -ENOMEM;
}

/* ---- Broker ------------------------------------------------------------------------------ */

static int dls_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_delivery_t *d = arg;
    if (strcmp(key, "uri") == 0) {
        int rc = dup_string(x, v, "spec.delivery.deadLetterSink.uri", &d->dead_letter_uri);
        if (rc == 0 && strstr(d->dead_letter_uri, "://") == NULL)
            return fail(x, v,
                        "'spec.delivery.deadLetterSink.uri' must be an absolute URI, "
                        "not '%s'",
                        d->dead_letter_uri);
        if (rc == 0) {
            rc_delivery_t check;
            char msg[256];
            rc_delivery_init(&check);
            if (rc_delivery_set(&check, "deadLetterSink.uri", d->dead_letter_uri,
                                strlen(d->dead_letter_uri), msg, sizeof(msg)) != 0)
                return fail(x, v, "%s", msg);
        }
        return rc;
    }
    if (strcmp(key, "ref") == 0)
        return fail(x, v, "'spec.delivery.deadLetterSink.ref' is not supported yet; use uri");
    return unknown_field(x, v, "spec.delivery.deadLetterSink.", key);
}

static int delivery_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_delivery_t *d = arg;
    static const struct {
        const char *name;
        size_t off;
    } durations[] = {
        {"backoffDelay", offsetof(rc_config_delivery_t, backoff_delay)},
        {"backoffMax", offsetof(rc_config_delivery_t, backoff_max)},
        {"timeout", offsetof(rc_config_delivery_t, timeout)},
        {"retryAfterMax", offsetof(rc_config_delivery_t, retry_after_max)},
    };
    if (strcmp(key, "retry") == 0)
        return get_int(x, v, "spec.delivery.retry", 0, 1000, &d->retry);
    if (strcmp(key, "backoffPolicy") == 0) {
        int rc = dup_string(x, v, "spec.delivery.backoffPolicy", &d->backoff_policy);
        if (rc == 0 && strcmp(d->backoff_policy, "exponential") != 0 &&
            strcmp(d->backoff_policy, "linear") != 0)
            return fail(x, v,
                        "'spec.delivery.backoffPolicy' must be exponential or linear, "
                        "not '%s'",
                        d->backoff_policy);
        return rc;
    }
    if (strcmp(key, "format") == 0) {
        int rc = dup_string(x, v, "spec.delivery.format", &d->format);
        if (rc == 0 && strcmp(d->format, "binary") != 0 && strcmp(d->format, "json") != 0)
            return fail(x, v, "'spec.delivery.format' must be binary or json, not '%s'", d->format);
        return rc;
    }
    if (strcmp(key, "deadLetterSink") == 0)
        return walk_map(x, v, "spec.delivery.deadLetterSink", dls_field, d);
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        if (strcmp(key, durations[i].name) == 0) {
            char **slot = (char **)((char *)d + durations[i].off);
            char field[64];
            snprintf(field, sizeof(field), "spec.delivery.%s", key);
            int rc = dup_string(x, v, field, slot);
            if (rc == 0) {
                /* The delivery policy's own parser decides, so a file that loads is one the
                 * workers can run (its message names the field and the problem). */
                rc_delivery_t check;
                char msg[256];
                rc_delivery_init(&check);
                if (rc_delivery_set(&check, key, *slot, strlen(*slot), msg, sizeof(msg)) != 0)
                    return fail(x, v, "%s", msg);
            }
            return rc;
        }
    }
    return unknown_field(x, v, "spec.delivery.", key);
}

static int broker_spec_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_broker_t *b = arg;
    if (strcmp(key, "delivery") == 0)
        return walk_map(x, v, "spec.delivery", delivery_field, &b->delivery);
    if (strcmp(key, "config") == 0)
        return 0; /* Knative's broker class config reference; meaningless here, accepted */
    return unknown_field(x, v, "spec.", key);
}

static int metadata_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_broker_t *b = arg; /* NULL for documents whose metadata is only decorative */
    const char *s = NULL;
    if (strcmp(key, "labels") == 0 || strcmp(key, "annotations") == 0) {
        if (v->type != YAML_MAPPING_NODE)
            return fail(x, v, "'metadata.%s' must be a mapping", key);
        return 0;
    }
    if (strcmp(key, "name") != 0 && strcmp(key, "namespace") != 0)
        return unknown_field(x, v, "metadata.", key);
    char field[32];
    snprintf(field, sizeof(field), "metadata.%s", key);
    int rc = get_string(x, v, field, &s);
    if (rc != 0)
        return rc;
    if (!valid_dns_label(s))
        return fail(x, v,
                    "'%s' must be a DNS label (lowercase letters, digits and '-', at most "
                    "63 characters), not '%s'",
                    field, s);
    if (b != NULL)
        strcpy(strcmp(key, "name") == 0 ? b->name : b->ns, s);
    return 0;
}

static int broker_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    if (strcmp(key, "apiVersion") == 0 || strcmp(key, "kind") == 0)
        return 0;
    if (strcmp(key, "metadata") == 0)
        return walk_map(x, v, "metadata", metadata_field, arg);
    if (strcmp(key, "spec") == 0)
        return walk_map(x, v, "spec", broker_spec_field, arg);
    if (strcmp(key, "status") == 0)
        return 0; /* manifests exported from a cluster carry status; it is output only */
    return unknown_field(x, v, "", key);
}

static void delivery_free(rc_config_delivery_t *d)
{
    free(d->backoff_policy);
    free(d->backoff_delay);
    free(d->backoff_max);
    free(d->timeout);
    free(d->retry_after_max);
    free(d->dead_letter_uri);
    free(d->format);
    memset(d, 0, sizeof(*d));
    d->retry = -1;
}

static int parse_broker(ctx_t *x, yaml_node_t *root)
{
    rc_config_t *c = x->cfg;
    rc_config_broker_t b;
    memset(&b, 0, sizeof(b));
    b.delivery.retry = -1;
    b.line = line_of(root);
    strcpy(b.ns, "default");
    int rc = walk_map(x, root, "Broker", broker_field, &b);
    if (rc == 0 && b.name[0] == '\0')
        rc = fail(x, root, "Broker has no metadata.name");
    for (size_t i = 0; rc == 0 && i < c->broker_count; i++) {
        if (strcmp(c->brokers[i].ns, b.ns) == 0 && strcmp(c->brokers[i].name, b.name) == 0)
            rc = fail(x, root, "Broker %s/%s is defined twice (first at line %d)", b.ns, b.name,
                      c->brokers[i].line);
    }
    if (rc == 0) {
        rc_config_broker_t *nb = realloc(c->brokers, (c->broker_count + 1) * sizeof(*nb));
        if (nb == NULL) {
            rc = -ENOMEM;
        } else {
            c->brokers = nb;
            c->brokers[c->broker_count++] = b;
            return 0;
        }
    }
    delivery_free(&b.delivery);
    return rc;
}

/* ---- RingcastConfig ---------------------------------------------------------------------- */

static int limits_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_limits_t *l = arg;
    uint64_t n;
    int64_t i;
    int rc;
    char field[64];
    snprintf(field, sizeof(field), "spec.limits.%s", key);
    if (strcmp(key, "maxEventBytes") == 0)
        return get_size(x, v, field, 256, 1ull << 30, &l->max_event_bytes);
    if (strcmp(key, "maxBatchBytes") == 0)
        return get_size(x, v, field, 256, 1ull << 30, &l->max_batch_bytes);
    if (strcmp(key, "maxHeaderBytes") == 0) {
        rc = get_size(x, v, field, 1024, 1u << 20, &n);
        l->max_header_bytes = (uint32_t)n;
        return rc;
    }
    if (strcmp(key, "maxBatchEvents") == 0) {
        rc = get_int(x, v, field, 1, 1000000, &i);
        l->max_batch_events = (uint32_t)i;
        return rc;
    }
    if (strcmp(key, "maxConnections") == 0) {
        rc = get_int(x, v, field, 1, 1000000, &i);
        l->max_connections = (uint32_t)i;
        return rc;
    }
    if (strcmp(key, "headerTimeout") == 0)
        return get_duration(x, v, field, &l->header_timeout_ms);
    if (strcmp(key, "bodyTimeout") == 0)
        return get_duration(x, v, field, &l->body_timeout_ms);
    if (strcmp(key, "idleTimeout") == 0)
        return get_duration(x, v, field, &l->idle_timeout_ms);
    return unknown_field(x, v, "spec.limits.", key);
}

static int ring_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_t *c = arg;
    if (strcmp(key, "size") == 0) {
        int rc = get_size(x, v, "spec.ring.size", 64 * 1024, 1ull << 36, &c->ring_bytes);
        if (rc == 0 && (c->ring_bytes & (c->ring_bytes - 1)) != 0)
            return fail(x, v, "'spec.ring.size' must be a power of two, not %llu",
                        (unsigned long long)c->ring_bytes);
        return rc;
    }
    if (strcmp(key, "namePrefix") == 0) {
        const char *s = NULL;
        int rc = get_string(x, v, "spec.ring.namePrefix", &s);
        if (rc == 0 && !rc_config_valid_ring_prefix(s))
            return fail(x, v,
                        "'spec.ring.namePrefix' must be 1-%d characters of [A-Za-z0-9_-], "
                        "not '%s'",
                        RC_CONFIG_RING_PREFIX_MAX, s);
        if (rc == 0)
            strcpy(c->ring_prefix, s);
        return rc;
    }
    return unknown_field(x, v, "spec.ring.", key);
}

static int addr_field(ctx_t *x, yaml_node_t *v, const char *field, char *host, int *port)
{
    const char *s = NULL;
    int rc = get_string(x, v, field, &s);
    if (rc != 0)
        return rc;
    if (rc_config_parse_addr(s, host, RC_CONFIG_ADDR_MAX, port) != 0)
        return fail(x, v, "'%s' must be IP:PORT such as 127.0.0.1:8080 or [::1]:8080, not '%s'",
                    field, s);
    return 0;
}

static int settings_spec_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_t *c = arg;
    int64_t i;
    int rc;
    if (strcmp(key, "listen") == 0)
        return addr_field(x, v, "spec.listen", c->listen_host, &c->listen_port);
    if (strcmp(key, "admin") == 0)
        return addr_field(x, v, "spec.admin", c->admin_host, &c->admin_port);
    if (strcmp(key, "ingressLoops") == 0) {
        rc = get_int(x, v, "spec.ingressLoops", 1, 64, &i);
        c->ingress_loops = (uint32_t)i;
        return rc;
    }
    if (strcmp(key, "retryAfterSeconds") == 0) {
        rc = get_int(x, v, "spec.retryAfterSeconds", 1, 3600, &i);
        c->retry_after_s = (uint32_t)i;
        return rc;
    }
    if (strcmp(key, "shutdownTimeout") == 0)
        return get_duration(x, v, "spec.shutdownTimeout", &c->shutdown_timeout_ms);
    if (strcmp(key, "logLevel") == 0) {
        const char *s = NULL;
        rc = get_string(x, v, "spec.logLevel", &s);
        if (rc == 0 && strcmp(s, "error") != 0 && strcmp(s, "warn") != 0 &&
            strcmp(s, "info") != 0 && strcmp(s, "debug") != 0)
            return fail(x, v, "'spec.logLevel' must be error, warn, info or debug, not '%s'", s);
        if (rc == 0)
            snprintf(c->log_level, sizeof(c->log_level), "%s", s);
        return rc;
    }
    if (strcmp(key, "workers") == 0) {
        rc = get_int(x, v, "spec.workers", 0, RC_CONFIG_WORKERS_MAX, &i);
        c->workers = (uint32_t)i;
        return rc;
    }
    if (strcmp(key, "ring") == 0)
        return walk_map(x, v, "spec.ring", ring_field, c);
    if (strcmp(key, "limits") == 0)
        return walk_map(x, v, "spec.limits", limits_field, &c->limits);
    return unknown_field(x, v, "spec.", key);
}

static int settings_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    if (strcmp(key, "apiVersion") == 0 || strcmp(key, "kind") == 0)
        return 0;
    if (strcmp(key, "metadata") == 0)
        return walk_map(x, v, "metadata", metadata_field, NULL);
    if (strcmp(key, "spec") == 0)
        return walk_map(x, v, "spec", settings_spec_field, arg);
    return unknown_field(x, v, "", key);
}

static int parse_settings(ctx_t *x, yaml_node_t *root)
{
    if (x->settings_line != 0)
        return fail(x, root, "a second RingcastConfig document (the first is at line %d)",
                    x->settings_line);
    x->settings_line = line_of(root);
    return walk_map(x, root, "RingcastConfig", settings_field, x->cfg);
}

/* ---- documents ----------------------------------------------------------------------------- */

static int find_key(ctx_t *x, yaml_node_t *map, const char *key, yaml_node_t **out)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = scalar(node(x, p->key));
        if (k != NULL && strcmp(k, key) == 0) {
            *out = node(x, p->value);
            return 1;
        }
    }
    return 0;
}

static int parse_document(ctx_t *x, yaml_node_t *root)
{
    if (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)
        return 0; /* an empty document, e.g. a stray '---' */
    if (root->type != YAML_MAPPING_NODE)
        return fail(x, root, "a document must be a mapping with apiVersion and kind");
    yaml_node_t *kn = NULL, *an = NULL;
    if (!find_key(x, root, "kind", &kn) || scalar(kn) == NULL)
        return fail(x, root, "document has no 'kind'");
    if (!find_key(x, root, "apiVersion", &an) || scalar(an) == NULL)
        return fail(x, root, "%s has no 'apiVersion'", scalar(kn));
    const char *kind = scalar(kn), *api = scalar(an);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(kind, kinds[i].kind) != 0)
            continue;
        if (strcmp(api, kinds[i].api_version) != 0)
            return fail(x, an, "%s must have apiVersion %s, not '%s'", kind, kinds[i].api_version,
                        api);
        return kinds[i].parse(x, root);
    }
    return fail(x, kn,
                "unknown kind '%s' (known: Broker and Trigger in eventing.knative.dev/v1, "
                "Service in v1, RingcastConfig in ringcast.dev/v1alpha1)",
                kind);
}

static void set_defaults(rc_config_t *c)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->listen_host, "127.0.0.1");
    c->listen_port = 8080;
    strcpy(c->admin_host, "127.0.0.1");
    c->admin_port = 8081;
    c->ingress_loops = 1;
    c->ring_bytes = 16u * 1024 * 1024;
    strcpy(c->ring_prefix, "ringcast");
    c->shutdown_timeout_ms = 5000;
    c->retry_after_s = 1;
    strcpy(c->log_level, "info");
    c->limits.max_event_bytes = 1024 * 1024;
    c->limits.max_batch_bytes = 4u * 1024 * 1024;
    c->limits.max_batch_events = 1000;
    c->limits.max_header_bytes = 16 * 1024;
    c->limits.max_connections = 10000;
    c->limits.header_timeout_ms = 10000;
    c->limits.body_timeout_ms = 30000;
    c->limits.idle_timeout_ms = 60000;
}

static int add_default_broker(rc_config_t *c)
{
    c->brokers = calloc(1, sizeof(*c->brokers));
    if (c->brokers == NULL)
        return -ENOMEM;
    strcpy(c->brokers[0].ns, "default");
    strcpy(c->brokers[0].name, "default");
    c->brokers[0].delivery.retry = -1;
    c->broker_count = 1;
    return 0;
}

int rc_config_init_default(rc_config_t *c)
{
    set_defaults(c);
    c->source = strdup("(default)");
    if (c->source == NULL || add_default_broker(c) != 0) {
        rc_config_close(c);
        return -ENOMEM;
    }
    return 0;
}

int rc_config_load_string(rc_config_t *out, const char *name, const char *text, size_t len,
                          char *err, size_t err_len)
{
    rc_config_t c;
    set_defaults(&c);
    ctx_t x = {.file = name, .err = err, .err_len = err_len, .cfg = &c};
    yaml_parser_t parser;
    int rc = 0;
    if (err_len > 0)
        err[0] = '\0';
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            snprintf(err, err_len, "%s:%d: YAML syntax error: %s%s%s", name,
                     (int)parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "unknown problem", parser.context ? " " : "",
                     parser.context ? parser.context : "");
            rc = RC_ECONFIG;
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root == NULL) {
            yaml_document_delete(&doc);
            break; /* end of the stream */
        }
        x.doc = &doc;
        rc = parse_document(&x, root);
        yaml_document_delete(&doc);
        if (rc != 0)
            break;
    }
    yaml_parser_delete(&parser);
    if (rc == 0 && c.limits.max_batch_bytes < c.limits.max_event_bytes) {
        snprintf(err, err_len,
                 "%s:%d: 'spec.limits.maxBatchBytes' (%llu) is smaller than "
                 "'spec.limits.maxEventBytes' (%llu)",
                 name, x.settings_line, (unsigned long long)c.limits.max_batch_bytes,
                 (unsigned long long)c.limits.max_event_bytes);
        rc = RC_ECONFIG;
    }
    if (rc == 0 && c.broker_count == 0)
        rc = add_default_broker(&c);
    if (rc == 0)
        rc = rc__config_resolve(&x);
    if (rc == 0) {
        c.source = strdup(name);
        if (c.source == NULL)
            rc = -ENOMEM;
    }
    if (rc != 0) {
        if (rc == -ENOMEM && err_len > 0 && err[0] == '\0')
            snprintf(err, err_len, "%s: out of memory", name);
        rc_config_close(&c);
        memset(out, 0, sizeof(*out));
        return rc;
    }
    *out = c;
    return 0;
}

int rc_config_load_file(rc_config_t *c, const char *path, char *err, size_t err_len)
{
    memset(c, 0, sizeof(*c));
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        snprintf(err, err_len, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    char *buf = malloc(MAX_CONFIG_FILE + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(err, err_len, "%s: out of memory", path);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, MAX_CONFIG_FILE + 1, f);
    int rd_err = ferror(f);
    fclose(f);
    int rc;
    if (rd_err) {
        snprintf(err, err_len, "%s: read error", path);
        rc = -EIO;
    } else if (n > MAX_CONFIG_FILE) {
        snprintf(err, err_len, "%s: larger than %u bytes", path, MAX_CONFIG_FILE);
        rc = RC_ECONFIG;
    } else {
        rc = rc_config_load_string(c, path, buf, n, err, err_len);
    }
    free(buf);
    return rc;
}

const rc_config_broker_t *rc_config_find_broker(const rc_config_t *c, const char *ns, size_t ns_len,
                                                const char *name, size_t name_len)
{
    for (size_t i = 0; i < c->broker_count; i++) {
        const rc_config_broker_t *b = &c->brokers[i];
        if (strlen(b->ns) == ns_len && memcmp(b->ns, ns, ns_len) == 0 &&
            strlen(b->name) == name_len && memcmp(b->name, name, name_len) == 0)
            return b;
    }
    return NULL;
}

void rc_config_close(rc_config_t *c)
{
    for (size_t i = 0; i < c->broker_count; i++)
        delivery_free(&c->brokers[i].delivery);
    for (size_t i = 0; i < c->trigger_count; i++)
        rc__config_trigger_free(&c->triggers[i]);
    free(c->triggers);
    free(c->services);
    c->triggers = NULL;
    c->services = NULL;
    c->trigger_count = c->service_count = 0;
    free(c->brokers);
    free(c->source);
    c->brokers = NULL;
    c->broker_count = 0;
    c->source = NULL;
}

const rc_config_trigger_t *rc_config_find_trigger(const rc_config_t *c, const char *ns,
                                                  const char *name)
{
    for (size_t i = 0; i < c->trigger_count; i++) {
        if (strcmp(c->triggers[i].ns, ns) == 0 && strcmp(c->triggers[i].name, name) == 0)
            return &c->triggers[i];
    }
    return NULL;
}

/* ---- helpers shared with config_trigger.c (config_internal.h) ---------------------------- */

int rc__config_fail(ctx_t *x, const yaml_node_t *n, const char *fmt, ...)
{
    int off = snprintf(x->err, x->err_len, "%s:%d: ", x->file, line_of(n));
    if (off < 0 || (size_t)off >= x->err_len)
        return RC_ECONFIG;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err + off, x->err_len - (size_t)off, fmt, ap);
    va_end(ap);
    return RC_ECONFIG;
}

int rc__config_line(const yaml_node_t *n)
{
    return line_of(n);
}

yaml_node_t *rc__config_node(ctx_t *x, int index)
{
    return node(x, index);
}

const char *rc__config_scalar(const yaml_node_t *n)
{
    return scalar(n);
}

int rc__config_walk_map(ctx_t *x, yaml_node_t *map, const char *what, rc__config_field_fn field,
                        void *arg)
{
    return walk_map(x, map, what, field, arg);
}

int rc__config_find_key(ctx_t *x, yaml_node_t *map, const char *key, yaml_node_t **out)
{
    return find_key(x, map, key, out);
}

int rc__config_valid_dns_label(const char *s)
{
    return valid_dns_label(s);
}

int rc__config_delivery(ctx_t *x, yaml_node_t *v, rc_config_delivery_t *d)
{
    return walk_map(x, v, "spec.delivery", delivery_field, d);
}

void rc__config_delivery_free(rc_config_delivery_t *d)
{
    delivery_free(d);
}

/* ---- value syntax ------------------------------------------------------------------------ */

int rc_config_valid_ring_prefix(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RC_CONFIG_RING_PREFIX_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    }
    return 1;
}

int rc_config_parse_addr(const char *s, char *host, size_t host_len, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -EINVAL;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -EINVAL;
        hl = (size_t)(colon - s);
        if (memchr(s, ':', hl) != NULL)
            return -EINVAL; /* a bare IPv6 address needs brackets */
    }
    if (hl == 0 || hl >= host_len)
        return -EINVAL;
    char tmp[RC_CONFIG_ADDR_MAX];
    if (hl >= sizeof(tmp))
        return -EINVAL;
    memcpy(tmp, h, hl);
    tmp[hl] = '\0';
    unsigned char bin[16];
    if (inet_pton(AF_INET, tmp, bin) != 1 && inet_pton(AF_INET6, tmp, bin) != 1)
        return -EINVAL;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 0 || p > 65535)
        return -EINVAL;
    memcpy(host, tmp, hl + 1);
    *port = (int)p;
    return 0;
}

int rc_config_parse_size(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)s[0]))
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno != 0)
        return -EINVAL;
    unsigned shift = 0;
    if (*end != '\0') {
        switch (*end) {
        case 'K':
            shift = 10;
            break;
        case 'M':
            shift = 20;
            break;
        case 'G':
            shift = 30;
            break;
        default:
            return -EINVAL;
        }
        end++;
        if (*end == 'i')
            end++;
        if (*end != '\0')
            return -EINVAL;
    }
    if (shift != 0 && n > (UINT64_MAX >> shift))
        return -EINVAL;
    *out = (uint64_t)n << shift;
    return 0;
}

int rc_config_parse_duration_ms(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)s[0]))
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno != 0 || n > 1000000000ull)
        return -EINVAL;
    uint64_t mul;
    if (*end == '\0' || strcmp(end, "ms") == 0)
        mul = 1;
    else if (strcmp(end, "s") == 0)
        mul = 1000;
    else if (strcmp(end, "m") == 0)
        mul = 60000;
    else if (strcmp(end, "h") == 0)
        mul = 3600000;
    else
        return -EINVAL;
    *out = n * mul;
    return 0;
}
