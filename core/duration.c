#include "core/duration.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/errors.h"

/* Fraction digits kept; more are truncated. 18 digits keep sub-nanosecond precision even for the
 * week unit while the product stays inside 128 bits. */
#define FRACTION_DIGITS_MAX 18

typedef struct {
    char designator;
    int64_t unit_ns;
} unit_t;

static const unit_t date_units[] = {
    {'W', 7 * 86400 * RC_NS_PER_SEC},
    {'D', 86400 * RC_NS_PER_SEC},
};

static const unit_t time_units[] = {
    {'H', 3600 * RC_NS_PER_SEC},
    {'M', 60 * RC_NS_PER_SEC},
    {'S', RC_NS_PER_SEC},
};

__attribute__((format(printf, 5, 6))) static int fail(char *err, size_t errlen, const char *s,
                                                      size_t len, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        char why[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        /* Quote at most 64 bytes of the input so a huge value cannot drown the message. */
        int shown = len > 64 ? 64 : (int)len;
        snprintf(err, errlen, "invalid ISO-8601 duration \"%.*s%s\": %s", shown, s,
                 len > 64 ? "..." : "", why);
    }
    return RC_EPARSE;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static const unit_t *find_unit(const unit_t *units, size_t n, char d, size_t *index)
{
    for (size_t i = 0; i < n; i++) {
        if (units[i].designator == d) {
            *index = i;
            return &units[i];
        }
    }
    return NULL;
}

int rc_duration_parse(const char *s, size_t len, int64_t *out_ns, char *err, size_t errlen)
{
    if (s == NULL || len == 0)
        return fail(err, errlen, "", 0, "empty value");
    if (s[0] == '-' || s[0] == '+')
        return fail(err, errlen, s, len, "signs are not allowed (durations are never negative)");
    if (s[0] != 'P')
        return fail(err, errlen, s, len, "must start with 'P' (for example PT0.2S)");

    size_t i = 1;
    bool in_time = false;
    bool any_component = false;
    bool saw_week = false;
    bool fraction_seen = false;
    /* Index of the next unit allowed in the current part; enforces order and uniqueness. */
    size_t next_unit = 0;
    int64_t total = 0;

    while (i < len) {
        char c = s[i];
        if (c == 'T') {
            if (in_time)
                return fail(err, errlen, s, len, "'T' appears twice");
            in_time = true;
            next_unit = 0;
            i++;
            if (i == len)
                return fail(err, errlen, s, len, "nothing after 'T'");
            continue;
        }
        if (fraction_seen)
            return fail(err, errlen, s, len, "only the last component may have a fraction");
        if (!is_digit(c))
            return fail(err, errlen, s, len, "unexpected '%c' at offset %zu, expected a digit", c,
                        i);

        /* Integer part: saturate to detect overflow without UB. */
        uint64_t whole = 0;
        bool whole_overflow = false;
        while (i < len && is_digit(s[i])) {
            if (whole > (UINT64_MAX - 9) / 10)
                whole_overflow = true;
            else
                whole = whole * 10 + (uint64_t)(s[i] - '0');
            i++;
        }
        /* Fraction: keep up to FRACTION_DIGITS_MAX digits as an integer numerator. */
        uint64_t frac = 0;
        int frac_digits = 0;
        bool has_fraction = false;
        if (i < len && (s[i] == '.' || s[i] == ',')) {
            has_fraction = true;
            i++;
            if (i == len || !is_digit(s[i]))
                return fail(err, errlen, s, len, "a digit must follow the decimal separator");
            while (i < len && is_digit(s[i])) {
                if (frac_digits < FRACTION_DIGITS_MAX) {
                    frac = frac * 10 + (uint64_t)(s[i] - '0');
                    frac_digits++;
                }
                i++;
            }
        }
        if (i == len)
            return fail(err, errlen, s, len, "number without a unit designator at the end");
        char d = s[i++];

        const unit_t *unit;
        size_t unit_index = 0;
        if (!in_time) {
            if (d == 'Y' || d == 'M')
                return fail(err, errlen, s, len,
                            "years and months have no fixed length; use days (D) or a time part "
                            "(PT...)");
            unit =
                find_unit(date_units, sizeof(date_units) / sizeof(date_units[0]), d, &unit_index);
            if (unit == NULL)
                return fail(err, errlen, s, len,
                            "unknown date designator '%c' (W or D; hours, "
                            "minutes and seconds go after 'T')",
                            d);
        } else {
            unit =
                find_unit(time_units, sizeof(time_units) / sizeof(time_units[0]), d, &unit_index);
            if (unit == NULL)
                return fail(err, errlen, s, len, "unknown time designator '%c' (H, M or S)", d);
        }
        if (unit_index < next_unit)
            return fail(err, errlen, s, len, "designator '%c' is out of order or repeated", d);
        next_unit = unit_index + 1;
        if (d == 'W' && !in_time)
            saw_week = true;
        else if (saw_week)
            return fail(err, errlen, s, len, "weeks (W) cannot be combined with other components");

        if (whole_overflow)
            return fail(err, errlen, s, len, "value too large (at most about 292 years)");
        int64_t part;
        if (whole > (uint64_t)INT64_MAX ||
            __builtin_mul_overflow((int64_t)whole, unit->unit_ns, &part))
            return fail(err, errlen, s, len, "value too large (at most about 292 years)");
        if (has_fraction) {
            __int128 scale = 1;
            for (int k = 0; k < frac_digits; k++)
                scale *= 10;
            __int128 extra = (__int128)frac * unit->unit_ns / scale;
            if (__builtin_add_overflow(part, (int64_t)extra, &part))
                return fail(err, errlen, s, len, "value too large (at most about 292 years)");
            fraction_seen = true;
        }
        if (__builtin_add_overflow(total, part, &total))
            return fail(err, errlen, s, len, "value too large (at most about 292 years)");
        any_component = true;
    }
    if (!any_component)
        return fail(err, errlen, s, len, "no components (for example PT1S)");
    *out_ns = total;
    return 0;
}

int rc_duration_format(int64_t ns, char *buf, size_t cap)
{
    if (ns < 0)
        ns = 0;
    int64_t days = ns / (86400 * RC_NS_PER_SEC);
    int64_t rest = ns % (86400 * RC_NS_PER_SEC);
    int64_t hours = rest / (3600 * RC_NS_PER_SEC);
    rest %= 3600 * RC_NS_PER_SEC;
    int64_t minutes = rest / (60 * RC_NS_PER_SEC);
    rest %= 60 * RC_NS_PER_SEC;
    int64_t seconds = rest / RC_NS_PER_SEC;
    int64_t nanos = rest % RC_NS_PER_SEC;

    char tmp[RC_DURATION_STR_MAX];
    size_t n = 0;
    n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "P");
    if (days > 0)
        n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "%lldD", (long long)days);
    if (hours > 0 || minutes > 0 || seconds > 0 || nanos > 0 || days == 0) {
        n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "T");
        if (hours > 0)
            n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "%lldH", (long long)hours);
        if (minutes > 0)
            n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "%lldM", (long long)minutes);
        if (nanos > 0) {
            char frac[16];
            snprintf(frac, sizeof(frac), "%09lld", (long long)nanos);
            int digits = 9;
            while (digits > 1 && frac[digits - 1] == '0')
                digits--;
            n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "%lld.%.*sS", (long long)seconds,
                                  digits, frac);
        } else if (seconds > 0 || (hours == 0 && minutes == 0)) {
            n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "%lldS", (long long)seconds);
        }
    }
    if (n + 1 > cap) {
        if (cap > 0)
            buf[0] = '\0';
        return -ENOSPC;
    }
    memcpy(buf, tmp, n + 1);
    return (int)n;
}
