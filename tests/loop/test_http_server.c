/* Loop test of net/http/http_server: a real server on loopback in a libuv loop on its own
 * thread, a blocking socket client in the main thread. Covers keep-alive, pipelining, the
 * per-request context, chunked bodies, 100-continue, HTTP/1.0, Host, limits, timeouts, the
 * connection cap, the body memory budget, the file-descriptor reserve and draining, and ends by
 * asserting the loop closes with no handle left. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "net/http/http_server.h"
#include "tests/test.h"

static uv_loop_t loop;
static uv_async_t cmd_async;
static rc_http_server_t *srv;
static rc_http_server_t *srv2; /* default timeouts: for the flood test, which must not time out */
static rc_http_server_t *srv3; /* a small body memory budget */
static rc_http_server_t *srv4; /* every descriptor in the reserve: each connection is refused */
static rc_http_server_shared_t budget, fds;
static atomic_int cmd;     /* 1 drain, 2 close */
static atomic_int drained; /* drain callback ran */
static atomic_int rejected_408, rejected_any;
static int port, port2, port3, port4;

static const int ctx_marker = 1; /* its address is the context on_headers leaves for /ctx/set */

static int path_is(const rc_http_server_request_t *req, const char *p)
{
    return req->path_len == strlen(p) && memcmp(req->path, p, req->path_len) == 0;
}

static void on_headers(void *data, const rc_http_server_request_t *req,
                       rc_http_server_response_t *res)
{
    if (path_is(req, "/reject"))
        rc_http_response_error(res, 404, "rejected at headers");
    if (path_is(req, "/ctx/set")) {
        res->ctx = &ctx_marker;
        res->ctx_tag = 42;
    }
}

static void on_request(void *data, const rc_http_server_request_t *req,
                       rc_http_server_response_t *res)
{
    if (req->path_len > 5 && memcmp(req->path, "/ctx/", 5) == 0) {
        const char *what = req->ctx == &ctx_marker ? "marker" : req->ctx == NULL ? "null" : "other";
        int n = snprintf(res->scratch, sizeof(res->scratch), "ctx=%s tag=%u len=%zu", what,
                         (unsigned)req->ctx_tag, req->body_len);
        res->status = 200;
        res->body = res->scratch;
        res->body_len = (size_t)n;
        return;
    }
    int n = snprintf(res->scratch, sizeof(res->scratch), "%s %.*s len=%zu body=%.*s",
                     req->method_name, (int)req->path_len, req->path, req->body_len,
                     (int)(req->body_len > 40 ? 40 : req->body_len), req->body);
    res->status = 200;
    if (req->path_len == 11 && memcmp(req->path, "/status/", 8) == 0)
        res->status = atoi(req->path + 8); /* path is not NUL-terminated: 3 digits, then ' ' */
    res->content_type = "text/plain";
    res->body = res->scratch;
    res->body_len = (size_t)n;
}

static void on_rejected(void *data, int status, const char *reason)
{
    atomic_fetch_add(&rejected_any, 1);
    if (status == 408)
        atomic_fetch_add(&rejected_408, 1);
}

static void on_drained(rc_http_server_t *s, void *arg)
{
    atomic_store(&drained, 1);
}

static void on_cmd(uv_async_t *a)
{
    int c = atomic_exchange(&cmd, 0);
    if (c == 1) {
        rc_http_server_drain(srv, on_drained, NULL);
    } else if (c == 2) {
        rc_http_server_close(srv, NULL, NULL);
        rc_http_server_close(srv2, NULL, NULL);
        rc_http_server_close(srv3, NULL, NULL);
        rc_http_server_close(srv4, NULL, NULL);
        uv_close((uv_handle_t *)&cmd_async, NULL);
    }
}

static void server_thread(void *arg)
{
    uv_run(&loop, UV_RUN_DEFAULT);
}

static void send_cmd(int c)
{
    atomic_store(&cmd, c);
    uv_async_send(&cmd_async);
}

/* ---- client helpers ---------------------------------------------------------------------- */

typedef struct {
    int fd;
    char buf[65536];
    size_t len;
} client_t;

static void client_open_port(client_t *c, int p);

static void client_open(client_t *c)
{
    client_open_port(c, port);
}

static void client_open_port(client_t *c, int p)
{
    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(c->fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ASSERT_EQ(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
}

static void client_send(client_t *c, const char *s)
{
    size_t n = strlen(s);
    ASSERT_EQ(send(c->fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads until `len` buffered bytes are available or EOF; returns 0 on EOF/timeout. */
static int client_fill(client_t *c)
{
    if (c->len == sizeof(c->buf))
        return 0;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (n <= 0)
        return 0;
    c->len += (size_t)n;
    return 1;
}

/* Reads one response; returns its status and copies its body into `body` (NUL-terminated). */
static int client_response(client_t *c, char *body, size_t cap, int *closes)
{
    char *end;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
        if (!client_fill(c))
            RC_TEST_FAIL("no complete response head (have %zu bytes)", c->len);
    }
    size_t head = (size_t)(end - c->buf) + 4;
    int status = atoi(c->buf + 9);
    size_t clen = 0;
    char *cl = memmem(c->buf, head, "Content-Length: ", 16);
    if (cl != NULL)
        clen = strtoul(cl + 16, NULL, 10);
    if (closes != NULL)
        *closes = memmem(c->buf, head, "Connection: close", 17) != NULL;
    while (c->len < head + clen) {
        if (!client_fill(c))
            RC_TEST_FAIL("response body truncated");
    }
    if (body != NULL) {
        size_t n = clen < cap - 1 ? clen : cap - 1;
        memcpy(body, c->buf + head, n);
        body[n] = '\0';
    }
    memmove(c->buf, c->buf + head + clen, c->len - head - clen);
    c->len -= head + clen;
    return status;
}

/* Returns 1 when the server closed the connection (EOF or reset) within 5 s. */
static int client_sees_eof(client_t *c)
{
    char tmp[256];
    for (;;) {
        ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 1;
        if (n < 0)
            return 0;
    }
}

static void client_close(client_t *c)
{
    close(c->fd);
}

/* Whether the next response's head (not consumed) holds `line`. */
static int client_head_has(client_t *c, const char *line)
{
    char *end;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
        if (!client_fill(c))
            RC_TEST_FAIL("no complete response head (have %zu bytes)", c->len);
    }
    return memmem(c->buf, (size_t)(end - c->buf) + 2, line, strlen(line)) != NULL;
}

/* Waits up to 2 s for a counter the loop thread updates to reach `want`. */
static uint64_t wait_u64(_Atomic uint64_t *v, uint64_t want)
{
    for (int i = 0; i < 400 && atomic_load(v) != want; i++)
        usleep(5000);
    return atomic_load(v);
}

/* ---- tests ------------------------------------------------------------------------------- */

static client_t cl;
static char body[4096];

static void test_keepalive_and_pipelining(void)
{
    client_open(&cl);
    client_send(&cl, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    ASSERT_STR_EQ(body, "GET /a len=0 body=");
    client_send(&cl, "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                     "POST /c?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                     "DELETE /d HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    ASSERT_STR_EQ(body, "POST /b len=5 body=hello");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    ASSERT_STR_EQ(body, "POST /c len=3 body=abc");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    ASSERT_STR_EQ(body, "DELETE /d len=0 body=");
    /* 204 and 304 go without Content-Length and without content (RFC 9110), so the next
     * pipelined response still parses; other statuses carry their reason phrase. */
    client_send(&cl, "GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /status/304 HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /status/301 HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    for (int code = 204; code <= 304; code += 100) {
        char *end;
        while ((end = memmem(cl.buf, cl.len, "\r\n\r\n", 4)) == NULL)
            ASSERT(client_fill(&cl));
        ASSERT(memmem(cl.buf, (size_t)(end - cl.buf), "Content-Length", 14) == NULL);
        ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), code);
        ASSERT_STR_EQ(body, "");
    }
    while (memmem(cl.buf, cl.len, "\r\n\r\n", 4) == NULL)
        ASSERT(client_fill(&cl));
    ASSERT_EQ(memcmp(cl.buf, "HTTP/1.1 301 Moved Permanently\r\n", 32), 0);
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 301);
    ASSERT_STR_EQ(body, "GET /status/301 len=0 body=");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    ASSERT_STR_EQ(body, "GET /a len=0 body=");
    /* A body split over several writes is assembled. */
    client_send(&cl, "POST /split HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234");
    usleep(20000);
    client_send(&cl, "56789");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    ASSERT_STR_EQ(body, "POST /split len=10 body=0123456789");
    client_close(&cl);
}

/* What on_headers leaves in res->ctx and res->ctx_tag comes back to on_request with the same
 * request, also when its body arrives in a later read, and never leaks into the next request. */
static void test_request_context(void)
{
    client_open(&cl);
    client_send(&cl, "POST /ctx/set HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                     "GET /ctx/none HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    ASSERT_STR_EQ(body, "ctx=marker tag=42 len=3");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    ASSERT_STR_EQ(body, "ctx=null tag=0 len=0");
    client_send(&cl, "POST /ctx/set HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n");
    usleep(20000);
    client_send(&cl, "wxyz");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    ASSERT_STR_EQ(body, "ctx=marker tag=42 len=4");
    client_send(&cl, "POST /ctx/none HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    ASSERT_STR_EQ(body, "ctx=null tag=0 len=1");
    client_close(&cl);
}

/* A client that pipelines megabytes of requests before reading any answer: the server stops
 * reading while too much output is queued and resumes as it drains; nothing is lost or
 * reordered. */
#define FLOOD_N    10000
#define FLOOD_PATH 900

static void *flood_sender(void *arg)
{
    client_t *c = arg;
    static char req[FLOOD_PATH + 64];
    for (int i = 0; i < FLOOD_N; i++) {
        int n = snprintf(req, sizeof(req), "GET /%06d", i);
        memset(req + n, 'p', FLOOD_PATH - (size_t)n);
        n = FLOOD_PATH;
        n += snprintf(req + n, sizeof(req) - (size_t)n, " HTTP/1.1\r\nHost: x\r\n\r\n");
        if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n)
            return (void *)1;
    }
    return NULL;
}

static void test_pipelining_backpressure(void)
{
    client_t *c = malloc(sizeof(*c));
    ASSERT(c != NULL);
    client_open_port(c, port2);
    struct timeval tv = {20, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, flood_sender, c), 0);
    usleep(300000); /* let output pile up unread */
    char expect[16];
    for (int i = 0; i < FLOOD_N; i++) {
        ASSERT_EQ(client_response(c, body, sizeof(body), NULL), 200);
        snprintf(expect, sizeof(expect), "GET /%06d", i);
        if (strncmp(body, expect, strlen(expect)) != 0)
            RC_TEST_FAIL("response %d out of order: %.20s", i, body);
    }
    void *ret = NULL;
    ASSERT_EQ(pthread_join(t, &ret), 0);
    ASSERT(ret == NULL);
    client_close(c);
    free(c);
}

static void test_chunked_and_continue(void)
{
    client_open(&cl);
    client_send(&cl, "POST /ch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "4\r\nWiki\r\n5\r\npedia\r\n");
    usleep(20000);
    client_send(&cl, "0\r\nTrailer-Field: x\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    ASSERT_STR_EQ(body, "POST /ch len=9 body=Wikipedia");

    client_send(&cl, "POST /cont HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     "Content-Length: 4\r\n\r\n");
    ASSERT_EQ(client_response(&cl, NULL, 0, NULL), 100);
    client_send(&cl, "data");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    ASSERT_STR_EQ(body, "POST /cont len=4 body=data");

    /* Refused at the headers: the final status comes instead of 100, and the connection
     * closes since the client may still send the body. */
    client_send(&cl, "POST /reject HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     "Content-Length: 4\r\n\r\n");
    int closes = 0;
    ASSERT_EQ(client_response(&cl, body, sizeof(body), &closes), 404);
    ASSERT(closes);
    ASSERT(client_sees_eof(&cl));
    client_close(&cl);

    /* Refused at the headers with a known small body: the body is skipped, keep-alive holds. */
    client_open(&cl);
    client_send(&cl, "POST /reject HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd"
                     "GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), &closes), 404);
    ASSERT(!closes);
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    ASSERT_STR_EQ(body, "GET /after len=0 body=");
    client_send(
        &cl, "POST /x HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nContent-Length: 1\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 417);
    client_close(&cl);
}

static void test_http10(void)
{
    int closes = 0;
    client_open(&cl);
    client_send(&cl, "GET /old HTTP/1.0\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), &closes), 200);
    ASSERT(closes);
    ASSERT(client_sees_eof(&cl));
    client_close(&cl);
    client_open(&cl);
    client_send(&cl, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), &closes), 200);
    ASSERT(!closes);
    ASSERT(memmem(cl.buf, cl.len, "Connection", 10) == NULL);
    client_send(&cl, "GET /again HTTP/1.0\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), &closes), 200);
    ASSERT_STR_EQ(body, "GET /again len=0 body=");
    client_close(&cl);
}

static void test_limits(void)
{
    client_open(&cl);
    client_send(&cl, "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 413);
    ASSERT(strstr(body, "\"error\"") != NULL);
    ASSERT(client_sees_eof(&cl));
    client_close(&cl);

    /* A chunked body that grows past the limit. */
    client_open(&cl);
    client_send(&cl, "POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[700];
    memset(chunk, 'a', sizeof(chunk));
    char line[16];
    for (int i = 0; i < 2; i++) {
        snprintf(line, sizeof(line), "%zx\r\n", sizeof(chunk));
        client_send(&cl, line);
        ASSERT_EQ(send(cl.fd, chunk, sizeof(chunk), MSG_NOSIGNAL), (ssize_t)sizeof(chunk));
        client_send(&cl, "\r\n");
    }
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 413);
    client_close(&cl);

    char big[3000];
    memset(big, 0, sizeof(big));
    strcpy(big, "GET / HTTP/1.1\r\nX-Big: ");
    memset(big + strlen(big), 'b', 1500);
    strcat(big, "\r\n\r\n");
    client_open(&cl);
    client_send(&cl, big);
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 431);
    client_close(&cl);

    memset(big, 0, sizeof(big));
    strcpy(big, "GET /");
    memset(big + 5, 'u', 1500);
    strcat(big, " HTTP/1.1\r\n\r\n");
    client_open(&cl);
    client_send(&cl, big);
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 414);
    client_close(&cl);

    client_open(&cl);
    client_send(&cl, "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 400);
    ASSERT(strstr(body, "malformed HTTP request") != NULL);
    client_close(&cl);

    client_open(&cl);
    client_send(&cl, "G@T / HTTP/1.1\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 400);
    client_close(&cl);
}

/* RFC 9112 3.2: 400 for an HTTP/1.1 request without Host or with two; HTTP/1.0 needs none. */
static void test_host(void)
{
    int closes = 0;
    client_open(&cl);
    client_send(&cl, "GET /nohost HTTP/1.1\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), &closes), 400);
    ASSERT(strstr(body, "without a Host header") != NULL);
    ASSERT(closes);
    ASSERT(client_sees_eof(&cl));
    client_close(&cl);

    client_open(&cl);
    client_send(&cl, "POST /twohosts HTTP/1.1\r\nHost: a\r\nhost: b\r\nContent-Length: 1\r\n\r\nx");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 400);
    ASSERT(strstr(body, "more than one Host header") != NULL);
    client_close(&cl);

    /* An empty Host is allowed (a target without authority), and so is HTTP/1.0 without one. */
    client_open(&cl);
    client_send(&cl, "GET /empty HTTP/1.1\r\nHost:\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    client_send(&cl, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    ASSERT_STR_EQ(body, "GET /old len=0 body=");
    client_close(&cl);
}

/* srv3: bodies up to 4000 bytes, 6000 bytes of body memory, Retry-After 7. */
static void test_body_budget(void)
{
    client_t a, b, c;
    int closes = 0;
    /* A stalls mid-body: its whole declared body is reserved at the headers. */
    client_open_port(&a, port3);
    client_send(&a, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\nab");
    ASSERT_U64_EQ(wait_u64(&budget.body_memory, 4000), 4000);

    /* B does not fit: 503 with Retry-After before its body is read. Its length is known, so
     * the body it sends anyway is skipped and the connection serves the next request. */
    client_open_port(&b, port3);
    client_send(&b, "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n");
    ASSERT(client_head_has(&b, "Retry-After: 7\r\n"));
    ASSERT_EQ(client_response(&b, body, sizeof(body), &closes), 503);
    ASSERT(strstr(body, "request bodies in memory") != NULL);
    ASSERT(!closes);
    char filler[4000];
    memset(filler, 'f', sizeof(filler));
    ASSERT_EQ(send(b.fd, filler, sizeof(filler), MSG_NOSIGNAL), (ssize_t)sizeof(filler));
    client_send(&b, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(client_response(&b, body, sizeof(body), NULL), 200);
    ASSERT_STR_EQ(body, "GET /after len=0 body=");

    /* What fits is served, also a body copied over two reads; afterwards it holds nothing. */
    client_open_port(&c, port3);
    client_send(&c, "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
    usleep(20000);
    ASSERT_EQ(send(c.fd, filler, 1000, MSG_NOSIGNAL), 1000);
    ASSERT_EQ(client_response(&c, body, sizeof(body), NULL), 200);
    ASSERT(strncmp(body, "POST /c len=1000 body=ffff", 26) == 0);
    ASSERT_U64_EQ(wait_u64(&budget.body_memory, 4000), 4000);

    /* A client waiting for 100 Continue gets the 503 instead, and the connection closes. */
    client_send(&c, "POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                    "Content-Length: 3000\r\n\r\n");
    ASSERT_EQ(client_response(&c, body, sizeof(body), &closes), 503);
    ASSERT(closes);
    ASSERT(client_sees_eof(&c));
    client_close(&c);

    /* A chunked body is counted as its buffer grows (4 KiB at first): past the budget it gets
     * 503 in the middle, and the connection closes. */
    client_open_port(&c, port3);
    client_send(&c, "POST /ch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "10\r\n0123456789abcdef\r\n");
    ASSERT(client_head_has(&c, "Retry-After: 7\r\n"));
    ASSERT_EQ(client_response(&c, body, sizeof(body), &closes), 503);
    ASSERT(closes);
    client_close(&c);
    ASSERT_U64_EQ(wait_u64(&budget.body_memory, 4000), 4000);

    /* A closing connection gives its reservation back: a large body fits again. */
    client_close(&a);
    ASSERT_U64_EQ(wait_u64(&budget.body_memory, 0), 0);
    client_send(&b, "POST /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                    "Content-Length: 4000\r\n\r\n");
    ASSERT_EQ(client_response(&b, NULL, 0, NULL), 100);
    ASSERT_EQ(send(b.fd, filler, sizeof(filler), MSG_NOSIGNAL), (ssize_t)sizeof(filler));
    ASSERT_EQ(client_response(&b, body, sizeof(body), NULL), 200);
    ASSERT(strncmp(body, "POST /f len=4000", 16) == 0);
    client_close(&b);
    ASSERT_U64_EQ(wait_u64(&budget.body_memory, 0), 0);
    ASSERT_U64_EQ(atomic_load(&budget.body_refused.total), 3);
}

/* srv4 keeps every descriptor in reserve: a connection gets 503 with Retry-After and is closed
 * at once (no lingering, which would hold the descriptor). */
static void test_fd_reserve(void)
{
    for (int i = 0; i < 3; i++) {
        client_t c;
        client_open_port(&c, port4);
        if (i == 1)
            client_send(&c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n"); /* sent before the accept */
        int closes = 0;
        ASSERT(client_head_has(&c, "Retry-After: 1\r\n"));
        ASSERT_EQ(client_response(&c, body, sizeof(body), &closes), 503);
        ASSERT(strstr(body, "out of file descriptors") != NULL);
        ASSERT(closes);
        ASSERT(client_sees_eof(&c));
        client_close(&c);
    }
    ASSERT_U64_EQ(wait_u64(&fds.fd_refused.total, 3), 3);
    for (int i = 0; i < 400 && atomic_load(&fds.connections) != 0; i++)
        usleep(5000);
    ASSERT_EQ(atomic_load(&fds.connections), 0);
}

static void test_timeouts(void)
{
    int before = atomic_load(&rejected_408);
    client_open(&cl);
    client_send(&cl, "GET /slow HTTP/1.1\r\nHost: x\r\n"); /* never finishes the headers */
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 408);
    ASSERT(strstr(body, "headers") != NULL);
    ASSERT(client_sees_eof(&cl));
    client_close(&cl);
    ASSERT_EQ(atomic_load(&rejected_408), before + 1);

    /* Slowloris: a header byte every 50 ms keeps the connection busy but not alive. */
    client_open(&cl);
    client_send(&cl, "GET /slow HTTP/1.1\r\n");
    int got = 0;
    for (int i = 0; i < 40 && !got; i++) {
        if (send(cl.fd, "X-A: b\r\n", 8, MSG_NOSIGNAL) != 8)
            break;
        struct pollfd p = {cl.fd, POLLIN, 0};
        got = poll(&p, 1, 50) > 0;
    }
    ASSERT(got);
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 408);
    client_close(&cl);

    client_open(&cl);
    client_send(&cl, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 408);
    ASSERT(strstr(body, "body") != NULL);
    client_close(&cl);

    /* Idle keep-alive connections are closed silently. */
    client_open(&cl);
    client_send(&cl, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(client_response(&cl, body, sizeof(body), NULL), 200);
    ASSERT(client_sees_eof(&cl));
    ASSERT_EQ(cl.len, 0);
    client_close(&cl);
}

static void test_connection_cap(void)
{
    client_t c[4];
    for (int i = 0; i < 3; i++) {
        client_open(&c[i]);
        client_send(&c[i], "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
        ASSERT_EQ(client_response(&c[i], body, sizeof(body), NULL), 200);
    }
    client_open(&c[3]);
    ASSERT_EQ(client_response(&c[3], body, sizeof(body), NULL), 503);
    ASSERT(strstr(body, "too many connections") != NULL);
    for (int i = 0; i < 4; i++)
        client_close(&c[i]);
}

static void test_drain(void)
{
    client_t idle, busy;
    client_open(&idle);
    client_send(&idle, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(client_response(&idle, body, sizeof(body), NULL), 200);
    client_open(&busy);
    client_send(&busy, "POST /inflight HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab");
    usleep(50000);
    send_cmd(1);
    for (int i = 0; i < 100 && atomic_load(&cmd) != 0; i++)
        usleep(5000);
    usleep(20000);
    /* The request in flight completes, with Connection: close. */
    client_send(&busy, "cd");
    int closes = 0;
    ASSERT_EQ(client_response(&busy, body, sizeof(body), &closes), 200);
    ASSERT_STR_EQ(body, "POST /inflight len=4 body=abcd");
    ASSERT(closes);
    ASSERT(client_sees_eof(&busy));
    /* A new request on an idle connection gets 503. */
    client_send(&idle, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(client_response(&idle, body, sizeof(body), &closes), 503);
    ASSERT(closes);
    client_close(&idle);
    client_close(&busy);
    /* The listener is gone. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ASSERT_NE(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    close(fd);
    for (int i = 0; i < 400 && !atomic_load(&drained); i++)
        usleep(5000);
    ASSERT(atomic_load(&drained));
}

/* What the admin API's writes without a token are limited to (request.peer_loopback). */
static void test_loopback_addresses(void)
{
    static const struct {
        const char *addr;
        int loopback;
    } cases[] = {
        {"127.0.0.1", 1}, {"127.255.0.9", 1},        {"::1", 1},     {"::ffff:127.0.0.2", 1},
        {"10.0.0.1", 0},  {"128.0.0.1", 0},          {"0.0.0.0", 0}, {"::", 0},
        {"::2", 0},       {"::ffff:192.168.1.1", 0}, {"fe80::1", 0}, {"126.255.255.255", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        if (strchr(cases[i].addr, ':') != NULL) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            a->sin6_family = AF_INET6;
            ASSERT_EQ(inet_pton(AF_INET6, cases[i].addr, &a->sin6_addr), 1);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            a->sin_family = AF_INET;
            ASSERT_EQ(inet_pton(AF_INET, cases[i].addr, &a->sin_addr), 1);
        }
        if (rc_http_addr_is_loopback((struct sockaddr *)&ss) != cases[i].loopback)
            RC_TEST_FAIL("%s: loopback should be %d", cases[i].addr, cases[i].loopback);
    }
}

int main(void)
{
    test_loopback_addresses();
    ASSERT_EQ(uv_loop_init(&loop), 0);
    ASSERT_EQ(uv_async_init(&loop, &cmd_async, on_cmd), 0);
    rc_http_server_options_t o;
    memset(&o, 0, sizeof(o));
    o.host = "127.0.0.1";
    o.port = 0;
    o.limits.max_body_bytes = 1024;
    o.limits.max_header_bytes = 1024;
    o.limits.max_connections = 3;
    o.limits.header_timeout_ms = 200;
    o.limits.body_timeout_ms = 200;
    o.limits.idle_timeout_ms = 300;
    o.limits.drain_timeout_ms = 2000;
    o.handler.on_headers = on_headers;
    o.handler.on_request = on_request;
    o.handler.on_rejected = on_rejected;
    ASSERT_EQ(rc_http_server_create(&loop, &o, &srv), 0);
    port = rc_http_server_port(srv);
    ASSERT_GT(port, 0);
    rc_http_server_options_t o2;
    memset(&o2, 0, sizeof(o2));
    o2.host = "127.0.0.1";
    o2.handler = o.handler;
    ASSERT_EQ(rc_http_server_create(&loop, &o2, &srv2), 0);
    port2 = rc_http_server_port(srv2);
    rc_http_server_options_t o3 = o2;
    o3.limits.max_body_bytes = 4000;
    o3.limits.max_body_memory = 6000;
    o3.limits.retry_after_s = 7;
    o3.shared = &budget;
    ASSERT_EQ(rc_http_server_create(&loop, &o3, &srv3), 0);
    port3 = rc_http_server_port(srv3);
    struct rlimit rl;
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rc_http_server_options_t o4 = o2;
    o4.limits.fd_reserve = rl.rlim_cur < UINT32_MAX ? (uint32_t)rl.rlim_cur : UINT32_MAX;
    o4.shared = &fds;
    ASSERT_EQ(rc_http_server_create(&loop, &o4, &srv4), 0);
    port4 = rc_http_server_port(srv4);
    uv_thread_t t;
    ASSERT_EQ(uv_thread_create(&t, server_thread, NULL), 0);

    test_keepalive_and_pipelining();
    test_request_context();
    test_pipelining_backpressure();
    test_chunked_and_continue();
    test_http10();
    test_host();
    test_body_budget();
    if (rl.rlim_cur < UINT32_MAX)
        test_fd_reserve();
    else
        printf("skipped test_fd_reserve: RLIMIT_NOFILE is unlimited\n");
    test_limits();
    test_timeouts();
    usleep(400000); /* let closed connections leave before counting against the cap */
    test_connection_cap();
    usleep(400000);
    test_drain();

    send_cmd(2);
    ASSERT_EQ(uv_thread_join(&t), 0);
    ASSERT_EQ(uv_loop_close(&loop), 0); /* every handle was closed */
    ASSERT_GT(atomic_load(&rejected_any), 5);
    printf("ok\n");
    return 0;
}
