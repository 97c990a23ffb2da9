/* The config loader's internals, in three floors with arrows pointing down only:
 *
 *   config.c          the file and its documents, the kinds table, Broker, RingcastConfig,
 *                     the checks after the last document
 *   config_trigger.c  Trigger and Service, the refs to Services once every document is in
 *   config_dapr.c     the Dapr kinds (Component, DaprApp, Subscription) and spec.dapr
 *   config_dapr_sub.c Dapr subscriptions (declarative and programmatic): their checks, routes
 *                     and internal triggers
 *   config_lag.c      lag limits: spec.lag, the Trigger annotations, the check against the
 *                     ring's size
 *   config_storage.c  spec.storage and a Broker's storage annotations
 *   config_yaml.c     nodes, the failure recorder, field readers, spec.delivery
 *
 * Not a public header. */
#ifndef RC_CORE_CONFIG_INTERNAL_H
#define RC_CORE_CONFIG_INTERNAL_H

#include <stdint.h>

#include <yaml.h>

#include "core/config.h"

/** What every loader function reads and writes: the file name and error buffer for messages,
 *  the libyaml document being read, and the config being filled. */
typedef struct {
    const char *file;
    char *err;
    size_t err_len;
    yaml_document_t *doc;
    rc_config_t *cfg;
    int settings_line; /* line of the RingcastConfig document already seen, 0 if none */
    /* Lines of the settings the ring check weighs against each other (0: not given, default). */
    int ring_size_line;
    int max_event_line, max_header_line, max_batch_line, max_batch_events_line;
    struct rc__config_dapr_s *dapr; /* config_dapr.c's notes between documents, NULL if none */
} rc__config_ctx_t;

/** Called by rc__config_walk_map for each key of a mapping; returns 0 or the error to stop
 *  with. */
typedef int (*rc__config_field_fn)(rc__config_ctx_t *x, const char *key, yaml_node_t *value,
                                   void *arg);

/* ---- config_yaml.c: nodes and failures ---------------------------------------------------- */

/** The 1-based line of node `n`, 0 for NULL. */
int rc__config_line(const yaml_node_t *n);

/** Writes "FILE:LINE: message" for node `n` into the context's error buffer (truncated to
 *  fit). Every loader message goes through here. Returns RC_ECONFIG. */
int rc__config_fail(rc__config_ctx_t *x, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Adds a note of `level` for node `n` to x->cfg->notes: "FILE:LINE: message". Notes are kept
 *  only when the whole file loads. Returns 0 or -ENOMEM. */
int rc__config_note(rc__config_ctx_t *x, const yaml_node_t *n, rc_config_note_level_t level,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/** Frees c->notes. */
void rc__config_notes_free(rc_config_t *c);

/** The annotations ringcast reads (all on a Trigger), for messages. */
#define RC__CONFIG_ANNOTATIONS                                                                     \
    "ringcast.dev/max-inflight, ringcast.dev/rate-limit, ringcast.dev/lag-limit, "                 \
    "ringcast.dev/lag-policy, ringcast.dev/start-from and ringcast.dev/ordering on a Trigger, "    \
    "ringcast.dev/storage-type, -directory, -durability, -flush-interval, "                        \
    "ringcast.dev/dedup-window and -capacity on a Broker, ringcast.dev/endpoints on a Service"

/** Fails on the first key of annotations mapping `ann` that starts with "ringcast.dev/" but not
 *  "ringcast.dev/storage-" (a Broker's storage annotations, which config_storage.c reads and
 *  checks): an annotation meant for ringcast that it does not read would be ignored silently.
 *  Returns 0 or RC_ECONFIG. */
int rc__config_no_ringcast_annotations(rc__config_ctx_t *x, yaml_node_t *ann, const char *who);

/** Fails with "WHO: unknown annotation 'KEY' (ringcast's are ...)" at `v`. */
int rc__config_unknown_annotation(rc__config_ctx_t *x, yaml_node_t *v, const char *who,
                                  const char *key);

/** The node at `index` of the current document. */
yaml_node_t *rc__config_node(rc__config_ctx_t *x, int index);

/** The value of a scalar node (borrowed from the document), NULL for any other node. */
const char *rc__config_scalar(const yaml_node_t *n);

/** Calls `field` for every key of `map` in order; fails (naming `what`) when `map` is not a
 *  mapping, a key is not a scalar or a key repeats. Returns 0 or the first error. */
int rc__config_walk_map(rc__config_ctx_t *x, yaml_node_t *map, const char *what,
                        rc__config_field_fn field, void *arg);

/** Looks `key` up in mapping `map`: 1 and its value in `*out`, or 0. */
int rc__config_find_key(rc__config_ctx_t *x, yaml_node_t *map, const char *key, yaml_node_t **out);

/** Fails with "unknown field '<where><key>'" at `v`. */
int rc__config_unknown_field(rc__config_ctx_t *x, yaml_node_t *v, const char *where,
                             const char *key);

/* ---- config_yaml.c: field readers ----------------------------------------------------------
 * Each reads the scalar `v` into `*out` or fails with a message naming `field` (the path from
 * the document's root, e.g. "spec.limits.maxEventBytes") and the value given. */

/** A string, borrowed from the document. */
int rc__config_get_string(rc__config_ctx_t *x, yaml_node_t *v, const char *field, const char **out);
/** A decimal integer from `lo` to `hi`. */
int rc__config_get_int(rc__config_ctx_t *x, yaml_node_t *v, const char *field, int64_t lo,
                       int64_t hi, int64_t *out);
/** A byte size (rc_config_parse_size) from `lo` to `hi`. */
int rc__config_get_size(rc__config_ctx_t *x, yaml_node_t *v, const char *field, uint64_t lo,
                        uint64_t hi, uint64_t *out);
/** A duration (rc_config_parse_duration_ms) from 1 ms to 24 h, in milliseconds. */
int rc__config_get_duration(rc__config_ctx_t *x, yaml_node_t *v, const char *field, uint32_t *out);

/** Whether `s` is a Kubernetes DNS-1123 label (names and namespaces). */
int rc__config_valid_dns_label(const char *s);

/** Reads metadata.name and metadata.namespace of a `kind` document from mapping `md` into
 *  `name` and `ns` (RC_CONFIG_NAME_MAX + 1 bytes each; left as they are when absent), checking
 *  that both are DNS labels; labels and annotations must be mappings; any other key fails. Read
 *  first, since they go into every later message. */
int rc__config_metadata_names(rc__config_ctx_t *x, yaml_node_t *md, const char *kind, char *ns,
                              char *name);

/* ---- config_yaml.c: spec.delivery, shared by Broker and Trigger ----------------------------- */

/** Reads spec.delivery of a Broker or Trigger into `d` (kept raw; each value is checked by the
 *  delivery policy's parser). A deadLetterSink.ref is kept in d->dead_letter_ref (with a uri,
 *  which must then be a path, in d->dead_letter_path) for rc__config_resolve_refs. */
int rc__config_delivery(rc__config_ctx_t *x, yaml_node_t *v, rc_config_delivery_t *d);
/** Frees what `d` holds and resets it to "nothing given" (retry -1). */
void rc__config_delivery_free(rc_config_delivery_t *d);

/* ---- config.c ------------------------------------------------------------------------------ */

/** Makes c->state_file the path it stands for once `path`, the config file, is loaded (see
 *  rc__config_resolve_state in config.c). Returns 0 or -ENOMEM. */
int rc__config_resolve_state(rc_config_t *c, const char *path);

/* ---- config_lag.c ---------------------------------------------------------------------------- */

/** Reads RingcastConfig spec.lag (`v`, a mapping) into x->cfg->lag. */
int rc__config_lag_settings(rc__config_ctx_t *x, yaml_node_t *v);

/** Reads Trigger annotation `key` into `l` when it is ringcast.dev/lag-limit or
 *  ringcast.dev/lag-policy; `who` ("Trigger ns/name") starts its messages. Returns 0 (read, or
 *  not a lag annotation) or RC_ECONFIG. */
int rc__config_lag_annotation(rc__config_ctx_t *x, const char *who, const char *key, yaml_node_t *v,
                              rc_config_lag_t *l);

/** After the last document: every limit given in bytes fits the ring (spec.ring.size may come
 *  after it). Returns 0 or RC_ECONFIG with the message naming the limit's line. */
int rc__config_lag_check(rc__config_ctx_t *x);

/* ---- config_storage.c ------------------------------------------------------------------------ */

/** Reads RingcastConfig spec.storage (`v`, a mapping) into x->cfg->storage. */
int rc__config_storage_settings(rc__config_ctx_t *x, yaml_node_t *v);

/** Reads Broker annotation `key` into `s` when it is one of ringcast.dev/storage-*; refuses an
 *  unknown key of that family (a misspelt one would be ignored otherwise). Returns 0 (read, or
 *  another annotation) or RC_ECONFIG. */
int rc__config_storage_annotation(rc__config_ctx_t *x, const char *key, yaml_node_t *v,
                                  rc_config_storage_t *s);

/** After the last document and the default broker: each broker's effective storage (its own
 *  fields over spec.storage's), and the checks that need both. Returns 0 or RC_ECONFIG. */
int rc__config_storage_resolve(rc__config_ctx_t *x);

/** Reads RingcastConfig spec.redis into x->cfg->redis (config_redis.c). */
int rc__config_redis_settings(rc__config_ctx_t *x, yaml_node_t *v);

/* ---- config_trigger.c ------------------------------------------------------------------------ */

/** Loads one Trigger document into x->cfg; its subscriber ref is resolved later. */
int rc__config_parse_trigger(rc__config_ctx_t *x, yaml_node_t *root);
/** After the last document and the brokers' defaults: each Trigger's broker, and the Service
 *  refs of subscribers and dead-letter sinks (Broker and Trigger) turned into URLs. */
int rc__config_resolve_refs(rc__config_ctx_t *x);
/** Loads one Service document into x->cfg. */
int rc__config_parse_service(rc__config_ctx_t *x, yaml_node_t *root);
/** Frees what `t` holds and zeroes it. */
void rc__config_trigger_free(rc_config_trigger_t *t);

/* ---- config_dapr.c --------------------------------------------------------------------------- */

/** Loads one Component document (dapr.io/v1alpha1, type pubsub.ringcast) into x->cfg; its
 *  broker is checked once every document is in. */
int rc__config_parse_component(rc__config_ctx_t *x, yaml_node_t *root);
/** Loads one DaprApp document (ringcast.dev/v1alpha1) into x->cfg. */
int rc__config_parse_dapr_app(rc__config_ctx_t *x, yaml_node_t *root);
/** Reads one Subscription document (dapr.io/v2alpha1 or v1alpha1) and keeps it in x->dapr: it
 *  becomes one subscription per app in its scopes in rc__config_dapr_resolve. */
int rc__config_parse_subscription(rc__config_ctx_t *x, yaml_node_t *root);
/** Reads RingcastConfig spec.dapr (`v`, a mapping) into x->cfg->dapr_host and dapr_port. */
int rc__config_dapr_settings(rc__config_ctx_t *x, yaml_node_t *v);
/** After the last document and the brokers' defaults: spec.dapr.listen against the other
 *  listeners, each Component's broker, then each Subscription kept in x->dapr expanded into its
 *  per-app subscriptions and internal triggers. Returns 0 or an error with its message. */
int rc__config_dapr_resolve(rc__config_ctx_t *x);
/** Frees x->dapr (whether or not the load succeeded). */
void rc__config_dapr_end(rc__config_ctx_t *x);
/** Frees the Dapr parts of `c` (pubsubs, apps, subscriptions); the internal triggers are freed
 *  with the other triggers. */
void rc__config_dapr_free(rc_config_t *c);

/* ---- config_dapr_sub.c ----------------------------------------------------------------------
 * Each fills `why` (a phrase naming the field, without file or line) when it returns
 * RC_ECONFIG. */

/* bulkSubscribe: Dapr's defaults, and ringcast's bounds. */
#define RC__CONFIG_DAPR_BULK_MESSAGES_MAX 1000
#define RC__CONFIG_DAPR_BULK_MESSAGES_DEF 100
#define RC__CONFIG_DAPR_BULK_AWAIT_MAX_MS 60000
#define RC__CONFIG_DAPR_BULK_AWAIT_DEF_MS 1000

/* Routes as given, either form: rule i is (match[i], path[i]); lines are NULL for programmatic
 * subscriptions. */
typedef struct {
    size_t count;
    const char *const *match; /* NULL or "": the rule takes every event (a fallback) */
    const char *const *path;
    const int *match_line, *path_line;
    const char *default_path;  /* NULL if none */
    const char *default_field; /* its name in messages: "routes.default" or "spec.route" */
    int default_line;
} rc__config_dapr_routes_t;

/** A topic (`field` names it): 1-255 bytes, no control characters. */
int rc__config_dapr_check_topic(const char *s, const char *field, char *why, size_t n);
/** Fills s->rules (each match compiled) and s->default_path from `in`. A rule with an empty
 *  match is the fallback (s->default_path); one that is not the last, or one with a default
 *  too, is refused (what follows it would never be used). `*line` is the line at fault (0 if
 *  none). On failure what was done stays in `s` for rc__config_dapr_sub_free. */
int rc__config_dapr_routes(rc_config_dapr_sub_t *s, const rc__config_dapr_routes_t *in, char *why,
                           size_t n, int *line);
/** A deep copy of `src` into `dst` (programs compiled again: each subscription owns its own). */
int rc__config_dapr_sub_clone(rc_config_dapr_sub_t *dst, const rc_config_dapr_sub_t *src, char *why,
                              size_t n);
/** Gives `s` (complete but for its group; s->app set) to `c` with its internal trigger (name,
 *  filter topic == <topic>, subscriber the app's first replica) on pubsub `p`'s broker. Returns
 *  0 (`c` owns `s`), -EEXIST (the app already subscribes to that pubsub and topic), RC_ECONFIG or
 *  -ENOMEM (the caller still owns `s`). The trigger table grows: pointers into c->triggers
 *  move. */
int rc__config_dapr_attach(rc_config_t *c, rc_config_dapr_sub_t *s, const rc_config_pubsub_t *p,
                           char *why, size_t n);
/** Frees what `s` holds and zeroes it (not `s` itself). */
void rc__config_dapr_sub_free(rc_config_dapr_sub_t *s);

#endif
