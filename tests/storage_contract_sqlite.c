/*
 * tests/storage_contract_sqlite.c — the contract suite's SQLite hooks, plus
 * what only SQLite has: the online backup of a live database, refusing a
 * database from a newer botboard, and the BUSY retry path.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bbtest.h"
#include "host.h"
#include "storage_contract.h"

const char ct_default_backend[] = "sqlite";
const char ct_default_storage_yaml[] =
    "storage:\n"
    "  backend: sqlite\n"
    "  sqlite:\n"
    "    path: \"{{DIR}}/contract.db\"\n";

bool ct_backend_fresh(char *conninfo, size_t len, char *why, size_t why_len)
{
    (void)why; (void)why_len;
    if (len) conninfo[0] = '\0';   /* the fresh temp dir is the fresh database */
    return true;
}

#define OK(expr) do { bb_error e_; bb_error_clear(&e_); bb_status s_ = (expr); \
    cr_assert_eq(s_, BB_OK, "%s -> %s: %s", #expr, bb_status_name(s_), e_.msg); } while (0)

static char *db_path(const ct *t)
{
    char *p;
    cr_assert(asprintf(&p, "%s/contract.db", t->dir) > 0);
    return p;
}

static int64_t scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* ---- backup ------------------------------------------------------------------- */

typedef struct busy_writer { ct *t; volatile int stop; int written, failed; } busy_writer;

static void *keep_writing(void *ud)
{
    busy_writer *w = ud;
    for (int i = 0; i < 20000 && !w->stop; i++) {
        bb_error err;
        if (ct_post(w->t, "alpha", "writer", "during backup", NULL, NULL, 2000000 + i, NULL, &err) == BB_OK) w->written++;
        else w->failed++;
    }
    return NULL;
}

Test(sqlite, backup_of_a_live_database_is_complete_and_consistent, .timeout = 120)
{
    ct t;
    busy_writer w = { &t, 0, 0, 0 };
    pthread_t th;
    sqlite3 *db;
    char *bpath, *cfg, *yaml;
    int64_t rows, counted;
    bb_app *copy;
    bb_error err;
    ct_open(&t);
    ct_team(&t, "alpha");
    for (int i = 0; i < 500; i++) {
        bb_error e;
        cr_assert_eq(ct_post(&t, "alpha", "before", "committed before the backup", NULL, NULL, 1000 + i, NULL, &e), BB_OK);
    }
    cr_assert(asprintf(&bpath, "%s/backup.db", t.dir) > 0);
    cr_assert_eq(pthread_create(&th, NULL, keep_writing, &w), 0);
    while (w.written < 50 && !w.failed) { struct timespec ts = { 0, 1000000 }; nanosleep(&ts, NULL); }  /* writer is live */
    OK(t.ops->backup(t.st, &t.call, bpath, &e_));
    w.stop = 1;
    pthread_join(th, NULL);
    cr_assert_eq(w.failed, 0, "writes during the backup failed");

    cr_assert_eq(sqlite3_open_v2(bpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    {
        sqlite3_stmt *st;
        cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok", "backup passes integrity_check");
        sqlite3_finalize(st);
    }
    rows = scalar(db, "SELECT count(*) FROM posts");
    counted = scalar(db, "SELECT n FROM post_counts WHERE team = 'alpha' AND dim = 0");
    cr_assert_geq(rows, 550, "every post committed before the backup is in it (%lld)", (long long)rows);
    cr_assert_leq(rows, 500 + w.written);
    cr_assert_eq(rows, counted, "rows and counters come from one snapshot");
    cr_assert_eq(scalar(db, "SELECT count(*) FROM posts WHERE author = 'before'"), 500);
    sqlite3_close(db);

    /* The copy is a working botboard database on its own. */
    cr_assert(asprintf(&yaml, "logging:\n  level: warn\nstorage:\n  backend: sqlite\n  sqlite:\n    path: \"%s\"\n", bpath) > 0);
    cfg = bbt_write_file(t.dir, "copy.yaml", yaml);
    copy = bb_app_open(cfg, BB_APP_STORAGE | BB_APP_MIGRATE, &err);
    cr_assert(copy, "open the backup: %s", err.msg);
    {
        bb_storage *st;
        const bb_storage_ops *ops = bb_app_storage(copy, &st);
        bb_post_query q = { .team = "alpha", .limit = 5 };
        bb_post_page pg;
        OK(ops->post_list(st, &t.call, &q, &pg, &e_));
        cr_assert_eq(pg.total, rows);
        cr_assert_eq(pg.n, 5);
        bb_post_page_clear(&pg);
    }
    bb_app_close(copy);
    free(cfg); free(yaml); free(bpath);
    ct_close(&t);
}

Test(sqlite, backup_to_an_unwritable_place_fails_cleanly, .timeout = 30)
{
    ct t;
    bb_error err;
    ct_open(&t);
    bb_error_clear(&err);
    cr_assert_neq(t.ops->backup(t.st, &t.call, "/nonexistent-dir/x/backup.db", &err), BB_OK);
    cr_assert(strstr(err.msg, "/nonexistent-dir/x/backup.db"), "message names the file: %s", err.msg);
    ct_close(&t);
}

/* ---- schema versions ----------------------------------------------------------- */

Test(sqlite, database_with_a_newer_schema_is_refused, .timeout = 30)
{
    ct t;
    sqlite3 *db;
    char *path;
    bb_error err;
    ct_open(&t);
    ct_close_app(&t);
    path = db_path(&t);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "INSERT INTO schema_migrations(version, name, applied_ms) VALUES (99, 'from the future', 1)",
                              NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    bb_error_clear(&err);
    cr_assert_null(ct_reopen(&t, BB_APP_STORAGE | BB_APP_MIGRATE, &err), "a newer database opened");
    cr_assert(strstr(err.msg, "99") && strstr(err.msg, "newer"), "message names the versions: %s", err.msg);
    cr_assert(strstr(err.msg, "(4)"), "and the plugin's own version: %s", err.msg);
    bb_error_clear(&err);
    cr_assert_null(ct_reopen(&t, BB_APP_STORAGE, &err), "refused without migrating too");
    cr_assert_eq(err.code, BB_INVALID);
    free(path);
    ct_close(&t);
}

Test(sqlite, failed_migration_leaves_schema_unchanged, .timeout = 30)
{
    ct t;
    sqlite3 *db;
    char *path;
    bb_error err;
    ct_open(&t);
    ct_close_app(&t);
    /* A fresh database where migration 3's table already exists: 1 and 2 apply, 3 fails. */
    path = db_path(&t);
    remove(path);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "CREATE TABLE idempotency (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    bb_error_clear(&err);
    cr_assert_null(ct_reopen(&t, BB_APP_STORAGE | BB_APP_MIGRATE, &err));
    cr_assert(strstr(err.msg, "migration 3"), "names the failing migration: %s", err.msg);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(scalar(db, "SELECT max(version) FROM schema_migrations"), 2, "1 and 2 stay applied");
    cr_assert_eq(scalar(db, "SELECT count(*) FROM sqlite_master WHERE name = 'idempotency_expiry'"), 0,
                 "nothing of migration 3 remains");
    sqlite3_close(db);
    free(path);
    ct_close(&t);
}

/* ---- BUSY from another process's connection ------------------------------------- */

typedef struct lock_holder { sqlite3 *db; int hold_ms; } lock_holder;

static sqlite3 *hold_write_lock(const ct *t)
{
    sqlite3 *db;
    char *path = db_path(t);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    free(path);
    return db;
}

static void *release_later(void *ud)
{
    lock_holder *h = ud;
    struct timespec ts = { h->hold_ms / 1000, (h->hold_ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);   /* how long the other process keeps its lock: the point of the test */
    sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
    return NULL;
}

static const char busy_config[] =
    "storage:\n"
    "  retry:\n"
    "    max_attempts: 20\n"
    "    base_ms: 10\n"
    "    max_ms: 50\n"
    "  sqlite:\n"
    "    busy_timeout_ms: 0\n";

Test(sqlite, busy_database_is_retried_and_counted, .timeout = 60)
{
    ct t;
    lock_holder h;
    pthread_t th;
    int64_t t0, waited;
    char id[BB_ID_MAX];
    bb_error err;
    ct_open_with(&t, busy_config);
    ct_team(&t, "alpha");
    h.db = hold_write_lock(&t);
    h.hold_ms = 150;
    cr_assert_eq(pthread_create(&th, NULL, release_later, &h), 0);
    t0 = bb_now_ms();
    cr_assert_eq(ct_post(&t, "alpha", "alice", "waits for the lock", NULL, NULL, 1, id, &err), BB_OK,
                 "retried until the lock went: %s", err.msg);
    waited = bb_now_ms() - t0;
    pthread_join(th, NULL);
    sqlite3_close(h.db);
    cr_assert_geq(waited, 100, "the write really waited for the other connection (%lld ms)", (long long)waited);
    cr_assert_gt(ct_metric_sum("botboard_storage_retries_total", "op=\"post_create\"", "backend=\"sqlite\""), 0,
                 "retries are counted");
    cr_assert_eq(ct_metric_sum("botboard_storage_retry_give_ups_total", "op=\"post_create\"", NULL), 0);
    {
        bb_post got;
        OK(t.ops->post_get(t.st, &t.call, "alpha", id, &got, &e_));
        bb_post_clear(&got);
    }
    ct_close(&t);
}

Test(sqlite, busy_database_gives_up_after_max_attempts, .timeout = 60)
{
    ct t;
    sqlite3 *db;
    bb_error err;
    ct_open_with(&t, "storage:\n  retry:\n    max_attempts: 3\n    base_ms: 5\n    max_ms: 10\n"
                     "  sqlite:\n    busy_timeout_ms: 0\n");
    ct_team(&t, "alpha");
    db = hold_write_lock(&t);
    cr_assert_eq(ct_post(&t, "alpha", "alice", "never", NULL, NULL, 1, NULL, &err), BB_UNAVAILABLE);
    cr_assert(strstr(err.msg, "busy"), "says why: %s", err.msg);
    cr_assert_eq(ct_metric_sum("botboard_storage_retry_give_ups_total", "op=\"post_create\"", NULL), 1);
    cr_assert_eq(ct_metric_sum("botboard_storage_retries_total", "op=\"post_create\"", NULL), 2,
                 "3 attempts = 2 retries");
    cr_assert_geq(ct_metric_sum("botboard_storage_errors_total", "code=\"UNAVAILABLE\"", "op=\"post_create\""), 1);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    cr_assert_eq(ct_post(&t, "alpha", "alice", "now", NULL, NULL, 2, NULL, &err), BB_OK, "%s", err.msg);
    ct_close(&t);
}

Test(sqlite, busy_retries_stop_at_the_call_deadline, .timeout = 60)
{
    ct t;
    sqlite3 *db;
    bb_error err;
    bb_post p, out;
    bool replayed;
    int64_t t0, took;
    ct_open_with(&t, "storage:\n  retry:\n    max_attempts: 20\n    base_ms: 100\n    max_ms: 2000\n"
                     "  sqlite:\n    busy_timeout_ms: 0\n");
    ct_team(&t, "alpha");
    db = hold_write_lock(&t);
    memset(&p, 0, sizeof p);
    bb_new_ulid(p.id, sizeof p.id);
    snprintf(p.team, sizeof p.team, "alpha");
    p.author = "alice";
    p.content = "deadline";
    t0 = bb_now_ms();
    t.call.deadline_ms = t0 + 300;
    bb_error_clear(&err);
    cr_assert_eq(t.ops->post_create(t.st, &t.call, &p, NULL, &out, &replayed, &err), BB_UNAVAILABLE);
    took = bb_now_ms() - t0;
    cr_assert_leq(took, 600, "gave up near the deadline, not after all retries (%lld ms)", (long long)took);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    t.call.deadline_ms = 0;
    ct_close(&t);
}

Test(sqlite, one_connection_pool_serves_concurrent_callers, .timeout = 60)
{
    ct t;
    busy_writer w[3];
    pthread_t th[3];
    ct_open_with(&t, "storage:\n  sqlite:\n    connections: 1\n    synchronous: FULL\n");
    ct_team(&t, "alpha");
    for (int i = 0; i < 3; i++) {
        w[i] = (busy_writer){ &t, 0, 0, 0 };
        cr_assert_eq(pthread_create(&th[i], NULL, keep_writing, &w[i]), 0);
    }
    for (int n = 0; n < 200; n++) {
        bb_post_query q = { .team = "alpha", .limit = 10 };
        bb_post_page pg;
        OK(t.ops->post_list(t.st, &t.call, &q, &pg, &e_));
        bb_post_page_clear(&pg);
    }
    for (int i = 0; i < 3; i++) { w[i].stop = 1; pthread_join(th[i], NULL); }
    for (int i = 0; i < 3; i++) cr_assert_eq(w[i].failed, 0, "writer %d failed %d times", i, w[i].failed);
    ct_close(&t);
}

/* ---- the admin CLI on this backend (the real binary) ---------------------------- */

static int cli(const ct *t, const char *const args[], char **out, char **errs)
{
    return bbt_botboard_cli(t->config, args, out, errs);
}

Test(sqlite_cli, migrate_team_key_backup_export_import, .timeout = 120)
{
    ct t;
    char *out = NULL, *errs = NULL, *key_id, *export_text, *backup, *bad;
    ct_prepare(&t, NULL);
    cr_assert_eq(cli(&t, (const char *[]){ "migrate", "--status", NULL }, &out, &errs), 0, "%s", errs);
    cr_assert(strstr(out, "pending"), "fresh database: migrations pending\n%s", out);
    free(out); free(errs);
    cr_assert_eq(cli(&t, (const char *[]){ "migrate", NULL }, &out, &errs), 0, "%s", errs);
    cr_assert(!strstr(out, "pending") && strstr(out, "applied"), "%s", out);
    free(out); free(errs);

    cr_assert_eq(cli(&t, (const char *[]){ "team", "create", "alpha", NULL }, &out, &errs), 0, "%s", errs);
    free(out); free(errs);
    cr_assert_eq(cli(&t, (const char *[]){ "team", "create", "alpha", NULL }, &out, &errs), 2, "duplicate team");
    cr_assert(strstr(errs, "already exists"), "%s", errs);
    free(out); free(errs);
    cr_assert_eq(cli(&t, (const char *[]){ "team", "list", NULL }, &out, &errs), 0);
    cr_assert_str_eq(out, "alpha\n");
    free(out); free(errs);

    cr_assert_eq(cli(&t, (const char *[]){ "key", "create", "--team", "alpha", "--label", "ci", NULL }, &out, &errs), 0,
                 "%s", errs);
    cr_assert(strncmp(out, "bbk_", 4) == 0 && strchr(out, '\n') == out + strlen(out) - 1, "one line, the key: %s", out);
    free(out); free(errs);
    cr_assert_eq(cli(&t, (const char *[]){ "key", "list", "--team", "alpha", NULL }, &out, &errs), 0);
    cr_assert(strstr(out, "active") && strstr(out, "ci"), "%s", out);
    key_id = strndup(out, strcspn(out, " "));
    free(out); free(errs);
    cr_assert_eq(cli(&t, (const char *[]){ "key", "revoke", key_id, NULL }, &out, &errs), 0, "%s", errs);
    free(out); free(errs);
    cr_assert_eq(cli(&t, (const char *[]){ "key", "list", "--team", "alpha", NULL }, &out, &errs), 0);
    cr_assert(strstr(out, "revoked"), "%s", out);
    free(out); free(errs);
    cr_assert_eq(cli(&t, (const char *[]){ "key", "revoke", "NOSUCHKEY", NULL }, &out, &errs), 2);
    free(out); free(errs);

    cr_assert(asprintf(&backup, "%s/cli-backup.db", t.dir) > 0);
    cr_assert_eq(cli(&t, (const char *[]){ "backup", backup, NULL }, &out, &errs), 0, "%s", errs);
    free(out); free(errs);
    {
        sqlite3 *db;
        cr_assert_eq(sqlite3_open_v2(backup, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        cr_assert_eq(scalar(db, "SELECT count(*) FROM teams"), 1);
        cr_assert_eq(scalar(db, "SELECT count(*) FROM api_keys"), 1);
        sqlite3_close(db);
    }

    cr_assert_eq(cli(&t, (const char *[]){ "export", NULL }, &export_text, &errs), 0, "%s", errs);
    free(errs);
    cr_assert(strstr(export_text, "\"type\":\"team\"") && strstr(export_text, "\"type\":\"key\""), "%s", export_text);

    /* Into a second store: a bad third line imports nothing and says where. */
    {
        ct other;
        ct_prepare(&other, NULL);
        cr_assert(asprintf(&bad, "%s{\"type\":\"team\",\"name\":\"beta\",\"createdAt\":1}\n{broken\n", export_text) > 0);
        cr_assert_eq(bbt_botboard_cli_input(other.config, (const char *[]){ "import", NULL }, bad, strlen(bad), &out, &errs),
                     2, "bad line: %s", errs);
        cr_assert(strstr(errs, "stdin:4:") && strstr(errs, "nothing imported"), "names the line: %s", errs);
        free(out); free(errs);
        cr_assert_eq(cli(&other, (const char *[]){ "export", NULL }, &out, &errs), 0);
        cr_assert_str_eq(out, "", "nothing was imported");
        free(out); free(errs);
        cr_assert_eq(bbt_botboard_cli_input(other.config, (const char *[]){ "import", NULL }, export_text,
                                            strlen(export_text), &out, &errs), 0, "%s", errs);
        free(out); free(errs);
        cr_assert_eq(cli(&other, (const char *[]){ "export", NULL }, &out, &errs), 0);
        cr_assert_str_eq(out, export_text, "export -> import -> export is identical");
        free(out); free(errs);
        ct_close(&other);
    }
    free(bad); free(export_text); free(backup); free(key_id);
    ct_close(&t);
}

/* Rows from before migration 4 carry no packed tags: reads fall back to post_tags. */
Test(sqlite, tags_of_rows_without_a_packed_copy_come_from_post_tags, .timeout = 30)
{
    ct t;
    static const char *const tags[] = { "b-tag", "a-tag", "ü", NULL };
    char id[BB_ID_MAX], *path, sql[256];
    sqlite3 *db;
    bb_post got;
    bb_error err;
    ct_open(&t);
    ct_team(&t, "alpha");
    cr_assert_eq(ct_post(&t, "alpha", "alice", "old row", tags, NULL, 1, id, &err), BB_OK);
    path = db_path(&t);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    snprintf(sql, sizeof sql, "UPDATE posts SET tags_packed = NULL WHERE id = '%s'", id);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    OK(t.ops->post_get(t.st, &t.call, "alpha", id, &got, &e_));
    cr_assert_eq(got.n_tags, 3);
    for (int i = 0; i < 3; i++) cr_assert_str_eq(got.tags[i], tags[i], "tag %d in order", i);
    bb_post_clear(&got);
    free(path);
    ct_close(&t);
}
