/* tests/plugins/upstream_fake.c — an upstream with no posts. */
#include "fake_common.h"

static bb_status u_create(const bb_host_api *api, bb_host *host, const bb_cfg *node, bb_upstream **out, bb_error *err)
{
    return fake_create_common(api, host, node, "fake", (fake_inst **)(void *)out, err);
}
static void u_destroy(bb_upstream *self) { free(self); }
static bb_status u_health(bb_upstream *s, const bb_call *c, char *d, size_t l, bb_error *e) { return fake_health((fake_inst *)(void *)s, c, d, l, e); }
static bb_status u_list(bb_upstream *s, const bb_call *c, const bb_post_query *q, bb_post_page *o, bb_read_meta *m, bb_error *e) { (void)s; (void)c; (void)q; (void)e; memset(o, 0, sizeof *o); memset(m, 0, sizeof *m); return BB_OK; }
static bb_status u_get(bb_upstream *s, const bb_call *c, const char *t, const char *id, bb_post *o, bb_read_meta *m, bb_error *e) { (void)s; (void)c; (void)t; (void)id; (void)o; (void)m; return bb_fail(e, BB_NOT_FOUND, NULL, "no posts here"); }
static bb_status u_create_post(bb_upstream *s, const bb_call *c, const char *t, const bb_new_post *in, bb_post *o, bb_error *e) { (void)s; (void)c; (void)t; (void)in; (void)o; return bb_fail(e, BB_UNAVAILABLE, NULL, "read-only fake"); }
static bb_status u_delete(bb_upstream *s, const bb_call *c, const char *t, const char *id, bb_error *e) { (void)s; (void)c; (void)t; (void)id; return bb_fail(e, BB_NOT_FOUND, NULL, "no posts here"); }
static bb_status u_distinct(bb_upstream *s, const bb_call *c, const char *t, bb_distinct_field f, const char *p, int l, char ***o, size_t *n, bb_error *e) { (void)s; (void)c; (void)t; (void)f; (void)p; (void)l; (void)e; *o = NULL; *n = 0; return BB_OK; }

static const bb_upstream_ops ops = {
    .size = sizeof(bb_upstream_ops), .create = u_create, .destroy = u_destroy, .health = u_health,
    .list_posts = u_list, .get_post = u_get, .create_post = u_create_post, .delete_post = u_delete, .distinct = u_distinct,
};

static const bb_plugin_descriptor desc = {
    .magic = BB_PLUGIN_MAGIC, .abi_major = BB_ABI_MAJOR, .abi_minor = BB_ABI_MINOR, .size = sizeof(bb_plugin_descriptor),
    .kind = BB_KIND_UPSTREAM, .name = "fake", .version = "test", .description = "test-only upstream",
    .ops = &ops, .config_keys = fake_keys, .n_config_keys = sizeof fake_keys / sizeof fake_keys[0],
};

BB_PLUGIN_DEFINE(desc)
