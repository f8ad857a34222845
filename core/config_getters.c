/*
 * core/config_getters.c — typed reads of validated values, for the core
 * (bb_cfg_str/i64/...) and for plugins (the bb_host_api cfg_* members).
 */
#include "config_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static bb_status lookup(const bb_cfg *node, const char *path, bb_node_kind kind, const bb_cfg **out, bb_error *err)
{
    const bb_cfg *n = bb_cfg_find(node, path);
    if (!n) return bb_fail(err, BB_INTERNAL, path, "config key '%s' is not declared in any key table", path);
    if (n->kind != kind) return bb_fail(err, BB_INTERNAL, path, "config key '%s' has the wrong shape", path);
    *out = n;
    return BB_OK;
}

bb_status bb_cfg_get_string(const bb_cfg *node, const char *path, const char **out, bb_error *err)
{
    const bb_cfg *n = NULL;
    bb_status st = lookup(node, path, BB_NODE_SCALAR, &n, err);
    if (st == BB_OK) *out = n->value;
    return st;
}

bb_status bb_cfg_get_int(const bb_cfg *node, const char *path, int64_t *out, bb_error *err)
{
    const bb_cfg *n = NULL;
    bb_status st = lookup(node, path, BB_NODE_SCALAR, &n, err);
    bool ok;
    if (st != BB_OK) return st;
    switch (n->spec ? n->spec->type : BB_CFG_INT) {
    case BB_CFG_DURATION: ok = bb_parse_duration_ms(n->value, out); break;
    case BB_CFG_SIZE:     ok = bb_parse_size(n->value, out); break;
    default:              ok = bb_parse_i64(n->value, out); break;
    }
    return ok ? BB_OK : bb_fail(err, BB_INTERNAL, path, "config key '%s' is not a number", path);
}

bb_status bb_cfg_get_bool(const bb_cfg *node, const char *path, bool *out, bb_error *err)
{
    const bb_cfg *n = NULL;
    bb_status st = lookup(node, path, BB_NODE_SCALAR, &n, err);
    if (st != BB_OK) return st;
    return bb_parse_bool(n->value, out) ? BB_OK : bb_fail(err, BB_INTERNAL, path, "config key '%s' is not a boolean", path);
}

bb_status bb_cfg_get_double(const bb_cfg *node, const char *path, double *out, bb_error *err)
{
    const bb_cfg *n = NULL;
    char *end;
    bb_status st = lookup(node, path, BB_NODE_SCALAR, &n, err);
    if (st != BB_OK) return st;
    *out = strtod(n->value, &end);
    return *end ? bb_fail(err, BB_INTERNAL, path, "config key '%s' is not a number", path) : BB_OK;
}

bb_status bb_cfg_get_list(const bb_cfg *node, const char *path, size_t *count, const char *const **items, bb_error *err)
{
    static const char *const empty[] = { NULL };
    const bb_cfg *n = NULL;
    bb_status st = lookup(node, path, BB_NODE_SEQ, &n, err);
    if (st != BB_OK) return st;
    *count = n->n_kids;
    *items = n->items ? (const char *const *)n->items : empty;
    return BB_OK;
}

bb_status bb_cfg_fail(const bb_cfg *node, const char *path, bb_error *err, const char *fmt, ...)
{
    const bb_cfg *n = bb_cfg_find(node, path);
    char where[512], msg[BB_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bb_cfg_where(n ? n : node, where, sizeof where);
    return bb_fail(err, BB_INVALID, path, "%s: %s", where, msg);
}

/* Core conveniences: the core's own keys are always declared and filled. */
const char *bb_cfg_str(const bb_cfg *root, const char *dotted, const char *def)
{
    const char *v;
    return bb_cfg_get_string(root, dotted, &v, NULL) == BB_OK ? v : def;
}

int64_t bb_cfg_i64(const bb_cfg *root, const char *dotted, int64_t def)
{
    int64_t v;
    return bb_cfg_get_int(root, dotted, &v, NULL) == BB_OK ? v : def;
}

bool bb_cfg_bool(const bb_cfg *root, const char *dotted, bool def)
{
    bool v;
    return bb_cfg_get_bool(root, dotted, &v, NULL) == BB_OK ? v : def;
}

double bb_cfg_dbl(const bb_cfg *root, const char *dotted, double def)
{
    double v;
    return bb_cfg_get_double(root, dotted, &v, NULL) == BB_OK ? v : def;
}
