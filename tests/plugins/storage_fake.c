/*
 * tests/plugins/storage_fake.c — a storage plugin that stores nothing: every
 * lookup is NOT_FOUND, every write OK.  Enough for the loader and serve
 * lifecycle tests, and a template for the ABI's shape.
 */
#include "fake_common.h"

#define SELF(s) ((fake_inst *)(void *)(s))

static bb_status s_create(const bb_host_api *api, bb_host *host, const bb_cfg *node, bb_storage **out, bb_error *err)
{
    return fake_create_common(api, host, node, "fake", (fake_inst **)(void *)out, err);
}
static void s_destroy(bb_storage *self) { free(self); }
static bb_status s_health(bb_storage *self, const bb_call *c, char *d, size_t l, bb_error *e) { return fake_health(SELF(self), c, d, l, e); }
static bb_status s_migrate(bb_storage *s, const bb_call *c, bool a, bb_migration_fn fn, void *ud, bb_error *e)
{
    bb_migration_info m = { 1, "nothing", true, 1 };
    (void)s; (void)c; (void)a; (void)e;
    return fn ? fn(ud, &m) : BB_OK;
}
static bb_status s_team_create(bb_storage *s, const bb_call *c, const bb_team *t, bb_error *e) { (void)s; (void)c; (void)t; (void)e; return BB_OK; }
static bb_status s_team_get(bb_storage *s, const bb_call *c, const char *n, bb_team *o, bb_error *e) { (void)s; (void)c; (void)n; (void)o; return bb_fail(e, BB_NOT_FOUND, NULL, "no teams here"); }
static bb_status s_team_list(bb_storage *s, const bb_call *c, bb_team_fn fn, void *ud, bb_error *e) { (void)s; (void)c; (void)fn; (void)ud; (void)e; return BB_OK; }
static bb_status s_key_create(bb_storage *s, const bb_call *c, const bb_api_key *k, bb_error *e) { (void)s; (void)c; (void)k; (void)e; return BB_OK; }
static bb_status s_key_by_hash(bb_storage *s, const bb_call *c, const uint8_t h[BB_KEY_HASH_LEN], bb_api_key *o, bb_error *e) { (void)s; (void)c; (void)h; (void)o; return bb_fail(e, BB_NOT_FOUND, NULL, "no keys here"); }
static bb_status s_key_list(bb_storage *s, const bb_call *c, const char *t, bb_key_fn fn, void *ud, bb_error *e) { (void)s; (void)c; (void)t; (void)fn; (void)ud; (void)e; return BB_OK; }
static bb_status s_key_revoke(bb_storage *s, const bb_call *c, const char *id, int64_t w, bb_error *e) { (void)s; (void)c; (void)id; (void)w; return bb_fail(e, BB_NOT_FOUND, NULL, "no keys here"); }
static bb_status s_post_create(bb_storage *s, const bb_call *c, const bb_post *p, const bb_idempotency *i, bb_post *o, bool *r, bb_error *e) { (void)s; (void)c; (void)p; (void)i; (void)o; (void)r; return bb_fail(e, BB_INVALID, NULL, "read-only fake"); }
static bb_status s_post_get(bb_storage *s, const bb_call *c, const char *t, const char *id, bb_post *o, bb_error *e) { (void)s; (void)c; (void)t; (void)id; (void)o; return bb_fail(e, BB_NOT_FOUND, NULL, "no posts here"); }
static bb_status s_post_list(bb_storage *s, const bb_call *c, const bb_post_query *q, bb_post_page *o, bb_error *e) { (void)s; (void)c; (void)q; (void)e; memset(o, 0, sizeof *o); return BB_OK; }
static bb_status s_post_delete(bb_storage *s, const bb_call *c, const char *t, const char *id, int64_t w, bb_error *e) { (void)s; (void)c; (void)t; (void)id; (void)w; return bb_fail(e, BB_NOT_FOUND, NULL, "no posts here"); }
static bb_status s_distinct(bb_storage *s, const bb_call *c, const char *t, bb_distinct_field f, const char *p, int l, char ***o, size_t *n, bb_error *e) { (void)s; (void)c; (void)t; (void)f; (void)p; (void)l; (void)e; *o = NULL; *n = 0; return BB_OK; }
static bb_status s_purge(bb_storage *s, const bb_call *c, int64_t now, bb_error *e) { (void)s; (void)c; (void)now; (void)e; return BB_OK; }
static bb_status s_export(bb_storage *s, const bb_call *c, bb_record_fn fn, void *ud, bb_error *e) { (void)s; (void)c; (void)fn; (void)ud; (void)e; return BB_OK; }
static bb_status s_import(bb_storage *s, const bb_call *c, bb_record_source n, void *ud, bb_error *e) { (void)s; (void)c; (void)n; (void)ud; return bb_fail(e, BB_INVALID, NULL, "read-only fake"); }
static bb_status s_backup(bb_storage *s, const bb_call *c, const char *p, bb_error *e) { (void)s; (void)c; (void)p; return bb_fail(e, BB_INVALID, NULL, "nothing to back up"); }

static const bb_storage_ops ops = {
    .size = sizeof(bb_storage_ops), .create = s_create, .destroy = s_destroy, .health = s_health,
    .migrate = s_migrate, .team_create = s_team_create, .team_get = s_team_get, .team_list = s_team_list,
    .key_create = s_key_create, .key_by_hash = s_key_by_hash, .key_list = s_key_list, .key_revoke = s_key_revoke,
    .post_create = s_post_create, .post_get = s_post_get, .post_list = s_post_list, .post_delete = s_post_delete,
    .distinct = s_distinct, .purge_expired = s_purge, .export_all = s_export, .import_all = s_import,
    .backup = s_backup, .watch = NULL,
};

static const bb_plugin_descriptor desc = {
    .magic = BB_PLUGIN_MAGIC, .abi_major = BB_ABI_MAJOR, .abi_minor = BB_ABI_MINOR, .size = sizeof(bb_plugin_descriptor),
    .kind = BB_KIND_STORAGE, .name = "fake", .version = "test", .description = "test-only storage that stores nothing",
    .ops = &ops, .config_keys = fake_keys, .n_config_keys = sizeof fake_keys / sizeof fake_keys[0],
};

BB_PLUGIN_DEFINE(desc)
