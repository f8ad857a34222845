/*
 * core/reply.c — responses and the error envelope.
 */
#include "reply.h"

#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "log.h"

enum MHD_Result bb_reply_queue(bb_req *req, unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result ret;
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "X-Request-ID", req->request_id);
    if (req->has_rate) {
        char v[32];
        snprintf(v, sizeof v, "%lld", (long long)req->rate_limit);
        MHD_add_response_header(resp, "X-RateLimit-Limit", v);
        snprintf(v, sizeof v, "%lld", (long long)req->rate_remaining);
        MHD_add_response_header(resp, "X-RateLimit-Remaining", v);
        snprintf(v, sizeof v, "%lld", (long long)req->rate_reset_s);
        MHD_add_response_header(resp, "X-RateLimit-Reset", v);
    }
    req->status = status;
    bb_dispatch_account(req, status);
    ret = MHD_queue_response(req->conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result bb_reply_bytes(bb_req *req, unsigned status, const char *content_type, const void *data, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    if (content_type) MHD_add_response_header(r, "Content-Type", content_type);
    return bb_reply_queue(req, status, r);
}

struct MHD_Response *bb_json_response(char *text, size_t len)
{
    struct MHD_Response *r;
    if (!text) return NULL;
    if (!(r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE))) {
        free(text);
        return NULL;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    return r;
}

enum MHD_Result bb_reply_json_hdr(bb_req *req, unsigned status, json_t *body, const char *name, const char *value)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct MHD_Response *r;
    json_decref(body);
    if (!(r = bb_json_response(text, text ? strlen(text) : 0))) return MHD_NO;
    if (name) MHD_add_response_header(r, name, value);
    return bb_reply_queue(req, status, r);
}

enum MHD_Result bb_reply_json(bb_req *req, unsigned status, json_t *body)
{
    return bb_reply_json_hdr(req, status, body, NULL, NULL);
}

enum MHD_Result bb_reply_empty(bb_req *req, unsigned status)
{
    return bb_reply_queue(req, status, MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT));
}

enum MHD_Result bb_reply_error(bb_req *req, unsigned status, const char *code, const char *message, json_t *details)
{
    json_t *body = json_pack("{s:s, s:s, s:o, s:s}", "error", message, "code", code, "details",
                             details ? details : json_object(), "request_id", req->request_id);
    if (status >= 500) bb_warn("http", "%s %s -> %u %s: %s", req->method, req->path, status, code, message);
    else bb_debug("http", "%s %s -> %u %s: %s", req->method, req->path, status, code, message);
    return bb_reply_json(req, status, body);
}

enum MHD_Result bb_reply_status(bb_req *req, const bb_error *err)
{
    json_t *details = json_object();
    if (err->field[0]) json_object_set_new(details, "field", json_string(err->field));
    switch (err->code) {
    case BB_NOT_FOUND:
        if (strcmp(err->field, "parentPostId") == 0)
            return bb_reply_error(req, 404, "PARENT_NOT_FOUND", err->msg[0] ? err->msg : "parent post not found", details);
        return bb_reply_error(req, 404, "NOT_FOUND", err->msg[0] ? err->msg : "not found", details);
    case BB_CONFLICT:
        return bb_reply_error(req, 409, "CONFLICT", err->msg[0] ? err->msg : "conflict", details);
    case BB_INVALID:
        return bb_reply_error(req, 400, "INVALID_INPUT", err->msg[0] ? err->msg : "invalid input", details);
    case BB_UNAVAILABLE:
    case BB_TIMEOUT: {
        char ra[16];
        int retry = err->retry_after_s > 0 ? err->retry_after_s : 1;
        bb_warn("http", "%s %s -> 503: %s", req->method, req->path, err->msg);
        snprintf(ra, sizeof ra, "%d", retry);
        return bb_reply_json_hdr(req, 503,
                                 json_pack("{s:s, s:s, s:o, s:s}", "error", "service temporarily unavailable, retry later",
                                           "code", "UNAVAILABLE", "details", details, "request_id", req->request_id),
                                 "Retry-After", ra);
    }
    case BB_OK:
    case BB_INTERNAL:
    default:
        json_decref(details);
        bb_error("http", "%s %s -> 500: %s", req->method, req->path, err->msg);
        return bb_reply_error(req, 500, "SERVER_ERROR", "internal error", NULL);
    }
}
