/* The commands' option parser. A command describes its options in a table (long name, optional
 * short name, kind, where the value goes, help text) and its operands in a spec; one call parses
 * argv against it, prints the errors, and answers --help with text made from the same table, so
 * what a command accepts and what its help says cannot drift apart.
 *
 * What it accepts: `--name VALUE` and `--name=VALUE` (exact names, no abbreviations), `-x VALUE`
 * for a short name, `--` to end the options, and options and operands in any order. A value is
 * the next argument whatever it looks like (`--type --x` sets the type to "--x"). `-h`/`--help`
 * anywhere before `--` prints the help on stdout. */
#ifndef RC_NET_CLI_OPTIONS_H
#define RC_NET_CLI_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* What an option's value is and where it goes (the `value` pointer's type). */
typedef enum {
    RC_CLI_FLAG,     /* no value; `int`, counts the occurrences */
    RC_CLI_STRING,   /* `const char *`, borrowed from argv */
    RC_CLI_UINT,     /* `uint64_t`, decimal digits only, in [min, max] */
    RC_CLI_DURATION, /* `uint64_t` milliseconds ("250ms", "5s", "1m", bare ms), in [min, max] */
    RC_CLI_CHOICE,   /* `int`, the index of the value in `choices` ("binary|structured") */
    RC_CLI_LIST,     /* `rc_cli_list_t`, one item per occurrence (a repeatable option) */
} rc_cli_kind_t;

/* The items of a repeatable option; the caller provides the storage. */
typedef struct {
    const char **items; /* `cap` slots; items borrow argv */
    size_t cap;
    size_t count;
} rc_cli_list_t;

/* One row of a command's option table; a row with `name` NULL ends the table. */
typedef struct {
    const char *name;    /* long name without the dashes */
    char short_name;     /* 0: none */
    rc_cli_kind_t kind;  /* */
    void *value;         /* where the value goes, typed by `kind` */
    const char *metavar; /* the value's name in the help (FILE, N); CHOICE shows its choices */
    const char *choices; /* RC_CLI_CHOICE: the accepted words separated by '|' */
    uint64_t min, max;   /* RC_CLI_UINT, RC_CLI_DURATION: the accepted range */
    const char *help;    /* one paragraph; the help text wraps it */
} rc_cli_opt_t;

/* Table rows, one macro per kind. Each checks that `p` points at the type its kind writes (a
 * mismatch is a compiler warning: "pointer type mismatch"). Short names use the struct itself. */
#define RC_CLI__PTR(p, T) ((void *)(1 ? (p) : (T *)0))
#define RC_CLI_OPT_FLAG(name_, p, help_)                                                           \
    {                                                                                              \
        .name = (name_), .kind = RC_CLI_FLAG, .value = RC_CLI__PTR(p, int), .help = (help_)        \
    }
#define RC_CLI_OPT_STRING(name_, p, metavar_, help_)                                               \
    {                                                                                              \
        .name = (name_), .kind = RC_CLI_STRING, .value = RC_CLI__PTR(p, const char *),             \
        .metavar = (metavar_), .help = (help_)                                                     \
    }
#define RC_CLI_OPT_UINT(name_, p, metavar_, min_, max_, help_)                                     \
    {                                                                                              \
        .name = (name_), .kind = RC_CLI_UINT, .value = RC_CLI__PTR(p, uint64_t),                   \
        .metavar = (metavar_), .min = (min_), .max = (max_), .help = (help_)                       \
    }
#define RC_CLI_OPT_DURATION(name_, p, metavar_, min_, max_, help_)                                 \
    {                                                                                              \
        .name = (name_), .kind = RC_CLI_DURATION, .value = RC_CLI__PTR(p, uint64_t),               \
        .metavar = (metavar_), .min = (min_), .max = (max_), .help = (help_)                       \
    }
#define RC_CLI_OPT_CHOICE(name_, p, choices_, help_)                                               \
    {                                                                                              \
        .name = (name_), .kind = RC_CLI_CHOICE, .value = RC_CLI__PTR(p, int),                      \
        .choices = (choices_), .help = (help_)                                                     \
    }
#define RC_CLI_OPT_LIST(name_, p, metavar_, help_)                                                 \
    {                                                                                              \
        .name = (name_), .kind = RC_CLI_LIST, .value = RC_CLI__PTR(p, rc_cli_list_t),              \
        .metavar = (metavar_), .help = (help_)                                                     \
    }
#define RC_CLI_OPT_END                                                                             \
    {                                                                                              \
        .name = NULL                                                                               \
    }

/* A command's whole command line. */
typedef struct {
    const char *command;      /* "send": errors read "ringcast send: ..." */
    const char *synopsis;     /* after "usage: ringcast ", possibly several lines */
    const char *about;        /* prose between the synopsis and the options, or NULL */
    const char *epilogue;     /* after the options (exit codes), or NULL */
    const rc_cli_opt_t *opts; /* ended by a row with `name` NULL */
    const char *operand_name; /* "URL": the operand in messages; NULL when there is none */
    const char **operand;     /* receives the operand (at most one), or stays NULL */
    int dash_operands;        /* an argument such as "-5 * 2" is an operand, not an option */
} rc_cli_spec_t;

/* rc__cli_parse's answer when the command should go on. */
#define RC_CLI_GO_ON (-1)

/** Parses `argv[1..argc)` against `spec`, storing each value through its row's pointer (values
 *  not given keep what the caller set: the defaults). Prints the help (--help, on stdout) or
 *  one error naming the option (on stderr: unknown option, missing value, not a number, out of
 *  range, not a choice; an unknown option adds the help). Returns RC_CLI_GO_ON, or the exit
 *  code the command returns at once: 0 after --help, 2 after a usage error. Main thread. */
int rc__cli_parse(const rc_cli_spec_t *spec, int argc, char **argv);

/** Prints the help made from `spec` (synopsis, about, option table, epilogue) on `out`. */
void rc__cli_help(const rc_cli_spec_t *spec, FILE *out);

/** Prints "ringcast COMMAND: MESSAGE" on stderr (the message is a printf format) and returns 2,
 *  the exit code for bad usage: for the checks a command makes after parsing. */
int rc__cli_fail(const rc_cli_spec_t *spec, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Takes the first operand that is not an option's value out of argv (argv[0] is the command):
 * RESOURCE of `pause|delete RESOURCE NAME`, for commands whose every option takes a value.
 * NULL when there is none. */
const char *rc__cli_take_operand(int *argc, char **argv);

/* Whether `s` is a Kubernetes name (a DNS label: lower-case letters, digits and '-', not at
 * either end, at most RC_CONFIG_NAME_MAX characters). */
int rc__cli_dns_label(const char *s);

#endif
