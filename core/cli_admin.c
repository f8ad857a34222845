/*
 * core/cli_admin.c — migrate, team, key, backup.
 */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "cli.h"
#include "host.h"
#include "validate_names.h"

static bb_call cli_call(void)
{
    bb_call c = { "cli", NULL, 0 };
    return c;
}

static int storage_fail(const bb_cli *cli, const char *what, const bb_error *err)
{
    return bb_cli_fail(cli, err->code == BB_INVALID || err->code == BB_CONFLICT || err->code == BB_NOT_FOUND
                                ? BB_EXIT_USAGE : BB_EXIT_RUNTIME,
                       "%s: %s", what, err->msg[0] ? err->msg : bb_status_name(err->code));
}

/* The store the admin commands work on, its schema brought up to date
 * (or refused) per storage.auto_migrate.  NULL with *code set on failure. */
static const bb_storage_ops *open_store(const bb_cli *cli, bb_app **app, bb_storage **st, int *code)
{
    *app = bb_cli_open(cli, BB_APP_STORAGE | BB_APP_MIGRATE, code);
    return *app ? bb_app_storage(*app, st) : NULL;
}

static bb_status print_migration(void *ud, const bb_migration_info *m)
{
    (void)ud;
    printf("%4d  %-8s  %s\n", m->version, m->applied ? "applied" : "pending", m->name);
    return BB_OK;
}

int bb_cmd_migrate(bb_cli *cli)
{
    int code = 0;
    bool status_only = bb_cli_flag(cli, "--status");
    bb_app *app = bb_cli_open(cli, BB_APP_STORAGE, &code);
    bb_storage *st;
    const bb_storage_ops *ops;
    bb_call call = cli_call();
    bb_error err;
    if (!app) return code;
    ops = bb_app_storage(app, &st);
    bb_error_clear(&err);
    if (ops->migrate(st, &call, !status_only, print_migration, NULL, &err) != BB_OK)
        code = storage_fail(cli, "migrate", &err);
    bb_app_close(app);
    return code;
}

static bb_status print_team(void *ud, const bb_team *t)
{
    (void)ud;
    printf("%s\n", t->name);
    return BB_OK;
}

int bb_cmd_team(bb_cli *cli)
{
    int code = 0;
    bb_app *app;
    bb_storage *st;
    const bb_storage_ops *ops;
    bb_call call = cli_call();
    bb_error err;
    const char *sub = cli->argc > 0 ? cli->argv[0] : "";
    bb_error_clear(&err);
    if (strcmp(sub, "create") == 0) {
        bb_team t = { .created_ms = bb_wall_ms() };
        if (cli->argc < 2) return bb_cli_fail(cli, BB_EXIT_USAGE, "usage: botboard team create NAME");
        if (!bb_team_name_ok(cli->argv[1]))
            return bb_cli_fail(cli, BB_EXIT_USAGE, "team name must be 1-64 of A-Z a-z 0-9 . _ -");
        snprintf(t.name, sizeof t.name, "%s", cli->argv[1]);
        if (!(ops = open_store(cli, &app, &st, &code))) return code;
        if (ops->team_create(st, &call, &t, &err) != BB_OK) code = storage_fail(cli, "team create", &err);
        else fprintf(stderr, "team %s created\n", t.name);
    } else if (strcmp(sub, "list") == 0) {
        if (!(ops = open_store(cli, &app, &st, &code))) return code;
        if (ops->team_list(st, &call, print_team, NULL, &err) != BB_OK) code = storage_fail(cli, "team list", &err);
    } else {
        return bb_cli_fail(cli, BB_EXIT_USAGE, "usage: botboard team create NAME | team list");
    }
    bb_app_close(app);
    return code;
}

static bb_status print_key(void *ud, const bb_api_key *k)
{
    (void)ud;
    printf("%-26s %-14s %-10s %s\n", k->id, k->prefix, k->revoked_ms ? "revoked" : "active", k->label);
    return BB_OK;
}

int bb_cmd_key(bb_cli *cli)
{
    int code = 0;
    bb_app *app;
    bb_storage *st;
    const bb_storage_ops *ops;
    bb_call call = cli_call();
    bb_error err;
    const char *sub = cli->argc > 0 ? cli->argv[0] : "", *team = bb_cli_opt(cli, "--team");
    bb_error_clear(&err);
    if (strcmp(sub, "create") == 0) {
        char text[BB_KEY_TEXT_MAX];
        bb_api_key rec;
        bb_team t;
        if (!team) return bb_cli_fail(cli, BB_EXIT_USAGE, "usage: botboard key create --team NAME [--label L]");
        if (!(ops = open_store(cli, &app, &st, &code))) return code;
        if (ops->team_get(st, &call, team, &t, &err) != BB_OK) {
            code = storage_fail(cli, "key create: team", &err);
        } else if (!bb_key_generate(team, bb_cli_opt(cli, "--label"), text, &rec)) {
            code = bb_cli_fail(cli, BB_EXIT_RUNTIME, "key create: cannot generate a key");
        } else if (ops->key_create(st, &call, &rec, &err) != BB_OK) {
            code = storage_fail(cli, "key create", &err);
        } else {
            printf("%s\n", text);   /* the only time the key is ever shown */
            fprintf(stderr, "key %s created for team %s (shown once; store it now)\n", rec.id, team);
        }
    } else if (strcmp(sub, "list") == 0) {
        if (!team) return bb_cli_fail(cli, BB_EXIT_USAGE, "usage: botboard key list --team NAME");
        if (!(ops = open_store(cli, &app, &st, &code))) return code;
        if (ops->key_list(st, &call, team, print_key, NULL, &err) != BB_OK) code = storage_fail(cli, "key list", &err);
    } else if (strcmp(sub, "revoke") == 0) {
        if (cli->argc < 2) return bb_cli_fail(cli, BB_EXIT_USAGE, "usage: botboard key revoke ID");
        if (!(ops = open_store(cli, &app, &st, &code))) return code;
        if (ops->key_revoke(st, &call, cli->argv[1], bb_wall_ms(), &err) != BB_OK) code = storage_fail(cli, "key revoke", &err);
        else fprintf(stderr, "key %s revoked\n", cli->argv[1]);
    } else {
        return bb_cli_fail(cli, BB_EXIT_USAGE, "usage: botboard key create --team NAME [--label L] | key list --team NAME | key revoke ID");
    }
    bb_app_close(app);
    return code;
}

int bb_cmd_backup(bb_cli *cli)
{
    int code = 0;
    bb_app *app;
    bb_storage *st;
    const bb_storage_ops *ops;
    bb_call call = cli_call();
    bb_error err;
    if (cli->argc < 1) return bb_cli_fail(cli, BB_EXIT_USAGE, "usage: botboard backup FILE");
    if (!(app = bb_cli_open(cli, BB_APP_STORAGE, &code))) return code;
    ops = bb_app_storage(app, &st);
    bb_error_clear(&err);
    if (ops->backup(st, &call, cli->argv[0], &err) != BB_OK) code = storage_fail(cli, "backup", &err);
    else fprintf(stderr, "backup written to %s\n", cli->argv[0]);
    bb_app_close(app);
    return code;
}
