/* fsutil: file-system helpers the server needs in more than one place. */
#ifndef SERVER_FSUTIL_H
#define SERVER_FSUTIL_H

/* mkdir -p: creates path and its missing parents (mode 0755). 0, or -1 with errno set. */
int fs_mkdirs(const char *path);

#endif
