#include "core/event.h"

#include "core/errors.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

static const char *const attr_names[RC_CE_ATTR_CORE_COUNT] = {
    "specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject", "time",
};

static const rc_ce_type_t attr_types[RC_CE_ATTR_CORE_COUNT] = {
    RC_CE_STRING, RC_CE_STRING, RC_CE_URI_REF, RC_CE_STRING,
    RC_CE_STRING, RC_CE_URI,    RC_CE_STRING,  RC_CE_TIMESTAMP,
};

static const char *const type_names[RC_CE_TYPE_COUNT] = {
    "String", "Integer", "Boolean", "Binary", "URI", "URI-reference", "Timestamp",
};

static const rc_str_t ttl_name = RC_STR("knativebrokerttl");
static const rc_str_t arrival_name = RC_STR("knativearrivaltime");

void rc_event_init(rc_event_t *ev, rc_ce_ext_t *ext, uint32_t cap)
{
    memset(ev, 0, sizeof(*ev));
    ev->ext = ext;
    ev->ext_cap = ext ? cap : 0;
}

int rc_ce_attr_index(rc_str_t name)
{
    /* Dispatch on length first: the eight names have distinct (length, first byte) pairs except
     * "source"/"subject" vs "specversion"/"type"/"time", which the memcmp settles. */
    int idx;
    switch (name.len) {
    case 2:
        idx = RC_CE_ATTR_ID;
        break;
    case 4:
        idx = name.ptr[1] == 'y' ? RC_CE_ATTR_TYPE : RC_CE_ATTR_TIME;
        break;
    case 6:
        idx = RC_CE_ATTR_SOURCE;
        break;
    case 7:
        idx = RC_CE_ATTR_SUBJECT;
        break;
    case 10:
        idx = RC_CE_ATTR_DATASCHEMA;
        break;
    case 11:
        idx = RC_CE_ATTR_SPECVERSION;
        break;
    case 15:
        idx = RC_CE_ATTR_DATACONTENTTYPE;
        break;
    default:
        return -1;
    }
    return memcmp(name.ptr, attr_names[idx], name.len) == 0 ? idx : -1;
}

const char *rc_ce_attr_name(rc_ce_attr_t attr)
{
    return (unsigned)attr < RC_CE_ATTR_CORE_COUNT ? attr_names[attr] : "unknown";
}

rc_ce_type_t rc_ce_attr_type(rc_ce_attr_t attr)
{
    return (unsigned)attr < RC_CE_ATTR_CORE_COUNT ? attr_types[attr] : RC_CE_STRING;
}

const char *rc_ce_type_name(rc_ce_type_t type)
{
    return (unsigned)type < RC_CE_TYPE_COUNT ? type_names[type] : "unknown";
}

void rc_ce_key_init(rc_ce_key_t *key, rc_str_t name)
{
    key->name = name;
    key->core = rc_ce_attr_index(name);
    key->hash = rc_ce_name_hash(name);
}

static int find_ext_index(const rc_event_t *ev, rc_str_t name)
{
    for (uint32_t i = 0; i < ev->ext_count; i++)
        if (rc_str_eq(ev->ext[i].name, name))
            return (int)i;
    return -1;
}

const rc_ce_ext_t *rc_event_find_ext(const rc_event_t *ev, rc_str_t name)
{
    int i = find_ext_index(ev, name);
    return i < 0 ? NULL : &ev->ext[i];
}

int rc_event_set_ext(rc_event_t *ev, rc_arena_t *arena, rc_str_t name, rc_str_t value,
                     rc_ce_type_t type)
{
    int i = find_ext_index(ev, name);
    if (i >= 0) {
        ev->ext[i].value = value;
        ev->ext[i].type = type;
        return 0;
    }
    if (ev->ext_count >= RC_CE_EXT_MAX)
        return -E2BIG;
    if (ev->ext_count == ev->ext_cap) {
        if (arena == NULL)
            return -ENOMEM;
        uint32_t cap = ev->ext_cap ? ev->ext_cap * 2 : 4;
        if (cap > RC_CE_EXT_MAX)
            cap = RC_CE_EXT_MAX;
        rc_ce_ext_t *ext = rc_arena_alloc(arena, cap * sizeof(*ext), _Alignof(rc_ce_ext_t));
        if (ext == NULL)
            return -ENOMEM;
        if (ev->ext_count)
            memcpy(ext, ev->ext, ev->ext_count * sizeof(*ext));
        ev->ext = ext;
        ev->ext_cap = cap;
    }
    ev->ext[ev->ext_count++] = (rc_ce_ext_t){ name, value, type };
    return 0;
}

bool rc_event_remove_ext(rc_event_t *ev, rc_str_t name)
{
    int i = find_ext_index(ev, name);
    if (i < 0)
        return false;
    memmove(&ev->ext[i], &ev->ext[i + 1], (ev->ext_count - (uint32_t)i - 1) * sizeof(ev->ext[0]));
    ev->ext_count--;
    return true;
}

int rc_event_get_key(const rc_event_t *ev, const rc_ce_key_t *key, rc_ce_value_t *out)
{
    if (key->core >= 0) {
        rc_str_t v = ev->attr[key->core];
        if (v.ptr == NULL)
            return -ENOENT;
        out->value = v;
        out->type = attr_types[key->core];
        return 0;
    }
    int i = find_ext_index(ev, key->name);
    if (i < 0)
        return -ENOENT;
    out->value = ev->ext[i].value;
    out->type = ev->ext[i].type;
    return 0;
}

int rc_event_get(const rc_event_t *ev, rc_str_t name, rc_ce_value_t *out)
{
    rc_ce_key_t key;
    key.name = name;
    key.core = rc_ce_attr_index(name);
    key.hash = 0;
    return rc_event_get_key(ev, &key, out);
}

bool rc_event_equal(const rc_event_t *a, const rc_event_t *b)
{
    for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++)
        if (!rc_str_eq(a->attr[i], b->attr[i]))
            return false;
    if (a->ext_count != b->ext_count || !rc_str_eq(a->data, b->data))
        return false;
    for (uint32_t i = 0; i < a->ext_count; i++) {
        if (!rc_str_eq(a->ext[i].name, b->ext[i].name) ||
            !rc_str_eq(a->ext[i].value, b->ext[i].value) || a->ext[i].type != b->ext[i].type)
            return false;
    }
    return true;
}

static int copy_str(rc_str_t *s, rc_arena_t *arena)
{
    if (s->ptr == NULL)
        return 0;
    char *p = rc_arena_alloc(arena, s->len ? s->len : 1, 1);
    if (p == NULL)
        return -ENOMEM;
    if (s->len)
        memcpy(p, s->ptr, s->len);
    s->ptr = p;
    return 0;
}

int rc_event_copy(rc_event_t *dst, const rc_event_t *src, rc_arena_t *arena)
{
    rc_event_t tmp = *src;
    if (tmp.ext_count) {
        rc_ce_ext_t *ext = rc_arena_alloc(arena, tmp.ext_count * sizeof(*ext),
                                          _Alignof(rc_ce_ext_t));
        if (ext == NULL)
            return -ENOMEM;
        memcpy(ext, src->ext, tmp.ext_count * sizeof(*ext));
        tmp.ext = ext;
        tmp.ext_cap = tmp.ext_count;
    } else {
        tmp.ext = NULL;
        tmp.ext_cap = 0;
    }
    for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++)
        if (copy_str(&tmp.attr[i], arena) != 0)
            return -ENOMEM;
    for (uint32_t i = 0; i < tmp.ext_count; i++)
        if (copy_str(&tmp.ext[i].name, arena) != 0 || copy_str(&tmp.ext[i].value, arena) != 0)
            return -ENOMEM;
    if (copy_str(&tmp.data, arena) != 0)
        return -ENOMEM;
    *dst = tmp;
    return 0;
}

int rc_ce_int_parse(rc_str_t s, int32_t *out)
{
    if (s.ptr == NULL || s.len == 0 || s.len > 11)
        return -EINVAL;
    size_t i = 0;
    bool neg = s.ptr[0] == '-';
    if (neg)
        i = 1;
    if (i == s.len)
        return -EINVAL;
    if (s.ptr[i] == '0' && s.len - i > 1)
        return -EINVAL; /* no leading zeros */
    if (neg && s.ptr[i] == '0')
        return -EINVAL; /* "-0" is not canonical */
    int64_t v = 0;
    for (; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return -EINVAL;
        v = v * 10 + (s.ptr[i] - '0');
    }
    if (neg)
        v = -v;
    if (v < INT32_MIN || v > INT32_MAX)
        return -EINVAL;
    *out = (int32_t)v;
    return 0;
}

size_t rc_ce_int_format(int32_t v, char *buf)
{
    char tmp[12];
    size_t n = 0, len = 0;
    int64_t x = v;
    if (x < 0) {
        buf[len++] = '-';
        x = -x;
    }
    do {
        tmp[n++] = (char)('0' + x % 10);
        x /= 10;
    } while (x != 0);
    while (n)
        buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}

static void put_digits(char *p, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

size_t rc_ce_time_format(int64_t unix_ns, char *buf)
{
    int64_t sec = unix_ns / 1000000000;
    int64_t ns = unix_ns % 1000000000;
    if (ns < 0) {
        ns += 1000000000;
        sec--;
    }
    /* The ingress stamps many events within one second: reuse the formatted date and time of
     * the previous call on this thread and write only the nanoseconds. */
    static _Thread_local int64_t cached_sec = INT64_MIN;
    static _Thread_local char cached[20];
    if (sec == cached_sec) {
        memcpy(buf, cached, 19);
        buf[19] = '.';
        put_digits(buf + 20, (unsigned)ns, 9);
        buf[29] = 'Z';
        buf[30] = '\0';
        return 30;
    }
    int64_t days = sec / 86400, rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    /* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm): no libc time zone
     * machinery (gmtime_r takes a lock) on the ingress path. */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t year = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned day = doy - (153 * mp + 2) / 5 + 1;
    unsigned mon = mp < 10 ? mp + 3 : mp - 9;
    year += mon <= 2;
    if (year < 0 || year > 9999)
        year = 0; /* outside RFC 3339; int64 nanoseconds cannot get there anyway */
    char *p = buf;
    put_digits(p, (unsigned)year, 4);
    p[4] = '-';
    put_digits(p + 5, mon, 2);
    p[7] = '-';
    put_digits(p + 8, day, 2);
    p[10] = 'T';
    put_digits(p + 11, (unsigned)(rem / 3600), 2);
    p[13] = ':';
    put_digits(p + 14, (unsigned)(rem / 60 % 60), 2);
    p[16] = ':';
    put_digits(p + 17, (unsigned)(rem % 60), 2);
    memcpy(cached, p, 19);
    cached_sec = sec;
    p[19] = '.';
    put_digits(p + 20, (unsigned)ns, 9);
    p[29] = 'Z';
    p[30] = '\0';
    return 30;
}

int rc_event_ttl_get(const rc_event_t *ev, int32_t *ttl)
{
    const rc_ce_ext_t *e = rc_event_find_ext(ev, ttl_name);
    if (e == NULL)
        return -ENOENT;
    /* Binary mode carries it as a string; both forms must read as a canonical integer. */
    if (e->type != RC_CE_INTEGER && e->type != RC_CE_STRING)
        return RC_EINVALID_EVENT;
    if (rc_ce_int_parse(e->value, ttl) != 0)
        return RC_EINVALID_EVENT;
    return 0;
}

static int set_ttl(rc_event_t *ev, rc_arena_t *arena, int32_t ttl)
{
    char tmp[12];
    size_t n = rc_ce_int_format(ttl, tmp);
    char *p = rc_arena_strndup(arena, tmp, n);
    if (p == NULL)
        return -ENOMEM;
    return rc_event_set_ext(ev, arena, ttl_name, (rc_str_t){ p, n }, RC_CE_INTEGER);
}

int rc_event_ttl_ingress(rc_event_t *ev, rc_arena_t *arena, rc_ce_error_t *err)
{
    int32_t ttl;
    int rc = rc_event_ttl_get(ev, &ttl);
    if (rc == -ENOENT)
        return rc_event_set_ext(ev, arena, ttl_name, RC_STR("255"), RC_CE_INTEGER);
    if (rc != 0) {
        if (err) {
            err->field = ttl_name;
            err->rule = "must be an integer";
        }
        return RC_EINVALID_EVENT;
    }
    if (ttl <= 0) {
        if (err) {
            err->field = ttl_name;
            err->rule = "must be greater than 0 (broker TTL expired)";
        }
        return RC_ETTL_EXPIRED;
    }
    /* The value is already canonical; only its type changes (a binary-mode String). */
    int i = find_ext_index(ev, ttl_name);
    ev->ext[i].type = RC_CE_INTEGER;
    return 0;
}

int rc_event_ttl_reply(rc_event_t *reply, rc_arena_t *arena, int32_t parent_ttl)
{
    if (parent_ttl <= 1)
        return RC_ETTL_EXPIRED;
    return set_ttl(reply, arena, parent_ttl - 1);
}

int rc_event_stamp_arrival(rc_event_t *ev, rc_arena_t *arena, int64_t unix_ns)
{
    char *p = rc_arena_alloc(arena, RC_CE_TIME_BUF, 1);
    if (p == NULL)
        return -ENOMEM;
    size_t n = rc_ce_time_format(unix_ns, p);
    return rc_event_set_ext(ev, arena, arrival_name, (rc_str_t){ p, n }, RC_CE_TIMESTAMP);
}
