/* `ringcast sink`: a CloudEvents consumer for demos and tests (the seed's event-consumer). It
 * serves HTTP on the project's server (net/http/http_server.h), decodes every POST with
 * rc_ce_decode_request, logs one line per event on stdout, optionally appends each event as one
 * structured JSON line to a file, and answers as told: a status, a delay, a reply event, or a
 * misbehaviour (hang, TCP reset mid-response, malformed HTTP), for every request or only the
 * first N. One libuv loop; --delay holds answers (rc_http_server_respond later), so requests
 * on many connections wait at the same time. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "core/arena.h"
#include "core/codec_http.h"
#include "core/codec_json.h"
#include "core/config.h"
#include "core/errors.h"
#include "core/event.h"
#include "core/validate.h"
#include "net/cli/cli.h"
#include "net/cli/options.h"
#include "net/cli/stamps.h"
#include "net/http/http_server.h"

#define SINK_MAX_BATCH  1000
#define SINK_DATA_SHOWN 96

typedef enum { FAIL_NONE, FAIL_STATUS, FAIL_HANG, FAIL_RESET, FAIL_GARBAGE } fail_mode_t;

typedef struct {
    uv_loop_t loop;
    uv_async_t wake; /* signal handler -> loop */
    uv_timer_t stop_timer;
    rc_http_server_t *srv;
    char host[64];
    int port;
    char source[96]; /* source of reply events */

    int ok_status;       /* status of a normal answer (2xx) */
    int fail_status;     /* with FAIL_STATUS */
    fail_mode_t fail;    /* what a failing answer does */
    uint64_t fail_first; /* fail only the first N requests; 0 = all (when fail != NONE) */
    uint64_t delay_ms;   /* before every answer to a POST */
    const char *reply_type;
    uint64_t max_events; /* exit after this many events; 0 = never */
    FILE *out;
    int quiet; /* no log line per event */

    struct delayed_s *delayed; /* answers waiting for --delay */
    uint64_t requests;         /* POST requests seen */
    uint64_t events;           /* events logged */
    int stopping;

    rc_arena_t arena;
    char *jbuf; /* structured JSON line for --out */
    size_t jcap;
    char reply_headers[4096];
    char reply_id[RC_CLI_UUID_SIZE];
} sink_t;

static volatile sig_atomic_t g_stop;
static sink_t *g_sink;

/* ---- stop -------------------------------------------------------------------------------- */

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    if (g_sink != NULL)
        uv_async_send(&g_sink->wake); /* async-signal-safe */
}

static void on_server_closed(void *arg)
{
    sink_t *s = arg;
    s->srv = NULL;
    uv_close((uv_handle_t *)&s->wake, NULL);
    uv_close((uv_handle_t *)&s->stop_timer, NULL);
}

static void on_drained(rc_http_server_t *srv, void *arg)
{
    rc_http_server_close(srv, on_server_closed, arg);
}

static void delayed_send(struct delayed_s *d);

static void begin_stop(sink_t *s)
{
    if (s->stopping || s->srv == NULL)
        return;
    s->stopping = 1;
    rc_http_server_drain(s->srv, on_drained, s);
    while (s->delayed != NULL)
        delayed_send(s->delayed); /* answered at once, with Connection: close */
}

static void on_wake(uv_async_t *h)
{
    if (g_stop)
        begin_stop(h->data);
}

static void on_stop_timer(uv_timer_t *t)
{
    begin_stop(t->data);
}

/* ---- logging ----------------------------------------------------------------------------- */

/* Prints `s` with control bytes, backslash and non-ASCII escaped, at most `max` input bytes. */
static void put_escaped(FILE *f, rc_str_t s, size_t max)
{
    size_t n = s.len < max ? s.len : max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '\\')
            fputs("\\\\", f);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    if (s.len > max)
        fputs("...", f);
}

static void put_attr(FILE *f, const char *name, rc_str_t v)
{
    if (v.ptr == NULL)
        return;
    fprintf(f, " %s=", name);
    put_escaped(f, v, 200);
}

static const char *mode_name(rc_ce_mode_t m)
{
    return m == RC_CE_MODE_STRUCTURED ? "structured" : m == RC_CE_MODE_BATCH ? "batch" : "binary";
}

static void log_event(const rc_event_t *ev, rc_ce_mode_t mode, const char *answer)
{
    char ts[32];
    rc__cli_time_of_day(ts);
    printf("%s event", ts);
    put_attr(stdout, "type", ev->type);
    put_attr(stdout, "source", ev->source);
    put_attr(stdout, "id", ev->id);
    printf(" mode=%s", mode_name(mode));
    put_attr(stdout, "subject", ev->subject);
    put_attr(stdout, "time", ev->time);
    put_attr(stdout, "datacontenttype", ev->datacontenttype);
    put_attr(stdout, "dataschema", ev->dataschema);
    for (uint32_t i = 0; i < ev->ext_count; i++) {
        char name[RC_CE_EXT_NAME_MAX + 1];
        size_t n =
            ev->ext[i].name.len < RC_CE_EXT_NAME_MAX ? ev->ext[i].name.len : RC_CE_EXT_NAME_MAX;
        memcpy(name, ev->ext[i].name.ptr, n);
        name[n] = '\0';
        put_attr(stdout, name, ev->ext[i].value);
    }
    if (ev->data.ptr != NULL) {
        printf(" data(%zu B)=", ev->data.len);
        put_escaped(stdout, ev->data, SINK_DATA_SHOWN);
    } else {
        printf(" data=none");
    }
    printf(" -> %s\n", answer);
    fflush(stdout);
}

/* Appends `ev` to --out as one structured JSON line. */
static void write_out(sink_t *s, const rc_event_t *ev)
{
    if (s->out == NULL)
        return;
    size_t need = 0;
    rc_ce_write_structured(ev, 0, NULL, 0, &need);
    if (need + 1 > s->jcap) {
        char *nb = realloc(s->jbuf, need + 1);
        if (nb == NULL) {
            fprintf(stderr, "ringcast sink: out of memory writing --out\n");
            return;
        }
        s->jbuf = nb;
        s->jcap = need + 1;
    }
    if (rc_ce_write_structured(ev, 0, s->jbuf, s->jcap, &need) != 0) {
        fprintf(stderr, "ringcast sink: cannot encode event for --out\n");
        return;
    }
    /* Outside strings a JSON text's line breaks are whitespace (inside strings they are
     * escaped), so the line stays one line with them turned into blanks. */
    for (size_t i = 0; i < need; i++) {
        if (s->jbuf[i] == '\n' || s->jbuf[i] == '\r')
            s->jbuf[i] = ' ';
    }
    s->jbuf[need] = '\n';
    fwrite(s->jbuf, 1, need + 1, s->out);
    fflush(s->out);
}

/* ---- answers ----------------------------------------------------------------------------- */

/* A 200 carrying the reply event in binary mode; its body is the received event's data. */
static int answer_reply(sink_t *s, const rc_event_t *in, rc_http_server_response_t *res)
{
    rc__cli_uuid4(s->reply_id);
    rc_ce_ext_t ext[1];
    rc_event_t ev;
    rc_event_init(&ev, ext, 1);
    ev.specversion = RC_STR("1.0");
    ev.id = rc_str(s->reply_id);
    ev.source = rc_str(s->source);
    ev.type = rc_str(s->reply_type);
    ev.datacontenttype = in->datacontenttype;
    ev.data = in->data;
    if (in->id.len <= 200)
        rc_event_set_ext(&ev, NULL, RC_STR("inreplyto"), in->id, RC_CE_STRING);
    size_t len = 0;
    if (rc_ce_write_binary(&ev, RC_CE_WRITE_NO_TTL, s->reply_headers, sizeof(s->reply_headers),
                           &len) != 0)
        return -1;
    res->status = 200;
    res->headers = s->reply_headers;
    res->headers_len = len;
    res->body = in->data.ptr ? in->data.ptr : "";
    res->body_len = in->data.ptr ? in->data.len : 0;
    return 0;
}

static const char GARBAGE[] = "HTTP/1.1 2oo NOT-HTTP\r\n\x01\x02 this is not a header\r\n\r\n";
static const char PARTIAL[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"partial\":";

/* Fills `res` per the configured behaviour; returns a short text for the log. */
static const char *decide(sink_t *s, const rc_event_t *first, rc_http_server_response_t *res,
                          char *buf, size_t cap)
{
    int failing = s->fail != FAIL_NONE && (s->fail_first == 0 || s->requests <= s->fail_first);
    if (failing) {
        switch (s->fail) {
        case FAIL_HANG:
            res->hold = 1;
            return "hang";
        case FAIL_RESET:
            res->raw = 1;
            res->reset = 1;
            res->body = PARTIAL;
            res->body_len = sizeof(PARTIAL) - 1;
            return "reset";
        case FAIL_GARBAGE:
            res->raw = 1;
            res->body = GARBAGE;
            res->body_len = sizeof(GARBAGE) - 1;
            return "garbage";
        default:
            if (s->fail_status == 304) {
                res->status = 304; /* a 304 has no body (RFC 9110 15.4.5) */
            } else {
                rc_http_response_error(res, s->fail_status, "ringcast sink told to fail");
            }
            snprintf(buf, cap, "%d", s->fail_status);
            return buf;
        }
    }
    if (s->reply_type != NULL && first != NULL) {
        if (answer_reply(s, first, res) == 0) {
            snprintf(buf, cap, "200 reply type=%s id=%s", s->reply_type, s->reply_id);
            return buf;
        }
        rc_http_response_error(res, 500, "cannot encode the reply event");
        return "500 (reply not encodable)";
    }
    res->status = s->ok_status;
    snprintf(buf, cap, "%d", s->ok_status);
    return buf;
}

/* ---- delayed answers -------------------------------------------------------------------- */

/* An answer held for --delay: a copy of the response, sent by a timer. */
typedef struct delayed_s {
    uv_timer_t timer;
    sink_t *sink;
    struct delayed_s *prev, *next;
    uint64_t conn_id;
    rc_http_server_response_t res; /* headers and body point into `bytes` */
    char bytes[];
} delayed_t;

static void on_delayed_closed(uv_handle_t *h)
{
    free(h->data);
}

static void delayed_send(delayed_t *d)
{
    sink_t *s = d->sink;
    if (d->prev != NULL)
        d->prev->next = d->next;
    else
        s->delayed = d->next;
    if (d->next != NULL)
        d->next->prev = d->prev;
    if (s->srv != NULL)
        rc_http_server_respond(s->srv, d->conn_id, &d->res); /* -ENOENT: the client left */
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, on_delayed_closed);
}

static void on_delay_timer(uv_timer_t *t)
{
    delayed_send(t->data);
}

/* Turns `res` into a held answer sent after --delay ms. Returns 0 or -ENOMEM. */
static int delay_answer(sink_t *s, uint64_t conn_id, rc_http_server_response_t *res)
{
    delayed_t *d = malloc(sizeof(*d) + res->headers_len + res->body_len);
    if (d == NULL)
        return -ENOMEM;
    d->sink = s;
    d->conn_id = conn_id;
    memset(&d->res, 0, offsetof(rc_http_server_response_t, scratch));
    d->res.status = res->status;
    d->res.content_type = res->content_type; /* static strings only */
    d->res.close = res->close;
    if (res->headers_len > 0)
        memcpy(d->bytes, res->headers, res->headers_len);
    if (res->body_len > 0)
        memcpy(d->bytes + res->headers_len, res->body, res->body_len);
    d->res.headers = d->bytes;
    d->res.headers_len = res->headers_len;
    d->res.body = d->bytes + res->headers_len;
    d->res.body_len = res->body_len;
    uv_timer_init(&s->loop, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, on_delay_timer, s->delay_ms, 0);
    d->prev = NULL;
    d->next = s->delayed;
    if (s->delayed != NULL)
        s->delayed->prev = d;
    s->delayed = d;
    res->hold = 1;
    return 0;
}

static void on_request(void *data, const rc_http_server_request_t *req,
                       rc_http_server_response_t *res)
{
    sink_t *s = data;
    /* /healthz (ours) and /health (the seed's consumer's probe path) */
    int is_health = (req->path_len == 8 && memcmp(req->path, "/healthz", 8) == 0) ||
                    (req->path_len == 7 && memcmp(req->path, "/health", 7) == 0);
    if (req->method == RC_HTTP_GET || req->method == RC_HTTP_HEAD) {
        if (!is_health) {
            rc_http_response_error(res, 404,
                                   "only GET /healthz, GET /health and POST events are served");
            return;
        }
        res->status = 200;
        res->content_type = "text/plain";
        res->body = "ok\n";
        res->body_len = 3;
        return;
    }
    if (req->method != RC_HTTP_POST) {
        rc_http_response_error(res, 405, "method not allowed: POST events, GET /healthz");
        res->headers = "Allow: GET, POST\r\n";
        res->headers_len = strlen(res->headers);
        return;
    }
    s->requests++;
    rc_arena_reset(&s->arena);
    const rc_http_header_t *ct = rc_http_find_header(req, "content-type");
    rc_ce_mode_t mode = rc_ce_classify(ct ? ct->value : (rc_str_t){NULL, 0});
    rc_event_t *events = NULL;
    size_t n = 0;
    rc_ce_error_t cerr;
    memset(&cerr, 0, sizeof(cerr));
    cerr.index = -1;
    rc_str_t body = {req->body ? req->body : "", req->body_len};
    int rc = rc_ce_decode_request(req->headers, req->header_count, body, &s->arena, SINK_MAX_BATCH,
                                  &events, &n, &cerr);
    if (rc != 0) {
        char msg[300];
        if (rc == RC_EINVALID_EVENT)
            rc_ce_error_format(&cerr, msg, sizeof(msg));
        else if (rc == RC_EUNSUPPORTED_MEDIA)
            snprintf(msg, sizeof(msg), "only the JSON event format is supported");
        else
            snprintf(msg, sizeof(msg), "cannot decode the request: %s", rc_strerror(rc));
        int status = rc == RC_EUNSUPPORTED_MEDIA ? 415 : rc == -ENOMEM ? 503 : 400;
        char ts[32];
        rc__cli_time_of_day(ts);
        printf("%s invalid request (%s) -> %d\n", ts, msg, status);
        fflush(stdout);
        rc_http_response_error(res, status, msg);
        return;
    }
    char buf[160];
    const char *answer = decide(s, n > 0 ? &events[0] : NULL, res, buf, sizeof(buf));
    if (s->delay_ms > 0 && !res->hold && delay_answer(s, req->conn_id, res) != 0)
        rc_http_response_error(res, 503, "out of memory"); /* answered at once */
    for (size_t i = 0; i < n; i++) {
        if (!s->quiet)
            log_event(&events[i], mode, answer);
        write_out(s, &events[i]);
        s->events++;
    }
    if (s->max_events > 0 && s->events >= s->max_events && !s->stopping) {
        res->close = 1;
        uv_timer_start(&s->stop_timer, on_stop_timer, 0, 0); /* after this answer is queued */
    }
}

static void on_rejected(void *data, int status, const char *reason)
{
    (void)data;
    char ts[32];
    rc__cli_time_of_day(ts);
    printf("%s rejected malformed request (%s) -> %d\n", ts, reason, status);
    fflush(stdout);
}

/* ---- command ----------------------------------------------------------------------------- */

/* Fills `s` from the command line; `*listen` and `*out_path` borrow argv. Returns RC_CLI_GO_ON
 * or the exit code (0 after --help). */
static int parse_options(sink_t *s, const char **listen, const char **out_path, int argc,
                         char **argv)
{
    uint64_t status = 0;
    int hang = 0, reset = 0, garbage = 0;
    const rc_cli_opt_t opts[] = {
        RC_CLI_OPT_STRING("listen", listen, "ADDR:PORT",
                          "where to listen (default 127.0.0.1:8080; port 0 picks a free one)"),
        RC_CLI_OPT_UINT("status", &status, "CODE", 200, 599,
                        "answer CODE; a 2xx code is the normal answer, any other code is a "
                        "failure with a JSON error body (none for 304) (default: 200)"),
        RC_CLI_OPT_UINT("delay", &s->delay_ms, "MS", 0, 3600000,
                        "answer each POST MS milliseconds late (requests are held, not queued: "
                        "many can wait at once; a stop answers them at once)"),
        RC_CLI_OPT_STRING("reply-type", &s->reply_type, "T",
                          "answer 200 with a binary-mode reply event of type T (new id, source "
                          "/ringcast/sink/ADDR:PORT, the received data, extension inreplyto)"),
        RC_CLI_OPT_FLAG("hang", &hang, "failure: read the request and never answer"),
        RC_CLI_OPT_FLAG("reset", &reset, "failure: send the start of a response, then a TCP reset"),
        RC_CLI_OPT_FLAG("garbage", &garbage, "failure: answer bytes that are not HTTP, then close"),
        RC_CLI_OPT_UINT("fail-first", &s->fail_first, "N", 1, UINT64_MAX,
                        "fail only the first N requests (default failure: 500), then answer "
                        "normally; without it a failure mode applies to every request"),
        RC_CLI_OPT_UINT("count", &s->max_events, "N", 1, UINT64_MAX, "exit 0 after N events"),
        RC_CLI_OPT_STRING("out", out_path, "FILE",
                          "append every event to FILE as one structured-mode JSON line"),
        RC_CLI_OPT_FLAG("quiet", &s->quiet, "no log line per event (for load tests)"),
        RC_CLI_OPT_END,
    };
    const rc_cli_spec_t spec = {
        .command = "sink",
        .synopsis = "sink [--listen ADDR:PORT] [--status CODE] [--delay MS]\n"
                    "                     [--reply-type TYPE] [--fail-first N] [--hang | --reset "
                    "| --garbage]\n"
                    "                     [--count N] [--out FILE] [--quiet]",
        .about =
            "An HTTP CloudEvents consumer. Every POST (any path) is decoded as a CloudEvent in\n"
            "binary, structured or batch mode and logged on stdout, one line per event;\n"
            "GET /healthz and GET /health answer 200. Prints 'listening ADDR:PORT' on stdout\n"
            "when ready.\n",
        .epilogue =
            "An invalid event is answered 400 with {\"error\": ...}. SIGTERM or SIGINT stops "
            "the sink.\n"
            "Exit codes: 0 stopped by a signal or after --count events, 1 cannot listen "
            "or open\n--out, 2 bad usage.\n",
        .opts = opts,
    };
    int code = rc__cli_parse(&spec, argc, argv);
    if (code != RC_CLI_GO_ON)
        return code;
    int modes = hang + reset + garbage;
    if (modes > 1 || (modes == 1 && status >= 300))
        return rc__cli_fail(&spec, "--hang, --reset, --garbage and a failing --status exclude "
                                   "each other");
    if (s->reply_type != NULL && s->reply_type[0] == '\0')
        return rc__cli_fail(&spec, "--reply-type must not be empty");
    s->fail = hang ? FAIL_HANG : reset ? FAIL_RESET : garbage ? FAIL_GARBAGE : FAIL_NONE;
    s->ok_status = 200;
    if (status >= 200 && status < 300) {
        s->ok_status = (int)status;
    } else if (status >= 300) {
        s->fail = FAIL_STATUS;
        s->fail_status = (int)status;
    }
    if (s->fail_first > 0 && s->fail == FAIL_NONE) {
        s->fail = FAIL_STATUS;
        s->fail_status = 500;
    }
    if (s->reply_type != NULL && s->ok_status != 200)
        return rc__cli_fail(&spec, "--reply-type answers 200; it excludes --status %d",
                            s->ok_status);
    if (rc_config_parse_addr(*listen, s->host, sizeof(s->host), &s->port) != 0)
        return rc__cli_fail(&spec, "--listen must be IP:PORT, not '%s'", *listen);
    return RC_CLI_GO_ON;
}

/* Serves until a signal or --count stops the sink. Returns the exit code: 0, or 1 when it
 * cannot listen. */
static int run(sink_t *s, const char *listen)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    rc_arena_init(&s->arena, NULL, 0, 64u << 20);
    uv_loop_init(&s->loop);
    uv_async_init(&s->loop, &s->wake, on_wake);
    s->wake.data = s;
    uv_timer_init(&s->loop, &s->stop_timer);
    s->stop_timer.data = s;
    g_sink = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: a --delay sleep wakes up */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc_http_server_options_t opt;
    memset(&opt, 0, sizeof(opt));
    opt.host = s->host;
    opt.port = s->port;
    rc_http_limits_default(&opt.limits);
    opt.limits.max_body_bytes = 16u << 20;
    opt.limits.drain_timeout_ms = 1000;
    opt.handler.on_request = on_request;
    opt.handler.on_rejected = on_rejected;
    opt.handler.data = s;
    int rc = rc_http_server_create(&s->loop, &opt, &s->srv);
    int code = 0;
    if (rc != 0) {
        fprintf(stderr, "ringcast sink: cannot listen on %s: %s\n", listen, uv_strerror(rc));
        uv_close((uv_handle_t *)&s->wake, NULL);
        uv_close((uv_handle_t *)&s->stop_timer, NULL);
        code = 1;
    } else {
        s->port = rc_http_server_port(s->srv);
        int v6 = strchr(s->host, ':') != NULL;
        snprintf(s->source, sizeof(s->source), "/ringcast/sink/%s%s%s:%d", v6 ? "[" : "", s->host,
                 v6 ? "]" : "", s->port);
        printf("listening %s%s%s:%d\n", v6 ? "[" : "", s->host, v6 ? "]" : "", s->port);
        if (g_stop)
            begin_stop(s);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    g_sink = NULL;
    uv_loop_close(&s->loop);
    rc_arena_close(&s->arena);
    return code;
}

int rc_cmd_sink(int argc, char **argv)
{
    static sink_t s;
    memset(&s, 0, sizeof(s));
    const char *listen = "127.0.0.1:8080", *out_path = NULL;
    int code = parse_options(&s, &listen, &out_path, argc, argv);
    if (code != RC_CLI_GO_ON)
        return code;
    if (out_path != NULL) {
        s.out = fopen(out_path, "ae");
        if (s.out == NULL) {
            fprintf(stderr, "ringcast sink: cannot open --out %s: %s\n", out_path, strerror(errno));
            return 1;
        }
    }
    code = run(&s, listen);
    free(s.jbuf);
    if (s.out != NULL)
        fclose(s.out);
    return code;
}
