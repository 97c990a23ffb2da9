/* Ordered delivery per partition key (ordering.h; docs/delivery.md, "Ordered delivery").
 *
 * Each key with events in the window has a node: a copy of the key (the records of its events
 * may leave the ring before the node does: an event given up for lag while its request is out
 * holds its key until the request is over) and the chain of its window entries, oldest first.
 * The nodes live in a pool sized to the window, found through an open-addressing table twice
 * its size; a node leaves the table when its last entry is released. */
#include "net/delivery/ordering.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/delivery/worker_internal.h"

#define KEY_INLINE 40 /* keys up to this long are kept in the node itself */

struct rc__okey_s {
    uint64_t hash;
    const char *k; /* buf, or its own allocation for a longer key */
    size_t len;
    rc__wentry_t *head, *tail;
    rc__okey_t *next_free;
    char buf[KEY_INLINE];
};

struct rc__order_s {
    rc__okey_t **tab; /* mask + 1 slots, NULL: empty */
    uint32_t mask;
    rc__okey_t *pool, *free; /* one node per place in the window */
    uint32_t max_send;       /* the trigger's max-inflight: requests out at once */
    uint32_t held;           /* entries in RC__E_HELD: in the window, never sent yet */
    rc_ce_key_t key;         /* "partitionkey", compiled for record lookups */
    int warned;
};

static uint64_t key_hash(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a, 64-bit, then a final mix */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

int rc__order_setup(rc__wtrig_t *t)
{
    const rc_config_trigger_t *cfg = t->wt->cfg;
    if (cfg->ordering != RC_ORDERING_PARTITIONKEY || cfg->dapr != NULL)
        return 0;
    rc__order_t *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return -ENOMEM;
    o->max_send = t->max_win;
    uint32_t win = t->max_win + RC__ORDER_LOOKAHEAD;
    uint32_t size = 1;
    while (size < 2 * win)
        size *= 2;
    o->tab = calloc(size, sizeof(*o->tab));
    o->pool = calloc(win, sizeof(*o->pool));
    if (o->tab == NULL || o->pool == NULL) {
        free(o->tab);
        free(o->pool);
        free(o);
        return -ENOMEM;
    }
    o->mask = size - 1;
    for (uint32_t i = 0; i < win; i++) {
        o->pool[i].next_free = o->free;
        o->free = &o->pool[i];
    }
    rc_ce_key_init(&o->key, RC_STR("partitionkey"));
    t->max_win = win;
    t->order = o;
    return 0;
}

void rc__order_close(rc__wtrig_t *t)
{
    rc__order_t *o = t->order;
    if (o == NULL)
        return;
    for (uint32_t i = 0; i <= o->mask; i++)
        if (o->tab[i] != NULL && o->tab[i]->k != o->tab[i]->buf)
            free((void *)o->tab[i]->k);
    free(o->tab);
    free(o->pool);
    free(o);
    t->order = NULL;
}

/* The slot of the node of key (p, n, h), or of the empty slot where it would go. */
static uint32_t slot_of(const rc__order_t *o, const char *p, size_t n, uint64_t h)
{
    uint32_t i = (uint32_t)h & o->mask;
    while (o->tab[i] != NULL) {
        const rc__okey_t *k = o->tab[i];
        if (k->hash == h && k->len == n && memcmp(k->k, p, n) == 0)
            return i;
        i = (i + 1) & o->mask;
    }
    return i;
}

/* Takes node `k` out of the table (linear probing: later nodes of the same run move back into
 * the hole, so lookups never stop early at it) and back to the pool. */
static void key_remove(rc__order_t *o, rc__okey_t *k)
{
    uint32_t i = (uint32_t)k->hash & o->mask;
    while (o->tab[i] != k)
        i = (i + 1) & o->mask;
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & o->mask; o->tab[j] != NULL; j = (j + 1) & o->mask) {
        uint32_t home = (uint32_t)o->tab[j]->hash & o->mask;
        /* tab[j] may fill the hole when its home is not cyclically within (hole, j]. */
        if (((j - home) & o->mask) >= ((j - hole) & o->mask)) {
            o->tab[hole] = o->tab[j];
            hole = j;
        }
    }
    o->tab[hole] = NULL;
    if (k->k != k->buf)
        free((void *)k->k);
    k->k = NULL;
    k->next_free = o->free;
    o->free = k;
}

void rc__order_admit(rc__wtrig_t *t, rc__wentry_t *e)
{
    rc__order_t *o = t->order;
    rc_ce_value_t v;
    e->okey = NULL;
    e->onext = NULL;
    if (rc_record_get_key(&e->ev->rv, &o->key, &v) != 0)
        return; /* no partitionkey: unordered */
    uint64_t h = key_hash(v.value.ptr, v.value.len);
    uint32_t i = slot_of(o, v.value.ptr, v.value.len, h);
    rc__okey_t *k = o->tab[i];
    if (k != NULL) {
        k->tail->onext = e;
        k->tail = e;
        e->okey = k;
        e->state = RC__E_HELD;
        o->held++;
        return;
    }
    char *copy = NULL;
    if (v.value.len > KEY_INLINE && (copy = malloc(v.value.len)) == NULL) {
        rc_log_warn("worker", "trigger %s/%s: out of memory for a partition key; sent unordered",
                    t->wt->cfg->ns, t->wt->cfg->name);
        return;
    }
    /* The pool has a node per place in the window (abandoned requests included), and every
     * node holds at least one of them: it is never empty here. Should it be, the event goes
     * unordered and says so, rather than the worker stopping. */
    if ((k = o->free) == NULL) {
        free(copy);
        if (!o->warned)
            rc_log_error("worker",
                         "trigger %s/%s: no room for another partition key; sent "
                         "unordered (a bug)",
                         t->wt->cfg->ns, t->wt->cfg->name);
        o->warned = 1;
        return;
    }
    o->free = k->next_free;
    k->hash = h;
    k->len = v.value.len;
    k->k = copy != NULL ? copy : k->buf;
    memcpy((char *)k->k, v.value.ptr, v.value.len);
    k->head = k->tail = e;
    o->tab[i] = k;
    e->okey = k;
}

void rc__order_release(rc__wentry_t *e)
{
    rc__okey_t *k = e->okey;
    rc__wentry_t *next = e->onext;
    rc__order_t *o = e->t->order;
    e->okey = NULL;
    e->onext = NULL;
    if (e->state == RC__E_HELD)
        o->held--; /* given up for lag before its turn */
    if (k->head == e) {
        k->head = next;
        if (next != NULL && next->state == RC__E_HELD) {
            o->held--;
            next->state = RC__E_WAITING;
            next->due_ns = 0; /* at once: the turn after this one sends it */
        }
    } else {
        /* Not the first of its key: only an event given up for lag (shed) leaves that way. */
        rc__wentry_t *p = k->head;
        while (p->onext != e)
            p = p->onext;
        p->onext = next;
        if (k->tail == e)
            k->tail = p;
    }
    if (k->head == NULL)
        key_remove(o, k);
}

uint32_t rc__order_max_send(const rc__wtrig_t *t)
{
    return t->order->max_send;
}

uint32_t rc__order_held(const rc__wtrig_t *t)
{
    return t->order->held;
}

int rc__order_may_send(const rc__wtrig_t *t)
{
    return t->sending + t->abandoned < t->order->max_send;
}
