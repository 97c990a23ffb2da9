#include "core/codec_json.h"

#include "core/base64.h"
#include "core/codec_http.h"
#include "core/errors.h"
#include "core/validate.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <string.h>

/* cJSON validates the document and hands us typed members, but it re-serialises numbers and
 * truncates strings at an escaped U+0000. Event data must stay byte-exact, so a small scanner
 * below finds the raw text of each batch element and of each `data` member in the input; cJSON's
 * view is used only for the attributes, whose values are checked strictly anyway. */

/* Extension slots reserved beyond an event's members (see codec_http.c). */
#define STAMP_SLOTS 2
/* Members an event object may have: core attributes, data, data_base64 and extensions. */
#define MAX_MEMBERS (RC_CE_ATTR_CORE_COUNT + 2 + RC_CE_EXT_MAX)

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *p, size_t i, size_t n)
{
    while (i < n && is_ws(p[i]))
        i++;
    return i;
}

/* Index just past the string literal starting at p[i] == '"'. The input is valid JSON. */
static size_t skip_string(const char *p, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (p[i] == '\\')
            i++;
        else if (p[i] == '"')
            return i + 1;
    }
    return n;
}

/* Index just past the JSON value starting at p[i]. */
static size_t skip_value(const char *p, size_t i, size_t n)
{
    if (i >= n)
        return n;
    if (p[i] == '"')
        return skip_string(p, i, n);
    if (p[i] == '{' || p[i] == '[') {
        size_t depth = 0;
        for (; i < n; i++) {
            char c = p[i];
            if (c == '"') {
                i = skip_string(p, i, n) - 1;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return i + 1;
            }
        }
        return n;
    }
    while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && !is_ws(p[i]))
        i++;
    return i;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int hex4(const char *p, size_t n)
{
    if (n < 4)
        return -1;
    int v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p[k]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Unescapes the JSON string literal `lit` (quotes included) into `out` (at least lit.len bytes).
 * Returns the byte count, or -1 on a malformed escape or a lone surrogate. The output never
 * grows: every escape is at least as long as the UTF-8 it stands for. */
static long unescape(rc_str_t lit, char *out)
{
    const char *p = lit.ptr + 1;
    size_t n = lit.len - 2, o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\') {
            out[o++] = p[i];
            continue;
        }
        if (++i >= n)
            return -1;
        switch (p[i]) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            int cp = hex4(p + i + 1, n - i - 1);
            if (cp < 0)
                return -1;
            i += 4;
            uint32_t c = (uint32_t)cp;
            if (c >= 0xd800 && c <= 0xdbff) {
                int lo;
                if (n - i < 7 || p[i + 1] != '\\' || p[i + 2] != 'u' ||
                    (lo = hex4(p + i + 3, n - i - 3)) < 0xdc00 || lo > 0xdfff)
                    return -1;
                c = 0x10000 + ((c - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
                i += 6;
            } else if (c >= 0xdc00 && c <= 0xdfff) {
                return -1;
            }
            o += put_utf8(out + o, c);
            break;
        }
        default:
            return -1;
        }
    }
    return (long)o;
}

/* Raw text of member `key` of the object whose text is `obj` (valid JSON), or RC_STR_NULL. */
static rc_str_t find_member(rc_str_t obj, const char *key)
{
    const char *p = obj.ptr;
    size_t n = obj.len, klen = strlen(key);
    size_t i = skip_ws(p, 0, n);
    if (i >= n || p[i] != '{')
        return RC_STR_NULL;
    i++;
    for (;;) {
        i = skip_ws(p, i, n);
        if (i >= n || p[i] != '"')
            return RC_STR_NULL;
        size_t kend = skip_string(p, i, n);
        rc_str_t lit = { p + i, kend - i };
        bool match = false;
        if (lit.len <= 2 + 6 * klen) {
            char tmp[64];
            long k = lit.len <= sizeof(tmp) ? unescape(lit, tmp) : -1;
            match = k == (long)klen && memcmp(tmp, key, klen) == 0;
        }
        i = skip_ws(p, kend, n);
        if (i >= n || p[i] != ':')
            return RC_STR_NULL;
        i = skip_ws(p, i + 1, n);
        size_t vend = skip_value(p, i, n);
        if (match)
            return (rc_str_t){ p + i, vend - i };
        i = skip_ws(p, vend, n);
        if (i >= n || p[i] != ',')
            return RC_STR_NULL;
        i++;
    }
}

/* Whether `s` holds a JSON escape of U+0000, which cJSON would silently truncate a string at. */
static bool has_nul_escape(const char *p, size_t n)
{
    const char *bs = memchr(p, '\\', n);
    if (bs == NULL)
        return false;
    for (size_t i = (size_t)(bs - p); i + 1 < n; i++) {
        if (p[i] != '\\')
            continue;
        if (p[i + 1] == 'u' && hex4(p + i + 2, n - i - 2) == 0)
            return true;
        i++;
    }
    return false;
}

static int fail(rc_ce_error_t *err, rc_str_t field, const char *rule)
{
    if (err) {
        err->field = field;
        err->rule = rule;
    }
    return RC_EINVALID_EVENT;
}

/* Copies a cJSON string into the arena (the tree dies at the end of the decode). */
static int take_string(const cJSON *item, rc_arena_t *arena, rc_str_t *out)
{
    size_t n = strlen(item->valuestring);
    char *p = rc_arena_strndup(arena, item->valuestring, n);
    if (p == NULL)
        return -ENOMEM;
    *out = (rc_str_t){ p, n };
    return 0;
}

/* The error field for member `key`: a copy in the arena, since the key dies with the tree. */
static rc_str_t key_field(const char *key, rc_arena_t *arena)
{
    size_t n = strlen(key);
    if (n > 64)
        n = 64;
    char *p = rc_arena_strndup(arena, key, n);
    return p ? (rc_str_t){ p, n } : RC_STR("?");
}

static int decode_data(const cJSON *data, const cJSON *b64, rc_str_t raw, rc_arena_t *arena,
                       rc_event_t *ev, rc_ce_error_t *err)
{
    if (b64 != NULL) {
        if (!cJSON_IsString(b64))
            return fail(err, RC_STR("data_base64"), "must be a base64 string");
        size_t n = strlen(b64->valuestring);
        char *buf = rc_arena_alloc(arena, n / 4 * 3 + 1, 1);
        if (buf == NULL)
            return -ENOMEM;
        long k = rc_base64_decode(b64->valuestring, n, buf);
        if (k < 0)
            return fail(err, RC_STR("data_base64"), "must be a base64 string");
        ev->data = (rc_str_t){ buf, (size_t)k };
        return 0;
    }
    if (data == NULL)
        return 0;
    rc_str_t text = find_member(raw, "data");
    if (text.ptr == NULL)
        return fail(err, RC_STR("data"), "could not be located in the input");
    if (cJSON_IsString(data) && ev->datacontenttype.ptr != NULL &&
        !rc_ce_is_json_media_type(ev->datacontenttype)) {
        /* A string under a non-JSON media type is the data itself. */
        char *buf = rc_arena_alloc(arena, text.len, 1);
        if (buf == NULL)
            return -ENOMEM;
        long k = unescape(text, buf);
        if (k < 0)
            return fail(err, RC_STR("data"), "must be a valid JSON string");
        ev->data = (rc_str_t){ buf, (size_t)k };
        return 0;
    }
    ev->data = text; /* JSON data: its exact text, borrowed from the input */
    return 0;
}

/* Decodes one event object; `raw` is its exact text in the input. */
static int decode_object(const cJSON *obj, rc_str_t raw, rc_arena_t *arena, rc_event_t *ev,
                         rc_ce_error_t *err)
{
    if (!cJSON_IsObject(obj))
        return fail(err, RC_STR_NULL, "event must be a JSON object");
    if (raw.len < 2 || raw.ptr[0] != '{' || raw.ptr[raw.len - 1] != '}')
        return fail(err, RC_STR_NULL, "malformed JSON");
    size_t members = 0;
    for (const cJSON *m = obj->child; m != NULL; m = m->next)
        if (++members > MAX_MEMBERS)
            return fail(err, RC_STR_NULL, "too many attributes");
    uint32_t cap = (uint32_t)members + STAMP_SLOTS;
    rc_ce_ext_t *ext = rc_arena_alloc(arena, cap * sizeof(*ext), _Alignof(rc_ce_ext_t));
    if (ext == NULL)
        return -ENOMEM;
    rc_event_init(ev, ext, cap);

    const cJSON *data = NULL, *b64 = NULL;
    for (const cJSON *m = obj->child; m != NULL; m = m->next) {
        const char *key = m->string;
        for (const cJSON *prev = obj->child; prev != m; prev = prev->next)
            if (strcmp(prev->string, key) == 0)
                return fail(err, key_field(key, arena), "duplicate attribute");
        if (cJSON_IsNull(m))
            continue; /* null means absent (a missing required attribute is reported below) */
        if (strcmp(key, "data") == 0) {
            data = m;
            continue;
        }
        if (strcmp(key, "data_base64") == 0) {
            b64 = m;
            continue;
        }
        rc_str_t name = rc_str(key);
        int idx = rc_ce_attr_index(name);
        if (idx >= 0) {
            if (!cJSON_IsString(m))
                return fail(err, rc_str(rc_ce_attr_name((rc_ce_attr_t)idx)), "must be a string");
            if (take_string(m, arena, &ev->attr[idx]) != 0)
                return -ENOMEM;
            continue;
        }
        if (ev->ext_count >= RC_CE_EXT_MAX)
            return fail(err, key_field(key, arena), "too many extensions (max 128)");
        rc_ce_ext_t *e = &ev->ext[ev->ext_count];
        char *nm = rc_arena_strndup(arena, key, name.len);
        if (nm == NULL)
            return -ENOMEM;
        e->name = (rc_str_t){ nm, name.len };
        if (cJSON_IsString(m)) {
            e->type = RC_CE_STRING;
            if (take_string(m, arena, &e->value) != 0)
                return -ENOMEM;
        } else if (cJSON_IsBool(m)) {
            e->type = RC_CE_BOOLEAN;
            e->value = cJSON_IsTrue(m) ? RC_STR("true") : RC_STR("false");
        } else if (cJSON_IsNumber(m)) {
            double d = m->valuedouble;
            if (!rc_ce_is_ext_name(e->name))
                return fail(err, e->name, "extension name must be 1-20 characters of [a-z0-9]");
            if (!(d >= INT32_MIN && d <= INT32_MAX) || d != floor(d))
                return fail(err, e->name, "must be a 32-bit integer");
            char *buf = rc_arena_alloc(arena, 12, 1);
            if (buf == NULL)
                return -ENOMEM;
            e->type = RC_CE_INTEGER;
            e->value = (rc_str_t){ buf, rc_ce_int_format((int32_t)d, buf) };
        } else {
            if (!rc_ce_is_ext_name(e->name))
                return fail(err, e->name, "extension name must be 1-20 characters of [a-z0-9]");
            return fail(err, e->name, "must be a string, integer or boolean");
        }
        ev->ext_count++;
    }
    if (data != NULL && b64 != NULL)
        return fail(err, RC_STR("data_base64"), "must not be present together with data");

    /* cJSON cut any string holding an escaped U+0000 short; refuse rather than store a
     * truncated attribute. The data member is taken from the raw text and may hold one. */
    if (memchr(raw.ptr, '\\', raw.len) != NULL) {
        rc_str_t dtext = data ? find_member(raw, "data") : RC_STR_NULL;
        size_t a = dtext.ptr ? (size_t)(dtext.ptr - raw.ptr) : raw.len;
        size_t b = dtext.ptr ? a + dtext.len : raw.len;
        if (has_nul_escape(raw.ptr, a) || has_nul_escape(raw.ptr + b, raw.len - b))
            return fail(err, RC_STR_NULL, "attribute strings must not contain U+0000");
    }
    int rc = decode_data(data, b64, raw, arena, ev, err);
    if (rc != 0)
        return rc;
    return rc_event_validate(ev, err);
}

/* Parses `body` as one JSON document with nothing but whitespace after it. JSON allows no raw
 * control character other than the four whitespace ones (inside strings they must be escaped);
 * cJSON is laxer and treats every byte below 0x20 as whitespace, which would make its view and
 * the raw-text scanner above disagree, so such bodies are refused first. */
static cJSON *parse(rc_str_t body)
{
    const char *end = NULL;
    if (body.ptr == NULL || body.len == 0)
        return NULL;
    for (size_t i = 0; i < body.len; i++) {
        unsigned char c = (unsigned char)body.ptr[i];
        if (c < 0x20 && !is_ws((char)c))
            return NULL;
    }
    cJSON *root = cJSON_ParseWithLengthOpts(body.ptr, body.len, &end, 0);
    if (root == NULL)
        return NULL;
    size_t used = (size_t)(end - body.ptr);
    if (skip_ws(body.ptr, used, body.len) != body.len) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

int rc_ce_decode_structured(rc_str_t body, rc_arena_t *arena, rc_event_t *ev, rc_ce_error_t *err)
{
    if (err)
        err->index = -1;
    cJSON *root = parse(body);
    if (root == NULL)
        return fail(err, RC_STR_NULL, "malformed JSON");
    size_t b = skip_ws(body.ptr, 0, body.len);
    rc_str_t raw = { body.ptr + b, skip_value(body.ptr, b, body.len) - b };
    int rc = decode_object(root, raw, arena, ev, err);
    cJSON_Delete(root);
    return rc;
}

int rc_ce_decode_batch(rc_str_t body, rc_arena_t *arena, size_t max_events, rc_event_t **events,
                       size_t *count, rc_ce_error_t *err)
{
    *events = NULL;
    *count = 0;
    if (err)
        err->index = -1;
    cJSON *root = parse(body);
    if (root == NULL)
        return fail(err, RC_STR_NULL, "malformed JSON");
    int rc = 0;
    if (!cJSON_IsArray(root)) {
        rc = fail(err, RC_STR_NULL, "batch must be a JSON array");
        goto out;
    }
    size_t n = 0;
    for (const cJSON *m = root->child; m != NULL; m = m->next)
        n++;
    if (n > max_events) {
        rc = RC_ETOO_LARGE;
        if (err) {
            err->field = RC_STR_NULL;
            err->rule = "batch holds more events than allowed";
        }
        goto out;
    }
    rc_event_t *evs = rc_arena_alloc(arena, (n ? n : 1) * sizeof(*evs), _Alignof(rc_event_t));
    if (evs == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    /* Walk the array text alongside cJSON's elements to know each element's raw span. The two
     * agree on valid JSON; the checks only keep a disagreement from leaving the body. */
    size_t i = skip_ws(body.ptr, 0, body.len) + 1, k = 0;
    for (const cJSON *m = root->child; m != NULL; m = m->next, k++) {
        i = skip_ws(body.ptr, i, body.len);
        size_t end = skip_value(body.ptr, i, body.len);
        if (i >= body.len || end <= i) {
            rc = fail(err, RC_STR_NULL, "malformed JSON");
            goto out;
        }
        rc_str_t raw = { body.ptr + i, end - i };
        rc = decode_object(m, raw, arena, &evs[k], err);
        if (rc != 0) {
            if (err)
                err->index = (int32_t)k;
            goto out;
        }
        i = skip_ws(body.ptr, end, body.len);
        if (i >= body.len || (body.ptr[i] != ',' && body.ptr[i] != ']')) {
            rc = fail(err, RC_STR_NULL, "malformed JSON");
            goto out;
        }
        i++; /* past the ',' */
    }
    *events = evs;
    *count = n;
out:
    cJSON_Delete(root);
    return rc;
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
        char esc[6] = { '\\', 0 };
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
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

/* UTF-8 text without U+0000 (which cJSON cannot read back): writable as a JSON string. */
static bool is_text(rc_str_t s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    for (size_t i = 0; i < s.len;) {
        unsigned char c = p[i];
        if (c < 0x80) {
            if (c == 0)
                return false;
            i++;
            continue;
        }
        size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (c < 0xc2 || c > 0xf4 || s.len - i < len)
            return false;
        uint32_t cp = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/* Whether `s` is one JSON value with no surrounding whitespace, so it can be embedded as is and
 * read back byte-exact. */
static bool is_exact_json(rc_str_t s)
{
    if (s.len == 0 || is_ws(s.ptr[0]) || is_ws(s.ptr[s.len - 1]) || !is_text(s))
        return false;
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.ptr[i] < 0x20 && !is_ws(s.ptr[i]))
            return false; /* the decoder refuses these (see parse) */
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(s.ptr, s.len, &end, 0);
    if (v == NULL)
        return false;
    cJSON_Delete(v);
    return (size_t)(end - s.ptr) == s.len;
}

int rc_ce_write_structured(const rc_event_t *ev, unsigned flags, char *buf, size_t cap,
                           size_t *len)
{
    writer_t w = { buf, cap, 0 };
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
        } else if (!json_ct && is_text(ev->data)) {
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
