/* Multi-process consumer-group stress: P producer processes write records of varying size into
 * a small ring that wraps and fills all the time; C member processes of one group consume them
 * (batches of different sizes, some members acknowledging by hand). With --kill (default), one
 * more member is killed with SIGKILL once it holds a batch it has read part of.
 *
 * Checks: every record is delivered at least once and uncorrupted; without the kill, exactly
 * once; with it, duplicates only from the killed member's unacknowledged claim (at most one
 * batch, each at most twice) and the group's redelivered counter is nonzero only then.
 *
 * Bounded by count and time: --records N (per producer), --seconds S (producers give up after
 * S, members S + 20). RC_STRESS_SCALE=x multiplies the default count. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm/group.h"
#include "core/clock.h"
#include "shm/ring.h"
#include "tests/test.h"

#define MAX_PROD     4
#define MAX_MEMBERS  12
#define MAX_RECORDS  2000000u
#define VICTIM_BATCH 32u

typedef struct {
    uint32_t producer;
    uint32_t len;
    uint64_t n;
    uint64_t sum;
} rec_head_t;

typedef struct {
    _Atomic uint64_t unique; /* records delivered at least once */
    _Atomic uint64_t corrupt;
    _Atomic int joined;
    _Atomic int go;
    _Atomic uint64_t victim_got;
    _Atomic int stop;
    uint64_t redelivered; /* the group's counter, read by the last member */
    char failure[MAX_MEMBERS + 1][160];
    _Atomic uint8_t count[MAX_PROD][MAX_RECORDS];
    _Atomic uint8_t victim_saw[MAX_PROD][MAX_RECORDS];
} control_t;

static struct {
    int producers, members, kill;
    uint64_t records;
    double seconds;
    char name[64];
} cfg;

static control_t *ctl;

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static rc_ring_t *open_ring(void)
{
    char err[256];
    rc_ring_t *r;
    if (rc_ring_open(cfg.name, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "open: %s\n", err);
        _exit(3);
    }
    return r;
}

static void producer(int id)
{
    rc_ring_t *r = open_ring();
    while (!atomic_load(&ctl->go))
        usleep(1000);
    uint64_t deadline = rc_now_ns() + (uint64_t)(cfg.seconds * 1e9);
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
    uint8_t buf[512];
    for (uint64_t n = 0; n < cfg.records;) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t len = (uint32_t)sizeof(rec_head_t) + (uint32_t)(x % 300);
        rc_ring_claim_t c;
        int rc = rc_ring_claim(r, len, RC_REC_TYPE_USER, 0, &c);
        if (rc == RC_ERING_FULL) {
            if (rc_now_ns() > deadline)
                _exit(4);
            sched_yield();
            continue;
        }
        if (rc != 0)
            _exit(5);
        for (uint32_t i = sizeof(rec_head_t); i < len; i++)
            buf[i] = (uint8_t)(x >> (i % 56)) ^ (uint8_t)i;
        rec_head_t h = {.producer = (uint32_t)id,
                        .len = len,
                        .n = n,
                        .sum = fnv(buf + sizeof(h), len - sizeof(h))};
        memcpy(buf, &h, sizeof(h));
        memcpy(c.data, buf, len);
        if (rc_ring_commit(&c) != 0)
            _exit(6);
        n++;
    }
    rc_ring_close(r);
    _exit(0);
}

/* Returns 0, or 1 when the record is corrupt. */
static int record(const rc_ring_view_t *v, int victim)
{
    rec_head_t h;
    if (v->len < sizeof(h))
        return 1;
    memcpy(&h, v->data, sizeof(h));
    if (h.producer >= (uint32_t)cfg.producers || h.n >= cfg.records || h.len != v->len ||
        fnv((const uint8_t *)v->data + sizeof(h), v->len - sizeof(h)) != h.sum)
        return 1;
    if (victim)
        atomic_store(&ctl->victim_saw[h.producer][h.n], 1);
    if (atomic_fetch_add(&ctl->count[h.producer][h.n], 1) == 0)
        atomic_fetch_add(&ctl->unique, 1);
    return 0;
}

static void member(int id, int victim)
{
    rc_ring_t *r = open_ring();
    /* Batches of 1..64; every third member acknowledges by hand, two records at a time. */
    rc_group_opts_t o = {.start = RC_START_OLDEST,
                         .batch = victim ? VICTIM_BATCH : 1u << (id % 7),
                         .spin = 200,
                         .flags = (!victim && id % 3 == 2) ? RC_GROUP_F_MANUAL_ACK : 0};
    rc_group_member_t *m;
    int rc = rc_group_join(r, "stress", &o, &m);
    atomic_fetch_add(&ctl->joined, 1);
    if (rc != 0) {
        snprintf(ctl->failure[id], sizeof(ctl->failure[id]), "member %d join: %s", id,
                 rc_strerror(rc));
        _exit(1);
    }
    uint64_t total = (uint64_t)cfg.producers * cfg.records;
    uint64_t deadline = rc_now_ns() + (uint64_t)((cfg.seconds + 20) * 1e9);
    uint64_t unacked = 0, ack_at = 0;
    while (!atomic_load(&ctl->stop) && atomic_load(&ctl->unique) < total &&
           rc_now_ns() < deadline) {
        rc_ring_view_t v;
        rc = rc_group_wait(m, &v, 20000000);
        if (rc == RC_ERING_EMPTY)
            continue;
        if (rc == RC_EGROUP_UNACKED) {
            rc = rc_group_ack(m, ack_at);
            unacked = 0;
            if (rc == 0)
                continue;
        }
        if (rc != 0) {
            snprintf(ctl->failure[id], sizeof(ctl->failure[id]), "member %d: %s", id,
                     rc_strerror(rc));
            _exit(1);
        }
        if (record(&v, victim))
            atomic_fetch_add(&ctl->corrupt, 1);
        if (victim && atomic_fetch_add(&ctl->victim_got, 1) + 1 == 3 * VICTIM_BATCH + 5) {
            /* Hold the batch (this record returned, not acknowledged) until the kill. */
            for (;;)
                pause();
        }
        if (o.flags & RC_GROUP_F_MANUAL_ACK) {
            ack_at = v.next;
            if (++unacked == 2) {
                rc_group_ack(m, ack_at);
                unacked = 0;
            }
        }
    }
    if (o.flags & RC_GROUP_F_MANUAL_ACK && ack_at != 0)
        rc_group_ack(m, ack_at);
    rc_group_stats_t st;
    rc_group_stats(m, &st);
    ctl->redelivered = st.redelivered;
    rc_group_leave(m);
    rc_ring_close(r);
    _exit(0);
}

static int parse(int argc, char **argv)
{
    cfg.producers = 2;
    cfg.members = 4;
    cfg.kill = 1;
    cfg.seconds = 60;
    double scale = getenv("RC_STRESS_SCALE") ? atof(getenv("RC_STRESS_SCALE")) : 1.0;
    cfg.records = (uint64_t)(100000 * (scale > 0 ? scale : 1.0));
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-kill"))
            cfg.kill = 0;
        else if (!strcmp(argv[i], "--records") && i + 1 < argc)
            cfg.records = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--members") && i + 1 < argc)
            cfg.members = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--producers") && i + 1 < argc)
            cfg.producers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            cfg.seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: stress_group [--no-kill] [--records N] [--members N] "
                            "[--producers N] [--seconds S]\n");
            return 2;
        }
    }
    if (cfg.producers < 1 || cfg.producers > MAX_PROD || cfg.members < 1 ||
        cfg.members > MAX_MEMBERS - 1 || cfg.records == 0 || cfg.records > MAX_RECORDS) {
        fprintf(stderr,
                "stress_group: out of range (producers 1..%d, members 1..%d, "
                "records 1..%u)\n",
                MAX_PROD, MAX_MEMBERS - 1, MAX_RECORDS);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (parse(argc, argv) != 0)
        return 2;
    ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT(ctl != MAP_FAILED);
    snprintf(cfg.name, sizeof(cfg.name), "rc-stress-group-%d", (int)getpid());
    rc_ring_config_t rc_cfg;
    rc_ring_config_init(&rc_cfg);
    rc_cfg.capacity = 256 * 1024;
    rc_cfg.heartbeat_timeout_ns = 200000000ull;
    rc_cfg.flags = RC_RING_F_REPLACE;
    char err[256];
    rc_ring_t *ring;
    if (rc_ring_create(cfg.name, &rc_cfg, &ring, err, sizeof(err)) != 0)
        RC_TEST_FAIL("create: %s", err);

    pid_t members[MAX_MEMBERS], producers[MAX_PROD], victim = -1;
    for (int i = 0; i < cfg.members; i++) {
        members[i] = fork();
        ASSERT_GE(members[i], 0);
        if (members[i] == 0)
            member(i, 0);
    }
    if (cfg.kill) {
        victim = fork();
        ASSERT_GE(victim, 0);
        if (victim == 0)
            member(MAX_MEMBERS, 1);
    }
    int want = cfg.members + (cfg.kill ? 1 : 0);
    uint64_t t0 = rc_now_ns();
    while (atomic_load(&ctl->joined) < want && rc_now_ns() - t0 < 10000000000ull)
        usleep(1000);
    ASSERT_EQ(atomic_load(&ctl->joined), want);
    for (int i = 0; i < cfg.producers; i++) {
        producers[i] = fork();
        ASSERT_GE(producers[i], 0);
        if (producers[i] == 0)
            producer(i);
    }
    atomic_store(&ctl->go, 1);
    uint64_t total = (uint64_t)cfg.producers * cfg.records;
    if (cfg.kill) {
        /* Kill the victim once it holds a partly read batch. */
        while (atomic_load(&ctl->victim_got) < 3 * VICTIM_BATCH + 5 &&
               rc_now_ns() - t0 < 30000000000ull)
            usleep(200);
        kill(victim, SIGKILL);
        waitpid(victim, NULL, 0);
        printf("killed member %d after it received %llu records\n", (int)victim,
               (unsigned long long)atomic_load(&ctl->victim_got));
    }
    int failed = 0;
    for (int i = 0; i < cfg.producers; i++) {
        int st;
        waitpid(producers[i], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "producer %d failed (status %d)\n", i, st);
            failed = 1;
        }
    }
    for (int i = 0; i < cfg.members; i++) {
        int st;
        waitpid(members[i], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "member %d failed (status %d): %s\n", i, st, ctl->failure[i]);
            failed = 1;
        }
    }
    double secs = (double)(rc_now_ns() - t0) / 1e9;
    ASSERT_EQ(failed, 0);
    ASSERT_U64_EQ(atomic_load(&ctl->corrupt), 0);
    uint64_t dups = 0, missing = 0, unexplained = 0, window = 0;
    for (int p = 0; p < cfg.producers; p++) {
        for (uint64_t n = 0; n < cfg.records; n++) {
            uint8_t c = atomic_load(&ctl->count[p][n]);
            if (c == 0) {
                if (missing++ < 5)
                    fprintf(stderr, "producer %d record %llu never delivered\n", p,
                            (unsigned long long)n);
            } else if (c > 1) {
                dups += c - 1u;
                /* A victim killed between announcing a claim and moving the cursor leaves a
                 * claim that is both handed over and still at the cursor: records it never
                 * saw, delivered twice (see docs/groups.md). */
                if (c > 2 || !cfg.kill)
                    unexplained++;
                else if (!atomic_load(&ctl->victim_saw[p][n]))
                    window++;
            }
        }
    }
    printf("stress_group: %d producers x %llu records, %d members%s: %.1f s, unique %llu, "
           "duplicates %llu, redelivered %llu\n",
           cfg.producers, (unsigned long long)cfg.records, cfg.members,
           cfg.kill ? " + 1 killed" : "", secs, (unsigned long long)atomic_load(&ctl->unique),
           (unsigned long long)dups, (unsigned long long)ctl->redelivered);
    ASSERT_U64_EQ(missing, 0);
    ASSERT_U64_EQ(atomic_load(&ctl->unique), total);
    ASSERT_U64_EQ(unexplained, 0);
    ASSERT_LE(dups, VICTIM_BATCH);
    if (window != 0)
        printf("stress_group: %llu duplicates from a claim the victim was making\n",
               (unsigned long long)window);
    if (!cfg.kill) {
        ASSERT_U64_EQ(ctl->redelivered, 0);
    } else {
        ASSERT_GE(dups, 1); /* the record the victim had read */
        ASSERT_GE(ctl->redelivered, 1);
    }
    rc_ring_close(ring);
    rc_ring_unlink(cfg.name);
    return 0;
}
