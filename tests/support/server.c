/*
 * tests/support/server.c — the real botboard binary as a child process.
 *
 * A server gets its own scratch dir (config, database, log) and a free port;
 * "ready" means GET /healthz answered 200, polled with a bound, and a server
 * that exits while we poll fails the start at once with its log as the
 * reason.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    START_TIMEOUT_MS     = 15000,   /* default; BB_TEST_START_TIMEOUT_MS overrides */
    HEALTH_POLL_MS       = 20,
    HEALTH_CALL_MS       = 1000,
    STOP_TIMEOUT_MS      = 15000,   /* longer than any shutdown_grace_ms a test sets */
    CLI_TIMEOUT_MS       = 60000,
};

static const char CONFIG_NAME[] = "botboard.yaml";
static const char LOG_NAME[] = "botboard.log";

static int start_timeout_ms(void)
{
    const char *v = getenv("BB_TEST_START_TIMEOUT_MS");
    long ms = v ? strtol(v, NULL, 10) : 0;
    return ms > 0 && ms < 600000 ? (int)ms : START_TIMEOUT_MS;
}

/* Copy of `text` with every `from` replaced by `to`; NULL on OOM. */
static char *replace_all(const char *text, const char *from, const char *to)
{
    size_t lf = strlen(from), lt = strlen(to), count = 0;
    for (const char *p = text; (p = strstr(p, from)); p += lf)
        count++;
    size_t len = strlen(text) + count * lt + 1;
    char *out = malloc(len), *w = out;
    if (!out)
        return NULL;
    for (const char *p = text;;) {
        const char *hit = strstr(p, from);
        size_t n = hit ? (size_t)(hit - p) : strlen(p);
        memcpy(w, p, n);
        w += n;
        if (!hit)
            break;
        memcpy(w, to, lt);
        w += lt;
        p = hit + lf;
    }
    *w = '\0';
    return out;
}

/* Pick a free port and write the config for it. */
static bool configure(bbt_server *s, const char *yaml, char *why, size_t why_len)
{
    s->port = bbt_free_port();
    if (s->port <= 0) {
        bbt_why(why, why_len, "no free port");
        return false;
    }
    snprintf(s->base_url, sizeof s->base_url, "http://127.0.0.1:%d", s->port);
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    char *with_port = replace_all(yaml, "{{PORT}}", port);
    char *text = with_port ? replace_all(with_port, "{{DIR}}", s->dir) : NULL;
    free(with_port);
    free(s->config_path);
    s->config_path = text ? bbt_write_file(s->dir, CONFIG_NAME, text) : NULL;
    free(text);
    if (!s->config_path)
        bbt_why(why, why_len, "cannot write %s/%s", s->dir, CONFIG_NAME);
    return s->config_path != NULL;
}

/* Start the process and poll /healthz. */
static bool launch(bbt_server *s, char *why, size_t why_len)
{
    char *bin = bbt_build_path("botboard");
    char *log = bbt_join(s->dir, LOG_NAME);
    if (!bin || !log) {
        bbt_why(why, why_len, "out of memory");
        free(bin);
        free(log);
        return false;
    }
    char *argv[] = { bin, "serve", "-c", s->config_path, NULL };
    bbt_spawn_opts o = { .death_signal = SIGKILL, .exit_signal = SIGTERM };
    bool ok = bbt_spawn(&s->proc, argv, NULL, log, &o, why, why_len);
    free(bin);
    free(log);
    if (!ok)
        return false;

    char url[128];
    snprintf(url, sizeof url, "%s/healthz", s->base_url);
    int timeout = start_timeout_ms();
    int64_t deadline = bbt_now_ms() + timeout;
    for (;;) {
        if (bbt_proc_wait(&s->proc, 0)) {
            bbt_why(why, why_len, "botboard exited with status %d before /healthz answered",
                    s->proc.exit_status);
            bbt_why_append_log(why, why_len, s->proc.log_path);
            return false;
        }
        bbt_response r;
        bbt_http_timeout("GET", url, NULL, NULL, 0, HEALTH_CALL_MS, &r);
        long status = r.status;
        bbt_response_free(&r);
        if (status == 200)
            return true;
        if (bbt_now_ms() >= deadline) {
            bbt_why(why, why_len, "GET %s not 200 within %d ms (last status %ld)", url, timeout,
                    status);
            bbt_why_append_log(why, why_len, s->proc.log_path);
            bbt_proc_stop(&s->proc, STOP_TIMEOUT_MS);
            return false;
        }
        bbt_sleep_ms(HEALTH_POLL_MS);
    }
}

bool bbt_server_start(bbt_server *s, const char *yaml, char *why, size_t why_len)
{
    if (!s || !yaml) {
        bbt_why(why, why_len, "no server or config given");
        return false;
    }
    memset(s, 0, sizeof *s);
    s->proc.exit_status = -1;
    char *bin = bbt_build_path("botboard");
    bool built = bin && access(bin, X_OK) == 0;
    if (!built) {
        bbt_why(why, why_len, "botboard is not built (%s)", bin ? bin : "?");
        free(bin);
        return false;
    }
    free(bin);

    s->dir = bbt_tempdir("server");
    char *log = s->dir ? bbt_join(s->dir, LOG_NAME) : NULL;
    if (!log) {
        bbt_why(why, why_len, "no temp dir");
        goto fail;
    }
    for (int attempt = 1;; attempt++) {
        size_t offset = bbt_file_size(log);
        if (!configure(s, yaml, why, why_len))
            break;
        if (launch(s, why, why_len)) {
            free(log);
            return true;
        }
        if (attempt == BBT_PORT_ATTEMPTS || !bbt_log_says_port_taken(log, offset))
            break;
    }
    free(log);
fail:
    bbt_server_destroy(s);
    return false;
}

bool bbt_server_restart(bbt_server *s, char *why, size_t why_len)
{
    if (!s || !s->dir || !s->config_path) {
        bbt_why(why, why_len, "server was never started");
        return false;
    }
    if (s->proc.pid > 0) {
        bbt_why(why, why_len, "server is still running (pid %d)", (int)s->proc.pid);
        return false;
    }
    return launch(s, why, why_len);
}

int bbt_server_stop(bbt_server *s)
{
    if (!s || s->proc.pid <= 0)
        return -1;
    bbt_proc_stop(&s->proc, STOP_TIMEOUT_MS);
    return s->proc.pid == 0 ? s->proc.exit_status : -1;
}

void bbt_server_destroy(bbt_server *s)
{
    if (!s)
        return;
    if (s->proc.pid > 0)
        bbt_proc_stop(&s->proc, STOP_TIMEOUT_MS);
    bbt_rmtree(s->dir);
    free(s->dir);
    free(s->config_path);
    s->dir = NULL;
    s->config_path = NULL;
}

int bbt_botboard_cli_input(const char *config_path, const char *const args[],
                           const char *input, size_t input_len, char **out, char **err_out)
{
    size_t n = 0;
    while (args && args[n])
        n++;
    char **argv = calloc(n + 2, sizeof *argv);
    char *bin = bbt_build_path("botboard");
    char *env_cfg = NULL;
    if (config_path && asprintf(&env_cfg, "BOTBOARD_CONFIG=%s", config_path) < 0)
        env_cfg = NULL;
    int rc = -1;
    if (argv && bin && (!config_path || env_cfg)) {
        argv[0] = bin;
        for (size_t i = 0; i < n; i++)
            argv[i + 1] = (char *)args[i];
        /* The config travels in BOTBOARD_CONFIG (DESIGN §7) so this works
         * whatever position a subcommand expects -c in. */
        char *env[] = { env_cfg, NULL };
        rc = bbt_capture(argv, env, NULL, input, input_len, CLI_TIMEOUT_MS, out, err_out);
    } else {
        if (out)
            *out = NULL;
        if (err_out)
            *err_out = strdup("out of memory");
    }
    free(env_cfg);
    free(bin);
    free(argv);
    return rc;
}

int bbt_botboard_cli(const char *config_path, const char *const args[], char **out, char **err_out)
{
    return bbt_botboard_cli_input(config_path, args, NULL, 0, out, err_out);
}
