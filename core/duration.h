/* ISO-8601 durations as Knative's spec.delivery uses them (`PT0.2S`, `PT1M30S`, `P1D`), held as
 * signed 64-bit nanoseconds. */
#ifndef RC_CORE_DURATION_H
#define RC_CORE_DURATION_H

#include <stddef.h>
#include <stdint.h>

#define RC_NS_PER_SEC INT64_C(1000000000)
#define RC_NS_PER_MS  INT64_C(1000000)

/** Longest text rc_duration_format writes, including the terminating NUL. */
#define RC_DURATION_STR_MAX 40

/** Parses an ISO-8601 duration `P[nW][nD][T[nH][nM][nS]]` (designators upper-case, in that order,
 *  each at most once; `W` only alone) into nanoseconds. The last component present may carry a
 *  fraction with '.' or ',' (`PT0.2S`, `PT1.5M`); digits beyond nanosecond precision are
 *  truncated. Years and months (`P1Y`, `P1M`) are rejected because they have no fixed length;
 *  so are signs, empty components (`P`, `PT`), and values beyond INT64_MAX nanoseconds
 *  (about 292 years).
 *  @param s      the text (need not be NUL-terminated), `len` bytes
 *  @param out_ns receives the duration on success; untouched on failure
 *  @param err    if not NULL, receives a NUL-terminated message naming the problem on failure
 *  @return 0, or RC_EPARSE. Thread-safe; no allocation. */
int rc_duration_parse(const char *s, size_t len, int64_t *out_ns, char *err, size_t errlen);

/** Formats a non-negative duration canonically (`PT0S`, `PT0.2S`, `PT1M30S`, `P1DT1H`), so that
 *  rc_duration_parse of the text gives `ns` back. Negative values are formatted as `PT0S`.
 *  @return the string length, or -ENOSPC when `cap` is too small (then `buf` holds "") */
int rc_duration_format(int64_t ns, char *buf, size_t cap);

#endif
