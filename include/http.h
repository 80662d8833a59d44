/* http: incremental HTTP/1.1 request-head parser, sans-I/O, plus helpers for
 * header tokens and paths. It waits for the whole head (up to the blank line),
 * so any split of the bytes gives the same result; the parsed request points
 * into the caller's buffer. No allocation, no I/O. */
#ifndef WSHUB_HTTP_H
#define WSHUB_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 64

/* Results of http_parse_request other than a head length. */
enum http_result {
    HTTP_INCOMPLETE = 0,   /* no complete head yet: add bytes and call again */
    HTTP_ERROR = -1,       /* see req->status and req->reason */
};

struct http_slice {
    const char *p;
    size_t n;
};

struct http_header {
    struct http_slice name;
    struct http_slice value;   /* optional whitespace trimmed */
};

struct http_request {
    struct http_slice method;
    struct http_slice target;  /* as sent: path and query, or an absolute http(s) URL */
    struct http_slice path;    /* the target's path, up to '?' (still percent-encoded) */
    struct http_slice query;   /* after '?', empty if none */
    int version_minor;         /* 0 or 1 for HTTP/1.0 and HTTP/1.1 */
    size_t nheaders;
    struct http_header headers[HTTP_MAX_HEADERS];
    struct http_slice body;    /* the body, once the session layer has read it (the parser leaves it empty) */
    int status;                /* on HTTP_ERROR: 400, 431, 505, ... */
    const char *reason;        /* on HTTP_ERROR: one line saying what was wrong */
};

/* Parses the request head at the start of buf[0..len). *scanned holds how far a
 * previous call already searched for the end of the head (start it at 0 for each
 * new request), so feeding a byte at a time costs O(n) overall. Returns the head
 * length (> 0) when the head is complete and valid, HTTP_INCOMPLETE when more
 * bytes are needed, or HTTP_ERROR. A head longer than max_head is an error 431. */
long http_parse_request(const char *buf, size_t len, size_t *scanned, size_t max_head,
                        struct http_request *req);

/* The value of the first header with this name (case-insensitive), or NULL. */
const struct http_slice *http_header_get(const struct http_request *req, const char *name);

/* Number of headers with this name (case-insensitive). */
size_t http_header_count(const struct http_request *req, const char *name);

/* True when the comma-separated list contains token (case-insensitive),
 * e.g. "keep-alive, Upgrade" contains "upgrade". */
int http_list_has_token(struct http_slice list, const char *token);

/* True when s equals the NUL-terminated string lit exactly. */
int http_slice_eq(struct http_slice s, const char *lit);

/* True when s equals the NUL-terminated string lit, ignoring ASCII case. */
int http_slice_ieq(struct http_slice s, const char *lit);

/* Percent-decodes path into out (size outsz) and normalises it: rejects %00,
 * control bytes, backslashes, and any "." or ".." segment (no dot-segment
 * removal, so nothing can climb out); collapses repeated slashes. Returns the
 * decoded length, or -1 when the path is invalid or does not fit. */
long http_path_decode(struct http_slice path, char *out, size_t outsz);

/* Finds query parameter `name` in a query string and percent-decodes its value
 * into out (NUL-terminated). Returns the value's length, -1 if absent, or -2
 * if badly encoded or too long for out. */
long http_query_get(struct http_slice query, const char *name, char *out, size_t outsz);

/* Whether the client keeps the connection open after this request: HTTP/1.1
 * unless "Connection: close", HTTP/1.0 only with "Connection: keep-alive". */
int http_keep_alive(const struct http_request *req);

/* The request's Content-Length in *n (0 when absent). Returns 0, or -1 when a
 * value is not 1 to 18 digits or two Content-Length headers differ. */
int http_content_length(const struct http_request *req, uint64_t *n);

/* Checks how a request's body is framed: only Content-Length, up to max
 * bytes, into *n (0 when there is none). Returns 0, or 400 (invalid
 * Content-Length), 411 (Transfer-Encoding, chunked or other) or 413 (over
 * max), with *reason. */
int http_body_length(const struct http_request *req, uint64_t max, uint64_t *n, const char **reason);

/* The standard reason phrase for a status code ("Not Found"), or "Unknown". */
const char *http_status_text(int status);

#endif
