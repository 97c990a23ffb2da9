/* ringcast: the command-line entry point. Each sub-command lives in its own file; this one only
 * dispatches and prints usage. Exit codes: 0 success, 1 runtime failure, 2 bad usage. */
#include <stdio.h>
#include <string.h>

#include "net/cli/cli.h"

static const rc_cli_command_t commands[] = {
#define RC_CLI_ENTRY(name, summary) {#name, summary, rc_cmd_##name},
    RC_CLI_COMMANDS(RC_CLI_ENTRY){NULL, NULL, NULL},
#undef RC_CLI_ENTRY
};

static void usage(FILE *out)
{
    fprintf(out, "usage: ringcast <command> [options]\n\n"
                 "A single-node, high-throughput CloudEvents broker.\n\ncommands:\n");
    for (size_t i = 0; commands[i].name != NULL; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'ringcast <command> --help' for a command's options.\n"
                 "Exit codes: 0 success, 1 failure, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("ringcast %s\n", RC_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; commands[i].name != NULL; i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "ringcast: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
