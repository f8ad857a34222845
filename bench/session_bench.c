/*
 * bench/session_bench.c — sessions through the core (seal + id hash +
 * plugin), as the MCP transport uses them: N sessions created, then looked
 * up at random, from T threads.  Prints ops/s, p50/p99 per phase and RSS.
 *
 *   session_bench --backend memory|redis [--url redis://...] [--sessions N]
 *                 [--lookups N] [--threads T]
 *
 * bench/sessions/run.sh runs it for both backends (starting a throwaway
 * redis-server) and is what `make bench-sessions` calls.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "config.h"
#include "host.h"
#include "sessions.h"

#define BENCH_KEY "bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

typedef struct job {
    bb_sessions *s;
    char       (*ids)[BB_SESSION_ID_MAX];
    size_t       from, to;      /* create: the slice of ids this thread makes */
    size_t       lookups;
    size_t       n_ids;
    int64_t     *lat_ns;        /* one per op */
    size_t       n_lat;
    unsigned     seed;
    size_t       errors;
} job;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

static void *create_main(void *arg)
{
    job *j = arg;
    for (size_t i = j->from; i < j->to; i++) {
        bb_session s;
        bb_error err;
        bb_call call = { "bench", NULL, 0 };
        int64_t t0 = now_ns();
        memset(&s, 0, sizeof s);
        snprintf(s.team, sizeof s.team, "bench-team");
        snprintf(s.key_id, sizeof s.key_id, "01JBENCHKEY0000000000000000");
        snprintf(s.protocol, sizeof s.protocol, "2025-11-25");
        snprintf(s.client_name, sizeof s.client_name, "session_bench");
        snprintf(s.client_version, sizeof s.client_version, "1.0");
        if (bb_session_create(j->s, &call, &s, &err) != BB_OK) j->errors++;
        j->lat_ns[j->n_lat++] = now_ns() - t0;
        memcpy(j->ids[i], s.id, sizeof s.id);
    }
    return NULL;
}

static void *lookup_main(void *arg)
{
    job *j = arg;
    for (size_t i = 0; i < j->lookups; i++) {
        bb_session s;
        bb_error err;
        bb_call call = { "bench", NULL, 0 };
        size_t pick = (size_t)rand_r(&j->seed) % j->n_ids;
        int64_t t0 = now_ns();
        if (bb_session_load(j->s, &call, j->ids[pick], &s, &err) != BB_OK) j->errors++;
        else bb_session_clear(&s);
        j->lat_ns[j->n_lat++] = now_ns() - t0;
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void report(const char *backend, const char *phase, job *jobs, int threads, int64_t wall_ns)
{
    size_t total = 0, errors = 0, k = 0;
    int64_t *all;
    for (int t = 0; t < threads; t++) total += jobs[t].n_lat, errors += jobs[t].errors;
    all = malloc(total * sizeof *all);
    if (!all) return;
    for (int t = 0; t < threads; t++) {
        memcpy(all + k, jobs[t].lat_ns, jobs[t].n_lat * sizeof *all);
        k += jobs[t].n_lat;
    }
    qsort(all, total, sizeof *all, cmp_i64);
    printf("%-7s %-7s ops=%zu threads=%d ops/s=%.0f p50=%.1fus p99=%.1fus max=%.1fus errors=%zu rss=%ldKiB\n",
           backend, phase, total, threads, (double)total / ((double)wall_ns / 1e9), (double)all[total / 2] / 1000.0,
           (double)all[(size_t)((double)total * 0.99)] / 1000.0, (double)all[total - 1] / 1000.0, errors, rss_kib());
    free(all);
}

int main(int argc, char **argv)
{
    const char *backend = "memory", *url = "redis://127.0.0.1:6379/0";
    size_t n = 100000, lookups = 200000;
    int threads = 2;
    char dir[] = "/tmp/bb-sessbench.XXXXXX", path[256], yaml[1024], why[512];
    bb_error err;
    bb_app *app;
    bb_sessions *s;
    job jobs[16];
    pthread_t tid[16];
    FILE *f;
    int64_t t0;
    long rss0;
    char (*ids)[BB_SESSION_ID_MAX];

    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--backend")) backend = argv[i + 1];
        else if (!strcmp(argv[i], "--url")) url = argv[i + 1];
        else if (!strcmp(argv[i], "--sessions")) n = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--lookups")) lookups = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (threads < 1 || threads > 16 || n < 1) { fprintf(stderr, "bad --threads or --sessions\n"); return 2; }
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    snprintf(path, sizeof path, "%s/botboard.yaml", dir);
    snprintf(yaml, sizeof yaml,
             "session:\n  backend: %s\n  keys: [\"" BENCH_KEY "\"]\n  memory:\n    max_sessions: %zu\n"
             "  redis:\n    url: \"%s\"\n    pool_size: %d\nlogging:\n  level: warn\n",
             backend, n + 1000, url, threads * 2);
    if (!(f = fopen(path, "w")) || fputs(yaml, f) < 0 || fclose(f) != 0) { perror(path); return 1; }
    rss0 = rss_kib();
    app = bb_app_open(path, BB_APP_SESSION, &err);
    unlink(path);
    rmdir(dir);
    if (!app) { fprintf(stderr, "bb_app_open: %s\n", err.msg); return 1; }
    if (!(s = bb_sessions_new(app, bb_config_root(bb_app_config(app)), why, sizeof why))) {
        fprintf(stderr, "bb_sessions_new: %s\n", why);
        return 1;
    }
    if (!(ids = calloc(n, sizeof *ids))) return 1;

    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){ .s = s, .ids = ids, .from = n * (size_t)t / (size_t)threads,
                         .to = n * (size_t)(t + 1) / (size_t)threads, .n_ids = n, .seed = 1234u + (unsigned)t };
        jobs[t].lat_ns = malloc((jobs[t].to - jobs[t].from) * sizeof(int64_t));
        if (!jobs[t].lat_ns) return 1;
    }
    printf("%-7s start   rss=%ldKiB (before the plugin)\n", backend, rss0);
    t0 = now_ns();
    for (int t = 0; t < threads; t++) pthread_create(&tid[t], NULL, create_main, &jobs[t]);
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    report(backend, "create", jobs, threads, now_ns() - t0);

    for (int t = 0; t < threads; t++) {
        free(jobs[t].lat_ns);
        jobs[t].n_lat = 0;
        jobs[t].errors = 0;
        jobs[t].lookups = lookups / (size_t)threads;
        if (!(jobs[t].lat_ns = malloc(jobs[t].lookups * sizeof(int64_t)))) return 1;
    }
    t0 = now_ns();
    for (int t = 0; t < threads; t++) pthread_create(&tid[t], NULL, lookup_main, &jobs[t]);
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    report(backend, "lookup", jobs, threads, now_ns() - t0);

    {
        char detail[256] = "";
        bb_call call = { "bench", NULL, bb_now_ms() + 30000 };
        bb_sessions_health(s, &call, detail, sizeof detail, &err);
        printf("%-7s backend %s\n", backend, detail);
    }
    for (int t = 0; t < threads; t++) free(jobs[t].lat_ns);
    free(ids);
    bb_sessions_free(s);
    bb_app_close(app);
    return 0;
}
