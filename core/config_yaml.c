/* The ground floor of the config loader, under config.c (the file, its documents, Broker and
 * RingcastConfig) and config_trigger.c (Trigger and Service): libyaml nodes and their lines, the
 * one failure recorder every message goes through, the field readers that turn a scalar into a
 * checked value, the syntaxes of sizes, durations and addresses, and spec.delivery, which
 * Broker and Trigger share. Nothing here knows which kind of document it is reading, so both
 * loaders depend on this file and on nothing of each other's. */
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
#include "core/config_uri.h"
#include "core/delivery_policy.h"
#include "core/errors.h"
#include "core/log.h"

/* ---- nodes and failures -------------------------------------------------------------------- */

int rc__config_line(const yaml_node_t *n)
{
    return n ? (int)n->start_mark.line + 1 : 0;
}

int rc__config_fail(rc__config_ctx_t *x, const yaml_node_t *n, const char *fmt, ...)
{
    int off = snprintf(x->err, x->err_len, "%s:%d: ", x->file, rc__config_line(n));
    if (off < 0 || (size_t)off >= x->err_len)
        return RC_ECONFIG;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err + off, x->err_len - (size_t)off, fmt, ap);
    va_end(ap);
    return RC_ECONFIG;
}

int rc__config_note(rc__config_ctx_t *x, const yaml_node_t *n, rc_config_note_level_t level,
                    const char *fmt, ...)
{
    rc_config_t *c = x->cfg;
    char text[RC_CONFIG_ERR_MAX];
    int off = snprintf(text, sizeof(text), "%s:%d: ", x->file, rc__config_line(n));
    if (off < 0 || (size_t)off >= sizeof(text))
        off = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + off, sizeof(text) - (size_t)off, fmt, ap);
    va_end(ap);
    rc_config_note_t *nn = realloc(c->notes, (c->note_count + 1) * sizeof(*nn));
    if (nn == NULL)
        return -ENOMEM;
    c->notes = nn;
    char *t = strdup(text);
    if (t == NULL)
        return -ENOMEM;
    c->notes[c->note_count++] = (rc_config_note_t){.level = level, .text = t, .msg = (size_t)off};
    return 0;
}

void rc__config_notes_free(rc_config_t *c)
{
    for (size_t i = 0; i < c->note_count; i++)
        free(c->notes[i].text);
    free(c->notes);
    c->notes = NULL;
    c->note_count = 0;
}

void rc_config_log_notes(const rc_config_t *c)
{
    for (size_t i = 0; i < c->note_count; i++)
        rc_log(c->notes[i].level == RC_CONFIG_NOTE_WARN ? RC_LOG_WARN : RC_LOG_INFO, "config", "%s",
               c->notes[i].text);
}

int rc__config_unknown_annotation(rc__config_ctx_t *x, yaml_node_t *v, const char *who,
                                  const char *key)
{
    return rc__config_fail(x, v, "%s: unknown annotation '%s': ringcast reads %s", who, key,
                           RC__CONFIG_ANNOTATIONS);
}

int rc__config_no_ringcast_annotations(rc__config_ctx_t *x, yaml_node_t *ann, const char *who)
{
    if (ann->type != YAML_MAPPING_NODE)
        return 0; /* the metadata reader refuses it */
    for (yaml_node_pair_t *p = ann->data.mapping.pairs.start; p < ann->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = rc__config_node(x, p->key);
        const char *key = rc__config_scalar(k);
        /* A Broker's ringcast.dev/storage-* are read (and checked) by the storage loader,
         * its ringcast.dev/dedup-* by the Broker's. */
        if (key != NULL && strncmp(key, "ringcast.dev/", 13) == 0 &&
            strncmp(key, "ringcast.dev/storage-", 21) != 0 &&
            strncmp(key, "ringcast.dev/dedup-", 19) != 0)
            return rc__config_unknown_annotation(x, k, who, key);
    }
    return 0;
}

yaml_node_t *rc__config_node(rc__config_ctx_t *x, int index)
{
    return yaml_document_get_node(x->doc, index);
}

const char *rc__config_scalar(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

int rc__config_walk_map(rc__config_ctx_t *x, yaml_node_t *map, const char *what,
                        rc__config_field_fn field, void *arg)
{
    if (map->type != YAML_MAPPING_NODE)
        return rc__config_fail(x, map, "%s must be a mapping", what);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = rc__config_node(x, p->key);
        const char *key = rc__config_scalar(k);
        if (key == NULL)
            return rc__config_fail(x, k, "%s: keys must be plain strings", what);
        /* Quadratic, but mappings in a manifest have a handful of keys, and this way the
         * message can name the duplicate at its own line. */
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            const char *prev = rc__config_scalar(rc__config_node(x, q->key));
            if (prev != NULL && strcmp(prev, key) == 0)
                return rc__config_fail(x, k, "%s: duplicate field '%s'", what, key);
        }
        int rc = field(x, key, rc__config_node(x, p->value), arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int rc__config_find_key(rc__config_ctx_t *x, yaml_node_t *map, const char *key, yaml_node_t **out)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = rc__config_scalar(rc__config_node(x, p->key));
        if (k != NULL && strcmp(k, key) == 0) {
            *out = rc__config_node(x, p->value);
            return 1;
        }
    }
    return 0;
}

int rc__config_unknown_field(rc__config_ctx_t *x, yaml_node_t *v, const char *where,
                             const char *key)
{
    return rc__config_fail(x, v, "unknown field '%s%s'", where, key);
}

/* ---- field readers --------------------------------------------------------------------------- */

int rc__config_get_string(rc__config_ctx_t *x, yaml_node_t *v, const char *field, const char **out)
{
    const char *s = rc__config_scalar(v);
    if (s == NULL)
        return rc__config_fail(x, v, "'%s' must be a string", field);
    *out = s;
    return 0;
}

/* A string copied with strdup into `*out`, freeing what was there. */
static int dup_string(rc__config_ctx_t *x, yaml_node_t *v, const char *field, char **out)
{
    const char *s = NULL;
    int rc = rc__config_get_string(x, v, field, &s);
    if (rc != 0)
        return rc;
    free(*out);
    *out = strdup(s);
    return *out ? 0 : -ENOMEM;
}

int rc__config_get_int(rc__config_ctx_t *x, yaml_node_t *v, const char *field, int64_t lo,
                       int64_t hi, int64_t *out)
{
    const char *s = rc__config_scalar(v);
    char *end = NULL;
    errno = 0;
    long long n = s ? strtoll(s, &end, 10) : 0;
    if (s == NULL || *s == '\0' || *end != '\0' || errno != 0 || n < lo || n > hi)
        return rc__config_fail(x, v, "'%s' must be an integer from %lld to %lld, not '%s'", field,
                               (long long)lo, (long long)hi, s ? s : "(not a scalar)");
    *out = n;
    return 0;
}

int rc__config_get_size(rc__config_ctx_t *x, yaml_node_t *v, const char *field, uint64_t lo,
                        uint64_t hi, uint64_t *out)
{
    const char *s = rc__config_scalar(v);
    uint64_t n = 0;
    if (s == NULL || rc_config_parse_size(s, &n) != 0)
        return rc__config_fail(x, v, "'%s' must be a size such as 1048576, 512Ki or 16Mi, not '%s'",
                               field, s ? s : "(not a scalar)");
    if (n < lo || n > hi)
        return rc__config_fail(x, v, "'%s' must be between %llu and %llu bytes, not %llu", field,
                               (unsigned long long)lo, (unsigned long long)hi,
                               (unsigned long long)n);
    *out = n;
    return 0;
}

int rc__config_get_duration(rc__config_ctx_t *x, yaml_node_t *v, const char *field, uint32_t *out)
{
    const char *s = rc__config_scalar(v);
    uint64_t ms = 0;
    if (s == NULL || rc_config_parse_duration_ms(s, &ms) != 0 || ms == 0 || ms > 86400000)
        return rc__config_fail(x, v,
                               "'%s' must be a duration from 1ms to 24h such as 500ms, 10s or 2m, "
                               "not '%s'",
                               field, s ? s : "(not a scalar)");
    *out = (uint32_t)ms;
    return 0;
}

int rc__config_valid_dns_label(const char *s)
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

int rc__config_metadata_names(rc__config_ctx_t *x, yaml_node_t *md, const char *kind, char *ns,
                              char *name)
{
    if (md->type != YAML_MAPPING_NODE)
        return rc__config_fail(x, md, "%s: 'metadata' must be a mapping", kind);
    for (yaml_node_pair_t *p = md->data.mapping.pairs.start; p < md->data.mapping.pairs.top; p++) {
        yaml_node_t *k = rc__config_node(x, p->key), *v = rc__config_node(x, p->value);
        const char *key = rc__config_scalar(k);
        if (key == NULL)
            return rc__config_fail(x, k, "%s: metadata: keys must be plain strings", kind);
        char *dst = strcmp(key, "name") == 0 ? name : strcmp(key, "namespace") == 0 ? ns : NULL;
        if (dst == NULL) {
            if (strcmp(key, "labels") == 0 || strcmp(key, "annotations") == 0) {
                if (v->type != YAML_MAPPING_NODE)
                    return rc__config_fail(x, v, "%s: 'metadata.%s' must be a mapping", kind, key);
                continue;
            }
            return rc__config_fail(x, k, "%s: unknown field 'metadata.%s'", kind, key);
        }
        const char *s = rc__config_scalar(v);
        if (s == NULL || !rc__config_valid_dns_label(s))
            return rc__config_fail(
                x, v,
                "%s: 'metadata.%s' must be a DNS label (lowercase letters, digits and "
                "'-', at most 63 characters), not '%s'",
                kind, key, s ? s : "(not a scalar)");
        strcpy(dst, s);
    }
    return 0;
}

/* ---- spec.delivery (Broker and Trigger) ---------------------------------------------------- */

/* The delivery policy's own parser decides, so a file that loads is one the workers can run (its
 * message names the field and the problem). */
static int delivery_check(rc__config_ctx_t *x, yaml_node_t *v, const char *key, const char *value)
{
    rc_delivery_t check;
    char msg[256];
    rc_delivery_init(&check);
    if (rc_delivery_set(&check, key, value, strlen(value), msg, sizeof(msg)) != 0)
        return rc__config_fail(x, v, "%s", msg);
    return 0;
}

/* deadLetterSink is a Knative Destination: a uri, a ref to a Service (resolved once every
 * document is in, like a subscriber's), or both (the uri is then a path under the Service). */
typedef struct {
    rc_config_delivery_t *d;
    yaml_node_t *uri, *ref;
} dls_ctx_t;

static int dls_ref_field(rc__config_ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_delivery_t *d = arg;
    const char *s = rc__config_scalar(v);
    if (strcmp(key, "kind") == 0 && (s == NULL || strcmp(s, "Service") != 0))
        return rc__config_fail(x, v,
                               "'spec.delivery.deadLetterSink.ref.kind' must be Service (the only "
                               "kind ringcast resolves), not '%s'",
                               s ? s : "(not a scalar)");
    if (strcmp(key, "apiVersion") == 0 &&
        (s == NULL || (strcmp(s, "v1") != 0 && strcmp(s, "serving.knative.dev/v1") != 0)))
        return rc__config_fail(x, v,
                               "'spec.delivery.deadLetterSink.ref.apiVersion' must be v1 or "
                               "serving.knative.dev/v1, not '%s'",
                               s ? s : "(not a scalar)");
    if (strcmp(key, "kind") == 0 || strcmp(key, "apiVersion") == 0)
        return 0;
    if (strcmp(key, "name") != 0 && strcmp(key, "namespace") != 0)
        return rc__config_unknown_field(x, v, "spec.delivery.deadLetterSink.ref.", key);
    if (s == NULL || !rc__config_valid_dns_label(s))
        return rc__config_fail(x, v,
                               "'spec.delivery.deadLetterSink.ref.%s' must be a DNS label, "
                               "not '%s'",
                               key, s ? s : "(not a scalar)");
    if (strcmp(key, "namespace") == 0) {
        strcpy(d->dead_letter_ref_ns, s); /* checked against the owner's by resolve_refs */
        return 0;
    }
    free(d->dead_letter_ref);
    d->dead_letter_ref = strdup(s);
    return d->dead_letter_ref ? 0 : -ENOMEM;
}

static int dls_field(rc__config_ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    dls_ctx_t *dc = arg;
    if (strcmp(key, "uri") == 0) {
        dc->uri = v;
        return 0;
    }
    if (strcmp(key, "ref") == 0) {
        dc->ref = v;
        dc->d->dead_letter_line = rc__config_line(v);
        return rc__config_walk_map(x, v, "spec.delivery.deadLetterSink.ref", dls_ref_field, dc->d);
    }
    return rc__config_unknown_field(x, v, "spec.delivery.deadLetterSink.", key);
}

static int dead_letter_sink(rc__config_ctx_t *x, yaml_node_t *v, rc_config_delivery_t *d)
{
    dls_ctx_t dc = {.d = d};
    char shown[RC_DELIVERY_URI_MAX];
    int rc = rc__config_walk_map(x, v, "spec.delivery.deadLetterSink", dls_field, &dc);
    if (rc == 0 && dc.ref != NULL && d->dead_letter_ref == NULL)
        return rc__config_fail(x, dc.ref, "'spec.delivery.deadLetterSink.ref' has no name");
    if (rc != 0 || dc.uri == NULL) {
        if (rc == 0 && dc.ref == NULL)
            return rc__config_fail(x, v, "'spec.delivery.deadLetterSink' needs uri or ref");
        return rc;
    }
    if (dc.ref != NULL) {
        /* With a ref the uri is a path under the Service's URL (as with spec.subscriber). */
        rc = dup_string(x, dc.uri, "spec.delivery.deadLetterSink.uri", &d->dead_letter_path);
        if (rc == 0 && d->dead_letter_path[0] != '/')
            return rc__config_fail(x, dc.uri,
                                   "with spec.delivery.deadLetterSink.ref, "
                                   "'spec.delivery.deadLetterSink.uri' must be a path starting "
                                   "with '/', not '%s'",
                                   rc_config_uri_redact(d->dead_letter_path, shown, sizeof(shown)));
        return rc;
    }
    rc = dup_string(x, dc.uri, "spec.delivery.deadLetterSink.uri", &d->dead_letter_uri);
    if (rc == 0 && strstr(d->dead_letter_uri, "://") == NULL)
        return rc__config_fail(
            x, dc.uri, "'spec.delivery.deadLetterSink.uri' must be an absolute URI, not '%s'",
            rc_config_uri_redact(d->dead_letter_uri, shown, sizeof(shown)));
    if (rc == 0)
        rc = delivery_check(x, dc.uri, "deadLetterSink.uri", d->dead_letter_uri);
    d->dead_letter_line = rc__config_line(dc.uri);
    return rc;
}

static int delivery_field(rc__config_ctx_t *x, const char *key, yaml_node_t *v, void *arg)
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
        return rc__config_get_int(x, v, "spec.delivery.retry", 0, 1000, &d->retry);
    if (strcmp(key, "backoffPolicy") == 0) {
        int rc = dup_string(x, v, "spec.delivery.backoffPolicy", &d->backoff_policy);
        if (rc == 0 && strcmp(d->backoff_policy, "exponential") != 0 &&
            strcmp(d->backoff_policy, "linear") != 0)
            return rc__config_fail(x, v,
                                   "'spec.delivery.backoffPolicy' must be exponential or linear, "
                                   "not '%s'",
                                   d->backoff_policy);
        return rc;
    }
    if (strcmp(key, "format") == 0) {
        int rc = dup_string(x, v, "spec.delivery.format", &d->format);
        if (rc == 0 && strcmp(d->format, "binary") != 0 && strcmp(d->format, "json") != 0)
            return rc__config_fail(x, v, "'spec.delivery.format' must be binary or json, not '%s'",
                                   d->format);
        return rc;
    }
    if (strcmp(key, "deadLetterSink") == 0)
        return dead_letter_sink(x, v, d);
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        if (strcmp(key, durations[i].name) == 0) {
            char **slot = (char **)((char *)d + durations[i].off);
            char field[64];
            snprintf(field, sizeof(field), "spec.delivery.%s", key);
            int rc = dup_string(x, v, field, slot);
            if (rc == 0)
                rc = delivery_check(x, v, key, *slot);
            return rc;
        }
    }
    return rc__config_unknown_field(x, v, "spec.delivery.", key);
}

int rc__config_delivery(rc__config_ctx_t *x, yaml_node_t *v, rc_config_delivery_t *d)
{
    return rc__config_walk_map(x, v, "spec.delivery", delivery_field, d);
}

void rc__config_delivery_free(rc_config_delivery_t *d)
{
    free(d->backoff_policy);
    free(d->backoff_delay);
    free(d->backoff_max);
    free(d->timeout);
    free(d->retry_after_max);
    free(d->dead_letter_uri);
    free(d->dead_letter_ref);
    free(d->dead_letter_path);
    free(d->format);
    memset(d, 0, sizeof(*d));
    d->retry = -1;
}

/* ---- value syntax (config.h) --------------------------------------------------------------- */

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
