/* Threads: the main thread runs the admin server, the signal watchers and the stop sequence;
 * every ingress loop runs on its own thread. All handles are created on the main thread before
 * the loop threads start (thread creation orders those writes before the threads' reads); after
 * that each loop is touched only by its own thread, except through its uv_async_t. */
#include "net/serve.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/log.h"
#include "net/admin.h"
#include "net/apply.h"
#include "net/dapr.h"
#include "net/http/http_server.h"
#include "net/dedup.h"
#include "net/ingress.h"
#include "net/lag_watch.h"
#include "net/dapr_subscribe.h"
#include "net/delivery/supervisor.h"
#include "net/storage/storage.h"
#include "shm/ring.h"
#include "shm/ring_name.h"

typedef struct {
    rc_ingress_t ig; /* first: holds the 64-byte aligned metrics */
    rc_dapr_t dapr;  /* the Dapr API on the ingress port (counted in ig.metrics) */
    uv_loop_t loop;
    uv_async_t stop;
    uv_thread_t thread;
    rc_http_server_t *srv;
    int loop_ready;
    int thread_started;
    atomic_int finished;
} ingress_loop_t;

/* An apply or delete whose answer waits for the reload it started (admin_write). */
typedef struct apply_wait_s {
    struct apply_wait_s *next;
    uint64_t conn_id;
    uint64_t target;   /* reloads ended (applied + rejected) once ours has */
    uint64_t rejected; /* rejected reloads before ours */
    uint64_t deadline; /* uv_now(): answer by then whatever the reload does */
    int status;
    char *json;
} apply_wait_t;

typedef struct {
    const rc_config_t *cfg;
    rc_ingress_broker_t *brokers;
    size_t nbrokers;
    ingress_loop_t *loops;
    uint32_t nloops;
    uv_loop_t *main_loop;
    rc_http_server_t *admin_srv;
    rc_admin_t admin;
    uv_signal_t sigterm, sigint;
    uv_timer_t stop_timer;
    uv_timer_t apply_timer; /* answers the applies waiting for their reload */
    apply_wait_t *apply_waits;
    atomic_int ready;
    int stopping;
    rc_http_server_shared_t ingress_shared; /* connections and body memory over all loops */
    rc_http_server_shared_t admin_shared;
    /* The Dapr API's own listener (spec.dapr.listen), on the main loop; NULL without one. */
    rc_http_server_t *dapr_srv;
    rc_dapr_t *dapr;
    rc_ingress_metrics_t *dapr_metrics;
    rc_http_server_shared_t dapr_shared;
    rc_supervisor_t *sup; /* delivery workers */
    rc_lag_watch_t *lag; /* group lag limits, who holds each ring back */
    rc_dapr_subs_t *dapr_subs; /* the apps' programmatic Dapr subscriptions */
    rc_dapr_listing_t dapr_listing; /* the same, as /v1.0/metadata lists them */
    rc_ring_gauge_t *gauges;  /* per broker, filled for each /metrics or status request */
    rc_lag_holder_t *holders; /* the strings of gauges[i].holder */
    rc_storage_local_reader_t *readers; /* RC_METRICS_READERS_MAX per broker: gauges[i].readers */
    rc_storage_t **stores;              /* per broker, for the admin's view (the sample, replays) */
    char ingress_addr[RC_CONFIG_ADDR_MAX + 16]; /* "host:port", the port the ingress got */
    int64_t started_ms;
} serve_t;

/* File descriptors the ingress leaves free (http_server.h, fd_reserve): room for the admin
 * listener's connections and for what the process opens later (a restarted worker's pipes, the
 * config on a reload). The admin listener keeps a smaller reserve of its own, so /healthz and
 * /metrics still answer while the ingress refuses connections for want of descriptors. */
#define ADMIN_MAX_CONNECTIONS 64
#define ADMIN_FD_RESERVE      8
#define INGRESS_FD_RESERVE    (ADMIN_MAX_CONNECTIONS + 32)
/* The largest body `ringcast apply` may send: manifests, not events (413 above). */
#define RC_ADMIN_MAX_BODY (1u << 20)
/* Descriptors serve holds besides connections (loops, rings, signal pipes, workers), roughly. */
#define SERVE_OWN_FDS 64

/* "host:port", with brackets around an IPv6 host. */
static const char *addr_str(char *buf, size_t cap, const char *host, int port)
{
    snprintf(buf, cap, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    return buf;
}

static void ingress_limits(const rc_config_t *cfg, uint32_t nloops, rc_http_limits_t *l)
{
    rc_http_limits_default(l);
    l->max_body_bytes = cfg->limits.max_batch_bytes > cfg->limits.max_event_bytes
                            ? cfg->limits.max_batch_bytes
                            : cfg->limits.max_event_bytes;
    l->max_header_bytes = cfg->limits.max_header_bytes;
    l->max_connections = cfg->limits.max_connections; /* shared by all loops */
    l->header_timeout_ms = cfg->limits.header_timeout_ms;
    l->body_timeout_ms = cfg->limits.body_timeout_ms;
    l->idle_timeout_ms = cfg->limits.idle_timeout_ms;
    l->drain_timeout_ms = cfg->shutdown_timeout_ms;
    l->max_body_memory = cfg->limits.max_body_memory; /* shared by all loops */
    l->fd_reserve = INGRESS_FD_RESERVE;
    l->retry_after_s = cfg->retry_after_s;
}

/* Each ingress connection needs a descriptor. Many systems start services with a soft
 * open-files limit of 1024 under a far higher hard one, for the program that needs more to
 * raise: raise the soft limit as far as maxConnections needs and the hard limit allows, and
 * warn when it stays short (connections past it get 503, see INGRESS_FD_RESERVE). */
static void raise_fd_limit(const rc_config_t *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return;
    rlim_t need = (rlim_t)cfg->limits.max_connections + INGRESS_FD_RESERVE + SERVE_OWN_FDS;
    rlim_t old = rl.rlim_cur;
    if (old >= need)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (rl.rlim_cur > old && setrlimit(RLIMIT_NOFILE, &rl) == 0)
        rc_log_info("serve", "open-files limit raised from %llu to %llu", (unsigned long long)old,
                    (unsigned long long)rl.rlim_cur);
    else
        rl.rlim_cur = old;
    if (rl.rlim_cur < need)
        rc_log_warn("serve",
                    "the open-files limit (%llu) leaves room for fewer ingress connections than "
                    "maxConnections (%u); connections past it get 503. Raise it (ulimit -n, "
                    "LimitNOFILE=) to at least %llu",
                    (unsigned long long)rl.rlim_cur, cfg->limits.max_connections,
                    (unsigned long long)need);
}

/* ---- ingress loop thread ----------------------------------------------------------------- */

static void on_loop_server_closed(void *arg)
{
    ingress_loop_t *l = arg;
    rc_ingress_detach(&l->ig);
    uv_close((uv_handle_t *)&l->stop, NULL);
}

static void on_loop_drained(rc_http_server_t *s, void *arg)
{
    ingress_loop_t *l = arg;
    l->srv = NULL;
    rc_http_server_close(s, on_loop_server_closed, l);
}

static void on_loop_stop(uv_async_t *a)
{
    ingress_loop_t *l = a->data;
    if (l->srv != NULL)
        rc_http_server_drain(l->srv, on_loop_drained, l);
}

static void loop_thread(void *arg)
{
    ingress_loop_t *l = arg;
    uv_run(&l->loop, UV_RUN_DEFAULT);
    /* Release pairs with the acquire in on_stop_timer: the loop's work is done. */
    atomic_store_explicit(&l->finished, 1, memory_order_release);
}

/* ---- admin ------------------------------------------------------------------------------- */

/* Descriptors the process has open, or -1 when they cannot be counted. Linux 6.2 and later give
 * the count as the size of /proc/self/fd, which a stat() reads without a descriptor of its own:
 * one opened here on every scrape could take the number an ingress thread just closed, a reuse
 * ThreadSanitizer reports as a race. Older kernels say 0: the directory is read (its descriptor
 * comes from the admin listener's reserve). */
static long open_fds(void)
{
    struct stat st;
    if (stat("/proc/self/fd", &st) == 0 && st.st_size > 0)
        return (long)st.st_size;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    long n = -1; /* the directory's own descriptor is listed too */
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* What the HTTP servers count themselves: body memory and the 503s of overload, for the ingress
 * loops together and for the admin listener. snprintf-like return. */
static size_t http_metrics(serve_t *sv, char *buf, size_t cap)
{
    const rc_http_server_shared_t *in = &sv->ingress_shared, *ad = &sv->admin_shared;
    struct rlimit rl;
    unsigned long long max_fds =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur : 0;
    long fds = open_fds();
#define LOAD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))
    int n = snprintf(
        buf, cap,
        "# HELP ringcast_ingress_body_memory_bytes Request body bytes the ingress holds.\n"
        "# TYPE ringcast_ingress_body_memory_bytes gauge\n"
        "ringcast_ingress_body_memory_bytes %llu\n"
        "# HELP ringcast_ingress_body_memory_limit_bytes Limit of the request body bytes held "
        "(maxBodyMemory).\n"
        "# TYPE ringcast_ingress_body_memory_limit_bytes gauge\n"
        "ringcast_ingress_body_memory_limit_bytes %llu\n"
        "# HELP ringcast_http_refused_total Requests and connections answered 503 because a "
        "limit was reached.\n"
        "# TYPE ringcast_http_refused_total counter\n"
        "ringcast_http_refused_total{listener=\"ingress\",limit=\"body_memory\"} %llu\n"
        "ringcast_http_refused_total{listener=\"ingress\",limit=\"file_descriptors\"} %llu\n"
        "ringcast_http_refused_total{listener=\"ingress\",limit=\"connections\"} %llu\n"
        "ringcast_http_refused_total{listener=\"admin\",limit=\"file_descriptors\"} %llu\n"
        "ringcast_http_refused_total{listener=\"admin\",limit=\"connections\"} %llu\n"
        "# HELP process_max_fds Maximum number of open file descriptors.\n"
        "# TYPE process_max_fds gauge\n"
        "process_max_fds %llu\n",
        LOAD(in->body_memory), (unsigned long long)sv->cfg->limits.max_body_memory,
        LOAD(in->body_refused.total), LOAD(in->fd_refused.total), LOAD(in->conns_refused.total),
        LOAD(ad->fd_refused.total), LOAD(ad->conns_refused.total), max_fds);
#undef LOAD
    size_t len = n > 0 ? (size_t)n : 0;
    if (fds >= 0) {
        n = snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0,
                     "# HELP process_open_fds Number of open file descriptors.\n"
                     "# TYPE process_open_fds gauge\n"
                     "process_open_fds %ld\n",
                     fds);
        len += n > 0 ? (size_t)n : 0;
    }
    return len;
}

static int admin_ready(void *arg)
{
    serve_t *sv = arg;
    return atomic_load_explicit(&sv->ready, memory_order_relaxed);
}

/* The trigger behind a worker's feed, for the lag watch (rc_lag_namer_t). */
static int name_feed(void *arg, size_t broker, const char *reader, char *out, size_t cap, int *pid)
{
    serve_t *sv = arg;
    return sv->sup ? rc_supervisor_feed_holder(sv->sup, broker, reader, out, cap, pid) : -ENOENT;
}

/* Who holds ring `i` back and its consumer groups, into its gauge (`h` keeps the strings). */
static void lag_gauges(serve_t *sv, size_t i, rc_lag_holder_t *h, rc_ring_gauge_t *g)
{
    if (sv->lag == NULL)
        return;
    if (rc_lag_watch_holder(sv->lag, i, h) == 0) {
        g->holder = h->h.name;
        g->holder_trigger = h->trigger;
        g->holder_pid = h->h.pid;
        g->holder_lag_bytes = h->h.lag_bytes;
        g->holder_lag_events = h->h.lag_events;
    }
    g->refused = h->h.refused;
    g->groups = rc_lag_watch_groups(sv->lag, i, &g->ngroups);
}

/* Each broker's ring gauges into sv->gauges: /metrics renders them, the status API shows them
 * (net/admin.h). */
static void fill_gauges(serve_t *sv)
{
    memset(sv->gauges, 0, sv->nbrokers * sizeof(*sv->gauges));
    memset(sv->holders, 0, sv->nbrokers * sizeof(*sv->holders));
    for (size_t i = 0; i < sv->nbrokers; i++) {
        rc_ring_gauge_t *g = &sv->gauges[i];
        g->ns = sv->brokers[i].ns;
        g->name = sv->brokers[i].name;
        rc_storage_stats_t st;
        rc_storage_stats(sv->brokers[i].store, &st);
        g->used_bytes = st.used;
        g->capacity_bytes = st.capacity;
        g->events = st.head_seq;
        g->readers = st.readers;
        g->lossless = st.lossless;
        g->storage = st.kind;
        g->durability = st.durability;
        g->file_bytes = st.file_bytes;
        g->corrupt = st.corrupt;
        g->fsyncs = st.fsyncs;
        g->fsync_ns = st.fsync_ns;
        g->durable_events = st.durable_seq;
        g->redis_acked = st.redis_acked;
        g->redis_down = st.redis_down;
        g->redis_refused = st.redis_refused;
        g->mirrored = st.mirrored;
        g->mirror_skipped = st.mirror_skipped;
        g->mirror_lag_entries = st.mirror_lag_entries;
        g->mirror_lag_ms = st.mirror_lag_ms;
        g->mirror_trimmed = st.mirror_trimmed;
        g->redis_aged = st.redis_aged;
        lag_gauges(sv, i, &sv->holders[i], g);
        if (sv->brokers[i].dedup != NULL) {
            g->dedup = 1;
            rc_dedup_stats(sv->brokers[i].dedup, &g->dedup_st);
        }
        rc_storage_local_reader_t *rd = &sv->readers[i * RC_METRICS_READERS_MAX];
        int nr = rc_storage_readers(sv->brokers[i].store, rd, RC_METRICS_READERS_MAX);
        g->readers_list = rd;
        g->nreaders = nr < 0 ? 0 : nr > RC_METRICS_READERS_MAX ? RC_METRICS_READERS_MAX : (size_t)nr;
    }
}

static void admin_view(void *arg, rc_admin_view_t *v)
{
    serve_t *sv = arg;
    fill_gauges(sv);
    v->brokers = sv->gauges;
    v->nbrokers = sv->nbrokers;
    v->ingress = sv->ingress_addr;
    v->started_ms = sv->started_ms;
    v->sup = sv->sup;
    if (sv->stores == NULL)
        sv->stores = calloc(sv->nbrokers ? sv->nbrokers : 1, sizeof(*sv->stores));
    for (size_t i = 0; sv->stores != NULL && i < sv->nbrokers; i++)
        sv->stores[i] = sv->brokers[i].store;
    v->stores = sv->stores;
}

static size_t admin_metrics(void *arg, char *buf, size_t cap)
{
    serve_t *sv = arg;
    /* The Dapr listener's requests count as one more loop's. */
    uint32_t nm = sv->nloops + (sv->dapr_metrics != NULL);
    rc_ingress_metrics_t *m = aligned_alloc(64, sizeof(*m) * nm);
    size_t n = 0;
    if (m != NULL) {
        for (uint32_t i = 0; i < sv->nloops; i++)
            rc_metrics_copy(&m[i], &sv->loops[i].ig.metrics);
        if (sv->dapr_metrics != NULL)
            rc_metrics_copy(&m[sv->nloops], sv->dapr_metrics);
        fill_gauges(sv);
        n = rc_metrics_render(m, nm, sv->gauges, sv->nbrokers, buf, cap);
        n += http_metrics(sv, n < cap ? buf + n : NULL, n < cap ? cap - n : 0);
        if (sv->sup != NULL)
            n += rc_supervisor_metrics(sv->sup, n < cap ? buf + n : NULL, n < cap ? cap - n : 0);
        n += rc_dapr_subs_metrics(sv->dapr_subs, n < cap ? buf + n : NULL, n < cap ? cap - n : 0);
        n += rc_metrics_process(n < cap ? buf + n : NULL, n < cap ? cap - n : 0);
    }
    free(m);
    return n;
}

static int apply_check(void *arg, const rc_config_t *nc, char *err, size_t err_len)
{
    serve_t *sv = arg;
    return rc_supervisor_check(sv->sup, nc, err, err_len);
}

/* Answers a held apply; a reload that was rejected after all (its log line says why) is a
 * warning in the answer: the state file is written and the next reload or start loads it. */
static void answer_apply(serve_t *sv, apply_wait_t *h, int rejected)
{
    cJSON *j = rejected ? cJSON_Parse(h->json) : NULL;
    cJSON *w = j != NULL ? cJSON_GetObjectItem(j, "warnings") : NULL;
    char *text = NULL;
    if (cJSON_IsArray(w)) {
        cJSON_AddItemToArray(
            w, cJSON_CreateString("the reload was rejected (the broker's log says why): the "
                                  "state file is written, and the next reload or start loads "
                                  "it"));
        text = cJSON_PrintUnformatted(j);
    }
    cJSON_Delete(j);
    rc_http_server_response_t res;
    memset(&res, 0, sizeof(res));
    res.status = h->status;
    res.content_type = "application/json";
    res.body = text != NULL ? text : h->json;
    res.body_len = strlen(res.body);
    if (sv->admin_srv != NULL)
        (void)rc_http_server_respond(sv->admin_srv, h->conn_id, &res); /* -ENOENT: it left */
    free(text);
    free(h->json);
    free(h);
}

/* Answers every held apply whose reload has ended (all of them when `all`). */
static void answer_applies(serve_t *sv, int all)
{
    uint64_t applied = 0, rejected = 0;
    if (sv->sup != NULL)
        rc_supervisor_reload_state(sv->sup, &applied, &rejected);
    uint64_t now = uv_now(sv->main_loop);
    for (apply_wait_t **p = &sv->apply_waits; *p != NULL;) {
        apply_wait_t *h = *p;
        if (all || sv->sup == NULL || applied + rejected >= h->target || now >= h->deadline) {
            *p = h->next;
            answer_apply(sv, h, rejected > h->rejected);
        } else {
            p = &h->next;
        }
    }
    if (sv->apply_waits == NULL)
        uv_timer_stop(&sv->apply_timer);
}

static void on_apply_timer(uv_timer_t *t)
{
    answer_applies(t->data, 0);
}

/* Starts the reload of an apply and holds its answer until that reload has ended, so that
 * what the CLI prints is in effect when it returns. Returns 0 (held), or `status` when the
 * answer cannot wait (no memory): then it goes at once. */
static int hold_for_reload(serve_t *sv, uint64_t conn_id, int status, char **json)
{
    uint64_t applied, rejected;
    int busy = rc_supervisor_reload_state(sv->sup, &applied, &rejected);
    int rc = rc_supervisor_reload(sv->sup);
    apply_wait_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return status;
    /* During a reload this one runs after it: two reloads end before ours has. One refused at
     * once has ended already (the timer answers it with the warning). */
    h->target = rc != 0 ? 0 : applied + rejected + (busy ? 2 : 1);
    h->rejected = rejected;
    h->deadline = uv_now(sv->main_loop) + sv->cfg->shutdown_timeout_ms + 5000;
    h->conn_id = conn_id;
    h->status = status;
    h->json = *json;
    *json = NULL;
    h->next = sv->apply_waits;
    sv->apply_waits = h;
    if (!uv_is_active((uv_handle_t *)&sv->apply_timer))
        uv_timer_start(&sv->apply_timer, on_apply_timer, 10, 10);
    return 0;
}

/* POST .../apply and .../delete (net/apply.h): the state file is replaced only when the change
 * checks out as a reload would check it, then the reload SIGHUP takes applies it. */
static int admin_write(void *arg, rc_apply_op_t op, const char *body, size_t len,
                       uint64_t conn_id, char **json)
{
    serve_t *sv = arg;
    *json = NULL;
    if (sv->sup == NULL || sv->stopping) {
        *json = strdup("{\"apiVersion\":\"v1\",\"kind\":\"Status\",\"status\":\"Failure\","
                       "\"message\":\"the broker is stopping\",\"reason\":"
                       "\"ServiceUnavailable\",\"code\":503}");
        return 503;
    }
    const char *src = sv->cfg->source;
    rc_apply_ctx_t ctx = {
        .config = src != NULL && strcmp(src, "(default)") != 0 ? src : NULL,
        .state = sv->cfg->state_file,
        .check = apply_check,
        .arg = sv,
    };
    int changed = 0;
    int status = rc_apply_run(&ctx, op, body, len, json, &changed);
    if (changed) {
        rc_log_info("serve", "%s: %s written, reloading",
                    op == RC_APPLY_APPLY ? "apply" : "delete", ctx.state);
        return hold_for_reload(sv, conn_id, status, json);
    } else if (status != 200) {
        rc_log_info("serve", "%s refused (%d): %s", op == RC_APPLY_APPLY ? "apply" : "delete",
                    status, *json != NULL ? *json : "");
    }
    return status;
}

/* An app's programmatic subscriptions changed: reload, which re-reads the file and adds them. */
static void on_dapr_subs_changed(void *arg)
{
    serve_t *sv = arg;
    if (sv->sup != NULL && !sv->stopping)
        rc_supervisor_reload(sv->sup);
}

/* Called with each config a reload has read: its notes are logged like a start's. */
static int add_dapr_subs(void *arg, rc_config_t *nc)
{
    serve_t *sv = arg;
    rc_config_log_notes(nc);
    int rc = sv->dapr_subs != NULL ? rc_dapr_subs_apply(sv->dapr_subs, nc) : 0;
    return rc == 0 ? rc_dapr_listing_set(&sv->dapr_listing, nc) : rc;
}

/* ---- stop sequence ----------------------------------------------------------------------- */

static void on_admin_drained(rc_http_server_t *s, void *arg)
{
    serve_t *sv = arg;
    sv->admin_srv = NULL;
    rc_http_server_close(s, NULL, NULL);
}

/* The last step: the admin listener goes last so /readyz says 503 until then. */
static void finish_stop(serve_t *sv)
{
    rc_lag_watch_close(sv->lag);
    sv->lag = NULL;
    uv_close((uv_handle_t *)&sv->sigterm, NULL);
    uv_close((uv_handle_t *)&sv->sigint, NULL);
    uv_close((uv_handle_t *)&sv->apply_timer, NULL);
    if (sv->admin_srv != NULL)
        rc_http_server_drain(sv->admin_srv, on_admin_drained, sv);
}

static void on_supervisor_stopped(void *arg)
{
    serve_t *sv = arg;
    sv->sup = NULL;
    finish_stop(sv);
}

static void on_dapr_closed(void *arg)
{
    serve_t *sv = arg;
    rc_dapr_detach(sv->dapr); /* its held answers need the server: gone with it */
}

static void on_dapr_drained(rc_http_server_t *s, void *arg)
{
    serve_t *sv = arg;
    sv->dapr_srv = NULL;
    rc_http_server_close(s, on_dapr_closed, sv);
}

static void on_stop_timer(uv_timer_t *t)
{
    serve_t *sv = t->data;
    if (sv->dapr_srv != NULL)
        return;
    for (uint32_t i = 0; i < sv->nloops; i++) {
        if (sv->loops[i].thread_started &&
            !atomic_load_explicit(&sv->loops[i].finished, memory_order_acquire))
            return;
    }
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    /* Every ingress loop has ended, so no new events: the workers finish what is in flight,
     * then stop, while this loop keeps answering the admin listener. */
    if (sv->sup == NULL ||
        rc_supervisor_stop(sv->sup, sv->cfg->shutdown_timeout_ms, on_supervisor_stopped, sv) != 0)
        finish_stop(sv);
}

static void begin_stop(serve_t *sv, const char *why)
{
    if (sv->stopping)
        return;
    sv->stopping = 1;
    rc_log_info("serve", "%s: stopping (finishing requests in flight, up to %u ms)", why,
                sv->cfg->shutdown_timeout_ms);
    atomic_store_explicit(&sv->ready, 0, memory_order_relaxed);
    answer_applies(sv, 1); /* their reloads will not happen now */
    rc_dapr_subs_close(sv->dapr_subs);
    sv->dapr_subs = NULL;
    for (uint32_t i = 0; i < sv->nloops; i++) {
        if (sv->loops[i].thread_started)
            uv_async_send(&sv->loops[i].stop);
    }
    if (sv->dapr_srv != NULL)
        rc_http_server_drain(sv->dapr_srv, on_dapr_drained, sv);
    uv_timer_start(&sv->stop_timer, on_stop_timer, 0, 20);
}

static void on_signal(uv_signal_t *h, int signum)
{
    serve_t *sv = h->data;
    begin_stop(sv, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- setup and teardown ------------------------------------------------------------------ */

static void teardown_loops(serve_t *sv)
{
    for (uint32_t i = 0; i < sv->nloops; i++) {
        ingress_loop_t *l = &sv->loops[i];
        if (l->thread_started) {
            uv_thread_join(&l->thread);
        } else if (l->loop_ready) {
            /* Never started: close what was created and let the loop release it. */
            if (l->srv != NULL)
                rc_http_server_close(l->srv, on_loop_server_closed, l);
            else
                uv_close((uv_handle_t *)&l->stop, NULL);
            uv_run(&l->loop, UV_RUN_DEFAULT);
        }
        if (l->loop_ready && uv_loop_close(&l->loop) != 0)
            rc_log_warn("serve", "ingress loop %u closed with handles still open", i);
        rc_ingress_close(&l->ig);
        rc_dapr_close(&l->dapr);
    }
}

/* A broker's deduplication table (docs/delivery.md, "Deduplication"), filled with the keys of
 * the events its store holds from within the window: what the last run accepted. */
static int open_dedup(rc_ingress_broker_t *b, const rc_config_broker_t *cb)
{
    uint64_t window_ns = (uint64_t)cb->dedup_window_ms * 1000000ull, loaded = 0;
    int rc = rc_dedup_open(window_ns, cb->dedup_capacity, &b->dedup);
    if (rc != 0) {
        rc_log_error("serve", "broker %s/%s: deduplication table: %s", b->ns, b->name,
                     rc_strerror(rc));
        return rc;
    }
    uint64_t t0 = rc_now_ns();
    rc = rc_dedup_load(b->dedup, b->store, rc_wall_ns(), &loaded);
    rc_dedup_stats_t st;
    rc_dedup_stats(b->dedup, &st);
    if (rc != 0)
        rc_log_warn("serve",
                    "broker %s/%s: deduplication starts empty: the store could not be read (%s)",
                    b->ns, b->name, rc_strerror(rc));
    else
        rc_log_info("serve",
                    "broker %s/%s: deduplication over %u ms, up to %llu keys (%llu MiB); %llu "
                    "keys of events still in the store loaded in %.1f ms",
                    b->ns, b->name, cb->dedup_window_ms, (unsigned long long)st.capacity,
                    (unsigned long long)(st.capacity * RC_DEDUP_BYTES_PER_KEY >> 20),
                    (unsigned long long)loaded, (double)(rc_now_ns() - t0) / 1e6);
    return 0;
}

/* Opens each broker's store (net/storage/storage.h says what survives a restart): a shm ring,
 * or a ring file in its storage directory (docs/durability.md), which the store checks exists
 * and is writable, and recovers. */
static int open_stores(serve_t *sv)
{
    const rc_config_t *cfg = sv->cfg;
    for (size_t i = 0; i < sv->nbrokers; i++) {
        rc_ingress_broker_t *b = &sv->brokers[i];
        const rc_config_storage_t *cs = &cfg->brokers[i].storage;
        rc_storage_config_t sc = {
            .kind = cs->type == RC_CONFIG_STORAGE_FILE    ? RC_STORAGE_FILE
                    : cs->type == RC_CONFIG_STORAGE_REDIS ? RC_STORAGE_REDIS
                                                          : RC_STORAGE_SHM,
            .ns = b->ns,
            .broker = b->name,
            .prefix = cfg->ring_prefix,
            .directory = cs->directory,
            /* The two enums agree (none 0, batch 1, sync 2). */
            .durability = (rc_storage_durability_t)cs->durability,
            .flush_interval_ms = cs->flush_interval_ms,
            .capacity = cfg->ring_bytes,
            /* One cursor (feed) per worker with triggers on this broker, twice during a
             * reload (old and new feeds), plus room for tails. */
            .readers = 2 * RC_CONFIG_WORKERS_MAX + 32,
            /* RC_STORAGE_REDIS: spec.redis (docs/scaleout.md) */
            .redis_host = cfg->redis.host,
            .redis_port = cfg->redis.port,
            .redis_addresses = cfg->redis.addresses,
            .redis_n_addresses = cfg->redis.n_addresses,
            .redis_password = cfg->redis.password,
            .redis_partitions = cfg->redis.partitions,
            .redis_max_len = cfg->redis.max_len,
            .redis_max_age_ms = cfg->redis.max_age_ms,
            .redis_replicas = cfg->redis.replicas,
            .redis_wait_timeout_ms = cfg->redis.wait_timeout_ms,
        };
        char err[512];
        int rc = rc_storage_open(&sc, &b->store, err, sizeof(err));
        if (rc != 0) {
            rc_log_error("serve", "broker %s/%s: %s", b->ns, b->name, err);
            return rc;
        }
        if (cfg->brokers[i].dedup_window_ms != 0 && (rc = open_dedup(b, &cfg->brokers[i])) != 0)
            return rc;
    }
    return 0;
}

/* Marks the memory rings that do not exist yet: this start creates them, and a start that fails
 * (a busy port) removes them again rather than leave an empty ring behind that `rings ls` would
 * show as stale. A ring it attached to (events of an earlier run) or a file store is kept. */
static void mark_fresh_rings(const serve_t *sv, unsigned char *fresh)
{
    const rc_config_t *cfg = sv->cfg;
    for (size_t i = 0; i < sv->nbrokers; i++) {
        char nm[RC_RING_NAME_MAX + 1], path[RC_RING_NAME_MAX + 16];
        struct stat st;
        if (cfg->brokers[i].storage.type == RC_CONFIG_STORAGE_FILE ||
            rc_ring_name_for(cfg->ring_prefix, cfg->brokers[i].ns, cfg->brokers[i].name, nm,
                             sizeof(nm)) != 0)
            continue;
        snprintf(path, sizeof(path), "/dev/shm/%s", nm);
        fresh[i] = stat(path, &st) != 0 && errno == ENOENT;
    }
}

/* After close_stores of a failed start: removes the rings mark_fresh_rings found missing, under
 * their lock (rc_ring_remove refuses one another broker holds now), with their cursors. */
static void remove_fresh_rings(const serve_t *sv, const unsigned char *fresh)
{
    const rc_config_t *cfg = sv->cfg;
    for (size_t i = 0; i < sv->nbrokers; i++) {
        char nm[RC_RING_NAME_MAX + 1], cur[RC_RING_NAME_MAX + 16], err[512];
        if (!fresh[i] || rc_ring_name_for(cfg->ring_prefix, cfg->brokers[i].ns,
                                          cfg->brokers[i].name, nm, sizeof(nm)) != 0)
            continue;
        int rc = rc_ring_remove(nm, err, sizeof(err));
        if (rc == 0) {
            snprintf(cur, sizeof(cur), "/%s.cursors", nm);
            (void)shm_unlink(cur);
            snprintf(cur, sizeof(cur), "/%s.timeindex", nm);
            (void)shm_unlink(cur);
            snprintf(cur, sizeof(cur), "/%s.redis", nm); /* a redis store's mirror position */
            (void)shm_unlink(cur);
            rc_log_info("serve", "broker %s/%s: removed ring '%s' this failed start created",
                        cfg->brokers[i].ns, cfg->brokers[i].name, nm);
        } else if (rc != -ENOENT) {
            rc_log_warn("serve", "broker %s/%s: cannot remove the ring this start created: %s",
                        cfg->brokers[i].ns, cfg->brokers[i].name, err);
        }
    }
}

static void close_stores(serve_t *sv)
{
    for (size_t i = 0; i < sv->nbrokers; i++) {
        rc_storage_close(sv->brokers[i].store);
        sv->brokers[i].store = NULL;
        rc_dedup_close(sv->brokers[i].dedup);
        sv->brokers[i].dedup = NULL;
    }
}

static int setup_loops(serve_t *sv, int *port)
{
    const rc_config_t *cfg = sv->cfg;
    for (uint32_t i = 0; i < sv->nloops; i++) {
        ingress_loop_t *l = &sv->loops[i];
        int rc =
            rc_ingress_init(&l->ig, sv->brokers, sv->nbrokers, &cfg->limits, cfg->retry_after_s);
        if (rc == 0)
            rc = rc_dapr_init(&l->dapr, cfg, sv->brokers, sv->nbrokers, &l->ig.metrics);
        if (rc != 0)
            return rc;
        l->dapr.listing = &sv->dapr_listing;
        l->ig.dapr = &l->dapr;
        rc = uv_loop_init(&l->loop);
        if (rc != 0)
            return rc;
        l->loop_ready = 1;
        uv_async_init(&l->loop, &l->stop, on_loop_stop);
        l->stop.data = l;
        rc_http_server_options_t o;
        memset(&o, 0, sizeof(o));
        o.host = cfg->listen_host;
        o.port = *port;
        o.reuseport = 1;
        o.join = i > 0;
        o.shared = &sv->ingress_shared;
        o.name = "ingress";
        ingress_limits(cfg, sv->nloops, &o.limits);
        rc_ingress_handler(&l->ig, &o.handler);
        rc = rc_http_server_create(&l->loop, &o, &l->srv);
        if (rc != 0) {
            char a[RC_CONFIG_ADDR_MAX + 16];
            rc_log_error("serve", "cannot listen on %s: %s",
                         addr_str(a, sizeof(a), cfg->listen_host, *port), rc_strerror(rc));
            return rc;
        }
        *port = rc_http_server_port(l->srv); /* port 0: the other loops join the chosen port */
        if ((rc = rc_ingress_attach(&l->ig, &l->loop, l->srv)) != 0)
            return rc;
    }
    return 0;
}

/* The Dapr API's own listener (spec.dapr.listen) on the main loop, with the ingress's limits
 * and a metrics block of its own (rendered with the ingress loops'). */
static int setup_dapr(serve_t *sv)
{
    const rc_config_t *cfg = sv->cfg;
    sv->dapr = malloc(sizeof(*sv->dapr));
    sv->dapr_metrics = aligned_alloc(64, sizeof(*sv->dapr_metrics));
    if (sv->dapr == NULL || sv->dapr_metrics == NULL)
        return -ENOMEM;
    memset(sv->dapr_metrics, 0, sizeof(*sv->dapr_metrics));
    int rc = rc_dapr_init(sv->dapr, cfg, sv->brokers, sv->nbrokers, sv->dapr_metrics);
    if (rc != 0)
        return rc;
    sv->dapr->listing = &sv->dapr_listing;
    rc_http_server_options_t o;
    memset(&o, 0, sizeof(o));
    o.host = cfg->dapr_host;
    o.port = cfg->dapr_port;
    o.shared = &sv->dapr_shared;
    o.name = "dapr";
    ingress_limits(cfg, 1, &o.limits);
    rc_dapr_handler(sv->dapr, &o.handler);
    rc = rc_http_server_create(sv->main_loop, &o, &sv->dapr_srv);
    if (rc != 0) {
        char a[RC_CONFIG_ADDR_MAX + 16];
        rc_log_error("serve", "cannot listen on %s (dapr): %s",
                     addr_str(a, sizeof(a), cfg->dapr_host, cfg->dapr_port), rc_strerror(rc));
        return rc;
    }
    return rc_dapr_attach(sv->dapr, sv->main_loop, sv->dapr_srv);
}

static void close_dapr(serve_t *sv)
{
    rc_dapr_close(sv->dapr);
    free(sv->dapr);
    free(sv->dapr_metrics);
    sv->dapr = NULL;
    sv->dapr_metrics = NULL;
}

/* The tables of a serve_t sized by the configuration; -ENOMEM when one is missing (the
 * caller frees what was allocated). */
static int serve_alloc(serve_t *sv, const rc_config_t *cfg)
{
    size_t nb = cfg->broker_count ? cfg->broker_count : 1;
    sv->cfg = cfg;
    sv->nloops = cfg->ingress_loops ? cfg->ingress_loops : 1;
    sv->nbrokers = cfg->broker_count;
    sv->brokers = calloc(nb, sizeof(*sv->brokers));
    sv->loops = aligned_alloc(64, sizeof(*sv->loops) * sv->nloops);
    sv->gauges = calloc(nb, sizeof(*sv->gauges));
    sv->holders = calloc(nb, sizeof(*sv->holders));
    sv->readers = calloc(nb * RC_METRICS_READERS_MAX, sizeof(*sv->readers));
    sv->started_ms = rc_wall_ns() / 1000000;
    if (sv->brokers == NULL || sv->loops == NULL || sv->gauges == NULL || sv->holders == NULL ||
        sv->readers == NULL)
        return -ENOMEM;
    memset(sv->loops, 0, sizeof(*sv->loops) * sv->nloops);
    for (size_t i = 0; i < sv->nbrokers; i++) {
        sv->brokers[i].ns = cfg->brokers[i].ns;
        sv->brokers[i].name = cfg->brokers[i].name;
        snprintf(sv->brokers[i].label, sizeof(sv->brokers[i].label), "%s/%s", cfg->brokers[i].ns,
                 cfg->brokers[i].name);
    }
    return 0;
}

/* The admin listener on the main loop (`port`: the ingress port, for the brokers' URLs). */
static int setup_admin(serve_t *sv, int port)
{
    const rc_config_t *cfg = sv->cfg;
    rc_http_server_options_t ao;
    memset(&ao, 0, sizeof(ao));
    ao.host = cfg->admin_host;
    ao.port = cfg->admin_port;
    ao.limits.max_connections = ADMIN_MAX_CONNECTIONS;
    ao.limits.drain_timeout_ms = 1000;
    ao.limits.fd_reserve = ADMIN_FD_RESERVE;
    ao.limits.retry_after_s = cfg->retry_after_s;
    ao.limits.max_body_bytes = RC_ADMIN_MAX_BODY;
    ao.shared = &sv->admin_shared;
    ao.name = "admin";
    sv->admin.ready = admin_ready;
    sv->admin.metrics = admin_metrics;
    sv->admin.view = admin_view;
    sv->admin.write = admin_write;
    sv->admin.token = cfg->admin_token;
    sv->admin.arg = sv;
    addr_str(sv->ingress_addr, sizeof(sv->ingress_addr), cfg->listen_host, port);
    rc_admin_handler(&sv->admin, &ao.handler);
    int rc = rc_http_server_create(sv->main_loop, &ao, &sv->admin_srv);
    if (rc != 0) {
        char a[RC_CONFIG_ADDR_MAX + 16];
        rc_log_error("serve", "cannot listen on %s (admin): %s",
                     addr_str(a, sizeof(a), cfg->admin_host, cfg->admin_port), rc_strerror(rc));
    }
    return rc;
}

/* The delivery side, on the main loop: the supervisor (which forks the workers: before any
 * ingress thread exists), the lag watch and the Dapr apps' subscriptions. */
static int start_delivery(serve_t *sv)
{
    rc_storage_t **stores = calloc(sv->nbrokers ? sv->nbrokers : 1, sizeof(*stores));
    int rc = stores != NULL ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < sv->nbrokers; i++)
        stores[i] = sv->brokers[i].store;
    if (rc == 0)
        rc = rc_supervisor_start(sv->main_loop, sv->cfg, stores, &sv->sup);
    if (rc != 0)
        rc_log_error("serve", "cannot start the delivery workers: %s", rc_strerror(rc));
    else if ((rc = rc_lag_watch_start(sv->main_loop, sv->cfg, stores, name_feed, sv, &sv->lag)) !=
             0)
        rc_log_error("serve", "cannot start the lag watch: %s", rc_strerror(rc));
    else if ((rc = rc_dapr_subs_start(sv->main_loop, sv->cfg, on_dapr_subs_changed, sv,
                                      &sv->dapr_subs)) != 0)
        rc_log_error("serve", "cannot start asking Dapr apps: %s", rc_strerror(rc));
    else
        rc_supervisor_set_config_hook(sv->sup, add_dapr_subs, sv);
    free(stores);
    return rc;
}

static int start_ingress_threads(serve_t *sv)
{
    for (uint32_t i = 0; i < sv->nloops; i++) {
        int rc = uv_thread_create(&sv->loops[i].thread, loop_thread, &sv->loops[i]);
        if (rc != 0) {
            rc_log_error("serve", "cannot start ingress thread: %s", rc_strerror(rc));
            return rc;
        }
        sv->loops[i].thread_started = 1;
    }
    return 0;
}

/* Ready: /readyz says so, the log and `ready_out` say where the listeners are. */
static void announce(serve_t *sv, int port, FILE *ready_out)
{
    const rc_config_t *cfg = sv->cfg;
    atomic_store_explicit(&sv->ready, 1, memory_order_relaxed);
    char ia[RC_CONFIG_ADDR_MAX + 16], aa[RC_CONFIG_ADDR_MAX + 16];
    addr_str(ia, sizeof(ia), cfg->listen_host, port);
    addr_str(aa, sizeof(aa), cfg->admin_host, rc_http_server_port(sv->admin_srv));
    rc_log_info("serve", "ingress on %s (%u loop%s), admin on %s, %zu broker%s", ia, sv->nloops,
                sv->nloops == 1 ? "" : "s", aa, sv->nbrokers, sv->nbrokers == 1 ? "" : "s");
    if (sv->dapr_srv != NULL) {
        char da[RC_CONFIG_ADDR_MAX + 16];
        rc_log_info("serve", "Dapr API on %s (and on the ingress port)",
                    addr_str(da, sizeof(da), cfg->dapr_host, rc_http_server_port(sv->dapr_srv)));
    }
    if (ready_out != NULL) {
        fprintf(ready_out, "listening ingress=%s admin=%s\n", ia, aa);
        fflush(ready_out);
    }
}

int rc_serve_run(const rc_config_t *cfg, FILE *ready_out)
{
    serve_t sv;
    memset(&sv, 0, sizeof(sv));
    int port = 0;
    unsigned char *fresh = calloc(cfg->broker_count ? cfg->broker_count : 1, 1);
    int rc = serve_alloc(&sv, cfg);
    if (rc == 0 && fresh == NULL)
        rc = -ENOMEM;
    if (rc != 0)
        goto out_free;
    raise_fd_limit(cfg);
    /* libuv writes responses with write(2): a client that reset its connection must cost an
     * EPIPE on that connection, not the broker (workers set their own disposition). */
    signal(SIGPIPE, SIG_IGN);

    rc = rc_dapr_listing_init(&sv.dapr_listing);
    if (rc != 0)
        goto out_free;
    mark_fresh_rings(&sv, fresh);
    rc = open_stores(&sv);
    if (rc != 0)
        goto out_rings;
    port = cfg->listen_port;
    rc = setup_loops(&sv, &port);
    if (rc != 0)
        goto out_loops;

    sv.main_loop = uv_default_loop();
    if (cfg->dapr_port != 0 && (rc = setup_dapr(&sv)) != 0)
        goto out_dapr;
    if ((rc = setup_admin(&sv, port)) != 0)
        goto out_dapr;
    uv_signal_init(sv.main_loop, &sv.sigterm);
    uv_signal_init(sv.main_loop, &sv.sigint);
    uv_timer_init(sv.main_loop, &sv.stop_timer);
    uv_timer_init(sv.main_loop, &sv.apply_timer);
    sv.sigterm.data = sv.sigint.data = sv.stop_timer.data = sv.apply_timer.data = &sv;
    uv_signal_start(&sv.sigterm, on_signal, SIGTERM);
    uv_signal_start(&sv.sigint, on_signal, SIGINT);

    rc = start_delivery(&sv); /* workers fork before the ingress threads exist */
    if (rc == 0)
        rc = start_ingress_threads(&sv);
    if (rc != 0)
        begin_stop(&sv, "startup failure");
    else
        announce(&sv, port, ready_out);
    /* Returns once the stop sequence (begin_stop) has closed everything, the supervisor
     * included. */
    uv_run(sv.main_loop, UV_RUN_DEFAULT);
    if (uv_loop_close(sv.main_loop) != 0)
        rc_log_warn("serve", "main loop closed with handles still open");
    rc_admin_close(&sv.admin);
    free(sv.stores);
    if (rc == 0)
        rc_log_info("serve", "stopped");

out_dapr:
    if (sv.dapr_srv != NULL) { /* only when setup failed: the stop sequence closed it */
        rc_http_server_close(sv.dapr_srv, on_dapr_closed, &sv);
        uv_run(sv.main_loop, UV_RUN_DEFAULT);
        uv_loop_close(sv.main_loop);
    }
    close_dapr(&sv);
out_loops:
    teardown_loops(&sv);
out_rings:
    close_stores(&sv); /* after every loop has stopped: no claim can be in progress */
    if (rc != 0)
        remove_fresh_rings(&sv, fresh);
    rc_dapr_listing_destroy(&sv.dapr_listing);
out_free:
    free(fresh);
    free(sv.loops);
    free(sv.brokers);
    free(sv.gauges);
    free(sv.holders);
    free(sv.readers);
    return rc;
}
