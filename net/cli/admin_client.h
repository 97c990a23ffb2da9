/* What the commands that talk to a running broker's admin API share (`get`, `describe`,
 * `apply`, `delete`): its default address and one blocking HTTP/1.1 exchange. */
#ifndef RC_NET_CLI_ADMIN_CLIENT_H
#define RC_NET_CLI_ADMIN_CLIENT_H

#include <stddef.h>

#define DEFAULT_ADMIN "127.0.0.1:8081"

/** Sends one request to the admin address "host:port" (one connection, Connection: close,
 *  connecting, sending and each read bounded by `timeout_s`): `method` `path`, with
 *  `Authorization: Bearer token` when `token` is not NULL, and body[0..len) when `body` is not
 *  NULL (Content-Type: application/yaml). Sets *status and *resp (the answer's body,
 *  NUL-terminated, malloc'd). Returns 0, or -1 with a message in `err` that says what to check
 *  when the broker cannot be reached. */
int rc__cli_admin_call(const char *admin, const char *method, const char *path, const char *token,
                       const char *body, size_t len, int timeout_s, int *status, char **resp,
                       char *err, size_t errlen);

#endif
