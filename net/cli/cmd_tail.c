/* `ringcast tail`: attaches to a broker's ring as a lossy reader (it never slows producers), or
 * with --group as a member of a consumer group (competing with the group's other members), and
 * prints its events, one structured-mode JSON object per line (or binary-mode headers + data). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec_http.h"
#include "core/codec_json.h"
#include "core/config.h"
#include "core/errors.h"
#include "core/record.h"
#include "net/cli/cli.h"
#include "net/storage/ring_name.h"
#include "shm/group.h"
#include "core/clock.h"
#include "shm/reader.h"
#include "shm/ring.h"

static volatile sig_atomic_t tail_stop;

static void on_signal(int sig)
{
    (void)sig;
    tail_stop = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ringcast tail NAMESPACE/BROKER [--from oldest|latest] [--count N]\n"
            "                     [--format json|binary] [--timeout DURATION]\n"
            "                     [--ring-prefix PREFIX] [--group NAME]\n\n"
            "Prints the events of a broker's ring as a lossy reader (never slows producers):\n"
            "one structured-mode JSON object per line (--format json, the default), or the\n"
            "binary-mode ce- headers, a blank line and the data (--format binary).\n"
            "--from oldest (default) starts at the oldest event the ring still holds, --from\n"
            "latest at the next one. Stops after --count N events, after --timeout DURATION\n"
            "(e.g. 2s, 500ms) without a new event, or on SIGINT/SIGTERM. Lost events (the reader\n"
            "was lapped) are reported on stderr. --ring-prefix must match the broker's\n"
            "spec.ring.namePrefix (default ringcast).\n\n"
            "--group NAME joins consumer group NAME (1-31 characters of [A-Za-z0-9._:-]) instead:\n"
            "each event goes to one member of the group (run several tails with the same NAME to\n"
            "share the work), nothing is lost, and the group holds producers back until its\n"
            "members have the events. --from picks where a new group starts. An event is\n"
            "acknowledged once printed; events of a tail killed before it printed them go to\n"
            "the other members. The group ends with its last member.\n\n"
            "Exit codes: 0 ok, 1 the ring cannot be opened or read, 2 bad usage.\n");
}

static int print_event(const rc_ring_view_t *v, int binary, char **buf, size_t *cap)
{
    rc_record_view_t rv;
    if (v->len % 8 != 0 || rc_record_decode(v->data, v->len, &rv) != 0) {
        fprintf(stderr, "ringcast tail: skipping a record at %llu that is not an event\n",
                (unsigned long long)v->pos);
        return 0;
    }
    rc_ce_ext_t ext[RC_CE_EXT_MAX];
    rc_event_t ev;
    if (rc_record_to_event(&rv, &ev, ext, RC_CE_EXT_MAX) != 0)
        return 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t need = 0;
        int rc = binary ? rc_ce_write_binary(&ev, 0, *buf, *cap, &need)
                        : rc_ce_write_structured(&ev, 0, *buf, *cap, &need);
        if (rc == 0) {
            if (binary) {
                for (size_t i = 0; i < need; i++) {
                    if ((*buf)[i] != '\r')
                        putchar((*buf)[i]);
                }
                putchar('\n');
                if (ev.data.ptr != NULL)
                    fwrite(ev.data.ptr, 1, ev.data.len, stdout);
                fputs("\n\n", stdout);
            } else {
                fwrite(*buf, 1, need, stdout);
                putchar('\n');
            }
            return 0;
        }
        if (rc != -ENOBUFS)
            return rc;
        char *nb = realloc(*buf, need);
        if (nb == NULL)
            return -ENOMEM;
        *buf = nb;
        *cap = need;
    }
    return -ENOBUFS;
}

int rc_cmd_tail(int argc, char **argv)
{
    const char *target = NULL, *from = "oldest", *format = "json", *prefix = "ringcast";
    const char *group = NULL;
    long long count = -1;
    uint64_t timeout_ms = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (target != NULL) {
                fprintf(stderr, "ringcast tail: more than one broker ('%s')\n", a);
                return 2;
            }
            target = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ringcast tail: %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--from") == 0) {
            from = v;
        } else if (strcmp(a, "--format") == 0) {
            format = v;
        } else if (strcmp(a, "--ring-prefix") == 0) {
            prefix = v;
        } else if (strcmp(a, "--group") == 0) {
            group = v;
        } else if (strcmp(a, "--count") == 0) {
            char *end;
            count = strtoll(v, &end, 10);
            if (*v == '\0' || *end != '\0' || count < 1) {
                fprintf(stderr, "ringcast tail: --count must be a positive integer\n");
                return 2;
            }
        } else if (strcmp(a, "--timeout") == 0) {
            if (rc_config_parse_duration_ms(v, &timeout_ms) != 0 || timeout_ms == 0) {
                fprintf(stderr, "ringcast tail: --timeout must be a duration such as 2s\n");
                return 2;
            }
        } else {
            fprintf(stderr, "ringcast tail: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    const char *slash = target ? strchr(target, '/') : NULL;
    if (target == NULL || slash == NULL || slash == target || slash[1] == '\0' ||
        strchr(slash + 1, '/') != NULL || slash - target > RC_CONFIG_NAME_MAX ||
        strlen(slash + 1) > RC_CONFIG_NAME_MAX) {
        fprintf(stderr, "ringcast tail: expected NAMESPACE/BROKER\n");
        usage(stderr);
        return 2;
    }
    if (strcmp(from, "oldest") != 0 && strcmp(from, "latest") != 0) {
        fprintf(stderr, "ringcast tail: --from must be oldest or latest, not '%s'\n", from);
        return 2;
    }
    int binary = strcmp(format, "binary") == 0;
    if (!binary && strcmp(format, "json") != 0) {
        fprintf(stderr, "ringcast tail: --format must be json or binary, not '%s'\n", format);
        return 2;
    }
    if (!rc_config_valid_ring_prefix(prefix)) {
        fprintf(stderr,
                "ringcast tail: --ring-prefix must be 1-%d characters of "
                "[A-Za-z0-9_-]\n",
                RC_CONFIG_RING_PREFIX_MAX);
        return 2;
    }
    if (group != NULL && (group[0] == '\0' || strlen(group) > RC_GROUP_NAME_MAX ||
                          group[strspn(group, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789._:-")] != '\0')) {
        fprintf(stderr, "ringcast tail: --group must be 1-%u characters of [A-Za-z0-9._:-]\n",
                RC_GROUP_NAME_MAX);
        return 2;
    }
    char ns[RC_CONFIG_NAME_MAX + 1], name[RC_CONFIG_NAME_MAX + 1], ring_name[RC_RING_NAME_MAX + 1];
    snprintf(ns, sizeof(ns), "%.*s", (int)(slash - target), target);
    snprintf(name, sizeof(name), "%s", slash + 1);
    rc_ring_name_for(prefix, ns, name, ring_name, sizeof(ring_name));

    rc_ring_t *ring = NULL;
    rc_reader_t *reader = NULL;
    rc_group_member_t *member = NULL;
    char err[256];
    int rc = rc_ring_open(ring_name, &ring, err, sizeof(err));
    if (rc != 0) {
        if (rc == -ENOENT)
            fprintf(stderr,
                    "ringcast tail: no ring for broker %s/%s (shm '%s'); is "
                    "'ringcast serve' running with ring prefix '%s'?\n",
                    ns, name, ring_name, prefix);
        else
            fprintf(stderr, "ringcast tail: %s\n", err);
        return 1;
    }
    rc_reader_start_t start = strcmp(from, "oldest") == 0 ? RC_START_OLDEST : RC_START_LATEST;
    if (group != NULL) {
        rc_group_opts_t go = {.start = start, .batch = 16};
        rc = rc_group_join(ring, group, &go, &member);
        if (rc != 0) {
            fprintf(stderr, "ringcast tail: cannot join group '%s' on ring '%s': %s\n", group,
                    ring_name, rc_strerror(rc));
            rc_ring_close(ring);
            return rc == RC_EGROUP_NAME ? 2 : 1;
        }
    } else {
        rc_reader_opts_t o;
        memset(&o, 0, sizeof(o));
        o.mode = RC_READER_LOSSY;
        o.start = start;
        o.name = "ringcast-tail";
        rc = rc_reader_open(ring, &o, &reader);
        if (rc != 0) {
            fprintf(stderr, "ringcast tail: cannot read ring '%s': %s\n", ring_name,
                    rc_strerror(rc));
            rc_ring_close(ring);
            return 1;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: a sleeping wait returns -EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    char *buf = NULL;
    size_t cap = 0;
    long long printed = 0;
    uint64_t last = rc_now_ns();
    int code = 0;
    while (!tail_stop && (count < 0 || printed < count)) {
        rc_ring_view_t v;
        rc = member != NULL ? rc_group_wait(member, &v, 100 * 1000000LL)
                            : rc_reader_wait(reader, &v, 100 * 1000000LL);
        if (rc == RC_ERING_EMPTY || rc == -EINTR) {
            if (timeout_ms != 0 && rc_now_ns() - last >= timeout_ms * 1000000ull)
                break;
            continue;
        }
        if (rc != 0) {
            fprintf(stderr, "ringcast tail: reading ring '%s': %s\n", ring_name, rc_strerror(rc));
            code = 1;
            break;
        }
        last = rc_now_ns();
        if (v.lost > 0)
            fprintf(stderr, "ringcast tail: lost %llu events (the reader was lapped)\n",
                    (unsigned long long)v.lost);
        if (v.type < RC_REC_TYPE_USER)
            continue;
        rc = print_event(&v, binary, &buf, &cap);
        if (rc != 0) {
            fprintf(stderr, "ringcast tail: cannot print an event: %s\n", rc_strerror(rc));
            code = 1;
            break;
        }
        fflush(stdout);
        printed++;
    }
    free(buf);
    rc_group_leave(member); /* what was printed counts as acknowledged; the rest is handed on */
    rc_reader_close(reader);
    rc_ring_close(ring);
    return code;
}
