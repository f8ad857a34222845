/*
 * core/jsonw.c — the JSON text writer of jsonw.h.
 */
#include "jsonw.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void bb_jw_grow(bb_jw *b, size_t more)
{
    char *np;
    size_t cap;
    if (b->oom || b->n + more + 1 <= b->cap) return;
    if (more > SIZE_MAX / 4 - b->n) { b->oom = true; return; }   /* the doubling below must not wrap */
    cap = b->cap ? b->cap : 1024;
    while (cap < b->n + more + 1) cap *= 2;
    if (!(np = realloc(b->p, cap))) { b->oom = true; return; }
    b->p = np;
    b->cap = cap;
}

static const char hex[] = "0123456789ABCDEF";

/* Does any byte of the 8 need an escape (< 0x20, '"' or '\\')?  Bytes
 * >= 0x80 (UTF-8) never do.  Classic SWAR tests, eight bytes per step:
 * the feed's text and contents are most of what a page writes. */
static inline bool word_needs_escape(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t lt = (w - ones * 0x20) & ~w;                          /* bytes < 0x20 */
    uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
    uint64_t zq = (q - ones) & ~q, zb = (bs - ones) & ~bs;         /* bytes equal to '"' / '\\' */
    return ((lt | zq | zb) & highs) != 0;
}

/* The escaped bytes of s, without quotes.  lines_as_spaces: '\n' and
 * '\r' become ' ' (a feed entry is one line whatever its content). */
static void escape(bb_jw *b, const char *s, size_t len, bool lines_as_spaces)
{
    const unsigned char *p = (const unsigned char *)(s ? s : ""), *end = p + (s ? len : 0);
    /* Most text needs no escape: one reservation covers it. */
    bb_jw_reserve(b, len);
    while (p < end) {
        const unsigned char *run = p;
        while ((size_t)(end - p) >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (word_needs_escape(w)) break;
            p += 8;
        }
        while (p < end && *p >= 0x20 && *p != '"' && *p != '\\') p++;
        if (p > run) bb_jw_raw(b, (const char *)run, (size_t)(p - run));
        if (p == end) break;
        switch (*p) {
        case '"':  BB_JW_LIT(b, "\\\""); break;
        case '\\': BB_JW_LIT(b, "\\\\"); break;
        case '\b': BB_JW_LIT(b, "\\b"); break;
        case '\f': BB_JW_LIT(b, "\\f"); break;
        case '\n': if (lines_as_spaces) BB_JW_LIT(b, " "); else BB_JW_LIT(b, "\\n"); break;
        case '\r': if (lines_as_spaces) BB_JW_LIT(b, " "); else BB_JW_LIT(b, "\\r"); break;
        case '\t': BB_JW_LIT(b, "\\t"); break;
        default: {
            char esc[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };
            bb_jw_raw(b, esc, sizeof esc);
        }
        }
        p++;
    }
}

void bb_jw_strn(bb_jw *b, const char *s, size_t len)
{
    bb_jw_reserve(b, len + 2);
    BB_JW_LIT(b, "\"");
    escape(b, s, len, false);
    BB_JW_LIT(b, "\"");
}

void bb_jw_esc(bb_jw *b, const char *s, size_t len) { escape(b, s, len, false); }
void bb_jw_esc_line(bb_jw *b, const char *s, size_t len) { escape(b, s, len, true); }

void bb_jw_str(bb_jw *b, const char *s) { bb_jw_strn(b, s, s ? strlen(s) : 0); }

void bb_jw_int(bb_jw *b, int64_t v)
{
    char num[24], *q = num + sizeof num;
    /* Through the unsigned magnitude: INT64_MIN has no positive twin. */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do { *--q = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) *--q = '-';
    bb_jw_raw(b, q, (size_t)(num + sizeof num - q));
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
    bb_jw *b = data;
    bb_jw_raw(b, buffer, size);
    return b->oom ? -1 : 0;
}

void bb_jw_json(bb_jw *b, const json_t *v)
{
    /* Scalars directly: a request id is echoed on every answer, and the
     * dump callback machinery costs more than the id itself. */
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING: bb_jw_strn(b, json_string_value(v), json_string_length(v)); return;
    case JSON_INTEGER: bb_jw_int(b, (int64_t)json_integer_value(v)); return;
    case JSON_TRUE: BB_JW_LIT(b, "true"); return;
    case JSON_FALSE: BB_JW_LIT(b, "false"); return;
    case JSON_NULL: BB_JW_LIT(b, "null"); return;
    default: break;
    }
    if (json_dump_callback(v, dump_cb, b, JSON_COMPACT | JSON_ENCODE_ANY) != 0) b->oom = true;
}

void bb_jw_truncate(bb_jw *b, size_t n)
{
    if (n < b->n) b->n = n;
}

char *bb_jw_finish(bb_jw *b, size_t *len)
{
    char *out;
    bb_jw_reserve(b, 0);
    if (b->oom) { bb_jw_free(b); return NULL; }
    b->p[b->n] = '\0';
    if (len) *len = b->n;
    out = b->p;
    memset(b, 0, sizeof *b);
    return out;
}

void bb_jw_free(bb_jw *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}
