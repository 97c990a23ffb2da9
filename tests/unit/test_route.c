/* Routing programs (core/route.h): every dialect over real ring records, typed extensions,
 * missing and empty attributes, CESQL error counters, many triggers at once, and a property test
 * comparing the indexed program, the unindexed one and a naive evaluator written here. */
#include "core/errors.h"
#include "core/filter.h"
#include "core/record.h"
#include "core/route.h"
#include "tests/test.h"
#include "tests/unit/event_gen.h"
#include "tests/unit/filter_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

static _Alignas(8) uint8_t recbuf[4096];

/* Routes the record `rec` through one trigger with filter `json` (NULL: no filter), indexed and
 * unindexed; both must agree. Returns whether it matched; *errors gets the CESQL error count. */
static bool route1(const char *json, const char *rec, uint64_t *errors, int line)
{
    rc_filter_t *f = json ? fu_must(json) : NULL;
    rc_record_view_t view;
    fu_record(rec, recbuf, sizeof(recbuf), &view);
    int got[2];
    uint64_t errs[2];
    for (int pass = 0; pass < 2; pass++) {
        rc_route_t *r;
        const rc_filter_t *fs[1] = {f};
        ASSERT_EQ(rc_route_compile(fs, 1, pass ? RC_ROUTE_NO_INDEX : 0, &r), 0);
        uint32_t out[1] = {99};
        got[pass] = rc_route_match(r, &view, out, 1);
        ASSERT(got[pass] == 0 || (got[pass] == 1 && out[0] == 0));
        errs[pass] = rc_route_cesql_errors(r, 0);
        rc_route_destroy(r);
    }
    if (got[0] != got[1] || errs[0] != errs[1])
        RC_TEST_FAIL("line %d: indexed %d (%llu errors) vs unindexed %d (%llu errors) for %s on %s",
                     line, got[0], (unsigned long long)errs[0], got[1], (unsigned long long)errs[1],
                     json ? json : "(none)", rec);
    rc_filter_destroy(f);
    if (errors != NULL)
        *errors = errs[0];
    return got[0] == 1;
}

#define YES(json, rec)                                                                             \
    do {                                                                                           \
        if (!route1(json, rec, NULL, __LINE__))                                                    \
            RC_TEST_FAIL("%s should match %s", json ? json : "(none)", rec);                       \
    } while (0)
#define NO(json, rec)                                                                              \
    do {                                                                                           \
        if (route1(json, rec, NULL, __LINE__))                                                     \
            RC_TEST_FAIL("%s should not match %s", json ? json : "(none)", rec);                   \
    } while (0)

#define EXACT(a, v)  "{\"filters\": [{\"exact\": {\"" a "\": \"" v "\"}}]}"
#define PREFIX(a, v) "{\"filters\": [{\"prefix\": {\"" a "\": \"" v "\"}}]}"
#define SUFFIX(a, v) "{\"filters\": [{\"suffix\": {\"" a "\": \"" v "\"}}]}"
#define ATTRS(body)  "{\"filter\": {\"attributes\": {" body "}}}"
#define CESQL(e)     "{\"filters\": [{\"cesql\": \"" e "\"}]}"

static void test_dialects(void)
{
    /* exact: whole value, case-sensitive, missing fails. */
    YES(EXACT("type", "a.b"), "type=a.b");
    NO(EXACT("type", "a.b"), "type=a.bc");
    NO(EXACT("type", "a.b"), "type=a.");
    NO(EXACT("type", "a.b"), "type=A.B");
    NO(EXACT("type", "a.b"), "source=/x");
    YES(EXACT("source", "/x"), "type=t;source=/x");
    YES(EXACT("region", "eu"), "type=t;region=eu");
    NO(EXACT("region", "eu"), "type=t;region=EU");
    NO(EXACT("region", "eu"), "type=t;regions=eu");
    /* Several entries in one map are AND-ed. */
    const char *two = "{\"filters\": [{\"exact\": {\"type\": \"t\", \"region\": \"eu\"}}]}";
    YES(two, "type=t;region=eu");
    NO(two, "type=t;region=us");
    NO(two, "type=u;region=eu");
    NO(two, "type=t");

    /* prefix / suffix, including the whole value and longer-than-value patterns. */
    YES(PREFIX("source", "/x"), "source=/x/y");
    YES(PREFIX("source", "/x"), "source=/x");
    NO(PREFIX("source", "/x"), "source=/");
    NO(PREFIX("source", "/x"), "source=/y/x");
    NO(PREFIX("source", "/x"), "type=t");
    YES(SUFFIX("subject", ".png"), "subject=a/b.png");
    YES(SUFFIX("subject", ".png"), "subject=.png");
    NO(SUFFIX("subject", ".png"), "subject=png");
    NO(SUFFIX("subject", ".png"), "subject=a.png.txt");
    NO(SUFFIX("subject", ".png"), "type=x");
    YES(PREFIX("region", "eu-"), "region=eu-west");
    YES(SUFFIX("region", "west"), "region=eu-west");

    /* Typed extensions compare by their canonical string. */
    YES(EXACT("prio", "5"), "prio:int=5");
    NO(EXACT("prio", "05"), "prio:int=5");
    NO(EXACT("prio", "5"), "prio:int=-5");
    YES(SUFFIX("prio", "5"), "prio:int=-5");
    YES(PREFIX("prio", "-"), "prio:int=-5");
    YES(EXACT("flag", "true"), "flag:bool=true");
    NO(EXACT("flag", "True"), "flag:bool=true");
    NO(EXACT("flag", "true"), "flag:bool=false");
    YES(EXACT("cb", "https://x.example/p"), "cb:uri=https://x.example/p");
    YES(ATTRS("\"prio\": \"12\""), "prio:int=12");

    /* spec.filter.attributes: exact per entry; "" = present and non-empty. */
    YES(ATTRS("\"type\": \"t\", \"source\": \"/s\""), "type=t;source=/s");
    NO(ATTRS("\"type\": \"t\", \"source\": \"/s\""), "type=t;source=/s2");
    NO(ATTRS("\"type\": \"t\", \"source\": \"/s\""), "type=t");
    YES(ATTRS("\"subject\": \"\""), "subject=x");
    NO(ATTRS("\"subject\": \"\""), "subject=");
    NO(ATTRS("\"subject\": \"\""), "type=t");
    YES(ATTRS("\"note\": \"\""), "note=n");
    NO(ATTRS("\"note\": \"\""), "note=");
    NO(ATTRS("\"note\": \"\""), "type=t");
    YES(ATTRS("\"type\": \"t\", \"note\": \"\""), "type=t;note=n");
    NO(ATTRS("\"type\": \"t\", \"note\": \"\""), "type=t;note=");
    YES(ATTRS(""), "type=t");
    YES("{}", "type=t");
    YES(NULL, "type=t");
    YES(NULL, "");

    /* filters overrides filter when it has elements; an empty filters array does not. */
    const char *both = "{\"filter\": {\"attributes\": {\"type\": \"a\"}}, \"filters\": "
                       "[{\"exact\": {\"type\": \"b\"}}]}";
    YES(both, "type=b");
    NO(both, "type=a");
    const char *empty = "{\"filter\": {\"attributes\": {\"type\": \"a\"}}, \"filters\": []}";
    YES(empty, "type=a");
    NO(empty, "type=b");

    /* spec.filters elements are AND-ed. */
    const char *and2 = "{\"filters\": [{\"exact\": {\"type\": \"t\"}}, {\"prefix\": {\"source\": "
                       "\"/x\"}}]}";
    YES(and2, "type=t;source=/x/1");
    NO(and2, "type=t;source=/y");
    NO(and2, "type=u;source=/x");

    /* all / any / not, nested. */
    const char *all = "{\"filters\": [{\"all\": [{\"exact\": {\"type\": \"t\"}}, {\"suffix\": "
                      "{\"source\": \"/z\"}}]}]}";
    YES(all, "type=t;source=/a/z");
    NO(all, "type=t;source=/a/y");
    const char *any = "{\"filters\": [{\"any\": [{\"exact\": {\"type\": \"a\"}}, {\"exact\": "
                      "{\"type\": \"b\"}}, {\"prefix\": {\"subject\": \"s\"}}]}]}";
    YES(any, "type=a");
    YES(any, "type=b");
    YES(any, "type=c;subject=sx");
    NO(any, "type=c;subject=xs");
    NO(any, "type=c");
    const char *not = "{\"filters\": [{\"not\": {\"exact\": {\"type\": \"a\"}}}]}";
    NO(not, "type=a");
    YES(not, "type=b");
    YES(not, "source=/missing-type"); /* missing fails exact, so not passes */
    const char *nested =
        "{\"filters\": [{\"any\": [{\"all\": [{\"exact\": {\"type\": \"a\"}}, {\"not\": {\"any\": "
        "[{\"prefix\": {\"region\": \"eu\"}}, {\"exact\": {\"flag\": \"true\"}}]}}]}, {\"not\": "
        "{\"not\": {\"suffix\": {\"subject\": \"!\"}}}}]}]}";
    YES(nested, "type=a;region=us;flag:bool=false");
    YES(nested, "type=a");
    NO(nested, "type=a;region=eu-1");
    NO(nested, "type=a;flag:bool=true");
    YES(nested, "type=a;flag:bool=true;subject=hey!");
    YES(nested, "type=b;subject=!");
    NO(nested, "type=b;subject=?");
    const char *any_same = "{\"filters\": [{\"any\": [{\"exact\": {\"type\": \"a\"}}, {\"exact\": "
                           "{\"type\": \"a\"}}]}, {\"exact\": {\"region\": \"eu\"}}]}";
    YES(any_same, "type=a;region=eu");
    NO(any_same, "type=a;region=us");
    /* Contradictions simply never match. */
    NO("{\"filters\": [{\"exact\": {\"type\": \"a\"}}, {\"exact\": {\"type\": \"b\"}}]}", "type=a");
}

static void test_cesql(void)
{
    uint64_t errors;
    ASSERT(route1(CESQL("prio > 3"), "prio:int=5", &errors, __LINE__));
    ASSERT_EQ(errors, 0);
    ASSERT(!route1(CESQL("prio > 3"), "prio:int=2", &errors, __LINE__));
    ASSERT_EQ(errors, 0);
    /* Missing attribute: an error, counted, no match. */
    ASSERT(!route1(CESQL("prio > 3"), "type=t", &errors, __LINE__));
    ASSERT_EQ(errors, 1);
    /* A cast error. */
    ASSERT(!route1(CESQL("prio > 3"), "prio=abc", &errors, __LINE__));
    ASSERT_EQ(errors, 1);
    /* Boolean attribute as the whole expression. */
    ASSERT(route1(CESQL("flag"), "flag:bool=true", &errors, __LINE__));
    ASSERT(!route1(CESQL("flag"), "flag:bool=false", &errors, __LINE__));
    ASSERT_EQ(errors, 0);
    /* A failing evaluation is a non-match, so its negation matches (and still counts). */
    const char *not = "{\"filters\": [{\"not\": {\"cesql\": \"prio > 3\"}}]}";
    ASSERT(route1(not, "type=t", &errors, __LINE__));
    ASSERT_EQ(errors, 1);
    ASSERT(!route1(not, "prio:int=9", &errors, __LINE__));
    ASSERT_EQ(errors, 0);
    /* Cheaper tests run first, so a failing exact spares the CESQL evaluation. */
    const char *and = "{\"filters\": [{\"cesql\": \"prio > 3\"}, {\"exact\": {\"type\": \"t\"}}]}";
    ASSERT(!route1(and, "type=u", &errors, __LINE__));
    ASSERT_EQ(errors, 0);
    ASSERT(!route1(and, "type=t", &errors, __LINE__));
    ASSERT_EQ(errors, 1);
    ASSERT(route1(and, "type=t;prio:int=4", &errors, __LINE__));
    YES(CESQL("type LIKE 'com.%' AND EXISTS subject"), "type=com.x;subject=s");
    NO(CESQL("type LIKE 'com.%' AND EXISTS subject"), "type=com.x");
    YES(CESQL("true"), "");
    NO(CESQL("false"), "type=t");
}

/* Routes `rec` through `r` and compares with the expected list (ascending). */
static void expect_route(const rc_route_t *r, const char *rec, const uint32_t *want, int nwant)
{
    rc_record_view_t view;
    fu_record(rec, recbuf, sizeof(recbuf), &view);
    uint32_t n = rc_route_trigger_count(r);
    uint32_t *out = calloc(n ? n : 1, sizeof(*out));
    ASSERT(out != NULL);
    int got = rc_route_match(r, &view, out, n);
    bool same = got == nwant;
    for (int i = 0; same && i < got; i++)
        same = out[i] == want[i];
    if (!same) {
        fprintf(stderr, "route of %s: got", rec);
        for (int i = 0; i < got; i++)
            fprintf(stderr, " %u", out[i]);
        fprintf(stderr, ", want");
        for (int i = 0; i < nwant; i++)
            fprintf(stderr, " %u", want[i]);
        RC_TEST_FAIL("wrong route");
    }
    free(out);
}

#define ROUTE(r, rec, ...)                                                                         \
    do {                                                                                           \
        const uint32_t w_[] = {__VA_ARGS__};                                                       \
        expect_route(r, rec, w_, (int)(sizeof(w_) / sizeof(w_[0])));                               \
    } while (0)
#define ROUTE_NONE(r, rec) expect_route(r, rec, NULL, 0)

static void test_many(void)
{
    static const char *const specs[] = {
        /* 0 */ EXACT("type", "a"),
        /* 1 */ PREFIX("source", "/x"),
        /* 2 */ NULL,
        /* 3 */
        "{\"filters\": [{\"any\": [{\"exact\": {\"type\": \"a\"}}, {\"exact\": {\"type\": "
        "\"b\"}}]}]}",
        /* 4 */ ATTRS("\"type\": \"b\""),
        /* 5 */ "{\"filters\": [{\"exact\": {\"type\": \"a\"}}, {\"cesql\": \"prio > 1\"}]}",
        /* 6 */ EXACT("region", "eu"),
        /* 7 */ "{\"filters\": [{\"exact\": {\"region\": \"us\", \"source\": \"/x\"}}]}",
        /* 8 */ "{\"filters\": [{\"not\": {\"exact\": {\"type\": \"a\"}}}]}",
        /* 9 */ ATTRS("\"subject\": \"\""),
    };
    enum { N = sizeof(specs) / sizeof(specs[0]) };
    rc_filter_t *f[N];
    for (int i = 0; i < N; i++)
        f[i] = specs[i] ? fu_must(specs[i]) : NULL;
    for (int pass = 0; pass < 2; pass++) {
        rc_route_t *r;
        ASSERT_EQ(
            rc_route_compile((const rc_filter_t *const *)f, N, pass ? RC_ROUTE_NO_INDEX : 0, &r),
            0);
        ASSERT_EQ(rc_route_trigger_count(r), N);
        rc_route_stats_t st;
        rc_route_stats(r, &st);
        ASSERT_EQ(st.triggers, N);
        ASSERT_EQ(st.cesql, 1);
        if (pass == 0) {
            /* 0, 3, 4, 5 on type; 6 and 7 on region (the attribute both share). */
            ASSERT_EQ(st.indexed, 6);
            ASSERT_EQ(st.generic, 4);
            ASSERT_EQ(st.index_attrs, 2);
            ASSERT_EQ(st.index_keys, 4); /* type a, type b, region eu, region us */
        } else {
            ASSERT_EQ(st.indexed, 0);
            ASSERT_EQ(st.generic, N);
            ASSERT_EQ(st.index_attrs, 0);
        }
        ROUTE(r, "type=a", 0, 2, 3);
        ROUTE(r, "type=a;prio:int=2;source=/x/1", 0, 1, 2, 3, 5);
        ROUTE(r, "type=b;region=eu;subject=s", 2, 3, 4, 6, 8, 9);
        ROUTE(r, "type=c;region=us;source=/x", 1, 2, 7, 8);
        ROUTE(r, "type=c;region=us;source=/y", 2, 8);
        ROUTE(r, "", 2, 8);
        ASSERT_EQ(rc_route_cesql_errors(r, 5), 1); /* the type=a event without prio */
        ASSERT_EQ(rc_route_cesql_errors(r, 0), 0);
        ASSERT_EQ(rc_route_cesql_errors(r, N), 0);
        /* The output must have room for every trigger. */
        uint32_t out[N];
        rc_record_view_t view;
        fu_record("type=a", recbuf, sizeof(recbuf), &view);
        ASSERT_EQ(rc_route_match(r, &view, out, N - 1), -ENOBUFS);
        rc_route_destroy(r);
    }
    for (int i = 0; i < N; i++)
        rc_filter_destroy(f[i]);

    /* No triggers at all. */
    rc_route_t *r;
    ASSERT_EQ(rc_route_compile(NULL, 0, 0, &r), 0);
    rc_record_view_t view;
    fu_record("type=a", recbuf, sizeof(recbuf), &view);
    ASSERT_EQ(rc_route_match(r, &view, NULL, 0), 0);
    rc_route_destroy(r);
    rc_route_destroy(NULL);

    /* Bad arguments: an unfinished filter, unknown flags. */
    rc_filter_t *raw;
    ASSERT_EQ(rc_filter_create(&raw), 0);
    const rc_filter_t *one[1] = {raw};
    ASSERT_EQ(rc_route_compile(one, 1, 0, &r), -EINVAL);
    ASSERT(r == NULL);
    rc_filter_error_t err;
    ASSERT_EQ(rc_filter_finish(raw, &err), 0);
    ASSERT_EQ(rc_route_compile(one, 1, 0x100, &r), -EINVAL);
    ASSERT_EQ(rc_route_compile(one, 1, 0, &r), 0);
    rc_filter_destroy(raw); /* the route keeps its own copies */
    ROUTE(r, "type=a", 0);
    rc_route_destroy(r);
}

/* 10,000 exact-type triggers: all indexed, each event reaches exactly its own trigger. */
static void test_scale(void)
{
    enum { N = 10000 };
    rc_filter_t **f = calloc(N, sizeof(*f));
    ASSERT(f != NULL);
    char json[128];
    for (int i = 0; i < N; i++) {
        snprintf(json, sizeof(json), "{\"filters\": [{\"exact\": {\"type\": \"t.%d\"}}]}", i);
        f[i] = fu_must(json);
    }
    rc_route_t *r;
    ASSERT_EQ(rc_route_compile((const rc_filter_t *const *)f, N, 0, &r), 0);
    rc_route_stats_t st;
    rc_route_stats(r, &st);
    ASSERT_EQ(st.indexed, N);
    ASSERT_EQ(st.generic, 0);
    ASSERT_EQ(st.index_keys, N);
    ASSERT_EQ(st.insns, 0);
    uint32_t *out = malloc(N * sizeof(*out));
    ASSERT(out != NULL);
    for (int i = 0; i < N; i += 37) {
        char rec[64];
        snprintf(rec, sizeof(rec), "type=t.%d", i);
        rc_record_view_t view;
        fu_record(rec, recbuf, sizeof(recbuf), &view);
        ASSERT_EQ(rc_route_match(r, &view, out, N), 1);
        ASSERT_EQ(out[0], i);
    }
    ROUTE_NONE(r, "type=t.10000");
    ROUTE_NONE(r, "type=t.");
    ROUTE_NONE(r, "source=/x");
    rc_route_destroy(r);
    for (int i = 0; i < N; i++)
        rc_filter_destroy(f[i]);
    free(f);
    free(out);
}

/* ---- property test ------------------------------------------------------------------------- */

#define NATTR 7
static const char *const anames[NATTR] = {"type", "source", "subject", "region",
                                          "prio", "flag",   "note"};
static const char *const atypes[NATTR] = {"", "", "", "", ":int", ":bool", ""};
static const char *const avals[NATTR][4] = {
    {"a", "b", "ab", "ba"}, {"/x", "/x/y", "/y", "x/"},
    {"s1", "s2", "1s", ""}, {"eu", "us", "eu-west", "west"},
    {"1", "2", "10", "-1"}, {"true", "false", "true", "false"},
    {"", "n", "nn", "x"},
};

typedef struct {
    const char *expr;
    int attr; /* what the naive evaluator reads */
} tcesql_t;

static const tcesql_t cesqls[] = {
    {"type = 'a'", 0},        {"EXISTS subject", 2}, {"prio > 1", 4},
    {"region LIKE 'eu%'", 3}, {"flag", 5},
};
#define NCESQL (int)(sizeof(cesqls) / sizeof(cesqls[0]))

typedef struct tnode_s {
    int kind; /* rc_filter_dialect_t */
    int npairs;
    int attr[2];
    const char *val[2];
    int nkids;
    struct tnode_s *kids[3];
    int cesql;
} tnode_t;

typedef struct {
    int nattrs;
    int attr[2];
    const char *aval[2];
    int nf;
    tnode_t *f[3];
} ttrig_t;

typedef struct {
    const char *v[NATTR]; /* NULL: absent */
} tevent_t;

static gen_rng_t rng = {0x9e3779b97f4a7c15ull};

static const char *pick_value(int attr, bool allow_empty)
{
    for (;;) {
        const char *v = avals[attr][gen_below(&rng, 4)];
        if (*v || allow_empty)
            return v;
    }
}

/* A value for a prefix/suffix test: a non-empty piece of a pool value from the given end. */
static const char *pick_piece(int attr, bool prefix)
{
    static char pieces[4096][8];
    static int next;
    const char *v = pick_value(attr, false);
    size_t len = strlen(v), n = 1 + gen_below(&rng, (uint32_t)len);
    char *p = pieces[next++ % 4096];
    memcpy(p, prefix ? v : v + len - n, n);
    p[n] = '\0';
    return p;
}

static tnode_t *gen_node(int depth)
{
    tnode_t *n = calloc(1, sizeof(*n));
    ASSERT(n != NULL);
    int k = depth >= 3 ? (int)gen_below(&rng, 3) + 1 : (int)gen_below(&rng, 7) + 1;
    if (k == RC_FILTER_CESQL && gen_below(&rng, 2) == 0)
        k = RC_FILTER_EXACT;
    n->kind = k;
    switch (k) {
    case RC_FILTER_EXACT:
    case RC_FILTER_PREFIX:
    case RC_FILTER_SUFFIX:
        n->npairs = 1 + (int)gen_below(&rng, 2);
        n->attr[0] = (int)gen_below(&rng, NATTR);
        n->attr[1] = (n->attr[0] + 1 + (int)gen_below(&rng, NATTR - 1)) % NATTR;
        for (int i = 0; i < n->npairs; i++)
            n->val[i] = k == RC_FILTER_EXACT ? pick_value(n->attr[i], false)
                                             : pick_piece(n->attr[i], k == RC_FILTER_PREFIX);
        break;
    case RC_FILTER_ALL:
    case RC_FILTER_ANY:
        n->nkids = 1 + (int)gen_below(&rng, 3);
        for (int i = 0; i < n->nkids; i++)
            n->kids[i] = gen_node(depth + 1);
        break;
    case RC_FILTER_NOT:
        n->nkids = 1;
        n->kids[0] = gen_node(depth + 1);
        break;
    default:
        n->cesql = (int)gen_below(&rng, NCESQL);
        break;
    }
    return n;
}

/* Often an exact type test (or an any of them) at the top, so the index has work. */
static tnode_t *gen_type_key(void)
{
    tnode_t *n = calloc(1, sizeof(*n));
    ASSERT(n != NULL);
    if (gen_below(&rng, 3) != 0) {
        *n =
            (tnode_t){.kind = RC_FILTER_EXACT, .npairs = 1, .attr = {0}, .val = {pick_value(0, 0)}};
        return n;
    }
    n->kind = RC_FILTER_ANY;
    n->nkids = 1 + (int)gen_below(&rng, 3);
    for (int i = 0; i < n->nkids; i++) {
        tnode_t *c = calloc(1, sizeof(*c));
        ASSERT(c != NULL);
        int attr = gen_below(&rng, 4) == 0 ? 3 : 0; /* sometimes mixed attributes: not a key */
        *c = (tnode_t){
            .kind = RC_FILTER_EXACT, .npairs = 1, .attr = {attr}, .val = {pick_value(attr, false)}};
        n->kids[i] = c;
    }
    return n;
}

static void free_node(tnode_t *n)
{
    for (int i = 0; i < n->nkids; i++)
        free_node(n->kids[i]);
    free(n);
}

static bool naive_node(const tnode_t *n, const tevent_t *e)
{
    switch (n->kind) {
    case RC_FILTER_EXACT:
    case RC_FILTER_PREFIX:
    case RC_FILTER_SUFFIX:
        for (int i = 0; i < n->npairs; i++) {
            const char *v = e->v[n->attr[i]], *w = n->val[i];
            if (v == NULL)
                return false;
            size_t lv = strlen(v), lw = strlen(w);
            bool ok = n->kind == RC_FILTER_EXACT    ? strcmp(v, w) == 0
                      : n->kind == RC_FILTER_PREFIX ? lv >= lw && strncmp(v, w, lw) == 0
                                                    : lv >= lw && strcmp(v + lv - lw, w) == 0;
            if (!ok)
                return false;
        }
        return true;
    case RC_FILTER_ALL:
        for (int i = 0; i < n->nkids; i++)
            if (!naive_node(n->kids[i], e))
                return false;
        return true;
    case RC_FILTER_ANY:
        for (int i = 0; i < n->nkids; i++)
            if (naive_node(n->kids[i], e))
                return true;
        return false;
    case RC_FILTER_NOT:
        return !naive_node(n->kids[0], e);
    default: {
        const char *v = e->v[cesqls[n->cesql].attr];
        switch (n->cesql) {
        case 0:
            return v != NULL && strcmp(v, "a") == 0;
        case 1:
            return v != NULL;
        case 2:
            return v != NULL && atoi(v) > 1;
        case 3:
            return v != NULL && strncmp(v, "eu", 2) == 0;
        default:
            return v != NULL && strcmp(v, "true") == 0;
        }
    }
    }
}

static bool naive_trigger(const ttrig_t *t, const tevent_t *e)
{
    if (t->nf > 0) {
        for (int i = 0; i < t->nf; i++)
            if (!naive_node(t->f[i], e))
                return false;
        return true;
    }
    for (int i = 0; i < t->nattrs; i++) {
        const char *v = e->v[t->attr[i]];
        if (v == NULL || (*t->aval[i] ? strcmp(v, t->aval[i]) != 0 : *v == '\0'))
            return false;
    }
    return true;
}

static cJSON *node_json(const tnode_t *n)
{
    cJSON *o = cJSON_CreateObject(), *v;
    const char *d = rc_filter_dialect_name((rc_filter_dialect_t)n->kind);
    switch (n->kind) {
    case RC_FILTER_EXACT:
    case RC_FILTER_PREFIX:
    case RC_FILTER_SUFFIX:
        v = cJSON_AddObjectToObject(o, d);
        for (int i = 0; i < n->npairs; i++)
            cJSON_AddStringToObject(v, anames[n->attr[i]], n->val[i]);
        break;
    case RC_FILTER_ALL:
    case RC_FILTER_ANY:
        v = cJSON_AddArrayToObject(o, d);
        for (int i = 0; i < n->nkids; i++)
            cJSON_AddItemToArray(v, node_json(n->kids[i]));
        break;
    case RC_FILTER_NOT:
        cJSON_AddItemToObject(o, d, node_json(n->kids[0]));
        break;
    default:
        cJSON_AddStringToObject(o, d, cesqls[n->cesql].expr);
        break;
    }
    return o;
}

static char *trigger_json(const ttrig_t *t)
{
    cJSON *root = cJSON_CreateObject();
    if (t->nattrs > 0) {
        cJSON *a = cJSON_AddObjectToObject(cJSON_AddObjectToObject(root, "filter"), "attributes");
        for (int i = 0; i < t->nattrs; i++)
            cJSON_AddStringToObject(a, anames[t->attr[i]], t->aval[i]);
    }
    if (t->nf > 0) {
        cJSON *l = cJSON_AddArrayToObject(root, "filters");
        for (int i = 0; i < t->nf; i++)
            cJSON_AddItemToArray(l, node_json(t->f[i]));
    }
    char *s = cJSON_PrintUnformatted(root);
    ASSERT(s != NULL);
    cJSON_Delete(root);
    return s;
}

static void gen_trigger(ttrig_t *t)
{
    memset(t, 0, sizeof(*t));
    uint32_t mode = gen_below(&rng, 8);
    if (mode == 0)
        return; /* no filter */
    if (mode <= 3 || mode == 7) {
        /* attributes (with mode 7 also filters, which override them) */
        t->nattrs = 1 + (int)gen_below(&rng, 2);
        t->attr[0] = gen_below(&rng, 2) ? 0 : (int)gen_below(&rng, NATTR);
        t->attr[1] = (t->attr[0] + 1 + (int)gen_below(&rng, NATTR - 1)) % NATTR;
        for (int i = 0; i < t->nattrs; i++)
            t->aval[i] = gen_below(&rng, 5) == 0 ? "" : pick_value(t->attr[i], false);
        if (mode != 7)
            return;
    }
    t->nf = 1 + (int)gen_below(&rng, 3);
    for (int i = 0; i < t->nf; i++)
        t->f[i] = i == 0 && gen_below(&rng, 2) ? gen_type_key() : gen_node(1);
}

static void test_property(void)
{
    enum { ROUNDS = 400, EVENTS = 60, MAXT = 48 };
    uint64_t checked = 0, matched = 0, indexed = 0;
    for (int round = 0; round < ROUNDS; round++) {
        uint32_t nt = 1 + gen_below(&rng, MAXT);
        ttrig_t trig[MAXT];
        rc_filter_t *f[MAXT];
        for (uint32_t i = 0; i < nt; i++) {
            gen_trigger(&trig[i]);
            char *json = trigger_json(&trig[i]);
            f[i] = fu_must(json);
            free(json);
        }
        rc_route_t *r[2];
        for (int p = 0; p < 2; p++)
            ASSERT_EQ(rc_route_compile((const rc_filter_t *const *)f, nt, p ? RC_ROUTE_NO_INDEX : 0,
                                       &r[p]),
                      0);
        rc_route_stats_t st;
        rc_route_stats(r[0], &st);
        indexed += st.indexed;
        for (int k = 0; k < EVENTS; k++) {
            tevent_t e;
            char spec[512];
            size_t o = 0;
            for (int a = 0; a < NATTR; a++) {
                e.v[a] = gen_below(&rng, 4) == 0 ? NULL : pick_value(a, a == 2 || a == 6);
                if (e.v[a] != NULL)
                    o += (size_t)snprintf(spec + o, sizeof(spec) - o, "%s%s=%s;", anames[a],
                                          atypes[a], e.v[a]);
            }
            spec[o] = '\0';
            rc_record_view_t view;
            fu_record(spec, recbuf, sizeof(recbuf), &view);
            uint32_t want[MAXT], nwant = 0, out[2][MAXT];
            for (uint32_t i = 0; i < nt; i++)
                if (naive_trigger(&trig[i], &e))
                    want[nwant++] = i;
            for (int p = 0; p < 2; p++) {
                int got = rc_route_match(r[p], &view, out[p], nt);
                bool same = got == (int)nwant;
                for (uint32_t i = 0; same && i < nwant; i++)
                    same = out[p][i] == want[i];
                if (!same) {
                    fprintf(stderr, "round %d event {%s}, %s program: got", round, spec,
                            p ? "unindexed" : "indexed");
                    for (int i = 0; i < got; i++)
                        fprintf(stderr, " %u", out[p][i]);
                    fprintf(stderr, "; naive:");
                    for (uint32_t i = 0; i < nwant; i++)
                        fprintf(stderr, " %u", want[i]);
                    fprintf(stderr, "\n");
                    for (uint32_t i = 0; i < nt; i++) {
                        char *json = trigger_json(&trig[i]);
                        fprintf(stderr, "  trigger %u: %s\n", i, json);
                        free(json);
                    }
                    RC_TEST_FAIL("routing disagrees with the naive evaluator");
                }
            }
            checked += nt;
            matched += nwant;
        }
        for (int p = 0; p < 2; p++)
            rc_route_destroy(r[p]);
        for (uint32_t i = 0; i < nt; i++) {
            rc_filter_destroy(f[i]);
            for (int j = 0; j < trig[i].nf; j++)
                free_node(trig[i].f[j]);
        }
    }
    /* The generator must exercise both outcomes and the index. */
    ASSERT_GT(matched, checked / 20);
    ASSERT_LT(matched, checked - checked / 20);
    ASSERT_GT(indexed, ROUNDS);
    printf("property: %llu trigger evaluations, %llu matches, %llu indexed triggers\n",
           (unsigned long long)checked, (unsigned long long)matched, (unsigned long long)indexed);
}

/* ---- concurrency --------------------------------------------------------------------------- */

typedef struct {
    const rc_route_t *r;
    const rc_record_view_t *view;
    int iters;
    int matched;
} worker_t;

static void *route_worker(void *arg)
{
    worker_t *w = arg;
    uint32_t out[4];
    for (int i = 0; i < w->iters; i++)
        w->matched += rc_route_match(w->r, w->view, out, 4);
    return NULL;
}

static void test_threads(void)
{
    rc_filter_t *f[2] = {fu_must(CESQL("prio > 3")), fu_must(EXACT("type", "t"))};
    rc_route_t *r;
    ASSERT_EQ(rc_route_compile((const rc_filter_t *const *)f, 2, 0, &r), 0);
    static _Alignas(8) uint8_t buf[512];
    rc_record_view_t view;
    fu_record("type=t;prio=x", buf, sizeof(buf), &view);
    enum { THREADS = 4, ITERS = 20000 };
    pthread_t th[THREADS];
    worker_t w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){r, &view, ITERS, 0};
        ASSERT_EQ(pthread_create(&th[i], NULL, route_worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        ASSERT_EQ(pthread_join(th[i], NULL), 0);
        ASSERT_EQ(w[i].matched, ITERS);
    }
    ASSERT_U64_EQ(rc_route_cesql_errors(r, 0), (uint64_t)THREADS * ITERS);
    ASSERT_U64_EQ(rc_route_cesql_errors(r, 1), 0);
    rc_route_destroy(r);
    rc_filter_destroy(f[0]);
    rc_filter_destroy(f[1]);
}

int main(void)
{
    test_dialects();
    test_cesql();
    test_many();
    test_scale();
    test_property();
    test_threads();
    printf("test_route: ok\n");
    return 0;
}
