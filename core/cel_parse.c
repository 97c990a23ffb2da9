/* The CEL parser and compiler: recursive descent over CEL's grammar (cel-spec, "Syntax"),
 * building the node array of the program directly (cel_internal.h). Everything outside the
 * subset Dapr's routing rules use is refused where it appears, with the construct named: the
 * conditional operator, arithmetic, map literals, macros and functions other than has(),
 * int(), double(), string(), startsWith(), endsWith() and contains().
 *
 *   expr     = or ['?' ...refused]
 *   or       = and {'||' and}                      (one n-ary node)
 *   and      = relation {'&&' relation}            (one n-ary node)
 *   relation = unary {relop unary}                 (relop: == != < <= > >= in; + - * / % refused)
 *   unary    = '!' unary | '-' unary | member
 *   member   = primary {'.' IDENT ['(' args ')'] | '[' literal ']'}
 *   primary  = 'event' ('.' IDENT | '[' string ']') | IDENT '(' args ')' | '(' expr ')'
 *            | '[' [expr {',' expr} [',']] ']' | literal
 *
 * The parser's recursion and the tree's height are both bounded by RC__CEL_MAX_DEPTH, which
 * bounds the evaluator's recursion too; long || and && chains stay flat. */
#include "core/cel_internal.h"

#include "core/errors.h"
#include "core/validate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD UINT32_MAX

typedef struct {
    rc__cel_lexer_t lx;
    rc__cel_tok_t tok; /* the current token */
    int depth;
    bool nomem;
    rc__cel_pool_t pool;
    rc__cel_node_t *nodes;
    uint32_t nn, ncap;
    rc__cel_step_t *steps;
    uint32_t ns, scap;
    uint32_t *kids;
    uint32_t nk, kcap;
} parser_t;

/* A growable list of node indices (the children of one n-ary node while it is parsed). */
typedef struct {
    uint32_t *v;
    uint32_t n, cap;
} list_t;

static bool nomem(parser_t *p)
{
    p->nomem = true;
    return rc__cel_fail(&p->lx, p->tok.pos, "out of memory");
}

static bool grow(parser_t *p, void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    uint32_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *np = realloc(*arr, (size_t)c * elem);
    if (np == NULL)
        return nomem(p);
    *arr = np;
    *cap = c;
    return true;
}

static bool advance(parser_t *p)
{
    return rc__cel_lex(&p->lx, &p->tok);
}

/* The current token as a message names it. */
static void describe(const parser_t *p, char *buf, size_t cap)
{
    if (p->tok.kind == RC__CT_END) {
        snprintf(buf, cap, "end of expression");
        return;
    }
    /* At most 24 bytes, cut at a character boundary, line breaks and other controls blanked
     * (the message is one line). */
    const char *s = p->lx.src + p->tok.pos;
    size_t n = p->tok.len > 24 ? 24 : p->tok.len;
    while (n < p->tok.len && n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    char text[25];
    for (size_t k = 0; k < n; k++)
        text[k] = (unsigned char)s[k] < 0x20 ? ' ' : s[k];
    snprintf(buf, cap, "'%.*s%s'", (int)n, text, n < p->tok.len ? "..." : "");
}

static bool fail_expected(parser_t *p, const char *what)
{
    char found[40];
    describe(p, found, sizeof(found));
    return rc__cel_fail(&p->lx, p->tok.pos, "expected %s, found %s", what, found);
}

static bool expect(parser_t *p, rc__cel_tok_kind_t kind, const char *what)
{
    return p->tok.kind == kind ? advance(p) : fail_expected(p, what);
}

static bool enter(parser_t *p)
{
    if (++p->depth > RC__CEL_MAX_DEPTH)
        return rc__cel_fail(&p->lx, p->tok.pos, "expression nested too deeply (limit %d levels)",
                            RC__CEL_MAX_DEPTH);
    return true;
}

static uint32_t height_of(const parser_t *p, uint32_t i)
{
    return i == BAD ? 0 : p->nodes[i].height;
}

/* Appends a node with children `a`, `b` (BAD when absent; for n-ary nodes and paths a/b are a
 * range and `tallest` is the height of the tallest child). */
static uint32_t add_node(parser_t *p, rc__cel_op_t op, size_t pos, uint32_t a, uint32_t b,
                         uint32_t tallest)
{
    if (!grow(p, (void **)&p->nodes, &p->ncap, p->nn + 1, sizeof(*p->nodes)))
        return BAD;
    uint32_t h = tallest + 1;
    if (h > RC__CEL_MAX_DEPTH) {
        rc__cel_fail(&p->lx, pos, "expression nested too deeply (limit %d levels)",
                     RC__CEL_MAX_DEPTH);
        return BAD;
    }
    p->nodes[p->nn] = (rc__cel_node_t){
        .op = (uint8_t)op, .height = (uint8_t)h, .col = (uint32_t)pos + 1, .a = a, .b = b};
    return p->nn++;
}

static uint32_t unary_node(parser_t *p, rc__cel_op_t op, size_t pos, uint32_t a)
{
    return add_node(p, op, pos, a, BAD, height_of(p, a));
}

static uint32_t binary_node(parser_t *p, rc__cel_op_t op, size_t pos, uint32_t a, uint32_t b)
{
    uint32_t ha = height_of(p, a), hb = height_of(p, b);
    return add_node(p, op, pos, a, b, ha > hb ? ha : hb);
}

/* A list literal may only be the right side of `in`: everywhere else it is refused. */
static bool operand(parser_t *p, uint32_t i)
{
    if (i == BAD)
        return false;
    if (p->nodes[i].op == RC__CN_LIST)
        return rc__cel_fail(&p->lx, p->nodes[i].col - 1,
                            "a list is only supported on the right of 'in'");
    return true;
}

static bool list_push(parser_t *p, list_t *l, uint32_t i)
{
    if (!grow(p, (void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v)))
        return false;
    l->v[l->n++] = i;
    return true;
}

/* Makes an n-ary node of `l`'s entries (copied into the kids array). */
static uint32_t nary_node(parser_t *p, rc__cel_op_t op, size_t pos, const list_t *l)
{
    if (!grow(p, (void **)&p->kids, &p->kcap, p->nk + l->n, sizeof(*p->kids)))
        return BAD;
    uint32_t tallest = 0;
    for (uint32_t k = 0; k < l->n; k++) {
        p->kids[p->nk + k] = l->v[k];
        if (height_of(p, l->v[k]) > tallest)
            tallest = height_of(p, l->v[k]);
    }
    uint32_t first = p->nk;
    p->nk += l->n;
    return add_node(p, op, pos, first, l->n, tallest);
}

static uint32_t parse_expr(parser_t *p);

/* ---- paths ---------------------------------------------------------------------------------- */

static bool add_step(parser_t *p, rc__cel_step_t s, size_t pos)
{
    rc__cel_node_t *n = &p->nodes[p->nn - 1];
    if (n->b >= RC__CEL_MAX_DEPTH)
        return rc__cel_fail(&p->lx, pos, "path longer than %d steps", RC__CEL_MAX_DEPTH);
    if (!grow(p, (void **)&p->steps, &p->scap, p->ns + 1, sizeof(*p->steps)))
        return false;
    p->steps[p->ns++] = s;
    p->nodes[p->nn - 1].b++;
    return true;
}

/* `event` followed by its first selection (the attribute), at the current token. */
static uint32_t parse_event_root(parser_t *p, size_t pos)
{
    uint32_t off, len;
    bool field = p->tok.kind == RC__CT_DOT;
    if (field) {
        if (!advance(p))
            return BAD;
        if (p->tok.kind != RC__CT_IDENT) {
            fail_expected(p, "an attribute name after 'event.'");
            return BAD;
        }
        off = rc__cel_pool_add(&p->pool, p->lx.src + p->tok.pos, p->tok.len);
        len = (uint32_t)p->tok.len;
    } else if (p->tok.kind == RC__CT_LBRACK) {
        if (!advance(p))
            return BAD;
        if (p->tok.kind != RC__CT_STRING) {
            fail_expected(p, "an attribute name string in 'event[...]'");
            return BAD;
        }
        off = p->tok.str_off;
        len = p->tok.str_len;
    } else {
        rc__cel_fail(&p->lx, pos, "'event' needs an attribute, like event.type");
        return BAD;
    }
    if (off == BAD || !advance(p) || (!field && !expect(p, RC__CT_RBRACK, "']'")))
        return p->lx.failed ? BAD : (nomem(p), BAD);
    if (field && p->tok.kind == RC__CT_LPAREN) {
        rc__cel_fail(&p->lx, pos, "'event' needs an attribute, like event.type");
        return BAD;
    }
    uint32_t n = add_node(p, RC__CN_PATH, pos, p->ns, 0, 0);
    if (n == BAD)
        return BAD;
    rc__cel_node_t *node = &p->nodes[n];
    node->u.path.data = len == 4 && memcmp(p->pool.p + off, "data", 4) == 0;
    node->u.path.field = field;
    node->u.path.off = off;
    node->u.path.key.name.len = len;
    return n;
}

/* Whether `i` is the path being built (its steps are the last ones), so a step extends it. */
static bool extendable(const parser_t *p, uint32_t i)
{
    const rc__cel_node_t *n = &p->nodes[i];
    return n->op == RC__CN_PATH && i == p->nn - 1 && n->a + n->b == p->ns;
}

/* `[ literal ]` after a path: a key step for a string, an index step for an integer. */
static bool parse_index(parser_t *p, uint32_t recv, size_t pos)
{
    if (!advance(p))
        return false;
    uint32_t k = parse_expr(p);
    if (k == BAD || !expect(p, RC__CT_RBRACK, "']'"))
        return false;
    rc__cel_node_t lit = p->nodes[k];
    if ((lit.op != RC__CN_STRING && lit.op != RC__CN_INT) || k != p->nn - 1)
        return rc__cel_fail(&p->lx, lit.col - 1, "index must be a string or integer literal");
    p->nn--; /* the literal lives on in the step */
    if (!extendable(p, recv))
        return rc__cel_fail(&p->lx, pos, "indexing is only supported on event attributes and data");
    rc__cel_step_t s = {.kind = lit.op == RC__CN_STRING ? RC__CS_KEY : RC__CS_INDEX};
    if (lit.op == RC__CN_STRING)
        s.off = lit.u.s.off, s.len = lit.u.s.len;
    else
        s.idx = lit.u.i;
    p->nodes[recv].u.path.field = false;
    return add_step(p, s, pos);
}

/* ---- calls ---------------------------------------------------------------------------------- */

static bool name_is(const parser_t *p, const rc__cel_tok_t *t, const char *s)
{
    return t->len == strlen(s) && memcmp(p->lx.src + t->pos, s, t->len) == 0;
}

/* '(' expr {',' expr} ')' into `l`. */
static bool parse_args(parser_t *p, list_t *l)
{
    if (!expect(p, RC__CT_LPAREN, "'('"))
        return false;
    if (p->tok.kind != RC__CT_RPAREN) {
        for (;;) {
            uint32_t a = parse_expr(p);
            if (a == BAD || !list_push(p, l, a))
                return false;
            if (p->tok.kind != RC__CT_COMMA)
                break;
            if (!advance(p))
                return false;
        }
    }
    return expect(p, RC__CT_RPAREN, "',' or ')'");
}

static bool one_arg(parser_t *p, const rc__cel_tok_t *name, const list_t *args)
{
    if (args->n == 1)
        return operand(p, args->v[0]);
    return rc__cel_fail(&p->lx, name->pos, "%.*s() takes exactly one argument", (int)name->len,
                        p->lx.src + name->pos);
}

static bool refuse_call(parser_t *p, const rc__cel_tok_t *name, bool method)
{
    static const char *const macros[] = {"all", "exists", "exists_one", "map", "filter"};
    bool macro = false;
    for (size_t k = 0; method && k < sizeof(macros) / sizeof(macros[0]); k++)
        macro = macro || name_is(p, name, macros[k]);
    size_t n = name->len > 32 ? 32 : name->len;
    return rc__cel_fail(&p->lx, name->pos, "unsupported %s '%.*s'", macro ? "macro" : "function",
                        (int)n, p->lx.src + name->pos);
}

/* A call: `name(args)` with no receiver (recv BAD): has(), int(), double(), string(); or
 * `recv.name(args)`: startsWith(), endsWith(), contains(). */
static uint32_t parse_call(parser_t *p, uint32_t recv, rc__cel_tok_t name)
{
    static const struct {
        const char *name;
        rc__cel_op_t op;
        bool method;
    } fns[] = {{"has", RC__CN_HAS, false},          {"int", RC__CN_TO_INT, false},
               {"double", RC__CN_TO_DOUBLE, false}, {"string", RC__CN_TO_STRING, false},
               {"startsWith", RC__CN_STARTS, true}, {"endsWith", RC__CN_ENDS, true},
               {"contains", RC__CN_CONTAINS, true}};
    bool method = recv != BAD;
    size_t k = 0;
    while (k < sizeof(fns) / sizeof(fns[0]) &&
           (fns[k].method != method || !name_is(p, &name, fns[k].name)))
        k++;
    if (k == sizeof(fns) / sizeof(fns[0])) {
        refuse_call(p, &name, method);
        return BAD;
    }
    list_t args = {0};
    uint32_t n = BAD;
    if ((method && !operand(p, recv)) || !parse_args(p, &args) || !one_arg(p, &name, &args))
        goto out;
    const rc__cel_node_t *a = &p->nodes[args.v[0]];
    if (method)
        n = binary_node(p, fns[k].op, name.pos, recv, args.v[0]);
    else if (fns[k].op == RC__CN_HAS && (a->op != RC__CN_PATH || !a->u.path.field))
        rc__cel_fail(&p->lx, a->col - 1, "has() needs a field selection, like event.data.x");
    else
        n = unary_node(p, fns[k].op, name.pos, args.v[0]);
out:
    free(args.v);
    return n;
}

/* ---- expressions ---------------------------------------------------------------------------- */

/* '[' [expr {',' expr} [',']] ']' */
static uint32_t parse_list(parser_t *p, size_t pos)
{
    list_t l = {0};
    uint32_t n = BAD;
    if (!advance(p))
        goto out;
    while (p->tok.kind != RC__CT_RBRACK) {
        uint32_t e = parse_expr(p);
        if (e == BAD || !operand(p, e) || !list_push(p, &l, e))
            goto out;
        if (p->tok.kind != RC__CT_COMMA)
            break;
        if (!advance(p))
            goto out;
    }
    if (expect(p, RC__CT_RBRACK, "',' or ']'"))
        n = nary_node(p, RC__CN_LIST, pos, &l);
out:
    free(l.v);
    return n;
}

static uint32_t literal(parser_t *p)
{
    rc__cel_tok_t t = p->tok;
    static const rc__cel_op_t ops[] = {
        [RC__CT_INT] = RC__CN_INT,       [RC__CT_DOUBLE] = RC__CN_DOUBLE,
        [RC__CT_STRING] = RC__CN_STRING, [RC__CT_TRUE] = RC__CN_BOOL,
        [RC__CT_FALSE] = RC__CN_BOOL,    [RC__CT_NULL] = RC__CN_NULL};
    if (t.kind == RC__CT_INT && t.int_max_plus_one) {
        rc__cel_fail(&p->lx, t.pos, "integer literal out of range");
        return BAD;
    }
    uint32_t n = add_node(p, ops[t.kind], t.pos, BAD, BAD, 0);
    if (n == BAD || !advance(p))
        return BAD;
    rc__cel_node_t *node = &p->nodes[n];
    if (t.kind == RC__CT_INT)
        node->u.i = t.ival;
    else if (t.kind == RC__CT_DOUBLE)
        node->u.d = t.dval;
    else if (t.kind == RC__CT_STRING)
        node->u.s.off = t.str_off, node->u.s.len = t.str_len;
    else
        node->u.b = t.kind == RC__CT_TRUE;
    return n;
}

static uint32_t parse_primary(parser_t *p)
{
    rc__cel_tok_t t = p->tok;
    uint32_t n;
    switch (t.kind) {
    case RC__CT_IDENT:
        if (!advance(p))
            return BAD;
        if (p->tok.kind == RC__CT_LPAREN)
            return parse_call(p, BAD, t);
        if (name_is(p, &t, "event"))
            return parse_event_root(p, t.pos);
        rc__cel_fail(&p->lx, t.pos, "unknown identifier '%.*s' (only 'event' is defined)",
                     (int)(t.len > 32 ? 32 : t.len), p->lx.src + t.pos);
        return BAD;
    case RC__CT_LPAREN:
        if (!advance(p) || (n = parse_expr(p)) == BAD)
            return BAD;
        return expect(p, RC__CT_RPAREN, "')'") ? n : BAD;
    case RC__CT_LBRACK:
        return parse_list(p, t.pos);
    case RC__CT_LBRACE:
        rc__cel_fail(&p->lx, t.pos, "unsupported map literal");
        return BAD;
    case RC__CT_INT:
    case RC__CT_DOUBLE:
    case RC__CT_STRING:
    case RC__CT_TRUE:
    case RC__CT_FALSE:
    case RC__CT_NULL:
        return literal(p);
    default:
        fail_expected(p, "an operand");
        return BAD;
    }
}

static uint32_t parse_member(parser_t *p)
{
    uint32_t n = parse_primary(p);
    while (n != BAD) {
        size_t pos = p->tok.pos;
        if (p->tok.kind == RC__CT_LBRACK) {
            if (!parse_index(p, n, pos))
                return BAD;
            continue;
        }
        if (p->tok.kind != RC__CT_DOT)
            break;
        if (!advance(p))
            return BAD;
        rc__cel_tok_t name = p->tok;
        if (name.kind != RC__CT_IDENT) {
            fail_expected(p, "a field or method name after '.'");
            return BAD;
        }
        if (!advance(p))
            return BAD;
        if (p->tok.kind == RC__CT_LPAREN) {
            n = parse_call(p, n, name);
            continue;
        }
        if (!extendable(p, n)) {
            rc__cel_fail(&p->lx, pos,
                         "field selection is only supported on event attributes "
                         "and data");
            return BAD;
        }
        uint32_t off = rc__cel_pool_add(&p->pool, p->lx.src + name.pos, name.len);
        if (off == BAD) {
            nomem(p);
            return BAD;
        }
        rc__cel_step_t s = {.kind = RC__CS_KEY, .off = off, .len = (uint32_t)name.len};
        if (!add_step(p, s, pos))
            return BAD;
        p->nodes[n].u.path.field = true;
    }
    return n;
}

static uint32_t parse_unary(parser_t *p)
{
    rc__cel_tok_t t = p->tok;
    if (t.kind != RC__CT_NOT && t.kind != RC__CT_MINUS)
        return parse_member(p);
    if (!enter(p) || !advance(p))
        return BAD;
    uint32_t n;
    rc__cel_tok_kind_t k = p->tok.kind;
    if (t.kind == RC__CT_MINUS && (k == RC__CT_INT || k == RC__CT_DOUBLE)) {
        /* A negative literal, so that -9223372036854775808 is representable. */
        p->tok.int_max_plus_one = false;
        p->tok.ival = k == RC__CT_INT ? (int64_t)(0 - (uint64_t)p->tok.ival) : 0;
        p->tok.dval = -p->tok.dval;
        p->tok.pos = t.pos;
        n = parse_member(p);
    } else {
        n = parse_unary(p);
        if (operand(p, n))
            n = unary_node(p, t.kind == RC__CT_NOT ? RC__CN_NOT : RC__CN_NEG, t.pos, n);
        else
            n = BAD;
    }
    p->depth--;
    return n;
}

static bool refuse_arithmetic(parser_t *p)
{
    rc__cel_tok_kind_t k = p->tok.kind;
    if (k != RC__CT_PLUS && k != RC__CT_MINUS && k != RC__CT_STAR && k != RC__CT_SLASH &&
        k != RC__CT_PERCENT)
        return true;
    return rc__cel_fail(&p->lx, p->tok.pos, "unsupported arithmetic operator '%c'",
                        p->lx.src[p->tok.pos]);
}

static uint32_t parse_relation(parser_t *p)
{
    static const rc__cel_op_t ops[] = {
        [RC__CT_EQ] = RC__CN_EQ, [RC__CT_NE] = RC__CN_NE, [RC__CT_LT] = RC__CN_LT,
        [RC__CT_LE] = RC__CN_LE, [RC__CT_GT] = RC__CN_GT, [RC__CT_GE] = RC__CN_GE,
        [RC__CT_IN] = RC__CN_IN};
    uint32_t n = parse_unary(p);
    while (n != BAD && refuse_arithmetic(p)) {
        rc__cel_tok_t t = p->tok;
        if (t.kind < RC__CT_EQ || t.kind > RC__CT_IN || t.kind == RC__CT_AND ||
            t.kind == RC__CT_OR || t.kind == RC__CT_NOT)
            return n;
        if (!operand(p, n) || !advance(p))
            return BAD;
        uint32_t r = parse_unary(p);
        if (r == BAD || (t.kind != RC__CT_IN && !operand(p, r)) || !refuse_arithmetic(p))
            return BAD;
        n = binary_node(p, ops[t.kind], t.pos, n, r);
    }
    return BAD;
}

/* A chain of `sub` joined by `tok` (&& or ||), as one n-ary node when there are several. */
static uint32_t parse_chain(parser_t *p, rc__cel_tok_kind_t tok, rc__cel_op_t op,
                            uint32_t (*sub)(parser_t *))
{
    size_t pos = p->tok.pos;
    uint32_t first = sub(p);
    if (first == BAD || p->tok.kind != tok)
        return first;
    list_t l = {0};
    uint32_t n = BAD;
    if (!operand(p, first) || !list_push(p, &l, first))
        goto out;
    while (p->tok.kind == tok) {
        uint32_t e;
        if (!advance(p) || (e = sub(p)) == BAD || !operand(p, e) || !list_push(p, &l, e))
            goto out;
    }
    n = nary_node(p, op, pos, &l);
out:
    free(l.v);
    return n;
}

static uint32_t parse_and(parser_t *p)
{
    return parse_chain(p, RC__CT_AND, RC__CN_AND, parse_relation);
}

static uint32_t parse_expr(parser_t *p)
{
    if (!enter(p))
        return BAD;
    uint32_t n = parse_chain(p, RC__CT_OR, RC__CN_OR, parse_and);
    if (n != BAD && p->tok.kind == RC__CT_QUESTION) {
        rc__cel_fail(&p->lx, p->tok.pos, "unsupported conditional operator '?:'");
        n = BAD;
    }
    p->depth--;
    return n;
}

/* ---- the program ---------------------------------------------------------------------------- */

static void release(parser_t *p)
{
    free(p->nodes);
    free(p->steps);
    free(p->kids);
    free(p->pool.p);
}

/* Points the attribute keys into the final pool. */
static void finish_keys(rc_cel_t *prog, uint32_t nn)
{
    for (uint32_t i = 0; i < nn; i++) {
        rc__cel_node_t *n = &prog->nodes[i];
        if (n->op != RC__CN_PATH)
            continue;
        rc_str_t name = {prog->pool + n->u.path.off, n->u.path.key.name.len};
        rc_ce_key_init(&n->u.path.key, name);
    }
}

static int check_source(const char *src, size_t len, char *err, size_t err_len)
{
    const char *msg = NULL;
    if (len > RC_CEL_MAX_EXPR)
        msg = "expression longer than the limit";
    else if (src == NULL || len == 0)
        msg = "empty expression";
    else if (!rc_ce_is_utf8((rc_str_t){src, len}))
        msg = "expression is not valid UTF-8";
    if (msg == NULL)
        return 0;
    if (err != NULL && err_len > 0) {
        if (len > RC_CEL_MAX_EXPR)
            snprintf(err, err_len, "%s (%zu bytes, limit %u)", msg, len, RC_CEL_MAX_EXPR);
        else
            snprintf(err, err_len, "%s", msg);
    }
    return RC_ECONFIG;
}

int rc_cel_compile(const char *src, size_t len, rc_cel_t **out, char *err, size_t err_len)
{
    *out = NULL;
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    int rc = check_source(src, len, err, err_len);
    if (rc != 0)
        return rc;
    parser_t p = {.lx = {.src = src, .len = len, .err = err, .err_len = err_len}};
    p.lx.pool = &p.pool;
    /* Decoded literals and names never outgrow the source: one allocation, and a pool that
     * exists even when it stays empty (views of empty strings point into it). */
    p.pool = (rc__cel_pool_t){.p = malloc(len), .cap = len};
    if (p.pool.p == NULL)
        return -ENOMEM;
    uint32_t root = BAD;
    if (advance(&p) && p.tok.kind != RC__CT_END)
        root = parse_expr(&p);
    else if (!p.lx.failed && check_source(src, 0, err, err_len) != 0)
        p.lx.failed = true; /* only blanks and comments: "empty expression" */
    if (root != BAD && operand(&p, root) && p.tok.kind != RC__CT_END)
        fail_expected(&p, "an operator or the end of the expression");
    rc_cel_t *prog = p.lx.failed ? NULL : calloc(1, sizeof(*prog));
    if (prog == NULL) {
        rc = p.nomem || !p.lx.failed ? -ENOMEM : RC_ECONFIG;
        release(&p);
        return rc;
    }
    *prog = (rc_cel_t){
        .nodes = p.nodes, .steps = p.steps, .kids = p.kids, .pool = p.pool.p, .root = root};
    finish_keys(prog, p.nn);
    *out = prog;
    return 0;
}

void rc_cel_free(rc_cel_t *p)
{
    if (p == NULL)
        return;
    free(p->nodes);
    free(p->steps);
    free(p->kids);
    free(p->pool);
    free(p);
}
