/* Programmatic Dapr subscriptions (net/dapr_subscribe.h). The requests go through the delivery's
 * HTTP client on its epoll back end, whose descriptor the main loop watches (uv_poll), with one
 * timer for the back-off that runs only while some app has not answered. */
#include "net/dapr_subscribe.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/log.h"
#include "net/http/http_client.h"

#define TICK_MS        50u
#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 10000u
#define ANSWER_MAX     (1u << 20) /* bytes of a /dapr/subscribe answer kept */
#define ASK_TIMEOUT_MS 5000u
#define SILENT_LOG_NS  (30ull * 1000000000ull) /* "still not answering" at most this often */

/* One entry of an answer, owned. */
typedef struct {
    char *pubsub, *topic, *default_path, *dead_letter_topic;
    char **match, **path;
    size_t nrules;
    int raw_payload, bulk;
    uint32_t bulk_max_messages, bulk_max_await_ms;
} sub_t;

typedef struct app_s {
    char ns[RC_CONFIG_NAME_MAX + 1];
    char name[RC_CONFIG_NAME_MAX + 1];
    char **urls; /* "<replica>/dapr/subscribe" */
    size_t nurls, next_url;
    int answered;     /* a good answer came (subs hold it) */
    int bad;          /* the last answer was bad, or one of its entries was refused */
    int in_flight;    /* a request is out */
    int wanted;       /* ask (again) once due */
    int logged;       /* apply: the refusals of this answer were logged */
    uint32_t backoff_ms;
    uint64_t due_ns;
    uint64_t silent_since_ns, silent_logged_ns;
    uint64_t errors; /* bad answers and refused entries */
    sub_t *subs;
    size_t nsubs;
    int gone; /* no longer in the config: freed when its request's callback runs */
    struct app_s *next_gone;
    struct rc_dapr_subs_s *owner;
} app_t;

struct rc_dapr_subs_s {
    uv_loop_t *loop;
    uv_poll_t poll;
    uv_timer_t timer;
    int handles, closing, ticking;
    rc_http_client_t *client;
    app_t **apps;
    size_t napps;
    app_t *gone; /* retired apps with a request out */
    void (*changed)(void *arg);
    void *arg;
};

static void subs_free(sub_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t r = 0; r < s[i].nrules; r++) {
            free(s[i].match[r]);
            free(s[i].path[r]);
        }
        free(s[i].match);
        free(s[i].path);
        free(s[i].pubsub);
        free(s[i].topic);
        free(s[i].default_path);
        free(s[i].dead_letter_topic);
    }
    free(s);
}

static void app_free(app_t *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->nurls; i++)
        free(a->urls[i]);
    free(a->urls);
    subs_free(a->subs, a->nsubs);
    free(a);
}

/* ---- reading an answer ----------------------------------------------------------------------- */

static int dup_str(const cJSON *o, const char *key, int required, char **out, char *err,
                   size_t err_len, size_t idx)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL || cJSON_IsNull(v)) {
        if (!required)
            return 0;
        snprintf(err, err_len, "entry %zu has no '%s'", idx, key);
        return RC_ECONFIG;
    }
    if (!cJSON_IsString(v)) {
        snprintf(err, err_len, "entry %zu: '%s' must be a string", idx, key);
        return RC_ECONFIG;
    }
    if (required && v->valuestring[0] == '\0') {
        snprintf(err, err_len, "entry %zu: '%s' is empty", idx, key);
        return RC_ECONFIG;
    }
    if (v->valuestring[0] == '\0')
        return 0;
    *out = strdup(v->valuestring);
    return *out != NULL ? 0 : -ENOMEM;
}

static int read_rules(const cJSON *routes, sub_t *s, char *err, size_t err_len, size_t idx)
{
    if (!cJSON_IsObject(routes)) {
        snprintf(err, err_len, "entry %zu: 'routes' must be an object", idx);
        return RC_ECONFIG;
    }
    int rc = dup_str(routes, "default", 0, &s->default_path, err, err_len, idx);
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(routes, "rules");
    if (rc != 0 || rules == NULL || cJSON_IsNull(rules))
        return rc;
    if (!cJSON_IsArray(rules)) {
        snprintf(err, err_len, "entry %zu: 'routes.rules' must be an array", idx);
        return RC_ECONFIG;
    }
    size_t n = (size_t)cJSON_GetArraySize(rules);
    s->match = calloc(n ? n : 1, sizeof(char *));
    s->path = calloc(n ? n : 1, sizeof(char *));
    if (s->match == NULL || s->path == NULL)
        return -ENOMEM;
    const cJSON *r;
    cJSON_ArrayForEach(r, rules)
    {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "match");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "path");
        if (!cJSON_IsObject(r) || !cJSON_IsString(p) || (m != NULL && !cJSON_IsString(m))) {
            snprintf(err, err_len,
                     "entry %zu: routes.rules[%zu] must be an object with a string 'path' "
                     "and a string 'match'",
                     idx, s->nrules);
            return RC_ECONFIG;
        }
        s->match[s->nrules] = strdup(m != NULL ? m->valuestring : "");
        s->path[s->nrules] = strdup(p->valuestring);
        s->nrules++;
        if (s->match[s->nrules - 1] == NULL || s->path[s->nrules - 1] == NULL)
            return -ENOMEM;
    }
    return 0;
}

/* A string "true"/"false" (Dapr's metadata values are strings) or a JSON bool. */
static int read_flag(const cJSON *v, int *out)
{
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return 0;
    }
    if (cJSON_IsString(v) && (strcmp(v->valuestring, "true") == 0 ||
                              strcmp(v->valuestring, "false") == 0)) {
        *out = v->valuestring[0] == 't';
        return 0;
    }
    return -EINVAL;
}

static int read_u32(const cJSON *o, const char *key, uint32_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1e6)
        return -EINVAL;
    *out = (uint32_t)v->valuedouble;
    return 0;
}

static int read_extras(const cJSON *e, sub_t *s, char *err, size_t err_len, size_t idx)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(e, "metadata");
    if (md != NULL && !cJSON_IsNull(md)) {
        const cJSON *raw = cJSON_GetObjectItemCaseSensitive(md, "rawPayload");
        if (!cJSON_IsObject(md) || (raw != NULL && read_flag(raw, &s->raw_payload) != 0)) {
            snprintf(err, err_len,
                     "entry %zu: 'metadata' must be an object whose rawPayload is \"true\" or "
                     "\"false\"",
                     idx);
            return RC_ECONFIG;
        }
    }
    const cJSON *bulk = cJSON_GetObjectItemCaseSensitive(e, "bulkSubscribe");
    if (bulk != NULL && !cJSON_IsNull(bulk)) {
        const cJSON *en = cJSON_GetObjectItemCaseSensitive(bulk, "enabled");
        if (!cJSON_IsObject(bulk) || (en != NULL && read_flag(en, &s->bulk) != 0) ||
            read_u32(bulk, "maxMessagesCount", &s->bulk_max_messages) != 0 ||
            read_u32(bulk, "maxAwaitDurationMs", &s->bulk_max_await_ms) != 0) {
            snprintf(err, err_len,
                     "entry %zu: 'bulkSubscribe' must be an object with a boolean 'enabled' and "
                     "positive 'maxMessagesCount' and 'maxAwaitDurationMs'",
                     idx);
            return RC_ECONFIG;
        }
    }
    return 0;
}

static int read_entry(const cJSON *e, sub_t *s, char *err, size_t err_len, size_t idx)
{
    if (!cJSON_IsObject(e)) {
        snprintf(err, err_len, "entry %zu is not an object", idx);
        return RC_ECONFIG;
    }
    int rc = dup_str(e, "pubsubname", 1, &s->pubsub, err, err_len, idx);
    if (rc == 0)
        rc = dup_str(e, "topic", 1, &s->topic, err, err_len, idx);
    if (rc == 0)
        rc = dup_str(e, "deadLetterTopic", 0, &s->dead_letter_topic, err, err_len, idx);
    const cJSON *routes = cJSON_GetObjectItemCaseSensitive(e, "routes");
    if (rc == 0 && routes != NULL && !cJSON_IsNull(routes))
        rc = read_rules(routes, s, err, err_len, idx);
    if (rc == 0 && s->default_path == NULL) /* v1: `route` */
        rc = dup_str(e, "route", 0, &s->default_path, err, err_len, idx);
    if (rc == 0)
        rc = read_extras(e, s, err, err_len, idx);
    if (rc == 0 && s->default_path == NULL && s->nrules == 0) {
        snprintf(err, err_len, "entry %zu (%s/%s) has neither 'route' nor 'routes'", idx,
                 s->pubsub, s->topic);
        rc = RC_ECONFIG;
    }
    return rc;
}

/* Parses an answer's body into *subs. Returns 0, RC_ECONFIG with a message, or -ENOMEM. */
static int read_answer(const char *body, size_t len, sub_t **subs, size_t *nsubs, char *err,
                       size_t err_len)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (root == NULL || !cJSON_IsArray(root)) {
        snprintf(err, err_len, "the answer is not a JSON array");
        cJSON_Delete(root);
        return RC_ECONFIG;
    }
    size_t n = (size_t)cJSON_GetArraySize(root), i = 0;
    sub_t *s = calloc(n ? n : 1, sizeof(*s));
    int rc = s != NULL ? 0 : -ENOMEM;
    const cJSON *e;
    cJSON_ArrayForEach(e, root)
    {
        if (rc != 0)
            break;
        rc = read_entry(e, &s[i], err, err_len, i);
        i++;
    }
    cJSON_Delete(root);
    if (rc != 0) {
        subs_free(s, i);
        return rc;
    }
    *subs = s;
    *nsubs = n;
    return 0;
}

/* Whether two answers subscribe to the same things (so no reload is needed). */
static int str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int same_subs(const sub_t *a, size_t na, const sub_t *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++) {
        const sub_t *x = &a[i], *y = &b[i];
        if (!str_eq(x->pubsub, y->pubsub) || !str_eq(x->topic, y->topic) ||
            !str_eq(x->default_path, y->default_path) ||
            !str_eq(x->dead_letter_topic, y->dead_letter_topic) || x->nrules != y->nrules ||
            x->raw_payload != y->raw_payload || x->bulk != y->bulk ||
            x->bulk_max_messages != y->bulk_max_messages ||
            x->bulk_max_await_ms != y->bulk_max_await_ms)
            return 0;
        for (size_t r = 0; r < x->nrules; r++)
            if (strcmp(x->match[r], y->match[r]) != 0 || strcmp(x->path[r], y->path[r]) != 0)
                return 0;
    }
    return 1;
}

/* ---- asking ---------------------------------------------------------------------------------- */

static void tick_start(rc_dapr_subs_t *d);

static void retry_later(app_t *a, uint64_t now)
{
    a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (a->backoff_ms > BACKOFF_MAX_MS)
        a->backoff_ms = BACKOFF_MAX_MS;
    a->due_ns = now + (uint64_t)a->backoff_ms * 1000000ull;
    a->wanted = 1;
}

static void took_answer(app_t *a, const rc_http_response_t *resp, uint64_t now)
{
    char err[256];
    sub_t *subs = NULL;
    size_t n = 0;
    int rc = 0;
    if (resp->status == 404) { /* none */
    } else if (resp->body_truncated) {
        snprintf(err, sizeof(err), "the answer is over %u bytes", ANSWER_MAX);
        rc = RC_ECONFIG;
    } else {
        rc = read_answer(resp->body, resp->body_len, &subs, &n, err, sizeof(err));
    }
    if (rc != 0) {
        a->bad = 1;
        a->errors++;
        rc_log_error("dapr", "app %s/%s: GET /dapr/subscribe: %s; its programmatic "
                     "subscriptions are not ready (asking again in %u ms)",
                     a->ns, a->name, rc == -ENOMEM ? "out of memory" : err,
                     a->backoff_ms ? a->backoff_ms * 2 : BACKOFF_MIN_MS);
        retry_later(a, now);
        return;
    }
    a->backoff_ms = 0;
    a->silent_since_ns = 0;
    int changed = !a->answered ? n > 0 : !same_subs(a->subs, a->nsubs, subs, n);
    if (!a->answered || changed)
        rc_log_info("dapr", "app %s/%s subscribes to %zu topic%s", a->ns, a->name, n,
                    n == 1 ? "" : "s");
    if (!changed) {
        subs_free(subs, n);
        a->answered = 1;
        a->bad = a->bad && a->logged; /* refusals of the kept answer still stand */
        return;
    }
    subs_free(a->subs, a->nsubs);
    a->subs = subs;
    a->nsubs = n;
    a->answered = 1;
    a->bad = 0;
    a->logged = 0;
    if (a->owner->changed != NULL)
        a->owner->changed(a->owner->arg);
}

static void on_answer(int result, const rc_http_response_t *resp, void *userdata)
{
    app_t *a = userdata;
    a->in_flight = 0;
    if (a->gone) {
        app_t **pp = &a->owner->gone;
        while (*pp != a)
            pp = &(*pp)->next_gone;
        *pp = a->next_gone;
        app_free(a);
        return;
    }
    if (a->owner->closing)
        return;
    uint64_t now = rc_now_ns();
    if (result > 0 && resp != NULL && (resp->status == 200 || resp->status == 404)) {
        took_answer(a, resp, now);
        return;
    }
    if (a->silent_since_ns == 0)
        a->silent_since_ns = now;
    if (now - a->silent_since_ns >= SILENT_LOG_NS &&
        now - a->silent_logged_ns >= SILENT_LOG_NS) {
        a->silent_logged_ns = now;
        char why[64];
        if (result > 0)
            snprintf(why, sizeof(why), "status %d", result);
        else
            snprintf(why, sizeof(why), "%s", rc_strerror(result));
        rc_log_warn("dapr", "app %s/%s has not answered GET /dapr/subscribe for %" PRIu64
                    " s (last: %s); still asking",
                    a->ns, a->name, (uint64_t)((now - a->silent_since_ns) / 1000000000u), why);
    }
    retry_later(a, now);
}

static void ask(rc_dapr_subs_t *d, app_t *a)
{
    const char *url = a->urls[a->next_url++ % a->nurls];
    rc_http_endpoint_t *ep = NULL;
    char err[128];
    int rc = rc_http_client_endpoint(d->client, url, &ep, err, sizeof(err));
    rc_http_request_t req;
    memset(&req, 0, sizeof(req));
    req.endpoint = ep;
    req.method = "GET";
    req.timeout_ms = ASK_TIMEOUT_MS;
    if (rc == 0)
        rc = rc_http_client_request(d->client, &req, on_answer, a);
    a->wanted = 0;
    if (rc != 0) {
        rc_log_warn("dapr", "app %s/%s: cannot ask %s: %s", a->ns, a->name, url,
                    rc == RC_EHTTP_BAD_URL ? err : rc_strerror(rc));
        retry_later(a, rc_now_ns());
        return;
    }
    a->in_flight = 1;
}

static void on_tick(uv_timer_t *t)
{
    rc_dapr_subs_t *d = t->data;
    uint64_t now = rc_now_ns();
    int busy = 0;
    for (size_t i = 0; i < d->napps; i++) {
        app_t *a = d->apps[i];
        if (a->wanted && !a->in_flight && a->due_ns <= now)
            ask(d, a);
        busy |= a->wanted || a->in_flight;
    }
    rc_http_client_run(d->client, 0); /* sends what was asked, times out what is late */
    if (!busy) {
        uv_timer_stop(&d->timer);
        d->ticking = 0;
    }
}

static void tick_start(rc_dapr_subs_t *d)
{
    if (d->ticking || d->closing)
        return;
    d->ticking = 1;
    uv_timer_start(&d->timer, on_tick, 0, TICK_MS);
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    rc_dapr_subs_t *d = p->data;
    rc_http_client_run(d->client, 0);
}

/* ---- the apps of a config -------------------------------------------------------------------- */

static app_t *app_new(rc_dapr_subs_t *d, const rc_config_dapr_app_t *ca)
{
    app_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->owner = d;
    snprintf(a->ns, sizeof(a->ns), "%s", ca->ns);
    snprintf(a->name, sizeof(a->name), "%s", ca->name);
    a->urls = calloc(ca->endpoint_count ? ca->endpoint_count : 1, sizeof(char *));
    if (a->urls == NULL) {
        free(a);
        return NULL;
    }
    for (size_t i = 0; i < ca->endpoint_count; i++) {
        size_t len = strlen(ca->endpoints[i]) + sizeof("/dapr/subscribe");
        a->urls[i] = malloc(len);
        if (a->urls[i] == NULL) {
            app_free(a);
            return NULL;
        }
        snprintf(a->urls[i], len, "%s/dapr/subscribe", ca->endpoints[i]);
        a->nurls++;
    }
    return a;
}

static int same_urls(const app_t *a, const rc_config_dapr_app_t *ca)
{
    if (a->nurls != ca->endpoint_count)
        return 0;
    for (size_t i = 0; i < a->nurls; i++)
        if (strncmp(a->urls[i], ca->endpoints[i], strlen(ca->endpoints[i])) != 0)
            return 0;
    return 1;
}

/* The app of d->apps for `ca` (same id and replicas), or NULL. */
static app_t *find_app(rc_dapr_subs_t *d, const rc_config_dapr_app_t *ca)
{
    for (size_t j = 0; j < d->napps; j++) {
        app_t *o = d->apps[j];
        if (o != NULL && strcmp(o->ns, ca->ns) == 0 && strcmp(o->name, ca->name) == 0 &&
            same_urls(o, ca))
            return o;
    }
    return NULL;
}

/* Frees `a` now, or, with a request out, when its callback runs (requests hold their app). */
static void retire(rc_dapr_subs_t *d, app_t *a)
{
    if (!a->in_flight) {
        app_free(a);
        return;
    }
    a->gone = 1;
    a->next_gone = d->gone;
    d->gone = a;
}

/* Makes d->apps the apps of `c`: known ones (same id and replicas) keep their answer; all are
 * asked again now. On -ENOMEM nothing changed. */
static int sync_apps(rc_dapr_subs_t *d, const rc_config_t *c)
{
    size_t n = c->dapr_app_count;
    app_t **apps = calloc(n ? n : 1, sizeof(*apps));
    int *fresh = calloc(n ? n : 1, sizeof(*fresh));
    int rc = apps != NULL && fresh != NULL ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        apps[i] = find_app(d, &c->dapr_apps[i]);
        if (apps[i] == NULL) {
            fresh[i] = 1;
            if ((apps[i] = app_new(d, &c->dapr_apps[i])) == NULL)
                rc = -ENOMEM;
        }
    }
    if (rc != 0) {
        for (size_t i = 0; apps != NULL && fresh != NULL && i < n; i++)
            if (fresh[i])
                app_free(apps[i]);
        free(apps);
        free(fresh);
        return rc;
    }
    for (size_t j = 0; j < d->napps; j++) { /* the apps `c` no longer has */
        int kept = 0;
        for (size_t i = 0; i < n && !kept; i++)
            kept = apps[i] == d->apps[j];
        if (!kept)
            retire(d, d->apps[j]);
    }
    for (size_t i = 0; i < n; i++) {
        apps[i]->wanted = 1;
        apps[i]->due_ns = 0;
    }
    free(fresh);
    free(d->apps);
    d->apps = apps;
    d->napps = n;
    if (n > 0)
        tick_start(d);
    return 0;
}

/* ---- applying answers to a config ------------------------------------------------------------ */

static int apply_sub(rc_config_t *nc, const rc_config_dapr_app_t *ca, app_t *a, const sub_t *s)
{
    rc_config_dapr_sub_spec_t spec;
    memset(&spec, 0, sizeof(spec));
    spec.pubsub = s->pubsub;
    spec.topic = s->topic;
    spec.match = (const char *const *)s->match;
    spec.path = (const char *const *)s->path;
    spec.rule_count = s->nrules;
    spec.default_path = s->default_path;
    spec.dead_letter_topic = s->dead_letter_topic;
    spec.raw_payload = s->raw_payload;
    spec.bulk = s->bulk;
    spec.bulk_max_messages = s->bulk_max_messages;
    spec.bulk_max_await_ms = s->bulk_max_await_ms;
    char err[RC_CONFIG_ERR_MAX];
    int rc = rc_config_add_dapr_subscription(nc, ca, &spec, err, sizeof(err));
    if (rc == 0 || rc == -ENOMEM)
        return rc;
    if (!a->logged) {
        if (rc == -EEXIST) {
            rc_log_info("dapr", "app %s/%s: programmatic subscription to %s/%s left out: a "
                        "declarative Subscription of the app covers it",
                        a->ns, a->name, s->pubsub, s->topic);
        } else {
            rc_log_error("dapr", "app %s/%s: programmatic subscription to %s/%s refused: %s",
                         a->ns, a->name, s->pubsub, s->topic, err);
            a->errors++;
        }
    }
    if (rc != -EEXIST)
        a->bad = 1;
    return 0;
}

int rc_dapr_subs_apply(rc_dapr_subs_t *d, rc_config_t *nc)
{
    int rc = sync_apps(d, nc);
    for (size_t i = 0; rc == 0 && i < d->napps; i++) {
        app_t *a = d->apps[i];
        const rc_config_dapr_app_t *ca = rc_config_find_dapr_app(nc, a->ns, a->name);
        if (ca == NULL || !a->answered)
            continue;
        for (size_t k = 0; rc == 0 && k < a->nsubs; k++)
            rc = apply_sub(nc, ca, a, &a->subs[k]);
        a->logged = 1;
    }
    return rc;
}

/* ---- life ------------------------------------------------------------------------------------ */

int rc_dapr_subs_start(uv_loop_t *loop, const rc_config_t *cfg, void (*changed)(void *arg),
                       void *arg, rc_dapr_subs_t **out)
{
    rc_dapr_subs_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return -ENOMEM;
    d->loop = loop;
    d->changed = changed;
    d->arg = arg;
    rc_http_client_opts_t o;
    rc_http_client_opts_init(&o);
    o.backend = RC_HTTP_BACKEND_EPOLL; /* its descriptor turns readable on completions */
    o.max_conns_per_host = 2;
    o.ring_entries = 8;
    o.max_body = ANSWER_MAX;
    o.timeout_ms = ASK_TIMEOUT_MS;
    int rc = rc_http_client_create(&o, &d->client);
    if (rc != 0) {
        free(d);
        return rc;
    }
    rc = uv_poll_init(loop, &d->poll, rc_http_client_fd(d->client));
    if (rc != 0) {
        rc_http_client_destroy(d->client);
        free(d);
        return rc;
    }
    uv_timer_init(loop, &d->timer);
    d->poll.data = d->timer.data = d;
    d->handles = 2;
    uv_poll_start(&d->poll, UV_READABLE, on_readable);
    rc = sync_apps(d, cfg);
    if (rc != 0) {
        rc_dapr_subs_close(d);
        return rc;
    }
    *out = d;
    return 0;
}

size_t rc_dapr_subs_metrics(rc_dapr_subs_t *d, char *buf, size_t cap)
{
    size_t n = 0;
#define OUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(buf + (n < cap ? n : cap), n < cap ? cap - n : 0, __VA_ARGS__);         \
        if (w_ > 0)                                                                                \
            n += (size_t)w_;                                                                       \
    } while (0)
    if (d == NULL || d->napps == 0)
        return 0;
    OUT("# HELP ringcast_dapr_app_subscriptions_ready Whether the app's GET /dapr/subscribe "
        "answer was read and applied (0: not answered yet, or a bad answer)\n"
        "# TYPE ringcast_dapr_app_subscriptions_ready gauge\n");
    for (size_t i = 0; i < d->napps; i++)
        OUT("ringcast_dapr_app_subscriptions_ready{namespace=\"%s\",app=\"%s\"} %d\n",
            d->apps[i]->ns, d->apps[i]->name, d->apps[i]->answered && !d->apps[i]->bad);
    OUT("# HELP ringcast_dapr_app_subscriptions Programmatic subscriptions in the app's last "
        "good answer\n# TYPE ringcast_dapr_app_subscriptions gauge\n");
    for (size_t i = 0; i < d->napps; i++)
        OUT("ringcast_dapr_app_subscriptions{namespace=\"%s\",app=\"%s\"} %zu\n",
            d->apps[i]->ns, d->apps[i]->name, d->apps[i]->nsubs);
    OUT("# HELP ringcast_dapr_app_subscribe_errors_total Bad GET /dapr/subscribe answers and "
        "refused entries\n# TYPE ringcast_dapr_app_subscribe_errors_total counter\n");
    for (size_t i = 0; i < d->napps; i++)
        OUT("ringcast_dapr_app_subscribe_errors_total{namespace=\"%s\",app=\"%s\"} %" PRIu64
            "\n",
            d->apps[i]->ns, d->apps[i]->name, d->apps[i]->errors);
#undef OUT
    return n;
}

static void on_closed(uv_handle_t *h)
{
    rc_dapr_subs_t *d = h->data;
    if (--d->handles > 0)
        return;
    for (size_t i = 0; i < d->napps; i++)
        app_free(d->apps[i]);
    free(d->apps);
    free(d);
}

void rc_dapr_subs_close(rc_dapr_subs_t *d)
{
    if (d == NULL || d->closing)
        return;
    d->closing = 1;
    /* Destroying the client runs the callbacks of requests out (they see `closing`), which
     * frees the retired apps. */
    rc_http_client_destroy(d->client);
    d->client = NULL;
    uv_close((uv_handle_t *)&d->poll, on_closed);
    uv_close((uv_handle_t *)&d->timer, on_closed);
}
