/* Load generator: request encoders, answer parsers and the epoll loop. Requests due in one loop
 * pass are appended to their connections' output buffers and written once per connection after
 * the pass, so a high offered rate costs one write per connection per pass, not per request. */
#include "bench/loadgen.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    uint64_t t_ns; /* due time (open loop) or send time (closed loop) */
    uint64_t seq;  /* first event */
    uint32_t events;
} inflight_t;

typedef struct {
    int fd;
    int dead;
    int dirty; /* output appended since the last flush */
    int want_out;
    char *out;
    size_t out_len, out_off, out_cap;
    char *in;
    size_t in_len, in_cap;
    inflight_t *q; /* ring of `depth` entries */
    int q_head, q_count;
} conn_t;

typedef struct {
    const rc_lg_opts_t *o;
    rc_lg_result_t *res;
    conn_t *conns;
    int epfd;
    char *data; /* `size` bytes of 'x' */
    uint64_t acked_cap;
    int live;
    uint64_t inflight;
    /* the schedule (lg_start) */
    uint64_t start, end;  /* the publishing window, CLOCK_MONOTONIC ns */
    double interval;      /* open loop: ns between requests */
    uint64_t reqno;       /* open loop: requests sent */
    uint64_t next_due;    /* open loop: due time of request `reqno` */
    int rr;               /* open loop: where free_conn starts looking */
    int publishing;       /* 0 once the window ended or *stop was set */
    uint64_t publish_end; /* when publishing ended */
    uint64_t last_answer; /* when the last answer arrived */
} lg_t;

uint64_t rc_lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *rc_lg_proto_name(rc_lg_proto_t p)
{
    static const char *const n[] = {"http-binary", "http-structured", "http-batch", "resp-xadd",
                                    "nats-pub",    "dapr-publish",    "dapr-bulk"};
    return n[p];
}

/* The protocols spoken over HTTP/1.1 (answers parsed as HTTP, any 2xx acknowledges). */
static int is_http(rc_lg_proto_t p)
{
    return p <= RC_LG_HTTP_BATCH || p == RC_LG_DAPR_PUBLISH || p == RC_LG_DAPR_BULK;
}

/* Events one request carries. */
static uint32_t per_request(const rc_lg_opts_t *o)
{
    return o->proto == RC_LG_HTTP_BATCH || o->proto == RC_LG_DAPR_BULK ? (uint32_t)o->batch : 1;
}

void rc_lg_opts_init(rc_lg_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->proto = RC_LG_HTTP_BINARY;
    o->path = "/default/default";
    o->topic = "bench";
    o->conns = 16;
    o->depth = 1;
    o->seconds = 1.0;
    o->size = 128;
    o->batch = 100;
    o->types = 4;
}

/* ---- output buffer ---------------------------------------------------------------------- */

static int out_reserve(conn_t *c, size_t more)
{
    if (c->out_len + more <= c->out_cap)
        return 0;
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + more)
        cap *= 2;
    char *p = realloc(c->out, cap);
    if (p == NULL)
        return -ENOMEM;
    c->out = p;
    c->out_cap = cap;
    return 0;
}

static void put(conn_t *c, const void *s, size_t n)
{
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

static void puts_(conn_t *c, const char *s)
{
    put(c, s, strlen(s));
}

static int u64_len(uint64_t v)
{
    int n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static void putu(conn_t *c, uint64_t v)
{
    char tmp[24];
    int n = u64_len(v);
    for (int i = n - 1; i >= 0; i--) {
        tmp[i] = (char)('0' + v % 10);
        v /= 10;
    }
    put(c, tmp, (size_t)n);
}

/* ---- encoders ---------------------------------------------------------------------------- */

/* JSON data of exactly `size` bytes: {"p":"xxx..."}. */
static void put_json_data(lg_t *g, conn_t *c)
{
    puts_(c, "{\"p\":\"");
    put(c, g->data, g->o->size - 8);
    puts_(c, "\"}");
}

/* One structured-mode event as JSON text. */
static void put_structured(lg_t *g, conn_t *c, uint64_t seq, uint64_t ts)
{
    puts_(c, "{\"specversion\":\"1.0\",\"id\":\"");
    putu(c, seq);
    puts_(c, "\",\"source\":\"/bench\",\"type\":\"com.example.bench.t");
    putu(c, seq % (uint64_t)g->o->types);
    puts_(c, "\",\"rcbts\":\"");
    putu(c, ts);
    puts_(c, "\",\"rcbseq\":\"");
    putu(c, seq);
    puts_(c, "\",\"datacontenttype\":\"application/json\",\"data\":");
    put_json_data(g, c);
    puts_(c, "}");
}

/* An upper bound of one structured event's text, and of one Dapr bulk entry's (shorter). */
static size_t structured_len(lg_t *g, uint64_t seq, uint64_t ts)
{
    return 128 + 3 * 20 + g->o->size + (size_t)u64_len(seq) + (size_t)u64_len(ts);
}

/* The data of one Dapr-published event: {"rcbts":"<ts>","rcbseq":"<seq>","d":{"p":"xxx..."}}.
 * The stamps are strings, as in the CloudEvents modes, so no JSON number parser on the way
 * can round them. */
static void put_dapr_data(lg_t *g, conn_t *c, uint64_t seq, uint64_t ts)
{
    puts_(c, "{\"rcbts\":\"");
    putu(c, ts);
    puts_(c, "\",\"rcbseq\":\"");
    putu(c, seq);
    puts_(c, "\",\"d\":");
    put_json_data(g, c);
    puts_(c, "}");
}

/* A Dapr bulk publish body: [{"entryId":"<seq>","event":<data>,"contentType":"application/json"},
 * ...], entry ids unique within the request as the API requires. */
static void put_dapr_bulk(lg_t *g, conn_t *c, uint64_t seq, uint32_t events, uint64_t ts)
{
    puts_(c, "[");
    for (uint32_t i = 0; i < events; i++) {
        puts_(c, i > 0 ? ",{\"entryId\":\"" : "{\"entryId\":\"");
        putu(c, seq + i);
        puts_(c, "\",\"event\":");
        put_dapr_data(g, c, seq + i, ts);
        puts_(c, ",\"contentType\":\"application/json\"}");
    }
    puts_(c, "]");
}

/* The body of a request whose length is known only once written: structured, batch, Dapr. */
static void put_body(lg_t *g, conn_t *c, uint64_t seq, uint32_t events, uint64_t ts)
{
    switch (g->o->proto) {
    case RC_LG_HTTP_STRUCTURED:
        put_structured(g, c, seq, ts);
        break;
    case RC_LG_HTTP_BATCH:
        puts_(c, "[");
        for (uint32_t i = 0; i < events; i++) {
            if (i > 0)
                puts_(c, ",");
            put_structured(g, c, seq + i, ts);
        }
        puts_(c, "]");
        break;
    case RC_LG_DAPR_PUBLISH:
        put_dapr_data(g, c, seq, ts);
        break;
    case RC_LG_DAPR_BULK:
        put_dapr_bulk(g, c, seq, events, ts);
        break;
    default:
        break;
    }
}

static const char *body_type(rc_lg_proto_t p)
{
    return p == RC_LG_HTTP_STRUCTURED ? "cloudevents+json"
           : p == RC_LG_HTTP_BATCH    ? "cloudevents-batch+json"
                                      : "json";
}

static void put_bulk(conn_t *c, const void *s, size_t n)
{
    puts_(c, "$");
    putu(c, n);
    puts_(c, "\r\n");
    put(c, s, n);
    puts_(c, "\r\n");
}

static void put_bulk_u(conn_t *c, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    put_bulk(c, tmp, (size_t)n);
}

/* Appends one request carrying events seq .. seq+events-1 stamped `ts`. */
static int encode(lg_t *g, conn_t *c, uint64_t seq, uint32_t events, uint64_t ts)
{
    const rc_lg_opts_t *o = g->o;
    size_t need = 512 + o->size + strlen(o->path) + strlen(o->topic);
    if (is_http(o->proto) && o->proto != RC_LG_HTTP_BINARY) /* the JSON bodies */
        need += events * (structured_len(g, seq, ts) + 2);
    if (out_reserve(c, need) < 0)
        return -ENOMEM;
    switch (o->proto) {
    case RC_LG_HTTP_BINARY:
        puts_(c, "POST ");
        puts_(c, o->path);
        puts_(c, " HTTP/1.1\r\nHost: 127.0.0.1\r\nce-specversion: 1.0\r\nce-id: ");
        putu(c, seq);
        puts_(c, "\r\nce-source: /bench\r\nce-type: com.example.bench.t");
        putu(c, seq % (uint64_t)o->types);
        puts_(c, "\r\nce-rcbts: ");
        putu(c, ts);
        puts_(c, "\r\nce-rcbseq: ");
        putu(c, seq);
        puts_(c, "\r\nContent-Type: application/json\r\nContent-Length: ");
        putu(c, o->size);
        puts_(c, "\r\n\r\n");
        put_json_data(g, c);
        break;
    case RC_LG_HTTP_STRUCTURED:
    case RC_LG_HTTP_BATCH:
    case RC_LG_DAPR_PUBLISH:
    case RC_LG_DAPR_BULK: {
        /* The body goes first into the buffer's tail so its length is known; then the header
         * is written in front by moving the body (bodies are small next to a copy's cost). */
        size_t start = c->out_len;
        put_body(g, c, seq, events, ts);
        size_t body = c->out_len - start;
        char hdr[512];
        int hn = snprintf(hdr, sizeof(hdr),
                          "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                          "application/%s\r\nContent-Length: %zu\r\n\r\n",
                          o->path, body_type(o->proto), body);
        if (hn < 0 || (size_t)hn >= sizeof(hdr) || out_reserve(c, (size_t)hn) < 0)
            return -ENOMEM;
        memmove(c->out + start + hn, c->out + start, body);
        memcpy(c->out + start, hdr, (size_t)hn);
        c->out_len += (size_t)hn;
        break;
    }
    case RC_LG_RESP_XADD: {
        int maxlen = o->maxlen > 0;
        puts_(c, maxlen ? "*14\r\n" : "*11\r\n");
        put_bulk(c, "XADD", 4);
        put_bulk(c, o->topic, strlen(o->topic));
        if (maxlen) {
            put_bulk(c, "MAXLEN", 6);
            put_bulk(c, "~", 1);
            put_bulk_u(c, o->maxlen);
        }
        put_bulk(c, "*", 1);
        put_bulk(c, "type", 4);
        char t[48];
        int tn = snprintf(t, sizeof(t), "com.example.bench.t%llu",
                          (unsigned long long)(seq % (uint64_t)o->types));
        put_bulk(c, t, (size_t)tn);
        put_bulk(c, "rcbts", 5);
        put_bulk_u(c, ts);
        put_bulk(c, "rcbseq", 6);
        put_bulk_u(c, seq);
        put_bulk(c, "data", 4);
        put_bulk(c, g->data, o->size);
        break;
    }
    case RC_LG_NATS_PUB: {
        /* Payload: "<ts> <seq> " then 'x' up to `size` bytes. */
        char head[48];
        int hn = snprintf(head, sizeof(head), "%llu %llu ", (unsigned long long)ts,
                          (unsigned long long)seq);
        size_t len = o->size > (size_t)hn ? o->size : (size_t)hn;
        puts_(c, "PUB ");
        puts_(c, o->topic);
        puts_(c, ".t");
        putu(c, seq % (uint64_t)o->types);
        puts_(c, " ");
        putu(c, len);
        puts_(c, "\r\n");
        put(c, head, (size_t)hn);
        put(c, g->data, len - (size_t)hn);
        puts_(c, "\r\nPING\r\n");
        break;
    }
    }
    return 0;
}

/* The first occurrence of `pat` (`m` bytes) in b[0..n), or NULL. Stops at the first match
 * (sanitizer-instrumented memmem checks the whole range first: quadratic over a buffer of
 * many pipelined answers). */
static const char *find(const char *b, size_t n, const char *pat, size_t m)
{
    for (size_t i = 0; i + m <= n; i++) {
        if (b[i] == pat[0] && memcmp(b + i, pat, m) == 0)
            return b + i;
    }
    return NULL;
}

/* ---- answer parsers: > 0 bytes consumed, 0 incomplete, < 0 malformed. *ack = 1 when the
 * answer completes the oldest request in flight, with *status. ---------------------------- */

static long parse_http(const char *b, size_t n, int *ack, int *status)
{
    const char *end = find(b, n, "\r\n\r\n", 4);
    if (end == NULL)
        return n > 65536 ? -EPROTO : 0;
    if (n < 12 || memcmp(b, "HTTP/1.", 7) != 0)
        return -EPROTO;
    *status = atoi(b + 9);
    size_t hdr = (size_t)(end - b) + 4, body = 0;
    for (const char *p = b; p < end;) {
        const char *eol = find(p, (size_t)(end - p) + 2, "\r\n", 2);
        if (eol == NULL)
            break;
        if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0)
            body = (size_t)strtoull(p + 15, NULL, 10);
        else if ((size_t)(eol - p) > 18 && strncasecmp(p, "transfer-encoding:", 18) == 0)
            return -EPROTO; /* the servers compared answer with a length */
        p = eol + 2;
    }
    if (n < hdr + body)
        return 0;
    *ack = 1;
    return (long)(hdr + body);
}

static long parse_resp(const char *b, size_t n, int *ack, int *status)
{
    const char *eol = find(b, n, "\r\n", 2);
    if (eol == NULL)
        return 0;
    size_t line = (size_t)(eol - b) + 2;
    *ack = 1;
    switch (b[0]) {
    case '+':
    case ':':
        *status = 0;
        return (long)line;
    case '-':
        *status = 1;
        return (long)line;
    case '$': {
        long len = strtol(b + 1, NULL, 10);
        *status = len >= 0 ? 0 : 1;
        if (len < 0)
            return (long)line;
        if (n < line + (size_t)len + 2)
            return 0;
        return (long)(line + (size_t)len + 2);
    }
    default:
        return -EPROTO;
    }
}

static long parse_nats(lg_t *g, conn_t *c, const char *b, size_t n, int *ack, int *status)
{
    (void)g;
    const char *eol = find(b, n, "\r\n", 2);
    if (eol == NULL)
        return 0;
    size_t line = (size_t)(eol - b) + 2;
    if (line >= 6 && strncasecmp(b, "PONG", 4) == 0) {
        *ack = 1;
        *status = 0;
    } else if (line >= 6 && strncasecmp(b, "PING", 4) == 0) {
        if (out_reserve(c, 6) == 0) {
            puts_(c, "PONG\r\n");
            c->dirty = 1;
        }
    } else if (b[0] == '-') {
        fprintf(stderr, "loadgen: nats: %.*s\n", (int)(line - 2), b);
        return -EPROTO;
    } /* INFO and +OK lines are skipped */
    return (long)line;
}

/* ---- connection handling ------------------------------------------------------------------ */

static void count_status(rc_lg_result_t *r, int status)
{
    for (int i = 0; i < r->nstatus; i++) {
        if (r->status[i] == status) {
            r->status_count[i]++;
            return;
        }
    }
    if (r->nstatus < RC_LG_MAX_STATUS) {
        r->status[r->nstatus] = status;
        r->status_count[r->nstatus++] = 1;
    }
}

static int status_ok(const rc_lg_opts_t *o, int status)
{
    return is_http(o->proto) ? status >= 200 && status < 300 : status == 0;
}

static int grow_acked(lg_t *g, uint64_t upto)
{
    rc_lg_result_t *r = g->res;
    uint64_t cap = g->acked_cap;
    if (upto <= cap)
        return 0;
    uint64_t ncap = cap ? cap : 65536;
    while (ncap < upto)
        ncap *= 2;
    uint8_t *p = realloc(r->acked, ncap);
    if (p == NULL)
        return -ENOMEM;
    memset(p + cap, 0, ncap - cap);
    r->acked = p;
    g->acked_cap = ncap;
    return 0;
}

static int send_request(lg_t *g, conn_t *c, uint64_t due)
{
    const rc_lg_opts_t *o = g->o;
    rc_lg_result_t *r = g->res;
    uint32_t events = per_request(o);
    uint64_t seq = r->events_sent;
    if (grow_acked(g, seq + events) < 0 || encode(g, c, seq, events, due) < 0)
        return -ENOMEM;
    int slot = (c->q_head + c->q_count) % o->depth;
    c->q[slot] = (inflight_t){due, seq, events};
    c->q_count++;
    c->dirty = 1;
    g->inflight++;
    r->events_sent += events;
    r->seq_count = r->events_sent;
    return 0;
}

static void kill_conn(lg_t *g, conn_t *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    g->live--;
    epoll_ctl(g->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    while (c->q_count > 0) {
        g->res->errors++;
        count_status(g->res, -1);
        c->q_count--;
        g->inflight--;
    }
}

static void flush(lg_t *g, conn_t *c)
{
    c->dirty = 0;
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN) {
                kill_conn(g, c);
                return;
            }
            break;
        }
        c->out_off += (size_t)w;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    int want = c->out_len > 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(g->epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
}

static void on_readable(lg_t *g, conn_t *c, int publishing)
{
    const rc_lg_opts_t *o = g->o;
    rc_lg_result_t *r = g->res;
    for (;;) {
        if (c->in_cap - c->in_len < 16384) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 65536;
            char *p = realloc(c->in, cap);
            if (p == NULL) {
                kill_conn(g, c);
                return;
            }
            c->in = p;
            c->in_cap = cap;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            kill_conn(g, c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        c->in_len += (size_t)n;
        if ((size_t)n < c->in_cap - c->in_len + (size_t)n)
            break; /* drained */
    }
    uint64_t now = rc_lg_now_ns();
    size_t off = 0;
    while (off < c->in_len) {
        int ack = 0, status = 0;
        long used;
        const char *b = c->in + off;
        size_t n = c->in_len - off;
        if (is_http(o->proto))
            used = parse_http(b, n, &ack, &status);
        else if (o->proto == RC_LG_RESP_XADD)
            used = parse_resp(b, n, &ack, &status);
        else
            used = parse_nats(g, c, b, n, &ack, &status);
        if (used == 0)
            break;
        if (used < 0) {
            fprintf(stderr, "loadgen: malformed answer from the server (%s)\n",
                    rc_lg_proto_name(o->proto));
            kill_conn(g, c);
            return;
        }
        off += (size_t)used;
        if (!ack)
            continue;
        if (c->q_count == 0) {
            fprintf(stderr, "loadgen: answer without a request\n");
            kill_conn(g, c);
            return;
        }
        inflight_t f = c->q[c->q_head];
        c->q_head = (c->q_head + 1) % o->depth;
        c->q_count--;
        g->inflight--;
        r->requests++;
        rc_hist_add(&r->lat, now > f.t_ns ? now - f.t_ns : 0);
        count_status(r, status);
        if (status_ok(o, status)) {
            memset(r->acked + f.seq, 1, f.events);
            r->events_acked += f.events;
        } else {
            r->errors++;
        }
        if (publishing && o->rate <= 0 && send_request(g, c, rc_lg_now_ns()) < 0) {
            kill_conn(g, c);
            return;
        }
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
}

static int conn_port(const lg_t *g, const conn_t *c)
{
    const rc_lg_opts_t *o = g->o;
    return o->nports > 0 ? o->ports[(c - g->conns) % o->nports] : o->port;
}

static int connect_one(lg_t *g, conn_t *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)conn_port(g, c)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int e = -errno;
        close(c->fd);
        c->fd = -1;
        return e;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        return -errno;
    if (g->o->proto == RC_LG_NATS_PUB) {
        if (out_reserve(c, 128) < 0)
            return -ENOMEM;
        puts_(c, "CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"ringcast-bench\"}\r\n");
        c->dirty = 1;
    }
    return 0;
}

static void free_conns(lg_t *g)
{
    for (int i = 0; i < g->o->conns; i++) {
        conn_t *c = &g->conns[i];
        if (!c->dead && c->fd >= 0)
            close(c->fd);
        free(c->out);
        free(c->in);
        free(c->q);
    }
    free(g->conns);
}

/* The open loop's next free connection, round-robin from the last one used; NULL when every
 * connection has `depth` requests in flight. */
static conn_t *free_conn(lg_t *g, int *rr)
{
    for (int k = 0; k < g->o->conns; k++) {
        int i = (*rr + k) % g->o->conns;
        conn_t *c = &g->conns[i];
        if (!c->dead && c->q_count < g->o->depth) {
            *rr = i + 1;
            return c;
        }
    }
    return NULL;
}

static int opts_valid(const rc_lg_opts_t *o)
{
    return o->conns >= 1 && o->conns <= 1024 && o->depth >= 1 && o->depth <= 1024 &&
           o->size >= 16 && o->batch >= 1 && o->batch <= 1000 && o->types >= 1 &&
           o->types <= 1000 && o->seconds > 0 && o->rate >= 0 && o->nports >= 0 &&
           (o->nports == 0 || o->ports != NULL);
}

/* The epoll set, the data bytes and every connection, connected. Returns 0 or a negative code
 * with a message in `err`; what was made is freed by lg_close either way. */
static int lg_open(lg_t *g, char *err, size_t errlen)
{
    const rc_lg_opts_t *o = g->o;
    g->epfd = epoll_create1(EPOLL_CLOEXEC);
    g->data = malloc(o->size);
    g->conns = calloc((size_t)o->conns, sizeof(conn_t));
    if (g->conns != NULL) {
        for (int i = 0; i < o->conns; i++)
            g->conns[i].fd = -1; /* lg_close then closes only what was opened */
    }
    if (g->epfd < 0 || g->data == NULL || g->conns == NULL) {
        snprintf(err, errlen, "loadgen: out of memory");
        return -ENOMEM;
    }
    memset(g->data, 'x', o->size);
    for (int i = 0; i < o->conns; i++) {
        conn_t *c = &g->conns[i];
        c->q = calloc((size_t)o->depth, sizeof(inflight_t));
        if (c->q == NULL) {
            snprintf(err, errlen, "loadgen: out of memory");
            return -ENOMEM;
        }
        int rc = connect_one(g, c);
        if (rc < 0) {
            c->dead = 1;
            snprintf(err, errlen, "loadgen: cannot connect to 127.0.0.1:%d: %s", conn_port(g, c),
                     strerror(-rc));
            return rc;
        }
        g->live++;
    }
    return 0;
}

static void lg_close(lg_t *g)
{
    if (g->conns != NULL)
        free_conns(g);
    free(g->data);
    if (g->epfd >= 0)
        close(g->epfd);
}

/* Starts the clock: the publishing window, the open loop's schedule, and in the closed loop
 * every connection filled to `depth`. */
static void lg_start(lg_t *g)
{
    const rc_lg_opts_t *o = g->o;
    g->start = rc_lg_now_ns();
    g->end = g->start + (uint64_t)(o->seconds * 1e9);
    g->res->start_ns = g->start;
    g->interval = o->rate > 0 ? 1e9 * per_request(o) / o->rate : 0;
    g->next_due = g->start;
    g->publishing = 1;
    g->publish_end = g->end;
    g->last_answer = g->start;
    if (o->rate <= 0) {
        for (int i = 0; i < o->conns; i++) {
            for (int d = 0; d < o->depth; d++)
                send_request(g, &g->conns[i], g->start);
        }
    }
}

/* Open loop: sends every request due by `now` while a connection has room. */
static void send_due(lg_t *g, uint64_t now)
{
    while (g->next_due <= now) {
        conn_t *c = free_conn(g, &g->rr);
        if (c == NULL)
            break; /* backlog: these stay due, their latency keeps growing */
        if (send_request(g, c, g->next_due) < 0)
            break;
        g->reqno++;
        g->next_due = g->start + (uint64_t)((double)g->reqno * g->interval);
    }
}

static void flush_dirty(lg_t *g)
{
    for (int i = 0; i < g->o->conns; i++) {
        if (g->conns[i].dirty && !g->conns[i].dead)
            flush(g, &g->conns[i]);
    }
}

/* How long the next epoll wait may sleep. */
static uint64_t wait_ns(lg_t *g, uint64_t now)
{
    uint64_t w = 5000000; /* re-check the stop flag and the end at least this often */
    if (!g->publishing)
        return w;
    if (g->end - now < w)
        w = g->end - now;
    if (g->o->rate > 0 && g->next_due > now && g->next_due - now < w)
        w = g->next_due - now;
    if (g->o->rate > 0 && g->next_due <= now && free_conn(g, &(int){g->rr}) != NULL)
        w = 0;
    return w;
}

static void on_events(lg_t *g, const struct epoll_event *evs, int n)
{
    for (int i = 0; i < n; i++) {
        conn_t *c = evs[i].data.ptr;
        if (c->dead)
            continue;
        if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
            uint64_t before = g->res->requests;
            on_readable(g, c, g->publishing);
            if (g->res->requests != before)
                g->last_answer = rc_lg_now_ns();
        }
        if (!c->dead && (evs[i].events & EPOLLOUT))
            flush(g, c);
    }
}

/* Each pass: end publishing at the deadline or on *stop; send what is due (open loop); write
 * each connection's output once; finish when nothing is in flight after publishing (or 5 s
 * later, giving up on what is); wait for answers or the next due time; read the answers. */
static int lg_loop(lg_t *g, volatile int *stop, char *err, size_t errlen)
{
    struct epoll_event evs[64];
    for (;;) {
        uint64_t now = rc_lg_now_ns();
        if (g->publishing && (now >= g->end || (stop && *stop))) {
            g->publishing = 0;
            g->publish_end = now;
        }
        if (g->publishing && g->o->rate > 0)
            send_due(g, now);
        flush_dirty(g);
        if (g->live == 0) {
            snprintf(err, errlen, "loadgen: the server closed every connection");
            return -ECONNRESET;
        }
        if (!g->publishing && g->inflight == 0)
            return 0;
        if (!g->publishing && now > g->publish_end + 5000000000ull) {
            fprintf(stderr, "loadgen: %llu requests unanswered 5 s after the end\n",
                    (unsigned long long)g->inflight);
            for (int i = 0; i < g->o->conns; i++)
                kill_conn(g, &g->conns[i]);
            return 0;
        }
        uint64_t w = wait_ns(g, now);
        struct timespec ts = {(time_t)(w / 1000000000ull), (long)(w % 1000000000ull)};
        int n = epoll_pwait2(g->epfd, evs, 64, &ts, NULL);
        if (n < 0 && errno != EINTR) {
            int e = errno;
            snprintf(err, errlen, "loadgen: epoll: %s", strerror(e));
            return -e;
        }
        on_events(g, evs, n);
    }
}

int rc_lg_run(const rc_lg_opts_t *o, volatile int *stop, rc_lg_result_t *res, char *err,
              size_t errlen)
{
    memset(res, 0, sizeof(*res));
    rc_hist_init(&res->lat);
    if (!opts_valid(o)) {
        snprintf(err, errlen, "loadgen: option out of range");
        return -EINVAL;
    }
    lg_t g = {.o = o, .res = res};
    int rc = lg_open(&g, err, errlen);
    if (rc < 0)
        goto out;
    double cpu0 = thread_cpu_s();
    lg_start(&g);
    rc = lg_loop(&g, stop, err, errlen);
    res->publish_s = (double)(g.publish_end - g.start) / 1e9;
    res->elapsed_s = (double)(g.last_answer - g.start) / 1e9;
    res->cpu_s = thread_cpu_s() - cpu0;
out:
    lg_close(&g);
    if (rc < 0 && res->acked == NULL)
        res->seq_count = 0;
    return rc;
}
