/*
 * tests/gateway_util.h — helpers for the gateway suites: start the fault
 * proxy, set its rules, read its log; open an upstream_http instance
 * in-process (bb_app_open) pointed at the proxy.
 */
#ifndef BB_TEST_GATEWAY_UTIL_H
#define BB_TEST_GATEWAY_UTIL_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "bbtest.h"
#include "metrics.h"

typedef struct proxy {
    bbt_proc proc;
    int      port;
    char     url[64];      /* http://127.0.0.1:PORT */
    char    *dir;
} proxy;

static inline int64_t gw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Start the proxy in front of origin ("none": injected answers only) and
 * poll its stats endpoint until it answers (bounded). */
static inline bool proxy_start(proxy *p, const char *origin, char *why, size_t why_len)
{
    char port[16], log[600];
    char *bin = bbt_build_path("tests/faultproxy");
    memset(p, 0, sizeof *p);
    p->dir = bbt_tempdir("gw");
    if (!bin || !p->dir) { snprintf(why, why_len, "no temp dir or build path"); free(bin); return false; }
    for (int tries = 0; tries < 5; tries++) {
        p->port = bbt_free_port();
        snprintf(port, sizeof port, "%d", p->port);
        snprintf(log, sizeof log, "%s/faultproxy-%d.log", p->dir, tries);
        {
            char *argv[] = { bin, port, (char *)origin, NULL };
            if (!bbt_proc_start(&p->proc, argv, NULL, log)) continue;
        }
        snprintf(p->url, sizeof p->url, "http://127.0.0.1:%d", p->port);
        for (int64_t until = gw_now_ms() + 5000; gw_now_ms() < until;) {
            char u[128];
            bbt_response r;
            snprintf(u, sizeof u, "%s/_fault/stats", p->url);
            if (bbt_http_timeout("GET", u, NULL, NULL, 0, 500, &r) && r.status == 200) {
                bbt_response_free(&r);
                free(bin);
                return true;
            }
            bbt_response_free(&r);
            if (bbt_proc_wait(&p->proc, 20)) break;   /* exited: port taken, try another */
        }
        bbt_proc_stop(&p->proc, 1000);
    }
    snprintf(why, why_len, "faultproxy (%s) did not start", bin);
    free(bin);
    return false;
}

static inline void proxy_stop(proxy *p)
{
    bbt_proc_stop(&p->proc, 2000);
    bbt_rmtree(p->dir);
    free(p->dir);
    p->dir = NULL;
}

/* POST /_fault/rule?<query> with an optional canned body. */
static inline void proxy_rule(proxy *p, const char *query, const char *body)
{
    char u[512];
    bbt_response r;
    snprintf(u, sizeof u, "%s/_fault/rule?%s", p->url, query);
    cr_assert(bbt_http("POST", u, NULL, body, body ? strlen(body) : 0, &r));
    cr_assert_eq(r.status, 204, "rule %s: HTTP %ld %s", query, r.status, r.body);
    bbt_response_free(&r);
}

static inline void proxy_reset(proxy *p)
{
    char u[256];
    bbt_response r;
    snprintf(u, sizeof u, "%s/_fault/reset", p->url);
    cr_assert(bbt_http("POST", u, NULL, NULL, 0, &r));
    cr_assert_eq(r.status, 204);
    bbt_response_free(&r);
}

/* The proxy's stats as JSON (caller decrefs). */
static inline json_t *proxy_stats(proxy *p)
{
    char u[256];
    bbt_response r;
    json_t *j;
    snprintf(u, sizeof u, "%s/_fault/stats", p->url);
    cr_assert(bbt_http("GET", u, NULL, NULL, 0, &r));
    cr_assert_eq(r.status, 200);
    j = json_loads(r.body, 0, NULL);
    bbt_response_free(&r);
    cr_assert_not_null(j);
    return j;
}

static inline long proxy_requests(proxy *p)
{
    json_t *j = proxy_stats(p);
    long n = (long)json_integer_value(json_object_get(j, "requests"));
    json_decref(j);
    return n;
}

/* Write `yaml` as a config in dir and open the upstream from it. */
static inline bb_app *gw_open(const char *dir, const char *yaml, bb_error *err)
{
    char *path = bbt_write_file(dir, "gateway.yaml", yaml);
    bb_app *app;
    cr_assert_not_null(path);
    app = bb_app_open(path, BB_APP_UPSTREAM, err);
    free(path);
    return app;
}

/* The value of one exported series line ("name{labels} value"); -1 if absent. */
static inline double gw_metric(const char *name_and_labels_prefix)
{
    size_t len;
    char *text = bb_metrics_render(&len), *line;
    double v = -1;
    size_t n = strlen(name_and_labels_prefix);
    for (line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, name_and_labels_prefix, n) == 0) {
            char *sp = strchr(line, ' ');
            if (sp) v = strtod(sp + 1, NULL);
            break;
        }
    }
    free(text);
    return v;
}

#endif
