/* The ring record: one CloudEvent as the ring stores it (DESIGN.md, "Record format"). To the
 * ring a record is opaque bytes starting 8-byte aligned; this module owns what is inside.
 *
 * Layout (host byte order, all offsets relative to the record start):
 *
 *   rc_record_hdr_t   88 bytes: magic, size, version, flags, extension count, data span and
 *                     one (offset, length) span per core attribute at a fixed slot
 *                     (rc_ce_attr_t; offset 0 = absent)
 *   rc_record_ext_t   16 bytes per extension, in the event's order: name hash, name offset,
 *                     name length, value length, type (the value follows its name)
 *   uint16_t index    extension numbers sorted by (hash, name): lookups binary-search it;
 *                     padded to 8 bytes
 *   strings           core values, then each extension's name immediately followed by its value
 *   data              the event's data bytes, untouched
 *
 * Reading an attribute never parses anything: a core attribute is one span read, an extension a
 * hash probe. Encode and decode are exact inverses (rc_record_to_event(encode(ev)) equals ev,
 * extension order included). */
#ifndef RC_CORE_RECORD_H
#define RC_CORE_RECORD_H

#include "core/event.h"
#include "core/str.h"

#include <assert.h> /* static_assert: C11 and C++11 alike */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RC_RECORD_MAGIC 0x31454352u /* "RCE1" in little-endian memory */
#define RC_RECORD_VERSION 1
/** The ring record type of a CloudEvent record (the first type the ring leaves to its users,
 *  RC_REC_TYPE_USER in shm/ring.h; net/storage checks that they agree). */
#define RC_EVENT_RECORD_TYPE 16u
/** flags: the event has data (possibly empty). */
#define RC_RECORD_HAS_DATA 0x0001u

/** Where a value sits in the record. off == 0 means absent (0 is inside the header). */
typedef struct {
    uint32_t off;
    uint32_t len;
} rc_record_span_t;

/** Fixed record header. */
typedef struct {
    uint32_t magic;     /* RC_RECORD_MAGIC */
    uint32_t size;      /* total bytes of the record (what rc_record_size returned) */
    uint16_t version;   /* RC_RECORD_VERSION */
    uint16_t flags;     /* RC_RECORD_HAS_DATA */
    uint16_t ext_count; /* entries in the extension table */
    uint16_t reserved;  /* 0 */
    rc_record_span_t data;
    rc_record_span_t attr[RC_CE_ATTR_CORE_COUNT]; /* indexed by rc_ce_attr_t */
} rc_record_hdr_t;

/** One extension entry. The name is at name_off (name_len bytes), the value right after it. */
typedef struct {
    uint32_t hash;      /* rc_ce_name_hash(name) */
    uint32_t name_off;  /* offset of the name; the value starts at name_off + name_len */
    uint32_t value_len; /* bytes of the canonical value */
    uint8_t name_len;   /* 1..255 (valid names are 1..20) */
    uint8_t type;       /* rc_ce_type_t */
    uint16_t reserved;  /* 0 */
} rc_record_ext_t;

static_assert(sizeof(rc_record_span_t) == 8, "record span layout");
static_assert(sizeof(rc_record_hdr_t) == 88, "record header layout");
static_assert(offsetof(rc_record_hdr_t, data) == 16, "record header layout");
static_assert(offsetof(rc_record_hdr_t, attr) == 24, "record header layout");
static_assert(sizeof(rc_record_hdr_t) % 8 == 0, "extension table must stay 8-byte aligned");
static_assert(sizeof(rc_record_ext_t) == 16, "record extension entry layout");

/** A checked record: what rc_record_decode returns. Points into the record bytes (no copy);
 *  valid while they are. */
typedef struct {
    const uint8_t *base;
    const rc_record_hdr_t *hdr;
    const rc_record_ext_t *ext;
    const uint16_t *index;
    uint32_t size;
} rc_record_view_t;

/** Exact size in bytes of the record for `ev` (a multiple of 8), or 0 when the event cannot be
 *  encoded (a value over 4 GiB, an extension name over 255 bytes, more than 65535 extensions).
 *  No allocation. */
size_t rc_record_size(const rc_event_t *ev);

/** Encodes `ev` into `dst` (8-byte aligned, `cap` bytes: e.g. space just claimed in the ring)
 *  and sets `*len` to the record size. Writes every byte of [dst, dst + *len) (padding zeroed),
 *  so the ring can publish it as is. The event should be validated first; the encoder checks
 *  only what the layout needs. Returns 0, -ENOBUFS when `cap` is too small, -EINVAL when the
 *  event cannot be encoded (see rc_record_size) or `dst` is misaligned. No allocation. */
int rc_record_encode(const rc_event_t *ev, void *dst, size_t cap, size_t *len);

/** Checks `len` bytes at `rec` (8-byte aligned) as a record: magic, version, sizes, every span in
 *  bounds, index a permutation. Use on bytes that may be torn or hostile (lossy readers copy
 *  first, then decode). Returns 0 and fills `view`, or RC_EBAD_RECORD. No allocation. */
int rc_record_decode(const void *rec, size_t len, rc_record_view_t *view);

/** Looks up attribute `name` (core or extension). Returns 0 and `out`, or -ENOENT. */
int rc_record_get(const rc_record_view_t *view, rc_str_t name, rc_ce_value_t *out);

/** As rc_record_get with a key compiled by rc_ce_key_init: the fast path for filters. */
int rc_record_get_key(const rc_record_view_t *view, const rc_ce_key_t *key, rc_ce_value_t *out);

/** Core attribute `attr` (absent: ptr NULL). */
rc_str_t rc_record_attr(const rc_record_view_t *view, rc_ce_attr_t attr);

/** The data bytes (ptr NULL when the event has none). */
rc_str_t rc_record_data(const rc_record_view_t *view);

/** Number of extensions, and extension `i` (0-based, event order). */
uint32_t rc_record_ext_count(const rc_record_view_t *view);
rc_ce_ext_t rc_record_ext_at(const rc_record_view_t *view, uint32_t i);

/** Rebuilds the event: views into the record bytes, the extension table in `ext` (`cap`
 *  entries, caller-owned, e.g. RC_CE_EXT_MAX on the stack). Returns 0 or -ENOBUFS when the
 *  record has more than `cap` extensions. No allocation. */
int rc_record_to_event(const rc_record_view_t *view, rc_event_t *ev, rc_ce_ext_t *ext,
                       uint32_t cap);

#ifdef __cplusplus
}
#endif

#endif
