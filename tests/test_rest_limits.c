/*
 * tests/test_rest_limits.c — limits of the REST server, against the real
 * binary: rate limits per key and class (burst, 429 + headers, refill),
 * the shared-counter mode, connections per client address, slow clients,
 * and HTTPS with a self-signed certificate made by openssl.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#define REST_SUITE "limits"
#include "rest_env.h"

ReportHook(PRE_ALL)(struct criterion_test_set *tests)
{
    (void)tests;
    rest_record_reset();
}

#define TIGHT_WRITES \
    "ratelimit:\n  read: { per_minute: 10000000, burst: 1000000 }\n" \
    "  write: { per_minute: 600, burst: 3 }\n  delete: { per_minute: 10000000, burst: 1000000 }\n"

static long header_num(const bbt_response *r, const char *name)
{
    char *v = bbt_header(r, name);
    long n = v ? strtol(v, NULL, 10) : -1;
    free(v);
    return n;
}

static void burst_then_429_then_refill(const char *tail)
{
    rest_env e;
    bbt_response r;
    long status = 0;
    rest_start(&e, tail);

    for (int i = 0; i < 3; i++) {
        r = rest_call(&e, "POST", "/v1/teams/alpha/posts", e.key_a, "{\"author\":\"a\",\"content\":\"burst\"}");
        cr_expect_eq(r.status, 201, "write %d of the burst: %ld %s", i, r.status, r.body);
        cr_expect_eq(header_num(&r, "X-RateLimit-Limit"), 3);
        cr_expect_eq(header_num(&r, "X-RateLimit-Remaining"), 2 - i);
        cr_expect_geq(header_num(&r, "X-RateLimit-Reset"), 0);
        bbt_response_free(&r);
    }
    r = rest_call(&e, "POST", "/v1/teams/alpha/posts", e.key_a, "{\"author\":\"a\",\"content\":\"over\"}");
    rest_expect_error(&r, 429, "RATE_LIMITED", "fourth write");
    cr_expect_geq(header_num(&r, "Retry-After"), 1);
    cr_expect_eq(header_num(&r, "X-RateLimit-Remaining"), 0);
    cr_expect_eq(header_num(&r, "X-RateLimit-Limit"), 3);
    cr_expect_geq(header_num(&r, "X-RateLimit-Reset"), 1);
    bbt_response_free(&r);

    /* other classes and other keys have their own buckets */
    r = rest_call(&e, "GET", "/v1/teams/alpha/posts", e.key_a, NULL);
    cr_expect_eq(r.status, 200, "reads are a separate class");
    cr_expect(header_num(&r, "X-RateLimit-Remaining") > 1000);
    bbt_response_free(&r);
    r = rest_call(&e, "POST", "/v1/teams/beta/posts", e.key_b, "{\"author\":\"b\",\"content\":\"mine\"}");
    cr_expect_eq(r.status, 201, "another key is not limited: %s", r.body);
    bbt_response_free(&r);

    /* refill: 600/min is one token per 100 ms; poll, bounded to 3 s */
    for (int i = 0; i < 60 && status != 201; i++) {
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);   /* waiting for the bucket to refill is the point of this loop */
        r = rest_call(&e, "POST", "/v1/teams/alpha/posts", e.key_a, "{\"author\":\"a\",\"content\":\"refilled\"}");
        status = r.status;
        cr_expect(status == 201 || status == 429, "%ld %s", status, r.body);
        bbt_response_free(&r);
    }
    cr_expect_eq(status, 201, "the bucket never refilled");
    rest_stop(&e);
}

Test(limits, write_burst_then_429_then_refill, .timeout = 60)
{
    burst_then_429_then_refill(TIGHT_WRITES);
}

/* ratelimit.shared: counts in the session backend when it offers hit();
 * the suite's session plugin has none, so the in-process buckets must
 * still hold the line (never fail open). */
Test(limits, shared_mode_still_limits, .timeout = 60)
{
    burst_then_429_then_refill(TIGHT_WRITES "  shared: true\n");
}

/* ---- connections ------------------------------------------------------------ */

static int connect_to(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* true when the server closed fd within ms (read returns 0 or an error). */
static bool closed_within(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char buf[512];
    int64_t waited = 0;
    while (waited < ms) {
        int n = poll(&p, 1, 100);
        waited += 100;
        if (n > 0) {
            ssize_t got = recv(fd, buf, sizeof buf, 0);
            if (got <= 0) return true;
        }
    }
    return false;
}

Test(limits, connections_per_client_address, .timeout = 60)
{
    rest_env e;
    rest_cfg c = { .server = "  max_connections_per_ip: 3\n" };
    int fds[3];
    bbt_response r;
    rest_start_cfg(&e, &c);
    for (int i = 0; i < 3; i++) fds[i] = connect_to(e.s.port);
    /* the fourth is closed at once; the server still serves after the others go */
    {
        int extra = connect_to(e.s.port);
        const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        if (send(extra, req, sizeof req - 1, MSG_NOSIGNAL) < 0) { /* closed already: fine */ }
        cr_expect(closed_within(extra, 3000), "a 4th connection from one address was served");
        close(extra);
    }
    for (int i = 0; i < 3; i++) close(fds[i]);
    for (int i = 0; i < 50; i++) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        char url[256];
        /* Until MHD has noticed the closed sockets the new connection is
         * refused too (a transport failure, status 0): poll again. */
        snprintf(url, sizeof url, "%s/healthz", e.s.base_url);
        if (bbt_http("GET", url, NULL, NULL, 0, &r) && r.status != 0) rest_record("GET", "/healthz", &r);
        if (r.status == 200) break;
        bbt_response_free(&r);
        nanosleep(&ts, NULL);   /* MHD notices the closed sockets on its next poll */
    }
    cr_expect_eq(r.status, 200);
    bbt_response_free(&r);
    rest_stop(&e);
}

Test(limits, slow_client_is_dropped_and_others_are_served, .timeout = 60)
{
    rest_env e;
    rest_cfg c = { .server = "  connection_timeout: 1s\n" };
    int slow;
    bbt_response r;
    const char partial[] = "POST /v1/teams/alpha/posts HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"au";
    rest_start_cfg(&e, &c);
    slow = connect_to(e.s.port);
    cr_assert_eq(send(slow, partial, sizeof partial - 1, MSG_NOSIGNAL), (ssize_t)(sizeof partial - 1));
    r = rest_call(&e, "GET", "/healthz", NULL, NULL);
    cr_expect_eq(r.status, 200, "a slow upload blocked other clients");
    bbt_response_free(&r);
    cr_expect(closed_within(slow, 5000), "the stalled upload was never dropped (connection_timeout 1s)");
    close(slow);
    rest_stop(&e);
}

/* ---- TLS ---------------------------------------------------------------------- */

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return s * n;
}

static long https_get(const char *url, const char *ca, const char *key_header)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    long status = 0;
    cr_assert(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (key_header) {
        h = curl_slist_append(h, key_header);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    }
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

Test(limits, https_with_a_self_signed_certificate, .timeout = 90)
{
    char *dir = bbt_tempdir("rest-tls"), cmd[2048], yaml[4096], cfg[1024], url[256], *bin, log[1024];
    bbt_proc p;
    int port = bbt_free_port(), rc;
    long status = 0;
    cr_assert(dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 -keyout '%s/key.pem' -out '%s/cert.pem' >'%s/openssl.log' 2>&1",
             dir, dir, dir);
    rc = system(cmd);
    if (rc != 0) cr_skip_test("openssl could not make a certificate (is it installed?)");
    snprintf(yaml, sizeof yaml,
             "server:\n  listen: 127.0.0.1:%d\n  tls:\n    cert_file: cert.pem\n    key_file: key.pem\n"
             "plugins:\n  path: [\"" BB_ABS_BUILDDIR "/tests/plugins/.libs\"]\n"
             "storage:\n  backend: sqlite\n  sqlite:\n    path: bb.db\n"
             "session:\n  backend: fake\nupstream:\n  backend: fake\nbootstrap:\n  key_file: dev.key\n"
             "logging:\n  format: json\n",
             port);
    free(bbt_write_file(dir, "botboard.yaml", yaml));
    snprintf(cfg, sizeof cfg, "%s/botboard.yaml", dir);
    snprintf(log, sizeof log, "%s/botboard.log", dir);
    bin = bbt_build_path("botboard");
    {
        char *const argv[] = { bin, "serve", "-c", cfg, NULL };
        cr_assert(bbt_proc_start(&p, argv, NULL, log));
    }
    snprintf(url, sizeof url, "https://127.0.0.1:%d/healthz", port);
    snprintf(cmd, sizeof cmd, "%s/cert.pem", dir);
    for (int i = 0; i < 150 && status != 200; i++) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        status = https_get(url, cmd, NULL);
        if (status != 200) nanosleep(&ts, NULL);   /* polling for start-up, bounded to 3 s */
    }
    cr_expect_eq(status, 200, "no HTTPS answer from /healthz: %s", bbt_read_file(log, NULL));
    {
        char k[160];
        snprintf(url, sizeof url, "https://127.0.0.1:%d/v1/teams/default/posts", port);
        snprintf(k, sizeof k, "x-api-key: bbk_unknown");
        long st = https_get(url, cmd, k);
        cr_expect_eq(st, 401, "the API over HTTPS: %ld", st);
    }
    /* plain HTTP on the TLS port gets no HTTP answer */
    {
        bbt_response r;
        snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", port);
        bbt_http_timeout("GET", url, NULL, NULL, 0, 2000, &r);
        cr_expect_neq(r.status, 200, "plain HTTP was served on the TLS listener");
        bbt_response_free(&r);
    }
    bbt_proc_stop(&p, 5000);
    free(bin);
    bbt_rmtree(dir);
    free(dir);
}
