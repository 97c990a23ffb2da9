/* `ringcast send`: posts a CloudEvent to a URL and prints the response status (a tiny
 * `kn event send`). A small blocking HTTP/1.1 client: one connection, one request, the status
 * line and body read back, every step under a timeout. */
#include <errno.h>
#include <signal.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/codec_http.h"
#include "core/codec_json.h"
#include "core/config.h"
#include "core/event.h"
#include "net/cli/cli.h"

#define SEND_MAX_EXT   16
#define SEND_MAX_TYPES 64

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: ringcast send URL --type TYPE --source SOURCE [--id ID] [--data JSON]\n"
        "                     [--mode binary|structured] [--subject S] [--time RFC3339]\n"
        "                     [--content-type MEDIA] [--ext NAME=VALUE]... [--timeout SECONDS]\n"
        "       ringcast send URL --types T1,T2,... [--every DURATION] [--count N] [options]\n\n"
        "Posts one CloudEvent (specversion 1.0) to URL (http://HOST:PORT/NAMESPACE/BROKER)\n"
        "and prints the response status line, then the response body if any.\n"
        "--id defaults to a random UUID; --data is sent as is with datacontenttype\n"
        "application/json unless --content-type says otherwise; --mode defaults to binary.\n\n"
        "Repeating (the demo's producer): --types cycles through the listed types, --every\n"
        "waits DURATION (250ms, 5s, 1m) between sends, --count stops after N sends (default:\n"
        "forever with --every, one per type without). Each send prints one line:\n"
        "  HH:MM:SS.mmmZ sent N type=T id=ID -> STATUS (or -> error: WHY)\n"
        "A failed send does not stop the loop. --source defaults to /ringcast/send, --data to\n"
        "{\"seq\":N}, --id to a new UUID per event (ID-N with --id). SIGTERM or SIGINT stops.\n\n"
        "Exit codes: 0 the server answered 2xx (every send), 1 it answered otherwise or could\n"
        "not be reached (any send), 2 bad usage.\n");
}

static void uuid4(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (unsigned char)((ts.tv_nsec >> (i % 4 * 8)) ^ (getpid() >> (i % 2 * 8)) ^ i);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

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

static void now_hms(char buf[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, 32, "%H:%M:%S", &tm);
    snprintf(buf + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

int rc_cmd_send(int argc, char **argv)
{
    const char *url = NULL, *type = NULL, *source = NULL, *id = NULL, *data = NULL;
    const char *mode = "binary", *subject = NULL, *etime = NULL, *ctype = NULL;
    const char *types_arg = NULL, *every = NULL, *count_arg = NULL;
    const char *exts[SEND_MAX_EXT];
    size_t next = 0;
    int timeout_s = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (url != NULL) {
                fprintf(stderr, "ringcast send: more than one URL ('%s')\n", a);
                return 2;
            }
            url = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ringcast send: %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--type") == 0) {
            type = v;
        } else if (strcmp(a, "--types") == 0) {
            types_arg = v;
        } else if (strcmp(a, "--every") == 0) {
            every = v;
        } else if (strcmp(a, "--count") == 0) {
            count_arg = v;
        } else if (strcmp(a, "--source") == 0) {
            source = v;
        } else if (strcmp(a, "--id") == 0) {
            id = v;
        } else if (strcmp(a, "--data") == 0) {
            data = v;
        } else if (strcmp(a, "--mode") == 0) {
            mode = v;
        } else if (strcmp(a, "--subject") == 0) {
            subject = v;
        } else if (strcmp(a, "--time") == 0) {
            etime = v;
        } else if (strcmp(a, "--content-type") == 0) {
            ctype = v;
        } else if (strcmp(a, "--ext") == 0) {
            if (next == SEND_MAX_EXT || strchr(v, '=') == NULL || v[0] == '=') {
                fprintf(stderr, "ringcast send: --ext takes NAME=VALUE (at most %d)\n",
                        SEND_MAX_EXT);
                return 2;
            }
            exts[next++] = v;
        } else if (strcmp(a, "--timeout") == 0) {
            timeout_s = atoi(v);
            if (timeout_s <= 0 || timeout_s > 3600) {
                fprintf(stderr, "ringcast send: --timeout must be 1..3600 seconds\n");
                return 2;
            }
        } else {
            fprintf(stderr, "ringcast send: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    int repeat = types_arg != NULL || every != NULL || count_arg != NULL;
    if (repeat && source == NULL)
        source = "/ringcast/send";
    if (type != NULL && types_arg != NULL) {
        fprintf(stderr, "ringcast send: --type and --types exclude each other\n");
        return 2;
    }
    if (url == NULL || (type == NULL && types_arg == NULL) || source == NULL) {
        fprintf(stderr, "ringcast send: URL, --type and --source are required (--types may replace "
                        "--type)\n");
        usage(stderr);
        return 2;
    }
    /* The types to cycle through: --type alone, or --types split at commas. */
    char types_buf[4096];
    const char *types[SEND_MAX_TYPES];
    size_t ntypes = 0;
    if (types_arg != NULL) {
        if (strlen(types_arg) >= sizeof(types_buf)) {
            fprintf(stderr, "ringcast send: --types is too long\n");
            return 2;
        }
        strcpy(types_buf, types_arg);
        for (char *p = types_buf;;) {
            char *comma = strchr(p, ',');
            if (comma != NULL)
                *comma = '\0';
            if (*p == '\0' || ntypes == SEND_MAX_TYPES) {
                fprintf(stderr,
                        "ringcast send: --types takes 1..%d non-empty types separated "
                        "by commas, not '%s'\n",
                        SEND_MAX_TYPES, types_arg);
                return 2;
            }
            types[ntypes++] = p;
            if (comma == NULL)
                break;
            p = comma + 1;
        }
    } else {
        types[ntypes++] = type;
    }
    uint64_t every_ms = 0, count = repeat ? ntypes : 1;
    if (every != NULL) {
        if (rc_config_parse_duration_ms(every, &every_ms) != 0 || every_ms > 86400000) {
            fprintf(stderr,
                    "ringcast send: --every must be a duration (250ms, 5s, 1m) up to "
                    "a day, not '%s'\n",
                    every);
            return 2;
        }
        count = UINT64_MAX;
    }
    if (count_arg != NULL) {
        char *end;
        errno = 0;
        unsigned long long c = strtoull(count_arg, &end, 10);
        if (count_arg[0] < '1' || count_arg[0] > '9' || *end != '\0' || errno != 0) {
            fprintf(stderr, "ringcast send: --count must be a positive integer, not '%s'\n",
                    count_arg);
            return 2;
        }
        count = c;
    }
    int structured = strcmp(mode, "structured") == 0;
    if (!structured && strcmp(mode, "binary") != 0) {
        fprintf(stderr, "ringcast send: --mode must be binary or structured, not '%s'\n", mode);
        return 2;
    }
    url_t u;
    if (parse_url(url, &u) != 0) {
        fprintf(stderr, "ringcast send: URL must be http://HOST[:PORT]/PATH, not '%s'\n", url);
        return 2;
    }

    if (repeat) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        setvbuf(stdout, NULL, _IOLBF, 0);
    }
    int code = 0;
    for (uint64_t seq = 1; seq <= count && !g_send_stop; seq++) {
        if (seq > 1 && every_ms > 0) {
            pause_ms(every_ms);
            if (g_send_stop)
                break;
        }
        char idbuf[300], databuf[48];
        if (id == NULL)
            uuid4(idbuf);
        else if (repeat)
            snprintf(idbuf, sizeof(idbuf), "%.250s-%llu", id, (unsigned long long)seq);
        else
            snprintf(idbuf, sizeof(idbuf), "%s", id);
        rc_ce_ext_t ext[SEND_MAX_EXT];
        rc_event_t ev;
        rc_event_init(&ev, ext, SEND_MAX_EXT);
        ev.specversion = RC_STR("1.0");
        ev.id = rc_str(idbuf);
        ev.source = rc_str(source);
        ev.type = rc_str(types[(seq - 1) % ntypes]);
        ev.subject = rc_str(subject);
        ev.time = rc_str(etime);
        const char *d = data;
        if (d == NULL && repeat) {
            snprintf(databuf, sizeof(databuf), "{\"seq\":%llu}", (unsigned long long)seq);
            d = databuf;
        }
        if (d != NULL) {
            ev.data = rc_str(d);
            ev.datacontenttype = rc_str(ctype ? ctype : "application/json");
        } else {
            ev.datacontenttype = rc_str(ctype);
        }
        for (size_t i = 0; i < next; i++) {
            const char *eq = strchr(exts[i], '=');
            rc_str_t name = {exts[i], (size_t)(eq - exts[i])};
            if (rc_event_set_ext(&ev, NULL, name, rc_str(eq + 1), RC_CE_STRING) != 0) {
                fprintf(stderr, "ringcast send: too many extensions\n");
                return 2;
            }
        }
        char err[300];
        char *resp = NULL;
        size_t rlen = 0;
        int status = post_event(&u, &ev, structured, timeout_s, &resp, &rlen, err, sizeof(err));
        if (status < 200 || status >= 300)
            code = 1;
        if (repeat) {
            char ts[32];
            now_hms(ts);
            if (status < 0) {
                printf("%s sent %llu type=%s id=%s -> error: %s\n", ts, (unsigned long long)seq,
                       types[(seq - 1) % ntypes], idbuf, err);
            } else {
                char *eol = memmem(resp, rlen, "\r\n", 2);
                printf("%s sent %llu type=%s id=%s -> %.*s\n", ts, (unsigned long long)seq,
                       types[(seq - 1) % ntypes], idbuf, (int)(eol - resp - 9), resp + 9);
            }
        } else if (status < 0) {
            fprintf(stderr, "ringcast send: %s\n", err);
        } else {
            char *eol = memmem(resp, rlen, "\r\n", 2);
            printf("%.*s\n", (int)(eol - resp - 9), resp + 9);
            char *end = memmem(resp, rlen, "\r\n\r\n", 4);
            if (end != NULL && end + 4 < resp + rlen) {
                fwrite(end + 4, 1, (size_t)(resp + rlen - end - 4), stdout);
                if (resp[rlen - 1] != '\n')
                    putchar('\n');
            }
            printf("id: %s\n", idbuf);
        }
        free(resp);
    }
    return code;
}
