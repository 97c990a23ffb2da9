/* `ringcast serve`: runs the broker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "net/cli/cli.h"
#include "net/serve.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ringcast serve [--config FILE] [--listen ADDR:PORT] [--admin ADDR:PORT]\n"
            "                      [--loops N] [--log-level error|warn|info|debug]\n"
            "                      [--ring-prefix PREFIX]\n\n"
            "Runs the broker: POST CloudEvents to http://LISTEN/{namespace}/{broker}.\n"
            "Without --config: broker default/default, in-memory ring, ingress 127.0.0.1:8080,\n"
            "admin 127.0.0.1:8081 (GET /healthz, /readyz, /metrics). Options override the\n"
            "config file. --ring-prefix names the rings' shm objects PREFIX.NAMESPACE.BROKER\n"
            "(default ringcast). Port 0 picks a free port; the chosen ports are printed on\n"
            "stdout as 'listening ingress=HOST:PORT admin=HOST:PORT'. SIGTERM or SIGINT stops\n"
            "gracefully.\n"
            "See docs/config.md and docs/ingress.md.\n\n"
            "Exit codes: 0 stopped cleanly, 1 runtime failure (cannot listen, ring error),\n"
            "2 bad usage or invalid config file (the message names file and line).\n");
}

int rc_cmd_serve(int argc, char **argv)
{
    const char *config = NULL, *listen = NULL, *admin = NULL, *loops = NULL, *level = NULL;
    const char *prefix = NULL;
    for (int i = 1; i < argc; i++) {
        const char **slot = NULL;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--config") == 0) {
            slot = &config;
        } else if (strcmp(argv[i], "--listen") == 0) {
            slot = &listen;
        } else if (strcmp(argv[i], "--admin") == 0) {
            slot = &admin;
        } else if (strcmp(argv[i], "--loops") == 0) {
            slot = &loops;
        } else if (strcmp(argv[i], "--log-level") == 0) {
            slot = &level;
        } else if (strcmp(argv[i], "--ring-prefix") == 0) {
            slot = &prefix;
        } else {
            fprintf(stderr, "ringcast serve: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ringcast serve: %s needs a value\n", argv[i]);
            return 2;
        }
        *slot = argv[++i];
    }

    rc_config_t cfg;
    char err[RC_CONFIG_ERR_MAX];
    int rc =
        config ? rc_config_load_file(&cfg, config, err, sizeof(err)) : rc_config_init_default(&cfg);
    if (rc != 0) {
        fprintf(stderr, "ringcast serve: %s\n", config ? err : "out of memory");
        return 2;
    }
    int code = 2;
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
    if (loops != NULL) {
        char *end;
        long n = strtol(loops, &end, 10);
        if (*loops == '\0' || *end != '\0' || n < 1 || n > 64) {
            fprintf(stderr, "ringcast serve: --loops must be 1..64, not '%s'\n", loops);
            goto out;
        }
        cfg.ingress_loops = (uint32_t)n;
    }
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
