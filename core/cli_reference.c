/*
 * core/cli_reference.c — `botboard config-reference`: every config key from
 * the key tables (the core's and each plugin's found on the search path),
 * as text or as the KEYS section of botboard.yaml(5).  The man page is
 * generated from this at build time, so it cannot drift from the code.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char *type_name(bb_cfg_type t)
{
    static const char *const names[] = { "string", "integer", "boolean", "number", "enum", "duration", "size",
                                         "list", "mapping" };
    return (size_t)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* roff-escape: backslashes and leading dots/quotes. */
static void roff(FILE *out, const char *s)
{
    if (*s == '.' || *s == '\'') fputs("\\&", out);
    for (; *s; s++) {
        if (*s == '\\') fputs("\\e", out);
        else if (*s == '-') fputs("\\-", out);
        else fputc(*s, out);
    }
}

static void print_key(FILE *out, bool man, const char *prefix, const bb_config_key *k)
{
    char range[96] = "";
    if (k->min <= k->max && (k->type == BB_CFG_INT || k->type == BB_CFG_DURATION || k->type == BB_CFG_SIZE))
        snprintf(range, sizeof range, ", %lld..%lld%s", (long long)k->min, (long long)k->max,
                 k->type == BB_CFG_DURATION ? " ms" : k->type == BB_CFG_SIZE ? " bytes" : "");
    if (man) {
        fprintf(out, ".TP\n.B ");
        roff(out, prefix);
        roff(out, k->path);
        fprintf(out, "\n%s", type_name(k->type));
        if (k->type == BB_CFG_ENUM) { fputs(" (", out); roff(out, k->enum_values); fputs(")", out); }
        roff(out, range);
        if (k->flags & BB_CFG_REQUIRED) fputs(", required", out);
        else if (k->def && *k->def) { fputs(", default \\fB", out); roff(out, k->def); fputs("\\fR", out); }
        else fputs(", default empty", out);
        fputs(k->flags & BB_CFG_RELOADABLE ? ", reloadable" : ", restart to change", out);
        if (k->flags & BB_CFG_SECRET) fputs(", secret (masked)", out);
        if (k->flags & BB_CFG_PATH) fputs(", path relative to its file", out);
        fputs(".\n", out);
        roff(out, k->doc);
        fputs("\n", out);
    } else {
        fprintf(out, "%s%s  (%s%s%s%s; default: %s)\n    %s\n", prefix, k->path, type_name(k->type), range,
                k->flags & BB_CFG_RELOADABLE ? ", reloadable" : "", k->flags & BB_CFG_SECRET ? ", secret" : "",
                k->flags & BB_CFG_REQUIRED ? "(required)" : k->def && *k->def ? k->def : "(empty)", k->doc);
    }
}

typedef struct ref_ctx { FILE *out; bool man; } ref_ctx;

static void print_plugin_keys(void *ud, const char *path, const bb_plugin *p, const char *why)
{
    ref_ctx *rc = ud;
    char prefix[128];
    (void)path;
    (void)why;
    if (!p || !p->desc->n_config_keys || strcmp(p->desc->version, "test") == 0) return;
    snprintf(prefix, sizeof prefix, "%s.%s.", bb_kind_name(p->desc->kind), p->desc->name);
    if (rc->man) { fputs(".SS ", rc->out); roff(rc->out, prefix); fputs(" (plugin ", rc->out); roff(rc->out, p->desc->name); fputs(")\n", rc->out); }
    else fprintf(rc->out, "\n[%s plugin %s %s]\n", bb_kind_name(p->desc->kind), p->desc->name, p->desc->version);
    for (size_t i = 0; i < p->desc->n_config_keys; i++) print_key(rc->out, rc->man, prefix, &p->desc->config_keys[i]);
}

int bb_cmd_config_reference(bb_cli *cli)
{
    ref_ctx rc = { stdout, bb_cli_flag(cli, "--man") };
    bb_search_path sp;
    char section[64] = "";
    for (size_t i = 0; i < bb_core_keys_count; i++) {
        const char *dot = strchr(bb_core_keys[i].path, '.');
        size_t len = dot ? (size_t)(dot - bb_core_keys[i].path) : strlen(bb_core_keys[i].path);
        if (strlen(section) != len || strncmp(section, bb_core_keys[i].path, len) != 0) {
            snprintf(section, sizeof section, "%.*s", (int)len, bb_core_keys[i].path);
            if (rc.man) { fputs(".SS ", stdout); roff(stdout, section); fputc('\n', stdout); }
            else printf("\n[%s]\n", section);
        }
        print_key(stdout, rc.man, "", &bb_core_keys[i]);
    }
    bb_search_path_init(&sp, NULL, 0);
    bb_plugin_scan(&sp, print_plugin_keys, &rc);
    bb_search_path_free(&sp);
    return ferror(stdout) ? BB_EXIT_RUNTIME : BB_EXIT_OK;
}
