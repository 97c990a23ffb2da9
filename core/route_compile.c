/* Routing programs: compilation of many trigger filters into hash indexes plus one branch program
 * (see core/route.h and docs/filters.md). */
#include "core/cesql.h"
#include "core/errors.h"
#include "core/filter_internal.h"
#include "core/route.h"
#include "core/route_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- compilation: normalised form ---------------------------------------------------------- */

enum { IR_TRUE, IR_FALSE, IR_LEAF, IR_AND, IR_OR, IR_NOT };

/* A filter normalised to and/or/not over leaf tests. Strings borrow the filters. */
typedef struct ir_s {
    uint8_t kind;
    uint8_t op; /* IR_LEAF: OP_* */
    uint32_t cost;
    rc_str_t name, value; /* RC__OP_CESQL: value is the expression */
    struct ir_s **kids;
    uint32_t nkids;
} ir_t;

static ir_t ir_true = {.kind = IR_TRUE};
static ir_t ir_false = {.kind = IR_FALSE};

static ir_t *leaf(rc_arena_t *a, uint8_t op, rc_str_t name, rc_str_t value)
{
    ir_t *n = rc_arena_alloc(a, sizeof(*n), _Alignof(ir_t));
    if (n == NULL)
        return NULL;
    bool core = op == RC__OP_CESQL || rc_ce_attr_index(name) >= 0;
    uint32_t cost = op == RC__OP_CESQL ? 20 : op == RC__OP_EQ || op == RC__OP_NONEMPTY ? 1 : 2;
    *n = (ir_t){
        .kind = IR_LEAF, .op = op, .cost = cost + (core ? 0 : 2), .name = name, .value = value};
    return n;
}

/* AND/OR of `kids`, flattening nested nodes of the same kind and dropping neutral constants;
 * children are put cheapest first (evaluation has no side effects a user can see, except the
 * CESQL error counters, which count evaluations that happened). */
static ir_t *combine(rc_arena_t *a, uint8_t kind, ir_t **kids, uint32_t n)
{
    ir_t *neutral = kind == IR_AND ? &ir_true : &ir_false;
    ir_t *absorbing = kind == IR_AND ? &ir_false : &ir_true;
    uint32_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (kids[i]->kind == absorbing->kind)
            return absorbing;
        if (kids[i]->kind == kind)
            total += kids[i]->nkids;
        else if (kids[i]->kind != neutral->kind)
            total++;
    }
    if (total == 0)
        return neutral;
    ir_t *one = NULL;
    for (uint32_t i = 0; i < n && total == 1; i++)
        if (kids[i]->kind != neutral->kind)
            one = kids[i]->kind == kind ? kids[i]->kids[0] : kids[i];
    if (one != NULL)
        return one;
    ir_t *c = rc_arena_alloc(a, sizeof(*c), _Alignof(ir_t));
    ir_t **list = rc_arena_alloc(a, total * sizeof(*list), _Alignof(ir_t *));
    if (c == NULL || list == NULL)
        return NULL;
    *c = (ir_t){.kind = kind, .kids = list, .nkids = 0};
    for (uint32_t i = 0; i < n; i++) {
        if (kids[i]->kind == kind)
            for (uint32_t j = 0; j < kids[i]->nkids; j++)
                list[c->nkids++] = kids[i]->kids[j];
        else if (kids[i]->kind != neutral->kind)
            list[c->nkids++] = kids[i];
    }
    for (uint32_t i = 0; i < c->nkids; i++)
        c->cost += list[i]->cost;
    /* Stable insertion sort by cost: lists are short. */
    for (uint32_t i = 1; i < c->nkids; i++) {
        ir_t *x = list[i];
        uint32_t j = i;
        for (; j > 0 && list[j - 1]->cost > x->cost; j--)
            list[j] = list[j - 1];
        list[j] = x;
    }
    return c;
}

static ir_t *negate(rc_arena_t *a, ir_t *k)
{
    if (k == NULL)
        return NULL;
    if (k->kind == IR_TRUE || k->kind == IR_FALSE)
        return k->kind == IR_TRUE ? &ir_false : &ir_true;
    if (k->kind == IR_NOT)
        return k->kids[0];
    ir_t *n = rc_arena_alloc(a, sizeof(*n), _Alignof(ir_t));
    ir_t **list = rc_arena_alloc(a, sizeof(*list), _Alignof(ir_t *));
    if (n == NULL || list == NULL)
        return NULL;
    list[0] = k;
    *n = (ir_t){.kind = IR_NOT, .cost = k->cost, .kids = list, .nkids = 1};
    return n;
}

/* AND of the map entries of an attributes/exact/prefix/suffix map. */
static ir_t *from_pairs(rc_arena_t *a, const rc__filter_pair_t *p, uint32_t count, uint8_t op,
                        bool attributes)
{
    ir_t **kids = rc_arena_alloc(a, (count ? count : 1) * sizeof(*kids), _Alignof(ir_t *));
    if (kids == NULL)
        return NULL;
    uint32_t n = 0;
    for (; p != NULL; p = p->next) {
        uint8_t o = attributes && p->value.len == 0 ? RC__OP_NONEMPTY : op;
        if ((kids[n++] = leaf(a, o, p->name, p->value)) == NULL)
            return NULL;
    }
    return combine(a, IR_AND, kids, n);
}

static ir_t *from_node(rc_arena_t *a, const rc_filter_node_t *node);

static ir_t *from_list(rc_arena_t *a, const rc_filter_node_t *first, uint32_t count, uint8_t kind)
{
    ir_t **kids = rc_arena_alloc(a, (count ? count : 1) * sizeof(*kids), _Alignof(ir_t *));
    if (kids == NULL)
        return NULL;
    uint32_t n = 0;
    for (const rc_filter_node_t *c = first; c != NULL; c = c->next)
        if ((kids[n++] = from_node(a, c)) == NULL)
            return NULL;
    return combine(a, kind, kids, n);
}

static ir_t *from_node(rc_arena_t *a, const rc_filter_node_t *node)
{
    switch (node->dialect) {
    case RC_FILTER_EXACT:
        return from_pairs(a, node->pairs, node->count, RC__OP_EQ, false);
    case RC_FILTER_PREFIX:
        return from_pairs(a, node->pairs, node->count, RC__OP_PREFIX, false);
    case RC_FILTER_SUFFIX:
        return from_pairs(a, node->pairs, node->count, RC__OP_SUFFIX, false);
    case RC_FILTER_ALL:
        return from_list(a, node->first, node->count, IR_AND);
    case RC_FILTER_ANY:
        return from_list(a, node->first, node->count, IR_OR);
    case RC_FILTER_NOT:
        return negate(a, from_node(a, node->first));
    default: /* RC_FILTER_CESQL */
        return leaf(a, RC__OP_CESQL, RC_STR_NULL, node->expr);
    }
}

static ir_t *from_filter(rc_arena_t *a, const rc_filter_t *f)
{
    if (f == NULL)
        return &ir_true;
    if (f->count > 0)
        return from_list(a, f->first, f->count, IR_AND);
    if (f->attr_count > 0)
        return from_pairs(a, f->attrs, f->attr_count, RC__OP_EQ, true);
    return &ir_true;
}

/* ---- compilation: keys --------------------------------------------------------------------- */

/* The attribute `c` can key a trigger on: an exact test, or an OR of exact tests on one
 * attribute. NULL when it cannot. */
static const rc_str_t *key_attr(const ir_t *c)
{
    if (c->kind == IR_LEAF)
        return c->op == RC__OP_EQ ? &c->name : NULL;
    if (c->kind != IR_OR)
        return NULL;
    for (uint32_t i = 0; i < c->nkids; i++) {
        const ir_t *k = c->kids[i];
        if (k->kind != IR_LEAF || k->op != RC__OP_EQ || !rc_str_eq(k->name, c->kids[0]->name))
            return NULL;
    }
    return &c->kids[0]->name;
}

/* Conjuncts of a root: its children when it is an AND, else itself. */
static ir_t **conjuncts(ir_t **root, uint32_t *n)
{
    if ((*root)->kind == IR_AND) {
        *n = (*root)->nkids;
        return (*root)->kids;
    }
    *n = 1;
    return root;
}

typedef struct {
    rc_str_t name;
    uint32_t uses; /* triggers that could be keyed on it */
} attr_count_t;

/* One (key attribute, value) -> trigger row before the hash tables are built. */
typedef struct {
    uint32_t attr, trigger, pc;
    rc_str_t value;
} row_t;

static int cmp_row(const void *pa, const void *pb)
{
    const row_t *a = pa, *b = pb;
    if (a->attr != b->attr)
        return a->attr < b->attr ? -1 : 1;
    if (a->value.len != b->value.len)
        return a->value.len < b->value.len ? -1 : 1;
    int c = memcmp(a->value.ptr, b->value.ptr, a->value.len);
    if (c != 0)
        return c;
    return a->trigger < b->trigger ? -1 : a->trigger > b->trigger;
}

/* ---- compilation: emitting ----------------------------------------------------------------- */

typedef struct {
    rc_route_t *r;
    uint32_t ninsn, cap_insn;
    size_t pool_len, pool_cap;
    uint32_t cap_progs;
} builder_t;

static int pool_add(builder_t *b, rc_str_t s, uint32_t *off)
{
    if (b->pool_len + s.len + 1 > b->pool_cap) {
        size_t cap = b->pool_cap ? b->pool_cap : 4096;
        while (cap < b->pool_len + s.len + 1)
            cap *= 2;
        if (cap > UINT32_MAX)
            return -ENOMEM;
        char *p = realloc(b->r->pool, cap);
        if (p == NULL)
            return -ENOMEM;
        b->r->pool = p;
        b->pool_cap = cap;
    }
    *off = (uint32_t)b->pool_len;
    if (s.len)
        memcpy(b->r->pool + b->pool_len, s.ptr, s.len);
    b->r->pool[b->pool_len + s.len] = '\0';
    b->pool_len += s.len + 1;
    return 0;
}

static int add_cesql(builder_t *b, rc_str_t expr, uint32_t *index)
{
    rc_route_t *r = b->r;
    if (r->stats.cesql == b->cap_progs) {
        uint32_t cap = b->cap_progs ? b->cap_progs * 2 : 8;
        rc_cesql_program_t **p = realloc(r->progs, cap * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        r->progs = p;
        b->cap_progs = cap;
    }
    rc_cesql_error_t err;
    rc_cesql_program_t *prog;
    int rc = rc_cesql_compile(expr.ptr, expr.len, &prog, &err);
    if (rc != 0) /* it compiled when the filter was built */
        return rc == -ENOMEM ? rc : -EINVAL;
    *index = r->stats.cesql;
    r->progs[r->stats.cesql++] = prog;
    return 0;
}

/* Emits `n` so that it continues at t when true and at f when false; *entry is where it starts.
 * Each test of the filter is emitted once, so the program is as long as the filter. */
static int emit(builder_t *b, const ir_t *n, uint32_t t, uint32_t f, uint32_t trigger,
                uint32_t *entry)
{
    int rc = 0;
    uint32_t e;
    switch (n->kind) {
    case IR_TRUE:
        *entry = t;
        return 0;
    case IR_FALSE:
        *entry = f;
        return 0;
    case IR_NOT:
        return emit(b, n->kids[0], f, t, trigger, entry);
    case IR_AND:
        e = t;
        for (uint32_t i = n->nkids; i-- > 0;)
            if ((rc = emit(b, n->kids[i], e, f, trigger, &e)) != 0)
                return rc;
        *entry = e;
        return 0;
    case IR_OR:
        e = f;
        for (uint32_t i = n->nkids; i-- > 0;)
            if ((rc = emit(b, n->kids[i], t, e, trigger, &e)) != 0)
                return rc;
        *entry = e;
        return 0;
    }
    /* IR_LEAF */
    rc_route_t *r = b->r;
    if (b->ninsn >= RC__PC_REJECT - 1)
        return -ENOMEM;
    if (b->ninsn == b->cap_insn) {
        uint32_t cap = b->cap_insn ? b->cap_insn * 2 : 64;
        rc__route_insn_t *p = realloc(r->insn, (size_t)cap * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        r->insn = p;
        b->cap_insn = cap;
    }
    rc__route_insn_t in = {.op = n->op, .core = -1, .t = t, .f = f, .trigger = trigger};
    if (n->op == RC__OP_CESQL) {
        rc = add_cesql(b, n->value, &in.val_off);
    } else {
        in.core = (int8_t)rc_ce_attr_index(n->name);
        in.hash = rc_ce_name_hash(n->name);
        in.name_len = (uint32_t)n->name.len;
        in.val_len = (uint32_t)n->value.len;
        if ((rc = pool_add(b, n->name, &in.name_off)) == 0)
            rc = pool_add(b, n->value, &in.val_off);
    }
    if (rc != 0)
        return rc;
    *entry = b->ninsn;
    r->insn[b->ninsn++] = in;
    return 0;
}

/* Builds one hash index per key attribute from the rows (sorted by attribute, value, trigger):
 * one key blob per distinct value, in one buffer sized up front. */
static int build_indexes(builder_t *b, row_t *rows, size_t nrows, const attr_count_t *attrs,
                         const uint32_t *attr_of_index)
{
    rc_route_t *r = b->r;
    size_t bytes = 8;
    for (size_t j = 0; j < nrows; j++)
        if (j == 0 || rows[j].attr != rows[j - 1].attr ||
            !rc_str_eq(rows[j].value, rows[j - 1].value))
            bytes += sizeof(rc__route_key_t) + ((rows[j].value.len + 7) & ~(size_t)7);
    bytes += nrows * sizeof(rc__route_entry_t);
    if (bytes > UINT32_MAX || (r->keys = calloc(1, bytes)) == NULL)
        return -ENOMEM;
    size_t used = 8, i = 0;
    for (uint32_t x = 0; x < r->nidx; x++) {
        rc__route_index_t *ix = &r->idx[x];
        rc_str_t name = attrs[attr_of_index[x]].name;
        ix->core = rc_ce_attr_index(name);
        ix->hash = rc_ce_name_hash(name);
        ix->name_len = (uint32_t)name.len;
        int rc = pool_add(b, name, &ix->name_off);
        if (rc != 0)
            return rc;
        size_t start = i, distinct = 0;
        for (; i < nrows && rows[i].attr == x; i++)
            distinct += i == start || !rc_str_eq(rows[i].value, rows[i - 1].value);
        uint32_t cap = 8; /* load factor at most 2/3 */
        while (cap < distinct + distinct / 2)
            cap *= 2;
        ix->slots = calloc(cap, sizeof(*ix->slots));
        if (ix->slots == NULL)
            return -ENOMEM;
        ix->mask = cap - 1;
        for (size_t j = start; j < i;) {
            /* One distinct value: rows j .. e-1, its triggers without repeats. */
            size_t e = j + 1;
            while (e < i && rc_str_eq(rows[e].value, rows[j].value))
                e++;
            rc_str_t v = rows[j].value;
            rc__route_key_t *k = (rc__route_key_t *)(r->keys + used);
            k->len = (uint32_t)v.len;
            for (size_t m = j; m < e; m++)
                if (m == j || rows[m].trigger != rows[m - 1].trigger)
                    k->entry[k->count++] = (rc__route_entry_t){rows[m].trigger, rows[m].pc};
            if (v.len)
                memcpy(&k->entry[k->count], v.ptr, v.len);
            uint64_t h = value_hash(v.ptr, v.len);
            uint32_t s = (uint32_t)h & ix->mask;
            while (ix->slots[s].key != 0)
                s = (s + 1) & ix->mask;
            ix->slots[s] = (rc__route_slot_t){(uint32_t)(h >> 32), (uint32_t)used};
            used += sizeof(rc__route_key_t) + k->count * sizeof(rc__route_entry_t) +
                    ((v.len + 7) & ~(size_t)7);
            r->stats.index_keys++;
            j = e;
        }
    }
    return 0;
}

/* ---- compilation: the steps ---------------------------------------------------------------- */

/* What rc_route_compile holds while it works; all of it but b.r is freed at its end. */
typedef struct {
    builder_t b;
    unsigned flags;
    rc_arena_t tmp;      /* the normalised filters */
    ir_t **roots;        /* one normalised filter per trigger */
    attr_count_t *attrs; /* every attribute some trigger could be keyed on */
    uint32_t nattrs, cap_attrs;
    row_t *rows; /* rows[].attr indexes attrs until number_indexes, then r->idx */
    size_t nrows, cap_rows;
    uint32_t *attr_of_index; /* r->idx[x] is keyed on attrs[attr_of_index[x]] */
} compile_t;

/* The index of attribute `name` in c->attrs, added with no uses when it is new. */
static int attr_slot(compile_t *c, rc_str_t name, uint32_t *out)
{
    uint32_t a = 0;
    while (a < c->nattrs && !rc_str_eq(c->attrs[a].name, name))
        a++;
    if (a == c->nattrs) {
        if (c->nattrs == c->cap_attrs) {
            uint32_t cap = c->cap_attrs ? c->cap_attrs * 2 : 8;
            attr_count_t *p = realloc(c->attrs, cap * sizeof(*p));
            if (p == NULL)
                return -ENOMEM;
            c->attrs = p;
            c->cap_attrs = cap;
        }
        c->attrs[c->nattrs++] = (attr_count_t){name, 0};
    }
    *out = a;
    return 0;
}

/* Normalises every filter, and counts for every attribute how many triggers could be keyed on
 * it. */
static int normalise(compile_t *c, const rc_filter_t *const *filters, uint32_t n)
{
    for (uint32_t t = 0; t < n; t++) {
        if ((c->roots[t] = from_filter(&c->tmp, filters[t])) == NULL)
            return -ENOMEM;
        if (c->flags & RC_ROUTE_NO_INDEX)
            continue;
        uint32_t nc, a;
        ir_t **cj = conjuncts(&c->roots[t], &nc);
        for (uint32_t i = 0; i < nc; i++) {
            const rc_str_t *name = key_attr(cj[i]);
            if (name == NULL)
                continue;
            int rc = attr_slot(c, *name, &a);
            if (rc != 0)
                return rc;
            c->attrs[a].uses++;
        }
    }
    return 0;
}

/* Which of the conjuncts `cj` keys its trigger: one on `type` when there is one, else one on the
 * attribute most triggers share (fewer tables to probe per event). Returns its position, with
 * its attribute in `*attr`, or UINT32_MAX when no conjunct can key the trigger. */
static uint32_t choose_key(const compile_t *c, ir_t *const *cj, uint32_t nc, uint32_t *attr)
{
    uint32_t best = UINT32_MAX, best_a = 0;
    for (uint32_t i = 0; i < nc && !(c->flags & RC_ROUTE_NO_INDEX); i++) {
        const rc_str_t *name = key_attr(cj[i]);
        if (name == NULL)
            continue;
        uint32_t a = 0;
        while (!rc_str_eq(c->attrs[a].name, *name))
            a++;
        bool is_type = rc_str_eq_cstr(*name, "type");
        bool best_type = best != UINT32_MAX && rc_str_eq_cstr(c->attrs[best_a].name, "type");
        if (best == UINT32_MAX || (is_type && !best_type) ||
            (!best_type && c->attrs[a].uses > c->attrs[best_a].uses)) {
            best = i;
            best_a = a;
        }
    }
    *attr = best_a;
    return best;
}

/* One row per value of the key conjunct `kc` (an exact test, or an OR of exact tests): trigger
 * `t`, whose remaining program starts at `pc`, is a candidate when the event has that value. */
static int add_rows(compile_t *c, const ir_t *kc, uint32_t attr, uint32_t t, uint32_t pc)
{
    uint32_t nv = kc->kind == IR_LEAF ? 1 : kc->nkids;
    for (uint32_t v = 0; v < nv; v++) {
        if (c->nrows == c->cap_rows) {
            size_t cap = c->cap_rows ? c->cap_rows * 2 : 64;
            row_t *p = realloc(c->rows, cap * sizeof(*p));
            if (p == NULL)
                return -ENOMEM;
            c->rows = p;
            c->cap_rows = cap;
        }
        rc_str_t value = kc->kind == IR_LEAF ? kc->value : kc->kids[v]->value;
        c->rows[c->nrows++] = (row_t){attr, t, pc, value};
    }
    return 0;
}

/* Keys trigger `t` (or makes it generic: tried for every event) and emits what remains of its
 * filter. */
static int compile_trigger(compile_t *c, uint32_t t)
{
    rc_route_t *r = c->b.r;
    uint32_t nc, attr;
    ir_t **cj = conjuncts(&c->roots[t], &nc);
    uint32_t best = choose_key(c, cj, nc, &attr);
    ir_t *rest = c->roots[t];
    if (best != UINT32_MAX) {
        ir_t **keep = rc_arena_alloc(&c->tmp, nc * sizeof(*keep), _Alignof(ir_t *));
        if (keep == NULL)
            return -ENOMEM;
        uint32_t k = 0;
        for (uint32_t i = 0; i < nc; i++)
            if (i != best)
                keep[k++] = cj[i];
        if ((rest = combine(&c->tmp, IR_AND, keep, k)) == NULL)
            return -ENOMEM;
    }
    uint32_t pc;
    int rc = emit(&c->b, rest, RC__PC_ACCEPT, RC__PC_REJECT, t, &pc);
    if (rc != 0)
        return rc;
    if (best == UINT32_MAX) {
        r->generic[r->ngeneric++] = (rc__route_entry_t){t, pc};
        return 0;
    }
    rc = add_rows(c, cj[best], attr, t, pc);
    if (rc == 0)
        r->stats.indexed++;
    return rc;
}

/* Numbers the attributes that key at least one trigger, one hash table each, and renumbers the
 * rows' attributes to match. */
static int number_indexes(compile_t *c)
{
    rc_route_t *r = c->b.r;
    size_t n = c->nattrs ? c->nattrs : 1;
    int rc = -ENOMEM;
    uint32_t *index_of_attr = calloc(n, sizeof(*index_of_attr));
    bool *used = calloc(n, sizeof(*used));
    c->attr_of_index = calloc(n, sizeof(*c->attr_of_index));
    if (c->attr_of_index == NULL || index_of_attr == NULL || used == NULL)
        goto out;
    for (size_t i = 0; i < c->nrows; i++)
        used[c->rows[i].attr] = true;
    uint32_t nidx = 0;
    for (uint32_t a = 0; a < c->nattrs; a++)
        if (used[a]) {
            index_of_attr[a] = nidx;
            c->attr_of_index[nidx++] = a;
        }
    for (size_t i = 0; i < c->nrows; i++)
        c->rows[i].attr = index_of_attr[c->rows[i].attr];
    r->idx = calloc(nidx ? nidx : 1, sizeof(*r->idx));
    if (r->idx == NULL)
        goto out;
    r->nidx = nidx;
    rc = 0;
out:
    free(index_of_attr);
    free(used);
    return rc;
}

int rc_route_compile(const rc_filter_t *const *filters, uint32_t n, unsigned flags,
                     rc_route_t **out)
{
    *out = NULL;
    if (n > RC_ROUTE_MAX_TRIGGERS || (flags & ~(unsigned)RC_ROUTE_NO_INDEX) != 0)
        return -EINVAL;
    for (uint32_t i = 0; i < n; i++)
        if (filters[i] != NULL && !filters[i]->finished)
            return -EINVAL;

    int rc = -ENOMEM;
    compile_t c = {.flags = flags};
    rc_arena_init(&c.tmp, NULL, 0, 0);
    c.roots = calloc(n ? n : 1, sizeof(*c.roots));
    rc_route_t *r = c.b.r = calloc(1, sizeof(*r));
    if (c.roots == NULL || r == NULL)
        goto out;
    r->ntriggers = n;
    r->stats.triggers = n;
    r->errors = calloc(n ? n : 1, sizeof(*r->errors));
    r->generic = malloc((n ? n : 1) * sizeof(*r->generic));
    if (r->errors == NULL || r->generic == NULL)
        goto out;
    if ((rc = normalise(&c, filters, n)) != 0)
        goto out;
    for (uint32_t t = 0; t < n; t++)
        if ((rc = compile_trigger(&c, t)) != 0)
            goto out;
    r->stats.generic = r->ngeneric;
    if ((rc = number_indexes(&c)) != 0)
        goto out;
    if (c.nrows > 1)
        qsort(c.rows, c.nrows, sizeof(*c.rows), cmp_row);
    if ((rc = build_indexes(&c.b, c.rows, c.nrows, c.attrs, c.attr_of_index)) != 0)
        goto out;
    r->stats.index_attrs = r->nidx;
    r->stats.insns = c.b.ninsn;
    *out = r;
    r = NULL;
out:
    rc_route_destroy(r);
    free(c.attr_of_index);
    free(c.rows);
    free(c.attrs);
    free(c.roots);
    rc_arena_close(&c.tmp);
    return rc;
}
