/*
 * tests/test_harness.c — proves the test harness (tests/support) itself:
 * scratch files, ports, child processes, the HTTP client, and real
 * PostgreSQL / Redis servers that stop and come back on the same port.
 * Every other suite builds on these, so each promise of bbtest.h that a
 * suite relies on is checked here against the real thing.
 */
#include "bbtest.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef BBT_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

/* True when this process has no child left, running or zombie. */
static bool no_children(void)
{
    return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

static bool path_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---- files and ports ---------------------------------------------------- */

Test(files, tempdir_write_read_rmtree)
{
    char *dir = bbt_tempdir("files/../x");
    cr_assert_not_null(dir);
    cr_assert(strstr(dir, "/bbt-files____x-") != NULL, "tag sanitised: %s", dir);
    struct stat st;
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));

    char *path = bbt_write_file(dir, "a.txt", "line one\nline two\n");
    cr_assert_not_null(path);
    size_t len = 0;
    char *text = bbt_read_file(path, &len);
    cr_assert_not_null(text);
    cr_assert_eq(len, strlen("line one\nline two\n"));
    cr_assert_str_eq(text, "line one\nline two\n");
    free(text);

    cr_assert_null(bbt_read_file("/nonexistent/bbt/file", &len));
    cr_assert_eq(len, 0);

    char *sub = bbt_write_file(dir, "empty", "");
    cr_assert_not_null(sub);
    text = bbt_read_file(sub, &len);
    cr_assert_not_null(text);
    cr_assert_eq(len, 0);
    cr_assert_str_eq(text, "");
    free(text);

    bbt_rmtree(dir);
    cr_assert_not(path_exists(dir), "%s removed", dir);
    bbt_rmtree(NULL);
    free(sub);
    free(path);
    free(dir);
}

Test(files, rmtree_refuses_paths_it_does_not_own)
{
    char tmpl[] = "/tmp/notours-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    char *f = bbt_write_file(tmpl, "keep", "x");
    cr_assert_not_null(f);
    bbt_rmtree(tmpl);
    cr_assert(path_exists(f), "bbt_rmtree deleted %s, which is not a bbt- dir", f);
    unlink(f);
    rmdir(tmpl);
    free(f);
}

Test(files, tempdirs_are_removed_at_exit, .timeout = 30)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t child = fork();
    cr_assert(child >= 0);
    if (child == 0) {
        close(fds[0]);
        char *dir = bbt_tempdir("forgotten");
        char *f = dir ? bbt_write_file(dir, "f", "x") : NULL;
        char buf[256] = "";
        snprintf(buf, sizeof buf, "%s", f ? dir : "");
        if (write(fds[1], buf, sizeof buf) != (ssize_t)sizeof buf)
            _exit(3);
        exit(0);   /* forgets to remove it */
    }
    close(fds[1]);
    char dir[256] = "";
    ssize_t n = read(fds[0], dir, sizeof dir);
    close(fds[0]);
    int status;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert_eq(n, (ssize_t)sizeof dir);
    cr_assert(dir[0] == '/', "child made a temp dir");
    cr_assert_not(path_exists(dir), "%s left behind", dir);
}

Test(files, build_path_is_absolute)
{
    char *p = bbt_build_path("botboard");
    cr_assert_not_null(p);
    cr_assert_eq(p[0], '/', "%s", p);
    size_t n = strlen(p);
    cr_assert(n > 9 && strcmp(p + n - 9, "/botboard") == 0, "%s", p);
    free(p);
}

Test(ports, free_port_is_bindable)
{
    int port = bbt_free_port();
    cr_assert(port > 0 && port < 65536, "port %d", port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0, "bind %d: %s", port,
                 strerror(errno));
    close(fd);
}

/* ---- processes ---------------------------------------------------------- */

Test(proc, exit_code_env_and_log, .timeout = 30)
{
    char *dir = bbt_tempdir("proc");
    cr_assert_not_null(dir);
    char log[512];
    snprintf(log, sizeof log, "%s/out.log", dir);
    char *argv[] = { "/bin/sh", "-c", "echo \"hello $BBT_X\"; echo oops >&2; exit 3", NULL };
    char *env[] = { "BBT_X=42", NULL };
    bbt_proc p;
    cr_assert(bbt_proc_start(&p, argv, env, log));
    cr_assert(p.pid > 0);
    cr_assert(bbt_proc_wait(&p, 10000), "child did not exit within 10 s");
    cr_assert_eq(p.exit_status, 3);
    cr_assert_eq(p.pid, 0, "reaped");
    char *text = bbt_read_file(log, NULL);
    cr_assert_not_null(text);
    cr_assert(strstr(text, "hello 42\n") && strstr(text, "oops\n"), "log: %s", text);
    free(text);
    cr_assert(no_children());
    bbt_rmtree(dir);
    free(dir);
}

Test(proc, missing_program_fails_to_start)
{
    char *argv[] = { "/nonexistent/program", NULL };
    bbt_proc p;
    cr_assert_not(bbt_proc_start(&p, argv, NULL, NULL));
    cr_assert(no_children());
}

Test(proc, stop_terminates_and_escalates, .timeout = 30)
{
    char *polite[] = { "/bin/sleep", "30", NULL };
    bbt_proc p;
    cr_assert(bbt_proc_start(&p, polite, NULL, NULL));
    cr_assert_not(bbt_proc_wait(&p, 50), "sleep 30 cannot have exited yet");
    bbt_proc_stop(&p, 5000);
    cr_assert_eq(p.pid, 0);
    cr_assert_eq(p.exit_status, 128 + SIGTERM);

    /* A child that ignores SIGTERM is killed once the grace period is over. */
    char *dir = bbt_tempdir("proc");
    cr_assert_not_null(dir);
    char log[512];
    snprintf(log, sizeof log, "%s/out.log", dir);
    char *stubborn[] = { "/bin/sh", "-c", "trap '' TERM; echo ready; exec sleep 30", NULL };
    cr_assert(bbt_proc_start(&p, stubborn, NULL, log));
    bool ready = false;   /* the trap must be in place before we signal */
    for (int waited = 0; waited < 5000 && !ready; waited += 10) {
        char *text = bbt_read_file(log, NULL);
        ready = text && strstr(text, "ready");
        free(text);
        struct timespec ts = { 0, 10 * 1000000L };
        if (!ready)
            nanosleep(&ts, NULL);
    }
    cr_assert(ready, "child never got ready");
    int64_t t0 = (int64_t)time(NULL);
    bbt_proc_stop(&p, 300);
    cr_assert_eq(p.pid, 0);
    cr_assert_eq(p.exit_status, 128 + SIGKILL);
    cr_assert((int64_t)time(NULL) - t0 < 10, "stop is bounded");
    cr_assert(no_children());
    bbt_rmtree(dir);
    free(dir);
}

/* Wait (bounded) until pid is gone or a zombie of someone else. */
static bool pid_dead_within(pid_t pid, int ms)
{
    for (int waited = 0; waited <= ms; waited += 10) {
        char path[64], stat_line[256] = "";
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
            return true;
        bool zombie = fgets(stat_line, sizeof stat_line, f) && strstr(stat_line, ") Z ");
        fclose(f);
        if (zombie)
            return true;
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return false;
}

/* A test process that exits (exit hook) or dies (parent-death signal) with
 * children still running takes them down. */
static void check_children_die_with_parent(bool crash)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t test_proc = fork();
    cr_assert(test_proc >= 0);
    if (test_proc == 0) {
        close(fds[0]);
        char *argv[] = { "/bin/sleep", "30", NULL };
        bbt_proc p;
        if (!bbt_proc_start(&p, argv, NULL, NULL))
            _exit(2);
        if (write(fds[1], &p.pid, sizeof p.pid) != (ssize_t)sizeof p.pid)
            _exit(3);
        if (crash)
            _exit(0);   /* no atexit hooks: only the parent-death signal helps */
        exit(0);
    }
    close(fds[1]);
    pid_t grandchild = 0;
    ssize_t n = read(fds[0], &grandchild, sizeof grandchild);
    close(fds[0]);
    int status;
    cr_assert_eq(waitpid(test_proc, &status, 0), test_proc);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    cr_assert_eq(n, (ssize_t)sizeof grandchild);
    cr_assert(pid_dead_within(grandchild, 5000), "pid %d outlived its test", (int)grandchild);
}

Test(proc, children_are_swept_at_exit, .timeout = 30)
{
    check_children_die_with_parent(false);
}

Test(proc, children_die_with_a_crashed_test, .timeout = 30)
{
    check_children_die_with_parent(true);
}

/* ---- HTTP --------------------------------------------------------------- */

/* A tiny one-connection-at-a-time HTTP server on loopback: it answers
 * /redirect with 302, everything else with 201 and a description of the
 * request it saw, so the client's literalness can be asserted. */
typedef struct mini_server {
    int       fd;
    int       port;
    int       requests;   /* how many to serve before the thread ends */
    pthread_t thread;
} mini_server;

static void serve_one(int c)
{
    char req[8192];
    size_t got = 0;
    char *end = NULL;
    while (got < sizeof req - 1 && !end) {
        ssize_t r = read(c, req + got, sizeof req - 1 - got);
        if (r <= 0)
            return;
        got += (size_t)r;
        req[got] = '\0';
        end = strstr(req, "\r\n\r\n");
    }
    if (!end)
        return;
    const char *cl = strcasestr(req, "\r\nContent-Length:");
    size_t body_len = cl ? strtoul(cl + 17, NULL, 10) : 0;
    size_t head_len = (size_t)(end + 4 - req);
    while (got < head_len + body_len && got < sizeof req - 1) {
        ssize_t r = read(c, req + got, sizeof req - 1 - got);
        if (r <= 0)
            return;
        got += (size_t)r;
    }
    req[got] = '\0';
    char method[16] = "", path[256] = "";
    sscanf(req, "%15s %255s", method, path);
    bool has_ct = strcasestr(req, "\r\nContent-Type:") != NULL;
    bool has_expect = strcasestr(req, "\r\nExpect:") != NULL;
    const char *xt = strcasestr(req, "\r\nX-Test: ");
    char xtest[32] = "";
    if (xt)
        sscanf(xt + 10, "%31[^\r]", xtest);

    char body[9000], resp[10000];
    int bl = snprintf(body, sizeof body, "%s %s ct=%d expect=%d x-test=%s body=%.*s", method,
                      path, has_ct, has_expect, xtest, (int)(got - head_len), req + head_len);
    int rl;
    if (strcmp(path, "/redirect") == 0)
        rl = snprintf(resp, sizeof resp, "HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\n"
                      "Content-Length: 0\r\nConnection: close\r\n\r\n");
    else
        rl = snprintf(resp, sizeof resp, "HTTP/1.1 201 Created\r\nX-Reply:   yes  \r\n"
                      "Content-Length: %d\r\nConnection: close\r\n\r\n%s", bl, body);
    ssize_t w = write(c, resp, (size_t)rl);
    (void)w;
}

static void *mini_server_run(void *arg)
{
    mini_server *m = arg;
    for (int i = 0; i < m->requests; i++) {
        int c = accept(m->fd, NULL, NULL);
        if (c < 0)
            break;
        serve_one(c);
        close(c);
    }
    return NULL;
}

static void mini_server_start(mini_server *m, int requests)
{
    m->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(m->fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    cr_assert_eq(bind(m->fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(m->fd, 8), 0);
    cr_assert_eq(getsockname(m->fd, (struct sockaddr *)&a, &alen), 0);
    m->port = ntohs(a.sin_port);
    m->requests = requests;
    cr_assert_eq(pthread_create(&m->thread, NULL, mini_server_run, m), 0);
}

static void mini_server_stop(mini_server *m)
{
    pthread_join(m->thread, NULL);
    close(m->fd);
}

Test(http, request_and_response_are_literal, .timeout = 60)
{
    mini_server m;
    mini_server_start(&m, 3);
    char url[128];
    bbt_response r;

    snprintf(url, sizeof url, "http://127.0.0.1:%d/things?x=1", m.port);
    const char *hdrs[] = { "X-Test: abc", NULL };
    cr_assert(bbt_http("POST", url, hdrs, "hello", 5, &r), "%s", r.body);
    cr_assert_eq(r.status, 201);
    cr_assert_str_eq(r.body, "POST /things?x=1 ct=0 expect=0 x-test=abc body=hello");
    cr_assert_eq(r.body_len, strlen(r.body));
    cr_assert(strncmp(r.headers, "HTTP/1.1 201", 12) == 0, "%s", r.headers);
    char *v = bbt_header(&r, "x-REPLY");
    cr_assert_not_null(v);
    cr_assert_str_eq(v, "yes");
    free(v);
    cr_assert_null(bbt_header(&r, "X-Repl"));
    cr_assert_null(bbt_header(&r, "X-Missing"));
    bbt_response_free(&r);

    const char *json[] = { "Content-Type: application/json", NULL };
    cr_assert(bbt_http("PUT", url, json, "{}", 2, &r), "%s", r.body);
    cr_assert_str_eq(r.body, "PUT /things?x=1 ct=1 expect=0 x-test= body={}");
    bbt_response_free(&r);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/redirect", m.port);
    cr_assert(bbt_http("GET", url, NULL, NULL, 0, &r), "%s", r.body);
    cr_assert_eq(r.status, 302, "redirects are not followed");
    v = bbt_header(&r, "Location");
    cr_assert_str_eq(v, "/elsewhere");
    free(v);
    bbt_response_free(&r);
    cr_assert_null(r.body);
    mini_server_stop(&m);
}

Test(http, transport_failure_is_status_zero, .timeout = 60)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", bbt_free_port());
    bbt_response r;
    cr_assert_not(bbt_http("GET", url, NULL, NULL, 0, &r));
    cr_assert_eq(r.status, 0);
    cr_assert_not_null(r.body);
    cr_assert(strlen(r.body) > 0, "the body explains the failure");
    bbt_response_free(&r);
}

/* ---- botboard ----------------------------------------------------------- */

static const char BROKEN_CONFIG[] = "server:\n  listen: [this is not an address\n";

static const char DEV_CONFIG[] =
    "environment: dev\n"
    "server:\n  listen: 127.0.0.1:{{PORT}}\n"
    "storage:\n  backend: sqlite\n  sqlite: { path: {{DIR}}/botboard.db }\n"
    "session:\n  backend: memory\n"
    "upstream:\n  backend: local\n"
    "logging: { level: info, format: text }\n";

static void skip_unless_built(void)
{
    char *bin = bbt_build_path("botboard");
    bool built = bin && access(bin, X_OK) == 0;
    char reason[600];
    snprintf(reason, sizeof reason, "botboard is not built at %s", bin ? bin : "?");
    free(bin);
    /* (Not cr_log_warn: Criterion 2.4 turns any warning into a failed run.) */
    if (!built)
        cr_skip_test("%s", reason);
}

Test(server, broken_config_fails_with_its_log, .timeout = 60)
{
    skip_unless_built();
    bbt_server s;
    char why[4096] = "";
    cr_assert_not(bbt_server_start(&s, BROKEN_CONFIG, why, sizeof why));
    cr_assert(strstr(why, "botboard.log") != NULL, "the reason carries the log: %s", why);
    cr_assert_null(s.dir, "cleaned up after a failed start");
    cr_assert(no_children());
}

Test(server, start_probe_restart_stop, .timeout = 120)
{
    skip_unless_built();
    bbt_server s;
    char why[4096] = "";
    if (!bbt_server_start(&s, DEV_CONFIG, why, sizeof why))
        cr_skip_test("botboard would not start: %s", why);
    cr_assert(s.port > 0);
    char *cfg = bbt_read_file(s.config_path, NULL);
    char listen[64];
    snprintf(listen, sizeof listen, "listen: 127.0.0.1:%d\n", s.port);
    cr_assert(cfg && strstr(cfg, listen) && strstr(cfg, s.dir) && !strstr(cfg, "{{"),
              "placeholders substituted: %s", cfg);
    free(cfg);

    char url[128];
    snprintf(url, sizeof url, "%s/healthz", s.base_url);
    bbt_response r;
    cr_assert(bbt_http("GET", url, NULL, NULL, 0, &r));
    cr_assert_eq(r.status, 200);
    bbt_response_free(&r);

    cr_assert_eq(bbt_server_stop(&s), 0, "SIGTERM is a clean exit");
    cr_assert_not(bbt_http("GET", url, NULL, NULL, 0, &r), "stopped server still answers");
    bbt_response_free(&r);

    int port = s.port;
    cr_assert(bbt_server_restart(&s, why, sizeof why), "%s", why);
    cr_assert_eq(s.port, port);
    cr_assert(bbt_http("GET", url, NULL, NULL, 0, &r));
    cr_assert_eq(r.status, 200);
    bbt_response_free(&r);

    const char *args[] = { "version", NULL };
    char *out = NULL, *err = NULL;
    cr_assert_eq(bbt_botboard_cli(s.config_path, args, &out, &err), 0, "%s", err);
    cr_assert(out && strlen(out) > 0);
    free(out);
    free(err);

    char *dir = strdup(s.dir);
    bbt_server_destroy(&s);
    cr_assert_not(path_exists(dir));
    free(dir);
    cr_assert(no_children());
}

/* ---- PostgreSQL --------------------------------------------------------- */

#ifdef BBT_HAVE_LIBPQ
/* One value from one query on a fresh connection; NULL if it cannot connect. */
static char *pg_query_value(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    char *v = NULL;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            v = strdup(PQgetvalue(res, 0, 0));
        else if (PQresultStatus(res) == PGRES_COMMAND_OK)
            v = strdup("ok");
        PQclear(res);
    }
    PQfinish(c);
    return v;
}
#endif

Test(pg, start_connect_stop_restart, .timeout = 240)
{
#ifndef BBT_HAVE_LIBPQ
    cr_skip_test("built without libpq (--without-postgres)");
#else
    bbt_pg pg;
    char why[4096] = "";
    if (!bbt_pg_start(&pg, why, sizeof why))
        cr_skip_test("PostgreSQL would not start: %s", why);
    cr_assert(pg.running);
    char *v = pg_query_value(pg.conninfo, "SELECT current_database() || '/' || current_user");
    cr_assert_not_null(v, "connect with %s", pg.conninfo);
    cr_assert_str_eq(v, "botboard/botboard");
    free(v);
    v = pg_query_value(pg.conninfo, "CREATE TABLE t AS SELECT 42 AS x");
    cr_assert_not_null(v);
    free(v);

    /* Kill it hard, as the failover tests do, and bring it back. */
    cr_assert(bbt_pg_stop(&pg, true));
    cr_assert_not(pg.running);
    v = pg_query_value(pg.conninfo, "SELECT 1");
    cr_assert_null(v, "connected to a stopped server");
    int port = pg.port;
    cr_assert(bbt_pg_restart(&pg, why, sizeof why), "%s", why);
    cr_assert_eq(pg.port, port);
    v = pg_query_value(pg.conninfo, "SELECT x FROM t");
    cr_assert_not_null(v, "reconnect after restart");
    cr_assert_str_eq(v, "42", "same data dir after restart");
    free(v);

    cr_assert(bbt_pg_stop(&pg, false));
    cr_assert(bbt_pg_stop(&pg, false), "stopping twice is harmless");
    char *dir = strdup(pg.dir);
    bbt_pg_destroy(&pg);
    cr_assert_not(path_exists(dir));
    free(dir);
    cr_assert(no_children());
#endif
}

/* ---- Redis -------------------------------------------------------------- */

Test(redis, start_ping_restart_ping, .timeout = 120)
{
    bbt_redis r;
    char why[4096] = "";
    if (!bbt_redis_start(&r, why, sizeof why))
        cr_skip_test("Redis would not start: %s", why);
    char expect_url[64];
    snprintf(expect_url, sizeof expect_url, "redis://127.0.0.1:%d/0", r.port);
    cr_assert_str_eq(r.url, expect_url);

    const char *ping[] = { "PING", NULL };
    const char *set[] = { "SET", "k", "v", NULL };
    const char *get[] = { "GET", "k", NULL };
    char *out = bbt_redis_cli(&r, ping);
    cr_assert_str_eq(out, "PONG\n");
    free(out);
    out = bbt_redis_cli(&r, set);
    cr_assert_str_eq(out, "OK\n");
    free(out);
    out = bbt_redis_cli(&r, get);
    cr_assert_str_eq(out, "v\n");
    free(out);

    cr_assert(bbt_redis_stop(&r));
    cr_assert_not(r.running);
    out = bbt_redis_cli(&r, ping);
    cr_assert(!out || !strstr(out, "PONG"), "a stopped redis answered: %s", out);
    free(out);

    int port = r.port;
    cr_assert(bbt_redis_restart(&r, why, sizeof why), "%s", why);
    cr_assert_eq(r.port, port);
    out = bbt_redis_cli(&r, ping);
    cr_assert_str_eq(out, "PONG\n");
    free(out);
    out = bbt_redis_cli(&r, get);
    cr_assert_str_eq(out, "\n", "no persistence: restart starts empty");
    free(out);

    char *dir = strdup(r.dir);
    bbt_redis_destroy(&r);
    cr_assert_not(path_exists(dir));
    free(dir);
    cr_assert(no_children());
}
