/* ringcast-bench ingest: accepted events per second and latency percentiles of a real
 * `ringcast serve` (started as a child on free loopback ports, with its own ring prefix)
 * receiving binary-mode CloudEvents (100 bytes of JSON data) or batches of them over keep-alive
 * connections, each carrying one request at a time. The load comes from the delivery HTTP
 * client (net/http_client.h). For the side-by-side with nginx see scripts/bench-ingress.sh. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "net/http_client.h"
#include "shm/proc.h"
#include "shm/ring.h"

#define DATA                                                                                       \
    "{\"order\":\"A-1000001\",\"customer\":\"c-42\",\"amount\":1999,\"currency\":\"EUR\","         \
    "\"items\":3,\"x\":\"abcdefghijklm\"}"
#define MAX_SAMPLES (8u << 20)

typedef struct {
    rc_http_client_t *client;
    rc_http_request_t req;
    struct iovec body;
    int running;
    long done, errors;
    int first_error;
    uint64_t *lat_ns;
    size_t nlat;
} load_t;

typedef struct {
    load_t *load;
    uint64_t start;
} slot_t;

static void on_response(int result, const rc_http_response_t *resp, void *ud)
{
    slot_t *s = ud;
    load_t *l = s->load;
    (void)resp;
    uint64_t t = rc_now_ns();
    if (l->nlat < MAX_SAMPLES)
        l->lat_ns[l->nlat++] = t - s->start;
    l->done++;
    if (result != 202) {
        l->errors++;
        if (l->first_error == 0)
            l->first_error = result;
    }
    if (!l->running)
        return;
    s->start = rc_now_ns();
    if (rc_http_client_request(l->client, &l->req, on_response, s) != 0)
        l->errors++;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1));
    return (double)v[i] / 1000.0;
}

/* Starts `ringcast serve` and reads its "listening ingress=HOST:PORT ..." line. */
static pid_t start_broker(const char *bin, const char *config, const char *prefix, int loops,
                          int *port)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        char nloops[16];
        snprintf(nloops, sizeof(nloops), "%d", loops);
        execl(bin, bin, "serve", "--config", config, "--listen", "127.0.0.1:0", "--admin",
              "127.0.0.1:0", "--ring-prefix", prefix, "--loops", nloops, "--log-level", "warn",
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[256];
    size_t len = 0;
    struct pollfd p = {fds[0], POLLIN, 0};
    while (len < sizeof(line) - 1 && memchr(line, '\n', len) == NULL) {
        if (poll(&p, 1, 10000) <= 0)
            break;
        ssize_t r = read(fds[0], line + len, sizeof(line) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fds[0]);
    line[len] = '\0';
    char *colon = strstr(line, "ingress=");
    colon = colon ? strchr(colon, ':') : NULL;
    if (colon == NULL) {
        fprintf(stderr, "ingest: broker did not start (%s)\n", line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    *port = atoi(colon + 1);
    return pid;
}

static int stop_broker(pid_t pid)
{
    kill(pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: ringcast-bench ingest [--seconds S] [--conns C] [--batch N] [--loops L]\n"
                 "                             [--ringcast PATH]\n\n"
                 "Starts `ringcast serve` (one ingress loop by default, 256 MiB ring) and POSTs\n"
                 "binary-mode CloudEvents with 100 bytes of JSON data over C keep-alive\n"
                 "connections (32) for S seconds (5); with --batch N each request is a batch of N\n"
                 "events. Prints events/s and latency percentiles; last line key=value.\n");
}

int rc_bench_ingest(int argc, char **argv)
{
    double seconds = 5;
    int conns = 32, batch = 0, loops = 1;
    char bin[PATH_MAX];
    bin[0] = '\0';
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(argv[i - 1], "--conns") == 0)
            conns = atoi(v);
        else if (strcmp(argv[i - 1], "--batch") == 0)
            batch = atoi(v);
        else if (strcmp(argv[i - 1], "--loops") == 0)
            loops = atoi(v);
        else if (strcmp(argv[i - 1], "--ringcast") == 0)
            snprintf(bin, sizeof(bin), "%s", v);
        else {
            usage(stderr);
            return 2;
        }
    }
    if (seconds <= 0 || seconds > 600 || conns < 1 || conns > 1024 || batch < 0 || batch > 10000 ||
        loops < 1 || loops > 64) {
        fprintf(stderr, "ingest: --seconds 0..600, --conns 1..1024, --batch 0..10000, "
                        "--loops 1..64\n");
        return 2;
    }
    if (bin[0] == '\0') {
        /* The ringcast binary next to this one (both land in build/bin). */
        ssize_t n = readlink("/proc/self/exe", bin, sizeof(bin) - 16);
        if (n <= 0)
            return 1;
        bin[n] = '\0';
        char *slash = strrchr(bin, '/');
        strcpy(slash ? slash + 1 : bin, "ringcast");
    }

    int rc = 1;
    char dir[] = "/tmp/rc-bench-ingest.XXXXXX", config[64] = "", prefix[32] = "", ring[96] = "";
    char *body = NULL;
    pid_t broker = -1;
    load_t l;
    memset(&l, 0, sizeof(l));
    slot_t *slots = calloc((size_t)conns, sizeof(*slots));
    l.lat_ns = malloc(MAX_SAMPLES * sizeof(uint64_t));
    if (slots == NULL || l.lat_ns == NULL || mkdtemp(dir) == NULL)
        goto out;
    snprintf(config, sizeof(config), "%s/ringcast.yaml", dir);
    snprintf(prefix, sizeof(prefix), "rcbi%d", (int)getpid());
    snprintf(ring, sizeof(ring), "%s.default.default", prefix);
    FILE *f = fopen(config, "w");
    if (f == NULL)
        goto out;
    fprintf(f, "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
               "  ring:\n    size: 256Mi\n  limits:\n    maxBatchBytes: 16Mi\n"
               "    maxBatchEvents: 10000\n");
    fclose(f);

    /* The request: binary mode, or a batch of `batch` structured events. */
    static const char binary_headers[] =
        "ce-specversion: 1.0\r\nce-id: 0d7bd1e4-6f4e-4bb3\r\n"
        "ce-source: /bench/ingest\r\nce-type: dev.ringcast.bench\r\n"
        "Content-Type: application/json\r\n";
    static const char batch_headers[] = "Content-Type: application/cloudevents-batch+json\r\n";
    if (batch == 0) {
        body = strdup(DATA);
        l.req.headers = binary_headers;
        l.req.headers_len = sizeof(binary_headers) - 1;
    } else {
        size_t cap = (size_t)batch * 300 + 16, n = 0;
        body = malloc(cap);
        if (body == NULL)
            goto out;
        body[n++] = '[';
        for (int i = 0; i < batch; i++)
            n += (size_t)snprintf(body + n, cap - n,
                                  "%s{\"specversion\":\"1.0\",\"id\":\"e-%d\",\"source\":"
                                  "\"/bench/ingest\",\"type\":\"dev.ringcast.bench\","
                                  "\"datacontenttype\":\"application/json\",\"data\":" DATA "}",
                                  i ? "," : "", i);
        body[n++] = ']';
        body[n] = '\0';
        l.req.headers = batch_headers;
        l.req.headers_len = sizeof(batch_headers) - 1;
    }
    if (body == NULL)
        goto out;
    l.body.iov_base = body;
    l.body.iov_len = strlen(body);
    l.req.body = &l.body;
    l.req.body_iovcnt = 1;

    int port = 0;
    broker = start_broker(bin, config, prefix, loops, &port);
    if (broker < 0)
        goto out;
    rc_http_client_opts_t o;
    rc_http_client_opts_init(&o);
    o.max_conns_per_host = (uint32_t)conns;
    if (rc_http_client_create(&o, &l.client) != 0)
        goto out;
    char url[96], err[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/default/default", port);
    rc_http_endpoint_t *ep = NULL;
    if (rc_http_client_endpoint(l.client, url, &ep, err, sizeof(err)) != 0) {
        fprintf(stderr, "ingest: %s\n", err);
        goto out;
    }
    l.req.endpoint = ep;
    l.running = 1;
    uint64_t t0 = rc_now_ns();
    for (int i = 0; i < conns; i++) {
        slots[i].load = &l;
        slots[i].start = rc_now_ns();
        if (rc_http_client_request(l.client, &l.req, on_response, &slots[i]) != 0)
            l.errors++;
    }
    uint64_t end = t0 + (uint64_t)(seconds * 1e9);
    while (rc_now_ns() < end)
        rc_http_client_run(l.client, 50);
    l.running = 0;
    uint64_t t1 = rc_now_ns();
    long done_at_end = l.done;
    for (int i = 0; i < 200 && rc_http_client_pending(l.client) > 0; i++)
        rc_http_client_run(l.client, 50);
    double el = (double)(t1 - t0) / 1e9;
    qsort(l.lat_ns, l.nlat, sizeof(uint64_t), cmp_u64);
    long events = (done_at_end - l.errors) * (batch ? batch : 1);
    double eps = (double)events / el;
    fprintf(stderr, "ingest: %ld requests in %.2f s, %ld errors (first %d), %.0f events/s\n",
            done_at_end, el, l.errors, l.first_error, eps);
    printf("scenario=ingest mode=%s batch=%d conns=%d loops=%d seconds=%.2f requests=%ld "
           "errors=%ld events=%ld events_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
           "backend=%s\n",
           batch ? "batch" : "binary", batch, conns, loops, el, done_at_end, l.errors, events, eps,
           pct_us(l.lat_ns, l.nlat, 0.5), pct_us(l.lat_ns, l.nlat, 0.99),
           pct_us(l.lat_ns, l.nlat, 0.999),
           rc_http_client_backend(l.client) == RC_HTTP_BACKEND_URING ? "uring" : "epoll");
    rc = l.errors == 0 ? 0 : 1;
out:
    rc_http_client_destroy(l.client);
    if (broker > 0 && stop_broker(broker) != 0) {
        fprintf(stderr, "ingest: the broker did not stop cleanly\n");
        rc = 1;
    }
    if (prefix[0] != '\0')
        rc_ring_unlink(ring);
    if (config[0] != '\0') {
        unlink(config);
        rmdir(dir);
    }
    free(body);
    free(l.lat_ns);
    free(slots);
    return rc;
}
