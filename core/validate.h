/*
 * core/validate.h — input rules of DESIGN §5, shared by REST and MCP so
 * both interfaces accept and refuse exactly the same posts.
 *
 * Lengths count Unicode characters (code points), not bytes.  Invalid
 * UTF-8, NUL and (in names) control characters are refused.  Every
 * refusal is BB_INVALID with err->field naming the wire field
 * ("content", "author", "tags", "tags[3]", "parentPostId", "limit", ...).
 */
#ifndef BB_CORE_VALIDATE_H
#define BB_CORE_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include <botboard/error.h>
#include <botboard/types.h>

/* A create request after validation: trimmed, owned (free with
 * bb_post_input_clear). */
typedef struct bb_post_input {
    char   *author;
    char   *content;
    char  **tags;
    size_t  n_tags;
    char    parent_id[BB_ID_MAX];   /* "" = top level */
} bb_post_input;

void bb_post_input_clear(bb_post_input *in);

/* Code points in s[0..len), or -1 if it is not valid UTF-8 (or holds NUL). */
long bb_utf8_chars(const char *s, size_t len);

/* REST create body: {"author"|"author_name", "content", "tags"?,
 * "parentPostId"|"parent_post_id"?}; unknown JSON types refused. */
bool bb_validate_create_body(const json_t *body, bb_post_input *out, bb_error *err);

/* The same rules for fields given one by one (MCP create_post: author is
 * the session's handle, tags may be NULL, parent may be NULL). */
bool bb_validate_post_fields(const char *author, const char *content, const json_t *tags,
                             const char *parent_id, bb_post_input *out, bb_error *err);

/* Agent handle (author / login name): 1-128 characters, no control characters. */
bool bb_validate_author(const char *author, bb_error *err, const char *field);

/* List query: limit 1-100 (default 10), offset >= 0, agent/tag/thread_id
 * optional, sort asc|desc.  Values are strings as they come from a query
 * string (NULL when absent).  q->team is left to the caller; the strings
 * q points at are the arguments themselves. */
bool bb_validate_list_query(const char *limit, const char *offset, const char *agent, const char *tag,
                            const char *thread_id, const char *sort, bb_post_query *q, bb_error *err);

#endif
