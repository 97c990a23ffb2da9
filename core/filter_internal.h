/* What core/route.c reads of a filter built with core/filter.h. Not for use outside core/. */
#ifndef RC_CORE_FILTER_INTERNAL_H
#define RC_CORE_FILTER_INTERNAL_H

#include "core/arena.h"
#include "core/filter.h"

#include <stdbool.h>
#include <stdint.h>

/** One `name: value` entry of an attributes/exact/prefix/suffix map. Strings live in the
 *  filter's arena, NUL-terminated. */
typedef struct rc__filter_pair_s {
    rc_str_t name;
    rc_str_t value;
    int line;
    struct rc__filter_pair_s *next;
} rc__filter_pair_t;

struct rc_filter_node_s {
    rc_filter_node_t *parent;       /* NULL for an element of spec.filters */
    rc_filter_node_t *next;         /* next element of the same array */
    rc_filter_node_t *first, *last; /* all/any elements, the not operand */
    rc__filter_pair_t *pairs, *pairs_last;
    rc_str_t expr;  /* cesql (ptr NULL until set) */
    uint32_t count; /* elements or pairs */
    uint32_t index; /* position in the parent's array (or spec.filters) */
    int line;
    uint8_t dialect; /* rc_filter_dialect_t, 0 until set */
    uint8_t depth;   /* 1 for an element of spec.filters */
};

/* Bytes a filter holds inline before its arena takes a heap chunk (4 KiB): enough for a few
 * attribute pairs, so thousands of small filters do not cost 4 KiB each. */
#define RC__FILTER_INLINE 256

struct rc_filter_s {
    rc_arena_t arena;
    _Alignas(16) char inline_buf[RC__FILTER_INLINE];
    rc__filter_pair_t *attrs, *attrs_last; /* spec.filter.attributes */
    uint32_t attr_count;
    rc_filter_node_t *first, *last; /* spec.filters */
    uint32_t count;
    bool finished;
};

#endif
