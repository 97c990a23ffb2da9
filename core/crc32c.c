/* CRC32C two ways. The crc32 instruction (SSE4.2) takes 8 bytes per instruction; it is compiled
 * with a target attribute, so the rest of the build needs no -msse4.2, and chosen once at run
 * time with __builtin_cpu_supports. The table fallback is slicing by 8 (eight 256-entry tables,
 * 8 KiB, built once): a few times slower than the instruction, still some GB/s. */
#include "core/crc32c.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define POLY 0x82F63B78u /* 0x1EDC6F41 reflected */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
    }
}

/* Little-endian loads without alignment assumptions (memcpy compiles to one mov). */
static uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

uint32_t rc_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&table_once, table_init);
    const unsigned char *p = data;
    uint32_t c = ~crc;
    for (; len > 0 && ((uintptr_t)p & 7) != 0; len--)
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    for (; len >= 8; len -= 8, p += 8) {
        uint64_t v = load64(p) ^ c;
        c = table[7][v & 0xff] ^ table[6][(v >> 8) & 0xff] ^ table[5][(v >> 16) & 0xff] ^
            table[4][(v >> 24) & 0xff] ^ table[3][(v >> 32) & 0xff] ^ table[2][(v >> 40) & 0xff] ^
            table[1][(v >> 48) & 0xff] ^ table[0][v >> 56];
    }
    while (len-- > 0)
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    return ~c;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const void *data,
                                                            size_t len)
{
    const unsigned char *p = data;
    uint64_t c = ~crc;
    for (; len > 0 && ((uintptr_t)p & 7) != 0; len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    for (; len >= 8; len -= 8, p += 8)
        c = _mm_crc32_u64(c, load64(p));
    for (; len > 0; len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

static int have_sse42(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}
#endif

int rc_crc32c_hw(uint32_t crc, const void *data, size_t len, uint32_t *out)
{
#if defined(__x86_64__)
    if (have_sse42()) {
        *out = crc_sse42(crc, data, len);
        return 0;
    }
#endif
    (void)crc;
    (void)data;
    (void)len;
    (void)out;
    return -ENOTSUP;
}

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* Chosen on the first call; a race between two first calls stores the same pointer twice. */
static _Atomic(crc_fn) chosen;

static crc_fn choose(void)
{
    crc_fn f = atomic_load_explicit(&chosen, memory_order_acquire);
    if (f != NULL)
        return f;
    f = rc_crc32c_sw;
#if defined(__x86_64__)
    if (have_sse42())
        f = crc_sse42;
#endif
    /* Release: pairs with the acquire load above in other threads (the table fallback builds
     * its tables under pthread_once on its own). */
    atomic_store_explicit(&chosen, f, memory_order_release);
    return f;
}

uint32_t rc_crc32c(uint32_t crc, const void *data, size_t len)
{
    return choose()(crc, data, len);
}

const char *rc_crc32c_impl(void)
{
    return choose() == rc_crc32c_sw ? "table" : "sse4.2";
}
