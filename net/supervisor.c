/* Worker processes and their triggers. The supervisor holds every trigger's reader (so its slot,
 * and with it the trigger's acknowledged cursor, outlives any worker), forks the workers after
 * setting up everything they need (they inherit the ring mappings, readers and the stats
 * segment), polls them with waitpid every 100 ms, restarts the dead ones, and on SIGHUP stops
 * them, swaps the trigger table and forks them again. */
#include "net/supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/delivery_policy.h"
#include "core/errors.h"
#include "core/log.h"
#include "net/worker.h"
#include "net/worker_stats.h"
#include "shm/proc.h"
#include "shm/reader.h"

#define WATCH_MS 100
#define RESTART_DELAY_NS 1000000000ull /* a worker that dies young waits this long */

typedef struct {
    pid_t pid;
    uint64_t started_ns;
    uint64_t restart_at; /* pid 0: fork at this time */
} wproc_t;

struct rc_supervisor_s {
    uv_loop_t *loop;
    uv_timer_t watch;
    uv_signal_t sighup;
    const rc_config_t *cfg; /* active config: the caller's, or `owned` after a reload */
    rc_config_t *owned;
    rc_worker_broker_t *brokers;
    size_t nbrokers;
    rc_worker_trigger_t *trig;
    size_t ntrig;
    rc_worker_stats_t *stats;
    wproc_t *w;
    int nw;
    unsigned drain_ms;
    int handles;
};

/* Slot names hold 23 bytes: a readable prefix and a hash of "namespace/name". */
static void reader_name(const char *ns, const char *name, char out[24])
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = ns; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h = (h ^ '/') * 1099511628211ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    snprintf(out, 24, "%.5s~%016llx", name, (unsigned long long)h);
}

static int open_reader(rc_worker_broker_t *b, const rc_config_trigger_t *t, rc_reader_t **out)
{
    char name[24];
    reader_name(t->ns, t->name, name);
    rc_reader_opts_t o = {.mode = RC_READER_LOSSLESS,
                          .start = RC_START_LATEST,
                          .name = name,
                          .flags = RC_READER_F_MANUAL_ACK};
    uint64_t pos;
    if (rc_reader_find_orphan(b->ring, name, &pos) == 0) {
        o.start = RC_START_AT;
        o.position = pos;
        int rc = rc_reader_open(b->ring, &o, out);
        if (rc == 0) {
            rc_log_info("supervisor", "trigger %s/%s: resuming from its saved cursor (%llu)",
                        t->ns, t->name, (unsigned long long)pos);
            rc_ring_reclaim(b->ring); /* frees the dead slot */
            return 0;
        }
        rc_log_warn("supervisor", "trigger %s/%s: saved cursor %llu is gone (%s); starting at "
                    "the oldest event", t->ns, t->name, (unsigned long long)pos, rc_strerror(rc));
        o.start = RC_START_OLDEST;
    }
    int rc = rc_reader_open(b->ring, &o, out);
    if (rc != 0)
        rc_log_error("supervisor", "trigger %s/%s: cannot take a reader slot in broker %s/%s: %s",
                     t->ns, t->name, b->ns, b->name, rc_strerror(rc));
    return rc;
}

static int stats_slot(rc_supervisor_t *s, const rc_config_trigger_t *t, uint32_t broker_idx,
                      uint32_t *out)
{
    for (uint32_t i = 0; i < s->stats->slots; i++) {
        rc_trigger_stats_t *st = &s->stats->t[i];
        if (st->used)
            continue;
        memset(st, 0, sizeof(*st));
        st->broker_idx = broker_idx;
        snprintf(st->ns, sizeof(st->ns), "%s", t->ns);
        snprintf(st->name, sizeof(st->name), "%s", t->name);
        snprintf(st->broker, sizeof(st->broker), "%s", t->broker);
        st->used = 1;
        *out = i;
        return 0;
    }
    return -ENOSPC;
}

static int broker_index(const rc_supervisor_t *s, const char *ns, const char *name)
{
    for (size_t i = 0; i < s->nbrokers; i++) {
        if (strcmp(s->brokers[i].ns, ns) == 0 && strcmp(s->brokers[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static int effective_delivery(const rc_config_t *cfg, const rc_config_trigger_t *t,
                              rc_delivery_t *out)
{
    rc_delivery_t td, bd;
    char err[256];
    const rc_config_broker_t *b =
        rc_config_find_broker(cfg, t->ns, strlen(t->ns), t->broker, strlen(t->broker));
    if (rc_delivery_from_config(&t->delivery, &td, err, sizeof(err)) != 0 ||
        (b != NULL && rc_delivery_from_config(&b->delivery, &bd, err, sizeof(err)) != 0)) {
        rc_log_error("supervisor", "trigger %s/%s: %s", t->ns, t->name, err);
        return RC_ECONFIG;
    }
    rc_delivery_effective(&td, b ? &bd : NULL, out);
    return 0;
}

/* Builds the trigger table for `cfg`, taking over the reader and stats slot of each trigger of
 * `old` with the same namespace, name and broker (its cursor continues). What it takes is
 * cleared in `old`. All-or-nothing. */
static int build_table(rc_supervisor_t *s, const rc_config_t *cfg, rc_worker_trigger_t *old,
                       size_t nold, rc_worker_trigger_t **out)
{
    rc_worker_trigger_t *tab = calloc(cfg->trigger_count ? cfg->trigger_count : 1, sizeof(*tab));
    if (tab == NULL)
        return -ENOMEM;
    size_t i;
    int rc = 0;
    for (i = 0; i < cfg->trigger_count; i++) {
        const rc_config_trigger_t *t = &cfg->triggers[i];
        rc_worker_trigger_t *wt = &tab[i];
        wt->cfg = t;
        int b = broker_index(s, t->ns, t->broker);
        if (b < 0) {
            rc_log_error("supervisor", "trigger %s/%s: broker %s is not running (brokers change "
                         "only with a restart)", t->ns, t->name, t->broker);
            rc = RC_ECONFIG;
            break;
        }
        wt->broker_idx = (uint32_t)b;
        rc = effective_delivery(cfg, t, &wt->delivery);
        if (rc != 0)
            break;
        for (size_t j = 0; j < nold; j++) {
            if (old[j].reader != NULL && old[j].broker_idx == wt->broker_idx &&
                strcmp(old[j].cfg->ns, t->ns) == 0 && strcmp(old[j].cfg->name, t->name) == 0) {
                wt->reader = old[j].reader;
                wt->stats = old[j].stats;
                wt->stats_slot = old[j].stats_slot;
                old[j].reader = NULL;
                old[j].stats = NULL;
                break;
            }
        }
        if (wt->reader != NULL)
            continue;
        uint32_t slot;
        rc = stats_slot(s, t, wt->broker_idx, &slot);
        if (rc != 0) {
            rc_log_error("supervisor", "trigger %s/%s: no metrics slot left", t->ns, t->name);
            break;
        }
        rc = open_reader(&s->brokers[b], t, &wt->reader);
        if (rc != 0) {
            s->stats->t[slot].used = 0;
            break;
        }
        wt->stats = &s->stats->t[slot];
        wt->stats_slot = slot;
        wt->stats->used = 1;
    }
    if (rc != 0) {
        /* Give back what was taken from `old`, close what was opened. */
        for (size_t k = 0; k < i + (i < cfg->trigger_count ? 1 : 0) && k < cfg->trigger_count;
             k++) {
            if (tab[k].reader == NULL)
                continue;
            int given = 0;
            for (size_t j = 0; j < nold && !given; j++) {
                if (old[j].reader == NULL && old[j].stats_slot == tab[k].stats_slot &&
                    old[j].broker_idx == tab[k].broker_idx &&
                    strcmp(old[j].cfg->name, tab[k].cfg->name) == 0 &&
                    strcmp(old[j].cfg->ns, tab[k].cfg->ns) == 0) {
                    old[j].reader = tab[k].reader;
                    old[j].stats = tab[k].stats;
                    given = 1;
                }
            }
            if (!given) {
                rc_reader_close(tab[k].reader);
                s->stats->t[tab[k].stats_slot].used = 0;
            }
        }
        free(tab);
        return rc;
    }
    *out = tab;
    return 0;
}

/* ---- worker processes ---------------------------------------------------------------------- */

static int worker_count(const rc_config_t *cfg, size_t ntrig)
{
    long k = cfg->workers;
    if (k == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        k = cpus > 1 ? cpus - 1 : 1;
    }
    if ((size_t)k > ntrig)
        k = (long)ntrig;
    return (int)k;
}

static void assign(rc_supervisor_t *s)
{
    for (size_t i = 0; i < s->ntrig; i++)
        s->trig[i].worker = s->nw > 0 ? (int)(i % (size_t)s->nw) : -1;
}

static int spawn(rc_supervisor_t *s, int idx)
{
    rc_worker_plan_t plan = {
        .index = idx,
        .triggers = s->trig,
        .ntriggers = s->ntrig,
        .brokers = s->brokers,
        .nbrokers = s->nbrokers,
        .drain_ms = s->drain_ms,
    };
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        rc_log_error("supervisor", "cannot fork worker %d: %s", idx, strerror(e));
        s->w[idx].pid = 0;
        s->w[idx].restart_at = rc_now_ns() + RESTART_DELAY_NS;
        return -e;
    }
    if (pid == 0)
        _exit(rc_worker_run(&plan));
    s->w[idx].pid = pid;
    s->w[idx].started_ns = rc_now_ns();
    s->w[idx].restart_at = 0;
    return 0;
}

static int spawn_all(rc_supervisor_t *s)
{
    s->nw = worker_count(s->cfg, s->ntrig);
    free(s->w);
    s->w = calloc(s->nw > 0 ? (size_t)s->nw : 1, sizeof(*s->w));
    if (s->w == NULL)
        return -ENOMEM;
    assign(s);
    for (int i = 0; i < s->nw; i++)
        spawn(s, i);
    rc_log_info("supervisor", "%zu trigger%s on %d worker process%s", s->ntrig,
                s->ntrig == 1 ? "" : "s", s->nw, s->nw == 1 ? "" : "es");
    return 0;
}

/* SIGTERM to every worker, wait up to drain + 1 s, then SIGKILL. Blocking (bounded). */
static void stop_all(rc_supervisor_t *s, unsigned drain_ms)
{
    for (int i = 0; i < s->nw; i++) {
        if (s->w[i].pid > 0)
            kill(s->w[i].pid, SIGTERM);
    }
    uint64_t deadline = rc_now_ns() + ((uint64_t)drain_ms + 1000) * 1000000ull;
    for (;;) {
        int left = 0;
        for (int i = 0; i < s->nw; i++) {
            if (s->w[i].pid <= 0)
                continue;
            if (waitpid(s->w[i].pid, NULL, WNOHANG) == s->w[i].pid)
                s->w[i].pid = 0;
            else
                left++;
        }
        if (left == 0)
            break;
        if (rc_now_ns() >= deadline) {
            for (int i = 0; i < s->nw; i++) {
                if (s->w[i].pid > 0) {
                    rc_log_warn("supervisor", "worker %d (pid %d) did not stop; killing it", i,
                                (int)s->w[i].pid);
                    kill(s->w[i].pid, SIGKILL);
                    waitpid(s->w[i].pid, NULL, 0);
                    s->w[i].pid = 0;
                }
            }
            break;
        }
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
}

static void on_watch(uv_timer_t *h)
{
    rc_supervisor_t *s = h->data;
    uint64_t now = rc_now_ns();
    for (int i = 0; i < s->nw; i++) {
        wproc_t *w = &s->w[i];
        if (w->pid > 0) {
            int st = 0;
            if (waitpid(w->pid, &st, WNOHANG) != w->pid)
                continue;
            if (WIFSIGNALED(st))
                rc_log_warn("supervisor", "worker %d (pid %d) killed by signal %d; restarting", i,
                            (int)w->pid, WTERMSIG(st));
            else
                rc_log_warn("supervisor", "worker %d (pid %d) exited with status %d; restarting",
                            i, (int)w->pid, WEXITSTATUS(st));
            w->pid = 0;
            w->restart_at = now - w->started_ns < RESTART_DELAY_NS ? now + RESTART_DELAY_NS : now;
            atomic_fetch_add_explicit(&s->stats->worker_restarts, 1, memory_order_relaxed);
        }
        if (w->pid == 0 && w->restart_at <= now && spawn(s, i) == 0)
            rc_log_info("supervisor", "worker %d restarted (pid %d)", i, (int)w->pid);
    }
}

/* ---- reload ---------------------------------------------------------------------------------- */

static int same_brokers(const rc_supervisor_t *s, const rc_config_t *c)
{
    if (c->broker_count != s->nbrokers)
        return 0;
    for (size_t i = 0; i < c->broker_count; i++) {
        if (broker_index(s, c->brokers[i].ns, c->brokers[i].name) < 0)
            return 0;
    }
    return 1;
}

int rc_supervisor_reload(rc_supervisor_t *s)
{
    const char *path = s->cfg->source;
    if (path == NULL || strcmp(path, "(default)") == 0) {
        rc_log_warn("supervisor", "SIGHUP: started without --config; nothing to reload");
        return RC_ECONFIG;
    }
    rc_config_t *nc = calloc(1, sizeof(*nc));
    char err[RC_CONFIG_ERR_MAX];
    int rc = nc ? rc_config_load_file(nc, path, err, sizeof(err)) : -ENOMEM;
    if (rc == 0 && !same_brokers(s, nc)) {
        snprintf(err, sizeof(err), "%s: the set of brokers changed (that needs a restart)", path);
        rc = RC_ECONFIG;
    }
    if (rc != 0) {
        rc_log_error("supervisor", "reload rejected, the running config stays: %s",
                     nc ? err : "out of memory");
        if (nc != NULL)
            rc_config_close(nc);
        free(nc);
        atomic_fetch_add_explicit(&s->stats->reload_errors, 1, memory_order_relaxed);
        return rc;
    }
    stop_all(s, s->drain_ms);
    rc_worker_trigger_t *tab = NULL;
    rc = build_table(s, nc, s->trig, s->ntrig, &tab);
    if (rc != 0) {
        rc_log_error("supervisor", "reload rejected (see above), the running config stays");
        rc_config_close(nc);
        free(nc);
        atomic_fetch_add_explicit(&s->stats->reload_errors, 1, memory_order_relaxed);
        spawn_all(s);
        return rc;
    }
    size_t kept = 0, removed = 0;
    for (size_t j = 0; j < s->ntrig; j++) {
        if (s->trig[j].reader == NULL) {
            kept++;
            continue;
        }
        rc_log_info("supervisor", "trigger %s/%s removed", s->trig[j].cfg->ns,
                    s->trig[j].cfg->name);
        rc_reader_close(s->trig[j].reader);
        s->trig[j].stats->used = 0;
        removed++;
    }
    free(s->trig);
    s->trig = tab;
    s->ntrig = nc->trigger_count;
    if (s->owned != NULL) {
        rc_config_close(s->owned);
        free(s->owned);
    }
    s->owned = nc;
    s->cfg = nc;
    atomic_fetch_add_explicit(&s->stats->reloads, 1, memory_order_relaxed);
    rc_log_info("supervisor", "reloaded %s: %zu trigger%s (%zu kept, %zu added, %zu removed)", path,
                s->ntrig, s->ntrig == 1 ? "" : "s", kept, s->ntrig - kept, removed);
    return spawn_all(s);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    rc_supervisor_reload(h->data);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

int rc_supervisor_start(uv_loop_t *loop, const rc_config_t *cfg, rc_ring_t *const *rings,
                        const char *const *ring_names, rc_supervisor_t **out)
{
    rc_supervisor_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->loop = loop;
    s->cfg = cfg;
    s->drain_ms = cfg->shutdown_timeout_ms;
    s->nbrokers = cfg->broker_count;
    s->brokers = calloc(s->nbrokers ? s->nbrokers : 1, sizeof(*s->brokers));
    int rc = s->brokers ? rc_worker_stats_create(RC_CONFIG_TRIGGERS_MAX, &s->stats) : -ENOMEM;
    if (rc != 0) {
        free(s->brokers);
        free(s);
        return rc;
    }
    for (size_t i = 0; i < s->nbrokers; i++) {
        s->brokers[i].ns = cfg->brokers[i].ns;
        s->brokers[i].name = cfg->brokers[i].name;
        s->brokers[i].ring = rings[i];
        snprintf(s->brokers[i].ring_name, sizeof(s->brokers[i].ring_name), "%s", ring_names[i]);
    }
    rc = build_table(s, cfg, NULL, 0, &s->trig);
    if (rc != 0) {
        rc_worker_stats_destroy(s->stats);
        free(s->brokers);
        free(s);
        return rc;
    }
    s->ntrig = cfg->trigger_count;
    rc = spawn_all(s);
    uv_timer_init(loop, &s->watch);
    uv_signal_init(loop, &s->sighup);
    s->watch.data = s->sighup.data = s;
    s->handles = 1;
    uv_timer_start(&s->watch, on_watch, WATCH_MS, WATCH_MS);
    uv_signal_start(&s->sighup, on_sighup, SIGHUP);
    *out = s;
    return rc;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

void rc_supervisor_stop(rc_supervisor_t *s, unsigned drain_ms)
{
    if (s == NULL)
        return;
    if (s->handles) {
        uv_timer_stop(&s->watch);
        uv_signal_stop(&s->sighup);
        uv_close((uv_handle_t *)&s->watch, on_closed);
        uv_close((uv_handle_t *)&s->sighup, on_closed);
        s->handles = 0;
    }
    stop_all(s, drain_ms);
    /* The readers stay in the ring (their slots are reclaimed once this process is gone, or
     * adopted by the next broker process on the same ring): only the handles are freed. */
    for (size_t i = 0; i < s->ntrig; i++)
        rc_reader_forget(s->trig[i].reader);
    free(s->trig);
    free(s->w);
    rc_worker_stats_destroy(s->stats);
    if (s->owned != NULL) {
        rc_config_close(s->owned);
        free(s->owned);
    }
    free(s->brokers);
    free(s);
}

size_t rc_supervisor_metrics(rc_supervisor_t *s, char *buf, size_t cap)
{
    rc_trigger_lag_t *lag = calloc(s->stats->slots, sizeof(*lag));
    if (lag == NULL)
        return 0;
    for (size_t i = 0; i < s->ntrig; i++) {
        rc_worker_trigger_t *t = &s->trig[i];
        rc_ring_stats_t st;
        rc_ring_stats(s->brokers[t->broker_idx].ring, &st);
        uint64_t acked = rc_reader_acked(t->reader);
        lag[t->stats_slot].head_seq = st.head_seq;
        lag[t->stats_slot].lag_bytes = st.head > acked ? st.head - acked : 0;
    }
    size_t n = rc_worker_stats_render(s->stats, lag, buf, cap);
    free(lag);
    return n;
}
