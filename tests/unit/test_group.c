/* Unit test of consumer groups (shm/group.h): joining, limits and errors, each record to one
 * member, manual acknowledgement, hand-over on leave and on a member process's death, gating,
 * waiting, and a multi-threaded run (N members, M producer threads, every record exactly
 * once). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/errors.h"
#include "shm/group.h"
#include "core/clock.h"
#include "shm/reader.h"
#include "shm/ring.h"
#include "tests/test.h"

static char ring_name[64];

typedef struct {
    uint32_t producer;
    uint32_t pad;
    uint64_t n;
} payload_t;

static int put(rc_ring_t *r, uint32_t producer, uint64_t n)
{
    rc_ring_claim_t c;
    int rc = rc_ring_claim(r, sizeof(payload_t), RC_REC_TYPE_USER, 0, &c);
    if (rc != 0)
        return rc;
    payload_t p = {.producer = producer, .n = n};
    memcpy(c.data, &p, sizeof(p));
    return rc_ring_commit(&c);
}

static uint64_t val(const rc_ring_view_t *v)
{
    payload_t p;
    memcpy(&p, v->data, sizeof(p));
    return p.n;
}

static rc_ring_t *make_ring(uint64_t cap, uint64_t hb_ns)
{
    char err[256];
    snprintf(ring_name, sizeof(ring_name), "rc-test-group-%d", (int)getpid());
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    cfg.capacity = cap;
    cfg.flags = RC_RING_F_REPLACE;
    if (hb_ns)
        cfg.heartbeat_timeout_ns = hb_ns;
    rc_ring_t *ring;
    int rc = rc_ring_create(ring_name, &cfg, &ring, err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("create ring: %s", err);
    return ring;
}

static void test_errors(rc_ring_t *ring)
{
    rc_group_member_t *m = (rc_group_member_t *)1;
    ASSERT_EQ(rc_group_join(ring, NULL, NULL, &m), RC_EGROUP_NAME);
    ASSERT(m == NULL);
    ASSERT_EQ(rc_group_join(ring, "", NULL, &m), RC_EGROUP_NAME);
    ASSERT_EQ(rc_group_join(ring, "has space", NULL, &m), RC_EGROUP_NAME);
    ASSERT_EQ(rc_group_join(ring, "a/b", NULL, &m), RC_EGROUP_NAME);
    ASSERT_EQ(rc_group_join(ring, "0123456789012345678901234567890x", NULL, &m), RC_EGROUP_NAME);
    ASSERT_EQ(rc_group_join(NULL, "g", NULL, &m), -EINVAL);
    ASSERT_EQ(rc_group_join(ring, "g", NULL, NULL), -EINVAL);
    rc_group_opts_t at = {.start = RC_START_AT};
    ASSERT_EQ(rc_group_join(ring, "g", &at, &m), -EINVAL);
    rc_group_opts_t big = {.batch = 5000};
    ASSERT_EQ(rc_group_join(ring, "g", &big, &m), -EINVAL);
    rc_group_opts_t flags = {.flags = 0x80};
    ASSERT_EQ(rc_group_join(ring, "g", &flags, &m), -EINVAL);
    ASSERT_STR_EQ(rc_err_name(RC_EGROUP_MEMBERS), "RC_EGROUP_MEMBERS");
    rc_group_leave(NULL);

    /* A 31-byte name with every allowed character class is fine. */
    ASSERT_EQ(rc_group_join(ring, "Az09._:-aaaaaaaaaaaaaaaaaaaaaaa", NULL, &m), 0);
    rc_group_leave(m);
}

static void test_limits(rc_ring_t *ring)
{
    rc_group_member_t *g[RC_GROUP_MAX + 1];
    char nm[32];
    for (uint32_t i = 0; i < RC_GROUP_MAX; i++) {
        snprintf(nm, sizeof(nm), "grp-%u", i);
        ASSERT_EQ(rc_group_join(ring, nm, NULL, &g[i]), 0);
    }
    ASSERT_EQ(rc_group_join(ring, "one-too-many", NULL, &g[RC_GROUP_MAX]), RC_EGROUP_FULL);
    /* Joining an existing group still works when the table is full. */
    rc_group_member_t *again;
    ASSERT_EQ(rc_group_join(ring, "grp-3", NULL, &again), 0);
    rc_group_leave(again);
    for (uint32_t i = 0; i < RC_GROUP_MAX; i++)
        rc_group_leave(g[i]);
    ASSERT_EQ(rc_group_join(ring, "one-too-many", NULL, &g[0]), 0);
    rc_group_leave(g[0]);

    rc_group_member_t *ms[RC_GROUP_MAX_MEMBERS + 1];
    for (uint32_t i = 0; i < RC_GROUP_MAX_MEMBERS; i++)
        ASSERT_EQ(rc_group_join(ring, "crowd", NULL, &ms[i]), 0);
    rc_group_stats_t st;
    rc_group_stats(ms[0], &st);
    ASSERT_EQ(st.members, RC_GROUP_MAX_MEMBERS);
    ASSERT_EQ(rc_group_join(ring, "crowd", NULL, &ms[RC_GROUP_MAX_MEMBERS]), RC_EGROUP_MEMBERS);
    rc_group_leave(ms[7]);
    ASSERT_EQ(rc_group_join(ring, "crowd", NULL, &ms[7]), 0);
    for (uint32_t i = 0; i < RC_GROUP_MAX_MEMBERS; i++)
        rc_group_leave(ms[i]);

    rc_ring_stats_t rs;
    rc_ring_stats(ring, &rs);
    ASSERT_EQ(rs.lossless, 0); /* every group deleted with its last member */
}

/* Two members, each record to exactly one of them, in ring order within each member. */
static void test_compete(rc_ring_t *ring)
{
    rc_group_opts_t o = {.start = RC_START_LATEST, .batch = 4};
    rc_group_member_t *a, *b;
    for (uint64_t i = 0; i < 5; i++)
        ASSERT_EQ(put(ring, 0, 1000 + i), 0); /* before the group: not delivered */
    ASSERT_EQ(rc_group_join(ring, "compete", &o, &a), 0);
    ASSERT_EQ(rc_group_join(ring, "compete", &o, &b), 0);
    ASSERT_NE(rc_group_member_index(a), rc_group_member_index(b));
    rc_ring_view_t v;
    ASSERT_EQ(rc_group_poll(a, &v), RC_ERING_EMPTY);
    for (uint64_t i = 0; i < 20; i++)
        ASSERT_EQ(put(ring, 0, i), 0);
    int seen[20] = {0};
    uint64_t last_a = 0, last_b = 0;
    int got_a = 0, got_b = 0;
    for (int round = 0; round < 40; round++) {
        rc_group_member_t *m = (round % 8) < 4 ? a : b;
        int rc = rc_group_poll(m, &v);
        if (rc == RC_ERING_EMPTY)
            continue;
        ASSERT_EQ(rc, 0);
        uint64_t x = val(&v);
        ASSERT_LT(x, 20);
        seen[x]++;
        if (m == a) {
            ASSERT(!got_a || x > last_a);
            last_a = x;
            got_a++;
        } else {
            ASSERT(!got_b || x > last_b);
            last_b = x;
            got_b++;
        }
    }
    for (int i = 0; i < 20; i++)
        ASSERT_EQ(seen[i], 1);
    ASSERT_EQ(got_a, 12); /* batches of 4: a takes 3 batches, b 2, as they alternate */
    ASSERT_EQ(got_b, 8);
    rc_group_stats_t st;
    rc_group_stats(a, &st);
    ASSERT_EQ(st.members, 2);
    ASSERT_EQ(st.delivered, 12);
    ASSERT_EQ(st.redelivered, 0);
    ASSERT_U64_EQ(st.next, rc_ring_head(ring));
    ASSERT_EQ(rc_group_poll(a, &v), RC_ERING_EMPTY);
    ASSERT_EQ(rc_group_poll(b, &v), RC_ERING_EMPTY);
    rc_group_stats(a, &st);
    ASSERT_U64_EQ(st.position, rc_ring_head(ring)); /* all acknowledged */
    rc_group_leave(a);
    rc_group_leave(b);
}

static void test_manual_and_leave(rc_ring_t *ring)
{
    rc_group_opts_t o = {.start = RC_START_LATEST, .batch = 4, .flags = RC_GROUP_F_MANUAL_ACK};
    rc_group_member_t *a, *b;
    ASSERT_EQ(rc_group_join(ring, "manual", &o, &a), 0);
    ASSERT_EQ(rc_group_join(ring, "manual", &o, &b), 0);
    for (uint64_t i = 0; i < 6; i++)
        ASSERT_EQ(put(ring, 0, i), 0);
    rc_ring_view_t v[4], w;
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(rc_group_poll(a, &v[i]), 0);
        ASSERT_EQ(val(&v[i]), (uint64_t)i);
    }
    ASSERT_EQ(rc_group_poll(a, &w), RC_EGROUP_UNACKED);
    ASSERT_EQ(rc_group_ack(a, v[3].next + 8), -EINVAL);
    ASSERT_EQ(rc_group_ack(a, v[1].next + 4), -EINVAL);
    ASSERT_EQ(rc_group_ack(a, v[1].next), 0);
    ASSERT_EQ(rc_group_ack(a, v[0].next), -EINVAL); /* behind what is acknowledged */
    ASSERT_EQ(rc_group_poll(a, &w), RC_EGROUP_UNACKED);
    /* The group gates at a's oldest unacknowledged record. */
    rc_group_stats_t st;
    rc_group_stats(b, &st);
    ASSERT_EQ(rc_group_poll(b, &w), 0);
    ASSERT_EQ(val(&w), 4);
    ASSERT_EQ(rc_group_ack(b, w.next), 0);
    /* a leaves with records 2 and 3 returned but not acknowledged: they go to b. */
    rc_group_leave(a);
    ASSERT_EQ(rc_group_poll(b, &w), 0);
    ASSERT_EQ(val(&w), 5);
    ASSERT_EQ(rc_group_ack(b, w.next), 0);
    uint64_t got[2];
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(rc_group_poll(b, &w), 0);
        got[i] = val(&w);
        ASSERT_EQ(rc_group_ack(b, w.next), 0);
    }
    ASSERT_EQ(got[0], 2);
    ASSERT_EQ(got[1], 3);
    ASSERT_EQ(rc_group_poll(b, &w), RC_ERING_EMPTY);
    rc_group_stats(b, &st);
    ASSERT_EQ(st.handed_over, 2);
    ASSERT_EQ(st.redelivered, 0);
    ASSERT_EQ(st.members, 1);
    ASSERT_U64_EQ(st.position, rc_ring_head(ring));
    rc_group_leave(b);
}

/* A group gates producers like a lossless reader, and stops when its last member leaves. */
static void test_gating(rc_ring_t *ring)
{
    rc_group_opts_t o = {.start = RC_START_LATEST};
    rc_group_member_t *m;
    ASSERT_EQ(rc_group_join(ring, "gate", &o, &m), 0);
    uint64_t n = 0;
    int rc;
    while ((rc = put(ring, 0, n)) == 0)
        n++;
    ASSERT_EQ(rc, RC_ERING_FULL);
    ASSERT_GT(n, 100);
    rc_ring_view_t v;
    for (uint64_t i = 0; i < n; i++) {
        ASSERT_EQ(rc_group_poll(m, &v), 0);
        ASSERT_U64_EQ(val(&v), i);
    }
    ASSERT_EQ(rc_group_poll(m, &v), RC_ERING_EMPTY);
    ASSERT_EQ(put(ring, 0, n), 0); /* consumed: room again */
    rc_group_leave(m);
    while (put(ring, 0, 0) == 0 && n-- > 0)
        ;
    ASSERT_EQ(put(ring, 0, 0), 0); /* no group, no gate */
}

static void *late_put(void *arg)
{
    usleep(50000);
    put(arg, 0, 77);
    return NULL;
}

static void test_wait(rc_ring_t *ring)
{
    rc_group_opts_t o = {.start = RC_START_LATEST, .spin = 10};
    rc_group_member_t *m;
    ASSERT_EQ(rc_group_join(ring, "waiter", &o, &m), 0);
    rc_ring_view_t v;
    uint64_t t0 = rc_now_ns();
    ASSERT_EQ(rc_group_wait(m, &v, 30000000), RC_ERING_EMPTY);
    ASSERT_GE(rc_now_ns() - t0, 30000000);
    pthread_t th;
    pthread_create(&th, NULL, late_put, ring);
    ASSERT_EQ(rc_group_wait(m, &v, 5000000000ll), 0);
    ASSERT_EQ(val(&v), 77);
    pthread_join(th, NULL);
    rc_group_leave(m);
}

/* A member in another process dies holding a batch it read one record of: after the heartbeat
 * timeout the survivor gets the whole batch (the record the dead one saw included). */
static void test_death(rc_ring_t *ring)
{
    rc_group_opts_t o = {.start = RC_START_LATEST, .batch = 4};
    rc_group_member_t *m;
    ASSERT_EQ(rc_group_join(ring, "mortal", &o, &m), 0);
    for (uint64_t i = 0; i < 6; i++)
        ASSERT_EQ(put(ring, 0, i), 0);
    int pipefd[2];
    ASSERT_EQ(pipe(pipefd), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char err[256];
        rc_ring_t *r;
        rc_group_member_t *c;
        rc_ring_view_t v;
        if (rc_ring_open(ring_name, &r, err, sizeof(err)) != 0 ||
            rc_group_join(r, "mortal", &o, &c) != 0 || rc_group_poll(c, &v) != 0 || val(&v) != 0)
            _exit(1);
        char ok = 'y';
        if (write(pipefd[1], &ok, 1) != 1)
            _exit(1);
        for (;;)
            pause(); /* holds records 0..3, killed below */
    }
    char ok = 0;
    ASSERT_EQ(read(pipefd[0], &ok, 1), 1);
    ASSERT_EQ(ok, 'y');
    kill(pid, SIGKILL);
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    rc_ring_view_t v;
    uint64_t got[6];
    int n = 0;
    uint64_t deadline = rc_now_ns() + 10000000000ull;
    while (n < 6 && rc_now_ns() < deadline) {
        int rc = rc_group_wait(m, &v, 100000000);
        if (rc == RC_ERING_EMPTY)
            continue;
        ASSERT_EQ(rc, 0);
        got[n++] = val(&v);
    }
    ASSERT_EQ(n, 6);
    /* 4 and 5 first (the cursor), then the dead member's 0..3 once it is found dead. */
    ASSERT_EQ(got[0], 4);
    ASSERT_EQ(got[1], 5);
    for (int i = 2; i < 6; i++)
        ASSERT_EQ(got[i], (uint64_t)i - 2);
    ASSERT_EQ(rc_group_poll(m, &v), RC_ERING_EMPTY);
    rc_group_stats_t st;
    rc_group_stats(m, &st);
    ASSERT_EQ(st.redelivered, 4);
    ASSERT_EQ(st.members, 1);
    rc_group_leave(m);
    close(pipefd[0]);
    close(pipefd[1]);
}

/* The process that created a group (and whose identity its reader slot carries) dies, and the
 * surviving member does not poll for longer than the heartbeat timeout: a reclaimer frees the
 * slot, the survivor is told RC_EGROUP_GONE, and joining again makes a fresh group. */
static void test_gone(rc_ring_t *ring)
{
    rc_group_opts_t o = {.start = RC_START_LATEST};
    int up[2], down[2];
    ASSERT_EQ(pipe(up), 0);
    ASSERT_EQ(pipe(down), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char err[256], c = 'y';
        rc_ring_t *r;
        rc_group_member_t *g;
        if (rc_ring_open(ring_name, &r, err, sizeof(err)) != 0 ||
            rc_group_join(r, "fragile", &o, &g) != 0 || write(up[1], &c, 1) != 1 ||
            read(down[0], &c, 1) != 1)
            _exit(1);
        _exit(0); /* dies a member, without leaving */
    }
    char c = 0;
    ASSERT_EQ(read(up[0], &c, 1), 1);
    rc_group_member_t *m;
    ASSERT_EQ(rc_group_join(ring, "fragile", &o, &m), 0); /* the creator is alive: no takeover */
    ASSERT_EQ(write(down[1], &c, 1), 1);
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (int i = 0; i < 2; i++) {
        close(up[i]);
        close(down[i]);
    }
    rc_group_stats_t st;
    rc_group_stats(m, &st);
    ASSERT_EQ(st.members, 2); /* the dead one is not noticed yet */
    usleep(250000);           /* > heartbeat timeout, no poll */
    ASSERT_EQ(rc_ring_reclaim(ring), 1);
    ASSERT_EQ(put(ring, 0, 1), 0);
    rc_ring_view_t v;
    ASSERT_EQ(rc_group_poll(m, &v), RC_EGROUP_GONE);
    rc_group_leave(m);
    ASSERT_EQ(rc_group_join(ring, "fragile", &o, &m), 0);
    rc_group_stats(m, &st);
    ASSERT_EQ(st.members, 1);
    ASSERT_EQ(put(ring, 0, 2), 0);
    ASSERT_EQ(rc_group_poll(m, &v), 0);
    ASSERT_EQ(val(&v), 2);
    rc_group_leave(m);
}

/* ---- threads: N members, M producers, every record exactly once ------------------------ */

#define MT_PRODUCERS 3
#define MT_MEMBERS   4
#define MT_RECORDS   20000u

static struct {
    rc_ring_t *ring;
    _Atomic uint8_t seen[MT_PRODUCERS][MT_RECORDS];
    _Atomic uint64_t total;
    _Atomic int failed;
    _Atomic int joined;
    uint64_t deadline;
} mt;

static void *mt_producer(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    for (uint64_t i = 0; i < MT_RECORDS;) {
        int rc = put(mt.ring, id, i);
        if (rc == 0) {
            i++;
        } else if (rc == RC_ERING_FULL) {
            if (rc_now_ns() > mt.deadline) {
                atomic_store(&mt.failed, 1);
                return NULL;
            }
            sched_yield();
        } else {
            atomic_store(&mt.failed, 2);
            return NULL;
        }
    }
    return NULL;
}

static void *mt_member(void *arg)
{
    (void)arg;
    rc_group_opts_t o = {.start = RC_START_OLDEST, .batch = 16, .spin = 100};
    rc_group_member_t *m;
    if (rc_group_join(mt.ring, "threads", &o, &m) != 0) {
        atomic_store(&mt.failed, 3);
        atomic_fetch_add(&mt.joined, 1);
        return NULL;
    }
    atomic_fetch_add(&mt.joined, 1);
    uint64_t expect = (uint64_t)MT_PRODUCERS * MT_RECORDS;
    uint64_t last[MT_PRODUCERS];
    memset(last, 0xff, sizeof(last));
    while (atomic_load(&mt.total) < expect && rc_now_ns() < mt.deadline &&
           !atomic_load(&mt.failed)) {
        rc_ring_view_t v;
        int rc = rc_group_wait(m, &v, 20000000);
        if (rc == RC_ERING_EMPTY)
            continue;
        if (rc != 0) {
            atomic_store(&mt.failed, 4);
            break;
        }
        payload_t p;
        memcpy(&p, v.data, sizeof(p));
        if (p.producer >= MT_PRODUCERS || p.n >= MT_RECORDS) {
            atomic_store(&mt.failed, 5);
            break;
        }
        /* Within one member, one producer's records come in order. */
        if (last[p.producer] != UINT64_MAX && p.n <= last[p.producer])
            atomic_store(&mt.failed, 6);
        last[p.producer] = p.n;
        atomic_fetch_add(&mt.seen[p.producer][p.n], 1);
        atomic_fetch_add(&mt.total, 1);
    }
    rc_group_leave(m);
    return NULL;
}

static void test_threads(void)
{
    mt.ring = make_ring(256 * 1024, 0);
    mt.deadline = rc_now_ns() + 60000000000ull;
    pthread_t prod[MT_PRODUCERS], mem[MT_MEMBERS];
    for (int i = 0; i < MT_MEMBERS; i++)
        pthread_create(&mem[i], NULL, mt_member, NULL);
    while (atomic_load(&mt.joined) < MT_MEMBERS)
        usleep(1000);
    for (int i = 0; i < MT_PRODUCERS; i++)
        pthread_create(&prod[i], NULL, mt_producer, (void *)(uintptr_t)i);
    for (int i = 0; i < MT_PRODUCERS; i++)
        pthread_join(prod[i], NULL);
    for (int i = 0; i < MT_MEMBERS; i++)
        pthread_join(mem[i], NULL);
    ASSERT_EQ(atomic_load(&mt.failed), 0);
    for (int p = 0; p < MT_PRODUCERS; p++)
        for (uint32_t i = 0; i < MT_RECORDS; i++)
            if (atomic_load(&mt.seen[p][i]) != 1)
                RC_TEST_FAIL("producer %d record %u delivered %u times", p, i,
                             (unsigned)atomic_load(&mt.seen[p][i]));
    ASSERT_U64_EQ(atomic_load(&mt.total), (uint64_t)MT_PRODUCERS * MT_RECORDS);
    printf("threads: %d members, %d producers, %llu records each exactly once\n", MT_MEMBERS,
           MT_PRODUCERS, (unsigned long long)atomic_load(&mt.total));
    rc_ring_close(mt.ring);
    rc_ring_unlink(ring_name);
}

int main(void)
{
    rc_ring_t *ring = make_ring(64 * 1024, 100000000ull);
    test_errors(ring);
    test_limits(ring);
    test_compete(ring);
    test_manual_and_leave(ring);
    test_gating(ring);
    test_wait(ring);
    test_death(ring);
    test_gone(ring);
    rc_ring_close(ring);
    rc_ring_unlink(ring_name);
    test_threads();
    printf("test_group: ok\n");
    return 0;
}
