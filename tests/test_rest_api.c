/*
 * tests/test_rest_api.c — the REST API v1 against the real botboard binary
 * on SQLite, over HTTP: every route and status, both auth headers,
 * cross-team 403, revoked keys, 40+ hostile requests, idempotency (also
 * under 20 concurrent POSTs), request ids and traceparent in the log,
 * metrics by route template, storage UNAVAILABLE → 503.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <time.h>

#define REST_SUITE "api"
#include "rest_env.h"

ReportHook(PRE_ALL)(struct criterion_test_set *tests)
{
    (void)tests;
    rest_record_reset();
}

static json_t *get_json(rest_env *e, const char *path, const char *key, long want)
{
    bbt_response r = rest_call(e, "GET", path, key, NULL);
    json_t *j;
    cr_assert_eq(r.status, want, "GET %s: %ld %s", path, r.status, r.body);
    j = rest_json(&r);
    bbt_response_free(&r);
    return j;
}

static const char *str_of(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

Test(rest, every_route_and_status, .timeout = 60)
{
    rest_env e;
    char root[64], reply[64], other[64], path[512];
    json_t *j, *p, *posts;
    bbt_response r;

    rest_start(&e, NULL);

    /* create: camelCase, then a snake_case reply */
    rest_create(&e, e.key_a, "alpha", "{\"author\":\"alice\",\"content\":\"hello world\",\"tags\":[\"news\",\"x\"]}",
                root, sizeof root);
    snprintf(path, sizeof path, "{\"author_name\":\"bob\",\"content\":\"a reply\",\"parent_post_id\":\"%s\",\"tags\":[\"x\"]}",
             root);
    rest_create(&e, e.key_a, "alpha", path, reply, sizeof reply);
    rest_create(&e, e.key_a, "alpha", "{\"author\":\"carol\",\"content\":\"other thread\"}", other, sizeof other);

    /* get: exactly the wire format */
    snprintf(path, sizeof path, "/v1/teams/alpha/posts/%s", reply);
    p = get_json(&e, path, e.key_a, 200);
    cr_expect_str_eq(str_of(p, "postId"), reply);
    cr_expect_str_eq(str_of(p, "author"), "bob");
    cr_expect_str_eq(str_of(p, "content"), "a reply");
    cr_expect_str_eq(str_of(p, "parentPostId"), root);
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(p, "tags"), 0)), "x");
    cr_expect(json_integer_value(json_object_get(json_object_get(p, "createdAt"), "_seconds")) > 1700000000);
    json_decref(p);

    /* list: newest first, page fields, each filter */
    j = get_json(&e, "/v1/teams/alpha/posts", e.key_a, 200);
    posts = json_object_get(j, "posts");
    cr_expect_eq(json_array_size(posts), 3);
    cr_expect_eq(json_integer_value(json_object_get(j, "totalCount")), 3);
    cr_expect(json_is_null(json_object_get(j, "nextOffset")));
    cr_expect_str_eq(str_of(json_array_get(posts, 0), "postId"), other);
    cr_expect(json_is_null(json_object_get(json_array_get(posts, 0), "parentPostId")));
    json_decref(j);

    j = get_json(&e, "/v1/teams/alpha/posts?limit=1&offset=1", e.key_a, 200);
    cr_expect_eq(json_array_size(json_object_get(j, "posts")), 1);
    cr_expect_str_eq(str_of(j, "nextOffset"), "2");
    cr_expect_str_eq(str_of(json_array_get(json_object_get(j, "posts"), 0), "postId"), reply);
    json_decref(j);

    j = get_json(&e, "/v1/teams/alpha/posts?sort=asc&limit=1", e.key_a, 200);
    cr_expect_str_eq(str_of(json_array_get(json_object_get(j, "posts"), 0), "postId"), root);
    json_decref(j);

    j = get_json(&e, "/v1/teams/alpha/posts?agent=bob", e.key_a, 200);
    cr_expect_eq(json_integer_value(json_object_get(j, "totalCount")), 1);
    json_decref(j);

    j = get_json(&e, "/v1/teams/alpha/posts?tag=x", e.key_a, 200);
    cr_expect_eq(json_integer_value(json_object_get(j, "totalCount")), 2);
    json_decref(j);

    snprintf(path, sizeof path, "/v1/teams/alpha/posts?thread_id=%s", root);
    j = get_json(&e, path, e.key_a, 200);
    cr_expect_eq(json_integer_value(json_object_get(j, "totalCount")), 2);
    json_decref(j);

    j = get_json(&e, "/v1/teams/alpha/posts?agent=alice&tag=news&limit=100&offset=0", e.key_a, 200);
    cr_expect_eq(json_integer_value(json_object_get(j, "totalCount")), 1);
    json_decref(j);

    j = get_json(&e, "/v1/teams/alpha/posts?offset=50", e.key_a, 200);
    cr_expect_eq(json_array_size(json_object_get(j, "posts")), 0);
    cr_expect(json_is_null(json_object_get(j, "nextOffset")));
    json_decref(j);

    /* team info */
    j = get_json(&e, "/v1/teams/alpha", e.key_a, 200);
    cr_expect_str_eq(str_of(j, "name"), "alpha");
    json_decref(j);

    /* parent rules: missing, other team's, deleted */
    r = rest_call(&e, "POST", "/v1/teams/alpha/posts", e.key_a,
                  "{\"author\":\"a\",\"content\":\"c\",\"parentPostId\":\"01NOSUCHPOST\"}");
    rest_expect_error(&r, 404, "PARENT_NOT_FOUND", "missing parent");
    bbt_response_free(&r);
    snprintf(path, sizeof path, "{\"author\":\"a\",\"content\":\"c\",\"parentPostId\":\"%s\"}", root);
    r = rest_call(&e, "POST", "/v1/teams/beta/posts", e.key_b, path);
    rest_expect_error(&r, 404, "PARENT_NOT_FOUND", "parent in another team");
    bbt_response_free(&r);

    /* delete → 204, then gone everywhere */
    snprintf(path, sizeof path, "/v1/teams/alpha/posts/%s", other);
    r = rest_call(&e, "DELETE", path, e.key_a, NULL);
    cr_expect_eq(r.status, 204, "%s", r.body);
    cr_expect_eq(r.body_len, 0);
    bbt_response_free(&r);
    r = rest_call(&e, "GET", path, e.key_a, NULL);
    rest_expect_error(&r, 404, "NOT_FOUND", "get deleted");
    bbt_response_free(&r);
    r = rest_call(&e, "DELETE", path, e.key_a, NULL);
    rest_expect_error(&r, 404, "NOT_FOUND", "delete twice");
    bbt_response_free(&r);
    snprintf(path, sizeof path, "{\"author\":\"a\",\"content\":\"c\",\"parentPostId\":\"%s\"}", other);
    r = rest_call(&e, "POST", "/v1/teams/alpha/posts", e.key_a, path);
    rest_expect_error(&r, 404, "PARENT_NOT_FOUND", "deleted parent");
    bbt_response_free(&r);
    j = get_json(&e, "/v1/teams/alpha/posts", e.key_a, 200);
    cr_expect_eq(json_integer_value(json_object_get(j, "totalCount")), 2);
    json_decref(j);
    r = rest_call(&e, "GET", "/v1/teams/alpha/posts/01NOSUCHPOST", e.key_a, NULL);
    rest_expect_error(&r, 404, "NOT_FOUND", "unknown id");
    bbt_response_free(&r);

    /* the document, unknown path, wrong method */
    r = rest_call(&e, "GET", "/v1/openapi.yaml", NULL, NULL);
    cr_expect_eq(r.status, 200);
    cr_expect(r.body && strncmp(r.body, "openapi: 3.1", 12) == 0);
    bbt_response_free(&r);
    r = rest_call(&e, "GET", "/v1/nothing", e.key_a, NULL);
    rest_expect_error(&r, 404, "NOT_FOUND", "unknown path");
    bbt_response_free(&r);
    r = rest_call(&e, "PUT", "/v1/teams/alpha/posts", e.key_a, "{}");
    rest_expect_error(&r, 405, "METHOD_NOT_ALLOWED", "PUT");
    {
        char *allow = bbt_header(&r, "Allow");
        cr_expect(allow && strstr(allow, "GET") && strstr(allow, "POST"), "Allow: %s", allow ? allow : "(none)");
        free(allow);
    }
    bbt_response_free(&r);
    r = rest_call(&e, "GET", "/healthz", NULL, NULL);
    cr_expect_eq(r.status, 200);
    bbt_response_free(&r);
    r = rest_call(&e, "GET", "/readyz", NULL, NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    bbt_response_free(&r);
    rest_stop(&e);
}

Test(rest, auth_headers_cross_team_and_revoke, .timeout = 60)
{
    rest_env e;
    bbt_response r;
    char hdr[256], *www;
    const char *h[2] = { hdr, NULL };

    rest_start(&e, "auth:\n  cache_ttl_ms: 300\n" REST_NO_LIMITS);

    r = rest_call(&e, "GET", "/v1/teams/alpha/posts", NULL, NULL);
    rest_expect_error(&r, 401, "AUTH_FAILED", "no key");
    www = bbt_header(&r, "WWW-Authenticate");
    cr_expect(www && strncmp(www, "Bearer", 6) == 0, "WWW-Authenticate: %s", www ? www : "(none)");
    free(www);
    bbt_response_free(&r);

    r = rest_call(&e, "GET", "/v1/teams/alpha/posts", "bbk_not_a_real_key_at_all_000000000000000000", NULL);
    rest_expect_error(&r, 401, "AUTH_FAILED", "unknown key");
    bbt_response_free(&r);

    snprintf(hdr, sizeof hdr, "x-api-key: %s", e.key_a);
    r = rest_call_h(&e, "GET", "/v1/teams/alpha/posts", h, NULL, 0);
    cr_expect_eq(r.status, 200, "x-api-key: %s", r.body);
    bbt_response_free(&r);
    snprintf(hdr, sizeof hdr, "Authorization: bearer %s", e.key_a);
    r = rest_call_h(&e, "GET", "/v1/teams/alpha/posts", h, NULL, 0);
    cr_expect_eq(r.status, 200, "lower-case bearer: %s", r.body);
    bbt_response_free(&r);
    snprintf(hdr, sizeof hdr, "Authorization: Basic %s", e.key_a);
    r = rest_call_h(&e, "GET", "/v1/teams/alpha/posts", h, NULL, 0);
    rest_expect_error(&r, 401, "AUTH_FAILED", "Basic scheme");
    bbt_response_free(&r);

    /* each key only on its own team, every route */
    r = rest_call(&e, "GET", "/v1/teams/beta/posts", e.key_a, NULL);
    rest_expect_error(&r, 403, "FORBIDDEN", "alpha key on beta list");
    bbt_response_free(&r);
    r = rest_call(&e, "POST", "/v1/teams/beta/posts", e.key_a, "{\"author\":\"a\",\"content\":\"c\"}");
    rest_expect_error(&r, 403, "FORBIDDEN", "alpha key on beta create");
    bbt_response_free(&r);
    r = rest_call(&e, "GET", "/v1/teams/alpha", e.key_b, NULL);
    rest_expect_error(&r, 403, "FORBIDDEN", "beta key on alpha team");
    bbt_response_free(&r);
    r = rest_call(&e, "DELETE", "/v1/teams/alpha/posts/01X", e.key_b, NULL);
    rest_expect_error(&r, 403, "FORBIDDEN", "beta key on alpha delete");
    bbt_response_free(&r);
    r = rest_call(&e, "GET", "/v1/teams/nosuchteam/posts/01X", e.key_b, NULL);
    rest_expect_error(&r, 403, "FORBIDDEN", "beta key on unknown team");
    bbt_response_free(&r);

    /* revoke: refused within auth.cache_ttl_ms (polled, bounded) */
    {
        const char *args[] = { "key", "revoke", e.key_a_id, NULL };
        char *err = NULL;
        long status = 200;
        cr_assert_eq(bbt_botboard_cli(e.s.config_path, args, NULL, &err), 0, "revoke: %s", err ? err : "");
        free(err);
        for (int i = 0; i < 100 && status == 200; i++) {
            struct timespec ts = { 0, 20 * 1000 * 1000 };
            r = rest_call(&e, "GET", "/v1/teams/alpha/posts", e.key_a, NULL);
            status = r.status;
            if (status == 401) rest_expect_error(&r, 401, "AUTH_FAILED", "revoked key");
            bbt_response_free(&r);
            if (status == 200) nanosleep(&ts, NULL);   /* polling for the cache TTL, bounded to 2 s */
        }
        cr_expect_eq(status, 401, "revoked key still accepted after 2 s (cache_ttl_ms 300)");
    }
    r = rest_call(&e, "GET", "/v1/teams/beta/posts", e.key_b, NULL);
    cr_expect_eq(r.status, 200, "the other key is unaffected");
    bbt_response_free(&r);
    rest_stop(&e);
}

/* ---- hostile requests ---------------------------------------------------- */

typedef struct hostile {
    const char *what, *method, *path;
    const char *content_type;      /* NULL: none */
    const char *body;              /* NULL: none; "@..." specials built in code */
    size_t      body_len;          /* 0: strlen */
    long        status;
    const char *code;              /* NULL: body not checked (MHD's own answer) */
} hostile;

#define CT "application/json"
static const hostile hostiles[] = {
    { "broken JSON", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":", 0, 400, "INVALID_INPUT" },
    { "truncated body", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"content\":\"hel", 0, 400, "INVALID_INPUT" },
    { "invalid UTF-8", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"content\":\"\xff\xfe\"}", 0, 400, "INVALID_INPUT" },
    { "overlong UTF-8", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"content\":\"\xc0\xaf\"}", 0, 400, "INVALID_INPUT" },
    { "lone surrogate escape", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"content\":\"\\ud800\"}", 0, 400, "INVALID_INPUT" },
    { "nesting 10,000 deep", "POST", "/v1/teams/alpha/posts", CT, "@deep", 0, 400, "INVALID_INPUT" },
    { "10,001-character content", "POST", "/v1/teams/alpha/posts", CT, "@long", 0, 400, "INVALID_INPUT" },
    { "21 tags", "POST", "/v1/teams/alpha/posts", CT, "@tags21", 0, 400, "INVALID_INPUT" },
    { "33-character tag", "POST", "/v1/teams/alpha/posts", CT,
      "{\"author\":\"a\",\"content\":\"c\",\"tags\":[\"123456789012345678901234567890123\"]}", 0, 400, "INVALID_INPUT" },
    { "empty content", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"content\":\"\"}", 0, 400, "INVALID_INPUT" },
    { "white-space content", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"content\":\" \\n\\t \"}", 0, 400, "INVALID_INPUT" },
    { "raw NUL byte in body", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"content\":\"x\0y\"}", sizeof "{\"author\":\"a\",\"content\":\"x\0y\"}" - 1, 400, "INVALID_INPUT" },
    { "escaped NUL in content", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"content\":\"x\\u0000y\"}", 0, 400, "INVALID_INPUT" },
    { "control character in author", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\\u001bb\",\"content\":\"c\"}", 0, 400, "INVALID_INPUT" },
    { "129-character author", "POST", "/v1/teams/alpha/posts", CT, "@author129", 0, 400, "INVALID_INPUT" },
    { "duplicate JSON keys", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"content\":\"c\",\"content\":\"d\"}", 0, 400, "INVALID_INPUT" },
    { "author and author_name", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"author_name\":\"b\",\"content\":\"c\"}", 0, 400, "INVALID_INPUT" },
    { "unknown body field", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"content\":\"c\",\"admin\":true}", 0, 400, "INVALID_INPUT" },
    { "content is a number", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"content\":42}", 0, 400, "INVALID_INPUT" },
    { "tags is a string", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"content\":\"c\",\"tags\":\"x\"}", 0, 400, "INVALID_INPUT" },
    { "tag is an object", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"content\":\"c\",\"tags\":[{}]}", 0, 400, "INVALID_INPUT" },
    { "body is an array", "POST", "/v1/teams/alpha/posts", CT, "[1,2]", 0, 400, "INVALID_INPUT" },
    { "body is a string", "POST", "/v1/teams/alpha/posts", CT, "\"post\"", 0, 400, "INVALID_INPUT" },
    { "empty body", "POST", "/v1/teams/alpha/posts", CT, "", 0, 400, "INVALID_INPUT" },
    { "parent id with traversal", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"content\":\"c\",\"parentPostId\":\"../../x\"}", 0, 400, "INVALID_INPUT" },
    { "SQL in parent id", "POST", "/v1/teams/alpha/posts", CT, "{\"author\":\"a\",\"content\":\"c\",\"parentPostId\":\"x' OR '1'='1\"}", 0, 400, "INVALID_INPUT" },
    { "wrong Content-Type", "POST", "/v1/teams/alpha/posts", "text/plain", "{\"author\":\"a\",\"content\":\"c\"}", 0, 415, "INVALID_INPUT" },
    { "no Content-Type", "POST", "/v1/teams/alpha/posts", NULL, "{\"author\":\"a\",\"content\":\"c\"}", 0, 415, "INVALID_INPUT" },
    { "form Content-Type", "POST", "/v1/teams/alpha/posts", "application/x-www-form-urlencoded", "author=a&content=c", 0, 415, "INVALID_INPUT" },
    { "10 MB body", "POST", "/v1/teams/alpha/posts", CT, "@10mb", 0, 413, "PAYLOAD_TOO_LARGE" },
    { "Idempotency-Key too long", "POST", "/v1/teams/alpha/posts", CT, "@idemlong", 0, 400, "INVALID_INPUT" },
    { "limit not numeric", "GET", "/v1/teams/alpha/posts?limit=abc", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "limit negative", "GET", "/v1/teams/alpha/posts?limit=-1", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "limit zero", "GET", "/v1/teams/alpha/posts?limit=0", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "limit 101", "GET", "/v1/teams/alpha/posts?limit=101", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "limit huge", "GET", "/v1/teams/alpha/posts?limit=99999999999999999999999", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "limit float", "GET", "/v1/teams/alpha/posts?limit=1.5", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "offset negative", "GET", "/v1/teams/alpha/posts?offset=-5", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "offset not numeric", "GET", "/v1/teams/alpha/posts?offset=ten", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "offset huge", "GET", "/v1/teams/alpha/posts?offset=99999999999999999999", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "offset exponent", "GET", "/v1/teams/alpha/posts?offset=1e3", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "unknown query parameter", "GET", "/v1/teams/alpha/posts?author=alice", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "repeated query parameter", "GET", "/v1/teams/alpha/posts?limit=1&limit=2", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "sort sideways", "GET", "/v1/teams/alpha/posts?sort=sideways", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "invalid UTF-8 in agent", "GET", "/v1/teams/alpha/posts?agent=%ff%fe", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "control character in tag", "GET", "/v1/teams/alpha/posts?tag=a%01b", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "traversal in thread_id", "GET", "/v1/teams/alpha/posts?thread_id=..%2F..%2Fetc", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "SQL in agent (a legal name)", "GET", "/v1/teams/alpha/posts?agent=x%27%20OR%20%271%27%3D%271", NULL, NULL, 0, 200, NULL },
    { "SQL in tag (a legal tag)", "GET", "/v1/teams/alpha/posts?tag=%27%3BDROP%20TABLE%20posts%3B--", NULL, NULL, 0, 200, NULL },
    { "encoded slash in post id", "GET", "/v1/teams/alpha/posts/..%2F..%2Fetc%2Fpasswd", NULL, NULL, 0, 404, "NOT_FOUND" },
    { "dot-dot post id", "GET", "/v1/teams/alpha/posts/..", NULL, NULL, 0, 404, "NOT_FOUND" },
    { "encoded dot-dot post id", "DELETE", "/v1/teams/alpha/posts/%2e%2e", NULL, NULL, 0, 404, "NOT_FOUND" },
    { "encoded NUL in post id", "GET", "/v1/teams/alpha/posts/ab%00cd", NULL, NULL, 0, 404, "NOT_FOUND" },
    { "double-encoded post id", "GET", "/v1/teams/alpha/posts/%252e%252e", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "SQL in post id", "GET", "/v1/teams/alpha/posts/1%27%20OR%20%271%27%3D%271", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "SQL in delete id", "DELETE", "/v1/teams/alpha/posts/1%3BDELETE%20FROM%20posts", NULL, NULL, 0, 400, "INVALID_INPUT" },
    { "encoded slash in team", "GET", "/v1/teams/alpha%2Fposts", NULL, NULL, 0, 404, "NOT_FOUND" },
    { "traversal in team", "GET", "/v1/teams/..%2Falpha/posts", NULL, NULL, 0, 404, "NOT_FOUND" },
    { "other team by encoding", "GET", "/v1/teams/%62eta/posts", NULL, NULL, 0, 403, "FORBIDDEN" },
    { "oversized header", "GET", "/v1/teams/alpha/posts", NULL, "@bighdr", 0, 431, NULL },
};

static char *make_special(const char *which, size_t *len, char *extra_hdr, size_t extra_len)
{
    char *s = NULL;
    size_t n = 0;
    extra_hdr[0] = '\0';
    if (strcmp(which, "@deep") == 0) {
        n = 20000;
        s = malloc(n + 1);
        memset(s, '[', 10000);
        memset(s + 10000, ']', 10000);
    } else if (strcmp(which, "@long") == 0 || strcmp(which, "@author129") == 0) {
        bool author = which[1] == 'a';
        size_t k = author ? 129 : 10001;
        s = malloc(k + 64);
        n = (size_t)sprintf(s, author ? "{\"content\":\"c\",\"author\":\"" : "{\"author\":\"a\",\"content\":\"");
        memset(s + n, 'z', k);
        n += k;
        n += (size_t)sprintf(s + n, "\"}");
    } else if (strcmp(which, "@tags21") == 0) {
        s = malloc(1024);
        n = (size_t)sprintf(s, "{\"author\":\"a\",\"content\":\"c\",\"tags\":[");
        for (int i = 0; i < 21; i++) n += (size_t)sprintf(s + n, "%s\"t%d\"", i ? "," : "", i);
        n += (size_t)sprintf(s + n, "]}");
    } else if (strcmp(which, "@10mb") == 0) {
        n = 10 * 1024 * 1024;
        s = malloc(n + 1);
        memset(s, ' ', n);
        s[0] = '{';
        s[n - 1] = '}';
    } else if (strcmp(which, "@idemlong") == 0) {
        char key[300];
        memset(key, 'k', 256);
        key[256] = '\0';
        snprintf(extra_hdr, extra_len, "Idempotency-Key: %s", key);
        s = strdup("{\"author\":\"a\",\"content\":\"c\"}");
        n = strlen(s);
    } else if (strcmp(which, "@bighdr") == 0) {
        size_t k = extra_len - 32;
        memcpy(extra_hdr, "X-Filler: ", 10);
        memset(extra_hdr + 10, 'f', k);
        extra_hdr[10 + k] = '\0';
        return NULL;
    }
    cr_assert(s, "special body %s", which);
    s[n] = '\0';
    *len = n;
    return s;
}

static char *list_snapshot(rest_env *e)
{
    bbt_response r = rest_call(e, "GET", "/v1/teams/alpha/posts?limit=100", e->key_a, NULL);
    char *body;
    cr_assert_eq(r.status, 200, "%s", r.body);
    body = strdup(r.body);
    bbt_response_free(&r);
    return body;
}

Test(rest, hostile_requests_get_their_documented_answer, .timeout = 120)
{
    rest_env e;
    char id[64], *before, *after, auth[256];
    static char extra[48 * 1024];
    size_t n = sizeof hostiles / sizeof hostiles[0];

    cr_assert_geq(n, 40, "the issue asks for at least 40 hostile requests");
    rest_start(&e, NULL);
    rest_create(&e, e.key_a, "alpha", "{\"author\":\"alice\",\"content\":\"keep me\",\"tags\":[\"t\"]}", id, sizeof id);
    rest_create(&e, e.key_a, "alpha", "{\"author\":\"bob\",\"content\":\"me too\"}", id, sizeof id);
    before = list_snapshot(&e);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", e.key_a);

    for (size_t i = 0; i < n; i++) {
        const hostile *h = &hostiles[i];
        char ct[128];
        const char *hdrs[5];
        int k = 0;
        size_t len = 0;
        char *special = NULL;
        const char *body = h->body;
        bbt_response r;

        hdrs[k++] = auth;
        if (h->content_type) {
            snprintf(ct, sizeof ct, "Content-Type: %s", h->content_type);
            hdrs[k++] = ct;
        }
        if (body && body[0] == '@') {
            special = make_special(body, &len, extra, strcmp(body, "@bighdr") == 0 ? 40 * 1024 : sizeof extra);
            body = special;
            if (extra[0]) hdrs[k++] = extra;
        } else if (body) {
            len = h->body_len ? h->body_len : strlen(body);
        }
        hdrs[k] = NULL;
        r = rest_call_h(&e, h->method, h->path, hdrs, body, body ? len : 0);
        if (h->code) rest_expect_error(&r, h->status, h->code, h->what);
        else cr_expect_eq(r.status, h->status, "%s: %ld %s", h->what, r.status, r.body);
        if (h->status == 200) {
            json_t *j = rest_json(&r);
            cr_expect_eq(json_integer_value(json_object_get(j, "totalCount")), 0, "%s matched posts: %s", h->what, r.body);
            json_decref(j);
        }
        bbt_response_free(&r);
        free(special);
        {
            bbt_response hz = rest_call(&e, "GET", "/healthz", NULL, NULL);
            cr_expect_eq(hz.status, 200, "/healthz after '%s'", h->what);
            bbt_response_free(&hz);
        }
    }
    after = list_snapshot(&e);
    cr_expect_str_eq(after, before, "stored posts changed");
    free(before);
    free(after);
    rest_stop(&e);
}

/* ---- idempotency ------------------------------------------------------------ */

static bbt_response post_idem(rest_env *e, const char *ikey, const char *body)
{
    char auth[256], ih[300];
    const char *h[] = { auth, "Content-Type: application/json", ih, NULL };
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", e->key_a);
    snprintf(ih, sizeof ih, "Idempotency-Key: %s", ikey);
    return rest_call_h(e, "POST", "/v1/teams/alpha/posts", h, body, strlen(body));
}

Test(rest, idempotency_key_replays_or_conflicts, .timeout = 60)
{
    rest_env e;
    bbt_response r1, r2, r3, r4;
    json_t *a, *b, *j;
    char *replayed;
    rest_start(&e, NULL);
    r1 = post_idem(&e, "key-1", "{\"author\":\"alice\",\"content\":\"once\",\"tags\":[\"i\"]}");
    cr_assert_eq(r1.status, 201, "%s", r1.body);
    r2 = post_idem(&e, "key-1", "{ \"content\": \"once\", \"author_name\": \"alice\", \"tags\": [\"i\"] }");
    cr_assert_eq(r2.status, 201, "same request, other spelling: %s", r2.body);
    a = rest_json(&r1);
    b = rest_json(&r2);
    cr_expect_str_eq(str_of(a, "postId"), str_of(b, "postId"));
    cr_expect(json_equal(json_object_get(a, "createdAt"), json_object_get(b, "createdAt")));
    replayed = bbt_header(&r2, "Idempotent-Replayed");
    cr_expect(replayed && strcmp(replayed, "true") == 0);
    free(replayed);
    r3 = post_idem(&e, "key-1", "{\"author\":\"alice\",\"content\":\"twice\",\"tags\":[\"i\"]}");
    rest_expect_error(&r3, 409, "CONFLICT", "same key, other body");
    r4 = post_idem(&e, "key-2", "{\"author\":\"alice\",\"content\":\"once\",\"tags\":[\"i\"]}");
    cr_expect_eq(r4.status, 201);
    j = get_json(&e, "/v1/teams/alpha/posts?tag=i", e.key_a, 200);
    cr_expect_eq(json_integer_value(json_object_get(j, "totalCount")), 2, "one post per key");
    json_decref(j);
    json_decref(a);
    json_decref(b);
    bbt_response_free(&r1);
    bbt_response_free(&r2);
    bbt_response_free(&r3);
    bbt_response_free(&r4);
    rest_stop(&e);
}

typedef struct racer {
    rest_env *e;
    long status;
    char id[64];
} racer;

static void *race(void *arg)
{
    racer *rc = arg;
    bbt_response r = post_idem(rc->e, "race-key", "{\"author\":\"alice\",\"content\":\"exactly one\",\"tags\":[\"race\"]}");
    rc->status = r.status;
    if (r.status == 201) {
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        snprintf(rc->id, sizeof rc->id, "%s", j ? str_of(j, "postId") : "");
        json_decref(j);
    }
    bbt_response_free(&r);
    return NULL;
}

Test(rest, twenty_parallel_posts_with_one_key_make_one_post, .timeout = 60)
{
    rest_env e;
    pthread_t th[20];
    racer rc[20];
    json_t *j;
    rest_start(&e, NULL);
    for (int i = 0; i < 20; i++) {
        rc[i] = (racer){ .e = &e };
        cr_assert_eq(pthread_create(&th[i], NULL, race, &rc[i]), 0);
    }
    for (int i = 0; i < 20; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 20; i++) {
        cr_expect_eq(rc[i].status, 201, "racer %d got %ld", i, rc[i].status);
        cr_expect_str_eq(rc[i].id, rc[0].id, "racer %d saw another post", i);
    }
    j = get_json(&e, "/v1/teams/alpha/posts?tag=race", e.key_a, 200);
    cr_expect_eq(json_integer_value(json_object_get(j, "totalCount")), 1, "%s", json_dumps(j, 0));
    json_decref(j);
    rest_stop(&e);
}

/* ---- request ids, traceparent, metrics ------------------------------------- */

Test(rest, request_id_and_traceparent_reach_the_log, .timeout = 60)
{
    rest_env e;
    char auth[256], *rid, logp[1024], *log;
    const char *good[] = { auth, "X-Request-ID: my-req.42:a_b",
                           "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL };
    const char *bad[] = { auth, "X-Request-ID: has space/and\"quote", NULL };
    bbt_response r;
    rest_cfg c = { .level = "debug" };
    rest_start_cfg(&e, &c);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", e.key_a);

    r = rest_call_h(&e, "GET", "/v1/teams/alpha/posts/01NOPE", good, NULL, 0);
    cr_expect_eq(r.status, 404);
    rid = bbt_header(&r, "X-Request-ID");
    cr_expect(rid && strcmp(rid, "my-req.42:a_b") == 0, "X-Request-ID: %s", rid ? rid : "(none)");
    {
        json_t *j = rest_json(&r);
        cr_expect_str_eq(str_of(j, "request_id"), "my-req.42:a_b");
        json_decref(j);
    }
    free(rid);
    bbt_response_free(&r);

    r = rest_call_h(&e, "GET", "/v1/teams/alpha/posts", bad, NULL, 0);
    rid = bbt_header(&r, "X-Request-ID");
    cr_expect(rid && strlen(rid) >= 20 && !strchr(rid, ' '), "generated id: %s", rid ? rid : "(none)");
    free(rid);
    bbt_response_free(&r);

    /* the 404's debug line carries both ids (poll: the log is written asynchronously to us) */
    snprintf(logp, sizeof logp, "%s", e.s.proc.log_path);
    log = NULL;
    for (int i = 0; i < 50; i++) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        free(log);
        log = bbt_read_file(logp, NULL);
        if (log && strstr(log, "\"request_id\":\"my-req.42:a_b\",\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\""))
            break;
        nanosleep(&ts, NULL);
    }
    cr_expect(log && strstr(log, "\"request_id\":\"my-req.42:a_b\",\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736"),
              "log lacks the ids:\n%s", log ? log : "(no log)");
    free(log);
    rest_stop(&e);
}

Test(rest, metrics_label_route_templates_not_paths, .timeout = 60)
{
    rest_env e;
    bbt_response r;
    char id[64];
    rest_start(&e, NULL);
    rest_create(&e, e.key_a, "alpha", "{\"author\":\"m\",\"content\":\"metrics\"}", id, sizeof id);
    r = rest_call(&e, "GET", "/v1/teams/alpha/posts", e.key_a, NULL);
    bbt_response_free(&r);
    r = rest_call(&e, "GET", "/metrics", NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_expect(strstr(r.body, "route=\"/v1/teams/{team}/posts\",method=\"POST\",status=\"201\""), "%s", r.body);
    cr_expect(strstr(r.body, "route=\"/v1/teams/{team}/posts\",method=\"GET\",status=\"200\""), "%s", r.body);
    cr_expect_null(strstr(r.body, "/v1/teams/alpha"), "a raw path became a label");
    bbt_response_free(&r);
    rest_stop(&e);
}

/* ---- storage unavailable --------------------------------------------------- */

Test(rest, storage_busy_is_503_with_retry_after, .timeout = 60)
{
    rest_env e;
    char dbpath[1024], *ra;
    sqlite3 *db;
    bbt_response r;
    rest_cfg c = { .storage = "    busy_timeout_ms: 0\n  retry: { max_attempts: 1, base_ms: 1, max_ms: 2 }\n" };
    rest_start_cfg(&e, &c);
    snprintf(dbpath, sizeof dbpath, "%s/bb.db", e.s.dir);
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));

    r = rest_call(&e, "POST", "/v1/teams/alpha/posts", e.key_a, "{\"author\":\"a\",\"content\":\"blocked\"}");
    rest_expect_error(&r, 503, "UNAVAILABLE", "write while the database is locked");
    ra = bbt_header(&r, "Retry-After");
    cr_expect(ra && atoi(ra) >= 1, "Retry-After: %s", ra ? ra : "(none)");
    cr_expect_null(strstr(r.body, "sqlite"), "internals leaked: %s", r.body);
    free(ra);
    bbt_response_free(&r);

    cr_assert_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    r = rest_call(&e, "POST", "/v1/teams/alpha/posts", e.key_a, "{\"author\":\"a\",\"content\":\"free again\"}");
    cr_expect_eq(r.status, 201, "after the lock: %ld %s", r.status, r.body);
    bbt_response_free(&r);
    rest_stop(&e);
}
