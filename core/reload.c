/*
 * core/reload.c — configuration reload.
 */
#include "reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "log.h"
#include "sessions.h"

static const bb_plugin_kind kinds[] = { BB_KIND_STORAGE, BB_KIND_SESSION, BB_KIND_UPSTREAM };

/* Report every non-reloadable core key whose value changed. */
static int report_restart_keys(const bb_cfg *old_root, const bb_cfg *new_root)
{
    int changed = 0;
    for (size_t i = 0; i < bb_core_keys_count; i++) {
        const bb_config_key *k = &bb_core_keys[i];
        const bb_cfg *a = bb_cfg_find(old_root, k->path), *b = bb_cfg_find(new_root, k->path);
        if ((k->flags & BB_CFG_RELOADABLE) || k->type == BB_CFG_MAP || k->type == BB_CFG_LIST) continue;
        if (a && b && a->value && b->value && strcmp(a->value, b->value) != 0) {
            bb_warn("reload", "%s changed; it takes effect after a restart", k->path);
            changed++;
        }
    }
    return changed;
}

bool bb_reload(bb_server *srv, const char *config_path)
{
    char err[4096];
    bb_config *fresh = bb_config_load(config_path, err, sizeof err);
    bb_settings *s;
    bb_log_level level;
    bb_log_format fmt;
    const bb_cfg *root;

    if (!fresh || !bb_config_validate_core(fresh, err, sizeof err)) {
        bb_error("reload", "new configuration rejected, still running the old one: %s", err);
        bb_config_free(fresh);
        return false;
    }
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const bb_plugin *p = bb_app_plugin(srv->app, kinds[i]);
        if (p && !bb_config_validate_plugin(fresh, bb_kind_name(kinds[i]), p->desc->name, p->desc->config_keys,
                                            p->desc->n_config_keys, err, sizeof err)) {
            bb_error("reload", "new configuration rejected, still running the old one: %s", err);
            bb_config_free(fresh);
            return false;
        }
    }
    root = bb_config_root(fresh);
    if (!(s = bb_settings_build(root))) {
        bb_config_free(fresh);
        return false;
    }
    if (srv->sessions) {
        bb_error serr;
        bb_error_clear(&serr);
        if (bb_sessions_reload(srv->sessions, root, &serr) != BB_OK) {
            bb_error("reload", "new configuration rejected, still running the old one: %s", serr.msg);
            free(s);
            bb_config_free(fresh);
            return false;
        }
    }
    report_restart_keys(bb_config_root(bb_app_config(srv->app)), root);
    bb_app_swap_config(srv->app, fresh);
    /* The old snapshot may still be read by a request in flight: retire it
     * (freed with the chain at exit). */
    s->retired = (bb_settings *)atomic_load_explicit(&srv->settings, memory_order_acquire);
    atomic_store_explicit(&srv->settings, s, memory_order_release);
    if (bb_log_parse_level(bb_cfg_str(root, "logging.level", "info"), &level) &&
        bb_log_parse_format(bb_cfg_str(root, "logging.format", "auto"), &fmt))
        bb_log_configure(level, fmt);
    bb_info("reload", "configuration reloaded from %s", config_path ? config_path : "embedded defaults");
    return true;
}
