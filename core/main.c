/*
 * core/main.c — botboard(1): global options, then one command from the table.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "log.h"

typedef struct command {
    const char *name;
    int (*run)(bb_cli *cli);
    const char *usage;
    const char *help;
} command;

static const command commands[] = {
    { "serve",        bb_cmd_serve,        "serve [-c FILE]",                  "run the server" },
    { "mcp-stdio",    bb_cmd_mcp_stdio,    "mcp-stdio [-c FILE]",              "MCP over stdin/stdout (team from mcp.team)" },
    { "check-config", bb_cmd_check_config, "check-config [-c FILE]",           "validate, load plugins, print the effective config (secrets masked)" },
    { "migrate",      bb_cmd_migrate,      "migrate [-c FILE] [--status]",     "apply pending schema migrations, or list them" },
    { "team",         bb_cmd_team,         "team create NAME | team list",     "manage teams" },
    { "key",          bb_cmd_key,          "key create --team NAME [--label L] | key list --team NAME | key revoke ID",
                                                                               "manage API keys (create prints the key once, on stdout)" },
    { "export",       bb_cmd_export,       "export > FILE.jsonl",              "write every team, key hash and post as JSON lines" },
    { "import",       bb_cmd_import,       "import < FILE.jsonl",              "load an export, all or nothing" },
    { "backup",       bb_cmd_backup,       "backup FILE",                      "consistent online snapshot of the database" },
    { "plugins",      bb_cmd_plugins,      "plugins",                          "list plugins found: kind, name, version, ABI, path" },
    { "version",      bb_cmd_version,      "version",                          "print the version" },
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

int bb_cli_fail(const bb_cli *cli, int code, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cli && cli->json_errors) {
        json_t *j = json_pack("{s:s, s:i}", "error", msg, "exit", code);
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        fprintf(stderr, "%s\n", text ? text : msg);
        free(text);
        json_decref(j);
    } else {
        fprintf(stderr, "botboard: %s\n", msg);
    }
    return code;
}

const char *bb_cli_opt(const bb_cli *cli, const char *name)
{
    for (int i = 0; i + 1 < cli->argc; i++)
        if (strcmp(cli->argv[i], name) == 0) return cli->argv[i + 1];
    return NULL;
}

bool bb_cli_flag(const bb_cli *cli, const char *name)
{
    for (int i = 0; i < cli->argc; i++)
        if (strcmp(cli->argv[i], name) == 0) return true;
    return false;
}

bb_app *bb_cli_open(const bb_cli *cli, unsigned flags, int *code)
{
    bb_error err;
    bb_app *app = bb_app_open(cli->config, flags, &err);
    if (!app) {
        *code = err.code == BB_INVALID ? BB_EXIT_USAGE : BB_EXIT_RUNTIME;
        if (cli->json_errors) bb_cli_fail(cli, *code, "%s", err.msg);
        else fprintf(stderr, "%s\n", err.msg);   /* already "file:line:col: message" lines */
        return NULL;
    }
    if (cli->log_level) {
        bb_log_level lvl;
        if (bb_log_parse_level(cli->log_level, &lvl)) bb_log_set_level(lvl);
    }
    return app;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: botboard [-c FILE] [--log-format json|text] [--log-level LEVEL] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\n'botboard COMMAND --help' shows one command; see botboard(1) and botboard.yaml(5).\n");
}

static const char *default_config(void)
{
    static char path[1024];
    const char *env = getenv("BOTBOARD_CONFIG");
    if (env && *env) return env;
    snprintf(path, sizeof path, "%s/botboard.yaml", BB_SYSCONF_DIR);
    return access(path, R_OK) == 0 ? path : NULL;
}

int main(int argc, char **argv)
{
    bb_cli cli = { 0 };
    const char *cmd = NULL;
    int i;
    char **rest;
    int n_rest = 0;

    rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) return BB_EXIT_RUNTIME;
    /* Global options may come before or after the command name. */
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) cli.config = argv[++i];
        else if (strcmp(a, "--log-format") == 0 && i + 1 < argc) {
            const char *f = argv[++i];
            bb_log_format fmt;
            if (!bb_log_parse_format(f, &fmt)) { free(rest); return bb_cli_fail(&cli, BB_EXIT_USAGE, "--log-format takes auto, json or text, not '%s'", f); }
            cli.json_errors = fmt == BB_LOG_FMT_JSON;
            bb_log_configure(BB_LOG_INFO, fmt);
        } else if (strcmp(a, "--log-level") == 0 && i + 1 < argc) cli.log_level = argv[++i];
        else if ((strcmp(a, "-c") == 0 || strcmp(a, "--log-format") == 0 || strcmp(a, "--log-level") == 0)) {
            free(rest);
            return bb_cli_fail(&cli, BB_EXIT_USAGE, "%s needs a value", a);
        } else if (!cmd && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) { usage(stdout); free(rest); return 0; }
        else if (!cmd && (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0)) cmd = "version";
        else if (!cmd && a[0] != '-') cmd = a;
        else rest[n_rest++] = argv[i];
    }
    if (!cli.config) cli.config = default_config();
    cli.argc = n_rest;
    cli.argv = rest;
    if (!cmd) { usage(stderr); free(rest); return BB_EXIT_USAGE; }
    for (size_t c = 0; c < N_COMMANDS; c++) {
        if (strcmp(commands[c].name, cmd) != 0) continue;
        if (bb_cli_flag(&cli, "--help") || bb_cli_flag(&cli, "-h")) {
            printf("usage: botboard %s\n\n%s\n", commands[c].usage, commands[c].help);
            free(rest);
            return 0;
        }
        int code = commands[c].run(&cli);
        free(rest);
        return code;
    }
    free(rest);
    usage(stderr);
    return bb_cli_fail(&cli, BB_EXIT_USAGE, "unknown command '%s'", cmd);
}
