/*
 * core/http_server.c — libmicrohttpd glue.
 *
 * PERF-NOTES trap 1: never queue a response on the first access-handler
 * call (MHD 0.9.75 then answers Connection: close).  The first call only
 * allocates the request; the body arrives on later calls; the response is
 * queued on the call where *upload_data_size == 0.
 * Trap 2: poll with a thread pool by default; mode and pool are config.
 */
#include "server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dispatch.h"
#include "host.h"
#include "log.h"
#include "metrics.h"
#include "reply.h"

#define MAX_TLS_FILE (1024 * 1024)

const char *bb_req_query(bb_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *bb_req_header(bb_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* X-Request-ID from the client is kept when it is 1-128 safe characters. */
static bool request_id_ok(const char *s)
{
    size_t n = 0;
    if (!s) return false;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= 128 || !(isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':')) return false;
    }
    return n > 0;
}

/* W3C traceparent: 00-<32 hex>-<16 hex>-<2 hex>, ids not all zero. */
static bool traceparent_ok(const char *s)
{
    static const int seg[] = { 2, 32, 16, 2 };
    const char *p = s;
    if (!s || strlen(s) != 55) return false;
    for (int i = 0; i < 4; i++) {
        bool nonzero = false;
        for (int j = 0; j < seg[i]; j++, p++) {
            if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p)) return false;
            nonzero |= *p != '0';
        }
        if ((i == 1 || i == 2) && !nonzero) return false;
        if (i < 3 && *p++ != '-') return false;
    }
    return strncmp(s, "ff", 2) != 0;
}

/* MHD's URI log callback runs once per request with the URI exactly as
 * sent; what it returns becomes *con_cls.  The request starts here so the
 * router sees the raw path: MHD percent-decodes the URL it passes to the
 * access handler, and a decoded "%2F" would be a real '/' by then (and
 * "%252e" would be decoded twice). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    bb_server *srv = cls;
    bb_req *req = calloc(1, sizeof *req);
    size_t n;
    if (!req) return NULL;
    n = strcspn(uri ? uri : "", "?");
    req->raw_path = malloc(n + 1);
    if (!req->raw_path) { free(req); return NULL; }
    memcpy(req->raw_path, uri ? uri : "", n);
    req->raw_path[n] = '\0';
    req->srv = srv;
    req->conn = conn;
    req->path = req->raw_path;
    req->start_ms = bb_now_ms();
    atomic_fetch_add(&srv->in_flight, 1);
    return req;
}

/* First access-handler call: headers are parsed now. */
static void req_start(bb_req *req, const char *method)
{
    struct MHD_Connection *conn = req->conn;
    const bb_settings *now = bb_settings_now(req->srv);   /* one snapshot: a reload may swap it meanwhile */
    const char *rid, *tp;
    req->started = true;
    req->method = method;
    req->deadline_ms = req->start_ms + now->request_timeout_ms;
    req->access_log = now->access_log;
    rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-ID");
    if (request_id_ok(rid)) snprintf(req->request_id, sizeof req->request_id, "%s", rid);
    else bb_new_ulid(req->request_id, sizeof req->request_id);
    tp = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent");
    if (traceparent_ok(tp)) snprintf(req->traceparent, sizeof req->traceparent, "%s", tp);
}

static void req_free(bb_req *req)
{
    if (req->stream_cleanup) req->stream_cleanup(req);
    for (int i = 0; i < BB_MAX_PATH_PARAMS; i++) free(req->params[i]);
    free(req->body);
    free(req->raw_path);
    atomic_fetch_sub(&req->srv->in_flight, 1);
    free(req);
}

/* Largest over-limit body read and dropped so its 413 arrives cleanly. */
#define DRAIN_MAX_BYTES (64ull << 20)

static bool body_append(bb_req *req, const char *data, size_t len, int64_t max)
{
    if (req->body_too_large) return true;
    if ((int64_t)(req->body_len + len) > max) {
        req->body_too_large = true;   /* keep reading (and dropping) so we can answer 413 */
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return true;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 1024;
        char *p;
        while (cap < req->body_len + len + 1) cap *= 2;
        p = realloc(req->body, cap);
        if (!p) return false;
        req->body = p;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return true;
}

/* Hand the request to the pipeline, with its ids on every log line. */
static enum MHD_Result dispatch_once(bb_req *req)
{
    enum MHD_Result ret;
    req->dispatched = true;
    bb_log_set_request(req->request_id, req->traceparent);
    ret = bb_dispatch(req);
    bb_log_clear_request();
    return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    bb_server *srv = cls;
    bb_req *req = *con_cls;
    (void)version;
    (void)url;   /* decoded; the router uses the raw path on_uri kept */
    if (!req) return MHD_NO;   /* on_uri could not allocate */
    if (!req->started) {
        /* First call: headers only.  Answering now would cost keep-alive. */
        const char *clen;
        req_start(req, method);
        /* A declared body over the limit.  If the client is waiting for
         * "100 Continue", nothing is in flight: answer 413 now.  Otherwise
         * the body is already coming: answering now would close the socket
         * with unread data, the kernel would reset it and the client could
         * lose the 413 — so it is read and dropped (body_append) and
         * answered at the end, unless it is absurdly large. */
        clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (clen && strtoull(clen, NULL, 10) > (unsigned long long)bb_settings_now(srv)->max_body) {
            const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
            req->body_too_large = true;
            if ((expect && strcasecmp(expect, "100-continue") == 0) || strtoull(clen, NULL, 10) > DRAIN_MAX_BYTES) {
                return dispatch_once(req);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        bool ok = body_append(req, upload_data, *upload_data_size, bb_settings_now(srv)->max_body);
        *upload_data_size = 0;
        return ok ? MHD_YES : MHD_NO;
    }
    if (req->dispatched) return MHD_YES;   /* a resumed stream calls back here */
    return dispatch_once(req);
}

/* logging.access: method, path as sent (no query string), status (0: none
 * was sent), duration, client address; a request the client or a timeout
 * cut short says so. */
static void access_line(bb_req *req, struct MHD_Connection *conn, enum MHD_RequestTerminationCode toe)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char addr[INET6_ADDRSTRLEN] = "-";
    bb_call call = bb_req_call(req);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr, sizeof addr);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, addr, sizeof addr);
    }
    bb_log_access(&call, "%s %s %u %lld ms %s%s", req->method ? req->method : "-", req->path ? req->path : "-",
                  req->status, (long long)(bb_now_ms() - req->start_ms), addr,
                  toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (ended early)");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    bb_req *req = *con_cls;
    (void)cls;
    if (!req) return;
    if (req->started && req->access_log) access_line(req, conn, toe);
    bb_dispatch_done(req, toe);
    req_free(req);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[1024];
    size_t n;
    (void)cls;
    vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    bb_log(BB_LOG_WARN, "mhd", "%s", line);
}

static bool parse_listen(const char *listen, struct sockaddr_storage *ss, char *why, size_t why_len)
{
    char host[256];
    const char *port_s;
    long port;
    memset(ss, 0, sizeof *ss);
    if (listen[0] == '[') {
        const char *end = strstr(listen, "]:");
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (!end || (size_t)(end - listen - 1) >= sizeof host) goto bad;
        snprintf(host, sizeof host, "%.*s", (int)(end - listen - 1), listen + 1);
        port_s = end + 2;
        a6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) goto bad;
        port = strtol(port_s, NULL, 10);
        a6->sin6_port = htons((uint16_t)port);
    } else {
        const char *colon = strrchr(listen, ':');
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
        if (!colon || (size_t)(colon - listen) >= sizeof host) goto bad;
        snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
        if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
        if (strcmp(host, "*") == 0 || host[0] == '\0') snprintf(host, sizeof host, "0.0.0.0");
        a4->sin_family = AF_INET;
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) goto bad;
        port = strtol(colon + 1, NULL, 10);
        a4->sin_port = htons((uint16_t)port);
    }
    return true;
bad:
    snprintf(why, why_len, "server.listen '%s' is not an IP address and port", listen);
    return false;
}

static char *slurp(const char *path, char *why, size_t why_len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;
    if (!f) { snprintf(why, why_len, "cannot read %s", path); return NULL; }
    buf = malloc(MAX_TLS_FILE + 1);
    if (!buf) { fclose(f); snprintf(why, why_len, "out of memory"); return NULL; }
    n = fread(buf, 1, MAX_TLS_FILE, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

bool bb_http_start(bb_server *srv, char *why, size_t why_len)
{
    const bb_cfg *root = bb_config_root(bb_app_config(srv->app));
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    const char *cert = bb_cfg_str(root, "server.tls.cert_file", ""), *key = bb_cfg_str(root, "server.tls.key_file", "");
    char *cert_pem = NULL, *key_pem = NULL;
    unsigned threads = (unsigned)bb_cfg_i64(root, "server.threads", 4);
    unsigned timeout_s = (unsigned)((bb_cfg_i64(root, "server.connection_timeout", 30000) + 999) / 1000);

    if (!parse_listen(bb_cfg_str(root, "server.listen", "127.0.0.1:8080"), &ss, why, why_len)) return false;
    flags |= strcmp(bb_cfg_str(root, "server.poll", "poll"), "epoll") == 0 ? MHD_USE_EPOLL : MHD_USE_POLL;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    if (cert[0]) {
        if (!(cert_pem = slurp(cert, why, why_len)) || !(key_pem = slurp(key, why, why_len))) {
            free(cert_pem);
            return false;
        }
        flags |= MHD_USE_TLS;
    }
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)bb_cfg_i64(root, "server.max_connections", 4096),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)bb_cfg_i64(root, "server.max_connections_per_ip", 0),
        MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)bb_cfg_i64(root, "server.max_header", 32768),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
        cert_pem ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert_pem,
        MHD_OPTION_HTTPS_MEM_KEY, key_pem,
        MHD_OPTION_END);
    /* MHD copies nothing: the PEM buffers must outlive the daemon; they are
     * small and live until exit (freed by bb_http_stop). */
    if (!srv->daemon) {
        free(cert_pem);
        free(key_pem);
        snprintf(why, why_len, "cannot listen on %s (address in use, or TLS files invalid?)",
                 bb_cfg_str(root, "server.listen", "?"));
        return false;
    }
    srv->tls_cert = cert_pem;
    srv->tls_key = key_pem;
    return true;
}

void bb_http_stop(bb_server *srv, int64_t grace_ms)
{
    int64_t until = bb_now_ms() + grace_ms;
    MHD_socket lsock;
    if (!srv->daemon) return;
    atomic_store(&srv->stopping, true);
    lsock = MHD_quiesce_daemon(srv->daemon);
    if (lsock != MHD_INVALID_SOCKET) close(lsock);
    bb_dispatch_shutdown(srv);   /* ends streams so their requests complete */
    while (atomic_load(&srv->in_flight) > 0 && bb_now_ms() < until) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);   /* bounded by grace_ms; in-flight work has no completion signal */
    }
    if (atomic_load(&srv->in_flight) > 0)
        bb_warn("http", "%d requests still running after shutdown_grace_ms; closing them", atomic_load(&srv->in_flight));
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
    free(srv->tls_cert);
    free(srv->tls_key);
    srv->tls_cert = srv->tls_key = NULL;
}
