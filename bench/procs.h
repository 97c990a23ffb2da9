/* Child processes of the bench harness: every server a scenario starts is registered here so
 * that it is stopped by its pid and reaped on every path out (normal stop, error paths, SIGINT,
 * SIGTERM, exit), and so that its CPU time and peak RSS can be read from /proc. */
#ifndef RC_BENCH_PROCS_H
#define RC_BENCH_PROCS_H

#include <stdint.h>
#include <sys/types.h>

/** Installs SIGINT/SIGTERM/SIGHUP handlers and an atexit hook that stop every registered child
 *  (and unlink registered shm objects). Idempotent. Main thread, before starting children. */
void rc_bench_procs_install(void);

/** Starts `argv[0]` (a path) with `argv`, stdin from /dev/null, stdout to `out_fd` (or
 *  /dev/null when < 0), stderr to the file `err_path` (or /dev/null when NULL), and registers
 *  it to be stopped with `stop_sig`. Returns 0 and the pid in `*pid`, or -errno. */
int rc_bench_spawn(char *const argv[], int out_fd, const char *err_path, int stop_sig, pid_t *pid);

/** Registers a child forked by the caller (no exec, e.g. a bench sink) so that it is stopped
 *  with `stop_sig` like a spawned one. Returns 0 or -EMFILE when the registry is full. */
int rc_bench_adopt(pid_t pid, int stop_sig);

/** Direct children of `pid` (from /proc/<n>/stat), at most `max` into `out`. Returns the count. */
int rc_bench_child_pids(pid_t pid, pid_t *out, int max);

/** Stops a registered child: its stop signal, up to 3 s to exit, then SIGKILL; reaps it and
 *  forgets it. Returns its wait status (or -1 when it was not running). */
int rc_bench_stop(pid_t pid);

/** 1 while the child has not exited (reaps it when it has). */
int rc_bench_alive(pid_t pid);

/** Registers a POSIX shm object name to unlink at exit or on a signal (the broker's ring). */
void rc_bench_track_shm(const char *name);

/** CPU seconds (user + system) of process `pid` (0 = this process) from /proc/<pid>/stat, or
 *  -1 when it cannot be read. */
double rc_bench_cpu_s(pid_t pid);

/** Peak resident set (VmHWM) of `pid` (0 = this process) in MiB, or -1. */
double rc_bench_rss_mib(pid_t pid);

/** Shared-memory part of `pid`'s resident set now (RssShmem: for ringcast, the ring pages it
 *  touched) in MiB, or -1. */
double rc_bench_shm_mib(pid_t pid);

/** A free TCP port on 127.0.0.1 (bound and released; callers retry on a lost race), or -errno. */
int rc_bench_free_port(void);

/** Waits until 127.0.0.1:`port` accepts a connection: 0, or -ETIMEDOUT after `limit_s`, or
 *  -ECHILD when `pid` (if > 0) exited meanwhile. */
int rc_bench_wait_port(int port, double limit_s, pid_t pid);

/** Full path of an installed program (`name` searched in PATH, /usr/sbin, /usr/local/sbin,
 *  /sbin) into `buf`; 0 or -ENOENT. */
int rc_bench_which(const char *name, char *buf, size_t cap);

/** The machine's CPU time from /proc/stat, all cores, in clock ticks: busy (user, nice, system,
 *  irq, softirq, steal) and total (busy + idle + iowait). Returns 0 or -errno. */
int rc_bench_machine_ticks(double *busy, double *total);

/** Percent of the machine busy since rc_bench_machine_ticks gave `busy0`, `total0` (-1 when
 *  either read failed). */
double rc_bench_busy_pct(double busy0, double total0);

/** Monotonic seconds. */
double rc_bench_now_s(void);

/** Removes a directory tree created by the harness (best effort). */
void rc_bench_rmtree(const char *dir);

#endif
