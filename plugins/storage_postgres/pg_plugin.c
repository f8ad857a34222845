/*
 * plugins/storage_postgres/pg_plugin.c — the storage_postgres plugin:
 * descriptor, config keys, create/destroy/health and the ops table.
 *
 * create() never connects: a database that is down at start-up makes the
 * instance unhealthy (readiness false, calls UNAVAILABLE), not the process
 * fail, and the pool connects as soon as the server answers.
 */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_PLUGIN_VERSION "1.0.0"

static const bb_config_key pg_keys[] = {
    { "conninfo", BB_CFG_STRING, NULL, 1, 0, NULL, BB_CFG_SECRET | BB_CFG_REQUIRED,
      "libpq connection string or URI; several hosts with target_session_attrs=read-write for failover" },
    { "connect_timeout", BB_CFG_DURATION, "5s", 1000, 600000, NULL, 0,
      "Bound on opening one connection (libpq connect_timeout, whole seconds)" },
    { "statement_timeout", BB_CFG_DURATION, "30s", 0, 3600000, NULL, 0,
      "Server-side bound on one statement (0 = none)" },
    { "notify", BB_CFG_BOOL, "true", 1, 0, NULL, 0,
      "Send a NOTIFY for each new post so other instances see it in real time" },
    { "pool.size", BB_CFG_INT, "20", 1, 10000, NULL, 0,
      "Connections kept open" },
    { "pool.max_overflow", BB_CFG_INT, "30", 0, 10000, NULL, 0,
      "Extra connections opened under load, closed when they come back to a full pool" },
    { "pool.timeout_ms", BB_CFG_INT, "30000", 1, 3600000, NULL, 0,
      "Longest wait for a free connection, then UNAVAILABLE" },
    { "pool.recycle_s", BB_CFG_INT, "3600", 1, 31536000, NULL, 0,
      "Connections older than this are replaced" },
    { "pool.idle_check_s", BB_CFG_INT, "30", 0, 86400, NULL, 0,
      "A connection idle longer than this is validated with a round trip before use (0 = always)" },
    { "pool.leak_warn_ms", BB_CFG_INT, "10000", 1, 86400000, NULL, 0,
      "A connection held longer than this logs a warning naming the operation and request id" },
};

#define SELF(p) ((pg_store *)(void *)(p))

static bb_status get_int(pg_store *s, const bb_cfg *node, const char *path, int64_t *out, bb_error *err)
{
    return s->api->cfg_int(node, path, out, err);
}

/* Validate the conninfo with libpq's own parser and register its password
 * (key=value or URI form) as a secret for log masking. */
static bb_status check_conninfo(pg_store *s, const bb_cfg *node, const char *conninfo, bb_error *err)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
    if (!opts) {
        char line[160];
        size_t n = 0;
        const char *m = why ? why : "out of memory";
        while (m[n] && m[n] != '\n' && n + 1 < sizeof line) { line[n] = m[n]; n++; }
        line[n] = '\0';
        if (why) PQfreemem(why);
        return s->api->cfg_fail(node, "postgres.conninfo", err, "invalid conninfo: %s", line);
    }
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0]) s->api->add_secret(s->host, o->val);
    PQconninfoFree(opts);
    return BB_OK;
}

static void register_metrics(pg_store *s)
{
    const bb_host_api *a = s->api;
    bb_host *h = s->host;
    bb_metric *m;
    /* The family names and labels are the same for every storage backend. */
    static const char *const op_labels[] = { "backend", "op", NULL };
    static const char *const err_labels[] = { "backend", "op", "code", NULL };
    static const char *const state_label[] = { "sqlstate", NULL };
#define GAUGE(field, name, help) \
    do { m = a->metric(h, BB_METRIC_GAUGE, name, help, NULL); s->m.field = m ? a->series(m, NULL) : NULL; } while (0)
#define COUNTER(field, name, help) \
    do { m = a->metric(h, BB_METRIC_COUNTER, name, help, NULL); s->m.field = m ? a->series(m, NULL) : NULL; } while (0)
    GAUGE(in_use, "storage_pg_pool_in_use", "PostgreSQL connections checked out");
    GAUGE(idle, "storage_pg_pool_idle", "PostgreSQL connections idle in the pool");
    GAUGE(waiting, "storage_pg_pool_waiting", "Callers waiting for a PostgreSQL connection");
    COUNTER(opened, "storage_pg_connections_opened_total", "PostgreSQL connections opened");
    COUNTER(closed, "storage_pg_connections_closed_total", "PostgreSQL connections closed (recycled, broken, surplus)");
    COUNTER(failed, "storage_pg_connections_failed_total", "PostgreSQL connection attempts that failed");
    COUNTER(leaks, "storage_pg_connection_leaks_total", "Connections held longer than pool.leak_warn_ms");
    COUNTER(notify_received, "storage_pg_notifications_total", "Post notifications received from other instances");
    m = a->metric(h, BB_METRIC_HISTOGRAM, "storage_pg_pool_checkout_wait_seconds", "Time to get a pooled connection", NULL);
    s->m.checkout_wait = m ? a->series(m, NULL) : NULL;
#undef GAUGE
#undef COUNTER
    s->m.query_seconds = a->metric(h, BB_METRIC_HISTOGRAM, "storage_query_duration_seconds",
                                   "Storage operation duration, including retries", op_labels);
    s->m.errors = a->metric(h, BB_METRIC_COUNTER, "storage_errors_total",
                            "Storage operations that failed, by status code", err_labels);
    s->m.retries = a->metric(h, BB_METRIC_COUNTER, "storage_retries_total",
                             "Storage operations retried after a transient failure", op_labels);
    s->m.giveups = a->metric(h, BB_METRIC_COUNTER, "storage_retry_give_ups_total",
                             "Storage operations that failed after spending their retries", op_labels);
    s->m.sqlstate_errors = a->metric(h, BB_METRIC_COUNTER, "storage_pg_errors_total",
                                     "PostgreSQL errors by SQLSTATE (connection, deadline, pool_timeout for the rest)",
                                     state_label);
}

static void pg_destroy(bb_storage *self)
{
    pg_store *s = SELF(self);
    if (!s) return;
    pg_watch_stop(s);
    if (s->pool_ready) pg_pool_destroy(&s->pool);
    pg_sql_free(s);
    pthread_mutex_destroy(&s->watch_mu);
    free(s->conninfo);
    free(s);
}

static bb_status pg_create(const bb_host_api *api, bb_host *host, const bb_cfg *node, bb_storage **out, bb_error *err)
{
    pg_store *s;
    const char *conninfo = NULL;
    int64_t v;
    bool b;
    pg_pool_cfg pc;
    uint8_t rnd[PG_TOKEN_LEN / 2];
    bb_status st;
    *out = NULL;
    if (!api || api->size < sizeof *api) return bb_fail(err, BB_INTERNAL, NULL, "host API too old for storage_postgres");
    s = calloc(1, sizeof *s);
    if (!s) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    s->api = api;
    s->host = host;
    pthread_mutex_init(&s->watch_mu, NULL);

    if ((st = api->cfg_string(node, "postgres.conninfo", &conninfo, err)) != BB_OK) goto fail;
    if (!conninfo || !conninfo[0]) {
        st = api->cfg_fail(node, "postgres", err, "storage.postgres.conninfo is required");
        goto fail;
    }
    if ((st = check_conninfo(s, node, conninfo, err)) != BB_OK) goto fail;
    if (!(s->conninfo = strdup(conninfo))) { st = bb_fail(err, BB_INTERNAL, NULL, "out of memory"); goto fail; }

    memset(&pc, 0, sizeof pc);
    if ((st = get_int(s, node, "postgres.pool.size", &v, err)) != BB_OK) goto fail;
    pc.size = (int)v;
    if ((st = get_int(s, node, "postgres.pool.max_overflow", &v, err)) != BB_OK) goto fail;
    pc.max_overflow = (int)v;
    if ((st = get_int(s, node, "postgres.pool.timeout_ms", &pc.timeout_ms, err)) != BB_OK) goto fail;
    if ((st = get_int(s, node, "postgres.pool.recycle_s", &v, err)) != BB_OK) goto fail;
    pc.recycle_ms = v * 1000;
    if ((st = get_int(s, node, "postgres.pool.idle_check_s", &v, err)) != BB_OK) goto fail;
    pc.idle_check_ms = v * 1000;
    if ((st = get_int(s, node, "postgres.pool.leak_warn_ms", &pc.leak_warn_ms, err)) != BB_OK) goto fail;
    if ((st = get_int(s, node, "postgres.connect_timeout", &pc.connect_timeout_ms, err)) != BB_OK) goto fail;
    if ((st = get_int(s, node, "postgres.statement_timeout", &pc.statement_timeout_ms, err)) != BB_OK) goto fail;
    if ((st = api->cfg_bool(node, "postgres.notify", &b, err)) != BB_OK) goto fail;
    s->notify = b;
    if ((st = get_int(s, node, "retry.max_attempts", &v, err)) != BB_OK) goto fail;
    s->retry_max_attempts = (int)v;
    if ((st = get_int(s, node, "retry.base_ms", &s->retry_base_ms, err)) != BB_OK) goto fail;
    if ((st = get_int(s, node, "retry.max_ms", &s->retry_max_ms, err)) != BB_OK) goto fail;

    api->random(rnd, sizeof rnd);
    pg_hex_encode(rnd, sizeof rnd, s->token);
    register_metrics(s);
    if (!pg_sql_build(s)) { st = bb_fail(err, BB_INTERNAL, NULL, "cannot build the statement table"); goto fail; }
    if (!pg_pool_init(&s->pool, s, &pc, err)) { st = err->code ? err->code : BB_INTERNAL; goto fail; }
    s->pool_ready = true;
    *out = (bb_storage *)(void *)s;
    return BB_OK;
fail:
    pg_destroy((bb_storage *)(void *)s);
    return st;
}

static bb_status ping_body(pg_store *s, pg_conn *c, const bb_call *call, int attempt, void *ud, bb_error *err)
{
    PGresult *r = NULL;
    bb_status st = pg_exec(s, c, call, ST_PING, NULL, NULL, NULL, &r, err);
    (void)attempt;
    (void)ud;
    PQclear(r);
    return st;
}

static bb_status pg_health(bb_storage *self, const bb_call *call, char *detail, size_t detail_len, bb_error *err)
{
    static const pg_op op = { "health", PG_OP_NO_RETRY };
    pg_store *s = SELF(self);
    int in_use, idle, cap;
    bb_status st = pg_run(s, call, &op, ping_body, NULL, err);
    pg_pool_counts(&s->pool, &in_use, &idle, &cap);
    if (detail && detail_len)
        snprintf(detail, detail_len, "pool %d/%d in use%s", in_use, cap, st == BB_OK ? "" : "; database unreachable");
    return st;
}

/* ---- ops table: thin casts onto the implementation files ----------------- */

static bb_status op_migrate(bb_storage *p, const bb_call *c, bool apply, bb_migration_fn fn, void *ud, bb_error *e)
{ return pg_migrate(SELF(p), c, apply, fn, ud, e); }
static bb_status op_team_create(bb_storage *p, const bb_call *c, const bb_team *t, bb_error *e)
{ return pg_team_create(SELF(p), c, t, e); }
static bb_status op_team_get(bb_storage *p, const bb_call *c, const char *n, bb_team *o, bb_error *e)
{ return pg_team_get(SELF(p), c, n, o, e); }
static bb_status op_team_list(bb_storage *p, const bb_call *c, bb_team_fn fn, void *ud, bb_error *e)
{ return pg_team_list(SELF(p), c, fn, ud, e); }
static bb_status op_key_create(bb_storage *p, const bb_call *c, const bb_api_key *k, bb_error *e)
{ return pg_key_create(SELF(p), c, k, e); }
static bb_status op_key_by_hash(bb_storage *p, const bb_call *c, const uint8_t h[BB_KEY_HASH_LEN], bb_api_key *o, bb_error *e)
{ return pg_key_by_hash(SELF(p), c, h, o, e); }
static bb_status op_key_list(bb_storage *p, const bb_call *c, const char *t, bb_key_fn fn, void *ud, bb_error *e)
{ return pg_key_list(SELF(p), c, t, fn, ud, e); }
static bb_status op_key_revoke(bb_storage *p, const bb_call *c, const char *id, int64_t w, bb_error *e)
{ return pg_key_revoke(SELF(p), c, id, w, e); }
static bb_status op_post_create(bb_storage *p, const bb_call *c, const bb_post *post, const bb_idempotency *i,
                                bb_post *o, bool *r, bb_error *e)
{ return pg_post_create(SELF(p), c, post, i, o, r, e); }
static bb_status op_post_get(bb_storage *p, const bb_call *c, const char *t, const char *id, bb_post *o, bb_error *e)
{ return pg_post_get(SELF(p), c, t, id, o, e); }
static bb_status op_post_list(bb_storage *p, const bb_call *c, const bb_post_query *q, bb_post_page *o, bb_error *e)
{ return pg_post_list(SELF(p), c, q, o, e); }
static bb_status op_post_delete(bb_storage *p, const bb_call *c, const char *t, const char *id, int64_t w, bb_error *e)
{ return pg_post_delete(SELF(p), c, t, id, w, e); }
static bb_status op_distinct(bb_storage *p, const bb_call *c, const char *t, bb_distinct_field f, const char *pre,
                             int l, char ***o, size_t *n, bb_error *e)
{ return pg_distinct(SELF(p), c, t, f, pre, l, o, n, e); }
static bb_status op_purge(bb_storage *p, const bb_call *c, int64_t now, bb_error *e)
{ return pg_purge_expired(SELF(p), c, now, e); }
static bb_status op_export(bb_storage *p, const bb_call *c, bb_record_fn fn, void *ud, bb_error *e)
{ return pg_export_all(SELF(p), c, fn, ud, e); }
static bb_status op_import(bb_storage *p, const bb_call *c, bb_record_source n, void *ud, bb_error *e)
{ return pg_import_all(SELF(p), c, n, ud, e); }
static bb_status op_backup(bb_storage *p, const bb_call *c, const char *path, bb_error *e)
{
    (void)p; (void)c; (void)path;
    return bb_fail(e, BB_INVALID, NULL,
                   "storage_postgres has no file snapshot: use pg_dump (or pg_basebackup) against the database");
}
static bb_status op_watch(bb_storage *p, bb_post_event_fn fn, void *ud, bb_error *e)
{ return pg_watch_start(SELF(p), fn, ud, e); }

static const bb_storage_ops pg_ops = {
    .size = sizeof(bb_storage_ops),
    .create = pg_create, .destroy = pg_destroy, .health = pg_health,
    .migrate = op_migrate,
    .team_create = op_team_create, .team_get = op_team_get, .team_list = op_team_list,
    .key_create = op_key_create, .key_by_hash = op_key_by_hash, .key_list = op_key_list, .key_revoke = op_key_revoke,
    .post_create = op_post_create, .post_get = op_post_get, .post_list = op_post_list, .post_delete = op_post_delete,
    .distinct = op_distinct, .purge_expired = op_purge,
    .export_all = op_export, .import_all = op_import, .backup = op_backup,
    .watch = op_watch,
};

static const bb_plugin_descriptor pg_desc = {
    .magic = BB_PLUGIN_MAGIC, .abi_major = BB_ABI_MAJOR, .abi_minor = BB_ABI_MINOR,
    .size = sizeof(bb_plugin_descriptor), .kind = BB_KIND_STORAGE, .name = "postgres",
    .version = PG_PLUGIN_VERSION,
    .description = "PostgreSQL storage on libpq: pool, retries, failover, LISTEN/NOTIFY",
    .ops = &pg_ops, .config_keys = pg_keys, .n_config_keys = sizeof pg_keys / sizeof pg_keys[0],
};

BB_PLUGIN_DEFINE(pg_desc)
