/*
 * tests/test_session_contract.c — the session plugin contract, run
 * unchanged against every backend: built once per backend with
 * -DSESSION_BACKEND_REDIS or not.  The plugin is loaded the way botboard
 * loads it (bb_app_open on a YAML file), and driven through its ops table.
 */
#include <pthread.h>

#include "session_common.h"

typedef struct fixture {
    char                 *dir;
    bb_app               *app;
    const bb_session_ops *ops;
    bb_session_store     *st;
#ifdef SESSION_BACKEND_REDIS
    bbt_redis             redis;
#endif
} fixture;

static fixture fx;

static void open_store(void)
{
    char yaml[1024], why[4096];
    fx.dir = bbt_tempdir("sesscontract");
    cr_assert_not_null(fx.dir);
#ifdef SESSION_BACKEND_REDIS
    if (!bbt_redis_start(&fx.redis, why, sizeof why)) cr_skip_test("redis-server would not start: %s", why);
    snprintf(yaml, sizeof yaml,
             "session:\n  backend: redis\n  redis:\n    url: \"%s\"\n    prefix: \"contract:\"\n"
             "logging:\n  level: warn\n", fx.redis.url);
#else
    (void)why;
    snprintf(yaml, sizeof yaml, "session:\n  backend: memory\n  memory:\n    reap_interval_ms: 50\n"
             "logging:\n  level: warn\n");
#endif
    fx.app = sess_open(fx.dir, "botboard.yaml", yaml);
    fx.ops = bb_app_session(fx.app, &fx.st);
    cr_assert_not_null(fx.ops);
}

static void close_store(void)
{
    bb_app_close(fx.app);
#ifdef SESSION_BACKEND_REDIS
    bbt_redis_destroy(&fx.redis);
#endif
    bbt_rmtree(fx.dir);
    free(fx.dir);
}

TestSuite(session_contract, .init = open_store, .fini = close_store, .timeout = 60);

static void make_hash(uint8_t h[BB_SESSION_HASH_LEN], int n)
{
    bb_host_table.random(h, BB_SESSION_HASH_LEN);
    memcpy(h, &n, sizeof n);
}

static bb_status get_str(const uint8_t h[BB_SESSION_HASH_LEN], char *buf, size_t cap)
{
    bb_call c = sess_call(2000);
    bb_error err;
    void *data = NULL;
    size_t len = 0;
    bb_status st = fx.ops->get(fx.st, &c, h, &data, &len, &err);
    if (st == BB_OK) {
        cr_assert_lt(len, cap);
        memcpy(buf, data, len);
        buf[len] = '\0';
        free(data);
    }
    return st;
}

static bb_status put_str(const uint8_t h[BB_SESSION_HASH_LEN], const char *s, int64_t expires_ms)
{
    bb_call c = sess_call(2000);
    bb_error err;
    return fx.ops->put(fx.st, &c, h, s, strlen(s), expires_ms, &err);
}

static int64_t count_now(void)
{
    bb_call c = sess_call(5000);
    bb_error err;
    int64_t n = -1;
    cr_assert_eq(fx.ops->count(fx.st, &c, &n, &err), BB_OK, "%s", err.msg);
    return n;
}

Test(session_contract, put_get_touch_remove)
{
    uint8_t a[32], b[32];
    char buf[256];
    bb_call c = sess_call(2000);
    bb_error err;
    int64_t far = bb_wall_ms() + 600000;
    make_hash(a, 1);
    make_hash(b, 2);
    cr_assert_eq(get_str(a, buf, sizeof buf), BB_NOT_FOUND);
    cr_assert_eq(put_str(a, "first", far), BB_OK);
    cr_assert_eq(get_str(a, buf, sizeof buf), BB_OK);
    cr_assert_str_eq(buf, "first");
    cr_assert_eq(get_str(b, buf, sizeof buf), BB_NOT_FOUND, "another hash must not see it");
    /* binary-safe, replace */
    {
        const char bin[] = { 'x', '\0', 'y', (char)0xff };
        void *data = NULL;
        size_t len = 0;
        cr_assert_eq(fx.ops->put(fx.st, &c, a, bin, sizeof bin, far, &err), BB_OK);
        cr_assert_eq(fx.ops->get(fx.st, &c, a, &data, &len, &err), BB_OK);
        cr_assert_eq(len, sizeof bin);
        cr_assert_eq(memcmp(data, bin, len), 0);
        free(data);
    }
    cr_assert_eq(fx.ops->touch(fx.st, &c, a, far + 1000, &err), BB_OK);
    cr_assert_eq(fx.ops->touch(fx.st, &c, b, far, &err), BB_NOT_FOUND);
    cr_assert_eq(fx.ops->remove(fx.st, &c, a, &err), BB_OK);
    cr_assert_eq(get_str(a, buf, sizeof buf), BB_NOT_FOUND);
    cr_assert_eq(fx.ops->remove(fx.st, &c, a, &err), BB_OK, "removing twice is fine");
    cr_assert_eq(fx.ops->touch(fx.st, &c, a, far, &err), BB_NOT_FOUND);
}

Test(session_contract, count_and_health)
{
    uint8_t h[32];
    char detail[256] = "";
    bb_call c = sess_call(2000);
    bb_error err;
    cr_assert_eq(count_now(), 0);
    for (int i = 0; i < 3; i++) {
        make_hash(h, i);
        cr_assert_eq(put_str(h, "x", bb_wall_ms() + 600000), BB_OK);
    }
    cr_assert_eq(count_now(), 3);
    cr_assert_eq(fx.ops->health(fx.st, &c, detail, sizeof detail, &err), BB_OK, "%s", err.msg);
    cr_assert_neq(detail[0], '\0');
}

/* Time is the thing under test: the record must vanish at its expiry,
 * not before, and without anyone deleting it. */
Test(session_contract, ttl_expiry_is_invisible_at_once)
{
    uint8_t h[32];
    char buf[64];
    int64_t t0 = bb_wall_ms(), expires = t0 + 1200, deadline = t0 + 6000;
    bool gone = false;
    make_hash(h, 7);
    cr_assert_eq(put_str(h, "soon gone", expires), BB_OK);
    /* Judge each look by when it started and ended, so a slow machine
     * (valgrind) cannot blur the result: a look that ended before the
     * expiry must see it; one that started well after must not. */
    while (!gone && bb_wall_ms() < deadline) {
        int64_t start = bb_wall_ms(), end;
        bb_status st = get_str(h, buf, sizeof buf);
        end = bb_wall_ms();
        if (st == BB_OK) {
            cr_assert_lt(start, expires + 250, "still visible %lld ms after expiry", (long long)(start - expires));
        } else {
            cr_assert_eq(st, BB_NOT_FOUND);
            cr_assert_geq(end, expires - 5, "vanished %lld ms early", (long long)(expires - end));
            gone = true;
        }
        if (!gone) sess_sleep_ms(20);
    }
    cr_assert(gone, "never expired");
}

Test(session_contract, touch_slides_expiry)
{
    uint8_t h[32];
    char buf[64];
    bb_call c = sess_call(2000);
    bb_error err;
    int64_t t0 = bb_wall_ms();
    make_hash(h, 8);
    cr_assert_eq(put_str(h, "idle", t0 + 700), BB_OK);
    cr_assert_eq(fx.ops->touch(fx.st, &c, h, t0 + 2500, &err), BB_OK);
    while (bb_wall_ms() < t0 + 1000) sess_sleep_ms(50);   /* past the first expiry */
    cr_assert_eq(get_str(h, buf, sizeof buf), BB_OK, "touch did not move the expiry");
    cr_assert(POLL_UNTIL(5000, get_str(h, buf, sizeof buf) == BB_NOT_FOUND));
    cr_assert_geq(bb_wall_ms(), t0 + 2500 - 5);
    /* a put with an expiry already past stores nothing visible */
    cr_assert_eq(put_str(h, "dead", bb_wall_ms() - 1), BB_OK);
    cr_assert_eq(get_str(h, buf, sizeof buf), BB_NOT_FOUND);
}

Test(session_contract, expired_records_are_reclaimed_in_background)
{
    uint8_t h[32];
    int64_t t0 = bb_wall_ms();
    for (int i = 0; i < 20; i++) {
        make_hash(h, 100 + i);
        cr_assert_eq(put_str(h, "short", t0 + 300), BB_OK);
    }
    make_hash(h, 999);
    cr_assert_eq(put_str(h, "long", t0 + 600000), BB_OK);
    cr_assert_eq(count_now(), 21);
    /* nobody reads them: the backend itself must drop them */
    cr_assert(POLL_UNTIL(8000, count_now() == 1), "count stayed at %lld", (long long)count_now());
}

Test(session_contract, counter_boundary_and_window_reset)
{
    bb_call c = sess_call(2000);
    bb_error err;
    bb_counter_result r[5];
    const uint32_t limit = 3;
    const int64_t window = 1500;
    int64_t t0 = bb_wall_ms();
    cr_assert_not_null(fx.ops->hit, "every shipped backend has counters");
    for (int i = 0; i < 5; i++) cr_assert_eq(fx.ops->hit(fx.st, &c, "c:boundary", limit, window, &r[i], &err), BB_OK, "%s", err.msg);
    /* limit-1, limit: allowed; limit+1 and on: refused, still counted */
    cr_assert(r[0].allowed && r[0].remaining == 2);
    cr_assert(r[1].allowed && r[1].remaining == 1);
    cr_assert(r[2].allowed && r[2].remaining == 0);
    cr_assert(!r[3].allowed && r[3].remaining == 0);
    cr_assert(!r[4].allowed && r[4].remaining == 0);
    cr_assert_geq(r[0].reset_ms, t0 + window - 50);
    cr_assert_leq(r[0].reset_ms, bb_wall_ms() + window + 50);
    cr_assert_leq(llabs(r[4].reset_ms - r[0].reset_ms), 50, "one window for all hits");
    /* another name counts on its own */
    cr_assert_eq(fx.ops->hit(fx.st, &c, "c:other", limit, window, &r[0], &err), BB_OK);
    cr_assert(r[0].allowed && r[0].remaining == 2);
    /* after the reset time a new window starts */
    while (bb_wall_ms() <= r[4].reset_ms + 20) sess_sleep_ms(20);
    cr_assert_eq(fx.ops->hit(fx.st, &c, "c:boundary", limit, window, &r[0], &err), BB_OK);
    cr_assert(r[0].allowed, "the window did not reset");
    cr_assert_eq(r[0].remaining, 2);
    /* limit 0 refuses everything */
    cr_assert_eq(fx.ops->hit(fx.st, &c, "c:zero", 0, window, &r[0], &err), BB_OK);
    cr_assert(!r[0].allowed);
}

/* ---- 8 threads at once ------------------------------------------------------- */

#define THREADS 8
#define ROUNDS  300
#define HITS    100
#define LIMIT   500

typedef struct worker { int id; int failures; int allowed; } worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        uint8_t h[32];
        char val[64], buf[64];
        bb_call c = sess_call(5000);
        bb_error err;
        make_hash(h, w->id * 100000 + i);
        snprintf(val, sizeof val, "w%d-r%d", w->id, i);
        if (put_str(h, val, bb_wall_ms() + 600000) != BB_OK) w->failures++;
        if (get_str(h, buf, sizeof buf) != BB_OK || strcmp(buf, val) != 0) w->failures++;
        if (fx.ops->touch(fx.st, &c, h, bb_wall_ms() + 700000, &err) != BB_OK) w->failures++;
        if (i % 2 == 0 && fx.ops->remove(fx.st, &c, h, &err) != BB_OK) w->failures++;
    }
    for (int i = 0; i < HITS; i++) {
        bb_call c = sess_call(5000);
        bb_error err;
        bb_counter_result r;
        if (fx.ops->hit(fx.st, &c, "c:shared", LIMIT, 600000, &r, &err) != BB_OK) w->failures++;
        else if (r.allowed) w->allowed++;
    }
    return NULL;
}

Test(session_contract, eight_threads_at_once, .timeout = 120)
{
    pthread_t t[THREADS];
    worker w[THREADS];
    int allowed = 0;
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){ .id = i + 1 };
        cr_assert_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(w[i].failures, 0, "thread %d: %d failed calls", i, w[i].failures);
        allowed += w[i].allowed;
    }
    cr_assert_eq(allowed, LIMIT, "the counter is not atomic: %d hits allowed for a limit of %d", allowed, LIMIT);
    cr_assert_eq(count_now(), THREADS * ROUNDS / 2);
}
