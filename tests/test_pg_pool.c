/*
 * tests/test_pg_pool.c — the connection pool against a real server:
 * exhaustion gives UNAVAILABLE after timeout_ms, overflow connections open
 * under load and close afterwards, old connections are recycled (new
 * backend pid), idle ones are validated, and a connection held too long is
 * reported (log line naming the operation and request id, plus a counter).
 *
 * A call is made to hold its connection by taking a table lock from the
 * test's own connection: the plugin's query waits on it, for real.
 */
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "pg_fixture.h"

typedef struct holder {
    pgfx     *f;
    const char *request_id;
    bb_status st;
} holder;

static bb_status count_team(void *ud, const bb_team *t) { (void)t; (*(int *)ud)++; return BB_OK; }

/* team_list: blocks while the side connection holds a lock on teams. */
static void *hold_connection(void *arg)
{
    holder *h = arg;
    bb_error err;
    bb_call call = { h->request_id, NULL, 0 };
    int n = 0;
    h->st = h->f->ops->team_list(h->f->st, &call, count_team, &n, &err);
    return NULL;
}

static void lock_teams(PGconn *side)
{
    pgfx_exec(side, "BEGIN");
    pgfx_exec(side, "LOCK TABLE teams IN ACCESS EXCLUSIVE MODE");
}

/* Wait (bounded) until `n` plugin queries are blocked on our lock. */
static void wait_blocked(PGconn *side, int n)
{
    char want[16], *v = NULL;
    snprintf(want, sizeof want, "%d", n);
    int64_t end = pgfx_now_ms() + 30000;   /* generous: connecting is slow on a loaded CI machine */
    do {
        free(v);
        /* The side connection sits in the locking transaction, where
         * pg_stat_activity is a snapshot taken once: drop it each time. */
        free(pgfx_scalar(side, "SELECT pg_stat_clear_snapshot()"));
        v = pgfx_scalar(side, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'botboard' "
                              "AND wait_event_type = 'Lock'");
        if (strcmp(v, want) == 0) break;
        pgfx_sleep_ms(10);
    } while (pgfx_now_ms() < end);
    cr_assert_str_eq(v, want, "plugin queries waiting on the lock");
    free(v);
}

Test(pg_pool, exhaustion_gives_unavailable_after_timeout, .timeout = 60)
{
    pgfx f;
    PGconn *side;
    holder h;
    pthread_t th;
    bb_team t;
    bb_error err;
    bb_call call = { "t-exhaust", NULL, 0 };
    int64_t t0, waited;
    pgfx_start_pg(&f);
    pgfx_open(&f, "    pool:\n      size: 1\n      max_overflow: 0\n      timeout_ms: 300\n", NULL);
    side = pgfx_side(&f);
    lock_teams(side);
    h.f = &f;
    h.request_id = "t-holder";
    cr_assert_eq(pthread_create(&th, NULL, hold_connection, &h), 0);
    wait_blocked(side, 1);
    t0 = pgfx_now_ms();
    bb_error_clear(&err);
    cr_expect_eq(f.ops->team_get(f.st, &call, "nobody", &t, &err), BB_UNAVAILABLE, "%s", err.msg);
    waited = pgfx_now_ms() - t0;
    cr_expect_geq(waited, 290, "waited timeout_ms first (%lld ms)", (long long)waited);
    cr_expect_lt(waited, 5000, "then gave up (%lld ms)", (long long)waited);
    cr_expect_not_null(strstr(err.msg, "300 ms"), "%s", err.msg);
    pgfx_exec(side, "COMMIT");
    pthread_join(th, NULL);
    cr_expect_eq(h.st, BB_OK, "the holder finishes once the lock is gone");
    /* And the pool serves again. */
    cr_expect_eq(f.ops->team_get(f.st, &call, "nobody", &t, &err), BB_NOT_FOUND, "%s", err.msg);
    PQfinish(side);
    pgfx_close(&f);
}

Test(pg_pool, overflow_opens_under_load_and_closes_after, .timeout = 60)
{
    pgfx f;
    PGconn *side;
    holder h[3];
    pthread_t th[3];
    bb_team t;
    bb_error err;
    bb_call call = { NULL, NULL, 0 };
    pgfx_start_pg(&f);
    pgfx_open(&f, "    pool:\n      size: 1\n      max_overflow: 2\n      timeout_ms: 200\n", NULL);
    side = pgfx_side(&f);
    lock_teams(side);
    for (int i = 0; i < 3; i++) {
        h[i].f = &f;
        h[i].request_id = "t-overflow";
        cr_assert_eq(pthread_create(&th[i], NULL, hold_connection, &h[i]), 0);
    }
    wait_blocked(side, 3);
    cr_expect_eq(pgfx_metric("botboard_storage_pg_pool_in_use"), 3);
    cr_expect_eq(f.ops->team_get(f.st, &call, "x", &t, &err), BB_UNAVAILABLE, "size + overflow is the cap");
    pgfx_exec(side, "COMMIT");
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(h[i].st, BB_OK);
    }
    cr_expect_eq(pgfx_metric("botboard_storage_pg_pool_in_use"), 0);
    cr_expect_eq(pgfx_metric("botboard_storage_pg_pool_idle"), 1, "overflow connections closed on return");
    cr_expect_geq(pgfx_metric("botboard_storage_pg_connections_closed_total"), 2);
    PQfinish(side);
    pgfx_close(&f);
}

static char *botboard_pids(PGconn *side)
{
    return pgfx_scalar(side, "SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), '') FROM pg_stat_activity "
                             "WHERE application_name = 'botboard'");
}

Test(pg_pool, recycle_replaces_old_connections, .timeout = 60)
{
    pgfx f;
    PGconn *side;
    bb_team t;
    bb_error err;
    bb_call call = { NULL, NULL, 0 };
    char *before, *after = NULL;
    double opened;
    pgfx_start_pg(&f);
    pgfx_open(&f, "    pool:\n      size: 1\n      max_overflow: 0\n      recycle_s: 1\n", NULL);
    side = pgfx_side(&f);
    cr_expect_eq(f.ops->team_get(f.st, &call, "x", &t, &err), BB_NOT_FOUND, "%s", err.msg);
    before = botboard_pids(side);
    cr_assert_str_neq(before, "");
    opened = pgfx_metric("botboard_storage_pg_connections_opened_total");
    /* Still young: reused. */
    cr_expect_eq(f.ops->team_get(f.st, &call, "x", &t, &err), BB_NOT_FOUND, "%s", err.msg);
    cr_expect_eq(pgfx_metric("botboard_storage_pg_connections_opened_total"), opened);
    pgfx_sleep_ms(1100);   /* let the connection pass recycle_s */
    cr_expect_eq(f.ops->team_get(f.st, &call, "x", &t, &err), BB_NOT_FOUND, "%s", err.msg);
    cr_expect_eq(pgfx_metric("botboard_storage_pg_connections_opened_total"), opened + 1);
    for (int64_t end = pgfx_now_ms() + 10000; pgfx_now_ms() < end;) {   /* the old backend exits asynchronously */
        free(after);
        after = botboard_pids(side);
        if (strcmp(after, before) != 0 && !strchr(after, ',')) break;
        pgfx_sleep_ms(10);
    }
    cr_expect_str_neq(after, before, "a new backend serves after recycle_s");
    cr_expect_null(strchr(after, ','), "and the old one is gone: %s", after);
    free(before);
    free(after);
    PQfinish(side);
    pgfx_close(&f);
}

Test(pg_pool, idle_connection_validated_before_use, .timeout = 60)
{
    pgfx f;
    PGconn *side;
    bb_team t;
    bb_error err;
    bb_call call = { NULL, NULL, 0 };
    char *pid;
    pgfx_start_pg(&f);
    pgfx_open(&f, "    pool:\n      size: 1\n      idle_check_s: 0\n", "  retry:\n    max_attempts: 1\n");
    side = pgfx_side(&f);
    cr_expect_eq(f.ops->team_get(f.st, &call, "x", &t, &err), BB_NOT_FOUND, "%s", err.msg);
    pid = botboard_pids(side);
    {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%s)", pid);
        free(pgfx_scalar(side, sql));
    }
    /* With no retries allowed, only validation can save this call. */
    cr_expect_eq(f.ops->team_get(f.st, &call, "x", &t, &err), BB_NOT_FOUND, "%s", err.msg);
    free(pid);
    PQfinish(side);
    pgfx_close(&f);
}

Test(pg_pool, long_held_connection_reported, .timeout = 60)
{
    pgfx f;
    PGconn *side;
    holder h;
    pthread_t th;
    char *log_path, *text = NULL;
    int fd;
    pgfx_start_pg(&f);
    pgfx_open(&f, "    pool:\n      leak_warn_ms: 200\n", NULL);
    log_path = bbt_write_file(f.dir, "plugin.log", "");
    cr_assert_not_null(log_path);
    fd = open(log_path, O_WRONLY | O_APPEND);
    cr_assert_geq(fd, 0);
    bb_log_set_fd(fd);
    side = pgfx_side(&f);
    lock_teams(side);
    h.f = &f;
    h.request_id = "req-leak-42";
    cr_assert_eq(pthread_create(&th, NULL, hold_connection, &h), 0);
    {
        int64_t end = pgfx_now_ms() + 20000;
        while (pgfx_metric("botboard_storage_pg_connection_leaks_total") < 1 && pgfx_now_ms() < end) pgfx_sleep_ms(10);
    }
    cr_expect_eq(pgfx_metric("botboard_storage_pg_connection_leaks_total"), 1);
    for (int64_t end = pgfx_now_ms() + 10000; pgfx_now_ms() < end;) {
        free(text);
        text = bbt_read_file(log_path, NULL);
        if (text && strstr(text, "req-leak-42")) break;
        pgfx_sleep_ms(10);
    }
    cr_assert_not_null(text);
    cr_expect_not_null(strstr(text, "operation team_list"), "%s", text);
    cr_expect_not_null(strstr(text, "request req-leak-42"), "%s", text);
    cr_expect_not_null(strstr(text, "\"level\":\"warn"), "%s", text);
    pgfx_exec(side, "COMMIT");
    pthread_join(th, NULL);
    cr_expect_eq(h.st, BB_OK);
    bb_log_set_fd(2);
    close(fd);
    free(text);
    free(log_path);
    PQfinish(side);
    pgfx_close(&f);
}

Test(pg_pool, late_call_fails_fast_and_keeps_connections, .timeout = 60)
{
    pgfx f;
    bb_team t;
    bb_error err;
    bb_call call = { "t-late", NULL, 0 };
    double closed;
    pgfx_start_pg(&f);
    pgfx_open(&f, NULL, NULL);
    cr_expect_eq(f.ops->team_get(f.st, &call, "x", &t, &err), BB_NOT_FOUND, "%s", err.msg);
    closed = pgfx_metric("botboard_storage_pg_connections_closed_total");
    call.deadline_ms = pgfx_now_ms() - 1;   /* already late */
    cr_expect_eq(f.ops->team_get(f.st, &call, "x", &t, &err), BB_TIMEOUT, "%s", err.msg);
    cr_expect_eq(pgfx_metric("botboard_storage_pg_connections_closed_total"), closed, "no good connection dropped");
    cr_expect_eq(pgfx_metric("botboard_storage_pg_pool_idle"), 1);
    pgfx_close(&f);
}
