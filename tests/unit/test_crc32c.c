/* CRC32C: known vectors (RFC 3720 appendix B.4 and the usual check value), chaining, and the
 * crc32 instruction agreeing with the table on random data at every alignment and length. */
#include "core/crc32c.h"
#include "tests/test.h"

#include <errno.h>
#include <stdint.h>

typedef struct {
    const char *what;
    unsigned char data[64];
    size_t len;
    uint32_t crc;
} vector_t;

static void fill_vectors(vector_t *v, size_t *n)
{
    size_t k = 0;
    v[k] = (vector_t){.what = "empty", .len = 0, .crc = 0x00000000u};
    k++;
    v[k] = (vector_t){.what = "\"123456789\"", .len = 9, .crc = 0xE3069283u};
    memcpy(v[k].data, "123456789", 9);
    k++;
    v[k] = (vector_t){.what = "32 zeros", .len = 32, .crc = 0x8A9136AAu};
    k++;
    v[k] = (vector_t){.what = "32 x 0xff", .len = 32, .crc = 0x62A8AB43u};
    memset(v[k].data, 0xff, 32);
    k++;
    v[k] = (vector_t){.what = "0..31", .len = 32, .crc = 0x46DD794Eu};
    for (int i = 0; i < 32; i++)
        v[k].data[i] = (unsigned char)i;
    k++;
    v[k] = (vector_t){.what = "31..0", .len = 32, .crc = 0x113FDB5Cu};
    for (int i = 0; i < 32; i++)
        v[k].data[i] = (unsigned char)(31 - i);
    k++;
    /* RFC 3720 B.4: an iSCSI read command PDU. */
    static const unsigned char pdu[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    v[k] = (vector_t){.what = "iSCSI read PDU", .len = 48, .crc = 0xD9963A56u};
    memcpy(v[k].data, pdu, 48);
    k++;
    *n = k;
}

static void check_vectors(void)
{
    vector_t v[8];
    size_t n;
    fill_vectors(v, &n);
    for (size_t i = 0; i < n; i++) {
        uint32_t sw = rc_crc32c_sw(0, v[i].data, v[i].len);
        uint32_t any = rc_crc32c(0, v[i].data, v[i].len);
        if (sw != v[i].crc || any != v[i].crc)
            RC_TEST_FAIL("%s: table %08x, rc_crc32c %08x, expected %08x", v[i].what, sw, any,
                         v[i].crc);
        uint32_t hw = 0;
        if (rc_crc32c_hw(0, v[i].data, v[i].len, &hw) == 0 && hw != v[i].crc)
            RC_TEST_FAIL("%s: crc32 instruction %08x, expected %08x", v[i].what, hw, v[i].crc);
    }
}

/* A checksum computed in pieces equals the one over the whole. */
static void check_chaining(void)
{
    const char *s = "123456789";
    for (size_t cut = 0; cut <= 9; cut++) {
        uint32_t c = rc_crc32c(rc_crc32c(0, s, cut), s + cut, 9 - cut);
        ASSERT_EQ(c, 0xE3069283u);
        c = rc_crc32c_sw(rc_crc32c_sw(0, s, cut), s + cut, 9 - cut);
        ASSERT_EQ(c, 0xE3069283u);
    }
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Random buffers, lengths 0..4100 and every start alignment: both paths give the same value,
 * and one flipped bit always changes it (a CRC detects every single-bit error). */
static void check_hw_matches_sw(void)
{
    static unsigned char buf[4200];
    uint32_t probe;
    int have_hw = rc_crc32c_hw(0, buf, 1, &probe) == 0;
    for (int round = 0; round < 3000; round++) {
        size_t off = next_rand() % 8;
        size_t len = next_rand() % 4100;
        for (size_t i = 0; i < off + len; i++)
            buf[i] = (unsigned char)next_rand();
        uint32_t seed = (uint32_t)next_rand();
        uint32_t sw = rc_crc32c_sw(seed, buf + off, len);
        uint32_t any = rc_crc32c(seed, buf + off, len);
        if (sw != any)
            RC_TEST_FAIL("len %zu off %zu: table %08x, rc_crc32c (%s) %08x", len, off, sw,
                         rc_crc32c_impl(), any);
        if (have_hw) {
            uint32_t hw = 0;
            ASSERT_EQ(rc_crc32c_hw(seed, buf + off, len, &hw), 0);
            if (hw != sw)
                RC_TEST_FAIL("len %zu off %zu: table %08x, instruction %08x", len, off, sw, hw);
        }
        if (len > 0) {
            size_t bit = next_rand() % (len * 8);
            buf[off + bit / 8] ^= (unsigned char)(1u << (bit % 8));
            ASSERT_NE(rc_crc32c(seed, buf + off, len), sw);
        }
    }
    if (have_hw)
        ASSERT_STR_EQ(rc_crc32c_impl(), "sse4.2");
    else
        ASSERT_STR_EQ(rc_crc32c_impl(), "table");
    printf("crc32c: %s (instruction %s)\n", rc_crc32c_impl(), have_hw ? "compared" : "absent");
}

int main(void)
{
    check_vectors();
    check_chaining();
    check_hw_matches_sw();
    printf("test_crc32c: ok\n");
    return 0;
}
