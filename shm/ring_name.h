/* How a broker's ring is named in /dev/shm, shared by `serve` (creates it) and every local
 * consumer (`ringcast tail`, SDK users) that attaches to it by broker:
 * "<prefix>.<namespace>.<broker>". DNS labels never contain '.', so the name is unambiguous.
 * When that exceeds the ring's 62-character limit the name becomes
 * "<prefix>.h<16 hex digits of a 64-bit FNV-1a hash of namespace/broker>". */
#ifndef RC_SHM_RING_NAME_H
#define RC_SHM_RING_NAME_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RC_RING_NAME_MAX 62

/** Writes the ring name of broker `ns`/`name` with `prefix` into `buf` (at least
 *  RC_RING_NAME_MAX + 1 bytes). Returns 0 or -EINVAL (bad prefix or buffer too small). */
int rc_ring_name_for(const char *prefix, const char *ns, const char *name, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
