/*
 * plugins/upstream_http/cache.c — the fallback cache: the most recent
 * successful answer of each read (keyed by team + the full request path and
 * query), at most fallback_cache.max_entries of them and max_bytes in all
 * (least recently stored evicted first), each usable for ttl_s.
 *
 * Its job is to answer stale when the upstream is down.  With
 * fallback_cache.fresh_ms > 0 it also answers fresh reads younger than that
 * without a round trip; a write through this gateway makes the team's
 * entries stale-only so the writer sees its own post.
 */
#include "uh.h"

#include <stdlib.h>
#include <string.h>

struct uh_cache_entry {
    char           *key;
    char           *team;
    char           *body;
    size_t          len;
    int64_t         stored_ms;
    bool            fresh_ok;
    uint64_t        hash;
    uh_cache_entry *next_in_bucket;
    uh_cache_entry *lru_prev, *lru_next;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a: keys are ours, not attacker-chosen */
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ull; }
    return h;
}

bool uh_cache_init(uh_inst *u)
{
    uh_cache *c = &u->cache;
    size_t n = 16;
    while (n < (size_t)u->cfg.cache_max_entries && n < (1u << 20)) n <<= 1;
    pthread_mutex_init(&c->lock, NULL);
    c->n_buckets = n;
    c->buckets = calloc(n, sizeof *c->buckets);
    return c->buckets != NULL;
}

static void entry_free(uh_cache_entry *e)
{
    free(e->key);
    free(e->team);
    free(e->body);
    free(e);
}

void uh_cache_destroy(uh_cache *c)
{
    uh_cache_entry *e = c->lru_head, *next;
    for (; e; e = next) { next = e->lru_next; entry_free(e); }
    free(c->buckets);
    c->buckets = NULL;
    c->lru_head = c->lru_tail = NULL;
    pthread_mutex_destroy(&c->lock);
}

static void lru_unlink(uh_cache *c, uh_cache_entry *e)
{
    if (e->lru_prev) e->lru_prev->lru_next = e->lru_next; else c->lru_head = e->lru_next;
    if (e->lru_next) e->lru_next->lru_prev = e->lru_prev; else c->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(uh_cache *c, uh_cache_entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = c->lru_head;
    if (c->lru_head) c->lru_head->lru_prev = e; else c->lru_tail = e;
    c->lru_head = e;
}

/* Unlink from its bucket and the LRU list, free.  Lock held. */
static void remove_entry(uh_cache *c, uh_cache_entry *e)
{
    uh_cache_entry **pp = &c->buckets[e->hash & (c->n_buckets - 1)];
    while (*pp && *pp != e) pp = &(*pp)->next_in_bucket;
    if (*pp) *pp = e->next_in_bucket;
    lru_unlink(c, e);
    c->n_entries--;
    c->n_bytes -= e->len;
    entry_free(e);
}

static uh_cache_entry *find(uh_cache *c, const char *key, uint64_t h)
{
    uh_cache_entry *e = c->buckets[h & (c->n_buckets - 1)];
    for (; e; e = e->next_in_bucket) if (e->hash == h && strcmp(e->key, key) == 0) return e;
    return NULL;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) { memcpy(d, s, n); d[n] = '\0'; }
    return d;
}

/* key = "team\x1f..." : the team is everything before the separator. */
void uh_cache_put(uh_inst *u, const char *key, const char *body, size_t len)
{
    uh_cache *c = &u->cache;
    uint64_t h = hash_str(key);
    const char *sep = strchr(key, '\x1f');
    uh_cache_entry *e;
    char *copy;
    if (u->cfg.cache_max_entries <= 0 || !sep || (int64_t)len > u->cfg.cache_max_bytes) return;
    copy = dup_n(body, len);
    if (!copy) return;
    pthread_mutex_lock(&c->lock);
    e = find(c, key, h);
    if (e) {
        free(e->body);
        c->n_bytes -= e->len;
        lru_unlink(c, e);
    } else {
        e = calloc(1, sizeof *e);
        if (!e || !(e->key = dup_n(key, strlen(key))) || !(e->team = dup_n(key, (size_t)(sep - key)))) {
            if (e) { free(e->key); free(e); }
            pthread_mutex_unlock(&c->lock);
            free(copy);
            return;
        }
        e->hash = h;
        e->next_in_bucket = c->buckets[h & (c->n_buckets - 1)];
        c->buckets[h & (c->n_buckets - 1)] = e;
        c->n_entries++;
    }
    e->body = copy;
    e->len = len;
    c->n_bytes += len;
    e->stored_ms = u->api->now_ms();
    e->fresh_ok = true;
    lru_push_front(c, e);
    while ((c->n_entries > (size_t)u->cfg.cache_max_entries || c->n_bytes > (size_t)u->cfg.cache_max_bytes) &&
           c->lru_tail && c->lru_tail != e)
        remove_entry(c, c->lru_tail);
    pthread_mutex_unlock(&c->lock);
    u->api->add(u->m.cache_store, 1);
}

char *uh_cache_get(uh_inst *u, const char *key, bool fresh_only, int64_t *age_ms)
{
    uh_cache *c = &u->cache;
    uint64_t h = hash_str(key);
    uh_cache_entry *e;
    char *copy = NULL;
    int64_t now = u->api->now_ms();
    if (u->cfg.cache_max_entries <= 0) return NULL;
    pthread_mutex_lock(&c->lock);
    e = find(c, key, h);
    if (e && now - e->stored_ms > u->cfg.cache_ttl_s * 1000) {
        remove_entry(c, e);   /* too old to serve even stale */
        e = NULL;
    }
    if (e && fresh_only && (!e->fresh_ok || now - e->stored_ms >= u->cfg.cache_fresh_ms)) e = NULL;
    if (e) {
        copy = dup_n(e->body, e->len);
        if (age_ms) *age_ms = now - e->stored_ms;
    }
    pthread_mutex_unlock(&c->lock);
    return copy;
}

void uh_cache_invalidate_team(uh_inst *u, const char *team)
{
    uh_cache *c = &u->cache;
    uh_cache_entry *e;
    if (u->cfg.cache_max_entries <= 0 || u->cfg.cache_fresh_ms <= 0) return;
    pthread_mutex_lock(&c->lock);
    for (e = c->lru_head; e; e = e->lru_next) if (strcmp(e->team, team) == 0) e->fresh_ok = false;
    pthread_mutex_unlock(&c->lock);
}
