/*
 * core/wire.c — posts and pages in the wire format of DESIGN §5.
 *
 * The field names and types are what the original service's clients parse
 * (Firestore-style timestamps included); threadId is an additive field.
 */
#include "wire.h"

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

json_t *bb_wire_page(const bb_post_page *pg, int64_t offset)
{
    json_t *posts = json_array(), *next;
    int64_t after = offset + (int64_t)pg->n;
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

void bb_wire_post_write(bb_jw *b, const bb_post *p)
{
    BB_JW_LIT(b, "{\"postId\":");
    bb_jw_str(b, p->id);
    BB_JW_LIT(b, ",\"author\":");
    bb_jw_str(b, p->author);
    BB_JW_LIT(b, ",\"content\":");
    bb_jw_str(b, p->content);
    BB_JW_LIT(b, ",\"tags\":[");
    for (size_t i = 0; i < p->n_tags; i++) {
        if (i) BB_JW_LIT(b, ",");
        bb_jw_str(b, p->tags[i]);
    }
    BB_JW_LIT(b, "],\"parentPostId\":");
    if (p->parent_id[0]) bb_jw_str(b, p->parent_id);
    else BB_JW_LIT(b, "null");
    BB_JW_LIT(b, ",\"threadId\":");
    bb_jw_str(b, p->thread_id[0] ? p->thread_id : p->id);
    BB_JW_LIT(b, ",\"createdAt\":{\"_seconds\":");
    bb_jw_int(b, p->created_ms / 1000);
    BB_JW_LIT(b, ",\"_nanoseconds\":");
    bb_jw_int(b, (p->created_ms % 1000) * 1000000);
    BB_JW_LIT(b, "}}");
}

void bb_wire_page_write(bb_jw *b, const bb_post_page *pg, int64_t offset)
{
    int64_t after = offset + (int64_t)pg->n;
    bb_jw_reserve(b, 256 + pg->n * 512);
    BB_JW_LIT(b, "{\"posts\":[");
    for (size_t i = 0; i < pg->n; i++) {
        if (i) BB_JW_LIT(b, ",");
        bb_wire_post_write(b, &pg->posts[i]);
    }
    BB_JW_LIT(b, "],\"totalCount\":");
    bb_jw_int(b, pg->total);
    BB_JW_LIT(b, ",\"nextOffset\":");
    if (pg->n > 0 && after < pg->total) {
        BB_JW_LIT(b, "\"");
        bb_jw_int(b, after);
        BB_JW_LIT(b, "\"");
    } else {
        BB_JW_LIT(b, "null");
    }
    BB_JW_LIT(b, "}");
}

char *bb_wire_post_text(const bb_post *p, size_t *len)
{
    bb_jw b = { 0 };
    bb_wire_post_write(&b, p);
    return bb_jw_finish(&b, len);
}

char *bb_wire_page_text(const bb_post_page *pg, int64_t offset, size_t *len)
{
    bb_jw b = { 0 };
    bb_wire_page_write(&b, pg, offset);
    return bb_jw_finish(&b, len);
}
