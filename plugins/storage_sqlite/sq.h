/*
 * plugins/storage_sqlite/sq.h — the SQLite storage plugin's private types.
 *
 * One instance = one database file, a small pool of connections (each with
 * its own cache of prepared statements), a queue of write jobs so our own
 * writers wait in-process instead of spinning in SQLite's busy handler and
 * share commits (group commit: one leader runs up to group_commit_max queued
 * jobs in one transaction, each in its own savepoint), and the retry policy
 * for BUSY/LOCKED from other processes (CLI, backup).
 */
#ifndef BB_STORAGE_SQLITE_SQ_H
#define BB_STORAGE_SQLITE_SQ_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <time.h>

#include <botboard/storage.h>

/* The columns sq_read_post() reads, in order (table alias p). */
#define SQ_POST_COLS "p.id, p.team, p.author, p.content, p.parent_id, p.thread_id, p.created_ms, p.deleted_ms, " \
                     "p.tags_packed"

/* Operations, for metrics labels and per-op series. */
typedef enum sq_op {
    SQ_OP_HEALTH, SQ_OP_MIGRATE, SQ_OP_TEAM_CREATE, SQ_OP_TEAM_GET, SQ_OP_TEAM_LIST,
    SQ_OP_KEY_CREATE, SQ_OP_KEY_BY_HASH, SQ_OP_KEY_LIST, SQ_OP_KEY_REVOKE,
    SQ_OP_POST_CREATE, SQ_OP_POST_GET, SQ_OP_POST_LIST, SQ_OP_POST_DELETE,
    SQ_OP_DISTINCT, SQ_OP_PURGE, SQ_OP_EXPORT, SQ_OP_IMPORT, SQ_OP_BACKUP,
    SQ_OP_COUNT
} sq_op;

/* Fixed statements, prepared lazily once per connection. */
typedef enum sq_stmt_id {
    SQ_TEAM_INSERT, SQ_TEAM_GET, SQ_TEAM_LIST,
    SQ_KEY_INSERT, SQ_KEY_BY_HASH, SQ_KEY_LIST, SQ_KEY_REVOKE, SQ_KEY_GET,
    SQ_POST_INSERT, SQ_TAG_INSERT, SQ_COUNT_BUMP, SQ_POST_GET, SQ_POST_GET_ANY, SQ_POST_TAGS,
    SQ_POST_DELETE, SQ_TAGS_UNCOUNT, SQ_TAGS_DEAD, SQ_POST_PARENT,
    SQ_IDEM_GET, SQ_IDEM_DELETE, SQ_IDEM_INSERT, SQ_IDEM_PURGE,
    SQ_COUNT_GET, SQ_DISTINCT,
    SQ_EXPORT_TEAMS, SQ_EXPORT_KEYS, SQ_EXPORT_POSTS,
    SQ_BEGIN, SQ_BEGIN_IMMEDIATE, SQ_COMMIT, SQ_ROLLBACK,
    SQ_SAVEPOINT, SQ_RELEASE, SQ_ROLLBACK_TO,
    SQ_STMT_COUNT
} sq_stmt_id;

/* post_list statements: one per combination of filters and direction. */
enum { SQ_F_AUTHOR = 1, SQ_F_TAG = 2, SQ_F_THREAD = 4, SQ_F_MENTIONS = 8, SQ_F_ASC = 16, SQ_F_COMBOS = 32 };

struct sq;
struct sq_conn;

/* A unit of work run by sq_run inside one transaction. */
typedef bb_status (*sq_body)(struct sq *s, struct sq_conn *c, void *ctx, bb_error *err);

/* One write waiting in the group-commit queue.  It lives on the caller's
 * stack; the leader that takes it writes status and *err, then wakes it. */
typedef struct sq_job {
    const bb_call  *call;
    sq_op           op;
    sq_body         body;
    void           *ctx;
    bb_error       *err;
    bool            alone;     /* never shares a transaction (import, migrations) */
    int             state;     /* SQ_JOB_QUEUED, SQ_JOB_TAKEN, SQ_JOB_DONE; under gc_lock */
    bb_status       status;    /* final once DONE */
    /* The leader's bookkeeping while it runs the batch. */
    bool            settled;   /* outcome known for this batch (failure, or OK after COMMIT) */
    bool            ran_ok;    /* body succeeded in the open transaction: OK once COMMIT succeeds */
    pthread_cond_t  wake;      /* signalled when DONE, or to hand over the leadership */
    struct sq_job  *next;
} sq_job;
enum { SQ_JOB_QUEUED, SQ_JOB_TAKEN, SQ_JOB_DONE };

typedef struct sq_conn {
    struct sq    *owner;
    sqlite3      *db;
    int64_t       deadline_ms;           /* of the call running on it; 0 = none */
    sqlite3_stmt *stmt[SQ_STMT_COUNT];
    sqlite3_stmt *page[SQ_F_COMBOS];     /* the page query per filter set */
    sqlite3_stmt *count[SQ_F_COMBOS];    /* COUNT(*) when no counter row answers */
    bool          transient;             /* last failure was BUSY/LOCKED: worth a retry */
} sq_conn;

typedef struct sq {
    const bb_host_api *api;
    bb_host           *host;
    char              *path;
    int64_t            busy_timeout_ms, cache_bytes, mmap_bytes, pool_timeout_ms;
    const char        *synchronous;
    int64_t            retry_max_attempts, retry_base_ms, retry_max_ms;

    pthread_mutex_t    lock;             /* guards the free list */
    pthread_cond_t     freed;
    bool               sync_ready;
    sq_conn           *conns;
    size_t             n_conns;
    sq_conn          **free_list;
    size_t             n_free;

    /* Group commit: writers queue here; the one leader at a time runs up to
     * group_commit_max of them per transaction (it is this process's single
     * writer, which is what the old write lock was). */
    pthread_mutex_t    gc_lock;          /* guards everything below */
    pthread_condattr_t gc_condattr;      /* CLOCK_MONOTONIC, for each job's cond */
    bool               gc_ready;
    sq_job            *gc_head, *gc_tail;
    bool               gc_leader;        /* a leader is running a batch */
    int64_t            group_commit_max;
    sq_job           **gc_batch;         /* the leader's jobs, group_commit_max slots */

    /* Background checkpoints (sq_ckpt.c): request threads never checkpoint. */
    int64_t            checkpoint_pages;
    pthread_mutex_t    ck_lock;          /* guards ck_want, ck_stop */
    pthread_cond_t     ck_wake;
    bool               ck_ready, ck_running, ck_stop, ck_want;
    atomic_bool        ck_signalled;     /* a wake-up is pending: commits skip the lock */
    pthread_t          ck_thread;
    sq_conn            ck_conn;          /* the checkpointer's own connection */
    bb_series         *checkpoints;

    bb_series         *duration[SQ_OP_COUNT];
    bb_series         *retries[SQ_OP_COUNT];
    bb_series         *give_ups[SQ_OP_COUNT];
    bb_metric         *errors;
    bb_series         *commits;          /* write transactions committed */
    bb_series         *committed_jobs;   /* write calls acknowledged by them */
    bb_series         *queued;           /* writes waiting in the queue (gauge) */
} sq;

extern const char *const sq_op_names[SQ_OP_COUNT];

/* ---- sq_conn.c ---------------------------------------------------------- */
bb_status sq_open_conn(sq *s, sq_conn *c, bb_error *err);
void      sq_close_conn(sq_conn *c);
/* The statement for id on this connection (prepared on first use). */
sqlite3_stmt *sq_stmt(sq_conn *c, sq_stmt_id id, bb_error *err);
/* Prepare sql into *slot once (persistent); NULL + err on failure. */
sqlite3_stmt *sq_prepare_cached(sq_conn *c, sqlite3_stmt **slot, const char *sql, bb_error *err);
/* Connections currently free (health detail). */
size_t    sq_pool_free(sq *s);
/* Map a failing SQLite result to a status; BUSY/LOCKED set c->transient. */
bb_status sq_fail(sq_conn *c, int rc, bb_error *err, const char *what);

/* SQ_WRITE bodies may share a transaction (each in a savepoint) and may be
 * run again when the batch is retried, so they must be repeatable: reset
 * their outputs at the start.  SQ_WRITE_ALONE: a write that always runs in a
 * transaction of its own (DDL, a source that cannot be rewound). */
enum { SQ_READ = 0, SQ_WRITE = 1, SQ_NO_TX = 2, SQ_WRITE_ALONE = 3 };
/* Reads: check out a connection, BEGIN (or none for SQ_NO_TX), run body,
 * COMMIT.  Writes: queue for the group commit (see sq_conn.c).  Either way
 * BUSY/LOCKED from another process rolls back and retries with exponential
 * backoff and full jitter, bounded by call->deadline_ms; timed and errors
 * counted per call. */
bb_status sq_run(sq *s, const bb_call *call, sq_op op, int mode, sq_body body, void *ctx, bb_error *err);

/* ---- sq_ckpt.c ---------------------------------------------------------- */
/* Route c's WAL commits to the checkpoint thread (instead of autocheckpoint). */
void      sq_ckpt_hook(sq *s, sq_conn *c);
bb_status sq_ckpt_start(sq *s, bb_error *err);
void      sq_ckpt_stop(sq *s);   /* joins the thread; safe on a partial start */

/* ---- sq_schema.c -------------------------------------------------------- */
int       sq_schema_latest(void);
/* Refuse a database whose schema is newer than this plugin. */
bb_status sq_schema_check(sq *s, sq_conn *c, bb_error *err);
bb_status sq_migrate(sq *s, const bb_call *call, bool apply, bb_migration_fn fn, void *ud, bb_error *err);

/* ---- sq_posts.c --------------------------------------------------------- */
bb_status sq_post_create(bb_storage *self, const bb_call *call, const bb_post *post,
                         const bb_idempotency *idem, bb_post *out, bool *replayed, bb_error *err);
bb_status sq_post_get(bb_storage *self, const bb_call *call, const char *team, const char *id,
                      bb_post *out, bb_error *err);
bb_status sq_post_list(bb_storage *self, const bb_call *call, const bb_post_query *q,
                       bb_post_page *out, bb_error *err);
bb_status sq_post_delete(bb_storage *self, const bb_call *call, const char *team, const char *id,
                         int64_t when_ms, bb_error *err);
bb_status sq_distinct(bb_storage *self, const bb_call *call, const char *team, bb_distinct_field field,
                      const char *prefix, int limit, char ***out, size_t *n_out, bb_error *err);
bb_status sq_purge_expired(bb_storage *self, const bb_call *call, int64_t now_ms, bb_error *err);
/* Insert one post row with its tags and counters (shared with import). */
bb_status sq_insert_post(sq_conn *c, const bb_post *p, bb_error *err);
/* Read the row the statement is positioned on (columns of SQ_POST_GET). */
bb_status sq_read_post(sq_conn *c, sqlite3_stmt *st, bb_post *out, bb_error *err);

/* ---- sq_admin.c --------------------------------------------------------- */
bb_status sq_team_create(bb_storage *self, const bb_call *call, const bb_team *team, bb_error *err);
bb_status sq_team_get(bb_storage *self, const bb_call *call, const char *name, bb_team *out, bb_error *err);
bb_status sq_team_list(bb_storage *self, const bb_call *call, bb_team_fn fn, void *ud, bb_error *err);
bb_status sq_key_create(bb_storage *self, const bb_call *call, const bb_api_key *key, bb_error *err);
bb_status sq_key_by_hash(bb_storage *self, const bb_call *call, const uint8_t hash[BB_KEY_HASH_LEN],
                         bb_api_key *out, bb_error *err);
bb_status sq_key_list(bb_storage *self, const bb_call *call, const char *team, bb_key_fn fn, void *ud,
                      bb_error *err);
bb_status sq_key_revoke(bb_storage *self, const bb_call *call, const char *id, int64_t when_ms, bb_error *err);
bb_status sq_export_all(bb_storage *self, const bb_call *call, bb_record_fn fn, void *ud, bb_error *err);
bb_status sq_import_all(bb_storage *self, const bb_call *call, bb_record_source next, void *ud, bb_error *err);
bb_status sq_backup(bb_storage *self, const bb_call *call, const char *path, bb_error *err);

/* Absolute time `ms` from now on clock `clk`, for timed waits (sq_conn.c). */
struct timespec sq_abs_after(clockid_t clk, int64_t ms);

/* Small helpers. */
static inline sq *sq_of(bb_storage *self) { return (sq *)(void *)self; }
static inline const char *sq_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}
/* Bind a C string (SQLITE_STATIC: the caller keeps it alive until reset). */
static inline int sq_bind_str(sqlite3_stmt *st, int idx, const char *v)
{
    return v ? sqlite3_bind_text(st, idx, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, idx);
}
/* Reset + clear bindings so a cached statement never holds stale pointers. */
static inline void sq_done(sqlite3_stmt *st)
{
    if (st) { sqlite3_reset(st); sqlite3_clear_bindings(st); }
}

#endif
