/*
 * tests/test_mcp_surface_stale.c — a test-only upstream plugin
 * (upstream_stale.so, never installed) that behaves like upstream_http with
 * its origin down: reads answer one post from a "fallback cache" marked
 * stale, writes are UNAVAILABLE with a retry hint.  Lets the surface suite
 * check how stale reads and outages reach agents.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <botboard/upstream.h>

struct bb_upstream { int unused; };

#define STALE_AGE_MS 42000
#define RETRY_S      7

static bb_status s_create(const bb_host_api *api, bb_host *host, const bb_cfg *node, bb_upstream **out, bb_error *err)
{
    (void)api; (void)host; (void)node;
    if (!(*out = calloc(1, sizeof **out))) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    return BB_OK;
}

static void s_destroy(bb_upstream *self) { free(self); }

static bb_status s_health(bb_upstream *self, const bb_call *c, char *d, size_t l, bb_error *e)
{
    (void)self; (void)c;
    snprintf(d, l, "breaker open");
    return bb_fail(e, BB_UNAVAILABLE, NULL, "origin down");
}

static bb_status down(bb_error *e)
{
    bb_fail(e, BB_UNAVAILABLE, NULL, "breaker open");
    e->retry_after_s = RETRY_S;
    return BB_UNAVAILABLE;
}

static bool cached_post(const char *team, bb_post *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->id, sizeof p->id, "01HSTALESTALESTALESTALE000");
    snprintf(p->thread_id, sizeof p->thread_id, "%s", p->id);
    snprintf(p->team, sizeof p->team, "%s", team);
    p->author = strdup("cache");
    p->content = strdup("cached post");
    p->created_ms = 1700000000000;
    return p->author && p->content;
}

static bb_status s_list(bb_upstream *self, const bb_call *c, const bb_post_query *q, bb_post_page *o, bb_read_meta *m,
                        bb_error *e)
{
    (void)self; (void)c;
    memset(o, 0, sizeof *o);
    if (!(o->posts = calloc(1, sizeof *o->posts))) return bb_fail(e, BB_INTERNAL, NULL, "out of memory");
    o->n = 1;
    o->total = 1;
    if (!cached_post(q->team, &o->posts[0])) return bb_fail(e, BB_INTERNAL, NULL, "out of memory");
    m->stale = true;
    m->age_ms = STALE_AGE_MS;
    return BB_OK;
}

static bb_status s_get(bb_upstream *self, const bb_call *c, const char *team, const char *id, bb_post *o,
                       bb_read_meta *m, bb_error *e)
{
    (void)self; (void)c; (void)id;
    if (!cached_post(team, o)) return bb_fail(e, BB_INTERNAL, NULL, "out of memory");
    m->stale = true;
    m->age_ms = STALE_AGE_MS;
    return BB_OK;
}

static bb_status s_create_post(bb_upstream *self, const bb_call *c, const char *t, const bb_new_post *in, bb_post *o,
                               bb_error *e)
{
    (void)self; (void)c; (void)t; (void)in; (void)o;
    return down(e);
}

static bb_status s_delete(bb_upstream *self, const bb_call *c, const char *t, const char *id, bb_error *e)
{
    (void)self; (void)c; (void)t; (void)id;
    return down(e);
}

static bb_status s_distinct(bb_upstream *self, const bb_call *c, const char *t, bb_distinct_field f, const char *p,
                            int l, char ***o, size_t *n, bb_error *e)
{
    (void)self; (void)c; (void)t; (void)f; (void)p; (void)l;
    *o = NULL;
    *n = 0;
    return down(e);
}

static const bb_upstream_ops ops = {
    .size = sizeof(bb_upstream_ops), .create = s_create, .destroy = s_destroy, .health = s_health,
    .list_posts = s_list, .get_post = s_get, .create_post = s_create_post, .delete_post = s_delete,
    .distinct = s_distinct,
};

static const bb_plugin_descriptor desc = {
    .magic = BB_PLUGIN_MAGIC, .abi_major = BB_ABI_MAJOR, .abi_minor = BB_ABI_MINOR, .size = sizeof(bb_plugin_descriptor),
    .kind = BB_KIND_UPSTREAM, .name = "stale", .version = "test",
    .description = "test-only upstream whose origin is down: stale reads, unavailable writes",
    .ops = &ops, .config_keys = NULL, .n_config_keys = 0,
};

BB_PLUGIN_DEFINE(desc)
