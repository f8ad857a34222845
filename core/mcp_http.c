/* core/mcp_http.c — placeholder until MCP lands (issue 6). */
#include "cli.h"
#include "handlers.h"
#include "reply.h"

enum MHD_Result bb_h_mcp(bb_req *req) { return bb_reply_error(req, 501, "NOT_IMPLEMENTED", "not implemented yet", NULL); }
int bb_cmd_mcp_stdio(bb_cli *cli) { return bb_cli_fail(cli, BB_EXIT_RUNTIME, "mcp-stdio: not available yet"); }
