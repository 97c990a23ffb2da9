/* The ringcast command table. A sub-command is a function `int rc_cmd_<name>(int argc, char
 * **argv)` with argv[0] set to the command's name, returning the process exit code (0 ok,
 * 1 failure, 2 bad usage), defined in net/cli/cmd_<name>.c. Every command parses its command
 * line with net/cli/options.h and so answers --help. */
#ifndef RC_NET_CLI_H
#define RC_NET_CLI_H

#define RC_VERSION_STRING "0.1.0"

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} rc_cli_command_t;

/* X(name, summary): one line per sub-command, in the order `ringcast --help` lists them. Every
 * line ends with a backslash; the list ends with the comment line (so that lines added on two
 * branches merge as a union, see .gitattributes). */
#define RC_CLI_COMMANDS(X)                                                                         \
    X(serve, "run the broker (ingress, admin, rings)")                                             \
    X(send, "post one CloudEvent to a URL and print the status")                                   \
    X(tail, "print the events of a broker's ring (lossy reader)")                                  \
    X(cesql, "evaluate a CloudEvents SQL expression against an event")                             \
    X(sink, "an HTTP CloudEvents consumer that logs what it receives (demos, tests)")              \
    X(get, "list a running broker's brokers, triggers, subscriptions, rings or groups")       \
    X(describe, "describe one broker, trigger or Dapr subscription of a running broker")           \
    X(rings, "list the brokers' rings (owner, size, readers, fill) or remove a stale one")         \
    X(apply, "create or change a running broker's triggers and other objects (admin API)")        \
    X(delete, "remove objects `apply` added to a running broker (admin API)")                      \
    X(pause, "pause a running broker's trigger: its events wait in the ring (admin API)")         \
    X(resume, "resume a paused trigger where it stopped (admin API)")                              \
    X(replay, "send one of a trigger's recent dead letters to it again (admin API)")               \
    /* end of RC_CLI_COMMANDS */

#define RC_CLI_DECLARE(name, summary) int rc_cmd_##name(int argc, char **argv);
RC_CLI_COMMANDS(RC_CLI_DECLARE)
#undef RC_CLI_DECLARE

#endif
