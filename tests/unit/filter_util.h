/* Test helpers for filters and routes: a filter loader from JSON (a Trigger's `spec` as JSON,
 * driving the core/filter.h builder the way a config loader does) and ring records built from a
 * compact attribute list. */
#ifndef RC_TESTS_FILTER_UTIL_H
#define RC_TESTS_FILTER_UTIL_H

#include "core/errors.h"
#include "core/event.h"
#include "core/filter.h"
#include "core/record.h"
#include "tests/test.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static inline rc_str_t fu_str(const cJSON *j)
{
    return rc_str(j->valuestring);
}

/* One filter object `o` (already added as `obj`); line = depth, to check lines travel. */
static inline int fu_object(rc_filter_t *f, rc_filter_node_t *obj, const cJSON *o, int line,
                            rc_filter_error_t *err)
{
    if (!cJSON_IsObject(o))
        return rc_filter_error_at(f, obj, line, err, "must be an object");
    for (const cJSON *k = o->child; k != NULL; k = k->next) {
        rc_filter_dialect_t d;
        int rc = rc_filter_set_dialect(f, obj, rc_str(k->string), line, &d, err);
        if (rc != 0)
            return rc;
        switch (d) {
        case RC_FILTER_EXACT:
        case RC_FILTER_PREFIX:
        case RC_FILTER_SUFFIX:
            if (!cJSON_IsObject(k))
                return rc_filter_error_at(f, obj, line, err, "must be a map");
            for (const cJSON *p = k->child; p != NULL; p = p->next) {
                if (!cJSON_IsString(p))
                    return rc_filter_error_at(f, obj, line, err, "values must be strings");
                if ((rc = rc_filter_add_pair(f, obj, rc_str(p->string), fu_str(p), line, err)))
                    return rc;
            }
            break;
        case RC_FILTER_ALL:
        case RC_FILTER_ANY:
            if (!cJSON_IsArray(k))
                return rc_filter_error_at(f, obj, line, err, "must be an array");
            for (const cJSON *e = k->child; e != NULL; e = e->next) {
                rc_filter_node_t *c;
                if ((rc = rc_filter_add_object(f, obj, line + 1, &c, err)) ||
                    (rc = fu_object(f, c, e, line + 1, err)))
                    return rc;
            }
            break;
        case RC_FILTER_NOT: {
            rc_filter_node_t *c;
            if ((rc = rc_filter_add_object(f, obj, line + 1, &c, err)) ||
                (rc = fu_object(f, c, k, line + 1, err)))
                return rc;
            break;
        }
        case RC_FILTER_CESQL:
            if (!cJSON_IsString(k))
                return rc_filter_error_at(f, obj, line, err, "must be a string");
            if ((rc = rc_filter_set_cesql(f, obj, fu_str(k), line, err)))
                return rc;
            break;
        }
    }
    return 0;
}

/* Loads a Trigger spec given as JSON ({"filter": {"attributes": {...}}, "filters": [...]}).
 * Returns 0 and a finished filter, or the builder's error (the filter is then destroyed). */
static inline int fu_load(const char *json, rc_filter_t **out, rc_filter_error_t *err)
{
    cJSON *root = cJSON_Parse(json);
    if (root == NULL)
        RC_TEST_FAIL("bad test JSON: %s", json);
    rc_filter_t *f;
    int rc = rc_filter_create(&f);
    ASSERT_EQ(rc, 0);
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "filter"), "attributes");
    for (const cJSON *a = attrs ? attrs->child : NULL; a != NULL && rc == 0; a = a->next)
        rc = rc_filter_add_attribute(f, rc_str(a->string), fu_str(a), 1, err);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "filters");
    for (const cJSON *e = list ? list->child : NULL; e != NULL && rc == 0; e = e->next) {
        rc_filter_node_t *obj;
        if ((rc = rc_filter_add_object(f, NULL, 1, &obj, err)) == 0)
            rc = fu_object(f, obj, e, 1, err);
    }
    if (rc == 0)
        rc = rc_filter_finish(f, err);
    cJSON_Delete(root);
    if (rc != 0) {
        rc_filter_destroy(f);
        f = NULL;
    }
    *out = f;
    return rc;
}

/* As fu_load, failing the test on any error. */
static inline rc_filter_t *fu_must(const char *json)
{
    rc_filter_t *f;
    rc_filter_error_t err;
    if (fu_load(json, &f, &err) != 0)
        RC_TEST_FAIL("filter %s: %s", json, err.msg);
    return f;
}

/* A ring record built from "name=value;name:int=5;name:bool=true;..." (core attributes by
 * name; others become extensions of the given type, String by default). specversion and id are
 * set unless listed. The record lives in `buf` (8-byte aligned, `cap` bytes). */
static inline void fu_record(const char *spec, void *buf, size_t cap, rc_record_view_t *view)
{
    rc_ce_ext_t ext[32];
    rc_event_t ev;
    rc_event_init(&ev, ext, 32);
    ev.specversion = RC_STR("1.0");
    ev.id = RC_STR("1");
    char *copy = strdup(spec);
    ASSERT(copy != NULL);
    for (char *save = NULL, *item = strtok_r(copy, ";", &save); item != NULL;
         item = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(item, '=');
        ASSERT(eq != NULL);
        *eq = '\0';
        rc_ce_type_t type = RC_CE_STRING;
        char *colon = strchr(item, ':');
        if (colon != NULL) {
            *colon = '\0';
            type = strcmp(colon + 1, "int") == 0    ? RC_CE_INTEGER
                   : strcmp(colon + 1, "bool") == 0 ? RC_CE_BOOLEAN
                   : strcmp(colon + 1, "uri") == 0  ? RC_CE_URI
                                                    : RC_CE_STRING;
        }
        rc_str_t name = rc_str(item), value = rc_str(eq + 1);
        int core = rc_ce_attr_index(name);
        if (core >= 0)
            ev.attr[core] = value;
        else
            ASSERT_EQ(rc_event_set_ext(&ev, NULL, name, value, type), 0);
    }
    size_t len;
    ASSERT_EQ(rc_record_encode(&ev, buf, cap, &len), 0);
    ASSERT_EQ(rc_record_decode(buf, len, view), 0);
    free(copy);
}

#endif
