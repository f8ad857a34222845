/*
 * core/session_record.c — encode/decode the session record (layout in
 * session_record.h).
 */
#include "session_record.h"

#include <stdlib.h>
#include <string.h>

typedef struct writer { uint8_t *p; size_t n, cap; bool ok; } writer;
typedef struct reader { const uint8_t *p; size_t left; bool ok; } reader;

static void put_bytes(writer *w, const void *b, size_t n)
{
    if (!w->ok || w->n + n > w->cap) { w->ok = false; return; }
    memcpy(w->p + w->n, b, n);
    w->n += n;
}

static void put_u8(writer *w, uint8_t v) { put_bytes(w, &v, 1); }

static void put_u64(writer *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    put_bytes(w, b, 8);
}

static void put_str(writer *w, const char *s)
{
    size_t n = strlen(s);
    uint8_t b[2];
    if (n > UINT16_MAX) { w->ok = false; return; }
    b[0] = (uint8_t)n;
    b[1] = (uint8_t)(n >> 8);
    put_bytes(w, b, 2);
    put_bytes(w, s, n);
}

static const uint8_t *take(reader *r, size_t n)
{
    const uint8_t *at = r->p;
    if (!r->ok || n > r->left) { r->ok = false; return NULL; }
    r->p += n;
    r->left -= n;
    return at;
}

static uint8_t get_u8(reader *r)
{
    const uint8_t *b = take(r, 1);
    return b ? b[0] : 0;
}

static uint64_t get_u64(reader *r)
{
    const uint8_t *b = take(r, 8);
    uint64_t v = 0;
    for (int i = 0; b && i < 8; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}

/* Into a fixed field of cap bytes (NUL included). */
static void get_str(reader *r, char *dst, size_t cap)
{
    const uint8_t *lb = take(r, 2), *s;
    size_t n;
    if (!lb) return;
    n = (size_t)lb[0] | (size_t)lb[1] << 8;
    if (n >= cap || !(s = take(r, n)) || memchr(s, '\0', n)) { r->ok = false; return; }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

uint8_t *bb_session_record_encode(const bb_session *in, size_t *len)
{
    const char *strs[] = { in->team, in->key_id, in->agent, in->protocol, in->client_name, in->client_version,
                           in->log_level };
    size_t cap = 1 + 1 + 4 * 8 + 1;
    writer w;
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) cap += 2 + strlen(strs[i]);
    for (size_t i = 0; i < in->n_subs; i++) cap += 2 + strlen(in->subs[i]);
    if (!(w.p = malloc(cap))) return NULL;
    w.n = 0;
    w.cap = cap;
    w.ok = in->n_subs <= BB_SESSION_SUBS_MAX;
    put_u8(&w, BB_SESSION_RECORD_VERSION);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) put_str(&w, strs[i]);
    put_u8(&w, in->initialized ? 1 : 0);
    put_u64(&w, in->last_event_id);
    put_u64(&w, (uint64_t)in->created_ms);
    put_u64(&w, (uint64_t)in->last_active_ms);
    put_u64(&w, (uint64_t)in->expires_ms);
    put_u8(&w, (uint8_t)in->n_subs);
    for (size_t i = 0; i < in->n_subs; i++) put_str(&w, in->subs[i]);
    if (!w.ok) { free(w.p); return NULL; }
    *len = w.n;
    return w.p;
}

bool bb_session_record_decode(const uint8_t *rec, size_t len, bb_session *out)
{
    reader r = { rec, len, true };
    uint8_t init, n_subs;
    if (get_u8(&r) != BB_SESSION_RECORD_VERSION) return false;
    get_str(&r, out->team, sizeof out->team);
    get_str(&r, out->key_id, sizeof out->key_id);
    get_str(&r, out->agent, sizeof out->agent);
    get_str(&r, out->protocol, sizeof out->protocol);
    get_str(&r, out->client_name, sizeof out->client_name);
    get_str(&r, out->client_version, sizeof out->client_version);
    get_str(&r, out->log_level, sizeof out->log_level);
    init = get_u8(&r);
    out->initialized = init != 0;
    out->last_event_id = get_u64(&r);
    out->created_ms = (int64_t)get_u64(&r);
    out->last_active_ms = (int64_t)get_u64(&r);
    out->expires_ms = (int64_t)get_u64(&r);
    n_subs = get_u8(&r);
    if (!r.ok || init > 1 || n_subs > BB_SESSION_SUBS_MAX) return false;
    out->n_subs = 0;
    for (uint8_t i = 0; i < n_subs && r.ok; i++) {
        const uint8_t *lb = take(&r, 2), *s;
        size_t n = lb ? ((size_t)lb[0] | (size_t)lb[1] << 8) : 0;
        char *uri;
        if (!lb || !(s = take(&r, n)) || memchr(s, '\0', n) || !(uri = strndup((const char *)s, n))) {
            r.ok = false;
            break;
        }
        out->subs[out->n_subs++] = uri;   /* n_subs <= BB_SESSION_SUBS_MAX checked above */
    }
    if (!r.ok || r.left != 0) {
        bb_session_clear(out);
        return false;
    }
    return true;
}
