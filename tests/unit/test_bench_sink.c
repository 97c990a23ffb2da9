/* The bench harness' counting HTTP sink (bench/sink_server.h): a real forked sink on loopback,
 * fed by hand-written requests: stamped, duplicated, pipelined, split across writes, header
 * names in other cases, and bad stamps (missing, not digits, beyond the bitmap); stamps in JSON
 * bodies (a structured event, a Dapr delivery) and the Dapr app probes; then the load
 * generator's Dapr publish and bulk requests, counted by a sink. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/loadgen.h"
#include "bench/procs.h"
#include "bench/sink_server.h"
#include "tests/test.h"

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static int send_str(int fd, const char *s)
{
    size_t n = strlen(s);
    return send(fd, s, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* Reads until `want` status lines `status` ("HTTP/1.1 202") arrived; returns what was read and
 * how many arrived in `*count` (the last answer complete for the short ones these tests expect). */
static const char *read_text(int fd, const char *status, int want, int *count)
{
    static char buf[8192];
    size_t len = 0;
    int got = 0;
    buf[0] = 0;
    while (got < want) {
        ssize_t r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = 0;
        got = 0;
        for (const char *p = buf; (p = strstr(p, status)) != NULL; p += strlen(status))
            got++;
    }
    if (count != NULL)
        *count = got;
    return buf;
}

/* Reads until `want` 202 answers arrived; returns how many did. */
static int read_answers(int fd, int want)
{
    int got;
    read_text(fd, "HTTP/1.1 202", want, &got);
    return got;
}

static void request(char *out, size_t cap, const char *seq_hdr, const char *seq, uint64_t ts)
{
    snprintf(out, cap,
             "POST / HTTP/1.1\r\nHost: x\r\nce-id: 1\r\nCe-RcbTs: %llu\r\n%s %s\r\n"
             "Content-Length: 5\r\n\r\nhello",
             (unsigned long long)ts, seq_hdr, seq);
}

static void post_json(int fd, const char *body)
{
    char req[1024];
    snprintf(req, sizeof(req),
             "POST /orders HTTP/1.1\r\nContent-Type: application/cloudevents+json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    ASSERT_EQ(send_str(fd, req), 0);
}

/* Stamps in JSON bodies: structured extensions, a Dapr envelope's data (spaces after colons),
 * a body without stamps (bad); Dapr's GET /dapr/subscribe answered [] and not counted. */
static void json_bodies(void)
{
    rc_bench_csink_t s;
    ASSERT_EQ(rc_bench_csink_start(&s, 100), 0);
    int fd = connect_to(s.port);
    ASSERT_GE(fd, 0);
    char body[512];
    uint64_t ts = rc_lg_now_ns();
    snprintf(body, sizeof(body), "{\"specversion\":\"1.0\",\"rcbts\":\"%llu\",\"rcbseq\":\"3\"}",
             (unsigned long long)ts);
    post_json(fd, body);
    snprintf(body, sizeof(body),
             "{\"id\":\"x\",\"topic\":\"orders\",\"data\": {\"rcbts\": \"%llu\", \"rcbseq\": "
             "\"4\",\"d\":{\"p\":\"xx\"}}}",
             (unsigned long long)ts);
    post_json(fd, body);
    post_json(fd, "{\"specversion\":\"1.0\",\"rcbseq\":\"5\"}"); /* no rcbts */
    ASSERT_EQ(read_answers(fd, 3), 3);
    ASSERT_EQ(send_str(fd, "GET /dapr/subscribe HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    const char *a = read_text(fd, "HTTP/1.1 200", 1, NULL);
    ASSERT(strstr(a, "Content-Length: 2\r\n\r\n[]") != NULL);
    ASSERT_EQ(send_str(fd, "GET /dapr/config HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    ASSERT(strstr(read_text(fd, "HTTP/1.1 404", 1, NULL), "HTTP/1.1 404") != NULL);
    close(fd);
    rc_bench_csink_stop(&s);
    ASSERT_U64_EQ(s.stats->unique, 2);
    ASSERT_U64_EQ(s.stats->received, 3);
    ASSERT_U64_EQ(s.stats->bad, 1);
    ASSERT_EQ(rc_bench_csink_seen(&s, 3), 1);
    ASSERT_EQ(rc_bench_csink_seen(&s, 4), 1);
    ASSERT_EQ(rc_bench_csink_seen(&s, 5), 0);
    rc_bench_csink_free(&s);
}

/* The load generator's Dapr requests framed and stamped as the sink reads them: every publish
 * request is one event; a bulk request's body carries its first entry's stamps first. */
static void dapr_load(rc_lg_proto_t proto, int batch)
{
    rc_bench_csink_t s;
    ASSERT_EQ(rc_bench_csink_start(&s, 1u << 20), 0);
    rc_lg_opts_t o;
    rc_lg_opts_init(&o);
    o.proto = proto;
    o.port = s.port;
    o.path = "/v1.0/publish/pubsub/orders";
    o.conns = 2;
    o.depth = 4;
    o.seconds = 0.1;
    o.batch = batch;
    rc_lg_result_t r;
    char err[200];
    ASSERT_EQ(rc_lg_run(&o, NULL, &r, err, sizeof(err)), 0);
    ASSERT_GT(r.requests, 0);
    ASSERT_U64_EQ(r.errors, 0);
    ASSERT_U64_EQ(r.events_acked, r.requests * (uint64_t)batch);
    rc_bench_csink_stop(&s);
    ASSERT_U64_EQ(s.stats->bad, 0);
    ASSERT_U64_EQ(s.stats->dups, 0);
    ASSERT_U64_EQ(s.stats->unique, r.requests);
    for (uint64_t q = 0; q < r.events_acked; q++)
        ASSERT_EQ(rc_bench_csink_seen(&s, q), q % (uint64_t)batch == 0);
    free(r.acked);
    rc_bench_csink_free(&s);
}

int main(void)
{
    rc_bench_procs_install();
    rc_bench_csink_t s;
    ASSERT_EQ(rc_bench_csink_start(&s, 1000), 0);
    ASSERT_GT(s.port, 0);
    ASSERT_GT(s.pid, 0);
    ASSERT_U64_EQ(s.stats->seen_cap, 1000);
    int fd = connect_to(s.port);
    ASSERT_GE(fd, 0);

    char a[512], b[512], both[1024];
    uint64_t ts = rc_lg_now_ns();
    /* One stamped event, then the same sequence number again: a duplicate. */
    request(a, sizeof(a), "ce-rcbseq:", "5", ts);
    ASSERT_EQ(send_str(fd, a), 0);
    ASSERT_EQ(read_answers(fd, 1), 1);
    ASSERT_EQ(send_str(fd, a), 0);
    ASSERT_EQ(read_answers(fd, 1), 1);
    /* Two pipelined in one write; header name in upper case, no space after the colon. */
    request(a, sizeof(a), "CE-RCBSEQ:", "6", ts);
    request(b, sizeof(b), "ce-rcbseq:\t", "7", ts);
    snprintf(both, sizeof(both), "%s%s", a, b);
    ASSERT_EQ(send_str(fd, both), 0);
    ASSERT_EQ(read_answers(fd, 2), 2);
    /* One request split inside its headers and inside its body. */
    request(a, sizeof(a), "ce-rcbseq:", "8", ts);
    size_t n = strlen(a);
    char part[512];
    memcpy(part, a, 20);
    part[20] = 0;
    ASSERT_EQ(send_str(fd, part), 0);
    struct timespec pause = {0, 20000000};
    nanosleep(&pause, NULL);
    memcpy(part, a + 20, n - 22);
    part[n - 22] = 0;
    ASSERT_EQ(send_str(fd, part), 0);
    nanosleep(&pause, NULL);
    ASSERT_EQ(send_str(fd, a + n - 2), 0);
    ASSERT_EQ(read_answers(fd, 1), 1);
    /* Bad stamps: answered, counted as bad, not as events. */
    request(a, sizeof(a), "ce-rcbseq:", "abc", ts);
    ASSERT_EQ(send_str(fd, a), 0);
    request(a, sizeof(a), "ce-rcbseq:", "1000", ts); /* beyond the bitmap */
    ASSERT_EQ(send_str(fd, a), 0);
    request(a, sizeof(a), "ce-other:", "9", ts); /* no rcbseq header */
    ASSERT_EQ(send_str(fd, a), 0);
    ASSERT_EQ(send_str(fd, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 0);
    ASSERT_EQ(read_answers(fd, 4), 4);

    /* The counters are readable while the sink runs. */
    ASSERT_U64_EQ(atomic_load(&s.stats->unique), 4);
    ASSERT_U64_EQ(atomic_load(&s.stats->received), 9);
    close(fd);
    pid_t pid = s.pid;
    rc_bench_csink_stop(&s);
    ASSERT_EQ(rc_bench_alive(pid), 0);
    ASSERT_EQ(kill(pid, 0), -1);
    /* Everything else once it stopped. */
    ASSERT_U64_EQ(s.stats->dups, 1);
    ASSERT_U64_EQ(s.stats->bad, 4);
    ASSERT_U64_EQ(s.stats->lat.count, 5); /* 4 events + the duplicate */
    ASSERT(s.stats->lat.max < 60ull * 1000000000ull);
    ASSERT_GT(atomic_load(&s.stats->last_rx_ns), ts);
    for (uint64_t q = 0; q < 12; q++)
        ASSERT_EQ(rc_bench_csink_seen(&s, q), q >= 5 && q <= 8);
    ASSERT_EQ(rc_bench_csink_seen(&s, 5000), 0);
    rc_bench_csink_free(&s);
    ASSERT(s.stats == NULL);
    json_bodies();
    dapr_load(RC_LG_DAPR_PUBLISH, 1);
    dapr_load(RC_LG_DAPR_BULK, 10);
    printf("bench sink: all checks passed\n");
    return 0;
}
