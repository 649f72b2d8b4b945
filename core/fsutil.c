/* fsutil: mkdir -p and atomic file replacement. */
#include "fsutil.h"

#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    if (a->f)
        fclose(a->f);
    if (a->tmp)
        unlink(a->tmp);
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
    int closed = fclose(a->f);
    a->f = NULL;
    if (!rc && closed != 0)
        rc = core_errf(err, errlen, CORE_EIO, "cannot write %s: %s", a->path, strerror(errno));
    if (!rc && rename(a->tmp, a->path) != 0)
        rc = core_errf(err, errlen, CORE_EIO, "cannot rename %s to %s: %s", a->tmp, a->path,
                       strerror(errno));
    if (rc) {
        fs_atomic_abort(a);
        return rc;
    }
    free(a->tmp);
    a->tmp = NULL;
    if (sync_dir(a->path) != 0) /* the new file is in place, but its name may not survive a crash */
        return core_errf(err, errlen, CORE_EIO, "wrote %s but could not sync its directory: %s",
                         a->path, strerror(errno));
    return 0;
}

/* name ends with TMP_SUFFIX and six characters (mkstemp's). */
static int is_temporary(const char *name)
{
    size_t n = strlen(name), k = strlen(TMP_SUFFIX);
    return n > k + 6 && memcmp(name + n - 6 - k, TMP_SUFFIX, k) == 0;
}

int fs_remove_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int removed = 0;
    char path[4400];
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_temporary(e->d_name))
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path &&
            unlink(path) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}
