/* The bulk body is read with the core JSON scanner (core/codec_json.h rc_json_scan): each value
 * is a view of the body, so an entry's JSON event is stored with the bytes the client sent
 * (numbers included) and nothing is allocated per JSON node. Repeated entryIds are found with a
 * hash table in the arena. */
#include "net/dapr_bulk.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
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

/* Reads the JSON object at s.ptr[*pos], calling `fn(arg, name, value)` with the exact text of
 * each member's name and value, each scanned once; leaves *pos after the object and the
 * whitespace that follows. Returns 0, -1 when the text there is no well-formed object, or what
 * `fn` returned when that was not 0. */
typedef int (*member_fn)(void *arg, rc_str_t name, rc_str_t value);

static int walk_object(rc_str_t s, size_t *pos, member_fn fn, void *arg)
{
    size_t i = *pos;
    if (i >= s.len || s.ptr[i] != '{')
        return -1;
    i = skip_blanks(s, i + 1);
    if (i < s.len && s.ptr[i] == '}') {
        *pos = skip_blanks(s, i + 1);
        return 0;
    }
    for (;;) {
        rc_str_t name, value;
        if (rc_json_scan(s, &i, &name) != 0 || name.ptr[0] != '"' || i >= s.len ||
            s.ptr[i++] != ':' || rc_json_scan(s, &i, &value) != 0 || i >= s.len)
            return -1;
        int rc = fn(arg, name, value);
        if (rc != 0)
            return rc;
        char c = s.ptr[i++];
        if (c == '}')
            break;
        if (c != ',')
            return -1;
    }
    *pos = skip_blanks(s, i);
    return 0;
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
        w->meta->from_entry |= 1u << k;
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
    en->body_is_json = rc_ce_is_json_media_type(ct); /* application/cloudevents+json too */
    if (en->body_is_json) {
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

#define NOT_AN_ARRAY "the bulk publish body must be a JSON array of entries"

/* Fills `en` from the entry object at body.ptr[*pos] and moves *pos past it. */
static int read_entry(rc_str_t body, size_t *pos, size_t index, const rc_dapr_meta_t *request_meta,
                      rc_arena_t *arena, rc_dapr_bulk_entry_t *en, rc_dapr_error_t *e)
{
    raw_entry_t r;
    memset(&r, 0, sizeof(r));
    if (body.ptr[*pos] != '{') {
        rc_str_t v;
        return rc_json_scan(body, pos, &v) != 0
                   ? rc_dapr_fail(e, RC_DAPR_E_EVENTS_SER, NOT_AN_ARRAY)
                   : bad(e, index, "must be a JSON object");
    }
    if (walk_object(body, pos, entry_member, &r) != 0)
        return rc_dapr_fail(e, RC_DAPR_E_EVENTS_SER, NOT_AN_ARRAY);
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
    en->meta = request_meta;
    if (r.metadata.ptr != NULL && !rc_str_eq(r.metadata, RC_STR("null"))) {
        rc_dapr_meta_t *own = rc_arena_alloc(arena, sizeof(*own), 8);
        if (own == NULL)
            return nomem(e);
        *own = *request_meta;
        en->meta = own;
        meta_walk_t w = {.meta = own, .arena = arena};
        size_t mpos = 0;
        if (walk_object(r.metadata, &mpos, meta_member, &w) != 0) {
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
    size_t n = 0, cap = 0, pos = skip_blanks(body, 0);
    /* UTF-8 once for the whole body; the scanner checks the JSON. */
    if (body.ptr == NULL || pos >= body.len || body.ptr[pos] != '[' || !rc_ce_is_utf8(body))
        return rc_dapr_fail(e, RC_DAPR_E_EVENTS_SER, NOT_AN_ARRAY);
    rc_dapr_bulk_entry_t *list = NULL;
    pos = skip_blanks(body, pos + 1);
    if (pos < body.len && body.ptr[pos] == ']')
        pos++;
    else
        for (;;) {
            if (pos >= body.len)
                return rc_dapr_fail(e, RC_DAPR_E_EVENTS_SER, NOT_AN_ARRAY);
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
            if (read_entry(body, &pos, n, request_meta, arena, &list[n], e) != 0)
                return -1;
            n++;
            char c = pos < body.len ? body.ptr[pos++] : 0;
            if (c == ']')
                break;
            if (c != ',')
                return rc_dapr_fail(e, RC_DAPR_E_EVENTS_SER, NOT_AN_ARRAY);
            pos = skip_blanks(body, pos);
        }
    if (skip_blanks(body, pos) != body.len)
        return rc_dapr_fail(e, RC_DAPR_E_EVENTS_SER, NOT_AN_ARRAY);
    if (check_unique(list, n, arena, e) != 0)
        return -1;
    *entries = list;
    *count = n;
    return 0;
}
