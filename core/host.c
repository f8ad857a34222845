/*
 * core/host.c — host services for plugins: logging, metrics, config,
 * clocks, randomness, ids.
 */
#include "host.h"

#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "metrics.h"

int64_t bb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bb_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic within the process (the ULID spec's monotonic mode): ids made in
 * one millisecond increase, so posts created in the same millisecond still
 * sort in creation order ("newest first, ties by id" keeps a reply after
 * its parent). */
static pthread_mutex_t ulid_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t ulid_last_ms;
static uint8_t  ulid_last_rand[10];

void bb_new_ulid(char *out, size_t out_len)
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint8_t bytes[16];
    uint64_t ms = (uint64_t)bb_wall_ms();
    if (out_len < 27) { if (out_len) out[0] = '\0'; return; }
    pthread_mutex_lock(&ulid_lock);
    if (ms <= ulid_last_ms) {
        int i = 9;
        ms = ulid_last_ms;   /* the clock stepped back or stood still: count on */
        while (i >= 0 && ++ulid_last_rand[i] == 0) i--;
        if (i < 0) { ms = ++ulid_last_ms; randombytes_buf(ulid_last_rand, sizeof ulid_last_rand); }
    } else {
        ulid_last_ms = ms;
        randombytes_buf(ulid_last_rand, sizeof ulid_last_rand);
        ulid_last_rand[0] &= 0x7f;   /* headroom so increments rarely carry into the time */
    }
    memcpy(bytes + 6, ulid_last_rand, 10);
    pthread_mutex_unlock(&ulid_lock);
    for (int i = 5; i >= 0; i--) { bytes[i] = (uint8_t)(ms & 0xff); ms >>= 8; }
    /* 128 bits → 26 base32 digits, most significant first (first digit holds 3 bits). */
    for (int i = 0; i < 26; i++) {
        int bit = i == 0 ? 0 : 3 + (i - 1) * 5;   /* index of the digit's first bit */
        int width = i == 0 ? 3 : 5, v = 0;
        for (int b = 0; b < width; b++) {
            int pos = bit + b;
            v = (v << 1) | ((bytes[pos / 8] >> (7 - pos % 8)) & 1);
        }
        out[i] = alphabet[v];
    }
    out[26] = '\0';
}

static void host_log(bb_host *h, bb_log_level level, const bb_call *call, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bb_logv_call(level, h ? h->name : "plugin", call, fmt, ap);
    va_end(ap);
}

static bool host_log_enabled(bb_host *h, bb_log_level level) { (void)h; return bb_log_enabled(level); }

static bb_metric *host_metric(bb_host *h, bb_metric_type type, const char *name, const char *help,
                              const char *const *labels)
{
    (void)h;
    return bb_metric_family(type, name, help, labels);
}

static void host_random(void *buf, size_t len) { randombytes_buf(buf, len); }
static uint32_t host_random_uniform(uint32_t upper) { return upper ? randombytes_uniform(upper) : 0; }

static const bb_storage_ops *host_storage(bb_host *h, bb_storage **inst)
{
    if (inst) *inst = h ? h->storage_inst : NULL;
    return h ? h->storage_ops : NULL;
}

static void host_add_secret(bb_host *h, const char *secret) { (void)h; bb_log_add_secret(secret); }

const bb_host_api bb_host_table = {
    .size = sizeof(bb_host_api),
    .log = host_log,
    .log_enabled = host_log_enabled,
    .metric = host_metric,
    .series = bb_metric_series,
    .add = bb_series_add,
    .set = bb_series_set,
    .observe = bb_series_observe,
    .cfg_string = bb_cfg_get_string,
    .cfg_int = bb_cfg_get_int,
    .cfg_bool = bb_cfg_get_bool,
    .cfg_double = bb_cfg_get_double,
    .cfg_list = bb_cfg_get_list,
    .cfg_fail = bb_cfg_fail,
    .now_ms = bb_now_ms,
    .wall_ms = bb_wall_ms,
    .random = host_random,
    .random_uniform = host_random_uniform,
    .storage = host_storage,
    .add_secret = host_add_secret,
    .new_id = bb_new_ulid,
};
