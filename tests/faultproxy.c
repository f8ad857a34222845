/*
 * tests/faultproxy.c — a fault-injecting HTTP proxy for the gateway tests.
 *
 *   faultproxy PORT ORIGIN_URL      (ORIGIN_URL "none": injected answers only)
 *
 * Listens on 127.0.0.1:PORT and forwards every request to ORIGIN_URL (same
 * method, path, query, headers and body) unless a rule says otherwise.
 * Tests drive it over HTTP on the same port:
 *
 *   POST /_fault/rule?mode=M[&times=N][&status=S][&retry_after=R]
 *                     [&latency_ms=L][&hang_ms=H][&fail_pct=P][&seed=X]
 *        request body (optional) = the body answered in mode=status
 *     mode=pass         forward (after latency_ms)
 *     mode=status       answer S (default 503) without forwarding, with
 *                       Retry-After: R when given
 *     mode=drop         close the connection without an answer
 *     mode=hang         hold the request hang_ms (or until reset), then drop
 *     mode=commit_fail  forward (the origin commits), then answer 502
 *     mode=commit_drop  forward, then close without an answer
 *     mode=mix          fail_pct% of requests get one of status 503, drop,
 *                       commit_fail, commit_drop (uniformly); the rest pass
 *     times=N           the rule covers the next N requests, then pass again
 *                       (default: every request until the next rule)
 *     then_status=S     after those N requests answer S with the request body
 *                       (which is then not used before), instead of passing
 *   POST /_fault/reset  back to pass, counters and log cleared, hangs released
 *   GET  /_fault/stats  {"requests":N,"forwarded":F,"injected":I,"connections":C,
 *                        "log":[{"t_ms","method","path","idem","rid","traceparent","auth","action"}]}
 *
 * Thread per connection, so a hung request never blocks another.  Prints
 * nothing but one line on fatal errors; SIGTERM stops it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { LOG_MAX = 4096, BODY_MAX = 16 * 1024 * 1024, HANG_MAX_MS = 120000 };

typedef enum action { A_PASS, A_STATUS, A_DROP, A_HANG, A_COMMIT_FAIL, A_COMMIT_DROP, A_MIX } action;
static const char *const action_names[] = { "pass", "status", "drop", "hang", "commit_fail", "commit_drop", "mix" };

typedef struct rule {
    action   mode;
    long     times;         /* -1 = until the next rule */
    int      status;
    int      retry_after;   /* -1 = no header */
    long     latency_ms;
    long     hang_ms;
    int      fail_pct;
    int      then_status;   /* after `times`: answer this (with body) instead of passing */
    char    *body;
} rule;

typedef struct log_entry {
    int64_t t_ms;
    char    method[8];
    char    path[160];
    char    idem[48];
    char    rid[48];
    char    traceparent[64];
    char    auth[16];       /* which auth header came: bearer, x-api-key, none */
    action  act;
} log_entry;

/* One process, one proxy: process-wide state is fine in a test program. */
static struct {
    pthread_mutex_t lock;
    rule            r;
    uint64_t        rng;
    long            requests, forwarded, injected;
    long            connections;  /* TCP connections accepted: reuse shows as few */
    log_entry       log[LOG_MAX];
    size_t          n_log;
    unsigned        generation;   /* bumped by reset: releases hangs */
    const char     *origin;
} P = { .lock = PTHREAD_MUTEX_INITIALIZER, .r = { .mode = A_PASS, .times = -1, .status = 503, .retry_after = -1 } };

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static uint64_t next_rand(void)   /* xorshift64*, lock held */
{
    P.rng ^= P.rng >> 12;
    P.rng ^= P.rng << 25;
    P.rng ^= P.rng >> 27;
    return P.rng * 2685821657736338717ull;
}

/* ---- per request -------------------------------------------------------- */

typedef struct req {
    char  *body;
    size_t len, cap;
    bool   too_big;
} req;

static bool req_add(req *r, const char *d, size_t n)
{
    if (r->len + n + 1 > BODY_MAX) { r->too_big = true; return false; }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4096;
        char *nb;
        while (cap < r->len + n + 1) cap *= 2;
        if (!(nb = realloc(r->body, cap))) { r->too_big = true; return false; }
        r->body = nb;
        r->cap = cap;
    }
    memcpy(r->body + r->len, d, n);
    r->len += n;
    r->body[r->len] = '\0';
    return true;
}

static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *body, size_t len,
                             const char *ctype, int retry_after)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc;
    char ra[16];
    if (!resp) return MHD_NO;
    if (ctype) MHD_add_response_header(resp, "Content-Type", ctype);
    if (retry_after >= 0) {
        snprintf(ra, sizeof ra, "%d", retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    rc = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    enum MHD_Result rc = s ? reply(c, status, s, strlen(s), "application/json", -1) : MHD_NO;
    free(s);
    json_decref(j);
    return rc;
}

/* ---- forwarding --------------------------------------------------------- */

typedef struct fwd {
    struct curl_slist *hdrs;
    bool               ok;
} fwd;

static enum MHD_Result collect_header(void *ud, enum MHD_ValueKind kind, const char *k, const char *v)
{
    fwd *f = ud;
    char line[8192];
    struct curl_slist *n;
    (void)kind;
    if (!strcasecmp(k, "Host") || !strcasecmp(k, "Content-Length") || !strcasecmp(k, "Connection") ||
        !strcasecmp(k, "Expect") || !strcasecmp(k, "Transfer-Encoding"))
        return MHD_YES;
    snprintf(line, sizeof line, "%s: %s", k, v ? v : "");
    if (!(n = curl_slist_append(f->hdrs, line))) { f->ok = false; return MHD_NO; }
    f->hdrs = n;
    return MHD_YES;
}

typedef struct answer {
    req   body;
    req   headers;
} answer;

static size_t on_body(char *d, size_t s, size_t n, void *ud) { return req_add(ud, d, s * n) ? s * n : 0; }
static size_t on_header(char *d, size_t s, size_t n, void *ud)
{
    req *h = ud;
    if (s * n >= 5 && strncmp(d, "HTTP/", 5) == 0) h->len = 0;   /* keep the final block only */
    return req_add(h, d, s * n) ? s * n : 0;
}

typedef struct qbuild {
    char  *buf;
    size_t cap, len;
    bool   ok;
    CURL  *e;
} qbuild;

static enum MHD_Result add_arg(void *ud, enum MHD_ValueKind kind, const char *k, const char *v)
{
    qbuild *q = ud;
    char *ek = curl_easy_escape(q->e, k, 0), *ev = v ? curl_easy_escape(q->e, v, 0) : NULL;
    int n;
    (void)kind;
    if (!ek || (v && !ev)) q->ok = false;
    else {
        n = snprintf(q->buf + q->len, q->cap - q->len, "%s%s%s%s", strchr(q->buf, '?') ? "&" : "?", ek,
                     ev ? "=" : "", ev ? ev : "");
        if (n < 0 || (size_t)n >= q->cap - q->len) q->ok = false;
        else q->len += (size_t)n;
    }
    curl_free(ek);
    curl_free(ev);
    return q->ok ? MHD_YES : MHD_NO;
}

/* Forward to the origin; fills *status (0 = origin unreachable) and ans. */
static void forward(struct MHD_Connection *c, const char *method, const char *url_path, req *in,
                    long *status, answer *ans)
{
    char url[8192];
    fwd f = { NULL, true };
    CURL *e = curl_easy_init();
    *status = 0;
    if (!e) return;
    /* MHD hands the path and the decoded arguments apart: rebuild the query. */
    {
        qbuild qb = { url, sizeof url, 0, true, e };
        qb.len = (size_t)snprintf(url, sizeof url, "%s%s", P.origin, url_path);
        if (qb.len >= sizeof url) { curl_easy_cleanup(e); return; }
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, &qb);
        if (!qb.ok) { curl_easy_cleanup(e); return; }
    }
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &f);
    f.hdrs = curl_slist_append(f.hdrs, "Expect:");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, f.hdrs);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &ans->body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &ans->headers);
    if (in->len) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, in->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)in->len);
    } else if (!strcmp(method, "GET")) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    if (f.ok && curl_easy_perform(e) == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(f.hdrs);
    curl_easy_cleanup(e);
}

/* The origin's answer back to the client, hop-by-hop headers dropped. */
static enum MHD_Result relay(struct MHD_Connection *c, long status, answer *ans)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(ans->body.len, ans->body.body ? ans->body.body : (void *)"",
                                                                MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc;
    char *save = NULL, *line;
    if (!resp) return MHD_NO;
    for (line = ans->headers.body ? strtok_r(ans->headers.body, "\r\n", &save) : NULL; line;
         line = strtok_r(NULL, "\r\n", &save)) {
        char *colon = strchr(line, ':'), *v;
        if (!colon || !strncmp(line, "HTTP/", 5)) continue;
        *colon = '\0';
        for (v = colon + 1; *v == ' '; v++) {}
        if (!strcasecmp(line, "Content-Length") || !strcasecmp(line, "Transfer-Encoding") ||
            !strcasecmp(line, "Connection") || !strcasecmp(line, "Keep-Alive") || !strcasecmp(line, "Date"))
            continue;
        MHD_add_response_header(resp, line, v);
    }
    rc = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* ---- control ------------------------------------------------------------ */

static long arg_long(struct MHD_Connection *c, const char *name, long def)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? strtol(v, NULL, 10) : def;
}

static enum MHD_Result control(struct MHD_Connection *c, const char *method, const char *url, req *in)
{
    if (!strcmp(url, "/_fault/stats")) {
        json_t *log = json_array(), *j;
        pthread_mutex_lock(&P.lock);
        for (size_t i = 0; i < P.n_log; i++)
            json_array_append_new(log, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "t_ms",
                                                 (json_int_t)P.log[i].t_ms, "method", P.log[i].method, "path",
                                                 P.log[i].path, "idem", P.log[i].idem, "rid", P.log[i].rid,
                                                 "traceparent", P.log[i].traceparent, "auth", P.log[i].auth,
                                                 "action", action_names[P.log[i].act]));
        j = json_pack("{s:I, s:I, s:I, s:I, s:o}", "requests", (json_int_t)P.requests, "forwarded",
                      (json_int_t)P.forwarded, "injected", (json_int_t)P.injected, "connections",
                      (json_int_t)P.connections, "log", log);
        pthread_mutex_unlock(&P.lock);
        return reply_json(c, 200, j);
    }
    if (strcmp(method, "POST") != 0) return reply(c, 405, "", 0, NULL, -1);
    if (!strcmp(url, "/_fault/reset")) {
        pthread_mutex_lock(&P.lock);
        free(P.r.body);
        P.r = (rule){ .mode = A_PASS, .times = -1, .status = 503, .retry_after = -1 };
        P.requests = P.forwarded = P.injected = P.connections = 0;
        P.n_log = 0;
        P.generation++;
        pthread_mutex_unlock(&P.lock);
        return reply(c, 204, "", 0, NULL, -1);
    }
    if (!strcmp(url, "/_fault/rule")) {
        const char *m = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mode");
        rule r = { .mode = A_PASS };
        size_t i;
        for (i = 0; m && i < sizeof action_names / sizeof *action_names; i++)
            if (!strcmp(m, action_names[i])) break;
        if (!m || i == sizeof action_names / sizeof *action_names) return reply(c, 400, "bad mode", 8, NULL, -1);
        r.mode = (action)i;
        r.times = arg_long(c, "times", -1);
        r.status = (int)arg_long(c, "status", 503);
        r.retry_after = (int)arg_long(c, "retry_after", -1);
        r.latency_ms = arg_long(c, "latency_ms", 0);
        r.hang_ms = arg_long(c, "hang_ms", HANG_MAX_MS);
        r.fail_pct = (int)arg_long(c, "fail_pct", 0);
        r.then_status = (int)arg_long(c, "then_status", 0);
        if (r.hang_ms > HANG_MAX_MS) r.hang_ms = HANG_MAX_MS;
        if (in->len && !(r.body = strdup(in->body))) return MHD_NO;
        pthread_mutex_lock(&P.lock);
        free(P.r.body);
        P.r = r;
        if (arg_long(c, "seed", 0)) P.rng = (uint64_t)arg_long(c, "seed", 0);
        pthread_mutex_unlock(&P.lock);
        return reply(c, 204, "", 0, NULL, -1);
    }
    return reply(c, 404, "", 0, NULL, -1);
}

/* ---- the handler -------------------------------------------------------- */

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    req *in = *con_cls;
    action act;
    int status, retry_after;
    long latency, hang;
    char *canned = NULL;
    unsigned gen;
    (void)cls; (void)version;

    if (!in) {   /* first call: headers only (answering now would disable keep-alive) */
        if (!(in = calloc(1, sizeof *in))) return MHD_NO;
        *con_cls = in;
        return MHD_YES;
    }
    if (*upload_size) {
        req_add(in, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (in->too_big) return reply(c, 413, "", 0, NULL, -1);
    if (!strncmp(url, "/_fault/", 8)) return control(c, method, url, in);

    /* Decide, count and log under the lock; act outside it. */
    pthread_mutex_lock(&P.lock);
    act = P.r.mode;
    status = P.r.status;
    retry_after = P.r.retry_after;
    latency = P.r.latency_ms;
    hang = P.r.hang_ms;
    if (act == A_MIX) {
        act = (long)(next_rand() % 100) < P.r.fail_pct ? (action[]){ A_STATUS, A_DROP, A_COMMIT_FAIL, A_COMMIT_DROP }[next_rand() % 4]
                                                       : A_PASS;
        status = 503;
    }
    if (act == A_STATUS && P.r.body && !P.r.then_status) canned = strdup(P.r.body);
    if (P.r.times > 0 && --P.r.times == 0) {
        if (P.r.then_status) {
            P.r = (rule){ .mode = A_STATUS, .times = -1, .status = P.r.then_status, .retry_after = -1,
                          .latency_ms = P.r.latency_ms, .body = P.r.body };
        } else {
            free(P.r.body);
            P.r = (rule){ .mode = A_PASS, .times = -1, .status = 503, .retry_after = -1, .latency_ms = P.r.latency_ms };
        }
    }
    P.requests++;
    if (act == A_PASS || act == A_COMMIT_FAIL || act == A_COMMIT_DROP) P.forwarded++;
    if (act != A_PASS) P.injected++;
    if (P.n_log < LOG_MAX) {
        log_entry *le = &P.log[P.n_log++];
        const char *idem = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
        le->t_ms = now_ms();
        snprintf(le->method, sizeof le->method, "%s", method);
        snprintf(le->path, sizeof le->path, "%s", url);
        snprintf(le->idem, sizeof le->idem, "%s", idem ? idem : "");
        const char *rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-ID");
        const char *tp = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "traceparent");
        const char *az = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        snprintf(le->rid, sizeof le->rid, "%s", rid ? rid : "");
        snprintf(le->traceparent, sizeof le->traceparent, "%s", tp ? tp : "");
        snprintf(le->auth, sizeof le->auth, "%s",
                 az && !strncmp(az, "Bearer ", 7) ? "bearer"
                 : MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key") ? "x-api-key" : "none");
        le->act = act;
    }
    gen = P.generation;
    pthread_mutex_unlock(&P.lock);

    if (latency > 0) sleep_ms(latency);
    switch (act) {
    case A_STATUS: {
        static const char def[] = "{\"error\":\"injected by faultproxy\",\"code\":\"UNAVAILABLE\"}";
        enum MHD_Result rc = canned ? reply(c, status, canned, strlen(canned), "application/json", retry_after)
                                    : reply(c, status, def, sizeof def - 1, "application/json", retry_after);
        free(canned);
        return rc;
    }
    case A_DROP:
        return MHD_NO;
    case A_HANG:
        for (long waited = 0; waited < hang; waited += 20) {
            unsigned g;
            pthread_mutex_lock(&P.lock);
            g = P.generation;
            pthread_mutex_unlock(&P.lock);
            if (g != gen) break;
            sleep_ms(20);
        }
        return MHD_NO;
    default: {
        long st = 0;
        answer ans = { { 0 }, { 0 } };
        enum MHD_Result rc;
        if (!strcmp(P.origin, "none")) return reply(c, 502, "", 0, NULL, -1);
        forward(c, method, url, in, &st, &ans);
        if (act == A_COMMIT_DROP) rc = MHD_NO;
        else if (act == A_COMMIT_FAIL) rc = reply(c, 502, "{\"error\":\"injected after commit\",\"code\":\"UNAVAILABLE\"}", 54, "application/json", -1);
        else if (st == 0) rc = reply(c, 502, "{\"error\":\"origin unreachable\",\"code\":\"UNAVAILABLE\"}", 51, "application/json", -1);
        else rc = relay(c, st, &ans);
        free(ans.body.body);
        free(ans.headers.body);
        return rc;
    }
    }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx, enum MHD_ConnectionNotificationCode code)
{
    (void)cls; (void)c; (void)socket_ctx;
    if (code != MHD_CONNECTION_NOTIFY_STARTED) return;
    pthread_mutex_lock(&P.lock);
    P.connections++;
    pthread_mutex_unlock(&P.lock);
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
    req *in = *con_cls;
    (void)cls; (void)c; (void)t;
    if (in) { free(in->body); free(in); }
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    struct MHD_Daemon *d;
    sigset_t set;
    int sig, port;
    if (argc != 3) { fprintf(stderr, "usage: faultproxy PORT ORIGIN_URL|none\n"); return 2; }
    port = atoi(argv[1]);
    P.origin = argv[2];
    P.rng = (uint64_t)now_ms() | 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) { fprintf(stderr, "faultproxy: curl init failed\n"); return 1; }
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);   /* inherited by MHD's threads */
    signal(SIGPIPE, SIG_IGN);
    {
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(0x7f000001);
        d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
                             (uint16_t)port, NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                             MHD_OPTION_NOTIFY_COMPLETED, done, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
                             NULL, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                             MHD_OPTION_END);
    }
    if (!d) { fprintf(stderr, "faultproxy: cannot listen on 127.0.0.1:%d\n", port); return 1; }
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    curl_global_cleanup();
    return 0;
}
