/*
 * plugins/upstream_http/metrics.c — the gateway's metric families.  Every
 * series is resolved once here, so the hot path only adds and observes.
 * The `upstream` label (the base URL) keeps two instances apart.
 */
#include "uh.h"

#include <string.h>

const char *const uh_op_names[UH_N_OPS] = { "list_posts", "get_post", "create_post", "delete_post", "health" };
const char *const uh_outcome_names[UH_N_OUTCOMES] = {
    "ok", "client_error", "rate_limited", "server_error", "transport_error", "timeout", "short_circuit"
};

bool uh_metrics_init(uh_inst *u)
{
    const bb_host_api *a = u->api;
    uh_metrics *m = &u->m;
    /* A URL with credentials in it never becomes a label. */
    const char *up = strchr(u->cfg.base, '@') ? "configured" : u->cfg.base;
    static const char *const l_req[] = { "upstream", "operation", "outcome", NULL };
    static const char *const l_op[] = { "upstream", "operation", NULL };
    static const char *const l_up[] = { "upstream", NULL };
    static const char *const l_to[] = { "upstream", "to", NULL };
    static const char *const l_res[] = { "upstream", "result", NULL };
    bb_metric *req = a->metric(u->host, BB_METRIC_COUNTER, "upstream_requests_total",
                               "HTTP requests to the upstream by operation and outcome (short_circuit: refused by the open breaker)", l_req);
    bb_metric *lat = a->metric(u->host, BB_METRIC_HISTOGRAM, "upstream_request_duration_seconds",
                               "Latency of one HTTP attempt to the upstream", l_op);
    bb_metric *ret = a->metric(u->host, BB_METRIC_COUNTER, "upstream_retries_total",
                               "Attempts repeated after a transient upstream failure", l_op);
    bb_metric *dd = a->metric(u->host, BB_METRIC_COUNTER, "upstream_deduplicated_total",
                              "Reads that shared an identical in-flight upstream request (single flight)", l_op);
    bb_metric *bs = a->metric(u->host, BB_METRIC_GAUGE, "upstream_breaker_state",
                              "Circuit breaker state: 0 closed, 1 open, 2 half_open", l_up);
    bb_metric *bt = a->metric(u->host, BB_METRIC_COUNTER, "upstream_breaker_transitions_total",
                              "Circuit breaker transitions by target state", l_to);
    bb_metric *cache = a->metric(u->host, BB_METRIC_COUNTER, "upstream_cache_total",
                                 "Fallback cache: hit (fresh serve), miss, stale (served while the upstream is down), store", l_res);
    if (!req || !lat || !ret || !dd || !bs || !bt || !cache) return false;

    for (int op = 0; op < UH_N_OPS; op++) {
        const char *v_op[] = { up, uh_op_names[op], NULL };
        for (int o = 0; o < UH_N_OUTCOMES; o++) {
            const char *v[] = { up, uh_op_names[op], uh_outcome_names[o], NULL };
            if (!(m->requests[op][o] = a->series(req, v))) return false;
        }
        if (!(m->latency[op] = a->series(lat, v_op)) || !(m->retries[op] = a->series(ret, v_op)) ||
            !(m->dedup[op] = a->series(dd, v_op)))
            return false;
    }
    {
        const char *v[] = { up, NULL };
        if (!(m->breaker_state = a->series(bs, v))) return false;
        a->set(m->breaker_state, 0);
    }
    for (int s = 0; s < 3; s++) {
        const char *v[] = { up, uh_breaker_state_names[s], NULL };
        if (!(m->transitions[s] = a->series(bt, v))) return false;
    }
    {
        const char *hit[] = { up, "hit", NULL }, *miss[] = { up, "miss", NULL };
        const char *stale[] = { up, "stale", NULL }, *store[] = { up, "store", NULL };
        m->cache_hit = a->series(cache, hit);
        m->cache_miss = a->series(cache, miss);
        m->cache_stale = a->series(cache, stale);
        m->cache_store = a->series(cache, store);
        if (!m->cache_hit || !m->cache_miss || !m->cache_stale || !m->cache_store) return false;
    }
    return true;
}
