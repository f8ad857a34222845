/*
 * core/app.c — config → plugins → instances, shared by serve, the CLI and
 * the test suites.
 */
#include "app.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "log.h"
#include "storage_cache.h"

#define N_KINDS 3

typedef struct slot {
    bb_plugin_kind kind;
    bb_plugin      plugin;
    bool           loaded;
    struct bb_host host;
    void          *inst;
} slot;

struct bb_app {
    bb_config     *cfg;
    bb_config     *retired[16];    /* configs replaced by reloads, freed at close */
    size_t         n_retired;
    pthread_mutex_t lock;
    bb_search_path sp;
    slot           slots[N_KINDS];  /* storage, session, upstream */
    /* In front of the storage instance unless cache.ttl_ms is 0; everyone
     * who asks for storage (server, upstream_local, CLI) gets this front. */
    bb_storage_cache *cache;
};

static const bb_plugin_kind kinds[N_KINDS] = { BB_KIND_STORAGE, BB_KIND_SESSION, BB_KIND_UPSTREAM };
static const unsigned kind_flags[N_KINDS] = { BB_APP_STORAGE, BB_APP_SESSION, BB_APP_UPSTREAM };

static slot *slot_of(bb_app *app, bb_plugin_kind kind) { return &app->slots[(int)kind - 1]; }

static void add_secret_cb(void *ud, const char *s) { (void)ud; bb_log_add_secret(s); }

/* "where: storage.backend: why" — position of the backend key, or the main file. */
static void slot_error(bb_app *app, bb_plugin_kind kind, const char *why, bb_error *err)
{
    char key[64], where[512];
    const bb_cfg *n;
    snprintf(key, sizeof key, "%s.backend", bb_kind_name(kind));
    n = bb_cfg_find(bb_config_root(app->cfg), key);
    if (n && n->line) bb_cfg_where(n, where, sizeof where);
    else snprintf(where, sizeof where, "%s:1:1", bb_config_main_file(app->cfg) ? bb_config_main_file(app->cfg) : "<defaults>");
    bb_fail(err, BB_INVALID, key, "%s: %s: %s", where, key, why);
}

static bool load_slot(bb_app *app, bb_plugin_kind kind, bb_error *err)
{
    slot *s = slot_of(app, kind);
    char key[64], path[1024], why[1024], cfg_err[2048];
    const char *name;
    snprintf(key, sizeof key, "%s.backend", bb_kind_name(kind));
    name = bb_cfg_str(bb_config_root(app->cfg), key, "");
    if (!bb_plugin_locate(&app->sp, kind, name, path, sizeof path, why, sizeof why) ||
        !bb_plugin_open(&s->plugin, path, kind, why, sizeof why)) {
        slot_error(app, kind, why, err);
        return false;
    }
    s->loaded = true;
    s->kind = kind;
    if (!bb_config_validate_plugin(app->cfg, bb_kind_name(kind), s->plugin.desc->name,
                                   s->plugin.desc->config_keys, s->plugin.desc->n_config_keys,
                                   cfg_err, sizeof cfg_err)) {
        bb_fail(err, BB_INVALID, key, "%s", cfg_err);
        return false;
    }
    snprintf(s->host.name, sizeof s->host.name, "%s.%s", bb_kind_name(kind), s->plugin.desc->name);
    return true;
}

static bool create_slot(bb_app *app, bb_plugin_kind kind, bb_error *err)
{
    slot *s = slot_of(app, kind);
    char key[32];
    bb_error perr;
    bb_status st;
    /* Every ops table starts with BB_OPS_COMMON: size, create, destroy, health. */
    const bb_storage_ops *common = s->plugin.desc->ops;
    const bb_cfg *node;
    snprintf(key, sizeof key, "%s", bb_kind_name(kind));
    node = bb_cfg_find(bb_config_root(app->cfg), key);
    bb_error_clear(&perr);
    if (kind == BB_KIND_UPSTREAM)   /* through the cache, like every other reader */
        s->host.storage_ops = bb_app_storage(app, &s->host.storage_inst);
    st = common->create(&bb_host_table, &s->host, node, (bb_storage **)&s->inst, &perr);
    if (st != BB_OK || !s->inst) {
        bb_fail(err, st == BB_OK ? BB_INTERNAL : st, key, "%s plugin %s: %s", bb_kind_name(kind),
                s->plugin.desc->name, perr.msg[0] ? perr.msg : bb_status_name(st));
        s->inst = NULL;
        return false;
    }
    return true;
}

/* The post-page cache, right after the storage instance exists and before
 * anything (upstream, server) asks for storage.  cache.ttl_ms 0 leaves the
 * plugin's own table in place: no wrapper, no cost. */
static bool install_cache(bb_app *app, bb_error *err)
{
    const bb_cfg *root = bb_config_root(app->cfg);
    slot *s = slot_of(app, BB_KIND_STORAGE);
    bb_storage_cache_config cc;
    bb_error cerr;
    cc.ttl_ms = bb_cfg_i64(root, "cache.ttl_ms", 1000);
    cc.max_entries = (size_t)bb_cfg_i64(root, "cache.max_entries", 1024);
    cc.max_bytes = (size_t)bb_cfg_i64(root, "cache.max_bytes", 16 << 20);
    if (cc.ttl_ms <= 0) return true;
    bb_error_clear(&cerr);
    if (!(app->cache = bb_storage_cache_new(s->plugin.desc->ops, s->inst, &cc, &cerr))) {
        bb_fail(err, cerr.code ? cerr.code : BB_INTERNAL, "cache", "%s", cerr.msg);
        return false;
    }
    return true;
}

static bb_status count_pending(void *ud, const bb_migration_info *m)
{
    if (!m->applied) (*(int *)ud)++;
    return BB_OK;
}

/* storage.auto_migrate: true applies pending migrations; false only checks
 * that none is pending, so a deploy that forgot `botboard migrate` stops
 * with a clear message instead of failing on the first query. */
static bool bring_schema_up_to_date(bb_app *app, bb_error *err)
{
    bb_storage *inst;
    const bb_storage_ops *ops = bb_app_storage(app, &inst);   /* through the cache: applying invalidates */
    bool apply = bb_cfg_bool(bb_config_root(app->cfg), "storage.auto_migrate", true);
    bb_call call = { "migrate", NULL, 0 };
    bb_error merr;
    int pending = 0;
    bb_error_clear(&merr);
    /* One call either way: applying is a no-op on a current schema. */
    if (ops->migrate(inst, &call, apply, count_pending, &pending, &merr) != BB_OK) {
        bb_fail(err, merr.code ? merr.code : BB_INTERNAL, NULL, "%s failed: %s", apply ? "migration" : "schema check",
                merr.msg);
        return false;
    }
    if (!apply && pending > 0) {
        bb_fail(err, BB_UNAVAILABLE, NULL, "the database schema is behind this botboard (%d migration%s pending) and "
                "storage.auto_migrate is false: run 'botboard migrate'", pending, pending == 1 ? "" : "s");
        return false;
    }
    return true;
}

bb_app *bb_app_open(const char *config_file, unsigned flags, bb_error *err)
{
    char cerr[4096];
    bb_app *app;
    size_t n_extra = 0;
    const char *const *extra = NULL;
    bb_log_level level;
    bb_log_format fmt;

    bb_error_clear(err);
    if (sodium_init() < 0) { bb_fail(err, BB_INTERNAL, NULL, "libsodium failed to initialise"); return NULL; }
    app = calloc(1, sizeof *app);
    if (!app) { bb_fail(err, BB_INTERNAL, NULL, "out of memory"); return NULL; }
    pthread_mutex_init(&app->lock, NULL);
    app->cfg = bb_config_load(config_file, cerr, sizeof cerr);
    if (!app->cfg || !bb_config_validate_core(app->cfg, cerr, sizeof cerr)) {
        bb_fail(err, BB_INVALID, NULL, "%s", cerr);
        goto fail;
    }
    bb_config_each_secret(app->cfg, add_secret_cb, NULL);
    if (bb_log_parse_level(bb_cfg_str(bb_config_root(app->cfg), "logging.level", "info"), &level) &&
        bb_log_parse_format(bb_cfg_str(bb_config_root(app->cfg), "logging.format", "auto"), &fmt))
        bb_log_configure(level, fmt);
    bb_cfg_get_list(bb_config_root(app->cfg), "plugins.path", &n_extra, &extra, NULL);
    bb_search_path_init(&app->sp, extra, n_extra);

    for (int i = 0; i < N_KINDS; i++)
        if ((flags & kind_flags[i]) && !load_slot(app, kinds[i], err)) goto fail;
    /* Plugin subtrees may hold secrets too (filled and flagged just now). */
    bb_config_each_secret(app->cfg, add_secret_cb, NULL);
    if (flags & BB_APP_NO_CREATE) return app;
    for (int i = 0; i < N_KINDS; i++) {
        if ((flags & kind_flags[i]) && !create_slot(app, kinds[i], err)) goto fail;
        if (kinds[i] == BB_KIND_STORAGE && slot_of(app, BB_KIND_STORAGE)->inst && !install_cache(app, err)) goto fail;
    }
    if ((flags & BB_APP_MIGRATE) && slot_of(app, BB_KIND_STORAGE)->inst && !bring_schema_up_to_date(app, err))
        goto fail;
    return app;
fail:
    bb_app_close(app);
    return NULL;
}

void bb_app_close(bb_app *app)
{
    if (!app) return;
    /* Upstream sits on storage: destroy in reverse order. */
    for (int i = N_KINDS - 1; i >= 0; i--) {
        slot *s = &app->slots[i];
        if (s->inst) {
            const bb_storage_ops *common = s->plugin.desc->ops;
            common->destroy(s->inst);
            s->inst = NULL;
        }
        /* After the plugin: its watch thread calls into the cache until destroy(). */
        if (kinds[i] == BB_KIND_STORAGE) {
            bb_storage_cache_free(app->cache);
            app->cache = NULL;
        }
        if (s->loaded) bb_plugin_close(&s->plugin);
        s->loaded = false;
    }
    bb_search_path_free(&app->sp);
    bb_config_free(app->cfg);
    for (size_t i = 0; i < app->n_retired; i++) bb_config_free(app->retired[i]);
    pthread_mutex_destroy(&app->lock);
    free(app);
}

const bb_storage_ops *bb_app_storage(bb_app *app, bb_storage **inst)
{
    if (app->cache) return bb_storage_cache_ops(app->cache, inst);
    return bb_app_storage_plugin(app, inst);
}

const bb_storage_ops *bb_app_storage_plugin(bb_app *app, bb_storage **inst)
{
    slot *s = slot_of(app, BB_KIND_STORAGE);
    if (inst) *inst = s->inst;
    return s->inst ? s->plugin.desc->ops : NULL;
}

bb_storage_cache *bb_app_storage_cache(bb_app *app) { return app->cache; }

const bb_session_ops *bb_app_session(bb_app *app, bb_session_store **inst)
{
    slot *s = slot_of(app, BB_KIND_SESSION);
    if (inst) *inst = s->inst;
    return s->inst ? s->plugin.desc->ops : NULL;
}

const bb_upstream_ops *bb_app_upstream(bb_app *app, bb_upstream **inst)
{
    slot *s = slot_of(app, BB_KIND_UPSTREAM);
    if (inst) *inst = s->inst;
    return s->inst ? s->plugin.desc->ops : NULL;
}

const bb_config *bb_app_config(const bb_app *app) { return app->cfg; }

const bb_plugin *bb_app_plugin(const bb_app *app, bb_plugin_kind kind)
{
    const slot *s = &app->slots[(int)kind - 1];
    return s->loaded ? &s->plugin : NULL;
}

bb_status bb_app_health(bb_app *app, bb_plugin_kind kind, int64_t timeout_ms, char *detail, size_t len,
                        bb_error *err)
{
    slot *s = slot_of(app, kind);
    const bb_storage_ops *common;
    bb_call call = { NULL, NULL, bb_now_ms() + timeout_ms };
    if (!s->inst) return bb_fail(err, BB_UNAVAILABLE, NULL, "not configured");
    detail[0] = '\0';
    if (kind == BB_KIND_STORAGE) {   /* the same front as every other caller (the cache passes health through) */
        bb_storage *st;
        const bb_storage_ops *ops = bb_app_storage(app, &st);
        return ops->health(st, &call, detail, len, err);
    }
    common = s->plugin.desc->ops;
    return common->health(s->inst, &call, detail, len, err);
}

void bb_app_swap_config(bb_app *app, bb_config *fresh)
{
    pthread_mutex_lock(&app->lock);
    if (app->n_retired < sizeof app->retired / sizeof app->retired[0]) {
        app->retired[app->n_retired++] = app->cfg;
        app->cfg = fresh;
    } else {
        bb_config_free(fresh);   /* too many reloads kept alive: keep the running config */
    }
    pthread_mutex_unlock(&app->lock);
}
