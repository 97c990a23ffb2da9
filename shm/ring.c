/* Ring lifecycle (create, open with the layout handshake, close), metrics, reclaiming dead
 * readers and the futex helpers. Claims live in shm/producer.c, reading in shm/reader.c, who
 * may use a ring (owner check, broker lock, SIGBUS guard) in shm/ring_guard.c. */
#include "core/clock.h"
#include "shm/ring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shm/proc.h"

#define MIN_CAPACITY (64u * 1024u)
#define MAX_CAPACITY (1ull << 40)
#define MAX_SLOTS 4096u

void rc__set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void rc_ring_config_init(rc_ring_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->capacity = 64ull << 20;
    cfg->reader_slots = 64;
    cfg->heartbeat_timeout_ns = 2000000000ull;
    cfg->pad_timeout_ns = 1000000000ull;
    cfg->mode = 0600;
}

/* "broker" or "/broker" -> "/broker"; POSIX shm names have exactly one leading '/'. */
static int shm_name(const char *name, char out[64])
{
    if (name == NULL)
        return -EINVAL;
    const char *n = name[0] == '/' ? name + 1 : name;
    size_t len = strlen(n);
    if (len == 0 || len > 62 || strchr(n, '/') != NULL || strcmp(n, ".") == 0 ||
        strcmp(n, "..") == 0)
        return -EINVAL;
    out[0] = '/';
    memcpy(out + 1, n, len + 1);
    return 0;
}

static uint64_t round_up(uint64_t n, uint64_t a)
{
    return (n + a - 1) / a * a;
}

static int check_config(const rc_ring_config_t *c, char *err, size_t errlen)
{
    if (c->capacity < MIN_CAPACITY || c->capacity > MAX_CAPACITY ||
        (c->capacity & (c->capacity - 1)) != 0) {
        rc__set_err(err, errlen, "ring capacity %llu is not a power of two in [64 KiB, 1 TiB]",
                    (unsigned long long)c->capacity);
        return -EINVAL;
    }
    if (c->reader_slots == 0 || c->reader_slots > MAX_SLOTS) {
        rc__set_err(err, errlen, "ring reader_slots %u not in [1, %u]", c->reader_slots, MAX_SLOTS);
        return -EINVAL;
    }
    if (c->max_record != 0 &&
        (c->max_record < 64 || c->max_record > c->capacity / 4 || c->max_record > (1u << 30))) {
        rc__set_err(err, errlen, "ring max_record %u not in [64, capacity/4]", c->max_record);
        return -EINVAL;
    }
    if ((c->mode & 077) != 0 || (c->mode & ~(mode_t)0777) != 0) {
        /* Openers refuse such a ring (rc__ring_check_owner): nobody could use it. */
        rc__set_err(err, errlen,
                    "ring mode %04o gives other users access; a ring is private to its owner "
                    "(0600)",
                    (unsigned)c->mode);
        return -EINVAL;
    }
    return 0;
}

static int map_checked(rc_ring_t *r, int fd, size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    r->base = p;
    r->map_size = size;
    r->hdr = p;
    return 0;
}

/* The object as an operator finds it: /dev/shm/NAME for a shm name, else the file's path. */
static int set_path(rc_ring_t *r, const char *nm, const char *file)
{
    size_t n = nm != NULL ? sizeof(RC__SHM_DIR) + strlen(nm) : strlen(file) + 1;
    r->path = malloc(n);
    if (r->path == NULL)
        return -ENOMEM;
    if (nm != NULL)
        snprintf(r->path, n, "%s%s", RC__SHM_DIR, nm);
    else
        memcpy(r->path, file, n);
    return 0;
}

static void fill_handle(rc_ring_t *r)
{
    rc__ring_hdr_t *h = r->hdr;
    r->records = r->base + h->records_off;
    r->capacity = h->capacity;
    r->mask = h->capacity - 1;
    r->key = h->key;
    r->max_record = h->max_record;
    r->max_claim = h->max_claim;
    r->pid = (uint32_t)getpid();
    static _Atomic uint64_t next_id = 1;
    r->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
    memcpy(r->name, h->name, sizeof(r->name));
    r->name[sizeof(r->name) - 1] = '\0';
    rc__guard_add(r);
}

/* Unmaps and frees a handle that failed half-way (no guard entry yet), closing `fd`. */
static void drop_handle(rc_ring_t *r, int fd)
{
    if (r != NULL && r->base != NULL)
        munmap(r->base, r->map_size);
    if (r != NULL)
        free(r->path);
    free(r);
    close(fd);
}

/* `nm` is the shm name, or NULL for the ring file `label`. With `locked`, `fd` holds the broker
 * lock (rc__ring_lock_new) and the header records this process as its holder. */
static int create_common(int fd, const char *label, const char *nm, int locked,
                         const rc_ring_config_t *cfg, rc_ring_t **out, char *err, size_t errlen)
{
    uint64_t cap = cfg->capacity;
    uint32_t max_record = cfg->max_record;
    if (max_record == 0)
        max_record = (uint32_t)(cap / 4 < (16u << 20) ? cap / 4 : (16u << 20));
    uint64_t slots_off = RC__HDR_BYTES;
    uint64_t prod_off = slots_off + (uint64_t)cfg->reader_slots * RC__SLOT_BYTES;
    uint64_t groups_off = prod_off + (uint64_t)RC__DEFAULT_PRODUCERS * RC__CACHE_LINE;
    uint64_t records_off = round_up(groups_off + RC__DEFAULT_GROUPS * RC__GROUP_BYTES, 4096);
    uint64_t file_size = records_off + cap;
    int rc = 0;

    rc_ring_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    r->fd = fd;
    r->owner = 1;
    r->locked = locked;
    rc = set_path(r, nm, label);
    if (rc != 0)
        goto fail;
    if (ftruncate(fd, (off_t)file_size) != 0) {
        rc = -errno;
        rc__set_err(err, errlen, "ring '%s': cannot size to %llu bytes: %s", label,
                    (unsigned long long)file_size, strerror(errno));
        goto fail;
    }
    /* A ring file gets its blocks now: a page of a sparse file that the file system cannot
     * find room for when a producer first writes it would end the process with SIGBUS. */
    if (nm == NULL && (rc = posix_fallocate(fd, 0, (off_t)file_size)) != 0) {
        rc__set_err(err, errlen, "ring file '%s': cannot reserve %llu bytes on its file system: %s",
                    label, (unsigned long long)file_size, strerror(rc));
        rc = -rc;
        goto fail;
    }
    rc = map_checked(r, fd, file_size);
    if (rc != 0) {
        rc__set_err(err, errlen, "ring '%s': mmap failed: %s", label, strerror(-rc));
        goto fail;
    }
    rc__ring_hdr_t *h = r->hdr;
    uint64_t key = 0;
    if (getrandom(&key, sizeof(key), 0) != (ssize_t)sizeof(key))
        key = rc_now_ns() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    key &= ~7ull; /* keeps the low bits of a stamp equal to the position's (always 0) */
    if (key == 0)
        key = 0x5bd1e9955bd1e998ull;
    /* A reused file may hold an older ring: clear the header page and slots first. */
    memset(r->base, 0, records_off);
    h->flags = cfg->flags & RC_RING_F_DURABLE;
    h->capacity = cap;
    h->file_size = file_size;
    h->key = key;
    h->slots_off = (uint32_t)slots_off;
    h->slot_count = cfg->reader_slots;
    h->groups_off = (uint32_t)groups_off;
    h->group_count = RC__DEFAULT_GROUPS;
    h->records_off = records_off;
    h->created_ns = rc_now_ns();
    h->heartbeat_timeout_ns = cfg->heartbeat_timeout_ns;
    h->pad_timeout_ns = cfg->pad_timeout_ns;
    h->max_record = max_record;
    h->max_claim = (uint32_t)(cap / 2 < (1u << 31) ? cap / 2 : (1u << 31));
    h->creator_pid = (uint32_t)getpid();
    h->checkpoint_shift = (uint32_t)__builtin_ctzll(cap / RC__CHECKPOINTS);
    h->prod_off = (uint32_t)prod_off;
    h->prod_count = RC__DEFAULT_PRODUCERS;
    snprintf(h->name, sizeof(h->name), "%s", label);
    if (locked) {
        atomic_store_explicit(&h->lock_start, rc_proc_start_time(getpid()), memory_order_relaxed);
        atomic_store_explicit(&h->lock_pid, (uint32_t)getpid(), memory_order_relaxed);
    }
    /* Nothing claimed yet: the gate lets producers fill one capacity from position 0. */
    atomic_store_explicit(&h->gate, cap, memory_order_relaxed);
    for (uint32_t i = 0; i < RC__CHECKPOINTS; i++)
        atomic_store_explicit(&h->checkpoints[i], UINT64_MAX, memory_order_relaxed);
    atomic_store_explicit(&h->magic, RC__RING_MAGIC, memory_order_relaxed);
    /* Last, with release: pairs with the acquire load in check_header(); an opener that sees
     * the version sees every field above. */
    atomic_store_explicit(&h->version, RC__RING_VERSION, memory_order_release);
    fill_handle(r);
    *out = r;
    return 0;
fail:
    drop_handle(r, fd);
    return rc;
}

int rc_ring_create(const char *name, const rc_ring_config_t *cfg, rc_ring_t **out, char *err,
                   size_t errlen)
{
    rc_ring_config_t defaults;
    char nm[64];
    if (cfg == NULL) {
        rc_ring_config_init(&defaults);
        cfg = &defaults;
    }
    *out = NULL;
    if (shm_name(name, nm) != 0) {
        rc__set_err(err, errlen, "ring name '%s' is not a valid shm name (1-62 chars, no '/')",
                    name ? name : "(null)");
        return -EINVAL;
    }
    int rc = check_config(cfg, err, errlen);
    if (rc != 0)
        return rc;
    if (cfg->flags & RC_RING_F_REPLACE) {
        rc = rc__ring_remove_for_replace(nm, NULL, err, errlen);
        if (rc != 0)
            return rc;
    }
    mode_t mode = cfg->mode ? cfg->mode : 0600;
    int fd = shm_open(nm, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        rc = -errno;
        rc__set_err(err, errlen, "ring '%s': cannot create shm object: %s%s", nm, strerror(errno),
                    errno == EEXIST && (cfg->flags & RC_RING_F_REPLACE)
                        ? " (another process created it meanwhile)"
                        : "");
        return rc;
    }
    fchmod(fd, mode); /* exact bits, whatever the umask */
    int locked = (cfg->flags & RC_RING_F_LOCK) != 0;
    if (locked) {
        char path[sizeof(RC__SHM_DIR) + 64];
        snprintf(path, sizeof(path), "%s%s", RC__SHM_DIR, nm);
        rc = rc__ring_lock_new(fd, path, err, errlen);
        if (rc != 0) {
            close(fd); /* not ours to unlink any more: whoever holds it now decides */
            return rc;
        }
    }
    rc = create_common(fd, nm, nm, locked, cfg, out, err, errlen);
    if (rc != 0)
        shm_unlink(nm);
    return rc;
}

int rc_ring_create_file(const char *path, const rc_ring_config_t *cfg, rc_ring_t **out,
                        char *err, size_t errlen)
{
    rc_ring_config_t c;
    if (cfg == NULL)
        rc_ring_config_init(&c);
    else
        c = *cfg;
    *out = NULL;
    if (path == NULL || path[0] == '\0') {
        rc__set_err(err, errlen, "ring file path is empty");
        return -EINVAL;
    }
    int rc = check_config(&c, err, errlen);
    if (rc != 0)
        return rc;
    c.flags |= RC_RING_F_DURABLE;
    if (c.flags & RC_RING_F_REPLACE) {
        rc = rc__ring_remove_for_replace(NULL, path, err, errlen);
        if (rc != 0)
            return rc;
    }
    mode_t mode = c.mode ? c.mode : 0600;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        rc = -errno;
        rc__set_err(err, errlen, "ring file '%s': cannot create: %s", path, strerror(errno));
        return rc;
    }
    fchmod(fd, mode);
    int locked = (c.flags & RC_RING_F_LOCK) != 0;
    if (locked) {
        rc = rc__ring_lock_new(fd, path, err, errlen);
        if (rc != 0) {
            close(fd);
            return rc;
        }
    }
    rc = create_common(fd, path, NULL, locked, &c, out, err, errlen);
    if (rc != 0)
        unlink(path);
    return rc;
}

/* The layout handshake. `size` is the object's current size. */
static int check_header(const rc__ring_hdr_t *h, uint64_t size, const char *label, char *err,
                        size_t errlen)
{
    uint64_t magic = atomic_load_explicit(&h->magic, memory_order_relaxed);
    /* Acquire: pairs with the creator's release store of the version (written last). */
    uint32_t version = atomic_load_explicit(&h->version, memory_order_acquire);
    if (magic == 0 && version == 0) {
        rc__set_err(err, errlen,
                    "ring '%s' is not initialised yet (creator still setting up, or "
                    "it died during setup)",
                    label);
        return RC_ERING_NOT_READY;
    }
    if (magic != RC__RING_MAGIC) {
        rc__set_err(err, errlen, "'%s' is not a ringcast ring (magic %016llx)", label,
                    (unsigned long long)magic);
        return RC_ERING_BAD_MAGIC;
    }
    if (version == 0) {
        rc__set_err(err, errlen, "ring '%s' is not initialised yet (layout version 0)", label);
        return RC_ERING_NOT_READY;
    }
    if (version != RC__RING_VERSION) {
        rc__set_err(err, errlen, "ring '%s' has layout version %u, this build reads version %u",
                    label, version, RC__RING_VERSION);
        return RC_ERING_BAD_VERSION;
    }
    uint64_t cap = h->capacity;
    if (cap < MIN_CAPACITY || cap > MAX_CAPACITY || (cap & (cap - 1)) != 0 ||
        h->slots_off != RC__HDR_BYTES || h->slot_count == 0 || h->slot_count > MAX_SLOTS ||
        h->prod_off < h->slots_off + (uint64_t)h->slot_count * RC__SLOT_BYTES ||
        h->prod_count == 0 || h->prod_count > MAX_SLOTS ||
        h->groups_off < h->prod_off + (uint64_t)h->prod_count * RC__CACHE_LINE ||
        h->records_off < h->groups_off + (uint64_t)h->group_count * RC__GROUP_BYTES ||
        h->records_off % 4096 != 0 || h->file_size != h->records_off + cap ||
        h->max_record < 64 || h->max_record > cap / 4 || h->max_claim > cap / 2 ||
        h->max_claim < h->max_record || (h->key & 7) != 0 ||
        (1ull << h->checkpoint_shift) * RC__CHECKPOINTS != cap) {
        rc__set_err(err, errlen, "ring '%s' has an inconsistent header", label);
        return RC_ERING_CORRUPT;
    }
    if (size < h->file_size) {
        rc__set_err(err, errlen, "ring '%s' is truncated: %llu bytes, header says %llu", label,
                    (unsigned long long)size, (unsigned long long)h->file_size);
        return RC_ERING_TRUNCATED;
    }
    return 0;
}

/* `nm` is the shm name, or NULL for the ring file `label`. */
static int open_common(int fd, const char *label, const char *nm, rc_ring_t **out, char *err,
                       size_t errlen)
{
    rc_ring_t *r = NULL;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        rc__set_err(err, errlen, "ring '%s': fstat failed: %s", label, strerror(errno));
        goto fail;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL || set_path(r, nm, label) != 0) {
        rc = -ENOMEM;
        goto fail;
    }
    /* Before anything is read from it: a ring someone else could write is not a ring we read. */
    rc = rc__ring_check_owner(&st, r->path, err, errlen);
    if (rc != 0)
        goto fail;
    if (st.st_size == 0) {
        rc__set_err(err, errlen, "ring '%s' is not initialised yet (size 0)", label);
        rc = RC_ERING_NOT_READY;
        goto fail;
    }
    if ((uint64_t)st.st_size < RC__HDR_BYTES) {
        uint64_t magic = 0;
        if (pread(fd, &magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
            magic == RC__RING_MAGIC) {
            rc__set_err(err, errlen, "ring '%s' is truncated: %lld bytes, shorter than its header",
                        label, (long long)st.st_size);
            rc = RC_ERING_TRUNCATED;
        } else {
            rc__set_err(err, errlen, "'%s' is not a ringcast ring (%lld bytes, bad magic)", label,
                        (long long)st.st_size);
            rc = RC_ERING_BAD_MAGIC;
        }
        goto fail;
    }
    r->fd = fd;
    rc = map_checked(r, fd, RC__HDR_BYTES);
    if (rc != 0) {
        rc__set_err(err, errlen, "ring '%s': mmap failed: %s", label, strerror(-rc));
        goto fail;
    }
    rc = check_header(r->hdr, (uint64_t)st.st_size, label, err, errlen);
    if (rc != 0)
        goto fail;
    size_t full = r->hdr->file_size;
    munmap(r->base, r->map_size);
    r->base = NULL;
    rc = map_checked(r, fd, full);
    if (rc != 0) {
        rc__set_err(err, errlen, "ring '%s': mmap of %zu bytes failed: %s", label, full,
                    strerror(-rc));
        goto fail;
    }
    fill_handle(r);
    *out = r;
    return 0;
fail:
    drop_handle(r, fd);
    return rc;
}

static int open_fail(int e, const char *what, const char *label, char *err, size_t errlen)
{
    if (e == ENOENT)
        rc__set_err(err, errlen, "%s '%s' does not exist", what, label);
    else if (e == EACCES || e == EPERM)
        rc__set_err(err, errlen, "%s '%s': permission denied (it needs read and write access)",
                    what, label);
    else
        rc__set_err(err, errlen, "%s '%s': cannot open: %s", what, label, strerror(e));
    return -e;
}

int rc_ring_open(const char *name, rc_ring_t **out, char *err, size_t errlen)
{
    char nm[64];
    *out = NULL;
    if (shm_name(name, nm) != 0) {
        rc__set_err(err, errlen, "ring name '%s' is not a valid shm name (1-62 chars, no '/')",
                    name ? name : "(null)");
        return -EINVAL;
    }
    int fd = shm_open(nm, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return open_fail(errno, "ring", nm, err, errlen);
    return open_common(fd, nm, nm, out, err, errlen);
}

int rc_ring_open_file(const char *path, rc_ring_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (path == NULL || path[0] == '\0') {
        rc__set_err(err, errlen, "ring file path is empty");
        return -EINVAL;
    }
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return open_fail(errno, "ring file", path, err, errlen);
    return open_common(fd, path, NULL, out, err, errlen);
}

/* Reads the header of the ring file `fd` (`size` bytes) into `h` and checks it as an opener
 * would, but against the size the header gives rather than the file's: 0 or the code. */
static int read_file_header(int fd, uint64_t size, const char *path, rc__ring_hdr_t *h, char *err,
                            size_t errlen)
{
    if (size < RC__HDR_BYTES || pread(fd, h, sizeof(*h), 0) != (ssize_t)sizeof(*h)) {
        rc__set_err(err, errlen,
                    "ring file '%s' is truncated to %llu bytes, inside its header: it cannot be "
                    "recovered; move it aside (the broker then starts an empty one)",
                    path, (unsigned long long)size);
        return RC_ERING_TRUNCATED;
    }
    return check_header(h, h->file_size, path, err, errlen);
}

int rc_ring_extend_file(const char *path, uint64_t *was, uint64_t *now, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return open_fail(errno, "ring file", path, err, errlen);
    struct stat st;
    rc__ring_hdr_t *h = malloc(sizeof(*h));
    int rc = h == NULL ? -ENOMEM : fstat(fd, &st) != 0 ? -errno : 0;
    if (rc != 0) {
        rc__set_err(err, errlen, "ring file '%s': %s", path, strerror(-rc));
        goto out;
    }
    rc = rc__ring_check_owner(&st, path, err, errlen);
    /* Under the broker lock, as any change to a ring: no broker is using it meanwhile. */
    if (rc == 0)
        rc = rc__ring_lock_new(fd, path, err, errlen);
    if (rc == 0)
        rc = read_file_header(fd, (uint64_t)st.st_size, path, h, err, errlen);
    if (rc != 0)
        goto out;
    *was = (uint64_t)st.st_size;
    *now = h->file_size;
    if (*was >= *now)
        goto out; /* not truncated (any more) */
    if (*was < h->records_off) {
        rc__set_err(err, errlen,
                    "ring file '%s' is truncated to %llu bytes, inside its reader and group "
                    "tables (its records start at byte %llu): it cannot be recovered; move it "
                    "aside (the broker then starts an empty one)",
                    path, (unsigned long long)*was, (unsigned long long)h->records_off);
        rc = RC_ERING_TRUNCATED;
        goto out;
    }
    rc = posix_fallocate(fd, 0, (off_t)*now);
    if (rc != 0) {
        rc__set_err(err, errlen, "ring file '%s': cannot extend it to %llu bytes: %s", path,
                    (unsigned long long)*now, strerror(rc));
        rc = -rc;
    }
out:
    free(h);
    close(fd); /* drops the lock */
    return rc;
}

void rc_ring_close(rc_ring_t *ring)
{
    if (ring == NULL)
        return;
    /* Free the producer slots this handle's threads took. */
    int produced = atomic_load_explicit(&ring->produced, memory_order_acquire);
    for (uint32_t i = 0; produced && i < ring->hdr->prod_count; i++) {
        rc__producer_slot_t *s = rc__pslot(ring, i);
        uint32_t active = RC__SLOT_ACTIVE;
        if (atomic_load_explicit(&s->pid, memory_order_relaxed) == ring->pid &&
            atomic_load_explicit(&s->handle, memory_order_relaxed) == ring->id)
            atomic_compare_exchange_strong_explicit(&s->state, &active, RC__SLOT_FREE,
                                                    memory_order_release,
                                                    memory_order_relaxed);
    }
    rc__guard_remove(ring);
    if (ring->base != NULL)
        munmap(ring->base, ring->map_size);
    /* Closing drops the broker lock with this process's last descriptor of the object (forked
     * children keep theirs): never LOCK_UN, which would drop it for them too. */
    if (ring->fd >= 0)
        close(ring->fd);
    free(ring->path);
    free(ring);
}

int rc_ring_unlink(const char *name)
{
    char nm[64];
    if (shm_name(name, nm) != 0)
        return -EINVAL;
    return shm_unlink(nm) == 0 ? 0 : -errno;
}

uint64_t rc_ring_head(const rc_ring_t *ring)
{
    return atomic_load_explicit(&ring->hdr->head.pos, memory_order_acquire);
}

void rc_ring_head_load(const rc_ring_t *ring, uint64_t *pos, uint64_t *seq)
{
    rc__head_load(ring, pos, seq);
}

static int head_moved(const rc_ring_t *ring, uint64_t seq)
{
    uint64_t pos, now;
    rc__head_load(ring, &pos, &now);
    return now != seq;
}

int rc_ring_wait_head(rc_ring_t *ring, uint64_t seq, int64_t timeout_ns)
{
    rc__ring_hdr_t *h = ring->hdr;
    if (head_moved(ring, seq))
        return 0;
    /* Dekker with producers, as in rc_reader_wait: raise the flag, fence, read the futex word,
     * re-check the head (a claim moves it before its commit wakes sleepers), sleep. */
    atomic_store_explicit(&h->sleepers, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    uint32_t seen = atomic_load_explicit(&h->notify, memory_order_acquire);
    if (head_moved(ring, seq))
        return 0;
    int frc = rc__futex_wait(&h->notify, seen, timeout_ns);
    if (head_moved(ring, seq))
        return 0;
    return frc == -EINTR ? -EINTR : RC_ERING_EMPTY;
}

uint64_t rc_ring_capacity(const rc_ring_t *ring)
{
    return ring->capacity;
}

uint64_t rc_ring_id(const rc_ring_t *ring)
{
    return ring->key; /* random at creation, never 0, kept in the header */
}

void rc__head_load(const rc_ring_t *r, uint64_t *pos, uint64_t *seq)
{
    /* A 16-byte CAS that replaces the value with itself reads both halves atomically. */
    unsigned __int128 v = 0;
    rc__cas128(&r->hdr->head, &v, 0);
    *pos = (uint64_t)v;
    *seq = (uint64_t)(v >> 64);
}

uint64_t rc__min_lossless(const rc_ring_t *r, uint64_t head, uint32_t *lossless)
{
    uint64_t min = head;
    *lossless = 0;
    for (uint32_t i = 0; i < r->hdr->slot_count; i++) {
        rc__reader_slot_t *s = rc__slot(r, i);
        /* seq_cst: pairs with the joining reader's seq_cst store of ACTIVE (see
         * rc_reader_open); acquire makes mode and position current. */
        if (atomic_load_explicit(&s->state, memory_order_seq_cst) != RC__SLOT_ACTIVE)
            continue;
        if (atomic_load_explicit(&s->mode, memory_order_relaxed) != RC_READER_LOSSLESS)
            continue;
        /* Acquire: pairs with the reader's release store of its position, so everything the
         * reader did with older records happens before a producer reuses their space. */
        uint64_t p = atomic_load_explicit(&s->position, memory_order_acquire);
        (*lossless)++;
        if (p < min)
            min = p;
    }
    return min;
}

void rc_ring_stats(rc_ring_t *ring, rc_ring_stats_t *st)
{
    rc__ring_hdr_t *h = ring->hdr;
    memset(st, 0, sizeof(*st));
    st->capacity = ring->capacity;
    st->head = atomic_load_explicit(&h->head.pos, memory_order_acquire);
    st->head_seq = atomic_load_explicit(&h->head.seq, memory_order_relaxed);
    st->tail = st->head;
    for (uint32_t i = 0; i < h->slot_count; i++) {
        rc__reader_slot_t *s = rc__slot(ring, i);
        if (atomic_load_explicit(&s->state, memory_order_acquire) != RC__SLOT_ACTIVE)
            continue;
        st->readers++;
        if (atomic_load_explicit(&s->mode, memory_order_relaxed) != RC_READER_LOSSLESS)
            continue;
        st->lossless++;
        uint64_t p = atomic_load_explicit(&s->position, memory_order_relaxed);
        if (p < st->tail)
            st->tail = p;
    }
    st->fill = st->head - st->tail;
    st->sleepers = atomic_load_explicit(&h->sleepers, memory_order_relaxed);
    st->swept = atomic_load_explicit(&h->swept, memory_order_relaxed);
    st->reclaimed = atomic_load_explicit(&h->reclaimed, memory_order_relaxed);
    st->full = atomic_load_explicit(&h->full, memory_order_relaxed);
}

/* Sequence number of the record (or padding: the next record's) at `pos`, a record start at
 * or below the head that a lossless reader still holds. Header loads as racy as a lossy
 * reader's: the reader may move on and producers reuse the space meanwhile, which the second
 * stamp load tells (then UINT64_MAX). */
static uint64_t seq_at(const rc_ring_t *r, uint64_t pos)
{
    rc__rec_hdr_t *rec = rc__rec(r, pos);
    if (rc__load_racy(&rec->stamp) != (pos ^ r->key))
        return UINT64_MAX;
    uint64_t seq = rc__load_racy(&rec->seq);
    /* Acquire before the re-check: the seq load above cannot move after it. */
    atomic_thread_fence(memory_order_acquire);
    return rc__load_racy(&rec->stamp) == (pos ^ r->key) ? seq : UINT64_MAX;
}

int rc_ring_slowest(rc_ring_t *ring, rc_ring_slowest_t *out)
{
    rc__ring_hdr_t *h = ring->hdr;
    uint64_t head, head_seq;
    rc__head_load(ring, &head, &head_seq);
    memset(out, 0, sizeof(*out));
    int found = 0;
    for (uint32_t i = 0; i < h->slot_count; i++) {
        rc__reader_slot_t *s = rc__slot(ring, i);
        /* Acquire: pairs with the joining reader's store of ACTIVE; mode, pid and name were
         * written before it. */
        if (atomic_load_explicit(&s->state, memory_order_acquire) != RC__SLOT_ACTIVE ||
            atomic_load_explicit(&s->mode, memory_order_relaxed) != RC_READER_LOSSLESS)
            continue;
        uint64_t p = atomic_load_explicit(&s->position, memory_order_relaxed);
        if (found && p >= out->position)
            continue;
        found = 1;
        out->slot = i;
        out->position = p;
        out->pid = atomic_load_explicit(&s->pid, memory_order_relaxed);
        memcpy(out->name, s->name, sizeof(out->name));
        out->name[sizeof(out->name) - 1] = '\0';
    }
    if (!found)
        return -ENOENT;
    /* A reader that moved past the head read above (it kept reading meanwhile) lags by 0. */
    uint64_t p = rc__skip_gap(ring, out->position);
    out->lag_bytes = head > out->position ? head - out->position : 0;
    if (p < head) {
        uint64_t seq = seq_at(ring, p);
        out->lag_events = seq < head_seq ? head_seq - seq : 0;
    }
    return 0;
}

int rc_ring_readers(rc_ring_t *ring, rc_ring_reader_info_t *out, uint32_t max)
{
    rc__ring_hdr_t *h = ring->hdr;
    uint64_t head, head_seq;
    rc__head_load(ring, &head, &head_seq);
    int n = 0;
    for (uint32_t i = 0; i < h->slot_count; i++) {
        rc__reader_slot_t *s = rc__slot(ring, i);
        /* Acquire: as in rc_ring_slowest. */
        if (atomic_load_explicit(&s->state, memory_order_acquire) != RC__SLOT_ACTIVE)
            continue;
        if ((uint32_t)n++ >= max)
            continue;
        rc_ring_reader_info_t *o = &out[n - 1];
        memset(o, 0, sizeof(*o));
        o->slot = i;
        o->lossless = atomic_load_explicit(&s->mode, memory_order_relaxed) == RC_READER_LOSSLESS;
        o->pid = atomic_load_explicit(&s->pid, memory_order_relaxed);
        o->position = atomic_load_explicit(&s->position, memory_order_relaxed);
        memcpy(o->name, s->name, sizeof(o->name));
        o->name[sizeof(o->name) - 1] = '\0';
        if (head <= o->position)
            continue;
        o->lag_bytes = head - o->position;
        /* A lossy reader's position may be in space producers reuse: seq_at says so. */
        uint64_t p = rc__skip_gap(ring, o->position);
        uint64_t seq = p < head && o->lag_bytes <= ring->capacity ? seq_at(ring, p) : UINT64_MAX;
        o->lag_events = seq < head_seq ? head_seq - seq : 0;
    }
    return n;
}

/* Whether a reclaimer may judge slot `s` (in `state`) by its owner's pid without waiting for
 * its heartbeat to go stale. */
static int judge_now(const rc__reader_slot_t *s, uint32_t state, int prompt)
{
    if (!prompt || state != RC__SLOT_ACTIVE)
        return 0;
    return strncmp(s->name, RC__GROUP_SLOT_PREFIX, sizeof(RC__GROUP_SLOT_PREFIX) - 1) != 0;
}

/* `prompt`: rc_ring_reclaim_dead (see its contract for why only the lock holder may). */
static int reclaim(rc_ring_t *ring, int prompt)
{
    rc__ring_hdr_t *h = ring->hdr;
    uint64_t now = rc_now_ns();
    int n = 0;
    for (uint32_t i = 0; i < h->slot_count; i++) {
        rc__reader_slot_t *s = rc__slot(ring, i);
        uint32_t state = atomic_load_explicit(&s->state, memory_order_acquire);
        if (state == RC__SLOT_FREE)
            continue;
        uint64_t hb = atomic_load_explicit(&s->heartbeat, memory_order_relaxed);
        /* A joining reader's slot (INIT) may still show the identity of the slot's previous,
         * dead owner; every free path zeroes the heartbeat before its release of FREE, which
         * the joiner's CAS acquired and our acquire of INIT follows, so 0 means "joining now",
         * never "stale". */
        if (state == RC__SLOT_INIT && hb == 0)
            continue;
        if (!judge_now(s, state, prompt) && hb + h->heartbeat_timeout_ns > now)
            continue; /* recent sign of life: not even worth a look at /proc */
        pid_t pid = (pid_t)atomic_load_explicit(&s->pid, memory_order_relaxed);
        uint64_t start = atomic_load_explicit(&s->start_time, memory_order_relaxed);
        if (rc_proc_alive(pid, start))
            continue; /* alive but quiet: a slow lossless reader still gates, as it must */
        /* Zeroed before the CAS (see above). Should the CAS fail, the slot changed hands and
         * its new owner's heartbeat reads 0 for a moment: a joiner is then left alone, an
         * active reader is judged by its pid, which is alive. */
        atomic_store_explicit(&s->heartbeat, 0, memory_order_relaxed);
        /* CAS so two reclaimers (or a reclaimer and a late close) free the slot once. */
        if (atomic_compare_exchange_strong_explicit(&s->state, &state, RC__SLOT_FREE,
                                                    memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            atomic_fetch_add_explicit(&h->reclaimed, 1, memory_order_relaxed);
            n++;
        }
    }
    return n;
}

int rc_ring_reclaim(rc_ring_t *ring)
{
    return reclaim(ring, 0);
}

int rc_ring_reclaim_dead(rc_ring_t *ring)
{
    return ring->locked ? reclaim(ring, 1) : -EPERM;
}

/* Each thread remembers its producer slot for the last few handles it produced into. */
typedef struct {
    const rc_ring_t *ring;
    uint64_t id;
    rc__producer_slot_t *slot;
} tls_slot_t;
#define TLS_SLOTS 8
static __thread tls_slot_t tls_slots[TLS_SLOTS];
static __thread unsigned tls_next;

/* Whether a slot's owner is gone: its process, or (in our own process) its thread. */
static int slot_owner_gone(const rc__producer_slot_t *s, uint32_t self)
{
    uint32_t pid = atomic_load_explicit(&s->pid, memory_order_relaxed);
    if (pid == self) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/task/%u", atomic_load(&s->tid));
        return access(path, F_OK) != 0;
    }
    return !rc_proc_alive((pid_t)pid, atomic_load_explicit(&s->start_time,
                                                           memory_order_relaxed));
}

rc__producer_slot_t *rc__producer_slot(rc_ring_t *r)
{
    for (unsigned i = 0; i < TLS_SLOTS; i++)
        if (tls_slots[i].ring == r && tls_slots[i].id == r->id)
            return tls_slots[i].slot;
    rc__ring_hdr_t *h = r->hdr;
    uint32_t tid = (uint32_t)gettid();
    for (int round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < h->prod_count; i++) {
            rc__producer_slot_t *s = rc__pslot(r, i);
            uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
            if (st == RC__SLOT_INIT)
                continue;
            if (st == RC__SLOT_ACTIVE) {
                /* Second round: take over the slots of dead processes and exited threads. */
                if (round == 0 || !slot_owner_gone(s, r->pid))
                    continue;
            }
            if (!atomic_compare_exchange_strong_explicit(&s->state, &st, RC__SLOT_INIT,
                                                         memory_order_acq_rel,
                                                         memory_order_relaxed))
                continue;
            atomic_store_explicit(&s->pid, r->pid, memory_order_relaxed);
            atomic_store_explicit(&s->tid, tid, memory_order_relaxed);
            atomic_store_explicit(&s->handle, r->id, memory_order_relaxed);
            atomic_store_explicit(&s->start_time, rc_proc_start_time((pid_t)r->pid),
                                  memory_order_relaxed);
            atomic_store_explicit(&s->in_window, 0, memory_order_relaxed);
            atomic_store_explicit(&s->state, RC__SLOT_ACTIVE, memory_order_release);
            atomic_store_explicit(&r->produced, 1, memory_order_release);
            tls_slots[tls_next++ % TLS_SLOTS] = (tls_slot_t){.ring = r, .id = r->id, .slot = s};
            return s;
        }
    }
    return NULL;
}

int rc__window_busy(const rc_ring_t *r)
{
    rc__ring_hdr_t *h = r->hdr;
    for (uint32_t i = 0; i < h->prod_count; i++) {
        rc__producer_slot_t *s = rc__pslot(r, i);
        if (atomic_load_explicit(&s->state, memory_order_acquire) != RC__SLOT_ACTIVE)
            continue;
        /* Acquire: pairs with the producer's release decrement after its header store. */
        if (atomic_load_explicit(&s->in_window, memory_order_acquire) == 0)
            continue;
        if (!slot_owner_gone(s, r->pid))
            return 1;
    }
    return 0;
}

void rc__wake(rc_ring_t *r)
{
    rc__ring_hdr_t *h = r->hdr;
    /* Release: a sleeper that wakes and re-reads sees the commit that caused this wake. */
    atomic_fetch_add_explicit(&h->notify, 1, memory_order_release);
    syscall(SYS_futex, &h->notify, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int rc__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tsp = &ts;
    }
    /* Shared (not FUTEX_PRIVATE) since producers in other processes wake it. */
    if (syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, NULL, 0) != 0) {
        if (errno == EAGAIN || errno == ETIMEDOUT)
            return 0;
        return -errno;
    }
    return 0;
}
