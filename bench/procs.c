/* Process bookkeeping for the bench harness. The registry is a fixed array so the signal
 * handler can walk it without locks or allocation; only async-signal-safe calls are made there
 * (kill, waitpid, nanosleep, unlink, _exit). */
#include "bench/procs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 64
#define MAX_SHM      24

typedef struct {
    volatile pid_t pid;
    volatile int sig;
} child_t;

static child_t children[MAX_CHILDREN];
static char shm_paths[MAX_SHM][96];
static volatile int shm_used[MAX_SHM];
static int installed;

double rc_bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Stops every registered child and removes tracked rings; safe inside a signal handler. */
static void stop_all(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (children[i].pid > 0)
            kill(children[i].pid, children[i].sig);
    }
    for (int round = 0; round < 60; round++) {
        int left = 0;
        for (int i = 0; i < MAX_CHILDREN; i++) {
            pid_t p = children[i].pid;
            if (p <= 0)
                continue;
            pid_t w = waitpid(p, NULL, WNOHANG);
            if (w == p || (w < 0 && errno == ECHILD))
                children[i].pid = 0;
            else
                left++;
        }
        if (left == 0)
            break;
        nap_ms(50);
    }
    for (int i = 0; i < MAX_CHILDREN; i++) {
        pid_t p = children[i].pid;
        if (p > 0) {
            kill(p, SIGKILL);
            waitpid(p, NULL, 0);
            children[i].pid = 0;
        }
    }
    for (int i = 0; i < MAX_SHM; i++) {
        if (shm_used[i]) {
            unlink(shm_paths[i]);
            shm_used[i] = 0;
        }
    }
}

static void on_signal(int sig)
{
    stop_all();
    _exit(128 + sig);
}

static void on_exit_hook(void)
{
    stop_all();
}

void rc_bench_procs_install(void)
{
    if (installed)
        return;
    installed = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    atexit(on_exit_hook);
}

void rc_bench_track_shm(const char *name)
{
    /* A broker keeps its saved cursors and its time index beside its ring, in
     * "<ring>.cursors" and "<ring>.timeindex": all three go. */
    static const char *const suffix[] = {"", ".cursors", ".timeindex"};
    for (int k = 0, i = 0; k < 3 && i < MAX_SHM; i++) {
        if (!shm_used[i]) {
            snprintf(shm_paths[i], sizeof(shm_paths[i]), "/dev/shm/%s%s",
                     name[0] == '/' ? name + 1 : name, suffix[k]);
            shm_used[i] = 1;
            k++;
        }
    }
}

int rc_bench_spawn(char *const argv[], int out_fd, const char *err_path, int stop_sig, pid_t *pid)
{
    int slot = -1;
    for (int i = 0; i < MAX_CHILDREN && slot < 0; i++) {
        if (children[i].pid == 0)
            slot = i;
    }
    if (slot < 0)
        return -EMFILE;
    /* Block the stop signals while forking so a SIGINT cannot land between fork and the
     * registration below and leave the child unknown to the handler. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old);
    pid_t child = fork();
    if (child < 0) {
        int e = -errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        return e;
    }
    if (child == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        /* Own process group: a terminal's ^C reaches the harness, which stops the servers in
         * order, instead of killing them mid-measurement behind its back. */
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(out_fd >= 0 ? out_fd : devnull, 1);
        int errfd = err_path ? open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600) : devnull;
        dup2(errfd >= 0 ? errfd : devnull, 2);
        execv(argv[0], argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    children[slot].sig = stop_sig;
    children[slot].pid = child;
    sigprocmask(SIG_SETMASK, &old, NULL);
    *pid = child;
    return 0;
}

int rc_bench_adopt(pid_t pid, int stop_sig)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (children[i].pid == 0) {
            children[i].sig = stop_sig;
            children[i].pid = pid;
            return 0;
        }
    }
    return -EMFILE;
}

int rc_bench_child_pids(pid_t pid, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while (n < max && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t r = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (r <= 0)
            continue;
        buf[r] = 0;
        char *p = strrchr(buf, ')'); /* field 4 (ppid) follows the name and the state */
        int ppid = 0;
        if (p != NULL && sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == (int)pid)
            out[n++] = (pid_t)atoi(e->d_name);
    }
    closedir(d);
    return n;
}

static int find_child(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (children[i].pid == pid)
            return i;
    }
    return -1;
}

int rc_bench_stop(pid_t pid)
{
    int i = find_child(pid);
    if (pid <= 0 || i < 0)
        return -1;
    int status = -1;
    kill(pid, children[i].sig);
    for (int round = 0; round < 60; round++) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno == ECHILD)) {
            children[i].pid = 0;
            return status;
        }
        nap_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    children[i].pid = 0;
    return status;
}

int rc_bench_alive(pid_t pid)
{
    int status;
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == 0)
        return 1;
    int i = find_child(pid);
    if (i >= 0)
        children[i].pid = 0;
    return 0;
}

int rc_bench_machine_ticks(double *busy, double *total)
{
    char buf[512];
    int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = 0;
    unsigned long long v[8] = {0};
    if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) < 4)
        return -EIO;
    /* Steal counts as busy: the hypervisor gave that time to another guest, not to us. */
    *busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
    *total = *busy + (double)(v[3] + v[4]);
    return 0;
}

double rc_bench_busy_pct(double busy0, double total0)
{
    double busy, total;
    if (total0 < 0 || rc_bench_machine_ticks(&busy, &total) < 0 || total <= total0)
        return -1;
    return 100 * (busy - busy0) / (total - total0);
}

double rc_bench_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    else
        snprintf(path, sizeof(path), "/proc/self/stat");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    /* The command name (field 2) may hold spaces; fields are counted after its ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double status_mib(pid_t pid, const char *key)
{
    char path[64], line[256];
    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    else
        snprintf(path, sizeof(path), "/proc/self/status");
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    double mib = -1;
    while (fgets(line, sizeof(line), f)) {
        unsigned long kib;
        size_t klen = strlen(key);
        if (strncmp(line, key, klen) == 0 && sscanf(line + klen, " %lu kB", &kib) == 1) {
            mib = (double)kib / 1024.0;
            break;
        }
    }
    fclose(f);
    return mib;
}

double rc_bench_rss_mib(pid_t pid)
{
    return status_mib(pid, "VmHWM:");
}

double rc_bench_shm_mib(pid_t pid)
{
    return status_mib(pid, "RssShmem:");
}

int rc_bench_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int rc = 0;
    if (bind(fd, (struct sockaddr *)&a, len) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        rc = -errno;
    close(fd);
    return rc < 0 ? rc : ntohs(a.sin_port);
}

int rc_bench_wait_port(int port, double limit_s, pid_t pid)
{
    double end = rc_bench_now_s() + limit_s;
    while (rc_bench_now_s() < end) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return 0;
        if (pid > 0 && !rc_bench_alive(pid))
            return -ECHILD;
        nap_ms(20);
    }
    return -ETIMEDOUT;
}

int rc_bench_which(const char *name, char *buf, size_t cap)
{
    const char *path = getenv("PATH");
    char dirs[2048];
    snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/usr/local/sbin:/sbin", path ? path : "/usr/bin");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(buf, cap, "%s/%s", d, name);
        if (access(buf, X_OK) == 0)
            return 0;
    }
    return -ENOENT;
}

void rc_bench_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        char path[1024];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            struct stat st;
            if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                rc_bench_rmtree(path);
            else
                unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}
