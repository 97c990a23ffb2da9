/* Fuzz target: the delivery client's response parser. The first byte sets the size of the
 * pieces the rest is fed in (a response arrives in arbitrary reads); then end of stream. Checks
 * the parser's promises: bounded body, headers inside the response, a stable result. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http/http_response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t)(data[0] % 64) + 1;
    const char *p = (const char *)data + 1;
    size_t len = size - 1;
    rc__http_parser_t *parser;
    if (rc__http_parser_create(256, 512, &parser) != 0)
        return 0;
    rc__http_parser_reset(parser, data[0] >= 128);
    int rc = 0;
    size_t off = 0;
    while (off < len && rc == 0) {
        size_t n = len - off < piece ? len - off : piece;
        size_t consumed = 0;
        rc = rc__http_parser_feed(parser, p + off, n, &consumed);
        if (rc == 1 && consumed > n)
            abort();
        off += n;
    }
    if (rc == 0)
        rc = rc__http_parser_eof(parser);
    if (rc == 1) {
        const rc_http_response_t *r = rc__http_parser_response(parser);
        if (r->status < 100 || r->status > 999 || r->body_len > 256 || r->header_count > 100)
            abort();
        for (size_t i = 0; i < r->header_count; i++) {
            if (r->headers[i].name_len + r->headers[i].value_len > 512)
                abort();
        }
        if (r->body[r->body_len] != '\0')
            abort();
    }
    rc__http_parser_destroy(parser);
    return 0;
}
