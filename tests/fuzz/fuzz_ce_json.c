/* Fuzz target: structured-mode and batch-mode JSON decoding. The first byte picks the mode (even:
 * structured, odd: batch), the rest is the request body. Accepted events go through the oracles
 * of fuzz_common.h. */
#include "tests/fuzz/fuzz_common.h"

#include <cjson/cJSON.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    rc_arena_t arena;
    rc_arena_init(&arena, NULL, 0, 64u << 20);
    rc_str_t body = { (const char *)data + 1, size - 1 };
    rc_ce_error_t err = { .index = -1 };
    rc_event_t *evs = NULL, one;
    size_t n = 0;
    int rc;
    if (data[0] % 2 == 0) {
        rc = rc_ce_decode_structured(body, &arena, &one, &err);
        if (rc == 0) {
            evs = &one;
            n = 1;
        }
    } else {
        rc = rc_ce_decode_batch(body, &arena, 1000, &evs, &n, &err);
    }
    if (rc != 0) {
        FUZZ_CHECK(n == 0);
        FUZZ_CHECK(err.rule != NULL || rc == -ENOMEM);
        char msg[512];
        rc_ce_error_format(&err, msg, sizeof(msg));
    }
    if (rc == 0) {
        /* Differential check: what the strict parser accepts, cJSON (an independent, laxer
         * parser) must read as JSON of the same shape. */
        cJSON *ref = cJSON_ParseWithLength(body.ptr, body.len);
        FUZZ_CHECK(ref != NULL);
        FUZZ_CHECK(data[0] % 2 == 0 ? cJSON_IsObject(ref) : cJSON_IsArray(ref));
        if (data[0] % 2 == 1)
            FUZZ_CHECK((size_t)cJSON_GetArraySize(ref) == n);
        cJSON_Delete(ref);
    }
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(rc_event_validate(&evs[i], NULL) == 0);
        fuzz_check_record(&evs[i]);
        fuzz_check_structured(&evs[i], &arena);
        fuzz_check_binary(&evs[i], &arena);
    }
    rc_arena_close(&arena);
    return 0;
}
