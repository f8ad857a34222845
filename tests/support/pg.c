/*
 * tests/support/pg.c — a throwaway PostgreSQL cluster per test.
 *
 * initdb into a scratch dir (trust auth, superuser "botboard", fsync off: the
 * data is disposable), then run the postmaster on loopback and a free port.
 * The postmaster is started as our own child rather than through
 * `pg_ctl start`, which would orphan it: as a child it gets a parent-death
 * signal (a crashed test cannot leak it), we notice at once if it dies during
 * start-up, and we reap it.  Stopping goes through `pg_ctl stop -w` like any
 * operator would, then the child is reaped.
 *
 * PostgreSQL refuses to run as root; CI runs as root, so then every server
 * program runs as the `postgres` user that Debian's package creates, and the
 * scratch dir is handed to that user.
 */
#include "internal.h"

#include <errno.h>
#include <glob.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    INITDB_TIMEOUT_MS   = 120000,
    READY_TIMEOUT_MS    = 30000,
    READY_POLL_MS       = 20,
    ISREADY_TIMEOUT_MS  = 5000,
    CREATEDB_TIMEOUT_MS = 30000,
    PG_CTL_TIMEOUT_S    = 30,
    REAP_TIMEOUT_MS     = 10000,
};

static const char DB_USER[] = "botboard";
static const char DB_NAME[] = "botboard";
static const char SERVICE_USER[] = "postgres";

/* Newest /usr/lib/postgresql/N/bin holding initdb, or $BB_PG_BINDIR. */
static bool find_bindir(char *out, size_t out_len)
{
    const char *env = getenv("BB_PG_BINDIR");
    if (env && *env) {
        snprintf(out, out_len, "%s", env);
        return true;
    }
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0)
        return false;
    long best = -1;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        long v = strtol(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"), NULL, 10);
        if (v > best && access(g.gl_pathv[i], X_OK) == 0) {
            best = v;
            snprintf(out, out_len, "%.*s", (int)(strlen(g.gl_pathv[i]) - strlen("/initdb")),
                     g.gl_pathv[i]);
        }
    }
    globfree(&g);
    return best >= 0;
}

/* Options for the server-side programs: as `postgres` when we are root. */
static bool service_opts(bbt_spawn_opts *o, const char *cwd, char *why, size_t why_len)
{
    *o = (bbt_spawn_opts){ .cwd = cwd, .death_signal = SIGQUIT, .exit_signal = SIGQUIT };
    if (geteuid() != 0)
        return true;
    struct passwd *pw = getpwnam(SERVICE_USER);
    if (!pw) {
        bbt_why(why, why_len, "running as root and there is no `%s` user to run PostgreSQL as",
                SERVICE_USER);
        return false;
    }
    o->drop_to_user = true;
    o->uid = pw->pw_uid;
    o->gid = pw->pw_gid;
    o->user = SERVICE_USER;
    o->home = cwd;
    return true;
}

static char *prog(const bbt_pg *pg, const char *name)
{
    return bbt_join(pg->bindir, name);
}

/* Run a pg program to completion; on failure put its output in why. */
static bool run_pg_tool(char *const argv[], const bbt_spawn_opts *o, int timeout_ms,
                        char *why, size_t why_len)
{
    char *out = NULL, *err = NULL;
    int rc = bbt_capture(argv, NULL, o, NULL, 0, timeout_ms, &out, &err);
    if (rc != 0)
        bbt_why(why, why_len, "%s failed (%d): %s%s", argv[0], rc, err ? err : "", out ? out : "");
    free(out);
    free(err);
    return rc == 0;
}

/* Start the postmaster on pg->port and wait until it accepts connections. */
static bool launch(bbt_pg *pg, char *why, size_t why_len)
{
    bbt_spawn_opts o;
    if (!service_opts(&o, pg->dir, why, why_len))
        return false;
    o.key = pg->dir;
    char *postgres = prog(pg, "postgres"), *isready = prog(pg, "pg_isready");
    char *data = bbt_join(pg->dir, "data"), *log = bbt_join(pg->dir, "postgres.log");
    char port[16];
    snprintf(port, sizeof port, "%d", pg->port);
    bool ok = false;
    if (!postgres || !isready || !data || !log) {
        bbt_why(why, why_len, "out of memory");
        goto out;
    }
    char *argv[] = { postgres, "-D", data, "-p", port, "-k", pg->dir,
                     "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", NULL };
    bbt_proc proc;
    if (!bbt_spawn(&proc, argv, NULL, log, &o, why, why_len))
        goto out;

    char *ready_argv[] = { isready, "-q", "-h", "127.0.0.1", "-p", port, "-t", "1", NULL };
    int64_t deadline = bbt_now_ms() + READY_TIMEOUT_MS;
    for (;;) {
        if (bbt_proc_wait(&proc, 0)) {
            bbt_why(why, why_len, "postgres exited with status %d during start-up",
                    proc.exit_status);
            bbt_why_append_log(why, why_len, log);
            goto out;
        }
        if (bbt_capture(ready_argv, NULL, NULL, NULL, 0, ISREADY_TIMEOUT_MS, NULL, NULL) == 0)
            break;
        if (bbt_now_ms() >= deadline) {
            bbt_why(why, why_len, "postgres not ready within %d ms", READY_TIMEOUT_MS);
            bbt_why_append_log(why, why_len, log);
            bbt_proc_stop(&proc, REAP_TIMEOUT_MS);
            goto out;
        }
        bbt_sleep_ms(READY_POLL_MS);
    }
    pg->running = true;
    ok = true;
out:
    free(postgres);
    free(isready);
    free(data);
    free(log);
    return ok;
}

static bool init_cluster(bbt_pg *pg, char *why, size_t why_len)
{
    bbt_spawn_opts o;
    if (!service_opts(&o, pg->dir, why, why_len))
        return false;
    if (o.drop_to_user && chown(pg->dir, o.uid, o.gid) != 0) {
        bbt_why(why, why_len, "chown %s to %s: %s", pg->dir, SERVICE_USER, strerror(errno));
        return false;
    }
    char *initdb = prog(pg, "initdb"), *data = bbt_join(pg->dir, "data");
    bool ok = false;
    if (initdb && data) {
        char *argv[] = { initdb, "-D", data, "-A", "trust", "-U", (char *)DB_USER, "--no-sync",
                         "-E", "UTF8", "--locale=C", NULL };
        ok = run_pg_tool(argv, &o, INITDB_TIMEOUT_MS, why, why_len);
    } else {
        bbt_why(why, why_len, "out of memory");
    }
    free(initdb);
    free(data);
    return ok;
}

static bool create_database(bbt_pg *pg, char *why, size_t why_len)
{
    char *createdb = prog(pg, "createdb");
    if (!createdb) {
        bbt_why(why, why_len, "out of memory");
        return false;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", pg->port);
    char *argv[] = { createdb, "-h", "127.0.0.1", "-p", port, "-U", (char *)DB_USER,
                     (char *)DB_NAME, NULL };
    bool ok = run_pg_tool(argv, NULL, CREATEDB_TIMEOUT_MS, why, why_len);
    free(createdb);
    return ok;
}

bool bbt_pg_start(bbt_pg *pg, char *why, size_t why_len)
{
    if (!pg)
        return false;
    memset(pg, 0, sizeof *pg);
    if (!find_bindir(pg->bindir, sizeof pg->bindir)) {
        bbt_why(why, why_len, "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; "
                "set BB_PG_BINDIR)");
        return false;
    }
    pg->port = bbt_free_port();
    pg->dir = bbt_tempdir("pg");
    if (pg->port <= 0 || !pg->dir) {
        bbt_why(why, why_len, "no free port or temp dir");
        goto fail;
    }
    snprintf(pg->conninfo, sizeof pg->conninfo,
             "host=127.0.0.1 port=%d dbname=%s user=%s", pg->port, DB_NAME, DB_USER);
    if (!init_cluster(pg, why, why_len))
        goto fail;
    char *log = bbt_join(pg->dir, "postgres.log");
    bool up = false;
    for (int attempt = 1; log && !up; attempt++) {
        size_t offset = bbt_file_size(log);
        up = launch(pg, why, why_len);
        if (up || attempt == BBT_PORT_ATTEMPTS || !bbt_log_says_port_taken(log, offset))
            break;
        pg->port = bbt_free_port();
        snprintf(pg->conninfo, sizeof pg->conninfo,
                 "host=127.0.0.1 port=%d dbname=%s user=%s", pg->port, DB_NAME, DB_USER);
    }
    free(log);
    if (up && create_database(pg, why, why_len))
        return true;
fail:
    bbt_pg_destroy(pg);
    return false;
}

bool bbt_pg_stop(bbt_pg *pg, bool immediate)
{
    if (!pg || !pg->dir)
        return false;
    pid_t pid = bbt_registry_find(pg->dir);
    if (!pg->running && pid <= 0)
        return true;
    char why[1024] = "";
    bbt_spawn_opts o;
    char *pg_ctl = prog(pg, "pg_ctl"), *data = bbt_join(pg->dir, "data");
    bool stopped = false;
    if (pg_ctl && data && service_opts(&o, pg->dir, why, sizeof why)) {
        char timeout[16];
        snprintf(timeout, sizeof timeout, "%d", PG_CTL_TIMEOUT_S);
        char *argv[] = { pg_ctl, "stop", "-D", data, "-m", immediate ? "immediate" : "fast",
                         "-w", "-t", timeout, NULL };
        stopped = run_pg_tool(argv, &o, (PG_CTL_TIMEOUT_S + 5) * 1000, why, sizeof why);
    }
    free(pg_ctl);
    free(data);
    if (pid > 0) {
        bbt_proc proc = { .pid = pid, .exit_status = -1 };
        if (!stopped)   /* pg_ctl could not do it: immediate shutdown by hand */
            kill(pid, SIGQUIT);
        if (!bbt_proc_wait(&proc, REAP_TIMEOUT_MS))
            bbt_proc_stop(&proc, 0);
        stopped = proc.pid == 0;
    }
    if (!stopped)
        fprintf(stderr, "bbtest: stopping postgres in %s: %s\n", pg->dir, why);
    pg->running = !stopped;
    return stopped;
}

bool bbt_pg_restart(bbt_pg *pg, char *why, size_t why_len)
{
    if (!pg || !pg->dir) {
        bbt_why(why, why_len, "PostgreSQL was never started");
        return false;
    }
    if (pg->running || bbt_registry_find(pg->dir) > 0) {
        bbt_why(why, why_len, "PostgreSQL is still running");
        return false;
    }
    return launch(pg, why, why_len);
}

void bbt_pg_destroy(bbt_pg *pg)
{
    if (!pg)
        return;
    if (pg->dir) {
        bbt_pg_stop(pg, false);
        bbt_rmtree(pg->dir);
        free(pg->dir);
    }
    pg->dir = NULL;
    pg->running = false;
}
