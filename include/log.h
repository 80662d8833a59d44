/* log: one line per event, "time level message", to stderr. The level is set
 * once at start; nothing else is global. */
#ifndef WSHUB_LOG_H
#define WSHUB_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Sets the most verbose level that is written. */
void log_set_level(enum log_level level);

/* True when messages at this level are written (guards costly formatting). */
int log_enabled(enum log_level level);

/* Writes one line at this level, printf-style. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses "error", "warn", "info" or "debug"; -1 when it is none of them. */
int log_level_parse(const char *name);

#endif
