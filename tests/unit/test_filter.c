/* Trigger filter model (core/filter.h): building, the canonical text, and every validation
 * error with its path, line and message. */
#include "core/errors.h"
#include "core/filter.h"
#include "tests/test.h"
#include "tests/unit/filter_util.h"

#include <errno.h>
#include <stdio.h>

static void expect_format(const char *json, const char *want)
{
    rc_filter_t *f = fu_must(json);
    char buf[512];
    size_t n = rc_filter_format(f, buf, sizeof(buf));
    ASSERT_EQ(n, strlen(buf));
    ASSERT_STR_EQ(buf, want);
    rc_filter_destroy(f);
}

/* Loading `json` fails with RC_EFILTER at `path` and a message containing `part`. */
static void expect_error(const char *json, const char *path, const char *part)
{
    rc_filter_t *f = (rc_filter_t *)1;
    rc_filter_error_t err;
    memset(&err, 0x55, sizeof(err));
    int rc = fu_load(json, &f, &err);
    if (rc != RC_EFILTER)
        RC_TEST_FAIL("%s: rc %d, want RC_EFILTER", json, rc);
    ASSERT(f == NULL);
    ASSERT(memchr(err.path, '\0', sizeof(err.path)) != NULL);
    ASSERT(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
    if (strcmp(err.path, path) != 0)
        RC_TEST_FAIL("%s: path \"%s\", want \"%s\" (msg: %s)", json, err.path, path, err.msg);
    if (strncmp(err.msg, path, strlen(path)) != 0 || strncmp(err.msg + strlen(path), ": ", 2))
        RC_TEST_FAIL("%s: message \"%s\" does not start with the path", json, err.msg);
    if (strstr(err.msg, part) == NULL)
        RC_TEST_FAIL("%s: message \"%s\" lacks \"%s\"", json, err.msg, part);
}

static void test_format(void)
{
    expect_format("{}", "true");
    expect_format("{\"filter\": {}}", "true");
    expect_format("{\"filters\": []}", "true");
    expect_format("{\"filter\": {\"attributes\": {\"type\": \"a\", \"source\": \"\"}}}",
                  "attributes(type=\"a\", source=\"\")");
    expect_format("{\"filters\": [{\"exact\": {\"type\": \"a\\\"b\"}}, {\"any\": [{\"prefix\": "
                  "{\"source\": \"/x\"}}, {\"not\": {\"suffix\": {\"subject\": \".png\"}}}]}, "
                  "{\"cesql\": \"prio > 2\"}]}",
                  "filters(exact(type=\"a\\\"b\"), any(prefix(source=\"/x\"), "
                  "not(suffix(subject=\".png\"))), cesql(\"prio > 2\"))");
    /* filters overrides filter; an empty filters array does not. */
    expect_format("{\"filter\": {\"attributes\": {\"type\": \"a\"}}, \"filters\": [{\"exact\": "
                  "{\"type\": \"b\"}}]}",
                  "filters(exact(type=\"b\"))");
    expect_format("{\"filter\": {\"attributes\": {\"type\": \"a\"}}, \"filters\": []}",
                  "attributes(type=\"a\")");
    /* Truncation reports the length needed, as snprintf. */
    rc_filter_t *f = fu_must("{\"filters\": [{\"exact\": {\"type\": \"abcdef\"}}]}");
    char small[8];
    size_t n = rc_filter_format(f, small, sizeof(small));
    ASSERT_EQ(n, strlen("filters(exact(type=\"abcdef\"))"));
    ASSERT_STR_EQ(small, "filters");
    rc_filter_destroy(f);
}

static void test_errors_json(void)
{
    expect_error("{\"filters\": [{\"exact\": {\"type\": \"a\"}}, {\"any\": [{\"prefx\": "
                 "{\"type\": \"a\"}}]}]}",
                 "spec.filters[1].any[0]", "unknown filter dialect \"prefx\"");
    expect_error("{\"filters\": [{\"Exact\": {\"type\": \"a\"}}]}", "spec.filters[0]",
                 "unknown filter dialect \"Exact\"");
    expect_error("{\"filters\": [{\"exact\": {\"type\": \"a\"}, \"prefix\": {\"type\": \"b\"}}]}",
                 "spec.filters[0]", "sets two dialects (exact and prefix)");
    expect_error("{\"filters\": [{\"exact\": {\"type\": \"a\"}, \"bogus\": 1}]}", "spec.filters[0]",
                 "sets two dialects (exact and \"bogus\")");
    expect_error("{\"filters\": [{\"all\": []}]}", "spec.filters[0].all",
                 "needs at least one filter object");
    expect_error("{\"filters\": [{\"exact\": {\"type\": \"a\"}}, {\"not\": {\"any\": []}}]}",
                 "spec.filters[1].not.any", "needs at least one filter object");
    expect_error("{\"filters\": [{\"not\": {\"any\": [{\"exact\": {\"type\": \"x\"}}, {\"prefix\": "
                 "{\"Type\": \"a\"}}]}}]}",
                 "spec.filters[0].not.any[1].prefix",
                 "attribute name \"Type\" must match ^[a-z][a-z0-9]*$");
    expect_error("{\"filters\": [{\"suffix\": {\"1st\": \"a\"}}]}", "spec.filters[0].suffix",
                 "attribute name \"1st\"");
    expect_error("{\"filters\": [{\"exact\": {\"my-ext\": \"a\"}}]}", "spec.filters[0].exact",
                 "attribute name \"my-ext\"");
    expect_error("{\"filters\": [{\"exact\": {\"\": \"a\"}}]}", "spec.filters[0].exact",
                 "attribute name \"\"");
    expect_error("{\"filter\": {\"attributes\": {\"type\": \"a\", \"Source\": \"b\"}}}",
                 "spec.filter.attributes", "attribute name \"Source\"");
    expect_error("{\"filter\": {\"attributes\": {\"a\\u0001b\": \"b\"}}}", "spec.filter.attributes",
                 "attribute name \"a\\x01b\"");
    expect_error("{\"filters\": [{\"exact\": {\"type\": \"\"}}]}", "spec.filters[0].exact",
                 "value of \"type\" must be a non-empty string");
    expect_error("{\"filters\": [{\"prefix\": {}}]}", "spec.filters[0].prefix",
                 "must name at least one attribute");
    expect_error("{\"filters\": [{\"exact\": {\"type\": \"a\"}}, {}]}", "spec.filters[1]",
                 "sets no dialect");
    expect_error("{\"filters\": [{\"any\": [{\"exact\": {\"type\": \"a\"}}, {}]}]}",
                 "spec.filters[0].any[1]", "sets no dialect");
    expect_error("{\"filters\": [{\"cesql\": \"type = \"}]}", "spec.filters[0].cesql",
                 "offset 7: expected");
    expect_error("{\"filters\": [{\"cesql\": \"1 + 1\"}]}", "spec.filters[0].cesql",
                 "the expression is an Integer, not a Boolean, so it can never match");
    expect_error("{\"filters\": [{\"cesql\": \"'x'\"}]}", "spec.filters[0].cesql",
                 "a String, not a Boolean");
    expect_error("{\"filters\": [{\"cesql\": \"NOSUCH(type)\"}]}", "spec.filters[0].cesql",
                 "NOSUCH");
    expect_error("{\"filters\": [{\"cesql\": \"\"}]}", "spec.filters[0].cesql", "offset 0");
    /* Shapes the loader checks itself, placed by rc_filter_error_at. */
    expect_error("{\"filters\": [{\"exact\": [\"type\"]}]}", "spec.filters[0].exact",
                 "must be a map");
    expect_error("{\"filters\": [{\"exact\": {\"type\": 5}}]}", "spec.filters[0].exact",
                 "values must be strings");
    expect_error("{\"filters\": [{\"any\": [\"x\"]}]}", "spec.filters[0].any[0]",
                 "must be an object");

    /* The CESQL error position is the compiler's. */
    rc_filter_t *f;
    rc_filter_error_t err;
    ASSERT_EQ(fu_load("{\"filters\": [{\"cesql\": \"type = 'a' AND (\"}]}", &f, &err), RC_EFILTER);
    ASSERT_EQ(err.pos, strlen("type = 'a' AND ("));
    /* A valid name may have any length (the record format limits extension names to 255). */
    f = fu_must("{\"filters\": [{\"exact\": {\"averyveryverylongattributename0123\": \"x\"}}]}");
    rc_filter_destroy(f);
}

static void test_depth(void)
{
    /* RC_FILTER_MAX_DEPTH nested objects are fine; one more is refused. */
    char json[4096];
    for (int depth = RC_FILTER_MAX_DEPTH; depth <= RC_FILTER_MAX_DEPTH + 1; depth++) {
        size_t o = (size_t)snprintf(json, sizeof(json), "{\"filters\": [");
        for (int i = 1; i < depth; i++)
            o += (size_t)snprintf(json + o, sizeof(json) - o, "{\"not\": ");
        o += (size_t)snprintf(json + o, sizeof(json) - o, "{\"exact\": {\"type\": \"a\"}}");
        for (int i = 1; i < depth; i++)
            o += (size_t)snprintf(json + o, sizeof(json) - o, "}");
        snprintf(json + o, sizeof(json) - o, "]}");
        rc_filter_t *f;
        rc_filter_error_t err;
        int rc = fu_load(json, &f, &err);
        if (depth == RC_FILTER_MAX_DEPTH) {
            ASSERT_EQ(rc, 0);
            rc_filter_destroy(f);
        } else {
            ASSERT_EQ(rc, RC_EFILTER);
            ASSERT(strstr(err.msg, "nest deeper than 32 levels") != NULL);
            ASSERT(strncmp(err.path, "spec.filters[0].not.not.not", 27) == 0);
        }
    }
}

static void test_builder(void)
{
    rc_filter_t *f;
    rc_filter_error_t err;
    rc_filter_node_t *a, *b, *c;
    rc_filter_dialect_t d;
    ASSERT_EQ(rc_filter_create(&f), 0);

    /* Attributes: duplicates and lines. */
    ASSERT_EQ(rc_filter_add_attribute(f, RC_STR("type"), RC_STR("x"), 7, &err), 0);
    ASSERT_EQ(rc_filter_add_attribute(f, RC_STR("type"), RC_STR("y"), 8, &err), RC_EFILTER);
    ASSERT_EQ(err.line, 8);
    ASSERT_STR_EQ(err.msg, "spec.filter.attributes: attribute \"type\" is given twice");
    ASSERT_EQ(rc_filter_add_attribute(f, RC_STR("subject"), RC_STR_NULL, 9, &err), RC_EFILTER);
    ASSERT(strstr(err.msg, "must be a non-empty string") != NULL);
    /* An empty attributes value is allowed (present and non-empty). */
    ASSERT_EQ(rc_filter_add_attribute(f, RC_STR("subject"), RC_STR(""), 9, &err), 0);

    /* Objects: a nested object needs an all/any/not parent. */
    ASSERT_EQ(rc_filter_add_object(f, NULL, 10, &a, &err), 0);
    ASSERT_EQ(rc_filter_add_object(f, a, 11, &b, &err), RC_EFILTER);
    ASSERT(b == NULL);
    ASSERT_EQ(err.line, 11);
    ASSERT_STR_EQ(err.path, "spec.filters[0]");
    ASSERT(strstr(err.msg, "needs the object's dialect") != NULL);
    ASSERT_EQ(rc_filter_set_dialect(f, a, RC_STR("exact"), 10, &d, &err), 0);
    ASSERT_EQ(d, RC_FILTER_EXACT);
    ASSERT_EQ(rc_filter_add_object(f, a, 11, &b, &err), RC_EFILTER);
    ASSERT_STR_EQ(err.msg, "spec.filters[0].exact: this dialect takes no nested filter object");
    ASSERT_EQ(rc_filter_set_cesql(f, a, RC_STR("true"), 11, &err), RC_EFILTER);
    ASSERT_STR_EQ(err.msg, "spec.filters[0].exact: takes no CESQL expression");
    ASSERT_EQ(rc_filter_add_pair(f, a, RC_STR("type"), RC_STR("t"), 11, &err), 0);
    ASSERT_EQ(rc_filter_add_pair(f, a, RC_STR("type"), RC_STR("u"), 12, &err), RC_EFILTER);
    ASSERT_STR_EQ(err.msg, "spec.filters[0].exact: attribute \"type\" is given twice");
    ASSERT_EQ(rc_filter_add_pair(f, a, RC_STR("source"), RC_STR("/s"), 12, &err), 0);
    ASSERT_EQ(rc_filter_set_dialect(f, a, RC_STR("prefix"), 13, NULL, &err), RC_EFILTER);
    ASSERT_EQ(err.line, 13);

    /* not takes exactly one operand. */
    ASSERT_EQ(rc_filter_add_object(f, NULL, 20, &b, &err), 0);
    ASSERT_EQ(rc_filter_set_dialect(f, b, RC_STR("not"), 20, &d, &err), 0);
    ASSERT_EQ(rc_filter_add_pair(f, b, RC_STR("type"), RC_STR("t"), 21, &err), RC_EFILTER);
    ASSERT_STR_EQ(err.msg, "spec.filters[1].not: takes no attribute map (only exact, prefix and "
                           "suffix do)");
    rc_filter_error_t fin;
    ASSERT_EQ(rc_filter_finish(f, &fin), RC_EFILTER); /* the not has no operand yet */
    ASSERT_STR_EQ(fin.msg, "spec.filters[1].not: needs one filter object");
    ASSERT_EQ(fin.line, 20);
    ASSERT_EQ(rc_filter_add_object(f, b, 21, &c, &err), 0);
    ASSERT_EQ(rc_filter_add_object(f, b, 22, &a, &err), RC_EFILTER);
    ASSERT_STR_EQ(err.msg, "spec.filters[1].not: takes exactly one filter object");
    ASSERT_EQ(rc_filter_set_dialect(f, c, RC_STR("cesql"), 21, &d, &err), 0);
    ASSERT_EQ(rc_filter_finish(f, &fin), RC_EFILTER); /* the cesql has no expression yet */
    ASSERT_STR_EQ(fin.msg, "spec.filters[1].not.cesql: needs an expression");
    ASSERT_EQ(fin.line, 21);
    ASSERT_EQ(rc_filter_set_cesql(f, c, RC_STR("type = 'x' ("), 21, &err), RC_EFILTER);
    ASSERT_EQ(err.line, 21);
    ASSERT_EQ(rc_filter_set_cesql(f, c, RC_STR("EXISTS subject"), 21, &err), 0);
    ASSERT_EQ(rc_filter_set_cesql(f, c, RC_STR("true"), 21, &err), RC_EFILTER);
    ASSERT_STR_EQ(err.msg, "spec.filters[1].not.cesql: has its expression already");

    /* Loader-found problems. */
    ASSERT_EQ(rc_filter_error_at(f, c, 30, &err, "bad %s", "shape"), RC_EFILTER);
    ASSERT_STR_EQ(err.msg, "spec.filters[1].not.cesql: bad shape");
    ASSERT_STR_EQ(err.path, "spec.filters[1].not.cesql");
    ASSERT_EQ(err.line, 30);
    ASSERT_EQ(rc_filter_error_at(f, NULL, 3, &err, "must be an array"), RC_EFILTER);
    ASSERT_STR_EQ(err.msg, "spec.filters: must be an array");

    ASSERT_EQ(rc_filter_finish(f, &fin), 0);
    char buf[256];
    rc_filter_format(f, buf, sizeof(buf));
    ASSERT_STR_EQ(buf, "filters(exact(type=\"t\", source=\"/s\"), not(cesql(\"EXISTS subject\")))");
    /* A finished filter takes no more changes. */
    ASSERT_EQ(rc_filter_add_object(f, NULL, 40, &a, &err), RC_EFILTER);
    ASSERT(strstr(err.msg, "finished") != NULL);
    ASSERT_EQ(rc_filter_add_attribute(f, RC_STR("id"), RC_STR("1"), 40, &err), RC_EFILTER);
    /* NULL err is allowed. */
    rc_filter_destroy(f);
    ASSERT_EQ(rc_filter_create(&f), 0);
    ASSERT_EQ(rc_filter_add_attribute(f, RC_STR("Bad"), RC_STR("1"), 1, NULL), RC_EFILTER);
    rc_filter_destroy(f);
    rc_filter_destroy(NULL);

    /* A long value is refused with its limit; the name in messages is shortened. */
    ASSERT_EQ(rc_filter_create(&f), 0);
    char *big = malloc(RC_FILTER_MAX_VALUE + 1);
    ASSERT(big != NULL);
    memset(big, 'v', RC_FILTER_MAX_VALUE + 1);
    ASSERT_EQ(rc_filter_add_attribute(f, RC_STR("type"), (rc_str_t){big, RC_FILTER_MAX_VALUE + 1},
                                      1, &err),
              RC_EFILTER);
    ASSERT(strstr(err.msg, "longer than 65536 bytes") != NULL);
    memset(big, 'V', 300);
    ASSERT_EQ(rc_filter_add_attribute(f, (rc_str_t){big, 300}, RC_STR("x"), 1, &err), RC_EFILTER);
    ASSERT(strstr(err.msg, "VVVVVVVV...\" must match") != NULL);
    free(big);
    rc_filter_destroy(f);
}

static void test_names(void)
{
    ASSERT_STR_EQ(rc_filter_dialect_name(RC_FILTER_EXACT), "exact");
    ASSERT_STR_EQ(rc_filter_dialect_name(RC_FILTER_CESQL), "cesql");
    ASSERT(rc_filter_dialect_name((rc_filter_dialect_t)0) == NULL);
    ASSERT(rc_filter_dialect_name((rc_filter_dialect_t)8) == NULL);
    ASSERT_STR_EQ(rc_strerror(RC_EFILTER), "invalid trigger filter");
}

int main(void)
{
    test_format();
    test_errors_json();
    test_depth();
    test_builder();
    test_names();
    printf("test_filter: ok\n");
    return 0;
}
