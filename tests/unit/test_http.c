/* test_http: unit tests for src/http.c, the HTTP/1.1 request-head parser and
 * its helpers. Every request is parsed whole, in two parts at every split
 * point and one byte at a time (the same `scanned` carried between calls),
 * each part in a buffer of exactly the bytes given so ASan sees over-reads;
 * all must agree. Covers the head length (bytes after it are not consumed),
 * the error statuses (400, 431, 505), LF-only endings, value trimming, the
 * path/query split, and http_header_get/count, http_list_has_token,
 * http_slice_ieq, http_path_decode, http_query_get, http_status_text. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

/* ck_assert records a checkpoint (a syscall) even when it passes: loops use
 * EXPECT, which only calls into Check on failure. */
#define EXPECT(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

#define MAX_HEAD 8192

/* A parse result: the return value, the request and the buffer it points into. */
struct parsed {
    long ret;
    struct http_request req;
    char *buf;
    size_t n;
};

/* Calls http_parse_request on a fresh copy of s[0..len) of exactly len bytes. */
static long parse_copy(struct parsed *p, const char *s, size_t len, size_t *scanned, size_t max_head)
{
    free(p->buf);
    p->buf = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(p->buf);
    memcpy(p->buf, s, len);
    p->n = len;
    p->ret = http_parse_request(p->buf, len, scanned, max_head, &p->req);
    return p->ret;
}

static void parsed_free(struct parsed *p)
{
    free(p->buf);
    p->buf = NULL;
}

static void parse_whole(struct parsed *p, const char *s, size_t n, size_t max_head)
{
    size_t scanned = 0;

    memset(p, 0, sizeof *p);
    parse_copy(p, s, n, &scanned, max_head);
}

/* A description of a result that does not depend on where the buffer is. */
static void describe(const struct parsed *p, char *out, size_t outsz)
{
    const struct http_request *r = &p->req;
    size_t o = 0;

#define OFF(sl) ((sl).p ? (long)((sl).p - p->buf) : -1L), (sl).n
    if (p->ret == HTTP_ERROR) {
        snprintf(out, outsz, "ERROR status=%d", r->status);
        return;
    }
    if (p->ret == HTTP_INCOMPLETE) {
        snprintf(out, outsz, "INCOMPLETE");
        return;
    }
    o += (size_t)snprintf(out + o, outsz - o, "ret=%ld M=%ld+%zu T=%ld+%zu P=%ld+%zu Q=%ld+%zu v=%d n=%zu", p->ret,
                          OFF(r->method), OFF(r->target), OFF(r->path), OFF(r->query), r->version_minor, r->nheaders);
    for (size_t i = 0; i < r->nheaders && o + 64 < outsz; i++)
        o += (size_t)snprintf(out + o, outsz - o, " [%ld+%zu:%ld+%zu]", OFF(r->headers[i].name),
                              OFF(r->headers[i].value));
#undef OFF
}

/* Parses s whole, in two parts at every split point, and a byte at a time;
 * all results must be the same. Returns the whole result in *whole. */
static void parse_all_ways(struct parsed *whole, const char *s, size_t n, size_t max_head)
{
    char dw[4096], d[4096];
    struct parsed p;

    parse_whole(whole, s, n, max_head);
    describe(whole, dw, sizeof dw);
    if (whole->ret == HTTP_ERROR)
        EXPECT(whole->req.reason != NULL && whole->req.reason[0], "error %d without a reason", whole->req.status);

    memset(&p, 0, sizeof p);
    for (size_t k = 0; k <= n; k++) {
        size_t scanned = 0;
        if (parse_copy(&p, s, k, &scanned, max_head) == HTTP_INCOMPLETE)
            parse_copy(&p, s, n, &scanned, max_head);
        describe(&p, d, sizeof d);
        EXPECT(strcmp(d, dw) == 0, "split at %zu of %zu: got {%s}, whole gave {%s}", k, n, d, dw);
    }
    {
        size_t scanned = 0;
        for (size_t len = 0; len <= n; len++) {
            if (parse_copy(&p, s, len, &scanned, max_head) != HTTP_INCOMPLETE)
                break;
            EXPECT(scanned <= len, "scanned %zu beyond len %zu", scanned, len);
        }
        describe(&p, d, sizeof d);
        EXPECT(strcmp(d, dw) == 0, "byte at a time: got {%s}, whole gave {%s}", d, dw);
    }
    parsed_free(&p);
}

static int slice_is(struct http_slice s, const char *lit)
{
    return s.n == strlen(lit) && (s.n == 0 || memcmp(s.p, lit, s.n) == 0);
}

#define ASSERT_SLICE(sl, lit) \
    ck_assert_msg(slice_is((sl), (lit)), "%s is \"%.*s\", expected \"%s\"", #sl, (int)(sl).n, (sl).p ? (sl).p : "", (lit))

static const char upgrade_req[] =
    "GET /chat?room=lobby&nick=bob HTTP/1.1\r\n"
    "Host: example.com:8080\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

START_TEST(test_full_get)
{
    struct parsed p;

    parse_all_ways(&p, upgrade_req, sizeof upgrade_req - 1, MAX_HEAD);
    ck_assert_int_eq(p.ret, (long)(sizeof upgrade_req - 1));
    ASSERT_SLICE(p.req.method, "GET");
    ASSERT_SLICE(p.req.target, "/chat?room=lobby&nick=bob");
    ASSERT_SLICE(p.req.path, "/chat");
    ASSERT_SLICE(p.req.query, "room=lobby&nick=bob");
    ck_assert_int_eq(p.req.version_minor, 1);
    ck_assert_uint_eq(p.req.nheaders, 6);
    ASSERT_SLICE(p.req.headers[0].name, "Host");
    ASSERT_SLICE(p.req.headers[0].value, "example.com:8080");
    ASSERT_SLICE(p.req.headers[3].name, "Sec-WebSocket-Key");
    ASSERT_SLICE(p.req.headers[3].value, "dGhlIHNhbXBsZSBub25jZQ==");
    ASSERT_SLICE(p.req.headers[4].value, "http://example.com");
    ASSERT_SLICE(p.req.headers[5].name, "Sec-WebSocket-Version");
    ASSERT_SLICE(p.req.headers[5].value, "13");
    /* the slices point into the caller's buffer */
    ck_assert_ptr_eq(p.req.method.p, p.buf);
    ck_assert(p.req.headers[5].value.p > p.buf && p.req.headers[5].value.p < p.buf + p.n);
    parsed_free(&p);
}
END_TEST

/* Bytes after the blank line are not part of the head; a pipelined request
 * parses from where the first one ended. */
START_TEST(test_head_length_exact)
{
    static const char first[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char second[] = "GET /b?q HTTP/1.1\r\nHost: y\r\n\r\n";
    const char *tails[] = {"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", second, "\r\n", "G"};

    for (size_t t = 0; t < 4; t++) {
        char in[256];
        size_t n = (size_t)snprintf(in, sizeof in, "%s%s", first, tails[t]);
        struct parsed p, q;

        parse_all_ways(&p, in, n, MAX_HEAD);
        ck_assert_int_eq(p.ret, (long)(sizeof first - 1));
        ASSERT_SLICE(p.req.path, "/a");
        ck_assert_uint_eq(p.req.nheaders, 1);
        if (t == 1) {
            parse_all_ways(&q, in + p.ret, n - (size_t)p.ret, MAX_HEAD);
            ck_assert_int_eq(q.ret, (long)(sizeof second - 1));
            ASSERT_SLICE(q.req.path, "/b");
            ASSERT_SLICE(q.req.query, "q");
            ASSERT_SLICE(q.req.headers[0].value, "y");
            parsed_free(&q);
        }
        parsed_free(&p);
    }
}
END_TEST

/* Incomplete heads stay incomplete, however they are split. */
START_TEST(test_incomplete)
{
    static const char *ins[] = {"", "G", "GET / HTTP/1.1", "GET / HTTP/1.1\r\n", "GET / HTTP/1.1\r\nHost: a\r\n",
                                "GET / HTTP/1.1\r\nHost: a\r\n\r", "GET / HTTP/1.1\nHost: a\n"};

    for (size_t i = 0; i < sizeof ins / sizeof ins[0]; i++) {
        struct parsed p;
        parse_all_ways(&p, ins[i], strlen(ins[i]), MAX_HEAD);
        EXPECT(p.ret == HTTP_INCOMPLETE, "\"%s\": ret %ld, expected INCOMPLETE", ins[i], p.ret);
        parsed_free(&p);
    }
}
END_TEST

START_TEST(test_lf_only)
{
    static const char in[] = "GET /x?y=1 HTTP/1.0\nHost: a\nX-Other:  b \n\n";
    struct parsed p;

    parse_all_ways(&p, in, sizeof in - 1, MAX_HEAD);
    ck_assert_int_eq(p.ret, (long)(sizeof in - 1));
    ck_assert_int_eq(p.req.version_minor, 0);
    ck_assert_uint_eq(p.req.nheaders, 2);
    ASSERT_SLICE(p.req.headers[0].value, "a");
    ASSERT_SLICE(p.req.headers[1].name, "X-Other");
    ASSERT_SLICE(p.req.headers[1].value, "b");
    ASSERT_SLICE(p.req.path, "/x");
    ASSERT_SLICE(p.req.query, "y=1");
    parsed_free(&p);
}
END_TEST

START_TEST(test_value_trimming)
{
    static const char in[] = "GET / HTTP/1.1\r\n"
                             "X-A: \t  v a l \t \r\n"
                             "X-E:\r\n"
                             "X-S:    \r\n"
                             "X-T:\tv\r\n"
                             "X-I: a\tb  c\r\n"
                             "X-H: caf\xc3\xa9\r\n"
                             "\r\n";
    struct parsed p;

    parse_all_ways(&p, in, sizeof in - 1, MAX_HEAD);
    ck_assert_int_eq(p.ret, (long)(sizeof in - 1));
    ck_assert_uint_eq(p.req.nheaders, 6);
    ASSERT_SLICE(p.req.headers[0].value, "v a l");
    ASSERT_SLICE(p.req.headers[1].value, "");
    ASSERT_SLICE(p.req.headers[2].value, "");
    ASSERT_SLICE(p.req.headers[3].value, "v");
    ASSERT_SLICE(p.req.headers[4].value, "a\tb  c");
    ASSERT_SLICE(p.req.headers[5].value, "caf\xc3\xa9");   /* obs-text is allowed */
    parsed_free(&p);
}
END_TEST

START_TEST(test_path_query_split)
{
    static const struct { const char *target, *path, *query; } cases[] = {
        {"/", "/", ""},
        {"/?", "/", ""},
        {"/a/b.html", "/a/b.html", ""},
        {"/a?b=c?d", "/a", "b=c?d"},
        {"/p%20q?x=%41", "/p%20q", "x=%41"},
        {"/?nick=bob&room=x", "/", "nick=bob&room=x"},
        /* absolute-form, which servers must accept (RFC 9112 section 3.2.2) */
        {"http://example.com/a?b=c", "/a", "b=c"},
        {"HTTPS://example.com:8443/ws/x?nick=n", "/ws/x", "nick=n"},
        {"http://h/", "/", ""},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char in[256];
        size_t n = (size_t)snprintf(in, sizeof in, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", cases[i].target);
        struct parsed p;

        parse_all_ways(&p, in, n, MAX_HEAD);
        ck_assert_int_eq(p.ret, (long)n);
        ASSERT_SLICE(p.req.target, cases[i].target);
        ASSERT_SLICE(p.req.path, cases[i].path);
        ASSERT_SLICE(p.req.query, cases[i].query);
        parsed_free(&p);
    }
}
END_TEST

/* Empty lines before the request line are ignored (RFC 9112 section 2.2). */
START_TEST(test_leading_empty_lines)
{
    static const char in[] = "\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    struct parsed p;

    parse_all_ways(&p, in, sizeof in - 1, MAX_HEAD);
    ck_assert_int_eq(p.ret, (long)(sizeof in - 1));
    ASSERT_SLICE(p.req.method, "GET");
    ASSERT_SLICE(p.req.path, "/x");
    parsed_free(&p);
}
END_TEST

/* ---- errors ---- */

struct bad {
    const char *s;
    size_t n;
    int status;
};

#define BAD(lit, st) { lit, sizeof(lit) - 1, st }

static const struct bad bads[] = {
    /* absolute-form without an authority or a path, or another scheme */
    BAD("GET http://h HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET http://h?x=/y HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET ftp://h/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    /* malformed request line */
    BAD("GET /\r\nHost: a\r\n\r\n", 400),
    BAD("GET\r\nHost: a\r\n\r\n", 400),
    BAD("GET \r\nHost: a\r\n\r\n", 400),
    BAD("/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
    BAD(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", 400),
    BAD("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET / HTTP/1\r\nHost: a\r\n\r\n", 400),
    BAD("GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400),
    BAD("GET / HTTPS/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET chat HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    /* control bytes in the target */
    BAD("GET /a\x01z HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET /a\0z HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET /a\x7fz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET /a\tz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    /* header lines */
    BAD("GET / HTTP/1.1\r\nHost a\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\n: a\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nX Y: a\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nX\"Y: a\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nX-A: a\x01" "b\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nX-A: a\x7f" "b\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nX-A: \x1b[31m\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nX-A: a\0\r\n\r\n", 400),
    /* obs-fold */
    BAD("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\n continued: x\r\n\r\n", 400),
    /* versions */
    BAD("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    BAD("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
    BAD("GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
    BAD("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
};

START_TEST(test_bad_requests)
{
    const struct bad *b = &bads[_i];
    struct parsed p;

    parse_all_ways(&p, b->s, b->n, MAX_HEAD);
    EXPECT(p.ret == HTTP_ERROR && p.req.status == b->status, "bad request %d (\"%.*s\"): ret %ld status %d, expected %d",
           _i, (int)strcspn(b->s, "\r\n"), b->s, p.ret, p.ret == HTTP_ERROR ? p.req.status : 0, b->status);
    parsed_free(&p);
}
END_TEST

/* A head of exactly max_head bytes is fine; one byte more is 431. */
START_TEST(test_head_too_large)
{
    char *in = malloc(MAX_HEAD + 64);
    static const char start[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    struct parsed p;

    for (size_t total = MAX_HEAD - 1; total <= MAX_HEAD + 2; total++) {
        size_t pad = total - (sizeof start - 1) - 4;
        memcpy(in, start, sizeof start - 1);
        memset(in + sizeof start - 1, 'p', pad);
        memcpy(in + sizeof start - 1 + pad, "\r\n\r\n", 4);
        parse_all_ways(&p, in, total, MAX_HEAD);
        if (total <= MAX_HEAD)
            EXPECT(p.ret == (long)total, "head of %zu bytes: ret %ld status %d", total, p.ret, p.req.status);
        else
            EXPECT(p.ret == HTTP_ERROR && p.req.status == 431, "head of %zu bytes: ret %ld status %d", total, p.ret,
                   p.req.status);
        parsed_free(&p);
    }
    /* a small max_head */
    parse_all_ways(&p, upgrade_req, sizeof upgrade_req - 1, 64);
    ck_assert_int_eq(p.ret, HTTP_ERROR);
    ck_assert_int_eq(p.req.status, 431);
    parsed_free(&p);
    free(in);
}
END_TEST

/* The blank line never comes: once more than max_head bytes are there, 431. */
START_TEST(test_head_unterminated_too_large)
{
    size_t n = MAX_HEAD + 100;
    char *in = malloc(n);
    struct parsed p;
    size_t scanned = 0;

    memcpy(in, "GET / HTTP/1.1\r\nX-Pad: ", 23);
    memset(in + 23, 'p', n - 23);
    parse_all_ways(&p, in, n, MAX_HEAD);
    ck_assert_int_eq(p.ret, HTTP_ERROR);
    ck_assert_int_eq(p.req.status, 431);
    parsed_free(&p);
    /* exactly max_head + 1 bytes without an end cannot become a valid head */
    memset(&p, 0, sizeof p);
    ck_assert_int_eq(parse_copy(&p, in, MAX_HEAD + 1, &scanned, MAX_HEAD), HTTP_ERROR);
    ck_assert_int_eq(p.req.status, 431);
    parsed_free(&p);
    /* many short header lines, no end */
    for (size_t i = 16; i + 4 < n; i += 4)
        memcpy(in + i, "a:\r\n", 4);
    parse_all_ways(&p, in, n, MAX_HEAD);
    ck_assert_int_eq(p.ret, HTTP_ERROR);
    ck_assert_int_eq(p.req.status, 431);
    parsed_free(&p);
    free(in);
}
END_TEST

/* HTTP_MAX_HEADERS headers are fine; one more is 431. */
START_TEST(test_too_many_headers)
{
    char in[4096];
    struct parsed p;

    for (int extra = 0; extra <= 1; extra++) {
        size_t n = (size_t)snprintf(in, sizeof in, "GET / HTTP/1.1\r\n");
        for (int i = 0; i < HTTP_MAX_HEADERS + extra; i++)
            n += (size_t)snprintf(in + n, sizeof in - n, "H%d: v%d\r\n", i, i);
        n += (size_t)snprintf(in + n, sizeof in - n, "\r\n");
        parse_all_ways(&p, in, n, MAX_HEAD);
        if (!extra) {
            ck_assert_int_eq(p.ret, (long)n);
            ck_assert_uint_eq(p.req.nheaders, HTTP_MAX_HEADERS);
            ASSERT_SLICE(p.req.headers[HTTP_MAX_HEADERS - 1].name, "H63");
            ASSERT_SLICE(p.req.headers[HTTP_MAX_HEADERS - 1].value, "v63");
        } else {
            ck_assert_int_eq(p.ret, HTTP_ERROR);
            ck_assert_int_eq(p.req.status, 431);
        }
        parsed_free(&p);
    }
}
END_TEST

/* ---- helpers ---- */

/* The body's framing: Content-Length only, equal when repeated, within max. */
static int framing_of(const char *headers, uint64_t max, uint64_t *n)
{
    char in[512];
    struct parsed p;
    const char *why = NULL;
    snprintf(in, sizeof in, "POST /api/x HTTP/1.1\r\nHost: a\r\n%s\r\n", headers);
    parse_whole(&p, in, strlen(in), MAX_HEAD);
    ck_assert_int_gt(p.ret, 0);
    ck_assert_ptr_null(p.req.body.p);
    int st = http_body_length(&p.req, max, n, &why);
    ck_assert(st == 0 || (why && why[0]));
    parsed_free(&p);
    return st;
}

START_TEST(test_body_length)
{
    uint64_t n = 99;
    ck_assert_int_eq(framing_of("", 100, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(framing_of("Content-Length: 100\r\n", 100, &n), 0);
    ck_assert_uint_eq(n, 100);
    ck_assert_int_eq(framing_of("content-length: 7\r\nContent-Length: 7\r\n", 100, &n), 0);
    ck_assert_uint_eq(n, 7);
    ck_assert_int_eq(framing_of("Content-Length: 101\r\n", 100, &n), 413);
    ck_assert_int_eq(framing_of("Content-Length: 7\r\nContent-Length: 8\r\n", 100, &n), 400);
    ck_assert_int_eq(framing_of("Content-Length: -1\r\n", 100, &n), 400);
    ck_assert_int_eq(framing_of("Content-Length: 1,1\r\n", 100, &n), 400);
    ck_assert_int_eq(framing_of("Content-Length: 1234567890123456789\r\n", 100, &n), 400);
    ck_assert_int_eq(framing_of("Transfer-Encoding: chunked\r\n", 100, &n), 411);
    ck_assert_int_eq(framing_of("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 100, &n), 411);
}
END_TEST

START_TEST(test_keep_alive)
{
    static const struct { const char *in; int keep; } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, Close\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct parsed p;
        parse_whole(&p, cases[i].in, strlen(cases[i].in), MAX_HEAD);
        ck_assert_int_gt(p.ret, 0);
        ck_assert_int_eq(http_keep_alive(&p.req), cases[i].keep);
        parsed_free(&p);
    }
}
END_TEST

START_TEST(test_header_get_count)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Dup: one\r\nx-dup: two\r\nX-DUP: three\r\n\r\n";
    struct parsed p;
    const struct http_slice *v;

    parse_whole(&p, in, sizeof in - 1, MAX_HEAD);
    ck_assert_int_eq(p.ret, (long)(sizeof in - 1));
    v = http_header_get(&p.req, "host");
    ck_assert_ptr_nonnull(v);
    ASSERT_SLICE(*v, "a");
    v = http_header_get(&p.req, "HOST");
    ck_assert_ptr_nonnull(v);
    ASSERT_SLICE(*v, "a");
    v = http_header_get(&p.req, "x-dup");
    ck_assert_ptr_nonnull(v);
    ASSERT_SLICE(*v, "one");
    ck_assert_uint_eq(http_header_count(&p.req, "X-Dup"), 3);
    ck_assert_uint_eq(http_header_count(&p.req, "host"), 1);
    ck_assert_uint_eq(http_header_count(&p.req, "Missing"), 0);
    ck_assert_ptr_null(http_header_get(&p.req, "Missing"));
    ck_assert_ptr_null(http_header_get(&p.req, "Hos"));
    ck_assert_ptr_null(http_header_get(&p.req, "Hostx"));
    parsed_free(&p);
}
END_TEST

static int has_token(const char *list, const char *tok)
{
    struct http_slice s = {list, strlen(list)};
    return http_list_has_token(s, tok);
}

START_TEST(test_list_has_token)
{
    ck_assert(has_token("keep-alive, Upgrade", "upgrade"));
    ck_assert(has_token("Upgrade", "upgrade"));
    ck_assert(has_token("upgrade", "Upgrade"));
    ck_assert(has_token("UPGRADE", "upgrade"));
    ck_assert(has_token("\tupgrade\t", "upgrade"));
    ck_assert(has_token("  keep-alive ,\t Upgrade \t, close", "upgrade"));
    ck_assert(has_token(",,upgrade,,", "upgrade"));
    ck_assert(has_token("a,b,c,upgrade", "upgrade"));
    ck_assert(has_token("websocket", "websocket"));
    ck_assert(has_token("WebSocket", "websocket"));
    ck_assert(!has_token("upgradex", "upgrade"));
    ck_assert(!has_token("xupgrade", "upgrade"));
    ck_assert(!has_token("upgrade-x, keep-alive", "upgrade"));
    ck_assert(!has_token("up grade", "upgrade"));
    ck_assert(!has_token("keep-alive", "upgrade"));
    ck_assert(!has_token("", "upgrade"));
    ck_assert(!has_token(", ,", "upgrade"));
    ck_assert(!has_token("upgrad", "upgrade"));
    /* a list that is not NUL-terminated: only n bytes count */
    {
        struct http_slice s = {"keep-alive, upgradeXYZ", 19};
        ck_assert(http_list_has_token(s, "upgrade"));
        s.n = 18;
        ck_assert(!http_list_has_token(s, "upgrade"));
    }
}
END_TEST

START_TEST(test_slice_ieq)
{
    struct http_slice s = {"WebSocketXX", 9};

    ck_assert(http_slice_ieq(s, "websocket"));
    ck_assert(http_slice_ieq(s, "WEBSOCKET"));
    ck_assert(!http_slice_ieq(s, "websocke"));
    ck_assert(!http_slice_ieq(s, "websocketx"));
    ck_assert(!http_slice_ieq(s, "websockex"));
    s.n = 0;
    ck_assert(http_slice_ieq(s, ""));
    ck_assert(!http_slice_ieq(s, "a"));
    /* only ASCII letters fold: '@' (0x40) is not '`' (0x60) */
    s.p = "@";
    s.n = 1;
    ck_assert(!http_slice_ieq(s, "`"));
}
END_TEST

static long path_decode(const char *in, char *out, size_t outsz)
{
    struct http_slice s = {in, strlen(in)};
    return http_path_decode(s, out, outsz);
}

START_TEST(test_path_decode_ok)
{
    static const struct { const char *in, *out; } ok[] = {
        {"/", "/"},
        {"/index.html", "/index.html"},
        {"/a%20b", "/a b"},
        {"/a//b", "/a/b"},
        {"//a///b//", "/a/b/"},
        {"/%41%62c", "/Abc"},
        {"/caf%C3%A9", "/caf\xc3\xa9"},
        {"/a..b/c", "/a..b/c"},
        {"/...", "/..."},
        {"/.well-known/x", "/.well-known/x"},
        {"/a/b.", "/a/b."},
        {"/a%2Fb", "/a/b"},
    };
    char out[64];

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        long n;
        memset(out, 0x55, sizeof out);
        n = path_decode(ok[i].in, out, sizeof out);
        EXPECT(n == (long)strlen(ok[i].out) && memcmp(out, ok[i].out, (size_t)n) == 0,
               "\"%s\": got %ld \"%.*s\", expected \"%s\"", ok[i].in, n, n > 0 ? (int)n : 0, out, ok[i].out);
    }
}
END_TEST

START_TEST(test_path_decode_rejects)
{
    static const char *bad[] = {
        "/../etc", "/..", "/a/..", "/a/../b", "/%2e%2e/x", "/%2E%2e/x", "/%2e%2E", "/.%2e/x", "/a/./b", "/.", "/./",
        "/a/.", "/%2e/x", "/a%2f..%2fb", "/%00", "/a%00b", "/a\\b", "/a%5cb", "/a%5Cb", "/%zz", "/%4", "/%",
        "/a%g0", "/%0", "/a%01b", "/a%7fb", "/a%0d%0ab", "", "a/b",
        /* a repeated slash in front of a dot segment */
        "//../etc/passwd", "/a//../b", "/a//./b", "///..", "/%2f../x", "/a/%2f%2e%2e/b",
    };
    char out[64];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long n = path_decode(bad[i], out, sizeof out);
        EXPECT(n == -1, "\"%s\": got %ld \"%.*s\", expected -1", bad[i], n, n > 0 ? (int)n : 0, out);
    }
}
END_TEST

/* Output buffers too small are refused, never overrun. */
START_TEST(test_path_decode_small_output)
{
    char *out;

    out = malloc(8);
    ck_assert_int_eq(path_decode("/a/b/c/d/e/f/g/h", out, 8), -1);
    ck_assert_int_eq(path_decode("/%41%41%41%41%41%41%41%41%41", out, 8), -1);
    free(out);
    out = malloc(2);
    ck_assert_int_eq(path_decode("/abc", out, 2), -1);
    free(out);
    /* decoded length + 1 (room for a NUL) is enough */
    out = malloc(5);
    ck_assert_int_eq(path_decode("/abc", out, 5), 4);
    ck_assert_mem_eq(out, "/abc", 4);
    ck_assert_int_eq(path_decode("/%61%62%63", out, 5), 4);
    ck_assert_mem_eq(out, "/abc", 4);
    free(out);
}
END_TEST

/* Found by tests/fuzz/fuzz_http: a zero-size output buffer got its NUL written
 * one byte past the end when the decoded text was empty. Under ASan the
 * malloc(1) + offset 1 trick below makes any write a reported error. */
START_TEST(test_decode_zero_size_output)
{
    char *block = malloc(1);
    char *out = block + 1;   /* a 0-byte buffer at the end of an allocation */
    struct http_slice empty = {"", 0};
    ck_assert_int_eq(http_path_decode(empty, out, 0), -1);
    struct http_slice q = {"nick=&P", 7};
    ck_assert_int_eq(http_query_get(q, "nick", out, 0), -2);
    struct http_slice q2 = {"nick=bob", 8};
    ck_assert_int_eq(http_query_get(q2, "nick", out, 0), -2);
    free(block);
}
END_TEST

static long query_get(const char *q, const char *name, char *out, size_t outsz)
{
    struct http_slice s = {q, strlen(q)};
    return http_query_get(s, name, out, outsz);
}

/* -1 when absent, -2 when badly encoded or too long (http.h). As implemented
 * (src/http.c), values are percent-decoded only: '+' stays '+' (no form
 * decoding), names match exactly (case-sensitive), a name without '=' has an
 * empty value, and the first of repeated names wins. */
START_TEST(test_query_get)
{
    char out[32];

    ck_assert_int_eq(query_get("nick=bob&room=x", "nick", out, sizeof out), 3);
    ck_assert_str_eq(out, "bob");
    ck_assert_int_eq(query_get("nick=bob&room=x", "room", out, sizeof out), 1);
    ck_assert_str_eq(out, "x");
    ck_assert_int_eq(query_get("nick=bob&room=x", "missing", out, sizeof out), -1);
    ck_assert_int_eq(query_get("nick=bob&room=x", "nic", out, sizeof out), -1);
    ck_assert_int_eq(query_get("nick=bob&room=x", "nickx", out, sizeof out), -1);
    ck_assert_int_eq(query_get("xnick=1&nick=2", "nick", out, sizeof out), 1);
    ck_assert_str_eq(out, "2");
    ck_assert_int_eq(query_get("nick=a%20b", "nick", out, sizeof out), 3);
    ck_assert_str_eq(out, "a b");
    ck_assert_int_eq(query_get("nick=caf%C3%A9", "nick", out, sizeof out), 5);
    ck_assert_str_eq(out, "caf\xc3\xa9");
    ck_assert_int_eq(query_get("nick=a+b", "nick", out, sizeof out), 3);
    ck_assert_str_eq(out, "a+b");
    ck_assert_int_eq(query_get("nick=%26%3D", "nick", out, sizeof out), 2);
    ck_assert_str_eq(out, "&=");
    ck_assert_int_eq(query_get("a=1&nick=&b=2", "nick", out, sizeof out), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(query_get("a=1&nick&b=2", "nick", out, sizeof out), 0);
    ck_assert_int_eq(query_get("nick=first&nick=second", "nick", out, sizeof out), 5);
    ck_assert_str_eq(out, "first");
    ck_assert_int_eq(query_get("", "nick", out, sizeof out), -1);
    ck_assert_int_eq(query_get("a=x=y", "a", out, sizeof out), 3);
    ck_assert_str_eq(out, "x=y");
    /* bad escapes and NUL */
    ck_assert_int_eq(query_get("nick=%zz", "nick", out, sizeof out), -2);
    ck_assert_int_eq(query_get("nick=%4", "nick", out, sizeof out), -2);
    ck_assert_int_eq(query_get("nick=ab%", "nick", out, sizeof out), -2);
    ck_assert_int_eq(query_get("nick=a%00b", "nick", out, sizeof out), -2);
    ck_assert_int_eq(query_get("room=%zz&nick=ok", "nick", out, sizeof out), 2);   /* others are not decoded */
    /* too long for out (the value and its NUL must fit) */
    ck_assert_int_eq(query_get("nick=abcdefgh", "nick", out, 8), -2);
    ck_assert_int_eq(query_get("nick=%41%41%41%41%41%41%41%41", "nick", out, 8), -2);
    ck_assert_int_eq(query_get("nick=abcdefg", "nick", out, 8), 7);
    ck_assert_str_eq(out, "abcdefg");
    /* a query slice that is not NUL-terminated */
    {
        struct http_slice s = {"nick=bobXXXX", 8};
        ck_assert_int_eq(http_query_get(s, "nick", out, sizeof out), 3);
        ck_assert_str_eq(out, "bob");
    }
}
END_TEST

START_TEST(test_status_text)
{
    ck_assert_str_eq(http_status_text(404), "Not Found");
    ck_assert_str_eq(http_status_text(101), "Switching Protocols");
    ck_assert_str_eq(http_status_text(200), "OK");
    ck_assert_str_eq(http_status_text(400), "Bad Request");
    ck_assert_str_eq(http_status_text(405), "Method Not Allowed");
    ck_assert_str_eq(http_status_text(426), "Upgrade Required");
    ck_assert_str_eq(http_status_text(431), "Request Header Fields Too Large");
    ck_assert_str_eq(http_status_text(505), "HTTP Version Not Supported");
    ck_assert_str_eq(http_status_text(999), "Unknown");
    ck_assert_str_eq(http_status_text(0), "Unknown");
    ck_assert_str_eq(http_status_text(-1), "Unknown");
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *parse = tcase_create("parse");
    TCase *errs = tcase_create("errors");
    TCase *help = tcase_create("helpers");

    tcase_add_test(parse, test_full_get);
    tcase_add_test(parse, test_head_length_exact);
    tcase_add_test(parse, test_incomplete);
    tcase_add_test(parse, test_lf_only);
    tcase_add_test(parse, test_value_trimming);
    tcase_add_test(parse, test_path_query_split);
    tcase_add_test(parse, test_leading_empty_lines);
    suite_add_tcase(s, parse);

    tcase_add_loop_test(errs, test_bad_requests, 0, (int)(sizeof bads / sizeof bads[0]));
    tcase_add_test(errs, test_head_too_large);
    tcase_add_test(errs, test_head_unterminated_too_large);
    tcase_add_test(errs, test_too_many_headers);
    tcase_set_timeout(errs, 120);
    suite_add_tcase(s, errs);

    tcase_add_test(help, test_header_get_count);
    tcase_add_test(help, test_body_length);
    tcase_add_test(help, test_keep_alive);
    tcase_add_test(help, test_list_has_token);
    tcase_add_test(help, test_slice_ieq);
    tcase_add_test(help, test_path_decode_ok);
    tcase_add_test(help, test_path_decode_rejects);
    tcase_add_test(help, test_path_decode_small_output);
    tcase_add_test(help, test_decode_zero_size_output);
    tcase_add_test(help, test_query_get);
    tcase_add_test(help, test_status_text);
    suite_add_tcase(s, help);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
