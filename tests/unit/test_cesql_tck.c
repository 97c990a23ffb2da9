/* Runs the official CloudEvents SQL TCK (the .yaml files of $RC_SHARED_DIR/cesql-tck): every
 * case of every file, checking both the result and the error kind. Each case is evaluated twice:
 * over a flat attribute table and over a real ring record (core/record.h) encoded from the same
 * event through rc_cesql_get_record; both must give the expected answer. One case of the suite
 * contradicts the spec (see ../shared/cesql-tck/NOTES.md and docs/cesql.md): for it the spec's
 * answer is expected and the case is reported as a known deviation. Skips (77) when the folder is
 * absent. */
#include "core/cesql.h"
#include "core/cesql_record.h"
#include "core/event.h"
#include "core/record.h"
#include "tests/test.h"

#include <dirent.h>
#include <stdbool.h>
#include <strings.h>
#include <yaml.h>

#define MAX_ATTRS 32

typedef struct {
    char name[64];
    rc_cesql_value_t v;
    char buf[256];
} attr_t;

typedef struct {
    attr_t a[MAX_ATTRS];
    int n;
} event_t;

static bool get_attr(const void *event, const rc_cesql_attr_t *attr, rc_cesql_value_t *out)
{
    const event_t *ev = event;
    for (int i = 0; i < ev->n; i++) {
        if (strcmp(ev->a[i].name, attr->name) == 0) {
            *out = ev->a[i].v;
            return true;
        }
    }
    return false;
}

/* YAML scalar -> value: plain true/false (any case) is a Boolean, a plain integer an Integer,
 * anything else (and every quoted scalar) a String. */
static void scalar_value(yaml_node_t *node, char *buf, size_t cap, rc_cesql_value_t *v)
{
    const char *s = (const char *)node->data.scalar.value;
    size_t len = node->data.scalar.length;
    bool plain = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    memset(v, 0, sizeof(*v));
    if (plain && (strcasecmp(s, "true") == 0 || strcasecmp(s, "false") == 0)) {
        v->type = RC_CESQL_TYPE_BOOL;
        v->u.b = strcasecmp(s, "true") == 0;
        return;
    }
    if (plain && len > 0) {
        char *end;
        long long x = strtoll(s, &end, 10);
        if (*end == '\0' && x >= INT32_MIN && x <= INT32_MAX) {
            v->type = RC_CESQL_TYPE_INT;
            v->u.i = (int32_t)x;
            return;
        }
    }
    if (len >= cap)
        RC_TEST_FAIL("scalar too long for the test's buffer: %s", s);
    memcpy(buf, s, len + 1);
    v->type = RC_CESQL_TYPE_STRING;
    v->u.s = buf;
    v->len = (uint32_t)len;
}

static void event_set(event_t *ev, const char *name, yaml_node_t *value)
{
    int i = 0;
    while (i < ev->n && strcmp(ev->a[i].name, name) != 0)
        i++;
    if (i == ev->n) {
        if (ev->n == MAX_ATTRS)
            RC_TEST_FAIL("too many attributes in a TCK event");
        ev->n++;
    }
    snprintf(ev->a[i].name, sizeof(ev->a[i].name), "%s", name);
    if (value->type != YAML_SCALAR_NODE)
        RC_TEST_FAIL("attribute %s is not a scalar", name);
    scalar_value(value, ev->a[i].buf, sizeof(ev->a[i].buf), &ev->a[i].v);
}

static void event_apply(yaml_document_t *doc, yaml_node_t *map, event_t *ev)
{
    if (map->type != YAML_MAPPING_NODE)
        RC_TEST_FAIL("event is not a mapping");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        event_set(ev, (const char *)k->data.scalar.value, yaml_document_get_node(doc, p->value));
    }
}

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

static void value_str(const rc_cesql_value_t *v, char *buf, size_t cap)
{
    switch (v->type) {
    case RC_CESQL_TYPE_BOOL:
        snprintf(buf, cap, "%s", v->u.b ? "true" : "false");
        break;
    case RC_CESQL_TYPE_INT:
        snprintf(buf, cap, "%d", v->u.i);
        break;
    case RC_CESQL_TYPE_STRING:
        snprintf(buf, cap, "'%.*s'", (int)v->len, v->u.s);
        break;
    default:
        snprintf(buf, cap, "(none)");
        break;
    }
}

static bool value_eq(const rc_cesql_value_t *a, const rc_cesql_value_t *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case RC_CESQL_TYPE_BOOL:
        return a->u.b == b->u.b;
    case RC_CESQL_TYPE_INT:
        return a->u.i == b->u.i;
    default:
        return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
    }
}

/* Encodes the test event as a ring record (Integer and Boolean extensions keep their types,
 * as the ingress decoders would type them) and decodes a view of it. */
static void *to_record(const event_t *src, rc_record_view_t *view)
{
    rc_ce_ext_t ext[MAX_ATTRS];
    char ints[MAX_ATTRS][12];
    rc_event_t ev;
    rc_event_init(&ev, ext, MAX_ATTRS);
    for (int i = 0; i < src->n; i++) {
        const attr_t *a = &src->a[i];
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
        else
            ASSERT_EQ(rc_event_set_ext(&ev, NULL, name, value, type), 0);
    }
    size_t size = rc_record_size(&ev), len = 0;
    ASSERT(size > 0);
    void *rec = aligned_alloc(8, size);
    ASSERT(rec != NULL);
    ASSERT_EQ(rc_record_encode(&ev, rec, size, &len), 0);
    ASSERT_EQ(rc_record_decode(rec, len, view), 0);
    return rec;
}

static bool same_result(const rc_cesql_result_t *a, const rc_cesql_result_t *b)
{
    return a->error == b->error && value_eq(&a->value, &b->value);
}

static int passed, failed, deviations;

static void run_case(const char *file, yaml_document_t *doc, yaml_node_t *tc)
{
    yaml_node_t *name = map_get(doc, tc, "name");
    yaml_node_t *expr = map_get(doc, tc, "expression");
    yaml_node_t *result = map_get(doc, tc, "result");
    yaml_node_t *error = map_get(doc, tc, "error");
    yaml_node_t *event = map_get(doc, tc, "event");
    yaml_node_t *overrides = map_get(doc, tc, "eventOverrides");
    if (name == NULL || expr == NULL)
        RC_TEST_FAIL("%s: a case without name or expression", file);
    const char *cname = (const char *)name->data.scalar.value;
    const char *ctext = (const char *)expr->data.scalar.value;

    bool has_result = result != NULL;
    rc_cesql_value_t want;
    char want_buf[256];
    if (has_result)
        scalar_value(result, want_buf, sizeof(want_buf), &want);
    const char *want_err = error ? (const char *)error->data.scalar.value : NULL;

    /* NOTES.md: `NOT 10` is `false` without error per the spec's cast table (3.7); the suite's
     * copy says `true` with a cast error. Expect the spec's answer. */
    bool deviation =
        strcmp(file, "not_operator.yaml") == 0 && strcmp(cname, "Invalid int cast") == 0;
    if (deviation) {
        want.type = RC_CESQL_TYPE_BOOL;
        want.u.b = false;
        has_result = true;
        want_err = NULL;
    }

    /* Without `event`, any valid event will do: the required attributes plus the overrides. */
    event_t ev = {0};
    if (event != NULL) {
        event_apply(doc, event, &ev);
    } else {
        static const char *const req[][2] = {
            {"specversion", "1.0"}, {"id", "tck-id"}, {"source", "/tck"}, {"type", "tck.type"}};
        for (int i = 0; i < 4; i++) {
            snprintf(ev.a[i].name, sizeof(ev.a[i].name), "%s", req[i][0]);
            snprintf(ev.a[i].buf, sizeof(ev.a[i].buf), "%s", req[i][1]);
            ev.a[i].v.type = RC_CESQL_TYPE_STRING;
            ev.a[i].v.u.s = ev.a[i].buf;
            ev.a[i].v.len = (uint32_t)strlen(ev.a[i].buf);
        }
        ev.n = 4;
    }
    if (overrides != NULL)
        event_apply(doc, overrides, &ev);

    rc_cesql_program_t *prog = NULL;
    rc_cesql_error_t cerr;
    rc_cesql_result_t got = {0};
    static char scratch[1 << 16];
    bool ok = true;
    char why[1024] = "";
    if (rc_cesql_compile(ctext, strlen(ctext), &prog, &cerr) != 0) {
        /* A compile-time error: parse, or missingFunction whose value is false (spec 3.5). */
        got.error = cerr.kind;
        if (cerr.kind == RC_CESQL_ERR_MISSING_FUNCTION)
            got.value = (rc_cesql_value_t){.type = RC_CESQL_TYPE_BOOL, .u.b = false};
        if (want_err == NULL || strcmp(want_err, rc_cesql_errkind_name(cerr.kind)) != 0) {
            ok = false;
            snprintf(why, sizeof(why), "compile error %s (%s), expected %s",
                     rc_cesql_errkind_name(cerr.kind), cerr.msg, want_err ? want_err : "none");
        } else if (cerr.kind == RC_CESQL_ERR_PARSE) {
            has_result = false; /* nothing is evaluated after a parse error */
        }
    } else {
        rc_cesql_eval(prog, get_attr, &ev, scratch, sizeof(scratch), &got);
        rc_record_view_t view;
        void *rec = to_record(&ev, &view);
        static char scratch2[1 << 16];
        rc_cesql_result_t via_record;
        rc_cesql_eval_record(prog, &view, scratch2, sizeof(scratch2), &via_record);
        if (!same_result(&got, &via_record)) {
            char g[300], w[300];
            value_str(&got.value, g, sizeof(g));
            value_str(&via_record.value, w, sizeof(w));
            ok = false;
            snprintf(why, sizeof(why), "over a ring record: %s (%s), over attributes: %s (%s)", w,
                     rc_cesql_errkind_name(via_record.error) ?: "none", g,
                     rc_cesql_errkind_name(got.error) ?: "none");
        }
        free(rec);
        const char *got_err = rc_cesql_errkind_name(got.error);
        if (ok && ((want_err == NULL) != (got_err == NULL) ||
                   (want_err != NULL && strcmp(want_err, got_err) != 0))) {
            ok = false;
            snprintf(why, sizeof(why), "error %s, expected %s", got_err ? got_err : "none",
                     want_err ? want_err : "none");
        }
    }
    if (ok && has_result && !value_eq(&got.value, &want)) {
        char g[300], w[300];
        value_str(&got.value, g, sizeof(g));
        value_str(&want, w, sizeof(w));
        ok = false;
        snprintf(why, sizeof(why), "result %s, expected %s", g, w);
    }
    rc_cesql_destroy(prog);
    if (ok) {
        passed++;
        if (deviation) {
            deviations++;
            printf("known deviation: %s / %s: `%s` gives false without error (spec 3.7), the "
                   "suite's copy expects true with a cast error\n",
                   file, cname, ctext);
        }
    } else {
        failed++;
        printf("FAIL %s / %s: `%s`: %s\n", file, cname, ctext, why);
    }
}

static void run_file(const char *dir, const char *file)
{
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        RC_TEST_FAIL("cannot open %s", path);
    yaml_parser_t parser;
    yaml_document_t doc;
    ASSERT(yaml_parser_initialize(&parser));
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc))
        RC_TEST_FAIL("%s: YAML error: %s (line %zu)", path, parser.problem,
                     parser.problem_mark.line + 1);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL || root->type != YAML_MAPPING_NODE)
        RC_TEST_FAIL("%s: not a TCK file", path);
    yaml_node_t *tests = map_get(&doc, root, "tests");
    if (tests == NULL || tests->type != YAML_SEQUENCE_NODE)
        RC_TEST_FAIL("%s: no tests list", path);
    for (yaml_node_item_t *it = tests->data.sequence.items.start;
         it < tests->data.sequence.items.top; it++)
        run_case(file, &doc, yaml_document_get_node(&doc, *it));
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    const char *shared = getenv("RC_SHARED_DIR");
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/cesql-tck", shared ? shared : "../shared");
    DIR *d = opendir(dir);
    if (d == NULL)
        RC_TEST_SKIP("CESQL TCK not found at %s (set RC_SHARED_DIR)", dir);
    char *files[128];
    int nfiles = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && nfiles < 128) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".yaml") == 0)
            files[nfiles++] = strdup(e->d_name);
    }
    closedir(d);
    if (nfiles == 0)
        RC_TEST_SKIP("no .yaml files in %s", dir);
    qsort(files, (size_t)nfiles, sizeof(files[0]), cmp_names);
    for (int i = 0; i < nfiles; i++) {
        run_file(dir, files[i]);
        free(files[i]);
    }
    printf("cesql_tck: %d of %d cases passed (%d files, %d known deviation)\n", passed,
           passed + failed, nfiles, deviations);
    return failed == 0 ? 0 : 1;
}
