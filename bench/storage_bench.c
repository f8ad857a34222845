/*
 * bench/storage_bench.c — storage backend benchmark: load N posts (default
 * 1,000,000) and measure insert throughput and the p50/p99 latency of the
 * queries a feed makes (first page, agent filter, tag filter, thread) at
 * 1,000 posts and at N posts; then a mixed read/write load at two pool sizes.
 *
 * The backend is chosen like the contract suite:
 *   BB_BENCH_BACKEND       plugin name (default sqlite)
 *   BB_BENCH_STORAGE_YAML  YAML with the `storage:` key; {{DIR}} = a fresh temp
 *                          dir, {{CONNINFO}} = BB_BENCH_CONNINFO
 *   BB_BENCH_PLUGIN_DIR    extra plugin directory
 *   BB_BENCH_POSTS         posts to load (default 1000000)
 * Run: `make bench-storage` (or bench/storage_bench from the build tree).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "host.h"

#define AUTHORS 50
#define TAGS    20
#define THREAD  10         /* posts per thread: a root and 9 replies */
#define SAMPLES 2000       /* queries per latency figure */
#define SMALL   1000

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of this process: on a shared machine wall time alone misleads. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)   /* xorshift: reproducible and cheap; not for secrets */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* ---- the synthetic data set ----------------------------------------------------- */

static void post_id(int64_t i, char out[BB_ID_MAX]) { snprintf(out, BB_ID_MAX, "B%025" PRId64, i); }

typedef struct gen {
    int64_t next, end;
    char author[32], content[160], tag_a[32], tag_b[32];
    char *tags[2];
} gen;

static void gen_post(gen *g, int64_t i, bb_post *p)
{
    memset(p, 0, sizeof *p);
    post_id(i, p->id);
    snprintf(p->team, sizeof p->team, "bench");
    snprintf(g->author, sizeof g->author, "agent%02d", (int)(i * 7 % AUTHORS));
    snprintf(g->tag_a, sizeof g->tag_a, "tag%02d", (int)(i % TAGS));
    snprintf(g->tag_b, sizeof g->tag_b, "tag%02d", (int)((i / 3 + 7) % TAGS));
    snprintf(g->content, sizeof g->content,
             "Post %" PRId64 " from %s: a benchmark line long enough to look like a real agent update.", i, g->author);
    g->tags[0] = g->tag_a;
    g->tags[1] = g->tag_b;
    p->author = g->author;
    p->content = g->content;
    p->tags = g->tags;
    p->n_tags = strcmp(g->tag_a, g->tag_b) ? 2 : 1;
    if (i % THREAD) {
        post_id(i - i % THREAD, p->parent_id);
        post_id(i - i % THREAD, p->thread_id);
    } else {
        post_id(i, p->thread_id);
    }
    p->created_ms = 1700000000000 + i * 10;
}

static bb_status next_record(void *ud, bb_record *rec, bb_error *err)
{
    gen *g = ud;
    (void)err;
    if (g->next >= g->end) return BB_NOT_FOUND;
    memset(rec, 0, sizeof *rec);
    rec->kind = BB_REC_POST;
    gen_post(g, g->next++, &rec->post);
    return BB_OK;
}

/* ---- setup ----------------------------------------------------------------------- */

static char *make_config(const char *dir, const char *extra_conf)
{
    const char *backend = env_or("BB_BENCH_BACKEND", "sqlite"), *pdir = env_or("BB_BENCH_PLUGIN_DIR", "");
    const char *tmpl = env_or("BB_BENCH_STORAGE_YAML", NULL), *conninfo = env_or("BB_BENCH_CONNINFO", "");
    char def[512], text[8192], path[4096];
    const char *in;
    char *o = text;
    FILE *f;
    snprintf(def, sizeof def, "storage:\n  backend: %s\n  sqlite:\n    path: \"{{DIR}}/bench.db\"\n", backend);
    if (!tmpl) tmpl = strcmp(backend, "sqlite") == 0 ? def : NULL;
    if (!tmpl) {
        snprintf(def, sizeof def, "storage:\n  backend: %s\n  %s:\n    conninfo: \"{{CONNINFO}}\"\n", backend, backend);
        tmpl = def;
    }
    o += snprintf(o, 512, "logging:\n  level: warn\n");
    if (*pdir) o += snprintf(o, 1024, "plugins:\n  path: [\"%s\"]\n", pdir);
    for (in = tmpl; *in && o < text + sizeof text - 1100;) {
        if (strncmp(in, "{{DIR}}", 7) == 0) { o += snprintf(o, 1024, "%s", dir); in += 7; }
        else if (strncmp(in, "{{CONNINFO}}", 12) == 0) { o += snprintf(o, 1024, "%s", conninfo); in += 12; }
        else *o++ = *in++;
    }
    *o = '\0';
    if (extra_conf) {
        snprintf(path, sizeof path, "%s/conf.d", dir);
        mkdir(path, 0700);
        snprintf(path, sizeof path, "%s/conf.d/50-bench.yaml", dir);
        if (!(f = fopen(path, "w")) || fputs(extra_conf, f) == EOF || fclose(f) != 0) return NULL;
    } else {
        snprintf(path, sizeof path, "%s/conf.d/50-bench.yaml", dir);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/botboard.yaml", dir);
    if (!(f = fopen(path, "w")) || fputs(text, f) == EOF || fclose(f) != 0) return NULL;
    return strdup(path);
}

typedef struct store { bb_app *app; const bb_storage_ops *ops; bb_storage *st; } store;

static int open_store(store *s, const char *dir, const char *extra)
{
    bb_error err;
    char *cfg = make_config(dir, extra);
    if (!cfg) { fprintf(stderr, "cannot write the config in %s\n", dir); return -1; }
    s->app = bb_app_open(cfg, BB_APP_STORAGE | BB_APP_MIGRATE, &err);
    free(cfg);
    if (!s->app) { fprintf(stderr, "storage: %s\n", err.msg); return -1; }
    s->ops = bb_app_storage(s->app, &s->st);
    return 0;
}

/* ---- measurements ------------------------------------------------------------------ */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef enum qkind { Q_FIRST, Q_AGENT, Q_TAG, Q_THREAD, Q_COUNT } qkind;
static const char *const qnames[Q_COUNT] = { "first page", "agent filter", "tag filter", "thread" };

typedef struct lat { double p50, p99; } lat;

static int measure(store *s, qkind k, int64_t n_posts, lat *out)
{
    static double t[SAMPLES];
    bb_call call = { "bench", NULL, 0 };
    for (int i = 0; i < SAMPLES; i++) {
        bb_post_query q = { .team = "bench", .limit = 10 };
        char author[32], tag[32], thread[BB_ID_MAX];
        bb_post_page pg;
        bb_error err;
        double t0;
        if (k == Q_AGENT) { snprintf(author, sizeof author, "agent%02d", (int)rnd(AUTHORS)); q.author = author; }
        if (k == Q_TAG) { snprintf(tag, sizeof tag, "tag%02d", (int)rnd(TAGS)); q.tag = tag; }
        if (k == Q_THREAD) {
            int64_t root = (int64_t)rnd((uint32_t)(n_posts / THREAD)) * THREAD;
            post_id(root, thread);
            q.thread_id = thread;
            q.ascending = true;
        }
        t0 = now_s();
        if (s->ops->post_list(s->st, &call, &q, &pg, &err) != BB_OK) {
            fprintf(stderr, "%s: %s\n", qnames[k], err.msg);
            return -1;
        }
        t[i] = now_s() - t0;
        if (pg.n == 0) { fprintf(stderr, "%s: empty page\n", qnames[k]); bb_post_page_clear(&pg); return -1; }
        bb_post_page_clear(&pg);
    }
    qsort(t, SAMPLES, sizeof t[0], cmp_d);
    out->p50 = t[SAMPLES / 2] * 1e3;
    out->p99 = t[SAMPLES * 99 / 100] * 1e3;
    return 0;
}

static int load(store *s, int64_t from, int64_t to, double *rate, double *cpu_rate)
{
    bb_call call = { "bench", NULL, 0 };
    bb_error err;
    double t0 = now_s(), c0 = cpu_s();
    /* Batches of 50,000: each import_all is one transaction. */
    for (int64_t at = from; at < to; at += 50000) {
        gen g = { .next = at, .end = at + 50000 < to ? at + 50000 : to };
        if (s->ops->import_all(s->st, &call, next_record, &g, &err) != BB_OK) {
            fprintf(stderr, "load: %s\n", err.msg);
            return -1;
        }
    }
    *rate = (double)(to - from) / (now_s() - t0);
    *cpu_rate = (double)(to - from) / (cpu_s() - c0);
    return 0;
}

/* post_create one at a time: one transaction per post, as the API does it. */
typedef struct mix { store *s; int writer; double until; long reads, writes, failures; int64_t base; } mix;

static void *mix_loop(void *ud)
{
    mix *m = ud;
    bb_call call = { "bench", NULL, 0 };
    gen g;
    int64_t i = m->base;
    while (now_s() < m->until) {
        bb_error err;
        if (m->writer) {
            bb_post p, out;
            bool replayed;
            gen_post(&g, i++, &p);
            p.parent_id[0] = '\0';
            p.thread_id[0] = '\0';
            if (m->s->ops->post_create(m->s->st, &call, &p, NULL, &out, &replayed, &err) == BB_OK) {
                m->writes++;
                bb_post_clear(&out);
            } else {
                m->failures++;
            }
        } else {
            bb_post_query q = { .team = "bench", .limit = 10 };
            bb_post_page pg;
            char tag[32];
            snprintf(tag, sizeof tag, "tag%02d", (int)(i++ % TAGS));
            if (i % 2) q.tag = tag;
            if (m->s->ops->post_list(m->s->st, &call, &q, &pg, &err) == BB_OK) { m->reads++; bb_post_page_clear(&pg); }
            else m->failures++;
        }
    }
    return NULL;
}

static int run_mix(store *s, int readers, int writers, double secs, int64_t base, double *rps, double *wps)
{
    pthread_t th[16];
    mix m[16];
    int n = readers + writers;
    long r = 0, w = 0, f = 0;
    double until = now_s() + secs;
    for (int i = 0; i < n; i++) {
        m[i] = (mix){ s, i < writers, until, 0, 0, 0, base + (int64_t)i * 10000000 };
        if (pthread_create(&th[i], NULL, mix_loop, &m[i]) != 0) return -1;
    }
    for (int i = 0; i < n; i++) { pthread_join(th[i], NULL); r += m[i].reads; w += m[i].writes; f += m[i].failures; }
    *rps = (double)r / secs;
    *wps = (double)w / secs;
    if (f) fprintf(stderr, "mixed load: %ld failed calls\n", f);
    return f ? -1 : 0;
}

int main(void)
{
    char tmpl[] = "/tmp/bb-bench-storage-XXXXXX", *dir;
    int64_t n_posts = strtoll(env_or("BB_BENCH_POSTS", "1000000"), NULL, 10);
    store s;
    bb_team team = { .name = "bench", .created_ms = 1700000000000 };
    bb_call call = { "bench", NULL, 0 };
    bb_error err;
    lat small[Q_COUNT], big[Q_COUNT];
    double rate_small, rate_big, cpu_small, cpu_big, create_rate, create_cpu, t0, c0, rps1, wps1, rps4, wps4;
    int rc = 1;
    if (n_posts < SMALL * 2) n_posts = SMALL * 2;
    if (!(dir = mkdtemp(tmpl))) { perror("mkdtemp"); return 1; }
    if (open_store(&s, dir, NULL) != 0) return 1;
    if (s.ops->team_create(s.st, &call, &team, &err) != BB_OK) { fprintf(stderr, "team: %s\n", err.msg); goto out; }

    printf("storage benchmark: backend %s, %" PRId64 " posts, %d authors, %d tags, threads of %d (dir %s)\n",
           env_or("BB_BENCH_BACKEND", "sqlite"), n_posts, AUTHORS, TAGS, THREAD, dir);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (load(&s, 0, SMALL, &rate_small, &cpu_small) != 0) goto out;
    for (int k = 0; k < Q_COUNT; k++) if (measure(&s, (qkind)k, SMALL, &small[k]) != 0) goto out;
    printf("loaded %d posts (import_all) at %.0f posts/s (%.0f per CPU second)\n", SMALL, rate_small, cpu_small);
    if (load(&s, SMALL, n_posts, &rate_big, &cpu_big) != 0) goto out;
    printf("loaded %" PRId64 " more posts (import_all, 50k per transaction) at %.0f posts/s (%.0f per CPU second)\n",
           n_posts - SMALL, rate_big, cpu_big);
    for (int k = 0; k < Q_COUNT; k++) if (measure(&s, (qkind)k, n_posts, &big[k]) != 0) goto out;

    t0 = now_s();
    c0 = cpu_s();
    for (int i = 0; i < 5000; i++) {
        bb_post p, o;
        bool replayed;
        gen g;
        gen_post(&g, n_posts + i, &p);
        p.parent_id[0] = p.thread_id[0] = '\0';
        if (s.ops->post_create(s.st, &call, &p, NULL, &o, &replayed, &err) != BB_OK) {
            fprintf(stderr, "create: %s\n", err.msg);
            goto out;
        }
        bb_post_clear(&o);
    }
    create_rate = 5000 / (now_s() - t0);
    create_cpu = 5000 / (cpu_s() - c0);
    printf("post_create, one transaction each, 1 thread: %.0f posts/s (%.0f per CPU second)\n\n", create_rate,
           create_cpu);

    printf("%-14s %22s %26s %8s\n", "query (limit 10)", "at 1k: p50 / p99 ms", "at N: p50 / p99 ms", "N/1k p50");
    for (int k = 0; k < Q_COUNT; k++)
        printf("%-16s %9.3f / %-9.3f   %11.3f / %-9.3f   %6.2fx%s\n", qnames[k], small[k].p50, small[k].p99, big[k].p50,
               big[k].p99, big[k].p50 / small[k].p50, big[k].p50 > 2 * small[k].p50 ? "  (over the 2x target)" : "");

    /* Pool size under a mixed load: 3 readers + 1 writer for 5 s each.
     * Each backend names its pool size its own way. */
    bool pg = strcmp(env_or("BB_BENCH_BACKEND", "sqlite"), "postgres") == 0;
    const char *pool1 = pg ? "storage:\n  postgres:\n    pool:\n      size: 1\n      max_overflow: 0\n"
                           : "storage:\n  sqlite:\n    connections: 1\n";
    const char *pool4 = pg ? "storage:\n  postgres:\n    pool:\n      size: 4\n      max_overflow: 0\n"
                           : "storage:\n  sqlite:\n    connections: 4\n";
    bb_app_close(s.app);
    if (open_store(&s, dir, pool1) != 0) return 1;
    if (run_mix(&s, 3, 1, 5.0, n_posts + 100000, &rps1, &wps1) != 0) goto out;
    bb_app_close(s.app);
    if (open_store(&s, dir, pool4) != 0) return 1;
    if (run_mix(&s, 3, 1, 5.0, n_posts + 900000000, &rps4, &wps4) != 0) goto out;
    printf("\nmixed load at N posts, 3 reader + 1 writer threads, 5 s:\n");
    printf("  pool of 1 connection : %8.0f reads/s %8.0f writes/s\n", rps1, wps1);
    printf("  pool of 4 connections: %8.0f reads/s %8.0f writes/s\n", rps4, wps4);
    rc = 0;
out:
    bb_app_close(s.app);
    if (!getenv("BB_BENCH_KEEP")) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
    return rc;
}
