/*
 * plugins/session_redis/session_redis.c — sealed sessions and shared
 * counters in Redis, so several botboard processes share them and they
 * survive restarts.
 *
 * Keys:     <prefix>s:<hex of the 32-byte id hash>  -> sealed record, PX ttl
 *           <prefix>k:<counter name>                 -> integer, PX window
 * Counters: one Lua script (INCR, PEXPIRE on the first hit of a window,
 *           PTTL) run with EVALSHA, falling back to EVAL after NOSCRIPT (a
 *           restarted or flushed Redis forgets scripts).  A window starts at
 *           its first hit and lasts window_ms.
 *
 * Connections: a fixed pool of session.redis.pool_size hiredis contexts,
 * each behind its own mutex.  A call takes any free one (trylock round the
 * pool), else waits for one until its deadline.  A connection that fails
 * (I/O error, timeout) is dropped; the next call on that slot reconnects,
 * and a failed reconnect makes the slot wait reconnect_min_ms, doubling up
 * to reconnect_max_ms, answering UNAVAILABLE at once meanwhile — so after
 * Redis comes back every slot is usable again within reconnect_max_ms, with
 * no restart.  Command timeouts are min(command_timeout_ms, what is left
 * of the call's deadline).
 *
 * Going down and coming back are logged once each, not per call.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <botboard/session.h>

#define HOST_MAX   256
#define PREFIX_MAX 128
#define KEY_MAX    (PREFIX_MAX + 2 + 2 * BB_SESSION_HASH_LEN + 1)
#define SCAN_BATCH "1000"

/* KEYS[1] counter, ARGV[1] window ms -> { count, ms left in the window } */
static const char HIT_SCRIPT[] =
    "local c = redis.call('INCR', KEYS[1]) "
    "local t = redis.call('PTTL', KEYS[1]) "
    "if c == 1 or t < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) t = tonumber(ARGV[1]) end "
    "return {c, t}";

typedef struct conn {
    pthread_mutex_t lock;
    redisContext   *c;
    int64_t         timeout_ms;     /* what the socket timeout is set to now */
    int64_t         retry_at_ms;    /* monotonic: no reconnect before this ... */
    int64_t         failed_at_ms;   /* ... unless another slot connected after this failure */
    int64_t         backoff_ms;
    char            sha[41];        /* HIT_SCRIPT as loaded on this connection */
} conn;

struct bb_session_store {
    const bb_host_api *api;
    bb_host           *host;
    char               hostname[HOST_MAX];
    int                port, db;
    char              *user, *password;
    char               prefix[PREFIX_MAX + 1];
    int64_t            connect_ms, command_ms, backoff_min_ms, backoff_max_ms;
    conn              *pool;
    size_t             n_pool;
    atomic_uint        next;
    atomic_bool        down;
    atomic_llong       connected_at_ms;   /* monotonic: the last successful connect of any slot */
    bb_series         *m_reconnects;
};

/* ---- small helpers ---------------------------------------------------------------- */

static struct timeval tv_of(int64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    return tv;
}

/* Time this call may still spend, capped by cap_ms; <= 0 means none left. */
static int64_t budget(const bb_session_store *r, const bb_call *call, int64_t cap_ms)
{
    int64_t left;
    if (!call || call->deadline_ms <= 0) return cap_ms;
    left = call->deadline_ms - r->api->now_ms();
    return left < cap_ms ? left : cap_ms;
}

static void hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void session_key(const bb_session_store *r, const uint8_t hash[BB_SESSION_HASH_LEN], char out[KEY_MAX])
{
    size_t pl = strlen(r->prefix);
    memcpy(out, r->prefix, pl);
    out[pl] = 's';
    out[pl + 1] = ':';
    hex(hash, BB_SESSION_HASH_LEN, out + pl + 2);
}

/* ---- connections ------------------------------------------------------------------- */

static void drop_conn(bb_session_store *r, conn *cn, const char *why)
{
    if (cn->c) redisFree(cn->c);
    cn->c = NULL;
    cn->retry_at_ms = r->api->now_ms();   /* the first reconnect is immediate */
    if (!atomic_exchange(&r->down, true))
        r->api->log(r->host, BB_LOG_WARN, NULL, "redis at %s:%d went away (%s); calls get UNAVAILABLE until it is back",
                    r->hostname, r->port, why);
}

/* A reply we cannot use: status + message. */
static bb_status reply_error(redisReply *rep, bb_error *err, const char *what)
{
    bb_status st = bb_fail(err, BB_INTERNAL, NULL, "redis %s: %s", what,
                           rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    freeReplyObject(rep);
    return st;
}

/* AUTH, SELECT and SCRIPT LOAD on a fresh connection.  BB_INVALID when
 * Redis refuses the credentials or database (a configuration error). */
static bb_status handshake(bb_session_store *r, conn *cn, bb_error *err)
{
    redisReply *rep;
    if (r->password) {
        rep = r->user ? redisCommand(cn->c, "AUTH %s %s", r->user, r->password)
                      : redisCommand(cn->c, "AUTH %s", r->password);
        if (!rep) return bb_fail(err, BB_UNAVAILABLE, NULL, "redis AUTH: %s", cn->c->errstr);
        if (rep->type == REDIS_REPLY_ERROR) {
            bb_fail(err, BB_INVALID, "url", "redis refused the password in session.redis.url: %s", rep->str);
            freeReplyObject(rep);
            return BB_INVALID;
        }
        freeReplyObject(rep);
    }
    if (r->db != 0) {
        if (!(rep = redisCommand(cn->c, "SELECT %d", r->db)))
            return bb_fail(err, BB_UNAVAILABLE, NULL, "redis SELECT: %s", cn->c->errstr);
        if (rep->type == REDIS_REPLY_ERROR) {
            bb_fail(err, BB_INVALID, "url", "redis refused database %d: %s", r->db, rep->str);
            freeReplyObject(rep);
            return BB_INVALID;
        }
        freeReplyObject(rep);
    }
    if (!(rep = redisCommand(cn->c, "SCRIPT LOAD %s", HIT_SCRIPT)))
        return bb_fail(err, BB_UNAVAILABLE, NULL, "redis SCRIPT LOAD: %s", cn->c->errstr);
    if (rep->type != REDIS_REPLY_STRING || rep->len != 40) return reply_error(rep, err, "SCRIPT LOAD");
    memcpy(cn->sha, rep->str, 40);
    cn->sha[40] = '\0';
    freeReplyObject(rep);
    return BB_OK;
}

/* Make cn usable (connected, timeout set for this call) or say why not. */
static bb_status ready(bb_session_store *r, conn *cn, const bb_call *call, bb_error *err)
{
    int64_t now = r->api->now_ms(), left;
    if (!cn->c) {
        bb_status st;
        if (now < cn->retry_at_ms && atomic_load(&r->connected_at_ms) <= cn->failed_at_ms) {
            err->retry_after_s = 1;
            return bb_fail(err, BB_UNAVAILABLE, NULL, "redis at %s:%d is unreachable; next attempt in %lld ms",
                           r->hostname, r->port, (long long)(cn->retry_at_ms - now));
        }
        if ((left = budget(r, call, r->connect_ms)) <= 0) return bb_fail(err, BB_TIMEOUT, NULL, "deadline passed");
        cn->c = redisConnectWithTimeout(r->hostname, r->port, tv_of(left));
        if (!cn->c || cn->c->err) {
            char why[128];
            snprintf(why, sizeof why, "%s", cn->c ? cn->c->errstr : "out of memory");
            if (cn->c) redisFree(cn->c);
            cn->c = NULL;
            cn->failed_at_ms = r->api->now_ms();
            cn->retry_at_ms = cn->failed_at_ms + cn->backoff_ms;
            cn->backoff_ms = cn->backoff_ms * 2 > r->backoff_max_ms ? r->backoff_max_ms : cn->backoff_ms * 2;
            if (!atomic_exchange(&r->down, true))
                r->api->log(r->host, BB_LOG_WARN, call, "redis at %s:%d is unreachable (%s); retrying with backoff",
                            r->hostname, r->port, why);
            err->retry_after_s = 1;
            return bb_fail(err, BB_UNAVAILABLE, NULL, "redis at %s:%d is unreachable: %s", r->hostname, r->port, why);
        }
        cn->timeout_ms = left;
        if (redisSetTimeout(cn->c, tv_of(left)) != REDIS_OK || (st = handshake(r, cn, err)) != BB_OK) {
            if (err->code == BB_OK) bb_fail(err, BB_UNAVAILABLE, NULL, "redis: cannot set the socket timeout");
            st = err->code;
            redisFree(cn->c);
            cn->c = NULL;
            cn->failed_at_ms = r->api->now_ms();
            cn->retry_at_ms = cn->failed_at_ms + cn->backoff_ms;
            return st;
        }
        redisEnableKeepAlive(cn->c);
        cn->backoff_ms = r->backoff_min_ms;
        atomic_store(&r->connected_at_ms, r->api->now_ms());   /* slots waiting out a backoff may try now */
        r->api->add(r->m_reconnects, 1);
        if (atomic_exchange(&r->down, false))
            r->api->log(r->host, BB_LOG_INFO, call, "redis at %s:%d is reachable again", r->hostname, r->port);
    }
    if ((left = budget(r, call, r->command_ms)) <= 0) return bb_fail(err, BB_TIMEOUT, NULL, "deadline passed");
    if (left != cn->timeout_ms) {
        if (redisSetTimeout(cn->c, tv_of(left)) != REDIS_OK) {
            drop_conn(r, cn, "cannot set the socket timeout");
            return bb_fail(err, BB_UNAVAILABLE, NULL, "redis: cannot set the socket timeout");
        }
        cn->timeout_ms = left;
    }
    return BB_OK;
}

/* A free connection, made ready; the caller unlocks it with release(). */
static bb_status acquire(bb_session_store *r, const bb_call *call, conn **out, bb_error *err)
{
    unsigned start = atomic_fetch_add(&r->next, 1);
    conn *cn = NULL;
    bb_status st;
    for (size_t i = 0; i < r->n_pool && !cn; i++) {
        conn *c = &r->pool[(start + i) % r->n_pool];
        if (pthread_mutex_trylock(&c->lock) == 0) cn = c;
    }
    if (!cn) {
        /* every slot busy: wait for ours until the deadline */
        int64_t left = budget(r, call, r->command_ms + r->connect_ms);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        cn = &r->pool[start % r->n_pool];
        if (left <= 0 || pthread_mutex_timedlock(&cn->lock, &ts) != 0) {
            err->retry_after_s = 1;
            return bb_fail(err, BB_UNAVAILABLE, NULL, "all %zu redis connections are busy", r->n_pool);
        }
    }
    if ((st = ready(r, cn, call, err)) != BB_OK) {
        pthread_mutex_unlock(&cn->lock);
        return st;
    }
    *out = cn;
    return BB_OK;
}

static void release(conn *cn) { pthread_mutex_unlock(&cn->lock); }

/* Run a command (argv form: binary safe).  NULL reply = the connection is
 * gone or timed out: it is dropped and the call gets UNAVAILABLE/TIMEOUT. */
static redisReply *run(bb_session_store *r, conn *cn, int argc, const char **argv, const size_t *lens,
                       bb_error *err)
{
    redisReply *rep = redisCommandArgv(cn->c, argc, argv, lens);
    if (!rep) {
        bool timed_out = cn->c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
        char why[128];
        snprintf(why, sizeof why, "%s", cn->c->errstr[0] ? cn->c->errstr : "connection lost");
        drop_conn(r, cn, why);
        err->retry_after_s = 1;
        bb_fail(err, timed_out ? BB_TIMEOUT : BB_UNAVAILABLE, NULL, "redis %s: %s", argv[0], why);
    }
    return rep;
}

/* run() once more on a fresh connection when the pooled one turned out to be
 * dead (Redis restarted since it was opened): only for commands that are
 * safe to repeat (not the counter script, which may have run). */
static redisReply *run_idempotent(bb_session_store *r, conn *cn, const bb_call *call, int argc, const char **argv,
                                  const size_t *lens, bb_error *err)
{
    redisReply *rep = run(r, cn, argc, argv, lens, err);
    if (!rep && err->code == BB_UNAVAILABLE) {
        bb_error_clear(err);
        if (ready(r, cn, call, err) == BB_OK) rep = run(r, cn, argc, argv, lens, err);
    }
    return rep;
}

/* One command that is safe to repeat, on a connection from the pool: NULL
 * with err filled when no connection could be had or the command failed. */
static redisReply *command(bb_session_store *r, const bb_call *call, int argc, const char **argv,
                           const size_t *lens, bb_error *err)
{
    conn *cn;
    redisReply *rep;
    bb_status st = acquire(r, call, &cn, err);
    if (st != BB_OK) {
        err->code = st;
        return NULL;
    }
    rep = run_idempotent(r, cn, call, argc, argv, lens, err);
    release(cn);
    return rep;
}

/* ---- operations ----------------------------------------------------------------------- */

static bb_status rd_put(bb_session_store *r, const bb_call *call, const uint8_t hash[BB_SESSION_HASH_LEN],
                        const void *sealed, size_t len, int64_t expires_ms, bb_error *err)
{
    char key[KEY_MAX], px[24];
    int64_t ttl = expires_ms - r->api->wall_ms();
    conn *cn;
    redisReply *rep;
    bb_status st;
    session_key(r, hash, key);
    if ((st = acquire(r, call, &cn, err)) != BB_OK) return st;
    if (ttl <= 0) {   /* already over: nothing to keep */
        const char *argv[] = { "DEL", key };
        const size_t lens[] = { 3, strlen(key) };
        rep = run_idempotent(r, cn, call, 2, argv, lens, err);
    } else {
        const char *argv[] = { "SET", key, sealed, "PX", px };
        size_t lens[] = { 3, strlen(key), len, 2, 0 };
        lens[4] = (size_t)snprintf(px, sizeof px, "%lld", (long long)ttl);
        rep = run_idempotent(r, cn, call, 5, argv, lens, err);
    }
    release(cn);
    if (!rep) return err->code;
    if (rep->type == REDIS_REPLY_ERROR) return reply_error(rep, err, "SET");
    freeReplyObject(rep);
    return BB_OK;
}

static bb_status rd_get(bb_session_store *r, const bb_call *call, const uint8_t hash[BB_SESSION_HASH_LEN],
                        void **sealed, size_t *len, bb_error *err)
{
    char key[KEY_MAX];
    const char *argv[] = { "GET", key };
    size_t lens[] = { 3, 0 };
    redisReply *rep;
    *sealed = NULL;
    *len = 0;
    session_key(r, hash, key);
    lens[1] = strlen(key);
    rep = command(r, call, 2, argv, lens, err);
    if (!rep) return err->code;
    if (rep->type == REDIS_REPLY_NIL) {
        freeReplyObject(rep);
        return bb_fail(err, BB_NOT_FOUND, NULL, "no such session");
    }
    if (rep->type != REDIS_REPLY_STRING) return reply_error(rep, err, "GET");
    if (!(*sealed = malloc(rep->len ? rep->len : 1))) {
        freeReplyObject(rep);
        return bb_fail(err, BB_UNAVAILABLE, NULL, "out of memory");
    }
    memcpy(*sealed, rep->str, rep->len);
    *len = rep->len;
    freeReplyObject(rep);
    return BB_OK;
}

static bb_status rd_touch(bb_session_store *r, const bb_call *call, const uint8_t hash[BB_SESSION_HASH_LEN],
                          int64_t expires_ms, bb_error *err)
{
    char key[KEY_MAX], px[24];
    int64_t ttl = expires_ms - r->api->wall_ms();
    const char *argv[] = { "PEXPIRE", key, px };
    size_t lens[] = { 7, 0, 0 };
    redisReply *rep;
    bb_status st;
    session_key(r, hash, key);
    lens[1] = strlen(key);
    /* PEXPIRE with 0 deletes the key at once, which is what a past expiry means */
    lens[2] = (size_t)snprintf(px, sizeof px, "%lld", (long long)(ttl > 0 ? ttl : 0));
    rep = command(r, call, 3, argv, lens, err);
    if (!rep) return err->code;
    if (rep->type != REDIS_REPLY_INTEGER) return reply_error(rep, err, "PEXPIRE");
    st = rep->integer == 1 ? BB_OK : bb_fail(err, BB_NOT_FOUND, NULL, "no such session");
    freeReplyObject(rep);
    return st;
}

static bb_status rd_remove(bb_session_store *r, const bb_call *call, const uint8_t hash[BB_SESSION_HASH_LEN],
                           bb_error *err)
{
    char key[KEY_MAX];
    const char *argv[] = { "DEL", key };
    size_t lens[] = { 3, 0 };
    redisReply *rep;
    session_key(r, hash, key);
    lens[1] = strlen(key);
    rep = command(r, call, 2, argv, lens, err);
    if (!rep) return err->code;
    if (rep->type != REDIS_REPLY_INTEGER) return reply_error(rep, err, "DEL");
    freeReplyObject(rep);
    return BB_OK;
}

static bb_status rd_hit(bb_session_store *r, const bb_call *call, const char *name, uint32_t limit,
                        int64_t window_ms, bb_counter_result *out, bb_error *err)
{
    char key[PREFIX_MAX + 3 + 256], win[24];
    size_t pl = strlen(r->prefix), nl = strlen(name);
    conn *cn;
    redisReply *rep;
    bb_status st;
    int64_t count, left;
    if (window_ms <= 0) return bb_fail(err, BB_INVALID, "window_ms", "the window must be positive");
    if (nl > 255) return bb_fail(err, BB_INVALID, "key", "counter name longer than 255 bytes");
    memcpy(key, r->prefix, pl);
    memcpy(key + pl, "k:", 2);
    memcpy(key + pl + 2, name, nl + 1);
    snprintf(win, sizeof win, "%lld", (long long)window_ms);
    if ((st = acquire(r, call, &cn, err)) != BB_OK) return st;
    {
        const char *argv[] = { "EVALSHA", cn->sha, "1", key, win };
        const size_t lens[] = { 7, 40, 1, strlen(key), strlen(win) };
        rep = run(r, cn, 5, argv, lens, err);
    }
    if (rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        /* Redis restarted or SCRIPT FLUSH: send the script itself */
        const char *argv[] = { "EVAL", HIT_SCRIPT, "1", key, win };
        const size_t lens[] = { 4, sizeof HIT_SCRIPT - 1, 1, strlen(key), strlen(win) };
        freeReplyObject(rep);
        rep = run(r, cn, 5, argv, lens, err);
    }
    release(cn);
    if (!rep) return err->code;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[1]->type != REDIS_REPLY_INTEGER)
        return reply_error(rep, err, "EVALSHA");
    count = rep->element[0]->integer;
    left = rep->element[1]->integer;
    freeReplyObject(rep);
    out->allowed = count <= (int64_t)limit;
    out->remaining = count < (int64_t)limit ? (uint32_t)((int64_t)limit - count) : 0;
    out->reset_ms = r->api->wall_ms() + (left > 0 ? left : 0);
    return BB_OK;
}

/* Escape glob characters of the prefix for SCAN MATCH. */
static void match_pattern(const char *prefix, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = prefix; *p && o + 4 < cap; p++) {
        if (strchr("*?[]\\", *p)) out[o++] = '\\';
        out[o++] = *p;
    }
    snprintf(out + o, cap - o, "s:*");
}

/* Bounded SCAN: approximate when the deadline cuts it short (documented). */
static bb_status rd_count(bb_session_store *r, const bb_call *call, int64_t *out, bb_error *err)
{
    char pattern[2 * PREFIX_MAX + 8], cursor[32] = "0";
    conn *cn;
    bb_status st;
    int64_t n = 0;
    match_pattern(r->prefix, pattern, sizeof pattern);
    if ((st = acquire(r, call, &cn, err)) != BB_OK) return st;
    do {
        const char *argv[] = { "SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_BATCH };
        const size_t lens[] = { 4, strlen(cursor), 5, strlen(pattern), 5, sizeof SCAN_BATCH - 1 };
        redisReply *rep = run_idempotent(r, cn, call, 6, argv, lens, err);
        if (!rep) {   /* run() dropped the connection; the slot is still ours to give back */
            release(cn);
            return err->code;
        }
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY || rep->element[0]->len >= sizeof cursor) {
            release(cn);
            return reply_error(rep, err, "SCAN");
        }
        n += (int64_t)rep->element[1]->elements;
        memcpy(cursor, rep->element[0]->str, rep->element[0]->len);
        cursor[rep->element[0]->len] = '\0';
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0 && budget(r, call, 1) > 0);
    release(cn);
    *out = n;
    return BB_OK;
}

static bb_status rd_health(bb_session_store *r, const bb_call *call, char *detail, size_t len, bb_error *err)
{
    const char *argv[] = { "PING" };
    const size_t lens[] = { 4 };
    redisReply *rep;
    snprintf(detail, len, "redis %s:%d db %d, pool %zu", r->hostname, r->port, r->db, r->n_pool);
    rep = command(r, call, 1, argv, lens, err);
    if (!rep) return err->code;
    if (rep->type != REDIS_REPLY_STATUS || strcmp(rep->str, "PONG") != 0) return reply_error(rep, err, "PING");
    freeReplyObject(rep);
    return BB_OK;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

/* redis://[[user]:password@]host[:port][/db] */
static bool parse_url(bb_session_store *r, const char *url, char *why, size_t why_len)
{
    const char *p, *at, *host_end, *slash;
    char *end;
    long v;
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(why, why_len, "must start with redis://");
        return false;
    }
    p = url + 8;
    slash = strchr(p, '/');
    at = strrchr(p, '@');
    if (at && slash && at > slash) at = NULL;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon) {
            snprintf(why, why_len, "credentials must be ':password@' or 'user:password@'");
            return false;
        }
        if (colon > p && !(r->user = strndup(p, (size_t)(colon - p)))) goto oom;
        if (!(r->password = strndup(colon + 1, (size_t)(at - colon - 1)))) goto oom;
        p = at + 1;
    }
    host_end = p;
    while (*host_end && *host_end != ':' && *host_end != '/') host_end++;
    if (host_end == p || (size_t)(host_end - p) >= sizeof r->hostname) {
        snprintf(why, why_len, "no host name");
        return false;
    }
    memcpy(r->hostname, p, (size_t)(host_end - p));
    r->hostname[host_end - p] = '\0';
    r->port = 6379;
    p = host_end;
    if (*p == ':') {
        errno = 0;
        v = strtol(p + 1, &end, 10);
        if (errno || end == p + 1 || v < 1 || v > 65535 || (*end && *end != '/')) {
            snprintf(why, why_len, "the port must be 1-65535");
            return false;
        }
        r->port = (int)v;
        p = end;
    }
    r->db = 0;
    if (*p == '/' && p[1]) {
        errno = 0;
        v = strtol(p + 1, &end, 10);
        if (errno || end == p + 1 || *end || v < 0 || v > 100000) {
            snprintf(why, why_len, "the database must be a number");
            return false;
        }
        r->db = (int)v;
    }
    return true;
oom:
    snprintf(why, why_len, "out of memory");
    return false;
}

static void rd_destroy(bb_session_store *r)
{
    if (!r) return;
    for (size_t i = 0; r->pool && i < r->n_pool; i++) {
        if (r->pool[i].c) redisFree(r->pool[i].c);
        pthread_mutex_destroy(&r->pool[i].lock);
    }
    free(r->pool);
    if (r->password) memset(r->password, 0, strlen(r->password));
    free(r->password);
    free(r->user);
    free(r);
}

static bb_status rd_create(const bb_host_api *api, bb_host *host, const bb_cfg *node, bb_session_store **out,
                           bb_error *err)
{
    bb_session_store *r;
    const char *url = NULL, *prefix = NULL;
    int64_t pool = 0;
    char why[256];
    *out = NULL;
    if (!(r = calloc(1, sizeof *r))) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    r->api = api;
    r->host = host;
    if (api->cfg_string(node, "redis.url", &url, err) != BB_OK ||
        api->cfg_string(node, "redis.prefix", &prefix, err) != BB_OK ||
        api->cfg_int(node, "redis.pool_size", &pool, err) != BB_OK ||
        api->cfg_int(node, "redis.connect_timeout_ms", &r->connect_ms, err) != BB_OK ||
        api->cfg_int(node, "redis.command_timeout_ms", &r->command_ms, err) != BB_OK ||
        api->cfg_int(node, "redis.reconnect_min_ms", &r->backoff_min_ms, err) != BB_OK ||
        api->cfg_int(node, "redis.reconnect_max_ms", &r->backoff_max_ms, err) != BB_OK)
        goto fail;
    if (!parse_url(r, url, why, sizeof why)) {
        api->cfg_fail(node, "redis.url", err, "session.redis.url: %s", why);
        goto fail;
    }
    if (r->password && r->password[0]) api->add_secret(host, r->password);
    if (strlen(prefix) > PREFIX_MAX) {
        api->cfg_fail(node, "redis.prefix", err, "session.redis.prefix is longer than %d bytes", PREFIX_MAX);
        goto fail;
    }
    snprintf(r->prefix, sizeof r->prefix, "%s", prefix);
    if (r->backoff_min_ms > r->backoff_max_ms) {
        api->cfg_fail(node, "redis.reconnect_min_ms", err, "session.redis.reconnect_min_ms is larger than reconnect_max_ms");
        goto fail;
    }
    r->n_pool = (size_t)pool;
    if (!(r->pool = calloc(r->n_pool, sizeof *r->pool))) {
        bb_fail(err, BB_INTERNAL, NULL, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < r->n_pool; i++) {
        pthread_mutex_init(&r->pool[i].lock, NULL);
        r->pool[i].backoff_ms = r->backoff_min_ms;
    }
    r->m_reconnects = api->series(api->metric(host, BB_METRIC_COUNTER, "session_redis_connects_total",
                                              "Connections made to Redis (first connects and reconnects)", NULL), NULL);
    if (!r->m_reconnects) {
        bb_fail(err, BB_INTERNAL, NULL, "out of memory");
        goto fail;
    }
    /* One connection now: a refused password or database is a configuration
     * error; Redis being down is not (we start degraded and reconnect). */
    {
        bb_call call = { "start", NULL, api->now_ms() + r->connect_ms + r->command_ms };
        bb_error cerr;
        conn *cn;
        bb_error_clear(&cerr);
        if (acquire(r, &call, &cn, &cerr) == BB_OK) release(cn);
        else if (cerr.code == BB_INVALID) {
            bb_fail(err, BB_INVALID, "url", "%s", cerr.msg);
            goto fail;
        }
    }
    *out = r;
    return BB_OK;
fail:
    rd_destroy(r);
    return err->code ? err->code : BB_INTERNAL;
}

static const bb_config_key redis_keys[] = {
    { "url", BB_CFG_STRING, "redis://127.0.0.1:6379/0", 1, 0, NULL, BB_CFG_SECRET,
      "redis://[[user]:password@]host[:port][/db]; the password is masked everywhere" },
    { "prefix", BB_CFG_STRING, "botboard:", 1, 0, NULL, 0,
      "Prefix of every key botboard writes (several deployments can share one Redis)" },
    { "pool_size", BB_CFG_INT, "8", 1, 256, NULL, 0,
      "Connections kept to Redis (calls beyond wait for one until their deadline)" },
    { "connect_timeout_ms", BB_CFG_INT, "1000", 1, 60000, NULL, 0,
      "Bound on connecting (and reconnecting) to Redis" },
    { "command_timeout_ms", BB_CFG_INT, "1000", 1, 60000, NULL, 0,
      "Bound on one Redis command (also capped by the request's deadline)" },
    { "reconnect_min_ms", BB_CFG_INT, "100", 1, 60000, NULL, 0,
      "First wait after a failed reconnect; doubles each failure" },
    { "reconnect_max_ms", BB_CFG_INT, "1000", 1, 600000, NULL, 0,
      "Longest wait between reconnect attempts (bounds recovery after Redis returns)" },
};

static const bb_session_ops redis_ops = {
    .size = sizeof(bb_session_ops),
    .create = rd_create,
    .destroy = rd_destroy,
    .health = rd_health,
    .put = rd_put,
    .get = rd_get,
    .touch = rd_touch,
    .remove = rd_remove,
    .hit = rd_hit,
    .count = rd_count,
};

static const bb_plugin_descriptor redis_desc = {
    .magic = BB_PLUGIN_MAGIC,
    .abi_major = BB_ABI_MAJOR,
    .abi_minor = BB_ABI_MINOR,
    .size = sizeof(bb_plugin_descriptor),
    .kind = BB_KIND_SESSION,
    .name = "redis",
    .version = PACKAGE_VERSION,
    .description = "sessions and shared counters in Redis (hiredis, pooled, reconnecting)",
    .ops = &redis_ops,
    .config_keys = redis_keys,
    .n_config_keys = sizeof redis_keys / sizeof redis_keys[0],
};

BB_PLUGIN_DEFINE(redis_desc)
