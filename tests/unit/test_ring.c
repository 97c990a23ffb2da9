/* Ring lifecycle and producing: layout, create/open handshake and its errors, claim/commit,
 * wrap padding, full ring, batch claims. */
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
#include <unistd.h>

static char name_buf[64];
static char err[256];

static const char *tname(const char *what)
{
    snprintf(name_buf, sizeof(name_buf), "rc-test-%d-%s", (int)getpid(), what);
    return name_buf;
}

/* A failing assertion exits: remove what this process created so nothing is left behind. */
static pid_t self_pid;
static void cleanup(void)
{
    static const char *names[] = {"layout", "cfg", "dup", "ok", "ver", "magic", "zero", "cap",
                                  "trunc", "trunc2", "trunc0", "garbage", "perm", "claim",
                                  "wrap", "full", "batch"};
    if (getpid() != self_pid)
        return;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        rc_ring_unlink(tname(names[i]));
    char path[128];
    snprintf(path, sizeof(path), "/tmp/rc-test-%d.ring", (int)self_pid);
    unlink(path);
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
    return r;
}

static rc_reader_t *reader(rc_ring_t *r, rc_reader_mode_t mode, rc_reader_start_t start)
{
    rc_reader_opts_t o = {.mode = mode, .start = start, .name = "t"};
    rc_reader_t *rd = NULL;
    int rc = rc_reader_open(r, &o, &rd);
    if (rc != 0)
        RC_TEST_FAIL("reader open: %s", rc_strerror(rc));
    return rd;
}

static void put(rc_ring_t *r, const char *s)
{
    rc_ring_claim_t c;
    ASSERT_EQ(rc_ring_claim(r, (uint32_t)strlen(s), RC_REC_TYPE_USER, 0, &c), 0);
    memcpy(c.data, s, strlen(s));
    ASSERT_EQ(rc_ring_commit(&c), 0);
}

static void test_layout(void)
{
    ASSERT_EQ(sizeof(rc__ring_hdr_t), 4096);
    ASSERT_EQ(offsetof(rc__ring_hdr_t, head) % 64, 0);
    ASSERT_EQ(offsetof(rc__ring_hdr_t, gate) % 64, 0);
    ASSERT_NE(offsetof(rc__ring_hdr_t, head) / 64, offsetof(rc__ring_hdr_t, gate) / 64);
    ASSERT_EQ(offsetof(rc__reader_slot_t, position), 0);
    ASSERT_EQ(RC_RING_RECORD_SIZE(0), 24);
    ASSERT_EQ(RC_RING_RECORD_SIZE(1), 32);
    ASSERT_EQ(RC_RING_RECORD_SIZE(8), 32);
    ASSERT_EQ(RC_RING_RECORD_SIZE(9), 40);

    rc_ring_t *r = make("layout", 1 << 20);
    rc__ring_hdr_t *h = r->hdr;
    ASSERT_U64_EQ(h->magic, RC__RING_MAGIC);
    ASSERT_EQ(h->version, RC__RING_VERSION);
    ASSERT_U64_EQ(h->capacity, 1 << 20);
    ASSERT_EQ(h->slots_off, 4096);
    ASSERT_EQ(h->slot_count, 64);
    ASSERT_EQ(h->group_count, RC__DEFAULT_GROUPS);
    ASSERT_GE(h->groups_off, h->slots_off + 64 * 128);
    ASSERT_GE(h->records_off, h->groups_off + RC__DEFAULT_GROUPS * RC__GROUP_BYTES);
    ASSERT_EQ(h->records_off % 4096, 0);
    ASSERT_U64_EQ(h->file_size, h->records_off + (1 << 20));
    ASSERT_EQ(h->key & 7, 0);
    ASSERT_U64_EQ(rc_ring_head(r), 0);
    ASSERT_U64_EQ(rc_ring_capacity(r), 1 << 20);
    struct stat st;
    char path[128];
    snprintf(path, sizeof(path), "/dev/shm/%s", tname("layout"));
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_U64_EQ(st.st_size, h->file_size);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    /* The consumer-group table is reserved and zero. */
    for (uint64_t i = h->groups_off; i < h->records_off; i++)
        ASSERT_EQ(r->base[i], 0);
    rc_ring_close(r);
    ASSERT_EQ(rc_ring_unlink(tname("layout")), 0);
}

static void test_create_errors(void)
{
    rc_ring_t *r = NULL;
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    ASSERT_EQ(rc_ring_create("", NULL, &r, err, sizeof(err)), -EINVAL);
    ASSERT(strstr(err, "not a valid shm name") != NULL);
    ASSERT_EQ(rc_ring_create("a/b", NULL, &r, err, sizeof(err)), -EINVAL);
    ASSERT_EQ(rc_ring_create("/", NULL, &r, err, sizeof(err)), -EINVAL);
    char longname[100];
    memset(longname, 'x', 80);
    longname[80] = '\0';
    ASSERT_EQ(rc_ring_create(longname, NULL, &r, err, sizeof(err)), -EINVAL);
    cfg.capacity = 100000;
    ASSERT_EQ(rc_ring_create(tname("cfg"), &cfg, &r, err, sizeof(err)), -EINVAL);
    ASSERT(strstr(err, "power of two") != NULL);
    cfg.capacity = 32 * 1024;
    ASSERT_EQ(rc_ring_create(tname("cfg"), &cfg, &r, err, sizeof(err)), -EINVAL);
    rc_ring_config_init(&cfg);
    cfg.reader_slots = 0;
    ASSERT_EQ(rc_ring_create(tname("cfg"), &cfg, &r, err, sizeof(err)), -EINVAL);
    rc_ring_config_init(&cfg);
    cfg.capacity = 1 << 16;
    cfg.max_record = 1 << 15;
    ASSERT_EQ(rc_ring_create(tname("cfg"), &cfg, &r, err, sizeof(err)), -EINVAL);
    ASSERT(r == NULL);

    /* Exists: refused without REPLACE, replaced with it. Both "x" and "/x" name it. */
    rc_ring_t *a = make("dup", 1 << 16);
    cfg.max_record = 0;
    cfg.flags = 0;
    ASSERT_EQ(rc_ring_create(tname("dup"), &cfg, &r, err, sizeof(err)), -EEXIST);
    char slashed[80];
    snprintf(slashed, sizeof(slashed), "/%s", tname("dup"));
    ASSERT_EQ(rc_ring_create(slashed, &cfg, &r, err, sizeof(err)), -EEXIST);
    rc_ring_t *b = NULL;
    ASSERT_EQ(rc_ring_open(slashed, &b, err, sizeof(err)), 0);
    rc_ring_close(b);
    rc_ring_close(a);
    ASSERT_EQ(rc_ring_unlink(tname("dup")), 0);
    ASSERT_EQ(rc_ring_unlink(tname("dup")), -ENOENT);
    rc_ring_close(NULL);
}

/* Rewrites header bytes through a second mapping, then tries to open. */
static int open_after(const char *what, void (*mutate)(rc__ring_hdr_t *h, int fd))
{
    rc_ring_t *r = make(what, 1 << 16);
    char nm[80];
    snprintf(nm, sizeof(nm), "/%s", tname(what));
    int fd = shm_open(nm, O_RDWR, 0);
    ASSERT_GE(fd, 0);
    mutate(r->hdr, fd);
    close(fd);
    rc_ring_t *o = NULL;
    err[0] = '\0';
    int rc = rc_ring_open(tname(what), &o, err, sizeof(err));
    ASSERT((rc == 0) == (o != NULL));
    rc_ring_close(o);
    rc_ring_close(r);
    rc_ring_unlink(tname(what));
    return rc;
}

static void m_version(rc__ring_hdr_t *h, int fd)
{
    h->version = 99;
}
static void m_version0(rc__ring_hdr_t *h, int fd)
{
    h->version = 0;
}
static void m_magic(rc__ring_hdr_t *h, int fd)
{
    h->magic = 0x1234;
}
static void m_zero(rc__ring_hdr_t *h, int fd)
{
    h->magic = 0;
    h->version = 0;
}
static void m_capacity(rc__ring_hdr_t *h, int fd)
{
    h->capacity = 3 << 16;
}
static void m_truncate(rc__ring_hdr_t *h, int fd)
{
    ASSERT_EQ(ftruncate(fd, 8192), 0);
}
static void m_truncate_small(rc__ring_hdr_t *h, int fd)
{
    ASSERT_EQ(ftruncate(fd, 100), 0);
}
static void m_truncate_zero(rc__ring_hdr_t *h, int fd)
{
    ASSERT_EQ(ftruncate(fd, 0), 0);
}

static void test_open_errors(void)
{
    rc_ring_t *o = NULL;
    ASSERT_EQ(rc_ring_open(tname("nonexistent"), &o, err, sizeof(err)), -ENOENT);
    ASSERT(strstr(err, "does not exist") != NULL);
    ASSERT_EQ(rc_ring_open("bad/name", &o, err, sizeof(err)), -EINVAL);
    ASSERT_EQ(open_after("ok", m_version0) == RC_ERING_NOT_READY, 1);
    ASSERT_EQ(open_after("ver", m_version), RC_ERING_BAD_VERSION);
    ASSERT(strstr(err, "layout version 99") != NULL);
    ASSERT_EQ(open_after("magic", m_magic), RC_ERING_BAD_MAGIC);
    ASSERT(strstr(err, "not a ringcast ring") != NULL);
    ASSERT_EQ(open_after("zero", m_zero), RC_ERING_NOT_READY);
    ASSERT_EQ(open_after("cap", m_capacity), RC_ERING_CORRUPT);
    ASSERT_EQ(open_after("trunc", m_truncate), RC_ERING_TRUNCATED);
    ASSERT(strstr(err, "truncated") != NULL);
    ASSERT_EQ(open_after("trunc2", m_truncate_small), RC_ERING_TRUNCATED);
    ASSERT_EQ(open_after("trunc0", m_truncate_zero), RC_ERING_NOT_READY);

    /* A shm object that is not a ring at all. */
    char nm[80];
    snprintf(nm, sizeof(nm), "/%s", tname("garbage"));
    int fd = shm_open(nm, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    char junk[8192];
    memset(junk, 'j', sizeof(junk));
    ASSERT_EQ(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);
    ASSERT_EQ(rc_ring_open(tname("garbage"), &o, err, sizeof(err)), RC_ERING_BAD_MAGIC);
    rc_ring_unlink(tname("garbage"));
}

/* Permission denied: a ring of mode 0600 opened by another user. As root that check passes,
 * so a forked child drops to nobody (65534) first. */
static void test_permissions(void)
{
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    cfg.capacity = 1 << 16;
    cfg.flags = RC_RING_F_REPLACE;
    cfg.mode = 0600;
    rc_ring_t *r = NULL;
    ASSERT_EQ(rc_ring_create(tname("perm"), &cfg, &r, err, sizeof(err)), 0);
    if (geteuid() != 0) {
        /* Not root: make it unreadable for ourselves. */
        char path[128];
        snprintf(path, sizeof(path), "/dev/shm/%s", tname("perm"));
        ASSERT_EQ(chmod(path, 0), 0);
        rc_ring_t *o = NULL;
        ASSERT_EQ(rc_ring_open(tname("perm"), &o, err, sizeof(err)), -EACCES);
        ASSERT(strstr(err, "permission denied") != NULL);
    } else {
        char nm[64];
        snprintf(nm, sizeof(nm), "%s", tname("perm"));
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0)
                _exit(3);
            rc_ring_t *o = NULL;
            int rc = rc_ring_open(nm, &o, err, sizeof(err));
            if (rc != -EACCES || strstr(err, "permission denied") == NULL)
                fprintf(stderr, "child: rc %d (%s): %s\n", rc, rc_err_name(rc), err);
            _exit(rc == -EACCES && strstr(err, "permission denied") != NULL ? 0 : 1);
        }
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT(WIFEXITED(status));
        if (WEXITSTATUS(status) == 3)
            fprintf(stderr, "note: could not drop privileges; permission case not checked\n");
        else
            ASSERT_EQ(WEXITSTATUS(status), 0);
    }
    rc_ring_close(r);
    rc_ring_unlink(tname("perm"));
}

static void test_file_ring(void)
{
    char path[128];
    snprintf(path, sizeof(path), "/tmp/rc-test-%d.ring", (int)getpid());
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    cfg.capacity = 1 << 16;
    cfg.flags = RC_RING_F_REPLACE;
    rc_ring_t *r = NULL;
    ASSERT_EQ(rc_ring_create_file(path, &cfg, &r, err, sizeof(err)), 0);
    ASSERT_EQ(r->hdr->flags & RC_RING_F_DURABLE, RC_RING_F_DURABLE);
    put(r, "durable");
    rc_ring_t *o = NULL;
    ASSERT_EQ(rc_ring_open_file(path, &o, err, sizeof(err)), 0);
    rc_reader_t *rd = reader(o, RC_READER_LOSSLESS, RC_START_OLDEST);
    rc_ring_view_t v;
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_MEM_STR(v.data, v.len, "durable");
    rc_reader_close(rd);
    rc_ring_close(o);
    rc_ring_close(r);
    /* Reopen after every handle is gone: the record is still there (the file is the ring). */
    ASSERT_EQ(rc_ring_open_file(path, &o, err, sizeof(err)), 0);
    rd = reader(o, RC_READER_LOSSLESS, RC_START_OLDEST);
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_MEM_STR(v.data, v.len, "durable");
    rc_reader_close(rd);
    rc_ring_close(o);
    ASSERT_EQ(truncate(path, 4096 + 100), 0);
    ASSERT_EQ(rc_ring_open_file(path, &o, err, sizeof(err)), RC_ERING_TRUNCATED);
    ASSERT_EQ(rc_ring_create_file(path, &cfg, &r, err, sizeof(err)), 0); /* REPLACE */
    rc_ring_close(r);
    cfg.flags = 0;
    ASSERT_EQ(rc_ring_create_file(path, &cfg, &r, err, sizeof(err)), -EEXIST);
    unlink(path);
    ASSERT_EQ(rc_ring_open_file(path, &o, err, sizeof(err)), -ENOENT);
    ASSERT_EQ(rc_ring_open_file("", &o, err, sizeof(err)), -EINVAL);
}

static void test_claim_commit(void)
{
    rc_ring_t *r = make("claim", 1 << 16);
    rc_reader_t *rd = reader(r, RC_READER_LOSSLESS, RC_START_OLDEST);
    rc_ring_view_t v;
    ASSERT_EQ(rc_reader_poll(rd, &v), RC_ERING_EMPTY);

    rc_ring_claim_t c;
    ASSERT_EQ(rc_ring_claim(r, 5, RC_REC_TYPE_USER + 3, 0x1234, &c), 0);
    ASSERT_U64_EQ(c.pos, 0);
    ASSERT_U64_EQ(c.seq, 0);
    ASSERT_EQ(c.count, 1);
    ASSERT_EQ(((uintptr_t)c.data) % 8, 0);
    ASSERT((uint8_t *)c.data > r->base && (uint8_t *)c.data < r->base + r->map_size);
    memcpy(c.data, "hello", 5);
    /* Claimed but not committed: invisible. */
    ASSERT_EQ(rc_reader_poll(rd, &v), RC_ERING_EMPTY);
    ASSERT_U64_EQ(rc_ring_head(r), 32);
    ASSERT_EQ(rc_ring_commit(&c), 0);
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_MEM_STR(v.data, v.len, "hello");
    ASSERT_U64_EQ(v.pos, 0);
    ASSERT_U64_EQ(v.next, 32);
    ASSERT_U64_EQ(v.seq, 0);
    ASSERT_EQ(v.type, RC_REC_TYPE_USER + 3);
    ASSERT_EQ(v.flags, 0x1234);
    ASSERT(v.data == c.data); /* zero copy */
    ASSERT_EQ(rc_reader_poll(rd, &v), RC_ERING_EMPTY);

    /* Empty payload; commits in the other order than claims. */
    rc_ring_claim_t a, b;
    ASSERT_EQ(rc_ring_claim(r, 0, RC_REC_TYPE_USER, 0, &a), 0);
    ASSERT_EQ(rc_ring_claim(r, 3, RC_REC_TYPE_USER, 0, &b), 0);
    ASSERT_U64_EQ(a.pos, 32);
    ASSERT_U64_EQ(b.pos, 56);
    ASSERT_U64_EQ(b.seq, 2);
    memcpy(b.data, "bbb", 3);
    ASSERT_EQ(rc_ring_commit(&b), 0);
    ASSERT_EQ(rc_reader_poll(rd, &v), RC_ERING_EMPTY); /* a still pending */
    ASSERT_EQ(rc_ring_commit(&a), 0);
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_EQ(v.len, 0);
    ASSERT_U64_EQ(v.seq, 1);
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_MEM_STR(v.data, v.len, "bbb");
    ASSERT_U64_EQ(rc_reader_position(rd), 56 + 32);

    /* Aborted claims are skipped. */
    ASSERT_EQ(rc_ring_claim(r, 10, RC_REC_TYPE_USER, 0, &a), 0);
    ASSERT_EQ(rc_ring_abort(&a), 0);
    put(r, "after");
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_MEM_STR(v.data, v.len, "after");
    ASSERT_U64_EQ(v.seq, 4); /* the aborted claim used seq 3 */

    /* Bad arguments. */
    ASSERT_EQ(rc_ring_claim(r, 1, RC_REC_TYPE_USER - 1, 0, &a), -EINVAL);
    ASSERT_EQ(rc_ring_claim(r, 1, RC_REC_TYPE_USER, 0x8000, &a), -EINVAL);
    ASSERT_EQ(rc_ring_claim(r, 1 << 15, RC_REC_TYPE_USER, 0, &a), RC_ERING_TOO_BIG);
    ASSERT_EQ(rc_ring_claim(r, UINT32_MAX, RC_REC_TYPE_USER, 0, &a), RC_ERING_TOO_BIG);
    ASSERT_EQ(rc_ring_claim_batch(r, NULL, 1, &a), -EINVAL);

    rc_ring_stats_t st;
    rc_ring_stats(r, &st);
    ASSERT_U64_EQ(st.head, rc_ring_head(r));
    ASSERT_U64_EQ(st.head_seq, 5);
    ASSERT_EQ(st.readers, 1);
    ASSERT_EQ(st.lossless, 1);
    ASSERT_LE(st.tail, v.pos); /* readers publish lazily while records keep coming */
    ASSERT_U64_EQ(st.fill, st.head - st.tail);
    ASSERT_EQ(rc_reader_poll(rd, &v), RC_ERING_EMPTY); /* ... and at once when caught up */
    rc_ring_stats(r, &st);
    ASSERT_U64_EQ(st.tail, st.head);
    ASSERT_U64_EQ(st.fill, 0);
    rc_reader_close(rd);
    rc_ring_stats(r, &st);
    ASSERT_EQ(st.readers, 0);
    ASSERT_U64_EQ(st.fill, 0);
    rc_ring_close(r);
    rc_ring_unlink(tname("claim"));
}

/* Records never cross the end of the area: a padding record, or an implicit gap when fewer
 * than a header's bytes remain, fills it. */
static void test_wrap(void)
{
    const uint64_t cap = 1 << 16;
    rc_ring_t *r = make("wrap", cap);
    rc_reader_t *rd = reader(r, RC_READER_LOSSLESS, RC_START_OLDEST);
    rc_ring_view_t v;
    uint32_t expect = 0;
    int gaps = 0, pads = 0;
    /* Vary sizes so the end of the area is met at many different offsets, including 8 and 16
     * bytes short of it. */
    for (uint32_t i = 0; i < 20000; i++) {
        uint32_t len = 8 + (i * 7919u) % 600;
        uint64_t head = rc_ring_head(r);
        uint64_t room = cap - (head & (cap - 1));
        rc_ring_claim_t c;
        if (room == 16 || room == 8) {
            len = 0; /* force a wrap right here */
            gaps++;
        }
        ASSERT_EQ(rc_ring_claim(r, len, RC_REC_TYPE_USER, 0, &c), 0);
        if (c.pos != head) {
            ASSERT_U64_EQ(c.pos, head + room);
            pads++;
        }
        uint8_t *d = c.data;
        ASSERT(d + len <= r->records + cap);
        for (uint32_t k = 0; k < len; k++)
            d[k] = (uint8_t)(i + k);
        if (len >= 4)
            memcpy(d, &i, 4);
        ASSERT_EQ(rc_ring_commit(&c), 0);
        ASSERT_EQ(rc_reader_poll(rd, &v), 0);
        ASSERT_EQ(v.len, len);
        ASSERT_U64_EQ(v.seq, expect);
        ASSERT_U64_EQ(v.pos, c.pos);
        if (len >= 4) {
            uint32_t got;
            memcpy(&got, v.data, 4);
            ASSERT_EQ(got, i);
        }
        expect++;
    }
    ASSERT_GT(pads, 10);
    ASSERT_GT(gaps, 0);
    ASSERT_GT(rc_ring_head(r), 20 * cap);
    rc_reader_close(rd);
    rc_ring_close(r);
    rc_ring_unlink(tname("wrap"));
}

static void test_full(void)
{
    const uint64_t cap = 1 << 16;
    rc_ring_t *r = make("full", cap);
    rc_reader_t *rd = reader(r, RC_READER_LOSSLESS, RC_START_OLDEST);
    rc_ring_claim_t c;
    int n = 0;
    while (rc_ring_claim(r, 1000, RC_REC_TYPE_USER, 0, &c) == 0) {
        memset(c.data, n, 1000);
        ASSERT_EQ(rc_ring_commit(&c), 0);
        n++;
        ASSERT_LT(n, 1000);
    }
    /* Fails fast with the distinct code, and keeps failing while nothing is consumed. */
    ASSERT_EQ(rc_ring_claim(r, 1000, RC_REC_TYPE_USER, 0, &c), RC_ERING_FULL);
    ASSERT_EQ(n, (int)(cap / RC_RING_RECORD_SIZE(1000)));
    /* Smaller records still fit in what is left. */
    int small = 0;
    while (rc_ring_claim(r, 8, RC_REC_TYPE_USER, 0, &c) == 0) {
        ASSERT_EQ(rc_ring_commit(&c), 0);
        small++;
    }
    ASSERT_GE(rc_ring_head(r), cap - 32);
    ASSERT_LE(rc_ring_head(r), cap);
    rc_ring_stats_t st;
    rc_ring_stats(r, &st);
    ASSERT_GE(st.full, 2);
    ASSERT_U64_EQ(st.fill, st.head);
    /* The first view is in use: still full. The second poll releases the first record. */
    rc_ring_view_t v;
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_EQ(((const uint8_t *)v.data)[0], 0);
    ASSERT_EQ(rc_ring_claim(r, 1000, RC_REC_TYPE_USER, 0, &c), RC_ERING_FULL);
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_EQ(((const uint8_t *)v.data)[0], 1);
    /* The record goes to the start of the area only once the tail padding fits too. */
    for (int i = 2; i < n; i++)
        ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_EQ(rc_ring_claim(r, 1000, RC_REC_TYPE_USER, 0, &c), 0);
    ASSERT_U64_EQ(c.pos, cap);
    ASSERT_EQ(rc_ring_commit(&c), 0);
    /* The views we hold were not overwritten past the reader's position. */
    ASSERT_EQ(((const uint8_t *)v.data)[0], (uint8_t)(n - 1));
    for (int i = 0; i < small; i++)
        ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_U64_EQ(v.pos, cap);
    rc_reader_close(rd);
    /* No lossless reader: producers never block. */
    for (int i = 0; i < 500; i++) {
        ASSERT_EQ(rc_ring_claim(r, 1000, RC_REC_TYPE_USER, 0, &c), 0);
        ASSERT_EQ(rc_ring_commit(&c), 0);
    }
    rc_ring_close(r);
    rc_ring_unlink(tname("full"));
}

static void test_batch(void)
{
    rc_ring_t *r = make("batch", 1 << 16);
    rc_reader_t *rd = reader(r, RC_READER_LOSSLESS, RC_START_OLDEST);
    rc_reader_t *lossy = reader(r, RC_READER_LOSSY, RC_START_OLDEST);
    rc_ring_rec_t recs[5];
    for (int i = 0; i < 5; i++)
        recs[i] = (rc_ring_rec_t){.len = (uint32_t)(10 * i), .type = RC_REC_TYPE_USER + i};
    rc_ring_claim_t c;
    ASSERT_EQ(rc_ring_claim_batch(r, recs, 5, &c), 0);
    ASSERT_EQ(c.count, 5);
    uint64_t total = 0;
    for (int i = 0; i < 5; i++) {
        ASSERT_U64_EQ(recs[i].pos, total);
        total += RC_RING_RECORD_SIZE(recs[i].len);
        memset(recs[i].data, 'a' + i, recs[i].len);
    }
    ASSERT_U64_EQ(rc_ring_head(r), total);
    rc_ring_view_t v;
    /* Not committed: none of the batch is visible, to either kind of reader. */
    ASSERT_EQ(rc_reader_poll(rd, &v), RC_ERING_EMPTY);
    ASSERT_EQ(rc_reader_poll(lossy, &v), RC_ERING_EMPTY);
    ASSERT_EQ(rc_ring_commit(&c), 0);
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(rc_reader_poll(rd, &v), 0);
        ASSERT_EQ(v.len, 10 * i);
        ASSERT_EQ(v.type, RC_REC_TYPE_USER + i);
        ASSERT_U64_EQ(v.seq, (uint64_t)i);
        for (uint32_t k = 0; k < v.len; k++)
            ASSERT_EQ(((const char *)v.data)[k], 'a' + i);
        ASSERT_EQ(rc_reader_poll(lossy, &v), 0);
        ASSERT_U64_EQ(v.seq, (uint64_t)i);
        ASSERT_EQ(v.lost, 0);
    }
    /* Abort: nothing of the batch is ever seen. */
    ASSERT_EQ(rc_ring_claim_batch(r, recs, 5, &c), 0);
    ASSERT_EQ(rc_ring_abort(&c), 0);
    put(r, "next");
    ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_MEM_STR(v.data, v.len, "next");
    ASSERT_U64_EQ(v.seq, 10);
    /* Too big as a whole, or one record too big, or bad type: refused before claiming. */
    rc_ring_rec_t big[40];
    for (int i = 0; i < 40; i++)
        big[i] = (rc_ring_rec_t){.len = 1000, .type = RC_REC_TYPE_USER};
    uint64_t head = rc_ring_head(r);
    ASSERT_EQ(rc_ring_claim_batch(r, big, 40, &c), RC_ERING_TOO_BIG);
    big[1].len = 1 << 15;
    ASSERT_EQ(rc_ring_claim_batch(r, big, 2, &c), RC_ERING_TOO_BIG);
    big[1].len = 1;
    big[1].type = 1;
    ASSERT_EQ(rc_ring_claim_batch(r, big, 2, &c), -EINVAL);
    ASSERT_EQ(rc_ring_claim_batch(r, big, 0, &c), -EINVAL);
    ASSERT_U64_EQ(rc_ring_head(r), head);
    /* A batch meeting the end of the area is padded to the start as a whole. */
    rc_ring_view_t lv;
    while (rc_reader_poll(lossy, &lv) == 0) {
    }
    for (int round = 0; round < 200; round++) {
        rc_ring_rec_t b3[3];
        for (int i = 0; i < 3; i++)
            b3[i] = (rc_ring_rec_t){.len = 300, .type = RC_REC_TYPE_USER};
        ASSERT_EQ(rc_ring_claim_batch(r, b3, 3, &c), 0);
        ASSERT_EQ((b3[0].pos & 0xffff) + 3 * RC_RING_RECORD_SIZE(300) <= 0x10000, 1);
        for (int i = 0; i < 3; i++)
            memset(b3[i].data, round, 300);
        ASSERT_EQ(rc_ring_commit(&c), 0);
        for (int i = 0; i < 3; i++) {
            ASSERT_EQ(rc_reader_poll(rd, &v), 0);
            ASSERT_EQ(((const uint8_t *)v.data)[299], (uint8_t)round);
        }
    }
    rc_reader_close(lossy);
    rc_reader_close(rd);
    rc_ring_close(r);
    rc_ring_unlink(tname("batch"));
}

int main(void)
{
    self_pid = getpid();
    atexit(cleanup);
    test_layout();
    test_create_errors();
    test_open_errors();
    test_permissions();
    test_file_ring();
    test_claim_commit();
    test_wrap();
    test_full();
    test_batch();
    printf("test_ring: ok\n");
    return 0;
}
