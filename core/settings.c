/*
 * core/settings.c — the hot-path snapshot of reloadable settings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

bb_settings *bb_settings_build(const bb_cfg *root)
{
    static const char *const classes[BB_RATE_N] = { "read", "write", "delete" };
    bb_settings *s = calloc(1, sizeof *s);
    bb_error err;
    if (!s) return NULL;
    s->root = root;
    s->max_body = bb_cfg_i64(root, "server.max_body", 1 << 20);
    s->request_timeout_ms = bb_cfg_i64(root, "server.request_timeout", 30000);
    for (int i = 0; i < BB_RATE_N; i++) {
        char key[64];
        snprintf(key, sizeof key, "ratelimit.%s.per_minute", classes[i]);
        s->rate[i].per_minute = bb_cfg_i64(root, key, 600);
        snprintf(key, sizeof key, "ratelimit.%s.burst", classes[i]);
        s->rate[i].burst = bb_cfg_i64(root, key, 100);
    }
    s->auth_cache_ttl_ms = bb_cfg_i64(root, "auth.cache_ttl_ms", 5000);
    s->idempotency_ttl_s = bb_cfg_i64(root, "idempotency.ttl_s", 86400);
    s->heartbeat_s = bb_cfg_i64(root, "mcp.heartbeat_s", 15);
    s->access_log = bb_cfg_bool(root, "logging.access", false);
    if (bb_cfg_get_list(root, "mcp.allowed_hosts", &s->n_mcp_hosts, &s->mcp_hosts, &err) != BB_OK) s->n_mcp_hosts = 0;
    if (bb_cfg_get_list(root, "mcp.allowed_origins", &s->n_mcp_origins, &s->mcp_origins, &err) != BB_OK)
        s->n_mcp_origins = 0;
    s->mcp_auth_none = strcmp(bb_cfg_str(root, "mcp.auth", "key"), "none") == 0;
    return s;
}
