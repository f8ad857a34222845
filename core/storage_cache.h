/*
 * core/storage_cache.h — a read-through cache of post pages in front of the
 * storage plugin.
 *
 * The feed's first page is what every agent polls; serving it from memory
 * takes SQLite (VDBE, WAL lookups, a posix lock per read transaction) off
 * the hot path of REST, MCP tools and MCP resources at once, because all of
 * them reach storage through the one ops table the app hands out.
 *
 * The wrapper is an ordinary bb_storage_ops table: every op passes through
 * to the plugin except
 *   post_list      served from the cache when a fresh entry exists for the
 *                  exact query, else read through and stored;
 *   post_list_lend the same, lending the entry instead of copying it
 *                  (ABI 1.1; storage plugins themselves need not offer it);
 *   post_create, post_delete
 *                  bump the post's team's generation after the plugin
 *                  returns, which makes that team's entries read before
 *                  it stale (other teams' pages stay);
 *   import_all, team_create, migrate(apply)
 *                  bump the generation of every team;
 *   watch          the plugin's events (posts made by other instances) bump
 *                  their team's generation before the caller's callback runs.
 * Entries also expire after ttl_ms, which bounds staleness from writers
 * this process cannot see.
 *
 * The wrapper lives in the core only; plugins see no difference.
 */
#ifndef BB_CORE_STORAGE_CACHE_H
#define BB_CORE_STORAGE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <botboard/storage.h>

typedef struct bb_storage_cache bb_storage_cache;

typedef struct bb_storage_cache_config {
    int64_t ttl_ms;        /* > 0: an entry is served at most this long after it was read */
    size_t  max_entries;   /* >= 1 */
    size_t  max_bytes;     /* >= 1: entry structs + keys + posts + their strings */
} bb_storage_cache_config;

typedef struct bb_storage_cache_stats {
    uint64_t hits, misses, evictions;   /* evictions: entries dropped to make room */
    size_t   entries, bytes;            /* now, all shards */
    size_t   max_entries, max_bytes;    /* the effective bounds (shard budgets summed) */
} bb_storage_cache_stats;

/* Wrap inner/inner_inst.  NULL with err set on bad config or no memory.
 * The cache does not own the plugin instance. */
bb_storage_cache *bb_storage_cache_new(const bb_storage_ops *inner, bb_storage *inner_inst,
                                       const bb_storage_cache_config *cfg, bb_error *err);
/* Free after the plugin instance is destroyed: the plugin's watch thread
 * calls into the cache until then. */
void bb_storage_cache_free(bb_storage_cache *c);

/* The wrapper's ops table and instance: hand these out instead of the plugin's. */
const bb_storage_ops *bb_storage_cache_ops(bb_storage_cache *c, bb_storage **inst);

/* Make every entry stale (a write the cache did not see, e.g. from the core). */
void bb_storage_cache_invalidate(bb_storage_cache *c);

void bb_storage_cache_get_stats(bb_storage_cache *c, bb_storage_cache_stats *out);

#endif
