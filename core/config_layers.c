/* A config made of several texts: the config file, then the state file `ringcast apply` keeps
 * (docs/operations.md, "Runtime changes"), and, while an apply is checked, the request's body.
 *
 * The loader reads one text, and every message it writes names that text's lines. Rather than
 * teach each kind's loader about several files, the documents of all sources are cut out of
 * their texts (whole lines, so a document's indentation stays as written), the ones a later
 * source replaces are left out, and the rest are joined into one text with a map from its lines
 * back to (source, line); the loader's message and notes are then rewritten through the map.
 * So an error in a trigger of the state file says "ringcast.state.yaml:12: ...", and one in a
 * request's body "(request):3: ...". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "core/config.h"
#include "core/config_internal.h"
#include "core/errors.h"

/* ---- documents ----------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int failed;   /* out of memory, or past CANON_MAX */
    size_t limit; /* 0: none */
} buf_t;

/* A document's canonical form at most: aliases are expanded in it, and a small body can name
 * a node a billion times ("billion laughs"). */
#define CANON_MAX (4u << 20)

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->limit != 0 && b->len + n > b->limit) {
        b->failed = 2;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (np == NULL) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* The content of `n` without its layout: scalars with their length, mappings and sequences in
 * order. Deep nesting (an alias loop included) ends in a marker rather than a crash. */
static void canon(buf_t *b, yaml_document_t *d, yaml_node_t *n, int depth)
{
    char num[32];
    if (n == NULL || depth > 64) {
        put(b, "~", 1);
        return;
    }
    switch (n->type) {
    case YAML_SCALAR_NODE:
        snprintf(num, sizeof(num), "s%zu:", n->data.scalar.length);
        put(b, num, strlen(num));
        put(b, (const char *)n->data.scalar.value, n->data.scalar.length);
        break;
    case YAML_SEQUENCE_NODE:
        put(b, "[", 1);
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
             i++)
            canon(b, d, yaml_document_get_node(d, *i), depth + 1);
        put(b, "]", 1);
        break;
    case YAML_MAPPING_NODE:
        put(b, "{", 1);
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            canon(b, d, yaml_document_get_node(d, p->key), depth + 1);
            canon(b, d, yaml_document_get_node(d, p->value), depth + 1);
        }
        put(b, "}", 1);
        break;
    default:
        put(b, "~", 1);
    }
}

/* The scalar at `key` of mapping `m` into out (cap bytes), or leaves out as it is. */
static void scalar_at(yaml_document_t *d, yaml_node_t *m, const char *key, char *out, size_t cap)
{
    if (m == NULL || m->type != YAML_MAPPING_NODE)
        return;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key), *v;
        if (k == NULL || k->type != YAML_SCALAR_NODE || strcmp((char *)k->data.scalar.value, key))
            continue;
        v = yaml_document_get_node(d, p->value);
        if (v != NULL && v->type == YAML_SCALAR_NODE && v->data.scalar.length < cap)
            memcpy(out, v->data.scalar.value, v->data.scalar.length + 1);
        return;
    }
}

static yaml_node_t *map_at(yaml_document_t *d, yaml_node_t *m, const char *key)
{
    if (m == NULL || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

/* Fills `o` from one loaded document. */
static int describe(yaml_document_t *d, yaml_node_t *root, rc_config_doc_t *o)
{
    memset(o, 0, sizeof(*o));
    scalar_at(d, root, "kind", o->kind, sizeof(o->kind));
    scalar_at(d, root, "apiVersion", o->api, sizeof(o->api));
    const char *slash = strchr(o->api, '/');
    if (slash != NULL)
        snprintf(o->group, sizeof(o->group), "%.*s", (int)(slash - o->api), o->api);
    yaml_node_t *md = map_at(d, root, "metadata");
    strcpy(o->ns, "default");
    scalar_at(d, md, "namespace", o->ns, sizeof(o->ns));
    scalar_at(d, md, "name", o->name, sizeof(o->name));
    o->line = (int)root->start_mark.line + 1;
    o->off = root->start_mark.index - root->start_mark.column;
    o->len = d->end_mark.index > o->off ? d->end_mark.index - o->off : 0;
    buf_t b = {.limit = CANON_MAX};
    canon(&b, d, root, 0);
    if (b.failed) {
        free(b.p);
        return b.failed == 2 ? RC_ECONFIG : -ENOMEM;
    }
    o->canon = b.p != NULL ? b.p : strdup("");
    return o->canon != NULL ? 0 : -ENOMEM;
}

int rc_config_split(const char *name, const char *text, size_t len, rc_config_doc_t **docs,
                    size_t *n, char *err, size_t err_len)
{
    yaml_parser_t parser;
    rc_config_doc_t *out = NULL;
    size_t count = 0;
    int rc = 0;
    *docs = NULL;
    *n = 0;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (;;) {
        yaml_document_t d;
        if (!yaml_parser_load(&parser, &d)) {
            snprintf(err, err_len, "%s:%d: YAML syntax error: %s%s%s", name,
                     (int)parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "unknown problem", parser.context ? " " : "",
                     parser.context ? parser.context : "");
            rc = RC_ECONFIG;
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&d);
        if (root == NULL) {
            yaml_document_delete(&d);
            break;
        }
        if (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0) {
            yaml_document_delete(&d); /* an empty document, as the loader skips it */
            continue;
        }
        rc_config_doc_t *nd = realloc(out, (count + 1) * sizeof(*nd));
        if (nd == NULL || (out = nd, rc = describe(&d, root, &out[count])) != 0) {
            if (rc == RC_ECONFIG)
                snprintf(err, err_len,
                         "%s:%d: the document is larger than %u bytes once its aliases are "
                         "expanded",
                         name, (int)root->start_mark.line + 1, CANON_MAX);
            else
                rc = -ENOMEM;
            yaml_document_delete(&d);
            break;
        }
        count++;
        yaml_document_delete(&d);
    }
    yaml_parser_delete(&parser);
    if (rc != 0) {
        rc_config_docs_free(out, count);
        return rc;
    }
    *docs = out;
    *n = count;
    return 0;
}

void rc_config_docs_free(rc_config_doc_t *docs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(docs[i].canon);
    free(docs);
}

int rc_config_doc_same(const rc_config_doc_t *a, const rc_config_doc_t *b)
{
    if (a->kind[0] == '\0' || b->kind[0] == '\0' || strcmp(a->kind, b->kind) != 0 ||
        strcmp(a->group, b->group) != 0)
        return 0;
    if (strcmp(a->kind, "RingcastConfig") == 0)
        return 1; /* one per config, whatever its name */
    return a->name[0] != '\0' && strcmp(a->name, b->name) == 0 && strcmp(a->ns, b->ns) == 0;
}

/* ---- the joined text and its line map -------------------------------------------------------- */

typedef struct {
    int vline;  /* first line in the joined text (the "---" before the document) */
    int lines;  /* lines it takes there, the "---" included */
    int source; /* index into the sources */
    int line;   /* the source's line of the document's first line */
} span_t;

typedef struct {
    const rc_config_source_t *src;
    size_t nsrc;
    rc_config_doc_t **docs; /* per source */
    size_t *ndocs;
    span_t *spans;
    size_t nspans;
} layers_t;

/* The source and line behind line `v` of the joined text; 0 when it is not in any document. */
static int map_line(const layers_t *l, int v, int *source)
{
    for (size_t i = 0; i < l->nspans; i++) {
        const span_t *s = &l->spans[i];
        if (v >= s->vline && v < s->vline + s->lines) {
            *source = s->source;
            return s->line + (v > s->vline ? v - s->vline - 1 : 0);
        }
    }
    return 0;
}

/* Rewrites "JOINED:V: message" (and "at line V" inside it) through the map, into `out`. Returns
 * the offset of "message" in out. Text that does not start that way is copied as it is. */
static size_t rewrite(const layers_t *l, const char *in, char *out, size_t cap)
{
    const char *name = l->src[0].name;
    size_t nl = strlen(name), o = 0;
    int v = 0, used = 0, src = 0;
    if (strncmp(in, name, nl) != 0 || sscanf(in + nl, ":%d:%n", &v, &used) != 1 || used == 0 ||
        map_line(l, v, &src) == 0) {
        snprintf(out, cap, "%s", in);
        return 0;
    }
    int line = map_line(l, v, &src);
    int n = snprintf(out, cap, "%s:%d:", l->src[src].name, line);
    o = n > 0 && (size_t)n < cap ? (size_t)n : 0;
    size_t msg = o + 1;
    const char *p = in + nl + (size_t)used;
    while (*p != '\0' && o + 1 < cap) {
        int w = 0, u = 0, s2 = 0;
        if (strncmp(p, "at line ", 8) == 0 && sscanf(p + 8, "%d%n", &w, &u) == 1 &&
            (w = map_line(l, w, &s2)) != 0) {
            n = s2 == src ? snprintf(out + o, cap - o, "at line %d", w)
                          : snprintf(out + o, cap - o, "at %s:%d", l->src[s2].name, w);
            o += n > 0 && (size_t)n < cap - o ? (size_t)n : 0;
            p += 8 + u;
            continue;
        }
        out[o++] = *p++;
    }
    out[o < cap ? o : cap - 1] = '\0';
    return msg < o ? msg : o;
}

static int add_note(rc_config_t *c, rc_config_note_level_t level, const char *text, size_t msg)
{
    rc_config_note_t *nn = realloc(c->notes, (c->note_count + 1) * sizeof(*nn));
    if (nn == NULL)
        return -ENOMEM;
    c->notes = nn;
    char *t = strdup(text);
    if (t == NULL)
        return -ENOMEM;
    c->notes[c->note_count++] = (rc_config_note_t){.level = level, .text = t, .msg = msg};
    return 0;
}

/* The last document of a source after `from` with the identity of `d`, or NULL. Its source in
 * *at. */
static rc_config_doc_t *replacement(const layers_t *l, size_t from, const rc_config_doc_t *d,
                                    size_t *at)
{
    rc_config_doc_t *r = NULL;
    for (size_t s = from + 1; s < l->nsrc; s++) {
        for (size_t i = 0; i < l->ndocs[s]; i++) {
            if (rc_config_doc_same(&l->docs[s][i], d)) {
                r = &l->docs[s][i];
                *at = s;
            }
        }
    }
    return r;
}

/* Joins the documents into `b`: each in the place of the first of its identity, in the version
 * of the last source that has it. `used` marks what is placed (per source, per document). */
static int join(layers_t *l, buf_t *b, unsigned char **used, rc_config_t *notes_to)
{
    int vline = 1;
    for (size_t s = 0; s < l->nsrc; s++) {
        for (size_t i = 0; i < l->ndocs[s]; i++) {
            rc_config_doc_t *d = &l->docs[s][i], *r;
            size_t rs = s;
            if (used[s][i])
                continue;
            r = replacement(l, s, d, &rs);
            if (r == NULL)
                r = d;
            size_t ri = (size_t)(r - l->docs[rs]);
            if (used[rs][ri])
                continue;
            used[rs][ri] = 1;
            if (r != d && notes_to != NULL) {
                char t[RC_CONFIG_ERR_MAX];
                int off = snprintf(t, sizeof(t), "%s:%d: ", l->src[rs].name, r->line);
                snprintf(t + off, sizeof(t) - (size_t)off,
                         "%s %s/%s replaces the one at %s:%d (ringcast apply)", d->kind, d->ns,
                         d->name, l->src[s].name, d->line);
                if (add_note(notes_to, RC_CONFIG_NOTE_INFO, t, (size_t)off) != 0)
                    return -ENOMEM;
            }
            const char *text = l->src[rs].text + r->off;
            int lines = 1;
            put(b, "---\n", 4);
            put(b, text, r->len);
            for (size_t k = 0; k < r->len; k++)
                lines += text[k] == '\n';
            if (r->len == 0 || text[r->len - 1] != '\n') {
                put(b, "\n", 1);
                lines++;
            }
            span_t *ns = realloc(l->spans, (l->nspans + 1) * sizeof(*ns));
            if (ns == NULL)
                return -ENOMEM;
            l->spans = ns;
            l->spans[l->nspans++] = (span_t){vline, lines, (int)rs, r->line};
            vline += lines;
        }
    }
    return b->failed ? -ENOMEM : 0;
}

/* A RingcastConfig past the config file: its settings are read at start only. */
static int refuse_settings(const layers_t *l, char *err, size_t err_len)
{
    for (size_t s = 1; s < l->nsrc; s++) {
        for (size_t i = 0; i < l->ndocs[s]; i++) {
            if (strcmp(l->docs[s][i].kind, "RingcastConfig") == 0) {
                snprintf(err, err_len,
                         "%s:%d: a RingcastConfig can only be in the config file (%s): its "
                         "settings (listeners, ring size, limits) take a restart",
                         l->src[s].name, l->docs[s][i].line, l->src[0].name);
                return RC_ECONFIG;
            }
        }
    }
    return 0;
}

/* Loads the joined text and rewrites its messages; the replacement notes go after the
 * loader's. */
static int load_joined(layers_t *l, rc_config_t *c, char *err, size_t err_len)
{
    rc_config_t extra;
    memset(&extra, 0, sizeof(extra));
    buf_t b = {0};
    unsigned char **used = calloc(l->nsrc, sizeof(*used));
    int rc = used != NULL ? 0 : -ENOMEM;
    for (size_t s = 0; rc == 0 && s < l->nsrc; s++)
        rc = (used[s] = calloc(l->ndocs[s] + 1, 1)) != NULL ? 0 : -ENOMEM;
    if (rc == 0)
        rc = join(l, &b, used, &extra);
    char raw[RC_CONFIG_ERR_MAX];
    if (rc == 0)
        rc = rc_config_load_string(c, l->src[0].name, b.p ? b.p : "", b.len, raw, sizeof(raw));
    if (rc != 0 && rc != -ENOMEM) {
        rewrite(l, raw, err, err_len);
    } else if (rc == -ENOMEM) {
        snprintf(err, err_len, "%s: out of memory", l->src[0].name);
    } else {
        for (size_t i = 0; rc == 0 && i < c->note_count; i++) {
            char t[RC_CONFIG_ERR_MAX];
            size_t msg = rewrite(l, c->notes[i].text, t, sizeof(t));
            char *nt = strdup(t);
            rc = nt != NULL ? 0 : -ENOMEM;
            if (nt != NULL) {
                free(c->notes[i].text);
                c->notes[i].text = nt;
                c->notes[i].msg = msg;
            }
        }
        for (size_t i = 0; rc == 0 && i < extra.note_count; i++)
            rc = add_note(c, extra.notes[i].level, extra.notes[i].text, extra.notes[i].msg);
        if (rc != 0) {
            snprintf(err, err_len, "%s: out of memory", l->src[0].name);
            rc_config_close(c);
        }
    }
    rc__config_notes_free(&extra);
    for (size_t s = 0; used != NULL && s < l->nsrc; s++)
        free(used[s]);
    free(used);
    free(b.p);
    return rc;
}

int rc_config_load_sources(rc_config_t *c, const rc_config_source_t *src, size_t n, char *err,
                           size_t err_len)
{
    if (n == 1)
        return rc_config_load_string(c, src[0].name, src[0].text, src[0].len, err, err_len);
    memset(c, 0, sizeof(*c));
    layers_t l = {.src = src, .nsrc = n};
    l.docs = calloc(n, sizeof(*l.docs));
    l.ndocs = calloc(n, sizeof(*l.ndocs));
    int rc = l.docs != NULL && l.ndocs != NULL ? 0 : -ENOMEM;
    for (size_t s = 0; rc == 0 && s < n; s++)
        rc = rc_config_split(src[s].name, src[s].text, src[s].len, &l.docs[s], &l.ndocs[s], err,
                             err_len);
    if (rc == 0)
        rc = refuse_settings(&l, err, err_len);
    if (rc == 0)
        rc = load_joined(&l, c, err, err_len);
    else if (rc == -ENOMEM)
        snprintf(err, err_len, "%s: out of memory", src[0].name);
    for (size_t s = 0; l.docs != NULL && s < n; s++)
        rc_config_docs_free(l.docs[s], l.ndocs[s]);
    free(l.docs);
    free(l.ndocs);
    free(l.spans);
    return rc;
}

int rc_config_load_with_state(rc_config_t *c, const char *path, char *err, size_t err_len)
{
    memset(c, 0, sizeof(*c));
    char *text = NULL, *state = NULL;
    size_t len = 0, slen = 0;
    rc_config_t file;
    int rc = rc_config_read_file(path, &text, &len, err, err_len);
    if (rc == 0)
        rc = rc_config_load_string(&file, path, text, len, err, err_len);
    if (rc != 0)
        goto out;
    if ((rc = rc__config_resolve_state(&file, path)) != 0) {
        snprintf(err, err_len, "%s: out of memory", path);
        rc_config_close(&file);
        goto out;
    }
    rc = rc_config_read_file(file.state_file, &state, &slen, err, err_len);
    if (rc == -ENOENT) { /* nothing applied yet */
        *c = file;
        rc = 0;
        goto out;
    }
    if (rc == 0) {
        rc_config_source_t src[2] = {{path, text, len}, {file.state_file, state, slen}};
        rc = rc_config_load_sources(c, src, 2, err, err_len);
    }
    if (rc == 0 && (rc = rc__config_resolve_state(c, path)) != 0) {
        snprintf(err, err_len, "%s: out of memory", path);
        rc_config_close(c);
    }
    rc_config_close(&file);
out:
    free(text);
    free(state);
    return rc;
}
