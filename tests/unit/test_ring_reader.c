/* Readers: lossless views, lossy lapping with exact loss counts, start positions, waiting, and
 * multi-threaded producers (for ThreadSanitizer). */
#include "shm/reader.h"
#include "shm/ring.h"
#include "core/clock.h"
#include "tests/test.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

static char name_buf[64];
static char err[256];

static const char *tname(const char *what)
{
    snprintf(name_buf, sizeof(name_buf), "rc-test-%d-%s", (int)getpid(), what);
    return name_buf;
}

static rc_ring_t *make(const char *what, uint64_t cap)
{
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    cfg.capacity = cap;
    cfg.flags = RC_RING_F_REPLACE;
    rc_ring_t *r = NULL;
    int rc = rc_ring_create(tname(what), &cfg, &r, err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("create %s: %s (%s)", what, rc_strerror(rc), err);
    rc_ring_unlink(tname(what)); /* the mapping stays; nothing left behind on failure */
    return r;
}

static rc_reader_t *reader_at(rc_ring_t *r, rc_reader_mode_t mode, rc_reader_start_t start,
                              uint64_t pos)
{
    rc_reader_opts_t o = {.mode = mode, .start = start, .position = pos, .name = "t"};
    rc_reader_t *rd = NULL;
    int rc = rc_reader_open(r, &o, &rd);
    if (rc != 0)
        RC_TEST_FAIL("reader open: %s", rc_strerror(rc));
    return rd;
}

static rc_reader_t *reader(rc_ring_t *r, rc_reader_mode_t mode, rc_reader_start_t start)
{
    return reader_at(r, mode, start, 0);
}

/* Record i: payload is i (8 bytes) followed by (len - 8) bytes of (i + k). */
static void put_n_as(rc_ring_t *r, uint64_t i, uint32_t len, int quiet)
{
    rc_ring_claim_t c;
    int rc = rc_ring_claim(r, len, RC_REC_TYPE_USER, 0, &c);
    if (rc != 0)
        RC_TEST_FAIL("claim %llu: %s", (unsigned long long)i, rc_strerror(rc));
    memcpy(c.data, &i, 8);
    for (uint32_t k = 8; k < len; k++)
        ((uint8_t *)c.data)[k] = (uint8_t)(i + k);
    ASSERT_EQ(quiet ? rc_ring_commit_quiet(&c) : rc_ring_commit(&c), 0);
}

static void put_n(rc_ring_t *r, uint64_t i, uint32_t len)
{
    put_n_as(r, i, len, 0);
}

static uint64_t check_n(const rc_ring_view_t *v)
{
    uint64_t i;
    ASSERT_GE(v->len, 8);
    memcpy(&i, v->data, 8);
    for (uint32_t k = 8; k < v->len; k++)
        if (((const uint8_t *)v->data)[k] != (uint8_t)(i + k))
            RC_TEST_FAIL("record %llu corrupt at byte %u", (unsigned long long)i, k);
    return i;
}

static void test_lossy_lapped(void)
{
    const uint64_t cap = 1 << 16;
    rc_ring_t *r = make("lapped", cap);
    rc_reader_t *lossy = reader(r, RC_READER_LOSSY, RC_START_OLDEST);
    rc_ring_view_t v;
    put_n(r, 0, 200);
    ASSERT_EQ(rc_reader_poll(lossy, &v), 0);
    ASSERT_U64_EQ(check_n(&v), 0);
    ASSERT(v.data != NULL);
    /* Three laps while the lossy reader sleeps; no lossless reader, producers never block. */
    uint64_t n = 1;
    for (; rc_ring_head(r) < 3 * cap + 1000; n++)
        put_n(r, n, 200 + (uint32_t)(n % 50));
    ASSERT_EQ(rc_reader_poll(lossy, &v), 0);
    uint64_t first = check_n(&v);
    ASSERT_U64_EQ(v.lost, first - 1); /* exactly the events it never saw */
    ASSERT_U64_EQ(v.seq, first);
    ASSERT_U64_EQ(rc_reader_lost(lossy), first - 1);
    /* The oldest intact record: everything from there on is still readable, in order, and it
     * is within one checkpoint segment of the oldest byte still in the ring. */
    ASSERT_GE(v.pos + cap, rc_ring_head(r));
    ASSERT_LE(v.pos, rc_ring_head(r) - cap + cap / 64 + 300);
    uint64_t last = first, seen = 2;
    while (rc_reader_poll(lossy, &v) == 0) {
        ASSERT_U64_EQ(check_n(&v), last + 1);
        ASSERT_EQ(v.lost, 0);
        last++;
        seen++;
    }
    ASSERT_U64_EQ(last, n - 1);
    ASSERT_U64_EQ(rc_reader_lost(lossy) + seen, n); /* seen + lost = written */

    /* Lapped so far that no hint survives in reach: it lands at the head with the right count. */
    for (uint64_t k = 0; k < 10; k++, n++)
        put_n(r, n, 200);
    for (uint64_t k = 0; k < 2000; k++, n++)
        put_n(r, n, 8);
    for (int k = 0; k < 5; k++)
        put_n(r, n++, 16000);
    while (rc_reader_poll(lossy, &v) == 0) {
        ASSERT_EQ(check_n(&v), v.seq);
        seen++;
    }
    ASSERT_U64_EQ(seen + rc_reader_lost(lossy), n);
    rc_reader_close(lossy);
    rc_ring_close(r);
}

static void test_start_positions(void)
{
    const uint64_t cap = 1 << 16;
    rc_ring_t *r = make("start", cap);
    for (uint64_t i = 0; i < 10; i++)
        put_n(r, i, 100);
    rc_ring_view_t v;
    /* Oldest on a young ring: position 0. */
    rc_reader_t *a = reader(r, RC_READER_LOSSLESS, RC_START_OLDEST);
    ASSERT_EQ(rc_reader_poll(a, &v), 0);
    ASSERT_U64_EQ(check_n(&v), 0);
    uint64_t saved = 0;
    for (int i = 1; i < 4; i++) {
        ASSERT_EQ(rc_reader_poll(a, &v), 0);
        saved = v.next;
    }
    ASSERT_U64_EQ(saved, rc_reader_position(a));
    /* Latest: only what comes after joining. */
    rc_reader_t *l = reader(r, RC_READER_LOSSLESS, RC_START_LATEST);
    rc_reader_t *ly = reader(r, RC_READER_LOSSY, RC_START_LATEST);
    ASSERT_EQ(rc_reader_poll(l, &v), RC_ERING_EMPTY);
    ASSERT_EQ(rc_reader_poll(ly, &v), RC_ERING_EMPTY);
    put_n(r, 10, 100);
    ASSERT_EQ(rc_reader_poll(l, &v), 0);
    ASSERT_U64_EQ(check_n(&v), 10);
    ASSERT_EQ(rc_reader_poll(ly, &v), 0);
    ASSERT_U64_EQ(check_n(&v), 10);
    ASSERT_EQ(v.lost, 0);
    /* A saved position resumes exactly there. */
    rc_reader_t *s = reader_at(r, RC_READER_LOSSLESS, RC_START_AT, saved);
    ASSERT_EQ(rc_reader_poll(s, &v), 0);
    ASSERT_U64_EQ(check_n(&v), 4);
    rc_reader_t *sl = reader_at(r, RC_READER_LOSSY, RC_START_AT, saved);
    ASSERT_EQ(rc_reader_poll(sl, &v), 0);
    ASSERT_U64_EQ(check_n(&v), 4);
    /* Lossless oldest joins at the slowest lossless reader's published position: a is at
     * record 3 and publishes lazily, so at or before it. */
    rc_reader_t *o2 = reader(r, RC_READER_LOSSLESS, RC_START_OLDEST);
    ASSERT_EQ(rc_reader_poll(o2, &v), 0);
    ASSERT_LE(check_n(&v), 3);
    /* Bad saved positions: inside a record, unaligned, beyond the head. */
    rc_reader_opts_t bad = {.mode = RC_READER_LOSSLESS, .start = RC_START_AT};
    rc_reader_t *x = NULL;
    bad.position = saved + 8;
    ASSERT_EQ(rc_reader_open(r, &bad, &x), RC_ERING_BAD_POS);
    bad.position = saved + 3;
    ASSERT_EQ(rc_reader_open(r, &bad, &x), RC_ERING_BAD_POS);
    bad.position = rc_ring_head(r) + 128;
    ASSERT_EQ(rc_reader_open(r, &bad, &x), RC_ERING_BAD_POS);
    bad.mode = RC_READER_LOSSY;
    ASSERT_EQ(rc_reader_open(r, &bad, &x), RC_ERING_BAD_POS);
    bad.mode = 7;
    ASSERT_EQ(rc_reader_open(r, &bad, &x), -EINVAL);
    ASSERT(x == NULL);
    /* The failed opens gave their slots back. */
    rc_ring_stats_t st;
    rc_ring_stats(r, &st);
    ASSERT_EQ(st.readers, 6);
    rc_reader_close(a);
    rc_reader_close(l);
    rc_reader_close(ly);
    rc_reader_close(s);
    rc_reader_close(sl);
    rc_reader_close(o2);

    /* Overwritten saved position: refused for lossless. Oldest for a lossless reader on a
     * lapped ring without other lossless readers: a retained record start. */
    uint64_t i = 11;
    while (rc_ring_head(r) < 3 * cap)
        put_n(r, i++, 100);
    bad.mode = RC_READER_LOSSLESS;
    bad.position = saved;
    ASSERT_EQ(rc_reader_open(r, &bad, &x), RC_ERING_BAD_POS);
    rc_reader_t *old = reader(r, RC_READER_LOSSLESS, RC_START_OLDEST);
    ASSERT_EQ(rc_reader_poll(old, &v), 0);
    uint64_t k = check_n(&v);
    ASSERT_GE(v.pos + cap, rc_ring_head(r));
    while (rc_reader_poll(old, &v) == 0)
        ASSERT_U64_EQ(check_n(&v), ++k);
    ASSERT_U64_EQ(k, i - 1);
    /* Now it gates: producers can fill one capacity past it, not more. */
    int rc = 0;
    uint64_t before = rc_ring_head(r);
    while ((rc = rc_ring_claim(r, 100, RC_REC_TYPE_USER, 0, &(rc_ring_claim_t){0})) == 0) {
    }
    ASSERT_EQ(rc, RC_ERING_FULL);
    ASSERT_LE(rc_ring_head(r) - before, cap);
    rc_reader_close(old);
    rc_ring_close(r);
}

static void test_slots(void)
{
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    cfg.capacity = 1 << 16;
    cfg.reader_slots = 3;
    cfg.flags = RC_RING_F_REPLACE;
    rc_ring_t *r = NULL;
    ASSERT_EQ(rc_ring_create(tname("slots"), &cfg, &r, err, sizeof(err)), 0);
    rc_ring_unlink(tname("slots"));
    rc_reader_t *rd[3];
    for (int i = 0; i < 3; i++)
        rd[i] = reader(r, i == 1 ? RC_READER_LOSSY : RC_READER_LOSSLESS, RC_START_LATEST);
    rc_reader_opts_t o = {.mode = RC_READER_LOSSY};
    rc_reader_t *x = NULL;
    ASSERT_EQ(rc_reader_open(r, &o, &x), RC_ERING_NO_SLOT); /* all owners alive */
    ASSERT_EQ(rc_reader_slot(rd[1]), 1);
    rc_reader_close(rd[1]);
    x = reader(r, RC_READER_LOSSY, RC_START_OLDEST);
    ASSERT_EQ(rc_reader_slot(x), 1);
    rc_reader_close(x);
    rc_reader_close(rd[0]);
    rc_reader_close(rd[2]);
    rc_reader_close(NULL);
    rc_ring_close(r);
}

typedef struct {
    rc_ring_t *ring;
    int delay_ms;
    uint64_t count;
} waker_t;

static void *waker(void *arg)
{
    waker_t *w = arg;
    usleep((useconds_t)w->delay_ms * 1000);
    for (uint64_t i = 0; i < w->count; i++)
        put_n(w->ring, i, 64);
    return NULL;
}

static void test_wait(void)
{
    rc_ring_t *r = make("wait", 1 << 16);
    rc_reader_t *rd = reader(r, RC_READER_LOSSLESS, RC_START_LATEST);
    rc_ring_view_t v;
    /* Timeout: returns empty after about the time asked. */
    uint64_t t0 = rc_now_ns();
    ASSERT_EQ(rc_reader_wait(rd, &v, 30 * 1000000ll), RC_ERING_EMPTY);
    uint64_t took = rc_now_ns() - t0;
    ASSERT_GE(took, 30 * 1000000ull);
    ASSERT_LT(took, 2000 * 1000000ull);
    ASSERT_EQ(rc_reader_wait(rd, &v, 0), RC_ERING_EMPTY);
    /* A sleeping reader is woken by a commit well before its timeout. */
    waker_t w = {.ring = r, .delay_ms = 50, .count = 1};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, waker, &w), 0);
    t0 = rc_now_ns();
    ASSERT_EQ(rc_reader_wait(rd, &v, 5000 * 1000000ll), 0);
    took = rc_now_ns() - t0;
    ASSERT_U64_EQ(check_n(&v), 0);
    ASSERT_LT(took, 2000 * 1000000ull);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    rc_ring_stats_t st;
    rc_ring_stats(r, &st);
    ASSERT_EQ(st.sleepers, 0);
    /* Lossy readers wait the same way. */
    rc_reader_t *ly = reader(r, RC_READER_LOSSY, RC_START_LATEST);
    w.count = 3;
    ASSERT_EQ(pthread_create(&th, NULL, waker, &w), 0);
    for (uint64_t i = 0; i < 3; i++) {
        ASSERT_EQ(rc_reader_wait(ly, &v, -1), 0);
        ASSERT_U64_EQ(check_n(&v), i);
    }
    ASSERT_EQ(pthread_join(th, NULL), 0);
    rc_reader_close(ly);
    rc_reader_close(rd);
    rc_ring_close(r);
}

typedef struct {
    rc_reader_t *rd;
    int rc;
    uint64_t n;
} sleeper_t;

static void *sleeper(void *arg)
{
    sleeper_t *sl = arg;
    rc_ring_view_t v;
    sl->rc = rc_reader_wait(sl->rd, &v, 5000 * 1000000ll);
    if (sl->rc == 0)
        sl->n = check_n(&v);
    return NULL;
}

/* rc_ring_commit_quiet publishes without waking: a reader that looks sees the record at once,
 * one asleep stays asleep (the sleepers flag, which only a waking producer clears, stays up)
 * until rc_ring_wake_sleepers, which wakes it. */
static void test_quiet_commit(void)
{
    rc_ring_t *r = make("quiet", 1 << 16);
    rc_reader_t *rd = reader(r, RC_READER_LOSSLESS, RC_START_LATEST);
    rc_ring_view_t v;
    put_n_as(r, 0, 64, 1);
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_U64_EQ(check_n(&v), 0);
    /* Nobody asleep: the wake changes nothing. */
    rc_ring_wake_sleepers(r);
    rc_ring_stats_t st;
    rc_ring_stats(r, &st);
    ASSERT_EQ(st.sleepers, 0);

    sleeper_t sl = {.rd = rd, .rc = 1};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, sleeper, &sl), 0);
    for (int i = 0; i < 2000; i++) {
        rc_ring_stats(r, &st);
        if (st.sleepers != 0)
            break;
        usleep(1000);
    }
    ASSERT_EQ(st.sleepers, 1);
    put_n_as(r, 1, 64, 1);
    rc_ring_stats(r, &st);
    ASSERT_EQ(st.sleepers, 1); /* no wake went out */
    rc_ring_wake_sleepers(r);
    rc_ring_stats(r, &st);
    ASSERT_EQ(st.sleepers, 0);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    ASSERT_EQ(sl.rc, 0);
    ASSERT_U64_EQ(sl.n, 1);
    rc_reader_close(rd);
    rc_ring_close(r);
}

/* linger_ns: a woken reader waits that long before it reads, so it returns no earlier than
 * commit + linger; over 100 ms is refused. */
static void test_linger(void)
{
    rc_ring_t *r = make("linger", 1 << 16);
    rc_reader_opts_t o = {.mode = RC_READER_LOSSLESS,
                          .start = RC_START_LATEST,
                          .spin = 1,
                          .linger_ns = 100000001u};
    rc_reader_t *rd = NULL;
    ASSERT_EQ(rc_reader_open(r, &o, &rd), -EINVAL);
    o.linger_ns = 20 * 1000000u;
    ASSERT_EQ(rc_reader_open(r, &o, &rd), 0);
    waker_t w = {.ring = r, .delay_ms = 30, .count = 4};
    pthread_t th;
    uint64_t t0 = rc_now_ns();
    ASSERT_EQ(pthread_create(&th, NULL, waker, &w), 0);
    rc_ring_view_t v;
    ASSERT_EQ(rc_reader_wait(rd, &v, 5000 * 1000000ll), 0);
    ASSERT_GE(rc_now_ns() - t0, 50 * 1000000ull); /* 30 ms before the commit + 20 ms linger */
    ASSERT_U64_EQ(check_n(&v), 0);
    for (uint64_t i = 1; i < 4; i++) {
        ASSERT_EQ(rc_reader_wait(rd, &v, 5000 * 1000000ll), 0);
        ASSERT_U64_EQ(check_n(&v), i);
    }
    ASSERT_EQ(pthread_join(th, NULL), 0);
    rc_reader_close(rd);
    rc_ring_close(r);
}

/* Threads: P producers, a lossless reader checking per-producer order and a lossy reader
 * checking that it never sees a torn record. Small ring so everything wraps many times. */
#define MT_PRODUCERS 4
typedef struct {
    rc_ring_t *ring;
    uint32_t id;
    uint64_t count;
    uint64_t full;
} mt_prod_t;

static void *mt_producer(void *arg)
{
    mt_prod_t *p = arg;
    for (uint64_t i = 0; i < p->count;) {
        rc_ring_claim_t c;
        uint32_t len = 16 + (uint32_t)((i * 31 + p->id) % 200);
        int rc = rc_ring_claim(p->ring, len, RC_REC_TYPE_USER + p->id, 0, &c);
        if (rc == RC_ERING_FULL) {
            p->full++;
            sched_yield();
            continue;
        }
        ASSERT_EQ(rc, 0);
        uint64_t tag = (uint64_t)p->id << 48 | i;
        memcpy(c.data, &tag, 8);
        for (uint32_t k = 8; k < len; k++)
            ((uint8_t *)c.data)[k] = (uint8_t)(tag * 7 + k);
        ASSERT_EQ(rc_ring_commit(&c), 0);
        i++;
    }
    return NULL;
}

typedef struct {
    rc_ring_t *ring;
    rc_reader_mode_t mode;
    uint64_t total;
    uint64_t seen;
    uint64_t lost;
} mt_reader_t;

static void *mt_reader(void *arg)
{
    mt_reader_t *m = arg;
    rc_reader_t *rd = reader(m->ring, m->mode, RC_START_OLDEST);
    uint64_t next[MT_PRODUCERS] = {0};
    rc_ring_view_t v;
    uint64_t deadline = rc_now_ns() + 60ull * 1000000000ull;
    while (m->seen + m->lost < m->total && rc_now_ns() < deadline) {
        int rc = rc_reader_wait(rd, &v, 100 * 1000000ll);
        if (rc == RC_ERING_EMPTY) {
            m->lost = rc_reader_lost(rd);
            continue;
        }
        ASSERT_EQ(rc, 0);
        uint64_t tag;
        memcpy(&tag, v.data, 8);
        uint32_t id = (uint32_t)(tag >> 48);
        uint64_t i = tag & 0xffffffffffffull;
        ASSERT_LT(id, MT_PRODUCERS);
        ASSERT_EQ(v.type, RC_REC_TYPE_USER + id);
        for (uint32_t k = 8; k < v.len; k++)
            if (((const uint8_t *)v.data)[k] != (uint8_t)(tag * 7 + k))
                RC_TEST_FAIL("torn record from producer %u #%llu", id, (unsigned long long)i);
        if (m->mode == RC_READER_LOSSLESS)
            ASSERT_U64_EQ(i, next[id]);
        else
            ASSERT_GE(i, next[id]);
        next[id] = i + 1;
        m->seen++;
        m->lost += v.lost;
        ASSERT_LE(m->lost, rc_reader_lost(rd));
        /* Caught up after a lap: the last loss is in the total before the next view. */
        m->lost = rc_reader_lost(rd);
    }
    rc_reader_close(rd);
    return NULL;
}

static void test_threads(void)
{
    rc_ring_t *r = make("mt", 1 << 16);
    uint64_t per = 20000;
    char *env = getenv("RC_TEST_SCALE");
    if (env != NULL && atoi(env) > 0)
        per *= (uint64_t)atoi(env);
    mt_reader_t rd[2] = {{.ring = r, .mode = RC_READER_LOSSLESS, .total = per * MT_PRODUCERS},
                         {.ring = r, .mode = RC_READER_LOSSY, .total = per * MT_PRODUCERS}};
    /* Readers join before producers start, so the lossless one sees everything. */
    pthread_t rt[2], pt[MT_PRODUCERS];
    ASSERT_EQ(pthread_create(&rt[0], NULL, mt_reader, &rd[0]), 0);
    ASSERT_EQ(pthread_create(&rt[1], NULL, mt_reader, &rd[1]), 0);
    while (1) {
        rc_ring_stats_t st;
        rc_ring_stats(r, &st);
        if (st.readers == 2)
            break;
        usleep(1000);
    }
    mt_prod_t pr[MT_PRODUCERS];
    for (uint32_t i = 0; i < MT_PRODUCERS; i++) {
        pr[i] = (mt_prod_t){.ring = r, .id = i, .count = per};
        ASSERT_EQ(pthread_create(&pt[i], NULL, mt_producer, &pr[i]), 0);
    }
    for (int i = 0; i < MT_PRODUCERS; i++)
        ASSERT_EQ(pthread_join(pt[i], NULL), 0);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(pthread_join(rt[i], NULL), 0);
    ASSERT_U64_EQ(rd[0].seen, per * MT_PRODUCERS);
    ASSERT_U64_EQ(rd[0].lost, 0);
    ASSERT_U64_EQ(rd[1].seen + rd[1].lost, per * MT_PRODUCERS);
    rc_ring_stats_t st;
    rc_ring_stats(r, &st);
    ASSERT_U64_EQ(st.head_seq, per * MT_PRODUCERS);
    fprintf(stderr, "threads: %llu records, lossy lost %llu, full %llu\n",
            (unsigned long long)(per * MT_PRODUCERS), (unsigned long long)rd[1].lost,
            (unsigned long long)st.full);
    rc_ring_close(r);
}

static void *one_claim(void *arg)
{
    rc_ring_t *r = arg;
    rc_ring_claim_t c;
    int rc = rc_ring_claim(r, 8, RC_REC_TYPE_USER, 0, &c);
    if (rc != 0)
        RC_TEST_FAIL("claim from a short-lived thread: %s", rc_strerror(rc));
    ASSERT_EQ(rc_ring_commit(&c), 0);
    return NULL;
}

/* Every producing thread takes a producer slot (128 per ring). Slots of threads that exited
 * are taken over, so thread churn does not exhaust them. */
static void test_producer_slots(void)
{
    rc_ring_t *r = make("pslots", 1 << 16);
    for (int i = 0; i < 300; i++) {
        pthread_t th;
        ASSERT_EQ(pthread_create(&th, NULL, one_claim, r), 0);
        ASSERT_EQ(pthread_join(th, NULL), 0);
    }
    rc_ring_stats_t st;
    rc_ring_stats(r, &st);
    ASSERT_U64_EQ(st.head_seq, 300);
    rc_ring_close(r);
}

int main(void)
{
    test_lossy_lapped();
    test_start_positions();
    test_slots();
    test_wait();
    test_quiet_commit();
    test_linger();
    test_threads();
    test_producer_slots();
    printf("test_ring_reader: ok\n");
    return 0;
}
