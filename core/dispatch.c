/*
 * core/dispatch.c — the pipeline every request goes through.
 */
#include "dispatch.h"

#include <string.h>

#include "auth.h"
#include "handlers.h"
#include "host.h"
#include "log.h"
#include "mcp_internal.h"
#include "metrics.h"
#include "ratelimit.h"
#include "reply.h"
#include "router.h"

#define MCP_ROUTE_LABEL "mcp"

static const bb_route mcp_route = { "*", MCP_ROUTE_LABEL, bb_h_mcp, BB_RATE_NONE, 0, "MCP Streamable HTTP" };

enum MHD_Result bb_dispatch(bb_req *req)
{
    char allow[64];
    enum MHD_Result answered;

    if (req->body_too_large)
        return bb_reply_error(req, 413, "PAYLOAD_TOO_LARGE", "request body is larger than server.max_body",
                              json_pack("{s:I}", "max_bytes", (json_int_t)bb_settings_now(req->srv)->max_body));
    if (strcmp(req->path, req->srv->mcp_path) == 0) {
        req->route = &mcp_route;
        return bb_h_mcp(req);
    }
    switch (bb_route_match(req, allow, sizeof allow)) {
    case BB_MATCH_NO_PATH:
        return bb_reply_error(req, 404, "NOT_FOUND", "no such endpoint", json_pack("{s:s}", "path", req->path));
    case BB_MATCH_NO_METHOD: {
        json_t *body = json_pack("{s:s, s:s, s:{s:s}, s:s}", "error", "method not allowed", "code",
                                 "METHOD_NOT_ALLOWED", "details", "allow", allow, "request_id", req->request_id);
        return bb_reply_json_hdr(req, 405, body, "Allow", allow);
    }
    case BB_MATCH_OK:
        break;
    }
    if ((req->route->flags & BB_ROUTE_AUTH) && !bb_auth_request(req, &answered)) return answered;
    if (req->route->rate != BB_RATE_NONE && !bb_ratelimit_request(req, req->route->rate, &answered)) return answered;
    return req->route->handler(req);
}

/* Counted when the response is queued, so the next request (on any
 * connection) already sees it in /metrics. */
void bb_dispatch_account(bb_req *req, unsigned status)
{
    static const char *const req_labels[] = { "route", "method", "status", NULL };
    static const char *const dur_labels[] = { "route", "method", NULL };
    bb_metric *requests = bb_metric_family(BB_METRIC_COUNTER, "http_requests_total",
                                           "HTTP requests by route template, method and status", req_labels);
    bb_metric *duration = bb_metric_family(BB_METRIC_HISTOGRAM, "http_request_duration_seconds",
                                           "Time to the response by route template", dur_labels);
    const char *route = req->route ? req->route->tmpl : "unmatched";
    char code[8];
    snprintf(code, sizeof code, "%u", status);
    bb_series_add(bb_metric_series(requests, (const char *const[]){ route, req->method, code }), 1);
    bb_series_observe(bb_metric_series(duration, (const char *const[]){ route, req->method }),
                      (double)(bb_now_ms() - req->start_ms) / 1000.0);
}

void bb_dispatch_done(bb_req *req, enum MHD_RequestTerminationCode toe)
{
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && req->status == 0)
        bb_debug("http", "%s %s: connection ended before a response (%d)", req->method, req->path, (int)toe);
}

void bb_dispatch_shutdown(bb_server *srv)
{
    bb_mcp_shutdown(srv->mcp);   /* ends the SSE streams so their requests complete */
}
