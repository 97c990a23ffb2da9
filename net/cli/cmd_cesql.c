/* `ringcast cesql [--event FILE] EXPRESSION`: compiles and evaluates one CloudEvents SQL
 * expression against an event given in structured-mode JSON (or against an event with no
 * attributes at all), and prints one JSON line {"result": ..., "error": ...}. */
#include "core/cesql.h"
#include "net/cli/cli.h"
#include "net/cli/options.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVENT_BYTES (16u << 20)

/* An event's attributes: names and strings borrow `json`; numbers that are not 32-bit integers
 * keep their canonical text in `numbuf`. */
typedef struct {
    char *name;
    rc_cesql_value_t v;
} attr_t;

typedef struct {
    cJSON *json;
    attr_t *a;
    char (*numbuf)[32];
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

static char *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            if (cap >= MAX_EVENT_BYTES) {
                free(buf);
                buf = NULL;
                errno = EFBIG;
                break;
            }
            char *nb = realloc(buf, cap * 2 + 1);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf != NULL && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    if (f != stdin)
        fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

/* Builds the attribute table from `ev->json`, which must be an object. Strings borrow the
 * JSON; numbers that are not 32-bit integers become their canonical text (spec 3.2). Returns
 * NULL or a message for stderr. */
static const char *event_attrs(event_t *ev)
{
    if (!cJSON_IsObject(ev->json))
        return "the event is not a JSON object";
    size_t count = (size_t)cJSON_GetArraySize(ev->json) + 1;
    ev->a = calloc(count, sizeof(*ev->a));
    ev->numbuf = calloc(count, sizeof(*ev->numbuf));
    if (ev->a == NULL || ev->numbuf == NULL)
        return "out of memory";
    const cJSON *m;
    cJSON_ArrayForEach(m, ev->json)
    {
        if (strcmp(m->string, "data") == 0 || strcmp(m->string, "data_base64") == 0 ||
            cJSON_IsNull(m))
            continue;
        attr_t *a = &ev->a[ev->n];
        a->name = m->string;
        if (cJSON_IsString(m)) {
            a->v.type = RC_CESQL_TYPE_STRING;
            a->v.u.s = m->valuestring;
            a->v.len = (uint32_t)strlen(m->valuestring);
        } else if (cJSON_IsBool(m)) {
            a->v.type = RC_CESQL_TYPE_BOOL;
            a->v.u.b = cJSON_IsTrue(m);
        } else if (cJSON_IsNumber(m)) {
            double d = m->valuedouble;
            if (d >= INT32_MIN && d <= INT32_MAX && d == (double)(int32_t)d) {
                a->v.type = RC_CESQL_TYPE_INT;
                a->v.u.i = (int32_t)d;
            } else {
                int k = snprintf(ev->numbuf[ev->n], sizeof(ev->numbuf[0]), "%.17g", d);
                a->v.type = RC_CESQL_TYPE_STRING;
                a->v.u.s = ev->numbuf[ev->n];
                a->v.len = (uint32_t)k;
            }
        } else {
            static char msg[160];
            snprintf(msg, sizeof(msg), "attribute '%.80s' is an object or array", m->string);
            return msg;
        }
        ev->n++;
    }
    return NULL;
}

/* Reads and parses the event in `path` ("-": stdin) into `ev`. Returns 0, or 2 with the reason
 * printed. */
static int event_load(const char *path, event_t *ev)
{
    size_t len = 0;
    char *text = read_all(path, &len);
    if (text == NULL) {
        fprintf(stderr, "ringcast cesql: cannot read event %s: %s\n", path, strerror(errno));
        return 2;
    }
    int code = 2;
    ev->json = cJSON_ParseWithLength(text, len);
    if (ev->json == NULL) {
        fprintf(stderr, "ringcast cesql: event %s is not valid JSON (near byte %ld)\n", path,
                (long)(cJSON_GetErrorPtr() - text));
        goto out;
    }
    const char *msg = event_attrs(ev);
    if (msg != NULL) {
        fprintf(stderr, "ringcast cesql: event %s: %s\n", path, msg);
        goto out;
    }
    code = 0;
out:
    free(text); /* the tree holds copies */
    return code;
}

static void event_close(event_t *ev)
{
    free(ev->a);
    free(ev->numbuf);
    cJSON_Delete(ev->json);
}

static void print_value(const rc_cesql_value_t *v)
{
    switch (v->type) {
    case RC_CESQL_TYPE_BOOL:
        fputs(v->u.b ? "true" : "false", stdout);
        break;
    case RC_CESQL_TYPE_INT:
        printf("%d", v->u.i);
        break;
    case RC_CESQL_TYPE_STRING: {
        /* cJSON escapes the string; CESQL strings here never hold NUL bytes (they come from
         * argv and JSON text), so a C string copy is exact. */
        char *s = malloc((size_t)v->len + 1);
        cJSON *item = NULL;
        char *text = NULL;
        if (s != NULL) {
            memcpy(s, v->u.s, v->len);
            s[v->len] = '\0';
            item = cJSON_CreateString(s);
        }
        if (item != NULL)
            text = cJSON_PrintUnformatted(item);
        fputs(text != NULL ? text : "null", stdout);
        cJSON_free(text);
        cJSON_Delete(item);
        free(s);
        break;
    }
    default:
        fputs("null", stdout);
        break;
    }
}

static void print_result(const rc_cesql_value_t *v, rc_cesql_errkind_t err)
{
    fputs("{\"result\": ", stdout);
    print_value(v);
    const char *kind = rc_cesql_errkind_name(err);
    if (kind != NULL)
        printf(", \"error\": \"%s\"}\n", kind);
    else
        fputs(", \"error\": null}\n", stdout);
}

int rc_cmd_cesql(int argc, char **argv)
{
    const char *event_path = NULL, *expr = NULL;
    const rc_cli_opt_t opts[] = {
        RC_CLI_OPT_STRING("event", &event_path, "FILE",
                          "the event, in structured-mode JSON ('-' reads stdin); its members other "
                          "than data/data_base64 are the attributes. Without it the event has no "
                          "attributes at all (EXISTS id is false)."),
        RC_CLI_OPT_END,
    };
    const rc_cli_spec_t spec = {
        .command = "cesql",
        .synopsis = "cesql [--event FILE] [--] EXPRESSION",
        .about = "Evaluates a CloudEvents SQL (CESQL v1.0) expression and prints one JSON line:\n"
                 "  {\"result\": <value or null>, \"error\": null or \"<kind>\"}\n"
                 "where kind is parse, math, cast, missingAttribute, missingFunction,\n"
                 "functionEvaluation or generic (the first error; evaluation is fail-fast).\n"
                 "An EXPRESSION may start with '-' ('-5 * 2'); after -- it may also start with\n"
                 "'--'.\n",
        .epilogue = "Exit codes: 0 evaluated (also when the result is an error, including parse\n"
                    "errors, whose message goes to stderr), 1 failure, 2 bad usage or unusable "
                    "event.\n",
        .opts = opts,
        .operand_name = "EXPRESSION",
        .operand = &expr,
        .dash_operands = 1,
    };
    int rc = rc__cli_parse(&spec, argc, argv);
    if (rc != RC_CLI_GO_ON)
        return rc;
    if (expr == NULL) {
        rc__cli_fail(&spec, "expected an EXPRESSION");
        rc__cli_help(&spec, stderr);
        return 2;
    }

    event_t ev = {0};
    rc_cesql_program_t *prog = NULL;
    char *scratch = NULL;
    rc = 2;
    if (event_path != NULL && event_load(event_path, &ev) != 0)
        goto out;
    rc_cesql_error_t err;
    int crc = rc_cesql_compile(expr, strlen(expr), &prog, &err);
    if (crc == -ENOMEM) {
        fprintf(stderr, "ringcast cesql: out of memory\n");
        rc = 1;
        goto out;
    }
    if (crc != 0) {
        fprintf(stderr, "ringcast cesql: %s\n", err.msg);
        /* A call that cannot be dispatched has the value false (spec 3.5); a parse error none. */
        rc_cesql_value_t v = {.type = 0};
        if (err.kind == RC_CESQL_ERR_MISSING_FUNCTION)
            v = (rc_cesql_value_t){.type = RC_CESQL_TYPE_BOOL, .u.b = false};
        print_result(&v, err.kind);
        rc = 0;
        goto out;
    }
    size_t scratch_len = 1u << 20;
    scratch = malloc(scratch_len);
    if (scratch == NULL) {
        rc = 1;
        goto out;
    }
    rc_cesql_result_t r;
    rc_cesql_eval(prog, get_attr, &ev, scratch, scratch_len, &r);
    print_result(&r.value, r.error);
    rc = 0;
out:
    free(scratch);
    rc_cesql_destroy(prog);
    event_close(&ev);
    return rc;
}
