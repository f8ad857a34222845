/*
 * tests/support/http.c — one HTTP exchange per call, through libcurl.
 *
 * The client is deliberately literal so tests see exactly what the server
 * did: no redirects followed, no proxy from the environment, no implicit
 * Content-Type (curl would add a form type to every body) and no
 * "Expect: 100-continue" round trip.  Pass the headers you mean.
 * Every call is bounded by a total timeout.
 */
#include "internal.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    HTTP_TIMEOUT_MS         = 30000,
    HTTP_CONNECT_TIMEOUT_MS = 5000,
    RESPONSE_LIMIT          = 64 * 1024 * 1024,
};

typedef struct buf {
    char  *data;
    size_t len, cap;
    bool   failed;
} buf;

static bool buf_add(buf *b, const char *src, size_t n)
{
    if (b->failed)
        return false;
    if (b->len + n + 1 > b->cap) {
        if (b->len + n + 1 > RESPONSE_LIMIT) {
            b->failed = true;
            return false;
        }
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return false;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    size_t n = size * nmemb;
    return buf_add(ud, ptr, n) ? n : 0;
}

/* Keep only the final header block: an interim 1xx response starts a new
 * block with its own status line. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    size_t n = size * nmemb;
    buf *b = ud;
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0)
        b->len = 0;
    return buf_add(b, ptr, n) ? n : 0;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool has_header(const char *const headers[], const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; headers && headers[i]; i++)
        if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':')
            return true;
    return false;
}

static char *dup_or_empty(const buf *b)
{
    if (b->data && !b->failed)
        return b->data;
    free(b->data);
    return strdup("");
}

bool bbt_http_timeout(const char *method, const char *url, const char *const headers[],
                      const char *body, size_t body_len, int timeout_ms, bbt_response *r)
{
    if (!r)
        return false;
    memset(r, 0, sizeof *r);
    char errbuf[CURL_ERROR_SIZE] = "";
    buf b = { 0 }, h = { 0 };
    struct curl_slist *hl = NULL;
    CURL *c = NULL;
    CURLcode rc = CURLE_FAILED_INIT;
    bool list_ok = true;

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK || !method || !url || !(c = curl_easy_init()))
        goto done;
    for (size_t i = 0; headers && headers[i] && list_ok; i++) {
        struct curl_slist *n = curl_slist_append(hl, headers[i]);
        list_ok = n != NULL;
        hl = n ? n : hl;
    }
    /* "Name:" with nothing after it tells curl not to send its default. */
    static const char *const suppressed[] = { "Expect", "Content-Type" };
    for (size_t i = 0; i < sizeof suppressed / sizeof suppressed[0] && list_ok; i++) {
        if (has_header(headers, suppressed[i]))
            continue;
        char line[32];
        snprintf(line, sizeof line, "%s:", suppressed[i]);
        struct curl_slist *n = curl_slist_append(hl, line);
        list_ok = n != NULL;
        hl = n ? n : hl;
    }
    if (!list_ok) {
        snprintf(errbuf, sizeof errbuf, "out of memory building headers");
        goto done;
    }

    bool ok = curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK &&
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
        curl_easy_setopt(c, CURLOPT_PROXY, "") == CURLE_OK &&
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : HTTP_TIMEOUT_MS)) == CURLE_OK &&
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)HTTP_CONNECT_TIMEOUT_MS) == CURLE_OK &&
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl) == CURLE_OK &&
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b) == CURLE_OK &&
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &h) == CURLE_OK;
    if (ok && body)
        ok = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) == CURLE_OK;
    if (ok && strcmp(method, "HEAD") == 0)
        ok = curl_easy_setopt(c, CURLOPT_NOBODY, 1L) == CURLE_OK;
    else if (ok && !(strcmp(method, "GET") == 0 && !body))
        ok = curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
    if (!ok) {
        snprintf(errbuf, sizeof errbuf, "curl_easy_setopt failed");
        goto done;
    }

    rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    /* A timeout after the status line is how a stream (SSE) ends here:
     * keep what arrived.  Any other transport error means status 0. */
    if (rc == CURLE_OK || (rc == CURLE_OPERATION_TIMEDOUT && timeout_ms > 0 && status > 0))
        r->status = status;

done:
    if (c)
        curl_easy_cleanup(c);
    curl_slist_free_all(hl);
    if (r->status == 0) {
        /* Transport failure: the body says why, for assertion messages. */
        free(b.data);
        b = (buf){ 0 };
        const char *msg = errbuf[0] ? errbuf : curl_easy_strerror(rc);
        buf_add(&b, msg, strlen(msg));
    }
    r->body = dup_or_empty(&b);
    r->body_len = r->body && !b.failed ? b.len : 0;
    r->headers = dup_or_empty(&h);
    if (!r->body || !r->headers) {
        bbt_response_free(r);
        return false;
    }
    return r->status != 0;
}

bool bbt_http(const char *method, const char *url, const char *const headers[],
              const char *body, size_t body_len, bbt_response *r)
{
    return bbt_http_timeout(method, url, headers, body, body_len, 0, r);
}

char *bbt_header(const bbt_response *r, const char *name)
{
    if (!r || !r->headers || !name)
        return NULL;
    size_t n = strlen(name);
    for (const char *line = r->headers; *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            const char *v = line + n + 1, *end = line + len;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
            return strndup(v, (size_t)(end - v));
        }
        if (!eol)
            break;
        line = eol + 1;
    }
    return NULL;
}

void bbt_response_free(bbt_response *r)
{
    if (!r)
        return;
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}
