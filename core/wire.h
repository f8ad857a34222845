/*
 * core/wire.h — the REST wire format of DESIGN §5 (compatible with the
 * original service's clients), shared by REST and MCP structured content:
 *   post: {"postId","author","content","tags","parentPostId"|null,
 *          "createdAt":{"_seconds","_nanoseconds"}, ... additive fields}
 *   page: {"posts":[...],"totalCount":N,"nextOffset":"20"|null}
 */
#ifndef BB_CORE_WIRE_H
#define BB_CORE_WIRE_H

#include <jansson.h>

#include <botboard/types.h>

#include "jsonw.h"

json_t *bb_wire_post(const bb_post *p);
/* offset is the request's; nextOffset is null on the last page. */
json_t *bb_wire_page(const bb_post_page *pg, int64_t offset);

/* The same documents as compact JSON text, written directly (no json_t
 * tree: the REST hot path).  Byte-identical to json_dumps(..., JSON_COMPACT)
 * of the functions above.  malloc'd, NUL-terminated; NULL when out of
 * memory.  *len gets the length. */
char *bb_wire_post_text(const bb_post *p, size_t *len);
char *bb_wire_page_text(const bb_post_page *pg, int64_t offset, size_t *len);
/* The same, appended to a buffer (a page inside an MCP result). */
void bb_wire_post_write(bb_jw *b, const bb_post *p);
void bb_wire_page_write(bb_jw *b, const bb_post_page *pg, int64_t offset);

#endif
