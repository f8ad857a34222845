/*
 * plugins/storage_postgres/pg_io.c — backend-neutral export and import.
 *
 * Export reads teams, keys and posts inside one REPEATABLE READ snapshot,
 * streaming rows (libpq single-row mode) so a million posts never sit in
 * memory.  Import writes every record in one transaction: all or nothing.
 * Neither is retried: records already handed over cannot be taken back.
 */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const pg_op op_export = { "export", PG_OP_SNAPSHOT | PG_OP_NO_RETRY };
static const pg_op op_import = { "import", PG_OP_TXN | PG_OP_NO_RETRY };

/* Long exports and imports are bounded by the caller, not statement_timeout. */
#define NO_STATEMENT_TIMEOUT "SET LOCAL statement_timeout = 0"

typedef struct export_ctx { bb_record_fn fn; void *ud; } export_ctx;

typedef bb_status (*row_fn)(const PGresult *r, export_ctx *ctx, bb_error *err);

static bb_status team_row(const PGresult *r, export_ctx *ctx, bb_error *err)
{
    bb_record rec;
    (void)err;
    memset(&rec, 0, sizeof rec);
    rec.kind = BB_REC_TEAM;
    pg_get_str(r, 0, 0, rec.team.name, sizeof rec.team.name);
    rec.team.created_ms = pg_get_i64(r, 0, 1);
    return ctx->fn(ctx->ud, &rec);
}

static bb_status key_row(const PGresult *r, export_ctx *ctx, bb_error *err)
{
    bb_record rec;
    bb_api_key *k = &rec.key;
    memset(&rec, 0, sizeof rec);
    rec.kind = BB_REC_KEY;
    pg_get_str(r, 0, 0, k->id, sizeof k->id);
    pg_get_str(r, 0, 1, k->team, sizeof k->team);
    pg_get_str(r, 0, 2, k->prefix, sizeof k->prefix);
    pg_get_str(r, 0, 3, k->label, sizeof k->label);
    k->created_ms = pg_get_i64(r, 0, 5);
    k->revoked_ms = pg_get_i64(r, 0, 6);
    if (!pg_hex_decode(PQgetvalue(r, 0, 4), k->hash, sizeof k->hash))
        return bb_fail(err, BB_INTERNAL, NULL, "malformed key hash for key '%s'", k->id);
    return ctx->fn(ctx->ud, &rec);
}

static bb_status post_row(const PGresult *r, export_ctx *ctx, bb_error *err)
{
    bb_record rec;
    bb_status st;
    memset(&rec, 0, sizeof rec);
    rec.kind = BB_REC_POST;
    if (!pg_row_to_post(r, 0, &rec.post)) return bb_fail(err, BB_INTERNAL, NULL, "unreadable post row");
    st = ctx->fn(ctx->ud, &rec);
    bb_post_clear(&rec.post);
    return st;
}

static bb_status stream(pg_store *s, pg_conn *c, pg_stmt_id id, row_fn fn, export_ctx *ctx, bb_error *err)
{
    bb_status st = BB_OK;
    PGresult *r;
    if (!PQsendQueryParams(c->pg, s->stmts[id].sql, 0, NULL, NULL, NULL, NULL, 0) || !PQsetSingleRowMode(c->pg)) {
        c->broken = c->lost = PQstatus(c->pg) != CONNECTION_OK;
        c->broken = true;
        return bb_fail(err, BB_UNAVAILABLE, NULL, "export query failed: %s", PQerrorMessage(c->pg));
    }
    while ((r = PQgetResult(c->pg)) != NULL) {
        ExecStatusType rs = PQresultStatus(r);
        if (st == BB_OK) {
            if (rs == PGRES_SINGLE_TUPLE) {
                st = fn(r, ctx, err);
                if (st != BB_OK) c->broken = true;   /* stop reading; the connection is dropped */
            } else if (rs != PGRES_TUPLES_OK) {
                c->lost = PQstatus(c->pg) != CONNECTION_OK;
                st = bb_fail(err, c->lost ? BB_UNAVAILABLE : BB_INTERNAL, NULL, "export: %s",
                             PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                                                                            : "query failed");
            }
        }
        PQclear(r);
        if (c->broken) break;
    }
    return st;
}

static bb_status export_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    export_ctx *ctx = ud;
    bb_status st;
    (void)attempt;
    if ((st = pg_exec_simple(s, c, call, NO_STATEMENT_TIMEOUT, err)) != BB_OK) return st;
    if ((st = stream(s, c, ST_EXPORT_TEAMS, team_row, ctx, err)) != BB_OK) return st;
    if ((st = stream(s, c, ST_EXPORT_KEYS, key_row, ctx, err)) != BB_OK) return st;
    return stream(s, c, ST_EXPORT_POSTS, post_row, ctx, err);
}

bb_status pg_export_all(pg_store *s, const bb_call *call, bb_record_fn fn, void *ud, bb_error *err)
{
    export_ctx ctx = { fn, ud };
    return pg_run(s, call, &op_export, export_body, &ctx, err);
}

/* ---- import --------------------------------------------------------------- */

typedef struct import_ctx { bb_record_source next; void *ud; } import_ctx;

static bb_status import_team(pg_store *s, pg_conn *c, const bb_call *call, const bb_team *t, bb_error *err)
{
    char created[24];
    const char *vals[2] = { t->name, created };
    PGresult *r = NULL;
    bb_status st;
    pg_i64_text(t->created_ms, created);
    st = pg_exec(s, c, call, ST_TEAM_INSERT, vals, NULL, NULL, &r, err);
    PQclear(r);
    return st;
}

static bb_status import_key(pg_store *s, pg_conn *c, const bb_call *call, const bb_api_key *k, bb_error *err)
{
    char hash[2 * BB_KEY_HASH_LEN + 1], created[24], revoked[24];
    const char *vals[7] = { k->id, k->team, k->prefix, k->label, hash, created, revoked };
    PGresult *r = NULL;
    bb_status st;
    pg_hex_encode(k->hash, sizeof k->hash, hash);
    pg_i64_text(k->created_ms, created);
    pg_i64_text(k->revoked_ms, revoked);
    st = pg_exec(s, c, call, ST_KEY_INSERT, vals, NULL, NULL, &r, err);
    PQclear(r);
    return st;
}

static bb_status import_post(pg_store *s, pg_conn *c, const bb_call *call, const bb_post *p, bb_error *err)
{
    char created[24], deleted[24], thread[BB_ID_MAX];
    char *tags = pg_array_encode(p->tags, p->n_tags);
    PGresult *r = NULL;
    bb_status st;
    if (!tags) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    /* Exports carry thread ids; older or hand-made files may not. */
    snprintf(thread, sizeof thread, "%s", p->thread_id[0] ? p->thread_id : p->parent_id[0] ? p->parent_id : p->id);
    pg_i64_text(p->created_ms, created);
    pg_i64_text(p->deleted_ms, deleted);
    {
        const char *vals[9] = { p->id, p->team, p->author ? p->author : "", p->content ? p->content : "", tags,
                                p->parent_id, thread, created, deleted };
        st = pg_exec(s, c, call, ST_IMPORT_POST, vals, NULL, NULL, &r, err);
        PQclear(r);
    }
    if (st == BB_OK && p->n_tags && p->deleted_ms == 0) {
        const char *vals[4] = { p->team, created, p->id, tags };
        st = pg_exec(s, c, call, ST_TAG_INSERT, vals, NULL, NULL, &r, err);
        PQclear(r);
    }
    free(tags);
    return st;
}

static bb_status import_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    import_ctx *ctx = ud;
    bb_status st;
    (void)attempt;
    if ((st = pg_exec_simple(s, c, call, NO_STATEMENT_TIMEOUT, err)) != BB_OK) return st;
    for (long n = 1;; n++) {
        bb_record rec;
        char what[96];
        memset(&rec, 0, sizeof rec);
        st = ctx->next(ctx->ud, &rec, err);
        if (st == BB_NOT_FOUND) { bb_error_clear(err); return BB_OK; }
        if (st != BB_OK) return st;
        switch (rec.kind) {
        case BB_REC_TEAM:
            snprintf(what, sizeof what, "team '%s'", rec.team.name);
            st = import_team(s, c, call, &rec.team, err);
            break;
        case BB_REC_KEY:
            snprintf(what, sizeof what, "key '%s'", rec.key.id);
            st = import_key(s, c, call, &rec.key, err);
            break;
        case BB_REC_POST:
            snprintf(what, sizeof what, "post '%s'", rec.post.id);
            st = import_post(s, c, call, &rec.post, err);
            break;
        default:
            snprintf(what, sizeof what, "record");
            st = bb_fail(err, BB_INVALID, NULL, "unknown record kind %d", (int)rec.kind);
            break;
        }
        if (st != BB_OK) {
            char msg[BB_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return bb_fail(err, st, NULL, "record %ld (%s): %.160s; nothing imported", n, what, msg);
        }
    }
}

bb_status pg_import_all(pg_store *s, const bb_call *call, bb_record_source next, void *ud, bb_error *err)
{
    import_ctx ctx = { next, ud };
    return pg_run(s, call, &op_import, import_body, &ctx, err);
}
