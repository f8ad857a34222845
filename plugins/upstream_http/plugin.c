/*
 * plugins/upstream_http/plugin.c — upstream_http: the posts service on a
 * remote BotBoard-compatible REST API (DESIGN §5), for gateway mode.
 *
 * This file holds the descriptor, the config keys, the instance lifecycle
 * and the five operations; the resilience machinery is in the files named
 * in uh.h.  Reads go: fresh cache (if enabled) -> single flight -> logical
 * call (breaker, retries, deadline) -> on an outage, the stale cache.
 * Writes go straight to a logical call and never fall back.
 */
#include "uh.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

/* ---- configuration ------------------------------------------------------ */

static const bb_config_key keys[] = {
    { "base_url", BB_CFG_STRING, NULL, 1, 0, NULL, BB_CFG_REQUIRED,
      "Base URL of the upstream REST API including /v1 (http:// or https://)" },
    { "api_key", BB_CFG_STRING, "", 1, 0, NULL, BB_CFG_SECRET,
      "Team API key for the upstream; use ${env:NAME} or ${file:/path}" },
    { "api_key_header", BB_CFG_ENUM, "authorization", 1, 0, "authorization|x-api-key", 0,
      "How the key is sent: Authorization: Bearer <key>, or x-api-key: <key>" },
    { "tls.verify", BB_CFG_BOOL, "true", 1, 0, NULL, 0,
      "Verify the upstream's TLS certificate and host name" },
    { "tls.ca_file", BB_CFG_STRING, "", 1, 0, NULL, BB_CFG_PATH,
      "CA bundle for the upstream certificate (empty: the system store)" },
    { "connect_timeout_ms", BB_CFG_INT, "2000", 1, 600000, NULL, 0,
      "Limit for opening a connection to the upstream" },
    { "read_timeout_ms", BB_CFG_INT, "5000", 1, 600000, NULL, 0,
      "Limit for one read attempt (list, get, health)" },
    { "write_timeout_ms", BB_CFG_INT, "10000", 1, 600000, NULL, 0,
      "Limit for one write attempt (create, delete)" },
    { "call_deadline_ms", BB_CFG_INT, "15000", 1, 600000, NULL, 0,
      "Overall limit of one call including every retry and backoff (never past the request's own deadline)" },
    { "retry.max_attempts", BB_CFG_INT, "3", 1, 20, NULL, 0,
      "Attempts per call, the first included (1 = no retries)" },
    { "retry.base_ms", BB_CFG_INT, "50", 1, 60000, NULL, 0,
      "Backoff before retry n is uniform in [0, min(max_ms, base_ms * 2^(n-1)))" },
    { "retry.max_ms", BB_CFG_INT, "2000", 1, 600000, NULL, 0,
      "Ceiling of one backoff" },
    { "retry.max_retry_after_ms", BB_CFG_INT, "30000", 0, 3600000, NULL, 0,
      "Longest Retry-After (429) the gateway waits for; longer answers fail the call at once" },
    { "breaker.failure_threshold", BB_CFG_INT, "5", 1, 100000, NULL, 0,
      "Consecutive failed attempts that open the circuit breaker" },
    { "breaker.failure_rate", BB_CFG_DOUBLE, "0.5", 0, 1, NULL, 0,
      "Share of failed attempts over breaker.window_ms that opens the breaker (0 < rate <= 1)" },
    { "breaker.window_ms", BB_CFG_INT, "10000", 100, 3600000, NULL, 0,
      "Window over which the failure rate is measured" },
    { "breaker.min_calls", BB_CFG_INT, "20", 1, 1000000, NULL, 0,
      "Attempts in the window before the failure rate is judged" },
    { "breaker.open_ms", BB_CFG_INT, "5000", 10, 3600000, NULL, 0,
      "How long the breaker stays open (failing fast) before letting probes through" },
    { "breaker.half_open_max_calls", BB_CFG_INT, "1", 1, 1000, NULL, 0,
      "Probe attempts allowed at once while half open" },
    { "fallback_cache.max_entries", BB_CFG_INT, "1000", 0, 1000000, NULL, 0,
      "Recent successful reads kept to answer (stale-marked) while the upstream is down; 0 disables" },
    { "fallback_cache.max_bytes", BB_CFG_SIZE, "64MiB", 0, 17179869184LL, NULL, 0,
      "Total size of the cached answers; the least recently stored go first" },
    { "fallback_cache.ttl_s", BB_CFG_INT, "300", 1, 604800, NULL, 0,
      "Oldest cached read that may still be served stale" },
    { "fallback_cache.fresh_ms", BB_CFG_INT, "0", 0, 600000, NULL, 0,
      "Serve cached reads younger than this without asking the upstream (0: always ask)" },
    { "single_flight", BB_CFG_BOOL, "true", 1, 0, NULL, 0,
      "Identical concurrent reads share one upstream request" },
    { "max_idle_handles", BB_CFG_INT, "32", 0, 10000, NULL, 0,
      "Idle libcurl handles kept for reuse (connections are shared by all of them)" },
    { "scan_limit", BB_CFG_INT, "200", 1, 1000, NULL, 0,
      "Recent posts scanned for completions and mentions (no REST filter exists for them)" },
    { "max_response_bytes", BB_CFG_SIZE, "8MiB", 1024, 1073741824, NULL, 0,
      "Largest upstream answer accepted" },
};

/* The config getters run relative to the `upstream:` node. */
#define K(path) "http." path

static bb_status read_config(uh_inst *u, const bb_cfg *node, bb_error *err)
{
    const bb_host_api *a = u->api;
    uh_config *c = &u->cfg;
    const char *key = NULL, *header = NULL;
    size_t n;
    bool ok =
        a->cfg_string(node, K("base_url"), &c->base_url, err) == BB_OK &&
        a->cfg_string(node, K("api_key"), &key, err) == BB_OK &&
        a->cfg_string(node, K("api_key_header"), &header, err) == BB_OK &&
        a->cfg_bool(node, K("tls.verify"), &c->verify_tls, err) == BB_OK &&
        a->cfg_string(node, K("tls.ca_file"), &c->ca_file, err) == BB_OK &&
        a->cfg_int(node, K("connect_timeout_ms"), &c->connect_timeout_ms, err) == BB_OK &&
        a->cfg_int(node, K("read_timeout_ms"), &c->read_timeout_ms, err) == BB_OK &&
        a->cfg_int(node, K("write_timeout_ms"), &c->write_timeout_ms, err) == BB_OK &&
        a->cfg_int(node, K("call_deadline_ms"), &c->call_deadline_ms, err) == BB_OK &&
        a->cfg_int(node, K("retry.max_attempts"), &c->max_attempts, err) == BB_OK &&
        a->cfg_int(node, K("retry.base_ms"), &c->base_ms, err) == BB_OK &&
        a->cfg_int(node, K("retry.max_ms"), &c->max_ms, err) == BB_OK &&
        a->cfg_int(node, K("retry.max_retry_after_ms"), &c->max_retry_after_ms, err) == BB_OK &&
        a->cfg_int(node, K("breaker.failure_threshold"), &c->failure_threshold, err) == BB_OK &&
        a->cfg_double(node, K("breaker.failure_rate"), &c->failure_rate, err) == BB_OK &&
        a->cfg_int(node, K("breaker.window_ms"), &c->window_ms, err) == BB_OK &&
        a->cfg_int(node, K("breaker.min_calls"), &c->min_calls, err) == BB_OK &&
        a->cfg_int(node, K("breaker.open_ms"), &c->open_ms, err) == BB_OK &&
        a->cfg_int(node, K("breaker.half_open_max_calls"), &c->half_open_max_calls, err) == BB_OK &&
        a->cfg_int(node, K("fallback_cache.max_entries"), &c->cache_max_entries, err) == BB_OK &&
        a->cfg_int(node, K("fallback_cache.max_bytes"), &c->cache_max_bytes, err) == BB_OK &&
        a->cfg_int(node, K("fallback_cache.ttl_s"), &c->cache_ttl_s, err) == BB_OK &&
        a->cfg_int(node, K("fallback_cache.fresh_ms"), &c->cache_fresh_ms, err) == BB_OK &&
        a->cfg_bool(node, K("single_flight"), &c->single_flight, err) == BB_OK &&
        a->cfg_int(node, K("max_idle_handles"), &c->pool_size, err) == BB_OK &&
        a->cfg_int(node, K("scan_limit"), &c->scan_limit, err) == BB_OK &&
        a->cfg_int(node, K("max_response_bytes"), &c->max_response_bytes, err) == BB_OK;
    if (!ok) return err->code;

    if (strncmp(c->base_url, "http://", 7) != 0 && strncmp(c->base_url, "https://", 8) != 0)
        return a->cfg_fail(node, K("base_url"), err, "upstream.http.base_url must start with http:// or https://");
    if (strlen(c->base_url) > 1024)
        return a->cfg_fail(node, K("base_url"), err, "upstream.http.base_url is longer than 1024 characters");
    if (c->failure_rate <= 0.0)
        return a->cfg_fail(node, K("breaker.failure_rate"), err, "upstream.http.breaker.failure_rate must be above 0");
    if (c->base_ms > c->max_ms)
        return a->cfg_fail(node, K("retry.base_ms"), err, "upstream.http.retry.base_ms (%lld) is above retry.max_ms (%lld)",
                           (long long)c->base_ms, (long long)c->max_ms);
    if (c->read_timeout_ms > c->call_deadline_ms || c->write_timeout_ms > c->call_deadline_ms)
        return a->cfg_fail(node, K("call_deadline_ms"), err,
                           "upstream.http.call_deadline_ms (%lld) is shorter than read_timeout_ms/write_timeout_ms",
                           (long long)c->call_deadline_ms);
    for (const char *p = key; *p; p++)
        if ((unsigned char)*p < 0x21 || *p == 0x7f)
            return a->cfg_fail(node, K("api_key"), err, "upstream.http.api_key contains spaces or control characters");

    n = strlen(c->base_url);
    while (n > 0 && c->base_url[n - 1] == '/') n--;
    c->base = malloc(n + 1);
    if (!c->base) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    memcpy(c->base, c->base_url, n);
    c->base[n] = '\0';
    if (key[0]) {
        size_t len = strlen(key) + 32;
        c->auth_header = malloc(len);
        if (!c->auth_header) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
        if (strcmp(header, "x-api-key") == 0) snprintf(c->auth_header, len, "x-api-key: %s", key);
        else snprintf(c->auth_header, len, "Authorization: Bearer %s", key);
        a->add_secret(u->host, key);
    }
    return BB_OK;
}

/* ---- lifecycle ----------------------------------------------------------- */

static void uh_destroy(bb_upstream *self)
{
    uh_inst *u = (uh_inst *)(void *)self;
    if (!u) return;
    uh_client_destroy(u);
    if (u->cache.buckets) uh_cache_destroy(&u->cache);
    uh_flights_destroy(&u->flights);
    uh_breaker_destroy(&u->breaker);
    free(u->cfg.base);
    if (u->cfg.auth_header) {
        sodium_memzero(u->cfg.auth_header, strlen(u->cfg.auth_header));
        free(u->cfg.auth_header);
    }
    free(u);
}

static bb_status uh_create(const bb_host_api *api, bb_host *host, const bb_cfg *node, bb_upstream **out, bb_error *err)
{
    uh_inst *u;
    *out = NULL;
    if (api->size < sizeof(bb_host_api))
        return bb_fail(err, BB_INTERNAL, NULL, "host API table too small for upstream_http");
    u = calloc(1, sizeof *u);
    if (!u) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    u->api = api;
    u->host = host;
    uh_breaker_init(&u->breaker);
    uh_flights_init(&u->flights);
    if (read_config(u, node, err) != BB_OK) goto fail;
    if (!uh_metrics_init(u)) { bb_fail(err, BB_INTERNAL, NULL, "could not register metrics"); goto fail; }
    if (!uh_cache_init(u)) { bb_fail(err, BB_INTERNAL, NULL, "out of memory"); goto fail; }
    if (!uh_client_init(u, err)) goto fail;
    if (!u->cfg.verify_tls)
        api->log(host, BB_LOG_WARN, NULL, "TLS verification of the upstream is OFF (upstream.http.tls.verify: false)");
    api->log(host, BB_LOG_INFO, NULL, "upstream %s: deadline %lld ms, %lld attempts, breaker %lld failures / %.0f%%",
             u->cfg.base, (long long)u->cfg.call_deadline_ms, (long long)u->cfg.max_attempts,
             (long long)u->cfg.failure_threshold, u->cfg.failure_rate * 100.0);
    *out = (bb_upstream *)(void *)u;
    return BB_OK;
fail:
    uh_destroy((bb_upstream *)(void *)u);
    return err->code ? err->code : BB_INTERNAL;
}

/* ---- helpers ------------------------------------------------------------- */

static bool append(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > cap) return false;
    memcpy(buf + *len, s, n + 1);
    *len += n;
    return true;
}

/* "/teams/<team>/posts" (+ "/<id>") into buf, components escaped. */
static bool posts_path(char *buf, size_t cap, const char *team, const char *id)
{
    size_t len = 0;
    buf[0] = '\0';
    return append(buf, cap, &len, "/teams/") && uh_escape(buf, cap, &len, team) &&
           append(buf, cap, &len, "/posts") &&
           (!id || (append(buf, cap, &len, "/") && uh_escape(buf, cap, &len, id)));
}

static bool add_param(char *buf, size_t cap, size_t *len, const char *name, const char *value)
{
    if (!value) return true;
    return append(buf, cap, len, strchr(buf, '?') ? "&" : "?") && append(buf, cap, len, name) &&
           append(buf, cap, len, "=") && uh_escape(buf, cap, len, value);
}

static bool list_path(char *buf, size_t cap, const bb_post_query *q, int limit, int64_t offset)
{
    size_t len;
    char num[32];
    if (!posts_path(buf, cap, q->team, NULL)) return false;
    len = strlen(buf);
    snprintf(num, sizeof num, "%d", limit);
    if (!add_param(buf, cap, &len, "limit", num)) return false;
    snprintf(num, sizeof num, "%lld", (long long)offset);
    return add_param(buf, cap, &len, "offset", num) && add_param(buf, cap, &len, "agent", q->author) &&
           add_param(buf, cap, &len, "tag", q->tag) && add_param(buf, cap, &len, "thread_id", q->thread_id) &&
           add_param(buf, cap, &len, "sort", q->ascending ? "asc" : "desc");
}

/* ---- reads: fresh cache -> single flight -> call -> stale cache ---------- */

typedef struct read_ctx {
    const bb_call *call;
    uh_op          op;
    const char    *path;
    const char    *cache_key;
    int64_t        deadline_ms;
} read_ctx;

/* Runs once per single flight: the leader's upstream round trip. */
static void fetch(uh_inst *u, void *ud, uh_read_result *out)
{
    read_ctx *rc = ud;
    uh_request rq = { .op = rc->op, .method = "GET", .path = rc->path, .call = rc->call,
                      .deadline_ms = rc->deadline_ms };
    uh_response resp = { .retry_after_ms = -1 };
    bb_error_clear(&out->err);
    out->status = uh_call(u, &rq, &resp, &out->err);
    if (out->status == BB_OK) {
        if (!resp.body) { resp.body = calloc(1, 1); resp.body_len = 0; }
        if (!resp.body) { out->status = bb_fail(&out->err, BB_INTERNAL, NULL, "out of memory"); return; }
        uh_cache_put(u, rc->cache_key, resp.body, resp.body_len);
        out->body = resp.body;
        out->body_len = resp.body_len;
        resp.body = NULL;
    }
    uh_response_clear(&resp);
}

/* The body of a successful read (malloc'd) or NULL with err set. */
static char *read_json(uh_inst *u, const bb_call *call, uh_op op, const char *team, const char *path,
                       bb_read_meta *meta, bb_error *err)
{
    char key[2200];
    char *body;
    int64_t age = 0;
    uh_read_result res;
    read_ctx rc = { call, op, path, key, uh_deadline(u, call) };

    if (meta) { meta->stale = false; meta->age_ms = 0; }
    snprintf(key, sizeof key, "%s\x1f%s", team, path);
    if (u->cfg.cache_fresh_ms > 0) {
        body = uh_cache_get(u, key, true, &age);
        if (body) {
            u->api->add(u->m.cache_hit, 1);
            if (meta) meta->age_ms = age;
            return body;
        }
        u->api->add(u->m.cache_miss, 1);
    }
    uh_flight_do(u, op, key, rc.deadline_ms, fetch, &rc, &res);
    if (res.status == BB_OK) return res.body;
    free(res.body);
    *err = res.err;
    err->code = res.status;
    if (res.status != BB_UNAVAILABLE && res.status != BB_TIMEOUT) return NULL;

    /* The upstream is down or slow: an answer we had is better than none. */
    body = uh_cache_get(u, key, false, &age);
    if (!body) {
        u->api->add(u->m.cache_miss, 1);
        return NULL;
    }
    u->api->add(u->m.cache_stale, 1);
    u->api->log(u->host, BB_LOG_INFO, call, "%s served from the fallback cache, %lld ms old (%s)",
                uh_op_names[op], (long long)age, err->msg);
    if (meta) { meta->stale = true; meta->age_ms = age; }
    bb_error_clear(err);
    return body;
}

static bb_status page_of(uh_inst *u, const bb_call *call, const bb_post_query *q, int limit, int64_t offset,
                         bb_post_page *out, bb_read_meta *meta, bb_error *err)
{
    char path[2048];
    char *body;
    bb_status st;
    if (!list_path(path, sizeof path, q, limit, offset))
        return bb_fail(err, BB_INVALID, NULL, "query too long for the upstream URL");
    body = read_json(u, call, UH_OP_LIST, q->team, path, meta, err);
    if (!body) return err->code ? err->code : BB_INTERNAL;
    st = uh_decode_page(body, strlen(body), q->team, out, err);
    free(body);
    return st;
}

/* Recent posts matching q's REST-side filters, at most scan_limit of them,
 * in q's order.  Used where REST has no filter: mentions and completions. */
static bb_status scan_recent(uh_inst *u, const bb_call *call, const bb_post_query *q, bb_post_page *all,
                             bb_read_meta *meta, bb_error *err)
{
    int64_t offset = 0;
    memset(all, 0, sizeof *all);
    while (offset < u->cfg.scan_limit) {
        bb_post_page pg;
        bb_read_meta m = { false, 0 };
        int want = (int)(u->cfg.scan_limit - offset < 100 ? u->cfg.scan_limit - offset : 100);
        bb_post *grown;
        bb_status st = page_of(u, call, q, want, offset, &pg, &m, err);
        if (st != BB_OK) { bb_post_page_clear(all); return st; }
        if (m.stale && meta) { meta->stale = true; if (m.age_ms > meta->age_ms) meta->age_ms = m.age_ms; }
        if (pg.n == 0) { bb_post_page_clear(&pg); break; }
        grown = realloc(all->posts, (all->n + pg.n) * sizeof *grown);
        if (!grown) { bb_post_page_clear(&pg); bb_post_page_clear(all); return bb_fail(err, BB_INTERNAL, NULL, "out of memory"); }
        all->posts = grown;
        memcpy(all->posts + all->n, pg.posts, pg.n * sizeof *pg.posts);
        all->n += pg.n;
        offset += (int64_t)pg.n;
        free(pg.posts);   /* the posts' strings moved into all */
        if ((int64_t)offset >= pg.total || (int)pg.n < want) break;
    }
    return BB_OK;
}

static bool mentions(const bb_post *p, const bb_post_page *all, const char *who)
{
    char at[BB_AUTHOR_MAX * 4 + 2];
    const char *hit;
    size_t n;
    if (p->parent_id[0])
        for (size_t i = 0; i < all->n; i++)
            if (strcmp(all->posts[i].id, p->parent_id) == 0 && strcmp(all->posts[i].author, who) == 0) return true;
    snprintf(at, sizeof at, "@%s", who);
    n = strlen(at);
    for (hit = strstr(p->content, at); hit; hit = strstr(hit + 1, at)) {
        unsigned char next = (unsigned char)hit[n];
        /* "@bob" must not match "@bobby". */
        if (!(next == '_' || next == '-' || next == '.' || (next >= '0' && next <= '9') ||
              ((next | 0x20) >= 'a' && (next | 0x20) <= 'z')))
            return true;
    }
    return false;
}

static bb_status list_mentions(uh_inst *u, const bb_call *call, const bb_post_query *q, bb_post_page *out,
                               bb_read_meta *meta, bb_error *err)
{
    bb_post_page all;
    size_t kept = 0, matched = 0;
    bb_status st = scan_recent(u, call, q, &all, meta, err);
    if (st != BB_OK) return st;
    memset(out, 0, sizeof *out);
    out->posts = calloc(q->limit > 0 ? (size_t)q->limit : 1, sizeof *out->posts);
    if (!out->posts) { bb_post_page_clear(&all); return bb_fail(err, BB_INTERNAL, NULL, "out of memory"); }
    for (size_t i = 0; i < all.n; i++) {
        if (!mentions(&all.posts[i], &all, q->mentions_of)) continue;
        if ((int64_t)matched++ < q->offset || kept >= (size_t)q->limit) continue;
        out->posts[kept] = all.posts[i];
        memset(&all.posts[i], 0, sizeof all.posts[i]);   /* moved */
        kept++;
    }
    out->n = kept;
    out->total = (int64_t)matched;
    bb_post_page_clear(&all);
    return BB_OK;
}

/* ---- the operations ------------------------------------------------------ */

static bb_status uh_list_posts(bb_upstream *self, const bb_call *call, const bb_post_query *q,
                               bb_post_page *out, bb_read_meta *meta, bb_error *err)
{
    uh_inst *u = (uh_inst *)(void *)self;
    memset(out, 0, sizeof *out);
    if (meta) { meta->stale = false; meta->age_ms = 0; }
    if (!q || !q->team || !q->team[0]) return bb_fail(err, BB_INVALID, "team", "team is required");
    if (q->limit < 1 || q->limit > 100) return bb_fail(err, BB_INVALID, "limit", "limit must be 1-100");
    if (q->offset < 0) return bb_fail(err, BB_INVALID, "offset", "offset must be >= 0");
    if (q->mentions_of) return list_mentions(u, call, q, out, meta, err);
    return page_of(u, call, q, q->limit, q->offset, out, meta, err);
}

static bb_status uh_get_post(bb_upstream *self, const bb_call *call, const char *team, const char *id,
                             bb_post *out, bb_read_meta *meta, bb_error *err)
{
    uh_inst *u = (uh_inst *)(void *)self;
    char path[512];
    char *body;
    bb_status st;
    memset(out, 0, sizeof *out);
    if (meta) { meta->stale = false; meta->age_ms = 0; }
    if (!posts_path(path, sizeof path, team, id)) return bb_fail(err, BB_INVALID, "postId", "post id too long");
    body = read_json(u, call, UH_OP_GET, team, path, meta, err);
    if (!body) return err->code ? err->code : BB_INTERNAL;
    st = uh_decode_post_body(body, strlen(body), team, out, err);
    free(body);
    return st;
}

/* A write that could not reach the upstream says so plainly: writes never
 * fall back to a cache. */
static bb_status write_failed(bb_error *err, const char *what)
{
    if (err->code == BB_UNAVAILABLE || err->code == BB_TIMEOUT) {
        char msg[BB_ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        snprintf(err->msg, sizeof err->msg, "%s failed, nothing was changed or the outcome is unknown: %s", what, msg);
    }
    return err->code;
}

static bb_status uh_create_post(bb_upstream *self, const bb_call *call, const char *team,
                                const bb_new_post *in, bb_post *out, bb_error *err)
{
    uh_inst *u = (uh_inst *)(void *)self;
    char path[512], idem[33];
    unsigned char raw[16];
    uh_response resp = { .retry_after_ms = -1 };
    uh_request rq;
    char *body;
    bb_status st;

    memset(out, 0, sizeof *out);
    if (!posts_path(path, sizeof path, team, NULL)) return bb_fail(err, BB_INVALID, "team", "team name too long");
    body = uh_encode_new_post(in);
    if (!body) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    /* One key per logical call: every retry of this create carries it, so
     * the upstream answers a repeat with the post it already made. */
    u->api->random(raw, sizeof raw);
    sodium_bin2hex(idem, sizeof idem, raw, sizeof raw);
    rq = (uh_request){ .op = UH_OP_CREATE, .method = "POST", .path = path, .body = body,
                       .idempotency_key = idem, .call = call, .deadline_ms = uh_deadline(u, call) };
    st = uh_call(u, &rq, &resp, err);
    free(body);
    if (st == BB_OK) {
        uh_cache_invalidate_team(u, team);
        st = uh_decode_post_body(resp.body, resp.body_len, team, out, err);
    } else {
        write_failed(err, "create_post");
    }
    uh_response_clear(&resp);
    return st;
}

static bb_status uh_delete_post(bb_upstream *self, const bb_call *call, const char *team, const char *id,
                                bb_error *err)
{
    uh_inst *u = (uh_inst *)(void *)self;
    char path[512];
    uh_response resp = { .retry_after_ms = -1 };
    uh_request rq;
    bb_status st;
    if (!posts_path(path, sizeof path, team, id)) return bb_fail(err, BB_INVALID, "postId", "post id too long");
    rq = (uh_request){ .op = UH_OP_DELETE, .method = "DELETE", .path = path, .call = call,
                       .deadline_ms = uh_deadline(u, call) };
    st = uh_call(u, &rq, &resp, err);
    if (st == BB_NOT_FOUND && resp.ambiguous) {
        /* An earlier attempt may have deleted it before its answer was
         * lost: the post is gone either way, which is what was asked.
         * Note: libcurl itself re-sends a request once when a reused
         * connection dies before any byte of the answer; we cannot see that
         * re-send, so such a delete may still report NOT_FOUND.  Creates are
         * safe from it: the re-send carries the same Idempotency-Key. */
        u->api->log(u->host, BB_LOG_DEBUG, call, "delete_post: 404 after an ambiguous attempt, taken as deleted");
        bb_error_clear(err);
        st = BB_OK;
    }
    if (st == BB_OK) uh_cache_invalidate_team(u, team);
    else write_failed(err, "delete_post");
    uh_response_clear(&resp);
    return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* No REST endpoint lists authors or tags: collect them from recent posts. */
static bb_status uh_distinct(bb_upstream *self, const bb_call *call, const char *team, bb_distinct_field field,
                             const char *prefix, int limit, char ***out, size_t *n_out, bb_error *err)
{
    uh_inst *u = (uh_inst *)(void *)self;
    bb_post_query q = { .team = team, .limit = 100 };
    bb_post_page all;
    char **v;
    size_t n = 0, cap, plen = prefix ? strlen(prefix) : 0;
    bb_status st;

    *out = NULL;
    *n_out = 0;
    if (limit <= 0) return BB_OK;
    st = scan_recent(u, call, &q, &all, NULL, err);
    if (st != BB_OK) return st;
    cap = (size_t)limit;
    v = calloc(cap, sizeof *v);
    if (!v) { bb_post_page_clear(&all); return bb_fail(err, BB_INTERNAL, NULL, "out of memory"); }
    for (size_t i = 0; i < all.n && n < cap; i++) {
        bb_post *p = &all.posts[i];
        size_t nv = field == BB_DISTINCT_AUTHOR ? 1 : p->n_tags;
        for (size_t k = 0; k < nv && n < cap; k++) {
            const char *s = field == BB_DISTINCT_AUTHOR ? p->author : p->tags[k];
            bool seen = false;
            if (plen && strncmp(s, prefix, plen) != 0) continue;
            for (size_t j = 0; j < n && !seen; j++) seen = strcmp(v[j], s) == 0;
            if (seen) continue;
            if (!(v[n] = strdup(s))) { bb_strv_free(v, n); bb_post_page_clear(&all); return bb_fail(err, BB_INTERNAL, NULL, "out of memory"); }
            n++;
        }
    }
    bb_post_page_clear(&all);
    qsort(v, n, sizeof *v, cmp_str);
    *out = v;
    *n_out = n;
    return BB_OK;
}

/* A real round trip (not through the breaker, so it sees recovery first):
 * the team endpoint also proves our key is accepted. */
static bb_status uh_health(bb_upstream *self, const bb_call *call, char *detail, size_t len, bb_error *err)
{
    uh_inst *u = (uh_inst *)(void *)self;
    int64_t open_left = 0, t0 = u->api->now_ms();
    uh_breaker_state bs = uh_breaker_snapshot(u, &open_left);
    uh_request rq = { .op = UH_OP_HEALTH, .method = "GET", .path = "/teams/default", .call = call,
                      .deadline_ms = uh_deadline(u, call) };
    uh_response resp;
    bb_status st = BB_OK;
    char bstate[64];

    if (bs == UH_OPEN) snprintf(bstate, sizeof bstate, "breaker open (%lld ms left)", (long long)open_left);
    else snprintf(bstate, sizeof bstate, "breaker %s", uh_breaker_state_names[bs]);
    memset(&resp, 0, sizeof resp);
    uh_client_perform(u, &rq, &resp);
    u->api->add(u->m.requests[UH_OP_HEALTH][resp.outcome], 1);
    if (resp.outcome == UH_OUT_TRANSPORT || resp.outcome == UH_OUT_TIMEOUT) {
        st = bb_fail(err, BB_UNAVAILABLE, NULL, "%s, upstream unreachable: %s", bstate, resp.transport_error);
        snprintf(detail, len, "%s, upstream unreachable: %s", bstate, resp.transport_error);
    } else if (resp.status == 401) {
        st = bb_fail(err, BB_UNAVAILABLE, NULL, "%s, upstream rejected our API key (HTTP 401)", bstate);
        snprintf(detail, len, "%s, upstream rejected our API key (HTTP 401)", bstate);
    } else if (resp.status >= 500) {
        st = bb_fail(err, BB_UNAVAILABLE, NULL, "%s, upstream answered HTTP %ld", bstate, resp.status);
        snprintf(detail, len, "%s, upstream HTTP %ld", bstate, resp.status);
    } else {
        snprintf(detail, len, "%s, upstream HTTP %ld in %lld ms", bstate, resp.status,
                 (long long)(u->api->now_ms() - t0));
    }
    uh_response_clear(&resp);
    return st;
}

static const bb_upstream_ops ops = {
    .size = sizeof(bb_upstream_ops),
    .create = uh_create,
    .destroy = uh_destroy,
    .health = uh_health,
    .list_posts = uh_list_posts,
    .get_post = uh_get_post,
    .create_post = uh_create_post,
    .delete_post = uh_delete_post,
    .distinct = uh_distinct,
};

static const bb_plugin_descriptor descriptor = {
    .magic = BB_PLUGIN_MAGIC,
    .abi_major = BB_ABI_MAJOR,
    .abi_minor = BB_ABI_MINOR,
    .size = sizeof(bb_plugin_descriptor),
    .kind = BB_KIND_UPSTREAM,
    .name = "http",
    .version = PACKAGE_VERSION,
    .description = "remote BotBoard REST API (gateway mode): retries, circuit breaker, stale-read fallback",
    .ops = &ops,
    .config_keys = keys,
    .n_config_keys = sizeof keys / sizeof keys[0],
};

BB_PLUGIN_DEFINE(descriptor)
