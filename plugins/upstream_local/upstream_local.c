/*
 * plugins/upstream_local — the `upstream` kind over this process's storage
 * (host->storage()): what MCP tools call when posts live here.
 *
 * No network, so nothing to retry, cache or de-duplicate here, and a create
 * runs once (the storage writes it in one transaction).  The storage table
 * the host hands over is the core's post-page cache when cache.ttl_ms > 0:
 * reads see every write made through this process at once, and outside
 * writes within cache.ttl_ms (botboard.yaml(5), "Post cache").
 * The plugin assigns the id (host->new_id) and the time (host->wall_ms);
 * it publishes nothing — the core announces new posts to subscribers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <botboard/storage.h>
#include <botboard/upstream.h>

struct bb_upstream {
    const bb_host_api     *api;
    bb_host               *host;
    const bb_storage_ops  *st;
    bb_storage            *st_inst;
    bool                   st_lends;   /* the storage has post_list_lend (the core's cache does) */
};

static bb_status l_create(const bb_host_api *api, bb_host *host, const bb_cfg *node, bb_upstream **out,
                          bb_error *err)
{
    bb_upstream *u;
    (void)node;
    if (!api->storage) return bb_fail(err, BB_INTERNAL, NULL, "host offers no storage access");
    u = calloc(1, sizeof *u);
    if (!u) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    u->api = api;
    u->host = host;
    u->st = api->storage(host, &u->st_inst);
    if (!u->st || !u->st_inst) {
        free(u);
        return bb_fail(err, BB_INVALID, NULL, "upstream local needs a storage backend (storage.backend)");
    }
    u->st_lends = BB_OPS_HAS(u->st, bb_storage_ops, post_list_lend) && BB_OPS_HAS(u->st, bb_storage_ops, page_return);
    *out = u;
    return BB_OK;
}

static void l_destroy(bb_upstream *self) { free(self); }

static bb_status l_health(bb_upstream *self, const bb_call *call, char *detail, size_t len, bb_error *err)
{
    char inner[160] = "";
    bb_status st = self->st->health(self->st_inst, call, inner, sizeof inner, err);
    snprintf(detail, len, "local storage: %s", inner[0] ? inner : (st == BB_OK ? "ok" : "down"));
    return st;
}

static bb_status l_list(bb_upstream *self, const bb_call *call, const bb_post_query *q, bb_post_page *out,
                        bb_read_meta *meta, bb_error *err)
{
    if (meta) memset(meta, 0, sizeof *meta);
    return self->st->post_list(self->st_inst, call, q, out, err);
}

/* The storage's loan passed on when it lends; otherwise a page of our own,
 * freed on return (the loan is then the page). */
static bb_status l_list_lend(bb_upstream *self, const bb_call *call, const bb_post_query *q,
                             const bb_post_page **page, void **loan, bb_read_meta *meta, bb_error *err)
{
    bb_post_page *own;
    bb_status st;
    if (meta) memset(meta, 0, sizeof *meta);
    if (self->st_lends) return self->st->post_list_lend(self->st_inst, call, q, page, loan, err);
    if (!(own = calloc(1, sizeof *own))) return bb_fail(err, BB_INTERNAL, NULL, "out of memory");
    if ((st = self->st->post_list(self->st_inst, call, q, own, err)) != BB_OK) {
        free(own);
        return st;
    }
    *page = own;
    *loan = own;
    return BB_OK;
}

static void l_page_return(bb_upstream *self, void *loan)
{
    if (!loan) return;
    if (self->st_lends) {
        self->st->page_return(self->st_inst, loan);
        return;
    }
    bb_post_page_clear(loan);
    free(loan);
}

static bb_status l_get(bb_upstream *self, const bb_call *call, const char *team, const char *id, bb_post *out,
                       bb_read_meta *meta, bb_error *err)
{
    if (meta) memset(meta, 0, sizeof *meta);
    return self->st->post_get(self->st_inst, call, team, id, out, err);
}

static bb_status l_create_post(bb_upstream *self, const bb_call *call, const char *team, const bb_new_post *in,
                               bb_post *out, bb_error *err)
{
    bb_post p;
    bool replayed = false;
    memset(&p, 0, sizeof p);
    if (!team || !in || !in->author || !in->content) return bb_fail(err, BB_INVALID, NULL, "incomplete post");
    if (strlen(team) >= sizeof p.team) return bb_fail(err, BB_INVALID, "team", "team name too long");
    if (in->parent_id && strlen(in->parent_id) >= sizeof p.parent_id)
        return bb_fail(err, BB_NOT_FOUND, "parentPostId", "no such parent post");
    self->api->new_id(p.id, sizeof p.id);
    memcpy(p.team, team, strlen(team) + 1);
    /* The storage only reads these during the call: lend them. */
    p.author = (char *)in->author;
    p.content = (char *)in->content;
    p.tags = (char **)in->tags;
    p.n_tags = in->n_tags;
    if (in->parent_id) memcpy(p.parent_id, in->parent_id, strlen(in->parent_id) + 1);
    p.created_ms = self->api->wall_ms();
    return self->st->post_create(self->st_inst, call, &p, NULL, out, &replayed, err);
}

static bb_status l_delete(bb_upstream *self, const bb_call *call, const char *team, const char *id, bb_error *err)
{
    return self->st->post_delete(self->st_inst, call, team, id, self->api->wall_ms(), err);
}

static bb_status l_distinct(bb_upstream *self, const bb_call *call, const char *team, bb_distinct_field field,
                            const char *prefix, int limit, char ***out, size_t *n_out, bb_error *err)
{
    return self->st->distinct(self->st_inst, call, team, field, prefix, limit, out, n_out, err);
}

static const bb_upstream_ops ops = {
    .size = sizeof(bb_upstream_ops),
    .create = l_create,
    .destroy = l_destroy,
    .health = l_health,
    .list_posts = l_list,
    .get_post = l_get,
    .create_post = l_create_post,
    .delete_post = l_delete,
    .distinct = l_distinct,
    .list_posts_lend = l_list_lend,
    .page_return = l_page_return,
};

static const bb_plugin_descriptor desc = {
    .magic = BB_PLUGIN_MAGIC,
    .abi_major = BB_ABI_MAJOR,
    .abi_minor = BB_ABI_MINOR,
    .size = sizeof(bb_plugin_descriptor),
    .kind = BB_KIND_UPSTREAM,
    .name = "local",
    .version = PACKAGE_VERSION,
    .description = "posts from this process's storage backend",
    .ops = &ops,
    .config_keys = NULL,
    .n_config_keys = 0,
};

BB_PLUGIN_DEFINE(desc)
