/* The Redis Cluster key slot (net/storage/redis_cluster.c) against what a real Redis 7.0 answers
 * to CLUSTER KEYSLOT for the same keys (redis-cli -p <cluster node> CLUSTER KEYSLOT <key>),
 * hash tags included: the first '{' up to the next '}', an empty tag hashing the whole key;
 * and the reading of MOVED and ASK answers, malformed ones included. */
#include "net/storage/redis_cluster.h"
#include "tests/test.h"

#include <string.h>

static void check_known_slots(void)
{
    static const struct {
        const char *key;
        uint16_t slot;
    } known[] = {
        {"123456789", 12739}, /* the CRC16 check value 0x31C3, mod 16384 */
        {"foo", 12182},
        {"bar", 5061},
        {"", 0},
        {"{user1000}.following", 3443},
        {"foo{}{bar}", 8363},    /* empty first tag: the whole key */
        {"foo{{bar}}zap", 4015}, /* the tag is "{bar" */
        {"{bar", 4015},
        {"foo{bar}{zap}", 5061}, /* the first tag only: "bar" */
        {"a{b}c", 3300},
        {"}{", 12793}, /* a '}' before the '{' is no tag */
        {"ringcast:{default/default/0}", 11565},
        {"ringcast:{default/default/1}", 15628},
        {"ringcast:{ns/b/63}", 4333},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        uint16_t got = rc_redis_keyslot(known[i].key, strlen(known[i].key));
        if (got != known[i].slot)
            RC_TEST_FAIL("CLUSTER KEYSLOT '%s': Redis says %u, rc_redis_keyslot %u", known[i].key,
                         known[i].slot, got);
    }
}

/* Keys that share a tag share a slot whatever surrounds it; every slot is below 16384. */
static void check_tags(void)
{
    char a[64], b[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(a, sizeof(a), "x%d{tag-%d}y", i, i % 7);
        snprintf(b, sizeof(b), "{tag-%d}%d", i % 7, i * 31);
        ASSERT_EQ(rc_redis_keyslot(a, strlen(a)), rc_redis_keyslot(b, strlen(b)));
        ASSERT_LT(rc_redis_keyslot(a, strlen(a)), RC_REDIS_CLUSTER_SLOTS);
    }
    /* The length is the key's: bytes after it do not count, a NUL inside does. */
    ASSERT_EQ(rc_redis_keyslot("foo-and-more", 3), 12182);
    ASSERT_NE(rc_redis_keyslot("foo\0x", 5), 12182);
}

/* MOVED and ASK answers, as Redis 7 writes them, and what is not one. */
static void check_redirects(void)
{
    char host[64];
    int slot = -1, port = -1;
    ASSERT_EQ(
        rc_redis_parse_redirect("MOVED 3999 127.0.0.1:6381", &slot, host, sizeof(host), &port), 1);
    ASSERT_EQ(slot, 3999);
    ASSERT_STR_EQ(host, "127.0.0.1");
    ASSERT_EQ(port, 6381);
    ASSERT_EQ(
        rc_redis_parse_redirect("ASK 16383 redis-b.example:7002", &slot, host, sizeof(host), &port),
        2);
    ASSERT_EQ(slot, 16383);
    ASSERT_STR_EQ(host, "redis-b.example");
    ASSERT_EQ(rc_redis_parse_redirect("MOVED 0 [::1]:7000", &slot, host, sizeof(host), &port), 1);
    ASSERT_STR_EQ(host, "::1");
    ASSERT_EQ(port, 7000);
    ASSERT_EQ(rc_redis_parse_redirect("MOVED 12 ::1:7000", &slot, host, sizeof(host), &port), 1);
    ASSERT_STR_EQ(host, "::1");
    /* An empty host: the node that answered (unknown-endpoint). */
    ASSERT_EQ(rc_redis_parse_redirect("MOVED 5 :7001", &slot, host, sizeof(host), &port), 1);
    ASSERT_STR_EQ(host, "");
    ASSERT_EQ(port, 7001);
    static const char *bad[] = {
        "CLUSTERDOWN The cluster is down",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "MOVED",
        "MOVED ",
        "MOVED 3999",
        "MOVED 3999 ",
        "MOVED 3999 127.0.0.1",
        "MOVED 3999 127.0.0.1:",
        "MOVED 3999 127.0.0.1:0",
        "MOVED 3999 127.0.0.1:65536",
        "MOVED 3999 127.0.0.1:63x",
        "MOVED 16384 127.0.0.1:6381",
        "MOVED -1 127.0.0.1:6381",
        "MOVED x 127.0.0.1:6381",
        "MOVED 3999  127.0.0.1:6381",
        "ASK 3999 127.0.0.1:6381 extra",
        "moved 3999 127.0.0.1:6381",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rc_redis_parse_redirect(bad[i], &slot, host, sizeof(host), &port) != 0)
            RC_TEST_FAIL("'%s' read as a redirect", bad[i]);
    /* A host longer than the caller's buffer is refused, not cut. */
    char tiny[4];
    ASSERT_EQ(rc_redis_parse_redirect("ASK 1 abcdef:1", &slot, tiny, sizeof(tiny), &port), 0);
}

int main(void)
{
    check_known_slots();
    check_tags();
    check_redirects();
    printf("test_redis_keyslot: ok\n");
    return 0;
}
