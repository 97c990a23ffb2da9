/* Event data as CEL sees it: a walker over the JSON text that finds the value at a path without
 * building anything. The data is validated once per evaluation (rc__cel_json_valid, with the
 * same scanner as the structured-mode codec, core/json_scan.c); after that, walking only steps
 * over values (rc__json_skip_value) and reads the ones a path names. Numbers become doubles, as
 * Dapr's decoder (Go's encoding/json into interface{}) makes them. */
#include "core/cel_internal.h"
#include "core/json_scan.h"
#include "core/validate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Longest number text converted (JSON allows any length; a double needs at most 17 significant
 * digits, but the text may carry many more). Longer numbers evaluate to an error. */
#define NUM_MAX 512

bool rc__cel_json_valid(rc_str_t data)
{
    if (data.ptr == NULL || data.len == 0 || !rc_ce_is_utf8(data))
        return false;
    rc__json_t j = {.p = data.ptr, .n = data.len};
    rc__json_skip_ws(&j);
    if (rc__json_skip_value(&j, 0) != 0)
        return false;
    rc__json_skip_ws(&j);
    return j.i == j.n;
}

static void number_value(rc__json_t *j, rc__cel_val_t *out)
{
    size_t start = j->i;
    bool integral;
    char buf[NUM_MAX];
    if (rc__json_scan_number(j, &integral) != 0 || j->i - start >= sizeof(buf)) {
        out->kind = RC__CV_ERR;
        return;
    }
    memcpy(buf, j->p + start, j->i - start);
    buf[j->i - start] = '\0';
    out->kind = RC__CV_DOUBLE;
    out->u.d = strtod(buf, NULL);
    /* Go's decoder refuses numbers beyond the double range. */
    if (isinf(out->u.d))
        out->kind = RC__CV_ERR;
}

void rc__cel_json_value(rc_str_t text, rc__cel_val_t *out)
{
    rc__json_t j = {.p = text.ptr, .n = text.len};
    rc__json_skip_ws(&j);
    *out = (rc__cel_val_t){.kind = RC__CV_ERR};
    if (j.i >= j.n)
        return;
    rc_str_t rest = {j.p + j.i, j.n - j.i};
    switch (j.p[j.i]) {
    case '"':
        out->kind = RC__CV_STRING;
        if (rc__json_scan_string(&j, &out->u.s, &out->esc) != 0)
            out->kind = RC__CV_ERR;
        return;
    case '{':
        out->kind = RC__CV_MAP;
        out->u.s = rest;
        return;
    case '[':
        out->kind = RC__CV_LIST;
        out->u.s = rest;
        return;
    case 't':
    case 'f':
        out->kind = RC__CV_BOOL;
        out->u.b = j.p[j.i] == 't';
        return;
    case 'n':
        out->kind = RC__CV_NULL;
        return;
    default:
        number_value(&j, out);
    }
}

bool rc__cel_json_member(const rc__cel_val_t *map, const rc__cel_val_t *key, rc__cel_val_t *out)
{
    rc__json_t j = {.p = map->u.s.ptr, .n = map->u.s.len, .i = 1};
    size_t found = SIZE_MAX;
    rc__json_skip_ws(&j);
    while (j.i < j.n && j.p[j.i] == '"') {
        rc__cel_val_t name = {.kind = RC__CV_STRING};
        if (rc__json_scan_string(&j, &name.u.s, &name.esc) != 0)
            return false;
        rc__json_skip_ws(&j);
        j.i++; /* ':' (the text was validated) */
        rc__json_skip_ws(&j);
        /* Go's decoder keeps the last of repeated names: look at every member. */
        if (rc__cel_equal(&name, key) == 1)
            found = j.i;
        if (rc__json_skip_value(&j, 0) != 0)
            return false;
        rc__json_skip_ws(&j);
        if (j.i < j.n && j.p[j.i] == ',')
            j.i++;
        rc__json_skip_ws(&j);
    }
    if (found == SIZE_MAX)
        return false;
    if (out != NULL)
        rc__cel_json_value((rc_str_t){j.p + found, j.n - found}, out);
    return true;
}

void rc__cel_json_iter_init(rc__cel_json_iter_t *it, const rc__cel_val_t *list)
{
    *it = (rc__cel_json_iter_t){.p = list->u.s.ptr, .n = list->u.s.len, .i = 1};
}

bool rc__cel_json_iter_next(rc__cel_json_iter_t *it, rc__cel_val_t *out)
{
    rc__json_t j = {.p = it->p, .n = it->n, .i = it->i};
    rc__json_skip_ws(&j);
    if (it->started && j.i < j.n && j.p[j.i] == ',') {
        j.i++;
        rc__json_skip_ws(&j);
    }
    it->started = true;
    if (j.i >= j.n || j.p[j.i] == ']')
        return false;
    if (out != NULL)
        rc__cel_json_value((rc_str_t){j.p + j.i, j.n - j.i}, out);
    if (rc__json_skip_value(&j, 0) != 0)
        return false;
    it->i = j.i;
    return true;
}

bool rc__cel_json_index(const rc__cel_val_t *list, int64_t idx, rc__cel_val_t *out)
{
    if (idx < 0)
        return false;
    rc__cel_json_iter_t it;
    rc__cel_json_iter_init(&it, list);
    for (int64_t k = 0; k < idx; k++)
        if (!rc__cel_json_iter_next(&it, NULL))
            return false;
    return rc__cel_json_iter_next(&it, out);
}
