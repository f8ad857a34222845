/*
 * core/sessions.h — what an MCP session is, on top of the session plugin.
 *
 * The core owns the meaning: ids are 256 bits from libsodium's CSPRNG as
 * URL-safe text; the plugin only ever sees a keyed hash of the id and the
 * record sealed with an AEAD key from `session.keys` (the first key seals,
 * every key opens, each sealed record names its key id), so a copy of the
 * store can neither be replayed as live sessions nor read.
 *
 * Lifetime: expires_ms = min(created + session.ttl_s, last activity +
 * session.idle_timeout_s); activity is written back at most every
 * session.touch_interval_s.  A record that is expired, unknown, or fails
 * to open (unknown key id, tampered) is BB_NOT_FOUND (and logged), never
 * a crash.
 *
 * Threads: every function may be called from any worker thread at once.
 *
 * Key rotation and the id hash: each key derives its own BLAKE2b hashing
 * key, and the plugin key of a session is the keyed hash of its id under
 * the first key.  A load tries the first key's hash, then each older key's;
 * a hit under an older key is re-sealed with the first key and moved to its
 * hash.  So adding a new key first keeps everyone logged in, and an old key
 * can be dropped once its sessions have been used once (or have expired).
 * Formats and details: session_seal.h.
 *
 * Idle expiry has the resolution of session.touch_interval_s: a load
 * writes the record back (sliding its expiry) only when its last activity
 * is older than that.  Saves replace the whole record: last writer wins.
 *
 * Counters (bb_sessions_hit): the name is hashed with the first key too,
 * so the store holds no team or key id in the clear; counters shared
 * between processes therefore need the same session.keys (as sessions do).
 *
 * Metrics: sessions_active (gauge, from the plugin's count() every
 * session.gauge_interval_s on a thread of its own), sessions_created_total,
 * sessions_expired_total, session_lookups_total, session_misses_total,
 * session_unreadable_total, session_backend_errors_total{op},
 * session_operation_duration_seconds{op}.
 */
#ifndef BB_CORE_SESSIONS_H
#define BB_CORE_SESSIONS_H

#include <stdbool.h>
#include <stdint.h>

#include <botboard/session.h>
#include <botboard/types.h>

#include "app.h"

typedef struct bb_sessions bb_sessions;

#define BB_SESSION_ID_MAX    64    /* 43 URL-safe base64 characters + NUL */
#define BB_SESSION_SUBS_MAX  32    /* resource subscriptions per session */
#define BB_SESSION_AGENT_MAX (BB_AUTHOR_MAX * 4 + 1)   /* UTF-8 bytes */

typedef struct bb_session {
    char     id[BB_SESSION_ID_MAX];      /* plaintext: only in memory and in Mcp-Session-Id */
    char     team[BB_TEAM_MAX];
    char     key_id[BB_ID_MAX];          /* API key that opened it ("" for auth none / stdio) */
    char     agent[BB_SESSION_AGENT_MAX];/* handle bound by `login`; "" = not logged in */
    char     protocol[16];               /* negotiated MCP version, "2025-11-25" */
    char     client_name[128];
    char     client_version[64];
    bool     initialized;                /* notifications/initialized received */
    char     log_level[16];              /* logging/setLevel; "" = none requested */
    char    *subs[BB_SESSION_SUBS_MAX];  /* malloc'd resource URIs */
    size_t   n_subs;
    uint64_t last_event_id;              /* last SSE event id issued on this session */
    int64_t  created_ms;                 /* unix ms */
    int64_t  last_active_ms;             /* unix ms */
    int64_t  expires_ms;                 /* unix ms */
} bb_session;

/* Build from a validated config over the app's session plugin instance.
 * dev with an empty session.keys: one ephemeral key (sessions end with the
 * process; logged).  NULL + why on failure (bad key text, no plugin). */
bb_sessions *bb_sessions_new(bb_app *app, const bb_cfg *root, char *why, size_t why_len);
void         bb_sessions_free(bb_sessions *s);
/* SIGHUP: swap in a new session.keys list atomically. */
bb_status    bb_sessions_reload(bb_sessions *s, const bb_cfg *root, bb_error *err);

/* New session: the caller fills team, key_id, protocol, client_*; this
 * fills id and the times, and stores it. */
bb_status bb_session_create(bb_sessions *s, const bb_call *call, bb_session *io, bb_error *err);
/* Look up by plaintext id (slides the idle expiry).  BB_NOT_FOUND when
 * unknown, expired or unreadable; BB_UNAVAILABLE when the backend is. */
bb_status bb_session_load(bb_sessions *s, const bb_call *call, const char *id, bb_session *out, bb_error *err);
/* Write back a changed session (login, log level, subscriptions...). */
bb_status bb_session_save(bb_sessions *s, const bb_call *call, const bb_session *in, bb_error *err);
/* DELETE /mcp: BB_OK whether or not it existed. */
bb_status bb_session_end(bb_sessions *s, const bb_call *call, const char *id, bb_error *err);
/* Free what a loaded/created session owns (subs). */
void      bb_session_clear(bb_session *s);

/* Subscription set helpers (dedup; false when full or out of memory). */
bool bb_session_subscribe(bb_session *s, const char *uri);
void bb_session_unsubscribe(bb_session *s, const char *uri);

/* Shared windowed counter through the plugin's hit(); BB_INVALID when the
 * backend has none. */
bb_status bb_sessions_hit(bb_sessions *s, const bb_call *call, const char *key, uint32_t limit,
                          int64_t window_ms, bb_counter_result *out, bb_error *err);
/* Health of the backend, for /readyz. */
bb_status bb_sessions_health(bb_sessions *s, const bb_call *call, char *detail, size_t len, bb_error *err);

#endif
