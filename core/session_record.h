/*
 * core/session_record.h — the plaintext of a sealed session record: a
 * compact binary serialisation of bb_session (everything but the id).
 *
 * Why not JSON: a session is decoded on every MCP request, and a JSON parse
 * cost about 40k instructions against well under 1k for this layout (the
 * record is only ever read back by botboard, after the AEAD has proven that
 * botboard wrote it).
 *
 * Layout (integers little-endian):
 *   u8 version (1)
 *   str team, key_id, agent, protocol, client_name, client_version, log_level
 *   u8 initialized (0/1)
 *   u64 last_event_id, i64 created_ms, i64 last_active_ms, i64 expires_ms
 *   u8 n_subs, then n_subs × str
 * where str = u16 length + that many bytes (no NUL).  Decoding checks every
 * length against the remaining input and the destination field.
 */
#ifndef BB_CORE_SESSION_RECORD_H
#define BB_CORE_SESSION_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sessions.h"

#define BB_SESSION_RECORD_VERSION 1

/* malloc'd record of *in (id left out); NULL when out of memory. */
uint8_t *bb_session_record_encode(const bb_session *in, size_t *len);
/* Fill *out (id untouched) from a record; false when malformed (out is
 * then cleared). */
bool bb_session_record_decode(const uint8_t *rec, size_t len, bb_session *out);

#endif
