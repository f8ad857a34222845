/*
 * plugins/storage_postgres/pg_internal.h — what the files of the PostgreSQL
 * storage plugin share: the instance, the connection pool, the transaction
 * runner with its retry policy, and the prepared-statement table.
 *
 * Files: pg_plugin.c (descriptor, keys, create/destroy/health), pg_pool.c
 * (connections), pg_exec.c (deadline-bounded queries, retries, metrics),
 * pg_sql.c (every statement), pg_migrate.c (versioned schema),
 * pg_posts.c / pg_admin.c (the operations), pg_io.c (export/import),
 * pg_watch.c (LISTEN/NOTIFY).
 */
#ifndef BB_PG_INTERNAL_H
#define BB_PG_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include <botboard/storage.h>

#define PG_NOTIFY_CHANNEL "botboard_posts"
#define PG_TOKEN_LEN      16            /* hex chars naming this instance in notifications */
#define PG_COUNT_SHARDS   8             /* counter rows per value: spreads concurrent creates */

/* post_counts dimensions (the same numbering as storage_sqlite). */
enum { PG_DIM_ALL = 0, PG_DIM_AUTHOR = 1, PG_DIM_TAG = 2, PG_DIM_THREAD = 3 };

/* ---- prepared statements ------------------------------------------------- */

/* Statement ids; their SQL lives in pg_sql.c.  The post list statements are a
 * block indexed by filter combination (see pg_list_stmt). */
typedef enum pg_stmt_id {
    ST_SESSION_SETUP,
    ST_PING,
    ST_TEAM_INSERT, ST_TEAM_GET, ST_TEAM_LIST,
    ST_KEY_INSERT, ST_KEY_BY_HASH, ST_KEY_LIST, ST_KEY_REVOKE,
    ST_IDEM_CLAIM, ST_IDEM_GET,
    ST_PARENT_GET, ST_POST_INSERT, ST_TAG_INSERT, ST_NOTIFY,
    ST_POST_GET, ST_POST_GET_ANY, ST_POST_DELETE, ST_TAGS_DELETE,
    ST_DISTINCT_AUTHOR, ST_DISTINCT_TAG,
    ST_IDEM_PURGE,
    ST_EXPORT_TEAMS, ST_EXPORT_KEYS, ST_EXPORT_POSTS,
    ST_COUNTS_ADD, ST_COUNT_GET, ST_IMPORT_POSTS, ST_IMPORT_TAGS,
    ST_LIST_FIRST                       /* 16 filter combos x {desc, asc, count} follow */
} pg_stmt_id;

enum {
    PG_F_AUTHOR = 1, PG_F_TAG = 2, PG_F_THREAD = 4, PG_F_MENTIONS = 8,
    PG_LIST_COMBOS = 16,
    PG_LIST_DESC = 0, PG_LIST_ASC = 1, PG_LIST_COUNT = 2,
    ST_COUNT = ST_LIST_FIRST + 3 * PG_LIST_COMBOS
};

typedef struct pg_stmt {
    char        name[16]; /* server-side name, "bb_<n>" */
    const char *sql;
    int         n_params;
    const Oid  *types;    /* NULL: let the server infer */
    char       *owned;    /* sql when built at create (the list statements) */
} pg_stmt;

struct pg_store;
/* Fill the instance's statement table (list statements are composed from
 * fixed fragments per filter combination; values are always bound). */
bool pg_sql_build(struct pg_store *s);
void pg_sql_free(struct pg_store *s);
pg_stmt_id pg_list_stmt(unsigned filters, int variant);

/* ---- the pool --------------------------------------------------------------- */

typedef struct pg_conn {
    PGconn          *pg;
    int64_t          opened_ms;      /* monotonic */
    int64_t          last_used_ms;   /* monotonic, at last check-in */
    int              backend_pid;
    bool             broken;         /* discard at check-in */
    bool             lost;           /* the server went away during the last statement */
    char             sqlstate[6];    /* of the last failed statement, "" if none */
    uint8_t          prepared[(ST_COUNT + 7) / 8];
    /* While checked out: who holds it (for leak reports). */
    int64_t          checkout_ms;
    const char      *op;
    char             request_id[129];
    bool             leak_reported;
    struct pg_conn  *next, *prev;    /* idle stack, or the in-use list */
} pg_conn;

typedef struct pg_pool_cfg {
    int     size, max_overflow;
    int64_t timeout_ms, recycle_ms, idle_check_ms, leak_warn_ms;
    int64_t connect_timeout_ms, statement_timeout_ms;
} pg_pool_cfg;

typedef struct pg_pool {
    struct pg_store *store;
    pg_pool_cfg      cfg;
    pthread_mutex_t  mu;
    pthread_cond_t   cv;              /* a connection came back or a slot freed */
    pthread_cond_t   leak_cv;         /* wakes the leak watcher at shutdown */
    pg_conn         *idle;            /* stack: most recently used on top */
    pg_conn         *busy;            /* checked-out connections */
    int              n_idle, n_busy, n_opening, n_waiting;
    int              connect_failures;/* in a row, for the reconnect backoff */
    int64_t          next_connect_ms; /* no new connection before this (backoff) */
    bool             stopping;
    pthread_t        leak_thread;
    bool             leak_thread_started;
} pg_pool;

typedef enum pg_checkout_result {
    PG_CHECKOUT_OK,
    PG_CHECKOUT_EXHAUSTED,            /* waited timeout_ms or the deadline: give up */
    PG_CHECKOUT_CONNECT_FAILED        /* server unreachable: worth a retry */
} pg_checkout_result;

bool pg_pool_init(pg_pool *p, struct pg_store *s, const pg_pool_cfg *cfg, bb_error *err);
void pg_pool_destroy(pg_pool *p);
pg_checkout_result pg_pool_checkout(pg_pool *p, const bb_call *call, const char *op,
                                    pg_conn **out, bb_error *err);
void pg_pool_checkin(pg_pool *p, pg_conn *c);
/* Exempt a checked-out connection from leak reports (export, import, migrate). */
void pg_pool_exempt(pg_pool *p, pg_conn *c);
void pg_pool_counts(pg_pool *p, int *in_use, int *idle, int *capacity);
/* Open one connection outside the pool (the LISTEN thread); NULL + err. */
PGconn *pg_connect(struct pg_store *s, bb_error *err);

/* ---- metrics ------------------------------------------------------------- */

typedef struct pg_metrics {
    bb_series *in_use, *idle, *waiting;
    bb_series *checkout_wait;
    bb_series *opened, *closed, *failed;
    bb_series *leaks;
    bb_metric *query_seconds, *errors, *retries, *giveups;   /* {backend, op[, code]}: shared with storage_sqlite */
    bb_metric *sqlstate_errors;                               /* {sqlstate}: PostgreSQL's own codes */
    bb_series *notify_received;
} pg_metrics;

/* ---- the instance -------------------------------------------------------- */

typedef struct pg_watch pg_watch;

typedef struct pg_store {
    const bb_host_api *api;
    bb_host           *host;
    char              *conninfo;
    pg_pool            pool;
    bool               pool_ready;
    pg_metrics         m;
    int                retry_max_attempts;
    int64_t            retry_base_ms, retry_max_ms;
    bool               notify;                     /* pg_notify on every create */
    char               token[PG_TOKEN_LEN + 1];    /* names this instance in notifications */
    pg_stmt            stmts[ST_COUNT];
    pg_watch          *watch;
    pthread_mutex_t    watch_mu;
} pg_store;

/* ---- running statements and transactions ---------------------------------- */

/* One query's outcome: a result (caller clears) or an error already mapped. */
bb_status pg_exec(pg_store *s, pg_conn *c, const bb_call *call, pg_stmt_id id,
                  const char *const *values, const int *lengths, const int *formats,
                  PGresult **out, bb_error *err);
/* Plain SQL with no parameters (BEGIN, COMMIT, migrations' DDL). */
bb_status pg_exec_simple(pg_store *s, pg_conn *c, const bb_call *call, const char *sql,
                         bb_error *err);

enum {
    PG_OP_TXN        = 1u << 0,   /* wrap in BEGIN ... COMMIT */
    PG_OP_REPEATABLE = 1u << 1,   /* safe to run again even if a COMMIT's fate is unknown */
    PG_OP_READONLY   = 1u << 2,   /* reads only: always safe to repeat */
    PG_OP_NO_RETRY   = 1u << 3,   /* never repeat (import: its source cannot rewind) */
    PG_OP_SNAPSHOT   = 1u << 4,   /* REPEATABLE READ READ ONLY transaction (export) */
    PG_OP_LONG       = 1u << 5    /* holds its connection for long by design: no leak report */
};

typedef struct pg_op {
    const char *name;             /* metric label, log text */
    unsigned    flags;
} pg_op;

/* The body of an operation: runs on a checked-out connection, inside a
 * transaction when the op asks for one.  attempt counts from 1. */
typedef bb_status (*pg_body_fn)(pg_store *s, pg_conn *c, const bb_call *call, int attempt,
                                void *ud, bb_error *err);

/* Check out, run body (in a transaction if asked), commit, retry transient
 * failures with exponential backoff and full jitter within the call's
 * deadline, record metrics, check in. */
bb_status pg_run(pg_store *s, const bb_call *call, const pg_op *op, pg_body_fn body, void *ud,
                 bb_error *err);

/* Sleep up to ms but not past the call's deadline; false if the deadline passed. */
bool pg_sleep_within(pg_store *s, const bb_call *call, int64_t ms);
/* Full-jitter backoff for attempt n (1-based): uniform in [0, min(max, base*2^(n-1))]. */
int64_t pg_backoff_ms(pg_store *s, int attempt, int64_t base_ms, int64_t max_ms);

/* ---- small helpers shared by the op files -------------------------------- */

void pg_i64_text(int64_t v, char buf[24]);
int64_t pg_get_i64(const PGresult *r, int row, int col);
/* Copy column text into a fixed buffer (truncating safely). */
void pg_get_str(const PGresult *r, int row, int col, char *dst, size_t len);
/* malloc'd copy of column text; NULL on OOM. */
char *pg_get_dup(const PGresult *r, int row, int col);
void pg_hex_encode(const uint8_t *in, size_t n, char *out);   /* out: 2n+1 bytes */
/* Hex text ("\x..." bytea output or plain hex) into bytes; false if malformed. */
bool pg_hex_decode(const char *hex, uint8_t *out, size_t out_len);
/* PostgreSQL array text <-> string vectors. */
char *pg_array_encode(char *const *items, size_t n);                      /* malloc'd */
bool pg_array_decode(const char *text, char ***items, size_t *n);         /* malloc'd */
/* Fill *p from a result row laid out as pg_sql.c's POST_COLUMNS. */
bool pg_row_to_post(const PGresult *r, int row, bb_post *p);

/* ---- operations (each file's entry points) ------------------------------- */

bb_status pg_migrate(pg_store *s, const bb_call *call, bool apply, bb_migration_fn fn, void *ud, bb_error *err);

bb_status pg_team_create(pg_store *s, const bb_call *call, const bb_team *team, bb_error *err);
bb_status pg_team_get(pg_store *s, const bb_call *call, const char *name, bb_team *out, bb_error *err);
bb_status pg_team_list(pg_store *s, const bb_call *call, bb_team_fn fn, void *ud, bb_error *err);
bb_status pg_key_create(pg_store *s, const bb_call *call, const bb_api_key *key, bb_error *err);
bb_status pg_key_by_hash(pg_store *s, const bb_call *call, const uint8_t hash[BB_KEY_HASH_LEN],
                         bb_api_key *out, bb_error *err);
bb_status pg_key_list(pg_store *s, const bb_call *call, const char *team, bb_key_fn fn, void *ud, bb_error *err);
bb_status pg_key_revoke(pg_store *s, const bb_call *call, const char *id, int64_t when_ms, bb_error *err);
bb_status pg_purge_expired(pg_store *s, const bb_call *call, int64_t now_ms, bb_error *err);

bb_status pg_post_create(pg_store *s, const bb_call *call, const bb_post *post, const bb_idempotency *idem,
                         bb_post *out, bool *replayed, bb_error *err);
bb_status pg_post_get(pg_store *s, const bb_call *call, const char *team, const char *id, bb_post *out, bb_error *err);
bb_status pg_post_list(pg_store *s, const bb_call *call, const bb_post_query *q, bb_post_page *out, bb_error *err);
bb_status pg_post_delete(pg_store *s, const bb_call *call, const char *team, const char *id, int64_t when_ms,
                         bb_error *err);
bb_status pg_distinct(pg_store *s, const bb_call *call, const char *team, bb_distinct_field field,
                      const char *prefix, int limit, char ***out, size_t *n_out, bb_error *err);

/* Add sign (1 or -1) to the live-post counters of post id (in a random shard). */
bb_status pg_counts_add(pg_store *s, pg_conn *c, const bb_call *call, const char *id, int sign, bb_error *err);

bb_status pg_export_all(pg_store *s, const bb_call *call, bb_record_fn fn, void *ud, bb_error *err);
bb_status pg_import_all(pg_store *s, const bb_call *call, bb_record_source next, void *ud, bb_error *err);

bb_status pg_watch_start(pg_store *s, bb_post_event_fn fn, void *ud, bb_error *err);
void pg_watch_stop(pg_store *s);

#endif
