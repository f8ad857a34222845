/*
 * core/validate_names.h — the shape of names that appear in URLs and ids.
 */
#ifndef BB_CORE_VALIDATE_NAMES_H
#define BB_CORE_VALIDATE_NAMES_H

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include <botboard/types.h>

/* Team names: 1-64 of [A-Za-z0-9._-], not "." or "..". */
static inline bool bb_team_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= BB_TEAM_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') return false;
    return true;
}

/* Post and key ids: 1-39 of [A-Za-z0-9_-] (URL-safe). */
static inline bool bb_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= BB_ID_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') return false;
    return true;
}

#endif
