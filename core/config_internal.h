/* What config.c shares with the loaders of the other kinds (config_trigger.c): the parse
 * context and the node helpers. Not a public header. */
#ifndef RC_CORE_CONFIG_INTERNAL_H
#define RC_CORE_CONFIG_INTERNAL_H

#include <stdint.h>

#include <yaml.h>

#include "core/config.h"

typedef struct {
    const char *file;
    char *err;
    size_t err_len;
    yaml_document_t *doc;
    rc_config_t *cfg;
    int settings_line; /* line of the RingcastConfig document already seen, 0 if none */
} rc__config_ctx_t;

typedef int (*rc__config_field_fn)(rc__config_ctx_t *x, const char *key, yaml_node_t *value,
                                   void *arg);

/* Writes "FILE:LINE: message" for node `n` into the context's error buffer; returns
 * RC_ECONFIG. */
int rc__config_fail(rc__config_ctx_t *x, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int rc__config_line(const yaml_node_t *n);
yaml_node_t *rc__config_node(rc__config_ctx_t *x, int index);
const char *rc__config_scalar(const yaml_node_t *n);
int rc__config_walk_map(rc__config_ctx_t *x, yaml_node_t *map, const char *what,
                        rc__config_field_fn field, void *arg);
int rc__config_find_key(rc__config_ctx_t *x, yaml_node_t *map, const char *key, yaml_node_t **out);
int rc__config_valid_dns_label(const char *s);
/* spec.delivery of a Broker or Trigger into `d` (raw, checked by the delivery policy). */
int rc__config_delivery(rc__config_ctx_t *x, yaml_node_t *v, rc_config_delivery_t *d);
void rc__config_delivery_free(rc_config_delivery_t *d);

/* config_trigger.c */
int rc__config_parse_trigger(rc__config_ctx_t *x, yaml_node_t *root);
int rc__config_parse_service(rc__config_ctx_t *x, yaml_node_t *root);
/* After the last document: resolves subscriber refs and checks brokers. */
int rc__config_resolve(rc__config_ctx_t *x);
void rc__config_trigger_free(rc_config_trigger_t *t);

#endif
