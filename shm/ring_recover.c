/* Recovery of a ring file at its broker's start (shm/ring_recover.h).
 *
 * The file is what a crash left: with the page cache intact (a process crash) every committed
 * record is whole, and only claims of producers that died before committing are unfinished;
 * after a crash of the machine, or with a damaged disk, any bytes may be stale, zero or
 * flipped. The scan walks record by record from the oldest record still held to the head and
 * classifies each position (`inspect`):
 *
 *   ok        stamp for this lap, committed word, a length that stays in the area and below
 *             the head, and the verify callback (a checksum) agreeing: kept.
 *   pending   stamp for this lap, a pending word with a sane claim length: its producer died
 *             (the broker lock says nobody produces now), so it is padded over as a sweep.
 *   corrupt   a sane header whose record fails the verify callback: padded over (flag
 *             RC__FLAG_CORRUPT, the bytes stay), reported, the scan goes on after it.
 *   bad       no valid header. The scan looks for the next valid record after it in the same
 *             lap (`resync`: a matching stamp is a header written for that very position this
 *             lap, and the checksum rules out a stale one). Found: the stretch between is
 *             padded over and reported. Not found before the head: a torn tail, and the head
 *             moves back to where it starts.
 *
 * Everything it writes is a header, the head, checkpoints and reader positions: the record
 * bytes themselves stay as they were. */
#include "shm/ring_recover.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shm/group_internal.h"
#include "shm/ring_internal.h"

enum { REC_OK, REC_PENDING, REC_CORRUPT, REC_BAD };

typedef struct {
    rc_ring_t *r;
    uint64_t head; /* as found: positions at or past it were never claimed */
    rc_ring_verify_fn verify;
    rc_ring_report_fn report;
    void *arg;
    rc_ring_recovery_t *out;
} scan_t;

static uint64_t lap_end(const rc_ring_t *r, uint64_t pos)
{
    return pos + rc__room_to_end(r, pos);
}

/* What is at record start `q` (q < head, at least a header's room before the end of the area);
 * `*len` gets its bytes (aligned) for REC_OK, REC_PENDING and REC_CORRUPT, `*v` the view of a
 * user record. A stale header (another lap's stamp) is REC_BAD like garbage. */
static int inspect(const scan_t *s, uint64_t q, uint64_t *len, rc_ring_view_t *v, int *checked)
{
    const rc_ring_t *r = s->r;
    rc__rec_hdr_t *rec = rc__rec(r, q);
    if (atomic_load_explicit(&rec->stamp, memory_order_relaxed) != (q ^ r->key))
        return REC_BAD;
    uint64_t w = atomic_load_explicit(&rec->word, memory_order_relaxed);
    uint64_t n = rc__align8(RC__W_LEN(w));
    if (RC__W_LEN(w) < RC__REC_HDR || RC__W_LEN(w) > r->max_claim || q + n > s->head ||
        n > rc__room_to_end(r, q))
        return REC_BAD;
    *len = n;
    if (!(w & RC__W_COMMITTED))
        return REC_PENDING;
    uint16_t type = RC__W_TYPE(w);
    if (type == RC__TYPE_PAD)
        return REC_OK;
    if (type < RC_REC_TYPE_USER || RC__W_LEN(w) > r->max_record)
        return REC_BAD;
    memset(v, 0, sizeof(*v));
    v->pos = q;
    v->next = q + n;
    v->seq = atomic_load_explicit(&rec->seq, memory_order_relaxed);
    v->data = (const uint8_t *)rec + RC__REC_HDR;
    v->len = RC__W_LEN(w) - RC__REC_HDR;
    v->type = type;
    v->flags = RC__W_FLAGS(w);
    int rc = s->verify != NULL ? s->verify(s->arg, v) : 1;
    if (rc < 0)
        return REC_CORRUPT;
    *checked = rc == 0;
    return REC_OK;
}

/* The first position in [from, end) holding a valid record (REC_OK), or UINT64_MAX. */
static uint64_t resync(const scan_t *s, uint64_t from, uint64_t end)
{
    for (uint64_t p = from; p < end; p += RC__REC_ALIGN) {
        uint64_t len;
        rc_ring_view_t v;
        int checked;
        if (rc__room_to_end(s->r, p) >= RC__REC_HDR && inspect(s, p, &len, &v, &checked) == REC_OK)
            return p;
    }
    return UINT64_MAX;
}

/* Turns [q, q + len) into one padding record: readers step over it. `seq` is what a padding
 * header carries, the next record's sequence number. */
static void pad(rc_ring_t *r, uint64_t q, uint64_t len, uint64_t seq, uint16_t flag)
{
    rc__rec_hdr_t *rec = rc__rec(r, q);
    atomic_store_explicit(&rec->word, RC__COMMITTED(len, RC__TYPE_PAD, flag), memory_order_relaxed);
    atomic_store_explicit(&rec->seq, seq, memory_order_relaxed);
    atomic_store_explicit(&rec->stamp, q ^ r->key, memory_order_release);
}

static void corrupt(scan_t *s, uint64_t q, uint64_t len, uint64_t seq, const char *why)
{
    pad(s->r, q, len, seq, RC__FLAG_CORRUPT);
    s->out->corrupt++;
    if (s->report != NULL)
        s->report(s->arg, q, len, why);
}

/* Zeroes [from, to) of the record area, which may wrap once around its end. */
static void zero_range(rc_ring_t *r, uint64_t from, uint64_t to)
{
    while (from < to) {
        uint64_t n = rc__room_to_end(r, from);
        if (n > to - from)
            n = to - from;
        memset(r->records + (from & r->mask), 0, n);
        from += n;
    }
}

/* A position past the cut `q` moves back to it; UINT64_MAX-like markers (an open range) and
 * the orphan tag in bit 0 stay. Returns 1 when it moved. */
static int clamp_pos(_Atomic uint64_t *w, uint64_t q, uint64_t tag_mask)
{
    uint64_t v = atomic_load_explicit(w, memory_order_relaxed);
    if (v == POS_MAX || (v & ~tag_mask) <= q)
        return 0;
    atomic_store_explicit(w, q | (v & tag_mask), memory_order_relaxed);
    return 1;
}

/* Consumer groups live in the ring file too: a group's shared cursor, its lag floor and its
 * members' claimed ranges that were past the cut move back to it, so the group takes the new
 * records written there instead of waiting for the head to pass its old position (the
 * group's reader slot moved back with the others). Nobody is attached: a torn tail means the
 * machine went down with the broker. Returns the groups moved. */
static uint64_t clamp_groups(rc_ring_t *r, uint64_t q)
{
    uint64_t moved = 0;
    for (uint32_t i = 0; i < rc__group_count(r); i++) {
        group_hdr_t *g = rc__group_at(r, i);
        if (atomic_load_explicit(&g->state, memory_order_relaxed) == G_FREE)
            continue;
        int m = clamp_pos(&g->next, q, 0) | clamp_pos(&g->floor, q, 0);
        group_cell_t *cells = rc__group_cells(g);
        for (uint32_t k = 0; k < RC_GROUP_MAX_MEMBERS; k++) {
            uint32_t st = atomic_load_explicit(&cells[k].state, memory_order_relaxed);
            if (st == C_ACTIVE || st == C_ORPHAN)
                m |= clamp_pos(&cells[k].lo, q, ORPHAN_TAG) | clamp_pos(&cells[k].hi, q, 0);
        }
        moved += (uint64_t)m;
    }
    return moved;
}

/* The head goes back to `q` (sequence `seq`): nothing at or after it is a record. */
static int cut_tail(scan_t *s, uint64_t q, uint64_t seq)
{
    rc_ring_t *r = s->r;
    rc_ring_recovery_t *o = s->out;
    zero_range(r, q, s->head);
    unsigned __int128 want = (unsigned __int128)o->seq_before << 64 | o->head_before;
    unsigned __int128 next = (unsigned __int128)seq << 64 | q;
    if (!rc__cas128(&r->hdr->head, &want, next))
        return -EBUSY; /* someone produced meanwhile, against the contract */
    /* The gate may have been computed from readers that were past `q`, which now wait at
     * `q`: producers must not go further than a capacity beyond it. */
    uint64_t g = atomic_load_explicit(&r->hdr->gate, memory_order_relaxed);
    if (RC__GATE_POS(g) > q + r->capacity)
        atomic_store_explicit(&r->hdr->gate, (q + r->capacity) | RC__GATE_GEN(g),
                              memory_order_seq_cst);
    for (uint32_t i = 0; i < RC__CHECKPOINTS; i++) {
        uint64_t c = atomic_load_explicit(&r->hdr->checkpoints[i], memory_order_relaxed);
        if (c != UINT64_MAX && c > q)
            atomic_store_explicit(&r->hdr->checkpoints[i], UINT64_MAX, memory_order_relaxed);
    }
    for (uint32_t i = 0; i < r->hdr->slot_count; i++) {
        rc__reader_slot_t *sl = rc__slot(r, i);
        if (atomic_load_explicit(&sl->position, memory_order_relaxed) > q) {
            atomic_store_explicit(&sl->position, q, memory_order_relaxed);
            o->clamped++;
        }
    }
    o->groups_clamped = clamp_groups(r, q);
    o->head = q;
    o->head_seq = seq;
    return 0;
}

/* Where the scan starts: the oldest record still held. That is the oldest position a lossless
 * reader slot holds (a feed a previous broker left: its events are delivered from there) when
 * it is a record start of this lap, or the oldest record start the checkpoints know of, else
 * the first valid record of the last capacity's bytes. */
static uint64_t first_record(const scan_t *s)
{
    rc_ring_t *r = s->r;
    uint64_t lo = s->head > r->capacity ? s->head - r->capacity : 0;
    uint64_t q = rc__oldest_hint(r, lo, s->head);
    for (uint32_t i = 0; i < r->hdr->slot_count; i++) {
        rc__reader_slot_t *sl = rc__slot(r, i);
        uint64_t p = atomic_load_explicit(&sl->position, memory_order_relaxed);
        if (atomic_load_explicit(&sl->state, memory_order_relaxed) != RC__SLOT_ACTIVE ||
            atomic_load_explicit(&sl->mode, memory_order_relaxed) != RC_READER_LOSSLESS || p < lo ||
            p >= q || (p & (RC__REC_ALIGN - 1)) != 0)
            continue;
        uint64_t sp = rc__skip_gap(r, p);
        if (sp >= q ||
            atomic_load_explicit(&rc__rec(r, sp)->stamp, memory_order_relaxed) == (sp ^ r->key))
            q = p;
    }
    if (q < s->head || lo == 0)
        return q;
    q = resync(s, lo, lap_end(r, lo) < s->head ? lap_end(r, lo) : s->head);
    if (q == UINT64_MAX && lap_end(r, lo) < s->head)
        q = lap_end(r, lo); /* a lap starts with a record (claims never cross the end) */
    return q == UINT64_MAX ? s->head : q;
}

/* Damage at `q`: no valid header there (`from` = q + a header's bytes, the least a record
 * takes), or a record whose checksum fails (`from` = its end). Padded over up to the next valid
 * record of its lap, or to the end of the lap; with no valid record after it up to the head it
 * is the torn tail, cut there. Returns the next position to look at, or UINT64_MAX after the
 * cut. */
static uint64_t damaged(scan_t *s, uint64_t q, uint64_t from, uint64_t expect, const char *why,
                        int *rc)
{
    rc_ring_t *r = s->r;
    uint64_t end = lap_end(r, q) < s->head ? lap_end(r, q) : s->head;
    uint64_t p = resync(s, from, end);
    if (p != UINT64_MAX) {
        uint64_t seq = atomic_load_explicit(&rc__rec(r, p)->seq, memory_order_relaxed);
        corrupt(s, q, p - q, seq, why);
        return p;
    }
    if (end < s->head) {
        corrupt(s, q, end - q, expect, why);
        return end;
    }
    snprintf(s->out->stop, sizeof(s->out->stop),
             "position %llu: a torn record (%s, and no valid record after it up to the head "
             "%llu); %llu bytes dropped, the head moved back",
             (unsigned long long)q, why, (unsigned long long)s->head,
             (unsigned long long)(s->head - q));
    *rc = cut_tail(s, q, expect);
    return UINT64_MAX;
}

int rc_ring_recover(rc_ring_t *ring, rc_ring_verify_fn verify, rc_ring_report_fn report, void *arg,
                    rc_ring_recovery_t *out)
{
    if (!ring->locked)
        return -EPERM;
    memset(out, 0, sizeof(*out));
    out->oldest_seq = UINT64_MAX;
    rc__head_load(ring, &out->head_before, &out->seq_before);
    out->head = out->head_before;
    out->head_seq = out->seq_before;
    scan_t s = {ring, out->head_before, verify, report, arg, out};
    uint64_t q = first_record(&s);
    out->oldest_pos = q;
    /* The sequence number the next event should carry: a torn tail is cut there. */
    uint64_t expect = out->seq_before;
    int have_seq = 0, rc = 0;
    while (q < s.head) {
        q = rc__skip_gap(ring, q);
        if (q >= s.head)
            break;
        uint64_t len = 0;
        rc_ring_view_t v;
        v.type = RC__TYPE_PAD;
        int checked = 0;
        switch (inspect(&s, q, &len, &v, &checked)) {
        case REC_OK:
            if (v.type != RC__TYPE_PAD) {
                out->events++;
                out->unchecked += !checked;
                if (out->oldest_seq == UINT64_MAX) {
                    out->oldest_seq = v.seq;
                    out->oldest_pos = q;
                }
                out->newest_seq = v.seq;
                expect = v.seq + 1;
                have_seq = 1;
            }
            q += len;
            break;
        case REC_PENDING:
            /* Its sequence numbers were taken with the claim; the next record has its own. */
            pad(ring, q, len, 0, RC__FLAG_SWEPT);
            out->swept++;
            q += len;
            break;
        case REC_CORRUPT:
            /* Cut there if it is the last, else it takes its sequence number along (its own
             * may be among the damaged bytes: the one expected is trusted over it). */
            if (!have_seq)
                expect = v.seq;
            have_seq = 1;
            q = damaged(&s, q, q + len, expect, "its checksum does not match its bytes", &rc);
            expect++;
            break;
        default:
            /* Without a record seen yet, the sequence number at the start is unknown: keep the
             * head's (never reuse a number a cursor may hold). */
            q = damaged(&s, q, q + RC__REC_HDR, have_seq ? expect : out->seq_before,
                        "no valid record header", &rc);
            break;
        }
    }
    if (out->stop[0] == '\0')
        snprintf(out->stop, sizeof(out->stop), "position %llu: the head",
                 (unsigned long long)out->head);
    return rc;
}

const void *rc_ring_area_at(const rc_ring_t *ring, uint64_t pos)
{
    return ring->records + (pos & ring->mask);
}

int rc_ring_restore(rc_ring_t *ring, uint64_t pos, const void *bytes, uint32_t len)
{
    if (!ring->locked)
        return -EPERM;
    if (len == 0 || len > rc__room_to_end(ring, pos) || (pos & (RC__REC_ALIGN - 1)) != 0)
        return -EINVAL;
    memcpy(ring->records + (pos & ring->mask), bytes, len);
    uint64_t head, seq;
    rc__head_load(ring, &head, &seq);
    /* Walk the records of the bytes: the record-start hints of the segments they cover (the
     * file's may be older than these records, as the bytes were), and the sequence number after
     * the last one (a padding record carries the next record's). */
    uint64_t next = seq, q = 0;
    while (q + RC__REC_HDR <= len) {
        rc__rec_hdr_t h;
        memcpy(&h, (const unsigned char *)bytes + q, sizeof(h));
        uint64_t w = atomic_load_explicit(&h.word, memory_order_relaxed);
        uint64_t n = rc__align8(RC__W_LEN(w));
        if ((w & RC__W_COMMITTED) == 0 || RC__W_LEN(w) < RC__REC_HDR)
            break;
        uint64_t start = pos + q, stop = q + n < len ? start + n : pos + len;
        rc__write_checkpoints(ring, start, stop, &start, 1);
        uint64_t s = atomic_load_explicit(&h.seq, memory_order_relaxed);
        next = RC__W_TYPE(w) == RC__TYPE_PAD ? s : s + 1;
        q += n;
    }
    rc__write_checkpoints(ring, pos + q, pos + len, NULL, 0); /* what no record walked covers */
    if (pos + len <= head)
        return 0;
    atomic_store_explicit(&ring->hdr->head.pos, pos + len, memory_order_relaxed);
    atomic_store_explicit(&ring->hdr->head.seq, next > seq ? next : seq, memory_order_relaxed);
    /* The gate (how far producers may claim) of a file older than these records may lie a lap
     * or more behind them, and joining readers look for the oldest record from it: up to the
     * head at least (the first claim recomputes it from the readers). */
    uint64_t g = atomic_load_explicit(&ring->hdr->gate, memory_order_relaxed);
    if (RC__GATE_POS(g) < pos + len)
        atomic_store_explicit(&ring->hdr->gate, (pos + len) | RC__GATE_GEN(g),
                              memory_order_relaxed);
    return 0;
}
