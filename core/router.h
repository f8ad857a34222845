/*
 * core/router.h — the route table: every endpoint is one row.
 */
#ifndef BB_CORE_ROUTER_H
#define BB_CORE_ROUTER_H

#include "server.h"

typedef enum MHD_Result (*bb_handler)(bb_req *req);

enum {
    BB_ROUTE_AUTH     = 1u << 0,   /* needs a team API key */
    BB_ROUTE_TEAM     = 1u << 1,   /* params[0] is a team the key must belong to */
    BB_ROUTE_BODY     = 1u << 2    /* takes a JSON body */
};

struct bb_route {
    const char   *method;     /* "GET", ... */
    const char   *tmpl;       /* "/v1/teams/{team}/posts/{id}": the metrics label */
    bb_handler    handler;
    bb_rate_class rate;
    unsigned      flags;
    const char   *summary;    /* one line, for logs and docs */
};

extern const bb_route bb_routes[];
extern const size_t bb_routes_count;

typedef enum bb_match { BB_MATCH_OK, BB_MATCH_NO_PATH, BB_MATCH_NO_METHOD } bb_match;

/* Match method+path; fills req->route and req->params.  On NO_METHOD,
 * allow gets the allowed methods ("GET, POST"). */
bb_match bb_route_match(bb_req *req, char *allow, size_t allow_len);

#endif
