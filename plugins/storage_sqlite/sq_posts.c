/*
 * plugins/storage_sqlite/sq_posts.c — posts: create (with idempotency),
 * get, list with filters, soft delete; distinct authors/tags; purge.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sq.h"

enum { DIM_ALL = 0, DIM_AUTHOR = 1, DIM_TAG = 2, DIM_THREAD = 3 };

static char *dup_or_null(const char *s, bool *oom)
{
    char *d = strdup(s ? s : "");
    if (!d) *oom = true;
    return d;
}

/* Deep copy (the caller's strings are not ours to keep). */
static bb_status copy_post(const bb_post *in, bb_post *out, bb_error *err)
{
    bool oom = false;
    *out = *in;
    out->author = dup_or_null(in->author, &oom);
    out->content = dup_or_null(in->content, &oom);
    out->tags = NULL;
    out->n_tags = 0;
    if (in->n_tags) {
        out->tags = calloc(in->n_tags, sizeof *out->tags);
        if (!out->tags) oom = true;
        for (size_t i = 0; out->tags && i < in->n_tags; i++, out->n_tags++)
            out->tags[i] = dup_or_null(in->tags[i], &oom);
    }
    if (oom) { bb_post_clear(out); return bb_fail(err, BB_INTERNAL, NULL, "out of memory"); }
    return BB_OK;
}

static bb_status step_done(sq_conn *c, sqlite3_stmt *st, bb_error *err, const char *what)
{
    int rc = sqlite3_step(st);
    sq_done(st);
    return rc == SQLITE_DONE ? BB_OK : sq_fail(c, rc, err, what);
}

static bb_status bump(sq_conn *c, const char *team, int dim, const char *value, int delta, bb_error *err)
{
    sqlite3_stmt *st = sq_stmt(c, SQ_COUNT_BUMP, err);
    if (!st) return err->code;
    sq_bind_str(st, 1, team);
    sqlite3_bind_int(st, 2, dim);
    sq_bind_str(st, 3, value);
    sqlite3_bind_int(st, 4, delta);
    return step_done(c, st, err, "count");
}

/* Tags travel with the post row as "<bytes>:<tag>" repeated, so reading a
 * page costs one row per post; post_tags stays the queryable copy.  A tag
 * repeated within a post is kept once (it counts once). */
static bool tag_seen_before(const bb_post *p, size_t i)
{
    for (size_t j = 0; j < i; j++) if (strcmp(p->tags[i], p->tags[j]) == 0) return true;
    return false;
}

static char *pack_tags(const bb_post *p)
{
    size_t len = 1, at = 0;
    char *out;
    for (size_t i = 0; i < p->n_tags; i++) len += strlen(p->tags[i]) + 24;
    if (!(out = malloc(len))) return NULL;
    out[0] = '\0';
    for (size_t i = 0; i < p->n_tags; i++)
        if (!tag_seen_before(p, i))
            at += (size_t)snprintf(out + at, len - at, "%zu:%s", strlen(p->tags[i]), p->tags[i]);
    return out;
}

static bool unpack_tags(const char *in, size_t in_len, bb_post *out)
{
    size_t at = 0, cap = 0;
    while (at < in_len) {
        char *end;
        unsigned long n = strtoul(in + at, &end, 10);
        size_t start = (size_t)(end - in) + 1;
        if (end == in + at || *end != ':' || n > in_len - start) return false;   /* corrupt: caller falls back */
        if (out->n_tags == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            char **nt = realloc(out->tags, ncap * sizeof *nt);
            if (!nt) return false;
            out->tags = nt;
            cap = ncap;
        }
        if (!(out->tags[out->n_tags] = strndup(in + start, n))) return false;
        out->n_tags++;
        at = start + n;
    }
    return true;
}

bb_status sq_insert_post(sq_conn *c, const bb_post *p, bb_error *err)
{
    sqlite3_stmt *st = sq_stmt(c, SQ_POST_INSERT, err);
    bool live = p->deleted_ms == 0;
    char *packed;
    int rc;
    bb_status rs;
    if (!st) return err->code;
    if (!(packed = pack_tags(p))) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    sq_bind_str(st, 1, p->id);
    sq_bind_str(st, 2, p->team);
    sq_bind_str(st, 3, p->author);
    sq_bind_str(st, 4, p->content ? p->content : "");
    sq_bind_str(st, 5, p->parent_id[0] ? p->parent_id : NULL);
    sq_bind_str(st, 6, p->thread_id[0] ? p->thread_id : p->id);
    sqlite3_bind_int64(st, 7, p->created_ms);
    sqlite3_bind_int64(st, 8, p->deleted_ms);
    sqlite3_bind_text(st, 9, packed, -1, free);   /* SQLite frees it */
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
            return bb_fail(err, BB_CONFLICT, "postId", "post %s already exists", p->id);
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return bb_fail(err, BB_NOT_FOUND, "team", "team %s does not exist", p->team);
        if (rc == SQLITE_CONSTRAINT_NOTNULL)
            return bb_fail(err, BB_INVALID, NULL, "post %s lacks a required field", p->id);
        return sq_fail(c, rc, err, "insert post");
    }
    for (size_t i = 0; i < p->n_tags; i++) {
        if (tag_seen_before(p, i)) continue;   /* a tag counts once per post */
        if (!(st = sq_stmt(c, SQ_TAG_INSERT, err))) return err->code;
        sq_bind_str(st, 1, p->id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        sq_bind_str(st, 3, p->team);
        sq_bind_str(st, 4, p->tags[i]);
        sqlite3_bind_int64(st, 5, p->created_ms);
        sqlite3_bind_int(st, 6, live);
        if ((rs = step_done(c, st, err, "insert tag")) != BB_OK) return rs;
        if (live && (rs = bump(c, p->team, DIM_TAG, p->tags[i], 1, err)) != BB_OK) return rs;
    }
    if (!live) return BB_OK;
    if ((rs = bump(c, p->team, DIM_ALL, "", 1, err)) != BB_OK) return rs;
    if ((rs = bump(c, p->team, DIM_AUTHOR, p->author, 1, err)) != BB_OK) return rs;
    return bump(c, p->team, DIM_THREAD, p->thread_id[0] ? p->thread_id : p->id, 1, err);
}

/* A text column into a fixed field, cut to fit (ids are checked on the way
 * in; this only bounds a corrupt row).  Pages read ten rows per request:
 * snprintf("%s") here showed in profiles. */
static void copy_field(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const char *s = sq_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (n >= size) n = size - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

bb_status sq_read_post(sq_conn *c, sqlite3_stmt *st, bb_post *out, bb_error *err)
{
    sqlite3_stmt *tags;
    bool oom = false;
    int rc;
    size_t cap = 0;
    memset(out, 0, sizeof *out);
    copy_field(out->id, sizeof out->id, st, 0);
    copy_field(out->team, sizeof out->team, st, 1);
    out->author = dup_or_null(sq_text(st, 2), &oom);
    out->content = dup_or_null(sq_text(st, 3), &oom);
    copy_field(out->parent_id, sizeof out->parent_id, st, 4);
    copy_field(out->thread_id, sizeof out->thread_id, st, 5);
    out->created_ms = sqlite3_column_int64(st, 6);
    out->deleted_ms = sqlite3_column_int64(st, 7);
    if (oom) goto nomem;
    if (sqlite3_column_type(st, 8) == SQLITE_TEXT) {
        if (unpack_tags((const char *)sqlite3_column_text(st, 8), (size_t)sqlite3_column_bytes(st, 8), out))
            return BB_OK;
        bb_strv_free(out->tags, out->n_tags);   /* unreadable: fall back to post_tags */
        out->tags = NULL;
        out->n_tags = 0;
    }
    /* Rows written before migration 4 have no packed copy. */
    if (!(tags = sq_stmt(c, SQ_POST_TAGS, err))) { bb_post_clear(out); return err->code; }
    sq_bind_str(tags, 1, out->id);
    while ((rc = sqlite3_step(tags)) == SQLITE_ROW) {
        if (out->n_tags == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            char **nt = realloc(out->tags, ncap * sizeof *nt);
            if (!nt) { sq_done(tags); goto nomem; }
            out->tags = nt;
            cap = ncap;
        }
        if (!(out->tags[out->n_tags] = strdup(sq_text(tags, 0)))) { sq_done(tags); goto nomem; }
        out->n_tags++;
    }
    sq_done(tags);
    if (rc != SQLITE_DONE) { bb_post_clear(out); return sq_fail(c, rc, err, "read tags"); }
    return BB_OK;
nomem:
    bb_post_clear(out);
    return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
}

/* Run a one-row post query: NOT_FOUND when it yields nothing. */
static bb_status fetch_one(sq_conn *c, sqlite3_stmt *st, bb_post *out, bb_error *err, const char *id)
{
    int rc = sqlite3_step(st);
    bb_status rs;
    if (rc == SQLITE_DONE) { sq_done(st); return bb_fail(err, BB_NOT_FOUND, "postId", "post %s not found", id); }
    if (rc != SQLITE_ROW) { sq_done(st); return sq_fail(c, rc, err, "get post"); }
    rs = sq_read_post(c, st, out, err);
    sq_done(st);
    return rs;
}

/* ---- create -------------------------------------------------------------- */

typedef struct create_ctx {
    const bb_post        *post;
    const bb_idempotency *idem;
    bb_post              *out;
    bool                 *replayed;
    int64_t               now_ms;
} create_ctx;

static bb_status body_create(sq *s, sq_conn *c, void *vctx, bb_error *err)
{
    create_ctx *x = vctx;
    bb_post p = *x->post;
    sqlite3_stmt *st;
    bb_status rs;
    int rc;
    (void)s;
    /* Repeatable (group commit may run it again): drop a previous run's copy. */
    bb_post_clear(x->out);
    memset(x->out, 0, sizeof *x->out);
    *x->replayed = false;
    if (x->idem) {
        if (!(st = sq_stmt(c, SQ_IDEM_GET, err))) return err->code;
        sq_bind_str(st, 1, p.team);
        sq_bind_str(st, 2, x->idem->key);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_int64(st, 2) > x->now_ms) {
            bool same = sqlite3_column_bytes(st, 0) == 32 &&
                        memcmp(sqlite3_column_blob(st, 0), x->idem->request_hash, 32) == 0;
            char orig[BB_ID_MAX];
            snprintf(orig, sizeof orig, "%s", sq_text(st, 1));
            sq_done(st);
            if (!same)
                return bb_fail(err, BB_CONFLICT, "Idempotency-Key",
                               "idempotency key was already used with a different request");
            if (!(st = sq_stmt(c, SQ_POST_GET_ANY, err))) return err->code;
            sq_bind_str(st, 1, orig);
            if ((rs = fetch_one(c, st, x->out, err, orig)) != BB_OK) return rs;
            *x->replayed = true;
            return BB_OK;
        }
        sq_done(st);
        if (rc == SQLITE_ROW) {   /* expired: the key is free again */
            if (!(st = sq_stmt(c, SQ_IDEM_DELETE, err))) return err->code;
            sq_bind_str(st, 1, p.team);
            sq_bind_str(st, 2, x->idem->key);
            if ((rs = step_done(c, st, err, "idempotency")) != BB_OK) return rs;
        } else if (rc != SQLITE_DONE) {
            return sq_fail(c, rc, err, "idempotency");
        }
    }
    if (p.parent_id[0]) {
        if (!(st = sq_stmt(c, SQ_POST_PARENT, err))) return err->code;
        sq_bind_str(st, 1, p.parent_id);
        sq_bind_str(st, 2, p.team);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) snprintf(p.thread_id, sizeof p.thread_id, "%s", sq_text(st, 0));
        sq_done(st);
        if (rc == SQLITE_DONE)
            return bb_fail(err, BB_NOT_FOUND, "parentPostId", "parent post %s not found", p.parent_id);
        if (rc != SQLITE_ROW) return sq_fail(c, rc, err, "parent");
    } else {
        snprintf(p.thread_id, sizeof p.thread_id, "%s", p.id);
    }
    p.deleted_ms = 0;
    if ((rs = sq_insert_post(c, &p, err)) != BB_OK) return rs;
    if (x->idem) {
        if (!(st = sq_stmt(c, SQ_IDEM_INSERT, err))) return err->code;
        sq_bind_str(st, 1, p.team);
        sq_bind_str(st, 2, x->idem->key);
        sqlite3_bind_blob(st, 3, x->idem->request_hash, 32, SQLITE_STATIC);
        sq_bind_str(st, 4, p.id);
        sqlite3_bind_int64(st, 5, x->idem->expires_ms);
        if ((rs = step_done(c, st, err, "idempotency")) != BB_OK) return rs;
    }
    return copy_post(&p, x->out, err);
}

bb_status sq_post_create(bb_storage *self, const bb_call *call, const bb_post *post,
                         const bb_idempotency *idem, bb_post *out, bool *replayed, bb_error *err)
{
    sq *s = sq_of(self);
    bool dummy;
    create_ctx x = { post, idem, out, replayed ? replayed : &dummy, s->api->wall_ms() };
    bb_status st;
    if (!post || !out || !post->id[0] || !post->team[0] || !post->author)
        return bb_fail(err, BB_INVALID, NULL, "post_create needs id, team and author");
    if (idem && (!idem->key || !idem->key[0]))
        return bb_fail(err, BB_INVALID, "Idempotency-Key", "empty idempotency key");
    memset(out, 0, sizeof *out);
    st = sq_run(s, call, SQ_OP_POST_CREATE, SQ_WRITE, body_create, &x, err);
    if (st != BB_OK) {   /* e.g. a replay that ran, then its batch's COMMIT failed */
        bb_post_clear(out);
        *x.replayed = false;
    }
    return st;
}

/* ---- get / delete ---------------------------------------------------------- */

typedef struct get_ctx { const char *team, *id; bb_post *out; int64_t when_ms; } get_ctx;

static bb_status body_get(sq *s, sq_conn *c, void *vctx, bb_error *err)
{
    get_ctx *x = vctx;
    sqlite3_stmt *st = sq_stmt(c, SQ_POST_GET, err);
    (void)s;
    if (!st) return err->code;
    sq_bind_str(st, 1, x->id);
    sq_bind_str(st, 2, x->team);
    return fetch_one(c, st, x->out, err, x->id);
}

bb_status sq_post_get(bb_storage *self, const bb_call *call, const char *team, const char *id,
                      bb_post *out, bb_error *err)
{
    get_ctx x = { team, id, out, 0 };
    if (!team || !id || !out) return bb_fail(err, BB_INVALID, NULL, "post_get needs team and id");
    memset(out, 0, sizeof *out);
    return sq_run(sq_of(self), call, SQ_OP_POST_GET, SQ_NO_TX, body_get, &x, err);
}

static bb_status body_delete(sq *s, sq_conn *c, void *vctx, bb_error *err)
{
    get_ctx *x = vctx;
    sqlite3_stmt *st = sq_stmt(c, SQ_POST_DELETE, err);
    char *author, thread[BB_ID_MAX];
    bb_status rs;
    int rc;
    (void)s;
    if (!st) return err->code;
    sq_bind_str(st, 1, x->id);
    sq_bind_str(st, 2, x->team);
    sqlite3_bind_int64(st, 3, x->when_ms);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sq_done(st);
        if (rc == SQLITE_DONE) return bb_fail(err, BB_NOT_FOUND, "postId", "post %s not found", x->id);
        return sq_fail(c, rc, err, "delete post");
    }
    author = strdup(sq_text(st, 0));
    snprintf(thread, sizeof thread, "%s", sq_text(st, 1));
    sq_done(st);
    if (!author) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    rs = bump(c, x->team, DIM_ALL, "", -1, err);
    if (rs == BB_OK) rs = bump(c, x->team, DIM_AUTHOR, author, -1, err);
    if (rs == BB_OK) rs = bump(c, x->team, DIM_THREAD, thread, -1, err);
    free(author);
    if (rs != BB_OK) return rs;
    if (!(st = sq_stmt(c, SQ_TAGS_UNCOUNT, err))) return err->code;
    sq_bind_str(st, 1, x->team);
    sq_bind_str(st, 2, x->id);
    if ((rs = step_done(c, st, err, "uncount tags")) != BB_OK) return rs;
    if (!(st = sq_stmt(c, SQ_TAGS_DEAD, err))) return err->code;
    sq_bind_str(st, 1, x->id);
    return step_done(c, st, err, "delete tags");
}

bb_status sq_post_delete(bb_storage *self, const bb_call *call, const char *team, const char *id,
                         int64_t when_ms, bb_error *err)
{
    get_ctx x = { team, id, NULL, when_ms > 0 ? when_ms : sq_of(self)->api->wall_ms() };
    if (!team || !id) return bb_fail(err, BB_INVALID, NULL, "post_delete needs team and id");
    return sq_run(sq_of(self), call, SQ_OP_POST_DELETE, SQ_WRITE, body_delete, &x, err);
}

/* ---- list ------------------------------------------------------------------ */

/* Parameters by number: ?1 team ?2 author ?3 tag ?4 thread ?5 mentions ?6 limit ?7 offset. */
static void build_list_sql(int f, bool count, char *buf, size_t len)
{
    const char *cols = SQ_POST_COLS;
    const char *dir = (f & SQ_F_ASC) ? "ASC" : "DESC";
    size_t n;
    if (f & SQ_F_TAG)
        n = (size_t)snprintf(buf, len, "SELECT %s FROM post_tags t JOIN posts p ON p.id = t.post_id"
                             " WHERE t.team = ?1 AND t.tag = ?3 AND t.live = 1 AND p.deleted_ms = 0",
                             count ? "count(*)" : cols);
    else
        n = (size_t)snprintf(buf, len, "SELECT %s FROM posts p WHERE p.team = ?1 AND p.deleted_ms = 0",
                             count ? "count(*)" : cols);
    if (f & SQ_F_AUTHOR) n += (size_t)snprintf(buf + n, len - n, " AND p.author = ?2");
    if (f & SQ_F_THREAD) n += (size_t)snprintf(buf + n, len - n, " AND p.thread_id = ?4");
    if (f & SQ_F_MENTIONS)
        n += (size_t)snprintf(buf + n, len - n,
                              " AND (instr(p.content, '@' || ?5) > 0 OR p.parent_id IN"
                              " (SELECT m.id FROM posts m WHERE m.team = ?1 AND m.author = ?5 AND m.deleted_ms = 0))");
    if (count) return;
    if (f & SQ_F_TAG)
        snprintf(buf + n, len - n, " ORDER BY t.created_ms %s, t.post_id %s LIMIT ?6 OFFSET ?7", dir, dir);
    else
        snprintf(buf + n, len - n, " ORDER BY p.created_ms %s, p.id %s LIMIT ?6 OFFSET ?7", dir, dir);
}

static void bind_filters(sqlite3_stmt *st, const bb_post_query *q)
{
    sq_bind_str(st, 1, q->team);
    if (q->author) sq_bind_str(st, 2, q->author);
    if (q->tag) sq_bind_str(st, 3, q->tag);
    if (q->thread_id) sq_bind_str(st, 4, q->thread_id);
    if (q->mentions_of) sq_bind_str(st, 5, q->mentions_of);
}

typedef struct list_ctx { const bb_post_query *q; int f; bb_post_page *out; } list_ctx;

/* totalCount: one counter row when a single filter (or none) is used. */
static bb_status list_total(sq_conn *c, const bb_post_query *q, int f, int64_t *total, bb_error *err)
{
    int filters = f & (SQ_F_AUTHOR | SQ_F_TAG | SQ_F_THREAD | SQ_F_MENTIONS);
    sqlite3_stmt *st;
    int rc;
    if (filters == 0 || filters == SQ_F_AUTHOR || filters == SQ_F_TAG || filters == SQ_F_THREAD) {
        int dim = filters == SQ_F_AUTHOR ? DIM_AUTHOR : filters == SQ_F_TAG ? DIM_TAG
                : filters == SQ_F_THREAD ? DIM_THREAD : DIM_ALL;
        const char *value = filters == SQ_F_AUTHOR ? q->author : filters == SQ_F_TAG ? q->tag
                          : filters == SQ_F_THREAD ? q->thread_id : "";
        if (!(st = sq_stmt(c, SQ_COUNT_GET, err))) return err->code;
        sq_bind_str(st, 1, q->team);
        sqlite3_bind_int(st, 2, dim);
        sq_bind_str(st, 3, value);
    } else {
        char sql[1024] = "";
        if (!c->count[filters]) build_list_sql(filters, true, sql, sizeof sql);   /* prepared once per connection */
        if (!(st = sq_prepare_cached(c, &c->count[filters], sql, err))) return err->code;
        bind_filters(st, q);
    }
    rc = sqlite3_step(st);
    *total = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sq_done(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? BB_OK : sq_fail(c, rc, err, "count posts");
}

static bb_status body_list(sq *s, sq_conn *c, void *vctx, bb_error *err)
{
    list_ctx *x = vctx;
    const bb_post_query *q = x->q;
    bb_post_page *pg = x->out;
    sqlite3_stmt *st;
    char sql[1024] = "";
    bb_status rs;
    int rc;
    (void)s;
    bb_post_page_clear(pg);
    if ((rs = list_total(c, q, x->f, &pg->total, err)) != BB_OK) return rs;
    if (q->offset >= pg->total) return BB_OK;   /* past the end: nothing to fetch */
    if (!c->page[x->f]) build_list_sql(x->f, false, sql, sizeof sql);   /* prepared once per connection */
    if (!(st = sq_prepare_cached(c, &c->page[x->f], sql, err))) return err->code;
    if (!(pg->posts = calloc((size_t)q->limit, sizeof *pg->posts))) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    bind_filters(st, q);
    sqlite3_bind_int(st, 6, q->limit);
    sqlite3_bind_int64(st, 7, q->offset);
    while (pg->n < (size_t)q->limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rs = sq_read_post(c, st, &pg->posts[pg->n], err)) != BB_OK) { sq_done(st); return rs; }
        pg->n++;
    }
    sq_done(st);
    if (pg->n < (size_t)q->limit && rc != SQLITE_DONE) return sq_fail(c, rc, err, "list posts");
    return BB_OK;
}

bb_status sq_post_list(bb_storage *self, const bb_call *call, const bb_post_query *q,
                       bb_post_page *out, bb_error *err)
{
    list_ctx x = { q, 0, out };
    bb_status st;
    if (!q || !out || !q->team) return bb_fail(err, BB_INVALID, NULL, "post_list needs a team");
    memset(out, 0, sizeof *out);
    if (q->limit < 1 || q->limit > 100) return bb_fail(err, BB_INVALID, "limit", "limit must be 1-100");
    if (q->offset < 0) return bb_fail(err, BB_INVALID, "offset", "offset must be >= 0");
    x.f = (q->author ? SQ_F_AUTHOR : 0) | (q->tag ? SQ_F_TAG : 0) | (q->thread_id ? SQ_F_THREAD : 0) |
          (q->mentions_of ? SQ_F_MENTIONS : 0) | (q->ascending ? SQ_F_ASC : 0);
    /* One read transaction: the page and its total come from one snapshot. */
    st = sq_run(sq_of(self), call, SQ_OP_POST_LIST, SQ_READ, body_list, &x, err);
    if (st != BB_OK) bb_post_page_clear(out);
    return st;
}

/* ---- distinct / purge -------------------------------------------------------- */

typedef struct distinct_ctx {
    const char *team, *prefix;
    int dim, limit;
    char ***out;
    size_t *n;
} distinct_ctx;

static bb_status body_distinct(sq *s, sq_conn *c, void *vctx, bb_error *err)
{
    distinct_ctx *x = vctx;
    sqlite3_stmt *st = sq_stmt(c, SQ_DISTINCT, err);
    char **v;
    int rc;
    (void)s;
    if (!st) return err->code;
    if (!(v = calloc((size_t)x->limit, sizeof *v))) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    *x->out = v;
    *x->n = 0;
    sq_bind_str(st, 1, x->team);
    sqlite3_bind_int(st, 2, x->dim);
    sq_bind_str(st, 3, x->prefix);
    sqlite3_bind_int(st, 4, x->limit);
    while (*x->n < (size_t)x->limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!(v[*x->n] = strdup(sq_text(st, 0)))) { sq_done(st); return bb_fail(err, BB_INTERNAL, NULL, "out of memory"); }
        (*x->n)++;
    }
    sq_done(st);
    if (*x->n < (size_t)x->limit && rc != SQLITE_DONE) return sq_fail(c, rc, err, "distinct");
    return BB_OK;
}

bb_status sq_distinct(bb_storage *self, const bb_call *call, const char *team, bb_distinct_field field,
                      const char *prefix, int limit, char ***out, size_t *n_out, bb_error *err)
{
    distinct_ctx x = { team, prefix ? prefix : "", field == BB_DISTINCT_TAG ? DIM_TAG : DIM_AUTHOR,
                       limit, out, n_out };
    bb_status st;
    if (!out || !n_out) return bb_fail(err, BB_INVALID, NULL, "distinct needs outputs");
    *out = NULL;
    *n_out = 0;
    if (!team) return bb_fail(err, BB_INVALID, NULL, "distinct needs a team");
    if (field != BB_DISTINCT_TAG && field != BB_DISTINCT_AUTHOR)
        return bb_fail(err, BB_INVALID, "field", "distinct: unknown field");
    if (limit <= 0) return BB_OK;
    if (x.limit > 1000) x.limit = 1000;
    st = sq_run(sq_of(self), call, SQ_OP_DISTINCT, SQ_NO_TX, body_distinct, &x, err);
    if (st != BB_OK) { bb_strv_free(*out, *n_out); *out = NULL; *n_out = 0; }
    return st;
}

typedef struct purge_ctx { int64_t now_ms; } purge_ctx;

static bb_status body_purge(sq *s, sq_conn *c, void *vctx, bb_error *err)
{
    purge_ctx *x = vctx;
    sqlite3_stmt *st = sq_stmt(c, SQ_IDEM_PURGE, err);
    (void)s;
    if (!st) return err->code;
    sqlite3_bind_int64(st, 1, x->now_ms);
    return step_done(c, st, err, "purge");
}

bb_status sq_purge_expired(bb_storage *self, const bb_call *call, int64_t now_ms, bb_error *err)
{
    purge_ctx x = { now_ms };
    return sq_run(sq_of(self), call, SQ_OP_PURGE, SQ_WRITE, body_purge, &x, err);
}
