/* The delivery HTTP/1.1 client: single-threaded, driven by its owner's loop (a worker process),
 * on io_uring with an epoll fallback. Keep-alive connection pools per subscriber address, many
 * sends and receives per system call, per-attempt timeouts, responses parsed with llhttp.
 *
 * Typical use (one thread):
 *
 *     rc_http_client_opts_t o;
 *     rc_http_client_opts_init(&o);
 *     rc_http_client_create(&o, &client);
 *     rc_http_client_endpoint(client, "http://127.0.0.1:8080/events", &ep, err, sizeof(err));
 *     rc_http_client_request(client, &(rc_http_request_t){.endpoint = ep, ...}, on_done, ctx);
 *     while (busy)
 *         rc_http_client_run(client, 100);   // submits, waits, runs callbacks
 *
 * Design notes and the failure semantics are in docs/delivery.md. */
#ifndef RC_NET_HTTP_CLIENT_H
#define RC_NET_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "net/http/http_response.h"

typedef struct rc_http_client_s rc_http_client_t;
typedef struct rc_http_endpoint_s rc_http_endpoint_t;

/** Which I/O back-end a client runs on. */
typedef enum {
    RC_HTTP_BACKEND_AUTO = 0, /**< io_uring, or epoll when io_uring is refused */
    RC_HTTP_BACKEND_URING = 1,
    RC_HTTP_BACKEND_EPOLL = 2,
} rc_http_backend_t;

/** Environment variable that forces a back-end for AUTO clients: "uring" or "epoll". */
#define RC_HTTP_BACKEND_ENV "RINGCAST_HTTP_BACKEND"

typedef struct {
    rc_http_backend_t backend;   /**< default AUTO (see RC_HTTP_BACKEND_ENV) */
    uint32_t max_conns_per_host; /**< connections per address; more requests queue (64) */
    uint32_t ring_entries;       /**< io_uring submission queue size, 8-32768 (256) */
    uint32_t timeout_ms;         /**< attempt timeout when a request gives 0 (30000) */
    uint32_t idle_timeout_ms;    /**< an idle keep-alive connection older than this is closed
                                      instead of reused (4000) */
    size_t max_body;             /**< response body bytes kept; the rest is read and dropped
                                      (1 MiB) */
    size_t max_header_bytes;     /**< status line + headers; larger fails the request (16 KiB) */
} rc_http_client_opts_t;

/** Called exactly once per accepted request, from inside rc_http_client_run (never from
 *  rc_http_client_request). `result` is the HTTP status (then `resp` is non-NULL), or a negative
 *  code: -ECONNREFUSED, -ECONNRESET, -EPIPE, -ETIMEDOUT (attempt timeout), -ECANCELED (client
 *  destroyed), RC_EHTTP_MALFORMED, RC_EHTTP_CLOSED, RC_EHTTP_HEADERS_TOO_LARGE, -ENOMEM, other
 *  -errno (then `resp` is NULL). The callback may issue new requests; it must not destroy the
 *  client nor call rc_http_client_run. After it returns, the request's header and body buffers
 *  are no longer referenced. */
typedef void (*rc_http_cb)(int result, const rc_http_response_t *resp, void *userdata);

/** One attempt. Everything it points to is borrowed until the callback runs. */
typedef struct {
    rc_http_endpoint_t *endpoint; /**< from rc_http_client_endpoint on the same client */
    const char *method;           /**< NULL means "POST"; else 1-16 upper-case letters */
    const char *headers;          /**< prebuilt "Name: value\r\n" lines (no blank line), or NULL;
                                       the client adds Host and Content-Length */
    size_t headers_len;
    const char *more_headers;     /**< a second block of header lines sent after `headers`
                                       (e.g. per-subscriber lines after per-event ones), or NULL */
    size_t more_headers_len;
    const struct iovec *body; /**< body pieces, sent without copying; at most
                                   RC_HTTP_MAX_BODY_IOV */
    int body_iovcnt;
    uint32_t timeout_ms; /**< this attempt (connect + send + response); 0 = client default */
} rc_http_request_t;

#define RC_HTTP_MAX_BODY_IOV 8

/** Fills `opts` with the defaults. */
void rc_http_client_opts_init(rc_http_client_opts_t *opts);

/** Creates a client. With AUTO it tries io_uring and falls back to epoll when the kernel
 *  refuses (the first fallback in a process is reported once on stderr). Every function of a
 *  client must be called from the thread that created it (the io_uring ring is single-issuer),
 *  and a client does not survive fork(): a worker creates its own after forking.
 *  @param opts NULL for the defaults
 *  @return 0, -ENOMEM, -EINVAL (bad option), or the back-end's error when one was forced */
int rc_http_client_create(const rc_http_client_opts_t *opts, rc_http_client_t **out);

/** Fails every pending request with -ECANCELED (their callbacks run now), closes all
 *  connections and frees the client. NULL is a no-op. Not from inside a callback. */
void rc_http_client_destroy(rc_http_client_t *client);

/** The back-end in use. */
rc_http_backend_t rc_http_client_backend(const rc_http_client_t *client);

/** Resolves `url` (`http://host[:port][/path][?query]`; host an IPv4 literal, a bracketed IPv6
 *  literal or a name resolved now, blocking) to an endpoint owned by the client. The same URL
 *  returns the same endpoint; endpoints with the same address share one connection pool.
 *  Endpoints live until the client is destroyed.
 *  @param err if not NULL, receives a message naming the problem on failure
 *  @return 0, RC_EHTTP_BAD_URL, -ENOMEM */
int rc_http_client_endpoint(rc_http_client_t *client, const char *url, rc_http_endpoint_t **out,
                            char *err, size_t errlen);

/** Starts one request. On success the callback runs exactly once, later, from
 *  rc_http_client_run; on failure it never runs.
 *  @return 0, -EINVAL (no endpoint or callback, bad method, too many body pieces, NULL
 *  buffers with a length), -ECANCELED (the client is being destroyed), -ENOMEM, or -errno when
 *  no socket could be created */
int rc_http_client_request(rc_http_client_t *client, const rc_http_request_t *req, rc_http_cb cb,
                           void *userdata);

/** Submits what requests and callbacks started, waits up to `timeout_ms` (0: do not wait, -1:
 *  until something completes) for I/O, handles completions and timeouts and runs callbacks.
 *  @return the number of callbacks run (>= 0), or a negative error of the back-end */
int rc_http_client_run(rc_http_client_t *client, int timeout_ms);

/** A file descriptor that becomes readable when rc_http_client_run has work (the io_uring or
 *  epoll fd), for an owner that waits in its own poll loop. Call rc_http_client_run(c, 0)
 *  before waiting so pending submissions go out, and wait no longer than
 *  rc_http_client_next_timeout_ms. An io_uring made with DEFER_TASKRUN (the default where the
 *  kernel has it) turns readable only once its owner enters it, not when a completion comes:
 *  an owner that must wake for completions sleeps in rc_http_client_run and is woken there
 *  (rc_http_client_wake, rc_http_client_wake_on_futex). */
int rc_http_client_fd(const rc_http_client_t *client);

/** Makes the rc_http_client_run in progress on the client's thread, or else the next one,
 *  return soon, as if something completed (it runs no callback for this): how another thread
 *  wakes an owner that sleeps in rc_http_client_run, e.g. because events arrived elsewhere.
 *  Wake-ups before that run merge into one. Any thread, also while the client's thread runs
 *  it; async-signal-safe (one write to an eventfd). Returns 0 or -errno. */
int rc_http_client_wake(rc_http_client_t *client);

/** Makes the next rc_http_client_run also return when the shared 32-bit futex `word` is woken
 *  (FUTEX_WAKE), or at once if it no longer holds `val`: how an owner sleeps on its requests
 *  and on a futex (a store's wake-up word, rc_storage_prepare_sleep) in one wait, with no
 *  thread. The word's writers must wake it after every change (the ring's producers do); then
 *  a wait still posted for `word` covers any later value too, and calling again adds nothing
 *  until it completes. io_uring back end on kernels with IORING_OP_FUTEX_WAIT (6.7) only.
 *  Returns 0, -ENOTSUP (use a thread and rc_http_client_wake instead), -ENOSPC (more than 8
 *  words), -EAGAIN (no submission entry free now: sleep briefly and call again), -ECANCELED
 *  (being destroyed). The client's thread. */
int rc_http_client_wake_on_futex(rc_http_client_t *client, const uint32_t *word, uint32_t val);

/** Milliseconds until the earliest request deadline the client tracks itself (-1: none). */
int rc_http_client_next_timeout_ms(rc_http_client_t *client);

/** Requests accepted and not yet called back. */
size_t rc_http_client_pending(const rc_http_client_t *client);

#endif
