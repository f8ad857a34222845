/*
 * botboard/session.h — the `session` plugin kind: an expiring store of
 * sealed session records, and windowed counters for shared rate limits.
 *
 * The core owns what a session means: it generates ids (256 bits from the
 * CSPRNG), hashes them with a keyed hash, and seals the payload with an AEAD
 * key from `session.keys` before handing it here.  A backend therefore stores
 * only (id_hash -> opaque sealed bytes, expiry) and never sees a plaintext id,
 * handle or team.
 *
 * Expiry: expires_ms is absolute unix ms.  A record past it must be invisible
 * at once (get -> BB_NOT_FOUND) and reclaimed in the background.
 *
 * Config: create() receives the `session:` node; core keys readable there:
 * ttl_s, idle_timeout_s; the plugin's own keys under "<name>.".
 */
#ifndef BOTBOARD_SESSION_H
#define BOTBOARD_SESSION_H

#include <botboard/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bb_session_store bb_session_store;   /* opaque plugin instance */

#define BB_SESSION_HASH_LEN 32

typedef struct bb_counter_result {
    bool     allowed;      /* this hit was within the limit */
    uint32_t remaining;    /* hits left in the current window */
    int64_t  reset_ms;     /* unix ms when the window resets */
} bb_counter_result;

typedef struct bb_session_ops {
    BB_OPS_COMMON(bb_session_store);

    /* Insert or replace. */
    bb_status (*put)(bb_session_store *self, const bb_call *call,
                     const uint8_t id_hash[BB_SESSION_HASH_LEN],
                     const void *sealed, size_t len, int64_t expires_ms, bb_error *err);
    /* *sealed is malloc'd; the caller frees it.  BB_NOT_FOUND if absent or expired. */
    bb_status (*get)(bb_session_store *self, const bb_call *call,
                     const uint8_t id_hash[BB_SESSION_HASH_LEN],
                     void **sealed, size_t *len, bb_error *err);
    /* Move the expiry (sliding idle timeout).  BB_NOT_FOUND if absent or expired. */
    bb_status (*touch)(bb_session_store *self, const bb_call *call,
                       const uint8_t id_hash[BB_SESSION_HASH_LEN],
                       int64_t expires_ms, bb_error *err);
    /* BB_OK whether or not it existed. */
    bb_status (*remove)(bb_session_store *self, const bb_call *call,
                        const uint8_t id_hash[BB_SESSION_HASH_LEN], bb_error *err);

    /* Optional (may be NULL): fixed-window counter, atomic across every
     * process sharing the backend.  Counts the hit even when over the limit. */
    bb_status (*hit)(bb_session_store *self, const bb_call *call, const char *key,
                     uint32_t limit, int64_t window_ms, bb_counter_result *out, bb_error *err);

    /* Number of live records, for the active-sessions gauge (may be approximate). */
    bb_status (*count)(bb_session_store *self, const bb_call *call, int64_t *out, bb_error *err);
} bb_session_ops;

#ifdef __cplusplus
}
#endif
#endif /* BOTBOARD_SESSION_H */
