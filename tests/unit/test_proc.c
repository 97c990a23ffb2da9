#include "core/clock.h"
#include "shm/proc.h"
#include "tests/test.h"

#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    uint64_t self = rc_proc_start_time(getpid());
    ASSERT_GT(self, 0);
    ASSERT_EQ(rc_proc_alive(getpid(), self), 1);
    ASSERT_EQ(rc_proc_alive(getpid(), self + 1), 0); /* same pid, different process */
    ASSERT_EQ(rc_proc_alive(0, self), 0);

    /* The start time does not move while the process grows (a wrong field, such as vsize,
     * would). */
    void *volatile big = malloc(64 << 20);
    ASSERT(big != NULL);
    memset(big, 1, 64 << 20);
    ASSERT_U64_EQ(rc_proc_start_time(getpid()), self);
    free(big);
    /* And it is at most the system's uptime in ticks. */
    FILE *up = fopen("/proc/uptime", "r");
    double uptime = 0;
    ASSERT(up != NULL && fscanf(up, "%lf", &uptime) == 1);
    fclose(up);
    ASSERT_LE(self, (uint64_t)(uptime * sysconf(_SC_CLK_TCK)) + 1);

    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0)
        _exit(0);
    int status;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_EQ(rc_proc_start_time(child), 0); /* reaped: gone */
    ASSERT_EQ(rc_proc_alive(child, self), 0);

    uint64_t a = rc_now_ns(), b = rc_now_ns();
    ASSERT_LE(a, b);
    return 0;
}
