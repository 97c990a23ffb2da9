#include "core/codec_http.h"

#include "core/codec_json.h"
#include "core/errors.h"
#include "core/validate.h"

#include <errno.h>
#include <string.h>

/* Extension slots reserved beyond the ce- headers of a request, so that the ingress stamps
 * (knativearrivaltime, knativebrokerttl) never have to grow the table. */
#define STAMP_SLOTS 2

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool prefix_ieq(rc_str_t s, const char *lit, size_t n)
{
    if (s.len < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s.ptr[i]) != lit[i])
            return false;
    return true;
}

static bool ieq(rc_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && prefix_ieq(s, lit, n);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* A field value without the optional whitespace around it (RFC 7230 3.2), which is not part of
 * the value; parsers differ in how much of it they strip. */
static rc_str_t trim(rc_str_t v)
{
    if (v.ptr == NULL)
        return RC_STR("");
    while (v.len && is_blank(v.ptr[0])) {
        v.ptr++;
        v.len--;
    }
    while (v.len && is_blank(v.ptr[v.len - 1]))
        v.len--;
    return v;
}

rc_ce_mode_t rc_ce_classify(rc_str_t ct)
{
    if (ct.ptr == NULL)
        return RC_CE_MODE_BINARY;
    size_t b = 0, e = ct.len;
    while (b < e && is_blank(ct.ptr[b]))
        b++;
    const char *semi = memchr(ct.ptr + b, ';', e - b);
    if (semi)
        e = (size_t)(semi - ct.ptr);
    while (e > b && is_blank(ct.ptr[e - 1]))
        e--;
    rc_str_t mt = { ct.ptr + b, e - b };
    static const char ce[] = "application/cloudevents";
    if (!prefix_ieq(mt, ce, sizeof(ce) - 1))
        return RC_CE_MODE_BINARY;
    if (ieq(mt, "application/cloudevents+json"))
        return RC_CE_MODE_STRUCTURED;
    if (ieq(mt, "application/cloudevents-batch+json"))
        return RC_CE_MODE_BATCH;
    /* "application/cloudevents" followed by another format ("+xml", "-batch+avro", nothing):
     * a cloudevents format we do not speak. Anything else (e.g. "application/cloudeventsfoo")
     * is just an unrelated media type carried in binary mode. */
    if (mt.len == sizeof(ce) - 1 || mt.ptr[sizeof(ce) - 1] == '+' ||
        prefix_ieq(mt, "application/cloudevents-batch", 29))
        return RC_CE_MODE_UNSUPPORTED;
    return RC_CE_MODE_BINARY;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int rc_ce_percent_decode(rc_str_t in, rc_arena_t *arena, rc_str_t *out)
{
    const char *pct = in.len ? memchr(in.ptr, '%', in.len) : NULL;
    if (pct == NULL) {
        *out = in;
        return 0;
    }
    char *dst = rc_arena_alloc(arena, in.len, 1);
    if (dst == NULL)
        return -ENOMEM;
    size_t head = (size_t)(pct - in.ptr), o = head;
    memcpy(dst, in.ptr, head);
    for (size_t i = head; i < in.len; i++) {
        char c = in.ptr[i];
        if (c == '%') {
            int h, l;
            if (in.len - i < 3 || (h = hexval(in.ptr[i + 1])) < 0 ||
                (l = hexval(in.ptr[i + 2])) < 0)
                return -EINVAL;
            dst[o++] = (char)(h << 4 | l);
            i += 2;
        } else {
            dst[o++] = c;
        }
    }
    *out = (rc_str_t){ dst, o };
    return 0;
}

/* Bytes a header value carries percent-encoded: controls, space, '"', '%' and everything from
 * 0x7f up; one bit per byte value. */
static const uint64_t pct_bits[4] = {
    0x1ffffffffull | 1ull << '"' | 1ull << '%', 1ull << (0x7f - 64), ~0ull, ~0ull};

static bool needs_pct(unsigned char c)
{
    return (pct_bits[c >> 6] >> (c & 63)) & 1;
}

size_t rc_ce_percent_encode(rc_str_t in, char *buf, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0, i = 0;
    while (i < in.len) {
        /* A run that goes out as it is (most values are one), copied as far as it fits. */
        size_t j = i;
        while (j < in.len && !needs_pct((unsigned char)in.ptr[j]))
            j++;
        if (o < cap)
            memcpy(buf + o, in.ptr + i, j - i < cap - o ? j - i : cap - o);
        o += j - i;
        if (j == in.len)
            break;
        unsigned char c = (unsigned char)in.ptr[j];
        if (o + 3 <= cap) {
            buf[o] = '%';
            buf[o + 1] = hex[c >> 4];
            buf[o + 2] = hex[c & 15];
        }
        o += 3;
        i = j + 1;
    }
    return o;
}

static int fail(rc_ce_error_t *err, rc_str_t field, const char *rule, int code)
{
    if (err) {
        err->field = field;
        err->rule = rule;
    }
    return code;
}

/* Lower-cases an attribute name taken from a header, copying only when it has upper case. */
static int attr_name(rc_str_t raw, rc_arena_t *arena, rc_str_t *out)
{
    size_t i = 0;
    while (i < raw.len && !(raw.ptr[i] >= 'A' && raw.ptr[i] <= 'Z'))
        i++;
    if (i == raw.len) {
        *out = raw;
        return 0;
    }
    char *p = rc_arena_alloc(arena, raw.len, 1);
    if (p == NULL)
        return -ENOMEM;
    for (size_t k = 0; k < raw.len; k++)
        p[k] = lower(raw.ptr[k]);
    *out = (rc_str_t){ p, raw.len };
    return 0;
}

int rc_ce_decode_binary(const rc_http_header_t *headers, size_t count, rc_str_t body,
                        rc_arena_t *arena, rc_event_t *ev, rc_ce_error_t *err)
{
    size_t nce = 0;
    for (size_t i = 0; i < count; i++)
        if (prefix_ieq(headers[i].name, "ce-", 3))
            nce++;
    if (nce > RC_CE_EXT_MAX + RC_CE_ATTR_CORE_COUNT)
        return fail(err, RC_STR_NULL, "too many ce- headers", RC_EINVALID_EVENT);

    uint32_t cap = (uint32_t)nce + STAMP_SLOTS;
    rc_ce_ext_t *ext = rc_arena_alloc(arena, cap * sizeof(*ext), _Alignof(rc_ce_ext_t));
    if (ext == NULL)
        return -ENOMEM;
    rc_event_init(ev, ext, cap);

    for (size_t i = 0; i < count; i++) {
        const rc_http_header_t *h = &headers[i];
        if (ieq(h->name, "content-type")) {
            if (ev->datacontenttype.ptr != NULL)
                return fail(err, RC_STR("datacontenttype"), "duplicate Content-Type",
                            RC_EINVALID_EVENT);
            ev->datacontenttype = trim(h->value);
            continue;
        }
        if (!prefix_ieq(h->name, "ce-", 3))
            continue;
        rc_str_t raw = { h->name.ptr + 3, h->name.len - 3 }, name, value;
        if (raw.len == 0)
            return fail(err, h->name, "header has no attribute name", RC_EINVALID_EVENT);
        if (attr_name(raw, arena, &name) != 0)
            return -ENOMEM;
        int rc = rc_ce_percent_decode(trim(h->value), arena, &value);
        if (rc == -ENOMEM)
            return rc;
        if (rc != 0)
            return fail(err, name, "invalid percent-encoding", RC_EINVALID_EVENT);
        int idx = rc_ce_attr_index(name);
        if (idx >= 0) {
            if (ev->attr[idx].ptr != NULL)
                return fail(err, name, "duplicate attribute", RC_EINVALID_EVENT);
            ev->attr[idx] = value;
            continue;
        }
        if (rc_event_find_ext(ev, name) != NULL)
            return fail(err, name, "duplicate attribute", RC_EINVALID_EVENT);
        if (ev->ext_count >= RC_CE_EXT_MAX)
            return fail(err, name, "too many extensions (max 128)", RC_EINVALID_EVENT);
        ev->ext[ev->ext_count++] = (rc_ce_ext_t){ name, value, RC_CE_STRING };
    }
    if (body.len > 0)
        ev->data = body;
    return rc_event_validate(ev, err);
}

static void clear_error(rc_ce_error_t *err)
{
    if (err) {
        err->index = -1;
        err->field = RC_STR_NULL;
        err->rule = NULL;
    }
}

int rc_ce_request_mode(const rc_http_header_t *headers, size_t count, rc_ce_mode_t *mode,
                       rc_ce_error_t *err)
{
    rc_str_t ct = RC_STR_NULL;
    int dup = 0;
    clear_error(err);
    for (size_t i = 0; i < count; i++) {
        if (ieq(headers[i].name, "content-type")) {
            if (ct.ptr != NULL)
                dup = 1;
            else
                ct = headers[i].value.ptr ? headers[i].value : RC_STR("");
        }
    }
    *mode = rc_ce_classify(ct);
    if (dup)
        return fail(err, RC_STR("datacontenttype"), "duplicate Content-Type", RC_EINVALID_EVENT);
    return 0;
}

int rc_ce_decode_as(rc_ce_mode_t mode, const rc_http_header_t *headers, size_t count,
                    rc_str_t body, rc_arena_t *arena, size_t max_events, rc_event_t **events,
                    size_t *nevents, rc_ce_error_t *err)
{
    *events = NULL;
    *nevents = 0;
    clear_error(err);
    if (mode == RC_CE_MODE_UNSUPPORTED)
        return fail(err, RC_STR("Content-Type"), "event format not supported (only JSON)",
                    RC_EUNSUPPORTED_MEDIA);
    if (mode == RC_CE_MODE_BATCH)
        return rc_ce_decode_batch(body, arena, max_events, events, nevents, err);

    rc_event_t *ev = rc_arena_alloc(arena, sizeof(*ev), _Alignof(rc_event_t));
    if (ev == NULL)
        return -ENOMEM;
    int rc = mode == RC_CE_MODE_STRUCTURED
                 ? rc_ce_decode_structured(body, arena, ev, err)
                 : rc_ce_decode_binary(headers, count, body, arena, ev, err);
    if (rc != 0)
        return rc;
    *events = ev;
    *nevents = 1;
    return 0;
}

int rc_ce_decode_request(const rc_http_header_t *headers, size_t count, rc_str_t body,
                         rc_arena_t *arena, size_t max_events, rc_event_t **events,
                         size_t *nevents, rc_ce_error_t *err)
{
    rc_ce_mode_t mode;
    *events = NULL;
    *nevents = 0;
    int rc = rc_ce_request_mode(headers, count, &mode, err);
    if (rc != 0)
        return rc;
    return rc_ce_decode_as(mode, headers, count, body, arena, max_events, events, nevents, err);
}

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

static void put_header(writer_t *w, rc_str_t name, rc_str_t value)
{
    put(w, "ce-", 3);
    put(w, name.ptr, name.len);
    put(w, ": ", 2);
    /* Sizing calls pass no buffer: never form a pointer past what exists. */
    size_t room = w->len < w->cap ? w->cap - w->len : 0;
    w->len += rc_ce_percent_encode(value, room ? w->buf + w->len : NULL, room);
    put(w, "\r\n", 2);
}

int rc_ce_write_binary(const rc_event_t *ev, unsigned flags, char *buf, size_t cap, size_t *len)
{
    /* Names and Content-Type go out unescaped: refuse what could break the header block (an
     * event that never went through validation, e.g. typed on a command line). Values are
     * percent-encoded and always safe. */
    *len = 0;
    for (uint32_t i = 0; i < ev->ext_count; i++)
        if (!rc_ce_is_ext_name(ev->ext[i].name))
            return -EINVAL;
    if (ev->datacontenttype.ptr != NULL && !rc_ce_is_media_type(ev->datacontenttype))
        return -EINVAL;
    writer_t w = { buf, cap, 0 };
    for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++) {
        if (i == RC_CE_ATTR_DATACONTENTTYPE || ev->attr[i].ptr == NULL)
            continue;
        put_header(&w, rc_str(rc_ce_attr_name((rc_ce_attr_t)i)), ev->attr[i]);
    }
    for (uint32_t i = 0; i < ev->ext_count; i++) {
        const rc_ce_ext_t *e = &ev->ext[i];
        if ((flags & RC_CE_WRITE_NO_TTL) && rc_str_eq(e->name, RC_STR("knativebrokerttl")))
            continue;
        put_header(&w, e->name, e->value);
    }
    if (ev->datacontenttype.ptr != NULL) {
        put(&w, "Content-Type: ", 14);
        put(&w, ev->datacontenttype.ptr, ev->datacontenttype.len);
        put(&w, "\r\n", 2);
    }
    *len = w.len;
    return w.len <= cap ? 0 : -ENOBUFS;
}
