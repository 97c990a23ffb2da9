/* The dashboard's files compiled into the binary: the table net/dashboard/embed.cmake generates
 * from the files under net/dashboard/ at build time. */
#ifndef RC_NET_DASHBOARD_ASSETS_H
#define RC_NET_DASHBOARD_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *path;          /* "/" for index.html, "/ui/<file name>" for the others */
    const char *content_type;  /* from the extension */
    const unsigned char *data; /* `len` bytes (and a NUL after them) */
    size_t len;
    const char *etag; /* quoted: the first 16 hex digits of the file's SHA-256 */
} rc_dashboard_asset_t;

extern const rc_dashboard_asset_t rc_dashboard_assets[];
extern const size_t rc_dashboard_asset_count;

#endif
