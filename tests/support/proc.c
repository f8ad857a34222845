/*
 * tests/support/proc.c — starting, waiting for and stopping child programs.
 *
 * Children get a clean slate (default signal dispositions, empty signal mask,
 * only fds 0-2 open), a parent-death signal so a crashed test cannot leak
 * them, and an entry in the atexit registry.  exec failures are reported back
 * through a close-on-exec pipe, so "program missing" is an error of the start
 * call rather than a mysterious exit status later.  Every wait is a bounded
 * poll of waitpid(WNOHANG).
 *
 * Caveat: Linux sends the parent-death signal when the *thread* that forked
 * exits, so start services from the test's own thread (Criterion runs tests
 * and fixtures on the worker's main thread), never from a short-lived one.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum {
    CHILD_EXEC_FAILED = 127,
    KILL_REAP_MS      = 10000,               /* SIGKILL'd child must be gone by then */
    CAPTURE_LIMIT     = 64 * 1024 * 1024,    /* bytes of stdout/stderr kept */
    POLL_MAX_STEP_MS  = 20,
    FD_SCRATCH        = 10,                  /* fds are parked >= this while rewiring 0-2 */
    FD_FALLBACK_MAX   = 4096,
};

/* Everything the forked child needs, prepared before fork() so the child only
 * makes async-signal-safe calls (the test process may have threads). */
typedef struct child_plan {
    char *const *argv;
    char       **envp;
    int          fd_in, fd_out, fd_err;
    int          err_pipe;       /* write end: errno of a failed setup/exec */
    pid_t        parent;
    const bbt_spawn_opts *o;
} child_plan;

static void child_fail(int err_pipe, int err)
{
    ssize_t w = write(err_pipe, &err, sizeof err);
    (void)w;
    _exit(CHILD_EXEC_FAILED);
}

/* Runs in the child after fork(); never returns. */
static void child_exec(const child_plan *c)
{
    /* Signal dispositions set to "ignore" survive exec: reset them all. */
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Park the three fds high first so dup2 cannot clobber one with another. */
    int in = fcntl(c->fd_in, F_DUPFD, FD_SCRATCH);
    int out = fcntl(c->fd_out, F_DUPFD, FD_SCRATCH);
    int err = fcntl(c->fd_err, F_DUPFD, FD_SCRATCH);
    if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        child_fail(c->err_pipe, errno);
    /* Nothing of the test process (curl sockets, Criterion pipes) leaks in. */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        for (int fd = 3; fd < FD_FALLBACK_MAX; fd++)
            fcntl(fd, F_SETFD, FD_CLOEXEC);

    const bbt_spawn_opts *o = c->o;
    if (o && o->drop_to_user) {
        if (setgroups(1, &o->gid) != 0 || setgid(o->gid) != 0 || setuid(o->uid) != 0)
            child_fail(c->err_pipe, errno);
    }
    if (o && o->cwd && chdir(o->cwd) != 0)
        child_fail(c->err_pipe, errno);
    /* Set after the uid change: changing credentials clears it. */
    int deathsig = (o && o->death_signal) ? o->death_signal : SIGKILL;
    if (prctl(PR_SET_PDEATHSIG, deathsig) != 0)
        child_fail(c->err_pipe, errno);
    if (getppid() != c->parent)    /* the parent died before prctl took effect */
        _exit(CHILD_EXEC_FAILED);

    execve(c->argv[0], c->argv, c->envp);
    child_fail(c->err_pipe, errno);
}

/* environ, minus names overridden by `extra`, plus `extra` (and HOME/USER for
 * a dropped user).  Only the pointer array is allocated. */
static char **build_env(char *const extra[], const bbt_spawn_opts *o, char *storage, size_t storage_len)
{
    size_t n_env = 0, n_extra = 0;
    while (environ && environ[n_env])
        n_env++;
    while (extra && extra[n_extra])
        n_extra++;
    char **envp = calloc(n_env + n_extra + 4, sizeof *envp);
    if (!envp)
        return NULL;
    const char *user_vars[3] = { NULL, NULL, NULL };
    if (o && o->drop_to_user && o->user) {
        int w = snprintf(storage, storage_len, "HOME=%s%cUSER=%s%cLOGNAME=%s",
                         o->home ? o->home : "/", '\0', o->user, '\0', o->user);
        if (w > 0 && (size_t)w < storage_len) {
            user_vars[0] = storage;
            user_vars[1] = user_vars[0] + strlen(user_vars[0]) + 1;
            user_vars[2] = user_vars[1] + strlen(user_vars[1]) + 1;
        }
    }
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t name_len = eq ? (size_t)(eq - environ[i]) + 1 : strlen(environ[i]);
        bool overridden = false;
        for (size_t j = 0; j < n_extra && !overridden; j++)
            overridden = strncmp(extra[j], environ[i], name_len) == 0;
        for (size_t j = 0; j < 3 && !overridden; j++)
            overridden = user_vars[j] && strncmp(user_vars[j], environ[i], name_len) == 0;
        if (!overridden)
            envp[k++] = environ[i];
    }
    for (size_t j = 0; j < n_extra; j++)
        envp[k++] = extra[j];
    for (size_t j = 0; j < 3; j++)
        if (user_vars[j])
            envp[k++] = (char *)user_vars[j];
    return envp;
}

/* fork + child_exec; returns the pid or -1 with why filled. */
static pid_t fork_exec(char *const argv[], char *const env[], int fd_in, int fd_out, int fd_err,
                       const bbt_spawn_opts *o, char *why, size_t why_len)
{
    if (!argv || !argv[0]) {
        bbt_why(why, why_len, "no program given");
        return -1;
    }
    char env_storage[1024];
    char **envp = build_env(env, o, env_storage, sizeof env_storage);
    if (!envp) {
        bbt_why(why, why_len, "out of memory");
        return -1;
    }
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) != 0) {
        bbt_why(why, why_len, "pipe: %s", strerror(errno));
        free(envp);
        return -1;
    }
    child_plan plan = { .argv = argv, .envp = envp, .fd_in = fd_in, .fd_out = fd_out,
                        .fd_err = fd_err, .err_pipe = ep[1], .parent = getpid(), .o = o };
    pid_t pid = fork();
    if (pid == 0)
        child_exec(&plan);
    close(ep[1]);
    free(envp);
    if (pid < 0) {
        bbt_why(why, why_len, "fork: %s", strerror(errno));
        close(ep[0]);
        return -1;
    }
    int child_errno = 0;
    ssize_t r;
    do
        r = read(ep[0], &child_errno, sizeof child_errno);
    while (r < 0 && errno == EINTR);
    close(ep[0]);
    if (r > 0) {   /* exec (or setup) failed: the child has exited already */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        bbt_why(why, why_len, "cannot run %s: %s", argv[0], strerror(child_errno));
        return -1;
    }
    return pid;
}

bool bbt_spawn(bbt_proc *p, char *const argv[], char *const env[], const char *log_path,
               const bbt_spawn_opts *o, char *why, size_t why_len)
{
    if (!p)
        return false;
    memset(p, 0, sizeof *p);
    p->exit_status = -1;
    const char *log = log_path ? log_path : "/dev/null";
    if (snprintf(p->log_path, sizeof p->log_path, "%s", log) >= (int)sizeof p->log_path) {
        bbt_why(why, why_len, "log path too long: %s", log);
        return false;
    }
    int fd_log = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_log < 0) {
        bbt_why(why, why_len, "cannot open log %s: %s", log, strerror(errno));
        return false;
    }
    int fd_null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd_null < 0) {
        bbt_why(why, why_len, "cannot open /dev/null: %s", strerror(errno));
        close(fd_log);
        return false;
    }
    pid_t pid = fork_exec(argv, env, fd_null, fd_log, fd_log, o, why, why_len);
    close(fd_null);
    close(fd_log);
    if (pid < 0)
        return false;
    p->pid = pid;
    bbt_registry_add(pid, o && o->exit_signal ? o->exit_signal : SIGTERM, o ? o->key : NULL);
    return true;
}

bool bbt_proc_start(bbt_proc *p, char *const argv[], char *const env[], const char *log_path)
{
    char why[512] = "";
    bool ok = bbt_spawn(p, argv, env, log_path, NULL, why, sizeof why);
    if (!ok)
        fprintf(stderr, "bbtest: %s\n", why);
    return ok;
}

static int decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

bool bbt_proc_wait(bbt_proc *p, int timeout_ms)
{
    if (!p || p->pid <= 0)
        return true;   /* never started or already reaped: nothing left to wait for */
    int64_t deadline = bbt_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (int step = 1;; step = step < POLL_MAX_STEP_MS ? step * 2 : POLL_MAX_STEP_MS) {
        int status = 0;
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid || (r < 0 && errno == ECHILD)) {
            p->exit_status = r == p->pid ? decode_status(status) : -1;
            bbt_registry_remove(p->pid);
            p->pid = 0;
            return true;
        }
        int64_t left = deadline - bbt_now_ms();
        if (left <= 0)
            return false;
        bbt_sleep_ms(left < step ? (int)left : step);
    }
}

void bbt_proc_signal(bbt_proc *p, int sig)
{
    if (p && p->pid > 0)
        kill(p->pid, sig);
}

void bbt_proc_stop(bbt_proc *p, int timeout_ms)
{
    if (!p || p->pid <= 0)
        return;
    kill(p->pid, SIGTERM);
    if (bbt_proc_wait(p, timeout_ms))
        return;
    pid_t pid = p->pid;
    kill(pid, SIGKILL);
    if (!bbt_proc_wait(p, KILL_REAP_MS))
        fprintf(stderr, "bbtest: pid %d survived SIGKILL for %d ms\n", (int)pid, KILL_REAP_MS);
}

/* ---- run to completion, capturing output -------------------------------- */

typedef struct growbuf {
    char  *data;
    size_t len, cap;
    bool   open;
} growbuf;

static bool growbuf_add(growbuf *b, const char *src, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        if (b->len + n + 1 > CAPTURE_LIMIT)
            return true;   /* keep what we have; drop the excess silently */
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return false;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

static char *growbuf_take(growbuf *b)
{
    if (!b->data)
        return strdup("");
    char *d = b->data;
    b->data = NULL;
    return d;
}

int bbt_capture(char *const argv[], char *const env[], const bbt_spawn_opts *o,
                const char *input, size_t input_len, int timeout_ms,
                char **out, char **err)
{
    if (out)
        *out = NULL;
    if (err)
        *err = NULL;
    /* stdin is a socket so writing to a child that stopped reading fails with
     * EPIPE (MSG_NOSIGNAL) instead of killing the test with SIGPIPE. */
    int sin[2] = { -1, -1 }, sout[2] = { -1, -1 }, serr[2] = { -1, -1 };
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sin) != 0 ||
        pipe2(sout, O_CLOEXEC) != 0 || pipe2(serr, O_CLOEXEC) != 0) {
        for (int i = 0; i < 2; i++) {
            if (sin[i] >= 0) close(sin[i]);
            if (sout[i] >= 0) close(sout[i]);
            if (serr[i] >= 0) close(serr[i]);
        }
        return -1;
    }
    char why[512] = "";
    pid_t pid = fork_exec(argv, env, sin[1], sout[1], serr[1], o, why, sizeof why);
    close(sin[1]);
    close(sout[1]);
    close(serr[1]);
    if (pid < 0) {
        close(sin[0]);
        close(sout[0]);
        close(serr[0]);
        if (err)
            *err = strdup(why);
        return -1;
    }
    bbt_registry_add(pid, SIGKILL, NULL);

    if (!input || input_len == 0) {
        close(sin[0]);
        sin[0] = -1;
    } else {
        fcntl(sin[0], F_SETFL, O_NONBLOCK);
    }
    growbuf bo = { .open = true }, be = { .open = true };
    size_t sent = 0;
    int64_t deadline = bbt_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    bool timed_out = false;
    while (bo.open || be.open) {
        struct pollfd pf[3] = {
            { .fd = bo.open ? sout[0] : -1, .events = POLLIN },
            { .fd = be.open ? serr[0] : -1, .events = POLLIN },
            { .fd = sin[0], .events = POLLOUT },
        };
        int64_t left = deadline - bbt_now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        int n = poll(pf, 3, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        for (int i = 0; i < 2; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            growbuf *b = i == 0 ? &bo : &be;
            char chunk[8192];
            ssize_t r = read(pf[i].fd, chunk, sizeof chunk);
            if (r > 0) {
                if (!growbuf_add(b, chunk, (size_t)r))
                    b->open = false;
            } else if (r == 0 || errno != EINTR) {
                b->open = false;
            }
        }
        if (sin[0] >= 0 && (pf[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = send(sin[0], input + sent, input_len - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == input_len) {
                close(sin[0]);   /* EOF for the child */
                sin[0] = -1;
            }
        }
    }
    if (sin[0] >= 0)
        close(sin[0]);
    close(sout[0]);
    close(serr[0]);

    bbt_proc p = { .pid = pid, .exit_status = -1 };
    int64_t left = deadline - bbt_now_ms();
    if (timed_out || !bbt_proc_wait(&p, left > 0 ? (int)left : 0)) {
        timed_out = true;
        kill(pid, SIGKILL);
        bbt_proc_wait(&p, KILL_REAP_MS);
    }
    if (out)
        *out = growbuf_take(&bo);
    if (err)
        *err = growbuf_take(&be);
    free(bo.data);
    free(be.data);
    return timed_out ? -1 : p.exit_status;
}
