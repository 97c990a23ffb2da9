/* Held answers for durability sync (net/held.h). The holder is shared by its loop and the
 * stores' flusher threads: refs counts the loop's handle and every wait not yet handed back,
 * so the last of them frees it (the flushers run until the stores close, after the loops). */
#include "net/held.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct rc_held_s {
    uv_async_t async;
    pthread_mutex_t mu;
    rc_http_server_t *srv;
    rc_held_wait_t *ready; /* finished waits, newest first */
    int closed;
    uint32_t refs;
};

static void held_unref(rc_held_t *h)
{
    /* mu held */
    if (--h->refs == 0) {
        pthread_mutex_unlock(&h->mu);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return;
    }
    pthread_mutex_unlock(&h->mu);
}

/* The flusher's thread: hand the wait to the loop. */
static void on_flushed(rc_storage_durable_t *sw, int rc)
{
    rc_held_wait_t *w = (rc_held_wait_t *)sw;
    rc_held_t *h = w->held;
    w->rc = rc;
    pthread_mutex_lock(&h->mu);
    if (h->closed) {
        free(w);
        held_unref(h);
        return;
    }
    w->next = h->ready;
    h->ready = w;
    uv_async_send(&h->async);
    pthread_mutex_unlock(&h->mu);
}

static void on_async(uv_async_t *a)
{
    rc_held_t *h = a->data;
    pthread_mutex_lock(&h->mu);
    rc_held_wait_t *list = h->ready;
    h->ready = NULL;
    pthread_mutex_unlock(&h->mu);
    /* Oldest first: the list was pushed newest first. */
    rc_held_wait_t *rev = NULL;
    while (list != NULL) {
        rc_held_wait_t *w = list;
        list = w->next;
        w->next = rev;
        rev = w;
    }
    while (rev != NULL) {
        rc_held_wait_t *w = rev;
        rev = w->next;
        rc_http_server_response_t res;
        memset(&res, 0, sizeof(res));
        w->answer(w, w->rc, &res);
        (void)rc_http_server_respond(h->srv, w->conn_id, &res); /* -ENOENT: the client left */
        free(w);
        pthread_mutex_lock(&h->mu);
        h->refs--; /* the loop's own ref keeps it above 0 here */
        pthread_mutex_unlock(&h->mu);
    }
}

int rc_held_attach(uv_loop_t *loop, rc_http_server_t *srv, rc_held_t **out)
{
    rc_held_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    pthread_mutex_init(&h->mu, NULL);
    h->srv = srv;
    h->refs = 1;
    int rc = uv_async_init(loop, &h->async, on_async);
    if (rc != 0) {
        pthread_mutex_destroy(&h->mu);
        free(h);
        return rc;
    }
    h->async.data = h;
    *out = h;
    return 0;
}

int rc_held_wait(rc_held_t *h, rc_storage_t *store, uint64_t ticket, rc_held_wait_t *w)
{
    w->w.ticket = ticket;
    w->w.done = on_flushed;
    w->held = h;
    w->next = NULL;
    pthread_mutex_lock(&h->mu);
    h->refs++;
    pthread_mutex_unlock(&h->mu);
    int rc = rc_storage_durable_wait(store, &w->w);
    if (rc == 0)
        return 1;
    pthread_mutex_lock(&h->mu);
    h->refs--;
    pthread_mutex_unlock(&h->mu);
    return rc == 1 ? 0 : rc;
}

static void on_closed(uv_handle_t *handle)
{
    rc_held_t *h = handle->data;
    pthread_mutex_lock(&h->mu);
    for (rc_held_wait_t *w = h->ready, *next; w != NULL; w = next) {
        next = w->next;
        free(w);
        h->refs--;
    }
    h->ready = NULL;
    held_unref(h);
}

void rc_held_detach(rc_held_t *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    h->closed = 1;
    pthread_mutex_unlock(&h->mu);
    uv_close((uv_handle_t *)&h->async, on_closed);
}

int rc_held_store_syncs(rc_storage_t *s)
{
    rc_storage_stats_t st;
    rc_storage_stats(s, &st);
    /* A redis store's commit completes when Redis answers: always held. */
    return st.durability != NULL &&
           (strcmp(st.durability, "sync") == 0 || strcmp(st.durability, "redis") == 0);
}
