/* Multi-process ring stress: P producer processes (T threads each) x R reader processes, half
 * lossless, half lossy, through a small ring that wraps and fills all the time.
 *
 * Every record carries (producer, thread, sequence, checksum). Lossless readers must see every
 * record exactly once, in per-producer-thread order, uncorrupted; lossy readers must never see a
 * corrupt or out-of-order record, and their seen + lost must add up to what was written.
 * A further lossless reader joins mid-run (from the oldest retained record) and must see every
 * record from its first one on. With --kill, one extra lossless reader and one extra producer
 * are killed with SIGKILL mid-run; everyone else must finish.
 *
 * Bounded by count and time: --records N (per producer thread), --seconds S (producers stop
 * there; readers then drain). RC_STRESS_SCALE=x multiplies the default count. */
#include "core/clock.h"
#include "shm/reader.h"
#include "shm/ring.h"
#include "tests/test.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PROD 8
#define MAX_THREADS 4
#define MAX_READERS 16
#define MIN_PAYLOAD 24u

typedef struct {
    uint16_t producer, thread;
    uint32_t len;
    uint64_t seq;
    uint64_t sum;
} rec_head_t;
_Static_assert(sizeof(rec_head_t) == 24, "record head");

typedef struct {
    _Atomic uint64_t produced[MAX_PROD + 1][MAX_THREADS]; /* committed so far */
    _Atomic int producers_done;                            /* finished (or killed) producers */
    _Atomic int readers_ready;
    _Atomic int go;
    _Atomic int victim_ready;
    struct {
        uint64_t seen, lost, corrupt;
    } result[MAX_READERS];
    char failure[MAX_READERS][512];
} control_t;

static struct {
    int producers, threads, readers;
    uint64_t records;
    double seconds;
    int kill;
    char name[64];
} cfg;

static control_t *ctl;

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void fill_payload(uint8_t *d, uint32_t len, uint16_t prod, uint16_t th, uint64_t seq)
{
    uint64_t s = (seq + 1) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)prod << 32 | th);
    if (s == 0)
        s = 1;
    for (uint32_t k = MIN_PAYLOAD; k < len; k++)
        d[k] = (uint8_t)xorshift(&s);
    rec_head_t h = {.producer = prod, .thread = th, .len = len, .seq = seq,
                    .sum = fnv(d + MIN_PAYLOAD, len - MIN_PAYLOAD)};
    memcpy(d, &h, sizeof(h));
}

typedef struct {
    rc_ring_t *ring;
    uint16_t prod, th;
    uint64_t deadline;
    uint64_t limit; /* records */
} prod_arg_t;

static void *producer_thread(void *arg)
{
    prod_arg_t *a = arg;
    uint64_t seq = 0, rng = (uint64_t)a->prod * 131 + a->th + 7;
    while (seq < a->limit && rc_now_ns() < a->deadline) {
        /* Mostly single records, sometimes a batch of up to 8 (all-or-nothing). */
        uint32_t n = (xorshift(&rng) % 16 == 0) ? 1 + (uint32_t)(xorshift(&rng) % 8) : 1;
        if (n > a->limit - seq)
            n = (uint32_t)(a->limit - seq);
        rc_ring_rec_t recs[8];
        for (uint32_t i = 0; i < n; i++)
            recs[i] = (rc_ring_rec_t){.len = MIN_PAYLOAD + (uint32_t)(xorshift(&rng) % 480),
                                      .type = RC_REC_TYPE_USER + a->prod};
        rc_ring_claim_t c;
        int rc = rc_ring_claim_batch(a->ring, recs, n, &c);
        if (rc == RC_ERING_FULL) {
            sched_yield();
            continue;
        }
        if (rc != 0) {
            fprintf(stderr, "producer %u: claim: %s\n", a->prod, rc_strerror(rc));
            exit(1);
        }
        for (uint32_t i = 0; i < n; i++)
            fill_payload(recs[i].data, recs[i].len, a->prod, a->th, seq + i);
        rc = rc_ring_commit(&c);
        if (rc != 0) {
            fprintf(stderr, "producer %u: commit: %s\n", a->prod, rc_strerror(rc));
            exit(1);
        }
        seq += n;
        atomic_store_explicit(&ctl->produced[a->prod][a->th], seq, memory_order_release);
    }
    return NULL;
}

static rc_ring_t *attach(void)
{
    char err[256];
    rc_ring_t *r = NULL;
    int rc = rc_ring_open(cfg.name, &r, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "attach: %s\n", err);
        exit(1);
    }
    return r;
}

static int run_producer(int prod, int victim)
{
    rc_ring_t *r = attach();
    while (!atomic_load(&ctl->go))
        usleep(1000);
    uint64_t deadline = rc_now_ns() + (uint64_t)(cfg.seconds * 1e9);
    int nth = victim ? 1 : cfg.threads;
    pthread_t th[MAX_THREADS];
    prod_arg_t args[MAX_THREADS];
    for (int t = 0; t < nth; t++) {
        args[t] = (prod_arg_t){.ring = r, .prod = (uint16_t)prod, .th = (uint16_t)t,
                               .deadline = victim ? UINT64_MAX : deadline,
                               /* The victim runs until killed: finishing first would count
                                * it as done twice and let readers stop early. */
                               .limit = victim ? UINT64_MAX : cfg.records};
        if (victim)
            atomic_store(&ctl->victim_ready, 1);
        if (pthread_create(&th[t], NULL, producer_thread, &args[t]) != 0)
            return 1;
    }
    for (int t = 0; t < nth; t++)
        pthread_join(th[t], NULL);
    rc_ring_close(r);
    return 0;
}

static int all_producers_done(void)
{
    return atomic_load(&ctl->producers_done) >= cfg.producers + (cfg.kill ? 1 : 0);
}

/* A failing reader gives its slot back: until the parent reaps it, its process looks alive
 * (a zombie) and its slot would gate the producers until their deadline. */
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(ctl->failure[idx], sizeof(ctl->failure[idx]), __VA_ARGS__);                       \
        rc_reader_close(rd);                                                                       \
        return 1;                                                                                  \
    } while (0)

/* victim: 0 = regular reader (joins before the producers start), 1 = killed mid-run,
 * 2 = late joiner (joins mid-run, lossless from the oldest retained record: exercises the join
 * protocol against running producers). */
static int run_reader(int idx, rc_reader_mode_t mode, int victim)
{
    int late = victim == 2;
    if (late)
        victim = 0;
    rc_ring_t *r = attach();
    rc_reader_opts_t o = {.mode = mode, .start = RC_START_OLDEST, .spin = 200,
                          .name = mode == RC_READER_LOSSLESS ? "stress-lossless" : "stress-lossy"};
    rc_reader_t *rd = NULL;
    int rc = rc_reader_open(r, &o, &rd);
    if (rc != 0)
        FAIL("reader %d: open: %s", idx, rc_strerror(rc));
    atomic_fetch_add(&ctl->readers_ready, 1);
    static uint64_t next[MAX_PROD + 1][MAX_THREADS];
    static int started[MAX_PROD + 1][MAX_THREADS];
    uint64_t seen = 0, lost = 0;
    uint64_t hard = rc_now_ns() + (uint64_t)((cfg.seconds + 60) * 1e9);
    rc_ring_view_t v;
    for (;;) {
        rc = rc_reader_wait(rd, &v, 20 * 1000000ll);
        if (rc == RC_ERING_EMPTY) {
            if (victim)
                continue; /* holds its slot until killed */
            if (all_producers_done() && rc_reader_position(rd) == rc_ring_head(r))
                break;
            if (rc_now_ns() > hard)
                FAIL("reader %d: not drained in time (pos %llu head %llu)", idx,
                     (unsigned long long)rc_reader_position(rd),
                     (unsigned long long)rc_ring_head(r));
            continue;
        }
        if (rc != 0)
            FAIL("reader %d: %s", idx, rc_strerror(rc));
        if (v.len < MIN_PAYLOAD)
            FAIL("reader %d: short record (%u bytes) at %llu", idx, v.len,
                 (unsigned long long)v.pos);
        rec_head_t h;
        memcpy(&h, v.data, sizeof(h));
        uint64_t sum = fnv((const uint8_t *)v.data + MIN_PAYLOAD, v.len - MIN_PAYLOAD);
        if (h.producer > MAX_PROD || h.thread >= MAX_THREADS || h.len != v.len ||
            v.type != RC_REC_TYPE_USER + h.producer || sum != h.sum) {
            rc_ring_stats_t cs;
            rc_ring_stats(r, &cs);
            uint64_t want = h.producer <= MAX_PROD && h.thread < MAX_THREADS
                                ? next[h.producer][h.thread]
                                : 0;
            FAIL("reader %d (%s%s): corrupt record at %llu (next %llu, ring seq %llu, type %u, "
                 "len %u, lost %llu): head says producer %u/%u seq %llu len %u sum %016llx, "
                 "payload sum %016llx, expected seq %llu; ring head %llu tail %llu swept %llu "
                 "reclaimed %llu",
                 idx, mode == RC_READER_LOSSLESS ? "lossless" : "lossy", late ? ", late" : "",
                 (unsigned long long)v.pos, (unsigned long long)v.next,
                 (unsigned long long)v.seq, v.type, v.len, (unsigned long long)v.lost,
                 h.producer, h.thread, (unsigned long long)h.seq, h.len,
                 (unsigned long long)h.sum, (unsigned long long)sum, (unsigned long long)want,
                 (unsigned long long)cs.head, (unsigned long long)cs.tail,
                 (unsigned long long)cs.swept, (unsigned long long)cs.reclaimed);
        }
        uint64_t *n = &next[h.producer][h.thread];
        if (late && !started[h.producer][h.thread])
            *n = h.seq; /* joined mid-stream: from here on, every record */
        started[h.producer][h.thread] = 1;
        if (mode == RC_READER_LOSSLESS ? h.seq != *n : h.seq < *n)
            FAIL("reader %d (%s%s): producer %u/%u seq %llu, expected %s%llu, at %llu "
                 "(ring seq %llu, lost %llu, ring head %llu)",
                 idx, mode == RC_READER_LOSSLESS ? "lossless" : "lossy", late ? ", late" : "",
                 h.producer, h.thread, (unsigned long long)h.seq,
                 mode == RC_READER_LOSSLESS ? "" : ">= ", (unsigned long long)*n,
                 (unsigned long long)v.pos, (unsigned long long)v.seq,
                 (unsigned long long)v.lost, (unsigned long long)rc_ring_head(r));
        *n = h.seq + 1;
        seen++;
        lost += v.lost;
        if (lost > rc_reader_lost(rd))
            FAIL("reader %d: lost %llu in views, %llu in total", idx, (unsigned long long)lost,
                 (unsigned long long)rc_reader_lost(rd));
    }
    /* A lapped reader that caught up at the head learns its last loss before the next record:
     * that part is in the total, not yet in a view. */
    if (rc_reader_lost(rd) < lost)
        FAIL("reader %d: total lost %llu below the views' %llu", idx,
             (unsigned long long)rc_reader_lost(rd), (unsigned long long)lost);
    lost = rc_reader_lost(rd);
    ctl->result[idx].seen = seen;
    ctl->result[idx].lost = lost;
    /* Lossless: exactly what each producer thread committed. */
    for (int p = 0; p <= MAX_PROD; p++) {
        for (int t = 0; t < MAX_THREADS; t++) {
            uint64_t want = atomic_load(&ctl->produced[p][t]);
            int is_victim = cfg.kill && p == cfg.producers;
            if (late && !started[p][t])
                continue; /* that thread was done before we joined */
            if (mode == RC_READER_LOSSLESS) {
                /* The victim may die between its commit and its count update. */
                if (is_victim ? (next[p][t] < want || next[p][t] > want + 8) : next[p][t] != want)
                    FAIL("reader %d: producer %d/%d: saw %llu of %llu", idx, p, t,
                         (unsigned long long)next[p][t], (unsigned long long)want);
            } else if (next[p][t] > want + (is_victim ? 8 : 0)) {
                FAIL("reader %d: producer %d/%d: saw seq %llu beyond %llu", idx, p, t,
                     (unsigned long long)next[p][t], (unsigned long long)want);
            }
        }
    }
    rc_ring_stats_t st;
    rc_ring_stats(r, &st);
    /* Every sequence number is a record seen, one lost, or (kill) part of a swept claim. */
    if (mode == RC_READER_LOSSY && !cfg.kill && seen + lost != st.head_seq)
        FAIL("reader %d: lossy seen %llu + lost %llu != written %llu", idx,
             (unsigned long long)seen, (unsigned long long)lost, (unsigned long long)st.head_seq);
    if (mode == RC_READER_LOSSY && cfg.kill && (seen + lost > st.head_seq ||
                                                seen + lost + 8 * st.swept < st.head_seq))
        FAIL("reader %d: lossy seen %llu + lost %llu vs written %llu (swept %llu)", idx,
             (unsigned long long)seen, (unsigned long long)lost,
             (unsigned long long)st.head_seq, (unsigned long long)st.swept);
    if (mode == RC_READER_LOSSLESS && !cfg.kill && !late && seen != st.head_seq)
        FAIL("reader %d: lossless saw %llu of %llu", idx, (unsigned long long)seen,
             (unsigned long long)st.head_seq);
    rc_reader_close(rd);
    rc_ring_close(r);
    return 0;
}

static pid_t spawn(int (*fn)(int, rc_reader_mode_t, int), int a, rc_reader_mode_t m, int v)
{
    pid_t pid = fork();
    if (pid < 0)
        RC_TEST_FAIL("fork: %s", strerror(errno));
    if (pid == 0)
        _exit(fn(a, m, v));
    return pid;
}

static int producer_entry(int prod, rc_reader_mode_t m, int victim)
{
    int rc = run_producer(prod, victim);
    atomic_fetch_add(&ctl->producers_done, 1);
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: stress_ring [--producers P] [--threads T] [--readers R] "
                    "[--records N] [--seconds S] [--kill]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    cfg.producers = 2;
    cfg.threads = 2;
    cfg.readers = 4;
    cfg.records = 500000;
    cfg.seconds = 20;
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    cfg.records = 100000;
    cfg.seconds = 40;
#endif
#if defined(__SANITIZE_THREAD__)
    /* ThreadSanitizer sees only the synchronisation inside one process: a thread reusing
     * space another thread of its process wrote a lap earlier is ordered through readers in
     * other processes, which it cannot see. So producer processes are single-threaded here;
     * multi-threaded producers run under TSan in test_ring_reader (all threads, one process). */
    cfg.producers = 3;
    cfg.threads = 1;
#endif
    const char *scale = getenv("RC_STRESS_SCALE");
    if (scale != NULL && atof(scale) > 0)
        cfg.records = (uint64_t)(cfg.records * atof(scale));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--kill") == 0)
            cfg.kill = 1;
        else if (i + 1 >= argc)
            usage();
        else if (strcmp(argv[i], "--producers") == 0)
            cfg.producers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0)
            cfg.threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--readers") == 0)
            cfg.readers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--records") == 0)
            cfg.records = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0)
            cfg.seconds = atof(argv[++i]);
        else
            usage();
    }
    if (cfg.producers < 1 || cfg.producers > MAX_PROD || cfg.threads < 1 ||
        cfg.threads > MAX_THREADS || cfg.readers < 1 || cfg.readers > MAX_READERS - 2)
        usage();

    ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT(ctl != MAP_FAILED);
    snprintf(cfg.name, sizeof(cfg.name), "rc-stress-%d", (int)getpid());
    rc_ring_config_t rcfg;
    rc_ring_config_init(&rcfg);
    rcfg.capacity = 1 << 20;
    rcfg.flags = RC_RING_F_REPLACE;
    rcfg.heartbeat_timeout_ns = 200 * 1000000ull;
    rcfg.pad_timeout_ns = 200 * 1000000ull;
    char err[256];
    rc_ring_t *ring = NULL;
    int rc = rc_ring_create(cfg.name, &rcfg, &ring, err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("create: %s", err);

    pid_t readers[MAX_READERS], producers[MAX_PROD + 1];
    int nreaders = cfg.readers;
    for (int i = 0; i < nreaders; i++)
        readers[i] = spawn(run_reader, i, i % 2 == 0 ? RC_READER_LOSSLESS : RC_READER_LOSSY, 0);
    pid_t victim_reader = 0, victim_prod = 0;
    if (cfg.kill)
        victim_reader = spawn(run_reader, nreaders, RC_READER_LOSSLESS, 1);
    uint64_t t0 = rc_now_ns();
    while (atomic_load(&ctl->readers_ready) < nreaders + (cfg.kill ? 1 : 0)) {
        if (rc_now_ns() - t0 > 30ull * 1000000000ull)
            RC_TEST_FAIL("readers did not start");
        usleep(1000);
    }
    for (int p = 0; p < cfg.producers; p++)
        producers[p] = spawn(producer_entry, p, 0, 0);
    if (cfg.kill)
        victim_prod = spawn(producer_entry, cfg.producers, 0, 1);
    t0 = rc_now_ns();
    atomic_store(&ctl->go, 1);
    /* A lossless reader joining while producers run. */
    usleep(200 * 1000);
    int late_idx = nreaders + 1;
    pid_t late = spawn(run_reader, late_idx, RC_READER_LOSSLESS, 2);

    if (cfg.kill) {
        /* Let a third or so of the run pass, then kill both victims mid-flight. */
        uint64_t target = cfg.records * (uint64_t)cfg.producers * cfg.threads / 3;
        for (;;) {
            uint64_t sum = 0;
            for (int p = 0; p < cfg.producers; p++)
                for (int t = 0; t < cfg.threads; t++)
                    sum += atomic_load(&ctl->produced[p][t]);
            if (sum >= target || rc_now_ns() - t0 > (uint64_t)(cfg.seconds * 0.3e9))
                break;
            usleep(2000);
        }
        kill(victim_reader, SIGKILL);
        kill(victim_prod, SIGKILL);
        waitpid(victim_reader, NULL, 0);
        waitpid(victim_prod, NULL, 0);
        atomic_fetch_add(&ctl->producers_done, 1);
        fprintf(stderr, "killed reader %d and producer %d after %.2f s\n", (int)victim_reader,
                (int)victim_prod, (rc_now_ns() - t0) / 1e9);
    }
    int failed = 0;
    for (int p = 0; p < cfg.producers; p++) {
        int st = 0;
        waitpid(producers[p], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "producer %d failed (status %d)\n", p, st);
            failed = 1;
        }
    }
    double prod_s = (rc_now_ns() - t0) / 1e9;
    for (int i = 0; i < nreaders; i++) {
        int st = 0;
        waitpid(readers[i], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "reader %d (%s) failed: %s\n", i, i % 2 ? "lossy" : "lossless",
                    ctl->failure[i][0] ? ctl->failure[i] : "crashed");
            failed = 1;
        }
    }
    int lst = 0;
    waitpid(late, &lst, 0);
    if (!WIFEXITED(lst) || WEXITSTATUS(lst) != 0) {
        fprintf(stderr, "late lossless reader failed: %s\n",
                ctl->failure[late_idx][0] ? ctl->failure[late_idx] : "crashed");
        failed = 1;
    }
    rc_ring_stats_t st;
    rc_ring_stats(ring, &st);
    fprintf(stderr,
            "stress: %d producers x %d threads, %d readers%s: %llu records in %.2f s "
            "(%.0f/s), full %llu, swept %llu, reclaimed %llu\n",
            cfg.producers, cfg.threads, nreaders, cfg.kill ? " (+ killed pair)" : "",
            (unsigned long long)st.head_seq, prod_s, st.head_seq / prod_s,
            (unsigned long long)st.full, (unsigned long long)st.swept,
            (unsigned long long)st.reclaimed);
    for (int i = 0; i < nreaders; i++)
        fprintf(stderr, "  reader %d %-8s seen %llu lost %llu\n", i,
                i % 2 ? "lossy" : "lossless", (unsigned long long)ctl->result[i].seen,
                (unsigned long long)ctl->result[i].lost);
    fprintf(stderr, "  late lossless reader seen %llu\n",
            (unsigned long long)ctl->result[late_idx].seen);
    if (cfg.kill && (st.reclaimed < 1))
        RC_TEST_FAIL("the killed reader's slot was not reclaimed");
    rc_ring_close(ring);
    rc_ring_unlink(cfg.name);
    if (failed)
        return 1;
    printf("stress_ring: ok\n");
    return 0;
}
