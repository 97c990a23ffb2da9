/* A store's table of saved cursors (net/storage/storage.h): slots taken, found, walked and
 * dropped by name; the table kept for the next process of the same ring and emptied for a ring
 * that replaced it or for cursors past the ring's head; a table another user could have written
 * refused. Over the shm back end, in /dev/shm under a name unique to this process. */
#include "net/storage/storage.h"
#include "tests/test.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLOTS 8

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

static rc_storage_t *open_store(uint64_t capacity)
{
    rc_storage_config_t c = {.kind = RC_STORAGE_SHM,
                             .ns = "ns",
                             .broker = "b",
                             .prefix = prefix,
                             .capacity = capacity,
                             .readers = 8};
    rc_storage_t *s = NULL;
    int rc = rc_storage_open(&c, &s, err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("open: %d %s", rc, err);
    return s;
}

static rc_storage_cursors_t *open_table(rc_storage_t *s, int want_adopted)
{
    rc_storage_cursors_t *t = NULL;
    int adopted = -1;
    int rc = rc_storage_cursors_open(s, SLOTS, &t, &adopted, err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("cursors_open: %d %s", rc, err);
    ASSERT_EQ(adopted, want_adopted);
    return t;
}

static void append(rc_storage_t *s, int n)
{
    for (int i = 0; i < n; i++) {
        rc_storage_rec_t rec = {.len = 8};
        rc_storage_claim_t claim;
        ASSERT_EQ(rc_storage_claim(s, &rec, 1, &claim), 0);
        memset(rec.data, 'x', 8);
        ASSERT_EQ(rc_storage_commit(s, &claim), 0);
    }
}

static int count(rc_storage_cursors_t *t)
{
    int n = 0;
    for (rc_storage_cursor_t *c = rc_storage_cursor_next(t, NULL); c != NULL;
         c = rc_storage_cursor_next(t, c))
        n++;
    return n;
}

static void test_take_find_drop(void)
{
    rc_storage_t *s = open_store(1 << 16);
    rc_storage_cursors_t *t = open_table(s, 0);
    ASSERT_EQ(count(t), 0);
    int fresh = -1;
    rc_storage_cursor_t *a = rc_storage_cursor_take(t, "default/a", &fresh);
    ASSERT(a != NULL);
    ASSERT_EQ(fresh, 1);
    ASSERT_U64_EQ(atomic_load(&a->seq), 0);
    ASSERT_EQ(atomic_load(&a->link), 0);
    rc_storage_cursor_t *b = rc_storage_cursor_take(t, "default/b", NULL);
    ASSERT(b != NULL && b != a);
    ASSERT(rc_storage_cursor_take(t, "default/a", &fresh) == a);
    ASSERT_EQ(fresh, 0);
    ASSERT(rc_storage_cursor_find(t, "default/b") == b);
    ASSERT(rc_storage_cursor_find(t, "default/c") == NULL);
    ASSERT(rc_storage_cursor_at(t, rc_storage_cursor_index(t, b)) == b);
    ASSERT_EQ(count(t), 2);

    rc_storage_cursor_drop(t, a);
    ASSERT(rc_storage_cursor_find(t, "default/a") == NULL);
    ASSERT(rc_storage_cursor_at(t, rc_storage_cursor_index(t, a)) == NULL);
    ASSERT(rc_storage_cursor_find(t, "default/b") == b);
    ASSERT_EQ(count(t), 1);
    /* The freed slot is taken again, and a name dropped can come back. */
    ASSERT(rc_storage_cursor_take(t, "default/c", &fresh) == a);
    ASSERT_EQ(fresh, 1);
    ASSERT(rc_storage_cursor_find(t, "default/c") == a);

    char name[RC_STORAGE_CURSOR_NAME_MAX + 2];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    ASSERT(rc_storage_cursor_take(t, name, NULL) == NULL); /* one too long */
    name[RC_STORAGE_CURSOR_NAME_MAX] = '\0';
    rc_storage_cursor_t *longest = rc_storage_cursor_take(t, name, NULL);
    ASSERT(longest != NULL);
    ASSERT(rc_storage_cursor_find(t, name) == longest);
    ASSERT(rc_storage_cursor_take(t, "", NULL) == NULL);

    for (int i = count(t); i < SLOTS; i++) {
        char n[16];
        snprintf(n, sizeof(n), "x/%d", i);
        ASSERT(rc_storage_cursor_take(t, n, NULL) != NULL);
    }
    ASSERT(rc_storage_cursor_take(t, "x/full", NULL) == NULL);
    ASSERT(rc_storage_cursor_take(t, "default/b", NULL) == b); /* found, even when full */
    rc_storage_cursors_close(t);
    rc_storage_close(s);
    cleanup();
}

/* Many names taken and dropped over a table's life (reloads that rename triggers) never fill
 * its index with the traces of dropped ones. */
static void test_churn(void)
{
    rc_storage_t *s = open_store(1 << 16);
    rc_storage_cursors_t *t = open_table(s, 0);
    rc_storage_cursor_t *keep = rc_storage_cursor_take(t, "default/keep", NULL);
    for (int i = 0; i < 10000; i++) {
        char n[32];
        snprintf(n, sizeof(n), "churn/%d", i);
        rc_storage_cursor_t *c = rc_storage_cursor_take(t, n, NULL);
        ASSERT(c != NULL);
        ASSERT(rc_storage_cursor_find(t, "default/nothere") == NULL);
        rc_storage_cursor_drop(t, c);
    }
    ASSERT(rc_storage_cursor_find(t, "default/keep") == keep);
    ASSERT_EQ(count(t), 1);
    rc_storage_cursors_close(t);
    rc_storage_close(s);
    cleanup();
}

static void test_kept_for_the_same_ring(void)
{
    rc_storage_t *s = open_store(1 << 16);
    append(s, 5);
    rc_storage_cursors_t *t = open_table(s, 0);
    rc_storage_cursor_t *a = rc_storage_cursor_take(t, "default/a", NULL);
    atomic_store(&a->seq, 3);
    atomic_store(&a->pos, 96);
    atomic_store(&a->link, 2);
    rc_storage_cursor_take(t, "default/b", NULL);
    rc_storage_cursor_drop(t, rc_storage_cursor_find(t, "default/b"));
    rc_storage_cursors_close(t);
    rc_storage_close(s);

    s = open_store(1 << 16); /* attaches: the same ring */
    t = open_table(s, 1);
    ASSERT_EQ(count(t), 1);
    a = rc_storage_cursor_find(t, "default/a");
    ASSERT(a != NULL);
    ASSERT_U64_EQ(atomic_load(&a->seq), 3);
    ASSERT_U64_EQ(atomic_load(&a->pos), 96);
    ASSERT_EQ(atomic_load(&a->link), 2);
    ASSERT(rc_storage_cursor_find(t, "default/b") == NULL);

    /* A cursor past the head cannot be this ring's: the whole table goes. */
    atomic_store(&a->seq, 6);
    rc_storage_cursors_close(t);
    t = open_table(s, 0);
    ASSERT_EQ(count(t), 0);
    rc_storage_cursors_close(t);
    rc_storage_close(s);
    cleanup();
}

static void test_emptied_for_a_replaced_ring(void)
{
    rc_storage_t *s = open_store(1 << 16);
    append(s, 5);
    rc_storage_cursors_t *t = open_table(s, 0);
    atomic_store(&rc_storage_cursor_take(t, "default/a", NULL)->seq, 0);
    rc_storage_cursors_close(t);
    rc_storage_close(s);

    s = open_store(1 << 17); /* another size: the ring is replaced */
    t = open_table(s, 0);
    ASSERT_EQ(count(t), 0);
    rc_storage_cursors_close(t);
    rc_storage_close(s);
    cleanup();
}

static void test_refused_when_others_may_write(void)
{
    rc_storage_t *s = open_store(1 << 16);
    rc_storage_cursors_t *t = open_table(s, 0);
    rc_storage_cursors_close(t);
    char path[128];
    snprintf(path, sizeof(path), "/dev/shm/%s.ns.b.cursors", prefix);
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT_EQ(chmod(path, 0620), 0);
    int adopted;
    ASSERT_EQ(rc_storage_cursors_open(s, SLOTS, &t, &adopted, err, sizeof(err)), -EPERM);
    ASSERT(strstr(err, path) != NULL && strstr(err, "chmod 600") != NULL);
    ASSERT_EQ(chmod(path, 0600), 0);
    t = open_table(s, 1);
    rc_storage_cursors_close(t);
    rc_storage_close(s);
    cleanup();
}

int main(void)
{
    snprintf(prefix, sizeof(prefix), "rctc%d", (int)getpid());
    atexit(cleanup);
    test_take_find_drop();
    test_churn();
    test_kept_for_the_same_ring();
    test_emptied_for_a_replaced_ring();
    test_refused_when_others_may_write();
    printf("ok\n");
    return 0;
}
