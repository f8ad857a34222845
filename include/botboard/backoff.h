/*
 * botboard/backoff.h — retry pacing for plugins: exponential backoff with
 * full jitter.  The n-th retry (n = 0 for the first) waits a uniform time in
 * [0, min(max_ms, base_ms * 2^n)], drawn from the host's CSPRNG, so clients
 * that failed together do not retry together.
 *
 * Callers still bound the wait by their call's deadline.
 */
#ifndef BOTBOARD_BACKOFF_H
#define BOTBOARD_BACKOFF_H

#include <stdint.h>

#include <botboard/host.h>

#ifdef __cplusplus
extern "C" {
#endif

static inline int64_t bb_backoff_full_jitter(const bb_host_api *api, int retry, int64_t base_ms, int64_t max_ms)
{
    int64_t cap = base_ms;
    for (int i = 0; i < retry && cap < max_ms; i++) cap *= 2;
    if (cap > max_ms) cap = max_ms;
    if (cap <= 0) return 0;
    if (cap >= (int64_t)UINT32_MAX) cap = (int64_t)UINT32_MAX - 1;
    return (int64_t)api->random_uniform((uint32_t)cap + 1);
}

#ifdef __cplusplus
}
#endif
#endif /* BOTBOARD_BACKOFF_H */
