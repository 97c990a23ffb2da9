/* `ringcast apply` and `ringcast delete`: runtime changes to a running broker through its admin
 * API (POST /apis/ringcast.dev/v1alpha1/apply and .../delete, net/apply.h). The documents go as
 * they are written; the broker checks them as a reload would and answers per object, which is
 * printed as kubectl does ("trigger.eventing.knative.dev/NAME created"). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/config.h"
#include "net/cli/admin_client.h"
#include "net/cli/cli.h"
#include "net/cli/options.h"

#define WRITE_API "/apis/ringcast.dev/v1alpha1/"
#define MAX_FILES 16
#define MAX_BODY  (1u << 20) /* the admin API's limit (413 above) */

typedef struct {
    const char *ns, *admin, *token;
    uint64_t timeout_s;
    const char *files[MAX_FILES];
    rc_cli_list_t file_list;
    int start_line[MAX_FILES]; /* where each file begins in the request's body */
} common_t;

/* What `delete RESOURCE NAME` may name, with the document that names it. */
static const struct {
    const char *names; /* singular|plural|short, as kubectl takes them */
    const char *api, *kind;
} kinds[] = {
    {"trigger|triggers", "eventing.knative.dev/v1", "Trigger"},
    {"broker|brokers", "eventing.knative.dev/v1", "Broker"},
    {"service|services|svc", "v1", "Service"},
    {"subscription|subscriptions", "dapr.io/v2alpha1", "Subscription"},
    {"component|components", "dapr.io/v1alpha1", "Component"},
    {"daprapp|daprapps", "ringcast.dev/v1alpha1", "DaprApp"},
};

static int is_word(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; *p != '\0';) {
        size_t k = strcspn(p, "|");
        if (k == n && strncmp(p, w, n) == 0)
            return 1;
        p += k + (p[k] == '|');
    }
    return 0;
}

/* Reads FILE ("-": stdin) and appends it to *body as documents of their own. */
static int read_into(const char *cmd, const char *path, char **body, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "ringcast %s: cannot open %s: %s\n", cmd, path, strerror(errno));
        return -1;
    }
    char chunk[65536];
    size_t n;
    int rc = 0;
    char *sep = *len > 0 ? "\n---\n" : "";
    for (int first = 1; (n = fread(chunk, 1, sizeof(chunk), f)) > 0 || first; first = 0) {
        size_t add = strlen(sep) + n;
        if (*len + add > MAX_BODY) {
            fprintf(stderr,
                    "ringcast %s: %s: the documents are larger than %u bytes (what the "
                    "admin API takes in one request)\n",
                    cmd, path, MAX_BODY);
            rc = -1;
            break;
        }
        char *nb = realloc(*body, *len + add + 1);
        if (nb == NULL) {
            rc = -1;
            break;
        }
        *body = nb;
        memcpy(*body + *len, sep, strlen(sep));
        memcpy(*body + *len + strlen(sep), chunk, n);
        *len += add;
        (*body)[*len] = '\0';
        sep = "";
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "ringcast %s: cannot read %s: %s\n", cmd, path, strerror(errno));
        rc = -1;
    }
    if (f != stdin)
        fclose(f);
    return rc;
}

/* With -n NS, every document must be in NS: the broker reads metadata.namespace as written
 * (default when absent), so -n checks rather than rewrites. */
static int check_namespace(const char *cmd, const char *ns, const char *body, size_t len)
{
    rc_config_doc_t *docs = NULL;
    size_t n = 0;
    char err[RC_CONFIG_ERR_MAX];
    if (ns == NULL || rc_config_split("(files)", body, len, &docs, &n, err, sizeof(err)) != 0)
        return 0; /* a YAML error is the broker's to report, with its line */
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (docs[i].name[0] != '\0' && strcmp(docs[i].ns, ns) != 0) {
            fprintf(stderr,
                    "ringcast %s: %s %s is in namespace %s (metadata.namespace, default when "
                    "not given), not %s given with -n; set metadata.namespace\n",
                    cmd, docs[i].kind, docs[i].name, docs[i].ns, ns);
            rc = -1;
        }
    }
    rc_config_docs_free(docs, n);
    return rc;
}

/* Prints the answer: one line per object on stdout, warnings on stderr; or the refusal.
 * Returns the exit code. */
/* The broker names the body's lines "(request):N"; with files, "FILE:LINE" says more. */
static void print_refusal(const char *cmd, const common_t *c, const char *msg, int status)
{
    int n = 0, used = 0;
    size_t f = c->file_list.count;
    if (f > 0 && sscanf(msg, "(request):%d:%n", &n, &used) == 1 && used > 0) {
        while (f > 0 && c->start_line[f - 1] > n)
            f--;
        if (f > 0) {
            const char *name = c->file_list.items[f - 1];
            fprintf(stderr, "ringcast %s: %s:%d:%s (HTTP %d)\n", cmd,
                    strcmp(name, "-") == 0 ? "(stdin)" : name, n - c->start_line[f - 1] + 1,
                    msg + used, status);
            return;
        }
    }
    fprintf(stderr, "ringcast %s: %s (HTTP %d)\n", cmd, msg, status);
}

static int report(const char *cmd, const common_t *c, int status, const char *resp)
{
    cJSON *j = cJSON_Parse(resp);
    const cJSON *msg = cJSON_GetObjectItem(j, "message");
    if (!cJSON_IsString(msg))
        msg = cJSON_GetObjectItem(j, "error"); /* the server's own refusals (413) */
    if (status != 200) {
        if (cJSON_IsString(msg))
            print_refusal(cmd, c, msg->valuestring, status);
        else
            fprintf(stderr, "ringcast %s: %s answered %d: %.300s\n", cmd, c->admin, status, resp);
        cJSON_Delete(j);
        return 1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "items"))
    {
        const cJSON *obj = cJSON_GetObjectItem(it, "object"),
                    *act = cJSON_GetObjectItem(it, "action"),
                    *m = cJSON_GetObjectItem(it, "message");
        if (!cJSON_IsString(obj) || !cJSON_IsString(act))
            continue;
        if (cJSON_IsString(m))
            printf("%s %s (%s)\n", obj->valuestring, act->valuestring, m->valuestring);
        else
            printf("%s %s\n", obj->valuestring, act->valuestring);
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "warnings"))
    {
        if (cJSON_IsString(it))
            fprintf(stderr, "Warning: %s\n", it->valuestring);
    }
    cJSON_Delete(j);
    return 0;
}

static int send_docs(const char *cmd, const common_t *c, const char *op, const char *body,
                     size_t len)
{
    char err[1024];
    int status = 0;
    char *resp = NULL;
    if (rc__cli_admin_call(c->admin, "POST", op, c->token, body, len, (int)c->timeout_s, &status,
                           &resp, err, sizeof(err)) != 0) {
        fprintf(stderr, "ringcast %s: %s\n", cmd, err);
        return 1;
    }
    int code = report(cmd, c, status, resp);
    free(resp);
    return code;
}

static void defaults(common_t *c)
{
    if (c->admin == NULL)
        c->admin = getenv("RINGCAST_ADMIN");
    if (c->admin == NULL || c->admin[0] == '\0')
        c->admin = DEFAULT_ADMIN;
    if (c->token == NULL)
        c->token = getenv("RINGCAST_ADMIN_TOKEN");
    if (c->token != NULL && c->token[0] == '\0')
        c->token = NULL;
}

static int send_files(const char *cmd, common_t *c, const char *op)
{
    char *body = NULL;
    size_t len = 0;
    int code = 1;
    for (size_t i = 0; i < c->file_list.count; i++) {
        size_t before = len;
        if (read_into(cmd, c->file_list.items[i], &body, &len) != 0)
            goto out;
        int line = 1;
        size_t start = before + (before > 0 ? 5 : 0); /* past the "\n---\n" between files */
        for (size_t k = 0; k < start && k < len; k++)
            line += body[k] == '\n';
        c->start_line[i] = line;
    }
    if (check_namespace(cmd, c->ns, body ? body : "", len) != 0) {
        code = 2;
        goto out;
    }
    code = send_docs(cmd, c, op, body ? body : "", len);
out:
    free(body);
    return code;
}

#define COMMON_OPTS(c)                                                                             \
    RC_CLI_OPT_LIST("filename", &(c).file_list, "FILE",                                            \
                    "a YAML file of manifests (the kinds the config file takes); - reads stdin; "  \
                    "may be given several times"),                                                 \
        {.name = "namespace",                                                                      \
         .short_name = 'n',                                                                        \
         .kind = RC_CLI_STRING,                                                                    \
         .value = &(c).ns,                                                                         \
         .metavar = "NS",                                                                          \
         .help = "with -f: every document must be in NS; with a NAME: the namespace (default: "    \
                 "default)"},                                                                      \
        RC_CLI_OPT_STRING(                                                                         \
            "admin", &(c).admin, "HOST:PORT",                                                      \
            "the broker's admin address (default: $RINGCAST_ADMIN, else " DEFAULT_ADMIN ")"),      \
        RC_CLI_OPT_STRING("token", &(c).token, "TOKEN",                                            \
                          "the bearer token when the broker sets spec.admin.token (default: "      \
                          "$RINGCAST_ADMIN_TOKEN)"),                                               \
        RC_CLI_OPT_UINT("timeout", &(c).timeout_s, "SECONDS", 1, 3600,                             \
                        "for connecting and reading the answer (default 10)")

static const char *const write_epilogue =
    "Exit codes: 0 done (every object's line printed), 1 the broker refused the change (its\n"
    "  message printed; nothing changed) or its admin API is not reachable, 2 bad usage.\n";

/* -f takes the short name 'f'. */
static void short_f(rc_cli_opt_t *opts)
{
    opts[0].short_name = 'f';
}

int rc_cmd_apply(int argc, char **argv)
{
    common_t c = {.timeout_s = 10};
    c.file_list = (rc_cli_list_t){.items = c.files, .cap = MAX_FILES};
    rc_cli_opt_t opts[] = {COMMON_OPTS(c), RC_CLI_OPT_END};
    short_f(opts);
    const rc_cli_spec_t spec = {
        .command = "apply",
        .synopsis = "apply -f FILE [-f FILE...] [-n NS] [--admin HOST:PORT] [--token TOKEN]\n"
                    "                      [--timeout SECONDS]",
        .about = "Creates or changes objects of a running broker without a restart: Triggers,\n"
                 "Brokers' delivery, Services, Dapr Components, DaprApps and Subscriptions, as\n"
                 "the config file writes them. The broker checks the result as a reload would\n"
                 "(all or nothing: on any error nothing changes and the message names the\n"
                 "document's line as (request):LINE), keeps what was applied in its state file\n"
                 "(loaded after the config file, so it survives a restart) and reloads. An object\n"
                 "of the config file is overridden by the applied one. Prints one line per\n"
                 "object: created, configured, unchanged or skipped. A RingcastConfig cannot be\n"
                 "applied (its settings take a restart), nor a new Broker. Writes are accepted\n"
                 "from loopback only, unless the broker sets spec.admin.token (then --token).\n"
                 "See docs/operations.md, \"Runtime changes\".\n",
        .epilogue = write_epilogue,
        .opts = opts,
    };
    int code = rc__cli_parse(&spec, argc, argv);
    if (code != RC_CLI_GO_ON)
        return code;
    if (c.file_list.count == 0)
        return rc__cli_fail(&spec, "missing -f FILE (the manifests to apply)");
    defaults(&c);
    return send_files("apply", &c, WRITE_API "apply");
}

int rc_cmd_delete(int argc, char **argv)
{
    common_t c = {.timeout_s = 10};
    c.file_list = (rc_cli_list_t){.items = c.files, .cap = MAX_FILES};
    const char *name = NULL;
    rc_cli_opt_t opts[] = {COMMON_OPTS(c), RC_CLI_OPT_END};
    short_f(opts);
    const rc_cli_spec_t spec = {
        .command = "delete",
        .synopsis = "delete (-f FILE... | RESOURCE NAME) [-n NS] [--admin HOST:PORT]\n"
                    "                       [--token TOKEN] [--timeout SECONDS]",
        .about = "Removes objects that `ringcast apply` added to a running broker, without a\n"
                 "restart: those the documents of FILE name (kind, namespace, name), or one\n"
                 "named RESOURCE NAME (trigger, broker, service, subscription, component,\n"
                 "daprapp; plurals work too). All or nothing: an object that is not there\n"
                 "(404), or that the config file defines (409: edit the file and send SIGHUP;\n"
                 "an applied override of it is removed and the file's version applies again),\n"
                 "or a result that does not load (a trigger still refers to a deleted Service)\n"
                 "changes nothing. Prints one line per object. Writes are accepted from\n"
                 "loopback only, unless the broker sets spec.admin.token (then --token).\n"
                 "See docs/operations.md, \"Runtime changes\".\n",
        .epilogue = write_epilogue,
        .opts = opts,
        .operand_name = "NAME",
        .operand = &name,
    };
    const char *resource = rc__cli_take_operand(&argc, argv);
    int code = rc__cli_parse(&spec, argc, argv);
    if (code != RC_CLI_GO_ON)
        return code;
    defaults(&c);
    if (c.file_list.count > 0) {
        if (resource != NULL)
            return rc__cli_fail(&spec, "give either -f FILE or RESOURCE NAME, not both");
        return send_files("delete", &c, WRITE_API "delete");
    }
    if (resource == NULL || name == NULL)
        return rc__cli_fail(&spec, "missing -f FILE or RESOURCE NAME (e.g. delete trigger t1)");
    size_t k = 0;
    while (k < sizeof(kinds) / sizeof(kinds[0]) && !is_word(kinds[k].names, resource))
        k++;
    if (k == sizeof(kinds) / sizeof(kinds[0]))
        return rc__cli_fail(&spec,
                            "unknown resource '%s' (trigger, broker, service, subscription, "
                            "component or daprapp)",
                            resource);
    const char *ns = c.ns != NULL ? c.ns : "default";
    if (!rc__cli_dns_label(name) || !rc__cli_dns_label(ns))
        return rc__cli_fail(&spec, "'%s' is not a name (lowercase letters, digits and '-')",
                            rc__cli_dns_label(name) ? ns : name);
    char doc[512];
    int n = snprintf(doc, sizeof(doc),
                     "apiVersion: %s\nkind: %s\nmetadata:\n  name: %s\n  namespace: %s\n",
                     kinds[k].api, kinds[k].kind, name, ns);
    return send_docs("delete", &c, WRITE_API "delete", doc, (size_t)n);
}
