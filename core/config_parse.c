/*
 * core/config_parse.c — YAML files → one merged bb_cfg tree with positions.
 */
#include "config_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define MAX_CONFD_FILES 256
#define MAX_SECRET_FILE (64 * 1024)
#define MAX_DEPTH       32

void bb_errbuf_add(bb_errbuf *eb, const char *fmt, ...)
{
    va_list ap;
    size_t used;
    eb->count++;
    if (!eb->buf || eb->len == 0) return;
    used = strlen(eb->buf);
    if (used + 2 >= eb->len) return;
    if (used) { eb->buf[used++] = '\n'; eb->buf[used] = '\0'; }
    va_start(ap, fmt);
    vsnprintf(eb->buf + used, eb->len - used, fmt, ap);
    va_end(ap);
}

bb_cfg *bb_node_new(bb_node_kind kind, const char *file, int line, int col)
{
    bb_cfg *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->file = file;
    n->line = line;
    n->col = col;
    return n;
}

void bb_node_free(bb_cfg *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->n_kids; i++) bb_node_free(n->kids[i]);
    free(n->kids);
    free(n->items);
    free(n->key);
    free(n->value);
    free(n);
}

bool bb_node_add(bb_cfg *parent, bb_cfg *kid)
{
    if (parent->n_kids == parent->cap_kids) {
        size_t cap = parent->cap_kids ? parent->cap_kids * 2 : 8;
        bb_cfg **k = realloc(parent->kids, cap * sizeof *k);
        if (!k) return false;
        parent->kids = k;
        parent->cap_kids = cap;
    }
    parent->kids[parent->n_kids++] = kid;
    return true;
}

bb_cfg *bb_node_member(const bb_cfg *map, const char *key, size_t keylen)
{
    if (!map || map->kind != BB_NODE_MAP) return NULL;
    for (size_t i = 0; i < map->n_kids; i++) {
        const char *k = map->kids[i]->key;
        if (k && strlen(k) == keylen && memcmp(k, key, keylen) == 0) return map->kids[i];
    }
    return NULL;
}

const char *bb_config_intern_file(bb_config *c, const char *path)
{
    char **f;
    for (size_t i = 0; i < c->n_files; i++)
        if (strcmp(c->files[i], path) == 0) return c->files[i];
    f = realloc(c->files, (c->n_files + 1) * sizeof *f);
    if (!f) return NULL;
    c->files = f;
    c->files[c->n_files] = strdup(path);
    if (!c->files[c->n_files]) return NULL;
    return c->files[c->n_files++];
}

/* ---- ${env:NAME} / ${file:/path} ----------------------------------------- */

static char *dirname_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static char *read_secret_file(const char *path, const char *base_dir, char *why, size_t whylen)
{
    char full[4096];
    FILE *f;
    char *buf;
    size_t n;
    if (path[0] == '/') snprintf(full, sizeof full, "%s", path);
    else snprintf(full, sizeof full, "%s/%s", base_dir, path);
    f = fopen(full, "rb");
    if (!f) { snprintf(why, whylen, "cannot read %s: %s", full, strerror(errno)); return NULL; }
    buf = malloc(MAX_SECRET_FILE + 1);
    if (!buf) { fclose(f); snprintf(why, whylen, "out of memory"); return NULL; }
    n = fread(buf, 1, MAX_SECRET_FILE + 1, f);
    fclose(f);
    if (n > MAX_SECRET_FILE) { free(buf); snprintf(why, whylen, "%s is larger than 64 KiB", full); return NULL; }
    buf[n] = '\0';
    if (strlen(buf) != n) { free(buf); snprintf(why, whylen, "%s contains a NUL byte", full); return NULL; }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
    return buf;
}

/* Expand every ${...} in text.  Returns malloc'd text, *secret set when
 * anything was substituted; NULL with why on error. */
static char *substitute(const char *text, const char *base_dir, bool *secret, char *why, size_t whylen)
{
    size_t cap = strlen(text) + 1, len = 0;
    char *out = malloc(cap);
    const char *p = text;
    if (!out) { snprintf(why, whylen, "out of memory"); return NULL; }
    while (*p) {
        const char *val = NULL;
        char *owned = NULL;
        size_t vlen;
        if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p + 2, '}');
            char ref[1024];
            size_t rlen;
            if (!end) { snprintf(why, whylen, "unterminated ${ in value"); free(out); return NULL; }
            rlen = (size_t)(end - (p + 2));
            if (rlen >= sizeof ref) { snprintf(why, whylen, "${...} reference too long"); free(out); return NULL; }
            memcpy(ref, p + 2, rlen);
            ref[rlen] = '\0';
            if (strncmp(ref, "env:", 4) == 0) {
                val = getenv(ref + 4);
                if (!ref[4]) { snprintf(why, whylen, "${env:} needs a variable name"); free(out); return NULL; }
                if (!val) { snprintf(why, whylen, "environment variable %s is not set", ref + 4); free(out); return NULL; }
            } else if (strncmp(ref, "file:", 5) == 0) {
                if (!ref[5]) { snprintf(why, whylen, "${file:} needs a path"); free(out); return NULL; }
                owned = read_secret_file(ref + 5, base_dir, why, whylen);
                if (!owned) { free(out); return NULL; }
                val = owned;
            } else {
                snprintf(why, whylen, "unknown reference ${%s}: use ${env:NAME} or ${file:PATH}", ref);
                free(out);
                return NULL;
            }
            *secret = true;
            p = end + 1;
        }
        vlen = val ? strlen(val) : 1;
        if (len + vlen + 1 > cap) {
            char *bigger;
            while (len + vlen + 1 > cap) cap *= 2;
            bigger = realloc(out, cap);
            if (!bigger) { free(owned); free(out); snprintf(why, whylen, "out of memory"); return NULL; }
            out = bigger;
        }
        if (val) { memcpy(out + len, val, vlen); len += vlen; }
        else out[len++] = *p++;
        free(owned);
    }
    out[len] = '\0';
    return out;
}

/* ---- YAML document → tree ---------------------------------------------- */

typedef struct build_ctx {
    bb_config  *cfg;
    yaml_document_t *doc;
    const char *file;
    char       *base_dir;
    bb_errbuf  *eb;
} build_ctx;

static bb_cfg *build_node(build_ctx *bc, yaml_node_t *yn, int depth)
{
    bb_cfg *n;
    int line = (int)yn->start_mark.line + 1, col = (int)yn->start_mark.column + 1;
    if (depth > MAX_DEPTH) {
        bb_errbuf_add(bc->eb, "%s:%d:%d: nesting deeper than %d levels", bc->file, line, col, MAX_DEPTH);
        return NULL;
    }
    switch (yn->type) {
    case YAML_SCALAR_NODE: {
        char why[256];
        n = bb_node_new(BB_NODE_SCALAR, bc->file, line, col);
        if (!n) return NULL;
        n->value = substitute((const char *)yn->data.scalar.value, bc->base_dir, &n->from_secret,
                              why, sizeof why);
        if (!n->value) {
            bb_errbuf_add(bc->eb, "%s:%d:%d: %s", bc->file, line, col, why);
            bb_node_free(n);
            return NULL;
        }
        return n;
    }
    case YAML_SEQUENCE_NODE:
        n = bb_node_new(BB_NODE_SEQ, bc->file, line, col);
        if (!n) return NULL;
        for (yaml_node_item_t *it = yn->data.sequence.items.start; it < yn->data.sequence.items.top; it++) {
            bb_cfg *kid = build_node(bc, yaml_document_get_node(bc->doc, *it), depth + 1);
            if (!kid || !bb_node_add(n, kid)) { bb_node_free(kid); bb_node_free(n); return NULL; }
        }
        return n;
    case YAML_MAPPING_NODE:
        n = bb_node_new(BB_NODE_MAP, bc->file, line, col);
        if (!n) return NULL;
        for (yaml_node_pair_t *pr = yn->data.mapping.pairs.start; pr < yn->data.mapping.pairs.top; pr++) {
            yaml_node_t *kn = yaml_document_get_node(bc->doc, pr->key);
            yaml_node_t *vn = yaml_document_get_node(bc->doc, pr->value);
            int kl = (int)kn->start_mark.line + 1, kc = (int)kn->start_mark.column + 1;
            const char *key;
            bb_cfg *kid;
            if (kn->type != YAML_SCALAR_NODE) {
                bb_errbuf_add(bc->eb, "%s:%d:%d: mapping keys must be plain names", bc->file, kl, kc);
                bb_node_free(n);
                return NULL;
            }
            key = (const char *)kn->data.scalar.value;
            if (bb_node_member(n, key, strlen(key))) {
                bb_errbuf_add(bc->eb, "%s:%d:%d: duplicate key '%s'", bc->file, kl, kc, key);
                bb_node_free(n);
                return NULL;
            }
            kid = build_node(bc, vn, depth + 1);
            if (!kid) { bb_node_free(n); return NULL; }
            kid->key = strdup(key);
            /* Errors about a member point at its key, where the reader looks. */
            kid->line = kl;
            kid->col = kc;
            if (!kid->key || !bb_node_add(n, kid)) { bb_node_free(kid); bb_node_free(n); return NULL; }
        }
        return n;
    default:
        bb_errbuf_add(bc->eb, "%s:%d:%d: unsupported YAML node", bc->file, line, col);
        return NULL;
    }
}

/* Parse one file into a tree (NULL + error on failure; an empty file is an empty map). */
static bb_cfg *parse_file(bb_config *c, const char *path, bb_errbuf *eb)
{
    FILE *f = fopen(path, "rb");
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    bb_cfg *tree = NULL;
    build_ctx bc;
    const char *file = bb_config_intern_file(c, path);

    if (!file) { bb_errbuf_add(eb, "%s: out of memory", path); if (f) fclose(f); return NULL; }
    if (!f) { bb_errbuf_add(eb, "%s:1:1: cannot open: %s", path, strerror(errno)); return NULL; }
    if (!yaml_parser_initialize(&parser)) { fclose(f); bb_errbuf_add(eb, "%s: out of memory", path); return NULL; }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        bb_errbuf_add(eb, "%s:%zu:%zu: YAML syntax error: %s%s%s", path,
                      parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                      parser.problem ? parser.problem : "invalid document",
                      parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        fclose(f);
        return NULL;
    }
    root = yaml_document_get_root_node(&doc);
    if (!root) {
        tree = bb_node_new(BB_NODE_MAP, file, 1, 1);
    } else if (root->type != YAML_MAPPING_NODE) {
        bb_errbuf_add(eb, "%s:%zu:%zu: the top level must be a mapping of settings", path,
                      root->start_mark.line + 1, root->start_mark.column + 1);
    } else {
        bc.cfg = c;
        bc.doc = &doc;
        bc.file = file;
        bc.base_dir = dirname_of(path);
        bc.eb = eb;
        if (bc.base_dir) tree = build_node(&bc, root, 0);
        free(bc.base_dir);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return tree;
}

/* Merge src into dst: mappings key by key, everything else replaced. */
static void merge_into(bb_cfg *dst, bb_cfg *src)
{
    for (size_t i = 0; i < src->n_kids; i++) {
        bb_cfg *s = src->kids[i];
        bb_cfg *d = bb_node_member(dst, s->key, strlen(s->key));
        if (d && d->kind == BB_NODE_MAP && s->kind == BB_NODE_MAP) {
            merge_into(d, s);
            continue;
        }
        src->kids[i] = NULL;
        if (d) {
            for (size_t j = 0; j < dst->n_kids; j++)
                if (dst->kids[j] == d) { dst->kids[j] = s; break; }
            bb_node_free(d);
        } else if (!bb_node_add(dst, s)) {
            bb_node_free(s);
        }
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool ends_with_yaml(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) || (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

/* The conf.d folder beside the main file: every .yaml in name order. */
static bool merge_confd(bb_config *c, const char *main_path, bb_errbuf *eb)
{
    char *dir = dirname_of(main_path);
    char confd[4096];
    DIR *d;
    struct dirent *de;
    char *names[MAX_CONFD_FILES];
    size_t n = 0;
    bool ok = true;

    if (!dir) return false;
    snprintf(confd, sizeof confd, "%s/conf.d", dir);
    free(dir);
    d = opendir(confd);
    if (!d) return true;   /* no drop-in folder: fine */
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !ends_with_yaml(de->d_name)) continue;
        if (n == MAX_CONFD_FILES) { bb_errbuf_add(eb, "%s: more than %d files", confd, MAX_CONFD_FILES); ok = false; break; }
        names[n] = strdup(de->d_name);
        if (!names[n]) { ok = false; break; }
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_str);
    for (size_t i = 0; i < n; i++) {
        char path[4096 + 256];
        bb_cfg *t;
        snprintf(path, sizeof path, "%s/%s", confd, names[i]);
        if (ok && (t = parse_file(c, path, eb)) != NULL) {
            merge_into(c->root, t);
            bb_node_free(t);
        } else {
            ok = false;
        }
        free(names[i]);
    }
    return ok;
}

bb_config *bb_config_load(const char *path, char *err, size_t errlen)
{
    bb_errbuf eb = { err, errlen, 0 };
    bb_config *c = calloc(1, sizeof *c);
    if (err && errlen) err[0] = '\0';
    if (!c) { bb_errbuf_add(&eb, "out of memory"); return NULL; }
    if (!path) {
        c->main_file = NULL;
        c->root = bb_node_new(BB_NODE_MAP, bb_config_intern_file(c, "<defaults>"), 0, 0);
        if (!c->root) { bb_config_free(c); return NULL; }
        return c;
    }
    c->main_file = bb_config_intern_file(c, path);
    if (!c->main_file) { bb_config_free(c); return NULL; }
    c->root = parse_file(c, path, &eb);
    if (!c->root || !merge_confd(c, path, &eb)) {
        bb_config_free(c);
        return NULL;
    }
    return c;
}

void bb_config_free(bb_config *c)
{
    if (!c) return;
    bb_node_free(c->root);
    for (size_t i = 0; i < c->n_files; i++) free(c->files[i]);
    free(c->files);
    free(c);
}

const bb_cfg *bb_config_root(const bb_config *c) { return c->root; }
const char *bb_config_main_file(const bb_config *c) { return c->main_file; }

const bb_cfg *bb_cfg_find(const bb_cfg *node, const char *dotted)
{
    const char *p = dotted;
    while (node && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        node = bb_node_member(node, p, len);
        p += len;
        if (*p == '.') p++;
    }
    return node;
}

const char *bb_cfg_where(const bb_cfg *node, char *buf, size_t len)
{
    if (!node || node->line == 0) snprintf(buf, len, "<default>");
    else snprintf(buf, len, "%s:%d:%d", node->file, node->line, node->col);
    return buf;
}
