/*
 * tests/storage_contract.h — the storage contract suite's fixture.
 *
 * The suite (storage_contract.c) talks to a storage plugin only through its
 * bb_storage_ops table, so it runs unchanged against any backend.  Each test
 * gets a fresh, migrated store.  Which plugin, from where, configured how:
 *
 *   BB_CONTRACT_BACKEND       plugin name (storage_<name>.so); default per program
 *   BB_CONTRACT_PLUGIN_DIR    extra directory searched first for the plugin
 *   BB_CONTRACT_STORAGE_YAML  YAML text (or a file holding it) with the `storage:`
 *                             key; {{DIR}} becomes the test's fresh temp dir and
 *                             {{CONNINFO}} the backend's fresh database
 *
 * A program links storage_contract.c with one backend file providing the
 * hooks below (storage_contract_sqlite.c, storage_contract_postgres.c).
 */
#ifndef BB_TEST_STORAGE_CONTRACT_H
#define BB_TEST_STORAGE_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>

#include <botboard/storage.h>

#include "app.h"

/* ---- hooks: one backend file defines these ---- */
extern const char ct_default_backend[];        /* "sqlite" */
extern const char ct_default_storage_yaml[];   /* used when BB_CONTRACT_STORAGE_YAML is unset */
/* Prepare a fresh database for one test; fill conninfo (may be "").  false +
 * why when the backend cannot run here: the test is skipped with that reason. */
bool ct_backend_fresh(char *conninfo, size_t len, char *why, size_t why_len);

/* ---- the fixture ---- */
typedef struct ct {
    bb_app               *app;
    const bb_storage_ops *ops;
    bb_storage           *st;
    char                 *dir;        /* temp dir of this store */
    char                 *config;     /* path of its botboard.yaml */
    bb_call               call;
} ct;

/* Fresh store, migrated (skips the test when the backend cannot run). */
void ct_open(ct *t);
/* Same, with an extra YAML document merged over the config as conf.d/50-test.yaml
 * (e.g. "storage:\n  retry:\n    max_attempts: 3\n"); NULL for none. */
void ct_open_with(ct *t, const char *storage_extra);
/* Fresh dir, database and config, but nothing opened (then ct_reopen). */
void ct_prepare(ct *t, const char *storage_extra);
/* Reopen the same store (same config) after ct_close_app. */
bb_app *ct_reopen(ct *t, unsigned flags, bb_error *err);
void ct_close_app(ct *t);
void ct_close(ct *t);

/* Helpers shared with backend-specific tests. */
void ct_team(ct *t, const char *name);
/* Create a post; tags NULL-terminated (may be NULL); parent NULL or ""; id out. */
bb_status ct_post(ct *t, const char *team, const char *author, const char *content, const char *const *tags,
                  const char *parent, int64_t created_ms, char id_out[BB_ID_MAX], bb_error *err);
/* Count metric lines of the registry containing every given fragment, summing values. */
double ct_metric_sum(const char *name, const char *frag1, const char *frag2);

#endif
