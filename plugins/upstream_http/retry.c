/*
 * plugins/upstream_http/retry.c — the retry policy: which failures are worth
 * another attempt, how long to wait (exponential backoff with full jitter,
 * so a crowd of gateways does not retry in lock step), and Retry-After.
 */
#include "uh.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <botboard/backoff.h>

bool uh_retryable(uh_outcome out, long http_status)
{
    switch (out) {
    case UH_OUT_TRANSPORT:
    case UH_OUT_TIMEOUT:
    case UH_OUT_RATE_LIMITED:
        return true;
    case UH_OUT_SERVER_ERROR:
        /* 500 is a bug on the other side, 501/505 will not change: only the
         * gateway/availability answers are transient. */
        return http_status == 502 || http_status == 503 || http_status == 504;
    default:
        return false;
    }
}

int64_t uh_backoff_ms(const uh_inst *u, int retry_index)
{
    return bb_backoff_full_jitter(u->api, retry_index, u->cfg.base_ms, u->cfg.max_ms);
}

/* Retry-After: delay-seconds or an IMF-fixdate (RFC 9110 §10.2.3). */
int64_t uh_parse_retry_after_ms(const char *v, int64_t wall_now_ms)
{
    char *end;
    long long secs;
    struct tm tm;
    if (!v) return -1;
    while (*v == ' ' || *v == '\t') v++;
    if (isdigit((unsigned char)*v)) {
        secs = strtoll(v, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
        if (*end || secs < 0 || secs > 86400) return -1;
        return (int64_t)secs * 1000;
    }
    memset(&tm, 0, sizeof tm);
    end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end) return -1;
    {
        int64_t at = (int64_t)timegm(&tm) * 1000;
        return at > wall_now_ms ? at - wall_now_ms : 0;
    }
}
