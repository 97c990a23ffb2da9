/* Random valid CloudEvents for round-trip tests: a deterministic generator (xorshift64*, fixed
 * seed given by the test) covering every attribute, every extension type, Unicode, characters
 * that need escaping in each encoding, and every data shape (none, empty, JSON, text, binary).
 * All bytes live in the arena the caller passes. */
#ifndef RC_TESTS_EVENT_GEN_H
#define RC_TESTS_EVENT_GEN_H

#include "core/arena.h"
#include "core/base64.h"
#include "core/event.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    uint64_t s;
} gen_rng_t;

static inline uint64_t gen_next(gen_rng_t *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}

static inline uint32_t gen_below(gen_rng_t *r, uint32_t n)
{
    return (uint32_t)(gen_next(r) % n);
}

/* Options: which data shapes and strings the codec under test can carry exactly. */
enum {
    GEN_NO_EMPTY_DATA = 1 << 0, /* binary mode: an empty body means "no data" */
};

/* Random printable/Unicode string of 1..max chars (valid per rc_ce_is_valid_string). */
static inline rc_str_t gen_text(gen_rng_t *r, rc_arena_t *a, uint32_t max)
{
    static const char *const pieces[] = { "a", "Z", "0", " ", "%", "\"", "\\", "/", ":", "-",
                                          "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x8c\x8e", "{",
                                          "}", "~", "'", "<", "=", "+", ".", "q" };
    uint32_t n = 1 + gen_below(r, max);
    char *p = rc_arena_alloc(a, n * 4, 1);
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *s = pieces[gen_below(r, sizeof(pieces) / sizeof(pieces[0]))];
        memcpy(p + len, s, strlen(s));
        len += strlen(s);
    }
    return (rc_str_t){ p, len };
}

static inline rc_str_t gen_fmt(rc_arena_t *a, const char *s)
{
    size_t n = strlen(s);
    return (rc_str_t){ rc_arena_strndup(a, s, n), n };
}

static inline rc_str_t gen_uri(gen_rng_t *r, rc_arena_t *a, int absolute)
{
    static const char *const abs[][2] = { { "https://example.com/a/", "" },
                                          { "urn:uuid:", "" },
                                          { "http://[::1]:8080/p?q=", "#f" },
                                          { "mailto:x", "@y.z" } };
    static const char *const rel[][2] = { { "/mycontext/", "" },
                                          { "#frag", "" },
                                          { "//authority/path/", "" },
                                          { "rel/", "?x=1" },
                                          { "../up/", "" } };
    char buf[64];
    int k = (int)gen_below(r, 100000);
    const char *const *form = (absolute || gen_below(r, 2)) ? abs[gen_below(r, 4)]
                                                            : rel[gen_below(r, 5)];
    snprintf(buf, sizeof(buf), "%s%d%s", form[0], k, form[1]);
    return gen_fmt(a, buf);
}

static inline rc_str_t gen_time(gen_rng_t *r, rc_arena_t *a)
{
    static const char *const forms[][2] = { { "2018-04-05T17:31:", "Z" },
                                            { "2023-03-31T15:12:", ".5Z" },
                                            { "1999-12-31T23:59:", "+01:00" },
                                            { "2040-02-29T00:00:", ".123456789-05:30" } };
    char buf[64];
    const char *const *form = forms[gen_below(r, 4)];
    snprintf(buf, sizeof(buf), "%s%02d%s", form[0], (int)gen_below(r, 60), form[1]);
    return gen_fmt(a, buf);
}

static inline rc_str_t gen_ext_value(gen_rng_t *r, rc_arena_t *a, rc_ce_type_t type)
{
    char buf[64];
    switch (type) {
    case RC_CE_STRING:
        return gen_below(r, 8) == 0 ? RC_STR("") : gen_text(r, a, 12);
    case RC_CE_INTEGER: {
        int32_t v = (int32_t)(uint32_t)gen_next(r);
        if (gen_below(r, 2))
            v %= 1000;
        size_t n = rc_ce_int_format(v, buf);
        return (rc_str_t){ rc_arena_strndup(a, buf, n), n };
    }
    case RC_CE_BOOLEAN:
        return gen_below(r, 2) ? RC_STR("true") : RC_STR("false");
    case RC_CE_BINARY: {
        unsigned char raw[16];
        uint32_t n = gen_below(r, sizeof(raw));
        for (uint32_t i = 0; i < n; i++)
            raw[i] = (unsigned char)gen_next(r);
        size_t m = rc_base64_encode(raw, n, buf);
        return (rc_str_t){ rc_arena_strndup(a, buf, m), m };
    }
    case RC_CE_URI:
        return gen_uri(r, a, 1);
    case RC_CE_URI_REF:
        return gen_uri(r, a, 0);
    case RC_CE_TIMESTAMP:
        return gen_time(r, a);
    }
    return RC_STR("");
}

static inline rc_str_t gen_data(gen_rng_t *r, rc_arena_t *a, rc_str_t ct, unsigned opts)
{
    switch (gen_below(r, 6)) {
    case 0:
        return RC_STR_NULL;
    case 1:
        return (opts & GEN_NO_EMPTY_DATA) ? RC_STR("x") : RC_STR("");
    case 2: {
        static const char *const json[] = { "{\"a\":1}", "[1,2,{\"b\":null}]", "\"str\\u00e9\"",
                                            "12345678901234567890", "{ \"x\" : [ true , 1.50 ] }",
                                            "null" };
        return rc_str(json[gen_below(r, 6)]);
    }
    case 3:
        return gen_text(r, a, 40);
    default: {
        uint32_t n = 1 + gen_below(r, 300);
        char *p = rc_arena_alloc(a, n, 1);
        for (uint32_t i = 0; i < n; i++)
            p[i] = (char)gen_next(r);
        return (rc_str_t){ p, n };
    }
    }
    (void)ct;
}

/* Fills `ev` with a random valid event (extension table in the arena). */
static inline void gen_event(gen_rng_t *r, rc_arena_t *a, rc_event_t *ev, unsigned opts)
{
    static const char *const cts[] = { "application/json", "text/plain; charset=utf-8",
                                       "application/octet-stream", "application/vnd.x+json",
                                       "text/plain;a=\"q x\"" };
    rc_event_init(ev, NULL, 0);
    ev->specversion = RC_STR("1.0");
    ev->id = gen_text(r, a, 20);
    ev->source = gen_uri(r, a, 0);
    ev->type = gen_text(r, a, 30);
    if (gen_below(r, 2))
        ev->datacontenttype = rc_str(cts[gen_below(r, 5)]);
    if (gen_below(r, 3) == 0)
        ev->dataschema = gen_uri(r, a, 1);
    if (gen_below(r, 2))
        ev->subject = gen_text(r, a, 10);
    if (gen_below(r, 2))
        ev->time = gen_time(r, a);
    uint32_t n = gen_below(r, 4) == 0 ? gen_below(r, 40) : gen_below(r, 6);
    for (uint32_t i = 0; i < n; i++) {
        char name[RC_CE_EXT_NAME_MAX + 1];
        uint32_t len = 1 + gen_below(r, RC_CE_EXT_NAME_MAX);
        for (uint32_t k = 0; k < len; k++)
            name[k] = "abcdefghijklmnopqrstuvwxyz0123456789"[gen_below(r, 36)];
        rc_str_t nm = { name, len };
        if (rc_ce_attr_index(nm) >= 0 || rc_str_eq(nm, RC_STR("data")) ||
            rc_event_find_ext(ev, nm) != NULL)
            continue;
        rc_ce_type_t t = (rc_ce_type_t)gen_below(r, RC_CE_TYPE_COUNT);
        rc_event_set_ext(ev, a, (rc_str_t){ rc_arena_strndup(a, name, len), len },
                         gen_ext_value(r, a, t), t);
    }
    ev->data = gen_data(r, a, ev->datacontenttype, opts);
}

#endif
