/*
 * tests/test_pg_store.c — storage_postgres specifics against a real server:
 * versioned migrations (status, refusal of a newer schema, a failed migration
 * leaves nothing behind, concurrent migrators), conninfo validation and
 * masking, idempotent creates racing on one key, health and backup.
 * (The backend-neutral behaviour is the contract suite's job.)
 */
#include <pthread.h>

#include "pg_fixture.h"

static bb_status count_migration(void *ud, const bb_migration_info *m)
{
    int *n = ud;
    cr_expect_gt(m->version, 0);
    if (m->applied) n[0]++; else n[1]++;
    return BB_OK;
}

Test(pg_migrate, status_then_apply, .timeout = 60)
{
    pgfx f;
    bb_app *app;
    bb_storage *st;
    const bb_storage_ops *ops;
    bb_error err;
    bb_call call = { "t-migrate", NULL, 0 };
    int n[2] = { 0, 0 }, applied;
    char *cfg;
    PGconn *side;
    pgfx_start_pg(&f);
    cfg = pgfx_write_config(&f, "plain.yaml", f.pg.conninfo, NULL, NULL);
    app = pgfx_open_with(&f, cfg, false, &st, &ops);
    cr_assert_eq(ops->migrate(st, &call, false, count_migration, n, &err), BB_OK, "%s", err.msg);
    cr_expect_eq(n[0], 0);
    cr_expect_gt(n[1], 0, "every migration is pending on an empty database");
    side = pgfx_side(&f);
    {
        char *v = pgfx_scalar(side, "SELECT to_regclass('posts') IS NULL");
        cr_expect_str_eq(v, "t", "status must not create the schema");
        free(v);
    }
    n[0] = n[1] = 0;
    cr_assert_eq(ops->migrate(st, &call, true, count_migration, n, &err), BB_OK, "%s", err.msg);
    cr_expect_gt(n[0], 0);
    cr_expect_eq(n[1], 0);
    applied = n[0];
    n[0] = n[1] = 0;
    cr_assert_eq(ops->migrate(st, &call, true, count_migration, n, &err), BB_OK, "applying twice is a no-op");
    cr_expect_eq(n[1], 0);
    {
        char *v = pgfx_scalar(side, "SELECT count(*) FROM schema_migrations"), want[16];
        snprintf(want, sizeof want, "%d", applied);
        cr_expect_str_eq(v, want, "one row per migration");
        free(v);
    }
    PQfinish(side);
    bb_app_close(app);
    free(cfg);
    pgfx_close(&f);
}

Test(pg_migrate, newer_database_refused_naming_both_versions, .timeout = 60)
{
    pgfx f;
    bb_error err;
    bb_call call = { NULL, NULL, 0 };
    PGconn *side;
    pgfx_start_pg(&f);
    pgfx_open(&f, NULL, NULL);
    side = pgfx_side(&f);
    pgfx_exec(side, "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (999, 'from the future', 1)");
    bb_error_clear(&err);
    cr_assert_eq(f.ops->migrate(f.st, &call, true, NULL, NULL, &err), BB_INVALID);
    cr_expect_not_null(strstr(err.msg, "999"), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "(2)"), "names the plugin's version too: %s", err.msg);
    PQfinish(side);
    pgfx_close(&f);
}

Test(pg_migrate, failed_migration_leaves_schema_unchanged, .timeout = 60)
{
    pgfx f;
    bb_app *app;
    bb_storage *st;
    const bb_storage_ops *ops;
    bb_error err;
    bb_call call = { NULL, NULL, 0 };
    char *cfg, *v;
    PGconn *side;
    pgfx_start_pg(&f);
    side = pgfx_side(&f);
    /* A table in the way: migration 1 creates teams and api_keys first, then fails on posts. */
    pgfx_exec(side, "CREATE TABLE posts (x int)");
    cfg = pgfx_write_config(&f, "plain.yaml", f.pg.conninfo, NULL, NULL);
    app = pgfx_open_with(&f, cfg, false, &st, &ops);
    bb_error_clear(&err);
    cr_assert_neq(ops->migrate(st, &call, true, NULL, NULL, &err), BB_OK);
    cr_expect_not_null(strstr(err.msg, "schema left unchanged"), "%s", err.msg);
    v = pgfx_scalar(side, "SELECT to_regclass('teams') IS NULL AND to_regclass('api_keys') IS NULL");
    cr_expect_str_eq(v, "t", "the tables created before the failure were rolled back");
    free(v);
    v = pgfx_scalar(side, "SELECT count(*) FROM schema_migrations");
    cr_expect_str_eq(v, "0");
    free(v);
    /* Fix the cause and it applies. */
    pgfx_exec(side, "DROP TABLE posts");
    cr_assert_eq(ops->migrate(st, &call, true, NULL, NULL, &err), BB_OK, "%s", err.msg);
    PQfinish(side);
    bb_app_close(app);
    free(cfg);
    pgfx_close(&f);
}

typedef struct migrator { const char *cfg; bb_status st; char msg[256]; } migrator;

static void *run_migrator(void *arg)
{
    migrator *m = arg;
    bb_error err;
    bb_app *app;
    bb_error_clear(&err);
    app = bb_app_open(m->cfg, BB_APP_STORAGE | BB_APP_MIGRATE, &err);
    m->st = app ? BB_OK : (err.code ? err.code : BB_INTERNAL);
    snprintf(m->msg, sizeof m->msg, "%s", err.msg);
    bb_app_close(app);
    return NULL;
}

Test(pg_migrate, concurrent_migrators_are_serialised, .timeout = 90)
{
    pgfx f;
    migrator m[4];
    pthread_t th[4];
    char *cfg, *v;
    PGconn *side;
    pgfx_start_pg(&f);
    cfg = pgfx_write_config(&f, "plain.yaml", f.pg.conninfo, NULL, NULL);
    for (int i = 0; i < 4; i++) {
        m[i].cfg = cfg;
        cr_assert_eq(pthread_create(&th[i], NULL, run_migrator, &m[i]), 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) cr_expect_eq(m[i].st, BB_OK, "migrator %d: %s", i, m[i].msg);
    side = pgfx_side(&f);
    v = pgfx_scalar(side, "SELECT count(*) = count(DISTINCT version) AND count(*) > 0 FROM schema_migrations");
    cr_expect_str_eq(v, "t");
    free(v);
    PQfinish(side);
    free(cfg);
    pgfx_close(&f);
}

Test(pg_config, bad_conninfo_reported_with_position, .timeout = 30)
{
    char *dir = bbt_tempdir("pgcfg"), *cfg;
    bb_error err;
    bb_app *app;
    cr_assert_not_null(dir);
    cfg = bbt_write_file(dir, "botboard.yaml",
                         "storage:\n  backend: postgres\n  postgres:\n    conninfo: \"host=127.0.0.1 port='5432\"\n");
    cr_assert_not_null(cfg);
    bb_error_clear(&err);
    app = bb_app_open(cfg, BB_APP_STORAGE, &err);
    cr_assert_null(app);
    cr_expect_not_null(strstr(err.msg, "botboard.yaml:4:"), "file:line:col of the conninfo: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, "invalid conninfo"), "%s", err.msg);
    free(cfg);
    bbt_rmtree(dir);
    free(dir);
}

Test(pg_config, conninfo_required, .timeout = 30)
{
    char *dir = bbt_tempdir("pgcfg"), *cfg;
    bb_error err;
    bb_app *app;
    cr_assert_not_null(dir);
    cfg = bbt_write_file(dir, "botboard.yaml", "storage:\n  backend: postgres\n");
    cr_assert_not_null(cfg);
    bb_error_clear(&err);
    app = bb_app_open(cfg, BB_APP_STORAGE, &err);
    cr_assert_null(app);
    cr_expect_not_null(strstr(err.msg, "conninfo"), "%s", err.msg);
    free(cfg);
    bbt_rmtree(dir);
    free(dir);
}

Test(pg_config, password_masked_in_logs, .timeout = 30)
{
    char *dir = bbt_tempdir("pgcfg"), *cfg;
    char masked[512];
    bb_error err;
    bb_app *app;
    cr_assert_not_null(dir);
    /* Nothing listens on port 1: create() does not connect, so this opens. */
    cfg = bbt_write_file(dir, "botboard.yaml",
                         "storage:\n  backend: postgres\n  postgres:\n"
                         "    conninfo: \"host=127.0.0.1 port=1 dbname=x password=s3cr3t-pw\"\n");
    cr_assert_not_null(cfg);
    bb_error_clear(&err);
    app = bb_app_open(cfg, BB_APP_STORAGE, &err);
    cr_assert_not_null(app, "%s", err.msg);
    bb_log_mask("connecting with s3cr3t-pw now", masked, sizeof masked);
    cr_expect_null(strstr(masked, "s3cr3t-pw"), "the password is a registered secret: %s", masked);
    bb_app_close(app);
    free(cfg);
    bbt_rmtree(dir);
    free(dir);
}

Test(pg_health, round_trip_and_detail, .timeout = 60)
{
    pgfx f;
    char detail[128];
    bb_error err;
    bb_call call = { NULL, NULL, 0 };
    pgfx_start_pg(&f);
    pgfx_open(&f, "    pool:\n      size: 7\n", NULL);
    call.deadline_ms = pgfx_now_ms() + 2000;
    cr_assert_eq(f.ops->health(f.st, &call, detail, sizeof detail, &err), BB_OK, "%s", err.msg);
    cr_expect_str_eq(detail, "pool 0/7 in use");
    cr_expect_eq(f.ops->backup(f.st, &call, "/tmp/x", &err), BB_INVALID);
    cr_expect_not_null(strstr(err.msg, "pg_dump"), "%s", err.msg);
    cr_assert(bbt_pg_stop(&f.pg, true));
    call.deadline_ms = pgfx_now_ms() + 2000;
    {
        int64_t t0 = pgfx_now_ms();
        cr_expect_neq(f.ops->health(f.st, &call, detail, sizeof detail, &err), BB_OK);
        cr_expect_lt(pgfx_now_ms() - t0, 2500, "bounded by the deadline");
    }
    cr_expect_not_null(strstr(detail, "unreachable"), "%s", detail);
    pgfx_close(&f);
}

/* ---- idempotency: 20 racing creates with one key make one post ----------- */

typedef struct racer {
    pgfx *f;
    int   n;
    bb_status st;
    bool  replayed;
    char  got_id[BB_ID_MAX];
} racer;

static void *race_create(void *arg)
{
    racer *r = arg;
    bb_post p, out;
    bb_idempotency idem;
    bb_error err;
    bb_call call = { "t-race", NULL, 0 };
    char id[BB_ID_MAX];
    snprintf(id, sizeof id, "01RACE%020d", r->n);
    pgfx_post(&p, "acme", id, "alice", "same body");
    memset(&idem, 0, sizeof idem);
    idem.key = "one-key";
    memset(idem.request_hash, 7, sizeof idem.request_hash);
    idem.expires_ms = (int64_t)time(NULL) * 1000 + 3600000;
    bb_error_clear(&err);
    r->st = r->f->ops->post_create(r->f->st, &call, &p, &idem, &out, &r->replayed, &err);
    snprintf(r->got_id, sizeof r->got_id, "%s", out.id);
    bb_post_clear(&out);
    return NULL;
}

Test(pg_idempotency, concurrent_same_key_creates_one_post, .timeout = 60)
{
    pgfx f;
    racer r[20];
    pthread_t th[20];
    int created = 0;
    PGconn *side;
    char *v;
    pgfx_start_pg(&f);
    pgfx_open(&f, NULL, NULL);
    pgfx_team(&f, "acme");
    for (int i = 0; i < 20; i++) {
        r[i].f = &f;
        r[i].n = i;
        cr_assert_eq(pthread_create(&th[i], NULL, race_create, &r[i]), 0);
    }
    for (int i = 0; i < 20; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 20; i++) {
        cr_expect_eq(r[i].st, BB_OK);
        if (!r[i].replayed) created++;
        cr_expect_str_eq(r[i].got_id, r[0].got_id, "every caller gets the one post");
    }
    cr_expect_eq(created, 1);
    side = pgfx_side(&f);
    v = pgfx_scalar(side, "SELECT count(*) FROM posts");
    cr_expect_str_eq(v, "1");
    free(v);
    PQfinish(side);
    pgfx_close(&f);
}

Test(pg_idempotency, other_body_conflicts, .timeout = 60)
{
    pgfx f;
    bb_post p, out;
    bb_idempotency idem;
    bb_error err;
    bool replayed = false;
    bb_call call = { NULL, NULL, 0 };
    pgfx_start_pg(&f);
    pgfx_open(&f, NULL, NULL);
    pgfx_team(&f, "acme");
    memset(&idem, 0, sizeof idem);
    idem.key = "k";
    idem.expires_ms = (int64_t)time(NULL) * 1000 + 3600000;
    pgfx_post(&p, "acme", "01AAAAAAAAAAAAAAAAAAAAAAAA", "bob", "first");
    cr_assert_eq(f.ops->post_create(f.st, &call, &p, &idem, &out, &replayed, &err), BB_OK, "%s", err.msg);
    bb_post_clear(&out);
    idem.request_hash[0] = 1;
    pgfx_post(&p, "acme", "01AAAAAAAAAAAAAAAAAAAAAAAB", "bob", "second");
    cr_expect_eq(f.ops->post_create(f.st, &call, &p, &idem, &out, &replayed, &err), BB_CONFLICT);
    bb_post_clear(&out);
    /* Expired: the key may be used again. */
    idem.expires_ms = 1;
    pgfx_post(&p, "acme", "01AAAAAAAAAAAAAAAAAAAAAAAC", "bob", "third");
    {
        PGconn *side = pgfx_side(&f);
        pgfx_exec(side, "UPDATE idempotency SET expires_ms = 1");
        PQfinish(side);
    }
    cr_expect_eq(f.ops->post_create(f.st, &call, &p, &idem, &out, &replayed, &err), BB_OK, "%s", err.msg);
    cr_expect_not(replayed);
    cr_expect_str_eq(out.id, "01AAAAAAAAAAAAAAAAAAAAAAAC");
    bb_post_clear(&out);
    pgfx_close(&f);
}
