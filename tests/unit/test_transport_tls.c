/* test_transport_tls: the TLS transport (src/transport_tls.c) over a
 * non-blocking socketpair, with an OpenSSL client on the other end and a
 * certificate made by the openssl command line. Covers the handshake driven
 * by recv, writes gathered from many iovecs into records and cut short by a
 * full socket (the held record finished later, every byte arriving once and
 * in order), the end of the stream both ways (close_notify), input buffered
 * inside OpenSSL (TRANSPORT_HAS_INPUT), files sent a record at a time, plain
 * HTTP answered with a 400 in clear, the alert of a refused connection, and
 * reloading: a broken file keeps the context in use. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls.h"

static char dir[] = "/tmp/wshub-tls-unit-XXXXXX";
static char cert[128], key[128];

static const struct transport_ops *const tp = &transport_tls_ops;

/* One connection: the server's socket and transport state, the client's socket and SSL. */
struct pair {
    int s, c;
    void *st;
    SSL *cl;
    SSL_CTX *cctx;
};

static struct tls_ctx *ctx;
static struct pair P;

/* A self-signed certificate and its key in a temporary directory. Returns 0 or -1. */
static int make_cert(void)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s -out %s "
             "-subj /CN=localhost -days 1 2>/dev/null",
             key, cert);
    return system(cmd) == 0 ? 0 : -1;
}

/* A connected pair; small: tiny socket buffers, so that writes stop short. */
static void pair_open(int small)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    P.s = sv[0];
    P.c = sv[1];
    fcntl(P.s, F_SETFL, O_NONBLOCK);
    fcntl(P.c, F_SETFL, O_NONBLOCK);
    if (small) {
        int n = 4096;
        setsockopt(P.s, SOL_SOCKET, SO_SNDBUF, &n, sizeof(n));
        setsockopt(P.c, SOL_SOCKET, SO_RCVBUF, &n, sizeof(n));
    }
    ck_assert_int_eq(tp->attach(ctx, P.s, &P.st), 0);
    P.cctx = SSL_CTX_new(TLS_client_method());
    P.cl = SSL_new(P.cctx);
    SSL_set_fd(P.cl, P.c);
    SSL_set_connect_state(P.cl);
}

static void pair_close(void)
{
    if (P.st)
        tp->detach(P.st);
    SSL_free(P.cl);
    SSL_CTX_free(P.cctx);
    close(P.s);
    close(P.c);
    memset(&P, 0, sizeof(P));
}

/* Runs the handshake: the client's steps, and the server's inside recv. */
static void handshake(void)
{
    uint8_t b[256];
    for (int i = 0; i < 50; i++) {
        int r = SSL_do_handshake(P.cl);
        ssize_t n = tp->recv(P.st, P.s, b, sizeof(b));
        ck_assert(n < 0 && errno == EAGAIN);
        if (r == 1 && i > 2)
            return;
    }
    ck_abort_msg("no handshake");
}

/* Reads what the client has (and lets the server finish what it holds). */
static size_t client_read(uint8_t *out, size_t cap)
{
    size_t got = 0;
    for (;;) {
        int r = SSL_read(P.cl, out + got, (int)(cap - got));
        if (r <= 0) {
            ck_assert_int_eq(SSL_get_error(P.cl, r), SSL_ERROR_WANT_READ);
            return got;
        }
        got += (size_t)r;
    }
}

static void setup(void)
{
    char err[512];
    ctx = tls_ctx_new(cert, key, "1.2", 1, err, sizeof(err));
    ck_assert_msg(ctx != NULL, "%s", err);
}

static void teardown(void)
{
    pair_close();
    tls_ctx_free(ctx);
}

static void fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + i / 251);
}

START_TEST(test_gathered_writes_cut_short_arrive_whole)
{
    enum { TOTAL = 3 * 1024 * 1024 };
    uint8_t *src = malloc(TOTAL), *dst = malloc(TOTAL);
    fill(src, TOTAL);
    pair_open(1);
    handshake();
    /* pieces of many sizes, as an output queue holds them: tiny frames and big ones */
    static const size_t sizes[] = {2, 130, 7, 40000, 1, 16384, 16383, 900, 70000, 3};
    size_t sent = 0, got = 0, call = 0;
    int held_seen = 0;
    while (got < TOTAL) {
        struct iovec iov[64];
        int n = 0;
        for (size_t at = sent; n < 64 && at < TOTAL; n++) {
            size_t len = sizes[(call + (size_t)n) % 10];
            if (len > TOTAL - at)
                len = TOTAL - at;
            iov[n] = (struct iovec){src + at, len};
            at += len;
        }
        call++;
        ssize_t w = tp->writev(P.st, P.s, iov, n);   /* n is 0 once all is taken: pushes the held record */
        if (w < 0)
            ck_assert_int_eq(errno, EAGAIN);
        else
            sent += (size_t)w;
        if (tp->status(P.st) & TRANSPORT_HAS_OUTPUT)
            held_seen = 1;
        got += client_read(dst + got, TOTAL - got);
    }
    ck_assert_uint_eq(sent, TOTAL);
    ck_assert_msg(held_seen, "no write stopped inside a record: the test did not test it");
    ck_assert_int_eq(tp->status(P.st) & TRANSPORT_HAS_OUTPUT, 0);
    ck_assert_int_eq(memcmp(src, dst, TOTAL), 0);
    free(src);
    free(dst);
}
END_TEST

START_TEST(test_buffered_input_is_reported)
{
    pair_open(0);
    handshake();
    uint8_t msg[3 * 10000];
    fill(msg, sizeof(msg));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(SSL_write(P.cl, msg + i * 10000, 10000), 10000);
    uint8_t got[sizeof(msg)];
    size_t n = 0;
    ssize_t r = tp->recv(P.st, P.s, got, 1000);
    ck_assert_int_eq(r, 1000);
    ck_assert(tp->status(P.st) & TRANSPORT_HAS_INPUT);   /* epoll would not say so */
    n += 1000;
    while ((r = tp->recv(P.st, P.s, got + n, 1000)) > 0)
        n += (size_t)r;
    ck_assert(r < 0 && errno == EAGAIN);
    ck_assert_uint_eq(n, sizeof(msg));
    ck_assert_int_eq(memcmp(got, msg, sizeof(msg)), 0);
    ck_assert_int_eq(tp->status(P.st) & TRANSPORT_HAS_INPUT, 0);
}
END_TEST

START_TEST(test_end_of_stream_both_ways)
{
    pair_open(0);
    handshake();
    struct iovec iov = {"bye", 3};
    ck_assert_int_eq(tp->writev(P.st, P.s, &iov, 1), 3);
    tp->shutdown_write(P.st, P.s);
    uint8_t b[16];
    int r = SSL_read(P.cl, b, sizeof(b));
    ck_assert_int_eq(r, 3);
    r = SSL_read(P.cl, b, sizeof(b));
    ck_assert_int_eq(SSL_get_error(P.cl, r), SSL_ERROR_ZERO_RETURN);   /* close_notify */
    ck_assert_int_eq(SSL_shutdown(P.cl), 1);
    ck_assert_int_eq(tp->recv(P.st, P.s, b, sizeof(b)), 0);
}
END_TEST

START_TEST(test_file_sent_in_records)
{
    enum { SIZE = 200000 };
    char path[160];
    snprintf(path, sizeof(path), "%s/file.bin", dir);
    uint8_t *data = malloc(SIZE), *got = malloc(SIZE);
    fill(data, SIZE);
    FILE *f = fopen(path, "wb");
    ck_assert_uint_eq(fwrite(data, 1, SIZE, f), SIZE);
    fclose(f);
    int fd = open(path, O_RDONLY);
    pair_open(1);
    handshake();
    off_t off = 1000;
    size_t n = 0;
    while (n < SIZE - 1000) {
        if (off < SIZE) {
            off_t at = off;
            ssize_t w = tp->sendfile(P.st, P.s, fd, &at, (size_t)(SIZE - off));
            if (w > 0) {
                ck_assert_int_eq(at, off + w);
                off = at;
            } else {
                ck_assert(w < 0 && errno == EAGAIN);
            }
        } else if (tp->status(P.st) & TRANSPORT_HAS_OUTPUT) {
            tp->writev(P.st, P.s, NULL, 0);
        }
        n += client_read(got + n, SIZE - n);
    }
    ck_assert_int_eq(memcmp(got, data + 1000, SIZE - 1000), 0);
    close(fd);
    free(data);
    free(got);
}
END_TEST

START_TEST(test_plain_http_answered_in_clear)
{
    pair_open(0);
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(P.c, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
    uint8_t b[256];
    ck_assert_int_eq(tp->recv(P.st, P.s, b, sizeof(b)), -1);
    ck_assert_int_eq(errno, EPROTO);
    char resp[512] = {0};
    ssize_t n = read(P.c, resp, sizeof(resp) - 1);
    ck_assert_int_gt(n, 0);
    ck_assert_msg(strncmp(resp, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "%s", resp);
    ck_assert_ptr_nonnull(strstr(resp, "\r\n\r\nthis port speaks TLS: use https:// or wss://\n"));
    ck_assert_int_eq(read(P.c, resp, sizeof(resp)), 0);   /* and the end */
}
END_TEST

START_TEST(test_refuse_sends_an_alert)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    tp->refuse(ctx, sv[0], "HTTP/1.1 503 ...", 16);
    SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
    SSL *cl = SSL_new(cc);
    SSL_set_fd(cl, sv[1]);
    ck_assert_int_ne(SSL_connect(cl), 1);
    ck_assert_int_eq(ERR_GET_REASON(ERR_peek_error()), SSL_R_TLSV1_ALERT_INTERNAL_ERROR);
    ERR_clear_error();
    SSL_free(cl);
    SSL_CTX_free(cc);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(test_reload_keeps_the_old_context_when_a_file_is_bad)
{
    char err[512] = "";
    ck_assert_int_eq(tls_ctx_reload(ctx, err, sizeof(err)), 0);
    char saved[160];
    snprintf(saved, sizeof(saved), "%s/saved.pem", dir);
    ck_assert_int_eq(rename(cert, saved), 0);
    ck_assert_int_eq(tls_ctx_reload(ctx, err, sizeof(err)), -1);
    ck_assert_int_eq(rename(saved, cert), 0);
    ck_assert_msg(strstr(err, "No such file or directory") != NULL, "%s", err);
    pair_open(0);   /* still serving with what it had */
    handshake();
    char about[512];
    tls_ctx_describe(ctx, about, sizeof(about));
    ck_assert_msg(strstr(about, "subject=\"/CN=localhost\"") != NULL, "%s", about);
}
END_TEST

START_TEST(test_new_refuses_bad_min_version)
{
    char err[128];
    ck_assert_ptr_null(tls_ctx_new(cert, key, "1.1", 1, err, sizeof(err)));
    ck_assert_msg(strstr(err, "1.2 or 1.3") != NULL, "%s", err);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("transport_tls");
    TCase *tc = tcase_create("transport_tls");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_gathered_writes_cut_short_arrive_whole);
    tcase_add_test(tc, test_buffered_input_is_reported);
    tcase_add_test(tc, test_end_of_stream_both_ways);
    tcase_add_test(tc, test_file_sent_in_records);
    tcase_add_test(tc, test_plain_http_answered_in_clear);
    tcase_add_test(tc, test_refuse_sends_an_alert);
    tcase_add_test(tc, test_reload_keeps_the_old_context_when_a_file_is_bad);
    tcase_add_test(tc, test_new_refuses_bad_min_version);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (make_cert() < 0) {
        fprintf(stderr, "cannot make a test certificate with the openssl command in %s\n", dir);
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
