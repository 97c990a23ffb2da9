/* Runtime changes: what the admin API's POST /apis/ringcast.dev/v1alpha1/apply and .../delete
 * do with a multi-document YAML body (net/admin.c routes them; docs/operations.md, "Runtime
 * changes"). The documents are merged into the state file (what earlier applies left, loaded
 * after the config file: core/config_layers.c), the whole is checked as a reload would check
 * it, and only then is the state file replaced (written aside, fsync, rename, fsync of the
 * directory); the caller then reloads through the SIGHUP path. On any failure nothing changes. */
#ifndef RC_NET_APPLY_H
#define RC_NET_APPLY_H

#include <stddef.h>

#include "core/config.h"

typedef enum {
    RC_APPLY_APPLY = 0,  /* create or replace each document's object */
    RC_APPLY_DELETE = 1, /* remove each document's object (only its identity is read) */
} rc_apply_op_t;

typedef struct {
    const char *config; /* the config file; NULL when serve runs without --config */
    const char *state;  /* the state file (rc_config_t.state_file) */
    /** What a reload checks beyond the loader (rc_supervisor_check); NULL: nothing. */
    int (*check)(void *arg, const rc_config_t *nc, char *err, size_t err_len);
    void *arg;
} rc_apply_ctx_t;

/** Runs one apply or delete of the documents in body[0..len). Returns the HTTP status of the
 *  answer and sets *json (malloc'd, the caller frees): 200 with an ApplyResult (one item per
 *  document: object, action created|configured|unchanged|deleted|skipped, message), or a
 *  Kubernetes Status: 400 (not YAML, a document without kind or name, a RingcastConfig, a
 *  document twice), 404 (delete: not found), 409 (delete of an object of the config file; no
 *  config file), 422 (the result does not load or a reload would refuse it; the loader's
 *  message names the body as "(request)" with its lines), 500 (the state file cannot be
 *  written). *changed is 1 when the state file was replaced: the caller reloads then. Main
 *  thread (it blocks for the fsyncs of the write). */
int rc_apply_run(const rc_apply_ctx_t *ctx, rc_apply_op_t op, const char *body, size_t len,
                 char **json, int *changed);

#endif
