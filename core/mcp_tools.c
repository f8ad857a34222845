/*
 * core/mcp_tools.c — the six tools of DESIGN §6 as one table: arguments
 * (which drive both the inputSchema and the argument check), output schema,
 * annotations, rate class, login requirement and handler.
 *
 * Results: structuredContent in the REST wire format (2025-06-18 and
 * later) plus a text block an agent can read; failures are isError results
 * whose text says what to do next.  Protocol errors (unknown tool, and
 * before 2025-11-25 arguments that break the schema) are JSON-RPC -32602.
 */
#include "mcp_surface.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "validate.h"
#include "validate_names.h"
#include "wire.h"

/* ---- the table ---------------------------------------------------------- */

typedef enum arg_kind { ARG_STRING, ARG_INT, ARG_STRINGS } arg_kind;

typedef struct tool_arg {
    const char *name;
    arg_kind    kind;
    bool        required;
    int64_t     min, max;      /* ARG_INT: value range; ARG_STRING: length; ARG_STRINGS: items */
    int64_t     item_max;      /* ARG_STRINGS: length of each item */
    const char *description;
} tool_arg;

#define TOOL_ARGS_MAX 5

typedef json_t *(*tool_fn)(bb_mcp_ctx *ctx, json_t *args);

typedef struct tool_def {
    const char   *name;
    const char   *title;
    const char   *description;
    tool_arg      args[TOOL_ARGS_MAX];
    const char   *output_schema;   /* JSON text: self-contained (no $ref), compiled by clients */
    bool          read_only, destructive, idempotent;
    bb_rate_class rate;
    bool          needs_login;
    tool_fn       fn;
} tool_def;

static json_t *t_login(bb_mcp_ctx *ctx, json_t *args);
static json_t *t_logout(bb_mcp_ctx *ctx, json_t *args);
static json_t *t_read_posts(bb_mcp_ctx *ctx, json_t *args);
static json_t *t_create_post(bb_mcp_ctx *ctx, json_t *args);
static json_t *t_get_post(bb_mcp_ctx *ctx, json_t *args);
static json_t *t_delete_post(bb_mcp_ctx *ctx, json_t *args);

/* A post in the REST wire format; further (additive) fields are allowed. */
#define POST_PROPS                                                                                   \
    "\"postId\":{\"type\":\"string\"},\"author\":{\"type\":\"string\"},\"content\":{\"type\":\"string\"}," \
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"                                 \
    "\"parentPostId\":{\"type\":[\"string\",\"null\"]},"                                             \
    "\"createdAt\":{\"type\":\"object\",\"properties\":{\"_seconds\":{\"type\":\"integer\"},"         \
    "\"_nanoseconds\":{\"type\":\"integer\"}},\"required\":[\"_seconds\"]}"
#define POST_REQUIRED "\"required\":[\"postId\",\"author\",\"content\",\"tags\",\"parentPostId\",\"createdAt\"]"
#define POST_SCHEMA   "{\"type\":\"object\",\"properties\":{" POST_PROPS "}," POST_REQUIRED "}"
/* Reads served from a fallback cache while the upstream is down say so. */
#define STALE_PROPS "\"stale\":{\"type\":\"boolean\"},\"ageMs\":{\"type\":\"integer\"}"

static const char post_out_schema[] =
    "{\"type\":\"object\",\"properties\":{" POST_PROPS "," STALE_PROPS "}," POST_REQUIRED "}";

static const char page_out_schema[] =
    "{\"type\":\"object\",\"properties\":{\"posts\":{\"type\":\"array\",\"items\":" POST_SCHEMA "},"
    "\"totalCount\":{\"type\":\"integer\",\"minimum\":0},"
    "\"nextOffset\":{\"type\":[\"string\",\"integer\",\"null\"]}," STALE_PROPS "},"
    "\"required\":[\"posts\",\"totalCount\"]}";

static const char login_out_schema[] =
    "{\"type\":\"object\",\"properties\":{\"agent_name\":{\"type\":\"string\"},\"team\":{\"type\":\"string\"}},"
    "\"required\":[\"agent_name\",\"team\"]}";

static const char logout_out_schema[] =
    "{\"type\":\"object\",\"properties\":{\"loggedOut\":{\"type\":\"boolean\"},"
    "\"agent_name\":{\"type\":\"string\"}},\"required\":[\"loggedOut\"]}";

static const char delete_out_schema[] =
    "{\"type\":\"object\",\"properties\":{\"postId\":{\"type\":\"string\"},\"deleted\":{\"type\":\"boolean\"}},"
    "\"required\":[\"postId\",\"deleted\"]}";

static const tool_def tools[] = {
    { "login", "Log in",
      "Log in to the team's board under an agent handle. Required before create_post and delete_post; "
      "the handle becomes the author of your posts for this session.",
      { { "agent_name", ARG_STRING, true, 1, BB_AUTHOR_MAX, 0, "Your handle: 1-128 characters, no control characters" } },
      login_out_schema, false, false, true, BB_RATE_NONE, false, t_login },
    { "logout", "Log out",
      "Forget the handle bound by login for this session.",
      { { NULL, 0, false, 0, 0, 0, NULL } },
      logout_out_schema, false, false, true, BB_RATE_NONE, false, t_logout },
    { "read_posts", "Read posts",
      "Read the team feed, newest first. Filter by author (agent_filter), tag (tag_filter) or a whole "
      "thread (thread_id: the root post and every reply); page with limit and offset.",
      { { "limit", ARG_INT, false, 1, 100, 0, "Posts per page, 1-100 (default 10)" },
        { "offset", ARG_INT, false, 0, INT64_C(1000000000000), 0, "Posts to skip (default 0); use the nextOffset of the previous page" },
        { "agent_filter", ARG_STRING, false, 1, BB_AUTHOR_MAX, 0, "Only posts by this agent handle" },
        { "tag_filter", ARG_STRING, false, 1, BB_TAG_MAX, 0, "Only posts carrying this tag" },
        { "thread_id", ARG_STRING, false, 1, BB_ID_MAX - 1, 0, "Only this thread: the root post id and all replies under it" } },
      page_out_schema, true, false, true, BB_RATE_READ, false, t_read_posts },
    { "create_post", "Create a post",
      "Post to the team feed as the logged-in agent (call login first). Reply to a post with "
      "parent_post_id; add up to 20 tags.",
      { { "content", ARG_STRING, true, 1, BB_CONTENT_MAX, 0, "The text of the post, 1-10000 characters" },
        { "tags", ARG_STRINGS, false, 0, BB_TAGS_MAX, BB_TAG_MAX, "Up to 20 tags of 1-32 characters" },
        { "parent_post_id", ARG_STRING, false, 1, BB_ID_MAX - 1, 0, "Id of the post this one replies to" } },
      post_out_schema, false, false, false, BB_RATE_WRITE, true, t_create_post },
    { "get_post", "Get a post",
      "Show one post by id, with its full content, tags and the post it replies to.",
      { { "post_id", ARG_STRING, true, 1, BB_ID_MAX - 1, 0, "The post's id (postId)" } },
      post_out_schema, true, false, true, BB_RATE_READ, false, t_get_post },
    { "delete_post", "Delete a post",
      "Delete one of your own posts (call login first). Other agents' posts cannot be deleted.",
      { { "post_id", ARG_STRING, true, 1, BB_ID_MAX - 1, 0, "Id of your post to delete" } },
      delete_out_schema, false, true, true, BB_RATE_DELETE, true, t_delete_post },
};
#define N_TOOLS (sizeof tools / sizeof tools[0])

static const tool_def *tool_find(const char *name)
{
    for (size_t i = 0; name && i < N_TOOLS; i++)
        if (strcmp(tools[i].name, name) == 0) return &tools[i];
    return NULL;
}

/* ---- tools/list ----------------------------------------------------------- */

static json_t *input_schema(const tool_def *t)
{
    json_t *s = json_pack("{s:s}", "type", "object"), *props = json_object(), *req = json_array();
    if (!s || !props || !req) goto oom;
    for (size_t i = 0; i < TOOL_ARGS_MAX && t->args[i].name; i++) {
        const tool_arg *a = &t->args[i];
        json_t *p = NULL;
        switch (a->kind) {
        case ARG_STRING:
            p = json_pack("{s:s, s:s, s:I, s:I}", "type", "string", "description", a->description,
                          "minLength", (json_int_t)a->min, "maxLength", (json_int_t)a->max);
            break;
        case ARG_INT:
            p = json_pack("{s:s, s:s, s:I, s:I}", "type", "integer", "description", a->description,
                          "minimum", (json_int_t)a->min, "maximum", (json_int_t)a->max);
            break;
        case ARG_STRINGS:
            p = json_pack("{s:s, s:s, s:{s:s, s:I, s:I}, s:I}", "type", "array", "description", a->description,
                          "items", "type", "string", "minLength", (json_int_t)1, "maxLength", (json_int_t)a->item_max,
                          "maxItems", (json_int_t)a->max);
            break;
        }
        if (!p || json_object_set_new(props, a->name, p) != 0) goto oom;
        if (a->required && json_array_append_new(req, json_string(a->name)) != 0) goto oom;
    }
    if (json_object_size(props) > 0) json_object_set(s, "properties", props);
    if (json_array_size(req) > 0) json_object_set(s, "required", req);
    json_object_set_new(s, "additionalProperties", json_false());
    json_decref(props);
    json_decref(req);
    return s;
oom:
    json_decref(s);
    json_decref(props);
    json_decref(req);
    return NULL;
}

static json_t *tool_json(const tool_def *t, bb_mcp_version v)
{
    json_t *o = json_pack("{s:s, s:s, s:o, s:{s:s, s:b, s:b, s:b, s:b}}", "name", t->name,
                          "description", t->description, "inputSchema", input_schema(t),
                          "annotations", "title", t->title, "readOnlyHint", t->read_only,
                          "destructiveHint", t->destructive, "idempotentHint", t->idempotent,
                          "openWorldHint", 0);
    if (!o) return NULL;
    /* title and outputSchema arrived in 2025-06-18 (MCP.md 20). */
    if (v >= BB_MCP_2025_06_18) {
        json_t *out = json_loads(t->output_schema, 0, NULL);
        if (!out) { json_decref(o); return NULL; }
        json_object_set_new(o, "title", json_string(t->title));
        json_object_set_new(o, "outputSchema", out);
    }
    return o;
}

/* The definitions never change, so each version's list is built once (a
 * hot path: clients list tools often) and copied per call; copies keep
 * callers free to change what they get. */
static json_t        *built[BB_MCP_LATEST + 1];
static pthread_once_t built_once = PTHREAD_ONCE_INIT;

static void build_lists(void)
{
    for (int v = BB_MCP_2025_03_26; v <= BB_MCP_LATEST; v++) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < N_TOOLS; i++)
            if (json_array_append_new(a, tool_json(&tools[i], (bb_mcp_version)v)) != 0) { json_decref(a); a = NULL; }
        built[v] = a;   /* NULL on out of memory: built per call instead */
    }
}

static json_t *tool_entry(size_t i, bb_mcp_version v)
{
    pthread_once(&built_once, build_lists);
    if (v >= BB_MCP_2025_03_26 && v <= BB_MCP_LATEST && built[v]) return json_deep_copy(json_array_get(built[v], i));
    return tool_json(&tools[i], v);
}

json_t *bb_mcp_tools_list(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err)
{
    size_t start, page = bb_mcp_page_size(ctx), end;
    json_t *list, *res;
    if (!bb_mcp_cursor_start(params, N_TOOLS, &start, err)) return NULL;
    end = start + page < N_TOOLS ? start + page : N_TOOLS;
    list = json_array();
    for (size_t i = start; list && i < end; i++)
        if (json_array_append_new(list, tool_entry(i, ctx->version)) != 0) { json_decref(list); list = NULL; }
    if (!list || !(res = json_pack("{s:o}", "tools", list)))
        return bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
    bb_mcp_cursor_next(res, end, N_TOOLS);
    return res;
}

/* ---- results ------------------------------------------------------------ */

/* A successful result: text always, structuredContent (stolen) from
 * 2025-06-18 on.  NULL on out of memory. */
static json_t *tool_ok(bb_mcp_ctx *ctx, json_t *structured, const char *text)
{
    json_t *r = json_pack("{s:[{s:s, s:s}]}", "content", "type", "text", "text", text ? text : "");
    if (!r) { json_decref(structured); return NULL; }
    if (ctx->version >= BB_MCP_2025_06_18 && structured) json_object_set_new(r, "structuredContent", structured);
    else json_decref(structured);
    return r;
}

static json_t *tool_error(bb_mcp_ctx *ctx, const char *tool, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static json_t *tool_error(bb_mcp_ctx *ctx, const char *tool, const char *fmt, ...)
{
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (bb_mcp_log_wanted(ctx, "warning"))
        bb_mcp_log(ctx, "warning", "tools", json_pack("{s:s, s:s}", "tool", tool, "error", msg));
    return json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", msg, "isError", 1);
}

/* Upstream failure as an isError result. */
static json_t *tool_upstream_error(bb_mcp_ctx *ctx, const char *tool, const bb_error *e, const char *what)
{
    char msg[512];
    bb_mcp_explain(e, what, msg, sizeof msg);
    return tool_error(ctx, tool, "%s", msg);
}

/* Wire field names of the shared validation -> this tool's argument names. */
static const char *arg_name_of(const char *wire_field)
{
    static const struct { const char *wire, *arg; } map[] = {
        { "author", "agent_name" }, { "agent", "agent_filter" }, { "tag", "tag_filter" },
        { "parentPostId", "parent_post_id" }, { "postId", "post_id" }, { "threadId", "thread_id" },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].wire, wire_field) == 0) return map[i].arg;
    return wire_field;
}

static json_t *tool_invalid(bb_mcp_ctx *ctx, const char *tool, const bb_error *e)
{
    if (e->field[0]) return tool_error(ctx, tool, "Invalid %s: %s", arg_name_of(e->field), e->msg);
    return tool_error(ctx, tool, "Invalid arguments: %s", e->msg);
}

static void mark_stale(json_t *sc, const bb_read_meta *m)
{
    if (!sc || !m->stale) return;
    json_object_set_new(sc, "stale", json_true());
    json_object_set_new(sc, "ageMs", json_integer(m->age_ms));
}

static bool stale_note(const bb_read_meta *m, char **buf, size_t *len, size_t *cap)
{
    if (!m->stale) return true;
    return bb_mcp_append(buf, len, cap, "\nNote: the posts service is unreachable; this answer comes from a cache "
                         "and is %" PRId64 " s old. Retry later for fresh data.\n", m->age_ms / 1000);
}

/* ---- argument checks: the same table that made the inputSchema ---------- */

static bool int_of(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) { *out = json_integer_value(v); return true; }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d) || d < -9e15 || d > 9e15) return false;
        *out = (int64_t)d;
        return true;
    }
    return false;
}

/* Types, required arguments and unknown arguments; false with why filled.
 * Value rules (lengths, characters) are the shared validation's job. */
static bool args_fit_schema(const tool_def *t, json_t *args, char *why, size_t len)
{
    const char *key;
    json_t *v;
    json_object_foreach(args, key, v) {
        size_t i;
        for (i = 0; i < TOOL_ARGS_MAX && t->args[i].name; i++)
            if (strcmp(t->args[i].name, key) == 0) break;
        if (i == TOOL_ARGS_MAX || !t->args[i].name) {
            snprintf(why, len, "%s: unknown argument for %s", key, t->name);
            return false;
        }
    }
    for (size_t i = 0; i < TOOL_ARGS_MAX && t->args[i].name; i++) {
        const tool_arg *a = &t->args[i];
        int64_t n;
        v = json_object_get(args, a->name);
        if (!v || json_is_null(v)) {
            if (a->required) { snprintf(why, len, "%s: required", a->name); return false; }
            continue;
        }
        switch (a->kind) {
        case ARG_STRING:
            if (!json_is_string(v)) { snprintf(why, len, "%s: must be a string", a->name); return false; }
            break;
        case ARG_INT:
            if (!int_of(v, &n)) { snprintf(why, len, "%s: must be an integer", a->name); return false; }
            break;
        case ARG_STRINGS: {
            size_t idx;
            json_t *item;
            if (!json_is_array(v)) { snprintf(why, len, "%s: must be an array of strings", a->name); return false; }
            json_array_foreach(v, idx, item)
                if (!json_is_string(item)) {
                    snprintf(why, len, "%s[%zu]: must be a string", a->name, idx);
                    return false;
                }
            break;
        }
        }
    }
    return true;
}

static const char *arg_str(json_t *args, const char *name) { return json_string_value(json_object_get(args, name)); }

/* ---- tools/call ----------------------------------------------------------- */

json_t *bb_mcp_tools_call(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err)
{
    const char *name = json_string_value(json_object_get(params, "name"));
    json_t *args = json_object_get(params, "arguments"), *res;
    const tool_def *t;
    char why[256];
    long long retry_s;
    bool own_args = false;

    if (!name) return bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "name: required (the tool to call)");
    if (!(t = tool_find(name)))
        return bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "Unknown tool '%.64s'; the tools are login, logout, "
                           "read_posts, create_post, get_post and delete_post", name);
    if (!args || json_is_null(args)) {
        args = json_object();
        own_args = true;
        if (!args) return bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
    }
    if (!json_is_object(args) || !args_fit_schema(t, args, why, sizeof why)) {
        if (!json_is_object(args)) snprintf(why, sizeof why, "arguments: must be an object");
        if (own_args) json_decref(args);
        /* MCP.md 26: from 2025-11-25 a schema mismatch is the tool's failure
         * (the model can fix it); before, a protocol error. */
        if (ctx->version >= BB_MCP_2025_11_25)
            return tool_error(ctx, t->name, "Invalid arguments: %s. See the tool's inputSchema.", why);
        return bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "%s", why);
    }
    if (t->needs_login && (!ctx->session || !ctx->session->agent[0])) {
        res = tool_error(ctx, t->name, "Not logged in: call login with your agent_name first, then retry %s.",
                         t->name);
    } else if (t->rate != BB_RATE_NONE && !bb_mcp_rate_take(ctx, t->rate, &retry_s)) {
        res = tool_error(ctx, t->name, "Rate limit reached for %s; retry in %lld seconds.", t->name, retry_s);
    } else {
        res = t->fn(ctx, args);
    }
    if (own_args) json_decref(args);
    if (!res) return bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
    return res;
}

/* ---- the handlers ------------------------------------------------------- */

static json_t *t_login(bb_mcp_ctx *ctx, json_t *args)
{
    const char *raw = arg_str(args, "agent_name"), *name;
    char text[BB_SESSION_AGENT_MAX + 256];
    bb_post_input in;
    bb_error e;
    json_t *res;
    bb_error_clear(&e);
    memset(&in, 0, sizeof in);
    if (!bb_validate_author(raw, &e, "agent_name")) return tool_invalid(ctx, "login", &e);
    if (!ctx->session) return tool_error(ctx, "login", "This connection has no session to log in to; reconnect.");
    /* The handle as create_post will store it (trimmed by the shared
     * rules), so delete_post's "own posts" check compares like with like. */
    if (!bb_validate_post_fields(raw, ".", NULL, NULL, &in, &e)) return tool_invalid(ctx, "login", &e);
    name = in.author;
    if (strlen(name) >= sizeof ctx->session->agent) {
        bb_post_input_clear(&in);
        return tool_error(ctx, "login", "Invalid agent_name: longer than 128 characters");
    }
    snprintf(ctx->session->agent, sizeof ctx->session->agent, "%s", name);
    ctx->session_dirty = true;
    snprintf(text, sizeof text, "Logged in as @%s on team %s. Your posts will carry this handle; "
             "use read_posts to catch up and create_post to post.", name, ctx->team);
    res = tool_ok(ctx, json_pack("{s:s, s:s}", "agent_name", name, "team", ctx->team), text);
    bb_post_input_clear(&in);
    return res;
}

static json_t *t_logout(bb_mcp_ctx *ctx, json_t *args)
{
    char text[BB_SESSION_AGENT_MAX + 64];
    json_t *sc;
    (void)args;
    if (!ctx->session || !ctx->session->agent[0])
        return tool_ok(ctx, json_pack("{s:b}", "loggedOut", 1), "You were not logged in.");
    sc = json_pack("{s:b, s:s}", "loggedOut", 1, "agent_name", ctx->session->agent);
    snprintf(text, sizeof text, "Logged out (was @%s). Call login to post again.", ctx->session->agent);
    ctx->session->agent[0] = '\0';
    ctx->session_dirty = true;
    return tool_ok(ctx, sc, text);
}

static json_t *t_read_posts(bb_mcp_ctx *ctx, json_t *args)
{
    char limit_s[24] = "", offset_s[24] = "";
    int64_t n;
    bb_post_query q;
    bb_post_page pg = { 0 };
    bb_read_meta meta = { 0 };
    bb_error e;
    bb_upstream *inst;
    const bb_upstream_ops *up = bb_mcp_upstream(ctx, &inst);
    char *text = NULL;
    size_t len = 0, cap = 0;
    json_t *sc, *res;
    bb_status st;

    bb_error_clear(&e);
    memset(&q, 0, sizeof q);
    if (int_of(json_object_get(args, "limit"), &n)) snprintf(limit_s, sizeof limit_s, "%" PRId64, n);
    if (int_of(json_object_get(args, "offset"), &n)) snprintf(offset_s, sizeof offset_s, "%" PRId64, n);
    if (!bb_validate_list_query(limit_s[0] ? limit_s : NULL, offset_s[0] ? offset_s : NULL,
                                arg_str(args, "agent_filter"), arg_str(args, "tag_filter"),
                                arg_str(args, "thread_id"), NULL, &q, &e))
        return tool_invalid(ctx, "read_posts", &e);
    q.team = ctx->team;
    if (!up) return tool_error(ctx, "read_posts", "No posts service is configured on this server.");
    st = up->list_posts(inst, &ctx->call, &q, &pg, &meta, &e);
    if (st != BB_OK) return tool_upstream_error(ctx, "read_posts", &e, "the feed");

    sc = bb_wire_page(&pg, q.offset, q.limit);
    mark_stale(sc, &meta);
    if (pg.n == 0)
        bb_mcp_append(&text, &len, &cap, "No posts match (%" PRId64 " in total for this filter).\n", pg.total);
    else
        bb_mcp_append(&text, &len, &cap, "Posts %" PRId64 "-%" PRId64 " of %" PRId64 ", newest first:\n",
                      q.offset + 1, q.offset + (int64_t)pg.n, pg.total);
    for (size_t i = 0; text && i < pg.n; i++) bb_mcp_feed_line(&pg.posts[i], &text, &len, &cap);
    if (text && q.offset + (int64_t)pg.n < pg.total)
        bb_mcp_append(&text, &len, &cap, "More: call read_posts with offset %" PRId64 ".\n", q.offset + (int64_t)pg.n);
    if (text) stale_note(&meta, &text, &len, &cap);
    if (bb_mcp_log_wanted(ctx, "debug"))
        bb_mcp_log(ctx, "debug", "tools", json_pack("{s:s, s:I, s:I}", "tool", "read_posts", "posts", (json_int_t)pg.n,
                                                  "totalCount", (json_int_t)pg.total));
    bb_post_page_clear(&pg);
    if (!sc || !text) { json_decref(sc); free(text); return NULL; }
    res = tool_ok(ctx, sc, text);
    free(text);
    return res;
}

/* The post as text: the feed line with the whole content. */
static char *post_text(const char *intro, const bb_post *p, const bb_read_meta *meta)
{
    char *text = NULL, when[40];
    size_t len = 0, cap = 0;
    bb_mcp_time_text(p->created_ms, when, sizeof when);
    bb_mcp_append(&text, &len, &cap, "%sPost %s by @%s at %s", intro, p->id, p->author ? p->author : "", when);
    if (text && p->parent_id[0]) bb_mcp_append(&text, &len, &cap, ", reply to %s", p->parent_id);
    if (text && p->thread_id[0] && strcmp(p->thread_id, p->id) != 0 && strcmp(p->thread_id, p->parent_id) != 0)
        bb_mcp_append(&text, &len, &cap, " (thread %s)", p->thread_id);
    for (size_t i = 0; text && i < p->n_tags; i++) bb_mcp_append(&text, &len, &cap, "%s#%s", i ? " " : "\nTags: ", p->tags[i]);
    if (text) bb_mcp_append(&text, &len, &cap, "\n\n%s\n", p->content ? p->content : "");
    if (text && meta) stale_note(meta, &text, &len, &cap);
    return text;
}

static json_t *t_create_post(bb_mcp_ctx *ctx, json_t *args)
{
    bb_post_input in;
    bb_new_post np;
    bb_post out;
    bb_error e;
    bb_upstream *inst;
    const bb_upstream_ops *up = bb_mcp_upstream(ctx, &inst);
    json_t *tags = json_object_get(args, "tags"), *res;
    char *text;

    bb_error_clear(&e);
    memset(&in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    if (json_is_null(tags)) tags = NULL;
    if (!bb_validate_post_fields(ctx->session->agent, arg_str(args, "content"), tags,
                                 arg_str(args, "parent_post_id"), &in, &e))
        return tool_invalid(ctx, "create_post", &e);
    if (!up) { bb_post_input_clear(&in); return tool_error(ctx, "create_post", "No posts service is configured."); }
    np.author = in.author;
    np.content = in.content;
    np.tags = (const char *const *)in.tags;
    np.n_tags = in.n_tags;
    np.parent_id = in.parent_id[0] ? in.parent_id : NULL;
    if (up->create_post(inst, &ctx->call, ctx->team, &np, &out, &e) != BB_OK) {
        bb_post_input_clear(&in);
        bb_post_clear(&out);
        if (e.code == BB_INVALID || e.code == BB_CONFLICT) return tool_invalid(ctx, "create_post", &e);
        return tool_upstream_error(ctx, "create_post", &e, "the posts service");
    }
    bb_post_input_clear(&in);
    /* Subscribers (MCP resources/updated) hear about it like a REST post. */
    if (ctx->srv && ctx->srv->events) bb_events_publish_post(ctx->srv->events, &out);
    text = post_text("Posted. ", &out, NULL);
    res = text ? tool_ok(ctx, bb_wire_post(&out), text) : NULL;
    free(text);
    bb_post_clear(&out);
    return res;
}

/* get_post and delete_post take a post id: refuse what cannot be one. */
static bool post_id_ok(bb_mcp_ctx *ctx, const char *tool, const char *id, json_t **res)
{
    if (bb_id_ok(id)) return true;
    *res = tool_error(ctx, tool, "Invalid post_id: post ids are 1-39 characters of A-Z, a-z, 0-9, '_' and '-' "
                      "(take them from read_posts)");
    return false;
}

static json_t *t_get_post(bb_mcp_ctx *ctx, json_t *args)
{
    const char *id = arg_str(args, "post_id");
    bb_post p;
    bb_read_meta meta = { 0 };
    bb_error e;
    bb_upstream *inst;
    const bb_upstream_ops *up = bb_mcp_upstream(ctx, &inst);
    json_t *res = NULL, *sc;
    char what[BB_ID_MAX + 8], *text;

    if (!post_id_ok(ctx, "get_post", id, &res)) return res;
    if (!up) return tool_error(ctx, "get_post", "No posts service is configured.");
    bb_error_clear(&e);
    memset(&p, 0, sizeof p);
    snprintf(what, sizeof what, "post %s", id);
    if (up->get_post(inst, &ctx->call, ctx->team, id, &p, &meta, &e) != BB_OK) {
        bb_post_clear(&p);
        return tool_upstream_error(ctx, "get_post", &e, what);
    }
    sc = bb_wire_post(&p);
    mark_stale(sc, &meta);
    text = post_text("", &p, &meta);
    if (sc && text) res = tool_ok(ctx, sc, text);
    else json_decref(sc);
    free(text);
    bb_post_clear(&p);
    return res;
}

static json_t *t_delete_post(bb_mcp_ctx *ctx, json_t *args)
{
    const char *id = arg_str(args, "post_id");
    bb_post p;
    bb_read_meta meta = { 0 };
    bb_error e;
    bb_upstream *inst;
    const bb_upstream_ops *up = bb_mcp_upstream(ctx, &inst);
    json_t *res = NULL;
    char what[BB_ID_MAX + 8], text[BB_ID_MAX + BB_SESSION_AGENT_MAX + 128];
    bool mine;

    if (!post_id_ok(ctx, "delete_post", id, &res)) return res;
    if (!up) return tool_error(ctx, "delete_post", "No posts service is configured.");
    bb_error_clear(&e);
    memset(&p, 0, sizeof p);
    snprintf(what, sizeof what, "post %s", id);
    /* Own posts only: look at the author first. */
    if (up->get_post(inst, &ctx->call, ctx->team, id, &p, &meta, &e) != BB_OK) {
        bb_post_clear(&p);
        return tool_upstream_error(ctx, "delete_post", &e, what);
    }
    mine = p.author && strcmp(p.author, ctx->session->agent) == 0;
    if (!mine) {
        res = tool_error(ctx, "delete_post", "You can only delete your own posts: post %s is by @%s, "
                         "you are @%s.", id, p.author ? p.author : "?", ctx->session->agent);
        bb_post_clear(&p);
        return res;
    }
    bb_post_clear(&p);
    if (up->delete_post(inst, &ctx->call, ctx->team, id, &e) != BB_OK)
        return tool_upstream_error(ctx, "delete_post", &e, what);
    snprintf(text, sizeof text, "Deleted post %s.", id);
    return tool_ok(ctx, json_pack("{s:s, s:b}", "postId", id, "deleted", 1), text);
}

/* ---- feed rendering (also used by resources and prompts) ---------------- */

/* Bytes of the first max_chars characters of UTF-8 s. */
static size_t utf8_prefix(const char *s, size_t max_chars, bool *cut)
{
    size_t i = 0, chars = 0;
    while (s[i] && chars < max_chars) {
        i++;
        while (((unsigned char)s[i] & 0xC0) == 0x80) i++;
        chars++;
    }
    *cut = s[i] != '\0';
    return i;
}

bool bb_mcp_feed_line(const bb_post *p, char **buf, size_t *len, size_t *cap)
{
    char when[40];
    const char *content = p->content ? p->content : "";
    bool cut;
    size_t n = utf8_prefix(content, 280, &cut), start;

    bb_mcp_time_text(p->created_ms, when, sizeof when);
    if (!bb_mcp_append(buf, len, cap, "- [%s] @%s · %s", p->id, p->author ? p->author : "", when)) return false;
    for (size_t i = 0; i < p->n_tags; i++)
        if (!bb_mcp_append(buf, len, cap, "%s#%s", i ? " " : " · ", p->tags[i])) return false;
    /* The marker names no id: a page lists exactly the ids of its posts. */
    if (p->parent_id[0] && !bb_mcp_append(buf, len, cap, " · ↳ reply")) return false;
    if (!bb_mcp_append(buf, len, cap, "\n  ")) return false;
    start = *len;
    if (!bb_mcp_append(buf, len, cap, "%.*s%s\n", (int)n, content, cut ? "…" : "")) return false;
    /* One line per post: newlines in the content become spaces. */
    for (size_t i = start; i + 1 < *len; i++)
        if ((*buf)[i] == '\n' || (*buf)[i] == '\r') (*buf)[i] = ' ';
    return true;
}
