/* Fuzz target for the whole ingress path: the input is the raw byte stream of one client
 * connection (any number of requests), fed over loopback TCP to the real server (llhttp,
 * limits, routing, CloudEvents decoding and validation, record encoding, ring claim/commit).
 * Set up once per process: a libuv loop with the ingress server and a small ring whose shm
 * name is removed right after creation. Every input must leave no connection open. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "core/config.h"
#include "net/http/http_server.h"
#include "net/ingress.h"
#include "shm/ring_name.h"
#include "net/storage/storage.h"
#include "shm/ring.h"

static uv_loop_t loop;
static rc_http_server_t *srv;
static rc_ingress_t *ig;
static rc_ingress_broker_t broker;
static rc_config_t cfg;
static int port;

static void setup(void)
{
    if (rc_config_init_default(&cfg) != 0)
        abort();
    cfg.limits.max_event_bytes = 64 * 1024;
    cfg.limits.max_batch_bytes = 64 * 1024;
    cfg.limits.max_batch_events = 64;
    char prefix[32], name[RC_RING_NAME_MAX + 1], err[256];
    snprintf(prefix, sizeof(prefix), "rcfuzz%d", (int)getpid());
    rc_storage_config_t sc = {.kind = RC_STORAGE_SHM,
                              .ns = "default",
                              .broker = "default",
                              .prefix = prefix,
                              .capacity = 64 * 1024}; /* small: wrap-around and padding too */
    if (rc_storage_open(&sc, &broker.store, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_ingress: %s\n", err);
        abort();
    }
    /* The mappings stay; nothing is left in /dev/shm (the ring, and the store's time index). */
    if (rc_ring_name_for(prefix, "default", "default", name, sizeof(name)) == 0) {
        char ix[RC_RING_NAME_MAX + 16];
        rc_ring_unlink(name);
        snprintf(ix, sizeof(ix), "/%s.timeindex", name);
        shm_unlink(ix);
    }
    broker.ns = "default";
    broker.name = "default";
    snprintf(broker.label, sizeof(broker.label), "default/default");
    ig = aligned_alloc(64, sizeof(*ig));
    if (ig == NULL || rc_ingress_init(ig, &broker, 1, &cfg.limits, 1) != 0)
        abort();
    if (uv_loop_init(&loop) != 0)
        abort();
    rc_http_server_options_t o;
    memset(&o, 0, sizeof(o));
    o.host = "127.0.0.1";
    o.limits.max_body_bytes = cfg.limits.max_batch_bytes;
    o.limits.max_header_bytes = 8 * 1024;
    rc_ingress_handler(ig, &o.handler);
    if (rc_http_server_create(&loop, &o, &srv) != 0)
        abort();
    port = rc_http_server_port(srv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (srv == NULL)
        setup();
    if (size > 256 * 1024)
        return 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        abort();
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS)
        abort();
    size_t sent = 0;
    int eof = 0, shut = 0;
    char buf[65536];
    /* Interleave: the server's loop runs, the client writes what fits, reads and discards
     * answers, half-closes when everything is sent; stop when the server closed. */
    for (int i = 0; i < 200000 && !eof; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (sent < size) {
            ssize_t w = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN)
                sent = size; /* the server closed: stop sending */
        } else if (!shut) {
            shutdown(fd, SHUT_WR);
            shut = 1;
        }
        for (;;) {
            ssize_t r = recv(fd, buf, sizeof(buf), 0);
            if (r > 0)
                continue;
            if (r == 0 || (errno != EAGAIN && errno != EINTR))
                eof = 1;
            break;
        }
    }
    close(fd);
    for (int i = 0; i < 1000 && rc_http_server_connections(srv) > 0; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (rc_http_server_connections(srv) != 0) {
        fprintf(stderr, "fuzz_ingress: a connection outlived its input\n");
        abort();
    }
    return 0;
}
