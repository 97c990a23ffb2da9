/* Fuzz target: ISO-8601 durations, Retry-After values, spec.delivery fields and the status of a
 * Dapr app's answer. The first byte picks the parser (0xf0 and above: the Dapr status); the rest
 * is the text. Checks that accepted durations round-trip through rc_duration_format and that
 * waits stay within their caps. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/delivery_policy.h"
#include "core/duration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char err[256];
    int64_t ns;
    if (data[0] >= 0xf0) {
        /* A copy of exactly `len` bytes, so a read past the end is caught. */
        char *body = malloc(len ? len : 1);
        if (body == NULL)
            return 0;
        memcpy(body, text, len);
        rc_dapr_status_t st = rc_dapr_app_status(body, len, data[0] & 1);
        rc_dapr_outcome_t o = rc_dapr_classify(200, body, len, data[0] & 1);
        free(body);
        if (st > RC_DAPR_STATUS_UNKNOWN || o > RC_DAPR_NOT_FOUND)
            abort();
        return 0;
    }
    switch (data[0] % 4) {
    case 0:
        if (rc_duration_parse(text, len, &ns, err, sizeof(err)) == 0) {
            char buf[RC_DURATION_STR_MAX];
            int n = rc_duration_format(ns, buf, sizeof(buf));
            int64_t back = -1;
            if (ns < 0 || n <= 0 || rc_duration_parse(buf, (size_t)n, &back, NULL, 0) != 0 ||
                back != ns)
                abort();
        } else if (strlen(err) == 0) {
            abort(); /* every rejection explains itself */
        }
        break;
    case 1:
        if (rc_retry_after_parse(text, len, INT64_C(1700000000) * 1000000000, &ns) == 0 && ns < 0)
            abort();
        break;
    case 2: {
        static const char *const fields[] = {"retry",      "backoffPolicy",     "backoffDelay",
                                             "backoffMax", "timeout",           "retryAfterMax",
                                             "format",     "deadLetterSink.uri"};
        rc_delivery_t d;
        rc_delivery_init(&d);
        const char *field = fields[len > 0 ? (uint8_t)text[0] % 8 : 0];
        if (rc_delivery_set(&d, field, text, len, err, sizeof(err)) != 0 && strlen(err) == 0)
            abort();
        break;
    }
    default: {
        /* Backoff with fuzzed parameters: never negative, never above the cap. */
        if (len < 21)
            return 0;
        rc_delivery_t d;
        rc_delivery_init(&d);
        uint64_t a, b;
        uint32_t i;
        memcpy(&a, text, 8);
        memcpy(&b, text + 8, 8);
        memcpy(&i, text + 16, 4);
        d.backoff_policy = (text[20] & 1) ? RC_BACKOFF_LINEAR : RC_BACKOFF_EXPONENTIAL;
        d.backoff_delay_ns = (int64_t)(a >> 1);
        d.backoff_max_ns = (int64_t)(b >> 2) + 1;
        int64_t w = rc_delivery_backoff_ns(&d, i);
        if (w < 0 || w > d.backoff_max_ns)
            abort();
        int64_t r = rc_delivery_wait_ns(&d, i, 429, (int64_t)(a >> 2));
        if (r < w || (r > w && r > d.retry_after_max_ns))
            abort();
        break;
    }
    }
    return 0;
}
