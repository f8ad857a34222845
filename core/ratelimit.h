/*
 * core/ratelimit.h — per key and class token buckets (read, write, delete),
 * in process by default, or windowed counters in the session backend when
 * ratelimit.shared is on (shared across instances).
 */
#ifndef BB_CORE_RATELIMIT_H
#define BB_CORE_RATELIMIT_H

#include "server.h"

typedef struct bb_ratelimit bb_ratelimit;

typedef struct bb_rate_result {
    bool    allowed;
    int64_t limit;          /* X-RateLimit-Limit */
    int64_t remaining;      /* X-RateLimit-Remaining */
    int64_t reset_s;        /* X-RateLimit-Reset: seconds until full */
    int64_t retry_after_s;  /* for 429 */
} bb_rate_result;

bb_ratelimit *bb_ratelimit_new(bb_server *srv);
void bb_ratelimit_free(bb_ratelimit *rl);
/* Take one token for identity in class. */
void bb_ratelimit_take(bb_ratelimit *rl, const bb_call *call, const char *identity, bb_rate_class cls,
                       bb_rate_result *out);
/* For routes: take, set the req's X-RateLimit-* values; on 429 answer and return false. */
bool bb_ratelimit_request(bb_req *req, bb_rate_class cls, enum MHD_Result *answered);

#endif
