/* `ringcast get` and `ringcast describe`: what a running broker says of its brokers, triggers
 * and Dapr subscriptions, read from its admin API (net/admin.h, docs/operations.md "Status"),
 * as a kubectl-like table, the objects themselves (JSON, YAML), or one object described. A small
 * blocking HTTP/1.1 GET (net/cli/admin_client.h); the objects are parsed with cJSON and the YAML
 * is written from the same tree. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/config.h"
#include "net/cli/admin_client.h"
#include "net/cli/cli.h"
#include "net/cli/options.h"

#define KNATIVE_API "eventing.knative.dev/v1"
#define DAPR_API    "dapr.io/v2alpha1"

/* Rings and groups are read from the brokers' objects (status.ring), not a path of their own. */
typedef enum {
    RES_BROKERS,
    RES_TRIGGERS,
    RES_SUBSCRIPTIONS,
    RES_RINGS,
    RES_GROUPS,
    RES_COUNT
} resource_t;

static const struct {
    const char *plural, *singular, *api;
} resources[RES_COUNT] = {
    {"brokers", "broker", KNATIVE_API},
    {"triggers", "trigger", KNATIVE_API},
    {"subscriptions", "subscription", DAPR_API},
    {"rings", "ring", KNATIVE_API},
    {"groups", "group", KNATIVE_API},
};

enum { OUT_TABLE, OUT_WIDE, OUT_JSON, OUT_YAML };

/* What both commands take. */
typedef struct {
    const char *ns;
    const char *admin;
    int all_namespaces;
    int output;
    uint64_t timeout_s;
} common_t;

/* GETs an API path and parses the JSON. Returns the tree (the caller deletes it), or NULL after
 * printing the problem ("ringcast CMD: ..."); *code is the exit code then. */
static cJSON *fetch(const char *cmd, const common_t *c, const char *path, int *code)
{
    char err[512];
    int status = 0;
    char *body = NULL;
    *code = 1;
    if (rc__cli_admin_call(c->admin, "GET", path, NULL, NULL, 0, (int)c->timeout_s, &status, &body,
                           err, sizeof(err)) != 0) {
        fprintf(stderr, "ringcast %s: %s\n", cmd, err);
        return NULL;
    }
    cJSON *j = cJSON_Parse(body);
    if (status == 404 && j != NULL && cJSON_IsString(cJSON_GetObjectItem(j, "message"))) {
        fprintf(stderr, "ringcast %s: %s\n", cmd, cJSON_GetObjectItem(j, "message")->valuestring);
    } else if (status != 200) {
        fprintf(stderr, "ringcast %s: %s answered %d for %s: %.200s\n", cmd, c->admin, status, path,
                body);
    } else if (j == NULL) {
        fprintf(stderr, "ringcast %s: %s answered something that is not JSON for %s\n", cmd,
                c->admin, path);
    } else {
        free(body);
        *code = 0;
        return j;
    }
    cJSON_Delete(j);
    free(body);
    return NULL;
}

static void api_path(char *out, size_t cap, resource_t r, const common_t *c, const char *name)
{
    int n = snprintf(out, cap, "/apis/%s", resources[r].api);
    if (!c->all_namespaces)
        n += snprintf(out + n, cap - (size_t)n, "/namespaces/%s", c->ns);
    n += snprintf(out + n, cap - (size_t)n, "/%s",
                  r >= RES_RINGS ? resources[RES_BROKERS].plural : resources[r].plural);
    if (name != NULL && r != RES_GROUPS) /* a group's name is not a broker's */
        snprintf(out + n, cap - (size_t)n, "/%s", name);
}

/* ---- reading the objects --------------------------------------------------------------------- */

/* The value at a dotted path ("status.stats.delivered"), or NULL. */
static const cJSON *at(const cJSON *o, const char *path)
{
    char key[64];
    while (o != NULL && *path != '\0') {
        size_t n = strcspn(path, ".");
        if (n >= sizeof(key))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        o = cJSON_GetObjectItemCaseSensitive(o, key);
        path += n + (path[n] == '.');
    }
    return o;
}

static const char *str_at(const cJSON *o, const char *path, const char *dflt)
{
    const cJSON *v = at(o, path);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

static double num_at(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const cJSON *ready_condition(const cJSON *o)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, at(o, "status.conditions"))
    {
        if (strcmp(str_at(c, "type", ""), "Ready") == 0)
            return c;
    }
    return NULL;
}

/* Seconds since an RFC 3339 UTC time, or -1. */
static long long since(const char *ts)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = ts ? strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    if (end == NULL || *end != '\0')
        return -1;
    long long d = (long long)time(NULL) - (long long)timegm(&tm);
    return d < 0 ? 0 : d;
}

/* kubectl's short ages: 45s, 12m, 5h, 3d. */
static void age_text(char *out, size_t cap, long long s)
{
    if (s < 0)
        snprintf(out, cap, "<unknown>");
    else if (s < 120)
        snprintf(out, cap, "%llds", s);
    else if (s < 120 * 60)
        snprintf(out, cap, "%lldm", s / 60);
    else if (s < 48 * 3600)
        snprintf(out, cap, "%lldh", s / 3600);
    else
        snprintf(out, cap, "%lldd", s / 86400);
}

/* ---- YAML ------------------------------------------------------------------------------------ */

/* Strings are written as JSON strings, which YAML reads as double-quoted scalars. */
static void yaml_string(FILE *o, const char *s)
{
    cJSON *tmp = cJSON_CreateString(s);
    char *q = tmp ? cJSON_PrintUnformatted(tmp) : NULL;
    fputs(q ? q : "\"\"", o);
    free(q);
    cJSON_Delete(tmp);
}

static void yaml_key(FILE *o, const char *k)
{
    if (k[0] != '\0' && strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789_./-") == strlen(k))
        fputs(k, o);
    else
        yaml_string(o, k);
}

static void yaml_scalar(FILE *o, const cJSON *v)
{
    if (cJSON_IsString(v))
        yaml_string(o, v->valuestring);
    else if (cJSON_IsNumber(v) && (double)(long long)v->valuedouble == v->valuedouble)
        fprintf(o, "%lld", (long long)v->valuedouble);
    else if (cJSON_IsNumber(v))
        fprintf(o, "%.6g", v->valuedouble);
    else if (cJSON_IsBool(v))
        fputs(cJSON_IsTrue(v) ? "true" : "false", o);
    else if (cJSON_IsObject(v))
        fputs("{}", o);
    else if (cJSON_IsArray(v))
        fputs("[]", o);
    else
        fputs("null", o);
}

static int yaml_is_block(const cJSON *v)
{
    return (cJSON_IsObject(v) || cJSON_IsArray(v)) && v->child != NULL;
}

/* Writes the members of a non-empty object or array at indentation `ind`; `inline_first`: the
 * first line's indentation is written already (it follows a "- "). */
static void yaml_block(FILE *o, const cJSON *v, int ind, int inline_first)
{
    for (const cJSON *c = v->child; c != NULL; c = c->next) {
        if (!(inline_first && c == v->child))
            fprintf(o, "%*s", ind, "");
        if (cJSON_IsArray(v)) {
            fputs("- ", o);
            if (cJSON_IsObject(c) && c->child != NULL) {
                yaml_block(o, c, ind + 2, 1);
                continue;
            }
            if (yaml_is_block(c)) {
                fputc('\n', o);
                yaml_block(o, c, ind + 2, 0);
                continue;
            }
        } else {
            yaml_key(o, c->string);
            fputc(':', o);
            if (yaml_is_block(c)) {
                fputc('\n', o);
                yaml_block(o, c, ind + 2, 0);
                continue;
            }
            fputc(' ', o);
        }
        yaml_scalar(o, c);
        fputc('\n', o);
    }
}

static void print_object(const cJSON *j, int output)
{
    if (output == OUT_YAML) {
        if (yaml_is_block(j))
            yaml_block(stdout, j, 0, 0);
        return;
    }
    char *text = cJSON_Print(j);
    if (text != NULL)
        printf("%s\n", text);
    free(text);
}

/* ---- tables ---------------------------------------------------------------------------------- */

#define MAX_COLS 16

typedef struct {
    char **cells; /* rows * MAX_COLS, malloc'd strings */
    size_t rows, cap;
    int ncols;
} table_t;

static void cell(table_t *t, int col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void cell(table_t *t, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    t->cells[(t->rows - 1) * MAX_COLS + (size_t)col] = s;
}

static int new_row(table_t *t)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **nc = realloc(t->cells, cap * MAX_COLS * sizeof(*nc));
        if (nc == NULL)
            return -1;
        memset(nc + t->cap * MAX_COLS, 0, (cap - t->cap) * MAX_COLS * sizeof(*nc));
        t->cells = nc;
        t->cap = cap;
    }
    t->rows++;
    return 0;
}

/* Prints the table as kubectl does: columns left-aligned, three spaces apart. */
static void table_print(table_t *t)
{
    size_t w[MAX_COLS] = {0};
    for (size_t r = 0; r < t->rows; r++)
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * MAX_COLS + (size_t)c];
            size_t n = s ? strlen(s) : 0;
            w[c] = n > w[c] ? n : w[c];
        }
    for (size_t r = 0; r < t->rows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * MAX_COLS + (size_t)c];
            if (c + 1 < t->ncols)
                printf("%-*s   ", (int)w[c], s ? s : "");
            else
                printf("%s\n", s ? s : "");
        }
    }
}

static void table_free(table_t *t)
{
    for (size_t i = 0; i < t->rows * MAX_COLS; i++)
        free(t->cells[i]);
    free(t->cells);
}

static const char *const broker_cols[] = {"NAME",
                                          "READY",
                                          "URL",
                                          "FILL",
                                          "READERS",
                                          "AGE",
                                          /* wide */ "EVENTS",
                                          "REFUSED",
                                          "HELD-BACK-BY",
                                          NULL};
static const char *const trigger_cols[] = {"NAME",
                                           "READY",
                                           "SUBSCRIBER",
                                           "DELIVERED",
                                           "FAILED",
                                           "LAG",
                                           "INFLIGHT",
                                           "AGE",
                                           /* wide */ "BROKER",
                                           "RETRIED",
                                           "DEAD-LETTERED",
                                           "DROPPED",
                                           "LAG-BYTES",
                                           "REASON",
                                           "LAST-ERROR",
                                           NULL};
static const char *const sub_cols[] = {"NAME",
                                       "READY",
                                       "PUBSUB",
                                       "TOPIC",
                                       "APP",
                                       "DELIVERED",
                                       "FAILED",
                                       "LAG",
                                       "INFLIGHT",
                                       "AGE",
                                       /* wide */ "SUBSCRIBER",
                                       "RETRIED",
                                       "DEAD-LETTERED",
                                       "REASON",
                                       "LAST-ERROR",
                                       NULL};
static const char *const ring_cols[] = {"NAME",
                                        "STORAGE",
                                        "SIZE",
                                        "FILL",
                                        "EVENTS",
                                        "READERS",
                                        "HELD-BACK-BY",
                                        /* wide */ "DURABILITY",
                                        "REFUSED",
                                        "GROUPS",
                                        "LOCAL-READERS",
                                        NULL};
static const char *const group_cols[] = {"NAME",     "BROKER", "MEMBERS", "LAG-BYTES",
                                         "LAG-LIMIT", "SKIPPED", NULL};
static const int narrow_cols[RES_COUNT] = {6, 8, 10, 7, 6};

static const char *size_text(double b, char *buf, size_t cap)
{
    static const char *const units[] = {"", "Ki", "Mi", "Gi", "Ti"};
    int u = 0;
    while (b >= 1024.0 && u < 4) {
        b /= 1024.0;
        u++;
    }
    snprintf(buf, cap, u == 0 ? "%.0f%s" : "%.4g%s", b, units[u]);
    return buf;
}

/* A ring's or a group's row (objects made by derive()). */
static void add_ring_row(table_t *t, resource_t r, const cJSON *o, int ns_col)
{
    int c = 0;
    char size[32];
    if (ns_col)
        cell(t, c++, "%s", str_at(o, "metadata.namespace", ""));
    cell(t, c++, "%s", str_at(o, "metadata.name", ""));
    if (r == RES_GROUPS) {
        cell(t, c++, "%s", str_at(o, "broker", ""));
        cell(t, c++, "%.0f", num_at(o, "members"));
        cell(t, c++, "%.0f", num_at(o, "lagBytes"));
        if (at(o, "lagLimitBytes") != NULL)
            cell(t, c++, "%s", size_text(num_at(o, "lagLimitBytes"), size, sizeof(size)));
        else
            cell(t, c++, "%s", str_at(o, "lagPolicy", ""));
        cell(t, c++, "%.0f", num_at(o, "skipped"));
        return;
    }
    cell(t, c++, "%s", str_at(o, "ring.storage.type", ""));
    cell(t, c++, "%s", size_text(num_at(o, "ring.capacityBytes"), size, sizeof(size)));
    cell(t, c++, "%.1f%%", 100.0 * num_at(o, "ring.fill"));
    cell(t, c++, "%.0f", num_at(o, "ring.events"));
    cell(t, c++, "%.0f", num_at(o, "ring.readers"));
    cell(t, c++, "%s",
         str_at(o, "ring.heldBackBy.trigger", str_at(o, "ring.heldBackBy.reader", "<none>")));
    cell(t, c++, "%s", str_at(o, "ring.storage.durability", "none"));
    cell(t, c++, "%.0f", num_at(o, "ring.refused"));
    cell(t, c++, "%d", cJSON_GetArraySize(at(o, "ring.groups")));
    char readers[256] = "<none>";
    size_t n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, at(o, "ring.localReaders"))
    {
        int w = snprintf(readers + n, sizeof(readers) - n, "%s%s(%.0f)", n ? "," : "",
                         str_at(e, "name", "?"), num_at(e, "lagEvents"));
        if (w < 0 || (size_t)w >= sizeof(readers) - n)
            break;
        n += (size_t)w;
    }
    cell(t, c++, "%s", readers);
}

/* The rings or groups of the brokers' objects `items`, as objects of their own (metadata with
 * namespace and name; a ring: the broker's status.ring; a group: its fields and its broker),
 * keeping those named `name` (a group's; NULL: all). The caller deletes the array. */
static cJSON *derive(resource_t r, const cJSON *items, const char *name)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *b;
    cJSON_ArrayForEach(b, items)
    {
        const char *ns = str_at(b, "metadata.namespace", ""), *bn = str_at(b, "metadata.name", "");
        if (r == RES_RINGS) {
            cJSON *o = cJSON_CreateObject();
            cJSON *m = cJSON_AddObjectToObject(o, "metadata");
            cJSON_AddStringToObject(m, "namespace", ns);
            cJSON_AddStringToObject(m, "name", bn);
            cJSON_AddItemToObject(o, "ring", cJSON_Duplicate(at(b, "status.ring"), 1));
            cJSON_AddItemToArray(out, o);
            continue;
        }
        const cJSON *g;
        cJSON_ArrayForEach(g, at(b, "status.ring.groups"))
        {
            const char *gn = str_at(g, "name", "");
            if (name != NULL && strcmp(name, gn) != 0)
                continue;
            cJSON *o = cJSON_Duplicate(g, 1);
            cJSON_DeleteItemFromObject(o, "name");
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "namespace", ns);
            cJSON_AddStringToObject(m, "name", gn);
            cJSON_AddItemToObject(o, "metadata", m);
            cJSON_AddStringToObject(o, "broker", bn);
            cJSON_AddItemToArray(out, o);
        }
    }
    return out;
}

/* One object's row; columns past narrow_cols are -o wide's. */
static void add_row(table_t *t, resource_t r, const cJSON *o, int ns_col)
{
    int c = 0;
    if (ns_col)
        cell(t, c++, "%s", str_at(o, "metadata.namespace", ""));
    cell(t, c++, "%s", str_at(o, "metadata.name", ""));
    const cJSON *rd = ready_condition(o);
    cell(t, c++, "%s", str_at(rd, "status", "Unknown"));
    char age[32];
    age_text(age, sizeof(age), since(str_at(o, "metadata.creationTimestamp", NULL)));
    if (r == RES_BROKERS) {
        cell(t, c++, "%s", str_at(o, "status.address.url", ""));
        cell(t, c++, "%.1f%%", 100.0 * num_at(o, "status.ring.fill"));
        cell(t, c++, "%.0f", num_at(o, "status.ring.readers"));
        cell(t, c++, "%s", age);
        cell(t, c++, "%.0f", num_at(o, "status.ring.events"));
        cell(t, c++, "%.0f", num_at(o, "status.ring.refused"));
        cell(t, c++, "%s",
             str_at(o, "status.ring.heldBackBy.trigger",
                    str_at(o, "status.ring.heldBackBy.reader", "<none>")));
        return;
    }
    if (r == RES_TRIGGERS) {
        cell(t, c++, "%s", str_at(o, "status.subscriberUri", ""));
    } else {
        cell(t, c++, "%s", str_at(o, "spec.pubsubname", ""));
        cell(t, c++, "%s", str_at(o, "spec.topic", ""));
        const cJSON *app =
            cJSON_GetObjectItemCaseSensitive(at(o, "metadata.labels"), "dapr.io/app-id");
        cell(t, c++, "%s", cJSON_IsString(app) ? app->valuestring : "");
    }
    cell(t, c++, "%.0f", num_at(o, "status.stats.delivered"));
    cell(t, c++, "%.0f", num_at(o, "status.stats.failed"));
    cell(t, c++, "%.0f", num_at(o, "status.stats.lagEvents"));
    cell(t, c++, "%.0f", num_at(o, "status.stats.inflight"));
    cell(t, c++, "%s", age);
    if (r == RES_TRIGGERS)
        cell(t, c++, "%s", str_at(o, "spec.broker", ""));
    else
        cell(t, c++, "%s", str_at(o, "status.subscriberUri", ""));
    cell(t, c++, "%.0f", num_at(o, "status.stats.retried"));
    cell(t, c++, "%.0f", num_at(o, "status.stats.deadLettered"));
    if (r == RES_TRIGGERS) {
        cell(t, c++, "%.0f", num_at(o, "status.stats.dropped"));
        cell(t, c++, "%.0f", num_at(o, "status.stats.lagBytes"));
    }
    cell(t, c++, "%s", str_at(rd, "reason", ""));
    cell(t, c++, "%s", str_at(o, "status.lastError.message", "<none>"));
}

static void print_table(resource_t r, const cJSON *items, const common_t *c)
{
    const char *const *cols = r == RES_BROKERS         ? broker_cols
                              : r == RES_TRIGGERS      ? trigger_cols
                              : r == RES_SUBSCRIPTIONS ? sub_cols
                              : r == RES_RINGS         ? ring_cols
                                                       : group_cols;
    int ncols = 0;
    while (cols[ncols] != NULL)
        ncols++;
    if (c->output != OUT_WIDE)
        ncols = narrow_cols[r];
    table_t t = {.ncols = ncols + c->all_namespaces};
    if (new_row(&t) != 0)
        return;
    int k = 0;
    if (c->all_namespaces)
        cell(&t, k++, "NAMESPACE");
    for (int i = 0; i < ncols; i++)
        cell(&t, k++, "%s", cols[i]);
    const cJSON *o;
    cJSON_ArrayForEach(o, items)
    {
        if (new_row(&t) != 0)
            break;
        if (r >= RES_RINGS)
            add_ring_row(&t, r, o, c->all_namespaces);
        else
            add_row(&t, r, o, c->all_namespaces);
    }
    table_print(&t);
    table_free(&t);
}

/* ---- describe -------------------------------------------------------------------------------- */

static void line(const char *label, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line(const char *label, const char *fmt, ...)
{
    char l[64];
    snprintf(l, sizeof(l), "%s:", label);
    printf("%-20s", l);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static void describe_outcome(const cJSON *o, const char *key, const char *label)
{
    const cJSON *v = at(o, key);
    if (v == NULL) {
        line(label, "<none>");
        return;
    }
    const char *ts = str_at(v, "time", "");
    char ago[32];
    age_text(ago, sizeof(ago), since(ts));
    line(label, "%s (%s ago at %s)", str_at(v, "message", ""), ago, ts);
}

/* The delivery latency since the trigger was added and over the last minute. */
static void describe_latency(const cJSON *o)
{
    const cJSON *l = at(o, "status.deliveryLatency"), *r = at(o, "status.recentLatency");
    if (l != NULL)
        line("Latency", "p50 %.1fms, p99 %.1fms (%.0f deliveries since added)",
             num_at(l, "p50Seconds") * 1e3, num_at(l, "p99Seconds") * 1e3, num_at(l, "count"));
    if (r != NULL)
        line("Latency, last 60 s", "p50 %.1fms, p99 %.1fms (%.0f deliveries)",
             num_at(r, "p50Seconds") * 1e3, num_at(r, "p99Seconds") * 1e3, num_at(r, "count"));
}

/* status.deadLetters (a trigger's latest ones) and the state of its last replay. */
static void describe_dead_letters(const cJSON *o)
{
    const cJSON *dl = at(o, "status.deadLetters"), *e;
    if (cJSON_GetArraySize(dl) > 0) {
        printf("Dead letters (newest first; ringcast replay trigger NAME --id ID):\n");
        printf("  %-22s %-28s %12s  %s\n", "TIME", "LAST ERROR", "POSITION", "EVENT ID");
        cJSON_ArrayForEach(e, dl)
        {
            printf("  %-22s %-28.28s %12.0f  %s\n", str_at(e, "time", ""),
                   str_at(e, "lastError", ""), num_at(e, "position"), str_at(e, "eventId", ""));
        }
    }
    const cJSON *r = at(o, "status.replay");
    if (r != NULL)
        line("Last replay", "%s%s%s (%.0f asked, %.0f replayed)", str_at(r, "state", ""),
             at(r, "message") != NULL ? ": " : "", str_at(r, "message", ""),
             num_at(r, "requests"), num_at(r, "replayed"));
}

static void describe_delivery(const cJSON *o)
{
    const cJSON *p = at(o, "status.deliveryPolicy");
    printf("Delivery policy:\n");
    line("  Retry", "%.0f", num_at(p, "retry"));
    line("  Backoff", "%s, delay %s, max %s", str_at(p, "backoffPolicy", ""),
         str_at(p, "backoffDelay", ""), str_at(p, "backoffMax", ""));
    line("  Timeout", "%s", str_at(p, "timeout", ""));
    line("  Retry-After max", "%s", str_at(p, "retryAfterMax", ""));
    line("  Format", "%s", str_at(p, "format", ""));
    line("  Max in flight", "%.0f", num_at(p, "maxInflight"));
    line("  Dead-letter sink", "%s", str_at(o, "status.deadLetterSinkUri", "<none>"));
    printf("Deliveries:\n");
    line("  Delivered", "%.0f", num_at(o, "status.stats.delivered"));
    line("  Failed", "%.0f", num_at(o, "status.stats.failed"));
    line("  Retried", "%.0f", num_at(o, "status.stats.retried"));
    line("  Dead-lettered", "%.0f", num_at(o, "status.stats.deadLettered"));
    line("  Dropped", "%.0f", num_at(o, "status.stats.dropped"));
    line("  In flight", "%.0f", num_at(o, "status.stats.inflight"));
    line("  Lag", "%.0f events, %.0f bytes", num_at(o, "status.stats.lagEvents"),
         num_at(o, "status.stats.lagBytes"));
    describe_outcome(o, "status.lastAttempt", "Last attempt");
    describe_outcome(o, "status.lastError", "Last error");
    if (at(o, "status.pausedTime") != NULL)
        line("Paused", "since %s (ringcast resume trigger NAME)",
             str_at(o, "status.pausedTime", ""));
    describe_latency(o);
    const cJSON *rec = at(o, "status.recentOutcomes"), *e;
    if (cJSON_GetArraySize(rec) > 0) {
        printf("Recent outcomes (newest first):\n");
        printf("  %-22s %-28s %10s  %s\n", "TIME", "OUTCOME", "DURATION", "EVENT ID");
        cJSON_ArrayForEach(e, rec)
        {
            printf("  %-22s %-28.28s %8.1fms  %s\n", str_at(e, "time", ""),
                   str_at(e, "message", ""), num_at(e, "durationSeconds") * 1e3,
                   str_at(e, "eventId", ""));
        }
    }
    describe_dead_letters(o);
    if (at(o, "status.workerPid") != NULL)
        line("Worker pid", "%.0f", num_at(o, "status.workerPid"));
}

static void describe(resource_t r, const cJSON *o)
{
    line("Name", "%s", str_at(o, "metadata.name", ""));
    line("Namespace", "%s", str_at(o, "metadata.namespace", ""));
    line("Kind", "%s (%s)", str_at(o, "kind", ""), str_at(o, "apiVersion", ""));
    const char *ts = str_at(o, "metadata.creationTimestamp", "");
    char age[32];
    age_text(age, sizeof(age), since(ts));
    line("Created", "%s (%s ago)", ts, age);
    if (r == RES_BROKERS) {
        line("URL", "%s", str_at(o, "status.address.url", ""));
        line("Ring", "%.1f%% full (%.0f of %.0f bytes), %.0f events, %.0f refused",
             100.0 * num_at(o, "status.ring.fill"), num_at(o, "status.ring.usedBytes"),
             num_at(o, "status.ring.capacityBytes"), num_at(o, "status.ring.events"),
             num_at(o, "status.ring.refused"));
        line("Readers", "%.0f (%.0f lossless)", num_at(o, "status.ring.readers"),
             num_at(o, "status.ring.losslessReaders"));
        if (at(o, "status.ring.heldBackBy") != NULL)
            line("Held back by", "%s %s (%.0f bytes behind)",
                 str_at(o, "status.ring.heldBackBy.reader", ""),
                 str_at(o, "status.ring.heldBackBy.trigger", ""),
                 num_at(o, "status.ring.heldBackBy.lagBytes"));
    } else if (r == RES_TRIGGERS) {
        line("Broker", "%s", str_at(o, "spec.broker", ""));
        line("Subscriber", "%s", str_at(o, "status.subscriberUri", ""));
        line("Filter", "%s", str_at(o, "status.filter", "true"));
    } else {
        line("Pubsub", "%s", str_at(o, "spec.pubsubname", ""));
        line("Topic", "%s", str_at(o, "spec.topic", ""));
        line("Broker", "%s", str_at(o, "status.broker", ""));
        line("Consumer group", "%s", str_at(o, "status.consumerGroup", ""));
        line("Subscriber", "%s", str_at(o, "status.subscriberUri", ""));
        const cJSON *rule;
        cJSON_ArrayForEach(rule, at(o, "spec.routes.rules"))
        {
            line("Route", "%s if %s", str_at(rule, "path", ""), str_at(rule, "match", ""));
        }
        line("Default route", "%s", str_at(o, "spec.routes.default", "<none>"));
        line("Dead-letter topic", "%s", str_at(o, "spec.deadLetterTopic", "<none>"));
    }
    const cJSON *rd = ready_condition(o);
    line("Ready", "%s", str_at(rd, "status", "Unknown"));
    line("  Reason", "%s", str_at(rd, "reason", ""));
    line("  Message", "%s", str_at(rd, "message", ""));
    if (r != RES_BROKERS)
        describe_delivery(o);
}

/* ---- the commands ---------------------------------------------------------------------------- */

static int parse_resource(const char *s, resource_t *out)
{
    for (int r = 0; r < RES_COUNT; r++) {
        if (strcmp(s, resources[r].plural) == 0 || strcmp(s, resources[r].singular) == 0) {
            *out = (resource_t)r;
            return 0;
        }
    }
    return -1;
}

static int takes_value(const rc_cli_opt_t *opts, const char *a)
{
    for (const rc_cli_opt_t *o = opts; o->name != NULL; o++) {
        if (o->kind == RC_CLI_FLAG)
            continue;
        if ((a[1] == '-' && strcmp(a + 2, o->name) == 0) ||
            (o->short_name != 0 && a[1] == o->short_name && a[2] == '\0'))
            return 1;
    }
    return 0;
}

/* Takes the first operand (the resource) out of argv, wherever it is among the options, so that
 * the parser sees only the NAME. Returns it, or NULL. */
static const char *take_resource(const rc_cli_opt_t *opts, int *argc, char **argv)
{
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (a[0] == '-' && a[1] != '\0') {
            if (strchr(a, '=') == NULL && takes_value(opts, a))
                i++;
            continue;
        }
        memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i - 1) * sizeof(*argv));
        (*argc)--;
        return a;
    }
    return NULL;
}

/* A namespace or name that is one path segment: no '/', '?', '#', '%', space or control. */
static int valid_segment(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p >= 0x7f || strchr("/?#%\"\\", *p) != NULL)
            return 0;
    }
    return 1;
}

/* The checks both commands make after parsing; returns RC_CLI_GO_ON or the exit code. */
static int check_common(const rc_cli_spec_t *spec, const char *resource, const char *name,
                        common_t *c, resource_t *r)
{
    if (resource == NULL)
        return rc__cli_fail(spec, "missing RESOURCE (one of: brokers, triggers, subscriptions, "
                                  "rings, groups)");
    if (parse_resource(resource, r) != 0)
        return rc__cli_fail(spec,
                            "unknown resource '%s' (known: brokers, triggers, subscriptions, "
                            "rings, groups; the singular works too)",
                            resource);
    if (c->ns != NULL && c->all_namespaces)
        return rc__cli_fail(spec, "-n/--namespace and -A/--all-namespaces exclude each other");
    if (name != NULL && c->all_namespaces)
        return rc__cli_fail(spec, "a NAME is looked up in one namespace: drop -A");
    if (c->ns == NULL)
        c->ns = "default";
    if (!valid_segment(c->ns, RC_CONFIG_NAME_MAX))
        return rc__cli_fail(spec, "'%s' is not a namespace name", c->ns);
    if (name != NULL && !valid_segment(name, 2 * RC_CONFIG_NAME_MAX + 1))
        return rc__cli_fail(spec, "'%s' is not a name", name);
    if (c->admin == NULL)
        c->admin = getenv("RINGCAST_ADMIN");
    if (c->admin == NULL || c->admin[0] == '\0')
        c->admin = DEFAULT_ADMIN;
    return RC_CLI_GO_ON;
}

#define COMMON_OPTS(c)                                                                             \
    {.name = "namespace",                                                                          \
     .short_name = 'n',                                                                            \
     .kind = RC_CLI_STRING,                                                                        \
     .value = &(c).ns,                                                                             \
     .metavar = "NS",                                                                              \
     .help = "the namespace (default: default)"},                                                  \
        RC_CLI_OPT_STRING(                                                                         \
            "admin", &(c).admin, "HOST:PORT",                                                      \
            "the broker's admin address (default: $RINGCAST_ADMIN, else " DEFAULT_ADMIN ")"),      \
        RC_CLI_OPT_UINT("timeout", &(c).timeout_s, "SECONDS", 1, 3600,                             \
                        "for connecting and reading the answer (default 5)")

/* `get rings|groups`: `j` is the brokers' list (or one broker, for `get ring NAME`); deletes
 * it. Returns the exit code. */
static int get_derived(resource_t r, cJSON *j, const char *name, const common_t *c)
{
    cJSON *items = cJSON_GetObjectItem(j, "items");
    cJSON *one = NULL;
    if (items == NULL) { /* one broker */
        one = cJSON_CreateArray();
        cJSON_AddItemReferenceToArray(one, j);
        items = one;
    }
    cJSON *objs = derive(r, items, name);
    cJSON_Delete(one);
    cJSON_Delete(j);
    int code = 0;
    if (name != NULL && r == RES_GROUPS && cJSON_GetArraySize(objs) == 0) {
        fprintf(stderr, "ringcast get: group %s not found in namespace %s\n", name, c->ns);
        code = 1;
    } else if (c->output == OUT_JSON || c->output == OUT_YAML) {
        if (name != NULL && cJSON_GetArraySize(objs) == 1) {
            print_object(cJSON_GetArrayItem(objs, 0), c->output);
        } else {
            cJSON *list = cJSON_CreateObject();
            cJSON_AddStringToObject(list, "kind", r == RES_RINGS ? "RingList" : "GroupList");
            cJSON_AddItemReferenceToObject(list, "items", objs);
            print_object(list, c->output);
            cJSON_Delete(list);
        }
    } else if (cJSON_GetArraySize(objs) == 0) {
        if (c->all_namespaces)
            fprintf(stderr, "No %s found.\n", resources[r].plural);
        else
            fprintf(stderr, "No %s found in namespace %s.\n", resources[r].plural, c->ns);
    } else {
        print_table(r, objs, c);
    }
    cJSON_Delete(objs);
    return code;
}

int rc_cmd_get(int argc, char **argv)
{
    common_t c = {.timeout_s = 5};
    const char *name = NULL;
    const rc_cli_opt_t opts[] = {
        COMMON_OPTS(c),
        {.name = "all-namespaces",
         .short_name = 'A',
         .kind = RC_CLI_FLAG,
         .value = &c.all_namespaces,
         .help = "list the objects of every namespace"},
        {.name = "output",
         .short_name = 'o',
         .kind = RC_CLI_CHOICE,
         .value = &c.output,
         .choices = "table|wide|json|yaml",
         .help = "a table (default), a wider one, or the objects as JSON or YAML"},
        RC_CLI_OPT_END,
    };
    const rc_cli_spec_t spec = {
        .command = "get",
        .synopsis = "get RESOURCE [NAME] [-n NS | -A] [-o table|wide|json|yaml]\n"
                    "                    [--admin HOST:PORT] [--timeout SECONDS]",
        .about = "Lists what a running broker has, from its admin API: RESOURCE is brokers,\n"
                 "triggers, subscriptions (Dapr), rings (each broker's store: storage, size,\n"
                 "fill, readers, who holds it back) or groups (consumer groups of local\n"
                 "readers: members, lag, lag limit, events skipped). The table shows each\n"
                 "object's READY condition and counters; -o json|yaml prints the objects as\n"
                 "the admin API serves them (/apis/eventing.knative.dev/v1/...,\n"
                 "/apis/dapr.io/v2alpha1/...; rings and groups are read from the brokers'\n"
                 "status.ring). NAME is a broker's for rings, a group's for groups.\n"
                 "See docs/operations.md, \"Status\".\n",
        .epilogue = "Exit codes: 0 listed (also when there is nothing to list), 1 the admin API\n"
                    "  is not reachable or NAME is not found, 2 bad usage.\n",
        .opts = opts,
        .operand_name = "NAME",
        .operand = &name,
    };
    const char *resource = take_resource(opts, &argc, argv);
    int code = rc__cli_parse(&spec, argc, argv);
    if (code != RC_CLI_GO_ON)
        return code;
    resource_t r;
    if ((code = check_common(&spec, resource, name, &c, &r)) != RC_CLI_GO_ON)
        return code;
    char path[512];
    api_path(path, sizeof(path), r, &c, name);
    cJSON *j = fetch("get", &c, path, &code);
    if (j == NULL)
        return code;
    if (r >= RES_RINGS)
        return get_derived(r, j, name, &c);
    if (c.output == OUT_JSON || c.output == OUT_YAML) {
        print_object(j, c.output);
    } else if (name != NULL) {
        cJSON *one = cJSON_CreateArray();
        cJSON_AddItemReferenceToArray(one, j);
        print_table(r, one, &c);
        cJSON_Delete(one);
    } else if (cJSON_GetArraySize(cJSON_GetObjectItem(j, "items")) == 0) {
        if (c.all_namespaces)
            fprintf(stderr, "No %s found.\n", resources[r].plural);
        else
            fprintf(stderr, "No %s found in namespace %s.\n", resources[r].plural, c.ns);
    } else {
        print_table(r, cJSON_GetObjectItem(j, "items"), &c);
    }
    cJSON_Delete(j);
    return 0;
}

int rc_cmd_describe(int argc, char **argv)
{
    common_t c = {.timeout_s = 5};
    const char *name = NULL;
    const rc_cli_opt_t opts[] = {COMMON_OPTS(c), RC_CLI_OPT_END};
    const rc_cli_spec_t spec = {
        .command = "describe",
        .synopsis = "describe RESOURCE NAME [-n NS] [--admin HOST:PORT] [--timeout SECONDS]",
        .about = "Describes one broker, trigger or Dapr subscription of a running broker, from\n"
                 "its admin API: a trigger's filter, delivery policy, counters, its latest\n"
                 "attempt and its latest delivery error. See docs/operations.md, \"Status\".\n",
        .epilogue = "Exit codes: 0 described, 1 the admin API is not reachable or NAME is not\n"
                    "  found, 2 bad usage.\n",
        .opts = opts,
        .operand_name = "NAME",
        .operand = &name,
    };
    const char *resource = take_resource(opts, &argc, argv);
    int code = rc__cli_parse(&spec, argc, argv);
    if (code != RC_CLI_GO_ON)
        return code;
    resource_t r;
    if ((code = check_common(&spec, resource, name, &c, &r)) != RC_CLI_GO_ON)
        return code;
    if (r >= RES_RINGS)
        return rc__cli_fail(&spec, "describe takes a broker, trigger or subscription; `ringcast "
                                   "get %s -o yaml` shows everything of %s",
                            resources[r].plural, resources[r].plural);
    if (name == NULL)
        return rc__cli_fail(&spec, "missing NAME (`ringcast get %s` lists them)",
                            resources[r].plural);
    char path[512];
    api_path(path, sizeof(path), r, &c, name);
    cJSON *j = fetch("describe", &c, path, &code);
    if (j == NULL)
        return code;
    describe(r, j);
    cJSON_Delete(j);
    return 0;
}
