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

#ifdef FAKE_ABI_1_0
/* Built as a plugin of ABI 1.0 would be: the table ends before the 1.1
 * members.  They are set anyway, to calls that abort, so a host that reads
 * past the size it was given crashes the test instead of passing it. */
static bb_status u_lend(bb_upstream *s, const bb_call *c, const bb_post_query *q, const bb_post_page **p, void **l, bb_read_meta *m, bb_error *e) { (void)s; (void)c; (void)q; (void)p; (void)l; (void)m; (void)e; abort(); }
static void u_return(bb_upstream *s, void *l) { (void)s; (void)l; abort(); }
#define OPS_SIZE  offsetof(bb_upstream_ops, list_posts_lend)
#define ABI_MINOR 0
#define LENDS     .list_posts_lend = u_lend, .page_return = u_return,
#else
#define OPS_SIZE  sizeof(bb_upstream_ops)
#define ABI_MINOR BB_ABI_MINOR
#define LENDS
#endif

static const bb_upstream_ops ops = {
    .size = OPS_SIZE, .create = u_create, .destroy = u_destroy, .health = u_health,
    .list_posts = u_list, .get_post = u_get, .create_post = u_create_post, .delete_post = u_delete, .distinct = u_distinct,
    LENDS
};

static const bb_plugin_descriptor desc = {
    .magic = BB_PLUGIN_MAGIC, .abi_major = BB_ABI_MAJOR, .abi_minor = ABI_MINOR, .size = sizeof(bb_plugin_descriptor),
    .kind = BB_KIND_UPSTREAM, .name = "fake", .version = "test", .description = "test-only upstream",
    .ops = &ops, .config_keys = fake_keys, .n_config_keys = sizeof fake_keys / sizeof fake_keys[0],
};

BB_PLUGIN_DEFINE(desc)
