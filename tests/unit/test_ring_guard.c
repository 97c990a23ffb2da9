/* Who may use a ring (shm/ring_guard.c): rings open to other users or owned by another uid are
 * refused with a message naming the object and the fix; one broker lock per ring (a second
 * locker is refused naming the holder, a dead holder's forked children keep it until they
 * exit, a ring replaced meanwhile is noticed); a truncated ring is found by rc_ring_check and,
 * under the SIGBUS guard, ends the process with a message instead of a crash; the lock holder
 * reclaims dead readers' slots at once, except consumer groups' and joining readers'. */
#include "shm/group.h"
#include "shm/reader.h"
#include "shm/ring.h"
#include "shm/ring_internal.h"
#include "tests/test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char name[64];
static char path[128];
static char fpath[128];
static char err[512];
static pid_t self_pid;

static void cleanup(void)
{
    if (getpid() != self_pid)
        return; /* a failing assertion exits: leave nothing behind */
    shm_unlink(name);
    unlink(fpath);
}

static void set_name(const char *what)
{
    snprintf(name, sizeof(name), "/rc-test-%d-%s", (int)getpid(), what);
    snprintf(path, sizeof(path), "/dev/shm%s", name);
}

static uint64_t heartbeat_ns = 2000000000ull;

static rc_ring_t *make(const char *what, uint32_t flags)
{
    set_name(what);
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    cfg.capacity = 1 << 16;
    cfg.flags = RC_RING_F_REPLACE | flags;
    cfg.heartbeat_timeout_ns = heartbeat_ns;
    rc_ring_t *r = NULL;
    int rc = rc_ring_create(name, &cfg, &r, err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("create %s: %s (%s)", what, rc_strerror(rc), err);
    return r;
}

static int open_err(void)
{
    rc_ring_t *o = NULL;
    err[0] = '\0';
    int rc = rc_ring_open(name, &o, err, sizeof(err));
    ASSERT((rc == 0) == (o != NULL));
    rc_ring_close(o);
    return rc;
}

static void contains(const char *s, const char *part)
{
    if (strstr(s, part) == NULL)
        RC_TEST_FAIL("\"%s\" does not say \"%s\"", s, part);
}

static ino_t inode(const char *p)
{
    struct stat st;
    ASSERT_EQ(stat(p, &st), 0);
    return st.st_ino;
}

/* ---- owner and mode ------------------------------------------------------------------------- */

static void test_mode_refused(void)
{
    rc_ring_t *r = make("mode", 0);
    ASSERT_EQ(open_err(), 0);
    static const mode_t modes[] = {0644, 0660, 0604, 0620};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        ASSERT_EQ(chmod(path, modes[i]), 0);
        ASSERT_EQ(open_err(), -EPERM);
        char want[16];
        snprintf(want, sizeof(want), "mode %04o", (unsigned)modes[i]);
        contains(err, want);
        contains(err, path);
        char fix[160];
        snprintf(fix, sizeof(fix), "chmod 600 %s", path);
        contains(err, fix);
        snprintf(fix, sizeof(fix), "rm %s", path);
        contains(err, fix);
    }
    /* A broker replacing it refuses as well: the object stays for the operator to look at. */
    ino_t ino = inode(path);
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    cfg.capacity = 1 << 16;
    cfg.flags = RC_RING_F_REPLACE | RC_RING_F_LOCK;
    rc_ring_t *o = NULL;
    ASSERT_EQ(rc_ring_create(name, &cfg, &o, err, sizeof(err)), -EPERM);
    contains(err, "mode 0620");
    ASSERT_EQ(inode(path), ino);
    ASSERT_EQ(chmod(path, 0600), 0);
    ASSERT_EQ(open_err(), 0);
    ASSERT_EQ(chmod(path, 0400), 0); /* private, read-only for its owner: not a sharing bit */
    ASSERT_NE(open_err(), -EPERM);
    rc_ring_close(r);
    shm_unlink(name);

    /* Nobody could open such a ring, so it is not created either. */
    cfg.flags = 0;
    cfg.mode = 0660;
    ASSERT_EQ(rc_ring_create(name, &cfg, &o, err, sizeof(err)), -EINVAL);
    contains(err, "0660");

    /* Ring files follow the same rule. */
    snprintf(fpath, sizeof(fpath), "/tmp/rc-test-%d-guard.ring", (int)getpid());
    cfg.mode = 0600;
    cfg.flags = RC_RING_F_REPLACE;
    ASSERT_EQ(rc_ring_create_file(fpath, &cfg, &o, err, sizeof(err)), 0);
    rc_ring_close(o);
    ASSERT_EQ(chmod(fpath, 0640), 0);
    ASSERT_EQ(rc_ring_open_file(fpath, &o, err, sizeof(err)), -EPERM);
    contains(err, fpath);
    unlink(fpath);
}

/* As root the DAC check lets root open anyone's object; the owner check must not. */
static void test_foreign_owner_refused(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "note: not root: the foreign-owner case needs chown; not checked\n");
        return;
    }
    rc_ring_t *r = make("owner", 0);
    ASSERT_EQ(chown(path, 65534, 65534), 0);
    ASSERT_EQ(open_err(), -EPERM);
    contains(err, "uid 65534");
    contains(err, path);
    /* Not replaced by a broker either (as root, shm_unlink would succeed). */
    ino_t ino = inode(path);
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    cfg.capacity = 1 << 16;
    cfg.flags = RC_RING_F_REPLACE | RC_RING_F_LOCK;
    rc_ring_t *o = NULL;
    ASSERT_EQ(rc_ring_create(name, &cfg, &o, err, sizeof(err)), -EPERM);
    ASSERT_EQ(inode(path), ino);
    rc_ring_close(r);
    shm_unlink(name);
}

/* ---- the broker lock ------------------------------------------------------------------------ */

static void test_lock(void)
{
    rc_ring_t *a = make("lock", RC_RING_F_LOCK);
    /* A second broker: another open file description, refused at once, naming us. */
    rc_ring_t *b = NULL;
    ASSERT_EQ(rc_ring_open(name, &b, err, sizeof(err)), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ASSERT_EQ(rc_ring_lock(b, 5000000000ull, err, sizeof(err)), -EBUSY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ASSERT_LT(t1.tv_sec - t0.tv_sec, 2); /* a live holder: no waiting */
    char want[64];
    snprintf(want, sizeof(want), "pid %d", (int)getpid());
    contains(err, want);
    contains(err, path);
    /* Nor replaced under the holder (a broker configured with another size). */
    ino_t ino = inode(path);
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    cfg.capacity = 1 << 17;
    cfg.flags = RC_RING_F_REPLACE | RC_RING_F_LOCK;
    rc_ring_t *c = NULL;
    ASSERT_EQ(rc_ring_create(name, &cfg, &c, err, sizeof(err)), -EBUSY);
    contains(err, want);
    ASSERT_EQ(inode(path), ino);
    /* Readers and producers do not lock: they attach beside the broker. */
    rc_reader_opts_t ro = {.mode = RC_READER_LOSSY, .start = RC_START_LATEST};
    rc_reader_t *rd = NULL;
    ASSERT_EQ(rc_reader_open(b, &ro, &rd), 0);
    rc_reader_close(rd);
    ASSERT_EQ(rc_ring_reclaim_dead(b), -EPERM); /* not the holder */
    /* The holder closes: the next broker gets it. */
    rc_ring_close(a);
    ASSERT_EQ(rc_ring_lock(b, 0, err, sizeof(err)), 0);
    ASSERT_EQ(rc_ring_lock(b, 0, err, sizeof(err)), 0); /* already held: no-op */
    ASSERT_EQ(b->hdr->lock_pid, (uint32_t)getpid());
    /* With the holder's agreement (it closed), a broker of another size replaces it. */
    rc_ring_close(b);
    ASSERT_EQ(rc_ring_create(name, &cfg, &c, err, sizeof(err)), 0);
    ASSERT_NE(inode(path), ino);
    rc_ring_close(c);
    shm_unlink(name);
}

/* A broker that died leaves its forked workers holding the lock (flock belongs to the open
 * file description they inherited): the next broker waits for them, within its bound. */
static void test_lock_held_by_dead_brokers_children(void)
{
    set_name("orphan");
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t broker = fork();
    ASSERT_GE(broker, 0);
    if (broker == 0) {
        rc_ring_config_t cfg;
        rc_ring_config_init(&cfg);
        cfg.capacity = 1 << 16;
        cfg.flags = RC_RING_F_REPLACE | RC_RING_F_LOCK;
        rc_ring_t *r = NULL;
        if (rc_ring_create(name, &cfg, &r, err, sizeof(err)) != 0)
            _exit(2);
        pid_t worker = fork();
        if (worker == 0) {
            /* The worker: outlives the broker for 400 ms, with the mapping and descriptor. */
            struct timespec ts = {0, 400 * 1000000L};
            nanosleep(&ts, NULL);
            _exit(0);
        }
        char c = 'k';
        if (write(fds[1], &c, 1) != 1)
            _exit(3);
        _exit(0); /* the broker dies first */
    }
    close(fds[1]);
    char c;
    ASSERT_EQ(read(fds[0], &c, 1), 1);
    close(fds[0]);
    int st;
    ASSERT_EQ(waitpid(broker, &st, 0), broker);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    rc_ring_t *r = NULL;
    ASSERT_EQ(rc_ring_open(name, &r, err, sizeof(err)), 0);
    ASSERT_EQ(rc_ring_lock(r, 0, err, sizeof(err)), -EAGAIN);
    char want[64];
    snprintf(want, sizeof(want), "broker (pid %d) ended", (int)broker);
    contains(err, want);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ASSERT_EQ(rc_ring_lock(r, 5000000000ull, err, sizeof(err)), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ASSERT_LT(t1.tv_sec - t0.tv_sec, 3);
    ASSERT_EQ(r->hdr->lock_pid, (uint32_t)getpid());
    rc_ring_close(r);
    shm_unlink(name);
}

/* The name was given to another object between our open and our lock: -ESTALE, and the lock
 * on the stale object is not kept. */
static void test_lock_stale(void)
{
    rc_ring_t *old = make("stale", 0);
    rc_ring_t *fresh = make("stale", 0); /* REPLACE: the old object is unlinked */
    ASSERT_EQ(rc_ring_lock(old, 0, err, sizeof(err)), -ESTALE);
    contains(err, "replaced");
    ASSERT_EQ(rc_ring_lock(fresh, 0, err, sizeof(err)), 0);
    rc_ring_close(old);
    rc_ring_close(fresh);
    shm_unlink(name);
}

/* ---- truncation ----------------------------------------------------------------------------- */

/* Runs `fn` in a child with stderr on a pipe; returns the wait status and the output. */
static int in_child(void (*fn)(void), char *out, size_t outlen)
{
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t k;
    while (n < outlen - 1 && (k = read(fds[0], out + n, outlen - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(fds[0]);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    return st;
}

static void claim_after_truncation(void)
{
    rc_ring_t *r = NULL;
    if (rc_ring_open(name, &r, err, sizeof(err)) != 0)
        _exit(2);
    ASSERT_EQ(ftruncate(r->fd, 8192), 0); /* as a hostile or careless owner would */
    ASSERT_EQ(rc_ring_check(r, err, sizeof(err)), RC_ERING_TRUNCATED);
    fprintf(stderr, "check: %s\n", err);
    if (getenv("RC_TEST_GUARD") != NULL)
        ASSERT_EQ(rc_ring_guard_sigbus(), 0);
    rc_ring_claim_t c;
    rc_ring_claim(r, 100, RC_REC_TYPE_USER, 0, &c); /* writes into the lost pages */
    _exit(0);
}

static void guarded_claim(void)
{
    setenv("RC_TEST_GUARD", "1", 1);
    claim_after_truncation();
}

/* Under the guard, a SIGBUS outside any ring still has its default effect. */
static void other_sigbus(void)
{
    ASSERT_EQ(rc_ring_guard_sigbus(), 0);
    char tmp[128];
    snprintf(tmp, sizeof(tmp), "/rc-test-%d-other", (int)getppid());
    int fd = shm_open(tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    shm_unlink(tmp);
    ASSERT_EQ(ftruncate(fd, 8192), 0);
    volatile char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT(p != MAP_FAILED);
    ASSERT_EQ(ftruncate(fd, 0), 0);
    p[4096] = 1;
    _exit(0);
}

static void test_truncation(void)
{
    rc_ring_t *r = make("trunc", 0);
    ASSERT_EQ(rc_ring_check(r, err, sizeof(err)), 0);
    char out[2048];
    /* Without the guard: the crash this is about. */
    int st = in_child(claim_after_truncation, out, sizeof(out));
    ASSERT(WIFSIGNALED(st));
    ASSERT_EQ(WTERMSIG(st), SIGBUS);
    contains(out, "truncated");
    contains(out, path);
    /* With it: one line naming the ring, exit 1. */
    ASSERT_EQ(ftruncate(r->fd, (off_t)r->map_size), 0);
    st = in_child(guarded_claim, out, sizeof(out));
    if (!WIFEXITED(st))
        RC_TEST_FAIL("guarded child: status %#x, output: %s", st, out);
    ASSERT_EQ(WEXITSTATUS(st), 1);
    char want[256];
    snprintf(want, sizeof(want), "ringcast: ring %s was truncated under this process", path);
    contains(out, want);
    contains(out, "the object has 8192 now");
    st = in_child(other_sigbus, out, sizeof(out));
    ASSERT(WIFSIGNALED(st));
    ASSERT_EQ(WTERMSIG(st), SIGBUS);
    /* An object emptied and grown back under a handle is reported too. */
    ASSERT_EQ(rc_ring_check(r, err, sizeof(err)), RC_ERING_TRUNCATED);
    ASSERT_EQ(ftruncate(r->fd, 0), 0);
    ASSERT_EQ(ftruncate(r->fd, (off_t)r->map_size), 0);
    ASSERT_EQ(rc_ring_check(r, err, sizeof(err)), RC_ERING_CORRUPT); /* pages came back zeroed */
    contains(err, "overwritten");
    rc_ring_close(r);
    shm_unlink(name);
}

/* ---- reclaiming dead readers at once -------------------------------------------------------- */

static pid_t dead_child(int group)
{
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        rc_ring_t *r = NULL;
        if (rc_ring_open(name, &r, err, sizeof(err)) != 0)
            _exit(2);
        if (group) {
            rc_group_opts_t go = {.start = RC_START_LATEST};
            rc_group_member_t *m = NULL;
            _exit(rc_group_join(r, "grp", &go, &m) == 0 ? 0 : 3);
        }
        rc_reader_opts_t o = {.mode = RC_READER_LOSSLESS, .start = RC_START_LATEST, .name = "c"};
        rc_reader_t *rd = NULL;
        _exit(rc_reader_open(r, &o, &rd) == 0 ? 0 : 4);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return pid;
}

static void test_reclaim_dead(void)
{
    heartbeat_ns = 1000000000ull; /* long enough for a loaded machine, short enough to wait */
    rc_ring_t *r = make("reclaim", RC_RING_F_LOCK);
    dead_child(0);
    dead_child(1);
    rc_ring_stats_t st;
    rc_ring_stats(r, &st);
    ASSERT_EQ(st.lossless, 2);
    /* Heartbeats are fresh: the ordinary reclaim waits them out; the holder does not, except
     * for the group, whose slot a live member could still take over. */
    ASSERT_EQ(rc_ring_reclaim(r), 0);
    ASSERT_EQ(rc_ring_reclaim_dead(r), 1);
    rc_ring_stats(r, &st);
    ASSERT_EQ(st.lossless, 1);
    usleep(1100 * 1000); /* past the heartbeat timeout */
    ASSERT_EQ(rc_ring_reclaim_dead(r), 1);
    rc_ring_stats(r, &st);
    ASSERT_EQ(st.readers, 0);

    /* A slot a reader is joining (INIT, heartbeat 0 since the last owner freed it) keeps
     * whatever dead identity it showed before, and is left alone. */
    pid_t gone = dead_child(0);
    ASSERT_EQ(rc_ring_reclaim_dead(r), 1);
    rc__reader_slot_t *s = NULL;
    for (uint32_t i = 0; i < r->hdr->slot_count && s == NULL; i++)
        if (atomic_load(&rc__slot(r, i)->pid) == (uint32_t)gone)
            s = rc__slot(r, i);
    ASSERT(s != NULL);
    ASSERT_EQ(atomic_load(&s->state), RC__SLOT_FREE);
    ASSERT_EQ(atomic_load(&s->heartbeat), 0);
    atomic_store(&s->state, RC__SLOT_INIT); /* as take_slot's CAS leaves it */
    usleep(1100 * 1000);
    ASSERT_EQ(rc_ring_reclaim(r), 0);
    ASSERT_EQ(rc_ring_reclaim_dead(r), 0);
    ASSERT_EQ(atomic_load(&s->state), RC__SLOT_INIT);
    /* A joiner that died in INIT (heartbeat set, then stale) is reclaimed as before. */
    atomic_store(&s->heartbeat, 1);
    ASSERT_EQ(rc_ring_reclaim(r), 1);
    /* A closed reader's slot also reads heartbeat 0. */
    rc_reader_opts_t o = {.mode = RC_READER_LOSSY, .start = RC_START_LATEST};
    rc_reader_t *rd = NULL;
    ASSERT_EQ(rc_reader_open(r, &o, &rd), 0);
    rc__reader_slot_t *mine = rc__slot(r, rc_reader_slot(rd));
    ASSERT_NE(atomic_load(&mine->heartbeat), 0);
    rc_reader_close(rd);
    ASSERT_EQ(atomic_load(&mine->heartbeat), 0);
    rc_ring_close(r);
    shm_unlink(name);
}

int main(void)
{
    self_pid = getpid();
    atexit(cleanup);
    test_mode_refused();
    test_foreign_owner_refused();
    test_lock();
    test_lock_held_by_dead_brokers_children();
    test_lock_stale();
    test_truncation();
    test_reclaim_dead();
    printf("test_ring_guard: ok\n");
    return 0;
}
