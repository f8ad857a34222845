/*
 * core/log.c — the logger.  Process-wide state (level, format, secrets)
 * lives here and nowhere else; per-request context is thread-local.
 */
#include "log.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192
#define MAX_SECRETS    256
#define RID_MAX        129
#define TP_MAX         64

static atomic_int g_level = BB_LOG_INFO;
static atomic_int g_format = BB_LOG_FMT_AUTO;
static atomic_int g_fd = 2;

static pthread_mutex_t g_secret_lock = PTHREAD_MUTEX_INITIALIZER;
static char *g_secrets[MAX_SECRETS];
static atomic_size_t g_n_secrets;

static __thread char t_request_id[RID_MAX];
static __thread char t_traceparent[TP_MAX];

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void bb_log_configure(bb_log_level level, bb_log_format fmt)
{
    atomic_store(&g_level, (int)level);
    atomic_store(&g_format, (int)fmt);
}

void bb_log_set_level(bb_log_level level) { atomic_store(&g_level, (int)level); }
bool bb_log_enabled(bb_log_level level) { return (int)level >= atomic_load(&g_level); }
void bb_log_set_fd(int fd) { atomic_store(&g_fd, fd); }

bool bb_log_parse_level(const char *s, bb_log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) { *out = (bb_log_level)i; return true; }
    return false;
}

bool bb_log_parse_format(const char *s, bb_log_format *out)
{
    if (strcmp(s, "auto") == 0) *out = BB_LOG_FMT_AUTO;
    else if (strcmp(s, "json") == 0) *out = BB_LOG_FMT_JSON;
    else if (strcmp(s, "text") == 0) *out = BB_LOG_FMT_TEXT;
    else return false;
    return true;
}

void bb_log_add_secret(const char *secret)
{
    size_t n;
    if (!secret || strlen(secret) < 4) return;
    pthread_mutex_lock(&g_secret_lock);
    n = atomic_load(&g_n_secrets);
    for (size_t i = 0; i < n; i++)
        if (strcmp(g_secrets[i], secret) == 0) { pthread_mutex_unlock(&g_secret_lock); return; }
    if (n < MAX_SECRETS && (g_secrets[n] = strdup(secret)) != NULL)
        atomic_store(&g_n_secrets, n + 1);   /* publish after the slot is written */
    pthread_mutex_unlock(&g_secret_lock);
}

void bb_log_set_request(const char *request_id, const char *traceparent)
{
    snprintf(t_request_id, sizeof t_request_id, "%s", request_id ? request_id : "");
    snprintf(t_traceparent, sizeof t_traceparent, "%s", traceparent ? traceparent : "");
}

void bb_log_clear_request(void) { t_request_id[0] = t_traceparent[0] = '\0'; }
const char *bb_log_request_id(void) { return t_request_id; }

/* ---- masking ------------------------------------------------------------- */

static bool key_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-'; }

/* Length of a pattern match at p that must be masked, and how much of it to
 * keep visible (e.g. "password=" or "bbk_"). */
static size_t pattern_at(const char *p, size_t *keep)
{
    size_t n;
    if (strncmp(p, "bbk_", 4) == 0) {
        for (n = 4; key_char(p[n]); n++) {}
        if (n >= 12) { *keep = 4; return n; }
    }
    if (strncasecmp(p, "password=", 9) == 0) {
        for (n = 9; p[n] && !isspace((unsigned char)p[n]) && p[n] != '"' && p[n] != '\''; n++) {}
        if (n > 9) { *keep = 9; return n; }
    }
    if (strncmp(p, "://", 3) == 0) {
        /* scheme://user:password@host — mask the password */
        const char *at = NULL, *colon = NULL;
        for (n = 3; p[n] && !isspace((unsigned char)p[n]) && p[n] != '/' && p[n] != '"'; n++) {
            if (p[n] == '@') { at = p + n; break; }
            if (p[n] == ':' && !colon) colon = p + n;
        }
        if (at && colon && colon < at) { *keep = (size_t)(colon - p) + 1; return (size_t)(at - p); }
    }
    return 0;
}

void bb_log_mask(const char *in, char *out, size_t outlen)
{
    size_t o = 0, n_secrets = atomic_load(&g_n_secrets);
    if (!outlen) return;
    while (*in && o + 1 < outlen) {
        size_t keep = 0, m = pattern_at(in, &keep);
        if (!m) {
            for (size_t i = 0; i < n_secrets; i++) {
                size_t sl = strlen(g_secrets[i]);
                if (strncmp(in, g_secrets[i], sl) == 0) { m = sl; keep = 0; break; }
            }
        }
        if (m) {
            for (size_t i = 0; i < keep && o + 1 < outlen; i++) out[o++] = in[i];
            for (const char *s = "***"; *s && o + 1 < outlen; s++) out[o++] = *s;
            in += m;
        } else {
            out[o++] = *in++;
        }
    }
    out[o] = '\0';
}

/* ---- writing -------------------------------------------------------------- */

static size_t json_escape(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *s && o + 7 < outlen; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { out[o++] = '\\'; out[o++] = (char)c; }
        else if (c == '\n') { out[o++] = '\\'; out[o++] = 'n'; }
        else if (c == '\t') { out[o++] = '\\'; out[o++] = 't'; }
        else if (c < 0x20) o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", c);
        else out[o++] = (char)c;
    }
    out[o] = '\0';
    return o;
}

static bool use_json(void)
{
    int f = atomic_load(&g_format);
    if (f == BB_LOG_FMT_AUTO) return !isatty(atomic_load(&g_fd));
    return f == BB_LOG_FMT_JSON;
}

static void emit(bb_log_level level, const char *src, const bb_call *call, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

void bb_logv_call(bb_log_level level, const char *src, const bb_call *call, const char *fmt, va_list ap)
{
    if (bb_log_enabled(level)) emit(level, src, call, fmt, ap);
}

void bb_log_access(const bb_call *call, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(BB_LOG_INFO, "access", call, fmt, ap);
    va_end(ap);
}

static void emit(bb_log_level level, const char *src, const bb_call *call, const char *fmt, va_list ap)
{
    char raw[LINE_MAX_BYTES], msg[LINE_MAX_BYTES], esc[LINE_MAX_BYTES], line[LINE_MAX_BYTES + 512], ts[40];
    const char *rid = call && call->request_id ? call->request_id : t_request_id;
    const char *tp = call ? (call->traceparent ? call->traceparent : "") : t_traceparent;
    struct timespec now;
    struct tm tm;
    int len;

    vsnprintf(raw, sizeof raw, fmt, ap);
    bb_log_mask(raw, msg, sizeof msg);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
    if (use_json()) {
        char esc_rid[RID_MAX * 6];
        json_escape(msg, esc, sizeof esc);
        json_escape(rid, esc_rid, sizeof esc_rid);
        /* traceparent is validated hex and dashes on the way in: no escaping needed */
        len = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"src\":\"%s\",\"msg\":\"%s\"%s%s%s%s%s%s}\n",
                       ts, level_names[level], src, esc, rid[0] ? ",\"request_id\":\"" : "", rid[0] ? esc_rid : "",
                       rid[0] ? "\"" : "", tp[0] ? ",\"traceparent\":\"" : "", tp, tp[0] ? "\"" : "");
    } else {
        len = snprintf(line, sizeof line, "%s %-5s [%s] %s%s%s%s%s\n", ts, level_names[level], src, msg,
                       rid[0] ? " request_id=" : "", rid, tp[0] ? " traceparent=" : "", tp);
    }
    if (len < 0) return;
    if ((size_t)len >= sizeof line) { len = (int)sizeof line - 1; line[len - 1] = '\n'; }
    /* One write per line so concurrent lines never interleave. */
    for (ssize_t off = 0, w; off < len; off += w) {
        w = write(atomic_load(&g_fd), line + off, (size_t)(len - off));
        if (w <= 0) break;
    }
}

void bb_log(bb_log_level level, const char *src, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bb_logv_call(level, src, NULL, fmt, ap);
    va_end(ap);
}
