/* The delivery HTTP client against a real HTTP server on loopback (a thread of this test, plain
 * sockets), on both back-ends: statuses, bodies, keep-alive reuse, stale keep-alive retry,
 * timeouts, resets, refusals and servers that lie. */
#include "core/errors.h"
#include "net/http/http_client.h"
#include "net/http/http_url.h"
#include "tests/test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* --- the server ---------------------------------------------------------------------------- */

#define MAX_SCONNS 512

typedef struct {
    int fd;
    char *buf;
    size_t len, cap;
    int hung;
    int noread; /* stop reading: the client's send fills the socket buffers */
} sconn_t;

static struct {
    int lfd, lfd6, port, port6;
    int stop[2];
    pthread_t thread;
    pthread_mutex_t mu;
    int accepted;
    int requests;
    char last_head[4096];
    char *last_body;
    size_t last_body_len;
    int drops;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, 1000);
            continue;
        }
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, int status, const char *extra, const char *body, size_t body_len)
{
    /* One send for head and small bodies, so a response arrives in one piece on loopback. */
    static char head[512 + 65536];
    int n = snprintf(head, 512, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n", status, body_len,
                     extra);
    if (body_len <= 65536) {
        if (body_len > 0)
            memcpy(head + n, body, body_len);
        write_all(fd, head, (size_t)n + body_len);
        return;
    }
    write_all(fd, head, (size_t)n);
    write_all(fd, body, body_len);
}

enum { KEEP, CLOSE, RESET, HANG };

/* Answers one request according to its path; returns what to do with the connection. */
static int handle(int fd, const char *path, const char *body, size_t body_len)
{
    int v;
    if (sscanf(path, "/status/%d", &v) == 1) {
        respond(fd, v, "", NULL, 0);
        return KEEP;
    }
    if (sscanf(path, "/retry-after/%d", &v) == 1) {
        char extra[64];
        snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", v);
        respond(fd, 429, extra, NULL, 0);
        return KEEP;
    }
    if (strcmp(path, "/echo") == 0) {
        respond(fd, 200,
                "Content-Type: application/json\r\nce-id: r1\r\nce-type: reply.type\r\n"
                "ce-specversion: 1.0\r\nce-source: /sink\r\n",
                body, body_len);
        return KEEP;
    }
    if (strcmp(path, "/hang") == 0)
        return HANG;
    if (strcmp(path, "/reset") == 0)
        return RESET;
    if (strcmp(path, "/close-after") == 0) {
        respond(fd, 200, "", NULL, 0); /* claims keep-alive, then closes */
        return CLOSE;
    }
    if (strcmp(path, "/drop") == 0) {
        pthread_mutex_lock(&srv.mu);
        srv.drops++;
        pthread_mutex_unlock(&srv.mu);
        return CLOSE;
    }
    if (strcmp(path, "/garbage") == 0) {
        write_all(fd, "HELLO THERE\r\n\r\n", 15);
        return KEEP;
    }
    if (strcmp(path, "/short-body") == 0) {
        write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 42);
        return CLOSE;
    }
    if (strcmp(path, "/long-body") == 0) {
        write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdefgh", 46);
        return KEEP;
    }
    if (strcmp(path, "/bad-length") == 0) {
        write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\nabc", 42);
        return KEEP;
    }
    if (strcmp(path, "/chunked") == 0) {
        const char *r = "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        write_all(fd, r, strlen(r));
        return KEEP;
    }
    if (strcmp(path, "/eof-body") == 0) {
        const char *r = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end";
        write_all(fd, r, strlen(r));
        return CLOSE;
    }
    if (strcmp(path, "/http10") == 0) {
        write_all(fd, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 40);
        return CLOSE;
    }
    if (strcmp(path, "/continue") == 0) {
        const char *r = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        write_all(fd, r, strlen(r));
        return KEEP;
    }
    if (strcmp(path, "/huge-headers") == 0) {
        static char big[40000];
        memset(big, 'a', sizeof(big));
        write_all(fd, "HTTP/1.1 200 OK\r\nX-Big: ", 24);
        write_all(fd, big, sizeof(big));
        write_all(fd, "\r\nContent-Length: 0\r\n\r\n", 23);
        return KEEP;
    }
    if (sscanf(path, "/big/%d", &v) == 1) {
        char *b = malloc((size_t)v);
        for (int i = 0; i < v; i++)
            b[i] = (char)('a' + i % 26);
        respond(fd, 200, "", b, (size_t)v);
        free(b);
        return KEEP;
    }
    if (strcmp(path, "/partial-then-reset") == 0) {
        write_all(fd, "HTTP/1.1 200 OK\r\nContent-Le", 27);
        usleep(20000);
        return RESET;
    }
    respond(fd, 404, "", NULL, 0);
    return KEEP;
}

static void sconn_close(sconn_t *s, int reset)
{
    if (reset) {
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    close(s->fd);
    free(s->buf);
    memset(s, 0, sizeof(*s));
    s->fd = -1;
}

/* Consumes complete requests from the connection's buffer; returns 0 to close. */
static int serve_buffer(sconn_t *s)
{
    while (!s->hung) {
        char *end = memmem(s->buf, s->len, "\r\n\r\n", 4);
        if (end == NULL)
            return 1;
        size_t head_len = (size_t)(end - s->buf) + 4;
        size_t cl = 0;
        for (char *p = s->buf; p < end; p++) {
            if ((p == s->buf || p[-1] == '\n') && strncasecmp(p, "Content-Length:", 15) == 0)
                cl = strtoul(p + 15, NULL, 10);
        }
        char method[16], path[256];
        if (sscanf(s->buf, "%15s %255s", method, path) != 2)
            return 0;
        if (strcmp(path, "/early") == 0) {
            /* Answer before the body arrives, keep the connection, never read again. */
            respond(s->fd, 413, "", NULL, 0);
            s->hung = 1;
            s->noread = 1;
            return 1;
        }
        if (s->len < head_len + cl)
            return 1;
        pthread_mutex_lock(&srv.mu);
        srv.requests++;
        size_t hl = head_len < sizeof(srv.last_head) - 1 ? head_len : sizeof(srv.last_head) - 1;
        memcpy(srv.last_head, s->buf, hl);
        srv.last_head[hl] = '\0';
        free(srv.last_body);
        srv.last_body = malloc(cl + 1);
        memcpy(srv.last_body, s->buf + head_len, cl);
        srv.last_body_len = cl;
        pthread_mutex_unlock(&srv.mu);
        int what = handle(s->fd, path, s->buf + head_len, cl);
        memmove(s->buf, s->buf + head_len + cl, s->len - head_len - cl);
        s->len -= head_len + cl;
        s->buf[s->len] = '\0';
        if (what == CLOSE || what == RESET) {
            sconn_close(s, what == RESET);
            return -1;
        }
        if (what == HANG)
            s->hung = 1;
    }
    return 1;
}

static void *server_main(void *arg)
{
    (void)arg;
    static sconn_t conns[MAX_SCONNS];
    for (int i = 0; i < MAX_SCONNS; i++)
        conns[i].fd = -1;
    for (;;) {
        struct pollfd pfds[MAX_SCONNS + 3];
        int map[MAX_SCONNS + 3];
        int n = 0;
        pfds[n++] = (struct pollfd){.fd = srv.stop[0], .events = POLLIN};
        pfds[n++] = (struct pollfd){.fd = srv.lfd, .events = POLLIN};
        pfds[n++] = (struct pollfd){.fd = srv.lfd6, .events = POLLIN};
        for (int i = 0; i < MAX_SCONNS; i++) {
            if (conns[i].fd >= 0 && !conns[i].noread) {
                map[n] = i;
                pfds[n++] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
            }
        }
        if (poll(pfds, (nfds_t)n, 1000) < 0)
            continue;
        if (pfds[0].revents)
            break;
        for (int l = 1; l <= 2; l++) {
            if (!(pfds[l].revents & POLLIN))
                continue;
            int fd = accept4(pfds[l].fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            int slot = -1;
            for (int i = 0; i < MAX_SCONNS && slot < 0; i++)
                if (conns[i].fd < 0)
                    slot = i;
            if (slot < 0) {
                close(fd);
                continue;
            }
            conns[slot] = (sconn_t){.fd = fd};
            pthread_mutex_lock(&srv.mu);
            srv.accepted++;
            pthread_mutex_unlock(&srv.mu);
        }
        for (int k = 3; k < n; k++) {
            if (!pfds[k].revents)
                continue;
            sconn_t *s = &conns[map[k]];
            if (s->cap - s->len < 65536) {
                s->cap = s->cap ? s->cap * 2 : 65536;
                s->buf = realloc(s->buf, s->cap + 1); /* + NUL for sscanf */
            }
            ssize_t r = recv(s->fd, s->buf + s->len, s->cap - s->len, MSG_DONTWAIT);
            if (r <= 0) {
                if (r == 0 || (errno != EAGAIN && errno != EINTR))
                    sconn_close(s, 0);
                continue;
            }
            s->len += (size_t)r;
            s->buf[s->len] = '\0';
            if (serve_buffer(s) == 0)
                sconn_close(s, 0);
        }
    }
    for (int i = 0; i < MAX_SCONNS; i++)
        if (conns[i].fd >= 0)
            sconn_close(&conns[i], 0);
    return NULL;
}

static int listen_on(int family, int *port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 512) < 0) {
        close(fd);
        return -1;
    }
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

static void server_start(void)
{
    srv.lfd = listen_on(AF_INET, &srv.port);
    ASSERT(srv.lfd >= 0);
    srv.lfd6 = listen_on(AF_INET6, &srv.port6); /* -1 when IPv6 is off: poll ignores it */
    ASSERT_EQ(pipe(srv.stop), 0);
    ASSERT_EQ(pthread_create(&srv.thread, NULL, server_main, NULL), 0);
}

static void server_stop(void)
{
    ASSERT_EQ(write(srv.stop[1], "x", 1), 1);
    pthread_join(srv.thread, NULL);
    close(srv.lfd);
    if (srv.lfd6 >= 0)
        close(srv.lfd6);
    close(srv.stop[0]);
    close(srv.stop[1]);
    free(srv.last_body);
}

static int server_count(int *field)
{
    pthread_mutex_lock(&srv.mu);
    int v = *field;
    pthread_mutex_unlock(&srv.mu);
    return v;
}

/* --- client helpers ------------------------------------------------------------------------ */

typedef struct {
    int done;
    int calls;
    int result;
    char body[256];
    size_t body_len;
    int truncated;
    char ce_type[64];
    char content_type[64];
    char retry_after[64];
    int64_t at_ns;
} outcome_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void copy_header(const rc_http_response_t *r, const char *name, char *dst, size_t cap)
{
    const rc_http_client_header_t *h = rc_http_response_header(r, name);
    dst[0] = '\0';
    if (h != NULL)
        snprintf(dst, cap, "%.*s", (int)h->value_len, h->value);
}

static void on_done(int result, const rc_http_response_t *resp, void *ud)
{
    outcome_t *o = ud;
    o->calls++;
    o->done = 1;
    o->result = result;
    o->at_ns = now_ns();
    if (result > 0) {
        ASSERT(resp != NULL);
        ASSERT_EQ(resp->status, result);
        o->body_len = resp->body_len;
        o->truncated = resp->body_truncated;
        snprintf(o->body, sizeof(o->body), "%.*s", (int)resp->body_len, resp->body);
        copy_header(resp, "ce-type", o->ce_type, sizeof(o->ce_type));
        copy_header(resp, "CONTENT-TYPE", o->content_type, sizeof(o->content_type));
        copy_header(resp, "retry-after", o->retry_after, sizeof(o->retry_after));
    } else {
        ASSERT(resp == NULL);
    }
}

static rc_http_endpoint_t *endpoint(rc_http_client_t *c, const char *path)
{
    char url[300], err[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv.port, path);
    rc_http_endpoint_t *ep = NULL;
    if (rc_http_client_endpoint(c, url, &ep, err, sizeof(err)) != 0)
        RC_TEST_FAIL("endpoint %s: %s", url, err);
    return ep;
}

static void run_until(rc_http_client_t *c, int *flag, int want, int limit_ms)
{
    int64_t end = now_ns() + (int64_t)limit_ms * 1000000;
    while (*flag < want) {
        if (now_ns() > end)
            RC_TEST_FAIL("timed out waiting (%d of %d)", *flag, want);
        int rc = rc_http_client_run(c, 50);
        ASSERT_GE(rc, 0);
    }
}

/* Sends one request and waits for its callback. */
static outcome_t one(rc_http_client_t *c, const char *path, const char *body, uint32_t tmo)
{
    outcome_t o = {0};
    struct iovec iov = {(void *)body, body ? strlen(body) : 0};
    rc_http_request_t req = {.endpoint = endpoint(c, path),
                             .body = &iov,
                             .body_iovcnt = body ? 1 : 0,
                             .timeout_ms = tmo};
    ASSERT_EQ(rc_http_client_request(c, &req, on_done, &o), 0);
    ASSERT_EQ(o.calls, 0); /* never from inside rc_http_client_request */
    if (getenv("RC_TEST_VERBOSE"))
        fprintf(stderr, "request %s\n", path);
    run_until(c, &o.done, 1, 10000);
    ASSERT_EQ(o.calls, 1);
    /* Exactly once: more runs bring no second call. */
    rc_http_client_run(c, 0);
    ASSERT_EQ(o.calls, 1);
    return o;
}

static rc_http_client_t *make_client(rc_http_backend_t kind, uint32_t max_conns, size_t max_body)
{
    rc_http_client_opts_t o;
    rc_http_client_opts_init(&o);
    o.backend = kind;
    o.max_conns_per_host = max_conns;
    o.max_body = max_body;
    rc_http_client_t *c = NULL;
    ASSERT_EQ(rc_http_client_create(&o, &c), 0);
    ASSERT_EQ(rc_http_client_backend(c), kind);
    return c;
}

/* --- tests --------------------------------------------------------------------------------- */

static void test_statuses(rc_http_backend_t kind)
{
    rc_http_client_t *c = make_client(kind, 4, 1 << 20);
    int codes[] = {200, 202, 204, 301, 400, 404, 409, 500, 503};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/status/%d", codes[i]);
        outcome_t o = one(c, path, "{}", 0);
        ASSERT_EQ(o.result, codes[i]);
    }
    outcome_t o = one(c, "/retry-after/7", "x", 0);
    ASSERT_EQ(o.result, 429);
    ASSERT_STR_EQ(o.retry_after, "7");

    o = one(c, "/echo", "{\"hello\":1}", 0);
    ASSERT_EQ(o.result, 200);
    ASSERT_STR_EQ(o.body, "{\"hello\":1}");
    ASSERT_STR_EQ(o.ce_type, "reply.type");
    ASSERT_STR_EQ(o.content_type, "application/json");

    o = one(c, "/chunked", NULL, 0);
    ASSERT_EQ(o.result, 202);
    ASSERT_STR_EQ(o.body, "hello world");
    o = one(c, "/continue", NULL, 0);
    ASSERT_EQ(o.result, 204);
    o = one(c, "/eof-body", NULL, 0);
    ASSERT_EQ(o.result, 200);
    ASSERT_STR_EQ(o.body, "until the end");
    o = one(c, "/http10", NULL, 0);
    ASSERT_EQ(o.result, 200);
    ASSERT_STR_EQ(o.body, "ok");
    /* HEAD: the answer has no body whatever Content-Length says; the bytes this test server
     * sends anyway are trailing garbage, so the connection is not reused. */
    outcome_t h = {0};
    rc_http_request_t head = {.endpoint = endpoint(c, "/big/100"), .method = "HEAD"};
    int before = server_count(&srv.accepted);
    ASSERT_EQ(rc_http_client_request(c, &head, on_done, &h), 0);
    run_until(c, &h.done, 1, 5000);
    ASSERT_EQ(h.result, 200);
    ASSERT_EQ(h.body_len, 0);
    o = one(c, "/status/200", NULL, 0);
    ASSERT_EQ(o.result, 200);
    ASSERT_EQ(server_count(&srv.accepted), before + 2); /* one for HEAD, one after it */
    o = one(c, "/status/200", NULL, 0);                 /* after the closes above, still fine */
    ASSERT_EQ(o.result, 200);
    ASSERT_EQ(rc_http_client_pending(c), 0);
    rc_http_client_destroy(c);
}

static void test_request_shape(rc_http_backend_t kind)
{
    rc_http_client_t *c = make_client(kind, 2, 1 << 20);
    outcome_t o = {0};
    static const char hdrs[] = "ce-id: 42\r\nce-type: order.placed\r\nPrefer: reply\r\n";
    struct iovec body[3] = {{"{\"a\":", 5}, {"", 0}, {"1}", 2}};
    rc_http_request_t req = {.endpoint = endpoint(c, "/echo"),
                             .headers = hdrs,
                             .headers_len = sizeof(hdrs) - 1,
                             .body = body,
                             .body_iovcnt = 3};
    ASSERT_EQ(rc_http_client_request(c, &req, on_done, &o), 0);
    run_until(c, &o.done, 1, 5000);
    ASSERT_EQ(o.result, 200);
    ASSERT_STR_EQ(o.body, "{\"a\":1}");
    pthread_mutex_lock(&srv.mu);
    char head[4096];
    snprintf(head, sizeof(head), "%s", srv.last_head);
    pthread_mutex_unlock(&srv.mu);
    char want[128];
    snprintf(want, sizeof(want), "POST /echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", srv.port);
    if (strncmp(head, want, strlen(want)) != 0)
        RC_TEST_FAIL("request head \"%s\" does not start with \"%s\"", head, want);
    ASSERT(strstr(head, "\r\nContent-Length: 7\r\n") != NULL);
    ASSERT(strstr(head, "\r\nce-type: order.placed\r\nPrefer: reply\r\n\r\n") != NULL);

    /* A query string is part of the target; a PUT without body has Content-Length: 0. */
    outcome_t q = {0};
    rc_http_request_t put = {.endpoint = endpoint(c, "/status/201?x=1"), .method = "PUT"};
    ASSERT_EQ(rc_http_client_request(c, &put, on_done, &q), 0);
    run_until(c, &q.done, 1, 5000);
    ASSERT_EQ(q.result, 201);
    pthread_mutex_lock(&srv.mu);
    ASSERT(strncmp(srv.last_head, "PUT /status/201?x=1 HTTP/1.1\r\n", 30) == 0);
    ASSERT(strstr(srv.last_head, "Content-Length: 0\r\n") != NULL);
    pthread_mutex_unlock(&srv.mu);

    /* A 1 MiB body in pieces goes out whole (short writes) and comes back. */
    size_t big = 1 << 20;
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)('A' + i % 23);
    struct iovec pieces[2] = {{data, big / 3}, {data + big / 3, big - big / 3}};
    outcome_t b = {0};
    rc_http_request_t breq = {.endpoint = endpoint(c, "/echo"), .body = pieces, .body_iovcnt = 2};
    ASSERT_EQ(rc_http_client_request(c, &breq, on_done, &b), 0);
    run_until(c, &b.done, 1, 10000);
    ASSERT_EQ(b.result, 200);
    ASSERT_EQ(b.body_len, big);
    pthread_mutex_lock(&srv.mu);
    ASSERT_EQ(srv.last_body_len, big);
    ASSERT(memcmp(srv.last_body, data, big) == 0);
    pthread_mutex_unlock(&srv.mu);
    free(data);

    /* Invalid requests fail at once and never call back. */
    rc_http_request_t bad = {.endpoint = NULL};
    ASSERT_EQ(rc_http_client_request(c, &bad, on_done, &o), -EINVAL);
    struct iovec many[RC_HTTP_MAX_BODY_IOV + 1];
    rc_http_request_t toomany = {
        .endpoint = endpoint(c, "/echo"), .body = many, .body_iovcnt = RC_HTTP_MAX_BODY_IOV + 1};
    ASSERT_EQ(rc_http_client_request(c, &toomany, on_done, &o), -EINVAL);
    ASSERT_EQ(rc_http_client_request(c, &req, NULL, &o), -EINVAL);
    rc_http_request_t badmethod = req;
    badmethod.method = "GET /x HTTP/1.1\r\n";
    ASSERT_EQ(rc_http_client_request(c, &badmethod, on_done, &o), -EINVAL);
    badmethod.method = "";
    ASSERT_EQ(rc_http_client_request(c, &badmethod, on_done, &o), -EINVAL);
    rc_http_request_t nohdrs = req;
    nohdrs.headers = NULL;
    ASSERT_EQ(rc_http_client_request(c, &nohdrs, on_done, &o), -EINVAL);
    ASSERT_EQ(o.calls, 1);
    ASSERT_EQ(rc_http_client_pending(c), 0);
    rc_http_client_destroy(c);
}

static void test_bodies(rc_http_backend_t kind)
{
    rc_http_client_t *c = make_client(kind, 2, 1000);
    outcome_t o = one(c, "/big/999", NULL, 0);
    ASSERT_EQ(o.result, 200);
    ASSERT_EQ(o.body_len, 999);
    ASSERT_EQ(o.truncated, 0);
    o = one(c, "/big/100000", NULL, 0); /* many reads, body cut at max_body */
    ASSERT_EQ(o.result, 200);
    ASSERT_EQ(o.body_len, 1000);
    ASSERT_EQ(o.truncated, 1);
    ASSERT(strncmp(o.body, "abcdefghijklmnopqrstuvwxyz", 26) == 0);
    /* The connection stays usable after a truncated body. */
    int before = server_count(&srv.accepted);
    o = one(c, "/status/202", NULL, 0);
    ASSERT_EQ(o.result, 202);
    ASSERT_EQ(server_count(&srv.accepted), before);
    rc_http_client_destroy(c);
}

static void test_keepalive(rc_http_backend_t kind)
{
    rc_http_client_t *c = make_client(kind, 4, 1 << 20);
    rc_http_endpoint_t *ep = endpoint(c, "/status/202");
    int before = server_count(&srv.accepted);
    enum { N = 400 };
    static outcome_t outs[N];
    memset(outs, 0, sizeof(outs));
    int done = 0;
    for (int round = 0; round < 2; round++) {
        for (int i = round * N / 2; i < (round + 1) * N / 2; i++) {
            rc_http_request_t req = {.endpoint = ep};
            ASSERT_EQ(rc_http_client_request(c, &req, on_done, &outs[i]), 0);
        }
        ASSERT_EQ(rc_http_client_pending(c), N / 2);
        int64_t end = now_ns() + 10 * 1000000000LL;
        while (rc_http_client_pending(c) > 0 && now_ns() < end)
            ASSERT_GE(rc_http_client_run(c, 50), 0);
        ASSERT_EQ(rc_http_client_pending(c), 0);
    }
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(outs[i].calls, 1);
        ASSERT_EQ(outs[i].result, 202);
        done++;
    }
    ASSERT_EQ(done, N);
    /* At most max_conns_per_host connections, reused across both rounds. */
    int opened = server_count(&srv.accepted) - before;
    ASSERT_GE(opened, 1);
    ASSERT_LE(opened, 4);

    /* Endpoints with the same address share the pool; the same URL gives the same endpoint. */
    ASSERT(endpoint(c, "/status/202") == ep);
    before = server_count(&srv.accepted);
    outcome_t o = one(c, "/status/201", NULL, 0);
    ASSERT_EQ(o.result, 201);
    ASSERT_EQ(server_count(&srv.accepted), before);
    rc_http_client_destroy(c);
}

/* Looks that never wait see every response: the worker's loop turns with
 * rc_http_client_run(c, 0), which on io_uring enters the kernel only when there is something to
 * submit or the kernel flags completions waiting for this thread (IORING_SQ_TASKRUN). A flag
 * that never rose would leave these requests unfinished here. The thread sleeps between looks,
 * outside the ring, as the worker does while it routes events. */
static void test_looks_without_wait(rc_http_backend_t kind)
{
    rc_http_client_t *c = make_client(kind, 4, 1 << 20);
    rc_http_endpoint_t *ep = endpoint(c, "/status/200");
    enum { N = 40 };
    static outcome_t outs[N];
    memset(outs, 0, sizeof(outs));
    for (int i = 0; i < N; i++) {
        rc_http_request_t req = {.endpoint = ep};
        ASSERT_EQ(rc_http_client_request(c, &req, on_done, &outs[i]), 0);
        int64_t end = now_ns() + 5 * 1000000000LL;
        while (outs[i].calls == 0 && now_ns() < end) {
            ASSERT_GE(rc_http_client_run(c, 0), 0);
            struct timespec pause = {0, 50000};
            nanosleep(&pause, NULL);
        }
        ASSERT_EQ(outs[i].calls, 1);
        ASSERT_EQ(outs[i].result, 200);
    }
    ASSERT_EQ(rc_http_client_pending(c), 0);
    rc_http_client_destroy(c);
}

static void test_small_ring(rc_http_backend_t kind)
{
    /* 8 submission entries for 60 concurrent exchanges: submissions flush mid-batch. */
    rc_http_client_opts_t opts;
    rc_http_client_opts_init(&opts);
    opts.backend = kind;
    opts.ring_entries = 8;
    opts.max_conns_per_host = 60;
    rc_http_client_t *c = NULL;
    ASSERT_EQ(rc_http_client_create(&opts, &c), 0);
    enum { N = 60 };
    outcome_t outs[N];
    memset(outs, 0, sizeof(outs));
    rc_http_endpoint_t *ep = endpoint(c, "/echo");
    struct iovec iov = {"ping", 4};
    for (int i = 0; i < N; i++) {
        rc_http_request_t req = {.endpoint = ep, .body = &iov, .body_iovcnt = 1};
        ASSERT_EQ(rc_http_client_request(c, &req, on_done, &outs[i]), 0);
    }
    int64_t end = now_ns() + 10 * 1000000000LL;
    while (rc_http_client_pending(c) > 0 && now_ns() < end)
        ASSERT_GE(rc_http_client_run(c, 50), 0);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(outs[i].calls, 1);
        ASSERT_EQ(outs[i].result, 200);
        ASSERT_STR_EQ(outs[i].body, "ping");
    }
    rc_http_client_destroy(c);
}

/* A response callback that chains the next request from inside the callback. */
typedef struct {
    rc_http_client_t *c;
    rc_http_endpoint_t *ep;
    int left, done, fails;
} chain_t;

static void on_chain(int result, const rc_http_response_t *resp, void *ud)
{
    chain_t *ch = ud;
    if (result != 200)
        ch->fails++;
    ch->done++;
    if (--ch->left > 0) {
        rc_http_request_t req = {.endpoint = ch->ep};
        ASSERT_EQ(rc_http_client_request(ch->c, &req, on_chain, ch), 0);
    }
}

static void test_chain_and_fd(rc_http_backend_t kind)
{
    rc_http_client_t *c = make_client(kind, 1, 1 << 20);
    chain_t ch = {.c = c, .ep = endpoint(c, "/status/200"), .left = 50};
    rc_http_request_t req = {.endpoint = ch.ep};
    ASSERT_EQ(rc_http_client_request(c, &req, on_chain, &ch), 0);
    run_until(c, &ch.done, 50, 10000);
    ASSERT_EQ(ch.fails, 0);

    /* An outer poll loop: flush with run(0), wait on the fd, then run(0) again. */
    outcome_t o = {0};
    ASSERT_EQ(rc_http_client_request(c, &req, on_done, &o), 0);
    int64_t end = now_ns() + 5 * 1000000000LL;
    while (!o.done && now_ns() < end) {
        ASSERT_GE(rc_http_client_run(c, 0), 0);
        if (o.done)
            break;
        struct pollfd pfd = {.fd = rc_http_client_fd(c), .events = POLLIN};
        int t = rc_http_client_next_timeout_ms(c);
        ASSERT_GE(poll(&pfd, 1, t < 0 || t > 1000 ? 1000 : t), 0);
    }
    ASSERT_EQ(o.result, 200);
    rc_http_client_destroy(c);
}

static void test_failures(rc_http_backend_t kind)
{
    rc_http_client_t *c = make_client(kind, 4, 1 << 20);
    outcome_t o = one(c, "/garbage", NULL, 0);
    ASSERT_EQ(o.result, RC_EHTTP_MALFORMED);
    o = one(c, "/bad-length", NULL, 0);
    ASSERT_EQ(o.result, RC_EHTTP_MALFORMED);
    o = one(c, "/status/20", NULL, 0); /* two-digit status */
    ASSERT_EQ(o.result, RC_EHTTP_MALFORMED);
    o = one(c, "/status/1000", NULL, 0);
    ASSERT_EQ(o.result, RC_EHTTP_MALFORMED);
    o = one(c, "/short-body", NULL, 0);
    ASSERT_EQ(o.result, RC_EHTTP_CLOSED);
    o = one(c, "/huge-headers", NULL, 0);
    ASSERT_EQ(o.result, RC_EHTTP_HEADERS_TOO_LARGE);
    o = one(c, "/reset", "x", 0);
    if (o.result != -ECONNRESET && o.result != RC_EHTTP_CLOSED)
        RC_TEST_FAIL("reset gave %d (%s)", o.result, rc_strerror(o.result));
    o = one(c, "/partial-then-reset", "x", 0);
    if (o.result != -ECONNRESET && o.result != RC_EHTTP_CLOSED)
        RC_TEST_FAIL("reset mid-response gave %d (%s)", o.result, rc_strerror(o.result));

    /* A longer body than Content-Length: the response stands, the connection is not reused. */
    int before = server_count(&srv.accepted);
    o = one(c, "/long-body", NULL, 0);
    ASSERT_EQ(o.result, 200);
    ASSERT_STR_EQ(o.body, "abc");
    o = one(c, "/status/200", NULL, 0);
    ASSERT_EQ(o.result, 200);
    ASSERT_EQ(server_count(&srv.accepted), before + 2);

    /* Connection refused: a port nobody listens on. */
    int port;
    int fd = listen_on(AF_INET, &port);
    close(fd);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    rc_http_endpoint_t *ep;
    ASSERT_EQ(rc_http_client_endpoint(c, url, &ep, NULL, 0), 0);
    outcome_t r = {0};
    rc_http_request_t req = {.endpoint = ep};
    ASSERT_EQ(rc_http_client_request(c, &req, on_done, &r), 0);
    run_until(c, &r.done, 1, 5000);
    ASSERT_EQ(r.result, -ECONNREFUSED);
    rc_http_client_destroy(c);
}

static void test_early_response(rc_http_backend_t kind)
{
    /* The server answers 413 after the head and stops reading while the client still has
     * megabytes to send: the response must arrive now, not at the attempt timeout. */
    rc_http_client_t *c = make_client(kind, 1, 1 << 20);
    size_t big = 16 << 20;
    char *data = calloc(1, big);
    struct iovec iov = {data, big};
    outcome_t o = {0};
    rc_http_request_t req = {
        .endpoint = endpoint(c, "/early"), .body = &iov, .body_iovcnt = 1, .timeout_ms = 20000};
    int64_t t0 = now_ns();
    ASSERT_EQ(rc_http_client_request(c, &req, on_done, &o), 0);
    run_until(c, &o.done, 1, 10000);
    ASSERT_EQ(o.result, 413);
    ASSERT_LT((o.at_ns - t0) / 1000000, 5000);
    free(data);
    /* The connection was not reused. */
    int before = server_count(&srv.accepted);
    o = one(c, "/status/200", NULL, 0);
    ASSERT_EQ(o.result, 200);
    ASSERT_EQ(server_count(&srv.accepted), before + 1);
    rc_http_client_destroy(c);
}

static void test_timeouts(rc_http_backend_t kind)
{
    rc_http_client_t *c = make_client(kind, 1, 1 << 20);
    int64_t t0 = now_ns();
    outcome_t o = one(c, "/hang", "x", 200);
    int64_t took = (o.at_ns - t0) / 1000000;
    ASSERT_EQ(o.result, -ETIMEDOUT);
    ASSERT_GE(took, 190);
    ASSERT_LT(took, 3000);

    /* A listener whose accept queue is full drops SYNs: the connect itself hangs. */
    int port;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sa);
    ASSERT_EQ(bind(lfd, (struct sockaddr *)&sa, slen), 0);
    ASSERT_EQ(listen(lfd, 0), 0);
    ASSERT_EQ(getsockname(lfd, (struct sockaddr *)&sa, &slen), 0);
    port = ntohs(sa.sin_port);
    int fillers[4];
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(fillers[i], (struct sockaddr *)&sa, slen);
    }
    usleep(100000);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    rc_http_endpoint_t *ep;
    ASSERT_EQ(rc_http_client_endpoint(c, url, &ep, NULL, 0), 0);
    outcome_t ct = {0};
    rc_http_request_t rq = {.endpoint = ep, .timeout_ms = 300};
    t0 = now_ns();
    ASSERT_EQ(rc_http_client_request(c, &rq, on_done, &ct), 0);
    run_until(c, &ct.done, 1, 5000);
    ASSERT_EQ(ct.result, -ETIMEDOUT);
    ASSERT_GE((ct.at_ns - t0) / 1000000, 290);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(lfd);

    /* With one connection, a second request queues behind a hanging one and times out there. */
    outcome_t a = {0}, b = {0}, z = {0};
    rc_http_request_t ra = {.endpoint = endpoint(c, "/hang"), .timeout_ms = 400};
    rc_http_request_t rb = {.endpoint = endpoint(c, "/status/200"), .timeout_ms = 100};
    t0 = now_ns();
    ASSERT_EQ(rc_http_client_request(c, &ra, on_done, &a), 0);
    ASSERT_EQ(rc_http_client_request(c, &rb, on_done, &b), 0);
    ASSERT_EQ(rc_http_client_next_timeout_ms(c) <= 100, 1);
    run_until(c, &b.done, 1, 5000);
    ASSERT_EQ(b.result, -ETIMEDOUT);
    ASSERT_EQ(a.done, 0);
    ASSERT_GE((b.at_ns - t0) / 1000000, 90);
    run_until(c, &a.done, 1, 5000);
    ASSERT_EQ(a.result, -ETIMEDOUT);
    ASSERT_GE((a.at_ns - t0) / 1000000, 390);
    /* The pool recovers: a fresh connection serves the next request. */
    z = one(c, "/status/204", NULL, 0);
    ASSERT_EQ(z.result, 204);
    rc_http_client_destroy(c);
}

/* Deadlines that come due out of the order their requests were sent: each request ends at its
 * own (io_uring: a later, shorter deadline moves the next sweep forward), and an exchange
 * that finishes in time is not touched by a sweep that ends its neighbour. */
static void test_deadline_order(rc_http_backend_t kind)
{
    rc_http_client_t *c = make_client(kind, 3, 1 << 20);
    outcome_t lng = {0}, shrt = {0}, ok = {0};
    rc_http_request_t rl = {.endpoint = endpoint(c, "/hang"), .timeout_ms = 900};
    rc_http_request_t rs = {.endpoint = endpoint(c, "/hang"), .timeout_ms = 250};
    int64_t t0 = now_ns();
    ASSERT_EQ(rc_http_client_request(c, &rl, on_done, &lng), 0);
    rc_http_client_run(c, 20); /* the long one is posted before the short one exists */
    ASSERT_EQ(rc_http_client_request(c, &rs, on_done, &shrt), 0);
    run_until(c, &shrt.done, 1, 5000);
    ASSERT_EQ(shrt.result, -ETIMEDOUT);
    ASSERT_GE((shrt.at_ns - t0) / 1000000, 250);
    ASSERT_LT((shrt.at_ns - t0) / 1000000, 850);
    ASSERT_EQ(lng.done, 0);
    /* In flight while the long one hangs on: answered, not swept. */
    rc_http_request_t ro = {.endpoint = endpoint(c, "/status/204"), .timeout_ms = 60000};
    ASSERT_EQ(rc_http_client_request(c, &ro, on_done, &ok), 0);
    run_until(c, &ok.done, 1, 5000);
    ASSERT_EQ(ok.result, 204);
    run_until(c, &lng.done, 1, 5000);
    ASSERT_EQ(lng.result, -ETIMEDOUT);
    ASSERT_GE((lng.at_ns - t0) / 1000000, 900);
    ASSERT_EQ(lng.calls, 1);
    ASSERT_EQ(shrt.calls, 1);
    ASSERT_EQ(ok.calls, 1);
    rc_http_client_destroy(c);
}

static void test_stale_keepalive(rc_http_backend_t kind)
{
    rc_http_client_t *c = make_client(kind, 1, 1 << 20);
    /* The server answers, claims keep-alive, and closes: the next request meets a dead
     * connection, and is sent again once on a fresh one. */
    outcome_t o = one(c, "/close-after", NULL, 0);
    ASSERT_EQ(o.result, 200);
    usleep(50000); /* let the FIN arrive */
    int before = server_count(&srv.accepted);
    int reqs = server_count(&srv.requests);
    o = one(c, "/status/200", "x", 0);
    ASSERT_EQ(o.result, 200);
    ASSERT_EQ(server_count(&srv.accepted), before + 1);
    ASSERT_EQ(server_count(&srv.requests), reqs + 1);

    /* A server that drops every request: one retry at most, then the error. */
    int drops = server_count(&srv.drops);
    o = one(c, "/drop", "x", 0);
    ASSERT_EQ(o.result, RC_EHTTP_CLOSED);
    ASSERT_EQ(server_count(&srv.drops), drops + 2);
    /* On a fresh connection there is no retry. */
    o = one(c, "/drop", "x", 0);
    ASSERT_EQ(o.result, RC_EHTTP_CLOSED);
    ASSERT_EQ(server_count(&srv.drops), drops + 3);
    rc_http_client_destroy(c);
}

static void test_destroy_pending(rc_http_backend_t kind)
{
    rc_http_client_t *c = make_client(kind, 2, 1 << 20);
    outcome_t outs[5] = {{0}};
    rc_http_endpoint_t *ep = endpoint(c, "/hang");
    for (int i = 0; i < 5; i++) {
        rc_http_request_t req = {.endpoint = ep, .timeout_ms = 60000};
        ASSERT_EQ(rc_http_client_request(c, &req, on_done, &outs[i]), 0);
    }
    for (int i = 0; i < 5; i++)
        rc_http_client_run(c, 20); /* two in flight, three queued */
    rc_http_client_destroy(c);
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(outs[i].calls, 1);
        ASSERT_EQ(outs[i].result, -ECANCELED);
    }
    rc_http_client_destroy(NULL);
}

static void test_ipv6(rc_http_backend_t kind)
{
    if (srv.lfd6 < 0) {
        fprintf(stderr, "note: IPv6 loopback unavailable, IPv6 case skipped\n");
        return;
    }
    rc_http_client_t *c = make_client(kind, 1, 1 << 20);
    char url[64];
    snprintf(url, sizeof(url), "http://[::1]:%d/status/202", srv.port6);
    rc_http_endpoint_t *ep;
    ASSERT_EQ(rc_http_client_endpoint(c, url, &ep, NULL, 0), 0);
    outcome_t o = {0};
    rc_http_request_t req = {.endpoint = ep};
    ASSERT_EQ(rc_http_client_request(c, &req, on_done, &o), 0);
    run_until(c, &o.done, 1, 5000);
    ASSERT_EQ(o.result, 202);
    pthread_mutex_lock(&srv.mu);
    char want[64];
    snprintf(want, sizeof(want), "Host: [::1]:%d\r\n", srv.port6);
    ASSERT(strstr(srv.last_head, want) != NULL);
    pthread_mutex_unlock(&srv.mu);
    rc_http_client_destroy(c);
}

static void url_bad(const char *url, const char *needle)
{
    rc_http_url_t u;
    char err[256] = "";
    if (rc_http_url_parse(url, &u, err, sizeof(err)) != RC_EHTTP_BAD_URL)
        RC_TEST_FAIL("URL \"%s\" accepted", url);
    if (strstr(err, needle) == NULL)
        RC_TEST_FAIL("URL \"%s\": message \"%s\" lacks \"%s\"", url, err, needle);
}

static void test_urls(void)
{
    rc_http_url_t u;
    ASSERT_EQ(rc_http_url_parse("http://127.0.0.1:8080/a/b?c=d#frag", &u, NULL, 0), 0);
    ASSERT_STR_EQ(u.authority, "127.0.0.1:8080");
    ASSERT_MEM_STR(u.target, u.target_len, "/a/b?c=d");
    ASSERT_EQ(u.addr.ss_family, AF_INET);
    ASSERT_EQ(ntohs(((struct sockaddr_in *)&u.addr)->sin_port), 8080);
    ASSERT_EQ(rc_http_url_parse("HTTP://127.0.0.1", &u, NULL, 0), 0);
    ASSERT_MEM_STR(u.target, u.target_len, "/");
    ASSERT_EQ(ntohs(((struct sockaddr_in *)&u.addr)->sin_port), 80);
    ASSERT_EQ(rc_http_url_parse("http://[::1]:9/x", &u, NULL, 0), 0);
    ASSERT_EQ(u.addr.ss_family, AF_INET6);
    ASSERT_STR_EQ(u.authority, "[::1]:9");
    ASSERT_EQ(rc_http_url_parse("http://localhost:81/", &u, NULL, 0), 0);
    ASSERT_EQ(rc_http_url_parse("http://127.0.0.1:65535/", &u, NULL, 0), 0);

    url_bad("https://127.0.0.1/", "https is not supported");
    url_bad("ftp://127.0.0.1/", "scheme must be http");
    url_bad("127.0.0.1:80", "scheme must be http");
    url_bad("http://", "missing host");
    url_bad("http:///path", "missing host");
    url_bad("http://:80/", "missing host");
    url_bad("http://127.0.0.1:/", "empty port");
    url_bad("http://127.0.0.1:0/", "1-65535");
    url_bad("http://127.0.0.1:65536/", "1-65535");
    url_bad("http://127.0.0.1:8x/", "must be a number");
    url_bad("http://user@127.0.0.1/", "user information");
    url_bad("http://127.0.0.1/a b", "space or control");
    url_bad("http://127.0.0.1/\x01", "space or control");
    url_bad("http://[::1/", "unterminated");
    url_bad("http://[::1]x/", "after the IPv6");
    url_bad("http://[zz::1]/", "not an IPv6 address");
    url_bad("http://no-such-host.invalid/", "cannot resolve");
    url_bad("http://127.0.0.1?x=1", "a query needs a path");
    ASSERT_EQ(rc_http_url_parse(NULL, &u, NULL, 0), RC_EHTTP_BAD_URL);
}

static void test_auto_backend(void)
{
    setenv(RC_HTTP_BACKEND_ENV, "epoll", 1);
    rc_http_client_t *c = NULL;
    ASSERT_EQ(rc_http_client_create(NULL, &c), 0);
    ASSERT_EQ(rc_http_client_backend(c), RC_HTTP_BACKEND_EPOLL);
    rc_http_client_destroy(c);
    unsetenv(RC_HTTP_BACKEND_ENV);

    rc_http_client_opts_t o;
    rc_http_client_opts_init(&o);
    o.max_conns_per_host = 0;
    ASSERT_EQ(rc_http_client_create(&o, &c), -EINVAL);
    rc_http_client_opts_init(&o);
    o.ring_entries = 4;
    ASSERT_EQ(rc_http_client_create(&o, &c), -EINVAL);
    rc_http_client_opts_init(&o);
    o.timeout_ms = 0;
    ASSERT_EQ(rc_http_client_create(&o, &c), -EINVAL);

    /* A ring the kernel refuses (too many entries): AUTO falls back to epoll and says so on
     * stderr, once per process; a forced io_uring fails instead. */
    rc_http_client_opts_init(&o);
    o.ring_entries = 1u << 20;
    char path[] = "/tmp/rc-test-stderr-XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    rc_http_client_t *c1 = NULL, *c2 = NULL;
    int rc1 = rc_http_client_create(&o, &c1);
    int rc2 = rc_http_client_create(&o, &c2);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ASSERT_EQ(rc1, 0);
    ASSERT_EQ(rc2, 0);
    ASSERT_EQ(rc_http_client_backend(c1), RC_HTTP_BACKEND_EPOLL);
    ASSERT_EQ(rc_http_client_backend(c2), RC_HTTP_BACKEND_EPOLL);
    rc_http_client_destroy(c1);
    rc_http_client_destroy(c2);
    char log[1024] = "";
    ssize_t n = pread(fd, log, sizeof(log) - 1, 0);
    ASSERT_GT(n, 0);
    close(fd);
    unlink(path);
    const char *first = strstr(log, "io_uring unavailable");
    if (first == NULL)
        RC_TEST_FAIL("no fallback message in \"%s\"", log);
    ASSERT(strstr(first + 1, "io_uring unavailable") == NULL);
    o.backend = RC_HTTP_BACKEND_URING;
    ASSERT_EQ(rc_http_client_create(&o, &c1), -EINVAL);
}

int main(void)
{
    server_start();
    test_urls();
    test_auto_backend();
    rc_http_backend_t kinds[] = {RC_HTTP_BACKEND_URING, RC_HTTP_BACKEND_EPOLL};
    for (size_t k = 0; k < 2; k++) {
        rc_http_client_opts_t o;
        rc_http_client_opts_init(&o);
        o.backend = kinds[k];
        rc_http_client_t *probe = NULL;
        int rc = rc_http_client_create(&o, &probe);
        if (rc < 0) {
            fprintf(stderr, "note: back-end %d unavailable here (%s); its cases skipped\n",
                    kinds[k], rc_strerror(rc));
            continue;
        }
        rc_http_client_destroy(probe);
        fprintf(stderr, "back-end %s\n", kinds[k] == RC_HTTP_BACKEND_URING ? "io_uring" : "epoll");
        test_statuses(kinds[k]);
        test_request_shape(kinds[k]);
        test_bodies(kinds[k]);
        test_keepalive(kinds[k]);
        test_looks_without_wait(kinds[k]);
        test_small_ring(kinds[k]);
        test_chain_and_fd(kinds[k]);
        test_failures(kinds[k]);
        test_timeouts(kinds[k]);
        test_deadline_order(kinds[k]);
        test_early_response(kinds[k]);
        test_stale_keepalive(kinds[k]);
        test_destroy_pending(kinds[k]);
        test_ipv6(kinds[k]);
    }
    server_stop();
    return 0;
}
