/*
 * botboard/types.h — records shared by the storage and upstream kinds.
 */
#ifndef BOTBOARD_TYPES_H
#define BOTBOARD_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BB_ID_MAX        40    /* post ids, key ids: URL-safe, NUL included */
#define BB_TEAM_MAX      65    /* team names: 1-64 of [A-Za-z0-9._-] */
#define BB_AUTHOR_MAX    128   /* characters */
#define BB_CONTENT_MAX   10000 /* characters */
#define BB_TAGS_MAX      20
#define BB_TAG_MAX       32    /* characters */
#define BB_KEY_HASH_LEN  32    /* BLAKE2b-256 of the key text */
#define BB_KEY_PREFIX_MAX 16
#define BB_LABEL_MAX     129

typedef struct bb_team {
    char    name[BB_TEAM_MAX];
    int64_t created_ms;        /* unix ms */
} bb_team;

typedef struct bb_api_key {
    char    id[BB_ID_MAX];                 /* public id, used by `key revoke` */
    char    team[BB_TEAM_MAX];
    char    prefix[BB_KEY_PREFIX_MAX];     /* first characters of the key, for display */
    char    label[BB_LABEL_MAX];
    uint8_t hash[BB_KEY_HASH_LEN];         /* only the hash is ever stored */
    int64_t created_ms;
    int64_t revoked_ms;                    /* 0 = live */
} bb_api_key;

typedef struct bb_post {
    char    id[BB_ID_MAX];         /* time-ordered, URL-safe (ULID) */
    char    team[BB_TEAM_MAX];
    char   *author;                /* malloc'd UTF-8 */
    char   *content;               /* malloc'd UTF-8 */
    char  **tags;                  /* malloc'd array of malloc'd strings */
    size_t  n_tags;
    char    parent_id[BB_ID_MAX];  /* "" = top level */
    char    thread_id[BB_ID_MAX];  /* root of the thread: own id for top-level posts */
    int64_t created_ms;            /* unix ms */
    int64_t deleted_ms;            /* 0 = live; soft-deleted posts are invisible to reads */
} bb_post;

typedef struct bb_post_page {
    bb_post *posts;
    size_t   n;
    int64_t  total;                /* matches of the filter, ignoring limit/offset */
} bb_post_page;

typedef struct bb_post_query {
    const char *team;
    int         limit;             /* 1..100 */
    int64_t     offset;            /* >= 0 */
    const char *author;            /* NULL = any */
    const char *tag;               /* NULL = any */
    const char *thread_id;         /* NULL = any; else the root and every reply under it */
    const char *mentions_of;       /* NULL = any; else replies to posts by this author or
                                    * posts containing "@<author>" */
    bool        ascending;         /* default newest first; ties broken by id */
} bb_post_query;

typedef enum bb_distinct_field { BB_DISTINCT_AUTHOR = 1, BB_DISTINCT_TAG } bb_distinct_field;

static inline void bb_post_clear(bb_post *p)
{
    if (!p) return;
    free(p->author);
    free(p->content);
    for (size_t i = 0; i < p->n_tags; i++) free(p->tags[i]);
    free(p->tags);
    p->author = p->content = NULL;
    p->tags = NULL;
    p->n_tags = 0;
}

static inline void bb_post_page_clear(bb_post_page *pg)
{
    if (!pg) return;
    for (size_t i = 0; i < pg->n; i++) bb_post_clear(&pg->posts[i]);
    free(pg->posts);
    pg->posts = NULL;
    pg->n = 0;
    pg->total = 0;
}

static inline void bb_strv_free(char **v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

#ifdef __cplusplus
}
#endif
#endif /* BOTBOARD_TYPES_H */
