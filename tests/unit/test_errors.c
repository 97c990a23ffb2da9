#include "core/errors.h"
#include "tests/test.h"

#include <errno.h>

int main(void)
{
    ASSERT_STR_EQ(rc_strerror(RC_ERING_FULL), "ring is full (a lossless reader has not consumed)");
    ASSERT_STR_EQ(rc_err_name(RC_ERING_FULL), "RC_ERING_FULL");
    ASSERT_STR_EQ(rc_strerror(-ENOENT), "No such file or directory");
    ASSERT_STR_EQ(rc_err_name(-ENOENT), "ENOENT");
    ASSERT_STR_EQ(rc_strerror(0), "success");
    ASSERT_STR_EQ(rc_err_name(12345), "UNKNOWN");
    ASSERT_STR_EQ(rc_strerror(-99999), "unknown error");
    return 0;
}
