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

/* Writes the tool's result object (success or isError) into *out. */
typedef void (*tool_fn)(bb_mcp_ctx *ctx, json_t *args, bb_jw *out);

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

static void t_login(bb_mcp_ctx *ctx, json_t *args, bb_jw *out);
static void t_logout(bb_mcp_ctx *ctx, json_t *args, bb_jw *out);
static void t_read_posts(bb_mcp_ctx *ctx, json_t *args, bb_jw *out);
static void t_create_post(bb_mcp_ctx *ctx, json_t *args, bb_jw *out);
static void t_get_post(bb_mcp_ctx *ctx, json_t *args, bb_jw *out);
static void t_delete_post(bb_mcp_ctx *ctx, json_t *args, bb_jw *out);

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

/* The definitions never change, so each version's whole list is built and
 * printed once (a hot path: clients list tools often) and copied out as
 * text per call; the trees stay for cursor pages. */
typedef struct built_list {
    json_t *tools;   /* array of tool objects */
    char   *text;    /* {"tools":[...]}, the answer without a cursor */
    size_t  len;
} built_list;

static built_list     built[BB_MCP_LATEST + 1];
static pthread_once_t built_once = PTHREAD_ONCE_INIT;

static void build_lists(void)
{
    for (int v = BB_MCP_2025_03_26; v <= BB_MCP_LATEST; v++) {
        json_t *a = json_array(), *whole;
        for (size_t i = 0; a && i < N_TOOLS; i++)
            if (json_array_append_new(a, tool_json(&tools[i], (bb_mcp_version)v)) != 0) { json_decref(a); a = NULL; }
        built[v].tools = a;   /* NULL on out of memory: built per call instead */
        if (a && (whole = json_pack("{s:O}", "tools", a))) {
            built[v].text = json_dumps(whole, JSON_COMPACT);
            built[v].len = built[v].text ? strlen(built[v].text) : 0;
            json_decref(whole);
        }
    }
}

bool bb_mcp_tools_list(bb_mcp_ctx *ctx, json_t *params, bb_jw *out, bb_mcp_error *err)
{
    size_t start, page = bb_mcp_page_size(ctx), end;
    bb_mcp_version v = ctx->version;
    bool have = v >= BB_MCP_2025_03_26 && v <= BB_MCP_LATEST;
    json_t *list, *res;
    if (!bb_mcp_cursor_start(params, N_TOOLS, &start, err)) return false;
    end = start + page < N_TOOLS ? start + page : N_TOOLS;
    pthread_once(&built_once, build_lists);
    if (have && start == 0 && end == N_TOOLS && built[v].text) {
        bb_jw_raw(out, built[v].text, built[v].len);
        return true;
    }
    list = json_array();
    for (size_t i = start; list && i < end; i++) {
        json_t *t = have && built[v].tools ? json_incref(json_array_get(built[v].tools, i)) : tool_json(&tools[i], v);
        if (json_array_append_new(list, t) != 0) { json_decref(list); list = NULL; }
    }
    if (!list || !(res = json_pack("{s:o}", "tools", list))) {
        bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
        return false;
    }
    bb_mcp_cursor_next(res, end, N_TOOLS);
    bb_jw_json(out, res);
    json_decref(res);
    return true;
}

/* ---- results ------------------------------------------------------------ */

/* A successful result: the text block always, then from 2025-06-18 on
 * structuredContent, which the caller writes when this returns true and
 * closes with tool_ok_end. */
static void text_open(bb_jw *out) { BB_JW_LIT(out, "{\"content\":[{\"type\":\"text\",\"text\":\""); }

/* After the text (written escaped between text_open and this). */
static bool text_close(bb_mcp_ctx *ctx, bb_jw *out)
{
    BB_JW_LIT(out, "\"}]");
    if (ctx->version < BB_MCP_2025_06_18) return false;
    BB_JW_LIT(out, ",\"structuredContent\":");
    return true;
}

static bool tool_ok_begin(bb_mcp_ctx *ctx, bb_jw *out, const char *text, size_t len)
{
    text_open(out);
    bb_jw_esc(out, text, len);
    return text_close(ctx, out);
}

static void tool_ok_end(bb_jw *out) { BB_JW_LIT(out, "}"); }

/* A successful result with a small structured tree (stolen; NULL is out
 * of memory). */
static void tool_ok(bb_mcp_ctx *ctx, bb_jw *out, json_t *structured, const char *text)
{
    if (!structured) out->oom = true;
    if (tool_ok_begin(ctx, out, text ? text : "", text ? strlen(text) : 0)) bb_jw_json(out, structured);
    tool_ok_end(out);
    json_decref(structured);
}

static void tool_error(bb_mcp_ctx *ctx, bb_jw *out, const char *tool, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void tool_error(bb_mcp_ctx *ctx, bb_jw *out, const char *tool, const char *fmt, ...)
{
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (bb_mcp_log_wanted(ctx, "warning"))
        bb_mcp_log(ctx, "warning", "tools", json_pack("{s:s, s:s}", "tool", tool, "error", msg));
    text_open(out);
    BB_JW_ESC(out, msg);
    BB_JW_LIT(out, "\"}],\"isError\":true}");
}

/* Upstream failure as an isError result. */
static void tool_upstream_error(bb_mcp_ctx *ctx, bb_jw *out, const char *tool, const bb_error *e, const char *what)
{
    char msg[512];
    bb_mcp_explain(e, what, msg, sizeof msg);
    tool_error(ctx, out, tool, "%s", msg);
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

static void tool_invalid(bb_mcp_ctx *ctx, bb_jw *out, const char *tool, const bb_error *e)
{
    if (e->field[0]) tool_error(ctx, out, tool, "Invalid %s: %s", arg_name_of(e->field), e->msg);
    else tool_error(ctx, out, tool, "Invalid arguments: %s", e->msg);
}

/* A post or page object just written: a read served from a fallback cache
 * says so inside it (stale, ageMs). */
static void mark_stale(bb_jw *out, const bb_read_meta *m)
{
    if (!m || !m->stale || out->oom || out->n == 0 || out->p[out->n - 1] != '}') return;
    bb_jw_truncate(out, out->n - 1);
    BB_JW_LIT(out, ",\"stale\":true,\"ageMs\":");
    bb_jw_int(out, m->age_ms);
    BB_JW_LIT(out, "}");
}

/* The note a read served from a fallback cache ends with; 0 when fresh. */
static size_t stale_note(const bb_read_meta *m, char *buf, size_t len)
{
    int n;
    if (!m || !m->stale) return 0;
    n = snprintf(buf, len, "\nNote: the posts service is unreachable; this answer comes from a cache and is "
                 "%" PRId64 " s old. Retry later for fresh data.\n", m->age_ms / 1000);
    return n > 0 && (size_t)n < len ? (size_t)n : 0;
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

bool bb_mcp_tools_call(bb_mcp_ctx *ctx, json_t *params, bb_jw *out, bb_mcp_error *err)
{
    const char *name = json_string_value(json_object_get(params, "name"));
    json_t *args = json_object_get(params, "arguments");
    const tool_def *t;
    char why[256];
    long long retry_s;
    bool own_args = false;
    size_t mark = out->n;

    if (!name) { bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "name: required (the tool to call)"); return false; }
    if (!(t = tool_find(name))) {
        bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "Unknown tool '%.64s'; the tools are login, logout, "
                    "read_posts, create_post, get_post and delete_post", name);
        return false;
    }
    if (!args || json_is_null(args)) {
        args = json_object();
        own_args = true;
        if (!args) { bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory"); return false; }
    }
    if (!json_is_object(args) || !args_fit_schema(t, args, why, sizeof why)) {
        if (!json_is_object(args)) snprintf(why, sizeof why, "arguments: must be an object");
        if (own_args) json_decref(args);
        /* MCP.md 26: from 2025-11-25 a schema mismatch is the tool's failure
         * (the model can fix it); before, a protocol error. */
        if (ctx->version >= BB_MCP_2025_11_25) {
            tool_error(ctx, out, t->name, "Invalid arguments: %s. See the tool's inputSchema.", why);
            return true;
        }
        bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "%s", why);
        return false;
    }
    if (t->needs_login && (!ctx->session || !ctx->session->agent[0]))
        tool_error(ctx, out, t->name, "Not logged in: call login with your agent_name first, then retry %s.", t->name);
    else if (t->rate != BB_RATE_NONE && !bb_mcp_rate_take(ctx, t->rate, &retry_s))
        tool_error(ctx, out, t->name, "Rate limit reached for %s; retry in %lld seconds.", t->name, retry_s);
    else
        t->fn(ctx, args, out);
    if (own_args) json_decref(args);
    if (out->oom) {
        bb_jw_truncate(out, mark);
        bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
        return false;
    }
    return true;
}

/* ---- the handlers ------------------------------------------------------- */

static void t_login(bb_mcp_ctx *ctx, json_t *args, bb_jw *out)
{
    const char *raw = arg_str(args, "agent_name"), *name;
    char text[BB_SESSION_AGENT_MAX + 256];
    bb_post_input in;
    bb_error e;
    bb_error_clear(&e);
    memset(&in, 0, sizeof in);
    if (!bb_validate_author(raw, &e, "agent_name")) { tool_invalid(ctx, out, "login", &e); return; }
    if (!ctx->session) { tool_error(ctx, out, "login", "This connection has no session to log in to; reconnect."); return; }
    /* The handle as create_post will store it (trimmed by the shared
     * rules), so delete_post's "own posts" check compares like with like. */
    if (!bb_validate_post_fields(raw, ".", NULL, NULL, &in, &e)) { tool_invalid(ctx, out, "login", &e); return; }
    name = in.author;
    if (strlen(name) >= sizeof ctx->session->agent) {
        bb_post_input_clear(&in);
        tool_error(ctx, out, "login", "Invalid agent_name: longer than 128 characters");
        return;
    }
    snprintf(ctx->session->agent, sizeof ctx->session->agent, "%s", name);
    ctx->session_dirty = true;
    snprintf(text, sizeof text, "Logged in as @%s on team %s. Your posts will carry this handle; "
             "use read_posts to catch up and create_post to post.", name, ctx->team);
    tool_ok(ctx, out, json_pack("{s:s, s:s}", "agent_name", name, "team", ctx->team), text);
    bb_post_input_clear(&in);
}

static void t_logout(bb_mcp_ctx *ctx, json_t *args, bb_jw *out)
{
    char text[BB_SESSION_AGENT_MAX + 64];
    json_t *sc;
    (void)args;
    if (!ctx->session || !ctx->session->agent[0]) {
        tool_ok(ctx, out, json_pack("{s:b}", "loggedOut", 1), "You were not logged in.");
        return;
    }
    sc = json_pack("{s:b, s:s}", "loggedOut", 1, "agent_name", ctx->session->agent);
    snprintf(text, sizeof text, "Logged out (was @%s). Call login to post again.", ctx->session->agent);
    ctx->session->agent[0] = '\0';
    ctx->session_dirty = true;
    tool_ok(ctx, out, sc, text);
}

/* A page from the upstream: lent when the plugin lends (ABI 1.1; upstream
 * local over the post cache does, so a cached page is written straight
 * from the cache), else read into own.  Handed back by page_done. */
typedef struct lent_page {
    const bb_post_page *page;
    void               *loan;
    bb_post_page        own;
} lent_page;

static bb_status page_get(const bb_upstream_ops *up, bb_upstream *inst, const bb_call *call, const bb_post_query *q,
                          lent_page *lp, bb_read_meta *meta, bb_error *err)
{
    bb_status st;
    memset(lp, 0, sizeof *lp);
    if (BB_OPS_HAS(up, bb_upstream_ops, list_posts_lend) && BB_OPS_HAS(up, bb_upstream_ops, page_return))
        return up->list_posts_lend(inst, call, q, &lp->page, &lp->loan, meta, err);
    if ((st = up->list_posts(inst, call, q, &lp->own, meta, err)) == BB_OK) lp->page = &lp->own;
    return st;
}

static void page_done(const bb_upstream_ops *up, bb_upstream *inst, lent_page *lp)
{
    if (lp->loan) up->page_return(inst, lp->loan);
    bb_post_page_clear(&lp->own);
    memset(lp, 0, sizeof *lp);
}

static void t_read_posts(bb_mcp_ctx *ctx, json_t *args, bb_jw *out)
{
    char limit_s[24] = "", offset_s[24] = "";
    int64_t n;
    bb_post_query q;
    lent_page lp;
    const bb_post_page *pg;
    bb_read_meta meta = { 0 };
    bb_error e;
    bb_upstream *inst;
    const bb_upstream_ops *up = bb_mcp_upstream(ctx, &inst);
    char note[256];
    size_t note_len;
    int64_t after;

    bb_error_clear(&e);
    memset(&q, 0, sizeof q);
    if (int_of(json_object_get(args, "limit"), &n)) snprintf(limit_s, sizeof limit_s, "%" PRId64, n);
    if (int_of(json_object_get(args, "offset"), &n)) snprintf(offset_s, sizeof offset_s, "%" PRId64, n);
    if (!bb_validate_list_query(limit_s[0] ? limit_s : NULL, offset_s[0] ? offset_s : NULL,
                                arg_str(args, "agent_filter"), arg_str(args, "tag_filter"),
                                arg_str(args, "thread_id"), NULL, &q, &e)) {
        tool_invalid(ctx, out, "read_posts", &e);
        return;
    }
    q.team = ctx->team;
    if (!up) { tool_error(ctx, out, "read_posts", "No posts service is configured on this server."); return; }
    if (page_get(up, inst, &ctx->call, &q, &lp, &meta, &e) != BB_OK) {
        tool_upstream_error(ctx, out, "read_posts", &e, "the feed");
        return;
    }
    pg = lp.page;

    /* The feed text, escaped straight into the answer (no second pass),
     * then the page in the wire format. */
    after = q.offset + (int64_t)pg->n;
    bb_jw_reserve(out, 256 + pg->n * 700);
    text_open(out);
    if (pg->n == 0) {
        BB_JW_LIT(out, "No posts match (");
        bb_jw_int(out, pg->total);
        BB_JW_LIT(out, " in total for this filter).\\n");
    } else {
        BB_JW_LIT(out, "Posts ");
        bb_jw_int(out, q.offset + 1);
        BB_JW_LIT(out, "-");
        bb_jw_int(out, after);
        BB_JW_LIT(out, " of ");
        bb_jw_int(out, pg->total);
        BB_JW_LIT(out, ", newest first:\\n");
    }
    for (size_t i = 0; i < pg->n; i++) bb_mcp_feed_line(&pg->posts[i], out);
    if (after < pg->total) {
        BB_JW_LIT(out, "More: call read_posts with offset ");
        bb_jw_int(out, after);
        BB_JW_LIT(out, ".\\n");
    }
    if ((note_len = stale_note(&meta, note, sizeof note))) bb_jw_esc(out, note, note_len);
    if (text_close(ctx, out)) {
        bb_wire_page_write(out, pg, q.offset);
        mark_stale(out, &meta);
    }
    tool_ok_end(out);
    if (bb_mcp_log_wanted(ctx, "debug"))
        bb_mcp_log(ctx, "debug", "tools", json_pack("{s:s, s:I, s:I}", "tool", "read_posts", "posts", (json_int_t)pg->n,
                                                  "totalCount", (json_int_t)pg->total));
    page_done(up, inst, &lp);
}

/* The post as plain text: the feed line with the whole content. */
static void post_text(bb_jw *t, const char *intro, const bb_post *p, const bb_read_meta *meta)
{
    char when[40];
    bb_mcp_time_text(p->created_ms, when, sizeof when);
    bb_jw_raw(t, intro, strlen(intro));
    BB_JW_LIT(t, "Post ");
    bb_jw_raw(t, p->id, strlen(p->id));
    BB_JW_LIT(t, " by @");
    if (p->author) bb_jw_raw(t, p->author, strlen(p->author));
    BB_JW_LIT(t, " at ");
    bb_jw_raw(t, when, strlen(when));
    if (p->parent_id[0]) {
        BB_JW_LIT(t, ", reply to ");
        bb_jw_raw(t, p->parent_id, strlen(p->parent_id));
    }
    if (p->thread_id[0] && strcmp(p->thread_id, p->id) != 0 && strcmp(p->thread_id, p->parent_id) != 0) {
        BB_JW_LIT(t, " (thread ");
        bb_jw_raw(t, p->thread_id, strlen(p->thread_id));
        BB_JW_LIT(t, ")");
    }
    for (size_t i = 0; i < p->n_tags; i++) {
        if (i) BB_JW_LIT(t, " #");
        else BB_JW_LIT(t, "\nTags: #");
        bb_jw_raw(t, p->tags[i], strlen(p->tags[i]));
    }
    BB_JW_LIT(t, "\n\n");
    if (p->content) bb_jw_raw(t, p->content, strlen(p->content));
    BB_JW_LIT(t, "\n");
    {
        char note[256];
        size_t n = stale_note(meta, note, sizeof note);
        bb_jw_raw(t, note, n);
    }
}

/* A post as a result: its text, and the post in the wire format. */
static void post_result(bb_mcp_ctx *ctx, bb_jw *out, const char *intro, const bb_post *p, const bb_read_meta *meta)
{
    bb_jw text = { 0 };
    post_text(&text, intro, p, meta);
    if (text.oom) out->oom = true;
    else if (tool_ok_begin(ctx, out, text.p, text.n)) {
        bb_wire_post_write(out, p);
        mark_stale(out, meta);
    }
    tool_ok_end(out);
    bb_jw_free(&text);
}

static void t_create_post(bb_mcp_ctx *ctx, json_t *args, bb_jw *out)
{
    bb_post_input in;
    bb_new_post np;
    bb_post made;
    bb_error e;
    bb_upstream *inst;
    const bb_upstream_ops *up = bb_mcp_upstream(ctx, &inst);
    json_t *tags = json_object_get(args, "tags");

    bb_error_clear(&e);
    memset(&in, 0, sizeof in);
    memset(&made, 0, sizeof made);
    if (json_is_null(tags)) tags = NULL;
    if (!bb_validate_post_fields(ctx->session->agent, arg_str(args, "content"), tags,
                                 arg_str(args, "parent_post_id"), &in, &e)) {
        tool_invalid(ctx, out, "create_post", &e);
        return;
    }
    if (!up) {
        bb_post_input_clear(&in);
        tool_error(ctx, out, "create_post", "No posts service is configured.");
        return;
    }
    np.author = in.author;
    np.content = in.content;
    np.tags = (const char *const *)in.tags;
    np.n_tags = in.n_tags;
    np.parent_id = in.parent_id[0] ? in.parent_id : NULL;
    if (up->create_post(inst, &ctx->call, ctx->team, &np, &made, &e) != BB_OK) {
        bb_post_input_clear(&in);
        bb_post_clear(&made);
        if (e.code == BB_INVALID || e.code == BB_CONFLICT) tool_invalid(ctx, out, "create_post", &e);
        else tool_upstream_error(ctx, out, "create_post", &e, "the posts service");
        return;
    }
    bb_post_input_clear(&in);
    /* Subscribers (MCP resources/updated) hear about it like a REST post. */
    if (ctx->srv && ctx->srv->events) bb_events_publish_post(ctx->srv->events, &made);
    post_result(ctx, out, "Posted. ", &made, NULL);
    bb_post_clear(&made);
}

/* get_post and delete_post: the post named by post_id, read through the
 * upstream.  false when it could not be (the isError result is written). */
static bool fetch_post(bb_mcp_ctx *ctx, bb_jw *out, const char *tool, json_t *args, bb_post *p, bb_read_meta *meta)
{
    const char *id = arg_str(args, "post_id");
    bb_error e;
    bb_upstream *inst;
    const bb_upstream_ops *up = bb_mcp_upstream(ctx, &inst);
    char what[BB_ID_MAX + 8];

    memset(p, 0, sizeof *p);
    if (!bb_id_ok(id)) {
        tool_error(ctx, out, tool, "Invalid post_id: post ids are 1-39 characters of A-Z, a-z, 0-9, '_' and '-' "
                   "(take them from read_posts)");
        return false;
    }
    if (!up) { tool_error(ctx, out, tool, "No posts service is configured."); return false; }
    bb_error_clear(&e);
    if (up->get_post(inst, &ctx->call, ctx->team, id, p, meta, &e) != BB_OK) {
        bb_post_clear(p);
        snprintf(what, sizeof what, "post %s", id);
        tool_upstream_error(ctx, out, tool, &e, what);
        return false;
    }
    return true;
}

static void t_get_post(bb_mcp_ctx *ctx, json_t *args, bb_jw *out)
{
    bb_post p;
    bb_read_meta meta = { 0 };
    if (!fetch_post(ctx, out, "get_post", args, &p, &meta)) return;
    post_result(ctx, out, "", &p, &meta);
    bb_post_clear(&p);
}

static void t_delete_post(bb_mcp_ctx *ctx, json_t *args, bb_jw *out)
{
    bb_post p;
    bb_read_meta meta = { 0 };
    bb_error e;
    bb_upstream *inst;
    const bb_upstream_ops *up = bb_mcp_upstream(ctx, &inst);
    char what[BB_ID_MAX + 8], text[BB_ID_MAX + BB_SESSION_AGENT_MAX + 128];

    /* Own posts only: look at the author first. */
    if (!fetch_post(ctx, out, "delete_post", args, &p, &meta)) return;
    if (!p.author || strcmp(p.author, ctx->session->agent) != 0) {
        tool_error(ctx, out, "delete_post", "You can only delete your own posts: post %s is by @%s, "
                   "you are @%s.", p.id, p.author ? p.author : "?", ctx->session->agent);
        bb_post_clear(&p);
        return;
    }
    snprintf(what, sizeof what, "post %s", p.id);
    bb_error_clear(&e);
    if (up->delete_post(inst, &ctx->call, ctx->team, p.id, &e) != BB_OK) {
        tool_upstream_error(ctx, out, "delete_post", &e, what);
    } else {
        snprintf(text, sizeof text, "Deleted post %s.", p.id);
        tool_ok(ctx, out, json_pack("{s:s, s:b}", "postId", p.id, "deleted", 1), text);
    }
    bb_post_clear(&p);
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

void bb_mcp_feed_line(const bb_post *p, bb_jw *out)
{
    char when[40];
    const char *content = p->content ? p->content : "";
    bool cut;
    size_t n = utf8_prefix(content, 280, &cut);

    /* Written piece by piece, escaped into the JSON string as it goes (no
     * printf, no second pass): read_posts renders ten of these per call. */
    bb_mcp_time_text(p->created_ms, when, sizeof when);
    BB_JW_LIT(out, "- [");
    BB_JW_ESC(out, p->id);
    BB_JW_LIT(out, "] @");
    if (p->author) BB_JW_ESC(out, p->author);
    BB_JW_LIT(out, " · ");
    bb_jw_raw(out, when, strlen(when));
    for (size_t i = 0; i < p->n_tags; i++) {
        if (i) BB_JW_LIT(out, " #");
        else BB_JW_LIT(out, " · #");
        BB_JW_ESC(out, p->tags[i]);
    }
    /* The marker names no id: a page lists exactly the ids of its posts. */
    if (p->parent_id[0]) BB_JW_LIT(out, " · ↳ reply");
    BB_JW_LIT(out, "\\n  ");
    /* One line per post: newlines in the content become spaces. */
    bb_jw_esc_line(out, content, n);
    if (cut) BB_JW_LIT(out, "…");
    BB_JW_LIT(out, "\\n");
}
