/*
 * tests/support/internal.h — shared plumbing of the harness library; not for
 * test suites (they use bbtest.h).
 */
#ifndef BBTEST_INTERNAL_H
#define BBTEST_INTERNAL_H

#include "bbtest.h"

#include <signal.h>
#include <stdarg.h>

/* How to start a child beyond bbt_proc_start()'s argv/env/log. */
typedef struct bbt_spawn_opts {
    bool        drop_to_user;   /* run as uid/gid (only meaningful as root) */
    uid_t       uid;
    gid_t       gid;
    const char *user;           /* for initgroups() and HOME/USER/LOGNAME */
    const char *home;
    const char *cwd;            /* chdir() before exec, NULL = inherit */
    int         death_signal;   /* sent to the child if the test process dies */
    int         exit_signal;    /* what the atexit sweep sends first */
    const char *key;            /* registry key so a helper can find "its" child */
} bbt_spawn_opts;

/* bbt_proc_start() with options; on failure writes the reason to why. */
bool bbt_spawn(bbt_proc *p, char *const argv[], char *const env[], const char *log_path,
               const bbt_spawn_opts *o, char *why, size_t why_len);

/* Run argv to completion within timeout_ms, feeding `input` (may be NULL) to
 * its stdin and capturing stdout/stderr (malloc'd into *out / *err when
 * non-NULL).  Returns the exit code (128+signal if it died of one) or -1 when
 * it could not be started or timed out (then it was killed and reaped). */
int bbt_capture(char *const argv[], char *const env[], const bbt_spawn_opts *o,
                const char *input, size_t input_len, int timeout_ms,
                char **out, char **err);

/* Absolute path of a program found in $PATH (or the name itself if it
 * already contains a '/'); malloc'd, NULL when not found/executable. */
char *bbt_which(const char *name);

/* The registry of live children, swept by an atexit hook so a failing test
 * never leaves a server behind.  Only the process that registered a child
 * sweeps it (Criterion forks workers). */
void  bbt_registry_add(pid_t pid, int exit_signal, const char *key);
void  bbt_registry_remove(pid_t pid);
pid_t bbt_registry_find(const char *key);
/* Temp dirs (every bbt_tempdir()) removed by the same hook unless
 * bbt_rmtree() removed them first. */
void  bbt_registry_add_dir(const char *dir);
void  bbt_registry_remove_dir(const char *dir);
/* bbt_rmtree() without touching the registry (the exit hook uses it). */
void  bbt_rmtree_unregistered(const char *path);

/* Monotonic milliseconds, and a short sleep used between polls. */
int64_t bbt_now_ms(void);
void    bbt_sleep_ms(int ms);

/* snprintf into why (no-op if why is NULL or why_len is 0). */
void bbt_why(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Append " -- last lines of LOG: ..." to why, keeping it NUL-terminated. */
void bbt_why_append_log(char *why, size_t why_len, const char *log_path);

/* A service picks its port with bbt_free_port() and binds it a moment later;
 * something else can take the port in between.  Start-ups retry with a new
 * port this many times when the log (from offset on) says so. */
enum { BBT_PORT_ATTEMPTS = 3 };
size_t bbt_file_size(const char *path);
bool   bbt_log_says_port_taken(const char *log_path, size_t offset);

/* malloc'd "a/b"; NULL on allocation failure. */
char *bbt_join(const char *a, const char *b);

#endif
