/*
 * tests/storage_post.h — create a post through a storage ops table, the way
 * the storage tests build them: a fresh ULID, the given fields, tags as a
 * NULL-terminated list.  Shared by the storage contract and the post-cache
 * tests, which each hold the table their own way.
 */
#ifndef BB_TESTS_STORAGE_POST_H
#define BB_TESTS_STORAGE_POST_H

#include <stdio.h>
#include <string.h>

#include <botboard/storage.h>

#include "host.h"

/* id_out (may be NULL) gets the stored post's id on success. */
static inline bb_status bbt_store_post(const bb_storage_ops *ops, bb_storage *st, const bb_call *call,
                                       const char *team, const char *author, const char *content,
                                       const char *const *tags, const char *parent, int64_t created_ms,
                                       char id_out[BB_ID_MAX], bb_error *err)
{
    bb_post p, out;
    bool replayed = false;
    size_t n = 0;
    bb_status st_;
    memset(&p, 0, sizeof p);
    bb_new_ulid(p.id, sizeof p.id);
    snprintf(p.team, sizeof p.team, "%s", team);
    p.author = (char *)author;
    p.content = (char *)content;
    while (tags && tags[n]) n++;
    p.tags = (char **)tags;
    p.n_tags = n;
    snprintf(p.parent_id, sizeof p.parent_id, "%s", parent ? parent : "");
    p.created_ms = created_ms;
    bb_error_clear(err);
    st_ = ops->post_create(st, call, &p, NULL, &out, &replayed, err);
    if (st_ == BB_OK) {
        if (id_out) snprintf(id_out, BB_ID_MAX, "%s", out.id);
        bb_post_clear(&out);
    }
    return st_;
}

#endif
