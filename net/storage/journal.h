/* The sync journal of a file store (docs/durability.md, "The sync journal"): a small file beside
 * the ring file, `<ns>.<broker>.journal`, that makes a `durability: sync` commit durable with one
 * direct, synchronous write of the records it holds (O_DIRECT | O_DSYNC: the data and the
 * device's cache flush in one call), instead of an fdatasync of the mapped ring file, which
 * writes back and write-protects its dirty pages and costs about twice as long here.
 *
 * The ring file stays the store; the journal only holds what its page cache may not have
 * written yet. A frame is a set of (ring position, bytes) ranges with a CRC32C; frames go in a
 * circle of fixed size, and a frame may overwrite older ones only once a checkpoint (an
 * fdatasync of the ring file started after those frames were written) covers them. At start,
 * before the ring's own recovery, every valid frame of the current epoch is put back into the
 * ring (rc_ring_restore), then the ring is flushed and the journal starts a new epoch.
 *
 * One writer thread appends (rc_journal_frame_*); the checkpointer reads rc_journal_mark and
 * reports rc_journal_checkpointed from another thread. */
#ifndef RC_NET_STORAGE_JOURNAL_H
#define RC_NET_STORAGE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct rc_journal_s rc_journal_t;

#define RC_JOURNAL_BLOCK 4096u /* frames start and end on these (the disk's physical block) */

/** Opens the journal at `path` for the ring `ring_id`, creating it (`size` bytes, written with
 *  zeros so later writes need no block allocation) when it is missing or of another size.
 *  `*direct` says whether O_DIRECT could be used (not on tmpfs: then buffered O_DSYNC writes).
 *  Returns 0 or -errno with `err` set. */
int rc_journal_open(const char *path, uint64_t ring_id, uint64_t size, rc_journal_t **out,
                    int *direct, char *err, size_t errlen);

/** Calls `fn` for every range of every valid frame of the journal's current epoch for this
 *  ring, in the order they were written, `passes` times over (pass 0, 1, ...: the file is read
 *  once). Returns the number of frames, or -errno. */
typedef void (*rc_journal_range_fn)(void *arg, int pass, uint64_t pos, const void *bytes,
                                    uint32_t len);
long rc_journal_replay(rc_journal_t *j, int passes, rc_journal_range_fn fn, void *arg);

/** Starts a new epoch (frames written before are ignored from now on): after the ring file was
 *  flushed. Returns 0 or -errno. */
int rc_journal_reset(rc_journal_t *j);

/** Building and writing a frame (the writer thread only). add copies `len` bytes at once;
 *  write returns 0 once the frame is on disk, -ENOSPC when it would overwrite frames no
 *  checkpoint covers yet (checkpoint, then write again), -EFBIG when it can never fit (flush
 *  the ring file instead), or -errno of the write. */
void rc_journal_frame_begin(rc_journal_t *j);
int rc_journal_frame_add(rc_journal_t *j, uint64_t pos, const void *bytes, uint32_t len);
int rc_journal_frame_write(rc_journal_t *j);

/** Bytes written since the last checkpoint, and the journal's usable size. */
uint64_t rc_journal_used(const rc_journal_t *j);
uint64_t rc_journal_capacity(const rc_journal_t *j);

/** The position to hand to rc_journal_checkpointed once an fdatasync of the ring file that
 *  started after this call returned: every frame written before it is then redundant. */
uint64_t rc_journal_mark(const rc_journal_t *j);
void rc_journal_checkpointed(rc_journal_t *j, uint64_t mark);

void rc_journal_close(rc_journal_t *j);

#endif
