/*
 * core/service.c — wiring of the serving state.
 */
#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "events.h"
#include "host.h"
#include "log.h"
#include "ratelimit.h"

bool bb_service_init(bb_server *srv, char *why, size_t why_len)
{
    const bb_cfg *root = bb_config_root(bb_app_config(srv->app));
    bb_settings *s = bb_settings_build(root);
    if (!s) { snprintf(why, why_len, "out of memory"); return false; }
    atomic_store(&srv->settings, s);
    srv->started_wall_ms = bb_wall_ms();
    snprintf(srv->mcp_path, sizeof srv->mcp_path, "%s", bb_cfg_str(root, "mcp.path", "/mcp"));
    srv->storage = bb_app_storage(srv->app, &srv->storage_inst);
    if (!srv->storage) { snprintf(why, why_len, "no storage plugin instance"); return false; }
    srv->auth = bb_auth_new((size_t)bb_cfg_i64(root, "auth.cache_max_entries", 10000));
    srv->events = bb_events_new();
    srv->limiter = bb_ratelimit_new(srv);
    if (!srv->auth || !srv->events || !srv->limiter) { snprintf(why, why_len, "out of memory"); return false; }
    return true;
}

void bb_service_fini(bb_server *srv)
{
    bb_ratelimit_free(srv->limiter);
    bb_events_free(srv->events);
    bb_auth_free(srv->auth);
    srv->limiter = NULL;
    srv->events = NULL;
    srv->auth = NULL;
    /* The current settings snapshot and every one it replaced. */
    for (bb_settings *s = (bb_settings *)atomic_load(&srv->settings), *next; s; s = next) {
        next = s->retired;
        free(s);
    }
    atomic_store(&srv->settings, NULL);
}
