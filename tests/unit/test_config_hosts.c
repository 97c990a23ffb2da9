/* Unit test of the host check a config passes before serve starts and before a reload is
 * applied (rc_http_url_check_hosts, net/http/http_url.c; issue 11, defect 5): IP literals need no
 * lookup, a name under .invalid (RFC 2606: never resolves) fails with file, line, trigger or
 * broker, field and host, the first failure in the file is the one reported, and every check
 * ends within its timeout whether DNS answers, refuses or stays silent. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/errors.h"
#include "net/http/http_url.h"
#include "tests/test.h"

#define HEAD "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default}\n"
#define TRIGGER(name, uri)                                                                         \
    "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: " name "}\n"        \
    "spec:\n  broker: default\n  subscriber: {uri: \"" uri "\"}\n"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Loads `yaml` (which must load) and runs the host check on it with `timeout_ms`; returns its
 * result with the message in `err`, and how long it took in `*took`. */
static int check(const char *yaml, uint32_t timeout_ms, char *err, size_t errlen, double *took)
{
    rc_config_t c;
    if (rc_config_load_string(&c, "t.yaml", yaml, strlen(yaml), err, errlen) != 0)
        RC_TEST_FAIL("config does not load: %s", err);
    err[0] = '\0';
    double t0 = now_s();
    int rc = rc_http_url_check_hosts(&c, timeout_ms, err, errlen);
    *took = now_s() - t0;
    rc_config_close(&c);
    return rc;
}

/* `err` is the failure for `prefix` (everything up to the host and field): the reason after it
 * depends on the resolver (no such name, no DNS server, no answer in time). */
static void expect_unresolved(const char *err, const char *prefix, uint32_t timeout_ms)
{
    char late[64];
    snprintf(late, sizeof(late), "did not resolve within %u ms", timeout_ms);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        RC_TEST_FAIL("message \"%s\" does not start with \"%s\"", err, prefix);
    const char *rest = err + strlen(prefix);
    if (strncmp(rest, "does not resolve (", 18) != 0 && strcmp(rest, late) != 0)
        RC_TEST_FAIL("message \"%s\": unexpected reason", err);
}

static void test_literals_need_no_lookup(void)
{
    char err[RC_CONFIG_ERR_MAX];
    double took;
    ASSERT_EQ(
        check(
            HEAD TRIGGER("a", "http://127.0.0.1:9/x") TRIGGER(
                "b", "http://[::1]:9/") "---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
                                        "spec: {ports: [{port: 81}]}\n"
                                        "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
                                        "metadata: {name: c}\nspec:\n  broker: default\n"
                                        "  subscriber: {ref: {kind: Service, name: s}}\n",
            0, err, sizeof(err), &took),
        0);
    ASSERT(took < 0.05);
    ASSERT_EQ(check(HEAD, 0, err, sizeof(err), &took), 0);
}

static void test_localhost_resolves(void)
{
    char err[RC_CONFIG_ERR_MAX];
    double took;
    int rc = check(HEAD TRIGGER("a", "http://localhost:9/x"), 5000, err, sizeof(err), &took);
    if (rc != 0)
        RC_TEST_FAIL("localhost: %s", err);
}

static void test_unresolvable(void)
{
    char err[RC_CONFIG_ERR_MAX];
    double took;
    /* The subscriber of the second trigger, at line 16 of the file. */
    ASSERT_EQ(check(HEAD TRIGGER("a", "http://127.0.0.1:9/") TRIGGER("b", "http://nope.invalid/"),
                    2000, err, sizeof(err), &took),
              RC_ECONFIG);
    expect_unresolved(err,
                      "t.yaml:17: Trigger default/b: host \"nope.invalid\" in "
                      "'spec.subscriber.uri' ",
                      2000);
    ASSERT(took < 3.0);
    /* Two failures: the one earlier in the file is reported, though its name sorts later. */
    ASSERT_EQ(check(HEAD TRIGGER("z", "http://zz.invalid:8080/") TRIGGER("y", "http://aa.invalid/"),
                    2000, err, sizeof(err), &took),
              RC_ECONFIG);
    expect_unresolved(
        err, "t.yaml:10: Trigger default/z: host \"zz.invalid\" in 'spec.subscriber.uri' ", 2000);
    /* A broker's and a trigger's dead-letter sink. */
    ASSERT_EQ(check("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default}\n"
                    "spec:\n  delivery:\n    deadLetterSink:\n      uri: http://dls.invalid/d\n",
                    2000, err, sizeof(err), &took),
              RC_ECONFIG);
    expect_unresolved(err,
                      "t.yaml:7: Broker default/default: host \"dls.invalid\" in "
                      "'spec.delivery.deadLetterSink.uri' ",
                      2000);
    ASSERT_EQ(check(HEAD TRIGGER("a", "http://127.0.0.1:9/") "  delivery:\n    deadLetterSink: "
                                                             "{uri: http://tdls.invalid/}\n",
                    2000, err, sizeof(err), &took),
              RC_ECONFIG);
    expect_unresolved(err,
                      "t.yaml:12: Trigger default/a: host \"tdls.invalid\" in "
                      "'spec.delivery.deadLetterSink.uri' ",
                      2000);
}

/* With no time at all, the check still ends at once: lookups that have not answered are
 * reported as late and left to glibc, and a later check frees them. */
static void test_timeout_bounds_the_wait(void)
{
    char err[RC_CONFIG_ERR_MAX];
    double took;
    ASSERT_EQ(check(HEAD TRIGGER("a", "http://late.invalid/"), 0, err, sizeof(err), &took),
              RC_ECONFIG);
    expect_unresolved(err,
                      "t.yaml:10: Trigger default/a: host \"late.invalid\" in "
                      "'spec.subscriber.uri' ",
                      0);
    ASSERT(took < 0.5);
    ASSERT_EQ(check(HEAD, 0, err, sizeof(err), &took), 0);
}

/* Many triggers on one host are one lookup: a thousand of them take no longer than one. */
static void test_one_lookup_per_name(void)
{
    static char yaml[1000 * 160 + 256];
    size_t off = (size_t)snprintf(yaml, sizeof(yaml), "%s", HEAD);
    for (int i = 0; i < 1000; i++)
        off += (size_t)snprintf(yaml + off, sizeof(yaml) - off,
                                TRIGGER("t%d", "http://localhost:%d/"), i, 1000 + i);
    char err[RC_CONFIG_ERR_MAX];
    double took;
    int rc = check(yaml, 5000, err, sizeof(err), &took);
    if (rc != 0)
        RC_TEST_FAIL("1000 triggers on localhost: %s", err);
    ASSERT(took < 1.0);
}

int main(void)
{
    test_literals_need_no_lookup();
    test_localhost_resolves();
    test_unresolvable();
    test_timeout_bounds_the_wait();
    test_one_lookup_per_name();
    printf("test_config_hosts: ok\n");
    return 0;
}
