/*
 * core/router.c — match a path against the route templates.  Segments in
 * braces capture one percent-decoded path segment; a decoded value holding
 * '/', NUL or a control character never matches.
 */
#include "router.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEGMENT 512

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode one segment; false if malformed or it decodes to something that
 * is never a valid name (so "%2F" cannot smuggle a slash). */
static bool decode_segment(const char *s, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len) return false;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) return false;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '/' || c < 0x20 || c == 0x7f) return false;
        if (o + 1 >= outlen) return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return o > 0 && strcmp(out, ".") != 0 && strcmp(out, "..") != 0;
}

/* Does path fit tmpl?  Captures into params when given. */
static bool fits(const char *tmpl, const char *path, char **params)
{
    int np = 0;
    while (*tmpl && *path) {
        const char *te, *pe;
        if (*tmpl != '/' || *path != '/') return false;
        tmpl++;
        path++;
        te = strchr(tmpl, '/');
        pe = strchr(path, '/');
        size_t tl = te ? (size_t)(te - tmpl) : strlen(tmpl), pl = pe ? (size_t)(pe - path) : strlen(path);
        if (tl > 0 && tmpl[0] == '{') {
            char buf[MAX_SEGMENT];
            if (pl == 0 || !decode_segment(path, pl, buf, sizeof buf)) return false;
            if (params && np < BB_MAX_PATH_PARAMS) {
                params[np] = strdup(buf);
                if (!params[np]) return false;
            }
            np++;
        } else if (tl != pl || strncmp(tmpl, path, tl) != 0) {
            return false;
        }
        tmpl += tl;
        path += pl;
    }
    return *tmpl == '\0' && *path == '\0';
}

bb_match bb_route_match(bb_req *req, char *allow, size_t allow_len)
{
    bool path_seen = false;
    size_t used = 0;
    if (allow_len) allow[0] = '\0';
    for (size_t i = 0; i < bb_routes_count; i++) {
        const bb_route *r = &bb_routes[i];
        if (!fits(r->tmpl, req->path, NULL)) continue;
        path_seen = true;
        if (strcmp(r->method, req->method) == 0) {
            if (!fits(r->tmpl, req->path, req->params)) return BB_MATCH_NO_PATH;
            req->route = r;
            return BB_MATCH_OK;
        }
        if (used < allow_len)
            used += (size_t)snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "", r->method);
    }
    return path_seen ? BB_MATCH_NO_METHOD : BB_MATCH_NO_PATH;
}
