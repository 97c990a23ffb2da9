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

int main(void)
{
    self_pid = getpid();
    atexit(cleanup);
    test_dead_reader();
    test_dead_producer();
    printf("test_ring_liveness: ok\n");
    return 0;
}
