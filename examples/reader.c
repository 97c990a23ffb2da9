/* A local consumer of a ringcast broker, built on the installed SDK only (`pkg-config --cflags
 * --libs ringcast`): it attaches to the broker's shared-memory ring, reads events as they are
 * committed and prints the type, id and data of each, one line per event:
 *
 *   type=order.placed id=o-1 data={"total": 12}
 *
 * Bytes of a value outside printable ASCII, and the backslash, are written as \xHH so that an
 * event always takes one line; the data part is left out when the event has no data.
 *
 * It reads as a lossy reader (like `ringcast tail`: it never slows the broker down and reports
 * on stderr how many events it lost when it falls a lap behind), or with -g as a member of a
 * consumer group (the members of a group share the events; nothing is lost, and the group holds
 * producers back until its members have the events).
 *
 *   cc -o reader examples/reader.c $(pkg-config --cflags --libs ringcast)
 *   ./reader default/default                       # the broker `default` of namespace `default`
 *   ./reader -p myprefix -g billing shop/orders    # spec.ring.namePrefix myprefix, group billing
 *   ./reader ringcast.shop.orders                  # the ring's shm name itself
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/record.h"
#include "shm/group.h"
#include "shm/reader.h"
#include "shm/ring_name.h"
#include "shm/ring.h"


static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ringcast-example-reader [-p PREFIX] [-g GROUP] [-f oldest|latest]\n"
            "                               [-n COUNT] [-t IDLE_MS] NAMESPACE/BROKER | RING\n"
            "Prints type, id and data of each event of a broker's ring, one line each.\n"
            "  -p PREFIX   the broker's ring name prefix (spec.ring.namePrefix, default "
            "ringcast)\n"
            "  -g GROUP    read as a member of consumer group GROUP instead of a lossy reader\n"
            "  -f FROM     start at the oldest event the ring holds (default) or the next one\n"
            "  -n COUNT    stop after COUNT events\n"
            "  -t IDLE_MS  stop after IDLE_MS milliseconds without an event\n");
}

/* NAMESPACE/BROKER names a broker, whose ring name the SDK computes as the broker does
 * (shm/ring_name.h); an argument without '/' is a ring name. */
static int ring_name_of(const char *target, const char *prefix, char *buf, size_t cap)
{
    const char *slash = strchr(target, '/');
    if (slash == NULL) {
        int n = snprintf(buf, cap, "%s", target);
        return n > 0 && n <= RC_RING_NAME_MAX ? 0 : -EINVAL;
    }
    if (slash == target || slash[1] == '\0' || strchr(slash + 1, '/') != NULL ||
        (size_t)(slash - target) > 63)
        return -EINVAL;
    char ns[64];
    snprintf(ns, sizeof(ns), "%.*s", (int)(slash - target), target);
    return rc_ring_name_for(prefix, ns, slash + 1, buf, cap);
}

static void print_value(const char *label, rc_str_t s)
{
    printf("%s=", label);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            putchar(c);
        else
            printf("\\x%02x", c);
    }
}

/* One ring record: the broker writes each event as one record of type RC_EVENT_RECORD_TYPE in
 * the format of core/record.h. rc_record_decode checks the bytes before anything reads them;
 * the accessors then return views into the record (no copy, valid as long as the ring view). */
static int print_event(const rc_ring_view_t *v)
{
    rc_record_view_t rec;
    if (v->type != RC_EVENT_RECORD_TYPE)
        return 0;
    if (rc_record_decode(v->data, v->len, &rec) != 0) {
        fprintf(stderr, "skipping a record at %llu that is not an event\n",
                (unsigned long long)v->pos);
        return 0;
    }
    print_value("type", rc_record_attr(&rec, RC_CE_ATTR_TYPE));
    print_value(" id", rc_record_attr(&rec, RC_CE_ATTR_ID));
    rc_str_t data = rc_record_data(&rec);
    if (data.ptr != NULL)
        print_value(" data", data);
    putchar('\n');
    fflush(stdout);
    return 1;
}

/* A non-negative decimal option value, or -1. */
static long parse_count(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);
    return *s != '\0' && *end == '\0' && n >= 0 ? n : -1;
}

int main(int argc, char **argv)
{
    const char *prefix = "ringcast", *group = NULL, *from = "oldest";
    long count = -1, idle_ms = -1;
    int opt;
    while ((opt = getopt(argc, argv, "p:g:f:n:t:h")) != -1) {
        switch (opt) {
        case 'p':
            prefix = optarg;
            break;
        case 'g':
            group = optarg;
            break;
        case 'f':
            from = optarg;
            break;
        case 'n':
            if ((count = parse_count(optarg)) < 1) {
                usage(stderr);
                return 2;
            }
            break;
        case 't':
            if ((idle_ms = parse_count(optarg)) < 0) {
                usage(stderr);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    char ring_name[RC_RING_NAME_MAX + 1];
    if (optind != argc - 1 || (strcmp(from, "oldest") != 0 && strcmp(from, "latest") != 0) ||
        ring_name_of(argv[optind], prefix, ring_name, sizeof(ring_name)) != 0) {
        usage(stderr);
        return 2;
    }
    rc_reader_start_t start = strcmp(from, "oldest") == 0 ? RC_START_OLDEST : RC_START_LATEST;

    rc_ring_t *ring = NULL;
    rc_reader_t *reader = NULL;
    rc_group_member_t *member = NULL;
    int code = 1;
    char err[256];
    int rc = rc_ring_open(ring_name, &ring, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    if (group != NULL) {
        rc_group_opts_t go = {.start = start};
        rc = rc_group_join(ring, group, &go, &member);
    } else {
        rc_reader_opts_t ro = {.mode = RC_READER_LOSSY, .start = start, .name = "example-reader"};
        rc = rc_reader_open(ring, &ro, &reader);
    }
    if (rc != 0) {
        fprintf(stderr, "cannot read ring '%s': %s\n", ring_name, rc_strerror(rc));
        goto out;
    }

    /* Without SA_RESTART a wait asleep on the ring's futex returns -EINTR at once, so Ctrl-C
     * ends the loop and the reader's slot is released below. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    uint64_t last = rc_now_ns();
    while (!stop && count != 0) {
        rc_ring_view_t v;
        /* Waits spin a little, then sleep until a producer commits (or 100 ms pass). Without
         * RC_GROUP_F_MANUAL_ACK each group poll acknowledges the record the previous one
         * returned. */
        rc = member != NULL ? rc_group_wait(member, &v, 100 * 1000000LL)
                            : rc_reader_wait(reader, &v, 100 * 1000000LL);
        if (rc == RC_ERING_EMPTY || rc == -EINTR) {
            if (idle_ms >= 0 && rc_now_ns() - last >= (uint64_t)idle_ms * 1000000u)
                break;
            continue;
        }
        if (rc != 0) {
            fprintf(stderr, "reading ring '%s': %s\n", ring_name, rc_strerror(rc));
            goto out;
        }
        last = rc_now_ns();
        if (v.lost > 0)
            fprintf(stderr, "lost %llu events (this reader was lapped)\n",
                    (unsigned long long)v.lost);
        if (print_event(&v) && count > 0)
            count--;
    }
    code = 0;

out:
    rc_group_leave(member);
    rc_reader_close(reader);
    rc_ring_close(ring);
    return code;
}
