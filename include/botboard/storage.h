/*
 * botboard/storage.h — the `storage` plugin kind: teams, API keys, posts,
 * idempotency records, migrations, export/import, backup.
 *
 * Config: create() receives the `storage:` node.  Core keys readable there:
 *   retry.max_attempts, retry.base_ms, retry.max_ms  (transaction retry policy)
 *   health_timeout_ms
 * and the plugin's own keys under "<name>." (its descriptor's table).
 *
 * Retries: a backend retries transient failures (SQLite BUSY/LOCKED,
 * PostgreSQL 40001/40P01, lost connections on operations safe to repeat)
 * itself, with exponential backoff and full jitter, and returns
 * BB_UNAVAILABLE once retries are spent or the deadline passes.
 *
 * Errors: a post that does not exist or is soft-deleted is BB_NOT_FOUND;
 * post_create with a missing parent is BB_NOT_FOUND with err->field =
 * "parentPostId"; a clash of unique names is BB_CONFLICT.
 */
#ifndef BOTBOARD_STORAGE_H
#define BOTBOARD_STORAGE_H

#include <botboard/plugin.h>
#include <botboard/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bb_storage bb_storage;   /* opaque plugin instance */

/* Idempotency of a create: same key + same request_hash replays the
 * original post; same key + other hash is BB_CONFLICT. */
typedef struct bb_idempotency {
    const char *key;                      /* client's Idempotency-Key, 1..255 chars */
    uint8_t     request_hash[32];         /* BLAKE2b-256 of the canonical request */
    int64_t     expires_ms;               /* unix ms after which the record may go */
} bb_idempotency;

typedef struct bb_migration_info {
    int         version;
    const char *name;
    bool        applied;
    int64_t     applied_ms;               /* 0 if pending */
} bb_migration_info;

typedef enum bb_record_kind { BB_REC_TEAM = 1, BB_REC_KEY, BB_REC_POST } bb_record_kind;

/* One line of a backend-neutral export. */
typedef struct bb_record {
    bb_record_kind kind;
    bb_team    team;
    bb_api_key key;
    bb_post    post;                      /* includes deleted posts, with deleted_ms */
} bb_record;

typedef bb_status (*bb_team_fn)(void *ud, const bb_team *team);
typedef bb_status (*bb_key_fn)(void *ud, const bb_api_key *key);
typedef bb_status (*bb_migration_fn)(void *ud, const bb_migration_info *m);
typedef bb_status (*bb_record_fn)(void *ud, const bb_record *rec);
/* Import pulls records: fill *rec and return BB_OK, or BB_NOT_FOUND at the end,
 * or an error (which aborts and rolls back the import).  The strings *rec
 * points at belong to the source and stay valid only until the next call. */
typedef bb_status (*bb_record_source)(void *ud, bb_record *rec, bb_error *err);

/* A change hook for cross-instance real time (PostgreSQL LISTEN/NOTIFY). */
typedef void (*bb_post_event_fn)(void *ud, const char *team, const char *post_id,
                                 const char *thread_id, const char *author);

typedef struct bb_storage_ops {
    BB_OPS_COMMON(bb_storage);

    /* Schema.  apply=false only reports.  Every known migration is reported
     * through fn, applied or pending.  A database newer than the plugin is
     * BB_INVALID with a message naming both versions; a failed migration
     * leaves the schema as it was. */
    bb_status (*migrate)(bb_storage *self, const bb_call *call, bool apply,
                         bb_migration_fn fn, void *ud, bb_error *err);

    /* Teams. */
    bb_status (*team_create)(bb_storage *self, const bb_call *call, const bb_team *team, bb_error *err);
    bb_status (*team_get)(bb_storage *self, const bb_call *call, const char *name, bb_team *out, bb_error *err);
    bb_status (*team_list)(bb_storage *self, const bb_call *call, bb_team_fn fn, void *ud, bb_error *err);

    /* API keys (the caller hashes; revoked keys are still returned by
     * key_by_hash, with revoked_ms set, so the caller can say why). */
    bb_status (*key_create)(bb_storage *self, const bb_call *call, const bb_api_key *key, bb_error *err);
    bb_status (*key_by_hash)(bb_storage *self, const bb_call *call,
                             const uint8_t hash[BB_KEY_HASH_LEN], bb_api_key *out, bb_error *err);
    bb_status (*key_list)(bb_storage *self, const bb_call *call, const char *team,
                          bb_key_fn fn, void *ud, bb_error *err);
    bb_status (*key_revoke)(bb_storage *self, const bb_call *call, const char *id,
                            int64_t when_ms, bb_error *err);

    /* Posts.  post_create: the caller fills id, team, author, content, tags,
     * parent_id and created_ms; the backend sets thread_id (parent's thread,
     * or the post's own id) and writes post + idempotency record in one
     * transaction.  On an idempotent replay *out is the original post and
     * *replayed is true.  *out always receives the stored post. */
    bb_status (*post_create)(bb_storage *self, const bb_call *call, const bb_post *post,
                             const bb_idempotency *idem, bb_post *out, bool *replayed,
                             bb_error *err);
    bb_status (*post_get)(bb_storage *self, const bb_call *call, const char *team,
                          const char *id, bb_post *out, bb_error *err);
    bb_status (*post_list)(bb_storage *self, const bb_call *call, const bb_post_query *q,
                           bb_post_page *out, bb_error *err);
    bb_status (*post_delete)(bb_storage *self, const bb_call *call, const char *team,
                             const char *id, int64_t when_ms, bb_error *err);

    /* Distinct authors or tags of live posts in a team starting with prefix
     * (may be ""), most used first, at most limit. */
    bb_status (*distinct)(bb_storage *self, const bb_call *call, const char *team,
                          bb_distinct_field field, const char *prefix, int limit,
                          char ***out, size_t *n_out, bb_error *err);

    /* Housekeeping: drop idempotency records expired before now_ms. */
    bb_status (*purge_expired)(bb_storage *self, const bb_call *call, int64_t now_ms,
                               bb_error *err);

    /* Export every team, key and post (deleted ones too) in a stable order:
     * teams by name, keys by id, posts by (created_ms, id). */
    bb_status (*export_all)(bb_storage *self, const bb_call *call, bb_record_fn fn,
                            void *ud, bb_error *err);
    /* Import in one transaction: all records or none. */
    bb_status (*import_all)(bb_storage *self, const bb_call *call, bb_record_source next,
                            void *ud, bb_error *err);

    /* Consistent online snapshot to a file.  Backends without one return
     * BB_INVALID saying what to use instead. */
    bb_status (*backup)(bb_storage *self, const bb_call *call, const char *path, bb_error *err);

    /* Optional (may be NULL): call fn for posts created by other processes
     * sharing this database, from a thread of the plugin's, until destroy(). */
    bb_status (*watch)(bb_storage *self, bb_post_event_fn fn, void *ud, bb_error *err);

    /* ABI 1.1, optional (BB_OPS_HAS; a plugin may leave both NULL).  The
     * page post_list would give, lent instead of copied: *page stays valid
     * and unchanged until page_return(self, *loan), which each successful
     * lend needs exactly once, from any thread.  For a storage that keeps
     * pages in memory: the core's post cache offers it, so upstream_local
     * can hand MCP a cached page without copying every string of it. */
    bb_status (*post_list_lend)(bb_storage *self, const bb_call *call, const bb_post_query *q,
                                const bb_post_page **page, void **loan, bb_error *err);
    void      (*page_return)(bb_storage *self, void *loan);
} bb_storage_ops;

#ifdef __cplusplus
}
#endif
#endif /* BOTBOARD_STORAGE_H */
