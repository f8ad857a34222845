/*
 * plugins/upstream_http/client.c — one HTTP attempt on libcurl.
 *
 * Connection reuse: a share handle holds one connection cache, DNS cache and
 * TLS session cache for the whole instance, so a connection opened by one
 * worker thread is reused by the next request on any thread; idle easy
 * handles are pooled too (they keep their parsed options and buffers).
 * Each attempt is bounded by min(operation timeout, call deadline).
 */
#include "uh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct uh_handle {
    CURL      *easy;
    uh_handle *next;
};

typedef struct sink {
    uh_inst *u;
    char    *buf;
    size_t   len, cap;
    bool     too_big;
    char     retry_after[64];
} sink;

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    uh_inst *u = ud;
    (void)h; (void)access;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST) pthread_mutex_lock(&u->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    uh_inst *u = ud;
    (void)h;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST) pthread_mutex_unlock(&u->share_locks[data]);
}

bool uh_client_init(uh_inst *u, bb_error *err)
{
    /* Reference counted and thread-safe in libcurl >= 7.84 (Debian 12 has 7.88). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return bb_fail(err, BB_INTERNAL, NULL, "libcurl failed to initialise"), false;
    u->curl_inited = true;
    pthread_mutex_init(&u->pool_lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&u->share_locks[i], NULL);
    u->share_locks_ok = true;
    u->share = curl_share_init();
    if (!u->share) return bb_fail(err, BB_INTERNAL, NULL, "curl_share_init failed"), false;
    if (curl_share_setopt(u->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
        curl_share_setopt(u->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
        curl_share_setopt(u->share, CURLSHOPT_USERDATA, u) != CURLSHE_OK ||
        curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
        curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK)
        return bb_fail(err, BB_INTERNAL, NULL, "libcurl share handle setup failed"), false;
    snprintf(u->user_agent, sizeof u->user_agent, "botboard-upstream_http/" PACKAGE_VERSION);
    return true;
}

void uh_client_destroy(uh_inst *u)
{
    uh_handle *h = u->pool, *next;
    for (; h; h = next) {
        next = h->next;
        curl_easy_cleanup(h->easy);
        free(h);
    }
    u->pool = NULL;
    if (u->share) curl_share_cleanup(u->share);
    u->share = NULL;
    if (u->share_locks_ok) {
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_destroy(&u->share_locks[i]);
        pthread_mutex_destroy(&u->pool_lock);
        u->share_locks_ok = false;
    }
    if (u->curl_inited) curl_global_cleanup();
    u->curl_inited = false;
}

static uh_handle *handle_get(uh_inst *u)
{
    uh_handle *h;
    pthread_mutex_lock(&u->pool_lock);
    h = u->pool;
    if (h) { u->pool = h->next; u->pool_n--; }
    pthread_mutex_unlock(&u->pool_lock);
    if (h) { curl_easy_reset(h->easy); return h; }
    h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->easy = curl_easy_init();
    if (!h->easy) { free(h); return NULL; }
    return h;
}

static void handle_put(uh_inst *u, uh_handle *h)
{
    pthread_mutex_lock(&u->pool_lock);
    if (u->pool_n < u->cfg.pool_size) {
        h->next = u->pool;
        u->pool = h;
        u->pool_n++;
        h = NULL;
    }
    pthread_mutex_unlock(&u->pool_lock);
    if (h) { curl_easy_cleanup(h->easy); free(h); }
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    sink *s = ud;
    size_t n = size * nmemb;
    if (s->len + n + 1 > (size_t)s->u->cfg.max_response_bytes) { s->too_big = true; return 0; }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        char *nb;
        while (cap < s->len + n + 1) cap *= 2;
        nb = realloc(s->buf, cap);
        if (!nb) return 0;
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    sink *s = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        size_t vlen = n - (sizeof name - 1);
        if (vlen >= sizeof s->retry_after) vlen = sizeof s->retry_after - 1;
        memcpy(s->retry_after, data + sizeof name - 1, vlen);
        s->retry_after[vlen] = '\0';
    }
    return n;
}

/* Header values we forward come from clients: refuse anything that could
 * split a header line. */
static bool header_safe(const char *v)
{
    if (!v || !*v || strlen(v) > 200) return false;
    for (; *v; v++) if ((unsigned char)*v < 0x20 || *v == 0x7f) return false;
    return true;
}

static struct curl_slist *add_header(struct curl_slist *l, bool *ok, const char *name, const char *value)
{
    char line[512];
    struct curl_slist *n;
    if (!*ok) return l;
    snprintf(line, sizeof line, "%s: %s", name, value);
    n = curl_slist_append(l, line);
    if (!n) { *ok = false; return l; }
    return n;
}

void uh_response_clear(uh_response *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
    r->retry_after_ms = -1;
}

void uh_client_perform(uh_inst *u, const uh_request *rq, uh_response *out)
{
    char url[2048];
    sink s = { .u = u };
    struct curl_slist *hdrs = NULL;
    bool ok = true, is_read = rq->op == UH_OP_LIST || rq->op == UH_OP_GET || rq->op == UH_OP_HEALTH;
    int64_t left = rq->deadline_ms - u->api->now_ms();
    int64_t timeout = is_read ? u->cfg.read_timeout_ms : u->cfg.write_timeout_ms;
    char errbuf[CURL_ERROR_SIZE] = "";
    uh_handle *h;
    CURLcode rc;
    CURL *e;

    uh_response_clear(out);
    if (left < timeout) timeout = left;
    if (timeout <= 0) {
        out->outcome = UH_OUT_TIMEOUT;
        snprintf(out->transport_error, sizeof out->transport_error, "call deadline reached");
        return;
    }
    if ((size_t)snprintf(url, sizeof url, "%s%s", u->cfg.base, rq->path) >= sizeof url) {
        out->outcome = UH_OUT_TRANSPORT;
        snprintf(out->transport_error, sizeof out->transport_error, "request URL too long");
        return;
    }
    h = handle_get(u);
    if (!h) {
        out->outcome = UH_OUT_TRANSPORT;
        snprintf(out->transport_error, sizeof out->transport_error, "out of memory");
        return;
    }
    e = h->easy;

    hdrs = add_header(hdrs, &ok, "Accept", "application/json");
    if (rq->body) hdrs = add_header(hdrs, &ok, "Content-Type", "application/json");
    if (ok && u->cfg.auth_header) {
        struct curl_slist *n = curl_slist_append(hdrs, u->cfg.auth_header);
        if (n) hdrs = n; else ok = false;
    }
    if (rq->call && header_safe(rq->call->request_id)) hdrs = add_header(hdrs, &ok, "X-Request-ID", rq->call->request_id);
    if (rq->call && header_safe(rq->call->traceparent)) hdrs = add_header(hdrs, &ok, "traceparent", rq->call->traceparent);
    if (rq->idempotency_key) hdrs = add_header(hdrs, &ok, "Idempotency-Key", rq->idempotency_key);
    hdrs = add_header(hdrs, &ok, "Expect", "");   /* no 100-continue round trip */

    if (ok &&
        curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_SHARE, u->share) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(u->cfg.connect_timeout_ms < timeout ? u->cfg.connect_timeout_ms : timeout)) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, u->cfg.verify_tls ? 1L : 0L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, u->cfg.verify_tls ? 2L : 0L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_USERAGENT, u->user_agent) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &s) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HEADERDATA, &s) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
        (!u->cfg.ca_file[0] || curl_easy_setopt(e, CURLOPT_CAINFO, u->cfg.ca_file) == CURLE_OK) &&
        (!rq->body || (curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->body) == CURLE_OK &&
                       curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(rq->body)) == CURLE_OK)) &&
        (strcmp(rq->method, "GET") != 0 || curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK)) {
        rc = curl_easy_perform(e);
    } else {
        rc = CURLE_OUT_OF_MEMORY;
        snprintf(errbuf, sizeof errbuf, "could not set up the request");
    }

    if (rc == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
        out->body = s.buf;
        out->body_len = s.len;
        s.buf = NULL;
        out->retry_after_ms = uh_parse_retry_after_ms(s.retry_after[0] ? s.retry_after : NULL, u->api->wall_ms());
        if (out->status >= 200 && out->status < 300) out->outcome = UH_OUT_OK;
        else if (out->status == 429) out->outcome = UH_OUT_RATE_LIMITED;
        else if (out->status >= 500) out->outcome = UH_OUT_SERVER_ERROR;
        else if (out->status >= 400) out->outcome = UH_OUT_CLIENT_ERROR;
        else {
            out->outcome = UH_OUT_TRANSPORT;
            snprintf(out->transport_error, sizeof out->transport_error, "unexpected HTTP %ld", out->status);
        }
    } else {
        out->outcome = rc == CURLE_OPERATION_TIMEDOUT ? UH_OUT_TIMEOUT : UH_OUT_TRANSPORT;
        if (s.too_big) snprintf(errbuf, sizeof errbuf, "response larger than max_response_bytes");
        snprintf(out->transport_error, sizeof out->transport_error, "%s",
                 errbuf[0] ? errbuf : curl_easy_strerror(rc));
        free(s.buf);
    }
    /* Detach per-request pointers before the handle goes back to the pool. */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdrs);
    if (rc == CURLE_OK || rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_COULDNT_CONNECT) handle_put(u, h);
    else { curl_easy_cleanup(h->easy); free(h); }
}
