/* The delivery's cursor rules (net/delivery/cursor.h): slot names, a trigger that follows its
 * feed, and settling the cursors a previous broker process left. */
#include "net/delivery/cursor.h"
#include "tests/test.h"

#include <errno.h>
#include <unistd.h>

static char prefix[32];
static char err[512];

static void cleanup(void)
{
    char path[128];
    snprintf(path, sizeof(path), "/dev/shm/%s.ns.b", prefix);
    unlink(path);
    snprintf(path, sizeof(path), "/dev/shm/%s.ns.b.cursors", prefix);
    unlink(path);
    snprintf(path, sizeof(path), "/dev/shm/%s.ns.b.timeindex", prefix);
    unlink(path);
}

static void test_names(void)
{
    char buf[RC_STORAGE_CURSOR_NAME_MAX + 1];
    ASSERT_EQ(rc_cursor_trigger_name("default", "orders", buf, sizeof(buf)), 0);
    ASSERT_STR_EQ(buf, "default/orders");
    char ns[64], name[64];
    memset(ns, 'n', 63);
    ns[63] = '\0';
    memset(name, 't', 63);
    name[63] = '\0';
    ASSERT_EQ(rc_cursor_trigger_name(ns, name, buf, sizeof(buf)), 0); /* the longest fit */
    ASSERT_EQ(rc_cursor_trigger_name(ns, name, buf, 64), -ENAMETOOLONG);
    rc_cursor_feed_name(12, buf, sizeof(buf));
    ASSERT_STR_EQ(buf, "~feed12");
}

static void test_follow_and_settle(void)
{
    rc_storage_config_t c = {.kind = RC_STORAGE_SHM,
                             .ns = "ns",
                             .broker = "b",
                             .prefix = prefix,
                             .capacity = 1 << 16,
                             .readers = 8};
    rc_storage_t *s = NULL;
    if (rc_storage_open(&c, &s, err, sizeof(err)) != 0)
        RC_TEST_FAIL("open: %s", err);
    rc_storage_cursors_t *t = NULL;
    int adopted;
    ASSERT_EQ(rc_storage_cursors_open(s, 8, &t, &adopted, err, sizeof(err)), 0);
    rc_storage_cursor_t *feed = rc_storage_cursor_take(t, "~feed0", NULL);
    rc_storage_cursor_t *busy = rc_storage_cursor_take(t, "default/busy", NULL);
    rc_storage_cursor_t *idle = rc_storage_cursor_take(t, "default/idle", NULL);
    rc_storage_cursor_t *ahead = rc_storage_cursor_take(t, "default/ahead", NULL);
    ASSERT(feed != NULL && busy != NULL && idle != NULL && ahead != NULL);
    ASSERT(!rc_cursor_is_trigger(feed) && rc_cursor_is_trigger(busy));
    uint32_t link = 1 + rc_storage_cursor_index(t, feed);

    rc_cursor_store_read(feed, 40, 4000);
    rc_cursor_store(busy, 10, 1000, 0);     /* event 10 unfinished: the feed does not count */
    rc_cursor_store(idle, 20, 2000, link);  /* idle since 20: follows the feed to 40 */
    rc_cursor_store(ahead, 50, 5000, link); /* a new worker's feed starts again below it */
    uint64_t seq, pos;
    rc_cursor_load(busy, feed, &seq, &pos);
    ASSERT_U64_EQ(seq, 10);
    ASSERT_U64_EQ(pos, 1000);
    rc_cursor_load(idle, feed, &seq, &pos);
    ASSERT_U64_EQ(seq, 40);
    ASSERT_U64_EQ(pos, 4000);
    rc_cursor_load(ahead, feed, &seq, &pos);
    ASSERT_U64_EQ(seq, 50);
    rc_cursor_load(idle, NULL, &seq, &pos);
    ASSERT_U64_EQ(seq, 20);

    /* A later broker process: the triggers hold their cursors themselves, so the feed's read
     * cursor can start again at 0 without moving anyone back. */
    rc_cursor_settle_all(t);
    rc_cursor_store_read(feed, 0, 0);
    ASSERT_EQ(atomic_load(&idle->link), 0);
    rc_cursor_load(idle, feed, &seq, &pos);
    ASSERT_U64_EQ(seq, 40);
    rc_cursor_load(busy, feed, &seq, &pos);
    ASSERT_U64_EQ(seq, 10);
    rc_cursor_load(ahead, feed, &seq, &pos);
    ASSERT_U64_EQ(seq, 50);

    /* A link that names no feed (a trigger's slot, or a free one) is no link. */
    rc_cursor_store(idle, 20, 2000, 1 + rc_storage_cursor_index(t, busy));
    rc_cursor_store(ahead, 30, 3000, 100);
    rc_cursor_settle_all(t);
    rc_cursor_load(idle, NULL, &seq, &pos);
    ASSERT_U64_EQ(seq, 20);
    rc_cursor_load(ahead, NULL, &seq, &pos);
    ASSERT_U64_EQ(seq, 30);
    rc_storage_cursors_close(t);
    rc_storage_close(s);
}

int main(void)
{
    snprintf(prefix, sizeof(prefix), "rcdc%d", (int)getpid());
    atexit(cleanup);
    test_names();
    test_follow_and_settle();
    printf("ok\n");
    return 0;
}
