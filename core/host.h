/*
 * core/host.h — the bb_host_api table the core hands every plugin.
 */
#ifndef BB_CORE_HOST_H
#define BB_CORE_HOST_H

#include <botboard/host.h>
#include <botboard/storage.h>

struct bb_host {
    char     name[80];          /* "storage.sqlite": prefixes the plugin's log lines */
    const bb_storage_ops *storage_ops;
    bb_storage           *storage_inst;
};

extern const bb_host_api bb_host_table;

int64_t bb_now_ms(void);
int64_t bb_wall_ms(void);
/* A ULID: 26 characters of Crockford base32, time-ordered. */
void bb_new_ulid(char *out, size_t out_len);

#endif
