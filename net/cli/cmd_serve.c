/* `ringcast serve`: runs the broker. Options override the config file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "net/cli/cli.h"
#include "net/cli/options.h"
#include "net/http/http_url.h"
#include "net/serve.h"

int rc_cmd_serve(int argc, char **argv)
{
    const char *config = NULL, *listen = NULL, *admin = NULL, *level = NULL, *prefix = NULL;
    uint64_t loops = 0;
    const rc_cli_opt_t opts[] = {
        RC_CLI_OPT_STRING("config", &config, "FILE",
                          "the broker's configuration (docs/config.md); options override it"),
        RC_CLI_OPT_STRING("listen", &listen, "ADDR:PORT",
                          "ingress address (default 127.0.0.1:8080)"),
        RC_CLI_OPT_STRING("admin", &admin, "ADDR:PORT", "admin address (default 127.0.0.1:8081)"),
        RC_CLI_OPT_UINT("loops", &loops, "N", 1, 64, "ingress event loops (threads)"),
        RC_CLI_OPT_STRING("log-level", &level, "error|warn|info|debug",
                          "what the log shows (default info)"),
        RC_CLI_OPT_STRING(
            "ring-prefix", &prefix, "PREFIX",
            "names the rings' shm objects PREFIX.NAMESPACE.BROKER (default ringcast)"),
        RC_CLI_OPT_END,
    };
    const rc_cli_spec_t spec = {
        .command = "serve",
        .synopsis = "serve [--config FILE] [--listen ADDR:PORT] [--admin ADDR:PORT]\n"
                    "                      [--loops N] [--log-level error|warn|info|debug]\n"
                    "                      [--ring-prefix PREFIX]",
        .about = "Runs the broker: POST CloudEvents to http://LISTEN/{namespace}/{broker}.\n"
                 "Without --config: broker default/default, in-memory ring, ingress\n"
                 "127.0.0.1:8080, admin 127.0.0.1:8081 (GET /healthz, /readyz, /metrics).\n"
                 "Port 0 picks a free port; the chosen ports are printed on stdout as\n"
                 "'listening ingress=HOST:PORT admin=HOST:PORT'. SIGTERM or SIGINT stops\n"
                 "gracefully. See docs/config.md and docs/ingress.md.\n",
        .epilogue =
            "Exit codes: 0 stopped cleanly, 1 runtime failure (cannot listen, ring error),\n"
            "2 bad usage or invalid config file (the message names file and line; a\n"
            "  subscriber host that does not resolve within 5 s is invalid too).\n",
        .opts = opts,
    };
    int code = rc__cli_parse(&spec, argc, argv);
    if (code != RC_CLI_GO_ON)
        return code;

    rc_config_t cfg;
    char err[RC_CONFIG_ERR_MAX];
    int rc =
        config ? rc_config_load_file(&cfg, config, err, sizeof(err)) : rc_config_init_default(&cfg);
    if (rc != 0) {
        fprintf(stderr, "ringcast serve: %s\n", config ? err : "out of memory");
        return 2;
    }
    code = 2;
    /* A subscriber whose host does not resolve would fail every delivery while serve looks
     * healthy: refused here, like any other error of the file (a reload checks the same). */
    if (rc_http_url_check_hosts(&cfg, RC_HTTP_RESOLVE_TIMEOUT_MS, err, sizeof(err)) != 0) {
        fprintf(stderr, "ringcast serve: %s\n", err);
        goto out;
    }
    if (listen != NULL && rc_config_parse_addr(listen, cfg.listen_host, sizeof(cfg.listen_host),
                                               &cfg.listen_port) != 0) {
        fprintf(stderr, "ringcast serve: --listen must be IP:PORT, not '%s'\n", listen);
        goto out;
    }
    if (admin != NULL &&
        rc_config_parse_addr(admin, cfg.admin_host, sizeof(cfg.admin_host), &cfg.admin_port) != 0) {
        fprintf(stderr, "ringcast serve: --admin must be IP:PORT, not '%s'\n", admin);
        goto out;
    }
    if (loops != 0)
        cfg.ingress_loops = (uint32_t)loops;
    if (prefix != NULL) {
        if (!rc_config_valid_ring_prefix(prefix)) {
            fprintf(stderr,
                    "ringcast serve: --ring-prefix must be 1-%d characters of "
                    "[A-Za-z0-9_-], not '%s'\n",
                    RC_CONFIG_RING_PREFIX_MAX, prefix);
            goto out;
        }
        strcpy(cfg.ring_prefix, prefix);
    }
    rc_log_level_t lv;
    if (rc_log_parse_level(level ? level : cfg.log_level, &lv) != 0) {
        fprintf(stderr, "ringcast serve: --log-level must be error, warn, info or debug\n");
        goto out;
    }
    rc_log_set_level(lv);
    code = rc_serve_run(&cfg, stdout) == 0 ? 0 : 1;
out:
    rc_config_close(&cfg);
    return code;
}
