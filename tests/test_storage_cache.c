/*
 * tests/test_storage_cache.c — the post-page cache (core/storage_cache.c)
 * in front of the real SQLite plugin, opened the way serve opens it
 * (bb_app_open with a config).  "Another process" is played by the
 * plugin's own ops table (bb_app_storage_plugin), which the cache does not
 * see.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "bbtest.h"
#include "host.h"
#include "metrics.h"
#include "storage_cache.h"
#include "storage_post.h"

#define OK(expr) do { bb_error e_; bb_error_clear(&e_); bb_status s_ = (expr); \
    cr_assert_eq(s_, BB_OK, "%s -> %s: %s", #expr, bb_status_name(s_), e_.msg); } while (0)

typedef struct fx {
    char                 *dir, *config;
    bb_app               *app;
    const bb_storage_ops *ops, *raw;   /* through the cache / the plugin's own */
    bb_storage           *st, *raw_st;
    bb_storage_cache     *cache;
    bb_call               call;
} fx;

/* A fresh SQLite store with `cache_yaml` (a "cache:" mapping, may be NULL)
 * merged in; flags as for bb_app_open. */
static void fx_open_flags(fx *f, const char *cache_yaml, unsigned flags)
{
    char *yaml;
    bb_error err;
    memset(f, 0, sizeof *f);
    f->dir = bbt_tempdir("cache");
    cr_assert(f->dir);
    cr_assert(asprintf(&yaml, "environment: dev\nlogging:\n  level: warn\nstorage:\n  backend: sqlite\n"
                              "  sqlite:\n    path: \"%s/cache.db\"\nupstream:\n  backend: local\n%s",
                       f->dir, cache_yaml ? cache_yaml : "") > 0);
    f->config = bbt_write_file(f->dir, "botboard.yaml", yaml);
    free(yaml);
    cr_assert(f->config);
    bb_error_clear(&err);
    f->app = bb_app_open(f->config, flags | BB_APP_STORAGE | BB_APP_MIGRATE, &err);
    cr_assert(f->app, "bb_app_open: %s", err.msg);
    f->ops = bb_app_storage(f->app, &f->st);
    f->raw = bb_app_storage_plugin(f->app, &f->raw_st);
    f->cache = bb_app_storage_cache(f->app);
    cr_assert(f->ops && f->st && f->raw && f->raw_st);
    f->call.request_id = "cache-test";
}

static void fx_open(fx *f, const char *cache_yaml) { fx_open_flags(f, cache_yaml, 0); }

static void fx_close(fx *f)
{
    bb_app_close(f->app);
    if (f->dir) bbt_rmtree(f->dir);
    free(f->dir);
    free(f->config);
}

static void team(fx *f, const char *name)
{
    bb_team t = { .created_ms = 1700000000000 };
    snprintf(t.name, sizeof t.name, "%s", name);
    OK(f->ops->team_create(f->st, &f->call, &t, &e_));
}

/* Create through ops/st (the cache's or the plugin's); id out. */
static void post_via(fx *f, const bb_storage_ops *ops, bb_storage *st, const char *tm, const char *author,
                     const char *content, const char *const *tags, const char *parent, char id[BB_ID_MAX])
{
    OK(bbt_store_post(ops, st, &f->call, tm, author, content, tags, parent, bb_wall_ms(), id, &e_));
}

static void post(fx *f, const char *tm, const char *author, const char *content, const char *const *tags,
                 const char *parent, char id[BB_ID_MAX])
{
    post_via(f, f->ops, f->st, tm, author, content, tags, parent, id);
}

static bb_post_query query(const char *tm, int limit)
{
    bb_post_query q;
    memset(&q, 0, sizeof q);
    q.team = tm;
    q.limit = limit;
    return q;
}

static bb_storage_cache_stats stats(fx *f)
{
    bb_storage_cache_stats s;
    bb_storage_cache_get_stats(f->cache, &s);
    return s;
}

static void expect_same_post(const bb_post *a, const bb_post *b, size_t i)
{
    cr_expect_str_eq(a->id, b->id, "post %zu id", i);
    cr_expect_str_eq(a->team, b->team, "post %zu team", i);
    cr_expect_str_eq(a->author, b->author, "post %zu author", i);
    cr_expect_str_eq(a->content, b->content, "post %zu content", i);
    cr_expect_str_eq(a->parent_id, b->parent_id, "post %zu parent", i);
    cr_expect_str_eq(a->thread_id, b->thread_id, "post %zu thread", i);
    cr_expect_eq(a->created_ms, b->created_ms, "post %zu created", i);
    cr_expect_eq(a->deleted_ms, b->deleted_ms, "post %zu deleted", i);
    cr_assert_eq(a->n_tags, b->n_tags, "post %zu tag count", i);
    for (size_t j = 0; j < a->n_tags; j++) cr_expect_str_eq(a->tags[j], b->tags[j], "post %zu tag %zu", i, j);
}

static void expect_same_page(const bb_post_page *a, const bb_post_page *b)
{
    cr_expect_eq(a->total, b->total, "total");
    cr_assert_eq(a->n, b->n, "posts on the page");
    for (size_t i = 0; i < a->n; i++) expect_same_post(&a->posts[i], &b->posts[i], i);
}

static bool page_has(const bb_post_page *pg, const char *id)
{
    for (size_t i = 0; i < pg->n; i++)
        if (strcmp(pg->posts[i].id, id) == 0) return true;
    return false;
}

static double metric(const char *name)
{
    size_t len, nl = strlen(name);
    char *text = bb_metrics_render(&len), *line, *save = NULL;
    double v = -1;
    cr_assert(text);
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (strncmp(line, name, nl) == 0 && line[nl] == ' ') v = strtod(line + nl + 1, NULL);
    free(text);
    return v;
}

/* ---- a hit is the plugin's answer --------------------------------------------- */

Test(cache, hit_is_field_by_field_what_the_plugin_returns, .timeout = 60)
{
    fx f;
    char root[BB_ID_MAX], reply[BB_ID_MAX], other[BB_ID_MAX];
    static const char *const tags1[] = { "alpha", "b-tag", "ü", NULL };
    static const char *const tags2[] = { "alpha", NULL };
    bb_post_query qs[9];
    fx_open(&f, "cache:\n  ttl_ms: 60000\n");
    cr_assert(f.cache, "on by default");
    team(&f, "red");
    team(&f, "blue");
    post(&f, "red", "alice", "root post", tags1, NULL, root);
    post(&f, "red", "bob", "a reply to alice", tags2, root, reply);
    post(&f, "red", "carol", "hello @alice, no tags", NULL, NULL, other);
    post(&f, "red", "bob", "", NULL, NULL, NULL);   /* empty content is still a string */
    post(&f, "blue", "dave", "other team", tags2, NULL, NULL);
    qs[0] = query("red", 10);
    qs[1] = query("red", 2); qs[1].offset = 1;
    qs[2] = query("red", 10); qs[2].ascending = true;
    qs[3] = query("red", 10); qs[3].author = "bob";
    qs[4] = query("red", 10); qs[4].tag = "alpha";
    qs[5] = query("red", 10); qs[5].thread_id = root;
    qs[6] = query("red", 10); qs[6].mentions_of = "alice";
    qs[7] = query("blue", 10);
    qs[8] = query("nosuchteam", 10);
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        bb_post_page direct = { 0 }, miss = { 0 }, hit = { 0 };
        bb_storage_cache_stats before, after;
        OK(f.raw->post_list(f.raw_st, &f.call, &qs[i], &direct, &e_));
        OK(f.ops->post_list(f.st, &f.call, &qs[i], &miss, &e_));
        before = stats(&f);
        OK(f.ops->post_list(f.st, &f.call, &qs[i], &hit, &e_));
        after = stats(&f);
        cr_assert_eq(after.hits, before.hits + 1, "query %zu: the second read is a hit", i);
        expect_same_page(&miss, &direct);
        expect_same_page(&hit, &direct);
        /* The caller owns the copy: it must not share memory with the cache. */
        if (hit.n) {
            bb_post_page again = { 0 };
            hit.posts[0].content[0] = hit.posts[0].content[0] ? 'X' : '\0';
            hit.posts[0].id[0] = '#';
            OK(f.ops->post_list(f.st, &f.call, &qs[i], &again, &e_));
            expect_same_page(&again, &direct);
            bb_post_page_clear(&again);
        }
        bb_post_page_clear(&direct);
        bb_post_page_clear(&miss);
        bb_post_page_clear(&hit);
    }
    cr_expect_eq(stats(&f).entries, 9, "one entry per distinct query");
    cr_expect_geq(metric("botboard_storage_cache_hits_total"), 9);
    cr_expect_geq(metric("botboard_storage_cache_misses_total"), 9);
    cr_expect_eq(metric("botboard_storage_cache_entries"), 9);
    cr_expect_gt(metric("botboard_storage_cache_bytes"), 0);
    fx_close(&f);
}

/* ---- writes through the cache are seen at once ---------------------------------- */

Test(cache, create_then_list_shows_the_post, .timeout = 60)
{
    fx f;
    char id[BB_ID_MAX];
    bb_post_query q = query("red", 10);
    bb_post_page pg = { 0 };
    fx_open(&f, "cache:\n  ttl_ms: 60000\n");
    team(&f, "red");
    post(&f, "red", "alice", "first", NULL, NULL, NULL);
    for (int round = 0; round < 20; round++) {
        OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));   /* cached */
        bb_post_page_clear(&pg);
        post(&f, "red", "alice", "next", NULL, NULL, id);
        OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
        cr_assert(page_has(&pg, id), "round %d: the new post is on the first page", round);
        cr_assert_eq(pg.total, round + 2);
        bb_post_page_clear(&pg);
    }
    fx_close(&f);
}

Test(cache, delete_then_list_hides_the_post, .timeout = 60)
{
    fx f;
    char ids[5][BB_ID_MAX];
    bb_post_query q = query("red", 10);
    bb_post_page pg = { 0 };
    fx_open(&f, "cache:\n  ttl_ms: 60000\n");
    team(&f, "red");
    for (int i = 0; i < 5; i++) post(&f, "red", "alice", "to go", NULL, NULL, ids[i]);
    for (int i = 0; i < 5; i++) {
        OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
        cr_assert(page_has(&pg, ids[i]));
        bb_post_page_clear(&pg);
        OK(f.ops->post_delete(f.st, &f.call, "red", ids[i], bb_wall_ms(), &e_));
        OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
        cr_assert(!page_has(&pg, ids[i]), "deleted post %d is gone from the next read", i);
        cr_assert_eq(pg.total, 4 - i);
        bb_post_page_clear(&pg);
    }
    fx_close(&f);
}

typedef struct one_post_source { bool done; const char *id; } one_post_source;

static bb_status next_record(void *ud, bb_record *rec, bb_error *err)
{
    one_post_source *s = ud;
    (void)err;
    if (s->done) return BB_NOT_FOUND;
    s->done = true;
    memset(rec, 0, sizeof *rec);
    rec->kind = BB_REC_POST;
    snprintf(rec->post.id, sizeof rec->post.id, "%s", s->id);
    snprintf(rec->post.team, sizeof rec->post.team, "red");
    snprintf(rec->post.thread_id, sizeof rec->post.thread_id, "%s", s->id);
    rec->post.author = "importer";
    rec->post.content = "imported";
    rec->post.created_ms = bb_wall_ms() + 60000;   /* newest: first on the page */
    return BB_OK;
}

/* A post write makes its own team's pages stale and keeps the others'. */
Test(cache, a_write_keeps_other_teams_pages, .timeout = 60)
{
    fx f;
    char id[BB_ID_MAX];
    bb_post_query red = query("red", 10), blue = query("blue", 10);
    bb_post_page pg = { 0 };
    bb_storage_cache_stats a;
    fx_open(&f, "cache:\n  ttl_ms: 600000\n");
    team(&f, "red");
    team(&f, "blue");
    post(&f, "blue", "bob", "blue post", NULL, NULL, NULL);
    OK(f.ops->post_list(f.st, &f.call, &red, &pg, &e_));
    bb_post_page_clear(&pg);
    OK(f.ops->post_list(f.st, &f.call, &blue, &pg, &e_));
    bb_post_page_clear(&pg);

    post(&f, "red", "alice", "red post", NULL, NULL, id);
    a = stats(&f);
    OK(f.ops->post_list(f.st, &f.call, &blue, &pg, &e_));
    cr_assert_eq(stats(&f).hits, a.hits + 1, "blue's page survives a write in red");
    cr_assert_eq(pg.n, 1);
    bb_post_page_clear(&pg);
    a = stats(&f);
    OK(f.ops->post_list(f.st, &f.call, &red, &pg, &e_));
    cr_assert_eq(stats(&f).misses, a.misses + 1, "red's page is stale");
    cr_assert(page_has(&pg, id));
    bb_post_page_clear(&pg);

    /* Whole-store events still drop every team's pages. */
    bb_storage_cache_invalidate(f.cache);
    a = stats(&f);
    OK(f.ops->post_list(f.st, &f.call, &blue, &pg, &e_));
    cr_assert_eq(stats(&f).misses, a.misses + 1, "invalidate drops blue too");
    bb_post_page_clear(&pg);
    fx_close(&f);
}

Test(cache, import_invalidates, .timeout = 60)
{
    fx f;
    char id[BB_ID_MAX];
    one_post_source src = { false, NULL };
    bb_post_query q = query("red", 10);
    bb_post_page pg = { 0 };
    fx_open(&f, "cache:\n  ttl_ms: 60000\n");
    team(&f, "red");
    post(&f, "red", "alice", "before", NULL, NULL, NULL);
    OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
    cr_assert_eq(pg.total, 1);
    bb_post_page_clear(&pg);
    bb_new_ulid(id, sizeof id);
    src.id = id;
    OK(f.ops->import_all(f.st, &f.call, next_record, &src, &e_));
    OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
    cr_assert_eq(pg.total, 2, "the imported post counts");
    cr_assert(page_has(&pg, id));
    bb_post_page_clear(&pg);
    fx_close(&f);
}

/* ---- writes the cache cannot see ------------------------------------------------- */

Test(cache, write_behind_its_back_is_stale_until_invalidated, .timeout = 60)
{
    fx f;
    char id[BB_ID_MAX];
    bb_post_query q = query("red", 10);
    bb_post_page pg = { 0 };
    fx_open(&f, "cache:\n  ttl_ms: 600000\n");   /* so only an invalidation can refresh it */
    team(&f, "red");
    post(&f, "red", "alice", "seen", NULL, NULL, NULL);
    OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
    bb_post_page_clear(&pg);
    post_via(&f, f.raw, f.raw_st, "red", "ghost", "written by another process", NULL, NULL, id);
    OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
    cr_assert(!page_has(&pg, id) && pg.total == 1, "served from the cache (proves the cache is in the path)");
    bb_post_page_clear(&pg);
    bb_storage_cache_invalidate(f.cache);
    OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
    cr_assert(page_has(&pg, id) && pg.total == 2);
    bb_post_page_clear(&pg);
    fx_close(&f);
}

Test(cache, write_behind_its_back_shows_after_ttl, .timeout = 60)
{
    fx f;
    char id[BB_ID_MAX];
    bb_post_query q = query("red", 10);
    bb_post_page pg = { 0 };
    int64_t t0, deadline;
    bool seen = false;
    fx_open(&f, "cache:\n  ttl_ms: 300\n");
    team(&f, "red");
    post(&f, "red", "alice", "seen", NULL, NULL, NULL);
    OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
    bb_post_page_clear(&pg);
    post_via(&f, f.raw, f.raw_st, "red", "ghost", "written by another process", NULL, NULL, id);
    t0 = bb_now_ms();
    deadline = t0 + 10000;   /* generous for a loaded CI box; the check below is the real bound */
    while (!seen && bb_now_ms() < deadline) {
        struct timespec ts = { 0, 10 * 1000000L };
        OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
        seen = page_has(&pg, id);
        bb_post_page_clear(&pg);
        if (!seen) nanosleep(&ts, NULL);   /* poll interval, not the wait itself */
    }
    cr_assert(seen, "the outside write never showed");
    /* Every read polls: at most ttl after the write plus one poll and scheduling slack. */
    cr_expect_leq(bb_now_ms() - t0, 300 + 2000, "showed after %lld ms", (long long)(bb_now_ms() - t0));
    fx_close(&f);
}

/* ---- bounds ----------------------------------------------------------------------- */

Test(cache, entries_never_exceed_max_entries, .timeout = 120)
{
    fx f;
    bb_storage_cache_stats s;
    fx_open(&f, "cache:\n  ttl_ms: 600000\n  max_entries: 40\n");
    team(&f, "red");
    for (int i = 0; i < 30; i++) post(&f, "red", "alice", "x", NULL, NULL, NULL);
    for (int i = 0; i < 600; i++) {
        bb_post_query q = query("red", 1 + i % 5);
        bb_post_page pg = { 0 };
        q.offset = i / 5;
        OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
        bb_post_page_clear(&pg);
        s = stats(&f);
        cr_assert_leq(s.entries, 40, "after %d distinct reads: %zu entries", i + 1, s.entries);
    }
    cr_expect_gt(s.evictions, 0, "old pages were evicted");
    cr_expect_gt(s.entries, 20, "the budget is used (%zu of 40)", s.entries);
    fx_close(&f);
}

Test(cache, bytes_never_exceed_max_bytes_and_big_pages_are_not_cached, .timeout = 120)
{
    fx f;
    bb_storage_cache_stats s;
    char *big = malloc(3000);
    cr_assert(big);
    memset(big, 'b', 2999);
    big[2999] = '\0';
    /* 64 KiB over 16 shards: 4 KiB a shard, pages up to 2 KiB. */
    fx_open(&f, "cache:\n  ttl_ms: 600000\n  max_entries: 100000\n  max_bytes: 64KiB\n");
    team(&f, "red");
    team(&f, "big");
    for (int i = 0; i < 40; i++) post(&f, "red", "alice", "a post of some length, eighty bytes or so, to fill the cache", NULL, NULL, NULL);
    post(&f, "big", "alice", big, NULL, NULL, NULL);
    for (int i = 0; i < 1000; i++) {
        bb_post_query q = query("red", 1 + i % 4);
        bb_post_page pg = { 0 };
        q.offset = i / 4;
        OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
        bb_post_page_clear(&pg);
        s = stats(&f);
        cr_assert_leq(s.bytes, 65536, "after %d reads: %zu bytes", i + 1, s.bytes);
        cr_assert_leq(s.bytes, s.max_bytes);
    }
    cr_expect_gt(s.evictions, 0);
    {
        bb_post_query q = query("big", 10);
        bb_post_page pg = { 0 };
        bb_storage_cache_stats a, b;
        OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
        bb_post_page_clear(&pg);
        a = stats(&f);
        OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
        cr_assert_eq(pg.n, 1);
        cr_assert_str_eq(pg.posts[0].content, big);
        bb_post_page_clear(&pg);
        b = stats(&f);
        cr_assert_eq(b.hits, a.hits, "a page over the size limit is never served from the cache");
    }
    free(big);
    fx_close(&f);
}

/* ---- loans (ABI 1.1) ------------------------------------------------------------------ */

/* A lend is the cached entry itself (no copy), counted as a hit or a miss
 * like a read; a lent page stays whole after a write drops it from the
 * cache; pages the cache will not keep are lent all the same. */
Test(cache, lend_is_the_cached_page_and_survives_invalidation, .timeout = 60)
{
    fx f;
    static const char *const tags[] = { "alpha", "beta", NULL };
    bb_post_query q = query("red", 10), far = query("red", 10);
    bb_post_page direct = { 0 }, copy = { 0 };
    const bb_post_page *p1, *p2, *p3, *pbig, *pfar;
    void *l1, *l2, *l3, *lbig, *lfar;
    bb_storage_cache_stats a;
    char id[BB_ID_MAX], longname[1100], *big = malloc(3000);
    cr_assert(big);
    memset(big, 'b', 2999);
    big[2999] = '\0';
    fx_open(&f, "cache:\n  ttl_ms: 600000\n  max_bytes: 64KiB\n");
    cr_assert(BB_OPS_HAS(f.ops, bb_storage_ops, post_list_lend) && BB_OPS_HAS(f.ops, bb_storage_ops, page_return));
    cr_assert_not(BB_OPS_HAS(f.raw, bb_storage_ops, post_list_lend), "SQLite itself does not lend");
    team(&f, "red");
    team(&f, "big");
    post(&f, "red", "alice", "first", tags, NULL, NULL);
    post(&f, "red", "bob", "second", NULL, NULL, NULL);
    OK(f.raw->post_list(f.raw_st, &f.call, &q, &direct, &e_));

    a = stats(&f);
    OK(f.ops->post_list_lend(f.st, &f.call, &q, &p1, &l1, &e_));
    cr_assert_eq(stats(&f).misses, a.misses + 1);
    expect_same_page(p1, &direct);
    a = stats(&f);
    OK(f.ops->post_list_lend(f.st, &f.call, &q, &p2, &l2, &e_));
    cr_assert_eq(stats(&f).hits, a.hits + 1, "the second lend is a hit");
    cr_assert_eq(p2, p1, "a hit lends the cached entry, not a copy");
    OK(f.ops->post_list(f.st, &f.call, &q, &copy, &e_));
    cr_assert_eq(stats(&f).hits, a.hits + 2, "a copying read hits the entry the lend stored");
    expect_same_page(&copy, &direct);
    bb_post_page_clear(&copy);

    post(&f, "red", "carol", "third", NULL, NULL, id);   /* drops the entry from the cache */
    OK(f.ops->post_list_lend(f.st, &f.call, &q, &p3, &l3, &e_));
    cr_assert_neq(p3, p1);
    cr_assert(page_has(p3, id), "a lend after a write sees it");
    expect_same_page(p1, &direct);   /* still lent: unchanged, not freed (ASan/valgrind) */
    f.ops->page_return(f.st, l1);
    expect_same_page(p2, &direct);
    f.ops->page_return(f.st, l2);
    f.ops->page_return(f.st, l3);

    /* Too big to cache (2 KiB limit per page here), or a key too long to
     * cache: lent anyway, read through every time. */
    post(&f, "big", "alice", big, NULL, NULL, NULL);
    q = query("big", 10);
    for (int i = 0; i < 2; i++) {
        a = stats(&f);
        OK(f.ops->post_list_lend(f.st, &f.call, &q, &pbig, &lbig, &e_));
        cr_assert_eq(stats(&f).hits, a.hits, "a big page is never a hit");
        cr_assert_eq(pbig->n, 1);
        cr_assert_str_eq(pbig->posts[0].content, big);
        f.ops->page_return(f.st, lbig);
    }
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    far.author = longname;
    OK(f.ops->post_list_lend(f.st, &f.call, &far, &pfar, &lfar, &e_));
    cr_assert_eq(pfar->n, 0);
    f.ops->page_return(f.st, lfar);
    bb_post_page_clear(&direct);
    free(big);
    fx_close(&f);
}

/* upstream_local passes the cache's loans on, and lends a page of its own
 * over a storage that does not lend (cache.ttl_ms: 0). */
Test(cache, upstream_local_lends_with_and_without_the_cache, .timeout = 60)
{
    static const char *const configs[] = { "cache:\n  ttl_ms: 600000\n", "cache:\n  ttl_ms: 0\n" };
    for (size_t c = 0; c < 2; c++) {
        fx f;
        bb_upstream *up;
        const bb_upstream_ops *uops;
        bb_post_query q = query("red", 10);
        bb_post_page direct = { 0 };
        const bb_post_page *p1, *p2;
        void *l1, *l2;
        bb_read_meta meta = { .stale = true, .age_ms = 5 };
        fx_open_flags(&f, configs[c], BB_APP_UPSTREAM);
        uops = bb_app_upstream(f.app, &up);
        cr_assert(uops && up);
        cr_assert(BB_OPS_HAS(uops, bb_upstream_ops, list_posts_lend) && BB_OPS_HAS(uops, bb_upstream_ops, page_return));
        team(&f, "red");
        post(&f, "red", "alice", "lent", NULL, NULL, NULL);
        OK(f.raw->post_list(f.raw_st, &f.call, &q, &direct, &e_));
        OK(uops->list_posts_lend(up, &f.call, &q, &p1, &l1, &meta, &e_));
        cr_expect_not(meta.stale, "local reads are never stale");
        OK(uops->list_posts_lend(up, &f.call, &q, &p2, &l2, &meta, &e_));
        expect_same_page(p1, &direct);
        expect_same_page(p2, &direct);
        if (c == 0) cr_expect_eq(p1, p2, "through the cache: the same entry");
        else cr_expect_neq(p1, p2, "without it: a page each");
        uops->page_return(up, l1);
        uops->page_return(up, l2);
        bb_post_page_clear(&direct);
        fx_close(&f);
    }
}

/* ---- off ---------------------------------------------------------------------------- */

Test(cache, ttl_zero_installs_no_wrapper, .timeout = 60)
{
    fx f;
    char id[BB_ID_MAX];
    bb_post_query q = query("red", 10);
    bb_post_page pg = { 0 };
    fx_open(&f, "cache:\n  ttl_ms: 0\n");
    cr_assert_null(f.cache);
    cr_assert_eq(f.ops, f.raw, "bb_app_storage hands out the plugin's own table");
    cr_assert_eq(f.st, f.raw_st);
    cr_assert_eq(f.ops, bb_app_plugin(f.app, BB_KIND_STORAGE)->desc->ops);
    team(&f, "red");
    OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
    bb_post_page_clear(&pg);
    post_via(&f, f.raw, f.raw_st, "red", "ghost", "behind nobody's back", NULL, NULL, id);
    OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
    cr_assert(page_has(&pg, id));
    bb_post_page_clear(&pg);
    fx_close(&f);
}

Test(cache, rejects_out_of_range_config, .timeout = 30)
{
    static const char *const bad[] = { "cache:\n  ttl_ms: -1\n", "cache:\n  max_entries: 0\n",
                                       "cache:\n  max_bytes: 1KiB\n", "cache:\n  bogus: 1\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *dir = bbt_tempdir("cache-bad"), *yaml, *cfg;
        bb_error err;
        cr_assert(asprintf(&yaml, "logging:\n  level: error\nstorage:\n  sqlite:\n    path: \"%s/x.db\"\n%s", dir,
                           bad[i]) > 0);
        cfg = bbt_write_file(dir, "botboard.yaml", yaml);
        bb_error_clear(&err);
        cr_assert_null(bb_app_open(cfg, BB_APP_STORAGE, &err), "accepted: %s", bad[i]);
        cr_expect(strstr(err.msg, "cache."), "names the key: %s", err.msg);
        free(yaml); free(cfg);
        bbt_rmtree(dir);
        free(dir);
    }
}

/* ---- everyone goes through the same front ---------------------------------------------- */

Test(cache, upstream_local_reads_through_the_cache, .timeout = 60)
{
    fx f;
    bb_upstream *up;
    const bb_upstream_ops *uops;
    bb_post_query q = query("red", 10);
    bb_post_page pg = { 0 };
    bb_read_meta meta;
    bb_post out;
    bb_new_post np = { .author = "mcp-agent", .content = "via the upstream" };
    bb_storage_cache_stats a;
    fx_open_flags(&f, "cache:\n  ttl_ms: 600000\n", BB_APP_UPSTREAM);
    uops = bb_app_upstream(f.app, &up);
    cr_assert(uops && up);
    team(&f, "red");
    OK(uops->list_posts(up, &f.call, &q, &pg, &meta, &e_));
    bb_post_page_clear(&pg);
    a = stats(&f);
    OK(uops->list_posts(up, &f.call, &q, &pg, &meta, &e_));
    bb_post_page_clear(&pg);
    cr_assert_eq(stats(&f).hits, a.hits + 1, "the upstream's second read is a cache hit");
    OK(uops->create_post(up, &f.call, "red", &np, &out, &e_));
    OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
    cr_assert(page_has(&pg, out.id), "a create through the upstream invalidates for REST readers");
    bb_post_page_clear(&pg);
    bb_post_clear(&out);
    cr_assert_null(f.ops->watch, "no watch through the cache when the plugin has none (SQLite)");
    fx_close(&f);
}

/* ---- concurrency -------------------------------------------------------------------------- */

typedef struct race {
    fx              *f;
    atomic_int       completed;   /* creates that have returned */
    atomic_bool      stop;
    atomic_int       stale, reads;
    int              writes_each;
} race;

static void *writer(void *ud)
{
    race *r = ud;
    for (int i = 0; i < r->writes_each; i++) {
        int reads0;
        int64_t until;
        post(r->f, "red", "writer", "racing", NULL, NULL, NULL);
        atomic_fetch_add(&r->completed, 1);
        /* Let the readers read between writes (bounded): a page stored
         * wrongly as fresh during the write is only caught by reads made
         * before the next write invalidates it. */
        reads0 = atomic_load(&r->reads);
        until = bb_now_ms() + 200;
        while (atomic_load(&r->reads) < reads0 + 20 && bb_now_ms() < until) sched_yield();
    }
    return NULL;
}

static void *reader(void *ud)
{
    race *r = ud;
    while (!atomic_load(&r->stop)) {
        int before = atomic_load(&r->completed);   /* writes finished before this read starts */
        bb_post_query q = query("red", 5);
        bb_post_page pg = { 0 };
        bb_error err;
        bb_error_clear(&err);
        if (r->f->ops->post_list(r->f->st, &r->f->call, &q, &pg, &err) == BB_OK && pg.total < before)
            atomic_fetch_add(&r->stale, 1);
        bb_post_page_clear(&pg);
        atomic_fetch_add(&r->reads, 1);
    }
    return NULL;
}

Test(cache, concurrent_readers_never_see_a_page_older_than_a_finished_write, .timeout = 180)
{
    fx f;
    race r;
    pthread_t w[2], rd[4];
    bb_storage_cache_stats s;
    fx_open(&f, "cache:\n  ttl_ms: 600000\n");   /* freshness only from invalidation */
    team(&f, "red");
    memset(&r, 0, sizeof r);
    r.f = &f;
    r.writes_each = 150;
    atomic_init(&r.completed, 0);
    atomic_init(&r.stop, false);
    for (int i = 0; i < 4; i++) cr_assert_eq(pthread_create(&rd[i], NULL, reader, &r), 0);
    for (int i = 0; i < 2; i++) cr_assert_eq(pthread_create(&w[i], NULL, writer, &r), 0);
    for (int i = 0; i < 2; i++) pthread_join(w[i], NULL);
    atomic_store(&r.stop, true);
    for (int i = 0; i < 4; i++) pthread_join(rd[i], NULL);
    s = stats(&f);
    cr_assert_eq(atomic_load(&r.stale), 0, "%d of %d reads were older than a finished write", atomic_load(&r.stale),
                 atomic_load(&r.reads));
    cr_expect_gt(s.hits, 0, "the readers did hit the cache (%llu hits, %llu misses)", (unsigned long long)s.hits,
                 (unsigned long long)s.misses);
    {
        bb_post_query q = query("red", 5);
        bb_post_page pg = { 0 };
        OK(f.ops->post_list(f.st, &f.call, &q, &pg, &e_));
        cr_assert_eq(pg.total, 300);
        bb_post_page_clear(&pg);
    }
    fx_close(&f);
}

/* ---- the two orderings that matter, made deterministic ------------------------------- */

/* A shim plugin: the real SQLite ops, with post_list and post_create that
 * can be held at a gate, so a test decides exactly how a read and a write
 * interleave.  The cache under test is made directly on top of it. */
static const bb_storage_ops *shim_real;
static bb_storage_ops shim_ops;
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int hold_list_after_read, hold_create_before_write;   /* arm: 1 */
static int list_parked, create_parked, release_list, release_create;

static void park(int *parked, int *release)
{
    pthread_mutex_lock(&gate_mu);
    *parked = 1;
    pthread_cond_broadcast(&gate_cv);
    while (!*release) pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
}

static void wait_flag(int *flag)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&gate_mu);
    while (!*flag)
        if (pthread_cond_timedwait(&gate_cv, &gate_mu, &until) != 0) break;
    pthread_mutex_unlock(&gate_mu);
    cr_assert(*flag, "the other thread never reached the gate");
}

static void set_flag(int *flag)
{
    pthread_mutex_lock(&gate_mu);
    *flag = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static bb_status shim_post_list(bb_storage *self, const bb_call *call, const bb_post_query *q, bb_post_page *out,
                                bb_error *err)
{
    bb_status st = shim_real->post_list(self, call, q, out, err);
    if (hold_list_after_read) { hold_list_after_read = 0; park(&list_parked, &release_list); }
    return st;
}

static bb_status shim_post_create(bb_storage *self, const bb_call *call, const bb_post *post,
                                  const bb_idempotency *idem, bb_post *out, bool *replayed, bb_error *err)
{
    if (hold_create_before_write) { hold_create_before_write = 0; park(&create_parked, &release_create); }
    return shim_real->post_create(self, call, post, idem, out, replayed, err);
}

typedef struct shim_fx { fx f; bb_storage_cache *c; const bb_storage_ops *ops; bb_storage *st; } shim_fx;

static void shim_open(shim_fx *s)
{
    bb_storage_cache_config cc = { .ttl_ms = 600000, .max_entries = 64, .max_bytes = 1 << 20 };
    bb_error err;
    fx_open(&s->f, "cache:\n  ttl_ms: 0\n");
    shim_real = s->f.raw;
    shim_ops = *s->f.raw;
    shim_ops.post_list = shim_post_list;
    shim_ops.post_create = shim_post_create;
    bb_error_clear(&err);
    s->c = bb_storage_cache_new(&shim_ops, s->f.raw_st, &cc, &err);
    cr_assert(s->c, "%s", err.msg);
    s->ops = bb_storage_cache_ops(s->c, &s->st);
    team(&s->f, "red");
}

static void shim_close(shim_fx *s)
{
    bb_storage_cache_free(s->c);
    fx_close(&s->f);
}

typedef struct bg { shim_fx *s; char id[BB_ID_MAX]; bb_post_page pg; } bg;

static void *bg_create(void *ud)
{
    bg *b = ud;
    post_via(&b->s->f, b->s->ops, b->s->st, "red", "writer", "the write", NULL, NULL, b->id);
    return NULL;
}

static void *bg_list(void *ud)
{
    bg *b = ud;
    bb_post_query q = query("red", 10);
    bb_error err;
    bb_error_clear(&err);
    cr_assert_eq(b->s->ops->post_list(b->s->st, &b->s->f.call, &q, &b->pg, &err), BB_OK);
    return NULL;
}

/* Read started before a write, stored after it: the entry must already be stale. */
Test(cache_race, read_before_a_write_stored_after_it_is_stale, .timeout = 60)
{
    shim_fx s;
    bg reader, writer;
    pthread_t tr, tw;
    bb_post_query q = query("red", 10);
    bb_post_page pg = { 0 };
    memset(&reader, 0, sizeof reader);
    memset(&writer, 0, sizeof writer);
    shim_open(&s);
    reader.s = writer.s = &s;
    hold_list_after_read = 1;
    cr_assert_eq(pthread_create(&tr, NULL, bg_list, &reader), 0);
    wait_flag(&list_parked);                 /* it has read the old rows, not yet stored them */
    cr_assert_eq(pthread_create(&tw, NULL, bg_create, &writer), 0);
    pthread_join(tw, NULL);                  /* the write is complete */
    set_flag(&release_list);                 /* now the old read gets stored */
    pthread_join(tr, NULL);
    cr_assert_eq(reader.pg.total, 0, "the racing read saw the old state (the point of the test)");
    bb_post_page_clear(&reader.pg);
    OK(s.ops->post_list(s.st, &s.f.call, &q, &pg, &e_));
    cr_assert(page_has(&pg, writer.id), "a read after the write was served the page from before it");
    bb_post_page_clear(&pg);
    shim_close(&s);
}

/* A read during a write that has not committed yet: once the write returns,
 * that read's page must not be served (the bump comes after the plugin). */
Test(cache_race, read_during_an_uncommitted_write_is_not_served_after_it, .timeout = 60)
{
    shim_fx s;
    bg writer;
    pthread_t tw;
    bb_post_query q = query("red", 10);
    bb_post_page pg = { 0 };
    memset(&writer, 0, sizeof writer);
    shim_open(&s);
    writer.s = &s;
    hold_create_before_write = 1;
    cr_assert_eq(pthread_create(&tw, NULL, bg_create, &writer), 0);
    wait_flag(&create_parked);               /* inside the write, nothing committed */
    OK(s.ops->post_list(s.st, &s.f.call, &q, &pg, &e_));
    cr_assert_eq(pg.total, 0);
    bb_post_page_clear(&pg);
    set_flag(&release_create);
    pthread_join(tw, NULL);
    OK(s.ops->post_list(s.st, &s.f.call, &q, &pg, &e_));
    cr_assert(page_has(&pg, writer.id), "the page read during the write outlived it");
    bb_post_page_clear(&pg);
    shim_close(&s);
}
