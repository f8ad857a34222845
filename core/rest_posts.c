/* core/rest_posts.c — placeholder until the REST API lands (issue 4). */
#include "handlers.h"
#include "reply.h"

enum MHD_Result bb_h_posts_list(bb_req *req) { return bb_reply_error(req, 501, "NOT_IMPLEMENTED", "not implemented yet", NULL); }
enum MHD_Result bb_h_posts_create(bb_req *req) { return bb_reply_error(req, 501, "NOT_IMPLEMENTED", "not implemented yet", NULL); }
enum MHD_Result bb_h_post_get(bb_req *req) { return bb_reply_error(req, 501, "NOT_IMPLEMENTED", "not implemented yet", NULL); }
enum MHD_Result bb_h_post_delete(bb_req *req) { return bb_reply_error(req, 501, "NOT_IMPLEMENTED", "not implemented yet", NULL); }
