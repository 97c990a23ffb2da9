/* Fuzz target for CEL routing rules (core/cel.h): the input is an expression, optionally
 * followed by a line break and event data. Whatever it is, compiling must either fail cleanly
 * (RC_ECONFIG, no program, a one-line message) or give a program that evaluates over the data
 * as JSON, as text and with no data at all, with the same answer for the in-memory event as for
 * its ring record, and never true for both the expression and its negation. Sanitizers catch
 * the rest. */
#include "core/cel.h"
#include "core/errors.h"
#include "core/record.h"
#include "tests/fuzz/fuzz_common.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Compiles `src`; on failure checks the error contract and returns NULL. */
static rc_cel_t *compile(const char *src, size_t len)
{
    rc_cel_t *p = (rc_cel_t *)1;
    char err[256];
    int rc = rc_cel_compile(src, len, &p, err, sizeof(err));
    if (rc == 0) {
        FUZZ_CHECK(p != NULL);
        return p;
    }
    FUZZ_CHECK(rc == RC_ECONFIG || rc == -ENOMEM);
    FUZZ_CHECK(p == NULL);
    FUZZ_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
    FUZZ_CHECK(strncmp(err, "column ", 7) == 0 || strstr(err, "expression") != NULL);
    return NULL;
}

/* Evaluates `p` and its negation `np` (may be NULL) over `ev` and its record. */
static void evaluate(const rc_cel_t *p, const rc_cel_t *np, const rc_event_t *ev)
{
    size_t size = rc_record_size(ev), len;
    FUZZ_CHECK(size > 0);
    void *rec = aligned_alloc(8, size);
    FUZZ_CHECK(rec != NULL);
    rc_record_view_t view;
    FUZZ_CHECK(rc_record_encode(ev, rec, size, &len) == 0 &&
               rc_record_decode(rec, len, &view) == 0);
    bool m = rc_cel_match_event(p, ev);
    FUZZ_CHECK(m == rc_cel_match_record(p, &view));
    if (np != NULL) {
        bool nm = rc_cel_match_event(np, ev);
        FUZZ_CHECK(nm == rc_cel_match_record(np, &view));
        FUZZ_CHECK(!(m && nm));
    }
    free(rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *src = (const char *)data;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t len = nl ? (size_t)(nl - data) : size;
    rc_str_t body = nl ? (rc_str_t){(const char *)nl + 1, size - len - 1} : RC_STR_NULL;
    rc_cel_t *p = compile(src, len);
    if (p == NULL)
        return 0;
    char *neg = malloc(len + 4);
    FUZZ_CHECK(neg != NULL);
    memcpy(neg, "!(", 2);
    memcpy(neg + 2, src, len);
    neg[len + 2] = ')';
    rc_cel_t *np = compile(neg, len + 3); /* may be refused: length and depth limits */

    rc_ce_ext_t ext[4];
    rc_event_t ev;
    rc_event_init(&ev, ext, 4);
    ev.specversion = RC_STR("1.0");
    ev.id = RC_STR("fuzz-1");
    ev.source = RC_STR("https://example.com/a");
    ev.type = RC_STR("widget");
    ev.subject = RC_STR("h\xc3\xa9llo");
    FUZZ_CHECK(rc_event_set_ext(&ev, NULL, RC_STR("priority"), RC_STR("-7"), RC_CE_INTEGER) == 0);
    FUZZ_CHECK(rc_event_set_ext(&ev, NULL, RC_STR("flag"), RC_STR("false"), RC_CE_BOOLEAN) == 0);
    FUZZ_CHECK(rc_event_set_ext(&ev, NULL, RC_STR("topic"), RC_STR("orders"), RC_CE_STRING) == 0);
    static const char *const types[] = {NULL, "application/json", "text/plain"};
    for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
        ev.datacontenttype = rc_str(types[k]);
        ev.data = body.ptr ? body : RC_STR("{\"a\": {\"b\": [1, \"x\", null]}, \"n\": 2.5}");
        evaluate(p, np, &ev);
    }
    ev.data = RC_STR_NULL;
    evaluate(p, np, &ev);
    rc_cel_free(np);
    rc_cel_free(p);
    free(neg);
    return 0;
}
