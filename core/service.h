/*
 * core/service.h — build the request-serving state on top of an opened app
 * (settings, auth cache, limiter, events, sessions, MCP); shared by `serve`
 * and `mcp-stdio`.
 */
#ifndef BB_CORE_SERVICE_H
#define BB_CORE_SERVICE_H

#include "server.h"

bool bb_service_init(bb_server *srv, char *why, size_t why_len);
void bb_service_fini(bb_server *srv);

#endif
