/* The storage interface: one call per operation, dispatched to the store's back end. */
#include "net/storage/storage_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

int rc_storage_open(const rc_storage_config_t *cfg, rc_storage_t **out, char *err, size_t errlen)
{
    switch (cfg->kind) {
    case RC_STORAGE_SHM:
        return rc__storage_shm_open(cfg, out, err, errlen);
    case RC_STORAGE_FILE:
        return rc__storage_file_open(cfg, out, err, errlen);
    case RC_STORAGE_REDIS:
        return rc__storage_redis_open(cfg, out, err, errlen);
    }
    snprintf(err, errlen, "unknown storage kind %d", (int)cfg->kind);
    return -EINVAL;
}

int rc_storage_attach(const rc_storage_t *s, rc_storage_t **out, char *err, size_t errlen)
{
    return s->ops->attach(s, out, err, errlen);
}

void rc_storage_close(rc_storage_t *s)
{
    if (s != NULL)
        s->ops->close(s);
}

int rc_storage_claim(rc_storage_t *s, rc_storage_rec_t *recs, uint32_t n, rc_storage_claim_t *claim)
{
    if (n == 0)
        return -EINVAL;
    /* storage.h promises zeroed commit flags after a claim, whatever the back end. */
    claim->flags = 0;
    claim->ticket = 0;
    return s->ops->claim(s, recs, n, claim);
}

int rc_storage_durable_wait(rc_storage_t *s, rc_storage_durable_t *w)
{
    return s->ops->durable_wait != NULL ? s->ops->durable_wait(s, w) : 1;
}

int rc_storage_sync(rc_storage_t *s)
{
    return s->ops->sync != NULL ? s->ops->sync(s) : 0;
}

int rc_storage_commit(rc_storage_t *s, rc_storage_claim_t *claim)
{
    return s->ops->commit(s, claim);
}

void rc_storage_wake(rc_storage_t *s)
{
    if (s->ops->wake_sleepers != NULL)
        s->ops->wake_sleepers(s);
}

void rc_storage_abort(rc_storage_t *s, rc_storage_claim_t *claim)
{
    s->ops->abort(s, claim);
}

int rc_storage_reader_open(rc_storage_t *s, const rc_storage_reader_opts_t *o,
                           rc_storage_reader_t **out)
{
    return s->ops->reader_open(s, o, out);
}

int rc_storage_group_open(rc_storage_t *s, const rc_storage_group_opts_t *o,
                          rc_storage_reader_t **out, char *err, size_t errlen)
{
    if (s->ops->group_open == NULL) {
        snprintf(err, errlen, "this store keeps no consumer groups");
        return -ENOTSUP;
    }
    return s->ops->group_open(s, o, out, err, errlen);
}

int rc_storage_group_stats(const rc_storage_reader_t *r, rc_storage_group_stats_t *st)
{
    if (r == NULL || r->ops->group_stats == NULL)
        return -ENOTSUP;
    return r->ops->group_stats(r, st);
}

void rc_storage_reader_close(rc_storage_reader_t *r)
{
    if (r != NULL)
        r->ops->reader_close(r, 0);
}

void rc_storage_reader_forget(rc_storage_reader_t *r)
{
    if (r != NULL)
        r->ops->reader_close(r, 1);
}

int rc_storage_poll(rc_storage_reader_t *r, rc_storage_view_t *v)
{
    return r->ops->poll(r, v);
}

int rc_storage_wait(rc_storage_reader_t *r, rc_storage_view_t *v, int64_t timeout_ns)
{
    return r->ops->wait(r, v, timeout_ns);
}

int rc_storage_prepare_sleep(rc_storage_reader_t *r, const uint32_t **word, uint32_t *val)
{
    if (r->ops->prepare_sleep == NULL)
        return -ENOTSUP;
    return r->ops->prepare_sleep(r, word, val);
}

int rc_storage_ack(rc_storage_reader_t *r, uint64_t pos)
{
    return r->ops->ack(r, pos);
}

uint64_t rc_storage_position(const rc_storage_reader_t *r)
{
    return r->ops->position(r);
}

uint64_t rc_storage_acked(const rc_storage_reader_t *r)
{
    return r->ops->acked(r);
}

int rc_storage_resume(rc_storage_reader_t *r)
{
    return r->ops->resume(r);
}

int rc_storage_find_cursor(rc_storage_t *s, const char *name, uint64_t *pos)
{
    return s->ops->find_cursor(s, name, pos);
}

int rc_storage_reclaim(rc_storage_t *s)
{
    return s->ops->reclaim(s);
}

void rc_storage_stats(rc_storage_t *s, rc_storage_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    s->ops->stats(s, st);
}

int rc_storage_cursors_open(rc_storage_t *s, uint32_t slots, rc_storage_cursors_t **out,
                            int *adopted, char *err, size_t errlen)
{
    int rc = s->ops->cursors_open(s, slots, out, adopted, err, errlen);
    if (rc != 0 || !*adopted)
        return rc;
    /* The identity should make this impossible; a cursor past the head would make its owner
     * skip events this store has not had yet, so it is checked once more. */
    rc_storage_stats_t st;
    rc_storage_stats(s, &st);
    for (rc_storage_cursor_t *c = rc_storage_cursor_next(*out, NULL); c != NULL;
         c = rc_storage_cursor_next(*out, c)) {
        if (atomic_load_explicit(&c->seq, memory_order_relaxed) > st.head_seq ||
            atomic_load_explicit(&c->pos, memory_order_relaxed) > st.head) {
            rc__cursors_reset(*out, "a cursor is past the newest event");
            *adopted = 0;
            break;
        }
    }
    return 0;
}

int rc_storage_holder(rc_storage_t *s, rc_storage_holder_t *out)
{
    return s->ops->holder(s, out);
}

int rc_storage_groups(rc_storage_t *s, uint64_t default_limit, uint64_t *skipped,
                      rc_storage_group_t *out, size_t max)
{
    return s->ops->groups(s, default_limit, skipped, out, max);
}

int rc_storage_readers(rc_storage_t *s, rc_storage_local_reader_t *out, size_t max)
{
    return s->ops->readers(s, out, max);
}

int rc_storage_seek_time(rc_storage_t *s, int64_t t_ns, rc_storage_seek_t *out)
{
    return s->ops->seek_time(s, t_ns, out);
}

int rc_storage_scan(rc_storage_t *s, int64_t since_ns, uint64_t max, rc_storage_scan_cb cb,
                    void *arg, rc_storage_scan_t *out)
{
    if (s == NULL || cb == NULL || out == NULL)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    return s->ops->scan != NULL ? s->ops->scan(s, since_ns, max, cb, arg, out) : -ENOTSUP;
}

int rc_storage_read_at(rc_storage_t *s, uint64_t pos, uint64_t seq, void *buf, size_t cap,
                       size_t *len)
{
    if (s == NULL || len == NULL || (buf == NULL && cap > 0) || ((uintptr_t)buf & 7u) != 0)
        return -EINVAL;
    return s->ops->read_at != NULL ? s->ops->read_at(s, pos, seq, buf, cap, len) : -ENOTSUP;
}
