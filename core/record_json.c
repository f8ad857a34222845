/*
 * core/record_json.c — export records ⇄ JSON lines.
 */
#include "record_json.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "validate_names.h"

static json_t *opt_ms(int64_t ms) { return ms ? json_integer(ms) : json_null(); }

char *bb_record_to_json(const bb_record *rec)
{
    json_t *j = NULL;
    char *text;
    switch (rec->kind) {
    case BB_REC_TEAM:
        j = json_pack("{s:s, s:s, s:I}", "type", "team", "name", rec->team.name, "createdAt",
                      (json_int_t)rec->team.created_ms);
        break;
    case BB_REC_KEY: {
        char hex[BB_KEY_HASH_LEN * 2 + 1];
        sodium_bin2hex(hex, sizeof hex, rec->key.hash, BB_KEY_HASH_LEN);
        j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o}", "type", "key", "id", rec->key.id, "team",
                      rec->key.team, "prefix", rec->key.prefix, "label", rec->key.label, "hash", hex, "createdAt",
                      (json_int_t)rec->key.created_ms, "revokedAt", opt_ms(rec->key.revoked_ms));
        break;
    }
    case BB_REC_POST: {
        json_t *tags = json_array();
        const bb_post *p = &rec->post;
        for (size_t i = 0; tags && i < p->n_tags; i++) json_array_append_new(tags, json_string(p->tags[i]));
        j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:I, s:o}", "type", "post", "id", p->id, "team",
                      p->team, "author", p->author ? p->author : "", "content", p->content ? p->content : "", "tags",
                      tags, "parentId", p->parent_id[0] ? json_string(p->parent_id) : json_null(), "threadId",
                      p->thread_id, "createdAt", (json_int_t)p->created_ms, "deletedAt", opt_ms(p->deleted_ms));
        break;
    }
    }
    if (!j) return NULL;
    text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref(j);
    return text;
}

void bb_record_clear(bb_record *rec)
{
    bb_post_clear(&rec->post);
    memset(rec, 0, sizeof *rec);
}

/* Copy a string member into a fixed buffer; false if missing/too long. */
static bool get_str(json_t *o, const char *k, char *out, size_t len, bool required, char *why, size_t why_len)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) {
        out[0] = '\0';
        if (required) snprintf(why, why_len, "missing \"%s\"", k);
        return !required;
    }
    if (!json_is_string(v) || json_string_length(v) >= len) {
        snprintf(why, why_len, "\"%s\" must be a string shorter than %zu bytes", k, len);
        return false;
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

static bool get_ms(json_t *o, const char *k, int64_t *out, bool required, char *why, size_t why_len)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) {
        *out = 0;
        if (required) snprintf(why, why_len, "missing \"%s\"", k);
        return !required;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(why, why_len, "\"%s\" must be a non-negative integer (unix ms)", k);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

static char *dup_str(json_t *o, const char *k, char *why, size_t why_len)
{
    json_t *v = json_object_get(o, k);
    char *s;
    if (!json_is_string(v)) { snprintf(why, why_len, "\"%s\" must be a string", k); return NULL; }
    s = strdup(json_string_value(v));
    if (!s) snprintf(why, why_len, "out of memory");
    return s;
}

bool bb_record_from_json(const char *line, bb_record *rec, char *why, size_t why_len)
{
    json_error_t jerr;
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
    const char *type;
    bool ok = false;
    memset(rec, 0, sizeof *rec);
    if (!o || !json_is_object(o)) {
        snprintf(why, why_len, "not a JSON object: %s", o ? "wrong type" : jerr.text);
        json_decref(o);
        return false;
    }
    type = json_string_value(json_object_get(o, "type"));
    if (!type) {
        snprintf(why, why_len, "missing \"type\"");
    } else if (strcmp(type, "team") == 0) {
        rec->kind = BB_REC_TEAM;
        ok = get_str(o, "name", rec->team.name, sizeof rec->team.name, true, why, why_len) &&
             get_ms(o, "createdAt", &rec->team.created_ms, true, why, why_len);
        if (ok && !bb_team_name_ok(rec->team.name)) { snprintf(why, why_len, "bad team name"); ok = false; }
    } else if (strcmp(type, "key") == 0) {
        char hex[BB_KEY_HASH_LEN * 2 + 1];
        size_t bin_len = 0;
        rec->kind = BB_REC_KEY;
        ok = get_str(o, "id", rec->key.id, sizeof rec->key.id, true, why, why_len) &&
             get_str(o, "team", rec->key.team, sizeof rec->key.team, true, why, why_len) &&
             get_str(o, "prefix", rec->key.prefix, sizeof rec->key.prefix, false, why, why_len) &&
             get_str(o, "label", rec->key.label, sizeof rec->key.label, false, why, why_len) &&
             get_str(o, "hash", hex, sizeof hex, true, why, why_len) &&
             get_ms(o, "createdAt", &rec->key.created_ms, true, why, why_len) &&
             get_ms(o, "revokedAt", &rec->key.revoked_ms, false, why, why_len);
        if (ok && (sodium_hex2bin(rec->key.hash, BB_KEY_HASH_LEN, hex, strlen(hex), NULL, &bin_len, NULL) != 0 ||
                   bin_len != BB_KEY_HASH_LEN)) {
            snprintf(why, why_len, "\"hash\" must be 64 hex digits");
            ok = false;
        }
    } else if (strcmp(type, "post") == 0) {
        bb_post *p = &rec->post;
        json_t *tags = json_object_get(o, "tags");
        rec->kind = BB_REC_POST;
        ok = get_str(o, "id", p->id, sizeof p->id, true, why, why_len) &&
             get_str(o, "team", p->team, sizeof p->team, true, why, why_len) &&
             get_str(o, "parentId", p->parent_id, sizeof p->parent_id, false, why, why_len) &&
             get_str(o, "threadId", p->thread_id, sizeof p->thread_id, true, why, why_len) &&
             get_ms(o, "createdAt", &p->created_ms, true, why, why_len) &&
             get_ms(o, "deletedAt", &p->deleted_ms, false, why, why_len) &&
             (p->author = dup_str(o, "author", why, why_len)) != NULL &&
             (p->content = dup_str(o, "content", why, why_len)) != NULL;
        if (ok && !bb_id_ok(p->id)) { snprintf(why, why_len, "bad post id"); ok = false; }
        if (ok && (!json_is_array(tags) || json_array_size(tags) > BB_TAGS_MAX)) {
            snprintf(why, why_len, "\"tags\" must be an array of at most %d strings", BB_TAGS_MAX);
            ok = false;
        }
        if (ok && json_array_size(tags)) {
            p->tags = calloc(json_array_size(tags), sizeof *p->tags);
            ok = p->tags != NULL;
            for (size_t i = 0; ok && i < json_array_size(tags); i++) {
                const char *t = json_string_value(json_array_get(tags, i));
                if (!t || !(p->tags[i] = strdup(t))) { snprintf(why, why_len, "bad tag %zu", i); ok = false; }
                else p->n_tags = i + 1;
            }
        }
    } else {
        snprintf(why, why_len, "unknown \"type\": %s", type);
    }
    json_decref(o);
    if (!ok) bb_record_clear(rec);
    return ok;
}
