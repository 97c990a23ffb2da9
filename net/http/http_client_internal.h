/* Internals of the delivery HTTP client shared between its state machine (http_client.c) and
 * its I/O back-ends (http_client_uring.c, http_client_epoll.c). Not for use outside net/.
 *
 * The state machine owns requests, connections and pools; a back-end only moves bytes. It starts
 * asynchronous operations on a connection (connect, send the request, receive into the read
 * buffer) and reports each one exactly once through rc__http_on_connect/_on_send/_on_recv, from
 * inside its wait function. An operation not finished by the connection's deadline completes
 * with -ETIMEDOUT. */
#ifndef RC_NET_HTTP_CLIENT_INTERNAL_H
#define RC_NET_HTTP_CLIENT_INTERNAL_H

#include <stdint.h>
#include <sys/socket.h>

#include "net/http/http_client.h"
#include "net/http/http_response.h"

typedef struct rc__http_req_s rc__http_req_t;
typedef struct rc__http_conn_s rc__http_conn_t;
typedef struct rc__http_pool_s rc__http_pool_t;

/* Request line pieces + Content-Length + two caller header blocks + blank line + body. */
#define RC__HTTP_MAX_IOV   (6 + RC_HTTP_MAX_BODY_IOV)
#define RC__HTTP_RBUF_SIZE 16384

struct rc__http_req_s {
    rc__http_req_t *next; /* pool queue or free list */
    rc__http_pool_t *pool;
    rc_http_cb cb;
    void *userdata;
    struct iovec iov[RC__HTTP_MAX_IOV];
    int iovcnt;
    size_t total; /* bytes of the whole request */
    int64_t deadline_ns;
    uint8_t head;
    uint8_t retried; /* already re-sent once after a stale keep-alive connection */
    char content_length[40];
};

enum {
    RC__CONN_CONNECTING = 1,
    RC__CONN_ACTIVE,  /* exchanging a request and its response */
    RC__CONN_IDLE,    /* kept alive in the pool */
    RC__CONN_CLOSING, /* failed or finished; waiting for its operations to drain */
};

struct rc__http_conn_s {
    rc__http_conn_t *next, *prev; /* the client's list of all connections */
    rc__http_conn_t *idle_next;   /* the pool's idle stack */
    rc_http_client_t *client;
    rc__http_pool_t *pool;
    int fd;
    int state;
    rc__http_req_t *req;
    rc__http_parser_t *parser;
    char *rbuf;
    size_t received; /* response bytes received for the current request */
    unsigned served; /* responses completed on this connection */
    int64_t deadline_ns;
    int64_t idle_since_ns;
    int fail_err;
    uint8_t connect_pending, send_pending, recv_pending;
    uint8_t send_done, resp_done, reusable, retry_req;

    /* Back-end private state. */
    struct msghdr msg;
    struct iovec siov[RC__HTTP_MAX_IOV];    /* the unsent part of the request */
    rc__http_conn_t *kick_next, *kick_prev; /* epoll: connections with work to try */
    uint8_t kicked, readable, writable, connect_err_set, hup;
    uint8_t timed_out; /* io_uring: the sweep ended its operations at the deadline */
    int connect_err;
};

struct rc__http_pool_s {
    rc__http_pool_t *next;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    rc__http_conn_t *idle;
    unsigned nconns;
    rc__http_req_t *qhead, *qtail;
};

struct rc_http_endpoint_s {
    rc_http_endpoint_t *next;
    rc__http_pool_t *pool;
    char *url;
    char *line_rest; /* " /path HTTP/1.1\r\nHost: host:port\r\n" */
    size_t line_rest_len;
};

typedef struct {
    const char *name;
    int (*init)(rc_http_client_t *c);
    void (*fini)(rc_http_client_t *c);
    /* Operations; each completes exactly once through the matching rc__http_on_* call. */
    void (*connect)(rc_http_client_t *c, rc__http_conn_t *conn);
    void (*send)(rc_http_client_t *c, rc__http_conn_t *conn); /* all of conn->req->iov */
    void (*recv)(rc_http_client_t *c, rc__http_conn_t *conn); /* into conn->rbuf */
    /* Makes the pending operations of `conn` complete soon (with any result). */
    void (*abort)(rc_http_client_t *c, rc__http_conn_t *conn);
    /* `conn` has no pending operation: close its socket and forget it. */
    void (*close)(rc_http_client_t *c, rc__http_conn_t *conn);
    /* Submits, waits up to timeout_ms (-1 forever) and dispatches completions. Returns early,
     * as after a completion, once wake_fd is written (rc_http_client_wake) or a futex that
     * wait_futex posted is woken. */
    int (*wait)(rc_http_client_t *c, int timeout_ms);
    /* rc_http_client_wake_on_futex; NULL when the back end cannot wait on a futex. */
    int (*wait_futex)(rc_http_client_t *c, const uint32_t *word, uint32_t val);
} rc__http_backend_ops_t;

struct rc_http_client_s {
    rc_http_client_opts_t opts;
    rc_http_backend_t kind;
    const rc__http_backend_ops_t *be;
    void *be_state;
    int fd;
    /* An eventfd the back end creates in init and watches in wait (rc_http_client_wake writes
     * it, from any thread; only this field of the client is read there). -1 when none. */
    int wake_fd;
    rc__http_pool_t *pools;
    rc_http_endpoint_t *endpoints;
    rc__http_conn_t *conns;     /* every open connection */
    rc__http_conn_t *graveyard; /* closed connections freed at the end of a run */
    rc__http_req_t *free_reqs;
    size_t pending;
    int callbacks;
    int destroying;
};

extern const rc__http_backend_ops_t rc__http_uring_ops;
extern const rc__http_backend_ops_t rc__http_epoll_ops;

/** Completion of backend->connect: 0 or -errno. */
void rc__http_on_connect(rc_http_client_t *c, rc__http_conn_t *conn, int res);
/** Completion of backend->send: >= 0 when everything was sent, else -errno. */
void rc__http_on_send(rc_http_client_t *c, rc__http_conn_t *conn, int res);
/** Completion of backend->recv: bytes received, 0 at end of stream, or -errno. */
void rc__http_on_recv(rc_http_client_t *c, rc__http_conn_t *conn, int res);

/** CLOCK_MONOTONIC in nanoseconds. */
int64_t rc__http_now_ns(void);

#endif
