/*
 * core/cli.h — botboard(1): one table of commands, shared option parsing,
 * one way to report errors (a line on stderr, or JSON with --log-format json).
 * Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.
 */
#ifndef BB_CORE_CLI_H
#define BB_CORE_CLI_H

#include <stdbool.h>

#include "app.h"

enum { BB_EXIT_OK = 0, BB_EXIT_RUNTIME = 1, BB_EXIT_USAGE = 2 };

typedef struct bb_cli {
    const char *config;        /* -c FILE, BOTBOARD_CONFIG, installed default, or NULL */
    bool        json_errors;   /* --log-format json */
    const char *log_level;     /* --log-level, overrides config */
    int         argc;          /* arguments after the command name */
    char      **argv;
} bb_cli;

int bb_cli_fail(const bb_cli *cli, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Open the app for a command; prints the error and sets *code on failure. */
bb_app *bb_cli_open(const bb_cli *cli, unsigned flags, int *code);
/* "--name VALUE" among the command's arguments (NULL if absent). */
const char *bb_cli_opt(const bb_cli *cli, const char *name);
bool bb_cli_flag(const bb_cli *cli, const char *name);

int bb_cmd_serve(bb_cli *cli);
int bb_cmd_mcp_stdio(bb_cli *cli);
int bb_cmd_check_config(bb_cli *cli);
int bb_cmd_migrate(bb_cli *cli);
int bb_cmd_team(bb_cli *cli);
int bb_cmd_key(bb_cli *cli);
int bb_cmd_export(bb_cli *cli);
int bb_cmd_import(bb_cli *cli);
int bb_cmd_backup(bb_cli *cli);
int bb_cmd_plugins(bb_cli *cli);
int bb_cmd_version(bb_cli *cli);

#endif
