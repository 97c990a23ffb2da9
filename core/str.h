/* A borrowed byte string: pointer + length, not NUL-terminated. Events reference bytes in the
 * request buffer, in an arena or in a ring record through these views; nothing is copied. */
#ifndef RC_CORE_STR_H
#define RC_CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A view of `len` bytes at `ptr`. `ptr == NULL` means "absent"; a present empty value has a
 *  non-NULL `ptr` and `len == 0`. The owner of the bytes decides the lifetime. */
typedef struct {
    const char *ptr;
    size_t len;
} rc_str_t;

/** View of a string literal (compile-time length). */
#define RC_STR(lit) ((rc_str_t){ "" lit, sizeof(lit) - 1 })
/** The absent value. */
#define RC_STR_NULL ((rc_str_t){ NULL, 0 })

/** View of a NUL-terminated string (NULL stays absent). */
static inline rc_str_t rc_str(const char *s)
{
    return s ? (rc_str_t){ s, strlen(s) } : RC_STR_NULL;
}

/** Whether `s` is present (possibly empty). */
static inline bool rc_str_present(rc_str_t s)
{
    return s.ptr != NULL;
}

/** Byte-wise equality of two views (absent equals absent only). */
static inline bool rc_str_eq(rc_str_t a, rc_str_t b)
{
    if ((a.ptr == NULL) != (b.ptr == NULL) || a.len != b.len)
        return false;
    return a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0;
}

/** Equality with a NUL-terminated string. */
static inline bool rc_str_eq_cstr(rc_str_t a, const char *s)
{
    size_t n = strlen(s);
    return a.ptr != NULL && a.len == n && memcmp(a.ptr, s, n) == 0;
}

#ifdef __cplusplus
}
#endif

#endif
