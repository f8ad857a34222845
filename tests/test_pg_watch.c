/*
 * tests/test_pg_watch.c — cross-instance change events over LISTEN/NOTIFY,
 * and the SQLite -> PostgreSQL -> export round trip through the real CLI.
 */
#include <pthread.h>

#include "pg_fixture.h"

typedef struct seen {
    pthread_mutex_t mu;
    int             n;
    char            team[BB_TEAM_MAX], id[BB_ID_MAX], thread[BB_ID_MAX], author[BB_AUTHOR_MAX * 4];
} seen;

static void on_post(void *ud, const char *team, const char *post_id, const char *thread_id, const char *author)
{
    seen *s = ud;
    pthread_mutex_lock(&s->mu);
    s->n++;
    snprintf(s->team, sizeof s->team, "%s", team);
    snprintf(s->id, sizeof s->id, "%s", post_id);
    snprintf(s->thread, sizeof s->thread, "%s", thread_id);
    snprintf(s->author, sizeof s->author, "%s", author);
    pthread_mutex_unlock(&s->mu);
}

static int seen_count(seen *s)
{
    int n;
    pthread_mutex_lock(&s->mu);
    n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static bool wait_seen(seen *s, int n, int timeout_ms)
{
    int64_t end = pgfx_now_ms() + timeout_ms;
    while (seen_count(s) < n && pgfx_now_ms() < end) pgfx_sleep_ms(5);
    return seen_count(s) >= n;
}

static void create(const bb_storage_ops *ops, bb_storage *st, const char *id, const char *parent, const char *author)
{
    bb_post p, out;
    bb_error err;
    bool replayed;
    bb_call call = { NULL, NULL, 0 };
    pgfx_post(&p, "acme", id, author, "hello @everyone");
    if (parent) snprintf(p.parent_id, sizeof p.parent_id, "%s", parent);
    cr_assert_eq(ops->post_create(st, &call, &p, NULL, &out, &replayed, &err), BB_OK, "%s", err.msg);
    bb_post_clear(&out);
}

/* The listener is up once its backend is LISTENing (polled, at most 20 s). */
static void wait_listening(PGconn *side)
{
    for (int64_t end = pgfx_now_ms() + 20000; pgfx_now_ms() < end;) {
        char *v = pgfx_scalar(side, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'botboard' "
                                    "AND query LIKE 'LISTEN%'");
        bool up = strcmp(v, "1") == 0;
        free(v);
        if (up) break;
        pgfx_sleep_ms(10);
    }
}

Test(pg_watch, post_from_another_instance_is_delivered, .timeout = 60)
{
    pgfx f;
    seen s;
    bb_app *other;
    bb_storage *ost;
    const bb_storage_ops *oops;
    bb_error err;
    PGconn *side;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    pgfx_start_pg(&f);
    pgfx_open(&f, NULL, NULL);
    pgfx_team(&f, "acme");
    cr_assert_not_null(f.ops->watch);
    cr_assert_eq(f.ops->watch(f.st, on_post, &s, &err), BB_OK, "%s", err.msg);
    cr_expect_eq(f.ops->watch(f.st, on_post, &s, &err), BB_INVALID, "one watcher per instance");
    side = pgfx_side(&f);
    wait_listening(side);
    other = pgfx_open_with(&f, f.cfg_path, false, &ost, &oops);
    create(oops, ost, "01WATCH0000000000000000001", NULL, "bob \xc3\xa9");
    cr_assert(wait_seen(&s, 1, 15000), "delivered within 15 s");
    cr_expect_str_eq(s.team, "acme");
    cr_expect_str_eq(s.id, "01WATCH0000000000000000001");
    cr_expect_str_eq(s.thread, "01WATCH0000000000000000001");
    cr_expect_str_eq(s.author, "bob \xc3\xa9");
    create(oops, ost, "01WATCH0000000000000000002", "01WATCH0000000000000000001", "carol");
    cr_assert(wait_seen(&s, 2, 15000));
    cr_expect_str_eq(s.thread, "01WATCH0000000000000000001", "a reply names its thread");
    /* Our own posts are not echoed back: create one, then one from the other
     * instance, and the next event must be the other's. */
    create(f.ops, f.st, "01WATCH0000000000000000003", NULL, "self");
    create(oops, ost, "01WATCH0000000000000000004", NULL, "dave");
    cr_assert(wait_seen(&s, 3, 15000));
    cr_expect_str_eq(s.id, "01WATCH0000000000000000004");
    cr_expect_eq(seen_count(&s), 3);
    bb_app_close(other);
    PQfinish(side);
    pgfx_close(&f);   /* destroy() stops and joins the listener */
    pthread_mutex_destroy(&s.mu);
}

Test(pg_watch, listener_reconnects_after_restart, .timeout = 90)
{
    pgfx f;
    seen s;
    bb_app *other;
    bb_storage *ost;
    const bb_storage_ops *oops;
    bb_error err;
    char why[4096];
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    pgfx_start_pg(&f);
    pgfx_open(&f, NULL, NULL);
    pgfx_team(&f, "acme");
    cr_assert_eq(f.ops->watch(f.st, on_post, &s, &err), BB_OK, "%s", err.msg);
    cr_assert(bbt_pg_stop(&f.pg, true));
    cr_assert(bbt_pg_restart(&f.pg, why, sizeof why), "%s", why);
    other = pgfx_open_with(&f, f.cfg_path, false, &ost, &oops);
    /* Keep posting until the listener is back (it reconnects with backoff). */
    for (int i = 0; i < 200 && seen_count(&s) == 0; i++) {
        char id[BB_ID_MAX];
        snprintf(id, sizeof id, "01RECON%019d", i);
        create(oops, ost, id, NULL, "erin");
        wait_seen(&s, 1, 50);
    }
    cr_expect_geq(seen_count(&s), 1, "events flow again after the server came back");
    bb_app_close(other);
    pgfx_close(&f);
    pthread_mutex_destroy(&s.mu);
}

/* The post-page cache (core/storage_cache.c) rides on the same watch: a post
 * from another instance makes this instance's cached pages stale when its
 * NOTIFY arrives, not cache.ttl_ms later (set to 10 minutes here so only
 * the notification can explain a fresh read). */
Test(pg_watch, notification_invalidates_the_post_cache, .timeout = 60)
{
    pgfx f;
    seen s;
    bb_app *other;
    bb_storage *ost;
    const bb_storage_ops *oops;
    bb_error err;
    PGconn *side;
    char yaml[2048];
    bb_call call = { NULL, NULL, 0 };
    bb_post_query q = { .team = "acme", .limit = 10 };
    bb_post_page pg = { 0 };
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    pgfx_start_pg(&f);
    snprintf(yaml, sizeof yaml, "storage:\n  backend: postgres\n  postgres:\n    conninfo: \"%s\"\n"
             "cache:\n  ttl_ms: 600000\nlogging:\n  level: warn\n", f.pg.conninfo);
    f.cfg_path = bbt_write_file(f.dir, "botboard.yaml", yaml);
    cr_assert_not_null(f.cfg_path);
    f.app = pgfx_open_with(&f, f.cfg_path, true, &f.st, &f.ops);
    cr_assert_not_null(bb_app_storage_cache(f.app), "the cache is in front");
    pgfx_team(&f, "acme");
    cr_assert_eq(f.ops->watch(f.st, on_post, &s, &err), BB_OK, "%s", err.msg);
    side = pgfx_side(&f);
    wait_listening(side);
    cr_assert_eq(f.ops->post_list(f.st, &call, &q, &pg, &err), BB_OK, "%s", err.msg);
    cr_assert_eq(pg.total, 0);
    bb_post_page_clear(&pg);
    other = pgfx_open_with(&f, f.cfg_path, false, &ost, &oops);
    create(oops, ost, "01WATCHCACHE00000000000001", NULL, "bob");
    cr_assert(wait_seen(&s, 1, 15000), "delivered within 15 s");
    /* The callback runs after the bump, so this read cannot be the cached one. */
    cr_assert_eq(f.ops->post_list(f.st, &call, &q, &pg, &err), BB_OK, "%s", err.msg);
    cr_assert_eq(pg.total, 1, "the other instance's post is on this instance's next read");
    cr_assert_str_eq(pg.posts[0].id, "01WATCHCACHE00000000000001");
    bb_post_page_clear(&pg);
    bb_app_close(other);
    PQfinish(side);
    pgfx_close(&f);
    pthread_mutex_destroy(&s.mu);
}

/* ---- SQLite export -> PostgreSQL import -> export: identical ------------- */

Test(pg_export, sqlite_to_postgres_round_trip_is_identical, .timeout = 120)
{
    pgfx f;
    char *sq_cfg, *pg_cfg, *out1 = NULL, *out2 = NULL, *errtxt = NULL, yaml[1024];
    const char *export_args[] = { "export", NULL };
    const char *import_args[] = { "import", NULL };
    bb_app *app;
    bb_storage *st;
    const bb_storage_ops *ops;
    bb_error err;
    bb_call call = { NULL, NULL, 0 };
    int rc;
    pgfx_start_pg(&f);
    snprintf(yaml, sizeof yaml, "storage:\n  backend: sqlite\n  sqlite:\n    path: \"%s/src.db\"\nlogging:\n  level: warn\n",
             f.dir);
    sq_cfg = bbt_write_file(f.dir, "sqlite.yaml", yaml);
    cr_assert_not_null(sq_cfg);
    /* A store with every kind of record: teams, keys (one revoked), posts with
     * unicode tags, replies, a deleted post, identical timestamps. */
    app = pgfx_open_with(&f, sq_cfg, true, &st, &ops);
    {
        bb_team t = { "acme", 1700000000000 }, t2 = { "zeta", 1700000000001 };
        bb_api_key k;
        cr_assert_eq(ops->team_create(st, &call, &t, &err), BB_OK, "%s", err.msg);
        cr_assert_eq(ops->team_create(st, &call, &t2, &err), BB_OK, "%s", err.msg);
        memset(&k, 0, sizeof k);
        snprintf(k.id, sizeof k.id, "key1");
        snprintf(k.team, sizeof k.team, "acme");
        snprintf(k.prefix, sizeof k.prefix, "bb_abc");
        snprintf(k.label, sizeof k.label, "ci \"label\"");
        memset(k.hash, 0xab, sizeof k.hash);
        k.created_ms = 1700000000100;
        cr_assert_eq(ops->key_create(st, &call, &k, &err), BB_OK, "%s", err.msg);
        snprintf(k.id, sizeof k.id, "key2");
        memset(k.hash, 0xcd, sizeof k.hash);
        cr_assert_eq(ops->key_create(st, &call, &k, &err), BB_OK, "%s", err.msg);
        cr_assert_eq(ops->key_revoke(st, &call, "key2", 1700000000200, &err), BB_OK, "%s", err.msg);
    }
    for (int i = 0; i < 30; i++) {
        bb_post p, out;
        bool replayed;
        char id[BB_ID_MAX], content[64];
        char *tags[] = { "caf\xc3\xa9", "\xe2\x9c\x93 ok", "quote\"back\\slash" };
        snprintf(id, sizeof id, "01EXP%021d", i);
        snprintf(content, sizeof content, "post %d \xf0\x9f\x98\x80 with \"quotes\"\nand a newline", i);
        pgfx_post(&p, i % 7 == 6 ? "zeta" : "acme", id, i % 2 ? "alice" : "bob", content);
        p.created_ms = 1700000001000 + (i / 3) * 1000;   /* triples share a timestamp */
        p.tags = tags;
        p.n_tags = (size_t)(i % 4);
        if (i % 5 == 4 && i % 7 != 6) snprintf(p.parent_id, sizeof p.parent_id, "01EXP%021d", 0);
        cr_assert_eq(ops->post_create(st, &call, &p, NULL, &out, &replayed, &err), BB_OK, "%s", err.msg);
        bb_post_clear(&out);
    }
    cr_assert_eq(ops->post_delete(st, &call, "acme", "01EXP000000000000000000003", 1700000099000, &err), BB_OK, "%s",
                 err.msg);
    bb_app_close(app);

    pg_cfg = pgfx_write_config(&f, "pg.yaml", f.pg.conninfo, NULL, NULL);
    rc = bbt_botboard_cli(sq_cfg, export_args, &out1, &errtxt);
    cr_assert_eq(rc, 0, "export from sqlite: %s", errtxt ? errtxt : "");
    free(errtxt);
    errtxt = NULL;
    cr_assert_not_null(out1);
    cr_assert_not_null(strstr(out1, "01EXP000000000000000000003"));
    rc = bbt_botboard_cli_input(pg_cfg, import_args, out1, strlen(out1), NULL, &errtxt);
    cr_assert_eq(rc, 0, "import into postgres: %s", errtxt ? errtxt : "");
    free(errtxt);
    errtxt = NULL;
    rc = bbt_botboard_cli(pg_cfg, export_args, &out2, &errtxt);
    cr_assert_eq(rc, 0, "export from postgres: %s", errtxt ? errtxt : "");
    cr_assert_not_null(out2);
    cr_expect_eq(strlen(out1), strlen(out2));
    cr_expect_str_eq(out2, out1, "byte-identical after the round trip");
    /* A second import into the same database conflicts and changes nothing. */
    free(errtxt);
    errtxt = NULL;
    rc = bbt_botboard_cli_input(pg_cfg, import_args, out1, strlen(out1), NULL, &errtxt);
    cr_expect_neq(rc, 0, "importing the same records twice is refused");
    {
        PGconn *side = pgfx_side(&f);
        char *v = pgfx_scalar(side, "SELECT count(*) FROM posts");
        cr_expect_str_eq(v, "30");
        free(v);
        PQfinish(side);
    }
    free(out1);
    free(out2);
    free(errtxt);
    free(sq_cfg);
    free(pg_cfg);
    pgfx_close(&f);
}
