/* Producing into the ring: claim (one 16-byte CAS on the head), write in place, commit (CAS of
 * the first record's commit word), and the gate that keeps producers behind lossless readers.
 * Also padding over claims whose producer died (rc__try_sweep, rc_ring_sweep). */
#include "core/clock.h"
#include "shm/ring_internal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "shm/proc.h"

#define RECLAIM_INTERVAL_NS 10000000ull /* producers look for dead readers at most every 10 ms */

typedef unsigned __int128 u128;

/* First position at or after `from` up to which every record is committed (the oldest claim
 * still being written, or head). Used for the gate when no lossless reader exists, so that
 * producers never lap a claim that is still being written. `from` is a record start. */
static uint64_t commit_frontier(const rc_ring_t *r, uint64_t from, uint64_t head)
{
    uint64_t q = from;
    while (q < head) {
        q = rc__skip_gap(r, q);
        if (q >= head)
            break;
        rc__rec_hdr_t *rec = rc__rec(r, q);
        /* Acquire: pairs with the producer's release store of the stamp. */
        if (atomic_load_explicit(&rec->stamp, memory_order_acquire) != (q ^ r->key))
            break;
        /* Acquire: pairs with the commit CAS, so the record's writes happen before the space
         * is claimed again. */
        uint64_t w = atomic_load_explicit(&rec->word, memory_order_acquire);
        if (!(w & RC__W_COMMITTED) || RC__W_LEN(w) < RC__REC_HDR || RC__W_LEN(w) > r->max_claim)
            break;
        q += rc__align8(RC__W_LEN(w));
    }
    return q < head ? q : head;
}

uint64_t rc__gate_refresh(rc_ring_t *r)
{
    rc__ring_hdr_t *h = r->hdr;
    for (;;) {
        /* seq_cst gate load before the slot scan: a reader that joins after this load bumps
         * the generation, so the CAS below fails and we scan again (see rc_reader_open). */
        uint64_t g = atomic_load_explicit(&h->gate, memory_order_seq_cst);
        uint64_t head = atomic_load_explicit(&h->head.pos, memory_order_seq_cst);
        uint32_t lossless = 0;
        uint64_t m = rc__min_lossless(r, head, &lossless);
        if (lossless == 0) {
            uint64_t from = RC__GATE_POS(g) - r->capacity;
            m = commit_frontier(r, from < m ? from : m, head);
        }
        uint64_t want = m + r->capacity;
        if (want <= RC__GATE_POS(g))
            return g;
        /* Release (seq_cst): producers that acquire the new gate see the readers' releases
         * this scan acquired. */
        if (atomic_compare_exchange_strong_explicit(&h->gate, &g, want | RC__GATE_GEN(g),
                                                    memory_order_seq_cst,
                                                    memory_order_seq_cst))
            return want | RC__GATE_GEN(g);
    }
}

/* Record-start hints for lossy readers: for each boundary k * (capacity / 64) inside the claimed
 * range [from, end), the first record start at or after it (`starts`, ascending; `end` when none
 * is). Also rc_ring_restore's (shm/ring_recover.c). */
void rc__write_checkpoints(rc_ring_t *r, uint64_t from, uint64_t end, const uint64_t *starts,
                           uint32_t nstarts)
{
    uint32_t shift = r->hdr->checkpoint_shift;
    uint64_t seg = 1ull << shift;
    uint64_t b = (from + seg - 1) & ~(seg - 1);
    for (; b < end; b += seg) {
        uint64_t cp = end;
        for (uint32_t i = 0; i < nstarts; i++) {
            if (starts[i] >= b) {
                cp = starts[i];
                break;
            }
        }
        atomic_store_explicit(&r->hdr->checkpoints[(b >> shift) & (RC__CHECKPOINTS - 1)], cp,
                              memory_order_relaxed);
    }
}

static int reclaim_due(rc_ring_t *r)
{
    uint64_t now = rc_now_ns();
    uint64_t last = atomic_load_explicit(&r->last_reclaim_ns, memory_order_relaxed);
    if (now - last < RECLAIM_INTERVAL_NS)
        return 0;
    return atomic_compare_exchange_strong_explicit(&r->last_reclaim_ns, &last, now,
                                                   memory_order_relaxed, memory_order_relaxed);
}

/* Claims `need` contiguous bytes (not crossing the end of the area) for `nrec` records.
 * On success *pad is the padding placed before them at *hpos, the records start at
 * *hpos + *pad, and *seq is the first record's sequence number. */
static int claim_space(rc_ring_t *r, uint64_t need, uint32_t nrec, uint64_t *hpos,
                       uint64_t *pad, uint64_t *seq)
{
    rc__ring_hdr_t *h = r->hdr;
    /* Acquire: pairs with the refresher's CAS, which acquired the readers' positions. */
    uint64_t gate = RC__GATE_POS(atomic_load_explicit(&h->gate, memory_order_acquire));
    /* A torn first guess only costs one failed CAS, which returns the real value. */
    u128 cur = (u128)atomic_load_explicit(&h->head.seq, memory_order_relaxed) << 64 |
               atomic_load_explicit(&h->head.pos, memory_order_relaxed);
    int tries = 0;
    for (;;) {
        uint64_t p = (uint64_t)cur, s = (uint64_t)(cur >> 64);
        uint64_t room = rc__room_to_end(r, p);
        uint64_t padb = room < need ? room : 0;
        uint64_t end = p + padb + need;
        if (end > gate) {
            gate = RC__GATE_POS(rc__gate_refresh(r));
            if (end > gate) {
                if (tries++ > 0 || !reclaim_due(r))
                    goto full;
                /* The ring is full: maybe a dead reader or a dead producer holds it. */
                int freed = rc_ring_reclaim(r);
                freed += rc__try_sweep(r, gate - r->capacity, 0);
                if (freed == 0)
                    goto full;
                continue;
            }
        }
        u128 next = (u128)(s + nrec) << 64 | end;
        /* Full barrier (lock cmpxchg16b). Pairs with other producers' CAS; the stores below
         * follow it (see the release fence) for lossy readers' re-validation. */
        if (rc__cas128(&h->head, &cur, next)) {
            *hpos = p;
            *pad = padb;
            *seq = s;
            /* Release fence: a lossy reader that copies any byte we write below and then
             * acquire-fences sees the head move past its record (reader.c, lossy_read). */
            atomic_thread_fence(memory_order_release);
            return 0;
        }
    }
full:
    atomic_fetch_add_explicit(&h->full, 1, memory_order_relaxed);
    return RC_ERING_FULL;
}

/* Writes a header whose stamp makes it visible for position `pos`: word and seq first
 * (relaxed), then the stamp with release (pairs with readers' acquire of the stamp). */
static void write_hdr(rc_ring_t *r, uint64_t pos, uint64_t word, uint64_t seq)
{
    rc__rec_hdr_t *rec = rc__rec(r, pos);
    atomic_store_explicit(&rec->word, word, memory_order_relaxed);
    atomic_store_explicit(&rec->seq, seq, memory_order_relaxed);
    atomic_store_explicit(&rec->stamp, pos ^ r->key, memory_order_release);
}

int rc_ring_claim_batch(rc_ring_t *ring, rc_ring_rec_t *recs, uint32_t count,
                        rc_ring_claim_t *claim)
{
    if (count == 0 || recs == NULL)
        return -EINVAL;
    uint64_t need = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (recs[i].type < RC_REC_TYPE_USER || recs[i].flags > 0x7fff)
            return -EINVAL;
        uint64_t sz = RC_RING_RECORD_SIZE(recs[i].len);
        if (sz > ring->max_record)
            return RC_ERING_TOO_BIG;
        need += sz;
    }
    if (need > ring->max_claim)
        return RC_ERING_TOO_BIG;
    rc__producer_slot_t *ps = rc__producer_slot(ring);
    if (ps == NULL)
        return RC_ERING_NO_SLOT;
    /* Only this thread writes its slot. Relaxed: the head CAS in claim_space is a full barrier
     * that publishes it first. */
    atomic_store_explicit(&ps->in_window, 1, memory_order_relaxed);
    uint64_t hpos, pad, seq;
    int rc = claim_space(ring, need, count, &hpos, &pad, &seq);
    if (rc != 0) {
        atomic_store_explicit(&ps->in_window, 0, memory_order_relaxed);
        return rc;
    }
    uint64_t p = hpos + pad;
    /* Header of the first record first: from here on a sweeper can tell our claim's extent and
     * our pid. The padding header (committed at once) comes next. */
    write_hdr(ring, p, RC__PENDING(need, ring->pid), seq);
    if (pad >= RC__REC_HDR)
        write_hdr(ring, hpos, RC__COMMITTED(pad, RC__TYPE_PAD, 0), seq);
    /* Release: pairs with rc__window_busy; a sweeper that sees us out of the window sees the
     * headers above. */
    atomic_store_explicit(&ps->in_window, 0, memory_order_release);
    /* Records after the first are complete now: nobody reaches them before the first one is
     * committed, and a sweep pads over the whole claim at once. */
    uint64_t starts[3] = {hpos, p, p + need};
    uint64_t q = p;
    for (uint32_t i = 0; i < count; i++) {
        recs[i].pos = q;
        recs[i].data = (uint8_t *)rc__rec(ring, q) + RC__REC_HDR;
        if (i > 0)
            write_hdr(ring, q,
                      RC__COMMITTED(recs[i].len + RC__REC_HDR, recs[i].type, recs[i].flags),
                      seq + i);
        q += RC_RING_RECORD_SIZE(recs[i].len);
    }
    rc__write_checkpoints(ring, hpos, p + need, pad > 0 ? starts : starts + 1, pad > 0 ? 3 : 2);
    claim->pos = p;
    claim->seq = seq;
    claim->data = recs[0].data;
    claim->len = recs[0].len;
    claim->count = count;
    claim->ring_ = ring;
    claim->word_ = RC__COMMITTED(recs[0].len + RC__REC_HDR, recs[0].type, recs[0].flags);
    claim->bytes_ = (uint32_t)need;
    claim->pending_pid_ = ring->pid;
    claim->pad_ = (uint32_t)pad;
    return 0;
}

int rc_ring_claim(rc_ring_t *ring, uint32_t len, uint16_t type, uint16_t flags,
                  rc_ring_claim_t *claim)
{
    rc_ring_rec_t rec = {.len = len, .type = type, .flags = flags};
    return rc_ring_claim_batch(ring, &rec, 1, claim);
}

void rc_ring_wake_sleepers(rc_ring_t *r)
{
    /* The plain load keeps the no-sleeper case to one shared read; the exchange makes one
     * committer, not every one, pay for the FUTEX_WAKE. */
    if (atomic_load_explicit(&r->hdr->sleepers, memory_order_seq_cst) != 0 &&
        atomic_exchange_explicit(&r->hdr->sleepers, 0, memory_order_seq_cst) != 0)
        rc__wake(r);
}

static int finish(rc_ring_claim_t *c, uint64_t word, int wake)
{
    rc_ring_t *r = c->ring_;
    rc__rec_hdr_t *rec = rc__rec(r, c->pos);
    uint64_t pending = RC__PENDING(c->bytes_, c->pending_pid_);
    /* seq_cst CAS = release for the payload (pairs with readers' acquire of the word) and the
     * first half of the Dekker pair with sleeping readers: commit, then load `sleepers` (here
     * or in a later rc_ring_wake_sleepers of this thread); a reader sets `sleepers`, fences,
     * then re-reads the word. One of us sees the other. */
    if (!atomic_compare_exchange_strong_explicit(&rec->word, &pending, word,
                                                 memory_order_seq_cst, memory_order_relaxed))
        return RC_ERING_SWEPT;
    if (wake)
        rc_ring_wake_sleepers(r);
    return 0;
}

int rc_ring_commit(rc_ring_claim_t *claim)
{
    return finish(claim, claim->word_, 1);
}

int rc_ring_commit_quiet(rc_ring_claim_t *claim)
{
    return finish(claim, claim->word_, 0);
}

int rc_ring_abort(rc_ring_claim_t *claim)
{
    return finish(claim, RC__COMMITTED(claim->bytes_, RC__TYPE_PAD, 0), 1);
}

static int pid_dead(uint32_t pid)
{
    return pid != 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Whether the header bytes a sweeper read at `pos` were still `pos`'s lap: a claim reaching past
 * pos + capacity may have rewritten them. Acquire fence after those loads, paired with
 * claim_space's release fence after its head CAS (as lossy_intact in reader.c): a load that read
 * a later lap's byte makes this head load see that claim. A position that passes, holding a
 * pending or headerless claim, cannot be lapped until that claim is committed or padded over. */
static int sweep_unlapped(const rc_ring_t *r, uint64_t pos)
{
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&r->hdr->head.pos, memory_order_relaxed) <= pos + r->capacity;
}

int rc__try_sweep(rc_ring_t *r, uint64_t pos, uint64_t stalled_ns)
{
    rc__ring_hdr_t *h = r->hdr;
    pos = rc__skip_gap(r, pos);
    rc__rec_hdr_t *rec = rc__rec(r, pos);
    uint64_t head = atomic_load_explicit(&h->head.pos, memory_order_acquire);
    if (pos >= head)
        return 0; /* nothing claimed there */
    /* Racy loads: `pos` may be a lossy reader's position that producers are rewriting. A
     * matching stamp on a pending claim of this lap means the space is held (readers or the
     * commit frontier stop there), so once sweep_unlapped confirms the word was this lap's,
     * the CAS below only ever hits a real header. */
    if (rc__load_racy(&rec->stamp) == (pos ^ r->key)) {
        uint64_t w = rc__load_racy(&rec->word);
        if ((w & RC__W_COMMITTED) || !pid_dead(RC__W_PID(w)))
            return 0;
        /* `pos` may be a lossy reader's (or a stale slot's) position that producers lapped
         * after its stamp was read: then `w` may be the next lap's bytes. */
        if (!sweep_unlapped(r, pos))
            return 0;
        /* The CAS races the (dead, so only in theory) owner's commit: exactly one wins. */
        uint64_t pad = RC__COMMITTED(RC__W_LEN(w), RC__TYPE_PAD, RC__FLAG_SWEPT);
        if (!atomic_compare_exchange_strong_explicit(&rec->word, &w, pad, memory_order_seq_cst,
                                                     memory_order_relaxed))
            return 0;
        atomic_fetch_add_explicit(&h->swept, 1, memory_order_relaxed);
        rc__wake(r);
        return 1;
    }
    /* Claimed, but no header after the pad timeout: the producer died between its head CAS
     * and its first store. Its claim ends at the next stamped record start (or the head). */
    if (stalled_ns < h->pad_timeout_ns)
        return 0;
    /* Only a dead claimer may be padded over: if some live producer is between its head CAS
     * and its first header store, this may be its claim. Once none is, re-read the stamp. */
    if (rc__window_busy(r) ||
        rc__load_racy(&rec->stamp) == (pos ^ r->key))
        return 0;
    uint64_t lap_end = pos + rc__room_to_end(r, pos);
    uint64_t q = pos + RC__REC_ALIGN;
    while (q < head && q < lap_end &&
           rc__load_racy(&rc__rec(r, q)->stamp) != (q ^ r->key))
        q += RC__REC_ALIGN;
    if (q > head)
        q = head;
    uint64_t len = q - pos;
    if (lap_end - q < RC__REC_HDR && q < head)
        len = lap_end - pos; /* the rest of the lap is a gap anyway */
    uint64_t w = rc__load_racy(&rec->word);
    if ((w & RC__W_COMMITTED) && RC__W_TYPE(w) == RC__TYPE_PAD && (RC__W_FLAGS(w) & RC__FLAG_SWEPT))
        return 0; /* another sweeper is writing this very pad */
    /* A missing stamp is also what a lapped position looks like (a lossy reader preempted
     * between its empty poll and this sweep, or a lossy slot's stale position in
     * rc_ring_sweep): padding there would overwrite the next lap's records. */
    if (!sweep_unlapped(r, pos))
        return 0;
    uint64_t pad = RC__COMMITTED(len, RC__TYPE_PAD, RC__FLAG_SWEPT);
    if (!atomic_compare_exchange_strong_explicit(&rec->word, &w, pad, memory_order_relaxed,
                                                 memory_order_relaxed))
        return 0;
    atomic_store_explicit(&rec->seq, 0, memory_order_relaxed);
    atomic_store_explicit(&rec->stamp, pos ^ r->key, memory_order_seq_cst);
    atomic_fetch_add_explicit(&h->swept, 1, memory_order_relaxed);
    rc__wake(r);
    return 1;
}

int rc_ring_sweep(rc_ring_t *ring)
{
    rc__ring_hdr_t *h = ring->hdr;
    rc_ring_reclaim(ring);
    uint64_t now = rc_now_ns();
    int n = 0;
    /* Blocked positions: each reader's, and the gate's base (the slowest lossless reader or
     * the commit frontier). */
    uint64_t gate = RC__GATE_POS(rc__gate_refresh(ring));
    for (uint32_t i = 0; i <= h->slot_count; i++) {
        uint64_t p;
        if (i == h->slot_count) {
            p = gate - ring->capacity;
        } else {
            rc__reader_slot_t *s = rc__slot(ring, i);
            if (atomic_load_explicit(&s->state, memory_order_acquire) != RC__SLOT_ACTIVE)
                continue;
            p = atomic_load_explicit(&s->position, memory_order_acquire);
        }
        uint64_t stalled = 0;
        if (ring->sweep_pos == p)
            stalled = now - ring->sweep_since;
        int k = rc__try_sweep(ring, p, stalled);
        if (k == 0 && ring->sweep_pos != p) {
            rc__rec_hdr_t *rec = rc__rec(ring, rc__skip_gap(ring, p));
            uint64_t hd = atomic_load_explicit(&h->head.pos, memory_order_acquire);
            uint64_t sp = rc__skip_gap(ring, p);
            if (sp < hd && rc__load_racy(&rec->stamp) != (sp ^ ring->key)) {
                ring->sweep_pos = p;
                ring->sweep_since = now;
            }
        }
        n += k;
    }
    return n;
}
