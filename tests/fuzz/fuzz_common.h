/* Shared oracles of the CloudEvents fuzz targets: whatever a decoder accepts must validate, must
 * survive the ring record round trip exactly, and must read back from its structured and binary
 * encodings. Any violation aborts (libFuzzer and the corpus replay both report it). */
#ifndef RC_TESTS_FUZZ_COMMON_H
#define RC_TESTS_FUZZ_COMMON_H

#include "core/codec_http.h"
#include "core/codec_json.h"
#include "core/errors.h"
#include "core/record.h"
#include "core/validate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz oracle failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static inline void fuzz_check_record(const rc_event_t *ev)
{
    size_t size = rc_record_size(ev), len;
    FUZZ_CHECK(size > 0);
    void *buf = NULL;
    FUZZ_CHECK(posix_memalign(&buf, 8, size) == 0);
    FUZZ_CHECK(rc_record_encode(ev, buf, size, &len) == 0 && len == size);
    rc_record_view_t v;
    FUZZ_CHECK(rc_record_decode(buf, len, &v) == 0);
    static rc_ce_ext_t ext[RC_CE_EXT_MAX];
    rc_event_t back;
    FUZZ_CHECK(rc_record_to_event(&v, &back, ext, RC_CE_EXT_MAX) == 0);
    FUZZ_CHECK(rc_event_equal(&back, ev));
    for (uint32_t i = 0; i < ev->ext_count; i++) {
        rc_ce_value_t val;
        FUZZ_CHECK(rc_record_get(&v, ev->ext[i].name, &val) == 0);
        /* A name may repeat only in records that never passed validation (fuzzed bytes). */
        if (rc_event_find_ext(ev, ev->ext[i].name) == &ev->ext[i] &&
            rc_event_validate(ev, NULL) == 0)
            FUZZ_CHECK(rc_str_eq(val.value, ev->ext[i].value));
    }
    free(buf);
}

/* Writes `ev` in structured mode and decodes it again: same attributes and data. */
static inline void fuzz_check_structured(const rc_event_t *ev, rc_arena_t *arena)
{
    size_t len;
    rc_ce_write_structured(ev, 0, NULL, 0, &len);
    char *buf = malloc(len ? len : 1);
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(rc_ce_write_structured(ev, 0, buf, len, &len) == 0);
    rc_event_t back;
    rc_ce_error_t err;
    FUZZ_CHECK(rc_ce_decode_structured((rc_str_t){ buf, len }, arena, &back, &err) == 0);
    for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++)
        FUZZ_CHECK(rc_str_eq(back.attr[i], ev->attr[i]));
    FUZZ_CHECK(back.ext_count == ev->ext_count);
    for (uint32_t i = 0; i < ev->ext_count; i++)
        FUZZ_CHECK(rc_str_eq(back.ext[i].value, ev->ext[i].value));
    FUZZ_CHECK(rc_str_eq(back.data, ev->data));
    free(buf);
}

/* Writes `ev` as binary-mode headers and decodes them again. */
static inline void fuzz_check_binary(const rc_event_t *ev, rc_arena_t *arena)
{
    size_t len;
    rc_ce_write_binary(ev, 0, NULL, 0, &len);
    char *buf = malloc(len ? len : 1);
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(rc_ce_write_binary(ev, 0, buf, len, &len) == 0);
    static rc_http_header_t h[RC_CE_EXT_MAX + RC_CE_ATTR_CORE_COUNT + 1];
    size_t n = 0;
    for (char *p = buf; p < buf + len;) {
        char *crlf = memmem(p, (size_t)(buf + len - p), "\r\n", 2);
        FUZZ_CHECK(crlf != NULL);
        char *colon = memchr(p, ':', (size_t)(crlf - p));
        FUZZ_CHECK(colon != NULL);
        h[n].name = (rc_str_t){ p, (size_t)(colon - p) };
        h[n].value = (rc_str_t){ colon + 2, (size_t)(crlf - colon - 2) };
        n++;
        p = crlf + 2;
    }
    rc_event_t back;
    rc_ce_error_t err;
    /* An empty body reads back as "no data", so compare data only when there is some. */
    FUZZ_CHECK(rc_ce_decode_binary(h, n, ev->data, arena, &back, &err) == 0);
    for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++)
        FUZZ_CHECK(rc_str_eq(back.attr[i], ev->attr[i]));
    FUZZ_CHECK(back.ext_count == ev->ext_count);
    if (ev->data.len > 0)
        FUZZ_CHECK(rc_str_eq(back.data, ev->data));
    free(buf);
}

#endif
