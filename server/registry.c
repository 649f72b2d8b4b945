/* registry: a list of loaded models keyed by name, each checked against its file's identity
 * (device, inode, size, mtime) on every acquire; a cheap stat keeps reloads automatic. */
#include "registry.h"

#include "checkpoint.h"
#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REGISTRY_MAX 256
#define REGISTRY_MAX_DIRS 8

struct registry {
    char dirs[REGISTRY_MAX_DIRS][4096]; /* dirs[0] is writable */
    int n_dirs;
    pthread_mutex_t lock; /* guards entries and refcounts */
    pthread_mutex_t load; /* one load at a time, so two requests do not load the same file twice */
    loaded_model *live[REGISTRY_MAX]; /* the current version of each loaded model */
    int n;
};

int registry_new(registry **out, const char *dirs)
{
    registry *r = calloc(1, sizeof *r);
    if (!r)
        return CORE_ENOMEM;
    for (const char *p = dirs; *p && r->n_dirs < REGISTRY_MAX_DIRS;) {
        size_t len = strcspn(p, ":");
        if (len > 0 && len < sizeof r->dirs[0]) {
            memcpy(r->dirs[r->n_dirs], p, len);
            r->dirs[r->n_dirs++][len] = '\0';
        }
        p += len + (p[len] == ':');
    }
    if (r->n_dirs == 0)
        snprintf(r->dirs[r->n_dirs++], sizeof r->dirs[0], ".");
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->load, NULL);
    *out = r;
    return 0;
}

static void free_loaded(loaded_model *lm)
{
    model_free(lm->m);
    free(lm);
}

void registry_free(registry *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++) {
        r->live[i]->current = 0;
        if (r->live[i]->refs == 0)
            free_loaded(r->live[i]);
    }
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->load);
    free(r);
}

int registry_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > 64 || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

void registry_write_path(const registry *r, const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s.safetensors", r->dirs[0], name);
}

void registry_path(const registry *r, const char *name, char *buf, size_t n)
{
    for (int i = 0; i < r->n_dirs; i++) {
        snprintf(buf, n, "%s/%s.safetensors", r->dirs[i], name);
        if (access(buf, F_OK) == 0)
            return;
    }
    registry_write_path(r, name, buf, n);
}

const char *registry_dir(const registry *r) { return r->dirs[0]; }

int registry_is_readonly(registry *r, const char *name)
{
    char path[4200];
    registry_write_path(r, name, path, sizeof path);
    if (!registry_name_ok(name) || access(path, F_OK) == 0)
        return 0;
    registry_path(r, name, path, sizeof path);
    return access(path, F_OK) == 0;
}

static int same_file(const loaded_model *lm, const struct stat *st)
{
    return lm->ino == (uint64_t)st->st_ino && lm->dev == (uint64_t)st->st_dev &&
           lm->file_size == (int64_t)st->st_size && lm->mtime.tv_sec == st->st_mtim.tv_sec &&
           lm->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* The live entry for name, or NULL; call with the lock held. */
static int find(registry *r, const char *name)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->live[i]->name, name) == 0)
            return i;
    return -1;
}

/* Retires entry i (the file changed or went away); call with the lock held. */
static void retire(registry *r, int i)
{
    loaded_model *old = r->live[i];
    old->current = 0;
    r->live[i] = r->live[--r->n];
    if (old->refs == 0)
        free_loaded(old);
}

/* Retires the loaded version of name, if any (its file is gone). */
static void forget(registry *r, const char *name)
{
    pthread_mutex_lock(&r->lock);
    int i = find(r, name);
    if (i >= 0)
        retire(r, i);
    pthread_mutex_unlock(&r->lock);
}

int registry_acquire(registry *r, const char *name, loaded_model **out, char *err, size_t errlen)
{
    if (!registry_name_ok(name))
        return core_errf(err, errlen, CORE_EINVAL,
                         "invalid model name '%.80s': use 1 to 64 of A-Z a-z 0-9 . _ -", name);
    char path[4200];
    registry_path(r, name, path, sizeof path);
    pthread_mutex_lock(&r->load);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        forget(r, name);
        pthread_mutex_unlock(&r->load);
        return core_errf(err, errlen, CORE_ENOTFOUND, "model '%s' not found", name);
    }
    pthread_mutex_lock(&r->lock);
    int i = find(r, name);
    if (i >= 0 && same_file(r->live[i], &st)) {
        r->live[i]->refs++;
        *out = r->live[i];
        pthread_mutex_unlock(&r->lock);
        pthread_mutex_unlock(&r->load);
        return 0;
    }
    pthread_mutex_unlock(&r->lock);

    /* Not loaded, or the file changed: load it (without the refcount lock, so other models keep
     * serving). The file is read whole and validated before anything is replaced. */
    loaded_model *lm = calloc(1, sizeof *lm);
    int rc = lm ? checkpoint_load(&lm->m, NULL, NULL, path, err, errlen) : CORE_ENOMEM;
    if (rc) {
        free(lm);
        pthread_mutex_unlock(&r->load);
        return rc;
    }
    snprintf(lm->name, sizeof lm->name, "%s", name);
    lm->file_size = (int64_t)st.st_size;
    lm->mtime = st.st_mtim;
    lm->ino = (uint64_t)st.st_ino;
    lm->dev = (uint64_t)st.st_dev;
    lm->current = 1;
    lm->refs = 1;
    pthread_mutex_lock(&r->lock);
    i = find(r, name);
    if (i >= 0)
        retire(r, i);
    if (r->n == REGISTRY_MAX) {
        pthread_mutex_unlock(&r->lock);
        pthread_mutex_unlock(&r->load);
        free_loaded(lm);
        return core_errf(err, errlen, CORE_ERANGE, "more than %d models loaded", REGISTRY_MAX);
    }
    r->live[r->n++] = lm;
    *out = lm;
    pthread_mutex_unlock(&r->lock);
    pthread_mutex_unlock(&r->load);
    return 0;
}

void registry_release(registry *r, loaded_model *lm)
{
    if (!lm)
        return;
    pthread_mutex_lock(&r->lock);
    int last = --lm->refs == 0 && !lm->current;
    pthread_mutex_unlock(&r->lock);
    if (last)
        free_loaded(lm);
}

void registry_hold(registry *r, loaded_model *lm)
{
    pthread_mutex_lock(&r->lock);
    lm->refs++;
    pthread_mutex_unlock(&r->lock);
}

int registry_is_current(registry *r, const loaded_model *lm)
{
    pthread_mutex_lock(&r->lock);
    int current = lm->current;
    pthread_mutex_unlock(&r->lock);
    return current;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the model names found in dir to list (skipping ones already there). */
static int list_dir(const char *dir, char ***list, int *count, int *cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : CORE_EIO;
    const char *ext = ".safetensors";
    size_t el = strlen(ext);
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= el || strcmp(e->d_name + len - el, ext) != 0)
            continue;
        char name[128];
        if (len - el >= sizeof name)
            continue;
        memcpy(name, e->d_name, len - el);
        name[len - el] = '\0';
        size_t nl = strlen(name);
        if (!registry_name_ok(name) || (nl > 7 && strcmp(name + nl - 7, ".latest") == 0))
            continue;
        int seen = 0;
        for (int i = 0; i < *count && !seen; i++)
            seen = strcmp((*list)[i], name) == 0;
        if (seen)
            continue;
        if (*count == *cap) {
            int bigger = *cap ? 2 * *cap : 16;
            char **more = realloc(*list, (size_t)bigger * sizeof *more);
            if (!more) {
                rc = CORE_ENOMEM;
                break;
            }
            *list = more, *cap = bigger;
        }
        if (!((*list)[*count] = strdup(name))) {
            rc = CORE_ENOMEM;
            break;
        }
        (*count)++;
    }
    closedir(d);
    return rc;
}

int registry_list(registry *r, char ***names, int *n)
{
    char **list = NULL;
    int count = 0, cap = 0, rc = 0;
    for (int i = 0; i < r->n_dirs && !rc; i++)
        rc = list_dir(r->dirs[i], &list, &count, &cap);
    if (rc) {
        for (int i = 0; i < count; i++)
            free(list[i]);
        free(list);
        return rc;
    }
    if (count > 1) /* an empty directory leaves list NULL, which qsort must not get */
        qsort(list, (size_t)count, sizeof *list, cmp_names);
    *names = list;
    *n = count;
    return 0;
}

int registry_delete(registry *r, const char *name, char *err, size_t errlen)
{
    if (!registry_name_ok(name))
        return core_errf(err, errlen, CORE_EINVAL, "invalid model name '%.80s'", name);
    char path[4200];
    registry_write_path(r, name, path, sizeof path);
    pthread_mutex_lock(&r->load);
    int rc = 0;
    if (unlink(path) != 0)
        rc = errno == ENOENT ? core_errf(err, errlen, CORE_ENOTFOUND, "model '%s' not found", name)
                             : core_errf(err, errlen, CORE_EIO, "cannot delete model '%s': %s",
                                         name, strerror(errno));
    forget(r, name);
    pthread_mutex_unlock(&r->load);
    return rc;
}
