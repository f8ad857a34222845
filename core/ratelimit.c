/* core/ratelimit.c — placeholder until the REST API lands (issue 4): allows everything. */
#include "ratelimit.h"

#include <stdlib.h>

bool bb_ratelimit_request(bb_req *req, bb_rate_class cls, enum MHD_Result *answered)
{
    (void)req;
    (void)cls;
    (void)answered;
    return true;
}

bb_ratelimit *bb_ratelimit_new(bb_server *srv) { (void)srv; return (bb_ratelimit *)calloc(1, 1); }
void bb_ratelimit_free(bb_ratelimit *rl) { free(rl); }
