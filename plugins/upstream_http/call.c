/*
 * plugins/upstream_http/call.c — one logical call: breaker gate, attempts,
 * backoff and the deadline that bounds all of it.
 *
 * The deadline is min(now + call_deadline_ms, call->deadline_ms): every
 * attempt's timeout is clipped to it and a backoff (or a Retry-After) that
 * would end past it is not slept — the call fails now instead.
 */
#include "uh.h"

#include <errno.h>
#include <time.h>

int64_t uh_deadline(uh_inst *u, const bb_call *call)
{
    int64_t d = u->api->now_ms() + u->cfg.call_deadline_ms;
    if (call && call->deadline_ms > 0 && call->deadline_ms < d) d = call->deadline_ms;
    return d;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static bool counts_as_failure(uh_outcome o)
{
    return o == UH_OUT_SERVER_ERROR || o == UH_OUT_TRANSPORT || o == UH_OUT_TIMEOUT;
}

static int retry_after_s(int64_t ms) { return ms <= 0 ? 1 : (int)((ms + 999) / 1000); }

bb_status uh_call(uh_inst *u, const uh_request *rq, uh_response *out, bb_error *err)
{
    const char *op = uh_op_names[rq->op];
    /* A create may only be repeated when the upstream can recognise the
     * repeat (Idempotency-Key): otherwise one attempt, whatever happens. */
    int max_attempts = (rq->op == UH_OP_CREATE && !rq->idempotency_key) ? 1 : (int)u->cfg.max_attempts;
    int64_t start = u->api->now_ms();
    int sent = 0;
    bool ambiguous = false;

    uh_response_clear(out);
    for (int attempt = 1;; attempt++) {
        int64_t wait_ms, now, t0, open_left = 0;
        bool probe;

        if (!uh_breaker_allow(u, &open_left, &probe)) {
            u->api->add(u->m.requests[rq->op][UH_OUT_SHORT_CIRCUIT], 1);
            if (attempt > 1) break;   /* opened while we retried: report the last real failure */
            out->outcome = UH_OUT_SHORT_CIRCUIT;
            bb_fail(err, BB_UNAVAILABLE, NULL, "upstream unavailable: circuit breaker open (retry in %d s)",
                    retry_after_s(open_left));
            err->retry_after_s = retry_after_s(open_left);
            return BB_UNAVAILABLE;
        }
        t0 = u->api->now_ms();
        out->ambiguous = false;
        uh_client_perform(u, rq, out);
        now = u->api->now_ms();
        out->attempts = ++sent;
        out->ambiguous = ambiguous;
        /* A lost answer or a 5xx may come after the upstream acted. */
        ambiguous = ambiguous || out->outcome == UH_OUT_TRANSPORT || out->outcome == UH_OUT_TIMEOUT ||
                    out->outcome == UH_OUT_SERVER_ERROR;
        u->api->add(u->m.requests[rq->op][out->outcome], 1);
        u->api->observe(u->m.latency[rq->op], (double)(now - t0) / 1000.0);
        uh_breaker_record(u, probe, counts_as_failure(out->outcome));

        if (out->outcome == UH_OUT_OK) return BB_OK;
        if (!uh_retryable(out->outcome, out->status) || attempt >= max_attempts) break;
        wait_ms = uh_backoff_ms(u, attempt - 1);
        if ((out->outcome == UH_OUT_RATE_LIMITED || out->status == 503) && out->retry_after_ms >= 0) {
            /* The upstream said when: honour it, bounded by our own cap. */
            if (out->retry_after_ms > u->cfg.max_retry_after_ms) break;
            wait_ms = out->retry_after_ms;
        }
        if (now + wait_ms >= rq->deadline_ms) break;   /* the retry could not finish in time */
        u->api->add(u->m.retries[rq->op], 1);
        u->api->log(u->host, BB_LOG_DEBUG, rq->call, "%s attempt %d failed (%s), retrying in %lld ms",
                    op, attempt, out->status ? "HTTP error" : out->transport_error, (long long)wait_ms);
        sleep_ms(wait_ms);
    }

    /* Map the last answer. */
    switch (out->outcome) {
    case UH_OUT_TIMEOUT:
        if (u->api->now_ms() >= rq->deadline_ms - 1)
            return bb_fail(err, BB_TIMEOUT, NULL, "upstream did not answer within the call deadline (%lld ms)",
                           (long long)(u->api->now_ms() - start));
        return bb_fail(err, BB_UNAVAILABLE, NULL, "upstream timed out: %s", out->transport_error);
    case UH_OUT_TRANSPORT:
        bb_fail(err, BB_UNAVAILABLE, NULL, "upstream unreachable: %s", out->transport_error);
        err->retry_after_s = 1;
        return BB_UNAVAILABLE;
    default: {
        bb_status st = uh_map_http_error(out->status, out->body, out->body_len, op, err);
        if (st == BB_UNAVAILABLE) err->retry_after_s = retry_after_s(out->retry_after_ms);
        return st;
    }
    }
}
