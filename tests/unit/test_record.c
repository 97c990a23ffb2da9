/* Unit tests of the ring record format (core/record.h): layout, lookups, exact round trips over
 * many generated events, and hostile bytes (truncated or corrupted records never read out of
 * bounds: each candidate is copied into a buffer of exactly its length, so ASan catches any
 * overread). */
#include "core/errors.h"
#include "core/record.h"
#include "core/validate.h"
#include "tests/test.h"
#include "tests/unit/event_gen.h"

#include <errno.h>
#include <stdlib.h>

static void *aligned(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 8, n ? n : 8) != 0)
        RC_TEST_FAIL("out of memory");
    return p;
}

static void test_layout(void)
{
    rc_ce_ext_t ext[4];
    rc_event_t ev;
    rc_event_init(&ev, ext, 4);
    ev.specversion = RC_STR("1.0");
    ev.id = RC_STR("abc");
    ev.source = RC_STR("/s");
    ev.type = RC_STR("com.example.t");
    ev.subject = RC_STR(""); /* present but empty: must stay distinguishable from absent */
    rc_event_set_ext(&ev, NULL, RC_STR("zeta"), RC_STR("1"), RC_CE_INTEGER);
    rc_event_set_ext(&ev, NULL, RC_STR("alpha"), RC_STR("true"), RC_CE_BOOLEAN);
    rc_event_set_ext(&ev, NULL, RC_STR("knativearrivaltime"), RC_STR("2018-04-05T17:31:00Z"),
                     RC_CE_TIMESTAMP);
    ev.data = RC_STR("{\"x\":1}");

    size_t size = rc_record_size(&ev);
    ASSERT_EQ(size % 8, 0);
    size_t expect = 88 + 3 * 16 + 8 + 3 + 3 + 2 + 13 + (4 + 1) + (5 + 4) + (18 + 20) + 7;
    ASSERT_EQ(size, (expect + 7) & ~(size_t)7);
    uint64_t *buf = aligned(size + 64);
    size_t len = 0;
    ASSERT_EQ(rc_record_encode(&ev, buf, size - 1, &len), -ENOBUFS);
    ASSERT_EQ(len, size);
    ASSERT_EQ(rc_record_encode(&ev, (char *)buf + 4, size + 8, &len), -EINVAL);
    ASSERT_EQ(rc_record_encode(&ev, buf, size, &len), 0);
    const rc_record_hdr_t *hdr = (const rc_record_hdr_t *)buf;
    ASSERT_EQ(hdr->magic, RC_RECORD_MAGIC);
    ASSERT_EQ(hdr->size, size);
    ASSERT_EQ(hdr->ext_count, 3);
    ASSERT_EQ(hdr->attr[RC_CE_ATTR_TIME].off, 0);
    ASSERT_NE(hdr->attr[RC_CE_ATTR_SUBJECT].off, 0);

    rc_record_view_t v;
    ASSERT_EQ(rc_record_decode(buf, size, &v), 0);
    ASSERT_EQ(rc_record_decode(buf, size - 8, &v), RC_EBAD_RECORD); /* shorter than its size */
    ASSERT_EQ(rc_record_decode(buf, size, &v), 0);
    rc_ce_value_t val;
    ASSERT_EQ(rc_record_get(&v, RC_STR("id"), &val), 0);
    ASSERT_MEM_STR(val.value.ptr, val.value.len, "abc");
    ASSERT_EQ(val.type, RC_CE_STRING);
    ASSERT_EQ(rc_record_get(&v, RC_STR("source"), &val), 0);
    ASSERT_EQ(val.type, RC_CE_URI_REF);
    ASSERT_EQ(rc_record_get(&v, RC_STR("subject"), &val), 0);
    ASSERT(val.value.ptr != NULL && val.value.len == 0);
    ASSERT_EQ(rc_record_get(&v, RC_STR("time"), &val), -ENOENT);
    ASSERT_EQ(rc_record_get(&v, RC_STR("alpha"), &val), 0);
    ASSERT_MEM_STR(val.value.ptr, val.value.len, "true");
    ASSERT_EQ(val.type, RC_CE_BOOLEAN);
    ASSERT_EQ(rc_record_get(&v, RC_STR("zeta"), &val), 0);
    ASSERT_EQ(val.type, RC_CE_INTEGER);
    ASSERT_EQ(rc_record_get(&v, RC_STR("knativearrivaltime"), &val), 0);
    ASSERT_EQ(val.type, RC_CE_TIMESTAMP);
    ASSERT_EQ(rc_record_get(&v, RC_STR("zet"), &val), -ENOENT);
    ASSERT_EQ(rc_record_get(&v, RC_STR("data"), &val), -ENOENT);
    rc_str_t d = rc_record_data(&v);
    ASSERT_MEM_STR(d.ptr, d.len, "{\"x\":1}");
    rc_str_t t = rc_record_attr(&v, RC_CE_ATTR_TYPE);
    ASSERT_MEM_STR(t.ptr, t.len, "com.example.t");
    ASSERT_EQ(rc_record_attr(&v, (rc_ce_attr_t)99).ptr, NULL);
    ASSERT_EQ(rc_record_ext_count(&v), 3);
    rc_ce_ext_t e0 = rc_record_ext_at(&v, 0);
    ASSERT_MEM_STR(e0.name.ptr, e0.name.len, "zeta"); /* event order kept */

    rc_ce_ext_t out_ext[3];
    rc_event_t back;
    ASSERT_EQ(rc_record_to_event(&v, &back, out_ext, 2), -ENOBUFS);
    ASSERT_EQ(rc_record_to_event(&v, &back, out_ext, 3), 0);
    ASSERT(rc_event_equal(&back, &ev));

    /* No data vs empty data. */
    ev.data = RC_STR_NULL;
    ASSERT_EQ(rc_record_encode(&ev, buf, size + 64, &len), 0);
    ASSERT_EQ(rc_record_decode(buf, len, &v), 0);
    ASSERT_EQ(rc_record_data(&v).ptr, NULL);
    ev.data = RC_STR("");
    ASSERT_EQ(rc_record_encode(&ev, buf, size + 64, &len), 0);
    ASSERT_EQ(rc_record_decode(buf, len, &v), 0);
    ASSERT(rc_record_data(&v).ptr != NULL && rc_record_data(&v).len == 0);

    /* What the layout cannot hold is refused up front. */
    char longname[300];
    memset(longname, 'a', sizeof(longname));
    ev.ext[0].name = (rc_str_t){ longname, 256 };
    ASSERT_EQ(rc_record_size(&ev), 0);
    ASSERT_EQ(rc_record_encode(&ev, buf, size + 64, &len), -EINVAL);
    ev.ext[0].name = RC_STR("");
    ASSERT_EQ(rc_record_size(&ev), 0);
    free(buf);

    ASSERT_EQ(rc_record_decode(NULL, 100, &v), RC_EBAD_RECORD);
    uint64_t zero[16] = { 0 };
    ASSERT_EQ(rc_record_decode(zero, sizeof(zero), &v), RC_EBAD_RECORD);
    ASSERT_EQ(rc_record_decode(zero, 8, &v), RC_EBAD_RECORD);
}

/* Every lookup answers the same as on the event itself. */
static void check_lookups(const rc_record_view_t *v, const rc_event_t *ev)
{
    for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++) {
        rc_ce_value_t a, b;
        rc_str_t name = rc_str(rc_ce_attr_name((rc_ce_attr_t)i));
        int ra = rc_record_get(v, name, &a), rb = rc_event_get(ev, name, &b);
        ASSERT_EQ(ra, rb);
        if (ra == 0) {
            ASSERT(rc_str_eq(a.value, b.value));
            ASSERT_EQ(a.type, b.type);
        }
    }
    for (uint32_t i = 0; i < ev->ext_count; i++) {
        rc_ce_key_t key;
        rc_ce_key_init(&key, ev->ext[i].name);
        rc_ce_value_t a;
        ASSERT_EQ(rc_record_get_key(v, &key, &a), 0);
        ASSERT(rc_str_eq(a.value, ev->ext[i].value));
        ASSERT_EQ(a.type, ev->ext[i].type);
    }
    rc_ce_value_t a;
    ASSERT_EQ(rc_record_get(v, RC_STR("notthere0"), &a), -ENOENT);
}

static void test_round_trips(void)
{
    gen_rng_t r = { 0x9e3779b97f4a7c15ULL };
    rc_arena_t a;
    rc_arena_init(&a, NULL, 0, 0);
    uint64_t *b1 = aligned(1 << 16), *b2 = aligned(1 << 16);
    rc_ce_ext_t ext[RC_CE_EXT_MAX];
    for (int iter = 0; iter < 20000; iter++) {
        rc_event_t ev, back;
        gen_event(&r, &a, &ev, 0);
        rc_ce_error_t err = { .index = -1 };
        if (rc_event_validate(&ev, &err) != 0)
            RC_TEST_FAIL("generated event %d invalid: %.*s: %s", iter, (int)err.field.len,
                         err.field.ptr, err.rule);
        size_t size = rc_record_size(&ev), l1, l2;
        ASSERT(size > 0 && size < (1 << 16));
        /* Encoding writes every byte: two buffers with different garbage end up identical. */
        memset(b1, 0xaa, size);
        memset(b2, 0x55, size);
        ASSERT_EQ(rc_record_encode(&ev, b1, 1 << 16, &l1), 0);
        ASSERT_EQ(rc_record_encode(&ev, b2, size, &l2), 0);
        ASSERT_EQ(l1, size);
        ASSERT(memcmp(b1, b2, size) == 0);
        rc_record_view_t v;
        ASSERT_EQ(rc_record_decode(b1, l1, &v), 0);
        ASSERT_EQ(rc_record_to_event(&v, &back, ext, RC_CE_EXT_MAX), 0);
        if (!rc_event_equal(&back, &ev))
            RC_TEST_FAIL("round trip %d differs", iter);
        ASSERT_EQ(rc_record_size(&back), size);
        check_lookups(&v, &ev);
        rc_arena_reset(&a);
    }
    free(b1);
    free(b2);
    rc_arena_close(&a);
}

/* Touches every byte a view hands out, so out-of-bounds views fault under ASan. */
static unsigned touch(const rc_record_view_t *v)
{
    unsigned sum = 0;
    rc_ce_ext_t ext[RC_CE_EXT_MAX];
    rc_event_t ev;
    if (rc_record_to_event(v, &ev, ext, RC_CE_EXT_MAX) != 0)
        return 0;
    for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++)
        for (size_t k = 0; k < ev.attr[i].len; k++)
            sum += (unsigned char)ev.attr[i].ptr[k];
    for (uint32_t i = 0; i < ev.ext_count; i++) {
        for (size_t k = 0; k < ev.ext[i].name.len; k++)
            sum += (unsigned char)ev.ext[i].name.ptr[k];
        for (size_t k = 0; k < ev.ext[i].value.len; k++)
            sum += (unsigned char)ev.ext[i].value.ptr[k];
        rc_ce_value_t val;
        rc_record_get(v, ev.ext[i].name, &val);
    }
    for (size_t k = 0; k < ev.data.len; k++)
        sum += (unsigned char)ev.data.ptr[k];
    return sum;
}

static void test_hostile(void)
{
    gen_rng_t r = { 42 };
    rc_arena_t a;
    rc_arena_init(&a, NULL, 0, 0);
    uint64_t *buf = aligned(1 << 16);
    unsigned sink = 0, accepted = 0, rejected = 0;
    for (int iter = 0; iter < 3000; iter++) {
        rc_event_t ev;
        gen_event(&r, &a, &ev, 0);
        size_t len;
        ASSERT_EQ(rc_record_encode(&ev, buf, 1 << 16, &len), 0);
        for (int m = 0; m < 8; m++) {
            /* Flip a few bytes, mostly in the header and tables where offsets live. */
            size_t n = len;
            if (m == 0)
                n = gen_below(&r, (uint32_t)len); /* truncated */
            uint64_t *copy = aligned(n);
            memcpy(copy, buf, n);
            for (int f = m == 0 ? 0 : 1 + (int)gen_below(&r, 3); f > 0; f--) {
                size_t span = gen_below(&r, 2) ? (n < 200 ? n : 200) : n;
                size_t at = gen_below(&r, (uint32_t)span);
                ((unsigned char *)copy)[at] ^= (unsigned char)(1u << gen_below(&r, 8));
            }
            rc_record_view_t v;
            if (rc_record_decode(copy, n, &v) == 0) {
                accepted++;
                sink += touch(&v);
            } else {
                rejected++;
            }
            free(copy);
        }
        rc_arena_reset(&a);
    }
    ASSERT_GT(rejected, 1000);
    ASSERT_GT(accepted, 1000); /* flips in string bytes leave a well-formed record */
    printf("hostile: %u accepted, %u rejected (sum %u)\n", accepted, rejected, sink);
    free(buf);
    rc_arena_close(&a);
}

static void test_many_extensions(void)
{
    rc_arena_t a;
    rc_arena_init(&a, NULL, 0, 0);
    rc_event_t ev;
    rc_event_init(&ev, NULL, 0);
    ev.specversion = RC_STR("1.0");
    ev.id = RC_STR("1");
    ev.source = RC_STR("s");
    ev.type = RC_STR("t");
    for (int i = 0; i < RC_CE_EXT_MAX; i++) {
        char name[16];
        size_t n = (size_t)snprintf(name, sizeof(name), "e%d", i * 7919 % 1000);
        ASSERT_EQ(rc_event_set_ext(&ev, &a, (rc_str_t){ rc_arena_strndup(&a, name, n), n },
                                   RC_STR("v"), RC_CE_STRING),
                  0);
    }
    size_t len;
    uint64_t *buf = aligned(rc_record_size(&ev));
    ASSERT_EQ(rc_record_encode(&ev, buf, rc_record_size(&ev), &len), 0);
    rc_record_view_t v;
    ASSERT_EQ(rc_record_decode(buf, len, &v), 0);
    check_lookups(&v, &ev);
    free(buf);
    rc_arena_close(&a);
}

int main(void)
{
    test_layout();
    test_round_trips();
    test_hostile();
    test_many_extensions();
    puts("test_record: ok");
    return 0;
}
