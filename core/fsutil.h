/* fsutil: the file-system steps more than one part of lstmgen needs: mkdir -p, and a file
 * replaced atomically (a reader, or a process started after a crash, sees the old file or the
 * new one, never a torn one). */
#ifndef CORE_FSUTIL_H
#define CORE_FSUTIL_H

#include <stddef.h>
#include <stdio.h>

/* mkdir -p: creates path and its missing parents (mode 0755). 0, or -1 with errno set. */
int fs_mkdirs(const char *path);

/* A file being written in place of path: a temporary PATH.tmp.XXXXXX in the same directory,
 * mode 0644, renamed over path by fs_atomic_commit. Its writer holds a lock on it (flock) until
 * the rename or fs_atomic_abort, which tells fs_remove_temporaries that the write is alive. */
typedef struct fs_atomic {
    FILE *f;          /* write here */
    const char *path; /* borrowed: the caller's path */
    char *tmp;        /* owned */
} fs_atomic;

/* Creates the temporary file. CORE_EIO (naming path and errno) or CORE_ENOMEM on failure, with
 * nothing left behind. */
int fs_atomic_open(fs_atomic *a, const char *path, char *err, size_t errlen);

/* Flushes and fsyncs the file, renames it over path and fsyncs the directory (so the rename
 * survives a crash too). On failure the temporary file is removed and path is untouched, except
 * when only the final close or the directory sync failed (the new file is then in place; the
 * error says so). Always releases a. */
int fs_atomic_commit(fs_atomic *a, char *err, size_t errlen);

/* Gives up: closes and removes the temporary file; path is untouched. Safe on a zeroed a. */
void fs_atomic_abort(fs_atomic *a);

/* Removes what writes cut short by a crash left in dir: regular files named *.tmp.XXXXXX, as
 * fs_atomic_open names them, that no live writer holds locked and that nobody has written for
 * min_age seconds (0: any age). The age covers the instant between a temporary's creation and its
 * lock, and file systems without locks: give one when another process may write into dir. The
 * number removed, or -1 with errno set when dir cannot be read. */
int fs_remove_temporaries(const char *dir, double min_age);

#endif
