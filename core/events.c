/*
 * core/events.c — a small fixed table of listeners under a read-write lock.
 */
#include "events.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LISTENERS 64

struct bb_events {
    pthread_rwlock_t lock;
    struct { int id; bb_event_fn fn; void *ud; } l[MAX_LISTENERS];
    int next_id;
};

bb_events *bb_events_new(void)
{
    bb_events *e = calloc(1, sizeof *e);
    if (e && pthread_rwlock_init(&e->lock, NULL) != 0) { free(e); return NULL; }
    return e;
}

void bb_events_free(bb_events *e)
{
    if (!e) return;
    pthread_rwlock_destroy(&e->lock);
    free(e);
}

int bb_events_subscribe(bb_events *e, bb_event_fn fn, void *ud)
{
    int id = 0;
    pthread_rwlock_wrlock(&e->lock);
    for (int i = 0; i < MAX_LISTENERS; i++) {
        if (e->l[i].id == 0) {
            id = e->l[i].id = ++e->next_id;
            e->l[i].fn = fn;
            e->l[i].ud = ud;
            break;
        }
    }
    pthread_rwlock_unlock(&e->lock);
    return id;
}

void bb_events_unsubscribe(bb_events *e, int id)
{
    pthread_rwlock_wrlock(&e->lock);
    for (int i = 0; i < MAX_LISTENERS; i++)
        if (e->l[i].id == id) memset(&e->l[i], 0, sizeof e->l[i]);
    pthread_rwlock_unlock(&e->lock);
}

void bb_events_publish(bb_events *e, const bb_post_event *ev)
{
    if (!e) return;
    pthread_rwlock_rdlock(&e->lock);
    for (int i = 0; i < MAX_LISTENERS; i++)
        if (e->l[i].id) e->l[i].fn(e->l[i].ud, ev);
    pthread_rwlock_unlock(&e->lock);
}

void bb_events_publish_post(bb_events *e, const bb_post *p)
{
    bb_post_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.team, sizeof ev.team, "%s", p->team);
    snprintf(ev.post_id, sizeof ev.post_id, "%s", p->id);
    snprintf(ev.thread_id, sizeof ev.thread_id, "%s", p->thread_id);
    snprintf(ev.parent_id, sizeof ev.parent_id, "%s", p->parent_id);
    snprintf(ev.author, sizeof ev.author, "%s", p->author ? p->author : "");
    bb_events_publish(e, &ev);
}
