#include "core/validate.h"

#include "core/base64.h"
#include "core/errors.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Character classes as bit flags in one table: the URI, token and name checks below run on
 * every attribute of every event, so they are table lookups rather than chains of compares. */
enum {
    C_ALPHA = 1 << 0,
    C_DIGIT = 1 << 1,
    C_URI = 1 << 2,    /* unreserved / reserved / '%' of RFC 3986 */
    C_TCHAR = 1 << 3,  /* RFC 7230 token character */
    C_SCHEME = 1 << 4, /* ALPHA / DIGIT / "+" / "-" / "." */
    C_EXT = 1 << 5,    /* [a-z0-9] */
};

static unsigned char cls[256];

static void init_classes(void)
{
    for (int c = 0; c < 256; c++) {
        unsigned char f = 0;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        bool digit = c >= '0' && c <= '9';
        if (alpha)
            f |= C_ALPHA | C_URI | C_TCHAR | C_SCHEME;
        if (digit)
            f |= C_DIGIT | C_URI | C_TCHAR | C_SCHEME | C_EXT;
        if ((c >= 'a' && c <= 'z'))
            f |= C_EXT;
        if (c != 0 && strchr("-._~:/?#[]@!$&'()*+,;=%", c))
            f |= C_URI;
        if (c != 0 && strchr("!#$%&'*+-.^_`|~", c))
            f |= C_TCHAR;
        if (c == '+' || c == '-' || c == '.')
            f |= C_SCHEME;
        cls[c] = f;
    }
}

/* The table is built once before any validation; a constructor keeps the checks branch-free and
 * thread-safe without a once-flag on the hot path. */
__attribute__((constructor)) static void validate_init(void)
{
    init_classes();
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Word-at-a-time tests (8 bytes of plain ASCII at once): the common case of every attribute. */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static uint64_t load8(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* Non-zero when some byte of the all-ASCII word `w` is below 0x20 or is 0x7f. */
static uint64_t ascii_controls(uint64_t w)
{
    uint64_t below = (w - ONES * 0x20) & ~w & HIGHS;
    uint64_t x = w ^ (ONES * 0x7f);
    uint64_t del = (x - ONES) & ~x & HIGHS;
    return below | del;
}

/* Validates UTF-8 from p[i]; `controls` also refuses C0/C1 controls and DEL. */
static bool utf8_ok(const unsigned char *p, size_t n, bool controls)
{
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w = load8(p + i);
            if ((w & HIGHS) == 0 && (!controls || ascii_controls(w) == 0)) {
                i += 8;
                continue;
            }
        }
        unsigned char c = p[i];
        if (c < 0x80) {
            if (controls && (c < 0x20 || c == 0x7f))
                return false;
            i++;
            continue;
        }
        uint32_t cp;
        size_t len;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return false; /* overlong or out of range */
        if (cp >= 0xd800 && cp <= 0xdfff)
            return false; /* surrogates */
        if (controls && cp >= 0x80 && cp <= 0x9f)
            return false; /* C1 controls */
        i += len;
    }
    return true;
}

bool rc_ce_is_valid_string(rc_str_t s)
{
    return utf8_ok((const unsigned char *)s.ptr, s.len, true);
}

bool rc_ce_is_utf8(rc_str_t s)
{
    return utf8_ok((const unsigned char *)s.ptr, s.len, false);
}

/* Characters of a URI after the scheme: RFC 3986 sets, %XX escapes well-formed, at most one
 * '#'. */
static bool uri_chars_ok(const char *p, size_t n)
{
    bool fragment = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!(cls[c] & C_URI))
            return false;
        if (c == '%') {
            if (n - i < 3 || !is_hex(p[i + 1]) || !is_hex(p[i + 2]))
                return false;
            i += 2;
        } else if (c == '#') {
            if (fragment)
                return false;
            fragment = true;
        } else if ((c == '[' || c == ']') && fragment) {
            return false; /* brackets only appear in an IP-literal host */
        }
    }
    return true;
}

/* Length of a valid "scheme:" prefix (scheme without the colon), or 0. */
static size_t scheme_len(const char *p, size_t n)
{
    if (n == 0 || !(cls[(unsigned char)p[0]] & C_ALPHA))
        return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == ':')
            return i;
        if (!(cls[c] & C_SCHEME))
            return 0;
    }
    return 0;
}

bool rc_ce_is_uri(rc_str_t s)
{
    if (s.ptr == NULL)
        return false;
    size_t k = scheme_len(s.ptr, s.len);
    if (k == 0)
        return false;
    return uri_chars_ok(s.ptr + k + 1, s.len - k - 1);
}

bool rc_ce_is_uri_ref(rc_str_t s)
{
    if (s.ptr == NULL || s.len == 0)
        return false;
    if (scheme_len(s.ptr, s.len) > 0)
        return rc_ce_is_uri(s);
    /* A relative reference: a ':' in its first path segment would make it look like a scheme,
     * which RFC 3986 4.2 forbids. */
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c == '/' || c == '?' || c == '#')
            break;
        if (c == ':')
            return false;
    }
    return uri_chars_ok(s.ptr, s.len);
}

static size_t token_len(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && (cls[(unsigned char)p[i]] & C_TCHAR))
        i++;
    return i;
}

static size_t skip_ows(const char *p, size_t i, size_t n)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    return i;
}

bool rc_ce_is_media_type(rc_str_t s)
{
    const char *p = s.ptr;
    size_t n = s.len, i, k;
    if (p == NULL)
        return false;
    if ((k = token_len(p, n)) == 0 || k >= n || p[k] != '/')
        return false;
    i = k + 1;
    if ((k = token_len(p + i, n - i)) == 0)
        return false;
    i += k;
    for (;;) {
        /* Blanks only around ';' (RFC 7231 3.1.1.1): none trailing the last token. */
        if (i == n)
            return true;
        i = skip_ows(p, i, n);
        if (i == n || p[i] != ';')
            return false;
        i = skip_ows(p, i + 1, n);
        if ((k = token_len(p + i, n - i)) == 0)
            return false;
        i += k;
        if (i == n || p[i] != '=')
            return false;
        i++;
        if (i < n && p[i] == '"') {
            /* quoted-string: qdtext or quoted-pair */
            for (i++;; i++) {
                if (i >= n)
                    return false;
                unsigned char c = (unsigned char)p[i];
                if (c == '"')
                    break;
                if (c == '\\') {
                    if (++i >= n)
                        return false;
                } else if (c < 0x20 && c != '\t') {
                    return false;
                } else if (c == 0x7f) {
                    return false;
                }
            }
            i++;
        } else {
            if ((k = token_len(p + i, n - i)) == 0)
                return false;
            i += k;
        }
    }
}

static bool ieq(const char *p, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return false;
    }
    return true;
}

bool rc_ce_is_json_media_type(rc_str_t s)
{
    if (s.ptr == NULL)
        return false;
    size_t n = 0;
    while (n < s.len && s.ptr[n] != ';' && s.ptr[n] != ' ' && s.ptr[n] != '\t')
        n++;
    const char *slash = memchr(s.ptr, '/', n);
    if (slash == NULL)
        return false;
    size_t tlen = (size_t)(slash - s.ptr);
    const char *sub = slash + 1;
    size_t slen = n - tlen - 1;
    if (slen >= 5 && ieq(sub + slen - 5, 5, "+json"))
        return true;
    return ieq(sub, slen, "json") && (ieq(s.ptr, tlen, "application") || ieq(s.ptr, tlen, "text"));
}

bool rc_ce_is_binary_media_type(rc_str_t s)
{
    static const char ob[] = "application/octet-stream";
    size_t n = sizeof(ob) - 1;
    return s.ptr != NULL && s.len >= n && ieq(s.ptr, n, ob) &&
           (s.len == n || s.ptr[n] == ';' || s.ptr[n] == ' ' || s.ptr[n] == '\t');
}

bool rc_ce_is_ext_name(rc_str_t s)
{
    if (s.ptr == NULL || s.len == 0 || s.len > RC_CE_EXT_NAME_MAX)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!(cls[(unsigned char)s.ptr[i]] & C_EXT))
            return false;
    return true;
}

static int digits(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int rc_ce_time_parse(rc_str_t s, int64_t *sec, uint32_t *nsec)
{
    const char *p = s.ptr;
    size_t n = s.len;
    /* YYYY-MM-DDTHH:MM:SS is 19 characters; an offset adds at least one. */
    if (p == NULL || n < 20 || p[4] != '-' || p[7] != '-' || (p[10] != 'T' && p[10] != 't') ||
        p[13] != ':' || p[16] != ':')
        return -EINVAL;
    int year = digits(p, 4), mon = digits(p + 5, 2), day = digits(p + 8, 2);
    int hour = digits(p + 11, 2), min = digits(p + 14, 2), secs = digits(p + 17, 2);
    if (year < 0 || mon < 1 || mon > 12 || day < 1 || hour < 0 || hour > 23 || min < 0 ||
        min > 59 || secs < 0 || secs > 60)
        return -EINVAL;
    static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > mdays[mon - 1] + (mon == 2 && leap))
        return -EINVAL;
    size_t i = 19;
    uint32_t ns = 0;
    if (p[i] == '.') {
        size_t start = ++i;
        uint32_t scale = 100000000;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            ns += (uint32_t)(p[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start)
            return -EINVAL;
    }
    if (i >= n)
        return -EINVAL;
    int offset = 0;
    if (p[i] == 'Z' || p[i] == 'z') {
        i++;
    } else if (p[i] == '+' || p[i] == '-') {
        if (n - i != 6 || p[i + 3] != ':')
            return -EINVAL;
        int oh = digits(p + i + 1, 2), om = digits(p + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -EINVAL;
        offset = (oh * 60 + om) * 60 * (p[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return -EINVAL;
    }
    if (i != n)
        return -EINVAL;
    int64_t days = days_from_civil(year, (unsigned)mon, (unsigned)day);
    *sec = days * 86400 + hour * 3600 + min * 60 + secs - offset;
    *nsec = ns;
    return 0;
}

const char *rc_ce_check_value(rc_ce_type_t type, rc_str_t v)
{
    int64_t sec;
    uint32_t ns;
    int32_t iv;
    switch (type) {
    case RC_CE_STRING:
        return rc_ce_is_valid_string(v) ? NULL : "must be valid UTF-8 without control characters";
    case RC_CE_INTEGER:
        return rc_ce_int_parse(v, &iv) == 0 ? NULL : "must be a 32-bit integer";
    case RC_CE_BOOLEAN:
        return rc_str_eq(v, RC_STR("true")) || rc_str_eq(v, RC_STR("false"))
                   ? NULL
                   : "must be a boolean (true or false)";
    case RC_CE_BINARY:
        return v.ptr && rc_base64_is_canonical(v.ptr, v.len) ? NULL : "must be base64";
    case RC_CE_URI:
        return rc_ce_is_uri(v) ? NULL : "must be an absolute URI";
    case RC_CE_URI_REF:
        return rc_ce_is_uri_ref(v) ? NULL : "must be a non-empty URI-reference";
    case RC_CE_TIMESTAMP:
        return rc_ce_time_parse(v, &sec, &ns) == 0 ? NULL : "must be an RFC 3339 timestamp";
    }
    return "has an unknown type";
}

static int fail(rc_ce_error_t *err, rc_str_t field, const char *rule)
{
    if (err) {
        err->field = field;
        err->rule = rule;
    }
    return RC_EINVALID_EVENT;
}

#define ATTR_FIELD(i) rc_str(rc_ce_attr_name(i))

int rc_event_validate(const rc_event_t *ev, rc_ce_error_t *err)
{
    if (ev->specversion.ptr == NULL)
        return fail(err, RC_STR("specversion"), "is required");
    if (!rc_str_eq(ev->specversion, RC_STR("1.0")))
        return fail(err, RC_STR("specversion"), "must be \"1.0\"");
    if (ev->id.ptr == NULL)
        return fail(err, RC_STR("id"), "is required");
    if (ev->id.len == 0)
        return fail(err, RC_STR("id"), "must be a non-empty string");
    if (ev->source.ptr == NULL)
        return fail(err, RC_STR("source"), "is required");
    if (ev->type.ptr == NULL)
        return fail(err, RC_STR("type"), "is required");
    if (!rc_ce_is_valid_string(ev->id))
        return fail(err, RC_STR("id"), "must be valid UTF-8 without control characters");
    if (!rc_ce_is_uri_ref(ev->source))
        return fail(err, RC_STR("source"), "must be a non-empty URI-reference");
    if (ev->type.len == 0)
        return fail(err, RC_STR("type"), "must be a non-empty string");
    if (!rc_ce_is_valid_string(ev->type))
        return fail(err, RC_STR("type"), "must be valid UTF-8 without control characters");
    /* A quoted parameter may carry tabs and non-ASCII bytes as far as RFC 7231 goes; a
     * CloudEvents String may not. */
    if (ev->datacontenttype.ptr && (!rc_ce_is_media_type(ev->datacontenttype) ||
                                    !rc_ce_is_valid_string(ev->datacontenttype)))
        return fail(err, RC_STR("datacontenttype"), "must be an RFC 2046 media type");
    if (ev->dataschema.ptr && !rc_ce_is_uri(ev->dataschema))
        return fail(err, RC_STR("dataschema"), "must be an absolute URI");
    if (ev->subject.ptr && ev->subject.len == 0)
        return fail(err, RC_STR("subject"), "must be a non-empty string when present");
    if (ev->subject.ptr && !rc_ce_is_valid_string(ev->subject))
        return fail(err, RC_STR("subject"), "must be valid UTF-8 without control characters");
    if (ev->time.ptr) {
        int64_t sec;
        uint32_t ns;
        if (rc_ce_time_parse(ev->time, &sec, &ns) != 0)
            return fail(err, RC_STR("time"), "must be an RFC 3339 timestamp");
    }
    if (ev->ext_count > RC_CE_EXT_MAX)
        return fail(err, RC_STR_NULL, "too many extensions (max 128)");
    for (uint32_t i = 0; i < ev->ext_count; i++) {
        const rc_ce_ext_t *e = &ev->ext[i];
        if (!rc_ce_is_ext_name(e->name))
            return fail(err, e->name, "extension name must be 1-20 characters of [a-z0-9]");
        if (rc_ce_attr_index(e->name) >= 0)
            return fail(err, e->name, "is a core attribute, not an extension");
        if (rc_str_eq(e->name, RC_STR("data")))
            return fail(err, e->name, "is reserved for the event data");
        for (uint32_t j = 0; j < i; j++)
            if (rc_str_eq(ev->ext[j].name, e->name))
                return fail(err, e->name, "duplicate attribute");
        const char *rule = rc_ce_check_value(e->type, e->value);
        if (rule != NULL)
            return fail(err, e->name, rule);
    }
    return 0;
}

size_t rc_ce_error_format(const rc_ce_error_t *err, char *buf, size_t cap)
{
    /* Error path only: snprintf is fine here. Field bytes come from the request, so anything
     * outside printable ASCII (or a quote/backslash that would break a JSON body) is masked. */
    char field[64];
    size_t fn = err->field.ptr ? err->field.len : 0;
    if (fn > sizeof(field) - 4)
        fn = sizeof(field) - 4;
    for (size_t i = 0; i < fn; i++) {
        unsigned char c = (unsigned char)err->field.ptr[i];
        field[i] = (c < 0x20 || c > 0x7e || c == '"' || c == '\\') ? '?' : (char)c;
    }
    if (err->field.ptr && err->field.len > fn) {
        memcpy(field + fn, "...", 3);
        fn += 3;
    }
    field[fn] = '\0';
    const char *rule = err->rule ? err->rule : "invalid";
    char idx[32] = "";
    if (err->index >= 0)
        snprintf(idx, sizeof(idx), "event %d: ", (int)err->index);
    int n = snprintf(buf, cap, "%s%s%s%s", idx, field, fn ? ": " : "", rule);
    return n < 0 ? 0 : (size_t)n;
}
