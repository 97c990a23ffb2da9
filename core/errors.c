#include "core/errors.h"

#include <string.h>

const char *rc_strerror(int err)
{
    switch (err) {
#define RC_ERRNO_MSG(name, value, msg)                                                             \
    case RC_E##name:                                                                               \
        return msg;
        RC_ERRNO_MAP(RC_ERRNO_MSG)
#undef RC_ERRNO_MSG
    case 0:
        return "success";
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err); /* glibc's table is static and thread-safe for valid codes */
    return "unknown error";
}

const char *rc_err_name(int err)
{
    switch (err) {
#define RC_ERRNO_NAME(name, value, msg)                                                            \
    case RC_E##name:                                                                               \
        return "RC_E" #name;
        RC_ERRNO_MAP(RC_ERRNO_NAME)
#undef RC_ERRNO_NAME
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        const char *n = strerrorname_np(-err);
        if (n != NULL)
            return n;
    }
    return "UNKNOWN";
}
