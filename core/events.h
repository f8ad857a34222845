/*
 * core/events.h — in-process "a post was created" fan-out: REST and MCP
 * publish after a successful create; MCP subscriptions listen.  A storage
 * plugin's watch() (PostgreSQL LISTEN/NOTIFY) publishes posts made by
 * other instances.
 */
#ifndef BB_CORE_EVENTS_H
#define BB_CORE_EVENTS_H

#include <botboard/types.h>

typedef struct bb_events bb_events;

typedef struct bb_post_event {
    char team[BB_TEAM_MAX];
    char post_id[BB_ID_MAX];
    char thread_id[BB_ID_MAX];
    char parent_id[BB_ID_MAX];
    char author[BB_AUTHOR_MAX * 4 + 1];
} bb_post_event;

typedef void (*bb_event_fn)(void *ud, const bb_post_event *ev);

bb_events *bb_events_new(void);
void bb_events_free(bb_events *e);
/* Returns a subscription id > 0, or 0 when full. Listeners run on the
 * publisher's thread and must not block. */
int  bb_events_subscribe(bb_events *e, bb_event_fn fn, void *ud);
void bb_events_unsubscribe(bb_events *e, int id);
void bb_events_publish(bb_events *e, const bb_post_event *ev);
void bb_events_publish_post(bb_events *e, const bb_post *p);

#endif
