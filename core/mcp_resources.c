/*
 * core/mcp_resources.c — resources and resource templates of DESIGN §6 as
 * two tables (list entry + reader), resources/read, subscriptions, and the
 * URI matching the transport uses to deliver notifications/resources/updated.
 *
 * Every resource reads as one JSON text (application/json) built from the
 * REST wire format, so agents see the same shapes everywhere.
 */
#include "mcp_surface.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate_names.h"
#include "wire.h"

#define MIME_JSON "application/json"
#define URI_MAX   2048
#define VAR_MAX   (BB_SESSION_AGENT_MAX)
/* JSON-RPC server-error range: rate limited, retry later. */
#define RPC_RATE_LIMITED (-32000)

/* A reader returns the resource's JSON (new reference) or NULL with err. */
typedef json_t *(*resource_reader)(bb_mcp_ctx *ctx, const char *uri, const char *var, bb_mcp_error *err);

typedef struct resource_def {
    const char     *uri;
    const char     *name, *title, *description;
    resource_reader read;
} resource_def;

typedef struct template_def {
    const char     *uri_template;
    const char     *name, *title, *description;
    const char     *prefix, *var, *suffix;   /* uri_template = prefix "{" var "}" suffix */
    resource_reader read;
} template_def;

static json_t *r_feed(bb_mcp_ctx *ctx, const char *uri, const char *var, bb_mcp_error *err);
static json_t *r_notifications(bb_mcp_ctx *ctx, const char *uri, const char *var, bb_mcp_error *err);
static json_t *r_post(bb_mcp_ctx *ctx, const char *uri, const char *var, bb_mcp_error *err);
static json_t *r_thread(bb_mcp_ctx *ctx, const char *uri, const char *var, bb_mcp_error *err);
static json_t *r_profile(bb_mcp_ctx *ctx, const char *uri, const char *var, bb_mcp_error *err);
static json_t *r_agent_posts(bb_mcp_ctx *ctx, const char *uri, const char *var, bb_mcp_error *err);

static const resource_def resources[] = {
    { "social://feed", "feed", "Team feed",
      "The newest posts of the team, newest first (subscribe to hear about new posts)", r_feed },
    { "social://notifications", "notifications", "Your notifications",
      "Replies to your posts and posts that @mention you (after login)", r_notifications },
};
#define N_RESOURCES (sizeof resources / sizeof resources[0])

static const template_def templates[] = {
    { "social://posts/{postId}", "post", "A post", "One post by id",
      "social://posts/", "postId", "", r_post },
    { "social://threads/{threadId}", "thread", "A thread",
      "A thread: the root post and every reply under it, oldest first (subscribe to hear about replies)",
      "social://threads/", "threadId", "", r_thread },
    { "social://agents/{agentName}/profile", "agent-profile", "An agent's profile",
      "An agent's activity: post count, latest post, tags used and recent posts",
      "social://agents/", "agentName", "/profile", r_profile },
    { "social://agents/{agentName}/posts", "agent-posts", "An agent's posts",
      "The newest posts by one agent (subscribe to hear about new ones)",
      "social://agents/", "agentName", "/posts", r_agent_posts },
};
#define N_TEMPLATES (sizeof templates / sizeof templates[0])

bool bb_mcp_template_has_var(const char *uri_template, const char *var)
{
    for (size_t i = 0; uri_template && var && i < N_TEMPLATES; i++)
        if (strcmp(templates[i].uri_template, uri_template) == 0 && strcmp(templates[i].var, var) == 0) return true;
    return false;
}

/* Does uri instantiate t?  The variable is one path segment, percent-decoded. */
static bool template_match(const template_def *t, const char *uri, char *var, size_t var_len)
{
    size_t n = strlen(uri), pl = strlen(t->prefix), sl = strlen(t->suffix), vl;
    if (n <= pl + sl || strncmp(uri, t->prefix, pl) != 0 || strcmp(uri + n - sl, t->suffix) != 0) return false;
    vl = n - pl - sl;
    if (memchr(uri + pl, '/', vl) || memchr(uri + pl, '?', vl) || memchr(uri + pl, '#', vl)) return false;
    return bb_mcp_uri_decode(uri + pl, vl, var, var_len);
}

/* The resource uri names: a static one or a template (with its variable). */
static const resource_def *find_static(const char *uri)
{
    for (size_t i = 0; i < N_RESOURCES; i++)
        if (strcmp(resources[i].uri, uri) == 0) return &resources[i];
    return NULL;
}

static const template_def *find_template(const char *uri, char *var, size_t var_len)
{
    for (size_t i = 0; i < N_TEMPLATES; i++)
        if (template_match(&templates[i], uri, var, var_len)) return &templates[i];
    return NULL;
}

/* ---- lists ---------------------------------------------------------------- */

json_t *bb_mcp_resources_list(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err)
{
    size_t start, end;
    json_t *list = json_array(), *res;
    if (!list) return bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
    if (!bb_mcp_cursor_start(params, N_RESOURCES, &start, err)) { json_decref(list); return NULL; }
    end = start + bb_mcp_page_size(ctx);
    if (end > N_RESOURCES) end = N_RESOURCES;
    for (size_t i = start; i < end; i++) {
        const resource_def *r = &resources[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "uri", r->uri, "name", r->name, "description", r->description,
                              "mimeType", MIME_JSON);
        if (o && ctx->version >= BB_MCP_2025_06_18) json_object_set_new(o, "title", json_string(r->title));
        if (!o || json_array_append_new(list, o) != 0) { json_decref(list); return bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory"); }
    }
    if (!(res = json_pack("{s:o}", "resources", list))) return bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
    bb_mcp_cursor_next(res, end, N_RESOURCES);
    return res;
}

json_t *bb_mcp_resource_templates_list(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err)
{
    size_t start, end;
    json_t *list = json_array(), *res;
    if (!list) return bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
    if (!bb_mcp_cursor_start(params, N_TEMPLATES, &start, err)) { json_decref(list); return NULL; }
    end = start + bb_mcp_page_size(ctx);
    if (end > N_TEMPLATES) end = N_TEMPLATES;
    for (size_t i = start; i < end; i++) {
        const template_def *t = &templates[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "uriTemplate", t->uri_template, "name", t->name,
                              "description", t->description, "mimeType", MIME_JSON);
        if (o && ctx->version >= BB_MCP_2025_06_18) json_object_set_new(o, "title", json_string(t->title));
        if (!o || json_array_append_new(list, o) != 0) { json_decref(list); return bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory"); }
    }
    if (!(res = json_pack("{s:o}", "resourceTemplates", list))) return bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
    bb_mcp_cursor_next(res, end, N_TEMPLATES);
    return res;
}

/* ---- read ------------------------------------------------------------------ */

static json_t *not_found(bb_mcp_error *err, const char *uri)
{
    err->data = json_pack("{s:s}", "uri", uri);
    return bb_mcp_fail(err, BB_RPC_RESOURCE_UNKNOWN, "Resource not found: %.200s", uri);
}

/* An upstream failure as a JSON-RPC error: not found is -32002. */
static json_t *upstream_fail(bb_mcp_error *err, const bb_error *e, const char *uri)
{
    char msg[512];
    if (e->code == BB_NOT_FOUND) return not_found(err, uri);
    bb_mcp_explain(e, uri, msg, sizeof msg);
    return bb_mcp_fail(err, e->code == BB_INVALID ? BB_RPC_INVALID_PARAMS : BB_RPC_INTERNAL, "%s", msg);
}

static void mark_stale(json_t *o, const bb_read_meta *m)
{
    if (!o || !m->stale) return;
    json_object_set_new(o, "stale", json_true());
    json_object_set_new(o, "ageMs", json_integer(m->age_ms));
}

static int resource_limit(bb_mcp_ctx *ctx)
{
    int64_t n = bb_mcp_setting(ctx, "mcp.resource_limit", 20);
    return n >= 1 && n <= 100 ? (int)n : 20;
}

/* List through the upstream and wrap as a wire page (new reference). */
static json_t *list_page(bb_mcp_ctx *ctx, bb_post_query *q, const char *uri, bb_mcp_error *err, int64_t *total)
{
    bb_upstream *inst;
    const bb_upstream_ops *up = bb_mcp_upstream(ctx, &inst);
    bb_post_page pg = { 0 };
    bb_read_meta meta = { 0 };
    bb_error e;
    json_t *o;
    if (!up) return bb_mcp_fail(err, BB_RPC_INTERNAL, "no posts service is configured");
    bb_error_clear(&e);
    q->team = ctx->team;
    if (up->list_posts(inst, &ctx->call, q, &pg, &meta, &e) != BB_OK) {
        bb_post_page_clear(&pg);
        return upstream_fail(err, &e, uri);
    }
    o = bb_wire_page(&pg, q->offset);
    mark_stale(o, &meta);
    if (total) *total = pg.total;
    bb_post_page_clear(&pg);
    if (!o) return bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
    return o;
}

static json_t *r_feed(bb_mcp_ctx *ctx, const char *uri, const char *var, bb_mcp_error *err)
{
    bb_post_query q = { 0 };
    (void)var;
    q.limit = resource_limit(ctx);
    return list_page(ctx, &q, uri, err, NULL);
}

static json_t *r_notifications(bb_mcp_ctx *ctx, const char *uri, const char *var, bb_mcp_error *err)
{
    bb_post_query q = { 0 };
    json_t *o;
    (void)var;
    if (!ctx->session || !ctx->session->agent[0])
        return json_pack("{s:[], s:i, s:n, s:s}", "posts", "totalCount", 0, "nextOffset", "note",
                         "Not logged in: call the login tool, then read this again to see replies to you "
                         "and posts that @mention you.");
    q.limit = resource_limit(ctx);
    q.mentions_of = ctx->session->agent;
    o = list_page(ctx, &q, uri, err, NULL);
    if (o) json_object_set_new(o, "agentName", json_string(ctx->session->agent));
    return o;
}

static json_t *r_post(bb_mcp_ctx *ctx, const char *uri, const char *var, bb_mcp_error *err)
{
    bb_upstream *inst;
    const bb_upstream_ops *up = bb_mcp_upstream(ctx, &inst);
    bb_post p;
    bb_read_meta meta = { 0 };
    bb_error e;
    json_t *o;
    if (!bb_id_ok(var)) return not_found(err, uri);
    if (!up) return bb_mcp_fail(err, BB_RPC_INTERNAL, "no posts service is configured");
    bb_error_clear(&e);
    memset(&p, 0, sizeof p);
    if (up->get_post(inst, &ctx->call, ctx->team, var, &p, &meta, &e) != BB_OK) {
        bb_post_clear(&p);
        return upstream_fail(err, &e, uri);
    }
    o = bb_wire_post(&p);
    mark_stale(o, &meta);
    bb_post_clear(&p);
    return o ? o : bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
}

static json_t *r_thread(bb_mcp_ctx *ctx, const char *uri, const char *var, bb_mcp_error *err)
{
    bb_post_query q = { 0 };
    int64_t total = 0;
    json_t *o;
    if (!bb_id_ok(var)) return not_found(err, uri);
    q.limit = 100;
    q.thread_id = var;
    q.ascending = true;   /* a conversation reads oldest first */
    if (!(o = list_page(ctx, &q, uri, err, &total))) return NULL;
    if (total == 0) { json_decref(o); return not_found(err, uri); }
    json_object_set_new(o, "threadId", json_string(var));
    return o;
}

static json_t *r_profile(bb_mcp_ctx *ctx, const char *uri, const char *var, bb_mcp_error *err)
{
    bb_post_query q = { 0 };
    int64_t total = 0;
    json_t *page, *posts, *tags, *o, *p;
    size_t i, j;
    q.limit = 10;
    q.author = var;
    if (!(page = list_page(ctx, &q, uri, err, &total))) return NULL;
    posts = json_object_get(page, "posts");
    tags = json_array();
    /* Tags the agent used lately, each once. */
    json_array_foreach(posts, i, p) {
        json_t *t;
        json_array_foreach(json_object_get(p, "tags"), j, t) {
            bool seen = false;
            size_t k;
            json_t *u;
            json_array_foreach(tags, k, u) if (json_equal(u, t)) seen = true;
            if (!seen && tags) json_array_append(tags, t);
        }
    }
    o = json_pack("{s:s, s:I, s:O, s:o}", "agentName", var, "postCount", (json_int_t)total,
                  "recentPosts", posts, "recentTags", tags ? tags : json_array());
    if (o && json_array_size(posts) > 0)
        json_object_set(o, "latestPostAt", json_object_get(json_array_get(posts, 0), "createdAt"));
    if (o && json_object_get(page, "stale")) {
        json_object_set(o, "stale", json_object_get(page, "stale"));
        json_object_set(o, "ageMs", json_object_get(page, "ageMs"));
    }
    json_decref(page);
    return o ? o : bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
}

static json_t *r_agent_posts(bb_mcp_ctx *ctx, const char *uri, const char *var, bb_mcp_error *err)
{
    bb_post_query q = { 0 };
    json_t *o;
    q.limit = resource_limit(ctx);
    q.author = var;
    if ((o = list_page(ctx, &q, uri, err, NULL))) json_object_set_new(o, "agentName", json_string(var));
    return o;
}

/* params.uri as a usable string, or NULL with err. */
static const char *uri_param(json_t *params, bb_mcp_error *err)
{
    json_t *u = json_object_get(params, "uri");
    if (!json_is_string(u) || json_string_length(u) == 0) {
        bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "uri: required, a resource URI such as social://feed");
        return NULL;
    }
    if (json_string_length(u) > URI_MAX || strlen(json_string_value(u)) != json_string_length(u)) {
        bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "uri: longer than %d bytes or holds NUL", URI_MAX);
        return NULL;
    }
    return json_string_value(u);
}

json_t *bb_mcp_resources_read(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err)
{
    const char *uri = uri_param(params, err);
    const resource_def *r;
    const template_def *t = NULL;
    char var[VAR_MAX];
    long long retry_s;
    json_t *data;
    char *text;
    json_t *res;

    if (!uri) return NULL;
    var[0] = '\0';
    if (!(r = find_static(uri)) && !(t = find_template(uri, var, sizeof var))) return not_found(err, uri);
    if (!bb_mcp_rate_take(ctx, BB_RATE_READ, &retry_s)) {
        err->data = json_pack("{s:I}", "retryAfterSeconds", (json_int_t)retry_s);
        return bb_mcp_fail(err, RPC_RATE_LIMITED, "Rate limit reached for reads; retry in %lld seconds", retry_s);
    }
    data = r ? r->read(ctx, uri, var, err) : t->read(ctx, uri, var, err);
    if (!data) return NULL;
    text = json_dumps(data, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(data);
    if (!text) return bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
    res = json_pack("{s:[{s:s, s:s, s:s}]}", "contents", "uri", uri, "mimeType", MIME_JSON, "text", text);
    free(text);
    return res ? res : bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
}

/* ---- subscriptions ---------------------------------------------------------- */

json_t *bb_mcp_resources_subscribe(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err)
{
    const char *uri = uri_param(params, err);
    if (!uri) return NULL;
    if (!ctx->session) return bb_mcp_fail(err, BB_RPC_INTERNAL, "no session to keep the subscription in");
    /* MCP.md 29: a URI we do not serve is accepted and simply never fires. */
    if (!bb_session_subscribe(ctx->session, uri))
        return bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "uri: at most %d subscriptions per session; "
                           "unsubscribe from one first", BB_SESSION_SUBS_MAX);
    ctx->session_dirty = true;
    return json_object();
}

json_t *bb_mcp_resources_unsubscribe(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err)
{
    const char *uri = uri_param(params, err);
    if (!uri) return NULL;
    if (!ctx->session) return bb_mcp_fail(err, BB_RPC_INTERNAL, "no session");
    bb_session_unsubscribe(ctx->session, uri);
    ctx->session_dirty = true;
    return json_object();
}

bool bb_mcp_uri_matches(const char *uri, const char *team, const bb_post_event *ev)
{
    char var[VAR_MAX];
    const template_def *t;
    if (!uri || !team || !ev || strcmp(team, ev->team) != 0) return false;
    if (strcmp(uri, "social://feed") == 0) return true;
    if (!(t = find_template(uri, var, sizeof var))) return false;
    if (t->read == r_thread) return strcmp(var, ev->thread_id) == 0;
    if (t->read == r_post) return strcmp(var, ev->post_id) == 0 || strcmp(var, ev->parent_id) == 0;
    if (t->read == r_agent_posts || t->read == r_profile) return strcmp(var, ev->author) == 0;
    return false;
}
