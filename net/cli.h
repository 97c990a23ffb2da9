/* The ringcast command table. A sub-command is a function taking (argc, argv) with argv[0] set
 * to the command's name, returning the process exit code (0 ok, 1 failure, 2 bad usage). Every
 * command answers --help. */
#ifndef RC_NET_CLI_H
#define RC_NET_CLI_H

#define RC_VERSION_STRING "0.1.0"

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} rc_cli_command_t;

/** `ringcast cesql [--event FILE] EXPRESSION`: evaluates a CloudEvents SQL expression and prints
 *  {"result": ..., "error": ...} (net/cmd_cesql.c). */
int rc_cmd_cesql(int argc, char **argv);

/* One entry per sub-command, in the order `ringcast --help` lists them; each line ends with a
 * comma. Sub-commands are declared here and defined in net/cmd_<name>.c. */
#define RC_CLI_COMMANDS                                                                            \
    {"cesql", "evaluate a CloudEvents SQL expression against an event", rc_cmd_cesql},

#endif
