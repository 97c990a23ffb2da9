// A C++ consumer of the installed SDK, built by tests/sdk/test_sdk_install.sh with nothing but
// `pkg-config --cflags --libs ringcast`: it creates a ring, writes one event record the way the
// broker does (rc_record_encode into claimed space), and reads it back as a lossless reader and
// as a consumer group member, decoding it with the public decoder. Exit 0 when all checks pass.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <unistd.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/record.h"
#include "shm/group.h"
#include "shm/proc.h"
#include "shm/reader.h"
#include "shm/ring.h"

static int failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#define CHECK_RC(expr, want)                                                                       \
    do {                                                                                           \
        int got_ = (expr);                                                                         \
        if (got_ != (want)) {                                                                      \
            std::fprintf(stderr, "%s:%d: %s = %d (%s), want %d\n", __FILE__, __LINE__, #expr,      \
                         got_, rc_strerror(got_), (int)(want));                                    \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static std::string str(rc_str_t s)
{
    return s.ptr != nullptr ? std::string(s.ptr, s.len) : std::string("(absent)");
}

// The checks a local consumer makes on an event it read from the ring.
static void check_event(const rc_ring_view_t &v)
{
    CHECK(v.type == RC_EVENT_RECORD_TYPE);
    rc_record_view_t rec;
    CHECK_RC(rc_record_decode(v.data, v.len, &rec), 0);
    if (failures != 0)
        return;
    CHECK(str(rc_record_attr(&rec, RC_CE_ATTR_TYPE)) == "sdk.test");
    CHECK(str(rc_record_attr(&rec, RC_CE_ATTR_ID)) == "id-1");
    CHECK(str(rc_record_attr(&rec, RC_CE_ATTR_SUBJECT)) == "(absent)");
    CHECK(str(rc_record_data(&rec)) == "{\"n\": 1}");
    rc_ce_value_t val;
    CHECK_RC(rc_record_get(&rec, rc_str("traceid"), &val), 0);
    CHECK(str(val.value) == "abc" && val.type == RC_CE_STRING);
    CHECK_RC(rc_record_get(&rec, rc_str("missing"), &val), -ENOENT);
    CHECK(rc_record_ext_count(&rec) == 1);
    CHECK(str(rc_record_ext_at(&rec, 0).name) == "traceid");
    // A torn or foreign record is refused, never read past its end.
    CHECK_RC(rc_record_decode(v.data, 40, &rec), RC_EBAD_RECORD);
}

int main()
{
    char name[64];
    std::snprintf(name, sizeof(name), "rcsdk%d", (int)getpid());
    rc_ring_config_t cfg;
    rc_ring_config_init(&cfg);
    cfg.capacity = 1u << 20;
    cfg.flags = RC_RING_F_REPLACE;
    rc_ring_t *ring = nullptr;
    rc_reader_t *reader = nullptr;
    rc_group_member_t *member = nullptr;
    char err[256] = "";
    int rc = rc_ring_create(name, &cfg, &ring, err, sizeof(err));
    if (rc != 0) {
        std::fprintf(stderr, "rc_ring_create: %s (%s)\n", rc_strerror(rc), err);
        return 1;
    }
    CHECK(rc_proc_alive(getpid(), rc_proc_start_time(getpid())) == 1);

    // Reader and group first: a lossless reader starting at "oldest" starts at the head.
    rc_reader_opts_t ro;
    std::memset(&ro, 0, sizeof(ro));
    ro.mode = RC_READER_LOSSLESS;
    ro.start = RC_START_OLDEST;
    ro.name = "sdk-test";
    CHECK_RC(rc_reader_open(ring, &ro, &reader), 0);
    rc_group_opts_t go;
    std::memset(&go, 0, sizeof(go));
    go.start = RC_START_OLDEST;
    CHECK_RC(rc_group_join(ring, "sdk", &go, &member), 0);
    if (failures != 0)
        goto out;

    {
        rc_ce_ext_t ext[4];
        rc_event_t ev;
        rc_event_init(&ev, ext, 4);
        ev.specversion = rc_str("1.0");
        ev.id = rc_str("id-1");
        ev.source = rc_str("/sdk");
        ev.type = rc_str("sdk.test");
        ev.datacontenttype = rc_str("application/json");
        ev.data = rc_str("{\"n\": 1}");
        CHECK_RC(rc_event_set_ext(&ev, nullptr, rc_str("traceid"), rc_str("abc"), RC_CE_STRING), 0);
        size_t size = rc_record_size(&ev), len = 0;
        CHECK(size > sizeof(rc_record_hdr_t) && size % 8 == 0);
        rc_ring_claim_t claim;
        CHECK_RC(rc_ring_claim(ring, (uint32_t)size, RC_EVENT_RECORD_TYPE, 0, &claim), 0);
        if (failures != 0)
            goto out;
        CHECK_RC(rc_record_encode(&ev, claim.data, claim.len, &len), 0);
        CHECK(len == size);
        CHECK_RC(rc_ring_commit(&claim), 0);
    }

    {
        rc_ring_view_t v;
        uint64_t t0 = rc_now_ns();
        CHECK_RC(rc_reader_wait(reader, &v, 2000000000LL), 0);
        CHECK(rc_now_ns() - t0 < 2000000000ull);
        if (failures == 0)
            check_event(v);
        CHECK_RC(rc_reader_poll(reader, &v), RC_ERING_EMPTY);
        CHECK_RC(rc_group_wait(member, &v, 2000000000LL), 0);
        if (failures == 0)
            check_event(v);
        CHECK_RC(rc_group_poll(member, &v), RC_ERING_EMPTY);
    }
    CHECK(std::strcmp(rc_strerror(RC_ERING_EMPTY), "no record available") == 0);
    CHECK(std::strcmp(rc_err_name(RC_EBAD_RECORD), "RC_EBAD_RECORD") == 0);

out:
    rc_group_leave(member);
    rc_reader_close(reader);
    rc_ring_close(ring);
    rc_ring_unlink(name);
    if (failures != 0) {
        std::fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    std::printf("ok\n");
    return 0;
}
