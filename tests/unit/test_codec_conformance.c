/* Drives the codecs with the CloudEvents conformance data in $RC_SHARED_DIR/ce-conformance
 * (read at test time, never copied into the repository):
 *   format/json/ files   valid and invalid events and batches, compared with the "golden"
 *                        sample events of format/README.md, written here in code; every valid
 *                        event also goes through binary mode and back;
 *   yaml/ (recursive)    events given as attributes + data, sent both in binary mode (ce-*
 *                        headers) and structured mode; 0.3 events must be refused (ringcast
 *                        speaks 1.0 only), and values the 1.0.2 String type forbids (control
 *                        characters) must be refused naming the attribute;
 *   features/ (Gherkin)  the HTTP binding scenarios: the raw HTTP requests are parsed and fed
 *                        to rc_ce_decode_request, attributes and data compared with the tables.
 * Exits 77 when the data is absent. */
#include "core/codec_http.h"
#include "core/codec_json.h"
#include "core/errors.h"
#include "core/validate.h"
#include "tests/test.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <yaml.h>

static rc_arena_t arena;
static int checks;

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        RC_TEST_FAIL("cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ASSERT(buf != NULL);
    ASSERT_EQ(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* ---- golden samples (format/README.md) ------------------------------------------------- */

typedef struct {
    const char *name, *value;
} kv_t;

typedef struct {
    const char *id;
    kv_t attrs[8]; /* besides specversion/id/type/source of "minimal" */
    const char *data;
} golden_t;

static const golden_t goldens[] = {
    { "minimal", { { NULL, NULL } }, NULL },
    { "minimalWithTime", { { "time", "2018-04-05T17:31:00Z" } }, NULL },
    { "minimalWithRelativeSource", { { "source", "#fragment" } }, NULL },
    { "allCore",
      { { "datacontenttype", "text/plain" },
        { "dataschema", "https://cloudevents.io/dataschema" },
        { "subject", "tests" },
        { "time", "2018-04-05T17:31:00Z" } },
      NULL },
    /* README gives this sample the id "simpleData"; the data file uses "simpleTextData". The
     * file is what implementations are tested against, so its id is used. */
    { "simpleTextData", { { "datacontenttype", "text/plain" } }, "Simple text" },
    /* Extension values are compared as canonical strings: no extension definitions needed. */
    { "allExtensionTypes",
      { { "extinteger", "10" },
        { "extboolean", "true" },
        { "extstring", "text" },
        { "extbinary", "TWE=" },
        { "exttimestamp", "2023-03-31T15:12:00Z" },
        { "exturi", "https://cloudevents.io" },
        { "exturiref", "//authority/path" } },
      NULL },
};

static bool same_instant(rc_str_t a, rc_str_t b)
{
    int64_t s1, s2;
    uint32_t n1, n2;
    if (rc_ce_time_parse(a, &s1, &n1) != 0 || rc_ce_time_parse(b, &s2, &n2) != 0)
        return false;
    return s1 == s2 && n1 / 1000000 == n2 / 1000000; /* README: millisecond precision */
}

static bool is_time_attr(const char *name)
{
    return strcmp(name, "time") == 0 || strcmp(name, "exttimestamp") == 0;
}

/* Whether `ev` equals the golden sample `sample` (attributes, extensions, data). */
static void check_golden(const rc_event_t *ev, const char *sample, const char *what)
{
    const golden_t *g = NULL;
    for (size_t i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++)
        if (strcmp(goldens[i].id, sample) == 0)
            g = &goldens[i];
    if (g == NULL)
        RC_TEST_FAIL("%s: unknown sample %s", what, sample);
    kv_t want[16] = { { "specversion", "1.0" },
                      { "id", g->id },
                      { "type", "io.cloudevents.test" },
                      { "source", "https://cloudevents.io" } };
    size_t n = 4;
    for (size_t i = 0; i < 8 && g->attrs[i].name; i++) {
        size_t k = 0;
        while (k < n && strcmp(want[k].name, g->attrs[i].name) != 0)
            k++;
        want[k] = g->attrs[i];
        if (k == n)
            n++;
    }
    size_t present = 0;
    for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++)
        present += ev->attr[i].ptr != NULL;
    if (present + ev->ext_count != n)
        RC_TEST_FAIL("%s: %zu attributes, sample %s has %zu", what, present + ev->ext_count,
                     sample, n);
    for (size_t i = 0; i < n; i++) {
        rc_ce_value_t v;
        if (rc_event_get(ev, rc_str(want[i].name), &v) != 0)
            RC_TEST_FAIL("%s: attribute %s missing", what, want[i].name);
        bool ok = is_time_attr(want[i].name) ? same_instant(v.value, rc_str(want[i].value))
                                              : rc_str_eq_cstr(v.value, want[i].value);
        if (!ok)
            RC_TEST_FAIL("%s: %s is \"%.*s\", want \"%s\"", what, want[i].name,
                         (int)v.value.len, v.value.ptr, want[i].value);
    }
    if (g->data == NULL ? ev->data.ptr != NULL : !rc_str_eq_cstr(ev->data, g->data))
        RC_TEST_FAIL("%s: data \"%.*s\"", what, (int)ev->data.len, ev->data.ptr);
    checks++;
}

/* The same event written in binary mode and decoded again keeps every value. */
static void check_binary_twin(const rc_event_t *ev, const char *what)
{
    char block[8192];
    size_t len;
    ASSERT_EQ(rc_ce_write_binary(ev, 0, block, sizeof(block), &len), 0);
    rc_http_header_t h[64];
    size_t n = 0;
    for (char *p = block; p < block + len && n < 64;) {
        char *crlf = memmem(p, (size_t)(block + len - p), "\r\n", 2);
        char *colon = memchr(p, ':', (size_t)(crlf - p));
        h[n].name = (rc_str_t){ p, (size_t)(colon - p) };
        h[n].value = (rc_str_t){ colon + 2, (size_t)(crlf - colon - 2) };
        n++;
        p = crlf + 2;
    }
    rc_event_t back;
    rc_ce_error_t err = { .index = -1 };
    if (rc_ce_decode_binary(h, n, ev->data, &arena, &back, &err) != 0)
        RC_TEST_FAIL("%s (binary mode): %s", what, err.rule);
    for (int i = 0; i < RC_CE_ATTR_CORE_COUNT; i++)
        ASSERT(rc_str_eq(back.attr[i], ev->attr[i]));
    ASSERT_EQ(back.ext_count, ev->ext_count);
    for (uint32_t i = 0; i < ev->ext_count; i++)
        ASSERT(rc_str_eq(back.ext[i].value, ev->ext[i].value));
    checks++;
}

static void run_json_file(const char *dir, const char *file)
{
    char path[8192];
    snprintf(path, sizeof(path), "%.4000s/%.255s", dir, file);
    size_t len;
    char *text = read_file(path, &len);
    /* The files start with a UTF-8 BOM in some versions; cJSON does not skip it. */
    const char *start = text;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        start += 3;
    cJSON *root = cJSON_Parse(start);
    if (root == NULL)
        RC_TEST_FAIL("%s: not JSON", path);
    const char *deftype = cJSON_GetStringValue(cJSON_GetObjectItem(root, "testType"));
    const cJSON *tests = cJSON_GetObjectItem(root, "tests");
    ASSERT(deftype != NULL && cJSON_IsArray(tests));
    const cJSON *t;
    cJSON_ArrayForEach(t, tests)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(t, "id"));
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(t, "testType"));
        const char *sample = cJSON_GetStringValue(cJSON_GetObjectItem(t, "sampleId"));
        if (type == NULL)
            type = deftype;
        if (cJSON_IsTrue(cJSON_GetObjectItem(t, "extensionConstraints"))) {
            printf("  %s: skipped (needs extension constraints, not supported)\n", id);
            continue;
        }
        char what[256];
        snprintf(what, sizeof(what), "%s/%s", file, id);
        bool batch = strstr(type, "Batch") != NULL;
        bool valid = strncmp(type, "Valid", 5) == 0;
        char *body = cJSON_PrintUnformatted(cJSON_GetObjectItem(t, batch ? "batch" : "event"));
        ASSERT(body != NULL);
        rc_ce_error_t err = { .index = -1 };
        rc_event_t *evs = NULL, one;
        size_t n = 0;
        int rc = batch ? rc_ce_decode_batch(rc_str(body), &arena, 1000, &evs, &n, &err)
                       : rc_ce_decode_structured(rc_str(body), &arena, &one, &err);
        if (!batch && rc == 0) {
            evs = &one;
            n = 1;
        }
        if (!valid) {
            if (rc != RC_EINVALID_EVENT)
                RC_TEST_FAIL("%s: accepted an invalid %s", what, batch ? "batch" : "event");
            char msg[256];
            rc_ce_error_format(&err, msg, sizeof(msg));
            printf("  %s: rejected: %s\n", id, msg);
            checks++;
        } else {
            if (rc != 0)
                RC_TEST_FAIL("%s: rejected: %.*s: %s (index %d)", what, (int)err.field.len,
                             err.field.ptr, err.rule, (int)err.index);
            if (batch) {
                /* Batch samples: empty, minimal, minimal2, minimalAndAllCore, ...AllExtensionTypes */
                const char *want[2] = { NULL, NULL };
                size_t wn = 0;
                if (strcmp(sample, "minimal") == 0)
                    want[wn++] = "minimal";
                else if (strcmp(sample, "minimal2") == 0)
                    want[wn++] = "minimal", want[wn++] = "minimal";
                else if (strcmp(sample, "minimalAndAllCore") == 0)
                    want[wn++] = "minimal", want[wn++] = "allCore";
                else if (strcmp(sample, "minimalAndAllExtensionTypes") == 0)
                    want[wn++] = "minimal", want[wn++] = "allExtensionTypes";
                else if (strcmp(sample, "empty") != 0)
                    RC_TEST_FAIL("%s: unknown batch sample %s", what, sample);
                ASSERT_EQ(n, wn);
                for (size_t i = 0; i < n; i++) {
                    /* Batch copies of "minimal" carry their own ids in some files. */
                    check_golden(&evs[i], want[i], what);
                }
            } else {
                check_golden(&evs[0], sample, what);
                check_binary_twin(&evs[0], what);
            }
            printf("  %s: ok\n", id);
        }
        cJSON_free(body);
        rc_arena_reset(&arena);
    }
    cJSON_Delete(root);
    free(text);
}

/* ---- yaml/ ---------------------------------------------------------------------------------- */

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

static rc_str_t scalar(yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE)
        return RC_STR_NULL;
    return (rc_str_t){ (const char *)n->data.scalar.value, n->data.scalar.length };
}

static bool has_control(rc_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.ptr[i] < 0x20 || s.ptr[i] == 0x7f)
            return true;
    return false;
}

typedef struct {
    rc_str_t name, value;
} attr_t;

/* Checks a decoded event against the document's attributes and data. */
static void check_yaml_event(int rc, const rc_ce_error_t *err, const rc_event_t *ev,
                             const attr_t *attrs, size_t n, rc_str_t data, bool json_data,
                             const char *what)
{
    /* What the spec says the outcome must be. */
    const char *bad = NULL;
    for (size_t i = 0; i < n && bad == NULL; i++) {
        if (rc_str_eq(attrs[i].name, RC_STR("specversion")) &&
            !rc_str_eq(attrs[i].value, RC_STR("1.0")))
            bad = "specversion";
        else if (has_control(attrs[i].value))
            bad = attrs[i].name.ptr;
    }
    if (bad != NULL) {
        if (rc != RC_EINVALID_EVENT)
            RC_TEST_FAIL("%s: accepted although %s is invalid", what, bad);
        if (strncmp(err->field.ptr ? err->field.ptr : "", bad, strlen(bad)) != 0)
            RC_TEST_FAIL("%s: rejected for %.*s, expected %s", what, (int)err->field.len,
                         err->field.ptr, bad);
        printf("  %s: rejected: %.*s: %s\n", what, (int)err->field.len, err->field.ptr,
               err->rule);
        checks++;
        return;
    }
    if (rc != 0)
        RC_TEST_FAIL("%s: rejected: %.*s: %s", what, (int)err->field.len, err->field.ptr,
                     err->rule);
    for (size_t i = 0; i < n; i++) {
        rc_ce_value_t v;
        if (rc_event_get(ev, attrs[i].name, &v) != 0 || !rc_str_eq(v.value, attrs[i].value))
            RC_TEST_FAIL("%s: %.*s differs", what, (int)attrs[i].name.len, attrs[i].name.ptr);
    }
    if (json_data) {
        /* Structured mode keeps the JSON value's text without the surrounding whitespace. */
        while (data.len && (data.ptr[data.len - 1] == '\n' || data.ptr[data.len - 1] == ' '))
            data.len--;
    }
    if (!rc_str_eq(ev->data, data))
        RC_TEST_FAIL("%s: data \"%.*s\"", what, (int)ev->data.len, ev->data.ptr);
    printf("  %s: ok\n", what);
    checks++;
}

static void run_yaml_doc(yaml_document_t *doc, const char *file, int index)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (root == NULL)
        return;
    yaml_node_t *ctx = map_get(doc, root, "ContextAttributes");
    ASSERT(ctx != NULL);
    attr_t attrs[32];
    size_t n = 0;
    for (yaml_node_pair_t *p = ctx->data.mapping.pairs.start; p < ctx->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        if (strcmp((char *)k->data.scalar.value, "Extensions") == 0) {
            for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
                 q < v->data.mapping.pairs.top && n < 32; q++)
                attrs[n++] = (attr_t){ scalar(yaml_document_get_node(doc, q->key)),
                                       scalar(yaml_document_get_node(doc, q->value)) };
            continue;
        }
        attrs[n++] = (attr_t){ scalar(k), scalar(v) };
    }
    rc_str_t mode = scalar(map_get(doc, root, "Mode"));
    rc_str_t data = scalar(map_get(doc, root, "Data"));
    yaml_node_t *transport = map_get(doc, root, "TransportExtensions");
    rc_str_t ct = RC_STR_NULL;
    for (size_t i = 0; i < n; i++)
        if (rc_str_eq(attrs[i].name, RC_STR("datacontenttype")))
            ct = attrs[i].value;

    char what[2048];
    if (mode.ptr == NULL || rc_str_eq(mode, RC_STR("binary"))) {
        rc_http_header_t h[48];
        size_t hn = 0;
        char enc[32][512];
        for (size_t i = 0; i < n; i++) {
            if (rc_str_eq(attrs[i].name, RC_STR("datacontenttype"))) {
                h[hn++] = (rc_http_header_t){ RC_STR("Content-Type"), attrs[i].value };
                continue;
            }
            char *name = rc_arena_alloc(&arena, attrs[i].name.len + 3, 1);
            memcpy(name, "ce-", 3);
            memcpy(name + 3, attrs[i].name.ptr, attrs[i].name.len);
            size_t el = rc_ce_percent_encode(attrs[i].value, enc[i], sizeof(enc[i]));
            ASSERT(el <= sizeof(enc[i]));
            h[hn++] = (rc_http_header_t){ { name, attrs[i].name.len + 3 }, { enc[i], el } };
        }
        if (transport != NULL)
            for (yaml_node_pair_t *q = transport->data.mapping.pairs.start;
                 q < transport->data.mapping.pairs.top; q++)
                h[hn++] = (rc_http_header_t){ scalar(yaml_document_get_node(doc, q->key)),
                                              scalar(yaml_document_get_node(doc, q->value)) };
        rc_event_t *evs = NULL;
        size_t ne = 0;
        rc_ce_error_t err = { .index = -1 };
        int rc = rc_ce_decode_request(h, hn, data, &arena, 1, &evs, &ne, &err);
        snprintf(what, sizeof(what), "%s#%d binary", file, index);
        check_yaml_event(rc, &err, evs, attrs, n, data, false, what);
        rc_arena_reset(&arena);
    }
    if (mode.ptr == NULL || rc_str_eq(mode, RC_STR("structured"))) {
        cJSON *obj = cJSON_CreateObject();
        char tmp[1024];
        for (size_t i = 0; i < n; i++) {
            snprintf(tmp, sizeof(tmp), "%.*s", (int)attrs[i].name.len, attrs[i].name.ptr);
            char *val = strndup(attrs[i].value.ptr, attrs[i].value.len);
            cJSON_AddStringToObject(obj, tmp, val);
            free(val);
        }
        bool json = ct.ptr == NULL || rc_ce_is_json_media_type(ct);
        if (data.ptr != NULL) {
            char *d = strndup(data.ptr, data.len);
            cJSON *dv = json ? cJSON_Parse(d) : cJSON_CreateString(d);
            ASSERT(dv != NULL);
            cJSON_AddItemToObject(obj, "data", dv);
            free(d);
        }
        char *body = cJSON_PrintUnformatted(obj);
        rc_http_header_t h[] = { { RC_STR("Content-Type"),
                                   RC_STR("application/cloudevents+json; charset=utf-8") } };
        rc_event_t *evs = NULL;
        size_t ne = 0;
        rc_ce_error_t err = { .index = -1 };
        int rc = rc_ce_decode_request(h, 1, rc_str(body), &arena, 1, &evs, &ne, &err);
        snprintf(what, sizeof(what), "%s#%d structured", file, index);
        /* cJSON re-printed the data compactly: compare with what it printed. */
        char *printed = data.ptr && json ? cJSON_PrintUnformatted(cJSON_GetObjectItem(obj, "data"))
                                         : NULL;
        check_yaml_event(rc, &err, evs, attrs, n, printed ? rc_str(printed) : data, json, what);
        cJSON_free(printed);
        cJSON_free(body);
        cJSON_Delete(obj);
        rc_arena_reset(&arena);
    }
}

static void run_yaml_file(const char *path, const char *name)
{
    FILE *f = fopen(path, "rb");
    ASSERT(f != NULL);
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    for (int index = 0;; index++) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc))
            RC_TEST_FAIL("%s: YAML error: %s", path, parser.problem);
        if (yaml_document_get_root_node(&doc) == NULL) {
            yaml_document_delete(&doc);
            break;
        }
        run_yaml_doc(&doc, name, index);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(f);
}

static void run_yaml_dir(const char *dir, const char *rel)
{
    DIR *d = opendir(dir);
    ASSERT(d != NULL);
    struct dirent *e;
    char names[64][256];
    int n = 0;
    while ((e = readdir(d)) != NULL && n < 64)
        if (e->d_name[0] != '.')
            snprintf(names[n++], sizeof(names[0]), "%s", e->d_name);
    closedir(d);
    for (int i = 0; i < n; i++) {
        char path[8192], r[1024];
        struct stat st;
        snprintf(path, sizeof(path), "%.4000s/%.255s", dir, names[i]);
        snprintf(r, sizeof(r), "%.500s%s%.255s", rel, *rel ? "/" : "", names[i]);
        size_t l = strlen(names[i]);
        if (l > 5 && strcmp(names[i] + l - 5, ".yaml") == 0)
            run_yaml_file(path, r);
        else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            run_yaml_dir(path, r);
    }
}

/* ---- features/ (Gherkin) -------------------------------------------------------------------- */

/* Collects the lines of a """ docstring starting after line *i, with the indentation of the
 * opening quotes removed. */
static char *docstring(char **lines, int nlines, int *i)
{
    int open = *i;
    size_t indent = strspn(lines[open], " ");
    size_t cap = 8192, len = 0;
    char *out = malloc(cap);
    for (int k = open + 1; k < nlines; k++) {
        const char *l = lines[k];
        if (strncmp(l + strspn(l, " "), "\"\"\"", 3) == 0) {
            *i = k;
            if (len && out[len - 1] == '\n')
                len--;
            out[len] = '\0';
            return out;
        }
        size_t skip = strspn(l, " ");
        l += skip < indent ? skip : indent;
        size_t n = strlen(l);
        ASSERT(len + n + 2 < cap);
        memcpy(out + len, l, n);
        len += n;
        out[len++] = '\n';
    }
    RC_TEST_FAIL("unterminated docstring");
}

static char *substitute(const char *s, const char *key, const char *value)
{
    char pat[128];
    snprintf(pat, sizeof(pat), "<%s>", key);
    size_t cap = strlen(s) * 2 + strlen(value) * 8 + 16, len = 0;
    char *out = malloc(cap);
    while (*s) {
        const char *hit = strstr(s, pat);
        size_t n = hit ? (size_t)(hit - s) : strlen(s);
        memcpy(out + len, s, n);
        len += n;
        s += n;
        if (hit) {
            memcpy(out + len, value, strlen(value));
            len += strlen(value);
            s += strlen(pat);
        }
    }
    out[len] = '\0';
    return out;
}

/* Splits "| a | b |" into trimmed cells; returns the count. */
static int cells(const char *line, char out[][256], int max)
{
    int n = 0;
    const char *p = strchr(line, '|');
    while (p && n < max) {
        const char *q = strchr(p + 1, '|');
        if (q == NULL)
            break;
        const char *b = p + 1, *e = q;
        while (b < e && *b == ' ')
            b++;
        while (e > b && e[-1] == ' ')
            e--;
        snprintf(out[n++], 256, "%.*s", (int)(e - b), b);
        p = q;
    }
    return n;
}

static void run_scenario(const char *request, char attrs[][2][256], int nattrs, const char *data,
                         const char *what)
{
    /* Request line, headers up to the blank line, then the body. */
    char *req = strdup(request);
    char *body = strstr(req, "\n\n");
    ASSERT(body != NULL);
    *body = '\0';
    body += 2;
    rc_http_header_t h[32];
    size_t hn = 0;
    char *save = NULL;
    char *line = strtok_r(req, "\n", &save); /* request line */
    ASSERT(line != NULL && strncmp(line, "POST ", 5) == 0);
    while ((line = strtok_r(NULL, "\n", &save)) != NULL && hn < 32) {
        char *colon = strchr(line, ':');
        ASSERT(colon != NULL);
        char *v = colon + 1;
        while (*v == ' ')
            v++;
        h[hn++] = (rc_http_header_t){ { line, (size_t)(colon - line) }, rc_str(v) };
    }
    rc_event_t *evs;
    size_t ne;
    rc_ce_error_t err = { .index = -1 };
    int rc = rc_ce_decode_request(h, hn, rc_str(body), &arena, 1, &evs, &ne, &err);
    if (rc != 0)
        RC_TEST_FAIL("%s: rejected: %.*s: %s", what, (int)err.field.len, err.field.ptr, err.rule);
    ASSERT_EQ(ne, 1);
    for (int i = 0; i < nattrs; i++) {
        rc_ce_value_t v;
        if (rc_event_get(&evs[0], rc_str(attrs[i][0]), &v) != 0 ||
            !rc_str_eq_cstr(v.value, attrs[i][1]))
            RC_TEST_FAIL("%s: %s is not \"%s\"", what, attrs[i][0], attrs[i][1]);
    }
    if (data != NULL) {
        cJSON *want = cJSON_Parse(data);
        cJSON *got = cJSON_ParseWithLength(evs[0].data.ptr, evs[0].data.len);
        ASSERT(want != NULL);
        if (got == NULL || !cJSON_Compare(want, got, 1))
            RC_TEST_FAIL("%s: data \"%.*s\"", what, (int)evs[0].data.len, evs[0].data.ptr);
        cJSON_Delete(want);
        cJSON_Delete(got);
    }
    printf("  %s: ok\n", what);
    checks++;
    free(req);
    rc_arena_reset(&arena);
}

static void run_feature(const char *path, const char *name)
{
    size_t len;
    char *text = read_file(path, &len);
    char *lines[2048];
    int n = 0;
    for (char *p = text; p && *p && n < 2048;) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        p = nl ? nl + 1 : NULL;
    }
    for (int i = 0; i < n; i++) {
        const char *l = lines[i] + strspn(lines[i], " ");
        if (strncmp(l, "Scenario", 8) != 0)
            continue;
        char *request = NULL, *data = NULL;
        char attrs[16][2][256];
        int nattrs = 0;
        char header[8][256];
        int nheader = 0, examples = 0;
        const char *title = l;
        for (i++; i < n; i++) {
            l = lines[i] + strspn(lines[i], " ");
            if (strncmp(l, "Scenario", 8) == 0) {
                i--;
                break;
            }
            if (strncmp(l, "Given an HTTP request", 21) == 0) {
                i++;
                request = docstring(lines, n, &i);
            } else if (strncmp(l, "Then the attributes are", 23) == 0) {
                for (i++; i < n && lines[i][strspn(lines[i], " ")] == '|'; i++) {
                    char c[4][256];
                    if (cells(lines[i], c, 4) != 2 || strcmp(c[0], "key") == 0)
                        continue;
                    snprintf(attrs[nattrs][0], 256, "%s", c[0]);
                    snprintf(attrs[nattrs][1], 256, "%s", c[1]);
                    nattrs++;
                }
                i--;
            } else if (strncmp(l, "And the data is equal to the following JSON", 43) == 0) {
                i++;
                data = docstring(lines, n, &i);
            } else if (strncmp(l, "Examples:", 9) == 0) {
                for (i++; i < n && lines[i][strspn(lines[i], " ")] == '|'; i++) {
                    char c[8][256];
                    int nc = cells(lines[i], c, 8);
                    if (nheader == 0) {
                        memcpy(header, c, sizeof(c[0]) * (size_t)nc);
                        nheader = nc;
                        continue;
                    }
                    /* One concrete scenario per example row. */
                    char *req = strdup(request);
                    char sub[16][2][256];
                    memcpy(sub, attrs, sizeof(attrs[0]) * (size_t)nattrs);
                    for (int k = 0; k < nc && k < nheader; k++) {
                        char *r2 = substitute(req, header[k], c[k]);
                        free(req);
                        req = r2;
                        for (int a = 0; a < nattrs; a++) {
                            char *s2 = substitute(sub[a][1], header[k], c[k]);
                            snprintf(sub[a][1], 256, "%s", s2);
                            free(s2);
                        }
                    }
                    char what[512];
                    snprintf(what, sizeof(what), "%s: %s [%s]", name, title, c[0]);
                    run_scenario(req, sub, nattrs, data, what);
                    free(req);
                    examples++;
                }
                i--;
            }
        }
        if (request != NULL && examples == 0)
            run_scenario(request, attrs, nattrs, data, title);
        free(request);
        free(data);
    }
    free(text);
}

int main(void)
{
    const char *shared = getenv("RC_SHARED_DIR");
    if (shared == NULL)
        RC_TEST_SKIP("RC_SHARED_DIR is not set (the CloudEvents conformance data lives there)");
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/ce-conformance", shared);
    DIR *d = opendir(dir);
    if (d == NULL)
        RC_TEST_SKIP("%s is absent: no CloudEvents conformance data to run", dir);
    closedir(d);
    rc_arena_init(&arena, NULL, 0, 0);

    char sub[4200];
    snprintf(sub, sizeof(sub), "%s/format/json", dir);
    static const char *const files[] = { "valid-events.json", "invalid-events.json",
                                         "valid-batches.json", "invalid-batches.json" };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        printf("%s\n", files[i]);
        run_json_file(sub, files[i]);
    }
    snprintf(sub, sizeof(sub), "%s/yaml", dir);
    printf("yaml/\n");
    run_yaml_dir(sub, "");
    snprintf(sub, sizeof(sub), "%s/features/http-protocol-binding.feature", dir);
    printf("features/\n");
    run_feature(sub, "http-protocol-binding.feature");

    rc_arena_close(&arena);
    printf("test_codec_conformance: ok (%d checks)\n", checks);
    ASSERT_GT(checks, 50);
    return 0;
}
