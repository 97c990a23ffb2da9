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

int rc_bench_client(int argc, char **argv)
{
    int conns = 16;
    double seconds = 3.0;
    size_t body_len = 128;
    const char *backend = "auto";
    const char *server = "auto";
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--conns") == 0 && v != NULL) {
            conns = atoi(v);
        } else if (strcmp(a, "--seconds") == 0 && v != NULL) {
            seconds = atof(v);
        } else if (strcmp(a, "--body") == 0 && v != NULL) {
            body_len = (size_t)atol(v);
        } else if (strcmp(a, "--backend") == 0 && v != NULL) {
            backend = v;
        } else if (strcmp(a, "--server") == 0 && v != NULL) {
            server = v;
        } else {
            fprintf(stderr, "ringcast-bench client: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (conns < 1 || conns > 4096 || seconds <= 0 || seconds > 600 || body_len > (1 << 20)) {
        fprintf(stderr,
                "ringcast-bench client: --conns 1-4096, --seconds 0-600, --body <= 1 MiB\n");
        return 2;
    }
    rc_http_client_opts_t opts;
    rc_http_client_opts_init(&opts);
    if (strcmp(backend, "uring") == 0)
        opts.backend = RC_HTTP_BACKEND_URING;
    else if (strcmp(backend, "epoll") == 0)
        opts.backend = RC_HTTP_BACKEND_EPOLL;
    else if (strcmp(backend, "auto") != 0) {
        fprintf(stderr, "ringcast-bench client: --backend auto, uring or epoll\n");
        return 2;
    }
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

    int port = 0;
    pid_t pid = 0;
    char dir[] = "/tmp/ringcast-bench-nginx-XXXXXX";
    int rc =
        use_nginx ? start_nginx(nginx, dir, &port, &pid) : rc_bench_sink_start(202, &port, &pid);
    if (rc < 0) {
        fprintf(stderr, "ringcast-bench client: cannot start the %s sink: %s\n",
                use_nginx ? "nginx" : "own", rc_strerror(rc));
        return 1;
    }
    int exit_code = 1;
    opts.max_conns_per_host = (uint32_t)conns;
    opts.ring_entries = (uint32_t)(conns * 4 < 4096 ? (conns * 4 > 64 ? conns * 4 : 64) : 4096);
    rc_http_client_t *client = NULL;
    char *body = malloc(body_len + 1);
    memset(body, 'x', body_len);
    load_t load = {0};
    rc = rc_http_client_create(&opts, &client);
    if (rc < 0) {
        fprintf(stderr, "ringcast-bench client: %s\n", rc_strerror(rc));
        goto out;
    }
    char url[64], err[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/default/sink", port);
    rc_http_endpoint_t *ep;
    if (rc_http_client_endpoint(client, url, &ep, err, sizeof(err)) != 0) {
        fprintf(stderr, "ringcast-bench client: %s\n", err);
        goto out;
    }
    static const char headers[] = "ce-specversion: 1.0\r\nce-id: 1\r\nce-source: /bench\r\n"
                                  "ce-type: bench.event\r\nContent-Type: application/json\r\n"
                                  "Prefer: reply\r\nKn-Namespace: default\r\n";
    struct iovec iov = {body, body_len};
    load.client = client;
    load.req = (rc_http_request_t){.endpoint = ep,
                                   .headers = headers,
                                   .headers_len = sizeof(headers) - 1,
                                   .body = &iov,
                                   .body_iovcnt = body_len > 0 ? 1 : 0,
                                   .timeout_ms = 10000};
    load.running = 1;
    for (int i = 0; i < conns; i++) {
        if (rc_http_client_request(client, &load.req, on_response, &load) != 0)
            load.errors++;
    }
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
            start_done = load.done;
            runs = 0;
        }
        if (start != 0 && t - start >= seconds)
            break;
        if (rc_http_client_run(client, 100) < 0) {
            load.errors++;
            break;
        }
        runs++;
    }
    double elapsed = now_s() - start;
    double cpu = cpu_s() - start_cpu;
    long measured = load.done - start_done;
    load.running = 0;
    for (int i = 0; i < 1000 && rc_http_client_pending(client) > 0; i++)
        rc_http_client_run(client, 10);
    const char *be = rc_http_client_backend(client) == RC_HTTP_BACKEND_URING ? "io_uring" : "epoll";
    fprintf(stderr, "client: %ld responses in %.2f s over %d connections (%s, %s sink)\n", measured,
            elapsed, conns, be, use_nginx ? "nginx" : "own");
    if (load.errors > 0)
        fprintf(stderr, "client: %ld errors, first %d (%s)\n", load.errors, load.first_error,
                load.first_error < 0 ? rc_strerror(load.first_error) : "HTTP status");
    printf("scenario=client backend=%s server=%s conns=%d body=%zu seconds=%.2f requests=%ld "
           "rps=%.0f cpu_us_per_req=%.2f per_run=%.1f errors=%ld\n",
           be, use_nginx ? "nginx" : "own", conns, body_len, elapsed, measured,
           (double)measured / elapsed, measured > 0 ? cpu * 1e6 / (double)measured : 0.0,
           runs > 0 ? (double)measured / (double)runs : 0.0, load.errors);
    exit_code = load.errors == 0 ? 0 : 1;
out:
    rc_http_client_destroy(client);
    free(body);
    if (use_nginx) {
        if (pid > 0) {
            kill(pid, SIGTERM);
            waitpid(pid, NULL, 0);
        }
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "%s/nginx.conf", dir);
        unlink(cmd);
        snprintf(cmd, sizeof(cmd), "%s/error.log", dir);
        unlink(cmd);
        snprintf(cmd, sizeof(cmd), "%s/nginx.pid", dir);
        unlink(cmd);
        rmdir(dir);
    } else {
        rc_bench_sink_stop(pid);
    }
    return exit_code;
}
