/* `ringcast send`: posts a CloudEvent to a URL and prints the response status (a tiny
 * `kn event send`). A small blocking HTTP/1.1 client: one connection, one request, the status
 * line and body read back, every step under a timeout. */
#include <errno.h>
#include <signal.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/codec_http.h"
#include "core/codec_json.h"
#include "core/config.h"
#include "core/event.h"
#include "net/cli/cli.h"
#include "net/cli/options.h"
#include "net/cli/stamps.h"

#define SEND_MAX_EXT   16
#define SEND_MAX_TYPES 64

typedef struct {
    char host[256];
    char port[8];
    const char *path;
} url_t;

static int parse_url(const char *s, url_t *u)
{
    if (strncmp(s, "http://", 7) != 0)
        return -EINVAL;
    const char *h = s + 7;
    const char *slash = strchr(h, '/');
    u->path = slash ? slash : "/";
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    const char *colon = NULL;
    const char *hs = h;
    size_t hostlen = hl;
    if (hl > 0 && h[0] == '[') {
        const char *close = memchr(h, ']', hl);
        if (close == NULL)
            return -EINVAL;
        hs = h + 1;
        hostlen = (size_t)(close - hs);
        if (close + 1 < h + hl) {
            if (close[1] != ':')
                return -EINVAL;
            colon = close + 1;
        }
    } else {
        colon = memchr(h, ':', hl);
        if (colon != NULL)
            hostlen = (size_t)(colon - h);
    }
    if (hostlen == 0 || hostlen >= sizeof(u->host))
        return -EINVAL;
    memcpy(u->host, hs, hostlen);
    u->host[hostlen] = '\0';
    if (colon != NULL) {
        size_t pl = (size_t)(h + hl - colon - 1);
        if (pl == 0 || pl >= sizeof(u->port))
            return -EINVAL;
        memcpy(u->port, colon + 1, pl);
        u->port[pl] = '\0';
        for (size_t i = 0; i < pl; i++) {
            if (u->port[i] < '0' || u->port[i] > '9')
                return -EINVAL;
        }
    } else {
        strcpy(u->port, "80");
    }
    return 0;
}

static int connect_to(const url_t *u, int timeout_s, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(u->host, u->port, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(g));
        return -1;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        struct timeval tv = {timeout_s, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "cannot connect to %s:%s: %s", u->host, u->port, strerror(e));
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads the whole response (the request asked for Connection: close). */
static int read_response(int fd, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    for (;;) {
        if (n == cap) {
            if (cap >= (8u << 20))
                break; /* more than any answer we care to print */
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        /* Stop once the head and a Content-Length body are complete. */
        char *end = memmem(buf, n, "\r\n\r\n", 4);
        if (end != NULL) {
            size_t head = (size_t)(end - buf) + 4;
            char *cl = memmem(buf, head, "\r\nContent-Length:", 17);
            if (cl != NULL && n >= head + strtoul(cl + 17, NULL, 10))
                break;
        }
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Sends `ev` once: a new connection, the request, the whole response. Returns the HTTP status,
 * or -1 with `err` filled. `*resp`/`*rlen` get the raw response (caller frees). */
static int post_event(const url_t *u, const rc_event_t *ev, int structured, int timeout_s,
                      char **resp, size_t *rlen, char *err, size_t errlen)
{
    size_t need = 0;
    char *block = NULL, *req = NULL;
    int status = -1, fd = -1;
    *resp = NULL;
    *rlen = 0;
    int rc = structured ? rc_ce_write_structured(ev, 0, NULL, 0, &need)
                        : rc_ce_write_binary(ev, 0, NULL, 0, &need);
    block = malloc(need + 1);
    if (block == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rc = structured ? rc_ce_write_structured(ev, 0, block, need, &need)
                    : rc_ce_write_binary(ev, 0, block, need, &need);
    if (rc != 0) {
        snprintf(err, errlen, "cannot encode the event: %d", rc);
        goto out;
    }
    const char *body = structured ? block : (ev->data.ptr ? ev->data.ptr : "");
    size_t body_len = structured ? need : ev->data.len;
    size_t req_cap = 512 + strlen(u->path) + strlen(u->host) + need + body_len;
    req = malloc(req_cap);
    if (req == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    int n =
        snprintf(req, req_cap,
                 "POST %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: ringcast-send/" RC_VERSION_STRING
                 "\r\nConnection: close\r\nContent-Length: %zu\r\n%s",
                 u->path, u->host, u->port, body_len,
                 structured ? "Content-Type: application/cloudevents+json\r\n" : "");
    size_t len = (size_t)n;
    if (!structured) {
        memcpy(req + len, block, need);
        len += need;
    }
    memcpy(req + len, "\r\n", 2);
    len += 2;
    memcpy(req + len, body, body_len);
    len += body_len;

    fd = connect_to(u, timeout_s, err, errlen);
    if (fd < 0)
        goto out;
    rc = send_all(fd, req, len);
    if (rc == 0)
        rc = read_response(fd, resp, rlen);
    if (rc != 0) {
        snprintf(err, errlen, "%s:%s: %s", u->host, u->port,
                 rc == -EAGAIN ? "timed out" : strerror(-rc));
        goto out;
    }
    char *eol = memmem(*resp, *rlen, "\r\n", 2);
    if (*rlen < 12 || strncmp(*resp, "HTTP/1.", 7) != 0 || eol == NULL) {
        snprintf(err, errlen, "not an HTTP response from %s:%s", u->host, u->port);
        goto out;
    }
    status = atoi(*resp + 9);
out:
    if (fd >= 0)
        close(fd);
    free(block);
    free(req);
    return status;
}

static volatile sig_atomic_t g_send_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    g_send_stop = 1;
}

/* Sleeps `ms` unless a stop signal arrives. */
static void pause_ms(uint64_t ms)
{
    struct timespec end, now;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += (time_t)(ms / 1000);
    end.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    while (!g_send_stop) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
            return;
        struct timespec step = {0, 20 * 1000000L};
        nanosleep(&step, NULL);
    }
}

/* The command line, parsed and checked. */
typedef struct {
    const char *url, *type, *source, *id, *data, *subject, *etime, *ctype, *types_arg;
    int structured;     /* --mode: 0 binary, 1 structured */
    uint64_t timeout_s; /* per connect, read or write */
    uint64_t every_ms;  /* SEND_UNSET without --every */
    uint64_t count;     /* sends to make */
    const char *ext_items[SEND_MAX_EXT];
    rc_cli_list_t exts; /* NAME=VALUE */
    int repeat;         /* --types, --every or --count: the demo's producer loop */
    const char *types[SEND_MAX_TYPES];
    size_t ntypes;
    char types_buf[4096]; /* --types, split in place */
    url_t u;
} send_opts_t;

#define SEND_UNSET UINT64_MAX

/* Splits --types at commas into `o->types`. Returns RC_CLI_GO_ON or 2. */
static int split_types(const rc_cli_spec_t *spec, send_opts_t *o)
{
    if (strlen(o->types_arg) >= sizeof(o->types_buf))
        return rc__cli_fail(spec, "--types is too long");
    strcpy(o->types_buf, o->types_arg);
    for (char *p = o->types_buf;;) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        if (*p == '\0' || o->ntypes == SEND_MAX_TYPES)
            return rc__cli_fail(spec,
                                "--types takes 1..%d non-empty types separated by commas, "
                                "not '%s'",
                                SEND_MAX_TYPES, o->types_arg);
        o->types[o->ntypes++] = p;
        if (comma == NULL)
            return RC_CLI_GO_ON;
        p = comma + 1;
    }
}

/* What the option table cannot say: required and exclusive options, the defaults that depend
 * on the mode (one send or the producer loop), --ext and the URL. Returns RC_CLI_GO_ON or 2. */
static int check_options(const rc_cli_spec_t *spec, send_opts_t *o, uint64_t count_arg)
{
    for (size_t i = 0; i < o->exts.count; i++) {
        const char *v = o->exts.items[i];
        if (strchr(v, '=') == NULL || v[0] == '=')
            return rc__cli_fail(spec, "--ext takes NAME=VALUE (at most %d)", SEND_MAX_EXT);
    }
    o->repeat = o->types_arg != NULL || o->every_ms != SEND_UNSET || count_arg != 0;
    if (o->repeat && o->source == NULL)
        o->source = "/ringcast/send";
    if (o->type != NULL && o->types_arg != NULL)
        return rc__cli_fail(spec, "--type and --types exclude each other");
    if (o->url == NULL || (o->type == NULL && o->types_arg == NULL) || o->source == NULL) {
        rc__cli_fail(spec, "URL, --type and --source are required (--types may replace --type)");
        rc__cli_help(spec, stderr);
        return 2;
    }
    if (o->types_arg != NULL && split_types(spec, o) != RC_CLI_GO_ON)
        return 2;
    if (o->types_arg == NULL)
        o->types[o->ntypes++] = o->type;
    o->count = o->repeat ? o->ntypes : 1;
    if (o->every_ms != SEND_UNSET)
        o->count = UINT64_MAX;
    else
        o->every_ms = 0;
    if (count_arg != 0)
        o->count = count_arg;
    if (parse_url(o->url, &o->u) != 0)
        return rc__cli_fail(spec, "URL must be http://HOST[:PORT]/PATH, not '%s'", o->url);
    return RC_CLI_GO_ON;
}

/* Fills `o` from the command line. Returns RC_CLI_GO_ON or the exit code (0 after --help). */
static int parse_options(send_opts_t *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->timeout_s = 10;
    o->every_ms = SEND_UNSET;
    o->exts = (rc_cli_list_t){o->ext_items, SEND_MAX_EXT, 0};
    uint64_t count_arg = 0;
    const rc_cli_opt_t opts[] = {
        RC_CLI_OPT_STRING("type", &o->type, "TYPE", "the event's type"),
        RC_CLI_OPT_STRING("source", &o->source, "SOURCE",
                          "the event's source (repeating: default /ringcast/send)"),
        RC_CLI_OPT_STRING("id", &o->id, "ID",
                          "the event's id (default: a new random UUID per event; repeating: "
                          "ID-N)"),
        RC_CLI_OPT_STRING("data", &o->data, "JSON",
                          "the data, sent as is, with datacontenttype application/json unless "
                          "--content-type says otherwise (repeating: default {\"seq\":N})"),
        RC_CLI_OPT_CHOICE("mode", &o->structured, "binary|structured",
                          "the HTTP content mode (default binary)"),
        RC_CLI_OPT_STRING("subject", &o->subject, "S", "the event's subject"),
        RC_CLI_OPT_STRING("time", &o->etime, "RFC3339", "the event's time"),
        RC_CLI_OPT_STRING("content-type", &o->ctype, "MEDIA", "the event's datacontenttype"),
        RC_CLI_OPT_LIST("ext", &o->exts, "NAME=VALUE",
                        "an extension attribute (a String); repeatable, up to 16"),
        RC_CLI_OPT_UINT("timeout", &o->timeout_s, "SECONDS", 1, 3600,
                        "for connecting and each read or write (default 10)"),
        RC_CLI_OPT_STRING("types", &o->types_arg, "T1,T2,...",
                          "repeat, cycling through these types (instead of --type)"),
        RC_CLI_OPT_DURATION("every", &o->every_ms, "DURATION", 0, 86400000,
                            "repeat, waiting DURATION (250ms, 5s, 1m) between sends"),
        RC_CLI_OPT_UINT("count", &count_arg, "N", 1, UINT64_MAX,
                        "repeat, stopping after N sends (default: forever with --every, one per "
                        "type without)"),
        RC_CLI_OPT_END,
    };
    const rc_cli_spec_t spec = {
        .command = "send",
        .synopsis =
            "send URL --type TYPE --source SOURCE [--id ID] [--data JSON]\n"
            "                     [--mode binary|structured] [--subject S] [--time RFC3339]\n"
            "                     [--content-type MEDIA] [--ext NAME=VALUE]... [--timeout "
            "SECONDS]\n"
            "       ringcast send URL --types T1,T2,... [--every DURATION] [--count N] [options]",
        .about =
            "Posts one CloudEvent (specversion 1.0) to URL (http://HOST:PORT/NAMESPACE/BROKER)\n"
            "and prints the response status line, then the response body if any.\n\n"
            "Repeating (the demo's producer): --types, --every or --count sends one event\n"
            "after another. Each send prints one line:\n"
            "  HH:MM:SS.mmmZ sent N type=T id=ID -> STATUS (or -> error: WHY)\n"
            "A failed send does not stop the loop. SIGTERM or SIGINT stops.\n",
        .epilogue = "Exit codes: 0 the server answered 2xx (every send), 1 it answered otherwise "
                    "or could\nnot be reached (any send), 2 bad usage.\n",
        .opts = opts,
        .operand_name = "URL",
        .operand = &o->url,
    };
    int code = rc__cli_parse(&spec, argc, argv);
    return code != RC_CLI_GO_ON ? code : check_options(&spec, o, count_arg);
}

/* Builds send number `seq` into `ev`, whose views borrow `o`, `idbuf` and `databuf`. Returns 0
 * or -1 (too many extensions). */
static int build_event(const send_opts_t *o, uint64_t seq, char idbuf[300], char databuf[48],
                       rc_event_t *ev)
{
    if (o->id == NULL)
        rc__cli_uuid4(idbuf);
    else if (o->repeat)
        snprintf(idbuf, 300, "%.250s-%llu", o->id, (unsigned long long)seq);
    else
        snprintf(idbuf, 300, "%s", o->id);
    ev->specversion = RC_STR("1.0");
    ev->id = rc_str(idbuf);
    ev->source = rc_str(o->source);
    ev->type = rc_str(o->types[(seq - 1) % o->ntypes]);
    ev->subject = rc_str(o->subject);
    ev->time = rc_str(o->etime);
    const char *d = o->data;
    if (d == NULL && o->repeat) {
        snprintf(databuf, 48, "{\"seq\":%llu}", (unsigned long long)seq);
        d = databuf;
    }
    if (d != NULL) {
        ev->data = rc_str(d);
        ev->datacontenttype = rc_str(o->ctype ? o->ctype : "application/json");
    } else {
        ev->datacontenttype = rc_str(o->ctype);
    }
    for (size_t i = 0; i < o->exts.count; i++) {
        const char *x = o->exts.items[i], *eq = strchr(x, '=');
        rc_str_t name = {x, (size_t)(eq - x)};
        if (rc_event_set_ext(ev, NULL, name, rc_str(eq + 1), RC_CE_STRING) != 0)
            return -1;
    }
    return 0;
}

/* Prints the outcome of one send: a log line when repeating, else the status line, the body
 * and the id. `status` is -1 (with `err`) when there was no answer. */
static void report(const send_opts_t *o, uint64_t seq, const char *id, int status, const char *resp,
                   size_t rlen, const char *err)
{
    const char *eol = status < 0 ? NULL : memmem(resp, rlen, "\r\n", 2);
    if (o->repeat) {
        char ts[32];
        rc__cli_time_of_day(ts);
        printf("%s sent %llu type=%s id=%s -> ", ts, (unsigned long long)seq,
               o->types[(seq - 1) % o->ntypes], id);
        if (status < 0)
            printf("error: %s\n", err);
        else
            printf("%.*s\n", (int)(eol - resp - 9), resp + 9);
        return;
    }
    if (status < 0) {
        fprintf(stderr, "ringcast send: %s\n", err);
        return;
    }
    printf("%.*s\n", (int)(eol - resp - 9), resp + 9);
    const char *end = memmem(resp, rlen, "\r\n\r\n", 4);
    if (end != NULL && end + 4 < resp + rlen) {
        fwrite(end + 4, 1, (size_t)(resp + rlen - end - 4), stdout);
        if (resp[rlen - 1] != '\n')
            putchar('\n');
    }
    printf("id: %s\n", id);
}

int rc_cmd_send(int argc, char **argv)
{
    send_opts_t o;
    int code = parse_options(&o, argc, argv);
    if (code != RC_CLI_GO_ON)
        return code;
    if (o.repeat) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        setvbuf(stdout, NULL, _IOLBF, 0);
    }
    code = 0;
    for (uint64_t seq = 1; seq <= o.count && !g_send_stop; seq++) {
        if (seq > 1 && o.every_ms > 0) {
            pause_ms(o.every_ms);
            if (g_send_stop)
                break;
        }
        char idbuf[300], databuf[48];
        rc_ce_ext_t ext[SEND_MAX_EXT];
        rc_event_t ev;
        rc_event_init(&ev, ext, SEND_MAX_EXT);
        if (build_event(&o, seq, idbuf, databuf, &ev) != 0) {
            fprintf(stderr, "ringcast send: too many extensions\n");
            return 2;
        }
        char err[300];
        char *resp = NULL;
        size_t rlen = 0;
        int status =
            post_event(&o.u, &ev, o.structured, (int)o.timeout_s, &resp, &rlen, err, sizeof(err));
        if (status < 200 || status >= 300)
            code = 1;
        report(&o, seq, idbuf, status, resp, rlen, err);
        free(resp);
    }
    return code;
}
