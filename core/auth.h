/*
 * core/auth.h — team API keys: generation, hashing, lookup with a short
 * in-process cache, and the request check (Bearer or x-api-key).
 *
 * Key text: "bbk_" + 43 URL-safe base64 characters (256 random bits).
 * Stored: BLAKE2b-256 of the text, plus the first 12 characters for display.
 * The logger masks anything shaped like a key.
 */
#ifndef BB_CORE_AUTH_H
#define BB_CORE_AUTH_H

#include "server.h"

#define BB_KEY_TEXT_MAX 64

typedef struct bb_auth_cache bb_auth_cache;

bb_auth_cache *bb_auth_new(size_t max_entries);
void bb_auth_free(bb_auth_cache *c);
/* Forget everything (after a revoke in this process). */
void bb_auth_flush(bb_auth_cache *c);

/* New key: text for the user (shown once), and the record to store. */
bool bb_key_generate(const char *team, const char *label, char text[BB_KEY_TEXT_MAX], bb_api_key *rec);
void bb_key_hash(const char *text, uint8_t out[BB_KEY_HASH_LEN]);

/* Resolve a key text to its team.  BB_OK fills *who; BB_NOT_FOUND for an
 * unknown or revoked key (err->msg says which); BB_UNAVAILABLE when storage is. */
bb_status bb_auth_key(bb_server *srv, const bb_call *call, const char *text, bb_principal *who, bb_error *err);

/* The key a request presents: "Authorization: Bearer X" or "x-api-key: X";
 * NULL when none. */
const char *bb_auth_presented(bb_req *req);

/* Full check for routes with BB_ROUTE_AUTH: answers 401/403/503 itself and
 * returns false, or fills req->who and returns true. */
bool bb_auth_request(bb_req *req, enum MHD_Result *answered);

#endif
