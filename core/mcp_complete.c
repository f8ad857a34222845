/*
 * core/mcp_complete.c — completion/complete: agent names, tags and thread
 * (post) ids for prompt arguments and resource-template variables.
 *
 * Which values an argument takes is one table keyed by argument name; the
 * reference must exist (a prompt with that argument, a template with that
 * variable), otherwise the answer is an empty list (MCP.md 32).  A
 * malformed request is -32602.
 */
#include "mcp_surface.h"

#include <stdlib.h>
#include <string.h>

#define COMPLETE_MAX 100   /* MCP.md 32: at most 100 values */

typedef enum value_source { SRC_AUTHOR, SRC_TAG, SRC_THREAD } value_source;

static const struct { const char *arg; value_source src; } sources[] = {
    { "agent_name", SRC_AUTHOR }, { "agentName", SRC_AUTHOR },
    { "tag", SRC_TAG },
    { "thread_id", SRC_THREAD }, { "threadId", SRC_THREAD },
    { "post_id", SRC_THREAD }, { "postId", SRC_THREAD },
};

static bool source_of(const char *arg, value_source *out)
{
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++)
        if (strcmp(sources[i].arg, arg) == 0) { *out = sources[i].src; return true; }
    return false;
}

static bool ref_has_arg(json_t *ref, const char *arg)
{
    const char *type = json_string_value(json_object_get(ref, "type"));
    if (strcmp(type, "ref/prompt") == 0) {
        const bb_mcp_prompt_def *p = bb_mcp_prompt_find(json_string_value(json_object_get(ref, "name")));
        size_t n;
        const bb_mcp_prompt_arg *a;
        if (!p) return false;
        a = bb_mcp_prompt_args(p, &n);
        for (size_t i = 0; i < n; i++)
            if (strcmp(a[i].name, arg) == 0) return true;
        return false;
    }
    return bb_mcp_template_has_var(json_string_value(json_object_get(ref, "uri")), arg);
}

static json_t *result(json_t *values, bool has_more)
{
    json_t *r = json_pack("{s:{s:o, s:I, s:b}}", "completion", "values", values, "total",
                          (json_int_t)json_array_size(values), "hasMore", has_more);
    return r;
}

/* Thread ids: roots of recent threads (top-level posts) starting with prefix. */
static bool thread_ids(bb_mcp_ctx *ctx, const char *prefix, json_t *values)
{
    bb_upstream *inst;
    const bb_upstream_ops *up = bb_mcp_upstream(ctx, &inst);
    bb_post_query q = { 0 };
    bb_post_page pg = { 0 };
    bb_read_meta meta = { 0 };
    bb_error e;
    size_t plen = strlen(prefix);
    if (!up) return false;
    bb_error_clear(&e);
    q.team = ctx->team;
    q.limit = 100;
    if (up->list_posts(inst, &ctx->call, &q, &pg, &meta, &e) != BB_OK) return false;
    for (size_t i = 0; i < pg.n && json_array_size(values) < COMPLETE_MAX; i++) {
        const bb_post *p = &pg.posts[i];
        if (p->parent_id[0] || strncmp(p->id, prefix, plen) != 0) continue;
        json_array_append_new(values, json_string(p->id));
    }
    bb_post_page_clear(&pg);
    return true;
}

json_t *bb_mcp_complete(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err)
{
    json_t *ref = json_object_get(params, "ref"), *argument = json_object_get(params, "argument");
    const char *type = json_string_value(json_object_get(ref, "type"));
    const char *name = json_string_value(json_object_get(argument, "name"));
    const char *value = json_string_value(json_object_get(argument, "value"));
    json_t *values = json_array();
    value_source src;
    long long retry_s;

    if (!values) return bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
    if (!json_is_object(ref) || !type ||
        (strcmp(type, "ref/prompt") == 0 ? !json_is_string(json_object_get(ref, "name"))
         : strcmp(type, "ref/resource") == 0 ? !json_is_string(json_object_get(ref, "uri")) : true)) {
        json_decref(values);
        return bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "ref: must be {type: \"ref/prompt\", name} or "
                           "{type: \"ref/resource\", uri}");
    }
    if (!name || !value) {
        json_decref(values);
        return bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "argument: must be {name, value} strings");
    }
    /* Unknown reference or argument, or no suggestions for it: empty list. */
    if (!ref_has_arg(ref, name) || !source_of(name, &src)) return result(values, false);
    /* Suggestions are reads; when limited, offer none rather than fail typing. */
    if (!bb_mcp_rate_take(ctx, BB_RATE_READ, &retry_s)) return result(values, false);

    if (src == SRC_THREAD) {
        thread_ids(ctx, value, values);
    } else {
        bb_upstream *inst;
        const bb_upstream_ops *up = bb_mcp_upstream(ctx, &inst);
        char **v = NULL;
        size_t n = 0;
        bb_error e;
        bb_error_clear(&e);
        if (up && up->distinct(inst, &ctx->call, ctx->team, src == SRC_AUTHOR ? BB_DISTINCT_AUTHOR : BB_DISTINCT_TAG,
                               value, COMPLETE_MAX, &v, &n, &e) == BB_OK) {
            for (size_t i = 0; i < n && i < COMPLETE_MAX; i++) json_array_append_new(values, json_string(v[i]));
            bb_strv_free(v, n);
        }
    }
    return result(values, json_array_size(values) >= COMPLETE_MAX);
}
