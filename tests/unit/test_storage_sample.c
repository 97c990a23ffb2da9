/* The admin's lossy looks at a store (net/storage/storage_shm.c): rc_storage_scan and
 * rc_storage_read_at over a memory and a file store. A scan returns the events in order with
 * their positions (a file store's checksum checked, its trailer left out), stops at `max`, when
 * the callback says so, and at the head it saw when it started; rc_storage_read_at copies one
 * event by position and sequence number and refuses a wrong sequence number, a position inside
 * a record, one past the head, a small buffer (-ENOBUFS with the size), an unaligned one; after
 * producers lapped the ring (no cursor holds them) the first event is gone (-ENOENT) and a scan
 * starts at the oldest still held. Neither leaves a reader behind nor holds producers. Files
 * under /tmp and shm objects unique to this process. */
#include "core/arena.h"
#include "core/errors.h"
#include "core/event.h"
#include "core/record.h"
#include "net/storage/publish.h"
#include "net/storage/storage.h"
#include "tests/test.h"
#include "tests/unit/storage_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[128];

static rc_storage_t *open_store(rc_storage_kind_t kind)
{
    return su_open_store(kind, dir, "rcsa");
}

#define MAXSEEN 4096

typedef struct {
    uint64_t pos[MAXSEEN], seq[MAXSEEN];
    char id[MAXSEEN][16];
    size_t n, stop_after;
} seen_t;

static int collect(void *arg, const rc_storage_view_t *v)
{
    seen_t *s = arg;
    rc_record_view_t rv;
    if (v->len % 8 != 0 || rc_record_decode(v->data, v->len, &rv) != 0)
        RC_TEST_FAIL("a scanned event at %llu does not decode (len %u)",
                     (unsigned long long)v->pos, v->len);
    rc_str_t id = rc_record_attr(&rv, RC_CE_ATTR_ID);
    if (s->n < MAXSEEN) {
        s->pos[s->n] = v->pos;
        s->seq[s->n] = v->seq;
        snprintf(s->id[s->n], sizeof(s->id[0]), "%.*s", (int)id.len, id.ptr);
    }
    s->n++;
    return s->stop_after != 0 && s->n >= s->stop_after;
}

static void test_store(rc_storage_kind_t kind)
{
    rc_storage_t *s = open_store(kind);
    static seen_t seen;
    rc_storage_scan_t st;
    memset(&seen, 0, sizeof(seen));
    ASSERT_EQ(rc_storage_scan(s, INT64_MIN, 100, collect, &seen, &st), 0); /* empty */
    ASSERT_EQ(seen.n, 0);
    ASSERT_EQ(st.from_oldest, 1);
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "e%d", i);
        su_publish(s, id, 0);
    }
    ASSERT_EQ(rc_storage_scan(s, INT64_MIN, 100, collect, &seen, &st), 0);
    ASSERT_EQ(seen.n, 10);
    ASSERT_U64_EQ(st.scanned, 10);
    ASSERT_U64_EQ(st.head_seq, 10);
    ASSERT_U64_EQ(st.lost, 0);
    for (size_t i = 0; i < 10; i++) {
        char want[16];
        snprintf(want, sizeof(want), "e%zu", i);
        ASSERT(strcmp(seen.id[i], want) == 0);
        ASSERT_U64_EQ(seen.seq[i], i);
    }
    memset(&seen, 0, sizeof(seen));
    ASSERT_EQ(rc_storage_scan(s, INT64_MIN, 3, collect, &seen, &st), 0); /* max */
    ASSERT_EQ(seen.n, 3);
    memset(&seen, 0, sizeof(seen));
    seen.stop_after = 2;
    ASSERT_EQ(rc_storage_scan(s, INT64_MIN, 100, collect, &seen, &st), 0); /* stopped */
    ASSERT_EQ(seen.n, 2);
    ASSERT_EQ(rc_storage_scan(s, INT64_MIN, 100, NULL, &seen, &st), -EINVAL);

    /* One event by position: its bytes, and the refusals. */
    uint64_t pos = seen.pos[1];
    _Alignas(8) unsigned char buf[4096];
    size_t len = 0;
    ASSERT_EQ(rc_storage_read_at(s, pos, 1, buf, sizeof(buf), &len), 0);
    rc_record_view_t rv;
    ASSERT_EQ(rc_record_decode(buf, len, &rv), 0);
    rc_str_t id = rc_record_attr(&rv, RC_CE_ATTR_ID);
    ASSERT(id.len == 2 && memcmp(id.ptr, "e1", 2) == 0);
    ASSERT_EQ(rc_storage_read_at(s, pos, 2, buf, sizeof(buf), &len), -ENOENT); /* wrong seq */
    ASSERT_EQ(rc_storage_read_at(s, pos + 8, 1, buf, sizeof(buf), &len), -ENOENT); /* inside */
    rc_storage_stats_t ss;
    rc_storage_stats(s, &ss);
    ASSERT_EQ(rc_storage_read_at(s, ss.head, 10, buf, sizeof(buf), &len), -ENOENT); /* head */
    ASSERT_EQ(rc_storage_read_at(s, ss.head + 4096, 10, buf, sizeof(buf), &len), -ENOENT);
    size_t need = 0;
    ASSERT_EQ(rc_storage_read_at(s, pos, 1, buf, 8, &need), -ENOBUFS);
    ASSERT_EQ(need, len);
    ASSERT_EQ(rc_storage_read_at(s, pos, 1, buf + 1, sizeof(buf) - 8, &len), -EINVAL);

    /* Producers lap the ring (no cursor holds them back): the first events are gone. */
    uint64_t first = seen.pos[0];
    for (int i = 0; i < 3000; i++) {
        char lid[16];
        snprintf(lid, sizeof(lid), "l%d", i);
        su_publish(s, lid, 0);
    }
    ASSERT_EQ(rc_storage_read_at(s, first, 0, buf, sizeof(buf), &len), -ENOENT);
    memset(&seen, 0, sizeof(seen));
    ASSERT_EQ(rc_storage_scan(s, INT64_MIN, MAXSEEN, collect, &seen, &st), 0);
    ASSERT_EQ(st.from_oldest, 1);
    ASSERT_GT(seen.n, 10);
    ASSERT_LT(seen.n, 3010);
    ASSERT_GT(seen.seq[0], 10);                          /* the oldest still held */
    ASSERT_U64_EQ(seen.seq[seen.n - 1], st.head_seq - 1); /* to the head */
    ASSERT(strcmp(seen.id[seen.n - 1], "l2999") == 0);
    /* From a recent time: the time index's sample (or the oldest), never past the head. */
    memset(&seen, 0, sizeof(seen));
    ASSERT_EQ(rc_storage_scan(s, INT64_MAX, MAXSEEN, collect, &seen, &st), 0);
    ASSERT_LE(seen.n, 3010);
    rc_storage_stats(s, &ss);
    ASSERT_EQ(ss.readers, 0); /* no reader left behind */
    rc_storage_close(s);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/rc-sample-%d", (int)getpid());
    ASSERT_EQ(mkdir(dir, 0700), 0);
    test_store(RC_STORAGE_SHM);
    test_store(RC_STORAGE_FILE);
    char p[300];
    snprintf(p, sizeof(p), "/rcsa%d.ns.b", (int)getpid());
    shm_unlink(p);
    snprintf(p, sizeof(p), "/rcsa%d.ns.b.timeindex", (int)getpid());
    shm_unlink(p);
    snprintf(p, sizeof(p), "/rcsa%d.ns.b.cursors", (int)getpid());
    shm_unlink(p);
    const char *files[] = {"ns.b.ring", "ns.b.cursors", "ns.b.timeindex"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    printf("test_storage_sample: ok\n");
    return 0;
}
