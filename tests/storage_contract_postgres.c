/*
 * tests/storage_contract_postgres.c — the contract suite's PostgreSQL hooks.
 *
 * One real server for the whole program (started before the first test in
 * Criterion's runner process, stopped after the last); each test gets a
 * fresh schema of its own through search_path, which is as isolated as a
 * fresh database for this plugin and costs milliseconds instead of a
 * CREATE DATABASE.  If the runner could not start PostgreSQL, every test is
 * skipped with the reason.  When the hook did not run (another runner), a
 * test starts its own server.
 */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bbtest.h"
#include "storage_contract.h"

const char ct_default_backend[] = "postgres";
const char ct_default_storage_yaml[] =
    "storage:\n"
    "  backend: postgres\n"
    "  postgres:\n"
    "    conninfo: \"{{CONNINFO}}\"\n"
    "    pool:\n"
    "      size: 8\n";

#define ENV_CONNINFO "BB_CT_PG_CONNINFO"
#define ENV_WHY      "BB_CT_PG_WHY"

static bbt_pg shared_pg;   /* the runner's server (runner process only) */
static bbt_pg own_pg;      /* a test's own server when the runner has none */

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    char why[2048];
    (void)set;
    if (getenv(ENV_CONNINFO)) return;
    if (bbt_pg_start(&shared_pg, why, sizeof why)) setenv(ENV_CONNINFO, shared_pg.conninfo, 1);
    else setenv(ENV_WHY, why, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    if (shared_pg.dir) bbt_pg_destroy(&shared_pg);
}

bool ct_backend_fresh(char *conninfo, size_t len, char *why, size_t why_len)
{
    static unsigned serial;
    const char *base = getenv(ENV_CONNINFO);
    char schema[64], sql[160];
    PGconn *c;
    PGresult *r;
    bool ok;
    if (!base) {
        const char *reason = getenv(ENV_WHY);
        if (reason) { snprintf(why, why_len, "PostgreSQL would not start: %s", reason); return false; }
        if (!own_pg.dir && !bbt_pg_start(&own_pg, why, why_len)) return false;
        base = own_pg.conninfo;
    }
    snprintf(schema, sizeof schema, "ct_%ld_%u", (long)getpid(), serial++);
    c = PQconnectdb(base);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        snprintf(why, why_len, "cannot reach the test PostgreSQL: %s", c ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        return false;
    }
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
    r = PQexec(c, sql);
    ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) snprintf(why, why_len, "cannot create schema %s: %s", schema, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    if (!ok) return false;
    snprintf(conninfo, len, "%s options='-c search_path=%s'", base, schema);
    return true;
}
