/* Unit test of core/config_layers.c: documents and their identities (rc_config_split,
 * rc_config_doc_same), a config made of several sources (a later source's document replaces an
 * earlier one's in its place, messages and notes name the source and its own line, a
 * RingcastConfig only in the first), the state file next to the config file
 * (rc_config_load_with_state), spec.admin as a mapping, and rc_http_addr_is_loopback's
 * neighbour in net/ is tested in the loop tests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/config.h"
#include "core/errors.h"
#include "tests/test.h"

static char err[RC_CONFIG_ERR_MAX];

#define TRIGGER(name, uri)                                                                         \
    "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: " name "\n"            \
    "spec:\n  broker: default\n  subscriber: {uri: \"" uri "\"}\n"

static const char config[] = "apiVersion: ringcast.dev/v1alpha1\n" /* 1 */
                             "kind: RingcastConfig\n"
                             "spec:\n"
                             "  admin:\n"
                             "    listen: 127.0.0.1:9001\n" /* 5 */
                             "    token: abcdefghijklmnop-123\n"
                             "---\n"      /* 7 */
    TRIGGER("a", "http://127.0.0.1:9/a")  /* 8..14 */
    "---\n"                               /* 15 */
    TRIGGER("b", "http://127.0.0.1:9/b"); /* 16.. */

static void test_split(void)
{
    rc_config_doc_t *d = NULL;
    size_t n = 0;
    ASSERT_EQ(rc_config_split("c.yaml", config, strlen(config), &d, &n, err, sizeof(err)), 0);
    ASSERT_EQ(n, 3);
    ASSERT_STR_EQ(d[0].kind, "RingcastConfig");
    ASSERT_STR_EQ(d[1].kind, "Trigger");
    ASSERT_STR_EQ(d[1].group, "eventing.knative.dev");
    ASSERT_STR_EQ(d[1].ns, "default");
    ASSERT_STR_EQ(d[1].name, "a");
    ASSERT_EQ(d[1].line, 8);
    ASSERT_EQ(d[2].line, 16);
    ASSERT(!rc_config_doc_same(&d[1], &d[2]));
    ASSERT(strncmp(config + d[1].off, "apiVersion: eventing", 20) == 0);

    /* the same content written differently is the same canonical form */
    const char *flow = "# c\n{apiVersion: eventing.knative.dev/v1, kind: Trigger, metadata: "
                       "{name: a}, spec: {broker: default, subscriber: {uri: "
                       "'http://127.0.0.1:9/a'}}}\n---\n---\n";
    rc_config_doc_t *f = NULL;
    size_t fn = 0;
    ASSERT_EQ(rc_config_split("f.yaml", flow, strlen(flow), &f, &fn, err, sizeof(err)), 0);
    ASSERT_EQ(fn, 1); /* empty documents left out */
    ASSERT(rc_config_doc_same(&f[0], &d[1]));
    ASSERT_STR_EQ(f[0].canon, d[1].canon);
    ASSERT_EQ(f[0].line, 2);
    rc_config_docs_free(f, fn);

    /* the Dapr Subscription's two versions are one kind; a core v1 kind has no group */
    const char *subs = "apiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata: {name: s}\n"
                       "---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\n"
                       "metadata: {name: s}\n---\napiVersion: v1\nkind: Service\n"
                       "metadata: {name: s, namespace: team}\n";
    ASSERT_EQ(rc_config_split("s.yaml", subs, strlen(subs), &f, &fn, err, sizeof(err)), 0);
    ASSERT_EQ(fn, 3);
    ASSERT(rc_config_doc_same(&f[0], &f[1]));
    ASSERT_STR_EQ(f[2].group, "");
    ASSERT_STR_EQ(f[2].ns, "team");
    ASSERT(!rc_config_doc_same(&f[1], &f[2]));
    rc_config_docs_free(f, fn);

    /* aliases expand in the canonical form: a billion laughs is refused, not expanded */
    const char *laughs =
        "a: &a [\"0123456789012345678901234567890123456789\"]\n"
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n";
    ASSERT_EQ(rc_config_split("l.yaml", laughs, strlen(laughs), &f, &fn, err, sizeof(err)),
              RC_ECONFIG);
    ASSERT_STR_EQ(err, "l.yaml:1: the document is larger than 4194304 bytes once its aliases are "
                       "expanded");

    const char *bad = "kind: Trigger\n  x: [\n";
    ASSERT_EQ(rc_config_split("b.yaml", bad, strlen(bad), &f, &fn, err, sizeof(err)), RC_ECONFIG);
    ASSERT(strncmp(err, "b.yaml:2: YAML syntax error", 27) == 0);
    rc_config_docs_free(d, n);
}

static void test_sources(void)
{
    const char *state = "# applied\n" TRIGGER("a", "http://127.0.0.1:9/applied") /* 2.. */
        "---\n" TRIGGER("c", "http://127.0.0.1:9/c");                            /* 10.. */
    rc_config_source_t src[2] = {{"c.yaml", config, strlen(config)},
                                 {"s.yaml", state, strlen(state)}};
    rc_config_t c;
    ASSERT_EQ(rc_config_load_sources(&c, src, 2, err, sizeof(err)), 0);
    ASSERT_EQ(c.trigger_count, 3);
    /* replaced in its place: a (the applied version), b, then c */
    ASSERT_STR_EQ(c.triggers[0].name, "a");
    ASSERT_STR_EQ(c.triggers[0].subscriber_uri, "http://127.0.0.1:9/applied");
    ASSERT_STR_EQ(c.triggers[1].name, "b");
    ASSERT_STR_EQ(c.triggers[2].name, "c");
    ASSERT_STR_EQ(c.source, "c.yaml");
    ASSERT_STR_EQ(c.admin_token, "abcdefghijklmnop-123");
    ASSERT_EQ(c.admin_port, 9001);
    ASSERT_EQ(c.note_count, 1);
    ASSERT_STR_EQ(c.notes[0].text,
                  "s.yaml:2: Trigger default/a replaces the one at c.yaml:8 (ringcast apply)");
    ASSERT_STR_EQ(c.notes[0].text + c.notes[0].msg,
                  "Trigger default/a replaces the one at c.yaml:8 (ringcast apply)");
    rc_config_close(&c);

    /* an error in the second source names it and its own line */
    const char *bad = "\n\n" TRIGGER("d", "http://127.0.0.1:9/d") "  filter: {attributes: 3}\n";
    src[1] = (rc_config_source_t){"s.yaml", bad, strlen(bad)};
    ASSERT_EQ(rc_config_load_sources(&c, src, 2, err, sizeof(err)), RC_ECONFIG);
    ASSERT(strncmp(err, "s.yaml:10: ", 11) == 0);

    /* a document twice in one source: both lines in that source */
    const char *twice = TRIGGER("d", "http://127.0.0.1:9/d") "---\n" TRIGGER("d", "http://x:1/");
    src[1] = (rc_config_source_t){"s.yaml", twice, strlen(twice)};
    ASSERT_EQ(rc_config_load_sources(&c, src, 2, err, sizeof(err)), RC_ECONFIG);
    ASSERT_STR_EQ(err, "s.yaml:9: Trigger default/d is defined twice (first at line 1)");

    /* a RingcastConfig only in the config file */
    const char *settings = "\napiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\n";
    src[1] = (rc_config_source_t){"s.yaml", settings, strlen(settings)};
    ASSERT_EQ(rc_config_load_sources(&c, src, 2, err, sizeof(err)), RC_ECONFIG);
    ASSERT_STR_EQ(err, "s.yaml:2: a RingcastConfig can only be in the config file (c.yaml): its "
                       "settings (listeners, ring size, limits) take a restart");

    /* three sources: the last one wins, in the first one's place */
    const char *third = TRIGGER("a", "http://127.0.0.1:9/third");
    const char *second = TRIGGER("a", "http://127.0.0.1:9/second");
    rc_config_source_t three[3] = {{"c.yaml", config, strlen(config)},
                                   {"s.yaml", second, strlen(second)},
                                   {"(request)", third, strlen(third)}};
    ASSERT_EQ(rc_config_load_sources(&c, three, 3, err, sizeof(err)), 0);
    ASSERT_EQ(c.trigger_count, 2);
    ASSERT_STR_EQ(c.triggers[0].subscriber_uri, "http://127.0.0.1:9/third");
    rc_config_close(&c);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void test_state_file(void)
{
    char dir[] = "/tmp/rc-layers-XXXXXX", cfg[128], st[128], other[128];
    ASSERT(mkdtemp(dir) != NULL);
    snprintf(cfg, sizeof(cfg), "%s/ringcast.yaml", dir);
    snprintf(st, sizeof(st), "%s/ringcast.state.yaml", dir);
    snprintf(other, sizeof(other), "%s/other.yaml", dir);
    write_file(cfg, config);
    rc_config_t c;
    ASSERT_EQ(rc_config_load_with_state(&c, cfg, err, sizeof(err)), 0);
    ASSERT_STR_EQ(c.state_file, st); /* next to the config file, .yaml -> .state.yaml */
    ASSERT_EQ(c.trigger_count, 2);   /* no state file yet */
    rc_config_close(&c);
    write_file(st, TRIGGER("z", "http://127.0.0.1:9/z"));
    ASSERT_EQ(rc_config_load_with_state(&c, cfg, err, sizeof(err)), 0);
    ASSERT_EQ(c.trigger_count, 3);
    ASSERT_STR_EQ(c.triggers[2].name, "z");
    ASSERT_STR_EQ(c.state_file, st);
    rc_config_close(&c);
    /* spec.admin.stateFile, relative to the config file's directory */
    write_file(cfg, "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                    "  admin: {stateFile: other.yaml}\n");
    ASSERT_EQ(rc_config_load_with_state(&c, cfg, err, sizeof(err)), 0);
    ASSERT_STR_EQ(c.state_file, other);
    ASSERT_EQ(c.trigger_count, 0);
    rc_config_close(&c);
    /* a state file that does not load fails the load, naming it */
    write_file(other, "kind: Trigger\n");
    ASSERT_EQ(rc_config_load_with_state(&c, cfg, err, sizeof(err)), RC_ECONFIG);
    ASSERT(strstr(err, "other.yaml:1: Trigger has no 'apiVersion'") != NULL);
    unlink(cfg);
    unlink(st);
    unlink(other);
    rmdir(dir);
}

static void expect_error(const char *yaml, const char *message)
{
    rc_config_t c;
    ASSERT_EQ(rc_config_load_string(&c, "t.yaml", yaml, strlen(yaml), err, sizeof(err)),
              RC_ECONFIG);
    ASSERT_STR_EQ(err, message);
}

static void test_admin_settings(void)
{
    expect_error("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                 "  admin: {token: short}\n",
                 "t.yaml:4: 'spec.admin.token' must be 16-256 characters of [A-Za-z0-9-._~+/=] "
                 "(a bearer token; `openssl rand -hex 32` makes one)");
    expect_error("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                 "  admin: {token: \"abcdefghijklmnop qrst\"}\n",
                 "t.yaml:4: 'spec.admin.token' must be 16-256 characters of [A-Za-z0-9-._~+/=] "
                 "(a bearer token; `openssl rand -hex 32` makes one)");
    expect_error("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                 "  admin: {listen: nowhere}\n",
                 "t.yaml:4: 'spec.admin.listen' must be IP:PORT such as 127.0.0.1:8080 or "
                 "[::1]:8080, not 'nowhere'");
    expect_error("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                 "  admin: {tokenFile: x}\n",
                 "t.yaml:4: unknown field 'spec.admin.tokenFile'");
    rc_config_t c;
    const char *ok = "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                     "  admin: 127.0.0.1:7000\n";
    ASSERT_EQ(rc_config_load_string(&c, "t.yaml", ok, strlen(ok), err, sizeof(err)), 0);
    ASSERT_EQ(c.admin_port, 7000);
    ASSERT(c.admin_token == NULL);
    ASSERT(c.state_file == NULL); /* not from a file */
    rc_config_close(&c);
    ASSERT_EQ(rc_config_kind_known("eventing.knative.dev/v1", "Trigger"), 1);
    ASSERT_EQ(rc_config_kind_known("apps/v1", "Deployment"), 2);
    ASSERT_EQ(rc_config_kind_known("v1", "Gadget"), 0);
}

int main(void)
{
    test_split();
    test_sources();
    test_state_file();
    test_admin_settings();
    printf("ok\n");
    return 0;
}
