/*
 * tests/test_session_http.c — MCP sessions on Redis, end to end over HTTP
 * with real botboard processes: a session survives a restart (same
 * Mcp-Session-Id, agent still logged in), two processes on different ports
 * share one session, and an outage of Redis answers 503 then recovers.
 */
#include "mcp_common.h"

#include <signal.h>
#include <time.h>

/* The two processes share the SQLite file (API keys) and Redis (sessions). */
#define SESSION_HTTP_CONFIG                                                                      \
    "server:\n  listen: 127.0.0.1:{{PORT}}\n  shutdown_grace_ms: 3000\n"                         \
    "storage:\n  backend: sqlite\n  auto_migrate: true\n  sqlite:\n    path: %s/shared.db\n"       \
    "session:\n  backend: redis\n  keys: [\"ka:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"]\n"  \
    "  redis:\n    url: \"%s\"\n    connect_timeout_ms: 300\n    reconnect_max_ms: 400\n"         \
    "upstream:\n  backend: local\nbootstrap:\n  key_file: dev.key\nlogging:\n  format: json\n"

static bbt_redis redis;
static char *shared;

static void up(void)
{
    char why[4096];
    shared = bbt_tempdir("sesshttp");
    cr_assert_not_null(shared);
    if (!bbt_redis_start(&redis, why, sizeof why)) cr_skip_test("redis-server would not start: %s", why);
}

static void down(void)
{
    bbt_redis_destroy(&redis);
    bbt_rmtree(shared);
    free(shared);
}

TestSuite(session_http, .init = up, .fini = down, .timeout = 120);

static void start(mcp_env *e, const char *key)
{
    char yaml[4096], why[4096];
    snprintf(yaml, sizeof yaml, SESSION_HTTP_CONFIG, shared, redis.url);
    memset(e, 0, sizeof *e);
    if (!bbt_server_start(&e->srv, yaml, why, sizeof why)) cr_assert_fail("botboard did not start: %s", why);
    snprintf(e->url, sizeof e->url, "%s/mcp", e->srv.base_url);
    if (key) {
        snprintf(e->key, sizeof e->key, "%s", key);
    } else {
        const char *team[] = { "team", "create", "default", NULL };
        const char *mk[] = { "key", "create", "--team", "default", NULL };
        char *out = NULL, *err = NULL;
        size_t n;
        bbt_botboard_cli(e->srv.config_path, team, NULL, NULL);
        cr_assert_eq(bbt_botboard_cli(e->srv.config_path, mk, &out, &err), 0, "key create: %s", err);
        n = strlen(out);
        while (n && (out[n - 1] == '\n' || out[n - 1] == '\r')) out[--n] = '\0';
        snprintf(e->key, sizeof e->key, "%s", out);
        free(out);
        free(err);
    }
}

/* tools/call name with arguments (JSON text); returns the parsed reply. */
static json_t *call_tool(mcp_env *e, const char *sid, const char *name, const char *args)
{
    char body[1024];
    bbt_response r;
    json_t *j;
    snprintf(body, sizeof body,
             "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\",\"arguments\":%s}}",
             name, args);
    r = mcp_post_h(e, sid, "2025-06-18", body, "Accept: application/json");
    cr_assert_eq(r.status, 200, "%s: %ld %s", name, r.status, r.body);
    j = mcp_json(&r);
    bbt_response_free(&r);
    return j;
}

static bool tool_ok(json_t *reply)
{
    json_t *res = json_object_get(reply, "result");
    return res && !json_is_true(json_object_get(res, "isError"));
}

static long ping_status(mcp_env *e, const char *sid)
{
    bbt_response r = mcp_post_h(e, sid, "2025-06-18", "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}", NULL);
    long st = r.status;
    bbt_response_free(&r);
    return st;
}

Test(session_http, session_survives_a_restart_and_stays_logged_in)
{
    mcp_env e;
    char why[4096], *sid;
    json_t *j;
    start(&e, NULL);
    sid = mcp_open(&e, "2025-06-18");
    j = call_tool(&e, sid, "login", "{\"agent_name\":\"restart-agent\"}");
    cr_assert(tool_ok(j), "login failed: %s", json_dumps(j, 0));
    json_decref(j);

    cr_assert_eq(bbt_server_stop(&e.srv), 0);
    cr_assert(bbt_server_restart(&e.srv, why, sizeof why), "%s", why);

    cr_assert_eq(ping_status(&e, sid), 200, "the session did not survive the restart");
    j = call_tool(&e, sid, "create_post", "{\"content\":\"written after a restart\"}");
    cr_assert(tool_ok(j), "not logged in any more after the restart: %s", json_dumps(j, 0));
    {
        char *text = json_dumps(j, 0);
        bool by_agent = text && strstr(text, "restart-agent");
        free(text);
        cr_assert(by_agent, "author is not the logged-in agent");
    }
    json_decref(j);
    free(sid);
    mcp_env_stop(&e);
}

Test(session_http, two_processes_share_one_session)
{
    mcp_env a, b;
    char *sid;
    json_t *j;
    bbt_response r;
    start(&a, NULL);
    start(&b, a.key);   /* same database, so the same key */
    cr_assert_neq(a.srv.port, b.srv.port);
    sid = mcp_open(&a, "2025-06-18");
    j = call_tool(&a, sid, "login", "{\"agent_name\":\"roaming-agent\"}");
    cr_assert(tool_ok(j));
    json_decref(j);
    /* B never saw this session: it reads it from Redis */
    j = call_tool(&b, sid, "create_post", "{\"content\":\"posted through B\"}");
    cr_assert(tool_ok(j), "B does not know A's session or its login: %s", json_dumps(j, 0));
    json_decref(j);
    j = call_tool(&b, sid, "logout", "{}");
    cr_assert(tool_ok(j));
    json_decref(j);
    j = call_tool(&a, sid, "create_post", "{\"content\":\"should need a login\"}");
    cr_assert_not(tool_ok(j), "a logout on B is not seen on A");
    json_decref(j);
    /* DELETE on B ends it for A */
    {
        char auth[200], hs[200];
        const char *h[] = { auth, hs, "MCP-Protocol-Version: 2025-06-18", NULL };
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", b.key);
        snprintf(hs, sizeof hs, "Mcp-Session-Id: %s", sid);
        cr_assert(bbt_http("DELETE", b.url, h, NULL, 0, &r));
        cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
        bbt_response_free(&r);
    }
    cr_assert_eq(ping_status(&a, sid), 404);
    free(sid);
    mcp_env_stop(&a);
    mcp_env_stop(&b);
}

Test(session_http, redis_outage_is_503_and_not_ready_then_recovers)
{
    mcp_env e;
    char why[4096], url[256], *sid;
    bbt_response r;
    struct timespec pause = { 0, 50 * 1000 * 1000 };
    int64_t t0;
    bool back = false;
    start(&e, NULL);
    sid = mcp_open(&e, "2025-06-18");
    snprintf(url, sizeof url, "%s/readyz", e.srv.base_url);
    cr_assert(bbt_redis_stop(&redis));
    cr_assert_eq(ping_status(&e, sid), 503, "a store outage is not 'unknown session'");
    cr_assert(bbt_http("GET", url, NULL, NULL, 0, &r));
    cr_assert_eq(r.status, 503, "%s", r.body);
    cr_assert_not_null(strstr(r.body, "\"session\":{\"plugin\":\"redis\",\"status\":\"down\""), "%s", r.body);
    bbt_response_free(&r);

    cr_assert(bbt_redis_restart(&redis, why, sizeof why), "%s", why);
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t0 = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    for (;;) {
        struct timespec ts;
        int64_t now;
        cr_assert(bbt_http("GET", url, NULL, NULL, 0, &r));
        back = r.status == 200;
        bbt_response_free(&r);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (back || now - t0 > 5000) break;
        nanosleep(&pause, NULL);
    }
    cr_assert(back, "not ready 5 s after Redis returned");
    /* that Redis kept nothing: the old session is unknown, a new one works */
    cr_assert_eq(ping_status(&e, sid), 404);
    free(sid);
    sid = mcp_open(&e, "2025-06-18");
    cr_assert_eq(ping_status(&e, sid), 200);
    free(sid);
    mcp_env_stop(&e);
}

#define KEY_B_TEXT "kb:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
#define KEY_A_TEXT "ka:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

/* Replace the session.keys line of the running server's config and SIGHUP;
 * wait (bounded) for the log line that says which key seals now. */
static void rotate(mcp_env *e, const char *keys, const char *expect_log)
{
    size_t len;
    char *text = bbt_read_file(e->srv.config_path, &len), *line, *end, *fresh;
    bool seen = false;
    cr_assert_not_null(text);
    line = strstr(text, "  keys: [");
    cr_assert_not_null(line);
    end = strchr(line, '\n');
    cr_assert_not_null(end);
    cr_assert(asprintf(&fresh, "%.*s  keys: [%s]%s", (int)(line - text), text, keys, end) > 0);
    {
        FILE *f = fopen(e->srv.config_path, "w");
        cr_assert_not_null(f);
        fputs(fresh, f);
        fclose(f);
    }
    free(text);
    free(fresh);
    bbt_proc_signal(&e->srv.proc, SIGHUP);
    for (int i = 0; i < 250 && !seen; i++) {
        char *log = bbt_read_file(e->srv.proc.log_path, &len);
        seen = log && strstr(log, expect_log);
        free(log);
        if (!seen) nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
    }
    cr_assert(seen, "no '%s' in the log 5 s after SIGHUP", expect_log);
}

/* Every sealed session in Redis names this key id in its clear header. */
static void all_sealed_with(const char *key_id)
{
    static const char *const scan[] = { "--scan", "--pattern", "botboard:s:*", NULL };
    char *keys = bbt_redis_cli(&redis, scan), *k, *save = NULL;
    int n = 0;
    cr_assert_not_null(keys);
    for (k = strtok_r(keys, "\n", &save); k; k = strtok_r(NULL, "\n", &save)) {
        const char *get[] = { "GET", k, NULL };
        char *v = bbt_redis_cli(&redis, get);
        cr_assert(v && (unsigned char)v[0] == 1 && (size_t)v[1] == strlen(key_id) &&
                  strncmp(v + 2, key_id, strlen(key_id)) == 0, "%s is not sealed with '%s'", k, key_id);
        free(v);
        n++;
    }
    free(keys);
    cr_assert_gt(n, 0);
}

Test(session_http, sighup_rotates_keys_without_logging_anyone_out)
{
    mcp_env e;
    char *sid1, *sid2;
    json_t *j;
    start(&e, NULL);
    sid1 = mcp_open(&e, "2025-06-18");
    j = call_tool(&e, sid1, "login", "{\"agent_name\":\"rotating-agent\"}");
    cr_assert(tool_ok(j));
    json_decref(j);
    all_sealed_with("ka");

    rotate(&e, "\"" KEY_B_TEXT "\", \"" KEY_A_TEXT "\"", "2 key(s), 'kb' seals");
    j = call_tool(&e, sid1, "create_post", "{\"content\":\"after adding a key\"}");
    cr_assert(tool_ok(j), "logged out by adding a key: %s", json_dumps(j, 0));
    json_decref(j);
    sid2 = mcp_open(&e, "2025-06-18");
    all_sealed_with("kb");   /* the new session, and the old one moved on use */

    rotate(&e, "\"" KEY_B_TEXT "\"", "1 key(s), 'kb' seals");
    j = call_tool(&e, sid1, "create_post", "{\"content\":\"after dropping the old key\"}");
    cr_assert(tool_ok(j), "logged out by dropping the old key: %s", json_dumps(j, 0));
    json_decref(j);
    cr_assert_eq(ping_status(&e, sid2), 200);
    free(sid1);
    free(sid2);
    mcp_env_stop(&e);
}
