/*
 * core/mcp_stream.c — the server→client side of Streamable HTTP: one GET
 * stream per session, event ids, a bounded replay buffer for Last-Event-ID,
 * heartbeats, and delivery of notifications/resources/updated to sessions
 * that subscribed to a URI a new post concerns.
 *
 * Why it looks like this (PERF-NOTES, "Streams and blocking work"): a
 * content reader that returns 0 makes MHD spin, so a reader with nothing to
 * send suspends its connection, and whoever queues bytes (the events
 * listener on the publisher's thread, the heartbeat ticker) resumes it.
 * Suspended connections never time out and never notice a dead peer, so the
 * ticker writes a comment every mcp.heartbeat_s: a failed write ends the
 * request and its cleanup detaches the stream.
 *
 * State per session lives here, in memory, keyed by the plaintext session
 * id: its subscriptions (a copy of the session record's, refreshed whenever
 * a request changes them), the ring of recent GET-stream events, and the
 * live stream if one is open.  A state without a stream outlives the
 * connection (so a resume can replay what was missed) until the session's
 * idle timeout.
 *
 * Event ids: "g-<epoch>-<seq>" on the GET stream, "p-<epoch>-<n>-<i>" on
 * a POST's SSE reply; epoch is this process's start (ms), so ids stay
 * unique per session across restarts and a stale Last-Event-ID from another
 * process simply replays nothing.
 *
 * One mutex guards everything here: the traffic is streams and
 * notifications, not the request hot path.
 */
#include "mcp_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host.h"
#include "log.h"
#include "reply.h"

#define BUCKETS 256
#define STATES_MAX 100000               /* bound on sessions with stream state in this process */
#define STREAM_PENDING_MAX (4u << 20)   /* bytes queued to one slow client before it is dropped */
#define READER_BLOCK 16384

typedef struct sse_stream {
    struct bb_mcp         *mcp;
    struct MHD_Connection *conn;       /* NULL once the request completed */
    char                  *buf;        /* bytes not yet handed to MHD */
    size_t                 len, off, cap;
    bool                   suspended;  /* the reader suspended the connection */
    bool                   closed;     /* end the response once buf is drained */
    int                    refs;       /* the session state + the MHD response */
    int64_t                last_queued_ms;
} sse_stream;

typedef struct ring_entry { uint64_t seq; char *frame; } ring_entry;

typedef struct sess_state {
    char               id[BB_SESSION_ID_MAX];
    char               team[BB_TEAM_MAX];
    char              *subs[BB_SESSION_SUBS_MAX];
    size_t             n_subs;
    ring_entry        *ring;           /* ring_cap entries, oldest at ring_head */
    size_t             ring_head, ring_n;
    uint64_t           seq;            /* last GET-stream event id issued */
    sse_stream        *live;
    int64_t            touched_ms;
    struct sess_state *next;
} sess_state;

struct bb_mcp {
    bb_server       *srv;
    pthread_mutex_t  lock;
    sess_state      *buckets[BUCKETS];
    size_t           n_states;
    size_t           ring_cap;
    int64_t          idle_ms;
    int64_t          epoch;
    uint64_t         post_streams;
    int              listener;
    bool             stopping;
    pthread_cond_t   tick;
    pthread_t        ticker;
    bool             ticker_started;
};

/* ---- streams ---- */

static void stream_unref_locked(sse_stream *s)
{
    if (--s->refs > 0) return;
    free(s->buf);
    free(s);
}

/* Queue bytes and wake the connection.  Called with m->lock held. */
static bool stream_push_locked(sse_stream *s, const char *bytes, size_t n)
{
    if (s->closed || !s->conn) return false;
    if (s->len - s->off + n > STREAM_PENDING_MAX) {
        bb_warn("mcp", "SSE client is not reading (%zu bytes queued): closing its stream", s->len - s->off);
        s->closed = true;
    } else {
        if (s->off > 0 && s->off == s->len) s->off = s->len = 0;
        if (s->len + n > s->cap) {
            size_t cap = s->cap ? s->cap : 1024;
            char *p;
            while (cap < s->len + n) cap *= 2;
            if (!(p = realloc(s->buf, cap))) return false;
            s->buf = p;
            s->cap = cap;
        }
        memcpy(s->buf + s->len, bytes, n);
        s->len += n;
        s->last_queued_ms = bb_now_ms();
    }
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
    return true;
}

static void stream_close_locked(sse_stream *s)
{
    s->closed = true;
    if (s->suspended && s->conn) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    sse_stream *s = cls;
    ssize_t n;
    (void)pos;
    pthread_mutex_lock(&s->mcp->lock);
    if (s->len > s->off) {
        size_t k = s->len - s->off < max ? s->len - s->off : max;
        memcpy(buf, s->buf + s->off, k);
        s->off += k;
        n = (ssize_t)k;
    } else if (s->closed || !s->conn) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* Nothing to send: sleep until a producer resumes us (no busy loop). */
        s->suspended = true;
        MHD_suspend_connection(s->conn);
        n = 0;
    }
    pthread_mutex_unlock(&s->mcp->lock);
    return n;
}

static void stream_response_free(void *cls)
{
    sse_stream *s = cls;
    struct bb_mcp *m = s->mcp;
    pthread_mutex_lock(&m->lock);
    stream_unref_locked(s);
    pthread_mutex_unlock(&m->lock);
}

/* ---- session states ---- */

static size_t bucket_of(const char *id)
{
    uint32_t h = 2166136261u;   /* FNV-1a: ids are random already, this only spreads them */
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 16777619u;
    return h % BUCKETS;
}

static sess_state *state_find_locked(struct bb_mcp *m, const char *id)
{
    for (sess_state *st = m->buckets[bucket_of(id)]; st; st = st->next)
        if (strcmp(st->id, id) == 0) return st;
    return NULL;
}

static void state_set_subs(sess_state *st, const bb_session *s)
{
    size_t n = 0;
    for (size_t i = 0; i < st->n_subs; i++) free(st->subs[i]);
    for (size_t i = 0; i < s->n_subs && i < BB_SESSION_SUBS_MAX; i++)
        if (s->subs[i] && (st->subs[n] = strdup(s->subs[i]))) n++;
    st->n_subs = n;
}

static void state_free(sess_state *st)
{
    for (size_t i = 0; i < st->n_subs; i++) free(st->subs[i]);
    if (st->ring)
        for (size_t i = 0; i < st->ring_n; i++) free(st->ring[i].frame);
    free(st->ring);
    free(st);
}

/* Unlink and free; closes a live stream. */
static void state_drop_locked(struct bb_mcp *m, sess_state *st)
{
    sess_state **pp = &m->buckets[bucket_of(st->id)];
    while (*pp && *pp != st) pp = &(*pp)->next;
    if (*pp) *pp = st->next;
    if (st->live) {
        stream_close_locked(st->live);
        stream_unref_locked(st->live);
        st->live = NULL;
    }
    m->n_states--;
    state_free(st);
}

static sess_state *state_get_locked(struct bb_mcp *m, const bb_session *s)
{
    sess_state *st = state_find_locked(m, s->id);
    size_t b;
    if (st) return st;
    if (m->n_states >= STATES_MAX) {
        bb_warn("mcp", "%d sessions hold stream state; not keeping more", STATES_MAX);
        return NULL;
    }
    if (!(st = calloc(1, sizeof *st)) || !(st->ring = calloc(m->ring_cap, sizeof *st->ring))) {
        free(st);
        return NULL;
    }
    snprintf(st->id, sizeof st->id, "%s", s->id);
    snprintf(st->team, sizeof st->team, "%s", s->team);
    state_set_subs(st, s);
    st->touched_ms = bb_now_ms();
    b = bucket_of(st->id);
    st->next = m->buckets[b];
    m->buckets[b] = st;
    m->n_states++;
    return st;
}

/* Record a GET-stream message in the ring and send it if a stream is live. */
static void state_emit_locked(struct bb_mcp *m, sess_state *st, const char *json)
{
    size_t need = strlen(json) + 96;
    char *frame = malloc(need);
    size_t slot;
    if (!frame) return;
    st->seq++;
    snprintf(frame, need, "id: g-%" PRId64 "-%" PRIu64 "\nevent: message\ndata: %s\n\n", m->epoch, st->seq, json);
    if (st->ring_n < m->ring_cap) {
        slot = (st->ring_head + st->ring_n) % m->ring_cap;
        st->ring_n++;
    } else {
        slot = st->ring_head;
        free(st->ring[slot].frame);
        st->ring_head = (st->ring_head + 1) % m->ring_cap;
    }
    st->ring[slot].seq = st->seq;
    st->ring[slot].frame = frame;
    if (st->live) stream_push_locked(st->live, frame, strlen(frame));
}

/* ---- events: a post was created somewhere ---- */

static void on_post(void *ud, const bb_post_event *ev)
{
    struct bb_mcp *m = ud;
    pthread_mutex_lock(&m->lock);
    for (size_t b = 0; b < BUCKETS; b++) {
        for (sess_state *st = m->buckets[b]; st; st = st->next) {
            if (strcmp(st->team, ev->team) != 0) continue;
            for (size_t i = 0; i < st->n_subs; i++) {
                json_t *n;
                char *text;
                if (!bb_mcp_uri_matches(st->subs[i], st->team, ev)) continue;
                n = json_pack("{s:s, s:s, s:{s:s}}", "jsonrpc", "2.0", "method", "notifications/resources/updated",
                              "params", "uri", st->subs[i]);
                text = n ? json_dumps(n, JSON_COMPACT) : NULL;
                json_decref(n);
                if (text) state_emit_locked(m, st, text);
                free(text);
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
}

/* ---- the ticker: heartbeats and expiry ---- */

static void *ticker_main(void *arg)
{
    struct bb_mcp *m = arg;
    static const char beat[] = ": keep-alive\n\n";
    pthread_mutex_lock(&m->lock);
    while (!m->stopping) {
        struct timespec until;
        int64_t now, hb_ms = bb_settings_now(m->srv)->heartbeat_s * 1000;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&m->tick, &m->lock, &until);
        if (m->stopping) break;
        now = bb_now_ms();
        for (size_t b = 0; b < BUCKETS; b++) {
            sess_state *st = m->buckets[b], *next;
            for (; st; st = next) {
                next = st->next;
                if (st->live) {
                    st->touched_ms = now;
                    if (st->live->closed && !st->live->conn) {
                        stream_unref_locked(st->live);
                        st->live = NULL;
                    } else if (now - st->live->last_queued_ms >= hb_ms) {
                        stream_push_locked(st->live, beat, sizeof beat - 1);
                    }
                } else if (now - st->touched_ms > m->idle_ms) {
                    state_drop_locked(m, st);
                }
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* ---- public ---- */

struct bb_mcp *bb_mcp_new(bb_server *srv, char *why, size_t why_len)
{
    const bb_cfg *root = bb_config_root(bb_app_config(srv->app));
    struct bb_mcp *m = calloc(1, sizeof *m);
    pthread_condattr_t ca;
    if (!m) { snprintf(why, why_len, "out of memory"); return NULL; }
    m->srv = srv;
    m->ring_cap = (size_t)bb_cfg_i64(root, "mcp.stream_buffer", 256);
    if (m->ring_cap < 1) m->ring_cap = 1;
    m->idle_ms = bb_cfg_i64(root, "session.idle_timeout_s", 14400) * 1000;
    m->epoch = bb_wall_ms();
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_cond_init(&m->tick, &ca);
    pthread_condattr_destroy(&ca);
    if (srv->events && !(m->listener = bb_events_subscribe(srv->events, on_post, m))) {
        snprintf(why, why_len, "no room for the MCP events listener");
        bb_mcp_free(m);
        return NULL;
    }
    if (pthread_create(&m->ticker, NULL, ticker_main, m) != 0) {
        snprintf(why, why_len, "cannot start the MCP stream ticker: %s", strerror(errno));
        bb_mcp_free(m);
        return NULL;
    }
    m->ticker_started = true;
    return m;
}

void bb_mcp_shutdown(struct bb_mcp *m)
{
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    for (size_t b = 0; b < BUCKETS; b++)
        for (sess_state *st = m->buckets[b]; st; st = st->next)
            if (st->live) stream_close_locked(st->live);
    pthread_cond_broadcast(&m->tick);
    pthread_mutex_unlock(&m->lock);
}

void bb_mcp_free(struct bb_mcp *m)
{
    if (!m) return;
    bb_mcp_shutdown(m);
    if (m->ticker_started) pthread_join(m->ticker, NULL);
    if (m->listener) bb_events_unsubscribe(m->srv->events, m->listener);
    pthread_mutex_lock(&m->lock);
    for (size_t b = 0; b < BUCKETS; b++)
        while (m->buckets[b]) state_drop_locked(m, m->buckets[b]);
    pthread_mutex_unlock(&m->lock);
    pthread_cond_destroy(&m->tick);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void bb_mcp_stream_sync(struct bb_mcp *m, const bb_session *s)
{
    sess_state *st;
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    st = state_find_locked(m, s->id);
    if (!st && s->n_subs > 0) st = state_get_locked(m, s);
    if (st) {
        state_set_subs(st, s);
        st->touched_ms = bb_now_ms();
    }
    pthread_mutex_unlock(&m->lock);
}

void bb_mcp_stream_forget(struct bb_mcp *m, const char *session_id)
{
    sess_state *st;
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    if ((st = state_find_locked(m, session_id))) state_drop_locked(m, st);
    pthread_mutex_unlock(&m->lock);
}

void bb_mcp_post_stream_id(struct bb_mcp *m, char *out, size_t len)
{
    uint64_t n;
    pthread_mutex_lock(&m->lock);
    n = ++m->post_streams;
    pthread_mutex_unlock(&m->lock);
    snprintf(out, len, "p-%" PRId64 "-%" PRIu64, m->epoch, n);
}

/* Request cleanup (MHD is done with the connection): detach the stream. */
static void stream_request_done(bb_req *req)
{
    sse_stream *s = req->stream;
    struct bb_mcp *m;
    if (!s) return;
    m = s->mcp;
    pthread_mutex_lock(&m->lock);
    s->conn = NULL;
    s->closed = true;
    stream_unref_locked(s);   /* the request's hold; the state's goes at the next tick or drop */
    pthread_mutex_unlock(&m->lock);
    req->stream = NULL;
}

static bool parse_get_event_id(const char *id, int64_t *epoch, uint64_t *seq)
{
    long long e;
    unsigned long long q;
    int used = 0;
    if (!id || sscanf(id, "g-%lld-%llu%n", &e, &q, &used) != 2 || id[used] != '\0') return false;
    *epoch = (int64_t)e;
    *seq = (uint64_t)q;
    return true;
}

enum MHD_Result bb_mcp_stream_open(struct bb_mcp *m, bb_req *req, const bb_session *s, bb_mcp_version v,
                                   const char *last_event_id)
{
    struct MHD_Response *r;
    sse_stream *stream = calloc(1, sizeof *stream);
    sess_state *st;
    char head[160];
    int64_t epoch;
    uint64_t after;
    size_t replayed = 0;

    if (!stream) return MHD_NO;
    stream->mcp = m;
    stream->conn = req->conn;
    stream->refs = 3;   /* the state, the MHD response, the request */
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, READER_BLOCK, stream_read, stream, stream_response_free);
    if (!r) { free(stream); return MHD_NO; }

    pthread_mutex_lock(&m->lock);
    st = m->stopping ? NULL : state_get_locked(m, s);
    if (!st) {
        pthread_mutex_unlock(&m->lock);
        stream->refs = 1;          /* only the response holds it: destroying it frees the stream */
        MHD_destroy_response(r);
        return bb_reply_error(req, 503, "UNAVAILABLE", "cannot open a stream now", NULL);
    }
    /* A GET is a (re)start of the session's one stream: a previous one ends. */
    if (st->live) {
        stream_close_locked(st->live);
        stream_unref_locked(st->live);
    }
    st->live = stream;
    st->touched_ms = bb_now_ms();
    state_set_subs(st, s);
    /* The first bytes flush the headers; 2025-11-25 wants a priming event
     * (an id and empty data) so the client can resume from here. */
    if (v >= BB_MCP_2025_11_25) {
        st->seq++;
        snprintf(head, sizeof head, "id: g-%" PRId64 "-%" PRIu64 "\ndata: \n\n", m->epoch, st->seq);
    } else {
        snprintf(head, sizeof head, ": botboard stream\n\n");
    }
    stream_push_locked(stream, head, strlen(head));
    if (parse_get_event_id(last_event_id, &epoch, &after) && epoch == m->epoch) {
        for (size_t i = 0; i < st->ring_n; i++) {
            ring_entry *e = &st->ring[(st->ring_head + i) % m->ring_cap];
            if (e->seq > after) {
                stream_push_locked(stream, e->frame, strlen(e->frame));
                replayed++;
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (last_event_id) bb_debug("mcp", "stream resumed after %s: %zu events replayed", last_event_id, replayed);

    req->stream = stream;
    req->stream_cleanup = stream_request_done;
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    MHD_add_response_header(r, "Mcp-Session-Id", s->id);
    return bb_reply_queue(req, 200, r);
}
