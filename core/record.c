#include "core/record.h"

#include "core/errors.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define HDR_SIZE sizeof(rc_record_hdr_t)

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static size_t index_bytes(uint32_t ext_count)
{
    return align8((size_t)ext_count * sizeof(uint16_t));
}

/* Byte offset where the strings start for `ext_count` extensions. */
static size_t strings_start(uint32_t ext_count)
{
    return HDR_SIZE + (size_t)ext_count * sizeof(rc_record_ext_t) + index_bytes(ext_count);
}

size_t rc_record_size(const rc_event_t *ev)
{
    if (ev->ext_count > RC_CE_EXT_MAX)
        return 0;
    uint64_t n = strings_start(ev->ext_count);
    for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++)
        if (ev->attr[i].ptr != NULL)
            n += ev->attr[i].len;
    for (uint32_t i = 0; i < ev->ext_count; i++) {
        if (ev->ext[i].name.len == 0 || ev->ext[i].name.len > 255 ||
            ev->ext[i].value.len > UINT32_MAX)
            return 0;
        n += ev->ext[i].name.len + ev->ext[i].value.len;
    }
    if (ev->data.ptr != NULL)
        n += ev->data.len;
    n = (n + 7) & ~(uint64_t)7;
    return n > UINT32_MAX ? 0 : (size_t)n;
}

/* Orders extension numbers by (hash, name): the order lookups binary-search. */
static bool ext_before(const rc_event_t *ev, const uint32_t *hash, uint16_t a, uint16_t b)
{
    if (hash[a] != hash[b])
        return hash[a] < hash[b];
    rc_str_t x = ev->ext[a].name, y = ev->ext[b].name;
    int c = memcmp(x.ptr, y.ptr, x.len < y.len ? x.len : y.len);
    return c != 0 ? c < 0 : x.len < y.len;
}

int rc_record_encode(const rc_event_t *ev, void *dst, size_t cap, size_t *len)
{
    size_t size = rc_record_size(ev);
    *len = size;
    if (size == 0 || ((uintptr_t)dst & 7) != 0)
        return -EINVAL;
    if (cap < size)
        return -ENOBUFS;

    uint8_t *base = dst;
    rc_record_hdr_t *hdr = dst;
    memset(hdr, 0, HDR_SIZE);
    hdr->magic = RC_RECORD_MAGIC;
    hdr->size = (uint32_t)size;
    hdr->version = RC_RECORD_VERSION;
    hdr->ext_count = (uint16_t)ev->ext_count;

    size_t off = strings_start(ev->ext_count);
    for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++) {
        rc_str_t v = ev->attr[i];
        if (v.ptr == NULL)
            continue;
        hdr->attr[i].off = (uint32_t)off;
        hdr->attr[i].len = (uint32_t)v.len;
        if (v.len)
            memcpy(base + off, v.ptr, v.len);
        off += v.len;
    }

    rc_record_ext_t *tab = (rc_record_ext_t *)(base + HDR_SIZE);
    uint16_t *index = (uint16_t *)(tab + ev->ext_count);
    uint32_t hash[RC_CE_EXT_MAX];
    for (uint32_t i = 0; i < ev->ext_count; i++) {
        const rc_ce_ext_t *e = &ev->ext[i];
        hash[i] = rc_ce_name_hash(e->name);
        tab[i] = (rc_record_ext_t){
            .hash = hash[i],
            .name_off = (uint32_t)off,
            .value_len = (uint32_t)e->value.len,
            .name_len = (uint8_t)e->name.len,
            .type = (uint8_t)e->type,
            .reserved = 0,
        };
        memcpy(base + off, e->name.ptr, e->name.len);
        off += e->name.len;
        if (e->value.len)
            memcpy(base + off, e->value.ptr, e->value.len);
        off += e->value.len;
    }
    /* Insertion sort: extension counts are small and the input is often nearly sorted. */
    for (uint32_t i = 0; i < ev->ext_count; i++) {
        uint16_t x = (uint16_t)i;
        uint32_t j = i;
        while (j > 0 && ext_before(ev, hash, x, index[j - 1])) {
            index[j] = index[j - 1];
            j--;
        }
        index[j] = x;
    }
    size_t idx_end = (size_t)((uint8_t *)(index + ev->ext_count) - base);
    memset(base + idx_end, 0, strings_start(ev->ext_count) - idx_end);

    if (ev->data.ptr != NULL) {
        hdr->flags = RC_RECORD_HAS_DATA;
        hdr->data.off = (uint32_t)off;
        hdr->data.len = (uint32_t)ev->data.len;
        if (ev->data.len)
            memcpy(base + off, ev->data.ptr, ev->data.len);
        off += ev->data.len;
    }
    memset(base + off, 0, size - off);
    return 0;
}

static bool span_ok(rc_record_span_t s, size_t start, size_t size)
{
    if (s.off == 0)
        return s.len == 0;
    return s.off >= start && (uint64_t)s.off + s.len <= size;
}

int rc_record_decode(const void *rec, size_t len, rc_record_view_t *view)
{
    const uint8_t *base = rec;
    if (rec == NULL || ((uintptr_t)rec & 7) != 0 || len < HDR_SIZE)
        return RC_EBAD_RECORD;
    const rc_record_hdr_t *hdr = rec;
    if (hdr->magic != RC_RECORD_MAGIC || hdr->version != RC_RECORD_VERSION ||
        hdr->size > len || hdr->size < HDR_SIZE || hdr->ext_count > RC_CE_EXT_MAX ||
        (hdr->flags & ~RC_RECORD_HAS_DATA) != 0)
        return RC_EBAD_RECORD;
    size_t size = hdr->size, start = strings_start(hdr->ext_count);
    if (start > size)
        return RC_EBAD_RECORD;
    for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++)
        if (!span_ok(hdr->attr[i], start, size))
            return RC_EBAD_RECORD;
    if (!span_ok(hdr->data, start, size) ||
        ((hdr->flags & RC_RECORD_HAS_DATA) == 0 && hdr->data.off != 0) ||
        ((hdr->flags & RC_RECORD_HAS_DATA) != 0 && hdr->data.off == 0))
        return RC_EBAD_RECORD;
    const rc_record_ext_t *tab = (const rc_record_ext_t *)(base + HDR_SIZE);
    const uint16_t *index = (const uint16_t *)(tab + hdr->ext_count);
    uint64_t seen[(RC_CE_EXT_MAX + 63) / 64] = { 0 };
    for (uint32_t i = 0; i < hdr->ext_count; i++) {
        const rc_record_ext_t *e = &tab[i];
        if (e->name_len == 0 || e->name_off < start || e->type >= RC_CE_TYPE_COUNT ||
            (uint64_t)e->name_off + e->name_len + e->value_len > size)
            return RC_EBAD_RECORD;
        /* Lookups trust the stored hash; a torn or hostile record must not make a present name
         * unfindable. Names are short, so this costs little next to the copy that preceded. */
        rc_str_t name = { (const char *)base + e->name_off, e->name_len };
        if (rc_ce_name_hash(name) != e->hash)
            return RC_EBAD_RECORD;
        uint16_t k = index[i];
        if (k >= hdr->ext_count || (seen[k / 64] >> (k % 64) & 1) != 0)
            return RC_EBAD_RECORD;
        seen[k / 64] |= (uint64_t)1 << (k % 64);
        if (i > 0 && tab[index[i - 1]].hash > tab[k].hash)
            return RC_EBAD_RECORD;
    }
    view->base = base;
    view->hdr = hdr;
    view->ext = tab;
    view->index = index;
    view->size = hdr->size;
    return 0;
}

static rc_str_t span_str(const rc_record_view_t *v, rc_record_span_t s)
{
    if (s.off == 0)
        return RC_STR_NULL;
    return (rc_str_t){ (const char *)v->base + s.off, s.len };
}

rc_str_t rc_record_attr(const rc_record_view_t *view, rc_ce_attr_t attr)
{
    if ((unsigned)attr >= RC_CE_ATTR_CORE_COUNT)
        return RC_STR_NULL;
    return span_str(view, view->hdr->attr[attr]);
}

rc_str_t rc_record_data(const rc_record_view_t *view)
{
    return span_str(view, view->hdr->data);
}

uint32_t rc_record_ext_count(const rc_record_view_t *view)
{
    return view->hdr->ext_count;
}

rc_ce_ext_t rc_record_ext_at(const rc_record_view_t *view, uint32_t i)
{
    const rc_record_ext_t *e = &view->ext[i];
    const char *name = (const char *)view->base + e->name_off;
    return (rc_ce_ext_t){
        .name = { name, e->name_len },
        .value = { name + e->name_len, e->value_len },
        .type = (rc_ce_type_t)e->type,
    };
}

int rc_record_get_key(const rc_record_view_t *view, const rc_ce_key_t *key, rc_ce_value_t *out)
{
    if (key->core >= 0) {
        rc_record_span_t s = view->hdr->attr[key->core];
        if (s.off == 0)
            return -ENOENT;
        out->value = (rc_str_t){ (const char *)view->base + s.off, s.len };
        out->type = rc_ce_attr_type((rc_ce_attr_t)key->core);
        return 0;
    }
    /* Lower bound of the key's hash in the sorted index, then the (usually single) entry with
     * that hash whose name matches. */
    uint32_t lo = 0, hi = view->hdr->ext_count;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (view->ext[view->index[mid]].hash < key->hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < view->hdr->ext_count; lo++) {
        const rc_record_ext_t *e = &view->ext[view->index[lo]];
        if (e->hash != key->hash)
            break;
        const char *name = (const char *)view->base + e->name_off;
        if (e->name_len == key->name.len && memcmp(name, key->name.ptr, key->name.len) == 0) {
            out->value = (rc_str_t){ name + e->name_len, e->value_len };
            out->type = (rc_ce_type_t)e->type;
            return 0;
        }
    }
    return -ENOENT;
}

int rc_record_get(const rc_record_view_t *view, rc_str_t name, rc_ce_value_t *out)
{
    rc_ce_key_t key;
    rc_ce_key_init(&key, name);
    return rc_record_get_key(view, &key, out);
}

int rc_record_to_event(const rc_record_view_t *view, rc_event_t *ev, rc_ce_ext_t *ext,
                       uint32_t cap)
{
    uint32_t n = view->hdr->ext_count;
    if (n > cap)
        return -ENOBUFS;
    rc_event_init(ev, ext, cap);
    for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++)
        ev->attr[i] = span_str(view, view->hdr->attr[i]);
    for (uint32_t i = 0; i < n; i++)
        ext[i] = rc_record_ext_at(view, i);
    ev->ext_count = n;
    ev->data = span_str(view, view->hdr->data);
    return 0;
}
