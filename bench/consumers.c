/* Consumer threads. They block in the system's own wait (the ring's futex, Redis' BLOCK,
 * a socket read with a timeout) so they cost no CPU while idle, and check their stop flag at
 * least every 100 ms. */
#include "bench/consumers.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/loadgen.h"
#include "core/record.h"
#include "shm/group.h"
#include "shm/reader.h"
#include "shm/ring.h"

#define MAX_SEQ (1ull << 32)

static void record(rc_consumer_t *c, uint64_t ts, uint64_t seq)
{
    uint64_t now = rc_lg_now_ns();
    c->received++;
    if (seq >= MAX_SEQ) {
        c->bad++;
        return;
    }
    if (seq >= c->seen_cap_) {
        uint64_t cap = c->seen_cap_ ? c->seen_cap_ : 65536;
        while (cap <= seq)
            cap *= 2;
        uint8_t *p = realloc(c->seen_, cap);
        if (p == NULL) {
            c->bad++;
            return;
        }
        memset(p + c->seen_cap_, 0, cap - c->seen_cap_);
        c->seen_ = p;
        c->seen_cap_ = cap;
    }
    rc_hist_add(&c->lat, now > ts ? now - ts : 0);
    if (c->seen_[seq]) {
        c->dups++;
    } else {
        c->seen_[seq] = 1;
        atomic_fetch_add_explicit(&c->unique, 1, memory_order_relaxed);
    }
    c->last_rx_ns = now;
}

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int tcp_connect(int port, char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        snprintf(err, errlen, "cannot connect to 127.0.0.1:%d: %s", port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = {0, 100000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static int send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The first "\r\n" in b[0..n), or NULL. A plain loop: it stops at the first match, where
 * sanitizer-instrumented memmem checks the whole range first (quadratic over a large reply). */
static const char *find_crlf(const char *b, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (b[i] == '\r' && b[i + 1] == '\n')
            return b + i;
    }
    return NULL;
}

/* Receive buffer: `b` points at the unread bytes (`len` of them) inside the allocation `base`
 * (`size` bytes). Consuming moves `b` forward; the unread bytes are moved back to `base` only
 * when a read needs room, so taking many small messages off a large buffer is linear. */
typedef struct {
    char *base, *b;
    size_t len, size;
} rbuf_t;

static int rbuf_fill_flags(rbuf_t *r, int fd, int flags)
{
    size_t room = r->base ? r->size - (size_t)(r->b - r->base) - r->len : 0;
    if (room < 65536) {
        if (r->base != NULL && r->b != r->base) {
            memmove(r->base, r->b, r->len);
            r->b = r->base;
        }
        if (r->size - r->len < 65536) {
            size_t size = r->size ? r->size * 2 : 262144;
            char *p = realloc(r->base, size);
            if (p == NULL)
                return -1;
            r->base = r->b = p;
            r->size = size;
        }
        room = r->size - r->len;
    }
    ssize_t n = recv(fd, r->b + r->len, room, flags);
    if (n > 0) {
        r->len += (size_t)n;
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    return -1;
}

/* Waits (up to the socket's receive timeout) for bytes, then takes everything already queued
 * without waiting: a large reply is then parsed once it is whole, not once per segment (the
 * RESP completeness check restarts from the reply's first byte). */
static int rbuf_fill(rbuf_t *r, int fd)
{
    int rc = rbuf_fill_flags(r, fd, 0);
    while (rc > 0 && rbuf_fill_flags(r, fd, MSG_DONTWAIT) > 0)
        ;
    return rc;
}

static void rbuf_consume(rbuf_t *r, size_t n)
{
    r->b += n;
    r->len -= n;
}

/* ---- shm ---------------------------------------------------------------------------------- */

/* Records one ring record (a stamped event) for consumer c. */
static void shm_record(rc_consumer_t *c, const rc_ring_view_t *v)
{
    static const rc_str_t ts_name = {"rcbts", 5}, seq_name = {"rcbseq", 6};
    if (v->type < RC_REC_TYPE_USER)
        return;
    rc_record_view_t rv;
    rc_ce_value_t ts, seq;
    uint64_t t, s;
    if (rc_record_decode(v->data, v->len, &rv) != 0 || rc_record_get(&rv, ts_name, &ts) != 0 ||
        rc_record_get(&rv, seq_name, &seq) != 0 || parse_u64(ts.value.ptr, ts.value.len, &t) != 0 ||
        parse_u64(seq.value.ptr, seq.value.len, &s) != 0) {
        c->received++;
        c->bad++;
        return;
    }
    record(c, t, s);
}

/* What a shm consumer reads through: a lossless reader of its own, or a member of the consumer
 * group c->group (each event goes to one member; the view is read in place and acknowledged by
 * the next wait). Exactly one of the two is set once attached. */
typedef struct {
    rc_reader_t *rd;
    rc_group_member_t *m;
} shm_sub_t;

static int shm_attach(rc_consumer_t *c, rc_ring_t *ring, shm_sub_t *sub)
{
    int rc;
    if (c->kind == RC_CONS_SHM_GROUP) {
        rc_group_opts_t go = {.start = RC_START_LATEST, .spin = c->spin};
        rc = rc_group_join(ring, c->group, &go, &sub->m);
        if (rc < 0)
            snprintf(c->err, sizeof(c->err), "group %s on %s: %s", c->group, c->ring,
                     rc_strerror(rc));
    } else {
        rc_reader_opts_t ro = {.mode = RC_READER_LOSSLESS,
                               .start = RC_START_LATEST,
                               .name = c->name,
                               .spin = c->spin,
                               .linger_ns = c->linger_us * 1000u};
        rc = rc_reader_open(ring, &ro, &sub->rd);
        if (rc < 0)
            snprintf(c->err, sizeof(c->err), "reader on %s: %s", c->ring, rc_strerror(rc));
    }
    return rc;
}

/* The next record, waiting up to 100 ms (then RC_ERING_EMPTY) so the stop flag is seen. A
 * failure other than those two ends the consumer with a message in c->err. */
static int shm_wait(rc_consumer_t *c, const shm_sub_t *sub, rc_ring_view_t *v)
{
    int rc = sub->m ? rc_group_wait(sub->m, v, 100000000) : rc_reader_wait(sub->rd, v, 100000000);
    if (rc >= 0 || rc == RC_ERING_EMPTY || rc == -EINTR)
        return rc;
    c->error = rc;
    if (sub->m)
        snprintf(c->err, sizeof(c->err), "group %s on %s: %s", c->group, c->ring, rc_strerror(rc));
    else
        snprintf(c->err, sizeof(c->err), "reading %s: %s", c->ring, rc_strerror(rc));
    return rc;
}

static void shm_detach(shm_sub_t *sub)
{
    if (sub->m != NULL)
        rc_group_leave(sub->m);
    else
        rc_reader_close(sub->rd);
}

/* RC_CONS_SHM and RC_CONS_SHM_GROUP: open the ring, attach, then record every record read. */
static void *shm_main(void *arg)
{
    rc_consumer_t *c = arg;
    rc_ring_t *ring = NULL;
    shm_sub_t sub = {0};
    int rc = rc_ring_open(c->ring, &ring, c->err, sizeof(c->err));
    if (rc == 0)
        rc = shm_attach(c, ring, &sub);
    if (rc < 0) {
        c->error = rc;
        rc_ring_close(ring);
        atomic_store(&c->ready_, -1);
        return NULL;
    }
    atomic_store(&c->ready_, 1);
    while (!atomic_load_explicit(&c->stop_, memory_order_relaxed)) {
        rc_ring_view_t v;
        rc = shm_wait(c, &sub, &v);
        if (rc == RC_ERING_EMPTY || rc == -EINTR)
            continue;
        if (rc < 0)
            break;
        shm_record(c, &v);
    }
    shm_detach(&sub);
    rc_ring_close(ring);
    return NULL;
}

/* ---- socket consumers (redis, nats) -------------------------------------------------------- */

/* A socket consumer's connection: the socket, its receive buffer, and whether the consumer
 * has told rc_consumer_start it is ready. */
typedef struct {
    rc_consumer_t *c;
    int fd;
    rbuf_t r;
    int ready;
} sock_t;

/* What a step did with the receive buffer. */
enum {
    STEP_TOOK = 1,    /* handled one message */
    STEP_MORE = 0,    /* the next message is incomplete: read more bytes */
    STEP_END = -1,    /* stop (c->error says why if something failed) */
    STEP_CLOSED = -2, /* the connection failed */
};

static int sock_open(sock_t *s)
{
    s->fd = tcp_connect(s->c->port, s->c->err, sizeof(s->c->err));
    if (s->fd < 0) {
        s->c->error = -ECONNREFUSED;
        return -1;
    }
    return 0;
}

static void sock_ready(sock_t *s)
{
    s->ready = 1;
    atomic_store(&s->c->ready_, 1);
}

/* Closes the socket; a consumer that never got ready tells rc_consumer_start it failed. */
static void sock_close(sock_t *s)
{
    if (!s->ready)
        atomic_store(&s->c->ready_, -1);
    if (s->fd >= 0)
        close(s->fd);
    free(s->r.base);
}

/* The read loop of both socket consumers: until stopped, `step` handles the next message in the
 * receive buffer; when it needs more bytes, a read waits for them (at most the socket's 100 ms
 * receive timeout, so the stop flag is seen). Returns STEP_END or STEP_CLOSED from `step` (a
 * failed read is STEP_CLOSED), or STEP_TOOK once stopped. */
static int read_loop(sock_t *s, int (*step)(sock_t *s, void *state), void *state)
{
    while (!atomic_load_explicit(&s->c->stop_, memory_order_relaxed)) {
        int rc = step(s, state);
        if (rc == STEP_MORE && rbuf_fill(&s->r, s->fd) < 0)
            rc = STEP_CLOSED;
        if (rc < 0)
            return rc;
    }
    return STEP_TOOK;
}

/* ---- redis -------------------------------------------------------------------------------- */

/* Length of one complete RESP reply at b (0: incomplete, -1: malformed). */
static long resp_len(const char *b, size_t n, int depth)
{
    const char *eol = find_crlf(b, n);
    if (eol == NULL)
        return 0;
    size_t line = (size_t)(eol - b) + 2;
    long v = strtol(b + 1, NULL, 10);
    switch (b[0]) {
    case '+':
    case '-':
    case ':':
        return (long)line;
    case '$':
        if (v < 0)
            return (long)line;
        return n >= line + (size_t)v + 2 ? (long)(line + (size_t)v + 2) : 0;
    case '*': {
        if (depth > 8)
            return -1;
        size_t off = line;
        for (long i = 0; i < v; i++) {
            long l = resp_len(b + off, n - off, depth + 1);
            if (l <= 0)
                return l;
            off += (size_t)l;
        }
        return (long)off;
    }
    default:
        return -1;
    }
}

typedef struct {
    rc_consumer_t *c;
    int want; /* 1: next bulk is the rcbts value, 2: the rcbseq value */
    uint64_t ts;
    int collect; /* with ack: gather the entry ids */
    char *ids;   /* the entry ids seen, as RESP bulk strings (XACK arguments) */
    size_t ids_len, ids_cap;
    int nids;
} walk_t;

/* Appends an entry id as a RESP bulk string to w->ids. */
static void add_id(walk_t *w, const char *s, size_t n)
{
    if (w->ids_len + n + 32 > w->ids_cap) {
        size_t cap = w->ids_cap ? w->ids_cap * 2 : 65536;
        while (cap < w->ids_len + n + 32)
            cap *= 2;
        char *p = realloc(w->ids, cap);
        if (p == NULL)
            return;
        w->ids = p;
        w->ids_cap = cap;
    }
    w->ids_len += (size_t)snprintf(w->ids + w->ids_len, w->ids_cap - w->ids_len, "$%zu\r\n", n);
    memcpy(w->ids + w->ids_len, s, n);
    w->ids_len += n;
    memcpy(w->ids + w->ids_len, "\r\n", 2);
    w->ids_len += 2;
    w->nids++;
}

/* Walks a complete reply; every field/value pair "rcbts" <ts> ... "rcbseq" <seq> is one event
 * (the publisher writes rcbts before rcbseq). An XREADGROUP reply nests streams (depth 1),
 * [name, entries] (2), entries (3), [id, fields] (4): a bulk string first in a depth-4 array is
 * an entry id. */
static size_t resp_walk(const char *b, const char *end, walk_t *w, int depth, int first)
{
    const char *eol = find_crlf(b, (size_t)(end - b));
    if (eol == NULL)
        return (size_t)(end - b); /* cannot happen: the reply was checked complete */
    size_t line = (size_t)(eol - b) + 2;
    long v = strtol(b + 1, NULL, 10);
    if (b[0] == '$') {
        if (v < 0)
            return line;
        const char *s = b + line;
        uint64_t x;
        if (depth == 4 && first && w->collect) {
            add_id(w, s, (size_t)v);
        } else if (w->want == 1 && parse_u64(s, (size_t)v, &x) == 0) {
            w->ts = x;
            w->want = 0;
        } else if (w->want == 2) {
            if (parse_u64(s, (size_t)v, &x) == 0)
                record(w->c, w->ts, x);
            else
                w->c->bad++;
            w->want = 0;
        } else if (v == 5 && memcmp(s, "rcbts", 5) == 0) {
            w->want = 1;
        } else if (v == 6 && memcmp(s, "rcbseq", 6) == 0) {
            w->want = 2;
        }
        return line + (size_t)v + 2;
    }
    if (b[0] == '*') {
        size_t off = line;
        for (long i = 0; i < v; i++)
            off += resp_walk(b + off, end, w, depth + 1, i == 0);
        return off;
    }
    return line;
}

static int redis_cmd(int fd, rbuf_t *r, const char *cmd, char *reply, size_t cap)
{
    if (send_all(fd, cmd, strlen(cmd)) < 0)
        return -1;
    for (int tries = 0; tries < 50; tries++) {
        long l = resp_len(r->b ? r->b : "", r->len, 0);
        if (l < 0)
            return -1;
        if (l > 0) {
            snprintf(reply, cap, "%.*s", (int)(l > 2 ? l - 2 : l), r->b);
            rbuf_consume(r, (size_t)l);
            return 0;
        }
        if (rbuf_fill(r, fd) < 0)
            return -1;
    }
    return -1;
}

/* Creates the consumer's group at the stream's end ("$"), so it gets what is published from
 * now on. A group created by another consumer of a shared group answers BUSYGROUP: fine. */
static int redis_group_create(sock_t *s)
{
    rc_consumer_t *c = s->c;
    char cmd[256], reply[256] = "";
    snprintf(cmd, sizeof(cmd), "XGROUP CREATE %s %s $ MKSTREAM\r\n", c->topic, c->group);
    if (redis_cmd(s->fd, &s->r, cmd, reply, sizeof(reply)) < 0 ||
        (reply[0] == '-' && strstr(reply, "BUSYGROUP") == NULL)) {
        snprintf(c->err, sizeof(c->err), "redis XGROUP CREATE: %.120s", reply);
        c->error = -EPROTO;
        return -1;
    }
    return 0;
}

typedef struct {
    char cmd[256]; /* the XREADGROUP command */
    int cmd_len;
    int outstanding; /* it was sent and its reply has not been taken yet */
    walk_t w;
} redis_t;

/* Acknowledges a reply's entries (XACK), pipelined ahead of the next read. */
static int redis_ack(sock_t *s, const walk_t *w)
{
    rc_consumer_t *c = s->c;
    char head[256];
    int h = snprintf(head, sizeof(head), "*%d\r\n$4\r\nXACK\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
                     w->nids + 3, strlen(c->topic), c->topic, strlen(c->group), c->group);
    if (send_all(s->fd, head, (size_t)h) < 0 || send_all(s->fd, w->ids, w->ids_len) < 0)
        return -1;
    return 0;
}

/* One XREADGROUP at a time: sends it when none is outstanding, then takes one reply (an XACK's
 * count is skipped; XREADGROUP answers with arrays). */
static int redis_step(sock_t *s, void *state)
{
    redis_t *x = state;
    rc_consumer_t *c = s->c;
    if (!x->outstanding) {
        if (send_all(s->fd, x->cmd, (size_t)x->cmd_len) < 0)
            return STEP_END;
        x->outstanding = 1;
    }
    long l = s->r.len ? resp_len(s->r.b, s->r.len, 0) : 0;
    if (l < 0) {
        c->error = -EPROTO;
        snprintf(c->err, sizeof(c->err), "redis: malformed reply");
        return STEP_END;
    }
    if (l == 0)
        return STEP_MORE;
    if (s->r.b[0] == '-') {
        c->error = -EPROTO;
        snprintf(c->err, sizeof(c->err), "redis: %.*s", (int)(l - 2), s->r.b);
        return STEP_END;
    }
    if (s->r.b[0] == ':') {
        rbuf_consume(&s->r, (size_t)l);
        return STEP_TOOK;
    }
    x->w.want = 0;
    x->w.ids_len = 0;
    x->w.nids = 0;
    resp_walk(s->r.b, s->r.b + l, &x->w, 0, 0);
    rbuf_consume(&s->r, (size_t)l);
    x->outstanding = 0;
    if (x->w.nids > 0 && redis_ack(s, &x->w) < 0)
        return STEP_END;
    return STEP_TOOK;
}

static void *redis_main(void *arg)
{
    rc_consumer_t *c = arg;
    sock_t s = {.c = c, .fd = -1};
    redis_t x = {.w = {.c = c, .collect = c->ack}};
    if (sock_open(&s) < 0 || redis_group_create(&s) < 0)
        goto out;
    sock_ready(&s);
    x.cmd_len = snprintf(x.cmd, sizeof(x.cmd),
                         "XREADGROUP GROUP %s %s COUNT 1000 BLOCK 100%s STREAMS %s >\r\n", c->group,
                         c->name, c->ack ? "" : " NOACK", c->topic);
    if (read_loop(&s, redis_step, &x) == STEP_CLOSED) {
        c->error = -ECONNRESET;
        snprintf(c->err, sizeof(c->err), "redis closed the connection");
    }
out:
    sock_close(&s);
    free(x.w.ids);
    return NULL;
}

/* ---- nats --------------------------------------------------------------------------------- */

/* A MSG line at s->r.b ending at `eol` (`line` bytes with the CRLF): takes the message once its
 * payload "<ts> <seq> ..." is whole. */
static int nats_msg(sock_t *s, const char *eol, size_t line)
{
    rbuf_t *r = &s->r;
    /* MSG <subject> <sid> [reply-to] <#bytes> */
    const char *sp = eol;
    while (sp > r->b && sp[-1] != ' ')
        sp--;
    size_t plen = strtoul(sp, NULL, 10);
    if (r->len < line + plen + 2)
        return STEP_MORE;
    const char *p = r->b + line, *pend = p + plen;
    const char *s1 = memchr(p, ' ', plen);
    const char *s2 = s1 ? memchr(s1 + 1, ' ', (size_t)(pend - s1 - 1)) : NULL;
    uint64_t ts, seq;
    if (s2 && parse_u64(p, (size_t)(s1 - p), &ts) == 0 &&
        parse_u64(s1 + 1, (size_t)(s2 - s1 - 1), &seq) == 0)
        record(s->c, ts, seq);
    else
        s->c->bad++, s->c->received++;
    rbuf_consume(r, line + plen + 2);
    return STEP_TOOK;
}

/* One protocol line: a message, the server's PING, the PONG that confirms the subscription
 * (ready), or an error; INFO and +OK lines are skipped. */
static int nats_step(sock_t *s, void *state)
{
    (void)state;
    rbuf_t *r = &s->r;
    const char *eol = r->len ? find_crlf(r->b, r->len) : NULL;
    if (eol == NULL)
        return STEP_MORE;
    size_t line = (size_t)(eol - r->b) + 2;
    if (r->len >= 4 && memcmp(r->b, "MSG ", 4) == 0)
        return nats_msg(s, eol, line);
    if (line >= 6 && memcmp(r->b, "PING", 4) == 0) {
        if (send_all(s->fd, "PONG\r\n", 6) < 0)
            return STEP_CLOSED;
    } else if (line >= 6 && memcmp(r->b, "PONG", 4) == 0 && !s->ready) {
        sock_ready(s);
    } else if (r->b[0] == '-') {
        snprintf(s->c->err, sizeof(s->c->err), "nats: %.*s", (int)(line - 2), r->b);
        s->c->error = -EPROTO;
        return STEP_END;
    }
    rbuf_consume(r, line);
    return STEP_TOOK;
}

static void *nats_main(void *arg)
{
    rc_consumer_t *c = arg;
    sock_t s = {.c = c, .fd = -1};
    char cmd[256];
    if (sock_open(&s) < 0)
        goto out;
    int n = snprintf(cmd, sizeof(cmd),
                     "CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"%s\"}\r\n"
                     "SUB %s.> 1\r\nPING\r\n",
                     c->name, c->topic);
    int rc = send_all(s.fd, cmd, (size_t)n) < 0 ? STEP_CLOSED : read_loop(&s, nats_step, NULL);
    if (rc == STEP_CLOSED && c->error == 0) {
        c->error = -ECONNRESET;
        snprintf(c->err, sizeof(c->err), "nats closed the connection (slow consumer?)");
    }
out:
    sock_close(&s);
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void *consumer_main(void *arg)
{
    rc_consumer_t *c = arg;
    void *(*fn)(void *) = c->kind == RC_CONS_REDIS  ? redis_main
                          : c->kind == RC_CONS_NATS ? nats_main
                                                    : shm_main;
    fn(c);
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    c->cpu_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    return NULL;
}

int rc_consumer_start(rc_consumer_t *c)
{
    rc_hist_init(&c->lat);
    atomic_store(&c->unique, 0);
    atomic_store(&c->stop_, 0);
    atomic_store(&c->ready_, 0);
    c->received = c->dups = c->bad = c->last_rx_ns = 0;
    c->error = 0;
    c->err[0] = 0;
    c->cpu_s = 0;
    int rc = pthread_create(&c->thread_, NULL, consumer_main, c);
    if (rc != 0) {
        snprintf(c->err, sizeof(c->err), "pthread_create: %s", strerror(rc));
        return -rc;
    }
    for (int i = 0; i < 500 && atomic_load(&c->ready_) == 0; i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&c->ready_) != 1) {
        atomic_store(&c->stop_, 1);
        pthread_join(c->thread_, NULL);
        if (c->err[0] == 0)
            snprintf(c->err, sizeof(c->err), "consumer not ready after 5 s");
        return c->error < 0 ? c->error : -ETIMEDOUT;
    }
    return 0;
}

void rc_consumer_stop(rc_consumer_t *c)
{
    atomic_store(&c->stop_, 1);
    pthread_join(c->thread_, NULL);
}

uint64_t rc_consumer_lost(const rc_consumer_t *c, const uint8_t *acked, uint64_t n)
{
    uint64_t lost = 0;
    for (uint64_t s = 0; s < n; s++) {
        if (acked[s] && (s >= c->seen_cap_ || !c->seen_[s]))
            lost++;
    }
    return lost;
}

uint64_t rc_consumers_lost_any(const rc_consumer_t *cs, int n, const uint8_t *acked, uint64_t count,
                               uint64_t *dups)
{
    uint64_t lost = 0;
    for (int i = 0; i < n; i++)
        *dups += cs[i].dups;
    for (uint64_t s = 0; s < count; s++) {
        int got = 0;
        for (int i = 0; i < n; i++)
            got += s < cs[i].seen_cap_ && cs[i].seen_[s];
        if (got > 1)
            *dups += (uint64_t)got - 1;
        if (acked[s] && got == 0)
            lost++;
    }
    return lost;
}

void rc_consumer_free(rc_consumer_t *c)
{
    free(c->seen_);
    c->seen_ = NULL;
    c->seen_cap_ = 0;
}
