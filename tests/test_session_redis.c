/*
 * tests/test_session_redis.c — what only the Redis backend promises, against
 * a real redis-server from the harness: two instances share sessions and
 * counters, Redis going away and coming back, nothing readable in the
 * store, AUTH and database from the URL, scripts forgotten by Redis.
 */
#include "config.h"
#include "log.h"
#include "session_common.h"
#include "sessions.h"

static bbt_redis redis;
static char *dir;

static void up(void)
{
    char why[4096];
    dir = bbt_tempdir("sessredis");
    cr_assert_not_null(dir);
    if (!bbt_redis_start(&redis, why, sizeof why)) cr_skip_test("redis-server would not start: %s", why);
}

static void down(void)
{
    bbt_redis_destroy(&redis);
    bbt_rmtree(dir);
    free(dir);
}

TestSuite(session_redis, .init = up, .fini = down, .timeout = 60);

typedef struct inst { bb_app *app; bb_sessions *s; } inst;

static const char *yaml_for(const char *url)
{
    static char y[1024];
    snprintf(y, sizeof y,
             "session:\n  backend: redis\n  keys: [\"" KEY_A "\"]\n  touch_interval_s: 0\n"
             "  redis:\n    url: \"%s\"\n    connect_timeout_ms: 300\n    command_timeout_ms: 500\n"
             "    reconnect_min_ms: 50\n    reconnect_max_ms: 400\n    pool_size: 4\n"
             "logging:\n  level: error\n", url);
    return y;
}

static inst open_inst(const char *name, const char *url)
{
    inst i;
    char why[512];
    i.app = sess_open(dir, name, yaml_for(url));
    i.s = bb_sessions_new(i.app, bb_config_root(bb_app_config(i.app)), why, sizeof why);
    cr_assert_not_null(i.s, "%s", why);
    return i;
}

static void close_inst(inst *i)
{
    bb_sessions_free(i->s);
    bb_app_close(i->app);
}

/* What /readyz asks: the session plugin's health through the app. */
static bool app_ready(bb_app *app)
{
    char detail[256];
    bb_error err;
    bb_error_clear(&err);
    return bb_app_health(app, BB_KIND_SESSION, 1000, detail, sizeof detail, &err) == BB_OK;
}

static bb_status create(inst *i, bb_session *s, const char *team, bb_error *err)
{
    bb_call c = sess_call(2000);
    memset(s, 0, sizeof *s);
    snprintf(s->team, sizeof s->team, "%s", team);
    snprintf(s->protocol, sizeof s->protocol, "2025-06-18");
    return bb_session_create(i->s, &c, s, err);
}

static bb_status load(inst *i, const char *id, bb_session *out)
{
    bb_call c = sess_call(2000);
    bb_error err;
    bb_status st = bb_session_load(i->s, &c, id, out, &err);
    if (st == BB_OK) bb_session_clear(out);
    return st;
}

static bool healthy(inst *i)
{
    bb_call c = sess_call(1000);
    bb_error err;
    char detail[256];
    return bb_sessions_health(i->s, &c, detail, sizeof detail, &err) == BB_OK;
}

Test(session_redis, two_instances_share_sessions_and_counters)
{
    inst a = open_inst("a.yaml", redis.url), b = open_inst("b.yaml", redis.url);
    bb_session s, got;
    bb_call c = sess_call(2000);
    bb_error err;
    bb_counter_result r;
    cr_assert_eq(create(&a, &s, "shared-team", &err), BB_OK, "%s", err.msg);
    cr_assert_eq(bb_session_load(b.s, &c, s.id, &got, &err), BB_OK, "opened on A, unknown on B: %s", err.msg);
    cr_assert_str_eq(got.team, "shared-team");
    snprintf(got.agent, sizeof got.agent, "bob");
    cr_assert_eq(bb_session_save(b.s, &c, &got, &err), BB_OK);
    bb_session_clear(&got);
    cr_assert_eq(bb_session_load(a.s, &c, s.id, &got, &err), BB_OK);
    cr_assert_str_eq(got.agent, "bob", "a login on B is seen on A");
    bb_session_clear(&got);
    /* one counter across both: limit 4, hits alternate */
    for (int n = 1; n <= 6; n++) {
        inst *who = n % 2 ? &a : &b;
        cr_assert_eq(bb_sessions_hit(who->s, &c, "rl:read:key1", 4, 60000, &r, &err), BB_OK, "%s", err.msg);
        cr_assert_eq(r.allowed, n <= 4, "hit %d", n);
        cr_assert_eq(r.remaining, n < 4 ? 4 - n : 0, "hit %d", n);
    }
    cr_assert_eq(bb_session_end(b.s, &c, s.id, &err), BB_OK);
    cr_assert_eq(load(&a, s.id, &got), BB_NOT_FOUND, "ended on B, still alive on A");
    close_inst(&a);
    close_inst(&b);
}

Test(session_redis, redis_down_then_back_recovers_without_restart)
{
    inst a = open_inst("a.yaml", redis.url);
    bb_session s, got;
    bb_error err;
    char why[4096];
    int64_t t0;
    cr_assert_eq(create(&a, &s, "t", &err), BB_OK, "%s", err.msg);
    cr_assert(healthy(&a));
    cr_assert_eq(app_ready(a.app), true);

    cr_assert(bbt_redis_stop(&redis));
    cr_assert_eq(load(&a, s.id, &got), BB_UNAVAILABLE, "a backend outage is not 'no such session'");
    cr_assert_eq(create(&a, &got, "t", &err), BB_UNAVAILABLE);
    cr_assert_gt(err.retry_after_s, 0);
    cr_assert_not(healthy(&a));
    cr_assert_not(app_ready(a.app), "readiness must be false while Redis is down");
    for (int i = 0; i < 20; i++) cr_assert_eq(load(&a, s.id, &got), BB_UNAVAILABLE);   /* fast, no hang */

    cr_assert(bbt_redis_restart(&redis, why, sizeof why), "%s", why);
    t0 = bb_now_ms();
    cr_assert(POLL_UNTIL(5000, healthy(&a)), "not healthy 5 s after Redis returned");
    cr_assert_lt(bb_now_ms() - t0, 5000);
    cr_assert(app_ready(a.app));
    /* the harness's Redis keeps nothing over a restart, so the old session
     * is gone; new ones work on every pooled connection */
    cr_assert_eq(load(&a, s.id, &got), BB_NOT_FOUND);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(create(&a, &s, "t", &err), BB_OK, "call %d after recovery: %s", i, err.msg);
        cr_assert_eq(load(&a, s.id, &got), BB_OK);
    }
    close_inst(&a);
}

static bool contains(const char *hay, size_t len, const char *needle)
{
    return memmem(hay, len, needle, strlen(needle)) != NULL;
}

Test(session_redis, store_holds_no_plaintext)
{
    inst a = open_inst("a.yaml", redis.url);
    bb_session s, got;
    bb_call c = sess_call(2000);
    bb_error err;
    bb_counter_result r;
    char ids[5][BB_SESSION_ID_MAX];
    static const char *const scan[] = { "--scan", NULL };
    char *keys, *line, *save = NULL;
    int n_keys = 0;
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(create(&a, &s, "plainteamname", &err), BB_OK);
        cr_assert_eq(bb_session_load(a.s, &c, s.id, &got, &err), BB_OK);
        snprintf(got.agent, sizeof got.agent, "plainagenthandle");
        snprintf(got.client_name, sizeof got.client_name, "plainclientname");
        cr_assert_eq(bb_session_save(a.s, &c, &got, &err), BB_OK);
        bb_session_clear(&got);
        snprintf(ids[i], sizeof ids[i], "%s", s.id);
    }
    cr_assert_eq(bb_sessions_hit(a.s, &c, "rl:write:plainteamname", 10, 60000, &r, &err), BB_OK);
    keys = bbt_redis_cli(&redis, scan);
    cr_assert_not_null(keys);
    for (line = strtok_r(keys, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *get[] = { "GET", line, NULL }, *dump[] = { "DUMP", line, NULL };
        char *val = bbt_redis_cli(&redis, get), *dv = bbt_redis_cli(&redis, dump);
        size_t vl = val ? strlen(val) : 0, dl = dv ? strlen(dv) : 0;   /* raw output: NULs end it early, fine */
        n_keys++;
        cr_assert_not_null(val);
        cr_assert(strncmp(line, "botboard:", 9) == 0, "key without the prefix: %s", line);
        for (int i = 0; i < 5; i++) {
            cr_assert_not(contains(line, strlen(line), ids[i]), "plaintext id in a key");
            cr_assert_not(contains(val, vl, ids[i]), "plaintext id in a value");
            cr_assert_not(contains(dv, dl, ids[i]), "plaintext id in a DUMP");
        }
        for (const char *const *w = (const char *const[]){ "plainteamname", "plainagenthandle", "plainclientname", NULL };
             *w; w++) {
            cr_assert_not(contains(line, strlen(line), *w), "'%s' in key %s", *w, line);
            cr_assert_not(contains(val, vl, *w), "'%s' in the value of %s", *w, line);
            cr_assert_not(contains(dv, dl, *w), "'%s' in the DUMP of %s", *w, line);
        }
        free(val);
        free(dv);
    }
    free(keys);
    cr_assert_eq(n_keys, 6, "5 sessions and 1 counter expected, found %d keys", n_keys);
    close_inst(&a);
}

Test(session_redis, auth_and_database_from_the_url)
{
    static const char *const setpw[] = { "CONFIG", "SET", "requirepass", "s3cretpw", NULL };
    static const char *const unsetpw[] = { "-a", "s3cretpw", "--no-auth-warning", "CONFIG", "SET", "requirepass", "", NULL };
    static const char *const db3[] = { "-a", "s3cretpw", "--no-auth-warning", "-n", "3", "DBSIZE", NULL };
    static const char *const db0[] = { "-a", "s3cretpw", "--no-auth-warning", "-n", "0", "DBSIZE", NULL };
    char url[256], masked[256], *out;
    bb_session s, got;
    bb_error err;
    inst a;
    free(bbt_redis_cli(&redis, setpw));
    snprintf(url, sizeof url, "redis://:s3cretpw@127.0.0.1:%d/3", redis.port);
    a = open_inst("a.yaml", url);
    cr_assert_eq(create(&a, &s, "t", &err), BB_OK, "%s", err.msg);
    cr_assert_eq(load(&a, s.id, &got), BB_OK);
    out = bbt_redis_cli(&redis, db3);
    cr_assert(out && atoi(out) == 1, "db 3 holds %s", out ? out : "?");
    free(out);
    out = bbt_redis_cli(&redis, db0);
    cr_assert(out && atoi(out) == 0, "db 0 holds %s", out ? out : "?");
    free(out);
    /* the password is a registered secret: masked in every log line */
    bb_log_mask("connecting with s3cretpw now", masked, sizeof masked);
    cr_assert_null(strstr(masked, "s3cretpw"), "%s", masked);
    close_inst(&a);

    /* a wrong password is a configuration error at start, without the password in it */
    {
        char *path;
        bb_app *app;
        snprintf(url, sizeof url, "redis://:wrongpw@127.0.0.1:%d/0", redis.port);
        path = bbt_write_file(dir, "bad.yaml", yaml_for(url));
        app = bb_app_open(path, BB_APP_SESSION, &err);
        free(path);
        cr_assert_null(app);
        cr_assert_not_null(strstr(err.msg, "refused the password"), "%s", err.msg);
        cr_assert_null(strstr(err.msg, "wrongpw"), "%s", err.msg);
    }
    free(bbt_redis_cli(&redis, unsetpw));
}

Test(session_redis, counters_survive_a_script_flush)
{
    static const char *const flush[] = { "SCRIPT", "FLUSH", NULL };
    inst a = open_inst("a.yaml", redis.url);
    bb_call c = sess_call(2000);
    bb_error err;
    bb_counter_result r;
    cr_assert_eq(bb_sessions_hit(a.s, &c, "rl:x", 2, 60000, &r, &err), BB_OK);
    free(bbt_redis_cli(&redis, flush));
    cr_assert_eq(bb_sessions_hit(a.s, &c, "rl:x", 2, 60000, &r, &err), BB_OK, "NOSCRIPT not handled: %s", err.msg);
    cr_assert(r.allowed && r.remaining == 0);
    cr_assert_eq(bb_sessions_hit(a.s, &c, "rl:x", 2, 60000, &r, &err), BB_OK);
    cr_assert_not(r.allowed);
    close_inst(&a);
}

Test(session_redis, bad_urls_are_refused_with_positions)
{
    static const char *const urls[] = { "http://127.0.0.1:6379", "redis://", "redis://host:99999/0",
                                        "redis://host:6379/db", "redis://pw@host:6379/0" };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        char *path = bbt_write_file(dir, "bad.yaml", yaml_for(urls[i]));
        bb_error err;
        bb_app *app = bb_app_open(path, BB_APP_SESSION, &err);
        free(path);
        cr_expect_null(app, "%s accepted", urls[i]);
        if (app) bb_app_close(app);
        cr_expect_not_null(strstr(err.msg, "bad.yaml:6:5: session.redis.url:"), "%s: %s", urls[i], err.msg);
    }
}
