/* The sync journal (net/storage/journal.c, storage_file.c): what a crash of the machine would
 * leave is made by hand, since power loss is not reproducible here. A sync store commits events
 * (each 202 waits for its journal frame); a copy of its ring file taken BEFORE those commits
 * stands for a disk that never got the page cache's writes, and beside it goes the journal as the
 * commits left it. Opening that pair must give back every committed event, checksums intact:
 * single records, batches, records past several laps of the ring (with padding at the end of
 * the area); a torn frame loses only its own commit; a journal of another ring is ignored; a
 * store opened with another durability takes what the journal holds, then removes it. The first
 * case runs again on tmpfs (/dev/shm), a file system that kernels before 6.6 gave no O_DIRECT
 * (the journal then writes with O_DSYNC alone; this kernel's tmpfs takes O_DIRECT). */
#include "core/errors.h"
#include "net/storage/journal.h"
#include "net/storage/storage.h"
#include "tests/test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define CAP (1u << 16)

static char dira[128], dirb[128], err[512];

static rc_storage_t *open_in(const char *dir, const char *broker, rc_storage_durability_t d)
{
    rc_storage_config_t c = {.kind = RC_STORAGE_FILE,
                             .ns = "ns",
                             .broker = broker,
                             .durability = d,
                             .prefix = "rcsj",
                             .directory = dir,
                             .capacity = CAP,
                             .readers = 8};
    rc_storage_t *s = NULL;
    int rc = rc_storage_open(&c, &s, err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("open %s: %d %s", dir, rc, err);
    return s;
}

static void file_path(char *out, size_t n, const char *dir, const char *broker, const char *ext)
{
    snprintf(out, n, "%s/ns.%s.%s", dir, broker, ext);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY);
    ASSERT(fd >= 0);
    struct stat st;
    ASSERT_EQ(fstat(fd, &st), 0);
    unsigned char *b = malloc((size_t)st.st_size);
    ASSERT(b != NULL);
    ASSERT_EQ(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *n = (size_t)st.st_size;
    return b;
}

static void spill(const char *path, const unsigned char *b, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT(fd >= 0);
    ASSERT_EQ(pwrite(fd, b, n, 0), (ssize_t)n);
    close(fd);
}

/* Record i: its index and its length in the first 8 bytes, then a pattern of it. */
static void fill(unsigned char *d, uint32_t i, uint32_t len)
{
    memcpy(d, &i, sizeof(i));
    memcpy(d + 4, &len, sizeof(len));
    for (uint32_t j = 8; j < len; j++)
        d[j] = (unsigned char)(i * 7 + j);
}

/* Appends records first..first+n-1 (lengths len + index % 50) in one claim. */
static void append(rc_storage_t *s, uint32_t first, uint32_t n, uint32_t len)
{
    rc_storage_rec_t recs[8];
    ASSERT(n <= 8);
    for (uint32_t i = 0; i < n; i++)
        recs[i] = (rc_storage_rec_t){.len = len + (first + i) % 50};
    rc_storage_claim_t c;
    ASSERT_EQ(rc_storage_claim(s, recs, n, &c), 0);
    for (uint32_t i = 0; i < n; i++)
        fill(recs[i].data, first + i, recs[i].len);
    ASSERT_EQ(rc_storage_commit(s, &c), 0); /* sync: returns once the frame is on disk */
}

/* Reads every record from the oldest, checksums verified, each one's bytes checked against its
 * index; the indices into `got`. */
static uint32_t read_all(rc_storage_t *s, uint32_t *got, uint32_t max)
{
    rc_storage_reader_opts_t o = {
        .name = "t", .start = RC_STORAGE_FROM_OLDEST, .flags = RC_STORAGE_READER_F_VERIFY};
    rc_storage_reader_t *r = NULL;
    ASSERT_EQ(rc_storage_reader_open(s, &o, &r), 0);
    rc_storage_view_t v;
    uint32_t n = 0;
    unsigned char want[4096];
    while (rc_storage_poll(r, &v) == 0) {
        uint32_t i, len;
        ASSERT(v.len >= 8);
        memcpy(&i, v.data, sizeof(i));
        memcpy(&len, v.data + 4, sizeof(len));
        ASSERT_EQ(v.len, len);
        fill(want, i, v.len);
        ASSERT_EQ(memcmp(v.data, want, v.len), 0);
        ASSERT(n < max);
        got[n++] = i;
        ASSERT_EQ(rc_storage_ack(r, v.next), 0);
    }
    rc_storage_reader_close(r);
    return n;
}

/* The records read back are first, first + 1, ...; the store counted nothing corrupt. */
static void expect_run(rc_storage_t *s, const uint32_t *got, uint32_t n, uint32_t first)
{
    for (uint32_t i = 0; i < n; i++)
        ASSERT_EQ(got[i], first + i);
    rc_storage_stats_t st;
    rc_storage_stats(s, &st);
    ASSERT_U64_EQ(st.corrupt, 0);
}

static void remove_store(const char *dir, const char *broker)
{
    const char *ext[] = {"ring", "cursors", "timeindex", "journal"};
    for (int i = 0; i < 4; i++) {
        char p[300];
        file_path(p, sizeof(p), dir, broker, ext[i]);
        unlink(p);
    }
}

/* Closes the crashed store and the one opened from its copy, and removes both. */
static void close_both(rc_storage_t *a, rc_storage_t *b, const char *broker)
{
    rc_storage_close(b);
    rc_storage_close(a);
    remove_store(dira, broker);
    remove_store(dirb, broker);
}

/* The crash: store `broker` of dira commits `commit(s)` after its ring file was copied; dirb
 * gets that copy and the journal. The store in dira stays open (its journal is not reset). */
static rc_storage_t *crash_copy(const char *broker, void (*commit)(rc_storage_t *))
{
    char ring[300], jr[300], ringb[300], jrb[300];
    file_path(ring, sizeof(ring), dira, broker, "ring");
    file_path(jr, sizeof(jr), dira, broker, "journal");
    file_path(ringb, sizeof(ringb), dirb, broker, "ring");
    file_path(jrb, sizeof(jrb), dirb, broker, "journal");
    rc_storage_t *s = open_in(dira, broker, RC_STORAGE_DURABILITY_SYNC);
    size_t n;
    unsigned char *before = slurp(ring, &n);
    commit(s);
    spill(ringb, before, n);
    free(before);
    unsigned char *j = slurp(jr, &n);
    spill(jrb, j, n);
    free(j);
    return s;
}

static void commit_mixed(rc_storage_t *s)
{
    for (uint32_t i = 0; i < 30; i++)
        append(s, i, 1, 100);
    for (uint32_t i = 30; i < 45; i += 3)
        append(s, i, 3, 60);
}

static void test_replay_restores(void)
{
    rc_storage_t *a = crash_copy("m", commit_mixed);
    rc_storage_t *b = open_in(dirb, "m", RC_STORAGE_DURABILITY_SYNC);
    uint32_t got[64];
    uint32_t n = read_all(b, got, 64);
    ASSERT_EQ(n, 45);
    expect_run(b, got, n, 0);
    rc_storage_close(b);
    /* A clean close started a new epoch: opening again puts nothing back twice. */
    b = open_in(dirb, "m", RC_STORAGE_DURABILITY_SYNC);
    ASSERT_EQ(read_all(b, got, 64), 45);
    close_both(a, b, "m");
}

static void commit_laps(rc_storage_t *s)
{
    for (uint32_t i = 0; i < 200; i++)
        append(s, i, 1, 1000);
}

static void test_replay_laps(void)
{
    rc_storage_t *a = crash_copy("w", commit_laps);
    rc_storage_t *b = open_in(dirb, "w", RC_STORAGE_DURABILITY_SYNC);
    uint32_t got[256];
    uint32_t n = read_all(b, got, 256);
    /* The last lap's worth: 64 KiB of ~1,050-byte records, consecutive, up to the last. */
    if (n < 50 || n > 64)
        RC_TEST_FAIL("%u records read back, first %u", n, n ? got[0] : 0);
    expect_run(b, got, n, 200 - n);
    close_both(a, b, "w");
}

static void commit_small(rc_storage_t *s)
{
    for (uint32_t i = 0; i < 10; i++)
        append(s, i, 1, 100);
}

/* Each commit was its own frame (one block each, one after the other): damaging the last frame
 * loses that commit only. */
static void test_torn_frame(void)
{
    rc_storage_t *a = crash_copy("t", commit_small);
    char jrb[300];
    file_path(jrb, sizeof(jrb), dirb, "t", "journal");
    size_t n;
    unsigned char *j = slurp(jrb, &n);
    j[RC_JOURNAL_BLOCK * 10 + 200] ^= 0x40;
    spill(jrb, j, n);
    free(j);
    rc_storage_t *b = open_in(dirb, "t", RC_STORAGE_DURABILITY_SYNC);
    uint32_t got[16];
    ASSERT_EQ(read_all(b, got, 16), 9);
    ASSERT_EQ(got[8], 8);
    close_both(a, b, "t");
}

/* A journal beside another ring file (made after it) is not applied to it. */
static void test_other_ring(void)
{
    rc_storage_t *a = crash_copy("o", commit_small);
    char ringb[300];
    file_path(ringb, sizeof(ringb), dirb, "o", "ring");
    unlink(ringb);
    rc_storage_t *b = open_in(dirb, "o", RC_STORAGE_DURABILITY_SYNC); /* a new ring file */
    uint32_t got[16];
    ASSERT_EQ(read_all(b, got, 16), 0);
    close_both(a, b, "o");
}

/* Opened with durability batch: the journal's events are put back, then the journal goes. */
static void test_other_durability(void)
{
    rc_storage_t *a = crash_copy("d", commit_small);
    rc_storage_t *b = open_in(dirb, "d", RC_STORAGE_DURABILITY_BATCH);
    uint32_t got[16];
    ASSERT_EQ(read_all(b, got, 16), 10);
    char jrb[300];
    file_path(jrb, sizeof(jrb), dirb, "d", "journal");
    ASSERT(access(jrb, F_OK) != 0);
    close_both(a, b, "d");
}

int main(void)
{
    snprintf(dira, sizeof(dira), "/tmp/rc-test-journal-a-%d", (int)getpid());
    snprintf(dirb, sizeof(dirb), "/tmp/rc-test-journal-b-%d", (int)getpid());
    ASSERT_EQ(mkdir(dira, 0700), 0);
    ASSERT_EQ(mkdir(dirb, 0700), 0);
    test_replay_restores();
    /* The same on tmpfs, when /dev/shm is there. */
    char a[128], b[128];
    memcpy(a, dira, sizeof(a));
    memcpy(b, dirb, sizeof(b));
    snprintf(dira, sizeof(dira), "/dev/shm/rc-test-journal-a-%d", (int)getpid());
    snprintf(dirb, sizeof(dirb), "/dev/shm/rc-test-journal-b-%d", (int)getpid());
    if (mkdir(dira, 0700) == 0) {
        ASSERT_EQ(mkdir(dirb, 0700), 0);
        test_replay_restores();
        ASSERT_EQ(rmdir(dira), 0);
        ASSERT_EQ(rmdir(dirb), 0);
    }
    memcpy(dira, a, sizeof(a));
    memcpy(dirb, b, sizeof(b));
    test_replay_laps();
    test_torn_frame();
    test_other_ring();
    test_other_durability();
    ASSERT_EQ(rmdir(dira), 0); /* nothing of the stores left behind */
    ASSERT_EQ(rmdir(dirb), 0);
    printf("test_storage_journal: ok\n");
    return 0;
}
