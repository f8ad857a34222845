/*
 * core/mcp_stdio.c — `botboard mcp-stdio`: MCP over stdin/stdout
 * (MCP.md 13).  One JSON-RPC message (or, under 2025-03-26, a batch) per
 * line; a trailing \r is stripped; only MCP messages go to stdout (logs go
 * to stderr); EOF ends the process cleanly.  The team is mcp.team and the
 * session lives in this process's memory.  The handlers are the same as
 * over HTTP (mcp_rpc.c and the surface).
 *
 * Subscriptions: an events listener writes notifications/resources/updated
 * for posts published in this process (our own create_post) or by the
 * storage's watch() (other processes on a shared PostgreSQL).  It runs on
 * the publisher's thread, so stdout and the subscription copy are locked.
 */
#include "mcp_internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "host.h"
#include "log.h"
#include "service.h"

typedef struct stdio_state {
    pthread_mutex_t out_lock;    /* one message per line, never interleaved */
    pthread_mutex_t subs_lock;   /* the copy the listener reads */
    char           *subs[BB_SESSION_SUBS_MAX];
    size_t          n_subs;
    char            team[BB_TEAM_MAX];
    bool            out_broken;
    unsigned long long lines;    /* numbers the request ids of the log */
} stdio_state;

/* JSON text escapes control characters, so a message never holds a newline. */
static void write_text_line(stdio_state *st, const char *text)
{
    pthread_mutex_lock(&st->out_lock);
    if (!st->out_broken && (fputs(text, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) == EOF))
        st->out_broken = true;
    pthread_mutex_unlock(&st->out_lock);
}

static void write_line(stdio_state *st, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    if (!text) return;
    write_text_line(st, text);
    free(text);
}

static void stdio_notify(bb_mcp_ctx *ctx, const char *method, json_t *params)
{
    json_t *n = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
    if (n && params) json_object_set(n, "params", params);
    json_decref(params);
    if (!n) return;
    write_line(ctx->transport, n);
    json_decref(n);
}

static void sync_subs(stdio_state *st, const bb_session *s)
{
    pthread_mutex_lock(&st->subs_lock);
    for (size_t i = 0; i < st->n_subs; i++) free(st->subs[i]);
    st->n_subs = 0;
    for (size_t i = 0; i < s->n_subs && i < BB_SESSION_SUBS_MAX; i++)
        if (s->subs[i] && (st->subs[st->n_subs] = strdup(s->subs[i]))) st->n_subs++;
    pthread_mutex_unlock(&st->subs_lock);
}

static void on_post(void *ud, const bb_post_event *ev)
{
    stdio_state *st = ud;
    pthread_mutex_lock(&st->subs_lock);
    for (size_t i = 0; i < st->n_subs; i++) {
        if (!bb_mcp_uri_matches(st->subs[i], st->team, ev)) continue;
        json_t *n = json_pack("{s:s, s:s, s:{s:s}}", "jsonrpc", "2.0", "method", "notifications/resources/updated",
                              "params", "uri", st->subs[i]);
        if (n) write_line(st, n);
        json_decref(n);
    }
    pthread_mutex_unlock(&st->subs_lock);
}

/* Read one line into buf (cap bytes), without its newline.  Returns its
 * length, -1 at EOF; a longer line is consumed and reported as cap. */
static ssize_t read_line(FILE *in, char *buf, size_t cap)
{
    size_t n = 0;
    int ch;
    bool any = false;
    while ((ch = getc_unlocked(in)) != EOF) {
        any = true;
        if (ch == '\n') break;
        if (n < cap) buf[n] = (char)ch;
        n++;
    }
    if (!any) return -1;
    if (n >= cap) return (ssize_t)cap;   /* too long: the caller refuses it */
    buf[n] = '\0';
    return (ssize_t)n;
}

/* One line: parse, initialize or handle, answer. */
static void serve_line(stdio_state *st, bb_mcp_ctx *ctx, bool *initialized_session, char *line, size_t len)
{
    json_error_t jerr;
    json_t *body = bb_json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr), *out = NULL;
    bb_jw handled = { 0 };
    bool reject;
    char rid[32];
    snprintf(rid, sizeof rid, "stdio-%llu", ++st->lines);
    ctx->call.request_id = rid;
    ctx->call.deadline_ms = bb_now_ms() + bb_settings_now(ctx->srv)->request_timeout_ms;
    bb_log_set_request(rid, NULL);
    if (!body) {
        out = bb_mcp_parse_error(jerr.text);
    } else if (bb_mcp_body_shape(body) == BB_MCP_SHAPE_INITIALIZE && !*initialized_session) {
        json_t *id = json_object_get(body, "id");
        bb_mcp_error err;
        json_t *result;
        memset(&err, 0, sizeof err);
        if (!json_is_string(id) && !json_is_integer(id)) {
            out = bb_mcp_error_response(NULL, BB_RPC_INVALID_REQUEST, "the request id must be a string or an integer", NULL);
        } else if ((result = bb_mcp_initialize(ctx, json_object_get(body, "params"), &err))) {
            out = json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result);
            *initialized_session = true;
        } else {
            out = bb_mcp_error_response(id, err.code, err.message[0] ? err.message : "internal error", err.data);
        }
        ctx->session_dirty = false;
    } else if (!*initialized_session && json_is_object(body) && json_object_get(body, "id")) {
        json_t *id = json_object_get(body, "id");
        const char *m = json_string_value(json_object_get(body, "method"));
        if (m && strcmp(m, "ping") == 0) bb_mcp_handle_text(ctx, body, &handled);
        else out = bb_mcp_error_response(json_is_string(id) || json_is_integer(id) ? id : NULL, BB_RPC_INVALID_REQUEST,
                                         "call initialize first", NULL);
    } else {
        bb_mcp_handle_body(ctx, body, &reject, &handled);
        if (ctx->session_dirty) {
            sync_subs(st, ctx->session);
            ctx->session_dirty = false;
        }
    }
    json_decref(body);
    if (out) bb_jw_json(&handled, out);   /* answers built as trees go out the same way */
    json_decref(out);
    if (handled.n || handled.oom) {   /* empty: notifications only, nothing to answer */
        char *text = bb_jw_finish(&handled, NULL);
        if (text) write_text_line(st, text);
        else bb_warn("mcp", "out of memory answering a message");
        free(text);
    }
    bb_jw_free(&handled);   /* a notification's frame was written, then dropped */
    bb_log_clear_request();
}

int bb_cmd_mcp_stdio(bb_cli *cli)
{
    int code = 0, listener = 0;
    bb_server srv;
    bb_session session;
    bb_mcp_ctx ctx;
    stdio_state st;
    char why[512], *line;
    size_t cap;
    ssize_t n;
    bool initialized_session = false;
    const bb_cfg *root;
    int64_t max_line;
    bb_app *app = bb_cli_open(cli, BB_APP_ALL | BB_APP_MIGRATE, &code);
    if (!app) return code;

    signal(SIGPIPE, SIG_IGN);   /* a client that closed stdout gives EPIPE, not death */
    memset(&srv, 0, sizeof srv);
    srv.app = app;
    if (!bb_service_init(&srv, why, sizeof why)) {
        bb_service_fini(&srv);
        bb_app_close(app);
        return bb_cli_fail(cli, BB_EXIT_RUNTIME, "%s", why);
    }
    root = bb_config_root(bb_app_config(app));
    max_line = bb_settings_now(&srv)->max_body;

    memset(&st, 0, sizeof st);
    pthread_mutex_init(&st.out_lock, NULL);
    pthread_mutex_init(&st.subs_lock, NULL);
    snprintf(st.team, sizeof st.team, "%s", bb_cfg_str(root, "mcp.team", "default"));

    memset(&session, 0, sizeof session);
    snprintf(session.team, sizeof session.team, "%s", st.team);
    snprintf(session.id, sizeof session.id, "stdio");
    session.created_ms = session.last_active_ms = bb_wall_ms();

    memset(&ctx, 0, sizeof ctx);
    ctx.srv = &srv;
    ctx.version = BB_MCP_LATEST;
    snprintf(ctx.team, sizeof ctx.team, "%s", st.team);
    snprintf(ctx.rate_identity, sizeof ctx.rate_identity, "team:%.*s", BB_ID_MAX, st.team);
    ctx.session = &session;
    ctx.notify = stdio_notify;
    ctx.transport = &st;
    if (srv.events) listener = bb_events_subscribe(srv.events, on_post, &st);
    bb_info("mcp-stdio", "serving team %s on stdin/stdout", st.team);

    cap = (size_t)max_line + 1;
    if (!(line = malloc(cap))) {
        bb_service_fini(&srv);
        bb_app_close(app);
        return bb_cli_fail(cli, BB_EXIT_RUNTIME, "out of memory");
    }
    while ((n = read_line(stdin, line, cap)) >= 0 && !st.out_broken) {
        size_t len = (size_t)n;
        if (len == cap) {
            json_t *e = bb_mcp_error_response(NULL, BB_RPC_INVALID_REQUEST, "message larger than server.max_body", NULL);
            if (e) write_line(&st, e);
            json_decref(e);
            continue;
        }
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t')) line[--len] = '\0';
        if (len == 0) continue;
        serve_line(&st, &ctx, &initialized_session, line, len);
    }
    free(line);
    if (listener) bb_events_unsubscribe(srv.events, listener);
    bb_info("mcp-stdio", st.out_broken ? "stdout closed: exiting" : "stdin closed: exiting");
    bb_session_clear(&session);
    for (size_t i = 0; i < st.n_subs; i++) free(st.subs[i]);
    pthread_mutex_destroy(&st.out_lock);
    pthread_mutex_destroy(&st.subs_lock);
    bb_service_fini(&srv);
    bb_app_close(app);
    return BB_EXIT_OK;
}
