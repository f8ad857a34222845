/*
 * core/validate.c — the input rules of DESIGN §5, shared by REST and MCP.
 *
 * Everything here works on code points: lengths are counted in characters,
 * "trim" removes Unicode white space at both ends, and names refuse the
 * control characters (Cc: C0, DEL, C1).  Strings from JSON are valid UTF-8
 * already (jansson checks), but query-string values are raw bytes after
 * percent-decoding, so every entry point checks UTF-8 itself.
 */
#include "validate.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "validate_names.h"

#define LIMIT_DEFAULT 10
#define LIMIT_MAX     100
#define OFFSET_MAX    INT64_C(1000000000000)   /* beyond any real table; keeps arithmetic safe */

void bb_post_input_clear(bb_post_input *in)
{
    if (!in) return;
    free(in->author);
    free(in->content);
    bb_strv_free(in->tags, in->n_tags);
    memset(in, 0, sizeof *in);
}

/* Decode one code point at s (at most len bytes).  Returns its length in
 * bytes (1-4) and stores it in *cp, or 0 when the bytes are not UTF-8
 * (overlong forms, surrogates and values past U+10FFFF included). */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    uint32_t c;
    size_t n;
    if (len == 0) return 0;
    if (s[0] < 0x80) { *cp = s[0]; return 1; }
    if (s[0] < 0xC2) return 0;                    /* continuation byte or overlong 2-byte */
    if (s[0] < 0xE0) { n = 2; c = s[0] & 0x1F; }
    else if (s[0] < 0xF0) { n = 3; c = s[0] & 0x0F; }
    else if (s[0] < 0xF5) { n = 4; c = s[0] & 0x07; }
    else return 0;
    if (len < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

long bb_utf8_chars(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    long count = 0;
    size_t i = 0;
    if (!s) return -1;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_next(p + i, len - i, &cp);
        if (n == 0 || cp == 0) return -1;
        i += n;
        count++;
    }
    return count;
}

/* Unicode White_Space (the characters a person would call blank). */
static bool is_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000 || c == 0xFEFF;
}

static bool is_control(uint32_t c) { return c < 0x20 || (c >= 0x7F && c <= 0x9F); }

typedef struct text_check {
    long chars;          /* characters after trimming */
    size_t start, end;   /* byte range after trimming */
    bool control;        /* holds a control character (inside the trimmed range) */
} text_check;

/* UTF-8 check and trim (first pass), then count and look for control
 * characters inside the trimmed range (second pass).  False if the bytes
 * are not UTF-8 or hold NUL. */
static bool scan_text(const char *s, size_t len, text_check *tc)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    bool seen = false;
    memset(tc, 0, sizeof *tc);
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_next(p + i, len - i, &cp);
        if (n == 0 || cp == 0) return false;
        if (!is_space(cp)) {
            if (!seen) tc->start = i;
            seen = true;
            tc->end = i + n;
        }
        i += n;
    }
    for (i = tc->start; i < tc->end;) {
        uint32_t cp = 0;
        i += utf8_next(p + i, tc->end - i, &cp);
        tc->chars++;
        if (is_control(cp)) tc->control = true;
    }
    return true;
}

static char *dup_range(const char *s, size_t start, size_t end)
{
    char *d = malloc(end - start + 1);
    if (!d) return NULL;
    memcpy(d, s + start, end - start);
    d[end - start] = '\0';
    return d;
}

/* A name-like value (author, tag): trimmed, 1..max characters, no control
 * characters.  On success *out (when out != NULL) is the malloc'd trimmed copy. */
static bool check_name(const char *s, long max, const char *field, const char *what, char **out, bb_error *err)
{
    text_check tc;
    if (!s) return bb_fail(err, BB_INVALID, field, "%s is required", what), false;
    if (!scan_text(s, strlen(s), &tc))
        return bb_fail(err, BB_INVALID, field, "%s is not valid UTF-8 text", what), false;
    if (tc.chars == 0) return bb_fail(err, BB_INVALID, field, "%s must not be empty", what), false;
    if (tc.chars > max)
        return bb_fail(err, BB_INVALID, field, "%s is %ld characters; at most %ld allowed", what, tc.chars, max), false;
    if (tc.control) return bb_fail(err, BB_INVALID, field, "%s must not contain control characters", what), false;
    if (out && !(*out = dup_range(s, tc.start, tc.end)))
        return bb_fail(err, BB_INTERNAL, NULL, "out of memory"), false;
    return true;
}

bool bb_validate_author(const char *author, bb_error *err, const char *field)
{
    return check_name(author, BB_AUTHOR_MAX, field ? field : "author", "author", NULL, err);
}

static bool check_content(const char *content, size_t len, char **out, bb_error *err)
{
    text_check tc;
    if (!content) return bb_fail(err, BB_INVALID, "content", "content is required"), false;
    if (!scan_text(content, len, &tc))
        return bb_fail(err, BB_INVALID, "content", "content is not valid UTF-8 text (or holds NUL)"), false;
    if (tc.chars == 0) return bb_fail(err, BB_INVALID, "content", "content must not be empty or only white space"), false;
    if (tc.chars > BB_CONTENT_MAX)
        return bb_fail(err, BB_INVALID, "content", "content is %ld characters; at most %d allowed", tc.chars,
                       BB_CONTENT_MAX), false;
    if (!(*out = dup_range(content, tc.start, tc.end))) return bb_fail(err, BB_INTERNAL, NULL, "out of memory"), false;
    return true;
}

static bool check_tags(const json_t *tags, bb_post_input *out, bb_error *err)
{
    size_t n;
    if (!tags || json_is_null(tags)) return true;
    if (!json_is_array(tags)) return bb_fail(err, BB_INVALID, "tags", "tags must be an array of strings"), false;
    n = json_array_size(tags);
    if (n > BB_TAGS_MAX) return bb_fail(err, BB_INVALID, "tags", "%zu tags; at most %d allowed", n, BB_TAGS_MAX), false;
    if (n == 0) return true;
    if (!(out->tags = calloc(n, sizeof *out->tags))) return bb_fail(err, BB_INTERNAL, NULL, "out of memory"), false;
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(tags, i);
        char field[16];
        snprintf(field, sizeof field, "tags[%zu]", i);
        if (!json_is_string(t)) return bb_fail(err, BB_INVALID, field, "each tag must be a string"), false;
        if (memchr(json_string_value(t), '\0', json_string_length(t)))
            return bb_fail(err, BB_INVALID, field, "tag holds a NUL character"), false;
        if (!check_name(json_string_value(t), BB_TAG_MAX, field, "tag", &out->tags[out->n_tags], err)) return false;
        out->n_tags++;
    }
    return true;
}

static bool check_parent(const char *parent_id, bb_post_input *out, bb_error *err)
{
    if (!parent_id || !parent_id[0]) return true;
    if (!bb_id_ok(parent_id))
        return bb_fail(err, BB_INVALID, "parentPostId", "parentPostId is not a post id (1-39 of A-Z a-z 0-9 _ -)"), false;
    snprintf(out->parent_id, sizeof out->parent_id, "%s", parent_id);
    return true;
}

bool bb_validate_post_fields(const char *author, const char *content, const json_t *tags, const char *parent_id,
                             bb_post_input *out, bb_error *err)
{
    memset(out, 0, sizeof *out);
    if (!check_name(author, BB_AUTHOR_MAX, "author", "author", &out->author, err) ||
        !check_content(content, content ? strlen(content) : 0, &out->content, err) || !check_tags(tags, out, err) ||
        !check_parent(parent_id, out, err)) {
        bb_post_input_clear(out);
        return false;
    }
    return true;
}

/* One of two spellings of a member (camelCase, snake_case); both given is
 * refused so a client never wonders which one won. */
static bool pick(const json_t *body, const char *a, const char *b, const json_t **v, const char **used, bb_error *err)
{
    const json_t *va = json_object_get(body, a), *vb = b ? json_object_get(body, b) : NULL;
    if (va && vb) return bb_fail(err, BB_INVALID, a, "give either %s or %s, not both", a, b), false;
    *v = va ? va : vb;
    *used = va ? a : b;
    return true;
}

/* A member that must be a string when present; NUL inside is refused. */
static bool opt_string(const json_t *v, const char *field, bool nullable, const char **out, bb_error *err)
{
    *out = NULL;
    if (!v || (nullable && json_is_null(v))) return true;
    if (!json_is_string(v)) return bb_fail(err, BB_INVALID, field, "%s must be a string", field), false;
    if (memchr(json_string_value(v), '\0', json_string_length(v)))
        return bb_fail(err, BB_INVALID, field, "%s holds a NUL character", field), false;
    *out = json_string_value(v);
    return true;
}

bool bb_validate_create_body(const json_t *body, bb_post_input *out, bb_error *err)
{
    static const char *const known[] = { "author", "author_name", "content", "tags", "parentPostId", "parent_post_id" };
    const json_t *author_v, *parent_v;
    const char *author_k, *parent_k, *author = NULL, *content = NULL, *parent = NULL;
    const char *key;
    const json_t *v;

    memset(out, 0, sizeof *out);
    if (!json_is_object(body)) return bb_fail(err, BB_INVALID, "body", "the body must be a JSON object"), false;
    json_object_foreach((json_t *)body, key, v) {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) ok |= strcmp(key, known[i]) == 0;
        if (!ok) return bb_fail(err, BB_INVALID, key, "unknown field \"%.40s\"", key), false;
    }
    if (!pick(body, "author", "author_name", &author_v, &author_k, err) ||
        !pick(body, "parentPostId", "parent_post_id", &parent_v, &parent_k, err))
        return false;
    if (!author_v) return bb_fail(err, BB_INVALID, "author", "author is required"), false;
    if (!json_object_get(body, "content")) return bb_fail(err, BB_INVALID, "content", "content is required"), false;
    if (!opt_string(author_v, author_k, false, &author, err) ||
        !opt_string(json_object_get(body, "content"), "content", false, &content, err) ||
        !opt_string(parent_v, parent_k, true, &parent, err))
        return false;
    return bb_validate_post_fields(author, content, json_object_get(body, "tags"), parent, out, err);
}

/* A non-negative decimal integer, digits only ("+5", " 5", "5x", "0x10" refused). */
static bool parse_count(const char *s, int64_t max, int64_t *out)
{
    int64_t v = 0;
    if (!s || !*s || strlen(s) > 19) return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        v = v * 10 + (*p - '0');
        if (v > max) return false;
    }
    *out = v;
    return true;
}

bool bb_validate_list_query(const char *limit, const char *offset, const char *agent, const char *tag,
                            const char *thread_id, const char *sort, bb_post_query *q, bb_error *err)
{
    int64_t v;
    q->limit = LIMIT_DEFAULT;
    q->offset = 0;
    q->author = q->tag = q->thread_id = q->mentions_of = NULL;
    q->ascending = false;
    if (limit) {
        if (!parse_count(limit, LIMIT_MAX, &v) || v < 1)
            return bb_fail(err, BB_INVALID, "limit", "limit must be a whole number from 1 to %d", LIMIT_MAX), false;
        q->limit = (int)v;
    }
    if (offset) {
        if (!parse_count(offset, OFFSET_MAX, &v))
            return bb_fail(err, BB_INVALID, "offset", "offset must be a whole number >= 0"), false;
        q->offset = v;
    }
    if (agent) {
        if (!check_name(agent, BB_AUTHOR_MAX, "agent", "agent", NULL, err)) return false;
        q->author = agent;
    }
    if (tag) {
        if (!check_name(tag, BB_TAG_MAX, "tag", "tag", NULL, err)) return false;
        q->tag = tag;
    }
    if (thread_id) {
        if (!bb_id_ok(thread_id))
            return bb_fail(err, BB_INVALID, "thread_id", "thread_id is not a post id (1-39 of A-Z a-z 0-9 _ -)"), false;
        q->thread_id = thread_id;
    }
    if (sort) {
        if (strcmp(sort, "asc") == 0) q->ascending = true;
        else if (strcmp(sort, "desc") != 0)
            return bb_fail(err, BB_INVALID, "sort", "sort must be asc or desc"), false;
    }
    return true;
}
