/* A cursor's watch: a thread that sleeps in the store (the back end's wait_past) on behalf of
 * the cursor's owner, who sleeps elsewhere, and wakes the owner through its callback when an
 * event can be read where the owner found none.
 *
 * The owner arms the watch with its read position each time it goes to sleep; the thread fires
 * once per arming and then parks until the next one. So an owner that keeps finding work costs
 * the watch nothing (it is parked, or asleep in the store at a position that has not come
 * yet), and the store's producers pay for a wake-up only while the owner really sleeps: the
 * shm back end raises the ring's sleepers flag just as a sleeping reader does.
 *
 * `want` carries the arming: a position, or WATCH_IDLE once the watch fired (or before the
 * first arming). The owner sets it (exchange); the thread clears it (compare-exchange from the
 * position it saw readable, so an arming that came meanwhile is never lost). */
#include "net/storage/storage_internal.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WATCH_IDLE UINT64_MAX
/* Upper bounds of one sleep. Arming, stopping and the store all wake the thread when they need
 * it; the bounds only cap what a wake-up lost in a race costs (rc_storage_watch_stop's wake of
 * the store can come just before the thread goes to sleep there). */
#define PARK_NS (1000 * 1000000ll)
#define WAIT_NS (100 * 1000000ll)

struct rc_storage_watch_s {
    rc_storage_reader_t *r;
    rc_storage_wake_cb wake;
    void *arg;
    pthread_t thread;
    _Atomic uint64_t want;  /* the position armed, or WATCH_IDLE */
    _Atomic uint32_t armed; /* futex word: bumped when an arming ends the thread's park */
    _Atomic int stop;
};

static void futex_private(_Atomic uint32_t *word, int op, uint32_t val, int64_t timeout_ns)
{
    struct timespec ts = {timeout_ns / 1000000000, timeout_ns % 1000000000};
    (void)syscall(SYS_futex, word, op, val, op == FUTEX_WAIT_PRIVATE ? &ts : NULL, NULL, 0);
}

static void *watch_main(void *arg)
{
    rc_storage_watch_t *w = arg;
    while (!atomic_load_explicit(&w->stop, memory_order_acquire)) {
        /* Acquire: pairs with the release increment in rc_storage_watch_arm, so a count that
         * shows the new arming also shows its position. Read before `want`: an arming after
         * this load changes the count, and the futex wait below then returns at once. */
        uint32_t seen = atomic_load_explicit(&w->armed, memory_order_acquire);
        uint64_t pos = atomic_load_explicit(&w->want, memory_order_acquire);
        if (pos == WATCH_IDLE) {
            futex_private(&w->armed, FUTEX_WAIT_PRIVATE, seen, PARK_NS);
            continue;
        }
        if (w->r->ops->wait_past(w->r, pos, WAIT_NS) != 0)
            continue; /* woken for another reason, or a signal: look at `want` again */
        /* Readable. Fire only if the owner still sleeps on this arming: had it armed again,
         * it polled past `pos` meanwhile, and its new position is what counts. */
        if (atomic_compare_exchange_strong_explicit(&w->want, &pos, WATCH_IDLE,
                                                    memory_order_acq_rel, memory_order_acquire))
            w->wake(w->arg);
    }
    return NULL;
}

int rc_storage_watch_start(rc_storage_reader_t *r, rc_storage_wake_cb wake, void *arg,
                           rc_storage_watch_t **out)
{
    rc_storage_watch_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    w->r = r;
    w->wake = wake;
    w->arg = arg;
    atomic_init(&w->want, WATCH_IDLE);
    /* Signals stay with the owner's thread: a SIGTERM taken here would set the owner's flag
     * but leave the owner asleep. The thread inherits this mask. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, watch_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        free(w);
        return -rc;
    }
    *out = w;
    return 0;
}

void rc_storage_watch_arm(rc_storage_watch_t *w)
{
    uint64_t pos = w->r->ops->position(w->r);
    if (atomic_load_explicit(&w->want, memory_order_relaxed) == pos)
        return; /* armed there already (or it fires right now, which is as good) */
    /* Release: the thread that acquires this position acts on an owner who polled up to it. */
    uint64_t old = atomic_exchange_explicit(&w->want, pos, memory_order_acq_rel);
    if (old == WATCH_IDLE) {
        /* Release: pairs with the thread's acquire load of `armed` (see watch_main). */
        atomic_fetch_add_explicit(&w->armed, 1, memory_order_release);
        futex_private(&w->armed, FUTEX_WAKE_PRIVATE, 1, 0);
    }
}

void rc_storage_watch_stop(rc_storage_watch_t *w)
{
    if (w == NULL)
        return;
    atomic_store_explicit(&w->stop, 1, memory_order_release);
    atomic_fetch_add_explicit(&w->armed, 1, memory_order_release);
    futex_private(&w->armed, FUTEX_WAKE_PRIVATE, 1, 0);
    /* The thread may be asleep in the store: wake it there (the shm back end wakes every
     * sleeper of the ring, who each look again and sleep on). */
    w->r->ops->wake(w->r);
    pthread_join(w->thread, NULL);
    free(w);
}
