/*
 * core/dispatch.h — the request pipeline after the body has arrived:
 * 413 check → MCP endpoint or route table → auth → rate limit → handler;
 * and the per-request accounting when MHD is done with it.
 */
#ifndef BB_CORE_DISPATCH_H
#define BB_CORE_DISPATCH_H

#include "server.h"

enum MHD_Result bb_dispatch(bb_req *req);
/* Request metrics, when a response is queued. */
void bb_dispatch_account(bb_req *req, unsigned status);
void bb_dispatch_done(bb_req *req, enum MHD_RequestTerminationCode toe);
/* Called once when shutdown starts: end long-lived streams. */
void bb_dispatch_shutdown(bb_server *srv);

#endif
