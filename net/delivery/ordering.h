/* Ordered delivery per partition key (a trigger with ringcast.dev/ordering: partitionkey;
 * docs/delivery.md, "Ordered delivery"). Inside a worker process, one thread.
 *
 * The window of an ordered trigger is wider than its max-inflight (a lookahead), and every
 * window entry whose event has the CloudEvents `partitionkey` extension joins its key's chain,
 * in ingest order. Only the first entry of a chain may be attempted; the others wait in
 * RC__E_HELD until the one before them is finished (delivered, dead-lettered, dropped or given
 * up for lag). At most max-inflight requests are out at once. An unordered trigger has no
 * ordering state (t->order NULL) and pays one pointer test per finished event. */
#ifndef RC_NET_ORDERING_H
#define RC_NET_ORDERING_H

#include <stdint.h>

#include "net/http/http_client.h"

struct rc__wtrig_s;
struct rc__wentry_s;

/** Events a window of an ordered trigger may hold beyond its max-inflight, so that the events
 *  of a key that holds back do not take every place in the window (head-of-line blocking). */
#define RC__ORDER_LOOKAHEAD 1024u

/** One partition key with events in the window: its chain, oldest first. */
typedef struct rc__okey_s rc__okey_t;

/** An ordered trigger's keys (opaque). */
typedef struct rc__order_s rc__order_t;

/** Makes `t` ordered when its configuration asks for it: t->order, and t->max_win widened by
 *  the lookahead (its max-inflight stays the limit of requests out at once). Returns 0 or
 *  -ENOMEM. */
int rc__order_setup(struct rc__wtrig_s *t);

/** Frees t->order (NULL: a no-op). Its entries are freed by their trigger. */
void rc__order_close(struct rc__wtrig_s *t);

/** Entry `e` of ordered trigger `t` just entered the window (RC__E_WAITING, due at once): it
 *  joins its key's chain, and waits (RC__E_HELD) behind an earlier event of the same key. */
void rc__order_admit(struct rc__wtrig_s *t, struct rc__wentry_s *e);

/** Entry `e` (e->okey set) is finished or given up: it leaves its key's chain, and the next
 *  event of the key, if it was held, may go at once. */
void rc__order_release(struct rc__wentry_s *e);

/** The most requests ordered trigger `t` has out at once: its max-inflight (t->max_win is its
 *  window, wider by the lookahead). */
uint32_t rc__order_max_send(const struct rc__wtrig_s *t);

/** How many entries of ordered trigger `t`'s window wait behind an earlier event of their key
 *  (never sent yet): the in-flight gauge leaves them out. */
uint32_t rc__order_held(const struct rc__wtrig_s *t);

/** Whether ordered trigger `t` may send one more request now: fewer than its max-inflight are
 *  out (run_timers asks before each; held entries are not WAITING and are skipped there). */
int rc__order_may_send(const struct rc__wtrig_s *t);

#endif
