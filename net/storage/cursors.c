/* A store's table of saved cursors (storage.h, "saved cursors"), in a mapping the back end opens
 * (the shm back end: a shm object beside the ring). The layout is a 64-byte header, then the
 * slots, 192 bytes each (seq, pos and link on a cache line of their own, so two workers'
 * triggers never share one, then the name):
 *
 *   header: magic, version (release-stored last: 0 = not ready), slot count, the identity of the
 *           store the cursors belong to, and `hi`, the number of slots ever named, so a walk
 *           and a reset touch only those pages.
 *   slot:   free while name[0] is 0.
 *
 * Only one process changes the table's shape (takes, drops, resets), the broker's supervisor,
 * while no worker uses a slot; so the shape needs no atomics, only an order that a crash at
 * any point leaves readable: a slot is named before its first name byte is set, and freed by
 * clearing that byte first; a reset clears `version` first. The process-local handle keeps an
 * index from names to slots (open addressing), so matching 10,000 triggers against the table
 * is linear, not quadratic. */
#include "net/storage/storage_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

#define TABLE_MAGIC   0x0073726f73727563ull /* "cursors" in little-endian ASCII */
#define TABLE_VERSION 1u
#define INDEX_TOMB    UINT32_MAX

typedef struct {
    _Atomic uint64_t magic;
    _Atomic uint32_t version; /* written last by whoever initialises or resets the table */
    uint32_t slots;
    uint64_t store_id; /* the store the cursors belong to (the shm ring's rc_ring_id) */
    uint32_t hi;       /* slots [0, hi) may be named */
    uint8_t pad_[36];
} table_hdr_t;

_Static_assert(sizeof(table_hdr_t) == 64, "the header is one cache line");
_Static_assert(sizeof(rc_storage_cursor_t) == 192, "a slot is three cache lines");
_Static_assert(offsetof(rc_storage_cursor_t, name) == 64, "the name after the cursor's line");

struct rc_storage_cursors_s {
    table_hdr_t *hdr;
    rc_storage_cursor_t *slot; /* right after the header */
    size_t map_bytes;
    uint32_t nslots;
    uint32_t *index; /* 0 empty, INDEX_TOMB dropped, else 1 + slot */
    uint32_t index_mask;
    uint32_t index_used; /* entries not empty (tombstones too): kept under 3/4 */
    uint32_t free_from;  /* every slot below it is named: a take looks from here */
    char what[128];      /* for messages */
};

static size_t table_bytes(uint32_t slots)
{
    return sizeof(table_hdr_t) + (size_t)slots * sizeof(rc_storage_cursor_t);
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* The index entry where `name` is, or where it would go (the first tombstone on its probe
 * path, else the empty entry that ends it). */
static uint32_t *index_probe(rc_storage_cursors_t *t, const char *name, int *found)
{
    uint32_t *tomb = NULL;
    for (uint32_t i = (uint32_t)name_hash(name) & t->index_mask;; i = (i + 1) & t->index_mask) {
        uint32_t v = t->index[i];
        if (v == 0) {
            *found = 0;
            return tomb != NULL ? tomb : &t->index[i];
        }
        if (v == INDEX_TOMB) {
            if (tomb == NULL)
                tomb = &t->index[i];
        } else if (strcmp(t->slot[v - 1].name, name) == 0) {
            *found = 1;
            return &t->index[i];
        }
    }
}

static void index_build(rc_storage_cursors_t *t)
{
    t->free_from = 0;
    t->index_used = 0;
    memset(t->index, 0, ((size_t)t->index_mask + 1) * sizeof(*t->index));
    for (uint32_t i = 0; i < t->hdr->hi; i++) {
        if (t->slot[i].name[0] == '\0')
            continue;
        int found;
        uint32_t *e = index_probe(t, t->slot[i].name, &found);
        if (found) {
            /* Two slots of one name can only come from a crash between taking a slot and
             * writing its name; the first keeps it. */
            memset(t->slot[i].name, 0, sizeof(t->slot[i].name));
            continue;
        }
        *e = i + 1;
        t->index_used++;
    }
}

/* Empties the table and gives it to the store `store_id`. `version` goes first and comes back
 * last, so a crash in between leaves a table the next open resets again. */
static void reset(rc_storage_cursors_t *t, uint64_t store_id)
{
    table_hdr_t *h = t->hdr;
    atomic_store_explicit(&h->version, 0, memory_order_relaxed);
    uint32_t hi = h->hi <= t->nslots ? h->hi : t->nslots;
    memset(t->slot, 0, (size_t)hi * sizeof(*t->slot));
    h->slots = t->nslots;
    h->store_id = store_id;
    h->hi = 0;
    atomic_store_explicit(&h->magic, TABLE_MAGIC, memory_order_relaxed);
    /* Release: pairs with the acquire load in rc__cursors_map of a later process; the header
     * and the cleared slots are in place before the table reads as ready. */
    atomic_store_explicit(&h->version, TABLE_VERSION, memory_order_release);
    index_build(t);
}

void rc__cursors_reset(rc_storage_cursors_t *t, const char *why)
{
    rc_log_warn("storage", "%s: saved cursors dropped (%s)", t->what, why);
    reset(t, t->hdr->store_id);
}

/* A table anyone but this user could have written (made first, or opened up) is not trusted:
 * it could make triggers skip events. */
static int check_owner(int fd, const char *what, struct stat *st, char *err, size_t errlen)
{
    if (fstat(fd, st) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", what, strerror(e));
        return -e;
    }
    if (st->st_uid != geteuid()) {
        snprintf(err, errlen,
                 "%s belongs to uid %u, not to this user (uid %u); remove it (a broker keeps its "
                 "saved cursors there) or run as its owner",
                 what, (unsigned)st->st_uid, (unsigned)geteuid());
        return -EPERM;
    }
    if ((st->st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "%s has mode %04o: other users may change the saved cursors; remove it or "
                 "chmod 600 it",
                 what, (unsigned)(st->st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

int rc__cursors_map(int fd, const char *what, uint64_t store_id, uint32_t slots,
                    rc_storage_cursors_t **out, int *adopted, char *err, size_t errlen)
{
    struct stat st;
    int rc = check_owner(fd, what, &st, err, errlen);
    if (rc != 0)
        return rc;
    size_t bytes = table_bytes(slots);
    int sized = (uint64_t)st.st_size == bytes;
    if (!sized && ftruncate(fd, (off_t)bytes) != 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot size it: %s", what, strerror(-rc));
        return rc;
    }
    rc_storage_cursors_t *t = calloc(1, sizeof(*t));
    uint32_t icap = 1;
    while (icap < 2 * slots)
        icap <<= 1;
    uint32_t *index = calloc(icap, sizeof(*index));
    void *p = MAP_FAILED;
    if (t == NULL || index == NULL) {
        rc = -ENOMEM;
        snprintf(err, errlen, "%s: out of memory", what);
        goto fail;
    }
    p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot map it: %s", what, strerror(-rc));
        goto fail;
    }
    t->hdr = p;
    t->slot = (rc_storage_cursor_t *)(void *)((char *)p + sizeof(table_hdr_t));
    t->map_bytes = bytes;
    t->nslots = slots;
    t->index = index;
    t->index_mask = icap - 1;
    snprintf(t->what, sizeof(t->what), "%s", what);
    table_hdr_t *h = t->hdr;
    /* Acquire: pairs with the release store of `version` in reset. */
    int ready = sized && atomic_load_explicit(&h->version, memory_order_acquire) == TABLE_VERSION &&
                atomic_load_explicit(&h->magic, memory_order_relaxed) == TABLE_MAGIC &&
                h->slots == slots && h->hi <= slots;
    *adopted = ready && h->store_id == store_id;
    if (ready && !*adopted)
        rc_log_warn("storage", "%s: saved cursors of a replaced store dropped", what);
    if (*adopted)
        index_build(t);
    else
        reset(t, store_id);
    *out = t;
    return 0;
fail:
    free(index);
    free(t);
    return rc;
}

void rc_storage_cursors_close(rc_storage_cursors_t *t)
{
    if (t == NULL)
        return;
    munmap(t->hdr, t->map_bytes);
    free(t->index);
    free(t);
}

rc_storage_cursor_t *rc_storage_cursor_find(rc_storage_cursors_t *t, const char *name)
{
    int found;
    if (name[0] == '\0' || strlen(name) > RC_STORAGE_CURSOR_NAME_MAX)
        return NULL;
    uint32_t *e = index_probe(t, name, &found);
    return found ? &t->slot[*e - 1] : NULL;
}

rc_storage_cursor_t *rc_storage_cursor_take(rc_storage_cursors_t *t, const char *name, int *fresh)
{
    size_t len = strlen(name);
    if (len == 0 || len > RC_STORAGE_CURSOR_NAME_MAX)
        return NULL;
    int found;
    uint32_t *e = index_probe(t, name, &found);
    if (fresh != NULL)
        *fresh = !found;
    if (found)
        return &t->slot[*e - 1];
    table_hdr_t *h = t->hdr;
    uint32_t i = t->free_from;
    while (i < h->hi && t->slot[i].name[0] != '\0')
        i++;
    if (i == t->nslots)
        return NULL;
    t->free_from = i + 1;
    rc_storage_cursor_t *c = &t->slot[i];
    atomic_store_explicit(&c->seq, 0, memory_order_relaxed);
    atomic_store_explicit(&c->pos, 0, memory_order_relaxed);
    atomic_store_explicit(&c->link, 0, memory_order_relaxed);
    if (i == h->hi)
        h->hi = i + 1;
    memcpy(c->name + 1, name + 1, len); /* with the NUL */
    /* The first byte names the slot, last: a crash before it leaves the slot free. Only the
     * compiler could reorder these stores in a way a later process sees (the stores of a
     * killed process all land), hence a signal fence. */
    atomic_signal_fence(memory_order_release);
    c->name[0] = name[0];
    if (*e == 0)
        t->index_used++;
    *e = i + 1;
    /* Dropped names leave tombstones; before they crowd the index out, it is built again
     * (the table holds at most half as many names as the index has entries). */
    if ((uint64_t)t->index_used * 4 > ((uint64_t)t->index_mask + 1) * 3)
        index_build(t);
    return c;
}

void rc_storage_cursor_drop(rc_storage_cursors_t *t, rc_storage_cursor_t *c)
{
    int found;
    uint32_t *e = index_probe(t, c->name, &found);
    if (found)
        *e = INDEX_TOMB;
    uint32_t i = rc_storage_cursor_index(t, c);
    if (i < t->free_from)
        t->free_from = i;
    c->name[0] = '\0'; /* first: the slot is free from here on, whatever else a crash leaves */
    atomic_signal_fence(memory_order_release); /* as in rc_storage_cursor_take */
    memset(c->name + 1, 0, sizeof(c->name) - 1);
}

rc_storage_cursor_t *rc_storage_cursor_next(rc_storage_cursors_t *t, rc_storage_cursor_t *prev)
{
    uint32_t i = prev == NULL ? 0 : rc_storage_cursor_index(t, prev) + 1;
    for (; i < t->hdr->hi; i++) {
        if (t->slot[i].name[0] != '\0')
            return &t->slot[i];
    }
    return NULL;
}

uint32_t rc_storage_cursor_index(const rc_storage_cursors_t *t, const rc_storage_cursor_t *c)
{
    return (uint32_t)(c - t->slot);
}

rc_storage_cursor_t *rc_storage_cursor_at(rc_storage_cursors_t *t, uint32_t i)
{
    if (i >= t->hdr->hi || t->slot[i].name[0] == '\0')
        return NULL;
    return &t->slot[i];
}
