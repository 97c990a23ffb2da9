/* `ringcast pause trigger NAME` and `ringcast resume trigger NAME`: stop a trigger's deliveries
 * without losing its events, and start them again where they stopped, through the admin API
 * (POST /apis/ringcast.dev/v1alpha1/namespaces/NS/triggers/NAME/pause|resume, net/admin.c;
 * a Dapr subscription's under .../subscriptions/NAME/, net/admin_events.c). The broker sets a
 * flag in the trigger's shared stats slot that its worker reads before each send: no reload,
 * in effect within one turn of the worker's loop. `ringcast replay trigger NAME --id ID` asks
 * the same API to send one of the trigger's recent dead letters to it again (.../replay). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/config.h"
#include "net/cli/admin_client.h"
#include "net/cli/cli.h"
#include "net/cli/options.h"

typedef struct {
    const char *ns, *admin, *token, *name, *id;
    uint64_t timeout_s;
    int sub; /* a Dapr subscription, not a trigger */
} pause_opts_t;

/* Prints "trigger.eventing.knative.dev/NAME paused" or the broker's refusal. Returns the exit
 * code. */
static int report(const char *cmd, const pause_opts_t *o, int status, const char *resp)
{
    cJSON *j = cJSON_Parse(resp);
    const cJSON *msg = cJSON_GetObjectItem(j, "message");
    if (!cJSON_IsString(msg))
        msg = cJSON_GetObjectItem(j, "error"); /* the server's own refusals */
    int code = 0;
    if (strcmp(cmd, "replay") == 0 && status == 202) {
        printf("trigger.eventing.knative.dev/%s: event %s queued for replay to it alone\n", o->name,
               o->id);
    } else if (status != 200) {
        if (cJSON_IsString(msg))
            fprintf(stderr, "ringcast %s: %s (HTTP %d)\n", cmd, msg->valuestring, status);
        else
            fprintf(stderr, "ringcast %s: %s answered %d: %.300s\n", cmd, o->admin, status, resp);
        code = 1;
    } else {
        const cJSON *st = cJSON_GetObjectItem(j, "status");
        int paused = cJSON_IsTrue(cJSON_GetObjectItem(st, "paused"));
        const cJSON *lag = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "stats"), "lagEvents");
        printf("%s/%s %s (lag %.0f events)\n",
               o->sub ? "subscription.dapr.io" : "trigger.eventing.knative.dev", o->name,
               paused ? "paused" : "resumed", cJSON_IsNumber(lag) ? lag->valuedouble : 0.0);
    }
    cJSON_Delete(j);
    return code;
}

static int run(const char *cmd, int argc, char **argv)
{
    pause_opts_t o = {.timeout_s = 10};
    rc_cli_opt_t opts[] = {
        {.name = "namespace",
         .short_name = 'n',
         .kind = RC_CLI_STRING,
         .value = &o.ns,
         .metavar = "NS",
         .help = "the trigger's namespace (default: default)"},
        RC_CLI_OPT_STRING(
            "admin", &o.admin, "HOST:PORT",
            "the broker's admin address (default: $RINGCAST_ADMIN, else " DEFAULT_ADMIN ")"),
        RC_CLI_OPT_STRING("token", &o.token, "TOKEN",
                          "the bearer token when the broker sets spec.admin.token (default: "
                          "$RINGCAST_ADMIN_TOKEN)"),
        RC_CLI_OPT_UINT("timeout", &o.timeout_s, "SECONDS", 1, 3600,
                        "for connecting and reading the answer (default 10)"),
        RC_CLI_OPT_STRING("id", &o.id, "ID",
                          "replay: the id of the dead-lettered event (status.deadLetters, "
                          "`ringcast describe trigger`)"),
        RC_CLI_OPT_END,
    };
    int pause = strcmp(cmd, "pause") == 0, replay = strcmp(cmd, "replay") == 0;
    if (!replay)
        opts[4] = (rc_cli_opt_t)RC_CLI_OPT_END; /* --id is replay's */
    const rc_cli_spec_t spec = {
        .command = cmd,
        .synopsis = replay  ? "replay trigger NAME --id ID [-n NS] [--admin HOST:PORT]\n"
                              "                       [--token TOKEN] [--timeout SECONDS]"
                    : pause ? "pause trigger|subscription NAME [-n NS] [--admin HOST:PORT]\n"
                              "                      [--token TOKEN] [--timeout SECONDS]"
                            : "resume trigger|subscription NAME [-n NS] [--admin HOST:PORT]\n"
                              "                       [--token TOKEN] [--timeout SECONDS]",
        .about =
            replay ? "Sends one of a trigger's recent dead letters (the latest 8 its dead-letter\n"
                     "sink accepted: status.deadLetters, `ringcast describe trigger`) to that\n"
                     "trigger's subscriber again, with its retries and dead-letter sink; no other\n"
                     "trigger gets it again. The event is read back from the broker's ring: once\n"
                     "producers have overwritten it, the broker answers 404. Writes are accepted\n"
                     "from loopback only, unless the broker sets spec.admin.token (then --token).\n"
                     "See docs/dashboard.md, \"Replay\".\n"
            : pause
                ? "Pauses a trigger of a running broker: its worker sends nothing new (attempts\n"
                  "under way finish), its events wait in the ring and its lag grows; nothing\n"
                  "is lost, except what its lag limit gives up as for a hung subscriber. Its\n"
                  "Ready condition says Paused. The pause lasts until `ringcast resume`, over\n"
                  "reloads and applies, but not over a restart of the broker. Writes are\n"
                  "accepted from loopback only, unless the broker sets spec.admin.token\n"
                  "(then --token). A Dapr subscription (`subscription NAME`: every app's\n"
                  "pair of it, or one GROUP:NAME as `ringcast get subscriptions` lists it)\n"
                  "pauses the same way. See docs/operations.md, \"Pausing a trigger\".\n"
                : "Resumes a paused trigger: its worker sends again from where it stopped\n"
                  "(the oldest event it had not delivered), at its usual window and rate.\n"
                  "Resuming a trigger that is not paused does nothing. See\n"
                  "docs/operations.md, \"Pausing a trigger\".\n",
        .epilogue =
            replay
                ? "Exit codes: 0 queued, 1 the broker refused (its message printed: 401/403 the\n"
                  "  token, 404 no such trigger or dead letter, or the ring no longer holds the\n"
                  "  event; 409 a replay under way) or its admin API is not reachable, 2 bad\n"
                  "  usage.\n"
                : "Exit codes: 0 done, 1 the broker refused (its message printed: 401/403 the\n"
                  "  token, 404 no such trigger) or its admin API is not reachable, 2 bad usage.\n",
        .opts = opts,
        .operand_name = "NAME",
        .operand = &o.name,
    };
    const char *resource = rc__cli_take_operand(&argc, argv);
    int code = rc__cli_parse(&spec, argc, argv);
    if (code != RC_CLI_GO_ON)
        return code;
    if (resource == NULL || o.name == NULL)
        return rc__cli_fail(&spec, "missing RESOURCE NAME (e.g. %s trigger audit)", cmd);
    o.sub = !replay &&
            (strcmp(resource, "subscription") == 0 || strcmp(resource, "subscriptions") == 0);
    if (!o.sub && strcmp(resource, "trigger") != 0 && strcmp(resource, "triggers") != 0)
        return rc__cli_fail(&spec,
                            replay ? "unknown resource '%s' (only a trigger's dead letter "
                                     "can be replayed)"
                                   : "unknown resource '%s' (a trigger or a Dapr "
                                     "subscription can be %s)",
                            resource, pause ? "paused" : "resumed");
    if (replay && (o.id == NULL || o.id[0] == '\0' || strlen(o.id) > 1000))
        return rc__cli_fail(&spec, "--id ID names the dead-lettered event (1-1000 bytes)");
    const char *ns = o.ns != NULL ? o.ns : "default";
    /* A subscription's object name may be GROUP:NAME (one app's pair of it): the broker
     * checks GROUP, the app's consumer group. */
    const char *colon = o.sub ? strchr(o.name, ':') : NULL;
    int pair = colon != NULL && colon > o.name && strlen(o.name) <= RC_CONFIG_NAME_MAX &&
               strchr(colon + 1, ':') == NULL && rc__cli_dns_label(colon + 1);
    if ((!pair && !rc__cli_dns_label(o.name)) || !rc__cli_dns_label(ns))
        return rc__cli_fail(&spec, "'%s' is not a name (lowercase letters, digits and '-')",
                            rc__cli_dns_label(o.name) ? ns : o.name);
    if (o.admin == NULL)
        o.admin = getenv("RINGCAST_ADMIN");
    if (o.admin == NULL || o.admin[0] == '\0')
        o.admin = DEFAULT_ADMIN;
    if (o.token == NULL)
        o.token = getenv("RINGCAST_ADMIN_TOKEN");
    if (o.token != NULL && o.token[0] == '\0')
        o.token = NULL;
    char path[256], err[1024];
    snprintf(path, sizeof(path), "/apis/ringcast.dev/v1alpha1/namespaces/%s/%s/%s/%s", ns,
             o.sub ? "subscriptions" : "triggers", o.name, cmd);
    int status = 0;
    char *resp = NULL, *body = NULL;
    if (replay) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "id", o.id);
        body = cJSON_PrintUnformatted(b);
        cJSON_Delete(b);
        if (body == NULL) {
            fprintf(stderr, "ringcast %s: out of memory\n", cmd);
            return 1;
        }
    }
    int rc = rc__cli_admin_call(o.admin, "POST", path, o.token, body, body ? strlen(body) : 0,
                                (int)o.timeout_s, &status, &resp, err, sizeof(err));
    free(body);
    if (rc != 0) {
        fprintf(stderr, "ringcast %s: %s\n", cmd, err);
        return 1;
    }
    code = report(cmd, &o, status, resp);
    free(resp);
    return code;
}

int rc_cmd_pause(int argc, char **argv)
{
    return run("pause", argc, argv);
}

int rc_cmd_resume(int argc, char **argv)
{
    return run("resume", argc, argv);
}

int rc_cmd_replay(int argc, char **argv)
{
    return run("replay", argc, argv);
}
