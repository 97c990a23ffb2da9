/* The commands' option parser (net/cli/options.h). A hand-written loop rather than getopt_long:
 * getopt_long accepts abbreviations (`--ty`) and reads "-5 * 2" as short options, and the
 * commands accept neither; what remains is small enough to own. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "net/cli/options.h"

/* Help layout: option names in the first column, the help text wrapped after it. */
#define HELP_WIDTH  80
#define HELP_INDENT 24

int rc__cli_fail(const rc_cli_spec_t *spec, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "ringcast %s: ", spec->command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

/* Prints `text` from column `col` on, wrapped at HELP_WIDTH with continuation lines indented to
 * HELP_INDENT; a '\n' in the text starts a new line. */
static void put_wrapped(FILE *out, const char *text, int col)
{
    const char *p = text;
    while (*p != '\0') {
        if (*p == ' ' || *p == '\n') {
            if (*p++ == '\n') {
                fprintf(out, "\n%*s", HELP_INDENT, "");
                col = HELP_INDENT;
            }
            continue;
        }
        int word = (int)strcspn(p, " \n");
        if (col > HELP_INDENT && col + 1 + word > HELP_WIDTH) {
            fprintf(out, "\n%*s", HELP_INDENT, "");
            col = HELP_INDENT;
        } else if (col > HELP_INDENT) {
            fputc(' ', out);
            col++;
        }
        fwrite(p, 1, (size_t)word, out);
        col += word;
        p += word;
    }
    fputc('\n', out);
}

static void put_option(FILE *out, const rc_cli_opt_t *o)
{
    int col = fprintf(out, "  ");
    if (o->short_name != 0)
        col += fprintf(out, "-%c, ", o->short_name);
    col += fprintf(out, "--%s", o->name);
    if (o->kind == RC_CLI_CHOICE)
        col += fprintf(out, " %s", o->choices);
    else if (o->kind != RC_CLI_FLAG)
        col += fprintf(out, " %s", o->metavar ? o->metavar : "VALUE");
    if (col >= HELP_INDENT - 1) {
        fputc('\n', out);
        col = 0;
    }
    fprintf(out, "%*s", HELP_INDENT - col, "");
    put_wrapped(out, o->help ? o->help : "", HELP_INDENT);
}

void rc__cli_help(const rc_cli_spec_t *spec, FILE *out)
{
    fprintf(out, "usage: ringcast %s\n\n", spec->synopsis);
    if (spec->about != NULL)
        fprintf(out, "%s\n", spec->about);
    fprintf(out, "options:\n");
    for (const rc_cli_opt_t *o = spec->opts; o->name != NULL; o++)
        put_option(out, o);
    put_option(out, &(rc_cli_opt_t){.name = "help", .short_name = 'h', .help = "this help"});
    if (spec->epilogue != NULL)
        fprintf(out, "\n%s", spec->epilogue);
}

/* Writes "a, b or c" for the choices "a|b|c" into the message. */
static void choices_text(const char *choices, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (const char *p = choices; *p != '\0' && n < cap;) {
        size_t len = strcspn(p, "|");
        const char *sep = p[len] == '\0' ? "" : strchr(p + len + 1, '|') ? ", " : " or ";
        n += (size_t)snprintf(buf + n, cap - n, "%.*s%s", (int)len, p, sep);
        p += len + (p[len] == '|');
    }
}

static int store_choice(const rc_cli_spec_t *spec, const rc_cli_opt_t *o, const char *v)
{
    int index = 0;
    size_t vlen = strlen(v);
    for (const char *p = o->choices; *p != '\0'; index++) {
        size_t len = strcspn(p, "|");
        if (len == vlen && memcmp(p, v, len) == 0) {
            *(int *)o->value = index;
            return 0;
        }
        p += len + (p[len] == '|');
    }
    char words[200];
    choices_text(o->choices, words, sizeof(words));
    return rc__cli_fail(spec, "--%s must be %s, not '%s'", o->name, words, v);
}

/* Digits only: a sign, blanks or a suffix are not quietly accepted (strtoull takes all three). */
static int parse_uint(const char *v, uint64_t *out)
{
    if (v[0] < '0' || v[0] > '9')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0')
        return -EINVAL;
    *out = x;
    return 0;
}

static int store_number(const rc_cli_spec_t *spec, const rc_cli_opt_t *o, const char *v)
{
    int duration = o->kind == RC_CLI_DURATION;
    const char *unit = duration ? " ms" : "";
    uint64_t x;
    int rc = duration ? rc_config_parse_duration_ms(v, &x) : parse_uint(v, &x);
    if (rc != 0 && duration)
        return rc__cli_fail(spec, "--%s: not a duration (250ms, 5s, 1m): '%s'", o->name, v);
    if (rc != 0)
        return rc__cli_fail(spec, "--%s: not a number: '%s'", o->name, v);
    if (x < o->min || x > o->max) {
        if (o->min == 1 && o->max == UINT64_MAX && !duration)
            return rc__cli_fail(spec, "--%s must be a positive integer, not '%s'", o->name, v);
        if (o->max == UINT64_MAX)
            return rc__cli_fail(spec, "--%s must be at least %llu%s, not '%s'", o->name,
                                (unsigned long long)o->min, unit, v);
        return rc__cli_fail(spec, "--%s must be %llu..%llu%s, not '%s'", o->name,
                            (unsigned long long)o->min, (unsigned long long)o->max, unit, v);
    }
    *(uint64_t *)o->value = x;
    return 0;
}

/* Stores the value `v` of option `o`. Returns 0 or 2 (the error printed). */
static int store(const rc_cli_spec_t *spec, const rc_cli_opt_t *o, const char *v)
{
    switch (o->kind) {
    case RC_CLI_STRING:
        *(const char **)o->value = v;
        return 0;
    case RC_CLI_UINT:
    case RC_CLI_DURATION:
        return store_number(spec, o, v);
    case RC_CLI_CHOICE:
        return store_choice(spec, o, v);
    case RC_CLI_LIST: {
        rc_cli_list_t *l = o->value;
        if (l->count == l->cap)
            return rc__cli_fail(spec, "--%s may be given at most %zu times", o->name, l->cap);
        l->items[l->count++] = v;
        return 0;
    }
    default:
        return rc__cli_fail(spec, "--%s takes no value", o->name);
    }
}

/* The row for argument `a` ("--name", "--name=value" or "-x"), with `*inline_value` set for the
 * "=value" form; NULL when no row matches. */
static const rc_cli_opt_t *find(const rc_cli_spec_t *spec, const char *a, const char **inline_value)
{
    *inline_value = NULL;
    if (a[1] != '-') {
        for (const rc_cli_opt_t *o = spec->opts; o->name != NULL; o++) {
            if (o->short_name != 0 && a[1] == o->short_name && a[2] == '\0')
                return o;
        }
        return NULL;
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    for (const rc_cli_opt_t *o = spec->opts; o->name != NULL; o++) {
        if (strlen(o->name) == len && memcmp(o->name, name, len) == 0) {
            *inline_value = eq ? eq + 1 : NULL;
            return o;
        }
    }
    return NULL;
}

static int take_operand(const rc_cli_spec_t *spec, const char *a)
{
    if (spec->operand == NULL) {
        rc__cli_fail(spec, "unexpected argument '%s'", a);
        rc__cli_help(spec, stderr);
        return 2;
    }
    if (*spec->operand != NULL)
        return rc__cli_fail(spec, "more than one %s ('%s')", spec->operand_name, a);
    *spec->operand = a;
    return 0;
}

int rc__cli_parse(const rc_cli_spec_t *spec, int argc, char **argv)
{
    int options_end = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int is_option = !options_end && a[0] == '-' && a[1] != '\0';
        if (is_option && strcmp(a, "--") == 0) {
            options_end = 1;
            continue;
        }
        if (is_option && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            rc__cli_help(spec, stdout);
            return 0;
        }
        const char *inline_value = NULL;
        const rc_cli_opt_t *o = is_option ? find(spec, a, &inline_value) : NULL;
        if (is_option && o == NULL && spec->dash_operands && a[1] != '-')
            is_option = 0; /* "-5 * 2" is an expression */
        if (!is_option) {
            if (take_operand(spec, a) != 0)
                return 2;
            continue;
        }
        if (o == NULL) {
            rc__cli_fail(spec, "unknown option '%s'", a);
            rc__cli_help(spec, stderr);
            return 2;
        }
        if (o->kind == RC_CLI_FLAG) {
            if (inline_value != NULL)
                return rc__cli_fail(spec, "--%s takes no value", o->name);
            (*(int *)o->value)++;
            continue;
        }
        if (inline_value == NULL && i + 1 >= argc)
            return rc__cli_fail(spec, "%s needs a value", a);
        if (store(spec, o, inline_value ? inline_value : argv[++i]) != 0)
            return 2;
    }
    return RC_CLI_GO_ON;
}

const char *rc__cli_take_operand(int *argc, char **argv)
{
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (a[0] == '-' && a[1] != '\0') {
            if (strchr(a, '=') == NULL && strcmp(a, "-h") != 0 && strcmp(a, "--help") != 0)
                i++; /* its value */
            continue;
        }
        memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i - 1) * sizeof(*argv));
        (*argc)--;
        return a;
    }
    return NULL;
}

int rc__cli_dns_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RC_CONFIG_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (; *s; s++) {
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-'))
            return 0;
    }
    return 1;
}
