/* Fuzz target: the Dapr publish API's parsers and envelope (net/dapr_envelope.h,
 * net/dapr_bulk.h). The first byte picks a single publish or a bulk one (bit 0), the request's
 * Content-Type (bits 1-3, from a table) and whether a traceparent header comes (bit 4); the rest
 * is the query string up to the first newline, then the body. Every event built must be valid and
 * survive the record, structured and binary round trips; every refusal must carry a Dapr error;
 * a bulk body the parser accepts must be a JSON array of as many entries for cJSON too. */
#include "tests/fuzz/fuzz_common.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#include "net/dapr_bulk.h"
#include "net/dapr_envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[8] = {
    NULL,
    "application/json",
    "text/plain",
    "application/octet-stream",
    "application/cloudevents+json",
    "application/merge-patch+json; charset=utf-8",
    "image/png",
    "not a type",
};

static void check_event(const rc_event_t *ev, rc_arena_t *arena)
{
    FUZZ_CHECK(rc_event_validate(ev, NULL) == 0);
    fuzz_check_record(ev);
    fuzz_check_structured(ev, arena);
    fuzz_check_binary(ev, arena);
}

static void check_error(const rc_dapr_error_t *e)
{
    FUZZ_CHECK(e->code != RC_DAPR_E_NONE);
    FUZZ_CHECK(e->status >= 400 && e->status <= 503);
    FUZZ_CHECK(e->msg[0] != '\0');
    FUZZ_CHECK(rc_dapr_code_name(e->code)[0] == 'E');
}

static void bulk(rc_dapr_gen_t *g, rc_dapr_publish_t *p, const rc_dapr_meta_t *m, rc_str_t body,
                 rc_arena_t *arena)
{
    rc_dapr_bulk_entry_t *en;
    size_t n;
    rc_dapr_error_t e;
    if (rc_dapr_bulk_parse(body, m, 50, arena, &en, &n, &e) != 0) {
        check_error(&e);
        return;
    }
    cJSON *ref = cJSON_ParseWithLength(body.ptr, body.len);
    FUZZ_CHECK(ref != NULL && cJSON_IsArray(ref) && (size_t)cJSON_GetArraySize(ref) == n);
    cJSON_Delete(ref);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(en[i].entry_id.len > 0);
        for (size_t k = 0; k < i; k++)
            FUZZ_CHECK(!rc_str_eq(en[k].entry_id, en[i].entry_id));
        p->entry = en[i].entry_id;
        p->content_type = en[i].content_type;
        p->body_is_json = en[i].body_is_json;
        rc_event_t ev;
        if (rc_dapr_envelope(g, p, en[i].meta, en[i].body, arena, &ev, &e) == 0)
            check_event(&ev, arena);
        else
            check_error(&e);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rc_dapr_gen_t gen;
    static int ready;
    if (!ready) {
        rc_dapr_gen_init(&gen);
        ready = 1;
    }
    if (size < 1)
        return 0;
    rc_arena_t arena;
    rc_arena_init(&arena, NULL, 0, 64u << 20);
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;
    const char *nl = memchr(rest, '\n', len);
    size_t qlen = nl ? (size_t)(nl - rest) : 0;
    rc_str_t body = nl ? (rc_str_t){nl + 1, len - qlen - 1} : (rc_str_t){rest, len};

    rc_dapr_publish_t p;
    memset(&p, 0, sizeof(p));
    p.pubsub = RC_STR("pubsub");
    p.topic = RC_STR("orders");
    p.app_id = RC_STR("fuzz");
    p.content_type = rc_str(content_types[(data[0] >> 1) & 7]);
    if (data[0] & 16)
        p.traceparent = RC_STR("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    p.tracestate = RC_STR("a=b");
    p.now_ns = 1767323045ll * 1000000000ll;

    rc_dapr_meta_t m;
    rc_dapr_error_t e;
    memset(&m, 0, sizeof(m));
    if (rc_dapr_meta_query(rest, qlen, &arena, &m, &e) != 0) {
        check_error(&e);
    } else {
        FUZZ_CHECK(rc_dapr_request_check(&p, &e) == 0);
        if (data[0] & 1) {
            bulk(&gen, &p, &m, body, &arena);
        } else {
            rc_event_t ev;
            if (rc_dapr_envelope(&gen, &p, &m, body, &arena, &ev, &e) == 0)
                check_event(&ev, &arena);
            else
                check_error(&e);
        }
    }
    rc_arena_close(&arena);
    return 0;
}
