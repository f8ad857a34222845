/*
 * core/reply.h — every response goes out through here: JSON bodies, the
 * error envelope {"error","code","details","request_id"}, and the headers
 * every response carries (X-Request-ID, X-RateLimit-*).
 */
#ifndef BB_CORE_REPLY_H
#define BB_CORE_REPLY_H

#include "server.h"

/* body is stolen (json_decref'd). */
enum MHD_Result bb_reply_json(bb_req *req, unsigned status, json_t *body);
/* The same with one more header when name is not NULL (Allow, Retry-After,
 * WWW-Authenticate...). */
enum MHD_Result bb_reply_json_hdr(bb_req *req, unsigned status, json_t *body, const char *name, const char *value);
/* A response carrying JSON text (malloc'd and stolen: freed on failure)
 * with its Content-Type, for callers that add headers before
 * bb_reply_queue; NULL when text is NULL or MHD could not make one. */
struct MHD_Response *bb_json_response(char *text, size_t len);
enum MHD_Result bb_reply_bytes(bb_req *req, unsigned status, const char *content_type,
                               const void *data, size_t len);
enum MHD_Result bb_reply_empty(bb_req *req, unsigned status);
/* details is stolen, may be NULL. */
enum MHD_Result bb_reply_error(bb_req *req, unsigned status, const char *code, const char *message,
                               json_t *details);
/* One place maps a plugin status to HTTP: NOT_FOUND → 404 (PARENT_NOT_FOUND
 * when err->field is parentPostId), CONFLICT → 409, INVALID → 400,
 * UNAVAILABLE/TIMEOUT → 503 with Retry-After, INTERNAL → 500 (message
 * logged, never sent). */
enum MHD_Result bb_reply_status(bb_req *req, const bb_error *err);

/* Add the common headers to a response about to be queued; queue it. */
enum MHD_Result bb_reply_queue(bb_req *req, unsigned status, struct MHD_Response *resp);

#endif
