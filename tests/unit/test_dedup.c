/* The ingress's deduplication table (net/dedup.c): a key is found within its window and not
 * after it; keys that differ only in where source ends and id begins are different keys; a
 * full table drops its oldest keys first and counts them; a long random run against a plain
 * reference model (which keys are held after each step) finds every held key and no other,
 * so the index's backward-shift deletion never loses one; the duplicate's ticket comes back;
 * several threads at once lose nothing. */
#include "net/dedup.h"
#include "tests/test.h"

#include <errno.h>
#include <pthread.h>

#define SEC 1000000000ll

static rc_str_t S(const char *s)
{
    return (rc_str_t){s, strlen(s)};
}

static void test_window(void)
{
    rc_dedup_t *d = NULL;
    ASSERT_EQ(rc_dedup_open(5 * SEC, 0, &d), 0);
    rc_dedup_key_t k = rc_dedup_key(d, S("/src"), S("1"));
    int64_t t0 = 1000 * SEC;
    ASSERT_EQ(rc_dedup_seen(d, k, t0, NULL), 0);
    rc_dedup_remember(d, k, t0, 42);
    uint64_t ticket = 0;
    ASSERT_EQ(rc_dedup_seen(d, k, t0 + 4 * SEC, &ticket), 1);
    ASSERT_U64_EQ(ticket, 42);
    ASSERT_EQ(rc_dedup_seen(d, rc_dedup_key(d, S("/src"), S("2")), t0 + SEC, NULL), 0);
    ASSERT_EQ(rc_dedup_seen(d, rc_dedup_key(d, S("/other"), S("1")), t0 + SEC, NULL), 0);
    /* Where source ends and id begins is part of the key. */
    rc_dedup_remember(d, rc_dedup_key(d, S("ab"), S("c")), t0, 0);
    ASSERT_EQ(rc_dedup_seen(d, rc_dedup_key(d, S("a"), S("bc")), t0, NULL), 0);
    ASSERT_EQ(rc_dedup_seen(d, rc_dedup_key(d, S("abc"), S("")), t0, NULL), 0);
    ASSERT_EQ(rc_dedup_seen(d, rc_dedup_key(d, S("ab"), S("c")), t0, NULL), 1);
    /* Remembering again keeps the first arrival: the window counts from it. */
    rc_dedup_remember(d, k, t0 + 3 * SEC, 43);
    ASSERT_EQ(rc_dedup_seen(d, k, t0 + 5 * SEC, &ticket), 1);
    ASSERT_U64_EQ(ticket, 42);
    ASSERT_EQ(rc_dedup_seen(d, k, t0 + 5 * SEC + 1, NULL), 0);
    rc_dedup_stats_t st;
    rc_dedup_stats(d, &st);
    ASSERT_U64_EQ(st.duplicates, 3);
    ASSERT_U64_EQ(st.keys, 0);
    ASSERT_U64_EQ(st.evicted, 0);
    ASSERT_U64_EQ(st.capacity, 5 * RC_DEDUP_DEFAULT_RATE);
    ASSERT_U64_EQ(st.window_ns, 5 * SEC);
    rc_dedup_close(d);
    /* Capacity defaults stay within their bounds; bad arguments are refused. */
    ASSERT_EQ(rc_dedup_open(SEC / 2, 0, &d), 0);
    rc_dedup_stats(d, &st);
    ASSERT_U64_EQ(st.capacity, RC_DEDUP_MIN_KEYS);
    rc_dedup_close(d);
    ASSERT_EQ(rc_dedup_open(0, 10, &d), -EINVAL);
    ASSERT_EQ(rc_dedup_open(SEC, 1ull << 40, &d), -EINVAL);
    rc_dedup_close(NULL);
}

static void test_full(void)
{
    rc_dedup_t *d = NULL;
    ASSERT_EQ(rc_dedup_open(3600 * SEC, 100, &d), 0);
    char id[32];
    for (int i = 0; i < 250; i++) {
        snprintf(id, sizeof(id), "%d", i);
        rc_dedup_remember(d, rc_dedup_key(d, S("/s"), S(id)), SEC + i, 0);
    }
    rc_dedup_stats_t st;
    rc_dedup_stats(d, &st);
    ASSERT_U64_EQ(st.keys, 100);
    ASSERT_U64_EQ(st.evicted, 150);
    ASSERT_EQ(st.oldest_ns, SEC + 150);
    for (int i = 0; i < 250; i++) {
        snprintf(id, sizeof(id), "%d", i);
        ASSERT_EQ(rc_dedup_seen(d, rc_dedup_key(d, S("/s"), S(id)), SEC + 300, NULL), i >= 150);
    }
    rc_dedup_close(d);
}

/* Random inserts and time steps against a model: key i is held iff it was remembered, is one
 * of the last `cap` remembered, and its arrival is within the window. */
static void test_model(void)
{
    enum { N = 200000, CAP = 4096 };
    static int64_t when[N];
    rc_dedup_t *d = NULL;
    ASSERT_EQ(rc_dedup_open(1000, CAP, &d), 0); /* a window of 1000 ns: time is the step */
    uint64_t rnd = 88172645463325252ull;
    int64_t now = 1;
    int next = 0;
    char id[32];
    for (int step = 0; step < N; step++) {
        rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
        /* Phases where the window holds about 1000 keys, and phases where about 8000 arrive
         * within it and room (CAP) is what drops them. */
        now += (step / 20000) % 2 ? (int64_t)(rnd % 3) : (int64_t)(rnd % 8 == 0);
        snprintf(id, sizeof(id), "k%d", next);
        when[next] = now;
        rc_dedup_remember(d, rc_dedup_key(d, S("/m"), S(id)), now, (uint64_t)next);
        next++;
        if (step % 97 != 0)
            continue;
        /* Probe a few live, expired and never-seen keys. */
        for (int q = 0; q < 8; q++) {
            rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
            int i = (int)(rnd % (uint64_t)(next + 50));
            snprintf(id, sizeof(id), "k%d", i);
            int want = i < next && next - i <= CAP && when[i] >= now - 1000;
            uint64_t ticket = UINT64_MAX;
            int got = rc_dedup_seen(d, rc_dedup_key(d, S("/m"), S(id)), now, &ticket);
            if (got != want)
                RC_TEST_FAIL("key %d (of %d, arrived %lld, now %lld): seen %d, want %d", i, next,
                             (long long)(i < next ? when[i] : -1), (long long)now, got, want);
            if (got)
                ASSERT_U64_EQ(ticket, (uint64_t)i);
        }
    }
    rc_dedup_stats_t st;
    rc_dedup_stats(d, &st);
    ASSERT(st.evicted > 10000); /* both ways out were taken */
    rc_dedup_close(d);
}

typedef struct {
    rc_dedup_t *d;
    int t;
} worker_arg_t;

static void *worker(void *p)
{
    worker_arg_t *a = p;
    char id[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof(id), "%d-%d", a->t, i);
        rc_dedup_key_t k = rc_dedup_key(a->d, S("/t"), S(id));
        if (rc_dedup_seen(a->d, k, SEC, NULL))
            return (void *)1;
        rc_dedup_remember(a->d, k, SEC, 0);
        if (!rc_dedup_seen(a->d, k, SEC, NULL))
            return (void *)2;
    }
    return NULL;
}

static void test_threads(void)
{
    rc_dedup_t *d = NULL;
    ASSERT_EQ(rc_dedup_open(60 * SEC, 100000, &d), 0);
    pthread_t th[4];
    worker_arg_t args[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (worker_arg_t){d, t};
        ASSERT_EQ(pthread_create(&th[t], NULL, worker, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        void *r = NULL;
        pthread_join(th[t], &r);
        ASSERT(r == NULL);
    }
    rc_dedup_stats_t st;
    rc_dedup_stats(d, &st);
    ASSERT_U64_EQ(st.keys, 80000);
    ASSERT_U64_EQ(st.duplicates, 80000);
    rc_dedup_close(d);
}

int main(void)
{
    test_window();
    test_full();
    test_model();
    test_threads();
    printf("test_dedup: ok\n");
    return 0;
}
