/*
 * tests/test_serve.c — the real botboard binary, end to end, on test-only
 * plugins: health, readiness, metrics, graceful shutdown during a slow
 * request, CLI exit codes.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "bbtest.h"

#define FAKE_CONFIG \
    "server:\n  listen: 127.0.0.1:{{PORT}}\n  shutdown_grace_ms: 5000\n" \
    "plugins:\n  path: [\"" BB_ABS_BUILDDIR "/tests/plugins/.libs\"]\n" \
    "storage:\n  backend: fake\n  fake:\n    health_delay_ms: %d\n    health_fail: %s\n" \
    "session:\n  backend: fake\nupstream:\n  backend: fake\n" \
    "bootstrap:\n  key_file: dev.key\nlogging:\n  format: json\n"

static void start(bbt_server *s, int delay_ms, bool fail)
{
    char yaml[2048], why[4096];
    snprintf(yaml, sizeof yaml, FAKE_CONFIG, delay_ms, fail ? "true" : "false");
    if (!bbt_server_start(s, yaml, why, sizeof why)) cr_assert_fail("botboard did not start: %s", why);
}

static bbt_response get(bbt_server *s, const char *path)
{
    char url[256];
    bbt_response r;
    snprintf(url, sizeof url, "%s%s", s->base_url, path);
    cr_assert(bbt_http("GET", url, NULL, NULL, 0, &r));
    return r;
}

Test(serve, healthz_readyz_metrics)
{
    bbt_server s;
    bbt_response r;
    char *rid;
    start(&s, 0, false);
    r = get(&s, "/healthz");
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "{\"status\":\"ok\"}");
    rid = bbt_header(&r, "X-Request-ID");
    cr_expect_not_null(rid);
    free(rid);
    bbt_response_free(&r);

    r = get(&s, "/readyz");
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_not_null(strstr(r.body, "\"status\":\"ready\""), "%s", r.body);
    cr_expect_not_null(strstr(r.body, "\"storage\":{"), "%s", r.body);
    cr_expect_not_null(strstr(r.body, "\"plugin\":\"fake\""), "%s", r.body);
    bbt_response_free(&r);

    r = get(&s, "/no/such/thing");
    cr_expect_eq(r.status, 404);
    cr_expect_not_null(strstr(r.body, "\"code\":\"NOT_FOUND\""), "%s", r.body);
    bbt_response_free(&r);

    r = get(&s, "/metrics");
    cr_expect_eq(r.status, 200);
    cr_expect_not_null(strstr(r.body, "botboard_build_info{version=\""), "%s", r.body);
    cr_expect_not_null(strstr(r.body, "botboard_uptime_seconds "), "%s", r.body);
    cr_expect_not_null(strstr(r.body, "botboard_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} "), "%s", r.body);
    cr_expect_not_null(strstr(r.body, "botboard_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1"), "%s", r.body);
    cr_expect_not_null(strstr(r.body, "botboard_http_request_duration_seconds_bucket{route=\"/readyz\",method=\"GET\",le=\"+Inf\"} 1"), "%s", r.body);
    cr_expect_null(strstr(r.body, "/no/such/thing"), "raw path used as a label");
    bbt_response_free(&r);
    cr_expect_eq(bbt_server_stop(&s), 0);
    bbt_server_destroy(&s);
}

Test(serve, client_request_id_is_kept_or_replaced)
{
    bbt_server s;
    bbt_response r;
    char url[256], *rid;
    const char *good[] = { "X-Request-ID: my-trace.42", NULL }, *bad[] = { "X-Request-ID: has spaces/slash", NULL };
    start(&s, 0, false);
    snprintf(url, sizeof url, "%s/healthz", s.base_url);
    cr_assert(bbt_http("GET", url, good, NULL, 0, &r));
    rid = bbt_header(&r, "X-Request-ID");
    cr_expect_str_eq(rid, "my-trace.42");
    free(rid);
    bbt_response_free(&r);
    cr_assert(bbt_http("GET", url, bad, NULL, 0, &r));
    rid = bbt_header(&r, "X-Request-ID");
    cr_assert_not_null(rid);
    cr_expect_str_neq(rid, "has spaces/slash");
    cr_expect_eq(strlen(rid), 26);
    free(rid);
    bbt_response_free(&r);
    bbt_server_destroy(&s);
}

Test(serve, readyz_is_503_when_a_plugin_is_down)
{
    bbt_server s;
    bbt_response r;
    start(&s, 0, true);
    r = get(&s, "/readyz");
    cr_expect_eq(r.status, 503, "%s", r.body);
    cr_expect_not_null(strstr(r.body, "fake dependency is down"), "%s", r.body);
    bbt_response_free(&r);
    r = get(&s, "/healthz");   /* liveness does not call dependencies */
    cr_expect_eq(r.status, 200);
    bbt_response_free(&r);
    bbt_server_destroy(&s);
}

typedef struct slow_call { bbt_server *s; bbt_response r; } slow_call;

static void *slow_readyz(void *arg)
{
    slow_call *c = arg;
    char url[256];
    snprintf(url, sizeof url, "%s/readyz", c->s->base_url);
    bbt_http("GET", url, NULL, NULL, 0, &c->r);
    return NULL;
}

Test(serve, sigterm_lets_a_slow_request_finish_then_exits_0, .timeout = 30)
{
    bbt_server s;
    pthread_t t;
    slow_call c = { &s, { 0 } };
    bbt_response m;
    start(&s, 1500, false);
    cr_assert_eq(pthread_create(&t, NULL, slow_readyz, &c), 0);
    /* Wait until the slow request is being served: in_flight counts it. */
    for (int i = 0; i < 500; i++) {
        m = get(&s, "/metrics");
        bool busy = strstr(m.body, "botboard_http_in_flight 2") != NULL;
        bbt_response_free(&m);
        if (busy) break;
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    bbt_proc_signal(&s.proc, SIGTERM);
    pthread_join(t, NULL);
    /* It completes: whole, with the slow plugin's check in it.  200, or 503
     * when the handler already saw the shutdown (readiness goes false then,
     * so a load balancer drains this instance). */
    cr_expect(c.r.status == 200 || c.r.status == 503, "slow request was cut off: %ld %s", c.r.status, c.r.body);
    cr_expect(c.r.body && strstr(c.r.body, "\"storage\":{\"plugin\":\"fake\""), "incomplete answer: %s", c.r.body);
    bbt_response_free(&c.r);
    cr_assert(bbt_proc_wait(&s.proc, 10000), "did not exit after SIGTERM");
    cr_expect_eq(s.proc.exit_status, 0);
    bbt_server_destroy(&s);
}

Test(serve, dev_bootstrap_writes_a_0600_key_file_once)
{
    bbt_server s;
    char path[600];
    struct stat st;
    char *log;
    start(&s, 0, false);
    snprintf(path, sizeof path, "%s/dev.key", s.dir);
    cr_assert_eq(stat(path, &st), 0, "no key file at %s", path);
    cr_expect_eq(st.st_mode & 0777, 0600);
    log = bbt_read_file(s.proc.log_path, NULL);
    cr_assert_not_null(log);
    cr_expect_not_null(strstr(log, path), "key file path not logged");
    cr_expect_null(strstr(log, "bbk_A"), "a key leaked into the log");
    free(log);
    bbt_server_destroy(&s);
}

Test(serve, cli_exit_codes)
{
    char *dir = bbt_tempdir("cli"), *cfg, *out = NULL, *err = NULL;
    const char *check[] = { "check-config", NULL }, *bogus[] = { "frobnicate", NULL }, *ver[] = { "version", NULL };
    cr_assert_not_null(dir);
    cfg = bbt_write_file(dir, "bad.yaml", "server:\n  threads: lots\n");
    cr_expect_eq(bbt_botboard_cli(cfg, check, &out, &err), 2);
    cr_expect_not_null(strstr(err, "bad.yaml:2:3: server.threads must be a whole number, not 'lots'"), "%s", err);
    free(out); free(err);
    cr_expect_eq(bbt_botboard_cli(cfg, bogus, &out, &err), 2);
    cr_expect_not_null(strstr(err, "unknown command 'frobnicate'"), "%s", err);
    free(out); free(err);
    cr_expect_eq(bbt_botboard_cli(NULL, ver, &out, &err), 0);
    cr_expect_not_null(strstr(out, "botboard "), "%s", out);
    free(out); free(err);
    free(cfg);
    bbt_rmtree(dir);
    free(dir);
}

/* POST a body of n bytes to a path that does not exist: 404 while the body
 * fits server.max_body, 413 once it does not (checked before routing). */
static long post_size(bbt_server *s, size_t n)
{
    char url[256], *body = malloc(n);
    bbt_response r;
    long status;
    cr_assert_not_null(body);
    memset(body, 'x', n);
    snprintf(url, sizeof url, "%s/nothing", s->base_url);
    cr_assert(bbt_http("POST", url, NULL, body, n, &r), "POST %zu bytes: %s", n, r.body ? r.body : "");
    status = r.status;
    bbt_response_free(&r);
    free(body);
    return status;
}

/* Poll (bounded) until the server answers `want` for an n-byte body. */
static bool wait_for_status(bbt_server *s, size_t n, long want)
{
    for (int i = 0; i < 500; i++) {
        if (post_size(s, n) == want) return true;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return false;
}

static bool log_has(bbt_server *s, const char *needle)
{
    for (int i = 0; i < 500; i++) {
        char *log = bbt_read_file(s->proc.log_path, NULL);
        bool found = log && strstr(log, needle);
        free(log);
        if (found) return true;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return false;
}

static void drop_in(bbt_server *s, const char *name, const char *yaml)
{
    char dir[600], *path;
    snprintf(dir, sizeof dir, "%s/conf.d", s->dir);
    mkdir(dir, 0700);
    path = bbt_write_file(dir, name, yaml);
    cr_assert_not_null(path);
    free(path);
}

Test(serve, sighup_swaps_reloadable_keys_and_keeps_the_old_config_on_errors, .timeout = 60)
{
    bbt_server s;
    start(&s, 0, false);
    cr_expect_eq(post_size(&s, 8192), 404);

    /* A reloadable key (server.max_body) changes under a running server. */
    drop_in(&s, "50-limits.yaml", "server:\n  max_body: 4KiB\n");
    bbt_proc_signal(&s.proc, SIGHUP);
    cr_expect(wait_for_status(&s, 8192, 413), "server.max_body was not reloaded");
    cr_expect(log_has(&s, "configuration reloaded"));

    /* A broken file is refused with its position; the running config stays. */
    drop_in(&s, "60-broken.yaml", "server:\n  max_body: lots\n");
    bbt_proc_signal(&s.proc, SIGHUP);
    cr_expect(log_has(&s, "60-broken.yaml:2:"), "rejection does not name the file and line");
    cr_expect(log_has(&s, "still running the old one"));
    cr_expect_eq(post_size(&s, 8192), 413);
    cr_expect_eq(post_size(&s, 2048), 404);
    cr_expect_eq(bbt_server_stop(&s), 0);
    bbt_server_destroy(&s);
}

/* The embedded defaults end to end: a fresh SQLite file is migrated at
 * start (storage.auto_migrate), dev bootstrap writes a key, the key works. */
#define SQLITE_CONFIG \
    "server:\n  listen: 127.0.0.1:{{PORT}}\n" \
    "storage:\n  backend: sqlite\n  auto_migrate: %s\n  sqlite:\n    path: board.db\n" \
    "bootstrap:\n  key_file: dev.key\nlogging:\n  format: json\n"

Test(serve, embedded_defaults_migrate_bootstrap_and_serve, .timeout = 60)
{
    bbt_server s;
    char yaml[1024], why[4096], path[600], url[256], auth[160], *key;
    bbt_response r;
    snprintf(yaml, sizeof yaml, SQLITE_CONFIG, "true");
    if (!bbt_server_start(&s, yaml, why, sizeof why)) cr_assert_fail("botboard did not start: %s", why);
    snprintf(path, sizeof path, "%s/dev.key", s.dir);
    key = bbt_read_file(path, NULL);
    cr_assert_not_null(key, "no dev key at %s", path);
    key[strcspn(key, "\n")] = '\0';
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    snprintf(url, sizeof url, "%s/v1/teams/default/posts", s.base_url);
    cr_assert(bbt_http("GET", url, (const char *const[]){ auth, NULL }, NULL, 0, &r));
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_not_null(strstr(r.body, "\"totalCount\":0"), "%s", r.body);
    bbt_response_free(&r);
    free(key);
    cr_expect_eq(bbt_server_stop(&s), 0);
    bbt_server_destroy(&s);
}

Test(serve, schema_behind_without_auto_migrate_is_refused, .timeout = 60)
{
    char *dir = bbt_tempdir("nomigrate"), *cfg, yaml[1024], *out = NULL, *err = NULL;
    const char *serve[] = { "serve", NULL }, *status[] = { "migrate", "--status", NULL }, *apply[] = { "migrate", NULL };
    cr_assert_not_null(dir);
    snprintf(yaml, sizeof yaml, SQLITE_CONFIG, "false");
    {   /* no server is started: any port will do */
        char *at = strstr(yaml, "{{PORT}}");
        cr_assert_not_null(at);
        memcpy(at, "18099", 5);
        memmove(at + 5, at + 8, strlen(at + 8) + 1);
    }
    cfg = bbt_write_file(dir, "botboard.yaml", yaml);
    cr_assert_not_null(cfg);
    cr_expect_eq(bbt_botboard_cli(cfg, serve, &out, &err), 1);
    cr_expect_not_null(strstr(err, "storage.auto_migrate is false: run 'botboard migrate'"), "%s", err);
    free(out); free(err);
    cr_expect_eq(bbt_botboard_cli(cfg, status, &out, &err), 0, "%s", err);
    cr_expect_not_null(strstr(out, "pending"), "%s", out);
    free(out); free(err);
    cr_expect_eq(bbt_botboard_cli(cfg, apply, &out, &err), 0, "%s", err);
    free(out); free(err);
    cr_expect_eq(bbt_botboard_cli(cfg, status, &out, &err), 0, "%s", err);
    cr_expect_null(strstr(out, "pending"), "%s", out);
    cr_expect_not_null(strstr(out, "applied"), "%s", out);
    free(out); free(err);
    free(cfg);
    bbt_rmtree(dir);
    free(dir);
}

/* logging.access: off by default; on after a reload, one line per finished
 * request with its request id, even when logging.level would drop info. */
Test(serve, access_lines_follow_logging_access_whatever_the_level, .timeout = 60)
{
    bbt_server s;
    char yaml[2048], why[4096], url[256], *log;
    bbt_response r;
    const char *before[] = { "X-Request-ID: probe-before", NULL }, *after[] = { "X-Request-ID: probe-after", NULL };
    bool seen = false;
    snprintf(yaml, sizeof yaml, FAKE_CONFIG "  level: error\n", 0, "false");
    if (!bbt_server_start(&s, yaml, why, sizeof why)) cr_assert_fail("botboard did not start: %s", why);
    snprintf(url, sizeof url, "%s/healthz", s.base_url);
    cr_assert(bbt_http("GET", url, before, NULL, 0, &r));
    cr_expect_eq(r.status, 200);
    bbt_response_free(&r);

    drop_in(&s, "50-access.yaml", "logging:\n  access: true\n");
    bbt_proc_signal(&s.proc, SIGHUP);
    /* The reload is silent at level error: ask until the line shows (bounded). */
    for (int i = 0; i < 500 && !seen; i++) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        cr_assert(bbt_http("GET", url, after, NULL, 0, &r));
        bbt_response_free(&r);
        log = bbt_read_file(s.proc.log_path, NULL);
        seen = log && strstr(log, "\"request_id\":\"probe-after\"");
        free(log);
        if (!seen) nanosleep(&ts, NULL);
    }
    cr_assert(seen, "no access line after logging.access was turned on");
    log = bbt_read_file(s.proc.log_path, NULL);
    cr_assert_not_null(log);
    cr_expect_not_null(strstr(log, "\"level\":\"info\",\"src\":\"access\",\"msg\":\"GET /healthz 200 "), "%s", log);
    cr_expect_not_null(strstr(log, " ms 127.0.0.1\""), "%s", log);
    cr_expect_null(strstr(log, "probe-before"), "an access line was written while logging.access was off: %s", log);
    free(log);
    cr_expect_eq(bbt_server_stop(&s), 0);
    bbt_server_destroy(&s);
}
