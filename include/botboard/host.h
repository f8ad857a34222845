/*
 * botboard/host.h — what the host offers a plugin.
 *
 * A plugin links nothing from the botboard binary: everything it needs from the
 * host comes through the bb_host_api table handed to create().  That keeps
 * plugins loadable with RTLD_LOCAL, testable against another host, and lets
 * several instances of one plugin live in one process (no globals).
 *
 * Threads: every function in bb_host_api may be called from any thread at any
 * time after create() has been entered and until destroy() returns.
 */
#ifndef BOTBOARD_HOST_H
#define BOTBOARD_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <botboard/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bb_host   bb_host;    /* opaque: one per plugin instance */
typedef struct bb_cfg    bb_cfg;     /* opaque: a node of the effective config tree */
typedef struct bb_metric bb_metric;  /* opaque: a metric family */
typedef struct bb_series bb_series;  /* opaque: one labelled series of a family */
struct bb_storage;                   /* see storage.h */
struct bb_storage_ops;

/* ---- per-call context ---------------------------------------------------- */

/* Passed to every operation: who asked (for logs) and until when. */
typedef struct bb_call {
    const char *request_id;   /* X-Request-ID of the HTTP/MCP request; may be NULL */
    const char *traceparent;  /* W3C traceparent to forward upstream; may be NULL */
    int64_t     deadline_ms;  /* absolute, on host->now_ms()'s monotonic clock; 0 = none */
} bb_call;

/* ---- configuration keys -------------------------------------------------- */

typedef enum bb_cfg_type {
    BB_CFG_STRING,
    BB_CFG_INT,        /* int64 within [min, max] */
    BB_CFG_BOOL,
    BB_CFG_DOUBLE,     /* within [min, max] */
    BB_CFG_ENUM,       /* one of enum_values, '|'-separated */
    BB_CFG_DURATION,   /* "250ms", "30s", "5m", "2h" or a bare integer of milliseconds; min/max in ms */
    BB_CFG_SIZE,       /* "512", "64k", "1MiB", "2MB"; min/max in bytes */
    BB_CFG_LIST,       /* sequence of strings */
    BB_CFG_MAP         /* free-form mapping (validated by the owner) */
} bb_cfg_type;

enum {
    BB_CFG_RELOADABLE = 1u << 0,  /* SIGHUP swaps it in without a restart */
    BB_CFG_SECRET     = 1u << 1,  /* masked by check-config and in every log line */
    BB_CFG_REQUIRED   = 1u << 2,  /* no default: must be given */
    BB_CFG_PATH       = 1u << 3   /* a file path: relative values are resolved against the
                                   * folder of the config file that set them */
};

/*
 * One row of a config key table.  The core keeps one such table for its own
 * keys and each plugin descriptor carries one for its subtree; together they
 * drive validation, defaults, check-config output and botboard.yaml(5).
 */
typedef struct bb_config_key {
    const char  *path;         /* dotted, relative to the table's root, e.g. "pool.size" */
    bb_cfg_type  type;
    const char  *def;          /* default as YAML scalar text; NULL = none */
    int64_t      min, max;     /* INT/DURATION/SIZE/DOUBLE bounds (ignored if min > max) */
    const char  *enum_values;  /* ENUM: "a|b|c" */
    unsigned     flags;
    const char  *doc;          /* one line for the man page and --help */
} bb_config_key;

/* ---- logging and metrics -------------------------------------------------- */

typedef enum bb_log_level {
    BB_LOG_DEBUG = 0,
    BB_LOG_INFO,
    BB_LOG_WARN,
    BB_LOG_ERROR
} bb_log_level;

typedef enum bb_metric_type {
    BB_METRIC_COUNTER,
    BB_METRIC_GAUGE,
    BB_METRIC_HISTOGRAM    /* observations in seconds, fixed latency buckets */
} bb_metric_type;

#define BB_METRIC_MAX_LABELS 3

/* ---- the table ------------------------------------------------------------ */

typedef struct bb_host_api {
    uint32_t size;   /* sizeof(bb_host_api) of the host; check before using newer members */

    /* Logging.  The host prefixes the plugin instance name, adds the request id
     * of `call` (may be NULL), masks secrets, and drops lines below the level. */
    void (*log)(bb_host *h, bb_log_level level, const bb_call *call, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 4, 5)))
#endif
        ;
    bool (*log_enabled)(bb_host *h, bb_log_level level);

    /* Metrics.  Names are prefixed with "botboard_".  label_names is a
     * NULL-terminated list of at most BB_METRIC_MAX_LABELS names (or NULL).
     * Registering the same name twice returns the same family. */
    bb_metric *(*metric)(bb_host *h, bb_metric_type type, const char *name,
                         const char *help, const char *const *label_names);
    /* A series is stable for the life of the host: look it up once, then
     * update it lock-free from any thread. */
    bb_series *(*series)(bb_metric *m, const char *const *label_values);
    void (*add)(bb_series *s, double v);       /* counter += v / gauge += v */
    void (*set)(bb_series *s, double v);       /* gauge = v */
    void (*observe)(bb_series *s, double v);   /* histogram, seconds */

    /* Configuration of this plugin's kind (e.g. the `storage:` node): typed
     * getters by dotted path relative to `node`.  Values have already been
     * validated against the key tables and defaults filled in, so getters
     * fail only for a path no table declares (a plugin bug: BB_INTERNAL). */
    bb_status (*cfg_string)(const bb_cfg *node, const char *path, const char **out, bb_error *err);
    bb_status (*cfg_int)(const bb_cfg *node, const char *path, int64_t *out, bb_error *err);
    bb_status (*cfg_bool)(const bb_cfg *node, const char *path, bool *out, bb_error *err);
    bb_status (*cfg_double)(const bb_cfg *node, const char *path, double *out, bb_error *err);
    /* LIST: count, then items by index (strings stay valid while the config lives). */
    bb_status (*cfg_list)(const bb_cfg *node, const char *path, size_t *count,
                          const char *const **items, bb_error *err);
    /* Semantic errors a plugin finds in a value it was given ("conninfo has no
     * dbname") are reported with the YAML position: fills err with
     * "file:line:col: <message>" and returns BB_INVALID. */
    bb_status (*cfg_fail)(const bb_cfg *node, const char *path, bb_error *err, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 4, 5)))
#endif
        ;

    /* Clocks and randomness. */
    int64_t (*now_ms)(void);          /* monotonic, for deadlines and durations */
    int64_t (*wall_ms)(void);         /* unix epoch milliseconds */
    void    (*random)(void *buf, size_t len);    /* CSPRNG */
    uint32_t (*random_uniform)(uint32_t upper);  /* CSPRNG, [0, upper) */

    /* The process's storage instance, for plugins that sit on top of it
     * (upstream_local).  NULL when none is configured. */
    const struct bb_storage_ops *(*storage)(bb_host *h, struct bb_storage **inst);

    /* Register a secret value so every log line masks it (e.g. a password
     * parsed out of a conninfo string). */
    void (*add_secret)(bb_host *h, const char *secret);

    /* A fresh post id: a ULID (26 URL-safe characters, time-ordered). */
    void (*new_id)(char *out, size_t out_len);
} bb_host_api;

#ifdef __cplusplus
}
#endif
#endif /* BOTBOARD_HOST_H */
