/*
 * core/storage_cache.c — read-through cache of post pages (see storage_cache.h).
 *
 * Consistency.  An entry's generation is the sum of a global counter and
 * its team's counter (one of TEAM_SLOTS, by a hash of the team name; teams
 * sharing a slot only invalidate each other more often).  Both only grow,
 * so the sum changes whenever either is bumped.  A post write bumps its
 * team's counter, whole-store events the global one.  A reader loads the
 * sum BEFORE it reads through the plugin and stores the entry with that
 * value; a writer bumps AFTER the plugin returned.  An entry is served
 * only while its generation is the current one, so:
 *   - a read that starts after a write completed loads the bumped
 *     generation and can only be served an entry read after the bump, i.e.
 *     after the write committed;
 *   - a read that raced a write ("read before, stored after") carries the
 *     old generation and is stale the moment the bump lands.
 * Bumping before the plugin returns would be wrong: a reader could load the
 * new generation, read the old rows, and store them as fresh.  Writers the
 * process cannot see are bounded by ttl_ms.
 *
 * Memory.  Entries are immutable once built and live in one allocation
 * (entry header, key, posts, tag pointer arrays, strings), so a store is one
 * malloc and the byte count is exact.  They are reference counted: a hit
 * takes a reference under the shard lock and copies outside it, so the hot
 * first page (one key, hence one shard) does not serialise its readers on a
 * copy.  The caller frees what it gets with bb_post_page_clear(), which
 * frees every string on its own, so the copy cannot be one block: it is
 * 1 + per post 3 + n_tags allocations (the floor that free contract allows).
 * Callers that can take a loan instead (post_list_lend, ABI 1.1: the MCP
 * read_posts path through upstream_local) get the entry itself, no copy.
 *
 * Bounds.  max_entries and max_bytes are split evenly over the shards and
 * enforced per shard (so the sums never exceed them); each shard evicts its
 * least recently used entry.  A page larger than half a shard's byte budget
 * (and than 1/32 of max_bytes) is not cached, so one big page cannot flush
 * a shard.  Keys longer than
 * KEY_MAX bytes are not cached either.
 */
#include "storage_cache.h"

#include <pthread.h>
#include <sodium.h>
#include <stdalign.h>   /* alignof */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "metrics.h"

#define N_SHARDS_MAX   16      /* 2-4 HTTP workers: 16 keeps two hot keys apart with high odds */
#define KEY_MAX        1024    /* team + filters; longer queries (odd MCP input) go straight through */
#define BUCKETS_MAX    (1u << 16)
#define TEAM_SLOTS     256     /* per-team generation counters; a power of two */
#define ALIGN_UP(x)    (((x) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1))

typedef struct entry {
    struct entry  *hnext;            /* hash chain */
    struct entry  *lprev, *lnext;    /* LRU list, head = most recently used */
    atomic_uint    refs;             /* one for the shard while linked, one per reader copying */
    uint64_t       hash;
    uint64_t       gen;              /* cache generation loaded before the read-through */
    unsigned       team_slot;        /* which team counter is part of gen */
    int64_t        expires_ms;       /* monotonic: now at read start + ttl */
    size_t         bytes;            /* the whole allocation */
    size_t         key_len;
    unsigned char *key;
    bb_post_page   page;             /* points into the same allocation */
} entry;

typedef struct shard {
    pthread_mutex_t lock;
    entry         **buckets;
    size_t          nbuckets;        /* power of two */
    entry          *lru_head, *lru_tail;
    size_t          n, bytes;        /* current */
    size_t          max_n, max_bytes;
    uint64_t        hits, misses, evictions;
    /* Keep neighbouring shards' locks off one cache line (padding, not
     * alignas: calloc only promises max_align_t). */
    char            pad[64];
} shard;

typedef struct watcher {
    struct watcher   *next;
    bb_storage_cache *cache;
    bb_post_event_fn  fn;
    void             *ud;
} watcher;

struct bb_storage_cache {
    bb_storage_ops        ops;        /* what callers get; ours, per instance (watch may be NULL) */
    const bb_storage_ops *inner;
    bb_storage           *inner_inst;
    int64_t               ttl_ms;
    size_t                max_page_bytes;
    _Atomic uint64_t      gen;        /* global part of every generation */
    _Atomic uint64_t      team_gen[TEAM_SLOTS];
    unsigned char         hash_key[crypto_shorthash_KEYBYTES];
    size_t                nshards;    /* power of two */
    pthread_mutex_t       watch_lock;
    watcher              *watchers;   /* freed with the cache: the plugin calls them until its destroy() */
    bb_series            *m_hits, *m_misses, *m_evictions, *m_entries, *m_bytes;
    shard                 shards[N_SHARDS_MAX];
};

static bb_storage_cache *of(bb_storage *self) { return (bb_storage_cache *)(void *)self; }

/* ---- generation --------------------------------------------------------------- */

/* Every team's pages. */
static void bump(bb_storage_cache *c)
{
    /* Release: a reader that sees the new value also sees the committed write
     * the plugin returned from (the plugin's own locks order the data). */
    atomic_fetch_add_explicit(&c->gen, 1, memory_order_acq_rel);
}

/* FNV-1a: spreads team names over the slots; not a defence against anyone
 * (a collision only costs extra misses). */
static unsigned team_slot_of(const char *team)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)(team ? team : ""); *p; p++) h = (h ^ *p) * 16777619u;
    return h & (TEAM_SLOTS - 1);
}

/* One team's pages (all teams when the team is unknown). */
static void bump_team(bb_storage_cache *c, const char *team)
{
    if (!team) { bump(c); return; }
    atomic_fetch_add_explicit(&c->team_gen[team_slot_of(team)], 1, memory_order_acq_rel);
}

static uint64_t gen_now(bb_storage_cache *c, unsigned slot)
{
    return atomic_load_explicit(&c->gen, memory_order_acquire) +
           atomic_load_explicit(&c->team_gen[slot], memory_order_acquire);
}

void bb_storage_cache_invalidate(bb_storage_cache *c) { if (c) bump(c); }

/* ---- keys ---------------------------------------------------------------------- */

/* Every field of the query, unambiguously: a presence bit per optional
 * string (NULL "any" differs from ""), then the strings NUL-terminated.
 * 0 when the query cannot be cached (no team, too long). */
static size_t key_encode(const bb_post_query *q, unsigned char *buf, size_t cap)
{
    const char *strs[5] = { q->team, q->author, q->tag, q->thread_id, q->mentions_of };
    unsigned flags = q->ascending ? 1u : 0u;
    size_t n = 0;
    if (!q->team || cap < 1 + sizeof q->limit + sizeof q->offset) return 0;
    for (int i = 1; i < 5; i++)
        if (strs[i]) flags |= 1u << i;
    buf[n++] = (unsigned char)flags;
    memcpy(buf + n, &q->limit, sizeof q->limit);
    n += sizeof q->limit;
    memcpy(buf + n, &q->offset, sizeof q->offset);
    n += sizeof q->offset;
    for (int i = 0; i < 5; i++) {
        size_t len;
        if (!strs[i]) continue;
        len = strnlen(strs[i], cap - n);
        if (len >= cap - n) return 0;
        memcpy(buf + n, strs[i], len + 1);
        n += len + 1;
    }
    return n;
}

static uint64_t key_hash(const bb_storage_cache *c, const unsigned char *key, size_t len)
{
    /* SipHash with a per-cache random key: query strings come from clients,
     * who must not be able to pile their keys into one chain. */
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t v;
    crypto_shorthash(h, key, len, c->hash_key);
    memcpy(&v, h, sizeof v);
    return v;
}

static shard *shard_of(bb_storage_cache *c, uint64_t h) { return &c->shards[(h >> 56) & (c->nshards - 1)]; }

/* ---- entries ------------------------------------------------------------------- */

static void entry_release(entry *e)
{
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) free(e);
}

/* *sz += more, refusing to pass limit (also guards against overflow). */
static bool grow(size_t *sz, size_t more, size_t limit)
{
    if (*sz > limit || more > limit - *sz) return false;
    *sz += more;
    return true;
}

static char *put_str(char **cursor, const char *s)
{
    size_t len;
    char *out = *cursor;
    if (!s) return NULL;
    len = strlen(s) + 1;
    memcpy(out, s, len);
    *cursor += len;
    return out;
}

/* The page flattened into one allocation; NULL when it is bigger than
 * limit bytes (not worth caching) or memory is short. */
static entry *entry_build(const unsigned char *key, size_t key_len, uint64_t hash, uint64_t gen, unsigned team_slot,
                          int64_t expires, const bb_post_page *pg, size_t limit)
{
    size_t sz = ALIGN_UP(sizeof(entry)), posts_off, ptrs_off, n_ptrs = 0;
    entry *e;
    char *base, *cur;
    char **ptrs;
    if (pg->n && !pg->posts) return NULL;
    posts_off = sz;
    if (pg->n > limit / sizeof(bb_post) || !grow(&sz, pg->n * sizeof(bb_post), limit)) return NULL;
    for (size_t i = 0; i < pg->n; i++) {
        const bb_post *p = &pg->posts[i];
        if (p->n_tags && !p->tags) return NULL;
        if (p->n_tags > limit / sizeof(char *) || !grow(&n_ptrs, p->n_tags, limit / sizeof(char *))) return NULL;
    }
    ptrs_off = sz;
    if (!grow(&sz, n_ptrs * sizeof(char *), limit) || !grow(&sz, key_len, limit)) return NULL;
    for (size_t i = 0; i < pg->n; i++) {
        const bb_post *p = &pg->posts[i];
        if ((p->author && !grow(&sz, strlen(p->author) + 1, limit)) ||
            (p->content && !grow(&sz, strlen(p->content) + 1, limit)))
            return NULL;
        for (size_t j = 0; j < p->n_tags; j++)
            if (p->tags[j] && !grow(&sz, strlen(p->tags[j]) + 1, limit)) return NULL;
    }
    if (!(base = malloc(sz))) return NULL;
    e = (entry *)(void *)base;
    memset(e, 0, sizeof *e);
    atomic_init(&e->refs, 1);
    e->hash = hash;
    e->gen = gen;
    e->team_slot = team_slot;
    e->expires_ms = expires;
    e->bytes = sz;
    e->key_len = key_len;
    e->page.n = pg->n;
    e->page.total = pg->total;
    e->page.posts = pg->n ? (bb_post *)(void *)(base + posts_off) : NULL;
    ptrs = (char **)(void *)(base + ptrs_off);
    cur = base + ptrs_off + n_ptrs * sizeof(char *);
    e->key = (unsigned char *)cur;
    memcpy(cur, key, key_len);
    cur += key_len;
    for (size_t i = 0; i < pg->n; i++) {
        const bb_post *p = &pg->posts[i];
        bb_post *d = &e->page.posts[i];
        *d = *p;   /* the fixed-size fields (ids, team, times) */
        d->author = put_str(&cur, p->author);
        d->content = put_str(&cur, p->content);
        d->tags = p->n_tags ? ptrs : NULL;
        for (size_t j = 0; j < p->n_tags; j++) *ptrs++ = put_str(&cur, p->tags[j]);
    }
    return e;
}

static char *dup_str(const char *s)
{
    size_t len;
    char *d;
    if (!s) return NULL;
    len = strlen(s) + 1;
    if ((d = malloc(len))) memcpy(d, s, len);
    return d;
}

/* A deep copy the caller owns (freed with bb_post_page_clear). */
static bool page_copy(const bb_post_page *src, bb_post_page *out)
{
    bb_post *posts;
    out->posts = NULL;
    out->n = 0;
    out->total = src->total;
    if (src->n == 0) return true;
    if (!(posts = malloc(src->n * sizeof *posts))) return false;
    out->posts = posts;
    for (size_t i = 0; i < src->n; i++) {
        const bb_post *s = &src->posts[i];
        bb_post *d = &posts[i];
        *d = *s;
        d->author = d->content = NULL;
        d->tags = NULL;
        d->n_tags = 0;
        out->n = i + 1;   /* so a failure below frees exactly what was made */
        if ((s->author && !(d->author = dup_str(s->author))) || (s->content && !(d->content = dup_str(s->content))))
            goto fail;
        if (s->n_tags) {
            if (!(d->tags = malloc(s->n_tags * sizeof *d->tags))) goto fail;
            for (size_t j = 0; j < s->n_tags; j++) {
                if (s->tags[j] && !(d->tags[j] = dup_str(s->tags[j]))) goto fail;
                if (!s->tags[j]) d->tags[j] = NULL;
                d->n_tags = j + 1;
            }
        }
    }
    return true;
fail:
    bb_post_page_clear(out);
    return false;
}

/* ---- shards (callers hold s->lock) ---------------------------------------------- */

static void lru_unlink(shard *s, entry *e)
{
    if (e->lprev) e->lprev->lnext = e->lnext; else s->lru_head = e->lnext;
    if (e->lnext) e->lnext->lprev = e->lprev; else s->lru_tail = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_push(shard *s, entry *e)
{
    e->lprev = NULL;
    e->lnext = s->lru_head;
    if (s->lru_head) s->lru_head->lprev = e; else s->lru_tail = e;
    s->lru_head = e;
}

static entry **bucket_of(shard *s, uint64_t h) { return &s->buckets[h & (s->nbuckets - 1)]; }

/* Unlink e (which is in the shard) and drop the shard's reference. */
static void shard_remove(bb_storage_cache *c, shard *s, entry *e)
{
    entry **pp = bucket_of(s, e->hash);
    while (*pp && *pp != e) pp = &(*pp)->hnext;
    if (*pp) *pp = e->hnext;
    lru_unlink(s, e);
    s->n--;
    s->bytes -= e->bytes;
    bb_series_add(c->m_entries, -1);
    bb_series_add(c->m_bytes, -(double)e->bytes);
    entry_release(e);
}

static entry *shard_find(shard *s, const unsigned char *key, size_t key_len, uint64_t h)
{
    for (entry *e = *bucket_of(s, h); e; e = e->hnext)
        if (e->hash == h && e->key_len == key_len && memcmp(e->key, key, key_len) == 0) return e;
    return NULL;
}

/* A fresh entry for the key with a reference for the caller, or NULL.  A
 * stale one found on the way is dropped now rather than left to LRU. */
static entry *lookup(bb_storage_cache *c, shard *s, const unsigned char *key, size_t key_len, uint64_t h,
                     uint64_t gen, int64_t now)
{
    entry *e;
    pthread_mutex_lock(&s->lock);
    e = shard_find(s, key, key_len, h);
    if (e && (e->gen != gen || now >= e->expires_ms)) {
        shard_remove(c, s, e);
        e = NULL;
    }
    if (e) {
        lru_unlink(s, e);
        lru_push(s, e);
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
        s->hits++;
    } else {
        s->misses++;
    }
    pthread_mutex_unlock(&s->lock);
    return e;
}

static void store(bb_storage_cache *c, shard *s, entry *e)
{
    entry *old;
    /* Already stale (a write landed during the read): storing it would only
     * take room from a fresh entry. */
    if (e->gen != gen_now(c, e->team_slot)) { entry_release(e); return; }
    pthread_mutex_lock(&s->lock);
    if ((old = shard_find(s, e->key, e->key_len, e->hash))) {
        if (old->gen > e->gen) {   /* a racing reader stored a newer read (same key, same team): keep it */
            pthread_mutex_unlock(&s->lock);
            entry_release(e);
            return;
        }
        shard_remove(c, s, old);
    }
    while (s->lru_tail && (s->n + 1 > s->max_n || e->bytes > s->max_bytes - s->bytes)) {
        shard_remove(c, s, s->lru_tail);
        s->evictions++;
        bb_series_add(c->m_evictions, 1);
    }
    if (s->n + 1 <= s->max_n && e->bytes <= s->max_bytes - s->bytes) {
        entry **b = bucket_of(s, e->hash);
        e->hnext = *b;
        *b = e;
        lru_push(s, e);
        s->n++;
        s->bytes += e->bytes;
        bb_series_add(c->m_entries, 1);
        bb_series_add(c->m_bytes, (double)e->bytes);
        e = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (e) entry_release(e);   /* cannot fit even in an empty shard */
}

/* ---- the ops ----------------------------------------------------------------- */

/* Where a query's page lives in the cache, and its fresh entry if any. */
typedef struct probe {
    unsigned char key[KEY_MAX];
    size_t        key_len;       /* 0: the query cannot be cached */
    uint64_t      hash, gen;
    unsigned      team_slot;
    int64_t       now;
    shard        *shard;
} probe;

/* The fresh entry for q with a reference for the caller, or NULL (then
 * counted as a miss when q is cacheable). */
static entry *probe_lookup(bb_storage_cache *c, const bb_post_query *q, probe *p)
{
    entry *e;
    if (!(p->key_len = key_encode(q, p->key, sizeof p->key))) return NULL;
    p->hash = key_hash(c, p->key, p->key_len);
    p->shard = shard_of(c, p->hash);
    /* Before the read-through, not after: see the top of the file. */
    p->team_slot = team_slot_of(q->team);
    p->gen = gen_now(c, p->team_slot);
    p->now = bb_now_ms();
    if ((e = lookup(c, p->shard, p->key, p->key_len, p->hash, p->gen, p->now))) return e;
    bb_series_add(c->m_misses, 1);
    return NULL;
}

static bb_status c_post_list(bb_storage *self, const bb_call *call, const bb_post_query *q, bb_post_page *out,
                             bb_error *err)
{
    bb_storage_cache *c = of(self);
    probe p;
    entry *e;
    bb_status st;

    if (!q || !out) return c->inner->post_list(c->inner_inst, call, q, out, err);
    if ((e = probe_lookup(c, q, &p))) {
        bool ok = page_copy(&e->page, out);
        entry_release(e);
        if (ok) {
            bb_series_add(c->m_hits, 1);
            return BB_OK;
        }
        /* Out of memory copying: let the plugin answer (and say so if it cannot). */
        bb_series_add(c->m_misses, 1);
    }
    st = c->inner->post_list(c->inner_inst, call, q, out, err);
    if (st == BB_OK && p.key_len &&
        (e = entry_build(p.key, p.key_len, p.hash, p.gen, p.team_slot, p.now + c->ttl_ms, out, c->max_page_bytes)))
        store(c, p.shard, e);
    return st;
}

/* The loan is an entry reference: a hit lends the cached entry itself; a
 * miss reads through, flattens the page into an entry, caches it when it
 * fits and lends it either way.  The entry is immutable and freed by its
 * last reference, so eviction or a write while it is lent is harmless. */
static bb_status c_post_list_lend(bb_storage *self, const bb_call *call, const bb_post_query *q,
                                  const bb_post_page **page, void **loan, bb_error *err)
{
    bb_storage_cache *c = of(self);
    bb_post_page read = { 0 };
    probe p;
    entry *e;
    bb_status st;

    if (!q || !page || !loan) return bb_fail(err, BB_INVALID, NULL, "no query or no place for the page");
    if ((e = probe_lookup(c, q, &p))) {
        bb_series_add(c->m_hits, 1);
        *page = &e->page;
        *loan = e;
        return BB_OK;
    }
    if ((st = c->inner->post_list(c->inner_inst, call, q, &read, err)) != BB_OK) return st;
    e = p.key_len ? entry_build(p.key, p.key_len, p.hash, p.gen, p.team_slot, p.now + c->ttl_ms, &read,
                                c->max_page_bytes) : NULL;
    if (e) {
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);   /* the loan's; store() takes the other */
        store(c, p.shard, e);
    } else {
        e = entry_build((const unsigned char *)"", 0, 0, 0, 0, 0, &read, SIZE_MAX);   /* lent, never cached */
    }
    bb_post_page_clear(&read);
    if (!e) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    *page = &e->page;
    *loan = e;
    return BB_OK;
}

static void c_page_return(bb_storage *self, void *loan)
{
    (void)self;
    if (loan) entry_release(loan);
}

static bb_status c_post_create(bb_storage *self, const bb_call *call, const bb_post *post, const bb_idempotency *idem,
                               bb_post *out, bool *replayed, bb_error *err)
{
    bb_storage_cache *c = of(self);
    bb_status st = c->inner->post_create(c->inner_inst, call, post, idem, out, replayed, err);
    bump_team(c, post ? post->team : NULL);   /* also on failure: a timeout may still have committed */
    return st;
}

static bb_status c_post_delete(bb_storage *self, const bb_call *call, const char *team, const char *id,
                               int64_t when_ms, bb_error *err)
{
    bb_storage_cache *c = of(self);
    bb_status st = c->inner->post_delete(c->inner_inst, call, team, id, when_ms, err);
    bump_team(c, team);
    return st;
}

static bb_status c_import_all(bb_storage *self, const bb_call *call, bb_record_source next, void *ud, bb_error *err)
{
    bb_storage_cache *c = of(self);
    bb_status st = c->inner->import_all(c->inner_inst, call, next, ud, err);
    bump(c);
    return st;
}

static bb_status c_migrate(bb_storage *self, const bb_call *call, bool apply, bb_migration_fn fn, void *ud,
                           bb_error *err)
{
    bb_storage_cache *c = of(self);
    bb_status st = c->inner->migrate(c->inner_inst, call, apply, fn, ud, err);
    if (apply) bump(c);   /* a migration may rewrite post rows */
    return st;
}

static bb_status c_team_create(bb_storage *self, const bb_call *call, const bb_team *team, bb_error *err)
{
    bb_storage_cache *c = of(self);
    bb_status st = c->inner->team_create(c->inner_inst, call, team, err);
    /* Pages are per team and errors are never cached, so this is belt and
     * braces for plugins that answer an unknown team with an empty page. */
    bump_team(c, team ? team->name : NULL);
    return st;
}

static void on_post_event(void *ud, const char *team, const char *post_id, const char *thread_id, const char *author)
{
    watcher *w = ud;
    bump_team(w->cache, team);   /* before the callback: a subscriber that re-reads sees the new post */
    if (w->fn) w->fn(w->ud, team, post_id, thread_id, author);
}

static bb_status c_watch(bb_storage *self, bb_post_event_fn fn, void *ud, bb_error *err)
{
    bb_storage_cache *c = of(self);
    watcher *w = calloc(1, sizeof *w);
    if (!w) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    w->cache = c;
    w->fn = fn;
    w->ud = ud;
    /* Kept until the cache goes even if watch() fails: the plugin may have
     * started a thread with it before failing. */
    pthread_mutex_lock(&c->watch_lock);
    w->next = c->watchers;
    c->watchers = w;
    pthread_mutex_unlock(&c->watch_lock);
    return c->inner->watch(c->inner_inst, fn ? on_post_event : NULL, w, err);
}

/* The rest pass straight through. */
static bb_status c_health(bb_storage *self, const bb_call *call, char *detail, size_t len, bb_error *err)
{
    return of(self)->inner->health(of(self)->inner_inst, call, detail, len, err);
}
static bb_status c_team_get(bb_storage *self, const bb_call *call, const char *name, bb_team *out, bb_error *err)
{
    return of(self)->inner->team_get(of(self)->inner_inst, call, name, out, err);
}
static bb_status c_team_list(bb_storage *self, const bb_call *call, bb_team_fn fn, void *ud, bb_error *err)
{
    return of(self)->inner->team_list(of(self)->inner_inst, call, fn, ud, err);
}
static bb_status c_key_create(bb_storage *self, const bb_call *call, const bb_api_key *key, bb_error *err)
{
    return of(self)->inner->key_create(of(self)->inner_inst, call, key, err);
}
static bb_status c_key_by_hash(bb_storage *self, const bb_call *call, const uint8_t hash[BB_KEY_HASH_LEN],
                               bb_api_key *out, bb_error *err)
{
    return of(self)->inner->key_by_hash(of(self)->inner_inst, call, hash, out, err);
}
static bb_status c_key_list(bb_storage *self, const bb_call *call, const char *team, bb_key_fn fn, void *ud,
                            bb_error *err)
{
    return of(self)->inner->key_list(of(self)->inner_inst, call, team, fn, ud, err);
}
static bb_status c_key_revoke(bb_storage *self, const bb_call *call, const char *id, int64_t when_ms, bb_error *err)
{
    return of(self)->inner->key_revoke(of(self)->inner_inst, call, id, when_ms, err);
}
static bb_status c_post_get(bb_storage *self, const bb_call *call, const char *team, const char *id, bb_post *out,
                            bb_error *err)
{
    return of(self)->inner->post_get(of(self)->inner_inst, call, team, id, out, err);
}
static bb_status c_distinct(bb_storage *self, const bb_call *call, const char *team, bb_distinct_field field,
                            const char *prefix, int limit, char ***out, size_t *n_out, bb_error *err)
{
    return of(self)->inner->distinct(of(self)->inner_inst, call, team, field, prefix, limit, out, n_out, err);
}
static bb_status c_purge_expired(bb_storage *self, const bb_call *call, int64_t now_ms, bb_error *err)
{
    /* Idempotency records only: no post changes, so no bump (it runs on a timer). */
    return of(self)->inner->purge_expired(of(self)->inner_inst, call, now_ms, err);
}
static bb_status c_export_all(bb_storage *self, const bb_call *call, bb_record_fn fn, void *ud, bb_error *err)
{
    return of(self)->inner->export_all(of(self)->inner_inst, call, fn, ud, err);
}
static bb_status c_backup(bb_storage *self, const bb_call *call, const char *path, bb_error *err)
{
    return of(self)->inner->backup(of(self)->inner_inst, call, path, err);
}

/* create/destroy stay NULL: the app makes and frees the wrapper
 * (bb_storage_cache_new/_free); nobody holding this table may destroy the
 * storage, and a NULL fails loudly where a no-op would hide the mistake. */
static const bb_storage_ops cache_ops_template = {
    .size = sizeof(bb_storage_ops),
    .create = NULL,
    .destroy = NULL,
    .health = c_health,
    .migrate = c_migrate,
    .team_create = c_team_create,
    .team_get = c_team_get,
    .team_list = c_team_list,
    .key_create = c_key_create,
    .key_by_hash = c_key_by_hash,
    .key_list = c_key_list,
    .key_revoke = c_key_revoke,
    .post_create = c_post_create,
    .post_get = c_post_get,
    .post_list = c_post_list,
    .post_delete = c_post_delete,
    .distinct = c_distinct,
    .purge_expired = c_purge_expired,
    .export_all = c_export_all,
    .import_all = c_import_all,
    .backup = c_backup,
    .watch = c_watch,
    .post_list_lend = c_post_list_lend,
    .page_return = c_page_return,
};

/* ---- life cycle ---------------------------------------------------------------- */

static bool metrics_init(bb_storage_cache *c)
{
    c->m_hits = bb_metric_series(bb_metric_family(BB_METRIC_COUNTER, "storage_cache_hits_total",
                                                  "Post pages served from the in-process cache", NULL), NULL);
    c->m_misses = bb_metric_series(bb_metric_family(BB_METRIC_COUNTER, "storage_cache_misses_total",
                                                    "Post page reads that went to the storage plugin", NULL), NULL);
    c->m_evictions = bb_metric_series(bb_metric_family(BB_METRIC_COUNTER, "storage_cache_evictions_total",
                                                       "Cached post pages dropped to stay within cache.max_entries "
                                                       "or cache.max_bytes", NULL), NULL);
    c->m_entries = bb_metric_series(bb_metric_family(BB_METRIC_GAUGE, "storage_cache_entries",
                                                     "Post pages in the cache (fresh or not yet reclaimed)", NULL),
                                    NULL);
    c->m_bytes = bb_metric_series(bb_metric_family(BB_METRIC_GAUGE, "storage_cache_bytes",
                                                   "Bytes held by cached post pages", NULL), NULL);
    return c->m_hits && c->m_misses && c->m_evictions && c->m_entries && c->m_bytes;
}

bb_storage_cache *bb_storage_cache_new(const bb_storage_ops *inner, bb_storage *inner_inst,
                                       const bb_storage_cache_config *cfg, bb_error *err)
{
    bb_storage_cache *c;
    size_t nshards = N_SHARDS_MAX, per_n, per_bytes, nb;
    if (!inner || !inner_inst || !cfg || cfg->ttl_ms <= 0 || cfg->max_entries < 1 || cfg->max_bytes < 1) {
        bb_fail(err, BB_INVALID, NULL, "storage cache: bad configuration");
        return NULL;
    }
    /* Fewer shards than entries would leave shards with no room at all. */
    while (nshards > 1 && nshards > cfg->max_entries) nshards >>= 1;
    per_n = cfg->max_entries / nshards;
    per_bytes = cfg->max_bytes / nshards;
    if (!(c = calloc(1, sizeof *c))) {
        bb_fail(err, BB_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    c->ops = cache_ops_template;
    if (!inner->watch) c->ops.watch = NULL;   /* callers test for NULL to know there are no events */
    c->inner = inner;
    c->inner_inst = inner_inst;
    c->ttl_ms = cfg->ttl_ms;
    /* Half a shard, and never more than 1/32 of the whole (what the key's doc says). */
    c->max_page_bytes = per_bytes / 2 < cfg->max_bytes / 32 ? per_bytes / 2 : cfg->max_bytes / 32;
    c->nshards = nshards;
    atomic_init(&c->gen, 1);
    for (size_t i = 0; i < TEAM_SLOTS; i++) atomic_init(&c->team_gen[i], 0);
    crypto_shorthash_keygen(c->hash_key);
    pthread_mutex_init(&c->watch_lock, NULL);
    for (nb = 8; nb < per_n && nb < BUCKETS_MAX; nb <<= 1) {}
    for (size_t i = 0; i < nshards; i++) {
        shard *s = &c->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->max_n = per_n;
        s->max_bytes = per_bytes;
        s->nbuckets = nb;
        if (!(s->buckets = calloc(nb, sizeof *s->buckets))) {
            bb_fail(err, BB_INTERNAL, NULL, "out of memory");
            bb_storage_cache_free(c);
            return NULL;
        }
    }
    if (!metrics_init(c)) {
        bb_fail(err, BB_INTERNAL, NULL, "out of memory");
        bb_storage_cache_free(c);
        return NULL;
    }
    return c;
}

void bb_storage_cache_free(bb_storage_cache *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->nshards; i++) {
        shard *s = &c->shards[i];
        if (s->buckets) {
            while (s->lru_head) shard_remove(c, s, s->lru_head);   /* keeps the gauges right */
            free(s->buckets);
        }
        pthread_mutex_destroy(&s->lock);
    }
    for (watcher *w = c->watchers, *next; w; w = next) {
        next = w->next;
        free(w);
    }
    pthread_mutex_destroy(&c->watch_lock);
    free(c);
}

const bb_storage_ops *bb_storage_cache_ops(bb_storage_cache *c, bb_storage **inst)
{
    if (inst) *inst = c ? (bb_storage *)(void *)c : NULL;
    return c ? &c->ops : NULL;
}

void bb_storage_cache_get_stats(bb_storage_cache *c, bb_storage_cache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!c) return;
    for (size_t i = 0; i < c->nshards; i++) {
        shard *s = &c->shards[i];
        pthread_mutex_lock(&s->lock);
        out->hits += s->hits;
        out->misses += s->misses;
        out->evictions += s->evictions;
        out->entries += s->n;
        out->bytes += s->bytes;
        out->max_entries += s->max_n;
        out->max_bytes += s->max_bytes;
        pthread_mutex_unlock(&s->lock);
    }
}
