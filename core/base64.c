#include "core/base64.h"

#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for alphabet characters, 64 for '=', 255 for anything else. */
static uint8_t value_of(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (uint8_t)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (uint8_t)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (uint8_t)(c - '0' + 52);
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    if (c == '=')
        return 64;
    return 255;
}

size_t rc_base64_encode(const void *in, size_t n, char *out)
{
    const unsigned char *p = in;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    return o;
}

/* Decodes (when out != NULL) and checks; *canonical reports whether padding bits were zero. */
static long decode(const char *in, size_t n, unsigned char *out, bool *canonical)
{
    if (n % 4 != 0)
        return -1;
    long o = 0;
    *canonical = true;
    for (size_t i = 0; i < n; i += 4) {
        uint8_t a = value_of((unsigned char)in[i]), b = value_of((unsigned char)in[i + 1]);
        uint8_t c = value_of((unsigned char)in[i + 2]), d = value_of((unsigned char)in[i + 3]);
        bool last = i + 4 == n;
        if (a > 63 || b > 63 || c == 255 || d == 255)
            return -1;
        if (c == 64 && d != 64)
            return -1;
        if ((c == 64 || d == 64) && !last)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)(c & 63) << 6 | (d & 63);
        if (c == 64) {
            if ((b & 15) != 0)
                *canonical = false;
            if (out)
                out[o] = (unsigned char)(v >> 16);
            o += 1;
        } else if (d == 64) {
            if ((c & 3) != 0)
                *canonical = false;
            if (out) {
                out[o] = (unsigned char)(v >> 16);
                out[o + 1] = (unsigned char)(v >> 8);
            }
            o += 2;
        } else {
            if (out) {
                out[o] = (unsigned char)(v >> 16);
                out[o + 1] = (unsigned char)(v >> 8);
                out[o + 2] = (unsigned char)v;
            }
            o += 3;
        }
    }
    return o;
}

long rc_base64_decode(const char *in, size_t n, void *out)
{
    bool canonical;
    return decode(in, n, out, &canonical);
}

bool rc_base64_is_canonical(const char *in, size_t n)
{
    bool canonical;
    return decode(in, n, NULL, &canonical) >= 0 && canonical;
}
