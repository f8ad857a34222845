/*
 * core/sessions.c — MCP sessions over the session plugin (contract in
 * sessions.h; cryptography in session_seal.c).
 *
 * Record: the binary layout of session_record.h, sealed under the first
 * key of the keyring.  The backend's expiry is set to the session's
 * expiry; the sealed created/last-active times are checked again on load
 * (with the current ttl/idle settings), so a record the backend kept too
 * long, or whose expiry was moved by someone with write access to the
 * store, is still refused.
 *
 * Sliding expiry: a load that finds the record's last activity older than
 * session.touch_interval_s writes the record back (re-sealed, new last
 * activity, new backend expiry), so the idle timeout effectively lies in
 * [idle_timeout_s - touch_interval_s, idle_timeout_s].  Saves are whole
 * records: the last writer wins.
 *
 * Key rotation: a lookup tries the first key's id hash, then each older
 * key's (see session_seal.h).  A record found under an older key is
 * re-sealed under the first key and moved to its hash.  The keyring is an
 * atomic pointer swapped by reload; replaced rings stay alive (retired)
 * until bb_sessions_free, so a reader never sees freed keys.
 */
#include "sessions.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "host.h"
#include "log.h"
#include "metrics.h"
#include "session_memo.h"
#include "session_record.h"
#include "session_seal.h"

#define MAX_RETIRED      32
#define COUNT_BUDGET_MS  5000      /* bound on one count() call */
#define SRC              "sessions"

enum op { OP_GET, OP_PUT, OP_REMOVE, OP_HIT, OP_HEALTH, OP_COUNT, N_OPS };
static const char *const op_names[N_OPS] = { "get", "put", "remove", "hit", "health", "count" };

struct bb_sessions {
    const bb_session_ops *ops;
    bb_session_store     *inst;
    _Atomic(bb_keyring *) ring;
    pthread_mutex_t       lock;               /* guards retired[] */
    bb_keyring           *retired[MAX_RETIRED];
    size_t                n_retired;
    int64_t               ttl_ms, idle_ms, touch_ms, gauge_ms;
    /* the active-sessions gauge is refreshed by its own thread: count() may
     * be a keyspace scan (Redis), which has no place on a request's path */
    pthread_t             counter;
    bool                  counter_running, stopping;
    pthread_mutex_t       stop_lock;
    pthread_cond_t        stop_cond;
    bb_series *active, *created, *expired, *lookups, *misses, *unreadable;
    bb_series *errors[N_OPS], *latency[N_OPS];
    bb_session_memo      *memo;               /* opened records by sealed bytes */
};

/* ---- metrics -------------------------------------------------------------- */

static bool metrics_init(bb_sessions *s)
{
    static const char *const op_label[] = { "op", NULL };
    bb_metric *errors = bb_metric_family(BB_METRIC_COUNTER, "session_backend_errors_total",
                                         "Session backend calls that failed (other than not found)", op_label);
    bb_metric *latency = bb_metric_family(BB_METRIC_HISTOGRAM, "session_operation_duration_seconds",
                                          "Session backend call latency", op_label);
    s->active = bb_metric_series(bb_metric_family(BB_METRIC_GAUGE, "sessions_active",
                                                  "Live sessions in the backend (every session.gauge_interval_s)",
                                                  NULL), NULL);
    s->created = bb_metric_series(bb_metric_family(BB_METRIC_COUNTER, "sessions_created_total",
                                                   "Sessions created", NULL), NULL);
    s->expired = bb_metric_series(bb_metric_family(BB_METRIC_COUNTER, "sessions_expired_total",
                                                   "Sessions found or reclaimed past their expiry", NULL), NULL);
    s->lookups = bb_metric_series(bb_metric_family(BB_METRIC_COUNTER, "session_lookups_total",
                                                   "Session loads by id", NULL), NULL);
    s->misses = bb_metric_series(bb_metric_family(BB_METRIC_COUNTER, "session_misses_total",
                                                  "Session loads that found nothing usable", NULL), NULL);
    s->unreadable = bb_metric_series(bb_metric_family(BB_METRIC_COUNTER, "session_unreadable_total",
                                                      "Session records that failed to open (unknown key, tampered)",
                                                      NULL), NULL);
    if (!s->active || !s->created || !s->expired || !s->lookups || !s->misses || !s->unreadable || !errors ||
        !latency)
        return false;
    for (int i = 0; i < N_OPS; i++) {
        const char *const v[] = { op_names[i], NULL };
        if (!(s->errors[i] = bb_metric_series(errors, v)) || !(s->latency[i] = bb_metric_series(latency, v)))
            return false;
    }
    return true;
}

/* Account one backend call: latency always, errors unless OK/NOT_FOUND. */
static bb_status account(bb_sessions *s, enum op op, int64_t t0, bb_status st)
{
    bb_series_observe(s->latency[op], (double)(bb_now_ms() - t0) / 1000.0);
    if (st != BB_OK && st != BB_NOT_FOUND) bb_series_add(s->errors[op], 1);
    return st;
}

static void refresh_gauge(bb_sessions *s)
{
    bb_call call = { "sessions-gauge", NULL, bb_now_ms() + COUNT_BUDGET_MS };
    int64_t n = 0, t0 = bb_now_ms();
    bb_error err;
    bb_error_clear(&err);
    if (account(s, OP_COUNT, t0, s->ops->count(s->inst, &call, &n, &err)) == BB_OK) bb_series_set(s->active, (double)n);
}

static void *counter_main(void *arg)
{
    bb_sessions *s = arg;
    pthread_mutex_lock(&s->stop_lock);
    while (!s->stopping) {
        struct timespec ts;
        pthread_mutex_unlock(&s->stop_lock);
        refresh_gauge(s);
        pthread_mutex_lock(&s->stop_lock);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(s->gauge_ms / 1000);
        while (!s->stopping && pthread_cond_timedwait(&s->stop_cond, &s->stop_lock, &ts) == 0) {}
    }
    pthread_mutex_unlock(&s->stop_lock);
    return NULL;
}

/* ---- keys ------------------------------------------------------------------- */

static bb_keyring *ring_now(bb_sessions *s)
{
    return atomic_load_explicit(&s->ring, memory_order_acquire);
}

/* The keyring a config asks for; `current` is kept when the config still
 * has no keys and the current ring is ephemeral (a reload must not log
 * everyone out). */
static bb_keyring *ring_from_config(const bb_cfg *root, const bb_keyring *current, char *why, size_t why_len)
{
    size_t n = 0;
    const char *const *items = NULL;
    bb_keyring *kr;
    if (bb_cfg_get_list(root, "session.keys", &n, &items, NULL) != BB_OK) n = 0;
    if (n > 0) return bb_keyring_from_list(items, n, why, why_len);
    if (current && current->ephemeral) return NULL;   /* caller keeps it */
    if ((kr = bb_keyring_ephemeral()) == NULL) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    bb_warn(SRC, "session.keys is empty: sessions are sealed with an ephemeral key and end with this process "
            "(set session.keys for sessions that survive restarts)");
    return kr;
}

bb_sessions *bb_sessions_new(bb_app *app, const bb_cfg *root, char *why, size_t why_len)
{
    bb_sessions *s;
    bb_keyring *kr;
    if (!(s = calloc(1, sizeof *s))) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->stop_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->stop_cond, &ca);
    pthread_condattr_destroy(&ca);
    s->ops = bb_app_session(app, &s->inst);
    if (!s->ops || !s->inst) {
        snprintf(why, why_len, "no session plugin instance");
        bb_sessions_free(s);
        return NULL;
    }
    s->ttl_ms = bb_cfg_i64(root, "session.ttl_s", 86400) * 1000;
    s->idle_ms = bb_cfg_i64(root, "session.idle_timeout_s", 14400) * 1000;
    s->touch_ms = bb_cfg_i64(root, "session.touch_interval_s", 60) * 1000;
    s->gauge_ms = bb_cfg_i64(root, "session.gauge_interval_s", 10) * 1000;
    if (!(s->memo = bb_session_memo_new())) {
        snprintf(why, why_len, "out of memory");
        bb_sessions_free(s);
        return NULL;
    }
    if (!(kr = ring_from_config(root, NULL, why, why_len))) {
        bb_sessions_free(s);
        return NULL;
    }
    atomic_store(&s->ring, kr);
    if (!metrics_init(s)) {
        snprintf(why, why_len, "out of memory");
        bb_sessions_free(s);
        return NULL;
    }
    if (pthread_create(&s->counter, NULL, counter_main, s) != 0) {
        snprintf(why, why_len, "cannot start the sessions gauge thread");
        bb_sessions_free(s);
        return NULL;
    }
    s->counter_running = true;
    if (!kr->ephemeral) bb_info(SRC, "%zu session key(s) loaded; '%s' seals", kr->n, kr->keys[0].id);
    return s;
}

void bb_sessions_free(bb_sessions *s)
{
    if (!s) return;
    if (s->counter_running) {
        pthread_mutex_lock(&s->stop_lock);
        s->stopping = true;
        pthread_cond_signal(&s->stop_cond);
        pthread_mutex_unlock(&s->stop_lock);
        pthread_join(s->counter, NULL);
    }
    pthread_cond_destroy(&s->stop_cond);
    pthread_mutex_destroy(&s->stop_lock);
    bb_keyring_free(atomic_load(&s->ring));
    for (size_t i = 0; i < s->n_retired; i++) bb_keyring_free(s->retired[i]);
    pthread_mutex_destroy(&s->lock);
    bb_session_memo_free(s->memo);
    free(s);
}

bb_status bb_sessions_reload(bb_sessions *s, const bb_cfg *root, bb_error *err)
{
    char why[512] = "";
    bb_keyring *old = ring_now(s), *fresh = ring_from_config(root, old, why, sizeof why);
    if (!fresh && why[0]) return bb_fail(err, BB_INVALID, "session.keys", "session.keys: %s", why);
    if (!fresh) return BB_OK;   /* still no keys: keep the ephemeral one */
    pthread_mutex_lock(&s->lock);
    if (s->n_retired == MAX_RETIRED) {
        pthread_mutex_unlock(&s->lock);
        bb_keyring_free(fresh);
        return bb_fail(err, BB_UNAVAILABLE, "session.keys", "too many key reloads in one run; restart to apply");
    }
    s->retired[s->n_retired++] = old;
    atomic_store_explicit(&s->ring, fresh, memory_order_release);
    pthread_mutex_unlock(&s->lock);
    bb_info(SRC, "session keys reloaded: %zu key(s), '%s' seals", fresh->n, fresh->keys[0].id);
    return BB_OK;
}

/* ---- the record ------------------------------------------------------------ */

static int64_t expiry_of(const bb_sessions *s, int64_t created_ms, int64_t last_active_ms)
{
    int64_t by_ttl = created_ms + s->ttl_ms, by_idle = last_active_ms + s->idle_ms;
    return by_ttl < by_idle ? by_ttl : by_idle;
}

/* Seal *in under the ring's first key and put it under that key's hash. */
static bb_status store(bb_sessions *s, const bb_call *call, const bb_keyring *kr, const bb_session *in,
                       bb_error *err)
{
    uint8_t hash[BB_SESSION_HASH_LEN], *sealed = NULL, *plain;
    size_t sealed_len = 0, plain_len = 0;
    int64_t t0;
    bb_status st;
    bool sealed_ok;
    if (!(plain = bb_session_record_encode(in, &plain_len))) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    bb_seal_id_hash(&kr->keys[0], in->id, hash);
    sealed_ok = bb_seal(&kr->keys[0], hash, plain, plain_len, &sealed, &sealed_len);
    sodium_memzero(plain, plain_len);
    free(plain);
    if (!sealed_ok) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    t0 = bb_now_ms();
    st = account(s, OP_PUT, t0, s->ops->put(s->inst, call, hash, sealed, sealed_len, in->expires_ms, err));
    free(sealed);
    return st;
}

/* ---- the API ----------------------------------------------------------------- */

static bool valid_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= BB_SESSION_ID_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (id[i] < 0x21 || id[i] > 0x7e) return false;
    return true;
}

bb_status bb_session_create(bb_sessions *s, const bb_call *call, bb_session *io, bb_error *err)
{
    uint8_t raw[32];
    bb_status st;
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(io->id, sizeof io->id, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    io->created_ms = io->last_active_ms = bb_wall_ms();
    io->expires_ms = expiry_of(s, io->created_ms, io->last_active_ms);
    st = store(s, call, ring_now(s), io, err);
    if (st == BB_OK) bb_series_add(s->created, 1);
    return st;
}

bb_status bb_session_load(bb_sessions *s, const bb_call *call, const char *id, bb_session *out, bb_error *err)
{
    const bb_keyring *kr = ring_now(s);
    uint8_t hash[BB_SESSION_HASH_LEN];
    void *sealed = NULL;
    size_t sealed_len = 0, found = kr->n, plain_len = 0;
    char *plain = NULL, key_id[BB_SEAL_KEY_ID_MAX];
    bb_unseal_result ur;
    bb_status st = BB_NOT_FOUND;
    int64_t now;

    memset(out, 0, sizeof *out);
    bb_series_add(s->lookups, 1);
    if (!valid_id(id)) goto miss;
    for (size_t i = 0; i < kr->n; i++) {
        int64_t t0 = bb_now_ms();
        bb_error_clear(err);
        bb_seal_id_hash(&kr->keys[i], id, hash);
        st = account(s, OP_GET, t0, s->ops->get(s->inst, call, hash, &sealed, &sealed_len, err));
        if (st == BB_OK) { found = i; break; }
        if (st != BB_NOT_FOUND) return st;   /* backend trouble: not a miss */
    }
    if (found == kr->n) goto miss;
    if (bb_session_memo_get(s->memo, kr, hash, sealed, sealed_len, out)) {
        free(sealed);
        goto opened;
    }
    ur = bb_unseal(kr, hash, sealed, sealed_len, &plain, &plain_len, key_id);
    if (ur != BB_UNSEAL_OK) {
        free(sealed);
        if (ur == BB_UNSEAL_NOMEM) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
        bb_series_add(s->unreadable, 1);
        if (ur == BB_UNSEAL_UNKNOWN_KEY)
            bb_warn(SRC, "session record sealed with key id '%s', which session.keys no longer has: treated as absent",
                    key_id);
        else
            bb_warn(SRC, "session record failed to open (tampered, corrupt or copied from another slot): "
                    "treated as absent");
        goto miss;
    }
    if (!bb_session_record_decode((const uint8_t *)plain, plain_len, out)) {
        bb_warn(SRC, "session record opened but is not a version %d record: treated as absent",
                BB_SESSION_RECORD_VERSION);
        sodium_memzero(plain, plain_len);
        free(plain);
        free(sealed);
        bb_series_add(s->unreadable, 1);
        goto miss;
    }
    sodium_memzero(plain, plain_len);
    free(plain);
    bb_session_memo_put(s->memo, kr, hash, sealed, sealed_len, out);
    free(sealed);
opened:
    memcpy(out->id, id, strlen(id) + 1);   /* valid_id: shorter than out->id */
    now = bb_wall_ms();
    if (now >= expiry_of(s, out->created_ms, out->last_active_ms)) {
        bb_error rerr;
        bb_series_add(s->expired, 1);
        bb_session_clear(out);
        memset(out, 0, sizeof *out);
        bb_error_clear(&rerr);
        account(s, OP_REMOVE, bb_now_ms(), s->ops->remove(s->inst, call, hash, &rerr));
        goto miss;
    }
    if (found != 0 || now - out->last_active_ms >= s->touch_ms) {
        /* Write back: slide the expiry, and move an old-key record to the
         * first key.  A failed write-back does not fail the load. */
        bb_error werr;
        uint8_t old_hash[BB_SESSION_HASH_LEN];
        memcpy(old_hash, hash, sizeof hash);
        out->last_active_ms = now;
        out->expires_ms = expiry_of(s, out->created_ms, now);
        bb_error_clear(&werr);
        if (store(s, call, kr, out, &werr) == BB_OK && found != 0) {
            bb_error_clear(&werr);
            account(s, OP_REMOVE, bb_now_ms(), s->ops->remove(s->inst, call, old_hash, &werr));
        } else if (werr.code != BB_OK) {
            bb_warn(SRC, "session activity write-back failed: %s", werr.msg);
        }
    } else {
        out->expires_ms = expiry_of(s, out->created_ms, now);
        out->last_active_ms = now;
    }
    bb_error_clear(err);
    return BB_OK;
miss:
    bb_series_add(s->misses, 1);
    return bb_fail(err, BB_NOT_FOUND, NULL, "no such session (unknown, expired or ended)");
}

bb_status bb_session_save(bb_sessions *s, const bb_call *call, const bb_session *in, bb_error *err)
{
    bb_session copy = *in;
    int64_t now = bb_wall_ms();
    if (!valid_id(in->id)) return bb_fail(err, BB_INVALID, "id", "not a session id");
    copy.last_active_ms = now;
    copy.expires_ms = expiry_of(s, in->created_ms, now);
    if (copy.expires_ms <= now) {
        bb_series_add(s->expired, 1);
        return bb_fail(err, BB_NOT_FOUND, NULL, "the session has expired");
    }
    return store(s, call, ring_now(s), &copy, err);
}

bb_status bb_session_end(bb_sessions *s, const bb_call *call, const char *id, bb_error *err)
{
    const bb_keyring *kr = ring_now(s);
    bb_status worst = BB_OK;
    if (!valid_id(id)) return BB_OK;
    for (size_t i = 0; i < kr->n; i++) {
        uint8_t hash[BB_SESSION_HASH_LEN];
        bb_status st;
        bb_seal_id_hash(&kr->keys[i], id, hash);
        bb_session_memo_forget(s->memo, hash);
        st = account(s, OP_REMOVE, bb_now_ms(), s->ops->remove(s->inst, call, hash, err));
        if (st != BB_OK) worst = st;
    }
    return worst;
}

void bb_session_clear(bb_session *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n_subs; i++) free(s->subs[i]);
    s->n_subs = 0;
}

bool bb_session_subscribe(bb_session *s, const char *uri)
{
    char *copy;
    for (size_t i = 0; i < s->n_subs; i++)
        if (strcmp(s->subs[i], uri) == 0) return true;
    if (s->n_subs >= BB_SESSION_SUBS_MAX || !(copy = strdup(uri))) return false;
    s->subs[s->n_subs++] = copy;
    return true;
}

void bb_session_unsubscribe(bb_session *s, const char *uri)
{
    for (size_t i = 0; i < s->n_subs; i++) {
        if (strcmp(s->subs[i], uri) == 0) {
            free(s->subs[i]);
            memmove(&s->subs[i], &s->subs[i + 1], (s->n_subs - i - 1) * sizeof s->subs[0]);
            s->n_subs--;
            return;
        }
    }
}

bb_status bb_sessions_hit(bb_sessions *s, const bb_call *call, const char *key, uint32_t limit,
                          int64_t window_ms, bb_counter_result *out, bb_error *err)
{
    /* Counter names (API key ids, teams) are hashed like session ids: the
     * store holds no plaintext identity.  "c:" + 22 URL-safe characters. */
    uint8_t hash[BB_SESSION_HASH_LEN];
    char name[2 + 32];
    if (!s->ops->hit) return bb_fail(err, BB_INVALID, NULL, "the session backend has no counters");
    bb_seal_id_hash(&ring_now(s)->keys[0], key, hash);
    memcpy(name, "c:", 2);
    sodium_bin2base64(name + 2, sizeof name - 2, hash, 16, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return account(s, OP_HIT, bb_now_ms(), s->ops->hit(s->inst, call, name, limit, window_ms, out, err));
}

bb_status bb_sessions_health(bb_sessions *s, const bb_call *call, char *detail, size_t len, bb_error *err)
{
    bb_status st = account(s, OP_HEALTH, bb_now_ms(), s->ops->health(s->inst, call, detail, len, err));
    return st;
}
