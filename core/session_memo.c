/*
 * core/session_memo.c — opened session records by sealed bytes (see
 * session_memo.h for what it may and may not assume).
 */
#include "session_memo.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 16   /* locks; slot i is guarded by lock i % STRIPES */

typedef struct entry {
    const void *ring;                      /* NULL = empty slot */
    uint8_t     hash[BB_SESSION_HASH_LEN];
    uint8_t    *sealed;
    size_t      sealed_len;
    bb_session  rec;                       /* id left empty; subs owned */
} entry;

struct bb_session_memo {
    pthread_mutex_t lock[STRIPES];
    entry           slot[BB_SESSION_MEMO_SLOTS];
};

static size_t slot_of(const uint8_t hash[BB_SESSION_HASH_LEN])
{
    return ((size_t)hash[0] | (size_t)hash[1] << 8) % BB_SESSION_MEMO_SLOTS;
}

static void entry_clear(entry *e)
{
    free(e->sealed);
    bb_session_clear(&e->rec);
    memset(e, 0, sizeof *e);
}

/* dst = src with its own copies of the subscriptions; false when out of memory. */
static bool copy_session(bb_session *dst, const bb_session *src)
{
    *dst = *src;
    memset(dst->id, 0, sizeof dst->id);
    for (size_t i = 0; i < src->n_subs; i++) {
        if (!(dst->subs[i] = strdup(src->subs[i]))) {
            dst->n_subs = i;
            bb_session_clear(dst);
            return false;
        }
    }
    return true;
}

bb_session_memo *bb_session_memo_new(void)
{
    bb_session_memo *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    for (int i = 0; i < STRIPES; i++) pthread_mutex_init(&m->lock[i], NULL);
    return m;
}

void bb_session_memo_free(bb_session_memo *m)
{
    if (!m) return;
    for (size_t i = 0; i < BB_SESSION_MEMO_SLOTS; i++) entry_clear(&m->slot[i]);
    for (int i = 0; i < STRIPES; i++) pthread_mutex_destroy(&m->lock[i]);
    free(m);
}

bool bb_session_memo_get(bb_session_memo *m, const void *ring, const uint8_t hash[BB_SESSION_HASH_LEN],
                         const void *sealed, size_t sealed_len, bb_session *out)
{
    size_t i = slot_of(hash);
    entry *e = &m->slot[i];
    bool hit;
    pthread_mutex_lock(&m->lock[i % STRIPES]);
    hit = e->ring == ring && ring && memcmp(e->hash, hash, BB_SESSION_HASH_LEN) == 0 &&
          e->sealed_len == sealed_len && sodium_memcmp(e->sealed, sealed, sealed_len) == 0 &&
          copy_session(out, &e->rec);
    pthread_mutex_unlock(&m->lock[i % STRIPES]);
    return hit;
}

void bb_session_memo_put(bb_session_memo *m, const void *ring, const uint8_t hash[BB_SESSION_HASH_LEN],
                         const void *sealed, size_t sealed_len, const bb_session *decoded)
{
    size_t i = slot_of(hash);
    entry fresh;
    memset(&fresh, 0, sizeof fresh);
    /* Copies made outside the lock; the slot swap under it is O(1). */
    if (!ring || !(fresh.sealed = malloc(sealed_len ? sealed_len : 1))) return;
    if (!copy_session(&fresh.rec, decoded)) {
        free(fresh.sealed);
        return;
    }
    memcpy(fresh.sealed, sealed, sealed_len);
    fresh.sealed_len = sealed_len;
    memcpy(fresh.hash, hash, BB_SESSION_HASH_LEN);
    fresh.ring = ring;
    pthread_mutex_lock(&m->lock[i % STRIPES]);
    entry old = m->slot[i];
    m->slot[i] = fresh;
    pthread_mutex_unlock(&m->lock[i % STRIPES]);
    entry_clear(&old);
}

void bb_session_memo_forget(bb_session_memo *m, const uint8_t hash[BB_SESSION_HASH_LEN])
{
    size_t i = slot_of(hash);
    entry old;
    memset(&old, 0, sizeof old);
    pthread_mutex_lock(&m->lock[i % STRIPES]);
    if (memcmp(m->slot[i].hash, hash, BB_SESSION_HASH_LEN) == 0) {
        old = m->slot[i];
        memset(&m->slot[i], 0, sizeof m->slot[i]);
    }
    pthread_mutex_unlock(&m->lock[i % STRIPES]);
    entry_clear(&old);
}
