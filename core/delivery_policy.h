/* Delivery policy: the `spec.delivery` model of a Broker or Trigger and the arithmetic a worker
 * applies to each attempt (status classes, backoff waits, Retry-After, dead-letter extensions).
 * Pure functions and value types; the contract is ../shared/CONTRACTS.md ("Delivery to a
 * subscriber", "spec.delivery") and the user-facing description is docs/delivery.md. */
#ifndef RC_CORE_DELIVERY_POLICY_H
#define RC_CORE_DELIVERY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

typedef enum {
    RC_BACKOFF_EXPONENTIAL = 0,
    RC_BACKOFF_LINEAR = 1,
} rc_backoff_policy_t;

typedef enum {
    RC_DELIVERY_FORMAT_BINARY = 0,
    RC_DELIVERY_FORMAT_JSON = 1,
} rc_delivery_format_t;

/* Bits of rc_delivery_t.set: which fields the manifest gave explicitly. */
enum {
    RC_DELIVERY_HAS_RETRY = 1u << 0,
    RC_DELIVERY_HAS_BACKOFF_POLICY = 1u << 1,
    RC_DELIVERY_HAS_BACKOFF_DELAY = 1u << 2,
    RC_DELIVERY_HAS_BACKOFF_MAX = 1u << 3,
    RC_DELIVERY_HAS_TIMEOUT = 1u << 4,
    RC_DELIVERY_HAS_RETRY_AFTER_MAX = 1u << 5,
    RC_DELIVERY_HAS_DEAD_LETTER = 1u << 6,
    RC_DELIVERY_HAS_FORMAT = 1u << 7,
};

/* Defaults (Knative's default broker config; caps and timeouts are ringcast's). */
#define RC_DELIVERY_DEFAULT_RETRY              10u
#define RC_DELIVERY_DEFAULT_BACKOFF_DELAY_NS   INT64_C(200000000)   /* PT0.2S */
#define RC_DELIVERY_DEFAULT_BACKOFF_MAX_NS     INT64_C(60000000000) /* PT60S */
#define RC_DELIVERY_DEFAULT_TIMEOUT_NS         INT64_C(30000000000) /* PT30S */
#define RC_DELIVERY_DEFAULT_RETRY_AFTER_MAX_NS INT64_C(60000000000) /* PT60S */

/** Longest dead-letter sink URI kept, including the NUL. */
#define RC_DELIVERY_URI_MAX 1024

/** One `spec.delivery` block. Always complete: rc_delivery_init fills the defaults, and
 *  rc_delivery_set overrides one field and records it in `set`. A small value type; copy it. */
typedef struct {
    uint32_t set;   /**< RC_DELIVERY_HAS_* bits given explicitly */
    uint32_t retry; /**< retries after the first attempt */
    rc_backoff_policy_t backoff_policy;
    rc_delivery_format_t format;
    int64_t backoff_delay_ns;                  /**< >= 0 */
    int64_t backoff_max_ns;                    /**< > 0, cap on one wait */
    int64_t timeout_ns;                        /**< > 0, per attempt */
    int64_t retry_after_max_ns;                /**< >= 0; 0 ignores Retry-After */
    char dead_letter_uri[RC_DELIVERY_URI_MAX]; /**< "" = no dead-letter sink */
} rc_delivery_t;

/** Fills `d` with the defaults (retry 10, exponential, PT0.2S, backoffMax PT60S, timeout PT30S,
 *  retryAfterMax PT60S, no dead-letter sink, binary) and clears `set`. */
void rc_delivery_init(rc_delivery_t *d);

/** Sets one field from its manifest text. `field` is the YAML key under spec.delivery:
 *  `retry`, `backoffPolicy`, `backoffDelay`, `backoffMax`, `timeout`, `retryAfterMax`, `format`,
 *  or `deadLetterSink.uri` (a `ref` is resolved to a URI by the config loader first).
 *  Durations are ISO-8601 (core/duration.h). The value need not be NUL-terminated.
 *  @param err if not NULL, receives a message naming the field and the problem on failure
 *  @return 0, or RC_ECONFIG (unknown field, bad value); `d` is unchanged on failure. */
int rc_delivery_set(rc_delivery_t *d, const char *field, const char *value, size_t value_len,
                    char *err, size_t errlen);

/** Builds a delivery block from the config loader's raw `spec.delivery` (present fields only,
 *  through rc_delivery_set, so the same checks and messages apply; the loader's shape checks are
 *  looser, e.g. it lets `P1Y` through). `out` starts from the defaults.
 *  @return 0, or RC_ECONFIG with a message naming the field in `err` */
int rc_delivery_from_config(const rc_config_delivery_t *cfg, rc_delivery_t *out, char *err,
                            size_t errlen);

/** The delivery block a trigger runs with: the trigger's own block if it set any field (it
 *  replaces the broker's entirely; its unset fields keep the defaults), else the broker's block
 *  if that set any field, else the defaults. Either input may be NULL. */
void rc_delivery_effective(const rc_delivery_t *trigger, const rc_delivery_t *broker,
                           rc_delivery_t *out);

typedef enum {
    RC_DELIVERY_SUCCESS = 0, /**< 2xx */
    RC_DELIVERY_RETRY = 1,   /**< 5xx, 404, 408, 409, 429, transport errors and timeouts */
    RC_DELIVERY_FAIL = 2,    /**< everything else: goes to the dead-letter sink at once */
} rc_delivery_class_t;

/** Classifies the outcome of one attempt: `result` is the HTTP status (100..999) or a negative
 *  error code of the transport (connection refused, reset, timeout, malformed response). */
rc_delivery_class_t rc_delivery_classify(int result);

/** Whether another attempt is allowed after `retries_done` retries (attempts = retry + 1). */
bool rc_delivery_may_retry(const rc_delivery_t *d, uint32_t retries_done);

/** The backoff before retry `i` (0 for the first retry): backoffDelay * 2^i (exponential) or
 *  backoffDelay * (i + 1) (linear), capped at backoffMax. Never overflows, for any `i`. */
int64_t rc_delivery_backoff_ns(const rc_delivery_t *d, uint32_t i);

/** The wait before retry `i` after an attempt ended with `result` (status or negative error).
 *  For a 429 or 503 carrying Retry-After (`retry_after_ns` >= 0; pass -1 when absent) it is
 *  max(backoff, min(retry_after, retryAfterMax)); otherwise the backoff. */
int64_t rc_delivery_wait_ns(const rc_delivery_t *d, uint32_t i, int result, int64_t retry_after_ns);

/** Parses a Retry-After header value: delta-seconds (`120`; huge values saturate) or an
 *  HTTP-date (IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, and the obsolete RFC 850 and asctime
 *  forms). Leading and trailing spaces are ignored. A date in the past gives 0.
 *  @param now_unix_ns the current CLOCK_REALTIME in nanoseconds (dates are relative to it)
 *  @return 0 with the wait in `*out_ns`, or RC_EPARSE for anything else */
int rc_retry_after_parse(const char *v, size_t len, int64_t now_unix_ns, int64_t *out_ns);

/** Longest `knativeerrordata` value, excluding the NUL. */
#define RC_DEAD_LETTER_DATA_MAX 1024

/** The `knativeerrorcode` of a failed delivery: the last HTTP status, or 500 when the last
 *  attempt ended with a transport error (negative `result`). */
int rc_dead_letter_code(int result);

/** Writes the `knativeerrordata` value: standard base64 (RFC 4648, padded) of the response body,
 *  of only as many leading body bytes as fit in RC_DEAD_LETTER_DATA_MAX encoded characters
 *  (768). `cap` must be at least RC_DEAD_LETTER_DATA_MAX + 1 to never truncate further; the
 *  output is always NUL-terminated when cap > 0 and holds whole 4-character groups.
 *  @return the encoded length */
size_t rc_dead_letter_data(const void *body, size_t len, char *out, size_t cap);

/* ---- Dapr apps (CONTRACTS.md, "Delivery to an app") ------------------------------------------ */

/** What a Dapr subscription's app asked for in the `status` member of a 2xx answer, read as the
 *  Dapr sidecar reads it: Go's encoding/json decoding the first JSON value of the body into
 *  `struct{ Status string `json:"status"` }`. The member name matches case-insensitively (as Go
 *  matches field names, `ſ` folding to `s` included), the value exactly (Dapr compares it to
 *  "SUCCESS", "RETRY" and "DROP" as is: "retry" is an unknown value); the last `status` member
 *  wins. Whatever Go would fail to decode (an empty body, a body that is not JSON or not an
 *  object, a syntax error anywhere in the object, a `status` that is not a string or null,
 *  nesting over 10000) makes the sidecar skip the check: RC_DAPR_STATUS_NONE. */
typedef enum {
    RC_DAPR_STATUS_NONE = 0, /**< no usable status, or "": success */
    RC_DAPR_STATUS_SUCCESS = 1,
    RC_DAPR_STATUS_RETRY = 2,
    RC_DAPR_STATUS_DROP = 3,
    RC_DAPR_STATUS_UNKNOWN = 4, /**< any other string: retried, as Dapr does */
} rc_dapr_status_t;

/** Reads the status of an app's 2xx body (`len` bytes, need not be NUL-terminated). `truncated`
 *  says the HTTP client kept only the first `len` bytes: the sidecar would have read them all,
 *  so a prefix that is valid JSON as far as it goes gives the status seen in it (the best guess;
 *  a later member could still change it), where a complete body that stops there would be a
 *  syntax error. Pure; any thread. */
rc_dapr_status_t rc_dapr_app_status(const char *body, size_t len, bool truncated);

/** The outcome of one delivery attempt to a Dapr app. */
typedef enum {
    RC_DAPR_SUCCESS = 0,   /**< done */
    RC_DAPR_RETRY = 1,     /**< retried under the trigger's spec.delivery, then dead-lettered */
    RC_DAPR_DROP = 2,      /**< the app answered {"status":"DROP"}: done, dead-lettered */
    RC_DAPR_NOT_FOUND = 3, /**< 404: done, dead-lettered */
} rc_dapr_outcome_t;

/** Classifies an attempt: `result` is the HTTP status or a negative transport error, `body` the
 *  response body of a 2xx (rc_dapr_app_status). 2xx: by the body's status (none, "" or SUCCESS:
 *  success; RETRY or an unknown value: retry; DROP: drop); 404: not found; any other status and
 *  every transport error or timeout: retry. */
rc_dapr_outcome_t rc_dapr_classify(int result, const char *body, size_t len, bool truncated);

/** Names of the outcomes for logs and dead-letter reasons: "success", "retry", "drop",
 *  "not_found". */
const char *rc_dapr_outcome_name(rc_dapr_outcome_t o);

#endif
