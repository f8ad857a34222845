/*
 * core/auth.c — API keys and the request check.
 *
 * The cache maps BLAKE2b(key) → (team, key id, revoked, fetched_at) for
 * auth.cache_ttl_ms, so a busy key costs one query per TTL, and a revoke
 * made anywhere is honoured within that TTL.  Only hashes are cached.
 */
#include "auth.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "log.h"
#include "metrics.h"
#include "reply.h"
#include "router.h"

#define SHARDS 16

typedef struct entry {
    uint8_t      hash[BB_KEY_HASH_LEN];
    bb_principal who;
    bool         revoked;
    int64_t      fetched_ms;
    struct entry *next;
} entry;

typedef struct shard {
    pthread_mutex_t lock;
    entry          *head;
    size_t          n;
} shard;

struct bb_auth_cache {
    shard  shards[SHARDS];
    size_t max_per_shard;
};

bb_auth_cache *bb_auth_new(size_t max_entries)
{
    bb_auth_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->max_per_shard = max_entries / SHARDS + 1;
    for (int i = 0; i < SHARDS; i++) pthread_mutex_init(&c->shards[i].lock, NULL);
    return c;
}

static void shard_clear(shard *s)
{
    entry *e = s->head;
    while (e) { entry *n = e->next; free(e); e = n; }
    s->head = NULL;
    s->n = 0;
}

void bb_auth_flush(bb_auth_cache *c)
{
    if (!c) return;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].lock);
        shard_clear(&c->shards[i]);
        pthread_mutex_unlock(&c->shards[i].lock);
    }
}

void bb_auth_free(bb_auth_cache *c)
{
    if (!c) return;
    for (int i = 0; i < SHARDS; i++) {
        shard_clear(&c->shards[i]);
        pthread_mutex_destroy(&c->shards[i].lock);
    }
    free(c);
}

void bb_key_hash(const char *text, uint8_t out[BB_KEY_HASH_LEN])
{
    crypto_generichash(out, BB_KEY_HASH_LEN, (const unsigned char *)text, strlen(text), NULL, 0);
}

bool bb_key_generate(const char *team, const char *label, char text[BB_KEY_TEXT_MAX], bb_api_key *rec)
{
    uint8_t raw[32];
    char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    if (snprintf(text, BB_KEY_TEXT_MAX, "bbk_%s", b64) >= BB_KEY_TEXT_MAX) return false;
    memset(rec, 0, sizeof *rec);
    bb_new_ulid(rec->id, sizeof rec->id);
    snprintf(rec->team, sizeof rec->team, "%s", team);
    snprintf(rec->prefix, sizeof rec->prefix, "%.12s", text);
    snprintf(rec->label, sizeof rec->label, "%s", label ? label : "");
    bb_key_hash(text, rec->hash);
    rec->created_ms = bb_wall_ms();
    return true;
}

static shard *shard_of(bb_auth_cache *c, const uint8_t *hash) { return &c->shards[hash[0] % SHARDS]; }

static bool cache_get(bb_auth_cache *c, const uint8_t *hash, int64_t ttl_ms, bb_principal *who, bool *revoked)
{
    shard *s = shard_of(c, hash);
    bool hit = false;
    int64_t now = bb_now_ms();
    pthread_mutex_lock(&s->lock);
    for (entry *e = s->head; e; e = e->next) {
        if (sodium_memcmp(e->hash, hash, BB_KEY_HASH_LEN) == 0) {
            if (now - e->fetched_ms < ttl_ms) { *who = e->who; *revoked = e->revoked; hit = true; }
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return hit;
}

static void cache_put(bb_auth_cache *c, const uint8_t *hash, const bb_principal *who, bool revoked)
{
    shard *s = shard_of(c, hash);
    entry *e;
    pthread_mutex_lock(&s->lock);
    for (e = s->head; e; e = e->next)
        if (sodium_memcmp(e->hash, hash, BB_KEY_HASH_LEN) == 0) break;
    if (!e) {
        if (s->n >= c->max_per_shard) shard_clear(s);   /* crude but bounded: refill from storage */
        e = calloc(1, sizeof *e);
        if (!e) { pthread_mutex_unlock(&s->lock); return; }
        memcpy(e->hash, hash, BB_KEY_HASH_LEN);
        e->next = s->head;
        s->head = e;
        s->n++;
    }
    e->who = *who;
    e->revoked = revoked;
    e->fetched_ms = bb_now_ms();
    pthread_mutex_unlock(&s->lock);
}

bb_status bb_auth_key(bb_server *srv, const bb_call *call, const char *text, bb_principal *who, bb_error *err)
{
    uint8_t hash[BB_KEY_HASH_LEN];
    bool revoked = false;
    int64_t ttl = bb_settings_now(srv)->auth_cache_ttl_ms;
    memset(who, 0, sizeof *who);
    if (!text || !*text || strlen(text) >= BB_KEY_TEXT_MAX)
        return bb_fail(err, BB_NOT_FOUND, NULL, "unknown API key");
    bb_key_hash(text, hash);
    if (!(ttl > 0 && srv->auth && cache_get(srv->auth, hash, ttl, who, &revoked))) {
        bb_api_key rec;
        bb_error serr;
        bb_status st;
        bb_error_clear(&serr);
        st = srv->storage->key_by_hash(srv->storage_inst, call, hash, &rec, &serr);
        if (st == BB_NOT_FOUND) {
            memset(who, 0, sizeof *who);
            revoked = false;
        } else if (st != BB_OK) {
            *err = serr;
            return st;
        } else {
            /* The store looked it up by hash; compare again in constant time. */
            who->ok = sodium_memcmp(rec.hash, hash, BB_KEY_HASH_LEN) == 0;
            snprintf(who->team, sizeof who->team, "%s", rec.team);
            snprintf(who->key_id, sizeof who->key_id, "%s", rec.id);
            revoked = rec.revoked_ms != 0;
        }
        if (ttl > 0 && srv->auth) cache_put(srv->auth, hash, who, revoked);
    }
    if (revoked) { who->ok = false; return bb_fail(err, BB_NOT_FOUND, NULL, "API key has been revoked"); }
    if (!who->ok) return bb_fail(err, BB_NOT_FOUND, NULL, "unknown API key");
    return BB_OK;
}

const char *bb_auth_presented(bb_req *req)
{
    const char *authz = bb_req_header(req, "Authorization");
    if (authz && strncasecmp(authz, "Bearer ", 7) == 0) {
        authz += 7;
        while (*authz == ' ') authz++;
        return authz;
    }
    return bb_req_header(req, "x-api-key");
}

static enum MHD_Result reply_401(bb_req *req, const char *msg)
{
    json_t *body = json_pack("{s:s, s:s, s:{}, s:s}", "error", msg, "code", "AUTH_FAILED", "details",
                             "request_id", req->request_id);
    return bb_reply_json_hdr(req, 401, body, "WWW-Authenticate", "Bearer realm=\"botboard\"");
}

bool bb_auth_request(bb_req *req, enum MHD_Result *answered)
{
    const char *key = bb_auth_presented(req);
    bb_call call = bb_req_call(req);
    bb_error err;
    bb_status st;
    bb_error_clear(&err);
    if (!key || !*key) {
        *answered = reply_401(req, "an API key is required (Authorization: Bearer <key> or x-api-key)");
        return false;
    }
    st = bb_auth_key(req->srv, &call, key, &req->who, &err);
    if (st == BB_NOT_FOUND) {
        *answered = reply_401(req, err.msg);
        return false;
    }
    if (st != BB_OK) {
        /* A failed lookup is never the caller's fault: only "come back
         * later" (503) or an internal error (500, message logged only). */
        if (err.code != BB_UNAVAILABLE && err.code != BB_TIMEOUT) err.code = BB_INTERNAL;
        *answered = bb_reply_status(req, &err);
        return false;
    }
    if ((req->route->flags & BB_ROUTE_TEAM) && strcmp(req->params[0], req->who.team) != 0) {
        *answered = bb_reply_error(req, 403, "FORBIDDEN", "this API key belongs to another team",
                                   json_pack("{s:s}", "team", req->params[0]));
        return false;
    }
    return true;
}
