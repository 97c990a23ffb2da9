/* Test helper for integration tests: attaches a LOSSLESS reader to a ring by shm name (so it
 * gates producers: a reader that does not read lets the ring fill up) and obeys one command per
 * line on stdin, answering one line on stdout:
 *   ready?   -> "ready"            (printed once attached, before any command)
 *   drain    -> "drained N"        (reads every committed record, N = how many)
 *   quit/EOF -> closes the reader and exits 0
 * Exit 1 when the ring cannot be opened. Bounded: it never waits for records. */
#include <stdio.h>
#include <string.h>

#include "shm/reader.h"
#include "shm/ring.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: ring_holder SHM_NAME\n");
        return 2;
    }
    char err[256];
    rc_ring_t *ring = NULL;
    if (rc_ring_open(argv[1], &ring, err, sizeof(err)) != 0) {
        fprintf(stderr, "ring_holder: %s\n", err);
        return 1;
    }
    rc_reader_opts_t o;
    memset(&o, 0, sizeof(o));
    o.mode = RC_READER_LOSSLESS;
    o.start = RC_START_LATEST;
    o.name = "ring_holder";
    rc_reader_t *r = NULL;
    int rc = rc_reader_open(ring, &o, &r);
    if (rc != 0) {
        fprintf(stderr, "ring_holder: reader: %s\n", rc_strerror(rc));
        rc_ring_close(ring);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        if (strncmp(line, "drain", 5) == 0) {
            unsigned long n = 0;
            rc_ring_view_t v;
            while (rc_reader_poll(r, &v) == 0)
                n++;
            printf("drained %lu\n", n);
            fflush(stdout);
        } else if (strncmp(line, "quit", 4) == 0) {
            break;
        }
    }
    rc_reader_close(r);
    rc_ring_close(ring);
    return 0;
}
