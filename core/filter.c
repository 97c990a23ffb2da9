/* Trigger filter model and builder (see core/filter.h). Everything a filter holds lives in one
 * arena, so destroying a filter is one call however deep it is. */
#include "core/filter.h"
#include "core/cesql.h"
#include "core/errors.h"
#include "core/filter_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const dialect_names[] = {
    [RC_FILTER_EXACT] = "exact", [RC_FILTER_PREFIX] = "prefix", [RC_FILTER_SUFFIX] = "suffix",
    [RC_FILTER_ALL] = "all",     [RC_FILTER_ANY] = "any",       [RC_FILTER_NOT] = "not",
    [RC_FILTER_CESQL] = "cesql",
};
#define DIALECT_MAX RC_FILTER_CESQL

const char *rc_filter_dialect_name(rc_filter_dialect_t d)
{
    return d >= RC_FILTER_EXACT && d <= DIALECT_MAX ? dialect_names[d] : NULL;
}

static bool is_map(uint8_t d)
{
    return d == RC_FILTER_EXACT || d == RC_FILTER_PREFIX || d == RC_FILTER_SUFFIX;
}

/* ---- paths and messages -------------------------------------------------------------------- */

/* Appends to buf[*pos..len) like snprintf, keeping *pos the length needed. */
static void vappend(char *buf, size_t len, size_t *pos, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void vappend(char *buf, size_t len, size_t *pos, const char *fmt, va_list ap)
{
    size_t room = *pos < len ? len - *pos : 0;
    int n = vsnprintf(room ? buf + *pos : NULL, room, fmt, ap);
    if (n > 0)
        *pos += (size_t)n;
}

static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vappend(buf, len, pos, fmt, ap);
    va_end(ap);
}

/* Path of an object: spec.filters[i], then .<dialect>[i] (all/any) or .not per level. */
static void node_path(const rc_filter_node_t *n, char *buf, size_t len, size_t *pos)
{
    if (n->parent == NULL) {
        append(buf, len, pos, "spec.filters[%u]", n->index);
        return;
    }
    node_path(n->parent, buf, len, pos);
    append(buf, len, pos, ".%s", dialect_names[n->parent->dialect]);
    if (n->parent->dialect != RC_FILTER_NOT)
        append(buf, len, pos, "[%u]", n->index);
}

/* Fills err: path is `obj`'s path plus its dialect (when set and `with_dialect`), or `fixed`
 * when obj is NULL; msg is "<path>: <text>". */
static int verror(const rc_filter_node_t *obj, const char *fixed, bool with_dialect, int line,
                  rc_filter_error_t *err, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));
static int verror(const rc_filter_node_t *obj, const char *fixed, bool with_dialect, int line,
                  rc_filter_error_t *err, const char *fmt, va_list ap)
{
    if (err == NULL)
        return RC_EFILTER;
    size_t pos = 0;
    err->path[0] = '\0';
    if (obj != NULL) {
        node_path(obj, err->path, sizeof(err->path), &pos);
        if (with_dialect && obj->dialect != 0)
            append(err->path, sizeof(err->path), &pos, ".%s", dialect_names[obj->dialect]);
    } else {
        append(err->path, sizeof(err->path), &pos, "%s", fixed);
    }
    err->line = line;
    err->pos = 0;
    pos = 0;
    append(err->msg, sizeof(err->msg), &pos, "%s: ", err->path);
    vappend(err->msg, sizeof(err->msg), &pos, fmt, ap);
    return RC_EFILTER;
}

static int fail(const rc_filter_node_t *obj, const char *fixed, bool with_dialect, int line,
                rc_filter_error_t *err, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int fail(const rc_filter_node_t *obj, const char *fixed, bool with_dialect, int line,
                rc_filter_error_t *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verror(obj, fixed, with_dialect, line, err, fmt, ap);
    va_end(ap);
    return rc;
}

int rc_filter_error_at(const rc_filter_t *f, const rc_filter_node_t *obj, int line,
                       rc_filter_error_t *err, const char *fmt, ...)
{
    (void)f;
    va_list ap;
    va_start(ap, fmt);
    int rc = verror(obj, "spec.filters", true, line, err, fmt, ap);
    va_end(ap);
    return rc;
}

/* A user-given string made safe for a message: at most 48 bytes, non-printable bytes as \xNN. */
typedef struct {
    char s[48 * 4 + 8];
} quoted_t;

static quoted_t quote(rc_str_t v)
{
    quoted_t q;
    size_t o = 0, n = v.len > 48 ? 48 : v.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            o += (size_t)snprintf(q.s + o, sizeof(q.s) - o, "\\x%02x", c);
        else
            q.s[o++] = (char)c;
    }
    if (n < v.len)
        o += (size_t)snprintf(q.s + o, sizeof(q.s) - o, "...");
    q.s[o] = '\0';
    return q;
}

/* ---- building ------------------------------------------------------------------------------ */

int rc_filter_create(rc_filter_t **out)
{
    rc_filter_t *f = calloc(1, sizeof(*f));
    *out = f;
    if (f == NULL)
        return -ENOMEM;
    rc_arena_init(&f->arena, f->inline_buf, sizeof(f->inline_buf), 0);
    return 0;
}

void rc_filter_destroy(rc_filter_t *f)
{
    if (f == NULL)
        return;
    rc_arena_close(&f->arena);
    free(f);
}

static bool valid_name(rc_str_t name)
{
    if (name.len == 0 || name.ptr[0] < 'a' || name.ptr[0] > 'z')
        return false;
    for (size_t i = 1; i < name.len; i++) {
        char c = name.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

/* Checks and copies one map entry, appending it to the list (*head, *tail). */
static int add_pair(rc_filter_t *f, const rc_filter_node_t *obj, rc__filter_pair_t **head,
                    rc__filter_pair_t **tail, rc_str_t name, rc_str_t value, bool empty_ok,
                    int line, rc_filter_error_t *err)
{
    const char *where = "spec.filter.attributes";
    if (!valid_name(name))
        return fail(obj, where, true, line, err,
                    "attribute name \"%s\" must match ^[a-z][a-z0-9]*$ (lower-case letters and "
                    "digits, starting with a letter)",
                    quote(name).s);
    for (const rc__filter_pair_t *p = *head; p != NULL; p = p->next)
        if (rc_str_eq(p->name, name))
            return fail(obj, where, true, line, err, "attribute \"%s\" is given twice",
                        quote(name).s);
    if (value.ptr == NULL || (value.len == 0 && !empty_ok))
        return fail(obj, where, true, line, err, "value of \"%s\" must be a non-empty string",
                    quote(name).s);
    if (value.len > RC_FILTER_MAX_VALUE)
        return fail(obj, where, true, line, err, "value of \"%s\" is longer than %u bytes",
                    quote(name).s, RC_FILTER_MAX_VALUE);
    rc__filter_pair_t *p = rc_arena_alloc(&f->arena, sizeof(*p), _Alignof(rc__filter_pair_t));
    char *n = rc_arena_strndup(&f->arena, name.ptr, name.len);
    char *v = rc_arena_strndup(&f->arena, value.len ? value.ptr : "", value.len);
    if (p == NULL || n == NULL || v == NULL)
        return -ENOMEM;
    *p = (rc__filter_pair_t){
        .name = {n, name.len}, .value = {v, value.len}, .line = line, .next = NULL};
    if (*tail != NULL)
        (*tail)->next = p;
    else
        *head = p;
    *tail = p;
    return 0;
}

static int finished_error(rc_filter_error_t *err)
{
    return fail(NULL, "spec", false, 0, err, "the filter is finished; no more changes");
}

int rc_filter_add_attribute(rc_filter_t *f, rc_str_t name, rc_str_t value, int line,
                            rc_filter_error_t *err)
{
    if (f->finished)
        return finished_error(err);
    int rc = add_pair(f, NULL, &f->attrs, &f->attrs_last, name, value, true, line, err);
    if (rc == 0)
        f->attr_count++;
    return rc;
}

int rc_filter_add_object(rc_filter_t *f, rc_filter_node_t *parent, int line, rc_filter_node_t **out,
                         rc_filter_error_t *err)
{
    *out = NULL;
    if (f->finished)
        return finished_error(err);
    if (parent != NULL) {
        if (parent->dialect != RC_FILTER_ALL && parent->dialect != RC_FILTER_ANY &&
            parent->dialect != RC_FILTER_NOT)
            return fail(parent, NULL, true, line, err,
                        parent->dialect == 0
                            ? "a nested filter needs the object's dialect (all, any or not) first"
                            : "this dialect takes no nested filter object");
        if (parent->dialect == RC_FILTER_NOT && parent->count != 0)
            return fail(parent, NULL, true, line, err, "takes exactly one filter object");
        if (parent->depth >= RC_FILTER_MAX_DEPTH)
            return fail(parent, NULL, true, line, err, "filters nest deeper than %d levels",
                        RC_FILTER_MAX_DEPTH);
    }
    rc_filter_node_t *n = rc_arena_alloc(&f->arena, sizeof(*n), _Alignof(rc_filter_node_t));
    if (n == NULL)
        return -ENOMEM;
    memset(n, 0, sizeof(*n));
    n->parent = parent;
    n->line = line;
    n->depth = (uint8_t)(parent ? parent->depth + 1 : 1);
    rc_filter_node_t **first = parent ? &parent->first : &f->first;
    rc_filter_node_t **last = parent ? &parent->last : &f->last;
    uint32_t *count = parent ? &parent->count : &f->count;
    n->index = (*count)++;
    if (*last != NULL)
        (*last)->next = n;
    else
        *first = n;
    *last = n;
    *out = n;
    return 0;
}

int rc_filter_set_dialect(rc_filter_t *f, rc_filter_node_t *obj, rc_str_t key, int line,
                          rc_filter_dialect_t *dialect, rc_filter_error_t *err)
{
    if (f->finished)
        return finished_error(err);
    int d = 0;
    for (int i = RC_FILTER_EXACT; i <= DIALECT_MAX; i++)
        if (rc_str_eq_cstr(key, dialect_names[i]))
            d = i;
    if (obj->dialect != 0)
        return fail(obj, NULL, false, line, err,
                    "sets two dialects (%s and %s%s%s); a filter object sets exactly one",
                    dialect_names[obj->dialect], d ? "" : "\"", d ? dialect_names[d] : quote(key).s,
                    d ? "" : "\"");
    if (d == 0)
        return fail(obj, NULL, false, line, err,
                    "unknown filter dialect \"%s\" (expected exact, prefix, suffix, all, any, not "
                    "or cesql)",
                    quote(key).s);
    obj->dialect = (uint8_t)d;
    if (dialect != NULL)
        *dialect = (rc_filter_dialect_t)d;
    return 0;
}

int rc_filter_add_pair(rc_filter_t *f, rc_filter_node_t *obj, rc_str_t name, rc_str_t value,
                       int line, rc_filter_error_t *err)
{
    if (f->finished)
        return finished_error(err);
    if (!is_map(obj->dialect))
        return fail(obj, NULL, true, line, err,
                    "takes no attribute map (only exact, prefix and "
                    "suffix do)");
    int rc = add_pair(f, obj, &obj->pairs, &obj->pairs_last, name, value, false, line, err);
    if (rc == 0)
        obj->count++;
    return rc;
}

int rc_filter_set_cesql(rc_filter_t *f, rc_filter_node_t *obj, rc_str_t expr, int line,
                        rc_filter_error_t *err)
{
    if (f->finished)
        return finished_error(err);
    if (obj->dialect != RC_FILTER_CESQL)
        return fail(obj, NULL, true, line, err, "takes no CESQL expression");
    if (obj->expr.ptr != NULL)
        return fail(obj, NULL, true, line, err, "has its expression already");
    if (expr.ptr == NULL)
        expr = RC_STR("");
    rc_cesql_program_t *prog = NULL;
    rc_cesql_error_t cerr;
    int rc = rc_cesql_compile(expr.ptr, expr.len, &prog, &cerr);
    if (rc == -ENOMEM)
        return rc;
    if (rc != 0) {
        rc = fail(obj, NULL, true, line, err, "%s", cerr.msg);
        if (err != NULL)
            err->pos = cerr.pos;
        return rc;
    }
    uint32_t type = rc_cesql_result_type(prog);
    rc_cesql_destroy(prog);
    if (type != 0 && type != RC_CESQL_TYPE_BOOL)
        return fail(obj, NULL, true, line, err,
                    "the expression is %s, not a Boolean, so it can never match",
                    type == RC_CESQL_TYPE_INT ? "an Integer" : "a String");
    char *copy = rc_arena_strndup(&f->arena, expr.len ? expr.ptr : "", expr.len);
    if (copy == NULL)
        return -ENOMEM;
    obj->expr = (rc_str_t){copy, expr.len};
    return 0;
}

/* Depth-first, document order: the first incomplete object. */
static int finish_node(const rc_filter_node_t *n, rc_filter_error_t *err)
{
    switch (n->dialect) {
    case 0:
        return fail(n, NULL, false, n->line, err,
                    "filter object sets no dialect (expected exactly one of exact, prefix, "
                    "suffix, all, any, not, cesql)");
    case RC_FILTER_EXACT:
    case RC_FILTER_PREFIX:
    case RC_FILTER_SUFFIX:
        if (n->count == 0)
            return fail(n, NULL, true, n->line, err, "must name at least one attribute");
        return 0;
    case RC_FILTER_ALL:
    case RC_FILTER_ANY:
    case RC_FILTER_NOT:
        if (n->count == 0)
            return fail(n, NULL, true, n->line, err,
                        n->dialect == RC_FILTER_NOT ? "needs one filter object"
                                                    : "needs at least one filter object");
        for (const rc_filter_node_t *c = n->first; c != NULL; c = c->next) {
            int rc = finish_node(c, err);
            if (rc != 0)
                return rc;
        }
        return 0;
    case RC_FILTER_CESQL:
        if (n->expr.ptr == NULL)
            return fail(n, NULL, true, n->line, err, "needs an expression");
        return 0;
    }
    return fail(n, NULL, false, n->line, err, "corrupt filter object");
}

int rc_filter_finish(rc_filter_t *f, rc_filter_error_t *err)
{
    for (const rc_filter_node_t *n = f->first; n != NULL; n = n->next) {
        int rc = finish_node(n, err);
        if (rc != 0)
            return rc;
    }
    f->finished = true;
    return 0;
}

/* ---- canonical text ------------------------------------------------------------------------ */

static void format_str(rc_str_t s, char *buf, size_t len, size_t *pos)
{
    append(buf, len, pos, "\"");
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\')
            append(buf, len, pos, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            append(buf, len, pos, "\\x%02x", c);
        else
            append(buf, len, pos, "%c", c);
    }
    append(buf, len, pos, "\"");
}

static void format_pairs(const rc__filter_pair_t *p, char *buf, size_t len, size_t *pos)
{
    for (; p != NULL; p = p->next) {
        append(buf, len, pos, "%.*s=", (int)p->name.len, p->name.ptr);
        format_str(p->value, buf, len, pos);
        if (p->next)
            append(buf, len, pos, ", ");
    }
}

static void format_node(const rc_filter_node_t *n, char *buf, size_t len, size_t *pos)
{
    const char *name = rc_filter_dialect_name((rc_filter_dialect_t)n->dialect);
    append(buf, len, pos, "%s(", name ? name : "?");
    if (is_map(n->dialect))
        format_pairs(n->pairs, buf, len, pos);
    else if (n->dialect == RC_FILTER_CESQL && n->expr.ptr != NULL)
        format_str(n->expr, buf, len, pos);
    for (const rc_filter_node_t *c = n->first; c != NULL; c = c->next) {
        format_node(c, buf, len, pos);
        if (c->next)
            append(buf, len, pos, ", ");
    }
    append(buf, len, pos, ")");
}

size_t rc_filter_format(const rc_filter_t *f, char *buf, size_t len)
{
    size_t pos = 0;
    if (len > 0)
        buf[0] = '\0';
    if (f->count > 0) {
        append(buf, len, &pos, "filters(");
        for (const rc_filter_node_t *n = f->first; n != NULL; n = n->next) {
            format_node(n, buf, len, &pos);
            if (n->next)
                append(buf, len, &pos, ", ");
        }
        append(buf, len, &pos, ")");
    } else if (f->attr_count > 0) {
        append(buf, len, &pos, "attributes(");
        format_pairs(f->attrs, buf, len, &pos);
        append(buf, len, &pos, ")");
    } else {
        append(buf, len, &pos, "true");
    }
    return pos;
}
