/*
 * tests/plugins/storage_broken.c — one source, several ways to be wrong,
 * chosen at build time (-DBROKEN_*).  Each must be refused by the loader
 * with its own one-line reason.
 */
#include "fake_common.h"

static bb_status b_create(const bb_host_api *api, bb_host *host, const bb_cfg *node, bb_storage **out, bb_error *err)
{
    (void)api; (void)host; (void)node; (void)out;
    return bb_fail(err, BB_INTERNAL, NULL, "never created");
}
static void b_destroy(bb_storage *self) { (void)self; }

/* A table with only the common members: too small for this host. */
static const struct { BB_OPS_COMMON(bb_storage); } short_ops = {
    .size = 3 * sizeof(void *) + sizeof(void *), .create = b_create, .destroy = b_destroy, .health = NULL,
};

static const bb_plugin_descriptor desc = {
    .magic = BB_PLUGIN_MAGIC,
#ifdef BROKEN_ABI
    .abi_major = BB_ABI_MAJOR + 98, .abi_minor = 0,   /* "99.0" in the test's expected message */
#else
    .abi_major = BB_ABI_MAJOR, .abi_minor = BB_ABI_MINOR,
#endif
    .size = sizeof(bb_plugin_descriptor),
#ifdef BROKEN_KIND
    .kind = BB_KIND_SESSION,
#else
    .kind = BB_KIND_STORAGE,
#endif
    .name = "broken", .version = "test", .description = "test-only broken plugin",
    .ops = &short_ops, .config_keys = NULL, .n_config_keys = 0,
};

#ifndef BROKEN_NOSYM
BB_PLUGIN_DEFINE(desc)
#else
/* Exports something, but not the entry point. */
const bb_plugin_descriptor *not_the_entry(void);
const bb_plugin_descriptor *not_the_entry(void) { return &desc; }
#endif
