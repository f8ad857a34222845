/*
 * plugins/storage_postgres/pg_exec.c — running statements and operations.
 *
 * pg_exec sends a prepared statement (preparing it on first use on that
 * connection) and waits for the answer with poll(), so every round trip is
 * bounded by the call's deadline; a statement still running at the deadline
 * is cancelled and its connection discarded.
 *
 * pg_run is the one place that decides about retries: serialization failures
 * and deadlocks are always repeated (the server rolled the transaction
 * back); a lost connection is repeated when nothing can have been committed
 * (it died before COMMIT was sent) or the operation says it is safe to
 * repeat.  Backoff is exponential with full jitter, bounded by
 * storage.retry.* and the call's deadline.
 */
#include "pg_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <botboard/backoff.h>

static int64_t now_ms(pg_store *s) { return s->api->now_ms(); }

static void count_error(pg_store *s, const char *code)
{
    const char *labels[] = { code, NULL };
    bb_series *e = s->api->series(s->m.sqlstate_errors, labels);
    if (e) s->api->add(e, 1);
}

static bool is_transient_state(const char *st)
{
    return strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0;
}

/* SQLSTATE classes that mean the server is going or gone. */
static bool is_connection_state(const char *st)
{
    return strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 || strcmp(st, "57P02") == 0 ||
           strcmp(st, "57P03") == 0;
}

static bb_status map_state(const char *st)
{
    if (strcmp(st, "23505") == 0) return BB_CONFLICT;
    if (strcmp(st, "23503") == 0) return BB_NOT_FOUND;
    if (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0) return BB_INVALID;
    if (strcmp(st, "57014") == 0) return BB_TIMEOUT;                 /* statement_timeout */
    if (is_transient_state(st) || is_connection_state(st) || strncmp(st, "53", 2) == 0) return BB_UNAVAILABLE;
    return BB_INTERNAL;
}

/* First line of a libpq message, without the trailing newline. */
static void one_line(char *dst, size_t len, const char *msg)
{
    size_t n = 0;
    if (!msg) msg = "";
    while (msg[n] && msg[n] != '\n' && n + 1 < len) { dst[n] = msg[n]; n++; }
    dst[n] = '\0';
}

/* Mark the connection lost and fail with UNAVAILABLE. */
static bb_status lost(pg_store *s, pg_conn *c, bb_error *err)
{
    char msg[200];
    one_line(msg, sizeof msg, PQerrorMessage(c->pg));
    c->lost = c->broken = true;
    snprintf(c->sqlstate, sizeof c->sqlstate, "08006");
    count_error(s, "connection");
    return bb_fail(err, BB_UNAVAILABLE, NULL, "database connection lost: %s", msg[0] ? msg : "no answer");
}

/* Wait for the connection to be readable (or writable) within the deadline. */
static bb_status wait_socket(pg_store *s, pg_conn *c, const bb_call *call, bool for_write, bb_error *err)
{
    struct pollfd pfd = { PQsocket(c->pg), (short)(for_write ? POLLOUT : POLLIN), 0 };
    int64_t deadline = call ? call->deadline_ms : 0;
    for (;;) {
        int timeout = 1000, rc;
        if (pfd.fd < 0) return lost(s, c, err);
        if (deadline) {
            int64_t left = deadline - now_ms(s);
            if (left <= 0) {
                PGcancel *cancel = PQgetCancel(c->pg);
                char buf[256];
                if (cancel) { (void)PQcancel(cancel, buf, (int)sizeof buf); PQfreeCancel(cancel); }
                c->broken = true;   /* an answer may still be on its way: never reuse */
                count_error(s, "deadline");
                return bb_fail(err, BB_TIMEOUT, NULL, "the call's deadline passed waiting for the database");
            }
            if (left < timeout) timeout = (int)left;
        }
        rc = poll(&pfd, 1, timeout);
        if (rc > 0) return BB_OK;
        if (rc < 0 && errno != EINTR) return lost(s, c, err);
    }
}

/* Collect the results of the command just sent; keep the first, or the error. */
static bb_status collect(pg_store *s, pg_conn *c, const bb_call *call, PGresult **out, bb_error *err)
{
    PGresult *first = NULL, *r;
    bb_status st;
    for (;;) {
        int flush;
        while ((flush = PQflush(c->pg)) == 1)
            if ((st = wait_socket(s, c, call, true, err)) != BB_OK) return st;
        if (flush < 0) return lost(s, c, err);
        while (PQisBusy(c->pg)) {
            if ((st = wait_socket(s, c, call, false, err)) != BB_OK) { PQclear(first); return st; }
            if (!PQconsumeInput(c->pg)) { PQclear(first); return lost(s, c, err); }
        }
        r = PQgetResult(c->pg);
        if (!r) break;
        if (!first) first = r; else PQclear(r);
    }
    if (!first) return PQstatus(c->pg) == CONNECTION_OK ? bb_fail(err, BB_INTERNAL, NULL, "no result from the database")
                                                        : lost(s, c, err);
    switch (PQresultStatus(first)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
        *out = first;
        return BB_OK;
    default: {
        const char *state = PQresultErrorField(first, PG_DIAG_SQLSTATE);
        char msg[200];
        one_line(msg, sizeof msg, PQresultErrorField(first, PG_DIAG_MESSAGE_PRIMARY));
        if (!msg[0]) one_line(msg, sizeof msg, PQresultErrorMessage(first));
        snprintf(c->sqlstate, sizeof c->sqlstate, "%s", state ? state : "XX000");
        PQclear(first);
        if (PQstatus(c->pg) != CONNECTION_OK || is_connection_state(c->sqlstate)) {
            c->lost = c->broken = true;
            count_error(s, c->sqlstate);
            return bb_fail(err, BB_UNAVAILABLE, NULL, "database connection lost: %s", msg);
        }
        count_error(s, c->sqlstate);
        return bb_fail(err, map_state(c->sqlstate), NULL, "postgres %s: %s", c->sqlstate, msg);
    }
    }
}

static bool is_prepared(const pg_conn *c, pg_stmt_id id) { return c->prepared[id / 8] & (1u << (id % 8)); }
static void set_prepared(pg_conn *c, pg_stmt_id id) { c->prepared[id / 8] |= (uint8_t)(1u << (id % 8)); }

bb_status pg_exec(pg_store *s, pg_conn *c, const bb_call *call, pg_stmt_id id, const char *const *values,
                  const int *lengths, const int *formats, PGresult **out, bb_error *err)
{
    const pg_stmt *stmt = &s->stmts[id];
    PGresult *r = NULL;
    bb_status st;
    *out = NULL;
    c->sqlstate[0] = '\0';
    if (!is_prepared(c, id)) {
        if (!PQsendPrepare(c->pg, stmt->name, stmt->sql, stmt->n_params, stmt->types)) return lost(s, c, err);
        if ((st = collect(s, c, call, &r, err)) != BB_OK) return st;
        PQclear(r);
        set_prepared(c, id);
    }
    if (!PQsendQueryPrepared(c->pg, stmt->name, stmt->n_params, values, lengths, formats, 0))
        return lost(s, c, err);
    return collect(s, c, call, out, err);
}

bb_status pg_exec_simple(pg_store *s, pg_conn *c, const bb_call *call, const char *sql, bb_error *err)
{
    PGresult *r = NULL;
    bb_status st;
    c->sqlstate[0] = '\0';
    if (!PQsendQuery(c->pg, sql)) return lost(s, c, err);
    st = collect(s, c, call, &r, err);
    PQclear(r);
    return st;
}

int64_t pg_backoff_ms(pg_store *s, int attempt, int64_t base_ms, int64_t max_ms)
{
    return bb_backoff_full_jitter(s->api, attempt > 0 ? attempt - 1 : 0, base_ms, max_ms);
}

bool pg_sleep_within(pg_store *s, const bb_call *call, int64_t ms)
{
    struct timespec ts;
    if (call && call->deadline_ms) {
        int64_t left = call->deadline_ms - now_ms(s);
        if (left <= 0) return false;
        if (ms >= left) return false;   /* sleeping would overrun the deadline: give up now */
    }
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    return true;
}

/* One attempt: begin, body, commit.  *retryable says whether repeating the
 * whole operation is both useful and safe. */
static bb_status run_once(pg_store *s, pg_conn *c, const bb_call *call, const pg_op *op, int attempt,
                          pg_body_fn body, void *ud, bool *retryable, bb_error *err)
{
    bool committing = false;
    bb_status st = BB_OK;
    c->lost = false;
    c->sqlstate[0] = '\0';
    if (op->flags & (PG_OP_TXN | PG_OP_SNAPSHOT))
        st = pg_exec_simple(s, c, call, (op->flags & PG_OP_SNAPSHOT) ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                                                      : "BEGIN", err);
    if (st == BB_OK) st = body(s, c, call, attempt, ud, err);
    if (st == BB_OK && (op->flags & (PG_OP_TXN | PG_OP_SNAPSHOT))) {
        committing = true;
        st = pg_exec_simple(s, c, call, "COMMIT", err);
    }
    if (st != BB_OK && (op->flags & (PG_OP_TXN | PG_OP_SNAPSHOT)) && !c->broken &&
        PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        bb_error ignore;
        char state[sizeof c->sqlstate];
        memcpy(state, c->sqlstate, sizeof state);   /* ROLLBACK must not hide why we failed */
        if (pg_exec_simple(s, c, call, "ROLLBACK", &ignore) != BB_OK) c->broken = true;
        if (!c->lost) memcpy(c->sqlstate, state, sizeof state);
    }
    *retryable = false;
    if (st != BB_OK && !(op->flags & PG_OP_NO_RETRY)) {
        if (c->sqlstate[0] && is_transient_state(c->sqlstate) && !c->lost) *retryable = true;
        else if (c->lost && (!committing || (op->flags & (PG_OP_REPEATABLE | PG_OP_READONLY)))) *retryable = true;
    }
    return st;
}

static void count_outcome(pg_store *s, const pg_op *op, bb_status st, int64_t t0)
{
    const char *labels[] = { "postgres", op->name, NULL };
    const char *elabels[] = { "postgres", op->name, bb_status_name(st), NULL };
    bb_series *dur = s->api->series(s->m.query_seconds, labels);
    if (dur) s->api->observe(dur, (double)(now_ms(s) - t0) / 1000.0);
    if (st != BB_OK) {
        bb_series *e = s->api->series(s->m.errors, elabels);
        if (e) s->api->add(e, 1);
    }
}

static bb_status attempt_loop(pg_store *s, const bb_call *call, const pg_op *op, pg_body_fn body, void *ud,
                              bb_error *err)
{
    const char *labels[] = { "postgres", op->name, NULL };
    int max = (op->flags & PG_OP_NO_RETRY) ? 1 : s->retry_max_attempts;
    for (int attempt = 1;; attempt++) {
        pg_conn *c = NULL;
        bool retryable = false;
        const char *reason;
        bb_status st;
        int64_t pause;
        bb_error_clear(err);
        switch (pg_pool_checkout(&s->pool, call, op->name, &c, err)) {
        case PG_CHECKOUT_EXHAUSTED:
            count_error(s, err->code == BB_TIMEOUT ? "deadline" : "pool_timeout");
            return err->code ? err->code : BB_UNAVAILABLE;
        case PG_CHECKOUT_CONNECT_FAILED:
            st = BB_UNAVAILABLE;
            retryable = !(op->flags & PG_OP_NO_RETRY);
            reason = "connect";
            break;
        case PG_CHECKOUT_OK:
        default:
            if (op->flags & PG_OP_LONG) pg_pool_exempt(&s->pool, c);
            st = run_once(s, c, call, op, attempt, body, ud, &retryable, err);
            reason = c->lost ? "connection lost" : c->sqlstate[0] ? c->sqlstate : "other";
            pg_pool_checkin(&s->pool, c);
            break;
        }
        if (st == BB_OK || !retryable) return st;
        if (attempt >= max) {
            bb_series *g = s->api->series(s->m.giveups, labels);
            if (g) s->api->add(g, 1);
            s->api->log(s->host, BB_LOG_WARN, call, "%s: giving up after %d attempts: %s", op->name, attempt, err->msg);
            return bb_fail(err, BB_UNAVAILABLE, NULL, "database unavailable (%d attempts): %.180s", attempt, err->msg);
        }
        pause = pg_backoff_ms(s, attempt, s->retry_base_ms, s->retry_max_ms);
        if (!pg_sleep_within(s, call, pause)) {
            bb_series *g = s->api->series(s->m.giveups, labels);
            if (g) s->api->add(g, 1);
            s->api->log(s->host, BB_LOG_WARN, call, "%s: deadline reached before retry %d: %s", op->name, attempt + 1,
                        err->msg);
            return bb_fail(err, BB_UNAVAILABLE, NULL, "database unavailable before the deadline: %.190s", err->msg);
        }
        {
            bb_series *r = s->api->series(s->m.retries, labels);
            if (r) s->api->add(r, 1);
        }
        s->api->log(s->host, BB_LOG_INFO, call, "%s: retry %d after %lld ms (%s): %s", op->name, attempt + 1,
                    (long long)pause, reason, err->msg);
    }
}

bb_status pg_run(pg_store *s, const bb_call *call, const pg_op *op, pg_body_fn body, void *ud, bb_error *err)
{
    int64_t t0 = now_ms(s);
    bb_status st = attempt_loop(s, call, op, body, ud, err);
    count_outcome(s, op, st, t0);
    return st;
}
