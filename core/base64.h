/* Base64 (RFC 4648, standard alphabet, padded), as the CloudEvents JSON format uses for
 * data_base64 and for Binary attributes. */
#ifndef RC_CORE_BASE64_H
#define RC_CORE_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/** Encoded length of `n` bytes (padded). */
static inline size_t rc_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/** Encodes `n` bytes of `in` into `out` (rc_base64_encoded_len(n) bytes, no NUL). Returns the
 *  length written. */
size_t rc_base64_encode(const void *in, size_t n, char *out);

/** Decodes `n` characters of padded base64 into `out` (at least n / 4 * 3 bytes). Whitespace is
 *  not accepted; non-zero bits in the last symbol before padding are (canonical check: see
 *  rc_base64_is_canonical). Returns the decoded length, or -1 when `in` is not base64. */
long rc_base64_decode(const char *in, size_t n, void *out);

/** Whether `in` is valid padded base64 whose unused trailing bits are zero (so decoding and
 *  re-encoding gives the same text): the canonical form of a Binary attribute. */
bool rc_base64_is_canonical(const char *in, size_t n);

#endif
