/*
 * plugins/upstream_http/wire.c — the DESIGN §5 wire format, the only thing
 * the gateway relies on: posts and pages in, create bodies out, and the
 * JSON error answers mapped onto bb_error.
 */
#include "uh.h"

#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static bool copy_id(char *dst, size_t cap, json_t *v)
{
    const char *s = json_string_value(v);
    size_t n;
    if (!s) return false;
    n = strlen(s);
    if (n == 0 || n >= cap) return false;
    memcpy(dst, s, n + 1);
    return true;
}

bb_status uh_decode_post(json_t *j, const char *team, bb_post *out, bb_error *err)
{
    json_t *tags, *created, *parent, *thread;
    const char *author, *content;
    memset(out, 0, sizeof *out);
    if (!json_is_object(j)) return bb_fail(err, BB_INTERNAL, NULL, "upstream sent a post that is not an object");
    author = json_string_value(json_object_get(j, "author"));
    content = json_string_value(json_object_get(j, "content"));
    if (!copy_id(out->id, sizeof out->id, json_object_get(j, "postId")) || !author || !content)
        return bb_fail(err, BB_INTERNAL, NULL, "upstream sent a post without postId/author/content");
    snprintf(out->team, sizeof out->team, "%s", team);
    parent = json_object_get(j, "parentPostId");
    if (parent && !json_is_null(parent) && !copy_id(out->parent_id, sizeof out->parent_id, parent))
        return bb_fail(err, BB_INTERNAL, NULL, "upstream sent a bad parentPostId");
    /* threadId is an additive field; without it a reply's root is its parent
     * (exact for one level, which is what the original service allowed). */
    thread = json_object_get(j, "threadId");
    if (!thread || !copy_id(out->thread_id, sizeof out->thread_id, thread))
        snprintf(out->thread_id, sizeof out->thread_id, "%s", out->parent_id[0] ? out->parent_id : out->id);
    created = json_object_get(j, "createdAt");
    if (json_is_object(created)) {
        out->created_ms = (int64_t)json_integer_value(json_object_get(created, "_seconds")) * 1000 +
                          (int64_t)json_integer_value(json_object_get(created, "_nanoseconds")) / 1000000;
    }
    out->author = dup_str(author);
    out->content = dup_str(content);
    if (!out->author || !out->content) goto oom;
    tags = json_object_get(j, "tags");
    if (json_is_array(tags) && json_array_size(tags) > 0) {
        size_t n = json_array_size(tags);
        if (n > BB_TAGS_MAX) n = BB_TAGS_MAX;
        out->tags = calloc(n, sizeof *out->tags);
        if (!out->tags) goto oom;
        for (size_t i = 0; i < n; i++) {
            const char *t = json_string_value(json_array_get(tags, i));
            if (!t) continue;
            if (!(out->tags[out->n_tags] = dup_str(t))) goto oom;
            out->n_tags++;
        }
    }
    return BB_OK;
oom:
    bb_post_clear(out);
    return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
}

static json_t *parse(const char *body, size_t len, bb_error *err)
{
    json_error_t je;
    json_t *j = body ? json_loadb(body, len, 0, &je) : NULL;
    if (!j) bb_fail(err, BB_INTERNAL, NULL, "upstream sent invalid JSON");
    return j;
}

bb_status uh_decode_post_body(const char *body, size_t len, const char *team, bb_post *out, bb_error *err)
{
    json_t *j = parse(body, len, err);
    bb_status st;
    if (!j) return err->code;
    st = uh_decode_post(j, team, out, err);
    json_decref(j);
    return st;
}

bb_status uh_decode_page(const char *body, size_t len, const char *team, bb_post_page *out, bb_error *err)
{
    json_t *j = parse(body, len, err), *posts, *total;
    size_t n;
    memset(out, 0, sizeof *out);
    if (!j) return err->code;
    posts = json_object_get(j, "posts");
    if (!json_is_array(posts)) {
        json_decref(j);
        return bb_fail(err, BB_INTERNAL, NULL, "upstream sent a page without posts");
    }
    n = json_array_size(posts);
    if (n) {
        out->posts = calloc(n, sizeof *out->posts);
        if (!out->posts) { json_decref(j); return bb_fail(err, BB_INTERNAL, NULL, "out of memory"); }
    }
    for (size_t i = 0; i < n; i++) {
        if (uh_decode_post(json_array_get(posts, i), team, &out->posts[out->n], err) != BB_OK) {
            bb_post_page_clear(out);
            json_decref(j);
            return err->code;
        }
        out->n++;
    }
    total = json_object_get(j, "totalCount");
    out->total = json_is_integer(total) ? (int64_t)json_integer_value(total) : (int64_t)n;
    json_decref(j);
    return BB_OK;
}

char *uh_encode_new_post(const bb_new_post *in)
{
    json_t *tags = json_array(), *o;
    char *s;
    if (!tags) return NULL;
    for (size_t i = 0; i < in->n_tags; i++)
        if (json_array_append_new(tags, json_string(in->tags[i])) != 0) { json_decref(tags); return NULL; }
    o = json_pack("{s:s?, s:s?, s:o}", "author", in->author, "content", in->content, "tags", tags);
    if (!o) return NULL;
    if (in->parent_id && in->parent_id[0] && json_object_set_new(o, "parentPostId", json_string(in->parent_id)) != 0) {
        json_decref(o);
        return NULL;
    }
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* details may name the field as {"field": "content"} or as its only key. */
static void field_from_details(json_t *details, char *field, size_t cap)
{
    const char *f = json_string_value(json_object_get(details, "field"));
    if (!f && json_is_object(details) && json_object_size(details) >= 1) {
        void *it = json_object_iter(details);
        f = it ? json_object_iter_key(it) : NULL;
    }
    if (f) snprintf(field, cap, "%s", f);
}

bb_status uh_map_http_error(long status, const char *body, size_t len, const char *what, bb_error *err)
{
    json_error_t je;
    json_t *j = body && len ? json_loadb(body, len, 0, &je) : NULL;
    const char *msg = json_string_value(json_object_get(j, "error"));
    const char *code = json_string_value(json_object_get(j, "code"));
    char field[BB_ERROR_FIELD_MAX] = "";
    bb_status st;

    if (!msg) msg = "no error text";
    field_from_details(json_object_get(j, "details"), field, sizeof field);
    switch (status) {
    case 400: case 413: case 422:
        st = bb_fail(err, BB_INVALID, field, "%s", msg);
        break;
    case 401:
        st = bb_fail(err, BB_INTERNAL, NULL, "upstream rejected our API key (HTTP 401): check upstream.http.api_key");
        break;
    case 403:
        st = bb_fail(err, BB_INVALID, NULL, "upstream rejected our API key for this team (HTTP 403): %s", msg);
        break;
    case 404:
        if (code && strcmp(code, "PARENT_NOT_FOUND") == 0) st = bb_fail(err, BB_NOT_FOUND, "parentPostId", "%s", msg);
        else st = bb_fail(err, BB_NOT_FOUND, NULL, "%s", msg);
        break;
    case 409:
        st = bb_fail(err, BB_CONFLICT, field, "%s", msg);
        break;
    case 429:
        st = bb_fail(err, BB_UNAVAILABLE, NULL, "upstream is rate limiting us: %s", msg);
        break;
    default:
        if (status >= 500) st = bb_fail(err, BB_UNAVAILABLE, NULL, "upstream failed on %s (HTTP %ld): %s", what, status, msg);
        else st = bb_fail(err, BB_INTERNAL, NULL, "unexpected upstream answer on %s (HTTP %ld)", what, status);
        break;
    }
    json_decref(j);
    return st;
}

bool uh_escape(char *buf, size_t cap, size_t *len, const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    size_t n;
    if (!e) return false;
    n = strlen(e);
    if (*len + n + 1 > cap) { curl_free(e); return false; }
    memcpy(buf + *len, e, n + 1);
    *len += n;
    curl_free(e);
    return true;
}
