/* Lag limits in the config: how far a trigger or a consumer group may fall behind the head of
 * its broker's ring before the policy acts (docs/config.md, "Lag limits").
 *
 *   RingcastConfig spec.lag: {limit: 50% | 8Mi, policy: dead-letter | block}
 *   Trigger metadata.annotations: ringcast.dev/lag-limit, ringcast.dev/lag-policy
 *
 * A limit is a fraction of the ring or a byte size. The ring's size may be given after the
 * limit (or in another document), so a limit in bytes is checked against it once every
 * document is in. A Trigger that gives only one of the two annotations takes the other from
 * spec.lag. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/config_internal.h"
#include "core/errors.h"

#define LIMIT_SYNTAX "a percentage of the ring such as 50% (0.1% to 100%) or a size such as 8Mi"

int rc_config_parse_lag_limit(const char *s, uint32_t *permille, uint64_t *bytes)
{
    size_t n = s ? strlen(s) : 0;
    *permille = 0;
    *bytes = 0;
    if (n == 0)
        return -EINVAL;
    if (s[n - 1] != '%') {
        int rc = rc_config_parse_size(s, bytes);
        if (rc == 0 && *bytes == 0)
            rc = -EINVAL;
        return rc;
    }
    /* Whole percent, or tenths: "50%", "12.5%". No sign, no exponent, no spaces. */
    uint64_t whole = 0, tenths = 0;
    size_t i = 0;
    for (; i < n - 1 && isdigit((unsigned char)s[i]) && whole <= 1000; i++)
        whole = whole * 10 + (uint64_t)(s[i] - '0');
    if (i == 0)
        return -EINVAL;
    if (s[i] == '.') {
        if (i + 2 != n - 1 || !isdigit((unsigned char)s[i + 1]))
            return -EINVAL;
        tenths = (uint64_t)(s[i + 1] - '0');
        i += 2;
    }
    if (i != n - 1)
        return -EINVAL;
    uint64_t pm = whole * 10 + tenths;
    if (pm == 0 || pm > 1000)
        return -EINVAL;
    *permille = (uint32_t)pm;
    return 0;
}

/* "dead-letter" or "block". */
static rc_lag_policy_t parse_policy(const char *s)
{
    if (s != NULL && strcmp(s, "dead-letter") == 0)
        return RC_LAG_DEAD_LETTER;
    if (s != NULL && strcmp(s, "block") == 0)
        return RC_LAG_BLOCK;
    return RC_LAG_INHERIT;
}

/* ---- RingcastConfig spec.lag -------------------------------------------------------------------
 */

static int settings_field(rc__config_ctx_t *x, const char *key, yaml_node_t *v, void *arg)
{
    rc_config_lag_t *l = arg;
    const char *s = rc__config_scalar(v);
    if (strcmp(key, "limit") == 0) {
        if (rc_config_parse_lag_limit(s, &l->permille, &l->bytes) != 0)
            return rc__config_fail(x, v, "'spec.lag.limit' must be %s, not '%s'", LIMIT_SYNTAX,
                                   s ? s : "(not a scalar)");
        l->line = rc__config_line(v);
        return 0;
    }
    if (strcmp(key, "policy") == 0) {
        l->policy = parse_policy(s);
        if (l->policy == RC_LAG_INHERIT)
            return rc__config_fail(x, v, "'spec.lag.policy' must be dead-letter or block, not '%s'",
                                   s ? s : "(not a scalar)");
        return 0;
    }
    return rc__config_unknown_field(x, v, "spec.lag.", key);
}

int rc__config_lag_settings(rc__config_ctx_t *x, yaml_node_t *v)
{
    return rc__config_walk_map(x, v, "spec.lag", settings_field, &x->cfg->lag);
}

/* ---- Trigger annotations -----------------------------------------------------------------------
 */

int rc__config_lag_annotation(rc__config_ctx_t *x, const char *who, const char *key, yaml_node_t *v,
                              rc_config_lag_t *l)
{
    const char *s = rc__config_scalar(v);
    if (strcmp(key, "ringcast.dev/lag-limit") == 0) {
        if (rc_config_parse_lag_limit(s, &l->permille, &l->bytes) != 0)
            return rc__config_fail(
                x, v, "%s: 'metadata.annotations.ringcast.dev/lag-limit' must be %s, not '%s'", who,
                LIMIT_SYNTAX, s ? s : "(not a scalar)");
        l->line = rc__config_line(v);
    } else if (strcmp(key, "ringcast.dev/lag-policy") == 0) {
        l->policy = parse_policy(s);
        if (l->policy == RC_LAG_INHERIT)
            return rc__config_fail(x, v,
                                   "%s: 'metadata.annotations.ringcast.dev/lag-policy' must be "
                                   "dead-letter or block, not '%s'",
                                   who, s ? s : "(not a scalar)");
    }
    return 0;
}

/* ---- after the last document --------------------------------------------------------------- */

/* A limit given in bytes must leave the check something to do: at least the smallest ring and
 * at most this one (a lagging reader can never be further behind than the ring's size). */
static int check_bytes(rc__config_ctx_t *x, const rc_config_lag_t *l, const char *what)
{
    const rc_config_t *c = x->cfg;
    if (l->bytes == 0 || (l->bytes >= RC_CONFIG_LAG_MIN_BYTES && l->bytes <= c->ring_bytes))
        return 0;
    snprintf(x->err, x->err_len,
             "%s:%d: %s is %llu bytes; it must be from %u bytes to the ring's size "
             "('spec.ring.size', %llu bytes), or a percentage",
             x->file, l->line, what, (unsigned long long)l->bytes, RC_CONFIG_LAG_MIN_BYTES,
             (unsigned long long)c->ring_bytes);
    return RC_ECONFIG;
}

int rc__config_lag_check(rc__config_ctx_t *x)
{
    const rc_config_t *c = x->cfg;
    int rc = check_bytes(x, &c->lag, "'spec.lag.limit'");
    for (size_t i = 0; rc == 0 && i < c->trigger_count; i++) {
        const rc_config_trigger_t *t = &c->triggers[i];
        char what[2 * RC_CONFIG_NAME_MAX + 80];
        snprintf(what, sizeof(what), "Trigger %s/%s: 'metadata.annotations.ringcast.dev/lag-limit'",
                 t->ns, t->name);
        rc = check_bytes(x, &t->lag, what);
    }
    return rc;
}

/* ---- resolution ---------------------------------------------------------------------------- */

rc_lag_policy_t rc_config_lag_limit(const rc_config_t *c, const rc_config_trigger_t *t,
                                    uint64_t *bytes)
{
    const rc_config_lag_t *own = t != NULL ? &t->lag : NULL;
    const rc_config_lag_t *lim =
        own != NULL && (own->permille != 0 || own->bytes != 0) ? own : &c->lag;
    rc_lag_policy_t policy =
        own != NULL && own->policy != RC_LAG_INHERIT ? own->policy : c->lag.policy;
    if (lim->bytes != 0)
        *bytes = lim->bytes;
    else
        *bytes = c->ring_bytes / 1000 * lim->permille + c->ring_bytes % 1000 * lim->permille / 1000;
    return policy == RC_LAG_INHERIT ? RC_LAG_DEAD_LETTER : policy;
}
