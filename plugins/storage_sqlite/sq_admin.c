/*
 * plugins/storage_sqlite/sq_admin.c — teams, API keys, export/import and
 * the online backup.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sq.h"

static bb_status step_done(sq_conn *c, sqlite3_stmt *st, bb_error *err, const char *what)
{
    int rc = sqlite3_step(st);
    sq_done(st);
    return rc == SQLITE_DONE ? BB_OK : sq_fail(c, rc, err, what);
}

/* ---- teams ---------------------------------------------------------------- */

static bb_status insert_team(sq_conn *c, const bb_team *t, bb_error *err)
{
    sqlite3_stmt *st = sq_stmt(c, SQ_TEAM_INSERT, err);
    int rc;
    if (!st) return err->code;
    sq_bind_str(st, 1, t->name);
    sqlite3_bind_int64(st, 2, t->created_ms);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        return bb_fail(err, BB_CONFLICT, "team", "team %s already exists", t->name);
    return rc == SQLITE_DONE ? BB_OK : sq_fail(c, rc, err, "insert team");
}

static bb_status body_team_create(sq *s, sq_conn *c, void *ctx, bb_error *err)
{
    (void)s;
    return insert_team(c, ctx, err);
}

bb_status sq_team_create(bb_storage *self, const bb_call *call, const bb_team *team, bb_error *err)
{
    if (!team || !team->name[0]) return bb_fail(err, BB_INVALID, "team", "team name is empty");
    return sq_run(sq_of(self), call, SQ_OP_TEAM_CREATE, SQ_WRITE, body_team_create, (void *)team, err);
}

static void read_team(sqlite3_stmt *st, bb_team *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", sq_text(st, 0));
    t->created_ms = sqlite3_column_int64(st, 1);
}

typedef struct team_ctx { const char *name; bb_team *out; bb_team_fn fn; void *ud; } team_ctx;

static bb_status body_team_get(sq *s, sq_conn *c, void *vctx, bb_error *err)
{
    team_ctx *x = vctx;
    sqlite3_stmt *st = sq_stmt(c, SQ_TEAM_GET, err);
    int rc;
    (void)s;
    if (!st) return err->code;
    sq_bind_str(st, 1, x->name);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) read_team(st, x->out);
    sq_done(st);
    if (rc == SQLITE_DONE) return bb_fail(err, BB_NOT_FOUND, "team", "team %s not found", x->name);
    return rc == SQLITE_ROW ? BB_OK : sq_fail(c, rc, err, "get team");
}

bb_status sq_team_get(bb_storage *self, const bb_call *call, const char *name, bb_team *out, bb_error *err)
{
    team_ctx x = { name, out, NULL, NULL };
    if (!name || !out) return bb_fail(err, BB_INVALID, "team", "team_get needs a name");
    return sq_run(sq_of(self), call, SQ_OP_TEAM_GET, SQ_NO_TX, body_team_get, &x, err);
}

/* Callbacks run inside the read transaction; their errors stop the walk. */
static bb_status body_team_list(sq *s, sq_conn *c, void *vctx, bb_error *err)
{
    team_ctx *x = vctx;
    sqlite3_stmt *st = sq_stmt(c, SQ_TEAM_LIST, err);
    bb_team t;
    int rc;
    (void)s;
    if (!st) return err->code;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bb_status fs;
        read_team(st, &t);
        if ((fs = x->fn(x->ud, &t)) != BB_OK) {
            sq_done(st);
            c->transient = false;
            return bb_fail(err, fs, NULL, "team list stopped by the caller");
        }
    }
    sq_done(st);
    return rc == SQLITE_DONE ? BB_OK : sq_fail(c, rc, err, "list teams");
}

bb_status sq_team_list(bb_storage *self, const bb_call *call, bb_team_fn fn, void *ud, bb_error *err)
{
    team_ctx x = { NULL, NULL, fn, ud };
    if (!fn) return bb_fail(err, BB_INVALID, NULL, "team_list needs a callback");
    return sq_run(sq_of(self), call, SQ_OP_TEAM_LIST, SQ_READ, body_team_list, &x, err);
}

/* ---- keys ------------------------------------------------------------------ */

static bb_status insert_key(sq_conn *c, const bb_api_key *k, bb_error *err)
{
    sqlite3_stmt *st = sq_stmt(c, SQ_KEY_INSERT, err);
    int rc;
    if (!st) return err->code;
    sq_bind_str(st, 1, k->id);
    sq_bind_str(st, 2, k->team);
    sq_bind_str(st, 3, k->prefix);
    sq_bind_str(st, 4, k->label);
    sqlite3_bind_blob(st, 5, k->hash, BB_KEY_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, k->created_ms);
    sqlite3_bind_int64(st, 7, k->revoked_ms);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        return bb_fail(err, BB_CONFLICT, "key", "key %s (or its hash) already exists", k->id);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return bb_fail(err, BB_NOT_FOUND, "team", "team %s does not exist", k->team);
    return rc == SQLITE_DONE ? BB_OK : sq_fail(c, rc, err, "insert key");
}

static bb_status body_key_create(sq *s, sq_conn *c, void *ctx, bb_error *err)
{
    (void)s;
    return insert_key(c, ctx, err);
}

bb_status sq_key_create(bb_storage *self, const bb_call *call, const bb_api_key *key, bb_error *err)
{
    if (!key || !key->id[0] || !key->team[0]) return bb_fail(err, BB_INVALID, "key", "key needs an id and a team");
    return sq_run(sq_of(self), call, SQ_OP_KEY_CREATE, SQ_WRITE, body_key_create, (void *)key, err);
}

static void read_key(sqlite3_stmt *st, bb_api_key *k)
{
    const void *h = sqlite3_column_blob(st, 4);
    memset(k, 0, sizeof *k);
    snprintf(k->id, sizeof k->id, "%s", sq_text(st, 0));
    snprintf(k->team, sizeof k->team, "%s", sq_text(st, 1));
    snprintf(k->prefix, sizeof k->prefix, "%s", sq_text(st, 2));
    snprintf(k->label, sizeof k->label, "%s", sq_text(st, 3));
    if (h && sqlite3_column_bytes(st, 4) == BB_KEY_HASH_LEN) memcpy(k->hash, h, BB_KEY_HASH_LEN);
    k->created_ms = sqlite3_column_int64(st, 5);
    k->revoked_ms = sqlite3_column_int64(st, 6);
}

typedef struct key_ctx {
    const uint8_t *hash;
    const char    *team, *id;
    int64_t        when_ms;
    bb_api_key    *out;
    bb_key_fn      fn;
    void          *ud;
} key_ctx;

static bb_status body_key_by_hash(sq *s, sq_conn *c, void *vctx, bb_error *err)
{
    key_ctx *x = vctx;
    sqlite3_stmt *st = sq_stmt(c, SQ_KEY_BY_HASH, err);
    int rc;
    (void)s;
    if (!st) return err->code;
    sqlite3_bind_blob(st, 1, x->hash, BB_KEY_HASH_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) read_key(st, x->out);
    sq_done(st);
    if (rc == SQLITE_DONE) return bb_fail(err, BB_NOT_FOUND, "key", "unknown key");
    return rc == SQLITE_ROW ? BB_OK : sq_fail(c, rc, err, "key by hash");
}

bb_status sq_key_by_hash(bb_storage *self, const bb_call *call, const uint8_t hash[BB_KEY_HASH_LEN],
                         bb_api_key *out, bb_error *err)
{
    key_ctx x = { hash, NULL, NULL, 0, out, NULL, NULL };
    if (!hash || !out) return bb_fail(err, BB_INVALID, "key", "key_by_hash needs a hash");
    return sq_run(sq_of(self), call, SQ_OP_KEY_BY_HASH, SQ_NO_TX, body_key_by_hash, &x, err);
}

static bb_status body_key_list(sq *s, sq_conn *c, void *vctx, bb_error *err)
{
    key_ctx *x = vctx;
    sqlite3_stmt *st = sq_stmt(c, SQ_KEY_LIST, err);
    bb_api_key k;
    int rc;
    (void)s;
    if (!st) return err->code;
    sq_bind_str(st, 1, x->team);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bb_status fs;
        read_key(st, &k);
        if ((fs = x->fn(x->ud, &k)) != BB_OK) {
            sq_done(st);
            c->transient = false;
            return bb_fail(err, fs, NULL, "key list stopped by the caller");
        }
    }
    sq_done(st);
    return rc == SQLITE_DONE ? BB_OK : sq_fail(c, rc, err, "list keys");
}

bb_status sq_key_list(bb_storage *self, const bb_call *call, const char *team, bb_key_fn fn, void *ud,
                      bb_error *err)
{
    key_ctx x = { NULL, team, NULL, 0, NULL, fn, ud };
    if (!team || !fn) return bb_fail(err, BB_INVALID, "team", "key_list needs a team and a callback");
    return sq_run(sq_of(self), call, SQ_OP_KEY_LIST, SQ_READ, body_key_list, &x, err);
}

static bb_status body_key_revoke(sq *s, sq_conn *c, void *vctx, bb_error *err)
{
    key_ctx *x = vctx;
    sqlite3_stmt *st = sq_stmt(c, SQ_KEY_GET, err);
    int rc;
    (void)s;
    if (!st) return err->code;
    sq_bind_str(st, 1, x->id);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc == SQLITE_DONE) return bb_fail(err, BB_NOT_FOUND, "key", "key %s not found", x->id);
    if (rc != SQLITE_ROW) return sq_fail(c, rc, err, "get key");
    if (!(st = sq_stmt(c, SQ_KEY_REVOKE, err))) return err->code;   /* already revoked: keeps its time */
    sq_bind_str(st, 1, x->id);
    sqlite3_bind_int64(st, 2, x->when_ms);
    return step_done(c, st, err, "revoke key");
}

bb_status sq_key_revoke(bb_storage *self, const bb_call *call, const char *id, int64_t when_ms, bb_error *err)
{
    key_ctx x = { NULL, NULL, id, when_ms > 0 ? when_ms : sq_of(self)->api->wall_ms(), NULL, NULL, NULL };
    if (!id) return bb_fail(err, BB_INVALID, "key", "key_revoke needs an id");
    return sq_run(sq_of(self), call, SQ_OP_KEY_REVOKE, SQ_WRITE, body_key_revoke, &x, err);
}

/* ---- export / import ---------------------------------------------------------- */

typedef struct export_ctx { bb_record_fn fn; void *ud; long emitted; } export_ctx;

static bb_status emit(sq_conn *c, export_ctx *x, const bb_record *rec, bb_error *err)
{
    bb_status fs = x->fn(x->ud, rec);
    x->emitted++;
    if (fs != BB_OK) {
        c->transient = false;
        return bb_fail(err, fs, NULL, "export stopped: the writer failed");
    }
    return BB_OK;
}

static bb_status body_export(sq *s, sq_conn *c, void *vctx, bb_error *err)
{
    export_ctx *x = vctx;
    sqlite3_stmt *st;
    bb_record rec;
    bb_status rs = BB_OK;
    int rc;
    (void)s;
    if (!(st = sq_stmt(c, SQ_EXPORT_TEAMS, err))) return err->code;
    while (rs == BB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&rec, 0, sizeof rec);
        rec.kind = BB_REC_TEAM;
        read_team(st, &rec.team);
        rs = emit(c, x, &rec, err);
    }
    sq_done(st);
    if (rs != BB_OK) return rs;
    if (rc != SQLITE_DONE) return sq_fail(c, rc, err, "export teams");
    if (!(st = sq_stmt(c, SQ_EXPORT_KEYS, err))) return err->code;
    while (rs == BB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&rec, 0, sizeof rec);
        rec.kind = BB_REC_KEY;
        read_key(st, &rec.key);
        rs = emit(c, x, &rec, err);
    }
    sq_done(st);
    if (rs != BB_OK) return rs;
    if (rc != SQLITE_DONE) return sq_fail(c, rc, err, "export keys");
    if (!(st = sq_stmt(c, SQ_EXPORT_POSTS, err))) return err->code;
    while (rs == BB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&rec, 0, sizeof rec);
        rec.kind = BB_REC_POST;
        if ((rs = sq_read_post(c, st, &rec.post, err)) != BB_OK) break;
        rs = emit(c, x, &rec, err);
        bb_post_clear(&rec.post);
    }
    sq_done(st);
    if (x->emitted) c->transient = false;   /* never replay records the writer has seen */
    if (rs != BB_OK) return rs;
    return rc == SQLITE_DONE ? BB_OK : sq_fail(c, rc, err, "export posts");
}

bb_status sq_export_all(bb_storage *self, const bb_call *call, bb_record_fn fn, void *ud, bb_error *err)
{
    export_ctx x = { fn, ud, 0 };
    if (!fn) return bb_fail(err, BB_INVALID, NULL, "export needs a callback");
    return sq_run(sq_of(self), call, SQ_OP_EXPORT, SQ_READ, body_export, &x, err);
}

typedef struct import_ctx { bb_record_source next; void *ud; long n; } import_ctx;

static bb_status body_import(sq *s, sq_conn *c, void *vctx, bb_error *err)
{
    import_ctx *x = vctx;
    bb_status rs;
    (void)s;
    for (;;) {
        bb_record rec;
        memset(&rec, 0, sizeof rec);
        bb_error_clear(err);
        rs = x->next(x->ud, &rec, err);
        if (rs == BB_NOT_FOUND) { bb_error_clear(err); rs = BB_OK; break; }
        if (rs != BB_OK) { if (!err->code) bb_fail(err, rs, NULL, "record %ld: source failed", x->n + 1); break; }
        x->n++;
        switch (rec.kind) {
        case BB_REC_TEAM: rs = insert_team(c, &rec.team, err); break;
        case BB_REC_KEY:  rs = insert_key(c, &rec.key, err); break;
        case BB_REC_POST:
            if (!rec.post.author || !rec.post.id[0] || !rec.post.team[0])
                rs = bb_fail(err, BB_INVALID, NULL, "post without id, team or author");
            else
                rs = sq_insert_post(c, &rec.post, err);
            break;
        default:          rs = bb_fail(err, BB_INVALID, NULL, "unknown record kind %d", (int)rec.kind); break;
        }
        if (rs != BB_OK) {
            char msg[BB_ERROR_MSG_MAX], field[BB_ERROR_FIELD_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            snprintf(field, sizeof field, "%s", err->field);
            /* A record naming a missing team is bad input, not "end of records". */
            if (rs == BB_NOT_FOUND) rs = BB_INVALID;
            bb_fail(err, rs, field, "record %ld: %s", x->n, msg);
            break;
        }
    }
    /* The source cannot be rewound: a busy database after the first record is final. */
    if (x->n > 0) c->transient = false;
    return rs;
}

bb_status sq_import_all(bb_storage *self, const bb_call *call, bb_record_source next, void *ud, bb_error *err)
{
    import_ctx x = { next, ud, 0 };
    bb_status st;
    if (!next) return bb_fail(err, BB_INVALID, NULL, "import needs a source");
    st = sq_run(sq_of(self), call, SQ_OP_IMPORT, SQ_WRITE_ALONE, body_import, &x, err);
    if (st == BB_OK)
        sq_of(self)->api->log(sq_of(self)->host, BB_LOG_INFO, call, "imported %ld records", x.n);
    return st;
}

/* ---- backup --------------------------------------------------------------------- */

typedef struct backup_ctx { const char *path; const bb_call *call; } backup_ctx;

static bb_status body_backup(sq *s, sq_conn *c, void *vctx, bb_error *err)
{
    backup_ctx *x = vctx;
    char tmp[4096];
    sqlite3 *dst = NULL;
    sqlite3_backup *bk;
    int rc;
    bb_status rs = BB_OK;
    /* Write beside the target and rename: a reader of FILE never sees half a copy. */
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%d", x->path, (int)getpid()) >= sizeof tmp)
        return bb_fail(err, BB_INVALID, "path", "backup path is too long");
    unlink(tmp);
    rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        rs = bb_fail(err, BB_INVALID, "path", "cannot create %s: %s", tmp, dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
        sqlite3_close(dst);
        return rs;
    }
    if (!(bk = sqlite3_backup_init(dst, "main", c->db, "main"))) {
        rs = bb_fail(err, BB_INTERNAL, NULL, "backup: %s", sqlite3_errmsg(dst));
        sqlite3_close(dst);
        unlink(tmp);
        return rs;
    }
    /* All pages in one step: one read transaction on the source, so the copy
     * is a consistent snapshot even while other connections write. */
    for (int tries = 0;; tries++) {
        rc = sqlite3_backup_step(bk, -1);
        if (rc == SQLITE_DONE) break;
        if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && tries < 100 &&
            !(x->call && x->call->deadline_ms > 0 && s->api->now_ms() > x->call->deadline_ms)) {
            struct timespec ts = { 0, 20 * 1000000L };
            nanosleep(&ts, NULL);   /* bounded: 100 tries x 20 ms, or the deadline */
            continue;
        }
        rs = bb_fail(err, BB_UNAVAILABLE, NULL, "backup: %s", sqlite3_errstr(rc));
        break;
    }
    sqlite3_backup_finish(bk);
    if (rs == BB_OK && (rc = sqlite3_errcode(dst)) != SQLITE_OK)
        rs = bb_fail(err, BB_UNAVAILABLE, NULL, "backup: %s", sqlite3_errmsg(dst));
    /* Leave the copy self-contained: no -wal file needed beside it. */
    if (rs == BB_OK) sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
    if (sqlite3_close(dst) != SQLITE_OK && rs == BB_OK) rs = bb_fail(err, BB_UNAVAILABLE, NULL, "backup: close failed");
    if (rs == BB_OK && rename(tmp, x->path) != 0)
        rs = bb_fail(err, BB_INVALID, "path", "cannot rename %s to %s: %s", tmp, x->path, strerror(errno));
    if (rs != BB_OK) unlink(tmp);
    return rs;
}

bb_status sq_backup(bb_storage *self, const bb_call *call, const char *path, bb_error *err)
{
    backup_ctx x = { path, call };
    if (!path || !path[0]) return bb_fail(err, BB_INVALID, "path", "backup needs a file name");
    return sq_run(sq_of(self), call, SQ_OP_BACKUP, SQ_NO_TX, body_backup, &x, err);
}
