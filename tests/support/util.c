/*
 * tests/support/util.c — small helpers shared by the harness: clocks, error
 * messages for skipped tests, and $PATH lookup.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { LOG_TAIL_BYTES = 1500 };   /* how much of a service log a reason carries */

int64_t bbt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bbt_sleep_ms(int ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void bbt_why(char *why, size_t why_len, const char *fmt, ...)
{
    if (!why || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

void bbt_why_append_log(char *why, size_t why_len, const char *log_path)
{
    if (!why || why_len == 0 || !log_path)
        return;
    size_t len = 0;
    char *log = bbt_read_file(log_path, &len);
    if (!log)
        return;
    char *tail = len > LOG_TAIL_BYTES ? log + len - LOG_TAIL_BYTES : log;
    /* One line: Criterion shows only the first line of a skip message. */
    while (len > 0 && (log[len - 1] == '\n' || log[len - 1] == '\r'))
        log[--len] = '\0';
    for (char *c = tail; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = '|';
    size_t used = strnlen(why, why_len);
    if (used < why_len)
        snprintf(why + used, why_len - used, " -- end of %s: %s", log_path, tail);
    free(log);
}

size_t bbt_file_size(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

bool bbt_log_says_port_taken(const char *log_path, size_t offset)
{
    size_t len = 0;
    char *log = bbt_read_file(log_path, &len);
    bool taken = log && offset <= len && strstr(log + offset, "Address already in use");
    free(log);
    return taken;
}

char *bbt_which(const char *name)
{
    if (!name || !*name)
        return NULL;
    if (strchr(name, '/'))
        return access(name, X_OK) == 0 ? strdup(name) : NULL;
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
    for (const char *p = path; *p;) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char cand[PATH_MAX];
        int w = snprintf(cand, sizeof cand, "%.*s/%s", (int)n, n ? p : ".", name);
        if (w > 0 && (size_t)w < sizeof cand && access(cand, X_OK) == 0)
            return strdup(cand);
        if (!end)
            break;
        p = end + 1;
    }
    return NULL;
}
