/* fuzz_http: libFuzzer harness for src/http.c (and the handshake check that
 * reads its result). The input is a byte stream a client sent on a fresh
 * connection. Properties checked, not only the absence of crashes:
 *  - the stream parsed whole, a byte at a time, and in pseudo-random chunks
 *    (the `scanned` state carried between calls and reset to 0 only for a new
 *    request, pipelined requests parsed one after another as conn.c does)
 *    gives the same sequence of results: return value, status and reason on error,
 *    method/target/path/query/version/headers (as offsets) on success;
 *    incremental prefixes sit in a buffer whose tail is ASan-poisoned, so a
 *    read past the bytes given is caught;
 *  - a head's length is within the bytes given and it ends with a blank line;
 *    every slice lies inside the head; the target is path ['?' query], or an
 *    http(s) URL whose authority is followed by path ['?' query];
 *  - http_path_decode agrees with a reference written here, its output starts
 *    with '/', holds no "/../", "/./", NUL or backslash, never ends in a dot
 *    segment, and it never writes past outsz (exact-size heap buffers);
 *  - http_query_get agrees with a reference and never writes past outsz;
 *  - http_list_has_token agrees with a reference;
 *  - handshake_check's 101 implies GET, HTTP/1.1, one valid key and a
 *    28-character base64 accept value;
 *  - http_body_length: 0 only without Transfer-Encoding and with a length
 *    within the maximum that every Content-Length header states, digit for
 *    digit; otherwise 400, 411 or 413 with a reason.
 * Deterministic; no state survives a run. */
#include <sanitizer/asan_interface.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "handshake.h"
#include "http.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define FUZZ_SERVER_MAX_HEAD 8192   /* SERVER_MAX_HEAD in server.h */
#define MAX_RESULTS 64              /* pipelined requests recorded per stream */

/* The smallest outsz tried on the helpers. 0 is a legal size (nothing fits, so
 * the answer must be an error without a write); a build with
 * -DFUZZ_OUTSZ_MIN=1 skips it while a fix for that case is pending. */
#ifndef FUZZ_OUTSZ_MIN
#define FUZZ_OUTSZ_MIN 0
#endif

/* ---- one parse result, described independently of the buffer address ---- */

struct off_slice {
    long off;     /* offset from the stream start, -1 for NULL */
    size_t n;
};

struct result {
    long ret;
    int status;
    const char *reason;
    int version_minor;
    size_t nheaders;
    struct off_slice method, target, path, query;
    struct off_slice hname[HTTP_MAX_HEADERS], hvalue[HTTP_MAX_HEADERS];
};

struct results {
    size_t n;
    struct result r[MAX_RESULTS];
};

static struct off_slice off_of(struct http_slice s, const char *base)
{
    struct off_slice o = {s.p ? (long)(s.p - base) : -1L, s.n};
    return o;
}

static int off_eq(struct off_slice a, struct off_slice b)
{
    return a.off == b.off && a.n == b.n;
}

static int result_eq(const struct result *a, const struct result *b)
{
    if (a->ret != b->ret)
        return 0;
    if (a->ret == HTTP_ERROR)
        return a->status == b->status && strcmp(a->reason, b->reason) == 0;
    if (a->ret == HTTP_INCOMPLETE)
        return 1;
    if (a->version_minor != b->version_minor || a->nheaders != b->nheaders || !off_eq(a->method, b->method) ||
        !off_eq(a->target, b->target) || !off_eq(a->path, b->path) || !off_eq(a->query, b->query))
        return 0;
    for (size_t i = 0; i < a->nheaders; i++)
        if (!off_eq(a->hname[i], b->hname[i]) || !off_eq(a->hvalue[i], b->hvalue[i]))
            return 0;
    return 1;
}

static int results_eq(const struct results *a, const struct results *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (!result_eq(&a->r[i], &b->r[i]))
            return 0;
    return 1;
}

/* ---- helpers and references ---- */

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void check_slice_inside(struct http_slice s, const char *lo, const char *hi)
{
    CHECK(s.p != NULL);
    CHECK(s.p >= lo && s.p <= hi && s.n <= (size_t)(hi - s.p));
}

/* Percent-decodes p[0..n) into a fresh heap buffer; -1 on a bad escape or %00. */
static long ref_percent_decode(const char *p, size_t n, char **outp)
{
    char *out = malloc(n + 1);
    CHECK(out != NULL);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)p[i];
        if (c == '%') {
            if (n - i < 3 || hexval((unsigned char)p[i + 1]) < 0 || hexval((unsigned char)p[i + 2]) < 0) {
                free(out);
                return -1;
            }
            c = hexval((unsigned char)p[i + 1]) * 16 + hexval((unsigned char)p[i + 2]);
            i += 2;
        }
        if (c == 0) {
            free(out);
            return -1;
        }
        out[o++] = (char)c;
    }
    *outp = out;
    return (long)o;
}

/* Reference for http_path_decode: decode, refuse controls, backslash and any
 * "." or ".." segment, collapse runs of '/'. Result in a fresh buffer. */
static long ref_path_decode(const char *p, size_t n, size_t outsz, char **outp)
{
    char *d;
    long dn = ref_percent_decode(p, n, &d);
    if (dn < 0)
        return -1;
    long ret = -1;
    if ((size_t)dn + 1 > outsz || dn == 0 || d[0] != '/')
        goto out;
    for (long i = 0; i < dn; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c < 0x20 || c == 0x7F || c == '\\')
            goto out;
    }
    for (long s = 0; s < dn;) {   /* segments: between a '/' and the next */
        long e = s + 1;
        while (e < dn && d[e] != '/')
            e++;
        long len = e - s - 1;
        if ((len == 1 && d[s + 1] == '.') || (len == 2 && d[s + 1] == '.' && d[s + 2] == '.'))
            goto out;
        s = e;
    }
    {
        char *o = malloc((size_t)dn + 1);
        CHECK(o != NULL);
        long k = 0;
        for (long i = 0; i < dn; i++) {
            if (d[i] == '/' && k > 0 && o[k - 1] == '/')
                continue;
            o[k++] = d[i];
        }
        o[k] = '\0';
        *outp = o;
        ret = k;
    }
out:
    free(d);
    return ret;
}

static long ref_query_get(const char *q, size_t qn, const char *name, size_t outsz, char **outp)
{
    size_t nlen = strlen(name);
    for (size_t s = 0; s <= qn;) {
        size_t e = s;
        while (e < qn && q[e] != '&')
            e++;
        const char *eq = memchr(q + s, '=', e - s);
        size_t klen = eq ? (size_t)(eq - (q + s)) : e - s;
        if (klen == nlen && memcmp(q + s, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : q + e;
            size_t vn = (size_t)(q + e - v);
            char *d;
            long dn = ref_percent_decode(v, vn, &d);
            if (dn < 0)
                return -2;
            if ((size_t)dn + 1 > outsz) {
                free(d);
                return -2;
            }
            *outp = d;
            return dn;
        }
        s = e + 1;
    }
    return -1;
}

static int ref_has_token(const char *p, size_t n, const char *token)
{
    size_t tn = strlen(token);
    for (size_t s = 0; s <= n;) {
        size_t e = s;
        while (e < n && p[e] != ',')
            e++;
        size_t a = s, b = e;
        while (a < b && (p[a] == ' ' || p[a] == '\t'))
            a++;
        while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
            b--;
        if (b - a == tn && tn > 0) {
            size_t i = 0;
            while (i < tn && lower((unsigned char)p[a + i]) == lower((unsigned char)token[i]))
                i++;
            if (i == tn)
                return 1;
        }
        s = e + 1;
    }
    return 0;
}

/* ---- properties of the helpers ---- */

/* A heap buffer of exactly outsz usable bytes (ASan's malloc(0) hands out one
 * usable byte, so the byte after outsz is poisoned by hand). */
static char *out_alloc(size_t outsz)
{
    char *out = malloc(outsz + 1);
    CHECK(out != NULL);
    ASAN_POISON_MEMORY_REGION(out + outsz, 1);
    return out;
}

static void out_free(char *out, size_t outsz)
{
    ASAN_UNPOISON_MEMORY_REGION(out + outsz, 1);
    free(out);
}

static void check_path_decode(const char *p, size_t n, size_t outsz)
{
    char *out = out_alloc(outsz);
    struct http_slice s = {p, n};
    long got = http_path_decode(s, out, outsz);
    char *want = NULL;
    long exp = ref_path_decode(p, n, outsz, &want);
    CHECK(got == exp);
    if (got >= 0) {
        CHECK((size_t)got < outsz && out[got] == '\0');
        CHECK(memcmp(out, want, (size_t)got) == 0);
        CHECK(got >= 1 && out[0] == '/');
        CHECK(memchr(out, '\0', (size_t)got) == NULL);
        CHECK(memchr(out, '\\', (size_t)got) == NULL);
        CHECK(memmem(out, (size_t)got, "/../", 4) == NULL);
        CHECK(memmem(out, (size_t)got, "/./", 3) == NULL);
        CHECK(memmem(out, (size_t)got, "//", 2) == NULL);
        CHECK(!(got >= 2 && memcmp(out + got - 2, "/.", 2) == 0));
        CHECK(!(got >= 3 && memcmp(out + got - 3, "/..", 3) == 0));
    }
    free(want);
    out_free(out, outsz);
}

static void check_query_get(const char *q, size_t qn, const char *name, size_t outsz)
{
    char *out = out_alloc(outsz);
    struct http_slice s = {q, qn};
    long got = http_query_get(s, name, out, outsz);
    char *want = NULL;
    long exp = ref_query_get(q, qn, name, outsz, &want);
    CHECK(got == exp);
    if (got >= 0) {
        CHECK((size_t)got < outsz && out[got] == '\0');
        CHECK(memcmp(out, want, (size_t)got) == 0);
    }
    free(want);
    out_free(out, outsz);
}

static void check_tokens(struct http_slice v)
{
    static const char *const tokens[] = {"upgrade", "websocket", "Keep-Alive", ""};
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++)
        CHECK(!!http_list_has_token(v, tokens[i]) == ref_has_token(v.p, v.n, tokens[i]));
}

static int is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

static int ref_key_valid(const char *s, size_t n)
{
    if (n != 24 || s[22] != '=' || s[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++)
        if (!is_b64(s[i]))
            return 0;
    /* 22 characters carry 132 bits; a 16-byte value leaves the last 4 zero, but
     * the server does not insist on canonical padding bits: neither do we. */
    return 1;
}

/* Checks one successfully parsed head at buf[0..r) (len bytes available). */
static void check_success(const char *buf, size_t len, long r, const struct http_request *req, size_t small)
{
    CHECK(r > 0 && (size_t)r <= len);
    const char *end = buf + r;
    /* the head ends with a blank line */
    CHECK(r >= 2 && buf[r - 1] == '\n' && (buf[r - 2] == '\n' || (r >= 3 && buf[r - 2] == '\r' && buf[r - 3] == '\n')));
    check_slice_inside(req->method, buf, end);
    check_slice_inside(req->target, buf, end);
    check_slice_inside(req->path, buf, end);
    check_slice_inside(req->query, buf, end);
    CHECK(req->method.n > 0);
    for (size_t i = 0; i < req->method.n; i++)
        CHECK(is_tchar((unsigned char)req->method.p[i]));
    CHECK(req->version_minor == 0 || req->version_minor == 1);
    /* origin form "/p?q", or absolute form "http(s)://authority/p?q" (RFC 9112
     * section 3.2.2): path ['?' query] is the target's tail after the authority */
    CHECK(req->target.n > 0);
    const char *tend = req->target.p + req->target.n;
    CHECK(req->path.p >= req->target.p && req->path.n >= 1 && req->path.p[0] == '/');
    if (req->target.p[0] == '/') {
        CHECK(req->path.p == req->target.p);
    } else {
        size_t skip = req->target.n > 8 && strncasecmp(req->target.p, "https://", 8) == 0 ? 8
                      : req->target.n > 7 && strncasecmp(req->target.p, "http://", 7) == 0 ? 7 : 0;
        CHECK(skip > 0);
        const char *auth = req->target.p + skip;
        CHECK(req->path.p > auth);   /* a non-empty authority */
        CHECK(memchr(auth, '/', (size_t)(req->path.p - auth)) == NULL);
        CHECK(memchr(auth, '?', (size_t)(req->path.p - auth)) == NULL);
    }
    CHECK(memchr(req->path.p, '?', req->path.n) == NULL);
    if (req->path.p + req->path.n < tend) {
        CHECK(req->path.p[req->path.n] == '?');
        CHECK(req->query.p == req->path.p + req->path.n + 1);
        CHECK(req->query.p + req->query.n == tend);
    } else {
        CHECK(req->path.p + req->path.n == tend && req->query.n == 0);
    }
    for (size_t i = 0; i < req->target.n; i++)
        CHECK((unsigned char)req->target.p[i] > 0x20 && (unsigned char)req->target.p[i] != 0x7F);
    CHECK(req->nheaders <= HTTP_MAX_HEADERS);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        check_slice_inside(h->name, buf, end);
        check_slice_inside(h->value, buf, end);
        CHECK(h->name.n > 0);
        for (size_t k = 0; k < h->name.n; k++)
            CHECK(is_tchar((unsigned char)h->name.p[k]));
        for (size_t k = 0; k < h->value.n; k++) {
            unsigned char c = (unsigned char)h->value.p[k];
            CHECK((c >= 0x20 || c == '\t') && c != 0x7F);
        }
        if (h->value.n)
            CHECK(h->value.p[0] != ' ' && h->value.p[0] != '\t' && h->value.p[h->value.n - 1] != ' ' &&
                  h->value.p[h->value.n - 1] != '\t');
        check_tokens(h->value);
    }

    /* helpers on what the server feeds them */
    check_path_decode(req->path.p, req->path.n, 4096);   /* request.c's buffer */
    check_path_decode(req->path.p, req->path.n, small);
    check_query_get(req->query.p, req->query.n, "nick", 256);   /* chat.c's NICK_QUERY_MAX */
    check_query_get(req->query.p, req->query.n, "room", 65);
    check_query_get(req->query.p, req->query.n, "nick", small);

    /* the body's framing */
    uint64_t blen;
    const char *why = NULL;
    int framing = http_body_length(req, 65536, &blen, &why);
    if (framing == 0) {
        CHECK(!http_header_get(req, "Transfer-Encoding") && blen <= 65536);
        for (size_t i = 0; i < req->nheaders; i++) {
            if (!http_slice_ieq(req->headers[i].name, "Content-Length"))
                continue;
            uint64_t v = 0;
            for (size_t k = 0; k < req->headers[i].value.n; k++) {
                CHECK(req->headers[i].value.p[k] >= '0' && req->headers[i].value.p[k] <= '9');
                v = v * 10 + (uint64_t)(req->headers[i].value.p[k] - '0');
            }
            CHECK(v == blen);
        }
    } else {
        CHECK((framing == 400 || framing == 411 || framing == 413) && why && why[0]);
    }
    (void)http_keep_alive(req);

    /* the handshake check on this request */
    struct handshake_result hs;
    int st = handshake_check(req, &hs);
    CHECK(st == hs.status);
    (void)handshake_is_upgrade(req);
    if (st == 101) {
        CHECK(http_slice_eq(req->method, "GET") && req->version_minor == 1);
        CHECK(http_header_count(req, "Host") == 1);
        CHECK(http_header_count(req, "Sec-WebSocket-Key") == 1);
        const struct http_slice *key = http_header_get(req, "Sec-WebSocket-Key");
        CHECK(key && ref_key_valid(key->p, key->n));
        CHECK(strlen(hs.accept) == HANDSHAKE_ACCEPT_LEN);
        for (size_t i = 0; i < HANDSHAKE_ACCEPT_LEN - 1; i++)
            CHECK(is_b64(hs.accept[i]));
        CHECK(hs.accept[HANDSHAKE_ACCEPT_LEN - 1] == '=');
    } else {
        CHECK(st == 400 || st == 405 || st == 426);
        CHECK(hs.reason != NULL && hs.reason[0]);
    }
}

/* ---- driving the parser like conn.c's process_http ---- */

struct stream {
    const char *base;   /* the stream's first byte */
    size_t used;        /* bytes consumed by finished requests */
    size_t scanned;     /* carried between calls, reset for a new request */
    int done;           /* an error was returned: the connection is closed */
    size_t max_head;
    size_t small;
    struct results out;
};

static void record(struct stream *s, long r, const struct http_request *req)
{
    if (s->out.n == MAX_RESULTS) {
        s->done = 1;
        return;
    }
    struct result *x = &s->out.r[s->out.n++];
    memset(x, 0, sizeof *x);
    x->ret = r;
    if (r == HTTP_ERROR) {
        x->status = req->status;
        x->reason = req->reason;
        return;
    }
    x->version_minor = req->version_minor;
    x->nheaders = req->nheaders;
    x->method = off_of(req->method, s->base);
    x->target = off_of(req->target, s->base);
    x->path = off_of(req->path, s->base);
    x->query = off_of(req->query, s->base);
    for (size_t i = 0; i < req->nheaders && i < HTTP_MAX_HEADERS; i++) {
        x->hname[i] = off_of(req->headers[i].name, s->base);
        x->hvalue[i] = off_of(req->headers[i].value, s->base);
    }
}

/* The first `avail` bytes of the stream are readable: parse what can be. */
static void stream_step(struct stream *s, size_t avail, int check)
{
    while (!s->done && s->used < avail) {
        struct http_request req;
        size_t before = s->scanned;
        size_t n = avail - s->used;
        long r = http_parse_request(s->base + s->used, n, &s->scanned, s->max_head, &req);
        if (r == HTTP_INCOMPLETE) {
            CHECK(s->scanned <= n && s->scanned >= before);
            return;
        }
        if (r == HTTP_ERROR) {
            CHECK(req.status == 400 || req.status == 431 || req.status == 505);
            CHECK(req.reason != NULL && req.reason[0]);
            record(s, r, &req);
            s->done = 1;
            return;
        }
        CHECK(r > 0 && (size_t)r <= n);
        CHECK((size_t)r <= s->max_head);   /* a longer head must be a 431 */
        if (check)
            check_success(s->base + s->used, n, r, &req, s->small);
        record(s, r, &req);
        s->used += (size_t)r;
        s->scanned = 0;
    }
}

static void stream_init(struct stream *s, const char *base, size_t max_head, size_t small)
{
    memset(s, 0, sizeof *s);
    s->base = base;
    s->max_head = max_head;
    s->small = small;
}

/* A deterministic generator for chunk sizes, seeded from the input. */
static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void run_all_ways(const uint8_t *data, size_t size, size_t max_head, size_t small)
{
    /* one exact-size copy; incremental passes poison the bytes not yet given */
    char *buf = malloc(size ? size : 1);
    CHECK(buf != NULL);
    memcpy(buf, data, size);

    struct stream whole, bytewise, chunks;
    stream_init(&whole, buf, max_head, small);
    stream_step(&whole, size, 1);
    /* an incomplete request at the end leaves nothing recorded for it */

    stream_init(&bytewise, buf, max_head, small);
    ASAN_POISON_MEMORY_REGION(buf, size);
    for (size_t k = 1; k <= size && !bytewise.done; k++) {
        ASAN_UNPOISON_MEMORY_REGION(buf + k - 1, 1);
        stream_step(&bytewise, k, 0);
    }
    ASAN_UNPOISON_MEMORY_REGION(buf, size);
    CHECK(results_eq(&whole.out, &bytewise.out));

    uint64_t seed = 0x9E3779B97F4A7C15ull ^ size;
    for (size_t i = 0; i < size && i < 16; i++)
        seed = seed * 31 + data[i];
    if (!seed)
        seed = 1;
    stream_init(&chunks, buf, max_head, small);
    ASAN_POISON_MEMORY_REGION(buf, size);
    for (size_t k = 0; k < size && !chunks.done;) {
        size_t step = 1 + (size_t)(next_rand(&seed) % 97);
        if (step > size - k)
            step = size - k;
        ASAN_UNPOISON_MEMORY_REGION(buf + k, step);
        k += step;
        stream_step(&chunks, k, 0);
    }
    ASAN_UNPOISON_MEMORY_REGION(buf, size);
    CHECK(results_eq(&whole.out, &chunks.out));

    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t small = size ? (size_t)(data[size - 1] % 40) : 0;   /* 0..39, tight outsz */
#if FUZZ_OUTSZ_MIN > 0
    if (small < FUZZ_OUTSZ_MIN)
        small = FUZZ_OUTSZ_MIN;
#endif
    size_t mh = 10 + (size ? (size_t)data[size - 1] * 4 : 0);   /* a small max_head */

    run_all_ways(data, size, FUZZ_SERVER_MAX_HEAD, small);
    run_all_ways(data, size, mh, small);

    /* the helpers on the raw input too, so they are fuzzed directly */
    char *raw = malloc(size ? size : 1);
    CHECK(raw != NULL);
    memcpy(raw, data, size);
    check_path_decode(raw, size, 4096);
    check_path_decode(raw, size, small);
    check_query_get(raw, size, "nick", 256);
    check_query_get(raw, size, "nick", small);
    check_query_get(raw, size, "", 16);
    struct http_slice all = {raw, size};
    check_tokens(all);
    CHECK(!!handshake_key_valid(raw, size) == ref_key_valid(raw, size));
    free(raw);
    return 0;
}
