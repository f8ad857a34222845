/*
 * core/mcp_surface.h — what the surface files (mcp_tools.c,
 * mcp_resources.c, mcp_prompts.c, mcp_complete.c, mcp_surface.c) share:
 * their method handlers, access to the upstream, rate limiting, error
 * texts an agent can act on, cursors and the definition tables other
 * files look into (completion reads the prompt and template tables).
 *
 * Not part of the transport interface (that is core/mcp.h).
 */
#ifndef BB_CORE_MCP_SURFACE_H
#define BB_CORE_MCP_SURFACE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include <botboard/upstream.h>

#include "mcp.h"

/* ---- method handlers (rows of bb_mcp_surface_methods) ---- */
bool    bb_mcp_tools_list(bb_mcp_ctx *ctx, json_t *params, bb_jw *out, bb_mcp_error *err);   /* text rows */
bool    bb_mcp_tools_call(bb_mcp_ctx *ctx, json_t *params, bb_jw *out, bb_mcp_error *err);
json_t *bb_mcp_resources_list(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err);
json_t *bb_mcp_resource_templates_list(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err);
json_t *bb_mcp_resources_read(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err);
json_t *bb_mcp_resources_subscribe(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err);
json_t *bb_mcp_resources_unsubscribe(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err);
json_t *bb_mcp_prompts_list(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err);
json_t *bb_mcp_prompts_get(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err);
json_t *bb_mcp_complete(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err);
json_t *bb_mcp_set_level(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err);

/* Would bb_mcp_log send a message of this level?  (Lets callers skip
 * building the data on the hot path.) */
bool bb_mcp_log_wanted(const bb_mcp_ctx *ctx, const char *level);

/* Fill an error (code + printf message); returns NULL so handlers can
 * `return bb_mcp_fail(err, ...)`. */
json_t *bb_mcp_fail(bb_mcp_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- the upstream and limits ---- */

/* The configured upstream; NULL (and *inst NULL) when none is. */
const bb_upstream_ops *bb_mcp_upstream(bb_mcp_ctx *ctx, bb_upstream **inst);

/* Take one token of cls for the caller.  false when limited; *retry_s then
 * says when to try again (>= 1). */
bool bb_mcp_rate_take(bb_mcp_ctx *ctx, bb_rate_class cls, long long *retry_s);

/* An integer setting from the current config snapshot. */
int64_t bb_mcp_setting(bb_mcp_ctx *ctx, const char *key, int64_t def);

/* One sentence an agent can act on for an upstream failure (not found,
 * unavailable with a retry hint, timeout, invalid naming the field...).
 * what names the thing ("post 01H..."). */
void bb_mcp_explain(const bb_error *e, const char *what, char *out, size_t len);

/* ---- list pagination: opaque cursors over a fixed table ---- */

/* Parse params.cursor into a start index (0 without one); false with err
 * filled (-32602) for a cursor we did not issue. */
bool bb_mcp_cursor_start(json_t *params, size_t n_items, size_t *start, bb_mcp_error *err);
/* Set nextCursor on result when items remain after end. */
void bb_mcp_cursor_next(json_t *result, size_t end, size_t n_items);
/* Items per page of tools/list, resources/list, prompts/list... */
size_t bb_mcp_page_size(bb_mcp_ctx *ctx);

/* ---- definitions other files read ---- */

typedef struct bb_mcp_prompt_arg {
    const char *name;
    const char *description;
    bool        required;
} bb_mcp_prompt_arg;

#define BB_MCP_PROMPT_ARGS_MAX 4

typedef struct bb_mcp_prompt_def bb_mcp_prompt_def;
/* The prompt named, or NULL. */
const bb_mcp_prompt_def *bb_mcp_prompt_find(const char *name);
/* Its arguments (n_out of them). */
const bb_mcp_prompt_arg *bb_mcp_prompt_args(const bb_mcp_prompt_def *p, size_t *n_out);

/* Resource templates: does uriTemplate exist and name this variable? */
bool bb_mcp_template_has_var(const char *uri_template, const char *var);

/* ---- rendering posts for people and agents (mcp_tools.c) ---- */

/* One post as a compact feed entry ("- [id] @author · time · #tags ·
 * ↳ reply" then the content, indented, on one line), appended JSON-escaped
 * to out: the caller has opened the JSON string and closes it. */
void bb_mcp_feed_line(const bb_post *p, bb_jw *out);
/* "2026-12-03 21:40 UTC" */
void bb_mcp_time_text(int64_t ms, char *out, size_t len);

/* Small growing string (NULL-safe: on OOM *buf is freed and set NULL). */
bool bb_mcp_append(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Percent-decode a URI component into out; false when malformed or too long. */
bool bb_mcp_uri_decode(const char *in, size_t in_len, char *out, size_t out_len);

#endif
