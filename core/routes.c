/*
 * core/routes.c — the route table.  Templates are the metrics labels and
 * the OpenAPI paths; adding an endpoint is adding a row.
 */
#include <string.h>

#include "handlers.h"
#include "router.h"

#define AUTH_TEAM (BB_ROUTE_AUTH | BB_ROUTE_TEAM)

const bb_route bb_routes[] = {
    { "GET",    "/healthz",                     bb_h_healthz,      BB_RATE_NONE,   0,         "liveness" },
    { "GET",    "/readyz",                      bb_h_readyz,       BB_RATE_NONE,   0,         "readiness of every plugin" },
    { "GET",    "/metrics",                     bb_h_metrics,      BB_RATE_NONE,   0,         "Prometheus metrics" },
    { "GET",    "/v1/openapi.yaml",             bb_h_openapi,      BB_RATE_NONE,   0,         "this API's OpenAPI 3.1 document" },
    { "GET",    "/v1/teams/{team}",             bb_h_team_get,     BB_RATE_READ,   AUTH_TEAM, "team info" },
    { "GET",    "/v1/teams/{team}/posts",       bb_h_posts_list,   BB_RATE_READ,   AUTH_TEAM, "list posts" },
    { "POST",   "/v1/teams/{team}/posts",       bb_h_posts_create, BB_RATE_WRITE,  AUTH_TEAM | BB_ROUTE_BODY, "create a post" },
    { "GET",    "/v1/teams/{team}/posts/{id}",  bb_h_post_get,     BB_RATE_READ,   AUTH_TEAM, "get a post" },
    { "DELETE", "/v1/teams/{team}/posts/{id}",  bb_h_post_delete,  BB_RATE_DELETE, AUTH_TEAM, "soft-delete a post" },
};

const size_t bb_routes_count = sizeof bb_routes / sizeof bb_routes[0];
