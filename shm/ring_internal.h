/* The shared layout of a ringcast ring and the helpers shm/ uses on it. Not a public header.
 *
 * One mapping, the same bytes in memory mode (POSIX shm object) and durable mode (a file):
 *
 *   offset 0            header page (rc__ring_hdr_t, 4096 bytes)
 *   slots_off           reader slots (slot_count x rc__reader_slot_t, 128 bytes each)
 *   prod_off            producer slots (prod_count x rc__producer_slot_t, 64 bytes each)
 *   groups_off          consumer-group table (group_count x RC__GROUP_BYTES, zeroed; shm/group.c)
 *   records_off         record area (capacity bytes, power of two, page aligned)
 *
 * Every field below names its writer and the access it pairs with. Positions are byte offsets
 * into an infinite stream; a position maps to the record area at (pos & (capacity - 1)).
 * Records are 8-byte aligned and never wrap: a padding record (or, when fewer than
 * RC__REC_HDR bytes remain, an implicit gap) fills the end of the area. */
#ifndef RC_SHM_RING_INTERNAL_H
#define RC_SHM_RING_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "shm/reader.h"
#include "shm/ring.h"

#define RC__RING_MAGIC 0x474e495254435252ull /* "RRCTRING" little endian */
#define RC__RING_VERSION 1u
#define RC__CACHE_LINE 64
#define RC__HDR_BYTES 4096u
#define RC__SLOT_BYTES 128u
#define RC__GROUP_BYTES 256u
#define RC__DEFAULT_GROUPS 64u
#define RC__CHECKPOINTS 64u /* record-start hints, one per 1/64 of the area */
#define RC__REC_ALIGN 8u

/* Record header: 24 bytes at an 8-byte aligned position.
 *
 * word (commit word), written by the claiming producer, a sweeper, or (for records after the
 * first of a batch) by the producer before it commits the first record:
 *   pending   : bit 63 = 0, [0..31] claimed bytes of the whole claim, [32..62] producer pid
 *   committed : bit 63 = 1, [0..31] record length incl. header (unaligned), [32..47] type,
 *               [48..62] flags
 * The producer stores the pending word (relaxed) before the release store of `stamp`, so a reader
 * that acquires a matching stamp can only see the pending word or a later one, never a stale
 * word from an earlier lap. Commit is a CAS pending -> committed with release (seq_cst) order,
 * pairing with the readers' acquire load of `word`; the CAS loses to a sweeper that padded over.
 *
 * stamp = position ^ ring key: tells a header written for this position from stale bytes of an
 * earlier lap (other boundaries, payload bytes). Release-stored by the producer after `word`
 * and `seq`; readers acquire it first.
 *
 * seq = event sequence number (dense over all producers, assigned with the claim); for a
 * padding record, the seq of the next record. Relaxed, ordered by the stamp. */
typedef struct {
    _Atomic uint64_t word;
    _Atomic uint64_t stamp;
    _Atomic uint64_t seq;
} rc__rec_hdr_t;
#define RC__REC_HDR ((uint32_t)sizeof(rc__rec_hdr_t))
_Static_assert(sizeof(rc__rec_hdr_t) == 24, "record header is 24 bytes");
_Static_assert(RC__REC_HDR % RC__REC_ALIGN == 0, "record header keeps 8-byte alignment");

#define RC__W_COMMITTED (1ull << 63)
#define RC__W_LEN(w) ((uint32_t)((w)&0xffffffffu))
#define RC__W_TYPE(w) ((uint16_t)(((w) >> 32) & 0xffffu))
#define RC__W_FLAGS(w) ((uint16_t)(((w) >> 48) & 0x7fffu))
#define RC__W_PID(w) ((uint32_t)(((w) >> 32) & 0x7fffffffu))
#define RC__PENDING(len, pid) ((uint64_t)(len) | ((uint64_t)(pid)&0x7fffffffu) << 32)
#define RC__COMMITTED(len, type, flags)                                                            \
    ((uint64_t)(len) | (uint64_t)(type) << 32 | ((uint64_t)(flags)&0x7fffu) << 48 | RC__W_COMMITTED)

/* Types below RC_REC_TYPE_USER are the ring's own. */
#define RC__TYPE_PAD 0u
/* Flag on a padding record written by a sweeper over a dead producer's claim. */
#define RC__FLAG_SWEPT 0x4000u
/* Flag on a padding record written by recovery over a corrupt record or stretch (its bytes stay
 * under the padding, for whoever investigates; shm/ring_recover.c). */
#define RC__FLAG_CORRUPT 0x2000u

/* Slot states (rc__reader_slot_t.state). */
#define RC__SLOT_FREE 0u
#define RC__SLOT_INIT 1u /* being filled by the joining reader; not yet gating */
#define RC__SLOT_ACTIVE 2u

/* Reader slot: 128 bytes, two cache lines. Line 0 is the reader's hot position, line 1 its
 * identity, so producers scanning positions do not pull identity lines and vice versa. */
typedef struct {
    /* Written by the owning reader (release) after it is done with everything before it;
     * producers acquire it when they recompute the gate (rc__gate_refresh). Lossless readers
     * gate producers with it; lossy readers publish it for observability only. */
    _Atomic uint64_t position;
    uint8_t pad0_[RC__CACHE_LINE - 8];
    /* FREE -> INIT by the joining reader (CAS), INIT -> ACTIVE by it (seq_cst store, paired with
     * the producers' seq_cst load in rc__gate_refresh), ACTIVE -> FREE by its own close or by a
     * reclaimer (CAS) once the owner is dead. */
    _Atomic uint32_t state;
    _Atomic uint32_t mode; /* rc_reader_mode_t; written in INIT, read after acquiring state */
    _Atomic uint32_t pid;  /* owner pid; written in INIT */
    uint32_t reserved0;
    _Atomic uint64_t start_time; /* owner's start time (shm/proc.h); written in INIT */
    _Atomic uint64_t heartbeat;  /* rc_now_ns() of the owner's last sign of life; relaxed */
    _Atomic uint64_t lost;       /* lossy readers: events lost so far; relaxed, observability */
    char name[24];               /* NUL-terminated; written in INIT */
} rc__reader_slot_t;
_Static_assert(sizeof(rc__reader_slot_t) == RC__SLOT_BYTES, "reader slot is 128 bytes");
_Static_assert(offsetof(rc__reader_slot_t, state) == RC__CACHE_LINE, "identity on its own line");

/* Producer slot: one per (ring handle, thread) that has produced, 64 bytes. It exists so a
 * sweeper can tell a claim whose producer died between its head CAS and its first header store
 * (pad it over) from one whose producer is merely slow in that window (leave it). */
typedef struct {
    /* FREE -> INIT -> ACTIVE by the thread's first claim on a handle (CAS, then release store);
     * back to FREE by rc_ring_close of that handle, or by a slot hunter once the owning
     * process (or, in the hunter's own process, the owning thread) is gone (CAS). */
    _Atomic uint32_t state;
    _Atomic uint32_t pid;        /* owner process; written in INIT */
    _Atomic uint64_t start_time; /* owner's start time; written in INIT */
    /* 1 while the owning thread is between its head CAS and its first header store; 0
     * otherwise. Only the owner writes it: set (relaxed) before the CAS, which is a full
     * barrier that publishes it first; cleared with release after the header store. A sweeper
     * acquires it after seeing the head past a headerless position, then re-reads the stamp. */
    _Atomic uint32_t in_window;
    _Atomic uint32_t tid;    /* owner thread; written in INIT */
    _Atomic uint64_t handle; /* owner's handle id (process-local); written in INIT */
    uint8_t pad_[RC__CACHE_LINE - 32];
} rc__producer_slot_t;
_Static_assert(sizeof(rc__producer_slot_t) == RC__CACHE_LINE, "producer slot is a cache line");
#define RC__DEFAULT_PRODUCERS 128u

/* Producers' claim head: position and event sequence advance together in one 16-byte CAS, so
 * sequence numbers follow position order across producers. */
typedef struct {
    _Atomic uint64_t pos;
    _Atomic uint64_t seq;
} __attribute__((aligned(16))) rc__head_t;

typedef struct {
    /* --- line 0: identity, written once by the creator before `version` --- */
    _Atomic uint64_t magic;   /* RC__RING_MAGIC */
    _Atomic uint32_t version; /* RC__RING_VERSION, release-stored LAST by the creator; 0 = not
                               * ready. Openers acquire it before reading anything else. */
    uint32_t flags;           /* RC_RING_F_* */
    uint64_t capacity;        /* record area bytes, power of two */
    uint64_t file_size;       /* total bytes of the mapping */
    uint64_t key;             /* random, for record stamps */
    uint32_t slots_off;       /* byte offset of the reader slots */
    uint32_t slot_count;
    uint32_t groups_off; /* byte offset of the reserved consumer-group table */
    uint32_t group_count;
    uint64_t records_off; /* byte offset of the record area, page aligned */
    /* --- line 1: configuration, written once by the creator --- */
    uint64_t created_ns;           /* creator's CLOCK_MONOTONIC */
    uint64_t heartbeat_timeout_ns; /* a reader silent this long is checked for death */
    uint64_t pad_timeout_ns;       /* a claim pending this long is checked for a dead producer */
    uint32_t max_record;           /* largest record (header included) */
    uint32_t max_claim;            /* largest single claim (batch) in bytes */
    uint32_t creator_pid;
    uint32_t checkpoint_shift; /* log2(capacity / RC__CHECKPOINTS) */
    uint32_t prod_off;         /* byte offset of the producer slots */
    uint32_t prod_count;
    uint8_t pad1_[RC__CACHE_LINE - 48];
    /* --- line 2: the ring's name, written once by the creator --- */
    char name[64];
    /* --- line 3: who holds the broker lock (an flock on the object, rc_ring_lock). Stored
     * relaxed by the holder right after it takes the lock, start time first; read only to
     * name the holder in a refusal, so a torn or stale pair costs a message, never safety.
     * Zero in rings made before the lock existed. --- */
    _Atomic uint32_t lock_pid;
    uint32_t reserved3;
    _Atomic uint64_t lock_start; /* the holder's start time (shm/proc.h) */
    uint8_t pad3_[RC__CACHE_LINE - 16];
    /* --- line 4: claim head. CAS by producers (seq_cst); readers load `pos` with acquire to
     * tell "not claimed yet" from "claimed, not committed" and lossy readers re-check it after
     * copying (paired with the release fence a producer issues after its claim). --- */
    rc__head_t head;
    uint8_t pad4_[RC__CACHE_LINE - 16];
    /* --- line 5: gate. Highest position producers may claim up to (exclusive) in bits 3..63,
     * plus a 3-bit join generation in bits 0..2. Raised by producers (CAS, seq_cst) after
     * scanning lossless readers' positions; a joining lossless reader bumps the generation
     * (CAS) so a producer whose scan missed it cannot publish a gate computed without it. --- */
    _Atomic uint64_t gate;
    uint8_t pad5_[RC__CACHE_LINE - 8];
    /* --- line 6: wakeups. `sleepers` is a flag, 1 when some reader may be asleep: readers set
     * it (seq_cst, then a seq_cst fence) before re-checking their record and sleeping on
     * `notify`; a producer loads it (seq_cst) after its seq_cst commit CAS and, if set, clears
     * it (exchange), increments `notify` (release) and issues FUTEX_WAKE for all. --- */
    _Atomic uint32_t notify;
    _Atomic uint32_t sleepers;
    uint8_t pad6_[RC__CACHE_LINE - 8];
    /* --- line 7: liveness counters (relaxed; observability) --- */
    _Atomic uint64_t swept;     /* claims padded over after their producer died */
    _Atomic uint64_t reclaimed; /* reader slots reclaimed from dead readers */
    _Atomic uint64_t full;      /* claims refused with RC_ERING_FULL */
    uint8_t pad7_[RC__CACHE_LINE - 24];
    /* --- lines 8..15: record-start checkpoints. checkpoints[i] is the position of the first
     * record starting at or after the latest boundary k * (capacity / 64) with k % 64 == i.
     * Relaxed stores by the producer whose claim covers the boundary; lossy readers use them
     * as hints only and validate the stamp there. --- */
    _Atomic uint64_t checkpoints[RC__CHECKPOINTS];
    uint8_t reserved_[RC__HDR_BYTES - 16 * RC__CACHE_LINE];
} rc__ring_hdr_t;

_Static_assert(sizeof(rc__ring_hdr_t) == RC__HDR_BYTES, "header is one page");
_Static_assert(offsetof(rc__ring_hdr_t, magic) == 0, "magic first");
_Static_assert(offsetof(rc__ring_hdr_t, version) == 8, "version at 8");
_Static_assert(offsetof(rc__ring_hdr_t, capacity) == 16, "capacity at 16");
_Static_assert(offsetof(rc__ring_hdr_t, records_off) == 56, "identity fits line 0");
_Static_assert(offsetof(rc__ring_hdr_t, created_ns) == 64, "config on line 1");
_Static_assert(offsetof(rc__ring_hdr_t, prod_off) == 104, "producer table on line 1");
_Static_assert(offsetof(rc__ring_hdr_t, name) == 128, "name on line 2");
_Static_assert(offsetof(rc__ring_hdr_t, lock_pid) == 192, "lock holder on line 3");
_Static_assert(offsetof(rc__ring_hdr_t, head) == 256, "head on line 4");
_Static_assert(offsetof(rc__ring_hdr_t, gate) == 320, "gate on line 5");
_Static_assert(offsetof(rc__ring_hdr_t, notify) == 384, "futex on line 6");
_Static_assert(offsetof(rc__ring_hdr_t, swept) == 448, "counters on line 7");
_Static_assert(offsetof(rc__ring_hdr_t, checkpoints) == 512, "checkpoints on lines 8..15");

/* Process-local handle. Read-only after open, so producer calls may share it across threads. */
struct rc_ring_s {
    rc__ring_hdr_t *hdr;
    uint8_t *base;    /* mapping */
    uint8_t *records; /* base + records_off */
    size_t map_size;
    uint64_t capacity;
    uint64_t mask;
    uint64_t key;
    uint32_t max_record;
    uint32_t max_claim;
    uint32_t pid; /* of the process that opened the handle */
    int fd;
    int owner;  /* created (not attached) */
    int locked; /* this handle took the broker lock (rc_ring_lock, RC_RING_F_LOCK) */
    int guard;  /* 1 + index of the mapping in the SIGBUS guard's table, 0 when not in it */
    char name[64];
    char *path; /* the object as an operator sees it: /dev/shm/NAME, or the ring file's path */
    _Atomic uint64_t last_reclaim_ns; /* rate limit for producers' reclaim on a full ring */
    uint64_t sweep_pos;               /* rc_ring_sweep: claim seen blocking without a header */
    uint64_t sweep_since;             /* ... since this rc_now_ns() */
    uint64_t id;                      /* process-unique handle id, for producer slots */
    _Atomic int produced;             /* some thread took a producer slot through this handle */
};

static inline rc__producer_slot_t *rc__pslot(const rc_ring_t *r, uint32_t i)
{
    return (rc__producer_slot_t *)(r->base + r->hdr->prod_off + (size_t)i * RC__CACHE_LINE);
}

static inline rc__reader_slot_t *rc__slot(const rc_ring_t *r, uint32_t i)
{
    return (rc__reader_slot_t *)(r->base + r->hdr->slots_off + (size_t)i * RC__SLOT_BYTES);
}

static inline rc__rec_hdr_t *rc__rec(const rc_ring_t *r, uint64_t pos)
{
    return (rc__rec_hdr_t *)(r->records + (pos & r->mask));
}

static inline uint64_t rc__align8(uint64_t n)
{
    return (n + (RC__REC_ALIGN - 1)) & ~(uint64_t)(RC__REC_ALIGN - 1);
}

/* Bytes left before the end of the record area at `pos`. */
static inline uint64_t rc__room_to_end(const rc_ring_t *r, uint64_t pos)
{
    return r->capacity - (pos & r->mask);
}

/* Position after an implicit end gap: fewer than a header's bytes remain, so nobody writes
 * there and readers step over it without reading. */
static inline uint64_t rc__skip_gap(const rc_ring_t *r, uint64_t pos)
{
    return rc__room_to_end(r, pos) < RC__REC_HDR ? pos + rc__room_to_end(r, pos) : pos;
}

/* Loads of header fields at positions producers may be overwriting with payload bytes at the same
 * time (lossy readers, sweepers, start-position hints). Each caller validates what it read
 * (stamp, then the head) before using it. Under ThreadSanitizer these loads stay outside
 * instrumentation: the race with the producers' plain payload stores is intended, as in a
 * seqlock. */
#if defined(__SANITIZE_THREAD__)
__attribute__((no_sanitize("thread"), noinline, unused)) static uint64_t
rc__load_racy(_Atomic uint64_t *p)
{
    return __atomic_load_n((uint64_t *)p, __ATOMIC_ACQUIRE);
}
#else
static inline uint64_t rc__load_racy(_Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_acquire);
}
#endif

/* 16-byte compare-and-swap on the claim head, lock-free across processes. Written out for
 * x86-64 because compilers may route 16-byte atomics through libatomic, and ThreadSanitizer
 * emulates them with a process-local lock, neither of which is atomic between processes.
 * Returns 1 on success; on failure *expected receives the current value. Full barrier. */
static inline int rc__cas128(void *p, unsigned __int128 *expected, unsigned __int128 desired)
{
#if defined(__x86_64__)
    uint64_t lo = (uint64_t)*expected, hi = (uint64_t)(*expected >> 64);
    char ok;
    __asm__ __volatile__("lock cmpxchg16b %1\n\tsete %0"
                         : "=q"(ok), "+m"(*(volatile unsigned __int128 *)p), "+a"(lo), "+d"(hi)
                         : "b"((uint64_t)desired), "c"((uint64_t)(desired >> 64))
                         : "memory", "cc");
    *expected = (unsigned __int128)hi << 64 | lo;
    return ok;
#else
    unsigned __int128 old = __sync_val_compare_and_swap((unsigned __int128 *)p, *expected, desired);
    int ok = old == *expected;
    *expected = old;
    return ok;
#endif
}

#define RC__GATE_POS(g) ((g) & ~7ull)
#define RC__GATE_GEN(g) ((g)&7ull)

/* Slot names of consumer groups start with this (shm/group_join.c): their owner identity
 * passes between members, so reclaimers always wait out the heartbeat timeout for them. */
#define RC__GROUP_SLOT_PREFIX "g:"

/* Where shm objects live, for messages and for checking that a name still names an object. */
#define RC__SHM_DIR "/dev/shm"

/* ring.c: formats a setup message into `err` when there is one. */
void rc__set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ring_guard.c: who may use a ring. */
struct stat;
/* 0 when the object `st` describes is owned by the effective uid and closed to group and
 * others; else -EPERM and a message naming `path`, the owner or mode, and the fix. */
int rc__ring_check_owner(const struct stat *st, const char *path, char *err, size_t errlen);
/* Removes an existing ring object (shm name `nm`, or the file `path` when `nm` is NULL) to
 * replace it, under its broker lock, after the owner check: 0 (removed, or there was none),
 * -EPERM, -EBUSY, -ESTALE (replaced meanwhile), -errno. */
int rc__ring_remove_for_replace(const char *nm, const char *path, char *err, size_t errlen);
/* Takes the broker lock on `fd`, an object this process just created as `path` (nobody holds
 * it yet, unless another process is replacing it at this very moment): 0, -EBUSY or -ESTALE. */
int rc__ring_lock_new(int fd, const char *path, char *err, size_t errlen);
/* Adds the handle's mapping to the SIGBUS guard's table / removes it (before munmap). */
void rc__guard_add(rc_ring_t *r);
void rc__guard_remove(rc_ring_t *r);

/* ring.c / producer.c / reader.c internals. */
void rc__head_load(const rc_ring_t *r, uint64_t *pos, uint64_t *seq);
/* The record-start hints of the boundaries in [from, end) (shm/producer.c). */
void rc__write_checkpoints(rc_ring_t *r, uint64_t from, uint64_t end, const uint64_t *starts,
                           uint32_t nstarts);
uint64_t rc__gate_refresh(rc_ring_t *r);
uint64_t rc__min_lossless(const rc_ring_t *r, uint64_t head, uint32_t *lossless);
uint64_t rc__oldest_hint(const rc_ring_t *r, uint64_t lo, uint64_t head);
int rc__try_sweep(rc_ring_t *r, uint64_t pos, uint64_t stalled_ns);
rc__producer_slot_t *rc__producer_slot(rc_ring_t *r);
int rc__window_busy(const rc_ring_t *r);
void rc__wake(rc_ring_t *r);
int rc__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns);

#endif
