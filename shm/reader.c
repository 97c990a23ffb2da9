/* Reading the ring: reader slots, lossless zero-copy polling, lossy copy-and-validate polling,
 * start positions, waiting (spin, then futex), and noticing claims stuck by a dead producer. */
#include "core/clock.h"
#include "shm/ring_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shm/proc.h"

#define DEFAULT_SPIN 4000u
#define HEARTBEAT_EVERY 4096u  /* polls between heartbeats (a clock read each) */
#define STALL_CHECK_EVERY 1024u /* empty polls at one position between stall checks */
#define MAX_SLEEP_NS 50000000ll /* sleepers wake at least this often to check for stalls */

/* Where a claim was seen holding up a reader, and since when (stalled()). */
typedef struct {
    uint64_t pos;
    uint64_t since;
    uint32_t polls;
} stall_t;

struct rc_reader_s {
    rc_ring_t *ring;
    rc__reader_slot_t *slot;
    uint32_t slot_idx;
    rc_reader_mode_t mode;
    uint64_t pos;       /* next position to read */
    uint64_t published; /* last value stored in slot->position */
    uint64_t next_seq;  /* lossy: sequence expected next, when seq_known */
    int seq_known;
    uint64_t lost;
    uint64_t lost_unreported; /* lost before the next record returned (reported in its view) */
    uint8_t *buf; /* lossy: copy of the current record */
    uint32_t spin;
    uint32_t linger_ns;
    uint32_t polls;
    stall_t stall;  /* the owner's polls and waits */
    stall_t wstall; /* rc_reader_wait_past, which may run on another thread: its own */
    int manual;     /* RC_READER_F_MANUAL_ACK */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Copies bytes that producers may be overwriting at the same time (lossy readers only). The
 * result is used only after lossy_read re-validates the head, the seqlock pattern; under TSan
 * the copy is a plain word loop outside instrumentation, since the race is intended. */
#if defined(__SANITIZE_THREAD__)
__attribute__((no_sanitize("thread"), noinline)) static void racy_copy(void *dst,
                                                                        const void *src,
                                                                        size_t n)
{
    volatile const uint8_t *s = src;
    uint8_t *d = dst;
    for (size_t i = 0; i < n; i++)
        d[i] = s[i];
}
#else
static void racy_copy(void *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
}
#endif

/* Lossless readers publish their position lazily while records keep coming (every 1/32 of
 * the capacity), and at once whenever they find nothing new: a store per record would bounce
 * the slot's cache line between the reader and producers scanning it near a full ring. */
static void publish_lazy(rc_reader_t *r, uint64_t p)
{
    if (r->manual)
        return; /* only rc_reader_ack moves a manual-ack reader's slot (views stay valid) */
    if (p - r->published >= (r->ring->capacity >> 5)) {
        atomic_store_explicit(&r->slot->position, p, memory_order_release);
        r->published = p;
    }
}

static void publish(rc_reader_t *r, uint64_t p)
{
    if (r->manual)
        return; /* only rc_reader_ack moves a manual-ack reader's slot */
    if (r->published != p) {
        /* Release: pairs with producers' acquire in rc__min_lossless; everything this reader
         * did with records before `p` happens before their space is claimed again. */
        atomic_store_explicit(&r->slot->position, p, memory_order_release);
        r->published = p;
    }
}

void rc_reader_heartbeat(rc_reader_t *r)
{
    atomic_store_explicit(&r->slot->heartbeat, rc_now_ns(), memory_order_relaxed);
}

uint64_t rc__oldest_hint(const rc_ring_t *r, uint64_t lo, uint64_t head)
{
    if (lo == 0)
        return 0; /* nothing overwritten yet: position 0 starts the first record */
    uint32_t shift = r->hdr->checkpoint_shift;
    uint64_t seg = 1ull << shift;
    for (uint64_t b = (lo + seg - 1) & ~(seg - 1); b < head; b += seg) {
        uint64_t c = atomic_load_explicit(&r->hdr->checkpoints[(b >> shift) & (RC__CHECKPOINTS - 1)],
                                          memory_order_relaxed);
        if (c == UINT64_MAX || c < b || c - b > seg + r->max_claim)
            continue; /* another lap's hint, or none */
        if (c >= head)
            return head;
        uint64_t q = rc__skip_gap(r, c);
        if (q >= head)
            return head;
        /* Acquire: pairs with the producer's release store of the stamp. */
        if (rc__load_racy(&rc__rec(r, q)->stamp) == (q ^ r->key))
            return q;
    }
    return head;
}

/* Called on every empty poll at `p`; cheap except every STALL_CHECK_EVERY calls (or when
 * `force`), when it asks whether a claim has blocked `p` past the pad timeout. */
static void stalled(rc_reader_t *r, stall_t *st, uint64_t p, int force)
{
    if (st->pos != p) {
        st->pos = p;
        st->polls = 0;
        st->since = 0;
        if (!force)
            return;
    }
    if (!force && (++st->polls % STALL_CHECK_EVERY) != 0)
        return;
    rc_ring_t *ring = r->ring;
    if (atomic_load_explicit(&ring->hdr->head.pos, memory_order_acquire) <= p)
        return; /* simply empty: nothing claimed at p yet */
    uint64_t now = rc_now_ns();
    atomic_store_explicit(&r->slot->heartbeat, now, memory_order_relaxed);
    if (st->since == 0) {
        st->since = now;
        return;
    }
    if (now - st->since >= ring->hdr->pad_timeout_ns)
        rc__try_sweep(ring, p, now - st->since);
}

static int lossless_poll(rc_reader_t *r, rc_ring_view_t *v)
{
    rc_ring_t *ring = r->ring;
    uint64_t p = r->pos;
    for (;;) {
        p = rc__skip_gap(ring, p);
        rc__rec_hdr_t *rec = rc__rec(ring, p);
        /* Acquire: pairs with the producer's release store of the stamp (after the pending
         * word), so the word load below cannot return a stale lap's value. */
        if (atomic_load_explicit(&rec->stamp, memory_order_acquire) != (p ^ ring->key))
            break;
        /* Acquire: pairs with the commit CAS; the payload is visible once this says so. */
        uint64_t w = atomic_load_explicit(&rec->word, memory_order_acquire);
        if (!(w & RC__W_COMMITTED))
            break;
        uint32_t len = RC__W_LEN(w);
        if (len < RC__REC_HDR || len > ring->max_claim)
            return RC_ERING_CORRUPT;
        if (RC__W_TYPE(w) == RC__TYPE_PAD) {
            p += rc__align8(len);
            continue;
        }
        publish_lazy(r, p);
        v->pos = p;
        v->next = p + rc__align8(len);
        v->seq = atomic_load_explicit(&rec->seq, memory_order_relaxed);
        v->lost = 0;
        v->data = (const uint8_t *)rec + RC__REC_HDR;
        v->len = len - RC__REC_HDR;
        v->type = RC__W_TYPE(w);
        v->flags = RC__W_FLAGS(w);
        r->pos = v->next;
        return 0;
    }
    r->pos = p;
    publish(r, p);
    stalled(r, &r->stall, p, 0);
    return RC_ERING_EMPTY;
}

/* Lossy reader lapped at `p`: move to the oldest record start still intact. The loss is counted
 * when the next record is read (its sequence number minus the one expected). */
static uint64_t lossy_jump(rc_reader_t *r, uint64_t head)
{
    rc_ring_t *ring = r->ring;
    uint64_t p = rc__oldest_hint(ring, head - ring->capacity, head);
    if (p == head) {
        uint64_t hp, hs;
        rc__head_load(ring, &hp, &hs);
        p = hp;
        if (r->seq_known && hs > r->next_seq)
            r->lost_unreported += hs - r->next_seq;
        r->next_seq = hs;
        r->seq_known = 1;
    }
    return p;
}

/* After copying, acquire-fence and re-read the head: if a claim reached past p + capacity,
 * some of what we copied may be the next lap's bytes (see claim_space's release fence). */
static int lossy_intact(const rc_ring_t *ring, uint64_t p, uint64_t *head)
{
    atomic_thread_fence(memory_order_acquire);
    *head = atomic_load_explicit(&ring->hdr->head.pos, memory_order_relaxed);
    return *head <= p + ring->capacity;
}

static int lossy_poll(rc_reader_t *r, rc_ring_view_t *v)
{
    rc_ring_t *ring = r->ring;
    uint64_t p = r->pos;
    uint64_t head;
    for (;;) {
        p = rc__skip_gap(ring, p);
        rc__rec_hdr_t *rec = rc__rec(ring, p);
        uint64_t w = 0;
        /* Same pairing as in lossless_poll, but these bytes may be under rewrite: validated by
         * lossy_intact before anything read here is used. */
        int ready = rc__load_racy(&rec->stamp) == (p ^ ring->key);
        if (ready) {
            w = rc__load_racy(&rec->word);
            ready = (w & RC__W_COMMITTED) != 0;
        }
        if (!ready) {
            head = atomic_load_explicit(&ring->hdr->head.pos, memory_order_acquire);
            if (head > p + ring->capacity) {
                p = lossy_jump(r, head);
                continue;
            }
            break;
        }
        uint32_t len = RC__W_LEN(w);
        uint64_t seq = rc__load_racy(&rec->seq);
        int pad = RC__W_TYPE(w) == RC__TYPE_PAD;
        uint32_t limit = pad ? ring->max_claim : ring->max_record;
        if (len < RC__REC_HDR || len > limit) {
            if (!lossy_intact(ring, p, &head)) {
                p = lossy_jump(r, head);
                continue;
            }
            return RC_ERING_CORRUPT;
        }
        if (pad) {
            if (!lossy_intact(ring, p, &head)) {
                p = lossy_jump(r, head);
                continue;
            }
            if (RC__W_FLAGS(w) & RC__FLAG_SWEPT)
                r->seq_known = 0; /* a dead producer's claim: its numbers were never events */
            p += rc__align8(len);
            continue;
        }
        racy_copy(r->buf, (const uint8_t *)rec + RC__REC_HDR, len - RC__REC_HDR);
        if (!lossy_intact(ring, p, &head)) {
            p = lossy_jump(r, head);
            continue;
        }
        uint64_t lost = r->lost_unreported;
        r->lost_unreported = 0;
        if (r->seq_known && seq > r->next_seq)
            lost += seq - r->next_seq;
        if (lost != 0) {
            r->lost += lost;
            atomic_store_explicit(&r->slot->lost, r->lost, memory_order_relaxed);
        }
        r->next_seq = seq + 1;
        r->seq_known = 1;
        v->pos = p;
        v->next = p + rc__align8(len);
        v->seq = seq;
        v->lost = lost;
        v->data = r->buf;
        v->len = len - RC__REC_HDR;
        v->type = RC__W_TYPE(w);
        v->flags = RC__W_FLAGS(w);
        r->pos = v->next;
        publish_lazy(r, r->pos);
        return 0;
    }
    r->pos = p;
    publish(r, p);
    stalled(r, &r->stall, p, 0);
    return RC_ERING_EMPTY;
}

int rc_reader_poll(rc_reader_t *r, rc_ring_view_t *v)
{
    if ((++r->polls % HEARTBEAT_EVERY) == 0)
        rc_reader_heartbeat(r);
    return r->mode == RC_READER_LOSSLESS ? lossless_poll(r, v) : lossy_poll(r, v);
}

int rc_reader_wait(rc_reader_t *r, rc_ring_view_t *v, int64_t timeout_ns)
{
    rc__ring_hdr_t *h = r->ring->hdr;
    uint64_t start = 0;
    int rc;
    for (uint32_t i = 0; i < r->spin; i++) {
        rc = rc_reader_poll(r, v);
        if (rc != RC_ERING_EMPTY)
            return rc;
        cpu_relax();
    }
    if (timeout_ns == 0)
        return rc_reader_poll(r, v);
    start = rc_now_ns();
    for (;;) {
        rc_reader_heartbeat(r);
        /* Dekker with producers: raise the flag (seq_cst) and fence before re-checking the
         * record; a producer commits (seq_cst CAS) before it loads the flag. Producers clear
         * it when they wake, so one wake serves a whole sleep episode, not every commit. */
        atomic_store_explicit(&h->sleepers, 1, memory_order_seq_cst);
        atomic_thread_fence(memory_order_seq_cst);
        /* Read the futex word before the re-check: a wake after the check changes it, so
         * the FUTEX_WAIT below returns at once instead of sleeping through it. */
        uint32_t seen = atomic_load_explicit(&h->notify, memory_order_acquire);
        rc = rc_reader_poll(r, v);
        if (rc != RC_ERING_EMPTY)
            return rc;
        int64_t sleep_ns = MAX_SLEEP_NS;
        if (timeout_ns > 0) {
            int64_t left = timeout_ns - (int64_t)(rc_now_ns() - start);
            if (left <= 0)
                return RC_ERING_EMPTY;
            if (left < sleep_ns)
                sleep_ns = left;
        }
        int frc = rc__futex_wait(&h->notify, seen, sleep_ns);
        if (frc == 0 && r->linger_ns > 0 &&
            atomic_load_explicit(&h->notify, memory_order_relaxed) != seen) {
            /* Woken by a commit: let more arrive, then take them in one batch. */
            struct timespec ts = {0, (long)r->linger_ns};
            (void)nanosleep(&ts, NULL);
        }
        rc = rc_reader_poll(r, v);
        if (rc != RC_ERING_EMPTY)
            return rc;
        if (frc == -EINTR)
            return -EINTR;
        stalled(r, &r->stall, r->pos, 1);
    }
}

/* Whether a poll at `p` would move on: the record (or padding) starting there is committed, or
 * producers lapped `p` (a lossy reader then jumps ahead). `p` is a position the owner may be
 * polling past meanwhile, so for a lossy reader these bytes may be under rewrite: the loads are
 * racy ones, and only a stamp of `p`'s own lap with a committed word answers yes (a stale lap's
 * header never carries `p`'s stamp; see lossless_poll). */
static int readable_at(const rc_ring_t *ring, uint64_t p)
{
    p = rc__skip_gap(ring, p);
    rc__rec_hdr_t *rec = rc__rec(ring, p);
    /* Acquire (both): pair with the producer's release store of the stamp and its commit CAS,
     * as in lossless_poll. */
    if (rc__load_racy(&rec->stamp) == (p ^ ring->key) &&
        (rc__load_racy(&rec->word) & RC__W_COMMITTED) != 0)
        return 1;
    return atomic_load_explicit(&ring->hdr->head.pos, memory_order_acquire) > p + ring->capacity;
}

int rc_reader_wait_past(rc_reader_t *r, uint64_t pos, int64_t timeout_ns)
{
    rc_ring_t *ring = r->ring;
    rc__ring_hdr_t *h = ring->hdr;
    uint64_t start = rc_now_ns();
    for (;;) {
        if (readable_at(ring, pos))
            return 0;
        int64_t sleep_ns = MAX_SLEEP_NS;
        if (timeout_ns >= 0) {
            int64_t left = timeout_ns - (int64_t)(rc_now_ns() - start);
            if (left <= 0)
                return RC_ERING_EMPTY;
            if (left < sleep_ns)
                sleep_ns = left;
        }
        rc_reader_heartbeat(r);
        /* Dekker with producers, as in rc_reader_wait: raise the flag, fence, read the futex
         * word, re-check, sleep. */
        atomic_store_explicit(&h->sleepers, 1, memory_order_seq_cst);
        atomic_thread_fence(memory_order_seq_cst);
        uint32_t seen = atomic_load_explicit(&h->notify, memory_order_acquire);
        if (readable_at(ring, pos))
            return 0;
        int frc = rc__futex_wait(&h->notify, seen, sleep_ns);
        if (readable_at(ring, pos))
            return 0;
        if (frc == -EINTR)
            return -EINTR;
        /* Woken for something else (another position's commit, rc_reader_wake): the caller
         * looks again at what it waits for, which may have changed. */
        if (atomic_load_explicit(&h->notify, memory_order_relaxed) != seen)
            return RC_ERING_EMPTY;
        stalled(r, &r->wstall, pos, 1);
    }
}

void rc_reader_wake(const rc_reader_t *r)
{
    rc__wake(r->ring);
}

_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t), "the futex word is a plain word");

int rc_reader_prepare_sleep(rc_reader_t *r, const uint32_t **word, uint32_t *val)
{
    rc__ring_hdr_t *h = r->ring->hdr;
    rc_reader_heartbeat(r);
    /* The caller sleeps instead of polling, so the empty polls that would count up to a stall
     * check do not come: check at every sleep, as rc_reader_wait does. */
    stalled(r, &r->stall, r->pos, 1);
    /* Dekker with producers, as in rc_reader_wait; the caller's futex wait (in the kernel, on
     * `seen`) is the sleep. */
    atomic_store_explicit(&h->sleepers, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    uint32_t seen = atomic_load_explicit(&h->notify, memory_order_acquire);
    if (readable_at(r->ring, r->pos))
        return 1;
    *word = (const uint32_t *)&h->notify;
    *val = seen;
    return 0;
}

static int take_slot(rc_ring_t *ring, uint32_t *idx)
{
    for (int round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < ring->hdr->slot_count; i++) {
            uint32_t expect = RC__SLOT_FREE;
            if (atomic_compare_exchange_strong_explicit(&rc__slot(ring, i)->state, &expect,
                                                        RC__SLOT_INIT, memory_order_acq_rel,
                                                        memory_order_relaxed)) {
                *idx = i;
                return 0;
            }
        }
        if (round == 0 && rc_ring_reclaim(ring) == 0)
            break;
    }
    return RC_ERING_NO_SLOT;
}

/* Whether `p` (below head) is a record start of the current lap. */
static int is_record_start(const rc_ring_t *ring, uint64_t p)
{
    p = rc__skip_gap(ring, p);
    return rc__load_racy(&rc__rec(ring, p)->stamp) == (p ^ ring->key);
}

/* Lossless join. The slot is ACTIVE with a provisional position no higher than the final one.
 * Choose the start against the gate `g`, publish it, then bump the gate's generation with a
 * CAS: a producer that scanned the slots before we were ACTIVE loaded an older gate, so its
 * CAS fails and it rescans; a producer whose gate we read was raised from a scan that every
 * position we may choose here is above. */
static int join_lossless(rc_reader_t *r, const rc_reader_opts_t *o)
{
    rc_ring_t *ring = r->ring;
    rc__ring_hdr_t *h = ring->hdr;
    uint64_t g = atomic_load_explicit(&h->gate, memory_order_seq_cst);
    atomic_store_explicit(&r->slot->position, RC__GATE_POS(g) - ring->capacity,
                          memory_order_relaxed);
    /* seq_cst: pairs with the seq_cst state load in rc__min_lossless. */
    atomic_store_explicit(&r->slot->state, RC__SLOT_ACTIVE, memory_order_seq_cst);
    for (;;) {
        g = atomic_load_explicit(&h->gate, memory_order_seq_cst);
        uint64_t base = RC__GATE_POS(g) - ring->capacity;
        uint64_t head, hseq;
        rc__head_load(ring, &head, &hseq);
        uint64_t t;
        if (o->start == RC_START_LATEST) {
            t = head;
        } else if (o->start == RC_START_AT) {
            t = o->position;
            if (t < base || t > head || (t & 7) != 0 || (t < head && !is_record_start(ring, t)))
                return RC_ERING_BAD_POS;
        } else {
            uint64_t others = UINT64_MAX;
            for (uint32_t i = 0; i < h->slot_count; i++) {
                rc__reader_slot_t *s = rc__slot(ring, i);
                if (i == r->slot_idx ||
                    atomic_load_explicit(&s->state, memory_order_seq_cst) != RC__SLOT_ACTIVE ||
                    atomic_load_explicit(&s->mode, memory_order_relaxed) != RC_READER_LOSSLESS)
                    continue;
                uint64_t p = atomic_load_explicit(&s->position, memory_order_acquire);
                if (p < others)
                    others = p;
            }
            if (others != UINT64_MAX && others >= base && others <= head &&
                is_record_start(ring, others))
                t = others;
            else
                t = rc__oldest_hint(ring, base, head);
        }
        atomic_store_explicit(&r->slot->position, t, memory_order_seq_cst);
        r->published = t;
        r->pos = t;
        uint64_t bumped = RC__GATE_POS(g) | ((RC__GATE_GEN(g) + 1) & 7);
        if (atomic_compare_exchange_strong_explicit(&h->gate, &g, bumped, memory_order_seq_cst,
                                                    memory_order_seq_cst))
            return 0;
    }
}

/* Sequence number of the record starting at `t` (below the head), if it is still intact. */
static int seq_at(const rc_ring_t *ring, uint64_t t, uint64_t *seq)
{
    t = rc__skip_gap(ring, t);
    rc__rec_hdr_t *rec = rc__rec(ring, t);
    if (rc__load_racy(&rec->stamp) != (t ^ ring->key))
        return 0;
    *seq = rc__load_racy(&rec->seq); /* written before the stamp's release store */
    uint64_t head;
    return lossy_intact(ring, t, &head);
}

/* Lossy join: no gate to negotiate, but the sequence number expected first is fixed here, so
 * that a reader lapped before its first record still counts that loss. */
static int join_lossy(rc_reader_t *r, const rc_reader_opts_t *o)
{
    rc_ring_t *ring = r->ring;
    for (int attempt = 0;; attempt++) {
        uint64_t head, hseq;
        rc__head_load(ring, &head, &hseq);
        uint64_t t;
        if (o->start == RC_START_LATEST) {
            t = head;
        } else if (o->start == RC_START_AT) {
            t = o->position;
            if (t > head || (t & 7) != 0 ||
                (t < head && (t + ring->capacity < head || !is_record_start(ring, t))))
                return RC_ERING_BAD_POS;
        } else {
            t = rc__oldest_hint(ring, head > ring->capacity ? head - ring->capacity : 0, head);
        }
        if (t == head) {
            r->next_seq = hseq;
        } else if (!seq_at(ring, t, &r->next_seq)) {
            if (o->start == RC_START_AT)
                return RC_ERING_BAD_POS; /* overwritten meanwhile */
            if (attempt < 100)
                continue;
            t = head; /* producers outrun the hints: start at the head */
            r->next_seq = hseq;
        }
        r->seq_known = 1;
        r->pos = t;
        r->published = t;
        atomic_store_explicit(&r->slot->position, t, memory_order_relaxed);
        atomic_store_explicit(&r->slot->state, RC__SLOT_ACTIVE, memory_order_release);
        return 0;
    }
}

int rc_reader_open(rc_ring_t *ring, const rc_reader_opts_t *opts, rc_reader_t **out)
{
    *out = NULL;
    if (ring == NULL || opts == NULL ||
        (opts->mode != RC_READER_LOSSLESS && opts->mode != RC_READER_LOSSY) ||
        opts->start < RC_START_OLDEST || opts->start > RC_START_AT ||
        opts->linger_ns > 100000000u)
        return -EINVAL;
    rc_reader_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    int rc = 0;
    if ((opts->flags & ~RC_READER_F_MANUAL_ACK) != 0 ||
        ((opts->flags & RC_READER_F_MANUAL_ACK) && opts->mode != RC_READER_LOSSLESS)) {
        free(r);
        return -EINVAL;
    }
    r->ring = ring;
    r->mode = opts->mode;
    r->manual = (opts->flags & RC_READER_F_MANUAL_ACK) != 0;
    r->spin = opts->spin ? opts->spin : DEFAULT_SPIN;
    r->linger_ns = opts->linger_ns;
    if (opts->mode == RC_READER_LOSSY) {
        r->buf = malloc(ring->max_record);
        if (r->buf == NULL) {
            rc = -ENOMEM;
            goto fail;
        }
    }
    rc = take_slot(ring, &r->slot_idx);
    if (rc != 0)
        goto fail;
    r->slot = rc__slot(ring, r->slot_idx);
    rc__reader_slot_t *s = r->slot;
    /* Identity while INIT: nobody but us reads the slot until it turns ACTIVE (release or
     * seq_cst store in the joins). */
    atomic_store_explicit(&s->mode, (uint32_t)opts->mode, memory_order_relaxed);
    atomic_store_explicit(&s->pid, (uint32_t)getpid(), memory_order_relaxed);
    atomic_store_explicit(&s->start_time, rc_proc_start_time(getpid()), memory_order_relaxed);
    atomic_store_explicit(&s->heartbeat, rc_now_ns(), memory_order_relaxed);
    atomic_store_explicit(&s->lost, 0, memory_order_relaxed);
    memset(s->name, 0, sizeof(s->name));
    if (opts->name != NULL)
        strncpy(s->name, opts->name, sizeof(s->name) - 1);
    rc = opts->mode == RC_READER_LOSSLESS ? join_lossless(r, opts) : join_lossy(r, opts);
    if (rc != 0) {
        /* Heartbeat 0 before FREE, as every free path: the next joiner's INIT then reads as
         * "joining" to reclaimers, never as a stale slot of a dead owner (rc_ring_reclaim). */
        atomic_store_explicit(&s->heartbeat, 0, memory_order_relaxed);
        atomic_store_explicit(&s->state, RC__SLOT_FREE, memory_order_release);
        goto fail;
    }
    *out = r;
    return 0;
fail:
    free(r->buf);
    free(r);
    return rc;
}

void rc_reader_close(rc_reader_t *r)
{
    if (r == NULL)
        return;
    uint32_t active = RC__SLOT_ACTIVE;
    atomic_store_explicit(&r->slot->heartbeat, 0, memory_order_relaxed); /* see rc_reader_open */
    /* Release: our last reads happen before producers stop counting us. */
    atomic_compare_exchange_strong_explicit(&r->slot->state, &active, RC__SLOT_FREE,
                                            memory_order_release, memory_order_relaxed);
    free(r->buf);
    free(r);
}

uint64_t rc_reader_position(const rc_reader_t *r)
{
    return r->pos;
}

uint64_t rc_reader_lost(const rc_reader_t *r)
{
    return r->lost + r->lost_unreported;
}

uint32_t rc_reader_slot(const rc_reader_t *r)
{
    return r->slot_idx;
}

int rc_reader_ack(rc_reader_t *r, uint64_t pos)
{
    if (!r->manual || pos < r->published || pos > r->pos || (pos & 7) != 0)
        return -EINVAL;
    if (pos != r->published) {
        /* Release: pairs with producers' acquire in rc__min_lossless, as publish() does. */
        atomic_store_explicit(&r->slot->position, pos, memory_order_release);
        r->published = pos;
    }
    return 0;
}

uint64_t rc_reader_acked(const rc_reader_t *r)
{
    return atomic_load_explicit(&r->slot->position, memory_order_acquire);
}

int rc_reader_resume(rc_reader_t *r)
{
    if (!r->manual)
        return -EINVAL;
    uint64_t p = atomic_load_explicit(&r->slot->position, memory_order_acquire);
    r->pos = p;
    r->published = p;
    memset(&r->stall, 0, sizeof(r->stall));
    return 0;
}

int rc_reader_find_orphan(rc_ring_t *ring, const char *name, uint64_t *pos)
{
    rc__ring_hdr_t *h = ring->hdr;
    for (uint32_t i = 0; i < h->slot_count; i++) {
        rc__reader_slot_t *s = rc__slot(ring, i);
        if (atomic_load_explicit(&s->state, memory_order_acquire) != RC__SLOT_ACTIVE ||
            atomic_load_explicit(&s->mode, memory_order_relaxed) != RC_READER_LOSSLESS ||
            strncmp(s->name, name, sizeof(s->name) - 1) != 0)
            continue;
        pid_t pid = (pid_t)atomic_load_explicit(&s->pid, memory_order_relaxed);
        uint64_t start = atomic_load_explicit(&s->start_time, memory_order_relaxed);
        if (rc_proc_alive(pid, start))
            continue;
        *pos = atomic_load_explicit(&s->position, memory_order_acquire);
        return 0;
    }
    return -ENOENT;
}

void rc_reader_forget(rc_reader_t *r)
{
    if (r == NULL)
        return;
    free(r->buf);
    free(r);
}
