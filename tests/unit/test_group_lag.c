/* Unit test of the consumer-group lag limit (rc_group_enforce_lag, shm/group.h): a group whose
 * members stop reading is moved up to its limit, the records it passes are counted exactly
 * once, producers get room again, a member whose batch was skipped is told (view.lost) and
 * never returns a skipped record, a live member keeps the gate moving past a stopped member's
 * batch, orphaned batches below the limit are dropped, `block` and "no default" never skip,
 * and the skipper races live members (threads; run under TSan with the shm tier). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/errors.h"
#include "shm/group.h"
#include "shm/reader.h"
#include "shm/ring.h"
#include "tests/test.h"

#define CAP (64u * 1024u)

static char ring_name[64];

typedef struct {
    uint64_t n;
    uint64_t check; /* ~n: a record read after it was overwritten shows */
} payload_t;

static int put(rc_ring_t *r, uint64_t n)
{
    rc_ring_claim_t c;
    int rc = rc_ring_claim(r, sizeof(payload_t), RC_REC_TYPE_USER, 0, &c);
    if (rc != 0)
        return rc;
    payload_t p = {.n = n, .check = ~n};
    memcpy(c.data, &p, sizeof(p));
    return rc_ring_commit(&c);
}

static uint64_t val(const rc_ring_view_t *v)
{
    payload_t p;
    memcpy(&p, v->data, sizeof(p));
    if (p.check != ~p.n)
        RC_TEST_FAIL("record at %llu is torn (%llu)", (unsigned long long)v->pos,
                     (unsigned long long)p.n);
    return p.n;
}

/* Puts records numbered from *next until the ring is full; returns how many went in. */
static uint64_t fill(rc_ring_t *r, uint64_t *next)
{
    uint64_t n = 0;
    int rc;
    while ((rc = put(r, *next)) == 0) {
        (*next)++;
        n++;
    }
    ASSERT_EQ(rc, RC_ERING_FULL);
    return n;
}

static rc_ring_t *make_ring(void)
{
    char err[256];
    snprintf(ring_name, sizeof(ring_name), "rc-test-group-lag-%d", (int)getpid());
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    cfg.capacity = CAP;
    cfg.flags = RC_RING_F_REPLACE;
    rc_ring_t *ring;
    if (rc_ring_create(ring_name, &cfg, &ring, err, sizeof(err)) != 0)
        RC_TEST_FAIL("create ring: %s", err);
    return ring;
}

static uint64_t enforce(rc_ring_t *ring, uint64_t limit)
{
    uint64_t skipped = UINT64_MAX;
    ASSERT_EQ(rc_group_enforce_lag(ring, limit, &skipped), 0);
    return skipped;
}

static void test_options(rc_ring_t *ring)
{
    rc_group_member_t *m;
    rc_group_opts_t small = {.lag_limit = RC_GROUP_LAG_MIN - 1};
    ASSERT_EQ(rc_group_join(ring, "opts", &small, &m), -EINVAL);
    rc_group_opts_t big = {.lag_limit = CAP + 1};
    ASSERT_EQ(rc_group_join(ring, "opts", &big, &m), -EINVAL);
    rc_group_opts_t ok = {.lag_limit = CAP / 4};
    ASSERT_EQ(rc_group_join(ring, "opts", &ok, &m), 0);
    rc_group_opts_t block = {.lag_limit = RC_GROUP_LAG_BLOCK};
    rc_group_member_t *b;
    ASSERT_EQ(rc_group_join(ring, "opts-block", &block, &b), 0);
    rc_group_info_t info[RC_GROUP_MAX];
    ASSERT_EQ(rc_group_list(ring, info, RC_GROUP_MAX), 2);
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        if (strcmp(info[i].name, "opts") == 0) {
            ASSERT_U64_EQ(info[i].lag_limit, CAP / 4);
            seen |= 1;
        } else if (strcmp(info[i].name, "opts-block") == 0) {
            ASSERT(info[i].lag_limit == RC_GROUP_LAG_BLOCK);
            seen |= 2;
        }
        ASSERT_EQ(info[i].members, 1);
        ASSERT_U64_EQ(info[i].lagged, 0);
    }
    ASSERT_EQ(seen, 3);
    ASSERT_EQ(rc_group_list(ring, info, 1), 2); /* counts them all, fills one */
    rc_group_leave(m);
    rc_group_leave(b);
    ASSERT_EQ(rc_group_list(ring, info, RC_GROUP_MAX), 0);
}

/* An idle member (nothing claimed) that stops polling: the cursor moves up to the limit, every
 * passed record is counted, producers get room, and the member goes on from there. */
static void test_cursor(rc_ring_t *ring)
{
    rc_group_opts_t o = {.start = RC_START_LATEST, .batch = 8};
    rc_group_member_t *m;
    ASSERT_EQ(rc_group_join(ring, "cursor", &o, &m), 0);
    uint64_t next = 0;
    uint64_t n = fill(ring, &next);
    ASSERT_GT(n, 100);
    ASSERT_U64_EQ(enforce(ring, CAP), 0); /* not past a limit of the whole ring */
    ASSERT_U64_EQ(enforce(ring, 0), 0);   /* no default, no limit of its own: never */
    uint64_t skipped = enforce(ring, CAP / 2);
    ASSERT_GT(skipped, n / 3);
    ASSERT_LT(skipped, n);
    ASSERT_U64_EQ(enforce(ring, CAP / 2), 0); /* within the limit now */
    rc_ring_slowest_t sl;
    ASSERT_EQ(rc_ring_slowest(ring, &sl), 0);
    ASSERT_STR_EQ(sl.name, "g:cursor");
    ASSERT_EQ(sl.pid, getpid());
    ASSERT_LE(sl.lag_bytes, CAP / 2);
    ASSERT_U64_EQ(sl.lag_events, n - skipped);
    uint64_t more = fill(ring, &next); /* room again: about the skipped space */
    ASSERT_GT(more, skipped / 2);
    rc_group_stats_t st;
    rc_group_stats(m, &st);
    ASSERT_U64_EQ(st.lagged, skipped);
    rc_ring_view_t v;
    uint64_t got = 0;
    while (rc_group_poll(m, &v) == 0) {
        ASSERT_U64_EQ(val(&v), skipped + got); /* the oldest were dropped, in order after */
        ASSERT_U64_EQ(v.lost, 0);              /* none of them was this member's */
        got++;
    }
    ASSERT_U64_EQ(got + skipped, next);
    rc_group_stats(m, &st);
    ASSERT_U64_EQ(st.lost, 0);
    rc_group_leave(m);
}

/* A member stopped in the middle of a batch: the batch is skipped with the rest, counted once
 * (the one record it had returned included), and its next poll reports the rest as lost. */
static void test_batch(rc_ring_t *ring)
{
    rc_group_opts_t o = {.start = RC_START_LATEST, .batch = 8};
    rc_group_member_t *m;
    ASSERT_EQ(rc_group_join(ring, "batch", &o, &m), 0);
    uint64_t next = 0;
    for (; next < 8; next++)
        ASSERT_EQ(put(ring, next), 0);
    rc_ring_view_t v;
    ASSERT_EQ(rc_group_poll(m, &v), 0);
    ASSERT_U64_EQ(val(&v), 0);
    uint64_t n = fill(ring, &next) + 8;
    uint64_t skipped = enforce(ring, CAP / 2);
    ASSERT_GT(skipped, 8);
    ASSERT_EQ(put(ring, next++), 0);
    n++;
    /* It resumes: the 7 records of its batch it never returned are lost, then the oldest kept. */
    ASSERT_EQ(rc_group_poll(m, &v), 0);
    ASSERT_U64_EQ(v.lost, 7);
    ASSERT_U64_EQ(val(&v), skipped);
    uint64_t got = 2;
    while (rc_group_poll(m, &v) == 0) {
        ASSERT_U64_EQ(v.lost, 0);
        ASSERT_U64_EQ(val(&v), skipped + got - 1);
        got++;
    }
    ASSERT_U64_EQ(got + skipped, n + 1); /* record 0: returned, and counted as skipped */
    rc_group_stats_t st;
    rc_group_stats(m, &st);
    ASSERT_U64_EQ(st.lagged, skipped);
    ASSERT_U64_EQ(st.lost, 7);
    rc_group_leave(m);
}

/* Manual ack: views of a skipped batch count as acknowledged. */
static void test_manual(rc_ring_t *ring)
{
    rc_group_opts_t o = {.start = RC_START_LATEST, .batch = 4, .flags = RC_GROUP_F_MANUAL_ACK};
    rc_group_member_t *m;
    ASSERT_EQ(rc_group_join(ring, "manual", &o, &m), 0);
    uint64_t next = 0;
    for (; next < 4; next++)
        ASSERT_EQ(put(ring, next), 0);
    rc_ring_view_t v1, v2, v;
    ASSERT_EQ(rc_group_poll(m, &v1), 0);
    ASSERT_EQ(rc_group_poll(m, &v2), 0);
    fill(ring, &next);
    uint64_t skipped = enforce(ring, CAP / 2);
    ASSERT_GT(skipped, 4);
    ASSERT_EQ(rc_group_poll(m, &v), 0);
    ASSERT_U64_EQ(v.lost, 2);
    ASSERT_U64_EQ(val(&v), skipped);
    ASSERT_EQ(rc_group_ack(m, v1.next), 0);
    ASSERT_EQ(rc_group_ack(m, v2.next), 0);
    ASSERT_EQ(rc_group_ack(m, v.next), 0);
    ASSERT_EQ(rc_group_ack(m, v.pos - 8), -EINVAL);
    rc_group_leave(m);
}

/* One member stopped holding a batch, one live: after one skip, the live member's progress
 * alone moves the gate (the stopped batch no longer holds it), so producers are never held
 * back by the stopped one again. */
static void test_live_member(rc_ring_t *ring)
{
    rc_group_opts_t o = {.start = RC_START_LATEST, .batch = 8};
    rc_group_member_t *stopped, *live;
    ASSERT_EQ(rc_group_join(ring, "pair", &o, &stopped), 0);
    ASSERT_EQ(rc_group_join(ring, "pair", &o, &live), 0);
    uint64_t next = 0;
    for (; next < 8; next++)
        ASSERT_EQ(put(ring, next), 0);
    rc_ring_view_t v;
    ASSERT_EQ(rc_group_poll(stopped, &v), 0); /* takes 0..7 */
    fill(ring, &next);
    uint64_t skipped = enforce(ring, CAP / 2);
    ASSERT_GT(skipped, 8);
    for (int round = 0; round < 3; round++) {
        uint64_t got = 0;
        while (rc_group_poll(live, &v) == 0) {
            val(&v);
            got++;
        }
        ASSERT_GT(got, 0);
        uint64_t n = fill(ring, &next); /* a whole ring again, no enforcement needed */
        ASSERT_GT(n, got - 8);
    }
    rc_group_stats_t st;
    rc_group_stats(live, &st);
    ASSERT_U64_EQ(st.lagged, skipped);
    rc_group_leave(stopped);
    rc_group_leave(live);
}

/* A member that left with records not acknowledged (an orphan batch) below the limit: dropped
 * with the rest, never handed to the next member. */
static void test_orphan(rc_ring_t *ring)
{
    rc_group_opts_t o = {.start = RC_START_LATEST, .batch = 8, .flags = RC_GROUP_F_MANUAL_ACK};
    rc_group_member_t *gone, *stay;
    ASSERT_EQ(rc_group_join(ring, "orphan", &o, &gone), 0);
    ASSERT_EQ(rc_group_join(ring, "orphan", &o, &stay), 0);
    uint64_t next = 0;
    for (; next < 8; next++)
        ASSERT_EQ(put(ring, next), 0);
    rc_ring_view_t v;
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(rc_group_poll(gone, &v), 0);
    rc_group_leave(gone); /* 0..7 handed over, none acknowledged */
    uint64_t n = fill(ring, &next) + 8;
    uint64_t skipped = enforce(ring, CAP / 2);
    ASSERT_GT(skipped, 8);
    uint64_t got = 0, first = UINT64_MAX;
    while (rc_group_poll(stay, &v) == 0) {
        uint64_t x = val(&v);
        ASSERT_GE(x, 8); /* never the dropped orphan */
        if (first == UINT64_MAX)
            first = x;
        ASSERT_EQ(rc_group_ack(stay, v.next), 0);
        got++;
    }
    ASSERT_U64_EQ(first, skipped);
    ASSERT_U64_EQ(got + skipped, n);
    rc_group_stats_t st;
    rc_group_stats(stay, &st);
    ASSERT_U64_EQ(st.lagged, skipped);
    ASSERT_U64_EQ(st.handed_over, 0);
    rc_group_leave(stay);
}

/* `block` groups and groups without a limit when the enforcer has no default are never moved. */
static void test_block(rc_ring_t *ring)
{
    rc_group_opts_t o = {.start = RC_START_LATEST, .lag_limit = RC_GROUP_LAG_BLOCK};
    rc_group_member_t *m;
    ASSERT_EQ(rc_group_join(ring, "blocker", &o, &m), 0);
    uint64_t next = 0;
    fill(ring, &next);
    ASSERT_U64_EQ(enforce(ring, CAP / 4), 0);
    ASSERT_EQ(put(ring, next), RC_ERING_FULL);
    rc_group_leave(m);
    /* Its own limit wins over the default. */
    rc_group_opts_t own = {.start = RC_START_LATEST, .lag_limit = CAP / 4};
    ASSERT_EQ(rc_group_join(ring, "own", &own, &m), 0);
    next = 0;
    uint64_t n = fill(ring, &next);
    uint64_t skipped = enforce(ring, 0);
    ASSERT_GT(skipped, n / 2);
    rc_group_stats_t st;
    rc_group_stats(m, &st);
    ASSERT_LE(rc_ring_head(ring) - st.position, CAP / 4);
    rc_group_leave(m);
}

/* ---- threads: members claim while the skipper moves the group ------------------------------- */

#define RACE_MEMBERS 2

static struct {
    rc_ring_t *ring;
    _Atomic int go, stop;
    _Atomic uint8_t seen[8192];
    _Atomic uint64_t delivered;
    _Atomic int failed;
} race;

static void *race_member(void *arg)
{
    rc_group_member_t *m = arg;
    while (!atomic_load(&race.go))
        ;
    while (!atomic_load(&race.stop)) {
        rc_ring_view_t v;
        int rc = rc_group_poll(m, &v);
        if (rc == RC_ERING_EMPTY)
            continue;
        if (rc != 0) {
            atomic_store(&race.failed, 1);
            break;
        }
        payload_t p;
        memcpy(&p, v.data, sizeof(p));
        if (p.check != ~p.n || p.n >= 8192 || atomic_fetch_add(&race.seen[p.n], 1) != 0)
            atomic_store(&race.failed, 2);
        atomic_fetch_add(&race.delivered, 1);
    }
    return NULL;
}

static void *race_skipper(void *arg)
{
    uint64_t *total = arg;
    while (!atomic_load(&race.go))
        ;
    for (int i = 0; i < 2000 && !atomic_load(&race.stop); i++) {
        uint64_t k = 0;
        rc_group_enforce_lag(race.ring, CAP / 2, &k);
        *total += k;
    }
    return NULL;
}

/* One stopped member holds a batch; the ring is full; then live members claim while a skipper
 * moves the group (producers stay still meanwhile, so no record is overwritten while a member
 * may read it). Every record goes to at most one member, each skipped record is counted once,
 * some of them (of the batches the skipper passed) also returned, and afterwards the group runs
 * on. */
static void test_race(void)
{
    rc_ring_t *ring = make_ring();
    race.ring = ring;
    rc_group_opts_t o = {.start = RC_START_LATEST, .batch = 4};
    rc_group_member_t *stopped, *m[RACE_MEMBERS];
    ASSERT_EQ(rc_group_join(ring, "race", &o, &stopped), 0);
    for (int i = 0; i < RACE_MEMBERS; i++)
        ASSERT_EQ(rc_group_join(ring, "race", &o, &m[i]), 0);
    uint64_t next = 0;
    for (; next < 4; next++)
        ASSERT_EQ(put(ring, next), 0);
    rc_ring_view_t v;
    ASSERT_EQ(rc_group_poll(stopped, &v), 0);
    atomic_fetch_add(&race.seen[val(&v)], 1);
    fill(ring, &next);
    ASSERT_LT(next, 8192);
    pthread_t th[RACE_MEMBERS + 1];
    uint64_t skipped = 0;
    for (int i = 0; i < RACE_MEMBERS; i++)
        pthread_create(&th[i], NULL, race_member, m[i]);
    pthread_create(&th[RACE_MEMBERS], NULL, race_skipper, &skipped);
    atomic_store(&race.go, 1);
    pthread_join(th[RACE_MEMBERS], NULL);
    uint64_t deadline = rc_now_ns() + 10000000000ull;
    while (atomic_load(&race.delivered) + skipped + 1 < next && rc_now_ns() < deadline)
        usleep(1000);
    atomic_store(&race.stop, 1);
    for (int i = 0; i < RACE_MEMBERS; i++)
        pthread_join(th[i], NULL);
    ASSERT_EQ(atomic_load(&race.failed), 0);
    uint64_t delivered = atomic_load(&race.delivered) + 1;
    ASSERT_GE(delivered + skipped, next);
    /* Counted and returned too: the stopped member's record, and what a live member returned
     * (but had not acknowledged when the skipper looked) of a batch that was skipped. */
    ASSERT_LE(delivered + skipped, next + 1 + RACE_MEMBERS * 4);
    rc_group_stats_t st;
    rc_group_stats(m[0], &st);
    ASSERT_U64_EQ(st.lagged, skipped);
    /* Runs on: the live members drain two more rings' worth without another skip. */
    for (int round = 0; round < 2; round++) {
        uint64_t from = next;
        fill(ring, &next);
        uint64_t got = 0;
        for (int i = 0; i < RACE_MEMBERS; i++)
            while (rc_group_poll(m[i], &v) == 0) {
                ASSERT_GE(val(&v), from);
                got++;
            }
        ASSERT_U64_EQ(got, next - from);
    }
    rc_group_leave(stopped);
    for (int i = 0; i < RACE_MEMBERS; i++)
        rc_group_leave(m[i]);
    printf("race: %d members, %llu records, %llu skipped, %llu delivered\n", RACE_MEMBERS,
           (unsigned long long)next, (unsigned long long)skipped, (unsigned long long)delivered);
    rc_ring_close(ring);
    rc_ring_unlink(ring_name);
}

int main(void)
{
    rc_ring_t *ring = make_ring();
    test_options(ring);
    test_cursor(ring);
    test_batch(ring);
    test_manual(ring);
    test_live_member(ring);
    test_orphan(ring);
    test_block(ring);
    rc_ring_close(ring);
    rc_ring_unlink(ring_name);
    test_race();
    printf("test_group_lag: ok\n");
    return 0;
}
