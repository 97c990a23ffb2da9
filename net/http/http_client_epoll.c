/* The delivery client's epoll back-end, for kernels or sandboxes that refuse io_uring. Sockets
 * are registered once, edge-triggered, and each connection remembers whether it is readable and
 * writable; an operation is tried when it starts (from the next wait) and again on each edge.
 * Attempt deadlines are checked against the connections' deadline_ns on every wait. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/http/http_client_internal.h"

#define MAX_EVENTS 128
/* Bounds the work of one wait so a busy connection cannot starve the caller's loop. */
#define MAX_KICK_ROUNDS 100000

typedef struct {
    int epfd;
    rc__http_conn_t *kick_head;
    char wake_tag; /* its address is the epoll data of c->wake_fd (connections are the rest) */
} epoll_state_t;

static epoll_state_t *state_of(rc_http_client_t *c)
{
    return c->be_state;
}

static int epoll_init(rc_http_client_t *c)
{
    epoll_state_t *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -ENOMEM;
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    int rc = st->epfd < 0 ? -errno : 0;
    /* Level-triggered: the eventfd stays readable until a wait reads it. */
    if (rc == 0 && (c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        rc = -errno;
    if (rc == 0 &&
        epoll_ctl(st->epfd, EPOLL_CTL_ADD, c->wake_fd,
                  &(struct epoll_event){.events = EPOLLIN, .data.ptr = &st->wake_tag}) != 0)
        rc = -errno;
    if (rc != 0) {
        if (c->wake_fd >= 0)
            close(c->wake_fd);
        c->wake_fd = -1;
        if (st->epfd >= 0)
            close(st->epfd);
        free(st);
        return rc;
    }
    c->be_state = st;
    c->fd = st->epfd;
    return 0;
}

static void epoll_fini(rc_http_client_t *c)
{
    epoll_state_t *st = state_of(c);
    close(st->epfd);
    close(c->wake_fd);
    c->wake_fd = -1;
    free(st);
    c->be_state = NULL;
    c->fd = -1;
}

static void kick(epoll_state_t *st, rc__http_conn_t *conn)
{
    if (conn->kicked)
        return;
    conn->kicked = 1;
    conn->kick_prev = NULL;
    conn->kick_next = st->kick_head;
    if (st->kick_head != NULL)
        st->kick_head->kick_prev = conn;
    st->kick_head = conn;
}

static void unkick(epoll_state_t *st, rc__http_conn_t *conn)
{
    if (!conn->kicked)
        return;
    if (conn->kick_prev != NULL)
        conn->kick_prev->kick_next = conn->kick_next;
    else
        st->kick_head = conn->kick_next;
    if (conn->kick_next != NULL)
        conn->kick_next->kick_prev = conn->kick_prev;
    conn->kick_next = conn->kick_prev = NULL;
    conn->kicked = 0;
}

static void epoll_connect(rc_http_client_t *c, rc__http_conn_t *conn)
{
    epoll_state_t *st = state_of(c);
    conn->readable = 0;
    conn->writable = 0;
    conn->hup = 0;
    conn->connect_err_set = 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = conn};
    if (epoll_ctl(st->epfd, EPOLL_CTL_ADD, conn->fd, &ev) < 0) {
        conn->connect_err_set = 1;
        conn->connect_err = -errno;
    } else if (connect(conn->fd, (struct sockaddr *)&conn->pool->addr, conn->pool->addrlen) == 0) {
        conn->connect_err_set = 1;
        conn->connect_err = 0;
        conn->writable = 1;
    } else if (errno != EINPROGRESS) {
        conn->connect_err_set = 1;
        conn->connect_err = -errno;
    }
    kick(st, conn);
}

static void epoll_send(rc_http_client_t *c, rc__http_conn_t *conn)
{
    /* Copy the iovec array (not the bytes) so that short writes can advance it. */
    int n = conn->req->iovcnt;
    memcpy(conn->siov, conn->req->iov, (size_t)n * sizeof(struct iovec));
    memset(&conn->msg, 0, sizeof(conn->msg));
    conn->msg.msg_iov = conn->siov;
    conn->msg.msg_iovlen = (size_t)n;
    kick(state_of(c), conn);
}

static void epoll_recv(rc_http_client_t *c, rc__http_conn_t *conn)
{
    kick(state_of(c), conn);
}

static void epoll_abort(rc_http_client_t *c, rc__http_conn_t *conn)
{
    /* Nothing is in the kernel's hands: the next progress() completes the operations. */
    kick(state_of(c), conn);
}

static void epoll_close(rc_http_client_t *c, rc__http_conn_t *conn)
{
    unkick(state_of(c), conn);
    if (conn->fd >= 0)
        close(conn->fd); /* also removes it from the epoll set */
    conn->fd = -1;
}

static void advance(struct msghdr *msg, size_t n)
{
    while (n > 0 && msg->msg_iovlen > 0) {
        struct iovec *v = msg->msg_iov;
        if (n < v->iov_len) {
            v->iov_base = (char *)v->iov_base + n;
            v->iov_len -= n;
            return;
        }
        n -= v->iov_len;
        msg->msg_iov++;
        msg->msg_iovlen--;
    }
    while (msg->msg_iovlen > 0 && msg->msg_iov->iov_len == 0) {
        msg->msg_iov++;
        msg->msg_iovlen--;
    }
}

/* Does whatever the connection's readiness allows; returns 1 if anything happened. */
static int progress_once(rc_http_client_t *c, rc__http_conn_t *conn, int64_t now)
{
    if (conn->fd < 0)
        return 0;
    if (conn->state == RC__CONN_CLOSING) {
        if (conn->connect_pending)
            rc__http_on_connect(c, conn, -ECANCELED);
        if (conn->fd >= 0 && conn->send_pending)
            rc__http_on_send(c, conn, -ECANCELED);
        if (conn->fd >= 0 && conn->recv_pending)
            rc__http_on_recv(c, conn, -ECANCELED);
        return 0;
    }
    int busy = conn->connect_pending || conn->send_pending || conn->recv_pending;
    if (busy && now >= conn->deadline_ns) {
        if (conn->connect_pending)
            rc__http_on_connect(c, conn, -ETIMEDOUT);
        else if (conn->send_pending)
            rc__http_on_send(c, conn, -ETIMEDOUT);
        else
            rc__http_on_recv(c, conn, -ETIMEDOUT);
        return 1;
    }
    if (conn->connect_pending) {
        int res;
        if (conn->connect_err_set) {
            res = conn->connect_err;
            conn->connect_err_set = 0;
        } else if (conn->writable) {
            int err = 0;
            socklen_t len = sizeof(err);
            if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
            res = -err;
        } else {
            return 0;
        }
        rc__http_on_connect(c, conn, res);
        return 1;
    }
    if (conn->send_pending && conn->writable) {
        ssize_t n = sendmsg(conn->fd, &conn->msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn->writable = 0;
        } else if (n < 0 && errno != EINTR) {
            rc__http_on_send(c, conn, -errno);
            return 1;
        } else if (n >= 0) {
            advance(&conn->msg, (size_t)n);
            if (conn->msg.msg_iovlen == 0)
                rc__http_on_send(c, conn, (int)(conn->req->total & 0x7fffffff));
            return 1;
        }
    }
    if (conn->fd >= 0 && conn->recv_pending && conn->readable) {
        ssize_t n = recv(conn->fd, conn->rbuf, RC__HTTP_RBUF_SIZE, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn->readable = 0;
            return 0;
        }
        if (n < 0 && errno == EINTR)
            return 1;
        /* A short read emptied the socket and the next arrival raises a new edge, except the
         * peer's FIN when it was already reported: then reads never block again. */
        if (n > 0 && (size_t)n < RC__HTTP_RBUF_SIZE && !conn->hup)
            conn->readable = 0;
        rc__http_on_recv(c, conn, n < 0 ? -errno : (int)n);
        return 1;
    }
    return 0;
}

static void run_kicked(rc_http_client_t *c, int64_t now)
{
    epoll_state_t *st = state_of(c);
    for (int round = 0; st->kick_head != NULL && round < MAX_KICK_ROUNDS; round++) {
        rc__http_conn_t *conn = st->kick_head;
        unkick(st, conn);
        if (progress_once(c, conn, now) && conn->fd >= 0)
            kick(st, conn); /* try again: more may be possible */
    }
}

static int epoll_wait_fn(rc_http_client_t *c, int timeout_ms)
{
    epoll_state_t *st = state_of(c);
    int64_t now = rc__http_now_ns();
    run_kicked(c, now);

    int64_t earliest = INT64_MAX;
    for (rc__http_conn_t *conn = c->conns; conn != NULL; conn = conn->next) {
        if ((conn->connect_pending || conn->send_pending || conn->recv_pending) &&
            conn->deadline_ns < earliest)
            earliest = conn->deadline_ns;
    }
    if (st->kick_head != NULL) {
        timeout_ms = 0;
    } else if (earliest != INT64_MAX) {
        int64_t ms = (earliest - now + 999999) / 1000000;
        if (ms < 0)
            ms = 0;
        if (timeout_ms < 0 || ms < timeout_ms)
            timeout_ms = (int)ms;
    }

    struct epoll_event events[MAX_EVENTS];
    int n = epoll_wait(st->epfd, events, MAX_EVENTS, timeout_ms);
    if (n < 0 && errno != EINTR)
        return -errno;
    now = rc__http_now_ns();
    for (int i = 0; i < n; i++) {
        if (events[i].data.ptr == &st->wake_tag) {
            uint64_t count;
            (void)!read(c->wake_fd, &count, sizeof(count)); /* resets it; EAGAIN is fine */
            continue;
        }
        rc__http_conn_t *conn = events[i].data.ptr;
        if (conn->fd < 0)
            continue; /* closed by an earlier event of this batch; memory freed after run */
        uint32_t e = events[i].events;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            conn->readable = 1;
        if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            conn->hup = 1;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            conn->writable = 1;
        kick(st, conn);
    }
    /* Connections past their deadline get one progress() call, which fails them. */
    for (rc__http_conn_t *conn = c->conns; conn != NULL; conn = conn->next) {
        if ((conn->connect_pending || conn->send_pending || conn->recv_pending) &&
            conn->deadline_ns <= now)
            kick(st, conn);
    }
    run_kicked(c, now);
    return n < 0 ? 0 : n;
}

const rc__http_backend_ops_t rc__http_epoll_ops = {
    .name = "epoll",
    .init = epoll_init,
    .fini = epoll_fini,
    .connect = epoll_connect,
    .send = epoll_send,
    .recv = epoll_recv,
    .abort = epoll_abort,
    .close = epoll_close,
    .wait = epoll_wait_fn,
};
