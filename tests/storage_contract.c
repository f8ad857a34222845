/*
 * tests/storage_contract.c — the storage contract: what every storage plugin
 * must do, checked through its ops table only (see storage_contract.h for
 * how to point it at a plugin).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bbtest.h"
#include "host.h"
#include "metrics.h"
#include "record_json.h"
#include "storage_post.h"
#include "storage_contract.h"

/* ---- fixture --------------------------------------------------------------- */

static char *replace_all(const char *in, const char *what, const char *with)
{
    size_t wl = strlen(what), nl = strlen(with), cap = strlen(in) + 1;
    const char *p;
    char *out, *o;
    for (p = in; (p = strstr(p, what)); p += wl) cap += nl;
    if (!(out = malloc(cap))) return NULL;
    for (o = out, p = in; *p;) {
        if (strncmp(p, what, wl) == 0) { memcpy(o, with, nl); o += nl; p += wl; }
        else *o++ = *p++;
    }
    *o = '\0';
    return out;
}

static char *storage_yaml_template(void)
{
    const char *env = getenv("BB_CONTRACT_STORAGE_YAML");
    struct stat sb;
    if (env && *env && stat(env, &sb) == 0 && S_ISREG(sb.st_mode)) return bbt_read_file(env, NULL);
    return strdup(env && *env ? env : ct_default_storage_yaml);
}

static char *write_config(ct *t, const char *conninfo)
{
    const char *pdir = getenv("BB_CONTRACT_PLUGIN_DIR");
    char *tmpl = storage_yaml_template(), *a, *b, *text, *path;
    cr_assert(tmpl, "out of memory");
    a = replace_all(tmpl, "{{DIR}}", t->dir);
    b = a ? replace_all(a, "{{CONNINFO}}", conninfo) : NULL;
    cr_assert(b, "out of memory");
    cr_assert(asprintf(&text, "environment: dev\nlogging:\n  level: warn\n%s%s%s\n%s\n",
                       pdir && *pdir ? "plugins:\n  path: [\"" : "", pdir && *pdir ? pdir : "",
                       pdir && *pdir ? "\"]" : "", b) > 0);
    path = bbt_write_file(t->dir, "botboard.yaml", text);
    cr_assert(path, "cannot write the test config in %s", t->dir);
    free(tmpl); free(a); free(b); free(text);
    return path;
}

void ct_prepare(ct *t, const char *extra)
{
    char conninfo[1024] = "", why[1024] = "";
    const char *backend = getenv("BB_CONTRACT_BACKEND");
    memset(t, 0, sizeof *t);
    if (!ct_backend_fresh(conninfo, sizeof conninfo, why, sizeof why)) cr_skip_test("%s", why);
    t->dir = bbt_tempdir("contract");
    cr_assert(t->dir, "no temp dir");
    t->config = write_config(t, conninfo);
    /* Another plugin named by the environment: it wins over the template's. */
    if (backend && *backend && strcmp(backend, ct_default_backend) != 0) {
        char *yaml, *p;
        cr_assert(asprintf(&yaml, "storage:\n  backend: %s\n", backend) > 0);
        cr_assert(asprintf(&p, "%s/conf.d", t->dir) > 0);
        mkdir(p, 0700);
        free(bbt_write_file(p, "10-backend.yaml", yaml));
        free(p);
        free(yaml);
    }
    if (extra) {
        char *p;
        cr_assert(asprintf(&p, "%s/conf.d", t->dir) > 0);
        mkdir(p, 0700);
        free(bbt_write_file(p, "50-test.yaml", extra));
        free(p);
    }
    t->call.request_id = "contract";
}

void ct_open_with(ct *t, const char *extra)
{
    bb_error err;
    ct_prepare(t, extra);
    bb_error_clear(&err);
    t->app = bb_app_open(t->config, BB_APP_STORAGE | BB_APP_MIGRATE, &err);
    cr_assert(t->app, "bb_app_open: %s", err.msg);
    t->ops = bb_app_storage(t->app, &t->st);
    cr_assert(t->ops && t->st);
}

void ct_open(ct *t) { ct_open_with(t, NULL); }

bb_app *ct_reopen(ct *t, unsigned flags, bb_error *err)
{
    ct_close_app(t);
    t->app = bb_app_open(t->config, flags, err);
    if (t->app) t->ops = bb_app_storage(t->app, &t->st);
    return t->app;
}

void ct_close_app(ct *t)
{
    bb_app_close(t->app);
    t->app = NULL;
    t->ops = NULL;
    t->st = NULL;
}

void ct_close(ct *t)
{
    ct_close_app(t);
    free(t->config);
    if (t->dir) bbt_rmtree(t->dir);
    free(t->dir);
    memset(t, 0, sizeof *t);
}

void ct_team(ct *t, const char *name)
{
    bb_team team = { .created_ms = 1700000000000 };
    bb_error err;
    snprintf(team.name, sizeof team.name, "%s", name);
    bb_error_clear(&err);
    cr_assert_eq(t->ops->team_create(t->st, &t->call, &team, &err), BB_OK, "team_create %s: %s", name, err.msg);
}

bb_status ct_post(ct *t, const char *team, const char *author, const char *content, const char *const *tags,
                  const char *parent, int64_t created_ms, char id_out[BB_ID_MAX], bb_error *err)
{
    return bbt_store_post(t->ops, t->st, &t->call, team, author, content, tags, parent, created_ms, id_out, err);
}

double ct_metric_sum(const char *name, const char *frag1, const char *frag2)
{
    size_t len;
    char *text = bb_metrics_render(&len), *line, *save = NULL;
    double sum = 0;
    if (!text) return -1;
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *sp;
        if (line[0] == '#' || strncmp(line, name, strlen(name)) != 0) continue;
        if (frag1 && !strstr(line, frag1)) continue;
        if (frag2 && !strstr(line, frag2)) continue;
        if ((sp = strrchr(line, ' '))) sum += strtod(sp + 1, NULL);
    }
    free(text);
    return sum;
}

/* ---- small assertions --------------------------------------------------------- */

#define OK(expr) do { bb_error e_; bb_error_clear(&e_); bb_status s_ = (expr); \
    cr_assert_eq(s_, BB_OK, "%s -> %s: %s", #expr, bb_status_name(s_), e_.msg); } while (0)

static void must_post(ct *t, const char *team, const char *author, const char *content, const char *const *tags,
                      const char *parent, int64_t created_ms, char id[BB_ID_MAX])
{
    bb_error err;
    bb_status st = ct_post(t, team, author, content, tags, parent, created_ms, id, &err);
    cr_assert_eq(st, BB_OK, "post_create: %s %s", bb_status_name(st), err.msg);
}

static bb_post_query query(const char *team)
{
    bb_post_query q;
    memset(&q, 0, sizeof q);
    q.team = team;
    q.limit = 100;
    return q;
}

/* The page must hold exactly the ids named by `expect` (indexes into ids[],
 * in order, -1 terminated) and report `total`. */
static void expect_page(ct *t, const bb_post_query *q, char ids[][BB_ID_MAX], const int *expect, int64_t total,
                        const char *what)
{
    bb_post_page pg;
    bb_error err;
    size_t n = 0;
    bb_status st;
    while (expect[n] >= 0) n++;
    bb_error_clear(&err);
    st = t->ops->post_list(t->st, &t->call, q, &pg, &err);
    cr_assert_eq(st, BB_OK, "%s: post_list %s: %s", what, bb_status_name(st), err.msg);
    cr_expect_eq(pg.total, total, "%s: total %lld, expected %lld", what, (long long)pg.total, (long long)total);
    cr_expect_eq(pg.n, n, "%s: %zu posts, expected %zu", what, pg.n, n);
    for (size_t i = 0; i < n && i < pg.n; i++)
        cr_expect_str_eq(pg.posts[i].id, ids[expect[i]], "%s: position %zu is %s, expected p%d", what, i,
                         pg.posts[i].id, expect[i]);
    bb_post_page_clear(&pg);
}

/* ---- teams and keys --------------------------------------------------------------- */

typedef struct team_names { char names[4][BB_TEAM_MAX]; int n; } team_names;

static bb_status collect_team(void *ud, const bb_team *team)
{
    team_names *l = ud;
    if (l->n < 4) snprintf(l->names[l->n++], BB_TEAM_MAX, "%s", team->name);
    return BB_OK;
}

Test(contract, teams_create_get_list_conflict, .timeout = 60)
{
    ct t;
    bb_team got, dup = { .name = "beta", .created_ms = 5 };
    bb_error err;
    team_names l = { .n = 0 };
    ct_open(&t);
    ct_team(&t, "beta");
    ct_team(&t, "alpha");
    bb_error_clear(&err);
    cr_assert_eq(t.ops->team_create(t.st, &t.call, &dup, &err), BB_CONFLICT, "duplicate team: %s", err.msg);
    OK(t.ops->team_get(t.st, &t.call, "alpha", &got, &e_));
    cr_assert_str_eq(got.name, "alpha");
    cr_assert_eq(got.created_ms, 1700000000000);
    cr_assert_eq(t.ops->team_get(t.st, &t.call, "gamma", &got, &err), BB_NOT_FOUND);
    OK(t.ops->team_list(t.st, &t.call, collect_team, &l, &e_));
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(l.names[0], "alpha", "teams listed by name");
    cr_assert_str_eq(l.names[1], "beta");
    ct_close(&t);
}

typedef struct key_list { bb_api_key keys[8]; int n; } key_list;

static bb_status collect_key(void *ud, const bb_api_key *k)
{
    key_list *l = ud;
    if (l->n < 8) l->keys[l->n++] = *k;
    return BB_OK;
}

static bb_api_key make_key(const char *id, const char *team, uint8_t fill)
{
    bb_api_key k;
    memset(&k, 0, sizeof k);
    snprintf(k.id, sizeof k.id, "%s", id);
    snprintf(k.team, sizeof k.team, "%s", team);
    snprintf(k.prefix, sizeof k.prefix, "bbk_%c%c", 'a' + fill % 26, 'a' + fill / 26 % 26);
    snprintf(k.label, sizeof k.label, "label %s é", id);
    memset(k.hash, fill, sizeof k.hash);
    k.hash[0] = 0;   /* a NUL inside the hash must survive */
    k.created_ms = 1700000000000 + fill;
    return k;
}

Test(contract, keys_create_lookup_list_revoke, .timeout = 60)
{
    ct t;
    bb_api_key k1 = make_key("K01", "alpha", 1), k2 = make_key("K02", "alpha", 2), k3 = make_key("K03", "beta", 3);
    bb_api_key got, dup_hash = make_key("K09", "alpha", 1), no_team = make_key("K10", "nope", 10);
    key_list l = { .n = 0 };
    bb_error err;
    uint8_t unknown[BB_KEY_HASH_LEN];
    ct_open(&t);
    ct_team(&t, "alpha");
    ct_team(&t, "beta");
    OK(t.ops->key_create(t.st, &t.call, &k2, &e_));
    OK(t.ops->key_create(t.st, &t.call, &k1, &e_));
    OK(t.ops->key_create(t.st, &t.call, &k3, &e_));
    cr_assert_eq(t.ops->key_create(t.st, &t.call, &dup_hash, &err), BB_CONFLICT, "same hash twice: %s", err.msg);
    cr_assert_neq(t.ops->key_create(t.st, &t.call, &no_team, &err), BB_OK, "key for a missing team");

    OK(t.ops->key_by_hash(t.st, &t.call, k2.hash, &got, &e_));
    cr_assert_str_eq(got.id, "K02");
    cr_assert_str_eq(got.team, "alpha");
    cr_assert_str_eq(got.prefix, k2.prefix);
    cr_assert_str_eq(got.label, k2.label);
    cr_assert(memcmp(got.hash, k2.hash, BB_KEY_HASH_LEN) == 0);
    cr_assert_eq(got.created_ms, k2.created_ms);
    cr_assert_eq(got.revoked_ms, 0);
    memset(unknown, 0x77, sizeof unknown);
    cr_assert_eq(t.ops->key_by_hash(t.st, &t.call, unknown, &got, &err), BB_NOT_FOUND);

    OK(t.ops->key_list(t.st, &t.call, "alpha", collect_key, &l, &e_));
    cr_assert_eq(l.n, 2, "alpha has two keys, got %d", l.n);
    cr_assert_str_eq(l.keys[0].id, "K01", "keys listed by id");
    cr_assert_str_eq(l.keys[1].id, "K02");

    OK(t.ops->key_revoke(t.st, &t.call, "K02", 1800000000000, &e_));
    cr_assert_eq(t.ops->key_revoke(t.st, &t.call, "K99", 1800000000000, &err), BB_NOT_FOUND);
    OK(t.ops->key_by_hash(t.st, &t.call, k2.hash, &got, &e_));
    cr_assert_eq(got.revoked_ms, 1800000000000, "a revoked key is still found, with revoked_ms");
    l.n = 0;
    OK(t.ops->key_list(t.st, &t.call, "alpha", collect_key, &l, &e_));
    cr_assert_eq(l.n, 2);
    cr_assert_eq(l.keys[1].revoked_ms, 1800000000000);
    cr_assert_eq(l.keys[0].revoked_ms, 0);
    ct_close(&t);
}

/* ---- posts: create, get, round trips ----------------------------------------------- */

Test(contract, post_create_get_roundtrip, .timeout = 60)
{
    ct t;
    static const char *const tags[] = { "日本語", "émoji🚀", "ñandú-ü", "x", NULL };
    char id[BB_ID_MAX], reply[BB_ID_MAX], deep[BB_ID_MAX], *content;
    bb_post got;
    size_t off = 0;
    ct_open(&t);
    ct_team(&t, "alpha");
    /* 10,000 characters, many of them multi-byte. */
    content = malloc(40001);
    cr_assert(content);
    for (int i = 0; i < 10000; i++) {
        static const char *const pieces[] = { "a", "é", "🚀", "中", "\n", "\"", "'" };
        const char *pc = pieces[i % 7];
        memcpy(content + off, pc, strlen(pc));
        off += strlen(pc);
    }
    content[off] = '\0';
    must_post(&t, "alpha", "ålice 🤖", content, tags, NULL, 1700000000123, id);
    OK(t.ops->post_get(t.st, &t.call, "alpha", id, &got, &e_));
    cr_assert_str_eq(got.id, id);
    cr_assert_str_eq(got.team, "alpha");
    cr_assert_str_eq(got.author, "ålice 🤖");
    cr_assert_eq(strlen(got.content), off, "content length %zu, expected %zu", strlen(got.content), off);
    cr_assert(strcmp(got.content, content) == 0, "10,000-character content round-trips exactly");
    cr_assert_eq(got.n_tags, 4);
    for (int i = 0; i < 4; i++) cr_assert_str_eq(got.tags[i], tags[i], "tag %d in order", i);
    cr_assert_str_eq(got.parent_id, "");
    cr_assert_str_eq(got.thread_id, id, "a top-level post is its own thread");
    cr_assert_eq(got.created_ms, 1700000000123);
    cr_assert_eq(got.deleted_ms, 0);
    bb_post_clear(&got);

    must_post(&t, "alpha", "bob", "re", NULL, id, 1700000000200, reply);
    must_post(&t, "alpha", "carol", "re re", NULL, reply, 1700000000300, deep);
    OK(t.ops->post_get(t.st, &t.call, "alpha", deep, &got, &e_));
    cr_assert_str_eq(got.parent_id, reply);
    cr_assert_str_eq(got.thread_id, id, "a reply to a reply belongs to the root's thread");
    cr_assert_eq(got.n_tags, 0);
    bb_post_clear(&got);
    free(content);
    ct_close(&t);
}

Test(contract, post_create_returns_stored_post_and_rejects_duplicates, .timeout = 60)
{
    ct t;
    bb_post p, out;
    bool replayed = true;
    bb_error err;
    static const char *const tags[] = { "a", "b", NULL };
    ct_open(&t);
    ct_team(&t, "alpha");
    memset(&p, 0, sizeof p);
    snprintf(p.id, sizeof p.id, "01HZZZZZZZZZZZZZZZZZZZZZZZ");
    snprintf(p.team, sizeof p.team, "alpha");
    p.author = "alice";
    p.content = "hello";
    p.tags = (char **)tags;
    p.n_tags = 2;
    p.created_ms = 42;
    OK(t.ops->post_create(t.st, &t.call, &p, NULL, &out, &replayed, &e_));
    cr_assert_eq(replayed, false);
    cr_assert_str_eq(out.id, p.id);
    cr_assert_str_eq(out.thread_id, p.id);
    cr_assert_str_eq(out.content, "hello");
    cr_assert_eq(out.n_tags, 2);
    cr_assert_str_eq(out.tags[1], "b");
    bb_post_clear(&out);
    bb_error_clear(&err);
    cr_assert_eq(t.ops->post_create(t.st, &t.call, &p, NULL, &out, &replayed, &err), BB_CONFLICT,
                 "same post id twice: %s", err.msg);
    snprintf(p.team, sizeof p.team, "nosuchteam");
    snprintf(p.id, sizeof p.id, "01HZZZZZZZZZZZZZZZZZZZZZZY");
    cr_assert_neq(t.ops->post_create(t.st, &t.call, &p, NULL, &out, &replayed, &err), BB_OK, "post in a missing team");
    ct_close(&t);
}

Test(contract, parent_must_exist_live_in_same_team, .timeout = 60)
{
    ct t;
    char root[BB_ID_MAX], other[BB_ID_MAX], gone[BB_ID_MAX];
    bb_error err;
    bb_status st;
    ct_open(&t);
    ct_team(&t, "alpha");
    ct_team(&t, "beta");
    must_post(&t, "alpha", "alice", "root", NULL, NULL, 1000, root);
    must_post(&t, "beta", "bob", "other team", NULL, NULL, 1001, other);
    must_post(&t, "alpha", "alice", "to delete", NULL, NULL, 1002, gone);
    OK(t.ops->post_delete(t.st, &t.call, "alpha", gone, 2000, &e_));

    st = ct_post(&t, "alpha", "bob", "orphan", NULL, "01NOSUCHPOST0000000000000", 1003, NULL, &err);
    cr_assert_eq(st, BB_NOT_FOUND, "missing parent: %s", bb_status_name(st));
    cr_assert_str_eq(err.field, "parentPostId");
    st = ct_post(&t, "alpha", "bob", "cross-team", NULL, other, 1004, NULL, &err);
    cr_assert_eq(st, BB_NOT_FOUND, "parent in another team: %s", bb_status_name(st));
    cr_assert_str_eq(err.field, "parentPostId");
    st = ct_post(&t, "alpha", "bob", "reply to deleted", NULL, gone, 1005, NULL, &err);
    cr_assert_eq(st, BB_NOT_FOUND, "deleted parent: %s", bb_status_name(st));
    cr_assert_str_eq(err.field, "parentPostId");
    {
        bb_post_query q = query("alpha");
        bb_post_page pg;
        OK(t.ops->post_list(t.st, &t.call, &q, &pg, &e_));
        cr_assert_eq(pg.total, 1, "failed replies stored nothing (total %lld)", (long long)pg.total);
        bb_post_page_clear(&pg);
    }
    ct_close(&t);
}

Test(contract, get_is_scoped_to_team, .timeout = 60)
{
    ct t;
    char id[BB_ID_MAX];
    bb_post got;
    bb_error err;
    ct_open(&t);
    ct_team(&t, "alpha");
    ct_team(&t, "beta");
    must_post(&t, "alpha", "alice", "mine", NULL, NULL, 1000, id);
    cr_assert_eq(t.ops->post_get(t.st, &t.call, "beta", id, &got, &err), BB_NOT_FOUND, "post seen from another team");
    cr_assert_eq(t.ops->post_get(t.st, &t.call, "alpha", "01NOSUCHPOST0000000000000", &got, &err), BB_NOT_FOUND);
    cr_assert_eq(t.ops->post_delete(t.st, &t.call, "beta", id, 5, &err), BB_NOT_FOUND, "deleted from another team");
    OK(t.ops->post_get(t.st, &t.call, "alpha", id, &got, &e_));
    bb_post_clear(&got);
    ct_close(&t);
}

/* ---- listing ------------------------------------------------------------------------ */

/* p0..p7 as in the table below; p5 is in team beta, p6 is deleted. */
static void filter_fixture(ct *t, char ids[8][BB_ID_MAX])
{
    static const char *const x[] = { "x", NULL }, *const xy[] = { "x", "y", NULL }, *const y[] = { "y", NULL };
    ct_team(t, "alpha");
    ct_team(t, "beta");
    must_post(t, "alpha", "alice", "first", x, NULL, 1000, ids[0]);            /* p0 alice x      thread p0 */
    must_post(t, "alpha", "bob", "reply", xy, ids[0], 2000, ids[1]);           /* p1 bob   x y    reply p0 */
    must_post(t, "alpha", "alice", "deeper", y, ids[1], 3000, ids[2]);         /* p2 alice y      reply p1 */
    must_post(t, "alpha", "carol", "hey @alice look", NULL, NULL, 4000, ids[3]); /* p3 carol mentions alice */
    must_post(t, "alpha", "alice", "again", x, NULL, 5000, ids[4]);            /* p4 alice x */
    must_post(t, "beta", "alice", "elsewhere @alice", x, NULL, 6000, ids[5]);  /* p5 other team */
    must_post(t, "alpha", "alice", "gone @alice", x, ids[0], 7000, ids[6]);    /* p6 deleted below */
    must_post(t, "alpha", "dave", "@bob hi", NULL, NULL, 8000, ids[7]);        /* p7 mentions bob only */
    OK(t->ops->post_delete(t->st, &t->call, "alpha", ids[6], 9000, &e_));
}

Test(contract, list_every_filter_alone_and_combined, .timeout = 60)
{
    ct t;
    char ids[8][BB_ID_MAX];
    bb_post_query q;
    ct_open(&t);
    filter_fixture(&t, ids);

    q = query("alpha");
    expect_page(&t, &q, ids, (int[]){ 7, 4, 3, 2, 1, 0, -1 }, 6, "no filter, newest first");
    q.ascending = true;
    expect_page(&t, &q, ids, (int[]){ 0, 1, 2, 3, 4, 7, -1 }, 6, "no filter, oldest first");

    q = query("alpha"); q.author = "alice";
    expect_page(&t, &q, ids, (int[]){ 4, 2, 0, -1 }, 3, "author");
    q.ascending = true;
    expect_page(&t, &q, ids, (int[]){ 0, 2, 4, -1 }, 3, "author asc");
    q = query("alpha"); q.author = "nobody";
    expect_page(&t, &q, ids, (int[]){ -1 }, 0, "unknown author");

    q = query("alpha"); q.tag = "x";
    expect_page(&t, &q, ids, (int[]){ 4, 1, 0, -1 }, 3, "tag x");
    q.ascending = true;
    expect_page(&t, &q, ids, (int[]){ 0, 1, 4, -1 }, 3, "tag x asc");
    q = query("alpha"); q.tag = "y";
    expect_page(&t, &q, ids, (int[]){ 2, 1, -1 }, 2, "tag y");
    q = query("alpha"); q.tag = "X";
    expect_page(&t, &q, ids, (int[]){ -1 }, 0, "tags are exact (case-sensitive)");

    q = query("alpha"); q.thread_id = ids[0];
    expect_page(&t, &q, ids, (int[]){ 2, 1, 0, -1 }, 3, "thread: root and every reply");
    q.ascending = true;
    expect_page(&t, &q, ids, (int[]){ 0, 1, 2, -1 }, 3, "thread asc");
    q = query("alpha"); q.thread_id = ids[3];
    expect_page(&t, &q, ids, (int[]){ 3, -1 }, 1, "thread of a lone post");

    q = query("alpha"); q.mentions_of = "alice";
    expect_page(&t, &q, ids, (int[]){ 3, 1, -1 }, 2, "mentions: replies to alice and @alice");
    q = query("alpha"); q.mentions_of = "bob";
    expect_page(&t, &q, ids, (int[]){ 7, 2, -1 }, 2, "mentions of bob");

    q = query("alpha"); q.author = "alice"; q.tag = "x";
    expect_page(&t, &q, ids, (int[]){ 4, 0, -1 }, 2, "author + tag");
    q = query("alpha"); q.author = "bob"; q.thread_id = ids[0];
    expect_page(&t, &q, ids, (int[]){ 1, -1 }, 1, "author + thread");
    q = query("alpha"); q.tag = "y"; q.thread_id = ids[0]; q.ascending = true;
    expect_page(&t, &q, ids, (int[]){ 1, 2, -1 }, 2, "tag + thread asc");
    q = query("alpha"); q.author = "alice"; q.tag = "y"; q.thread_id = ids[0];
    expect_page(&t, &q, ids, (int[]){ 2, -1 }, 1, "author + tag + thread");
    q = query("alpha"); q.mentions_of = "alice"; q.tag = "x";
    expect_page(&t, &q, ids, (int[]){ 1, -1 }, 1, "mentions + tag");
    q = query("alpha"); q.mentions_of = "alice"; q.author = "carol";
    expect_page(&t, &q, ids, (int[]){ 3, -1 }, 1, "mentions + author");

    q = query("beta");
    expect_page(&t, &q, ids, (int[]){ 5, -1 }, 1, "other team sees only its own");
    q = query("beta"); q.mentions_of = "alice";
    expect_page(&t, &q, ids, (int[]){ 5, -1 }, 1, "mentions within the other team");
    ct_close(&t);
}

Test(contract, list_pagination_edges, .timeout = 90)
{
    ct t;
    char ids[150][BB_ID_MAX];
    bb_post_query q;
    bb_post_page pg;
    bb_error err;
    int expect[101];
    ct_open(&t);
    ct_team(&t, "alpha");
    for (int i = 0; i < 150; i++) must_post(&t, "alpha", i % 2 ? "odd" : "even", "post", NULL, NULL, 10000 + i, ids[i]);

    q = query("alpha"); q.limit = 1;
    expect_page(&t, &q, ids, (int[]){ 149, -1 }, 150, "limit 1");
    q.offset = 149;
    expect_page(&t, &q, ids, (int[]){ 0, -1 }, 150, "limit 1, last offset");
    q.offset = 150;
    expect_page(&t, &q, ids, (int[]){ -1 }, 150, "offset at the end");
    q.offset = 100000;
    expect_page(&t, &q, ids, (int[]){ -1 }, 150, "offset far past the end");

    q = query("alpha"); q.limit = 100;
    for (int i = 0; i < 100; i++) expect[i] = 149 - i;
    expect[100] = -1;
    expect_page(&t, &q, ids, expect, 150, "limit 100");
    q.offset = 100;
    for (int i = 0; i < 50; i++) expect[i] = 49 - i;
    expect[50] = -1;
    expect_page(&t, &q, ids, expect, 150, "second page holds the rest");

    q = query("alpha"); q.author = "odd"; q.limit = 10; q.offset = 70;
    expect_page(&t, &q, ids, (int[]){ 9, 7, 5, 3, 1, -1 }, 75, "filtered page near the end");

    q = query("alpha"); q.limit = 0;
    cr_assert_eq(t.ops->post_list(t.st, &t.call, &q, &pg, &err), BB_INVALID, "limit 0");
    q.limit = 101;
    cr_assert_eq(t.ops->post_list(t.st, &t.call, &q, &pg, &err), BB_INVALID, "limit 101");
    q.limit = 10; q.offset = -1;
    cr_assert_eq(t.ops->post_list(t.st, &t.call, &q, &pg, &err), BB_INVALID, "negative offset");
    q = query("nosuchteam");
    OK(t.ops->post_list(t.st, &t.call, &q, &pg, &e_));
    cr_assert_eq(pg.n, 0);
    cr_assert_eq(pg.total, 0);
    bb_post_page_clear(&pg);
    ct_close(&t);
}

static void create_with_id(ct *t, const char *team, const char *id, const char *author, const char *tag,
                           const char *parent, int64_t when)
{
    bb_post p, out;
    bool replayed;
    const char *tags[] = { tag, NULL };
    memset(&p, 0, sizeof p);
    snprintf(p.id, sizeof p.id, "%s", id);
    snprintf(p.team, sizeof p.team, "%s", team);
    snprintf(p.parent_id, sizeof p.parent_id, "%s", parent ? parent : "");
    p.author = (char *)author;
    p.content = "same time";
    p.tags = (char **)tags;
    p.n_tags = tag ? 1 : 0;
    p.created_ms = when;
    OK(t->ops->post_create(t->st, &t->call, &p, NULL, &out, &replayed, &e_));
    bb_post_clear(&out);
}

Test(contract, identical_timestamps_tie_broken_by_id, .timeout = 60)
{
    ct t;
    char ids[4][BB_ID_MAX] = { "01AAAAAAAAAAAAAAAAAAAAAAAB", "01AAAAAAAAAAAAAAAAAAAAAAAC",
                               "01AAAAAAAAAAAAAAAAAAAAAAAD", "01AAAAAAAAAAAAAAAAAAAAAAAA" };
    bb_post_query q;
    ct_open(&t);
    ct_team(&t, "alpha");
    /* Inserted out of id order, all at one millisecond. */
    create_with_id(&t, "alpha", ids[2], "alice", "t", NULL, 5000);
    create_with_id(&t, "alpha", ids[0], "alice", "t", NULL, 5000);
    create_with_id(&t, "alpha", ids[3], "alice", "t", NULL, 5000);
    create_with_id(&t, "alpha", ids[1], "alice", "t", ids[3], 5000);
    q = query("alpha");
    expect_page(&t, &q, ids, (int[]){ 2, 1, 0, 3, -1 }, 4, "desc by id");
    q.ascending = true;
    expect_page(&t, &q, ids, (int[]){ 3, 0, 1, 2, -1 }, 4, "asc by id");
    q = query("alpha"); q.author = "alice";
    expect_page(&t, &q, ids, (int[]){ 2, 1, 0, 3, -1 }, 4, "author filter, desc by id");
    q = query("alpha"); q.tag = "t"; q.ascending = true;
    expect_page(&t, &q, ids, (int[]){ 3, 0, 1, 2, -1 }, 4, "tag filter, asc by id");
    q = query("alpha"); q.thread_id = ids[3];
    expect_page(&t, &q, ids, (int[]){ 1, 3, -1 }, 2, "thread, desc by id");
    q = query("alpha"); q.limit = 2; q.offset = 1;
    expect_page(&t, &q, ids, (int[]){ 1, 0, -1 }, 4, "ties paginate stably");
    ct_close(&t);
}

static bool has_str(char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) if (strcmp(v[i], s) == 0) return true;
    return false;
}

Test(contract, soft_deleted_posts_are_invisible_everywhere, .timeout = 60)
{
    ct t;
    static const char *const solo[] = { "solo-tag", NULL }, *const shared[] = { "shared", NULL };
    char root[BB_ID_MAX], reply[BB_ID_MAX], keep[BB_ID_MAX];
    bb_post got;
    bb_post_query q;
    bb_error err;
    char **v;
    size_t n;
    ct_open(&t);
    ct_team(&t, "alpha");
    must_post(&t, "alpha", "ghost", "boo", solo, NULL, 1000, root);
    must_post(&t, "alpha", "ghost", "boo again", shared, root, 2000, reply);
    must_post(&t, "alpha", "alice", "stays", shared, NULL, 3000, keep);
    OK(t.ops->post_delete(t.st, &t.call, "alpha", root, 4000, &e_));
    OK(t.ops->post_delete(t.st, &t.call, "alpha", reply, 4001, &e_));
    cr_assert_eq(t.ops->post_delete(t.st, &t.call, "alpha", reply, 4002, &err), BB_NOT_FOUND, "delete twice");

    cr_assert_eq(t.ops->post_get(t.st, &t.call, "alpha", root, &got, &err), BB_NOT_FOUND, "get");
    q = query("alpha");
    expect_page(&t, &q, &keep, (int[]){ 0, -1 }, 1, "list + total");
    q = query("alpha"); q.author = "ghost";
    expect_page(&t, &q, NULL, (int[]){ -1 }, 0, "author filter");
    q = query("alpha"); q.tag = "solo-tag";
    expect_page(&t, &q, NULL, (int[]){ -1 }, 0, "tag filter");
    q = query("alpha"); q.tag = "shared";
    expect_page(&t, &q, &keep, (int[]){ 0, -1 }, 1, "tag shared with a live post");
    q = query("alpha"); q.thread_id = root;
    expect_page(&t, &q, NULL, (int[]){ -1 }, 0, "thread");
    q = query("alpha"); q.mentions_of = "ghost";
    expect_page(&t, &q, NULL, (int[]){ -1 }, 0, "mentions");
    cr_assert_eq(ct_post(&t, "alpha", "bob", "late reply", NULL, root, 5000, NULL, &err), BB_NOT_FOUND, "as parent");

    OK(t.ops->distinct(t.st, &t.call, "alpha", BB_DISTINCT_AUTHOR, "", 10, &v, &n, &e_));
    cr_assert(!has_str(v, n, "ghost"), "distinct authors skip deleted posts");
    cr_assert(has_str(v, n, "alice"));
    bb_strv_free(v, n);
    OK(t.ops->distinct(t.st, &t.call, "alpha", BB_DISTINCT_TAG, "", 10, &v, &n, &e_));
    cr_assert(!has_str(v, n, "solo-tag"), "distinct tags skip deleted posts");
    cr_assert(has_str(v, n, "shared"));
    bb_strv_free(v, n);
    ct_close(&t);
}

Test(contract, distinct_by_use_with_prefix, .timeout = 60)
{
    ct t;
    static const char *const t1[] = { "rust", "ruby", NULL }, *const t2[] = { "rust", NULL },
                             *const t3[] = { "go", "rust", NULL };
    char **v;
    size_t n;
    ct_open(&t);
    ct_team(&t, "alpha");
    ct_team(&t, "beta");
    must_post(&t, "alpha", "bob", "1", t1, NULL, 1, NULL);
    must_post(&t, "alpha", "alice", "2", t2, NULL, 2, NULL);
    must_post(&t, "alpha", "alice", "3", t3, NULL, 3, NULL);
    must_post(&t, "alpha", "alina", "4", NULL, NULL, 4, NULL);
    must_post(&t, "beta", "zed", "5", t1, NULL, 5, NULL);
    OK(t.ops->distinct(t.st, &t.call, "alpha", BB_DISTINCT_TAG, "", 10, &v, &n, &e_));
    cr_assert_eq(n, 3);
    cr_assert_str_eq(v[0], "rust", "most used first");
    bb_strv_free(v, n);
    OK(t.ops->distinct(t.st, &t.call, "alpha", BB_DISTINCT_TAG, "ru", 10, &v, &n, &e_));
    cr_assert_eq(n, 2);
    cr_assert_str_eq(v[0], "rust");
    cr_assert_str_eq(v[1], "ruby");
    bb_strv_free(v, n);
    OK(t.ops->distinct(t.st, &t.call, "alpha", BB_DISTINCT_AUTHOR, "al", 10, &v, &n, &e_));
    cr_assert_eq(n, 2);
    cr_assert_str_eq(v[0], "alice");
    cr_assert_str_eq(v[1], "alina");
    bb_strv_free(v, n);
    OK(t.ops->distinct(t.st, &t.call, "alpha", BB_DISTINCT_AUTHOR, "", 1, &v, &n, &e_));
    cr_assert_eq(n, 1, "limit honoured");
    cr_assert_str_eq(v[0], "alice");
    bb_strv_free(v, n);
    OK(t.ops->distinct(t.st, &t.call, "alpha", BB_DISTINCT_AUTHOR, "z", 10, &v, &n, &e_));
    cr_assert_eq(n, 0, "other team's authors are not listed");
    bb_strv_free(v, n);
    ct_close(&t);
}

/* ---- idempotency ----------------------------------------------------------------------- */

static bb_status idem_create(ct *t, const char *key, uint8_t hash_fill, int64_t expires_ms, const char *content,
                             bb_post *out, bool *replayed, bb_error *err)
{
    bb_post p;
    bb_idempotency idem;
    memset(&p, 0, sizeof p);
    memset(&idem, 0, sizeof idem);
    bb_new_ulid(p.id, sizeof p.id);
    snprintf(p.team, sizeof p.team, "alpha");
    p.author = "alice";
    p.content = (char *)content;
    p.created_ms = bb_wall_ms();
    idem.key = key;
    memset(idem.request_hash, hash_fill, sizeof idem.request_hash);
    idem.expires_ms = expires_ms;
    bb_error_clear(err);
    return t->ops->post_create(t->st, &t->call, &p, &idem, out, replayed, err);
}

static int64_t team_total(ct *t, const char *team)
{
    bb_post_query q = query(team);
    bb_post_page pg;
    int64_t n;
    OK(t->ops->post_list(t->st, &t->call, &q, &pg, &e_));
    n = pg.total;
    bb_post_page_clear(&pg);
    return n;
}

Test(contract, idempotency_replay_conflict_expiry_purge, .timeout = 60)
{
    ct t;
    bb_post first, again, other;
    bool replayed = true;
    bb_error err;
    int64_t later = bb_wall_ms() + 3600000;
    ct_open(&t);
    ct_team(&t, "alpha");
    ct_team(&t, "beta");
    cr_assert_eq(idem_create(&t, "k-1", 1, later, "once", &first, &replayed, &err), BB_OK, "%s", err.msg);
    cr_assert_eq(replayed, false);
    cr_assert_eq(idem_create(&t, "k-1", 1, later, "once", &again, &replayed, &err), BB_OK, "%s", err.msg);
    cr_assert_eq(replayed, true, "same key, same request: replayed");
    cr_assert_str_eq(again.id, first.id, "the original post comes back");
    cr_assert_str_eq(again.content, "once");
    bb_post_clear(&again);
    cr_assert_eq(idem_create(&t, "k-1", 2, later, "different", &other, &replayed, &err), BB_CONFLICT,
                 "same key, other request");
    cr_assert_eq(team_total(&t, "alpha"), 1, "exactly one post");

    /* Keys are per team. */
    {
        bb_post p, out;
        bb_idempotency idem = { .key = "k-1", .expires_ms = later };
        memset(&p, 0, sizeof p);
        bb_new_ulid(p.id, sizeof p.id);
        snprintf(p.team, sizeof p.team, "beta");
        p.author = "bob";
        p.content = "beta's own";
        memset(idem.request_hash, 9, sizeof idem.request_hash);
        OK(t.ops->post_create(t.st, &t.call, &p, &idem, &out, &replayed, &e_));
        cr_assert_eq(replayed, false, "another team's key of the same name is independent");
        bb_post_clear(&out);
    }

    /* An expired record no longer binds its key. */
    cr_assert_eq(idem_create(&t, "k-old", 3, bb_wall_ms() - 1000, "old", &other, &replayed, &err), BB_OK, "%s", err.msg);
    bb_post_clear(&other);
    cr_assert_eq(idem_create(&t, "k-old", 4, later, "new", &other, &replayed, &err), BB_OK,
                 "expired key reused: %s", err.msg);
    cr_assert_eq(replayed, false);
    bb_post_clear(&other);

    /* purge_expired drops records that expired before `now`. */
    cr_assert_eq(idem_create(&t, "k-purge", 5, bb_wall_ms() + 60000, "p", &other, &replayed, &err), BB_OK);
    bb_post_clear(&other);
    OK(t.ops->purge_expired(t.st, &t.call, bb_wall_ms() + 30000, &e_));
    cr_assert_eq(idem_create(&t, "k-purge", 6, later, "q", &other, &replayed, &err), BB_CONFLICT,
                 "a record not yet expired at purge time survives");
    OK(t.ops->purge_expired(t.st, &t.call, bb_wall_ms() + 120000, &e_));
    cr_assert_eq(idem_create(&t, "k-purge", 6, later, "q", &other, &replayed, &err), BB_OK,
                 "purged record frees its key: %s", err.msg);
    cr_assert_eq(replayed, false);
    bb_post_clear(&other);
    bb_post_clear(&first);
    cr_assert_eq(team_total(&t, "alpha"), 5, "once, old, new, p, q");
    ct_close(&t);
}

/* ---- migrations ----------------------------------------------------------------------- */

typedef struct mig_seen { int n, applied, last_version; bool ordered; } mig_seen;

static bb_status see_migration(void *ud, const bb_migration_info *m)
{
    mig_seen *s = ud;
    if (m->version <= s->last_version) s->ordered = false;
    s->last_version = m->version;
    s->n++;
    if (m->applied && m->applied_ms > 0) s->applied++;
    return BB_OK;
}

Test(contract, migrate_status_and_apply_are_idempotent, .timeout = 60)
{
    ct t;
    mig_seen a = { 0, 0, 0, true }, b = { 0, 0, 0, true }, c = { 0, 0, 0, true };
    ct_open(&t);   /* opened with BB_APP_MIGRATE: everything applied */
    OK(t.ops->migrate(t.st, &t.call, false, see_migration, &a, &e_));
    cr_assert_gt(a.n, 0, "at least one migration is reported");
    cr_assert_eq(a.applied, a.n, "all applied after open (%d of %d)", a.applied, a.n);
    cr_assert(a.ordered, "reported in version order");
    OK(t.ops->migrate(t.st, &t.call, true, see_migration, &b, &e_));
    cr_assert_eq(b.n, a.n);
    cr_assert_eq(b.applied, a.n, "applying again changes nothing");
    ct_team(&t, "alpha");
    must_post(&t, "alpha", "alice", "survives", NULL, NULL, 1, NULL);
    {
        bb_error err;
        cr_assert(ct_reopen(&t, BB_APP_STORAGE | BB_APP_MIGRATE, &err), "%s", err.msg);
    }
    OK(t.ops->migrate(t.st, &t.call, false, see_migration, &c, &e_));
    cr_assert_eq(c.applied, a.n);
    cr_assert_eq(team_total(&t, "alpha"), 1, "data kept across re-migration");
    ct_close(&t);
}

/* ---- export / import -------------------------------------------------------------------- */

typedef struct lines { char **v; size_t n, cap; } lines;

static bb_status add_line(void *ud, const bb_record *rec)
{
    lines *l = ud;
    char *s = bb_record_to_json(rec);
    if (!s) return BB_INTERNAL;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) { free(s); return BB_INTERNAL; }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return BB_OK;
}

static void lines_free(lines *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

typedef struct line_src { lines *l; size_t at; size_t fail_at; bb_record cur; } line_src;

static bb_status next_line(void *ud, bb_record *rec, bb_error *err)
{
    line_src *s = ud;
    char why[256];
    bb_record_clear(&s->cur);
    if (s->fail_at && s->at + 1 == s->fail_at) return bb_fail(err, BB_INVALID, NULL, "line %zu: broken on purpose", s->at + 1);
    if (s->at >= s->l->n) return BB_NOT_FOUND;
    if (!bb_record_from_json(s->l->v[s->at], &s->cur, why, sizeof why))
        return bb_fail(err, BB_INVALID, NULL, "line %zu: %s", s->at + 1, why);
    s->at++;
    *rec = s->cur;
    return BB_OK;
}

static void populate(ct *t)
{
    static const char *const tags[] = { "ü-tag", "日本", NULL };
    char root[BB_ID_MAX], reply[BB_ID_MAX], gone[BB_ID_MAX];
    bb_api_key k1 = make_key("K01", "alpha", 1), k2 = make_key("K02", "beta", 2);
    ct_team(t, "beta");
    ct_team(t, "alpha");
    OK(t->ops->key_create(t->st, &t->call, &k2, &e_));
    OK(t->ops->key_create(t->st, &t->call, &k1, &e_));
    OK(t->ops->key_revoke(t->st, &t->call, "K02", 1800000000000, &e_));
    must_post(t, "alpha", "alice", "root \"quoted\" \n line", tags, NULL, 1000, root);
    must_post(t, "alpha", "bob", "reply", NULL, root, 2000, reply);
    must_post(t, "beta", "carol", "beta post", tags, NULL, 2000, NULL);
    must_post(t, "alpha", "dave", "to be deleted", tags, reply, 3000, gone);
    OK(t->ops->post_delete(t->st, &t->call, "alpha", gone, 4000, &e_));
}

Test(contract, export_import_roundtrip_identical, .timeout = 60)
{
    ct a, b;
    lines la = { 0 }, lb = { 0 };
    line_src src;
    ct_open(&a);
    populate(&a);
    OK(a.ops->export_all(a.st, &a.call, add_line, &la, &e_));
    cr_assert_eq(la.n, 2 + 2 + 4, "teams, keys and posts (deleted ones too): %zu lines", la.n);
    cr_assert(strstr(la.v[0], "\"alpha\""), "teams by name first: %s", la.v[0]);
    cr_assert(strstr(la.v[2], "\"K01\""), "keys by id: %s", la.v[2]);
    cr_assert(strstr(la.v[7], "deletedAt\":4000"), "the deleted post is exported with its mark: %s", la.v[7]);
    ct_open(&b);
    memset(&src, 0, sizeof src);
    src.l = &la;
    OK(b.ops->import_all(b.st, &b.call, next_line, &src, &e_));
    bb_record_clear(&src.cur);
    OK(b.ops->export_all(b.st, &b.call, add_line, &lb, &e_));
    cr_assert_eq(lb.n, la.n);
    for (size_t i = 0; i < la.n; i++) cr_assert_str_eq(lb.v[i], la.v[i], "line %zu differs", i + 1);
    /* The imported store behaves like the original. */
    {
        bb_post_query q = query("alpha");
        q.tag = "日本";
        bb_post_page pg;
        OK(b.ops->post_list(b.st, &b.call, &q, &pg, &e_));
        cr_assert_eq(pg.total, 1, "imported tags are queryable, deleted post stays deleted");
        bb_post_page_clear(&pg);
    }
    lines_free(&la);
    lines_free(&lb);
    ct_close(&a);
    ct_close(&b);
}

Test(contract, import_of_a_bad_record_leaves_nothing, .timeout = 60)
{
    ct a, b;
    lines la = { 0 }, lb = { 0 };
    line_src src;
    bb_error err;
    ct_open(&a);
    populate(&a);
    OK(a.ops->export_all(a.st, &a.call, add_line, &la, &e_));
    ct_open(&b);

    /* The source fails on its 6th record: nothing of the first five stays. */
    memset(&src, 0, sizeof src);
    src.l = &la;
    src.fail_at = 6;
    bb_error_clear(&err);
    cr_assert_neq(b.ops->import_all(b.st, &b.call, next_line, &src, &err), BB_OK);
    cr_assert(strstr(err.msg, "line 6"), "the source's message comes back: %s", err.msg);
    bb_record_clear(&src.cur);
    OK(b.ops->export_all(b.st, &b.call, add_line, &lb, &e_));
    cr_assert_eq(lb.n, 0, "nothing imported (%zu records)", lb.n);

    /* A record the database refuses (post of an unknown team) rolls back too. */
    {
        char *bad = strdup("{\"author\":\"x\",\"content\":\"c\",\"createdAt\":1,\"deletedAt\":null,\"id\":\"01BADBADBADBADBADBADBADBAD\","
                           "\"parentId\":null,\"tags\":[],\"team\":\"nosuchteam\",\"threadId\":\"01BADBADBADBADBADBADBADBAD\",\"type\":\"post\"}");
        lines l2 = { 0 };
        cr_assert(bad);
        l2.v = malloc(3 * sizeof *l2.v);
        cr_assert(l2.v);
        l2.v[0] = strdup(la.v[0]);   /* team alpha */
        l2.v[1] = bad;
        l2.n = 2;
        l2.cap = 3;
        memset(&src, 0, sizeof src);
        src.l = &l2;
        cr_assert_neq(b.ops->import_all(b.st, &b.call, next_line, &src, &err), BB_OK, "post of an unknown team");
        bb_record_clear(&src.cur);
        lines_free(&l2);
    }
    OK(b.ops->export_all(b.st, &b.call, add_line, &lb, &e_));
    cr_assert_eq(lb.n, 0, "still nothing (%zu records)", lb.n);

    /* Importing twice conflicts and leaves the first import alone. */
    memset(&src, 0, sizeof src);
    src.l = &la;
    OK(b.ops->import_all(b.st, &b.call, next_line, &src, &e_));
    bb_record_clear(&src.cur);
    memset(&src, 0, sizeof src);
    src.l = &la;
    cr_assert_neq(b.ops->import_all(b.st, &b.call, next_line, &src, &err), BB_OK, "duplicate import");
    bb_record_clear(&src.cur);
    OK(b.ops->export_all(b.st, &b.call, add_line, &lb, &e_));
    cr_assert_eq(lb.n, la.n);
    lines_free(&la);
    lines_free(&lb);
    ct_close(&a);
    ct_close(&b);
}

/* ---- health and concurrency -------------------------------------------------------------- */

Test(contract, health_is_a_round_trip, .timeout = 60)
{
    ct t;
    char detail[256] = "";
    bb_call call = { "health", NULL, 0 };
    ct_open(&t);
    call.deadline_ms = bb_now_ms() + 2000;
    OK(t.ops->health(t.st, &call, detail, sizeof detail, &e_));
    cr_assert(detail[0], "health gives a detail line");
    ct_close(&t);
}

typedef struct writer { ct *t; int index; int failures; char why[256]; } writer;

#define WRITERS 4
#define PER_WRITER 1000

static void *write_loop(void *ud)
{
    writer *w = ud;
    char author[32], content[64];
    static const char *const tags[] = { "load", NULL };
    snprintf(author, sizeof author, "writer%d", w->index);
    for (int i = 0; i < PER_WRITER; i++) {
        bb_error err;
        snprintf(content, sizeof content, "post %d of writer %d", i, w->index);
        if (ct_post(w->t, "alpha", author, content, tags, NULL, 1700000000000 + i, NULL, &err) != BB_OK) {
            if (!w->failures++) snprintf(w->why, sizeof w->why, "%s", err.msg);
        }
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

Test(contract, concurrent_writers_4x1000, .timeout = 180)
{
    ct t;
    pthread_t th[WRITERS];
    writer w[WRITERS];
    char **all;
    size_t n = 0;
    ct_open(&t);
    ct_team(&t, "alpha");
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (writer){ &t, i, 0, "" };
        cr_assert_eq(pthread_create(&th[i], NULL, write_loop, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < WRITERS; i++) cr_assert_eq(w[i].failures, 0, "writer %d: %d failures (%s)", i, w[i].failures, w[i].why);
    cr_assert_eq(team_total(&t, "alpha"), WRITERS * PER_WRITER);
    all = calloc(WRITERS * PER_WRITER + 100, sizeof *all);
    cr_assert(all);
    for (int64_t off = 0;; off += 100) {
        bb_post_query q = query("alpha");
        bb_post_page pg;
        q.offset = off;
        OK(t.ops->post_list(t.st, &t.call, &q, &pg, &e_));
        size_t got = pg.n;
        for (size_t i = 0; i < pg.n && n < WRITERS * PER_WRITER + 100; i++) all[n++] = strdup(pg.posts[i].id);
        bb_post_page_clear(&pg);
        if (got == 0 || off > WRITERS * PER_WRITER) break;
    }
    cr_assert_eq(n, WRITERS * PER_WRITER, "listed %zu posts", n);
    qsort(all, n, sizeof *all, cmp_str);
    for (size_t i = 1; i < n; i++) cr_assert_str_neq(all[i - 1], all[i], "post %s listed twice", all[i]);
    for (size_t i = 0; i < n; i++) free(all[i]);
    free(all);
    {
        bb_post_query q = query("alpha");
        q.author = "writer2";
        q.limit = 1;
        bb_post_page pg;
        OK(t.ops->post_list(t.st, &t.call, &q, &pg, &e_));
        cr_assert_eq(pg.total, PER_WRITER);
        bb_post_page_clear(&pg);
    }
    ct_close(&t);
}

/* storage.auto_migrate: serve migrates a fresh database, or refuses it when off. */
Test(contract, auto_migrate_applies_or_refuses_pending_migrations, .timeout = 60)
{
    ct t;
    bb_error err;
    mig_seen seen = { 0, 0, 0, true };
    ct_prepare(&t, "storage:\n  auto_migrate: false\n");
    bb_error_clear(&err);
    cr_assert_null(ct_reopen(&t, BB_APP_STORAGE | BB_APP_MIGRATE, &err), "fresh schema served unmigrated");
    cr_assert(strstr(err.msg, "pending") && strstr(err.msg, "botboard migrate"), "says what to do: %s", err.msg);
    /* `botboard migrate`: the explicit apply, whatever auto_migrate says */
    cr_assert(ct_reopen(&t, BB_APP_STORAGE, &err), "%s", err.msg);
    OK(t.ops->migrate(t.st, &t.call, true, see_migration, &seen, &e_));
    cr_assert(ct_reopen(&t, BB_APP_STORAGE | BB_APP_MIGRATE, &err), "migrated store opens: %s", err.msg);
    ct_close(&t);
    seen = (mig_seen){ 0, 0, 0, true };

    ct_prepare(&t, NULL);   /* auto_migrate defaults to true */
    cr_assert(ct_reopen(&t, BB_APP_STORAGE | BB_APP_MIGRATE, &err), "%s", err.msg);
    OK(t.ops->migrate(t.st, &t.call, false, see_migration, &seen, &e_));
    cr_assert_gt(seen.n, 0);
    cr_assert_eq(seen.applied, seen.n, "auto_migrate applied everything");
    ct_close(&t);
}
