#include "net/http/http_response.h"

#include <errno.h>
#include <llhttp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/errors.h"

/* Headers beyond this count fail the response like oversized headers do. */
#define MAX_HEADERS 100

typedef struct {
    uint32_t name_off, name_len, value_off, value_len;
} header_span_t;

struct rc__http_parser_s {
    llhttp_t llhttp;
    llhttp_settings_t settings;
    size_t max_body;
    size_t max_header_bytes;
    int head;
    int complete;
    int keep_alive;
    int error; /* set by a callback that stopped the parser */

    /* Status line and header bytes, copied because a response may span several reads. */
    char *hbuf;
    size_t hlen;
    header_span_t spans[MAX_HEADERS];
    size_t nspans;
    int in_value; /* the last piece appended belonged to a header value */

    char *body;
    size_t body_len;
    size_t body_cap;
    int truncated;

    rc_http_client_header_t headers[MAX_HEADERS];
    rc_http_response_t resp;
};

static rc__http_parser_t *parser_of(llhttp_t *h)
{
    return (rc__http_parser_t *)((char *)h - offsetof(rc__http_parser_t, llhttp));
}

static int stop(rc__http_parser_t *p, int err)
{
    p->error = err;
    return HPE_USER;
}

static int append_header_bytes(rc__http_parser_t *p, const char *at, size_t len)
{
    if (len > p->max_header_bytes - p->hlen)
        return stop(p, RC_EHTTP_HEADERS_TOO_LARGE);
    memcpy(p->hbuf + p->hlen, at, len);
    p->hlen += len;
    return 0;
}

static int on_message_begin(llhttp_t *h)
{
    rc__http_parser_t *p = parser_of(h);
    /* Interim (1xx) responses restart collection here. */
    p->hlen = 0;
    p->nspans = 0;
    p->in_value = 0;
    p->body_len = 0;
    p->truncated = 0;
    return 0;
}

static int on_status(llhttp_t *h, const char *at, size_t len)
{
    /* The reason phrase is not kept, but it counts against the header limit. */
    rc__http_parser_t *p = parser_of(h);
    if (len > p->max_header_bytes - p->hlen)
        return stop(p, RC_EHTTP_HEADERS_TOO_LARGE);
    return 0;
}

static int on_header_field(llhttp_t *h, const char *at, size_t len)
{
    rc__http_parser_t *p = parser_of(h);
    if (p->nspans == 0 || p->in_value) {
        if (p->nspans == MAX_HEADERS)
            return stop(p, RC_EHTTP_HEADERS_TOO_LARGE);
        header_span_t *s = &p->spans[p->nspans++];
        s->name_off = (uint32_t)p->hlen;
        s->name_len = 0;
        s->value_off = 0;
        s->value_len = 0;
        p->in_value = 0;
    }
    int rc = append_header_bytes(p, at, len);
    if (rc == 0)
        p->spans[p->nspans - 1].name_len += (uint32_t)len;
    return rc;
}

static int on_header_value(llhttp_t *h, const char *at, size_t len)
{
    rc__http_parser_t *p = parser_of(h);
    if (p->nspans == 0)
        return stop(p, RC_EHTTP_MALFORMED);
    header_span_t *s = &p->spans[p->nspans - 1];
    if (!p->in_value) {
        s->value_off = (uint32_t)p->hlen;
        p->in_value = 1;
    }
    int rc = append_header_bytes(p, at, len);
    if (rc == 0)
        s->value_len += (uint32_t)len;
    return rc;
}

static int on_headers_complete(llhttp_t *h)
{
    rc__http_parser_t *p = parser_of(h);
    /* llhttp takes any number of digits ("HTTP/1.1 20 OK"); a status has exactly three. */
    if (h->status_code < 100 || h->status_code > 999) {
        p->error = RC_EHTTP_MALFORMED;
        return -1;
    }
    /* Returning 1 tells llhttp the response has no body (the answer to a HEAD request). */
    return p->head && h->status_code >= 200 ? 1 : 0;
}

static int on_body(llhttp_t *h, const char *at, size_t len)
{
    rc__http_parser_t *p = parser_of(h);
    size_t room = p->max_body - p->body_len;
    if (len > room) {
        p->truncated = 1;
        len = room;
    }
    if (len == 0)
        return 0;
    if (p->body_len + len + 1 > p->body_cap) {
        size_t cap = p->body_cap ? p->body_cap : 4096;
        while (cap < p->body_len + len + 1)
            cap *= 2;
        if (cap > p->max_body + 1)
            cap = p->max_body + 1;
        char *nb = realloc(p->body, cap);
        if (nb == NULL)
            return stop(p, -ENOMEM);
        p->body = nb;
        p->body_cap = cap;
    }
    memcpy(p->body + p->body_len, at, len);
    p->body_len += len;
    return 0;
}

static int on_message_complete(llhttp_t *h)
{
    rc__http_parser_t *p = parser_of(h);
    int status = h->status_code;
    if (status >= 100 && status < 200 && status != 101)
        return 0; /* interim response: the final one follows on the same connection */
    p->complete = 1;
    p->keep_alive = llhttp_should_keep_alive(h);
    /* Pause so that bytes after this response stay unconsumed and visible to the caller. */
    return HPE_PAUSED;
}

int rc__http_parser_create(size_t max_body, size_t max_header_bytes, rc__http_parser_t **out)
{
    rc__http_parser_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->hbuf = malloc(max_header_bytes > 0 ? max_header_bytes : 1);
    if (p->hbuf == NULL) {
        free(p);
        return -ENOMEM;
    }
    p->max_body = max_body;
    p->max_header_bytes = max_header_bytes;
    llhttp_settings_init(&p->settings);
    p->settings.on_message_begin = on_message_begin;
    p->settings.on_status = on_status;
    p->settings.on_header_field = on_header_field;
    p->settings.on_header_value = on_header_value;
    p->settings.on_headers_complete = on_headers_complete;
    p->settings.on_body = on_body;
    p->settings.on_message_complete = on_message_complete;
    rc__http_parser_reset(p, 0);
    *out = p;
    return 0;
}

void rc__http_parser_destroy(rc__http_parser_t *p)
{
    if (p == NULL)
        return;
    free(p->hbuf);
    free(p->body);
    free(p);
}

void rc__http_parser_reset(rc__http_parser_t *p, int head)
{
    llhttp_init(&p->llhttp, HTTP_RESPONSE, &p->settings);
    p->head = head;
    p->complete = 0;
    p->keep_alive = 0;
    p->error = 0;
    p->hlen = 0;
    p->nspans = 0;
    p->in_value = 0;
    p->body_len = 0;
    p->truncated = 0;
    /* Do not keep one large reply's buffer for the life of a keep-alive connection. */
    if (p->body_cap > 64 * 1024) {
        free(p->body);
        p->body = NULL;
        p->body_cap = 0;
    }
}

static int map_error(rc__http_parser_t *p, llhttp_errno_t e)
{
    (void)e; /* llhttp reports a callback's stop as HPE_USER or a HPE_CB_* code */
    if (p->error != 0)
        return p->error;
    return RC_EHTTP_MALFORMED;
}

int rc__http_parser_feed(rc__http_parser_t *p, const char *data, size_t len, size_t *consumed)
{
    if (p->complete) {
        *consumed = 0;
        return 1;
    }
    llhttp_errno_t e = llhttp_execute(&p->llhttp, data, len);
    if (e == HPE_OK)
        return 0;
    if ((e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) && p->complete) {
        const char *pos = llhttp_get_error_pos(&p->llhttp);
        *consumed = pos != NULL && pos >= data && pos <= data + len ? (size_t)(pos - data) : len;
        if (e == HPE_PAUSED_UPGRADE)
            p->keep_alive = 0;
        return 1;
    }
    if (e == HPE_PAUSED_UPGRADE) {
        /* A 101 without on_message_complete: treat the headers as the whole response. */
        p->complete = 1;
        p->keep_alive = 0;
        *consumed = len;
        return 1;
    }
    return map_error(p, e);
}

int rc__http_parser_eof(rc__http_parser_t *p)
{
    if (p->complete)
        return 1;
    llhttp_errno_t e = llhttp_finish(&p->llhttp);
    if (p->complete) {
        p->keep_alive = 0;
        return 1;
    }
    if (e == HPE_OK || e == HPE_INVALID_EOF_STATE || e == HPE_PAUSED)
        return RC_EHTTP_CLOSED;
    return map_error(p, e);
}

const rc_http_response_t *rc__http_parser_response(rc__http_parser_t *p)
{
    for (size_t i = 0; i < p->nspans; i++) {
        header_span_t *s = &p->spans[i];
        p->headers[i].name = p->hbuf + s->name_off;
        p->headers[i].name_len = s->name_len;
        /* An empty value has no value bytes; point it at the end of its name. */
        p->headers[i].value = s->value_len ? p->hbuf + s->value_off : p->hbuf + s->name_off;
        p->headers[i].value_len = s->value_len;
    }
    if (p->body != NULL)
        p->body[p->body_len] = '\0';
    p->resp.status = p->llhttp.status_code;
    p->resp.headers = p->headers;
    p->resp.header_count = p->nspans;
    p->resp.body = p->body != NULL ? p->body : "";
    p->resp.body_len = p->body_len;
    p->resp.body_truncated = p->truncated;
    return &p->resp;
}

int rc__http_parser_keep_alive(const rc__http_parser_t *p)
{
    return p->complete && p->keep_alive;
}

const rc_http_client_header_t *rc_http_response_header(const rc_http_response_t *resp, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < resp->header_count; i++) {
        const rc_http_client_header_t *h = &resp->headers[i];
        if (h->name_len == n && strncasecmp(h->name, name, n) == 0)
            return h;
    }
    return NULL;
}
