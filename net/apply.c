/* The apply and delete of the admin API. Objects are named as the loader identifies documents
 * (kind, API group, namespace, name: rc_config_doc_same). Who owns what:
 *   - the config file is the operator's: nothing here writes it;
 *   - the state file is apply's: each document there replaces the config file's of the same
 *     identity, in its place (so `apply` over an object of the file overrides it), or adds one;
 *   - delete removes what the state file holds; an object only the config file defines is
 *     refused with 409 naming the file and line (edit it there and send SIGHUP).
 * Every change is checked by loading (config file, new state) the way a reload will, plus the
 * reload's own checks (ctx->check), before the state file is replaced. */
#include "net/apply.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"

#define REQUEST "(request)"

typedef struct {
    const char *text; /* the source the document is cut from */
    const rc_config_doc_t *doc;
} piece_t;

typedef struct {
    const rc_apply_ctx_t *ctx;
    char *config, *state; /* the files' texts ("" for a state file not written yet) */
    size_t config_len, state_len;
    rc_config_doc_t *cdocs, *sdocs, *bdocs;
    size_t nc, ns, nb;
    const char *body;
    size_t body_len;
    int *action;           /* per body document */
    const char **message;  /* per body document, NULL or static */
    unsigned char *s_gone; /* per state document: replaced or deleted */
    int *s_repl;           /* per state document: the body document that replaces it, or -1 */
    cJSON *answer;
    int status;
} run_t;

enum { A_CREATED, A_CONFIGURED, A_UNCHANGED, A_DELETED, A_SKIPPED };
static const char *const actions[] = {"created", "configured", "unchanged", "deleted", "skipped"};

/* ---- answers ------------------------------------------------------------------------------- */

/* A Kubernetes Status with `message`; `status` is the HTTP status. */
static void fail(run_t *r, int status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(run_t *r, int status, const char *reason, const char *fmt, ...)
{
    char msg[RC_CONFIG_ERR_MAX + 512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON_Delete(r->answer);
    cJSON *o = r->answer = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddStringToObject(o, "kind", "Status");
    cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(o, "status", "Failure");
    cJSON_AddStringToObject(o, "message", msg);
    cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddNumberToObject(o, "code", status);
    r->status = status;
}

/* "trigger.eventing.knative.dev/NAME", "service/NAME": how kubectl names an object. */
static void object_name(const rc_config_doc_t *d, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *k = d->kind; *k != '\0' && n + 1 < cap; k++)
        out[n++] = (char)tolower((unsigned char)*k);
    snprintf(out + n, cap - n, "%s%s/%s", d->group[0] ? "." : "", d->group, d->name);
}

static void add_item(cJSON *items, const rc_config_doc_t *d, int action, const char *msg)
{
    char obj[256];
    object_name(d, obj, sizeof(obj));
    cJSON *it = cJSON_CreateObject();
    cJSON_AddStringToObject(it, "object", obj);
    cJSON_AddStringToObject(it, "apiVersion", d->api);
    cJSON_AddStringToObject(it, "kind", d->kind);
    cJSON_AddStringToObject(it, "namespace", d->ns);
    cJSON_AddStringToObject(it, "name", d->name);
    cJSON_AddStringToObject(it, "action", actions[action]);
    if (msg != NULL)
        cJSON_AddStringToObject(it, "message", msg);
    cJSON_AddItemToArray(items, it);
}

static void succeed(run_t *r, const rc_config_t *nc)
{
    cJSON *o = r->answer = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "ringcast.dev/v1alpha1");
    cJSON_AddStringToObject(o, "kind", "ApplyResult");
    cJSON_AddStringToObject(o, "stateFile", r->ctx->state);
    cJSON *items = cJSON_AddArrayToObject(o, "items");
    for (size_t i = 0; i < r->nb; i++)
        add_item(items, &r->bdocs[i], r->action[i], r->message[i]);
    cJSON *w = cJSON_AddArrayToObject(o, "warnings");
    for (size_t i = 0; nc != NULL && i < nc->note_count; i++) {
        if (nc->notes[i].level == RC_CONFIG_NOTE_WARN)
            cJSON_AddItemToArray(w, cJSON_CreateString(nc->notes[i].text));
    }
    r->status = 200;
}

/* ---- the files ----------------------------------------------------------------------------- */

static int read_files(run_t *r)
{
    char err[RC_CONFIG_ERR_MAX];
    if (rc_config_read_file(r->ctx->config, &r->config, &r->config_len, err, sizeof(err)) != 0) {
        fail(r, 500, "InternalError", "%s", err);
        return -1;
    }
    int rc = rc_config_read_file(r->ctx->state, &r->state, &r->state_len, err, sizeof(err));
    if (rc == -ENOENT) {
        r->state = strdup("");
        r->state_len = 0;
        rc = r->state != NULL ? 0 : -ENOMEM;
    }
    if (rc != 0) {
        fail(r, 500, "InternalError", "%s", err);
        return -1;
    }
    return 0;
}

static int split_all(run_t *r)
{
    char err[RC_CONFIG_ERR_MAX];
    err[0] = '\0';
    int rc = rc_config_split(REQUEST, r->body, r->body_len, &r->bdocs, &r->nb, err, sizeof(err));
    if (rc == -ENOMEM) {
        fail(r, 500, "InternalError", "out of memory");
        return -1;
    }
    if (rc != 0) {
        fail(r, 400, "BadRequest", "%s", err);
        return -1;
    }
    if (rc_config_split(r->ctx->config, r->config, r->config_len, &r->cdocs, &r->nc, err,
                        sizeof(err)) != 0 ||
        rc_config_split(r->ctx->state, r->state, r->state_len, &r->sdocs, &r->ns, err,
                        sizeof(err)) != 0) {
        fail(r, 500, "InternalError", "%s", err);
        return -1;
    }
    r->action = calloc(r->nb + 1, sizeof(*r->action));
    r->message = calloc(r->nb + 1, sizeof(*r->message));
    r->s_gone = calloc(r->ns + 1, 1);
    r->s_repl = calloc(r->ns + 1, sizeof(*r->s_repl));
    if (!r->action || !r->message || !r->s_gone || !r->s_repl) {
        fail(r, 500, "InternalError", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < r->ns; i++)
        r->s_repl[i] = -1;
    return 0;
}

/* Every document of the body has an identity, is not a RingcastConfig and is there once. */
static int check_body(run_t *r, rc_apply_op_t op)
{
    if (r->nb == 0) {
        fail(r, 400, "BadRequest", "the request has no documents (a YAML body of manifests)");
        return -1;
    }
    for (size_t i = 0; i < r->nb; i++) {
        const rc_config_doc_t *d = &r->bdocs[i];
        if (d->kind[0] == '\0' || d->api[0] == '\0') {
            fail(r, 400, "BadRequest", REQUEST ":%d: the document has no %s", d->line,
                 d->kind[0] == '\0' ? "kind" : "apiVersion");
            return -1;
        }
        if (strcmp(d->kind, "RingcastConfig") == 0) {
            fail(r, 400, "BadRequest",
                 REQUEST
                 ":%d: a RingcastConfig cannot be %s at run time: its settings "
                 "(listeners, ring size, limits, token) are read at start; edit %s and restart",
                 d->line, op == RC_APPLY_APPLY ? "applied" : "deleted", r->ctx->config);
            return -1;
        }
        int known = rc_config_kind_known(d->api, d->kind);
        if (known == 2) {
            r->action[i] = A_SKIPPED;
            r->message[i] = "not a ringcast kind";
            continue;
        }
        if (op == RC_APPLY_DELETE && known == 0) {
            fail(r, 400, "BadRequest", REQUEST ":%d: unknown kind '%s' (apiVersion %s)", d->line,
                 d->kind, d->api);
            return -1;
        }
        if (d->name[0] == '\0') {
            fail(r, 400, "BadRequest", REQUEST ":%d: %s has no metadata.name", d->line, d->kind);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (rc_config_doc_same(&r->bdocs[j], d)) {
                fail(r, 400, "BadRequest",
                     REQUEST ":%d: %s %s/%s is in the request twice (first at line %d)", d->line,
                     d->kind, d->ns, d->name, r->bdocs[j].line);
                return -1;
            }
        }
    }
    return 0;
}

static int find(const rc_config_doc_t *docs, size_t n, const rc_config_doc_t *d)
{
    for (size_t i = 0; i < n; i++) {
        if (rc_config_doc_same(&docs[i], d))
            return (int)i;
    }
    return -1;
}

/* What each document of an apply does, against the state file, else the config file. Returns
 * how many change something. */
static size_t plan_apply(run_t *r)
{
    size_t changes = 0;
    for (size_t i = 0; i < r->nb; i++) {
        const rc_config_doc_t *d = &r->bdocs[i];
        if (r->action[i] == A_SKIPPED)
            continue;
        int s = find(r->sdocs, r->ns, d), c = find(r->cdocs, r->nc, d);
        const rc_config_doc_t *now = s >= 0 ? &r->sdocs[s] : c >= 0 ? &r->cdocs[c] : NULL;
        if (now != NULL && strcmp(now->canon, d->canon) == 0) {
            r->action[i] = A_UNCHANGED;
            continue;
        }
        r->action[i] = now != NULL ? A_CONFIGURED : A_CREATED;
        if (s >= 0) {
            r->s_gone[s] = 1;
            r->s_repl[s] = (int)i;
        }
        if (s < 0 && c >= 0)
            r->message[i] = "overrides the config file's";
        changes++;
    }
    return changes;
}

static int plan_delete(run_t *r)
{
    for (size_t i = 0; i < r->nb; i++) {
        const rc_config_doc_t *d = &r->bdocs[i];
        if (r->action[i] == A_SKIPPED)
            continue;
        int s = find(r->sdocs, r->ns, d), c = find(r->cdocs, r->nc, d);
        char obj[256];
        object_name(d, obj, sizeof(obj));
        if (s < 0 && c >= 0) {
            fail(r, 409, "Conflict",
                 "%s in namespace %s is defined in the config file %s:%d, which ringcast does "
                 "not write: remove it there and send SIGHUP (delete removes what apply added)",
                 obj, d->ns, r->ctx->config, r->cdocs[c].line);
            return -1;
        }
        if (s < 0) {
            fail(r, 404, "NotFound", "%s not found in namespace %s", obj, d->ns);
            return -1;
        }
        r->s_gone[s] = 1;
        r->action[i] = A_DELETED;
        if (c >= 0)
            r->message[i] = "the config file's definition applies again";
    }
    return 0;
}

/* ---- the new state file -------------------------------------------------------------------- */

static int put(char **p, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = *cap ? *cap * 2 : 4096;
        while (nc < *len + n + 1)
            nc *= 2;
        char *np = realloc(*p, nc);
        if (np == NULL)
            return -ENOMEM;
        *p = np;
        *cap = nc;
    }
    memcpy(*p + *len, s, n);
    *len += n;
    (*p)[*len] = '\0';
    return 0;
}

static int put_doc(char **p, size_t *len, size_t *cap, const char *text, const rc_config_doc_t *d)
{
    int rc = put(p, len, cap, "---\n", 4);
    if (rc == 0)
        rc = put(p, len, cap, text + d->off, d->len);
    if (rc == 0 && (d->len == 0 || text[d->off + d->len - 1] != '\n'))
        rc = put(p, len, cap, "\n", 1);
    return rc;
}

/* The state's documents that stay, each replaced in its place by the body's new version, then
 * the body's other changed documents in their order. */
static int new_state(run_t *r, char **out, size_t *out_len)
{
    char *p = NULL, head[1400];
    size_t len = 0, cap = 0;
    snprintf(head, sizeof(head),
             "# Written by `ringcast apply` and `ringcast delete` (the admin API); loaded after\n"
             "# %s, whose documents of the same kind, namespace and name it replaces.\n"
             "# docs/operations.md, \"Runtime changes\".\n",
             r->ctx->config);
    int rc = put(&p, &len, &cap, head, strlen(head));
    for (size_t i = 0; rc == 0 && i < r->ns; i++) {
        if (r->s_repl[i] >= 0)
            rc = put_doc(&p, &len, &cap, r->body, &r->bdocs[r->s_repl[i]]);
        else if (!r->s_gone[i])
            rc = put_doc(&p, &len, &cap, r->state, &r->sdocs[i]);
    }
    for (size_t i = 0; rc == 0 && i < r->nb; i++) {
        int placed = 0;
        for (size_t s = 0; s < r->ns; s++)
            placed |= r->s_repl[s] == (int)i;
        if (!placed && (r->action[i] == A_CREATED || r->action[i] == A_CONFIGURED))
            rc = put_doc(&p, &len, &cap, r->body, &r->bdocs[i]);
    }
    if (rc != 0) {
        free(p);
        return rc;
    }
    *out = p;
    *out_len = len;
    return 0;
}

/* Replaces the state file: written aside, synced, renamed over, and the directory synced, so a
 * crash leaves the old file or the new one, whole. */
static int write_atomic(const char *path, const char *text, size_t len, char *err, size_t cap)
{
    char tmp[2200], dir[2048];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) + (slash == path) : 1,
             slash ? path : ".");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        snprintf(err, cap, "cannot write the state file: %.400s: %s", tmp, strerror(e));
        return -e;
    }
    size_t off = 0;
    int rc = 0;
    while (off < len && rc == 0) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno != EINTR)
            rc = -errno;
        else if (w > 0)
            off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        snprintf(err, cap, "cannot write the state file %.400s: %s", path, strerror(-rc));
        unlink(tmp);
        return rc;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* the rename is durable once the directory is */
        close(dfd);
    }
    return 0;
}

/* ---- the run ------------------------------------------------------------------------------- */

/* Loads (config, state, body) for the messages an apply's author can act on: the body's own
 * lines. */
static int validate_body(run_t *r)
{
    rc_config_source_t src[3] = {{r->ctx->config, r->config, r->config_len},
                                 {r->ctx->state, r->state, r->state_len},
                                 {REQUEST, r->body, r->body_len}};
    rc_config_t c;
    char err[RC_CONFIG_ERR_MAX];
    if (rc_config_load_sources(&c, src, 3, err, sizeof(err)) != 0) {
        fail(r, 422, "Invalid", "%s", err);
        return -1;
    }
    rc_config_close(&c);
    return 0;
}

/* Checks the new state as the reload will load it, writes it, and answers. */
static void commit(run_t *r, rc_apply_op_t op, int *changed)
{
    char *text = NULL, err[RC_CONFIG_ERR_MAX];
    size_t len = 0;
    rc_config_t nc;
    if (new_state(r, &text, &len) != 0) {
        fail(r, 500, "InternalError", "out of memory");
        return;
    }
    rc_config_source_t src[2] = {{r->ctx->config, r->config, r->config_len},
                                 {r->ctx->state, text, len}};
    int rc = rc_config_load_sources(&nc, src, 2, err, sizeof(err));
    if (rc != 0) {
        fail(r, 422, "Invalid", "%s%s",
             op == RC_APPLY_DELETE ? "what is left after the delete "
                                     "does not load: "
                                   : "",
             err);
        free(text);
        return;
    }
    if (r->ctx->check != NULL && r->ctx->check(r->ctx->arg, &nc, err, sizeof(err)) != 0)
        fail(r, 422, "Invalid", "%s", err);
    else if (write_atomic(r->ctx->state, text, len, err, sizeof(err)) != 0)
        fail(r, 500, "InternalError", "%s", err);
    else {
        *changed = 1;
        succeed(r, &nc);
    }
    rc_config_close(&nc);
    free(text);
}

int rc_apply_run(const rc_apply_ctx_t *ctx, rc_apply_op_t op, const char *body, size_t len,
                 char **json, int *changed)
{
    run_t r = {.ctx = ctx, .body = body, .body_len = len};
    *changed = 0;
    if (ctx->config == NULL) {
        fail(&r, 409, "Conflict",
             "the broker runs without --config: applied objects have no file to be kept in "
             "(start it with --config FILE; they are kept next to it)");
    } else if (read_files(&r) == 0 && split_all(&r) == 0 && check_body(&r, op) == 0) {
        if (op == RC_APPLY_APPLY) {
            if (plan_apply(&r) == 0)
                succeed(&r, NULL); /* all unchanged (or skipped): nothing to write */
            else if (validate_body(&r) == 0)
                commit(&r, op, changed);
        } else if (plan_delete(&r) == 0) {
            size_t deleted = 0;
            for (size_t i = 0; i < r.nb; i++)
                deleted += r.action[i] == A_DELETED;
            if (deleted == 0)
                succeed(&r, NULL); /* only skipped kinds: nothing to write */
            else
                commit(&r, op, changed);
        }
    }
    *json = r.answer != NULL ? cJSON_PrintUnformatted(r.answer) : NULL;
    cJSON_Delete(r.answer);
    free(r.config);
    free(r.state);
    rc_config_docs_free(r.cdocs, r.nc);
    rc_config_docs_free(r.sdocs, r.ns);
    rc_config_docs_free(r.bdocs, r.nb);
    free(r.action);
    free(r.message);
    free(r.s_gone);
    free(r.s_repl);
    return *json != NULL ? r.status : 500;
}
