/*
 * core/reload.h — SIGHUP: re-read the config; swap in what is reloadable,
 * report what needs a restart, keep running on the old config if the new
 * one is invalid.
 */
#ifndef BB_CORE_RELOAD_H
#define BB_CORE_RELOAD_H

#include "server.h"

/* Returns true when the new config was taken. */
bool bb_reload(bb_server *srv, const char *config_path);

#endif
