/* Test helpers for the unit tests that open a store and publish into it: a small store (64 KiB,
 * 8 readers) of broker ns/b under a directory the test owns, and one fixed-size event with a
 * given id published the way the ingress does (rc_publish). */
#ifndef RC_TESTS_STORAGE_UTIL_H
#define RC_TESTS_STORAGE_UTIL_H

#include "core/arena.h"
#include "core/event.h"
#include "net/storage/publish.h"
#include "net/storage/storage.h"
#include "tests/test.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Publishes event `id` (type t, 40 bytes of data) with arrival time `arrival_ns` (0: now). */
static inline void su_publish(rc_storage_t *s, const char *id, int64_t arrival_ns)
{
    rc_ce_ext_t ext[4];
    rc_event_t ev;
    rc_event_init(&ev, ext, 4);
    ev.specversion = RC_STR("1.0");
    ev.id = (rc_str_t){id, strlen(id)};
    ev.source = RC_STR("/t");
    ev.type = RC_STR("t");
    ev.data = RC_STR("0123456789012345678901234567890123456789");
    char scratch[2048], msg[160];
    rc_arena_t arena;
    rc_arena_init(&arena, scratch, sizeof(scratch), 0);
    rc_publish_opts_t o = {.arrival_ns = arrival_ns, .broker = "ns/b"};
    int rc = rc_publish(s, &ev, 1, &arena, &o, msg, sizeof(msg));
    if (rc != 0)
        RC_TEST_FAIL("publish %s: %d %s", id, rc, msg);
    rc_arena_close(&arena);
}

/* Opens broker ns/b as a `kind` store of 64 KiB with 8 readers: a file store under `dir`, a
 * memory store's shm objects named after `tag` and this process. */
static inline rc_storage_t *su_open_store(rc_storage_kind_t kind, const char *dir, const char *tag)
{
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "%s%d", tag, (int)getpid());
    rc_storage_config_t c = {.kind = kind,
                             .ns = "ns",
                             .broker = "b",
                             .prefix = prefix,
                             .directory = dir,
                             .capacity = 1u << 16,
                             .readers = 8};
    rc_storage_t *s = NULL;
    char err[512];
    int rc = rc_storage_open(&c, &s, err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("open: %d %s", rc, err);
    return s;
}

#endif
