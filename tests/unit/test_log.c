/* Unit test of core/log: level names, filtering, and the exact line format (captured by
 * pointing stderr at a temporary file). */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <string.h>

#include "core/log.h"
#include "tests/test.h"

static char captured[8192];

static void capture(void (*fn)(void))
{
    char path[] = "/tmp/rc_test_log_XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    ASSERT(saved >= 0);
    ASSERT_EQ(dup2(fd, 2), 2);
    fn();
    fflush(stderr);
    ASSERT_EQ(dup2(saved, 2), 2);
    close(saved);
    ssize_t n = pread(fd, captured, sizeof(captured) - 1, 0);
    ASSERT(n >= 0);
    captured[n] = '\0';
    close(fd);
    unlink(path);
}

static void log_some(void)
{
    rc_log_set_level(RC_LOG_WARN);
    rc_log_error("serve", "cannot listen on %s: %s", "127.0.0.1:80", "Permission denied");
    rc_log_warn("ingress", "ring %d is %s", 3, "slow");
    rc_log_info("serve", "not printed at warn");
    rc_log_debug("serve", "not printed either");
    rc_log_set_level(RC_LOG_DEBUG);
    rc_log_debug("cfg", "now printed");
    rc_log_set_level(RC_LOG_INFO);
}

static char long_text[3000];

static void log_long(void)
{
    memset(long_text, 'x', sizeof(long_text) - 1);
    rc_log_info("serve", "%s", long_text);
}

static void log_fields_text(void)
{
    rc_log_field_t f[] = {RC_LOG_STR("trigger", "default/t1"), RC_LOG_INT("status", 500),
                          RC_LOG_STR("reason", "retries exhausted"), RC_LOG_STR("id", "a\"b"),
                          RC_LOG_STR("empty", "")};
    rc_log_fields(RC_LOG_WARN, "worker", f, 5, "event %s", "dropped");
}

static void test_formats(void)
{
    rc_log_format_t f;
    ASSERT_EQ(rc_log_parse_format("text", &f), 0);
    ASSERT_EQ(f, RC_LOG_TEXT);
    ASSERT_EQ(rc_log_parse_format("json", &f), 0);
    ASSERT_EQ(f, RC_LOG_JSON);
    ASSERT_EQ(rc_log_parse_format("JSON", &f), -EINVAL);
    ASSERT_EQ(rc_log_parse_format("logfmt", &f), -EINVAL);
    ASSERT_EQ(rc_log_parse_format("", &f), -EINVAL);

    /* Text: the fields follow the message as logfmt pairs, quoted when they must be. */
    capture(log_fields_text);
    const char *tail = strstr(captured, " warn worker: event dropped trigger=default/t1 status=500 "
                                        "reason=\"retries exhausted\" id=\"a\\\"b\" empty=\"\"\n");
    if (tail == NULL || tail != captured + 24)
        RC_TEST_FAIL("unexpected text line:\n%s", captured);
}

static void log_json(void)
{
    rc_log_set_format(RC_LOG_JSON);
    log_fields_text();
    /* Quotes, control characters and bytes that are not UTF-8 in the message and a field. */
    rc_log_field_t f[] = {RC_LOG_STR("id", "x\xff\x01y"), RC_LOG_STR("source", "caf\xc3\xa9")};
    rc_log_fields(RC_LOG_ERROR, "ingress", f, 2, "bad \"%s\"\n\t\xc0\xaf end", "q\\");
    rc_log_info("serve", "plain");
    rc_log_set_format(RC_LOG_TEXT);
}

static cJSON *line_json(const char *line, size_t len)
{
    char buf[RC_LOG_LINE_MAX + 1];
    ASSERT_LT(len, sizeof(buf));
    memcpy(buf, line, len);
    buf[len] = '\0';
    cJSON *j = cJSON_Parse(buf);
    if (j == NULL)
        RC_TEST_FAIL("not JSON: %s", buf);
    return j;
}

static const char *jstr(cJSON *j, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsString(v))
        RC_TEST_FAIL("no string '%s'", key);
    return v->valuestring;
}

static void test_json(void)
{
    capture(log_json);
    const char *p = captured;
    cJSON *j[3];
    for (int i = 0; i < 3; i++) {
        const char *nl = strchr(p, '\n');
        ASSERT(nl != NULL);
        j[i] = line_json(p, (size_t)(nl - p));
        p = nl + 1;
    }
    ASSERT_EQ(*p, '\0');
    regex_t re;
    ASSERT_EQ(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
                      REG_EXTENDED),
              0);
    ASSERT_EQ(regexec(&re, jstr(j[0], "time"), 0, NULL, 0), 0);
    regfree(&re);
    ASSERT_STR_EQ(jstr(j[0], "level"), "warn");
    ASSERT_STR_EQ(jstr(j[0], "component"), "worker");
    ASSERT_STR_EQ(jstr(j[0], "msg"), "event dropped");
    ASSERT_STR_EQ(jstr(j[0], "trigger"), "default/t1");
    ASSERT_STR_EQ(jstr(j[0], "id"), "a\"b");
    ASSERT_STR_EQ(jstr(j[0], "empty"), "");
    cJSON *st = cJSON_GetObjectItemCaseSensitive(j[0], "status");
    ASSERT(cJSON_IsNumber(st));
    ASSERT_EQ(st->valueint, 500);
    ASSERT_EQ(cJSON_GetObjectItemCaseSensitive(j[0], "pid")->valueint, (int)getpid());
    ASSERT_STR_EQ(jstr(j[1], "level"), "error");
    ASSERT_STR_EQ(jstr(j[1], "msg"), "bad \"q\\\"\n\t\xef\xbf\xbd\xef\xbf\xbd end");
    ASSERT_STR_EQ(jstr(j[1], "id"), "x\xef\xbf\xbd\x01y");
    ASSERT_STR_EQ(jstr(j[1], "source"), "caf\xc3\xa9");
    ASSERT_STR_EQ(jstr(j[2], "msg"), "plain");
    ASSERT(cJSON_GetObjectItemCaseSensitive(j[2], "trigger") == NULL);
    for (int i = 0; i < 3; i++)
        cJSON_Delete(j[i]);
}

static char long_quotes[6000];

static void log_json_long(void)
{
    memset(long_quotes, '"', sizeof(long_quotes) - 1);
    rc_log_set_format(RC_LOG_JSON);
    rc_log_field_t f[] = {RC_LOG_STR("trigger", "default/t1"), RC_LOG_INT("status", 404)};
    rc_log_fields(RC_LOG_WARN, "worker", f, 2, "%s", long_quotes);
    rc_log_set_format(RC_LOG_TEXT);
}

/* A message far over the line: cut inside "msg", the fields kept, still one JSON object. */
static void test_json_long(void)
{
    capture(log_json_long);
    size_t n = strlen(captured);
    ASSERT_LT(n, RC_LOG_LINE_MAX + 1);
    ASSERT_GT(n, RC_LOG_LINE_MAX - 200);
    ASSERT(strchr(captured, '\n') == captured + n - 1);
    cJSON *j = line_json(captured, n - 1);
    ASSERT_STR_EQ(jstr(j, "trigger"), "default/t1");
    ASSERT_GT(strlen(jstr(j, "msg")), 1000);
    cJSON_Delete(j);
}

static void test_limit(void)
{
    rc_log_limit_t l = {0};
    uint64_t sum = 99;
    int64_t t0 = 5000000000ll;
    int let = 0;
    for (int i = 0; i < 500; i++)
        let += rc_log_limit_take(&l, t0 + i * 1000, 10, &sum);
    ASSERT_EQ(let, 10);
    ASSERT_EQ(sum, 0);
    ASSERT_EQ(rc_log_limit_flush(&l, t0 + 999999999, 0), 0); /* window still open */
    /* The next line a second later closes the window: its 490 come back as the summary. */
    ASSERT_EQ(rc_log_limit_take(&l, t0 + RC_LOG_LIMIT_WINDOW_NS, 10, &sum), 1);
    ASSERT_EQ(sum, 490);
    ASSERT_EQ(rc_log_limit_flush(&l, t0 + RC_LOG_LIMIT_WINDOW_NS + 1, 1), 0);
    for (int i = 0; i < 12; i++)
        rc_log_limit_take(&l, t0 + 3 * RC_LOG_LIMIT_WINDOW_NS, 10, &sum);
    ASSERT_EQ(rc_log_limit_flush(&l, t0 + 3 * RC_LOG_LIMIT_WINDOW_NS + 5, 0), 0);
    ASSERT_EQ(rc_log_limit_flush(&l, t0 + 4 * RC_LOG_LIMIT_WINDOW_NS, 0), 2);
    ASSERT_EQ(rc_log_limit_flush(&l, t0 + 9 * RC_LOG_LIMIT_WINDOW_NS, 1), 0); /* nothing held */
}

int main(void)
{
    rc_log_level_t lv;
    ASSERT_EQ(rc_log_parse_level("error", &lv), 0);
    ASSERT_EQ(lv, RC_LOG_ERROR);
    ASSERT_EQ(rc_log_parse_level("warn", &lv), 0);
    ASSERT_EQ(lv, RC_LOG_WARN);
    ASSERT_EQ(rc_log_parse_level("info", &lv), 0);
    ASSERT_EQ(lv, RC_LOG_INFO);
    ASSERT_EQ(rc_log_parse_level("debug", &lv), 0);
    ASSERT_EQ(lv, RC_LOG_DEBUG);
    ASSERT_EQ(rc_log_parse_level("verbose", &lv), -EINVAL);
    ASSERT_EQ(rc_log_parse_level("INFO", &lv), -EINVAL);
    ASSERT_EQ(rc_log_parse_level("", &lv), -EINVAL);

    rc_log_set_level(RC_LOG_INFO);
    ASSERT(rc_log_enabled(RC_LOG_ERROR));
    ASSERT(rc_log_enabled(RC_LOG_INFO));
    ASSERT(!rc_log_enabled(RC_LOG_DEBUG));

    capture(log_some);
    regex_t re;
    ASSERT_EQ(regcomp(&re,
                      "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z error "
                      "serve: cannot listen on 127\\.0\\.0\\.1:80: Permission denied\n"
                      "[0-9T:.Z-]{24} warn ingress: ring 3 is slow\n"
                      "[0-9T:.Z-]{24} debug cfg: now printed\n$",
                      REG_EXTENDED),
              0);
    if (regexec(&re, captured, 0, NULL, 0) != 0)
        RC_TEST_FAIL("unexpected log output:\n%s", captured);
    regfree(&re);

    /* A line longer than the buffer is cut, still one line ending in a newline. */
    capture(log_long);
    size_t n = strlen(captured);
    ASSERT_GT(n, 2900);
    ASSERT_LT(n, RC_LOG_LINE_MAX + 1);
    ASSERT_EQ(captured[n - 1], '\n');
    ASSERT(strchr(captured, '\n') == captured + n - 1);

    test_formats();
    test_json();
    test_json_long();
    test_limit();
    printf("ok\n");
    return 0;
}
