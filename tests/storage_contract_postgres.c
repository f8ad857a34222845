/*
 * tests/storage_contract_postgres.c — the contract suite's PostgreSQL hooks.
 *
 * Unless BB_CONTRACT_CONNINFO names a server, one real PostgreSQL is started
 * by the harness before any test runs (custom Criterion main) and every test
 * gets a fresh database on it.  Skips, with the reason, when the plugin is
 * not built or PostgreSQL cannot start here.
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bbtest.h"
#include "loader.h"
#include "storage_contract.h"

const char ct_default_backend[] = "postgres";
const char ct_default_storage_yaml[] =
    "storage:\n"
    "  backend: postgres\n"
    "  postgres:\n"
    "    conninfo: \"{{CONNINFO}}\"\n";

/* main() hands the server (or the reason to skip) to the test workers through
 * the environment: Criterion runs each test in a fresh process image. */
#define ENV_SKIP     "BB_CONTRACT_SKIP_REASON"
#define ENV_CONNINFO "BB_CONTRACT_CONNINFO"
static int db_seq;

bool ct_backend_fresh(char *conninfo, size_t len, char *why, size_t why_len)
{
    const char *skip = getenv(ENV_SKIP), *base_conninfo = getenv(ENV_CONNINFO);
    char name[64], sql[128];
    PGconn *c;
    PGresult *r;
    bool ok;
    if (skip && *skip) { snprintf(why, why_len, "%s", skip); return false; }
    if (!base_conninfo || !*base_conninfo) { snprintf(why, why_len, "no PostgreSQL server"); return false; }
    snprintf(name, sizeof name, "contract_%d_%d", (int)getpid(), db_seq++);
    c = PQconnectdb(base_conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(why, why_len, "cannot connect to %s: %s", base_conninfo, PQerrorMessage(c));
        PQfinish(c);
        return false;
    }
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);   /* name is ours: digits and letters */
    r = PQexec(c, sql);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) snprintf(why, why_len, "CREATE DATABASE failed: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    if (!ok) cr_assert_fail("%s", why);   /* the server is up: this is a real failure */
    /* libpq: a later keyword overrides an earlier one. */
    snprintf(conninfo, len, "%s dbname=%s", base_conninfo, name);
    return true;
}

static bool plugin_present(char *why, size_t why_len)
{
    const char *dir = getenv("BB_CONTRACT_PLUGIN_DIR"), *name = getenv("BB_CONTRACT_BACKEND");
    const char *extra[1] = { dir };
    bb_search_path sp;
    char path[1024], reason[1024];
    bool found;
    bb_search_path_init(&sp, extra, dir && *dir ? 1 : 0);
    found = bb_plugin_locate(&sp, BB_KIND_STORAGE, name && *name ? name : ct_default_backend, path, sizeof path,
                             reason, sizeof reason);
    bb_search_path_free(&sp);
    if (!found) snprintf(why, why_len, "storage_postgres plugin not built (%s)", reason);
    return found;
}

int main(int argc, char *argv[])
{
    struct criterion_test_set *tests = criterion_initialize();
    const char *given = getenv(ENV_CONNINFO);
    char skip_reason[1024] = "";
    bbt_pg pg;
    bool started = false;
    int result = 0;
    memset(&pg, 0, sizeof pg);
    if (criterion_handle_args(argc, argv, true)) {
        char why[1024];
        if (!plugin_present(skip_reason, sizeof skip_reason)) {
            /* skip_reason says why; every test skips with it */
        } else if (given && *given) {
            /* a server of the caller's */
        } else if (bbt_pg_start(&pg, why, sizeof why)) {
            started = true;
            setenv(ENV_CONNINFO, pg.conninfo, 1);
        } else {
            snprintf(skip_reason, sizeof skip_reason, "PostgreSQL could not start: %s", why);
        }
        if (skip_reason[0]) setenv(ENV_SKIP, skip_reason, 1);
        result = !criterion_run_all_tests(tests);
        /* Every test skipped for one reason: tell automake it is a SKIP, not a PASS. */
        if (skip_reason[0] && result == 0) result = 77;
    }
    if (started) bbt_pg_destroy(&pg);
    criterion_finalize(tests);
    return result;
}
