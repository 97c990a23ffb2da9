/* Waking a sleeping delivery worker (issue 11, 9c), piece by piece: the ring's wait primitives
 * for a sleeper that is not the reader's owner (rc_reader_wait_past, rc_reader_wake,
 * rc_reader_prepare_sleep), the storage watch (a thread that sleeps on the store and calls
 * back), and the HTTP client's wake-ups (rc_http_client_wake from another thread, and a futex
 * wait in its own io_uring wait, rc_http_client_wake_on_futex), on both back ends. */
#include "core/clock.h"
#include "core/errors.h"
#include "net/http/http_client.h"
#include "net/storage/storage.h"
#include "shm/reader.h"
#include "shm/ring.h"
#include "shm/ring_internal.h"
#include "tests/test.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS (1000000ll)

static char name[64];
static char err[256];

static int64_t now(void)
{
    return (int64_t)rc_now_ns();
}

/* The futex word as its writers treat it. */
static uint32_t word_now(const uint32_t *word)
{
    return atomic_load((_Atomic uint32_t *)word);
}

static void sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

static void put(rc_ring_t *r)
{
    rc_ring_claim_t c;
    ASSERT_EQ(rc_ring_claim(r, 8, RC_REC_TYPE_USER, 0, &c), 0);
    memset(c.data, 7, 8);
    ASSERT_EQ(rc_ring_commit(&c), 0);
}

/* ---- a thread that does one thing later ------------------------------------------------------ */

typedef struct {
    int delay_ms;
    void (*fn)(void *);
    void *arg;
    pthread_t thread;
} later_t;

static void *later_main(void *p)
{
    later_t *l = p;
    sleep_ms(l->delay_ms);
    l->fn(l->arg);
    return NULL;
}

static void later(later_t *l, int delay_ms, void (*fn)(void *), void *arg)
{
    l->delay_ms = delay_ms;
    l->fn = fn;
    l->arg = arg;
    ASSERT_EQ(pthread_create(&l->thread, NULL, later_main, l), 0);
}

static void join(later_t *l)
{
    ASSERT_EQ(pthread_join(l->thread, NULL), 0);
}

static void put_cb(void *ring)
{
    put(ring);
}

static void reader_wake_cb(void *rd)
{
    rc_reader_wake(rd);
}

/* ---- shm ----------------------------------------------------------------------------------- */

static rc_ring_t *make_ring(void)
{
    snprintf(name, sizeof(name), "rc-test-wake-%d", (int)getpid());
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    cfg.capacity = 1 << 16;
    cfg.flags = RC_RING_F_REPLACE;
    cfg.pad_timeout_ns = 100 * MS;
    rc_ring_t *r = NULL;
    int rc = rc_ring_create(name, &cfg, &r, err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("create: %s (%s)", rc_strerror(rc), err);
    rc_ring_unlink(name);
    return r;
}

static void test_wait_past(void)
{
    rc_ring_t *ring = make_ring();
    rc_reader_opts_t o = {.mode = RC_READER_LOSSLESS, .start = RC_START_LATEST, .name = "w"};
    rc_reader_t *rd = NULL;
    ASSERT_EQ(rc_reader_open(ring, &o, &rd), 0);
    rc_ring_view_t v;
    ASSERT_EQ(rc_reader_poll(rd, &v), RC_ERING_EMPTY);
    uint64_t pos = rc_reader_position(rd);

    /* Nothing there: the timeout. */
    int64_t t0 = now();
    ASSERT_EQ(rc_reader_wait_past(rd, pos, 30 * MS), RC_ERING_EMPTY);
    ASSERT_GE(now() - t0, 25 * MS);

    /* A commit from another thread ends the sleep. */
    later_t l;
    later(&l, 50, put_cb, ring);
    t0 = now();
    ASSERT_EQ(rc_reader_wait_past(rd, pos, 5000 * MS), 0);
    ASSERT_LT(now() - t0, 2000 * MS);
    join(&l);
    /* Still readable until the owner polls past it, and then not any more. */
    ASSERT_EQ(rc_reader_wait_past(rd, pos, 0), 0);
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_EQ(rc_reader_poll(rd, &v), RC_ERING_EMPTY);
    pos = rc_reader_position(rd);
    ASSERT_EQ(rc_reader_wait_past(rd, pos, 0), RC_ERING_EMPTY);

    /* rc_reader_wake ends it without an event: the caller looks again. */
    later(&l, 50, reader_wake_cb, rd);
    t0 = now();
    ASSERT_EQ(rc_reader_wait_past(rd, pos, 5000 * MS), RC_ERING_EMPTY);
    ASSERT_LT(now() - t0, 2000 * MS);
    join(&l);

    /* A claim whose producer died blocks the position: the waiter pads over it once the pad
     * timeout passed, and then the next record is readable there. */
    pid_t gone = fork();
    if (gone == 0)
        _exit(0);
    ASSERT_EQ(waitpid(gone, NULL, 0), gone);
    rc_ring_claim_t c;
    ASSERT_EQ(rc_ring_claim(ring, 8, RC_REC_TYPE_USER, 0, &c), 0);
    rc__rec_hdr_t *rec = (rc__rec_hdr_t *)((uint8_t *)c.data - RC__REC_HDR);
    uint64_t w = atomic_load(&rec->word);
    atomic_store(&rec->word, RC__PENDING(RC__W_LEN(w), (uint32_t)gone));
    put(ring);
    t0 = now();
    ASSERT_EQ(rc_reader_wait_past(rd, pos, 3000 * MS), 0);
    ASSERT_LT(now() - t0, 2000 * MS);
    ASSERT_EQ(rc_reader_poll(rd, &v), 0); /* the record after the padding */
    rc_ring_stats_t st;
    rc_ring_stats(ring, &st);
    ASSERT_EQ(st.swept, 1);

    /* prepare_sleep: a word and its value while nothing is there; a commit changes the word
     * (and a futex sleep on it ends); 1 once something is readable. */
    ASSERT_EQ(rc_reader_poll(rd, &v), RC_ERING_EMPTY);
    const uint32_t *word = NULL;
    uint32_t val = 0;
    ASSERT_EQ(rc_reader_prepare_sleep(rd, &word, &val), 0);
    ASSERT(word != NULL);
    later(&l, 50, put_cb, ring);
    struct timespec ts = {2, 0};
    t0 = now();
    while (word_now(word) == val && now() - t0 < 2000 * MS)
        syscall(SYS_futex, word, FUTEX_WAIT, val, &ts, NULL, 0);
    ASSERT_NE(word_now(word), val);
    join(&l);
    ASSERT_EQ(rc_reader_prepare_sleep(rd, &word, &val), 1);
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_EQ(rc_reader_prepare_sleep(rd, &word, &val), 0);

    rc_reader_close(rd);
    rc_ring_close(ring);
}

/* ---- the storage watch ------------------------------------------------------------------------ */

typedef struct {
    _Atomic int fired;
} fired_t;

static void on_fire(void *arg)
{
    atomic_fetch_add(&((fired_t *)arg)->fired, 1);
}

static int wait_fired(fired_t *f, int n, int ms)
{
    int64_t end = now() + ms * MS;
    while (atomic_load(&f->fired) < n && now() < end)
        sleep_ms(1);
    return atomic_load(&f->fired);
}

static void append(rc_storage_t *s)
{
    rc_storage_rec_t rec = {.len = 8};
    rc_storage_claim_t c;
    /* A claim zeroes the commit flags, whatever the struct held: a stray QUIET bit would make
     * the commit leave sleepers asleep. */
    memset(&c, 0xff, sizeof(c));
    ASSERT_EQ(rc_storage_claim(s, &rec, 1, &c), 0);
    ASSERT_EQ(c.flags, 0);
    memset(rec.data, 1, 8);
    ASSERT_EQ(rc_storage_commit(s, &c), 0);
}

static void test_storage_watch(void)
{
    char prefix[32], ring_name[96];
    snprintf(prefix, sizeof(prefix), "rcwake%d", (int)getpid());
    rc_storage_config_t cfg = {.kind = RC_STORAGE_SHM,
                               .ns = "default",
                               .broker = "b",
                               .prefix = prefix,
                               .capacity = 1 << 16,
                               .readers = 8};
    rc_storage_t *s = NULL;
    int rc = rc_storage_open(&cfg, &s, err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("storage: %s (%s)", rc_strerror(rc), err);
    snprintf(ring_name, sizeof(ring_name), "%s.default.b", prefix);
    rc_ring_unlink(ring_name);
    char ix[128];
    snprintf(ix, sizeof(ix), "/%s.timeindex", ring_name);
    shm_unlink(ix); /* the time index the store made beside it (mapped: it lives on) */
    rc_storage_reader_opts_t ro = {.name = "feed", .start = RC_STORAGE_FROM_LATEST};
    rc_storage_reader_t *r = NULL;
    ASSERT_EQ(rc_storage_reader_open(s, &ro, &r), 0);
    rc_storage_view_t v;
    ASSERT_EQ(rc_storage_poll(r, &v), RC_ERING_EMPTY);

    fired_t f = {0};
    rc_storage_watch_t *w = NULL;
    ASSERT_EQ(rc_storage_watch_start(r, on_fire, &f, &w), 0);
    /* Not armed: an event does not fire it. */
    append(s);
    ASSERT_EQ(wait_fired(&f, 1, 100), 0);
    /* Armed where the event is: fires at once, once. */
    rc_storage_watch_arm(w);
    ASSERT_EQ(wait_fired(&f, 1, 2000), 1);
    ASSERT_EQ(wait_fired(&f, 2, 100), 1);
    /* Read it, arm at the new position: fires only when the next event comes. */
    ASSERT_EQ(rc_storage_poll(r, &v), 0);
    ASSERT_EQ(rc_storage_poll(r, &v), RC_ERING_EMPTY);
    rc_storage_watch_arm(w);
    ASSERT_EQ(wait_fired(&f, 2, 100), 1);
    append(s);
    ASSERT_EQ(wait_fired(&f, 2, 2000), 2);
    /* Armed twice at one position: still one call. */
    ASSERT_EQ(rc_storage_poll(r, &v), 0);
    ASSERT_EQ(rc_storage_poll(r, &v), RC_ERING_EMPTY);
    rc_storage_watch_arm(w);
    rc_storage_watch_arm(w);
    append(s);
    ASSERT_EQ(wait_fired(&f, 3, 2000), 3);
    ASSERT_EQ(wait_fired(&f, 4, 100), 3);
    /* Stopping while it sleeps in the store is quick. */
    ASSERT_EQ(rc_storage_poll(r, &v), 0);
    ASSERT_EQ(rc_storage_poll(r, &v), RC_ERING_EMPTY);
    rc_storage_watch_arm(w);
    sleep_ms(20);
    int64_t t0 = now();
    rc_storage_watch_stop(w);
    ASSERT_LT(now() - t0, 500 * MS);
    rc_storage_watch_stop(NULL);

    /* The futex way through the interface: 1 when an event is there, else a word to sleep on
     * that the next event changes. */
    const uint32_t *word = NULL;
    uint32_t val = 0;
    ASSERT_EQ(rc_storage_prepare_sleep(r, &word, &val), 0);
    append(s);
    ASSERT_NE(word_now(word), val);
    ASSERT_EQ(rc_storage_prepare_sleep(r, &word, &val), 1);

    rc_storage_reader_close(r);
    rc_storage_close(s);
}

/* ---- the HTTP client ---------------------------------------------------------------------- */

static void client_wake_cb(void *c)
{
    ASSERT_EQ(rc_http_client_wake(c), 0);
}

static void futex_bump_cb(void *word)
{
    atomic_fetch_add((_Atomic uint32_t *)word, 1);
    syscall(SYS_futex, word, FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
}

/* How long rc_http_client_run(c, timeout_ms) takes, in ms. */
static int64_t run_ms(rc_http_client_t *c, int timeout_ms)
{
    int64_t t0 = now();
    ASSERT_GE(rc_http_client_run(c, timeout_ms), 0);
    return (now() - t0) / MS;
}

static void test_client_wake(rc_http_backend_t kind)
{
    rc_http_client_opts_t o;
    rc_http_client_opts_init(&o);
    o.backend = kind;
    rc_http_client_t *c = NULL;
    ASSERT_EQ(rc_http_client_create(&o, &c), 0);

    /* Nothing to do: the run waits its time out. An io_uring this thread closed before may
     * still interrupt a blocking call (its exit work arrives like a signal), late on a loaded
     * machine: one of three waits must last its time out, and a client that never sleeps
     * fails all three. */
    int64_t waited = 0;
    for (int i = 0; i < 3 && waited < 50; i++)
        waited = run_ms(c, 60);
    ASSERT_GE(waited, 50);
    /* A wake from another thread ends the wait. */
    later_t l;
    later(&l, 50, client_wake_cb, c);
    ASSERT_LT(run_ms(c, 5000), 2000);
    join(&l);
    /* Wakes before the run end it at once, merged: the run after waits again. */
    ASSERT_EQ(rc_http_client_wake(c), 0);
    ASSERT_EQ(rc_http_client_wake(c), 0);
    ASSERT_LT(run_ms(c, 5000), 2000);
    ASSERT_GE(run_ms(c, 60), 50);

    /* A futex in the same wait: shared memory, as the ring's word is. */
    _Atomic uint32_t *word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                                  -1, 0);
    ASSERT(word != MAP_FAILED);
    int rc = rc_http_client_wake_on_futex(c, (const uint32_t *)word, 0);
    if (kind == RC_HTTP_BACKEND_EPOLL || rc == -ENOTSUP) {
        ASSERT_EQ(rc, -ENOTSUP);
        fprintf(stderr, "  futex waits: not on this back end / kernel\n");
    } else {
        ASSERT_EQ(rc, 0);
        ASSERT_EQ(rc_http_client_wake_on_futex(c, (const uint32_t *)word, 0), 0); /* posted */
        ASSERT_GE(run_ms(c, 60), 50);
        later(&l, 50, futex_bump_cb, (void *)word);
        ASSERT_LT(run_ms(c, 5000), 2000);
        join(&l);
        /* The wait completed; a value that is stale already ends the next run at once. */
        ASSERT_EQ(rc_http_client_wake_on_futex(c, (const uint32_t *)word, 0), 0);
        ASSERT_LT(run_ms(c, 5000), 2000);
        ASSERT_GE(run_ms(c, 60), 50);
        /* At most 8 words. */
        for (int i = 1; i < 8; i++)
            ASSERT_EQ(rc_http_client_wake_on_futex(c, (const uint32_t *)(word + i), 0), 0);
        ASSERT_EQ(rc_http_client_wake_on_futex(c, (const uint32_t *)(word + 8), 0), -ENOSPC);
    }
    rc_http_client_destroy(c);
    munmap((void *)word, 4096);
}

int main(void)
{
    test_wait_past();
    test_storage_watch();
    rc_http_backend_t kinds[] = {RC_HTTP_BACKEND_URING, RC_HTTP_BACKEND_EPOLL};
    for (size_t k = 0; k < 2; k++) {
        rc_http_client_opts_t o;
        rc_http_client_opts_init(&o);
        o.backend = kinds[k];
        rc_http_client_t *probe = NULL;
        int rc = rc_http_client_create(&o, &probe);
        if (rc < 0) {
            fprintf(stderr, "note: back-end %d unavailable here (%s); its cases skipped\n",
                    kinds[k], rc_strerror(rc));
            continue;
        }
        rc_http_client_destroy(probe);
        fprintf(stderr, "back-end %s\n", kinds[k] == RC_HTTP_BACKEND_URING ? "io_uring" : "epoll");
        test_client_wake(kinds[k]);
    }
    return 0;
}
