/* files: static file lookup confined to the static directory, and media
 * types. Opens with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so no
 * path or symlink can reach outside it; O_NONBLOCK so a FIFO cannot stall us. */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const struct {
    const char *ext;
    const char *type;
} media_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"ico", "image/x-icon"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"wasm", "application/wasm"},
    {"woff2", "font/woff2"},
    {"map", "application/json"},
};

const char *files_content_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash ? slash : name, '.');
    if (dot)
        for (size_t i = 0; i < sizeof(media_types) / sizeof(media_types[0]); i++)
            if (strcasecmp(dot + 1, media_types[i].ext) == 0)
                return media_types[i].type;
    return "application/octet-stream";
}

/* The status for a failed open or fstat. */
static int status_for(int err)
{
    if (err == EACCES || err == EPERM)
        return 403;
    if (err == EMFILE || err == ENFILE || err == ENOMEM)
        return 503;
    return 404;
}

static int open_beneath(int root_fd, const char *rel)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));
}

int files_open(int root_fd, const char *path, struct file_result *res)
{
    memset(res, 0, sizeof(*res));
    res->fd = -1;
    char rel[4096];
    size_t n = strlen(path);
    const char *p = path[0] == '/' ? path + 1 : path;
    int dir_index = n == 0 || path[n - 1] == '/';
    if (snprintf(rel, sizeof(rel), "%s%s", p, dir_index ? "index.html" : "") >= (int)sizeof(rel))
        return res->status = 404;
    int fd = open_beneath(root_fd, rel);
    if (fd < 0)
        return res->status = status_for(errno);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int err = errno;
        close(fd);
        return res->status = status_for(err);
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return res->status = dir_index ? 404 : 301;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return res->status = 404;
    }
    res->fd = fd;
    res->size = (size_t)st.st_size;
    res->mtime = st.st_mtime;
    res->content_type = files_content_type(rel);
    return res->status = 200;
}
