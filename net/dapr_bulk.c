/* The bulk body is read with the core JSON scanner (core/codec_json.h rc_json_scan): each value
 * is a view of the body, so an entry's JSON event is stored with the bytes the client sent
 * (numbers included) and nothing is allocated per JSON node. Repeated entryIds are found with a
 * hash table in the arena. */
#include "net/dapr_bulk.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/codec_http.h"
#include "core/codec_json.h"
#include "core/validate.h"

#define SHOWN(s) (int)((s).len > 100 ? 100 : (s).len), (s).ptr

static size_t skip_blanks(rc_str_t s, size_t pos)
{
    while (pos < s.len &&
           (s.ptr[pos] == ' ' || s.ptr[pos] == '\t' || s.ptr[pos] == '\n' || s.ptr[pos] == '\r'))
        pos++;
    return pos;
}

static int bad(rc_dapr_error_t *e, size_t index, const char *what)
{
    return rc_dapr_fail(e, RC_DAPR_E_EVENTS_SER, "entry %zu: %s", index, what);
}

/* Calls `member(name, value)` for each member of the object `obj` (exact text). Returns 0 or
 * -1 when `obj` is not an object (its members are already well-formed: rc_json_scan checked). */
typedef int (*member_fn)(void *arg, rc_str_t name, rc_str_t value);

static int each_member(rc_str_t obj, member_fn fn, void *arg)
{
    if (obj.len < 2 || obj.ptr[0] != '{')
        return -1;
    size_t pos = skip_blanks(obj, 1);
    if (obj.ptr[pos] == '}')
        return 0;
    for (;;) {
        rc_str_t name, value;
        rc_json_scan(obj, &pos, &name);
        pos++; /* ':' */
        rc_json_scan(obj, &pos, &value);
        int rc = fn(arg, name, value);
        if (rc != 0)
            return rc;
        if (obj.ptr[pos++] == '}')
            return 0;
    }
}

typedef struct {
    rc_str_t entry_id, event, content_type, metadata;
} raw_entry_t;

static int entry_member(void *arg, rc_str_t name, rc_str_t value)
{
    raw_entry_t *r = arg;
    if (rc_str_eq_cstr(name, "\"entryId\""))
        r->entry_id = value;
    else if (rc_str_eq_cstr(name, "\"event\""))
        r->event = value;
    else if (rc_str_eq_cstr(name, "\"contentType\""))
        r->content_type = value;
    else if (rc_str_eq_cstr(name, "\"metadata\""))
        r->metadata = value;
    return 0; /* other members: ignored, as Go's decoder ignores them */
}

typedef struct {
    rc_dapr_meta_t *meta;
    rc_arena_t *arena;
    int bad_value; /* 1: not a string, 2: malformed string, -ENOMEM */
    rc_str_t name;
} meta_walk_t;

static int meta_member(void *arg, rc_str_t name, rc_str_t value)
{
    meta_walk_t *w = arg;
    rc_str_t key, v;
    int rc = rc_json_string(name, w->arena, &key);
    if (rc == 0 && value.ptr[0] != '"') {
        w->bad_value = 1;
        w->name = key;
        return -1;
    }
    if (rc == 0)
        rc = rc_json_string(value, w->arena, &v);
    if (rc != 0) {
        w->bad_value = rc == -ENOMEM ? -ENOMEM : 2;
        w->name = RC_STR("?");
        return -1;
    }
    int k = rc_dapr_meta_lookup(key);
    if (k >= 0) {
        w->meta->v[k] = v;
        w->meta->origin[k] = "";
    }
    return 0;
}

static int nomem(rc_dapr_error_t *e)
{
    return rc_dapr_fail(e, RC_DAPR_E_NOMEM, "out of memory for this request; retry later");
}

/* The bytes an entry publishes, by its content type (rc_dapr_bulk_parse). */
static int entry_body(rc_dapr_bulk_entry_t *en, rc_str_t event, size_t index, rc_arena_t *arena,
                      rc_dapr_error_t *e)
{
    bool is_string = event.ptr[0] == '"';
    if (en->content_type.ptr == NULL)
        en->content_type = is_string ? RC_STR("text/plain") : RC_STR("application/json");
    rc_str_t ct = en->content_type;
    if (rc_ce_classify(ct) == RC_CE_MODE_STRUCTURED || rc_ce_is_json_media_type(ct)) {
        en->body = event;
        return 0;
    }
    if (!is_string)
        return rc_dapr_fail(e, RC_DAPR_E_EVENTS_SER,
                            "entry '%.*s': event must be a JSON string for contentType '%.*s'",
                            SHOWN(en->entry_id), SHOWN(ct));
    rc_str_t text;
    int rc = rc_json_string(event, arena, &text);
    if (rc == -ENOMEM)
        return nomem(e);
    if (rc != 0)
        return bad(e, index, "event is not a valid JSON string");
    if (ct.len >= 24 && strncasecmp(ct.ptr, "application/octet-stream", 24) == 0) {
        char *buf = rc_arena_alloc(arena, text.len / 4 * 3 + 1, 1);
        long n = buf != NULL ? rc_base64_decode(text.ptr, text.len, buf) : -2;
        if (n == -2)
            return nomem(e);
        if (n < 0)
            return rc_dapr_fail(e, RC_DAPR_E_EVENTS_SER,
                                "entry '%.*s': event must be base64 for contentType '%.*s'",
                                SHOWN(en->entry_id), SHOWN(ct));
        text = (rc_str_t){buf, (size_t)n};
    }
    en->body = text;
    return 0;
}

/* Fills `en` from the members of one entry object. */
static int read_entry(rc_str_t obj, size_t index, const rc_dapr_meta_t *request_meta,
                      rc_arena_t *arena, rc_dapr_bulk_entry_t *en, rc_dapr_error_t *e)
{
    raw_entry_t r;
    memset(&r, 0, sizeof(r));
    if (each_member(obj, entry_member, &r) != 0)
        return bad(e, index, "must be a JSON object");
    int rc = 0;
    if (r.entry_id.ptr == NULL || r.entry_id.ptr[0] != '"' ||
        (rc = rc_json_string(r.entry_id, arena, &en->entry_id)) != 0 || en->entry_id.len == 0)
        return rc == -ENOMEM ? nomem(e)
                             : bad(e, index, "entryId is missing, empty or not a string");
    if (r.event.ptr == NULL || rc_str_eq(r.event, RC_STR("null")))
        return rc_dapr_fail(e, RC_DAPR_E_EVENTS_SER, "entry '%.*s': event is missing",
                            SHOWN(en->entry_id));
    en->content_type = RC_STR_NULL;
    if (r.content_type.ptr != NULL && !rc_str_eq(r.content_type, RC_STR("null")) &&
        (r.content_type.ptr[0] != '"' ||
         (rc = rc_json_string(r.content_type, arena, &en->content_type)) != 0))
        return rc == -ENOMEM ? nomem(e)
                             : rc_dapr_fail(e, RC_DAPR_E_EVENTS_SER,
                                            "entry '%.*s': contentType must be a string",
                                            SHOWN(en->entry_id));
    if (en->content_type.len == 0)
        en->content_type = RC_STR_NULL;
    en->meta = *request_meta;
    if (r.metadata.ptr != NULL && !rc_str_eq(r.metadata, RC_STR("null"))) {
        meta_walk_t w = {.meta = &en->meta, .arena = arena};
        if (each_member(r.metadata, meta_member, &w) != 0) {
            if (w.bad_value == -ENOMEM)
                return nomem(e);
            return rc_dapr_fail(e, RC_DAPR_E_EVENTS_SER,
                                "entry '%.*s': metadata must be an object of strings (%.*s)",
                                SHOWN(en->entry_id), SHOWN(w.name));
        }
    }
    return entry_body(en, r.event, index, arena, e);
}

static uint32_t hash(rc_str_t s)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < s.len; i++)
        h = (h ^ (uint8_t)s.ptr[i]) * 16777619u;
    return h;
}

/* Fails on the first entryId seen twice. */
static int check_unique(rc_dapr_bulk_entry_t *entries, size_t n, rc_arena_t *arena,
                        rc_dapr_error_t *e)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    uint32_t *slot = rc_arena_alloc(arena, cap * sizeof(*slot), 4);
    if (slot == NULL)
        return nomem(e);
    memset(slot, 0, cap * sizeof(*slot)); /* 0: empty, else index + 1 */
    for (size_t i = 0; i < n; i++) {
        rc_str_t id = entries[i].entry_id;
        size_t j = hash(id) & (cap - 1);
        for (; slot[j] != 0; j = (j + 1) & (cap - 1))
            if (rc_str_eq(entries[slot[j] - 1].entry_id, id))
                return rc_dapr_fail(e, RC_DAPR_E_EVENTS_SER,
                                    "entryId '%.*s' is duplicated (entries %u and %zu)", SHOWN(id),
                                    slot[j] - 1, i);
        slot[j] = (uint32_t)i + 1;
    }
    return 0;
}

int rc_dapr_bulk_parse(rc_str_t body, const rc_dapr_meta_t *request_meta, size_t max_entries,
                       rc_arena_t *arena, rc_dapr_bulk_entry_t **entries, size_t *count,
                       rc_dapr_error_t *e)
{
    *entries = NULL;
    *count = 0;
    size_t pos = 0, n = 0, cap = 0;
    rc_str_t all;
    if (body.ptr == NULL || !rc_ce_is_utf8(body) || rc_json_scan(body, &pos, &all) != 0 ||
        pos != body.len || all.ptr[0] != '[')
        return rc_dapr_fail(e, RC_DAPR_E_EVENTS_SER,
                            "the bulk publish body must be a JSON array of entries");
    rc_dapr_bulk_entry_t *list = NULL;
    pos = skip_blanks(all, 1);
    while (all.ptr[pos] != ']') {
        rc_str_t obj;
        rc_json_scan(all, &pos, &obj); /* well-formed: the whole array was scanned */
        pos++;                         /* ',' or the closing ']' */
        if (n == max_entries)
            return rc_dapr_fail(e, RC_DAPR_E_TOO_LARGE,
                                "the bulk request holds more than %zu entries", max_entries);
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            rc_dapr_bulk_entry_t *t = rc_arena_alloc(arena, cap * sizeof(*t), 8);
            if (t == NULL)
                return nomem(e);
            if (n > 0)
                memcpy(t, list, n * sizeof(*t));
            list = t;
        }
        if (read_entry(obj, n, request_meta, arena, &list[n], e) != 0)
            return -1;
        n++;
        if (all.ptr[pos - 1] == ']')
            break;
    }
    if (check_unique(list, n, arena, e) != 0)
        return -1;
    *entries = list;
    *count = n;
    return 0;
}
