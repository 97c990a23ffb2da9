#include "core/codec_json.h"

#include "core/base64.h"
#include "core/codec_http.h"
#include "core/errors.h"
#include "core/json_scan.h"
#include "core/validate.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A strict RFC 8259 parser specialised for CloudEvents, with no allocation of its own: strings
 * without escapes are views into the body, the `data` member is the exact slice of the body
 * that holds its value, and only escaped strings, base64 data and non-canonical numbers are
 * written into the arena. cJSON was the first implementation; it costs a malloc per node
 * (~4 us per event), re-serialises numbers (data would change) and truncates strings at an
 * escaped U+0000, so the ingress path uses this parser instead. */

/* Extension slots reserved beyond an event's members (see codec_http.c). */
#define STAMP_SLOTS 2

/* The scanner itself is core/json_scan.c, shared with the CEL data walker. */
typedef rc__json_t jp_t;

static int fail(rc_ce_error_t *err, rc_str_t field, const char *rule)
{
    if (err) {
        err->field = field;
        err->rule = rule;
    }
    return RC_EINVALID_EVENT;
}

/* A string's value: the raw view when there are no escapes, else unescaped into the arena. */
static int string_value(jp_t *j, rc_str_t raw, bool escaped, rc_str_t *out)
{
    if (!escaped) {
        *out = raw;
        return 0;
    }
    char *buf = rc_arena_alloc(j->arena, raw.len ? raw.len : 1, 1);
    if (buf == NULL)
        return -ENOMEM;
    long k = rc__json_unescape(raw, buf);
    if (k < 0)
        return rc__json_malformed(j); /* lone surrogate */
    *out = (rc_str_t){buf, (size_t)k};
    return 0;
}

/* Member names the parser treats specially, besides the core attributes. */
enum { SEEN_DATA = RC_CE_ATTR_CORE_COUNT, SEEN_DATA_BASE64 };

/* The canonical Integer for an integral JSON number `num`, or an error naming `name`. */
static int integer_value(jp_t *j, rc_str_t name, rc_str_t num, bool integral, rc_str_t *out)
{
    int32_t v;
    if (integral && rc_ce_int_parse(num, &v) == 0) {
        *out = num; /* already canonical: a view */
        return 0;
    }
    /* 3.0, 1e2, -0: integral values spelled otherwise. strtod needs a terminated copy. */
    char tmp[64];
    if (num.len >= sizeof(tmp))
        return fail(j->err, name, "must be a 32-bit integer");
    memcpy(tmp, num.ptr, num.len);
    tmp[num.len] = '\0';
    double d = strtod(tmp, NULL);
    if (!(d >= INT32_MIN && d <= INT32_MAX) || d != floor(d))
        return fail(j->err, name, "must be a 32-bit integer");
    char *buf = rc_arena_alloc(j->arena, 12, 1);
    if (buf == NULL)
        return -ENOMEM;
    *out = (rc_str_t){buf, rc_ce_int_format((int32_t)d, buf)};
    return 0;
}

/* Appends an extension, growing the table in the arena. */
static int push_ext(jp_t *j, rc_event_t *ev, rc_ce_ext_t e)
{
    if (ev->ext_count >= RC_CE_EXT_MAX)
        return fail(j->err, e.name, "too many extensions (max 128)");
    if (ev->ext_count + STAMP_SLOTS >= ev->ext_cap) {
        uint32_t cap = ev->ext_cap * 2;
        rc_ce_ext_t *t = rc_arena_alloc(j->arena, cap * sizeof(*t), _Alignof(rc_ce_ext_t));
        if (t == NULL)
            return -ENOMEM;
        memcpy(t, ev->ext, ev->ext_count * sizeof(*t));
        ev->ext = t;
        ev->ext_cap = cap;
    }
    ev->ext[ev->ext_count++] = e;
    return 0;
}

/* What parse_event has seen of one event object so far. `data` and `data_base64` are kept as
 * they were found and decoded once the whole object is read, since how a string `data` is taken
 * depends on a datacontenttype that may come after it. */
typedef struct {
    rc_event_t *ev;
    unsigned seen; /* bit per core attribute slot, SEEN_DATA, SEEN_DATA_BASE64 */
    rc_str_t data; /* the exact text of the `data` value */
    rc_str_t b64;  /* the raw `data_base64` string, escapes not yet resolved */
    bool data_string, b64_escaped;
} event_state_t;

/* The slot of member `name` (a core attribute, SEEN_DATA, SEEN_DATA_BASE64, or -1 for an
 * extension) in `*slot`; fails when the member was seen before. */
static int member_slot(jp_t *j, event_state_t *st, rc_str_t name, int *slot)
{
    int s = rc_ce_attr_index(name);
    if (s < 0 && rc_str_eq(name, RC_STR("data")))
        s = SEEN_DATA;
    else if (s < 0 && rc_str_eq(name, RC_STR("data_base64")))
        s = SEEN_DATA_BASE64;
    if (s >= 0) {
        if (st->seen & (1u << s))
            return fail(j->err, name, "duplicate attribute");
        st->seen |= 1u << s;
    } else if (rc_event_find_ext(st->ev, name) != NULL) {
        return fail(j->err, name, "duplicate attribute");
    }
    *slot = s;
    return 0;
}

/* An extension member's value at j->i (first byte `c`): a string, a boolean or an integer. */
static int extension_value(jp_t *j, rc_event_t *ev, rc_str_t name, char c)
{
    rc_ce_ext_t e = {.name = name};
    size_t start = j->i;
    rc_str_t raw;
    bool escaped, integral;
    int rc;
    if (c == '"') {
        e.type = RC_CE_STRING;
        if ((rc = rc__json_scan_string(j, &raw, &escaped)) != 0 ||
            (rc = string_value(j, raw, escaped, &e.value)) != 0)
            return rc;
    } else if (c == 't' || c == 'f') {
        e.type = RC_CE_BOOLEAN;
        e.value = c == 't' ? RC_STR("true") : RC_STR("false");
        if ((rc = rc__json_expect_literal(j, e.value.ptr, e.value.len)) != 0)
            return rc;
    } else if (c == '-' || rc__json_is_digit(c)) {
        if ((rc = rc__json_scan_number(j, &integral)) != 0)
            return rc;
        if (!rc_ce_is_ext_name(name))
            return fail(j->err, name, "extension name must be 1-20 characters of [a-z0-9]");
        rc_str_t num = {j->p + start, j->i - start};
        e.type = RC_CE_INTEGER;
        if ((rc = integer_value(j, name, num, integral, &e.value)) != 0)
            return rc;
    } else {
        if ((rc = rc__json_skip_value(j, 0)) != 0)
            return rc;
        if (!rc_ce_is_ext_name(name))
            return fail(j->err, name, "extension name must be 1-20 characters of [a-z0-9]");
        return fail(j->err, name, "must be a string, integer or boolean");
    }
    return push_ext(j, ev, e);
}

/* The value of member `name` (in `slot`, see member_slot) at j->i, which is not the end. */
static int member_value(jp_t *j, event_state_t *st, rc_str_t name, int slot)
{
    char c = j->p[j->i];
    size_t start = j->i;
    rc_str_t raw;
    bool escaped;
    int rc;
    if (c == 'n') /* null: absent (a required one is reported by validation) */
        return rc__json_expect_literal(j, "null", 4);
    if (slot == SEEN_DATA) {
        if ((rc = rc__json_skip_value(j, 0)) != 0)
            return rc;
        st->data = (rc_str_t){j->p + start, j->i - start};
        st->data_string = c == '"';
        return 0;
    }
    if (slot == SEEN_DATA_BASE64) {
        if (c != '"')
            return fail(j->err, name, "must be a base64 string");
        return rc__json_scan_string(j, &st->b64, &st->b64_escaped);
    }
    if (slot < 0)
        return extension_value(j, st->ev, name, c);
    if (c != '"') {
        if ((rc = rc__json_skip_value(j, 0)) != 0)
            return rc;
        return fail(j->err, name, "must be a string");
    }
    if ((rc = rc__json_scan_string(j, &raw, &escaped)) != 0)
        return rc;
    return string_value(j, raw, escaped, &st->ev->attr[slot]);
}

/* Once the object is read: decodes data_base64, or takes `data` as the event's data. */
static int event_data(jp_t *j, event_state_t *st)
{
    rc_event_t *ev = st->ev;
    int rc;
    if (st->data.ptr != NULL && st->b64.ptr != NULL)
        return fail(j->err, RC_STR("data_base64"), "must not be present together with data");
    if (st->b64.ptr != NULL) {
        rc_str_t text;
        if ((rc = string_value(j, st->b64, st->b64_escaped, &text)) != 0)
            return rc;
        char *buf = rc_arena_alloc(j->arena, text.len / 4 * 3 + 1, 1);
        if (buf == NULL)
            return -ENOMEM;
        long k = rc_base64_decode(text.ptr, text.len, buf);
        if (k < 0)
            return fail(j->err, RC_STR("data_base64"), "must be a base64 string");
        ev->data = (rc_str_t){buf, (size_t)k};
    } else if (st->data.ptr != NULL) {
        if (st->data_string && ev->datacontenttype.ptr != NULL &&
            !rc_ce_is_json_media_type(ev->datacontenttype)) {
            /* A string under a non-JSON media type is the data itself. */
            rc_str_t inner = {st->data.ptr + 1, st->data.len - 2};
            bool esc = memchr(inner.ptr, '\\', inner.len) != NULL;
            if ((rc = string_value(j, inner, esc, &ev->data)) != 0)
                return rc;
        } else {
            ev->data = st->data; /* JSON data: its exact text, a view of the body */
        }
    }
    return 0;
}

/* Parses one event object at j->i into `ev` (not yet validated). */
static int parse_event(jp_t *j, rc_event_t *ev)
{
    if (j->i >= j->n || j->p[j->i] != '{') {
        int src = rc__json_skip_value(j, 0);
        return src != 0 ? src : fail(j->err, RC_STR_NULL, "event must be a JSON object");
    }
    uint32_t cap = 8 + STAMP_SLOTS;
    rc_ce_ext_t *ext = rc_arena_alloc(j->arena, cap * sizeof(*ext), _Alignof(rc_ce_ext_t));
    if (ext == NULL)
        return -ENOMEM;
    rc_event_init(ev, ext, cap);

    event_state_t st = {.ev = ev, .data = RC_STR_NULL, .b64 = RC_STR_NULL};
    int rc;
    j->i++;
    rc__json_skip_ws(j);
    bool empty = j->i < j->n && j->p[j->i] == '}';
    if (empty)
        j->i++;
    while (!empty) {
        rc_str_t raw, name;
        bool escaped;
        int slot;
        if (j->i >= j->n || j->p[j->i] != '"')
            return rc__json_malformed(j);
        if ((rc = rc__json_scan_string(j, &raw, &escaped)) != 0 ||
            (rc = string_value(j, raw, escaped, &name)) != 0)
            return rc;
        rc__json_skip_ws(j);
        if (j->i >= j->n || j->p[j->i] != ':')
            return rc__json_malformed(j);
        j->i++;
        rc__json_skip_ws(j);
        if (j->i >= j->n)
            return rc__json_malformed(j);
        if ((rc = member_slot(j, &st, name, &slot)) != 0 ||
            (rc = member_value(j, &st, name, slot)) != 0)
            return rc;
        rc__json_skip_ws(j);
        if (j->i >= j->n)
            return rc__json_malformed(j);
        if (j->p[j->i] == '}') {
            j->i++;
            break;
        }
        if (j->p[j->i] != ',')
            return rc__json_malformed(j);
        j->i++;
        rc__json_skip_ws(j);
    }
    return event_data(j, &st);
}

/* Common entry checks: the whole body must be UTF-8 (RFC 8259 8.1). */
static int check_body(jp_t *j, rc_str_t body, rc_arena_t *arena, rc_ce_error_t *err)
{
    j->p = body.ptr;
    j->n = body.ptr ? body.len : 0;
    j->i = 0;
    j->arena = arena;
    j->err = err;
    if (err)
        err->index = -1;
    if (j->n == 0 || !rc_ce_is_utf8(body))
        return rc__json_malformed(j);
    rc__json_skip_ws(j);
    return 0;
}

/* After the top-level value only whitespace may follow. */
static int check_end(jp_t *j)
{
    rc__json_skip_ws(j);
    return j->i == j->n ? 0 : rc__json_malformed(j);
}

int rc_ce_decode_structured(rc_str_t body, rc_arena_t *arena, rc_event_t *ev, rc_ce_error_t *err)
{
    jp_t j;
    int rc = check_body(&j, body, arena, err);
    if (rc == 0 && j.i < j.n && j.p[j.i] != '{') {
        /* Tell "valid JSON, but not an object" from garbage. */
        rc = rc__json_skip_value(&j, 0);
        if (rc == 0)
            rc = check_end(&j);
        if (rc == 0)
            rc = fail(err, RC_STR_NULL, "event must be a JSON object");
        return rc;
    }
    if (rc == 0)
        rc = parse_event(&j, ev);
    if (rc == 0)
        rc = check_end(&j);
    if (rc == 0)
        rc = rc_event_validate(ev, err);
    return rc;
}

int rc_ce_decode_batch(rc_str_t body, rc_arena_t *arena, size_t max_events, rc_event_t **events,
                       size_t *count, rc_ce_error_t *err)
{
    jp_t j;
    *events = NULL;
    *count = 0;
    int rc = check_body(&j, body, arena, err);
    if (rc != 0)
        return rc;
    if (j.i >= j.n || j.p[j.i] != '[') {
        rc = rc__json_skip_value(&j, 0);
        if (rc == 0)
            rc = check_end(&j);
        return rc == 0 ? fail(err, RC_STR_NULL, "batch must be a JSON array") : rc;
    }
    /* Events are parsed into a growing array; a batch is checked completely before any of it
     * is returned (all-or-nothing). */
    size_t cap = 16, n = 0;
    rc_event_t *evs = rc_arena_alloc(arena, cap * sizeof(*evs), _Alignof(rc_event_t));
    if (evs == NULL)
        return -ENOMEM;
    j.i++;
    rc__json_skip_ws(&j);
    bool empty = j.i < j.n && j.p[j.i] == ']';
    if (empty)
        j.i++;
    while (!empty) {
        if (n == max_events) {
            if (err) {
                err->field = RC_STR_NULL;
                err->rule = "batch holds more events than allowed";
            }
            return RC_ETOO_LARGE;
        }
        if (n == cap) {
            rc_event_t *grown = rc_arena_alloc(arena, 2 * cap * sizeof(*evs), _Alignof(rc_event_t));
            if (grown == NULL)
                return -ENOMEM;
            memcpy(grown, evs, n * sizeof(*evs));
            evs = grown;
            cap *= 2;
        }
        rc = parse_event(&j, &evs[n]);
        if (rc == 0)
            rc = rc_event_validate(&evs[n], err);
        if (rc != 0) {
            if (err)
                err->index = (int32_t)n;
            return rc;
        }
        n++;
        rc__json_skip_ws(&j);
        if (j.i >= j.n)
            return rc__json_malformed(&j);
        if (j.p[j.i] == ']') {
            j.i++;
            break;
        }
        if (j.p[j.i] != ',')
            return rc__json_malformed(&j);
        j.i++;
        rc__json_skip_ws(&j);
    }
    if ((rc = check_end(&j)) != 0)
        return rc;
    *events = evs;
    *count = n;
    return 0;
}

/* ---- writing ------------------------------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t cap;
    size_t len;
} writer_t;

static void put(writer_t *w, const char *p, size_t n)
{
    if (n > 0 && w->len <= w->cap && n <= w->cap - w->len)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_json_string(writer_t *w, rc_str_t s)
{
    static const char hex[] = "0123456789abcdef";
    put(w, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(w, s.ptr + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        put(w, esc, n);
    }
    put(w, s.ptr + run, s.len - run);
    put(w, "\"", 1);
}

static void put_member(writer_t *w, rc_str_t name, rc_str_t value, bool bare)
{
    put(w, ",", 1);
    put_json_string(w, name);
    put(w, ":", 1);
    if (bare)
        put(w, value.ptr, value.len);
    else
        put_json_string(w, value);
}

/* Whether `s` is one JSON value with no surrounding whitespace, so that it can be embedded as
 * is and read back byte-exact by the parser above. */
static bool is_exact_json(rc_str_t s)
{
    if (s.len == 0 || rc__json_is_ws(s.ptr[0]) || rc__json_is_ws(s.ptr[s.len - 1]) ||
        !rc_ce_is_utf8(s))
        return false;
    jp_t j = {.p = s.ptr, .n = s.len, .i = 0, .arena = NULL, .err = NULL};
    return rc__json_skip_value(&j, 0) == 0 && j.i == j.n;
}

int rc_ce_write_structured(const rc_event_t *ev, unsigned flags, char *buf, size_t cap, size_t *len)
{
    /* JSON text must be UTF-8; an unvalidated event could hold anything. Data is exempt: bytes
     * that are not UTF-8 go out as data_base64. */
    *len = 0;
    for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++)
        if (ev->attr[i].ptr != NULL && !rc_ce_is_utf8(ev->attr[i]))
            return -EINVAL;
    for (uint32_t i = 0; i < ev->ext_count; i++) {
        const rc_ce_ext_t *e = &ev->ext[i];
        if (!rc_ce_is_utf8(e->name) || !rc_ce_is_utf8(e->value))
            return -EINVAL;
        /* Integer and Boolean go out bare: they must be what their type says. */
        if ((e->type == RC_CE_INTEGER || e->type == RC_CE_BOOLEAN) &&
            rc_ce_check_value(e->type, e->value) != NULL)
            return -EINVAL;
    }
    writer_t w = {buf, cap, 0};
    put(&w, "{\"specversion\":", 15);
    put_json_string(&w, ev->specversion.ptr ? ev->specversion : RC_STR(""));
    for (int i = 1; i < RC_CE_ATTR_CORE_COUNT; i++)
        if (ev->attr[i].ptr != NULL)
            put_member(&w, rc_str(rc_ce_attr_name((rc_ce_attr_t)i)), ev->attr[i], false);
    for (uint32_t i = 0; i < ev->ext_count; i++) {
        const rc_ce_ext_t *e = &ev->ext[i];
        if ((flags & RC_CE_WRITE_NO_TTL) && rc_str_eq(e->name, RC_STR("knativebrokerttl")))
            continue;
        bool bare = e->type == RC_CE_INTEGER || e->type == RC_CE_BOOLEAN;
        put_member(&w, e->name, e->value, bare);
    }
    if (ev->data.ptr != NULL) {
        bool json_ct =
            ev->datacontenttype.ptr == NULL || rc_ce_is_json_media_type(ev->datacontenttype);
        /* A JSON null would read back as "no data", so it travels as data_base64. */
        if (json_ct && is_exact_json(ev->data) && !rc_str_eq(ev->data, RC_STR("null"))) {
            put_member(&w, RC_STR("data"), ev->data, true);
        } else if (!json_ct && rc_ce_is_utf8(ev->data)) {
            put_member(&w, RC_STR("data"), ev->data, false);
        } else {
            put(&w, ",\"data_base64\":\"", 16);
            size_t n = rc_base64_encoded_len(ev->data.len);
            if (n > 0 && w.len <= w.cap && n <= w.cap - w.len)
                rc_base64_encode(ev->data.ptr, ev->data.len, w.buf + w.len);
            w.len += n;
            put(&w, "\"", 1);
        }
    }
    put(&w, "}", 1);
    *len = w.len;
    return w.len <= cap ? 0 : -ENOBUFS;
}

int rc_json_scan(rc_str_t s, size_t *pos, rc_str_t *value)
{
    jp_t j = {.p = s.ptr, .n = s.ptr ? s.len : 0, .i = *pos, .arena = NULL, .err = NULL};
    rc__json_skip_ws(&j);
    size_t start = j.i;
    if (rc__json_skip_value(&j, 0) != 0)
        return RC_EPARSE;
    *value = (rc_str_t){s.ptr + start, j.i - start};
    rc__json_skip_ws(&j);
    *pos = j.i;
    return 0;
}

int rc_json_string(rc_str_t lit, rc_arena_t *arena, rc_str_t *out)
{
    jp_t j = {.p = lit.ptr, .n = lit.ptr ? lit.len : 0, .i = 0, .arena = arena, .err = NULL};
    rc_str_t raw;
    bool escaped;
    if (j.n < 2 || j.p[0] != '"' || rc__json_scan_string(&j, &raw, &escaped) != 0 || j.i != j.n)
        return RC_EPARSE;
    int rc = string_value(&j, raw, escaped, out);
    return rc == RC_EINVALID_EVENT ? RC_EPARSE : rc;
}
