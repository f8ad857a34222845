/*
 * core/cli_io.c — export (stdout) and import (stdin) as JSON lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "record_json.h"

#define MAX_LINE (1 << 20)

static bb_status write_record(void *ud, const bb_record *rec)
{
    char *line = bb_record_to_json(rec);
    (void)ud;
    if (!line) return BB_INTERNAL;
    if (fputs(line, stdout) == EOF || fputc('\n', stdout) == EOF) { free(line); return BB_INTERNAL; }
    free(line);
    return BB_OK;
}

int bb_cmd_export(bb_cli *cli)
{
    int code = 0;
    bb_app *app = bb_cli_open(cli, BB_APP_STORAGE, &code);
    bb_storage *st;
    const bb_storage_ops *ops;
    bb_call call = { "cli", NULL, 0 };
    bb_error err;
    if (!app) return code;
    ops = bb_app_storage(app, &st);
    bb_error_clear(&err);
    if (ops->export_all(st, &call, write_record, NULL, &err) != BB_OK)
        code = bb_cli_fail(cli, BB_EXIT_RUNTIME, "export: %s", err.msg[0] ? err.msg : "write failed");
    if (fflush(stdout) != 0) code = bb_cli_fail(cli, BB_EXIT_RUNTIME, "export: cannot write to stdout");
    bb_app_close(app);
    return code;
}

typedef struct line_source {
    char  *buf;
    size_t cap;
    long   line_no;
    bb_record current;
} line_source;

static bb_status next_record(void *ud, bb_record *rec, bb_error *err)
{
    line_source *src = ud;
    ssize_t n;
    char why[256];
    bb_record_clear(&src->current);
    for (;;) {
        n = getline(&src->buf, &src->cap, stdin);
        if (n < 0) return BB_NOT_FOUND;   /* end of input */
        src->line_no++;
        if (n > MAX_LINE) return bb_fail(err, BB_INVALID, NULL, "stdin:%ld: line longer than 1 MiB", src->line_no);
        while (n > 0 && (src->buf[n - 1] == '\n' || src->buf[n - 1] == '\r')) src->buf[--n] = '\0';
        if (n > 0) break;   /* skip blank lines */
    }
    if (!bb_record_from_json(src->buf, &src->current, why, sizeof why))
        return bb_fail(err, BB_INVALID, NULL, "stdin:%ld: %s", src->line_no, why);
    *rec = src->current;   /* shallow: the source owns the strings until the next call */
    return BB_OK;
}

int bb_cmd_import(bb_cli *cli)
{
    int code = 0;
    bb_app *app = bb_cli_open(cli, BB_APP_STORAGE | BB_APP_MIGRATE, &code);
    bb_storage *st;
    const bb_storage_ops *ops;
    bb_call call = { "cli", NULL, 0 };
    bb_error err;
    line_source src = { 0 };
    if (!app) return code;
    ops = bb_app_storage(app, &st);
    bb_error_clear(&err);
    if (ops->import_all(st, &call, next_record, &src, &err) != BB_OK) {
        /* Import stops at the first bad record, so the line just read is the
         * culprit; parse errors already carry "stdin:N:". */
        char where[32] = "";
        if (strncmp(err.msg, "stdin:", 6) != 0 && src.line_no > 0)
            snprintf(where, sizeof where, "stdin:%ld: ", src.line_no);
        code = bb_cli_fail(cli, err.code == BB_INVALID || err.code == BB_CONFLICT ? BB_EXIT_USAGE : BB_EXIT_RUNTIME,
                           "import failed, nothing imported: %s%s", where, err.msg);
    }
    else
        fprintf(stderr, "imported %ld lines\n", src.line_no);
    bb_record_clear(&src.current);
    free(src.buf);
    bb_app_close(app);
    return code;
}
