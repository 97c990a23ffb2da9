/* The one place where project and system error codes become HTTP statuses. */
#ifndef RC_NET_HTTP_STATUS_H
#define RC_NET_HTTP_STATUS_H

/** HTTP status for a negative return code of the ingest path: invalid event or TTL expired 400,
 *  not found 404, too large 413, unsupported media 415, ring full 429, out of memory, ring not
 *  ready or claim swept 503, everything else 500. 0 gives 202. */
int rc_http_status_for(int err);

#endif
