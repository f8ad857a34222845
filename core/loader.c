/*
 * core/loader.c — plugin discovery and the ABI checks of DESIGN §3.
 */
#include "loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <botboard/session.h>
#include <botboard/storage.h>
#include <botboard/upstream.h>

static bool add_dir(bb_search_path *sp, const char *dir)
{
    if (!dir || !*dir || sp->n >= sizeof sp->dirs / sizeof sp->dirs[0]) return false;
    for (size_t i = 0; i < sp->n; i++)
        if (strcmp(sp->dirs[i], dir) == 0) return true;
    sp->dirs[sp->n] = strdup(dir);
    if (sp->dirs[sp->n]) sp->n++;
    return true;
}

/* True when this executable lives in the build tree: then the plugins just
 * built there are found before any installed ones. */
static bool running_from_build_tree(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    size_t blen = strlen(BB_ABS_BUILDDIR);
    if (n <= 0) return false;
    exe[n] = '\0';
    return strncmp(exe, BB_ABS_BUILDDIR, blen) == 0 && exe[blen] == '/';
}

static void add_build_tree_dirs(bb_search_path *sp)
{
    char path[PATH_MAX];
    DIR *d;
    struct dirent *de;
    snprintf(path, sizeof path, "%s/plugins", BB_ABS_BUILDDIR);
    if ((d = opendir(path)) != NULL) {
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/plugins/%s/.libs", BB_ABS_BUILDDIR, de->d_name);
            if (access(path, R_OK) == 0) add_dir(sp, path);
        }
        closedir(d);
    }
    snprintf(path, sizeof path, "%s/tests/plugins/.libs", BB_ABS_BUILDDIR);
    if (access(path, R_OK) == 0) add_dir(sp, path);
}

void bb_search_path_init(bb_search_path *sp, const char *const *extra, size_t n_extra)
{
    const char *env = getenv("BOTBOARD_PLUGIN_PATH");
    memset(sp, 0, sizeof *sp);
    for (size_t i = 0; i < n_extra; i++) add_dir(sp, extra[i]);
    if (env) {
        char *copy = strdup(env), *save = NULL;
        for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok; tok = strtok_r(NULL, ":", &save))
            add_dir(sp, tok);
        free(copy);
    }
    if (running_from_build_tree()) add_build_tree_dirs(sp);
    add_dir(sp, BB_PLUGIN_DIR);
}

void bb_search_path_free(bb_search_path *sp)
{
    for (size_t i = 0; i < sp->n; i++) free(sp->dirs[i]);
    sp->n = 0;
}

/* The optional backends configure can leave out (--without-X): the
 * configure option's name when this build left that plugin out, else NULL. */
static const char *not_built(bb_plugin_kind kind, const char *name)
{
    static const struct { bb_plugin_kind kind; const char *name, *option; bool built; } optional[] = {
        { BB_KIND_STORAGE,  "postgres", "postgres", BB_BUILT_POSTGRES },
        { BB_KIND_SESSION,  "redis",    "redis",    BB_BUILT_REDIS },
        { BB_KIND_UPSTREAM, "http",     "curl",     BB_BUILT_CURL },
    };
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++)
        if (optional[i].kind == kind && strcmp(optional[i].name, name) == 0 && !optional[i].built)
            return optional[i].option;
    return NULL;
}

bool bb_plugin_locate(const bb_search_path *sp, bb_plugin_kind kind, const char *name,
                      char *path, size_t path_len, char *why, size_t why_len)
{
    char tried[512] = "";
    size_t used = 0;
    if (strchr(name, '/')) {   /* an explicit file */
        snprintf(path, path_len, "%s", name);
        if (access(path, R_OK) == 0) return true;
        snprintf(why, why_len, "plugin file %s not found", name);
        return false;
    }
    for (size_t i = 0; i < sp->n; i++) {
        snprintf(path, path_len, "%s/%s_%s.so", sp->dirs[i], bb_kind_name(kind), name);
        if (access(path, R_OK) == 0) return true;
        if (used < sizeof tried - 1)
            used += (size_t)snprintf(tried + used, sizeof tried - used, "%s%s", i ? ", " : "", sp->dirs[i]);
    }
    if (not_built(kind, name))
        snprintf(why, why_len, "plugin %s_%s.so is not available: this botboard was built without it "
                 "(configure --without-%s)", bb_kind_name(kind), name, not_built(kind, name));
    else
        snprintf(why, why_len, "plugin %s_%s.so not found (searched %s)", bb_kind_name(kind), name, tried);
    return false;
}

/* The smallest ops table this host accepts per kind: every member of ABI
 * 1.0.  Later members are optional, tested with BB_OPS_HAS where used. */
static size_t min_ops_size(bb_plugin_kind kind)
{
    switch (kind) {
    case BB_KIND_STORAGE:  return offsetof(bb_storage_ops, post_list_lend);
    case BB_KIND_SESSION:  return sizeof(bb_session_ops);
    case BB_KIND_UPSTREAM: return offsetof(bb_upstream_ops, list_posts_lend);
    }
    return SIZE_MAX;
}

/* Members that may be NULL, by byte offset in their table. */
static bool optional_member(bb_plugin_kind kind, size_t off)
{
    return (kind == BB_KIND_STORAGE && off == offsetof(bb_storage_ops, watch)) ||
           (kind == BB_KIND_SESSION && off == offsetof(bb_session_ops, hit));
}

static bool check_ops(const bb_plugin *p, char *why, size_t why_len)
{
    const bb_plugin_descriptor *d = p->desc;
    uint32_t size = *(const uint32_t *)d->ops;
    size_t need = min_ops_size(d->kind);
    /* Every table is uint32 size (padded to a pointer) then function pointers. */
    const char *base = d->ops;
    if (size < need) {
        snprintf(why, why_len, "%s: %s ops table too small (%u bytes, this host needs %zu)", p->path,
                 bb_kind_name(d->kind), size, need);
        return false;
    }
    for (size_t off = sizeof(void *); off + sizeof(void *) <= need; off += sizeof(void *)) {
        void (*fn)(void);
        memcpy(&fn, base + off, sizeof fn);
        if (!fn && !optional_member(d->kind, off)) {
            snprintf(why, why_len, "%s: %s ops table has an empty required entry at byte %zu", p->path,
                     bb_kind_name(d->kind), off);
            return false;
        }
    }
    return true;
}

bool bb_plugin_open(bb_plugin *p, const char *path, bb_plugin_kind expect, char *why, size_t why_len)
{
    bb_plugin_entry_fn entry;
    const bb_plugin_descriptor *d;
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s", path);
    if (access(path, R_OK) != 0) {
        snprintf(why, why_len, "%s: plugin file not found", path);
        return false;
    }
    p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        snprintf(why, why_len, "%s: cannot load: %s (check its libraries with: ldd %s)", path, dlerror(), path);
        return false;
    }
    *(void **)&entry = dlsym(p->dl, BB_PLUGIN_ENTRY);
    if (!entry) {
        snprintf(why, why_len, "%s: no %s symbol: not a BotBoard plugin", path, BB_PLUGIN_ENTRY);
        goto fail;
    }
    d = entry();
    if (!d || d->magic != BB_PLUGIN_MAGIC) {
        snprintf(why, why_len, "%s: bad descriptor magic: not a BotBoard plugin", path);
        goto fail;
    }
    if (d->abi_major != BB_ABI_MAJOR) {
        snprintf(why, why_len, "%s: plugin ABI %u.%u, this host speaks ABI %d.x: rebuild the plugin", path,
                 d->abi_major, d->abi_minor, BB_ABI_MAJOR);
        goto fail;
    }
    if (d->abi_minor > BB_ABI_MINOR) {
        snprintf(why, why_len, "%s: plugin needs ABI %u.%u, this host has %d.%d: upgrade botboard", path,
                 d->abi_major, d->abi_minor, BB_ABI_MAJOR, BB_ABI_MINOR);
        goto fail;
    }
    if (d->size < sizeof *d) {
        snprintf(why, why_len, "%s: descriptor too small (%u bytes, need %zu)", path, d->size, sizeof *d);
        goto fail;
    }
    if (d->kind != BB_KIND_STORAGE && d->kind != BB_KIND_SESSION && d->kind != BB_KIND_UPSTREAM) {
        snprintf(why, why_len, "%s: unknown plugin kind %d", path, (int)d->kind);
        goto fail;
    }
    if (expect && d->kind != expect) {
        snprintf(why, why_len, "%s: is a %s plugin, but the %s slot needs a %s plugin", path,
                 bb_kind_name(d->kind), bb_kind_name(expect), bb_kind_name(expect));
        goto fail;
    }
    if (!d->ops || !d->name || !d->version) {
        snprintf(why, why_len, "%s: descriptor lacks ops, name or version", path);
        goto fail;
    }
    p->desc = d;
    if (!check_ops(p, why, why_len)) goto fail;
    return true;
fail:
    dlclose(p->dl);
    p->dl = NULL;
    p->desc = NULL;
    return false;
}

void bb_plugin_close(bb_plugin *p)
{
    if (p && p->dl) {
        /* Under valgrind/ASan keep the code mapped so leak reports can name it. */
        if (!getenv("BB_NO_DLCLOSE")) dlclose(p->dl);
        p->dl = NULL;
        p->desc = NULL;
    }
}

static bool plugin_file_name(const char *name)
{
    static const char *const prefixes[] = { "storage_", "session_", "upstream_" };
    size_t n = strlen(name);
    if (n < 4 || strcmp(name + n - 3, ".so") != 0) return false;
    for (size_t i = 0; i < 3; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return true;
    return false;
}

void bb_plugin_scan(const bb_search_path *sp,
                    void (*fn)(void *ud, const char *path, const bb_plugin *p, const char *why), void *ud)
{
    char seen[128][128];
    size_t n_seen = 0;
    for (size_t i = 0; i < sp->n; i++) {
        DIR *d = opendir(sp->dirs[i]);
        struct dirent *de;
        if (!d) continue;
        while ((de = readdir(d)) != NULL) {
            char path[PATH_MAX], why[512] = "";
            bb_plugin p;
            bool dup = false;
            if (!plugin_file_name(de->d_name)) continue;
            for (size_t j = 0; j < n_seen; j++) dup |= strcmp(seen[j], de->d_name) == 0;
            if (dup) continue;
            if (n_seen < 128) snprintf(seen[n_seen++], sizeof seen[0], "%s", de->d_name);
            snprintf(path, sizeof path, "%s/%s", sp->dirs[i], de->d_name);
            if (bb_plugin_open(&p, path, 0, why, sizeof why)) {
                fn(ud, path, &p, "");
                bb_plugin_close(&p);
            } else {
                fn(ud, path, NULL, why);
            }
        }
        closedir(d);
    }
}
