/*
 * core/app.h — the host as a library: load a config, load and create the
 * configured plugins.  `botboard serve`, the CLI commands and the test
 * suites (contract suites, integration helpers) all start from here.
 */
#ifndef BB_CORE_APP_H
#define BB_CORE_APP_H

#include <botboard/storage.h>
#include <botboard/session.h>
#include <botboard/upstream.h>

typedef struct bb_app bb_app;

enum {
    BB_APP_STORAGE  = 1u << 0,   /* create the storage instance */
    BB_APP_SESSION  = 1u << 1,   /* create the session instance */
    BB_APP_UPSTREAM = 1u << 2,   /* create the upstream instance (needs storage for `local`) */
    BB_APP_ALL      = 7u,
    BB_APP_MIGRATE  = 1u << 3    /* after creating storage: apply pending migrations when
                                  * storage.auto_migrate, else refuse a schema that is behind */
};

/* Load config_file (plus its conf.d/), validate, load plugins, create the
 * instances asked for.  On failure returns NULL and err->msg holds one line
 * ("file:line:col: message" for config errors). */
bb_app *bb_app_open(const char *config_file, unsigned flags, bb_error *err);
void    bb_app_close(bb_app *app);

/* Storage as everyone should use it: through the post-page cache when
 * cache.ttl_ms > 0 (core/storage_cache.h), else the plugin's own table. */
const bb_storage_ops  *bb_app_storage(bb_app *app, bb_storage **inst);
const bb_session_ops  *bb_app_session(bb_app *app, bb_session_store **inst);
const bb_upstream_ops *bb_app_upstream(bb_app *app, bb_upstream **inst);


/* ---- for the core itself ---- */
#include "config.h"
#include "loader.h"

enum { BB_APP_NO_CREATE = 1u << 4 };   /* load + validate plugins, create nothing (check-config) */

const bb_config *bb_app_config(const bb_app *app);
/* The storage plugin's own table and instance, behind the cache's back
 * (tests that play "another process"; nothing on a request path). */
const bb_storage_ops *bb_app_storage_plugin(bb_app *app, bb_storage **inst);
/* The cache in front of storage, NULL when cache.ttl_ms is 0. */
struct bb_storage_cache *bb_app_storage_cache(bb_app *app);
/* The loaded plugin of a kind (NULL if that kind was not asked for). */
const bb_plugin *bb_app_plugin(const bb_app *app, bb_plugin_kind kind);
/* Health of one kind's instance into detail; BB_OK when healthy. */
bb_status bb_app_health(bb_app *app, bb_plugin_kind kind, int64_t timeout_ms, char *detail, size_t len,
                        bb_error *err);
/* Replace the config with a newly loaded one (SIGHUP); the old one stays
 * alive until bb_app_close so readers never see freed memory. */
void bb_app_swap_config(bb_app *app, bb_config *fresh);

#endif
