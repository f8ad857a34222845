/*
 * core/handlers.h — every request handler the route table names.
 */
#ifndef BB_CORE_HANDLERS_H
#define BB_CORE_HANDLERS_H

#include "server.h"

/* health.c */
enum MHD_Result bb_h_healthz(bb_req *req);
enum MHD_Result bb_h_readyz(bb_req *req);
enum MHD_Result bb_h_metrics(bb_req *req);

/* rest_posts.c */
enum MHD_Result bb_h_posts_list(bb_req *req);
enum MHD_Result bb_h_posts_create(bb_req *req);
enum MHD_Result bb_h_post_get(bb_req *req);
enum MHD_Result bb_h_post_delete(bb_req *req);

/* rest_teams.c */
enum MHD_Result bb_h_team_get(bb_req *req);

/* openapi.c */
enum MHD_Result bb_h_openapi(bb_req *req);

/* mcp_http.c: the Streamable HTTP endpoint (mcp.path), every method */
enum MHD_Result bb_h_mcp(bb_req *req);

#endif
