#include "bench/sink_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/loadgen.h"
#include "bench/procs.h"

#define BUF_SIZE 65536

typedef struct {
    int fd;
    size_t len;
    char buf[BUF_SIZE];
} conn_t;

/* Value of header `name` (with its colon, lower case) in the header block [b, end), or NULL. */
static const char *header(const char *b, const char *end, const char *name, size_t nlen)
{
    for (const char *p = b; p + nlen < end;) {
        if (strncasecmp(p, name, nlen) == 0) {
            p += nlen;
            while (p < end && (*p == ' ' || *p == '\t'))
                p++;
            return p;
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return NULL;
}

static int digits(const char *p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    int n = 0;
    while (p < end && *p >= '0' && *p <= '9' && n < 20) {
        v = v * 10 + (uint64_t)(*p++ - '0');
        n++;
    }
    *out = v;
    return n > 0 ? 0 : -1;
}

/* Where the value of member `key` (with quotes and colon: "\"rcbts\":") starts in the JSON text
 * [b, end), past an opening quote, or NULL. A plain search: the bench's own events name these
 * members once, whether as CloudEvent extensions (structured mode) or inside `data` (the Dapr
 * publish API wraps the published JSON in an envelope). */
static const char *json_member(const char *b, const char *end, const char *key, size_t klen)
{
    const char *p = b < end ? memmem(b, (size_t)(end - b), key, klen) : NULL;
    if (p == NULL)
        return NULL;
    for (p += klen; p < end && (*p == ' ' || *p == '"'); p++)
        ;
    return p;
}

/* Counts one request: its stamps from the `ce-rcbts` / `ce-rcbseq` headers (binary mode), else
 * from the members `rcbts` / `rcbseq` of its JSON body [body, body_end). */
static void count(rc_sink_stats_t *st, const char *head, const char *end, const char *body,
                  const char *body_end)
{
    uint64_t now = rc_lg_now_ns(), ts = 0, seq = 0;
    atomic_fetch_add_explicit(&st->received, 1, memory_order_relaxed);
    const char *t = header(head, end, "ce-rcbts:", 9);
    const char *q = header(head, end, "ce-rcbseq:", 10);
    if (t == NULL && q == NULL) {
        t = json_member(body, body_end, "\"rcbts\":", 8);
        q = json_member(body, body_end, "\"rcbseq\":", 9);
        end = body_end;
    }
    if (t == NULL || q == NULL || digits(t, end, &ts) < 0 || digits(q, end, &seq) < 0 ||
        seq >= st->seen_cap) {
        st->bad++;
        return;
    }
    rc_hist_add(&st->lat, now > ts ? now - ts : 0);
    uint8_t bit = (uint8_t)(1u << (seq & 7));
    if (st->seen[seq >> 3] & bit) {
        st->dups++;
    } else {
        st->seen[seq >> 3] |= bit;
        atomic_fetch_add_explicit(&st->unique, 1, memory_order_relaxed);
    }
    atomic_store_explicit(&st->last_rx_ns, now, memory_order_relaxed);
}

/* The app side of Dapr's probes: ringcast asks each DaprApp replica for its programmatic
 * subscriptions (`GET /dapr/subscribe`); the sink has none. Other GETs under /dapr/ are 404. */
static const char subscribe_resp[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                     "Content-Length: 2\r\n\r\n[]";
static const char not_found_resp[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

/* The answer to a `GET /dapr/...` request starting at `b`, or NULL for any other request. */
static const char *dapr_probe(const char *b, size_t len)
{
    if (len < 10 || memcmp(b, "GET /dapr/", 10) != 0)
        return NULL;
    return len >= 20 && memcmp(b + 9, "/subscribe", 10) == 0 && (b[19] == ' ' || b[19] == '?')
               ? subscribe_resp
               : not_found_resp;
}

/* Consumes complete requests from c->buf and appends one response per request to out; counts
 * each into `st` when set (Dapr probes are answered, not counted). Returns the number of
 * responses, or -1 for a request it cannot frame. */
static int frame(conn_t *c, char *out, size_t *out_len, const char *resp, size_t resp_len,
                 rc_sink_stats_t *st)
{
    int n = 0;
    size_t off = 0;
    for (;;) {
        char *b = c->buf + off;
        size_t len = c->len - off;
        char *end = memmem(b, len, "\r\n\r\n", 4);
        if (end == NULL)
            break;
        size_t head = (size_t)(end - b) + 4;
        size_t cl = 0;
        for (char *p = b; p < end; p++) {
            if ((p == b || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
                cl = strtoul(p + 15, NULL, 10);
        }
        if (head + cl > BUF_SIZE)
            return -1;
        if (len < head + cl)
            break;
        const char *probe = dapr_probe(b, head);
        if (st != NULL && probe == NULL)
            count(st, b, end + 2, b + head, b + head + cl);
        off += head + cl;
        const char *r = probe ? probe : resp;
        size_t rlen = probe ? strlen(probe) : resp_len;
        if (*out_len + rlen <= BUF_SIZE) {
            memcpy(out + *out_len, r, rlen);
            *out_len += rlen;
        }
        n++;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    return n;
}

static void serve(int lfd, int status, rc_sink_stats_t *st)
{
    char resp[128];
    int resp_len =
        snprintf(resp, sizeof(resp), "HTTP/1.1 %d OK\r\nContent-Length: 0\r\n\r\n", status);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    static char out[BUF_SIZE];
    for (;;) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c == NULL) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    continue;
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                c = calloc(1, sizeof(*c));
                c->fd = fd;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                continue;
            }
            ssize_t r = read(c->fd, c->buf + c->len, BUF_SIZE - c->len);
            if (r < 0 && errno == EAGAIN)
                continue;
            size_t out_len = 0;
            if (r > 0)
                c->len += (size_t)r;
            if (r <= 0 || frame(c, out, &out_len, resp, (size_t)resp_len, st) < 0) {
                close(c->fd);
                free(c);
                continue;
            }
            /* Responses are tiny; a blocking-style retry loop is fine for a benchmark sink. */
            size_t off = 0;
            while (off < out_len) {
                ssize_t w = write(c->fd, out + off, out_len - off);
                if (w < 0 && errno == EAGAIN)
                    continue;
                if (w <= 0)
                    break;
                off += (size_t)w;
            }
        }
    }
}

static int sink_start(int status, int *port, pid_t *pid, rc_sink_stats_t *st)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        return -errno;
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (bind(lfd, (struct sockaddr *)&a, len) < 0 || listen(lfd, 1024) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) < 0) {
        int rc = -errno;
        close(lfd);
        return rc;
    }
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old);
    pid_t child = fork();
    if (child < 0) {
        int rc = -errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        close(lfd);
        return rc;
    }
    if (child == 0) {
        /* Die with the benchmark even if it is killed before it can stop us. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        /* Not the harness' handlers: they would stop the harness' other children. */
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        serve(lfd, status, st);
        _exit(0);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(lfd);
    *port = ntohs(a.sin_port);
    *pid = child;
    return 0;
}

int rc_bench_sink_start(int status, int *port, pid_t *pid)
{
    return sink_start(status, port, pid, NULL);
}

void rc_bench_sink_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

int rc_bench_csink_start(rc_bench_csink_t *s, uint64_t max_seq)
{
    memset(s, 0, sizeof(*s));
    max_seq = (max_seq + 7) & ~7ull;
    s->map_bytes = sizeof(rc_sink_stats_t) + max_seq / 8;
    void *m = mmap(NULL, s->map_bytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        s->map_bytes = 0;
        return -errno;
    }
    s->stats = m; /* zero-filled */
    s->stats->seen_cap = max_seq;
    rc_hist_init(&s->stats->lat);
    int rc = sink_start(202, &s->port, &s->pid, s->stats);
    if (rc == 0 && rc_bench_adopt(s->pid, SIGTERM) < 0) {
        rc_bench_sink_stop(s->pid);
        s->pid = 0;
        rc = -EMFILE;
    }
    if (rc < 0) {
        munmap(m, s->map_bytes);
        s->stats = NULL;
        s->map_bytes = 0;
    }
    return rc;
}

int rc_bench_csink_seen(const rc_bench_csink_t *s, uint64_t seq)
{
    return seq < s->stats->seen_cap && (s->stats->seen[seq >> 3] >> (seq & 7)) & 1;
}

void rc_bench_csink_stop(rc_bench_csink_t *s)
{
    if (s->pid > 0)
        rc_bench_stop(s->pid);
    s->pid = 0;
}

void rc_bench_csink_free(rc_bench_csink_t *s)
{
    rc_bench_csink_stop(s);
    if (s->stats != NULL)
        munmap(s->stats, s->map_bytes);
    s->stats = NULL;
    s->map_bytes = 0;
}
