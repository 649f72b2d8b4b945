/* registry: the models directories. Model NAME is the file NAME.safetensors in the first
 * directory that has it; the first directory is the writable one (trained models are published
 * there, deletions happen there), the others are read-only (the bundled models). Names match
 * [A-Za-z0-9._-]{1,64} and never start with a dot, so no name can leave the directory. Models load
 * on first use, are shared read-only by any number of requests (a reference each), and are loaded
 * again when their file changes: a request that holds the old weights finishes on them. */
#ifndef SERVER_REGISTRY_H
#define SERVER_REGISTRY_H

#include "model.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct registry registry;

typedef struct loaded_model {
    char name[72];
    model *m;            /* read-only */
    int64_t file_size;
    struct timespec mtime;
    uint64_t ino, dev;
    int refs;            /* registry lock */
    int current;         /* still what the file holds */
} loaded_model;

/* dirs: one directory, or several separated by ':' (the first writable). */
int registry_new(registry **out, const char *dirs);
void registry_free(registry *r);

/* 1 if name is a valid model name. */
int registry_name_ok(const char *name);

/* A reference to model name, loaded or reloaded as needed. CORE_EINVAL for a bad name,
 * CORE_ENOTFOUND when there is no such model, CORE_EFORMAT when the file
 * is not a valid checkpoint (message in err). Release with registry_release. Thread-safe. */
int registry_acquire(registry *r, const char *name, loaded_model **out, char *err, size_t errlen);
void registry_release(registry *r, loaded_model *lm);
/* One more reference to lm, which the caller already holds one of. */
void registry_hold(registry *r, loaded_model *lm);
/* 1 while lm is what its file holds (not replaced, deleted or forgotten since it loaded). */
int registry_is_current(registry *r, const loaded_model *lm);

/* The names of the models in the directory (*.safetensors with valid names, not *.latest.*),
 * sorted; caller frees each and the array. */
int registry_list(registry *r, char ***names, int *n);

/* Removes NAME.safetensors from the writable directory: CORE_ENOTFOUND if it is not there,
 * CORE_EIO if it cannot be removed. In-flight users keep their reference. */
int registry_delete(registry *r, const char *name, char *err, size_t errlen);

/* 1 if name exists only in a read-only directory (it cannot be deleted). */
int registry_is_readonly(registry *r, const char *name);

/* Path of model name's file (the first directory that has it; the writable one if none), in buf. */
void registry_path(const registry *r, const char *name, char *buf, size_t n);
/* Where a model named name is written: the writable directory. */
void registry_write_path(const registry *r, const char *name, char *buf, size_t n);
/* The writable directory. */
const char *registry_dir(const registry *r);

#endif
