/*
 * tests/test_mcp_http.c — MCP Streamable HTTP over raw HTTP (libcurl)
 * against the real botboard: the transport rules of MCP.md 1-16, each with
 * the status or JSON-RPC error the spec asks for.
 */
#include "mcp_common.h"

#include <pthread.h>
#include <time.h>

static mcp_env env;

static void setup(void) { mcp_env_start(&env, NULL); }
static void teardown(void) { mcp_env_stop(&env); }

TestSuite(mcp_http, .init = setup, .fini = teardown, .timeout = 60);

static const char *PING = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}";

Test(mcp_http, initialize_issues_a_visible_ascii_session_id)
{
    bbt_response r = mcp_post(&env, NULL,
                              "{\"jsonrpc\":\"2.0\",\"id\":\"init-1\",\"method\":\"initialize\",\"params\":"
                              "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}");
    json_t *j, *res;
    char *sid = bbt_header(&r, "Mcp-Session-Id");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_not_null(sid);
    cr_expect_geq(strlen(sid), 32);
    for (const char *p = sid; *p; p++) cr_expect(*p >= 0x21 && *p <= 0x7e, "bad session id char in %s", sid);
    j = mcp_json(&r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "id")), "init-1");
    res = json_object_get(j, "result");
    cr_expect_str_eq(json_string_value(json_object_get(res, "protocolVersion")), "2025-06-18");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(res, "serverInfo"), "name")), "botboard");
    cr_expect(json_is_object(json_object_get(res, "capabilities")));
    cr_expect_null(json_object_get(j, "error"));
    json_decref(j);
    bbt_response_free(&r);
    free(sid);
}

Test(mcp_http, unsupported_requested_version_gets_the_latest)
{
    bbt_response r = mcp_post(&env, NULL,
                              "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2024-11-05\"}}");
    json_t *j = mcp_json(&r);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "result"), "protocolVersion")), "2025-11-25");
    json_decref(j);
    bbt_response_free(&r);
    r = mcp_post(&env, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{}}");
    j = mcp_json(&r);
    cr_expect_eq(mcp_error_code(j), -32602, "%s", r.body);
    cr_expect_not_null(strstr(r.body, "protocolVersion"));
    json_decref(j);
    bbt_response_free(&r);
}

Test(mcp_http, session_id_required_unknown_is_404_delete_ends_it)
{
    char *sid = mcp_open(&env, "2025-11-25");
    bbt_response r = mcp_post(&env, NULL, PING);
    json_t *j;
    char auth[200], hdr[200];
    cr_expect_eq(r.status, 400, "no session id: %ld", r.status);
    j = mcp_json(&r);
    cr_expect_eq(mcp_error_code(j), -32600);
    cr_expect_null(json_object_get(j, "id"), "an error without a usable id omits id: %s", r.body);
    json_decref(j);
    bbt_response_free(&r);

    r = mcp_post(&env, "no-such-session", PING);
    cr_expect_eq(r.status, 404);
    bbt_response_free(&r);

    r = mcp_post(&env, sid, PING);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}");
    bbt_response_free(&r);

    snprintf(auth, sizeof auth, "Authorization: Bearer %s", env.key);
    snprintf(hdr, sizeof hdr, "Mcp-Session-Id: %s", sid);
    {
        const char *h[] = { auth, hdr, NULL };
        cr_assert(bbt_http("DELETE", env.url, h, NULL, 0, &r));
        cr_expect_eq(r.status, 200);
        bbt_response_free(&r);
    }
    r = mcp_post(&env, sid, PING);
    cr_expect_eq(r.status, 404, "a deleted session is unknown: %ld", r.status);
    bbt_response_free(&r);
    free(sid);
}

Test(mcp_http, second_initialize_on_a_live_session_is_invalid)
{
    char *sid = mcp_open(&env, "2025-06-18");
    bbt_response r = mcp_post(&env, sid,
                              "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\"}}");
    json_t *j = mcp_json(&r);
    cr_expect_eq(r.status, 400);
    cr_expect_eq(mcp_error_code(j), -32600);
    cr_expect_eq(json_integer_value(json_object_get(j, "id")), 2);
    json_decref(j);
    bbt_response_free(&r);
    free(sid);
}

Test(mcp_http, requests_before_initialized_are_refused_except_ping)
{
    bbt_response r = mcp_post(&env, NULL,
                              "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\"}}");
    char *sid = bbt_header(&r, "Mcp-Session-Id");
    json_t *j;
    bbt_response_free(&r);
    cr_assert_not_null(sid);
    r = mcp_post(&env, sid, PING);
    cr_expect_eq(r.status, 200);
    cr_expect_not_null(strstr(r.body, "\"result\":{}"), "%s", r.body);
    bbt_response_free(&r);
    r = mcp_post(&env, sid, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/list\"}");
    j = mcp_json(&r);
    cr_expect_eq(mcp_error_code(j), -32600, "%s", r.body);
    json_decref(j);
    bbt_response_free(&r);
    free(sid);
}

Test(mcp_http, protocol_version_header)
{
    char *sid = mcp_open(&env, "2025-11-25");
    bbt_response r = mcp_post_h(&env, sid, "1999-01-01", PING, NULL);
    cr_expect_eq(r.status, 400, "unsupported version header: %ld", r.status);
    cr_expect_not_null(strstr(r.body, "MCP-Protocol-Version"), "%s", r.body);
    bbt_response_free(&r);
    /* any supported version is accepted, not only the negotiated one */
    r = mcp_post_h(&env, sid, "2025-03-26", PING, NULL);
    cr_expect_eq(r.status, 200);
    bbt_response_free(&r);
    r = mcp_post_h(&env, sid, NULL, PING, NULL);
    cr_expect_eq(r.status, 200, "missing header: the negotiated version");
    bbt_response_free(&r);
    free(sid);
}

Test(mcp_http, origin_host_method_accept_content_type)
{
    char *sid = mcp_open(&env, "2025-11-25");
    char auth[200], hdr[200];
    bbt_response r;
    char *allow;

    r = mcp_post_h(&env, sid, NULL, PING, "Origin: http://evil.example");
    cr_expect_eq(r.status, 403, "foreign Origin: %ld", r.status);
    bbt_response_free(&r);
    r = mcp_post_h(&env, sid, NULL, PING, "Host: rebind.example:8080");
    cr_expect_eq(r.status, 403, "bad Host: %ld", r.status);
    bbt_response_free(&r);
    r = mcp_post_h(&env, sid, NULL, PING, "Host: localhost:1");
    cr_expect_eq(r.status, 200, "an allowed host on any port: %ld %s", r.status, r.body);
    bbt_response_free(&r);

    snprintf(auth, sizeof auth, "Authorization: Bearer %s", env.key);
    snprintf(hdr, sizeof hdr, "Mcp-Session-Id: %s", sid);
    {
        const char *h[] = { auth, hdr, "Accept: application/json", "Content-Type: application/json", NULL };
        cr_assert(bbt_http("POST", env.url, h, PING, strlen(PING), &r));
        cr_expect_eq(r.status, 406, "Accept without text/event-stream: %ld", r.status);
        bbt_response_free(&r);
    }
    {
        const char *h[] = { auth, hdr, "Accept: text/event-stream;q=0.9, application/json;q=1", "Content-Type: text/plain", NULL };
        cr_assert(bbt_http("POST", env.url, h, PING, strlen(PING), &r));
        cr_expect_eq(r.status, 415, "Content-Type text/plain: %ld", r.status);
        bbt_response_free(&r);
    }
    {
        const char *h[] = { auth, hdr, "Accept: text/event-stream;q=0.9, application/json;q=1",
                            "Content-Type: application/json; charset=utf-8", NULL };
        cr_assert(bbt_http("POST", env.url, h, PING, strlen(PING), &r));
        cr_expect_eq(r.status, 200, "parameters and any order are fine: %ld %s", r.status, r.body);
        bbt_response_free(&r);
    }
    {
        const char *h[] = { auth, hdr, NULL };
        cr_assert(bbt_http("PUT", env.url, h, PING, strlen(PING), &r));
        cr_expect_eq(r.status, 405);
        allow = bbt_header(&r, "Allow");
        cr_expect_not_null(allow);
        if (allow) cr_expect_not_null(strstr(allow, "POST"), "%s", allow);
        free(allow);
        bbt_response_free(&r);
    }
    free(sid);
}

Test(mcp_http, api_key_is_required)
{
    const char *h[] = { "Accept: application/json, text/event-stream", "Content-Type: application/json", NULL };
    const char *bad[] = { "Authorization: Bearer bbk_not_a_key", "Accept: application/json, text/event-stream",
                          "Content-Type: application/json", NULL };
    bbt_response r;
    char *www;
    cr_assert(bbt_http("POST", env.url, h, PING, strlen(PING), &r));
    cr_expect_eq(r.status, 401);
    www = bbt_header(&r, "WWW-Authenticate");
    cr_expect_not_null(www);
    if (www) cr_expect_eq(strncmp(www, "Bearer", 6), 0, "%s", www);
    free(www);
    bbt_response_free(&r);
    cr_assert(bbt_http("POST", env.url, bad, PING, strlen(PING), &r));
    cr_expect_eq(r.status, 401);
    bbt_response_free(&r);
}

Test(mcp_http, malformed_json_is_a_parse_error_without_id)
{
    char *sid = mcp_open(&env, "2025-11-25");
    bbt_response r = mcp_post(&env, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,");
    json_t *j = mcp_json(&r);
    cr_expect_eq(r.status, 400);
    cr_expect_eq(mcp_error_code(j), -32700);
    cr_expect_null(json_object_get(j, "id"));
    /* The parser's reason, not a generic line: good text is parsed without
     * an error record, so bad text must be parsed again to get one. */
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    cr_expect(msg && strstr(msg, "near end of file"), "message: %s", msg ? msg : "(none)");
    json_decref(j);
    bbt_response_free(&r);
    free(sid);
}

Test(mcp_http, ids_are_echoed_exactly_and_bad_ids_rejected)
{
    char *sid = mcp_open(&env, "2025-11-25");
    bbt_response r = mcp_post(&env, sid, "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"ping\"}");
    json_t *j;
    cr_expect_str_eq(r.body, "{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{}}");
    bbt_response_free(&r);
    r = mcp_post(&env, sid, "{\"jsonrpc\":\"2.0\",\"id\":\"7\",\"method\":\"ping\"}");
    cr_expect_str_eq(r.body, "{\"jsonrpc\":\"2.0\",\"id\":\"7\",\"result\":{}}");
    bbt_response_free(&r);
    r = mcp_post(&env, sid, "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}");
    j = mcp_json(&r);
    cr_expect_eq(mcp_error_code(j), -32600, "%s", r.body);
    cr_expect_null(json_object_get(j, "id"), "%s", r.body);
    json_decref(j);
    bbt_response_free(&r);
    r = mcp_post(&env, sid, "{\"jsonrpc\":\"1.0\",\"id\":5,\"method\":\"ping\"}");
    j = mcp_json(&r);
    cr_expect_eq(mcp_error_code(j), -32600, "%s", r.body);
    cr_expect_eq(json_integer_value(json_object_get(j, "id")), 5);
    json_decref(j);
    bbt_response_free(&r);
    free(sid);
}

Test(mcp_http, unknown_method_is_32601)
{
    char *sid = mcp_open(&env, "2025-11-25");
    bbt_response r = mcp_post(&env, sid, "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"no/such/method\"}");
    json_t *j = mcp_json(&r);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(mcp_error_code(j), -32601);
    cr_expect_str_eq(json_string_value(json_object_get(j, "id")), "x");
    json_decref(j);
    bbt_response_free(&r);
    free(sid);
}

Test(mcp_http, notification_only_post_is_202_with_empty_body)
{
    char *sid = mcp_open(&env, "2025-11-25");
    bbt_response r = mcp_post(&env, sid, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":3}}");
    char *cl = bbt_header(&r, "Content-Length");
    cr_expect_eq(r.status, 202);
    cr_expect_eq(r.body_len, 0);
    cr_expect_not_null(cl);
    if (cl) cr_expect_str_eq(cl, "0");
    free(cl);
    bbt_response_free(&r);
    /* a response from the client (we never asked, but it is not an error) */
    r = mcp_post(&env, sid, "{\"jsonrpc\":\"2.0\",\"id\":99,\"result\":{}}");
    cr_expect_eq(r.status, 202);
    bbt_response_free(&r);
    free(sid);
}

Test(mcp_http, batch_rejected_after_2025_03_26)
{
    char *sid = mcp_open(&env, "2025-06-18");
    bbt_response r = mcp_post_h(&env, sid, "2025-06-18", "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", NULL);
    json_t *j = mcp_json(&r);
    cr_expect_eq(r.status, 400);
    cr_expect_eq(mcp_error_code(j), -32600);
    json_decref(j);
    bbt_response_free(&r);
    free(sid);
}

Test(mcp_http, batch_answered_under_2025_03_26)
{
    char *sid = mcp_open(&env, "2025-03-26");
    bbt_response r = mcp_post_h(&env, sid, "2025-03-26",
                                "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},"
                                "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":1}},"
                                "{\"jsonrpc\":\"2.0\",\"id\":\"b\",\"method\":\"nope\"}]", NULL);
    json_t *j = mcp_json(&r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_assert(json_is_array(j), "%s", r.body);
    cr_expect_eq(json_array_size(j), 2, "two requests, one notification: %s", r.body);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(j, 0), "id")), 1);
    cr_expect_eq(mcp_error_code(json_array_get(j, 1)), -32601);
    json_decref(j);
    bbt_response_free(&r);
    /* initialize is never allowed inside a batch */
    r = mcp_post_h(&env, sid, "2025-03-26",
                   "[{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-03-26\"}}]", NULL);
    j = mcp_json(&r);
    cr_expect_eq(mcp_error_code(json_array_get(j, 0)), -32600, "%s", r.body);
    json_decref(j);
    bbt_response_free(&r);
    free(sid);
}

Test(mcp_http, oversize_body_is_413)
{
    char *sid = mcp_open(&env, "2025-11-25");
    size_t n = 2u << 20;   /* above the 1 MiB default server.max_body */
    char *big = malloc(n + 64);
    bbt_response r;
    cr_assert_not_null(big);
    memset(big, ' ', n + 63);
    memcpy(big, PING, strlen(PING));
    big[n + 63] = '\0';
    r = mcp_post(&env, sid, big);
    cr_expect_eq(r.status, 413, "%ld", r.status);
    bbt_response_free(&r);
    free(big);
    free(sid);
}

/* ---- the GET stream ---- */

static bbt_response mcp_get(mcp_env *e, const char *sid, const char *last_event_id, int timeout_ms)
{
    char auth[200], hdr[200], lei[200];
    const char *h[5] = { auth, hdr, "Accept: text/event-stream", NULL, NULL };
    bbt_response r;
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", e->key);
    snprintf(hdr, sizeof hdr, "Mcp-Session-Id: %s", sid);
    if (last_event_id) {
        snprintf(lei, sizeof lei, "Last-Event-ID: %s", last_event_id);
        h[3] = lei;
    }
    cr_assert(bbt_http_timeout("GET", e->url, h, NULL, 0, timeout_ms, &r));
    return r;
}

Test(mcp_http, get_opens_an_event_stream_with_a_priming_event)
{
    char *sid = mcp_open(&env, "2025-11-25");
    bbt_response r = mcp_get(&env, sid, NULL, 700);
    char *ct = bbt_header(&r, "Content-Type");
    cr_expect_eq(r.status, 200);
    cr_assert_not_null(ct);
    cr_expect_eq(strncmp(ct, "text/event-stream", 17), 0, "%s", ct);
    cr_expect_eq(strncmp(r.body, "id: g-", 6), 0, "priming event first: %s", r.body);
    cr_expect_not_null(strstr(r.body, "\ndata: \n\n"), "%s", r.body);
    free(ct);
    bbt_response_free(&r);
    {
        char auth[200], hdr[200];
        const char *h[4] = { auth, hdr, "Accept: application/json", NULL };
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", env.key);
        snprintf(hdr, sizeof hdr, "Mcp-Session-Id: %s", sid);
        cr_assert(bbt_http("GET", env.url, h, NULL, 0, &r));
        cr_expect_eq(r.status, 406);
        bbt_response_free(&r);
    }
    free(sid);
}

Test(mcp_http, auth_none_serves_mcp_team_without_a_key)
{
    mcp_env other;
    bbt_response r;
    const char *h[] = { "Accept: application/json, text/event-stream", "Content-Type: application/json", NULL };
    const char *init = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-11-25\"}}";
    char url[200];
    mcp_env_start(&other, "mcp:\n  auth: none\n  team: default\n");
    snprintf(url, sizeof url, "%s/mcp", other.srv.base_url);
    cr_assert(bbt_http("POST", url, h, init, strlen(init), &r));
    cr_expect_eq(r.status, 200, "%ld %s", r.status, r.body);
    bbt_response_free(&r);
    mcp_env_stop(&other);
}
