/*
 * tests/support/redis.c — a throwaway redis-server per test.
 *
 * No persistence (--save "" --appendonly no): a restart starts empty, which
 * is what a test of "Redis went away and came back" wants to see.  Readiness
 * is PING answered PONG through redis-cli, polled with a bound.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    READY_TIMEOUT_MS = 10000,
    READY_POLL_MS    = 20,
    CLI_TIMEOUT_MS   = 10000,
    STOP_TIMEOUT_MS  = 5000,
    MAX_CLI_ARGS     = 64,
};

static const char SERVER_PROG[] = "redis-server";
static const char CLI_PROG[] = "redis-cli";

/* redis-cli -h 127.0.0.1 -p PORT args...; stdout malloc'd, exit code in *rc. */
static char *cli(const bbt_redis *r, const char *const args[], int *rc)
{
    *rc = -1;
    char *bin = bbt_which(CLI_PROG);
    if (!bin)
        return NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    char *argv[MAX_CLI_ARGS + 6] = { bin, "-h", "127.0.0.1", "-p", port };
    size_t n = 5;
    for (size_t i = 0; args && args[i]; i++) {
        if (i >= MAX_CLI_ARGS) {
            free(bin);
            return NULL;
        }
        argv[n++] = (char *)args[i];
    }
    argv[n] = NULL;
    char *out = NULL;
    *rc = bbt_capture(argv, NULL, NULL, NULL, 0, CLI_TIMEOUT_MS, &out, NULL);
    free(bin);
    return out;
}

static bool answers_pong(const bbt_redis *r)
{
    static const char *const ping[] = { "PING", NULL };
    int rc;
    char *out = cli(r, ping, &rc);
    bool ok = rc == 0 && out && strncmp(out, "PONG", 4) == 0;
    free(out);
    return ok;
}

static bool launch(bbt_redis *r, char *why, size_t why_len)
{
    char *bin = bbt_which(SERVER_PROG), *log = bbt_join(r->dir, "redis.log");
    char *cli_bin = bbt_which(CLI_PROG);
    bool ok = false;
    if (!bin || !cli_bin) {
        bbt_why(why, why_len, "%s is not installed (not in $PATH)", bin ? CLI_PROG : SERVER_PROG);
        goto out;
    }
    if (!log) {
        bbt_why(why, why_len, "out of memory");
        goto out;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    char *argv[] = { bin, "--port", port, "--bind", "127.0.0.1", "--dir", r->dir,
                     "--save", "", "--appendonly", "no", "--daemonize", "no", NULL };
    bbt_spawn_opts o = { .death_signal = SIGKILL, .exit_signal = SIGTERM };
    if (!bbt_spawn(&r->proc, argv, NULL, log, &o, why, why_len))
        goto out;
    int64_t deadline = bbt_now_ms() + READY_TIMEOUT_MS;
    for (;;) {
        if (bbt_proc_wait(&r->proc, 0)) {
            bbt_why(why, why_len, "redis-server exited with status %d during start-up",
                    r->proc.exit_status);
            bbt_why_append_log(why, why_len, log);
            goto out;
        }
        if (answers_pong(r))
            break;
        if (bbt_now_ms() >= deadline) {
            bbt_why(why, why_len, "redis-server did not answer PING within %d ms",
                    READY_TIMEOUT_MS);
            bbt_why_append_log(why, why_len, log);
            bbt_proc_stop(&r->proc, STOP_TIMEOUT_MS);
            goto out;
        }
        bbt_sleep_ms(READY_POLL_MS);
    }
    r->running = true;
    ok = true;
out:
    free(bin);
    free(cli_bin);
    free(log);
    return ok;
}

bool bbt_redis_start(bbt_redis *r, char *why, size_t why_len)
{
    if (!r)
        return false;
    memset(r, 0, sizeof *r);
    r->proc.exit_status = -1;
    r->port = bbt_free_port();
    r->dir = bbt_tempdir("redis");
    if (r->port <= 0 || !r->dir) {
        bbt_why(why, why_len, "no free port or temp dir");
        bbt_redis_destroy(r);
        return false;
    }
    char *log = bbt_join(r->dir, "redis.log");
    for (int attempt = 1; log; attempt++) {
        snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d/0", r->port);
        size_t offset = bbt_file_size(log);
        if (launch(r, why, why_len)) {
            free(log);
            return true;
        }
        if (attempt == BBT_PORT_ATTEMPTS || !bbt_log_says_port_taken(log, offset))
            break;
        r->port = bbt_free_port();
    }
    free(log);
    bbt_redis_destroy(r);
    return false;
}

bool bbt_redis_stop(bbt_redis *r)
{
    if (!r)
        return false;
    if (r->proc.pid > 0) {
        /* Ask nicely (no save: there is nothing worth keeping), then signals. */
        static const char *const shutdown[] = { "SHUTDOWN", "NOSAVE", NULL };
        int rc;
        free(cli(r, shutdown, &rc));
        if (!bbt_proc_wait(&r->proc, STOP_TIMEOUT_MS))
            bbt_proc_stop(&r->proc, STOP_TIMEOUT_MS);
    }
    r->running = r->proc.pid > 0;
    return !r->running;
}

bool bbt_redis_restart(bbt_redis *r, char *why, size_t why_len)
{
    if (!r || !r->dir) {
        bbt_why(why, why_len, "redis was never started");
        return false;
    }
    if (r->proc.pid > 0) {
        bbt_why(why, why_len, "redis is still running (pid %d)", (int)r->proc.pid);
        return false;
    }
    return launch(r, why, why_len);
}

void bbt_redis_destroy(bbt_redis *r)
{
    if (!r)
        return;
    bbt_redis_stop(r);
    if (r->dir) {
        bbt_rmtree(r->dir);
        free(r->dir);
    }
    r->dir = NULL;
}

char *bbt_redis_cli(bbt_redis *r, const char *const args[])
{
    if (!r || r->port <= 0)
        return NULL;
    int rc;
    return cli(r, args, &rc);
}
