/*
 * core/mcp.h — the MCP core, shared by the two transports and the surface.
 *
 *   transports: mcp_http.c (Streamable HTTP on mcp.path: POST/GET/DELETE,
 *               sessions, SSE streams, Origin/Host checks), mcp_stdio.c
 *               (`botboard mcp-stdio`, newline-delimited JSON-RPC)
 *   protocol:   mcp_rpc.c — JSON-RPC 2.0 framing and errors, batches,
 *               version negotiation, lifecycle (initialize, initialized,
 *               ping), method dispatch through one table
 *   surface:    mcp_tools.c, mcp_resources.c, mcp_prompts.c,
 *               mcp_complete.c — definitions are data tables; handlers reach
 *               posts only through the configured upstream plugin
 *
 * A method handler gets a context (who, which session, which version) and
 * the request's params; it returns a result object or fills an error.
 * Both transports run the same handlers.
 */
#ifndef BB_CORE_MCP_H
#define BB_CORE_MCP_H

#include <jansson.h>
#include <stdbool.h>

#include "events.h"
#include "jsonw.h"
#include "server.h"
#include "sessions.h"

/* Protocol versions, comparable: newer is larger. */
typedef enum bb_mcp_version {
    BB_MCP_2025_03_26 = 1,
    BB_MCP_2025_06_18 = 2,
    BB_MCP_2025_11_25 = 3
} bb_mcp_version;

#define BB_MCP_LATEST BB_MCP_2025_11_25

/* "2025-06-18" -> BB_MCP_2025_06_18; 0 when unsupported. */
bb_mcp_version bb_mcp_version_parse(const char *s);
const char    *bb_mcp_version_name(bb_mcp_version v);

/* JSON-RPC error codes (MCP.md 16). */
enum {
    BB_RPC_PARSE_ERROR      = -32700,
    BB_RPC_INVALID_REQUEST  = -32600,
    BB_RPC_METHOD_NOT_FOUND = -32601,
    BB_RPC_INVALID_PARAMS   = -32602,
    BB_RPC_INTERNAL         = -32603,
    BB_RPC_RESOURCE_UNKNOWN = -32002
};

typedef struct bb_mcp_error {
    int     code;          /* BB_RPC_* */
    char    message[256];
    json_t *data;          /* optional, stolen by the framer */
} bb_mcp_error;

typedef struct bb_mcp_ctx bb_mcp_ctx;

/* Send a notification to the client before the result (logging/message,
 * progress).  Over HTTP the transport then answers as text/event-stream;
 * over stdio it writes the line at once.  params is stolen. */
typedef void (*bb_mcp_notify_fn)(bb_mcp_ctx *ctx, const char *method, json_t *params);

struct bb_mcp_ctx {
    bb_server        *srv;
    bb_call           call;          /* request id for logs, deadline */
    bb_mcp_version    version;       /* negotiated */
    char              team[BB_TEAM_MAX];
    char              rate_identity[BB_ID_MAX + 8];  /* API key id, or "team:<name>" without a key */
    bb_session       *session;       /* the caller's session (loaded by the transport) */
    bool              session_dirty; /* a handler changed *session: the transport saves it */
    bb_mcp_notify_fn  notify;
    void             *transport;     /* the transport's own state */
};

/* A method handler: return a new reference to the result object, or NULL
 * with *err filled (code + message; data optional). */
typedef json_t *(*bb_mcp_method_fn)(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err);
/* A hot-path handler (tools/list, tools/call) writes its result object as
 * JSON text into *out instead of building a tree: no per-value allocation,
 * no second pass to print.  Returns false with *err filled; whatever it
 * wrote is then dropped. */
typedef bool (*bb_mcp_text_fn)(bb_mcp_ctx *ctx, json_t *params, bb_jw *out, bb_mcp_error *err);

enum {
    BB_MCP_BEFORE_INIT = 1u << 0   /* allowed before notifications/initialized (ping, logging) */
};

typedef struct bb_mcp_method {
    const char      *name;         /* "tools/call" */
    bb_mcp_method_fn fn;           /* exactly one of fn and text is set */
    unsigned         flags;
    bb_mcp_text_fn   text;
} bb_mcp_method;

/* ---- surface (mcp_tools.c, mcp_resources.c, mcp_prompts.c, mcp_complete.c) ---- */

/* The surface's methods: tools/list, tools/call, resources/list,
 * resources/templates/list, resources/read, resources/subscribe,
 * resources/unsubscribe, prompts/list, prompts/get, completion/complete,
 * logging/setLevel.  Terminated by a row with name == NULL. */
extern const bb_mcp_method bb_mcp_surface_methods[];

/* Capabilities object for initialize, for the negotiated version: exactly
 * what the surface implements. */
json_t *bb_mcp_capabilities(bb_mcp_version v);
/* A short guide for agents (initialize's `instructions`). */
const char *bb_mcp_instructions(void);

/* Does a post event concern a subscribed resource URI?  (feed: any post of
 * the team; a thread: posts of that thread; an agent's posts: by that
 * author; a post: that post.)  Unknown URIs never match. */
bool bb_mcp_uri_matches(const char *uri, const char *team, const bb_post_event *ev);

/* Log to the client (notifications/message) if the session asked for this
 * level or lower (logging/setLevel).  level: "debug".."emergency". */
void bb_mcp_log(bb_mcp_ctx *ctx, const char *level, const char *logger, json_t *data);

/* ---- protocol (mcp_rpc.c) ---- */

/* Handle one parsed JSON-RPC message (object, not batch): append the
 * response to *out as compact JSON text and return true, or return false
 * for a notification or a response from the client (nothing to send).
 * Out of memory shows as out->oom.  initialize is answered by the
 * transport (it creates the session) and never reaches here. */
bool bb_mcp_handle_text(bb_mcp_ctx *ctx, json_t *msg, bb_jw *out);
/* The same as a tree (new reference, NULL when nothing is to be sent), for
 * callers that look into the answer rather than send it. */
json_t *bb_mcp_handle(bb_mcp_ctx *ctx, json_t *msg);

/* initialize: negotiate (echo a supported requested version, else the
 * latest), fill ctx->version and ctx->session's protocol/client fields, and
 * return the result object.  Both transports call it; the HTTP transport
 * then stores the session and sends Mcp-Session-Id. */
json_t *bb_mcp_initialize(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err);

/* Build a JSON-RPC error response; id may be NULL (then omitted). */
json_t *bb_mcp_error_response(json_t *id, int code, const char *message, json_t *data);

#endif
