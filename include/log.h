/* log: one line per event, "time level message key=value...", to stderr or
 * a file that SIGHUP reopens (for logrotate). The level, the file and a tag
 * naming the worker process are the only global state, set once at start. */
#ifndef WSHUB_LOG_H
#define WSHUB_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Sets the most verbose level that is written. */
void log_set_level(enum log_level level);

/* Starts every line after the level with this tag (a worker's "w0"); "" for none. */
void log_set_tag(const char *tag);

/* True when messages at this level are written (guards costly formatting). */
int log_enabled(enum log_level level);

/* Sends log lines to path (appending, created 0644) from now on. Returns 0,
 * or -1 with errno set when it cannot be opened (the old target is kept). */
int log_open(const char *path);

/* Reopens the log file by its path, so a file moved away by logrotate is
 * replaced by a new one. A no-op when logging to stderr. Returns 0 or -1. */
int log_reopen(void);

/* Writes one line at this level, printf-style. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses "error", "warn", "info" or "debug"; -1 when it is none of them. */
int log_level_parse(const char *name);

#endif
