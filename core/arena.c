#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Heap chunks start at this size and double with each new chunk (bounded by the request size),
 * so a large request costs O(log n) mallocs. */
#define ARENA_MIN_CHUNK 4096u

struct rc_arena_chunk_s {
    rc_arena_chunk_t *next;
    size_t size; /* usable bytes after the header */
    max_align_t align_[];
};

void rc_arena_init(rc_arena_t *a, void *initial, size_t initial_size, size_t limit)
{
    a->initial = initial;
    a->initial_size = initial ? initial_size : 0;
    a->ptr = a->initial;
    a->end = a->initial ? a->initial + a->initial_size : NULL;
    a->chunks = NULL;
    a->used = 0;
    a->heap = 0;
    a->limit = limit;
}

static void *bump(rc_arena_t *a, size_t size, size_t align)
{
    if (a->ptr == NULL)
        return NULL;
    uintptr_t p = ((uintptr_t)a->ptr + (align - 1)) & ~(uintptr_t)(align - 1);
    if (p < (uintptr_t)a->ptr || p > (uintptr_t)a->end || size > (uintptr_t)a->end - p)
        return NULL;
    a->used += (p - (uintptr_t)a->ptr) + size;
    a->ptr = (char *)p + size;
    return (void *)p;
}

void *rc_arena_alloc(rc_arena_t *a, size_t size, size_t align)
{
    if (align == 0 || (align & (align - 1)) != 0 || align > 16)
        return NULL;
    void *p = bump(a, size, align);
    if (p != NULL)
        return p;

    /* The current block is full: chain a new chunk big enough for this request. */
    size_t last = a->chunks ? a->chunks->size : 0;
    size_t want = last ? last * 2 : ARENA_MIN_CHUNK;
    if (size > SIZE_MAX - 2 * align - sizeof(rc_arena_chunk_t))
        return NULL;
    if (want < size + align)
        want = size + align;
    if (a->limit != 0) {
        if (a->heap >= a->limit || size + align > a->limit - a->heap)
            return NULL;
        if (want > a->limit - a->heap)
            want = a->limit - a->heap;
    }
    rc_arena_chunk_t *c = malloc(sizeof(*c) + want);
    if (c == NULL)
        return NULL;
    c->size = want;
    c->next = a->chunks;
    a->chunks = c;
    a->heap += want;
    a->ptr = (char *)(c + 1);
    a->end = a->ptr + want;
    return bump(a, size, align);
}

char *rc_arena_strndup(rc_arena_t *a, const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *p = rc_arena_alloc(a, len + 1, 1);
    if (p == NULL)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static void free_chunks(rc_arena_t *a)
{
    rc_arena_chunk_t *c = a->chunks;
    while (c != NULL) {
        rc_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->chunks = NULL;
    a->heap = 0;
}

void rc_arena_reset(rc_arena_t *a)
{
    free_chunks(a);
    a->ptr = a->initial;
    a->end = a->initial ? a->initial + a->initial_size : NULL;
    a->used = 0;
}

void rc_arena_close(rc_arena_t *a)
{
    if (a == NULL)
        return;
    free_chunks(a);
    a->ptr = a->end = NULL;
    a->initial = NULL;
    a->initial_size = 0;
    a->used = 0;
}

size_t rc_arena_used(const rc_arena_t *a)
{
    return a->used;
}
