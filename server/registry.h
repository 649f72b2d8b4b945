/* registry: the models directory. Model NAME is the file NAME.safetensors; names match
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

int registry_new(registry **out, const char *dir);
void registry_free(registry *r);

/* 1 if name is a valid model name. */
int registry_name_ok(const char *name);

/* A reference to model name, loaded or reloaded as needed. CORE_EINVAL for a bad name,
 * CORE_ENOTFOUND when there is no such model, CORE_EFORMAT when the file
 * is not a valid checkpoint (message in err). Release with registry_release. Thread-safe. */
int registry_acquire(registry *r, const char *name, loaded_model **out, char *err, size_t errlen);
void registry_release(registry *r, loaded_model *lm);

/* The names of the models in the directory (*.safetensors with valid names, not *.latest.*),
 * sorted; caller frees each and the array. */
int registry_list(registry *r, char ***names, int *n);

/* Removes NAME.safetensors: CORE_ENOTFOUND if it does not exist, CORE_EIO if it cannot be
 * removed. In-flight users keep their reference. */
int registry_delete(registry *r, const char *name, char *err, size_t errlen);

/* Path of model name's file, in buf. */
void registry_path(const registry *r, const char *name, char *buf, size_t n);
const char *registry_dir(const registry *r);

#endif
