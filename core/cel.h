/* The CEL subset of Dapr's routing rules (`routes.rules[].match`), compiled once and evaluated
 * per event, like CESQL (core/cesql.h).
 *
 * Supported, as Dapr's documentation uses it: `event.<attr>` (any context attribute or
 * extension), `event.data.<path>` (fields of JSON data, `.name` or `["name"]` steps; numbers in
 * data are doubles, as in Dapr), literals (strings, integers, doubles, true/false, null, lists
 * `[...]`), `== != < <= > >=`, `&& || !`, parentheses, `has(event.x)` / `has(event.data.x)`,
 * `int() double() string()`, the methods `startsWith endsWith contains`, and `x in [...]`.
 * Anything else is refused at compile time with a message naming what and where.
 *
 * Evaluation never fails: a missing attribute or field, or a type error, makes the whole
 * expression evaluate to an error, which the caller treats as "no match" (CEL's own rule for
 * routing: only a true result selects a path). `||` and `&&` absorb errors as CEL does
 * (true || error == true, false && error == false).
 *
 * A compiled program is immutable: any number of threads may evaluate it concurrently.
 * docs/dapr.md, "Routing rules". */
#ifndef RC_CORE_CEL_H
#define RC_CORE_CEL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/event.h"
#include "core/record.h"

typedef struct rc_cel_s rc_cel_t;

/** Longest expression accepted, in bytes. */
#define RC_CEL_MAX_EXPR (16u * 1024u)

/** Compiles `src` (`len` bytes, not necessarily NUL-terminated). Returns 0 with `*out` set, or
 *  RC_ECONFIG (errors.h) with a one-line message in `err` that names the problem and its column
 *  ("column 12: unsupported function 'matches'"), or -ENOMEM. */
int rc_cel_compile(const char *src, size_t len, rc_cel_t **out, char *err, size_t err_len);

/** Frees a program (NULL is a no-op). */
void rc_cel_free(rc_cel_t *p);

/** Whether the expression is true for a decoded ring record (an error is false). */
bool rc_cel_match_record(const rc_cel_t *p, const rc_record_view_t *view);

/** Whether the expression is true for an in-memory event (an error is false). */
bool rc_cel_match_event(const rc_cel_t *p, const rc_event_t *ev);

#endif
