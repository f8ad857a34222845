/*
 * plugins/storage_postgres/pg_sql.c — every statement the plugin runs.
 *
 * All values travel as bound parameters; SQL text never contains data.  The
 * post list is one statement per filter combination (16 combinations x
 * newest-first / oldest-first / count), composed at create() from the fixed
 * fragments below, so each gets a plan that uses its own index instead of a
 * catch-all "($2 IS NULL OR ...)" that defeats generic plans.
 */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXTOID 25
#define INT4OID 23
#define INT8OID 20

/* Columns of a post row, in the order pg_row_to_post reads them. */
#define POST_COLUMNS \
    "p.id, p.team, p.author, p.content, p.tags, coalesce(p.parent_id, ''), p.thread_id, " \
    "p.created_ms, p.deleted_ms"
#define KEY_COLUMNS "id, team, prefix, label, encode(hash, 'hex'), created_ms, revoked_ms"

typedef struct fixed_stmt {
    pg_stmt_id  id;
    const char *sql;
    int         n_params;
} fixed_stmt;

static const fixed_stmt fixed[] = {
    /* Every statement here is a short OLTP lookup shaped for one index, so
     * its generic plan is the right one whatever the values: forcing it saves
     * planning each call (about 1 ms at a million posts, where the planner
     * otherwise keeps re-planning because LIMIT $6 makes the generic plan
     * look expensive).  A parallel plan only adds worker start-up (measured:
     * 88 ms instead of 0.3 ms for a tag page). */
    { ST_SESSION_SETUP, "SELECT set_config('statement_timeout', $1, false), pg_backend_pid(), "
                        "set_config('max_parallel_workers_per_gather', '0', false), "
                        "set_config('plan_cache_mode', 'force_generic_plan', false)", 1 },
    { ST_PING, "SELECT 1", 0 },

    { ST_TEAM_INSERT, "INSERT INTO teams (name, created_ms) VALUES ($1, $2)", 2 },
    { ST_TEAM_GET, "SELECT name, created_ms FROM teams WHERE name = $1", 1 },
    { ST_TEAM_LIST, "SELECT name, created_ms FROM teams ORDER BY name", 0 },

    { ST_KEY_INSERT, "INSERT INTO api_keys (id, team, prefix, label, hash, created_ms, revoked_ms) "
                     "VALUES ($1, $2, $3, $4, decode($5, 'hex'), $6, $7)", 7 },
    { ST_KEY_BY_HASH, "SELECT " KEY_COLUMNS " FROM api_keys WHERE hash = decode($1, 'hex')", 1 },
    { ST_KEY_LIST, "SELECT " KEY_COLUMNS " FROM api_keys WHERE team = $1 ORDER BY id", 1 },
    { ST_KEY_REVOKE, "UPDATE api_keys SET revoked_ms = CASE WHEN revoked_ms = 0 THEN $2 ELSE revoked_ms END "
                     "WHERE id = $1 RETURNING id", 2 },

    /* Claim an idempotency key: a fresh row, or take over an expired one.
     * A concurrent claimer of the same key waits on the unique index until
     * the first commits, then gets no row back and replays. */
    { ST_IDEM_CLAIM, "INSERT INTO idempotency (team, key, request_hash, post_id, expires_ms) "
                     "VALUES ($1, $2, decode($3, 'hex'), $4, $5) "
                     "ON CONFLICT (team, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, "
                     "post_id = EXCLUDED.post_id, expires_ms = EXCLUDED.expires_ms "
                     "WHERE idempotency.expires_ms <= $6 RETURNING post_id", 6 },
    { ST_IDEM_GET, "SELECT encode(request_hash, 'hex'), post_id FROM idempotency WHERE team = $1 AND key = $2", 2 },

    { ST_PARENT_GET, "SELECT thread_id FROM posts WHERE team = $1 AND id = $2 AND deleted_ms = 0 FOR SHARE", 2 },
    { ST_POST_INSERT, "INSERT INTO posts (id, team, author, content, tags, parent_id, thread_id, created_ms) "
                      "VALUES ($1, $2, $3, $4, $5::text[], NULLIF($6, ''), $7, $8)", 8 },
    { ST_TAG_INSERT, "INSERT INTO post_tags (team, tag, created_ms, post_id) "
                     "SELECT $1, t, $2, $3 FROM unnest($4::text[]) AS t ON CONFLICT DO NOTHING", 4 },
    { ST_NOTIFY, "SELECT pg_notify('" PG_NOTIFY_CHANNEL "', $1)", 1 },

    { ST_POST_GET, "SELECT " POST_COLUMNS " FROM posts p WHERE p.team = $1 AND p.id = $2 AND p.deleted_ms = 0", 2 },
    { ST_POST_GET_ANY, "SELECT " POST_COLUMNS " FROM posts p WHERE p.id = $1", 1 },
    { ST_POST_DELETE, "UPDATE posts SET deleted_ms = $3 WHERE team = $1 AND id = $2 AND deleted_ms = 0 RETURNING id", 3 },
    { ST_TAGS_DELETE, "DELETE FROM post_tags WHERE post_id = $1", 1 },

    /* distinct(): the counters know how often each author/tag is used. $4 = dim. */
    { ST_DISTINCT_AUTHOR, "SELECT value FROM post_counts WHERE team = $1 AND dim = 1 AND starts_with(value, $2) "
                          "GROUP BY value HAVING sum(n) > 0 ORDER BY sum(n) DESC, value LIMIT $3", 3 },
    { ST_DISTINCT_TAG, "SELECT value FROM post_counts WHERE team = $1 AND dim = 2 AND starts_with(value, $2) "
                       "GROUP BY value HAVING sum(n) > 0 ORDER BY sum(n) DESC, value LIMIT $3", 3 },
    { ST_IDEM_PURGE, "DELETE FROM idempotency WHERE expires_ms < $1", 1 },

    { ST_EXPORT_TEAMS, "SELECT name, created_ms FROM teams ORDER BY name", 0 },
    { ST_EXPORT_KEYS, "SELECT " KEY_COLUMNS " FROM api_keys ORDER BY id", 0 },
    { ST_EXPORT_POSTS, "SELECT " POST_COLUMNS " FROM posts p ORDER BY p.created_ms, p.id", 0 },
    /* Live-post counters for the posts $1 (ids), added with sign $3 into
     * shard $2.  Run after inserting (sign 1) or before deleting (sign -1).
     * Rows are touched in (dim, value) order so concurrent writers on one
     * shard cannot deadlock. */
    { ST_COUNTS_ADD,
      "INSERT INTO post_counts (team, dim, value, shard, n) "
      "SELECT team, dim, value, $2::int, $3::int * sum(k) FROM ("
      "  SELECT team, 0 AS dim, '' AS value, 1 AS k FROM posts WHERE id = ANY($1::text[]) AND deleted_ms = 0"
      "  UNION ALL SELECT team, 1, author, 1 FROM posts WHERE id = ANY($1::text[]) AND deleted_ms = 0"
      "  UNION ALL SELECT team, 3, thread_id, 1 FROM posts WHERE id = ANY($1::text[]) AND deleted_ms = 0"
      "  UNION ALL SELECT team, 2, tag, 1 FROM post_tags WHERE post_id = ANY($1::text[])"
      ") d GROUP BY team, dim, value ORDER BY team, dim, value "
      "ON CONFLICT (team, dim, value, shard) DO UPDATE SET n = post_counts.n + EXCLUDED.n", 3 },
    { ST_COUNT_GET, "SELECT coalesce(sum(n), 0) FROM post_counts WHERE team = $1 AND dim = $2 AND value = $3", 3 },
    /* Import in batches: parallel arrays, one row per element.  $5 holds
     * each post's tags as an array literal. */
    { ST_IMPORT_POSTS,
      "INSERT INTO posts (id, team, author, content, tags, parent_id, thread_id, created_ms, deleted_ms) "
      "SELECT id, team, author, content, tags::text[], NULLIF(parent, ''), thread, created, deleted FROM "
      "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
      "$8::bigint[], $9::bigint[]) AS u(id, team, author, content, tags, parent, thread, created, deleted)", 9 },
    { ST_IMPORT_TAGS,
      "INSERT INTO post_tags (post_id, tag, team, created_ms) "
      "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) ON CONFLICT DO NOTHING", 4 },
};

/* List parameters, always all seven (unused ones are NULL):
 * $1 team, $2 author, $3 tag, $4 thread_id, $5 mentions_of, $6 limit, $7 offset. */
static const Oid list_types[7] = { TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, INT8OID };

/* A tag filter drives the scan from post_tags' (team, tag, time) index;
 * post_tags only holds live posts' tags. */
#define FROM_POSTS " FROM posts p WHERE p.team = $1 AND p.deleted_ms = 0"
#define FROM_TAGS  " FROM post_tags t JOIN posts p ON p.id = t.post_id " \
                   "WHERE t.team = $1 AND t.tag = $3 AND p.deleted_ms = 0"
#define W_AUTHOR   " AND p.author = $2"
#define W_THREAD   " AND p.thread_id = $4"
#define W_MENTIONS " AND (strpos(p.content, '@' || $5) > 0 OR EXISTS (SELECT 1 FROM posts par " \
                   "WHERE par.id = p.parent_id AND par.team = $1 AND par.author = $5 AND par.deleted_ms = 0))"
#define ORDER_DESC " ORDER BY p.created_ms DESC, p.id DESC LIMIT $6 OFFSET $7"
#define ORDER_ASC  " ORDER BY p.created_ms, p.id LIMIT $6 OFFSET $7"
/* Same order, named on post_tags so its (team, tag, time) index provides it. */
#define ORDER_TAG_DESC " ORDER BY t.created_ms DESC, t.post_id DESC LIMIT $6 OFFSET $7"
#define ORDER_TAG_ASC  " ORDER BY t.created_ms, t.post_id LIMIT $6 OFFSET $7"

pg_stmt_id pg_list_stmt(unsigned filters, int variant)
{
    return (pg_stmt_id)(ST_LIST_FIRST + 3 * (int)(filters & (PG_LIST_COMBOS - 1)) + variant);
}

static char *compose_list(unsigned f, int variant)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "SELECT %s%s%s%s%s%s",
                     variant == PG_LIST_COUNT ? "count(*)" : POST_COLUMNS,
                     (f & PG_F_TAG) ? FROM_TAGS : FROM_POSTS,
                     (f & PG_F_AUTHOR) ? W_AUTHOR : "",
                     (f & PG_F_THREAD) ? W_THREAD : "",
                     (f & PG_F_MENTIONS) ? W_MENTIONS : "",
                     variant == PG_LIST_COUNT ? ""
                     : (f & PG_F_TAG) ? (variant == PG_LIST_ASC ? ORDER_TAG_ASC : ORDER_TAG_DESC)
                     : variant == PG_LIST_ASC ? ORDER_ASC : ORDER_DESC);
    if (n < 0 || (size_t)n >= sizeof buf) return NULL;
    return strdup(buf);
}

bool pg_sql_build(pg_store *s)
{
    memset(s->stmts, 0, sizeof s->stmts);
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        pg_stmt *st = &s->stmts[fixed[i].id];
        st->sql = fixed[i].sql;
        st->n_params = fixed[i].n_params;
    }
    for (unsigned f = 0; f < PG_LIST_COMBOS; f++)
        for (int v = 0; v < 3; v++) {
            pg_stmt *st = &s->stmts[pg_list_stmt(f, v)];
            st->owned = compose_list(f, v);
            if (!st->owned) return false;
            st->sql = st->owned;
            st->n_params = 7;
            st->types = list_types;
        }
    for (int i = 0; i < ST_COUNT; i++) {
        snprintf(s->stmts[i].name, sizeof s->stmts[i].name, "bb_%d", i);
        if (!s->stmts[i].sql) return false;   /* a statement id without SQL: a bug */
    }
    return true;
}

void pg_sql_free(pg_store *s)
{
    for (int i = 0; i < ST_COUNT; i++) {
        free(s->stmts[i].owned);
        s->stmts[i].owned = NULL;
        s->stmts[i].sql = NULL;
    }
}
