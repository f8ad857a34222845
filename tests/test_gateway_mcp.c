/*
 * tests/test_gateway_mcp.c — gateway mode end to end: two real botboard
 * processes.  The origin serves REST over SQLite; the gateway serves MCP
 * with upstream_http pointed at the origin through the fault proxy.  Agents
 * talk MCP (raw JSON-RPC over HTTP) to the gateway only; the origin's REST
 * answers and the proxy's request log are the witnesses.
 */
#include <pthread.h>

#include "gateway_util.h"
#include "mcp_common.h"

#define MCP_VER "2025-11-25"

#define ORIGIN_YAML                                                                              \
    "server:\n  listen: 127.0.0.1:{{PORT}}\n  shutdown_grace_ms: 3000\n"                       \
    "storage:\n  backend: sqlite\n  auto_migrate: true\n  sqlite:\n    path: origin.db\n"       \
    "session:\n  backend: memory\nupstream:\n  backend: local\n"                                \
    "bootstrap:\n  key_file: dev.key\nlogging:\n  format: json\n  level: warn\n"                \
    "ratelimit:\n  read: { per_minute: 10000000, burst: 1000000 }\n"                            \
    "  write: { per_minute: 10000000, burst: 1000000 }\n  delete: { per_minute: 10000000, burst: 1000000 }\n"

/* %s: proxy URL, origin key, extra lines under upstream.http. */
#define GATEWAY_YAML                                                                             \
    "server:\n  listen: 127.0.0.1:{{PORT}}\n  shutdown_grace_ms: 3000\n  threads: 128\n"         \
    "storage:\n  backend: sqlite\n  auto_migrate: true\n  sqlite:\n    path: gateway.db\n"      \
    "session:\n  backend: memory\n"                                                             \
    "upstream:\n  backend: http\n  http:\n    base_url: %s/v1\n    api_key: %s\n%s"             \
    "bootstrap:\n  key_file: dev.key\nlogging:\n  format: json\n  level: debug\n"               \
    "ratelimit:\n  read: { per_minute: 10000000, burst: 1000000 }\n"                            \
    "  write: { per_minute: 10000000, burst: 1000000 }\n  delete: { per_minute: 10000000, burst: 1000000 }\n"

typedef struct duo {
    bbt_server origin;
    char       origin_key[128];
    proxy      px;
    mcp_env    gw;     /* the gateway, with its own key for MCP clients */
} duo;

static void make_key(const char *config_path, char *key, size_t len)
{
    const char *team[] = { "team", "create", "default", NULL };
    const char *args[] = { "key", "create", "--team", "default", NULL };
    char *out = NULL, *err = NULL;
    size_t n;
    bbt_botboard_cli(config_path, team, NULL, NULL);   /* the dev bootstrap may have made it */
    cr_assert_eq(bbt_botboard_cli(config_path, args, &out, &err), 0, "key create: %s", err ? err : "");
    n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r')) out[--n] = '\0';
    snprintf(key, len, "%s", out);
    free(out);
    free(err);
}

static void duo_start(duo *d, const char *http_extra)
{
    char why[4096], yaml[8192];
    memset(d, 0, sizeof *d);
    if (!bbt_server_start(&d->origin, ORIGIN_YAML, why, sizeof why)) cr_skip_test("origin did not start: %s", why);
    make_key(d->origin.config_path, d->origin_key, sizeof d->origin_key);
    if (!proxy_start(&d->px, d->origin.base_url, why, sizeof why)) cr_skip_test("%s", why);
    snprintf(yaml, sizeof yaml, GATEWAY_YAML, d->px.url, d->origin_key, http_extra ? http_extra : "");
    if (!bbt_server_start(&d->gw.srv, yaml, why, sizeof why)) cr_assert_fail("gateway did not start: %s", why);
    make_key(d->gw.srv.config_path, d->gw.key, sizeof d->gw.key);
    snprintf(d->gw.url, sizeof d->gw.url, "%s/mcp", d->gw.srv.base_url);
}

static void duo_stop(duo *d)
{
    /* Exit 0 also means no sanitizer report from the gateway process. */
    char *log;
    cr_expect_eq(bbt_server_stop(&d->gw.srv), 0, "the gateway did not exit cleanly (see %s)", d->gw.srv.proc.log_path);
    /* The upstream key is a secret: never in the gateway's log. */
    log = bbt_read_file(d->gw.srv.proc.log_path, NULL);
    cr_expect(log && !strstr(log, d->origin_key), "the upstream API key appears in the gateway log");
    free(log);
    bbt_server_destroy(&d->gw.srv);
    proxy_stop(&d->px);
    bbt_server_destroy(&d->origin);
}

/* tools/call on the gateway; returns the whole JSON-RPC answer. */
static json_t *tool(duo *d, const char *sid, const char *name, const char *args_json)
{
    char body[2048];
    bbt_response r;
    json_t *j;
    snprintf(body, sizeof body,
             "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\",\"arguments\":%s}}",
             name, args_json);
    r = mcp_post_h(&d->gw, sid, MCP_VER, body, NULL);
    cr_assert_eq(r.status, 200, "%s: HTTP %ld %s", name, r.status, r.body);
    j = mcp_json(&r);
    bbt_response_free(&r);
    return j;
}

static json_t *result(json_t *msg) { return json_object_get(msg, "result"); }
static bool is_error(json_t *msg) { return json_is_true(json_object_get(result(msg), "isError")); }
static json_t *sc(json_t *msg) { return json_object_get(result(msg), "structuredContent"); }
static const char *text0(json_t *msg)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(result(msg), "content"), 0), "text"));
}

static long proxy_count(duo *d, const char *method, const char *path_prefix)
{
    json_t *st = proxy_stats(&d->px), *log = json_object_get(st, "log");
    long n = 0;
    for (size_t i = 0; i < json_array_size(log); i++) {
        json_t *e = json_array_get(log, i);
        if (strcmp(json_string_value(json_object_get(e, "method")), method) == 0 &&
            strncmp(json_string_value(json_object_get(e, "path")), path_prefix, strlen(path_prefix)) == 0)
            n++;
    }
    json_decref(st);
    return n;
}

/* ---- fallback ------------------------------------------------------------- */

Test(gateway_mcp, read_posts_stale_while_origin_is_down_fresh_after, .timeout = 90)
{
    duo d;
    char *sid, why[4096];
    json_t *m;
    bool fresh = false;
    duo_start(&d, "    retry:\n      max_attempts: 2\n      base_ms: 5\n      max_ms: 10\n"
                  "    breaker:\n      failure_threshold: 3\n      open_ms: 200\n");
    sid = mcp_open(&d.gw, MCP_VER);
    json_decref(tool(&d, sid, "login", "{\"agent_name\":\"alice\"}"));
    m = tool(&d, sid, "create_post", "{\"content\":\"posted through the gateway\",\"tags\":[\"gw\"]}");
    cr_assert(!is_error(m), "%s", text0(m));
    json_decref(m);
    m = tool(&d, sid, "read_posts", "{\"limit\":5}");
    cr_assert(!is_error(m), "%s", text0(m));
    cr_expect_eq(json_array_size(json_object_get(sc(m), "posts")), 1);
    cr_expect_null(json_object_get(sc(m), "stale"));
    json_decref(m);

    cr_assert_eq(bbt_server_stop(&d.origin), 0);
    for (int i = 0; i < 5; i++) {
        m = tool(&d, sid, "read_posts", "{\"limit\":5}");
        cr_assert(!is_error(m), "origin down, call %d: %s", i, text0(m));
        cr_expect(json_is_true(json_object_get(sc(m), "stale")), "not marked stale");
        cr_expect(json_integer_value(json_object_get(sc(m), "ageMs")) >= 0);
        cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(sc(m), "posts"), 0), "content")),
                         "posted through the gateway");
        cr_expect_not_null(strstr(text0(m), "Retry later for fresh data"), "%s", text0(m));
        json_decref(m);
    }
    /* Writes fail fast, with a reason. */
    m = tool(&d, sid, "create_post", "{\"content\":\"lost?\"}");
    cr_expect(is_error(m));
    cr_expect_not_null(strstr(text0(m), "unavailable"), "%s", text0(m));
    json_decref(m);

    cr_assert(bbt_server_restart(&d.origin, why, sizeof why), "%s", why);
    for (int64_t until = gw_now_ms() + 5000; !fresh && gw_now_ms() < until;) {
        m = tool(&d, sid, "read_posts", "{\"limit\":5}");
        fresh = !is_error(m) && !json_object_get(sc(m), "stale");
        json_decref(m);
    }
    cr_expect(fresh, "still stale 5 s after the origin returned");
    free(sid);
    duo_stop(&d);
}

/* ---- single flight ----------------------------------------------------------- */

typedef struct reader {
    duo  *d;
    char *sid;
    bool  ok;
} reader;

static void *read_once(void *ud)
{
    reader *r = ud;
    char body[] = "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"read_posts\","
                  "\"arguments\":{\"limit\":10,\"tag_filter\":\"sf\"}}}";
    char auth[200], sidh[200];
    const char *h[] = { auth, "Accept: application/json, text/event-stream", "Content-Type: application/json", sidh,
                        "MCP-Protocol-Version: " MCP_VER, NULL };
    bbt_response resp;
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", r->d->gw.key);
    snprintf(sidh, sizeof sidh, "Mcp-Session-Id: %s", r->sid);
    r->ok = bbt_http("POST", r->d->gw.url, h, body, strlen(body), &resp) && resp.status == 200 &&
            strstr(resp.body, "\"isError\":true") == NULL && strstr(resp.body, "\"posts\"") != NULL;
    bbt_response_free(&resp);
    return NULL;
}

Test(gateway_mcp, fifty_concurrent_identical_read_posts_share_origin_requests, .timeout = 60)
{
    enum { N = 50 };
    duo d;
    pthread_t th[N];
    reader rd[N];
    char *sid;
    duo_start(&d, NULL);
    sid = mcp_open(&d.gw, MCP_VER);
    /* The origin is slow: the first request is still out when the rest arrive. */
    proxy_reset(&d.px);
    proxy_rule(&d.px, "mode=pass&latency_ms=2000", NULL);
    for (int i = 0; i < N; i++) {
        rd[i] = (reader){ &d, sid, false };
        cr_assert_eq(pthread_create(&th[i], NULL, read_once, &rd[i]), 0);
    }
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) cr_expect(rd[i].ok, "reader %d failed", i);
    {
        /* Reads that overlap share one request.  A connection that MHD queued
         * behind a worker busy with the first read is only read after that
         * read finished: it is not concurrent and may start a new flight, so
         * the exact property is "no two origin requests overlap" (each one
         * takes the injected 2000 ms), and most readers were folded (on a
         * slow machine — sanitizers, distcheck — the 50 connections take a
         * while to arrive, so a few flights follow one another). */
        json_t *st = proxy_stats(&d.px), *log = json_object_get(st, "log");
        size_t n = json_array_size(log);
        double dedup = -1;
        bbt_response r;
        char mu[256];
        cr_expect(n >= 1 && n <= N / 5, "%zu origin requests for %d identical concurrent reads", n, N);
        for (size_t i = 1; i < n; i++) {
            int64_t gap = json_integer_value(json_object_get(json_array_get(log, i), "t_ms")) -
                          json_integer_value(json_object_get(json_array_get(log, i - 1), "t_ms"));
            cr_expect_geq(gap, 1950, "origin requests %zu and %zu overlapped (%lld ms apart)", i - 1, i, (long long)gap);
        }
        snprintf(mu, sizeof mu, "%s/metrics", d.gw.srv.base_url);
        cr_assert(bbt_http("GET", mu, NULL, NULL, 0, &r));
        for (char *line = strstr(r.body, "botboard_upstream_deduplicated_total{"); line; line = strstr(line + 1, "botboard_upstream_deduplicated_total{"))
            if (strstr(line, "operation=\"list_posts\"") && strstr(line, "operation=\"list_posts\"") < strchr(line, '\n'))
                dedup = strtod(strchr(line, ' ') + 1, NULL);
        bbt_response_free(&r);
        cr_expect_eq(dedup, (double)(N - (int)n), "deduplicated %g of %d", dedup, N);
        json_decref(st);
    }
    free(sid);
    duo_stop(&d);
}

/* ---- deadlines ----------------------------------------------------------------- */

Test(gateway_mcp, hanging_origin_never_holds_an_mcp_call_past_its_deadline, .timeout = 60)
{
    duo d;
    char *sid;
    json_t *m;
    int64_t t0, took;
    duo_start(&d, "    call_deadline_ms: 800\n    read_timeout_ms: 300\n    write_timeout_ms: 300\n"
                  "    retry:\n      max_attempts: 10\n      base_ms: 10\n      max_ms: 50\n");
    sid = mcp_open(&d.gw, MCP_VER);
    json_decref(tool(&d, sid, "login", "{\"agent_name\":\"alice\"}"));
    proxy_rule(&d.px, "mode=hang&hang_ms=60000", NULL);
    t0 = gw_now_ms();
    m = tool(&d, sid, "read_posts", "{\"limit\":3,\"offset\":7}");
    took = gw_now_ms() - t0;
    cr_expect(is_error(m), "a hanging origin cannot answer");
    cr_expect_leq(took, 1300, "deadline 800 ms, the MCP call took %lld ms", (long long)took);
    json_decref(m);
    t0 = gw_now_ms();
    m = tool(&d, sid, "create_post", "{\"content\":\"into the void\"}");
    took = gw_now_ms() - t0;
    cr_expect(is_error(m));
    cr_expect_leq(took, 1300, "create took %lld ms", (long long)took);
    json_decref(m);
    proxy_reset(&d.px);   /* release the hung requests */
    free(sid);
    duo_stop(&d);
}

/* ---- exactly once ---------------------------------------------------------------- */

enum { CREATES = 1000, WRITERS = 4 };

typedef struct writer {
    duo  *d;
    int   first, n, ok;
    char  ids[CREATES][BB_ID_MAX];
} writer;

static void *write_loop(void *ud)
{
    writer *w = ud;
    char *sid = mcp_open(&w->d->gw, MCP_VER);
    json_decref(tool(w->d, sid, "login", "{\"agent_name\":\"writer\"}"));
    for (int i = w->first; i < w->first + w->n; i++) {
        char args[128];
        json_t *m;
        snprintf(args, sizeof args, "{\"content\":\"once %d\"}", i);
        m = tool(w->d, sid, "create_post", args);
        if (!is_error(m)) {
            const char *id = json_string_value(json_object_get(sc(m), "postId"));
            snprintf(w->ids[i], sizeof w->ids[i], "%s", id ? id : "?");
            w->ok++;
        }
        json_decref(m);
    }
    free(sid);
    return NULL;
}

Test(gateway_mcp, thousand_create_post_exactly_once_with_30pct_failures, .timeout = 300)
{
    duo d;
    static writer w[WRITERS];
    pthread_t th[WRITERS];
    int ok = 0;
    json_t *all = json_array();
    char auth[200];
    const char *hdrs[] = { auth, NULL };
    duo_start(&d, "    retry:\n      max_attempts: 8\n      base_ms: 2\n      max_ms: 20\n"
                  "    breaker:\n      failure_threshold: 1000\n      failure_rate: 1\n      min_calls: 100000\n");
    proxy_rule(&d.px, "mode=mix&fail_pct=30&seed=777", NULL);
    for (int t = 0; t < WRITERS; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t] = (writer){ .d = &d, .first = t * (CREATES / WRITERS), .n = CREATES / WRITERS };
        cr_assert_eq(pthread_create(&th[t], NULL, write_loop, &w[t]), 0);
    }
    for (int t = 0; t < WRITERS; t++) {
        pthread_join(th[t], NULL);
        ok += w[t].ok;
    }
    proxy_reset(&d.px);
    cr_expect_geq(ok, CREATES - 10, "%d of %d creates reported success", ok, CREATES);

    snprintf(auth, sizeof auth, "Authorization: Bearer %s", d.origin_key);
    for (int offset = 0; offset < 5000; offset += 100) {
        char url[256];
        bbt_response r;
        json_t *pg;
        size_t n;
        snprintf(url, sizeof url, "%s/v1/teams/default/posts?limit=100&offset=%d", d.origin.base_url, offset);
        cr_assert(bbt_http("GET", url, hdrs, NULL, 0, &r));
        cr_assert_eq(r.status, 200, "%s", r.body);
        pg = json_loads(r.body, 0, NULL);
        bbt_response_free(&r);
        n = json_array_size(json_object_get(pg, "posts"));
        json_array_extend(all, json_object_get(pg, "posts"));
        json_decref(pg);
        if (n < 100) break;
    }
    {
        /* Each content at most once; each reported id present. */
        static char seen[CREATES];
        memset(seen, 0, sizeof seen);
        for (size_t i = 0; i < json_array_size(all); i++) {
            int k = -1;
            sscanf(json_string_value(json_object_get(json_array_get(all, i), "content")), "once %d", &k);
            cr_assert(k >= 0 && k < CREATES);
            cr_assert(!seen[k], "\"once %d\" exists twice on the origin", k);
            seen[k] = 1;
        }
        for (int t = 0; t < WRITERS; t++)
            for (int i = w[t].first; i < w[t].first + w[t].n; i++) {
                bool hit = false;
                if (!w[t].ids[i][0]) continue;
                cr_expect(seen[i], "create %d reported success but is not on the origin", i);
                for (size_t k = 0; k < json_array_size(all) && !hit; k++)
                    hit = !strcmp(json_string_value(json_object_get(json_array_get(all, k), "postId")), w[t].ids[i]);
                cr_expect(hit, "create %d: reported id %s is not on the origin", i, w[t].ids[i]);
            }
    }
    json_decref(all);
    duo_stop(&d);
}

/* ---- breaker in readiness ------------------------------------------------------------ */

Test(gateway_mcp, open_breaker_fails_fast_and_shows_in_readyz, .timeout = 60)
{
    duo d;
    char *sid, url[256];
    json_t *m;
    bbt_response r;
    long before;
    int64_t t0;
    duo_start(&d, "    retry:\n      max_attempts: 1\n"
                  "    breaker:\n      failure_threshold: 3\n      open_ms: 60000\n"
                  "    fallback_cache:\n      max_entries: 0\n");
    sid = mcp_open(&d.gw, MCP_VER);
    proxy_rule(&d.px, "mode=status&status=503", NULL);
    for (int i = 0; i < 3; i++) json_decref(tool(&d, sid, "read_posts", "{\"limit\":2}"));
    before = proxy_count(&d, "GET", "/v1/teams/default/posts");
    cr_expect_eq(before, 3);
    t0 = gw_now_ms();
    for (int i = 0; i < 10; i++) {
        m = tool(&d, sid, "read_posts", "{\"limit\":2}");
        cr_expect(is_error(m));
        cr_expect_not_null(strstr(text0(m), "circuit breaker open"), "%s", text0(m));
        json_decref(m);
    }
    cr_expect_lt(gw_now_ms() - t0, 1000, "fail fast");
    cr_expect_eq(proxy_count(&d, "GET", "/v1/teams/default/posts"), before, "nothing reached the origin");
    snprintf(url, sizeof url, "%s/readyz", d.gw.srv.base_url);
    cr_assert(bbt_http("GET", url, NULL, NULL, 0, &r));
    cr_expect_eq(r.status, 503, "%s", r.body);
    cr_expect_not_null(strstr(r.body, "breaker open"), "%s", r.body);
    bbt_response_free(&r);
    {
        char mu[256];
        snprintf(mu, sizeof mu, "%s/metrics", d.gw.srv.base_url);
        cr_assert(bbt_http("GET", mu, NULL, NULL, 0, &r));
        cr_expect_not_null(strstr(r.body, "botboard_upstream_breaker_state{upstream="), "no breaker gauge");
        cr_expect_not_null(strstr(r.body, "outcome=\"short_circuit\"} 10"), "short circuits not counted");
        bbt_response_free(&r);
    }
    free(sid);
    duo_stop(&d);
}
