/* The broker's configuration: Knative-style manifests in one multi-document YAML file.
 *
 *   apiVersion: ringcast.dev/v1alpha1      # at most one; every field optional
 *   kind: RingcastConfig
 *   spec: {listen, admin, ingressLoops, ring: {size}, limits: {...}, shutdownTimeout, ...}
 *   ---
 *   apiVersion: eventing.knative.dev/v1    # any number
 *   kind: Broker
 *   metadata: {name, namespace}
 *   spec: {delivery: {...}}
 *
 * Documents are dispatched by (apiVersion, kind) through one table in config.c, so a new kind
 * (Trigger, Service) is one more parser. Loading is all-or-nothing: on any error the config is
 * left empty and a message naming the file, line and problem is returned. */
#ifndef RC_CORE_CONFIG_H
#define RC_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define RC_CONFIG_NAME_MAX        63 /* Kubernetes DNS-1123 label */
#define RC_CONFIG_ADDR_MAX        64
#define RC_CONFIG_ERR_MAX         512
#define RC_CONFIG_RING_PREFIX_MAX 24 /* [A-Za-z0-9_-], default "ringcast" */

/** Knative `spec.delivery`, kept as given (validated for shape) until delivery lands. Strings
 *  are NULL when absent; retry is -1 when absent. */
typedef struct {
    int64_t retry;
    char *backoff_policy; /* "exponential" | "linear" */
    char *backoff_delay;  /* ISO-8601 durations */
    char *backoff_max;
    char *timeout;
    char *retry_after_max;
    char *dead_letter_uri;
    char *format;         /* "binary" | "json" */
    int dead_letter_line; /* line of deadLetterSink.uri or .ref (for messages), 0 if none */
    char *dead_letter_ref;  /* deadLetterSink.ref.name (a Service of the same namespace) when
                             * given, else NULL; dead_letter_uri is then its URL once loaded */
    char *dead_letter_path; /* deadLetterSink.uri given with a ref: a path under the Service's
                             * URL (NULL: "/"); used while loading only */
    char dead_letter_ref_ns[RC_CONFIG_NAME_MAX + 1]; /* deadLetterSink.ref.namespace, "" = the
                                                      * owner's */
} rc_config_delivery_t;

/** Where a broker keeps its events (RingcastConfig spec.storage for every broker, a Broker's
 *  own with the annotations ringcast.dev/storage-*: docs/config.md, "Storage"). */
typedef enum {
    RC_CONFIG_STORAGE_MEMORY = 0, /* a shm ring in /dev/shm (the default) */
    RC_CONFIG_STORAGE_FILE = 1,   /* a ring file in `directory` (docs/durability.md) */
    RC_CONFIG_STORAGE_REDIS = 2,  /* Redis Streams (spec.redis), mirrored into a shm ring
                                   * (docs/scaleout.md) */
} rc_config_storage_type_t;

/** When an accepted event is on disk (docs/durability.md); batch and sync need storage file. */
typedef enum {
    RC_CONFIG_DURABILITY_NONE = 0,  /* the page cache: survives a crash of the process */
    RC_CONFIG_DURABILITY_BATCH = 1, /* fdatasync at most every flush_interval_ms, 202 before */
    RC_CONFIG_DURABILITY_SYNC = 2,  /* 202 once on disk (group commit) */
} rc_config_durability_t;

/** Longest storage directory (the ring file's path adds "/<ns>.<name>.cursors" to it). */
#define RC_CONFIG_STORAGE_DIR_MAX 1023

/** A storage block: as given (RingcastConfig spec.storage, a Broker's annotations), and in each
 *  broker once the load is done, the effective one (the Broker's own fields over the
 *  RingcastConfig's). A field's line is where it was given, 0 when it was not. */
typedef struct {
    rc_config_storage_type_t type;
    rc_config_durability_t durability;
    char directory[RC_CONFIG_STORAGE_DIR_MAX + 1]; /* absolute; "" when not given */
    uint32_t flush_interval_ms;                    /* batch: 1..10000, default 10 */
    int type_line, directory_line, durability_line, flush_interval_line;
} rc_config_storage_t;

/** RingcastConfig spec.redis: the Redis that brokers of storage type redis keep their events
 *  in (docs/config.md "Redis", docs/scaleout.md): one standalone server, or the seeds of a
 *  Redis Cluster. */
#define RC_CONFIG_REDIS_HOST_MAX     255
#define RC_CONFIG_REDIS_PASSWORD_MAX 511
#define RC_CONFIG_REDIS_PARTITIONS   64 /* most partition streams per broker */
#define RC_CONFIG_REDIS_ADDRESSES    16 /* most seeds in spec.redis.addresses */
#define RC_CONFIG_REDIS_NODE_ID_MAX  64
typedef struct {
    char host[RC_CONFIG_REDIS_HOST_MAX + 1];
    int port;
} rc_config_redis_addr_t;
typedef struct {
    char host[RC_CONFIG_REDIS_HOST_MAX + 1]; /* the first address; "" when none is given */
    int port;
    rc_config_redis_addr_t addresses[RC_CONFIG_REDIS_ADDRESSES]; /* every one, in order */
    uint32_t n_addresses;
    char password[RC_CONFIG_REDIS_PASSWORD_MAX + 1]; /* "" = no AUTH */
    uint32_t partitions;      /* streams per broker, 1..64 (1) */
    uint64_t max_len;         /* XADD MAXLEN ~ N; 0 = no trimming (1000000) */
    uint64_t max_age_ms;      /* XTRIM MINID <now - maxAge> each second; 0 = none (0) */
    uint32_t replicas;        /* WAIT for this many replicas before the 202 (0) */
    uint32_t wait_timeout_ms; /* WAIT's timeout (1000) */
    uint32_t claim_idle_ms;   /* XAUTOCLAIM of group entries idle longer (30000) */
    char node_id[RC_CONFIG_REDIS_NODE_ID_MAX + 1]; /* consumer name in the triggers' groups;
                                                    * "" = hostname:listen port */
    int line;                 /* of spec.redis, 0 when not given */
    int addresses_line;
} rc_config_redis_t;

/** ringcast.dev/dedup-capacity: keys a broker's deduplication table holds. */
#define RC_CONFIG_DEDUP_MIN 1024
#define RC_CONFIG_DEDUP_MAX (64 << 20)

/** One `Broker` manifest. */
typedef struct {
    char ns[RC_CONFIG_NAME_MAX + 1];
    char name[RC_CONFIG_NAME_MAX + 1];
    rc_config_delivery_t delivery;
    /* effective: its own storage fields over spec.storage's (see rc_config_storage_t) */
    rc_config_storage_t storage;
    /* Deduplication (annotations ringcast.dev/dedup-window, -capacity): 0 = off; capacity 0 =
     * the default for the window (net/dedup.h) */
    uint32_t dedup_window_ms;
    uint64_t dedup_capacity;
    int dedup_line; /* of the window annotation, 0 when not given */
    int line;       /* where its document starts, 0 for the built-in default */
} rc_config_broker_t;

/** What happens to a trigger or consumer group that falls further behind its ring's head than
 *  its lag limit (RingcastConfig spec.lag.policy, Trigger annotation ringcast.dev/lag-policy). */
typedef enum {
    RC_LAG_INHERIT = 0,     /* a Trigger's, when not given: spec.lag's applies */
    RC_LAG_DEAD_LETTER = 1, /* the events it can no longer keep go to its dead-letter sink
                             * (reason `lagged`), or are dropped and counted without one */
    RC_LAG_BLOCK = 2,       /* it keeps them: producers wait (429) until it catches up */
} rc_lag_policy_t;

/** A lag limit as given (RingcastConfig spec.lag; Trigger annotations ringcast.dev/lag-limit
 *  and ringcast.dev/lag-policy): a fraction of the ring or a number of bytes, and a policy.
 *  Fields not given are 0. docs/config.md, "Lag limits". */
typedef struct {
    uint32_t permille; /* limit as a fraction of the ring, 1..1000 (500 = 50%) */
    uint64_t bytes;    /* limit in bytes, RC_CONFIG_LAG_MIN_BYTES .. the ring's size */
    rc_lag_policy_t policy;
    int line; /* where the limit was given (for messages), 0 = not given */
} rc_config_lag_t;

#define RC_CONFIG_LAG_DEFAULT_PERMILLE 500u /* spec.lag.limit: 50% of the ring */
#define RC_CONFIG_LAG_MIN_BYTES        65536u
#define RC_CONFIG_WATCHDOG_DEFAULT_MS  5000u /* spec.watchdogTimeout */
#define RC_CONFIG_WATCHDOG_MIN_MS      500u

/** Default in-flight window of a trigger (annotation ringcast.dev/max-inflight). */
#define RC_CONFIG_MAX_INFLIGHT_DEFAULT 100u
#define RC_CONFIG_MAX_INFLIGHT_MAX     10000u
/** A trigger's rate limit (annotation ringcast.dev/rate-limit), in thousandths of an event per
 *  second: from 0.001 to 1,000,000 events/s. */
#define RC_CONFIG_RATE_MILLI_MAX 1000000000ull
/** Most triggers one config may hold. */
#define RC_CONFIG_TRIGGERS_MAX 16384u
/** Most worker processes (RingcastConfig spec.workers). */
#define RC_CONFIG_WORKERS_MAX 64u

struct rc_filter_s; /* core/filter.h */

/** One `Service` manifest (v1): a local subscriber at http://127.0.0.1:<port>, where <port> is
 *  spec.ports[0].targetPort when given (the port the process listens on, as in Kubernetes),
 *  else spec.ports[0].port. */
typedef struct {
    char ns[RC_CONFIG_NAME_MAX + 1];
    char name[RC_CONFIG_NAME_MAX + 1];
    int port;        /* spec.ports[0].port */
    int target_port; /* spec.ports[0].targetPort, 0 when not given */
    /* annotation ringcast.dev/endpoints: the replicas of the subscriber it stands for, base
     * URLs "http://HOST:PORT" (0 when not given: 127.0.0.1 and the port above) */
    char **endpoints;
    size_t endpoint_count; /* 0..RC_CONFIG_DAPR_REPLICAS_MAX */
    int line;
} rc_config_service_t;

/** The port a Service's subscribers are sent to: its targetPort, else its port. */
static inline int rc_config_service_port(const rc_config_service_t *s)
{
    return s->target_port != 0 ? s->target_port : s->port;
}

/** What the loader tells the operator beside errors: a document it skipped (a Kubernetes kind
 *  kept in the same file) or a field it reads but cannot honour. */
typedef enum {
    RC_CONFIG_NOTE_INFO = 0,
    RC_CONFIG_NOTE_WARN = 1,
} rc_config_note_level_t;

typedef struct {
    rc_config_note_level_t level;
    char *text; /* "FILE:LINE: message" */
    size_t msg; /* offset of "message" in text */
} rc_config_note_t;

struct rc_cel_s; /* core/cel.h */

/* ---- Dapr (docs/dapr.md) -------------------------------------------------------------------- */

#define RC_CONFIG_TOPIC_MAX 255 /* a Dapr topic name (may contain '/') */

/** One Dapr pub/sub `Component` (dapr.io/v1alpha1, spec.type `pubsub.ringcast`): a pubsub name
 *  for a ringcast Broker. Component names are unique over the whole file (the Dapr API names a
 *  pubsub without a namespace). */
typedef struct {
    char ns[RC_CONFIG_NAME_MAX + 1];
    char name[RC_CONFIG_NAME_MAX + 1];
    char broker[RC_CONFIG_NAME_MAX + 1];      /* metadata `broker` (default "default"), in ns */
    char consumer_id[RC_CONFIG_NAME_MAX + 1]; /* metadata `consumerID`; "" = the app id */
    int line;
} rc_config_pubsub_t;

/** One `DaprApp` (ringcast.dev/v1alpha1): an app id (metadata.name) and its replicas, as
 *  `dapr run --app-id --app-port` would tell a sidecar. */
typedef struct {
    char ns[RC_CONFIG_NAME_MAX + 1];
    char name[RC_CONFIG_NAME_MAX + 1]; /* the app id */
    char **endpoints;                  /* "http://host:port" base URLs, no trailing '/' */
    size_t endpoint_count;             /* 1..RC_CONFIG_DAPR_REPLICAS_MAX */
    uint32_t max_concurrency;          /* spec.maxConcurrency per replica, 0 = not given */
    int line;
} rc_config_dapr_app_t;

#define RC_CONFIG_DAPR_REPLICAS_MAX 64u
#define RC_CONFIG_DAPR_RULES_MAX    64u

/** One rule of a subscription's routes: the first rule whose `match` holds gives the path. */
typedef struct {
    char *match;          /* CEL source as written */
    struct rc_cel_s *cel; /* compiled (core/cel.h) */
    char *path;           /* starts with '/' */
    int line;
} rc_config_dapr_rule_t;

/** One Dapr subscription as it applies to one app: a declarative `Subscription` (dapr.io
 *  v2alpha1 or v1alpha1) for each app in its scopes (every DaprApp of its namespace when it has
 *  none), or one entry of an app's `GET /dapr/subscribe` answer (programmatic). Each is delivered
 *  by one internal trigger (rc_config_trigger_t.dapr points back here): the replicas of the app
 *  share its events, each other subscription gets them all. */
typedef struct {
    char ns[RC_CONFIG_NAME_MAX + 1];
    char name[RC_CONFIG_NAME_MAX + 1]; /* the Subscription's metadata.name, "" if programmatic */
    char pubsub[RC_CONFIG_NAME_MAX + 1];
    char topic[RC_CONFIG_TOPIC_MAX + 1];
    const rc_config_dapr_app_t *app; /* into rc_config_t.dapr_apps */
    char group[RC_CONFIG_NAME_MAX + 1]; /* the consumer group: consumerID, else the app id */
    rc_config_dapr_rule_t *rules;    /* in order; may be 0 */
    size_t rule_count;
    char *default_path;          /* routes.default or v1 `route`; NULL: no fallback */
    char *dead_letter_topic;     /* NULL if none */
    int raw_payload;             /* metadata rawPayload: "true" */
    int bulk;                    /* bulkSubscribe.enabled */
    uint32_t bulk_max_messages;  /* bulkSubscribe.maxMessagesCount (100) */
    uint32_t bulk_max_await_ms;  /* bulkSubscribe.maxAwaitDurationMs (1000) */
    int programmatic;
    int line; /* declarative: where its document starts */
} rc_config_dapr_sub_t;

/** Where a trigger without a saved cursor starts (ringcast.dev/start-from, docs/config.md). A
 *  trigger that has a saved cursor resumes there whatever this says. */
typedef enum {
    RC_START_FROM_DEFAULT = 0, /* not given: the latest event (or the resumed feeds' position
                                * when the broker's cursor table was lost, docs/delivery.md) */
    RC_START_FROM_LATEST = 1,  /* the next event stored */
    RC_START_FROM_OLDEST = 2,  /* the oldest event the broker's store still holds */
    RC_START_FROM_TIME = 3,    /* the first event that arrived at or after start_from_ns */
} rc_config_start_from_t;
/** ringcast.dev/ordering: none (the default), or events with the same CloudEvents
 *  `partitionkey` extension delivered one at a time in ingest order. */
enum { RC_ORDERING_NONE = 0, RC_ORDERING_PARTITIONKEY = 1 };

/** One `Trigger` manifest (eventing.knative.dev/v1). */
typedef struct {
    char ns[RC_CONFIG_NAME_MAX + 1];
    char name[RC_CONFIG_NAME_MAX + 1];
    char broker[RC_CONFIG_NAME_MAX + 1];
    struct rc_filter_s *filter;    /* finished filter, NULL = no filter (matches everything) */
    char *subscriber_uri;          /* resolved: spec.subscriber.uri, or the Service's URL (+ uri
                                    * as a path when both ref and uri are given) */
    char *service_ref;             /* spec.subscriber.ref.name when a ref was given, else NULL */
    rc_config_delivery_t delivery; /* the trigger's own spec.delivery (raw, like the broker's) */
    uint32_t max_inflight;         /* ringcast.dev/max-inflight (100) */
    uint64_t rate_milli;           /* ringcast.dev/rate-limit in 1/1000 events/s (0: none) */
    rc_config_lag_t lag;           /* ringcast.dev/lag-limit, ringcast.dev/lag-policy (0: none) */
    rc_config_start_from_t start_from; /* ringcast.dev/start-from */
    int64_t start_from_ns;             /* RC_START_FROM_TIME: Unix ns */
    int ordering;                  /* ringcast.dev/ordering: RC_ORDERING_* (docs/delivery.md,
                                    * "Ordered delivery") */
    int line;                      /* where its document starts */
    int subscriber_line;           /* line of spec.subscriber (for resolution errors) */
    /* the subscriber's replicas when its Service has ringcast.dev/endpoints (borrowed from the
     * Service; each event goes to one, docs/delivery.md "HTTP replicas"), else NULL and 0 */
    char *const *endpoints;
    size_t endpoint_count;
    const rc_config_dapr_sub_t *dapr; /* a Dapr subscription's internal trigger, else NULL:
                                       * name "<group>:<subscription>" (declarative) or
                                       * "<group>:<pubsub>:<topic>" (programmatic), past 63
                                       * bytes cut with a '~' and a hash (docs/config.md),
                                       * filter topic == its topic, subscriber_uri the app's
                                       * first replica (docs/dapr.md) */
} rc_config_trigger_t;

/** Ingress limits (RingcastConfig spec.limits). Sizes in bytes, times in milliseconds. */
typedef struct {
    uint64_t max_event_bytes;   /* one event or one binary/structured body (1 MiB) */
    uint64_t max_batch_bytes;   /* a batch body (4 MiB) */
    uint32_t max_batch_events;  /* events in one batch (1000) */
    uint32_t max_header_bytes;  /* request line + headers (16 KiB) */
    uint32_t max_connections;   /* open connections over all ingress loops (10000) */
    uint64_t max_body_memory;   /* request bodies held in memory over all loops (256 MiB) */
    uint32_t header_timeout_ms; /* 10 s */
    uint32_t body_timeout_ms;   /* 30 s */
    uint32_t idle_timeout_ms;   /* 60 s */
} rc_config_limits_t;

/** What a broker's ring holds (the ring's own rule, shm/ring.c, restated because core does not
 *  include shm/): one record at most min(ring size / 4, 16 MiB), one claim (all the events of a
 *  batch) at most min(ring size / 2, 2 GiB). */
#define RC_CONFIG_RING_RECORD_CAP (16ull << 20)
#define RC_CONFIG_RING_CLAIM_CAP  (2ull << 30)
/** Ring bytes one event may take beyond the text it came in (headers and body): the record
 *  header (88), the entry of each of up to 128 extensions beyond its text (at most 21 bytes
 *  each, e.g. "a":1e9 stored as 1000000000), the stamps knativearrivaltime and knativebrokerttl
 *  (about 100), the ring's header (24) and paddings: under 3 KiB, rounded up. The load checks
 *  that maxEventBytes + maxHeaderBytes + this fits one record, and that maxBatchBytes +
 *  maxBatchEvents times this fits one claim (docs/config.md, "Ring size and limits"). */
#define RC_CONFIG_RECORD_OVERHEAD 4096u

/** The whole configuration. Owned by the caller; release with rc_config_close. */
typedef struct {
    char listen_host[RC_CONFIG_ADDR_MAX];
    int listen_port;
    char admin_host[RC_CONFIG_ADDR_MAX];
    int admin_port;
    uint32_t ingress_loops; /* threads serving the ingress port (1) */
    uint64_t ring_bytes;    /* ring capacity per broker, a power of two (16 MiB) */
    char ring_prefix[RC_CONFIG_RING_PREFIX_MAX + 1]; /* shm names "<prefix>.<ns>.<name>" */
    uint32_t shutdown_timeout_ms; /* graceful stop: longest wait for requests in flight (5 s) */
    uint32_t retry_after_s;       /* Retry-After on 429 (1) */
    char log_level[8];            /* "info" */
    char log_format[8];           /* "text" or "json" (spec.logFormat) */
    rc_config_limits_t limits;
    rc_config_broker_t *brokers;
    size_t broker_count;
    rc_config_trigger_t *triggers;
    size_t trigger_count;
    rc_config_service_t *services;
    size_t service_count;
    uint32_t workers; /* RingcastConfig spec.workers: worker processes; 0 = cores - 1, min 1 */
    uint32_t watchdog_ms; /* spec.watchdogTimeout: a worker silent this long is replaced (5 s) */
    rc_config_lag_t lag;  /* spec.lag: triggers' default and consumer groups' (50%, dead-letter) */
    /* spec.storage: every broker's storage, field by field, unless the Broker gives its own */
    rc_config_storage_t storage;
    rc_config_redis_t redis; /* spec.redis (config_redis.c) */
    char dapr_host[RC_CONFIG_ADDR_MAX]; /* spec.dapr.listen: the Dapr sidecar API's own */
    int dapr_port;                      /* listener (0: none; it is on the ingress port too) */
    rc_config_pubsub_t *pubsubs;
    size_t pubsub_count;
    rc_config_dapr_app_t *dapr_apps;
    size_t dapr_app_count;
    rc_config_dapr_sub_t **dapr_subs; /* each allocated alone: triggers point at them */
    size_t dapr_sub_count;
    char *source; /* file name the config came from, or "(default)" */
    /* spec.admin.token: the bearer token the admin API's writes need (NULL: none; then writes
     * are accepted from loopback peers only). docs/operations.md, "Runtime changes". */
    char *admin_token;
    /* spec.admin.stateFile, or by default next to the config file (rc_config_state_path):
     * where `ringcast apply` keeps what it applied. NULL when the config is not from a file. */
    char *state_file;
    rc_config_note_t *notes; /* in file order; serve logs them at start and on a reload */
    size_t note_count;
} rc_config_t;

/** Fills `c` with the built-in defaults (127.0.0.1:8080, admin 127.0.0.1:8081, one loop, one
 *  broker default/default). Returns 0 or -ENOMEM. */
int rc_config_init_default(rc_config_t *c);

/** Loads `path` into `c` (which must be unused: not initialised, or closed). Brokers come from
 *  the file; when it has none, the default broker default/default is added. Returns 0 (notes,
 *  if any, in c->notes), or RC_ECONFIG / -errno with a one-line message in `err` ("FILE:LINE:
 *  what is wrong", "FILE is a directory", "FILE: cannot read: <errno text>"); `c` then holds
 *  nothing to release. The loader stops at the first error. */
int rc_config_load_file(rc_config_t *c, const char *path, char *err, size_t err_len);

/** As rc_config_load_file, from text in memory; `name` stands for the file in messages. */
int rc_config_load_string(rc_config_t *c, const char *name, const char *text, size_t len, char *err,
                          size_t err_len);

/** As rc_config_load_file, then the state file (c->state_file, what `ringcast apply` keeps) when
 *  it exists, loaded after the file: its documents replace the file's of the same kind,
 *  namespace and name (an info note says so), and every message names the file and line the
 *  document came from (core/config_layers.c). What `serve` and a reload (SIGHUP, an apply)
 *  load. */
int rc_config_load_with_state(rc_config_t *c, const char *path, char *err, size_t err_len);

/** One text the documents of a layered load come from: `name` stands for it in messages. */
typedef struct {
    const char *name;
    const char *text;
    size_t len;
} rc_config_source_t;

/** Loads the documents of src[0..n) as one config: a document of a later source replaces the
 *  one of an earlier source with the same identity (rc_config_doc_t), in its place; documents
 *  of one source that repeat an identity are errors as in one file. src[0] is the config file
 *  (its name becomes c->source); a RingcastConfig in a later source is refused. Messages and
 *  notes name the source and its own line. Returns as rc_config_load_string. */
int rc_config_load_sources(rc_config_t *c, const rc_config_source_t *src, size_t n, char *err,
                           size_t err_len);

/** One document of a source, as rc_config_split finds it: its identity (kind, the API group,
 *  namespace and name; "" when the document lacks them), where its text is, and a canonical
 *  form of its content (comments and layout left out) that tells whether two are the same. */
typedef struct {
    char kind[64];
    char api[96];   /* apiVersion as written */
    char group[96]; /* the API group: apiVersion before '/', "" for core v1 */
    char ns[RC_CONFIG_NAME_MAX + 1];
    char name[2 * RC_CONFIG_NAME_MAX + 2];
    int line;        /* 1-based line of the document's first node */
    size_t off, len; /* its text in the source: whole lines from the first node's */
    char *canon;     /* malloc'd */
} rc_config_doc_t;

/** Splits `text` into its documents (empty ones left out). Returns 0 with *docs (free with
 *  rc_config_docs_free) and *n, or RC_ECONFIG with "NAME:LINE: YAML syntax error: ..." in
 *  `err`, or -ENOMEM. */
int rc_config_split(const char *name, const char *text, size_t len, rc_config_doc_t **docs,
                    size_t *n, char *err, size_t err_len);
void rc_config_docs_free(rc_config_doc_t *docs, size_t n);

/** Whether two documents have the same identity (kind, group, namespace, name; the Dapr
 *  Subscription's v1alpha1 and v2alpha1 are one kind). Documents without a kind or a name have
 *  none and match nothing. */
int rc_config_doc_same(const rc_config_doc_t *a, const rc_config_doc_t *b);

/** 1 when (apiVersion, kind) is a kind the loader reads, 2 when it is a Kubernetes kind it
 *  skips (Namespace, Deployment, ...: docs/config.md, "Documents"), 0 when it is unknown. */
int rc_config_kind_known(const char *api, const char *kind);

/** Reads a whole file (at most 16 MiB) into *text (malloc'd, NUL-terminated) and *len. Returns
 *  0, or -errno / RC_ECONFIG with "PATH: cannot open: ..." etc. in `err`. */
int rc_config_read_file(const char *path, char **text, size_t *len, char *err, size_t err_len);

/** Finds a broker by namespace and name (lengths given, not NUL-terminated); NULL if none. */
const rc_config_broker_t *rc_config_find_broker(const rc_config_t *c, const char *ns, size_t ns_len,
                                                const char *name, size_t name_len);

/** Finds a trigger by namespace and name; NULL if none. */
const rc_config_trigger_t *rc_config_find_trigger(const rc_config_t *c, const char *ns,
                                                  const char *name);

/** Finds a Dapr pubsub component by name (over all namespaces); NULL if none. */
const rc_config_pubsub_t *rc_config_find_pubsub(const rc_config_t *c, const char *name,
                                                size_t name_len);

/** Finds a DaprApp by namespace and app id; NULL if none. */
const rc_config_dapr_app_t *rc_config_find_dapr_app(const rc_config_t *c, const char *ns,
                                                    const char *name);

/** A programmatic subscription, as read from an app's `GET /dapr/subscribe` answer (strings
 *  borrowed for the call; rules as CEL sources). */
typedef struct {
    const char *pubsub, *topic;
    const char *const *match; /* rule_count CEL sources */
    const char *const *path;  /* rule_count paths */
    size_t rule_count;
    const char *default_path; /* v1 `route` or routes.default; may be NULL */
    const char *dead_letter_topic;
    int raw_payload;
    int bulk;
    uint32_t bulk_max_messages, bulk_max_await_ms; /* 0: defaults */
} rc_config_dapr_sub_spec_t;

/** Adds app `app`'s programmatic subscription `s` to `c` (before `c` is handed to anyone: the
 *  trigger table may move), with its internal trigger. The pubsub must exist; a subscription of
 *  the same app to the same pubsub and topic already in `c` (declarative ones are loaded first)
 *  wins and this one is refused with -EEXIST. Returns 0, -EEXIST, -ENOMEM or RC_ECONFIG with a
 *  message in `err` (unknown pubsub, bad CEL, bad path). */
int rc_config_add_dapr_subscription(rc_config_t *c, const rc_config_dapr_app_t *app,
                                    const rc_config_dapr_sub_spec_t *s, char *err,
                                    size_t err_len);

/** Logs c->notes in file order (core/log.h, component "config"; warnings at warn, skipped
 *  documents at info). A start and a reload call it. */
void rc_config_log_notes(const rc_config_t *c);

/** Releases what `c` holds; `c` may be re-initialised afterwards. Safe on a zeroed struct. */
void rc_config_close(rc_config_t *c);

/** Whether `s` is a valid ring name prefix: 1-24 characters of [A-Za-z0-9_-]. */
int rc_config_valid_ring_prefix(const char *s);

/** Parses "host:port" (IPv6 as "[::1]:port") into host and port. Returns 0 or -EINVAL. */
int rc_config_parse_addr(const char *s, char *host, size_t host_len, int *port);

/** Parses a byte size: a plain integer or one with a Ki/Mi/Gi (or K/M/G) suffix. Returns 0 or
 *  -EINVAL (bad syntax, overflow). */
int rc_config_parse_size(const char *s, uint64_t *out);

/** Parses a lag limit: a percentage of the ring ("50%", "12.5%": 0.1% to 100%, one decimal at
 *  most) into `*permille`, or a byte size (rc_config_parse_size) into `*bytes`; the other one is
 *  set to 0. Returns 0 or -EINVAL. */
int rc_config_parse_lag_limit(const char *s, uint32_t *permille, uint64_t *bytes);

/** The lag limit that applies to trigger `t` in `c` (NULL: to the consumer groups of c's
 *  brokers, which follow spec.lag): the Trigger's own limit and policy where it gives them,
 *  else spec.lag's. Sets `*bytes` to the limit in bytes of a ring of c->ring_bytes and returns
 *  the policy (never RC_LAG_INHERIT). Any thread. */
rc_lag_policy_t rc_config_lag_limit(const rc_config_t *c, const rc_config_trigger_t *t,
                                    uint64_t *bytes);

/** "memory"/"file" and "none"/"batch"/"sync": the names the config uses (for logs, metrics). */
const char *rc_config_storage_type_name(rc_config_storage_type_t t);
const char *rc_config_durability_name(rc_config_durability_t d);

/** Parses a duration "250ms", "10s", "2m" (or a bare integer of milliseconds) into
 *  milliseconds. Returns 0 or -EINVAL. */
int rc_config_parse_duration_ms(const char *s, uint64_t *out);

#endif
