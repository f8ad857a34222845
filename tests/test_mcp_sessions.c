/*
 * tests/test_mcp_sessions.c — MCP sessions as the transport sees them:
 * through Redis they survive a restart of botboard (the agent stays logged
 * in), and a session answers only to keys of its own team.
 */
#include "mcp_common.h"

#define SESSION_KEY "ka:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static json_t *call_tool(mcp_env *e, const char *sid, const char *name, const char *args)
{
    char body[1024];
    bbt_response r;
    json_t *j, *res;
    snprintf(body, sizeof body,
             "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\",\"arguments\":%s}}", name, args);
    r = mcp_post(e, sid, body);
    cr_assert_eq(r.status, 200, "%s: %ld %s", name, r.status, r.body);
    j = mcp_json(&r);
    bbt_response_free(&r);
    res = json_incref(json_object_get(j, "result"));
    json_decref(j);
    cr_assert_not_null(res, "%s gave no result", name);
    return res;
}

Test(mcp_sessions, redis_session_survives_a_restart_logged_in, .timeout = 90)
{
    bbt_redis redis;
    mcp_env e;
    char why[4096], session_yaml[1024];
    char *sid, *text;
    json_t *res;
    if (!bbt_redis_start(&redis, why, sizeof why)) cr_skip_test("redis-server would not start: %s", why);
    snprintf(session_yaml, sizeof session_yaml,
             "session:\n  backend: redis\n  keys: [\"" SESSION_KEY "\"]\n  redis:\n    url: \"%s\"\n", redis.url);
    mcp_env_start_with(&e, session_yaml, NULL);
    sid = mcp_open(&e, "2025-11-25");
    res = call_tool(&e, sid, "login", "{\"agent_name\":\"redis-agent\"}");
    cr_expect(!json_is_true(json_object_get(res, "isError")), "login failed");
    json_decref(res);

    cr_assert_eq(bbt_server_stop(&e.srv), 0);
    cr_assert(bbt_server_restart(&e.srv, why, sizeof why), "restart: %s", why);

    res = call_tool(&e, sid, "create_post", "{\"content\":\"written after a restart\"}");
    text = json_dumps(res, JSON_COMPACT);
    cr_expect(!json_is_true(json_object_get(res, "isError")), "still logged in after the restart: %s", text);
    cr_expect_not_null(strstr(text, "redis-agent"), "the post is by the session's handle: %s", text);
    free(text);
    json_decref(res);
    free(sid);
    mcp_env_stop(&e);
    bbt_redis_destroy(&redis);
}

Test(mcp_sessions, a_session_answers_only_to_its_own_team, .timeout = 60)
{
    mcp_env e;
    const char *team[] = { "team", "create", "other", NULL };
    const char *key[] = { "key", "create", "--team", "other", NULL };
    char *out = NULL, *err = NULL, own[128];
    char *sid;
    bbt_response r;
    mcp_env_start(&e, NULL);
    sid = mcp_open(&e, "2025-06-18");
    cr_assert_eq(bbt_botboard_cli(e.srv.config_path, team, NULL, NULL), 0);
    cr_assert_eq(bbt_botboard_cli(e.srv.config_path, key, &out, &err), 0, "%s", err);
    out[strcspn(out, "\r\n")] = '\0';
    snprintf(own, sizeof own, "%s", e.key);
    snprintf(e.key, sizeof e.key, "%s", out);   /* present the other team's key */
    r = mcp_post(&e, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}");
    cr_expect_eq(r.status, 403, "another team's key on this session: %ld %s", r.status, r.body);
    bbt_response_free(&r);
    snprintf(e.key, sizeof e.key, "%s", own);
    r = mcp_post(&e, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}");
    cr_expect_eq(r.status, 200);
    bbt_response_free(&r);
    free(out);
    free(err);
    free(sid);
    mcp_env_stop(&e);
}
