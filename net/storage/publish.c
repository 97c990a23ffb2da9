/* The publish sequence. Everything that can fail for a reason of the event's own (TTL, size)
 * fails before anything is claimed, so a refused request never touches the store; after the
 * claim only encoding can fail, and then the whole claim is aborted. */
#include "net/storage/publish.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/record.h"
#include "core/validate.h"

/* Stamps one event and sizes its record into `rec`. */
static int prepare(rc_event_t *ev, size_t i, rc_arena_t *arena, const rc_publish_opts_t *o,
                   int64_t now, rc_storage_rec_t *rec, char *msg, size_t msg_len)
{
    rc_ce_error_t cerr;
    memset(&cerr, 0, sizeof(cerr));
    cerr.index = o->batch ? (int32_t)i : -1;
    int rc = o->ttl == RC_PUBLISH_TTL_REPLY ? rc_event_ttl_reply(ev, arena, o->parent_ttl)
                                            : rc_event_ttl_ingress(ev, arena, &cerr);
    if (rc == 0)
        rc = rc_event_stamp_arrival(ev, arena, now);
    if (rc == RC_ETTL_EXPIRED && o->ttl == RC_PUBLISH_TTL_REPLY) {
        snprintf(msg, msg_len, "its TTL reached 0");
        return rc;
    }
    if (rc == RC_EINVALID_EVENT || rc == RC_ETTL_EXPIRED) {
        rc_ce_error_format(&cerr, msg, msg_len);
        return rc;
    }
    if (rc != 0) {
        snprintf(msg, msg_len, "out of memory");
        return rc;
    }
    size_t size = rc_record_size(ev);
    if (size == 0 || size > UINT32_MAX) {
        snprintf(msg, msg_len, "event %zu cannot be stored (an attribute is too long)", i);
        return RC_ETOO_LARGE;
    }
    /* One event of a batch may not be larger than it could be on its own. */
    if (o->batch && o->max_event != 0 && size > o->max_event) {
        snprintf(msg, msg_len, "event %zu: larger than the maximum event size", i);
        return RC_ETOO_LARGE;
    }
    rec->len = (uint32_t)size;
    return 0;
}

static int claim(rc_storage_t *s, rc_storage_rec_t *recs, size_t n, rc_storage_claim_t *c,
                 const rc_publish_opts_t *o, char *msg, size_t msg_len)
{
    int rc = rc_storage_claim(s, recs, (uint32_t)n, c);
    if (rc == RC_ERING_FULL)
        snprintf(msg, msg_len, "broker %s is full; retry later", o->broker);
    else if (rc == RC_ERING_TOO_BIG)
        snprintf(msg, msg_len, "%s larger than the ring can hold", n == 1 ? "event" : "batch");
    else if (rc != 0)
        snprintf(msg, msg_len, "cannot store the event: %s", rc_strerror(rc));
    return rc;
}

int rc_publish(rc_storage_t *s, rc_event_t *events, size_t n, rc_arena_t *arena,
               const rc_publish_opts_t *o, char *msg, size_t msg_len)
{
    if (n == 0)
        return 0;
    int64_t now = o->arrival_ns != 0 ? o->arrival_ns : rc_wall_ns();
    rc_storage_rec_t one, *recs = &one;
    if (n > 1 && (recs = rc_arena_alloc(arena, n * sizeof(*recs), 8)) == NULL) {
        snprintf(msg, msg_len, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = prepare(&events[i], i, arena, o, now, &recs[i], msg, msg_len);
        if (rc != 0)
            return rc;
    }
    rc_storage_claim_t c;
    int rc = claim(s, recs, n, &c, o, msg, msg_len);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        rc = rc_record_encode(&events[i], recs[i].data, recs[i].len, &len);
        if (rc != 0) {
            rc_storage_abort(s, &c);
            snprintf(msg, msg_len, "cannot encode event %zu: %s", i, rc_strerror(rc));
            return rc == -EINVAL ? RC_EINVALID_EVENT : rc;
        }
    }
    c.flags = (o->ticket != NULL ? RC_STORAGE_COMMIT_F_NOWAIT : 0) |
              (o->quiet ? RC_STORAGE_COMMIT_F_QUIET : 0);
    c.ticket = 0;
    rc = rc_storage_commit(s, &c);
    if (o->ticket != NULL)
        *o->ticket = rc == 0 ? c.ticket : 0;
    if (rc != 0)
        snprintf(msg, msg_len, "the event was not stored: %s", rc_strerror(rc));
    return rc;
}
