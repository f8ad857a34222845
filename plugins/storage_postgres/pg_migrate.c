/*
 * plugins/storage_postgres/pg_migrate.c — the versioned schema.
 *
 * Each migration runs in its own transaction together with its row in
 * schema_migrations, so a failure leaves the schema exactly as it was
 * (PostgreSQL DDL is transactional).  Concurrent migrators (several
 * instances starting at once) are serialised by a session advisory lock.
 * A database that records a version this plugin does not know is refused.
 */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Key of the advisory lock: "BBMIGRAT" read as a number. */
#define MIGRATE_LOCK_KEY "4774912794566939988"

typedef struct migration {
    int         version;
    const char *name;
    const char *sql;
} migration;

/* Text columns compared or ordered by the application use the "C" collation:
 * byte order, the same as SQLite, and stable across server locales. */
static const migration migrations[] = {
    { 1, "initial schema",
      "CREATE TABLE teams ("
      "  name       text COLLATE \"C\" PRIMARY KEY,"
      "  created_ms bigint NOT NULL);"
      "CREATE TABLE api_keys ("
      "  id         text COLLATE \"C\" PRIMARY KEY,"
      "  team       text COLLATE \"C\" NOT NULL REFERENCES teams (name),"
      "  prefix     text NOT NULL,"
      "  label      text NOT NULL DEFAULT '',"
      "  hash       bytea NOT NULL UNIQUE,"
      "  created_ms bigint NOT NULL,"
      "  revoked_ms bigint NOT NULL DEFAULT 0);"
      "CREATE INDEX api_keys_team ON api_keys (team, id);"
      /* tags keeps the post's own order for reading back; post_tags makes
       * them queryable and holds only live posts' tags. */
      "CREATE TABLE posts ("
      "  id         text COLLATE \"C\" PRIMARY KEY,"
      "  team       text COLLATE \"C\" NOT NULL REFERENCES teams (name),"
      "  author     text COLLATE \"C\" NOT NULL,"
      "  content    text NOT NULL,"
      "  tags       text[] NOT NULL DEFAULT '{}',"
      "  parent_id  text COLLATE \"C\","
      "  thread_id  text COLLATE \"C\" NOT NULL,"
      "  created_ms bigint NOT NULL,"
      "  deleted_ms bigint NOT NULL DEFAULT 0);"
      "CREATE INDEX posts_team_time ON posts (team, created_ms DESC, id DESC) WHERE deleted_ms = 0;"
      "CREATE INDEX posts_team_author ON posts (team, author, created_ms DESC, id DESC) WHERE deleted_ms = 0;"
      "CREATE INDEX posts_team_thread ON posts (team, thread_id, created_ms DESC, id DESC) WHERE deleted_ms = 0;"
      "CREATE INDEX posts_parent ON posts (parent_id) WHERE parent_id IS NOT NULL;"
      "CREATE INDEX posts_export ON posts (created_ms, id);"
      "CREATE TABLE post_tags ("
      "  post_id    text COLLATE \"C\" NOT NULL REFERENCES posts (id),"
      "  tag        text COLLATE \"C\" NOT NULL,"
      "  team       text COLLATE \"C\" NOT NULL,"
      "  created_ms bigint NOT NULL,"
      "  PRIMARY KEY (post_id, tag));"
      "CREATE INDEX post_tags_team_tag ON post_tags (team, tag, created_ms DESC, post_id DESC);"
      "CREATE TABLE idempotency ("
      "  team         text COLLATE \"C\" NOT NULL,"
      "  key          text COLLATE \"C\" NOT NULL,"
      "  request_hash bytea NOT NULL,"
      "  post_id      text COLLATE \"C\" NOT NULL,"
      "  expires_ms   bigint NOT NULL,"
      "  PRIMARY KEY (team, key));"
      "CREATE INDEX idempotency_expiry ON idempotency (expires_ms);" },
    /* Live-post counts per team, author, tag and thread, so a page's
     * totalCount is a lookup of a few rows instead of a COUNT over every
     * match (a tag may match 100,000 posts).  Each value has up to
     * PG_COUNT_SHARDS rows, summed on read, so concurrent creates do not all
     * queue on one row lock.  Backfilled from the posts already there. */
    { 2, "post counters",
      "CREATE TABLE post_counts ("
      "  team  text COLLATE \"C\" NOT NULL,"
      "  dim   smallint NOT NULL,"
      "  value text COLLATE \"C\" NOT NULL,"
      "  shard smallint NOT NULL,"
      "  n     bigint NOT NULL,"
      "  PRIMARY KEY (team, dim, value, shard));"
      "INSERT INTO post_counts (team, dim, value, shard, n)"
      "  SELECT team, 0, '', 0, count(*) FROM posts WHERE deleted_ms = 0 GROUP BY team"
      "  UNION ALL SELECT team, 1, author, 0, count(*) FROM posts WHERE deleted_ms = 0 GROUP BY team, author"
      "  UNION ALL SELECT team, 3, thread_id, 0, count(*) FROM posts WHERE deleted_ms = 0 GROUP BY team, thread_id"
      "  UNION ALL SELECT team, 2, tag, 0, count(*) FROM post_tags GROUP BY team, tag;" },
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

typedef struct migrate_ctx {
    bool             apply;
    bb_migration_fn  fn;
    void            *ud;
} migrate_ctx;

static bb_status applied_versions(pg_store *s, pg_conn *c, const bb_call *call, bool create, int64_t applied_ms[],
                                  int *newest, bb_error *err)
{
    PGresult *r = NULL;
    bb_status st;
    *newest = 0;
    if (!create) {   /* --status: report, change nothing */
        r = PQexec(c->pg, "SELECT to_regclass('schema_migrations') IS NULL");
        if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't') {
            PQclear(r);
            return BB_OK;   /* a fresh database: everything is pending */
        }
        PQclear(r);
    }
    st = pg_exec_simple(s, c, call,
                                  "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                  "  version    integer PRIMARY KEY,"
                                  "  name       text NOT NULL,"
                                  "  applied_ms bigint NOT NULL)", err);
    if (st != BB_OK) return st;
    r = PQexec(c->pg, "SELECT version, applied_ms FROM schema_migrations ORDER BY version");
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        bb_fail(err, PQstatus(c->pg) == CONNECTION_OK ? BB_INTERNAL : BB_UNAVAILABLE, NULL,
                "reading schema_migrations: %s", r ? PQresultErrorMessage(r) : "out of memory");
        if (PQstatus(c->pg) != CONNECTION_OK) c->lost = c->broken = true;
        PQclear(r);
        return err->code;
    }
    *newest = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        int v = (int)pg_get_i64(r, i, 0);
        if (v > *newest) *newest = v;
        if (v >= 1 && v <= N_MIGRATIONS) applied_ms[v - 1] = pg_get_i64(r, i, 1);
    }
    PQclear(r);
    return BB_OK;
}

static bb_status apply_one(pg_store *s, pg_conn *c, const bb_call *call, const migration *m, int64_t *applied_ms,
                           bb_error *err)
{
    char v[24], when[24];
    const char *vals[3];
    PGresult *r;
    bb_status st = pg_exec_simple(s, c, call, "BEGIN", err);
    if (st != BB_OK) return st;
    st = pg_exec_simple(s, c, call, m->sql, err);
    if (st == BB_OK) {
        *applied_ms = s->api->wall_ms();
        pg_i64_text(m->version, v);
        pg_i64_text(*applied_ms, when);
        vals[0] = v; vals[1] = m->name; vals[2] = when;
        r = PQexecParams(c->pg, "INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
                         3, NULL, vals, NULL, NULL, 0);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
            st = bb_fail(err, BB_INTERNAL, NULL, "recording migration %d: %s", m->version,
                         r ? PQresultErrorMessage(r) : "out of memory");
        PQclear(r);
    }
    if (st == BB_OK) st = pg_exec_simple(s, c, call, "COMMIT", err);
    if (st != BB_OK) {
        bb_error rb;
        char msg[BB_ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        if (PQstatus(c->pg) == CONNECTION_OK) (void)pg_exec_simple(s, c, call, "ROLLBACK", &rb);
        bb_fail(err, st, NULL, "migration %d (%s) failed, schema left unchanged: %s", m->version, m->name, msg);
    }
    return st;
}

static bb_status migrate_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    migrate_ctx *ctx = ud;
    int64_t applied_ms[N_MIGRATIONS] = { 0 };
    int newest = 0;
    bb_status st;
    (void)attempt;

    /* Session lock: held across the per-migration transactions, released
     * below or by the server if this connection dies. */
    st = pg_exec_simple(s, c, call, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", err);
    if (st != BB_OK) return st;
    st = applied_versions(s, c, call, ctx->apply, applied_ms, &newest, err);
    if (st == BB_OK && newest > N_MIGRATIONS)
        st = bb_fail(err, BB_INVALID, NULL,
                     "database schema is at version %d, newer than this storage_postgres supports (%d): "
                     "upgrade botboard or use a matching database", newest, N_MIGRATIONS);
    for (int i = 0; st == BB_OK && i < N_MIGRATIONS; i++) {
        bb_migration_info info = { migrations[i].version, migrations[i].name, applied_ms[i] != 0, applied_ms[i] };
        if (!info.applied && ctx->apply) {
            st = apply_one(s, c, call, &migrations[i], &applied_ms[i], err);
            if (st != BB_OK) break;
            info.applied = true;
            info.applied_ms = applied_ms[i];
            s->api->log(s->host, BB_LOG_INFO, call, "applied migration %d (%s)", info.version, info.name);
        }
        if (ctx->fn) st = ctx->fn(ctx->ud, &info);
    }
    if (PQstatus(c->pg) == CONNECTION_OK) {
        bb_error ignore;
        if (pg_exec_simple(s, c, call, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", &ignore) != BB_OK)
            c->broken = true;   /* never hand out a connection that may still hold the lock */
    }
    return st;
}

bb_status pg_migrate(pg_store *s, const bb_call *call, bool apply, bb_migration_fn fn, void *ud, bb_error *err)
{
    static const pg_op op = { "migrate", PG_OP_NO_RETRY | PG_OP_LONG };
    migrate_ctx ctx = { apply, fn, ud };
    return pg_run(s, call, &op, migrate_body, &ctx, err);
}
