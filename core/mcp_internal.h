/*
 * core/mcp_internal.h — what the MCP transport files share among
 * themselves (mcp_rpc.c, mcp_http.c, mcp_stdio.c, mcp_stream.c).  The
 * surface only sees core/mcp.h.
 */
#ifndef BB_CORE_MCP_INTERNAL_H
#define BB_CORE_MCP_INTERNAL_H

#include "mcp.h"

/* ---- mcp_rpc.c: framing shared by both transports ---- */

/* How a parsed body looks before it is handled. */
typedef enum bb_mcp_shape {
    BB_MCP_SHAPE_INITIALIZE,   /* one initialize request (object with an id) */
    BB_MCP_SHAPE_OTHER,        /* anything else: one message or a batch */
} bb_mcp_shape;

bb_mcp_shape bb_mcp_body_shape(const json_t *body);

/* Handle a whole body (one message, or a batch when ctx->version allows it).
 * Appends the response to send (object or array) to *out as JSON text and
 * returns true, or returns false when nothing is to be answered (only
 * notifications/responses).  *reject is set when the body as a whole was
 * refused (a batch under a version without batches, an empty batch): the
 * transport answers 400 with it.  Out of memory shows as out->oom. */
bool bb_mcp_handle_body(bb_mcp_ctx *ctx, json_t *body, bool *reject, bb_jw *out);

/* A parse-error response (-32700, no id) for a body that is not JSON. */
json_t *bb_mcp_parse_error(const char *why);

/* ---- mcp_stream.c: per-session server->client streams ---- */

/* struct bb_mcp (declared in server.h) lives in mcp_stream.c. */
struct bb_mcp *bb_mcp_new(bb_server *srv, char *why, size_t why_len);
/* End every stream (shutdown): their requests then complete. */
void bb_mcp_shutdown(struct bb_mcp *m);
void bb_mcp_free(struct bb_mcp *m);

/* After a request changed a session (subscriptions), or on GET: keep the
 * in-memory copy that event delivery matches against. */
void bb_mcp_stream_sync(struct bb_mcp *m, const bb_session *s);
/* DELETE: close the session's stream and forget its buffer. */
void bb_mcp_stream_forget(struct bb_mcp *m, const char *session_id);
/* GET: answer with the session's SSE stream (replaying after last_event_id
 * when it names a buffered event of that stream). */
enum MHD_Result bb_mcp_stream_open(struct bb_mcp *m, bb_req *req, const bb_session *s, bb_mcp_version v,
                                   const char *last_event_id);
/* A new POST SSE stream's id prefix ("p-<epoch>-<n>"); its events are
 * "<prefix>-<i>", unique per session. */
void bb_mcp_post_stream_id(struct bb_mcp *m, char *out, size_t len);

#endif
