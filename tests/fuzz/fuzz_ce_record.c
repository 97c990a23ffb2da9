/* Fuzz target: ring record decoding of arbitrary bytes (what a lossy reader may copy out of a
 * lapped ring). A record that decodes must be readable in full without leaving its bytes, which
 * ASan checks because the input is copied into a buffer of exactly its size. */
#include "tests/fuzz/fuzz_common.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void *buf = NULL;
    if (posix_memalign(&buf, 8, size ? size : 8) != 0)
        return 0;
    memcpy(buf, data, size);
    rc_record_view_t v;
    if (rc_record_decode(buf, size, &v) == 0) {
        static rc_ce_ext_t ext[RC_CE_EXT_MAX];
        rc_event_t ev;
        FUZZ_CHECK(rc_record_to_event(&v, &ev, ext, RC_CE_EXT_MAX) == 0);
        volatile unsigned sum = 0;
        for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++)
            for (size_t k = 0; k < ev.attr[i].len; k++)
                sum += (unsigned char)ev.attr[i].ptr[k];
        for (uint32_t i = 0; i < ev.ext_count; i++) {
            rc_ce_value_t val;
            FUZZ_CHECK(rc_record_get(&v, ev.ext[i].name, &val) == 0);
            for (size_t k = 0; k < val.value.len; k++)
                sum += (unsigned char)val.value.ptr[k];
        }
        for (size_t k = 0; k < ev.data.len; k++)
            sum += (unsigned char)ev.data.ptr[k];
        (void)sum;
        /* Re-encoding a decoded record reproduces it when its names are encodable. */
        if (rc_record_size(&ev) != 0)
            fuzz_check_record(&ev);
    }
    free(buf);
    return 0;
}
