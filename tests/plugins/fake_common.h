/*
 * tests/plugins/fake_common.h — building blocks for the test-only plugins
 * that prove the loader and the serve lifecycle.  Never installed.
 */
#ifndef BB_TEST_FAKE_COMMON_H
#define BB_TEST_FAKE_COMMON_H

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <botboard/session.h>
#include <botboard/storage.h>
#include <botboard/upstream.h>

/* One instance: its own state, so two instances of a plugin never share. */
typedef struct fake_inst {
    const bb_host_api *api;
    bb_host           *host;
    int64_t            health_delay_ms;
    bool               health_fail;
    int                id;
} fake_inst;

static inline bb_status fake_create_common(const bb_host_api *api, bb_host *host, const bb_cfg *node,
                                           const char *name, fake_inst **out, bb_error *err)
{
    char path[64];
    fake_inst *f = calloc(1, sizeof *f);
    if (!f) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    f->api = api;
    f->host = host;
    snprintf(path, sizeof path, "%s.health_delay_ms", name);
    if (api->cfg_int(node, path, &f->health_delay_ms, err) != BB_OK) { free(f); return err->code; }
    snprintf(path, sizeof path, "%s.health_fail", name);
    if (api->cfg_bool(node, path, &f->health_fail, err) != BB_OK) { free(f); return err->code; }
    api->random(&f->id, sizeof f->id);
    *out = f;
    return BB_OK;
}

static inline bb_status fake_health(fake_inst *f, const bb_call *call, char *detail, size_t len, bb_error *err)
{
    (void)call;
    if (f->health_delay_ms > 0) {
        struct timespec ts = { f->health_delay_ms / 1000, (f->health_delay_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);   /* the point of this plugin: a slow dependency */
    }
    snprintf(detail, len, "fake instance %d", f->id);
    if (f->health_fail) return bb_fail(err, BB_UNAVAILABLE, NULL, "fake dependency is down");
    return BB_OK;
}

static const bb_config_key fake_keys[] = {
    { "health_delay_ms", BB_CFG_INT, "0", 0, 60000, NULL, 0, "Test only: health() sleeps this long" },
    { "health_fail", BB_CFG_BOOL, "false", 1, 0, NULL, 0, "Test only: health() reports the dependency down" },
};

#endif
