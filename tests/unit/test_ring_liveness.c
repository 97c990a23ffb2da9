/* Liveness: a reader process killed with SIGKILL stops gating producers once its slot is
 * reclaimed; a claim left pending by a killed producer is padded over so readers move on. */
#include "shm/proc.h"
#include "shm/reader.h"
#include "shm/ring.h"
#include "shm/ring_internal.h"
#include "tests/test.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static char name[64];
static char err[256];

static pid_t self_pid;
static void cleanup(void)
{
    if (getpid() == self_pid && name[0] != '\0')
        rc_ring_unlink(name); /* a failing assertion exits: leave nothing behind */
}

static rc_ring_t *make(const char *what)
{
    snprintf(name, sizeof(name), "rc-test-%d-%s", (int)getpid(), what);
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    cfg.capacity = 1 << 16;
    cfg.flags = RC_RING_F_REPLACE;
    cfg.heartbeat_timeout_ns = 50 * 1000000ull;
    cfg.pad_timeout_ns = 100 * 1000000ull;
    rc_ring_t *r = NULL;
    int rc = rc_ring_create(name, &cfg, &r, err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("create: %s (%s)", rc_strerror(rc), err);
    return r;
}

static rc_reader_t *reader(rc_ring_t *r, rc_reader_mode_t mode)
{
    rc_reader_opts_t o = {.mode = mode, .start = RC_START_OLDEST};
    rc_reader_t *rd = NULL;
    ASSERT_EQ(rc_reader_open(r, &o, &rd), 0);
    return rd;
}

static void put(rc_ring_t *r, const char *s)
{
    rc_ring_claim_t c;
    ASSERT_EQ(rc_ring_claim(r, (uint32_t)strlen(s), RC_REC_TYPE_USER, 0, &c), 0);
    memcpy(c.data, s, strlen(s));
    ASSERT_EQ(rc_ring_commit(&c), 0);
}

/* Forks a child that attaches to the ring by name, runs `fn`, reports on a pipe and waits to be
 * killed. Returns its pid once it reported. */
static pid_t child(void (*fn)(rc_ring_t *))
{
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        rc_ring_t *r = NULL;
        if (rc_ring_open(name, &r, err, sizeof(err)) != 0)
            _exit(2);
        fn(r);
        char c = 'k';
        if (write(fds[1], &c, 1) != 1)
            _exit(3);
        for (;;)
            pause();
    }
    close(fds[1]);
    char c;
    ASSERT_EQ(read(fds[0], &c, 1), 1);
    close(fds[0]);
    return pid;
}

static void kill9(pid_t pid)
{
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFSIGNALED(st));
}

static void c_lossless_reader(rc_ring_t *r)
{
    rc_reader_opts_t o = {.mode = RC_READER_LOSSLESS, .start = RC_START_LATEST, .name = "child"};
    rc_reader_t *rd = NULL;
    if (rc_reader_open(r, &o, &rd) != 0)
        _exit(4);
}

static int fill(rc_ring_t *r)
{
    rc_ring_claim_t c;
    int rc, n = 0;
    while ((rc = rc_ring_claim(r, 500, RC_REC_TYPE_USER, 0, &c)) == 0) {
        ASSERT_EQ(rc_ring_commit(&c), 0);
        n++;
    }
    ASSERT_EQ(rc, RC_ERING_FULL);
    return n;
}

static void test_dead_reader(void)
{
    rc_ring_t *r = make("deadreader");
    pid_t pid = child(c_lossless_reader);
    rc_ring_stats_t st;
    rc_ring_stats(r, &st);
    ASSERT_EQ(st.lossless, 1);
    fill(r);
    /* Alive but stopped: stale heartbeat, yet it must keep gating. */
    ASSERT_EQ(kill(pid, SIGSTOP), 0);
    usleep(120 * 1000);
    rc_ring_claim_t c;
    ASSERT_EQ(rc_ring_claim(r, 500, RC_REC_TYPE_USER, 0, &c), RC_ERING_FULL);
    ASSERT_EQ(rc_ring_reclaim(r), 0);
    /* Killed: once the heartbeat is stale, the next claim that meets the full ring reclaims
     * the slot and goes through. */
    kill9(pid);
    usleep(20 * 1000);
    ASSERT_EQ(rc_ring_claim(r, 500, RC_REC_TYPE_USER, 0, &c), 0);
    ASSERT_EQ(rc_ring_commit(&c), 0);
    rc_ring_stats(r, &st);
    ASSERT_EQ(st.reclaimed, 1);
    ASSERT_EQ(st.readers, 0);
    /* A reclaimed slot is reusable. */
    rc_reader_t *rd = reader(r, RC_READER_LOSSLESS);
    rc_reader_close(rd);
    rc_ring_close(r);
    rc_ring_unlink(name);
}

static void c_claim_one(rc_ring_t *r)
{
    rc_ring_claim_t c;
    if (rc_ring_claim(r, 100, RC_REC_TYPE_USER, 0, &c) != 0)
        _exit(4);
    memset(c.data, 'x', 50); /* dies half-way through writing */
}

static void c_claim_batch(rc_ring_t *r)
{
    rc_ring_rec_t recs[3] = {{.len = 10, .type = RC_REC_TYPE_USER},
                             {.len = 20, .type = RC_REC_TYPE_USER},
                             {.len = 30, .type = RC_REC_TYPE_USER}};
    rc_ring_claim_t c;
    if (rc_ring_claim_batch(r, recs, 3, &c) != 0)
        _exit(4);
}

static void test_dead_producer(void)
{
    rc_ring_t *r = make("deadprod");
    rc_reader_t *rd = reader(r, RC_READER_LOSSLESS);
    rc_reader_t *ly = reader(r, RC_READER_LOSSY);
    rc_ring_view_t v;
    put(r, "before");
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_EQ(rc_reader_poll(ly, &v), 0);
    pid_t pid = child(c_claim_one);
    put(r, "after");
    /* Blocked behind the pending claim while its producer lives. */
    ASSERT_EQ(rc_reader_wait(rd, &v, 150 * 1000000ll), RC_ERING_EMPTY);
    ASSERT_EQ(rc_ring_sweep(r), 0);
    kill9(pid);
    /* Readers pad over it on their own: they have been blocked longer than the pad timeout
     * already, and now its producer is dead. */
    ASSERT_EQ(rc_reader_wait(rd, &v, 3000 * 1000000ll), 0);
    ASSERT_MEM_STR(v.data, v.len, "after");
    ASSERT_EQ(rc_reader_wait(ly, &v, 3000 * 1000000ll), 0);
    ASSERT_MEM_STR(v.data, v.len, "after");
    ASSERT_EQ(v.lost, 0); /* the dead claim was never an event */
    rc_ring_stats_t st;
    rc_ring_stats(r, &st);
    ASSERT_EQ(st.swept, 1);

    /* A dead producer's batch: a supervisor's sweep (another handle) skips all of it. */
    pid = child(c_claim_batch);
    put(r, "after batch");
    kill9(pid);
    rc_ring_t *sup = NULL;
    ASSERT_EQ(rc_ring_open(name, &sup, err, sizeof(err)), 0);
    ASSERT_EQ(rc_reader_poll(rd, &v), RC_ERING_EMPTY); /* blocked: publishes where */
    ASSERT_EQ(rc_ring_sweep(sup), 1);
    ASSERT_EQ(rc_ring_sweep(sup), 0);
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_MEM_STR(v.data, v.len, "after batch");
    ASSERT_EQ(rc_reader_poll(ly, &v), 0);
    ASSERT_MEM_STR(v.data, v.len, "after batch");
    ASSERT_EQ(rc_reader_poll(rd, &v), RC_ERING_EMPTY);

    /* A producer that died right after its head CAS, before writing any header: simulated by
     * moving the head by hand. The sweep waits for the pad timeout, then pads up to the next
     * record. */
    unsigned __int128 cur = 0;
    rc__cas128(&r->hdr->head, &cur, 0);
    ASSERT(rc__cas128(&r->hdr->head, &cur, cur + 64 + ((unsigned __int128)1 << 64)));
    put(r, "after hole");
    ASSERT_EQ(rc_reader_poll(rd, &v), RC_ERING_EMPTY);
    ASSERT_EQ(rc_ring_sweep(sup), 0); /* starts the clock */
    usleep(120 * 1000);
    ASSERT_EQ(rc_ring_sweep(sup), 1);
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_MEM_STR(v.data, v.len, "after hole");
    ASSERT_EQ(rc_reader_poll(ly, &v), 0);
    ASSERT_MEM_STR(v.data, v.len, "after hole");

    /* A live producer that was padded over (its pid looked dead) learns it at commit. */
    pid_t gone = fork();
    if (gone == 0)
        _exit(0);
    ASSERT_EQ(waitpid(gone, NULL, 0), gone);
    rc_ring_claim_t c;
    ASSERT_EQ(rc_ring_claim(r, 8, RC_REC_TYPE_USER, 0, &c), 0);
    rc__rec_hdr_t *rec = (rc__rec_hdr_t *)((uint8_t *)c.data - RC__REC_HDR);
    uint64_t w = atomic_load(&rec->word);
    ASSERT(!(w & RC__W_COMMITTED));
    atomic_store(&rec->word, RC__PENDING(RC__W_LEN(w), (uint32_t)gone));
    c.pending_pid_ = (uint32_t)gone;
    ASSERT_EQ(rc_reader_poll(rd, &v), RC_ERING_EMPTY);
    ASSERT_EQ(rc_ring_sweep(sup), 1);
    ASSERT_EQ(rc_ring_commit(&c), RC_ERING_SWEPT);
    put(r, "last");
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_MEM_STR(v.data, v.len, "last");

    /* A full ring held by a dead producer's claim that a reader waits on: the producer that
     * meets the full ring pads it over (nobody else does here), so the reader moves on at
     * once. */
    pid = child(c_claim_one);
    kill9(pid);
    ASSERT_EQ(rc_reader_poll(rd, &v), RC_ERING_EMPTY); /* done with "last", blocked */
    usleep(20 * 1000); /* past the producers' reclaim interval */
    rc_ring_claim_t cc;
    int rc, n = 0;
    while ((rc = rc_ring_claim(r, 500, RC_REC_TYPE_USER, 0, &cc)) == 0) {
        ASSERT_EQ(rc_ring_commit(&cc), 0);
        ASSERT_LT(++n, 1000);
    }
    ASSERT_EQ(rc, RC_ERING_FULL);
    rc_ring_stats(r, &st);
    ASSERT_EQ(st.swept, 5);
    int m = 0;
    while (rc_reader_poll(rd, &v) == 0)
        m++;
    ASSERT_EQ(m, n);

    rc_ring_close(sup);
    rc_reader_close(ly);
    rc_reader_close(rd);
    rc_ring_close(r);
    rc_ring_unlink(name);
}

/* A sweep at a position producers have lapped must not write: a lossy reader's position (or the
 * one its slot published) can fall a lap behind between the empty poll that found no header
 * there and the sweep, and by then the next lap's records live there. Before the fix both
 * sweep paths padded over them (a "corrupt record" in stress_ring under load). */
#define LAP_LEN 104u /* 128-byte records: every multiple of 128 is a lap-0 record start */
static void put_lap(rc_ring_t *r, uint32_t len, char fill)
{
    rc_ring_claim_t c;
    ASSERT_EQ(rc_ring_claim(r, len, RC_REC_TYPE_USER, 0, &c), 0);
    memset(c.data, fill, len);
    ASSERT_EQ(rc_ring_commit(&c), 0);
}

static void test_lapped_sweep(void)
{
    rc_ring_t *r = make("lapped");
    uint64_t cap = rc_ring_capacity(r), rsz = RC_RING_RECORD_SIZE(LAP_LEN);
    ASSERT_U64_EQ(rsz, 128);
    rc_reader_t *ly = reader(r, RC_READER_LOSSY);
    for (int i = 0; i < 8; i++)
        put_lap(r, LAP_LEN, 'a');
    rc_ring_view_t v;
    while (rc_reader_poll(ly, &v) == 0)
        ;
    /* The lossy reader found nothing new at 1024 and published it; now it stays there. */
    uint64_t stale = rc_reader_position(ly);
    ASSERT_U64_EQ(stale, 8 * rsz);
    while (rc_ring_head(r) < cap + 4096)
        put_lap(r, LAP_LEN, 'a');
    /* Lap 1: a big record whose payload, where lap-0 record p1 started, holds bytes that look
     * like p1's header of a claim pending by a dead producer (payloads are opaque bytes). */
    pid_t gone = fork();
    if (gone == 0)
        _exit(0);
    ASSERT_EQ(waitpid(gone, NULL, 0), gone);
    rc_ring_claim_t c;
    const uint32_t big = 2000;
    ASSERT_EQ(rc_ring_claim(r, big, RC_REC_TYPE_USER, 0, &c), 0);
    uint64_t data0 = c.pos + RC__REC_HDR;
    uint64_t p1 = (data0 - cap + rsz - 1) / rsz * rsz;
    uint64_t off = p1 + cap - data0;
    ASSERT_LE(off + RC__REC_HDR, big);
    uint8_t want[2000];
    memset(want, 'b', sizeof(want));
    uint64_t fake[3] = {RC__PENDING(rsz, (uint32_t)gone), p1 ^ r->key, 7};
    memcpy(want + off, fake, sizeof(fake));
    memcpy(c.data, want, big);
    ASSERT_EQ(rc_ring_commit(&c), 0);
    put_lap(r, LAP_LEN, 'a');
    ASSERT_GT(rc_ring_head(r), stale + cap);
    ASSERT_GT(rc_ring_head(r), p1 + cap);

    /* Path 1 (stamp and a pending word from a dead pid, read at a lapped position). */
    ASSERT_EQ(rc__try_sweep(r, p1, 0), 0);
    /* Path 2 (no stamp for longer than the pad timeout): the supervisor's sweep over the lossy
     * slot's lapped position. */
    ASSERT_EQ(rc_ring_sweep(r), 0); /* starts the clock at `stale` */
    usleep(120 * 1000);
    ASSERT_EQ(rc_ring_sweep(r), 0);
    ASSERT_EQ(rc__try_sweep(r, stale, 200 * 1000000ull), 0);
    rc_ring_stats_t st;
    rc_ring_stats(r, &st);
    ASSERT_U64_EQ(st.swept, 0);

    /* Lap 1 is intact: a fresh lossy reader from the oldest record sees every record, whole. */
    rc_reader_t *chk = reader(r, RC_READER_LOSSY);
    uint64_t n = 0, seen_big = 0;
    while (rc_reader_poll(chk, &v) == 0) {
        ASSERT_EQ(v.lost, 0);
        if (v.len == big) {
            ASSERT_EQ(memcmp(v.data, want, big), 0);
            seen_big++;
        } else {
            ASSERT_EQ(v.len, LAP_LEN);
            for (uint32_t k = 0; k < LAP_LEN; k++)
                ASSERT_EQ(((const uint8_t *)v.data)[k], 'a');
        }
        n++;
    }
    ASSERT_U64_EQ(seen_big, 1);
    ASSERT_U64_EQ(rc_reader_position(chk), rc_ring_head(r));
    ASSERT_GT(n * rsz, cap / 2); /* from within 1/64 of the oldest byte */
    rc_reader_close(chk);
    rc_reader_close(ly);
    rc_ring_close(r);
    rc_ring_unlink(name);
}

int main(void)
{
    self_pid = getpid();
    atexit(cleanup);
    test_dead_reader();
    test_dead_producer();
    test_lapped_sweep();
    printf("test_ring_liveness: ok\n");
    return 0;
}
