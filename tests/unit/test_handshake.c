/* test_handshake: unit tests for src/handshake.c, the server side of the RFC
 * 6455 opening handshake. Sec-WebSocket-Accept against the RFC section 1.3
 * vector (and others computed with `openssl sha1 | base64`), key syntax, and
 * handshake_check / handshake_is_upgrade on requests built with
 * http_parse_request, so the HTTP parser and the handshake are tested together. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handshake.h"
#include "http.h"

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

START_TEST(test_accept_key_vectors)
{
    static const struct { const char *key, *accept; } v[] = {
        {RFC_KEY, RFC_ACCEPT},   /* RFC 6455 section 1.3 */
        {"x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk="},
        {"AAAAAAAAAAAAAAAAAAAAAA==", "ICX+Yqv66kxgM0FcWaLWlFLwTAI="},
        {"/+/+/+/+/+/+/+/+/+/+/w==", "YdypOIlszlAa8WZtOS9miNhQsaE="},
    };

    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char out[HANDSHAKE_ACCEPT_LEN + 8];

        memset(out, '#', sizeof out);
        handshake_accept_key(v[i].key, strlen(v[i].key), out);
        ck_assert_str_eq(out, v[i].accept);
        ck_assert_uint_eq(strlen(out), HANDSHAKE_ACCEPT_LEN);
        ck_assert_int_eq(out[HANDSHAKE_ACCEPT_LEN + 1], '#');   /* nothing written past the NUL */
    }
}
END_TEST

/* Only key_len bytes of the key count. */
START_TEST(test_accept_key_uses_length)
{
    char out[HANDSHAKE_ACCEPT_LEN + 1];
    static const char longer[] = RFC_KEY "garbage after the key";

    handshake_accept_key(longer, 24, out);
    ck_assert_str_eq(out, RFC_ACCEPT);
}
END_TEST

START_TEST(test_key_valid)
{
    static const char *good[] = {RFC_KEY, "x3JJHMbDL1EzLkh9GBhXDw==", "AAAAAAAAAAAAAAAAAAAAAA==",
                                 "/+/+/+/+/+/+/+/+/+/+/w==", "zzzzzzzzzzzzzzzzzzzzzw=="};
    static const char *bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",                /* 23 chars */
        "dGhlIHNhbXBsZSBub25jZQ===",              /* 25 chars */
        "dGhlIHNhbXBsZSBub25jZQ==A",              /* 25 chars */
        "dGhlIHNhbXBsZSBub25jZQQ=",               /* one '=': 17 bytes */
        "dGhlIHNhbXBsZSBub25jZQQQ",               /* no padding: 18 bytes */
        "dGhlIHNhbXBsZSBub25jZ===",               /* three '=' */
        "dGhlIHNhbXBsZSBub25jZQ=A",               /* '=' then data */
        "=GhlIHNhbXBsZSBub25jZQ==",               /* '=' at the start */
        "dGhlIHNhbXBs=SBub25jZQ==",               /* '=' in the middle */
        "dGhlIHNhbXBsZSBub25j ZQ=",               /* space */
        "dGhlIHNhbXBsZSBub25jZ-==",               /* base64url alphabet */
        "dGhlIHNhbXBsZSBub25jZ_==",
        "dGhlIHNhbXBsZSBub25jZ.==",
        "dGhlIHNhbXBsZSBub25jZ\x80==",
        "AAAAAAAAAAAAAAAAAAAA",                   /* 15 bytes, 20 chars */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",       /* 24 bytes, 32 chars */
        "AAAAAAAAAAAAAAAAAAAAAA",                 /* 22 chars, no padding */
    };

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(handshake_key_valid(good[i], strlen(good[i])), "\"%s\" refused", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!handshake_key_valid(bad[i], strlen(bad[i])), "\"%s\" accepted", bad[i]);
    /* a NUL inside the 24 bytes */
    ck_assert(!handshake_key_valid("dGhlIHNhbX\0sZSBub25jZQ==", 24));
    /* only n bytes count */
    ck_assert(!handshake_key_valid(RFC_KEY, 23));
    ck_assert(handshake_key_valid(RFC_KEY "extra", 24));
}
END_TEST

/* ---- handshake_check on parsed requests ---- */

struct req {
    char buf[2048];
    struct http_request r;
};

/* Builds "<request line>\r\n<header lines>\r\n\r\n" from a NULL-terminated list
 * of header lines, parses it, and fails the test if it does not parse. */
static void build(struct req *q, const char *request_line, ...)
{
    va_list ap;
    const char *h;
    size_t n = (size_t)snprintf(q->buf, sizeof q->buf, "%s\r\n", request_line), scanned = 0;
    long ret;

    va_start(ap, request_line);
    while ((h = va_arg(ap, const char *)) != NULL)
        n += (size_t)snprintf(q->buf + n, sizeof q->buf - n, "%s\r\n", h);
    va_end(ap);
    n += (size_t)snprintf(q->buf + n, sizeof q->buf - n, "\r\n");
    ck_assert_uint_lt(n, sizeof q->buf);
    ret = http_parse_request(q->buf, n, &scanned, 8192, &q->r);
    ck_assert_msg(ret == (long)n, "request did not parse: ret %ld status %d", ret, q->r.status);
}

#define GET "GET /chat HTTP/1.1"
#define HOST "Host: server.example.com"
#define UPG "Upgrade: websocket"
#define CONN "Connection: Upgrade"
#define KEYH "Sec-WebSocket-Key: " RFC_KEY
#define VER "Sec-WebSocket-Version: 13"

static int check(struct req *q, struct handshake_result *res)
{
    int st;

    memset(res, 0x5a, sizeof *res);
    st = handshake_check(&q->r, res);
    ck_assert_int_eq(st, res->status);
    if (st != 101)
        ck_assert_msg(res->reason != NULL && res->reason[0], "refusal %d without a reason", st);
    return st;
}

START_TEST(test_check_valid)
{
    struct req q;
    struct handshake_result res;

    build(&q, GET, HOST, UPG, CONN, KEYH, VER, "Origin: http://example.com", NULL);
    ck_assert_int_eq(check(&q, &res), 101);
    ck_assert_str_eq(res.accept, RFC_ACCEPT);
    ck_assert(handshake_is_upgrade(&q.r));

    /* another key gives its own accept value */
    build(&q, GET, HOST, UPG, CONN, "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==", VER, NULL);
    ck_assert_int_eq(check(&q, &res), 101);
    ck_assert_str_eq(res.accept, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}
END_TEST

/* Variants a real client may send, all acceptable. */
START_TEST(test_check_valid_variants)
{
    struct req q;
    struct handshake_result res;

    build(&q, GET, HOST, "Upgrade: WebSocket", CONN, KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 101);
    build(&q, GET, HOST, "Upgrade: WEBSOCKET", CONN, KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 101);
    build(&q, GET, HOST, UPG, "Connection: keep-alive, Upgrade", KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 101);
    ck_assert_str_eq(res.accept, RFC_ACCEPT);
    build(&q, GET, HOST, UPG, "Connection: upgrade", KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 101);
    build(&q, GET, HOST, UPG, "Connection:\tUpgrade ,keep-alive", KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 101);
    build(&q, GET, HOST, UPG, "Connection: keep-alive", "Connection: Upgrade", KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 101);
    build(&q, GET, "host: a", "upgrade: websocket", "connection: upgrade", "sec-websocket-key: " RFC_KEY,
          "sec-websocket-version: 13", NULL);
    ck_assert_int_eq(check(&q, &res), 101);
    build(&q, GET, HOST, UPG, CONN, "Sec-WebSocket-Key:   " RFC_KEY "  ", "Sec-WebSocket-Version:  13 ", NULL);
    ck_assert_int_eq(check(&q, &res), 101);
    ck_assert_str_eq(res.accept, RFC_ACCEPT);
    build(&q, "GET /chat?room=x HTTP/1.1", HOST, UPG, CONN, KEYH, VER, "Sec-WebSocket-Protocol: chat", NULL);
    ck_assert_int_eq(check(&q, &res), 101);
}
END_TEST

START_TEST(test_check_refusals)
{
    struct req q;
    struct handshake_result res;

    /* Upgrade */
    build(&q, GET, HOST, CONN, KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 400);
    build(&q, GET, HOST, "Upgrade: h2c", CONN, KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 400);
    build(&q, GET, HOST, "Upgrade: websocketx", CONN, KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 400);
    build(&q, GET, HOST, "Upgrade:", CONN, KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 400);
    /* Connection */
    build(&q, GET, HOST, UPG, KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 400);
    build(&q, GET, HOST, UPG, "Connection: keep-alive", KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 400);
    build(&q, GET, HOST, UPG, "Connection: Upgradex", KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 400);
    /* Sec-WebSocket-Version */
    build(&q, GET, HOST, UPG, CONN, KEYH, "Sec-WebSocket-Version: 8", NULL);
    ck_assert_int_eq(check(&q, &res), 426);
    build(&q, GET, HOST, UPG, CONN, KEYH, "Sec-WebSocket-Version: 14", NULL);
    ck_assert_int_eq(check(&q, &res), 426);
    build(&q, GET, HOST, UPG, CONN, KEYH, "Sec-WebSocket-Version: 130", NULL);
    ck_assert_int_eq(check(&q, &res), 426);
    /* missing version: 426 in src/handshake.c (RFC 6455 4.2.2 allows either) */
    build(&q, GET, HOST, UPG, CONN, KEYH, NULL);
    ck_assert_int_eq(check(&q, &res), 426);
    /* Sec-WebSocket-Key */
    build(&q, GET, HOST, UPG, CONN, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 400);
    build(&q, GET, HOST, UPG, CONN, KEYH, KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 400);
    build(&q, GET, HOST, UPG, CONN, KEYH, "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==", VER, NULL);
    ck_assert_int_eq(check(&q, &res), 400);
    build(&q, GET, HOST, UPG, CONN, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA", VER, NULL);   /* 15 bytes */
    ck_assert_int_eq(check(&q, &res), 400);
    build(&q, GET, HOST, UPG, CONN, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", VER, NULL);
    ck_assert_int_eq(check(&q, &res), 400);
    build(&q, GET, HOST, UPG, CONN, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ-==", VER, NULL);
    ck_assert_int_eq(check(&q, &res), 400);
    build(&q, GET, HOST, UPG, CONN, "Sec-WebSocket-Key:", VER, NULL);
    ck_assert_int_eq(check(&q, &res), 400);
    /* version, method, Host */
    build(&q, "GET /chat HTTP/1.0", HOST, UPG, CONN, KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 400);
    build(&q, "POST /chat HTTP/1.1", HOST, UPG, CONN, KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 405);
    build(&q, "HEAD /chat HTTP/1.1", HOST, UPG, CONN, KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 405);
    build(&q, "get /chat HTTP/1.1", HOST, UPG, CONN, KEYH, VER, NULL);   /* methods are case-sensitive */
    ck_assert_int_eq(check(&q, &res), 405);
    build(&q, GET, UPG, CONN, KEYH, VER, NULL);
    ck_assert_int_eq(check(&q, &res), 400);
    build(&q, GET, HOST, "Host: other.example.com", UPG, CONN, KEYH, VER, NULL);   /* RFC 9112 3.2 */
    ck_assert_int_eq(check(&q, &res), 400);
}
END_TEST

START_TEST(test_is_upgrade)
{
    struct req q;

    build(&q, GET, HOST, UPG, CONN, KEYH, VER, NULL);
    ck_assert(handshake_is_upgrade(&q.r));
    build(&q, GET, HOST, "Upgrade: WebSocket", NULL);   /* invalid, but still an upgrade request */
    ck_assert(handshake_is_upgrade(&q.r));
    build(&q, "POST /x HTTP/1.0", "Upgrade: websocket", NULL);
    ck_assert(handshake_is_upgrade(&q.r));
    build(&q, GET, HOST, NULL);
    ck_assert(!handshake_is_upgrade(&q.r));
    build(&q, GET, HOST, "Upgrade: h2c", CONN, NULL);
    ck_assert(!handshake_is_upgrade(&q.r));
    build(&q, GET, HOST, CONN, KEYH, VER, NULL);
    ck_assert(!handshake_is_upgrade(&q.r));
}
END_TEST

/* The full request from RFC 6455 section 1.2, fed to the HTTP parser in two
 * parts at every split point: always 101 with the RFC's accept value. */
START_TEST(test_rfc_request_any_split)
{
    static const char in[] = "GET /chat HTTP/1.1\r\n"
                             "Host: server.example.com\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Origin: http://example.com\r\n"
                             "Sec-WebSocket-Protocol: chat, superchat\r\n"
                             "Sec-WebSocket-Version: 13\r\n"
                             "\r\n";
    const size_t n = sizeof in - 1;

    for (size_t k = 0; k <= n; k++) {
        struct http_request r;
        struct handshake_result res;
        size_t scanned = 0;
        char *buf = malloc(n);
        long ret;

        memcpy(buf, in, n);
        ret = http_parse_request(buf, k, &scanned, 8192, &r);
        if (ret == HTTP_INCOMPLETE)
            ret = http_parse_request(buf, n, &scanned, 8192, &r);
        if (ret != (long)n || handshake_check(&r, &res) != 101 || strcmp(res.accept, RFC_ACCEPT) != 0)
            ck_abort_msg("split at %zu: ret %ld, status %d", k, ret, ret > 0 ? res.status : r.status);
        free(buf);
    }
}
END_TEST

static Suite *handshake_suite(void)
{
    Suite *s = suite_create("handshake");
    TCase *key = tcase_create("keys");
    TCase *chk = tcase_create("check");

    tcase_add_test(key, test_accept_key_vectors);
    tcase_add_test(key, test_accept_key_uses_length);
    tcase_add_test(key, test_key_valid);
    suite_add_tcase(s, key);

    tcase_add_test(chk, test_check_valid);
    tcase_add_test(chk, test_check_valid_variants);
    tcase_add_test(chk, test_check_refusals);
    tcase_add_test(chk, test_is_upgrade);
    tcase_add_test(chk, test_rfc_request_any_split);
    suite_add_tcase(s, chk);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(handshake_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
