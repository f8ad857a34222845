/*
 * core/loader.h — find, open and check plugins.
 *
 * Search order for <kind>_<name>.so: plugins.path (config), then
 * BOTBOARD_PLUGIN_PATH (colon-separated), then — when this binary runs from
 * the build tree — the freshly built plugins, then the install dir.
 */
#ifndef BB_CORE_LOADER_H
#define BB_CORE_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include <botboard/plugin.h>

typedef struct bb_plugin {
    void                       *dl;
    const bb_plugin_descriptor *desc;
    char                        path[1024];
} bb_plugin;

typedef struct bb_search_path {
    char  *dirs[64];
    size_t n;
} bb_search_path;

/* Build the search path; extra may be NULL. */
void bb_search_path_init(bb_search_path *sp, const char *const *extra, size_t n_extra);
void bb_search_path_free(bb_search_path *sp);

/* Locate <kind>_<name>.so (name may also be a path to a .so).  false + why. */
bool bb_plugin_locate(const bb_search_path *sp, bb_plugin_kind kind, const char *name,
                      char *path, size_t path_len, char *why, size_t why_len);

/* dlopen + every ABI check.  expect: the config slot's kind (0 = any).
 * false + a one-line reason naming the file. */
bool bb_plugin_open(bb_plugin *p, const char *path, bb_plugin_kind expect, char *why, size_t why_len);
void bb_plugin_close(bb_plugin *p);

/* Call fn for every file named <kind>_<name>.so in the search path (first
 * hit of a name wins), opened and checked; why is "" when it loaded. */
void bb_plugin_scan(const bb_search_path *sp,
                    void (*fn)(void *ud, const char *path, const bb_plugin *p, const char *why), void *ud);

#endif
