/*
 * core/wire.c — posts and pages in the wire format of DESIGN §5.
 *
 * The field names and types are what the original service's clients parse
 * (Firestore-style timestamps included); threadId is an additive field.
 */
#include "wire.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *bb_wire_post(const bb_post *p)
{
    json_t *tags = json_array(), *o;
    if (!tags) return NULL;
    for (size_t i = 0; i < p->n_tags; i++) {
        if (json_array_append_new(tags, json_string(p->tags[i])) != 0) {
            json_decref(tags);
            return NULL;
        }
    }
    o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:{s:I, s:I}}",
                  "postId", p->id,
                  "author", p->author ? p->author : "",
                  "content", p->content ? p->content : "",
                  "tags", tags,
                  "parentPostId", p->parent_id[0] ? json_string(p->parent_id) : json_null(),
                  "threadId", p->thread_id[0] ? p->thread_id : p->id,
                  "createdAt", "_seconds", (json_int_t)(p->created_ms / 1000),
                  "_nanoseconds", (json_int_t)((p->created_ms % 1000) * 1000000));
    return o;
}

json_t *bb_wire_page(const bb_post_page *pg, int64_t offset, int limit)
{
    json_t *posts = json_array(), *next;
    int64_t after = offset + (int64_t)pg->n;
    (void)limit;
    if (!posts) return NULL;
    for (size_t i = 0; i < pg->n; i++) {
        json_t *p = bb_wire_post(&pg->posts[i]);
        if (!p || json_array_append_new(posts, p) != 0) {
            json_decref(posts);
            return NULL;
        }
    }
    /* nextOffset is a string in the original service; null on the last page. */
    if (pg->n > 0 && after < pg->total) {
        char buf[24];
        snprintf(buf, sizeof buf, "%lld", (long long)after);
        next = json_string(buf);
    } else {
        next = json_null();
    }
    return json_pack("{s:o, s:I, s:o}", "posts", posts, "totalCount", (json_int_t)pg->total, "nextOffset", next);
}

/* ---- direct text output -------------------------------------------------- */

typedef struct wbuf {
    char  *p;
    size_t n, cap;
    bool   oom;
} wbuf;

static void w_reserve(wbuf *b, size_t more)
{
    char *np;
    size_t cap;
    if (b->oom || b->n + more + 1 <= b->cap) return;
    cap = b->cap ? b->cap : 1024;
    while (cap < b->n + more + 1) cap *= 2;
    if (!(np = realloc(b->p, cap))) { b->oom = true; return; }
    b->p = np;
    b->cap = cap;
}

static void w_raw(wbuf *b, const char *s, size_t len)
{
    w_reserve(b, len);
    if (b->oom) return;
    memcpy(b->p + b->n, s, len);
    b->n += len;
}

#define W_LIT(b, lit) w_raw((b), (lit), sizeof(lit) - 1)

/* A JSON string the way jansson writes it: UTF-8 kept, '"' '\\' and
 * control characters escaped (short forms where JSON has them). */
static void w_str(wbuf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    w_reserve(b, strlen((const char *)p) + 2);
    W_LIT(b, "\"");
    while (*p) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p != '"' && *p != '\\') p++;
        if (p > run) w_raw(b, (const char *)run, (size_t)(p - run));
        if (!*p) break;
        switch (*p) {
        case '"':  W_LIT(b, "\\\""); break;
        case '\\': W_LIT(b, "\\\\"); break;
        case '\b': W_LIT(b, "\\b"); break;
        case '\f': W_LIT(b, "\\f"); break;
        case '\n': W_LIT(b, "\\n"); break;
        case '\r': W_LIT(b, "\\r"); break;
        case '\t': W_LIT(b, "\\t"); break;
        default: {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04X", *p);
            w_raw(b, esc, 6);
        }
        }
        p++;
    }
    W_LIT(b, "\"");
}

static void w_int(wbuf *b, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", (long long)v);
    w_raw(b, num, (size_t)n);
}

static void w_post(wbuf *b, const bb_post *p)
{
    W_LIT(b, "{\"postId\":");
    w_str(b, p->id);
    W_LIT(b, ",\"author\":");
    w_str(b, p->author);
    W_LIT(b, ",\"content\":");
    w_str(b, p->content);
    W_LIT(b, ",\"tags\":[");
    for (size_t i = 0; i < p->n_tags; i++) {
        if (i) W_LIT(b, ",");
        w_str(b, p->tags[i]);
    }
    W_LIT(b, "],\"parentPostId\":");
    if (p->parent_id[0]) w_str(b, p->parent_id);
    else W_LIT(b, "null");
    W_LIT(b, ",\"threadId\":");
    w_str(b, p->thread_id[0] ? p->thread_id : p->id);
    W_LIT(b, ",\"createdAt\":{\"_seconds\":");
    w_int(b, p->created_ms / 1000);
    W_LIT(b, ",\"_nanoseconds\":");
    w_int(b, (p->created_ms % 1000) * 1000000);
    W_LIT(b, "}}");
}

static char *w_finish(wbuf *b, size_t *len)
{
    w_reserve(b, 0);
    if (b->oom) { free(b->p); return NULL; }
    b->p[b->n] = '\0';
    if (len) *len = b->n;
    return b->p;
}

char *bb_wire_post_text(const bb_post *p, size_t *len)
{
    wbuf b = { 0 };
    w_post(&b, p);
    return w_finish(&b, len);
}

char *bb_wire_page_text(const bb_post_page *pg, int64_t offset, int limit, size_t *len)
{
    wbuf b = { 0 };
    int64_t after = offset + (int64_t)pg->n;
    (void)limit;
    w_reserve(&b, 256 + pg->n * 512);
    W_LIT(&b, "{\"posts\":[");
    for (size_t i = 0; i < pg->n; i++) {
        if (i) W_LIT(&b, ",");
        w_post(&b, &pg->posts[i]);
    }
    W_LIT(&b, "],\"totalCount\":");
    w_int(&b, pg->total);
    W_LIT(&b, ",\"nextOffset\":");
    if (pg->n > 0 && after < pg->total) {
        W_LIT(&b, "\"");
        w_int(&b, after);
        W_LIT(&b, "\"");
    } else {
        W_LIT(&b, "null");
    }
    W_LIT(&b, "}");
    return w_finish(&b, len);
}
