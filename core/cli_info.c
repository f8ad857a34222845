/*
 * core/cli_info.c — check-config, plugins, version.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int bb_cmd_version(bb_cli *cli)
{
    (void)cli;
    printf("botboard %s (plugin ABI %d.%d)\n", PACKAGE_VERSION, BB_ABI_MAJOR, BB_ABI_MINOR);
    return BB_EXIT_OK;
}

int bb_cmd_check_config(bb_cli *cli)
{
    int code = BB_EXIT_OK;
    bb_app *app = bb_cli_open(cli, BB_APP_ALL | BB_APP_NO_CREATE, &code);
    static const bb_plugin_kind kinds[] = { BB_KIND_STORAGE, BB_KIND_SESSION, BB_KIND_UPSTREAM };
    if (!app) return code;
    bb_config_print(bb_app_config(app), stdout);
    for (size_t i = 0; i < 3; i++) {
        const bb_plugin *p = bb_app_plugin(app, kinds[i]);
        if (p) printf("# %s plugin: %s %s (%s)\n", bb_kind_name(kinds[i]), p->desc->name, p->desc->version, p->path);
    }
    fprintf(stderr, "%s: configuration OK\n", cli->config ? cli->config : "embedded defaults");
    bb_app_close(app);
    return BB_EXIT_OK;
}

static void print_plugin(void *ud, const char *path, const bb_plugin *p, const char *why)
{
    int *count = ud;
    if (p) {
        printf("%-9s %-10s %-10s %u.%-4u %s\n", bb_kind_name(p->desc->kind), p->desc->name, p->desc->version,
               p->desc->abi_major, p->desc->abi_minor, path);
    } else {
        printf("%-9s %-10s %-10s %-6s %s  # refused: %s\n", "-", "-", "-", "-", path, why);
    }
    (*count)++;
}

int bb_cmd_plugins(bb_cli *cli)
{
    bb_search_path sp;
    bb_config *cfg = NULL;
    char err[4096];
    size_t n_extra = 0;
    const char *const *extra = NULL;
    int count = 0;
    /* plugins.path from the config, if there is one and it is valid */
    if (cli->config) {
        cfg = bb_config_load(cli->config, err, sizeof err);
        if (!cfg || !bb_config_validate_core(cfg, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            bb_config_free(cfg);
            return BB_EXIT_USAGE;
        }
        bb_cfg_get_list(bb_config_root(cfg), "plugins.path", &n_extra, &extra, NULL);
    }
    bb_search_path_init(&sp, extra, n_extra);
    printf("%-9s %-10s %-10s %-6s %s\n", "KIND", "NAME", "VERSION", "ABI", "PATH");
    bb_plugin_scan(&sp, print_plugin, &count);
    if (!count) {
        fprintf(stderr, "no plugins found in:");
        for (size_t i = 0; i < sp.n; i++) fprintf(stderr, " %s", sp.dirs[i]);
        fputc('\n', stderr);
    }
    bb_search_path_free(&sp);
    bb_config_free(cfg);
    return BB_EXIT_OK;
}
