/*
 * plugins/upstream_http/flight.c — single flight: while one read of a key is
 * on its way to the upstream, identical reads wait for its answer instead of
 * sending their own.  The first caller (the leader) fetches; followers get a
 * copy of the leader's result, or give up at their own deadline.
 */
#include "uh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct uh_flight {
    char          *key;
    pthread_cond_t done_cv;
    bool           done;
    int            refs;          /* leader + waiters still looking at it */
    uh_read_result result;
    uh_flight     *next;
};

void uh_flights_init(uh_flights *f)
{
    pthread_mutex_init(&f->lock, NULL);
    f->head = NULL;
}

void uh_flights_destroy(uh_flights *f)
{
    /* No call is running when the instance is destroyed: the list is empty. */
    pthread_mutex_destroy(&f->lock);
}

static void result_copy(const uh_read_result *from, uh_read_result *to)
{
    *to = *from;
    to->body = NULL;
    if (from->body) {
        to->body = malloc(from->body_len + 1);
        if (!to->body) {
            to->status = bb_fail(&to->err, BB_INTERNAL, NULL, "out of memory");
            to->body_len = 0;
            return;
        }
        memcpy(to->body, from->body, from->body_len + 1);
    }
}

static void flight_unref(uh_flight *fl)
{
    if (--fl->refs > 0) return;
    pthread_cond_destroy(&fl->done_cv);
    free(fl->result.body);
    free(fl->key);
    free(fl);
}

static void unlink_flight(uh_flights *f, uh_flight *fl)
{
    uh_flight **pp = &f->head;
    while (*pp && *pp != fl) pp = &(*pp)->next;
    if (*pp) *pp = fl->next;
}

void uh_flight_do(uh_inst *u, uh_op op, const char *key, int64_t deadline_ms,
                  uh_fetch_fn fetch, void *ctx, uh_read_result *out)
{
    uh_flights *f = &u->flights;
    uh_flight *fl;
    pthread_condattr_t ca;

    memset(out, 0, sizeof *out);
    if (!u->cfg.single_flight) { fetch(u, ctx, out); return; }

    pthread_mutex_lock(&f->lock);
    for (fl = f->head; fl; fl = fl->next) if (strcmp(fl->key, key) == 0) break;
    if (fl) {
        /* Follower: wait for the leader, bounded by our own deadline. */
        int64_t left = deadline_ms - u->api->now_ms();
        struct timespec until;
        int rc = 0;
        fl->refs++;
        u->api->add(u->m.dedup[op], 1);
        clock_gettime(CLOCK_MONOTONIC, &until);
        if (left < 0) left = 0;
        until.tv_sec += (time_t)(left / 1000);
        until.tv_nsec += (long)(left % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
        while (!fl->done && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&fl->done_cv, &f->lock, &until);
        if (fl->done) result_copy(&fl->result, out);
        else out->status = bb_fail(&out->err, BB_TIMEOUT, NULL, "upstream did not answer within the call deadline");
        flight_unref(fl);
        pthread_mutex_unlock(&f->lock);
        return;
    }
    fl = calloc(1, sizeof *fl);
    if (fl) fl->key = malloc(strlen(key) + 1);
    if (!fl || !fl->key) {
        pthread_mutex_unlock(&f->lock);
        free(fl);
        fetch(u, ctx, out);   /* no memory to share: fetch alone */
        return;
    }
    memcpy(fl->key, key, strlen(key) + 1);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&fl->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    fl->refs = 1;
    fl->next = f->head;
    f->head = fl;
    pthread_mutex_unlock(&f->lock);

    fetch(u, ctx, &fl->result);

    pthread_mutex_lock(&f->lock);
    fl->done = true;
    unlink_flight(f, fl);
    pthread_cond_broadcast(&fl->done_cv);
    /* The leader hands its own result over instead of copying it. */
    *out = fl->result;
    fl->result.body = NULL;
    if (fl->refs > 1) result_copy(out, &fl->result);
    flight_unref(fl);
    pthread_mutex_unlock(&f->lock);
}
