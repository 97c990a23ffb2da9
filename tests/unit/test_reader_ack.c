/* Unit test of manual-ack readers (shm/reader.h: RC_READER_F_MANUAL_ACK, rc_reader_ack,
 * rc_reader_resume, rc_reader_forget, rc_reader_find_orphan): what the delivery workers use to
 * keep a trigger's cursor at its oldest unfinished event across worker and broker restarts. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/errors.h"
#include "shm/reader.h"
#include "shm/ring.h"
#include "tests/test.h"

static void put(rc_ring_t *r, uint32_t v)
{
    rc_ring_claim_t c;
    ASSERT_EQ(rc_ring_claim(r, 8, RC_REC_TYPE_USER, 0, &c), 0);
    memcpy(c.data, &v, 4);
    memset((char *)c.data + 4, 0, 4);
    ASSERT_EQ(rc_ring_commit(&c), 0);
}

static int try_put(rc_ring_t *r, uint32_t v)
{
    rc_ring_claim_t c;
    int rc = rc_ring_claim(r, 8, RC_REC_TYPE_USER, 0, &c);
    if (rc != 0)
        return rc;
    memcpy(c.data, &v, 4);
    memset((char *)c.data + 4, 0, 4);
    return rc_ring_commit(&c);
}

static uint32_t val(const rc_ring_view_t *v)
{
    uint32_t x;
    memcpy(&x, v->data, 4);
    return x;
}

int main(void)
{
    char name[64], err[256];
    snprintf(name, sizeof(name), "rc-test-ack-%d", (int)getpid());
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    cfg.capacity = 64 * 1024;
    cfg.flags = RC_RING_F_REPLACE;
    rc_ring_t *ring;
    ASSERT_EQ(rc_ring_create(name, &cfg, &ring, err, sizeof(err)), 0);
    rc_ring_unlink(name);

    rc_reader_t *bad;
    rc_reader_opts_t lossy = {.mode = RC_READER_LOSSY, .flags = RC_READER_F_MANUAL_ACK};
    ASSERT_EQ(rc_reader_open(ring, &lossy, &bad), -EINVAL);
    rc_reader_opts_t unknown = {.mode = RC_READER_LOSSLESS, .flags = 0x80};
    ASSERT_EQ(rc_reader_open(ring, &unknown, &bad), -EINVAL);

    rc_reader_opts_t o = {.mode = RC_READER_LOSSLESS, .start = RC_START_LATEST, .name = "trig",
                          .flags = RC_READER_F_MANUAL_ACK};
    rc_reader_t *r;
    ASSERT_EQ(rc_reader_open(ring, &o, &r), 0);
    uint64_t start = rc_reader_acked(r);
    for (uint32_t i = 1; i <= 3; i++)
        put(ring, i);
    rc_ring_view_t v[3];
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(rc_reader_poll(r, &v[i]), 0);
        ASSERT_EQ(val(&v[i]), (uint32_t)i + 1);
    }
    /* Polling does not move the slot: the producers are still held at the first record. */
    ASSERT_U64_EQ(rc_reader_acked(r), start);
    ASSERT_EQ(rc_reader_poll(r, &v[0]), RC_ERING_EMPTY);
    ASSERT_U64_EQ(rc_reader_acked(r), start);
    ASSERT_EQ(rc_reader_ack(r, v[1].pos), 0);
    ASSERT_U64_EQ(rc_reader_acked(r), v[1].pos);
    ASSERT_EQ(rc_reader_ack(r, v[0].pos), -EINVAL); /* backwards */
    ASSERT_EQ(rc_reader_ack(r, v[2].next + 8), -EINVAL); /* past the read position */
    ASSERT_EQ(rc_reader_ack(r, v[1].pos + 4), -EINVAL); /* misaligned */
    /* Resume: the next poll returns the oldest unacknowledged record again. */
    ASSERT_EQ(rc_reader_resume(r), 0);
    rc_ring_view_t w;
    ASSERT_EQ(rc_reader_poll(r, &w), 0);
    ASSERT_EQ(val(&w), 2);

    /* A lossless reader without the flag cannot ack or resume. */
    rc_reader_opts_t plain = {.mode = RC_READER_LOSSLESS, .start = RC_START_LATEST};
    rc_reader_t *p;
    ASSERT_EQ(rc_reader_open(ring, &plain, &p), 0);
    ASSERT_EQ(rc_reader_ack(p, rc_reader_position(p)), -EINVAL);
    ASSERT_EQ(rc_reader_resume(p), -EINVAL);
    rc_reader_close(p);

    /* Orphans: a live owner's slot is not one; a dead process's slot is, at its ack. */
    uint64_t pos;
    ASSERT_EQ(rc_reader_find_orphan(ring, "trig", &pos), -ENOENT);
    pid_t child = fork();
    ASSERT(child >= 0);
    if (child == 0) {
        rc_reader_opts_t co = {.mode = RC_READER_LOSSLESS, .start = RC_START_OLDEST,
                               .name = "orphan", .flags = RC_READER_F_MANUAL_ACK};
        rc_reader_t *cr;
        rc_ring_view_t cv;
        if (rc_reader_open(ring, &co, &cr) != 0 || rc_reader_poll(cr, &cv) != 0 ||
            rc_reader_poll(cr, &cv) != 0 || rc_reader_ack(cr, cv.pos) != 0)
            _exit(1);
        _exit(0); /* dies holding the slot */
    }
    int st;
    ASSERT_EQ(waitpid(child, &st, 0), child);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ASSERT_EQ(rc_reader_find_orphan(ring, "orphan", &pos), 0);
    /* The child started at the slowest cursor (record 2), read 2 and 3, acked record 3. */
    ASSERT_U64_EQ(pos, v[2].pos);
    rc_reader_opts_t ao = {.mode = RC_READER_LOSSLESS, .start = RC_START_AT, .position = pos,
                           .name = "orphan", .flags = RC_READER_F_MANUAL_ACK};
    rc_reader_t *adopted;
    ASSERT_EQ(rc_reader_open(ring, &ao, &adopted), 0);
    ASSERT_EQ(rc_reader_poll(adopted, &w), 0);
    ASSERT_EQ(val(&w), 3);
    rc_reader_close(adopted);

    /* forget: the handle goes, the slot stays (still found by name while we live: not an
     * orphan; the slot keeps gating). */
    rc_reader_forget(r);
    ASSERT_EQ(rc_reader_find_orphan(ring, "trig", &pos), -ENOENT);
    rc_ring_stats_t rs;
    rc_ring_stats(ring, &rs);
    ASSERT(rs.lossless >= 1);
    rc_ring_close(ring);

    /* Read-ahead far beyond 1/32 of the capacity (where plain lossless readers publish their
     * position lazily) still never moves a manual-ack slot: a full ring stays full until an
     * ack, and every record read ahead stays intact (a trigger's events in flight). */
    snprintf(name, sizeof(name), "rc-test-ack2-%d", (int)getpid());
    ASSERT_EQ(rc_ring_create(name, &cfg, &ring, err, sizeof(err)), 0);
    rc_ring_unlink(name);
    ASSERT_EQ(rc_reader_open(ring, &o, &r), 0);
    start = rc_reader_acked(r);
    uint32_t n = 0;
    int rc;
    while ((rc = try_put(ring, n)) == 0 && n < 100000)
        n++;
    ASSERT_EQ(rc, RC_ERING_FULL);
    ASSERT(n > 1000); /* 64 KiB of small records */
    static rc_ring_view_t ahead[100000];
    for (uint32_t i = 0; i < n; i++) {
        ASSERT_EQ(rc_reader_poll(r, &ahead[i]), 0);
        ASSERT_EQ(val(&ahead[i]), i);
    }
    ASSERT_EQ(rc_reader_poll(r, &w), RC_ERING_EMPTY);
    ASSERT_U64_EQ(rc_reader_acked(r), start);
    ASSERT_EQ(try_put(ring, 999999), RC_ERING_FULL);
    for (uint32_t i = 0; i < n; i++)
        ASSERT_EQ(val(&ahead[i]), i);
    /* Acknowledging half of them frees about half of the ring, and no more. */
    ASSERT_EQ(rc_reader_ack(r, ahead[n / 2].pos), 0);
    uint32_t m = 0;
    while (try_put(ring, n + m) == 0 && m < 100000)
        m++;
    ASSERT(m >= n / 2 - 2 && m <= n / 2 + 2);
    for (uint32_t i = n / 2; i < n; i++)
        ASSERT_EQ(val(&ahead[i]), i);
    rc_reader_close(r);
    rc_ring_close(ring);
    printf("test_reader_ack: ok\n");
    return 0;
}
