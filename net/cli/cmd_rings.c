/* `ringcast rings ls|rm`: the rings of a ring prefix in /dev/shm (and the file stores of a
 * storage directory), who holds them, how full they are; and the removal of a memory ring no
 * live broker holds (one left behind by a broker that was killed). Rings are read as `tail`
 * attaches (rc_ring_open), but without a reader slot or the broker lock (rc_ring_inspect), so a
 * running broker is not disturbed. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "net/cli/cli.h"
#include "net/cli/options.h"
#include "shm/ring.h"
#include "shm/ring_name.h"

#define SHM_DIR "/dev/shm"

enum { OUT_TABLE = 0, OUT_WIDE = 1, OUT_JSON = 2 };

typedef struct {
    const char *prefix, *dir;
    int output;
    const char *target;
} rings_opts_t;

/* One listed ring. */
typedef struct {
    char name[2 * RC_CONFIG_NAME_MAX + 2]; /* ns/broker, or what the object name holds */
    char path[1300];
    int file;
    rc_ring_info_t info;
    rc_ring_stats_t st;
} ring_row_t;

static void print_header(int wide)
{
    printf("%-32s %-7s %-9s %-9s %-7s %-6s %-12s %-*s", "NAME", "STORAGE", "OWNER PID", "SIZE",
           "READERS", "FILL", "OLDEST", wide ? 12 : 0, "NEWEST");
    if (wide)
        printf(" %-8s %-8s %s", "LOSSLESS", "FULL", "PATH");
    putchar('\n');
}

static const char *human_size(uint64_t b, char *buf, size_t len)
{
    if (b >= (1ull << 30) && b % (1ull << 30) == 0)
        snprintf(buf, len, "%lluGi", (unsigned long long)(b >> 30));
    else if (b >= (1ull << 20) && b % (1ull << 20) == 0)
        snprintf(buf, len, "%lluMi", (unsigned long long)(b >> 20));
    else if (b >= (1ull << 10) && b % (1ull << 10) == 0)
        snprintf(buf, len, "%lluKi", (unsigned long long)(b >> 10));
    else
        snprintf(buf, len, "%llu", (unsigned long long)b);
    return buf;
}

static double fill_percent(const ring_row_t *r)
{
    return r->st.capacity ? 100.0 * (double)r->st.fill / (double)r->st.capacity : 0.0;
}

static void print_row(const ring_row_t *r, int wide)
{
    char owner[16] = "-", size[32], oldest[24] = "-", newest[24] = "-", fill[16];
    if (r->info.owner > 0)
        snprintf(owner, sizeof(owner), "%d", (int)r->info.owner);
    if (r->info.events) {
        snprintf(oldest, sizeof(oldest), "%llu", (unsigned long long)r->info.oldest_seq);
        snprintf(newest, sizeof(newest), "%llu", (unsigned long long)r->info.newest_seq);
    }
    snprintf(fill, sizeof(fill), "%.1f%%", fill_percent(r));
    printf("%-32s %-7s %-9s %-9s %-7u %-6s %-12s %-*s", r->name, r->file ? "file" : "memory", owner,
           human_size(r->st.capacity, size, sizeof(size)), r->st.readers, fill, oldest,
           wide ? 12 : 0, newest);
    if (wide)
        printf(" %-8u %-8llu %s", r->st.lossless, (unsigned long long)r->st.full, r->path);
    putchar('\n');
}

static cJSON *row_json(const ring_row_t *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "storage", r->file ? "file" : "memory");
    cJSON_AddStringToObject(o, "path", r->path);
    if (r->info.owner > 0)
        cJSON_AddNumberToObject(o, "ownerPid", (double)r->info.owner);
    else
        cJSON_AddNullToObject(o, "ownerPid");
    cJSON_AddNumberToObject(o, "size", (double)r->st.capacity);
    cJSON_AddNumberToObject(o, "readers", (double)r->st.readers);
    cJSON_AddNumberToObject(o, "lossless", (double)r->st.lossless);
    cJSON_AddNumberToObject(o, "fillBytes", (double)r->st.fill);
    cJSON_AddNumberToObject(o, "fillPercent", fill_percent(r));
    cJSON_AddNumberToObject(o, "full", (double)r->st.full);
    if (r->info.events) {
        cJSON_AddNumberToObject(o, "oldestSeq", (double)r->info.oldest_seq);
        cJSON_AddNumberToObject(o, "newestSeq", (double)r->info.newest_seq);
    } else {
        cJSON_AddNullToObject(o, "oldestSeq");
        cJSON_AddNullToObject(o, "newestSeq");
    }
    return o;
}

/* Opens one ring, fills `row` and emits it. Returns 0, or 1 when it could not be read (said on
 * stderr). */
static int list_one(const rings_opts_t *o, ring_row_t *row, const char *open_name, cJSON *arr)
{
    char err[512];
    rc_ring_t *ring = NULL;
    int rc = row->file ? rc_ring_open_file(open_name, &ring, err, sizeof(err))
                       : rc_ring_open(open_name, &ring, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "ringcast rings ls: %s: %s\n", row->path, err);
        return 1;
    }
    rc_ring_inspect(ring, &row->info);
    rc_ring_stats(ring, &row->st);
    rc_ring_close(ring);
    if (arr != NULL)
        cJSON_AddItemToArray(arr, row_json(row));
    else
        print_row(row, o->output == OUT_WIDE);
    return 0;
}

/* "<ns>.<broker>" -> "ns/broker" (a hashed name stays as it is). */
static void display_name(const char *rest, size_t len, char *out, size_t cap)
{
    const char *dot = memchr(rest, '.', len);
    if (dot == NULL)
        snprintf(out, cap, "%.*s", (int)len, rest);
    else
        snprintf(out, cap, "%.*s/%.*s", (int)(dot - rest), rest,
                 (int)(len - (size_t)(dot - rest) - 1), dot + 1);
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The entries of `dir` that `keep` accepts, sorted (so the listing is stable). Returns the
 * count, or -1 (errno set) when the directory cannot be read. */
static int read_dir(const char *dir, const rings_opts_t *o,
                    int (*keep)(const char *, const rings_opts_t *), char ***out)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!keep(e->d_name, o))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nn = realloc(names, (size_t)cap * sizeof(*names));
            if (nn == NULL)
                break;
            names = nn;
        }
        if ((names[n] = strdup(e->d_name)) != NULL)
            n++;
    }
    closedir(d);
    if (n > 0)
        qsort(names, (size_t)n, sizeof(*names), cmp_names);
    *out = names;
    return n;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int keep_shm(const char *name, const rings_opts_t *o)
{
    size_t pl = strlen(o->prefix);
    return strncmp(name, o->prefix, pl) == 0 && name[pl] == '.' && name[pl + 1] != '\0' &&
           !has_suffix(name, ".cursors") && !has_suffix(name, ".timeindex") &&
           !has_suffix(name, ".redis"); /* beside a ring */
}

static int keep_file(const char *name, const rings_opts_t *o)
{
    (void)o;
    return name[0] != '.' && has_suffix(name, ".ring") && strlen(name) > 5;
}

static int list_rings(const rings_opts_t *o)
{
    int status = 0;
    cJSON *arr = o->output == OUT_JSON ? cJSON_CreateArray() : NULL;
    if (arr == NULL)
        print_header(o->output == OUT_WIDE);
    char **names = NULL;
    int n = read_dir(SHM_DIR, o, keep_shm, &names);
    if (n < 0) {
        fprintf(stderr, "ringcast rings ls: cannot read %s: %s\n", SHM_DIR, strerror(errno));
        status = 1;
    }
    size_t pl = strlen(o->prefix);
    for (int i = 0; i < n; i++) {
        ring_row_t row = {.file = 0};
        const char *rest = names[i] + pl + 1;
        display_name(rest, strlen(rest), row.name, sizeof(row.name));
        snprintf(row.path, sizeof(row.path), "%s/%s", SHM_DIR, names[i]);
        status |= list_one(o, &row, names[i], arr);
    }
    free_names(names, n);
    if (o->dir != NULL) {
        n = read_dir(o->dir, o, keep_file, &names);
        if (n < 0) {
            fprintf(stderr, "ringcast rings ls: cannot read storage directory %s: %s\n", o->dir,
                    strerror(errno));
            status = 1;
        }
        for (int i = 0; i < n; i++) {
            ring_row_t row = {.file = 1};
            display_name(names[i], strlen(names[i]) - 5, row.name, sizeof(row.name));
            snprintf(row.path, sizeof(row.path), "%s/%s", o->dir, names[i]);
            status |= list_one(o, &row, row.path, arr);
        }
        free_names(names, n);
    }
    if (arr != NULL) {
        char *s = cJSON_Print(arr);
        if (s != NULL)
            puts(s);
        free(s);
        cJSON_Delete(arr);
    }
    return status;
}

/* Splits "ns/broker" into the caller's buffers; -1 when it is not of that shape. */
static int split_target(const char *t, char *ns, char *name)
{
    const char *slash = t ? strchr(t, '/') : NULL;
    if (slash == NULL || slash == t || slash[1] == '\0' || strchr(slash + 1, '/') != NULL ||
        slash - t > RC_CONFIG_NAME_MAX || strlen(slash + 1) > RC_CONFIG_NAME_MAX ||
        memchr(t, '.', (size_t)(slash - t)) != NULL || strchr(slash + 1, '.') != NULL)
        return -1;
    snprintf(ns, RC_CONFIG_NAME_MAX + 1, "%.*s", (int)(slash - t), t);
    snprintf(name, RC_CONFIG_NAME_MAX + 1, "%s", slash + 1);
    return 0;
}

static int remove_ring(const rings_opts_t *o, const char *ns, const char *name)
{
    if (o->dir != NULL) {
        char path[1300];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s.%s.ring", o->dir, ns, name);
        if (stat(path, &st) == 0) {
            fprintf(stderr,
                    "ringcast rings rm: %s/%s is a file store (%s): rings rm removes memory "
                    "rings only; stop its broker, then delete %s and %s/%s.%s.cursors by hand "
                    "(its events and cursors go with them)\n",
                    ns, name, path, path, o->dir, ns, name);
            return 1;
        }
    }
    char ring_name[RC_RING_NAME_MAX + 1], err[512];
    if (rc_ring_name_for(o->prefix, ns, name, ring_name, sizeof(ring_name)) != 0) {
        fprintf(stderr, "ringcast rings rm: no ring name for %s/%s with prefix '%s'\n", ns, name,
                o->prefix);
        return 2;
    }
    int rc = rc_ring_remove(ring_name, err, sizeof(err));
    if (rc == -ENOENT) {
        fprintf(stderr,
                "ringcast rings rm: no ring for %s/%s (%s/%s); see 'ringcast rings ls "
                "--ring-prefix %s'\n",
                ns, name, SHM_DIR, ring_name, o->prefix);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "ringcast rings rm: %s%s\n", err,
                rc == -EBUSY ? " (rings rm never removes a ring a live broker holds)" : "");
        return 1;
    }
    /* The saved cursors beside it belong to the ring just removed. */
    char cursors[RC_RING_NAME_MAX + 16];
    snprintf(cursors, sizeof(cursors), "/%s.cursors", ring_name);
    if (shm_unlink(cursors) != 0 && errno != ENOENT) {
        fprintf(stderr, "ringcast rings rm: removed ring %s/%s but not %s%s: %s\n", ns, name,
                SHM_DIR, cursors, strerror(errno));
        return 1;
    }
    /* Its time index too (a stale one would only be made anew by the next ring). */
    snprintf(cursors, sizeof(cursors), "/%s.timeindex", ring_name);
    (void)shm_unlink(cursors);
    /* A redis store's mirror position (docs/scaleout.md) is the ring's too. */
    snprintf(cursors, sizeof(cursors), "/%s.redis", ring_name);
    (void)shm_unlink(cursors);
    printf("removed ring %s/%s (%s/%s)\n", ns, name, SHM_DIR, ring_name);
    return 0;
}

static int run(const char *verb, int argc, char **argv)
{
    rings_opts_t o = {.prefix = "ringcast"};
    int is_ls = strcmp(verb, "ls") == 0;
    const rc_cli_opt_t ls_opts[] = {
        RC_CLI_OPT_STRING("ring-prefix", &o.prefix, "PREFIX",
                          "the brokers' spec.ring.namePrefix (default ringcast)"),
        RC_CLI_OPT_STRING("storage-dir", &o.dir, "DIR",
                          "also list the file stores (<ns>.<broker>.ring) in DIR"),
        {.name = "output",
         .short_name = 'o',
         .kind = RC_CLI_CHOICE,
         .value = &o.output,
         .choices = "table|wide|json",
         .help = "a table (default), a wider one (lossless readers, full count, path) or a "
                 "JSON array"},
        RC_CLI_OPT_END,
    };
    const rc_cli_opt_t rm_opts[] = {
        RC_CLI_OPT_STRING("ring-prefix", &o.prefix, "PREFIX",
                          "the broker's spec.ring.namePrefix (default ringcast)"),
        RC_CLI_OPT_STRING("storage-dir", &o.dir, "DIR",
                          "the broker's storage directory: a file store there is refused"),
        RC_CLI_OPT_END,
    };
    const rc_cli_spec_t ls_spec = {
        .command = "rings ls",
        .synopsis = "rings ls [--ring-prefix PREFIX] [--storage-dir DIR] [-o table|wide|json]",
        .about = "Lists the rings of PREFIX in /dev/shm (<prefix>.<ns>.<broker>) and, with\n"
                 "--storage-dir, the file stores there: NAME (ns/broker), STORAGE (memory|file),\n"
                 "OWNER PID (the live broker holding its lock; '-' when none: a stale ring),\n"
                 "SIZE (record area), READERS (reader slots in use), FILL (bytes producers\n"
                 "cannot reuse yet, of SIZE), OLDEST/NEWEST (sequence numbers of the events\n"
                 "held). Rings are read without a lock or a reader slot: a running broker is\n"
                 "not disturbed.\n",
        .epilogue = "Exit codes: 0 ok, 1 a ring or directory could not be read (said on stderr;\n"
                    "the others are listed), 2 bad usage.\n",
        .opts = ls_opts,
    };
    const rc_cli_spec_t rm_spec = {
        .command = "rings rm",
        .synopsis = "rings rm NAMESPACE/BROKER [--ring-prefix PREFIX] [--storage-dir DIR]",
        .about = "Removes a broker's memory ring, its saved cursors (<ring>.cursors) and its\n"
                 "time index (<ring>.timeindex) from /dev/shm, only when no live broker (nor a\n"
                 "delivery worker it left) holds it: otherwise it is refused with the holder's\n"
                 "pid. Its events are lost. A file store is refused: stop its broker and delete\n"
                 "its files by hand.\n",
        .epilogue = "Exit codes: 0 removed, 1 refused or not found, 2 bad usage.\n",
        .opts = rm_opts,
        .operand_name = "broker",
        .operand = &o.target,
    };
    const rc_cli_spec_t *spec = is_ls ? &ls_spec : &rm_spec;
    int code = rc__cli_parse(spec, argc, argv);
    if (code != RC_CLI_GO_ON)
        return code;
    if (!rc_config_valid_ring_prefix(o.prefix))
        return rc__cli_fail(spec, "--ring-prefix must be 1-%d characters of [A-Za-z0-9_-]",
                            RC_CONFIG_RING_PREFIX_MAX);
    if (o.dir != NULL && (o.dir[0] == '\0' || strlen(o.dir) > 1023))
        return rc__cli_fail(spec, "--storage-dir must be a directory's path");
    if (is_ls)
        return list_rings(&o);
    char ns[RC_CONFIG_NAME_MAX + 1], name[RC_CONFIG_NAME_MAX + 1];
    if (o.target == NULL || split_target(o.target, ns, name) != 0)
        return rc__cli_fail(spec, "expected NAMESPACE/BROKER (as 'rings ls' shows it)");
    return remove_ring(&o, ns, name);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: ringcast rings ls [options]\n"
                 "       ringcast rings rm NAMESPACE/BROKER [options]\n\n"
                 "Lists the brokers' rings (owner, size, readers, fill) or removes a stale one.\n"
                 "Run 'ringcast rings ls --help' or 'ringcast rings rm --help' for the options.\n"
                 "Exit codes: 0 success, 1 failure, 2 bad usage.\n");
}

int rc_cmd_rings(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "ls") != 0 && strcmp(argv[1], "rm") != 0) {
        fprintf(stderr, "ringcast rings: unknown sub-command '%s' (ls or rm)\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    return run(argv[1], argc - 1, argv + 1);
}
