#include "net/http/http_status.h"

#include <errno.h>

#include "core/errors.h"

int rc_http_status_for(int err)
{
    switch (err) {
    case 0:
        return 202;
    case RC_EINVALID_EVENT:
    case RC_ETTL_EXPIRED:
    case RC_EPARSE:
        return 400;
    case RC_ENOT_FOUND:
        return 404;
    case RC_ETOO_LARGE:
    case RC_ERING_TOO_BIG:
        return 413;
    case RC_EUNSUPPORTED_MEDIA:
        return 415;
    case RC_ERING_FULL:
        return 429;
    case -ENOMEM:
    case -ENOBUFS:
    case RC_ERING_NOT_READY:
    case RC_ERING_SWEPT: /* the claim was padded over: nothing stored, the client may retry */
    case RC_ESTORE_UNAVAILABLE:
    case RC_ESTORE_UNREPLICATED:
        return 503;
    default:
        return 500;
    }
}
