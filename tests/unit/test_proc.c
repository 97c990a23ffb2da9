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
