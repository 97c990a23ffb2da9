/* `ringcast cesql [--event FILE] EXPRESSION`: compiles and evaluates one CloudEvents SQL
 * expression against an event given in structured-mode JSON (or against an event with no
 * attributes at all), and prints one JSON line {"result": ..., "error": ...}. */
#include "core/cesql.h"
#include "net/cli/cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVENT_BYTES (16u << 20)

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ringcast cesql [--event FILE] [--] EXPRESSION\n\n"
            "Evaluates a CloudEvents SQL (CESQL v1.0) expression and prints one JSON line:\n"
            "  {\"result\": <value or null>, \"error\": null or \"<kind>\"}\n"
            "where kind is parse, math, cast, missingAttribute, missingFunction,\n"
            "functionEvaluation or generic (the first error; evaluation is fail-fast).\n\n"
            "options:\n"
            "  --event FILE  the event, in structured-mode JSON ('-' reads stdin); its members\n"
            "                other than data/data_base64 are the attributes. Without it the\n"
            "                event has no attributes at all (EXISTS id is false).\n"
            "  --            end of options (for expressions starting with '-')\n"
            "  -h, --help    this help\n\n"
            "Exit codes: 0 evaluated (also when the result is an error, including parse\n"
            "errors, whose message goes to stderr), 1 failure, 2 bad usage or unusable event.\n");
}

typedef struct {
    char *name;
    rc_cesql_value_t v;
} attr_t;

typedef struct {
    attr_t *a;
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

/* Builds the attribute table from the event object. Strings borrow from `json`; numbers that
 * are not 32-bit integers become their canonical text (spec 3.2) in `numbuf`. Returns 0 or a
 * message for stderr. */
static const char *load_event(cJSON *json, event_t *ev, char (*numbuf)[32])
{
    if (!cJSON_IsObject(json))
        return "the event is not a JSON object";
    int count = cJSON_GetArraySize(json);
    ev->a = calloc((size_t)count + 1, sizeof(*ev->a));
    if (ev->a == NULL)
        return "out of memory";
    for (cJSON *m = json->child; m != NULL; m = m->next) {
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
                int k = snprintf(numbuf[ev->n], sizeof(numbuf[0]), "%.17g", d);
                a->v.type = RC_CESQL_TYPE_STRING;
                a->v.u.s = numbuf[ev->n];
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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--event") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ringcast cesql: --event needs a FILE\n");
                return 2;
            }
            event_path = argv[++i];
        } else if (strncmp(a, "--event=", 8) == 0) {
            event_path = a + 8;
        } else if (strcmp(a, "--") == 0) {
            if (i + 2 != argc || expr != NULL) {
                fprintf(stderr, "ringcast cesql: expected exactly one EXPRESSION after --\n");
                return 2;
            }
            expr = argv[++i];
        } else if (strncmp(a, "--", 2) == 0) {
            fprintf(stderr, "ringcast cesql: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        } else if (expr != NULL) {
            fprintf(stderr, "ringcast cesql: more than one EXPRESSION (quote the expression)\n");
            return 2;
        } else {
            expr = a;
        }
    }
    if (expr == NULL) {
        usage(stderr);
        return 2;
    }

    int rc = 2;
    char *text = NULL;
    cJSON *json = NULL;
    event_t ev = {0};
    char(*numbuf)[32] = NULL;
    rc_cesql_program_t *prog = NULL;
    char *scratch = NULL;
    if (event_path != NULL) {
        size_t len = 0;
        text = read_all(event_path, &len);
        if (text == NULL) {
            fprintf(stderr, "ringcast cesql: cannot read event %s: %s\n", event_path,
                    strerror(errno));
            goto out;
        }
        json = cJSON_ParseWithLength(text, len);
        if (json == NULL) {
            fprintf(stderr, "ringcast cesql: event %s is not valid JSON (near byte %ld)\n",
                    event_path, (long)(cJSON_GetErrorPtr() - text));
            goto out;
        }
        numbuf = calloc((size_t)cJSON_GetArraySize(json) + 1, sizeof(*numbuf));
        const char *msg = numbuf == NULL ? "out of memory" : load_event(json, &ev, numbuf);
        if (msg != NULL) {
            fprintf(stderr, "ringcast cesql: event %s: %s\n", event_path, msg);
            goto out;
        }
    }

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
    free(ev.a);
    free(numbuf);
    cJSON_Delete(json);
    free(text);
    return rc;
}
