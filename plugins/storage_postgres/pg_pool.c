/*
 * plugins/storage_postgres/pg_pool.c — the libpq connection pool.
 *
 * Up to pool.size connections are kept; up to max_overflow more are opened
 * under load and closed when they come back to a full idle set.  A caller
 * waits at most timeout_ms (or its deadline) for a connection, then gets
 * UNAVAILABLE.  Connections older than recycle_s are replaced; one idle
 * longer than idle_check_s is validated with a round trip before it is
 * handed out.  When the server goes away, the broken connection and every
 * idle one (they share its fate) are discarded, and new connections are
 * attempted with exponential backoff so a dead server is not hammered.
 * A watcher thread reports connections held longer than leak_warn_ms,
 * naming the operation and the request id.
 */
#include "pg_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONNECT_BACKOFF_BASE_MS 50
#define CONNECT_BACKOFF_MAX_MS  1000
#define LEAK_SCAN_MIN_MS        10
#define LEAK_SCAN_MAX_MS        1000
#define LEAK_REPORT_BATCH       8

static int64_t now_ms(const pg_pool *p) { return p->store->api->now_ms(); }

static void abs_time(struct timespec *ts, int64_t from_now_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(from_now_ms / 1000);
    ts->tv_nsec += (long)(from_now_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

/* Gauges follow every change; called with the lock held. */
static void publish(pg_pool *p)
{
    const bb_host_api *api = p->store->api;
    if (p->store->m.in_use) api->set(p->store->m.in_use, p->n_busy);
    if (p->store->m.idle) api->set(p->store->m.idle, p->n_idle);
    if (p->store->m.waiting) api->set(p->store->m.waiting, p->n_waiting);
}

static void bump(pg_pool *p, bb_series *s)
{
    if (s) p->store->api->add(s, 1);
}

/* libpq prints server notices to stderr by default; a plugin never prints,
 * so they go to the host's log at debug level. */
static void notice_to_log(void *arg, const char *message)
{
    pg_store *s = arg;
    char line[256];
    size_t n = 0;
    if (!s->api->log_enabled(s->host, BB_LOG_DEBUG)) return;
    while (message[n] && message[n] != '\n' && n + 1 < sizeof line) { line[n] = message[n]; n++; }
    line[n] = '\0';
    s->api->log(s->host, BB_LOG_DEBUG, NULL, "server notice: %s", line);
}

PGconn *pg_connect(pg_store *s, bb_error *err)
{
    char timeout[24], line[200];
    int64_t secs = (s->pool.cfg.connect_timeout_ms + 999) / 1000;
    /* Before the conninfo: defaults it may override (botboard writes, so with
     * several hosts it wants the primary).  After it: what the keys set. */
    const char *keys[] = { "target_session_attrs", "dbname", "connect_timeout", "fallback_application_name",
                           "client_encoding", NULL };
    const char *vals[] = { "read-write", s->conninfo, timeout, "botboard", "UTF8", NULL };
    PGconn *pg;
    pg_i64_text(secs < 1 ? 1 : secs, timeout);
    pg = PQconnectdbParams(keys, vals, 1);
    if (!pg) { bb_fail(err, BB_UNAVAILABLE, NULL, "out of memory connecting to the database"); return NULL; }
    if (PQstatus(pg) != CONNECTION_OK) {
        const char *m = PQerrorMessage(pg);
        size_t n = 0;
        /* libpq's message names hosts and ports (never the password); keep one line. */
        while (m[n] && n + 1 < sizeof line) { line[n] = m[n] == '\n' ? ' ' : m[n]; n++; }
        while (n && line[n - 1] == ' ') n--;
        line[n] = '\0';
        bb_fail(err, BB_UNAVAILABLE, NULL, "cannot connect to the database: %s", line);
        PQfinish(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg, notice_to_log, s);
    return pg;
}

/* Session settings every pooled connection gets. */
static bool setup_conn(pg_pool *p, pg_conn *c, bb_error *err)
{
    char timeout[24];
    const char *vals[1] = { timeout };
    PGresult *r = NULL;
    bb_call call = { NULL, NULL, now_ms(p) + p->cfg.connect_timeout_ms };
    pg_i64_text(p->cfg.statement_timeout_ms, timeout);
    if (pg_exec(p->store, c, &call, ST_SESSION_SETUP, vals, NULL, NULL, &r, err) != BB_OK) return false;
    c->backend_pid = PQntuples(r) == 1 ? (int)pg_get_i64(r, 0, 1) : 0;
    PQclear(r);
    return true;
}

static void close_conn(pg_pool *p, pg_conn *c)
{
    if (!c) return;
    if (c->pg) PQfinish(c->pg);
    free(c);
    bump(p, p->store->m.closed);
}

static void busy_add(pg_pool *p, pg_conn *c)
{
    c->prev = NULL;
    c->next = p->busy;
    if (p->busy) p->busy->prev = c;
    p->busy = c;
    p->n_busy++;
}

static void busy_remove(pg_pool *p, pg_conn *c)
{
    if (c->prev) c->prev->next = c->next; else p->busy = c->next;
    if (c->next) c->next->prev = c->prev;
    c->next = c->prev = NULL;
    p->n_busy--;
}

/* Close every idle connection (called with the lock held; they are unlinked
 * here and closed after the lock is released by the caller). */
static pg_conn *take_idle(pg_pool *p)
{
    pg_conn *all = p->idle;
    p->idle = NULL;
    p->n_idle = 0;
    return all;
}

static void close_list(pg_pool *p, pg_conn *c)
{
    while (c) {
        pg_conn *next = c->next;
        close_conn(p, c);
        c = next;
    }
}

/* Who holds it, for leak reports; called with the lock held (the leak
 * watcher reads these fields under it). */
static void mark_out(pg_pool *p, pg_conn *c, const bb_call *call, const char *op)
{
    c->checkout_ms = now_ms(p);
    c->op = op;
    snprintf(c->request_id, sizeof c->request_id, "%s", call && call->request_id ? call->request_id : "-");
    c->leak_reported = false;
    c->broken = c->lost = false;
}

static void observe_wait(pg_pool *p, int64_t t0)
{
    if (p->store->m.checkout_wait) p->store->api->observe(p->store->m.checkout_wait, (double)(now_ms(p) - t0) / 1000.0);
}

pg_checkout_result pg_pool_checkout(pg_pool *p, const bb_call *call, const char *op, pg_conn **out, bb_error *err)
{
    int64_t t0 = now_ms(p), limit = t0 + p->cfg.timeout_ms;
    if (call && call->deadline_ms && call->deadline_ms < limit) limit = call->deadline_ms;
    *out = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        int64_t now = now_ms(p);
        if (p->stopping) {
            pthread_mutex_unlock(&p->mu);
            bb_fail(err, BB_UNAVAILABLE, NULL, "storage is shutting down");
            return PG_CHECKOUT_EXHAUSTED;
        }
        if (call && call->deadline_ms && now >= call->deadline_ms) {
            /* Never start (or validate a connection for) a call already late:
             * its statements would be cancelled and good connections dropped. */
            pthread_mutex_unlock(&p->mu);
            bb_fail(err, BB_TIMEOUT, NULL, "the call's deadline passed before a database connection was free");
            return PG_CHECKOUT_EXHAUSTED;
        }
        if (p->idle) {
            pg_conn *c = p->idle;
            bool validate;
            p->idle = c->next;
            p->n_idle--;
            if (now - c->opened_ms >= p->cfg.recycle_ms) {       /* too old: replace it */
                publish(p);
                pthread_mutex_unlock(&p->mu);
                close_conn(p, c);
                pthread_mutex_lock(&p->mu);
                continue;
            }
            validate = now - c->last_used_ms >= p->cfg.idle_check_ms;
            busy_add(p, c);
            mark_out(p, c, call, op);
            publish(p);
            pthread_mutex_unlock(&p->mu);
            if (validate) {
                PGresult *r = NULL;
                bb_error ignore;
                bb_call vcall = { call ? call->request_id : NULL, NULL,
                                  now + (p->cfg.connect_timeout_ms < limit - now ? p->cfg.connect_timeout_ms : limit - now) };
                if (pg_exec(p->store, c, &vcall, ST_PING, NULL, NULL, NULL, &r, &ignore) != BB_OK) {
                    pg_conn *stale;
                    /* It died while idle, and so probably did its idle siblings. */
                    pthread_mutex_lock(&p->mu);
                    busy_remove(p, c);
                    stale = take_idle(p);
                    publish(p);
                    pthread_cond_broadcast(&p->cv);
                    pthread_mutex_unlock(&p->mu);
                    close_conn(p, c);
                    close_list(p, stale);
                    pthread_mutex_lock(&p->mu);
                    continue;
                }
                PQclear(r);
            }
            observe_wait(p, t0);
            *out = c;
            return PG_CHECKOUT_OK;
        }
        if (p->n_idle + p->n_busy + p->n_opening < p->cfg.size + p->cfg.max_overflow) {
            pg_conn *c;
            PGconn *pg;
            if (now < p->next_connect_ms) {
                pthread_mutex_unlock(&p->mu);
                bb_fail(err, BB_UNAVAILABLE, NULL, "database unreachable; reconnecting with backoff");
                return PG_CHECKOUT_CONNECT_FAILED;
            }
            p->n_opening++;
            pthread_mutex_unlock(&p->mu);
            pg = pg_connect(p->store, err);
            c = pg ? calloc(1, sizeof *c) : NULL;
            if (c) {
                c->pg = pg;
                c->opened_ms = c->last_used_ms = now_ms(p);
                if (!setup_conn(p, c, err)) { PQfinish(c->pg); free(c); c = NULL; pg = NULL; }
            } else if (pg) {
                PQfinish(pg);
                pg = NULL;
                bb_fail(err, BB_UNAVAILABLE, NULL, "out of memory");
            }
            pthread_mutex_lock(&p->mu);
            p->n_opening--;
            if (!c) {
                int64_t pause;
                p->connect_failures++;
                pause = pg_backoff_ms(p->store, p->connect_failures, CONNECT_BACKOFF_BASE_MS, CONNECT_BACKOFF_MAX_MS);
                p->next_connect_ms = now_ms(p) + pause;
                bump(p, p->store->m.failed);
                pthread_cond_broadcast(&p->cv);
                pthread_mutex_unlock(&p->mu);
                return PG_CHECKOUT_CONNECT_FAILED;
            }
            p->connect_failures = 0;
            p->next_connect_ms = 0;
            busy_add(p, c);
            mark_out(p, c, call, op);
            publish(p);
            pthread_mutex_unlock(&p->mu);
            bump(p, p->store->m.opened);
            observe_wait(p, t0);
            *out = c;
            return PG_CHECKOUT_OK;
        }
        if (now >= limit) {
            pthread_mutex_unlock(&p->mu);
            bb_fail(err, BB_UNAVAILABLE, NULL, "no database connection free within %lld ms (pool %d + overflow %d in use)",
                    (long long)(limit - t0), p->cfg.size, p->cfg.max_overflow);
            err->retry_after_s = 1;
            return PG_CHECKOUT_EXHAUSTED;
        }
        {
            struct timespec ts;
            abs_time(&ts, limit - now);
            p->n_waiting++;
            publish(p);
            (void)pthread_cond_timedwait(&p->cv, &p->mu, &ts);
            p->n_waiting--;
            publish(p);
        }
    }
}

void pg_pool_checkin(pg_pool *p, pg_conn *c)
{
    pg_conn *stale = NULL;
    bool discard;
    int64_t now = now_ms(p);
    if (!c) return;
    pthread_mutex_lock(&p->mu);
    busy_remove(p, c);
    c->last_used_ms = now;
    c->op = NULL;
    discard = c->broken || PQstatus(c->pg) != CONNECTION_OK || PQtransactionStatus(c->pg) != PQTRANS_IDLE ||
              now - c->opened_ms >= p->cfg.recycle_ms || p->n_idle >= p->cfg.size || p->stopping;
    if (c->lost) stale = take_idle(p);     /* the server went away: its other connections are dead too */
    if (!discard) {
        c->next = p->idle;
        p->idle = c;
        p->n_idle++;
    }
    publish(p);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (discard) close_conn(p, c);
    close_list(p, stale);
}

void pg_pool_exempt(pg_pool *p, pg_conn *c)
{
    pthread_mutex_lock(&p->mu);
    c->leak_reported = true;
    pthread_mutex_unlock(&p->mu);
}

void pg_pool_counts(pg_pool *p, int *in_use, int *idle, int *capacity)
{
    pthread_mutex_lock(&p->mu);
    *in_use = p->n_busy;
    *idle = p->n_idle;
    *capacity = p->cfg.size;
    pthread_mutex_unlock(&p->mu);
}

typedef struct leak_report {
    char    op[48];
    char    request_id[129];
    int64_t held_ms;
    int     pid;
} leak_report;

/* Scans checked-out connections and reports each one held too long, once. */
static void *leak_watcher(void *arg)
{
    pg_pool *p = arg;
    int64_t period = p->cfg.leak_warn_ms / 4;
    if (period < LEAK_SCAN_MIN_MS) period = LEAK_SCAN_MIN_MS;
    if (period > LEAK_SCAN_MAX_MS) period = LEAK_SCAN_MAX_MS;
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        struct timespec ts;
        leak_report found[LEAK_REPORT_BATCH];
        int n = 0;
        int64_t now;
        abs_time(&ts, period);
        (void)pthread_cond_timedwait(&p->leak_cv, &p->mu, &ts);
        if (p->stopping) break;
        now = now_ms(p);
        for (pg_conn *c = p->busy; c && n < LEAK_REPORT_BATCH; c = c->next) {
            if (c->leak_reported || now - c->checkout_ms < p->cfg.leak_warn_ms) continue;
            c->leak_reported = true;
            snprintf(found[n].op, sizeof found[n].op, "%s", c->op ? c->op : "?");
            snprintf(found[n].request_id, sizeof found[n].request_id, "%s", c->request_id);
            found[n].held_ms = now - c->checkout_ms;
            found[n].pid = c->backend_pid;
            n++;
        }
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < n; i++) {
            bb_call call = { found[i].request_id, NULL, 0 };
            bump(p, p->store->m.leaks);
            p->store->api->log(p->store->host, BB_LOG_WARN, &call,
                               "connection held %lld ms (over leak_warn_ms %lld) by operation %s, request %s, backend pid %d",
                               (long long)found[i].held_ms, (long long)p->cfg.leak_warn_ms, found[i].op,
                               found[i].request_id, found[i].pid);
        }
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

bool pg_pool_init(pg_pool *p, pg_store *s, const pg_pool_cfg *cfg, bb_error *err)
{
    pthread_condattr_t ca;
    memset(p, 0, sizeof *p);
    p->store = s;
    p->cfg = *cfg;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        bb_fail(err, BB_INTERNAL, NULL, "cannot create the pool lock");
        return false;
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&p->cv, &ca) != 0 || pthread_cond_init(&p->leak_cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        bb_fail(err, BB_INTERNAL, NULL, "cannot create the pool condition");
        return false;
    }
    pthread_condattr_destroy(&ca);
    if (pthread_create(&p->leak_thread, NULL, leak_watcher, p) != 0) {
        bb_fail(err, BB_INTERNAL, NULL, "cannot start the connection leak watcher");
        return false;
    }
    p->leak_thread_started = true;
    return true;
}

void pg_pool_destroy(pg_pool *p)
{
    pg_conn *idle, *busy;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->leak_cv);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (p->leak_thread_started) pthread_join(p->leak_thread, NULL);
    pthread_mutex_lock(&p->mu);
    idle = take_idle(p);
    busy = p->busy;         /* none once every call returned; closed anyway */
    p->busy = NULL;
    p->n_busy = 0;
    pthread_mutex_unlock(&p->mu);
    close_list(p, idle);
    close_list(p, busy);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->leak_cv);
    pthread_mutex_destroy(&p->mu);
}
