/* daemon: running as a service: detaching from the terminal, the pid file,
 * and telling systemd we are ready (sd_notify protocol, no libsystemd). */
#ifndef WSHUB_DAEMON_H
#define WSHUB_DAEMON_H

#include <sys/types.h>

/* Detaches: fork, setsid, fork again, chdir /. The starting process does not
 * return: it waits until the daemon calls daemon_ready (exit 0) or dies first
 * (exit 1). stdin/stdout/stderr stay open until daemon_ready, so an error
 * while starting still reaches the terminal. Returns 0 in the daemon, -1 if
 * detaching failed (errno set). */
int daemon_detach(void);

/* Tells whoever started us that we are serving: the waiting parent of
 * daemon_detach (and then points stdio at /dev/null), and systemd when
 * NOTIFY_SOCKET is set. */
void daemon_ready(void);

/* In a worker process just forked by the supervisor: it will never tell the
 * starter or systemd anything (that is the supervisor's), but daemon_ready
 * still points its stdio at /dev/null when detached. */
void daemon_child(void);

/* Tells systemd we are stopping (when NOTIFY_SOCKET is set). */
void daemon_stopping(void);

/* Returns the pid named by the pid file if that process is alive, else 0
 * (no file, unreadable, or stale). */
pid_t pidfile_running(const char *path);

/* Writes our pid to path (atomically, through a temporary file). Returns 0 or -1. */
int pidfile_write(const char *path);

/* Removes path if it still names us. */
void pidfile_remove(const char *path);

#endif
