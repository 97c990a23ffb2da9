/* CESQL accessors for ring records and in-memory events (see core/cesql_record.h). */
#include "core/cesql_record.h"
#include "core/cesql_vm_internal.h"

#define SAME_SLOT(a) ((int)RC_CESQL_CORE_##a == (int)RC_CE_ATTR_##a)
_Static_assert(SAME_SLOT(SPECVERSION) && SAME_SLOT(ID) && SAME_SLOT(SOURCE) && SAME_SLOT(TYPE) &&
                   SAME_SLOT(DATACONTENTTYPE) && SAME_SLOT(DATASCHEMA) && SAME_SLOT(SUBJECT) &&
                   SAME_SLOT(TIME) && RC_CE_ATTR_CORE_COUNT == 8,
               "CESQL core attribute ids are the event model's slots");
#undef SAME_SLOT

/* A value in its canonical string form and CloudEvents type -> CESQL value (spec 3.2). */
static void to_value(rc_str_t s, rc_ce_type_t type, rc_cesql_value_t *out)
{
    if (type == RC_CE_INTEGER) {
        int32_t i;
        if (rc_ce_int_parse(s, &i) == 0) {
            out->type = RC_CESQL_TYPE_INT;
            out->len = 0;
            out->u.i = i;
            return;
        }
    } else if (type == RC_CE_BOOLEAN && (s.len == 4 || s.len == 5)) {
        out->type = RC_CESQL_TYPE_BOOL;
        out->len = 0;
        out->u.b = s.len == 4; /* canonical: "true" or "false" */
        return;
    }
    out->type = RC_CESQL_TYPE_STRING;
    out->len = (uint32_t)s.len;
    out->u.s = s.ptr;
}

static inline __attribute__((always_inline)) bool
get_record(const void *event, const rc_cesql_attr_t *attr, rc_cesql_value_t *out)
{
    const rc_record_view_t *view = event;
    if (attr->core >= 0) {
        rc_record_span_t sp = view->hdr->attr[attr->core];
        if (sp.off == 0)
            return false;
        out->type = RC_CESQL_TYPE_STRING; /* every core attribute is a String for CESQL */
        out->len = sp.len;
        out->u.s = (const char *)view->base + sp.off;
        return true;
    }
    rc_ce_key_t key = {.name = {attr->name, attr->len}, .core = -1, .hash = attr->hash};
    rc_ce_value_t v;
    if (rc_record_get_key(view, &key, &v) != 0)
        return false;
    to_value(v.value, v.type, out);
    return true;
}

bool rc_cesql_get_record(const void *event, const rc_cesql_attr_t *attr, rc_cesql_value_t *out)
{
    return get_record(event, attr, out);
}

void rc_cesql_eval_record(const rc_cesql_program_t *prog, const rc_record_view_t *view,
                          char *scratch, size_t scratch_len, rc_cesql_result_t *out)
{
    rc__cesql_run(prog, get_record, view, scratch, scratch_len, out);
}

/* The general case, kept out of line so the fast path below stays a small leaf function (no
 * 8 KiB frame, no saved registers). */
static __attribute__((noinline)) bool
match_vm(const rc_cesql_program_t *prog, const rc_record_view_t *view, rc_cesql_errkind_t *err)
{
    char scratch[RC_CESQL_MATCH_SCRATCH];
    rc_cesql_result_t r;
    rc__cesql_run(prog, get_record, view, scratch, sizeof(scratch), &r);
    if (err != NULL)
        *err = r.error;
    return r.error == RC_CESQL_OK && r.value.type == RC_CESQL_TYPE_BOOL && r.value.u.b;
}

bool rc_cesql_match_record(const rc_cesql_program_t *prog, const rc_record_view_t *view,
                           rc_cesql_errkind_t *err)
{
    if (prog->fast_core < 0)
        return match_vm(prog, view, err);
    /* Exactly what RC__I_ATTR_EQ_STR does for a core attribute (always a String). */
    rc_record_span_t sp = view->hdr->attr[prog->fast_core];
    if (err != NULL)
        *err = sp.off == 0 ? RC_CESQL_ERR_MISSING_ATTRIBUTE : RC_CESQL_OK;
    if (sp.off == 0)
        return false;
    bool eq = sp.len == prog->fast_len &&
              rc__cesql_bytes_eq((const char *)view->base + sp.off, prog->fast_str, sp.len);
    return eq != (bool)prog->fast_negate;
}

bool rc_cesql_get_event(const void *event, const rc_cesql_attr_t *attr, rc_cesql_value_t *out)
{
    const rc_event_t *ev = event;
    if (attr->core >= 0) {
        rc_str_t s = ev->attr[attr->core];
        if (s.ptr == NULL)
            return false;
        to_value(s, RC_CE_STRING, out);
        return true;
    }
    const rc_ce_ext_t *e = rc_event_find_ext(ev, (rc_str_t){attr->name, attr->len});
    if (e == NULL)
        return false;
    to_value(e->value, e->type, out);
    return true;
}
