/*
 * core/mcp_surface.c — the surface's method table, capabilities,
 * instructions, logging (setLevel + notifications/message) and the helpers
 * every surface file shares: upstream access, rate limits, error texts,
 * list cursors, small string building.
 */
#include "mcp_surface.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "app.h"
#include "ratelimit.h"

const bb_mcp_method bb_mcp_surface_methods[] = {
    { "tools/list",               NULL,                           0, bb_mcp_tools_list },
    { "tools/call",               NULL,                           0, bb_mcp_tools_call },
    { "resources/list",           bb_mcp_resources_list,          0, NULL },
    { "resources/templates/list", bb_mcp_resource_templates_list, 0, NULL },
    { "resources/read",           bb_mcp_resources_read,          0, NULL },
    { "resources/subscribe",      bb_mcp_resources_subscribe,     0, NULL },
    { "resources/unsubscribe",    bb_mcp_resources_unsubscribe,   0, NULL },
    { "prompts/list",             bb_mcp_prompts_list,            0, NULL },
    { "prompts/get",              bb_mcp_prompts_get,             0, NULL },
    { "completion/complete",      bb_mcp_complete,                0, NULL },
    { "logging/setLevel",         bb_mcp_set_level,               BB_MCP_BEFORE_INIT, NULL },
    { NULL, NULL, 0, NULL }
};

/* MCP.md 21: exactly what is implemented.  The three supported versions
 * all know these five capabilities (completions arrived in 2025-03-26);
 * no list-changed notifications: the tables are fixed. */
json_t *bb_mcp_capabilities(bb_mcp_version v)
{
    (void)v;
    return json_pack("{s:{}, s:{s:b}, s:{}, s:{}, s:{}}",
                     "tools", "resources", "subscribe", 1, "prompts", "logging", "completions");
}

const char *bb_mcp_instructions(void)
{
    return "BotBoard is a social network for AI agents on your team. "
           "Call login with your agent_name first; create_post and delete_post need it. "
           "read_posts reads the team feed (filter with agent_filter, tag_filter or thread_id; "
           "page with limit and offset); get_post shows one post; create_post posts (reply with "
           "parent_post_id, tag with tags). Resources: social://feed, social://notifications "
           "(replies to you and @mentions), social://posts/{postId}, social://threads/{threadId}, "
           "social://agents/{agentName}/profile and /posts; subscribe to the feed or a thread to hear "
           "about new posts. Failed tool calls say what to do next (log in, fix a field, retry later).";
}

json_t *bb_mcp_fail(bb_mcp_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return NULL;
}

/* ---- logging ---------------------------------------------------------- */

/* RFC 5424 severities in MCP's order (MCP.md 31). */
static const char *const log_levels[] = {
    "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"
};
#define N_LOG_LEVELS (sizeof log_levels / sizeof log_levels[0])

static int log_rank(const char *level)
{
    for (size_t i = 0; level && i < N_LOG_LEVELS; i++)
        if (strcmp(level, log_levels[i]) == 0) return (int)i;
    return -1;
}

json_t *bb_mcp_set_level(bb_mcp_ctx *ctx, json_t *params, bb_mcp_error *err)
{
    const char *level = json_string_value(json_object_get(params, "level"));
    if (!level) return bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "level: required, one of debug, info, notice, "
                                   "warning, error, critical, alert, emergency");
    if (log_rank(level) < 0)
        return bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "level: unknown level '%.40s' (use debug, info, notice, "
                           "warning, error, critical, alert or emergency)", level);
    if (!ctx->session) return bb_mcp_fail(err, BB_RPC_INTERNAL, "no session to store the log level in");
    snprintf(ctx->session->log_level, sizeof ctx->session->log_level, "%s", level);
    ctx->session_dirty = true;
    return json_object();
}

bool bb_mcp_log_wanted(const bb_mcp_ctx *ctx, const char *level)
{
    int want = ctx && ctx->session ? log_rank(ctx->session->log_level) : -1;
    /* No setLevel yet: the client asked for nothing, so nothing is sent. */
    return want >= 0 && log_rank(level) >= want && ctx->notify;
}

void bb_mcp_log(bb_mcp_ctx *ctx, const char *level, const char *logger, json_t *data)
{
    json_t *params;
    if (!bb_mcp_log_wanted(ctx, level)) { json_decref(data); return; }
    params = json_pack("{s:s, s:o}", "level", level, "data", data ? data : json_null());
    if (!params) return;
    if (logger) json_object_set_new(params, "logger", json_string(logger));
    ctx->notify(ctx, "notifications/message", params);
}

/* ---- upstream, limits, settings ----------------------------------------- */

const bb_upstream_ops *bb_mcp_upstream(bb_mcp_ctx *ctx, bb_upstream **inst)
{
    *inst = NULL;
    if (!ctx->srv || !ctx->srv->app) return NULL;
    return bb_app_upstream(ctx->srv->app, inst);
}

bool bb_mcp_rate_take(bb_mcp_ctx *ctx, bb_rate_class cls, long long *retry_s)
{
    bb_rate_result r;
    *retry_s = 0;
    if (!ctx->srv || !ctx->srv->limiter) return true;
    memset(&r, 0, sizeof r);
    bb_ratelimit_take(ctx->srv->limiter, &ctx->call, ctx->rate_identity, cls, &r);
    if (r.allowed) return true;
    *retry_s = r.retry_after_s > 0 ? (long long)r.retry_after_s : 1;
    return false;
}

int64_t bb_mcp_setting(bb_mcp_ctx *ctx, const char *key, int64_t def)
{
    const bb_settings *s = ctx->srv ? bb_settings_now(ctx->srv) : NULL;
    return s && s->root ? bb_cfg_i64(s->root, key, def) : def;
}

void bb_mcp_explain(const bb_error *e, const char *what, char *out, size_t len)
{
    switch (e->code) {
    case BB_NOT_FOUND:
        if (strcmp(e->field, "parentPostId") == 0)
            snprintf(out, len, "parent_post_id: the post you reply to does not exist (or was deleted); "
                     "check the id with read_posts or get_post.");
        else
            snprintf(out, len, "%s not found (it may have been deleted); use read_posts to find valid ids.", what);
        break;
    case BB_UNAVAILABLE:
        snprintf(out, len, "The posts service is unavailable right now (%s); retry in %d seconds.",
                 e->msg[0] ? e->msg : "backend down", e->retry_after_s > 0 ? e->retry_after_s : 5);
        break;
    case BB_TIMEOUT:
        snprintf(out, len, "The posts service did not answer in time; retry in a few seconds.");
        break;
    case BB_INVALID:
    case BB_CONFLICT:
        if (e->field[0]) snprintf(out, len, "%s: %s", e->field, e->msg);
        else snprintf(out, len, "%s", e->msg[0] ? e->msg : "invalid request");
        break;
    default:
        snprintf(out, len, "Internal error while reaching %s; retry later or report it.", what);
        break;
    }
}

/* ---- cursors ------------------------------------------------------------
 * Opaque to clients: base64url("bb1:<index>").  Anything else is refused,
 * as is an index past the table.
 */

size_t bb_mcp_page_size(bb_mcp_ctx *ctx)
{
    int64_t n = bb_mcp_setting(ctx, "mcp.list_page_size", 50);
    return n > 0 ? (size_t)n : 50;
}

bool bb_mcp_cursor_start(json_t *params, size_t n_items, size_t *start, bb_mcp_error *err)
{
    json_t *c = json_object_get(params, "cursor");
    unsigned char raw[32];
    size_t raw_len = 0;
    char text[33], *end;
    unsigned long long idx;
    *start = 0;
    if (!c || json_is_null(c)) return true;
    if (!json_is_string(c) || json_string_length(c) == 0 || json_string_length(c) > 40 ||
        sodium_base642bin(raw, sizeof raw - 1, json_string_value(c), json_string_length(c), NULL, &raw_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        goto bad;
    memcpy(text, raw, raw_len);
    text[raw_len] = '\0';
    if (strncmp(text, "bb1:", 4) != 0 || text[4] < '0' || text[4] > '9') goto bad;
    idx = strtoull(text + 4, &end, 10);
    if (*end != '\0' || idx == 0 || idx >= n_items) goto bad;
    *start = (size_t)idx;
    return true;
bad:
    bb_mcp_fail(err, BB_RPC_INVALID_PARAMS, "cursor: not a cursor this server issued (start again without one)");
    return false;
}

void bb_mcp_cursor_next(json_t *result, size_t end, size_t n_items)
{
    char text[32], b64[64];
    int n;
    if (end >= n_items) return;   /* last page: nextCursor omitted (MCP.md 12) */
    n = snprintf(text, sizeof text, "bb1:%zu", end);
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)text, (size_t)n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    json_object_set_new(result, "nextCursor", json_string(b64));
}

/* ---- text helpers ----------------------------------------------------- */

bool bb_mcp_append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (!*buf) {
        *cap = 1024;
        *len = 0;
        if (!(*buf = malloc(*cap))) return false;
        (*buf)[0] = '\0';
    }
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n < 0) goto fail;
        if ((size_t)n < *cap - *len) { *len += (size_t)n; return true; }
        {
            size_t ncap = (*cap) * 2 + (size_t)n;
            char *nb = realloc(*buf, ncap);
            if (!nb) goto fail;
            *buf = nb;
            *cap = ncap;
        }
    }
fail:
    free(*buf);
    *buf = NULL;
    *len = *cap = 0;
    return false;
}

/* Days since 1970-01-01 -> proleptic Gregorian date (H. Hinnant's
 * civil_from_days): the feed renders a time per post, and strftime's
 * locale machinery cost more than the rest of the line. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era, doe, yoe, doy, mp;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;                                        /* [0, 146096] */
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;   /* [0, 399] */
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                 /* [0, 365], from March 1 */
    mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

void bb_mcp_time_text(int64_t ms, char *out, size_t len)
{
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000), days, y;
    int64_t rem;
    unsigned mo, d, h, mi;
    days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    rem = secs - days * 86400;
    h = (unsigned)(rem / 3600);
    mi = (unsigned)(rem % 3600 / 60);
    civil_from_days(days, &y, &mo, &d);
    if (y < 0 || y > 9999 || len < 21) {
        snprintf(out, len, "%" PRId64 " ms", ms);
        return;
    }
    /* "YYYY-MM-DD HH:MM UTC" */
    out[0] = (char)('0' + y / 1000); out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10); out[3] = (char)('0' + y % 10);
    out[4] = '-'; out[5] = (char)('0' + mo / 10); out[6] = (char)('0' + mo % 10);
    out[7] = '-'; out[8] = (char)('0' + d / 10); out[9] = (char)('0' + d % 10);
    out[10] = ' '; out[11] = (char)('0' + h / 10); out[12] = (char)('0' + h % 10);
    out[13] = ':'; out[14] = (char)('0' + mi / 10); out[15] = (char)('0' + mi % 10);
    memcpy(out + 16, " UTC", 5);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool bb_mcp_uri_decode(const char *in, size_t in_len, char *out, size_t out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < in_len; i++) {
        char c = in[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= in_len) return false;
            hi = hexval(in[i + 1]);
            lo = hexval(in[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return false;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= out_len) return false;
        out[o++] = c;
    }
    if (o == 0) return false;
    out[o] = '\0';
    return true;
}
