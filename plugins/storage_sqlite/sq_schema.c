/*
 * plugins/storage_sqlite/sq_schema.c — versioned migrations.
 *
 * The schema is the list below, applied in order, each migration in its own
 * transaction together with its schema_migrations row, so a failure leaves
 * the schema exactly as the previous migration left it.  Never edit a
 * migration that has shipped: append a new one.
 *
 * Indexes: every list filter has one whose order is (.., created_ms, id), so
 * a first page is an index range scan of `limit` rows at any table size.
 * They are partial (live rows only) so soft-deleted posts cost nothing.
 * post_counts keeps live-post counts per team, author, tag and thread so a
 * page's totalCount is one lookup instead of a COUNT over the matches; it
 * also answers distinct() (most used authors/tags).
 */
#include <stdlib.h>
#include <string.h>

#include "sq.h"

typedef struct migration {
    int         version;
    const char *name;
    const char *sql;
} migration;

static const migration migrations[] = {
    { 1, "teams and api keys",
      "CREATE TABLE teams (\n"
      "  name       TEXT PRIMARY KEY,\n"
      "  created_ms INTEGER NOT NULL\n"
      ") WITHOUT ROWID;\n"
      "CREATE TABLE api_keys (\n"
      "  id         TEXT PRIMARY KEY,\n"
      "  team       TEXT NOT NULL REFERENCES teams(name),\n"
      "  prefix     TEXT NOT NULL,\n"
      "  label      TEXT NOT NULL DEFAULT '',\n"
      "  hash       BLOB NOT NULL UNIQUE,\n"
      "  created_ms INTEGER NOT NULL,\n"
      "  revoked_ms INTEGER NOT NULL DEFAULT 0\n"
      ");\n"
      "CREATE INDEX api_keys_team ON api_keys(team, id);\n" },
    { 2, "posts, tags and counters",
      "CREATE TABLE posts (\n"
      "  id         TEXT PRIMARY KEY,\n"
      "  team       TEXT NOT NULL REFERENCES teams(name),\n"
      "  author     TEXT NOT NULL,\n"
      "  content    TEXT NOT NULL,\n"
      "  parent_id  TEXT,\n"
      "  thread_id  TEXT NOT NULL,\n"
      "  created_ms INTEGER NOT NULL,\n"
      "  deleted_ms INTEGER NOT NULL DEFAULT 0\n"
      ");\n"
      "CREATE INDEX posts_team_time ON posts(team, created_ms, id) WHERE deleted_ms = 0;\n"
      "CREATE INDEX posts_team_author_time ON posts(team, author, created_ms, id) WHERE deleted_ms = 0;\n"
      "CREATE INDEX posts_thread_time ON posts(thread_id, created_ms, id) WHERE deleted_ms = 0;\n"
      "CREATE TABLE post_tags (\n"
      "  post_id    TEXT NOT NULL REFERENCES posts(id),\n"
      "  position   INTEGER NOT NULL,\n"
      "  team       TEXT NOT NULL,\n"
      "  tag        TEXT NOT NULL,\n"
      "  created_ms INTEGER NOT NULL,\n"
      "  live       INTEGER NOT NULL DEFAULT 1,\n"
      "  PRIMARY KEY (post_id, position)\n"
      ") WITHOUT ROWID;\n"
      "CREATE INDEX post_tags_team_tag_time ON post_tags(team, tag, created_ms, post_id) WHERE live = 1;\n"
      "CREATE TABLE post_counts (\n"
      "  team  TEXT NOT NULL,\n"
      "  dim   INTEGER NOT NULL,  -- 0 all, 1 author, 2 tag, 3 thread\n"
      "  value TEXT NOT NULL,\n"
      "  n     INTEGER NOT NULL,\n"
      "  PRIMARY KEY (team, dim, value)\n"
      ") WITHOUT ROWID;\n" },
    { 3, "idempotency records",
      "CREATE TABLE idempotency (\n"
      "  team         TEXT NOT NULL,\n"
      "  key          TEXT NOT NULL,\n"
      "  request_hash BLOB NOT NULL,\n"
      "  post_id      TEXT NOT NULL,\n"
      "  expires_ms   INTEGER NOT NULL,\n"
      "  PRIMARY KEY (team, key)\n"
      ") WITHOUT ROWID;\n"
      "CREATE INDEX idempotency_expiry ON idempotency(expires_ms);\n" },
    { 4, "tags stored with the post for reading",
      /* NULL for older rows: readers fall back to post_tags. */
      "ALTER TABLE posts ADD COLUMN tags_packed TEXT;\n" },
};
#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

int sq_schema_latest(void) { return migrations[N_MIGRATIONS - 1].version; }

typedef struct applied_set {
    int64_t applied_ms[N_MIGRATIONS];  /* 0 = pending */
    int     newest;                    /* highest version recorded in the database */
} applied_set;

static bb_status read_applied(sq_conn *c, applied_set *a, bb_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    memset(a, 0, sizeof *a);
    rc = sqlite3_prepare_v2(c->db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
                            -1, &st, NULL);
    if (rc != SQLITE_OK) return sq_fail(c, rc, err, "schema");
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) { sqlite3_finalize(st); return sq_fail(c, rc, err, "schema"); }
    if (sqlite3_column_int(st, 0) == 0) { sqlite3_finalize(st); return BB_OK; }   /* fresh database */
    sqlite3_finalize(st);
    rc = sqlite3_prepare_v2(c->db, "SELECT version, applied_ms FROM schema_migrations", -1, &st, NULL);
    if (rc != SQLITE_OK) return sq_fail(c, rc, err, "schema_migrations");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int v = sqlite3_column_int(st, 0);
        if (v > a->newest) a->newest = v;
        for (size_t i = 0; i < N_MIGRATIONS; i++)
            if (migrations[i].version == v) a->applied_ms[i] = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? BB_OK : sq_fail(c, rc, err, "schema_migrations");
}

static bb_status refuse_newer(const sq *s, const applied_set *a, bb_error *err)
{
    if (a->newest <= sq_schema_latest()) return BB_OK;
    return bb_fail(err, BB_INVALID, NULL,
                   "database %s has schema version %d, newer than this storage_sqlite plugin supports (%d); "
                   "upgrade botboard or use a matching database", s->path, a->newest, sq_schema_latest());
}

static bb_status body_check(sq *s, sq_conn *c, void *ctx, bb_error *err)
{
    applied_set a;
    bb_status st = read_applied(c, &a, err);
    (void)ctx;
    return st != BB_OK ? st : refuse_newer(s, &a, err);
}

bb_status sq_schema_check(sq *s, sq_conn *c, bb_error *err) { return body_check(s, c, NULL, err); }

typedef struct apply_ctx {
    size_t  index;        /* migration to apply */
    int64_t now_ms;
    bool    did;          /* false when another process applied it first */
} apply_ctx;

static bb_status body_apply(sq *s, sq_conn *c, void *ctx, bb_error *err)
{
    apply_ctx *ax = ctx;
    const migration *m = &migrations[ax->index];
    applied_set a;
    sqlite3_stmt *st = NULL;
    char *msg = NULL;
    int rc;
    bb_status rs;
    if (sqlite3_exec(c->db, "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
                            "  version    INTEGER PRIMARY KEY,\n"
                            "  name       TEXT NOT NULL,\n"
                            "  applied_ms INTEGER NOT NULL\n"
                            ")", NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(c, sqlite3_errcode(c->db), err, "schema_migrations");
    if ((rs = read_applied(c, &a, err)) != BB_OK) return rs;
    if ((rs = refuse_newer(s, &a, err)) != BB_OK) return rs;
    ax->did = false;
    if (a.applied_ms[ax->index]) return BB_OK;
    if (sqlite3_exec(c->db, m->sql, NULL, NULL, &msg) != SQLITE_OK) {
        rs = bb_fail(err, BB_INTERNAL, NULL, "migration %d (%s) failed: %s", m->version, m->name,
                     msg ? msg : sqlite3_errmsg(c->db));
        if ((sqlite3_errcode(c->db) & 0xff) == SQLITE_BUSY) { c->transient = true; rs = err->code = BB_UNAVAILABLE; }
        sqlite3_free(msg);
        return rs;
    }
    rc = sqlite3_prepare_v2(c->db, "INSERT INTO schema_migrations(version, name, applied_ms) VALUES (?1, ?2, ?3)",
                            -1, &st, NULL);
    if (rc != SQLITE_OK) return sq_fail(c, rc, err, "schema_migrations");
    sqlite3_bind_int(st, 1, m->version);
    sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, ax->now_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sq_fail(c, rc, err, "schema_migrations");
    ax->did = true;
    return BB_OK;
}

static bb_status body_status(sq *s, sq_conn *c, void *ctx, bb_error *err)
{
    applied_set *a = ctx;
    bb_status st = read_applied(c, a, err);
    return st != BB_OK ? st : refuse_newer(s, a, err);
}

bb_status sq_migrate(sq *s, const bb_call *call, bool apply, bb_migration_fn fn, void *ud, bb_error *err)
{
    applied_set a;
    bb_status st;
    if (apply) {
        for (size_t i = 0; i < N_MIGRATIONS; i++) {
            apply_ctx ax = { i, s->api->wall_ms(), false };
            st = sq_run(s, call, SQ_OP_MIGRATE, SQ_WRITE_ALONE, body_apply, &ax, err);
            if (st != BB_OK) return st;
            if (ax.did)
                s->api->log(s->host, BB_LOG_INFO, call, "applied migration %d (%s)", migrations[i].version,
                            migrations[i].name);
        }
    }
    st = sq_run(s, call, SQ_OP_MIGRATE, SQ_READ, body_status, &a, err);
    if (st != BB_OK) return st;
    for (size_t i = 0; fn && i < N_MIGRATIONS; i++) {
        bb_migration_info m = { migrations[i].version, migrations[i].name, a.applied_ms[i] != 0, a.applied_ms[i] };
        if ((st = fn(ud, &m)) != BB_OK) return bb_fail(err, st, NULL, "migration report aborted");
    }
    (void)body_check;
    return BB_OK;
}
