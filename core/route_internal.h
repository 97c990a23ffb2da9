/* The compiled form of a routing program, shared by core/route.c (evaluation) and
 * core/route_compile.c (compilation). Not for use outside core/. docs/filters.md describes it. */
#ifndef RC_CORE_ROUTE_INTERNAL_H
#define RC_CORE_ROUTE_INTERNAL_H

#include "core/cesql.h"
#include "core/route.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Branch targets past the last test: a test jumps to another test or to one of these. */
#define RC__PC_REJECT 0xfffffffeu
#define RC__PC_ACCEPT 0xffffffffu

enum { RC__OP_EQ = 1, RC__OP_PREFIX, RC__OP_SUFFIX, RC__OP_NONEMPTY, RC__OP_CESQL };

/* One test of the branch program: read an attribute, compare, jump to t (true) or f (false). */
typedef struct {
    uint8_t op;
    int8_t core; /* core attribute slot, -1 for an extension */
    uint16_t reserved;
    uint32_t hash;     /* extension: rc_ce_name_hash of the name */
    uint32_t name_off; /* attribute name in the pool */
    uint32_t name_len;
    uint32_t val_off; /* value in the pool; RC__OP_CESQL: index into progs */
    uint32_t val_len;
    uint32_t t, f;
    uint32_t trigger; /* whose test this is (CESQL error counters) */
} rc__route_insn_t;

/* A trigger to evaluate from a branch-program entry point (RC__PC_ACCEPT: nothing left to test). */
typedef struct {
    uint32_t trigger;
    uint32_t pc;
} rc__route_entry_t;

/* A slot of a hash index: 8 bytes, so a 10,000-key table is 256 KiB. `key` is the byte offset
 * of the key's blob in `keys` (0: empty slot; the blob area starts with 8 unused bytes). */
typedef struct {
    uint32_t tag; /* high half of the value's hash */
    uint32_t key;
} rc__route_slot_t;

/* A key blob: what a hit needs in one or two cache lines: the value to confirm the match and
 * the triggers it reaches (ascending), then the value bytes. 8-byte aligned. */
typedef struct {
    uint32_t len;   /* value length */
    uint32_t count; /* entries */
    rc__route_entry_t entry[];
    /* then `len` value bytes, padded to 8 */
} rc__route_key_t;

/* A hash index over one key attribute. */
typedef struct {
    int32_t core;
    uint32_t hash;
    uint32_t name_off, name_len;
    rc__route_slot_t *slots;
    uint32_t mask;
} rc__route_index_t;

/* The program (opaque to users as rc_route_t). */
struct rc_route_s {
    uint32_t ntriggers;
    rc__route_insn_t *insn;
    char *pool;
    rc_cesql_program_t **progs;
    rc__route_index_t *idx;
    uint32_t nidx;
    uint8_t *keys; /* key blobs of every index */
    rc__route_entry_t *generic;
    uint32_t ngeneric;
    _Atomic uint64_t *errors;
    rc_route_stats_t stats;
};

static inline uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* Eight bytes per multiply; the last word overlaps the previous one instead of a byte loop.
 * Keys come from the configuration, events only probe, so flooding a bucket is not a concern. */
static inline uint64_t value_hash(const char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    if (n >= 8) {
        const char *end = p + n;
        while (end - p > 8) {
            h = mix(h ^ load64(p), 0xbf58476d1ce4e5b9ull);
            p += 8;
        }
        h = mix(h ^ load64(end - 8), 0x94d049bb133111ebull);
    } else if (n > 0) {
        uint64_t t = 0;
        memcpy(&t, p, n);
        h = mix(h ^ t, 0x94d049bb133111ebull);
    }
    return mix(h, 0x2545f4914f6cdd1dull);
}

/* Byte equality for short strings without a libc call: overlapping words at both ends. */
static inline bool bytes_eq(const char *a, const char *b, size_t n)
{
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8)
            if (load64(a + i) != load64(b + i))
                return false;
        return load64(a + n - 8) == load64(b + n - 8);
    }
    if (n >= 4) {
        uint32_t x, y, z, w;
        memcpy(&x, a, 4);
        memcpy(&y, b, 4);
        memcpy(&z, a + n - 4, 4);
        memcpy(&w, b + n - 4, 4);
        return x == y && z == w;
    }
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

#endif
