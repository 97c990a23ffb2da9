/* The time index (net/storage/timeindex.c) and the seek by arrival time over real stores
 * (storage_shm.c): lookups at, before, between and after samples; a table that wrapped; an
 * empty one; samples out of order, a sample being written, a damaged header, another ring's
 * table, a short file, another user's mode; clearing. Then rc_storage_seek_time on a memory and
 * a file store: with the sampler's index, across pauses; arrival times out of sequence order
 * (concurrent producers); before the oldest event, after the newest; a damaged index file only
 * costs a scan. Files under /tmp unique to this process. */
#include "core/arena.h"
#include "core/clock.h"
#include "core/errors.h"
#include "core/event.h"
#include "net/storage/publish.h"
#include "net/storage/storage.h"
#include "net/storage/timeindex.h"
#include "tests/test.h"
#include "tests/unit/storage_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[128], file[256];
static char why[256];

static int fresh_fd(void)
{
    unlink(file);
    int fd = open(file, O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT(fd >= 0);
    return fd;
}

static rc_timeindex_t *map_rw(int fd, uint64_t id, uint32_t entries, int *reset)
{
    rc_timeindex_t *ix = NULL;
    int rc = rc_timeindex_map(fd, id, entries, 1, &ix, reset, why, sizeof(why));
    if (rc != 0)
        RC_TEST_FAIL("map: %d %s", rc, why);
    return ix;
}

static void expect_at(rc_timeindex_t *ix, int64_t t, int64_t want_t, uint64_t want_pos)
{
    rc_timeindex_entry_t e;
    int rc = rc_timeindex_lookup(ix, t, &e);
    if (rc != 0)
        RC_TEST_FAIL("lookup %lld: %d", (long long)t, rc);
    ASSERT_EQ(e.t_ns, want_t);
    ASSERT_U64_EQ(e.pos, want_pos);
}

static void test_lookup(void)
{
    int fd = fresh_fd();
    int reset = -1;
    rc_timeindex_t *ix = map_rw(fd, 7, 16, &reset);
    ASSERT_EQ(reset, 0); /* an empty file is made, not reset */
    rc_timeindex_entry_t e;
    ASSERT_EQ(rc_timeindex_lookup(ix, 1000, &e), -ENOENT); /* empty */
    ASSERT_EQ(rc_timeindex_newest(ix, &e), -ENOENT);
    ASSERT_EQ(rc_timeindex_add(ix, 100, 800, 10), 1);
    ASSERT_EQ(rc_timeindex_add(ix, 200, 1600, 20), 1);
    ASSERT_EQ(rc_timeindex_add(ix, 200, 2400, 30), 1); /* same time, the head moved: kept */
    ASSERT_EQ(rc_timeindex_add(ix, 300, 3200, 40), 1);
    /* Not after the newest: time back, head back or still, sequence back. */
    ASSERT_EQ(rc_timeindex_add(ix, 299, 4000, 50), 0);
    ASSERT_EQ(rc_timeindex_add(ix, 400, 3200, 50), 0);
    ASSERT_EQ(rc_timeindex_add(ix, 400, 4000, 39), 0);
    ASSERT_U64_EQ(rc_timeindex_count(ix), 4);
    ASSERT_EQ(rc_timeindex_lookup(ix, 99, &e), -ENOENT); /* before every sample */
    expect_at(ix, 100, 100, 800);                        /* at one */
    expect_at(ix, 150, 100, 800);                        /* between: the one before */
    expect_at(ix, 200, 200, 2400);                       /* two at that time: the newest */
    expect_at(ix, 299, 200, 2400);
    expect_at(ix, 300, 300, 3200);
    expect_at(ix, INT64_MAX, 300, 3200); /* after every sample: the newest */
    ASSERT_EQ(rc_timeindex_newest(ix, &e), 0);
    ASSERT_U64_EQ(e.seq, 40);
    /* A reader of the same file sees the same; a writer reopening keeps it. */
    rc_timeindex_t *ro = NULL;
    ASSERT_EQ(rc_timeindex_map(fd, 7, 0, 0, &ro, NULL, why, sizeof(why)), 0);
    expect_at(ro, 250, 200, 2400);
    rc_timeindex_close(ro);
    rc_timeindex_close(ix);
    ix = map_rw(fd, 7, 16, &reset);
    ASSERT_EQ(reset, 0);
    ASSERT_U64_EQ(rc_timeindex_count(ix), 4);
    /* Cleared: nothing held, samples go on from there. */
    rc_timeindex_clear(ix);
    ASSERT_EQ(rc_timeindex_lookup(ix, 1000, &e), -ENOENT);
    ASSERT_EQ(rc_timeindex_add(ix, 500, 100, 1), 1); /* nothing to be after any more */
    expect_at(ix, 600, 500, 100);
    rc_timeindex_close(ix);
    close(fd);
}

static void test_wrap(void)
{
    int fd = fresh_fd();
    rc_timeindex_t *ix = map_rw(fd, 7, 4, NULL);
    for (int i = 1; i <= 10; i++)
        ASSERT_EQ(rc_timeindex_add(ix, i * 100, (uint64_t)i * 64, (uint64_t)i), 1);
    ASSERT_U64_EQ(rc_timeindex_count(ix), 10);
    rc_timeindex_entry_t e;
    /* Samples 1-6 were overwritten: a time among them finds no sample at or before it. */
    ASSERT_EQ(rc_timeindex_lookup(ix, 650, &e), -ENOENT);
    expect_at(ix, 700, 700, 448);
    expect_at(ix, 950, 900, 576);
    expect_at(ix, 5000, 1000, 640);
    /* The slot being rewritten (odd gen) is the oldest: it is skipped, the rest is used. */
    struct {
        uint64_t gen;
        int64_t t;
        uint64_t pos, seq;
    } slot;
    off_t off = 64 + (6 % 4) * 32; /* samples are numbered from 0: sample 7 is number 6 */
    ASSERT_EQ(pread(fd, &slot, sizeof(slot), off), (ssize_t)sizeof(slot));
    ASSERT_U64_EQ(slot.gen, 2 * 6 + 2);
    slot.gen = 2 * 10 + 1;
    ASSERT_EQ(pwrite(fd, &slot, sizeof(slot), off), (ssize_t)sizeof(slot));
    ASSERT_EQ(rc_timeindex_lookup(ix, 750, &e), -ENOENT);
    expect_at(ix, 850, 800, 512);
    rc_timeindex_close(ix);
    close(fd);
}

static void test_damaged(void)
{
    int fd = fresh_fd();
    rc_timeindex_t *ix = map_rw(fd, 7, 8, NULL), *ro = NULL;
    for (int i = 1; i <= 5; i++)
        ASSERT_EQ(rc_timeindex_add(ix, i * 100, (uint64_t)i * 64, (uint64_t)i), 1);
    /* A sample in the middle goes back in time: the table is not trusted. */
    int64_t t = 50;
    ASSERT_EQ(pwrite(fd, &t, sizeof(t), 64 + 2 * 32 + 8), (ssize_t)sizeof(t));
    rc_timeindex_entry_t e;
    ASSERT_EQ(rc_timeindex_lookup(ix, 450, &e), -EBADMSG);
    /* A hole in the middle (a gen no writer leaves) is damage too. */
    t = 300;
    ASSERT_EQ(pwrite(fd, &t, sizeof(t), 64 + 2 * 32 + 8), (ssize_t)sizeof(t));
    expect_at(ix, 450, 400, 256);
    uint64_t gen = 12345;
    ASSERT_EQ(pwrite(fd, &gen, sizeof(gen), 64 + 2 * 32), (ssize_t)sizeof(gen));
    ASSERT_EQ(rc_timeindex_lookup(ix, 450, &e), -EBADMSG);
    rc_timeindex_close(ix);
    /* Another ring's table: refused read-only, made anew by the writer (with why). */
    ASSERT_EQ(rc_timeindex_map(fd, 8, 0, 0, &ro, NULL, why, sizeof(why)), -EBADMSG);
    ASSERT(strstr(why, "another ring") != NULL);
    int reset = 0;
    ix = map_rw(fd, 8, 8, &reset);
    ASSERT_EQ(reset, 1);
    ASSERT(strstr(why, "another ring") != NULL);
    ASSERT_U64_EQ(rc_timeindex_count(ix), 0);
    rc_timeindex_close(ix);
    /* A damaged magic. */
    uint64_t junk = 0x4141414141414141ull;
    ASSERT_EQ(pwrite(fd, &junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
    ASSERT_EQ(rc_timeindex_map(fd, 8, 0, 0, &ro, NULL, why, sizeof(why)), -EBADMSG);
    ASSERT(strstr(why, "not a time index") != NULL);
    ix = map_rw(fd, 8, 8, &reset);
    ASSERT_EQ(reset, 1);
    rc_timeindex_close(ix);
    /* Cut short; cut inside the header. */
    ASSERT_EQ(ftruncate(fd, 64 + 3 * 32), 0);
    ASSERT_EQ(rc_timeindex_map(fd, 8, 0, 0, &ro, NULL, why, sizeof(why)), -EBADMSG);
    ASSERT(strstr(why, "size") != NULL);
    ASSERT_EQ(ftruncate(fd, 10), 0);
    ASSERT_EQ(rc_timeindex_map(fd, 8, 0, 0, &ro, NULL, why, sizeof(why)), -EBADMSG);
    ASSERT_EQ(ftruncate(fd, 0), 0);
    ASSERT_EQ(rc_timeindex_map(fd, 8, 0, 0, &ro, NULL, why, sizeof(why)), -EBADMSG);
    /* Open to others: refused either way (whoever can write it could make a replay skip). */
    ix = map_rw(fd, 8, 8, NULL);
    rc_timeindex_close(ix);
    ASSERT_EQ(fchmod(fd, 0644), 0);
    ASSERT_EQ(rc_timeindex_map(fd, 8, 0, 0, &ro, NULL, why, sizeof(why)), -EPERM);
    ASSERT_EQ(rc_timeindex_map(fd, 8, 8, 1, &ix, NULL, why, sizeof(why)), -EPERM);
    ASSERT(strstr(why, "chmod 600") != NULL);
    close(fd);
}

/* ---- seeking real stores -------------------------------------------------------------------- */

static rc_storage_t *open_store(rc_storage_kind_t kind)
{
    return su_open_store(kind, dir, "rcti");
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Three groups of 10 events with pauses longer than the index's slack (the sampler samples
 * between them), then seeks; `mark` gets the time before each group. */
static void seek_groups(rc_storage_t *s, int64_t mark[3])
{
    for (int g = 0; g < 3; g++) {
        sleep_ms(g == 0 ? 150 : 1100);
        mark[g] = rc_wall_ns();
        for (int i = 0; i < 10; i++) {
            char id[16];
            snprintf(id, sizeof(id), "g%d-%d", g, i);
            su_publish(s, id, 0);
        }
    }
    sleep_ms(150);
    rc_storage_seek_t sk;
    for (int g = 0; g < 3; g++) {
        ASSERT_EQ(rc_storage_seek_time(s, mark[g], &sk), 0);
        ASSERT_EQ(sk.found, 1);
        ASSERT_U64_EQ(sk.seq, (uint64_t)g * 10);
        ASSERT_GE(sk.arrival_ns, mark[g]);
        ASSERT_EQ(sk.before_oldest, g == 0);
        if (g == 2) { /* a sample after group 0 is at or before mark - slack */
            ASSERT_EQ(sk.indexed, 1);
            ASSERT_LE(sk.scanned, 11);
        }
    }
    ASSERT_EQ(rc_storage_seek_time(s, INT64_MIN, &sk), 0); /* oldest */
    ASSERT_EQ(sk.found, 1);
    ASSERT_U64_EQ(sk.seq, 0);
    ASSERT_EQ(rc_storage_seek_time(s, rc_wall_ns() + 1000000000ll, &sk), 0); /* the future */
    ASSERT_EQ(sk.found, 0);
    ASSERT_U64_EQ(sk.seq, 30);
    rc_storage_stats_t st;
    rc_storage_stats(s, &st);
    ASSERT_U64_EQ(sk.pos, st.head);
}

static void test_seek_memory(void)
{
    rc_storage_t *s = open_store(RC_STORAGE_SHM);
    int64_t mark[3];
    seek_groups(s, mark);
    /* Arrival times out of sequence order, as concurrent producers stamp them: the first event
     * by sequence number whose arrival is at or after T. */
    int64_t base = rc_wall_ns(); /* after the groups' */
    su_publish(s, "x-0", base + 100);
    su_publish(s, "x-1", base + 300);
    su_publish(s, "x-2", base + 200);
    su_publish(s, "x-3", base + 400);
    rc_storage_seek_t sk;
    ASSERT_EQ(rc_storage_seek_time(s, base + 150, &sk), 0);
    ASSERT_U64_EQ(sk.seq, 31); /* x-1: x-2 (200) comes after it and is included, as Kafka */
    ASSERT_EQ(rc_storage_seek_time(s, base + 300, &sk), 0);
    ASSERT_U64_EQ(sk.seq, 31);
    ASSERT_EQ(rc_storage_seek_time(s, base + 301, &sk), 0);
    ASSERT_U64_EQ(sk.seq, 33);
    char name[64];
    snprintf(name, sizeof(name), "/rcti%d.ns.b", (int)getpid());
    rc_storage_close(s);
    char obj[80];
    snprintf(obj, sizeof(obj), "%s.timeindex", name);
    shm_unlink(obj);
    snprintf(obj, sizeof(obj), "%s", name);
    shm_unlink(obj);
}

static void test_seek_file(void)
{
    rc_storage_t *s = open_store(RC_STORAGE_FILE);
    int64_t mark[3];
    seek_groups(s, mark);
    rc_storage_close(s);
    /* The index file damaged while the store is closed: the writer makes it anew at the next
     * open (a bad magic), and seeks scan from the oldest until samples come. */
    char ix[300];
    snprintf(ix, sizeof(ix), "%s/ns.b.timeindex", dir);
    int fd = open(ix, O_RDWR);
    ASSERT(fd >= 0);
    uint64_t junk = 1;
    ASSERT_EQ(pwrite(fd, &junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
    close(fd);
    s = open_store(RC_STORAGE_FILE);
    rc_storage_seek_t sk;
    ASSERT_EQ(rc_storage_seek_time(s, mark[2], &sk), 0);
    ASSERT_EQ(sk.found, 1);
    ASSERT_U64_EQ(sk.seq, 20);
    ASSERT_EQ(sk.indexed, 0); /* the new table's samples are all later */
    rc_storage_close(s);
    /* Removed: the same. */
    ASSERT_EQ(unlink(ix), 0);
    s = open_store(RC_STORAGE_FILE);
    ASSERT_EQ(rc_storage_seek_time(s, INT64_MIN, &sk), 0);
    ASSERT_U64_EQ(sk.seq, 0);
    rc_storage_close(s);
    char p[300];
    snprintf(p, sizeof(p), "%s/ns.b.ring", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/ns.b.cursors", dir);
    unlink(p);
    unlink(ix);
}

static void test_record_arrival(void)
{
    /* Not a record, a record without an arrival time: -ENOENT, never a crash. */
    uint64_t junk[16] = {0};
    int64_t t;
    ASSERT_EQ(rc_storage_record_arrival(junk, sizeof(junk), 0, &t), -ENOENT);
    ASSERT_EQ(rc_storage_record_arrival(junk, 4, RC_STORAGE_REC_F_CRC, &t), -ENOENT);
    ASSERT_EQ(rc_storage_record_arrival(junk, 13, 0, &t), -ENOENT);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/rc-timeindex-%d", (int)getpid());
    ASSERT_EQ(mkdir(dir, 0700), 0);
    snprintf(file, sizeof(file), "%s/t.timeindex", dir);
    test_lookup();
    test_wrap();
    test_damaged();
    test_record_arrival();
    test_seek_memory();
    test_seek_file();
    unlink(file);
    rmdir(dir);
    printf("test_timeindex: ok\n");
    return 0;
}
