/* Fuzz target: binary-mode decoding. The input is header lines "name: value\n" up to an empty
 * line, then the body (a missing empty line means no body). Accepted events go through the
 * oracles of fuzz_common.h, plus the ingress stamps. */
#include "tests/fuzz/fuzz_common.h"

#include <errno.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rc_http_header_t h[512];
    const char *p = (const char *)data, *end = p + size;
    size_t n = 0;
    rc_str_t body = RC_STR_NULL;
    while (p < end && n < 512) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le == p) {
            body = (rc_str_t){ nl + 1, (size_t)(end - nl - 1) };
            break;
        }
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon != NULL) {
            const char *v = colon + 1;
            while (v < le && *v == ' ')
                v++;
            h[n].name = (rc_str_t){ p, (size_t)(colon - p) };
            h[n].value = (rc_str_t){ v, (size_t)(le - v) };
            n++;
        }
        p = nl ? nl + 1 : end;
    }
    char scratch[2048];
    rc_arena_t arena;
    rc_arena_init(&arena, scratch, sizeof(scratch), 64u << 20);
    rc_event_t *evs = NULL;
    size_t ne = 0;
    rc_ce_error_t err;
    int rc = rc_ce_decode_request(h, n, body, &arena, 100, &evs, &ne, &err);
    if (rc == 0) {
        for (size_t i = 0; i < ne; i++) {
            FUZZ_CHECK(rc_event_validate(&evs[i], NULL) == 0);
            fuzz_check_record(&evs[i]);
            fuzz_check_binary(&evs[i], &arena);
            fuzz_check_structured(&evs[i], &arena);
            int trc = rc_event_ttl_ingress(&evs[i], &arena, &err);
            FUZZ_CHECK(trc == 0 || trc == RC_ETTL_EXPIRED || trc == RC_EINVALID_EVENT);
            if (trc == 0) {
                FUZZ_CHECK(rc_event_stamp_arrival(&evs[i], &arena, 1700000000123456789LL) == 0);
                FUZZ_CHECK(rc_event_validate(&evs[i], NULL) == 0);
                fuzz_check_record(&evs[i]);
            }
        }
    } else {
        FUZZ_CHECK(ne == 0 && evs == NULL);
    }
    rc_arena_close(&arena);
    return 0;
}
