/*
 * core/mcp_rpc.c — JSON-RPC 2.0 for MCP: message shape checks, errors,
 * batches, version negotiation, the lifecycle methods, and dispatch through
 * one table (the core's rows, then the surface's).  Both transports call
 * bb_mcp_initialize and bb_mcp_handle_body; nothing here knows HTTP.
 */
#include "mcp_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- versions ---- */

static const struct { bb_mcp_version v; const char *name; } versions[] = {
    { BB_MCP_2025_03_26, "2025-03-26" },
    { BB_MCP_2025_06_18, "2025-06-18" },
    { BB_MCP_2025_11_25, "2025-11-25" },
};

bb_mcp_version bb_mcp_version_parse(const char *s)
{
    if (!s) return 0;
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
        if (strcmp(s, versions[i].name) == 0) return versions[i].v;
    return 0;
}

const char *bb_mcp_version_name(bb_mcp_version v)
{
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
        if (versions[i].v == v) return versions[i].name;
    return versions[sizeof versions / sizeof versions[0] - 1].name;
}

/* ---- errors ---- */

json_t *bb_mcp_error_response(json_t *id, int code, const char *message, json_t *data)
{
    json_t *err = json_pack("{s:i, s:s}", "code", code, "message", message && *message ? message : "error");
    json_t *msg;
    if (!err) { json_decref(data); return NULL; }
    if (data) json_object_set_new(err, "data", data);
    msg = json_pack("{s:s, s:o}", "jsonrpc", "2.0", "error", err);
    if (msg && id) json_object_set(msg, "id", id);   /* no usable id: omitted, never null (MCP.md 15) */
    return msg;
}

json_t *bb_mcp_parse_error(const char *why)
{
    char msg[256];
    snprintf(msg, sizeof msg, "parse error: %s", why && *why ? why : "the body is not JSON");
    return bb_mcp_error_response(NULL, BB_RPC_PARSE_ERROR, msg, NULL);
}

/* ---- lifecycle methods (the core's rows of the method table) ---- */

static json_t *m_ping(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err)
{
    (void)ctx; (void)params; (void)err;
    return json_object();
}

static json_t *m_initialized(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err)
{
    (void)params; (void)err;
    if (ctx->session && !ctx->session->initialized) {
        ctx->session->initialized = true;
        ctx->session_dirty = true;
    }
    return json_object();
}

/* Handlers run to completion before the next message is read, so there is
 * nothing in flight to stop; the notification is accepted and logged. */
static json_t *m_cancelled(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err)
{
    json_t *rid = json_object_get(params, "requestId");
    (void)ctx; (void)err;
    if (json_is_string(rid)) bb_debug("mcp", "client cancelled request %s", json_string_value(rid));
    else if (json_is_integer(rid)) bb_debug("mcp", "client cancelled request %lld", (long long)json_integer_value(rid));
    return json_object();
}

static const bb_mcp_method core_methods[] = {
    { "ping",                      m_ping,        BB_MCP_BEFORE_INIT, NULL },
    { "notifications/initialized", m_initialized, BB_MCP_BEFORE_INIT, NULL },
    { "notifications/cancelled",   m_cancelled,   BB_MCP_BEFORE_INIT, NULL },
    { NULL, NULL, 0, NULL }
};

static const bb_mcp_method *find_method(const char *name)
{
    for (const bb_mcp_method *m = core_methods; m->name; m++)
        if (strcmp(m->name, name) == 0) return m;
    for (const bb_mcp_method *m = bb_mcp_surface_methods; m->name; m++)
        if (strcmp(m->name, name) == 0) return m;
    return NULL;
}

/* ---- initialize ---- */

json_t *bb_mcp_initialize(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err)
{
    json_t *pv = json_object_get(params, "protocolVersion"), *info, *result, *server, *caps;
    bb_mcp_version v;
    if (!json_is_object(params) || !json_is_string(pv)) {
        err->code = BB_RPC_INVALID_PARAMS;
        snprintf(err->message, sizeof err->message, "initialize: params.protocolVersion must be a string");
        err->data = json_pack("{s:s}", "field", "protocolVersion");
        return NULL;
    }
    /* Echo a supported version, otherwise offer the latest (MCP.md 18). */
    v = bb_mcp_version_parse(json_string_value(pv));
    if (!v) v = BB_MCP_LATEST;
    ctx->version = v;
    info = json_object_get(params, "clientInfo");
    if (ctx->session) {
        snprintf(ctx->session->protocol, sizeof ctx->session->protocol, "%s", bb_mcp_version_name(v));
        if (json_is_object(info)) {
            const char *n = json_string_value(json_object_get(info, "name"));
            const char *ver = json_string_value(json_object_get(info, "version"));
            snprintf(ctx->session->client_name, sizeof ctx->session->client_name, "%s", n ? n : "");
            snprintf(ctx->session->client_version, sizeof ctx->session->client_version, "%s", ver ? ver : "");
        }
        ctx->session_dirty = true;
    }
    server = json_pack("{s:s, s:s}", "name", "botboard", "version", PACKAGE_VERSION);
    if (server && v >= BB_MCP_2025_06_18) json_object_set_new(server, "title", json_string("BotBoard"));
    caps = bb_mcp_capabilities(v);
    if (!server || !caps) {
        json_decref(server);
        json_decref(caps);
        err->code = BB_RPC_INTERNAL;
        snprintf(err->message, sizeof err->message, "out of memory");
        return NULL;
    }
    result = json_pack("{s:s, s:o, s:o}", "protocolVersion", bb_mcp_version_name(v), "capabilities", caps,
                       "serverInfo", server);
    if (result && bb_mcp_instructions() && *bb_mcp_instructions())
        json_object_set_new(result, "instructions", json_string(bb_mcp_instructions()));
    bb_debug("mcp", "initialize: client asked %s, serving %s", json_string_value(pv), bb_mcp_version_name(v));
    return result;
}

/* ---- one message ---- */

/* A usable request id: a string or an integer (0 is valid), never null,
 * a float or a boolean (MCP.md 14). */
static bool id_ok(const json_t *id) { return json_is_string(id) || json_is_integer(id); }

bb_mcp_shape bb_mcp_body_shape(const json_t *body)
{
    const char *m = json_string_value(json_object_get(body, "method"));
    if (json_is_object(body) && m && strcmp(m, "initialize") == 0 && json_object_get(body, "id"))
        return BB_MCP_SHAPE_INITIALIZE;
    return BB_MCP_SHAPE_OTHER;
}

/* Append a response built as a tree (errors): consumed. */
static bool put(bb_jw *out, json_t *msg)
{
    if (!msg) { out->oom = true; return true; }
    bb_jw_json(out, msg);
    json_decref(msg);
    return true;
}

static bool invalid(bb_jw *out, json_t *id, const char *msg)
{
    return put(out, bb_mcp_error_response(id, BB_RPC_INVALID_REQUEST, msg, NULL));
}

/* Run the method and write its result object; false with *err filled. */
static bool run_method(const bb_mcp_method *m, bb_mcp_ctx *ctx, json_t *params, bb_jw *out, bb_mcp_error *err)
{
    json_t *result;
    if (m->text) return m->text(ctx, params, out, err);
    if (!(result = m->fn(ctx, params, err))) return false;
    if (!json_is_object(result)) {
        json_decref(result);
        bb_warn("mcp", "%s returned a non-object result", m->name);
        err->code = BB_RPC_INTERNAL;
        snprintf(err->message, sizeof err->message, "internal error");
        return false;
    }
    bb_jw_json(out, result);
    json_decref(result);
    return true;
}

bool bb_mcp_handle_text(bb_mcp_ctx *ctx, json_t *msg, bb_jw *out)
{
    json_t *id, *method, *params, *none = NULL;
    const bb_mcp_method *m;
    bb_mcp_error err;
    bool is_request, ok;
    size_t mark;

    if (!json_is_object(msg)) return invalid(out, NULL, "a JSON-RPC message must be an object");
    id = json_object_get(msg, "id");
    method = json_object_get(msg, "method");
    is_request = id != NULL;
    if (is_request && !id_ok(id))
        return invalid(out, NULL, "the request id must be a string or an integer");
    if (!json_is_string(json_object_get(msg, "jsonrpc")) || strcmp(json_string_value(json_object_get(msg, "jsonrpc")), "2.0") != 0)
        return is_request || method ? invalid(out, id, "jsonrpc must be \"2.0\"") : false;
    if (!method) {
        /* A response from the client (we send no requests, so nothing waits for it). */
        if (json_object_get(msg, "result") || json_object_get(msg, "error")) return false;
        return invalid(out, id, "a JSON-RPC message needs a method (or a result/error)");
    }
    if (!json_is_string(method)) return invalid(out, id, "method must be a string");
    params = json_object_get(msg, "params");
    if (params && !json_is_object(params) && !json_is_array(params))
        return is_request ? invalid(out, id, "params must be an object") : false;

    if (strcmp(json_string_value(method), "initialize") == 0)
        return is_request ? invalid(out, id, "the session is already initialized (initialize is only allowed once, "
                                             "and never inside a batch)") : false;
    m = find_method(json_string_value(method));
    if (!m) {
        char text[256];
        if (!is_request) return false;   /* unknown notifications are ignored */
        snprintf(text, sizeof text, "method not found: %.200s", json_string_value(method));
        return put(out, bb_mcp_error_response(id, BB_RPC_METHOD_NOT_FOUND, text, NULL));
    }
    if (ctx->session && !ctx->session->initialized && !(m->flags & BB_MCP_BEFORE_INIT))
        return is_request ? invalid(out, id, "send notifications/initialized before other requests") : false;
    if (params && !json_is_object(params))
        return is_request ? put(out, bb_mcp_error_response(id, BB_RPC_INVALID_PARAMS, "params must be an object",
                                                           json_pack("{s:s}", "field", "params"))) : false;
    /* Handlers always see an object. */
    if (!params && !(params = none = json_object())) { out->oom = true; return is_request; }

    /* The frame first, the result straight after it: one buffer, no copy. */
    memset(&err, 0, sizeof err);
    err.code = BB_RPC_INTERNAL;
    mark = out->n;
    BB_JW_LIT(out, "{\"jsonrpc\":\"2.0\",\"id\":");
    bb_jw_json(out, id);
    BB_JW_LIT(out, ",\"result\":");
    ok = run_method(m, ctx, params, out, &err);
    json_decref(none);
    if (!is_request) {
        bb_jw_truncate(out, mark);
        json_decref(err.data);
        return false;
    }
    if (!ok) {
        bb_jw_truncate(out, mark);
        if (!err.message[0]) snprintf(err.message, sizeof err.message, "internal error");
        return put(out, bb_mcp_error_response(id, err.code, err.message, err.data));
    }
    json_decref(err.data);
    BB_JW_LIT(out, "}");
    return true;
}

json_t *bb_mcp_handle(bb_mcp_ctx *ctx, json_t *msg)
{
    bb_jw b = { 0 };
    char *text;
    size_t len;
    json_t *tree;
    if (!bb_mcp_handle_text(ctx, msg, &b)) { bb_jw_free(&b); return NULL; }
    if (!(text = bb_jw_finish(&b, &len))) return NULL;
    tree = json_loadb(text, len, 0, NULL);
    free(text);
    return tree;
}

/* ---- a body: one message or a batch ---- */

bool bb_mcp_handle_body(bb_mcp_ctx *ctx, json_t *body, bool *reject, bb_jw *out)
{
    size_t i, mark = out->n;
    json_t *msg;
    bool any = false;
    *reject = false;
    if (!json_is_array(body)) return bb_mcp_handle_text(ctx, body, out);
    /* Batches exist only in 2025-03-26 (MCP.md 4). */
    if (ctx->version != BB_MCP_2025_03_26) {
        *reject = true;
        return invalid(out, NULL, "JSON-RPC batches are only allowed under protocol version 2025-03-26");
    }
    if (json_array_size(body) == 0) {
        *reject = true;
        return invalid(out, NULL, "an empty batch is not a valid request");
    }
    BB_JW_LIT(out, "[");
    json_array_foreach(body, i, msg) {
        size_t before = out->n;
        if (any) BB_JW_LIT(out, ",");
        if (bb_mcp_handle_text(ctx, msg, out)) any = true;
        else bb_jw_truncate(out, before);
    }
    if (!any) { bb_jw_truncate(out, mark); return false; }
    BB_JW_LIT(out, "]");
    return true;
}
