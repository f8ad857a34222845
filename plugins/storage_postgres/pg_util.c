/*
 * plugins/storage_postgres/pg_util.c — conversions between libpq's text
 * results and the ABI's records: numbers, hex, text[] arrays, post rows.
 */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pg_i64_text(int64_t v, char buf[24])
{
    snprintf(buf, 24, "%lld", (long long)v);
}

int64_t pg_get_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

void pg_get_str(const PGresult *r, int row, int col, char *dst, size_t len)
{
    snprintf(dst, len, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

char *pg_get_dup(const PGresult *r, int row, int col)
{
    return strdup(PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

void pg_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

bool pg_hex_decode(const char *hex, uint8_t *out, size_t out_len)
{
    if (hex[0] == '\\' && hex[1] == 'x') hex += 2;
    if (strlen(hex) != out_len * 2) return false;
    for (size_t i = 0; i < out_len; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* {"a","b \"c\""}: every element quoted, '"' and '\' escaped. */
char *pg_array_encode(char *const *items, size_t n)
{
    size_t len = 3;
    char *out, *w;
    for (size_t i = 0; i < n; i++) len += 3 + 2 * strlen(items[i]);
    out = malloc(len);
    if (!out) return NULL;
    w = out;
    *w++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) *w++ = ',';
        *w++ = '"';
        for (const char *p = items[i]; *p; p++) {
            if (*p == '"' || *p == '\\') *w++ = '\\';
            *w++ = *p;
        }
        *w++ = '"';
    }
    *w++ = '}';
    *w = '\0';
    return out;
}

/* Parse the text form of a one-dimensional text[]: elements are bare or
 * double-quoted with backslash escapes; the server quotes whatever could
 * be ambiguous.  NULL elements do not occur (tags are never NULL). */
bool pg_array_decode(const char *text, char ***items, size_t *n)
{
    const char *p = text;
    size_t cap = 0, len = strlen(text);
    char **v = NULL, *buf;
    *items = NULL;
    *n = 0;
    if (*p != '{') return false;
    p++;
    if (*p == '}') return true;
    buf = malloc(len + 1);
    if (!buf) return false;
    for (;;) {
        size_t bl = 0;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1]) p++;
                buf[bl++] = *p;
            }
            if (*p != '"') goto bad;
            p++;
        } else {
            while (*p && *p != ',' && *p != '}') buf[bl++] = *p++;
        }
        buf[bl] = '\0';
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 4;
            char **nv = realloc(v, nc * sizeof *nv);
            if (!nv) goto bad;
            v = nv;
            cap = nc;
        }
        if (!(v[*n] = strdup(buf))) goto bad;
        (*n)++;
        if (*p == ',') { p++; continue; }
        if (*p == '}') break;
        goto bad;
    }
    free(buf);
    *items = v;
    return true;
bad:
    free(buf);
    bb_strv_free(v, *n);
    *n = 0;
    return false;
}

bool pg_row_to_post(const PGresult *r, int row, bb_post *p)
{
    memset(p, 0, sizeof *p);
    pg_get_str(r, row, 0, p->id, sizeof p->id);
    pg_get_str(r, row, 1, p->team, sizeof p->team);
    p->author = pg_get_dup(r, row, 2);
    p->content = pg_get_dup(r, row, 3);
    pg_get_str(r, row, 5, p->parent_id, sizeof p->parent_id);
    pg_get_str(r, row, 6, p->thread_id, sizeof p->thread_id);
    p->created_ms = pg_get_i64(r, row, 7);
    p->deleted_ms = pg_get_i64(r, row, 8);
    if (!p->author || !p->content || !pg_array_decode(PQgetvalue(r, row, 4), &p->tags, &p->n_tags)) {
        bb_post_clear(p);
        return false;
    }
    return true;
}
