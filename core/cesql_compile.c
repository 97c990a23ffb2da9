/* CESQL compiler: syntax tree -> program.
 *
 * Three steps: resolve every function call against the built-ins (unknown names and wrong
 * argument counts are compile errors, so a trigger with a typo is rejected when it is applied),
 * fold every subtree that reads no attribute into a constant by running it through the virtual
 * machine itself (so folding can never disagree with evaluation; subtrees that raise an error
 * are left to raise it at run time, since short circuits may skip them), and emit instructions,
 * choosing fused instructions for `attr = 'text'`, `attr LIKE 'pattern'` and
 * `attr IN (constants)`. */
#include "core/cesql_internal.h"
#include "core/errors.h"
#include "core/event.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    rc_cesql_program_t *prog; /* strings, patterns, sets and names live in prog->mem */
    rc__cesql_insn_t *code;
    uint32_t ncode, cap_code;
    rc_cesql_value_t *consts;
    uint32_t cap_consts;
    rc_cesql_attr_t *attrs;
    uint32_t cap_attrs;
    rc__cesql_like_t *likes;
    uint32_t cap_likes;
    rc__cesql_set_t *sets;
    uint32_t cap_sets;
    uint32_t sp, max_sp;
    bool oom;
} emit_t;

static bool grow(void **v, uint32_t *cap, uint32_t n, size_t elem)
{
    if (n < *cap)
        return true;
    uint32_t c = *cap ? *cap * 2 : 8;
    void *nv = realloc(*v, c * elem);
    if (nv == NULL)
        return false;
    *v = nv;
    *cap = c;
    return true;
}

static uint32_t insn(emit_t *e, uint8_t op, uint8_t flag, uint16_t a, uint32_t b, int stack)
{
    if (!grow((void **)&e->code, &e->cap_code, e->ncode, sizeof(*e->code))) {
        e->oom = true;
        return 0;
    }
    e->code[e->ncode] = (rc__cesql_insn_t){.op = op, .flag = flag, .a = a, .b = b};
    e->sp = (uint32_t)((int)e->sp + stack);
    if (e->sp > e->max_sp)
        e->max_sp = e->sp;
    return e->ncode++;
}

static const char *mem_strdup(emit_t *e, const char *s, size_t len)
{
    char *p = rc__cesql_arena_alloc(&e->prog->mem, len + 1);
    if (p == NULL) {
        e->oom = true;
        return "";
    }
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static uint32_t add_const(emit_t *e, const rc_cesql_value_t *v)
{
    rc_cesql_program_t *p = e->prog;
    if (!grow((void **)&e->consts, &e->cap_consts, p->nconsts, sizeof(*e->consts))) {
        e->oom = true;
        return 0;
    }
    rc_cesql_value_t c = *v;
    if (c.type == RC_CESQL_TYPE_STRING)
        c.u.s = mem_strdup(e, v->u.s, v->len);
    e->consts[p->nconsts] = c;
    return p->nconsts++;
}

static uint16_t add_attr(emit_t *e, const char *name, uint32_t len)
{
    rc_cesql_program_t *p = e->prog;
    for (uint32_t i = 0; i < p->nattrs; i++) {
        if (e->attrs[i].len == len && memcmp(e->attrs[i].name, name, len) == 0)
            return (uint16_t)i;
    }
    if (p->nattrs >= UINT16_MAX ||
        !grow((void **)&e->attrs, &e->cap_attrs, p->nattrs, sizeof(*e->attrs))) {
        e->oom = true;
        return 0;
    }
    rc_cesql_attr_t *a = &e->attrs[p->nattrs];
    a->name = mem_strdup(e, name, len);
    a->len = len;
    a->index = (uint16_t)p->nattrs;
    /* The record's extension table is keyed by rc_ce_name_hash and its core slots by
     * rc_ce_attr_t: take both from core/event.h so lookups on records always agree. */
    rc_str_t s = {name, len};
    a->hash = rc_ce_name_hash(s);
    int core = rc_ce_attr_index(s);
    a->core = core >= 0 ? (int16_t)core : RC_CESQL_CORE_NONE;
    return (uint16_t)p->nattrs++;
}

static uint32_t add_like(emit_t *e, const rc_cesql_value_t *pattern)
{
    rc_cesql_program_t *p = e->prog;
    if (!grow((void **)&e->likes, &e->cap_likes, p->nlikes, sizeof(*e->likes)) ||
        rc__cesql_like_compile(pattern->u.s, pattern->len, &p->mem, &e->likes[p->nlikes]) != 0) {
        e->oom = true;
        return 0;
    }
    return p->nlikes++;
}

/* Pre-casts every element of a constant IN set to each type the left operand may have. */
static uint32_t add_set(emit_t *e, rc__cesql_node_t *const *elems, uint32_t n)
{
    rc_cesql_program_t *p = e->prog;
    if (!grow((void **)&e->sets, &e->cap_sets, p->nsets, sizeof(*e->sets))) {
        e->oom = true;
        return 0;
    }
    rc__cesql_set_t *s = &e->sets[p->nsets];
    s->n = n;
    s->as_str = rc__cesql_arena_alloc(&p->mem, sizeof(*s->as_str) * n);
    s->as_int = rc__cesql_arena_alloc(&p->mem, sizeof(*s->as_int) * n);
    s->int_ok = rc__cesql_arena_alloc(&p->mem, n);
    s->as_bool = rc__cesql_arena_alloc(&p->mem, n);
    s->bool_ok = rc__cesql_arena_alloc(&p->mem, n);
    if (!s->as_str || !s->as_int || !s->int_ok || !s->as_bool || !s->bool_ok) {
        e->oom = true;
        return 0;
    }
    for (uint32_t k = 0; k < n; k++) {
        const rc_cesql_value_t *lit = &elems[k]->lit;
        char buf[12];
        rc__cesql_scratch_t sc = {.base = buf, .len = sizeof(buf)};
        rc_cesql_value_t v = *lit;
        rc__cesql_cast(&v, RC_CESQL_TYPE_STRING, &sc);
        v.u.s = mem_strdup(e, v.u.s, v.len);
        s->as_str[k] = v;
        v = *lit;
        s->int_ok[k] = rc__cesql_cast(&v, RC_CESQL_TYPE_INT, &sc) == RC_CESQL_OK;
        s->as_int[k] = v.u.i;
        v = *lit;
        s->bool_ok[k] = rc__cesql_cast(&v, RC_CESQL_TYPE_BOOL, &sc) == RC_CESQL_OK;
        s->as_bool[k] = v.u.b;
    }
    return p->nsets++;
}

static void patch(emit_t *e, uint32_t at)
{
    e->code[at].b = e->ncode;
}

static void emit(emit_t *e, const rc__cesql_node_t *n);

static bool all_literals(rc__cesql_node_t *const *kids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (kids[i]->kind != RC__N_LIT)
            return false;
    }
    return true;
}

/* A right-associative AND/OR/XOR chain, emitted left to right without recursion. After each
 * operand but the last: AND/OR jump out when the operand decides the rest of the chain, XOR
 * keeps the operand on the stack. After the last operand the pending XORs are applied from the
 * right, and each short-circuit jump lands where the value of its own sub-chain is on top. */
static void emit_logic(emit_t *e, const rc__cesql_node_t *n)
{
    uint32_t count = n->nkids;
    uint32_t *jumps = calloc(count, sizeof(*jumps));
    if (jumps == NULL) {
        e->oom = true;
        return;
    }
    for (uint32_t i = 0; i < count && !e->oom; i++) {
        const rc__cesql_node_t *k = n->kids[i];
        emit(e, k);
        bool last = i + 1 == count;
        uint8_t op = last ? RC__OP_XOR : n->ops[i];
        if (op == RC__OP_AND)
            jumps[i] = insn(e, RC__I_AND_JUMP, 0, 0, 0, -1);
        else if (op == RC__OP_OR)
            jumps[i] = insn(e, RC__I_OR_JUMP, 0, 0, 0, -1);
        else if (k->type != RC_CESQL_TYPE_BOOL)
            insn(e, RC__I_BOOL, 0, 0, 0, 0);
    }
    for (uint32_t i = count - 1; i-- > 0 && !e->oom;) {
        if (n->ops[i] == RC__OP_XOR)
            insn(e, RC__I_XOR, 0, 0, 0, -1);
        else
            patch(e, jumps[i]);
    }
    free(jumps);
}

static void emit(emit_t *e, const rc__cesql_node_t *n)
{
    if (e->oom)
        return;
    rc__cesql_node_t *const *k = n->kids;
    switch ((rc__cesql_kind_t)n->kind) {
    case RC__N_LIT:
        insn(e, RC__I_CONST, 0, 0, add_const(e, &n->lit), 1);
        break;
    case RC__N_ATTR:
        insn(e, RC__I_ATTR, 0, add_attr(e, n->name, n->name_len), 0, 1);
        break;
    case RC__N_EXISTS:
        insn(e, RC__I_EXISTS, 0, add_attr(e, n->name, n->name_len), 0, 1);
        break;
    case RC__N_NOT:
    case RC__N_NEG:
        emit(e, k[0]);
        insn(e, n->kind == RC__N_NOT ? RC__I_NOT : RC__I_NEG, 0, 0, 0, 0);
        break;
    case RC__N_BIN:
        if ((n->op == RC__OP_EQ || n->op == RC__OP_NE) && k[0]->kind == RC__N_ATTR &&
            k[1]->kind == RC__N_LIT && k[1]->lit.type == RC_CESQL_TYPE_STRING) {
            uint16_t a = add_attr(e, k[0]->name, k[0]->name_len);
            insn(e, RC__I_ATTR_EQ_STR, n->op == RC__OP_NE, a, add_const(e, &k[1]->lit), 1);
            break;
        }
        emit(e, k[0]);
        emit(e, k[1]);
        insn(e, n->op <= RC__OP_SUB ? RC__I_ARITH : RC__I_CMP, n->op, 0, 0, -1);
        break;
    case RC__N_LOGIC:
        emit_logic(e, n);
        break;
    case RC__N_LIKE:
        if (k[0]->kind == RC__N_ATTR) {
            uint16_t a = add_attr(e, k[0]->name, k[0]->name_len);
            insn(e, RC__I_ATTR_LIKE, n->negate, a, add_like(e, &n->lit), 1);
            break;
        }
        emit(e, k[0]);
        insn(e, RC__I_LIKE, n->negate, 0, add_like(e, &n->lit), 0);
        break;
    case RC__N_IN: {
        if (k[0]->kind == RC__N_ATTR && all_literals(k + 1, n->nkids - 1)) {
            uint16_t a = add_attr(e, k[0]->name, k[0]->name_len);
            insn(e, RC__I_ATTR_IN, n->negate, a, add_set(e, k + 1, n->nkids - 1), 1);
            break;
        }
        uint32_t *jumps = calloc(n->nkids, sizeof(*jumps));
        if (jumps == NULL) {
            e->oom = true;
            break;
        }
        emit(e, k[0]);
        for (uint32_t i = 1; i < n->nkids; i++) {
            emit(e, k[i]);
            jumps[i] = insn(e, RC__I_IN_TEST, n->negate, 0, 0, -1);
        }
        insn(e, RC__I_IN_END, n->negate, 0, 0, 0);
        for (uint32_t i = 1; i < n->nkids && !e->oom; i++)
            patch(e, jumps[i]);
        free(jumps);
        break;
    }
    case RC__N_CALL:
        for (uint32_t i = 0; i < n->nkids; i++)
            emit(e, k[i]);
        insn(e, RC__I_CALL, 0, (uint16_t)n->nkids, (uint32_t)n->fn, 1 - (int)n->nkids);
        break;
    }
}

static void emit_free(emit_t *e)
{
    free(e->code);
    free(e->consts);
    free(e->attrs);
    free(e->likes);
    free(e->sets);
}

/* Emits `root` into a new program. Returns NULL on out-of-memory. */
static rc_cesql_program_t *build(const rc__cesql_node_t *root)
{
    rc_cesql_program_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    emit_t e = {.prog = p};
    emit(&e, root);
    if (e.oom) {
        emit_free(&e);
        rc_cesql_destroy(p);
        return NULL;
    }
    p->code = e.code;
    p->ncode = e.ncode;
    p->consts = e.consts;
    p->attrs = e.attrs;
    p->likes = e.likes;
    p->sets = e.sets;
    p->max_stack = e.max_sp;
    p->root_type = root->type;
    p->fast_core = -1;
    if (p->ncode == 1 && p->code[0].op == RC__I_ATTR_EQ_STR && p->attrs[p->code[0].a].core >= 0) {
        p->fast_core = p->attrs[p->code[0].a].core;
        p->fast_negate = p->code[0].flag;
        p->fast_str = p->consts[p->code[0].b].u.s;
        p->fast_len = p->consts[p->code[0].b].len;
    }
    return p;
}

typedef struct {
    rc__cesql_arena_t *arena; /* the syntax tree's */
    rc_cesql_error_t *err;
    int rc;
} fold_t;

/* Replaces `n` (whose operands are all literals) by its value, unless evaluating it raises an
 * error: that error then belongs to run time. */
static void try_fold(fold_t *f, rc__cesql_node_t *n)
{
    size_t need = 64;
    for (uint32_t i = 0; i < n->nkids; i++)
        need += 2 * (size_t)n->kids[i]->lit.len + 16;
    rc_cesql_program_t *p = build(n);
    char *scratch = malloc(need);
    if (p == NULL || scratch == NULL) {
        f->rc = -ENOMEM;
        goto out;
    }
    if (p->max_stack > RC_CESQL_MAX_STACK)
        goto out; /* reported by the final check */
    rc_cesql_result_t r;
    rc_cesql_eval(p, NULL, NULL, scratch, need, &r);
    if (r.error != RC_CESQL_OK)
        goto out;
    if (r.value.type == RC_CESQL_TYPE_STRING) {
        char *s = rc__cesql_arena_alloc(f->arena, (size_t)r.value.len + 1);
        if (s == NULL) {
            f->rc = -ENOMEM;
            goto out;
        }
        memcpy(s, r.value.u.s, r.value.len);
        r.value.u.s = s;
    }
    n->kind = RC__N_LIT;
    n->lit = r.value;
    n->type = (uint8_t)r.value.type;
    n->nkids = 0;
out:
    free(scratch);
    rc_cesql_destroy(p);
}

static void fold(fold_t *f, rc__cesql_node_t *n)
{
    for (uint32_t i = 0; i < n->nkids && f->rc == 0; i++)
        fold(f, n->kids[i]);
    if (f->rc != 0)
        return;
    switch ((rc__cesql_kind_t)n->kind) {
    case RC__N_LIT:
    case RC__N_ATTR:
    case RC__N_EXISTS:
        return;
    case RC__N_CALL: {
        int fn = rc__cesql_func_find(n->name, n->name_len, n->nkids);
        if (fn < 0) {
            rc__cesql_set_error(f->err, RC_CESQL_ERR_MISSING_FUNCTION, n->pos, NULL,
                                fn == -1 ? "unknown function %.*s"
                                         : "function %.*s does not take %u argument(s)",
                                (int)(n->name_len > 40 ? 40 : n->name_len), n->name, n->nkids);
            f->rc = RC_ECESQL_FUNCTION;
            return;
        }
        n->fn = fn;
        n->type = rc__cesql_funcs[fn].ret;
        break;
    }
    case RC__N_LOGIC: {
        /* `false AND ...` and `true OR ...` decide the whole (right-associative) chain. */
        rc__cesql_node_t *k0 = n->kids[0];
        if (k0->kind == RC__N_LIT && k0->lit.type == RC_CESQL_TYPE_BOOL &&
            k0->lit.u.b == (n->ops[0] == RC__OP_OR) && n->ops[0] != RC__OP_XOR) {
            n->kind = RC__N_LIT;
            n->lit = k0->lit;
            n->type = RC_CESQL_TYPE_BOOL;
            n->nkids = 0;
            return;
        }
        break;
    }
    default:
        break;
    }
    if (all_literals(n->kids, n->nkids))
        try_fold(f, n);
}

static pthread_once_t locale_once = PTHREAD_ONCE_INIT;

int rc_cesql_compile(const char *expr, size_t len, rc_cesql_program_t **out, rc_cesql_error_t *err)
{
    *out = NULL;
    if (err != NULL)
        memset(err, 0, sizeof(*err));
    pthread_once(&locale_once, rc__cesql_locale_init);
    rc__cesql_arena_t tree = {0};
    rc_cesql_program_t *p = NULL;
    int rc = RC_EPARSE;
    rc__cesql_node_t *root = rc__cesql_parse(expr, len, &tree, err);
    if (root == NULL) {
        if (err != NULL && strstr(err->msg, "out of memory") != NULL)
            rc = -ENOMEM;
        goto out;
    }
    fold_t f = {.arena = &tree, .err = err};
    fold(&f, root);
    if (f.rc != 0) {
        rc = f.rc;
        goto out;
    }
    p = build(root);
    if (p == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (p->max_stack > RC_CESQL_MAX_STACK) {
        rc__cesql_set_error(err, RC_CESQL_ERR_PARSE, 0, NULL,
                            "expression needs %u evaluation slots, more than the limit of %d "
                            "(too many arguments or XOR operands)",
                            p->max_stack, RC_CESQL_MAX_STACK);
        rc_cesql_destroy(p);
        p = NULL;
        goto out;
    }
    *out = p;
    rc = 0;
out:
    rc__cesql_arena_free(&tree);
    return rc;
}

void rc_cesql_destroy(rc_cesql_program_t *prog)
{
    if (prog == NULL)
        return;
    free(prog->code);
    free(prog->consts);
    free(prog->attrs);
    free(prog->likes);
    free(prog->sets);
    rc__cesql_arena_free(&prog->mem);
    free(prog);
}

uint32_t rc_cesql_attr_count(const rc_cesql_program_t *prog)
{
    return prog->nattrs;
}

const rc_cesql_attr_t *rc_cesql_attr_at(const rc_cesql_program_t *prog, uint32_t i)
{
    return i < prog->nattrs ? &prog->attrs[i] : NULL;
}

uint32_t rc_cesql_insn_count(const rc_cesql_program_t *prog)
{
    return prog->ncode;
}

uint32_t rc_cesql_result_type(const rc_cesql_program_t *prog)
{
    return prog->root_type;
}

const char *rc_cesql_errkind_name(rc_cesql_errkind_t kind)
{
    switch (kind) {
    case RC_CESQL_ERR_PARSE:
        return "parse";
    case RC_CESQL_ERR_MATH:
        return "math";
    case RC_CESQL_ERR_CAST:
        return "cast";
    case RC_CESQL_ERR_MISSING_ATTRIBUTE:
        return "missingAttribute";
    case RC_CESQL_ERR_MISSING_FUNCTION:
        return "missingFunction";
    case RC_CESQL_ERR_FUNCTION_EVALUATION:
        return "functionEvaluation";
    case RC_CESQL_ERR_GENERIC:
        return "generic";
    default:
        return NULL;
    }
}
