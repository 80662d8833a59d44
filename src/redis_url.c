/* redis_url: parses Redis URLs into a struct redis_url and reads the
 * password file. Pure apart from redis_password_file_read (one small file,
 * at start). It must never allocate, connect or log, and never put a
 * password into an error message. */
#include "redis_url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DEFAULT_PORT 6379
#define PASSWORD_FILE_MAX 4096

/* A piece of the text being parsed. */
struct span {
    const char *p;
    size_t n;
};

/* The parse in progress: where the result and the reason go. */
struct parse {
    struct redis_url *u;
    char *err;
    size_t errsz;
};

__attribute__((format(printf, 3, 4)))
static int fail_to(char *err, size_t errsz, const char *fmt, ...)
{
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return -1;
}

#define fail(ps, ...) fail_to((ps)->err, (ps)->errsz, __VA_ARGS__)

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s into out as a C string; `what` names it in the reason. */
static int decode(struct parse *ps, struct span s, char *out, size_t outsz, const char *what)
{
    size_t o = 0;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (c == '%') {
            int hi = i + 2 < s.n ? hex_value(s.p[i + 1]) : -1;
            int lo = i + 2 < s.n ? hex_value(s.p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return fail(ps, "bad percent-encoding in the %s (%% must be followed by two hex digits)", what);
            c = (char)(hi * 16 + lo);
            i += 2;
            if (c == '\0')
                return fail(ps, "the %s contains %%00", what);
        }
        if (o + 1 >= outsz)
            return fail(ps, "the %s is longer than %zu bytes", what, outsz - 1);
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* A decimal number of at most max, digits only. Returns 0 or -1. */
static int parse_number(struct span s, long max, long *out)
{
    long v = 0;
    if (s.n == 0)
        return -1;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        v = v * 10 + (s.p[i] - '0');
        if (v > max)
            return -1;
    }
    *out = v;
    return 0;
}

/* "[USER:]PASSWORD", the part before '@'. */
static int parse_userinfo(struct parse *ps, struct span ui)
{
    const char *colon = memchr(ui.p, ':', ui.n);
    struct span pw = ui;
    if (colon) {
        struct span user = {ui.p, (size_t)(colon - ui.p)};
        if (decode(ps, user, ps->u->user, sizeof ps->u->user, "user name") < 0)
            return -1;
        pw = (struct span){colon + 1, ui.n - user.n - 1};
    }
    if (decode(ps, pw, ps->u->password, sizeof ps->u->password, "password") < 0)
        return -1;
    if (!ps->u->password[0])
        return fail(ps, "empty password before '@'");
    return 0;
}

static int set_ipv6(struct parse *ps, struct span host)
{
    char text[64];
    unsigned char addr[16];
    if (host.n == 0 || host.n >= sizeof text)
        return fail(ps, "bad IPv6 address in brackets");
    memcpy(text, host.p, host.n);
    text[host.n] = '\0';
    if (inet_pton(AF_INET6, text, addr) != 1)
        return fail(ps, "bad IPv6 address in brackets");
    memcpy(ps->u->host, text, host.n + 1);
    return 0;
}

static int host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

static int set_hostname(struct parse *ps, struct span host)
{
    if (host.n == 0)
        return fail(ps, "missing host");
    if (host.n >= sizeof ps->u->host)
        return fail(ps, "the host name is longer than %zu bytes", sizeof ps->u->host - 1);
    for (size_t i = 0; i < host.n; i++)
        if (!host_char_ok(host.p[i]))
            return fail(ps, "bad character '%c' in the host name", host.p[i]);
    memcpy(ps->u->host, host.p, host.n);
    ps->u->host[host.n] = '\0';
    return 0;
}

static int parse_port(struct parse *ps, struct span port)
{
    long v;
    if (port.n == 0)
        return fail(ps, "empty port after ':'");
    if (parse_number(port, 65535, &v) < 0 || v == 0)
        return fail(ps, "the port must be a number from 1 to 65535");
    ps->u->port = (int)v;
    return 0;
}

/* "[IPV6]" or "[IPV6]:PORT". */
static int parse_bracketed(struct parse *ps, struct span hp)
{
    const char *close = memchr(hp.p, ']', hp.n);
    if (!close)
        return fail(ps, "unclosed '[' in the host");
    struct span host = {hp.p + 1, (size_t)(close - hp.p - 1)};
    struct span after = {close + 1, hp.n - host.n - 2};
    if (set_ipv6(ps, host) < 0)
        return -1;
    if (after.n == 0)
        return 0;
    if (after.p[0] != ':')
        return fail(ps, "unexpected characters after ']'");
    return parse_port(ps, (struct span){after.p + 1, after.n - 1});
}

/* "HOST", "HOST:PORT", "[IPV6]" or "[IPV6]:PORT". */
static int parse_hostport(struct parse *ps, struct span hp)
{
    if (hp.n == 0)
        return fail(ps, "missing host");
    if (hp.p[0] == '[')
        return parse_bracketed(ps, hp);
    const char *colon = memchr(hp.p, ':', hp.n);
    struct span host = {hp.p, colon ? (size_t)(colon - hp.p) : hp.n};
    struct span port = colon ? (struct span){colon + 1, hp.n - host.n - 1} : (struct span){hp.p + hp.n, 0};
    if (colon && memchr(port.p, ':', port.n))
        return fail(ps, "an IPv6 address must be in brackets, as in redis://[::1]:6379");
    if (set_hostname(ps, host) < 0)
        return -1;
    return colon ? parse_port(ps, port) : 0;
}

static int parse_db(struct parse *ps, struct span db)
{
    long v;
    if (parse_number(db, INT_MAX, &v) < 0)
        return fail(ps, "the database must be a number from 0 to %d", INT_MAX);
    ps->u->db = (int)v;
    return 0;
}

/* What follows the authority of a redis:// URL: "", "/", "/DB". */
static int parse_tcp_tail(struct parse *ps, const char *s)
{
    if (*s == '/') {
        s++;
        size_t n = strcspn(s, "?#");
        if (n && parse_db(ps, (struct span){s, n}) < 0)
            return -1;
        s += n;
    }
    if (*s == '?')
        return fail(ps, "redis:// URLs take no query parameters");
    if (*s == '#')
        return fail(ps, "redis:// URLs take no fragment");
    return 0;
}

/* Splits "USERINFO@REST" off the front of *auth, when there is an '@'. */
static int take_userinfo(struct parse *ps, struct span *auth)
{
    const char *at = NULL;
    for (size_t i = auth->n; i > 0; i--)
        if (auth->p[i - 1] == '@') {
            at = auth->p + i - 1;
            break;
        }
    if (!at)
        return 0;
    struct span ui = {auth->p, (size_t)(at - auth->p)};
    *auth = (struct span){at + 1, auth->n - ui.n - 1};
    return parse_userinfo(ps, ui);
}

static int parse_tcp(struct parse *ps, const char *s)
{
    struct span auth = {s, strcspn(s, "/?#")};
    if (take_userinfo(ps, &auth) < 0 || parse_hostport(ps, auth) < 0)
        return -1;
    return parse_tcp_tail(ps, s + strcspn(s, "/?#"));
}

/* "db=N", '&'-separated; nothing else is accepted. */
static int parse_unix_query(struct parse *ps, const char *q)
{
    for (;;) {
        size_t n = strcspn(q, "&#");
        if (n < 3 || strncmp(q, "db=", 3) != 0)
            return fail(ps, "unknown parameter in the unix:// URL (only db=N is accepted)");
        if (parse_db(ps, (struct span){q + 3, n - 3}) < 0)
            return -1;
        q += n;
        if (*q == '#')
            return fail(ps, "unix:// URLs take no fragment");
        if (!*q)
            return 0;
        q++;
    }
}

static int parse_unix(struct parse *ps, const char *s)
{
    const char *at = memchr(s, '@', strcspn(s, "/"));
    if (at) {
        if (parse_userinfo(ps, (struct span){s, (size_t)(at - s)}) < 0)
            return -1;
        s = at + 1;
    }
    if (*s != '/')
        return fail(ps, "unix:// needs an absolute path, as in unix:///run/redis/redis.sock");
    size_t n = strcspn(s, "?#");
    if (decode(ps, (struct span){s, n}, ps->u->path, sizeof ps->u->path, "socket path") < 0)
        return -1;
    ps->u->unix_socket = 1;
    if (s[n] == '#')
        return fail(ps, "unix:// URLs take no fragment");
    return s[n] == '?' ? parse_unix_query(ps, s + n + 1) : 0;
}

static int has_prefix(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Spaces and control bytes are never part of a URL (encode them). */
static int has_bad_bytes(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s == 0x7f)
            return 1;
    return 0;
}

int redis_url_parse(const char *text, struct redis_url *u, char *err, size_t errsz)
{
    struct parse ps = {u, err, errsz};
    memset(u, 0, sizeof(*u));
    u->port = DEFAULT_PORT;
    if (!*text)
        return fail(&ps, "empty Redis URL");
    if (has_bad_bytes(text))
        return fail(&ps, "the URL contains a space or a control character (percent-encode it)");
    if (has_prefix(text, "redis://"))
        return parse_tcp(&ps, text + strlen("redis://"));
    if (has_prefix(text, "unix://"))
        return parse_unix(&ps, text + strlen("unix://"));
    if (has_prefix(text, "rediss://"))
        return fail(&ps, "rediss:// (TLS) is not supported: use redis:// or unix://");
    if (strstr(text, "://"))
        return fail(&ps, "unknown scheme: expected redis:// or unix://");
    return fail(&ps, "not a Redis URL: expected redis://HOST[:PORT][/DB] or unix:///PATH");
}

void redis_url_describe(const struct redis_url *u, char *out, size_t outsz)
{
    char db[24] = "";
    if (!outsz)
        return;
    if (u->unix_socket) {
        if (u->db)
            snprintf(db, sizeof db, "?db=%d", u->db);
        snprintf(out, outsz, "unix://%s%s", u->path, db);
        return;
    }
    if (u->db)
        snprintf(db, sizeof db, "/%d", u->db);
    if (strchr(u->host, ':'))
        snprintf(out, outsz, "redis://[%s]:%d%s", u->host, u->port, db);
    else
        snprintf(out, outsz, "redis://%s:%d%s", u->host, u->port, db);
}

/* Reads up to cap bytes of the file. Returns the count, or -1 (errno set). */
static ssize_t read_small_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return n < 0 ? -1 : (ssize_t)got;
        }
        got += (size_t)n;
    }
    close(fd);
    return (ssize_t)got;
}

int redis_password_file_read(const char *path, char *out, size_t outsz, char *err, size_t errsz)
{
    char buf[PASSWORD_FILE_MAX + 1];
    ssize_t r = read_small_file(path, buf, sizeof buf);
    if (r < 0)
        return fail_to(err, errsz, "cannot read the password file %s: %s", path, strerror(errno));
    size_t n = (size_t)r;
    if (n == sizeof buf)
        return fail_to(err, errsz, "the password file %s is longer than %d bytes", path, PASSWORD_FILE_MAX);
    if (n && buf[n - 1] == '\n') {
        n--;
        if (n && buf[n - 1] == '\r')
            n--;
    }
    if (n == 0)
        return fail_to(err, errsz, "the password file %s is empty", path);
    if (memchr(buf, '\0', n))
        return fail_to(err, errsz, "the password file %s contains a NUL byte", path);
    if (memchr(buf, '\n', n) || memchr(buf, '\r', n))
        return fail_to(err, errsz, "the password file %s has more than one line", path);
    if (n >= outsz)
        return fail_to(err, errsz, "the password in %s is longer than %zu bytes", path, outsz ? outsz - 1 : 0);
    memcpy(out, buf, n);
    out[n] = '\0';
    return 0;
}
