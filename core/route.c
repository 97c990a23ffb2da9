/* Routing programs: evaluation (see core/route.h; compilation is in core/route_compile.c). */
#include "core/route.h"
#include "core/cesql.h"
#include "core/cesql_record.h"
#include "core/route_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static inline bool get_attr(const rc_route_t *r, int32_t core, uint32_t hash, uint32_t name_off,
                            uint32_t name_len, const rc_record_view_t *v, rc_str_t *out)
{
    if (core >= 0) {
        rc_record_span_t s = v->hdr->attr[core];
        *out = (rc_str_t){(const char *)v->base + s.off, s.len};
        return s.off != 0;
    }
    rc_ce_key_t key = {.name = {r->pool + name_off, name_len}, .core = -1, .hash = hash};
    rc_ce_value_t val;
    if (rc_record_get_key(v, &key, &val) != 0)
        return false;
    *out = val.value;
    return true;
}

static bool test(const rc_route_t *r, const rc__route_insn_t *in, const rc_record_view_t *v)
{
    if (in->op == RC__OP_CESQL) {
        rc_cesql_errkind_t kind;
        bool ok = rc_cesql_match_record(r->progs[in->val_off], v, &kind);
        if (kind != RC_CESQL_OK)
            atomic_fetch_add_explicit(&r->errors[in->trigger], 1, memory_order_relaxed);
        return ok;
    }
    rc_str_t a;
    if (!get_attr(r, in->core, in->hash, in->name_off, in->name_len, v, &a))
        return false;
    const char *want = r->pool + in->val_off;
    size_t n = in->val_len;
    switch (in->op) {
    case RC__OP_EQ:
        return a.len == n && bytes_eq(a.ptr, want, n);
    case RC__OP_PREFIX:
        return a.len >= n && bytes_eq(a.ptr, want, n);
    case RC__OP_SUFFIX:
        return a.len >= n && bytes_eq(a.ptr + a.len - n, want, n);
    default: /* RC__OP_NONEMPTY */
        return a.len > 0;
    }
}

static bool run(const rc_route_t *r, uint32_t pc, const rc_record_view_t *v)
{
    while (pc < RC__PC_REJECT) {
        const rc__route_insn_t *in = &r->insn[pc];
        pc = test(r, in, v) ? in->t : in->f;
    }
    return pc == RC__PC_ACCEPT;
}

static const rc__route_key_t *probe(const rc_route_t *r, const rc__route_index_t *x, rc_str_t v)
{
    uint64_t h = value_hash(v.ptr, v.len);
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint32_t i = (uint32_t)h & x->mask;; i = (i + 1) & x->mask) {
        rc__route_slot_t s = x->slots[i];
        if (s.key == 0)
            return NULL;
        if (s.tag != tag)
            continue;
        const rc__route_key_t *k = (const rc__route_key_t *)(r->keys + s.key);
        if (k->len == v.len && bytes_eq((const char *)&k->entry[k->count], v.ptr, v.len))
            return k;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int rc_route_match(const rc_route_t *r, const rc_record_view_t *view, uint32_t *out, uint32_t cap)
{
    if (cap < r->ntriggers)
        return -ENOBUFS;
    uint32_t n = 0;
    bool sorted = true;
    for (uint32_t i = 0; i < r->nidx; i++) {
        const rc__route_index_t *x = &r->idx[i];
        rc_str_t v;
        if (!get_attr(r, x->core, x->hash, x->name_off, x->name_len, view, &v))
            continue;
        const rc__route_key_t *k = probe(r, x, v);
        if (k == NULL)
            continue;
        for (const rc__route_entry_t *e = k->entry, *end = e + k->count; e < end; e++) {
            if (e->pc == RC__PC_ACCEPT || run(r, e->pc, view)) {
                sorted = sorted && (n == 0 || out[n - 1] < e->trigger);
                out[n++] = e->trigger;
            }
        }
    }
    for (const rc__route_entry_t *e = r->generic, *end = e + r->ngeneric; e < end; e++) {
        if (e->pc == RC__PC_ACCEPT || run(r, e->pc, view)) {
            sorted = sorted && (n == 0 || out[n - 1] < e->trigger);
            out[n++] = e->trigger;
        }
    }
    /* Runs from the index and the generic list are each ascending: few inversions, so insertion
     * sort is linear in practice. Past 64 matches the deliveries dwarf any sort. */
    if (!sorted) {
        if (n <= 64) {
            for (uint32_t i = 1; i < n; i++) {
                uint32_t x = out[i], j = i;
                for (; j > 0 && out[j - 1] > x; j--)
                    out[j] = out[j - 1];
                out[j] = x;
            }
        } else {
            qsort(out, n, sizeof(*out), cmp_u32);
        }
    }
    return (int)n;
}

uint32_t rc_route_trigger_count(const rc_route_t *r)
{
    return r->ntriggers;
}

uint64_t rc_route_cesql_errors(const rc_route_t *r, uint32_t trigger)
{
    if (trigger >= r->ntriggers)
        return 0;
    return atomic_load_explicit(&r->errors[trigger], memory_order_relaxed);
}

void rc_route_stats(const rc_route_t *r, rc_route_stats_t *out)
{
    *out = r->stats;
}

void rc_route_destroy(rc_route_t *r)
{
    if (r == NULL)
        return;
    for (uint32_t i = 0; i < r->stats.cesql; i++)
        rc_cesql_destroy(r->progs[i]);
    for (uint32_t i = 0; i < r->nidx; i++)
        free(r->idx[i].slots);
    free(r->progs);
    free(r->idx);
    free(r->insn);
    free(r->pool);
    free(r->keys);
    free(r->generic);
    free(r->errors);
    free(r);
}
