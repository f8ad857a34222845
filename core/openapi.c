/*
 * core/openapi.c — GET /v1/openapi.yaml.
 *
 * The document is core/openapi.yaml, compiled in (core/openapi_doc.c is
 * generated from it at build time), so the binary always serves the
 * document it was built with.  tests/test_rest_api.c checks that every row
 * of the route table appears in it, and validates every response the suite
 * receives against it.
 */
#include <string.h>

#include "handlers.h"
#include "reply.h"

extern const char bb_openapi_yaml[];

enum MHD_Result bb_h_openapi(bb_req *req)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(bb_openapi_yaml), (void *)bb_openapi_yaml, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/yaml");
    MHD_add_response_header(r, "Cache-Control", "public, max-age=300");
    return bb_reply_queue(req, 200, r);
}
