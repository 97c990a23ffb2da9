/* ringcast-bench all: every comparison scenario (dapr included) into one report (stdout tables, and
 * with --out report.md, report.json and one SVG per scenario), then the micro-benchmarks `ring` and
 * `cesql` and the machine's own `stalls`, run as their own sub-commands of this executable (a
 * scenario this build does not have is reported as skipped). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/procs.h"
#include "bench/run.h"
#include "bench/scenarios.h"

/* Runs `ringcast-bench <argv...>` and keeps the last line of its stdout in `line`. Returns
 * its exit code, or -errno. */
static int run_self(char *const argv[], char *line, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -errno;
    self[n] = 0;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -errno;
    char *args[16] = {self};
    for (int i = 0; argv[i] != NULL && i < 14; i++)
        args[i + 1] = argv[i];
    pid_t pid;
    int rc = rc_bench_spawn(args, pfd[1], NULL, SIGTERM, &pid);
    close(pfd[1]);
    if (rc < 0) {
        close(pfd[0]);
        return rc;
    }
    /* The child's stderr goes to /dev/null via rc_bench_spawn; its stdout is read here. */
    char buf[8192];
    size_t used = 0;
    line[0] = 0;
    for (;;) {
        ssize_t r = read(pfd[0], buf + used, sizeof(buf) - 1 - used);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        used += (size_t)r;
        buf[used] = 0;
        fputs(buf + used - (size_t)r, stderr);
        if (used > sizeof(buf) / 2) { /* keep the tail */
            char *nl = strrchr(buf, '\n');
            size_t keep = nl ? strlen(nl) : 0;
            memmove(buf, nl ? nl : buf + used, keep + 1);
            used = keep;
        }
    }
    close(pfd[0]);
    buf[used] = 0;
    while (used > 0 && buf[used - 1] == '\n')
        buf[--used] = 0;
    char *last = strrchr(buf, '\n');
    const char *src = last ? last + 1 : buf;
    size_t len = strlen(src) < cap ? strlen(src) : cap - 1;
    memcpy(line, src, len);
    line[len] = 0;
    int status = rc_bench_stop(pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int rc_bench_all(int argc, char **argv)
{
    rc_bench_opts_t o;
    int rc = rc_bench_opts_parse("all",
                                 "Every scenario (ingest, latency, fanout, groups, dapr, then ring, "
                                 "cesql and the machine's stalls) into one report. With --quick "
                                 "it takes well under 2 minutes on 2 cores.",
                                 argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc__bench_scenario_setup();
    rc_report_t rep = {0};
    int failed = 0;
    double t0 = rc_bench_now_s();
    failed += rc__bench_ingest_rows(&o, &rep);
    if (!rc_bench_stop_flag)
        failed += rc__bench_latency_rows(&o, &rep);
    if (!rc_bench_stop_flag)
        failed += rc__bench_fanout_rows(&o, &rep);
    if (!rc_bench_stop_flag)
        failed += rc__bench_groups_rows(&o, &rep);
    if (!rc_bench_stop_flag)
        failed += rc__bench_dapr_rows(&o, &rep);

    static const char *const scen[] = {"ingest", "latency", "fanout", "groups", "dapr"};
    for (size_t i = 0; i < sizeof(scen) / sizeof(scen[0]); i++) {
        printf("## %s\n\n", scen[i]);
        if (strcmp(scen[i], "ingest") == 0)
            rc__bench_ingest_targets(&o, &rep);
        if (strcmp(scen[i], "dapr") == 0)
            rc__bench_dapr_targets(&o, &rep);
        rc_report_table(&rep, scen[i], stdout);
        printf("\n");
    }
    char *ring_q[] = {"ring", "--duration", "0.5", NULL};
    char *ring_f[] = {"ring", NULL};
    char *cesql_q[] = {"cesql", "--iters", "200000", "--rounds", "3", NULL};
    char *cesql_f[] = {"cesql", NULL};
    /* The stalls probe last: what the machine itself took from running threads, the floor
     * under the tails of the tables above. */
    char *stalls_q[] = {"stalls", "--seconds", "1", NULL};
    char *stalls_f[] = {"stalls", "--seconds", "3", NULL};
    char *const *micro[] = {o.quick ? ring_q : ring_f, o.quick ? cesql_q : cesql_f,
                            o.quick ? stalls_q : stalls_f};
    enum { NMICRO = sizeof(micro) / sizeof(micro[0]) };
    char lines[NMICRO][1024];
    int micro_rc[NMICRO];
    for (int i = 0; i < NMICRO && !rc_bench_stop_flag; i++) {
        micro_rc[i] = run_self(micro[i], lines[i], sizeof(lines[i]));
        printf("## %s\n\n", micro[i][0]);
        if (micro_rc[i] == 2 && strncmp(lines[i], "scenario=", 9) != 0) {
            printf("skipped: this build has no '%s' scenario\n\n", micro[i][0]);
            snprintf(lines[i], sizeof(lines[i]), "scenario=%s skipped=1", micro[i][0]);
        } else {
            printf("```\n%s\n```\n\n", lines[i]);
            if (micro_rc[i] != 0)
                failed++;
        }
    }
    if (o.out != NULL) {
        if (rc_report_write_dir(&rep, o.out) < 0) {
            failed++;
        } else {
            char path[1024];
            snprintf(path, sizeof(path), "%s/micro.txt", o.out);
            FILE *f = fopen(path, "we");
            if (f != NULL) {
                for (int i = 0; i < NMICRO; i++)
                    fprintf(f, "%s\n", lines[i]);
                fclose(f);
            }
        }
    }
    uint64_t lost = 0;
    int rows = 0, skipped = 0;
    for (int i = 0; i < rep.count; i++) {
        if (rep.rows[i].skipped) {
            skipped++;
        } else {
            rows++;
            lost += rep.rows[i].lost;
        }
    }
    printf("scenario=all quick=%d rows=%d skipped=%d lost=%llu failed=%d seconds=%.1f out=%s\n",
           o.quick, rows, skipped, (unsigned long long)lost, failed, rc_bench_now_s() - t0,
           o.out ? o.out : "-");
    rc_report_free(&rep);
    return failed ? 1 : 0;
}
