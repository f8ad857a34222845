/*
 * core/cli_serve.c — `botboard serve`: start-up order of DESIGN §8, the
 * signal loop (SIGTERM/SIGINT stop gracefully, SIGHUP reloads), and the
 * periodic housekeeping.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cli.h"
#include "events.h"
#include "host.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "reload.h"
#include "server.h"
#include "service.h"

#define HOUSEKEEPING_EVERY_MS 60000

/* dev only: an empty database gets team "default" and one key, written
 * once to a 0600 file. */
static void dev_bootstrap(bb_server *srv)
{
    const bb_cfg *root = bb_config_root(bb_app_config(srv->app));
    const char *path = bb_cfg_str(root, "bootstrap.key_file", "botboard-dev.key");
    bb_call call = { "bootstrap", NULL, 0 };
    bb_team t = { .name = "default" };
    bb_error err;
    char text[BB_KEY_TEXT_MAX];
    bb_api_key rec;
    int fd;
    if (strcmp(bb_cfg_str(root, "environment", "dev"), "dev") != 0) return;
    bb_error_clear(&err);
    if (srv->storage->team_get(srv->storage_inst, &call, "default", &t, &err) == BB_OK) return;
    if (err.code != BB_NOT_FOUND) {
        bb_warn("bootstrap", "cannot look up team default (%s): no dev key created", err.msg);
        return;
    }
    t.created_ms = bb_wall_ms();
    if (srv->storage->team_create(srv->storage_inst, &call, &t, &err) != BB_OK) {
        bb_warn("bootstrap", "cannot create team default: %s", err.msg);
        return;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        bb_warn("bootstrap", "team default created, but %s exists or cannot be written (%s): create a key with "
                "'botboard key create --team default'", path, strerror(errno));
        return;
    }
    if (!bb_key_generate("default", "dev bootstrap", text, &rec) ||
        srv->storage->key_create(srv->storage_inst, &call, &rec, &err) != BB_OK ||
        dprintf(fd, "%s\n", text) < 0) {
        bb_warn("bootstrap", "could not create the dev API key: %s", err.msg);
        close(fd);
        unlink(path);
        return;
    }
    close(fd);
    bb_info("bootstrap", "dev: created team 'default' and an API key, written to %s (mode 0600)", path);
}

static void housekeeping(bb_server *srv)
{
    bb_call call = { "housekeeping", NULL, bb_now_ms() + 10000 };
    bb_error err;
    bb_error_clear(&err);
    if (srv->storage->purge_expired(srv->storage_inst, &call, bb_wall_ms(), &err) != BB_OK)
        bb_warn("housekeeping", "purging expired idempotency records failed: %s", err.msg);
}

int bb_cmd_serve(bb_cli *cli)
{
    int code = 0;
    bb_server srv;
    sigset_t sigs;
    char why[512];
    int64_t next_housekeeping;
    const bb_cfg *root;
    bb_app *app;

    /* Signals are taken synchronously by this thread only.  Blocked before
     * anything starts a thread (plugins start theirs in create()), since
     * threads inherit the mask: a SIGHUP delivered to a thread that had not
     * blocked it would kill the process. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    app = bb_cli_open(cli, BB_APP_ALL | BB_APP_MIGRATE, &code);
    if (!app) return code;

    memset(&srv, 0, sizeof srv);
    srv.app = app;
    root = bb_config_root(bb_app_config(app));
    if (!bb_service_init(&srv, why, sizeof why)) {
        bb_service_fini(&srv);
        bb_app_close(app);
        return bb_cli_fail(cli, BB_EXIT_RUNTIME, "%s", why);
    }
    dev_bootstrap(&srv);


    if (!bb_http_start(&srv, why, sizeof why)) {
        bb_service_fini(&srv);
        bb_app_close(app);
        return bb_cli_fail(cli, BB_EXIT_RUNTIME, "%s", why);
    }
    bb_info("serve", "botboard %s listening on %s (storage %s, session %s, upstream %s, %s)", PACKAGE_VERSION,
            bb_cfg_str(root, "server.listen", "?"), bb_cfg_str(root, "storage.backend", "?"),
            bb_cfg_str(root, "session.backend", "?"), bb_cfg_str(root, "upstream.backend", "?"),
            bb_cfg_str(root, "environment", "dev"));

    next_housekeeping = bb_now_ms() + HOUSEKEEPING_EVERY_MS;
    for (;;) {
        struct timespec tick = { 1, 0 };
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            bb_info("serve", "%s: stopping (grace %lld ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                    (long long)bb_cfg_i64(root, "server.shutdown_grace_ms", 10000));
            break;
        }
        if (sig == SIGHUP) bb_reload(&srv, cli->config);
        if (bb_now_ms() >= next_housekeeping) {
            housekeeping(&srv);
            next_housekeeping = bb_now_ms() + HOUSEKEEPING_EVERY_MS;
        }
    }
    bb_http_stop(&srv, bb_cfg_i64(root, "server.shutdown_grace_ms", 10000));
    bb_service_fini(&srv);
    bb_app_close(app);
    bb_info("serve", "stopped");
    bb_metrics_reset();
    return BB_EXIT_OK;
}
