#include "net/http/http_url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config_uri.h"
#include "core/errors.h"

_Static_assert(RC_CONFIG_URI_HOST_MAX + 8 < RC_HTTP_AUTHORITY_MAX,
               "a parsed authority fits rc_http_url_t.authority");

/* The message names the URL with its user information masked: the parser refuses user
 * information, but a refused URL is still shown, and it must not put a password in a log. */
__attribute__((format(printf, 4, 5))) static int bad(char *err, size_t errlen, const char *url,
                                                     const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        char why[300], shown[RC_HTTP_AUTHORITY_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        rc_config_uri_redact(url, shown, sizeof(shown));
        size_t n = strlen(shown);
        snprintf(err, errlen, "invalid URL \"%.*s%s\": %s", n > 80 ? 80 : (int)n, shown,
                 n > 80 ? "..." : "", why);
    }
    return RC_EHTTP_BAD_URL;
}

int rc_http_url_parse(const char *url, rc_http_url_t *out, char *err, size_t errlen)
{
    rc_config_uri_t u;
    char why[300];
    if (url == NULL)
        return bad(err, errlen, "", "empty");
    if (rc_config_uri_parse(url, &u, why, sizeof(why)) != 0)
        return bad(err, errlen, url, "%s", why);

    memset(&out->addr, 0, sizeof(out->addr));
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->addr;
    if (u.host_kind == RC_CONFIG_HOST_IPV6) {
        inet_pton(AF_INET6, u.host, &sin6->sin6_addr); /* checked by the parser */
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(u.port);
        out->addrlen = sizeof(*sin6);
    } else if (u.host_kind == RC_CONFIG_HOST_IPV4) {
        inet_pton(AF_INET, u.host, &sin->sin_addr);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(u.port);
        out->addrlen = sizeof(*sin);
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        int gai = getaddrinfo(u.host, NULL, &hints, &res);
        if (gai != 0 || res == NULL)
            return bad(err, errlen, url, "cannot resolve host \"%s\": %s", u.host,
                       gai != 0 ? gai_strerror(gai) : "no address");
        memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
        out->addrlen = res->ai_addrlen;
        if (res->ai_family == AF_INET6)
            sin6->sin6_port = htons(u.port);
        else
            sin->sin_port = htons(u.port);
        freeaddrinfo(res);
    }

    memcpy(out->authority, url + u.authority_off, u.authority_len);
    out->authority[u.authority_len] = '\0';
    if (u.target_len == 0) {
        out->target = "/";
        out->target_len = 1;
    } else {
        out->target = url + u.target_off;
        out->target_len = u.target_len;
    }
    return 0;
}

/* ---- host names of a config ------------------------------------------------------------------
 *
 * Each distinct name is looked up with plain getaddrinfo on a few detached threads, which take
 * names from a shared table and post the answers there; the caller waits on a condition variable
 * until every answer is in or the time is up. When the time is up the caller leaves: the table
 * belongs to whoever is last to let go of it (the caller or the last thread, after a lookup that
 * may take as long as the resolver's own timeouts). glibc's getaddrinfo_a was the obvious tool
 * but its gai_suspend can leave a waiter's stack entry on a request that completes while the
 * waiter returns, which the helper thread then writes to. */

/* Lookup threads at most: enough for a file of services in several namespaces, few enough
 * not to flood a resolver. */
#define LOOKUP_THREADS 8

/* One URI of the config that names a host by name: where it is (for the message) and which
 * lookup answers for it. */
typedef struct {
    char host[RC_CONFIG_URI_HOST_MAX + 1];
    const char *kind; /* "Trigger" or "Broker" */
    const char *ns, *name, *field;
    int line;
    size_t lookup;
} use_t;

typedef struct {
    char name[RC_CONFIG_URI_HOST_MAX + 1];
    int done;
    int gai; /* getaddrinfo's result once done */
} lookup_t;

/* The table the caller and the lookup threads share. Everything below `mu` is guarded by it. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* an answer came in */
    int refs;          /* the caller (until it leaves) and each thread still running */
    size_t next;       /* the next name to look up */
    size_t n;
    lookup_t lk[];
} table_t;

static void table_unref(table_t *t)
{
    pthread_mutex_lock(&t->mu);
    int last = --t->refs == 0;
    pthread_mutex_unlock(&t->mu);
    if (last) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        free(t);
    }
}

static void *lookup_thread(void *arg)
{
    table_t *t = arg;
    pthread_mutex_lock(&t->mu);
    while (t->next < t->n && t->refs > 1) { /* refs == 1: the caller has left, nobody asks */
        lookup_t *l = &t->lk[t->next++];
        pthread_mutex_unlock(&t->mu);
        /* The question the worker asks when it opens the endpoint (rc_http_url_parse), so a
         * name that resolves here resolves there. */
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        int gai = getaddrinfo(l->name, NULL, &hints, &res);
        if (res != NULL)
            freeaddrinfo(res);
        pthread_mutex_lock(&t->mu);
        l->gai = gai;
        l->done = 1;
        pthread_cond_signal(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    table_unref(t);
    return NULL;
}

static int by_host(const void *a, const void *b)
{
    const use_t *x = *(const use_t *const *)a, *y = *(const use_t *const *)b;
    return strcmp(x->host, y->host);
}

/* Adds `uri` to `uses` when its host is a name. URIs were checked at load: one that does not
 * parse here is not this function's to report. */
static void add_use(use_t *uses, size_t *n, const char *uri, int line, const char *kind,
                    const char *ns, const char *name, const char *field)
{
    rc_config_uri_t u;
    if (uri == NULL || rc_config_uri_parse(uri, &u, NULL, 0) != 0 ||
        u.host_kind != RC_CONFIG_HOST_NAME)
        return;
    use_t *x = &uses[(*n)++];
    memcpy(x->host, u.host, sizeof(x->host));
    x->kind = kind;
    x->ns = ns;
    x->name = name;
    x->field = field;
    x->line = line;
}

/* Collects the host names of every subscriber and dead-letter URI of `cfg` into `uses`. */
static size_t collect(const rc_config_t *cfg, use_t *uses)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->broker_count; i++) {
        const rc_config_broker_t *b = &cfg->brokers[i];
        add_use(uses, &n, b->delivery.dead_letter_uri, b->delivery.dead_letter_line, "Broker",
                b->ns, b->name, "spec.delivery.deadLetterSink.uri");
    }
    for (size_t i = 0; i < cfg->trigger_count; i++) {
        const rc_config_trigger_t *t = &cfg->triggers[i];
        add_use(uses, &n, t->subscriber_uri, t->subscriber_line, "Trigger", t->ns, t->name,
                "spec.subscriber.uri");
        add_use(uses, &n, t->delivery.dead_letter_uri, t->delivery.dead_letter_line, "Trigger",
                t->ns, t->name, "spec.delivery.deadLetterSink.uri");
    }
    return n;
}

/* Builds the table of distinct names (a thousand triggers on one service are one lookup) and
 * points each use at its entry. */
static table_t *make_table(use_t *uses, size_t n)
{
    use_t **sorted = calloc(n ? n : 1, sizeof(*sorted));
    table_t *t = calloc(1, sizeof(*t) + n * sizeof(lookup_t));
    if (sorted == NULL || t == NULL) {
        free(sorted);
        free(t);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = &uses[i];
    qsort(sorted, n, sizeof(*sorted), by_host);
    for (size_t i = 0; i < n; i++) {
        if (t->n == 0 || strcmp(sorted[i]->host, t->lk[t->n - 1].name) != 0)
            memcpy(t->lk[t->n++].name, sorted[i]->host, sizeof(t->lk[0].name));
        sorted[i]->lookup = t->n - 1;
    }
    free(sorted);
    return t;
}

/* Starts the lookup threads and waits until every answer is in or `timeout_ms` has passed.
 * Returns 0, or -EAGAIN when not one thread could be started. Called with t->refs == 1. */
static int run_lookups(table_t *t, uint32_t timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);

    pthread_attr_t ta;
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    int started = 0;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n && i < LOOKUP_THREADS; i++) {
        pthread_t th;
        t->refs++; /* before the thread can drop its reference */
        if (pthread_create(&th, &ta, lookup_thread, t) != 0) {
            t->refs--;
            break;
        }
        started++;
    }
    pthread_attr_destroy(&ta);
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < t->n; i++)
            done += t->lk[i].done;
        if (done == t->n || started == 0)
            break;
        if (pthread_cond_timedwait(&t->cv, &t->mu, &deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&t->mu);
    return started > 0 ? 0 : -EAGAIN;
}

/* The first use in the file whose lookup failed or did not answer in time, or NULL. The caller
 * holds t->mu. */
static const use_t *first_failure(const use_t *uses, size_t n, const table_t *t)
{
    const use_t *first = NULL;
    for (size_t i = 0; i < n; i++) {
        const lookup_t *l = &t->lk[uses[i].lookup];
        if ((!l->done || l->gai != 0) && (first == NULL || uses[i].line < first->line))
            first = &uses[i];
    }
    return first;
}

int rc_http_url_check_hosts(const rc_config_t *cfg, uint32_t timeout_ms, char *err, size_t errlen)
{
    size_t n = cfg->broker_count + 2 * cfg->trigger_count;
    use_t *uses = calloc(n ? n : 1, sizeof(*uses));
    table_t *t = NULL;
    const use_t *bad_use = NULL;
    int rc = -ENOMEM;
    if (uses == NULL)
        goto out;
    n = collect(cfg, uses);
    rc = 0;
    if (n == 0)
        goto out; /* IP literals only: nothing to wait for */
    t = make_table(uses, n);
    rc = -ENOMEM;
    if (t == NULL)
        goto out;
    t->refs = 1;
    rc = run_lookups(t, timeout_ms);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot start looking up the host names of its URIs",
                 cfg->source);
        goto out;
    }
    pthread_mutex_lock(&t->mu);
    bad_use = first_failure(uses, n, t);
    if (bad_use != NULL) {
        const lookup_t *l = &t->lk[bad_use->lookup];
        char why[128];
        if (!l->done)
            snprintf(why, sizeof(why), "did not resolve within %u ms", timeout_ms);
        else
            snprintf(why, sizeof(why), "does not resolve (%s)", gai_strerror(l->gai));
        snprintf(err, errlen, "%s:%d: %s %s/%s: host \"%s\" in '%s' %s", cfg->source, bad_use->line,
                 bad_use->kind, bad_use->ns, bad_use->name, bad_use->host, bad_use->field, why);
        rc = RC_ECONFIG;
    }
    pthread_mutex_unlock(&t->mu);
out:
    if (t != NULL)
        table_unref(t); /* threads still looking up free it after their last answer */
    free(uses);
    if (rc == -ENOMEM && err != NULL && errlen > 0)
        snprintf(err, errlen, "%s: out of memory", cfg->source);
    return rc;
}
