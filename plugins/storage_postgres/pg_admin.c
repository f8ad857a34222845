/*
 * plugins/storage_postgres/pg_admin.c — teams, API keys, housekeeping.
 *
 * Each operation is a body run by pg_run (pool, transaction, retries);
 * writes run in a transaction so a lost connection before COMMIT is known
 * to have changed nothing and may be retried.
 */
#include "pg_internal.h"

#include <stdio.h>
#include <string.h>

static const pg_op op_team_create = { "team_create", PG_OP_TXN };
static const pg_op op_team_get = { "team_get", PG_OP_READONLY };
static const pg_op op_team_list = { "team_list", PG_OP_READONLY };
static const pg_op op_key_create = { "key_create", PG_OP_TXN };
static const pg_op op_key_by_hash = { "key_by_hash", PG_OP_READONLY };
static const pg_op op_key_list = { "key_list", PG_OP_READONLY };
static const pg_op op_key_revoke = { "key_revoke", PG_OP_TXN | PG_OP_REPEATABLE };   /* revoking twice is harmless */
static const pg_op op_purge = { "purge_expired", PG_OP_TXN | PG_OP_REPEATABLE };

/* ---- teams ---------------------------------------------------------------- */

static bb_status team_create_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    const bb_team *t = ud;
    char created[24];
    const char *vals[2] = { t->name, created };
    PGresult *r = NULL;
    bb_status st;
    (void)attempt;
    pg_i64_text(t->created_ms, created);
    st = pg_exec(s, c, call, ST_TEAM_INSERT, vals, NULL, NULL, &r, err);
    PQclear(r);
    if (st == BB_CONFLICT) return bb_fail(err, BB_CONFLICT, "team", "team '%s' already exists", t->name);
    return st;
}

bb_status pg_team_create(pg_store *s, const bb_call *call, const bb_team *team, bb_error *err)
{
    return pg_run(s, call, &op_team_create, team_create_body, (void *)team, err);
}

typedef struct team_get_ctx { const char *name; bb_team *out; } team_get_ctx;

static bb_status team_get_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    team_get_ctx *ctx = ud;
    const char *vals[1] = { ctx->name };
    PGresult *r = NULL;
    bb_status st = pg_exec(s, c, call, ST_TEAM_GET, vals, NULL, NULL, &r, err);
    (void)attempt;
    if (st != BB_OK) return st;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return bb_fail(err, BB_NOT_FOUND, "team", "no team '%s'", ctx->name);
    }
    memset(ctx->out, 0, sizeof *ctx->out);
    pg_get_str(r, 0, 0, ctx->out->name, sizeof ctx->out->name);
    ctx->out->created_ms = pg_get_i64(r, 0, 1);
    PQclear(r);
    return BB_OK;
}

bb_status pg_team_get(pg_store *s, const bb_call *call, const char *name, bb_team *out, bb_error *err)
{
    team_get_ctx ctx = { name, out };
    return pg_run(s, call, &op_team_get, team_get_body, &ctx, err);
}

/* Lists are read whole, then handed to the callback with no connection
 * held: a slow callback must not pin a pooled connection. */
typedef struct list_ctx { pg_stmt_id stmt; const char *arg; PGresult *rows; } list_ctx;

static bb_status list_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    list_ctx *ctx = ud;
    const char *vals[1] = { ctx->arg };
    (void)attempt;
    PQclear(ctx->rows);
    ctx->rows = NULL;
    return pg_exec(s, c, call, ctx->stmt, ctx->arg ? vals : NULL, NULL, NULL, &ctx->rows, err);
}

bb_status pg_team_list(pg_store *s, const bb_call *call, bb_team_fn fn, void *ud, bb_error *err)
{
    list_ctx ctx = { ST_TEAM_LIST, NULL, NULL };
    bb_status st = pg_run(s, call, &op_team_list, list_body, &ctx, err);
    for (int i = 0; st == BB_OK && i < PQntuples(ctx.rows); i++) {
        bb_team t;
        memset(&t, 0, sizeof t);
        pg_get_str(ctx.rows, i, 0, t.name, sizeof t.name);
        t.created_ms = pg_get_i64(ctx.rows, i, 1);
        st = fn(ud, &t);
    }
    PQclear(ctx.rows);
    return st;
}

/* ---- keys ----------------------------------------------------------------- */

static bool row_to_key(const PGresult *r, int row, bb_api_key *k)
{
    memset(k, 0, sizeof *k);
    pg_get_str(r, row, 0, k->id, sizeof k->id);
    pg_get_str(r, row, 1, k->team, sizeof k->team);
    pg_get_str(r, row, 2, k->prefix, sizeof k->prefix);
    pg_get_str(r, row, 3, k->label, sizeof k->label);
    k->created_ms = pg_get_i64(r, row, 5);
    k->revoked_ms = pg_get_i64(r, row, 6);
    return pg_hex_decode(PQgetvalue(r, row, 4), k->hash, sizeof k->hash);
}

static bb_status key_create_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    const bb_api_key *k = ud;
    char hash[2 * BB_KEY_HASH_LEN + 1], created[24], revoked[24];
    const char *vals[7] = { k->id, k->team, k->prefix, k->label, hash, created, revoked };
    PGresult *r = NULL;
    bb_status st;
    (void)attempt;
    pg_hex_encode(k->hash, sizeof k->hash, hash);
    pg_i64_text(k->created_ms, created);
    pg_i64_text(k->revoked_ms, revoked);
    st = pg_exec(s, c, call, ST_KEY_INSERT, vals, NULL, NULL, &r, err);
    PQclear(r);
    if (st == BB_NOT_FOUND) return bb_fail(err, BB_NOT_FOUND, "team", "no team '%s'", k->team);
    if (st == BB_CONFLICT) return bb_fail(err, BB_CONFLICT, "key", "a key with this id or hash already exists");
    return st;
}

bb_status pg_key_create(pg_store *s, const bb_call *call, const bb_api_key *key, bb_error *err)
{
    return pg_run(s, call, &op_key_create, key_create_body, (void *)key, err);
}

typedef struct key_get_ctx { const uint8_t *hash; bb_api_key *out; } key_get_ctx;

static bb_status key_by_hash_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    key_get_ctx *ctx = ud;
    char hash[2 * BB_KEY_HASH_LEN + 1];
    const char *vals[1] = { hash };
    PGresult *r = NULL;
    bb_status st;
    (void)attempt;
    pg_hex_encode(ctx->hash, BB_KEY_HASH_LEN, hash);
    st = pg_exec(s, c, call, ST_KEY_BY_HASH, vals, NULL, NULL, &r, err);
    if (st != BB_OK) return st;
    if (PQntuples(r) != 1) st = bb_fail(err, BB_NOT_FOUND, NULL, "no such key");
    else if (!row_to_key(r, 0, ctx->out)) st = bb_fail(err, BB_INTERNAL, NULL, "malformed key hash in the database");
    PQclear(r);
    return st;
}

bb_status pg_key_by_hash(pg_store *s, const bb_call *call, const uint8_t hash[BB_KEY_HASH_LEN], bb_api_key *out,
                         bb_error *err)
{
    key_get_ctx ctx = { hash, out };
    return pg_run(s, call, &op_key_by_hash, key_by_hash_body, &ctx, err);
}

bb_status pg_key_list(pg_store *s, const bb_call *call, const char *team, bb_key_fn fn, void *ud, bb_error *err)
{
    list_ctx ctx = { ST_KEY_LIST, team, NULL };
    bb_status st = pg_run(s, call, &op_key_list, list_body, &ctx, err);
    for (int i = 0; st == BB_OK && i < PQntuples(ctx.rows); i++) {
        bb_api_key k;
        if (!row_to_key(ctx.rows, i, &k)) st = bb_fail(err, BB_INTERNAL, NULL, "malformed key hash in the database");
        else st = fn(ud, &k);
    }
    PQclear(ctx.rows);
    return st;
}

typedef struct revoke_ctx { const char *id; int64_t when_ms; } revoke_ctx;

static bb_status key_revoke_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    revoke_ctx *ctx = ud;
    char when[24];
    const char *vals[2] = { ctx->id, when };
    PGresult *r = NULL;
    bb_status st;
    (void)attempt;
    pg_i64_text(ctx->when_ms, when);
    st = pg_exec(s, c, call, ST_KEY_REVOKE, vals, NULL, NULL, &r, err);
    if (st == BB_OK && PQntuples(r) == 0) st = bb_fail(err, BB_NOT_FOUND, "id", "no key '%s'", ctx->id);
    PQclear(r);
    return st;
}

bb_status pg_key_revoke(pg_store *s, const bb_call *call, const char *id, int64_t when_ms, bb_error *err)
{
    revoke_ctx ctx = { id, when_ms > 0 ? when_ms : s->api->wall_ms() };
    if (!id) return bb_fail(err, BB_INVALID, "key", "key_revoke needs an id");
    return pg_run(s, call, &op_key_revoke, key_revoke_body, &ctx, err);
}

/* ---- housekeeping --------------------------------------------------------- */

static bb_status purge_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    char now[24];
    const char *vals[1] = { now };
    PGresult *r = NULL;
    bb_status st;
    (void)attempt;
    pg_i64_text(*(const int64_t *)ud, now);
    st = pg_exec(s, c, call, ST_IDEM_PURGE, vals, NULL, NULL, &r, err);
    PQclear(r);
    return st;
}

bb_status pg_purge_expired(pg_store *s, const bb_call *call, int64_t now_ms, bb_error *err)
{
    return pg_run(s, call, &op_purge, purge_body, &now_ms, err);
}
