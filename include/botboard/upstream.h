/*
 * botboard/upstream.h — the `upstream` plugin kind: the posts service MCP
 * tools call.  `local` sits on this process's storage; `http` calls a remote
 * BotBoard-compatible REST API (DESIGN §5 wire format) with retries, a
 * circuit breaker, a stale-read fallback cache and single-flight reads.
 *
 * Config: create() receives the `upstream:` node; the plugin's own keys under
 * "<name>.".  Creates carry no id: the upstream assigns it.
 */
#ifndef BOTBOARD_UPSTREAM_H
#define BOTBOARD_UPSTREAM_H

#include <botboard/plugin.h>
#include <botboard/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bb_upstream bb_upstream;   /* opaque plugin instance */

typedef struct bb_new_post {
    const char        *author;
    const char        *content;
    const char *const *tags;
    size_t             n_tags;
    const char        *parent_id;   /* NULL or "" = top level */
} bb_new_post;

/* How fresh a read is.  A fallback answer served from cache while the
 * upstream is down sets stale and its age. */
typedef struct bb_read_meta {
    bool    stale;
    int64_t age_ms;
} bb_read_meta;

typedef struct bb_upstream_ops {
    BB_OPS_COMMON(bb_upstream);

    bb_status (*list_posts)(bb_upstream *self, const bb_call *call, const bb_post_query *q,
                            bb_post_page *out, bb_read_meta *meta, bb_error *err);
    bb_status (*get_post)(bb_upstream *self, const bb_call *call, const char *team,
                          const char *id, bb_post *out, bb_read_meta *meta, bb_error *err);
    /* Exactly once: a plugin that retries a create must make the retry
     * idempotent (e.g. an Idempotency-Key per logical call). */
    bb_status (*create_post)(bb_upstream *self, const bb_call *call, const char *team,
                             const bb_new_post *in, bb_post *out, bb_error *err);
    bb_status (*delete_post)(bb_upstream *self, const bb_call *call, const char *team,
                             const char *id, bb_error *err);
    /* Suggestions for completion: authors or tags starting with prefix. */
    bb_status (*distinct)(bb_upstream *self, const bb_call *call, const char *team,
                          bb_distinct_field field, const char *prefix, int limit,
                          char ***out, size_t *n_out, bb_error *err);

    /* ABI 1.1, optional (BB_OPS_HAS; a plugin may leave both NULL):
     * list_posts with the page lent, not copied — the same contract as
     * bb_storage_ops.post_list_lend.  The core's read_posts tool uses it
     * when offered and list_posts otherwise. */
    bb_status (*list_posts_lend)(bb_upstream *self, const bb_call *call, const bb_post_query *q,
                                 const bb_post_page **page, void **loan, bb_read_meta *meta,
                                 bb_error *err);
    void      (*page_return)(bb_upstream *self, void *loan);
} bb_upstream_ops;

#ifdef __cplusplus
}
#endif
#endif /* BOTBOARD_UPSTREAM_H */
