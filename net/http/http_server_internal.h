/* Internals of the HTTP/1.x server shared by its three files. Not for use outside net/http/.
 *
 *   http_server.c         the server: options, listener, sweep timer, drain, close
 *   http_server_conn.c    connections: accept, read, parse (llhttp), held requests, close
 *   http_server_output.c  responses: serialisation into the output buffer, writes, linger
 *
 * The connection's llhttp parser is not part of rc__http_server_conn_t: http_server_conn.c
 * allocates it behind the connection, so that llhttp.h stays in that one file (DESIGN.md: one
 * llhttp user per role). Everything here runs on the server's loop thread. */
#ifndef RC_NET_HTTP_SERVER_INTERNAL_H
#define RC_NET_HTTP_SERVER_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/codec_http.h"
#include "net/http/http_server.h"

/* Connection states. */
enum {
    RC__HTTP_SERVER_IDLE,    /* between requests (keep-alive) */
    RC__HTTP_SERVER_HEADERS, /* reading a request line and headers */
    RC__HTTP_SERVER_BODY,    /* reading a body */
    RC__HTTP_SERVER_LINGER,  /* FIN sent after the last response; input is drained */
};

#define RC__HTTP_SERVER_LINGER_MS 2000
#define RC__HTTP_SERVER_REPORT_MS 10000 /* refusals are logged at most this often */
#define RC__HTTP_SERVER_READ_BUF  (64 * 1024)
#define RC__HTTP_SERVER_KEEP_BODY                                                                  \
    (64 * 1024) /* body buffer a connection keeps between requests                                 \
                 */

/* A header as offsets into the connection's header buffer, which may move while it grows. */
typedef struct {
    uint32_t name_off, name_len, value_off, value_len;
} rc__http_server_hdr_t;

typedef struct rc__http_server_conn_s rc__http_server_conn_t;
struct rc__http_server_conn_s {
    uv_tcp_t tcp;
    uv_shutdown_t shutdown_req;
    rc_http_server_t *srv;
    rc__http_server_conn_t *prev, *next;
    int state;
    uint64_t deadline; /* uv_now() milliseconds */

    char *hbuf; /* url, then header names and values */
    uint32_t hlen, hcap;
    rc__http_server_hdr_t *hdrs;
    uint32_t nhdrs;
    uint32_t url_len;
    int last_was_value;

    const char *body_borrowed; /* points into the server's read buffer, valid during one read */
    uint64_t max_body;         /* limit of the current request's body */
    const void *ctx;           /* the handler's context for the current request (on_headers) */
    uint32_t ctx_tag;
    uint64_t expected_body; /* its Content-Length, 0 when chunked */
    char *body;
    size_t blen, bcap;
    /* What this connection holds of the shared body budget (limits.max_body_memory): the
     * declared length of the body being read, or the capacity of `body`, whichever is more;
     * between requests, the capacity of the buffer it keeps. */
    uint64_t body_mem;

    uint64_t start_ns;
    size_t pending_out; /* bytes handed to uv_write and not yet written */
    unsigned writes_in_flight;

    unsigned stop : 1;        /* parsing stopped on purpose; a response was already queued */
    unsigned close_after : 1; /* close once the queued output is written */
    unsigned skip_body : 1;   /* answered at the headers; discard the body */
    unsigned expect_continue : 1;
    unsigned after_drain : 1; /* request began after the server started draining */
    unsigned reading : 1;
    unsigned closing : 1;
    unsigned shutting_down : 1;
    unsigned counted : 1; /* reported to on_connection */
    /* Close with a TCP reset once the queued output is written (response field `reset`). */
    unsigned reset_after : 1;
    /* Close at once after the answer, without the lingering drain: the connection was refused
     * for want of file descriptors, and lingering would hold one. */
    unsigned no_linger : 1;
    /* A request is held (response field `hold`) until rc_http_server_respond. */
    unsigned held : 1;
    unsigned held_head : 1;
    unsigned held_keep : 1;
    unsigned peer_loopback : 1; /* rc_http_server_request_t.peer_loopback */
    int held_minor;
    uint64_t id; /* rc_http_server_request_t.conn_id */
    char *pend;  /* bytes read behind a held request, parsed once it is answered */
    size_t pend_len;
};

struct rc_http_server_s {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t sweep;
    rc_http_limits_t lim;
    rc_http_handler_t h;
    int port;
    const char *name;            /* in log lines */
    rc_http_server_shared_t *sh; /* options.shared, or own_shared */
    rc_http_server_shared_t own_shared;
    uint64_t fd_limit;         /* RLIMIT_NOFILE (soft), read again on every sweep */
    char retry_after_line[40]; /* "Retry-After: 1\r\n" */

    rc__http_server_conn_t *conns;
    size_t nconns;

    int draining;
    uint64_t drain_deadline;
    void (*drain_done)(rc_http_server_t *s, void *arg);
    void *drain_arg;

    int closing;
    int listener_open;
    int open_handles;
    void (*close_cb)(void *arg);
    void *close_arg;

    char *out; /* responses produced by the current read, written in one go */
    size_t olen, ocap;
    int out_failed;

    uint64_t date_sec;
    char date_line[64]; /* "Date: ...\r\n" */

    rc_http_header_t *req_headers;
    uint64_t next_conn_id;
    char readbuf[RC__HTTP_SERVER_READ_BUF];
};

/* Sets the connection's deadline `ms` from now, but never past the drain deadline. */
static inline void rc__http_server_conn_deadline(rc__http_server_conn_t *c, uint64_t ms)
{
    rc_http_server_t *s = c->srv;
    c->deadline = uv_now(s->loop) + ms;
    if (s->draining && c->deadline > s->drain_deadline)
        c->deadline = s->drain_deadline;
}

/* ---- http_server.c ---- */

/** Runs the drain callback once no connection is left, and frees a closing server once its
 *  handles are closed too. `s` may be freed on return. */
void rc__http_server_check_done(rc_http_server_t *s);

/** Counts one refusal in `r` and returns 1 when it is time to log (the first refusal, then at
 *  most once per RC__HTTP_SERVER_REPORT_MS over all servers sharing `r`), with *since set to
 *  the refusals since the previous line. */
int rc__http_server_refused(rc_http_server_t *s, rc_http_refusals_t *r, uint64_t *since);

/* ---- http_server_conn.c ---- */

/** The listener's connection callback (uv_connection_cb): accepts and starts reading. */
void rc__http_server_accept(uv_stream_t *listener, int status);

/** Closes the connection with a FIN (no linger); a no-op when it is already closing. */
void rc__http_server_conn_close(rc__http_server_conn_t *c);

/** Like rc__http_server_conn_close, but the peer gets a TCP reset (SO_LINGER 0). */
void rc__http_server_conn_reset(rc__http_server_conn_t *c);

/** Restarts reading paused for a client that did not read its answers, once half of the
 *  queued output is gone. */
void rc__http_server_conn_maybe_resume(rc__http_server_conn_t *c);

/** Frees the connection's body buffer and returns its share of the body budget: the request
 *  was refused, the body will not be read. */
void rc__http_server_conn_drop_body(rc__http_server_conn_t *c);

/* ---- http_server_output.c ---- */

/** Queues bytes as given (an interim "100 Continue", a raw response) in the server's output
 *  buffer. On allocation failure the buffer is marked failed, which closes the connection at
 *  the next flush. */
void rc__http_server_queue_bytes(rc__http_server_conn_t *c, const char *p, size_t n);

/** Serialises `res` (status line, Date, Content-Length, Content-Type, its headers, Connection,
 *  body) into the server's output buffer. `head_only`: the request was HEAD (no body); `minor`:
 *  the request's HTTP minor version. */
void rc__http_server_queue_response(rc__http_server_conn_t *c, const rc_http_server_response_t *res,
                                    int head_only, int minor);

/** Queues a JSON error answer the server gives by itself, stops parsing the connection and
 *  marks it to close; drops the body read so far (rc__http_server_conn_drop_body) and reports
 *  to on_rejected. `reason` is a static string. */
void rc__http_server_reject(rc__http_server_conn_t *c, int status, const char *reason);

/** As rc__http_server_reject with 503 and the server's Retry-After: overload, try later. */
void rc__http_server_reject_busy(rc__http_server_conn_t *c, const char *reason);

/** Writes what the output buffer holds for `c` (directly, or through a uv_write) and empties
 *  the buffer, then starts the close, reset or linger the connection asked for. `c` may be
 *  closing on return. */
void rc__http_server_conn_flush(rc__http_server_conn_t *c);

#endif
