/*
 * core/config_print.c — the effective config as YAML (check-config), with
 * every secret masked, and the list of secrets for the log masker.
 */
#include "config_internal.h"

#include <string.h>

#define MASK "********"

static bool is_secret(const bb_cfg *n)
{
    return n->from_secret || (n->spec && (n->spec->flags & BB_CFG_SECRET));
}

static void print_scalar(FILE *out, const char *v)
{
    /* Quote anything YAML could read differently. */
    bool plain = v[0] && !strpbrk(v, ":#{}[],&*!|>'\"%@`\n") && v[0] != ' ' && v[0] != '-' &&
                 v[strlen(v) - 1] != ' ';
    if (plain) { fputs(v, out); return; }
    fputc('"', out);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', out);
        if (*p == '\n') { fputs("\\n", out); continue; }
        fputc(*p, out);
    }
    fputc('"', out);
}

static void print_node(FILE *out, const bb_cfg *n, int indent, bool masked)
{
    masked = masked || is_secret(n);
    for (size_t i = 0; i < n->n_kids; i++) {
        const bb_cfg *k = n->kids[i];
        bool kid_masked = masked || is_secret(k);
        fprintf(out, "%*s", indent, "");
        if (n->kind == BB_NODE_MAP) fprintf(out, "%s:", k->key);
        else fputs("-", out);
        if (k->kind == BB_NODE_SCALAR) {
            fputc(' ', out);
            if (kid_masked && k->value[0]) fputs(MASK, out);
            else print_scalar(out, k->value);
            fputc('\n', out);
        } else if (k->n_kids == 0) {
            fputs(k->kind == BB_NODE_MAP ? " {}\n" : " []\n", out);
        } else {
            fputc('\n', out);
            print_node(out, k, indent + 2, kid_masked);
        }
    }
}

void bb_config_print(const bb_config *c, FILE *out)
{
    fprintf(out, "# effective configuration of %s (secrets masked)\n",
            c->main_file ? c->main_file : "the embedded defaults");
    print_node(out, c->root, 0, false);
}

static void each_secret(const bb_cfg *n, bool inherited, void (*fn)(void *, const char *), void *ud)
{
    bool secret = inherited || is_secret(n);
    if (n->kind == BB_NODE_SCALAR && secret && n->value && n->value[0]) fn(ud, n->value);
    for (size_t i = 0; i < n->n_kids; i++) each_secret(n->kids[i], secret, fn, ud);
}

void bb_config_each_secret(const bb_config *c, void (*fn)(void *ud, const char *s), void *ud)
{
    each_secret(c->root, false, fn, ud);
}
