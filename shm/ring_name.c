#include "shm/ring_name.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int rc_ring_name_for(const char *prefix, const char *ns, const char *name, char *buf, size_t cap)
{
    if (cap < RC_RING_NAME_MAX + 1 || strlen(prefix) + 18 > RC_RING_NAME_MAX)
        return -EINVAL;
    int n = snprintf(buf, cap, "%s.%s.%s", prefix, ns, name);
    if (n > 0 && n <= RC_RING_NAME_MAX)
        return 0;
    uint64_t h = 14695981039346656037ull;
    for (const char *p = ns; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h = (h ^ '/') * 1099511628211ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    snprintf(buf, cap, "%s.h%016llx", prefix, (unsigned long long)h);
    return 0;
}
