/*
 * plugins/storage_sqlite/sq_ckpt.c — WAL checkpoints on a thread of their own.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL
 * past its limit: that writer (with group commit, the leader every queued
 * writer waits for) copies the WAL into the database file and syncs both
 * before it returns.  Instead every pool connection's WAL hook only wakes
 * this thread once the WAL holds checkpoint_pages frames; it runs a PASSIVE
 * checkpoint on a connection of its own, which never blocks readers or
 * writers.  Should it fall far behind (8x the limit) the committing writer
 * checkpoints itself, as SQLite would, so the WAL stays bounded.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "sq.h"

enum { BEHIND_FACTOR = 8, MIN_INTERVAL_MS = 10 };

static int wal_hook(void *ud, sqlite3 *db, const char *name, int frames)
{
    sq *s = ud;
    if (frames < s->checkpoint_pages) return SQLITE_OK;
    if (frames >= BEHIND_FACTOR * s->checkpoint_pages) {
        /* Back-pressure: BUSY just means the thread is at it right now. */
        int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            s->api->log(s->host, BB_LOG_WARN, NULL, "checkpoint: %s", sqlite3_errmsg(db));
        return SQLITE_OK;
    }
    if (!atomic_exchange(&s->ck_signalled, true)) {
        pthread_mutex_lock(&s->ck_lock);
        s->ck_want = true;
        pthread_cond_signal(&s->ck_wake);
        pthread_mutex_unlock(&s->ck_lock);
    }
    return SQLITE_OK;
}

void sq_ckpt_hook(sq *s, sq_conn *c)
{
    sqlite3_wal_hook(c->db, wal_hook, s);   /* replaces SQLite's own autocheckpoint */
}

static void *ckpt_main(void *ud)
{
    sq *s = ud;
    pthread_mutex_lock(&s->ck_lock);
    while (!s->ck_stop) {
        int rc, log = 0, done = 0;
        if (!s->ck_want) {
            struct timespec until = sq_abs_after(CLOCK_MONOTONIC, 1000);
            pthread_cond_timedwait(&s->ck_wake, &s->ck_lock, &until);
            continue;
        }
        s->ck_want = false;
        pthread_mutex_unlock(&s->ck_lock);
        rc = sqlite3_wal_checkpoint_v2(s->ck_conn.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        if (rc == SQLITE_OK) s->api->add(s->checkpoints, 1);
        else if (rc != SQLITE_BUSY)
            s->api->log(s->host, BB_LOG_WARN, NULL, "background checkpoint: %s", sqlite3_errmsg(s->ck_conn.db));
        pthread_mutex_lock(&s->ck_lock);
        /* At most one checkpoint per MIN_INTERVAL_MS: a long reader can keep
         * a checkpoint from finishing, and retrying at every commit would
         * only burn CPU. */
        if (!s->ck_stop) {
            struct timespec until = sq_abs_after(CLOCK_MONOTONIC, MIN_INTERVAL_MS);
            while (!s->ck_stop && pthread_cond_timedwait(&s->ck_wake, &s->ck_lock, &until) != ETIMEDOUT) { }
        }
        atomic_store(&s->ck_signalled, false);
    }
    pthread_mutex_unlock(&s->ck_lock);
    return NULL;
}

bb_status sq_ckpt_start(sq *s, bb_error *err)
{
    pthread_condattr_t ca;
    bb_status st;
    int rc;
    atomic_init(&s->ck_signalled, false);
    if ((rc = pthread_condattr_init(&ca)) != 0) return bb_fail(err, BB_INTERNAL, NULL, "checkpointer: %s", strerror(rc));
    if ((rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) != 0 ||
        (rc = pthread_mutex_init(&s->ck_lock, NULL)) != 0) {
        pthread_condattr_destroy(&ca);
        return bb_fail(err, BB_INTERNAL, NULL, "checkpointer: %s", strerror(rc));
    }
    if ((rc = pthread_cond_init(&s->ck_wake, &ca)) != 0) {
        pthread_condattr_destroy(&ca);
        pthread_mutex_destroy(&s->ck_lock);
        return bb_fail(err, BB_INTERNAL, NULL, "checkpointer: %s", strerror(rc));
    }
    pthread_condattr_destroy(&ca);
    s->ck_ready = true;
    if ((st = sq_open_conn(s, &s->ck_conn, err)) != BB_OK) return st;
    if ((rc = pthread_create(&s->ck_thread, NULL, ckpt_main, s)) != 0)
        return bb_fail(err, BB_INTERNAL, NULL, "cannot start the checkpoint thread: %s", strerror(rc));
    s->ck_running = true;
    return BB_OK;
}

void sq_ckpt_stop(sq *s)
{
    if (s->ck_running) {
        pthread_mutex_lock(&s->ck_lock);
        s->ck_stop = true;
        pthread_cond_signal(&s->ck_wake);
        pthread_mutex_unlock(&s->ck_lock);
        pthread_join(s->ck_thread, NULL);
        s->ck_running = false;
    }
    sq_close_conn(&s->ck_conn);
    if (s->ck_ready) {
        pthread_cond_destroy(&s->ck_wake);
        pthread_mutex_destroy(&s->ck_lock);
        s->ck_ready = false;
    }
}
