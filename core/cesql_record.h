/* CESQL attribute accessors over ringcast's own event representations: the ring record (what
 * trigger filters evaluate, straight from the ring) and the in-memory event model. Pass one as
 * the `get` argument of rc_cesql_eval / rc_cesql_match with the matching `event` pointer. */
#ifndef RC_CORE_CESQL_RECORD_H
#define RC_CORE_CESQL_RECORD_H

#include "core/cesql.h"
#include "core/event.h"
#include "core/record.h"

/** Accessor over a decoded ring record: `event` is a `const rc_record_view_t *`. Core
 *  attributes are one span read, extensions a probe of the record's hash index (the name's hash
 *  comes precomputed with `attr`). Integer and Boolean extensions become CESQL Integers and
 *  Booleans; every other type (URI, timestamp, binary, ...) its canonical String. Strings borrow
 *  the record bytes. No allocation; any thread. */
bool rc_cesql_get_record(const void *event, const rc_cesql_attr_t *attr, rc_cesql_value_t *out);

/** rc_cesql_eval over a ring record, with the record accessor compiled into the evaluator
 *  (no indirect call per attribute read). Same contract as rc_cesql_eval. */
void rc_cesql_eval_record(const rc_cesql_program_t *prog, const rc_record_view_t *view,
                          char *scratch, size_t scratch_len, rc_cesql_result_t *out);

/** rc_cesql_match over a ring record: the trigger filter entry point. True when the expression
 *  is the Boolean true without error; `err` (may be NULL) receives the error kind. No
 *  allocation; any thread. */
bool rc_cesql_match_record(const rc_cesql_program_t *prog, const rc_record_view_t *view,
                           rc_cesql_errkind_t *err);

/** Accessor over an in-memory event: `event` is a `const rc_event_t *`. Same typing as
 *  rc_cesql_get_record; strings borrow the event's views. */
bool rc_cesql_get_event(const void *event, const rc_cesql_attr_t *attr, rc_cesql_value_t *out);

#endif
