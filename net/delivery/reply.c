/* Decoding a reply with the ingress codecs and publishing it as ingress does. */
#include "net/delivery/reply.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/codec_http.h"
#include "core/errors.h"
#include "core/validate.h"
#include "net/storage/publish.h"

#define MAX_REPLY_HEADERS 128

int rc_reply_store(rc_storage_t *store, const rc_str_t *names, const rc_str_t *values, size_t n,
                   rc_str_t body, int32_t parent_ttl, rc_reply_outcome_t *out, char *why,
                   size_t why_len)
{
    *out = RC_REPLY_NONE;
    if (why_len > 0)
        why[0] = '\0';
    rc_http_header_t hdrs[MAX_REPLY_HEADERS];
    size_t nh = 0;
    int has_ce = 0;
    for (size_t i = 0; i < n && nh < MAX_REPLY_HEADERS; i++) {
        hdrs[nh].name = names[i];
        hdrs[nh].value = values[i];
        if (names[i].len > 3 && strncasecmp(names[i].ptr, "ce-", 3) == 0)
            has_ce = 1;
        nh++;
    }
    if (!has_ce && body.len == 0)
        return 0;
    char scratch[4096];
    rc_arena_t arena;
    rc_arena_init(&arena, scratch, sizeof(scratch), 4u * 1024 * 1024);
    rc_event_t *evs = NULL;
    size_t nev = 0;
    rc_ce_error_t cerr;
    memset(&cerr, 0, sizeof(cerr));
    int rc = rc_ce_decode_request(hdrs, nh, body, &arena, 1, &evs, &nev, &cerr);
    if (rc != 0 || nev != 1) {
        if (rc == -ENOMEM) {
            rc_arena_close(&arena);
            return rc;
        }
        if (why_len > 0) {
            if (rc == RC_EINVALID_EVENT)
                rc_ce_error_format(&cerr, why, why_len);
            else
                snprintf(why, why_len, "%s", rc != 0 ? rc_strerror(rc) : "not one event");
        }
        rc_arena_close(&arena);
        return 0; /* not a CloudEvent: ignored */
    }
    rc_publish_opts_t o = {.ttl = RC_PUBLISH_TTL_REPLY, .parent_ttl = parent_ttl, .broker = ""};
    char msg[160];
    rc = rc_publish(store, evs, 1, &arena, &o, msg, sizeof(msg));
    if (rc == RC_ETTL_EXPIRED) {
        *out = RC_REPLY_EXPIRED;
        rc = 0;
    } else if (rc == 0) {
        *out = RC_REPLY_STORED;
    }
    rc_arena_close(&arena);
    return rc;
}
