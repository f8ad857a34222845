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
    BB_APP_MIGRATE  = 1u << 3    /* apply pending migrations after creating storage */
};

/* Load config_file (plus its conf.d/), validate, load plugins, create the
 * instances asked for.  On failure returns NULL and err->msg holds one line
 * ("file:line:col: message" for config errors). */
bb_app *bb_app_open(const char *config_file, unsigned flags, bb_error *err);
void    bb_app_close(bb_app *app);

const bb_storage_ops  *bb_app_storage(bb_app *app, bb_storage **inst);
const bb_session_ops  *bb_app_session(bb_app *app, bb_session_store **inst);
const bb_upstream_ops *bb_app_upstream(bb_app *app, bb_upstream **inst);

#endif
