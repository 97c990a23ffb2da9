/* ringcast error codes. Functions return 0 on success and a negative code on failure: system
 * failures are -errno, libuv and io_uring results pass through, and the project's own codes
 * below sit far below any errno value. net/ maps each code to an HTTP status in one place. */
#ifndef RC_CORE_ERRORS_H
#define RC_CORE_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message). Ranges: 300xx ring, 301xx events, 302xx config, 303xx CESQL,
 * 304xx HTTP client, 305xx remote stores. Every line ends with a backslash and the list ends with the comment line, so
 * that lines added on two branches merge as a union (see .gitattributes). */
#define RC_ERRNO_MAP(X)                                                                            \
    X(RING_FULL, -30001, "ring is full (a lossless reader has not consumed)")                      \
    X(RING_TOO_BIG, -30002, "record larger than the ring allows")                                  \
    X(RING_BAD_MAGIC, -30003, "not a ringcast ring (bad magic)")                                   \
    X(RING_BAD_VERSION, -30004, "ring layout version mismatch")                                    \
    X(RING_NOT_READY, -30005, "ring is not initialised yet")                                       \
    X(RING_TRUNCATED, -30006, "ring file is shorter than its header says")                         \
    X(RING_NO_SLOT, -30007, "no free reader slot in the ring")                                     \
    X(RING_EMPTY, -30008, "no record available")                                                   \
    X(RING_LAPPED, -30009, "reader was lapped by producers")                                       \
    X(RING_CORRUPT, -30010, "ring header is inconsistent")                                         \
    X(RING_SWEPT, -30011, "claim was padded over (producer too slow or presumed dead)")            \
    X(RING_BAD_POS, -30012, "position is not a retained record start")                             \
    X(GROUP_NAME, -30013, "invalid consumer group name")                                           \
    X(GROUP_FULL, -30014, "no free consumer group in the ring")                                    \
    X(GROUP_MEMBERS, -30015, "consumer group has its maximum number of members")                   \
    X(GROUP_UNACKED, -30016, "consumer group member must acknowledge its batch first")             \
    X(GROUP_GONE, -30017, "consumer group's reader slot was reclaimed")                            \
    X(INVALID_EVENT, -30100, "invalid CloudEvent")                                                 \
    X(UNSUPPORTED_MEDIA, -30101, "unsupported content type")                                       \
    X(TOO_LARGE, -30102, "payload too large")                                                      \
    X(NOT_FOUND, -30103, "not found")                                                              \
    X(TTL_EXPIRED, -30104, "event broker TTL expired")                                             \
    X(BAD_RECORD, -30105, "malformed event record")                                                \
    X(CONFIG, -30200, "invalid configuration")                                                     \
    X(PARSE, -30201, "parse error")                                                                \
    X(FILTER, -30202, "invalid trigger filter")                                                    \
    X(CESQL_FUNCTION, -30300, "unknown CESQL function or wrong argument count")                   \
    X(HTTP_MALFORMED, -30400, "malformed HTTP response")                                           \
    X(HTTP_CLOSED, -30401, "connection closed before the HTTP response was complete")              \
    X(HTTP_BAD_URL, -30402, "invalid or unsupported URL")                                          \
    X(HTTP_HEADERS_TOO_LARGE, -30403, "HTTP response headers too large")                          \
    X(STORE_UNAVAILABLE, -30500, "the store (Redis) is unreachable: nothing was stored")         \
    X(STORE_UNREPLICATED, -30501, "stored on the Redis primary, but fewer replicas acknowledged") \
    /* end of RC_ERRNO_MAP */

typedef enum {
#define RC_ERRNO_ENUM(name, value, msg) RC_E##name = value,
    RC_ERRNO_MAP(RC_ERRNO_ENUM)
#undef RC_ERRNO_ENUM
} rc_errno_t;

/** Returns a static, human-readable message for any return code of the project: a project code
 *  from RC_ERRNO_MAP or a negative errno. Never returns NULL. Thread-safe. */
const char *rc_strerror(int err);

/** Returns the symbolic name ("RC_ERING_FULL", "ENOENT", ...) of a code, or "UNKNOWN". */
const char *rc_err_name(int err);

#ifdef __cplusplus
}
#endif

#endif
