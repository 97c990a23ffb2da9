/* Starting and stopping the compared servers. Each gets a private directory under /tmp for its
 * config, logs and pid file, and a port picked free just before the start (retried when another
 * process took it meanwhile). ringcast binds port 0 itself and reports the port on stdout. */
#include "bench/peers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "bench/procs.h"

static const char *const names[] = {"ringcast", "nginx", "redis", "nats"};
static const char *const programs[] = {"ringcast", "nginx", "redis-server", "nats-server"};
static const char *const packages[] = {"(build ringcast)", "nginx-light", "redis-server",
                                       "nats-server"};

const char *rc_bench_peer_name(rc_peer_kind_t kind)
{
    return names[kind];
}

static int ringcast_path(char *buf, size_t cap)
{
    const char *dir = getenv("RC_BIN_DIR");
    if (dir != NULL) {
        int n = snprintf(buf, cap, "%s/ringcast", dir);
        if (n > 0 && (size_t)n < cap && access(buf, X_OK) == 0)
            return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = 0;
            int m = snprintf(buf, cap, "%s/ringcast", self);
            if (m > 0 && (size_t)m < cap && access(buf, X_OK) == 0)
                return 0;
        }
    }
    return -ENOENT;
}

static int program_path(rc_peer_kind_t kind, char *buf, size_t cap)
{
    return kind == RC_PEER_RINGCAST ? ringcast_path(buf, cap)
                                    : rc_bench_which(programs[kind], buf, cap);
}

int rc_bench_peer_available(rc_peer_kind_t kind, char *why, size_t cap)
{
    char path[PATH_MAX];
    if (program_path(kind, path, sizeof(path)) == 0)
        return 1;
    snprintf(why, cap, "%s is not installed (apt-get install %s; scripts/setup.sh does)",
             programs[kind], packages[kind]);
    return 0;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    if (f == NULL)
        return -errno;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -errno;
}

/* Reads ringcast's "listening ingress=HOST:PORT admin=HOST:PORT" line from its stdout pipe. */
static int read_listening(int fd, pid_t pid, int *port, int *admin_port)
{
    char buf[512];
    size_t used = 0;
    double end = rc_bench_now_s() + 30.0;
    while (rc_bench_now_s() < end && used < sizeof(buf) - 1) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0) {
            if (!rc_bench_alive(pid))
                return -ECHILD;
            continue;
        }
        ssize_t n = read(fd, buf + used, sizeof(buf) - 1 - used);
        if (n <= 0)
            return -ECHILD;
        used += (size_t)n;
        buf[used] = 0;
        char *l = strstr(buf, "listening ingress=");
        if (l != NULL && strchr(l, '\n') != NULL) {
            char *colon = strchr(l + 18, ':');
            char *sp = strchr(l + 18, ' ');
            if (colon == NULL || (sp != NULL && colon > sp))
                return -EPROTO;
            *port = atoi(colon + 1);
            char *adm = strstr(l, " admin=");
            char *acolon = adm ? strrchr(adm, ':') : NULL;
            *admin_port = acolon ? atoi(acolon + 1) : 0;
            return *port > 0 ? 0 : -EPROTO;
        }
    }
    return -ETIMEDOUT;
}

/* A blocking TCP connection to 127.0.0.1:`port` with 1 s send and receive timeouts, or -errno. */
static int connect_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* Sends `req` and reads the answer into `buf` (NUL-terminated) until the peer closes, `buf` is
 * full, or `done` says the answer is complete. Returns the bytes read or -errno. */
static ssize_t exchange(int fd, const char *req, char *buf, size_t cap,
                        int (*done)(const char *buf, size_t len))
{
    size_t n = strlen(req), used = 0;
    if (send(fd, req, n, MSG_NOSIGNAL) != (ssize_t)n)
        return -EIO;
    while (used < cap - 1) {
        ssize_t r = recv(fd, buf + used, cap - 1 - used, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        used += (size_t)r;
        buf[used] = 0;
        if (done != NULL && done(buf, used))
            break;
    }
    buf[used] = 0;
    return (ssize_t)used;
}

/* GET `path` on 127.0.0.1:`port` with "Connection: close": the HTTP status, or -errno. The
 * whole response (status line, headers, body; cut at cap - 1 bytes) goes into `buf`. */
static int http_get(int port, const char *path, char *buf, size_t cap)
{
    int fd = connect_loopback(port);
    if (fd < 0)
        return fd;
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             path);
    ssize_t n = exchange(fd, req, buf, cap, NULL);
    close(fd);
    if (n < 0)
        return (int)n;
    return n >= 12 && memcmp(buf, "HTTP/1.", 7) == 0 ? atoi(buf + 9) : -EPROTO;
}

/* HTTP status of GET `path` on 127.0.0.1:`port`, or -errno. */
static int http_get_status(int port, const char *path)
{
    char resp[512];
    return http_get(port, path, resp, sizeof(resp));
}

static int wait_ready(int admin_port, pid_t pid)
{
    double end = rc_bench_now_s() + 30.0;
    while (rc_bench_now_s() < end) {
        if (http_get_status(admin_port, "/readyz") == 200)
            return 0;
        if (!rc_bench_alive(pid))
            return -ECHILD;
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    return -ETIMEDOUT;
}

/* The last non-empty line of a file (ringcast's error message) into buf. */
static void last_line(const char *path, char *buf, size_t cap)
{
    buf[0] = 0;
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = 0;
        size_t len = strlen(line);
        if (len > 0) {
            len = len < cap - 1 ? len : cap - 1;
            memcpy(buf, line, len);
            buf[len] = 0;
        }
    }
    fclose(f);
}

/* `ringcast serve` on ports it picks itself; with `durability` (p->store made), a file store
 * in p->store. */
static int start_ringcast(const char *bin, uint64_t ring_bytes, int workers, const char *durability,
                          const rc_bench_redis_node_t *rn, rc_bench_yaml_fn extra, void *arg,
                          rc_peer_t *p, char *err, size_t errlen)
{
    static unsigned counter;
    char prefix[32], conf[128], errlog[128], wline[32] = "", storage[400] = "";
    char redis[256] = "", annot[96] = "";
    snprintf(prefix, sizeof(prefix), "rcbench%dx%u", (int)getpid(), counter++);
    snprintf(p->ring, sizeof(p->ring), "%s.default.default", prefix);
    snprintf(conf, sizeof(conf), "%s/ringcast.yaml", p->dir);
    snprintf(errlog, sizeof(errlog), "%s/ringcast.err", p->dir);
    if (workers > 0)
        snprintf(wline, sizeof(wline), "  workers: %d\n", workers);
    /* The directory is quoted: rc_bench_peer_start_store refused quotes and backslashes. */
    if (durability != NULL)
        snprintf(storage, sizeof(storage),
                 "  storage:\n    type: file\n    directory: \"%s\"\n    durability: %s\n",
                 p->store, durability);
    /* A node of a broker shared over Redis (docs/scaleout.md): every node names the same Redis
     * and partitions and its own nodeId; claimIdle is long so that a node slowed down by the
     * load on a shared machine is not taken for dead (its entries would arrive twice). */
    if (rn != NULL) {
        snprintf(redis, sizeof(redis),
                 "  redis:\n    addresses: [\"127.0.0.1:%d\"]\n    partitions: %d\n"
                 "    nodeId: %s\n    claimIdle: 30s\n",
                 rn->port, rn->partitions, rn->node_id);
        snprintf(annot, sizeof(annot), "  annotations:\n    ringcast.dev/storage-type: redis\n");
    }
    FILE *f = fopen(conf, "we");
    int rc = f == NULL ? -errno : 0;
    if (f != NULL) {
        fprintf(f,
                "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                "  ingressLoops: 1\n  logLevel: warn\n%s  ring:\n    size: %llu\n"
                "    namePrefix: %s\n%s%s---\napiVersion: eventing.knative.dev/v1\nkind: Broker\n"
                "metadata:\n  name: default\n  namespace: default\n%s",
                wline, (unsigned long long)ring_bytes, prefix, storage, redis, annot);
        if (extra != NULL)
            rc = extra(f, p->dir, arg);
        if (fclose(f) != 0 && rc == 0)
            rc = -errno;
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot write %s: %s", conf, strerror(-rc));
        return rc;
    }
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    rc_bench_track_shm(p->ring);
    char *argv[] = {(char *)bin,   "serve",   "--config",    conf, "--listen",
                    "127.0.0.1:0", "--admin", "127.0.0.1:0", NULL};
    rc = rc_bench_spawn(argv, pipefd[1], errlog, SIGTERM, &p->pid);
    close(pipefd[1]);
    if (rc == 0)
        rc = read_listening(pipefd[0], p->pid, &p->port, &p->admin_port);
    close(pipefd[0]);
    if (rc == 0 && p->admin_port > 0)
        rc = wait_ready(p->admin_port, p->pid);
    if (rc < 0) {
        char msg[256];
        last_line(errlog, msg, sizeof(msg));
        snprintf(err, errlen, "ringcast serve did not start (%s)%s%s", strerror(-rc),
                 msg[0] ? ": " : "", msg);
    }
    return rc;
}

/* redis-server on port p->port: no persistence, or with `appendfsync` an append-only file in
 * p->store (no automatic rewrite: a rewrite forks and copies the data set mid-run, and the
 * ringcast store it is compared with never compacts). */
static int spawn_redis(const char *bin, const char *appendfsync, rc_peer_t *p, const char *errlog)
{
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", p->port);
    char *argv[24] = {
        (char *)bin,   "--port", portstr,      "--bind",  "127.0.0.1",        "--save", "",
        "--daemonize", "no",     "--loglevel", "warning", "--protected-mode", "no",     NULL};
    int n = 13;
    if (appendfsync != NULL) {
        char *aof[] = {"--appendonly",
                       "yes",
                       "--appendfsync",
                       (char *)appendfsync,
                       "--dir",
                       p->store,
                       "--auto-aof-rewrite-percentage",
                       "0"};
        for (size_t i = 0; i < sizeof(aof) / sizeof(aof[0]); i++)
            argv[n++] = aof[i];
    } else {
        char *mem[] = {"--appendonly", "no", "--dir", p->dir};
        for (size_t i = 0; i < sizeof(mem) / sizeof(mem[0]); i++)
            argv[n++] = mem[i];
    }
    argv[n] = NULL;
    return rc_bench_spawn(argv, -1, errlog, SIGTERM, &p->pid);
}

/* nginx's config: one worker on p->port answering `return 202`, or (`nup` > 0) a reverse proxy
 * to the upstream ports `up` with keep-alive connections to them (HTTP/1.1, no Connection
 * header passed on), as a proxy in front of subscribers is set up. */
static int nginx_conf(const rc_peer_t *p, const int *up, int nup, char *text, size_t cap)
{
    const char *d = p->dir;
    size_t n =
        (size_t)snprintf(text, cap,
                         "daemon off;\nmaster_process off;\nworker_processes 1;\n"
                         "error_log %s/error.log;\npid %s/nginx.pid;\n"
                         "events { worker_connections 4096; }\n"
                         "http {\n access_log off;\n client_body_temp_path %s;\n"
                         " proxy_temp_path %s;\n fastcgi_temp_path %s;\n uwsgi_temp_path %s;\n"
                         " scgi_temp_path %s;\n keepalive_requests 100000000;\n",
                         d, d, d, d, d, d, d);
    if (nup > 0) {
        n += (size_t)snprintf(text + n, n < cap ? cap - n : 0, " upstream sinks {\n");
        for (int i = 0; i < nup; i++)
            n += (size_t)snprintf(text + n, n < cap ? cap - n : 0, "  server 127.0.0.1:%d;\n",
                                  up[i]);
        n += (size_t)snprintf(text + n, n < cap ? cap - n : 0,
                              "  keepalive 1024;\n  keepalive_requests 100000000;\n }\n"
                              " server {\n  listen 127.0.0.1:%d;\n  location / {\n"
                              "   proxy_pass http://sinks;\n   proxy_http_version 1.1;\n"
                              "   proxy_set_header Connection \"\";\n  }\n }\n}\n",
                              p->port);
    } else {
        n += (size_t)snprintf(text + n, n < cap ? cap - n : 0,
                              " server {\n  listen 127.0.0.1:%d;\n  location / { return 202; }\n"
                              " }\n}\n",
                              p->port);
    }
    return n < cap ? 0 : -ENAMETOOLONG;
}

/* Starts the peer on a free port (nginx with `nup` upstreams: the reverse proxy to them). */
static int start_on_port(rc_peer_kind_t kind, const char *bin, const char *mode, const int *up,
                         int nup, rc_peer_t *p, char *err, size_t errlen)
{
    char errlog[128], conf[128], text[16384], portstr[16];
    snprintf(errlog, sizeof(errlog), "%s/%s.err", p->dir, names[kind]);
    int rc = -EADDRINUSE;
    for (int attempt = 0; attempt < 5 && rc < 0; attempt++) {
        p->port = rc_bench_free_port();
        if (p->port < 0)
            return p->port;
        snprintf(portstr, sizeof(portstr), "%d", p->port);
        if (kind == RC_PEER_NGINX) {
            snprintf(conf, sizeof(conf), "%s/nginx.conf", p->dir);
            rc = nginx_conf(p, up, nup, text, sizeof(text));
            if (rc == 0)
                rc = write_file(conf, text);
            if (rc < 0)
                return rc;
            char *argv[] = {(char *)bin, "-p", p->dir, "-c", conf, "-e", errlog, NULL};
            rc = rc_bench_spawn(argv, -1, errlog, SIGTERM, &p->pid);
        } else if (kind == RC_PEER_REDIS) {
            rc = spawn_redis(bin, mode, p, errlog);
        } else {
            char *argv[] = {(char *)bin, "-a", "127.0.0.1", "-p", portstr, NULL};
            rc = rc_bench_spawn(argv, -1, errlog, SIGTERM, &p->pid);
        }
        if (rc < 0)
            break;
        rc = rc_bench_wait_port(p->port, 10.0, p->pid);
        if (rc < 0) {
            rc_bench_stop(p->pid);
            p->pid = 0;
        }
    }
    if (rc < 0)
        snprintf(err, errlen, "%s did not start (%s); see %s", programs[kind], strerror(-rc),
                 errlog);
    return rc;
}

/* Clears `p`, finds the program and makes the peer's private directory. */
static int peer_begin(rc_peer_kind_t kind, rc_peer_t *p, char *bin, size_t bincap, char *err,
                      size_t errlen)
{
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    if (program_path(kind, bin, bincap) < 0) {
        rc_bench_peer_available(kind, err, errlen);
        return -ENOENT;
    }
    snprintf(p->dir, sizeof(p->dir), "/tmp/rcbench%d-%s-XXXXXX", (int)getpid(), names[kind]);
    if (mkdtemp(p->dir) == NULL) {
        int rc = -errno;
        snprintf(err, errlen, "mkdtemp %s: %s", p->dir, strerror(-rc));
        p->dir[0] = 0;
        return rc;
    }
    return 0;
}

/* Makes p->store: a fresh directory under `parent` ($TMPDIR or /tmp when NULL), absolute. */
static int make_store(const char *parent, rc_peer_t *p, char *err, size_t errlen)
{
    if (parent == NULL || parent[0] == 0)
        parent = getenv("TMPDIR");
    if (parent == NULL || parent[0] == 0)
        parent = "/tmp";
    if (strpbrk(parent, "\"\\\n") != NULL) {
        snprintf(err, errlen,
                 "store directory %s: quotes, backslashes and newlines are not "
                 "supported in its path",
                 parent);
        return -EINVAL;
    }
    char tmpl[256], abs[PATH_MAX];
    int n = snprintf(tmpl, sizeof(tmpl), "%s/rcbench%d-store-XXXXXX", parent, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmpl)) {
        snprintf(err, errlen, "store directory %s: path too long", parent);
        return -ENAMETOOLONG;
    }
    if (mkdtemp(tmpl) == NULL) {
        int rc = -errno;
        snprintf(err, errlen, "cannot make a directory under %s: %s", parent, strerror(-rc));
        return rc;
    }
    if (realpath(tmpl, abs) == NULL || strlen(abs) >= sizeof(p->store)) {
        snprintf(p->store, sizeof(p->store), "%s", tmpl);
        snprintf(err, errlen, "store directory %s: cannot resolve it to a short absolute path",
                 tmpl);
        return -ENAMETOOLONG;
    }
    memcpy(p->store, abs, strlen(abs) + 1); /* fits: checked above */
    return 0;
}

static int peer_start(rc_peer_kind_t kind, uint64_t ring_bytes, const char *mode,
                      const char *parent, rc_peer_t *p, char *err, size_t errlen)
{
    char bin[PATH_MAX];
    int rc = peer_begin(kind, p, bin, sizeof(bin), err, errlen);
    if (rc == 0 && mode != NULL)
        rc = make_store(parent, p, err, errlen);
    if (rc == 0)
        rc = kind == RC_PEER_RINGCAST
                 ? start_ringcast(bin, ring_bytes, 0, mode, NULL, NULL, NULL, p, err, errlen)
                 : start_on_port(kind, bin, mode, NULL, 0, p, err, errlen);
    if (rc < 0) {
        rc_bench_peer_stop(p);
        return rc;
    }
    rc_bench_peer_mark(p);
    return 0;
}

int rc_bench_peer_start(rc_peer_kind_t kind, uint64_t ring_bytes, rc_peer_t *p, char *err,
                        size_t errlen)
{
    return peer_start(kind, ring_bytes, NULL, NULL, p, err, errlen);
}

int rc_bench_nginx_proxy_start(const int *ports, int n, rc_peer_t *p, char *err, size_t errlen)
{
    char bin[PATH_MAX];
    if (n < 1) {
        snprintf(err, errlen, "nginx proxy: no upstream");
        return -EINVAL;
    }
    int rc = peer_begin(RC_PEER_NGINX, p, bin, sizeof(bin), err, errlen);
    if (rc == 0)
        rc = start_on_port(RC_PEER_NGINX, bin, NULL, ports, n, p, err, errlen);
    if (rc < 0) {
        rc_bench_peer_stop(p);
        return rc;
    }
    rc_bench_peer_mark(p);
    return 0;
}

int rc_bench_peer_start_store(rc_peer_kind_t kind, uint64_t ring_bytes, const char *mode,
                              const char *parent, rc_peer_t *p, char *err, size_t errlen)
{
    if (kind != RC_PEER_RINGCAST && kind != RC_PEER_REDIS) {
        snprintf(err, errlen, "%s has no store mode in this harness", names[kind]);
        return -EINVAL;
    }
    return peer_start(kind, ring_bytes, mode, parent, p, err, errlen);
}

int rc_bench_ringcast_start(uint64_t ring_bytes, int workers, rc_bench_yaml_fn extra, void *arg,
                            rc_peer_t *p, char *err, size_t errlen)
{
    char bin[PATH_MAX];
    int rc = peer_begin(RC_PEER_RINGCAST, p, bin, sizeof(bin), err, errlen);
    if (rc == 0)
        rc = start_ringcast(bin, ring_bytes, workers, NULL, NULL, extra, arg, p, err, errlen);
    if (rc < 0) {
        rc_bench_peer_stop(p);
        return rc;
    }
    rc_bench_peer_mark(p);
    return 0;
}

int rc_bench_ringcast_start_redis(const rc_bench_redis_node_t *rn, uint64_t ring_bytes, int workers,
                                  rc_bench_yaml_fn extra, void *arg, rc_peer_t *p, char *err,
                                  size_t errlen)
{
    char bin[PATH_MAX];
    int rc = peer_begin(RC_PEER_RINGCAST, p, bin, sizeof(bin), err, errlen);
    if (rc == 0)
        rc = start_ringcast(bin, ring_bytes, workers, NULL, rn, extra, arg, p, err, errlen);
    if (rc < 0) {
        rc_bench_peer_stop(p);
        return rc;
    }
    rc_bench_peer_mark(p);
    return 0;
}

/* The sum of the samples of metric `name` (every label set) in a Prometheus text body; -ENOENT
 * when there is none. */
static int metric_sum(const char *body, const char *name, double *out)
{
    size_t len = strlen(name);
    int found = 0;
    *out = 0;
    for (const char *l = body; l != NULL && *l; l = strchr(l, '\n')) {
        if (*l == '\n')
            l++;
        if (strncmp(l, name, len) != 0 || (l[len] != '{' && l[len] != ' '))
            continue;
        const char *v = l[len] == '{' ? strchr(l + len, '}') : l + len;
        if (v != NULL) {
            *out += strtod(v + 1, NULL);
            found = 1;
        }
    }
    return found ? 0 : -ENOENT;
}

int rc_bench_peer_fsyncs(const rc_peer_t *p, rc_bench_fsyncs_t *out)
{
    if (p->kind != RC_PEER_RINGCAST || p->admin_port <= 0)
        return -ENOENT;
    size_t cap = 1u << 20;
    char *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    int rc = http_get(p->admin_port, "/metrics", buf, cap);
    if (rc >= 0)
        rc = rc == 200 ? 0 : -EPROTO;
    if (rc == 0)
        rc = metric_sum(buf, "ringcast_storage_fsyncs_total", &out->fsyncs);
    if (rc == 0)
        rc = metric_sum(buf, "ringcast_storage_fsync_seconds_sum", &out->fsync_s);
    if (rc == 0)
        rc = metric_sum(buf, "ringcast_storage_durable_events", &out->durable);
    free(buf);
    return rc;
}

/* A complete RESP bulk string ("$<len>\r\n<len bytes>\r\n") or an error line. */
static int resp_done(const char *buf, size_t len)
{
    if (buf[0] == '-')
        return memchr(buf, '\n', len) != NULL;
    const char *nl = memchr(buf, '\n', len);
    if (buf[0] != '$' || nl == NULL)
        return 0;
    long want = strtol(buf + 1, NULL, 10);
    return want < 0 || (size_t)(nl + 1 - buf) + (size_t)want + 2 <= len;
}

int rc_bench_redis_info(const rc_peer_t *p, const char *section, const char *field, char *val,
                        size_t cap)
{
    if (p->kind != RC_PEER_REDIS || p->port <= 0)
        return -ENOENT;
    int fd = connect_loopback(p->port);
    if (fd < 0)
        return fd;
    char req[64], buf[16384];
    snprintf(req, sizeof(req), "INFO %s\r\n", section);
    ssize_t n = exchange(fd, req, buf, sizeof(buf), resp_done);
    close(fd);
    if (n < 0)
        return (int)n;
    if (buf[0] != '$')
        return -EPROTO;
    size_t flen = strlen(field);
    for (const char *l = strchr(buf, '\n'); l != NULL; l = strchr(l, '\n')) {
        l++;
        if (strncmp(l, field, flen) == 0 && l[flen] == ':') {
            size_t vlen = strcspn(l + flen + 1, "\r\n");
            vlen = vlen < cap - 1 ? vlen : cap - 1;
            memcpy(val, l + flen + 1, vlen);
            val[vlen] = 0;
            return 0;
        }
    }
    return -ENOENT;
}

void rc_bench_peer_mark(rc_peer_t *p)
{
    p->cpu0 = p->pid > 0 ? rc_bench_cpu_s(p->pid) : 0;
}

void rc_bench_peer_usage(const rc_peer_t *p, double *cpu_s, double *rss_mib, double *shm_mib)
{
    double c = p->pid > 0 ? rc_bench_cpu_s(p->pid) : -1;
    *cpu_s = c >= 0 ? c - p->cpu0 : -1;
    *rss_mib = p->pid > 0 ? rc_bench_rss_mib(p->pid) : -1;
    *shm_mib = p->pid > 0 ? rc_bench_shm_mib(p->pid) : -1;
}

void rc_bench_peer_stop(rc_peer_t *p)
{
    if (p->pid > 0)
        rc_bench_stop(p->pid);
    p->pid = 0;
    if (p->ring[0]) {
        char path[96];
        snprintf(path, sizeof(path), "/dev/shm/%s", p->ring);
        unlink(path);
        snprintf(path, sizeof(path), "/dev/shm/%s.cursors", p->ring); /* its saved cursors */
        unlink(path);
        snprintf(path, sizeof(path), "/dev/shm/%s.timeindex", p->ring); /* its time index */
        unlink(path);
        snprintf(path, sizeof(path), "/dev/shm/%s.redis", p->ring); /* a redis mirror's place */
        unlink(path);
        p->ring[0] = 0;
    }
    if (p->dir[0])
        rc_bench_rmtree(p->dir);
    p->dir[0] = 0;
    if (p->store[0])
        rc_bench_rmtree(p->store);
    p->store[0] = 0;
}
