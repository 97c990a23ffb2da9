/* LIKE patterns: compiled once into '%'-separated segments, matched without backtracking.
 *
 * A pattern S0 % S1 % ... % Sk matches when S0 matches at the start, Sk at the end, and S1..Sk-1
 * in order in between. Each segment has a fixed number of characters ('_' is one character,
 * any other byte itself), so taking the leftmost occurrence of every middle segment is optimal:
 * an earlier end leaves more room for what follows. The cost is at most O(len x pattern) (a
 * plain memmem when the segment has no '_'), never exponential. */
#include "core/cesql_internal.h"

#include <errno.h>
#include <string.h>

static bool is_cont(char c)
{
    return ((unsigned char)c & 0xC0) == 0x80;
}

int rc__cesql_like_compile(const char *pattern, size_t len, rc__cesql_arena_t *arena,
                           rc__cesql_like_t *out)
{
    uint32_t nsegs = 1;
    for (size_t i = 0; i < len; i++) {
        if (pattern[i] == '\\' && i + 1 < len && (pattern[i + 1] == '%' || pattern[i + 1] == '_'))
            i++;
        else if (pattern[i] == '%')
            nsegs++;
    }
    out->nsegs = nsegs;
    out->segs = rc__cesql_arena_alloc(arena, sizeof(*out->segs) * nsegs);
    out->bytes = rc__cesql_arena_alloc(arena, len + 1);
    out->any = rc__cesql_arena_alloc(arena, len + 1);
    if (out->segs == NULL || out->bytes == NULL || out->any == NULL)
        return -ENOMEM;
    uint32_t seg = 0, n = 0;
    out->segs[0].off = 0;
    out->segs[0].any_off = 0;
    for (size_t i = 0; i < len; i++) {
        char c = pattern[i];
        bool any = false;
        if (c == '\\' && i + 1 < len && (pattern[i + 1] == '%' || pattern[i + 1] == '_')) {
            c = pattern[++i];
        } else if (c == '%') {
            out->segs[seg].len = n - out->segs[seg].off;
            seg++;
            out->segs[seg].off = n;
            out->segs[seg].any_off = n;
            continue;
        } else if (c == '_') {
            any = true;
        }
        out->bytes[n] = c;
        out->any[n] = any;
        out->segs[seg].has_any |= any;
        n++;
    }
    out->segs[seg].len = n - out->segs[seg].off;
    return 0;
}

/* Matches segment `g` forward at s[pos..len); returns the end offset or -1. */
static ptrdiff_t match_at(const rc__cesql_like_t *p, const rc__cesql_seg_t *g, const char *s,
                          size_t len, size_t pos)
{
    const char *lit = p->bytes + g->off;
    if (!g->has_any) {
        if (len - pos < g->len || memcmp(s + pos, lit, g->len) != 0)
            return -1;
        return (ptrdiff_t)(pos + g->len);
    }
    const uint8_t *any = p->any + g->any_off;
    size_t i = pos;
    for (uint32_t j = 0; j < g->len; j++) {
        if (i >= len)
            return -1;
        if (any[j]) {
            i++;
            while (i < len && is_cont(s[i]))
                i++;
        } else if (s[i++] != lit[j]) {
            return -1;
        }
    }
    return (ptrdiff_t)i;
}

/* Matches segment `g` backward so that it ends exactly at `end`, not starting before `lo`;
 * returns the start offset or -1. */
static ptrdiff_t match_back(const rc__cesql_like_t *p, const rc__cesql_seg_t *g, const char *s,
                            size_t lo, size_t end)
{
    const char *lit = p->bytes + g->off;
    if (!g->has_any) {
        if (end - lo < g->len || memcmp(s + end - g->len, lit, g->len) != 0)
            return -1;
        return (ptrdiff_t)(end - g->len);
    }
    const uint8_t *any = p->any + g->any_off;
    size_t i = end;
    for (uint32_t j = g->len; j-- > 0;) {
        if (i <= lo)
            return -1;
        if (any[j]) {
            i--;
            while (i > lo && is_cont(s[i]))
                i--;
        } else if (s[--i] != lit[j]) {
            return -1;
        }
    }
    return (ptrdiff_t)i;
}

bool rc__cesql_like_match(const rc__cesql_like_t *p, const char *s, size_t len)
{
    const rc__cesql_seg_t *first = &p->segs[0];
    if (p->nsegs == 1)
        return match_at(p, first, s, len, 0) == (ptrdiff_t)len;
    ptrdiff_t lo = match_at(p, first, s, len, 0);
    if (lo < 0)
        return false;
    ptrdiff_t hi = match_back(p, &p->segs[p->nsegs - 1], s, (size_t)lo, len);
    if (hi < 0)
        return false;
    for (uint32_t k = 1; k + 1 < p->nsegs; k++) {
        const rc__cesql_seg_t *g = &p->segs[k];
        if (g->len == 0)
            continue;
        if (!g->has_any) {
            const char *f = memmem(s + lo, (size_t)(hi - lo), p->bytes + g->off, g->len);
            if (f == NULL)
                return false;
            lo = (f - s) + (ptrdiff_t)g->len;
            continue;
        }
        ptrdiff_t e = -1;
        for (size_t at = (size_t)lo; at < (size_t)hi;) {
            e = match_at(p, g, s, (size_t)hi, at);
            if (e >= 0)
                break;
            at++;
            while (at < (size_t)hi && is_cont(s[at]))
                at++;
        }
        if (e < 0)
            return false;
        lo = e;
    }
    return true;
}
