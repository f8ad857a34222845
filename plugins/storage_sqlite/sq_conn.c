/*
 * plugins/storage_sqlite/sq_conn.c — connections, the statement cache, the
 * pool, and the transaction runner with its retry policy: reads run on a
 * connection of their own, writes through the group commit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <botboard/backoff.h>

#include "sq.h"

#define POST_COLS SQ_POST_COLS
#define KEY_COLS  "id, team, prefix, label, hash, created_ms, revoked_ms"

/* Every fixed statement, indexed by sq_stmt_id.  Parameters are always bound. */
static const char *const stmt_sql[SQ_STMT_COUNT] = {
    [SQ_TEAM_INSERT]  = "INSERT INTO teams(name, created_ms) VALUES (?1, ?2)",
    [SQ_TEAM_GET]     = "SELECT name, created_ms FROM teams WHERE name = ?1",
    [SQ_TEAM_LIST]    = "SELECT name, created_ms FROM teams ORDER BY name",
    [SQ_KEY_INSERT]   = "INSERT INTO api_keys(" KEY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [SQ_KEY_BY_HASH]  = "SELECT " KEY_COLS " FROM api_keys WHERE hash = ?1",
    [SQ_KEY_LIST]     = "SELECT " KEY_COLS " FROM api_keys WHERE team = ?1 ORDER BY id",
    [SQ_KEY_REVOKE]   = "UPDATE api_keys SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms = 0",
    [SQ_KEY_GET]      = "SELECT revoked_ms FROM api_keys WHERE id = ?1",
    [SQ_POST_INSERT]  = "INSERT INTO posts(id, team, author, content, parent_id, thread_id, created_ms, deleted_ms,"
                        " tags_packed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [SQ_TAG_INSERT]   = "INSERT INTO post_tags(post_id, position, team, tag, created_ms, live)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [SQ_COUNT_BUMP]   = "INSERT INTO post_counts(team, dim, value, n) VALUES (?1, ?2, ?3, ?4)"
                        " ON CONFLICT(team, dim, value) DO UPDATE SET n = n + excluded.n",
    [SQ_POST_GET]     = "SELECT " POST_COLS " FROM posts p WHERE p.id = ?1 AND p.team = ?2 AND p.deleted_ms = 0",
    [SQ_POST_GET_ANY] = "SELECT " POST_COLS " FROM posts p WHERE p.id = ?1",
    [SQ_POST_TAGS]    = "SELECT tag FROM post_tags WHERE post_id = ?1 ORDER BY position",
    [SQ_POST_DELETE]  = "UPDATE posts SET deleted_ms = ?3 WHERE id = ?1 AND team = ?2 AND deleted_ms = 0"
                        " RETURNING author, thread_id",
    [SQ_TAGS_UNCOUNT] = "UPDATE post_counts SET n = n - 1 WHERE team = ?1 AND dim = 2"
                        " AND value IN (SELECT tag FROM post_tags WHERE post_id = ?2)",
    [SQ_TAGS_DEAD]    = "UPDATE post_tags SET live = 0 WHERE post_id = ?1",
    [SQ_POST_PARENT]  = "SELECT thread_id FROM posts WHERE id = ?1 AND team = ?2 AND deleted_ms = 0",
    [SQ_IDEM_GET]     = "SELECT request_hash, post_id, expires_ms FROM idempotency WHERE team = ?1 AND key = ?2",
    [SQ_IDEM_DELETE]  = "DELETE FROM idempotency WHERE team = ?1 AND key = ?2",
    [SQ_IDEM_INSERT]  = "INSERT INTO idempotency(team, key, request_hash, post_id, expires_ms)"
                        " VALUES (?1, ?2, ?3, ?4, ?5)",
    [SQ_IDEM_PURGE]   = "DELETE FROM idempotency WHERE expires_ms < ?1",
    [SQ_COUNT_GET]    = "SELECT n FROM post_counts WHERE team = ?1 AND dim = ?2 AND value = ?3",
    [SQ_DISTINCT]     = "SELECT value FROM post_counts WHERE team = ?1 AND dim = ?2 AND n > 0"
                        " AND substr(value, 1, length(?3)) = ?3 ORDER BY n DESC, value LIMIT ?4",
    [SQ_EXPORT_TEAMS] = "SELECT name, created_ms FROM teams ORDER BY name",
    [SQ_EXPORT_KEYS]  = "SELECT " KEY_COLS " FROM api_keys ORDER BY id",
    [SQ_EXPORT_POSTS] = "SELECT " POST_COLS " FROM posts p ORDER BY p.created_ms, p.id",
    /* Transaction control, prepared once too: every call runs one. */
    [SQ_BEGIN]           = "BEGIN",
    [SQ_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [SQ_COMMIT]          = "COMMIT",
    [SQ_ROLLBACK]        = "ROLLBACK",
    /* Group commit: each job of a batch runs in a savepoint of its own. */
    [SQ_SAVEPOINT]       = "SAVEPOINT sq_job",
    [SQ_RELEASE]         = "RELEASE sq_job",
    [SQ_ROLLBACK_TO]     = "ROLLBACK TO sq_job",
};

const char *const sq_op_names[SQ_OP_COUNT] = {
    "health", "migrate", "team_create", "team_get", "team_list", "key_create", "key_by_hash",
    "key_list", "key_revoke", "post_create", "post_get", "post_list", "post_delete", "distinct",
    "purge_expired", "export_all", "import_all", "backup",
};

/* Interrupt a statement once the call's deadline has passed. */
static int deadline_guard(void *ud)
{
    sq_conn *c = ud;
    return c->deadline_ms > 0 && c->owner->api->now_ms() > c->deadline_ms;
}

static bb_status exec_pragma(sq_conn *c, const char *sql, bb_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        bb_fail(err, BB_UNAVAILABLE, NULL, "%s: %s", sql, msg ? msg : sqlite3_errmsg(c->db));
        sqlite3_free(msg);
        return BB_UNAVAILABLE;
    }
    return BB_OK;
}

bb_status sq_open_conn(sq *s, sq_conn *c, bb_error *err)
{
    char sql[128];
    int rc;
    memset(c, 0, sizeof *c);
    c->owner = s;
    /* NOMUTEX: a connection is used by one thread at a time (the pool). */
    rc = sqlite3_open_v2(s->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        bb_fail(err, BB_UNAVAILABLE, "path", "cannot open %s: %s", s->path,
                c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        sqlite3_close(c->db);
        c->db = NULL;
        return BB_UNAVAILABLE;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, (int)s->busy_timeout_ms);
    sqlite3_progress_handler(c->db, 1000, deadline_guard, c);
    if (exec_pragma(c, "PRAGMA journal_mode = WAL", err) != BB_OK) return BB_UNAVAILABLE;
    snprintf(sql, sizeof sql, "PRAGMA synchronous = %s", s->synchronous);
    if (exec_pragma(c, sql, err) != BB_OK) return BB_UNAVAILABLE;
    if (exec_pragma(c, "PRAGMA foreign_keys = ON", err) != BB_OK) return BB_UNAVAILABLE;
    snprintf(sql, sizeof sql, "PRAGMA cache_size = -%lld", (long long)(s->cache_bytes / 1024));
    if (exec_pragma(c, sql, err) != BB_OK) return BB_UNAVAILABLE;
    snprintf(sql, sizeof sql, "PRAGMA mmap_size = %lld", (long long)s->mmap_bytes);
    if (exec_pragma(c, sql, err) != BB_OK) return BB_UNAVAILABLE;
    return exec_pragma(c, "PRAGMA temp_store = MEMORY", err);
}

void sq_close_conn(sq_conn *c)
{
    if (!c || !c->db) return;
    for (int i = 0; i < SQ_STMT_COUNT; i++) sqlite3_finalize(c->stmt[i]);
    for (int i = 0; i < SQ_F_COMBOS; i++) { sqlite3_finalize(c->page[i]); sqlite3_finalize(c->count[i]); }
    sqlite3_close(c->db);
    c->db = NULL;
}

sqlite3_stmt *sq_prepare_cached(sq_conn *c, sqlite3_stmt **slot, const char *sql, bb_error *err)
{
    if (*slot) return *slot;
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK) {
        sq_fail(c, sqlite3_errcode(c->db), err, "prepare");
        *slot = NULL;
    }
    return *slot;
}

sqlite3_stmt *sq_stmt(sq_conn *c, sq_stmt_id id, bb_error *err)
{
    return sq_prepare_cached(c, &c->stmt[id], stmt_sql[id], err);
}

bb_status sq_fail(sq_conn *c, int rc, bb_error *err, const char *what)
{
    const char *msg = c && c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        if (c) c->transient = true;
        return bb_fail(err, BB_UNAVAILABLE, NULL, "%s: database is busy (%s)", what, msg);
    case SQLITE_INTERRUPT:
        return bb_fail(err, BB_TIMEOUT, NULL, "%s: deadline passed", what);
    case SQLITE_CONSTRAINT:
        return bb_fail(err, BB_CONFLICT, NULL, "%s: %s", what, msg);
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_NOMEM:
        return bb_fail(err, BB_UNAVAILABLE, NULL, "%s: %s", what, msg);
    default:
        if (strstr(msg, "no such table"))
            return bb_fail(err, BB_INVALID, NULL, "%s: database schema is not migrated (run `botboard migrate`): %s",
                           what, msg);
        return bb_fail(err, BB_INTERNAL, NULL, "%s: %s", what, msg);
    }
}

/* ---- the pool ------------------------------------------------------------ */

struct timespec sq_abs_after(clockid_t clk, int64_t ms)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    return ts;
}

/* Milliseconds left for waiting: the call's deadline, else the pool timeout. */
static int64_t wait_budget(sq *s, const bb_call *call)
{
    if (call && call->deadline_ms > 0) {
        int64_t left = call->deadline_ms - s->api->now_ms();
        return left > 0 ? left : 0;
    }
    return s->pool_timeout_ms;
}

static sq_conn *checkout(sq *s, int64_t budget_ms)
{
    struct timespec until = sq_abs_after(CLOCK_MONOTONIC, budget_ms);
    sq_conn *c = NULL;
    pthread_mutex_lock(&s->lock);
    while (s->n_free == 0) {
        if (pthread_cond_timedwait(&s->freed, &s->lock, &until) == ETIMEDOUT && s->n_free == 0) break;
    }
    if (s->n_free > 0) c = s->free_list[--s->n_free];
    pthread_mutex_unlock(&s->lock);
    return c;
}

static void checkin(sq *s, sq_conn *c)
{
    pthread_mutex_lock(&s->lock);
    s->free_list[s->n_free++] = c;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
}

size_t sq_pool_free(sq *s)
{
    size_t n;
    pthread_mutex_lock(&s->lock);
    n = s->n_free;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* ---- the transaction runner ---------------------------------------------- */

static void sleep_ms(int64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { }
}

static int run_control(sq_conn *c, sq_stmt_id id, bb_error *err)
{
    sqlite3_stmt *st = sq_stmt(c, id, err);
    int rc;
    if (!st) return sqlite3_errcode(c->db) ? sqlite3_errcode(c->db) : SQLITE_ERROR;
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Roll back whatever transaction a failure left open on c. */
static void rollback(sq *s, sq_conn *c)
{
    if (sqlite3_get_autocommit(c->db)) return;
    if (run_control(c, SQ_ROLLBACK, NULL) == SQLITE_OK) return;
    if (sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK && !sqlite3_get_autocommit(c->db))
        s->api->log(s->host, BB_LOG_ERROR, NULL, "rollback failed, the connection stays in a transaction: %s",
                    sqlite3_errmsg(c->db));
}

/* After a BUSY/LOCKED attempt of one call: true to retry after `backoff` ms
 * (counted), false once its attempts or its deadline are spent (counted,
 * err filled). */
static bool retry_or_give_up(sq *s, const bb_call *call, sq_op op, int64_t attempt, int64_t backoff, bb_error *err)
{
    const bb_host_api *api = s->api;
    int64_t deadline = call ? call->deadline_ms : 0;
    if (attempt + 1 >= s->retry_max_attempts) {
        api->add(s->give_ups[op], 1);
        api->log(s->host, BB_LOG_WARN, call, "%s: database busy, giving up after %lld attempts",
                 sq_op_names[op], (long long)(attempt + 1));
        bb_fail(err, BB_UNAVAILABLE, NULL, "%s: database busy after %lld attempts", sq_op_names[op],
                (long long)(attempt + 1));
        if (err) err->retry_after_s = 1;
        return false;
    }
    if (deadline > 0 && api->now_ms() + backoff >= deadline) {
        api->add(s->give_ups[op], 1);
        api->log(s->host, BB_LOG_WARN, call, "%s: database busy, deadline leaves no time to retry", sq_op_names[op]);
        bb_fail(err, BB_UNAVAILABLE, NULL, "%s: database busy until the deadline", sq_op_names[op]);
        if (err) err->retry_after_s = 1;
        return false;
    }
    api->add(s->retries[op], 1);
    api->log(s->host, BB_LOG_INFO, call, "%s: database busy, retry %lld in %lld ms", sq_op_names[op],
             (long long)(attempt + 1), (long long)backoff);
    return true;
}

/* ---- reads: one call, one connection ---------------------------------------- */

static bb_status one_attempt(sq *s, sq_conn *c, int mode, sq_body body, void *ctx, bb_error *err)
{
    int rc;
    bb_status st;
    c->transient = false;
    if (mode != SQ_NO_TX) {
        rc = run_control(c, SQ_BEGIN, err);
        if (rc != SQLITE_OK) return sq_fail(c, rc, err, "begin");
    }
    st = body(s, c, ctx, err);
    if (mode == SQ_NO_TX) return st;
    if (st == BB_OK) {
        rc = run_control(c, SQ_COMMIT, err);
        if (rc == SQLITE_OK) return BB_OK;
        st = sq_fail(c, rc, err, "commit");
    }
    rollback(s, c);
    return st;
}

static bb_status run_direct(sq *s, const bb_call *call, sq_op op, int mode, sq_body body, void *ctx, bb_error *err)
{
    for (int64_t attempt = 0;; attempt++) {
        sq_conn *c = checkout(s, wait_budget(s, call));
        bb_status st;
        bool transient;
        int64_t backoff;
        if (!c)
            return bb_fail(err, BB_UNAVAILABLE, NULL, "%s: no free database connection (pool of %zu)",
                           sq_op_names[op], s->n_conns);
        c->deadline_ms = call ? call->deadline_ms : 0;
        bb_error_clear(err);
        st = one_attempt(s, c, mode, body, ctx, err);
        transient = st != BB_OK && c->transient;
        c->deadline_ms = 0;
        checkin(s, c);
        if (!transient) return st;
        /* BUSY/LOCKED: another process holds the database.  Back off with
         * full jitter: a uniform wait in [0, min(max, base * 2^attempt)]. */
        backoff = bb_backoff_full_jitter(s->api, attempt, s->retry_base_ms, s->retry_max_ms);
        if (!retry_or_give_up(s, call, op, attempt, backoff, err)) return BB_UNAVAILABLE;
        sleep_ms(backoff);
    }
}

/* ---- writes: group commit ---------------------------------------------------
 *
 * A write queues a job and waits (bounded, holding no connection) until a
 * leader has run it.  Whoever finds no leader becomes it: it takes its own
 * job and up to group_commit_max - 1 more from the head of the queue, checks
 * out one connection, runs BEGIN IMMEDIATE, each job in a SAVEPOINT of its
 * own (a failing job is rolled back to its savepoint and fails alone), one
 * COMMIT, and only then reports the jobs that ran OK as OK.  BUSY/LOCKED
 * from another process retries the whole batch with the backoff policy;
 * any other failure of BEGIN/COMMIT fails every job of the batch.  Then it
 * wakes its jobs' callers and hands the leadership to the head of the queue.
 * While one batch commits the next one queues, so under load a commit (and
 * its fsync and WAL page writes) is shared by many writes. */

/* Unlink a queued job (gc_lock held). */
static void job_unlink(sq *s, sq_job *j)
{
    sq_job **pp = &s->gc_head, *prev = NULL;
    while (*pp && *pp != j) { prev = *pp; pp = &(*pp)->next; }
    if (!*pp) return;
    *pp = j->next;
    if (s->gc_tail == j) s->gc_tail = prev;
    j->next = NULL;
    s->api->add(s->queued, -1);
}

/* The new leader's batch (gc_lock held): its own job first, then queued
 * jobs in order, skipping those that must run alone. */
static size_t take_batch(sq *s, sq_job *self)
{
    sq_job **pp = &s->gc_head, *prev = NULL;
    size_t n = 0;
    job_unlink(s, self);
    self->state = SQ_JOB_TAKEN;
    s->gc_batch[n++] = self;
    if (self->alone) return n;
    while (*pp && n < (size_t)s->group_commit_max) {
        sq_job *j = *pp;
        if (j->alone) { prev = j; pp = &j->next; continue; }
        *pp = j->next;
        if (s->gc_tail == j) s->gc_tail = prev;
        j->next = NULL;
        s->api->add(s->queued, -1);
        j->state = SQ_JOB_TAKEN;
        s->gc_batch[n++] = j;
    }
    return n;
}

static void settle(sq_job *j, bb_status st)
{
    j->settled = true;
    j->ran_ok = false;
    j->status = st;
}

/* Every job without an outcome fails with e: nothing is acknowledged that
 * was not committed. */
static void settle_rest(sq_job **jobs, size_t n, const bb_error *e)
{
    for (size_t i = 0; i < n; i++) {
        if (jobs[i]->settled) continue;
        if (jobs[i]->err) *jobs[i]->err = *e;
        settle(jobs[i], e->code);
    }
}

enum { BATCH_DONE, BATCH_TRANSIENT };

/* One transaction over the unsettled jobs.  BATCH_TRANSIENT: rolled back on
 * BUSY/LOCKED, the unsettled jobs are worth another attempt. */
static int batch_attempt(sq *s, sq_conn *c, sq_job **jobs, size_t n, bb_error *e)
{
    const bb_host_api *api = s->api;
    for (;;) {   /* again from BEGIN when a failing job took the transaction with it */
        size_t pending = 0, ran_ok = 0;
        bool again = false, sp;
        int rc;
        for (size_t i = 0; i < n; i++) {
            jobs[i]->ran_ok = false;
            if (!jobs[i]->settled) pending++;
        }
        if (pending == 0) return BATCH_DONE;
        sp = pending > 1;   /* a batch of one needs no savepoint: its failure is the transaction's */
        c->transient = false;
        c->deadline_ms = 0;
        bb_error_clear(e);
        if ((rc = run_control(c, SQ_BEGIN_IMMEDIATE, e)) != SQLITE_OK) { sq_fail(c, rc, e, "begin"); goto failed; }
        for (size_t i = 0; i < n && !again; i++) {
            sq_job *j = jobs[i];
            int64_t deadline = j->call ? j->call->deadline_ms : 0;
            bb_status st;
            if (j->settled) continue;
            if (deadline > 0 && api->now_ms() >= deadline) {
                settle(j, bb_fail(j->err, BB_TIMEOUT, NULL, "%s: deadline passed", sq_op_names[j->op]));
                continue;
            }
            if (sp && (rc = run_control(c, SQ_SAVEPOINT, e)) != SQLITE_OK) { sq_fail(c, rc, e, "savepoint"); goto failed; }
            bb_error_clear(j->err);
            c->transient = false;
            c->deadline_ms = deadline;
            st = j->body(s, c, j->ctx, j->err);
            c->deadline_ms = 0;
            if (st == BB_OK) {
                if (sp && (rc = run_control(c, SQ_RELEASE, e)) != SQLITE_OK) {
                    sq_fail(c, rc, e, "release savepoint");
                    goto failed;
                }
                j->ran_ok = true;
                ran_ok++;
                continue;
            }
            if (c->transient) {   /* BUSY/LOCKED inside: the batch tries again as a whole */
                if (j->err) *e = *j->err;
                goto failed;
            }
            settle(j, st);
            if (sqlite3_get_autocommit(c->db)) {
                /* The error (an interrupt at the deadline, I/O) rolled back
                 * the whole transaction: the other jobs run again. */
                again = true;
            } else if (sp && ((rc = run_control(c, SQ_ROLLBACK_TO, e)) != SQLITE_OK ||
                              (rc = run_control(c, SQ_RELEASE, e)) != SQLITE_OK)) {
                /* Its partial work cannot be undone alone: undo all, run the others again. */
                api->log(s->host, BB_LOG_WARN, j->call, "rollback to savepoint failed: %s", sqlite3_errstr(rc));
                rollback(s, c);
                again = true;
            }
        }
        if (again) { rollback(s, c); continue; }
        if (ran_ok == 0) { rollback(s, c); return BATCH_DONE; }
        if ((rc = run_control(c, SQ_COMMIT, e)) != SQLITE_OK) { sq_fail(c, rc, e, "commit"); goto failed; }
        for (size_t i = 0; i < n; i++)
            if (jobs[i]->ran_ok) settle(jobs[i], BB_OK);
        api->add(s->commits, 1);
        api->add(s->committed_jobs, (double)ran_ok);
        return BATCH_DONE;
    failed:
        c->deadline_ms = 0;
        rollback(s, c);
        if (c->transient) return BATCH_TRANSIENT;
        settle_rest(jobs, n, e);
        return BATCH_DONE;
    }
}

/* The leader's work: settle every job of the batch. */
static void run_batch(sq *s, sq_job **jobs, size_t n)
{
    bb_error e;
    for (size_t i = 0; i < n; i++) {
        jobs[i]->settled = jobs[i]->ran_ok = false;
        jobs[i]->status = BB_UNAVAILABLE;
    }
    for (int64_t attempt = 0;; attempt++) {
        int64_t budget = 0, backoff;
        bool retry = false;
        sq_conn *c;
        int r;
        for (size_t i = 0; i < n; i++) {   /* the most patient caller sets the wait */
            int64_t b = jobs[i]->settled ? 0 : wait_budget(s, jobs[i]->call);
            if (b > budget) budget = b;
        }
        if (!(c = checkout(s, budget))) {
            for (size_t i = 0; i < n; i++)
                if (!jobs[i]->settled)
                    settle(jobs[i], bb_fail(jobs[i]->err, BB_UNAVAILABLE, NULL,
                                            "%s: no free database connection (pool of %zu)",
                                            sq_op_names[jobs[i]->op], s->n_conns));
            return;
        }
        r = batch_attempt(s, c, jobs, n, &e);
        checkin(s, c);
        if (r == BATCH_DONE) return;
        backoff = bb_backoff_full_jitter(s->api, attempt, s->retry_base_ms, s->retry_max_ms);
        for (size_t i = 0; i < n; i++) {
            sq_job *j = jobs[i];
            if (j->settled) continue;
            if (retry_or_give_up(s, j->call, j->op, attempt, backoff, j->err)) retry = true;
            else settle(j, BB_UNAVAILABLE);
        }
        if (!retry) return;
        sleep_ms(backoff);
    }
}

static bb_status run_write(sq *s, const bb_call *call, sq_op op, int mode, sq_body body, void *ctx, bb_error *err)
{
    sq_job job = { .call = call, .op = op, .body = body, .ctx = ctx, .err = err, .alone = mode == SQ_WRITE_ALONE,
                   .state = SQ_JOB_QUEUED, .status = BB_UNAVAILABLE };
    struct timespec until;
    size_t n = 0;
    bool lead = false;
    int rc;
    bb_error_clear(err);
    if ((rc = pthread_cond_init(&job.wake, &s->gc_condattr)) != 0)
        return bb_fail(err, BB_INTERNAL, NULL, "%s: cannot create a condition variable: %s", sq_op_names[op],
                       strerror(rc));
    until = sq_abs_after(CLOCK_MONOTONIC, wait_budget(s, call));
    pthread_mutex_lock(&s->gc_lock);
    if (s->gc_tail) s->gc_tail->next = &job;
    else s->gc_head = &job;
    s->gc_tail = &job;
    s->api->add(s->queued, 1);
    for (;;) {
        if (job.state == SQ_JOB_DONE) break;
        if (job.state == SQ_JOB_QUEUED && !s->gc_leader) {
            s->gc_leader = true;
            lead = true;
            n = take_batch(s, &job);
            break;
        }
        if (pthread_cond_timedwait(&job.wake, &s->gc_lock, &until) == 0) continue;
        if (job.state == SQ_JOB_QUEUED) {   /* waited out its budget in the queue: never ran */
            job_unlink(s, &job);
            if (!s->gc_leader && s->gc_head) pthread_cond_signal(&s->gc_head->wake);
            job.status = bb_fail(err, BB_UNAVAILABLE, NULL, "%s: timed out waiting for its turn to write",
                                 sq_op_names[op]);
            break;
        }
        /* Taken: the leader writes into this job, so wait for it.  Its work is
         * bounded by its jobs' deadlines, the busy timeout and the retry limits. */
        if (job.state == SQ_JOB_TAKEN) until = sq_abs_after(CLOCK_MONOTONIC, 1000);
    }
    pthread_mutex_unlock(&s->gc_lock);
    if (lead) {
        run_batch(s, s->gc_batch, n);
        pthread_mutex_lock(&s->gc_lock);
        /* Wake the callers while holding the lock: none can return (and
         * free its job) before we are done touching the batch. */
        for (size_t i = 0; i < n; i++) {
            s->gc_batch[i]->state = SQ_JOB_DONE;
            if (s->gc_batch[i] != &job) pthread_cond_signal(&s->gc_batch[i]->wake);
        }
        s->gc_leader = false;
        if (s->gc_head) pthread_cond_signal(&s->gc_head->wake);   /* the next leader */
        pthread_mutex_unlock(&s->gc_lock);
    }
    pthread_cond_destroy(&job.wake);
    return job.status;
}

bb_status sq_run(sq *s, const bb_call *call, sq_op op, int mode, sq_body body, void *ctx, bb_error *err)
{
    const bb_host_api *api = s->api;
    bb_status st;
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    if (mode == SQ_WRITE || mode == SQ_WRITE_ALONE) st = run_write(s, call, op, mode, body, ctx, err);
    else st = run_direct(s, call, op, mode, body, ctx, err);
    clock_gettime(CLOCK_MONOTONIC, &w1);
    api->observe(s->duration[op], (double)(w1.tv_sec - w0.tv_sec) + (double)(w1.tv_nsec - w0.tv_nsec) / 1e9);
    if (st != BB_OK && s->errors) {
        const char *labels[] = { "sqlite", sq_op_names[op], bb_status_name(st), NULL };
        bb_series *ser = api->series(s->errors, labels);
        if (ser) api->add(ser, 1);
    }
    return st;
}
