/*
 * tests/pg_fixture.h — shared set-up of the PostgreSQL suites (test_pg_*.c):
 * a real server from the harness, a config naming it, the storage plugin
 * opened through the core exactly as `botboard serve` opens it, and a
 * side connection of the test's own for looking at the server directly
 * (pg_stat_activity, locks, schema).
 */
#ifndef BB_TESTS_PG_FIXTURE_H
#define BB_TESTS_PG_FIXTURE_H

#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "bbtest.h"
#include "log.h"
#include "metrics.h"

typedef struct pgfx {
    bbt_pg                pg;
    char                 *dir;
    char                 *cfg_path;
    bb_app               *app;
    const bb_storage_ops *ops;
    bb_storage           *st;
} pgfx;

/* Start PostgreSQL or skip the test with the reason. */
static inline void pgfx_start_pg(pgfx *f)
{
    char why[4096];
    memset(f, 0, sizeof *f);
    if (!bbt_pg_start(&f->pg, why, sizeof why)) cr_skip_test("PostgreSQL would not start: %s", why);
    f->dir = bbt_tempdir("pgfx");
    cr_assert_not_null(f->dir);
}

/* Write a config with the given conninfo and extra YAML under
 * storage.postgres (already indented by 4), and open the storage plugin. */
static inline char *pgfx_write_config(pgfx *f, const char *name, const char *conninfo, const char *pg_extra,
                                      const char *storage_extra)
{
    char yaml[4096];
    char *path;
    snprintf(yaml, sizeof yaml,
             "storage:\n  backend: postgres\n%s  postgres:\n    conninfo: \"%s\"\n%s"
             "logging:\n  level: debug\n  format: json\n",
             storage_extra ? storage_extra : "", conninfo, pg_extra ? pg_extra : "");
    path = bbt_write_file(f->dir, name, yaml);
    cr_assert_not_null(path);
    return path;
}

static inline bb_app *pgfx_open_with(pgfx *f, const char *cfg_path, bool migrate, bb_storage **st,
                                     const bb_storage_ops **ops)
{
    bb_error err;
    bb_app *app;
    bb_error_clear(&err);
    app = bb_app_open(cfg_path, BB_APP_STORAGE | (migrate ? BB_APP_MIGRATE : 0), &err);
    cr_assert_not_null(app, "bb_app_open: %s", err.msg);
    *ops = bb_app_storage(app, st);
    cr_assert_not_null(*ops);
    (void)f;
    return app;
}

static inline void pgfx_open(pgfx *f, const char *pg_extra, const char *storage_extra)
{
    f->cfg_path = pgfx_write_config(f, "botboard.yaml", f->pg.conninfo, pg_extra, storage_extra);
    f->app = pgfx_open_with(f, f->cfg_path, true, &f->st, &f->ops);
}

static inline void pgfx_close(pgfx *f)
{
    if (f->app) bb_app_close(f->app);
    f->app = NULL;
    bbt_pg_destroy(&f->pg);
    bbt_rmtree(f->dir);
    free(f->dir);
    free(f->cfg_path);
    f->dir = f->cfg_path = NULL;
}

/* The test's own connection to the same database. */
static inline PGconn *pgfx_side(pgfx *f)
{
    PGconn *c = PQconnectdb(f->pg.conninfo);
    cr_assert(c && PQstatus(c) == CONNECTION_OK, "side connection: %s", c ? PQerrorMessage(c) : "oom");
    return c;
}

/* One-value query on the side connection ("" when no row). */
static inline char *pgfx_scalar(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    char *v;
    cr_assert(r && PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
    v = strdup(PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    cr_assert_not_null(v);
    return v;
}

static inline void pgfx_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    cr_assert(s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

static inline int64_t pgfx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void pgfx_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* A post for team `team` with a fresh ULID (via a throwaway id source). */
static inline void pgfx_post(bb_post *p, const char *team, const char *id, const char *author, const char *content)
{
    memset(p, 0, sizeof *p);
    snprintf(p->id, sizeof p->id, "%s", id);
    snprintf(p->team, sizeof p->team, "%s", team);
    p->author = (char *)author;
    p->content = (char *)content;
    p->created_ms = (int64_t)time(NULL) * 1000;
}

/* Value of a metric line (exact series text, e.g.
 * "botboard_storage_pg_connections_opened_total") in the registry; -1 if absent. */
static inline double pgfx_metric(const char *series)
{
    size_t len = 0;
    char *text = bb_metrics_render(&len);
    double v = -1;
    size_t n = strlen(series);
    for (char *line = text; line && *line;) {
        char *eol = strchr(line, '\n');
        if (strncmp(line, series, n) == 0 && line[n] == ' ') { v = strtod(line + n + 1, NULL); break; }
        line = eol ? eol + 1 : NULL;
    }
    free(text);
    return v;
}

static inline void pgfx_team(pgfx *f, const char *name)
{
    bb_team t;
    bb_error err;
    bb_call call = { "fixture", NULL, 0 };
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.created_ms = 1700000000000;
    cr_assert_eq(f->ops->team_create(f->st, &call, &t, &err), BB_OK, "team_create: %s", err.msg);
}

#endif
