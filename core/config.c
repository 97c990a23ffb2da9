/* Loading the broker's YAML configuration with libyaml's document API: every node carries its
 * line, so each error names the file and line of the offending node. Parsing fills a private
 * rc_config_t that is handed to the caller only when the whole file is valid.
 *
 * This is the top floor of the loader (config_internal.h): the file and its documents, the
 * kinds table, Broker and RingcastConfig, and the checks once every document is in. Trigger and
 * Service are in config_trigger.c, the Dapr kinds in config_dapr.c, spec.storage and a Broker's
 * storage annotations in config_storage.c; the node helpers and field readers in
 * config_yaml.c. */
#include "core/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    {"dapr.io/v1alpha1", "Component", rc__config_parse_component},
    {"ringcast.dev/v1alpha1", "DaprApp", rc__config_parse_dapr_app},
    {"dapr.io/v2alpha1", "Subscription", rc__config_parse_subscription},
    {"dapr.io/v1alpha1", "Subscription", rc__config_parse_subscription},
};

/* Kubernetes kinds users keep in the same file as their Brokers and Triggers (docs/config.md,
 * "Documents"): skipped with one info line each, so `kubectl apply -f` and ringcast can read
 * one file. Any other kind is still an error: a typo must not pass as "someone else's". */
static const struct {
    const char *api_version;
    const char *kind;
} foreign_kinds[] = {
    {"v1", "Namespace"},       {"v1", "ConfigMap"},
    {"v1", "Secret"},          {"v1", "ServiceAccount"},
    {"apps/v1", "Deployment"}, {"apps/v1", "StatefulSet"},
    {"apps/v1", "DaemonSet"},  {"serving.knative.dev/v1", "Service"},
};

/* ---- Broker ------------------------------------------------------------------------------ */

typedef struct {
    rc_config_broker_t *b;
    yaml_node_t *config; /* spec.config, NULL if not given */
} broker_ctx_t;

static int broker_spec_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    broker_ctx_t *bc = arg;
    rc_config_broker_t *b = bc->b;
    if (strcmp(key, "delivery") == 0)
        return rc__config_delivery(x, v, &b->delivery);
    if (strcmp(key, "config") == 0) {
        bc->config = v; /* a warning once the Broker's name is known */
        return 0;
    }
    return rc__config_unknown_field(x, v, "spec.", key);
}

/* ringcast.dev/dedup-window and -capacity (docs/delivery.md, "Deduplication"). */
static int dedup_annotation(ctx_t *x, const char *key, yaml_node_t *v, rc_config_broker_t *b)
{
    char field[96];
    snprintf(field, sizeof(field), "metadata.annotations.%s", key);
    if (strcmp(key, "ringcast.dev/dedup-window") == 0) {
        uint32_t ms = 0;
        int rc = rc__config_get_duration(x, v, field, &ms);
        if (rc == 0 && ms < 1000)
            rc = rc__config_fail(x, v, "'%s' must be from 1s to 24h, not %ums", field, ms);
        b->dedup_window_ms = ms;
        b->dedup_line = rc__config_line(v);
        return rc;
    }
    if (strcmp(key, "ringcast.dev/dedup-capacity") == 0) {
        int64_t n = 0;
        int rc = rc__config_get_int(x, v, field, RC_CONFIG_DEDUP_MIN, RC_CONFIG_DEDUP_MAX, &n);
        b->dedup_capacity = (uint64_t)n;
        return rc;
    }
    return rc__config_fail(x, v,
                           "unknown annotation '%s' (a Broker's deduplication annotations are "
                           "ringcast.dev/dedup-window and ringcast.dev/dedup-capacity)",
                           key);
}

static int broker_annotation(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_broker_t *b = arg;
    if (strncmp(key, "ringcast.dev/dedup-", 19) == 0)
        return dedup_annotation(x, key, v, b);
    return rc__config_storage_annotation(x, key, v, &b->storage);
}

static int metadata_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_broker_t *b = arg; /* NULL for documents whose metadata is only decorative */
    const char *s = NULL;
    if (strcmp(key, "labels") == 0 || strcmp(key, "annotations") == 0) {
        if (v->type != YAML_MAPPING_NODE)
            return rc__config_fail(x, v, "'metadata.%s' must be a mapping", key);
        if (b != NULL && strcmp(key, "annotations") == 0)
            return rc__config_walk_map(x, v, "metadata.annotations", broker_annotation, b);
        return 0;
    }
    if (strcmp(key, "name") != 0 && strcmp(key, "namespace") != 0)
        return rc__config_unknown_field(x, v, "metadata.", key);
    char field[32];
    snprintf(field, sizeof(field), "metadata.%s", key);
    int rc = rc__config_get_string(x, v, field, &s);
    if (rc != 0)
        return rc;
    if (!rc__config_valid_dns_label(s))
        return rc__config_fail(
            x, v,
            "'%s' must be a DNS label (lowercase letters, digits and '-', at most "
            "63 characters), not '%s'",
            field, s);
    if (b != NULL)
        strcpy(strcmp(key, "name") == 0 ? b->name : b->ns, s);
    return 0;
}

static int broker_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    broker_ctx_t *bc = arg;
    if (strcmp(key, "apiVersion") == 0 || strcmp(key, "kind") == 0)
        return 0;
    if (strcmp(key, "metadata") == 0)
        return rc__config_walk_map(x, v, "metadata", metadata_field, bc->b);
    if (strcmp(key, "spec") == 0)
        return rc__config_walk_map(x, v, "spec", broker_spec_field, arg);
    if (strcmp(key, "status") == 0)
        return 0; /* manifests exported from a cluster carry status; it is output only */
    return rc__config_unknown_field(x, v, "", key);
}

static int parse_broker(ctx_t *x, yaml_node_t *root)
{
    rc_config_t *c = x->cfg;
    rc_config_broker_t b;
    memset(&b, 0, sizeof(b));
    b.delivery.retry = -1;
    b.line = rc__config_line(root);
    strcpy(b.ns, "default");
    broker_ctx_t bc = {.b = &b};
    yaml_node_t *md = NULL, *ann = NULL;
    char who[2 * RC_CONFIG_NAME_MAX + 16];
    int rc = rc__config_walk_map(x, root, "Broker", broker_field, &bc);
    if (rc == 0 && b.name[0] == '\0')
        rc = rc__config_fail(x, root, "Broker has no metadata.name");
    snprintf(who, sizeof(who), "Broker %s/%s", b.ns, b.name);
    if (rc == 0 && rc__config_find_key(x, root, "metadata", &md) &&
        rc__config_find_key(x, md, "annotations", &ann))
        rc = rc__config_no_ringcast_annotations(x, ann, who);
    yaml_node_t *cap = NULL;
    if (rc == 0 && b.dedup_capacity != 0 && b.dedup_window_ms == 0 && ann != NULL &&
        rc__config_find_key(x, ann, "ringcast.dev/dedup-capacity", &cap))
        rc = rc__config_fail(x, cap,
                             "%s: ringcast.dev/dedup-capacity applies with "
                             "ringcast.dev/dedup-window (the window turns deduplication on)",
                             who);
    if (rc == 0 && bc.config != NULL) /* Knative's broker class config reference */
        rc = rc__config_note(x, bc.config, RC_CONFIG_NOTE_WARN,
                             "%s: 'spec.config' ignored: ringcast has one broker class, set up "
                             "by the RingcastConfig document",
                             who);
    for (size_t i = 0; rc == 0 && i < c->broker_count; i++) {
        if (strcmp(c->brokers[i].ns, b.ns) == 0 && strcmp(c->brokers[i].name, b.name) == 0)
            rc = rc__config_fail(x, root, "Broker %s/%s is defined twice (first at line %d)", b.ns,
                                 b.name, c->brokers[i].line);
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
    rc__config_delivery_free(&b.delivery);
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
    if (strcmp(key, "maxEventBytes") == 0) {
        x->max_event_line = rc__config_line(v);
        return rc__config_get_size(x, v, field, 256, 1ull << 30, &l->max_event_bytes);
    }
    if (strcmp(key, "maxBatchBytes") == 0) {
        x->max_batch_line = rc__config_line(v);
        return rc__config_get_size(x, v, field, 256, 1ull << 30, &l->max_batch_bytes);
    }
    if (strcmp(key, "maxHeaderBytes") == 0) {
        x->max_header_line = rc__config_line(v);
        rc = rc__config_get_size(x, v, field, 1024, 1u << 20, &n);
        l->max_header_bytes = (uint32_t)n;
        return rc;
    }
    if (strcmp(key, "maxBatchEvents") == 0) {
        x->max_batch_events_line = rc__config_line(v);
        rc = rc__config_get_int(x, v, field, 1, 1000000, &i);
        l->max_batch_events = (uint32_t)i;
        return rc;
    }
    if (strcmp(key, "maxConnections") == 0) {
        rc = rc__config_get_int(x, v, field, 1, 1000000, &i);
        l->max_connections = (uint32_t)i;
        return rc;
    }
    if (strcmp(key, "maxBodyMemory") == 0)
        return rc__config_get_size(x, v, field, 1024, 1ull << 40, &l->max_body_memory);
    if (strcmp(key, "headerTimeout") == 0)
        return rc__config_get_duration(x, v, field, &l->header_timeout_ms);
    if (strcmp(key, "bodyTimeout") == 0)
        return rc__config_get_duration(x, v, field, &l->body_timeout_ms);
    if (strcmp(key, "idleTimeout") == 0)
        return rc__config_get_duration(x, v, field, &l->idle_timeout_ms);
    return rc__config_unknown_field(x, v, "spec.limits.", key);
}

static int ring_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_t *c = arg;
    if (strcmp(key, "size") == 0) {
        x->ring_size_line = rc__config_line(v);
        int rc = rc__config_get_size(x, v, "spec.ring.size", 64 * 1024, 1ull << 36, &c->ring_bytes);
        if (rc == 0 && (c->ring_bytes & (c->ring_bytes - 1)) != 0)
            return rc__config_fail(x, v, "'spec.ring.size' must be a power of two, not %llu",
                                   (unsigned long long)c->ring_bytes);
        return rc;
    }
    if (strcmp(key, "namePrefix") == 0) {
        const char *s = NULL;
        int rc = rc__config_get_string(x, v, "spec.ring.namePrefix", &s);
        if (rc == 0 && !rc_config_valid_ring_prefix(s))
            return rc__config_fail(
                x, v,
                "'spec.ring.namePrefix' must be 1-%d characters of [A-Za-z0-9_-], "
                "not '%s'",
                RC_CONFIG_RING_PREFIX_MAX, s);
        if (rc == 0)
            strcpy(c->ring_prefix, s);
        return rc;
    }
    return rc__config_unknown_field(x, v, "spec.ring.", key);
}

static int addr_field(ctx_t *x, yaml_node_t *v, const char *field, char *host, int *port)
{
    const char *s = NULL;
    int rc = rc__config_get_string(x, v, field, &s);
    if (rc != 0)
        return rc;
    if (rc_config_parse_addr(s, host, RC_CONFIG_ADDR_MAX, port) != 0)
        return rc__config_fail(
            x, v, "'%s' must be IP:PORT such as 127.0.0.1:8080 or [::1]:8080, not '%s'", field, s);
    return 0;
}

/* A bearer token as RFC 6750 allows one (b64token), long enough not to be guessed. */
static int valid_token(const char *s)
{
    size_t n = strlen(s);
    if (n < 16 || n > 256)
        return 0;
    for (; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("-._~+/=", *s) != NULL))
            return 0;
    }
    return 1;
}

/* spec.admin as a mapping: listen (what the string form gives), token, stateFile. */
static int admin_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_t *c = arg;
    const char *s = NULL;
    if (strcmp(key, "listen") == 0)
        return addr_field(x, v, "spec.admin.listen", c->admin_host, &c->admin_port);
    if (strcmp(key, "token") != 0 && strcmp(key, "stateFile") != 0)
        return rc__config_unknown_field(x, v, "spec.admin.", key);
    int token = strcmp(key, "token") == 0;
    int rc = rc__config_get_string(x, v, token ? "spec.admin.token" : "spec.admin.stateFile", &s);
    if (rc != 0)
        return rc;
    if (token && !valid_token(s))
        return rc__config_fail(x, v,
                               "'spec.admin.token' must be 16-256 characters of [A-Za-z0-9-._~+/=] "
                               "(a bearer token; `openssl rand -hex 32` makes one)");
    if (!token && (s[0] == '\0' || strlen(s) > RC_CONFIG_STORAGE_DIR_MAX))
        return rc__config_fail(x, v, "'spec.admin.stateFile' must be a file path");
    char **dst = token ? &c->admin_token : &c->state_file;
    free(*dst);
    *dst = strdup(s);
    return *dst != NULL ? 0 : -ENOMEM;
}

static int settings_spec_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_t *c = arg;
    int64_t i;
    int rc;
    if (strcmp(key, "listen") == 0)
        return addr_field(x, v, "spec.listen", c->listen_host, &c->listen_port);
    if (strcmp(key, "admin") == 0) {
        if (v->type == YAML_MAPPING_NODE)
            return rc__config_walk_map(x, v, "spec.admin", admin_field, c);
        return addr_field(x, v, "spec.admin", c->admin_host, &c->admin_port);
    }
    if (strcmp(key, "ingressLoops") == 0) {
        rc = rc__config_get_int(x, v, "spec.ingressLoops", 1, 64, &i);
        c->ingress_loops = (uint32_t)i;
        return rc;
    }
    if (strcmp(key, "retryAfterSeconds") == 0) {
        rc = rc__config_get_int(x, v, "spec.retryAfterSeconds", 1, 3600, &i);
        c->retry_after_s = (uint32_t)i;
        return rc;
    }
    if (strcmp(key, "shutdownTimeout") == 0)
        return rc__config_get_duration(x, v, "spec.shutdownTimeout", &c->shutdown_timeout_ms);
    if (strcmp(key, "logLevel") == 0) {
        const char *s = NULL;
        rc = rc__config_get_string(x, v, "spec.logLevel", &s);
        if (rc == 0 && strcmp(s, "error") != 0 && strcmp(s, "warn") != 0 &&
            strcmp(s, "info") != 0 && strcmp(s, "debug") != 0)
            return rc__config_fail(
                x, v, "'spec.logLevel' must be error, warn, info or debug, not '%s'", s);
        if (rc == 0)
            snprintf(c->log_level, sizeof(c->log_level), "%s", s);
        return rc;
    }
    if (strcmp(key, "logFormat") == 0) {
        const char *s = NULL;
        rc = rc__config_get_string(x, v, "spec.logFormat", &s);
        if (rc == 0 && strcmp(s, "text") != 0 && strcmp(s, "json") != 0)
            return rc__config_fail(x, v, "'spec.logFormat' must be text or json, not '%s'", s);
        if (rc == 0)
            snprintf(c->log_format, sizeof(c->log_format), "%s", s);
        return rc;
    }
    if (strcmp(key, "workers") == 0) {
        rc = rc__config_get_int(x, v, "spec.workers", 0, RC_CONFIG_WORKERS_MAX, &i);
        c->workers = (uint32_t)i;
        return rc;
    }
    if (strcmp(key, "watchdogTimeout") == 0) {
        rc = rc__config_get_duration(x, v, "spec.watchdogTimeout", &c->watchdog_ms);
        if (rc == 0 && c->watchdog_ms < RC_CONFIG_WATCHDOG_MIN_MS)
            return rc__config_fail(x, v, "'spec.watchdogTimeout' must be at least %ums, not %ums",
                                   RC_CONFIG_WATCHDOG_MIN_MS, c->watchdog_ms);
        return rc;
    }
    if (strcmp(key, "lag") == 0)
        return rc__config_lag_settings(x, v);
    if (strcmp(key, "ring") == 0)
        return rc__config_walk_map(x, v, "spec.ring", ring_field, c);
    if (strcmp(key, "limits") == 0)
        return rc__config_walk_map(x, v, "spec.limits", limits_field, &c->limits);
    if (strcmp(key, "dapr") == 0)
        return rc__config_dapr_settings(x, v);
    if (strcmp(key, "storage") == 0)
        return rc__config_storage_settings(x, v);
    if (strcmp(key, "redis") == 0)
        return rc__config_redis_settings(x, v);
    return rc__config_unknown_field(x, v, "spec.", key);
}

static int settings_field(ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    if (strcmp(key, "apiVersion") == 0 || strcmp(key, "kind") == 0)
        return 0;
    if (strcmp(key, "metadata") == 0)
        return rc__config_walk_map(x, v, "metadata", metadata_field, NULL);
    if (strcmp(key, "spec") == 0)
        return rc__config_walk_map(x, v, "spec", settings_spec_field, arg);
    return rc__config_unknown_field(x, v, "", key);
}

static int parse_settings(ctx_t *x, yaml_node_t *root)
{
    if (x->settings_line != 0)
        return rc__config_fail(x, root,
                               "a second RingcastConfig document (the first is at line %d)",
                               x->settings_line);
    x->settings_line = rc__config_line(root);
    return rc__config_walk_map(x, root, "RingcastConfig", settings_field, x->cfg);
}

/* ---- documents ----------------------------------------------------------------------------- */

/* One info line for a document of foreign_kinds: what it is and its name, as kubectl would
 * name it (a Namespace has no namespace). Its content is not looked at. */
static int skip_document(ctx_t *x, yaml_node_t *root, const char *api, const char *kind)
{
    yaml_node_t *md = NULL, *v = NULL;
    const char *name = "(no name)", *ns = "default";
    if (rc__config_find_key(x, root, "metadata", &md) && md->type == YAML_MAPPING_NODE) {
        if (rc__config_find_key(x, md, "name", &v) && rc__config_scalar(v) != NULL)
            name = rc__config_scalar(v);
        if (rc__config_find_key(x, md, "namespace", &v) && rc__config_scalar(v) != NULL)
            ns = rc__config_scalar(v);
    }
    int scoped = strcmp(kind, "Namespace") != 0;
    return rc__config_note(x, root, RC_CONFIG_NOTE_INFO,
                           "skipping %s %s %s%s%s: not a ringcast kind", api, kind,
                           scoped ? ns : "", scoped ? "/" : "", name);
}

static int parse_document(ctx_t *x, yaml_node_t *root)
{
    if (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)
        return 0; /* an empty document, e.g. a stray '---' */
    if (root->type != YAML_MAPPING_NODE)
        return rc__config_fail(x, root, "a document must be a mapping with apiVersion and kind");
    yaml_node_t *kn = NULL, *an = NULL;
    if (!rc__config_find_key(x, root, "kind", &kn) || rc__config_scalar(kn) == NULL)
        return rc__config_fail(x, root, "document has no 'kind'");
    if (!rc__config_find_key(x, root, "apiVersion", &an) || rc__config_scalar(an) == NULL)
        return rc__config_fail(x, root, "%s has no 'apiVersion'", rc__config_scalar(kn));
    const char *kind = rc__config_scalar(kn), *api = rc__config_scalar(an);
    char versions[128] = ""; /* of this kind, for the message when none is `api` */
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(kind, kinds[i].kind) != 0)
            continue;
        if (strcmp(api, kinds[i].api_version) == 0)
            return kinds[i].parse(x, root);
        size_t len = strlen(versions);
        snprintf(versions + len, sizeof(versions) - len, "%s%s", len ? " or " : "",
                 kinds[i].api_version);
    }
    for (size_t i = 0; i < sizeof(foreign_kinds) / sizeof(foreign_kinds[0]); i++) {
        if (strcmp(kind, foreign_kinds[i].kind) == 0 &&
            strcmp(api, foreign_kinds[i].api_version) == 0)
            return skip_document(x, root, api, kind);
    }
    if (versions[0] != '\0')
        return rc__config_fail(x, an, "%s must have apiVersion %s, not '%s'", kind, versions, api);
    return rc__config_fail(
        x, kn,
        "unknown kind '%s' (known: Broker and Trigger in eventing.knative.dev/v1, "
        "Service in v1, RingcastConfig and DaprApp in ringcast.dev/v1alpha1, "
        "Component in dapr.io/v1alpha1, Subscription in dapr.io/v2alpha1 or v1alpha1)",
        kind);
}

int rc_config_kind_known(const char *api, const char *kind)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(kind, kinds[i].kind) == 0 && strcmp(api, kinds[i].api_version) == 0)
            return 1;
    }
    for (size_t i = 0; i < sizeof(foreign_kinds) / sizeof(foreign_kinds[0]); i++) {
        if (strcmp(kind, foreign_kinds[i].kind) == 0 &&
            strcmp(api, foreign_kinds[i].api_version) == 0)
            return 2;
    }
    return 0;
}

/* ---- after the last document --------------------------------------------------------------- */

/* ---- the ring against the limits ------------------------------------------------------------ */

static uint64_t ring_record_max(uint64_t ring)
{
    return ring / 4 < RC_CONFIG_RING_RECORD_CAP ? ring / 4 : RC_CONFIG_RING_RECORD_CAP;
}

static uint64_t ring_claim_max(uint64_t ring)
{
    return ring / 2 < RC_CONFIG_RING_CLAIM_CAP ? ring / 2 : RC_CONFIG_RING_CLAIM_CAP;
}

/* "1048576" for a setting the file gives at `line`, "1048576, the default" for one it leaves
 * out: the operator sees which of the numbers they chose. */
static const char *setting(char *buf, size_t len, uint64_t value, int line)
{
    snprintf(buf, len, "%llu%s", (unsigned long long)value, line ? "" : ", the default");
    return buf;
}

/* What to do about it: the smallest ring that holds `need` under `max_of`, or lowering the
 * limits when no ring does. */
static const char *remedy(char *buf, size_t len, uint64_t need, uint64_t (*max_of)(uint64_t),
                          const char *cap)
{
    uint64_t r = 64 * 1024;
    while (r <= (1ull << 36) && max_of(r) < need)
        r <<= 1;
    if (r > (1ull << 36) || max_of(r) < need)
        snprintf(buf, len, "lower those limits (no ring takes more than %s)", cap);
    else if (r >= (1ull << 30))
        snprintf(buf, len, "use a ring of at least %lluGi or lower those limits",
                 (unsigned long long)(r >> 30));
    else if (r >= (1ull << 20))
        snprintf(buf, len, "use a ring of at least %lluMi or lower those limits",
                 (unsigned long long)(r >> 20));
    else
        snprintf(buf, len, "use a ring of at least %lluKi or lower those limits",
                 (unsigned long long)(r >> 10));
    return buf;
}

/* The largest event and the largest batch the ingress accepts must fit the ring, or they are
 * refused with 413 at run time although every limit allows them. The message points at the
 * ring size when the file gives it (the usual thing to change), else at the limit it gives. */
static int check_ring(ctx_t *x)
{
    const rc_config_t *c = x->cfg;
    const rc_config_limits_t *l = &c->limits;
    char a[48], b[48], r[48], fix[96];
    uint64_t event = l->max_event_bytes + l->max_header_bytes + RC_CONFIG_RECORD_OVERHEAD;
    if (event > ring_record_max(c->ring_bytes)) {
        int line = x->ring_size_line    ? x->ring_size_line
                   : x->max_event_line  ? x->max_event_line
                   : x->max_header_line ? x->max_header_line
                                        : x->settings_line;
        snprintf(x->err, x->err_len,
                 "%s:%d: 'spec.ring.size' (%s) is too small for 'spec.limits.maxEventBytes' (%s) "
                 "and 'spec.limits.maxHeaderBytes' (%s): the largest event takes %llu bytes of "
                 "ring (%u of them record overhead) and one record may take at most %llu (a "
                 "quarter of the ring, at most 16Mi); %s",
                 x->file, line, setting(r, sizeof(r), c->ring_bytes, x->ring_size_line),
                 setting(a, sizeof(a), l->max_event_bytes, x->max_event_line),
                 setting(b, sizeof(b), l->max_header_bytes, x->max_header_line),
                 (unsigned long long)event, RC_CONFIG_RECORD_OVERHEAD,
                 (unsigned long long)ring_record_max(c->ring_bytes),
                 remedy(fix, sizeof(fix), event, ring_record_max, "16Mi in one record"));
        return RC_ECONFIG;
    }
    uint64_t batch = l->max_batch_bytes + (uint64_t)l->max_batch_events * RC_CONFIG_RECORD_OVERHEAD;
    if (batch > ring_claim_max(c->ring_bytes)) {
        int line = x->ring_size_line          ? x->ring_size_line
                   : x->max_batch_line        ? x->max_batch_line
                   : x->max_batch_events_line ? x->max_batch_events_line
                                              : x->settings_line;
        snprintf(x->err, x->err_len,
                 "%s:%d: 'spec.ring.size' (%s) is too small for 'spec.limits.maxBatchBytes' (%s) "
                 "and 'spec.limits.maxBatchEvents' (%s): the largest batch takes %llu bytes of "
                 "ring (%u per event of record overhead) and one batch may take at most %llu "
                 "(half the ring, at most 2Gi); %s",
                 x->file, line, setting(r, sizeof(r), c->ring_bytes, x->ring_size_line),
                 setting(a, sizeof(a), l->max_batch_bytes, x->max_batch_line),
                 setting(b, sizeof(b), l->max_batch_events, x->max_batch_events_line),
                 (unsigned long long)batch, RC_CONFIG_RECORD_OVERHEAD,
                 (unsigned long long)ring_claim_max(c->ring_bytes),
                 remedy(fix, sizeof(fix), batch, ring_claim_max, "2Gi in one batch"));
        return RC_ECONFIG;
    }
    return 0;
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
    strcpy(c->log_format, "text");
    c->limits.max_event_bytes = 1024 * 1024;
    c->limits.max_batch_bytes = 4u * 1024 * 1024;
    c->limits.max_batch_events = 1000;
    c->limits.max_header_bytes = 16 * 1024;
    c->limits.max_connections = 10000;
    c->limits.max_body_memory = 256u * 1024 * 1024;
    c->limits.header_timeout_ms = 10000;
    c->limits.body_timeout_ms = 30000;
    c->limits.idle_timeout_ms = 60000;
    c->watchdog_ms = RC_CONFIG_WATCHDOG_DEFAULT_MS;
    c->lag.permille = RC_CONFIG_LAG_DEFAULT_PERMILLE;
    c->lag.policy = RC_LAG_DEAD_LETTER;
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
    if (rc == 0)
        rc = check_ring(&x);
    if (rc == 0 && c.limits.max_body_memory < c.limits.max_batch_bytes) {
        /* Below that, the largest request allowed could never be read. */
        snprintf(err, err_len,
                 "%s:%d: 'spec.limits.maxBodyMemory' (%llu) is smaller than "
                 "'spec.limits.maxBatchBytes' (%llu)",
                 name, x.settings_line, (unsigned long long)c.limits.max_body_memory,
                 (unsigned long long)c.limits.max_batch_bytes);
        rc = RC_ECONFIG;
    }
    if (rc == 0)
        rc = rc__config_lag_check(&x);
    if (rc == 0 && c.broker_count == 0)
        rc = add_default_broker(&c);
    if (rc == 0)
        rc = rc__config_storage_resolve(&x);
    if (rc == 0)
        rc = rc__config_resolve_refs(&x);
    if (rc == 0)
        rc = rc__config_dapr_resolve(&x);
    rc__config_dapr_end(&x);
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

int rc_config_read_file(const char *path, char **text, size_t *len, char *err, size_t err_len)
{
    *text = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        snprintf(err, err_len, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    /* fopen opens a directory for reading; only the read fails, with EISDIR. Said plainly. */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        snprintf(err, err_len, "%s is a directory, not a config file", path);
        return -EISDIR;
    }
    char *buf = malloc(MAX_CONFIG_FILE + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(err, err_len, "%s: out of memory", path);
        return -ENOMEM;
    }
    errno = 0;
    size_t n = fread(buf, 1, MAX_CONFIG_FILE + 1, f);
    int rd_err = ferror(f) ? (errno != 0 ? errno : EIO) : 0;
    fclose(f);
    if (rd_err) {
        snprintf(err, err_len, "%s: cannot read: %s", path, strerror(rd_err));
        free(buf);
        return -rd_err;
    }
    if (n > MAX_CONFIG_FILE) {
        snprintf(err, err_len, "%s: larger than %u bytes", path, MAX_CONFIG_FILE);
        free(buf);
        return RC_ECONFIG;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

/* c->state_file once the file at `path` is loaded: spec.admin.stateFile relative to the config
 * file's directory, or by default the config file's name with ".state.yaml" for its ".yaml" or
 * ".yml" (ringcast.yaml -> ringcast.state.yaml), in the same directory. */
int rc__config_resolve_state(rc_config_t *c, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dir = slash != NULL ? (size_t)(slash - path) + 1 : 0;
    char buf[2 * RC_CONFIG_STORAGE_DIR_MAX + 32];
    if (c->state_file != NULL && c->state_file[0] == '/')
        return 0;
    if (c->state_file != NULL) {
        snprintf(buf, sizeof(buf), "%.*s%s", (int)dir, path, c->state_file);
    } else {
        size_t n = strlen(path);
        if (n > 5 && strcmp(path + n - 5, ".yaml") == 0)
            n -= 5;
        else if (n > 4 && strcmp(path + n - 4, ".yml") == 0)
            n -= 4;
        snprintf(buf, sizeof(buf), "%.*s.state.yaml", (int)n, path);
    }
    char *p = strdup(buf);
    if (p == NULL)
        return -ENOMEM;
    free(c->state_file);
    c->state_file = p;
    return 0;
}

int rc_config_load_file(rc_config_t *c, const char *path, char *err, size_t err_len)
{
    memset(c, 0, sizeof(*c));
    char *buf = NULL;
    size_t n = 0;
    int rc = rc_config_read_file(path, &buf, &n, err, err_len);
    if (rc == 0)
        rc = rc_config_load_string(c, path, buf, n, err, err_len);
    if (rc == 0 && (rc = rc__config_resolve_state(c, path)) != 0) {
        snprintf(err, err_len, "%s: out of memory", path);
        rc_config_close(c);
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
        rc__config_delivery_free(&c->brokers[i].delivery);
    for (size_t i = 0; i < c->trigger_count; i++)
        rc__config_trigger_free(&c->triggers[i]);
    free(c->triggers);
    rc__config_dapr_free(c); /* after the triggers, which point at its subscriptions */
    for (size_t i = 0; i < c->service_count; i++) {
        for (size_t j = 0; j < c->services[i].endpoint_count; j++)
            free(c->services[i].endpoints[j]);
        free(c->services[i].endpoints);
    }
    free(c->services);
    c->triggers = NULL;
    c->services = NULL;
    c->trigger_count = c->service_count = 0;
    free(c->brokers);
    free(c->source);
    free(c->admin_token);
    free(c->state_file);
    c->admin_token = c->state_file = NULL;
    rc__config_notes_free(c);
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
