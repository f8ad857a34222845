/*
 * core/session_seal.c — session keys, id hashes and sealed records (the
 * format is described in session_seal.h).
 */
#include "session_seal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN   crypto_aead_xchacha20poly1305_ietf_ABYTES
#define HEADER_MAX (2 + BB_SEAL_KEY_ID_MAX)

/* Changing this string changes every id hash: sessions would be lost. */
static const char IDHASH_CONTEXT[] = "botboard session id hash v1";

static bool key_id_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static void derive_idhash(bb_seal_key *k)
{
    crypto_generichash(k->idhash, sizeof k->idhash, (const unsigned char *)IDHASH_CONTEXT,
                       sizeof IDHASH_CONTEXT - 1, k->aead, sizeof k->aead);
}

bool bb_seal_key_parse(const char *text, bb_seal_key *out, char *why, size_t why_len)
{
    static const int variants[] = { sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                                    sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING };
    const char *colon = text ? strchr(text, ':') : NULL;
    size_t id_len, b64_len;
    memset(out, 0, sizeof *out);
    if (!colon) {
        snprintf(why, why_len, "a key must be \"ID:BASE64(32 bytes)\" (no ':' found)");
        return false;
    }
    id_len = (size_t)(colon - text);
    if (id_len == 0 || id_len >= BB_SEAL_KEY_ID_MAX) {
        snprintf(why, why_len, "a key id must be 1-%d characters", BB_SEAL_KEY_ID_MAX - 1);
        return false;
    }
    for (size_t i = 0; i < id_len; i++) {
        if (!key_id_char(text[i])) {
            snprintf(why, why_len, "key id '%.*s' may only use A-Z a-z 0-9 . _ -", (int)id_len, text);
            return false;
        }
    }
    memcpy(out->id, text, id_len);
    out->id[id_len] = '\0';
    b64_len = strlen(colon + 1);
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        size_t bin_len = 0;
        const char *end = NULL;
        uint8_t bin[BB_SEAL_KEY_LEN + 1];
        int rc = sodium_base642bin(bin, sizeof bin, colon + 1, b64_len, NULL, &bin_len, &end, variants[v]);
        bool ok = rc == 0 && end == colon + 1 + b64_len && bin_len == BB_SEAL_KEY_LEN;
        if (ok) memcpy(out->aead, bin, BB_SEAL_KEY_LEN);
        sodium_memzero(bin, sizeof bin);
        if (ok) {
            derive_idhash(out);
            return true;
        }
    }
    snprintf(why, why_len, "key '%s' is not base64 of exactly %d bytes (make one with: head -c %d /dev/urandom | base64)",
             out->id, BB_SEAL_KEY_LEN, BB_SEAL_KEY_LEN);
    sodium_memzero(out, sizeof *out);
    return false;
}

static bb_keyring *ring_alloc(size_t n)
{
    /* sodium_malloc puts the block right before a guard page, so it is only
     * aligned when its size is a multiple of the alignment. */
    size_t size = (sizeof(bb_keyring) + n * sizeof(bb_seal_key) + 15) & ~(size_t)15;
    bb_keyring *kr = sodium_malloc(size);
    if (kr) {
        memset(kr, 0, size);
        kr->n = n;
    }
    return kr;
}

bb_keyring *bb_keyring_from_list(const char *const *items, size_t n, char *why, size_t why_len)
{
    bb_keyring *kr;
    if (n == 0) {
        snprintf(why, why_len, "no keys");
        return NULL;
    }
    if (!(kr = ring_alloc(n))) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char inner[256];
        if (!bb_seal_key_parse(items[i], &kr->keys[i], inner, sizeof inner)) {
            snprintf(why, why_len, "item %zu: %s", i + 1, inner);
            bb_keyring_free(kr);
            return NULL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(kr->keys[j].id, kr->keys[i].id) == 0) {
                snprintf(why, why_len, "item %zu: key id '%s' is used twice", i + 1, kr->keys[i].id);
                bb_keyring_free(kr);
                return NULL;
            }
        }
    }
    return kr;
}

bb_keyring *bb_keyring_ephemeral(void)
{
    bb_keyring *kr = ring_alloc(1);
    if (!kr) return NULL;
    kr->ephemeral = true;
    snprintf(kr->keys[0].id, sizeof kr->keys[0].id, "ephemeral");
    randombytes_buf(kr->keys[0].aead, sizeof kr->keys[0].aead);
    derive_idhash(&kr->keys[0]);
    return kr;
}

void bb_keyring_free(bb_keyring *kr)
{
    if (kr) sodium_free(kr);   /* wipes before releasing */
}

const bb_seal_key *bb_keyring_find(const bb_keyring *kr, const char *id, size_t id_len)
{
    for (size_t i = 0; i < kr->n; i++)
        if (strlen(kr->keys[i].id) == id_len && memcmp(kr->keys[i].id, id, id_len) == 0) return &kr->keys[i];
    return NULL;
}

void bb_seal_id_hash(const bb_seal_key *k, const char *text, uint8_t out[BB_SESSION_HASH_LEN])
{
    crypto_generichash(out, BB_SESSION_HASH_LEN, (const unsigned char *)text, strlen(text), k->idhash,
                       sizeof k->idhash);
}

/* header || id_hash, the additional data. */
static size_t build_ad(const uint8_t *header, size_t header_len, const uint8_t id_hash[BB_SESSION_HASH_LEN],
                       uint8_t *ad)
{
    memcpy(ad, header, header_len);
    memcpy(ad + header_len, id_hash, BB_SESSION_HASH_LEN);
    return header_len + BB_SESSION_HASH_LEN;
}

bool bb_seal(const bb_seal_key *k, const uint8_t id_hash[BB_SESSION_HASH_LEN], const void *plain,
             size_t plain_len, uint8_t **out, size_t *out_len)
{
    size_t id_len = strlen(k->id), header_len = 2 + id_len, total;
    uint8_t *buf, ad[HEADER_MAX + BB_SESSION_HASH_LEN];
    unsigned long long clen = 0;
    size_t ad_len;
    *out = NULL;
    *out_len = 0;
    if (plain_len > SIZE_MAX - header_len - NONCE_LEN - TAG_LEN) return false;
    total = header_len + NONCE_LEN + plain_len + TAG_LEN;
    if (!(buf = malloc(total))) return false;
    buf[0] = BB_SEAL_VERSION;
    buf[1] = (uint8_t)id_len;
    memcpy(buf + 2, k->id, id_len);
    randombytes_buf(buf + header_len, NONCE_LEN);
    ad_len = build_ad(buf, header_len, id_hash, ad);
    crypto_aead_xchacha20poly1305_ietf_encrypt(buf + header_len + NONCE_LEN, &clen, plain, plain_len, ad, ad_len,
                                               NULL, buf + header_len, k->aead);
    *out = buf;
    *out_len = header_len + NONCE_LEN + (size_t)clen;
    return true;
}

bb_unseal_result bb_unseal(const bb_keyring *kr, const uint8_t id_hash[BB_SESSION_HASH_LEN],
                           const uint8_t *sealed, size_t len, char **plain, size_t *plain_len, char *key_id)
{
    size_t id_len, header_len, clen;
    const bb_seal_key *k;
    uint8_t ad[HEADER_MAX + BB_SESSION_HASH_LEN];
    unsigned long long mlen = 0;
    char *buf;
    *plain = NULL;
    *plain_len = 0;
    if (key_id) key_id[0] = '\0';
    if (len < 2 || sealed[0] != BB_SEAL_VERSION) return BB_UNSEAL_BAD;
    id_len = sealed[1];
    header_len = 2 + id_len;
    if (id_len == 0 || id_len >= BB_SEAL_KEY_ID_MAX || len < header_len + NONCE_LEN + TAG_LEN) return BB_UNSEAL_BAD;
    for (size_t i = 0; i < id_len; i++)
        if (!key_id_char((char)sealed[2 + i])) return BB_UNSEAL_BAD;
    if (key_id) {
        memcpy(key_id, sealed + 2, id_len);
        key_id[id_len] = '\0';
    }
    if (!(k = bb_keyring_find(kr, (const char *)sealed + 2, id_len))) return BB_UNSEAL_UNKNOWN_KEY;
    clen = len - header_len - NONCE_LEN;
    if (!(buf = malloc(clen - TAG_LEN + 1))) return BB_UNSEAL_NOMEM;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)buf, &mlen, NULL,
                                                   sealed + header_len + NONCE_LEN, clen, ad,
                                                   build_ad(sealed, header_len, id_hash, ad),
                                                   sealed + header_len, k->aead) != 0) {
        free(buf);
        return BB_UNSEAL_BAD;
    }
    buf[mlen] = '\0';
    *plain = buf;
    *plain_len = (size_t)mlen;
    return BB_UNSEAL_OK;
}
