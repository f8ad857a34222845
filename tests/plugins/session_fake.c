/* tests/plugins/session_fake.c — a session store that remembers nothing. */
#include "fake_common.h"

static bb_status c_create(const bb_host_api *api, bb_host *host, const bb_cfg *node, bb_session_store **out, bb_error *err)
{
    return fake_create_common(api, host, node, "fake", (fake_inst **)(void *)out, err);
}
static void c_destroy(bb_session_store *self) { free(self); }
static bb_status c_health(bb_session_store *s, const bb_call *c, char *d, size_t l, bb_error *e) { return fake_health((fake_inst *)(void *)s, c, d, l, e); }
static bb_status c_put(bb_session_store *s, const bb_call *c, const uint8_t h[32], const void *b, size_t n, int64_t x, bb_error *e) { (void)s; (void)c; (void)h; (void)b; (void)n; (void)x; (void)e; return BB_OK; }
static bb_status c_get(bb_session_store *s, const bb_call *c, const uint8_t h[32], void **b, size_t *n, bb_error *e) { (void)s; (void)c; (void)h; (void)b; (void)n; return bb_fail(e, BB_NOT_FOUND, NULL, "forgotten"); }
static bb_status c_touch(bb_session_store *s, const bb_call *c, const uint8_t h[32], int64_t x, bb_error *e) { (void)s; (void)c; (void)h; (void)x; return bb_fail(e, BB_NOT_FOUND, NULL, "forgotten"); }
static bb_status c_remove(bb_session_store *s, const bb_call *c, const uint8_t h[32], bb_error *e) { (void)s; (void)c; (void)h; (void)e; return BB_OK; }
static bb_status c_count(bb_session_store *s, const bb_call *c, int64_t *o, bb_error *e) { (void)s; (void)c; (void)e; *o = 0; return BB_OK; }

static const bb_session_ops ops = {
    .size = sizeof(bb_session_ops), .create = c_create, .destroy = c_destroy, .health = c_health,
    .put = c_put, .get = c_get, .touch = c_touch, .remove = c_remove, .hit = NULL, .count = c_count,
};

static const bb_plugin_descriptor desc = {
    .magic = BB_PLUGIN_MAGIC, .abi_major = BB_ABI_MAJOR, .abi_minor = BB_ABI_MINOR, .size = sizeof(bb_plugin_descriptor),
    .kind = BB_KIND_SESSION, .name = "fake", .version = "test", .description = "test-only session store",
    .ops = &ops, .config_keys = fake_keys, .n_config_keys = sizeof fake_keys / sizeof fake_keys[0],
};

BB_PLUGIN_DEFINE(desc)
