/*
 * core/rest_posts.c — /v1/teams/{team}/posts and /v1/teams/{team}/posts/{id}.
 *
 * Each handler is parse → validate → one storage call → wire → reply.
 * Auth (the key belongs to {team}) and the rate limit ran in dispatch.c.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "events.h"
#include "handlers.h"
#include "host.h"
#include "jsonw.h"
#include "reply.h"
#include "validate.h"
#include "validate_names.h"
#include "wire.h"

#define IDEMPOTENCY_KEY_MAX 255

/* The query parameters GET .../posts understands; anything else is refused
 * so a misspelt filter ("tags=", "author=") never silently lists everything. */
static const char *const list_params[] = { "limit", "offset", "agent", "tag", "thread_id", "sort" };
#define N_LIST_PARAMS (sizeof list_params / sizeof list_params[0])

typedef struct query_scan {
    const char *values[N_LIST_PARAMS];
    const char *bad;          /* first unknown or repeated parameter */
    bool        repeated;
} query_scan;

static enum MHD_Result scan_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    query_scan *qs = cls;
    (void)kind;
    for (size_t i = 0; i < N_LIST_PARAMS; i++) {
        if (strcmp(key, list_params[i]) != 0) continue;
        if (qs->values[i]) { qs->bad = key; qs->repeated = true; return MHD_NO; }
        qs->values[i] = value ? value : "";
        return MHD_YES;
    }
    qs->bad = key;
    return MHD_NO;
}

/* Queue malloc'd JSON text (stolen) with its status and optional headers. */
static enum MHD_Result reply_text(bb_req *req, unsigned status, char *text, size_t len, const char *location,
                                  bool replayed)
{
    struct MHD_Response *r;
    if (!text) return bb_reply_error(req, 500, "SERVER_ERROR", "internal error", NULL);
    if (!(r = bb_json_response(text, len))) return MHD_NO;
    if (location) MHD_add_response_header(r, "Location", location);
    if (replayed) MHD_add_response_header(r, "Idempotent-Replayed", "true");
    return bb_reply_queue(req, status, r);
}

/* A read or delete failed in storage.  The input was validated already, so
 * anything but NOT_FOUND / UNAVAILABLE / TIMEOUT is the server's problem:
 * 500 with the message logged, never sent. */
static enum MHD_Result reply_storage(bb_req *req, bb_error *err)
{
    if (err->code == BB_NOT_FOUND) err->field[0] = '\0';   /* never PARENT_NOT_FOUND here */
    else if (err->code != BB_UNAVAILABLE && err->code != BB_TIMEOUT) err->code = BB_INTERNAL;
    return bb_reply_status(req, err);
}

static enum MHD_Result reply_invalid(bb_req *req, const bb_error *err)
{
    return bb_reply_error(req, 400, "INVALID_INPUT", err->msg, json_pack("{s:s}", "field", err->field));
}

enum MHD_Result bb_h_posts_list(bb_req *req)
{
    query_scan qs;
    bb_post_query q;
    bb_post_page page = { 0 };
    bb_error err;
    bb_call call = bb_req_call(req);
    char *text;
    size_t len = 0;

    memset(&qs, 0, sizeof qs);
    bb_error_clear(&err);
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, scan_arg, &qs);
    if (qs.bad) {
        char msg[160];
        snprintf(msg, sizeof msg, qs.repeated ? "query parameter '%.60s' given twice" : "unknown query parameter '%.60s'",
                 qs.bad);
        return bb_reply_error(req, 400, "INVALID_INPUT", msg,
                              json_pack("{s:s, s:[s,s,s,s,s,s]}", "field", qs.bad, "allowed", list_params[0],
                                        list_params[1], list_params[2], list_params[3], list_params[4], list_params[5]));
    }
    if (!bb_validate_list_query(qs.values[0], qs.values[1], qs.values[2], qs.values[3], qs.values[4], qs.values[5], &q,
                                &err))
        return reply_invalid(req, &err);
    q.team = req->params[0];
    if (req->srv->storage->post_list(req->srv->storage_inst, &call, &q, &page, &err) != BB_OK) {
        bb_post_page_clear(&page);
        return reply_storage(req, &err);
    }
    text = bb_wire_page_text(&page, q.offset, &len);
    bb_post_page_clear(&page);
    return reply_text(req, 200, text, len, NULL, false);
}

/* Content-Type must say JSON ("application/json", any parameters). */
static bool is_json_type(const char *ct)
{
    size_t n = strlen("application/json");
    if (!ct) return false;
    while (*ct == ' ') ct++;
    return strncasecmp(ct, "application/json", n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* An Idempotency-Key is 1-255 visible ASCII characters. */
static bool idem_key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > IDEMPOTENCY_KEY_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x21 || k[i] > 0x7e) return false;
    return true;
}

/* BLAKE2b over the validated request, each field length-prefixed, so two
 * bodies that mean the same post (camelCase vs snake_case, spacing) match
 * and no two different posts collide by concatenation. */
static void hash_field(crypto_generichash_state *st, const char *s)
{
    uint64_t n = s ? strlen(s) : 0;
    crypto_generichash_update(st, (const unsigned char *)&n, sizeof n);
    if (n) crypto_generichash_update(st, (const unsigned char *)s, (size_t)n);
}

static void request_hash(const char *team, const bb_post_input *in, uint8_t out[32])
{
    crypto_generichash_state st;
    uint64_t nt = in->n_tags;
    crypto_generichash_init(&st, NULL, 0, 32);
    hash_field(&st, team);
    hash_field(&st, in->author);
    hash_field(&st, in->content);
    hash_field(&st, in->parent_id);
    crypto_generichash_update(&st, (const unsigned char *)&nt, sizeof nt);
    for (size_t i = 0; i < in->n_tags; i++) hash_field(&st, in->tags[i]);
    crypto_generichash_final(&st, out, 32);
}

static enum MHD_Result reply_created(bb_req *req, const bb_post *p, bool replayed)
{
    char loc[256];
    size_t len = 0;
    char *text = bb_wire_post_text(p, &len);
    snprintf(loc, sizeof loc, "/v1/teams/%s/posts/%s", p->team, p->id);
    return reply_text(req, 201, text, len, loc, replayed);
}

enum MHD_Result bb_h_posts_create(bb_req *req)
{
    json_error_t jerr;
    json_t *body;
    bb_post_input in;
    bb_post post, out;
    bb_idempotency idem, *idem_p = NULL;
    bb_error err;
    bb_call call = bb_req_call(req);
    const char *ikey = bb_req_header(req, "Idempotency-Key");
    bool replayed = false;
    bb_status st;
    enum MHD_Result ret;

    bb_error_clear(&err);
    if (!is_json_type(bb_req_header(req, "Content-Type")))
        return bb_reply_error(req, 415, "INVALID_INPUT", "Content-Type must be application/json",
                              json_pack("{s:s}", "field", "Content-Type"));
    if (ikey && !idem_key_ok(ikey))
        return bb_reply_error(req, 400, "INVALID_INPUT", "Idempotency-Key must be 1-255 visible ASCII characters",
                              json_pack("{s:s}", "field", "Idempotency-Key"));
    if (!req->body || req->body_len == 0)
        return bb_reply_error(req, 400, "INVALID_INPUT", "a JSON body is required", json_pack("{s:s}", "field", "body"));
    /* Duplicate keys are refused: which one "wins" would differ between parsers. */
    body = bb_json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!body)
        return bb_reply_error(req, 400, "INVALID_INPUT", "the body is not valid JSON",
                              json_pack("{s:s, s:s, s:i, s:i}", "field", "body", "reason", jerr.text, "line", jerr.line,
                                        "column", jerr.column));
    if (!bb_validate_create_body(body, &in, &err)) {
        json_decref(body);
        return err.code == BB_INVALID ? reply_invalid(req, &err) : bb_reply_status(req, &err);
    }
    json_decref(body);

    memset(&post, 0, sizeof post);
    memset(&out, 0, sizeof out);
    bb_new_ulid(post.id, sizeof post.id);
    snprintf(post.team, sizeof post.team, "%s", req->params[0]);
    post.author = in.author;
    post.content = in.content;
    post.tags = in.tags;
    post.n_tags = in.n_tags;
    snprintf(post.parent_id, sizeof post.parent_id, "%s", in.parent_id);
    post.created_ms = bb_wall_ms();
    if (ikey) {
        idem.key = ikey;
        request_hash(post.team, &in, idem.request_hash);
        idem.expires_ms = post.created_ms + bb_settings_now(req->srv)->idempotency_ttl_s * 1000;
        idem_p = &idem;
    }
    st = req->srv->storage->post_create(req->srv->storage_inst, &call, &post, idem_p, &out, &replayed, &err);
    bb_post_input_clear(&in);
    if (st == BB_CONFLICT && ikey) {
        bb_post_clear(&out);
        return bb_reply_error(req, 409, "CONFLICT", "this Idempotency-Key was used with a different request body",
                              json_pack("{s:s}", "field", "Idempotency-Key"));
    }
    if (st != BB_OK) {
        bb_post_clear(&out);
        return bb_reply_status(req, &err);
    }
    if (!replayed) bb_events_publish_post(req->srv->events, &out);
    ret = reply_created(req, &out, replayed);
    bb_post_clear(&out);
    return ret;
}

/* The {id} segment: a post id, or 400 naming the field. */
static bool id_param_ok(bb_req *req, enum MHD_Result *answered)
{
    if (bb_id_ok(req->params[1])) return true;
    *answered = bb_reply_error(req, 400, "INVALID_INPUT", "post id must be 1-39 of A-Z a-z 0-9 _ -",
                               json_pack("{s:s}", "field", "id"));
    return false;
}

enum MHD_Result bb_h_post_get(bb_req *req)
{
    bb_post p;
    bb_error err;
    bb_call call = bb_req_call(req);
    enum MHD_Result ret;
    char *text;
    size_t len = 0;
    if (!id_param_ok(req, &ret)) return ret;
    bb_error_clear(&err);
    memset(&p, 0, sizeof p);
    if (req->srv->storage->post_get(req->srv->storage_inst, &call, req->params[0], req->params[1], &p, &err) != BB_OK) {
        bb_post_clear(&p);
        return reply_storage(req, &err);
    }
    text = bb_wire_post_text(&p, &len);
    bb_post_clear(&p);
    return reply_text(req, 200, text, len, NULL, false);
}

enum MHD_Result bb_h_post_delete(bb_req *req)
{
    bb_error err;
    bb_call call = bb_req_call(req);
    enum MHD_Result ret;
    if (!id_param_ok(req, &ret)) return ret;
    bb_error_clear(&err);
    if (req->srv->storage->post_delete(req->srv->storage_inst, &call, req->params[0], req->params[1], bb_wall_ms(),
                                       &err) != BB_OK)
        return reply_storage(req, &err);
    return bb_reply_empty(req, 204);
}
