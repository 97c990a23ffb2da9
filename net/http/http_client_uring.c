/* The delivery client's io_uring back-end: the only file of the project that includes
 * <liburing.h>. The SQEs of all connections accumulate and go to the kernel in the one
 * io_uring_enter that also waits for completions. Attempt deadlines are kept here, not in the
 * kernel: a connect or receive notes its connection's deadline in next_sweep_ns, and once that
 * time comes a sweep cancels what is past its deadline (its completions then report
 * -ETIMEDOUT) and notes the next one. A kernel timeout linked to every receive cost ~6% of
 * the worker's CPU per delivery (arming and disarming a timer each time); the sweep costs a
 * clock read per wait and a walk of the connections once per deadline that comes due. */
#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/http/http_client_internal.h"

enum { OP_CONNECT = 1, OP_SEND = 2, OP_RECV = 3, OP_MASK = 7 };

/* user_data of SQEs whose completions carry no information (cancels). */
#define UD_IGNORE 0
/* user_data of the read on the wake-up eventfd, and of the futex waits (UD_FUTEX + slot):
 * connection pointers are never this small. */
#define UD_WAKE   1
#define UD_FUTEX  2
#define MAX_FUTEX 8

/* IORING_OP_FUTEX_WAIT (kernel 6.7): liburing 2.3 knows neither the opcode nor its fields. The
 * futex2 flags go in `fd`: a 32-bit word, shared between processes (no FUTEX2_PRIVATE). */
#define OP_FUTEX_WAIT     51
#define FUTEX2_U32_SHARED 0x02
#define FUTEX_MATCH_ANY   0xffffffffull

typedef struct {
    struct io_uring ring;
    /* Operations that could not get an SQE; completed with their error from wait(). */
    rc__http_conn_t *failed;
    /* Sends queued since the last submission. On a socket with room they complete during the
     * submission itself; waiting for one completion more than that many makes the wait return
     * on a response instead of on the sends' own completions. */
    unsigned sends_queued;
    /* The earliest attempt deadline noted since the last sweep (INT64_MAX: none); a wait at or
     * after it sweeps the connections first, and no wait sleeps past it. */
    int64_t next_sweep_ns;
    /* A read of c->wake_fd is posted (or queued to go with the next submission): a write to
     * the eventfd completes it, and that completion ends the wait. The read takes the count,
     * which resets the eventfd without a syscall of ours. The ring's fd cannot be polled for
     * this instead: with DEFER_TASKRUN a completion does not make it readable until the
     * submitter itself enters the ring. */
    uint8_t wake_armed;
    uint8_t wake_broken; /* the read failed: wake-ups are off rather than a busy loop */
    /* IORING_SETUP_TASKRUN_FLAG was accepted: the kernel raises IORING_SQ_TASKRUN while
     * completions wait for this thread to enter the ring, so a look that must not block can
     * skip io_uring_enter when nothing is to be submitted and the flag is down. */
    uint8_t taskrun_flag;
    uint64_t wake_count;
    /* Futex waits (rc_http_client_wake_on_futex): at most one posted per word. */
    uint8_t futex_ok; /* the kernel has IORING_OP_FUTEX_WAIT, and it has not failed */
    struct {
        const uint32_t *word;
        uint8_t posted;
    } futex[MAX_FUTEX];
} uring_state_t;

_Static_assert(_Alignof(rc__http_conn_t) > OP_MASK,
               "operation tag must fit the pointer's low bits");

static uring_state_t *state_of(rc_http_client_t *c)
{
    return c->be_state;
}

static int uring_init(rc_http_client_t *c)
{
    uring_state_t *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -ENOMEM;
    /* Preferred: DEFER_TASKRUN (completion work runs only when this thread waits for it, with
     * no interrupts) with SINGLE_ISSUER (only the creating thread submits: the client is
     * single-threaded anyway). Older kernels get COOP_TASKRUN, then plain rings. SUBMIT_ALL:
     * one bad SQE must not hold back the rest of a batch. TASKRUN_FLAG (uring_wait, the look
     * without a wait) where the kernel takes it with the rest. */
    static const unsigned flag_sets[] = {
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
            IORING_SETUP_TASKRUN_FLAG,
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
        0,
    };
    struct io_uring_params p;
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]) && rc == -EINVAL; i++) {
        memset(&p, 0, sizeof(p));
        p.flags = flag_sets[i];
        rc = io_uring_queue_init_params(c->opts.ring_entries, &st->ring, &p);
    }
    if (rc < 0) {
        free(st);
        return rc;
    }
    /* Non-dropping completion queues are what this file relies on. */
    if (!(p.features & IORING_FEAT_NODROP)) {
        io_uring_queue_exit(&st->ring);
        free(st);
        return -ENOSYS;
    }
    st->next_sweep_ns = INT64_MAX;
    st->taskrun_flag = (p.flags & IORING_SETUP_TASKRUN_FLAG) != 0;
    struct io_uring_probe *probe = io_uring_get_probe_ring(&st->ring);
    if (probe != NULL) {
        st->futex_ok = io_uring_opcode_supported(probe, OP_FUTEX_WAIT) != 0;
        io_uring_free_probe(probe);
    }
    /* Blocking: a read on a non-blocking eventfd would complete at once with -EAGAIN. */
    c->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (c->wake_fd < 0) {
        rc = -errno;
        io_uring_queue_exit(&st->ring);
        free(st);
        return rc;
    }
    c->be_state = st;
    c->fd = st->ring.ring_fd;
    return 0;
}

static void uring_fini(rc_http_client_t *c)
{
    uring_state_t *st = state_of(c);
    io_uring_queue_exit(&st->ring); /* ends the wake-up read before its buffer goes */
    free(st);
    close(c->wake_fd);
    c->wake_fd = -1;
    c->be_state = NULL;
    c->fd = -1;
}

/* Posts the read of the wake-up eventfd; without an SQE now, the next wait tries again. */
static void arm_wake(rc_http_client_t *c)
{
    uring_state_t *st = state_of(c);
    if (st->wake_armed || st->wake_broken || c->destroying)
        return;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
    if (sqe == NULL)
        return;
    io_uring_prep_read(sqe, c->wake_fd, &st->wake_count, sizeof(st->wake_count), 0);
    io_uring_sqe_set_data64(sqe, UD_WAKE);
    st->wake_armed = 1;
}

static int uring_wait_futex(rc_http_client_t *c, const uint32_t *word, uint32_t val)
{
    uring_state_t *st = state_of(c);
    if (!st->futex_ok)
        return -ENOTSUP;
    int slot = -1;
    for (int i = 0; i < MAX_FUTEX; i++) {
        if (st->futex[i].word == word) {
            slot = i;
            break;
        }
        if (st->futex[i].word == NULL && slot < 0)
            slot = i;
    }
    if (slot < 0)
        return -ENOSPC;
    if (st->futex[slot].word == word && st->futex[slot].posted)
        return 0; /* still waiting: a wake after any change ends it */
    struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
    if (sqe == NULL) {
        io_uring_submit(&st->ring);
        sqe = io_uring_get_sqe(&st->ring);
    }
    if (sqe == NULL)
        return -EAGAIN;
    io_uring_prep_rw(OP_FUTEX_WAIT, sqe, FUTEX2_U32_SHARED, word, 0, 0);
    sqe->addr2 = val;
    sqe->addr3 = FUTEX_MATCH_ANY;
    io_uring_sqe_set_data64(sqe, UD_FUTEX + (uint64_t)slot);
    st->futex[slot].word = word;
    st->futex[slot].posted = 1;
    return 0;
}

/* An SQE for an operation; NULL when the ring cannot take one even after flushing what is
 * queued. */
static struct io_uring_sqe *reserve(uring_state_t *st)
{
    if (io_uring_sq_space_left(&st->ring) < 1) {
        io_uring_submit(&st->ring);
        st->sends_queued = 0; /* their completions are posted already, or soon */
    }
    return io_uring_get_sqe(&st->ring);
}

static void fail_later(uring_state_t *st, rc__http_conn_t *conn, int op)
{
    /* kick_* fields are the epoll back-end's; reuse them as the pending-failure list. */
    int listed = conn->kicked != 0;
    conn->connect_err = -EBUSY;
    conn->kicked |= (uint8_t)(1u << op);
    if (!listed) {
        conn->kick_next = st->failed;
        st->failed = conn;
    }
}

/* Tags an operation that ends at the connection's deadline (a connect, a receive) and notes
 * that deadline for the sweep. */
static void with_deadline(uring_state_t *st, rc__http_conn_t *conn, struct io_uring_sqe *sqe,
                          int op)
{
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)conn | (uint64_t)op);
    if (conn->deadline_ns < st->next_sweep_ns)
        st->next_sweep_ns = conn->deadline_ns;
}

static void uring_connect(rc_http_client_t *c, rc__http_conn_t *conn)
{
    uring_state_t *st = state_of(c);
    struct io_uring_sqe *sqe = reserve(st);
    if (sqe == NULL) {
        fail_later(st, conn, OP_CONNECT);
        return;
    }
    io_uring_prep_connect(sqe, conn->fd, (struct sockaddr *)&conn->pool->addr, conn->pool->addrlen);
    with_deadline(st, conn, sqe, OP_CONNECT);
}

static void uring_send(rc_http_client_t *c, rc__http_conn_t *conn)
{
    uring_state_t *st = state_of(c);
    struct io_uring_sqe *sqe = reserve(st);
    if (sqe == NULL) {
        fail_later(st, conn, OP_SEND);
        return;
    }
    memset(&conn->msg, 0, sizeof(conn->msg));
    conn->msg.msg_iov = conn->req->iov;
    conn->msg.msg_iovlen = (size_t)conn->req->iovcnt;
    /* MSG_WAITALL makes the kernel finish a short stream send itself, so the completion means
     * all or an error. The iovecs point at the caller's body: nothing is copied. */
    io_uring_prep_sendmsg(sqe, conn->fd, &conn->msg, MSG_NOSIGNAL | MSG_WAITALL);
    /* No deadline of its own: the receive posted with it carries the attempt's, and when that
     * passes the sweep cancels both. */
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)conn | (uint64_t)OP_SEND);
    st->sends_queued++;
}

static void uring_recv(rc_http_client_t *c, rc__http_conn_t *conn)
{
    uring_state_t *st = state_of(c);
    struct io_uring_sqe *sqe = reserve(st);
    if (sqe == NULL) {
        fail_later(st, conn, OP_RECV);
        return;
    }
    io_uring_prep_recv(sqe, conn->fd, conn->rbuf, RC__HTTP_RBUF_SIZE, 0);
    /* The response cannot be there yet when the request goes out with it: wait for data
     * before the first attempt instead of failing one. Kernels before 5.19 ignore the flag.
     * A receive for the rest of a response tries at once. */
    if (conn->received == 0)
        sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    with_deadline(st, conn, sqe, OP_RECV);
}

static void uring_abort(rc_http_client_t *c, rc__http_conn_t *conn)
{
    uring_state_t *st = state_of(c);
    uint8_t pending[3] = {conn->connect_pending, conn->send_pending, conn->recv_pending};
    for (int op = OP_CONNECT; op <= OP_RECV; op++) {
        if (!pending[op - 1] || (conn->kicked & (1u << op)))
            continue;
        struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
        if (sqe == NULL) {
            io_uring_submit(&st->ring);
            sqe = io_uring_get_sqe(&st->ring);
        }
        if (sqe != NULL) {
            io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)conn | (uint64_t)op, 0);
            io_uring_sqe_set_data64(sqe, UD_IGNORE);
        }
    }
    /* Even without an SQE for the cancel, a shut-down socket ends pending receives and sends. */
    shutdown(conn->fd, SHUT_RDWR);
}

static void uring_close(rc_http_client_t *c, rc__http_conn_t *conn)
{
    (void)c;
    if (conn->fd >= 0)
        close(conn->fd);
    conn->fd = -1;
}

static void dispatch_cqe(rc_http_client_t *c, uint64_t ud, int res)
{
    rc__http_conn_t *conn = (rc__http_conn_t *)(uintptr_t)(ud & ~(uint64_t)OP_MASK);
    int op = (int)(ud & OP_MASK);
    /* The sweep cancelled what this connection had pending and shut it down: whatever that
     * ended reports the deadline. A receive that got data first keeps it (a response complete
     * by then still counts). Other cancels target closing connections, whose results the
     * state machine ignores. */
    if (conn->timed_out &&
        (res < 0 || (res == 0 && op == OP_RECV) ||
         (op == OP_SEND && (size_t)res != conn->req->total)))
        res = -ETIMEDOUT;
    switch (op) {
    case OP_CONNECT:
        rc__http_on_connect(c, conn, res);
        break;
    case OP_SEND:
        if (res >= 0 && (size_t)res != conn->req->total)
            res = -EPIPE; /* MSG_WAITALL stopped short: the peer went away */
        rc__http_on_send(c, conn, res);
        break;
    case OP_RECV:
        rc__http_on_recv(c, conn, res);
        break;
    default:
        break;
    }
}

/* Ends the operations of connections past their attempt deadline (see dispatch_cqe) and
 * returns the earliest deadline still ahead, INT64_MAX when nothing waits for one. */
static int64_t sweep(rc_http_client_t *c, int64_t now)
{
    int64_t next = INT64_MAX;
    for (rc__http_conn_t *conn = c->conns; conn != NULL; conn = conn->next) {
        if (conn->timed_out || !(conn->connect_pending || conn->recv_pending))
            continue;
        if (conn->deadline_ns <= now) {
            conn->timed_out = 1;
            uring_abort(c, conn);
        } else if (conn->deadline_ns < next) {
            next = conn->deadline_ns;
        }
    }
    return next;
}

static void run_failed(rc_http_client_t *c)
{
    uring_state_t *st = state_of(c);
    while (st->failed != NULL) {
        rc__http_conn_t *conn = st->failed;
        st->failed = conn->kick_next;
        conn->kick_next = NULL;
        uint8_t ops = conn->kicked;
        conn->kicked = 0;
        for (int op = OP_CONNECT; op <= OP_RECV; op++) {
            if (ops & (1u << op))
                dispatch_cqe(c, (uint64_t)(uintptr_t)conn | (uint64_t)op, conn->connect_err);
        }
    }
}

/* A look that must not block needs the kernel only to submit, or to run completions that wait
 * for this thread (DEFER_TASKRUN, COOP_TASKRUN: IORING_SQ_TASKRUN), or to flush an overflowed
 * completion queue. Otherwise what completed is in the shared completion ring already: the
 * worker's loop turns without a syscall between its sleeps (it took one per turn, ~6 per event
 * at 1k events/s). */
static int nothing_to_enter_for(uring_state_t *st)
{
    if (!st->taskrun_flag || io_uring_sq_ready(&st->ring) != 0)
        return 0;
    unsigned flags = IO_URING_READ_ONCE(*st->ring.sq.kflags);
    return (flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) == 0;
}

static int uring_wait(rc_http_client_t *c, int timeout_ms)
{
    uring_state_t *st = state_of(c);
    struct io_uring_cqe *cqe = NULL;
    int rc;
    if (st->failed != NULL) {
        run_failed(c);
        timeout_ms = 0;
    }
    if (st->next_sweep_ns != INT64_MAX) {
        int64_t now = rc__http_now_ns();
        if (now >= st->next_sweep_ns)
            st->next_sweep_ns = sweep(c, now);
        if (st->next_sweep_ns != INT64_MAX && timeout_ms != 0) {
            int64_t ms = (st->next_sweep_ns - now + 999999) / 1000000;
            if (timeout_ms < 0 || ms < timeout_ms)
                timeout_ms = ms < 1 ? 1 : (int)ms;
        }
    }
    arm_wake(c);
    /* Every send travels with a receive, so that many more completions always arrive; the
     * wait is bounded by timeout_ms (and the next deadline) anyway. */
    unsigned wait_nr = st->sends_queued + 1;
    st->sends_queued = 0;
    if (timeout_ms == 0) {
        rc = nothing_to_enter_for(st) ? 0 : io_uring_submit_and_get_events(&st->ring);
    } else if (timeout_ms < 0) {
        rc = io_uring_submit_and_wait(&st->ring, wait_nr);
    } else {
        struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                       .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
        rc = io_uring_submit_and_wait_timeout(&st->ring, &cqe, wait_nr, &ts, NULL);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN)
        return rc;

    /* Handlers may queue new SQEs; those go out with the next wait. */
    unsigned handled = 0;
    while (io_uring_peek_cqe(&st->ring, &cqe) == 0) {
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&st->ring, cqe);
        handled++;
        if (ud == UD_IGNORE || ud == LIBURING_UDATA_TIMEOUT)
            continue;
        if (ud == UD_WAKE) {
            st->wake_armed = 0;
            st->wake_broken = res != (int)sizeof(st->wake_count) && res != -EINTR;
            continue;
        }
        if (ud >= UD_FUTEX && ud < UD_FUTEX + MAX_FUTEX) {
            /* Woken (0), or the word had changed already (-EAGAIN): either way the owner
             * looks again. Anything else means futex waits do not work here after all. */
            st->futex[ud - UD_FUTEX].posted = 0;
            if (res != 0 && res != -EAGAIN && res != -EINTR && res != -ECANCELED)
                st->futex_ok = 0;
            continue;
        }
        dispatch_cqe(c, ud, res);
    }
    run_failed(c);
    arm_wake(c); /* goes in with the next wait's submission */
    return (int)handled;
}

const rc__http_backend_ops_t rc__http_uring_ops = {
    .name = "io_uring",
    .init = uring_init,
    .fini = uring_fini,
    .connect = uring_connect,
    .send = uring_send,
    .recv = uring_recv,
    .abort = uring_abort,
    .close = uring_close,
    .wait = uring_wait,
    .wait_futex = uring_wait_futex,
};
