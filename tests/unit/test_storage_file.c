/* The file store (net/storage/storage_file.c): records appended one by one and in batches carry
 * a CRC32C trailer the readers do not see; a verifying reader skips and counts a record damaged
 * on disk, a plain one returns it; the checksum check itself on every bad trailer; a second
 * handle (a worker's) appends and is read back; a restart recovers the events and the saved
 * cursors, and cursors past a torn tail resume at the new head; a shm store is unchanged
 * (exact lengths, no trailer); a worker's handle of a sync store flushes what it committed
 * (rc_storage_sync). In a directory under /tmp unique to this process. */
#include "core/errors.h"
#include "net/storage/storage.h"
#include "tests/test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#define CAP (1u << 16)

static char dir[128], path[256], cursors[256];
static char err[512];

static rc_storage_t *open_broker(rc_storage_kind_t kind, const char *broker,
                                 rc_storage_durability_t durability)
{
    rc_storage_config_t c = {.kind = kind,
                             .ns = "ns",
                             .broker = broker,
                             .durability = durability,
                             .prefix = "rcsf",
                             .directory = dir,
                             .capacity = CAP,
                             .readers = 8};
    rc_storage_t *s = NULL;
    int rc = rc_storage_open(&c, &s, err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("open: %d %s", rc, err);
    return s;
}

static rc_storage_t *open_store(rc_storage_kind_t kind)
{
    return open_broker(kind, "b", RC_STORAGE_DURABILITY_NONE);
}

/* Appends `n` records of `len` bytes in one claim, byte j of record i being 'a' + i. */
static void append(rc_storage_t *s, uint32_t n, uint32_t len, int first)
{
    rc_storage_rec_t recs[8];
    ASSERT(n <= 8);
    for (uint32_t i = 0; i < n; i++)
        recs[i] = (rc_storage_rec_t){.len = len};
    rc_storage_claim_t c;
    ASSERT_EQ(rc_storage_claim(s, recs, n, &c), 0);
    for (uint32_t i = 0; i < n; i++) {
        ASSERT_EQ(recs[i].len, len); /* the trailer's room is the store's business */
        memset(recs[i].data, 'a' + first + (int)i, len);
    }
    ASSERT_EQ(rc_storage_commit(s, &c), 0);
}

/* Reads everything from the oldest: the first byte of each record into `out`. */
static uint32_t read_all(rc_storage_t *s, uint32_t flags, char *out, uint32_t len)
{
    rc_storage_reader_opts_t o = {.name = "t", .start = RC_STORAGE_FROM_OLDEST, .flags = flags};
    rc_storage_reader_t *r = NULL;
    ASSERT_EQ(rc_storage_reader_open(s, &o, &r), 0);
    rc_storage_view_t v;
    uint32_t n = 0;
    while (rc_storage_poll(r, &v) == 0) {
        ASSERT_EQ(v.len, len);
        out[n++] = (char)v.data[0];
        ASSERT_EQ(rc_storage_ack(r, v.next), 0);
    }
    rc_storage_reader_close(r);
    out[n] = '\0';
    return n;
}

static void test_check(void)
{
    unsigned char rec[24];
    uint32_t n = 0;
    memset(rec, 7, sizeof(rec));
    ASSERT_EQ(rc_storage_record_check(rec, 16, 0, 5, &n), 1);
    ASSERT_EQ(n, 16);
    ASSERT_EQ(rc_storage_record_check(rec, 4, RC_STORAGE_REC_F_CRC, 5, &n), RC_EBAD_RECORD);
    /* A trailer that names another length, then a wrong checksum. */
    uint32_t crc = 0, len = 9;
    memcpy(rec + 16, &crc, 4);
    memcpy(rec + 20, &len, 4);
    ASSERT_EQ(rc_storage_record_check(rec, 24, RC_STORAGE_REC_F_CRC, 5, &n), RC_EBAD_RECORD);
    len = 16;
    memcpy(rec + 20, &len, 4);
    ASSERT_EQ(rc_storage_record_check(rec, 24, RC_STORAGE_REC_F_CRC, 5, &n), RC_EBAD_RECORD);
}

static void test_append_read(void)
{
    rc_storage_t *s = open_store(RC_STORAGE_FILE);
    append(s, 1, 40, 0);
    append(s, 3, 40, 1);
    rc_storage_t *w = NULL;
    ASSERT_EQ(rc_storage_attach(s, &w, err, sizeof(err)), 0);
    append(w, 2, 40, 4);
    rc_storage_close(w);
    char got[16];
    ASSERT_EQ(read_all(s, RC_STORAGE_READER_F_VERIFY, got, 40), 6);
    ASSERT_STR_EQ(got, "abcdef");
    ASSERT_EQ(read_all(s, 0, got, 40), 6);
    rc_storage_stats_t st;
    rc_storage_stats(s, &st);
    ASSERT_STR_EQ(st.kind, "file");
    ASSERT_STR_EQ(st.durability, "none");
    ASSERT_GT(st.file_bytes, CAP);
    ASSERT_EQ(st.corrupt, 0);
    ASSERT_EQ(st.head_seq, 6);
    /* Damage record 'c' (the third) on disk while the store is open: a verifying reader skips
     * and counts it, a plain one still returns it. Records are 40 + 8 + 24 = 72 bytes. */
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    struct stat sb;
    ASSERT_EQ(fstat(fd, &sb), 0);
    off_t off = (off_t)((uint64_t)sb.st_size - CAP + 2 * 72 + 24 + 5);
    char b = 'X';
    ASSERT_EQ(pwrite(fd, &b, 1, off), 1);
    close(fd);
    ASSERT_EQ(read_all(s, RC_STORAGE_READER_F_VERIFY, got, 40), 5);
    ASSERT_STR_EQ(got, "abdef");
    rc_storage_stats(s, &st);
    ASSERT_EQ(st.corrupt, 1);
    ASSERT_EQ(read_all(s, 0, got, 40), 6);
    rc_storage_close(s);
    /* The next process finds it at start, pads it over: every reader skips it now. */
    s = open_store(RC_STORAGE_FILE);
    rc_storage_stats(s, &st);
    ASSERT_EQ(st.corrupt, 1);
    ASSERT_EQ(read_all(s, 0, got, 40), 5);
    ASSERT_STR_EQ(got, "abdef");
    rc_storage_close(s);
}

/* Saved cursors come back with the file; one past a torn tail resumes at the new head. */
static void test_cursors(void)
{
    rc_storage_t *s = open_store(RC_STORAGE_FILE);
    rc_storage_stats_t st;
    rc_storage_stats(s, &st);
    uint64_t head = st.head, seq = st.head_seq;
    rc_storage_cursors_t *t = NULL;
    int adopted = -1;
    ASSERT_EQ(rc_storage_cursors_open(s, 8, &t, &adopted, err, sizeof(err)), 0);
    rc_storage_cursor_t *c = rc_storage_cursor_take(t, "ns/kept", NULL);
    rc_storage_cursor_t *p = rc_storage_cursor_take(t, "ns/past", NULL);
    atomic_store(&c->seq, 2);
    atomic_store(&c->pos, 2 * 72);
    append(s, 2, 40, 10);
    atomic_store(&p->seq, seq + 2);
    atomic_store(&p->pos, head + 2 * 72);
    rc_storage_cursors_close(t);
    rc_storage_close(s);
    /* The two records just appended are lost (zeros), as after a crash of the machine. */
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    struct stat sb;
    ASSERT_EQ(fstat(fd, &sb), 0);
    static char zeros[2 * 72];
    ASSERT_EQ(pwrite(fd, zeros, sizeof(zeros), (off_t)((uint64_t)sb.st_size - CAP + head)),
              (ssize_t)sizeof(zeros));
    close(fd);
    s = open_store(RC_STORAGE_FILE);
    rc_storage_stats(s, &st);
    ASSERT_U64_EQ(st.head, head);
    ASSERT_U64_EQ(st.head_seq, seq);
    ASSERT_EQ(rc_storage_cursors_open(s, 8, &t, &adopted, err, sizeof(err)), 0);
    ASSERT_EQ(adopted, 1);
    c = rc_storage_cursor_find(t, "ns/kept");
    p = rc_storage_cursor_find(t, "ns/past");
    ASSERT(c != NULL && p != NULL);
    ASSERT_U64_EQ(atomic_load(&c->seq), 2);
    ASSERT_U64_EQ(atomic_load(&p->seq), seq);
    ASSERT_U64_EQ(atomic_load(&p->pos), head);
    rc_storage_cursors_close(t);
    rc_storage_close(s);
}

/* A file store is not resized nor replaced under its events. */
static void test_refusals(void)
{
    rc_storage_config_t c = {.kind = RC_STORAGE_FILE,
                             .ns = "ns",
                             .broker = "b",
                             .directory = dir,
                             .capacity = 2 * CAP,
                             .readers = 8};
    rc_storage_t *s = NULL;
    ASSERT_EQ(rc_storage_open(&c, &s, err, sizeof(err)), -EINVAL);
    ASSERT(strstr(err, "a file store is not resized") != NULL);
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    ASSERT_EQ(pwrite(fd, "garbage!", 8, 0), 8);
    close(fd);
    c.capacity = CAP;
    ASSERT_EQ(rc_storage_open(&c, &s, err, sizeof(err)), RC_ERING_BAD_MAGIC);
    ASSERT(strstr(err, "never replaced by the broker") != NULL);
    c.directory = "/nonexistent-rc-dir";
    ASSERT_EQ(rc_storage_open(&c, &s, err, sizeof(err)), -ENOENT);
    ASSERT(strstr(err, "does not exist: create it") != NULL);
}

/* The shm store: no trailer, no checksum, the verify flag has nothing to check. */
static void test_shm_unchanged(void)
{
    rc_storage_t *s = open_store(RC_STORAGE_SHM);
    append(s, 2, 40, 0);
    char got[8];
    ASSERT_EQ(read_all(s, RC_STORAGE_READER_F_VERIFY, got, 40), 2);
    rc_storage_stats_t st;
    rc_storage_stats(s, &st);
    ASSERT_STR_EQ(st.kind, "memory");
    ASSERT_EQ(st.file_bytes, 0);
    ASSERT_U64_EQ(st.head, 2 * 64); /* 40 + 24, no trailer */
    ASSERT_EQ(rc_storage_sync(s), 0); /* nothing of its own to flush */
    rc_storage_close(s);
    unlink("/dev/shm/rcsf.ns.b");
    unlink("/dev/shm/rcsf.ns.b.timeindex");
}

/* durability sync: a worker's handle (attached, no flusher) commits at once; rc_storage_sync
 * runs one fdatasync for all it committed since the last call, counted with the broker's, and
 * none when it committed nothing. */
static void test_sync_attached(void)
{
    rc_storage_t *s = open_broker(RC_STORAGE_FILE, "c", RC_STORAGE_DURABILITY_SYNC);
    rc_storage_t *w = NULL;
    ASSERT_EQ(rc_storage_attach(s, &w, err, sizeof(err)), 0);
    rc_storage_stats_t st;
    rc_storage_stats(s, &st);
    uint64_t before = st.fsyncs;
    ASSERT_EQ(rc_storage_sync(w), 0);
    rc_storage_stats(s, &st);
    ASSERT_U64_EQ(st.fsyncs, before); /* nothing committed: no fdatasync */
    append(w, 2, 40, 0);
    append(w, 1, 40, 2);
    ASSERT_EQ(rc_storage_sync(w), 0);
    rc_storage_stats(s, &st);
    ASSERT_U64_EQ(st.fsyncs, before + 1); /* one for both commits */
    ASSERT_EQ(rc_storage_sync(w), 0);
    rc_storage_stats(s, &st);
    ASSERT_U64_EQ(st.fsyncs, before + 1);
    ASSERT_EQ(rc_storage_sync(s), 0); /* the opener's commits wait for its flusher */
    char got[8];
    ASSERT_EQ(read_all(s, RC_STORAGE_READER_F_VERIFY, got, 40), 3);
    ASSERT_STR_EQ(got, "abc");
    rc_storage_close(w);
    rc_storage_close(s);
    const char *files[] = {"ring", "cursors", "timeindex", "journal"};
    for (int i = 0; i < 4; i++) {
        char p[300];
        snprintf(p, sizeof(p), "%s/ns.c.%s", dir, files[i]);
        unlink(p);
    }
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/rc-test-storage-file-%d", (int)getpid());
    snprintf(path, sizeof(path), "%s/ns.b.ring", dir);
    snprintf(cursors, sizeof(cursors), "%s/ns.b.cursors", dir);
    ASSERT_EQ(mkdir(dir, 0700), 0);
    test_check();
    test_append_read();
    test_cursors();
    test_refusals();
    test_shm_unchanged();
    test_sync_attached();
    unlink(path);
    unlink(cursors);
    char timeindex[300];
    snprintf(timeindex, sizeof(timeindex), "%s/ns.b.timeindex", dir);
    unlink(timeindex);
    ASSERT_EQ(rmdir(dir), 0); /* nothing of the store left behind */
    printf("test_storage_file: ok\n");
    return 0;
}
