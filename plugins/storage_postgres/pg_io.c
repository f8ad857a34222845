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

static const pg_op op_export = { "export_all", PG_OP_SNAPSHOT | PG_OP_NO_RETRY | PG_OP_LONG };
static const pg_op op_import = { "import_all", PG_OP_TXN | PG_OP_NO_RETRY | PG_OP_LONG };

/* Long exports and imports are bounded by the caller, not statement_timeout;
 * their batch statements (arrays of 500 values) are planned per call, unlike
 * the OLTP statements whose generic plans the session forces. */
#define NO_STATEMENT_TIMEOUT "SET LOCAL statement_timeout = 0; SET LOCAL plan_cache_mode = auto"

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
        c->lost = PQstatus(c->pg) != CONNECTION_OK;
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

/* Posts are written in batches (one INSERT ... SELECT FROM unnest per
 * column array): a million-post import is a few thousand statements, not a
 * million round trips. */
#define IMPORT_BATCH 500

enum { COL_ID, COL_TEAM, COL_AUTHOR, COL_CONTENT, COL_TAGS, COL_PARENT, COL_THREAD, COL_CREATED, COL_DELETED,
       N_COLS };

typedef struct post_batch {
    char   *cols[N_COLS][IMPORT_BATCH];
    size_t  n;
    char  **tag_post, **tag_tag, **tag_team, **tag_created;   /* flattened live tags */
    size_t  n_tags, cap_tags;
    long    first_record;
} post_batch;

static void batch_clear(post_batch *b)
{
    for (int c = 0; c < N_COLS; c++)
        for (size_t i = 0; i < b->n; i++) { free(b->cols[c][i]); b->cols[c][i] = NULL; }
    for (size_t i = 0; i < b->n_tags; i++) {
        free(b->tag_post[i]); free(b->tag_tag[i]); free(b->tag_team[i]); free(b->tag_created[i]);
    }
    b->n = b->n_tags = 0;
}

static void batch_free(post_batch *b)
{
    batch_clear(b);
    free(b->tag_post); free(b->tag_tag); free(b->tag_team); free(b->tag_created);
    memset(b, 0, sizeof *b);
}

static char *i64_dup(int64_t v)
{
    char buf[24];
    pg_i64_text(v, buf);
    return strdup(buf);
}

static bool batch_add(post_batch *b, const bb_post *p, long record)
{
    char thread[BB_ID_MAX];
    size_t i = b->n;
    bool ok;
    if (b->n == 0) b->first_record = record;
    /* Exports carry thread ids; older or hand-made files may not. */
    snprintf(thread, sizeof thread, "%s", p->thread_id[0] ? p->thread_id : p->parent_id[0] ? p->parent_id : p->id);
    b->cols[COL_ID][i] = strdup(p->id);
    b->cols[COL_TEAM][i] = strdup(p->team);
    b->cols[COL_AUTHOR][i] = strdup(p->author ? p->author : "");
    b->cols[COL_CONTENT][i] = strdup(p->content ? p->content : "");
    b->cols[COL_TAGS][i] = pg_array_encode(p->tags, p->n_tags);
    b->cols[COL_PARENT][i] = strdup(p->parent_id);
    b->cols[COL_THREAD][i] = strdup(thread);
    b->cols[COL_CREATED][i] = i64_dup(p->created_ms);
    b->cols[COL_DELETED][i] = i64_dup(p->deleted_ms);
    b->n++;
    ok = true;
    for (int c = 0; c < N_COLS; c++) ok = ok && b->cols[c][i];
    for (size_t t = 0; ok && p->deleted_ms == 0 && t < p->n_tags; t++) {
        if (b->n_tags == b->cap_tags) {
            size_t nc = b->cap_tags ? b->cap_tags * 2 : 256;
            char **a = realloc(b->tag_post, nc * sizeof *a);
            if (a) b->tag_post = a;
            char **bb = realloc(b->tag_tag, nc * sizeof *bb);
            if (bb) b->tag_tag = bb;
            char **cc = realloc(b->tag_team, nc * sizeof *cc);
            if (cc) b->tag_team = cc;
            char **dd = realloc(b->tag_created, nc * sizeof *dd);
            if (dd) b->tag_created = dd;
            if (!a || !bb || !cc || !dd) return false;
            b->cap_tags = nc;
        }
        b->tag_post[b->n_tags] = strdup(p->id);
        b->tag_tag[b->n_tags] = strdup(p->tags[t]);
        b->tag_team[b->n_tags] = strdup(p->team);
        b->tag_created[b->n_tags] = i64_dup(p->created_ms);
        ok = b->tag_post[b->n_tags] && b->tag_tag[b->n_tags] && b->tag_team[b->n_tags] && b->tag_created[b->n_tags];
        b->n_tags++;
    }
    return ok;
}

static bb_status batch_flush(pg_store *s, pg_conn *c, const bb_call *call, post_batch *b, long last_record,
                             bb_error *err)
{
    char *arrays[N_COLS] = { NULL }, *tags[4] = { NULL }, zero[] = "0", plus[] = "1";
    PGresult *r = NULL;
    bb_status st = BB_OK;
    if (b->n == 0) return BB_OK;
    for (int k = 0; k < N_COLS; k++)
        if (!(arrays[k] = pg_array_encode(b->cols[k], b->n))) st = bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    if (st == BB_OK) {
        st = pg_exec(s, c, call, ST_IMPORT_POSTS, (const char *const *)arrays, NULL, NULL, &r, err);
        PQclear(r);
    }
    if (st == BB_OK && b->n_tags) {
        tags[0] = pg_array_encode(b->tag_post, b->n_tags);
        tags[1] = pg_array_encode(b->tag_tag, b->n_tags);
        tags[2] = pg_array_encode(b->tag_team, b->n_tags);
        tags[3] = pg_array_encode(b->tag_created, b->n_tags);
        if (!tags[0] || !tags[1] || !tags[2] || !tags[3]) st = bb_fail(err, BB_INTERNAL, NULL, "out of memory");
        else {
            st = pg_exec(s, c, call, ST_IMPORT_TAGS, (const char *const *)tags, NULL, NULL, &r, err);
            PQclear(r);
        }
    }
    if (st == BB_OK) {
        const char *vals[3] = { arrays[COL_ID], zero, plus };
        st = pg_exec(s, c, call, ST_COUNTS_ADD, vals, NULL, NULL, &r, err);
        PQclear(r);
    }
    if (st != BB_OK) {
        char msg[BB_ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        bb_fail(err, st, NULL, "records %ld-%ld (posts): %.160s; nothing imported", b->first_record, last_record, msg);
    }
    for (int k = 0; k < N_COLS; k++) free(arrays[k]);
    for (int k = 0; k < 4; k++) free(tags[k]);
    batch_clear(b);
    return st;
}

static bb_status import_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    import_ctx *ctx = ud;
    post_batch *b = calloc(1, sizeof *b);
    bb_status st;
    long n;
    (void)attempt;
    if (!b) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    if ((st = pg_exec_simple(s, c, call, NO_STATEMENT_TIMEOUT, err)) != BB_OK) goto done;
    for (n = 1;; n++) {
        bb_record rec;
        char what[96];
        memset(&rec, 0, sizeof rec);
        st = ctx->next(ctx->ud, &rec, err);
        if (st == BB_NOT_FOUND) {
            bb_error_clear(err);
            st = batch_flush(s, c, call, b, n - 1, err);
            break;
        }
        if (st != BB_OK) break;
        if (rec.kind == BB_REC_POST) {
            if (!batch_add(b, &rec.post, n)) { st = bb_fail(err, BB_INTERNAL, NULL, "out of memory"); break; }
            if (b->n == IMPORT_BATCH && (st = batch_flush(s, c, call, b, n, err)) != BB_OK) break;
            continue;
        }
        /* Keep the file's order: posts before this record go in first. */
        if ((st = batch_flush(s, c, call, b, n - 1, err)) != BB_OK) break;
        switch (rec.kind) {
        case BB_REC_TEAM:
            snprintf(what, sizeof what, "team '%s'", rec.team.name);
            st = import_team(s, c, call, &rec.team, err);
            break;
        case BB_REC_KEY:
            snprintf(what, sizeof what, "key '%s'", rec.key.id);
            st = import_key(s, c, call, &rec.key, err);
            break;
        default:
            snprintf(what, sizeof what, "record");
            st = bb_fail(err, BB_INVALID, NULL, "unknown record kind %d", (int)rec.kind);
            break;
        }
        if (st != BB_OK) {
            char msg[BB_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            bb_fail(err, st, NULL, "record %ld (%s): %.160s; nothing imported", n, what, msg);
            break;
        }
    }
done:
    batch_free(b);
    free(b);
    return st;
}

bb_status pg_import_all(pg_store *s, const bb_call *call, bb_record_source next, void *ud, bb_error *err)
{
    import_ctx ctx = { next, ud };
    return pg_run(s, call, &op_import, import_body, &ctx, err);
}
