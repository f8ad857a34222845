/*
 * core/config.h — the configuration: YAML files → one merged, validated tree.
 *
 * Load order: the main file, then <its folder>/conf.d/NAME.yaml in name order;
 * mappings merge key by key, anything else is replaced by the later file.
 * Scalars may contain ${env:NAME} and ${file:/path} (relative to the file
 * that says it; trailing newline stripped); substituted values are secrets.
 * Every key is a row of a bb_config_key table (core/config_keys.c for the
 * core, the descriptor of each plugin for its subtree); the tables drive
 * validation, defaults, masking and botboard.yaml(5).  Errors are
 * "file:line:col: message".
 */
#ifndef BB_CORE_CONFIG_H
#define BB_CORE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <botboard/host.h>
#include <botboard/plugin.h>

typedef enum bb_node_kind { BB_NODE_SCALAR, BB_NODE_MAP, BB_NODE_SEQ } bb_node_kind;

struct bb_cfg {
    bb_node_kind kind;
    char        *key;            /* member name inside a mapping, else NULL */
    char        *value;          /* SCALAR: text after substitution */
    bool         from_secret;    /* value came through ${env:} / ${file:} */
    const char  *file;           /* owned by the config's file list */
    int          line, col;      /* 1-based; 0 for defaults */
    struct bb_cfg **kids;
    size_t       n_kids, cap_kids;
    const bb_config_key *spec;   /* the table row that validated it, if any */
    const char **items;          /* SEQ of scalars: kids' values, for cfg_list */
};

typedef struct bb_config bb_config;

/* The core's key table (core/config_keys.c). */
extern const bb_config_key bb_core_keys[];
extern const size_t bb_core_keys_count;

/* Parse and merge.  path == NULL means no file: embedded defaults only.
 * On error returns NULL with "file:line:col: message" lines in err (all
 * errors found, newline-separated, at most errlen bytes). */
bb_config *bb_config_load(const char *path, char *err, size_t errlen);
void       bb_config_free(bb_config *c);

/* Validate the core keys (types, ranges, unknown keys, cross-key rules) and
 * fill defaults.  Plugin subtrees are checked by bb_config_validate_plugin. */
bool bb_config_validate_core(bb_config *c, char *err, size_t errlen);
/* Validate "<kind>.<name>" against a plugin's table and fill its defaults. */
bool bb_config_validate_plugin(bb_config *c, const char *kind, const char *name,
                               const bb_config_key *keys, size_t n, char *err, size_t errlen);

const bb_cfg *bb_config_root(const bb_config *c);
const char   *bb_config_main_file(const bb_config *c);
const bb_cfg *bb_cfg_find(const bb_cfg *node, const char *dotted);

/* Typed access to validated values (defaults filled): fall back to `def`
 * only if the path is not declared (a programming error, logged once). */
const char *bb_cfg_str(const bb_cfg *root, const char *dotted, const char *def);
int64_t     bb_cfg_i64(const bb_cfg *root, const char *dotted, int64_t def);
bool        bb_cfg_bool(const bb_cfg *root, const char *dotted, bool def);
double      bb_cfg_dbl(const bb_cfg *root, const char *dotted, double def);

/* "file:line:col" of a node (or "<default>") into buf. */
const char *bb_cfg_where(const bb_cfg *node, char *buf, size_t len);

/* Every secret value in the tree (secret keys, substituted values), for the
 * log masker.  Calls fn for each. */
void bb_config_each_secret(const bb_config *c, void (*fn)(void *ud, const char *s), void *ud);

/* Print the effective config as YAML with secrets masked. */
void bb_config_print(const bb_config *c, FILE *out);

/* Parse helpers shared with validation and the typed getters. */
bool bb_parse_i64(const char *s, int64_t *out);
bool bb_parse_bool(const char *s, bool *out);
bool bb_parse_duration_ms(const char *s, int64_t *out);
bool bb_parse_size(const char *s, int64_t *out);

/* The bb_host_api config getters (core/config_getters.c). */
bb_status bb_cfg_get_string(const bb_cfg *node, const char *path, const char **out, bb_error *err);
bb_status bb_cfg_get_int(const bb_cfg *node, const char *path, int64_t *out, bb_error *err);
bb_status bb_cfg_get_bool(const bb_cfg *node, const char *path, bool *out, bb_error *err);
bb_status bb_cfg_get_double(const bb_cfg *node, const char *path, double *out, bb_error *err);
bb_status bb_cfg_get_list(const bb_cfg *node, const char *path, size_t *count,
                          const char *const **items, bb_error *err);
bb_status bb_cfg_fail(const bb_cfg *node, const char *path, bb_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
