/*
 * botboard/plugin.h — the plugin descriptor and the ABI contract.
 *
 * A plugin is a shared object named <kind>_<name>.so exporting exactly one
 * symbol, BB_PLUGIN_ENTRY ("bb_plugin_entry"), a function returning a pointer
 * to a static const bb_plugin_descriptor.  Before calling anything else the
 * host checks, in order: magic, ABI major (must equal the host's), ABI minor
 * (must be <= the host's), descriptor size, kind (must match the config slot),
 * and the ops table size (must cover every member the host calls).  Each
 * refusal is one log line naming the file.
 *
 * Growth is additive: new members go at the end of a table and bump
 * BB_ABI_MINOR; old plugins keep loading.  Removing or reordering members
 * bumps BB_ABI_MAJOR.  Members added after 1.0 are optional: a caller
 * tests BB_OPS_HAS before using one, since a plugin built against an older
 * header has a shorter table (and a newer plugin may leave them NULL).
 *
 * ABI 1.1: the page loans, bb_storage_ops.post_list_lend/page_return and
 * bb_upstream_ops.list_posts_lend/page_return.
 *
 * Instances: every kind's ops table begins with BB_OPS_COMMON.  create() gets
 * the host table, an opaque host handle for that instance, and the config
 * node of its kind (e.g. `storage:`); it returns an opaque instance.  No
 * mutable globals: several instances of one plugin may live in one process.
 * destroy() must accept a half-built instance.
 *
 * Threads: every operation may be called concurrently from several HTTP
 * worker threads on the same instance.
 *
 * Memory: heap data a plugin hands back (post strings, lists) is allocated
 * with malloc() and freed by the host with the bb_*_free() helpers below.
 */
#ifndef BOTBOARD_PLUGIN_H
#define BOTBOARD_PLUGIN_H

#include <stddef.h>   /* offsetof, for BB_OPS_HAS */
#include <stdint.h>

#include <botboard/error.h>
#include <botboard/host.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BB_PLUGIN_MAGIC   0x42424f54u   /* "BBOT" */
#define BB_ABI_MAJOR      1
#define BB_ABI_MINOR      1
#define BB_PLUGIN_ENTRY   "bb_plugin_entry"

typedef enum bb_plugin_kind {
    BB_KIND_STORAGE  = 1,
    BB_KIND_SESSION  = 2,
    BB_KIND_UPSTREAM = 3
} bb_plugin_kind;

static inline const char *bb_kind_name(bb_plugin_kind k)
{
    switch (k) {
    case BB_KIND_STORAGE:  return "storage";
    case BB_KIND_SESSION:  return "session";
    case BB_KIND_UPSTREAM: return "upstream";
    }
    return "unknown";
}

typedef struct bb_plugin_descriptor {
    uint32_t       magic;          /* BB_PLUGIN_MAGIC */
    uint16_t       abi_major;      /* BB_ABI_MAJOR the plugin was built with */
    uint16_t       abi_minor;      /* BB_ABI_MINOR the plugin was built with */
    uint32_t       size;           /* sizeof(bb_plugin_descriptor) */
    bb_plugin_kind kind;
    const char    *name;           /* "sqlite": the part after "<kind>_" */
    const char    *version;        /* the plugin's own version string */
    const char    *description;    /* one line for `botboard plugins` */
    const void    *ops;            /* bb_storage_ops / bb_session_ops / bb_upstream_ops */
    /* Keys of this plugin's own subtree, relative to "<kind>.<name>"
     * (e.g. "pool.size" for storage.postgres.pool.size). */
    const bb_config_key *config_keys;
    size_t         n_config_keys;
} bb_plugin_descriptor;

typedef const bb_plugin_descriptor *(*bb_plugin_entry_fn)(void);

/* Use in a plugin: BB_PLUGIN_DEFINE(descriptor_variable) */
#define BB_PLUGIN_DEFINE(desc) \
    const bb_plugin_descriptor *bb_plugin_entry(void); \
    const bb_plugin_descriptor *bb_plugin_entry(void) { return &(desc); }

/* The members every kind's ops table starts with. */
#define BB_OPS_COMMON(inst_t)                                                       \
    uint32_t size;   /* sizeof the table as the plugin was built */                 \
    bb_status (*create)(const bb_host_api *api, bb_host *host, const bb_cfg *node,  \
                        inst_t **out, bb_error *err);                               \
    void      (*destroy)(inst_t *self);                                             \
    /* A real round trip bounded by call->deadline_ms.  detail gets a short      */ \
    /* human summary ("pool 3/20 in use", "breaker open") either way.            */ \
    bb_status (*health)(inst_t *self, const bb_call *call, char *detail,           \
                        size_t detail_len, bb_error *err)

/* Does the table have a member added after ABI 1.0, and set?  `ops` points
 * to a table of type `type` whose size member says how it was built. */
#define BB_OPS_HAS(ops, type, member) \
    ((ops)->size >= offsetof(type, member) + sizeof((ops)->member) && (ops)->member != NULL)

#ifdef __cplusplus
}
#endif
#endif /* BOTBOARD_PLUGIN_H */
