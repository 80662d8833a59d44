/* test_conn: the connection state machine (src/conn.c, conn_http.c,
 * conn_ws.c) driven over a socketpair with a real loop and a stand-in for the
 * server: the harness plays the conn_env callbacks (a request handler, the
 * flush list, the closed and dead reports) and runs the safe point before
 * each wait as the server does. Covers HTTP responses, the upgrade, messages
 * in and out, the closing handshake from either side, the re-entrancy rule
 * (the endpoint hears of a close only at the safe point, once), a slow
 * consumer cut, an abort while output is queued, the per-wake-up work
 * budget that slices one sender's input, request bodies read in pieces, and
 * deferred answers (given late, expired, or owed to a peer that left). */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "response.h"

#define RX_SIZE (8192 + 65536)
#define MAX_MSGS 200000

static struct {
    struct loop *loop;
    struct conn_env env;
    struct conn_limits lim;
    struct conn_stats stats;
    struct response_date date;
    struct transport tp;
    uint8_t rx[RX_SIZE];
    void *mem;
    struct conn *c;
    int peer;
    int want_flush, closed, dead, stop;
    int requests;
    int upgrade;                 /* the request handler upgrades to the test endpoint */
    int opened, ep_closed;
    int closed_during_call;      /* endpoint.close ran inside a conn_close call */
    int in_close_call;
    size_t msgs;
    uint32_t msg_tags[MAX_MSGS];
    size_t charge;               /* units charged per message */
    int echo;
    int bodies;                  /* the request handler reads bodies and echoes them */
    int defer;                   /* the request handler defers its answer (ms to wait) */
    int expired, answer_on_expiry;
    char body[256];
    int flush_requests;          /* want_flush calls */
    struct conn_tx tx;
    struct loop_timer stop_timer;
} H;

static void ep_open(void *ctx, struct conn *c, const struct http_request *req)
{
    (void)ctx;
    (void)c;
    (void)req;
    H.opened++;
}

static void ep_message(void *ctx, struct conn *c, enum ws_opcode op, uint8_t *data, size_t len)
{
    (void)ctx;
    if (H.msgs < MAX_MSGS) {
        uint32_t tag = 0;
        memcpy(&tag, data, len < 4 ? len : 4);
        H.msg_tags[H.msgs] = tag;
    }
    H.msgs++;
    if (H.charge)
        conn_charge(c, H.charge);
    if (H.echo)
        ck_assert_int_eq(conn_send(c, op, data, len), 0);
}

static void ep_close(void *ctx, struct conn *c)
{
    (void)ctx;
    (void)c;
    H.ep_closed++;
    if (H.in_close_call)
        H.closed_during_call = 1;
}

static const struct endpoint test_ep = {
    .name = "test", .open = ep_open, .message = ep_message, .close = ep_close,
};

static void ep_expired(void *ctx, struct conn *c)
{
    (void)ctx;
    H.expired++;
    if (H.answer_on_expiry)
        conn_http_text(c, 504, "too late", NULL, 1);
}

static const struct endpoint http_ep = {.name = "http", .expired = ep_expired, .close = ep_close};

/* Asks for the body when the request has one it has not read yet; returns 1
 * when the request is whole (and keeps its body in H.body). */
static int whole_request(struct conn *c, const struct http_request *req)
{
    const struct http_slice *cl = http_header_get(req, "Content-Length");
    size_t n = cl ? (size_t)strtoul(cl->p, NULL, 10) : 0;
    if (n && !req->body.p) {
        conn_http_read_body(c, n);
        return 0;
    }
    ck_assert_uint_eq(req->body.n, n);
    ck_assert_uint_lt(n, sizeof(H.body));
    memcpy(H.body, req->body.p ? req->body.p : "", n);
    H.body[n] = '\0';
    return 1;
}

static void on_request(void *ctx, struct conn *c, const struct http_request *req)
{
    (void)ctx;
    H.requests++;
    if (H.bodies && !whole_request(c, req))
        return;
    if (H.defer)
        conn_http_defer(c, &http_ep, NULL, (unsigned)H.defer);
    else if (H.bodies)
        conn_http_text(c, 200, H.body, NULL, 1);
    else if (H.upgrade)
        conn_upgrade(c, &test_ep, req, (struct http_slice){"", 0}, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    else
        conn_http_text(c, 200, "hello", NULL, 1);
}

static void on_want_flush(void *ctx, struct conn *c)
{
    (void)ctx;
    (void)c;
    H.want_flush = 1;
    H.flush_requests++;
}

static void on_closed(void *ctx, struct conn *c)
{
    (void)ctx;
    (void)c;
    H.closed++;
}

static void on_dead(void *ctx, struct conn *c)
{
    (void)ctx;
    (void)c;
    H.dead++;
}

/* The server's safe point, reduced to one connection: tell the endpoint of a
 * close, flush, and repeat while either has more to do. */
static void safe_point(struct loop *l, void *data)
{
    (void)data;
    while (H.closed || H.want_flush) {
        if (H.closed) {
            H.closed = 0;
            conn_detach_endpoint(H.c);
        }
        if (H.want_flush) {
            H.want_flush = 0;
            conn_flush(H.c);
            break;   /* one flush per iteration, as a sliced pass would */
        }
    }
    if (H.stop)
        loop_stop(l);
}

static void on_stop_timer(struct loop *l, struct loop_timer *t)
{
    (void)l;
    (void)t;
    H.stop = 1;
}

/* Runs the loop for about ms milliseconds. */
static void run_for(unsigned ms)
{
    H.stop = 0;
    H.stop_timer.cb = on_stop_timer;
    loop_timer_after(H.loop, &H.stop_timer, ms);
    loop_run(H.loop);
}

static void setup(void)
{
    memset(&H, 0, sizeof(H));
    H.loop = loop_new();
    ck_assert_ptr_nonnull(H.loop);
    H.lim = (struct conn_limits){.handshake_timeout = 1, .close_timeout = 2, .max_message = 1 << 20,
                                 .max_head = 8192, .max_body = 200};
    H.tp = (struct transport){.ops = &transport_tcp_ops};
    H.env = (struct conn_env){.loop = H.loop, .rx = H.rx, .rx_size = RX_SIZE, .tx = &H.tx, .limits = &H.lim,
                              .stats = &H.stats, .transport = &H.tp, .date = &H.date,
                              .request = on_request, .want_flush = on_want_flush, .closed = on_closed,
                              .dead = on_dead};
    loop_set_before_wait(H.loop, safe_point, NULL);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    H.peer = sv[1];
    H.mem = calloc(1, conn_size());
    H.c = conn_init(H.mem, &H.env, sv[0]);
    ck_assert_ptr_nonnull(H.c);
}

static void teardown(void)
{
    conn_abort(H.c);
    if (H.closed)
        conn_detach_endpoint(H.c);
    free(H.mem);
    close(H.peer);
    loop_free(H.loop);
}

static void peer_send(const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        ssize_t n = send(H.peer, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            run_for(1);
            continue;
        }
        ck_assert_int_gt(n, 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Reads what the server sent within about ms milliseconds. */
static size_t peer_read(uint8_t *out, size_t cap, unsigned ms)
{
    size_t got = 0;
    for (unsigned waited = 0; waited <= ms && got < cap; waited += 5) {
        run_for(5);
        ssize_t n;
        while (got < cap && (n = recv(H.peer, out + got, cap - got, 0)) > 0)
            got += (size_t)n;
    }
    return got;
}

/* A masked client frame. Returns its length. */
static size_t client_frame(uint8_t *out, unsigned op, const void *payload, size_t len)
{
    static const uint8_t key[4] = {1, 2, 3, 4};
    size_t h = 0;
    out[h++] = (uint8_t)(0x80 | op);
    if (len < 126) {
        out[h++] = (uint8_t)(0x80 | len);
    } else {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    }
    memcpy(out + h, key, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        out[h + i] = ((const uint8_t *)payload)[i] ^ key[i % 4];
    return h + len;
}

static const char UPGRADE[] = "GET /t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/* Upgrades the connection and reads the 101. */
static void open_ws(void)
{
    H.upgrade = 1;
    peer_send(UPGRADE, sizeof(UPGRADE) - 1);
    uint8_t buf[512];
    size_t n = peer_read(buf, sizeof(buf), 50);
    ck_assert_uint_gt(n, 12);
    ck_assert_mem_eq(buf, "HTTP/1.1 101", 12);
    ck_assert_int_eq(H.opened, 1);
    ck_assert(conn_is_open(H.c));
}

/* Finds the close frame in a server byte stream; returns its code or -1. */
static int close_code_in(const uint8_t *b, size_t n)
{
    size_t i = 0;
    while (i + 2 <= n) {
        unsigned op = b[i] & 0x0F;
        size_t len = b[i + 1] & 0x7F, h = 2;
        if (len == 126) {
            if (i + 4 > n)
                return -1;
            len = (size_t)b[i + 2] << 8 | b[i + 3];
            h = 4;
        } else if (len == 127) {
            if (i + 10 > n)
                return -1;
            len = 0;
            for (int k = 0; k < 8; k++)
                len = len << 8 | b[i + 2 + k];
            h = 10;
        }
        if (i + h + len > n)
            return -1;
        if (op == 0x8)
            return len >= 2 ? (b[i + h] << 8 | b[i + h + 1]) : 1005;
        i += h + len;
    }
    return -1;
}

START_TEST(test_http_response_keep_alive)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    peer_send(req, sizeof(req) - 1);
    uint8_t buf[2048];
    size_t n = peer_read(buf, sizeof(buf), 50);
    buf[n < sizeof(buf) ? n : sizeof(buf) - 1] = 0;
    ck_assert_int_eq(H.requests, 2);
    const char *second = strstr((char *)buf + 1, "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(strstr((char *)buf, "HTTP/1.1 200 OK\r\n"));
    ck_assert_ptr_nonnull(second);
    ck_assert_ptr_nonnull(strstr((char *)buf, "Connection: keep-alive\r\n"));
    ck_assert_ptr_nonnull(strstr((char *)buf, "\r\n\r\nhello\n"));
    ck_assert_int_eq(H.dead, 0);
    ck_assert_uint_eq(H.stats.http, 1);
}
END_TEST

START_TEST(test_head_has_no_body)
{
    static const char req[] = "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n";
    peer_send(req, sizeof(req) - 1);
    uint8_t buf[1024];
    size_t n = peer_read(buf, sizeof(buf) - 1, 50);
    buf[n] = 0;
    ck_assert_ptr_nonnull(strstr((char *)buf, "Content-Length: 6\r\n"));
    ck_assert_msg(n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0, "a body followed the HEAD response");
}
END_TEST

START_TEST(test_message_in_and_echo_out)
{
    open_ws();
    H.echo = 1;
    uint8_t f[64];
    size_t n = client_frame(f, 0x1, "ping", 4);
    peer_send(f, n);
    uint8_t buf[64];
    size_t got = peer_read(buf, 6, 50);
    ck_assert_uint_eq(got, 6);
    ck_assert_uint_eq(buf[0], 0x81);
    ck_assert_uint_eq(buf[1], 4);
    ck_assert_mem_eq(buf + 2, "ping", 4);
    ck_assert_uint_eq(H.stats.messages_in, 1);
    ck_assert_uint_eq(H.stats.messages_out, 1);
}
END_TEST

/* A reply from inside the message handler leaves at the end of its read,
 * without going through the queue; a pong queued between two echoes of the
 * same read moves the first echo to the queue ahead of it, so the three
 * frames keep their order. */
START_TEST(test_cork_keeps_order)
{
    open_ws();
    H.echo = 1;
    int flushes = H.flush_requests;
    uint8_t f[64], buf[64];
    size_t n = client_frame(f, 0x1, "x", 1);
    peer_send(f, n);
    ck_assert_uint_eq(peer_read(buf, 3, 50), 3);
    ck_assert_mem_eq(buf, "\x81\x01x", 3);
    ck_assert_int_eq(H.flush_requests, flushes);   /* written straight from the cork */
    n = client_frame(f, 0x1, "a1", 2);
    n += client_frame(f + n, 0x9, "p", 1);
    n += client_frame(f + n, 0x1, "b2", 2);
    peer_send(f, n);
    ck_assert_uint_eq(peer_read(buf, 11, 50), 11);
    ck_assert_mem_eq(buf, "\x81\x02" "a1" "\x8a\x01p" "\x81\x02" "b2", 11);
    ck_assert_uint_eq(H.stats.messages_out, 3);
}
END_TEST

/* A reply larger than the cork goes through the queue, whole. */
START_TEST(test_reply_larger_than_cork)
{
    enum { LEN = CONN_TX_SIZE + 1000 };
    static uint8_t payload[LEN], f[LEN + 8], buf[LEN + 4];
    open_ws();
    H.echo = 1;
    for (size_t i = 0; i < LEN; i++)
        payload[i] = (uint8_t)(i * 7);
    size_t n = client_frame(f, 0x2, payload, LEN);
    peer_send(f, n);
    ck_assert_uint_eq(peer_read(buf, LEN + 4, 200), LEN + 4);
    ck_assert_uint_eq(buf[0], 0x82);
    ck_assert_uint_eq(buf[1], 126);
    ck_assert_uint_eq((buf[2] << 8) | buf[3], LEN);
    ck_assert_mem_eq(buf + 4, payload, LEN);
}
END_TEST

START_TEST(test_peer_initiated_close)
{
    open_ws();
    uint8_t f[64];
    uint8_t code[2] = {0x03, 0xE8};
    size_t n = client_frame(f, 0x8, code, 2);
    peer_send(f, n);
    uint8_t buf[64];
    size_t got = peer_read(buf, sizeof(buf), 50);
    ck_assert_int_eq(close_code_in(buf, got), 1000);
    ck_assert_int_eq(H.ep_closed, 1);
    ck_assert(!conn_is_open(H.c));
    ck_assert_int_eq(conn_send(H.c, WS_OP_TEXT, "late", 4), -1);
    shutdown(H.peer, SHUT_WR);   /* the peer drops TCP: the connection ends */
    peer_read(buf, sizeof(buf), 30);
    ck_assert_int_eq(H.dead, 1);
    ck_assert_int_eq(H.ep_closed, 1);
    ck_assert_uint_eq(H.stats.closed[CONN_CLOSE_NORMAL], 1);
    ck_assert_uint_eq(H.stats.websocket, 0);
}
END_TEST

START_TEST(test_close_tells_endpoint_only_at_safe_point)
{
    open_ws();
    H.in_close_call = 1;
    conn_close(H.c, WS_CLOSE_GOING_AWAY, "bye");
    H.in_close_call = 0;
    ck_assert_int_eq(H.closed_during_call, 0);
    ck_assert_int_eq(H.ep_closed, 0);      /* not yet: the safe point has not run */
    ck_assert_int_eq(H.closed, 1);         /* but the server was told */
    conn_close(H.c, WS_CLOSE_NORMAL, "again");   /* a second close is a no-op */
    uint8_t buf[64];
    size_t got = peer_read(buf, sizeof(buf), 30);
    ck_assert_int_eq(close_code_in(buf, got), 1001);
    ck_assert_int_eq(H.ep_closed, 1);
    ck_assert_int_eq(H.dead, 0);           /* waiting for the peer's close */
}
END_TEST

START_TEST(test_cut_drops_unsent_and_closes_1008)
{
    int small = 4096;
    setsockopt(H.peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    open_ws();
    static uint8_t big[60000];
    memset(big, 'x', sizeof(big));
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(conn_send(H.c, WS_OP_BINARY, big, sizeof(big)), 0);
    run_for(5);
    size_t before = conn_backlog(H.c);
    ck_assert_uint_gt(before, 1000000);
    conn_cut(H.c, "slow");
    ck_assert_uint_lt(conn_backlog(H.c), 2 * sizeof(big));   /* at most the half-sent head and the close */
    static uint8_t stream[4 << 20];
    size_t got = peer_read(stream, sizeof(stream), 200);
    ck_assert_int_eq(close_code_in(stream, got), 1008);
    ck_assert_uint_eq(H.stats.closed[CONN_CLOSE_SLOW], 0);   /* counted when it ends */
    ck_assert_int_eq(H.ep_closed, 1);
}
END_TEST

START_TEST(test_abort_while_output_queued)
{
    open_ws();
    static uint8_t big[60000];
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(conn_send(H.c, WS_OP_BINARY, big, sizeof(big)), 0);
    close(H.peer);   /* the peer vanishes with output queued */
    H.peer = -1;
    run_for(30);
    ck_assert_int_eq(H.dead, 1);
    ck_assert_int_eq(H.ep_closed, 1);
    ck_assert_uint_eq(conn_backlog(H.c), 0);
    ck_assert_uint_eq(H.stats.closed[CONN_CLOSE_ERROR], 1);
    conn_close(H.c, WS_CLOSE_NORMAL, NULL);   /* harmless on a dead connection */
    conn_cut(H.c, "x");
    ck_assert_int_eq(H.ep_closed, 1);
}
END_TEST

START_TEST(test_work_budget_slices_input_in_order)
{
    open_ws();
    H.charge = 1000;   /* each message fans out to a thousand */
    enum { N = 2000 };
    static uint8_t burst[N * 10];
    size_t n = 0;
    for (uint32_t i = 0; i < N; i++)
        n += client_frame(burst + n, 0x2, &i, 4);
    peer_send(burst, n);
    H.stop = 0;
    /* one wake-up: the reads stop at the budget, well before the end */
    run_for(1);
    ck_assert_uint_gt(H.msgs, 0);
    ck_assert_uint_lt(H.msgs, N);
    uint8_t sink[256];
    peer_read(sink, sizeof(sink), 300);
    ck_assert_uint_eq(H.msgs, N);
    for (uint32_t i = 0; i < N; i++)
        ck_assert_uint_eq(H.msg_tags[i], i);
}
END_TEST

START_TEST(test_body_read_in_pieces_then_pipelined)
{
    static const char req[] = "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world"
                              "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
    uint8_t buf[1024];
    H.bodies = 1;
    for (size_t i = 0; i < 60; i += 6) {   /* the first head and body, six bytes at a time */
        peer_send(req + i, 6);
        run_for(2);
    }
    ck_assert_int_eq(H.requests, 2);   /* the head, then the head with its body */
    ck_assert_str_eq(H.body, "hello world");
    peer_send(req + 60, sizeof(req) - 1 - 60);
    size_t n = peer_read(buf, sizeof(buf) - 1, 50);
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr((char *)buf, "hello world\n"));
    ck_assert_ptr_nonnull(strstr((char *)buf, "\r\n\r\nabc\n"));
    ck_assert_int_eq(H.requests, 4);
}
END_TEST

START_TEST(test_body_over_limit_refused)
{
    static const char req[] = "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 201\r\n\r\n";
    uint8_t buf[512];
    H.bodies = 1;
    peer_send(req, sizeof(req) - 1);
    size_t n = peer_read(buf, sizeof(buf), 50);
    ck_assert_uint_gt(n, 12);
    ck_assert_mem_eq(buf, "HTTP/1.1 413", 12);
}
END_TEST

static const char GET[] = "GET /d HTTP/1.1\r\nHost: x\r\n\r\n";

START_TEST(test_deferred_answer_then_next_request)
{
    uint8_t buf[1024];
    H.defer = 5000;
    peer_send(GET, sizeof(GET) - 1);
    peer_send(GET, sizeof(GET) - 1);   /* pipelined: waits for the first answer */
    ck_assert_uint_eq(peer_read(buf, sizeof(buf), 30), 0);
    ck_assert_int_eq(H.requests, 1);
    H.defer = 0;
    conn_http_text(H.c, 200, "late", NULL, 1);
    size_t n = peer_read(buf, sizeof(buf) - 1, 50);
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr((char *)buf, "late\n"));
    ck_assert_ptr_nonnull(strstr((char *)buf, "hello\n"));
    ck_assert_int_eq(H.requests, 2);
    ck_assert_int_eq(H.ep_closed, 0);
}
END_TEST

START_TEST(test_deferred_peer_gone_tells_endpoint_once)
{
    uint8_t buf[64];
    H.defer = 5000;
    peer_send(GET, sizeof(GET) - 1);
    run_for(10);
    ck_assert_int_eq(H.ep_closed, 0);
    shutdown(H.peer, SHUT_WR);
    peer_read(buf, sizeof(buf), 30);
    ck_assert_int_eq(H.ep_closed, 1);
    ck_assert_int_eq(H.dead, 1);
}
END_TEST

START_TEST(test_deferred_expiry)
{
    uint8_t buf[512];
    H.defer = 30;
    H.answer_on_expiry = 1;
    peer_send(GET, sizeof(GET) - 1);
    size_t n = peer_read(buf, sizeof(buf), 100);
    ck_assert_int_eq(H.expired, 1);
    ck_assert_uint_gt(n, 12);
    ck_assert_mem_eq(buf, "HTTP/1.1 504", 12);
    ck_assert_int_eq(H.dead, 0);
    H.answer_on_expiry = 0;   /* unanswered: the connection ends, its endpoint told */
    peer_send(GET, sizeof(GET) - 1);
    peer_read(buf, sizeof(buf), 100);
    ck_assert_int_eq(H.expired, 2);
    ck_assert_int_eq(H.dead, 1);
    ck_assert_int_eq(H.ep_closed, 1);
}
END_TEST

START_TEST(test_handshake_timeout_closes_http)
{
    peer_send("GET", 3);   /* a request head that never ends */
    uint8_t buf[16];
    peer_read(buf, sizeof(buf), 500);
    ck_assert_int_eq(H.dead, 0);
    peer_read(buf, sizeof(buf), 900);
    ck_assert_int_eq(H.dead, 1);
    ck_assert_uint_eq(H.stats.closed[CONN_CLOSE_IDLE], 1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("conn");
    TCase *tc = tcase_create("conn");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_http_response_keep_alive);
    tcase_add_test(tc, test_head_has_no_body);
    tcase_add_test(tc, test_message_in_and_echo_out);
    tcase_add_test(tc, test_peer_initiated_close);
    tcase_add_test(tc, test_close_tells_endpoint_only_at_safe_point);
    tcase_add_test(tc, test_cut_drops_unsent_and_closes_1008);
    tcase_add_test(tc, test_abort_while_output_queued);
    tcase_add_test(tc, test_work_budget_slices_input_in_order);
    tcase_add_test(tc, test_handshake_timeout_closes_http);
    tcase_add_test(tc, test_body_read_in_pieces_then_pipelined);
    tcase_add_test(tc, test_body_over_limit_refused);
    tcase_add_test(tc, test_deferred_answer_then_next_request);
    tcase_add_test(tc, test_deferred_peer_gone_tells_endpoint_once);
    tcase_add_test(tc, test_deferred_expiry);
    tcase_add_test(tc, test_cork_keeps_order);
    tcase_add_test(tc, test_reply_larger_than_cork);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
