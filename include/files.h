/* files: finds a static file for a decoded request path under the static
 * directory, never outside it (openat2 RESOLVE_BENEATH refuses "..", absolute
 * symlinks and symlinks that leave the directory), and names its media type.
 * Touches the file system only; knows nothing of sockets or HTTP framing. */
#ifndef WSHUB_FILES_H
#define WSHUB_FILES_H

#include <stddef.h>
#include <time.h>

struct file_result {
    int status;               /* 200, 301 (a directory: add '/'), 403, 404, or 503 (out of
                                 descriptors or memory: the file may well exist) */
    int fd;                   /* on 200: open for reading, owned by the caller */
    size_t size;
    time_t mtime;
    const char *content_type;
};

/* Opens the file for path (decoded, starting with '/', no dot segments) under
 * the directory root_fd. "/" and paths ending in '/' mean index.html there.
 * Returns res->status. */
int files_open(int root_fd, const char *path, struct file_result *res);

/* The Content-Type for a file name, by extension (application/octet-stream if unknown). */
const char *files_content_type(const char *name);

#endif
