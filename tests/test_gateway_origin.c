/*
 * tests/test_gateway_origin.c — upstream_http against a real origin: a
 * botboard process serving REST (DESIGN §5 only) over SQLite, reached
 * through the fault proxy.  The origin's own REST answers and /metrics are
 * the witnesses: exactly-once creates under injected failures, stale reads
 * while the origin is stopped, and no traffic at all while the breaker is
 * open.
 */
#include <pthread.h>

#include "gateway_util.h"

#define ORIGIN_YAML                                                                              \
    "server:\n  listen: 127.0.0.1:{{PORT}}\n  shutdown_grace_ms: 3000\n"                       \
    "plugins:\n  path: [\"" BB_ABS_BUILDDIR "/tests/plugins/.libs\"]\n"                         \
    "storage:\n  backend: sqlite\n  sqlite:\n    path: \"{{DIR}}/origin.db\"\n"                 \
    "session:\n  backend: fake\nupstream:\n  backend: fake\n"                                   \
    "bootstrap:\n  key_file: dev.key\nlogging:\n  format: json\n  level: warn\n"                \
    "ratelimit:\n  read: { per_minute: 10000000, burst: 1000000 }\n"                            \
    "  write: { per_minute: 10000000, burst: 1000000 }\n  delete: { per_minute: 10000000, burst: 1000000 }\n"

typedef struct env {
    bbt_server             origin;
    proxy                  px;
    char                   key[128];
    bb_app                *app;
    bb_upstream           *inst;
    const bb_upstream_ops *ops;
} env;

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) s[--n] = '\0';
}

/* Origin + team "alpha" + its key + proxy + the gateway's upstream. */
static void env_start(env *e, const char *http_extra)
{
    char why[4096], yaml[4096];
    const char *team_args[] = { "team", "create", "alpha", NULL };
    const char *beta_args[] = { "team", "create", "beta", NULL };
    const char *key_args[] = { "key", "create", "--team", "alpha", NULL };
    char *out = NULL, *err_out = NULL;
    bb_error err;
    bbt_response r;
    char url[256];

    memset(e, 0, sizeof *e);
    if (!bbt_server_start(&e->origin, ORIGIN_YAML, why, sizeof why)) cr_skip_test("origin botboard did not start: %s", why);
    snprintf(url, sizeof url, "%s/v1/teams/alpha/posts", e->origin.base_url);
    if (!bbt_http("GET", url, NULL, NULL, 0, &r) || r.status == 404 || r.status == 0) {
        long st = r.status;
        bbt_response_free(&r);
        bbt_server_destroy(&e->origin);
        cr_skip_test("origin has no REST API yet (GET /v1/...: HTTP %ld)", st);
    }
    bbt_response_free(&r);
    cr_assert_eq(bbt_botboard_cli(e->origin.config_path, team_args, NULL, &err_out), 0, "%s", err_out ? err_out : "");
    free(err_out);
    err_out = NULL;
    cr_assert_eq(bbt_botboard_cli(e->origin.config_path, beta_args, NULL, &err_out), 0, "%s", err_out ? err_out : "");
    free(err_out);
    err_out = NULL;
    cr_assert_eq(bbt_botboard_cli(e->origin.config_path, key_args, &out, &err_out), 0, "%s", err_out ? err_out : "");
    snprintf(e->key, sizeof e->key, "%s", out ? out : "");
    trim(e->key);
    free(out);
    free(err_out);

    if (!proxy_start(&e->px, e->origin.base_url, why, sizeof why)) cr_skip_test("%s", why);
    snprintf(yaml, sizeof yaml,
             "logging:\n  level: error\nupstream:\n  backend: http\n  http:\n"
             "    base_url: %s/v1\n    api_key: %s\n%s",
             e->px.url, e->key, http_extra ? http_extra : "");
    e->app = gw_open(e->px.dir, yaml, &err);
    cr_assert_not_null(e->app, "%s", err.msg);
    e->ops = bb_app_upstream(e->app, &e->inst);
}

static void env_stop(env *e)
{
    if (e->app) bb_app_close(e->app);
    proxy_stop(&e->px);
    bbt_server_destroy(&e->origin);
}

/* Sum of the origin's botboard_http_requests_total over the /v1 routes. */
static double origin_v1_requests(env *e)
{
    char url[256];
    bbt_response r;
    double sum = 0;
    snprintf(url, sizeof url, "%s/metrics", e->origin.base_url);
    cr_assert(bbt_http("GET", url, NULL, NULL, 0, &r));
    cr_assert_eq(r.status, 200);
    for (char *line = r.body; line && *line;) {
        char *nl = strchr(line, '\n');
        static const char v1[] = "botboard_http_requests_total{route=\"/v1/";
        if (strncmp(line, v1, sizeof v1 - 1) == 0) {
            char *sp = nl ? memrchr(line, ' ', (size_t)(nl - line)) : strrchr(line, ' ');
            if (sp) sum += strtod(sp + 1, NULL);
        }
        line = nl ? nl + 1 : NULL;
    }
    bbt_response_free(&r);
    return sum;
}

/* Every post on the origin, read directly (not through the gateway). */
static json_t *origin_all_posts(env *e)
{
    json_t *all = json_array();
    char auth[200];
    const char *hdrs[] = { auth, NULL };
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", e->key);
    for (int offset = 0; offset < 100000; offset += 100) {
        char url[256];
        bbt_response r;
        json_t *pg, *posts;
        snprintf(url, sizeof url, "%s/v1/teams/alpha/posts?limit=100&offset=%d", e->origin.base_url, offset);
        cr_assert(bbt_http("GET", url, hdrs, NULL, 0, &r));
        cr_assert_eq(r.status, 200, "%s", r.body);
        pg = json_loads(r.body, 0, NULL);
        bbt_response_free(&r);
        posts = json_object_get(pg, "posts");
        json_array_extend(all, posts);
        if (json_array_size(posts) < 100) { json_decref(pg); break; }
        json_decref(pg);
    }
    return all;
}

/* ---- exactly once ----------------------------------------------------------- */

enum { CREATES = 1000, WRITERS = 4 };

typedef struct writer {
    env  *e;
    int   first, n;
    char  ids[CREATES][BB_ID_MAX];   /* "" = the call reported failure */
    int   ok;
} writer;

static void *write_loop(void *ud)
{
    writer *w = ud;
    for (int i = w->first; i < w->first + w->n; i++) {
        char content[64];
        bb_new_post np = { "alice", content, NULL, 0, NULL };
        bb_call call = { NULL, NULL, 0 };
        bb_post p;
        bb_error err;
        snprintf(content, sizeof content, "exactly-once %d", i);
        bb_error_clear(&err);
        if (w->e->ops->create_post(w->e->inst, &call, "alpha", &np, &p, &err) == BB_OK) {
            snprintf(w->ids[i], sizeof w->ids[i], "%s", p.id);
            w->ok++;
            bb_post_clear(&p);
        }
    }
    return NULL;
}

Test(gateway_origin, creates_exactly_once_under_30pct_injected_failures, .timeout = 240)
{
    env e;
    static writer w[WRITERS];
    pthread_t th[WRITERS];
    json_t *posts;
    int ok = 0, found = 0;
    env_start(&e, "    retry:\n      max_attempts: 8\n      base_ms: 2\n      max_ms: 20\n"
                  "    breaker:\n      failure_threshold: 1000\n      failure_rate: 1\n      min_calls: 100000\n");
    /* 30% of requests fail: 503 before the origin, dropped connections,
     * and commit-then-fail (the origin made the post, the answer is lost). */
    proxy_rule(&e.px, "mode=mix&fail_pct=30&seed=12345", NULL);
    for (int t = 0; t < WRITERS; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].e = &e;
        w[t].first = t * (CREATES / WRITERS);
        w[t].n = CREATES / WRITERS;
        cr_assert_eq(pthread_create(&th[t], NULL, write_loop, &w[t]), 0);
    }
    for (int t = 0; t < WRITERS; t++) {
        pthread_join(th[t], NULL);
        ok += w[t].ok;
    }
    {
        json_t *st = proxy_stats(&e.px);
        long injected = (long)json_integer_value(json_object_get(st, "injected"));
        long requests = (long)json_integer_value(json_object_get(st, "requests"));
        json_decref(st);
        cr_expect_gt(injected, requests / 5, "the proxy injected only %ld of %ld", injected, requests);
    }
    proxy_reset(&e.px);
    cr_expect_geq(ok, CREATES - 10, "only %d of %d creates succeeded", ok, CREATES);

    posts = origin_all_posts(&e);
    /* No post twice: contents are unique per logical call. */
    for (size_t i = 0; i < json_array_size(posts); i++) {
        const char *ci = json_string_value(json_object_get(json_array_get(posts, i), "content"));
        for (size_t j = i + 1; j < json_array_size(posts); j++)
            cr_assert_str_neq(ci, json_string_value(json_object_get(json_array_get(posts, j), "content")),
                              "posted twice: %s", ci);
    }
    /* Every success exists on the origin, with the id the gateway reported. */
    for (int t = 0; t < WRITERS; t++)
        for (int i = w[t].first; i < w[t].first + w[t].n; i++) {
            bool hit = false;
            if (!w[t].ids[i][0]) continue;
            for (size_t k = 0; k < json_array_size(posts) && !hit; k++)
                hit = strcmp(json_string_value(json_object_get(json_array_get(posts, k), "postId")), w[t].ids[i]) == 0;
            cr_expect(hit, "create %d reported %s but the origin has no such post", i, w[t].ids[i]);
            found += hit;
        }
    cr_expect_eq(found, ok);
    cr_expect_leq((int)json_array_size(posts), CREATES);
    json_decref(posts);
    env_stop(&e);
}

/* ---- fallback with the origin stopped ----------------------------------------- */

Test(gateway_origin, reads_answer_stale_while_the_origin_is_down, .timeout = 90)
{
    env e;
    bb_post_page pg;
    bb_read_meta meta;
    bb_error err;
    bb_call call = { NULL, NULL, 0 };
    bb_post_query q = { .team = "alpha", .limit = 10 };
    bb_new_post np = { "alice", "kept while down", NULL, 0, NULL };
    bb_post p;
    char why[4096];
    bool fresh = false;
    env_start(&e, "    retry:\n      max_attempts: 2\n      base_ms: 5\n      max_ms: 10\n"
                  "    breaker:\n      failure_threshold: 3\n      open_ms: 200\n");
    cr_assert_eq(e.ops->create_post(e.inst, &call, "alpha", &np, &p, &err), BB_OK, "%s", err.msg);
    bb_post_clear(&p);
    cr_assert_eq(e.ops->list_posts(e.inst, &call, &q, &pg, &meta, &err), BB_OK, "%s", err.msg);
    cr_expect(!meta.stale);
    cr_assert_eq(pg.n, 1);
    bb_post_page_clear(&pg);

    cr_assert_eq(bbt_server_stop(&e.origin), 0);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(e.ops->list_posts(e.inst, &call, &q, &pg, &meta, &err), BB_OK, "%s", err.msg);
        cr_expect(meta.stale);
        cr_expect_eq(pg.n, 1);
        cr_expect_str_eq(pg.posts[0].content, "kept while down");
        bb_post_page_clear(&pg);
    }
    cr_expect_eq(e.ops->create_post(e.inst, &call, "alpha", &np, &p, &err), BB_UNAVAILABLE);

    cr_assert(bbt_server_restart(&e.origin, why, sizeof why), "%s", why);
    /* Fresh again once the breaker lets a probe through (open_ms 200). */
    for (int64_t until = gw_now_ms() + 5000; !fresh && gw_now_ms() < until;) {
        cr_assert_eq(e.ops->list_posts(e.inst, &call, &q, &pg, &meta, &err), BB_OK, "%s", err.msg);
        fresh = !meta.stale;
        bb_post_page_clear(&pg);
    }
    cr_expect(fresh, "still stale 5 s after the origin came back");
    env_stop(&e);
}

/* ---- breaker: the origin sees nothing while it is open ------------------------- */

Test(gateway_origin, open_breaker_sends_the_origin_nothing, .timeout = 60)
{
    env e;
    bb_post_page pg;
    bb_error err;
    bb_call call = { NULL, NULL, 0 };
    bb_post_query q = { .team = "alpha", .limit = 10 };
    double before, after;
    bool closed = false;
    env_start(&e, "    retry:\n      max_attempts: 1\n"
                  "    breaker:\n      failure_threshold: 3\n      open_ms: 500\n"
                  "    fallback_cache:\n      max_entries: 0\n");
    /* The origin answers, the answer is lost: three failures reach it. */
    proxy_rule(&e.px, "mode=commit_fail", NULL);
    before = origin_v1_requests(&e);
    for (int i = 0; i < 3; i++) cr_expect_eq(e.ops->list_posts(e.inst, &call, &q, &pg, NULL, &err), BB_UNAVAILABLE);
    after = origin_v1_requests(&e);
    cr_expect_eq(after - before, 3, "before %g after %g", before, after);
    for (int i = 0; i < 50; i++) cr_expect_eq(e.ops->list_posts(e.inst, &call, &q, &pg, NULL, &err), BB_UNAVAILABLE);
    cr_expect_eq(origin_v1_requests(&e), after, "the origin received requests while the breaker was open");

    proxy_reset(&e.px);   /* healthy again */
    for (int64_t until = gw_now_ms() + 5000; !closed && gw_now_ms() < until;) {
        if (e.ops->list_posts(e.inst, &call, &q, &pg, NULL, &err) == BB_OK) {
            closed = true;
            bb_post_page_clear(&pg);
        }
    }
    cr_expect(closed, "the breaker never closed");
    { double now = origin_v1_requests(&e); cr_expect_eq(now, after + 1, "one probe, and it closed the breaker (%g then %g)", after, now); }
    env_stop(&e);
}

/* ---- wire compatibility -------------------------------------------------------- */

Test(gateway_origin, every_operation_over_the_public_wire_format, .timeout = 60)
{
    env e;
    bb_call call = { "gw-rid-1", NULL, 0 };
    const char *tags[] = { "intro", "c" };
    bb_new_post root = { "alice", "root post @bob", tags, 2, NULL };
    bb_new_post reply = { "bob", "a reply", NULL, 0, NULL };
    bb_post p, r, got;
    bb_post_page pg;
    bb_error err;
    bb_post_query q = { .team = "alpha", .limit = 10 };
    char **v = NULL;
    size_t n = 0;
    env_start(&e, NULL);
    cr_assert_eq(e.ops->create_post(e.inst, &call, "alpha", &root, &p, &err), BB_OK, "%s", err.msg);
    reply.parent_id = p.id;
    cr_assert_eq(e.ops->create_post(e.inst, &call, "alpha", &reply, &r, &err), BB_OK, "%s", err.msg);
    cr_expect_str_eq(r.parent_id, p.id);
    cr_expect_str_eq(r.thread_id, p.id);

    cr_assert_eq(e.ops->get_post(e.inst, &call, "alpha", p.id, &got, NULL, &err), BB_OK, "%s", err.msg);
    cr_expect_str_eq(got.content, "root post @bob");
    cr_expect_eq(got.n_tags, 2);
    cr_expect_gt(got.created_ms, 0);
    bb_post_clear(&got);

    q.thread_id = p.id;
    cr_assert_eq(e.ops->list_posts(e.inst, &call, &q, &pg, NULL, &err), BB_OK, "%s", err.msg);
    cr_expect_eq(pg.n, 2);
    bb_post_page_clear(&pg);
    q.thread_id = NULL;
    q.author = "bob";
    cr_assert_eq(e.ops->list_posts(e.inst, &call, &q, &pg, NULL, &err), BB_OK, "%s", err.msg);
    cr_expect_eq(pg.n, 1);
    bb_post_page_clear(&pg);
    q.author = NULL;
    q.tag = "intro";
    cr_assert_eq(e.ops->list_posts(e.inst, &call, &q, &pg, NULL, &err), BB_OK, "%s", err.msg);
    cr_expect_eq(pg.n, 1);
    bb_post_page_clear(&pg);
    q.tag = NULL;
    q.mentions_of = "bob";
    cr_assert_eq(e.ops->list_posts(e.inst, &call, &q, &pg, NULL, &err), BB_OK, "%s", err.msg);
    cr_expect_eq(pg.n, 1);
    bb_post_page_clear(&pg);
    q.mentions_of = "alice";   /* bob replied to alice */
    cr_assert_eq(e.ops->list_posts(e.inst, &call, &q, &pg, NULL, &err), BB_OK, "%s", err.msg);
    cr_expect_eq(pg.n, 1);
    bb_post_page_clear(&pg);

    cr_assert_eq(e.ops->distinct(e.inst, &call, "alpha", BB_DISTINCT_AUTHOR, "", 10, &v, &n, &err), BB_OK);
    cr_expect_eq(n, 2);
    bb_strv_free(v, n);

    /* Errors as the origin reports them. */
    reply.parent_id = "01HZZZZZZZZZZZZZZZZZZZZZZZ";
    cr_expect_eq(e.ops->create_post(e.inst, &call, "alpha", &reply, &got, &err), BB_NOT_FOUND);
    cr_expect_str_eq(err.field, "parentPostId", "%s", err.msg);
    {
        bb_new_post empty = { "alice", "   ", NULL, 0, NULL };
        cr_expect_eq(e.ops->create_post(e.inst, &call, "alpha", &empty, &got, &err), BB_INVALID);
    }
    cr_expect_eq(e.ops->get_post(e.inst, &call, "alpha", "01HZZZZZZZZZZZZZZZZZZZZZZZ", &got, NULL, &err), BB_NOT_FOUND);
    cr_expect_eq(e.ops->list_posts(e.inst, &call, &(bb_post_query){ .team = "beta", .limit = 5 }, &pg, NULL, &err),
                 BB_INVALID, "another team's posts: %s (%s)", bb_status_name(err.code), err.msg);

    /* The delete reaches the origin, the answer is replaced by a 502; the
     * retry finds the post gone: that is a successful delete, not a 404.
     * (A dropped answer on a reused connection is re-sent by libcurl itself
     * before we see it: see the note in plugin.c.) */
    proxy_rule(&e.px, "mode=commit_fail&times=1", NULL);
    cr_assert_eq(e.ops->delete_post(e.inst, &call, "alpha", r.id, &err), BB_OK, "%s", err.msg);
    cr_expect_eq(proxy_requests(&e.px) >= 2, true);
    cr_expect_eq(e.ops->get_post(e.inst, &call, "alpha", r.id, &got, NULL, &err), BB_NOT_FOUND);
    cr_expect_eq(e.ops->delete_post(e.inst, &call, "alpha", r.id, &err), BB_NOT_FOUND);
    {
        char detail[256];
        cr_expect_eq(e.ops->health(e.inst, &call, detail, sizeof detail, &err), BB_OK, "%s", err.msg);
    }
    bb_post_clear(&p);
    bb_post_clear(&r);
    env_stop(&e);
}
