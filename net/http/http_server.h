/* A small HTTP/1.x server on one libuv loop: llhttp per connection, keep-alive and pipelining
 * (responses leave in request order), HTTP/1.0, chunked request bodies, `Expect: 100-continue`,
 * size limits and timeouts. Requests are handed whole to a synchronous handler; the handler
 * fills a response that the server serialises. One server belongs to one loop and one thread;
 * several servers on different threads can share a port (SO_REUSEPORT) and their limits
 * (rc_http_server_shared_t).
 *
 * Overload is answered, never silent: past the connection cap, the memory budget for request
 * bodies or the file-descriptor reserve, the server answers 503 with Retry-After by itself,
 * counts it and logs it at most once per 10 s. */
#ifndef RC_NET_HTTP_SERVER_H
#define RC_NET_HTTP_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include <uv.h>

#include "core/codec_http.h"

typedef struct rc_http_server_s rc_http_server_t;

/* Request headers are core/codec_http.h's rc_http_header_t (name and value views), so the
 * CloudEvents decoder reads them as the parser left them; they are borrowed from the
 * connection until the handler returns. */

/** Request methods the server names; every other method is RC_HTTP_OTHER (method_name tells). */
typedef enum {
    RC_HTTP_OTHER = 0,
    RC_HTTP_GET,
    RC_HTTP_HEAD,
    RC_HTTP_POST,
    RC_HTTP_PUT,
    RC_HTTP_DELETE,
    RC_HTTP_OPTIONS,
} rc_http_method_t;

/** A request as the handler sees it. Everything is borrowed until the callback returns. The
 *  body is empty (NULL, 0) when the callback is on_headers. */
typedef struct {
    rc_http_method_t method;
    const char *method_name;
    const char *path; /* request target up to '?' (not NUL-terminated) */
    size_t path_len;
    const char *query; /* after '?', or NULL */
    size_t query_len;
    const rc_http_header_t *headers;
    size_t header_count;
    const char *body;
    size_t body_len;
    uint64_t content_length; /* declared Content-Length, or UINT64_MAX (chunked or absent) */
    int http_minor;          /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
    uint64_t start_ns;       /* rc_now_ns() when the request's first byte was parsed */
    uint64_t conn_id;        /* the connection, unique per server (rc_http_server_respond) */
    int peer_loopback;       /* the client's address is a loopback one (127/8, ::1, or
                              * ::ffff:127/104): the admin API's writes (net/admin.c) */
    /* on_request only: what on_headers left in res->ctx and res->ctx_tag for this request
     * (NULL and 0 without on_headers), so a handler classifies a request once. */
    const void *ctx;
    uint32_t ctx_tag;
} rc_http_server_request_t;

#define RC_HTTP_RESPONSE_SCRATCH 1024

/** A response the handler fills. `headers` are complete header lines ("Allow: POST\r\n"), body
 *  and headers are borrowed until the callback returns (the server copies them). `scratch` is
 *  room the handler may point `body` or `headers` into. */
typedef struct {
    int status;
    const char *content_type;
    const char *headers;
    size_t headers_len;
    const char *body;
    size_t body_len;
    int close;         /* set to close the connection after this response */
    uint64_t max_body; /* on_headers only: lower the body limit of this request (0 = keep) */
    const void *ctx;   /* on_headers only: handed back to on_request as req->ctx (borrowed) */
    uint32_t ctx_tag;  /* on_headers only: handed back as req->ctx_tag */
    /* on_request only, for test servers that must misbehave (ringcast sink): */
    int raw;   /* send `body` as the whole response, bytes as given (no status line, no
                  headers), then close; `status` is ignored */
    int reset; /* after whatever is queued (nothing, or a `raw` body) is written, close the
                  connection with a TCP reset instead of a FIN */
    int hold;  /* answer later with rc_http_server_respond(req->conn_id); until then the
                  connection is not read (pipelined requests wait). Unanswered, it stays open
                  until the server drains or closes. Borrowed request data is gone then. */
    char scratch[RC_HTTP_RESPONSE_SCRATCH];
} rc_http_server_response_t;

/** What the server calls. Both run on the server's loop thread. */
typedef struct {
    /** Optional: called when the headers are complete, before any body is read. Leave
     *  res->status 0 to go on reading the body, or set a status to answer now without the body
     *  (the server then skips or refuses the body and never calls on_request for it). */
    void (*on_headers)(void *data, const rc_http_server_request_t *req,
                       rc_http_server_response_t *res);
    /** Called once per complete request, in order; must set res->status. */
    void (*on_request)(void *data, const rc_http_server_request_t *req,
                       rc_http_server_response_t *res);
    /** Optional: called for requests the server answers itself (limits, malformed HTTP,
     *  timeouts, draining) with the status it sent and a short reason (static string). */
    void (*on_rejected)(void *data, int status, const char *reason);
    /** Optional: called with +1 when a connection is accepted and -1 when it is closed. */
    void (*on_connection)(void *data, int delta);
    void *data;
} rc_http_handler_t;

/** Limits and timeouts. Zero fields take the defaults listed with rc_http_limits_default. */
typedef struct {
    uint64_t max_body_bytes;    /* 413 above this (default 1 MiB) */
    uint32_t max_header_bytes;  /* request line + headers; 431 above (default 16 KiB) */
    uint32_t max_headers;       /* header count; 431 above (default 100) */
    uint32_t max_connections;   /* per server; extra connections get 503 and close (10000) */
    uint32_t header_timeout_ms; /* first byte to end of headers; 408 and close (10 s) */
    uint32_t body_timeout_ms;   /* end of headers to end of body; 408 and close (30 s) */
    uint32_t idle_timeout_ms;   /* keep-alive idle time before a silent close (60 s) */
    uint32_t drain_timeout_ms;  /* after rc_http_server_drain, force-close after this (5 s) */
    uint32_t max_pending_out;   /* output bytes queued before reading pauses (1 MiB) */
    /* Request body bytes held in memory by all connections of the servers sharing one
     * rc_http_server_shared_t (or of this server alone). A request whose declared body does not
     * fit gets 503 with Retry-After before its body is read; a chunked body that outgrows it
     * gets 503 and the connection closes. Should be at least max_body_bytes. (256 MiB) */
    uint64_t max_body_memory;
    /* File descriptors kept free: a connection accepted onto one of the last fd_reserve
     * descriptors below RLIMIT_NOFILE gets 503 with Retry-After and is closed at once, so the
     * process never runs out (other listeners, logs, pipes use the reserve). (32) */
    uint32_t fd_reserve;
    uint32_t retry_after_s; /* Retry-After of the server's own 503s for overload (1) */
} rc_http_limits_t;

/** Fills `l` with the defaults. */
void rc_http_limits_default(rc_http_limits_t *l);

/** Refusals of one kind, counted over the servers that share them and logged at most once per
 *  interval (the line says how many happened since the previous one). */
typedef struct {
    _Atomic uint64_t total;  /* since the start */
    _Atomic uint64_t logged; /* `total` when the last line was logged */
    _Atomic uint64_t log_ms; /* uv_now() of that line, 0 before the first */
} rc_http_refusals_t;

/** What the servers on several loops serving one port share: the counters their limits apply
 *  to as a sum, and what they refused. The owner zeroes it before the first server is created
 *  and keeps it until the last is closed; servers update it with relaxed atomics (counts that
 *  order nothing), so any thread may read it. */
typedef struct {
    atomic_uint connections;          /* open connections (limits.max_connections) */
    _Atomic uint64_t body_memory;     /* request body bytes held (limits.max_body_memory) */
    rc_http_refusals_t body_refused;  /* requests answered 503: no room for their body */
    rc_http_refusals_t fd_refused;    /* connections answered 503: descriptors ran short */
    rc_http_refusals_t conns_refused; /* connections answered 503: over max_connections */
} rc_http_server_shared_t;

/** Options for rc_http_server_create. `host` is a numeric IPv4 or IPv6 address. */
typedef struct {
    const char *host;
    int port;      /* 0 picks a free port (see rc_http_server_port) */
    int reuseport; /* set SO_REUSEPORT so other servers of this process can bind the port */
    int join;      /* with reuseport: another server of this process already listens there;
                      without it the port must be free (another process's SO_REUSEPORT
                      listener is not silently shared) */
    rc_http_limits_t limits;
    rc_http_handler_t handler;
    /* Optional: what servers on several loops share (limits.max_connections and
     * limits.max_body_memory then apply to their sum); without it the server keeps its own. */
    rc_http_server_shared_t *shared;
    const char *name; /* names the server in log lines ("ingress"); default "http" */
} rc_http_server_options_t;

/** Binds, listens and registers the server on `loop`. Returns 0 and sets *out, or a negative
 *  errno/libuv code (nothing is left registered on the loop). The caller must later call
 *  rc_http_server_close and run the loop until its callback ran. Loop thread only. */
int rc_http_server_create(uv_loop_t *loop, const rc_http_server_options_t *opt,
                          rc_http_server_t **out);

/** The port the server listens on (useful with port 0). */
int rc_http_server_port(const rc_http_server_t *s);

/** Number of open connections. Loop thread only. */
size_t rc_http_server_connections(const rc_http_server_t *s);

/** Starts a graceful stop: the listener closes, requests already begun finish and are answered
 *  with `Connection: close`, requests begun afterwards get 503, idle connections are closed at
 *  their next idle deadline, and any connection still open after limits.drain_timeout_ms is
 *  closed. `done` (optional) runs once when no connection is left. Loop thread only. */
void rc_http_server_drain(rc_http_server_t *s, void (*done)(rc_http_server_t *s, void *arg),
                          void *arg);

/** Closes every handle of the server (listener, connections, timer) and frees it once libuv has
 *  released them; `cb` (optional) runs then. rc_http_server_close(NULL, ...) is a no-op.
 *  Loop thread only. */
void rc_http_server_close(rc_http_server_t *s, void (*cb)(void *arg), void *arg);

/** Answers the request held on connection `conn_id` (the handler set res->hold): `res` as
 *  on_request would fill it (status, headers, body, close; raw, reset and hold are ignored),
 *  copied before the call returns. The connection then goes on with its next request. Returns
 *  0, or -ENOENT when that connection is gone or holds no request. Loop thread only. */
int rc_http_server_respond(rc_http_server_t *s, uint64_t conn_id,
                           const rc_http_server_response_t *res);

/** Whether `sa` is a loopback address: 127.0.0.0/8, ::1, or an IPv4-mapped 127/8. */
int rc_http_addr_is_loopback(const struct sockaddr *sa);

/** Finds a request header by name (case-insensitive); returns it or NULL. */
const rc_http_header_t *rc_http_find_header(const rc_http_server_request_t *req, const char *name);

/** Sets `res` to a JSON error response {"error": "<msg>"} with `status`, formatted into
 *  res->scratch (the message is JSON-escaped and truncated to fit). */
void rc_http_response_error(rc_http_server_response_t *res, int status, const char *msg);

/** The reason phrase for a status code ("Accepted"), "Unknown" when not known. */
const char *rc_http_reason(int status);

#endif
