/* The routing program of one broker: the filters of its triggers (core/filter.h) compiled
 * together, evaluated once per event straight on the ring record (DESIGN.md, "Record format and
 * filters").
 *
 * Compilation normalises each filter to and/or/not over leaf tests (exact, prefix, suffix,
 * present-and-non-empty, CESQL), takes one top-level exact test per trigger (preferably on
 * `type`; an `any` of exact tests on one attribute also qualifies) as the trigger's *key*, and
 * puts the key values into one hash table per key attribute. Routing an event reads each key
 * attribute once, looks its value up, and evaluates only the triggers found there plus the
 * triggers that have no key: routing cost grows with the triggers an event can match, not with the
 * number configured. What remains of a filter runs as a branch program (every test jumps to the
 * next test or to accept/reject), cheapest tests first, without allocation. docs/filters.md
 * describes it in full. */
#ifndef RC_CORE_ROUTE_H
#define RC_CORE_ROUTE_H

#include "core/filter.h"
#include "core/record.h"

#include <stdint.h>

/** Most triggers one program holds. */
#define RC_ROUTE_MAX_TRIGGERS (1u << 24)

/** Compile flags. */
enum {
    /** No hash index: every trigger is evaluated in full for every event (the reference path
     *  tests compare the indexed program against). */
    RC_ROUTE_NO_INDEX = 1u << 0,
};

/** What a program looks like (rc_route_stats). */
typedef struct {
    uint32_t triggers;    /* triggers compiled */
    uint32_t indexed;     /* triggers reached through a hash index */
    uint32_t generic;     /* triggers evaluated for every event */
    uint32_t index_attrs; /* key attributes (one hash table each) */
    uint32_t index_keys;  /* distinct (attribute, value) keys over all tables */
    uint32_t insns;       /* branch-program tests */
    uint32_t cesql;       /* compiled CESQL programs */
} rc_route_stats_t;

typedef struct rc_route_s rc_route_t;

/** Compiles the filters of `n` triggers into one program: trigger i is `filters[i]` (NULL: no
 *  filter, matches every event); rc_route_match reports triggers by these indices. Every filter
 *  must have passed rc_filter_finish. The program copies what it needs: the filters may be
 *  destroyed afterwards. `flags`: 0 or RC_ROUTE_NO_INDEX. Returns 0 and `*out` (free with
 *  rc_route_destroy); -EINVAL (a filter not finished, n over RC_ROUTE_MAX_TRIGGERS, unknown
 *  flag), -ENOMEM. Setup path (config apply); any thread. */
int rc_route_compile(const rc_filter_t *const *filters, uint32_t n, unsigned flags,
                     rc_route_t **out);

/** Frees a program. NULL is a no-op. No rc_route_match may be running on it. */
void rc_route_destroy(rc_route_t *r);

/** Number of triggers the program was compiled from. */
uint32_t rc_route_trigger_count(const rc_route_t *r);

/** Routes one record: writes the index of every trigger whose filter matches `view`, in
 *  ascending order, into `out` and returns how many. Each trigger is evaluated at most once.
 *  `cap` must be at least rc_route_trigger_count (else -ENOBUFS and nothing is routed). A CESQL
 *  test that ends in an evaluation error counts as not matching and adds one to that trigger's
 *  error counter. No allocation, no locks; any number of threads may route on one program
 *  concurrently (counters are atomic). */
int rc_route_match(const rc_route_t *r, const rc_record_view_t *view, uint32_t *out, uint32_t cap);

/** CESQL evaluation errors counted for `trigger` since compilation (0 for an index out of
 *  range). Relaxed read: exact once routing has stopped. */
uint64_t rc_route_cesql_errors(const rc_route_t *r, uint32_t trigger);

/** Fills `out` with the program's shape. */
void rc_route_stats(const rc_route_t *r, rc_route_stats_t *out);

#endif
