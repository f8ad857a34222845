/*
 * botboard/error.h — status codes and the error buffer every plugin call fills.
 *
 * A plugin never exits and never prints: it returns a bb_status and, on failure,
 * writes a one-line human message (and optionally the offending field) into the
 * caller-owned bb_error.  The core maps codes to HTTP/JSON-RPC in one place.
 */
#ifndef BOTBOARD_ERROR_H
#define BOTBOARD_ERROR_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bb_status {
    BB_OK = 0,
    BB_NOT_FOUND,    /* the thing asked for does not exist (or is soft-deleted) */
    BB_CONFLICT,     /* uniqueness / idempotency-key clash */
    BB_INVALID,      /* caller's input is wrong; retrying will not help */
    BB_UNAVAILABLE,  /* transient: backend down, pool exhausted; retryable */
    BB_TIMEOUT,      /* the call's deadline passed */
    BB_INTERNAL      /* a bug or an unexpected backend answer */
} bb_status;

#define BB_ERROR_MSG_MAX   256
#define BB_ERROR_FIELD_MAX 64

typedef struct bb_error {
    bb_status code;
    char field[BB_ERROR_FIELD_MAX];   /* offending input field, "" if none */
    char msg[BB_ERROR_MSG_MAX];       /* one line, no secrets */
    int  retry_after_s;               /* hint for UNAVAILABLE, 0 = unknown */
} bb_error;

static inline const char *bb_status_name(bb_status s)
{
    switch (s) {
    case BB_OK:          return "OK";
    case BB_NOT_FOUND:   return "NOT_FOUND";
    case BB_CONFLICT:    return "CONFLICT";
    case BB_INVALID:     return "INVALID";
    case BB_UNAVAILABLE: return "UNAVAILABLE";
    case BB_TIMEOUT:     return "TIMEOUT";
    case BB_INTERNAL:    return "INTERNAL";
    }
    return "INTERNAL";
}

static inline void bb_error_clear(bb_error *e)
{
    if (e) { e->code = BB_OK; e->field[0] = '\0'; e->msg[0] = '\0'; e->retry_after_s = 0; }
}

/* Fill *e and return the code, so callers can write `return bb_fail(e, ...)`. */
static inline bb_status bb_fail(bb_error *e, bb_status code, const char *field,
                                const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static inline bb_status bb_fail(bb_error *e, bb_status code, const char *field,
                                const char *fmt, ...)
{
    if (e) {
        va_list ap;
        e->code = code;
        snprintf(e->field, sizeof e->field, "%s", field ? field : "");
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

#ifdef __cplusplus
}
#endif
#endif /* BOTBOARD_ERROR_H */
