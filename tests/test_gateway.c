/*
 * tests/test_gateway.c — the upstream_http plugin driven in-process
 * (bb_app_open) through the fault proxy (tests/faultproxy).  The proxy is
 * the witness: it counts and timestamps every request that reached the
 * network, so retries, breaker fail-fast, single flight and deadlines are
 * measured where they matter.  The proxy answers injected responses here
 * ("none" origin); tests/test_gateway_origin.c runs against a real origin.
 */
#include <pthread.h>

#include "gateway_util.h"

#define PAGE_BODY                                                                                          \
    "{\"posts\":[{\"postId\":\"01AAA\",\"author\":\"alice\",\"content\":\"hello @bob\",\"tags\":[\"intro\",\"x\"]," \
    "\"parentPostId\":null,\"createdAt\":{\"_seconds\":1733230000}},"                                       \
    "{\"postId\":\"01BBB\",\"author\":\"bob\",\"content\":\"hi all\",\"tags\":[\"intro\"],"                 \
    "\"parentPostId\":null,\"createdAt\":{\"_seconds\":1733230001}},"                                       \
    "{\"postId\":\"01CCC\",\"author\":\"carol\",\"content\":\"welcome\",\"tags\":[],"                       \
    "\"parentPostId\":\"01BBB\",\"createdAt\":{\"_seconds\":1733230002}},"                                  \
    "{\"postId\":\"01DDD\",\"author\":\"anna\",\"content\":\"@bobby is not bob\",\"tags\":[\"misc\"],"     \
    "\"parentPostId\":null,\"createdAt\":{\"_seconds\":1733230003}}],"                                      \
    "\"totalCount\":4,\"nextOffset\":null}"
#define POST_BODY                                                                                          \
    "{\"postId\":\"01NEW\",\"author\":\"alice\",\"content\":\"new\",\"tags\":[],\"parentPostId\":null,"      \
    "\"createdAt\":{\"_seconds\":1733230009}}"

/* Keys every test sets; %s = proxy URL, then extra YAML lines under http:. */
#define BASE_YAML                                                         \
    "logging:\n  level: error\n"                                         \
    "upstream:\n  backend: http\n  http:\n"                              \
    "    base_url: %s/v1\n"                                              \
    "    api_key: test-key-123\n"                                        \
    "%s"

typedef struct gw {
    proxy               px;
    bb_app             *app;
    bb_upstream        *inst;
    const bb_upstream_ops *ops;
    char                label[96];   /* the upstream metric label */
} gw;

static void gw_start(gw *g, const char *extra_yaml)
{
    char why[1024], yaml[4096];
    bb_error err;
    memset(g, 0, sizeof *g);
    if (!proxy_start(&g->px, "none", why, sizeof why)) cr_skip_test("%s", why);
    snprintf(yaml, sizeof yaml, BASE_YAML, g->px.url, extra_yaml ? extra_yaml : "");
    g->app = gw_open(g->px.dir, yaml, &err);
    cr_assert_not_null(g->app, "bb_app_open: %s", err.msg);
    g->ops = bb_app_upstream(g->app, &g->inst);
    cr_assert_not_null(g->ops);
    snprintf(g->label, sizeof g->label, "upstream=\"%s/v1\"", g->px.url);
}

static void gw_stop(gw *g)
{
    if (g->app) bb_app_close(g->app);
    proxy_stop(&g->px);
}

static bb_status list(gw *g, int64_t offset, bb_post_page *pg, bb_read_meta *meta, bb_error *err)
{
    bb_post_query q = { .team = "default", .limit = 10, .offset = offset };
    bb_call call = { "req-1", NULL, 0 };
    bb_error_clear(err);
    return g->ops->list_posts(g->inst, &call, &q, pg, meta, err);
}

static double metric(gw *g, const char *name, const char *more_labels)
{
    char prefix[512];
    snprintf(prefix, sizeof prefix, "botboard_%s{%s%s%s}", name, g->label, more_labels ? "," : "",
             more_labels ? more_labels : "");
    return gw_metric(prefix);
}

/* ---- config validation ---------------------------------------------------- */

static void expect_config_error(const char *http_lines, const char *needle)
{
    char *dir = bbt_tempdir("gwcfg"), yaml[2048];
    bb_error err;
    bb_app *app;
    snprintf(yaml, sizeof yaml, "logging:\n  level: error\nupstream:\n  backend: http\n  http:\n%s", http_lines);
    app = gw_open(dir, yaml, &err);
    cr_expect_null(app, "config accepted: %s", http_lines);
    if (app) bb_app_close(app);
    else cr_expect_not_null(strstr(err.msg, needle), "'%s' not in: %s", needle, err.msg);
    bbt_rmtree(dir);
    free(dir);
}

Test(gateway_config, every_rule_is_enforced, .timeout = 30)
{
    expect_config_error("    api_key: k\n", "base_url");                                  /* required */
    expect_config_error("    base_url: ftp://x/v1\n", "must start with http");
    expect_config_error("    base_url: http://x/v1\n    retry:\n      base_ms: 500\n      max_ms: 100\n", "base_ms");
    expect_config_error("    base_url: http://x/v1\n    read_timeout_ms: 9000\n    call_deadline_ms: 1000\n",
                        "call_deadline_ms");
    expect_config_error("    base_url: http://x/v1\n    breaker:\n      failure_rate: 0\n", "failure_rate");
    expect_config_error("    base_url: http://x/v1\n    breaker:\n      failure_rate: 1.5\n", "failure_rate");
    expect_config_error("    base_url: http://x/v1\n    retry:\n      max_attempts: 0\n", "max_attempts");
    expect_config_error("    base_url: http://x/v1\n    api_key: \"a b\"\n", "api_key");
    expect_config_error("    base_url: http://x/v1\n    api_key_header: cookie\n", "api_key_header");
    expect_config_error("    base_url: http://x/v1\n    no_such_key: 1\n", "no_such_key");
    expect_config_error("    base_url: http://x/v1\n    fallback_cache:\n      max_entries: -1\n", "max_entries");
}

/* ---- headers -------------------------------------------------------------- */

Test(gateway, forwards_key_request_id_and_traceparent, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_read_meta meta;
    bb_error err;
    bb_call call = { "rid-abc", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 0 };
    bb_post_query q = { .team = "default", .limit = 10 };
    json_t *st, *e;
    gw_start(&g, NULL);
    proxy_rule(&g.px, "mode=status&status=200", PAGE_BODY);
    cr_assert_eq(g.ops->list_posts(g.inst, &call, &q, &pg, &meta, &err), BB_OK, "%s", err.msg);
    cr_expect_eq(pg.n, 4);
    cr_expect_eq(pg.total, 4);
    cr_expect_str_eq(pg.posts[0].id, "01AAA");
    cr_expect_str_eq(pg.posts[0].author, "alice");
    cr_expect_eq(pg.posts[0].n_tags, 2);
    cr_expect_eq(pg.posts[0].created_ms, 1733230000000LL);
    cr_expect_str_eq(pg.posts[2].parent_id, "01BBB");
    cr_expect_str_eq(pg.posts[2].thread_id, "01BBB");
    cr_expect(!meta.stale);
    bb_post_page_clear(&pg);
    st = proxy_stats(&g.px);
    e = json_array_get(json_object_get(st, "log"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(e, "path")), "/v1/teams/default/posts");
    cr_expect_str_eq(json_string_value(json_object_get(e, "auth")), "bearer");
    cr_expect_str_eq(json_string_value(json_object_get(e, "rid")), "rid-abc");
    cr_expect_str_eq(json_string_value(json_object_get(e, "traceparent")), call.traceparent);
    json_decref(st);
    gw_stop(&g);
}

Test(gateway, x_api_key_header_when_configured, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_error err;
    json_t *st;
    gw_start(&g, "    api_key_header: x-api-key\n");
    proxy_rule(&g.px, "mode=status&status=200", PAGE_BODY);
    cr_assert_eq(list(&g, 0, &pg, NULL, &err), BB_OK, "%s", err.msg);
    bb_post_page_clear(&pg);
    st = proxy_stats(&g.px);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(st, "log"), 0), "auth")),
                     "x-api-key");
    json_decref(st);
    gw_stop(&g);
}

/* ---- connection reuse ------------------------------------------------------ */

typedef struct reuse_arg {
    gw  *g;
    int  base, ok;
} reuse_arg;

static void *reuse_loop(void *ud)
{
    reuse_arg *a = ud;
    for (int i = 0; i < 50; i++) {
        bb_post_page pg;
        bb_error err;
        /* Different offsets: no single flight, every call is a request. */
        if (list(a->g, a->base + i, &pg, NULL, &err) == BB_OK) { a->ok++; bb_post_page_clear(&pg); }
    }
    return NULL;
}

Test(gateway, connections_are_reused_across_requests_and_threads, .timeout = 30)
{
    gw g;
    pthread_t th[4];
    reuse_arg a[4];
    json_t *st;
    long conns;
    gw_start(&g, NULL);
    proxy_rule(&g.px, "mode=status&status=200", PAGE_BODY);
    for (int i = 0; i < 4; i++) {
        a[i] = (reuse_arg){ &g, 1000 * (i + 1), 0 };
        cr_assert_eq(pthread_create(&th[i], NULL, reuse_loop, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(a[i].ok, 50);
    }
    st = proxy_stats(&g.px);
    cr_expect_eq(json_integer_value(json_object_get(st, "requests")), 200);
    conns = (long)json_integer_value(json_object_get(st, "connections"));
    json_decref(st);
    /* About one connection per concurrent caller, plus the test's own
     * control requests (a fresh connection each): far from one per request. */
    cr_expect_leq(conns, 4 + 2 + 4, "%ld connections for 200 requests from 4 threads", conns);
    gw_stop(&g);
}

/* ---- retries --------------------------------------------------------------- */

Test(gateway, retries_count_and_spacing_within_bounds, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_error err;
    json_t *st, *log;
    gw_start(&g, "    retry:\n      max_attempts: 4\n      base_ms: 300\n      max_ms: 450\n"
                 "    breaker:\n      failure_threshold: 100\n");
    /* One 503, then the proxy passes to origin "none": 502s.  All are
     * retryable, so exactly max_attempts requests go out. */
    proxy_rule(&g.px, "mode=status&status=503&times=1", NULL);
    cr_assert_eq(list(&g, 0, &pg, NULL, &err), BB_UNAVAILABLE);
    st = proxy_stats(&g.px);
    log = json_object_get(st, "log");
    cr_expect_eq(json_array_size(log), 4, "max_attempts=4 means 4 requests");
    for (size_t i = 1; i < json_array_size(log); i++) {
        int64_t gap = json_integer_value(json_object_get(json_array_get(log, i), "t_ms")) -
                      json_integer_value(json_object_get(json_array_get(log, i - 1), "t_ms"));
        int64_t cap = i == 1 ? 300 : 450;   /* min(max_ms, base_ms * 2^(i-1)) */
        /* gap = one attempt's round trip + the backoff; the slack covers the
         * round trip on a loaded machine (sanitizer builds included). */
        cr_expect(gap >= 0 && gap <= cap + 200, "gap %zu = %lld ms, cap %lld", i, (long long)gap, (long long)cap);
    }
    json_decref(st);
    cr_expect_eq(metric(&g, "upstream_retries_total", "operation=\"list_posts\""), 3);
    cr_expect_eq(metric(&g, "upstream_requests_total", "operation=\"list_posts\",outcome=\"server_error\""), 4);
    gw_stop(&g);
}

Test(gateway, retry_then_success, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_error err;
    gw_start(&g, "    retry:\n      max_attempts: 3\n      base_ms: 20\n      max_ms: 40\n"
                 "    breaker:\n      failure_threshold: 100\n");
    /* A dropped connection, a 504, then the page. */
    proxy_rule(&g.px, "mode=drop&times=1&then_status=504", NULL);
    cr_assert_eq(list(&g, 0, &pg, NULL, &err), BB_UNAVAILABLE);
    cr_expect_eq(proxy_requests(&g.px), 3);
    proxy_reset(&g.px);
    proxy_rule(&g.px, "mode=status&status=503&times=2&then_status=200", PAGE_BODY);
    cr_assert_eq(list(&g, 0, &pg, NULL, &err), BB_OK, "%s", err.msg);
    cr_expect_eq(pg.n, 4);
    bb_post_page_clear(&pg);
    cr_expect_eq(proxy_requests(&g.px), 3);
    cr_expect_eq(metric(&g, "upstream_retries_total", "operation=\"list_posts\""), 4);
    gw_stop(&g);
}

Test(gateway, retry_after_is_honoured, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_error err;
    json_t *st, *log;
    int64_t gap;
    gw_start(&g, "    retry:\n      max_attempts: 2\n      base_ms: 10\n      max_ms: 20\n");
    proxy_rule(&g.px, "mode=status&status=429&retry_after=1&times=2", NULL);
    cr_assert_eq(list(&g, 0, &pg, NULL, &err), BB_UNAVAILABLE);
    cr_expect_gt(err.retry_after_s, 0);
    st = proxy_stats(&g.px);
    log = json_object_get(st, "log");
    cr_assert_eq(json_array_size(log), 2);
    gap = json_integer_value(json_object_get(json_array_get(log, 1), "t_ms")) -
          json_integer_value(json_object_get(json_array_get(log, 0), "t_ms"));
    cr_expect(gap >= 980 && gap < 1500, "Retry-After: 1 but the retry came after %lld ms", (long long)gap);
    json_decref(st);
    gw_stop(&g);
}

Test(gateway, retry_after_on_503_is_honoured_too, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_error err;
    json_t *st, *log;
    int64_t gap;
    gw_start(&g, "    retry:\n      max_attempts: 2\n      base_ms: 10\n      max_ms: 20\n");
    proxy_rule(&g.px, "mode=status&status=503&retry_after=1&times=1&then_status=200", PAGE_BODY);
    cr_assert_eq(list(&g, 0, &pg, NULL, &err), BB_OK, "%s", err.msg);
    bb_post_page_clear(&pg);
    st = proxy_stats(&g.px);
    log = json_object_get(st, "log");
    cr_assert_eq(json_array_size(log), 2);
    gap = json_integer_value(json_object_get(json_array_get(log, 1), "t_ms")) -
          json_integer_value(json_object_get(json_array_get(log, 0), "t_ms"));
    cr_expect(gap >= 980 && gap < 1500, "Retry-After: 1 on a 503, retry after %lld ms", (long long)gap);
    json_decref(st);
    gw_stop(&g);
}

Test(gateway, retry_after_past_the_deadline_fails_at_once, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_error err;
    int64_t t0;
    gw_start(&g, "    call_deadline_ms: 2000\n    read_timeout_ms: 1000\n    write_timeout_ms: 1000\n");
    proxy_rule(&g.px, "mode=status&status=429&retry_after=5", NULL);
    t0 = gw_now_ms();
    cr_assert_eq(list(&g, 0, &pg, NULL, &err), BB_UNAVAILABLE);
    cr_expect_lt(gw_now_ms() - t0, 1000);
    cr_expect_eq(proxy_requests(&g.px), 1);
    cr_expect_eq(err.retry_after_s, 5);
    gw_stop(&g);
}

static void no_retry_on(int status, const char *body, bb_status want, const char *want_field, const char *needle)
{
    gw g;
    bb_post_page pg;
    bb_error err;
    char rule[128];
    gw_start(&g, "    retry:\n      max_attempts: 5\n      base_ms: 5\n      max_ms: 10\n");
    snprintf(rule, sizeof rule, "mode=status&status=%d", status);
    proxy_rule(&g.px, rule, body);
    cr_expect_eq(list(&g, 0, &pg, NULL, &err), want, "HTTP %d -> %s (%s)", status, bb_status_name(err.code), err.msg);
    cr_expect_eq(proxy_requests(&g.px), 1, "HTTP %d must not be retried", status);
    if (want_field) cr_expect_str_eq(err.field, want_field);
    if (needle) cr_expect_not_null(strstr(err.msg, needle), "%s", err.msg);
    gw_stop(&g);
}

Test(gateway, no_retry_on_400, .timeout = 30)
{
    no_retry_on(400, "{\"error\":\"limit must be 1-100\",\"code\":\"INVALID_INPUT\",\"details\":{\"field\":\"limit\"}}",
                BB_INVALID, "limit", "limit must be");
}
Test(gateway, no_retry_on_401, .timeout = 30) { no_retry_on(401, "{\"error\":\"bad key\",\"code\":\"AUTH_FAILED\"}", BB_INTERNAL, NULL, "rejected our API key"); }
Test(gateway, no_retry_on_403, .timeout = 30) { no_retry_on(403, "{\"error\":\"wrong team\",\"code\":\"FORBIDDEN\"}", BB_INVALID, NULL, "rejected our API key"); }
Test(gateway, no_retry_on_404, .timeout = 30) { no_retry_on(404, "{\"error\":\"no such team\",\"code\":\"NOT_FOUND\"}", BB_NOT_FOUND, NULL, "no such team"); }

/* ---- creates: idempotency key ---------------------------------------------- */

static bb_status create(gw *g, const char *parent, bb_post *out, bb_error *err)
{
    const char *tags[] = { "t1" };
    bb_new_post np = { "alice", "new", tags, 1, parent };
    bb_call call = { "req-c", NULL, 0 };
    bb_error_clear(err);
    return g->ops->create_post(g->inst, &call, "default", &np, out, err);
}

Test(gateway, retried_create_carries_one_idempotency_key, .timeout = 30)
{
    gw g;
    bb_post p;
    bb_error err;
    json_t *st, *log;
    const char *k1, *k2, *k3;
    gw_start(&g, "    retry:\n      max_attempts: 3\n      base_ms: 5\n      max_ms: 10\n");
    /* The first attempt "commits" and then fails (origin none: a 502 on the
     * way back); the retry gets the post. */
    proxy_rule(&g.px, "mode=commit_fail&times=1&then_status=201", POST_BODY);
    cr_assert_eq(create(&g, NULL, &p, &err), BB_OK, "%s", err.msg);
    cr_expect_str_eq(p.id, "01NEW");
    cr_expect_str_eq(p.author, "alice");
    bb_post_clear(&p);
    cr_assert_eq(create(&g, NULL, &p, &err), BB_OK, "%s", err.msg);
    bb_post_clear(&p);
    st = proxy_stats(&g.px);
    log = json_object_get(st, "log");
    cr_assert_eq(json_array_size(log), 3);
    k1 = json_string_value(json_object_get(json_array_get(log, 0), "idem"));
    k2 = json_string_value(json_object_get(json_array_get(log, 1), "idem"));
    k3 = json_string_value(json_object_get(json_array_get(log, 2), "idem"));
    cr_expect_eq(strlen(k1), 32);
    cr_expect_str_eq(k1, k2, "the retry of a create carries the same key");
    cr_expect_str_neq(k2, k3, "each logical create has its own key");
    json_decref(st);

    /* Within one logical call, every attempt carries the same key. */
    proxy_reset(&g.px);
    proxy_rule(&g.px, "mode=status&status=503", NULL);
    cr_assert_eq(create(&g, NULL, &p, &err), BB_UNAVAILABLE);
    cr_expect_not_null(strstr(err.msg, "create_post failed"), "%s", err.msg);
    st = proxy_stats(&g.px);
    log = json_object_get(st, "log");
    cr_assert_eq(json_array_size(log), 3);
    k1 = json_string_value(json_object_get(json_array_get(log, 0), "idem"));
    k2 = json_string_value(json_object_get(json_array_get(log, 1), "idem"));
    k3 = json_string_value(json_object_get(json_array_get(log, 2), "idem"));
    cr_expect_str_eq(k1, k2);
    cr_expect_str_eq(k2, k3);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(log, 0), "method")), "POST");
    json_decref(st);
    gw_stop(&g);
}

Test(gateway, parent_not_found_names_the_field, .timeout = 30)
{
    gw g;
    bb_post p;
    bb_error err;
    gw_start(&g, NULL);
    proxy_rule(&g.px, "mode=status&status=404", "{\"error\":\"parent post not found\",\"code\":\"PARENT_NOT_FOUND\"}");
    cr_assert_eq(create(&g, "01NOPE", &p, &err), BB_NOT_FOUND);
    cr_expect_str_eq(err.field, "parentPostId");
    cr_expect_eq(proxy_requests(&g.px), 1);
    proxy_rule(&g.px, "mode=status&status=409", "{\"error\":\"key reused\",\"code\":\"CONFLICT\"}");
    cr_expect_eq(create(&g, NULL, &p, &err), BB_CONFLICT);
    gw_stop(&g);
}

/* ---- circuit breaker ------------------------------------------------------- */

/* Calls until one reaches the proxy (breaker let a probe through); bounded. */
static int64_t wait_for_probe(gw *g, long *requests)
{
    int64_t t0 = gw_now_ms();
    long before = proxy_requests(&g->px);
    while (gw_now_ms() - t0 < 5000) {
        bb_post_page pg;
        bb_error err;
        if (list(g, 0, &pg, NULL, &err) == BB_OK) bb_post_page_clear(&pg);
        if ((*requests = proxy_requests(&g->px)) > before) return gw_now_ms() - t0;
    }
    return -1;
}

Test(gateway, breaker_opens_fails_fast_probes_and_closes, .timeout = 60)
{
    gw g;
    bb_post_page pg;
    bb_error err;
    long n;
    int64_t t0, waited;
    gw_start(&g, "    retry:\n      max_attempts: 1\n"
                 "    breaker:\n      failure_threshold: 3\n      open_ms: 600\n      half_open_max_calls: 1\n");
    proxy_rule(&g.px, "mode=status&status=503", NULL);
    for (int i = 0; i < 3; i++) cr_assert_eq(list(&g, 0, &pg, NULL, &err), BB_UNAVAILABLE);
    cr_expect_eq(proxy_requests(&g.px), 3);
    cr_expect_eq(metric(&g, "upstream_breaker_state", NULL), 1);
    cr_expect_eq(metric(&g, "upstream_breaker_transitions_total", "to=\"open\""), 1);

    /* Open: fail fast, nothing on the network. */
    t0 = gw_now_ms();
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(list(&g, 0, &pg, NULL, &err), BB_UNAVAILABLE);
        cr_expect_not_null(strstr(err.msg, "circuit breaker open"), "%s", err.msg);
        cr_expect_geq(err.retry_after_s, 1);
    }
    cr_expect_lt(gw_now_ms() - t0, 500, "open breaker must not wait");
    cr_expect_eq(proxy_requests(&g.px), 3, "no request while open");
    cr_expect_eq(metric(&g, "upstream_requests_total", "operation=\"list_posts\",outcome=\"short_circuit\""), 20);
    {
        char detail[256];
        bb_call call = { NULL, NULL, 0 };
        /* health() is a real round trip, outside the breaker: one request. */
        cr_expect_eq(g.ops->health(g.inst, &call, detail, sizeof detail, &err), BB_UNAVAILABLE);
        cr_expect_not_null(strstr(detail, "breaker open"), "%s", detail);
        cr_expect_eq(proxy_requests(&g.px), 4);
    }

    /* After open_ms one probe goes out; it fails: open again. */
    waited = wait_for_probe(&g, &n);
    cr_assert_geq(waited, 0, "no probe within 5 s");
    cr_expect_geq(waited, 350, "probe after %lld ms, open_ms is 600", (long long)waited);
    cr_expect_eq(n, 5);
    cr_expect_eq(metric(&g, "upstream_breaker_transitions_total", "to=\"half_open\""), 1);
    cr_expect_eq(metric(&g, "upstream_breaker_transitions_total", "to=\"open\""), 2);
    cr_assert_eq(list(&g, 0, &pg, NULL, &err), BB_UNAVAILABLE);
    cr_expect_eq(proxy_requests(&g.px), 5, "re-opened: no request");

    /* The upstream recovers: the next probe succeeds and closes it. */
    proxy_rule(&g.px, "mode=status&status=200", PAGE_BODY);
    waited = wait_for_probe(&g, &n);
    cr_assert_geq(waited, 0);
    cr_expect_eq(metric(&g, "upstream_breaker_state", NULL), 0);
    cr_expect_eq(metric(&g, "upstream_breaker_transitions_total", "to=\"closed\""), 1);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(list(&g, 0, &pg, NULL, &err), BB_OK, "%s", err.msg);
        bb_post_page_clear(&pg);
    }
    cr_expect_eq(proxy_requests(&g.px), n + 5, "closed: every call reaches the upstream");
    gw_stop(&g);
}

Test(gateway, breaker_opens_on_failure_rate, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_error err;
    gw_start(&g, "    retry:\n      max_attempts: 1\n"
                 "    breaker:\n      failure_threshold: 1000\n      failure_rate: 0.5\n      min_calls: 10\n"
                 "      window_ms: 60000\n      open_ms: 60000\n");
    /* Alternate success and failure: never two failures in a row, 50%. */
    for (int i = 0; i < 10; i++) {
        if (i % 2 == 0) proxy_rule(&g.px, "mode=status&status=200", PAGE_BODY);
        else proxy_rule(&g.px, "mode=status&status=503", NULL);
        if (list(&g, 0, &pg, NULL, &err) == BB_OK) bb_post_page_clear(&pg);
        if (i < 9) cr_expect_eq(metric(&g, "upstream_breaker_state", NULL), 0, "opened early at call %d", i + 1);
    }
    cr_expect_eq(metric(&g, "upstream_breaker_state", NULL), 1, "50%% failures over 10 calls must open it");
    proxy_rule(&g.px, "mode=status&status=200", PAGE_BODY);
    cr_expect_eq(list(&g, 5, &pg, NULL, &err), BB_UNAVAILABLE);
    cr_expect_eq(proxy_requests(&g.px), 10);
    gw_stop(&g);
}

Test(gateway, client_errors_do_not_trip_the_breaker, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_error err;
    gw_start(&g, "    breaker:\n      failure_threshold: 2\n");
    proxy_rule(&g.px, "mode=status&status=404", NULL);
    for (int i = 0; i < 6; i++) cr_expect_eq(list(&g, 0, &pg, NULL, &err), BB_NOT_FOUND);
    cr_expect_eq(metric(&g, "upstream_breaker_state", NULL), 0);
    cr_expect_eq(proxy_requests(&g.px), 6);
    gw_stop(&g);
}

/* ---- deadlines ------------------------------------------------------------- */

Test(gateway, hanging_upstream_never_holds_a_call_past_its_deadline, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_post p;
    bb_error err;
    bb_post_query q = { .team = "default", .limit = 10 };
    int64_t t0, took;
    gw_start(&g, "    call_deadline_ms: 700\n    read_timeout_ms: 300\n    write_timeout_ms: 300\n"
                 "    retry:\n      max_attempts: 10\n      base_ms: 10\n      max_ms: 50\n"
                 "    breaker:\n      failure_threshold: 1000\n");
    proxy_rule(&g.px, "mode=hang&hang_ms=30000", NULL);
    t0 = gw_now_ms();
    cr_expect_neq(list(&g, 0, &pg, NULL, &err), BB_OK);
    took = gw_now_ms() - t0;
    cr_expect(took >= 550 && took <= 950, "call_deadline_ms 700, call took %lld ms", (long long)took);
    cr_expect(err.code == BB_TIMEOUT || err.code == BB_UNAVAILABLE, "%s", bb_status_name(err.code));

    /* The caller's own deadline is shorter still: it wins. */
    {
        bb_call call = { NULL, NULL, 0 };
        call.deadline_ms = gw_now_ms() + 250;
        t0 = gw_now_ms();
        bb_error_clear(&err);
        cr_expect_neq(g.ops->list_posts(g.inst, &call, &q, &pg, NULL, &err), BB_OK);
        took = gw_now_ms() - t0;
        cr_expect(took <= 450, "call deadline 250 ms, took %lld ms", (long long)took);
    }
    /* Writes are bounded the same way. */
    t0 = gw_now_ms();
    cr_expect_neq(create(&g, NULL, &p, &err), BB_OK);
    took = gw_now_ms() - t0;
    cr_expect(took <= 950, "create took %lld ms", (long long)took);
    proxy_reset(&g.px);   /* releases the hung requests */
    gw_stop(&g);
}

/* ---- fallback cache -------------------------------------------------------- */

Test(gateway, reads_fall_back_to_stale_cache_and_recover, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_post p;
    bb_read_meta meta;
    bb_error err;
    bb_call call = { NULL, NULL, 0 };
    gw_start(&g, "    retry:\n      max_attempts: 2\n      base_ms: 5\n      max_ms: 10\n"
                 "    breaker:\n      failure_threshold: 4\n      open_ms: 60000\n");
    proxy_rule(&g.px, "mode=status&status=200", PAGE_BODY);
    cr_assert_eq(list(&g, 0, &pg, &meta, &err), BB_OK, "%s", err.msg);
    cr_expect(!meta.stale);
    bb_post_page_clear(&pg);
    proxy_rule(&g.px, "mode=status&status=200", POST_BODY);
    cr_assert_eq(g.ops->get_post(g.inst, &call, "default", "01NEW", &p, &meta, &err), BB_OK, "%s", err.msg);
    bb_post_clear(&p);

    /* Upstream down (5xx, then dropped connections): stale answers. */
    proxy_rule(&g.px, "mode=status&status=503", NULL);
    cr_assert_eq(list(&g, 0, &pg, &meta, &err), BB_OK, "%s", err.msg);
    cr_expect(meta.stale);
    cr_expect_geq(meta.age_ms, 0);
    cr_expect_eq(pg.n, 4);
    cr_expect_str_eq(pg.posts[1].author, "bob");
    bb_post_page_clear(&pg);
    proxy_rule(&g.px, "mode=drop", NULL);
    cr_assert_eq(g.ops->get_post(g.inst, &call, "default", "01NEW", &p, &meta, &err), BB_OK, "%s", err.msg);
    cr_expect(meta.stale);
    cr_expect_str_eq(p.id, "01NEW");
    bb_post_clear(&p);
    /* A query never seen has nothing to fall back on. */
    cr_expect_eq(list(&g, 5, &pg, &meta, &err), BB_UNAVAILABLE);
    /* Breaker now open (4 failed attempts): still stale reads, fast. */
    cr_expect_eq(metric(&g, "upstream_breaker_state", NULL), 1);
    cr_assert_eq(list(&g, 0, &pg, &meta, &err), BB_OK, "%s", err.msg);
    cr_expect(meta.stale);
    bb_post_page_clear(&pg);
    /* Writes fail fast with a clear message. */
    cr_expect_eq(create(&g, NULL, &p, &err), BB_UNAVAILABLE);
    cr_expect_not_null(strstr(err.msg, "create_post failed"), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "circuit breaker open"), "%s", err.msg);
    cr_expect_geq(metric(&g, "upstream_cache_total", "result=\"stale\""), 3);
    gw_stop(&g);
}

Test(gateway, fresh_again_once_the_upstream_returns, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_read_meta meta;
    bb_error err;
    gw_start(&g, "    retry:\n      max_attempts: 1\n    breaker:\n      failure_threshold: 100\n");
    proxy_rule(&g.px, "mode=status&status=200", PAGE_BODY);
    cr_assert_eq(list(&g, 0, &pg, &meta, &err), BB_OK);
    bb_post_page_clear(&pg);
    proxy_rule(&g.px, "mode=status&status=503", NULL);
    cr_assert_eq(list(&g, 0, &pg, &meta, &err), BB_OK);
    cr_expect(meta.stale);
    bb_post_page_clear(&pg);
    proxy_rule(&g.px, "mode=status&status=200", PAGE_BODY);
    cr_assert_eq(list(&g, 0, &pg, &meta, &err), BB_OK);
    cr_expect(!meta.stale, "the upstream is back: the answer must be fresh");
    bb_post_page_clear(&pg);
    gw_stop(&g);
}

Test(gateway, cache_disabled_means_no_fallback, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_read_meta meta;
    bb_error err;
    gw_start(&g, "    retry:\n      max_attempts: 1\n    fallback_cache:\n      max_entries: 0\n");
    proxy_rule(&g.px, "mode=status&status=200", PAGE_BODY);
    cr_assert_eq(list(&g, 0, &pg, &meta, &err), BB_OK);
    bb_post_page_clear(&pg);
    proxy_rule(&g.px, "mode=status&status=503", NULL);
    cr_expect_eq(list(&g, 0, &pg, &meta, &err), BB_UNAVAILABLE);
    gw_stop(&g);
}

Test(gateway, fresh_ms_serves_from_cache_without_a_round_trip, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_post p;
    bb_read_meta meta;
    bb_error err;
    gw_start(&g, "    fallback_cache:\n      fresh_ms: 60000\n");
    proxy_rule(&g.px, "mode=status&status=200", PAGE_BODY);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(list(&g, 0, &pg, &meta, &err), BB_OK);
        cr_expect(!meta.stale);
        bb_post_page_clear(&pg);
    }
    cr_expect_eq(proxy_requests(&g.px), 1);
    cr_expect_eq(metric(&g, "upstream_cache_total", "result=\"hit\""), 4);
    /* A write through the gateway: the writer must see fresh data next. */
    proxy_rule(&g.px, "mode=status&status=201", POST_BODY);
    cr_assert_eq(create(&g, NULL, &p, &err), BB_OK, "%s", err.msg);
    bb_post_clear(&p);
    proxy_rule(&g.px, "mode=status&status=200", PAGE_BODY);
    cr_assert_eq(list(&g, 0, &pg, &meta, &err), BB_OK);
    bb_post_page_clear(&pg);
    cr_expect_eq(proxy_requests(&g.px), 3);
    gw_stop(&g);
}

Test(gateway, cache_is_bounded, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_read_meta meta;
    bb_error err;
    gw_start(&g, "    retry:\n      max_attempts: 1\n    breaker:\n      failure_threshold: 100\n"
                 "    fallback_cache:\n      max_entries: 3\n");
    proxy_rule(&g.px, "mode=status&status=200", PAGE_BODY);
    for (int64_t off = 0; off < 5; off++) {
        cr_assert_eq(list(&g, off, &pg, &meta, &err), BB_OK);
        bb_post_page_clear(&pg);
    }
    proxy_rule(&g.px, "mode=status&status=503", NULL);
    /* Only the 3 most recent (offsets 2, 3, 4) are left. */
    cr_expect_eq(list(&g, 0, &pg, &meta, &err), BB_UNAVAILABLE);
    cr_expect_eq(list(&g, 1, &pg, &meta, &err), BB_UNAVAILABLE);
    for (int64_t off = 2; off < 5; off++) {
        cr_expect_eq(list(&g, off, &pg, &meta, &err), BB_OK, "offset %lld", (long long)off);
        cr_expect(meta.stale);
        bb_post_page_clear(&pg);
    }
    gw_stop(&g);
}

Test(gateway, cache_is_bounded_in_bytes, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_read_meta meta;
    bb_error err;
    char extra[256];
    /* Room for two pages, not three. */
    snprintf(extra, sizeof extra, "    retry:\n      max_attempts: 1\n    breaker:\n      failure_threshold: 100\n"
             "    fallback_cache:\n      max_bytes: %zu\n", 2 * strlen(PAGE_BODY) + 10);
    gw_start(&g, extra);
    proxy_rule(&g.px, "mode=status&status=200", PAGE_BODY);
    for (int64_t off = 0; off < 3; off++) {
        cr_assert_eq(list(&g, off, &pg, &meta, &err), BB_OK);
        bb_post_page_clear(&pg);
    }
    proxy_rule(&g.px, "mode=status&status=503", NULL);
    cr_expect_eq(list(&g, 0, &pg, &meta, &err), BB_UNAVAILABLE, "the oldest page must have been evicted");
    for (int64_t off = 1; off < 3; off++) {
        cr_expect_eq(list(&g, off, &pg, &meta, &err), BB_OK, "offset %lld", (long long)off);
        bb_post_page_clear(&pg);
    }
    gw_stop(&g);
}

/* ---- single flight --------------------------------------------------------- */

typedef struct sf_arg {
    gw       *g;
    bb_status st;
    size_t    n;
} sf_arg;

static void *sf_reader(void *ud)
{
    sf_arg *a = ud;
    bb_post_page pg;
    bb_error err;
    a->st = list(a->g, 0, &pg, NULL, &err);
    a->n = pg.n;
    if (a->st == BB_OK) bb_post_page_clear(&pg);
    return NULL;
}

Test(gateway, fifty_identical_concurrent_reads_make_one_request, .timeout = 30)
{
    enum { N = 50 };
    gw g;
    pthread_t th[N];
    sf_arg args[N];
    gw_start(&g, NULL);
    /* A slow upstream keeps the first request in flight while the rest arrive. */
    proxy_rule(&g.px, "mode=status&status=200&latency_ms=800", PAGE_BODY);
    for (int i = 0; i < N; i++) {
        args[i] = (sf_arg){ &g, BB_INTERNAL, 0 };
        cr_assert_eq(pthread_create(&th[i], NULL, sf_reader, &args[i]), 0);
    }
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        cr_expect_eq(args[i].st, BB_OK, "reader %d", i);
        cr_expect_eq(args[i].n, 4, "reader %d", i);
    }
    cr_expect_eq(proxy_requests(&g.px), 1);
    cr_expect_eq(metric(&g, "upstream_deduplicated_total", "operation=\"list_posts\""), N - 1);
    gw_stop(&g);
}

/* ---- no REST filter: mentions and completions ------------------------------- */

Test(gateway, mentions_and_distinct_are_derived_from_recent_posts, .timeout = 30)
{
    gw g;
    bb_post_page pg;
    bb_error err;
    bb_call call = { NULL, NULL, 0 };
    bb_post_query q = { .team = "default", .limit = 10, .mentions_of = "bob" };
    char **v = NULL;
    size_t n = 0;
    gw_start(&g, NULL);
    proxy_rule(&g.px, "mode=status&status=200", PAGE_BODY);
    cr_assert_eq(g.ops->list_posts(g.inst, &call, &q, &pg, NULL, &err), BB_OK, "%s", err.msg);
    /* "hello @bob" and carol's reply to bob; not "@bobby". */
    cr_assert_eq(pg.n, 2);
    cr_expect_str_eq(pg.posts[0].id, "01AAA");
    cr_expect_str_eq(pg.posts[1].id, "01CCC");
    cr_expect_eq(pg.total, 2);
    bb_post_page_clear(&pg);

    cr_assert_eq(g.ops->distinct(g.inst, &call, "default", BB_DISTINCT_AUTHOR, "a", 10, &v, &n, &err), BB_OK);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(v[0], "alice");
    cr_expect_str_eq(v[1], "anna");
    bb_strv_free(v, n);
    cr_assert_eq(g.ops->distinct(g.inst, &call, "default", BB_DISTINCT_TAG, "", 10, &v, &n, &err), BB_OK);
    cr_expect_eq(n, 3);   /* intro, misc, x */
    bb_strv_free(v, n);
    gw_stop(&g);
}

Test(gateway, health_reports_reachability_and_breaker, .timeout = 30)
{
    gw g;
    char detail[256];
    bb_error err;
    bb_call call = { NULL, NULL, 0 };
    gw_start(&g, NULL);
    proxy_rule(&g.px, "mode=status&status=200", "{\"name\":\"default\"}");
    cr_expect_eq(g.ops->health(g.inst, &call, detail, sizeof detail, &err), BB_OK);
    cr_expect_not_null(strstr(detail, "breaker closed"), "%s", detail);
    proxy_rule(&g.px, "mode=drop", NULL);
    cr_expect_eq(g.ops->health(g.inst, &call, detail, sizeof detail, &err), BB_UNAVAILABLE);
    proxy_rule(&g.px, "mode=status&status=401", NULL);
    cr_expect_eq(g.ops->health(g.inst, &call, detail, sizeof detail, &err), BB_UNAVAILABLE);
    cr_expect_not_null(strstr(detail, "API key"), "%s", detail);
    gw_stop(&g);
}
