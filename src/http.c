/* http: incremental HTTP/1.1 request-head parser (RFC 9112) and helpers for
 * header tokens, paths and query strings. Sans-I/O: no sockets, no allocation;
 * results point into the caller's buffer. */
#include "http.h"

#include <string.h>
#include <strings.h>

static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static long error(struct http_request *req, int status, const char *reason)
{
    req->status = status;
    req->reason = reason;
    return HTTP_ERROR;
}

/* Finds the blank line that ends the head, resuming the search at *scanned.
 * Returns the head length including it, or 0 if not there yet. */
static size_t find_head_end(const char *buf, size_t len, size_t *scanned)
{
    size_t i = *scanned;
    for (; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        /* A line ending at i; the head ends if the previous line was empty. */
        if (i >= 1 && buf[i - 1] == '\n')
            return i + 1;
        if (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')
            return i + 1;
    }
    *scanned = len;
    return 0;
}

/* Returns the end of the line starting at p (the index of its '\n'), and the
 * length of its content without CR in *n. */
static size_t line_end(const char *buf, size_t start, size_t end, size_t *n)
{
    size_t i = start;
    while (i < end && buf[i] != '\n')
        i++;
    size_t stop = i;
    if (stop > start && buf[stop - 1] == '\r')
        stop--;
    *n = stop - start;
    return i;
}

/* The origin-form part of a target: the target itself ("/path?query"), or
 * what follows the authority of an absolute-form one ("http://host/path",
 * which RFC 9112 section 3.2.2 says servers must accept). -1 for anything else. */
static int origin_form(struct http_slice t, struct http_slice *out)
{
    size_t skip = 0;
    if (t.n > 0 && t.p[0] == '/') {
        *out = t;
        return 0;
    }
    if (t.n > 7 && strncasecmp(t.p, "http://", 7) == 0)
        skip = 7;
    else if (t.n > 8 && strncasecmp(t.p, "https://", 8) == 0)
        skip = 8;
    const char *slash = skip ? memchr(t.p + skip, '/', t.n - skip) : NULL;
    if (!slash || slash == t.p + skip || memchr(t.p + skip, '?', (size_t)(slash - t.p) - skip))
        return -1;   /* no authority, or no path */
    out->p = slash;
    out->n = t.n - (size_t)(slash - t.p);
    return 0;
}

static long parse_request_line(const char *p, size_t n, struct http_request *req)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return error(req, 400, "malformed request line");
    req->method.p = p;
    req->method.n = i;
    size_t t = ++i;
    while (i < n && p[i] != ' ') {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c == 0x7F)
            return error(req, 400, "invalid character in request target");
        i++;
    }
    if (i == t || i >= n)
        return error(req, 400, "malformed request line");
    req->target.p = p + t;
    req->target.n = i - t;
    struct http_slice origin;
    if (origin_form(req->target, &origin) < 0)
        return error(req, 400, "request target must be a path or an http(s) URL with a path");
    const char *q = memchr(origin.p, '?', origin.n);
    req->path.p = origin.p;
    req->path.n = q ? (size_t)(q - origin.p) : origin.n;
    req->query.p = q ? q + 1 : origin.p + origin.n;
    req->query.n = q ? origin.n - req->path.n - 1 : 0;
    i++;
    const char *v = p + i;
    size_t vn = n - i;
    if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9')
        return error(req, 400, "malformed HTTP version");
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return error(req, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
    req->version_minor = v[7] - '0';
    return 0;
}

static long parse_header(const char *p, size_t n, struct http_request *req)
{
    if (n > 0 && (p[0] == ' ' || p[0] == '\t'))
        return error(req, 400, "obsolete line folding in header");
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i >= n || p[i] != ':')
        return error(req, 400, i < n && (p[i] == ' ' || p[i] == '\t')
                                   ? "whitespace before colon in header"
                                   : "malformed header line");
    if (i == 0)
        return error(req, 400, "empty header name");
    if (req->nheaders == HTTP_MAX_HEADERS)
        return error(req, 431, "too many header fields");
    struct http_header *h = &req->headers[req->nheaders++];
    h->name.p = p;
    h->name.n = i;
    size_t s = i + 1, e = n;
    while (s < e && (p[s] == ' ' || p[s] == '\t'))
        s++;
    while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t'))
        e--;
    for (size_t k = s; k < e; k++) {
        unsigned char c = (unsigned char)p[k];
        if ((c < 0x20 && c != '\t') || c == 0x7F)
            return error(req, 400, "invalid character in header value");
    }
    h->value.p = p + s;
    h->value.n = e - s;
    return 0;
}

long http_parse_request(const char *buf, size_t len, size_t *scanned, size_t max_head,
                        struct http_request *req)
{
    /* Tolerate empty lines before the request line (RFC 9112 section 2.2). */
    size_t start = 0;
    while (start < len && (buf[start] == '\r' || buf[start] == '\n'))
        start++;
    if (*scanned < start)
        *scanned = start;
    size_t end = find_head_end(buf, len, scanned);
    if (end == 0) {
        if (len > max_head)
            return error(req, 431, "request header section too large");
        return HTTP_INCOMPLETE;
    }
    if (end > max_head)
        return error(req, 431, "request header section too large");

    memset(req, 0, sizeof(*req));
    size_t n;
    size_t eol = line_end(buf, start, end, &n);
    if (memchr(buf + start, '\0', n))
        return error(req, 400, "NUL byte in request line");
    if (parse_request_line(buf + start, n, req) < 0)
        return HTTP_ERROR;
    for (size_t pos = eol + 1; pos < end;) {
        eol = line_end(buf, pos, end, &n);
        if (n == 0)
            break;
        if (parse_header(buf + pos, n, req) < 0)
            return HTTP_ERROR;
        pos = eol + 1;
    }
    return (long)end;
}

int http_slice_eq(struct http_slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

int http_slice_ieq(struct http_slice s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s.p[i]) != lower((unsigned char)lit[i]))
            return 0;
    return 1;
}

const struct http_slice *http_header_get(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (http_slice_ieq(req->headers[i].name, name))
            return &req->headers[i].value;
    return NULL;
}

size_t http_header_count(const struct http_request *req, const char *name)
{
    size_t count = 0;
    for (size_t i = 0; i < req->nheaders; i++)
        count += (size_t)http_slice_ieq(req->headers[i].name, name);
    return count;
}

int http_list_has_token(struct http_slice list, const char *token)
{
    size_t i = 0;
    while (i < list.n) {
        while (i < list.n && (list.p[i] == ' ' || list.p[i] == '\t' || list.p[i] == ','))
            i++;
        size_t s = i;
        while (i < list.n && list.p[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (list.p[e - 1] == ' ' || list.p[e - 1] == '\t'))
            e--;
        struct http_slice item = {list.p + s, e - s};
        if (item.n && http_slice_ieq(item, token))
            return 1;
    }
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s into out; -1 on a bad escape, %00, or overflow. */
static long percent_decode(struct http_slice s, char *out, size_t outsz)
{
    if (outsz == 0)
        return -1;   /* not even room for the terminating NUL */
    size_t o = 0;
    for (size_t i = 0; i < s.n; i++) {
        int c = (unsigned char)s.p[i];
        if (c == '%') {
            if (i + 2 >= s.n)
                return -1;
            int hi = hex_value(s.p[i + 1]), lo = hex_value(s.p[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= outsz)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (long)o;
}

long http_path_decode(struct http_slice path, char *out, size_t outsz)
{
    long n = percent_decode(path, out, outsz);
    if (n < 0 || n == 0 || out[0] != '/')
        return -1;
    size_t o = 0;
    for (long i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c == 0x7F || c == '\\')
            return -1;
        if (c == '/') {
            /* Look at the segment that starts after this slash. */
            long s = i + 1, e = s;
            while (e < n && out[e] != '/')
                e++;
            if ((e - s == 1 && out[s] == '.') || (e - s == 2 && out[s] == '.' && out[s + 1] == '.'))
                return -1;
            if (o > 0 && out[o - 1] == '/')
                continue;   /* collapse "//" */
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (long)o;
}

long http_query_get(struct http_slice query, const char *name, char *out, size_t outsz)
{
    size_t nlen = strlen(name);
    size_t i = 0;
    while (i <= query.n) {
        size_t s = i;
        while (i < query.n && query.p[i] != '&')
            i++;
        struct http_slice pair = {query.p + s, i - s};
        const char *eq = memchr(pair.p, '=', pair.n);
        size_t klen = eq ? (size_t)(eq - pair.p) : pair.n;
        if (klen == nlen && memcmp(pair.p, name, nlen) == 0) {
            struct http_slice v = {eq ? eq + 1 : pair.p + pair.n, eq ? pair.n - klen - 1 : 0};
            return percent_decode(v, out, outsz) < 0 ? -2 : (long)strlen(out);
        }
        i++;
    }
    return -1;
}

int http_keep_alive(const struct http_request *req)
{
    int close = 0, keep = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!http_slice_ieq(req->headers[i].name, "Connection"))
            continue;
        close |= http_list_has_token(req->headers[i].value, "close");
        keep |= http_list_has_token(req->headers[i].value, "keep-alive");
    }
    return req->version_minor >= 1 ? !close : keep && !close;
}

int http_content_length(const struct http_request *req, uint64_t *n)
{
    int seen = 0;
    *n = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!http_slice_ieq(req->headers[i].name, "Content-Length"))
            continue;
        struct http_slice v = req->headers[i].value;
        uint64_t value = 0;
        if (v.n == 0 || v.n > 18)
            return -1;
        for (size_t k = 0; k < v.n; k++) {
            if (v.p[k] < '0' || v.p[k] > '9')
                return -1;
            value = value * 10 + (uint64_t)(v.p[k] - '0');
        }
        if (seen && value != *n)
            return -1;
        seen = 1;
        *n = value;
    }
    return 0;
}

int http_body_length(const struct http_request *req, uint64_t max, uint64_t *n, const char **reason)
{
    *n = 0;
    if (http_header_get(req, "Transfer-Encoding")) {
        *reason = "send the body with Content-Length: Transfer-Encoding (chunked) is not accepted";
        return 411;
    }
    if (http_content_length(req, n) < 0) {
        *reason = "invalid Content-Length";
        return 400;
    }
    if (*n > max) {
        *reason = "request body too large";
        return 413;
    }
    return 0;
}

const char *http_status_text(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
