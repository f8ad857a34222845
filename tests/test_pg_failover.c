/*
 * tests/test_pg_failover.c — the server goes away and comes back.
 *
 * Several threads write in a loop while PostgreSQL is killed (immediate
 * shutdown) and restarted on the same port.  The instance is never
 * recreated.  Calls that fail report UNAVAILABLE; writes resume once the
 * server is back; every write acknowledged OK is stored exactly once and
 * nothing is stored twice.  Also: a multi-host conninfo whose first host is
 * dead still works.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "pg_fixture.h"

#define WRITERS      4
#define MAX_PER_WRITER 20000

typedef struct writer {
    pgfx          *f;
    int            n;
    atomic_bool   *stop;
    atomic_int    *acked_total;
    atomic_int    *failed_total;
    int            count;
    bb_status      status[MAX_PER_WRITER];
    bb_status      bad_status;          /* first failure that was not UNAVAILABLE */
    char           bad_msg[256];
} writer;

static void writer_id(char *out, size_t len, int w, int i)
{
    snprintf(out, len, "01FAIL%02d%018d", w, i);
}

static void *write_loop(void *arg)
{
    writer *w = arg;
    char id[BB_ID_MAX], content[64];
    for (int i = 0; i < MAX_PER_WRITER && !atomic_load(w->stop); i++) {
        bb_post p, out;
        bb_error err;
        bool replayed = false;
        bb_call call = { "t-failover", NULL, 0 };
        writer_id(id, sizeof id, w->n, i);
        snprintf(content, sizeof content, "content of %s", id);
        pgfx_post(&p, "acme", id, "writer", content);
        bb_error_clear(&err);
        w->status[i] = w->f->ops->post_create(w->f->st, &call, &p, NULL, &out, &replayed, &err);
        bb_post_clear(&out);
        w->count = i + 1;
        if (w->status[i] == BB_OK) atomic_fetch_add(w->acked_total, 1);
        else {
            atomic_fetch_add(w->failed_total, 1);
            if (w->status[i] != BB_UNAVAILABLE && !w->bad_status) {
                w->bad_status = w->status[i];
                snprintf(w->bad_msg, sizeof w->bad_msg, "%s", err.msg);
            }
            pgfx_sleep_ms(5);   /* a client backing off; keeps the loop from spinning while down */
        }
    }
    return NULL;
}

static void wait_for(atomic_int *v, int at_least, int timeout_ms)
{
    int64_t end = pgfx_now_ms() + timeout_ms;
    while (atomic_load(v) < at_least && pgfx_now_ms() < end) pgfx_sleep_ms(5);
    cr_assert_geq(atomic_load(v), at_least, "waited %d ms for %d", timeout_ms, at_least);
}

Test(pg_failover, kill_and_restart_during_writes, .timeout = 180)
{
    pgfx f;
    static writer w[WRITERS];
    pthread_t th[WRITERS];
    atomic_bool stop;
    atomic_int acked, failed;
    int acked_before_restart, n_acked = 0, n_failed = 0;
    char why[4096];
    PGconn *side;
    pgfx_start_pg(&f);
    pgfx_open(&f, "    pool:\n      size: 4\n      timeout_ms: 2000\n",
              "  retry:\n    max_attempts: 3\n    base_ms: 10\n    max_ms: 50\n");
    pgfx_team(&f, "acme");
    atomic_init(&stop, false);
    atomic_init(&acked, 0);
    atomic_init(&failed, 0);
    for (int i = 0; i < WRITERS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].f = &f;
        w[i].n = i;
        w[i].stop = &stop;
        w[i].acked_total = &acked;
        w[i].failed_total = &failed;
        cr_assert_eq(pthread_create(&th[i], NULL, write_loop, &w[i]), 0);
    }
    wait_for(&acked, 200, 30000);
    cr_assert(bbt_pg_stop(&f.pg, true), "immediate shutdown");
    wait_for(&failed, WRITERS, 30000);           /* the writers noticed */
    acked_before_restart = atomic_load(&acked);
    cr_assert(bbt_pg_restart(&f.pg, why, sizeof why), "restart: %s", why);
    wait_for(&acked, acked_before_restart + 200, 60000);   /* recovered, same instance */
    atomic_store(&stop, true);
    for (int i = 0; i < WRITERS; i++) pthread_join(th[i], NULL);

    for (int i = 0; i < WRITERS; i++)
        cr_expect_eq(w[i].bad_status, BB_OK, "writer %d failed with %s, not UNAVAILABLE: %s", i,
                     bb_status_name(w[i].bad_status), w[i].bad_msg);

    /* Every acknowledged write is stored; nothing beyond what was attempted. */
    side = pgfx_side(&f);
    for (int i = 0; i < WRITERS; i++)
        for (int j = 0; j < w[i].count; j++) {
            char id[BB_ID_MAX], sql[160], *v;
            if (w[i].status[j] == BB_OK) n_acked++; else n_failed++;
            if (w[i].status[j] != BB_OK) continue;
            writer_id(id, sizeof id, i, j);
            snprintf(sql, sizeof sql, "SELECT count(*) FROM posts WHERE id = '%s' AND content = 'content of %s'", id, id);
            v = pgfx_scalar(side, sql);
            cr_expect_str_eq(v, "1", "acknowledged post %s stored exactly once", id);
            free(v);
        }
    {
        char *total = pgfx_scalar(side, "SELECT count(*) FROM posts");
        char *distinct = pgfx_scalar(side, "SELECT count(DISTINCT content) FROM posts");
        long stored = strtol(total, NULL, 10);
        cr_expect_str_eq(total, distinct, "no content stored twice");
        cr_expect_geq(stored, n_acked);
        /* A write whose COMMIT's answer was lost may be stored though it failed. */
        cr_expect_leq(stored, n_acked + n_failed);
        free(total);
        free(distinct);
    }
    cr_expect_gt(n_failed, 0);
    cr_expect_gt(pgfx_metric("botboard_storage_pg_connections_failed_total"), 0);
    PQfinish(side);
    pgfx_close(&f);
}

Test(pg_failover, multi_host_with_dead_first_host, .timeout = 60)
{
    pgfx f;
    char conninfo[512], *cfg;
    bb_app *app;
    bb_storage *st;
    const bb_storage_ops *ops;
    bb_team t, got;
    bb_error err;
    bb_call call = { NULL, NULL, 0 };
    int dead = bbt_free_port();
    pgfx_start_pg(&f);
    snprintf(conninfo, sizeof conninfo,
             "host=127.0.0.1,127.0.0.1 port=%d,%d dbname=botboard user=botboard target_session_attrs=read-write",
             dead, f.pg.port);
    cfg = pgfx_write_config(&f, "multi.yaml", conninfo, NULL, NULL);
    app = pgfx_open_with(&f, cfg, true, &st, &ops);
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "multi");
    t.created_ms = 42;
    cr_assert_eq(ops->team_create(st, &call, &t, &err), BB_OK, "%s", err.msg);
    cr_assert_eq(ops->team_get(st, &call, "multi", &got, &err), BB_OK, "%s", err.msg);
    cr_expect_eq(got.created_ms, 42);
    bb_app_close(app);
    free(cfg);
    pgfx_close(&f);
}
