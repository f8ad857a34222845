/*
 * plugins/storage_sqlite/sq_plugin.c — storage_sqlite: the descriptor, its
 * config keys, create/destroy/health and the ops table.
 *
 * The embedded default backend: one database file in WAL mode, safe for all
 * worker threads through a small pool of connections.
 */
#include <stdlib.h>
#include <string.h>

#include "sq.h"

static const bb_config_key sqlite_keys[] = {
    { "path", BB_CFG_STRING, "botboard.db", 1, 0, NULL, BB_CFG_PATH,
      "Database file (created if missing); WAL mode adds FILE-wal and FILE-shm beside it" },
    { "busy_timeout_ms", BB_CFG_INT, "1000", 0, 600000, NULL, 0,
      "How long SQLite waits on a lock held by another process before the retry policy takes over" },
    { "synchronous", BB_CFG_ENUM, "NORMAL", 1, 0, "OFF|NORMAL|FULL", 0,
      "PRAGMA synchronous: NORMAL is durable across crashes of botboard, FULL across power loss" },
    { "connections", BB_CFG_INT, "4", 1, 64, NULL, 0,
      "Connections in the pool (readers run in parallel; writers take turns)" },
    { "cache_size", BB_CFG_SIZE, "16MiB", 65536, (int64_t)1 << 34, NULL, 0,
      "Page cache per connection" },
    { "mmap_size", BB_CFG_SIZE, "256MiB", 0, (int64_t)1 << 40, NULL, 0,
      "Memory-mapped I/O window (PRAGMA mmap_size): reads of a large database skip a copy; 0 turns it off" },
    { "pool_timeout_ms", BB_CFG_INT, "5000", 1, 600000, NULL, 0,
      "Longest wait for a free connection or for a write's turn (group commit) when a call has no deadline" },
    { "checkpoint_pages", BB_CFG_INT, "4000", 100, 10000000, NULL, 0,
      "WAL pages (of the database's page size) after which a background thread checkpoints them into the database "
      "file; writers never checkpoint unless it falls 8 times behind" },
    { "group_commit_max", BB_CFG_INT, "64", 1, 1024, NULL, 0,
      "Most writes that share one transaction and its commit (each in its own savepoint); 1 commits every write alone" },
};

static void sq_destroy(bb_storage *self)
{
    sq *s = sq_of(self);
    if (!s) return;
    sq_ckpt_stop(s);
    for (size_t i = 0; s->conns && i < s->n_conns; i++) sq_close_conn(&s->conns[i]);
    free(s->conns);
    free(s->free_list);
    if (s->sync_ready) { pthread_cond_destroy(&s->freed); pthread_mutex_destroy(&s->lock); }
    if (s->gc_ready) { pthread_condattr_destroy(&s->gc_condattr); pthread_mutex_destroy(&s->gc_lock); }
    free(s->gc_batch);
    free(s->path);
    free(s);
}

static bb_status read_config(sq *s, const bb_cfg *node, bb_error *err)
{
    const bb_host_api *api = s->api;
    const char *path;
    int64_t conns;
    if (api->cfg_string(node, "sqlite.path", &path, err) != BB_OK ||
        api->cfg_int(node, "sqlite.busy_timeout_ms", &s->busy_timeout_ms, err) != BB_OK ||
        api->cfg_string(node, "sqlite.synchronous", &s->synchronous, err) != BB_OK ||
        api->cfg_int(node, "sqlite.connections", &conns, err) != BB_OK ||
        api->cfg_int(node, "sqlite.cache_size", &s->cache_bytes, err) != BB_OK ||
        api->cfg_int(node, "sqlite.mmap_size", &s->mmap_bytes, err) != BB_OK ||
        api->cfg_int(node, "sqlite.pool_timeout_ms", &s->pool_timeout_ms, err) != BB_OK ||
        api->cfg_int(node, "sqlite.group_commit_max", &s->group_commit_max, err) != BB_OK ||
        api->cfg_int(node, "sqlite.checkpoint_pages", &s->checkpoint_pages, err) != BB_OK ||
        api->cfg_int(node, "retry.max_attempts", &s->retry_max_attempts, err) != BB_OK ||
        api->cfg_int(node, "retry.base_ms", &s->retry_base_ms, err) != BB_OK ||
        api->cfg_int(node, "retry.max_ms", &s->retry_max_ms, err) != BB_OK)
        return err->code ? err->code : BB_INTERNAL;
    if (strcmp(s->synchronous, "OFF") && strcmp(s->synchronous, "NORMAL") && strcmp(s->synchronous, "FULL"))
        return api->cfg_fail(node, "sqlite.synchronous", err, "synchronous must be OFF, NORMAL or FULL");
    if (!path[0]) return api->cfg_fail(node, "sqlite.path", err, "path must not be empty");
    if (!(s->path = strdup(path))) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    s->n_conns = (size_t)conns;
    return BB_OK;
}

static void register_metrics(sq *s)
{
    static const char *const op_labels[] = { "backend", "op", NULL };
    static const char *const err_labels[] = { "backend", "op", "code", NULL };
    const bb_host_api *api = s->api;
    bb_metric *dur = api->metric(s->host, BB_METRIC_HISTOGRAM, "storage_query_duration_seconds",
                                 "Storage operation duration, including retries", op_labels);
    bb_metric *ret = api->metric(s->host, BB_METRIC_COUNTER, "storage_retries_total",
                                 "Storage operations retried after a transient failure", op_labels);
    bb_metric *gu = api->metric(s->host, BB_METRIC_COUNTER, "storage_retry_give_ups_total",
                                "Storage operations that failed after spending their retries", op_labels);
    s->errors = api->metric(s->host, BB_METRIC_COUNTER, "storage_errors_total",
                            "Storage operations that failed, by status code", err_labels);
    {
        /* Group commit: writes per commit = jobs / commits. */
        bb_metric *commits = api->metric(s->host, BB_METRIC_COUNTER, "sqlite_commits_total",
                                         "Write transactions committed (each may carry many writes)", NULL);
        bb_metric *jobs = api->metric(s->host, BB_METRIC_COUNTER, "sqlite_committed_writes_total",
                                      "Write calls acknowledged by those commits", NULL);
        bb_metric *queued = api->metric(s->host, BB_METRIC_GAUGE, "sqlite_write_queue",
                                        "Writes waiting for the group commit leader to take them", NULL);
        bb_metric *ckpts = api->metric(s->host, BB_METRIC_COUNTER, "sqlite_checkpoints_total",
                                       "WAL checkpoints run by the background checkpoint thread", NULL);
        s->checkpoints = ckpts ? api->series(ckpts, NULL) : NULL;
        s->commits = commits ? api->series(commits, NULL) : NULL;
        s->queued = queued ? api->series(queued, NULL) : NULL;
        s->committed_jobs = jobs ? api->series(jobs, NULL) : NULL;
    }
    for (int i = 0; i < SQ_OP_COUNT; i++) {
        const char *v[] = { "sqlite", sq_op_names[i], NULL };
        s->duration[i] = dur ? api->series(dur, v) : NULL;
        s->retries[i] = ret ? api->series(ret, v) : NULL;
        s->give_ups[i] = gu ? api->series(gu, v) : NULL;
    }
}

static bb_status sq_create(const bb_host_api *api, bb_host *host, const bb_cfg *node, bb_storage **out,
                           bb_error *err)
{
    sq *s = calloc(1, sizeof *s);
    pthread_condattr_t ca;
    bb_status st;
    int rc;
    *out = NULL;
    if (!s) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    s->api = api;
    s->host = host;
    if ((st = read_config(s, node, err)) != BB_OK) { sq_destroy((bb_storage *)(void *)s); return st; }
    if (sqlite3_threadsafe() == 0) {
        sq_destroy((bb_storage *)(void *)s);
        return bb_fail(err, BB_INTERNAL, NULL, "libsqlite3 was built without thread support");
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->freed, &ca);
    pthread_condattr_destroy(&ca);
    s->sync_ready = true;
    if ((rc = pthread_condattr_init(&s->gc_condattr)) != 0 ||
        (rc = pthread_condattr_setclock(&s->gc_condattr, CLOCK_MONOTONIC)) != 0 ||
        (rc = pthread_mutex_init(&s->gc_lock, NULL)) != 0) {
        sq_destroy((bb_storage *)(void *)s);
        return bb_fail(err, BB_INTERNAL, NULL, "group commit: %s", strerror(rc));
    }
    s->gc_ready = true;
    register_metrics(s);
    s->conns = calloc(s->n_conns, sizeof *s->conns);
    s->free_list = calloc(s->n_conns, sizeof *s->free_list);
    s->gc_batch = calloc((size_t)s->group_commit_max, sizeof *s->gc_batch);
    if (!s->conns || !s->free_list || !s->gc_batch) {
        sq_destroy((bb_storage *)(void *)s);
        return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    }
    for (size_t i = 0; i < s->n_conns; i++) {
        if ((st = sq_open_conn(s, &s->conns[i], err)) != BB_OK) { sq_destroy((bb_storage *)(void *)s); return st; }
        sq_ckpt_hook(s, &s->conns[i]);
        s->free_list[s->n_free++] = &s->conns[i];
    }
    /* Refuse a database from a newer botboard before anything touches it. */
    if ((st = sq_schema_check(s, &s->conns[0], err)) != BB_OK) { sq_destroy((bb_storage *)(void *)s); return st; }
    if ((st = sq_ckpt_start(s, err)) != BB_OK) { sq_destroy((bb_storage *)(void *)s); return st; }
    api->log(host, BB_LOG_DEBUG, NULL, "opened %s (WAL, synchronous=%s, %zu connections, group commit of up to %lld)",
             s->path, s->synchronous, s->n_conns, (long long)s->group_commit_max);
    *out = (bb_storage *)(void *)s;
    return BB_OK;
}

typedef struct health_ctx { char *detail; size_t len; } health_ctx;

static bb_status body_health(sq *s, sq_conn *c, void *vctx, bb_error *err)
{
    health_ctx *x = vctx;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, "SELECT 1", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return sq_fail(c, rc, err, "health");
    /* + 1: the connection this check holds is free again once it returns. */
    snprintf(x->detail, x->len, "sqlite %s, %zu/%zu connections free", s->path, sq_pool_free(s) + 1, s->n_conns);
    return BB_OK;
}

static bb_status sq_health(bb_storage *self, const bb_call *call, char *detail, size_t len, bb_error *err)
{
    sq *s = sq_of(self);
    health_ctx x = { detail, len };
    bb_status st;
    if (len) detail[0] = '\0';
    st = sq_run(s, call, SQ_OP_HEALTH, SQ_NO_TX, body_health, &x, err);
    if (st != BB_OK && len) snprintf(detail, len, "sqlite %s: %s", s->path, err->msg);
    return st;
}

static bb_status sq_migrate_op(bb_storage *self, const bb_call *call, bool apply, bb_migration_fn fn, void *ud,
                               bb_error *err)
{
    return sq_migrate(sq_of(self), call, apply, fn, ud, err);
}

static const bb_storage_ops sqlite_ops = {
    .size = sizeof(bb_storage_ops),
    .create = sq_create, .destroy = sq_destroy, .health = sq_health,
    .migrate = sq_migrate_op,
    .team_create = sq_team_create, .team_get = sq_team_get, .team_list = sq_team_list,
    .key_create = sq_key_create, .key_by_hash = sq_key_by_hash, .key_list = sq_key_list,
    .key_revoke = sq_key_revoke,
    .post_create = sq_post_create, .post_get = sq_post_get, .post_list = sq_post_list,
    .post_delete = sq_post_delete,
    .distinct = sq_distinct, .purge_expired = sq_purge_expired,
    .export_all = sq_export_all, .import_all = sq_import_all, .backup = sq_backup,
    .watch = NULL,   /* one process per SQLite file: in-process events suffice */
};

static const bb_plugin_descriptor sqlite_descriptor = {
    .magic = BB_PLUGIN_MAGIC, .abi_major = BB_ABI_MAJOR, .abi_minor = BB_ABI_MINOR,
    .size = sizeof(bb_plugin_descriptor), .kind = BB_KIND_STORAGE, .name = "sqlite", .version = PACKAGE_VERSION,
    .description = "SQLite storage: one file, WAL, connection pool (embedded default)",
    .ops = &sqlite_ops, .config_keys = sqlite_keys, .n_config_keys = sizeof sqlite_keys / sizeof sqlite_keys[0],
};

BB_PLUGIN_DEFINE(sqlite_descriptor)
