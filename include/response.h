/* response: HTTP/1.1 response heads, built into the caller's buffer, and the
 * cached Date value. Pure: no I/O, no allocation, no globals, no locale or
 * time-zone lookups; the caller passes the time and owns every buffer. */
#ifndef WSHUB_RESPONSE_H
#define WSHUB_RESPONSE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The last Date formatted and its second; zero-initialised is valid (empty). */
struct response_date {
    int64_t sec;
    char text[32];
};

/* The IMF-fixdate for now (e.g. "Sun, 06 Dec 2026 20:38:31 GMT"), formatted
 * into d only when the second changes; times outside years 0000-9999 are
 * clamped to them. The text lives in d. */
const char *response_date(struct response_date *d, time_t now);

/* Writes a response head and a terminating NUL into out (cap bytes): for 101,
 * "HTTP/1.1 101 Switching Protocols\r\n" + headers + "\r\n" (no Date, Server
 * or Content-Length); otherwise "HTTP/1.1 <status> <reason>\r\nServer: wshub\r\n
 * Date: <date>\r\n" + headers + "Content-Length: <n>\r\nConnection: keep-alive|
 * close\r\n\r\n". headers is zero or more lines each ending in CRLF (may be
 * NULL); date (from response_date) is needed unless status is 101. Returns
 * the length without the NUL, or 0 when that does not fit in cap (out then
 * holds a truncated head). */
size_t response_head(char *out, size_t cap, int status, const char *headers, size_t content_length, int keep_alive,
                     const char *date);

#endif
