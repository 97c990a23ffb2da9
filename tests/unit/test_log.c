/* Unit test of core/log: level names, filtering, and the exact line format (captured by
 * pointing stderr at a temporary file). */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <unistd.h>

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
    ASSERT_GT(n, 1000);
    ASSERT_LT(n, 1025);
    ASSERT_EQ(captured[n - 1], '\n');
    ASSERT(strchr(captured, '\n') == captured + n - 1);
    printf("ok\n");
    return 0;
}
