/*
 * tests/test_mcp_surface.c — the MCP surface (tools, resources, prompts,
 * completion, logging) over a real app: storage_sqlite in a temp dir,
 * session_memory, upstream_local, the real rate limiter and event bus.
 * Calls go through bb_mcp_handle, as both transports make them.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "events.h"
#include "mcp.h"
#include "host.h"
#include "mcp_surface.h"
#include "service.h"
#include "sessions.h"

/* ---- fixture ---------------------------------------------------------- */

static char        dir[256];
static bb_server   srv;
static bb_session  sess;
static bb_mcp_ctx  ctx;
static json_t     *notes;      /* notifications the surface sent */
static int         next_id;

static void capture(bb_mcp_ctx *c, const char *method, json_t *params)
{
    (void)c;
    json_array_append_new(notes, json_pack("{s:s, s:o}", "method", method, "params", params));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

/* Which upstream plugin open_app configures. */
static const char *upstream_name = "local";

static void open_app(const char *extra_yaml, bb_mcp_version v)
{
    char cfg[512], why[256] = "";
    FILE *f;
    bb_error err;
    bb_team team = { .name = "crew" };
    bb_storage *st;
    const bb_storage_ops *ops;
    bb_call call = { "test", NULL, 0 };

    snprintf(dir, sizeof dir, "/tmp/bbsurface-%d-XXXXXX", (int)getpid());
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cfg, sizeof cfg, "%s/botboard.yaml", dir);
    f = fopen(cfg, "w");
    cr_assert_not_null(f);
    fprintf(f, "environment: dev\nstorage:\n  backend: sqlite\n  sqlite:\n    path: bb.db\n"
               "session:\n  backend: memory\nupstream:\n  backend: %s\nlogging:\n  level: warn\n%s", upstream_name,
            extra_yaml ? extra_yaml : "");
    fclose(f);
    bb_error_clear(&err);
    memset(&srv, 0, sizeof srv);
    srv.app = bb_app_open(cfg, BB_APP_ALL | BB_APP_MIGRATE, &err);
    cr_assert_not_null(srv.app, "bb_app_open: %s", err.msg);
    cr_assert(bb_service_init(&srv, why, sizeof why), "service: %s", why);
    ops = bb_app_storage(srv.app, &st);
    team.created_ms = 1;
    cr_assert_eq(ops->team_create(st, &call, &team, &err), BB_OK, "%s", err.msg);

    memset(&sess, 0, sizeof sess);
    snprintf(sess.team, sizeof sess.team, "crew");
    sess.initialized = true;
    memset(&ctx, 0, sizeof ctx);
    ctx.srv = &srv;
    ctx.call.request_id = "test";
    ctx.version = v;
    snprintf(ctx.team, sizeof ctx.team, "crew");
    snprintf(ctx.rate_identity, sizeof ctx.rate_identity, "team:crew");
    ctx.session = &sess;
    ctx.notify = capture;
    notes = json_array();
    next_id = 1;
}

static void setup(void) { open_app(NULL, BB_MCP_2025_11_25); }

static void teardown(void)
{
    bb_session_clear(&sess);
    bb_service_fini(&srv);
    bb_app_close(srv.app);
    json_decref(notes);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- calling ------------------------------------------------------------ */

/* A JSON-RPC request through bb_mcp_handle; returns the whole response. */
static json_t *rpc(const char *method, const char *params_fmt, ...)
{
    va_list ap;
    json_t *params = NULL, *msg, *resp;
    if (params_fmt) {
        va_start(ap, params_fmt);
        params = json_vpack_ex(NULL, 0, params_fmt, ap);
        va_end(ap);
        cr_assert_not_null(params, "bad pack format for %s", method);
    }
    msg = json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0", "id", next_id++, "method", method);
    if (params) json_object_set_new(msg, "params", params);
    resp = bb_mcp_handle(&ctx, msg);
    json_decref(msg);
    cr_assert_not_null(resp, "%s: no response", method);
    return resp;
}

static json_t *result_of(json_t *resp, const char *what)
{
    json_t *r = json_object_get(resp, "result");
    char *s = json_dumps(resp, 0);
    cr_assert_not_null(r, "%s: no result: %s", what, s);
    free(s);
    return r;
}

static int error_code(json_t *resp)
{
    return (int)json_integer_value(json_object_get(json_object_get(resp, "error"), "code"));
}

static const char *error_message(json_t *resp)
{
    return json_string_value(json_object_get(json_object_get(resp, "error"), "message"));
}

/* tools/call: returns the response (result or error). */
static json_t *tool(const char *name, const char *args_fmt, ...)
{
    va_list ap;
    json_t *args = NULL, *resp;
    if (args_fmt) {
        va_start(ap, args_fmt);
        args = json_vpack_ex(NULL, 0, args_fmt, ap);
        va_end(ap);
        cr_assert_not_null(args, "bad pack format for %s", name);
    }
    resp = args ? rpc("tools/call", "{s:s, s:o}", "name", name, "arguments", args)
                : rpc("tools/call", "{s:s}", "name", name);
    return resp;
}

static const char *text_of(json_t *result)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(result, "content"), 0), "text"));
}

static bool is_error(json_t *result) { return json_is_true(json_object_get(result, "isError")); }

static json_t *tool_ok(json_t *resp, const char *what)
{
    json_t *r = result_of(resp, what);
    cr_assert_not(is_error(r), "%s failed: %s", what, text_of(r));
    cr_assert_not_null(text_of(r), "%s: no text block", what);
    return r;
}

static void expect_tool_error(json_t *resp, const char *what, const char *mention)
{
    json_t *r = result_of(resp, what);
    cr_expect(is_error(r), "%s: not an isError result: %s", what, text_of(r));
    cr_expect_not_null(text_of(r), "%s: no message", what);
    if (mention && text_of(r)) cr_expect_not_null(strstr(text_of(r), mention), "%s: '%s' not in: %s", what, mention, text_of(r));
    json_decref(resp);
}

/* A tool call that must succeed; the response is dropped. */
static void ok_call(json_t *resp, const char *what)
{
    tool_ok(resp, what);
    json_decref(resp);
}

static void login(const char *name)
{
    ok_call(tool("login", "{s:s}", "agent_name", name), "login");
    cr_assert_str_eq(sess.agent, name);
}

/* create_post as the logged-in agent; the new id is copied to id_out. */
static void post(const char *content, const char *tag, const char *parent, char id_out[BB_ID_MAX])
{
    json_t *args = json_pack("{s:s}", "content", content), *resp, *r;
    if (tag) json_object_set_new(args, "tags", json_pack("[s]", tag));
    if (parent) json_object_set_new(args, "parent_post_id", json_string(parent));
    resp = rpc("tools/call", "{s:s, s:o}", "name", "create_post", "arguments", args);
    r = tool_ok(resp, "create_post");
    snprintf(id_out, BB_ID_MAX, "%s", json_string_value(json_object_get(json_object_get(r, "structuredContent"), "postId")));
    cr_assert(strlen(id_out) > 0, "no postId in structuredContent");
    json_decref(resp);
}

/* ---- initialize pieces ---------------------------------------------------- */

Test(surface, capabilities_are_exactly_the_implemented_ones, .init = setup, .fini = teardown, .timeout = 30)
{
    for (bb_mcp_version v = BB_MCP_2025_03_26; v <= BB_MCP_2025_11_25; v++) {
        json_t *c = bb_mcp_capabilities(v);
        cr_assert_not_null(c);
        cr_expect_eq(json_object_size(c), 5);
        cr_expect(json_is_object(json_object_get(c, "tools")));
        cr_expect(json_is_object(json_object_get(c, "prompts")));
        cr_expect(json_is_object(json_object_get(c, "logging")));
        cr_expect(json_is_object(json_object_get(c, "completions")));
        cr_expect(json_is_true(json_object_get(json_object_get(c, "resources"), "subscribe")));
        cr_expect_null(json_object_get(json_object_get(c, "resources"), "listChanged"));
        json_decref(c);
    }
    cr_expect(strstr(bb_mcp_instructions(), "login") != NULL);
}

/* ---- tools/list ------------------------------------------------------------ */

/* Structural check of a schema the way clients compile it: object schemas
 * whose properties are schemas, required names that exist, known types. */
static void check_schema(json_t *s, const char *where)
{
    static const char *const types[] = { "object", "array", "string", "integer", "number", "boolean", "null" };
    json_t *type = json_object_get(s, "type"), *props, *req, *v;
    const char *k;
    size_t i;
    cr_assert(json_is_object(s), "%s: schema is not an object", where);
    cr_expect_null(json_object_get(s, "$ref"), "%s: $ref makes it not self-contained", where);
    if (json_is_string(type)) type = json_pack("[O]", type); else json_incref(type);
    cr_assert(json_is_array(type), "%s: no type", where);
    json_array_foreach(type, i, v) {
        bool known = false;
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) known |= strcmp(json_string_value(v), types[t]) == 0;
        cr_expect(known, "%s: unknown type %s", where, json_string_value(v));
    }
    json_decref(type);
    props = json_object_get(s, "properties");
    json_object_foreach(props, k, v) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.%s", where, k);
        check_schema(v, sub);
    }
    req = json_object_get(s, "required");
    json_array_foreach(req, i, v) cr_expect_not_null(json_object_get(props, json_string_value(v)),
                                                      "%s: required %s is not a property", where, json_string_value(v));
    if (json_object_get(s, "items")) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s[]", where);
        check_schema(json_object_get(s, "items"), sub);
    }
}

/* Does value satisfy schema (the subset of keywords our schemas use)? */
static bool fits(json_t *s, json_t *v)
{
    json_t *type = json_object_get(s, "type"), *t, *sub;
    const char *k;
    size_t i;
    bool ok = !type;
    if (json_is_string(type)) type = json_pack("[O]", type); else json_incref(type);
    json_array_foreach(type, i, t) {
        const char *n = json_string_value(t);
        ok |= (!strcmp(n, "object") && json_is_object(v)) || (!strcmp(n, "array") && json_is_array(v)) ||
              (!strcmp(n, "string") && json_is_string(v)) || (!strcmp(n, "integer") && json_is_integer(v)) ||
              (!strcmp(n, "boolean") && json_is_boolean(v)) || (!strcmp(n, "null") && json_is_null(v));
    }
    json_decref(type);
    if (!ok) return false;
    json_array_foreach(json_object_get(s, "required"), i, t)
        if (!json_object_get(v, json_string_value(t))) return false;
    json_object_foreach(json_object_get(s, "properties"), k, sub)
        if (json_object_get(v, k) && !fits(sub, json_object_get(v, k))) return false;
    if (json_is_array(v) && (sub = json_object_get(s, "items")))
        json_array_foreach(v, i, t) if (!fits(sub, t)) return false;
    return true;
}

static json_t *find_tool(json_t *tools, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) if (strcmp(json_string_value(json_object_get(t, "name")), name) == 0) return t;
    return NULL;
}

Test(surface, tools_list_has_the_six_tools_with_schemas, .init = setup, .fini = teardown, .timeout = 30)
{
    static const char *const names[] = { "login", "logout", "read_posts", "create_post", "get_post", "delete_post" };
    json_t *resp = rpc("tools/list", NULL), *tools = json_object_get(result_of(resp, "tools/list"), "tools"), *t;
    size_t i;
    cr_assert_eq(json_array_size(tools), 6);
    cr_expect_null(json_object_get(json_object_get(resp, "result"), "nextCursor"));
    for (i = 0; i < 6; i++) cr_expect_not_null(find_tool(tools, names[i]), "%s missing", names[i]);
    json_array_foreach(tools, i, t) {
        const char *n = json_string_value(json_object_get(t, "name"));
        json_t *in = json_object_get(t, "inputSchema"), *ann = json_object_get(t, "annotations");
        cr_expect(strlen(json_string_value(json_object_get(t, "description"))) > 0, "%s: description", n);
        cr_expect_str_eq(json_string_value(json_object_get(in, "type")), "object");
        cr_expect(json_is_false(json_object_get(in, "additionalProperties")), "%s: additionalProperties", n);
        check_schema(in, n);
        check_schema(json_object_get(t, "outputSchema"), n);
        cr_expect_str_eq(json_string_value(json_object_get(json_object_get(t, "outputSchema"), "type")), "object");
        cr_expect_not_null(json_object_get(t, "title"), "%s: title", n);
        cr_expect_null(json_object_get(t, "icons"));
        for (const char *const *h = (const char *const[]){ "title", "readOnlyHint", "destructiveHint", "idempotentHint",
                                                            "openWorldHint", NULL }; *h; h++)
            cr_expect_not_null(json_object_get(ann, *h), "%s: annotations.%s", n, *h);
    }
    cr_expect(json_is_true(json_object_get(json_object_get(find_tool(tools, "read_posts"), "annotations"), "readOnlyHint")));
    cr_expect(json_is_true(json_object_get(json_object_get(find_tool(tools, "delete_post"), "annotations"), "destructiveHint")));
    cr_expect(json_is_false(json_object_get(json_object_get(find_tool(tools, "create_post"), "annotations"), "readOnlyHint")));
    {   /* the argument names of DESIGN §6 */
        json_t *p = json_object_get(json_object_get(find_tool(tools, "read_posts"), "inputSchema"), "properties");
        for (const char *const *a = (const char *const[]){ "limit", "offset", "agent_filter", "tag_filter", "thread_id", NULL }; *a; a++)
            cr_expect_not_null(json_object_get(p, *a), "read_posts.%s", *a);
        p = json_object_get(json_object_get(find_tool(tools, "create_post"), "inputSchema"), "properties");
        for (const char *const *a = (const char *const[]){ "content", "tags", "parent_post_id", NULL }; *a; a++)
            cr_expect_not_null(json_object_get(p, *a), "create_post.%s", *a);
        cr_expect_null(json_object_get(json_object_get(find_tool(tools, "logout"), "inputSchema"), "properties"));
    }
    json_decref(resp);
}

Test(surface, tools_list_under_2025_03_26_has_no_title_or_output_schema, .fini = teardown, .timeout = 30)
{
    json_t *resp, *tools, *t;
    size_t i;
    open_app(NULL, BB_MCP_2025_03_26);
    resp = rpc("tools/list", NULL);
    tools = json_object_get(result_of(resp, "tools/list"), "tools");
    cr_assert_eq(json_array_size(tools), 6);
    json_array_foreach(tools, i, t) {
        cr_expect_null(json_object_get(t, "title"));
        cr_expect_null(json_object_get(t, "outputSchema"));
        cr_expect_not_null(json_object_get(t, "inputSchema"));
    }
    json_decref(resp);
    /* nor on resources, templates and prompts */
    for (const char *const *m = (const char *const[]){ "resources/list", "resources", "resources/templates/list",
                                                        "resourceTemplates", "prompts/list", "prompts", NULL }; *m; m += 2) {
        json_t *x;
        resp = rpc(m[0], NULL);
        cr_assert_gt(json_array_size(json_object_get(result_of(resp, m[0]), m[1])), 0);
        json_array_foreach(json_object_get(json_object_get(resp, "result"), m[1]), i, x)
            cr_expect_null(json_object_get(x, "title"), "%s: title under 2025-03-26", m[0]);
        json_decref(resp);
    }
}

Test(surface, list_pagination_with_opaque_cursors, .fini = teardown, .timeout = 30)
{
    json_t *r1, *r2, *bad;
    const char *cursor;
    open_app("mcp:\n  list_page_size: 4\n", BB_MCP_2025_11_25);
    r1 = rpc("tools/list", NULL);
    cr_assert_eq(json_array_size(json_object_get(result_of(r1, "p1"), "tools")), 4);
    cursor = json_string_value(json_object_get(json_object_get(r1, "result"), "nextCursor"));
    cr_assert_not_null(cursor);
    cr_expect_null(strstr(cursor, "4"), "cursor is not opaque: %s", cursor);
    r2 = rpc("tools/list", "{s:s}", "cursor", cursor);
    cr_assert_eq(json_array_size(json_object_get(result_of(r2, "p2"), "tools")), 2);
    cr_expect_null(json_object_get(json_object_get(r2, "result"), "nextCursor"), "nextCursor on the last page");
    bad = rpc("tools/list", "{s:s}", "cursor", "garbage!");
    cr_expect_eq(error_code(bad), BB_RPC_INVALID_PARAMS);
    json_decref(bad);
    bad = rpc("prompts/list", "{s:i}", "cursor", 3);
    cr_expect_eq(error_code(bad), BB_RPC_INVALID_PARAMS);
    json_decref(bad);
    json_decref(r1);
    json_decref(r2);
    /* The same cursors page prompts (8 -> 4 + 4) and templates (4 -> one page). */
    r1 = rpc("prompts/list", NULL);
    cr_expect_eq(json_array_size(json_object_get(result_of(r1, "prompts"), "prompts")), 4);
    cursor = json_string_value(json_object_get(json_object_get(r1, "result"), "nextCursor"));
    cr_assert_not_null(cursor);
    r2 = rpc("prompts/list", "{s:s}", "cursor", cursor);
    cr_expect_eq(json_array_size(json_object_get(result_of(r2, "prompts p2"), "prompts")), 4);
    cr_expect_null(json_object_get(json_object_get(r2, "result"), "nextCursor"));
    json_decref(r1);
    json_decref(r2);
    r1 = rpc("resources/templates/list", NULL);
    cr_expect_eq(json_array_size(json_object_get(result_of(r1, "templates"), "resourceTemplates")), 4);
    cr_expect_null(json_object_get(json_object_get(r1, "result"), "nextCursor"));
    json_decref(r1);
}

/* ---- tools/call ------------------------------------------------------------- */

Test(surface, create_before_login_asks_to_log_in, .init = setup, .fini = teardown, .timeout = 30)
{
    expect_tool_error(tool("create_post", "{s:s}", "content", "hello"), "create_post", "call login");
    expect_tool_error(tool("delete_post", "{s:s}", "post_id", "abc"), "delete_post", "call login");
}

Test(surface, login_create_read_get_delete, .init = setup, .fini = teardown, .timeout = 30)
{
    char root[BB_ID_MAX], reply[BB_ID_MAX];
    json_t *resp, *r, *sc, *tools_resp, *tools;
    tools_resp = rpc("tools/list", NULL);
    tools = json_object_get(result_of(tools_resp, "tools/list"), "tools");

    resp = tool("login", "{s:s}", "agent_name", "ada");
    r = tool_ok(resp, "login");
    cr_expect_not_null(strstr(text_of(r), "ada"));
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(r, "structuredContent"), "agent_name")), "ada");
    cr_expect(ctx.session_dirty, "login did not mark the session changed");
    cr_expect(fits(json_object_get(find_tool(tools, "login"), "outputSchema"), json_object_get(r, "structuredContent")));
    json_decref(resp);

    post("Root post about #engines", "engines", NULL, root);
    cr_expect_eq(strlen(root), 26, "ids are ULIDs: %s", root);
    post("A reply", NULL, root, reply);

    resp = tool("read_posts", "{s:s, s:i}", "thread_id", root, "limit", 10);
    r = tool_ok(resp, "read_posts");
    sc = json_object_get(r, "structuredContent");
    cr_expect(fits(json_object_get(find_tool(tools, "read_posts"), "outputSchema"), sc), "page does not fit its schema");
    cr_expect_eq(json_integer_value(json_object_get(sc, "totalCount")), 2);
    cr_expect_eq(json_array_size(json_object_get(sc, "posts")), 2);
    cr_expect_not_null(strstr(text_of(r), root));
    cr_expect_not_null(strstr(text_of(r), reply));
    cr_expect_not_null(strstr(text_of(r), "@ada"));
    cr_expect_not_null(strstr(text_of(r), "#engines"));
    cr_expect_not_null(strstr(text_of(r), "reply"), "no reply marker: %s", text_of(r));
    json_decref(resp);

    resp = tool("read_posts", "{s:s}", "tag_filter", "engines");
    sc = json_object_get(tool_ok(resp, "read_posts tag"), "structuredContent");
    cr_expect_eq(json_integer_value(json_object_get(sc, "totalCount")), 1);
    json_decref(resp);
    {   /* two pages of one: together exactly the agent's two posts */
        char seen[2][BB_ID_MAX];
        for (int off = 0; off < 2; off++) {
            resp = tool("read_posts", "{s:s, s:i, s:i}", "agent_filter", "ada", "limit", 1, "offset", off);
            sc = json_object_get(tool_ok(resp, "read_posts paged"), "structuredContent");
            cr_expect_eq(json_integer_value(json_object_get(sc, "totalCount")), 2);
            cr_assert_eq(json_array_size(json_object_get(sc, "posts")), 1);
            snprintf(seen[off], BB_ID_MAX, "%s",
                     json_string_value(json_object_get(json_array_get(json_object_get(sc, "posts"), 0), "postId")));
            cr_expect_eq(json_is_null(json_object_get(sc, "nextOffset")), off == 1, "nextOffset on page %d", off);
            json_decref(resp);
        }
        cr_expect_str_neq(seen[0], seen[1]);
        cr_expect(!strcmp(seen[0], root) || !strcmp(seen[1], root));
        cr_expect(!strcmp(seen[0], reply) || !strcmp(seen[1], reply));
    }

    resp = tool("get_post", "{s:s}", "post_id", reply);
    r = tool_ok(resp, "get_post");
    sc = json_object_get(r, "structuredContent");
    cr_expect(fits(json_object_get(find_tool(tools, "get_post"), "outputSchema"), sc));
    cr_expect_str_eq(json_string_value(json_object_get(sc, "parentPostId")), root);
    cr_expect_str_eq(json_string_value(json_object_get(sc, "author")), "ada");
    cr_expect_not_null(strstr(text_of(r), "A reply"));
    json_decref(resp);

    resp = tool("delete_post", "{s:s}", "post_id", reply);
    r = tool_ok(resp, "delete_post");
    cr_expect(fits(json_object_get(find_tool(tools, "delete_post"), "outputSchema"), json_object_get(r, "structuredContent")));
    json_decref(resp);
    expect_tool_error(tool("get_post", "{s:s}", "post_id", reply), "get after delete", "not found");

    resp = tool("logout", NULL);
    r = tool_ok(resp, "logout");
    cr_expect(fits(json_object_get(find_tool(tools, "logout"), "outputSchema"), json_object_get(r, "structuredContent")));
    cr_expect_str_eq(sess.agent, "");
    json_decref(resp);
    expect_tool_error(tool("create_post", "{s:s}", "content", "after logout"), "create after logout", "login");
    json_decref(tools_resp);
}

static void on_event(void *ud, const bb_post_event *ev)
{
    if (strcmp(ev->team, "crew") == 0 && strcmp(ev->author, "ada") == 0) (*(int *)ud)++;
}

Test(surface, login_trims_the_handle_like_create_post, .init = setup, .fini = teardown, .timeout = 30)
{
    char id[BB_ID_MAX];
    json_t *resp;
    ok_call(tool("login", "{s:s}", "agent_name", "  ada  "), "login");
    cr_expect_str_eq(sess.agent, "ada");
    post("mine", NULL, NULL, id);
    resp = tool("delete_post", "{s:s}", "post_id", id);
    tool_ok(resp, "delete own post after a padded login");
    json_decref(resp);
}

Test(surface, create_post_publishes_an_event, .init = setup, .fini = teardown, .timeout = 30)
{
    static int seen;
    char id[BB_ID_MAX];
    int sub;
    seen = 0;
    sub = bb_events_subscribe(srv.events, on_event, &seen);
    cr_assert(sub > 0);
    login("ada");
    post("event me", NULL, NULL, id);
    cr_expect_eq(seen, 1, "create_post published %d events", seen);
    bb_events_unsubscribe(srv.events, sub);
}

Test(surface, validation_failures_name_the_argument, .init = setup, .fini = teardown, .timeout = 30)
{
    json_t *tags = json_array();
    for (int i = 0; i < 21; i++) json_array_append_new(tags, json_sprintf("t%d", i));
    login("ada");
    expect_tool_error(tool("create_post", "{s:s}", "content", "   "), "blank content", "content");
    expect_tool_error(tool("create_post", "{s:s, s:o}", "content", "x", "tags", tags), "21 tags", "tags");
    expect_tool_error(tool("create_post", "{s:s, s:[s]}", "content", "x", "tags", "0123456789012345678901234567890123"),
                      "33-char tag", "tags");
    expect_tool_error(tool("create_post", "{s:s, s:s}", "content", "x", "parent_post_id", "01HZZZZZZZZZZZZZZZZZZZZZZZ"),
                      "missing parent", "parent_post_id");
    expect_tool_error(tool("login", "{s:s}", "agent_name", ""), "empty handle", "agent_name");
    expect_tool_error(tool("login", "{s:s}", "agent_name", "bad\001name"), "control char", "agent_name");
    expect_tool_error(tool("read_posts", "{s:i}", "limit", 0), "limit 0", "limit");
    expect_tool_error(tool("read_posts", "{s:i}", "limit", 101), "limit 101", "limit");
    expect_tool_error(tool("read_posts", "{s:i}", "offset", -1), "offset -1", "offset");
    expect_tool_error(tool("get_post", "{s:s}", "post_id", "../etc"), "bad id", "post_id");
    expect_tool_error(tool("get_post", "{s:s}", "post_id", "01HNOSUCHPOST"), "unknown id", "not found");
}

Test(surface, wrong_argument_types_are_isError_from_2025_11_25, .init = setup, .fini = teardown, .timeout = 30)
{
    expect_tool_error(tool("read_posts", "{s:s}", "limit", "ten"), "limit string", "limit");
    expect_tool_error(tool("read_posts", "{s:b}", "bogus", 1), "unknown argument", "bogus");
    expect_tool_error(tool("login", "{}"), "missing agent_name", "agent_name");
    expect_tool_error(tool("create_post", "{s:s, s:[i]}", "content", "x", "tags", 5), "tags[0] int", "tags[0]");
}

Test(surface, wrong_argument_types_are_protocol_errors_before_2025_11_25, .fini = teardown, .timeout = 30)
{
    json_t *resp;
    open_app(NULL, BB_MCP_2025_06_18);
    resp = tool("read_posts", "{s:s}", "limit", "ten");
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS);
    cr_expect_not_null(strstr(error_message(resp), "limit"), "%s", error_message(resp));
    json_decref(resp);
    resp = tool("get_post", "{s:i}", "post_id", 7);
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS);
    json_decref(resp);
    resp = rpc("tools/call", "{s:s, s:[]}", "name", "read_posts", "arguments");
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS);
    json_decref(resp);
}

Test(surface, unknown_tool_is_invalid_params, .init = setup, .fini = teardown, .timeout = 30)
{
    json_t *resp = tool("no_such_tool", "{}");
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS);
    cr_expect_null(json_object_get(resp, "result"));
    json_decref(resp);
    resp = rpc("tools/call", "{}");
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS);
    json_decref(resp);
}

Test(surface, delete_only_own_posts, .init = setup, .fini = teardown, .timeout = 30)
{
    char id[BB_ID_MAX];
    login("ada");
    post("ada's post", NULL, NULL, id);
    login("bob");
    expect_tool_error(tool("delete_post", "{s:s}", "post_id", id), "foreign delete", "own posts");
    ok_call(tool("get_post", "{s:s}", "post_id", id), "post survives");
}

Test(surface, structured_content_absent_under_2025_03_26, .fini = teardown, .timeout = 30)
{
    char id[BB_ID_MAX] = "";
    json_t *resp, *r;
    open_app(NULL, BB_MCP_2025_03_26);
    login("ada");
    resp = tool("create_post", "{s:s}", "content", "old client");
    r = tool_ok(resp, "create_post");
    cr_expect_null(json_object_get(r, "structuredContent"));
    cr_expect_not_null(strstr(text_of(r), "Post "), "text must give the id: %s", text_of(r));
    sscanf(strstr(text_of(r), "Post ") + 5, "%39s", id);
    json_decref(resp);
    resp = tool("read_posts", NULL);
    r = tool_ok(resp, "read_posts");
    cr_expect_null(json_object_get(r, "structuredContent"));
    cr_expect_not_null(strstr(text_of(r), id), "feed text lacks %s", id);
    json_decref(resp);
}

Test(surface, rate_limited_calls_are_isError_with_retry_time, .fini = teardown, .timeout = 30)
{
    char id[BB_ID_MAX];
    open_app("ratelimit:\n  write:\n    burst: 2\n    per_minute: 1\n  read:\n    burst: 3\n    per_minute: 1\n",
             BB_MCP_2025_11_25);
    login("ada");
    post("one", NULL, NULL, id);
    post("two", NULL, NULL, id);
    expect_tool_error(tool("create_post", "{s:s}", "content", "three"), "third create", "retry in");
    /* reads: tools and resources share the read bucket */
    ok_call(tool("read_posts", NULL), "read 1");
    json_decref(rpc("resources/read", "{s:s}", "uri", "social://feed"));
    ok_call(tool("get_post", "{s:s}", "post_id", id), "read 3");
    expect_tool_error(tool("read_posts", NULL), "fourth read", "Rate limit");
    {
        json_t *resp = rpc("resources/read", "{s:s}", "uri", "social://feed");
        cr_expect(error_code(resp) != 0, "resources/read not limited");
        cr_expect_not_null(strstr(error_message(resp), "retry in"));
        json_decref(resp);
    }
}

Test(surface, upstream_unavailable_gives_retry_hint, .fini = teardown, .timeout = 30)
{
    char cfg[512], why[256] = "";
    FILE *f;
    bb_error err;
    snprintf(dir, sizeof dir, "/tmp/bbsurface-%d-XXXXXX", (int)getpid());
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cfg, sizeof cfg, "%s/botboard.yaml", dir);
    f = fopen(cfg, "w");
    cr_assert_not_null(f);
    /* the test-only fake upstream: no posts, creates are UNAVAILABLE */
    fprintf(f, "environment: dev\nstorage:\n  backend: fake\nsession:\n  backend: memory\nupstream:\n  backend: fake\n");
    fclose(f);
    bb_error_clear(&err);
    memset(&srv, 0, sizeof srv);
    srv.app = bb_app_open(cfg, BB_APP_ALL, &err);
    cr_assert_not_null(srv.app, "%s", err.msg);
    cr_assert(bb_service_init(&srv, why, sizeof why), "%s", why);
    memset(&sess, 0, sizeof sess);
    sess.initialized = true;
    memset(&ctx, 0, sizeof ctx);
    ctx.srv = &srv;
    ctx.version = BB_MCP_2025_11_25;
    snprintf(ctx.team, sizeof ctx.team, "crew");
    snprintf(ctx.rate_identity, sizeof ctx.rate_identity, "team:crew");
    ctx.session = &sess;
    notes = json_array();
    login("ada");
    expect_tool_error(tool("create_post", "{s:s}", "content", "x"), "unavailable", "retry in");
    expect_tool_error(tool("get_post", "{s:s}", "post_id", "nope"), "not found", "not found");
}

/* ---- resources ---------------------------------------------------------------- */

static char *read_text(const char *uri)
{
    json_t *resp = rpc("resources/read", "{s:s}", "uri", uri), *c;
    char *text;
    c = json_array_get(json_object_get(result_of(resp, uri), "contents"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(c, "uri")), uri);
    cr_assert_str_eq(json_string_value(json_object_get(c, "mimeType")), "application/json");
    text = strdup(json_string_value(json_object_get(c, "text")));
    json_decref(resp);
    return text;
}

/* createdAt of a wire post in ns */
static long long when_of(json_t *p)
{
    json_t *c = json_object_get(p, "createdAt");
    return json_integer_value(json_object_get(c, "_seconds")) * 1000000000LL +
           json_integer_value(json_object_get(c, "_nanoseconds"));
}

Test(surface, resources_and_templates, .init = setup, .fini = teardown, .timeout = 30)
{
    char root[BB_ID_MAX], reply[BB_ID_MAX], mention[BB_ID_MAX], other[BB_ID_MAX], uri[256];
    json_t *resp, *list, *x, *data;
    char *text;
    size_t i;

    resp = rpc("resources/list", NULL);
    list = json_object_get(result_of(resp, "resources/list"), "resources");
    cr_expect_eq(json_array_size(list), 2);
    json_array_foreach(list, i, x) {
        cr_expect_not_null(json_object_get(x, "name"));
        cr_expect_not_null(json_object_get(x, "title"));
        cr_expect_str_eq(json_string_value(json_object_get(x, "mimeType")), "application/json");
    }
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "uri")), "social://feed");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(list, 1), "uri")), "social://notifications");
    json_decref(resp);
    resp = rpc("resources/templates/list", NULL);
    list = json_object_get(result_of(resp, "templates"), "resourceTemplates");
    cr_expect_eq(json_array_size(list), 4);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(list, 2), "uriTemplate")),
                     "social://agents/{agentName}/profile");
    json_decref(resp);

    /* notifications before login: a hint, no posts */
    text = read_text("social://notifications");
    cr_expect_not_null(strstr(text, "login"));
    free(text);

    login("ada");
    post("root by ada", "design", NULL, root);
    login("bob");
    post("bob replies", NULL, root, reply);
    post("hey @ada look", NULL, NULL, mention);
    post("unrelated", NULL, NULL, other);
    login("ada");

    text = read_text("social://feed");
    data = json_loads(text, 0, NULL);
    cr_expect_eq(json_integer_value(json_object_get(data, "totalCount")), 4);
    json_decref(data);
    free(text);

    text = read_text("social://notifications");
    cr_expect_not_null(strstr(text, reply), "reply missing: %s", text);
    cr_expect_not_null(strstr(text, mention), "mention missing: %s", text);
    cr_expect_null(strstr(text, other), "unrelated post shown");
    free(text);

    snprintf(uri, sizeof uri, "social://posts/%s", root);
    text = read_text(uri);
    cr_expect_not_null(strstr(text, "root by ada"));
    free(text);
    snprintf(uri, sizeof uri, "social://threads/%s", root);
    text = read_text(uri);
    cr_expect_not_null(strstr(text, "root by ada"));
    cr_expect_not_null(strstr(text, "bob replies"));
    {   /* oldest first: (createdAt, postId) never decreases */
        json_t *posts = json_object_get((data = json_loads(text, 0, NULL)), "posts"), *a, *b;
        cr_assert_eq(json_array_size(posts), 2);
        a = json_array_get(posts, 0);
        b = json_array_get(posts, 1);
        cr_expect(when_of(a) < when_of(b) ||
                  (when_of(a) == when_of(b) && strcmp(json_string_value(json_object_get(a, "postId")),
                                                      json_string_value(json_object_get(b, "postId"))) < 0),
                  "thread not oldest first: %s", text);
        json_decref(data);
    }
    free(text);
    text = read_text("social://agents/bob/profile");
    data = json_loads(text, 0, NULL);
    cr_expect_str_eq(json_string_value(json_object_get(data, "agentName")), "bob");
    cr_expect_eq(json_integer_value(json_object_get(data, "postCount")), 3);
    json_decref(data);
    free(text);
    text = read_text("social://agents/ada/posts");
    cr_expect_not_null(strstr(text, "root by ada"));
    cr_expect_null(strstr(text, "bob replies"));
    free(text);
    text = read_text("social://agents/b%6Fb/posts");   /* percent-encoded variable */
    cr_expect_not_null(strstr(text, "bob replies"));
    free(text);

    for (const char *const *u = (const char *const[]){ "social://posts/01HNOSUCH", "social://nowhere",
                                                        "social://threads/01HNOSUCH", "social://posts/a/b",
                                                        "social://posts/%zz", "http://example.com/", NULL }; *u; u++) {
        resp = rpc("resources/read", "{s:s}", "uri", *u);
        cr_expect_eq(error_code(resp), BB_RPC_RESOURCE_UNKNOWN, "%s: code %d", *u, error_code(resp));
        cr_expect_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(resp, "error"), "data"), "uri")), *u);
        json_decref(resp);
    }
    resp = rpc("resources/read", "{}");
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS);
    json_decref(resp);
}

Test(surface, subscriptions_are_kept_in_the_session, .init = setup, .fini = teardown, .timeout = 30)
{
    json_t *resp = rpc("resources/subscribe", "{s:s}", "uri", "social://feed");
    cr_expect_eq(json_object_size(result_of(resp, "subscribe")), 0);
    json_decref(resp);
    json_decref(rpc("resources/subscribe", "{s:s}", "uri", "social://unknown/thing"));   /* accepted */
    json_decref(rpc("resources/subscribe", "{s:s}", "uri", "social://feed"));            /* dedup */
    cr_expect_eq(sess.n_subs, 2);
    cr_expect(ctx.session_dirty);
    resp = rpc("resources/unsubscribe", "{s:s}", "uri", "social://feed");
    cr_expect_eq(json_object_size(result_of(resp, "unsubscribe")), 0);
    json_decref(resp);
    cr_expect_eq(sess.n_subs, 1);
    cr_expect_str_eq(sess.subs[0], "social://unknown/thing");
    resp = rpc("resources/subscribe", "{s:i}", "uri", 3);
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS);
    json_decref(resp);
    for (int i = 0; i < BB_SESSION_SUBS_MAX; i++) {
        char uri[64];
        snprintf(uri, sizeof uri, "social://threads/t%d", i);
        json_decref(rpc("resources/subscribe", "{s:s}", "uri", uri));
    }
    resp = rpc("resources/subscribe", "{s:s}", "uri", "social://threads/one-too-many");
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS, "full subscription set accepted");
    json_decref(resp);
}

Test(surface, uri_matching_for_event_delivery, .timeout = 30)
{
    bb_post_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.team, sizeof ev.team, "crew");
    snprintf(ev.post_id, sizeof ev.post_id, "P2");
    snprintf(ev.thread_id, sizeof ev.thread_id, "P1");
    snprintf(ev.parent_id, sizeof ev.parent_id, "P1");
    snprintf(ev.author, sizeof ev.author, "ada lovelace");
    cr_expect(bb_mcp_uri_matches("social://feed", "crew", &ev));
    cr_expect_not(bb_mcp_uri_matches("social://feed", "other", &ev), "another team's post");
    cr_expect(bb_mcp_uri_matches("social://threads/P1", "crew", &ev));
    cr_expect_not(bb_mcp_uri_matches("social://threads/P2", "crew", &ev));
    cr_expect(bb_mcp_uri_matches("social://posts/P2", "crew", &ev));
    cr_expect(bb_mcp_uri_matches("social://posts/P1", "crew", &ev), "a reply concerns its parent");
    cr_expect_not(bb_mcp_uri_matches("social://posts/P9", "crew", &ev));
    cr_expect(bb_mcp_uri_matches("social://agents/ada%20lovelace/posts", "crew", &ev));
    cr_expect_not(bb_mcp_uri_matches("social://agents/bob/posts", "crew", &ev));
    cr_expect_not(bb_mcp_uri_matches("social://unknown/thing", "crew", &ev));
    cr_expect_not(bb_mcp_uri_matches("social://feedx", "crew", &ev));
}

/* ---- prompts ------------------------------------------------------------------------ */

Test(surface, every_prompt_is_filled_with_real_posts, .init = setup, .fini = teardown, .timeout = 30)
{
    static const char *const names[] = { "summarize-thread", "summarize-agent-activity", "draft-reply",
                                         "generate-hashtags", "create-engagement-post", "analyze-sentiment",
                                         "find-related-discussions", "generate-engagement-report" };
    char root[BB_ID_MAX], reply[BB_ID_MAX], side[BB_ID_MAX];
    json_t *resp, *list, *p, *a;
    size_t i, j;

    login("ada");
    post("Root: we should cache the feed", "perf", NULL, root);
    login("bob");
    post("Reply: agreed, an LRU in front", "perf", root, reply);
    post("Side thread on perf budgets", "perf", NULL, side);

    resp = rpc("prompts/list", NULL);
    list = json_object_get(result_of(resp, "prompts/list"), "prompts");
    cr_assert_eq(json_array_size(list), 8);
    for (i = 0; i < 8; i++) {
        json_t *args = json_object(), *got, *msgs;
        const char *text;
        p = json_array_get(list, i);
        cr_expect_str_eq(json_string_value(json_object_get(p, "name")), names[i]);
        cr_expect(strlen(json_string_value(json_object_get(p, "description"))) > 0);
        cr_expect_not_null(json_object_get(p, "title"));
        json_array_foreach(json_object_get(p, "arguments"), j, a) {
            const char *n = json_string_value(json_object_get(a, "name"));
            cr_expect(json_is_boolean(json_object_get(a, "required")), "%s.%s: required flag", names[i], n);
            if (!strcmp(n, "thread_id") || !strcmp(n, "post_id")) json_object_set_new(args, n, json_string(root));
            else if (!strcmp(n, "agent_name")) json_object_set_new(args, n, json_string("ada"));
            else if (!strcmp(n, "content")) json_object_set_new(args, n, json_string("Root: we should cache the feed"));
            else if (!strcmp(n, "tag")) json_object_set_new(args, n, json_string("perf"));
            else if (!strcmp(n, "topic")) json_object_set_new(args, n, json_string("caching"));
            else if (!strcmp(n, "limit")) json_object_set_new(args, n, json_string("10"));
        }
        got = rpc("prompts/get", "{s:s, s:o}", "name", names[i], "arguments", args);
        msgs = json_object_get(result_of(got, names[i]), "messages");
        cr_assert_eq(json_array_size(msgs), 1, "%s", names[i]);
        cr_expect_str_eq(json_string_value(json_object_get(json_array_get(msgs, 0), "role")), "user");
        text = json_string_value(json_object_get(json_object_get(json_array_get(msgs, 0), "content"), "text"));
        cr_assert_not_null(text);
        cr_expect(strstr(text, "Root: we should cache the feed") || strstr(text, "Reply: agreed"),
                  "%s quotes no real post: %s", names[i], text);
        json_decref(got);
    }
    json_decref(resp);

    /* specific fillings */
    resp = rpc("prompts/get", "{s:s, s:{s:s}}", "name", "find-related-discussions", "arguments", "post_id", root);
    {
        char *s = json_dumps(json_object_get(resp, "result"), 0);
        cr_expect_not_null(strstr(s, "Side thread on perf budgets"), "related post sharing the tag not offered");
        free(s);
    }
    json_decref(resp);
    resp = rpc("prompts/get", "{s:s, s:{s:s}}", "name", "summarize-thread", "arguments", "thread_id", root);
    {
        char *s = json_dumps(json_object_get(resp, "result"), 0);
        cr_expect_not_null(strstr(s, "Reply: agreed"));
        cr_expect_null(strstr(s, "Side thread"), "another thread quoted");
        free(s);
    }
    json_decref(resp);
}

Test(surface, prompt_errors_are_invalid_params, .init = setup, .fini = teardown, .timeout = 30)
{
    json_t *resp;
    resp = rpc("prompts/get", "{s:s}", "name", "summarize-thread");
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS);
    cr_expect_not_null(strstr(error_message(resp), "thread_id"));
    json_decref(resp);
    resp = rpc("prompts/get", "{s:s}", "name", "no-such-prompt");
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS);
    json_decref(resp);
    resp = rpc("prompts/get", "{s:s, s:{s:i}}", "name", "draft-reply", "arguments", "post_id", 5);
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS);
    json_decref(resp);
    resp = rpc("prompts/get", "{s:s, s:{s:s}}", "name", "summarize-thread", "arguments", "thread_id", "01HNOSUCH");
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS, "unknown thread: %d", error_code(resp));
    json_decref(resp);
    resp = rpc("prompts/get", "{s:s, s:{s:s, s:s}}", "name", "summarize-agent-activity", "arguments", "agent_name",
               "ada", "limit", "lots");
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS);
    cr_expect_not_null(strstr(error_message(resp), "limit"));
    json_decref(resp);
}

/* ---- completion ---------------------------------------------------------------------- */

static json_t *complete_values(json_t *resp)
{
    return json_object_get(json_object_get(result_of(resp, "complete"), "completion"), "values");
}

Test(surface, completion_of_agents_tags_and_threads, .init = setup, .fini = teardown, .timeout = 30)
{
    char root[BB_ID_MAX], reply[BB_ID_MAX];
    json_t *resp, *v;
    login("adalovelace");
    post("root", "robots", NULL, root);
    login("adams");
    post("reply", "rockets", root, reply);
    login("bob");
    post("other", "robots", NULL, reply);

    resp = rpc("completion/complete", "{s:{s:s, s:s}, s:{s:s, s:s}}", "ref", "type", "ref/resource", "uri",
               "social://agents/{agentName}/profile", "argument", "name", "agentName", "value", "ada");
    v = complete_values(resp);
    cr_expect_eq(json_array_size(v), 2, "ada*: %zu values", json_array_size(v));
    json_decref(resp);
    resp = rpc("completion/complete", "{s:{s:s, s:s}, s:{s:s, s:s}}", "ref", "type", "ref/prompt", "name",
               "summarize-agent-activity", "argument", "name", "agent_name", "value", "b");
    v = complete_values(resp);
    cr_expect_eq(json_array_size(v), 1);
    cr_expect_str_eq(json_string_value(json_array_get(v, 0)), "bob");
    json_decref(resp);
    resp = rpc("completion/complete", "{s:{s:s, s:s}, s:{s:s, s:s}}", "ref", "type", "ref/prompt", "name",
               "analyze-sentiment", "argument", "name", "tag", "value", "ro");
    v = complete_values(resp);
    cr_expect_eq(json_array_size(v), 2, "ro*: robots, rockets");
    cr_expect_str_eq(json_string_value(json_array_get(v, 0)), "robots", "most used first");
    json_decref(resp);
    resp = rpc("completion/complete", "{s:{s:s, s:s}, s:{s:s, s:s}}", "ref", "type", "ref/resource", "uri",
               "social://threads/{threadId}", "argument", "name", "threadId", "value", "");
    v = complete_values(resp);
    cr_expect_eq(json_array_size(v), 2, "two top-level posts, got %zu", json_array_size(v));
    json_decref(resp);
    /* unknown reference or argument: empty list */
    resp = rpc("completion/complete", "{s:{s:s, s:s}, s:{s:s, s:s}}", "ref", "type", "ref/prompt", "name", "nope",
               "argument", "name", "agent_name", "value", "a");
    cr_expect_eq(json_array_size(complete_values(resp)), 0);
    json_decref(resp);
    resp = rpc("completion/complete", "{s:{s:s, s:s}, s:{s:s, s:s}}", "ref", "type", "ref/prompt", "name",
               "draft-reply", "argument", "name", "tone", "value", "f");
    cr_expect_eq(json_array_size(complete_values(resp)), 0);
    json_decref(resp);
    /* malformed */
    resp = rpc("completion/complete", "{s:{s:s}, s:{s:s, s:s}}", "ref", "type", "ref/bogus", "argument", "name",
               "x", "value", "");
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS);
    json_decref(resp);
    resp = rpc("completion/complete", "{s:{s:s, s:s}}", "ref", "type", "ref/prompt", "name", "draft-reply");
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS);
    json_decref(resp);
}

/* ---- logging ---------------------------------------------------------------------------- */

Test(surface, set_level_and_log_notifications, .init = setup, .fini = teardown, .timeout = 30)
{
    json_t *resp;
    bb_mcp_log(&ctx, "error", "test", json_string("before setLevel"));
    cr_expect_eq(json_array_size(notes), 0, "sent before the client asked");
    resp = rpc("logging/setLevel", "{s:s}", "level", "warning");
    cr_expect_eq(json_object_size(result_of(resp, "setLevel")), 0);
    json_decref(resp);
    cr_expect_str_eq(sess.log_level, "warning");
    cr_expect(ctx.session_dirty);
    bb_mcp_log(&ctx, "info", "test", json_string("too low"));
    bb_mcp_log(&ctx, "error", "test", json_string("high enough"));
    cr_assert_eq(json_array_size(notes), 1);
    {
        json_t *n = json_array_get(notes, 0), *p = json_object_get(n, "params");
        cr_expect_str_eq(json_string_value(json_object_get(n, "method")), "notifications/message");
        cr_expect_str_eq(json_string_value(json_object_get(p, "level")), "error");
        cr_expect_str_eq(json_string_value(json_object_get(p, "logger")), "test");
        cr_expect_str_eq(json_string_value(json_object_get(p, "data")), "high enough");
    }
    /* a failing tool call logs a warning to the client */
    expect_tool_error(tool("create_post", "{s:s}", "content", "x"), "not logged in", "login");
    cr_expect_eq(json_array_size(notes), 2);
    resp = rpc("logging/setLevel", "{s:s}", "level", "chatty");
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS);
    json_decref(resp);
    resp = rpc("logging/setLevel", "{}");
    cr_expect_eq(error_code(resp), BB_RPC_INVALID_PARAMS);
    json_decref(resp);
    cr_expect_str_eq(sess.log_level, "warning");
}

/* ---- upstream_local --------------------------------------------------------------------- */

Test(surface, upstream_local_assigns_id_and_time, .init = setup, .fini = teardown, .timeout = 30)
{
    bb_upstream *inst;
    const bb_upstream_ops *up = bb_app_upstream(srv.app, &inst);
    bb_new_post np = { "ada", "hello", (const char *const[]){ "x", "y" }, 2, NULL };
    bb_post out, got;
    bb_read_meta meta = { true, 99 };
    bb_error err;
    char **v = NULL;
    size_t n = 0;
    bb_call call = { "t", NULL, 0 };
    int64_t before = (int64_t)time(NULL) * 1000 - 1000;
    cr_assert_not_null(up);
    memset(&out, 0, sizeof out);
    memset(&got, 0, sizeof got);
    bb_error_clear(&err);
    cr_assert_eq(up->create_post(inst, &call, "crew", &np, &out, &err), BB_OK, "%s", err.msg);
    cr_expect_eq(strlen(out.id), 26);
    cr_expect_geq(out.created_ms, before);
    cr_expect_str_eq(out.thread_id, out.id);
    cr_assert_eq(up->get_post(inst, &call, "crew", out.id, &got, &meta, &err), BB_OK);
    cr_expect_not(meta.stale, "local reads are never stale");
    cr_expect_eq(got.n_tags, 2);
    cr_expect_eq(up->distinct(inst, &call, "crew", BB_DISTINCT_TAG, "", 10, &v, &n, &err), BB_OK);
    cr_expect_eq(n, 2);
    bb_strv_free(v, n);
    cr_expect_eq(up->delete_post(inst, &call, "crew", out.id, &err), BB_OK);
    cr_expect_eq(up->delete_post(inst, &call, "crew", out.id, &err), BB_NOT_FOUND);
    np.parent_id = "01HNOSUCHPARENT";
    cr_expect_eq(up->create_post(inst, &call, "crew", &np, &got, &err), BB_NOT_FOUND);
    {
        char detail[200] = "";
        cr_expect_eq(up->health(inst, &call, detail, sizeof detail, &err), BB_OK);
        cr_expect_not_null(strstr(detail, "local storage"));
    }
    bb_post_clear(&out);
    bb_post_clear(&got);
}

/* ---- an upstream whose origin is down (tests/test_mcp_surface_stale.c) ---- */

Test(surface, stale_reads_say_so_and_writes_give_a_retry_hint, .fini = teardown, .timeout = 30)
{
    json_t *resp, *r, *sc, *tools_resp, *tools;
    char *text;
    upstream_name = "stale";
    open_app("plugins:\n  path: [\"" BB_ABS_BUILDDIR "/tests/.libs\"]\n", BB_MCP_2025_11_25);
    tools_resp = rpc("tools/list", NULL);
    tools = json_object_get(result_of(tools_resp, "tools/list"), "tools");

    resp = tool("read_posts", NULL);
    r = tool_ok(resp, "stale read_posts");
    sc = json_object_get(r, "structuredContent");
    cr_expect(json_is_true(json_object_get(sc, "stale")));
    cr_expect_eq(json_integer_value(json_object_get(sc, "ageMs")), 42000);
    cr_expect(fits(json_object_get(find_tool(tools, "read_posts"), "outputSchema"), sc));
    cr_expect_not_null(strstr(text_of(r), "42 s old"), "no stale note: %s", text_of(r));
    json_decref(resp);

    resp = tool("get_post", "{s:s}", "post_id", "01HSTALESTALESTALESTALE000");
    r = tool_ok(resp, "stale get_post");
    sc = json_object_get(r, "structuredContent");
    cr_expect(json_is_true(json_object_get(sc, "stale")));
    cr_expect(fits(json_object_get(find_tool(tools, "get_post"), "outputSchema"), sc));
    cr_expect_not_null(strstr(text_of(r), "cache"));
    json_decref(resp);

    text = read_text("social://feed");
    cr_expect_not_null(strstr(text, "\"stale\":true"), "%s", text);
    free(text);

    login("ada");
    expect_tool_error(tool("create_post", "{s:s}", "content", "x"), "create while down", "retry in 7 seconds");
    expect_tool_error(tool("delete_post", "{s:s}", "post_id", "01HSTALESTALESTALESTALE000"), "delete foreign", "own posts");
    resp = rpc("completion/complete", "{s:{s:s, s:s}, s:{s:s, s:s}}", "ref", "type", "ref/prompt", "name",
               "analyze-sentiment", "argument", "name", "tag", "value", "");
    cr_expect_eq(json_array_size(complete_values(resp)), 0, "suggestions while down");
    json_decref(resp);
    resp = rpc("prompts/get", "{s:s, s:{s:s}}", "name", "generate-hashtags", "arguments", "content", "x");
    cr_expect_eq(error_code(resp), BB_RPC_INTERNAL, "prompt needing tags while down: %d", error_code(resp));
    cr_expect_not_null(strstr(error_message(resp), "retry"));
    json_decref(resp);
    json_decref(tools_resp);
}

/* read_posts' text: one entry per post, "- [id] @author · time · #tags
 * (· ↳ reply)" then the content on one indented line, cut at 280
 * characters; JSON-special characters survive the direct escaping. */
Test(surface, read_posts_text_is_a_compact_feed, .init = setup, .fini = teardown, .timeout = 30)
{
    char root[BB_ID_MAX], reply[BB_ID_MAX], big[BB_ID_MAX], want[512], longc[400], when[40];
    const char *text, *entry;
    json_t *resp, *r;
    login("ada");
    post("first line\nsecond \"quoted\" \\ line", "plans", NULL, root);
    post("a reply", NULL, root, reply);
    memset(longc, 'x', 300);
    memcpy(longc, "é", 2);   /* a two-byte first character: the cut counts characters */
    longc[300] = '\0';
    post(longc, NULL, NULL, big);
    resp = tool("read_posts", "{s:i}", "limit", 10);
    r = tool_ok(resp, "read_posts");
    text = text_of(r);
    cr_assert_not_null(strstr(text, "Posts 1-3 of 3, newest first:\n"), "%s", text);

    bb_mcp_time_text(bb_wall_ms(), when, sizeof when);
    entry = strstr(text, root);
    cr_assert_not_null(entry, "%s", text);
    snprintf(want, sizeof want, "- [%s] @ada · %.10s", root, when);
    cr_expect_not_null(strstr(text, want), "entry head: %s", text);
    cr_expect_not_null(strstr(entry, " UTC · #plans\n  first line second \"quoted\" \\ line\n"), "%s", entry);

    snprintf(want, sizeof want, "- [%s] @ada · ", reply);
    entry = strstr(text, want);
    cr_assert_not_null(entry, "%s", text);
    cr_expect_not_null(strstr(entry, " UTC · ↳ reply\n  a reply\n"), "%s", entry);

    entry = strstr(text, big);
    cr_assert_not_null(entry, "%s", text);
    entry = strstr(entry, "\n  ");
    cr_assert_not_null(entry);
    /* "é" + 279 'x' (280 characters), then the ellipsis. */
    cr_expect_eq(strncmp(entry + 3, "é", 2), 0);
    cr_expect_eq(strspn(entry + 5, "x"), 279, "%s", entry);
    cr_expect_eq(strncmp(entry + 5 + 279, "…\n", strlen("…\n")), 0, "%s", entry);
    json_decref(resp);
}
