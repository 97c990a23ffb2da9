/* Per-request bump allocator. Everything a request decodes (percent-decoded header values, JSON
 * strings, base64 data, extension tables, batch event arrays) lives in one arena that is reset or
 * closed in one call. Allocation is fallible: past the arena's limit it returns NULL and the
 * caller turns that into an error response, never an abort.
 *
 * The caller may hand the arena an initial buffer (e.g. a per-connection scratch area); requests
 * that fit in it never touch malloc. Larger requests chain heap chunks, released on reset. */
#ifndef RC_CORE_ARENA_H
#define RC_CORE_ARENA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rc_arena_chunk_s rc_arena_chunk_t;

/** Caller-embedded arena. Fields are private; use the functions below. Not thread-safe: one
 *  arena belongs to one request on one thread. */
typedef struct rc_arena_s {
    char *ptr;                /* next free byte of the current block */
    char *end;                /* end of the current block */
    char *initial;            /* caller's initial buffer (may be NULL) */
    size_t initial_size;      /* its size */
    rc_arena_chunk_t *chunks; /* heap chunks, newest first */
    size_t used;              /* bytes handed out since init/reset (incl. alignment) */
    size_t heap;              /* bytes of heap chunks currently held */
    size_t limit;             /* cap on heap bytes; 0 = no cap */
} rc_arena_t;

/** Initialises `a`. `initial`/`initial_size` is an optional caller-owned buffer (borrowed until
 *  rc_arena_close; NULL/0 for none). `limit` caps the heap memory the arena may add on top of
 *  it (0 = unlimited). Never fails. */
void rc_arena_init(rc_arena_t *a, void *initial, size_t initial_size, size_t limit);

/** Returns `size` bytes aligned to `align` (a power of two, at most 16), or NULL when the limit
 *  would be exceeded or malloc fails. The memory stays valid until rc_arena_reset/close. A
 *  size of 0 returns a valid non-NULL pointer. */
void *rc_arena_alloc(rc_arena_t *a, size_t size, size_t align);

/** Copies `len` bytes into the arena and appends a NUL (not counted in `len`). NULL on failure. */
char *rc_arena_strndup(rc_arena_t *a, const char *s, size_t len);

/** Releases every allocation at once: frees heap chunks and rewinds to the initial buffer. The
 *  arena is ready for the next request. */
void rc_arena_reset(rc_arena_t *a);

/** Frees the heap chunks. The arena must be re-initialised before further use. NULL is a no-op. */
void rc_arena_close(rc_arena_t *a);

/** Bytes handed out since init/reset (for metrics and tests). */
size_t rc_arena_used(const rc_arena_t *a);

#ifdef __cplusplus
}
#endif

#endif
