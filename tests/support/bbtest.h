/*
 * tests/support/bbtest.h — the test harness: real processes on real sockets.
 *
 * Everything here starts real programs (botboard, postgres, redis-server) on
 * loopback, in temp dirs, on free ports, and waits for them by polling with a
 * bound — never by sleeping a fixed time.  A service that cannot be started
 * returns false with a reason; the caller turns that into cr_skip_test(),
 * never a pass.
 */
#ifndef BBTEST_H
#define BBTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- files and ports ---------------------------------------------------- */

/* mkdtemp under $TMPDIR (or /tmp); returns malloc'd path or NULL. */
char *bbt_tempdir(const char *tag);
/* rm -rf, bounded to paths under the temp root; ignores NULL. */
void  bbt_rmtree(const char *path);
/* Write text to dir/name; returns malloc'd full path or NULL. */
char *bbt_write_file(const char *dir, const char *name, const char *text);
/* Read a whole file; malloc'd, NUL-terminated; NULL on error. */
char *bbt_read_file(const char *path, size_t *len);
/* A TCP port free on 127.0.0.1 right now (bind :0, read it back, close). */
int   bbt_free_port(void);
/* Absolute path of a program in the build tree ("botboard",
 * "tests/plugins/..."), from $BB_BUILDDIR or the compiled-in build dir. */
char *bbt_build_path(const char *rel);

/* ---- processes ---------------------------------------------------------- */

typedef struct bbt_proc {
    pid_t pid;
    char  log_path[512];   /* stdout+stderr of the child go here */
    int   exit_status;     /* valid after bbt_proc_wait() returned true */
} bbt_proc;

/* fork+exec argv (argv[0] is a path) with extra env ("K=V", NULL-terminated,
 * may be NULL), output to log_path.  false on failure. */
bool bbt_proc_start(bbt_proc *p, char *const argv[], char *const env[], const char *log_path);
/* Wait up to timeout_ms for exit; true when it exited (status in exit_status). */
bool bbt_proc_wait(bbt_proc *p, int timeout_ms);
/* Send sig (no wait). */
void bbt_proc_signal(bbt_proc *p, int sig);
/* SIGTERM, wait up to timeout_ms, then SIGKILL and reap. */
void bbt_proc_stop(bbt_proc *p, int timeout_ms);

/* ---- botboard ----------------------------------------------------------- */

typedef struct bbt_server {
    bbt_proc proc;
    int      port;
    char     base_url[64];    /* "http://127.0.0.1:PORT" */
    char    *dir;             /* temp dir with botboard.yaml, db, log */
    char    *config_path;
} bbt_server;

/* Write `yaml` (it may contain "{{PORT}}" and "{{DIR}}", replaced by the
 * chosen port and the temp dir) as DIR/botboard.yaml, start `botboard serve
 * -c` on it and poll GET /healthz until 200 (timeout_ms).  false + reason in
 * why on failure (the server log is appended to why, truncated). */
bool bbt_server_start(bbt_server *s, const char *yaml, char *why, size_t why_len);
/* Same dir, same port, same config: start again after a stop. */
bool bbt_server_restart(bbt_server *s, char *why, size_t why_len);
/* SIGTERM and reap; returns the exit status (or -1). Keeps the dir. */
int  bbt_server_stop(bbt_server *s);
/* Stop if running and remove the temp dir. */
void bbt_server_destroy(bbt_server *s);
/* Run a botboard CLI command against the server's config; captures stdout
 * (malloc'd into *out if out != NULL) and returns the exit code. */
int  bbt_botboard_cli(const char *config_path, const char *const args[], char **out, char **err_out);

/* ---- HTTP (libcurl) ----------------------------------------------------- */

typedef struct bbt_response {
    long   status;          /* 0 = transport failure */
    char  *body;            /* NUL-terminated */
    size_t body_len;
    char  *headers;         /* raw header block */
} bbt_response;

/* headers: NULL-terminated "Name: value" list or NULL; body may be NULL. */
bool  bbt_http(const char *method, const char *url, const char *const headers[],
               const char *body, size_t body_len, bbt_response *r);
/* Case-insensitive header lookup; malloc'd value or NULL. */
char *bbt_header(const bbt_response *r, const char *name);
void  bbt_response_free(bbt_response *r);

/* ---- PostgreSQL --------------------------------------------------------- */

typedef struct bbt_pg {
    char *dir;              /* data dir + socket dir live under it */
    int   port;
    char  conninfo[512];    /* "host=127.0.0.1 port=P dbname=botboard user=botboard" */
    char  bindir[256];      /* where initdb/pg_ctl were found */
    bool  running;
} bbt_pg;

/* initdb into a temp dir (as the `postgres` user when running as root),
 * start on a free port on 127.0.0.1, create database `botboard`, wait ready.
 * false + why if PostgreSQL is not installed or would not start. */
bool bbt_pg_start(bbt_pg *pg, char *why, size_t why_len);
bool bbt_pg_stop(bbt_pg *pg, bool immediate);     /* pg_ctl stop -m fast|immediate */
bool bbt_pg_restart(bbt_pg *pg, char *why, size_t why_len); /* start again, same dir/port */
void bbt_pg_destroy(bbt_pg *pg);

/* ---- Redis -------------------------------------------------------------- */

typedef struct bbt_redis {
    char    *dir;
    int      port;
    char     url[128];      /* "redis://127.0.0.1:P/0" */
    bbt_proc proc;
    bool     running;
} bbt_redis;

bool bbt_redis_start(bbt_redis *r, char *why, size_t why_len);
bool bbt_redis_stop(bbt_redis *r);                 /* SHUTDOWN NOSAVE / SIGTERM, reap */
bool bbt_redis_restart(bbt_redis *r, char *why, size_t why_len);
void bbt_redis_destroy(bbt_redis *r);
/* Run one redis command line via redis-cli against it; stdout malloc'd. */
char *bbt_redis_cli(bbt_redis *r, const char *const args[]);

/* ---- additions (after the API was fixed) -------------------------------- */

/* bbt_http() with its own total timeout.  When the timeout hits after the
 * status line arrived, the response so far is returned with its status (how
 * a test reads the start of an endless stream such as SSE). */
bool  bbt_http_timeout(const char *method, const char *url, const char *const headers[],
                       const char *body, size_t body_len, int timeout_ms, bbt_response *r);
/* bbt_botboard_cli() that feeds `input` to the command's stdin (import). */
int   bbt_botboard_cli_input(const char *config_path, const char *const args[],
                             const char *input, size_t input_len, char **out, char **err_out);

#endif
