/*
 * core/jsonw.h — compact JSON text written straight into a growing buffer.
 *
 * The hot paths (REST pages, MCP tool results, the JSON-RPC framing) write
 * their answers with this instead of building a jansson tree and dumping
 * it: a tree costs an allocation per value and a second pass to print.
 * Strings are escaped the way jansson's json_dumps(JSON_COMPACT) escapes
 * them, so both paths give the same bytes.
 *
 * Errors are sticky: after an allocation fails every call is a no-op and
 * bb_jw_finish returns NULL, so writers check once at the end.
 *
 * Also here, for the same hot paths going the other way: bb_json_loadb,
 * the request parse they share.
 */
#ifndef BB_CORE_JSONW_H
#define BB_CORE_JSONW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct bb_jw {
    char  *p;
    size_t n, cap;
    bool   oom;
} bb_jw;

/* json_loadb, but the error is filled only when the text is bad: jansson
 * spends a fifth of a small parse preparing an error it rarely reports, so
 * the good text is parsed without one and bad text a second time with it. */
static inline json_t *bb_json_loadb(const char *text, size_t len, size_t flags, json_error_t *err)
{
    json_t *v = json_loadb(text, len, flags, NULL);
    if (!v && err) json_decref(json_loadb(text, len, flags, err));   /* NULL again */
    return v;
}

/* Room for `more` bytes (and a NUL) without another allocation. */
void bb_jw_grow(bb_jw *b, size_t more);
static inline void bb_jw_reserve(bb_jw *b, size_t more)
{
    if (b->n + more + 1 > b->cap) bb_jw_grow(b, more);
}
/* Inline: a post is written as some twenty short pieces. */
static inline void bb_jw_raw(bb_jw *b, const char *s, size_t len)
{
    bb_jw_reserve(b, len);
    if (b->oom) return;
    memcpy(b->p + b->n, s, len);
    b->n += len;
}
#define BB_JW_LIT(b, lit) bb_jw_raw((b), (lit), sizeof(lit) - 1)

/* A JSON string of s (NULL writes ""); UTF-8 is kept, '"', '\\' and
 * control characters are escaped. */
void bb_jw_str(bb_jw *b, const char *s);
void bb_jw_strn(bb_jw *b, const char *s, size_t len);
/* The inside of a JSON string, for text written piece by piece between
 * quotes the caller writes: escaped like bb_jw_strn, without the quotes.
 * _line: newlines (\n, \r) become spaces. */
void bb_jw_esc(bb_jw *b, const char *s, size_t len);
void bb_jw_esc_line(bb_jw *b, const char *s, size_t len);
#define BB_JW_ESC(b, s) bb_jw_esc((b), (s), strlen(s))
void bb_jw_int(bb_jw *b, int64_t v);
/* A jansson value, compact (ids, error data, small trees). */
void bb_jw_json(bb_jw *b, const json_t *v);

/* Back to an earlier length (a writer that changed its mind). */
void bb_jw_truncate(bb_jw *b, size_t n);

/* The text, NUL-terminated and malloc'd (the caller frees it), or NULL
 * after an allocation failed.  *len gets its length.  The buffer is then
 * empty again. */
char *bb_jw_finish(bb_jw *b, size_t *len);
void  bb_jw_free(bb_jw *b);

#endif
