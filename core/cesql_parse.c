/* CESQL parser: tokens (cesql_lex.c) -> syntax tree; also the compile-time arena and error
 * formatting the other CESQL files use.
 *
 * The grammar and its precedence follow the ANTLR grammar of the spec (CESQLParser.g4), from
 * tightest to loosest: function calls and atoms; prefix NOT and '-'; LIKE; IN; '*' '/' '%';
 * '+' '-'; all comparisons (one level); AND OR XOR (one level, right-associative). The
 * parser is precedence climbing; its recursion is bounded by RC_CESQL_MAX_DEPTH so hostile input
 * is rejected instead of exhausting the stack. Function names are case-insensitive (resolved by
 * the compiler); attribute names are folded to lower case here. */
#include "core/cesql_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

struct rc__cesql_block_s {
    rc__cesql_block_t *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

void *rc__cesql_arena_alloc(rc__cesql_arena_t *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    rc__cesql_block_t *b = a->head;
    if (b == NULL || b->cap - b->used < size) {
        if (a->next_cap < 512)
            a->next_cap = 512;
        size_t cap = size > a->next_cap ? size : a->next_cap;
        if (a->next_cap < 65536)
            a->next_cap *= 2;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

void rc__cesql_arena_free(rc__cesql_arena_t *a)
{
    rc__cesql_block_t *b = a->head;
    while (b != NULL) {
        rc__cesql_block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

void rc__cesql_set_error(rc_cesql_error_t *err, rc_cesql_errkind_t kind, uint32_t pos,
                         const char *expected, const char *fmt, ...)
{
    if (err == NULL)
        return;
    err->kind = kind;
    err->pos = pos;
    err->expected = expected;
    int n = snprintf(err->msg, sizeof(err->msg), "offset %u: ", pos);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + n, sizeof(err->msg) - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ---- tokens ---- */

typedef rc__cesql_tok_t tok_t;

typedef struct {
    rc__cesql_lexer_t lx; /* the source, and the first syntax error */
    tok_t tok;            /* current token */
    tok_t next;           /* one token of look-ahead (valid when has_next) */
    bool has_next;
    int depth;
} parser_t;

static char to_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static const char *tok_desc(const parser_t *p, const tok_t *t, char *buf, size_t cap)
{
    if (t->kind == RC__T_END)
        return "end of expression";
    unsigned n = t->len > 24 ? 24 : t->len;
    snprintf(buf, cap, "'%.*s%s'", (int)n, p->lx.src + t->pos, t->len > n ? "..." : "");
    return buf;
}

__attribute__((format(printf, 4, 5))) static void fail(parser_t *p, uint32_t pos,
                                                       const char *expected, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rc__cesql_syntax_verror(&p->lx, pos, expected, fmt, ap);
    va_end(ap);
}

static void fail_expected(parser_t *p, const char *expected)
{
    char buf[40];
    fail(p, p->tok.pos, expected, "expected %s but found %s", expected,
         tok_desc(p, &p->tok, buf, sizeof(buf)));
}

static bool advance(parser_t *p)
{
    if (p->has_next) {
        p->tok = p->next;
        p->has_next = false;
        return true;
    }
    return rc__cesql_lex(&p->lx, &p->tok);
}

static const tok_t *peek2(parser_t *p)
{
    if (!p->has_next) {
        if (!rc__cesql_lex(&p->lx, &p->next))
            return NULL;
        p->has_next = true;
    }
    return &p->next;
}

/* ---- parser ---- */

static rc__cesql_node_t *new_node(parser_t *p, rc__cesql_kind_t kind, uint32_t pos)
{
    rc__cesql_node_t *n = rc__cesql_arena_alloc(p->lx.arena, sizeof(*n));
    if (n == NULL) {
        fail(p, pos, NULL, "out of memory");
        return NULL;
    }
    n->kind = (uint8_t)kind;
    n->pos = pos;
    n->fn = -1;
    return n;
}

static bool set_kids(parser_t *p, rc__cesql_node_t *n, rc__cesql_node_t **kids, uint32_t count)
{
    n->kids = rc__cesql_arena_alloc(p->lx.arena, sizeof(*kids) * (count ? count : 1));
    if (n->kids == NULL) {
        fail(p, n->pos, NULL, "out of memory");
        return false;
    }
    if (count > 0)
        memcpy(n->kids, kids, sizeof(*kids) * count);
    n->nkids = count;
    return true;
}

/* A growable list of nodes (heap; freed by the caller). */
typedef struct {
    rc__cesql_node_t **v;
    uint32_t n, cap;
} list_t;

static bool list_push(parser_t *p, list_t *l, rc__cesql_node_t *n)
{
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 8;
        rc__cesql_node_t **v = realloc(l->v, sizeof(*v) * cap);
        if (v == NULL) {
            fail(p, n->pos, NULL, "out of memory");
            return false;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = n;
    return true;
}

static bool enter(parser_t *p)
{
    if (++p->depth > RC_CESQL_MAX_DEPTH) {
        fail(p, p->tok.pos, NULL, "expression nested too deeply (limit %d levels)",
             RC_CESQL_MAX_DEPTH);
        return false;
    }
    return true;
}

static rc__cesql_node_t *parse_expr(parser_t *p, int min_prec);

/* '(' expression (',' expression)* ')' for IN sets (allow_empty false) and call arguments. */
static bool parse_list(parser_t *p, list_t *l, bool allow_empty)
{
    if (p->tok.kind != RC__T_LPAREN) {
        fail_expected(p, "'('");
        return false;
    }
    if (!advance(p))
        return false;
    if (p->tok.kind == RC__T_RPAREN && allow_empty)
        return advance(p);
    for (;;) {
        rc__cesql_node_t *e = parse_expr(p, 0);
        if (e == NULL || !list_push(p, l, e))
            return false;
        if (p->tok.kind == RC__T_RPAREN)
            return advance(p);
        if (p->tok.kind != RC__T_COMMA) {
            fail_expected(p, "',' or ')'");
            return false;
        }
        if (!advance(p))
            return false;
    }
}

static rc__cesql_node_t *parse_call(parser_t *p)
{
    tok_t name = p->tok;
    if (!advance(p))
        return NULL;
    list_t args = {0};
    rc__cesql_node_t *n = NULL;
    if (!parse_list(p, &args, true))
        goto out;
    n = new_node(p, RC__N_CALL, name.pos);
    if (n == NULL)
        goto out;
    n->name = p->lx.src + name.pos;
    n->name_len = name.len;
    if (!set_kids(p, n, args.v, args.n))
        n = NULL;
out:
    free(args.v);
    return n;
}

static rc__cesql_node_t *make_attr(parser_t *p, rc__cesql_kind_t kind, const tok_t *t)
{
    rc__cesql_node_t *n = new_node(p, kind, t->pos);
    char *name = rc__cesql_arena_alloc(p->lx.arena, (size_t)t->len + 1);
    if (n == NULL || name == NULL) {
        fail(p, t->pos, NULL, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < t->len; i++)
        name[i] = to_lower(p->lx.src[t->pos + i]);
    n->name = name;
    n->name_len = t->len;
    return n;
}

static rc__cesql_node_t *int_literal(parser_t *p, const tok_t *t, bool negative, uint32_t pos)
{
    if (t->int_overflow || t->ival > (negative ? 2147483648LL : 2147483647LL)) {
        fail(p, t->pos, NULL, "integer literal %.*s%s out of the 32-bit range",
             (int)(t->len > 24 ? 24 : t->len), p->lx.src + t->pos, t->len > 24 ? "..." : "");
        return NULL;
    }
    rc__cesql_node_t *n = new_node(p, RC__N_LIT, pos);
    if (n == NULL)
        return NULL;
    n->lit.type = RC_CESQL_TYPE_INT;
    n->lit.u.i = (int32_t)(negative ? -t->ival : t->ival);
    n->type = RC_CESQL_TYPE_INT;
    return n;
}

static rc__cesql_node_t *parse_prefix(parser_t *p);

/* NOT and '-' before an operand. A minus directly before an integer literal is a negative
 * literal instead, so that -2147483648 is representable (it has no positive counterpart). */
static rc__cesql_node_t *parse_unary(parser_t *p, const tok_t *t)
{
    const tok_t *nx = peek2(p);
    if (nx == NULL)
        return NULL;
    if (t->kind == RC__T_MINUS && nx->kind == RC__T_INT) {
        tok_t lit = *nx;
        if (!advance(p) || !advance(p))
            return NULL;
        return int_literal(p, &lit, true, t->pos);
    }
    if (!advance(p))
        return NULL;
    rc__cesql_node_t *operand = parse_prefix(p);
    if (operand == NULL)
        return NULL;
    bool is_not = t->kind == RC__T_NOT;
    rc__cesql_node_t *n = new_node(p, is_not ? RC__N_NOT : RC__N_NEG, t->pos);
    if (n == NULL || !set_kids(p, n, &operand, 1))
        return NULL;
    n->type = is_not ? RC_CESQL_TYPE_BOOL : RC_CESQL_TYPE_INT;
    return n;
}

/* The spec's integer-literal allows a leading '+': accept it right before digits. */
static rc__cesql_node_t *parse_plus(parser_t *p, const tok_t *t)
{
    const tok_t *nx = peek2(p);
    if (nx == NULL)
        return NULL;
    if (nx->kind != RC__T_INT || nx->pos != t->pos + 1) {
        fail_expected(p, "expression");
        return NULL;
    }
    tok_t lit = *nx;
    if (!advance(p) || !advance(p))
        return NULL;
    return int_literal(p, &lit, false, t->pos);
}

/* An integer, string, TRUE or FALSE literal. */
static rc__cesql_node_t *parse_literal(parser_t *p, const tok_t *t)
{
    if (!advance(p))
        return NULL;
    if (t->kind == RC__T_INT)
        return int_literal(p, t, false, t->pos);
    rc__cesql_node_t *n = new_node(p, RC__N_LIT, t->pos);
    if (n == NULL)
        return NULL;
    if (t->kind == RC__T_STRING) {
        n->lit.type = RC_CESQL_TYPE_STRING;
        n->lit.u.s = t->str;
        n->lit.len = t->str_len;
        n->type = RC_CESQL_TYPE_STRING;
    } else {
        n->lit.type = RC_CESQL_TYPE_BOOL;
        n->lit.u.b = t->kind == RC__T_TRUE;
        n->type = RC_CESQL_TYPE_BOOL;
    }
    return n;
}

/* EXISTS attribute. */
static rc__cesql_node_t *parse_exists(parser_t *p)
{
    if (!advance(p))
        return NULL;
    if (p->tok.kind != RC__T_IDENT) {
        fail_expected(p, "attribute name after EXISTS");
        return NULL;
    }
    tok_t t = p->tok;
    if (!advance(p))
        return NULL;
    rc__cesql_node_t *n = make_attr(p, RC__N_EXISTS, &t);
    if (n != NULL)
        n->type = RC_CESQL_TYPE_BOOL;
    return n;
}

/* A name: a function call when '(' follows, else an attribute. Each kind of name has its own
 * alphabet (calls: letters and '_'; attributes: letters and digits), checked here so the
 * message can say which one was broken. */
static rc__cesql_node_t *parse_name(parser_t *p, const tok_t *t)
{
    const tok_t *nx = peek2(p);
    if (nx == NULL)
        return NULL;
    if (nx->kind == RC__T_LPAREN) {
        bool letters = true;
        for (uint32_t i = 0; i < t->len && letters; i++)
            letters = rc__cesql_is_alpha(p->lx.src[t->pos + i]) || p->lx.src[t->pos + i] == '_';
        if (!letters) {
            fail(p, t->pos, NULL, "invalid function name '%.*s': letters and '_' only",
                 (int)(t->len > 40 ? 40 : t->len), p->lx.src + t->pos);
            return NULL;
        }
        return parse_call(p);
    }
    if (t->kind == RC__T_FNAME) {
        fail(p, t->pos, "'('", "'%.*s' is not a valid attribute name ('_' is not allowed)",
             (int)(t->len > 40 ? 40 : t->len), p->lx.src + t->pos);
        return NULL;
    }
    if (!advance(p))
        return NULL;
    return make_attr(p, RC__N_ATTR, t);
}

/* '(' expression ')' */
static rc__cesql_node_t *parse_paren(parser_t *p)
{
    if (!advance(p))
        return NULL;
    rc__cesql_node_t *n = parse_expr(p, 0);
    if (n == NULL)
        return NULL;
    if (p->tok.kind != RC__T_RPAREN) {
        fail_expected(p, "')'");
        return NULL;
    }
    return advance(p) ? n : NULL;
}

/* Prefix operators and primaries: the operand of NOT and '-' binds tighter than every binary
 * operator, LIKE and IN (they sit above them in the grammar), so `NOT a = b` is `(NOT a) = b`. */
static rc__cesql_node_t *parse_prefix(parser_t *p)
{
    if (!enter(p))
        return NULL;
    rc__cesql_node_t *n = NULL;
    tok_t t = p->tok; /* a copy: the helpers move p->tok on */
    switch (t.kind) {
    case RC__T_NOT:
    case RC__T_MINUS:
        n = parse_unary(p, &t);
        break;
    case RC__T_PLUS:
        n = parse_plus(p, &t);
        break;
    case RC__T_INT:
    case RC__T_STRING:
    case RC__T_TRUE:
    case RC__T_FALSE:
        n = parse_literal(p, &t);
        break;
    case RC__T_EXISTS:
        n = parse_exists(p);
        break;
    case RC__T_IDENT:
    case RC__T_FNAME:
        n = parse_name(p, &t);
        break;
    case RC__T_LPAREN:
        n = parse_paren(p);
        break;
    default:
        fail_expected(p, "expression");
        break;
    }
    p->depth--;
    return p->lx.failed ? NULL : n;
}

/* Binding power of the binary/suffix operator at the current token, 0 when it is none. */
enum { P_LOGIC = 3, P_CMP = 4, P_ADD = 5, P_MUL = 6, P_IN = 7, P_LIKE = 9 };

static int op_prec(parser_t *p, const tok_t *t, bool *negated)
{
    *negated = false;
    switch (t->kind) {
    case RC__T_AND:
    case RC__T_OR:
    case RC__T_XOR:
        return P_LOGIC;
    case RC__T_LT:
    case RC__T_LE:
    case RC__T_GT:
    case RC__T_GE:
    case RC__T_EQ:
    case RC__T_NE:
        return P_CMP;
    case RC__T_PLUS:
    case RC__T_MINUS:
        return P_ADD;
    case RC__T_STAR:
    case RC__T_SLASH:
    case RC__T_PERCENT:
        return P_MUL;
    case RC__T_IN:
        return P_IN;
    case RC__T_LIKE:
        return P_LIKE;
    case RC__T_NOT: {
        const tok_t *nx = peek2(p);
        if (nx == NULL)
            return -1;
        *negated = true;
        if (nx->kind == RC__T_LIKE)
            return P_LIKE;
        if (nx->kind == RC__T_IN)
            return P_IN;
        return 0;
    }
    default:
        return 0;
    }
}

static rc__cesql_op_t bin_op(rc__cesql_tok_kind_t k)
{
    switch (k) {
    case RC__T_STAR:
        return RC__OP_MUL;
    case RC__T_SLASH:
        return RC__OP_DIV;
    case RC__T_PERCENT:
        return RC__OP_MOD;
    case RC__T_PLUS:
        return RC__OP_ADD;
    case RC__T_MINUS:
        return RC__OP_SUB;
    case RC__T_EQ:
        return RC__OP_EQ;
    case RC__T_NE:
        return RC__OP_NE;
    case RC__T_LT:
        return RC__OP_LT;
    case RC__T_LE:
        return RC__OP_LE;
    case RC__T_GT:
        return RC__OP_GT;
    case RC__T_GE:
        return RC__OP_GE;
    case RC__T_AND:
        return RC__OP_AND;
    case RC__T_OR:
        return RC__OP_OR;
    default:
        return RC__OP_XOR;
    }
}

/* AND/OR/XOR share one right-associative level: `a AND b OR c` is `a AND (b OR c)`. The chain is
 * kept flat (operands and operators) so long chains cost no recursion. */
static rc__cesql_node_t *parse_logic_chain(parser_t *p, rc__cesql_node_t *first)
{
    list_t ops_nodes = {0};
    uint8_t *ops = NULL;
    uint32_t nops = 0, ops_cap = 0;
    rc__cesql_node_t *n = NULL;
    if (!list_push(p, &ops_nodes, first))
        goto out;
    while (p->tok.kind == RC__T_AND || p->tok.kind == RC__T_OR || p->tok.kind == RC__T_XOR) {
        if (nops == ops_cap) {
            ops_cap = ops_cap ? ops_cap * 2 : 8;
            uint8_t *o = realloc(ops, ops_cap);
            if (o == NULL) {
                fail(p, p->tok.pos, NULL, "out of memory");
                goto out;
            }
            ops = o;
        }
        ops[nops++] = (uint8_t)bin_op(p->tok.kind);
        if (!advance(p))
            goto out;
        rc__cesql_node_t *rhs = parse_expr(p, P_LOGIC + 1);
        if (rhs == NULL || !list_push(p, &ops_nodes, rhs))
            goto out;
    }
    n = new_node(p, RC__N_LOGIC, first->pos);
    if (n == NULL || !set_kids(p, n, ops_nodes.v, ops_nodes.n)) {
        n = NULL;
        goto out;
    }
    n->ops = rc__cesql_arena_alloc(p->lx.arena, nops);
    if (n->ops == NULL) {
        fail(p, first->pos, NULL, "out of memory");
        n = NULL;
        goto out;
    }
    memcpy(n->ops, ops, nops);
    n->type = RC_CESQL_TYPE_BOOL;
out:
    free(ops_nodes.v);
    free(ops);
    return p->lx.failed ? NULL : n;
}

static rc__cesql_node_t *parse_expr(parser_t *p, int min_prec)
{
    int saved_depth = p->depth;
    rc__cesql_node_t *lhs = parse_prefix(p);
    while (lhs != NULL) {
        bool negated;
        int prec = op_prec(p, &p->tok, &negated);
        if (prec <= 0 || prec < min_prec)
            break;
        tok_t op = p->tok;
        if (prec == P_LOGIC) {
            lhs = parse_logic_chain(p, lhs);
            break; /* nothing binds looser than the logic level */
        }
        /* Each left-associative step wraps lhs once more: count it against the depth limit so
         * the tree stays shallow enough for the recursive compiler passes. */
        if (!enter(p)) {
            lhs = NULL;
            break;
        }
        if (!advance(p) || (negated && !advance(p))) {
            lhs = NULL;
            break;
        }
        rc__cesql_node_t *n;
        if (prec == P_LIKE) {
            if (p->tok.kind != RC__T_STRING) {
                fail_expected(p, "string literal (LIKE pattern)");
                lhs = NULL;
                break;
            }
            n = new_node(p, RC__N_LIKE, lhs->pos);
            if (n == NULL || !set_kids(p, n, &lhs, 1)) {
                lhs = NULL;
                break;
            }
            n->lit.type = RC_CESQL_TYPE_STRING;
            n->lit.u.s = p->tok.str;
            n->lit.len = p->tok.str_len;
            n->negate = negated;
            n->type = RC_CESQL_TYPE_BOOL;
            if (!advance(p)) {
                lhs = NULL;
                break;
            }
        } else if (prec == P_IN) {
            list_t set = {0};
            bool ok = list_push(p, &set, lhs) && parse_list(p, &set, false);
            n = ok ? new_node(p, RC__N_IN, lhs->pos) : NULL;
            if (n != NULL && !set_kids(p, n, set.v, set.n))
                n = NULL;
            free(set.v);
            if (n == NULL) {
                lhs = NULL;
                break;
            }
            n->negate = negated;
            n->type = RC_CESQL_TYPE_BOOL;
        } else {
            rc__cesql_node_t *rhs = parse_expr(p, prec + 1);
            if (rhs == NULL) {
                lhs = NULL;
                break;
            }
            n = new_node(p, RC__N_BIN, op.pos);
            rc__cesql_node_t *kids[2] = {lhs, rhs};
            if (n == NULL || !set_kids(p, n, kids, 2)) {
                lhs = NULL;
                break;
            }
            n->op = (uint8_t)bin_op(op.kind);
            n->type = prec >= P_ADD ? RC_CESQL_TYPE_INT : RC_CESQL_TYPE_BOOL;
        }
        lhs = n;
    }
    p->depth = saved_depth;
    return p->lx.failed ? NULL : lhs;
}

rc__cesql_node_t *rc__cesql_parse(const char *expr, size_t len, rc__cesql_arena_t *arena,
                                  rc_cesql_error_t *err)
{
    if (len > RC_CESQL_MAX_EXPR) {
        rc__cesql_set_error(err, RC_CESQL_ERR_PARSE, 0, NULL,
                            "expression is %zu bytes, longer than the %u-byte limit", len,
                            RC_CESQL_MAX_EXPR);
        return NULL;
    }
    parser_t p = {.lx = {.src = expr, .len = (uint32_t)len, .arena = arena, .err = err}};
    if (!advance(&p))
        return NULL;
    rc__cesql_node_t *root = parse_expr(&p, 0);
    if (root != NULL && p.tok.kind != RC__T_END) {
        char buf[40];
        fail(&p, p.tok.pos, "an operator or end of expression",
             "expected an operator or end of expression but found %s",
             tok_desc(&p, &p.tok, buf, sizeof(buf)));
        root = NULL;
    }
    return p.lx.failed ? NULL : root;
}
