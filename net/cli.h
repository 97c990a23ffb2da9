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

/* One entry per sub-command, in the order `ringcast --help` lists them; each line ends with a
 * comma. Sub-commands are declared here and defined in net/cmd_<name>.c. */
#define RC_CLI_COMMANDS                                                                            \
    {"serve", "run the broker (ingress, admin, rings)", rc_cmd_serve},                         \
    {"send", "post one CloudEvent to a URL and print the status", rc_cmd_send},

int rc_cmd_serve(int argc, char **argv);
int rc_cmd_send(int argc, char **argv);

#endif
