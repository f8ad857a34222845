/*
 * core/log.h — one log line per event: JSON lines or text, levels, the
 * request id of the request being served, secrets masked by construction.
 *
 * Every line passes through one formatter that masks registered secrets
 * (config secrets, passwords plugins report), API keys (bbk_...), URL
 * passwords and conninfo password= fields, whoever wrote the message.
 */
#ifndef BB_CORE_LOG_H
#define BB_CORE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include <botboard/host.h>

typedef enum bb_log_format { BB_LOG_FMT_AUTO, BB_LOG_FMT_JSON, BB_LOG_FMT_TEXT } bb_log_format;

void bb_log_configure(bb_log_level level, bb_log_format fmt);
void bb_log_set_level(bb_log_level level);
bool bb_log_enabled(bb_log_level level);
bool bb_log_parse_level(const char *s, bb_log_level *out);
bool bb_log_parse_format(const char *s, bb_log_format *out);
/* Send lines to this fd instead of stderr (tests). */
void bb_log_set_fd(int fd);

/* Mask this value wherever it appears in later lines (copied; <4 chars ignored). */
void bb_log_add_secret(const char *secret);

/* The request this thread is serving: its id goes on every line the thread
 * writes until cleared.  Strings are copied. */
void bb_log_set_request(const char *request_id, const char *traceparent);
void bb_log_clear_request(void);
const char *bb_log_request_id(void);

void bb_log(bb_log_level level, const char *src, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* With an explicit call context (plugins), overriding the thread's. */
void bb_logv_call(bb_log_level level, const char *src, const bb_call *call, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* logging.access: one line per finished request, src "access", level
 * info, written whatever logging.level is (an operator who turned access
 * lines on wants every one). */
void bb_log_access(const bb_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Apply the masking rules to text in place-free form (exposed for tests):
 * writes at most outlen bytes, always NUL-terminated. */
void bb_log_mask(const char *in, char *out, size_t outlen);

#define bb_debug(src, ...) bb_log(BB_LOG_DEBUG, src, __VA_ARGS__)
#define bb_info(src, ...)  bb_log(BB_LOG_INFO, src, __VA_ARGS__)
#define bb_warn(src, ...)  bb_log(BB_LOG_WARN, src, __VA_ARGS__)
#define bb_error(src, ...) bb_log(BB_LOG_ERROR, src, __VA_ARGS__)

#endif
