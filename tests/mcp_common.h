/*
 * tests/mcp_common.h — helpers shared by the MCP suites: a real botboard
 * (SQLite storage, memory sessions, local upstream) with a team and a key,
 * and JSON-RPC over raw HTTP.
 */
#ifndef BB_TEST_MCP_COMMON_H
#define BB_TEST_MCP_COMMON_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbtest.h"

#ifndef MCP_UPSTREAM
#define MCP_UPSTREAM "local"
#endif

#define MCP_BASE_CONFIG                                                                         \
    "server:\n  listen: 127.0.0.1:{{PORT}}\n  shutdown_grace_ms: 3000\n"                        \
    "plugins:\n  path: [\"" BB_ABS_BUILDDIR "/tests/plugins/.libs\"]\n"                         \
    "storage:\n  backend: sqlite\n  auto_migrate: true\n  sqlite:\n    path: bb.db\n"          \
    "upstream:\n  backend: " MCP_UPSTREAM "\n"                              \
    "bootstrap:\n  key_file: dev.key\nlogging:\n  format: json\n  level: debug\n"

typedef struct mcp_env {
    bbt_server srv;
    char       key[128];
    char       url[128];   /* .../mcp */
} mcp_env;

#define MCP_MEMORY_SESSIONS "session:\n  backend: memory\n"

/* Start botboard with MCP_BASE_CONFIG + a session section + extra; make
 * sure team "default" exists and create a key for it through the CLI (as
 * an operator would). */
static inline void mcp_env_start_with(mcp_env *e, const char *session_yaml, const char *extra)
{
    char yaml[4096], why[4096];
    const char *team[] = { "team", "create", "default", NULL };
    const char *key[] = { "key", "create", "--team", "default", NULL };
    char *out = NULL, *err = NULL;
    size_t n;
    snprintf(yaml, sizeof yaml, "%s%s%s", MCP_BASE_CONFIG, session_yaml, extra ? extra : "");
    memset(e, 0, sizeof *e);
    if (!bbt_server_start(&e->srv, yaml, why, sizeof why)) cr_assert_fail("botboard did not start: %s", why);
    bbt_botboard_cli(e->srv.config_path, team, NULL, NULL);   /* may exist already (dev bootstrap) */
    cr_assert_eq(bbt_botboard_cli(e->srv.config_path, key, &out, &err), 0, "key create: %s", err);
    n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r')) out[--n] = '\0';
    snprintf(e->key, sizeof e->key, "%s", out);
    free(out);
    free(err);
    snprintf(e->url, sizeof e->url, "%s/mcp", e->srv.base_url);
}

static inline void mcp_env_start(mcp_env *e, const char *extra) { mcp_env_start_with(e, MCP_MEMORY_SESSIONS, extra); }

static inline void mcp_env_stop(mcp_env *e) { bbt_server_destroy(&e->srv); }

/* POST one body with the usual headers; session and version may be NULL;
 * extra: one more "Name: value" header or NULL. */
static inline bbt_response mcp_post_h(mcp_env *e, const char *session, const char *version, const char *body,
                                      const char *extra)
{
    char auth[200], sid[200], pv[80];
    const char *h[8];
    int n = 0;
    bbt_response r;
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", e->key);
    h[n++] = auth;
    h[n++] = "Accept: application/json, text/event-stream";
    h[n++] = "Content-Type: application/json";
    if (session) { snprintf(sid, sizeof sid, "Mcp-Session-Id: %s", session); h[n++] = sid; }
    if (version) { snprintf(pv, sizeof pv, "MCP-Protocol-Version: %s", version); h[n++] = pv; }
    if (extra) h[n++] = extra;
    h[n] = NULL;
    cr_assert(bbt_http("POST", e->url, h, body, strlen(body), &r));
    return r;
}

static inline bbt_response mcp_post(mcp_env *e, const char *session, const char *body)
{
    return mcp_post_h(e, session, NULL, body, NULL);
}

/* initialize at a version + notifications/initialized; returns the
 * malloc'd session id. */
static inline char *mcp_open(mcp_env *e, const char *version)
{
    char body[512];
    bbt_response r;
    char *sid;
    snprintf(body, sizeof body,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"%s\","
             "\"capabilities\":{},\"clientInfo\":{\"name\":\"test\",\"version\":\"1\"}}}", version);
    r = mcp_post(e, NULL, body);
    cr_assert_eq(r.status, 200, "initialize: %ld %s", r.status, r.body);
    sid = bbt_header(&r, "Mcp-Session-Id");
    cr_assert_not_null(sid, "no Mcp-Session-Id: %s", r.headers);
    bbt_response_free(&r);
    r = mcp_post_h(e, sid, version, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", NULL);
    cr_assert_eq(r.status, 202, "initialized: %ld %s", r.status, r.body);
    bbt_response_free(&r);
    return sid;
}

/* Parse a JSON body (asserts it parses). */
static inline json_t *mcp_json(const bbt_response *r)
{
    json_error_t err;
    json_t *j = json_loads(r->body, 0, &err);
    cr_assert_not_null(j, "not JSON (%s): %s", err.text, r->body);
    return j;
}

static inline long long mcp_error_code(const json_t *msg)
{
    return json_integer_value(json_object_get(json_object_get(msg, "error"), "code"));
}

#endif
