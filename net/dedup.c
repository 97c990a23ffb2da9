/* The deduplication table (net/dedup.h): a FIFO of keys in the order they were accepted, and a
 * linear-probing index (at most half full) from a key to its FIFO entry. Keys leave the FIFO at
 * its front, when their window ended or when the FIFO is full, and their index slot is freed by
 * backward-shift deletion, so the index never fills with tombstones. */
#include "net/dedup.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/record.h"
#include "core/errors.h"
#include "core/validate.h"
#include "net/storage/storage.h"

typedef struct {
    uint64_t a, b;
    int64_t t; /* arrival, Unix ns */
    uint64_t ticket;
} entry_t;

struct rc_dedup_s {
    pthread_mutex_t mu;
    uint64_t window_ns;
    uint64_t seed[4];
    entry_t *fifo;
    uint64_t cap;        /* entries */
    uint64_t head, tail; /* absolute numbers: [head, tail) are held, entry n at fifo[n % cap] */
    uint32_t *index;     /* 0 empty, else 1 + the FIFO slot */
    uint64_t mask;
    _Atomic uint64_t duplicates, evicted, keys;
    _Atomic int64_t oldest;
};

/* ---- the key ---------------------------------------------------------------------------- */

/* The 64x64 -> 128-bit product folded to 64 bits: every input bit reaches every output bit. */
static inline uint64_t mum(uint64_t x, uint64_t y)
{
    unsigned __int128 p = (unsigned __int128)x * y;
    return (uint64_t)p ^ (uint64_t)(p >> 64);
}

static void absorb(uint64_t *h1, uint64_t *h2, const uint64_t *seed, rc_str_t s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t n = s.len;
    while (n > 0) {
        uint64_t w = 0;
        size_t k = n < 8 ? n : 8;
        memcpy(&w, p, k);
        *h1 = mum(*h1 ^ w, seed[2] | 1);
        *h2 = mum(*h2 ^ w ^ seed[3], 0x9e3779b97f4a7c15ull);
        p += k;
        n -= k;
    }
}

rc_dedup_key_t rc_dedup_key(const rc_dedup_t *d, rc_str_t source, rc_str_t id)
{
    uint64_t h1 = d->seed[0], h2 = d->seed[1];
    absorb(&h1, &h2, d->seed, source);
    /* The lengths end the key: ("ab", "c") and ("a", "bc") differ. */
    uint64_t lens = (uint64_t)source.len << 32 ^ (uint64_t)id.len;
    h1 = mum(h1 ^ lens, 0xd6e8feb86659fd93ull);
    absorb(&h1, &h2, d->seed, id);
    h2 = mum(h2 ^ lens, 0xa0761d6478bd642full);
    rc_dedup_key_t k = {mum(h1, h2 ^ d->seed[2]), mum(h2, h1 ^ d->seed[3])};
    return k;
}

/* ---- the table ---------------------------------------------------------------------------- */

int rc_dedup_open(uint64_t window_ns, uint64_t capacity, rc_dedup_t **out)
{
    if (window_ns == 0 || capacity > UINT32_MAX / 4)
        return -EINVAL;
    if (capacity == 0) {
        uint64_t s = window_ns / 1000000000ull;
        capacity = s * RC_DEDUP_DEFAULT_RATE;
        if (capacity < RC_DEDUP_MIN_KEYS)
            capacity = RC_DEDUP_MIN_KEYS;
        if (capacity > RC_DEDUP_DEFAULT_MAX_KEYS)
            capacity = RC_DEDUP_DEFAULT_MAX_KEYS;
    }
    uint64_t slots = 2;
    while (slots < 2 * capacity)
        slots <<= 1;
    rc_dedup_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return -ENOMEM;
    d->fifo = malloc(capacity * sizeof(*d->fifo));
    d->index = calloc(slots, sizeof(*d->index));
    if (d->fifo == NULL || d->index == NULL) {
        free(d->fifo);
        free(d->index);
        free(d);
        return -ENOMEM;
    }
    if (getrandom(d->seed, sizeof(d->seed), 0) != (ssize_t)sizeof(d->seed)) {
        /* Without the entropy pool the clock still keeps outsiders from guessing. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        d->seed[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
        d->seed[1] = mum(d->seed[0], 0xd6e8feb86659fd93ull);
        d->seed[2] = mum(d->seed[1], 0xa0761d6478bd642full);
        d->seed[3] = mum(d->seed[2], (uint64_t)(uintptr_t)d);
    }
    d->window_ns = window_ns;
    d->cap = capacity;
    d->mask = slots - 1;
    pthread_mutex_init(&d->mu, NULL);
    *out = d;
    return 0;
}

void rc_dedup_close(rc_dedup_t *d)
{
    if (d == NULL)
        return;
    pthread_mutex_destroy(&d->mu);
    free(d->fifo);
    free(d->index);
    free(d);
}

/* The index slot of `k`, or of the empty slot where it would go. */
static uint64_t probe(const rc_dedup_t *d, rc_dedup_key_t k, int *found)
{
    for (uint64_t i = k.a & d->mask;; i = (i + 1) & d->mask) {
        uint32_t v = d->index[i];
        if (v == 0) {
            *found = 0;
            return i;
        }
        const entry_t *e = &d->fifo[v - 1];
        if (e->a == k.a && e->b == k.b) {
            *found = 1;
            return i;
        }
    }
}

/* Drops the FIFO's front entry and its index slot (backward shift: every entry after it in its
 * probe run that may move back does, so lookups never meet a hole). */
static void drop_front(rc_dedup_t *d)
{
    uint32_t slot = (uint32_t)(d->head % d->cap);
    const entry_t *e = &d->fifo[slot];
    uint64_t i = e->a & d->mask;
    while (d->index[i] != slot + 1)
        i = (i + 1) & d->mask;
    for (uint64_t j = (i + 1) & d->mask; d->index[j] != 0; j = (j + 1) & d->mask) {
        uint64_t home = d->fifo[d->index[j] - 1].a & d->mask;
        /* j's entry may fill the hole at i when its home is not in (i, j] (cyclically). */
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            d->index[i] = d->index[j];
            i = j;
        }
    }
    d->index[i] = 0;
    d->head++;
}

/* Drops the keys whose window ended before `now_ns` (mu held). */
static void expire(rc_dedup_t *d, int64_t now_ns)
{
    int64_t from = now_ns - (int64_t)d->window_ns;
    while (d->head != d->tail && d->fifo[d->head % d->cap].t < from)
        drop_front(d);
}

static void publish_counts(rc_dedup_t *d)
{
    atomic_store_explicit(&d->keys, d->tail - d->head, memory_order_relaxed);
    atomic_store_explicit(&d->oldest, d->head != d->tail ? d->fifo[d->head % d->cap].t : 0,
                          memory_order_relaxed);
}

int rc_dedup_seen(rc_dedup_t *d, rc_dedup_key_t k, int64_t now_ns, uint64_t *ticket)
{
    int found = 0;
    pthread_mutex_lock(&d->mu);
    expire(d, now_ns);
    uint64_t i = probe(d, k, &found);
    /* Keys arrive about in order: one behind a younger front may have outlived its window. */
    const entry_t *e = found ? &d->fifo[d->index[i] - 1] : NULL;
    if (e != NULL && e->t < now_ns - (int64_t)d->window_ns)
        found = 0;
    if (found && ticket != NULL)
        *ticket = e->ticket;
    publish_counts(d);
    pthread_mutex_unlock(&d->mu);
    if (found)
        atomic_fetch_add_explicit(&d->duplicates, 1, memory_order_relaxed);
    return found;
}

void rc_dedup_remember(rc_dedup_t *d, rc_dedup_key_t k, int64_t arrival_ns, uint64_t ticket)
{
    int found = 0;
    pthread_mutex_lock(&d->mu);
    expire(d, arrival_ns);
    probe(d, k, &found);
    if (!found) {
        if (d->tail - d->head == d->cap) {
            drop_front(d); /* within its window still: the window that holds gets shorter */
            atomic_fetch_add_explicit(&d->evicted, 1, memory_order_relaxed);
        }
        uint32_t slot = (uint32_t)(d->tail % d->cap);
        d->fifo[slot] = (entry_t){k.a, k.b, arrival_ns, ticket};
        d->tail++;
        /* Probe again: the drop above may have moved entries of this run. */
        d->index[probe(d, k, &found)] = slot + 1;
    }
    publish_counts(d);
    pthread_mutex_unlock(&d->mu);
}

void rc_dedup_stats(rc_dedup_t *d, rc_dedup_stats_t *st)
{
    st->capacity = d->cap;
    st->keys = atomic_load_explicit(&d->keys, memory_order_relaxed);
    st->duplicates = atomic_load_explicit(&d->duplicates, memory_order_relaxed);
    st->evicted = atomic_load_explicit(&d->evicted, memory_order_relaxed);
    st->oldest_ns = atomic_load_explicit(&d->oldest, memory_order_relaxed);
    st->window_ns = d->window_ns;
}

void rc_dedup_add_duplicates(rc_dedup_t *d, uint64_t n)
{
    atomic_fetch_add_explicit(&d->duplicates, n, memory_order_relaxed);
}

/* The arrival of a stored event (its knativearrivaltime), Unix ns, or -1. */
static int64_t arrival_of(const rc_record_view_t *v)
{
    rc_ce_value_t val;
    int64_t sec = 0;
    uint32_t nsec = 0;
    if (rc_record_get(v, (rc_str_t){"knativearrivaltime", 18}, &val) != 0 ||
        rc_ce_time_parse(val.value, &sec, &nsec) != 0)
        return -1;
    return sec * 1000000000ll + nsec;
}

int rc_dedup_load(rc_dedup_t *d, struct rc_storage_s *s, int64_t now_ns, uint64_t *loaded)
{
    int64_t from = now_ns - (int64_t)d->window_ns;
    /* The time index finds where the window starts: a long ring is not read from its oldest. */
    rc_storage_seek_t sk;
    *loaded = 0;
    int rc = rc_storage_seek_time(s, from, &sk);
    if (rc == 0 && !sk.found)
        return 0; /* nothing arrived within the window */
    rc_storage_reader_opts_t o = {.name = "dedup-load", .start = RC_STORAGE_FROM_OLDEST};
    if (rc == 0) {
        o.start = RC_STORAGE_FROM_AT;
        o.position = sk.pos;
    }
    rc_storage_reader_t *r = NULL;
    rc = rc_storage_reader_open(s, &o, &r);
    if (rc == RC_ERING_BAD_POS) { /* overwritten meanwhile: from the oldest then */
        o.start = RC_STORAGE_FROM_OLDEST;
        rc = rc_storage_reader_open(s, &o, &r);
    }
    if (rc != 0)
        return rc;
    rc_storage_view_t v;
    while (rc_storage_poll(r, &v) == 0) {
        rc_record_view_t rv; /* a store's reader returns the record without a trailer */
        if (rc_record_decode(v.data, v.len, &rv) != 0)
            continue;
        int64_t t = arrival_of(&rv);
        if (t < from)
            continue;
        rc_dedup_remember(d, rc_dedup_key(d, rc_record_attr(&rv, RC_CE_ATTR_SOURCE),
                                          rc_record_attr(&rv, RC_CE_ATTR_ID)),
                          t, 0);
        (*loaded)++;
    }
    rc_storage_reader_close(r);
    return 0;
}
