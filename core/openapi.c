/* core/openapi.c — placeholder until the REST API lands (issue 4). */
#include "handlers.h"
#include "reply.h"

enum MHD_Result bb_h_openapi(bb_req *req) { return bb_reply_error(req, 501, "NOT_IMPLEMENTED", "not implemented yet", NULL); }
