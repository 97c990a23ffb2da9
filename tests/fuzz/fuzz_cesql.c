/* Fuzz target for the CESQL compiler and evaluator: the input is an expression. Whatever it is,
 * compiling must either fail cleanly (with a message and a position inside the input) or give a
 * program that evaluates, against events of every attribute type and with scratch memory both
 * ample and tiny, to a well-formed value, the same over a ring record holding the same event as
 * over a flat attribute table. Sanitizers catch the rest. */
#include "core/cesql.h"
#include "core/cesql_record.h"
#include "core/event.h"
#include "core/record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const char *name;
    rc_cesql_value_t v;
} kv_t;

// clang-format off
#define S(n, str) {n, {.type = RC_CESQL_TYPE_STRING, .len = sizeof(str) - 1, .u.s = str}}
#define I(n, x) {n, {.type = RC_CESQL_TYPE_INT, .u.i = x}}
#define B(n, x) {n, {.type = RC_CESQL_TYPE_BOOL, .u.b = x}}
// clang-format on

static const kv_t event[] = {
    S("specversion", "1.0"),
    S("id", "fuzz-1"),
    S("source", "https://example.com/a/b"),
    S("type", "com.example.fuzz"),
    S("subject", "h\xc3\xa9llo \xff w\xc3\xb6rld"),
    S("num", "-2147483648"),
    S("flag", "TRUE"),
    S("empty", ""),
    I("big", INT32_MAX),
    I("small", INT32_MIN),
    I("zero", 0),
    B("yes", true),
    B("no", false),
};

static bool get(const void *ev, const rc_cesql_attr_t *attr, rc_cesql_value_t *out)
{
    (void)ev;
    for (size_t i = 0; i < sizeof(event) / sizeof(event[0]); i++) {
        if (strcmp(event[i].name, attr->name) == 0) {
            *out = event[i].v;
            return true;
        }
    }
    return false;
}

/* The same event as a ring record (built once). */
static rc_record_view_t view;

static void build_record(void)
{
    static rc_ce_ext_t ext[16];
    static char ints[16][12];
    rc_event_t ev;
    rc_event_init(&ev, ext, 16);
    for (size_t i = 0; i < sizeof(event) / sizeof(event[0]); i++) {
        const kv_t *a = &event[i];
        rc_str_t name = rc_str(a->name), value;
        rc_ce_type_t type = RC_CE_STRING;
        if (a->v.type == RC_CESQL_TYPE_INT) {
            value = (rc_str_t){ints[i], rc_ce_int_format(a->v.u.i, ints[i])};
            type = RC_CE_INTEGER;
        } else if (a->v.type == RC_CESQL_TYPE_BOOL) {
            value = a->v.u.b ? RC_STR("true") : RC_STR("false");
            type = RC_CE_BOOLEAN;
        } else {
            value = (rc_str_t){a->v.u.s, a->v.len};
        }
        int core = rc_ce_attr_index(name);
        if (core >= 0)
            ev.attr[core] = value;
        else if (rc_event_set_ext(&ev, NULL, name, value, type) != 0)
            abort();
    }
    size_t size = rc_record_size(&ev), len;
    void *rec = aligned_alloc(8, size);
    if (rec == NULL || rc_record_encode(&ev, rec, size, &len) != 0 ||
        rc_record_decode(rec, len, &view) != 0)
        abort();
}

static bool same(const rc_cesql_result_t *a, const rc_cesql_result_t *b)
{
    if (a->error != b->error || a->value.type != b->value.type)
        return false;
    if (a->value.type == RC_CESQL_TYPE_STRING)
        return a->value.len == b->value.len &&
               (a->value.len == 0 || memcmp(a->value.u.s, b->value.u.s, a->value.len) == 0);
    return a->value.type == RC_CESQL_TYPE_INT ? a->value.u.i == b->value.u.i
                                              : a->value.u.b == b->value.u.b;
}

static void check_value(const rc_cesql_result_t *r)
{
    if (r->value.type < RC_CESQL_TYPE_BOOL || r->value.type > RC_CESQL_TYPE_STRING)
        abort();
    if (r->value.type == RC_CESQL_TYPE_STRING && r->value.len > 0 && r->value.u.s == NULL)
        abort();
    if (rc_cesql_errkind_name(r->error) == NULL && r->error != RC_CESQL_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rc_cesql_program_t *prog = NULL;
    rc_cesql_error_t err;
    int rc = rc_cesql_compile((const char *)data, size, &prog, &err);
    if (rc != 0) {
        if (prog != NULL || err.msg[0] == '\0' || (err.pos > size && size > 0) ||
            (err.kind != RC_CESQL_ERR_PARSE && err.kind != RC_CESQL_ERR_MISSING_FUNCTION))
            abort();
        return 0;
    }
    if (view.base == NULL)
        build_record();
    static char scratch[1 << 16], scratch2[1 << 16];
    char tiny[8];
    rc_cesql_result_t r, r2;
    rc_cesql_eval(prog, get, NULL, scratch, sizeof(scratch), &r);
    check_value(&r);
    rc_cesql_eval_record(prog, &view, scratch2, sizeof(scratch2), &r2);
    if (!same(&r, &r2))
        abort();
    rc_cesql_errkind_t k1, k2;
    if (rc_cesql_match_record(prog, &view, &k1) != rc_cesql_match(prog, get, NULL, &k2) || k1 != k2)
        abort();
    rc_cesql_eval(prog, get, NULL, tiny, sizeof(tiny), &r);
    check_value(&r);
    rc_cesql_errkind_t kind;
    (void)rc_cesql_match(prog, get, NULL, &kind);
    for (uint32_t i = 0; i < rc_cesql_attr_count(prog); i++) {
        if (rc_cesql_attr_at(prog, i)->index != i)
            abort();
    }
    rc_cesql_destroy(prog);
    return 0;
}
