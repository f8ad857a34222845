/*
 * core/mcp_http.c — MCP Streamable HTTP on mcp.path (MCP.md 1-12).
 *
 * Every request, in this order: method (POST/GET/DELETE, else 405 + Allow)
 * → Host and Origin (DNS-rebinding defence, 403) → caller (Bearer team API
 * key, 401 + WWW-Authenticate; or mcp.team with mcp.auth: none) → session
 * (Mcp-Session-Id: 400 without, 404 unknown/expired, 403 another team's)
 * → MCP-Protocol-Version (400 unsupported) → the method's work.
 *
 * POST runs the JSON-RPC body through mcp_rpc.c and answers with one JSON
 * object (or a batch array), 202 for notifications/responses only, or an
 * SSE body when the handlers sent notifications before their result.  GET
 * hands over to mcp_stream.c.  Transport-level refusals carry a JSON-RPC
 * error without an id, which is what clients parse on /mcp.
 */
#include "mcp_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "handlers.h"
#include "log.h"
#include "reply.h"

#define ALLOW "GET, POST, DELETE"

/* ---- answers ---- */

/* JSON text (malloc'd, handed to MHD). */
static enum MHD_Result reply_text(bb_req *req, unsigned status, char *text, size_t len, const char *session_id)
{
    struct MHD_Response *r;
    if (!text) return bb_reply_error(req, 500, "SERVER_ERROR", "out of memory", NULL);
    if (!(r = bb_json_response(text, len))) return MHD_NO;
    if (session_id) MHD_add_response_header(r, "Mcp-Session-Id", session_id);
    return bb_reply_queue(req, status, r);
}

static enum MHD_Result reply_rpc(bb_req *req, unsigned status, json_t *msg, const char *session_id)
{
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    return reply_text(req, status, text, text ? strlen(text) : 0, session_id);
}

/* A refusal before any JSON-RPC message ran: HTTP status + an error object
 * without id.  extra_name/value: one more header (Allow, WWW-Authenticate). */
static enum MHD_Result refuse(bb_req *req, unsigned status, int code, const char *message, const char *extra_name,
                              const char *extra_value)
{
    bb_debug("mcp", "%s %s -> %u: %s", req->method, req->path, status, message);
    return bb_reply_json_hdr(req, status, bb_mcp_error_response(NULL, code, message, NULL), extra_name, extra_value);
}

/* ---- header checks ---- */

/* Does a comma-separated header list a media type (parameters ignored)? */
static bool lists_media_type(const char *header, const char *type)
{
    size_t tl = strlen(type);
    const char *p = header;
    if (!header) return false;
    while (*p) {
        const char *end = p;
        size_t n;
        while (*p == ' ' || *p == '\t') p++;
        end = p;
        while (*end && *end != ',' && *end != ';') end++;
        n = (size_t)(end - p);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        if (n == tl && strncasecmp(p, type, tl) == 0) return true;
        while (*end && *end != ',') end++;
        p = *end ? end + 1 : end;
    }
    return false;
}

static bool in_list(const char *const *items, size_t n, const char *value, size_t value_len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(items[i]) == value_len && strncasecmp(items[i], value, value_len) == 0) return true;
    return false;
}

/* Host without its port: "[::1]:8080" -> "[::1]", "localhost:80" -> "localhost". */
static bool host_allowed(const bb_settings *set, const char *host)
{
    size_t n;
    if (!host) return true;   /* HTTP/1.0 without Host: not a browser, nothing to rebind */
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (!close) return false;
        n = (size_t)(close - host + 1);
    } else {
        const char *colon = strchr(host, ':');
        n = colon ? (size_t)(colon - host) : strlen(host);
    }
    return n > 0 && in_list(set->mcp_hosts, set->n_mcp_hosts, host, n);
}

static bool origin_allowed(const bb_settings *set, const char *origin)
{
    return !origin || in_list(set->mcp_origins, set->n_mcp_origins, origin, strlen(origin));
}

/* ---- the caller and the session ---- */

typedef struct caller {
    bb_principal who;
    bb_session   session;
    bool         has_session;
    bb_mcp_version version;        /* of this request: header, else negotiated */
} caller;

/* Fills c->who, or answers and returns false. */
static bool authenticate(bb_req *req, const bb_settings *set, caller *c, enum MHD_Result *answered)
{
    bb_call call = bb_req_call(req);
    bb_error err;
    const char *key;
    bb_status st;
    memset(&c->who, 0, sizeof c->who);
    if (set->mcp_auth_none) {
        c->who.ok = true;
        snprintf(c->who.team, sizeof c->who.team, "%s", bb_cfg_str(set->root, "mcp.team", "default"));
        return true;
    }
    key = bb_auth_presented(req);
    if (!key || !*key) {
        *answered = refuse(req, 401, BB_RPC_INVALID_REQUEST,
                           "a team API key is required: Authorization: Bearer <key>", "WWW-Authenticate",
                           "Bearer realm=\"botboard\"");
        return false;
    }
    bb_error_clear(&err);
    st = bb_auth_key(req->srv, &call, key, &c->who, &err);
    if (st == BB_NOT_FOUND) {
        *answered = refuse(req, 401, BB_RPC_INVALID_REQUEST, err.msg, "WWW-Authenticate", "Bearer realm=\"botboard\"");
        return false;
    }
    if (st != BB_OK) {
        *answered = refuse(req, 503, BB_RPC_INTERNAL, "the key store is unavailable; retry shortly", "Retry-After", "1");
        return false;
    }
    return true;
}

/* The session named by Mcp-Session-Id, of the caller's team; and the
 * request's protocol version.  Answers and returns false otherwise. */
static bool load_session(bb_req *req, caller *c, enum MHD_Result *answered)
{
    const char *id = bb_req_header(req, "Mcp-Session-Id");
    const char *pv = bb_req_header(req, "MCP-Protocol-Version");
    bb_call call = bb_req_call(req);
    bb_error err;
    bb_status st;
    if (!id || !*id) {
        *answered = refuse(req, 400, BB_RPC_INVALID_REQUEST, "Mcp-Session-Id header is required (call initialize first)",
                           NULL, NULL);
        return false;
    }
    if (pv && !bb_mcp_version_parse(pv)) {
        char msg[160];
        snprintf(msg, sizeof msg, "unsupported MCP-Protocol-Version '%.40s' (supported: 2025-11-25, 2025-06-18, 2025-03-26)", pv);
        *answered = refuse(req, 400, BB_RPC_INVALID_REQUEST, msg, NULL, NULL);
        return false;
    }
    bb_error_clear(&err);
    memset(&c->session, 0, sizeof c->session);
    st = bb_session_load(req->srv->sessions, &call, id, &c->session, &err);
    if (st == BB_NOT_FOUND) {
        *answered = refuse(req, 404, BB_RPC_INVALID_REQUEST, "unknown or expired session: initialize a new one", NULL, NULL);
        return false;
    }
    if (st != BB_OK) {
        *answered = refuse(req, 503, BB_RPC_INTERNAL, "the session store is unavailable; retry shortly", "Retry-After", "1");
        return false;
    }
    c->has_session = true;
    if (strcmp(c->session.team, c->who.team) != 0) {
        *answered = refuse(req, 403, BB_RPC_INVALID_REQUEST, "this session belongs to another team's API key", NULL, NULL);
        return false;
    }
    /* Missing header: the negotiated version; any supported one is accepted (MCP.md 10). */
    c->version = pv ? bb_mcp_version_parse(pv) : bb_mcp_version_parse(c->session.protocol);
    if (!c->version) c->version = BB_MCP_2025_03_26;
    return true;
}

/* ---- POST ---- */

/* Notifications a handler sends before its result: kept in order, sent as
 * SSE events ahead of the response. */
typedef struct post_state { json_t *notes; } post_state;

static void collect_notify(bb_mcp_ctx *ctx, const char *method, json_t *params)
{
    post_state *ps = ctx->transport;
    json_t *n = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
    if (n && params) json_object_set(n, "params", params);
    json_decref(params);
    if (!n) return;
    if (!ps->notes && !(ps->notes = json_array())) { json_decref(n); return; }
    json_array_append_new(ps->notes, n);
}

static bool sse_append(char **buf, size_t *len, size_t *cap, const char *id, const char *data)
{
    size_t need = strlen(id) + strlen(data) + 40;
    int w;
    if (*len + need > *cap) {
        size_t nc = *cap ? *cap : 1024;
        char *p;
        while (nc < *len + need) nc *= 2;
        if (!(p = realloc(*buf, nc))) return false;
        *buf = p;
        *cap = nc;
    }
    if (data[0]) w = snprintf(*buf + *len, *cap - *len, "id: %s\nevent: message\ndata: %s\n\n", id, data);
    else w = snprintf(*buf + *len, *cap - *len, "id: %s\ndata: \n\n", id);
    *len += (size_t)w;
    return true;
}

/* The call sent notifications first: answer as one finished SSE stream.
 * response: the JSON text of the answer (consumed), or NULL. */
static enum MHD_Result reply_sse(bb_req *req, bb_mcp_version v, json_t *notes, char *response)
{
    char prefix[64], id[96], *buf = NULL, *text;
    size_t len = 0, cap = 0, i;
    unsigned k = 0;
    json_t *n;
    bool ok = true;
    struct MHD_Response *r;
    bb_mcp_post_stream_id(req->srv->mcp, prefix, sizeof prefix);
    if (v >= BB_MCP_2025_11_25) {   /* priming event (MCP.md 6) */
        snprintf(id, sizeof id, "%s-%u", prefix, k++);
        ok = sse_append(&buf, &len, &cap, id, "");
    }
    json_array_foreach(notes, i, n) {
        if (!ok) break;
        text = json_dumps(n, JSON_COMPACT);
        snprintf(id, sizeof id, "%s-%u", prefix, k++);
        ok = text && sse_append(&buf, &len, &cap, id, text);
        free(text);
    }
    if (ok && response) {
        snprintf(id, sizeof id, "%s-%u", prefix, k++);
        ok = sse_append(&buf, &len, &cap, id, response);
    }
    json_decref(notes);
    free(response);
    if (!ok) { free(buf); return bb_reply_error(req, 500, "SERVER_ERROR", "out of memory", NULL); }
    r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(buf); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    return bb_reply_queue(req, 200, r);
}

static void ctx_init(bb_mcp_ctx *ctx, bb_req *req, caller *c, post_state *ps)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->srv = req->srv;
    ctx->call = bb_req_call(req);
    ctx->version = c->version;
    /* Plain copies of same-sized (or smaller) NUL-terminated arrays: this
     * runs on every request, and snprintf costs more than the rest of it. */
    _Static_assert(sizeof ctx->team == sizeof c->who.team, "team buffers differ");
    _Static_assert(sizeof ctx->rate_identity >= sizeof c->who.key_id, "rate identity too small");
    memcpy(ctx->team, c->who.team, sizeof ctx->team);
    if (c->who.key_id[0]) memcpy(ctx->rate_identity, c->who.key_id, sizeof c->who.key_id);
    else snprintf(ctx->rate_identity, sizeof ctx->rate_identity, "team:%.*s", BB_ID_MAX, c->who.team);
    ctx->session = &c->session;
    ctx->notify = collect_notify;
    ctx->transport = ps;
}

static enum MHD_Result post_initialize(bb_req *req, caller *c, json_t *body)
{
    json_t *id = json_object_get(body, "id"), *result;
    const char *old = bb_req_header(req, "Mcp-Session-Id");
    bb_call call = bb_req_call(req);
    bb_mcp_ctx ctx;
    post_state ps = { NULL };
    bb_mcp_error err;
    bb_error serr;
    enum MHD_Result ret;

    if (!json_is_string(id) && !json_is_integer(id))
        return reply_rpc(req, 400, bb_mcp_error_response(NULL, BB_RPC_INVALID_REQUEST,
                                                         "the request id must be a string or an integer", NULL), NULL);
    if (!json_is_string(json_object_get(body, "jsonrpc")) ||
        strcmp(json_string_value(json_object_get(body, "jsonrpc")), "2.0") != 0)
        return reply_rpc(req, 400, bb_mcp_error_response(id, BB_RPC_INVALID_REQUEST, "jsonrpc must be \"2.0\"", NULL), NULL);
    if (old && *old) {
        bb_session live;
        memset(&live, 0, sizeof live);
        bb_error_clear(&serr);
        if (bb_session_load(req->srv->sessions, &call, old, &live, &serr) == BB_OK) {
            bb_session_clear(&live);
            return reply_rpc(req, 400, bb_mcp_error_response(id, BB_RPC_INVALID_REQUEST,
                                                             "this session is already initialized", NULL), NULL);
        }
    }
    memset(&c->session, 0, sizeof c->session);
    snprintf(c->session.team, sizeof c->session.team, "%s", c->who.team);
    snprintf(c->session.key_id, sizeof c->session.key_id, "%s", c->who.key_id);
    c->version = BB_MCP_LATEST;
    ctx_init(&ctx, req, c, &ps);
    memset(&err, 0, sizeof err);
    result = bb_mcp_initialize(&ctx, json_object_get(body, "params"), &err);
    json_decref(ps.notes);
    if (!result) {
        if (!err.message[0]) snprintf(err.message, sizeof err.message, "internal error");
        return reply_rpc(req, 200, bb_mcp_error_response(id, err.code, err.message, err.data), NULL);
    }
    json_decref(err.data);
    bb_error_clear(&serr);
    if (bb_session_create(req->srv->sessions, &call, &c->session, &serr) != BB_OK) {
        json_decref(result);
        bb_session_clear(&c->session);
        bb_warn("mcp", "cannot create a session: %s", serr.msg);
        return refuse(req, 503, BB_RPC_INTERNAL, "the session store is unavailable; retry shortly", "Retry-After", "1");
    }
    bb_info("mcp", "session opened for team %s (%s %s, protocol %s)", c->session.team,
            c->session.client_name[0] ? c->session.client_name : "unnamed client", c->session.client_version,
            c->session.protocol);
    ret = reply_rpc(req, 200, json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result),
                    c->session.id);
    bb_session_clear(&c->session);
    return ret;
}

static enum MHD_Result do_post(bb_req *req, caller *c)
{
    const char *accept = bb_req_header(req, "Accept"), *ctype = bb_req_header(req, "Content-Type");
    json_t *body;
    json_error_t jerr;
    bb_mcp_ctx ctx;
    post_state ps = { NULL };
    bb_jw out = { 0 };
    bool reject = false, answered;
    char *text;
    size_t len = 0;
    enum MHD_Result ret;

    if (!lists_media_type(accept, "application/json") || !lists_media_type(accept, "text/event-stream"))
        return refuse(req, 406, BB_RPC_INVALID_REQUEST, "Accept must list application/json and text/event-stream",
                      NULL, NULL);
    if (!lists_media_type(ctype, "application/json"))
        return refuse(req, 415, BB_RPC_INVALID_REQUEST, "Content-Type must be application/json", NULL, NULL);
    body = req->body ? bb_json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!body) return reply_rpc(req, 400, bb_mcp_parse_error(req->body ? jerr.text : "empty body"), NULL);

    if (bb_mcp_body_shape(body) == BB_MCP_SHAPE_INITIALIZE) {
        ret = post_initialize(req, c, body);
        json_decref(body);
        return ret;
    }
    if (!load_session(req, c, &ret)) {
        json_decref(body);
        return ret;
    }
    ctx_init(&ctx, req, c, &ps);
    answered = bb_mcp_handle_body(&ctx, body, &reject, &out);
    json_decref(body);
    if (ctx.session_dirty) {
        bb_call call = bb_req_call(req);
        bb_error err;
        bb_error_clear(&err);
        if (bb_session_save(req->srv->sessions, &call, &c->session, &err) != BB_OK)
            bb_warn("mcp", "could not save the session: %s", err.msg);
        bb_mcp_stream_sync(req->srv->mcp, &c->session);
    }
    if (!answered) {   /* notifications or responses only (MCP.md 5) */
        bb_jw_free(&out);
        json_decref(ps.notes);
        return bb_reply_empty(req, 202);
    }
    text = bb_jw_finish(&out, &len);
    if (reject) {
        json_decref(ps.notes);
        return reply_text(req, 400, text, len, NULL);
    }
    if (ps.notes && text) return reply_sse(req, c->version, ps.notes, text);
    json_decref(ps.notes);
    return reply_text(req, 200, text, len, NULL);
}

/* ---- GET, DELETE ---- */

static enum MHD_Result do_get(bb_req *req, caller *c)
{
    enum MHD_Result ret;
    if (!lists_media_type(bb_req_header(req, "Accept"), "text/event-stream"))
        return refuse(req, 406, BB_RPC_INVALID_REQUEST, "GET opens an event stream: Accept must list text/event-stream",
                      NULL, NULL);
    if (!load_session(req, c, &ret)) return ret;
    return bb_mcp_stream_open(req->srv->mcp, req, &c->session, c->version, bb_req_header(req, "Last-Event-ID"));
}

static enum MHD_Result do_delete(bb_req *req, caller *c)
{
    bb_call call = bb_req_call(req);
    bb_error err;
    enum MHD_Result ret;
    if (!load_session(req, c, &ret)) return ret;
    bb_error_clear(&err);
    if (bb_session_end(req->srv->sessions, &call, c->session.id, &err) != BB_OK)
        return refuse(req, 503, BB_RPC_INTERNAL, "the session store is unavailable; retry shortly", "Retry-After", "1");
    bb_mcp_stream_forget(req->srv->mcp, c->session.id);
    bb_info("mcp", "session ended by the client (team %s)", c->session.team);
    return bb_reply_empty(req, 200);
}

enum MHD_Result bb_h_mcp(bb_req *req)
{
    const bb_settings *set = bb_settings_now(req->srv);
    enum MHD_Result ret;
    caller c;
    bool post = strcmp(req->method, "POST") == 0, get = strcmp(req->method, "GET") == 0,
         del = strcmp(req->method, "DELETE") == 0;

    if (!post && !get && !del)
        return refuse(req, 405, BB_RPC_INVALID_REQUEST, "method not allowed on the MCP endpoint", "Allow", ALLOW);
    if (!host_allowed(set, bb_req_header(req, "Host")))
        return refuse(req, 403, BB_RPC_INVALID_REQUEST, "Host is not allowed (mcp.allowed_hosts)", NULL, NULL);
    if (!origin_allowed(set, bb_req_header(req, "Origin")))
        return refuse(req, 403, BB_RPC_INVALID_REQUEST, "Origin is not allowed (mcp.allowed_origins)", NULL, NULL);
    if (!req->srv->mcp || !req->srv->sessions)
        return refuse(req, 503, BB_RPC_INTERNAL, "MCP is not available", "Retry-After", "1");
    memset(&c, 0, sizeof c);
    if (!authenticate(req, set, &c, &ret)) return ret;
    if (post) ret = do_post(req, &c);
    else if (get) ret = do_get(req, &c);
    else ret = do_delete(req, &c);
    if (c.has_session) bb_session_clear(&c.session);
    return ret;
}
