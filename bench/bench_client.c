/* ringcast-bench client: requests per second of the delivery HTTP client against a local sink
 * answering 202 (nginx `return 202` when installed, else bench/sink_server.c), with a fixed
 * number of keep-alive connections each carrying one request at a time. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/sink_server.h"
#include "core/errors.h"
#include "net/http/http_client.h"

typedef struct {
    rc_http_client_t *client;
    rc_http_request_t req;
    int running;
    long done;
    long errors;
    int first_error;
} load_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) this process used: the client's cost, without the sink's. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void on_response(int result, const rc_http_response_t *resp, void *ud)
{
    load_t *l = ud;
    (void)resp;
    l->done++;
    if (result != 202) {
        l->errors++;
        if (l->first_error == 0)
            l->first_error = result;
    }
    if (l->running && rc_http_client_request(l->client, &l->req, on_response, l) != 0)
        l->errors++;
}

static const char *find_nginx(void)
{
    static const char *const paths[] = {"/usr/sbin/nginx", "/usr/local/sbin/nginx",
                                        "/usr/local/nginx/sbin/nginx"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    }
    return NULL;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, len) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int wait_listening(int port, double limit_s)
{
    double end = now_s() + limit_s;
    while (now_s() < end) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        if (ok)
            return 0;
        usleep(20000);
    }
    return -ETIMEDOUT;
}

/* Runs nginx in the foreground, single process, from a private prefix directory. */
static int start_nginx(const char *bin, char *dir, int *port, pid_t *pid)
{
    if (mkdtemp(dir) == NULL)
        return -errno;
    *port = free_port();
    char conf[512];
    snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
    FILE *f = fopen(conf, "w");
    if (f == NULL)
        return -errno;
    fprintf(f,
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            "error_log %s/error.log;\npid %s/nginx.pid;\n"
            "events { worker_connections 4096; }\n"
            "http {\n access_log off;\n client_body_temp_path %s;\n proxy_temp_path %s;\n"
            " fastcgi_temp_path %s;\n uwsgi_temp_path %s;\n scgi_temp_path %s;\n"
            " keepalive_requests 100000000;\n"
            " server {\n  listen 127.0.0.1:%d;\n  location / { return 202; }\n }\n}\n",
            dir, dir, dir, dir, dir, dir, dir, *port);
    fclose(f);
    pid_t child = fork();
    if (child < 0)
        return -errno;
    if (child == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execl(bin, bin, "-p", dir, "-c", conf, (char *)NULL);
        _exit(127);
    }
    *pid = child;
    int rc = wait_listening(*port, 5.0);
    if (rc < 0) {
        kill(child, SIGTERM);
        waitpid(child, NULL, 0);
        *pid = 0;
    }
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ringcast-bench client [--conns N] [--seconds S] [--body BYTES]\n"
            "                             [--backend auto|uring|epoll] [--server auto|own|nginx]\n"
            "Drives the delivery HTTP client against a local sink answering 202 with N\n"
            "keep-alive connections (one request in flight each) and prints requests/s.\n");
}

typedef struct {
    int conns;
    double seconds;
    size_t body_len;
    const char *backend;
    const char *server;
} client_opts_t;

/* Reads argv into `co` and the client's back end into `opts`. Returns 0, 1 (--help printed:
 * exit 0) or 2 (bad usage, message printed). */
static int parse_opts(int argc, char **argv, client_opts_t *co, rc_http_client_opts_t *opts)
{
    *co = (client_opts_t){
        .conns = 16, .seconds = 3.0, .body_len = 128, .backend = "auto", .server = "auto"};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(a, "--conns") == 0 && v != NULL) {
            co->conns = atoi(v);
        } else if (strcmp(a, "--seconds") == 0 && v != NULL) {
            co->seconds = atof(v);
        } else if (strcmp(a, "--body") == 0 && v != NULL) {
            co->body_len = (size_t)atol(v);
        } else if (strcmp(a, "--backend") == 0 && v != NULL) {
            co->backend = v;
        } else if (strcmp(a, "--server") == 0 && v != NULL) {
            co->server = v;
        } else {
            fprintf(stderr, "ringcast-bench client: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (co->conns < 1 || co->conns > 4096 || co->seconds <= 0 || co->seconds > 600 ||
        co->body_len > (1 << 20)) {
        fprintf(stderr,
                "ringcast-bench client: --conns 1-4096, --seconds 0-600, --body <= 1 MiB\n");
        return 2;
    }
    rc_http_client_opts_init(opts);
    if (strcmp(co->backend, "uring") == 0)
        opts->backend = RC_HTTP_BACKEND_URING;
    else if (strcmp(co->backend, "epoll") == 0)
        opts->backend = RC_HTTP_BACKEND_EPOLL;
    else if (strcmp(co->backend, "auto") != 0) {
        fprintf(stderr, "ringcast-bench client: --backend auto, uring or epoll\n");
        return 2;
    }
    opts->max_conns_per_host = (uint32_t)co->conns;
    opts->ring_entries =
        (uint32_t)(co->conns * 4 < 4096 ? (co->conns * 4 > 64 ? co->conns * 4 : 64) : 4096);
    return 0;
}

/* The sink under the client: nginx from a private prefix directory, or our own. */
typedef struct {
    const char *nginx; /* the nginx binary when it is the sink, else NULL */
    int port;
    pid_t pid; /* 0: not running */
    char dir[sizeof("/tmp/ringcast-bench-nginx-XXXXXX")];
} sink_t;

/* Picks the sink --server asks for ("auto": nginx when installed). Returns 0, 1 (nginx asked
 * for but not installed) or 2 (bad usage); messages printed. */
static int sink_choose(const char *server, sink_t *s)
{
    *s = (sink_t){.dir = "/tmp/ringcast-bench-nginx-XXXXXX"};
    const char *nginx = find_nginx();
    int use_nginx = strcmp(server, "nginx") == 0 || (strcmp(server, "auto") == 0 && nginx);
    if (strcmp(server, "nginx") == 0 && nginx == NULL) {
        fprintf(stderr, "ringcast-bench client: nginx not installed (apt-get install nginx)\n");
        return 1;
    }
    if (!use_nginx && strcmp(server, "own") != 0 && strcmp(server, "auto") != 0) {
        fprintf(stderr, "ringcast-bench client: --server auto, own or nginx\n");
        return 2;
    }
    s->nginx = use_nginx ? nginx : NULL;
    return 0;
}

static const char *sink_name(const sink_t *s)
{
    return s->nginx ? "nginx" : "own";
}

static int sink_start(sink_t *s)
{
    return s->nginx ? start_nginx(s->nginx, s->dir, &s->port, &s->pid)
                    : rc_bench_sink_start(202, &s->port, &s->pid);
}

/* Stops the sink by pid and removes nginx's prefix directory (what start_nginx put there). */
static void sink_stop(sink_t *s)
{
    if (s->nginx == NULL) {
        rc_bench_sink_stop(s->pid);
        return;
    }
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
    }
    static const char *const files[] = {"nginx.conf", "error.log", "nginx.pid"};
    char path[128];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", s->dir, files[i]);
        unlink(path);
    }
    rmdir(s->dir);
}

/* The client and its endpoint for the sink on `port`. Returns 0 or -1 (message printed). */
static int client_open(const rc_http_client_opts_t *opts, int port, rc_http_client_t **client,
                       rc_http_endpoint_t **ep)
{
    int rc = rc_http_client_create(opts, client);
    if (rc < 0) {
        fprintf(stderr, "ringcast-bench client: %s\n", rc_strerror(rc));
        return -1;
    }
    char url[64], err[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/default/sink", port);
    if (rc_http_client_endpoint(*client, url, ep, err, sizeof(err)) != 0) {
        fprintf(stderr, "ringcast-bench client: %s\n", err);
        return -1;
    }
    return 0;
}

/* Puts one request in flight on each of `conns` connections; each answer sends the next
 * (on_response) until load->running is cleared. */
static void load_start(load_t *load, rc_http_client_t *client, rc_http_endpoint_t *ep,
                       struct iovec *body, int conns)
{
    static const char headers[] = "ce-specversion: 1.0\r\nce-id: 1\r\nce-source: /bench\r\n"
                                  "ce-type: bench.event\r\nContent-Type: application/json\r\n"
                                  "Prefer: reply\r\nKn-Namespace: default\r\n";
    load->client = client;
    load->req = (rc_http_request_t){.endpoint = ep,
                                    .headers = headers,
                                    .headers_len = sizeof(headers) - 1,
                                    .body = body,
                                    .body_iovcnt = body->iov_len > 0 ? 1 : 0,
                                    .timeout_ms = 10000};
    load->running = 1;
    for (int i = 0; i < conns; i++) {
        if (rc_http_client_request(client, &load->req, on_response, load) != 0)
            load->errors++;
    }
}

typedef struct {
    double elapsed; /* the measured window, s */
    double cpu;     /* this process's CPU time in it, s */
    long responses; /* answers in it */
    long runs;      /* rc_http_client_run calls in it */
} measured_t;

/* Runs the client loop: a warm-up (connections open, caches warm), then `seconds` measured;
 * afterwards stops sending and lets the requests in flight finish (bounded). */
static void load_measure(load_t *load, double seconds, measured_t *m)
{
    const double warmup = seconds > 1 ? 0.5 : 0.1;
    double t0 = now_s();
    double start = 0, start_cpu = 0;
    long start_done = 0;
    long runs = 0;
    for (;;) {
        double t = now_s();
        if (start == 0 && t - t0 >= warmup) {
            start = t;
            start_cpu = cpu_s();
            start_done = load->done;
            runs = 0;
        }
        if (start != 0 && t - start >= seconds)
            break;
        if (rc_http_client_run(load->client, 100) < 0) {
            load->errors++;
            break;
        }
        runs++;
    }
    m->elapsed = now_s() - start;
    m->cpu = cpu_s() - start_cpu;
    m->responses = load->done - start_done;
    m->runs = runs;
    load->running = 0;
    for (int i = 0; i < 1000 && rc_http_client_pending(load->client) > 0; i++)
        rc_http_client_run(load->client, 10);
}

/* The summary on stderr, and the result line last on stdout. */
static void report(const client_opts_t *co, const sink_t *sink, const load_t *load,
                   const measured_t *m)
{
    const char *be =
        rc_http_client_backend(load->client) == RC_HTTP_BACKEND_URING ? "io_uring" : "epoll";
    fprintf(stderr, "client: %ld responses in %.2f s over %d connections (%s, %s sink)\n",
            m->responses, m->elapsed, co->conns, be, sink_name(sink));
    if (load->errors > 0)
        fprintf(stderr, "client: %ld errors, first %d (%s)\n", load->errors, load->first_error,
                load->first_error < 0 ? rc_strerror(load->first_error) : "HTTP status");
    printf("scenario=client backend=%s server=%s conns=%d body=%zu seconds=%.2f requests=%ld "
           "rps=%.0f cpu_us_per_req=%.2f per_run=%.1f errors=%ld\n",
           be, sink_name(sink), co->conns, co->body_len, m->elapsed, m->responses,
           (double)m->responses / m->elapsed,
           m->responses > 0 ? m->cpu * 1e6 / (double)m->responses : 0.0,
           m->runs > 0 ? (double)m->responses / (double)m->runs : 0.0, load->errors);
}

int rc_bench_client(int argc, char **argv)
{
    client_opts_t co;
    rc_http_client_opts_t opts;
    sink_t sink;
    int rc = parse_opts(argc, argv, &co, &opts);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc = sink_choose(co.server, &sink);
    if (rc != 0)
        return rc;
    rc = sink_start(&sink);
    if (rc < 0) {
        fprintf(stderr, "ringcast-bench client: cannot start the %s sink: %s\n", sink_name(&sink),
                rc_strerror(rc));
        sink_stop(&sink);
        return 1;
    }
    int exit_code = 1;
    rc_http_client_t *client = NULL;
    rc_http_endpoint_t *ep;
    load_t load = {0};
    measured_t m;
    char *body = malloc(co.body_len + 1);
    if (body == NULL) {
        fprintf(stderr, "ringcast-bench client: out of memory\n");
        goto out;
    }
    memset(body, 'x', co.body_len);
    if (client_open(&opts, sink.port, &client, &ep) < 0)
        goto out;
    struct iovec iov = {body, co.body_len};
    load_start(&load, client, ep, &iov, co.conns);
    load_measure(&load, co.seconds, &m);
    report(&co, &sink, &load, &m);
    exit_code = load.errors == 0 ? 0 : 1;
out:
    rc_http_client_destroy(client);
    free(body);
    sink_stop(&sink);
    return exit_code;
}
