/* core/config_internal.h — shared between the config_*.c files only. */
#ifndef BB_CORE_CONFIG_INTERNAL_H
#define BB_CORE_CONFIG_INTERNAL_H

#include "config.h"

struct bb_config {
    bb_cfg      *root;
    const char  *main_file;
    char       **files;      /* interned file names that nodes point at */
    size_t       n_files;
};

/* An error sink: newline-separated lines into a caller buffer, counted. */
typedef struct bb_errbuf {
    char  *buf;
    size_t len;
    int    count;
} bb_errbuf;

void bb_errbuf_add(bb_errbuf *eb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

bb_cfg *bb_node_new(bb_node_kind kind, const char *file, int line, int col);
void    bb_node_free(bb_cfg *n);
bool    bb_node_add(bb_cfg *parent, bb_cfg *kid);
bb_cfg *bb_node_member(const bb_cfg *map, const char *key, size_t keylen);
const char *bb_config_intern_file(bb_config *c, const char *path);

#endif
