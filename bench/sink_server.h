/* A minimal HTTP/1.1 sink for benchmarks: a forked child process on loopback, one epoll loop,
 * answering every request with a fixed status and an empty body, keep-alive. It stands in for
 * a subscriber when nginx is not installed. */
#ifndef RC_BENCH_SINK_SERVER_H
#define RC_BENCH_SINK_SERVER_H

#include <sys/types.h>

/** Starts the sink on 127.0.0.1 with a free port, answering `status` to every request.
 *  @return 0 with the port and child pid, or -errno */
int rc_bench_sink_start(int status, int *port, pid_t *pid);

/** Stops a sink started by rc_bench_sink_start (SIGTERM to that pid, then waits for it). */
void rc_bench_sink_stop(pid_t pid);

#endif
