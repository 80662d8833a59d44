/* log: leveled one-line log records with a UTC timestamp, to stderr or a
 * file. Owns the current level and log file (the only globals besides what
 * main wires); writes each line with one write(2), so lines never interleave. */
#include "log.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level current = LOG_INFO;
static int log_fd = 2;
static char log_path[PATH_MAX];
static char tag[24];   /* "w0 " in worker 0 of several, else empty */
static const char *const names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
    current = level;
}

void log_set_tag(const char *t)
{
    snprintf(tag, sizeof(tag), "%s%s", t, t[0] ? " " : "");
}

int log_enabled(enum log_level level)
{
    return level <= current;
}

int log_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (log_fd != 2)
        close(log_fd);
    log_fd = fd;
    snprintf(log_path, sizeof(log_path), "%s", path);
    return 0;
}

int log_reopen(void)
{
    if (!log_path[0])
        return 0;
    char path[PATH_MAX];
    memcpy(path, log_path, sizeof(path));
    return log_open(path);
}

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char line[1024];
    int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03dZ %-5s %s", (int)(tv.tv_usec / 1000),
                  names[level], tag);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    n = m < 0 ? n : (n + m >= (int)sizeof(line) - 1 ? (int)sizeof(line) - 2 : n + m);
    line[n++] = '\n';
    if (write(log_fd, line, (size_t)n) < 0)
        return;   /* nowhere left to report it */
}
