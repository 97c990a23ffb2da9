/* `ringcast tail`: attaches to a broker's ring as a lossy reader (it never slows producers), or
 * with --group as a member of a consumer group (competing with the group's other members), and
 * prints its events, one structured-mode JSON object per line (or binary-mode headers + data).
 * The ring is the broker's shm object, or with --storage-dir its ring file (a file store,
 * docs/durability.md), whose records carry a checksum that --verify checks. --from TIME finds
 * its start with the ring's time index (net/storage/timeindex.h, docs/durability.md "Replay")
 * and prints only events whose knativearrivaltime is at or after TIME. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/codec_http.h"
#include "core/codec_json.h"
#include "core/config.h"
#include "core/errors.h"
#include "core/record.h"
#include "net/cli/cli.h"
#include "net/cli/options.h"
#include "core/validate.h"
#include "net/storage/storage.h"
#include "net/storage/timeindex.h"
#include "shm/ring_name.h"
#include "shm/group.h"
#include "shm/reader.h"
#include "shm/ring.h"

static volatile sig_atomic_t tail_stop;

static void on_signal(int sig)
{
    (void)sig;
    tail_stop = 1;
}

/* The command line, parsed and checked. */
typedef struct {
    const char *target, *prefix, *group;
    const char *dir;  /* --storage-dir: the broker's ring file is there */
    int verify;       /* --verify: check each record's checksum */
    const char *from; /* --from as given */
    int from_latest;  /* --from: 0 oldest, 1 latest (and FROM_TIME) */
    int from_time;    /* --from TIME: print events that arrived at from_ns or later */
    int64_t from_ns;
    int binary;     /* --format: 0 json, 1 binary */
    uint64_t count; /* 0: no limit */
    uint64_t timeout_ms;
    char ns[RC_CONFIG_NAME_MAX + 1], name[RC_CONFIG_NAME_MAX + 1];
} tail_opts_t;

/* Fills `o` from the command line. Returns RC_CLI_GO_ON or the exit code (0 after --help). */
static int parse_options(tail_opts_t *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->prefix = "ringcast";
    const rc_cli_opt_t opts[] = {
        RC_CLI_OPT_STRING("from", &o->from, "oldest|latest|TIME",
                          "start at the oldest event the ring still holds (default), at the "
                          "next one, or at TIME (RFC 3339, e.g. 2026-01-02T15:04:05Z): only "
                          "events that arrived (knativearrivaltime) at TIME or later are "
                          "printed, found with the ring's time index; with --group, where a "
                          "new group starts (oldest or latest)"),
        RC_CLI_OPT_UINT("count", &o->count, "N", 1, UINT64_MAX, "stop after N events"),
        RC_CLI_OPT_CHOICE("format", &o->binary, "json|binary",
                          "one structured-mode JSON object per line (default), or the "
                          "binary-mode ce- headers, a blank line and the data"),
        RC_CLI_OPT_DURATION("timeout", &o->timeout_ms, "DURATION", 1, UINT64_MAX,
                            "stop after DURATION (2s, 500ms) without a new event"),
        RC_CLI_OPT_STRING("ring-prefix", &o->prefix, "PREFIX",
                          "must match the broker's spec.ring.namePrefix (default ringcast)"),
        RC_CLI_OPT_STRING("group", &o->group, "NAME",
                          "join consumer group NAME (1-31 characters of [A-Za-z0-9._:-]) "
                          "instead of reading as a lossy reader"),
        RC_CLI_OPT_STRING("storage-dir", &o->dir, "DIR",
                          "read the broker's ring file in DIR (a broker with storage type file: "
                          "its spec.storage.directory), whether or not the broker runs; "
                          "--ring-prefix does not apply then"),
        RC_CLI_OPT_FLAG("verify", &o->verify,
                        "check each record's CRC32C (file stores keep one per record): a record "
                        "that fails is reported on stderr and skipped, and tail exits 1"),
        RC_CLI_OPT_END,
    };
    const rc_cli_spec_t spec = {
        .command = "tail",
        .synopsis = "tail NAMESPACE/BROKER [--from oldest|latest|TIME] [--count N]\n"
                    "                     [--format json|binary] [--timeout DURATION]\n"
                    "                     [--ring-prefix PREFIX | --storage-dir DIR] [--verify]\n"
                    "                     [--group NAME]",
        .about = "Prints the events of a broker's ring as a lossy reader (never slows producers)\n"
                 "until --count events, --timeout or SIGINT/SIGTERM. Lost events (the reader was\n"
                 "lapped) are reported on stderr.\n\n"
                 "With --group NAME each event goes to one member of the group (run several tails\n"
                 "with the same NAME to share the work), and the group holds producers back\n"
                 "until its members have the events, up to the broker's lag limit (spec.lag:\n"
                 "past it the oldest are skipped and counted). An event is acknowledged\n"
                 "once printed; events of a tail killed before it printed them go to the other\n"
                 "members. The group ends with its last member.\n\n"
                 "With --from TIME tail prints the events the ring still holds that arrived at\n"
                 "TIME or later, then follows new ones (add --timeout to stop once it has\n"
                 "caught up). A TIME before the oldest event held starts at the oldest and says\n"
                 "so on stderr: what came before was overwritten.\n",
        .epilogue = "Exit codes: 0 ok, 1 the ring cannot be opened or read (or --verify found a\n"
                    "corrupt record), 2 bad usage.\n",
        .opts = opts,
        .operand_name = "broker",
        .operand = &o->target,
    };
    int code = rc__cli_parse(&spec, argc, argv);
    if (code != RC_CLI_GO_ON)
        return code;
    const char *t = o->target, *slash = t ? strchr(t, '/') : NULL;
    if (t == NULL || slash == NULL || slash == t || slash[1] == '\0' ||
        strchr(slash + 1, '/') != NULL || slash - t > RC_CONFIG_NAME_MAX ||
        strlen(slash + 1) > RC_CONFIG_NAME_MAX) {
        rc__cli_fail(&spec, "expected NAMESPACE/BROKER");
        rc__cli_help(&spec, stderr);
        return 2;
    }
    int64_t sec = 0;
    uint32_t nsec = 0;
    if (o->from == NULL || strcmp(o->from, "oldest") == 0) {
        o->from_latest = 0;
    } else if (strcmp(o->from, "latest") == 0) {
        o->from_latest = 1;
    } else if (rc_ce_time_parse((rc_str_t){o->from, strlen(o->from)}, &sec, &nsec) == 0 &&
               sec >= 0 && sec < INT64_MAX / 1000000000 - 1) {
        o->from_time = 1;
        o->from_ns = sec * 1000000000 + (int64_t)nsec;
    } else {
        return rc__cli_fail(&spec,
                            "--from must be oldest, latest or an RFC 3339 time such as "
                            "2026-01-02T15:04:05Z, not '%s'",
                            o->from);
    }
    if (o->from_time && o->group != NULL)
        return rc__cli_fail(&spec, "--from TIME does not apply to --group (a group starts at "
                                   "oldest or latest)");
    if (o->dir != NULL && (o->dir[0] == '\0' || strlen(o->dir) > 4000))
        return rc__cli_fail(&spec, "--storage-dir must be a directory's path");
    if (!rc_config_valid_ring_prefix(o->prefix))
        return rc__cli_fail(&spec, "--ring-prefix must be 1-%d characters of [A-Za-z0-9_-]",
                            RC_CONFIG_RING_PREFIX_MAX);
    const char *g = o->group;
    if (g != NULL && (g[0] == '\0' || strlen(g) > RC_GROUP_NAME_MAX ||
                      g[strspn(g, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789._:-")] != '\0'))
        return rc__cli_fail(&spec, "--group must be 1-%u characters of [A-Za-z0-9._:-]",
                            RC_GROUP_NAME_MAX);
    snprintf(o->ns, sizeof(o->ns), "%.*s", (int)(slash - t), t);
    snprintf(o->name, sizeof(o->name), "%s", slash + 1);
    return RC_CLI_GO_ON;
}

static int print_event(const rc_ring_view_t *v, uint32_t len, int binary, char **buf, size_t *cap)
{
    rc_record_view_t rv;
    if (len % 8 != 0 || rc_record_decode(v->data, len, &rv) != 0) {
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

/* --from TIME: where the first event that arrived at TIME or later is (the time index and a
 * short scan); says on stderr when TIME is before the oldest event held. Returns 0 with the
 * position in `*at`, or the exit code 1. */
static int seek(const tail_opts_t *o, const char *ring_name, rc_ring_t *ring, uint64_t *at)
{
    char index[RC_RING_NAME_MAX + 16 + 4096];
    if (o->dir != NULL)
        snprintf(index, sizeof(index), "%s/%s.%s.timeindex", o->dir, o->ns, o->name);
    else
        snprintf(index, sizeof(index), "/%s.timeindex", ring_name);
    rc_storage_seek_t sk;
    int rc = rc_storage_ring_seek_time(ring, index, o->dir != NULL, o->from_ns, &sk);
    if (rc != 0) {
        fprintf(stderr, "ringcast tail: cannot look for %s in ring '%s': %s\n", o->from, ring_name,
                rc_strerror(rc));
        return 1;
    }
    if (sk.found && sk.before_oldest) {
        char got[RC_CE_TIME_BUF];
        rc_ce_time_format(sk.arrival_ns, got);
        fprintf(stderr,
                "ringcast tail: %s is before the oldest event the ring holds (seq %llu, arrived "
                "%s): starting there%s\n",
                o->from, (unsigned long long)sk.seq, got,
                sk.oldest_seq > 0 ? "; the events before it were overwritten"
                                  : " (the ring has lost none)");
    }
    *at = sk.pos;
    return 0;
}

/* Opens the ring and joins the group or opens a lossy reader; what it opened is left in the
 * out parameters for the caller to close. Returns the exit code so far: 0, 1 or 2. */
static int attach(const tail_opts_t *o, const char *ring_name, rc_ring_t **ring,
                  rc_reader_t **reader, rc_group_member_t **member)
{
    char err[512];
    (void)rc_ring_guard_sigbus(); /* a ring truncated under tail: a message, not a SIGBUS */
    int rc = o->dir != NULL ? rc_ring_open_file(ring_name, ring, err, sizeof(err))
                            : rc_ring_open(ring_name, ring, err, sizeof(err));
    if (rc == -ENOENT && o->dir != NULL) {
        fprintf(stderr,
                "ringcast tail: no ring file for broker %s/%s (%s); is %s the broker's "
                "storage directory?\n",
                o->ns, o->name, ring_name, o->dir);
        return 1;
    }
    if (rc == -ENOENT) {
        fprintf(stderr,
                "ringcast tail: no ring for broker %s/%s (shm '%s'); is 'ringcast serve' "
                "running with ring prefix '%s'?\n",
                o->ns, o->name, ring_name, o->prefix);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "ringcast tail: %s\n", err);
        return 1;
    }
    rc_reader_start_t start = o->from_latest ? RC_START_LATEST : RC_START_OLDEST;
    uint64_t at = 0;
    if (o->from_time && (rc = seek(o, ring_name, *ring, &at)) != 0)
        return rc;
    if (o->from_time)
        start = RC_START_AT;
    if (o->group != NULL) {
        rc_group_opts_t go = {.start = start, .batch = 16};
        rc = rc_group_join(*ring, o->group, &go, member);
        if (rc != 0)
            fprintf(stderr, "ringcast tail: cannot join group '%s' on ring '%s': %s\n", o->group,
                    ring_name, rc_strerror(rc));
        return rc == 0 ? 0 : rc == RC_EGROUP_NAME ? 2 : 1;
    }
    rc_reader_opts_t ro;
    memset(&ro, 0, sizeof(ro));
    ro.mode = RC_READER_LOSSY;
    ro.start = start;
    ro.position = at;
    ro.name = "ringcast-tail";
    rc = rc_reader_open(*ring, &ro, reader);
    if (rc == RC_ERING_BAD_POS) { /* overwritten since the seek: the oldest is later still */
        ro.start = RC_START_OLDEST;
        rc = rc_reader_open(*ring, &ro, reader);
    }
    if (rc != 0) {
        fprintf(stderr, "ringcast tail: cannot read ring '%s': %s\n", ring_name, rc_strerror(rc));
        return 1;
    }
    return 0;
}

/* Prints events from the reader or the group member until --count, --timeout, a signal or an
 * error. Returns the exit code: 0 or 1. */
static int follow(const tail_opts_t *o, const char *ring_name, rc_reader_t *reader,
                  rc_group_member_t *member)
{
    char *buf = NULL;
    size_t cap = 0;
    uint64_t printed = 0, corrupt = 0;
    uint64_t last = rc_now_ns();
    int code = 0;
    while (!tail_stop && (o->count == 0 || printed < o->count)) {
        rc_ring_view_t v;
        int rc = member != NULL ? rc_group_wait(member, &v, 100 * 1000000LL)
                                : rc_reader_wait(reader, &v, 100 * 1000000LL);
        if (rc == RC_ERING_EMPTY || rc == -EINTR) {
            if (o->timeout_ms != 0 && rc_now_ns() - last >= o->timeout_ms * 1000000ull)
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
        uint32_t len = v.len;
        if (o->verify && rc_storage_record_check(v.data, v.len, v.flags, v.seq, &len) < 0) {
            fprintf(stderr,
                    "ringcast tail: the record at position %llu (seq %llu) fails its checksum: "
                    "skipped\n",
                    (unsigned long long)v.pos, (unsigned long long)v.seq);
            corrupt++;
            continue;
        }
        if (!o->verify && (v.flags & RC_STORAGE_REC_F_CRC) && len >= RC_STORAGE_CRC_TRAILER)
            len -= RC_STORAGE_CRC_TRAILER; /* unchecked, but not part of the record */
        /* Arrival times of concurrent producers are not in sequence order (each stamps its
         * event before it claims ring space), so every event is checked, not just the first. */
        int64_t arrived;
        if (o->from_time && (rc_storage_record_arrival(v.data, v.len, v.flags, &arrived) != 0 ||
                             arrived < o->from_ns))
            continue;
        rc = print_event(&v, len, o->binary, &buf, &cap);
        if (rc != 0) {
            fprintf(stderr, "ringcast tail: cannot print an event: %s\n", rc_strerror(rc));
            code = 1;
            break;
        }
        fflush(stdout);
        printed++;
    }
    free(buf);
    if (corrupt > 0) {
        fprintf(stderr, "ringcast tail: %llu records failed their checksum\n",
                (unsigned long long)corrupt);
        code = 1;
    }
    return code;
}

int rc_cmd_tail(int argc, char **argv)
{
    tail_opts_t o;
    int code = parse_options(&o, argc, argv);
    if (code != RC_CLI_GO_ON)
        return code;
    char ring_name[RC_RING_NAME_MAX + 1 + 4096];
    if (o.dir != NULL)
        snprintf(ring_name, sizeof(ring_name), "%s/%s.%s.ring", o.dir, o.ns, o.name);
    else
        rc_ring_name_for(o.prefix, o.ns, o.name, ring_name, sizeof(ring_name));
    rc_ring_t *ring = NULL;
    rc_reader_t *reader = NULL;
    rc_group_member_t *member = NULL;
    code = attach(&o, ring_name, &ring, &reader, &member);
    if (code == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal; /* no SA_RESTART: a sleeping wait returns -EINTR */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        code = follow(&o, ring_name, reader, member);
    }
    rc_group_leave(member); /* what was printed counts as acknowledged; the rest is handed on */
    rc_reader_close(reader);
    rc_ring_close(ring);
    return code;
}
