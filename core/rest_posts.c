/* core/rest_posts.c — placeholder until the REST API lands (issue 4). */
#include "handlers.h"
#include "reply.h"

static enum MHD_Result not_yet(bb_req *req)
{
    return bb_reply_error(req, 501, "NOT_IMPLEMENTED", "not implemented yet", NULL);
}

enum MHD_Result bb_h_posts_list(bb_req *req) { return not_yet(req); }
enum MHD_Result bb_h_posts_create(bb_req *req) { return not_yet(req); }
enum MHD_Result bb_h_post_get(bb_req *req) { return not_yet(req); }
enum MHD_Result bb_h_post_delete(bb_req *req) { return not_yet(req); }
enum MHD_Result bb_h_team_get(bb_req *req) { return not_yet(req); }
enum MHD_Result bb_h_openapi(bb_req *req) { return not_yet(req); }
enum MHD_Result bb_h_mcp(bb_req *req) { return not_yet(req); }

#include "cli.h"
int bb_cmd_mcp_stdio(bb_cli *cli) { return bb_cli_fail(cli, BB_EXIT_RUNTIME, "mcp-stdio: not available yet"); }
