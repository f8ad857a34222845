/*
 * core/health.c — /healthz (liveness: no dependency calls), /readyz (each
 * plugin's health, 503 when one is down), /metrics (Prometheus).
 */
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "host.h"
#include "metrics.h"
#include "reply.h"

enum MHD_Result bb_h_healthz(bb_req *req)
{
    return bb_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

enum MHD_Result bb_h_readyz(bb_req *req)
{
    static const bb_plugin_kind kinds[] = { BB_KIND_STORAGE, BB_KIND_SESSION, BB_KIND_UPSTREAM };
    json_t *checks = json_object(), *body;
    int64_t timeout = bb_cfg_i64(bb_settings_now(req->srv)->root, "storage.health_timeout_ms", 2000);
    bool ready = !atomic_load(&req->srv->stopping);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const bb_plugin *p = bb_app_plugin(req->srv->app, kinds[i]);
        char detail[256];
        bb_error err;
        bb_status st;
        int64_t t0 = bb_now_ms();
        if (!p) continue;
        bb_error_clear(&err);
        st = bb_app_health(req->srv->app, kinds[i], timeout, detail, sizeof detail, &err);
        ready &= st == BB_OK;
        json_object_set_new(checks, bb_kind_name(kinds[i]),
                            json_pack("{s:s, s:s, s:s, s:I, s:s}", "plugin", p->desc->name, "status",
                                      st == BB_OK ? "up" : "down", "detail", st == BB_OK ? detail : err.msg,
                                      "latency_ms", (json_int_t)(bb_now_ms() - t0), "version", p->desc->version));
    }
    body = json_pack("{s:s, s:o}", "status", ready ? "ready" : "not_ready", "checks", checks);
    return bb_reply_json(req, ready ? 200 : 503, body);
}

enum MHD_Result bb_h_metrics(bb_req *req)
{
    static const char *const build_labels[] = { "version", "abi", NULL };
    char abi[16], *text;
    size_t len;
    struct MHD_Response *r;
    snprintf(abi, sizeof abi, "%d.%d", BB_ABI_MAJOR, BB_ABI_MINOR);
    bb_series_set(bb_metric_series(bb_metric_family(BB_METRIC_GAUGE, "build_info", "Build information", build_labels),
                                   (const char *const[]){ PACKAGE_VERSION, abi }),
                  1);
    bb_series_set(bb_metric_series(bb_metric_family(BB_METRIC_GAUGE, "uptime_seconds", "Seconds since start", NULL), NULL),
                  (double)(bb_wall_ms() - req->srv->started_wall_ms) / 1000.0);
    bb_series_set(bb_metric_series(bb_metric_family(BB_METRIC_GAUGE, "http_in_flight", "Requests being served", NULL), NULL),
                  (double)atomic_load(&req->srv->in_flight));
    text = bb_metrics_render(&len);
    if (!text) return bb_reply_error(req, 500, "SERVER_ERROR", "internal error", NULL);
    r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(text); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return bb_reply_queue(req, 200, r);
}
