#include "bench/sink_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUF_SIZE 65536

typedef struct {
    int fd;
    size_t len;
    char buf[BUF_SIZE];
} conn_t;

/* Consumes complete requests from c->buf and appends one response per request to out.
 * Returns the number of responses, or -1 for a request it cannot frame. */
static int frame(conn_t *c, char *out, size_t *out_len, const char *resp, size_t resp_len)
{
    int n = 0;
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end == NULL)
            break;
        size_t head = (size_t)(end - c->buf) + 4;
        size_t cl = 0;
        for (char *p = c->buf; p < end; p++) {
            if ((p == c->buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
                cl = strtoul(p + 15, NULL, 10);
        }
        if (head + cl > BUF_SIZE)
            return -1;
        if (c->len < head + cl)
            break;
        memmove(c->buf, c->buf + head + cl, c->len - head - cl);
        c->len -= head + cl;
        if (*out_len + resp_len <= BUF_SIZE) {
            memcpy(out + *out_len, resp, resp_len);
            *out_len += resp_len;
        }
        n++;
    }
    return n;
}

static void serve(int lfd, int status)
{
    char resp[128];
    int resp_len =
        snprintf(resp, sizeof(resp), "HTTP/1.1 %d OK\r\nContent-Length: 0\r\n\r\n", status);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    static char out[BUF_SIZE];
    for (;;) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c == NULL) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    continue;
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                c = calloc(1, sizeof(*c));
                c->fd = fd;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                continue;
            }
            ssize_t r = read(c->fd, c->buf + c->len, BUF_SIZE - c->len);
            if (r < 0 && errno == EAGAIN)
                continue;
            size_t out_len = 0;
            if (r > 0)
                c->len += (size_t)r;
            if (r <= 0 || frame(c, out, &out_len, resp, (size_t)resp_len) < 0) {
                close(c->fd);
                free(c);
                continue;
            }
            /* Responses are tiny; a blocking-style retry loop is fine for a benchmark sink. */
            size_t off = 0;
            while (off < out_len) {
                ssize_t w = write(c->fd, out + off, out_len - off);
                if (w < 0 && errno == EAGAIN)
                    continue;
                if (w <= 0)
                    break;
                off += (size_t)w;
            }
        }
    }
}

int rc_bench_sink_start(int status, int *port, pid_t *pid)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        return -errno;
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (bind(lfd, (struct sockaddr *)&a, len) < 0 || listen(lfd, 1024) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) < 0) {
        int rc = -errno;
        close(lfd);
        return rc;
    }
    pid_t child = fork();
    if (child < 0) {
        int rc = -errno;
        close(lfd);
        return rc;
    }
    if (child == 0) {
        /* Die with the benchmark even if it is killed before it can stop us. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        serve(lfd, status);
        _exit(0);
    }
    close(lfd);
    *port = ntohs(a.sin_port);
    *pid = child;
    return 0;
}

void rc_bench_sink_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}
