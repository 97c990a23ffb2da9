/* Fuzz target for the filter builder and the routing compiler: the input is a little program of
 * builder calls (add attribute, add object under any node, set a dialect, add a map entry, set a
 * CESQL expression, start the next trigger) with names, keys and values drawn from small tables
 * or taken raw from the input. Whatever the calls, every refusal must carry a message that starts
 * with its path; the finished filters must compile, indexed and unindexed, and both programs must
 * route a fixed set of records to the same ascending trigger lists. Sanitizers catch the rest. */
#include "core/errors.h"
#include "core/event.h"
#include "core/filter.h"
#include "core/record.h"
#include "core/route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz oracle failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_TRIGGERS 4
#define MAX_NODES    64

static const char *const names[] = {"type", "source", "subject", "region", "prio", "flag",
                                    "id",   "Type",   "x-y",     "",       "time", "note"};
static const char *const values[] = {"a", "b", "ab", "/x", "/x/y", "eu", "1", "true", "", "s"};
static const char *const keys[] = {"exact", "prefix", "suffix", "all",
                                   "any",   "not",    "cesql",  "bogus"};
static const char *const exprs[] = {"type = 'a'",       "EXISTS subject", "prio > 0", "flag",
                                    "region LIKE 'e%'", "1 + 1",          "type = ",  "NOPE(x)"};
static const char *const events[] = {
    "type=a;source=/x/y;region=eu;prio:int=1;flag:bool=true;subject=s",
    "type=b;source=/x;note=",
    "type=ab;subject=;prio:int=-1;flag:bool=false",
    "",
};

typedef struct {
    const uint8_t *p, *end;
} input_t;

static unsigned next(input_t *in)
{
    return in->p < in->end ? *in->p++ : 0;
}

/* A string: from a table (most of the time) or raw bytes of the input. */
static rc_str_t pick(input_t *in, const char *const *table, size_t n)
{
    unsigned b = next(in);
    if (b < 0xf0)
        return rc_str(table[b % n]);
    size_t len = next(in) % 24;
    if ((size_t)(in->end - in->p) < len)
        len = (size_t)(in->end - in->p);
    rc_str_t s = {(const char *)in->p, len};
    in->p += len;
    return s.len ? s : RC_STR("");
}

static void check_error(int rc, const rc_filter_error_t *err)
{
    CHECK(rc == 0 || rc == RC_EFILTER);
    if (rc == RC_EFILTER) {
        size_t n = strnlen(err->path, sizeof(err->path));
        CHECK(n > 0 && n < sizeof(err->path));
        CHECK(strnlen(err->msg, sizeof(err->msg)) < sizeof(err->msg));
        CHECK(strncmp(err->msg, err->path, n) == 0 && err->msg[n] == ':');
    }
}

static void build_record(const char *spec, uint8_t *buf, size_t cap, rc_record_view_t *view)
{
    rc_ce_ext_t ext[16];
    rc_event_t ev;
    rc_event_init(&ev, ext, 16);
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", spec);
    for (char *save = NULL, *item = strtok_r(copy, ";", &save); item != NULL;
         item = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(item, '='), *colon = strchr(item, ':');
        *eq = '\0';
        rc_ce_type_t type = RC_CE_STRING;
        if (colon != NULL) {
            *colon = '\0';
            type = colon[1] == 'i' ? RC_CE_INTEGER : RC_CE_BOOLEAN;
        }
        rc_str_t name = rc_str(item), value = rc_str(eq + 1);
        int core = rc_ce_attr_index(name);
        if (core >= 0)
            ev.attr[core] = value;
        else
            CHECK(rc_event_set_ext(&ev, NULL, name, value, type) == 0);
    }
    size_t len;
    CHECK(rc_record_encode(&ev, buf, cap, &len) == 0);
    /* The views borrow `copy`'s bytes only until encoded. */
    CHECK(rc_record_decode(buf, len, view) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input_t in = {data, data + size};
    rc_filter_t *f[MAX_TRIGGERS] = {0};
    rc_filter_node_t *nodes[MAX_NODES];
    uint32_t nt = 1, nn = 0;
    rc_filter_error_t err;
    CHECK(rc_filter_create(&f[0]) == 0);
    rc_filter_t *cur = f[0];
    while (in.p < in.end) {
        unsigned op = next(&in) % 7;
        rc_filter_node_t *node = nn ? nodes[next(&in) % nn] : NULL;
        int line = (int)(in.p - data);
        int rc = 0;
        switch (op) {
        case 0: {
            rc_str_t n = pick(&in, names, sizeof(names) / sizeof(names[0]));
            rc = rc_filter_add_attribute(cur, n, pick(&in, values, 10), line, &err);
            break;
        }
        case 1: {
            rc_filter_node_t *o = NULL;
            rc = rc_filter_add_object(cur, next(&in) % 3 == 0 ? NULL : node, line, &o, &err);
            CHECK((rc == 0) == (o != NULL));
            if (o != NULL && nn < MAX_NODES)
                nodes[nn++] = o;
            break;
        }
        case 2:
            if (node != NULL)
                rc = rc_filter_set_dialect(cur, node, pick(&in, keys, 8), line, NULL, &err);
            break;
        case 3:
            if (node != NULL) {
                rc_str_t n = pick(&in, names, sizeof(names) / sizeof(names[0]));
                rc = rc_filter_add_pair(cur, node, n, pick(&in, values, 10), line, &err);
            }
            break;
        case 4:
            if (node != NULL)
                rc = rc_filter_set_cesql(cur, node, pick(&in, exprs, 8), line, &err);
            break;
        case 5:
            /* Next trigger; nodes belong to the previous filter. */
            if (nt < MAX_TRIGGERS) {
                CHECK(rc_filter_create(&f[nt]) == 0);
                cur = f[nt++];
                nn = 0;
            }
            break;
        default:
            /* A trigger without filter (building continues on `cur`). */
            if (nt < MAX_TRIGGERS)
                f[nt++] = NULL;
            break;
        }
        check_error(rc, &err);
    }
    bool ok = true;
    for (uint32_t i = 0; i < nt; i++) {
        if (f[i] == NULL)
            continue;
        int rc = rc_filter_finish(f[i], &err);
        check_error(rc, &err);
        if (rc != 0)
            ok = false;
        char text[256];
        size_t n = rc_filter_format(f[i], text, sizeof(text));
        CHECK(strlen(text) == (n < sizeof(text) ? n : sizeof(text) - 1));
    }
    if (ok) {
        rc_route_t *r[2];
        CHECK(rc_route_compile((const rc_filter_t *const *)f, nt, 0, &r[0]) == 0);
        CHECK(rc_route_compile((const rc_filter_t *const *)f, nt, RC_ROUTE_NO_INDEX, &r[1]) == 0);
        static _Alignas(8) uint8_t buf[1024];
        for (size_t e = 0; e < sizeof(events) / sizeof(events[0]); e++) {
            rc_record_view_t view;
            build_record(events[e], buf, sizeof(buf), &view);
            uint32_t out[2][MAX_TRIGGERS];
            int k0 = rc_route_match(r[0], &view, out[0], MAX_TRIGGERS);
            int k1 = rc_route_match(r[1], &view, out[1], MAX_TRIGGERS);
            CHECK(k0 >= 0 && k0 == k1 && k0 <= (int)nt);
            for (int i = 0; i < k0; i++) {
                CHECK(out[0][i] == out[1][i] && out[0][i] < nt);
                CHECK(i == 0 || out[0][i - 1] < out[0][i]);
            }
        }
        /* Error counters are not compared: which CESQL tests run depends on the program. */
        rc_route_destroy(r[0]);
        rc_route_destroy(r[1]);
    }
    for (uint32_t i = 0; i < nt; i++)
        rc_filter_destroy(f[i]);
    return 0;
}
