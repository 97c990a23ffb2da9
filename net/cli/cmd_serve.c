/* `ringcast serve`: runs the broker. Options override the config file. `serve --check` makes
 * every check a start makes before it opens anything (the file, the options over it, subscriber
 * host names) and stops there: no ring, no listener, no worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "net/cli/cli.h"
#include "net/cli/options.h"
#include "net/http/http_url.h"
#include "net/serve.h"

/* The loader's notes for --check, in file order: "FILE:LINE: warning: ...", infos as they are
 * (a start logs them instead: rc_config_log_notes). */
static void print_notes(const rc_config_t *cfg)
{
    for (size_t i = 0; i < cfg->note_count; i++) {
        const rc_config_note_t *n = &cfg->notes[i];
        if (n->level == RC_CONFIG_NOTE_WARN)
            fprintf(stderr, "%.*swarning: %s\n", (int)n->msg, n->text, n->text + n->msg);
        else
            fprintf(stderr, "%s\n", n->text);
    }
}

/* "FILE: valid: 1 broker, 2 triggers, 0 Dapr subscriptions (1 warning, 3 documents skipped)":
 * Dapr's internal triggers are counted as subscriptions, not triggers, and only declarative
 * subscriptions are known before the apps are asked. */
static void print_summary(const rc_config_t *cfg, const char *path)
{
    size_t triggers = 0, warnings = 0;
    for (size_t i = 0; i < cfg->trigger_count; i++)
        triggers += cfg->triggers[i].dapr == NULL;
    for (size_t i = 0; i < cfg->note_count; i++)
        warnings += cfg->notes[i].level == RC_CONFIG_NOTE_WARN;
    size_t skipped = 0; /* the other infos say an applied document replaces one of the file */
    for (size_t i = 0; i < cfg->note_count; i++)
        skipped += cfg->notes[i].level == RC_CONFIG_NOTE_INFO &&
                   strncmp(cfg->notes[i].text + cfg->notes[i].msg, "skipping ", 9) == 0;
    printf("%s: valid: %zu broker%s, %zu trigger%s, %zu Dapr subscription%s", path,
           cfg->broker_count, cfg->broker_count == 1 ? "" : "s", triggers, triggers == 1 ? "" : "s",
           cfg->dapr_sub_count, cfg->dapr_sub_count == 1 ? "" : "s");
    if (warnings + skipped > 0)
        printf(" (%zu warning%s, %zu document%s skipped)", warnings, warnings == 1 ? "" : "s",
               skipped, skipped == 1 ? "" : "s");
    printf("\n");
}

typedef struct {
    const char *config, *listen, *admin, *level, *format, *prefix;
    uint64_t loops;
    int check;
} serve_opts_t;

/* What a start checks before opening anything, with the options applied over the file. Returns
 * 0, or 2 once the problem is printed. */
static int prepare(rc_config_t *cfg, const serve_opts_t *o, rc_log_level_t *lv,
                   rc_log_format_t *lf)
{
    char err[RC_CONFIG_ERR_MAX];
    /* A subscriber whose host does not resolve would fail every delivery while serve looks
     * healthy: refused here, like any other error of the file (a reload checks the same). */
    if (rc_http_url_check_hosts(cfg, RC_HTTP_RESOLVE_TIMEOUT_MS, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s%s\n", o->check ? "" : "ringcast serve: ", err);
        return 2;
    }
    if (o->listen != NULL &&
        rc_config_parse_addr(o->listen, cfg->listen_host, sizeof(cfg->listen_host),
                             &cfg->listen_port) != 0) {
        fprintf(stderr, "ringcast serve: --listen must be IP:PORT, not '%s'\n", o->listen);
        return 2;
    }
    if (o->admin != NULL && rc_config_parse_addr(o->admin, cfg->admin_host, sizeof(cfg->admin_host),
                                                 &cfg->admin_port) != 0) {
        fprintf(stderr, "ringcast serve: --admin must be IP:PORT, not '%s'\n", o->admin);
        return 2;
    }
    if (o->loops != 0)
        cfg->ingress_loops = (uint32_t)o->loops;
    if (o->prefix != NULL) {
        if (!rc_config_valid_ring_prefix(o->prefix)) {
            fprintf(stderr,
                    "ringcast serve: --ring-prefix must be 1-%d characters of "
                    "[A-Za-z0-9_-], not '%s'\n",
                    RC_CONFIG_RING_PREFIX_MAX, o->prefix);
            return 2;
        }
        strcpy(cfg->ring_prefix, o->prefix);
    }
    if (rc_log_parse_level(o->level ? o->level : cfg->log_level, lv) != 0) {
        fprintf(stderr, "ringcast serve: --log-level must be error, warn, info or debug\n");
        return 2;
    }
    if (rc_log_parse_format(o->format ? o->format : cfg->log_format, lf) != 0) {
        fprintf(stderr, "ringcast serve: --log-format must be text or json, not '%s'\n",
                o->format);
        return 2;
    }
    return 0;
}

int rc_cmd_serve(int argc, char **argv)
{
    serve_opts_t o = {0};
    const rc_cli_opt_t opts[] = {
        RC_CLI_OPT_STRING("config", &o.config, "FILE",
                          "the broker's configuration (docs/config.md); options override it"),
        RC_CLI_OPT_FLAG("check", &o.check,
                        "check the config file (and the state file of `ringcast apply`) and the "
                        "options as a start would, print each "
                        "problem as FILE:LINE: message, and exit (0 valid, 2 not); starts "
                        "nothing"),
        RC_CLI_OPT_STRING("listen", &o.listen, "ADDR:PORT",
                          "ingress address (default 127.0.0.1:8080)"),
        RC_CLI_OPT_STRING("admin", &o.admin, "ADDR:PORT", "admin address (default 127.0.0.1:8081)"),
        RC_CLI_OPT_UINT("loops", &o.loops, "N", 1, 64, "ingress event loops (threads)"),
        RC_CLI_OPT_STRING("log-level", &o.level, "error|warn|info|debug",
                          "what the log shows (default info)"),
        RC_CLI_OPT_STRING("log-format", &o.format, "text|json",
                          "log lines as text or as one JSON object each (default text; "
                          "docs/operations.md, Logs)"),
        RC_CLI_OPT_STRING(
            "ring-prefix", &o.prefix, "PREFIX",
            "names the rings' shm objects PREFIX.NAMESPACE.BROKER (default ringcast)"),
        RC_CLI_OPT_END,
    };
    const rc_cli_spec_t spec = {
        .command = "serve",
        .synopsis = "serve [--config FILE] [--check] [--listen ADDR:PORT] [--admin ADDR:PORT]\n"
                    "                      [--loops N] [--log-level error|warn|info|debug]\n"
                    "                      [--log-format text|json] [--ring-prefix PREFIX]",
        .about = "Runs the broker: POST CloudEvents to http://LISTEN/{namespace}/{broker}.\n"
                 "Without --config: broker default/default, its ring a /dev/shm object that\n"
                 "outlives the process (storage: file in the config keeps it on disk), ingress\n"
                 "127.0.0.1:8080, admin 127.0.0.1:8081 (GET /healthz, /readyz, /metrics).\n"
                 "Port 0 picks a free port; the chosen ports are printed on stdout as\n"
                 "'listening ingress=HOST:PORT admin=HOST:PORT'. SIGTERM or SIGINT stops\n"
                 "gracefully; SIGHUP reloads. With --config, what `ringcast apply` added is\n"
                 "loaded after the file, from its state file (NAME.state.yaml beside it, or\n"
                 "spec.admin.stateFile; docs/operations.md, \"Runtime changes\"). See\n"
                 "docs/config.md and docs/ingress.md.\n",
        .epilogue =
            "Exit codes: 0 stopped cleanly (--check: the file is valid; one summary line\n"
            "  on stdout, warnings on stderr), 1 runtime failure (cannot listen, ring\n"
            "  error), 2 bad usage or invalid config file (the message names file and line;\n"
            "  a subscriber host that does not resolve within 5 s is invalid too).\n",
        .opts = opts,
    };
    int code = rc__cli_parse(&spec, argc, argv);
    if (code != RC_CLI_GO_ON)
        return code;
    if (o.check && o.config == NULL) {
        fprintf(stderr, "ringcast serve: --check needs --config FILE\n");
        return 2;
    }

    rc_config_t cfg;
    char err[RC_CONFIG_ERR_MAX];
    int rc = o.config ? rc_config_load_with_state(&cfg, o.config, err, sizeof(err))
                      : rc_config_init_default(&cfg);
    if (rc != 0) {
        fprintf(stderr, "%s%s\n",
                o.check ? "" : "ringcast serve: ", o.config ? err : "out of memory");
        return 2;
    }
    rc_log_level_t lv;
    rc_log_format_t lf;
    code = prepare(&cfg, &o, &lv, &lf);
    if (code == 0 && o.check) {
        print_notes(&cfg);
        print_summary(&cfg, o.config);
    } else if (code == 0) {
        rc_log_set_level(lv);
        rc_log_set_format(lf);
        rc_config_log_notes(&cfg);
        code = rc_serve_run(&cfg, stdout) == 0 ? 0 : 1;
    }
    rc_config_close(&cfg);
    return code;
}
