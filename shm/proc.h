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

#ifdef __cplusplus
}
#endif

#endif
