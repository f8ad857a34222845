/*
 * plugins/storage_postgres/pg_posts.c — posts: create (with its idempotency
 * record and change notification in one transaction), get, list, delete,
 * distinct authors/tags.
 *
 * Exactly once: the caller picks the post id, so a create repeated after a
 * lost COMMIT first looks for that id; if the earlier attempt did commit, it
 * returns that post instead of inserting a second one.  Concurrent creates
 * with one Idempotency-Key serialise on the idempotency table's primary key:
 * the second waits for the first to commit, then replays its post.
 */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const pg_op op_create = { "post_create", PG_OP_TXN | PG_OP_REPEATABLE };
static const pg_op op_get = { "post_get", PG_OP_READONLY };
static const pg_op op_list = { "post_list", PG_OP_READONLY };
static const pg_op op_delete = { "post_delete", PG_OP_TXN };
static const pg_op op_distinct = { "distinct", PG_OP_READONLY };

/* Deep copy of a post (the stored form handed back to the caller). */
static bool post_copy(bb_post *dst, const bb_post *src, const char *thread_id)
{
    memset(dst, 0, sizeof *dst);
    memcpy(dst->id, src->id, sizeof dst->id);
    memcpy(dst->team, src->team, sizeof dst->team);
    memcpy(dst->parent_id, src->parent_id, sizeof dst->parent_id);
    snprintf(dst->thread_id, sizeof dst->thread_id, "%s", thread_id);
    dst->created_ms = src->created_ms;
    dst->author = strdup(src->author ? src->author : "");
    dst->content = strdup(src->content ? src->content : "");
    if (!dst->author || !dst->content) goto oom;
    if (src->n_tags) {
        dst->tags = calloc(src->n_tags, sizeof *dst->tags);
        if (!dst->tags) goto oom;
        for (size_t i = 0; i < src->n_tags; i++) {
            if (!(dst->tags[i] = strdup(src->tags[i]))) goto oom;
            dst->n_tags = i + 1;
        }
    }
    return true;
oom:
    bb_post_clear(dst);
    return false;
}

/* Fetch a post by id whatever its state; BB_NOT_FOUND if absent. */
static bb_status fetch_any(pg_store *s, pg_conn *c, const bb_call *call, const char *id, bb_post *out, bb_error *err)
{
    const char *vals[1] = { id };
    PGresult *r = NULL;
    bb_status st = pg_exec(s, c, call, ST_POST_GET_ANY, vals, NULL, NULL, &r, err);
    if (st != BB_OK) return st;
    if (PQntuples(r) != 1) st = bb_fail(err, BB_NOT_FOUND, NULL, "no post '%s'", id);
    else if (!pg_row_to_post(r, 0, out)) st = bb_fail(err, BB_INTERNAL, NULL, "unreadable post row");
    PQclear(r);
    return st;
}

bb_status pg_counts_add(pg_store *s, pg_conn *c, const bb_call *call, const char *id, int sign, bb_error *err)
{
    char *one = (char *)id, *ids = pg_array_encode(&one, 1), shard[8], sg[8];
    const char *vals[3] = { ids, shard, sg };
    PGresult *r = NULL;
    bb_status st;
    if (!ids) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    snprintf(shard, sizeof shard, "%u", s->api->random_uniform(PG_COUNT_SHARDS));
    snprintf(sg, sizeof sg, "%d", sign);
    st = pg_exec(s, c, call, ST_COUNTS_ADD, vals, NULL, NULL, &r, err);
    PQclear(r);
    free(ids);
    return st;
}

typedef struct create_ctx {
    const bb_post        *post;
    const bb_idempotency *idem;
    bb_post              *out;
    bool                 *replayed;
} create_ctx;

/* BB_OK + *claimed=false with ctx->out filled when the key replays a post. */
static bb_status claim_key(pg_store *s, pg_conn *c, const bb_call *call, create_ctx *ctx, bool *claimed, bb_error *err)
{
    const bb_post *p = ctx->post;
    char hash[65], expires[24], now[24], stored_hash[65];
    const char *vals[6] = { p->team, ctx->idem->key, hash, p->id, expires, now };
    PGresult *r = NULL;
    bb_status st;
    char original[BB_ID_MAX];
    pg_hex_encode(ctx->idem->request_hash, sizeof ctx->idem->request_hash, hash);
    pg_i64_text(ctx->idem->expires_ms, expires);
    pg_i64_text(s->api->wall_ms(), now);
    if ((st = pg_exec(s, c, call, ST_IDEM_CLAIM, vals, NULL, NULL, &r, err)) != BB_OK) return st;
    *claimed = PQntuples(r) == 1;
    PQclear(r);
    if (*claimed) return BB_OK;
    if ((st = pg_exec(s, c, call, ST_IDEM_GET, vals, NULL, NULL, &r, err)) != BB_OK) return st;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return bb_fail(err, BB_INTERNAL, NULL, "idempotency record vanished");
    }
    pg_get_str(r, 0, 0, stored_hash, sizeof stored_hash);
    pg_get_str(r, 0, 1, original, sizeof original);
    PQclear(r);
    if (strcmp(stored_hash, hash) != 0)
        return bb_fail(err, BB_CONFLICT, "Idempotency-Key", "this Idempotency-Key was used with a different request");
    st = fetch_any(s, c, call, original, ctx->out, err);
    if (st == BB_NOT_FOUND) return bb_fail(err, BB_INTERNAL, NULL, "idempotency record names a missing post");
    /* Our own earlier attempt (its COMMIT's answer was lost) is not a replay. */
    if (st == BB_OK) *ctx->replayed = strcmp(original, p->id) != 0;
    return st;
}

static bb_status create_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    create_ctx *ctx = ud;
    const bb_post *p = ctx->post;
    char thread[BB_ID_MAX], created[24];
    char *tags = NULL;
    PGresult *r = NULL;
    bb_status st;
    *ctx->replayed = false;
    bb_post_clear(ctx->out);   /* a retried attempt starts afresh */
    if (ctx->idem) {
        bool claimed = false;
        if ((st = claim_key(s, c, call, ctx, &claimed, err)) != BB_OK || !claimed) return st;
    }
    if (attempt > 1) {
        /* A retry after a lost connection: did the earlier attempt commit? */
        bb_post prior;
        st = fetch_any(s, c, call, p->id, &prior, err);
        if (st == BB_OK) {
            bool same = strcmp(prior.team, p->team) == 0 && strcmp(prior.author, p->author) == 0 &&
                        strcmp(prior.content, p->content) == 0;
            if (!same) {
                bb_post_clear(&prior);
                return bb_fail(err, BB_CONFLICT, "postId", "post id '%s' already exists", p->id);
            }
            *ctx->out = prior;
            return BB_OK;
        }
        if (st != BB_NOT_FOUND) return st;
        bb_error_clear(err);
    }
    if (p->parent_id[0]) {
        const char *vals[2] = { p->team, p->parent_id };
        if ((st = pg_exec(s, c, call, ST_PARENT_GET, vals, NULL, NULL, &r, err)) != BB_OK) return st;
        if (PQntuples(r) != 1) {
            PQclear(r);
            return bb_fail(err, BB_NOT_FOUND, "parentPostId", "parent post '%s' not found in team '%s'", p->parent_id,
                           p->team);
        }
        pg_get_str(r, 0, 0, thread, sizeof thread);
        PQclear(r);
    } else {
        snprintf(thread, sizeof thread, "%s", p->id);
    }
    tags = pg_array_encode(p->tags, p->n_tags);
    if (!tags) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    pg_i64_text(p->created_ms, created);
    {
        const char *vals[8] = { p->id, p->team, p->author, p->content, tags, p->parent_id, thread, created };
        st = pg_exec(s, c, call, ST_POST_INSERT, vals, NULL, NULL, &r, err);
        PQclear(r);
        if (st == BB_CONFLICT) st = bb_fail(err, BB_CONFLICT, "postId", "post id '%s' already exists", p->id);
        else if (st == BB_NOT_FOUND) st = bb_fail(err, BB_NOT_FOUND, "team", "team '%s' does not exist", p->team);
    }
    if (st == BB_OK && p->n_tags) {
        const char *vals[4] = { p->team, created, p->id, tags };
        st = pg_exec(s, c, call, ST_TAG_INSERT, vals, NULL, NULL, &r, err);
        PQclear(r);
    }
    free(tags);
    if (st == BB_OK) st = pg_counts_add(s, c, call, p->id, 1, err);
    if (st == BB_OK && s->notify) {
        /* token, team, id, thread, author: author last, it is the only free text. */
        char payload[PG_TOKEN_LEN + BB_TEAM_MAX + 2 * BB_ID_MAX + 8 + 4 * BB_AUTHOR_MAX];
        const char *vals[1] = { payload };
        snprintf(payload, sizeof payload, "%s\x1f%s\x1f%s\x1f%s\x1f%s", s->token, p->team, p->id, thread,
                 p->author ? p->author : "");
        st = pg_exec(s, c, call, ST_NOTIFY, vals, NULL, NULL, &r, err);
        PQclear(r);
    }
    if (st != BB_OK) return st;
    if (!post_copy(ctx->out, p, thread)) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    return BB_OK;
}

bb_status pg_post_create(pg_store *s, const bb_call *call, const bb_post *post, const bb_idempotency *idem,
                         bb_post *out, bool *replayed, bb_error *err)
{
    bool dummy = false;
    create_ctx ctx = { post, idem, out, replayed ? replayed : &dummy };
    bb_status st;
    if (!post || !out || !post->id[0] || !post->team[0] || !post->author)
        return bb_fail(err, BB_INVALID, NULL, "post_create needs id, team and author");
    if (idem && (!idem->key || !idem->key[0]))
        return bb_fail(err, BB_INVALID, "Idempotency-Key", "empty idempotency key");
    memset(out, 0, sizeof *out);
    st = pg_run(s, call, &op_create, create_body, &ctx, err);
    if (st != BB_OK) bb_post_clear(out);   /* a failed attempt may have filled it before rolling back */
    return st;
}

typedef struct get_ctx { const char *team, *id; bb_post *out; } get_ctx;

static bb_status get_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    get_ctx *ctx = ud;
    const char *vals[2] = { ctx->team, ctx->id };
    PGresult *r = NULL;
    bb_status st = pg_exec(s, c, call, ST_POST_GET, vals, NULL, NULL, &r, err);
    (void)attempt;
    if (st != BB_OK) return st;
    if (PQntuples(r) != 1) st = bb_fail(err, BB_NOT_FOUND, "postId", "post '%s' not found", ctx->id);
    else if (!pg_row_to_post(r, 0, ctx->out)) st = bb_fail(err, BB_INTERNAL, NULL, "unreadable post row");
    PQclear(r);
    return st;
}

bb_status pg_post_get(pg_store *s, const bb_call *call, const char *team, const char *id, bb_post *out, bb_error *err)
{
    get_ctx ctx = { team, id, out };
    if (!team || !id || !out) return bb_fail(err, BB_INVALID, NULL, "post_get needs team and id");
    memset(out, 0, sizeof *out);
    return pg_run(s, call, &op_get, get_body, &ctx, err);
}

typedef struct list_ctx { const bb_post_query *q; bb_post_page *out; } list_ctx;

static bb_status list_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    list_ctx *ctx = ud;
    const bb_post_query *q = ctx->q;
    unsigned f = (q->author ? PG_F_AUTHOR : 0) | (q->tag ? PG_F_TAG : 0) | (q->thread_id ? PG_F_THREAD : 0) |
                 (q->mentions_of ? PG_F_MENTIONS : 0);
    char limit[24], offset[24];
    const char *vals[7] = { q->team, q->author, q->tag, q->thread_id, q->mentions_of, limit, offset };
    PGresult *r = NULL;
    bb_status st;
    (void)attempt;
    bb_post_page_clear(ctx->out);
    pg_i64_text(q->limit, limit);
    pg_i64_text(q->offset, offset);
    if (f == 0 || f == PG_F_AUTHOR || f == PG_F_TAG || f == PG_F_THREAD) {
        /* One filter or none: the counters answer. */
        char dim[8];
        const char *cv[3] = { q->team, dim, f == PG_F_AUTHOR ? q->author : f == PG_F_TAG ? q->tag
                                          : f == PG_F_THREAD ? q->thread_id : "" };
        snprintf(dim, sizeof dim, "%d", f == PG_F_AUTHOR ? PG_DIM_AUTHOR : f == PG_F_TAG ? PG_DIM_TAG
                                         : f == PG_F_THREAD ? PG_DIM_THREAD : PG_DIM_ALL);
        st = pg_exec(s, c, call, ST_COUNT_GET, cv, NULL, NULL, &r, err);
    } else {
        st = pg_exec(s, c, call, pg_list_stmt(f, PG_LIST_COUNT), vals, NULL, NULL, &r, err);
    }
    if (st != BB_OK) return st;
    ctx->out->total = pg_get_i64(r, 0, 0);
    PQclear(r);
    if (ctx->out->total <= q->offset || q->limit <= 0) return BB_OK;
    st = pg_exec(s, c, call, pg_list_stmt(f, q->ascending ? PG_LIST_ASC : PG_LIST_DESC), vals, NULL, NULL, &r, err);
    if (st != BB_OK) return st;
    if (PQntuples(r) > 0) {
        ctx->out->posts = calloc((size_t)PQntuples(r), sizeof *ctx->out->posts);
        if (!ctx->out->posts) st = bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    }
    for (int i = 0; st == BB_OK && i < PQntuples(r); i++) {
        if (!pg_row_to_post(r, i, &ctx->out->posts[i])) st = bb_fail(err, BB_INTERNAL, NULL, "unreadable post row");
        else ctx->out->n++;
    }
    PQclear(r);
    return st;
}

bb_status pg_post_list(pg_store *s, const bb_call *call, const bb_post_query *q, bb_post_page *out, bb_error *err)
{
    list_ctx ctx = { q, out };
    bb_status st;
    if (!q || !out || !q->team) return bb_fail(err, BB_INVALID, NULL, "post_list needs a team");
    memset(out, 0, sizeof *out);
    if (q->limit < 1 || q->limit > 100) return bb_fail(err, BB_INVALID, "limit", "limit must be 1..100");
    if (q->offset < 0) return bb_fail(err, BB_INVALID, "offset", "offset must be >= 0");
    st = pg_run(s, call, &op_list, list_body, &ctx, err);
    if (st != BB_OK) bb_post_page_clear(out);
    return st;
}

typedef struct delete_ctx { const char *team, *id; int64_t when_ms; } delete_ctx;

static bb_status delete_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    delete_ctx *ctx = ud;
    char when[24];
    const char *vals[3] = { ctx->team, ctx->id, when };
    PGresult *r = NULL;
    bb_status st;
    (void)attempt;
    pg_i64_text(ctx->when_ms, when);
    /* Uncount first, while the post and its tags are still live; if the post
     * is not this team's, the NOT_FOUND below rolls this back. */
    if ((st = pg_counts_add(s, c, call, ctx->id, -1, err)) != BB_OK) return st;
    if ((st = pg_exec(s, c, call, ST_POST_DELETE, vals, NULL, NULL, &r, err)) != BB_OK) return st;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return bb_fail(err, BB_NOT_FOUND, "postId", "post '%s' not found", ctx->id);
    }
    PQclear(r);
    st = pg_exec(s, c, call, ST_TAGS_DELETE, &vals[1], NULL, NULL, &r, err);
    PQclear(r);
    return st;
}

bb_status pg_post_delete(pg_store *s, const bb_call *call, const char *team, const char *id, int64_t when_ms,
                         bb_error *err)
{
    delete_ctx ctx = { team, id, when_ms > 0 ? when_ms : s->api->wall_ms() };
    if (!team || !id) return bb_fail(err, BB_INVALID, NULL, "post_delete needs team and id");
    return pg_run(s, call, &op_delete, delete_body, &ctx, err);
}

typedef struct distinct_ctx {
    const char *team, *prefix;
    bb_distinct_field field;
    int limit;
    char ***out;
    size_t *n_out;
} distinct_ctx;

static bb_status distinct_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    distinct_ctx *ctx = ud;
    char limit[24];
    const char *vals[3] = { ctx->team, ctx->prefix ? ctx->prefix : "", limit };
    PGresult *r = NULL;
    bb_status st;
    int n;
    (void)attempt;
    pg_i64_text(ctx->limit, limit);
    st = pg_exec(s, c, call, ctx->field == BB_DISTINCT_TAG ? ST_DISTINCT_TAG : ST_DISTINCT_AUTHOR, vals, NULL, NULL,
                 &r, err);
    if (st != BB_OK) return st;
    n = PQntuples(r);
    bb_strv_free(*ctx->out, *ctx->n_out);
    *ctx->out = NULL;
    *ctx->n_out = 0;
    if (n > 0 && !(*ctx->out = calloc((size_t)n, sizeof **ctx->out))) st = bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    for (int i = 0; st == BB_OK && i < n; i++) {
        if (!((*ctx->out)[i] = pg_get_dup(r, i, 0))) st = bb_fail(err, BB_INTERNAL, NULL, "out of memory");
        else (*ctx->n_out)++;
    }
    PQclear(r);
    return st;
}

bb_status pg_distinct(pg_store *s, const bb_call *call, const char *team, bb_distinct_field field, const char *prefix,
                      int limit, char ***out, size_t *n_out, bb_error *err)
{
    distinct_ctx ctx = { team, prefix, field, limit, out, n_out };
    bb_status st;
    *out = NULL;
    *n_out = 0;
    if (!team) return bb_fail(err, BB_INVALID, NULL, "distinct needs a team");
    if (field != BB_DISTINCT_TAG && field != BB_DISTINCT_AUTHOR)
        return bb_fail(err, BB_INVALID, "field", "distinct: unknown field");
    if (limit <= 0) return BB_OK;
    if (ctx.limit > 1000) ctx.limit = 1000;
    st = pg_run(s, call, &op_distinct, distinct_body, &ctx, err);
    if (st != BB_OK) {
        bb_strv_free(*out, *n_out);
        *out = NULL;
        *n_out = 0;
    }
    return st;
}
