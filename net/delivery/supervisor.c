/* Worker processes and their triggers. The supervisor holds every feed (per worker and broker,
 * one manual-ack lossless reader the worker routes that broker's events from), so the slot and
 * with it the acknowledged position outlive any worker; the triggers' own cursors live in the
 * shared stats segment. It forks the workers after setting up everything they need (they
 * inherit the ring mappings, feeds and the stats segment), polls them with waitpid every 100 ms,
 * restarts the dead ones, and on SIGHUP stops them, swaps the trigger table and feeds and forks
 * them again. */
#include "net/delivery/supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/delivery_policy.h"
#include "core/errors.h"
#include "core/log.h"
#include "net/delivery/worker.h"
#include "net/delivery/worker_stats.h"
#include "net/http/http_url.h"

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
    rc_worker_feed_t *feeds;
    size_t nfeeds;
    rc_worker_stats_t *stats;
    wproc_t *w;
    int nw;
    unsigned drain_ms;
    int handles;
};

/* Slot names hold 23 bytes; a ring has one feed per worker that has triggers on it. */
static void feed_name(int worker, char out[24])
{
    snprintf(out, 24, "feed~w%d", worker);
}

/* Where the feeds of a broker start when there is no previous feed to continue from: the
 * oldest feed position a previous broker process left in the ring, else -1 (the latest event). */
static int64_t orphan_start(rc_worker_broker_t *b)
{
    int64_t start = -1;
    for (int w = 0; w < (int)RC_CONFIG_WORKERS_MAX; w++) {
        char name[24];
        uint64_t pos;
        feed_name(w, name);
        if (rc_storage_find_cursor(b->store, name, &pos) == 0 && (start < 0 || pos < (uint64_t)start))
            start = (int64_t)pos;
    }
    if (start >= 0)
        rc_log_info("supervisor", "broker %s/%s: resuming from its saved cursor (%llu)", b->ns,
                    b->name, (unsigned long long)start);
    return start;
}

static int open_feed(rc_worker_broker_t *b, int worker, int64_t start,
                     rc_storage_reader_t **out)
{
    char name[24];
    feed_name(worker, name);
    rc_storage_reader_opts_t o = {.start = start < 0 ? RC_STORAGE_FROM_LATEST : RC_STORAGE_FROM_AT,
                          .position = start < 0 ? 0 : (uint64_t)start,
                          .name = name,
                          };
    int rc = rc_storage_reader_open(b->store, &o, out);
    if (rc != 0 && start >= 0) {
        rc_log_warn("supervisor", "broker %s/%s: saved cursor %llu is gone (%s); worker %d "
                    "starts at the oldest event", b->ns, b->name, (unsigned long long)start,
                    rc_strerror(rc), worker);
        o.start = RC_STORAGE_FROM_OLDEST;
        rc = rc_storage_reader_open(b->store, &o, out);
    }
    if (rc != 0)
        rc_log_error("supervisor", "worker %d: cannot take a reader slot in broker %s/%s: %s",
                     worker, b->ns, b->name, rc_strerror(rc));
    return rc;
}

static void close_feeds(rc_worker_feed_t *feeds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rc_storage_reader_close(feeds[i].reader);
    free(feeds);
}

/* Opens one feed per (worker, broker) that has triggers in `tab` (already assigned to workers),
 * broker b's at start[b] (see orphan_start), and sets each trigger's .feed. Resets the feeds'
 * read cursors in the stats segment. All-or-nothing. */
static int open_feeds(rc_supervisor_t *s, rc_worker_trigger_t *tab, size_t n, int nw,
                      const int64_t *start, rc_worker_feed_t **out, size_t *nout)
{
    size_t cells = (size_t)(nw > 0 ? nw : 1) * (s->nbrokers ? s->nbrokers : 1);
    rc_worker_feed_t *feeds = calloc(cells, sizeof(*feeds));
    int *map = malloc(cells * sizeof(*map));
    if (feeds == NULL || map == NULL) {
        free(feeds);
        free(map);
        return -ENOMEM;
    }
    memset(map, 0xff, cells * sizeof(*map));
    size_t nf = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t cell = (size_t)tab[i].worker * s->nbrokers + tab[i].broker_idx;
        if (map[cell] < 0) {
            rc_worker_feed_t *f = &feeds[nf];
            f->worker = tab[i].worker;
            f->broker_idx = tab[i].broker_idx;
            f->stats = rc_worker_stats_feed(s->stats, (uint32_t)cell);
            rc = open_feed(&s->brokers[f->broker_idx], f->worker, start[f->broker_idx],
                           &f->reader);
            if (rc != 0)
                break;
            atomic_store_explicit(&f->stats->read_seq, 0, memory_order_relaxed);
            atomic_store_explicit(&f->stats->read_pos, 0, memory_order_relaxed);
            map[cell] = (int)nf++;
        }
        tab[i].feed = (uint32_t)map[cell];
    }
    free(map);
    if (rc != 0) {
        close_feeds(feeds, nf);
        return rc;
    }
    *out = feeds;
    *nout = nf;
    return 0;
}

/* A trigger starts at the ring's latest event unless its broker resumes saved feeds (then it
 * delivers everything from there: at-least-once). */
static void start_cursor(rc_worker_broker_t *b, int resumed, rc_trigger_stats_t *st)
{
    rc_storage_stats_t rs;
    rc_storage_stats(b->store, &rs);
    atomic_store_explicit(&st->cursor_seq, resumed ? 0 : rs.head_seq, memory_order_relaxed);
    atomic_store_explicit(&st->cursor_pos, resumed ? 0 : rs.head, memory_order_relaxed);
    atomic_store_explicit(&st->follows_feed, 1, memory_order_release); /* no worker runs yet */
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
        if (i >= s->stats->slots_hi)
            s->stats->slots_hi = i + 1;
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

/* Gives the stats slots of `tab` back to the triggers of `old` they were taken from, frees the
 * others. */
static void release_table(rc_supervisor_t *s, rc_worker_trigger_t *tab, size_t n,
                          rc_worker_trigger_t *old, size_t nold)
{
    for (size_t k = 0; k < n; k++) {
        if (tab[k].stats == NULL)
            continue;
        int given = 0;
        for (size_t j = 0; j < nold && !given; j++) {
            if (old[j].stats == NULL && old[j].stats_slot == tab[k].stats_slot) {
                old[j].stats = tab[k].stats;
                given = 1;
            }
        }
        if (!given)
            s->stats->t[tab[k].stats_slot].used = 0;
    }
    free(tab);
}

/* Builds the trigger table for `cfg`, taking over the stats slot (counters and cursor) of each
 * trigger of `old` with the same namespace, name and broker. What it takes is cleared in `old`.
 * New triggers start at the latest event, or (`resumed[b]`) where broker b's saved feeds
 * resume. All-or-nothing. */
static int build_table(rc_supervisor_t *s, const rc_config_t *cfg, rc_worker_trigger_t *old,
                       size_t nold, const int64_t *resumed, rc_worker_trigger_t **out)
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
            if (old[j].stats != NULL && old[j].broker_idx == wt->broker_idx &&
                strcmp(old[j].cfg->ns, t->ns) == 0 && strcmp(old[j].cfg->name, t->name) == 0) {
                wt->stats = old[j].stats;
                wt->stats_slot = old[j].stats_slot;
                old[j].stats = NULL;
                break;
            }
        }
        if (wt->stats != NULL)
            continue;
        uint32_t slot;
        rc = stats_slot(s, t, wt->broker_idx, &slot);
        if (rc != 0) {
            rc_log_error("supervisor", "trigger %s/%s: no metrics slot left", t->ns, t->name);
            break;
        }
        wt->stats = &s->stats->t[slot];
        wt->stats_slot = slot;
        start_cursor(&s->brokers[b], resumed != NULL && resumed[b] >= 0, wt->stats);
    }
    if (rc != 0) {
        release_table(s, tab, cfg->trigger_count, old, nold);
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

static void assign(rc_worker_trigger_t *tab, size_t n, int nw)
{
    for (size_t i = 0; i < n; i++)
        tab[i].worker = nw > 0 ? (int)(i % (size_t)nw) : -1;
}

static int spawn(rc_supervisor_t *s, int idx)
{
    rc_worker_plan_t plan = {
        .index = idx,
        .triggers = s->trig,
        .ntriggers = s->ntrig,
        .feeds = s->feeds,
        .nfeeds = s->nfeeds,
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

/* Forks s->nw workers for the current table and feeds. */
static int spawn_all(rc_supervisor_t *s)
{
    free(s->w);
    s->w = calloc(s->nw > 0 ? (size_t)s->nw : 1, sizeof(*s->w));
    if (s->w == NULL)
        return -ENOMEM;
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

/* With the workers stopped: writes each trigger's cursor as its slot and its feed's slot say it,
 * and makes it follow its feed from there, so it survives the feed being replaced. */
static void settle_cursors(rc_supervisor_t *s)
{
    for (size_t i = 0; i < s->ntrig; i++) {
        rc_trigger_stats_t *st = s->trig[i].stats;
        if (st == NULL)
            st = &s->stats->t[s->trig[i].stats_slot]; /* taken over by the new table */
        uint64_t seq, pos;
        rc_worker_stats_cursor(st, s->feeds[s->trig[i].feed].stats, &seq, &pos);
        atomic_store_explicit(&st->cursor_seq, seq, memory_order_relaxed);
        atomic_store_explicit(&st->cursor_pos, pos, memory_order_relaxed);
        atomic_store_explicit(&st->follows_feed, 1, memory_order_release); /* no worker runs */
    }
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
    if (rc == 0)
        rc = rc_http_url_check_hosts(nc, RC_HTTP_RESOLVE_TIMEOUT_MS, err, sizeof(err));
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
    /* The new feeds of a broker start at the oldest position its old feeds acknowledged (still
     * in the ring while they are open): nothing a trigger has not finished is before it. */
    int64_t *start = calloc(s->nbrokers ? s->nbrokers : 1, sizeof(*start));
    rc_worker_trigger_t *tab = NULL;
    rc_worker_feed_t *feeds = NULL;
    size_t nfeeds = 0;
    int nw = worker_count(nc, nc->trigger_count);
    rc = start ? build_table(s, nc, s->trig, s->ntrig, NULL, &tab) : -ENOMEM;
    if (rc == 0) {
        settle_cursors(s);
        for (size_t b = 0; b < s->nbrokers; b++)
            start[b] = -1;
        for (size_t i = 0; i < s->nfeeds; i++) {
            uint64_t a = rc_storage_acked(s->feeds[i].reader);
            int64_t *st = &start[s->feeds[i].broker_idx];
            if (*st < 0 || a < (uint64_t)*st)
                *st = (int64_t)a;
        }
        assign(tab, nc->trigger_count, nw);
        rc = open_feeds(s, tab, nc->trigger_count, nw, start, &feeds, &nfeeds);
        if (rc != 0)
            release_table(s, tab, nc->trigger_count, s->trig, s->ntrig);
    }
    free(start);
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
        if (s->trig[j].stats == NULL) {
            kept++;
            continue;
        }
        rc_log_info("supervisor", "trigger %s/%s removed", s->trig[j].cfg->ns,
                    s->trig[j].cfg->name);
        s->trig[j].stats->used = 0;
        removed++;
    }
    close_feeds(s->feeds, s->nfeeds);
    s->feeds = feeds;
    s->nfeeds = nfeeds;
    s->nw = nw;
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
    /* `path` pointed into the config just freed: name the file from the new one. */
    rc_log_info("supervisor", "reloaded %s: %zu trigger%s (%zu kept, %zu added, %zu removed)",
                nc->source,
                s->ntrig, s->ntrig == 1 ? "" : "s", kept, s->ntrig - kept, removed);
    return spawn_all(s);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    rc_supervisor_reload(h->data);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

int rc_supervisor_start(uv_loop_t *loop, const rc_config_t *cfg, rc_storage_t *const *stores,
                        rc_supervisor_t **out)
{
    rc_supervisor_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->loop = loop;
    s->cfg = cfg;
    s->drain_ms = cfg->shutdown_timeout_ms;
    s->nbrokers = cfg->broker_count;
    s->brokers = calloc(s->nbrokers ? s->nbrokers : 1, sizeof(*s->brokers));
    int rc = s->brokers ? rc_worker_stats_create(RC_CONFIG_TRIGGERS_MAX,
                                                 RC_CONFIG_WORKERS_MAX * (uint32_t)s->nbrokers,
                                                 &s->stats)
                        : -ENOMEM;
    if (rc != 0) {
        free(s->brokers);
        free(s);
        return rc;
    }
    for (size_t i = 0; i < s->nbrokers; i++) {
        s->brokers[i].ns = cfg->brokers[i].ns;
        s->brokers[i].name = cfg->brokers[i].name;
        s->brokers[i].store = stores[i];
    }
    int64_t *start = calloc(s->nbrokers ? s->nbrokers : 1, sizeof(*start));
    rc = start ? 0 : -ENOMEM;
    for (size_t b = 0; rc == 0 && b < s->nbrokers; b++)
        start[b] = orphan_start(&s->brokers[b]);
    if (rc == 0)
        rc = build_table(s, cfg, NULL, 0, start, &s->trig);
    if (rc == 0) {
        s->ntrig = cfg->trigger_count;
        s->nw = worker_count(cfg, s->ntrig);
        assign(s->trig, s->ntrig, s->nw);
        rc = open_feeds(s, s->trig, s->ntrig, s->nw, start, &s->feeds, &s->nfeeds);
        if (rc != 0)
            free(s->trig);
    }
    free(start);
    if (rc != 0) {
        rc_worker_stats_destroy(s->stats);
        free(s->brokers);
        free(s);
        return rc;
    }
    /* The feeds of the previous broker process (dead slots) stop gating the rings. */
    for (size_t b = 0; b < s->nbrokers; b++)
        rc_storage_reclaim(s->brokers[b].store);
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
    /* The feeds stay in the ring (their slots are reclaimed once this process is gone, or
     * adopted by the next broker process on the same ring): only the handles are freed. */
    for (size_t i = 0; i < s->nfeeds; i++)
        rc_storage_reader_forget(s->feeds[i].reader);
    free(s->feeds);
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
        rc_storage_stats_t st;
        rc_storage_stats(s->brokers[t->broker_idx].store, &st);
        uint64_t seq, pos;
        rc_worker_stats_cursor(t->stats, s->feeds[t->feed].stats, &seq, &pos);
        lag[t->stats_slot].events = st.head_seq > seq ? st.head_seq - seq : 0;
        lag[t->stats_slot].bytes = st.head > pos ? st.head - pos : 0;
    }
    size_t n = rc_worker_stats_render(s->stats, lag, buf, cap);
    free(lag);
    return n;
}
