/* Trigger filters: the model of one Knative Trigger's `spec.filter` and `spec.filters`
 * (CONTRACTS.md, "Trigger filters"), built call by call by a config loader and checked as it goes.
 *
 *   spec.filter.attributes   map attribute -> string; every entry must hold (exact, case-sensitive
 *                            match; an empty value means "present and non-empty")
 *   spec.filters             array of filter objects, AND-ed; overrides spec.filter when it has at
 *                            least one element. Each object sets exactly one dialect:
 *                              exact, prefix, suffix   map attribute -> non-empty string
 *                              all, any                non-empty array of filter objects
 *                              not                     one filter object
 *                              cesql                   a CloudEvents SQL expression (Boolean)
 *
 * A loader walking YAML (or JSON) calls the builder in document order: rc_filter_add_attribute for
 * each attributes entry; rc_filter_add_object for each element of spec.filters (parent NULL), of an
 * all/any (parent: that object) or for the operand of a not; rc_filter_set_dialect for each key of
 * an object; then rc_filter_add_pair / rc_filter_set_cesql for the dialect's value. After the
 * trigger's last call, rc_filter_finish checks what can only be checked at the end (an object
 * without a dialect, an empty all/any, a not without operand). Every check fails with a message
 * that names the place as a path ("spec.filters[1].any[0].prefix: ...") and carries the line the
 * loader gave for it, so the loader only prefixes the file and trigger name. Matching happens in a
 * routing program compiled from many filters (core/route.h). docs/filters.md has the semantics.
 *
 * Threads: one thread builds a filter; once finished it is read-only, and any thread may compile
 * it (several routes may be compiled from the same filters). */
#ifndef RC_CORE_FILTER_H
#define RC_CORE_FILTER_H

#include "core/str.h"

#include <stdint.h>

/** Dialects of a filter object. 0 is never a dialect. */
typedef enum {
    RC_FILTER_EXACT = 1,
    RC_FILTER_PREFIX = 2,
    RC_FILTER_SUFFIX = 3,
    RC_FILTER_ALL = 4,
    RC_FILTER_ANY = 5,
    RC_FILTER_NOT = 6,
    RC_FILTER_CESQL = 7,
} rc_filter_dialect_t;

/** Deepest nesting of filter objects (an element of spec.filters is at depth 1). */
#define RC_FILTER_MAX_DEPTH 32
/** Longest attribute value or CESQL expression accepted, in bytes. */
#define RC_FILTER_MAX_VALUE (64u * 1024u)

/** A validation error. `msg` is complete on its own ("<path>: <problem>"); `path` and `line` let
 *  the caller place it. */
typedef struct {
    int line;       /* line the loader gave for the node at fault (0 when it gave none) */
    uint32_t pos;   /* cesql parse errors: byte offset in the expression; otherwise 0 */
    char path[160]; /* "spec.filters[1].any[0].prefix", "spec.filter.attributes" */
    char msg[400];  /* "spec.filters[1].any[0].prefix: attribute name \"Type\" must match ..." */
} rc_filter_error_t;

/** One trigger's filter (opaque; owns copies of every string given to it). */
typedef struct rc_filter_s rc_filter_t;
/** A filter object inside an rc_filter_t; a handle valid until rc_filter_destroy. */
typedef struct rc_filter_node_s rc_filter_node_t;

/** Creates an empty filter (no filter: matches every event). Returns 0 or -ENOMEM. Setup path. */
int rc_filter_create(rc_filter_t **out);

/** Frees `f` and every node and string it holds. NULL is a no-op. */
void rc_filter_destroy(rc_filter_t *f);

/** Adds one `spec.filter.attributes` entry `name: value` (copied). `line` locates it in the
 *  caller's file (0: unknown). Returns 0; RC_EFILTER with `err` filled when the name does not
 *  match ^[a-z][a-z0-9]*$, is given twice, or the value is too long; -ENOMEM. */
int rc_filter_add_attribute(rc_filter_t *f, rc_str_t name, rc_str_t value, int line,
                            rc_filter_error_t *err);

/** Adds a new filter object without a dialect yet: an element of spec.filters (`parent` NULL),
 *  an element of `parent`'s all/any array, or the operand of `parent`'s not. Sets `*out` to the
 *  new object. Returns 0; RC_EFILTER when `parent` has no dialect, a dialect other than all, any,
 *  not, a not that already has its operand, or the nesting would exceed RC_FILTER_MAX_DEPTH;
 *  -ENOMEM. */
int rc_filter_add_object(rc_filter_t *f, rc_filter_node_t *parent, int line, rc_filter_node_t **out,
                         rc_filter_error_t *err);

/** Sets the dialect of `obj` from a key as written in the object ("exact", ...; case-sensitive).
 *  Sets `*dialect` (may be NULL) so the loader knows which value shape to read next. Returns 0;
 *  RC_EFILTER for an unknown dialect or when `obj` already has one (two dialects in one object).
 *  The value itself comes with rc_filter_add_pair (exact, prefix, suffix), rc_filter_add_object
 *  with `obj` as parent (all, any, not) or rc_filter_set_cesql. */
int rc_filter_set_dialect(rc_filter_t *f, rc_filter_node_t *obj, rc_str_t key, int line,
                          rc_filter_dialect_t *dialect, rc_filter_error_t *err);

/** Adds the entry `name: value` (copied) to `obj`'s exact/prefix/suffix map. Returns 0;
 *  RC_EFILTER when `obj`'s dialect is not one of those, the name does not match
 *  ^[a-z][a-z0-9]*$ or repeats one of the map, the value is empty or too long; -ENOMEM. */
int rc_filter_add_pair(rc_filter_t *f, rc_filter_node_t *obj, rc_str_t name, rc_str_t value,
                       int line, rc_filter_error_t *err);

/** Sets and compiles `obj`'s CESQL expression (copied). Returns 0; RC_EFILTER when `obj`'s
 *  dialect is not cesql, it already has an expression, the expression does not compile (message
 *  from the CESQL compiler, `err->pos` the offset) or its result can never be a Boolean;
 *  -ENOMEM. */
int rc_filter_set_cesql(rc_filter_t *f, rc_filter_node_t *obj, rc_str_t expr, int line,
                        rc_filter_error_t *err);

/** Last check of a trigger's filter, after its last builder call: every object has a dialect and
 *  a value, all/any arrays and exact/prefix/suffix maps are non-empty, every not has its operand.
 *  Returns 0 or RC_EFILTER with the first problem in document order. Only a finished filter can
 *  be compiled into a route; the builder refuses further calls once finished. */
int rc_filter_finish(rc_filter_t *f, rc_filter_error_t *err);

/** Fills `err` for a problem the loader found itself at `obj` (e.g. a value of the wrong YAML
 *  type): `err->msg` becomes "<path of obj>[.<dialect>]: <message>". `obj` NULL means spec.filters
 *  itself. Returns RC_EFILTER so a loader can `return rc_filter_error_at(...)`. */
int rc_filter_error_at(const rc_filter_t *f, const rc_filter_node_t *obj, int line,
                       rc_filter_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/** Dialect name ("exact", ...), or NULL for a value that is not a dialect. */
const char *rc_filter_dialect_name(rc_filter_dialect_t d);

/** Writes a one-line canonical form of the filter that a route would evaluate into `buf` (NUL
 *  terminated, truncated to `len`), e.g. `all(exact(type="a"), not(prefix(source="/x")))`;
 *  `true` for no filter. Returns the length it needed (as snprintf). For logs and tests. */
size_t rc_filter_format(const rc_filter_t *f, char *buf, size_t len);

#endif
