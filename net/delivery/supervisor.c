/* Worker processes and their triggers. The supervisor holds every feed (per worker and broker,
 * one manual-ack lossless reader the worker routes that broker's events from), so the slot and
 * with it the acknowledged position outlive any worker; the triggers' own cursors and the
 * feeds' read cursors are saved in each broker store's cursor table (net/delivery/cursor.h),
 * so they outlive this process too. It forks the workers after setting up everything they need
 * (they inherit the ring mappings, feeds, cursor tables and the stats segment) and restarts the
 * dead ones.
 *
 * It never waits on the loop: `step`, run by the watch timer (100 ms) and by SIGCHLD, moves a
 * small state machine.
 *   RUNNING:   reap; a dead worker is restarted (after 1 s if it lived less than 1 s). The
 *              watchdog: a worker whose heartbeat (stored by its loop every turn in its slot of
 *              the stats segment) is older than spec.watchdogTimeout, hung or SIGSTOPped, gets SIGKILL and
 *              is reaped and restarted like a crashed one.
 *   RELOADING: SIGHUP loaded a good file (s->next) and sent SIGTERM; once the old workers are
 *              reaped (SIGKILL at drain + 1 s), the table and feeds are swapped and new workers
 *              forked. A SIGHUP meanwhile makes one more reload after it (the file may change).
 *   STOPPING:  the same wait, then the handles close; the last close callback frees everything
 *              and runs the caller's `done`.
 * The trigger table is replaced in one go, so /metrics can render it in any phase. */
#include "net/delivery/supervisor.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/delivery_policy.h"
#include "core/errors.h"
#include "core/log.h"
#include "net/delivery/cursor.h"
#include "net/delivery/worker.h"
#include "net/delivery/worker_stats.h"
#include "net/http/http_url.h"

#define WATCH_MS         100
#define RESTART_DELAY_NS 1000000000ull /* a worker that dies young waits this long */
#define START_LIMIT_NS   60000000000ull /* a worker without a first heartbeat by then is stuck */

typedef struct {
    pid_t pid;
    uint64_t started_ns;
    uint64_t restart_at; /* pid 0: fork at this time */
    int watchdog_killed; /* SIGKILL sent by the watchdog, not reaped yet */
} wproc_t;

typedef enum {
    SUP_RUNNING,
    SUP_RELOADING, /* the old workers are stopping; s->next is applied after them */
    SUP_STOPPING,  /* the workers are stopping; the handles close after them */
    SUP_CLOSED,    /* handles closing; `s` is freed by the last close callback */
} phase_t;

struct rc_supervisor_s {
    uv_loop_t *loop;
    uv_timer_t watch;
    uv_signal_t sighup;
    uv_signal_t sigchld;
    int handles;            /* made by init_handles and not closed yet */
    const rc_config_t *cfg; /* active config: the caller's, or `owned` after a reload */
    rc_config_t *owned;
    rc_worker_broker_t *brokers;
    size_t nbrokers;
    rc_storage_cursors_t **cursors; /* per broker: its store's cursor table */
    rc_worker_trigger_t *trig;
    size_t ntrig;
    rc_worker_feed_t *feeds;
    size_t nfeeds;
    rc_worker_stats_t *stats;
    wproc_t w[RC_CONFIG_WORKERS_MAX];
    int nw;
    unsigned drain_ms;
    phase_t phase;
    uint64_t kill_at;  /* RELOADING, STOPPING: SIGKILL the workers left at this time */
    rc_config_t *next; /* RELOADING: the loaded config to apply */
    int hup_again;     /* RELOADING: another reload was asked for */
    int (*hook)(void *arg, rc_config_t *nc); /* rc_supervisor_set_config_hook */
    void *hook_arg;
    void (*done)(void *arg);
    void *done_arg;
    uint64_t watchdog_kills; /* main thread only */
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
        if (rc_storage_find_cursor(b->store, name, &pos) == 0 &&
            (start < 0 || pos < (uint64_t)start))
            start = (int64_t)pos;
    }
    if (start >= 0)
        rc_log_info("supervisor", "broker %s/%s: resuming from its saved cursor (%llu)", b->ns,
                    b->name, (unsigned long long)start);
    return start;
}

static int open_feed(rc_worker_broker_t *b, int worker, int64_t start, rc_storage_reader_t **out)
{
    char name[24];
    feed_name(worker, name);
    rc_storage_reader_opts_t o = {
        .start = start < 0 ? RC_STORAGE_FROM_LATEST : RC_STORAGE_FROM_AT,
        .position = start < 0 ? 0 : (uint64_t)start,
        .name = name,
        /* A file store's records carry a CRC32C: a feed delivers none that fails it (skipped,
         * logged, counted; docs/durability.md, "Who checks it"). Stores without one ignore it. */
        .flags = RC_STORAGE_READER_F_VERIFY,
    };
    int rc = rc_storage_reader_open(b->store, &o, out);
    if (rc != 0 && start >= 0) {
        rc_log_warn("supervisor",
                    "broker %s/%s: saved cursor %llu is gone (%s); worker %d "
                    "starts at the oldest event",
                    b->ns, b->name, (unsigned long long)start, rc_strerror(rc), worker);
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

/* The consumer name of this node in the triggers' Redis groups: spec.redis.nodeId, else
 * hostname:port of the ingress, which stays the same across restarts of the node, so that a
 * restarted node reads its own pending entries again first (docs/scaleout.md); with port 0
 * (the system picks one) hostname:pid<N>, which does not last: give nodeId then. */
static void node_id(const rc_config_t *cfg, char *out, size_t cap)
{
    if (cfg->redis.node_id[0] != '\0') {
        snprintf(out, cap, "%s", cfg->redis.node_id);
        return;
    }
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "localhost");
    if (cfg->listen_port != 0)
        snprintf(out, cap, "%s:%d", host, cfg->listen_port);
    else /* a port the system picks is no name that lasts: this process's, then */
        snprintf(out, cap, "%s:pid%d", host, (int)getpid());
}

/* Opens trigger t's own feed when its broker's store keeps consumer groups (redis: one group
 * per trigger across the nodes, docs/scaleout.md): 0 with *out set, 1 when the store keeps
 * none (the trigger shares its worker's feed of the ring), or an error (logged). */
static int open_group_feed(rc_supervisor_t *s, const rc_config_t *cfg, const rc_worker_trigger_t *t,
                           rc_storage_reader_t **out)
{
    const rc_config_trigger_t *c = t->cfg;
    char group[2 * RC_CONFIG_NAME_MAX + 2], consumer[RC_CONFIG_REDIS_NODE_ID_MAX + 16], err[512];
    snprintf(group, sizeof(group), "%s/%s", c->ns, c->name);
    node_id(cfg, consumer, sizeof(consumer));
    rc_storage_group_opts_t o = {
        .group = group,
        .consumer = consumer,
        .start = c->start_from == RC_START_FROM_OLDEST ? RC_STORAGE_FROM_OLDEST
                 : c->start_from == RC_START_FROM_TIME ? RC_STORAGE_FROM_AT
                                                       : RC_STORAGE_FROM_LATEST,
        .start_ms = c->start_from_ns / 1000000,
        .claim_idle_ms = cfg->redis.claim_idle_ms,
    };
    int rc = rc_storage_group_open(s->brokers[t->broker_idx].store, &o, out, err, sizeof(err));
    if (rc == -ENOTSUP)
        return 1;
    if (rc != 0)
        rc_log_error("supervisor", "trigger %s/%s: %s", c->ns, c->name, err);
    return rc;
}

/* Opens one feed per (worker, broker) that has triggers in `tab` (already assigned to workers),
 * broker b's at start[b] (see orphan_start), and sets each trigger's .feed; a trigger of a
 * store with consumer groups gets a feed of its own instead (open_group_feed). Resets the
 * feeds' saved read cursors, so every trigger must hold its own cursor by then (no link).
 * All-or-nothing. */
static int open_feeds(rc_supervisor_t *s, const rc_config_t *cfg, rc_worker_trigger_t *tab,
                      size_t n, int nw, const int64_t *start, rc_worker_feed_t **out, size_t *nout)
{
    size_t cells = (size_t)(nw > 0 ? nw : 1) * (s->nbrokers ? s->nbrokers : 1);
    rc_worker_feed_t *feeds = calloc(cells + n, sizeof(*feeds));
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
        rc_storage_reader_t *group = NULL;
        rc = open_group_feed(s, cfg, &tab[i], &group);
        if (rc < 0)
            break;
        rc = 0;
        if (map[cell] < 0 || group != NULL) {
            rc_worker_feed_t *f = &feeds[nf];
            f->worker = tab[i].worker;
            f->broker_idx = tab[i].broker_idx;
            f->reader = group;
            f->cursor = rc_cursor_take_feed(s->cursors[f->broker_idx], f->worker, &f->link);
            if (f->cursor == NULL) {
                rc_storage_reader_close(group);
                rc = -ENOSPC;
                break;
            }
            if (group == NULL)
                rc = open_feed(&s->brokers[f->broker_idx], f->worker, start[f->broker_idx],
                               &f->reader);
            if (rc != 0)
                break;
            rc_cursor_store_read(f->cursor, 0, 0);
            if (group != NULL) {
                /* A group reader's sequence numbers start over with this process: a number
                 * saved by an earlier one must not make the trigger skip any. */
                rc_cursor_store(tab[i].cursor, 0, 0, 0);
                tab[i].feed = (uint32_t)nf++;
                continue;
            }
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

/* Forgets the saved cursors the running table and feeds do not use (net/delivery/cursor.h). */
static void drop_stale(rc_supervisor_t *s)
{
    rc_cursor_drop_stale(s->cursors, s->brokers, s->nbrokers, s->trig, s->ntrig, s->feeds,
                         s->nfeeds);
}

static int stats_slot(rc_supervisor_t *s, const rc_config_trigger_t *t, uint32_t broker_idx,
                      uint32_t *out)
{
    for (uint32_t i = 0; i < s->stats->slots; i++) {
        rc_trigger_stats_t *st = &s->stats->t[i];
        if (st->used)
            continue;
        memset(st, 0, sizeof(*st));
        /* Only triggers with replicas (Dapr apps', a Service's endpoints) touch their block. */
        if (t->dapr != NULL || t->endpoint_count > 0)
            memset(rc_worker_stats_replicas(s->stats, i), 0,
                   RC_STATS_REPLICAS * sizeof(rc_replica_stats_t));
        st->broker_idx = broker_idx;
        snprintf(st->ns, sizeof(st->ns), "%s", t->ns);
        snprintf(st->name, sizeof(st->name), "%s", t->name);
        snprintf(st->broker, sizeof(st->broker), "%s", t->broker);
        st->added_ms = rc_wall_ns() / 1000000; /* a trigger's age: kept across reloads */
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

/* A trigger with ringcast.dev/start-from that already has a saved cursor resumes there: the
 * annotation only places a new trigger (as Kafka's auto.offset.reset applies only to a group
 * without committed offsets). Said once at start, and at a reload only when the annotation
 * changed, since a changed start-from that does nothing would otherwise surprise. */
static void note_kept_start(const rc_config_trigger_t *t, const rc_worker_trigger_t *old,
                            size_t nold)
{
    const rc_config_trigger_t *was = NULL;
    for (size_t j = 0; j < nold; j++) {
        if (strcmp(old[j].cfg->ns, t->ns) == 0 && strcmp(old[j].cfg->name, t->name) == 0)
            was = old[j].cfg;
    }
    if (t->start_from == RC_START_FROM_DEFAULT ||
        (was != NULL && was->start_from == t->start_from && was->start_from_ns == t->start_from_ns))
        return;
    rc_log_info("supervisor",
                "trigger %s/%s: %s; it has a saved cursor and resumes where it acknowledged "
                "(start-from places a new trigger only: to replay, give the trigger a new name)",
                t->ns, t->name,
                was != NULL ? "ringcast.dev/start-from changed" : "ringcast.dev/start-from kept");
}

/* Builds the trigger table for `cfg`, taking over the stats slot (counters) of each trigger of
 * `old` with the same namespace, name and broker (what it takes is cleared in `old`), and each
 * trigger's saved cursor, found by the same identity in its broker's cursor table. Triggers
 * without one start where their ringcast.dev/start-from says; without it at the latest event,
 * or (`from_oldest[b]`) at broker b's resumed feeds (rc_cursor_take_trigger). need[b] is
 * lowered to the position broker b's feeds must start at or before for the new triggers'
 * first events. All-or-nothing (a cursor slot taken stays until drop_stale). */
static int build_table(rc_supervisor_t *s, const rc_config_t *cfg, rc_worker_trigger_t *old,
                       size_t nold, const int *from_oldest, int64_t *need,
                       rc_worker_trigger_t **out)
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
        wt->lag_policy = rc_config_lag_limit(cfg, t, &wt->lag_bytes);
        int b = broker_index(s, t->ns, t->broker);
        if (b < 0) {
            rc_log_error("supervisor",
                         "trigger %s/%s: broker %s is not running (brokers change "
                         "only with a restart)",
                         t->ns, t->name, t->broker);
            rc = RC_ECONFIG;
            break;
        }
        wt->broker_idx = (uint32_t)b;
        rc = effective_delivery(cfg, t, &wt->delivery);
        if (rc != 0)
            break;
        int fresh = 0;
        int64_t at = -1;
        wt->cursor = rc_cursor_take_trigger(s->cursors[b], s->brokers[b].store, t,
                                            from_oldest != NULL && from_oldest[b], &fresh, &at);
        if (wt->cursor == NULL) {
            rc_log_error("supervisor", "trigger %s/%s: no cursor slot left", t->ns, t->name);
            rc = -ENOSPC;
            break;
        }
        if (!fresh)
            note_kept_start(t, old, nold);
        if (at >= 0 && (need[b] < 0 || at < need[b]))
            need[b] = at;
        for (size_t j = 0; j < nold; j++) {
            if (old[j].stats != NULL && old[j].broker_idx == wt->broker_idx &&
                strcmp(old[j].cfg->ns, t->ns) == 0 && strcmp(old[j].cfg->name, t->name) == 0) {
                wt->stats = old[j].stats;
                wt->stats_slot = old[j].stats_slot;
                wt->stats_replicas = rc_worker_stats_replicas(s->stats, wt->stats_slot);
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
        wt->stats_replicas = rc_worker_stats_replicas(s->stats, slot);
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
    if (k > (long)RC_CONFIG_WORKERS_MAX)
        k = RC_CONFIG_WORKERS_MAX; /* the stats segment has feed cells for that many */
    if ((size_t)k > ntrig)
        k = (long)ntrig;
    return (int)k;
}

static void assign(rc_worker_trigger_t *tab, size_t n, int nw)
{
    for (size_t i = 0; i < n; i++)
        tab[i].worker = nw > 0 ? (int)(i % (size_t)nw) : -1;
}

/* The latest heartbeat of worker `idx`, 0 when it has not turned its loop yet. */
static uint64_t last_beat(const rc_supervisor_t *s, int idx)
{
    return atomic_load_explicit(&s->stats->heartbeat[idx], memory_order_relaxed);
}

static int spawn(rc_supervisor_t *s, int idx)
{
    /* A new worker is watched from its first loop turn: until then its heartbeat is 0, so a
     * slow start (a large route program) is not taken for a hang, and the last worker's beat
     * does not count against it. */
    atomic_store_explicit(&s->stats->heartbeat[idx], 0, memory_order_relaxed);
    s->w[idx].watchdog_killed = 0;
    rc_worker_plan_t plan = {
        .index = idx,
        .triggers = s->trig,
        .ntriggers = s->ntrig,
        .feeds = s->feeds,
        .heartbeat = &s->stats->heartbeat[idx],
        .nfeeds = s->nfeeds,
        .brokers = s->brokers,
        .nbrokers = s->nbrokers,
        .drain_ms = s->drain_ms,
        .supervisor = getpid(),
    };
    /* The child starts with libuv's signal handlers, which write to the loop's signal pipe, and
     * that pipe is shared with us: a SIGTERM for a worker that has not set its own handlers yet
     * would stop the broker instead. So every signal stays blocked across the fork; the worker
     * unblocks them once its handlers are in place (rc_worker_run). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(rc_worker_run(&plan));
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        rc_log_error("supervisor", "cannot fork worker %d: %s", idx, strerror(e));
        s->w[idx].pid = 0;
        s->w[idx].restart_at = rc_now_ns() + RESTART_DELAY_NS;
        return -e;
    }
    s->w[idx].pid = pid;
    s->w[idx].started_ns = rc_now_ns();
    s->w[idx].restart_at = 0;
    return 0;
}

/* Forks s->nw workers for the current table and feeds (one that cannot be forked is retried
 * like a dead one). */
static void spawn_all(rc_supervisor_t *s)
{
    memset(s->w, 0, sizeof(s->w));
    for (int i = 0; i < s->nw; i++)
        spawn(s, i);
    rc_log_info("supervisor", "%zu trigger%s on %d worker process%s", s->ntrig,
                s->ntrig == 1 ? "" : "s", s->nw, s->nw == 1 ? "" : "es");
}

/* Reaps every worker that has exited. While running, an exit is a crash: logged, counted and
 * given a restart time; in the other phases it is what was asked for. Returns how many
 * workers are still alive. */
static int reap(rc_supervisor_t *s, uint64_t now)
{
    int alive = 0;
    for (int i = 0; i < s->nw; i++) {
        wproc_t *w = &s->w[i];
        int st = 0;
        if (w->pid <= 0)
            continue;
        pid_t r = waitpid(w->pid, &st, WNOHANG);
        if (r == 0 || (r < 0 && errno != ECHILD)) {
            alive++;
            continue;
        }
        if (s->phase == SUP_RUNNING) {
            if (WIFSIGNALED(st))
                rc_log_warn("supervisor", "worker %d (pid %d) killed by signal %d; restarting", i,
                            (int)w->pid, WTERMSIG(st));
            else
                rc_log_warn("supervisor", "worker %d (pid %d) exited with status %d; restarting", i,
                            (int)w->pid, WEXITSTATUS(st));
            w->restart_at = now - w->started_ns < RESTART_DELAY_NS ? now + RESTART_DELAY_NS : now;
            atomic_fetch_add_explicit(&s->stats->worker_restarts, 1, memory_order_relaxed);
        }
        w->pid = 0;
    }
    return alive;
}

/* Asks every worker to stop: they finish what is in flight for up to the drain time; what is
 * left at `drain_ms` + 1 s is killed (step). */
static void stop_workers(rc_supervisor_t *s, unsigned drain_ms)
{
    for (int i = 0; i < s->nw; i++) {
        if (s->w[i].pid > 0)
            kill(s->w[i].pid, SIGTERM);
    }
    s->kill_at = rc_now_ns() + ((uint64_t)drain_ms + 1000) * 1000000ull;
}

static void kill_left(rc_supervisor_t *s)
{
    for (int i = 0; i < s->nw; i++) {
        if (s->w[i].pid > 0) {
            rc_log_warn("supervisor", "worker %d (pid %d) did not stop; killing it", i,
                        (int)s->w[i].pid);
            kill(s->w[i].pid, SIGKILL);
        }
    }
    s->kill_at = UINT64_MAX; /* once: SIGKILL cannot be caught, so SIGCHLD follows soon */
}

/* Kills (SIGKILL: a stopped process ends too) each running worker whose heartbeat is older than
 * the watchdog timeout; reap restarts it once it is gone. */
static void watchdog(rc_supervisor_t *s, uint64_t now)
{
    uint64_t limit = (uint64_t)s->cfg->watchdog_ms * 1000000ull;
    for (int i = 0; i < s->nw; i++) {
        wproc_t *w = &s->w[i];
        if (w->pid <= 0 || w->watchdog_killed)
            continue;
        uint64_t hb = last_beat(s, i);
        /* `now` was read before this turn's restarts: a worker forked since has a later
         * started_ns, and the unsigned difference must not wrap into "stuck". */
        if (hb == 0 && now > w->started_ns && now - w->started_ns >= START_LIMIT_NS) {
            /* Not slow but stuck: e.g. forked while another thread held a lock the child
             * needs before its loop (the logger's, malloc's). */
            rc_log_warn("supervisor", "worker %d (pid %d) has not started its loop in %.0f s; "
                        "killing it",
                        i, (int)w->pid, (double)(now - w->started_ns) / 1e9);
            kill(w->pid, SIGKILL);
            w->watchdog_killed = 1;
            s->watchdog_kills++;
            continue;
        }
        if (hb == 0 || hb >= now || now - hb < limit)
            continue;
        rc_log_warn("supervisor",
                    "worker %d (pid %d): no heartbeat for %.1f s (watchdogTimeout %u ms); "
                    "killing it",
                    i, (int)w->pid, (double)(now - hb) / 1e9, s->cfg->watchdog_ms);
        kill(w->pid, SIGKILL);
        w->watchdog_killed = 1; /* once: SIGCHLD follows, and reap restarts it */
        s->watchdog_kills++;
    }
}

static void apply_reload(rc_supervisor_t *s);
static void close_handles(rc_supervisor_t *s);

/* The state machine, run by the watch timer, by SIGCHLD, and right after each request (stop,
 * reload) in case nothing has to be waited for: reap, then restart (running) or, once the
 * stopping workers are all gone (killed at the deadline), apply the reload or close. */
static void step(rc_supervisor_t *s)
{
    uint64_t now = rc_now_ns();
    int alive = reap(s, now);
    if (s->phase == SUP_RUNNING) {
        for (int i = 0; i < s->nw; i++) {
            wproc_t *w = &s->w[i];
            if (w->pid == 0 && w->restart_at <= now && spawn(s, i) == 0)
                rc_log_info("supervisor", "worker %d restarted (pid %d)", i, (int)w->pid);
        }
        watchdog(s, now);
    } else if (alive > 0) {
        if (now >= s->kill_at)
            kill_left(s);
    } else if (s->phase == SUP_RELOADING) {
        apply_reload(s);
    } else if (s->phase == SUP_STOPPING) {
        close_handles(s);
    }
}

static void on_watch(uv_timer_t *h)
{
    step(h->data);
}

static void on_sigchld(uv_signal_t *h, int signum)
{
    (void)signum;
    step(h->data);
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

static void free_config(rc_config_t *c)
{
    if (c != NULL)
        rc_config_close(c);
    free(c);
}

/* Moves each broker's feed start back to what its new triggers need (start-from oldest or a
 * time before it): the feed reads from there, and the triggers that had a cursor skip what
 * they finished, by sequence number, as after a worker restart. -1 is the latest event. */
static void feeds_reach(int64_t *start, const int64_t *need, size_t nbrokers)
{
    for (size_t b = 0; b < nbrokers; b++) {
        if (need[b] >= 0 && (start[b] < 0 || need[b] < start[b]))
            start[b] = need[b];
    }
}

/* Builds the table and feeds of `nc` over the stopped workers' (kept triggers take their slots
 * over; new feeds of a broker start at the oldest position its old feeds acknowledged, still in
 * the ring while they are open: nothing a trigger has not finished is before it). */
static int prepare(rc_supervisor_t *s, const rc_config_t *nc, int nw, rc_worker_trigger_t **tab,
                   rc_worker_feed_t **feeds, size_t *nfeeds)
{
    int64_t *start = calloc(s->nbrokers ? s->nbrokers : 1, sizeof(*start));
    int64_t *need = calloc(s->nbrokers ? s->nbrokers : 1, sizeof(*need));
    int rc = start && need ? 0 : -ENOMEM;
    for (size_t b = 0; rc == 0 && b < s->nbrokers; b++)
        start[b] = need[b] = -1;
    if (rc == 0)
        rc = build_table(s, nc, s->trig, s->ntrig, NULL, need, tab);
    if (rc != 0)
        goto out;
    rc_cursor_settle(s->trig, s->ntrig, s->feeds);
    for (size_t i = 0; i < s->nfeeds; i++) {
        uint64_t a = rc_storage_acked(s->feeds[i].reader);
        int64_t *st = &start[s->feeds[i].broker_idx];
        if (*st < 0 || a < (uint64_t)*st)
            *st = (int64_t)a;
    }
    feeds_reach(start, need, s->nbrokers);
    assign(*tab, nc->trigger_count, nw);
    rc = open_feeds(s, nc, *tab, nc->trigger_count, nw, start, feeds, nfeeds);
    if (rc != 0)
        release_table(s, *tab, nc->trigger_count, s->trig, s->ntrig);
out:
    free(need);
    free(start);
    return rc;
}

/* With the old workers gone: applies s->next, or keeps the running table when it cannot be
 * applied, and forks the workers of whichever it is. Then runs the reload asked for
 * meanwhile. */
static void apply_reload(rc_supervisor_t *s)
{
    rc_config_t *nc = s->next;
    rc_worker_trigger_t *tab = NULL;
    rc_worker_feed_t *feeds = NULL;
    size_t nfeeds = 0;
    int nw = worker_count(nc, nc->trigger_count);
    s->next = NULL;
    s->phase = SUP_RUNNING;
    if (prepare(s, nc, nw, &tab, &feeds, &nfeeds) != 0) {
        rc_log_error("supervisor", "reload rejected (see above), the running config stays");
        free_config(nc);
        atomic_fetch_add_explicit(&s->stats->reload_errors, 1, memory_order_relaxed);
        drop_stale(s); /* cursor slots the rejected table took */
        goto respawn;
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
    free_config(s->owned);
    s->owned = nc;
    s->cfg = nc;
    drop_stale(s); /* the removed triggers' cursors */
    atomic_fetch_add_explicit(&s->stats->reloads, 1, memory_order_relaxed);
    rc_log_info("supervisor", "reloaded %s: %zu trigger%s (%zu kept, %zu added, %zu removed)",
                nc->source, s->ntrig, s->ntrig == 1 ? "" : "s", kept, s->ntrig - kept, removed);
respawn:
    spawn_all(s);
    if (s->hup_again) {
        s->hup_again = 0;
        rc_supervisor_reload(s);
    }
}

int rc_supervisor_reload_state(rc_supervisor_t *s, uint64_t *applied, uint64_t *rejected)
{
    *applied = atomic_load_explicit(&s->stats->reloads, memory_order_relaxed);
    *rejected = atomic_load_explicit(&s->stats->reload_errors, memory_order_relaxed);
    return s->phase == SUP_RELOADING;
}

int rc_supervisor_check(rc_supervisor_t *s, const rc_config_t *nc, char *err, size_t err_len)
{
    /* Names resolve here, bounded: IP literals and /etc/hosts at once, DNS within the timeout
     * (the loop waits that long only when DNS does not answer). */
    int rc = rc_http_url_check_hosts(nc, RC_HTTP_RESOLVE_TIMEOUT_MS, err, err_len);
    if (rc == 0 && !same_brokers(s, nc)) {
        snprintf(err, err_len,
                 "%s: the set of brokers changed (adding or removing a Broker needs a restart)",
                 nc->source);
        rc = RC_ECONFIG;
    }
    return rc;
}

int rc_supervisor_reload(rc_supervisor_t *s)
{
    if (s->phase == SUP_RELOADING) {
        if (!s->hup_again)
            rc_log_info("supervisor", "SIGHUP during a reload: the file is read again after it");
        s->hup_again = 1;
        return 0;
    }
    if (s->phase != SUP_RUNNING) {
        rc_log_warn("supervisor", "SIGHUP while stopping: not reloading");
        return -ECANCELED;
    }
    const char *path = s->cfg->source;
    if (path == NULL || strcmp(path, "(default)") == 0) {
        rc_log_warn("supervisor", "SIGHUP: started without --config; nothing to reload");
        return RC_ECONFIG;
    }
    rc_config_t *nc = calloc(1, sizeof(*nc));
    char err[RC_CONFIG_ERR_MAX];
    int rc = nc ? rc_config_load_with_state(nc, path, err, sizeof(err)) : -ENOMEM;
    if (rc == 0 && s->hook != NULL && (rc = s->hook(s->hook_arg, nc)) != 0)
        snprintf(err, sizeof(err), "%s: adding what does not come from the file: %s", path,
                 rc_strerror(rc));
    if (rc == 0)
        rc = rc_supervisor_check(s, nc, err, sizeof(err));
    if (rc != 0) {
        rc_log_error("supervisor", "reload rejected, the running config stays: %s",
                     nc ? err : "out of memory");
        free_config(nc);
        atomic_fetch_add_explicit(&s->stats->reload_errors, 1, memory_order_relaxed);
        return rc;
    }
    /* The old workers must be gone before the cursors are written down and the feeds replaced;
     * they stop while the loop goes on, and step applies `nc` after them. */
    rc_log_info("supervisor", "reloading %s: stopping the workers (up to %u ms)", path,
                s->drain_ms);
    s->next = nc;
    s->phase = SUP_RELOADING;
    stop_workers(s, s->drain_ms);
    step(s);
    return 0;
}

void rc_supervisor_set_config_hook(rc_supervisor_t *s, int (*hook)(void *arg, rc_config_t *nc),
                                   void *arg)
{
    s->hook = hook;
    s->hook_arg = arg;
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    rc_supervisor_reload(h->data);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

/* Frees everything but the readers' slots: the feeds stay in the ring (reclaimed once this
 * process is gone, or adopted by the next broker process on the same ring). */
static void release(rc_supervisor_t *s)
{
    for (size_t i = 0; i < s->nfeeds; i++)
        rc_storage_reader_forget(s->feeds[i].reader);
    free(s->feeds);
    free(s->trig);
    rc_cursor_tables_close(s->cursors, s->nbrokers);
    rc_worker_stats_destroy(s->stats);
    free_config(s->next);
    free_config(s->owned);
    free(s->brokers);
    free(s);
}

static void on_closed(uv_handle_t *h)
{
    rc_supervisor_t *s = h->data;
    if (--s->handles > 0)
        return;
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    release(s);
    if (done != NULL)
        done(arg);
}

/* Closes the handles made so far (s->handles of them, in the order init_handles makes them);
 * the last close callback frees `s` and runs `done`. */
static void close_handles(rc_supervisor_t *s)
{
    uv_handle_t *h[] = {(uv_handle_t *)&s->watch, (uv_handle_t *)&s->sighup,
                        (uv_handle_t *)&s->sigchld};
    s->phase = SUP_CLOSED;
    /* Close callbacks run from a later loop iteration, so s->handles does not move here. */
    for (int i = 0; i < s->handles; i++)
        uv_close(h[i], on_closed);
}

static int init_handles(rc_supervisor_t *s)
{
    uv_timer_init(s->loop, &s->watch); /* cannot fail */
    s->watch.data = s;
    s->handles = 1;
    int rc = uv_signal_init(s->loop, &s->sighup);
    if (rc != 0)
        return rc;
    s->sighup.data = s;
    s->handles++;
    rc = uv_signal_init(s->loop, &s->sigchld);
    if (rc != 0)
        return rc;
    s->sigchld.data = s;
    s->handles++;
    /* SIGCHLD reaps a worker as soon as it exits (reloads and stops end without delay); the
     * timer runs restarts and deadlines, and reaps too should a SIGCHLD be coalesced away. */
    rc = uv_signal_start(&s->sigchld, on_sigchld, SIGCHLD);
    if (rc == 0)
        rc = uv_signal_start(&s->sighup, on_sighup, SIGHUP);
    if (rc == 0)
        rc = uv_timer_start(&s->watch, on_watch, WATCH_MS, WATCH_MS);
    return rc;
}

int rc_supervisor_start(uv_loop_t *loop, const rc_config_t *cfg, rc_storage_t *const *stores,
                        rc_supervisor_t **out)
{
    size_t nb = cfg->broker_count ? cfg->broker_count : 1;
    rc_supervisor_t *s = calloc(1, sizeof(*s));
    int64_t *start = calloc(nb, sizeof(*start));
    int *adopted = calloc(nb, sizeof(*adopted));
    int *from_oldest = calloc(nb, sizeof(*from_oldest));
    int64_t *need = calloc(nb, sizeof(*need));
    int rc = -ENOMEM;
    if (s == NULL || start == NULL || adopted == NULL || from_oldest == NULL || need == NULL)
        goto fail;
    s->loop = loop;
    s->cfg = cfg;
    s->drain_ms = cfg->shutdown_timeout_ms;
    s->nbrokers = cfg->broker_count;
    s->brokers = calloc(nb, sizeof(*s->brokers));
    if (s->brokers == NULL)
        goto fail;
    rc = rc_worker_stats_create(RC_CONFIG_TRIGGERS_MAX, &s->stats);
    if (rc != 0)
        goto fail;
    for (size_t i = 0; i < s->nbrokers; i++) {
        s->brokers[i].ns = cfg->brokers[i].ns;
        s->brokers[i].name = cfg->brokers[i].name;
        s->brokers[i].store = stores[i];
    }
    rc = rc_cursor_tables_open(s->brokers, s->nbrokers, &s->cursors, adopted);
    if (rc != 0)
        goto fail;
    /* A broker whose feeds resume but whose cursor table is new delivers everything from the
     * feeds' position to every trigger; with saved cursors, only to triggers that have none. */
    for (size_t b = 0; b < s->nbrokers; b++) {
        start[b] = orphan_start(&s->brokers[b]);
        from_oldest[b] = start[b] >= 0 && !adopted[b];
        need[b] = -1;
    }
    rc = build_table(s, cfg, NULL, 0, from_oldest, need, &s->trig);
    if (rc != 0)
        goto fail;
    feeds_reach(start, need, s->nbrokers);
    s->ntrig = cfg->trigger_count;
    s->nw = worker_count(cfg, s->ntrig);
    assign(s->trig, s->ntrig, s->nw);
    rc = open_feeds(s, cfg, s->trig, s->ntrig, s->nw, start, &s->feeds, &s->nfeeds);
    if (rc != 0)
        goto fail;
    drop_stale(s);
    rc = init_handles(s);
    if (rc != 0) {
        rc_log_error("supervisor", "cannot watch the workers: %s", rc_strerror(rc));
        close_handles(s); /* frees s from the loop; no worker was forked */
        goto out;
    }
    /* The feeds of the previous broker process (dead slots) stop gating the rings. */
    for (size_t b = 0; b < s->nbrokers; b++)
        rc_storage_reclaim(s->brokers[b].store);
    spawn_all(s);
    *out = s;
    goto out;
fail:
    if (s != NULL)
        release(s); /* no feed is open (open_feeds is all-or-nothing) */
out:
    free(need);
    free(from_oldest);
    free(adopted);
    free(start);
    return rc;
}

int rc_supervisor_stop(rc_supervisor_t *s, unsigned drain_ms, void (*done)(void *arg), void *arg)
{
    if (s->phase == SUP_STOPPING || s->phase == SUP_CLOSED)
        return -EALREADY;
    if (s->phase == SUP_RELOADING) {
        /* The workers were told to stop already; their deadline stands. */
        rc_log_info("supervisor", "stopping: the reload in progress is not applied");
        free_config(s->next);
        s->next = NULL;
        s->hup_again = 0;
    } else {
        stop_workers(s, drain_ms);
    }
    s->phase = SUP_STOPPING;
    s->done = done;
    s->done_arg = arg;
    step(s);
    return 0;
}

/* Events and ring bytes between trigger `t`'s cursor and its ring's head: /metrics and the
 * admin API's status both read it here. */
static rc_trigger_lag_t trigger_lag(const rc_supervisor_t *s, const rc_worker_trigger_t *t)
{
    rc_storage_group_stats_t gs;
    if (rc_storage_group_stats(s->feeds[t->feed].reader, &gs) == 0)
        return (rc_trigger_lag_t){gs.pending, 0}; /* its group's entries read, not acknowledged */
    rc_storage_stats_t st;
    rc_storage_stats(s->brokers[t->broker_idx].store, &st);
    uint64_t seq, pos;
    rc_cursor_load(t->cursor, s->feeds[t->feed].cursor, &seq, &pos);
    return (rc_trigger_lag_t){st.head_seq > seq ? st.head_seq - seq : 0,
                              st.head > pos ? st.head - pos : 0};
}

size_t rc_supervisor_triggers(rc_supervisor_t *s, rc_supervisor_trigger_t *out, size_t cap)
{
    for (size_t i = 0; i < s->ntrig && i < cap; i++) {
        const rc_worker_trigger_t *t = &s->trig[i];
        out[i] = (rc_supervisor_trigger_t){
            .cfg = t->cfg,
            .stats = t->stats,
            .delivery = &t->delivery,
            .lag = trigger_lag(s, t),
            .worker_pid = t->worker >= 0 && s->phase == SUP_RUNNING ? s->w[t->worker].pid : 0,
        };
    }
    return s->ntrig;
}

/* Each worker process: up or waiting to be forked again (and for how long), and the
 * supervisor's phase: what an operator (and a test's diagnosis) needs when a worker is missing. */
static size_t worker_gauges(const rc_supervisor_t *s, char *buf, size_t cap)
{
    static const char *const phases[] = {"running", "reloading", "stopping", "closed"};
    uint64_t now = rc_now_ns();
    size_t n = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int k_ = snprintf(n < cap ? buf + n : NULL, n < cap ? cap - n : 0, __VA_ARGS__);           \
        n += k_ > 0 ? (size_t)k_ : 0;                                                              \
    } while (0)
    if (s->nw > 0) /* no family without a sample: a broker without triggers has no worker */
        PUT("# HELP ringcast_worker_up 1 while the worker process runs, 0 while it waits to be "
            "forked again.\n# TYPE ringcast_worker_up gauge\n");
    for (int i = 0; i < s->nw; i++)
        PUT("ringcast_worker_up{worker=\"%d\"} %d\n", i, s->w[i].pid > 0);
    if (s->nw > 0)
        PUT("# HELP ringcast_worker_restart_wait_seconds Seconds until a dead worker is forked "
            "again (0 while it runs).\n# TYPE ringcast_worker_restart_wait_seconds gauge\n");
    for (int i = 0; i < s->nw; i++) {
        const wproc_t *w = &s->w[i];
        PUT("ringcast_worker_restart_wait_seconds{worker=\"%d\"} %.3f\n", i,
            w->pid > 0 || w->restart_at <= now ? 0.0 : (double)(w->restart_at - now) / 1e9);
    }
    PUT("# HELP ringcast_supervisor_phase The delivery supervisor's phase (1 for the current "
        "one).\n# TYPE ringcast_supervisor_phase gauge\n");
    for (int p = 0; p < 4; p++)
        PUT("ringcast_supervisor_phase{phase=\"%s\"} %d\n", phases[p], (int)s->phase == p);
#undef PUT
    return n;
}

/* The Redis consumer group of each trigger of a redis broker (docs/scaleout.md). */
static size_t group_metrics(const rc_supervisor_t *s, char *buf, size_t cap)
{
    static const char *const fam[][3] = {
        {"pending", "gauge",
         "Entries of the trigger's Redis consumer group read and not "
         "acknowledged, by any node (XPENDING, refreshed about every second)."},
        {"claimed_total", "counter",
         "Entries this node took over from other nodes' consumers "
         "idle longer than spec.redis.claimIdle (XAUTOCLAIM)."},
        {"acked_total", "counter",
         "Entries this node acknowledged (XACK) once delivered, "
         "dead-lettered, dropped or not matched."},
        {"read_total", "counter",
         "Entries this node read from the group (new ones, its own "
         "pending ones again, claimed ones)."},
    };
    size_t n = 0;
    for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        int head = 0;
        for (size_t i = 0; i < s->ntrig; i++) {
            const rc_worker_trigger_t *t = &s->trig[i];
            rc_storage_group_stats_t gs;
            if (t->feed >= s->nfeeds || rc_storage_group_stats(s->feeds[t->feed].reader, &gs) != 0)
                continue;
            const uint64_t v[] = {gs.pending, gs.claimed, gs.acked, gs.read};
            int k = 0;
            if (!head++)
                k = snprintf(n < cap ? buf + n : NULL, n < cap ? cap - n : 0,
                             "# HELP ringcast_storage_redis_group_%s %s\n"
                             "# TYPE ringcast_storage_redis_group_%s %s\n",
                             fam[f][0], fam[f][2], fam[f][0], fam[f][1]);
            n += k > 0 ? (size_t)k : 0;
            k = snprintf(n < cap ? buf + n : NULL, n < cap ? cap - n : 0,
                         "ringcast_storage_redis_group_%s{namespace=\"%s\",trigger=\"%s\","
                         "broker=\"%s\"} %llu\n",
                         fam[f][0], t->cfg->ns, t->cfg->name, t->cfg->broker,
                         (unsigned long long)v[f]);
            n += k > 0 ? (size_t)k : 0;
        }
    }
    return n;
}

size_t rc_supervisor_metrics(rc_supervisor_t *s, char *buf, size_t cap)
{
    rc_trigger_lag_t *lag = calloc(s->stats->slots, sizeof(*lag));
    if (lag == NULL)
        return 0;
    for (size_t i = 0; i < s->ntrig; i++)
        lag[s->trig[i].stats_slot] = trigger_lag(s, &s->trig[i]);
    size_t n = rc_worker_stats_render(s->stats, lag, buf, cap);
    free(lag);
    /* Replica counters, labelled with the URLs of the running config. */
    rc_replica_labels_t *rl = calloc(s->ntrig ? s->ntrig : 1, sizeof(*rl));
    size_t nrl = 0;
    for (size_t i = 0; rl != NULL && i < s->ntrig; i++) {
        const rc_config_dapr_sub_t *d = s->trig[i].cfg->dapr;
        const rc_config_trigger_t *tc = s->trig[i].cfg;
        if (d != NULL && d->app != NULL)
            rl[nrl++] =
                (rc_replica_labels_t){s->trig[i].stats_slot, (const char *const *)d->app->endpoints,
                                      d->app->endpoint_count};
        else if (tc->endpoint_count > 0)
            rl[nrl++] = (rc_replica_labels_t){s->trig[i].stats_slot,
                                              (const char *const *)tc->endpoints,
                                              tc->endpoint_count};
    }
    n += rc_worker_stats_render_replicas(s->stats, rl, nrl, n < cap ? buf + n : NULL,
                                         n < cap ? cap - n : 0);
    free(rl);
    int k = snprintf(n < cap ? buf + n : NULL, n < cap ? cap - n : 0,
                     "# HELP ringcast_worker_watchdog_kills_total Worker processes killed because "
                     "their heartbeat stopped (spec.watchdogTimeout).\n"
                     "# TYPE ringcast_worker_watchdog_kills_total counter\n"
                     "ringcast_worker_watchdog_kills_total %llu\n",
                     (unsigned long long)s->watchdog_kills);
    n += k > 0 ? (size_t)k : 0;
    n += group_metrics(s, n < cap ? buf + n : NULL, n < cap ? cap - n : 0);
    return n + worker_gauges(s, n < cap ? buf + n : NULL, n < cap ? cap - n : 0);
}

int rc_supervisor_feed_holder(rc_supervisor_t *s, size_t broker_idx, const char *reader, char *out,
                              size_t cap, int *pid)
{
    int worker = -1, used = 0;
    if (sscanf(reader, "feed~w%d%n", &worker, &used) != 1 || reader[used] != '\0' || worker < 0 ||
        worker >= s->nw)
        return -ENOENT;
    const rc_worker_trigger_t *oldest = NULL;
    uint64_t oldest_seq = UINT64_MAX;
    for (size_t i = 0; i < s->ntrig; i++) {
        const rc_worker_trigger_t *t = &s->trig[i];
        if (t->worker != worker || t->broker_idx != broker_idx || t->cursor == NULL)
            continue;
        uint64_t seq, pos;
        rc_cursor_load(t->cursor, s->feeds[t->feed].cursor, &seq, &pos);
        if (oldest == NULL || seq < oldest_seq) {
            oldest = t;
            oldest_seq = seq;
        }
    }
    if (oldest == NULL)
        return -ENOENT;
    snprintf(out, cap, "%s/%s", oldest->cfg->ns, oldest->cfg->name);
    *pid = s->w[worker].pid;
    return 0;
}
