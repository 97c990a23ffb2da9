/* The sync journal (net/storage/journal.h, docs/durability.md "The sync journal").
 *
 * Layout: block 0 is the header (magic, ring id, epoch, size, CRC32C); frames follow, each at a
 * block boundary and a whole number of blocks long:
 *
 *   frame header (48 bytes): magic, crc, ring id, epoch, lsn, ranges, bytes after the header
 *   per range: position (8), length (4), zero (4), the bytes, zeros up to 8-byte alignment
 *
 * The CRC32C covers the frame header (crc as zero) and the bytes after it. A frame is valid when
 * its magic, ring id and epoch match the header's and its CRC agrees: a torn write, a frame of
 * an earlier epoch or a frame partly overwritten by a later lap is not. Positions in the circle
 * are logical (`jpos`, growing, including the block tails skipped at the end of a lap); a
 * frame's physical offset is RC_JOURNAL_BLOCK + jpos % usable. */
#include "net/storage/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crc32c.h"

#define JOURNAL_MAGIC   0x4c4e524a54435252ull /* "RRCTJRNL" */
#define JOURNAL_VERSION 1u
#define FRAME_MAGIC     0x4d524652u /* "RFRM" */
#define ZERO_CHUNK      (1u << 20)

typedef struct {
    uint64_t magic;
    uint32_t version, block;
    uint64_t ring_id, epoch, size;
    uint32_t crc, zero;
} jhdr_t;

typedef struct {
    uint32_t magic, crc;
    uint64_t ring_id, epoch, lsn;
    uint32_t nranges, bytes;
    uint64_t zero;
} frame_hdr_t;
_Static_assert(sizeof(frame_hdr_t) == 48, "frame header is 48 bytes");

typedef struct {
    uint64_t pos;
    uint32_t len, zero;
} range_hdr_t;

struct rc_journal_s {
    int fd;  /* reads, the header at create */
    int wfd; /* O_DIRECT | O_DSYNC (or O_DSYNC alone) */
    uint64_t ring_id, epoch, size, usable;
    uint64_t lsn;
    _Atomic uint64_t jpos; /* logical end of the last frame written */
    _Atomic uint64_t ckpt; /* logical position a checkpoint covers */
    unsigned char *buf;    /* the frame being built, block-aligned */
    size_t cap, len;
    uint32_t nranges;
};

static uint64_t round_block(uint64_t n)
{
    return (n + RC_JOURNAL_BLOCK - 1) & ~(uint64_t)(RC_JOURNAL_BLOCK - 1);
}

static int write_all(int fd, const void *p, size_t n, uint64_t off)
{
    const unsigned char *b = p;
    while (n > 0) {
        ssize_t w = pwrite(fd, b, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        b += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static uint32_t header_crc(const jhdr_t *h)
{
    jhdr_t c = *h;
    c.crc = 0;
    return rc_crc32c(0, &c, sizeof(c));
}

/* The header block, written with the synchronous descriptor: on disk when this returns. */
static int write_header(rc_journal_t *j)
{
    void *blk;
    if (posix_memalign(&blk, RC_JOURNAL_BLOCK, RC_JOURNAL_BLOCK) != 0)
        return -ENOMEM;
    memset(blk, 0, RC_JOURNAL_BLOCK);
    jhdr_t h = {.magic = JOURNAL_MAGIC,
                .version = JOURNAL_VERSION,
                .block = RC_JOURNAL_BLOCK,
                .ring_id = j->ring_id,
                .epoch = j->epoch,
                .size = j->size};
    h.crc = header_crc(&h);
    memcpy(blk, &h, sizeof(h));
    int rc = write_all(j->wfd, blk, RC_JOURNAL_BLOCK, 0);
    free(blk);
    return rc;
}

/* A new file, or one of another size: zeros throughout (its blocks allocated and written, so a
 * frame's write is an overwrite that changes no metadata), flushed. */
static int make_file(int fd, uint64_t size)
{
    if (ftruncate(fd, 0) != 0)
        return -errno;
    unsigned char *z = calloc(1, ZERO_CHUNK);
    if (z == NULL)
        return -ENOMEM;
    int rc = 0;
    for (uint64_t off = 0; off < size && rc == 0; off += ZERO_CHUNK)
        rc = write_all(fd, z, size - off < ZERO_CHUNK ? (size_t)(size - off) : ZERO_CHUNK, off);
    free(z);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    return rc;
}

int rc_journal_open(const char *path, uint64_t ring_id, uint64_t size, rc_journal_t **out,
                    int *direct, char *err, size_t errlen)
{
    size = round_block(size);
    if (size < 4 * RC_JOURNAL_BLOCK) {
        snprintf(err, errlen, "journal %s: %llu bytes is too small", path,
                 (unsigned long long)size);
        return -EINVAL;
    }
    rc_journal_t *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    j->fd = j->wfd = -1;
    j->ring_id = ring_id;
    j->size = size;
    j->usable = size - RC_JOURNAL_BLOCK;
    int rc = 0;
    const char *what = "open";
    j->fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    struct stat st;
    if (j->fd < 0 || fstat(j->fd, &st) != 0) {
        rc = -errno;
        goto fail;
    }
    jhdr_t h = {0};
    int fresh = (uint64_t)st.st_size != size;
    if (!fresh &&
        (pread(j->fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.magic != JOURNAL_MAGIC ||
         h.version != JOURNAL_VERSION || h.crc != header_crc(&h) || h.size != size))
        memset(&h, 0, sizeof(h));
    if (fresh && (rc = make_file(j->fd, size)) != 0) {
        what = "write zeros to";
        goto fail;
    }
    *direct = 1;
    j->wfd = open(path, O_RDWR | O_DIRECT | O_DSYNC | O_CLOEXEC);
    if (j->wfd < 0 && errno == EINVAL) { /* tmpfs and a few others: no O_DIRECT */
        *direct = 0;
        j->wfd = open(path, O_RDWR | O_DSYNC | O_CLOEXEC);
    }
    if (j->wfd < 0) {
        rc = -errno;
        goto fail;
    }
    /* A journal of this ring keeps its epoch until replayed; any other starts empty. */
    j->epoch = h.epoch;
    if (h.ring_id != ring_id || h.epoch == 0) {
        j->epoch = h.epoch + 1;
        if ((rc = write_header(j)) != 0) {
            what = "write the header of";
            goto fail;
        }
    }
    j->cap = 2 * RC_JOURNAL_BLOCK;
    if (posix_memalign((void **)&j->buf, RC_JOURNAL_BLOCK, j->cap) != 0) {
        rc = -ENOMEM;
        goto fail;
    }
    *out = j;
    return 0;
fail:
    snprintf(err, errlen, "journal %s: cannot %s it: %s", path, what, strerror(-rc));
    rc_journal_close(j);
    return rc;
}

void rc_journal_close(rc_journal_t *j)
{
    if (j == NULL)
        return;
    if (j->fd >= 0)
        close(j->fd);
    if (j->wfd >= 0)
        close(j->wfd);
    free(j->buf);
    free(j);
}

/* ---- replay --------------------------------------------------------------------------------- */

typedef struct {
    uint64_t lsn, off;
} found_t;

static int by_lsn(const void *a, const void *b)
{
    const found_t *x = a, *y = b;
    return x->lsn < y->lsn ? -1 : x->lsn > y->lsn;
}

/* The frame at `off` of `img` when valid: its total length, else 0. */
static uint64_t frame_at(const rc_journal_t *j, const unsigned char *img, uint64_t off)
{
    frame_hdr_t f;
    memcpy(&f, img + off, sizeof(f));
    if (f.magic != FRAME_MAGIC || f.ring_id != j->ring_id || f.epoch != j->epoch)
        return 0;
    if (f.bytes > j->size - off - sizeof(f))
        return 0;
    uint32_t crc = f.crc;
    f.crc = 0;
    uint32_t c = rc_crc32c(rc_crc32c(0, &f, sizeof(f)), img + off + sizeof(f), f.bytes);
    return c == crc ? round_block(sizeof(f) + f.bytes) : 0;
}

long rc_journal_replay(rc_journal_t *j, int passes, rc_journal_range_fn fn, void *arg)
{
    unsigned char *img = malloc(j->size);
    found_t *found = NULL;
    size_t n = 0, cap = 0;
    long rc = 0;
    if (img == NULL)
        return -ENOMEM;
    for (uint64_t off = 0; off < j->size;) {
        ssize_t r = pread(j->fd, img + off, j->size - off, (off_t)off);
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            goto out;
        }
        off += (uint64_t)r;
    }
    jhdr_t h;
    memcpy(&h, img, sizeof(h));
    if (h.magic != JOURNAL_MAGIC || h.crc != header_crc(&h) || h.ring_id != j->ring_id ||
        h.epoch != j->epoch)
        goto out;
    for (uint64_t off = RC_JOURNAL_BLOCK; off + sizeof(frame_hdr_t) <= j->size;) {
        uint64_t len = frame_at(j, img, off);
        if (len == 0) {
            off += RC_JOURNAL_BLOCK;
            continue;
        }
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 256;
            found_t *b = realloc(found, nc * sizeof(*b));
            if (b == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            found = b;
            cap = nc;
        }
        frame_hdr_t f;
        memcpy(&f, img + off, sizeof(f));
        found[n++] = (found_t){f.lsn, off};
        off += len;
    }
    if (n > 1)
        qsort(found, n, sizeof(*found), by_lsn);
    for (int pass = 0; pass < passes; pass++) {
        for (size_t i = 0; i < n; i++) {
            frame_hdr_t f;
            memcpy(&f, img + found[i].off, sizeof(f));
            const unsigned char *p = img + found[i].off + sizeof(f), *end = p + f.bytes;
            for (uint32_t k = 0; k < f.nranges && p + sizeof(range_hdr_t) <= end; k++) {
                range_hdr_t r;
                memcpy(&r, p, sizeof(r));
                p += sizeof(r);
                if (r.len > (uint64_t)(end - p))
                    break;
                fn(arg, pass, r.pos, p, r.len);
                p += (r.len + 7u) & ~7u;
            }
        }
    }
    rc = (long)n;
out:
    free(found);
    free(img);
    return rc;
}

int rc_journal_reset(rc_journal_t *j)
{
    j->epoch++;
    j->lsn = 0;
    atomic_store(&j->jpos, 0);
    atomic_store(&j->ckpt, 0);
    return write_header(j);
}

/* ---- writing ------------------------------------------------------------------------------- */

void rc_journal_frame_begin(rc_journal_t *j)
{
    j->len = sizeof(frame_hdr_t);
    j->nranges = 0;
}

int rc_journal_frame_add(rc_journal_t *j, uint64_t pos, const void *bytes, uint32_t len)
{
    size_t need = j->len + sizeof(range_hdr_t) + (((size_t)len + 7u) & ~(size_t)7u);
    if (need > j->usable / 2)
        return -EFBIG;
    if (round_block(need) > j->cap) {
        size_t nc = round_block(need) * 2;
        unsigned char *b;
        if (posix_memalign((void **)&b, RC_JOURNAL_BLOCK, nc) != 0)
            return -ENOMEM;
        memcpy(b, j->buf, j->len);
        free(j->buf);
        j->buf = b;
        j->cap = nc;
    }
    range_hdr_t r = {.pos = pos, .len = len};
    memcpy(j->buf + j->len, &r, sizeof(r));
    memcpy(j->buf + j->len + sizeof(r), bytes, len);
    size_t padded = ((size_t)len + 7u) & ~(size_t)7u;
    memset(j->buf + j->len + sizeof(r) + len, 0, padded - len);
    j->len = need;
    j->nranges++;
    return 0;
}

int rc_journal_frame_write(rc_journal_t *j)
{
    uint64_t total = round_block(j->len);
    if (total > j->usable / 2)
        return -EFBIG;
    uint64_t jpos = atomic_load_explicit(&j->jpos, memory_order_relaxed);
    uint64_t at = jpos % j->usable, start = jpos;
    if (at + total > j->usable)
        start = jpos + (j->usable - at); /* the tail of this lap is skipped */
    if (start + total - atomic_load_explicit(&j->ckpt, memory_order_acquire) > j->usable)
        return -ENOSPC;
    memset(j->buf + j->len, 0, total - j->len);
    frame_hdr_t f = {.magic = FRAME_MAGIC,
                     .ring_id = j->ring_id,
                     .epoch = j->epoch,
                     .lsn = ++j->lsn,
                     .nranges = j->nranges,
                     .bytes = (uint32_t)(j->len - sizeof(frame_hdr_t))};
    memcpy(j->buf, &f, sizeof(f));
    f.crc = rc_crc32c(rc_crc32c(0, &f, sizeof(f)), j->buf + sizeof(f), f.bytes);
    memcpy(j->buf, &f, sizeof(f));
    int rc = write_all(j->wfd, j->buf, total, RC_JOURNAL_BLOCK + start % j->usable);
    if (rc == 0)
        atomic_store_explicit(&j->jpos, start + total, memory_order_release);
    return rc;
}

uint64_t rc_journal_used(const rc_journal_t *j)
{
    return atomic_load_explicit(&j->jpos, memory_order_acquire) -
           atomic_load_explicit(&j->ckpt, memory_order_acquire);
}

uint64_t rc_journal_capacity(const rc_journal_t *j)
{
    return j->usable;
}

uint64_t rc_journal_mark(const rc_journal_t *j)
{
    return atomic_load_explicit(&j->jpos, memory_order_acquire);
}

void rc_journal_checkpointed(rc_journal_t *j, uint64_t mark)
{
    uint64_t cur = atomic_load_explicit(&j->ckpt, memory_order_relaxed);
    while (cur < mark && !atomic_compare_exchange_weak_explicit(
                             &j->ckpt, &cur, mark, memory_order_release, memory_order_relaxed))
        ;
}
