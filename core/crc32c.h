/* CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78): the checksum of each record
 * of a durable store (docs/durability.md). The same function as iSCSI, ext4 metadata, Kafka's
 * record batches and the SSE4.2 crc32 instruction: initial value ~0, final xor ~0, so
 * rc_crc32c(0, "123456789", 9) == 0xE3069283.
 *
 * Two implementations compute the same values: the crc32 instruction (x86-64 with SSE4.2,
 * chosen at run time by what the CPU reports) and a table one (slicing by 8) everywhere else. */
#ifndef RC_CORE_CRC32C_H
#define RC_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/** The CRC32C of `len` bytes at `data`, continuing from `crc` (0 to start): a checksum
 *  computed in pieces, rc_crc32c(rc_crc32c(0, a, n), b, m), equals the one of the bytes a and
 *  b together. Uses the fastest implementation this CPU has. Any thread. */
uint32_t rc_crc32c(uint32_t crc, const void *data, size_t len);

/** The table implementation, on every CPU (tests compare it with the instruction's). */
uint32_t rc_crc32c_sw(uint32_t crc, const void *data, size_t len);

/** The crc32 instruction's implementation: returns 0 with the CRC in `*out`, or -ENOTSUP
 *  (`*out` untouched) when this CPU or this build has no such instruction. */
int rc_crc32c_hw(uint32_t crc, const void *data, size_t len, uint32_t *out);

/** "sse4.2" or "table": which implementation rc_crc32c uses here (for logs and benchmarks). */
const char *rc_crc32c_impl(void);

#endif
