/* Recovery of a ring file (shm/ring_recover.c): a clean file keeps every record; a claim whose
 * producer died is padded over; a record whose checksum fails and a stretch with a damaged
 * header are padded over and reported while the records around them stay; a zeroed tail moves
 * the head back (reader slots past it too) and the ring takes new records there; a file cut
 * short is extended and recovered, one cut inside its tables is refused; recovery without the
 * broker lock is refused. Records here carry their own CRC32C in their last 4 bytes. */
#include "core/crc32c.h"
#include "shm/group.h"
#include "shm/reader.h"
#include "shm/ring.h"
#include "shm/ring_internal.h"
#include "shm/ring_recover.h"
#include "tests/test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define CAP     (1u << 16)
#define PAYLOAD 100u /* bytes per record, the checksum included */

static char path[128];
static char err[512];

/* Writes record `i`: its number, filler, then the CRC32C of those bytes. Returns 0, or the
 * claim's code (nothing written). */
static int try_put(rc_ring_t *r, uint32_t i)
{
    rc_ring_claim_t c;
    int rc = rc_ring_claim(r, PAYLOAD, RC_REC_TYPE_USER, 0, &c);
    if (rc != 0)
        return rc;
    unsigned char *d = c.data;
    memset(d, (int)(i & 0xff), PAYLOAD);
    memcpy(d, &i, sizeof(i));
    uint32_t crc = rc_crc32c(0, d, PAYLOAD - 4);
    memcpy(d + PAYLOAD - 4, &crc, 4);
    ASSERT_EQ(rc_ring_commit(&c), 0);
    return 0;
}

static void put(rc_ring_t *r, uint32_t i)
{
    ASSERT_EQ(try_put(r, i), 0);
}

static int verify(void *arg, const rc_ring_view_t *v)
{
    (void)arg;
    uint32_t crc;
    if (v->len != PAYLOAD)
        return -1;
    memcpy(&crc, (const unsigned char *)v->data + PAYLOAD - 4, 4);
    return rc_crc32c(0, v->data, PAYLOAD - 4) == crc ? 0 : -1;
}

static int reports;
static uint64_t last_report_pos;

static void report(void *arg, uint64_t pos, uint64_t len, const char *why)
{
    (void)arg;
    (void)len;
    (void)why;
    reports++;
    last_report_pos = pos;
}

static rc_ring_t *create(void)
{
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    cfg.capacity = CAP;
    cfg.flags = RC_RING_F_REPLACE | RC_RING_F_LOCK;
    rc_ring_t *r = NULL;
    if (rc_ring_create_file(path, &cfg, &r, err, sizeof(err)) != 0)
        RC_TEST_FAIL("create: %s", err);
    return r;
}

/* Opens the file again as a restarted broker would: open, lock, recover. */
static rc_ring_t *reopen(rc_ring_recovery_t *rec)
{
    rc_ring_t *r = NULL;
    if (rc_ring_open_file(path, &r, err, sizeof(err)) != 0)
        RC_TEST_FAIL("open: %s", err);
    if (rc_ring_lock(r, 0, err, sizeof(err)) != 0)
        RC_TEST_FAIL("lock: %s", err);
    reports = 0;
    ASSERT_EQ(rc_ring_recover(r, verify, report, NULL, rec), 0);
    return r;
}

/* The record numbers a lossless reader from the oldest gets, into `out`; returns how many. */
static uint32_t read_all(rc_ring_t *r, uint32_t *out, uint32_t max)
{
    rc_reader_opts_t o = {.mode = RC_READER_LOSSLESS, .start = RC_START_OLDEST};
    rc_reader_t *rd = NULL;
    ASSERT_EQ(rc_reader_open(r, &o, &rd), 0);
    rc_ring_view_t v;
    uint32_t n = 0;
    while (rc_reader_poll(rd, &v) == 0) {
        ASSERT(n < max);
        ASSERT_EQ(verify(NULL, &v), 0);
        memcpy(&out[n++], v.data, sizeof(uint32_t));
    }
    rc_reader_close(rd);
    return n;
}

static uint64_t pos_of(rc_ring_t *r, uint32_t k)
{
    /* Records are all one size and the ring has not wrapped in these tests. */
    (void)r;
    return (uint64_t)k * RC_RING_RECORD_SIZE(PAYLOAD);
}

static void test_clean(void)
{
    rc_ring_t *r = create();
    for (uint32_t i = 0; i < 50; i++)
        put(r, i);
    rc_ring_close(r);
    rc_ring_recovery_t rec;
    r = reopen(&rec);
    ASSERT_EQ(rec.events, 50);
    ASSERT_EQ(rec.unchecked, 0);
    ASSERT_EQ(rec.oldest_seq, 0);
    ASSERT_EQ(rec.newest_seq, 49);
    ASSERT_EQ(rec.corrupt, 0);
    ASSERT_EQ(rec.swept, 0);
    ASSERT_U64_EQ(rec.head, rec.head_before);
    ASSERT(strstr(rec.stop, ": the head") != NULL);
    uint32_t got[64];
    ASSERT_EQ(read_all(r, got, 64), 50);
    rc_ring_close(r);

    /* Without the lock: refused, nothing read. */
    ASSERT_EQ(rc_ring_open_file(path, &r, err, sizeof(err)), 0);
    ASSERT_EQ(rc_ring_recover(r, verify, report, NULL, &rec), -EPERM);
    rc_ring_close(r);
}

/* A producer that claimed and died: its claim is padded over, what follows stays. */
static void test_pending(void)
{
    rc_ring_t *r = create();
    put(r, 0);
    rc_ring_claim_t dead;
    ASSERT_EQ(rc_ring_claim(r, PAYLOAD, RC_REC_TYPE_USER, 0, &dead), 0);
    put(r, 2);
    rc_ring_close(r);
    rc_ring_recovery_t rec;
    r = reopen(&rec);
    ASSERT_EQ(rec.events, 2);
    ASSERT_EQ(rec.swept, 1);
    ASSERT_EQ(rec.corrupt, 0);
    uint32_t got[8];
    ASSERT_EQ(read_all(r, got, 8), 2);
    ASSERT_EQ(got[0], 0);
    ASSERT_EQ(got[1], 2);
    rc_ring_close(r);
}

static void flip(uint64_t file_off, unsigned char bit)
{
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    unsigned char b;
    ASSERT_EQ(pread(fd, &b, 1, (off_t)file_off), 1);
    b ^= bit;
    ASSERT_EQ(pwrite(fd, &b, 1, (off_t)file_off), 1);
    close(fd);
}

static void test_corrupt_middle(void)
{
    rc_ring_t *r = create();
    uint64_t records_off = r->hdr->records_off;
    for (uint32_t i = 0; i < 30; i++)
        put(r, i);
    rc_ring_close(r);
    /* A bit of record 10's payload, and the stamp of record 20's header. */
    flip(records_off + pos_of(r, 10) + RC__REC_HDR + 40, 0x10);
    flip(records_off + pos_of(r, 20) + offsetof(rc__rec_hdr_t, stamp) + 3, 0x01);
    rc_ring_recovery_t rec;
    r = reopen(&rec);
    ASSERT_EQ(rec.events, 28);
    ASSERT_EQ(rec.corrupt, 2);
    ASSERT_EQ(reports, 2);
    ASSERT_U64_EQ(last_report_pos, pos_of(r, 20));
    ASSERT_EQ(rec.newest_seq, 29);
    ASSERT_U64_EQ(rec.head, rec.head_before);
    uint32_t got[32];
    ASSERT_EQ(read_all(r, got, 32), 28);
    for (uint32_t i = 0, k = 0; i < 30; i++) {
        if (i != 10 && i != 20)
            ASSERT_EQ(got[k++], i);
    }
    /* Recovering again finds the padding, not the damage: nothing more to report. */
    rc_ring_close(r);
    r = reopen(&rec);
    ASSERT_EQ(rec.events, 28);
    ASSERT_EQ(rec.corrupt, 0);
    rc_ring_close(r);
}

/* The file's bytes from record 12 on are zeros, as a machine crash can leave them: the head
 * moves back there, a reader slot that was past it too, and new records go where the torn
 * ones were. */
static void test_zero_tail(void)
{
    rc_ring_t *r = create();
    uint64_t records_off = r->hdr->records_off;
    for (uint32_t i = 0; i < 20; i++)
        put(r, i);
    rc_reader_opts_t o = {.mode = RC_READER_LOSSLESS, .start = RC_START_LATEST, .name = "past"};
    rc_reader_t *rd = NULL;
    ASSERT_EQ(rc_reader_open(r, &o, &rd), 0); /* at the head, 20 records in */
    rc_reader_forget(rd);
    rc_ring_close(r);
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    static unsigned char zeros[CAP];
    uint64_t from = pos_of(r, 12);
    ASSERT_EQ(pwrite(fd, zeros, CAP - from, (off_t)(records_off + from)), (ssize_t)(CAP - from));
    close(fd);
    rc_ring_recovery_t rec;
    r = reopen(&rec);
    ASSERT_EQ(rec.events, 12);
    ASSERT_EQ(rec.corrupt, 0);
    ASSERT_U64_EQ(rec.head, pos_of(r, 12));
    ASSERT_U64_EQ(rec.head_seq, 12);
    ASSERT_EQ(rec.clamped, 1);
    ASSERT(strstr(rec.stop, ": a torn record (no valid record header") != NULL);
    /* Its slot (this process's, so not an orphan to rc_reader_find_orphan). */
    int seen = 0;
    for (uint32_t i = 0; i < r->hdr->slot_count; i++) {
        rc__reader_slot_t *sl = rc__slot(r, i);
        if (atomic_load(&sl->state) == RC__SLOT_ACTIVE && strcmp(sl->name, "past") == 0) {
            ASSERT_U64_EQ(atomic_load(&sl->position), pos_of(r, 12));
            atomic_store(&sl->state, RC__SLOT_FREE);
            seen++;
        }
    }
    ASSERT_EQ(seen, 1);
    for (uint32_t i = 100; i < 105; i++)
        put(r, i);
    uint32_t got[32];
    ASSERT_EQ(read_all(r, got, 32), 17);
    ASSERT_EQ(got[11], 11);
    ASSERT_EQ(got[12], 100);
    rc_ring_close(r);
}

/* A consumer group that had consumed past a torn tail: its shared cursor moves back to the cut
 * with the head, so the records written there after the restart reach it (without the move it
 * would wait until the head passed its old position). The member is dropped without leaving,
 * as a crash of the machine leaves it. */
static void test_group_past_cut(void)
{
    rc_ring_t *r = create();
    uint64_t records_off = r->hdr->records_off;
    for (uint32_t i = 0; i < 20; i++)
        put(r, i);
    rc_group_opts_t go = {.start = RC_START_OLDEST, .batch = 4};
    rc_group_member_t *m = NULL;
    ASSERT_EQ(rc_group_join(r, "g", &go, &m), 0);
    rc_ring_view_t v;
    uint32_t n = 0;
    while (rc_group_poll(m, &v) == 0)
        n++;
    ASSERT_EQ(n, 20);
    free(m); /* gone without leaving: its cell and the group stay in the file */
    rc_ring_close(r);
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    static unsigned char zeros[CAP];
    uint64_t from = pos_of(r, 12);
    ASSERT_EQ(pwrite(fd, zeros, CAP - from, (off_t)(records_off + from)), (ssize_t)(CAP - from));
    close(fd);
    rc_ring_recovery_t rec;
    r = reopen(&rec);
    ASSERT_U64_EQ(rec.head, pos_of(r, 12));
    ASSERT_EQ(rec.groups_clamped, 1);
    rc_group_info_t gi;
    ASSERT_EQ(rc_group_list(r, &gi, 1), 1);
    ASSERT_U64_EQ(gi.next, pos_of(r, 12));
    for (uint32_t i = 100; i < 105; i++)
        put(r, i);
    ASSERT_EQ(rc_group_join(r, "g", &go, &m), 0);
    n = 0;
    uint32_t first = 0;
    while (rc_group_poll(m, &v) == 0) {
        ASSERT_EQ(verify(NULL, &v), 0);
        if (n++ == 0)
            memcpy(&first, v.data, sizeof(first));
    }
    ASSERT_EQ(n, 5);
    ASSERT_EQ(first, 100);
    rc_group_leave(m);
    rc_ring_close(r);
}

/* A file cut in its record area is extended; the records in the part kept stay. A cut in the
 * tables is refused with a message. */
static void test_truncated(void)
{
    rc_ring_t *r = create();
    uint64_t records_off = r->hdr->records_off, size = records_off + CAP;
    for (uint32_t i = 0; i < 40; i++)
        put(r, i);
    rc_ring_close(r);
    uint64_t cut = records_off + pos_of(r, 25) + 50;
    ASSERT_EQ(truncate(path, (off_t)cut), 0);
    ASSERT_EQ(rc_ring_open_file(path, &r, err, sizeof(err)), RC_ERING_TRUNCATED);
    uint64_t was = 0, now = 0;
    ASSERT_EQ(rc_ring_extend_file(path, &was, &now, err, sizeof(err)), 0);
    ASSERT_U64_EQ(was, cut);
    ASSERT_U64_EQ(now, size);
    rc_ring_recovery_t rec;
    r = reopen(&rec);
    ASSERT_EQ(rec.events, 25);
    ASSERT_U64_EQ(rec.head, pos_of(r, 25));
    rc_ring_close(r);
    /* Again: not short any more. */
    ASSERT_EQ(rc_ring_extend_file(path, &was, &now, err, sizeof(err)), 0);
    ASSERT_U64_EQ(was, size);
    /* Inside the tables: nothing to recover from. */
    ASSERT_EQ(truncate(path, (off_t)(records_off - 4096)), 0);
    ASSERT_EQ(rc_ring_extend_file(path, &was, &now, err, sizeof(err)), RC_ERING_TRUNCATED);
    ASSERT(strstr(err, "inside its reader and group tables") != NULL);
    ASSERT_EQ(truncate(path, 100), 0);
    ASSERT_EQ(rc_ring_extend_file(path, &was, &now, err, sizeof(err)), RC_ERING_TRUNCATED);
    ASSERT(strstr(err, "inside its header") != NULL);
    /* A broker holding the lock keeps others from changing the file. */
    r = create();
    ASSERT_EQ(truncate(path, (off_t)(size - 4096)), 0);
    ASSERT_EQ(rc_ring_extend_file(path, &was, &now, err, sizeof(err)), -EBUSY);
    rc_ring_close(r);
}

/* A wrapped ring whose feed (a lossless reader the previous broker left) holds records older
 * than the first checkpoint: recovery starts there, and finds damage there too. */
static void test_wrapped_from_feed(void)
{
    rc_ring_t *r = create();
    uint64_t records_off = r->hdr->records_off;
    rc_reader_opts_t o = {.mode = RC_READER_LOSSLESS,
                          .start = RC_START_OLDEST,
                          .name = "feed~w0",
                          .flags = RC_READER_F_MANUAL_ACK};
    rc_reader_t *rd = NULL;
    ASSERT_EQ(rc_reader_open(r, &o, &rd), 0);
    uint32_t i = 0;
    while (try_put(r, i) == 0)
        i++;
    rc_ring_view_t v;
    for (int k = 0; k < 5; k++)
        ASSERT_EQ(rc_reader_poll(rd, &v), 0);
    ASSERT_EQ(rc_reader_ack(rd, v.next), 0); /* 5 records done: the feed holds position 640 */
    rc_reader_forget(rd);
    rc_ring_close(r);
    /* Fill up to the feed again (a new handle: the old one is gone), so the ring wraps. */
    ASSERT_EQ(rc_ring_open_file(path, &r, err, sizeof(err)), 0);
    uint64_t feed_pos = 0;
    for (uint32_t k = 0; k < r->hdr->slot_count; k++) {
        rc__reader_slot_t *sl = rc__slot(r, k);
        if (atomic_load(&sl->state) == RC__SLOT_ACTIVE)
            feed_pos = atomic_load(&sl->position);
    }
    ASSERT_GT(feed_pos, 0);
    while (try_put(r, i) == 0)
        i++;
    uint64_t head = rc_ring_head(r);
    uint32_t shift = r->hdr->checkpoint_shift;
    uint64_t seg = 1ull << shift, lo = head - CAP;
    uint64_t first_cp = (lo + seg - 1) & ~(seg - 1);
    ASSERT_GT(head, CAP);
    ASSERT_LT(feed_pos + RC_RING_RECORD_SIZE(PAYLOAD), first_cp); /* what this test is about */
    rc_ring_close(r);
    /* Damage the record right after the feed's position. */
    uint64_t bad = feed_pos + RC_RING_RECORD_SIZE(PAYLOAD);
    flip(records_off + (bad & (CAP - 1)) + RC__REC_HDR + 30, 0x40);
    rc_ring_recovery_t rec;
    r = reopen(&rec);
    ASSERT_U64_EQ(rec.oldest_pos, feed_pos);
    ASSERT_EQ(rec.corrupt, 1);
    ASSERT_U64_EQ(last_report_pos, bad);
    ASSERT_U64_EQ(rec.oldest_seq, feed_pos / RC_RING_RECORD_SIZE(PAYLOAD));
    rc_ring_close(r);
}

int main(void)
{
    snprintf(path, sizeof(path), "/tmp/rc-test-recover-%d.ring", (int)getpid());
    test_clean();
    test_pending();
    test_corrupt_middle();
    test_zero_tail();
    test_group_past_cut();
    test_truncated();
    test_wrapped_from_feed();
    unlink(path);
    printf("test_ring_recover: ok\n");
    return 0;
}
