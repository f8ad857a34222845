/*
 * plugins/upstream_http/uh.h — the pieces of the HTTP upstream, one concern
 * per file:
 *
 *   plugin.c   descriptor, config keys, create/destroy/health, the five ops
 *   call.c     one logical call: breaker gate, attempts, backoff, deadline
 *   client.c   one HTTP attempt on libcurl (pooled handles, shared conns)
 *   retry.c    what is retryable, backoff with full jitter, Retry-After
 *   breaker.c  the circuit breaker state machine
 *   cache.c    the bounded fallback cache of recent successful reads
 *   flight.c   single flight: identical concurrent reads share one request
 *   wire.c     DESIGN §5 JSON <-> bb_post, upstream errors -> bb_error
 *   metrics.c  the metric families and their pre-resolved series
 *
 * Everything lives in the instance (uh_inst): no globals, several
 * instances may coexist.
 */
#ifndef UH_H
#define UH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include <botboard/plugin.h>
#include <botboard/upstream.h>

/* ---- operations (metric label values, timeouts class) -------------------- */

typedef enum uh_op { UH_OP_LIST, UH_OP_GET, UH_OP_CREATE, UH_OP_DELETE, UH_OP_HEALTH, UH_N_OPS } uh_op;
extern const char *const uh_op_names[UH_N_OPS];

/* How one attempt ended, for metrics, breaker and retry decisions. */
typedef enum uh_outcome {
    UH_OUT_OK,            /* 2xx */
    UH_OUT_CLIENT_ERROR,  /* 4xx except 429: the upstream is healthy, we asked wrongly */
    UH_OUT_RATE_LIMITED,  /* 429 */
    UH_OUT_SERVER_ERROR,  /* 5xx */
    UH_OUT_TRANSPORT,     /* connect refused/reset, bad response */
    UH_OUT_TIMEOUT,       /* per-attempt timeout */
    UH_OUT_SHORT_CIRCUIT, /* breaker open: no request was sent */
    UH_N_OUTCOMES
} uh_outcome;
extern const char *const uh_outcome_names[UH_N_OUTCOMES];

/* ---- configuration ------------------------------------------------------ */

typedef struct uh_config {
    const char *base_url;          /* without trailing '/' (copied into base) */
    char       *base;
    char       *auth_header;       /* "Authorization: Bearer ..." / "x-api-key: ..."; NULL = none */
    bool        verify_tls;
    const char *ca_file;           /* "" = system store */
    int64_t     connect_timeout_ms, read_timeout_ms, write_timeout_ms, call_deadline_ms;
    int64_t     max_attempts, base_ms, max_ms, max_retry_after_ms;
    int64_t     failure_threshold, window_ms, min_calls, open_ms, half_open_max_calls;
    double      failure_rate;
    int64_t     cache_max_entries, cache_max_bytes, cache_ttl_s, cache_fresh_ms;
    bool        single_flight;
    int64_t     pool_size;         /* idle curl handles kept */
    int64_t     scan_limit;        /* posts scanned for distinct() and mentions_of */
    int64_t     max_response_bytes;
} uh_config;

/* ---- metrics ------------------------------------------------------------ */

typedef struct uh_metrics {
    bb_series *requests[UH_N_OPS][UH_N_OUTCOMES];
    bb_series *latency[UH_N_OPS];
    bb_series *retries[UH_N_OPS];
    bb_series *dedup[UH_N_OPS];
    bb_series *breaker_state;
    bb_series *transitions[3];      /* to closed, open, half_open */
    bb_series *cache_hit, *cache_miss, *cache_stale, *cache_store;
} uh_metrics;

struct uh_inst;
bool uh_metrics_init(struct uh_inst *u);

/* ---- circuit breaker ---------------------------------------------------- */

typedef enum uh_breaker_state { UH_CLOSED = 0, UH_OPEN = 1, UH_HALF_OPEN = 2 } uh_breaker_state;
extern const char *const uh_breaker_state_names[3];

typedef struct uh_breaker {
    pthread_mutex_t  lock;
    uh_breaker_state state;
    int64_t          consecutive_failures;
    int64_t          window_start_ms, window_calls, window_failures;
    int64_t          opened_ms;          /* when it last opened */
    int64_t          probes_in_flight;   /* HALF_OPEN */
    int64_t          transitions;
} uh_breaker;

void uh_breaker_init(uh_breaker *b);
void uh_breaker_destroy(uh_breaker *b);
/* May an attempt go out now?  On false, *retry_after_ms says when to try
 * again.  A true in HALF_OPEN takes a probe slot: *probe is set and the
 * outcome must be reported with uh_breaker_record(). */
bool uh_breaker_allow(struct uh_inst *u, int64_t *retry_after_ms, bool *probe);
/* failure = the upstream itself misbehaved (5xx, transport, timeout). */
void uh_breaker_record(struct uh_inst *u, bool probe, bool failure);
uh_breaker_state uh_breaker_snapshot(struct uh_inst *u, int64_t *open_left_ms);

/* ---- retry policy ------------------------------------------------------- */

/* Retry this outcome?  Never a client error; creates only with a key. */
bool    uh_retryable(uh_outcome out, long http_status);
/* Full jitter: uniform in [0, min(max_ms, base_ms * 2^retry_index)). */
int64_t uh_backoff_ms(const struct uh_inst *u, int retry_index);
/* Retry-After as seconds or an HTTP date; -1 if absent or unparsable. */
int64_t uh_parse_retry_after_ms(const char *value, int64_t wall_now_ms);

/* ---- one HTTP attempt --------------------------------------------------- */

typedef struct uh_request {
    uh_op       op;
    const char *method;           /* GET, POST, DELETE */
    const char *path;             /* after base_url, starts with '/', already escaped */
    const char *body;             /* NULL for none (JSON otherwise) */
    const char *idempotency_key;  /* NULL for none */
    const bb_call *call;          /* X-Request-ID, traceparent */
    int64_t     deadline_ms;      /* absolute on host now_ms() */
} uh_request;

typedef struct uh_response {
    long     status;              /* 0 = no HTTP answer */
    char    *body;                /* malloc'd, NUL-terminated; NULL if none */
    size_t   body_len;
    int64_t  retry_after_ms;      /* -1 = none */
    uh_outcome outcome;
    int      attempts;            /* set by uh_call: requests sent for this call */
    bool     ambiguous;           /* an earlier attempt may have reached the upstream */
    char     transport_error[128];
} uh_response;

void uh_response_clear(uh_response *r);
bool uh_client_init(struct uh_inst *u, bb_error *err);
void uh_client_destroy(struct uh_inst *u);
/* One attempt, bounded by min(op timeout, deadline).  Never retries. */
void uh_client_perform(struct uh_inst *u, const uh_request *rq, uh_response *out);

/* ---- one logical call (attempts + breaker + deadline) ------------------- */

/* Runs rq with retries within its deadline.  Returns BB_OK with out holding
 * a 2xx answer, or a mapped error in err (out may hold the last answer). */
bb_status uh_call(struct uh_inst *u, const uh_request *rq, uh_response *out, bb_error *err);
int64_t   uh_deadline(struct uh_inst *u, const bb_call *call);

/* ---- fallback cache ----------------------------------------------------- */

typedef struct uh_cache_entry uh_cache_entry;
typedef struct uh_cache {
    pthread_mutex_t  lock;
    uh_cache_entry **buckets;
    size_t           n_buckets, n_entries, n_bytes;   /* n_bytes: cached bodies */
    uh_cache_entry  *lru_head, *lru_tail;   /* head = most recently stored */
} uh_cache;

bool uh_cache_init(struct uh_inst *u);
void uh_cache_destroy(uh_cache *c);
void uh_cache_put(struct uh_inst *u, const char *key, const char *body, size_t len);
/* Copy of a cached body (malloc'd) younger than ttl and its age; NULL if none.
 * fresh_only: only entries younger than fallback_cache.fresh_ms and not
 * invalidated by a write. */
char *uh_cache_get(struct uh_inst *u, const char *key, bool fresh_only, int64_t *age_ms);
/* A write to team happened: its entries may no longer be served fresh. */
void uh_cache_invalidate_team(struct uh_inst *u, const char *team);

/* ---- single flight ------------------------------------------------------ */

typedef struct uh_flight uh_flight;
typedef struct uh_flights {
    pthread_mutex_t lock;
    uh_flight      *head;
} uh_flights;

/* The shared outcome of one upstream read. */
typedef struct uh_read_result {
    bb_status status;
    bb_error  err;
    char     *body;          /* malloc'd 2xx body */
    size_t    body_len;
} uh_read_result;

typedef void (*uh_fetch_fn)(struct uh_inst *u, void *ctx, uh_read_result *out);
void uh_flights_init(uh_flights *f);
void uh_flights_destroy(uh_flights *f);
/* Run fetch once for all concurrent callers with the same key; each caller
 * gets its own copy of the result.  Waiters give up at deadline_ms. */
void uh_flight_do(struct uh_inst *u, uh_op op, const char *key, int64_t deadline_ms,
                  uh_fetch_fn fetch, void *ctx, uh_read_result *out);

/* ---- wire format (DESIGN §5) -------------------------------------------- */

bb_status uh_decode_post(json_t *j, const char *team, bb_post *out, bb_error *err);
bb_status uh_decode_page(const char *body, size_t len, const char *team, bb_post_page *out, bb_error *err);
bb_status uh_decode_post_body(const char *body, size_t len, const char *team, bb_post *out, bb_error *err);
char     *uh_encode_new_post(const bb_new_post *in);
/* An upstream error answer -> bb_error (code, field, message). */
bb_status uh_map_http_error(long status, const char *body, size_t len, const char *what, bb_error *err);
/* Append a percent-escaped component to buf; false if it does not fit. */
bool      uh_escape(char *buf, size_t cap, size_t *len, const char *s);

/* ---- the instance -------------------------------------------------------- */

typedef struct uh_handle uh_handle;

typedef struct uh_inst {
    const bb_host_api *api;
    bb_host           *host;
    uh_config          cfg;
    uh_metrics         m;
    uh_breaker         breaker;
    uh_cache           cache;
    uh_flights         flights;
    /* client.c */
    bool               curl_inited;
    CURLSH            *share;
    pthread_mutex_t    share_locks[CURL_LOCK_DATA_LAST];
    bool               share_locks_ok;
    pthread_mutex_t    pool_lock;
    uh_handle         *pool;           /* idle easy handles */
    int64_t            pool_n;
    char               user_agent[64];
} uh_inst;

#endif
