/*
 * core/session_memo.h — opened session records, remembered by their
 * sealed bytes.
 *
 * Every MCP request loads its session: the sealed record from the plugin,
 * opened (XChaCha20-Poly1305) and decoded.  Opening is half of that work.
 * A record changes only by being sealed again, under a fresh nonce, so the
 * same sealed bytes always open to the same session.  The memo keeps, per
 * id hash, the sealed bytes last opened and what they decoded to; a load
 * whose bytes are identical takes the decoded copy instead of opening them
 * again.  The plugin is still asked on every load, so an ended or expired
 * session, and a write by another process, are seen exactly as before.
 *
 * An entry counts only under the keyring it was opened with: after a
 * reload of session.keys every record is opened again once, so one sealed
 * under a dropped key fails to open as it must.  (Replaced keyrings stay
 * allocated until bb_sessions_free, so a pointer never names two rings.)
 *
 * Size: BB_SESSION_MEMO_SLOTS entries, direct-mapped by the id hash (a
 * keyed hash, so nobody can aim collisions); a collision only costs the
 * next load an opening.  Striped locks; any thread.  An entry holds what
 * the record says, never the session id itself (the bearer secret).
 */
#ifndef BB_CORE_SESSION_MEMO_H
#define BB_CORE_SESSION_MEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sessions.h"

#define BB_SESSION_MEMO_SLOTS 256

typedef struct bb_session_memo bb_session_memo;

bb_session_memo *bb_session_memo_new(void);
void             bb_session_memo_free(bb_session_memo *m);

/* True when these sealed bytes, under this keyring, were opened before:
 * *out is what they decoded to (subscriptions copied; id left empty).
 * False (and *out untouched) otherwise, or when a copy cannot be made. */
bool bb_session_memo_get(bb_session_memo *m, const void *ring, const uint8_t hash[BB_SESSION_HASH_LEN],
                         const void *sealed, size_t sealed_len, bb_session *out);
/* Remember what sealed bytes opened to.  Skipped when out of memory. */
void bb_session_memo_put(bb_session_memo *m, const void *ring, const uint8_t hash[BB_SESSION_HASH_LEN],
                         const void *sealed, size_t sealed_len, const bb_session *decoded);
/* Drop the entry of an ended session. */
void bb_session_memo_forget(bb_session_memo *m, const uint8_t hash[BB_SESSION_HASH_LEN]);

#endif
