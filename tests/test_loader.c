/*
 * tests/test_loader.c — the plugin loader refuses every malformed plugin
 * with a one-line reason naming the file, loads a good one, and lets two
 * instances of one plugin live side by side.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <botboard/upstream.h>

#include "app.h"
#include "loader.h"

#define PLUGDIR BB_ABS_BUILDDIR "/tests/plugins/.libs"

static void expect_refused(const char *file, bb_plugin_kind kind, const char *reason)
{
    bb_plugin p;
    char path[1024], why[1024] = "";
    snprintf(path, sizeof path, "%s/%s", PLUGDIR, file);
    cr_assert_not(bb_plugin_open(&p, path, kind, why, sizeof why), "%s loaded", file);
    cr_expect(strncmp(why, path, strlen(path)) == 0, "reason does not name the file: %s", why);
    cr_expect_not_null(strstr(why, reason), "want '%s' in: %s", reason, why);
    cr_expect_null(strchr(why, '\n'), "reason is not one line: %s", why);
}

Test(loader, good_plugin_loads)
{
    bb_plugin p;
    char why[1024] = "";
    cr_assert(bb_plugin_open(&p, PLUGDIR "/storage_fake.so", BB_KIND_STORAGE, why, sizeof why), "%s", why);
    cr_expect_str_eq(p.desc->name, "fake");
    cr_expect_eq(p.desc->kind, BB_KIND_STORAGE);
    bb_plugin_close(&p);
}

/* ABI 1.1 added members at the ends of the tables: a plugin built against
 * 1.0 (a shorter table) still loads, and BB_OPS_HAS reports its missing
 * members absent even though the fake sets them to calls that abort. */
Test(loader, abi_1_0_plugin_loads_without_the_1_1_members)
{
    bb_plugin p;
    char why[1024] = "";
    const bb_upstream_ops *ops;
    cr_assert(bb_plugin_open(&p, PLUGDIR "/upstream_abi10.so", BB_KIND_UPSTREAM, why, sizeof why), "%s", why);
    cr_expect_eq(p.desc->abi_minor, 0);
    ops = p.desc->ops;
    cr_expect_eq(ops->size, offsetof(bb_upstream_ops, list_posts_lend));
    cr_expect_not(BB_OPS_HAS(ops, bb_upstream_ops, list_posts_lend));
    cr_expect_not(BB_OPS_HAS(ops, bb_upstream_ops, page_return));
    bb_plugin_close(&p);
    cr_assert(bb_plugin_open(&p, PLUGDIR "/upstream_fake.so", BB_KIND_UPSTREAM, why, sizeof why), "%s", why);
    ops = p.desc->ops;
    cr_expect_eq(ops->size, sizeof(bb_upstream_ops));
    cr_expect_not(BB_OPS_HAS(ops, bb_upstream_ops, list_posts_lend), "a 1.1 table may leave them NULL");
    bb_plugin_close(&p);
}

Test(loader, abi_major_mismatch) { expect_refused("storage_badabi.so", BB_KIND_STORAGE, "plugin ABI 99.0, this host speaks ABI 1.x"); }
Test(loader, wrong_kind) { expect_refused("storage_wrongkind.so", BB_KIND_STORAGE, "is a session plugin, but the storage slot needs a storage plugin"); }
Test(loader, ops_table_too_small) { expect_refused("storage_shortops.so", BB_KIND_STORAGE, "storage ops table too small"); }
Test(loader, missing_symbol) { expect_refused("storage_nosym.so", BB_KIND_STORAGE, "no bb_plugin_entry symbol"); }
Test(loader, missing_file) { expect_refused("storage_absent.so", BB_KIND_STORAGE, "plugin file not found"); }

Test(loader, not_a_shared_object)
{
    bb_plugin p;
    char why[1024] = "";
    FILE *f = fopen("/tmp/bb-not-a-plugin.so", "w");
    cr_assert_not_null(f);
    fputs("not an ELF file\n", f);
    fclose(f);
    cr_assert_not(bb_plugin_open(&p, "/tmp/bb-not-a-plugin.so", BB_KIND_STORAGE, why, sizeof why));
    cr_expect_not_null(strstr(why, "cannot load"), "%s", why);
    cr_expect_not_null(strstr(why, "ldd"), "%s", why);
    unlink("/tmp/bb-not-a-plugin.so");
}

Test(loader, locate_names_the_dirs_searched)
{
    bb_search_path sp;
    const char *extra[] = { "/nonexistent/dir" };
    char path[1024], why[1024] = "";
    bb_search_path_init(&sp, extra, 1);
    cr_assert_not(bb_plugin_locate(&sp, BB_KIND_STORAGE, "nosuch", path, sizeof path, why, sizeof why));
    cr_expect_not_null(strstr(why, "storage_nosuch.so not found"), "%s", why);
    cr_expect_not_null(strstr(why, "/nonexistent/dir"), "%s", why);
    bb_search_path_free(&sp);
}

static char *write_config(const char *name, const char *yaml)
{
    static char path[512];
    FILE *f;
    snprintf(path, sizeof path, "/tmp/bbloader-%d-%s", (int)getpid(), name);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "plugins:\n  path: [\"%s\"]\n%s", PLUGDIR, yaml);
    fclose(f);
    return path;
}

Test(loader, two_instances_of_one_plugin_coexist)
{
    bb_error err;
    char *cfg = write_config("two.yaml", "storage:\n  backend: fake\n");
    bb_app *a = bb_app_open(cfg, BB_APP_STORAGE, &err), *b;
    bb_storage *ia, *ib;
    char da[128], db[128];
    cr_assert_not_null(a, "%s", err.msg);
    b = bb_app_open(cfg, BB_APP_STORAGE, &err);
    cr_assert_not_null(b, "%s", err.msg);
    cr_assert_not_null(bb_app_storage(a, &ia));
    cr_assert_not_null(bb_app_storage(b, &ib));
    cr_expect_neq(ia, ib);
    cr_assert_eq(bb_app_health(a, BB_KIND_STORAGE, 1000, da, sizeof da, &err), BB_OK);
    cr_assert_eq(bb_app_health(b, BB_KIND_STORAGE, 1000, db, sizeof db, &err), BB_OK);
    cr_expect_str_neq(da, db, "instances share state: %s", da);
    bb_app_close(a);   /* closing one leaves the other working */
    cr_expect_eq(bb_app_health(b, BB_KIND_STORAGE, 1000, db, sizeof db, &err), BB_OK);
    bb_app_close(b);
    unlink(cfg);
}

Test(loader, config_names_a_refused_plugin_at_its_key)
{
    bb_error err;
    char *cfg = write_config("bad.yaml", "storage:\n  backend: badabi\n");
    char want[600];
    bb_app *a = bb_app_open(cfg, BB_APP_STORAGE | BB_APP_NO_CREATE, &err);
    cr_assert_null(a);
    snprintf(want, sizeof want, "%s:4:3: storage.backend: ", cfg);
    cr_expect(strncmp(err.msg, want, strlen(want)) == 0, "got %s", err.msg);
    cr_expect_not_null(strstr(err.msg, "plugin ABI 99.0"), "%s", err.msg);
    cr_expect_eq(err.code, BB_INVALID);
    unlink(cfg);
}

Test(loader, config_missing_plugin)
{
    bb_error err;
    char *cfg = write_config("missing.yaml", "session:\n  backend: nosuch\n");
    bb_app *a = bb_app_open(cfg, BB_APP_SESSION | BB_APP_NO_CREATE, &err);
    cr_assert_null(a);
    cr_expect_not_null(strstr(err.msg, ":4:3: session.backend: plugin session_nosuch.so not found"), "%s", err.msg);
    unlink(cfg);
}

Test(loader, plugin_keys_are_validated_against_its_table)
{
    bb_error err;
    char *cfg = write_config("keys.yaml", "storage:\n  backend: fake\n  fake:\n    health_delay_ms: 99999\n    bogus: 1\n");
    bb_app *a = bb_app_open(cfg, BB_APP_STORAGE | BB_APP_NO_CREATE, &err);
    cr_assert_null(a);
    cr_expect_not_null(strstr(err.msg, ":6:5: storage.fake.health_delay_ms: 99999 is out of range (0..60000)"), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, ":7:5: unknown key 'storage.fake.bogus'"), "%s", err.msg);
    unlink(cfg);
}
