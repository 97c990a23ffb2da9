/* Identity and liveness of processes attached to a ring. A pid alone can be reused after a
 * process dies, so an attached process is identified by (pid, start time), the start time being
 * field 22 of /proc/<pid>/stat in clock ticks since boot. */
#ifndef RC_SHM_PROC_H
#define RC_SHM_PROC_H

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Returns the start time of process `pid` (clock ticks since boot), or 0 when the process does
 *  not exist or /proc cannot be read. Any thread. */
uint64_t rc_proc_start_time(pid_t pid);

/** Returns 1 when a process with this pid exists and has this start time, 0 when it is gone
 *  (or the pid now names a different process). Any thread. */
int rc_proc_alive(pid_t pid, uint64_t start_time);

/** Returns the pid that took the flock(2) lock held on the file `fd` refers to, as
 *  /proc/locks shows it (the locker's pid even when descriptors inherited from it hold the
 *  lock now; 0 once that pid is gone on some kernels), or 0 when there is none or /proc/locks
 *  cannot be read. For messages only. Any thread. */
pid_t rc_proc_lock_holder(int fd);

#ifdef __cplusplus
}
#endif

#endif
