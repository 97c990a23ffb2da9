/* The Redis Cluster key slot (net/storage/redis_cluster.c) against what a real Redis 7.0 answers
 * to CLUSTER KEYSLOT for the same keys (redis-cli -p <cluster node> CLUSTER KEYSLOT <key>),
 * hash tags included: the first '{' up to the next '}', an empty tag hashing the whole key. */
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

int main(void)
{
    check_known_slots();
    check_tags();
    printf("test_redis_keyslot: ok\n");
    return 0;
}
