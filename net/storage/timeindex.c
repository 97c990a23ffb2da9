/* The time index table (net/storage/timeindex.h): its layout in a file or shm object, the
 * writer's append and the readers' binary search. Nothing here knows the ring; the sampler and
 * the seek that use it are in storage_shm.c. */
#include "net/storage/timeindex.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC       0x5844495f454d4954ull /* "TIME_IDX" */
#define VERSION     1u
#define MAX_ENTRIES (1u << 20)

typedef struct {
    uint64_t magic;
    uint32_t version;
    uint32_t entries;
    uint64_t ring_id;
    _Atomic uint64_t count; /* samples ever added; entry n is in slot n % entries */
    uint64_t reserved[4];
} hdr_t;
_Static_assert(sizeof(hdr_t) == 64, "header layout");

/* A seqlock per entry: gen is 2n+1 while sample n is written, 2n+2 once it is complete. */
typedef struct {
    _Atomic uint64_t gen;
    _Atomic int64_t t_ns;
    _Atomic uint64_t pos;
    _Atomic uint64_t seq;
} slot_t;
_Static_assert(sizeof(slot_t) == 32, "entry layout");

struct rc_timeindex_s {
    hdr_t *hdr;
    slot_t *slots;
    size_t bytes;
    uint32_t entries;
};

static size_t size_for(uint32_t entries)
{
    return sizeof(hdr_t) + (size_t)entries * sizeof(slot_t);
}

/* Whose table may be used: this user's, owner-only (as the ring and the cursor table). */
static int check_owner(int fd, struct stat *st, char *why, size_t whylen)
{
    if (fstat(fd, st) != 0) {
        int e = errno;
        snprintf(why, whylen, "fstat: %s", strerror(e));
        return -e;
    }
    if (st->st_uid != geteuid() || (st->st_mode & 077) != 0) {
        snprintf(why, whylen,
                 "owned by uid %u with mode %03o: a time index must be this user's (uid %u) "
                 "and closed to others (chmod 600), or be removed",
                 (unsigned)st->st_uid, (unsigned)(st->st_mode & 0777), (unsigned)geteuid());
        return -EPERM;
    }
    return 0;
}

/* Why an existing table cannot be used as it is, or NULL. */
static const char *mismatch(const hdr_t *h, uint64_t ring_id, size_t size)
{
    if (h->magic != MAGIC || h->version != VERSION)
        return "not a time index of this version";
    if (h->entries == 0 || h->entries > MAX_ENTRIES || size_for(h->entries) != size)
        return "its size does not match its header";
    if (h->ring_id != ring_id)
        return "it belongs to another ring (the ring was replaced)";
    return NULL;
}

int rc_timeindex_map(int fd, uint64_t ring_id, uint32_t entries, int writable, rc_timeindex_t **out,
                     int *reset, char *why, size_t whylen)
{
    *out = NULL;
    if (reset != NULL)
        *reset = 0;
    why[0] = '\0';
    struct stat st;
    int rc = check_owner(fd, &st, why, whylen);
    if (rc != 0)
        return rc;
    if (entries == 0)
        entries = RC_TIMEINDEX_ENTRIES;
    if (entries > MAX_ENTRIES)
        return -EINVAL;
    size_t size = (size_t)st.st_size;
    const char *bad = NULL;
    if (size < sizeof(hdr_t)) {
        bad = size == 0 ? "" : "shorter than its header";
    } else {
        hdr_t h;
        if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
            bad = "unreadable";
        else
            bad = mismatch(&h, ring_id, size);
    }
    if (bad != NULL && !writable) {
        snprintf(why, whylen, "%s", bad[0] ? bad : "empty");
        return -EBADMSG;
    }
    if (bad != NULL) {
        if (bad[0] != '\0')
            snprintf(why, whylen, "%s", bad);
        if (reset != NULL)
            *reset = bad[0] != '\0';
        /* A table of the right size is rewritten in place (below): a reader in another
         * process may have it mapped, and shrinking it under that reader would fault there.
         * Another size is made anew, shrunk to nothing first so no old sample survives. */
        int same = size == size_for(entries);
        size = size_for(entries);
        if (!same && (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)size) != 0)) {
            int e = errno;
            snprintf(why, whylen, "cannot size it: %s", strerror(e));
            return -e;
        }
    }
    void *m = mmap(NULL, size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        int e = errno;
        snprintf(why, whylen, "mmap: %s", strerror(e));
        return -e;
    }
    rc_timeindex_t *ix = calloc(1, sizeof(*ix));
    if (ix == NULL) {
        munmap(m, size);
        return -ENOMEM;
    }
    ix->hdr = m;
    ix->slots = (slot_t *)((char *)m + sizeof(hdr_t));
    ix->bytes = size;
    if (bad != NULL) {
        ix->hdr->magic = 0; /* readers stop using it while it is rewritten */
        atomic_thread_fence(memory_order_seq_cst);
        for (uint32_t i = 0; i < entries; i++)
            atomic_store_explicit(&ix->slots[i].gen, 0, memory_order_relaxed);
        ix->hdr->version = VERSION;
        ix->hdr->entries = entries;
        ix->hdr->ring_id = ring_id;
        atomic_store_explicit(&ix->hdr->count, 0, memory_order_relaxed);
        /* The magic last: a reader that sees it sees the rest. */
        atomic_thread_fence(memory_order_release);
        ix->hdr->magic = MAGIC;
    }
    ix->entries = ix->hdr->entries;
    *out = ix;
    return 0;
}

void rc_timeindex_close(rc_timeindex_t *ix)
{
    if (ix == NULL)
        return;
    munmap(ix->hdr, ix->bytes);
    free(ix);
}

uint64_t rc_timeindex_count(const rc_timeindex_t *ix)
{
    return atomic_load_explicit(&ix->hdr->count, memory_order_acquire);
}

/* Reads sample n: 1 when it is there, complete and not overwritten, else 0. */
static int read_entry(const rc_timeindex_t *ix, uint64_t n, rc_timeindex_entry_t *e)
{
    slot_t *s = &ix->slots[n % ix->entries];
    uint64_t g = atomic_load_explicit(&s->gen, memory_order_acquire);
    if (g != 2 * n + 2)
        return 0;
    e->t_ns = atomic_load_explicit(&s->t_ns, memory_order_relaxed);
    e->pos = atomic_load_explicit(&s->pos, memory_order_relaxed);
    e->seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    /* Acquire fence: the fields were read before gen is read again (seqlock). */
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&s->gen, memory_order_relaxed) == g;
}

int rc_timeindex_newest(const rc_timeindex_t *ix, rc_timeindex_entry_t *out)
{
    uint64_t c = rc_timeindex_count(ix);
    return c > 0 && read_entry(ix, c - 1, out) ? 0 : -ENOENT;
}

int rc_timeindex_add(rc_timeindex_t *ix, int64_t t_ns, uint64_t pos, uint64_t seq)
{
    uint64_t n = atomic_load_explicit(&ix->hdr->count, memory_order_relaxed);
    rc_timeindex_entry_t last;
    if (n > 0 && read_entry(ix, n - 1, &last) &&
        (t_ns < last.t_ns || pos <= last.pos || seq < last.seq))
        return 0;
    slot_t *s = &ix->slots[n % ix->entries];
    atomic_store_explicit(&s->gen, 2 * n + 1, memory_order_relaxed);
    /* Release fence: a reader that sees any new field sees the odd gen first. */
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&s->t_ns, t_ns, memory_order_relaxed);
    atomic_store_explicit(&s->pos, pos, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq, memory_order_relaxed);
    atomic_store_explicit(&s->gen, 2 * n + 2, memory_order_release);
    atomic_store_explicit(&ix->hdr->count, n + 1, memory_order_release);
    return 1;
}

void rc_timeindex_clear(rc_timeindex_t *ix)
{
    /* The count stays: samples are numbered on from it, and a slot whose gen is 0 holds no
     * sample for any number, so readers skip every old one as overwritten. */
    for (uint32_t i = 0; i < ix->entries; i++)
        atomic_store_explicit(&ix->slots[i].gen, 0, memory_order_release);
}

static int lookup_once(const rc_timeindex_t *ix, uint64_t c, int64_t t_ns,
                       rc_timeindex_entry_t *out)
{
    uint64_t lo = c > ix->entries ? c - ix->entries : 0;
    /* Skip the oldest samples the writer overwrote or cleared (a cleared table holds none). */
    rc_timeindex_entry_t e, prev;
    while (lo < c && !read_entry(ix, lo, &e))
        lo++;
    if (lo == c)
        return -ENOENT;
    /* The whole window is checked in order (a few thousand loads, once per seek): a binary
     * search over a damaged table could land anywhere. */
    prev = e;
    for (uint64_t n = lo + 1; n < c; n++) {
        if (!read_entry(ix, n, &e))
            return -EBADMSG; /* a hole in the middle: the writer is not this code */
        if (e.t_ns < prev.t_ns || e.pos <= prev.pos || e.seq < prev.seq)
            return -EBADMSG;
        prev = e;
    }
    uint64_t a = lo, b = c; /* the answer is the last n in [a, b) with t <= t_ns */
    if (!read_entry(ix, lo, &e) || e.t_ns > t_ns)
        return read_entry(ix, lo, &e) ? -ENOENT : -EBADMSG;
    while (b - a > 1) {
        uint64_t mid = a + (b - a) / 2;
        if (!read_entry(ix, mid, &e))
            return -EBADMSG;
        if (e.t_ns <= t_ns)
            a = mid;
        else
            b = mid;
    }
    if (!read_entry(ix, a, out))
        return -EBADMSG;
    return 0;
}

int rc_timeindex_lookup(const rc_timeindex_t *ix, int64_t t_ns, rc_timeindex_entry_t *out)
{
    if (ix->hdr->magic != MAGIC || ix->entries == 0)
        return -EBADMSG;
    int rc = -EBADMSG;
    /* The writer may overwrite the oldest samples while the window is read: a look that found
     * a hole is taken again when samples were added meanwhile. */
    for (int attempt = 0; attempt < 3 && rc == -EBADMSG; attempt++) {
        uint64_t c = rc_timeindex_count(ix);
        rc = lookup_once(ix, c, t_ns, out);
        if (rc == -EBADMSG && rc_timeindex_count(ix) == c)
            break;
    }
    return rc;
}
