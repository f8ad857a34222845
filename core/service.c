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
#include "mcp_internal.h"
#include "ratelimit.h"
#include "sessions.h"

/* Posts made by other instances on a shared database reach this process's
 * MCP subscriptions through the storage's watch() (PostgreSQL LISTEN/NOTIFY). */
static void on_storage_post(void *ud, const char *team, const char *post_id, const char *thread_id, const char *author)
{
    bb_server *srv = ud;
    bb_post_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.team, sizeof ev.team, "%s", team ? team : "");
    snprintf(ev.post_id, sizeof ev.post_id, "%s", post_id ? post_id : "");
    snprintf(ev.thread_id, sizeof ev.thread_id, "%s", thread_id ? thread_id : "");
    snprintf(ev.author, sizeof ev.author, "%s", author ? author : "");
    pthread_mutex_lock(&srv->watch_mu);
    if (srv->watch_events) bb_events_publish(srv->watch_events, &ev);
    pthread_mutex_unlock(&srv->watch_mu);
}

static void watch_storage(bb_server *srv)
{
    bb_error err;
    if (!srv->storage->watch) return;
    bb_error_clear(&err);
    srv->watch_events = srv->events;
    if (srv->storage->watch(srv->storage_inst, on_storage_post, srv, &err) != BB_OK)
        bb_warn("service", "storage change notifications unavailable (MCP subscriptions see only this process's "
                "posts): %s", err.msg);
}

bool bb_service_init(bb_server *srv, char *why, size_t why_len)
{
    const bb_cfg *root = bb_config_root(bb_app_config(srv->app));
    bb_settings *s;
    /* First, so fini can always take it.  Not destroyed: a default mutex
     * holds no resources, and the watch thread may take it until
     * bb_app_close. */
    pthread_mutex_init(&srv->watch_mu, NULL);
    s = bb_settings_build(root);
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
    if (bb_app_session(srv->app, NULL) && !(srv->sessions = bb_sessions_new(srv->app, root, why, why_len)))
        return false;
    if (!(srv->mcp = bb_mcp_new(srv, why, why_len))) return false;
    watch_storage(srv);
    return true;
}

void bb_service_fini(bb_server *srv)
{
    bb_mcp_free(srv->mcp);
    srv->mcp = NULL;
    bb_sessions_free(srv->sessions);
    srv->sessions = NULL;
    bb_ratelimit_free(srv->limiter);
    pthread_mutex_lock(&srv->watch_mu);
    srv->watch_events = NULL;   /* the watch thread delivers nothing from now on */
    pthread_mutex_unlock(&srv->watch_mu);
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
