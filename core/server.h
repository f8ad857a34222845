/*
 * core/server.h — the running server: what every request handler can reach.
 *
 * Request flow: http_server.c (libmicrohttpd glue: body upload, limits,
 * request id) → router.c (route table: method + template → handler, rate
 * class, auth) → auth.c / ratelimit.c → the handler (rest_*.c, mcp_*.c,
 * health.c) → reply.c (JSON bodies, the error envelope, common headers).
 */
#ifndef BB_CORE_SERVER_H
#define BB_CORE_SERVER_H

#include <microhttpd.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "app.h"

typedef struct bb_server bb_server;
typedef struct bb_req    bb_req;
typedef struct bb_route  bb_route;

/* Hot-path settings, rebuilt from config at start and on SIGHUP and
 * swapped in atomically; old snapshots stay valid until exit. */
typedef struct bb_rate_class_cfg { int64_t per_minute, burst; } bb_rate_class_cfg;

typedef enum bb_rate_class { BB_RATE_NONE = -1, BB_RATE_READ = 0, BB_RATE_WRITE, BB_RATE_DELETE, BB_RATE_N } bb_rate_class;

typedef struct bb_settings {
    int64_t max_body;
    int64_t request_timeout_ms;
    bb_rate_class_cfg rate[BB_RATE_N];
    int64_t auth_cache_ttl_ms;
    int64_t idempotency_ttl_s;
    int64_t heartbeat_s;
    bool    access_log;           /* logging.access */
    /* The MCP endpoint's checks, looked up once per snapshot instead of on
     * every request (the strings belong to root): mcp.allowed_hosts,
     * mcp.allowed_origins (n = 0 when unset: nothing is allowed), mcp.auth. */
    const char *const *mcp_hosts;
    size_t  n_mcp_hosts;
    const char *const *mcp_origins;
    size_t  n_mcp_origins;
    bool    mcp_auth_none;
    const bb_cfg *root;           /* the config this snapshot came from */
    /* The snapshot this one replaced: a request in flight may still read
     * it, so retired snapshots are kept (one per reload) and freed at exit. */
    struct bb_settings *retired;
} bb_settings;

/* The authenticated caller of a request. */
typedef struct bb_principal {
    bool    ok;
    char    team[BB_TEAM_MAX];
    char    key_id[BB_ID_MAX];    /* rate-limit identity */
} bb_principal;

struct bb_auth_cache;
struct bb_ratelimit;
struct bb_sessions;
struct bb_mcp;
struct bb_events;

struct bb_server {
    bb_app                   *app;
    struct MHD_Daemon        *daemon;
    _Atomic(const bb_settings *) settings;
    const bb_storage_ops     *storage;
    bb_storage               *storage_inst;
    struct bb_auth_cache     *auth;
    struct bb_ratelimit      *limiter;
    struct bb_sessions       *sessions;
    struct bb_mcp            *mcp;
    struct bb_events         *events;
    /* What the storage's watch thread delivers into.  That thread runs
     * until the plugin is destroyed (bb_app_close), after bb_service_fini
     * freed events: fini clears watch_events under watch_mu first. */
    pthread_mutex_t           watch_mu;
    struct bb_events         *watch_events;
    atomic_int                in_flight;
    atomic_bool               stopping;
    int64_t                   started_wall_ms;
    char                      mcp_path[128];
    char                     *tls_cert, *tls_key;   /* PEM kept alive for MHD */
};

static inline const bb_settings *bb_settings_now(bb_server *srv)
{
    return atomic_load_explicit(&srv->settings, memory_order_acquire);
}

/* Build a settings snapshot from a validated config root. */
bb_settings *bb_settings_build(const bb_cfg *root);

/* One HTTP request, alive from the first access-handler call to
 * MHD's completion callback. */
#define BB_MAX_PATH_PARAMS 4
#define BB_RID_MAX 129

struct bb_req {
    bb_server               *srv;
    struct MHD_Connection   *conn;
    const char              *method;
    const char              *path;            /* as sent (still percent-encoded), without the query string */
    char                    *raw_path;        /* owns path (MHD only hands out a decoded copy) */
    bool                     started;         /* the first access-handler call happened */
    bool                     access_log;      /* logging.access when it started (a reload may land before it ends) */
    const bb_route          *route;
    char                    *params[BB_MAX_PATH_PARAMS];   /* decoded {template} values */
    char                    *body;            /* NUL-terminated */
    size_t                   body_len, body_cap;
    bool                     body_too_large;
    bool                     dispatched;
    char                     request_id[BB_RID_MAX];
    char                     traceparent[64];
    int64_t                  start_ms;        /* monotonic */
    int64_t                  deadline_ms;     /* monotonic */
    bb_principal             who;
    /* rate-limit headers for every response, when a limiter ran */
    bool                     has_rate;
    int64_t                  rate_limit, rate_remaining, rate_reset_s;
    unsigned                 status;          /* what was queued */
    /* handlers that stream (SSE) keep their state here and free it in cleanup */
    void                    *stream;
    void                   (*stream_cleanup)(bb_req *req);
};

static inline bb_call bb_req_call(const bb_req *req)
{
    bb_call c = { req->request_id, req->traceparent[0] ? req->traceparent : NULL, req->deadline_ms };
    return c;
}

/* Query parameter or header lookup (NULL if absent). */
const char *bb_req_query(bb_req *req, const char *name);
const char *bb_req_header(bb_req *req, const char *name);

/* Start/stop the listener. */
bool bb_http_start(bb_server *srv, char *why, size_t why_len);
/* Stop accepting, wait up to grace_ms for in-flight requests, stop. */
void bb_http_stop(bb_server *srv, int64_t grace_ms);

#endif
