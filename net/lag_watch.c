/* The lag watch: one libuv timer on the main loop. Each tick (10 ms), per broker, the consumer
 * groups' lag limits (rc_storage_groups): a stopped group only moves when the watch moves it,
 * and producers fill the space one skip frees (the ring less the limit) within one tick at
 * most, so ticks are short; a tick that finds nothing to do costs a few loads per group. Every
 * tenth tick, the ring's fill and refusals: a ring over the fill threshold, or whose producers
 * were refused, is reported with its holder at most once per LOG_EVERY_NS, and groups that
 * skipped events are reported the same way. Everything runs on the loop's thread, so /metrics
 * (same loop) reads the cache without locks. */
#include "net/lag_watch.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

#define TICK_MS       10
#define HOLDER_TICKS  10             /* the holder and the fill: every 100 ms */
#define LOG_EVERY_NS  10000000000ull /* a ring's holder and a group's skips: once per 10 s */
#define FULL_PERMILLE 900u           /* "over 90% full" */
#define GROUPS_MAX    8              /* shm/group.h RC_GROUP_MAX */

typedef struct {
    rc_storage_group_t g;
    uint64_t logged; /* g.lagged when the last line about it was logged */
} group_seen_t;

typedef struct {
    rc_storage_t *store;
    const char *ns, *name;
    group_seen_t groups[GROUPS_MAX];
    rc_storage_group_t out[GROUPS_MAX]; /* what rc_lag_watch_groups returns */
    size_t ngroups;
    uint64_t refused_seen;   /* the store's refusal count at the last check */
    uint64_t refused_window; /* refusals since the last holder line (or since they began) */
    uint64_t window_start;   /* the check before the first of those refusals */
    uint64_t last_check;     /* rc_now_ns() of the last holder check */
    uint64_t holder_logged;  /* of the last holder line, 0 = never */
    uint64_t groups_logged;  /* of the last group line */
    int started;
} broker_t;

struct rc_lag_watch_s {
    uv_timer_t timer;
    uint64_t group_limit; /* spec.lag for groups without their own limit; 0 = block */
    rc_lag_namer_t namer;
    void *arg;
    unsigned ticks;
    size_t nbrokers;
    broker_t b[];
};

int rc_lag_watch_holder(const rc_lag_watch_t *w, size_t broker, rc_lag_holder_t *out)
{
    memset(out, 0, sizeof(*out));
    int rc = rc_storage_holder(w->b[broker].store, &out->h);
    int pid = 0;
    if (rc == 0 && w->namer != NULL && strncmp(out->h.name, "feed~w", 6) == 0 &&
        w->namer(w->arg, broker, out->h.name, out->trigger, sizeof(out->trigger), &pid) == 0)
        out->h.pid = (uint32_t)pid;
    return rc;
}

const rc_storage_group_t *rc_lag_watch_groups(const rc_lag_watch_t *w, size_t broker, size_t *n)
{
    *n = w->b[broker].ngroups;
    return w->b[broker].out;
}

/* "reader 'feed~w0' (pid 12, trigger default/slow)", "consumer group 'billing' (pid 12)". */
static void describe(const rc_lag_holder_t *h, char *buf, size_t cap)
{
    if (strncmp(h->h.name, "g:", 2) == 0)
        snprintf(buf, cap, "consumer group '%s' (pid %u)", h->h.name + 2, h->h.pid);
    else if (h->trigger[0] != '\0')
        snprintf(buf, cap, "reader '%s' (pid %u, trigger %s)", h->h.name, h->h.pid, h->trigger);
    else
        snprintf(buf, cap, "reader '%s' (pid %u)", h->h.name, h->h.pid);
}

/* The ring's fill and refusals; a line naming the holder when it is due. */
static void watch_holder(rc_lag_watch_t *w, size_t i, uint64_t now)
{
    broker_t *b = &w->b[i];
    rc_storage_stats_t st;
    rc_lag_holder_t h;
    rc_storage_stats(b->store, &st);
    int rc = rc_lag_watch_holder(w, i, &h);
    if (!b->started || h.h.refused < b->refused_seen)
        b->refused_seen = h.h.refused; /* first check, or a ring made anew */
    if (!b->started)
        b->last_check = now;
    b->started = 1;
    if (b->refused_window == 0)
        b->window_start = b->last_check;
    b->refused_window += h.h.refused - b->refused_seen;
    b->refused_seen = h.h.refused;
    b->last_check = now;
    int over = st.capacity > 0 && st.used * 1000 >= st.capacity * FULL_PERMILLE;
    if ((!over && b->refused_window == 0) ||
        (b->holder_logged != 0 && now - b->holder_logged < LOG_EVERY_NS))
        return;
    char refused[96] = "", who[256];
    if (b->refused_window > 0)
        snprintf(refused, sizeof(refused), ", %llu appends refused in %.1f s",
                 (unsigned long long)b->refused_window, (double)(now - b->window_start) / 1e9);
    if (rc == 0)
        describe(&h, who, sizeof(who));
    rc_log_warn("lag",
                "broker %s/%s: ring %llu%% full (%llu of %llu bytes)%s; held back by %s: %llu "
                "bytes, %llu events behind",
                b->ns, b->name, (unsigned long long)(st.capacity ? st.used * 100 / st.capacity : 0),
                (unsigned long long)st.used, (unsigned long long)st.capacity, refused,
                rc == 0 ? who : "claims still being written", (unsigned long long)h.h.lag_bytes,
                (unsigned long long)h.h.lag_events);
    b->holder_logged = now;
    b->refused_window = 0;
}

/* The groups' limits, the cache for /metrics (carrying what was logged over by name), and a
 * line per group that skipped events since its last line, when due. */
static void watch_groups(rc_lag_watch_t *w, size_t i, uint64_t now)
{
    broker_t *b = &w->b[i];
    rc_storage_group_t g[GROUPS_MAX];
    int n = rc_storage_groups(b->store, w->group_limit, NULL, g, GROUPS_MAX);
    if (n < 0)
        return;
    if (n > GROUPS_MAX)
        n = GROUPS_MAX;
    group_seen_t seen[GROUPS_MAX];
    int due = b->groups_logged == 0 || now - b->groups_logged >= LOG_EVERY_NS, logged = 0;
    for (int k = 0; k < n; k++) {
        seen[k].g = g[k];
        seen[k].logged = 0;
        for (size_t j = 0; j < b->ngroups; j++) {
            if (strcmp(b->groups[j].g.name, g[k].name) == 0 && b->groups[j].g.lagged <= g[k].lagged)
                seen[k].logged = b->groups[j].logged;
        }
        uint64_t limit = g[k].limit == 0 ? w->group_limit : g[k].limit;
        seen[k].g.limit = limit == UINT64_MAX ? 0 : limit;
        if (due && g[k].lagged > seen[k].logged) {
            rc_log_warn("lag",
                        "broker %s/%s: consumer group '%s' fell more than its lag limit (%llu "
                        "bytes) behind: %llu events skipped (dropped), %llu in all",
                        b->ns, b->name, g[k].name, (unsigned long long)seen[k].g.limit,
                        (unsigned long long)(g[k].lagged - seen[k].logged),
                        (unsigned long long)g[k].lagged);
            seen[k].logged = g[k].lagged;
            logged = 1;
        }
    }
    if (logged)
        b->groups_logged = now;
    memcpy(b->groups, seen, (size_t)n * sizeof(seen[0]));
    for (int k = 0; k < n; k++)
        b->out[k] = seen[k].g;
    b->ngroups = (size_t)n;
}

static void on_tick(uv_timer_t *t)
{
    rc_lag_watch_t *w = t->data;
    uint64_t now = rc_now_ns();
    int holders = w->ticks++ % HOLDER_TICKS == 0;
    for (size_t i = 0; i < w->nbrokers; i++) {
        watch_groups(w, i, now); /* first: a skip frees space the fill check then sees */
        if (holders)
            watch_holder(w, i, now);
    }
}

int rc_lag_watch_start(uv_loop_t *loop, const rc_config_t *cfg, rc_storage_t *const *stores,
                       rc_lag_namer_t namer, void *arg, rc_lag_watch_t **out)
{
    rc_lag_watch_t *w = calloc(1, sizeof(*w) + cfg->broker_count * sizeof(broker_t));
    if (w == NULL)
        return -ENOMEM;
    uint64_t limit = 0;
    if (rc_config_lag_limit(cfg, NULL, &limit) == RC_LAG_BLOCK)
        limit = 0;
    w->group_limit = limit;
    w->namer = namer;
    w->arg = arg;
    w->nbrokers = cfg->broker_count;
    for (size_t i = 0; i < w->nbrokers; i++) {
        w->b[i].store = stores[i];
        w->b[i].ns = cfg->brokers[i].ns;
        w->b[i].name = cfg->brokers[i].name;
    }
    uv_timer_init(loop, &w->timer); /* cannot fail */
    w->timer.data = w;
    int rc = uv_timer_start(&w->timer, on_tick, TICK_MS, TICK_MS);
    if (rc != 0) {
        rc_lag_watch_close(w);
        return rc;
    }
    *out = w;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void rc_lag_watch_close(rc_lag_watch_t *w)
{
    if (w != NULL)
        uv_close((uv_handle_t *)&w->timer, on_closed);
}
