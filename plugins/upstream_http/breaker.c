/*
 * plugins/upstream_http/breaker.c — one circuit breaker per upstream.
 *
 *   CLOSED    --failure_threshold consecutive failures, or a failure rate
 *               >= failure_rate over window_ms with >= min_calls-->  OPEN
 *   OPEN      --open_ms elapsed-->  HALF_OPEN   (no request goes out before)
 *   HALF_OPEN --probe succeeds--> CLOSED,  --probe fails--> OPEN
 *
 * Every attempt (retries included) is one observation, so a retry storm
 * trips the breaker instead of hammering a sick upstream.  Only failures of
 * the upstream itself count: a 4xx means it is healthy and we asked wrongly.
 */
#include "uh.h"

const char *const uh_breaker_state_names[3] = { "closed", "open", "half_open" };

void uh_breaker_init(uh_breaker *b)
{
    pthread_mutex_init(&b->lock, NULL);
    b->state = UH_CLOSED;
}

void uh_breaker_destroy(uh_breaker *b) { pthread_mutex_destroy(&b->lock); }

/* Caller holds the lock. */
static void transition(uh_inst *u, uh_breaker_state to, const char *why)
{
    uh_breaker *b = &u->breaker;
    uh_breaker_state from = b->state;
    int64_t now = u->api->now_ms();
    if (from == to) return;
    b->state = to;
    b->transitions++;
    b->consecutive_failures = 0;
    b->window_start_ms = now;
    b->window_calls = b->window_failures = 0;
    b->probes_in_flight = 0;
    if (to == UH_OPEN) b->opened_ms = now;
    u->api->set(u->m.breaker_state, (double)to);
    u->api->add(u->m.transitions[to], 1);
    u->api->log(u->host, to == UH_OPEN ? BB_LOG_WARN : BB_LOG_INFO, NULL,
                "circuit breaker %s -> %s (%s)", uh_breaker_state_names[from],
                uh_breaker_state_names[to], why);
}

bool uh_breaker_allow(uh_inst *u, int64_t *retry_after_ms, bool *probe)
{
    uh_breaker *b = &u->breaker;
    bool ok = true;
    int64_t now = u->api->now_ms();
    *probe = false;
    *retry_after_ms = 0;
    pthread_mutex_lock(&b->lock);
    if (b->state == UH_OPEN) {
        int64_t left = b->opened_ms + u->cfg.open_ms - now;
        if (left > 0) { ok = false; *retry_after_ms = left; }
        else transition(u, UH_HALF_OPEN, "open_ms elapsed");
    }
    if (ok && b->state == UH_HALF_OPEN) {
        if (b->probes_in_flight < u->cfg.half_open_max_calls) {
            b->probes_in_flight++;
            *probe = true;
        } else {
            ok = false;
            *retry_after_ms = 1000;   /* probes are out; their answer decides */
        }
    }
    pthread_mutex_unlock(&b->lock);
    return ok;
}

void uh_breaker_record(uh_inst *u, bool probe, bool failure)
{
    uh_breaker *b = &u->breaker;
    int64_t now = u->api->now_ms();
    pthread_mutex_lock(&b->lock);
    if (b->state == UH_HALF_OPEN && probe) {
        b->probes_in_flight--;
        if (failure) transition(u, UH_OPEN, "probe failed");
        else transition(u, UH_CLOSED, "probe succeeded");
    } else if (b->state == UH_CLOSED) {
        if (now - b->window_start_ms >= u->cfg.window_ms) {
            b->window_start_ms = now;
            b->window_calls = b->window_failures = 0;
        }
        b->window_calls++;
        if (failure) {
            b->window_failures++;
            b->consecutive_failures++;
        } else {
            b->consecutive_failures = 0;
        }
        if (failure && b->consecutive_failures >= u->cfg.failure_threshold) {
            transition(u, UH_OPEN, "consecutive failures reached failure_threshold");
        } else if (failure && b->window_calls >= u->cfg.min_calls &&
                   (double)b->window_failures >= u->cfg.failure_rate * (double)b->window_calls) {
            transition(u, UH_OPEN, "failure rate over the window reached failure_rate");
        }
    }
    /* OPEN, or a non-probe answer arriving late in HALF_OPEN: the state was
     * decided by someone else; nothing to learn from it. */
    pthread_mutex_unlock(&b->lock);
}

uh_breaker_state uh_breaker_snapshot(uh_inst *u, int64_t *open_left_ms)
{
    uh_breaker_state s;
    int64_t now = u->api->now_ms();
    pthread_mutex_lock(&u->breaker.lock);
    s = u->breaker.state;
    if (open_left_ms) {
        *open_left_ms = s == UH_OPEN ? u->breaker.opened_ms + u->cfg.open_ms - now : 0;
        if (*open_left_ms < 0) *open_left_ms = 0;
    }
    pthread_mutex_unlock(&u->breaker.lock);
    return s;
}
