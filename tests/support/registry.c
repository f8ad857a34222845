/*
 * tests/support/registry.c — every child and scratch dir the harness creates,
 * so an exiting test process (a failed assertion included) takes its
 * postgres/redis/botboard down with it instead of leaking them into CI.
 *
 * A crash bypasses atexit; for that case children also get a parent-death
 * signal (see proc.c).  Entries remember the pid of the process that made
 * them: Criterion forks workers, and a worker must not sweep its parent's
 * children.  Set BB_TEST_KEEP=1 to keep scratch dirs for a post-mortem.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    MAX_CHILDREN   = 64,
    MAX_DIRS       = 64,
    KEY_MAX        = 256,
    SWEEP_GRACE_MS = 5000,   /* after the polite signal, before SIGKILL */
    KILL_REAP_MS   = 5000,
};

typedef struct child_entry {
    pid_t pid;
    pid_t owner;
    int   exit_signal;
    char  key[KEY_MAX];
} child_entry;

typedef struct dir_entry {
    pid_t owner;
    char *path;
} dir_entry;

/* Test-harness state: one per test process by design (it is what atexit
 * needs to see), guarded by a mutex in case a test uses threads. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static child_entry children[MAX_CHILDREN];
static dir_entry dirs[MAX_DIRS];
static bool hook_installed;

static void sweep(void);

static void install_hook_locked(void)
{
    if (!hook_installed && atexit(sweep) == 0)
        hook_installed = true;
}

void bbt_registry_add(pid_t pid, int exit_signal, const char *key)
{
    pthread_mutex_lock(&lock);
    install_hook_locked();
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        if (children[i].pid == 0) {
            children[i] = (child_entry){ .pid = pid, .owner = getpid(),
                                         .exit_signal = exit_signal ? exit_signal : SIGTERM };
            snprintf(children[i].key, KEY_MAX, "%s", key ? key : "");
            pthread_mutex_unlock(&lock);
            return;
        }
    }
    pthread_mutex_unlock(&lock);
    fprintf(stderr, "bbtest: child registry full; pid %d will not be swept at exit\n", (int)pid);
}

void bbt_registry_remove(pid_t pid)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < MAX_CHILDREN; i++)
        if (children[i].pid == pid)
            children[i].pid = 0;
    pthread_mutex_unlock(&lock);
}

pid_t bbt_registry_find(const char *key)
{
    pid_t found = 0, me = getpid();
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < MAX_CHILDREN && !found; i++)
        if (children[i].pid > 0 && children[i].owner == me && strcmp(children[i].key, key) == 0)
            found = children[i].pid;
    pthread_mutex_unlock(&lock);
    return found;
}

void bbt_registry_add_dir(const char *dir)
{
    if (!dir)
        return;
    char *copy = strdup(dir);
    if (!copy)
        return;
    pthread_mutex_lock(&lock);
    install_hook_locked();
    for (size_t i = 0; i < MAX_DIRS; i++) {
        if (!dirs[i].path) {
            dirs[i] = (dir_entry){ .owner = getpid(), .path = copy };
            pthread_mutex_unlock(&lock);
            return;
        }
    }
    pthread_mutex_unlock(&lock);
    free(copy);
}

void bbt_registry_remove_dir(const char *dir)
{
    if (!dir)
        return;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < MAX_DIRS; i++) {
        if (dirs[i].path && strcmp(dirs[i].path, dir) == 0) {
            free(dirs[i].path);
            dirs[i].path = NULL;
        }
    }
    pthread_mutex_unlock(&lock);
}

/* Reap pid within ms; true when it is gone. */
static bool reap_within(pid_t pid, int ms)
{
    int64_t deadline = bbt_now_ms() + ms;
    for (int step = 1;; step = step < 20 ? step * 2 : 20) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return true;
        if (bbt_now_ms() >= deadline)
            return false;
        bbt_sleep_ms(step);
    }
}

static void sweep(void)
{
    pid_t me = getpid();
    pthread_mutex_lock(&lock);
    /* Polite signal to all first, so they shut down in parallel. */
    for (size_t i = 0; i < MAX_CHILDREN; i++)
        if (children[i].pid > 0 && children[i].owner == me)
            kill(children[i].pid, children[i].exit_signal);
    int64_t deadline = bbt_now_ms() + SWEEP_GRACE_MS;
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        if (children[i].pid <= 0 || children[i].owner != me)
            continue;
        int64_t left = deadline - bbt_now_ms();
        if (!reap_within(children[i].pid, left > 0 ? (int)left : 0)) {
            kill(children[i].pid, SIGKILL);
            if (!reap_within(children[i].pid, KILL_REAP_MS))
                fprintf(stderr, "bbtest: pid %d survived SIGKILL\n", (int)children[i].pid);
        }
        children[i].pid = 0;
    }
    const char *keep = getenv("BB_TEST_KEEP");
    for (size_t i = 0; i < MAX_DIRS; i++) {
        if (!dirs[i].path || dirs[i].owner != me)
            continue;
        if (keep && *keep && strcmp(keep, "0") != 0)
            fprintf(stderr, "bbtest: keeping %s (BB_TEST_KEEP)\n", dirs[i].path);
        else
            bbt_rmtree_unregistered(dirs[i].path);
        free(dirs[i].path);
        dirs[i].path = NULL;
    }
    pthread_mutex_unlock(&lock);
}
