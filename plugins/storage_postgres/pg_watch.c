/*
 * plugins/storage_postgres/pg_watch.c — cross-instance change events.
 *
 * post_create sends pg_notify inside its transaction (delivered only if it
 * commits).  watch() starts a thread with its own connection that LISTENs
 * and calls the host's function for posts created by other instances (each
 * notification carries the creating instance's token).  If the connection
 * drops, the thread reconnects with backoff; destroy() wakes it through a
 * pipe and joins it.
 */
#include "pg_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WATCH_BACKOFF_BASE_MS 100
#define WATCH_BACKOFF_MAX_MS  5000
#define WATCH_FIELDS          5

struct pg_watch {
    pg_store        *s;
    bb_post_event_fn fn;
    void            *ud;
    pthread_t        thread;
    int              wake[2];          /* destroy() writes a byte to stop the thread */
    atomic_bool      stop;
};

/* Wait up to ms (or for the stop byte); true if asked to stop. */
static bool wait_stop(struct pg_watch *w, int64_t ms)
{
    struct pollfd pfd = { w->wake[0], POLLIN, 0 };
    if (atomic_load(&w->stop)) return true;
    (void)poll(&pfd, 1, ms > 60000 ? 60000 : (int)ms);
    return atomic_load(&w->stop);
}

/* token \x1f team \x1f id \x1f thread \x1f author (author may hold anything). */
static void deliver(struct pg_watch *w, char *payload)
{
    char *f[WATCH_FIELDS];
    int n = 0;
    f[n++] = payload;
    for (char *p = payload; *p && n < WATCH_FIELDS; p++)
        if (*p == '\x1f') { *p = '\0'; f[n++] = p + 1; }
    if (n != WATCH_FIELDS || strcmp(f[0], w->s->token) == 0) return;   /* malformed, or our own post */
    if (w->s->m.notify_received) w->s->api->add(w->s->m.notify_received, 1);
    w->fn(w->ud, f[1], f[2], f[3], f[4]);
}

static void listen_on(struct pg_watch *w, PGconn *pg)
{
    while (!atomic_load(&w->stop)) {
        struct pollfd pfd[2] = { { PQsocket(pg), POLLIN, 0 }, { w->wake[0], POLLIN, 0 } };
        PGnotify *n;
        if (pfd[0].fd < 0) return;
        if (poll(pfd, 2, 1000) < 0 && errno != EINTR) return;
        if (atomic_load(&w->stop)) return;
        if (!PQconsumeInput(pg)) return;              /* the server went away: reconnect */
        while ((n = PQnotifies(pg)) != NULL) {
            if (n->extra) deliver(w, n->extra);
            PQfreemem(n);
        }
        if (PQstatus(pg) != CONNECTION_OK) return;
    }
}

static void *watch_thread(void *arg)
{
    struct pg_watch *w = arg;
    int failures = 0;
    while (!atomic_load(&w->stop)) {
        bb_error err;
        PGconn *pg;
        PGresult *r;
        bb_error_clear(&err);
        pg = pg_connect(w->s, &err);
        if (pg) {
            r = PQexec(pg, "LISTEN " PG_NOTIFY_CHANNEL);
            if (r && PQresultStatus(r) == PGRES_COMMAND_OK) {
                if (failures) w->s->api->log(w->s->host, BB_LOG_INFO, NULL, "change listener reconnected");
                failures = 0;
                PQclear(r);
                listen_on(w, pg);
            } else {
                PQclear(r);
            }
            PQfinish(pg);
        }
        if (atomic_load(&w->stop)) break;
        failures++;
        if (failures == 1)
            w->s->api->log(w->s->host, BB_LOG_WARN, NULL, "change listener lost its connection; reconnecting: %s",
                           err.msg[0] ? err.msg : "connection closed");
        if (wait_stop(w, pg_backoff_ms(w->s, failures, WATCH_BACKOFF_BASE_MS, WATCH_BACKOFF_MAX_MS))) break;
    }
    return NULL;
}

bb_status pg_watch_start(pg_store *s, bb_post_event_fn fn, void *ud, bb_error *err)
{
    struct pg_watch *w;
    if (!fn) return bb_fail(err, BB_INVALID, NULL, "watch needs a function");
    pthread_mutex_lock(&s->watch_mu);
    if (s->watch) {
        pthread_mutex_unlock(&s->watch_mu);
        return bb_fail(err, BB_INVALID, NULL, "this storage instance is already watching");
    }
    w = calloc(1, sizeof *w);
    if (!w) {
        pthread_mutex_unlock(&s->watch_mu);
        return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    }
    w->s = s;
    w->fn = fn;
    w->ud = ud;
    atomic_init(&w->stop, false);
    if (pipe2(w->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(w);
        pthread_mutex_unlock(&s->watch_mu);
        return bb_fail(err, BB_INTERNAL, NULL, "cannot create the listener's wake-up pipe");
    }
    if (pthread_create(&w->thread, NULL, watch_thread, w) != 0) {
        close(w->wake[0]);
        close(w->wake[1]);
        free(w);
        pthread_mutex_unlock(&s->watch_mu);
        return bb_fail(err, BB_INTERNAL, NULL, "cannot start the change listener thread");
    }
    s->watch = w;
    pthread_mutex_unlock(&s->watch_mu);
    return BB_OK;
}

void pg_watch_stop(pg_store *s)
{
    struct pg_watch *w;
    pthread_mutex_lock(&s->watch_mu);
    w = s->watch;
    s->watch = NULL;
    pthread_mutex_unlock(&s->watch_mu);
    if (!w) return;
    atomic_store(&w->stop, true);
    if (write(w->wake[1], "x", 1) < 0) { /* the flag alone stops it within a second */ }
    pthread_join(w->thread, NULL);
    close(w->wake[0]);
    close(w->wake[1]);
    free(w);
}
