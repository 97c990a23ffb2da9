/* The CESQL virtual machine: runs a compiled program over one event. It lives in a header as an
 * always-inlined function so each accessor gets its own copy with the accessor call inlined:
 * cesql_eval.c instantiates it for any accessor (an indirect call per attribute read),
 * cesql_record.c for ring records (direct span reads).
 *
 * A stack machine over a fixed array on the C stack (the compiler guarantees the depth), with
 * fused instructions for the shapes filters use most (attribute = 'string', attribute LIKE
 * pattern, attribute IN (constants)). Nothing here allocates: strings built by functions and
 * casts go to the caller's scratch memory. Evaluation is fail-fast (spec 4.1): the first error
 * stops the program. The failing instruction's own value is the result when that instruction is
 * the whole expression (the last one); otherwise every enclosing operator would have returned
 * its zero value, so the result is the zero value of the expression's static type. */
#ifndef RC_CORE_CESQL_VM_INTERNAL_H
#define RC_CORE_CESQL_VM_INTERNAL_H

#include "core/cesql_internal.h"

#include <string.h>

static inline void set_bool(rc_cesql_value_t *v, bool b)
{
    v->type = RC_CESQL_TYPE_BOOL;
    v->len = 0;
    v->u.b = b;
}

static inline void set_int(rc_cesql_value_t *v, int32_t i)
{
    v->type = RC_CESQL_TYPE_INT;
    v->len = 0;
    v->u.i = i;
}

static inline rc_cesql_value_t zero_of(uint32_t type)
{
    rc_cesql_value_t v = {.type = type, .len = 0};
    if (type == RC_CESQL_TYPE_STRING)
        v.u.s = "";
    else if (type == RC_CESQL_TYPE_INT)
        v.u.i = 0;
    else
        set_bool(&v, false); /* Boolean, and the spec's default when the type is unknown */
    return v;
}

static inline bool str_eq(const rc_cesql_value_t *a, const rc_cesql_value_t *b)
{
    return a->len == b->len && rc__cesql_bytes_eq(a->u.s, b->u.s, a->len);
}

/* Values of one type, equal? */
static inline bool same_eq(const rc_cesql_value_t *a, const rc_cesql_value_t *b)
{
    switch (a->type) {
    case RC_CESQL_TYPE_STRING:
        return str_eq(a, b);
    case RC_CESQL_TYPE_INT:
        return a->u.i == b->u.i;
    default:
        return a->u.b == b->u.b;
    }
}

/* An attribute value as a String without touching scratch: Integers are formatted into `buf`
 * (12 bytes), Booleans point at static text. */
static inline void as_string(rc_cesql_value_t *v, char *buf)
{
    if (v->type == RC_CESQL_TYPE_STRING)
        return;
    if (v->type == RC_CESQL_TYPE_INT) {
        v->len = rc__cesql_format_int(v->u.i, buf);
        v->u.s = buf;
    } else {
        bool b = v->u.b;
        v->u.s = b ? "true" : "false";
        v->len = b ? 4 : 5;
    }
    v->type = RC_CESQL_TYPE_STRING;
}

static inline bool arith(uint8_t op, int32_t x, int32_t y, int32_t *r, rc_cesql_errkind_t *err)
{
    /* Results outside the 32-bit range are a MathError (returning 0), like ABS(-2147483648). */
    bool ovf = false;
    switch (op) {
    case RC__OP_ADD:
        ovf = __builtin_add_overflow(x, y, r);
        break;
    case RC__OP_SUB:
        ovf = __builtin_sub_overflow(x, y, r);
        break;
    case RC__OP_MUL:
        ovf = __builtin_mul_overflow(x, y, r);
        break;
    case RC__OP_DIV:
    case RC__OP_MOD:
        if (y == 0) {
            ovf = true;
        } else if (y == -1) {
            /* C leaves INT32_MIN / -1 and INT32_MIN % -1 undefined. */
            ovf = op == RC__OP_DIV && x == INT32_MIN;
            *r = op == RC__OP_DIV ? (ovf ? 0 : -x) : 0;
        } else {
            *r = op == RC__OP_DIV ? x / y : x % y; /* C truncates toward 0, as the spec asks */
        }
        break;
    default:
        break;
    }
    if (ovf) {
        *r = 0;
        *err = RC_CESQL_ERR_MATH;
        return false;
    }
    return true;
}

static inline bool in_const_set(const rc__cesql_set_t *set, rc_cesql_value_t *x,
                                rc_cesql_errkind_t *err)
{
    switch (x->type) {
    case RC_CESQL_TYPE_STRING:
        for (uint32_t k = 0; k < set->n; k++) {
            if (str_eq(x, &set->as_str[k]))
                return true;
        }
        return false;
    case RC_CESQL_TYPE_INT:
        for (uint32_t k = 0; k < set->n; k++) {
            if (!set->int_ok[k]) {
                *err = RC_CESQL_ERR_CAST;
                return false;
            }
            if (set->as_int[k] == x->u.i)
                return true;
        }
        return false;
    default:
        for (uint32_t k = 0; k < set->n; k++) {
            if (!set->bool_ok[k]) {
                *err = RC_CESQL_ERR_CAST;
                return false;
            }
            if ((bool)set->as_bool[k] == x->u.b)
                return true;
        }
        return false;
    }
}

/* The top of the stack, computed only where the stack is known to be non-empty. */
#define TOP (&st[sp - 1])

static inline __attribute__((always_inline)) void
rc__cesql_run(const rc_cesql_program_t *prog, rc_cesql_get_fn get, const void *event, char *scratch,
              size_t scratch_len, rc_cesql_result_t *out)
{
    rc_cesql_value_t st[RC_CESQL_MAX_STACK];
    rc__cesql_scratch_t sc = {.base = scratch, .len = scratch ? scratch_len : 0, .used = 0};
    const rc__cesql_insn_t *code = prog->code;
    const uint32_t n = prog->ncode;
    uint32_t sp = 0, pc = 0;
    rc_cesql_errkind_t err = RC_CESQL_OK;
    rc_cesql_value_t errval;
    char buf[12];

    while (pc < n) {
        const rc__cesql_insn_t *in = &code[pc];
        switch ((rc__cesql_opcode_t)in->op) {
        case RC__I_CONST:
            st[sp++] = prog->consts[in->b];
            break;
        case RC__I_ATTR:
            if (!get(event, &prog->attrs[in->a], &st[sp])) {
                err = RC_CESQL_ERR_MISSING_ATTRIBUTE;
                set_bool(&errval, false);
                goto fail;
            }
            sp++;
            break;
        case RC__I_EXISTS: {
            rc_cesql_value_t ignored;
            set_bool(&st[sp++], get(event, &prog->attrs[in->a], &ignored));
            break;
        }
        case RC__I_NOT:
        case RC__I_BOOL:
            if ((err = rc__cesql_cast(TOP, RC_CESQL_TYPE_BOOL, &sc)) != RC_CESQL_OK) {
                set_bool(&errval, false);
                goto fail;
            }
            if (in->op == RC__I_NOT)
                TOP->u.b = !TOP->u.b;
            break;
        case RC__I_NEG:
            if ((err = rc__cesql_cast(TOP, RC_CESQL_TYPE_INT, &sc)) != RC_CESQL_OK ||
                (TOP->u.i == INT32_MIN && (err = RC_CESQL_ERR_MATH))) {
                set_int(&errval, 0);
                goto fail;
            }
            TOP->u.i = -TOP->u.i;
            break;
        case RC__I_ARITH: {
            rc_cesql_value_t *x = TOP - 1;
            int32_t r = 0;
            if ((err = rc__cesql_cast(x, RC_CESQL_TYPE_INT, &sc)) != RC_CESQL_OK ||
                (err = rc__cesql_cast(TOP, RC_CESQL_TYPE_INT, &sc)) != RC_CESQL_OK ||
                !arith(in->flag, x->u.i, TOP->u.i, &r, &err)) {
                set_int(&errval, 0);
                goto fail;
            }
            set_int(x, r);
            sp--;
            break;
        }
        case RC__I_CMP: {
            rc_cesql_value_t *x = TOP - 1;
            size_t mark = sc.used;
            bool r;
            if (in->flag == RC__OP_EQ || in->flag == RC__OP_NE) {
                /* '=' is ambiguous (three signatures): the right operand's type picks the
                 * signature and the left operand is cast to it (spec 3.7). */
                if ((err = rc__cesql_cast(x, TOP->type, &sc)) != RC_CESQL_OK) {
                    set_bool(&errval, false);
                    goto fail;
                }
                r = same_eq(x, TOP) == (in->flag == RC__OP_EQ);
            } else {
                if ((err = rc__cesql_cast(x, RC_CESQL_TYPE_INT, &sc)) != RC_CESQL_OK ||
                    (err = rc__cesql_cast(TOP, RC_CESQL_TYPE_INT, &sc)) != RC_CESQL_OK) {
                    set_bool(&errval, false);
                    goto fail;
                }
                int32_t a = x->u.i, b = TOP->u.i;
                r = in->flag == RC__OP_LT   ? a < b
                    : in->flag == RC__OP_LE ? a <= b
                    : in->flag == RC__OP_GT ? a > b
                                            : a >= b;
            }
            sc.used = mark; /* the casts' strings are dead now */
            set_bool(x, r);
            sp--;
            break;
        }
        case RC__I_XOR:
            set_bool(TOP - 1, TOP[-1].u.b != TOP->u.b);
            sp--;
            break;
        case RC__I_AND_JUMP:
        case RC__I_OR_JUMP:
            if ((err = rc__cesql_cast(TOP, RC_CESQL_TYPE_BOOL, &sc)) != RC_CESQL_OK) {
                set_bool(&errval, false);
                goto fail;
            }
            if (TOP->u.b == (in->op == RC__I_OR_JUMP)) {
                pc = in->b; /* short circuit: the operand is the chain's value */
                continue;
            }
            sp--;
            break;
        case RC__I_LIKE: {
            size_t mark = sc.used;
            if ((err = rc__cesql_cast(TOP, RC_CESQL_TYPE_STRING, &sc)) != RC_CESQL_OK) {
                set_bool(&errval, false);
                goto fail;
            }
            bool m = rc__cesql_like_match(&prog->likes[in->b], TOP->u.s, TOP->len);
            sc.used = mark;
            set_bool(TOP, m != (bool)in->flag);
            break;
        }
        case RC__I_IN_TEST: {
            rc_cesql_value_t *x = TOP - 1;
            size_t mark = sc.used;
            /* IN casts each element to the left operand's type (spec 3.7). */
            if ((err = rc__cesql_cast(TOP, x->type, &sc)) != RC_CESQL_OK) {
                set_bool(&errval, false);
                goto fail;
            }
            bool eq = same_eq(x, TOP);
            sc.used = mark;
            sp--;
            if (eq) {
                set_bool(x, !in->flag);
                pc = in->b;
                continue;
            }
            break;
        }
        case RC__I_IN_END:
            set_bool(TOP, in->flag);
            break;
        case RC__I_CALL: {
            const rc__cesql_func_t *f = &rc__cesql_funcs[in->b];
            rc_cesql_value_t *args = &st[sp - in->a];
            for (uint32_t k = 0; k < in->a; k++) {
                err = rc__cesql_cast(&args[k], rc__cesql_func_param(f, k), &sc);
                if (err != RC_CESQL_OK) {
                    errval = zero_of(f->ret);
                    goto fail;
                }
            }
            rc_cesql_value_t r;
            err = f->call(args, in->a, &sc, &r);
            sp -= in->a;
            st[sp++] = r;
            if (err != RC_CESQL_OK) {
                errval = r;
                goto fail;
            }
            break;
        }
        case RC__I_ATTR_EQ_STR: {
            rc_cesql_value_t v;
            if (!get(event, &prog->attrs[in->a], &v)) {
                err = RC_CESQL_ERR_MISSING_ATTRIBUTE;
                set_bool(&errval, false);
                goto fail;
            }
            as_string(&v, buf);
            set_bool(&st[sp++], str_eq(&v, &prog->consts[in->b]) != (bool)in->flag);
            break;
        }
        case RC__I_ATTR_LIKE: {
            rc_cesql_value_t v;
            if (!get(event, &prog->attrs[in->a], &v)) {
                err = RC_CESQL_ERR_MISSING_ATTRIBUTE;
                set_bool(&errval, false);
                goto fail;
            }
            as_string(&v, buf);
            bool m = rc__cesql_like_match(&prog->likes[in->b], v.u.s, v.len);
            set_bool(&st[sp++], m != (bool)in->flag);
            break;
        }
        case RC__I_ATTR_IN: {
            rc_cesql_value_t v;
            if (!get(event, &prog->attrs[in->a], &v)) {
                err = RC_CESQL_ERR_MISSING_ATTRIBUTE;
                set_bool(&errval, false);
                goto fail;
            }
            bool m = in_const_set(&prog->sets[in->b], &v, &err);
            if (err != RC_CESQL_OK) {
                set_bool(&errval, false);
                goto fail;
            }
            set_bool(&st[sp++], m != (bool)in->flag);
            break;
        }
        }
        pc++;
    }
    out->value = st[sp - 1];
    out->error = RC_CESQL_OK;
    return;
fail:
    out->error = err;
    out->value = pc == n - 1 ? errval : zero_of(prog->root_type);
}

#undef TOP

#endif
