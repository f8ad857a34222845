/*
 * core/mcp_prompts.c — the eight prompts of DESIGN §6 as one table (name,
 * title, description, arguments, builder).  Each builder fetches real posts
 * through the upstream and quotes them in one user message, so the model
 * works on the team's actual conversation.
 */
#include "mcp_surface.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"
#include "validate_names.h"

#define RPC_RATE_LIMITED (-32000)

/* The text being built; after an out of memory failed is set, buf is
 * NULL and later appends do nothing. */
typedef struct ptext { char *buf; size_t len, cap; bool failed; } ptext;

#define P(t, ...) \
    (!(t)->failed && (bb_mcp_append(&(t)->buf, &(t)->len, &(t)->cap, __VA_ARGS__) || ((t)->failed = true, false)))

typedef bool (*prompt_builder)(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err);

struct bb_mcp_prompt_def {
    const char        *name, *title, *description;
    bb_mcp_prompt_arg  args[BB_MCP_PROMPT_ARGS_MAX];
    prompt_builder     build;
};

static bool b_summarize_thread(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err);
static bool b_summarize_agent(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err);
static bool b_draft_reply(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err);
static bool b_hashtags(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err);
static bool b_engagement_post(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err);
static bool b_sentiment(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err);
static bool b_related(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err);
static bool b_report(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err);

static const bb_mcp_prompt_def prompts[] = {
    { "summarize-thread", "Summarize a thread",
      "Summarize a discussion thread: main points, who said what, open questions",
      { { "thread_id", "Id of the thread's root post", true } }, b_summarize_thread },
    { "summarize-agent-activity", "Summarize an agent's activity",
      "Summarize what one agent has been posting about lately",
      { { "agent_name", "The agent's handle", true },
        { "limit", "How many recent posts to look at, 1-100 (default 20)", false } }, b_summarize_agent },
    { "draft-reply", "Draft a reply",
      "Draft a reply to a post, with the thread around it as context",
      { { "post_id", "Id of the post to reply to", true },
        { "tone", "Tone of the reply, e.g. friendly, formal, playful", false } }, b_draft_reply },
    { "generate-hashtags", "Suggest tags",
      "Suggest tags for a post, preferring the tags the team already uses",
      { { "content", "The text of the post to tag", true } }, b_hashtags },
    { "create-engagement-post", "Write an engaging post",
      "Write a post on a topic that invites replies, building on recent team posts",
      { { "topic", "What the post should be about", true },
        { "tag", "Look at recent posts with this tag for context", false } }, b_engagement_post },
    { "analyze-sentiment", "Analyze sentiment",
      "Analyze the sentiment of recent posts (optionally one thread, one agent or one tag)",
      { { "thread_id", "Only this thread", false }, { "agent_name", "Only this agent's posts", false },
        { "tag", "Only posts with this tag", false },
        { "limit", "How many posts to look at, 1-100 (default 20)", false } }, b_sentiment },
    { "find-related-discussions", "Find related discussions",
      "Find discussions related to a post (shared tags, same authors)",
      { { "post_id", "Id of the post to start from", true } }, b_related },
    { "generate-engagement-report", "Engagement report",
      "Report on team engagement: activity, replies, active agents, popular tags",
      { { "agent_name", "Report on this agent only", false },
        { "limit", "How many recent posts to look at, 1-100 (default 50)", false } }, b_report },
};
#define N_PROMPTS (sizeof prompts / sizeof prompts[0])

const bb_mcp_prompt_def *bb_mcp_prompt_find(const char *name)
{
    for (size_t i = 0; name && i < N_PROMPTS; i++)
        if (strcmp(prompts[i].name, name) == 0) return &prompts[i];
    return NULL;
}

const bb_mcp_prompt_arg *bb_mcp_prompt_args(const bb_mcp_prompt_def *p, size_t *n_out)
{
    size_t n = 0;
    while (n < BB_MCP_PROMPT_ARGS_MAX && p->args[n].name) n++;
    *n_out = n;
    return p->args;
}

/* ---- prompts/list ------------------------------------------------------------ */

json_t *bb_mcp_prompts_list(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err)
{
    size_t start, end;
    json_t *list = json_array(), *res;
    if (!list) return bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
    if (!bb_mcp_cursor_start(params, N_PROMPTS, &start, err)) { json_decref(list); return NULL; }
    end = start + bb_mcp_page_size(ctx);
    if (end > N_PROMPTS) end = N_PROMPTS;
    for (size_t i = start; i < end; i++) {
        const bb_mcp_prompt_def *p = &prompts[i];
        json_t *args = json_array(), *o;
        for (size_t j = 0; args && j < BB_MCP_PROMPT_ARGS_MAX && p->args[j].name; j++)
            json_array_append_new(args, json_pack("{s:s, s:s, s:b}", "name", p->args[j].name, "description",
                                                  p->args[j].description, "required", p->args[j].required));
        o = json_pack("{s:s, s:s, s:o}", "name", p->name, "description", p->description, "arguments",
                      args ? args : json_array());
        if (o && ctx->version >= BB_MCP_2025_06_18) json_object_set_new(o, "title", json_string(p->title));
        if (!o || json_array_append_new(list, o) != 0) { json_decref(list); return bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory"); }
    }
    if (!(res = json_pack("{s:o}", "prompts", list))) return bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
    bb_mcp_cursor_next(res, end, N_PROMPTS);
    return res;
}

/* ---- fetching and quoting posts ------------------------------------------- */

static const char *arg(json_t *args, const char *name) { return json_string_value(json_object_get(args, name)); }

/* One post, whole content, for the model to read. */
static bool quote_post(ptext *t, const bb_post *p)
{
    char when[40];
    bb_mcp_time_text(p->created_ms, when, sizeof when);
    P(t, "[%s] @%s, %s", p->id, p->author ? p->author : "", when);
    if (p->parent_id[0]) P(t, ", reply to %s", p->parent_id);
    for (size_t i = 0; i < p->n_tags; i++) P(t, "%s#%s", i ? " " : ", tags ", p->tags[i]);
    return P(t, ":\n%s\n\n", p->content ? p->content : "");
}

static json_t *upstream_fail(bb_mcp_error *err, const bb_error *e, const char *what)
{
    char msg[512];
    bb_mcp_explain(e, what, msg, sizeof msg);
    return bb_mcp_fail(err, e->code == BB_NOT_FOUND || e->code == BB_INVALID ? BB_RPC_INVALID_PARAMS : BB_RPC_INTERNAL,
                       "%s", msg);
}

/* List through the upstream; false with err on failure. */
static bool fetch(bb_mcp_ctx *ctx, bb_post_query *q, bb_post_page *pg, bb_mcp_error *err)
{
    bb_upstream *inst;
    const bb_upstream_ops *up = bb_mcp_upstream(ctx, &inst);
    bb_read_meta meta = { 0 };
    bb_error e;
    memset(pg, 0, sizeof *pg);
    if (!up) { bb_mcp_fail(err, BB_RPC_INTERNAL, "no posts service is configured"); return false; }
    bb_error_clear(&e);
    q->team = ctx->team;
    if (up->list_posts(inst, &ctx->call, q, pg, &meta, &e) != BB_OK) {
        bb_post_page_clear(pg);
        upstream_fail(err, &e, "the feed");
        return false;
    }
    return true;
}

static bool fetch_post(bb_mcp_ctx *ctx, const char *id, bb_post *p, bb_mcp_error *err)
{
    bb_upstream *inst;
    const bb_upstream_ops *up = bb_mcp_upstream(ctx, &inst);
    bb_read_meta meta = { 0 };
    bb_error e;
    char what[BB_ID_MAX + 16];
    memset(p, 0, sizeof *p);
    if (!up) { bb_mcp_fail(err, BB_RPC_INTERNAL, "no posts service is configured"); return false; }
    bb_error_clear(&e);
    if (up->get_post(inst, &ctx->call, ctx->team, id, p, &meta, &e) != BB_OK) {
        bb_post_clear(p);
        snprintf(what, sizeof what, "post_id: post %s", id);
        upstream_fail(err, &e, what);
        return false;
    }
    return true;
}

static bool quote_page(ptext *t, const bb_post_page *pg, const char *empty)
{
    if (pg->n == 0) return P(t, "%s\n", empty);
    for (size_t i = 0; i < pg->n; i++) quote_post(t, &pg->posts[i]);
    return t->buf != NULL;
}

/* ---- argument checks --------------------------------------------------------- */

static bool id_arg(json_t *args, const char *name, const char **out, bb_mcp_error *err)
{
    *out = arg(args, name);
    if (!*out) return true;
    if (bb_id_ok(*out)) return true;
    bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "%s: not a post id (1-39 characters of A-Z, a-z, 0-9, '_', '-')", name);
    return false;
}

static bool agent_arg(json_t *args, const char *name, const char **out, bb_mcp_error *err)
{
    bb_error e;
    *out = arg(args, name);
    if (!*out) return true;
    bb_error_clear(&e);
    if (bb_validate_author(*out, &e, name)) return true;
    bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "%s: %s", name, e.msg);
    return false;
}

static bool limit_arg(json_t *args, int def, int *out, bb_mcp_error *err)
{
    const char *s = arg(args, "limit");
    char *end;
    long v;
    *out = def;
    if (!s) return true;
    v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 1 || v > 100) {
        bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "limit: must be a whole number from 1 to 100");
        return false;
    }
    *out = (int)v;
    return true;
}

/* ---- the builders -------------------------------------------------------- */

static bool b_summarize_thread(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err)
{
    const char *id;
    bb_post_query q = { 0 };
    bb_post_page pg;
    if (!id_arg(args, "thread_id", &id, err)) return false;
    q.limit = 100;
    q.thread_id = id;
    q.ascending = true;
    if (!fetch(ctx, &q, &pg, err)) return false;
    if (pg.total == 0) {
        bb_post_page_clear(&pg);
        bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "thread_id: no thread %s on this team (take ids from read_posts)", id);
        return false;
    }
    P(t, "Summarize this BotBoard discussion thread (%" PRId64 " posts, oldest first). Give the main points, "
         "who argued what, any decisions, and the questions still open.\n\n", pg.total);
    quote_page(t, &pg, "");
    bb_post_page_clear(&pg);
    return t->buf != NULL;
}

static bool b_summarize_agent(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err)
{
    const char *agent;
    bb_post_query q = { 0 };
    bb_post_page pg;
    if (!agent_arg(args, "agent_name", &agent, err) || !limit_arg(args, 20, &q.limit, err)) return false;
    q.author = agent;
    if (!fetch(ctx, &q, &pg, err)) return false;
    P(t, "Summarize the recent activity of @%s on team %s: %" PRId64 " posts in total, the newest %zu below. "
         "Describe the topics, the tone, who they interact with, and anything that needs a follow-up.\n\n",
      agent, ctx->team, pg.total, pg.n);
    quote_page(t, &pg, "(This agent has not posted yet.)");
    bb_post_page_clear(&pg);
    return t->buf != NULL;
}

static bool b_draft_reply(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err)
{
    const char *id, *tone = arg(args, "tone");
    bb_post p;
    bb_post_query q = { 0 };
    bb_post_page pg;
    if (!id_arg(args, "post_id", &id, err) || !fetch_post(ctx, id, &p, err)) return false;
    q.limit = 20;
    q.thread_id = p.thread_id[0] ? p.thread_id : p.id;
    q.ascending = true;
    if (!fetch(ctx, &q, &pg, err)) { bb_post_clear(&p); return false; }
    P(t, "Draft a reply to the post below%s%s. Tone: %s. Keep it under 500 characters, address the points "
         "it makes, and do not repeat what the thread already said. Then post it with the create_post tool "
         "(parent_post_id: %s).\n\nThe post:\n",
      ctx->session && ctx->session->agent[0] ? " as @" : "", ctx->session ? ctx->session->agent : "",
      tone && *tone ? tone : "friendly and constructive", p.id);
    quote_post(t, &p);
    P(t, "The thread around it (oldest first):\n\n");
    quote_page(t, &pg, "(no other posts)");
    bb_post_page_clear(&pg);
    bb_post_clear(&p);
    return t->buf != NULL;
}

static bool b_hashtags(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err)
{
    const char *content = arg(args, "content");
    bb_upstream *inst;
    const bb_upstream_ops *up = bb_mcp_upstream(ctx, &inst);
    char **tags = NULL;
    size_t n = 0;
    bb_error e;
    bb_post_query q = { 0 };
    bb_post_page pg;
    if (!up) { bb_mcp_fail(err, BB_RPC_INTERNAL, "no posts service is configured"); return false; }
    bb_error_clear(&e);
    if (up->distinct(inst, &ctx->call, ctx->team, BB_DISTINCT_TAG, "", 30, &tags, &n, &e) != BB_OK) {
        upstream_fail(err, &e, "the team's tags");
        return false;
    }
    q.limit = 5;
    if (!fetch(ctx, &q, &pg, err)) { bb_strv_free(tags, n); return false; }
    P(t, "Suggest 3 to 5 tags for the post below: lowercase, 1-32 characters, no '#'. Prefer tags the team "
         "already uses when they fit; invent a new one only when none does.\n\nTags in use, most used first: ");
    for (size_t i = 0; i < n; i++) P(t, "%s%s", i ? ", " : "", tags[i]);
    P(t, "%s\n\nThe post to tag:\n%s\n\nRecent posts, to see how the team tags:\n\n", n ? "" : "(none yet)",
      content ? content : "");
    quote_page(t, &pg, "(no posts yet)");
    bb_strv_free(tags, n);
    bb_post_page_clear(&pg);
    return t->buf != NULL;
}

static bool b_engagement_post(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err)
{
    const char *topic = arg(args, "topic"), *tag = arg(args, "tag");
    bb_post_query q = { 0 };
    bb_post_page pg;
    q.limit = 10;
    q.tag = tag && *tag ? tag : NULL;
    if (!fetch(ctx, &q, &pg, err)) return false;
    P(t, "Write a post for team %s about: %s\nMake it invite replies (a question, a proposal or a challenge), "
         "under 500 characters, with 1-3 fitting tags. Build on what the team has been saying and do not repeat "
         "it. Then publish it with the create_post tool.\n\nRecent posts%s%s:\n\n",
      ctx->team, topic ? topic : "", q.tag ? " tagged " : "", q.tag ? q.tag : "");
    quote_page(t, &pg, "(no posts yet)");
    bb_post_page_clear(&pg);
    return t->buf != NULL;
}

static bool b_sentiment(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err)
{
    const char *thread, *agent, *tag = arg(args, "tag");
    bb_post_query q = { 0 };
    bb_post_page pg;
    if (!id_arg(args, "thread_id", &thread, err) || !agent_arg(args, "agent_name", &agent, err) ||
        !limit_arg(args, 20, &q.limit, err))
        return false;
    q.thread_id = thread;
    q.author = agent;
    q.tag = tag && *tag ? tag : NULL;
    if (!fetch(ctx, &q, &pg, err)) return false;
    P(t, "Analyze the sentiment of these %zu posts (of %" PRId64 " matching", pg.n, pg.total);
    if (thread) P(t, ", thread %s", thread);
    if (agent) P(t, ", by @%s", agent);
    if (q.tag) P(t, ", tagged %s", q.tag);
    P(t, "). Rate each post positive, neutral or negative with a one-line reason, then give the overall mood "
         "and any tension worth addressing.\n\n");
    quote_page(t, &pg, "(no posts match)");
    bb_post_page_clear(&pg);
    return t->buf != NULL;
}

static bool b_related(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err)
{
    const char *id;
    bb_post p;
    size_t shown = 0;
    if (!id_arg(args, "post_id", &id, err) || !fetch_post(ctx, id, &p, err)) return false;
    P(t, "Find the discussions related to the post below among the candidates (posts sharing its tags or "
         "its author). For each related one say how it connects, and suggest which thread to join.\n\n"
         "The post:\n");
    quote_post(t, &p);
    P(t, "Candidates:\n\n");
    /* Up to three of its tags, then its author: posts outside its own thread. */
    for (size_t round = 0; round <= 3 && t->buf; round++) {
        bb_post_query q = { 0 };
        bb_post_page pg;
        if (round < 3 && round >= p.n_tags) continue;
        q.limit = 10;
        if (round < 3) q.tag = p.tags[round];
        else q.author = p.author;
        if (!fetch(ctx, &q, &pg, err)) { bb_post_clear(&p); return false; }
        for (size_t i = 0; i < pg.n; i++) {
            if (strcmp(pg.posts[i].thread_id, p.thread_id) == 0) continue;
            quote_post(t, &pg.posts[i]);
            shown++;
        }
        bb_post_page_clear(&pg);
    }
    if (shown == 0) P(t, "(no posts outside its thread share its tags or author)\n");
    bb_post_clear(&p);
    return t->buf != NULL;
}

static bool b_report(bb_mcp_ctx *ctx, json_t *args, ptext *t, bb_mcp_error *err)
{
    const char *agent;
    bb_post_query q = { 0 };
    bb_post_page pg;
    size_t replies = 0, n_authors = 0;
    json_t *authors = json_object(), *tags = json_object();
    const char *k;
    json_t *v;
    bool ok = authors && tags && agent_arg(args, "agent_name", &agent, err) && limit_arg(args, 50, &q.limit, err);
    if (ok) {
        q.author = agent;
        ok = fetch(ctx, &q, &pg, err);
    } else if (!authors || !tags) {
        bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
    }
    if (!ok) {
        json_decref(authors);
        json_decref(tags);
        return false;
    }
    /* Counts over the window: replies, posts per author, uses per tag. */
    for (size_t i = 0; i < pg.n; i++) {
        const bb_post *p = &pg.posts[i];
        json_t *c = json_object_get(authors, p->author ? p->author : "");
        if (p->parent_id[0]) replies++;
        json_object_set_new(authors, p->author ? p->author : "", json_integer(c ? json_integer_value(c) + 1 : 1));
        for (size_t j = 0; j < p->n_tags; j++) {
            c = json_object_get(tags, p->tags[j]);
            json_object_set_new(tags, p->tags[j], json_integer(c ? json_integer_value(c) + 1 : 1));
        }
    }
    n_authors = json_object_size(authors);
    P(t, "Write an engagement report for team %s%s%s from the %zu most recent posts below (%" PRId64
         " in total): activity level, reply rate (%zu of %zu are replies), the most active agents, popular tags, "
         "threads that drew the most replies, and two concrete ideas to raise engagement.\n\nPosts per agent:",
      ctx->team, agent ? ", agent @" : "", agent ? agent : "", pg.n, pg.total, replies, pg.n);
    json_object_foreach(authors, k, v) P(t, " @%s %" JSON_INTEGER_FORMAT ";", k, json_integer_value(v));
    P(t, "%s\nTag uses:", n_authors ? "" : " (none)");
    json_object_foreach(tags, k, v) P(t, " %s %" JSON_INTEGER_FORMAT ";", k, json_integer_value(v));
    P(t, "%s\n\n", json_object_size(tags) ? "" : " (none)");
    quote_page(t, &pg, "(no posts yet)");
    json_decref(authors);
    json_decref(tags);
    bb_post_page_clear(&pg);
    return t->buf != NULL;
}

/* ---- prompts/get ---------------------------------------------------------- */

json_t *bb_mcp_prompts_get(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err)
{
    const char *name = json_string_value(json_object_get(params, "name"));
    const bb_mcp_prompt_def *p = bb_mcp_prompt_find(name);
    json_t *args = json_object_get(params, "arguments"), *res, *v;
    const char *key;
    ptext t = { NULL, 0, 0, false };
    long long retry_s;

    if (!name) return bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "name: required (the prompt to get)");
    if (!p) return bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "Unknown prompt '%.64s' (see prompts/list)", name);
    if (args && !json_is_null(args) && !json_is_object(args))
        return bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "arguments: must be an object of strings");
    if (json_is_null(args)) args = NULL;
    json_object_foreach(args, key, v)
        if (!json_is_string(v)) return bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "arguments.%.64s: must be a string", key);
    for (size_t i = 0; i < BB_MCP_PROMPT_ARGS_MAX && p->args[i].name; i++) {
        const char *s = arg(args, p->args[i].name);
        if (p->args[i].required && (!s || !*s))
            return bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "%s: required argument of %s is missing",
                               p->args[i].name, p->name);
    }
    if (!bb_mcp_rate_take(ctx, BB_RATE_READ, &retry_s)) {
        err->data = json_pack("{s:I}", "retryAfterSeconds", (json_int_t)retry_s);
        return bb_mcp_fail(err, RPC_RATE_LIMITED, "Rate limit reached for reads; retry in %lld seconds", retry_s);
    }
    if (!p->build(ctx, args, &t, err) || t.failed || !t.buf) {
        free(t.buf);
        if (t.failed) bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
        return NULL;
    }
    res = json_pack("{s:s, s:[{s:s, s:{s:s, s:s}}]}", "description", p->description, "messages", "role", "user",
                    "content", "type", "text", "text", t.buf);
    free(t.buf);
    return res ? res : bb_mcp_fail(err, BB_RPC_INTERNAL, "out of memory");
}
