/*
 * tests/test_session_core.c — core/sessions.c over the memory backend:
 * create/load/save/end, ids, key rotation, tampered and foreign records,
 * expiry through the core, counters, metrics, session.keys validation.
 */
#include <sodium.h>

#include "config.h"
#include "metrics.h"
#include "session_common.h"
#include "session_memo.h"
#include "session_seal.h"
#include "sessions.h"

static char *dir;

static void mk(void)
{
    dir = bbt_tempdir("sesscore");
    cr_assert_not_null(dir);
}

static void rm(void)
{
    bbt_rmtree(dir);
    free(dir);
}

TestSuite(session_core, .init = mk, .fini = rm, .timeout = 60);

static const char *yaml_with(const char *keys, int ttl_s, int idle_s, int touch_s)
{
    static char y[2048];
    snprintf(y, sizeof y,
             "session:\n  backend: memory\n  ttl_s: %d\n  idle_timeout_s: %d\n  touch_interval_s: %d\n"
             "  gauge_interval_s: 1\n"
             "  keys: [%s]\nlogging:\n  level: error\n",
             ttl_s, idle_s, touch_s, keys);
    return y;
}

typedef struct env { bb_app *app; bb_sessions *s; bb_config *extra[4]; int n_extra; } env;

static env open_env(const char *keys, int ttl_s, int idle_s, int touch_s)
{
    env e = { 0 };
    char why[512];
    e.app = sess_open(dir, "botboard.yaml", yaml_with(keys, ttl_s, idle_s, touch_s));
    e.s = bb_sessions_new(e.app, bb_config_root(bb_app_config(e.app)), why, sizeof why);
    cr_assert_not_null(e.s, "%s", why);
    return e;
}

static void close_env(env *e)
{
    bb_sessions_free(e->s);
    bb_app_close(e->app);
    for (int i = 0; i < e->n_extra; i++) bb_config_free(e->extra[i]);
}

/* Reload with another key list (the config stays alive until close_env). */
static bb_status reload_keys(env *e, const char *keys)
{
    char err[2048], *path = bbt_write_file(dir, "reload.yaml", yaml_with(keys, 3600, 3600, 60));
    bb_config *c = bb_config_load(path, err, sizeof err);
    bb_error berr;
    free(path);
    cr_assert_not_null(c, "%s", err);
    cr_assert(bb_config_validate_core(c, err, sizeof err), "%s", err);
    e->extra[e->n_extra++] = c;
    bb_error_clear(&berr);
    return bb_sessions_reload(e->s, bb_config_root(c), &berr);
}

static void new_session(env *e, bb_session *s, const char *team)
{
    bb_call c = sess_call(2000);
    bb_error err;
    memset(s, 0, sizeof *s);
    snprintf(s->team, sizeof s->team, "%s", team);
    snprintf(s->key_id, sizeof s->key_id, "01KEYID");
    snprintf(s->protocol, sizeof s->protocol, "2025-11-25");
    snprintf(s->client_name, sizeof s->client_name, "criterion");
    snprintf(s->client_version, sizeof s->client_version, "2.4");
    cr_assert_eq(bb_session_create(e->s, &c, s, &err), BB_OK, "%s", err.msg);
}

static bb_status load(env *e, const char *id, bb_session *out)
{
    bb_call c = sess_call(2000);
    bb_error err;
    return bb_session_load(e->s, &c, id, out, &err);
}

/* The raw sealed record of id as the backend holds it under key k. */
static bool raw_get(env *e, const char *key_text, const char *id, uint8_t **data, size_t *len, uint8_t hash[32])
{
    bb_seal_key k;
    char why[256];
    bb_session_store *st;
    const bb_session_ops *ops = bb_app_session(e->app, &st);
    bb_call c = sess_call(2000);
    bb_error err;
    cr_assert(bb_seal_key_parse(key_text, &k, why, sizeof why), "%s", why);
    bb_seal_id_hash(&k, id, hash);
    return ops->get(st, &c, hash, (void **)data, len, &err) == BB_OK;
}

static void raw_put(env *e, const uint8_t hash[32], const uint8_t *data, size_t len)
{
    bb_session_store *st;
    const bb_session_ops *ops = bb_app_session(e->app, &st);
    bb_call c = sess_call(2000);
    bb_error err;
    cr_assert_eq(ops->put(st, &c, hash, data, len, bb_wall_ms() + 600000, &err), BB_OK);
}

Test(session_core, create_load_save_end)
{
    env e = open_env("\"" KEY_A "\"", 3600, 3600, 60);
    bb_session s, got;
    bb_call c = sess_call(2000);
    bb_error err;
    new_session(&e, &s, "team-one");
    cr_assert_eq(strlen(s.id), 43, "id '%s'", s.id);
    for (const char *p = s.id; *p; p++)
        cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p), "char %c", *p);
    cr_assert_gt(s.created_ms, 0);
    cr_assert_eq(s.expires_ms, s.created_ms + 3600 * 1000);

    cr_assert_eq(load(&e, s.id, &got), BB_OK);
    cr_assert_str_eq(got.id, s.id);
    cr_assert_str_eq(got.team, "team-one");
    cr_assert_str_eq(got.key_id, "01KEYID");
    cr_assert_str_eq(got.protocol, "2025-11-25");
    cr_assert_str_eq(got.client_name, "criterion");
    cr_assert_str_eq(got.agent, "");
    cr_assert_eq(got.created_ms, s.created_ms);

    /* login, log level, subscriptions, event id survive a save */
    snprintf(got.agent, sizeof got.agent, "alice");
    snprintf(got.log_level, sizeof got.log_level, "debug");
    got.initialized = true;
    got.last_event_id = 42;
    cr_assert(bb_session_subscribe(&got, "botboard://feed"));
    cr_assert(bb_session_subscribe(&got, "botboard://thread/1"));
    cr_assert(bb_session_subscribe(&got, "botboard://feed"), "dedup is not a failure");
    cr_assert_eq(got.n_subs, 2);
    cr_assert_eq(bb_session_save(e.s, &c, &got, &err), BB_OK, "%s", err.msg);
    bb_session_clear(&got);

    cr_assert_eq(load(&e, s.id, &got), BB_OK);
    cr_assert_str_eq(got.agent, "alice");
    cr_assert_str_eq(got.log_level, "debug");
    cr_assert(got.initialized);
    cr_assert_eq(got.last_event_id, 42);
    cr_assert_eq(got.n_subs, 2);
    cr_assert_str_eq(got.subs[1], "botboard://thread/1");
    bb_session_unsubscribe(&got, "botboard://feed");
    cr_assert_eq(got.n_subs, 1);
    cr_assert_str_eq(got.subs[0], "botboard://thread/1");
    bb_session_clear(&got);

    cr_assert_eq(bb_session_end(e.s, &c, s.id, &err), BB_OK);
    cr_assert_eq(load(&e, s.id, &got), BB_NOT_FOUND);
    cr_assert_eq(bb_session_end(e.s, &c, s.id, &err), BB_OK, "ending twice is fine");
    cr_assert_eq(load(&e, "no-such-session", &got), BB_NOT_FOUND);
    cr_assert_eq(load(&e, "", &got), BB_NOT_FOUND);
    cr_assert_eq(load(&e, "bad id with spaces", &got), BB_NOT_FOUND);
    close_env(&e);
}

Test(session_core, ids_are_unique)
{
    env e = open_env("\"" KEY_A "\"", 3600, 3600, 60);
    char seen[200][BB_SESSION_ID_MAX];
    for (int i = 0; i < 200; i++) {
        bb_session s;
        new_session(&e, &s, "t");
        for (int j = 0; j < i; j++) cr_assert_str_neq(seen[j], s.id);
        snprintf(seen[i], sizeof seen[i], "%s", s.id);
    }
    close_env(&e);
}

Test(session_core, subscription_set_is_bounded)
{
    bb_session s;
    char uri[64];
    memset(&s, 0, sizeof s);
    for (int i = 0; i < BB_SESSION_SUBS_MAX; i++) {
        snprintf(uri, sizeof uri, "botboard://thread/%d", i);
        cr_assert(bb_session_subscribe(&s, uri));
    }
    cr_assert_not(bb_session_subscribe(&s, "botboard://one-too-many"));
    cr_assert_eq(s.n_subs, BB_SESSION_SUBS_MAX);
    bb_session_clear(&s);
}

Test(session_core, store_holds_no_plaintext)
{
    env e = open_env("\"" KEY_A "\"", 3600, 3600, 60);
    bb_session s, got;
    bb_call c = sess_call(2000);
    bb_error err;
    uint8_t *raw, hash[32];
    size_t len;
    new_session(&e, &s, "plainteam");
    cr_assert_eq(load(&e, s.id, &got), BB_OK);
    snprintf(got.agent, sizeof got.agent, "plainagent");
    cr_assert_eq(bb_session_save(e.s, &c, &got, &err), BB_OK);
    cr_assert(raw_get(&e, KEY_A, s.id, &raw, &len, hash));
    cr_assert_neq(memcmp(hash, s.id, 32), 0);
    cr_assert_null(memmem(raw, len, "plainteam", 9));
    cr_assert_null(memmem(raw, len, "plainagent", 10));
    cr_assert_null(memmem(raw, len, s.id, strlen(s.id)));
    cr_assert_eq(raw[0], BB_SEAL_VERSION);
    cr_assert_eq(raw[1], 2);
    cr_assert_eq(memcmp(raw + 2, "ka", 2), 0, "the key id is in the clear header");
    free(raw);
    close_env(&e);
}

Test(session_core, key_rotation)
{
    env e = open_env("\"" KEY_A "\"", 3600, 3600, 60);
    bb_session old1, old2, fresh, got;
    uint8_t *raw, hash[32];
    size_t len;
    new_session(&e, &old1, "t");
    new_session(&e, &old2, "t");

    /* B now seals, A still opens */
    cr_assert_eq(reload_keys(&e, "\"" KEY_B "\", \"" KEY_A "\""), BB_OK);
    new_session(&e, &fresh, "t");
    cr_assert(raw_get(&e, KEY_B, fresh.id, &raw, &len, hash), "new records live under the new key's hash");
    cr_assert_eq(memcmp(raw + 2, "kb", 2), 0, "new records are sealed with the first key");
    free(raw);
    cr_assert_not(raw_get(&e, KEY_A, fresh.id, &raw, &len, hash));

    cr_assert_eq(load(&e, old1.id, &got), BB_OK, "an old-key session is still readable");
    cr_assert_str_eq(got.team, "t");
    bb_session_clear(&got);
    /* ... and was moved to the new key on that load */
    cr_assert(raw_get(&e, KEY_B, old1.id, &raw, &len, hash));
    cr_assert_eq(memcmp(raw + 2, "kb", 2), 0);
    free(raw);
    cr_assert_not(raw_get(&e, KEY_A, old1.id, &raw, &len, hash));

    /* A dropped: old1 (migrated) and fresh live on, old2 (never used since) is gone */
    cr_assert_eq(reload_keys(&e, "\"" KEY_B "\""), BB_OK);
    cr_assert_eq(load(&e, old1.id, &got), BB_OK);
    bb_session_clear(&got);
    cr_assert_eq(load(&e, fresh.id, &got), BB_OK);
    bb_session_clear(&got);
    cr_assert_eq(load(&e, old2.id, &got), BB_NOT_FOUND);
    close_env(&e);
}

Test(session_core, unknown_key_id_is_absent)
{
    env e = open_env("\"" KEY_A "\"", 3600, 3600, 60);
    bb_session s, got;
    uint8_t *raw, hash[32], chash[32];
    size_t len;
    bb_seal_key kc;
    char why[128];
    new_session(&e, &s, "t");
    /* a record sealed under key "kc" sitting in A's slot */
    cr_assert(raw_get(&e, KEY_A, s.id, &raw, &len, hash));
    free(raw);
    cr_assert(bb_seal_key_parse(KEY_C, &kc, why, sizeof why));
    (void)chash;
    cr_assert(bb_seal(&kc, hash, "{}", 2, &raw, &len));
    raw_put(&e, hash, raw, len);
    free(raw);
    cr_assert_eq(load(&e, s.id, &got), BB_NOT_FOUND);
    close_env(&e);
}

Test(session_core, tampered_records_are_absent)
{
    env e = open_env("\"" KEY_A "\"", 3600, 3600, 60);
    bb_session s1, s2, got;
    uint8_t *raw, *copy, hash1[32], hash2[32];
    size_t len, len2;
    new_session(&e, &s1, "t1");
    new_session(&e, &s2, "t2");
    /* Opened once first, so every check below also meets a remembered
     * record (session_memo.h): only the exact bytes may skip the opening. */
    cr_assert_eq(load(&e, s1.id, &got), BB_OK);
    bb_session_clear(&got);
    cr_assert_eq(load(&e, s2.id, &got), BB_OK);
    bb_session_clear(&got);
    cr_assert(raw_get(&e, KEY_A, s1.id, &raw, &len, hash1));
    copy = malloc(len);
    cr_assert_not_null(copy);
    /* each byte position flipped in turn (header, nonce, ciphertext, tag) */
    for (size_t i = 0; i < len; i += (i < 40 ? 1 : 17)) {
        memcpy(copy, raw, len);
        copy[i] ^= 0x01;
        raw_put(&e, hash1, copy, len);
        cr_assert_eq(load(&e, s1.id, &got), BB_NOT_FOUND, "flipped byte %zu still opened", i);
    }
    /* truncated at every length below the minimum and a few above */
    for (size_t n = 0; n < len; n += (n < 50 ? 1 : 31)) {
        raw_put(&e, hash1, raw, n);
        cr_assert_eq(load(&e, s1.id, &got), BB_NOT_FOUND, "truncated to %zu still opened", n);
    }
    free(copy);
    /* a valid record copied into another session's slot does not open there */
    cr_assert(raw_get(&e, KEY_A, s2.id, &copy, &len2, hash2));
    free(copy);
    raw_put(&e, hash2, raw, len);
    cr_assert_eq(load(&e, s2.id, &got), BB_NOT_FOUND, "a record moved to another slot opened");
    /* the untouched original still opens where it belongs */
    raw_put(&e, hash1, raw, len);
    cr_assert_eq(load(&e, s1.id, &got), BB_OK);
    cr_assert_str_eq(got.team, "t1");
    bb_session_clear(&got);
    free(raw);
    close_env(&e);
}

/* The memo of opened records (session_memo.h): an entry answers only for
 * the exact sealed bytes, id hash and keyring it was opened with, hands out
 * copies, and never holds the session id. */
Test(session_core, memo_answers_only_for_the_same_bytes_hash_and_ring)
{
    bb_session_memo *m = bb_session_memo_new();
    bb_session rec, got;
    uint8_t hash[32], other[32], bytes[64];
    int ring1, ring2;
    cr_assert_not_null(m);
    memset(&rec, 0, sizeof rec);
    snprintf(rec.id, sizeof rec.id, "secret-session-id");
    snprintf(rec.team, sizeof rec.team, "t");
    snprintf(rec.agent, sizeof rec.agent, "alice");
    cr_assert(bb_session_subscribe(&rec, "botboard://feed"));
    memset(hash, 7, sizeof hash);
    memset(other, 7, sizeof other);
    other[31] = 8;   /* same slot, another hash */
    for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (uint8_t)i;

    memset(&got, 0, sizeof got);
    cr_assert_not(bb_session_memo_get(m, &ring1, hash, bytes, sizeof bytes, &got), "empty memo");
    bb_session_memo_put(m, &ring1, hash, bytes, sizeof bytes, &rec);
    cr_assert(bb_session_memo_get(m, &ring1, hash, bytes, sizeof bytes, &got));
    cr_assert_str_eq(got.agent, "alice");
    cr_assert_str_eq(got.id, "", "the memo holds no session id");
    cr_assert_eq(got.n_subs, 1);
    cr_assert_neq(got.subs[0], rec.subs[0], "subscriptions are copies");
    cr_assert_str_eq(got.subs[0], "botboard://feed");
    bb_session_clear(&got);

    bytes[40] ^= 1;
    cr_assert_not(bb_session_memo_get(m, &ring1, hash, bytes, sizeof bytes, &got), "one byte differs");
    bytes[40] ^= 1;
    cr_assert_not(bb_session_memo_get(m, &ring1, hash, bytes, sizeof bytes - 1, &got), "shorter");
    cr_assert_not(bb_session_memo_get(m, &ring2, hash, bytes, sizeof bytes, &got), "another keyring");
    cr_assert_not(bb_session_memo_get(m, &ring1, other, bytes, sizeof bytes, &got), "another id hash");
    bb_session_memo_forget(m, other);
    cr_assert(bb_session_memo_get(m, &ring1, hash, bytes, sizeof bytes, &got), "forget of another hash");
    bb_session_clear(&got);
    bb_session_memo_forget(m, hash);
    cr_assert_not(bb_session_memo_get(m, &ring1, hash, bytes, sizeof bytes, &got), "forgotten");
    bb_session_memo_put(m, &ring1, hash, bytes, sizeof bytes, &rec);
    bb_session_clear(&rec);
    bb_session_memo_free(m);   /* frees the entry it still holds (valgrind checks) */
}

/* A record loaded (so remembered) twice still goes with the key that
 * sealed it.  (tampered_records_are_absent runs its checks on remembered
 * records too.) */
Test(session_core, a_remembered_record_goes_with_its_key)
{
    env e = open_env("\"" KEY_A "\"", 3600, 3600, 60);
    bb_session s, got;
    new_session(&e, &s, "t1");
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(load(&e, s.id, &got), BB_OK);
        cr_assert_str_eq(got.id, s.id, "the id comes from the request, not from memory");
        cr_assert_str_eq(got.team, "t1");
        bb_session_clear(&got);
    }
    cr_assert_eq(reload_keys(&e, "\"" KEY_B "\""), BB_OK);
    cr_assert_eq(load(&e, s.id, &got), BB_NOT_FOUND);
    close_env(&e);
}

/* Time is the thing under test (second-scale settings). */
Test(session_core, ttl_bounds_a_busy_session)
{
    env e = open_env("\"" KEY_A "\"", 1, 3600, 0);
    bb_session s, got;
    int64_t ends;
    bool gone = false;
    new_session(&e, &s, "t");
    ends = s.created_ms + 1000;
    /* used all the time, yet it ends at created + ttl: a look that ended
     * before must find it, one that started well after must not */
    while (!gone && bb_wall_ms() < ends + 4000) {
        int64_t start = bb_wall_ms(), end;
        bb_status st = load(&e, s.id, &got);
        end = bb_wall_ms();
        if (st == BB_OK) {
            bb_session_clear(&got);
            cr_assert_lt(start, ends + 250, "outlived its ttl by %lld ms", (long long)(start - ends));
            sess_sleep_ms(20);
        } else {
            cr_assert_eq(st, BB_NOT_FOUND);
            cr_assert_geq(end, ends - 5, "ended %lld ms before its ttl", (long long)(ends - end));
            gone = true;
        }
    }
    cr_assert(gone, "never ended");
    close_env(&e);
}

Test(session_core, idle_timeout_slides_on_activity)
{
    env e = open_env("\"" KEY_A "\"", 3600, 1, 0);
    bb_session s, got;
    int64_t t0 = bb_wall_ms(), last;
    new_session(&e, &s, "t");
    /* used every 300 ms for 2.5 s: more than twice the idle timeout */
    while (bb_wall_ms() < t0 + 2500) {
        cr_assert_eq(load(&e, s.id, &got), BB_OK, "an active session expired after %lld ms",
                     (long long)(bb_wall_ms() - t0));
        bb_session_clear(&got);
        sess_sleep_ms(300);
    }
    cr_assert_eq(load(&e, s.id, &got), BB_OK);
    bb_session_clear(&got);
    /* every load is activity, so polling would keep it alive: wait out the
     * idle timeout untouched, then one look */
    last = bb_wall_ms();
    while (bb_wall_ms() < last + 1100) sess_sleep_ms(50);
    cr_assert_eq(load(&e, s.id, &got), BB_NOT_FOUND, "idle for %lld ms and still alive",
                 (long long)(bb_wall_ms() - last));
    close_env(&e);
}

Test(session_core, counters_through_the_core)
{
    env e = open_env("\"" KEY_A "\"", 3600, 3600, 60);
    bb_call c = sess_call(2000);
    bb_error err;
    bb_counter_result r;
    for (int i = 1; i <= 3; i++) {
        cr_assert_eq(bb_sessions_hit(e.s, &c, "rl:write:team-x", 2, 60000, &r, &err), BB_OK, "%s", err.msg);
        cr_assert_eq(r.allowed, i <= 2);
    }
    cr_assert_eq(bb_sessions_hit(e.s, &c, "rl:write:team-y", 2, 60000, &r, &err), BB_OK);
    cr_assert(r.allowed && r.remaining == 1);
    close_env(&e);
}

Test(session_core, metrics_count_lookups_misses_created)
{
    env e = open_env("\"" KEY_A "\"", 3600, 3600, 60);
    bb_series *lookups = bb_metric_series(bb_metric_family(BB_METRIC_COUNTER, "session_lookups_total", "", NULL), NULL);
    bb_series *misses = bb_metric_series(bb_metric_family(BB_METRIC_COUNTER, "session_misses_total", "", NULL), NULL);
    bb_series *created = bb_metric_series(bb_metric_family(BB_METRIC_COUNTER, "sessions_created_total", "", NULL), NULL);
    bb_series *active = bb_metric_series(bb_metric_family(BB_METRIC_GAUGE, "sessions_active", "", NULL), NULL);
    double l0 = bb_series_value(lookups), m0 = bb_series_value(misses), c0 = bb_series_value(created);
    bb_session s, got;
    char detail[128];
    bb_call c = sess_call(2000);
    bb_error err;
    new_session(&e, &s, "t");
    new_session(&e, &s, "t");
    cr_assert_eq(load(&e, s.id, &got), BB_OK);
    cr_assert_eq(load(&e, "nope", &got), BB_NOT_FOUND);
    cr_assert_eq(bb_series_value(created) - c0, 2);
    cr_assert_eq(bb_series_value(lookups) - l0, 2);
    cr_assert_eq(bb_series_value(misses) - m0, 1);
    cr_assert_eq(bb_sessions_health(e.s, &c, detail, sizeof detail, &err), BB_OK);
    cr_assert(POLL_UNTIL(3000, bb_series_value(active) == 2), "gauge at %g", bb_series_value(active));
    close_env(&e);
}

Test(session_core, dev_without_keys_uses_an_ephemeral_key)
{
    env e = open_env("", 3600, 3600, 60);
    bb_session s, got;
    new_session(&e, &s, "t");
    cr_assert_eq(load(&e, s.id, &got), BB_OK);
    /* a reload that still has no keys keeps the same ephemeral key */
    cr_assert_eq(reload_keys(&e, ""), BB_OK);
    cr_assert_eq(load(&e, s.id, &got), BB_OK);
    close_env(&e);
}

/* ---- session.keys validation: file:line:col for each rule ------------------ */

static const char *errors_of(const char *yaml)
{
    static char err[4096];
    char *path = bbt_write_file(dir, "check.yaml", yaml);
    bb_config *c = bb_config_load(path, err, sizeof err);
    free(path);
    if (c && bb_config_validate_core(c, err, sizeof err)) err[0] = '\0';
    bb_config_free(c);
    return err;
}

typedef struct bad_keys { const char *yaml; const char *expect; } bad_keys;

Test(session_core, key_text_is_validated_with_positions)
{
    static const bad_keys cases[] = {
        { "session:\n  keys:\n    - \"nocolon\"\n", "check.yaml:3:7: session.keys: a key must be \"ID:BASE64(32 bytes)\"" },
        { "session:\n  keys:\n    - \":AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n",
          "check.yaml:3:7: session.keys: a key id must be 1-32 characters" },
        { "session:\n  keys:\n    - \"bad id:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n",
          "check.yaml:3:7: session.keys: key id 'bad id' may only use" },
        { "session:\n  keys:\n    - \"k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\"\n",
          "check.yaml:3:7: session.keys: key 'k1' is not base64 of exactly 32 bytes" },
        { "session:\n  keys:\n    - \"k1:not base64 at all!\"\n", "check.yaml:3:7: session.keys: key 'k1' is not base64" },
        { "session:\n  keys: [\"" KEY_A "\", \"ka:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\"]\n",
          "check.yaml:2:61: session.keys: key id 'ka' is used twice" },
        { "environment: prod\nmcp:\n  auth: key\n",
          "check.yaml:1:1: environment: prod needs session.keys" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = errors_of(cases[i].yaml);
        cr_expect_not_null(strstr(got, cases[i].expect), "case %zu: expected '%s', got '%s'", i, cases[i].expect, got);
        cr_expect_null(strstr(got, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"), "case %zu leaks key material: %s", i, got);
    }
    /* accepted: standard and URL-safe alphabets, with or without padding */
    cr_assert_str_eq(errors_of("session:\n  keys: [\"" KEY_A "\", \"k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8\","
                               " \"k3.x_y-z:-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_w\"]\n"), "");
}

/* ---- session_memory specifics ---------------------------------------------- */

Test(session_core, memory_store_evicts_the_least_recently_used)
{
    bb_app *app = sess_open(dir, "mem.yaml", "session:\n  backend: memory\n  memory:\n    max_sessions: 3\n"
                                             "logging:\n  level: error\n");
    bb_session_store *st;
    const bb_session_ops *ops = bb_app_session(app, &st);
    bb_series *evicted = bb_metric_series(bb_metric_family(BB_METRIC_COUNTER, "session_memory_evictions_total", "", NULL), NULL);
    double e0 = bb_series_value(evicted);
    uint8_t h[5][32];
    bb_call c = sess_call(2000);
    bb_error err;
    void *data;
    size_t len;
    int64_t n = 0;
    for (int i = 0; i < 5; i++) {
        memset(h[i], 0, sizeof h[i]);
        h[i][0] = (uint8_t)(i + 1);
        h[i][8] = (uint8_t)(i * 7);
    }
    for (int i = 0; i < 3; i++) cr_assert_eq(ops->put(st, &c, h[i], "x", 1, bb_wall_ms() + 600000, &err), BB_OK);
    /* use 0: now 1 is the least recently used */
    cr_assert_eq(ops->get(st, &c, h[0], &data, &len, &err), BB_OK);
    free(data);
    cr_assert_eq(ops->put(st, &c, h[3], "x", 1, bb_wall_ms() + 600000, &err), BB_OK);
    cr_assert_eq(ops->get(st, &c, h[1], &data, &len, &err), BB_NOT_FOUND, "the least recently used was kept");
    cr_assert_eq(ops->get(st, &c, h[0], &data, &len, &err), BB_OK, "a recently used one was evicted");
    free(data);
    cr_assert_eq(ops->get(st, &c, h[2], &data, &len, &err), BB_OK);
    free(data);
    cr_assert_eq(ops->get(st, &c, h[3], &data, &len, &err), BB_OK);
    free(data);
    cr_assert_eq(bb_series_value(evicted) - e0, 1);
    cr_assert_eq(ops->count(st, &c, &n, &err), BB_OK);
    cr_assert_eq(n, 3, "the bound is exact with one shard");
    /* replacing an existing record is not growth: nothing evicted */
    cr_assert_eq(ops->put(st, &c, h[3], "y", 1, bb_wall_ms() + 600000, &err), BB_OK);
    cr_assert_eq(bb_series_value(evicted) - e0, 1);
    bb_app_close(app);
}

Test(session_core, memory_store_refuses_oversized_records_and_bad_windows)
{
    bb_app *app = sess_open(dir, "mem.yaml", "session:\n  backend: memory\n  memory:\n    max_record_bytes: 64\n"
                                             "    max_counters: 1\nlogging:\n  level: error\n");
    bb_session_store *st;
    const bb_session_ops *ops = bb_app_session(app, &st);
    uint8_t h[32] = { 9 };
    char big[65];
    bb_call c = sess_call(2000);
    bb_error err;
    bb_counter_result r;
    memset(big, 'b', sizeof big);
    cr_assert_eq(ops->put(st, &c, h, big, 64, bb_wall_ms() + 60000, &err), BB_OK);
    cr_assert_eq(ops->put(st, &c, h, big, 65, bb_wall_ms() + 60000, &err), BB_INVALID);
    cr_assert_eq(ops->hit(st, &c, "c:a", 5, 0, &r, &err), BB_INVALID);
    cr_assert_eq(ops->hit(st, &c, "c:a", 5, 60000, &r, &err), BB_OK);
    cr_assert_eq(ops->hit(st, &c, "c:b", 5, 60000, &r, &err), BB_UNAVAILABLE, "the counter table is bounded");
    cr_assert_eq(ops->hit(st, &c, "c:a", 5, 60000, &r, &err), BB_OK, "existing counters keep counting");
    cr_assert_eq(r.remaining, 3);
    bb_app_close(app);
}

Test(session_core, memory_keys_are_validated_with_positions)
{
    char *path = bbt_write_file(dir, "bad.yaml", "session:\n  backend: memory\n  memory:\n    max_sessions: 0\n");
    bb_error err;
    bb_app *app = bb_app_open(path, BB_APP_SESSION, &err);
    free(path);
    cr_assert_null(app);
    cr_assert_not_null(strstr(err.msg, "bad.yaml:4:5: session.memory.max_sessions: 0 is out of range"), "%s", err.msg);
}

/* ---- the record codec --------------------------------------------------------- */

#include "session_record.h"

Test(session_core, record_roundtrip_and_every_truncation_refused)
{
    bb_session in, out;
    char long_uri[3001];
    uint8_t *rec;
    size_t len;
    memset(&in, 0, sizeof in);
    snprintf(in.team, sizeof in.team, "team");
    snprintf(in.agent, sizeof in.agent, "agënt");
    snprintf(in.protocol, sizeof in.protocol, "2025-03-26");
    in.initialized = true;
    in.last_event_id = UINT64_MAX - 1;
    in.created_ms = 1;
    in.last_active_ms = -2;
    in.expires_ms = INT64_MAX;
    memset(long_uri, 'u', sizeof long_uri - 1);
    long_uri[sizeof long_uri - 1] = '\0';
    cr_assert(bb_session_subscribe(&in, "social://feed"));
    cr_assert(bb_session_subscribe(&in, long_uri));
    rec = bb_session_record_encode(&in, &len);
    cr_assert_not_null(rec);
    memset(&out, 0, sizeof out);
    cr_assert(bb_session_record_decode(rec, len, &out));
    cr_assert_str_eq(out.team, "team");
    cr_assert_str_eq(out.agent, "agënt");
    cr_assert_str_eq(out.protocol, "2025-03-26");
    cr_assert(out.initialized);
    cr_assert_eq(out.last_event_id, UINT64_MAX - 1);
    cr_assert_eq(out.last_active_ms, -2);
    cr_assert_eq(out.expires_ms, INT64_MAX);
    cr_assert_eq(out.n_subs, 2);
    cr_assert_str_eq(out.subs[1], long_uri);
    bb_session_clear(&out);
    for (size_t n = 0; n < len; n++) {
        memset(&out, 0, sizeof out);
        cr_assert_not(bb_session_record_decode(rec, n, &out), "truncated to %zu accepted", n);
    }
    /* trailing bytes and a wrong version are refused too */
    {
        uint8_t *longer = malloc(len + 1);
        cr_assert_not_null(longer);
        memcpy(longer, rec, len);
        longer[len] = 0;
        memset(&out, 0, sizeof out);
        cr_assert_not(bb_session_record_decode(longer, len + 1, &out));
        longer[0] = 2;
        cr_assert_not(bb_session_record_decode(longer, len, &out));
        free(longer);
    }
    /* random garbage never crashes and never half-fills subs */
    for (int i = 0; i < 2000; i++) {
        uint8_t junk[300];
        size_t n = (size_t)(bb_host_table.random_uniform(sizeof junk));
        bb_host_table.random(junk, sizeof junk);
        junk[0] = BB_SESSION_RECORD_VERSION;
        memset(&out, 0, sizeof out);
        if (bb_session_record_decode(junk, n, &out)) bb_session_clear(&out);
        else cr_assert_eq(out.n_subs, 0);
    }
    free(rec);
    bb_session_clear(&in);
}
