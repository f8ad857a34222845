/*
 * tests/rest_env.h — shared helpers of the REST suites: a real botboard on
 * SQLite with two teams and their keys, HTTP calls that record every
 * response (tests/test_rest_openapi.c validates them all against the
 * served OpenAPI document), and small JSON helpers.
 */
#ifndef BB_TESTS_REST_ENV_H
#define BB_TESTS_REST_ENV_H

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <errno.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bbtest.h"

/* Each program names its record files (define before including). */
#ifndef REST_SUITE
#define REST_SUITE "rest"
#endif

/* The config, in pieces a test may extend: each slot is YAML text
 * indented to go under its section (or "" for nothing). */
#define REST_CONFIG_FMT \
    "server:\n  listen: 127.0.0.1:{{PORT}}\n  max_body: 64KiB\n  shutdown_grace_ms: 3000\n%s" \
    "plugins:\n  path: [\"" BB_ABS_BUILDDIR "/tests/plugins/.libs\"]\n" \
    "storage:\n  backend: sqlite\n  sqlite:\n    path: \"{{DIR}}/bb.db\"\n%s" \
    "session:\n  backend: fake\nupstream:\n  backend: fake\n" \
    "bootstrap:\n  key_file: dev.key\nlogging:\n  format: json\n  level: %s\n%s"

typedef struct rest_cfg {
    const char *server;    /* lines under server: */
    const char *storage;   /* lines under storage: (after sqlite.path, so "    key: v" adds sqlite keys) */
    const char *level;     /* logging.level, default info */
    const char *tail;      /* whole top-level sections (auth:, ratelimit:, ...); default REST_NO_LIMITS */
} rest_cfg;

/* Generous limits so functional suites never meet the limiter. */
#define REST_NO_LIMITS \
    "ratelimit:\n  read: { per_minute: 10000000, burst: 1000000 }\n" \
    "  write: { per_minute: 10000000, burst: 1000000 }\n  delete: { per_minute: 10000000, burst: 1000000 }\n"

typedef struct rest_env {
    bbt_server s;
    char key_a[128];     /* team alpha */
    char key_b[128];     /* team beta */
    char key_a_id[64];   /* its public id (for revoke) */
} rest_env;

/* Where responses are recorded for the document-vs-server check. */
static inline const char *rest_record_dir(void)
{
    static char dir[1024];
    const char *b = getenv("BB_BUILDDIR");
    snprintf(dir, sizeof dir, "%s/tests/rest-recorded", b && *b ? b : BB_ABS_BUILDDIR);
    return dir;
}

static inline void rest_trim(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
}

/* "key <id> created for team ..." on stderr gives the id. */
static inline void rest_make_key(rest_env *e, const char *team, char *key, size_t key_len, char *id, size_t id_len)
{
    const char *args[] = { "key", "create", "--team", team, NULL };
    char *out = NULL, *err = NULL;
    int rc = bbt_botboard_cli(e->s.config_path, args, &out, &err);
    cr_assert_eq(rc, 0, "key create failed: %s", err ? err : "");
    snprintf(key, key_len, "%s", out ? out : "");
    rest_trim(key);
    if (id) {
        const char *p = err ? strstr(err, "key ") : NULL;
        id[0] = '\0';
        if (p) sscanf(p + 4, "%63s", id);
        (void)id_len;
    }
    free(out);
    free(err);
}

static inline void rest_make_team(rest_env *e, const char *team)
{
    const char *args[] = { "team", "create", team, NULL };
    char *err = NULL;
    int rc = bbt_botboard_cli(e->s.config_path, args, NULL, &err);
    cr_assert_eq(rc, 0, "team create %s failed: %s", team, err ? err : "");
    free(err);
}

/* Start botboard on the given config pieces (NULL: defaults), teams alpha
 * and beta, a key each. */
static inline void rest_start_cfg(rest_env *e, const rest_cfg *c)
{
    static const rest_cfg none;
    char yaml[8192], why[4096];
    if (!c) c = &none;
    memset(e, 0, sizeof *e);
    snprintf(yaml, sizeof yaml, REST_CONFIG_FMT, c->server ? c->server : "", c->storage ? c->storage : "",
             c->level ? c->level : "info", c->tail ? c->tail : REST_NO_LIMITS);
    if (!bbt_server_start(&e->s, yaml, why, sizeof why)) cr_assert_fail("botboard did not start: %s", why);
    rest_make_team(e, "alpha");
    rest_make_team(e, "beta");
    rest_make_key(e, "alpha", e->key_a, sizeof e->key_a, e->key_a_id, sizeof e->key_a_id);
    rest_make_key(e, "beta", e->key_b, sizeof e->key_b, NULL, 0);
    cr_assert(strncmp(e->key_a, "bbk_", 4) == 0, "key: %s", e->key_a);
}

/* Defaults plus top-level sections `tail` (NULL: REST_NO_LIMITS). */
static inline void rest_start(rest_env *e, const char *tail)
{
    rest_cfg c = { .tail = tail };
    rest_start_cfg(e, &c);
}

static inline void rest_stop(rest_env *e)
{
    cr_expect_eq(bbt_server_stop(&e->s), 0, "botboard did not exit 0");
    bbt_server_destroy(&e->s);
}

/* Headers block → {"lower-name": "value"}. */
static inline json_t *rest_headers_json(const char *raw)
{
    json_t *h = json_object();
    const char *line = raw;
    while (line && *line) {
        const char *end = strstr(line, "\r\n"), *colon;
        size_t len = end ? (size_t)(end - line) : strlen(line);
        colon = memchr(line, ':', len);
        if (colon && line[0] != ' ') {
            char name[128], value[4096];
            size_t nl = (size_t)(colon - line), vl;
            const char *v = colon + 1;
            while (v < line + len && *v == ' ') v++;
            vl = (size_t)(line + len - v);
            if (nl < sizeof name && vl < sizeof value) {
                for (size_t i = 0; i < nl; i++) name[i] = (char)tolower((unsigned char)line[i]);
                name[nl] = '\0';
                memcpy(value, v, vl);
                value[vl] = '\0';
                json_object_set_new(h, name, json_string(value));
            }
        } else if (strncmp(line, "HTTP/", 5) == 0) {
            json_object_clear(h);   /* a new status line (e.g. after 100 Continue) */
        }
        line = end ? end + 2 : NULL;
    }
    return h;
}

/* Forget what an earlier run of this program recorded (ReportHook(PRE_ALL)). */
static inline void rest_record_reset(void)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -f '%s/%s-'*.jsonl", rest_record_dir(), REST_SUITE);
    if (system(cmd) != 0) { /* nothing recorded yet */ }
}

/* Append one exchange to the record (best effort: a failure to record
 * shows up as a missing response count in the OpenAPI suite). */
static inline void rest_record(const char *method, const char *path, const bbt_response *r)
{
    char file[1200];
    json_t *j, *body = NULL;
    char *line;
    FILE *f;
    /* 431 comes from libmicrohttpd itself before the request reaches the
     * API (an HTML page, described in the document's introduction). */
    if (r->status == 0 || r->status == 431) return;
    mkdir(rest_record_dir(), 0755);
    snprintf(file, sizeof file, "%s/%s-%d.jsonl", rest_record_dir(), REST_SUITE, (int)getpid());
    if (r->body && r->body_len) body = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, NULL);
    if (!body) body = r->body_len ? json_stringn_nocheck(r->body, r->body_len) : json_null();
    j = json_pack("{s:s, s:s, s:I, s:o, s:o}", "method", method, "path", path, "status", (json_int_t)r->status,
                  "headers", rest_headers_json(r->headers ? r->headers : ""), "body", body ? body : json_null());
    line = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(j);
    if (!line) return;
    f = fopen(file, "a");
    if (f) {
        fprintf(f, "%s\n", line);
        fclose(f);
    }
    free(line);
}

/* One call: method, path (with query), optional key header line, body and
 * content type.  auth is a full header ("Authorization: Bearer ...") or NULL. */
static inline bbt_response rest_call_h(rest_env *e, const char *method, const char *path, const char *const *extra,
                                       const char *body, size_t body_len)
{
    char url[16384];
    bbt_response r;
    snprintf(url, sizeof url, "%s%s", e->s.base_url, path);
    cr_assert(bbt_http(method, url, extra, body, body_len, &r), "transport failure on %s %s", method, path);
    rest_record(method, path, &r);
    return r;
}

static inline bbt_response rest_call(rest_env *e, const char *method, const char *path, const char *key,
                                     const char *json_body)
{
    char auth[256];
    const char *hdrs[4];
    int n = 0;
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        hdrs[n++] = auth;
    }
    if (json_body) hdrs[n++] = "Content-Type: application/json";
    hdrs[n] = NULL;
    return rest_call_h(e, method, path, hdrs, json_body, json_body ? strlen(json_body) : 0);
}

static inline json_t *rest_json(const bbt_response *r)
{
    json_t *j = json_loadb(r->body ? r->body : "", r->body_len, JSON_DECODE_ANY, NULL);
    cr_assert(j, "response is not JSON: %s", r->body ? r->body : "");
    return j;
}

/* Assert status and (for errors) the envelope's code; returns the body. */
static inline void rest_expect_error(const bbt_response *r, long status, const char *code, const char *what)
{
    json_t *j;
    cr_expect_eq(r->status, status, "%s: status %ld, want %ld: %s", what, r->status, status, r->body);
    if (r->status != status) return;
    j = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
    cr_expect(j != NULL, "%s: error body is not JSON: %s", what, r->body);
    if (!j) return;
    cr_expect_str_eq(json_string_value(json_object_get(j, "code")) ? json_string_value(json_object_get(j, "code")) : "",
                     code, "%s: %s", what, r->body);
    cr_expect(json_is_object(json_object_get(j, "details")), "%s: no details: %s", what, r->body);
    cr_expect(json_is_string(json_object_get(j, "request_id")), "%s: no request_id: %s", what, r->body);
    cr_expect(json_is_string(json_object_get(j, "error")), "%s: no error text: %s", what, r->body);
    json_decref(j);
}

/* Create a post, assert 201, return its id (static buffer per call site is
 * the caller's: copy it). */
static inline void rest_create(rest_env *e, const char *key, const char *team, const char *body, char *id, size_t id_len)
{
    char path[256];
    bbt_response r;
    json_t *j;
    snprintf(path, sizeof path, "/v1/teams/%s/posts", team);
    r = rest_call(e, "POST", path, key, body);
    cr_assert_eq(r.status, 201, "create: %ld %s", r.status, r.body);
    j = rest_json(&r);
    snprintf(id, id_len, "%s", json_string_value(json_object_get(j, "postId")));
    json_decref(j);
    bbt_response_free(&r);
}

#endif
