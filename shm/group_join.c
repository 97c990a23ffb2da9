/* Consumer groups: finding, creating and joining a group by name, leaving it (handing the
 * unacknowledged rest over, or deleting the group with its last member), dissolving a group
 * whose members all died, and member stats. Claiming and consuming live in shm/group.c. */
#include "core/clock.h"
#include "shm/group_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shm/proc.h"

static uint32_t group_count(const rc_ring_t *r)
{
    uint64_t n = (uint64_t)r->hdr->group_count * RC__GROUP_BYTES / GROUP_BLOCK;
    return n < RC_GROUP_MAX ? (uint32_t)n : RC_GROUP_MAX;
}

static group_hdr_t *group_at(const rc_ring_t *r, uint32_t i)
{
    return (group_hdr_t *)(r->base + r->hdr->groups_off + (size_t)i * GROUP_BLOCK);
}

static group_cell_t *cells_of(group_hdr_t *g)
{
    return (group_cell_t *)((uint8_t *)g + sizeof(group_hdr_t));
}

static int valid_name(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return 0;
    size_t n = 0;
    for (const char *c = name; *c; c++, n++) {
        if (n >= RC_GROUP_NAME_MAX)
            return 0;
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == ':' || *c == '-'))
            return 0;
    }
    return 1;
}

static void pack_name(const char *name, uint64_t w[4])
{
    char buf[32] = {0};
    memcpy(buf, name, strlen(name));
    memcpy(w, buf, sizeof(buf));
}

/* Relaxed word loads: a name may be rewritten while we compare (a header freed and taken
 * again); callers re-check the state after comparing. */
static int name_is(group_hdr_t *g, const uint64_t w[4])
{
    for (int i = 0; i < 4; i++)
        if (atomic_load_explicit(&g->name[i], memory_order_relaxed) != w[i])
            return 0;
    return 1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void make_slot_name(const char *name, char out[24])
{
    memset(out, 0, 24);
    snprintf(out, 24, "g:%s", name);
}

/* ---- joining and leaving -------------------------------------------------------------------- */

/* Frees a header we hold (CLAIMED, INIT, or the last member's ACTIVE). `since` goes back to 0
 * first, so that reset_stuck never judges the next creator by our timestamp. */
static void release_hdr(group_hdr_t *g)
{
    atomic_store_explicit(&g->since, 0, memory_order_relaxed);
    /* Release: the next creator that takes the header sees the cleared fields. */
    atomic_store_explicit(&g->state, G_FREE, memory_order_release);
}

static void clear_cells(group_hdr_t *g)
{
    group_cell_t *cells = cells_of(g);
    for (uint32_t i = 0; i < RC_GROUP_MAX_MEMBERS; i++) {
        atomic_store_explicit(&cells[i].lo, 0, memory_order_relaxed);
        atomic_store_explicit(&cells[i].hi, 0, memory_order_relaxed);
        atomic_store_explicit(&cells[i].state, C_FREE, memory_order_release);
    }
    atomic_store_explicit(&g->orphans, 0, memory_order_relaxed);
}

/* Takes a free member cell. Returns its index or -1. */
static int take_cell(rc_group_member_t *m)
{
    for (uint32_t i = 0; i < RC_GROUP_MAX_MEMBERS; i++) {
        group_cell_t *c = &m->cells[i];
        uint32_t st = C_FREE;
        if (!atomic_compare_exchange_strong_explicit(&c->state, &st, C_INIT, memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;
        /* Idle (lo == hi) until the first claim; not gating, not a source. */
        atomic_store_explicit(&c->lo, 0, memory_order_relaxed);
        atomic_store_explicit(&c->hi, 0, memory_order_relaxed);
        atomic_store_explicit(&c->pid, m->pid, memory_order_relaxed);
        atomic_store_explicit(&c->start_time, m->start_time, memory_order_relaxed);
        atomic_store_explicit(&c->heartbeat, rc_now_ns(), memory_order_relaxed);
        atomic_store_explicit(&c->dead, 0, memory_order_relaxed);
        /* seq_cst: pairs with scan_cells' seq_cst state load. */
        atomic_store_explicit(&c->state, C_ACTIVE, memory_order_seq_cst);
        return (int)i;
    }
    return -1;
}

/* Whether some member cell belongs to a live process. */
static int any_live_member(group_hdr_t *g)
{
    group_cell_t *cells = cells_of(g);
    for (uint32_t i = 0; i < RC_GROUP_MAX_MEMBERS; i++) {
        group_cell_t *c = &cells[i];
        uint32_t st = atomic_load_explicit(&c->state, memory_order_acquire);
        if (st != C_ACTIVE && st != C_INIT)
            continue;
        if (rc_proc_alive((pid_t)atomic_load_explicit(&c->pid, memory_order_relaxed),
                          atomic_load_explicit(&c->start_time, memory_order_relaxed)))
            return 1;
    }
    return 0;
}

/* A group whose reader slot was reclaimed (every member dead past the heartbeat timeout):
 * frees its header so it can be created again. */
static void dissolve(group_hdr_t *g)
{
    if (any_live_member(g))
        return;
    uint32_t st = G_ACTIVE;
    if (!atomic_compare_exchange_strong_explicit(&g->state, &st, G_CLAIMED, memory_order_acq_rel,
                                                 memory_order_relaxed))
        return;
    atomic_store_explicit(&g->members, 0, memory_order_seq_cst);
    clear_cells(g);
    release_hdr(g);
}

/* Joins existing group header `g`. Returns 0, -EAGAIN (look again), RC_EGROUP_MEMBERS. */
static int attach(rc_group_member_t *m, group_hdr_t *g, const uint64_t w[4])
{
    uint32_t c = atomic_load_explicit(&g->members, memory_order_acquire);
    do {
        if (c == 0)
            return -EAGAIN; /* being deleted or created */
    } while (!atomic_compare_exchange_weak_explicit(&g->members, &c, c + 1, memory_order_acq_rel,
                                                    memory_order_acquire));
    m->g = g;
    m->cells = cells_of(g);
    uint32_t slot = atomic_load_explicit(&g->slot, memory_order_acquire);
    m->slot = rc__slot(m->ring, slot);
    if (atomic_load_explicit(&g->state, memory_order_seq_cst) != G_ACTIVE || !name_is(g, w)) {
        atomic_fetch_sub_explicit(&g->members, 1, memory_order_acq_rel);
        return -EAGAIN;
    }
    if (slot >= m->ring->hdr->slot_count || !rc__group_slot_ours(m->slot, m->slot_name)) {
        atomic_fetch_sub_explicit(&g->members, 1, memory_order_acq_rel);
        dissolve(g);
        return -EAGAIN;
    }
    int idx = take_cell(m);
    if (idx < 0) {
        m->last_scan = 0;
        rc__group_scan_dead(m); /* dead members' cells become free once drained */
        idx = take_cell(m);
    }
    if (idx < 0) {
        atomic_fetch_sub_explicit(&g->members, 1, memory_order_acq_rel);
        return RC_EGROUP_MEMBERS;
    }
    m->idx = (uint32_t)idx;
    m->me = &m->cells[idx];
    rc_group_heartbeat(m);
    return 0;
}

/* Creates group `name` in header `g` (state CLAIMED, ours). Returns 0, -EAGAIN (another
 * creator of the same name, or any creator racing us: back off), or an error. */
static int create(rc_group_member_t *m, group_hdr_t *g, const uint64_t w[4],
                  const rc_group_opts_t *o)
{
    rc_ring_t *ring = m->ring;
    atomic_store_explicit(&g->creator_pid, m->pid, memory_order_relaxed);
    atomic_store_explicit(&g->since, rc_now_ns(), memory_order_relaxed);
    for (int i = 0; i < 4; i++)
        atomic_store_explicit(&g->name[i], w[i], memory_order_relaxed);
    atomic_store_explicit(&g->members, 0, memory_order_relaxed);
    clear_cells(g);
    /* seq_cst, then a scan of the other headers: of two creators racing, at least one sees
     * the other and backs off. */
    atomic_store_explicit(&g->state, G_INIT, memory_order_seq_cst);
    for (uint32_t i = 0; i < group_count(ring); i++) {
        group_hdr_t *o2 = group_at(ring, i);
        if (o2 == g)
            continue;
        uint32_t st = atomic_load_explicit(&o2->state, memory_order_seq_cst);
        if (st == G_CLAIMED || ((st == G_INIT || st == G_ACTIVE) && name_is(o2, w))) {
            release_hdr(g);
            return -EAGAIN;
        }
    }
    rc_reader_opts_t ro = {.mode = RC_READER_LOSSLESS,
                           .start = o->start,
                           .name = m->slot_name,
                           .flags = RC_READER_F_MANUAL_ACK};
    rc_reader_t *r;
    int rc = rc_reader_open(ring, &ro, &r);
    if (rc != 0) {
        release_hdr(g);
        return rc;
    }
    uint64_t start = rc_reader_acked(r);
    uint32_t slot = rc_reader_slot(r);
    rc_reader_forget(r); /* the slot stays, gating at `start`; the group owns it now */
    atomic_store_explicit(&g->slot, slot, memory_order_relaxed);
    atomic_store_explicit(&g->next, start, memory_order_relaxed);
    atomic_store_explicit(&g->redelivered, 0, memory_order_relaxed);
    atomic_store_explicit(&g->handed_over, 0, memory_order_relaxed);
    atomic_store_explicit(&g->floor, 0, memory_order_relaxed);
    atomic_store_explicit(&g->lagged, 0, memory_order_relaxed);
    atomic_store_explicit(&g->lag_limit, o->lag_limit, memory_order_relaxed);
    atomic_store_explicit(&g->ring_role, 0, memory_order_relaxed);
    atomic_store_explicit(&g->gsleepers, 0, memory_order_relaxed);
    atomic_store_explicit(&g->members, 1, memory_order_relaxed);
    /* Release: an attacher that acquires ACTIVE sees slot, next and the cleared cells. */
    atomic_store_explicit(&g->state, G_ACTIVE, memory_order_seq_cst);
    m->g = g;
    m->cells = cells_of(g);
    m->slot = rc__slot(ring, slot);
    int idx = take_cell(m);
    m->idx = (uint32_t)idx; /* the table was just cleared: cell 0 is free */
    m->me = &m->cells[idx];
    rc_group_heartbeat(m);
    return 0;
}

/* A CLAIMED or INIT header whose creator died (or stalled past the join timeout). */
static void reset_stuck(group_hdr_t *g, uint32_t st, uint64_t now)
{
    uint64_t since = atomic_load_explicit(&g->since, memory_order_relaxed);
    if (since == 0 || now - since < JOIN_TIMEOUT_NS)
        return;
    pid_t pid = (pid_t)atomic_load_explicit(&g->creator_pid, memory_order_relaxed);
    if (pid != 0 && rc_proc_alive(pid, rc_proc_start_time(pid)) &&
        now - since < 4 * JOIN_TIMEOUT_NS)
        return;
    atomic_compare_exchange_strong_explicit(&g->state, &st, G_FREE, memory_order_acq_rel,
                                            memory_order_relaxed);
}

int rc_group_join(rc_ring_t *ring, const char *name, const rc_group_opts_t *opts,
                  rc_group_member_t **out)
{
    rc_group_opts_t defaults = {.start = RC_START_OLDEST};
    if (out != NULL)
        *out = NULL;
    if (ring == NULL || out == NULL)
        return -EINVAL;
    if (!valid_name(name))
        return RC_EGROUP_NAME;
    const rc_group_opts_t *o = opts ? opts : &defaults;
    if ((o->start != RC_START_OLDEST && o->start != RC_START_LATEST) || o->batch > MAX_BATCH ||
        (o->flags & ~RC_GROUP_F_MANUAL_ACK) != 0 ||
        (o->lag_limit != 0 && o->lag_limit != RC_GROUP_LAG_BLOCK &&
         (o->lag_limit < RC_GROUP_LAG_MIN || o->lag_limit > rc_ring_capacity(ring))))
        return -EINVAL;
    if (group_count(ring) == 0)
        return RC_EGROUP_FULL;
    rc_group_member_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return -ENOMEM;
    m->ring = ring;
    m->batch = o->batch ? o->batch : DEFAULT_BATCH;
    m->spin = o->spin ? o->spin : DEFAULT_SPIN;
    m->manual = (o->flags & RC_GROUP_F_MANUAL_ACK) != 0;
    m->pid = (uint32_t)getpid();
    m->start_time = rc_proc_start_time(getpid());
    make_slot_name(name, m->slot_name);
    uint64_t w[4];
    pack_name(name, w);
    uint64_t deadline = rc_now_ns() + JOIN_TIMEOUT_NS;
    unsigned backoff = (unsigned)getpid() * 2654435761u + (unsigned)rc_now_ns();
    int rc;
    for (;;) {
        uint64_t now = rc_now_ns();
        group_hdr_t *found = NULL, *free_hdr = NULL;
        int busy = 0;
        for (uint32_t i = 0; i < group_count(ring); i++) {
            group_hdr_t *g = group_at(ring, i);
            uint32_t st = atomic_load_explicit(&g->state, memory_order_seq_cst);
            if (st == G_FREE) {
                if (free_hdr == NULL)
                    free_hdr = g;
            } else if (st == G_CLAIMED) {
                busy = 1;
                reset_stuck(g, st, now);
            } else if (name_is(g, w)) {
                if (st == G_ACTIVE) {
                    found = g;
                } else {
                    busy = 1;
                    reset_stuck(g, st, now);
                }
            }
        }
        rc = -EAGAIN;
        if (found != NULL) {
            rc = attach(m, found, w);
        } else if (!busy) {
            if (free_hdr == NULL) {
                rc = RC_EGROUP_FULL;
            } else {
                uint32_t st = G_FREE;
                if (atomic_compare_exchange_strong_explicit(&free_hdr->state, &st, G_CLAIMED,
                                                            memory_order_seq_cst,
                                                            memory_order_relaxed))
                    rc = create(m, free_hdr, w, o);
            }
        }
        if (rc != -EAGAIN)
            break;
        if (rc_now_ns() > deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        backoff = backoff * 1103515245u + 12345u;
        sleep_ms(1 + (long)((backoff >> 16) % 3));
    }
    if (rc != 0) {
        free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void rc_group_leave(rc_group_member_t *m)
{
    if (m == NULL)
        return;
    group_hdr_t *g = m->g;
    if (!m->manual && m->acked != m->ret_end)
        rc__group_ack_to(m, m->ret_end);
    if (atomic_fetch_sub_explicit(&g->members, 1, memory_order_acq_rel) == 1) {
        /* Last member: nobody can attach any more (attach needs members > 0). Delete the
         * group; its slot stops gating. */
        uint32_t active = RC__SLOT_ACTIVE;
        if (rc__group_slot_ours(m->slot, m->slot_name))
            atomic_compare_exchange_strong_explicit(&m->slot->state, &active, RC__SLOT_FREE,
                                                    memory_order_release, memory_order_relaxed);
        atomic_store_explicit(&g->state, G_CLAIMED, memory_order_seq_cst);
        clear_cells(g);
        release_hdr(g);
    } else if (m->acked < m->hi) {
        /* Hand what is left of the batch over: the others claim it like a dead member's. */
        atomic_store_explicit(&m->me->dead, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&g->orphans, 1, memory_order_seq_cst);
        atomic_store_explicit(&m->me->state, C_ORPHAN, memory_order_seq_cst);
        atomic_store_explicit(&m->me->lo, m->acked | ORPHAN_TAG, memory_order_seq_cst);
        rc__group_publish_gate(m);
        rc__wake(m->ring);
    } else {
        atomic_store_explicit(&m->me->state, C_FREE, memory_order_seq_cst);
        rc__group_publish_gate(m);
    }
    free(m);
}

void rc_group_stats(rc_group_member_t *m, rc_group_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->members = atomic_load_explicit(&m->g->members, memory_order_relaxed);
    st->position = atomic_load_explicit(&m->slot->position, memory_order_relaxed);
    st->next = atomic_load_explicit(&m->g->next, memory_order_relaxed);
    st->redelivered = atomic_load_explicit(&m->g->redelivered, memory_order_relaxed);
    st->handed_over = atomic_load_explicit(&m->g->handed_over, memory_order_relaxed);
    st->delivered = m->delivered;
    st->lagged = atomic_load_explicit(&m->g->lagged, memory_order_relaxed);
    st->lost = m->lost;
}

uint32_t rc_group_member_index(const rc_group_member_t *m)
{
    return m->idx;
}
