/*
 * tests/support/files.c — temp dirs, whole-file I/O and build-tree paths.
 *
 * Everything a test creates lives in a "bbt-<tag>-XXXXXX" directory under the
 * temp root, and bbt_rmtree() refuses to delete anything else, so a bug in a
 * test can never wipe a path outside its own scratch space.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    TAG_MAX        = 32,                 /* characters of the tag kept in a dir name */
    READ_CHUNK     = 64 * 1024,
    READ_LIMIT     = 256 * 1024 * 1024,  /* no test reads more than this */
    NFTW_OPEN_FDS  = 16,
};

static const char TEMP_PREFIX[] = "bbt-";

/* $TMPDIR when it is an absolute path, else /tmp. */
static const char *temp_root(void)
{
    const char *t = getenv("TMPDIR");
    return (t && t[0] == '/') ? t : "/tmp";
}

char *bbt_tempdir(const char *tag)
{
    char clean[TAG_MAX + 1];
    size_t n = 0;
    /* The tag ends up in a path: keep only characters that cannot escape it. */
    for (const char *c = tag ? tag : "tmp"; *c && n < TAG_MAX; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '-' || *c == '_';
        clean[n++] = ok ? *c : '_';
    }
    clean[n] = '\0';

    char tmpl[PATH_MAX];
    int len = snprintf(tmpl, sizeof tmpl, "%s/%s%s-XXXXXX", temp_root(), TEMP_PREFIX,
                       n ? clean : "tmp");
    if (len < 0 || (size_t)len >= sizeof tmpl)
        return NULL;
    if (!mkdtemp(tmpl))
        return NULL;
    char *out = strdup(tmpl);
    if (!out) {
        rmdir(tmpl);
        return NULL;
    }
    bbt_registry_add_dir(out);   /* removed at exit if the test forgets or fails */
    return out;
}

/* True when `path` resolves to a bbt-* directory directly or deeper under the
 * temp root (or /tmp): the only places bbt_rmtree() may touch. */
static bool is_removable(const char *path)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return false;
    const char *roots[] = { temp_root(), "/tmp" };
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        char root[PATH_MAX];
        if (!realpath(roots[i], root))
            continue;
        size_t rl = strlen(root);
        if (strncmp(real, root, rl) != 0 || real[rl] != '/')
            continue;
        /* The first component below the root must be one of ours. */
        if (strncmp(real + rl + 1, TEMP_PREFIX, sizeof TEMP_PREFIX - 1) == 0)
            return true;
    }
    return false;
}

static int remove_entry(const char *fpath, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    if (remove(fpath) != 0 && errno != ENOENT)
        fprintf(stderr, "bbtest: cannot remove %s: %s\n", fpath, strerror(errno));
    return 0;   /* keep going: remove as much as we can */
}

void bbt_rmtree(const char *path)
{
    if (!path)
        return;
    bbt_registry_remove_dir(path);
    bbt_rmtree_unregistered(path);
}

void bbt_rmtree_unregistered(const char *path)
{
    if (!path)
        return;
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (!is_removable(path)) {
        fprintf(stderr, "bbtest: refusing to remove %s (not a bbt- temp dir)\n", path);
        return;
    }
    /* Depth first, never following symlinks nor crossing mount points. */
    nftw(path, remove_entry, NFTW_OPEN_FDS, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

char *bbt_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + 1 + lb + 1);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

char *bbt_write_file(const char *dir, const char *name, const char *text)
{
    if (!dir || !name || !text)
        return NULL;
    char *path = bbt_join(dir, name);
    if (!path)
        return NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    size_t left = strlen(text);
    const char *p = text;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            goto fail;
        }
        p += w;
        left -= (size_t)w;
    }
    if (close(fd) != 0)
        goto fail;
    return path;
fail:
    free(path);
    return NULL;
}

char *bbt_read_file(const char *path, size_t *len)
{
    if (len)
        *len = 0;
    if (!path)
        return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 0, used = 0;
    char *buf = NULL;
    for (;;) {
        if (cap - used < READ_CHUNK + 1) {
            if (cap >= READ_LIMIT)
                goto fail;
            size_t ncap = cap ? cap * 2 : READ_CHUNK * 2;
            char *nb = realloc(buf, ncap);
            if (!nb)
                goto fail;
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + used, cap - used - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        used += (size_t)r;
    }
    close(fd);
    buf[used] = '\0';
    if (len)
        *len = used;
    return buf;
fail:
    close(fd);
    free(buf);
    return NULL;
}

char *bbt_build_path(const char *rel)
{
    if (!rel)
        return NULL;
    const char *root = getenv("BB_BUILDDIR");
#ifdef BB_ABS_BUILDDIR
    if (!root || !*root)
        root = BB_ABS_BUILDDIR;
#endif
    char cwd[PATH_MAX];
    if (!root || !*root) {
        /* Built outside automake: assume we run from the build tree. */
        if (!getcwd(cwd, sizeof cwd))
            return NULL;
        root = cwd;
    }
    if (rel[0] == '/')
        return strdup(rel);
    return bbt_join(root, rel);
}
