/* The Dapr envelope. The single-publish path allocates nothing but arena bytes and parses no
 * JSON beyond one validating scan of a JSON body: the body's bytes become the event's data as
 * they are (a view), ids come from a per-loop xoshiro256** seeded once from getrandom, and the
 * time string is formatted once per second. A body sent as application/cloudevents+json goes
 * through the core decoder; only when that fails for want of an attribute Dapr defaults does
 * the body get rewritten (members copied as text, so data keeps its exact bytes). */
#include "net/dapr_envelope.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "core/clock.h"
#include "core/codec_http.h"
#include "core/codec_json.h"
#include "core/errors.h"
#include "core/validate.h"

/* ---- errors ---------------------------------------------------------------------------------- */

static const struct {
    int status;
    const char *name;
} codes[] = {
    [RC_DAPR_E_NONE] = {200, ""},
    [RC_DAPR_E_NOT_CONFIGURED] = {400, "ERR_PUBSUB_NOT_CONFIGURED"},
    [RC_DAPR_E_PUBSUB_EMPTY] = {404, "ERR_PUBSUB_EMPTY"},
    [RC_DAPR_E_PUBSUB_UNKNOWN] = {404, "ERR_PUBSUB_NOT_FOUND"},
    [RC_DAPR_E_TOPIC_EMPTY] = {404, "ERR_TOPIC_NAME_EMPTY"},
    [RC_DAPR_E_METADATA] = {400, "ERR_PUBSUB_REQUEST_METADATA"},
    [RC_DAPR_E_CLOUD_EVENT] = {500, "ERR_PUBSUB_CLOUD_EVENTS_SER"},
    [RC_DAPR_E_EVENTS_SER] = {400, "ERR_PUBSUB_EVENTS_SER"},
    [RC_DAPR_E_PUBLISH] = {500, "ERR_PUBSUB_PUBLISH_MESSAGE"},
    [RC_DAPR_E_MALFORMED] = {400, "ERR_MALFORMED_REQUEST"},
    [RC_DAPR_E_TOO_LARGE] = {413, "ERR_BODY_TOO_LARGE"},
    [RC_DAPR_E_NOT_FOUND] = {404, "ERR_NOT_FOUND"},
    [RC_DAPR_E_METHOD] = {405, "ERR_METHOD_NOT_ALLOWED"},
    [RC_DAPR_E_NOMEM] = {503, "ERR_OUT_OF_MEMORY"},
};

const char *rc_dapr_code_name(rc_dapr_code_t code)
{
    return (size_t)code < sizeof(codes) / sizeof(codes[0]) ? codes[code].name : "ERR_INTERNAL";
}

int rc_dapr_fail(rc_dapr_error_t *e, rc_dapr_code_t code, const char *fmt, ...)
{
    e->code = code;
    e->status = (size_t)code < sizeof(codes) / sizeof(codes[0]) ? codes[code].status : 500;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return -1;
}

static int nomem(rc_dapr_error_t *e)
{
    return rc_dapr_fail(e, RC_DAPR_E_NOMEM, "out of memory for this request; retry later");
}

/* Where metadata key k came from, as a prefix of its name in messages. */
#define ORIGIN(m, k) (((m)->from_entry >> (k)) & 1 ? "" : "metadata.")

/* Message text of a value the client sent: at most 100 bytes of it. */
#define SHOWN(s) (int)((s).len > 100 ? 100 : (s).len), (s).ptr

/* ---- random ids ------------------------------------------------------------------------------ */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void rc_dapr_rng_seed(rc_dapr_rng_t *r)
{
    if (getrandom(r->s, sizeof(r->s), 0) != (ssize_t)sizeof(r->s)) {
        /* No entropy source (a very old kernel, a seccomp filter): ids must still differ
         * between loops and runs, which the clock and the state's address give. */
        uint64_t x = (uint64_t)rc_wall_ns() ^ (uint64_t)(uintptr_t)r ^ rc_now_ns() << 17;
        for (int i = 0; i < 4; i++)
            r->s[i] = splitmix(&x);
    }
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
        r->s[0] = 1; /* the one state xoshiro never leaves */
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t rc_dapr_rng_next(rc_dapr_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static const char hexd[] = "0123456789abcdef";

/* "00" "01" ... "ff": two hex digits per byte. */
static const char hex_pairs[513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

/* The low `digits` (even) hex digits of v, a byte at a time. */
static void put_hex(char *out, uint64_t v, int digits)
{
    for (int i = digits - 2; i >= 0; i -= 2, v >>= 8)
        memcpy(out + i, hex_pairs + 2 * (v & 0xff), 2);
}

void rc_dapr_uuid4(rc_dapr_rng_t *r, char out[RC_DAPR_UUID_LEN])
{
    uint64_t hi = rc_dapr_rng_next(r), lo = rc_dapr_rng_next(r);
    hi = (hi & ~0xf000ull) | 0x4000ull;       /* version 4 */
    lo = (lo & ~(3ull << 62)) | (2ull << 62); /* variant 10 */
    put_hex(out, hi >> 32, 8);
    out[8] = '-';
    put_hex(out + 9, hi >> 16, 4);
    out[13] = '-';
    put_hex(out + 14, hi, 4);
    out[18] = '-';
    put_hex(out + 19, lo >> 48, 4);
    out[23] = '-';
    put_hex(out + 24, lo, 12);
}

void rc_dapr_traceparent(rc_dapr_rng_t *r, char out[RC_DAPR_TRACEPARENT_LEN])
{
    uint64_t t1 = rc_dapr_rng_next(r), t2 = rc_dapr_rng_next(r), span = rc_dapr_rng_next(r);
    if ((t1 | t2) == 0)
        t2 = 1; /* an all-zero id is invalid */
    if (span == 0)
        span = 1;
    memcpy(out, "00-", 3);
    put_hex(out + 3, t1, 16);
    put_hex(out + 19, t2, 16);
    out[35] = '-';
    put_hex(out + 36, span, 16);
    memcpy(out + 52, "-01", 3);
}

/* Whether s[0..n) are lower-case hex digits, and whether they are all '0'. */
static bool lower_hex(const char *s, size_t n, bool *zero)
{
    *zero = true;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
        *zero &= s[i] == '0';
    }
    return true;
}

bool rc_dapr_traceparent_valid(rc_str_t s)
{
    bool z1, z2, z3, z4;
    if (s.ptr == NULL || s.len < RC_DAPR_TRACEPARENT_LEN)
        return false;
    const char *p = s.ptr;
    if (p[2] != '-' || p[35] != '-' || p[52] != '-' || !lower_hex(p, 2, &z1) ||
        !lower_hex(p + 3, 32, &z2) || !lower_hex(p + 36, 16, &z3) || !lower_hex(p + 53, 2, &z4))
        return false;
    if (z2 || z3 || (p[0] == 'f' && p[1] == 'f'))
        return false;
    /* Version 00 is exactly 55 characters; a later version may add fields after a '-'. */
    return s.len == RC_DAPR_TRACEPARENT_LEN || (!z1 && p[RC_DAPR_TRACEPARENT_LEN] == '-');
}

/* ---- metadata.* ------------------------------------------------------------------------------ */

static const char *const meta_names[RC_DAPR_META_COUNT] = {
    [RC_DAPR_META_RAW_PAYLOAD] = "rawPayload",
    [RC_DAPR_META_TTL] = "ttlInSeconds",
    [RC_DAPR_META_CE_ID] = "cloudevent.id",
    [RC_DAPR_META_CE_SOURCE] = "cloudevent.source",
    [RC_DAPR_META_CE_TYPE] = "cloudevent.type",
    [RC_DAPR_META_CE_SUBJECT] = "cloudevent.subject",
    [RC_DAPR_META_CE_TRACEID] = "cloudevent.traceid",
    [RC_DAPR_META_CE_TRACEPARENT] = "cloudevent.traceparent",
    [RC_DAPR_META_CE_TRACESTATE] = "cloudevent.tracestate",
    [RC_DAPR_META_PARTITION_KEY] = "partitionKey",
};

const char *rc_dapr_meta_name(rc_dapr_meta_key_t k)
{
    return (unsigned)k < RC_DAPR_META_COUNT ? meta_names[k] : "?";
}

int rc_dapr_meta_lookup(rc_str_t name)
{
    for (int k = 0; k < RC_DAPR_META_COUNT; k++)
        if (rc_str_eq_cstr(name, meta_names[k]))
            return k;
    return -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* URL-decodes a query component ('+' is a space, %XX a byte): a view of `in` when there is
 * nothing to decode, else a copy in `arena`. Returns 0, -EINVAL (bad escape), -ENOMEM. */
static int query_decode(rc_str_t in, rc_arena_t *arena, rc_str_t *out)
{
    if (memchr(in.ptr, '%', in.len) == NULL && memchr(in.ptr, '+', in.len) == NULL) {
        *out = in;
        return 0;
    }
    char *buf = rc_arena_alloc(arena, in.len ? in.len : 1, 1);
    if (buf == NULL)
        return -ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < in.len; i++) {
        char c = in.ptr[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int h = i + 2 < in.len ? hexval(in.ptr[i + 1]) : -1;
            int l = h >= 0 ? hexval(in.ptr[i + 2]) : -1;
            if (l < 0)
                return -EINVAL;
            c = (char)(h << 4 | l);
            i += 2;
        }
        buf[o++] = c;
    }
    *out = (rc_str_t){buf, o};
    return 0;
}

int rc_dapr_meta_query(const char *query, size_t len, rc_arena_t *arena, rc_dapr_meta_t *m,
                       rc_dapr_error_t *e)
{
    static const char prefix[] = "metadata.";
    const size_t plen = sizeof(prefix) - 1;
    for (size_t i = 0; query != NULL && i < len;) {
        const char *amp = memchr(query + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - query) : len;
        rc_str_t pair = {query + i, end - i}, name, value = RC_STR("");
        i = end + 1;
        const char *eq = memchr(pair.ptr, '=', pair.len);
        rc_str_t rname = {pair.ptr, eq ? (size_t)(eq - pair.ptr) : pair.len};
        if (eq != NULL)
            value = (rc_str_t){eq + 1, pair.len - rname.len - 1};
        int rc = query_decode(rname, arena, &name);
        if (rc == 0 && (name.len <= plen || strncasecmp(name.ptr, prefix, plen) != 0))
            continue; /* not metadata: Dapr ignores it too */
        if (rc == 0)
            rc = query_decode(value, arena, &value);
        if (rc == -ENOMEM)
            return nomem(e);
        if (rc != 0)
            return rc_dapr_fail(e, RC_DAPR_E_MALFORMED,
                                "query parameter '%.*s' has a malformed %%-escape", SHOWN(pair));
        int k = rc_dapr_meta_lookup((rc_str_t){name.ptr + plen, name.len - plen});
        if (k >= 0 && m->v[k].ptr == NULL)
            m->v[k] = value;
    }
    return 0;
}

/* ---- envelope -------------------------------------------------------------------------------- */

void rc_dapr_gen_init(rc_dapr_gen_t *g)
{
    memset(g, 0, sizeof(*g));
    g->time_sec = INT64_MIN;
    rc_dapr_rng_seed(&g->rng);
}

/* RFC 3339 in seconds, UTC ("2026-01-02T03:04:05Z"), as Dapr writes time and expiration. */
static size_t format_sec(int64_t sec, char out[24])
{
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    return strftime(out, 24, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static rc_str_t now_string(rc_dapr_gen_t *g, int64_t now_ns)
{
    int64_t sec = now_ns / 1000000000;
    if (sec != g->time_sec) {
        g->time_len = format_sec(sec, g->time);
        g->time_sec = sec;
    }
    return (rc_str_t){g->time, g->time_len};
}

/* What the metadata asks for, checked. */
typedef struct {
    int raw;
    int64_t ttl_s; /* 0: none */
} meta_opts_t;

/* "entry 'x': " for a bulk entry, "" otherwise: every message about an entry names it. */
#define WHERE_FMT "%s%.*s%s"
#define WHERE(p)                                                                                   \
    (p)->entry.ptr ? "entry '" : "", (int)((p)->entry.len > 100 ? 100 : (p)->entry.len),           \
        (p)->entry.ptr ? (p)->entry.ptr : "", (p)->entry.ptr ? "': " : ""

/* Go's strconv.ParseBool, which Dapr uses for rawPayload. */
static int parse_bool(rc_str_t v, int *out)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (rc_str_eq_cstr(v, t[i]))
            return *out = 1, 0;
        if (rc_str_eq_cstr(v, f[i]))
            return *out = 0, 0;
    }
    return -EINVAL;
}

/* A positive number of seconds whose expiry still fits a 4-digit year. */
#define TTL_MAX_S 100000000000ll

static int parse_ttl(rc_str_t v, int64_t *out)
{
    size_t i = v.len > 0 && v.ptr[0] == '+';
    int64_t n = 0;
    if (i >= v.len)
        return -EINVAL;
    for (; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9' || n > TTL_MAX_S)
            return -EINVAL;
        n = n * 10 + (v.ptr[i] - '0');
    }
    *out = n;
    return 0;
}

static int meta_opts(const rc_dapr_publish_t *p, const rc_dapr_meta_t *m, meta_opts_t *o,
                     rc_dapr_error_t *e)
{
    o->raw = 0;
    o->ttl_s = 0;
    rc_str_t v = m->v[RC_DAPR_META_RAW_PAYLOAD];
    if (v.ptr != NULL && parse_bool(v, &o->raw) != 0)
        return rc_dapr_fail(e, RC_DAPR_E_METADATA,
                            WHERE_FMT "%srawPayload: '%.*s' is not a boolean (true or false)",
                            WHERE(p), ORIGIN(m, RC_DAPR_META_RAW_PAYLOAD), SHOWN(v));
    v = m->v[RC_DAPR_META_TTL];
    if (v.ptr != NULL && (parse_ttl(v, &o->ttl_s) != 0 || o->ttl_s <= 0 || o->ttl_s > TTL_MAX_S))
        return rc_dapr_fail(e, RC_DAPR_E_METADATA,
                            WHERE_FMT "%sttlInSeconds: '%.*s' is not a positive whole number of "
                                      "seconds (at most %lld)",
                            WHERE(p), ORIGIN(m, RC_DAPR_META_TTL), SHOWN(v), TTL_MAX_S);
    return 0;
}

static int set_ext(rc_event_t *ev, rc_arena_t *arena, rc_str_t name, rc_str_t value,
                   rc_ce_type_t type, rc_dapr_error_t *e)
{
    int rc = rc_event_set_ext(ev, arena, name, value, type);
    if (rc == -E2BIG)
        return rc_dapr_fail(e, RC_DAPR_E_CLOUD_EVENT, "the event has too many extensions");
    return rc == 0 ? 0 : nomem(e);
}

/* `body` as a JSON string literal (Dapr stores a body under a JSON content type that does not
 * parse as a string). `body` is UTF-8. */
static int json_quote(rc_str_t body, rc_arena_t *arena, rc_str_t *out)
{
    char *buf = rc_arena_alloc(arena, body.len * 6 + 2, 1);
    if (buf == NULL)
        return -ENOMEM;
    size_t o = 0;
    buf[o++] = '"';
    for (size_t i = 0; i < body.len; i++) {
        unsigned char c = (unsigned char)body.ptr[i];
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20) {
            memcpy(buf + o, "\\u00", 4);
            buf[o + 4] = hexd[c >> 4];
            buf[o + 5] = hexd[c & 15];
            o += 6;
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    *out = (rc_str_t){buf, o};
    return 0;
}

/* The data of a body under a JSON content type: the JSON value itself (surrounding whitespace
 * dropped, every byte inside kept), or, when it is no JSON, the body as a JSON string. */
static int json_data(rc_str_t body, rc_arena_t *arena, rc_str_t *data)
{
    size_t pos = 0;
    rc_str_t v;
    if (rc_json_scan(body, &pos, &v) == 0 && pos == body.len && rc_ce_is_utf8(v)) {
        *data = v;
        return 0;
    }
    if (!rc_ce_is_utf8(body)) {
        *data = body; /* no JSON string can hold it: kept as bytes (rendered as data_base64) */
        return 0;
    }
    return json_quote(body, arena, data);
}

/* The request-level attributes a header gives: checked once for every kind of body. */
int rc_dapr_request_check(rc_dapr_publish_t *p, rc_dapr_error_t *e)
{
    if (!rc_dapr_traceparent_valid(p->traceparent))
        p->traceparent = RC_STR_NULL;
    if (p->tracestate.len == 0 || !rc_ce_is_valid_string(p->tracestate))
        p->tracestate = RC_STR_NULL;
    if (!rc_ce_is_valid_string(p->topic))
        return rc_dapr_fail(e, RC_DAPR_E_MALFORMED,
                            "topic '%.*s' is not valid UTF-8 or holds control characters",
                            SHOWN(p->topic));
    if (!rc_ce_is_valid_string(p->app_id) || !rc_ce_is_uri_ref(p->app_id))
        return rc_dapr_fail(e, RC_DAPR_E_MALFORMED,
                            "dapr-app-id '%.*s' cannot be an event source (a URI-reference)",
                            SHOWN(p->app_id));
    return 0;
}

/* The request's traceparent header (rc_dapr_request_check kept it only when it is one), else a
 * new one (in `arena`); absent when the arena ran out. */
static rc_str_t request_parent(rc_dapr_gen_t *g, const rc_dapr_publish_t *p, rc_arena_t *arena)
{
    if (p->traceparent.ptr != NULL)
        return p->traceparent;
    char *buf = rc_arena_alloc(arena, RC_DAPR_TRACEPARENT_LEN, 1);
    if (buf == NULL)
        return RC_STR_NULL;
    rc_dapr_traceparent(&g->rng, buf);
    return (rc_str_t){buf, RC_DAPR_TRACEPARENT_LEN};
}

/* Appends a String extension that the event does not have, to a table with room for it. */
static void push(rc_event_t *ev, rc_str_t name, rc_str_t value)
{
    ev->ext[ev->ext_count++] = (rc_ce_ext_t){.name = name, .value = value, .type = RC_CE_STRING};
}

/* The Dapr envelope around a body that is not a CloudEvent. Its extensions are new, so they
 * are appended without the lookups rc_event_set_ext makes. */
static int plain(rc_dapr_gen_t *g, const rc_dapr_publish_t *p, int raw, rc_str_t body,
                 rc_arena_t *arena, rc_event_t *ev, rc_dapr_error_t *e)
{
    rc_ce_ext_t *ext = rc_arena_alloc(arena, RC_DAPR_EXT_SLOTS * sizeof(*ext), 8);
    char *id = rc_arena_alloc(arena, RC_DAPR_UUID_LEN, 1);
    if (ext == NULL || id == NULL)
        return nomem(e);
    rc_event_init(ev, ext, RC_DAPR_EXT_SLOTS);
    rc_dapr_uuid4(&g->rng, id);
    rc_str_t ct = p->content_type.ptr != NULL ? p->content_type
                  : raw                       ? RC_STR("application/octet-stream")
                                              : RC_STR("text/plain");
    if (!rc_ce_is_media_type(ct))
        return rc_dapr_fail(e, RC_DAPR_E_MALFORMED,
                            WHERE_FMT "Content-Type '%.*s' is not a media type (type/subtype)",
                            WHERE(p), SHOWN(ct));
    ev->specversion = RC_STR("1.0");
    ev->id = (rc_str_t){id, RC_DAPR_UUID_LEN};
    ev->source = p->app_id;
    ev->type = RC_STR("com.dapr.event.sent");
    ev->datacontenttype = ct;
    ev->time = now_string(g, p->now_ns);
    ev->data = body.ptr != NULL ? body : RC_STR("");
    if (!raw && !p->body_is_json && rc_ce_is_json_media_type(ct) &&
        json_data(ev->data, arena, &ev->data) != 0)
        return nomem(e);
    rc_str_t parent = request_parent(g, p, arena);
    if (parent.ptr == NULL)
        return nomem(e);
    push(ev, RC_STR("topic"), p->topic);
    push(ev, RC_STR("pubsubname"), p->pubsub);
    push(ev, RC_STR("traceparent"), parent);
    push(ev, RC_STR("traceid"), parent);
    if (p->tracestate.ptr != NULL)
        push(ev, RC_STR("tracestate"), p->tracestate);
    return 0;
}

static size_t skip_blanks(rc_str_t s, size_t pos)
{
    while (pos < s.len &&
           (s.ptr[pos] == ' ' || s.ptr[pos] == '\t' || s.ptr[pos] == '\n' || s.ptr[pos] == '\r'))
        pos++;
    return pos;
}

static const char *const default_keys[4] = {"\"specversion\"", "\"id\"", "\"source\"", "\"type\""};

/* Walks the members of the JSON object `body`: pass 0 notes in *present which of the four
 * attributes Dapr defaults have a non-null value; pass 1 copies every member but their nulls
 * to buf + *o. Returns 0, or -1 when `body` is no well-formed object (nothing after it but
 * whitespace). */
static int walk_members(rc_str_t body, int pass, unsigned *present, char *buf, size_t *o)
{
    size_t pos = skip_blanks(body, 0);
    unsigned seen = 0;
    if (pos >= body.len || body.ptr[pos++] != '{')
        return -1;
    pos = skip_blanks(body, pos);
    if (pos < body.len && body.ptr[pos] == '}')
        return skip_blanks(body, pos + 1) == body.len ? 0 : -1;
    for (;;) {
        rc_str_t key, val;
        if (rc_json_scan(body, &pos, &key) != 0 || key.ptr[0] != '"' || pos >= body.len ||
            body.ptr[pos++] != ':' || rc_json_scan(body, &pos, &val) != 0 || pos >= body.len)
            return -1;
        int k = 0;
        while (k < 4 && !rc_str_eq_cstr(key, default_keys[k]))
            k++;
        bool dropped = k < 4 && rc_str_eq(val, RC_STR("null"));
        if (pass == 0 && k < 4) {
            if (seen & (1u << k))
                return -1; /* a repeated member: the decoder's error stands */
            seen |= 1u << k;
            *present |= dropped ? 0 : 1u << k;
        }
        if (pass == 1 && !dropped) {
            buf[(*o)++] = ',';
            memcpy(buf + *o, key.ptr, key.len);
            *o += key.len;
            buf[(*o)++] = ':';
            memcpy(buf + *o, val.ptr, val.len);
            *o += val.len;
        }
        char c = body.ptr[pos++];
        if (c == '}')
            return skip_blanks(body, pos) == body.len ? 0 : -1;
        if (c != ',')
            return -1;
    }
}

/* Rewrites a CloudEvent object that lacks (or has null for) one of the attributes Dapr
 * defaults: the defaults first, then every member as written except those nulls, so `data`
 * keeps its exact text. Sets *out and returns 1 when something was added, 0 when nothing is
 * missing or the body is no JSON object (the decoder's own error then stands), -ENOMEM. */
static int with_defaults(rc_dapr_gen_t *g, rc_str_t body, rc_arena_t *arena, rc_str_t *out)
{
    static const char *const values[4] = {"\"1.0\"", NULL, "\"Dapr\"", "\"com.dapr.event.sent\""};
    unsigned present = 0;
    size_t o = 0;
    if (walk_members(body, 0, &present, NULL, &o) != 0 || present == 0xf)
        return 0;
    char *buf = rc_arena_alloc(arena, body.len + 160, 1);
    if (buf == NULL)
        return -ENOMEM;
    for (int k = 0; k < 4; k++) {
        if (present & (1u << k))
            continue;
        o += (size_t)sprintf(buf + o, ",%s:", default_keys[k]);
        if (values[k] != NULL) {
            o += (size_t)sprintf(buf + o, "%s", values[k]);
        } else {
            buf[o++] = '"';
            rc_dapr_uuid4(&g->rng, buf + o);
            o += RC_DAPR_UUID_LEN;
            buf[o++] = '"';
        }
    }
    walk_members(body, 1, &present, buf, &o);
    buf[0] = '{'; /* over the first member's leading comma */
    buf[o++] = '}';
    *out = (rc_str_t){buf, o};
    return 1;
}

/* A body sent as application/cloudevents+json: the event itself, with Dapr's defaults. */
static int cloud_event(rc_dapr_gen_t *g, const rc_dapr_publish_t *p, rc_str_t body,
                       rc_arena_t *arena, rc_event_t *ev, rc_dapr_error_t *e)
{
    rc_ce_error_t cerr;
    memset(&cerr, 0, sizeof(cerr));
    cerr.index = -1;
    int rc = rc_ce_decode_structured(body, arena, ev, &cerr);
    if (rc == RC_EINVALID_EVENT) {
        rc_str_t fixed;
        int added = with_defaults(g, body, arena, &fixed);
        if (added < 0)
            return nomem(e);
        if (added > 0) {
            rc_ce_error_t again;
            memset(&again, 0, sizeof(again));
            again.index = -1;
            rc = rc_ce_decode_structured(fixed, arena, ev, &again);
            if (rc == RC_EINVALID_EVENT)
                cerr = again;
        }
    }
    if (rc == -ENOMEM)
        return nomem(e);
    if (rc != 0) {
        char why[256];
        rc_ce_error_format(&cerr, why, sizeof(why));
        return rc_dapr_fail(e, RC_DAPR_E_CLOUD_EVENT,
                            WHERE_FMT "error when decoding the cloud event for topic '%.*s' "
                                      "pubsub '%.*s': %s",
                            WHERE(p), SHOWN(p->topic), SHOWN(p->pubsub), why);
    }
    if (ev->time.ptr == NULL)
        ev->time = now_string(g, p->now_ns);
    return 0;
}

/* One metadata override of a core attribute, checked as that attribute. */
static int override_attr(const rc_dapr_publish_t *p, const rc_dapr_meta_t *m, rc_dapr_meta_key_t k,
                         rc_ce_attr_t attr, rc_event_t *ev, rc_dapr_error_t *e)
{
    rc_str_t v = m->v[k];
    if (v.ptr == NULL || v.len == 0)
        return 0; /* an empty override changes nothing */
    const char *rule = NULL;
    if (!rc_ce_is_valid_string(v))
        rule = "is not valid UTF-8 or holds control characters";
    else if (attr == RC_CE_ATTR_SOURCE && !rc_ce_is_uri_ref(v))
        rule = "is not a URI-reference";
    if (rule != NULL)
        return rc_dapr_fail(e, RC_DAPR_E_METADATA, WHERE_FMT "%s%s: '%.*s' %s", WHERE(p),
                            ORIGIN(m, k), meta_names[k], SHOWN(v), rule);
    ev->attr[attr] = v;
    return 0;
}

/* One metadata value that becomes a string extension. */
static int override_ext(const rc_dapr_publish_t *p, const rc_dapr_meta_t *m, rc_dapr_meta_key_t k,
                        rc_str_t name, rc_event_t *ev, rc_arena_t *arena, rc_dapr_error_t *e)
{
    rc_str_t v = m->v[k];
    if (v.ptr == NULL || v.len == 0)
        return 0;
    if (!rc_ce_is_valid_string(v))
        return rc_dapr_fail(e, RC_DAPR_E_METADATA,
                            WHERE_FMT "%s%s: '%.*s' is not valid UTF-8 or holds control "
                                      "characters",
                            WHERE(p), ORIGIN(m, k), meta_names[k], SHOWN(v));
    return set_ext(ev, arena, name, v, RC_CE_STRING, e);
}

/* A CloudEvent body's topic, pubsubname (both overwritten, as Dapr does) and trace context
 * (its own, else the request's headers, else a new traceparent). */
static int ce_extensions(rc_dapr_gen_t *g, const rc_dapr_publish_t *p, rc_event_t *ev,
                         rc_arena_t *arena, rc_dapr_error_t *e)
{
    if (set_ext(ev, arena, RC_STR("topic"), p->topic, RC_CE_STRING, e) != 0 ||
        set_ext(ev, arena, RC_STR("pubsubname"), p->pubsub, RC_CE_STRING, e) != 0)
        return -1;
    const rc_ce_ext_t *tp = rc_event_find_ext(ev, RC_STR("traceparent"));
    rc_str_t parent = tp != NULL ? tp->value : request_parent(g, p, arena);
    if (parent.ptr == NULL)
        return nomem(e);
    if (tp == NULL && set_ext(ev, arena, RC_STR("traceparent"), parent, RC_CE_STRING, e) != 0)
        return -1;
    if (rc_event_find_ext(ev, RC_STR("traceid")) == NULL &&
        set_ext(ev, arena, RC_STR("traceid"), parent, RC_CE_STRING, e) != 0)
        return -1;
    if (rc_event_find_ext(ev, RC_STR("tracestate")) == NULL && p->tracestate.ptr != NULL &&
        set_ext(ev, arena, RC_STR("tracestate"), p->tracestate, RC_CE_STRING, e) != 0)
        return -1;
    return 0;
}

/* Everything the metadata changes, after the event has its envelope. */
static int apply_meta(const rc_dapr_publish_t *p, const rc_dapr_meta_t *m, const meta_opts_t *o,
                      rc_event_t *ev, rc_arena_t *arena, rc_dapr_error_t *e)
{
    if (override_attr(p, m, RC_DAPR_META_CE_ID, RC_CE_ATTR_ID, ev, e) != 0 ||
        override_attr(p, m, RC_DAPR_META_CE_SOURCE, RC_CE_ATTR_SOURCE, ev, e) != 0 ||
        override_attr(p, m, RC_DAPR_META_CE_TYPE, RC_CE_ATTR_TYPE, ev, e) != 0 ||
        override_attr(p, m, RC_DAPR_META_CE_SUBJECT, RC_CE_ATTR_SUBJECT, ev, e) != 0 ||
        override_ext(p, m, RC_DAPR_META_CE_TRACEID, RC_STR("traceid"), ev, arena, e) != 0 ||
        override_ext(p, m, RC_DAPR_META_CE_TRACEPARENT, RC_STR("traceparent"), ev, arena, e) != 0 ||
        override_ext(p, m, RC_DAPR_META_CE_TRACESTATE, RC_STR("tracestate"), ev, arena, e) != 0 ||
        override_ext(p, m, RC_DAPR_META_PARTITION_KEY, RC_STR("partitionkey"), ev, arena, e) != 0)
        return -1;
    if (o->ttl_s > 0) {
        char *buf = rc_arena_alloc(arena, 24, 1);
        if (buf == NULL)
            return nomem(e);
        size_t n = format_sec(p->now_ns / 1000000000 + o->ttl_s, buf);
        if (set_ext(ev, arena, RC_STR("expiration"), (rc_str_t){buf, n}, RC_CE_TIMESTAMP, e) != 0)
            return -1;
    }
    if (o->raw && set_ext(ev, arena, RC_STR("rawpayload"), RC_STR("true"), RC_CE_BOOLEAN, e) != 0)
        return -1;
    return 0;
}

int rc_dapr_envelope(rc_dapr_gen_t *g, const rc_dapr_publish_t *p, const rc_dapr_meta_t *m,
                     rc_str_t body, rc_arena_t *arena, rc_event_t *ev, rc_dapr_error_t *e)
{
    meta_opts_t o;
    if (meta_opts(p, m, &o, e) != 0)
        return -1;
    bool ce = !o.raw && p->content_type.ptr != NULL &&
              rc_ce_classify(p->content_type) == RC_CE_MODE_STRUCTURED;
    int rc = ce ? cloud_event(g, p, body, arena, ev, e) : plain(g, p, o.raw, body, arena, ev, e);
    if (rc == 0 && ce)
        rc = ce_extensions(g, p, ev, arena, e);
    return rc == 0 ? apply_meta(p, m, &o, ev, arena, e) : rc;
}
