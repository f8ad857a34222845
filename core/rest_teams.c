/*
 * core/rest_teams.c — GET /v1/teams/{team}: the team the key belongs to.
 */
#include <string.h>

#include "handlers.h"
#include "reply.h"

enum MHD_Result bb_h_team_get(bb_req *req)
{
    bb_team team;
    bb_error err;
    bb_call call = bb_req_call(req);
    bb_error_clear(&err);
    memset(&team, 0, sizeof team);
    if (req->srv->storage->team_get(req->srv->storage_inst, &call, req->params[0], &team, &err) != BB_OK) {
        err.field[0] = '\0';
        if (err.code != BB_NOT_FOUND && err.code != BB_UNAVAILABLE && err.code != BB_TIMEOUT) err.code = BB_INTERNAL;
        return bb_reply_status(req, &err);
    }
    return bb_reply_json(req, 200,
                         json_pack("{s:s, s:s, s:{s:I, s:I}}", "teamId", team.name, "name", team.name, "createdAt",
                                   "_seconds", (json_int_t)(team.created_ms / 1000), "_nanoseconds",
                                   (json_int_t)((team.created_ms % 1000) * 1000000)));
}
