/* daemon: double-fork detaching with a readiness pipe, pid files, and the
 * systemd notify datagram (sent by the supervisor, never by a worker). Only
 * main and the supervisor call these; they may exit the starting process by
 * design (daemon_detach), nothing else exits. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int ready_fd = -1;   /* the pipe to the waiting starter, in the daemon */
static int detached;        /* stdio goes to /dev/null once ready */

static void notify_systemd(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@'))
        return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n >= sizeof(sa.sun_path))
        return;
    memcpy(sa.sun_path, path, n);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0';   /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
    close(fd);
}

int daemon_detach(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        /* The starter: wait for the daemon's "ready" byte. */
        close(p[1]);
        char c;
        ssize_t n;
        do
            n = read(p[0], &c, 1);
        while (n < 0 && errno == EINTR);
        _exit(n == 1 ? 0 : 1);
    }
    close(p[0]);
    if (setsid() < 0)
        return -1;
    signal(SIGHUP, SIG_IGN);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    if (chdir("/") < 0)
        return -1;
    umask(022);
    signal(SIGHUP, SIG_DFL);
    ready_fd = p[1];
    detached = 1;
    return 0;
}

void daemon_child(void)
{
    if (ready_fd >= 0)
        close(ready_fd);
    ready_fd = -1;
    unsetenv("NOTIFY_SOCKET");
}

void daemon_ready(void)
{
    if (detached) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            if (null > 2)
                close(null);
        }
    }
    if (ready_fd >= 0) {
        if (write(ready_fd, "R", 1) < 0) {
            /* the starter is gone; nothing to tell */
        }
        close(ready_fd);
        ready_fd = -1;
    }
    notify_systemd("READY=1");
}

void daemon_stopping(void)
{
    notify_systemd("STOPPING=1");
}

pid_t pidfile_running(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long pid = 0;
    int ok = fscanf(f, "%ld", &pid) == 1;
    fclose(f);
    if (!ok || pid <= 0 || pid == (long)getpid())
        return 0;
    if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
        return (pid_t)pid;
    return 0;
}

int pidfile_write(const char *path)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%ld\n", (long)getpid()) > 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

void pidfile_remove(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    long pid = 0;
    int ok = fscanf(f, "%ld", &pid) == 1;
    fclose(f);
    if (ok && pid == (long)getpid())
        unlink(path);
}
