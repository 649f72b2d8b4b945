/* fsutil: mkdir -p and atomic file replacement. */
#include "fsutil.h"

#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_SUFFIX ".tmp."
#define TMP_TEMPLATE TMP_SUFFIX "XXXXXX"

int fs_mkdirs(const char *path)
{
    char buf[4200];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int fs_atomic_open(fs_atomic *a, const char *path, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof TMP_TEMPLATE);
    if (!tmp)
        return core_errf(err, errlen, CORE_ENOMEM, "out of memory writing %s", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, TMP_TEMPLATE, sizeof TMP_TEMPLATE);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int rc = core_errf(err, errlen, CORE_EIO, "cannot create a temporary file for %s: %s",
                           path, strerror(errno));
        free(tmp);
        return rc;
    }
    /* Locked until the rename or the unlink, so a sweep of the directory leaves it alone (on a
     * file system without locks only the sweep's age rule protects it). */
    (void)flock(fd, LOCK_EX | LOCK_NB);
    /* mkstemp makes the file 0600; what we write is meant to be shared like any other data. */
    FILE *f = NULL;
    if (fchmod(fd, 0644) != 0 || !(f = fdopen(fd, "wb"))) {
        int rc = core_errf(err, errlen, CORE_EIO, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    a->f = f;
    a->path = path;
    a->tmp = tmp;
    return 0;
}

void fs_atomic_abort(fs_atomic *a)
{
    if (a->tmp) /* before the close: a sweep never sees it unlocked */
        unlink(a->tmp);
    if (a->f)
        fclose(a->f);
    free(a->tmp);
    memset(a, 0, sizeof *a);
}

/* fsync of the directory makes the rename itself durable. */
static int sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    if (rc && errno == EINVAL)
        rc = 0; /* the file system cannot sync directories; nothing more we can do */
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int fs_atomic_commit(fs_atomic *a, char *err, size_t errlen)
{
    int rc = 0;
    if (fflush(a->f) != 0 || fsync(fileno(a->f)) != 0)
        rc = core_errf(err, errlen, CORE_EIO, "cannot write %s: %s", a->path, strerror(errno));
    /* renamed before the close, which releases the lock (see fs_atomic_open) */
    if (!rc && rename(a->tmp, a->path) != 0)
        rc = core_errf(err, errlen, CORE_EIO, "cannot rename %s to %s: %s", a->tmp, a->path,
                       strerror(errno));
    if (rc) {
        fs_atomic_abort(a);
        return rc;
    }
    int closed = fclose(a->f);
    a->f = NULL;
    free(a->tmp);
    a->tmp = NULL;
    if (closed != 0) /* after the fsync, so the data is in place; still, say so */
        return core_errf(err, errlen, CORE_EIO, "wrote %s but could not close it: %s", a->path,
                         strerror(errno));
    if (sync_dir(a->path) != 0) /* the new file is in place, but its name may not survive a crash */
        return core_errf(err, errlen, CORE_EIO, "wrote %s but could not sync its directory: %s",
                         a->path, strerror(errno));
    return 0;
}

/* name is something, TMP_SUFFIX and six letters or digits (what mkstemp puts for XXXXXX). */
static int is_temporary(const char *name)
{
    size_t n = strlen(name), k = strlen(TMP_SUFFIX);
    if (n <= k + 6 || memcmp(name + n - 6 - k, TMP_SUFFIX, k) != 0)
        return 0;
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    return strspn(name + n - 6, alnum) == 6;
}

/* Removes path if it is a regular file untouched for min_age seconds that nobody holds locked
 * (where the file system has no locks, the age alone decides). The lock is taken first and kept
 * to the unlink, so a writer cannot take it up in between. 1 when removed. */
static int remove_if_abandoned(const char *path, double min_age)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 0;
    struct stat st;
    int removed = 0;
    int held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    if (!held && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        difftime(time(NULL), st.st_mtime) >= min_age)
        removed = unlink(path) == 0;
    close(fd);
    return removed;
}

int fs_remove_temporaries(const char *dir, double min_age)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int removed = 0;
    char path[4400];
    for (struct dirent *e; (e = readdir(d));)
        if (is_temporary(e->d_name) &&
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            removed += remove_if_abandoned(path, min_age);
    closedir(d);
    return removed;
}
