/* The admin API's looks at events and the writes that act on one trigger's flow, beside the
 * status API of net/admin.c (docs/dashboard.md, docs/operations.md):
 *  - GET .../namespaces/NS/brokers/NAME/events?limit=N&trigger=T: the latest events of the
 *    broker's ring (`ringcast tail` over HTTP), read with a lossy reader, which never holds
 *    producers back; with trigger=T only those its filter matches. Attributes for anyone who
 *    reaches the listener (as the status API), data only for a request that could write.
 *  - POST .../namespaces/NS/triggers/NAME/replay {"id": ID}: one of the trigger's latest dead
 *    letters goes to that trigger's subscriber again, and to no other trigger (its worker's half
 *    is net/delivery/replay.c).
 *  - POST .../namespaces/NS/subscriptions/NAME/pause|resume: a Dapr subscription's pause, the
 *    same flag as a trigger's (net/admin.c serve_pause).
 * All of it runs on the admin listener's loop. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/clock.h"
#include "core/codec_json.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/record.h"
#include "core/route.h"
#include "net/admin_internal.h"

#define API_PREFIX "/apis/ringcast.dev/v1alpha1/namespaces/"

/** Events a sample holds at most, and the default. */
#define SAMPLE_MAX     50
#define SAMPLE_DEFAULT 20
/** Bytes of an event's data a sample shows at most (the rest is cut, and said so). */
#define SAMPLE_DATA_MAX 4096
/** Events one sample reads at most, over all its scans: what bounds its cost on a busy ring. */
#define SAMPLE_SCAN_MAX 200000
/** How far back the scans of a sample start, in turn, until they find enough events (the ring's
 *  time index gives each start; the last scan starts at the oldest event). */
static const int64_t sample_back_s[] = {1, 10, 60, 600};

/* ---- paths ---------------------------------------------------------------------------------- */

typedef struct {
    char ns[RC_CONFIG_NAME_MAX + 1];
    char res[16];
    char name[RC_CONFIG_NAME_MAX + 1];
    char verb[16];
} route_t;

#define segment rc__admin_segment

/* API_PREFIX NS/RES/NAME/VERB. Returns 0, or -1 for another path. */
static int parse_route(const rc_http_server_request_t *req, route_t *r)
{
    const char *p = req->path, *end = req->path + req->path_len;
    if (req->path_len <= sizeof(API_PREFIX) - 1 ||
        memcmp(p, API_PREFIX, sizeof(API_PREFIX) - 1) != 0)
        return -1;
    p += sizeof(API_PREFIX) - 1;
    if (segment(&p, end, r->ns, sizeof(r->ns)) < 0 ||
        segment(&p, end, r->res, sizeof(r->res)) < 0 ||
        segment(&p, end, r->name, sizeof(r->name)) < 0 ||
        segment(&p, end, r->verb, sizeof(r->verb)) < 0 || p < end || end[-1] == '/')
        return -1;
    return 0;
}

static void allow(rc_http_server_response_t *res, const char *methods)
{
    res->headers = methods;
    res->headers_len = strlen(methods);
}

/* The triggers of the running table (calloc'd, the caller frees), in `*n`; NULL when none. */
static rc_supervisor_trigger_t *triggers_of(const rc_admin_view_t *v, size_t *n)
{
    *n = 0;
    if (v->sup == NULL)
        return NULL;
    size_t k = rc_supervisor_triggers(v->sup, NULL, 0);
    rc_supervisor_trigger_t *t = calloc(k ? k : 1, sizeof(*t));
    if (t != NULL)
        *n = rc_supervisor_triggers(v->sup, t, k);
    return t;
}

static const rc_supervisor_trigger_t *find_trigger(const rc_supervisor_trigger_t *t, size_t n,
                                                   const char *ns, const char *name, int dapr)
{
    for (size_t i = 0; i < n; i++) {
        if ((t[i].cfg->dapr != NULL) == dapr && strcmp(t[i].cfg->ns, ns) == 0 &&
            strcmp(t[i].cfg->name, name) == 0)
            return &t[i];
    }
    return NULL;
}

/* ---- the sample of recent events ---------------------------------------------------------------
 */

typedef struct {
    uint64_t pos, seq;
} sample_ref_t;

/* What one scan collects: the positions of the latest `limit` matching events (a ring of them:
 * `n` seen, the newest at (n - 1) % limit), read again one by one once the scans are done. */
typedef struct {
    const rc_route_t *route; /* NULL: every event */
    uint32_t match[1];
    sample_ref_t ref[SAMPLE_MAX];
    uint32_t limit;
    uint64_t n;
    uint64_t stop_seq;  /* events from it on were seen by a later-starting scan: it stops there */
    uint64_t first_seq; /* the first event it saw (matching or not) */
} sample_t;

static int sample_event(void *arg, const rc_storage_view_t *v)
{
    sample_t *s = arg;
    if (v->seq >= s->stop_seq)
        return 1;
    if (s->first_seq == UINT64_MAX)
        s->first_seq = v->seq;
    if (s->route != NULL) {
        rc_record_view_t rv;
        if (v->len % 8 != 0 || rc_record_decode(v->data, v->len, &rv) != 0 ||
            rc_route_match(s->route, &rv, s->match, 1) != 1)
            return 0;
    }
    s->ref[s->n % s->limit] = (sample_ref_t){v->pos, v->seq};
    s->n++;
    return 0;
}

/* Scans further and further back (sample_back_s, then from the oldest event) until `limit`
 * events matched or the oldest was reached, each scan ending where the later-starting one
 * began, so no event is read twice: the positions end in `s` (s->n of them, oldest first).
 * Returns 0 or the store's code; `st` sums the scans, `*complete` says the oldest was reached. */
static int sample_scan(rc_storage_t *store, sample_t *s, rc_storage_scan_t *st, int *complete)
{
    enum { RUNGS = sizeof(sample_back_s) / sizeof(sample_back_s[0]) };
    memset(st, 0, sizeof(*st));
    sample_ref_t kept[SAMPLE_MAX];
    uint64_t nkept = 0, stop = UINT64_MAX;
    int64_t now = rc_wall_ns();
    *complete = 0;
    for (size_t i = 0; i <= RUNGS && st->scanned < SAMPLE_SCAN_MAX; i++) {
        int64_t since = i < RUNGS ? now - sample_back_s[i] * 1000000000ll : INT64_MIN;
        s->n = 0;
        s->stop_seq = stop;
        s->first_seq = UINT64_MAX;
        rc_storage_scan_t one;
        int rc =
            rc_storage_scan(store, since, SAMPLE_SCAN_MAX - st->scanned, sample_event, s, &one);
        if (rc != 0)
            return rc;
        st->scanned += one.scanned;
        st->lost += one.lost;
        st->corrupt += one.corrupt;
        /* This scan's events come before those kept so far: they go in front. */
        uint64_t room = s->limit - nkept, take = s->n < room ? s->n : room;
        memmove(kept + take, kept, nkept * sizeof(kept[0]));
        for (uint64_t k = 0; k < take; k++)
            kept[k] = s->ref[(s->n - take + k) % s->limit];
        nkept += take;
        if (one.from_oldest) {
            *complete = 1;
            break;
        }
        if (nkept >= s->limit)
            break;
        if (s->first_seq < stop)
            stop = s->first_seq;
        if (one.head_seq < stop)
            stop = one.head_seq;
    }
    memcpy(s->ref, kept, nkept * sizeof(kept[0]));
    s->n = nkept;
    return 0;
}

static int utf8_len_ok(const unsigned char *p, size_t n, size_t *valid)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        if (k == 0 || (k == 2 && c < 0xc2) || (k == 4 && c > 0xf4))
            break;
        if (i + k > n)
            break; /* cut inside a character: the part before it is what shows */
        size_t j = 1;
        while (j < k && (p[i + j] & 0xc0) == 0x80)
            j++;
        if (j < k)
            break;
        i += k;
    }
    *valid = i;
    return i == n;
}

/* Whether the content type says JSON (absent: a structured event's data is JSON). */
static int json_type(rc_str_t ct)
{
    if (ct.ptr == NULL)
        return 1;
    size_t n = ct.len;
    for (size_t i = 0; i < ct.len; i++) {
        if (ct.ptr[i] == ';') {
            n = i;
            break;
        }
    }
    while (n > 0 && ct.ptr[n - 1] == ' ')
        n--;
    return (n == 16 && strncasecmp(ct.ptr, "application/json", 16) == 0) ||
           (n == 9 && strncasecmp(ct.ptr, "text/json", 9) == 0) ||
           (n > 5 && strncasecmp(ct.ptr + n - 5, "+json", 5) == 0);
}

/* The event's data into `o` (the CloudEvent), at most SAMPLE_DATA_MAX bytes: JSON data as JSON,
 * text as a string, other bytes as data_base64; `item` says its size and whether it was cut. */
static void add_data(cJSON *o, cJSON *item, rc_str_t ct, rc_str_t data)
{
    size_t n = data.len < SAMPLE_DATA_MAX ? data.len : SAMPLE_DATA_MAX;
    cJSON_AddNumberToObject(item, "dataBytes", (double)data.len);
    cJSON_AddBoolToObject(item, "dataTruncated", n < data.len);
    if (n == data.len && json_type(ct)) {
        cJSON *j = cJSON_ParseWithLength(data.ptr, data.len);
        if (j != NULL) {
            cJSON_AddItemToObject(o, "data", j);
            return;
        }
    }
    size_t valid;
    int text = utf8_len_ok((const unsigned char *)data.ptr, n, &valid);
    if (text || (n < data.len && n - valid < 4)) { /* text, maybe cut inside a character */
        char *s = malloc(valid + 1);
        if (s == NULL)
            return;
        memcpy(s, data.ptr, valid);
        s[valid] = '\0';
        if (memchr(s, '\0', valid) == NULL) {
            cJSON_AddStringToObject(o, "data", s);
            free(s);
            return;
        }
        free(s);
    }
    char *b = malloc(rc_base64_encoded_len(n) + 1);
    if (b == NULL)
        return;
    b[rc_base64_encode(data.ptr, n, b)] = '\0';
    cJSON_AddStringToObject(o, "data_base64", b);
    free(b);
}

/* One item of the sample: the record rec[0..len) at (pos, seq) as a CloudEvent (structured
 * mode's JSON, data per add_data, or none without `with_data`). NULL when it does not decode. */
static cJSON *sample_item(const void *rec, size_t len, uint64_t pos, uint64_t seq, int with_data,
                          char **buf, size_t *cap)
{
    rc_record_view_t rv;
    rc_ce_ext_t ext[RC_CE_EXT_MAX];
    rc_event_t ev;
    if (len % 8 != 0 || rc_record_decode(rec, len, &rv) != 0 ||
        rc_record_to_event(&rv, &ev, ext, RC_CE_EXT_MAX) != 0)
        return NULL;
    rc_str_t data = ev.data;
    ev.data = (rc_str_t){NULL, 0};
    size_t need = 0;
    int rc = rc_ce_write_structured(&ev, 0, *buf, *cap, &need);
    if (rc == -ENOBUFS) {
        char *nb = realloc(*buf, need);
        if (nb == NULL)
            return NULL;
        *buf = nb;
        *cap = need;
        rc = rc_ce_write_structured(&ev, 0, *buf, *cap, &need);
    }
    cJSON *o = rc == 0 ? cJSON_ParseWithLength(*buf, need) : NULL;
    if (o == NULL)
        return NULL;
    cJSON *item = cJSON_CreateObject();
    cJSON_AddNumberToObject(item, "position", (double)pos);
    cJSON_AddNumberToObject(item, "sequence", (double)seq);
    if (data.ptr != NULL && with_data)
        add_data(o, item, ev.datacontenttype, data);
    else if (data.ptr != NULL)
        cJSON_AddNumberToObject(item, "dataBytes", (double)data.len);
    cJSON_AddItemToObject(item, "event", o);
    return item;
}

/* limit=N and trigger=T of the query; 0, or -1 with `err` set. */
static int sample_query(const rc_http_server_request_t *req, uint32_t *limit, char *trigger,
                        size_t tcap, char *err, size_t errlen)
{
    *limit = SAMPLE_DEFAULT;
    trigger[0] = '\0';
    const char *p = req->query, *end = req->query ? req->query + req->query_len : NULL;
    while (p != NULL && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end, *eq = memchr(p, '=', (size_t)(e - p));
        size_t klen = (size_t)((eq ? eq : e) - p), vlen = eq ? (size_t)(e - eq - 1) : 0;
        const char *val = eq ? eq + 1 : e;
        if (klen == 5 && memcmp(p, "limit", 5) == 0) {
            char num[8];
            char *stop;
            if (vlen == 0 || vlen >= sizeof(num)) {
                snprintf(err, errlen, "limit must be a number from 1 to %d", SAMPLE_MAX);
                return -1;
            }
            memcpy(num, val, vlen);
            num[vlen] = '\0';
            long l = strtol(num, &stop, 10);
            if (*stop != '\0' || l < 1 || l > SAMPLE_MAX) {
                snprintf(err, errlen, "limit must be a number from 1 to %d, not '%s'", SAMPLE_MAX,
                         num);
                return -1;
            }
            *limit = (uint32_t)l;
        } else if (klen == 7 && memcmp(p, "trigger", 7) == 0) {
            if (vlen == 0 || vlen >= tcap) {
                snprintf(err, errlen, "trigger must name a trigger (1-%zu characters)", tcap - 1);
                return -1;
            }
            memcpy(trigger, val, vlen);
            trigger[vlen] = '\0';
        } else if (klen > 0) {
            snprintf(err, errlen, "unknown parameter '%.*s' (the events take limit and trigger)",
                     (int)(klen > 64 ? 64 : klen), p);
            return -1;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}

/* Reads the sampled positions again (newest first) into `items`; an event overwritten since
 * the scan counts in `*gone`. */
static void sample_items(rc_storage_t *store, const sample_t *s, int with_data, cJSON *items,
                         uint64_t *gone)
{
    void *rec = NULL;
    size_t rcap = 0, len = 0, jcap = 0;
    char *jbuf = NULL;
    for (uint64_t k = s->n; k-- > 0;) {
        int rc = rc_storage_read_at(store, s->ref[k].pos, s->ref[k].seq, rec, rcap, &len);
        if (rc == -ENOBUFS) {
            void *nb = NULL;
            if (posix_memalign(&nb, 8, len) != 0)
                break;
            free(rec);
            rec = nb;
            rcap = len;
            rc = rc_storage_read_at(store, s->ref[k].pos, s->ref[k].seq, rec, rcap, &len);
        }
        cJSON *item =
            rc == 0 ? sample_item(rec, len, s->ref[k].pos, s->ref[k].seq, with_data, &jbuf, &jcap)
                    : NULL;
        if (item == NULL)
            (*gone)++;
        else
            cJSON_AddItemToArray(items, item);
    }
    free(rec);
    free(jbuf);
}

static void serve_events(rc_admin_t *a, const route_t *r, const rc_http_server_request_t *req,
                         rc_http_server_response_t *res)
{
    if (req->method != RC_HTTP_GET && req->method != RC_HTTP_HEAD) {
        rc__admin_status_answer(a, res, 405, "MethodNotAllowed", "the events answer GET only");
        allow(res, "Allow: GET, HEAD\r\n");
        return;
    }
    char err[160], tname[RC_CONFIG_NAME_MAX + 1], msg[320];
    uint32_t limit;
    if (sample_query(req, &limit, tname, sizeof(tname), err, sizeof(err)) != 0) {
        rc__admin_status_answer(a, res, 400, "BadRequest", err);
        return;
    }
    rc_admin_view_t v;
    memset(&v, 0, sizeof(v));
    a->view(a->arg, &v);
    size_t b = v.nbrokers;
    for (size_t i = 0; i < v.nbrokers && b == v.nbrokers; i++) {
        if (strcmp(v.brokers[i].ns, r->ns) == 0 && strcmp(v.brokers[i].name, r->name) == 0)
            b = i;
    }
    if (b == v.nbrokers) {
        snprintf(msg, sizeof(msg), "brokers.eventing.knative.dev \"%s\" not found in namespace %s",
                 r->name, r->ns);
        rc__admin_status_answer(a, res, 404, "NotFound", msg);
        return;
    }
    if (v.stores == NULL || v.stores[b] == NULL) {
        rc__admin_status_answer(a, res, 503, "ServiceUnavailable",
                                "the broker's store is not open");
        return;
    }
    size_t nt = 0;
    rc_supervisor_trigger_t *t = triggers_of(&v, &nt);
    const rc_supervisor_trigger_t *trig = NULL;
    if (tname[0] != '\0') {
        trig = t != NULL ? find_trigger(t, nt, r->ns, tname, 0) : NULL;
        if (trig == NULL || strcmp(trig->cfg->broker, r->name) != 0) {
            snprintf(msg, sizeof(msg),
                     trig == NULL ? "triggers.eventing.knative.dev \"%s\" not found in namespace %s"
                                  : "trigger \"%s\" in namespace %s is not on this broker",
                     tname, r->ns);
            rc__admin_status_answer(a, res, 404, "NotFound", msg);
            free(t);
            return;
        }
    }
    sample_t *s = calloc(1, sizeof(*s));
    rc_route_t *route = NULL;
    int rc = s == NULL ? -ENOMEM : 0;
    if (rc == 0 && trig != NULL && trig->cfg->filter != NULL) {
        const rc_filter_t *f = trig->cfg->filter;
        rc = rc_route_compile(&f, 1, 0, &route);
    }
    rc_storage_scan_t st;
    int complete = 0;
    if (rc == 0) {
        s->route = route;
        s->limit = limit;
        rc = sample_scan(v.stores[b], s, &st, &complete);
    }
    if (rc != 0) {
        snprintf(msg, sizeof(msg), "cannot read the broker's ring: %s", rc_strerror(rc));
        rc__admin_status_answer(a, res, 503, "ServiceUnavailable", msg);
        rc_route_destroy(route);
        free(s);
        free(t);
        return;
    }
    int with_data = rc__admin_may_read_data(a, req);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "ringcast.dev/v1alpha1");
    cJSON_AddStringToObject(o, "kind", "EventSample");
    cJSON *m = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(m, "namespace", r->ns);
    cJSON_AddStringToObject(m, "name", r->name);
    cJSON_AddNumberToObject(o, "timeMs", (double)(rc_wall_ns() / 1000000));
    if (trig != NULL) {
        char filter[1024] = "true";
        if (trig->cfg->filter != NULL)
            rc_filter_format(trig->cfg->filter, filter, sizeof(filter));
        cJSON_AddStringToObject(o, "trigger", trig->cfg->name);
        cJSON_AddStringToObject(o, "filter", filter);
    }
    cJSON_AddNumberToObject(o, "limit", limit);
    cJSON_AddNumberToObject(o, "dataMaxBytes", SAMPLE_DATA_MAX);
    cJSON_AddBoolToObject(o, "dataIncluded", with_data);
    if (!with_data)
        cJSON_AddStringToObject(
            o, "dataOmitted",
            a->token != NULL ? "event data needs the admin token (Authorization: Bearer TOKEN)"
                             : "event data is shown to loopback clients only (set "
                               "spec.admin.token to read it from elsewhere)");
    uint64_t gone = 0;
    cJSON *items = cJSON_CreateArray();
    sample_items(v.stores[b], s, with_data, items, &gone);
    cJSON_AddNumberToObject(o, "scanned", (double)st.scanned);
    cJSON_AddNumberToObject(o, "lost", (double)(st.lost + gone));
    cJSON_AddBoolToObject(o, "complete", complete || s->n >= limit);
    cJSON_AddItemToObject(o, "items", items);
    rc_route_destroy(route);
    free(s);
    free(t);
    rc__admin_answer_json(a, res, 200, o, 503, "out of memory");
}

/* ---- replay of a dead letter
 * --------------------------------------------------------------------- */

/* Whether the record at (pos, seq) of `store` is still the event `id`: 1, 0 (another event or
 * none there now: overwritten), or a negative code. */
static int still_held(rc_storage_t *store, uint64_t pos, uint64_t seq, const char *id)
{
    void *rec = NULL;
    size_t len = 0;
    int rc = rc_storage_read_at(store, pos, seq, NULL, 0, &len);
    if (rc == -ENOBUFS) {
        if (posix_memalign(&rec, 8, len) != 0)
            return -ENOMEM;
        rc = rc_storage_read_at(store, pos, seq, rec, len, &len);
    }
    int held = rc;
    if (rc == 0) {
        rc_record_view_t rv;
        rc_str_t got = {NULL, 0};
        if (rc_record_decode(rec, len, &rv) == 0)
            got = rc_record_attr(&rv, RC_CE_ATTR_ID);
        size_t n = strlen(id);
        /* The slot keeps RC_OUTCOME_ID_MAX bytes of the id: a longer one compares on those. */
        held = got.ptr != NULL && (got.len == n || (n == RC_OUTCOME_ID_MAX && got.len > n)) &&
               memcmp(got.ptr, id, n) == 0;
    } else if (rc == -ENOENT) {
        held = 0;
    }
    free(rec);
    return held;
}

/* The body's "id": 0 and `id`, or -1 with `err`. */
static int replay_body(const rc_http_server_request_t *req, char *id, size_t cap, char *err,
                       size_t errlen)
{
    cJSON *b = req->body_len > 0 ? cJSON_ParseWithLength(req->body, req->body_len) : NULL;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(b, "id");
    int rc = -1;
    if (!cJSON_IsString(j) || j->valuestring[0] == '\0')
        snprintf(err, errlen,
                 "the body must be a JSON object with the dead-lettered event's id: "
                 "{\"id\": \"...\"}");
    else if (strlen(j->valuestring) >= cap)
        snprintf(err, errlen, "the id is longer than %zu bytes", cap - 1);
    else {
        snprintf(id, cap, "%s", j->valuestring);
        rc = 0;
    }
    cJSON_Delete(b);
    return rc;
}

static void serve_replay(rc_admin_t *a, const route_t *r, const rc_http_server_request_t *req,
                         rc_http_server_response_t *res)
{
    if (req->method != RC_HTTP_POST) {
        rc__admin_status_answer(a, res, 405, "MethodNotAllowed",
                                "replay takes POST with {\"id\": \"...\"}");
        allow(res, "Allow: POST\r\n");
        return;
    }
    if (rc__admin_authorized(a, req, res) != 0)
        return;
    char id[1024], msg[1400];
    if (replay_body(req, id, sizeof(id), msg, sizeof(msg)) != 0) {
        rc__admin_status_answer(a, res, 400, "BadRequest", msg);
        return;
    }
    rc_admin_view_t v;
    memset(&v, 0, sizeof(v));
    a->view(a->arg, &v);
    size_t nt = 0;
    rc_supervisor_trigger_t *t = triggers_of(&v, &nt);
    const rc_supervisor_trigger_t *trig = t != NULL ? find_trigger(t, nt, r->ns, r->name, 0) : NULL;
    int status = 0;
    const char *reason = "NotFound";
    rc_dead_letter_t dl[RC_DEAD_LETTERS];
    size_t ndl = trig != NULL ? rc_worker_stats_dead_letters(trig->stats, dl, RC_DEAD_LETTERS) : 0;
    size_t k = ndl;
    for (size_t i = 0; i < ndl && k == ndl; i++) {
        if (strncmp(dl[i].id, id, RC_OUTCOME_ID_MAX) == 0)
            k = i;
    }
    size_t bi = v.nbrokers; /* the trigger's broker, by name: the view's order */
    for (size_t i = 0; trig != NULL && i < v.nbrokers && bi == v.nbrokers; i++) {
        if (strcmp(v.brokers[i].ns, trig->cfg->ns) == 0 &&
            strcmp(v.brokers[i].name, trig->cfg->broker) == 0)
            bi = i;
    }
    if (trig == NULL) {
        snprintf(msg, sizeof(msg), "triggers.eventing.knative.dev \"%s\" not found in namespace %s",
                 r->name, r->ns);
        status = 404;
    } else if (k == ndl) {
        snprintf(msg, sizeof(msg),
                 "trigger %s/%s has no dead letter with id \"%.200s\" among its latest %d "
                 "(status.deadLetters lists them)",
                 r->ns, r->name, id, RC_DEAD_LETTERS);
        status = 404;
    } else if (v.stores == NULL || bi >= v.nbrokers || v.stores[bi] == NULL) {
        snprintf(msg, sizeof(msg), "the broker's store is not open");
        status = 503;
        reason = "ServiceUnavailable";
    }
    int held = status == 0 ? still_held(v.stores[bi], dl[k].pos, dl[k].seq, dl[k].id) : 0;
    if (status == 0 && held <= 0) {
        if (held < 0)
            snprintf(msg, sizeof(msg), "cannot read the broker's ring: %s", rc_strerror(held));
        else
            snprintf(msg, sizeof(msg),
                     "event \"%.200s\" is no longer in broker %s/%s's ring (overwritten since it "
                     "was dead-lettered): it cannot be replayed",
                     id, r->ns, trig->cfg->broker);
        status = held < 0 ? 503 : 404;
        reason = held < 0 ? "ServiceUnavailable" : "Gone";
    }
    rc_trigger_stats_t *s = trig != NULL ? trig->stats : NULL;
    if (status == 0 && atomic_load_explicit(&s->replay_req, memory_order_acquire) !=
                           atomic_load_explicit(&s->replay_done, memory_order_acquire)) {
        snprintf(msg, sizeof(msg),
                 "trigger %s/%s: a replay is under way (its worker takes one at a time, within "
                 "0.1 s while it runs); try again",
                 r->ns, r->name);
        status = 409;
        reason = "Conflict";
    }
    if (status == 0) {
        atomic_store_explicit(&s->replay_pos, dl[k].pos, memory_order_relaxed);
        atomic_store_explicit(&s->replay_seq, dl[k].seq, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->replay_req, 1, memory_order_release);
        rc_log_info("admin", "trigger %s/%s: replay of event %s (position %llu) asked", r->ns,
                    r->name, dl[k].id, (unsigned long long)dl[k].pos);
        snprintf(msg, sizeof(msg),
                 "event \"%.200s\" is queued for trigger %s/%s alone (no other trigger gets it "
                 "again); its worker sends it within 0.1 s",
                 dl[k].id, r->ns, r->name);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "apiVersion", "v1");
        cJSON_AddStringToObject(o, "kind", "Status");
        cJSON_AddObjectToObject(o, "metadata");
        cJSON_AddStringToObject(o, "status", "Success");
        cJSON_AddStringToObject(o, "message", msg);
        cJSON_AddStringToObject(o, "reason", "Accepted");
        cJSON *d = cJSON_AddObjectToObject(o, "details");
        cJSON_AddStringToObject(d, "id", dl[k].id);
        cJSON_AddNumberToObject(d, "position", (double)dl[k].pos);
        cJSON_AddNumberToObject(d, "sequence", (double)dl[k].seq);
        cJSON_AddNumberToObject(o, "code", 202);
        free(t);
        rc__admin_answer_json(a, res, 202, o, 503, "out of memory");
        return;
    }
    free(t);
    rc__admin_status_answer(a, res, status, reason, msg);
}

/* ---- a Dapr subscription's pause ----------------------------------------------------------------
 */

/* Sets or clears the paused flag of every (subscription, app) pair named NS/NAME, as a trigger's
 * pause does; answers the (first) Subscription as the status API shows it. */
static void serve_sub_pause(rc_admin_t *a, const route_t *r, int pause,
                            const rc_http_server_request_t *req, rc_http_server_response_t *res)
{
    if (req->method != RC_HTTP_POST) {
        rc__admin_status_answer(a, res, 405, "MethodNotAllowed",
                                "pause and resume take POST (no body)");
        allow(res, "Allow: POST\r\n");
        return;
    }
    if (rc__admin_authorized(a, req, res) != 0)
        return;
    rc_admin_view_t v;
    memset(&v, 0, sizeof(v));
    a->view(a->arg, &v);
    size_t nt = 0, hit = 0;
    rc_supervisor_trigger_t *t = triggers_of(&v, &nt);
    uint64_t now_ms = (uint64_t)(rc_wall_ns() / 1000000);
    char first[RC_CONFIG_NAME_MAX + 1] = "";
    for (size_t i = 0; i < nt; i++) {
        /* The object's name (GROUP:NAME, as the status API lists it) is one (subscription,
         * app) pair; the Subscription's own name is every app's pair of it. */
        const rc_config_dapr_sub_t *d = t[i].cfg->dapr;
        if (d == NULL || strcmp(t[i].cfg->ns, r->ns) != 0 ||
            (strcmp(t[i].cfg->name, r->name) != 0 &&
             (d->name[0] == '\0' || strcmp(d->name, r->name) != 0)))
            continue;
        if (first[0] == '\0')
            snprintf(first, sizeof(first), "%s", t[i].cfg->name);
        _Atomic uint64_t *flag = &t[i].stats->paused_ms;
        uint64_t was = atomic_load_explicit(flag, memory_order_relaxed);
        if (pause && was == 0)
            atomic_store_explicit(flag, now_ms, memory_order_relaxed);
        else if (!pause)
            atomic_store_explicit(flag, 0, memory_order_relaxed);
        if (hit++ == 0 && (pause != 0) != (was != 0))
            rc_log_info("admin", "Dapr subscription %s/%s %s", r->ns, first,
                        pause ? "paused" : "resumed");
    }
    free(t);
    if (hit == 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "subscriptions.dapr.io \"%s\" not found in namespace %s",
                 r->name, r->ns);
        rc__admin_status_answer(a, res, 404, "NotFound", msg);
        return;
    }
    cJSON *subs = cJSON_CreateArray(), *brokers = cJSON_CreateArray(), *trigs = cJSON_CreateArray();
    rc__admin_collect_all(a, &v, brokers, trigs, subs);
    cJSON *o = NULL;
    cJSON *it;
    cJSON_ArrayForEach(it, subs)
    {
        const cJSON *md = cJSON_GetObjectItem(it, "metadata");
        const char *ns = cJSON_GetStringValue(cJSON_GetObjectItem(md, "namespace"));
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(md, "name"));
        if (o == NULL && ns != NULL && name != NULL && strcmp(ns, r->ns) == 0 &&
            strcmp(name, first) == 0)
            o = it;
    }
    if (o != NULL)
        o = cJSON_DetachItemViaPointer(subs, o);
    cJSON_Delete(subs);
    cJSON_Delete(brokers);
    cJSON_Delete(trigs);
    rc__admin_answer_json(a, res, 200, o, 503, "out of memory");
}

int rc__admin_events_route(rc_admin_t *a, const rc_http_server_request_t *req,
                           rc_http_server_response_t *res)
{
    route_t r;
    if (a->view == NULL || parse_route(req, &r) != 0)
        return 0;
    if (strcmp(r.res, "brokers") == 0 && strcmp(r.verb, "events") == 0)
        serve_events(a, &r, req, res);
    else if (strcmp(r.res, "triggers") == 0 && strcmp(r.verb, "replay") == 0)
        serve_replay(a, &r, req, res);
    else if (strcmp(r.res, "subscriptions") == 0 &&
             (strcmp(r.verb, "pause") == 0 || strcmp(r.verb, "resume") == 0))
        serve_sub_pause(a, &r, strcmp(r.verb, "pause") == 0, req, res);
    else
        return 0;
    return 1;
}
