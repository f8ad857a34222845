/*
 * core/config_validate.c — check a tree against key tables, fill defaults,
 * and apply the cross-key rules.
 */
#include "config_internal.h"
#include "session_seal.h"

#include <ctype.h>
#include <sodium.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 256

static const char *const plugin_kinds[] = { "storage", "session", "upstream" };

/* ---- scalar parsers ------------------------------------------------------ */

bool bb_parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v;
    if (!s || !*s || isspace((unsigned char)*s)) return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

bool bb_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, yes[i]) == 0) { *out = true; return true; }
        if (strcmp(s, no[i]) == 0) { *out = false; return true; }
    }
    return false;
}

/* number followed by a unit from the table; bare number uses the first unit */
typedef struct unit { const char *name; int64_t mult; } unit;

static bool parse_with_units(const char *s, const unit *units, size_t n, int64_t *out)
{
    char *end;
    long long v;
    if (!s || !isdigit((unsigned char)*s)) return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || v < 0) return false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(end, units[i].name) == 0) {
            if (v > INT64_MAX / units[i].mult) return false;
            *out = v * units[i].mult;
            return true;
        }
    }
    return false;
}

bool bb_parse_duration_ms(const char *s, int64_t *out)
{
    static const unit u[] = { { "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 } };
    return parse_with_units(s, u, sizeof u / sizeof u[0], out);
}

bool bb_parse_size(const char *s, int64_t *out)
{
    static const unit u[] = {
        { "", 1 }, { "B", 1 }, { "k", 1024 }, { "K", 1024 }, { "KiB", 1024 }, { "KB", 1000 },
        { "M", 1048576 }, { "MiB", 1048576 }, { "MB", 1000000 },
        { "G", 1073741824 }, { "GiB", 1073741824 }, { "GB", 1000000000 },
    };
    return parse_with_units(s, u, sizeof u / sizeof u[0], out);
}

/* ---- one value against its row ---------------------------------------------- */

static const char *kind_word(bb_node_kind k)
{
    return k == BB_NODE_MAP ? "a mapping" : k == BB_NODE_SEQ ? "a list" : "a single value";
}

static bool enum_has(const char *values, const char *v)
{
    size_t vl = strlen(v);
    const char *p = values;
    while (p && *p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == vl && strncmp(p, v, len) == 0) return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

static bool in_range(const bb_config_key *k, int64_t v)
{
    return k->min > k->max || (v >= k->min && v <= k->max);
}

static bool check_value(bb_cfg *n, const bb_config_key *k, const char *full, bb_errbuf *eb)
{
    int64_t iv;
    bool bv;
    n->spec = k;
    if (k->type == BB_CFG_MAP) {
        if (n->kind != BB_NODE_MAP) {
            bb_errbuf_add(eb, "%s:%d:%d: %s must be a mapping, not %s", n->file, n->line, n->col, full, kind_word(n->kind));
            return false;
        }
        return true;
    }
    if (k->type == BB_CFG_LIST) {
        if (n->kind != BB_NODE_SEQ) {
            bb_errbuf_add(eb, "%s:%d:%d: %s must be a list, not %s", n->file, n->line, n->col, full, kind_word(n->kind));
            return false;
        }
        free(n->items);
        n->items = calloc(n->n_kids + 1, sizeof *n->items);
        if (!n->items) { bb_errbuf_add(eb, "out of memory"); return false; }
        for (size_t i = 0; i < n->n_kids; i++) {
            if (n->kids[i]->kind != BB_NODE_SCALAR) {
                bb_errbuf_add(eb, "%s:%d:%d: items of %s must be single values", n->kids[i]->file,
                              n->kids[i]->line, n->kids[i]->col, full);
                return false;
            }
            n->items[i] = n->kids[i]->value;
        }
        return true;
    }
    if (n->kind != BB_NODE_SCALAR) {
        bb_errbuf_add(eb, "%s:%d:%d: %s must be a single value, not %s", n->file, n->line, n->col, full, kind_word(n->kind));
        return false;
    }
    switch (k->type) {
    case BB_CFG_STRING:
        return true;
    case BB_CFG_INT:
        if (!bb_parse_i64(n->value, &iv)) {
            bb_errbuf_add(eb, "%s:%d:%d: %s must be a whole number, not '%s'", n->file, n->line, n->col, full, n->value);
            return false;
        }
        break;
    case BB_CFG_DOUBLE: {
        char *end;
        double d;
        errno = 0;
        d = strtod(n->value, &end);
        if (errno || *end || end == n->value) {
            bb_errbuf_add(eb, "%s:%d:%d: %s must be a number, not '%s'", n->file, n->line, n->col, full, n->value);
            return false;
        }
        if (k->min <= k->max && (d < (double)k->min || d > (double)k->max)) {
            bb_errbuf_add(eb, "%s:%d:%d: %s: %s is out of range (%lld..%lld)", n->file, n->line, n->col, full,
                          n->value, (long long)k->min, (long long)k->max);
            return false;
        }
        return true;
    }
    case BB_CFG_BOOL:
        if (!bb_parse_bool(n->value, &bv)) {
            bb_errbuf_add(eb, "%s:%d:%d: %s must be true or false, not '%s'", n->file, n->line, n->col, full, n->value);
            return false;
        }
        return true;
    case BB_CFG_ENUM:
        if (!enum_has(k->enum_values, n->value)) {
            bb_errbuf_add(eb, "%s:%d:%d: %s must be one of %s, not '%s'", n->file, n->line, n->col, full,
                          k->enum_values, n->value);
            return false;
        }
        return true;
    case BB_CFG_DURATION:
        if (!bb_parse_duration_ms(n->value, &iv)) {
            bb_errbuf_add(eb, "%s:%d:%d: %s: '%s' is not a duration (e.g. 250ms, 30s, 5m, 2h)", n->file, n->line,
                          n->col, full, n->value);
            return false;
        }
        break;
    case BB_CFG_SIZE:
        if (!bb_parse_size(n->value, &iv)) {
            bb_errbuf_add(eb, "%s:%d:%d: %s: '%s' is not a size (e.g. 512, 64KiB, 1MiB)", n->file, n->line, n->col,
                          full, n->value);
            return false;
        }
        break;
    default:
        return true;
    }
    if (!in_range(k, iv)) {
        bb_errbuf_add(eb, "%s:%d:%d: %s: %s is out of range (%lld..%lld)", n->file, n->line, n->col, full,
                      n->value, (long long)k->min, (long long)k->max);
        return false;
    }
    return true;
}

/* ---- walking a mapping against a table ------------------------------------ */

static const bb_config_key *row_exact(const bb_config_key *t, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].path, path) == 0) return &t[i];
    return NULL;
}

static bool row_below(const bb_config_key *t, size_t n, const char *path)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < n; i++)
        if (strncmp(t[i].path, path, len) == 0 && t[i].path[len] == '.') return true;
    return false;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), prev[PATH_MAX_LEN + 1], cur[PATH_MAX_LEN + 1];
    if (la > PATH_MAX_LEN || lb > PATH_MAX_LEN) return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++) prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
    }
    return prev[lb];
}

/* The closest sibling name a table knows, for "did you mean". */
static const char *suggest(const bb_config_key *t, size_t n, const char *prefix, const char *key)
{
    static __thread char best[PATH_MAX_LEN];
    size_t plen = strlen(prefix), best_d = 3;
    best[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *rest, *dot;
        char cand[PATH_MAX_LEN];
        size_t d, len;
        if (strncmp(t[i].path, prefix, plen) != 0) continue;
        rest = t[i].path + plen;
        dot = strchr(rest, '.');
        len = dot ? (size_t)(dot - rest) : strlen(rest);
        if (len >= sizeof cand) continue;
        memcpy(cand, rest, len);
        cand[len] = '\0';
        d = edit_distance(cand, key);
        if (d < best_d) { best_d = d; snprintf(best, sizeof best, "%s%s", prefix, cand); }
    }
    return best[0] ? best : NULL;
}

/* Is prefix exactly "<kind>." for a plugin kind? */
static bool is_kind_prefix(const char *prefix)
{
    for (size_t i = 0; i < sizeof plugin_kinds / sizeof plugin_kinds[0]; i++) {
        size_t len = strlen(plugin_kinds[i]);
        if (strncmp(prefix, plugin_kinds[i], len) == 0 && prefix[len] == '.' && prefix[len + 1] == '\0')
            return true;
    }
    return false;
}

/* prefix: "" or "a.b." — the dotted path of map inside the table, with a
 * trailing dot.  shown: what to put before it in messages (the plugin
 * subtree's place in the whole file, or ""). */
static bool walk_map(bb_cfg *map, const char *prefix, const char *shown, const bb_config_key *t, size_t n,
                     bool allow_plugin_subtrees, bb_errbuf *eb)
{
    bool ok = true;
    for (size_t i = 0; i < map->n_kids; i++) {
        bb_cfg *kid = map->kids[i];
        char full[PATH_MAX_LEN], disp[PATH_MAX_LEN];
        const bb_config_key *row;
        if ((size_t)snprintf(full, sizeof full, "%s%s", prefix, kid->key) >= sizeof full) {
            bb_errbuf_add(eb, "%s:%d:%d: key path too long", kid->file, kid->line, kid->col);
            ok = false;
            continue;
        }
        snprintf(disp, sizeof disp, "%s%s", shown, full);
        if ((row = row_exact(t, n, full)) != NULL) {
            ok &= check_value(kid, row, disp, eb);
        } else if (row_below(t, n, full)) {
            if (kid->kind != BB_NODE_MAP) {
                bb_errbuf_add(eb, "%s:%d:%d: %s must be a mapping, not %s", kid->file, kid->line, kid->col, disp,
                              kind_word(kid->kind));
                ok = false;
            } else {
                char sub[PATH_MAX_LEN];
                snprintf(sub, sizeof sub, "%s.", full);
                ok &= walk_map(kid, sub, shown, t, n, allow_plugin_subtrees, eb);
            }
        } else if (allow_plugin_subtrees && is_kind_prefix(prefix) && kid->kind == BB_NODE_MAP) {
            /* "<kind>.<name>": a plugin's own subtree, checked against its
             * table once the plugin is loaded (bb_config_validate_plugin). */
        } else {
            const char *s = suggest(t, n, prefix, kid->key);
            bb_errbuf_add(eb, "%s:%d:%d: unknown key '%s'%s%s%s%s", kid->file, kid->line, kid->col, disp,
                          s ? " (did you mean '" : "", s ? shown : "", s ? s : "", s ? "'?)" : "");
            ok = false;
        }
    }
    return ok;
}

/* ---- defaults ------------------------------------------------------------- */

static bb_cfg *ensure_path(bb_cfg *root, const char *dotted, bb_errbuf *eb)
{
    bb_cfg *node = root;
    const char *p = dotted;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        bb_cfg *kid = bb_node_member(node, p, len);
        if (!kid) {
            kid = bb_node_new(BB_NODE_MAP, root->file, 0, 0);
            if (!kid || !(kid->key = strndup(p, len)) || !bb_node_add(node, kid)) {
                bb_node_free(kid);
                bb_errbuf_add(eb, "out of memory");
                return NULL;
            }
        }
        node = kid;
        p += len;
        if (*p == '.') p++;
    }
    return node;
}

static bool fill_defaults(bb_cfg *root, const char *prefix, const bb_config_key *t, size_t n, bb_errbuf *eb)
{
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        char full[PATH_MAX_LEN];
        const char *leaf;
        bb_cfg *parent, *node;
        snprintf(full, sizeof full, "%s%s", prefix, t[i].path);
        if (bb_cfg_find(root, full)) continue;
        if (t[i].flags & BB_CFG_REQUIRED) {
            bb_errbuf_add(eb, "%s:1:1: missing required key '%s' (%s)", root->file, full, t[i].doc);
            ok = false;
            continue;
        }
        leaf = strrchr(full, '.');
        if (leaf) {
            char parent_path[PATH_MAX_LEN];
            snprintf(parent_path, sizeof parent_path, "%.*s", (int)(leaf - full), full);
            parent = ensure_path(root, parent_path, eb);
            leaf++;
        } else {
            parent = root;
            leaf = full;
        }
        if (!parent || parent->kind != BB_NODE_MAP) { ok = false; continue; }
        if (t[i].type == BB_CFG_MAP) {
            node = bb_node_new(BB_NODE_MAP, root->file, 0, 0);
        } else if (t[i].type == BB_CFG_LIST) {
            node = bb_node_new(BB_NODE_SEQ, root->file, 0, 0);
            for (const char *p = t[i].def ? t[i].def : ""; node && *p;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                bb_cfg *item = bb_node_new(BB_NODE_SCALAR, root->file, 0, 0);
                if (!item || !(item->value = strndup(p, len)) || !bb_node_add(node, item)) {
                    bb_node_free(item);
                    bb_node_free(node);
                    node = NULL;
                    break;
                }
                p = comma ? comma + 1 : p + len;
            }
        } else {
            node = bb_node_new(BB_NODE_SCALAR, root->file, 0, 0);
            if (node && !(node->value = strdup(t[i].def ? t[i].def : ""))) { bb_node_free(node); node = NULL; }
        }
        if (!node || !(node->key = strdup(leaf)) || !bb_node_add(parent, node)) {
            bb_node_free(node);
            bb_errbuf_add(eb, "out of memory");
            ok = false;
            continue;
        }
        check_value(node, &t[i], full, eb);
    }
    return ok;
}

/* ---- relative paths ------------------------------------------------------- */

static bool resolve_paths(bb_cfg *root, const char *prefix, const bb_config_key *t, size_t n, bb_errbuf *eb)
{
    for (size_t i = 0; i < n; i++) {
        char full[PATH_MAX_LEN];
        bb_cfg *node;
        if (!(t[i].flags & BB_CFG_PATH)) continue;
        snprintf(full, sizeof full, "%s%s", prefix, t[i].path);
        node = (bb_cfg *)bb_cfg_find(root, full);
        if (!node) continue;
        bb_cfg **vals = node->kind == BB_NODE_SEQ ? node->kids : &node;
        size_t nv = node->kind == BB_NODE_SEQ ? node->n_kids : 1;
        for (size_t j = 0; j < nv; j++) {
            bb_cfg *v = vals[j];
            const char *slash;
            char *abs;
            /* A default (line 0) belongs to the main file: it resolves against
             * that file's folder too, like the value would if it were written
             * there (only the embedded defaults, with no file, stay relative
             * to the working directory). */
            if (v->kind != BB_NODE_SCALAR || !v->value[0] || v->value[0] == '/' || !v->file ||
                !(slash = strrchr(v->file, '/')))
                continue;
            if (asprintf(&abs, "%.*s/%s", (int)(slash - v->file), v->file, v->value) < 0) {
                bb_errbuf_add(eb, "out of memory");
                return false;
            }
            free(v->value);
            v->value = abs;
        }
        if (node->kind == BB_NODE_SEQ && node->items)
            for (size_t j = 0; j < node->n_kids; j++) node->items[j] = node->kids[j]->value;
    }
    return true;
}

/* ---- cross-key rules -------------------------------------------------------- */

static bool listen_is_loopback(const char *listen)
{
    return strncmp(listen, "127.", 4) == 0 || strncmp(listen, "localhost:", 10) == 0 ||
           strncmp(listen, "[::1]:", 6) == 0;
}

static bool parse_listen(const char *s)
{
    const char *colon = s[0] == '[' ? strstr(s, "]:") : strrchr(s, ':');
    int64_t port;
    if (!colon || colon == s) return false;
    if (s[0] == '[') colon++;
    return bb_parse_i64(colon + 1, &port) && port >= 0 && port <= 65535;
}

/* session.keys: each item "ID:BASE64(32 bytes)", ids unique.  The message
 * names the item's position and its id, never the key material. */
static bool check_session_keys(const bb_cfg *keys, bb_errbuf *eb)
{
    bool ok = true;
    if (sodium_init() < 0) {
        bb_errbuf_add(eb, "libsodium failed to initialise");
        return false;
    }
    for (size_t i = 0; i < keys->n_kids; i++) {
        const bb_cfg *item = keys->kids[i];
        bb_seal_key k, other;
        char why[256];
        if (item->kind != BB_NODE_SCALAR) continue;   /* reported by the type check */
        if (!bb_seal_key_parse(item->value, &k, why, sizeof why)) {
            bb_errbuf_add(eb, "%s:%d:%d: session.keys: %s", item->file, item->line, item->col, why);
            ok = false;
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (keys->kids[j]->kind == BB_NODE_SCALAR && bb_seal_key_parse(keys->kids[j]->value, &other, why, sizeof why) &&
                strcmp(other.id, k.id) == 0) {
                bb_errbuf_add(eb, "%s:%d:%d: session.keys: key id '%s' is used twice", item->file, item->line,
                              item->col, k.id);
                ok = false;
            }
            sodium_memzero(&other, sizeof other);
        }
        sodium_memzero(&k, sizeof k);
    }
    return ok;
}

static bool cross_rules(bb_cfg *root, bb_errbuf *eb)
{
    const bb_cfg *env = bb_cfg_find(root, "environment"), *auth = bb_cfg_find(root, "mcp.auth");
    const bb_cfg *listen = bb_cfg_find(root, "server.listen"), *keys = bb_cfg_find(root, "session.keys");
    const bb_cfg *cert = bb_cfg_find(root, "server.tls.cert_file"), *key = bb_cfg_find(root, "server.tls.key_file");
    const bb_cfg *base = bb_cfg_find(root, "storage.retry.base_ms"), *max = bb_cfg_find(root, "storage.retry.max_ms");
    bool prod = strcmp(env->value, "prod") == 0, ok = true;
    int64_t b, m;

    if (!parse_listen(listen->value)) {
        bb_errbuf_add(eb, "%s:%d:%d: server.listen must be host:port or [v6addr]:port, not '%s'", listen->file,
                      listen->line, listen->col, listen->value);
        ok = false;
    }
    if (strcmp(auth->value, "none") == 0 && prod) {
        bb_errbuf_add(eb, "%s:%d:%d: mcp.auth: none is not allowed with environment: prod", auth->file, auth->line,
                      auth->col);
        ok = false;
    } else if (strcmp(auth->value, "none") == 0 && !listen_is_loopback(listen->value)) {
        bb_errbuf_add(eb, "%s:%d:%d: mcp.auth: none serves without a key, so server.listen must be a loopback "
                      "address, not '%s'", auth->file, auth->line, auth->col, listen->value);
        ok = false;
    }
    if (keys->kind == BB_NODE_SEQ && !check_session_keys(keys, eb)) ok = false;
    if (prod && keys->n_kids == 0) {
        bb_errbuf_add(eb, "%s:%d:%d: environment: prod needs session.keys (sessions must be sealed with a "
                      "persistent key)", env->file, env->line, env->col);
        ok = false;
    }
    if (!cert->value[0] != !key->value[0]) {
        const bb_cfg *set = cert->value[0] ? cert : key;
        bb_errbuf_add(eb, "%s:%d:%d: server.tls needs both cert_file and key_file", set->file, set->line, set->col);
        ok = false;
    }
    if (bb_parse_i64(base->value, &b) && bb_parse_i64(max->value, &m) && b > m) {
        bb_errbuf_add(eb, "%s:%d:%d: storage.retry.base_ms (%lld) is larger than max_ms (%lld)", base->file,
                      base->line, base->col, (long long)b, (long long)m);
        ok = false;
    }
    return ok;
}

bool bb_config_validate_core(bb_config *c, char *err, size_t errlen)
{
    bb_errbuf eb = { err, errlen, 0 };
    if (err && errlen) err[0] = '\0';
    walk_map(c->root, "", "", bb_core_keys, bb_core_keys_count, true, &eb);
    if (eb.count) return false;
    fill_defaults(c->root, "", bb_core_keys, bb_core_keys_count, &eb);
    resolve_paths(c->root, "", bb_core_keys, bb_core_keys_count, &eb);
    if (eb.count) return false;
    cross_rules(c->root, &eb);
    return eb.count == 0;
}

bool bb_config_validate_plugin(bb_config *c, const char *kind, const char *name,
                               const bb_config_key *keys, size_t n, char *err, size_t errlen)
{
    bb_errbuf eb = { err, errlen, 0 };
    char path[PATH_MAX_LEN], shown[PATH_MAX_LEN];
    bb_cfg *sub;
    if (err && errlen) err[0] = '\0';
    snprintf(path, sizeof path, "%s.%s", kind, name);
    snprintf(shown, sizeof shown, "%s.", path);
    sub = (bb_cfg *)bb_cfg_find(c->root, path);
    if (sub && sub->kind != BB_NODE_MAP) {
        bb_errbuf_add(&eb, "%s:%d:%d: %s must be a mapping", sub->file, sub->line, sub->col, path);
        return false;
    }
    if (sub) walk_map(sub, "", shown, keys, n, false, &eb);
    if (eb.count) return false;
    fill_defaults(c->root, shown, keys, n, &eb);
    resolve_paths(c->root, shown, keys, n, &eb);
    return eb.count == 0;
}
