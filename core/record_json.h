/*
 * core/record_json.h — the backend-neutral export format: one JSON object
 * per line, keys sorted, so an export from any backend is byte-identical
 * for the same data.
 *   {"type":"team","name":..,"createdAt":ms}
 *   {"type":"key","id":..,"team":..,"prefix":..,"label":..,"hash":hex,"createdAt":ms,"revokedAt":ms|null}
 *   {"type":"post","id":..,"team":..,"author":..,"content":..,"tags":[..],"parentId":..|null,
 *    "threadId":..,"createdAt":ms,"deletedAt":ms|null}
 */
#ifndef BB_CORE_RECORD_JSON_H
#define BB_CORE_RECORD_JSON_H

#include <botboard/storage.h>

/* malloc'd line without newline, or NULL. */
char *bb_record_to_json(const bb_record *rec);
/* Parse one line; false with a message naming the field. Frees nothing on
 * failure that the caller must free, except via bb_record_clear(). */
bool bb_record_from_json(const char *line, bb_record *rec, char *why, size_t why_len);
void bb_record_clear(bb_record *rec);

#endif
