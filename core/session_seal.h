/*
 * core/session_seal.h — the cryptography of sessions: key text, the keyed
 * hash a backend stores instead of an id, and the sealed record format.
 *
 * Keys: session.keys items are "ID:BASE64", ID 1-32 characters of
 * [A-Za-z0-9._-], BASE64 (standard or URL-safe, padding optional) of
 * exactly 32 bytes.  The first key seals; every key opens.
 *
 * Id hash: each key derives its own BLAKE2b hashing key (BLAKE2b keyed with
 * the AEAD key over a fixed context string), and the plugin key of a
 * session is BLAKE2b-256 keyed with it over the plaintext id.  A lookup
 * tries the first key's hash, then each older key's; a hit under an older
 * key is re-sealed and moved to the first key's hash (sessions.c), so after
 * a rotation live sessions migrate on first use and nobody is logged out.
 * Without a key nobody can map a stored hash back to an id, so a copy of
 * the store cannot be replayed.
 *
 * Sealed record:  [0x01][L][key id, L bytes][24-byte nonce][ciphertext+16]
 * XChaCha20-Poly1305-IETF under the named key; the additional data is the
 * header (version, L, key id) followed by the id hash the record is stored
 * under, so a record copied to another session's slot does not open.
 */
#ifndef BB_CORE_SESSION_SEAL_H
#define BB_CORE_SESSION_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <botboard/session.h>

#define BB_SEAL_KEY_ID_MAX 33   /* 32 characters + NUL */
#define BB_SEAL_KEY_LEN    32
#define BB_SEAL_VERSION    1

typedef struct bb_seal_key {
    char    id[BB_SEAL_KEY_ID_MAX];
    uint8_t aead[BB_SEAL_KEY_LEN];
    uint8_t idhash[BB_SEAL_KEY_LEN];   /* derived from aead */
} bb_seal_key;

/* An immutable list of keys; keys[0] seals.  Lives in sodium_malloc'd
 * (guarded, locked) memory and is wiped when freed. */
typedef struct bb_keyring {
    size_t      n;
    bool        ephemeral;     /* generated at start: sessions end with the process */
    bb_seal_key keys[];
} bb_keyring;

/* Parse one "ID:BASE64" item.  why never repeats the key material. */
bool bb_seal_key_parse(const char *text, bb_seal_key *out, char *why, size_t why_len);

/* From the session.keys items (n >= 1); NULL + why on a bad item or a
 * duplicate id. */
bb_keyring *bb_keyring_from_list(const char *const *items, size_t n, char *why, size_t why_len);
/* One random key with id "ephemeral". */
bb_keyring *bb_keyring_ephemeral(void);
void        bb_keyring_free(bb_keyring *kr);
/* The key with this id, or NULL. */
const bb_seal_key *bb_keyring_find(const bb_keyring *kr, const char *id, size_t id_len);

/* The plugin key of a plaintext session id (or of any text: counter names). */
void bb_seal_id_hash(const bb_seal_key *k, const char *text, uint8_t out[BB_SESSION_HASH_LEN]);

/* Seal plain under k for the slot id_hash; *out is malloc'd. */
bool bb_seal(const bb_seal_key *k, const uint8_t id_hash[BB_SESSION_HASH_LEN], const void *plain,
             size_t plain_len, uint8_t **out, size_t *out_len);

typedef enum bb_unseal_result {
    BB_UNSEAL_OK = 0,
    BB_UNSEAL_UNKNOWN_KEY,   /* well-formed, but its key id is not configured */
    BB_UNSEAL_BAD,           /* malformed, tampered, or sealed for another slot */
    BB_UNSEAL_NOMEM
} bb_unseal_result;

/* Open with the key the header names.  On OK *plain is malloc'd and
 * NUL-terminated (plain_len excludes the NUL).  key_id (>= BB_SEAL_KEY_ID_MAX
 * bytes, may be NULL) receives the header's key id when it could be read. */
bb_unseal_result bb_unseal(const bb_keyring *kr, const uint8_t id_hash[BB_SESSION_HASH_LEN],
                           const uint8_t *sealed, size_t len, char **plain, size_t *plain_len,
                           char *key_id);

#endif
