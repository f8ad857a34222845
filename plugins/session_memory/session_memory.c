/*
 * plugins/session_memory/session_memory.c — the embedded session store:
 * sealed records and windowed counters in this process's memory.
 *
 * Layout: N shards (N grows with session.memory.max_sessions, at most 64),
 * each a mutex over a chained hash table of records, an LRU list of them
 * (most recently used first) and a chained table of counters.  Record keys
 * are already uniformly random (keyed BLAKE2b from the core), so their
 * bytes pick shard and bucket directly; counter names go through SipHash
 * with a per-instance random key (hash flooding).  A call locks one shard.
 *
 * Expiry: get/touch check the expiry on every access, so an expired record
 * is invisible at once (and freed right there); a reaper thread sweeps
 * every shard each reap_interval to reclaim the rest, and expired counters.
 *
 * Bound: a put that would take the store past max_sessions evicts the
 * least recently used record of the shard it lands in (counted in
 * session_memory_evictions_total).  With one shard (up to 4096 sessions)
 * the order is exact; above, it is per shard, and the bound may be passed
 * by at most one record per concurrent writer (or when the landing shard is
 * empty), never more.
 */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <botboard/session.h>

#define MAX_SHARDS          64
#define SESSIONS_PER_SHARD  4096   /* below this many, fewer shards (exact LRU in tests) */
#define MIN_BUCKETS         16

typedef struct entry {
    struct entry *next;                 /* hash chain */
    struct entry *lru_prev, *lru_next;  /* toward head = more recent */
    int64_t       expires_ms;           /* unix ms */
    uint32_t      len;
    uint8_t       hash[BB_SESSION_HASH_LEN];
    uint8_t       data[];
} entry;

typedef struct counter {
    struct counter *next;
    uint64_t        h;
    int64_t         reset_ms;           /* unix ms: end of the current window */
    uint32_t        count;
    char            key[];
} counter;

typedef struct shard {
    pthread_mutex_t lock;
    entry         **buckets;
    size_t          n_buckets, n;
    entry          *head, *tail;        /* LRU */
    counter       **cbuckets;
    size_t          n_cbuckets, n_counters;
} __attribute__((aligned(64))) shard;

struct bb_session_store {
    const bb_host_api *api;
    bb_host           *host;
    shard             *shards;
    size_t             n_shards;
    int64_t            max_sessions, max_counters;   /* bounds on the whole store */
    size_t             counters_per_shard;            /* sizes a shard's counter table */
    int64_t            max_record;
    int64_t            reap_ms;
    uint8_t            sip_key[crypto_shorthash_KEYBYTES];
    atomic_llong       live, n_counters, evictions;
    bb_series         *m_evicted, *m_expired;
    /* reaper */
    pthread_t          reaper;
    bool               reaper_running;
    pthread_mutex_t    stop_lock;
    pthread_cond_t     stop_cond;
    bool               stopping;
};

/* ---- helpers ------------------------------------------------------------------ */

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static shard *shard_of(bb_session_store *m, const uint8_t hash[BB_SESSION_HASH_LEN])
{
    return &m->shards[load64(hash) % m->n_shards];
}

static size_t bucket_of(const shard *sh, const uint8_t hash[BB_SESSION_HASH_LEN])
{
    return (size_t)(load64(hash + 8) & (sh->n_buckets - 1));
}

static void lru_unlink(shard *sh, entry *e)
{
    if (e->lru_prev) e->lru_prev->lru_next = e->lru_next;
    else sh->head = e->lru_next;
    if (e->lru_next) e->lru_next->lru_prev = e->lru_prev;
    else sh->tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(shard *sh, entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = sh->head;
    if (sh->head) sh->head->lru_prev = e;
    sh->head = e;
    if (!sh->tail) sh->tail = e;
}

/* The chain slot that points at the entry for hash (or at NULL). */
static entry **find_slot(shard *sh, const uint8_t hash[BB_SESSION_HASH_LEN])
{
    entry **pp = &sh->buckets[bucket_of(sh, hash)];
    while (*pp && memcmp((*pp)->hash, hash, BB_SESSION_HASH_LEN) != 0) pp = &(*pp)->next;
    return pp;
}

static void drop(bb_session_store *m, shard *sh, entry *e)
{
    entry **pp = find_slot(sh, e->hash);
    if (*pp == e) *pp = e->next;
    lru_unlink(sh, e);
    sh->n--;
    atomic_fetch_sub(&m->live, 1);
    sodium_memzero(e->data, e->len);
    free(e);
}

/* Double the bucket array when the load passes 1 (best effort). */
static void maybe_grow(shard *sh)
{
    size_t nb;
    entry **fresh;
    if (sh->n < sh->n_buckets) return;
    nb = sh->n_buckets * 2;
    if (!(fresh = calloc(nb, sizeof *fresh))) return;
    for (size_t i = 0; i < sh->n_buckets; i++) {
        entry *e = sh->buckets[i];
        while (e) {
            entry *next = e->next;
            size_t b = (size_t)(load64(e->hash + 8) & (nb - 1));
            e->next = fresh[b];
            fresh[b] = e;
            e = next;
        }
    }
    free(sh->buckets);
    sh->buckets = fresh;
    sh->n_buckets = nb;
}

static void count_expired(bb_session_store *m, double n)
{
    if (n > 0) m->api->add(m->m_expired, n);
}

/* ---- records -------------------------------------------------------------------- */

static bb_status mem_put(bb_session_store *m, const bb_call *call, const uint8_t hash[BB_SESSION_HASH_LEN],
                         const void *sealed, size_t len, int64_t expires_ms, bb_error *err)
{
    shard *sh = shard_of(m, hash);
    entry **pp, *e, *old;
    (void)call;
    if ((int64_t)len > m->max_record)
        return bb_fail(err, BB_INVALID, NULL, "session record of %zu bytes is over session.memory.max_record_bytes",
                       len);
    if (!(e = malloc(sizeof *e + len))) return bb_fail(err, BB_UNAVAILABLE, NULL, "out of memory");
    memcpy(e->hash, hash, BB_SESSION_HASH_LEN);
    memcpy(e->data, sealed, len);
    e->len = (uint32_t)len;
    e->expires_ms = expires_ms;
    e->lru_prev = e->lru_next = NULL;
    pthread_mutex_lock(&sh->lock);
    pp = find_slot(sh, hash);
    if ((old = *pp) != NULL) drop(m, sh, old);
    if (expires_ms <= m->api->wall_ms()) {   /* already over: nothing to keep */
        pthread_mutex_unlock(&sh->lock);
        free(e);
        return BB_OK;
    }
    while (atomic_load(&m->live) >= m->max_sessions && sh->tail) {
        entry *victim = sh->tail;
        bool was_expired = victim->expires_ms <= m->api->wall_ms();
        drop(m, sh, victim);
        if (was_expired) count_expired(m, 1);
        else {
            atomic_fetch_add(&m->evictions, 1);
            m->api->add(m->m_evicted, 1);
        }
    }
    maybe_grow(sh);
    pp = find_slot(sh, hash);
    e->next = NULL;
    *pp = e;
    lru_push_front(sh, e);
    sh->n++;
    atomic_fetch_add(&m->live, 1);
    pthread_mutex_unlock(&sh->lock);
    return BB_OK;
}

/* Under the shard lock: the live entry for hash, or NULL (an expired one is
 * freed on the spot). */
static entry *live_entry(bb_session_store *m, shard *sh, const uint8_t hash[BB_SESSION_HASH_LEN])
{
    entry *e = *find_slot(sh, hash);
    if (e && e->expires_ms <= m->api->wall_ms()) {
        drop(m, sh, e);
        count_expired(m, 1);
        return NULL;
    }
    return e;
}

static bb_status mem_get(bb_session_store *m, const bb_call *call, const uint8_t hash[BB_SESSION_HASH_LEN],
                         void **sealed, size_t *len, bb_error *err)
{
    shard *sh = shard_of(m, hash);
    entry *e;
    void *copy;
    (void)call;
    *sealed = NULL;
    *len = 0;
    pthread_mutex_lock(&sh->lock);
    if (!(e = live_entry(m, sh, hash))) {
        pthread_mutex_unlock(&sh->lock);
        return bb_fail(err, BB_NOT_FOUND, NULL, "no such session");
    }
    if (!(copy = malloc(e->len ? e->len : 1))) {
        pthread_mutex_unlock(&sh->lock);
        return bb_fail(err, BB_UNAVAILABLE, NULL, "out of memory");
    }
    memcpy(copy, e->data, e->len);
    *len = e->len;
    lru_unlink(sh, e);
    lru_push_front(sh, e);
    pthread_mutex_unlock(&sh->lock);
    *sealed = copy;
    return BB_OK;
}

static bb_status mem_touch(bb_session_store *m, const bb_call *call, const uint8_t hash[BB_SESSION_HASH_LEN],
                           int64_t expires_ms, bb_error *err)
{
    shard *sh = shard_of(m, hash);
    entry *e;
    (void)call;
    pthread_mutex_lock(&sh->lock);
    if (!(e = live_entry(m, sh, hash))) {
        pthread_mutex_unlock(&sh->lock);
        return bb_fail(err, BB_NOT_FOUND, NULL, "no such session");
    }
    e->expires_ms = expires_ms;
    lru_unlink(sh, e);
    lru_push_front(sh, e);
    if (expires_ms <= m->api->wall_ms()) drop(m, sh, e);
    pthread_mutex_unlock(&sh->lock);
    return BB_OK;
}

static bb_status mem_remove(bb_session_store *m, const bb_call *call, const uint8_t hash[BB_SESSION_HASH_LEN],
                            bb_error *err)
{
    shard *sh = shard_of(m, hash);
    entry *e;
    (void)call;
    (void)err;
    pthread_mutex_lock(&sh->lock);
    if ((e = *find_slot(sh, hash)) != NULL) drop(m, sh, e);
    pthread_mutex_unlock(&sh->lock);
    return BB_OK;
}

static bb_status mem_count(bb_session_store *m, const bb_call *call, int64_t *out, bb_error *err)
{
    (void)call;
    (void)err;
    *out = (int64_t)atomic_load(&m->live);
    return BB_OK;
}

/* ---- counters ------------------------------------------------------------------ */

static void counters_sweep(bb_session_store *m, shard *sh, int64_t now)
{
    for (size_t i = 0; i < sh->n_cbuckets; i++) {
        counter **pp = &sh->cbuckets[i];
        while (*pp) {
            counter *c = *pp;
            if (c->reset_ms <= now) {
                *pp = c->next;
                free(c);
                sh->n_counters--;
                atomic_fetch_sub(&m->n_counters, 1);
            } else {
                pp = &c->next;
            }
        }
    }
}

static bb_status mem_hit(bb_session_store *m, const bb_call *call, const char *key, uint32_t limit,
                         int64_t window_ms, bb_counter_result *out, bb_error *err)
{
    uint8_t hbytes[crypto_shorthash_BYTES];
    uint64_t h;
    size_t klen = strlen(key);
    shard *sh;
    counter **pp, *c;
    int64_t now;
    (void)call;
    if (window_ms <= 0) return bb_fail(err, BB_INVALID, "window_ms", "the window must be positive");
    crypto_shorthash(hbytes, (const unsigned char *)key, klen, m->sip_key);
    h = load64(hbytes);
    sh = &m->shards[h % m->n_shards];
    pthread_mutex_lock(&sh->lock);
    now = m->api->wall_ms();
    pp = &sh->cbuckets[(h >> 32) & (sh->n_cbuckets - 1)];
    while (*pp && ((*pp)->h != h || strcmp((*pp)->key, key) != 0)) pp = &(*pp)->next;
    if (!(c = *pp)) {
        if (atomic_load(&m->n_counters) >= m->max_counters) counters_sweep(m, sh, now);
        if (atomic_load(&m->n_counters) >= m->max_counters || !(c = malloc(sizeof *c + klen + 1))) {
            pthread_mutex_unlock(&sh->lock);
            return bb_fail(err, BB_UNAVAILABLE, NULL, "counter table full (session.memory.max_counters)");
        }
        c->h = h;
        c->count = 0;
        c->reset_ms = now + window_ms;
        memcpy(c->key, key, klen + 1);
        c->next = sh->cbuckets[(h >> 32) & (sh->n_cbuckets - 1)];
        sh->cbuckets[(h >> 32) & (sh->n_cbuckets - 1)] = c;
        sh->n_counters++;
        atomic_fetch_add(&m->n_counters, 1);
    } else if (c->reset_ms <= now) {   /* the window is over: a new one starts with this hit */
        c->count = 0;
        c->reset_ms = now + window_ms;
    }
    if (c->count < UINT32_MAX) c->count++;
    out->allowed = c->count <= limit;
    out->remaining = c->count < limit ? limit - c->count : 0;
    out->reset_ms = c->reset_ms;
    pthread_mutex_unlock(&sh->lock);
    return BB_OK;
}

/* ---- the reaper ----------------------------------------------------------------- */

static size_t reap_shard(bb_session_store *m, shard *sh)
{
    size_t n = 0;
    int64_t now;
    pthread_mutex_lock(&sh->lock);
    now = m->api->wall_ms();
    for (entry *e = sh->tail; e;) {
        entry *prev = e->lru_prev;
        if (e->expires_ms <= now) {
            drop(m, sh, e);
            n++;
        }
        e = prev;
    }
    if (sh->n_counters) counters_sweep(m, sh, now);
    pthread_mutex_unlock(&sh->lock);
    return n;
}

static void *reaper_main(void *arg)
{
    bb_session_store *m = arg;
    pthread_mutex_lock(&m->stop_lock);
    while (!m->stopping) {
        struct timespec ts;
        size_t reaped = 0;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += m->reap_ms / 1000;
        ts.tv_nsec += (m->reap_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        while (!m->stopping && pthread_cond_timedwait(&m->stop_cond, &m->stop_lock, &ts) != ETIMEDOUT) {}
        if (m->stopping) break;
        pthread_mutex_unlock(&m->stop_lock);
        for (size_t i = 0; i < m->n_shards; i++) reaped += reap_shard(m, &m->shards[i]);
        count_expired(m, (double)reaped);
        pthread_mutex_lock(&m->stop_lock);
    }
    pthread_mutex_unlock(&m->stop_lock);
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------ */

static void mem_destroy(bb_session_store *m)
{
    if (!m) return;
    if (m->reaper_running) {
        pthread_mutex_lock(&m->stop_lock);
        m->stopping = true;
        pthread_cond_signal(&m->stop_cond);
        pthread_mutex_unlock(&m->stop_lock);
        pthread_join(m->reaper, NULL);
    }
    for (size_t i = 0; m->shards && i < m->n_shards; i++) {
        shard *sh = &m->shards[i];
        while (sh->head) drop(m, sh, sh->head);
        for (size_t b = 0; sh->cbuckets && b < sh->n_cbuckets; b++) {
            for (counter *c = sh->cbuckets[b], *next; c; c = next) {
                next = c->next;
                free(c);
            }
        }
        free(sh->buckets);
        free(sh->cbuckets);
        pthread_mutex_destroy(&sh->lock);
    }
    free(m->shards);
    pthread_cond_destroy(&m->stop_cond);
    pthread_mutex_destroy(&m->stop_lock);
    sodium_memzero(m->sip_key, sizeof m->sip_key);
    free(m);
}

static bb_status mem_create(const bb_host_api *api, bb_host *host, const bb_cfg *node, bb_session_store **out,
                            bb_error *err)
{
    bb_session_store *m;
    int64_t max_sessions = 0, max_counters = 0;   /* locals first: m->max_sessions is set below */
    pthread_condattr_t ca;
    *out = NULL;
    if (sodium_init() < 0) return bb_fail(err, BB_INTERNAL, NULL, "libsodium failed to initialise");
    if (!(m = calloc(1, sizeof *m))) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    m->api = api;
    m->host = host;
    pthread_mutex_init(&m->stop_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->stop_cond, &ca);
    pthread_condattr_destroy(&ca);
    if (api->cfg_int(node, "memory.max_sessions", &max_sessions, err) != BB_OK ||
        api->cfg_int(node, "memory.max_counters", &max_counters, err) != BB_OK ||
        api->cfg_int(node, "memory.max_record_bytes", &m->max_record, err) != BB_OK ||
        api->cfg_int(node, "memory.reap_interval_ms", &m->reap_ms, err) != BB_OK) {
        mem_destroy(m);
        return err->code;
    }
    m->n_shards = (size_t)(max_sessions / SESSIONS_PER_SHARD);
    if (m->n_shards < 1) m->n_shards = 1;
    if (m->n_shards > MAX_SHARDS) m->n_shards = MAX_SHARDS;
    m->max_sessions = max_sessions;
    m->max_counters = max_counters;
    m->counters_per_shard = (size_t)((max_counters + (int64_t)m->n_shards - 1) / (int64_t)m->n_shards);
    api->random(m->sip_key, sizeof m->sip_key);
    if (!(m->shards = calloc(m->n_shards, sizeof *m->shards))) goto oom;
    for (size_t i = 0; i < m->n_shards; i++) {
        shard *sh = &m->shards[i];
        pthread_mutex_init(&sh->lock, NULL);
        sh->n_buckets = sh->n_cbuckets = MIN_BUCKETS;
        sh->buckets = calloc(sh->n_buckets, sizeof *sh->buckets);
        /* counters: a fixed table sized for the shard's bound */
        while (sh->n_cbuckets < m->counters_per_shard && sh->n_cbuckets < 65536) sh->n_cbuckets *= 2;
        sh->cbuckets = calloc(sh->n_cbuckets, sizeof *sh->cbuckets);
        if (!sh->buckets || !sh->cbuckets) {
            m->n_shards = i + 1;
            goto oom;
        }
    }
    m->m_evicted = api->series(api->metric(host, BB_METRIC_COUNTER, "session_memory_evictions_total",
                                           "Live sessions evicted because session.memory.max_sessions was reached",
                                           NULL), NULL);
    m->m_expired = api->series(api->metric(host, BB_METRIC_COUNTER, "sessions_expired_total",
                                           "Sessions found or reclaimed past their expiry", NULL), NULL);
    if (!m->m_evicted || !m->m_expired) goto oom;
    if (pthread_create(&m->reaper, NULL, reaper_main, m) != 0) {
        mem_destroy(m);
        return bb_fail(err, BB_INTERNAL, NULL, "cannot start the reaper thread");
    }
    m->reaper_running = true;
    *out = m;
    return BB_OK;
oom:
    mem_destroy(m);
    return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
}

static bb_status mem_health(bb_session_store *m, const bb_call *call, char *detail, size_t len, bb_error *err)
{
    (void)call;
    (void)err;
    snprintf(detail, len, "%lld sessions, %lld counters in %zu shards, %lld evicted", (long long)atomic_load(&m->live),
             (long long)atomic_load(&m->n_counters), m->n_shards, (long long)atomic_load(&m->evictions));
    return BB_OK;
}

static const bb_config_key memory_keys[] = {
    { "max_sessions", BB_CFG_INT, "100000", 1, 100000000, NULL, 0,
      "Most sessions kept; at the bound the least recently used is evicted" },
    { "max_counters", BB_CFG_INT, "100000", 1, 100000000, NULL, 0,
      "Most rate-limit counters kept (a full table refuses new counters with UNAVAILABLE)" },
    { "max_record_bytes", BB_CFG_INT, "65536", 64, 16777216, NULL, 0,
      "Largest sealed session record accepted" },
    { "reap_interval_ms", BB_CFG_INT, "1000", 10, 3600000, NULL, 0,
      "How often expired sessions and counters are reclaimed in the background" },
};

static const bb_session_ops memory_ops = {
    .size = sizeof(bb_session_ops),
    .create = mem_create,
    .destroy = mem_destroy,
    .health = mem_health,
    .put = mem_put,
    .get = mem_get,
    .touch = mem_touch,
    .remove = mem_remove,
    .hit = mem_hit,
    .count = mem_count,
};

static const bb_plugin_descriptor memory_desc = {
    .magic = BB_PLUGIN_MAGIC,
    .abi_major = BB_ABI_MAJOR,
    .abi_minor = BB_ABI_MINOR,
    .size = sizeof(bb_plugin_descriptor),
    .kind = BB_KIND_SESSION,
    .name = "memory",
    .version = PACKAGE_VERSION,
    .description = "in-process sessions and counters (sharded, expiring, bounded)",
    .ops = &memory_ops,
    .config_keys = memory_keys,
    .n_config_keys = sizeof memory_keys / sizeof memory_keys[0],
};

BB_PLUGIN_DEFINE(memory_desc)
