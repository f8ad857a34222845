/*
 * core/ratelimit.c — rate limits per API key and class (read, write, delete).
 *
 * In process: one token bucket per (identity, class): capacity `burst`,
 * refilled continuously at `per_minute`/60 s.  Buckets live in a sharded
 * hash table; a bucket that has refilled completely is the same as no
 * bucket, so when a shard is full those are dropped first (memory stays
 * bounded whatever the number of keys).
 *
 * Shared (ratelimit.shared: true): the session plugin's hit() counts in
 * fixed one-minute windows of `per_minute` hits, atomically across every
 * instance sharing the backend.  When the backend has no hit() or is
 * unavailable, the in-process bucket answers (logged), so an outage of the
 * counter store never turns into an outage of the API.
 */
#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "log.h"
#include "metrics.h"
#include "reply.h"
#include "sessions.h"

#define SHARDS          32
#define SHARD_SLOTS     1024          /* open-addressing slots per shard */
#define IDENTITY_MAX    (BB_ID_MAX + 80)
#define WINDOW_MS       60000

typedef struct bucket {
    char     id[IDENTITY_MAX];        /* "" = free slot */
    int      cls;
    double   tokens;
    int64_t  last_ms;
} bucket;

typedef struct shard {
    pthread_mutex_t lock;
    bucket          slots[SHARD_SLOTS];
    size_t          used;
} shard;

struct bb_ratelimit {
    bb_server *srv;
    bool       shared;
    shard      shards[SHARDS];
};

bb_ratelimit *bb_ratelimit_new(bb_server *srv)
{
    bb_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl) return NULL;
    rl->srv = srv;
    rl->shared = srv && srv->app && bb_cfg_bool(bb_config_root(bb_app_config(srv->app)), "ratelimit.shared", false);
    for (int i = 0; i < SHARDS; i++) pthread_mutex_init(&rl->shards[i].lock, NULL);
    return rl;
}

void bb_ratelimit_free(bb_ratelimit *rl)
{
    if (!rl) return;
    for (int i = 0; i < SHARDS; i++) pthread_mutex_destroy(&rl->shards[i].lock);
    free(rl);
}

static uint64_t hash_id(const char *s, int cls)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)cls;   /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void refill(bucket *b, const bb_rate_class_cfg *cfg, int64_t now)
{
    double rate = (double)cfg->per_minute / WINDOW_MS;   /* tokens per ms */
    if (now > b->last_ms) b->tokens += (double)(now - b->last_ms) * rate;
    if (b->tokens > (double)cfg->burst) b->tokens = (double)cfg->burst;
    b->last_ms = now;
}

/* Drop buckets that are full again (they carry no information). */
static void sweep(shard *s, const bb_settings *set, int64_t now)
{
    for (size_t i = 0; i < SHARD_SLOTS; i++) {
        bucket *b = &s->slots[i];
        if (!b->id[0]) continue;
        refill(b, &set->rate[b->cls], now);
        if (b->tokens >= (double)set->rate[b->cls].burst) { b->id[0] = '\0'; s->used--; }
    }
    /* Open addressing needs the chains intact: rebuild the table. */
    {
        static const bucket empty;
        bucket *old = malloc(sizeof s->slots);
        if (!old) return;
        memcpy(old, s->slots, sizeof s->slots);
        for (size_t i = 0; i < SHARD_SLOTS; i++) s->slots[i] = empty;
        for (size_t i = 0; i < SHARD_SLOTS; i++) {
            if (!old[i].id[0]) continue;
            size_t j = (size_t)(hash_id(old[i].id, old[i].cls) / SHARDS) % SHARD_SLOTS;
            while (s->slots[j].id[0]) j = (j + 1) % SHARD_SLOTS;
            s->slots[j] = old[i];
        }
        free(old);
    }
}

/* Find or make the bucket; NULL only if the shard is full of busy keys. */
static bucket *find(shard *s, const char *id, int cls, const bb_settings *set, int64_t now, uint64_t h)
{
    for (int pass = 0; pass < 2; pass++) {
        size_t j = (size_t)(h / SHARDS) % SHARD_SLOTS;
        for (size_t n = 0; n < SHARD_SLOTS; n++, j = (j + 1) % SHARD_SLOTS) {
            bucket *b = &s->slots[j];
            if (!b->id[0]) {
                if (s->used >= SHARD_SLOTS * 3 / 4) break;    /* keep probes short */
                snprintf(b->id, sizeof b->id, "%s", id);
                b->cls = cls;
                b->tokens = (double)set->rate[cls].burst;
                b->last_ms = now;
                s->used++;
                return b;
            }
            if (b->cls == cls && strcmp(b->id, id) == 0) return b;
        }
        if (pass == 0) sweep(s, set, now);
    }
    return NULL;
}

static void take_local(bb_ratelimit *rl, const bb_settings *set, const char *identity, bb_rate_class cls,
                       bb_rate_result *out)
{
    const bb_rate_class_cfg *cfg = &set->rate[cls];
    double rate = (double)cfg->per_minute / WINDOW_MS;
    uint64_t h = hash_id(identity, (int)cls);
    shard *s = &rl->shards[h % SHARDS];
    int64_t now = bb_now_ms();
    bucket *b;
    double tokens;

    pthread_mutex_lock(&s->lock);
    b = find(s, identity, (int)cls, set, now, h);
    if (!b) {
        /* every slot busy with a key still being limited: refuse rather than grow */
        pthread_mutex_unlock(&s->lock);
        out->allowed = false;
        out->limit = cfg->burst;
        out->remaining = 0;
        out->reset_s = out->retry_after_s = 1;
        return;
    }
    refill(b, cfg, now);
    out->allowed = b->tokens >= 1.0;
    if (out->allowed) b->tokens -= 1.0;
    tokens = b->tokens;
    pthread_mutex_unlock(&s->lock);

    out->limit = cfg->burst;
    out->remaining = (int64_t)floor(tokens);
    out->reset_s = (int64_t)ceil(((double)cfg->burst - tokens) / rate / 1000.0);
    out->retry_after_s = out->allowed ? 0 : (int64_t)ceil((1.0 - tokens) / rate / 1000.0);
    if (!out->allowed && out->retry_after_s < 1) out->retry_after_s = 1;
}

static bool take_shared(bb_ratelimit *rl, const bb_call *call, const bb_settings *set, const char *identity,
                        bb_rate_class cls, bb_rate_result *out)
{
    static const char *const names[BB_RATE_N] = { "read", "write", "delete" };
    const bb_rate_class_cfg *cfg = &set->rate[cls];
    bb_counter_result r;
    bb_error err;
    char key[IDENTITY_MAX + 16];
    int64_t wait_ms;
    if (!rl->srv->sessions) return false;
    bb_error_clear(&err);
    snprintf(key, sizeof key, "rl:%s:%s", names[cls], identity);
    /* through the sessions module, which hashes the counter name: the shared
     * store never holds an API key id in the clear */
    if (bb_sessions_hit(rl->srv->sessions, call, key,
                        (uint32_t)(cfg->per_minute > UINT32_MAX ? UINT32_MAX : cfg->per_minute), WINDOW_MS, &r,
                        &err) != BB_OK) {
        bb_warn("ratelimit", "shared counter unavailable (%s); limiting in process", err.msg);
        return false;
    }
    wait_ms = r.reset_ms - bb_wall_ms();
    if (wait_ms < 0) wait_ms = 0;
    out->allowed = r.allowed;
    out->limit = cfg->per_minute;
    out->remaining = r.remaining;
    out->reset_s = (wait_ms + 999) / 1000;
    out->retry_after_s = r.allowed ? 0 : (out->reset_s > 0 ? out->reset_s : 1);
    return true;
}

void bb_ratelimit_take(bb_ratelimit *rl, const bb_call *call, const char *identity, bb_rate_class cls,
                       bb_rate_result *out)
{
    const bb_settings *set = bb_settings_now(rl->srv);
    memset(out, 0, sizeof *out);
    if (cls < 0 || cls >= BB_RATE_N) { out->allowed = true; return; }
    if (rl->shared && take_shared(rl, call, set, identity, cls, out)) return;
    take_local(rl, set, identity, cls, out);
}

bool bb_ratelimit_request(bb_req *req, bb_rate_class cls, enum MHD_Result *answered)
{
    static const char *const names[BB_RATE_N] = { "read", "write", "delete" };
    static const char *const labels[] = { "class", NULL };
    bb_rate_result r;
    bb_call call = bb_req_call(req);
    const char *identity = req->who.key_id[0] ? req->who.key_id : req->who.team;
    char ra[24];
    json_t *body;

    if (!req->srv->limiter || cls < 0 || cls >= BB_RATE_N) return true;
    bb_ratelimit_take(req->srv->limiter, &call, identity, cls, &r);
    req->has_rate = true;
    req->rate_limit = r.limit;
    req->rate_remaining = r.remaining;
    req->rate_reset_s = r.reset_s;
    if (r.allowed) return true;

    bb_metric_inc(bb_metric_family(BB_METRIC_COUNTER, "ratelimit_rejected_total", "Requests refused with 429 by class",
                                   labels),
                  (const char *const[]){ names[cls] });
    body = json_pack("{s:s, s:s, s:{s:s, s:I, s:I}, s:s}", "error", "rate limit exceeded, retry later", "code",
                     "RATE_LIMITED", "details", "class", names[cls], "limit", (json_int_t)r.limit, "retry_after_s",
                     (json_int_t)r.retry_after_s, "request_id", req->request_id);
    snprintf(ra, sizeof ra, "%lld", (long long)r.retry_after_s);
    *answered = bb_reply_json_hdr(req, 429, body, "Retry-After", ra);
    return false;
}
