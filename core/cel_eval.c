/* The CEL evaluator: walks the program's tree (cel_internal.h) over one event, an in-memory
 * rc_event_t or a decoded ring record, with every value on the stack. Errors are values
 * (RC__CV_ERR) that flow up the tree as CEL's do: && and || absorb them when the other side
 * decides (false && error == false, true || error == true, in either order), everything else
 * passes them on, and an error at the top is "no match".
 *
 * Attributes are what Dapr's `event` map holds: context attributes and extensions as strings,
 * except Integer extensions (numbers, so doubles: Dapr decodes the event's JSON with Go's
 * encoding/json) and Boolean ones. `event.data` is the parsed JSON when datacontenttype is
 * absent or JSON (application/json, text/json, *+json), and the data bytes as a string
 * otherwise; data that claims to be JSON but is not makes every use of it an error. */
#include "core/cel_internal.h"

#include "core/record.h"
#include "core/validate.h"

#include <string.h>

typedef struct {
    const rc_cel_t *p;
    const rc_event_t *ev; /* one of ev and view */
    const rc_record_view_t *view;
    bool data_done; /* `data` holds the root of event.data */
    rc__cel_val_t data;
} ctx_t;

static rc__cel_val_t eval(ctx_t *c, uint32_t i);

static rc__cel_val_t bool_val(bool b)
{
    return (rc__cel_val_t){.kind = RC__CV_BOOL, .u.b = b};
}

static rc__cel_val_t err_val(void)
{
    return (rc__cel_val_t){.kind = RC__CV_ERR};
}

/* ---- the event ------------------------------------------------------------------------------ */

static bool get_attr(const ctx_t *c, const rc_ce_key_t *key, rc__cel_val_t *out)
{
    rc_ce_value_t v;
    int rc = c->ev ? rc_event_get_key(c->ev, key, &v) : rc_record_get_key(c->view, key, &v);
    if (rc != 0)
        return false;
    int32_t n;
    if (v.type == RC_CE_INTEGER && rc_ce_int_parse(v.value, &n) == 0)
        *out = (rc__cel_val_t){.kind = RC__CV_DOUBLE, .u.d = n};
    else if (v.type == RC_CE_BOOLEAN)
        *out = bool_val(rc_str_eq(v.value, RC_STR("true")));
    else
        *out = (rc__cel_val_t){.kind = RC__CV_STRING, .u.s = v.value};
    return true;
}

static rc_str_t event_data(const ctx_t *c)
{
    return c->ev ? c->ev->data : rc_record_data(c->view);
}

/* The root of event.data, worked out (and the JSON validated) once per evaluation. */
static void data_root(ctx_t *c, rc__cel_val_t *out)
{
    if (!c->data_done) {
        rc_str_t data = event_data(c);
        rc_str_t ct =
            c->ev ? c->ev->datacontenttype : rc_record_attr(c->view, RC_CE_ATTR_DATACONTENTTYPE);
        if (data.ptr == NULL)
            c->data = err_val();
        else if (ct.ptr != NULL && !rc_ce_is_json_media_type(ct))
            c->data = (rc__cel_val_t){.kind = RC__CV_STRING, .u.s = data};
        else if (rc__cel_json_valid(data))
            rc__cel_json_value(data, &c->data);
        else
            c->data = err_val();
        c->data_done = true;
    }
    *out = c->data;
}

/* One step of a path from `cur` (a MAP or LIST of data) into `cur`. */
static void step(const ctx_t *c, const rc__cel_step_t *s, rc__cel_val_t *cur)
{
    rc__cel_val_t next;
    bool found = false;
    if (cur->kind == RC__CV_MAP && s->kind == RC__CS_KEY) {
        rc__cel_val_t key = {.kind = RC__CV_STRING, .u.s = {c->p->pool + s->off, s->len}};
        found = rc__cel_json_member(cur, &key, &next);
    } else if (cur->kind == RC__CV_LIST && s->kind == RC__CS_INDEX) {
        found = rc__cel_json_index(cur, s->idx, &next);
    }
    *cur = found ? next : err_val();
}

/* The path node `n` with its first `nsteps` steps applied. */
static void eval_path(ctx_t *c, const rc__cel_node_t *n, uint32_t nsteps, rc__cel_val_t *out)
{
    if (n->u.path.data)
        data_root(c, out);
    else if (!get_attr(c, &n->u.path.key, out))
        *out = err_val();
    for (uint32_t k = 0; k < nsteps && out->kind != RC__CV_ERR; k++)
        step(c, &c->p->steps[n->a + k], out);
}

/* has(path): whether the last selection exists; an error when what it selects from is missing
 * or is not a map. */
static rc__cel_val_t eval_has(ctx_t *c, const rc__cel_node_t *path)
{
    rc__cel_val_t v;
    if (path->b == 0)
        return bool_val(path->u.path.data ? event_data(c).ptr != NULL
                                          : get_attr(c, &path->u.path.key, &v));
    eval_path(c, path, path->b - 1, &v);
    if (v.kind != RC__CV_MAP)
        return err_val();
    const rc__cel_step_t *last = &c->p->steps[path->a + path->b - 1];
    rc__cel_val_t key = {.kind = RC__CV_STRING, .u.s = {c->p->pool + last->off, last->len}};
    return bool_val(rc__cel_json_member(&v, &key, NULL));
}

/* ---- operators ------------------------------------------------------------------------------ */

/* && (stop at false) and || (stop at true): an error or a non-bool counts only when no child
 * decides. */
static rc__cel_val_t eval_logic(ctx_t *c, const rc__cel_node_t *n, bool decider)
{
    bool err = false;
    for (uint32_t k = 0; k < n->b; k++) {
        rc__cel_val_t v = eval(c, c->p->kids[n->a + k]);
        if (v.kind == RC__CV_BOOL && v.u.b == decider)
            return v;
        err = err || v.kind != RC__CV_BOOL;
    }
    return err ? err_val() : bool_val(!decider);
}

static rc__cel_val_t eval_relation(ctx_t *c, const rc__cel_node_t *n)
{
    rc__cel_val_t a = eval(c, n->a), b = eval(c, n->b);
    if (a.kind == RC__CV_ERR || b.kind == RC__CV_ERR)
        return err_val();
    if (n->op == RC__CN_EQ || n->op == RC__CN_NE) {
        int eq = rc__cel_equal(&a, &b);
        return eq < 0 ? err_val() : bool_val((eq == 1) == (n->op == RC__CN_EQ));
    }
    int r = rc__cel_compare(&a, &b);
    if (r == -2)
        return err_val();
    return bool_val(r != 2 && ((n->op == RC__CN_LT && r < 0) || (n->op == RC__CN_LE && r <= 0) ||
                               (n->op == RC__CN_GT && r > 0) || (n->op == RC__CN_GE && r >= 0)));
}

/* `x in [list literal]`: every element is evaluated (an error in the list is an error), as CEL
 * builds the list before it looks in it. */
static rc__cel_val_t in_literal(ctx_t *c, const rc__cel_val_t *x, const rc__cel_node_t *list)
{
    bool found = false;
    for (uint32_t k = 0; k < list->b; k++) {
        rc__cel_val_t e = eval(c, c->p->kids[list->a + k]);
        int eq = e.kind == RC__CV_ERR ? -1 : rc__cel_equal(x, &e);
        if (eq < 0)
            return err_val();
        found = found || eq == 1;
    }
    return bool_val(found);
}

static rc__cel_val_t eval_in(ctx_t *c, const rc__cel_node_t *n)
{
    rc__cel_val_t x = eval(c, n->a), e;
    if (x.kind == RC__CV_ERR)
        return x;
    const rc__cel_node_t *rhs = &c->p->nodes[n->b];
    if (rhs->op == RC__CN_LIST)
        return in_literal(c, &x, rhs);
    rc__cel_val_t coll = eval(c, n->b);
    if (coll.kind == RC__CV_MAP) /* a key of a data object */
        return bool_val(x.kind == RC__CV_STRING && rc__cel_json_member(&coll, &x, NULL));
    if (coll.kind != RC__CV_LIST)
        return err_val();
    rc__cel_json_iter_t it;
    rc__cel_json_iter_init(&it, &coll);
    while (rc__cel_json_iter_next(&it, &e)) {
        int eq = e.kind == RC__CV_ERR ? -1 : rc__cel_equal(&x, &e);
        if (eq != 0)
            return eq < 0 ? err_val() : bool_val(true);
    }
    return bool_val(false);
}

static rc__cel_val_t eval_string_method(ctx_t *c, const rc__cel_node_t *n)
{
    rc__cel_val_t s = eval(c, n->a), arg = eval(c, n->b);
    if (s.kind != RC__CV_STRING || arg.kind != RC__CV_STRING)
        return err_val();
    if (n->op == RC__CN_STARTS)
        return bool_val(rc__cel_starts_with(&s, &arg));
    if (n->op == RC__CN_ENDS)
        return bool_val(rc__cel_ends_with(&s, &arg));
    return bool_val(rc__cel_contains(&s, &arg));
}

static rc__cel_val_t eval_unary(ctx_t *c, const rc__cel_node_t *n)
{
    rc__cel_val_t a = eval(c, n->a);
    switch (n->op) {
    case RC__CN_NOT:
        return a.kind == RC__CV_BOOL ? bool_val(!a.u.b) : err_val();
    case RC__CN_NEG:
        if (a.kind == RC__CV_INT && a.u.i != INT64_MIN)
            a.u.i = -a.u.i;
        else if (a.kind == RC__CV_DOUBLE)
            a.u.d = -a.u.d;
        else
            a = err_val();
        return a;
    case RC__CN_TO_INT:
        return rc__cel_to_int(&a);
    case RC__CN_TO_DOUBLE:
        return rc__cel_to_double(&a);
    default:
        return rc__cel_to_string(&a);
    }
}

static rc__cel_val_t literal(const ctx_t *c, const rc__cel_node_t *n)
{
    switch (n->op) {
    case RC__CN_NULL:
        return (rc__cel_val_t){.kind = RC__CV_NULL};
    case RC__CN_BOOL:
        return bool_val(n->u.b);
    case RC__CN_INT:
        return (rc__cel_val_t){.kind = RC__CV_INT, .u.i = n->u.i};
    case RC__CN_DOUBLE:
        return (rc__cel_val_t){.kind = RC__CV_DOUBLE, .u.d = n->u.d};
    default:
        return (rc__cel_val_t){.kind = RC__CV_STRING, .u.s = {c->p->pool + n->u.s.off, n->u.s.len}};
    }
}

static rc__cel_val_t eval(ctx_t *c, uint32_t i)
{
    const rc__cel_node_t *n = &c->p->nodes[i];
    rc__cel_val_t v;
    switch ((rc__cel_op_t)n->op) {
    case RC__CN_NULL:
    case RC__CN_BOOL:
    case RC__CN_INT:
    case RC__CN_DOUBLE:
    case RC__CN_STRING:
        return literal(c, n);
    case RC__CN_LIST: /* only on the right of `in`, which reads it itself */
        return err_val();
    case RC__CN_PATH:
        eval_path(c, n, n->b, &v);
        return v;
    case RC__CN_HAS:
        return eval_has(c, &c->p->nodes[n->a]);
    case RC__CN_AND:
        return eval_logic(c, n, false);
    case RC__CN_OR:
        return eval_logic(c, n, true);
    case RC__CN_IN:
        return eval_in(c, n);
    case RC__CN_STARTS:
    case RC__CN_ENDS:
    case RC__CN_CONTAINS:
        return eval_string_method(c, n);
    case RC__CN_NOT:
    case RC__CN_NEG:
    case RC__CN_TO_INT:
    case RC__CN_TO_DOUBLE:
    case RC__CN_TO_STRING:
        return eval_unary(c, n);
    default:
        return eval_relation(c, n);
    }
}

static bool match(ctx_t *c)
{
    rc__cel_val_t r = eval(c, c->p->root);
    return r.kind == RC__CV_BOOL && r.u.b;
}

bool rc_cel_match_record(const rc_cel_t *p, const rc_record_view_t *view)
{
    ctx_t c = {.p = p, .view = view};
    return match(&c);
}

bool rc_cel_match_event(const rc_cel_t *p, const rc_event_t *ev)
{
    ctx_t c = {.p = p, .ev = ev};
    return match(&c);
}
