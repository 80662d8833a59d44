/* conn: one client socket from accept to close. Reads into the server's
 * shared receive buffer, keeps only the unparsed remainder, runs the HTTP and
 * frame parsers, hands whole messages to the endpoint, queues output, and owns
 * the single path by which a connection ends (conn_abort). Never blocks. */
#include "conn.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "request.h"
#include "server.h"

enum {
    CF_FINISH = 1u << 1,      /* close once the queue is written */
    CF_WR_SHUT = 1u << 2,     /* our side of TCP is shut down */
    CF_READ_OFF = 1u << 3,    /* reading paused until output drains */
    CF_PEER_EOF = 1u << 4,    /* the peer shut down its side */
    CF_PEER_CLOSED = 1u << 5, /* the peer's close frame arrived */
    CF_EP_OPEN = 1u << 6,     /* ep->open ran and ep->close has not */
    CF_HEAD_ONLY = 1u << 7,   /* answering a HEAD request */
    CF_WAS_WS = 1u << 8,      /* upgraded: counted as a WebSocket */
};

#define FLUSH_BUDGET (1024u * 1024u)     /* bytes written per connection per wake-up */
#define WS_PAUSE_BACKLOG (1024u * 1024u) /* stop reading a WebSocket with this much unsent */
#define HTTP_PIPELINE_MAX 8              /* queued items before pipelined requests wait */

static void on_io(struct loop *l, struct loop_io *io, uint32_t events);
static void arm_timer(struct conn *c);
static void on_timer(struct loop *l, struct loop_timer *t);
static void process_buffered(struct conn *c);

struct conn *conn_new(struct server *srv, int fd)
{
    struct conn *c = pool_alloc(&srv->conn_pool);
    if (!c) {
        close(fd);
        return NULL;
    }
    c->srv = srv;
    c->io.fd = fd;
    c->io.cb = on_io;
    c->timer.cb = on_timer;
    c->state = CONN_HTTP;
    if (loop_io_add(srv->loop, &c->io, LOOP_READ) < 0) {
        close(fd);
        pool_free(&srv->conn_pool, c);
        return NULL;
    }
    srv->stats.conns_http++;
    arm_timer(c);
    return c;
}

size_t conn_backlog(const struct conn *c)
{
    return c->out.bytes;
}

/* Tells the endpoint, once, that the connection is leaving. */
static void leave_endpoint(struct conn *c)
{
    if (c->flags & CF_EP_OPEN) {
        c->flags &= (uint16_t)~CF_EP_OPEN;
        if (c->ep->close)
            c->ep->close(c);
    }
}

void conn_abort(struct conn *c)
{
    if (c->state == CONN_DEAD)
        return;
    leave_endpoint(c);
    struct stats *st = &c->srv->stats;
    st->closed[c->why]++;
    if (c->flags & CF_WAS_WS)
        st->conns_ws--;
    else
        st->conns_http--;
    loop_io_del(c->srv->loop, &c->io);
    close(c->io.fd);
    loop_timer_cancel(c->srv->loop, &c->timer);
    outq_clear(&c->out);
    buf_free(&c->in);
    buf_free(&c->msg);
    c->state = CONN_DEAD;
    server_conn_dead(c->srv, c);
}

/* Counts text and binary frames as messages sent. */
static void count_out(struct conn *c, const struct sbuf *frame)
{
    unsigned op = frame->data[0] & 0x0Fu;
    if (op == WS_OP_TEXT || op == WS_OP_BINARY)
        c->srv->stats.messages_out++;
}

static int queue(struct conn *c, struct sbuf *s)
{
    int rc = outq_push(&c->out, s, 0);
    sbuf_unref(s);
    if (rc == 0)
        server_want_flush(c->srv, c);
    return rc;
}

int conn_send_frame(struct conn *c, struct sbuf *frame)
{
    if (c->state != CONN_WS)
        return -1;
    if (outq_push(&c->out, frame, 0) < 0)
        return -1;
    count_out(c, frame);
    server_want_flush(c->srv, c);
    return 0;
}

struct sbuf *conn_frame_new(enum ws_opcode op, const void *payload, size_t len)
{
    struct sbuf *s = sbuf_new(ws_header_len(len) + len);
    if (!s)
        return NULL;
    size_t h = ws_encode_header(s->data, op, len);
    if (len)
        memcpy(s->data + h, payload, len);
    return s;
}

static int send_frame(struct conn *c, enum ws_opcode op, const void *data, size_t len)
{
    struct sbuf *s = conn_frame_new(op, data, len);
    if (!s)
        return -1;
    count_out(c, s);
    return queue(c, s);
}

int conn_send(struct conn *c, enum ws_opcode op, const void *data, size_t len)
{
    if (c->state != CONN_WS)
        return -1;
    return send_frame(c, op, data, len);
}

/* From now on, no more input is processed; the connection ends once the queue
 * is written (and, for our own FIN, the peer closes or close_timeout passes). */
static void finish(struct conn *c)
{
    c->state = CONN_CLOSING;
    c->flags |= CF_FINISH;
    arm_timer(c);
    server_want_flush(c->srv, c);
}

/* Why a close with this code ends the connection, unless the closer says. */
static enum stats_close why_for_code(uint16_t code)
{
    switch (code) {
    case WS_CLOSE_PROTOCOL:
    case WS_CLOSE_UNSUPPORTED:
    case WS_CLOSE_INVALID_DATA: return STATS_CLOSE_PROTOCOL;
    case WS_CLOSE_TOO_BIG: return STATS_CLOSE_LIMIT;
    case WS_CLOSE_INTERNAL: return STATS_CLOSE_ERROR;
    default: return STATS_CLOSE_NORMAL;
    }
}

/* Queues the close frame and enters the closing state; 0 or -1 (aborted). */
static int send_close(struct conn *c, uint16_t code, const char *reason, enum stats_close why)
{
    uint8_t payload[WS_MAX_CONTROL_PAYLOAD];
    size_t n = ws_encode_close_payload(payload, code, reason);
    c->why = (uint8_t)why;
    if (send_frame(c, WS_OP_CLOSE, payload, n) < 0) {
        conn_abort(c);
        return -1;
    }
    if (why != STATS_CLOSE_NORMAL && why != STATS_CLOSE_SHUTDOWN)
        log_msg(LOG_DEBUG, "conn close fd=%d code=%u reason=\"%s\"", c->io.fd, code, reason ? reason : "");
    finish(c);
    return 0;
}

void conn_close_why(struct conn *c, uint16_t code, const char *reason, enum stats_close why)
{
    if (c->state == CONN_WS) {
        if (send_close(c, code, reason, why) == 0)
            leave_endpoint(c);
    } else if (c->state == CONN_HTTP) {
        c->why = (uint8_t)why;
        finish(c);
    }
}

void conn_close(struct conn *c, uint16_t code, const char *reason)
{
    conn_close_why(c, code, reason, why_for_code(code));
}

void conn_shutdown(struct conn *c)
{
    if (c->state == CONN_WS) {
        send_close(c, WS_CLOSE_GOING_AWAY, "server shutting down", STATS_CLOSE_SHUTDOWN);
    } else if (c->state == CONN_HTTP) {
        c->why = STATS_CLOSE_SHUTDOWN;
        if (outq_empty(&c->out) && c->in.len == 0)
            conn_abort(c);
        else
            finish(c);
    }
}

void conn_cut(struct conn *c, const char *reason)
{
    if (c->state != CONN_WS)
        return;   /* already closing: its close frame must not be dropped */
    outq_drop_unsent(&c->out);
    conn_close_why(c, WS_CLOSE_POLICY, reason, STATS_CLOSE_SLOW);
}

void conn_http_set_head_only(struct conn *c, int head_only)
{
    if (head_only)
        c->flags |= CF_HEAD_ONLY;
    else
        c->flags &= (uint16_t)~CF_HEAD_ONLY;
}

int conn_http_head(struct conn *c, int status, const char *headers, size_t content_length,
                   const void *body, int keep_alive)
{
    char head[1024];
    int n;
    if (status == 101) {
        n = snprintf(head, sizeof(head), "HTTP/1.1 101 Switching Protocols\r\n%s\r\n", headers);
    } else {
        char date[64];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nServer: wshub\r\nDate: %s\r\n%sContent-Length: %zu\r\n"
                     "Connection: %s\r\n\r\n",
                     status, http_status_text(status), date, headers, content_length,
                     keep_alive ? "keep-alive" : "close");
    }
    if (n < 0 || (size_t)n >= sizeof(head))
        return -1;
    size_t blen = (body && !(c->flags & CF_HEAD_ONLY)) ? content_length : 0;
    struct sbuf *s = sbuf_new((size_t)n + blen);
    if (!s)
        return -1;
    memcpy(s->data, head, (size_t)n);
    if (blen)
        memcpy(s->data + n, body, blen);
    if (queue(c, s) < 0)
        return -1;
    if (!keep_alive && c->state == CONN_HTTP)
        finish(c);
    return 0;
}

int conn_http_text(struct conn *c, int status, const char *text, const char *headers, int keep_alive)
{
    char body[512];
    int n = snprintf(body, sizeof(body), "%s\n", text);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = 0;
    char hdrs[512];
    snprintf(hdrs, sizeof(hdrs), "Content-Type: text/plain; charset=utf-8\r\n%s", headers ? headers : "");
    if (status >= 400)
        log_msg(LOG_DEBUG, "http refuse fd=%d status=%d reason=\"%s\"", c->io.fd, status, text);
    if (!keep_alive && status >= 400)
        c->why = (uint8_t)(status == 413 || status == 431 || status == 503 ? STATS_CLOSE_LIMIT
                                                                           : STATS_CLOSE_PROTOCOL);
    return conn_http_head(c, status, hdrs, (size_t)n, body, keep_alive);
}

int conn_http_file(struct conn *c, int fd, size_t len)
{
    if (c->flags & CF_HEAD_ONLY) {
        close(fd);
        return 0;
    }
    if (outq_push_file(&c->out, fd, 0, len) < 0)
        return -1;
    server_want_flush(c->srv, c);
    return 0;
}

void conn_upgrade(struct conn *c, const struct endpoint *ep, const struct http_request *req,
                  const char *accept_key)
{
    c->ep = ep;
    const char *reason = NULL;
    int status = ep->accept ? ep->accept(c, req, &reason) : 0;
    if (status) {
        c->ep = NULL;
        conn_http_text(c, status, reason ? reason : "refused", NULL, 0);
        return;
    }
    c->flags |= CF_EP_OPEN;
    char headers[160];
    snprintf(headers, sizeof(headers),
             "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n", accept_key);
    if (conn_http_head(c, 101, headers, 0, NULL, 1) < 0) {
        conn_abort(c);
        return;
    }
    c->state = CONN_WS;
    c->flags |= CF_WAS_WS;
    c->srv->stats.conns_http--;
    c->srv->stats.conns_ws++;
    ws_parser_init(&c->ws, c->srv->cfg->max_message);
    c->last_rx_ms = c->last_ping_ms = (uint32_t)loop_now(c->srv->loop);
    arm_timer(c);
    if (ep->open)
        ep->open(c);
}

/* Whether input must wait until queued output drains. */
static int output_blocked(const struct conn *c)
{
    if (c->state == CONN_HTTP)
        return c->out.count >= HTTP_PIPELINE_MAX;
    return c->state == CONN_WS && c->out.bytes >= WS_PAUSE_BACKLOG;
}

static void update_events(struct conn *c)
{
    uint32_t mask = 0;
    if (!(c->flags & (CF_READ_OFF | CF_PEER_EOF)))
        mask |= LOOP_READ;
    if (!outq_empty(&c->out))
        mask |= LOOP_WRITE;
    if (loop_io_set(c->srv->loop, &c->io, mask) < 0)
        conn_abort(c);
}

/* Parses HTTP requests; returns bytes consumed. */
static size_t process_http(struct conn *c, uint8_t *data, size_t len)
{
    size_t used = 0;
    while (c->state == CONN_HTTP && used < len) {
        if (output_blocked(c)) {
            c->flags |= CF_READ_OFF;
            break;
        }
        struct http_request req;
        size_t scanned = c->http_scanned;
        long r = http_parse_request((const char *)data + used, len - used, &scanned,
                                    SERVER_MAX_HEAD, &req);
        c->http_scanned = (uint32_t)scanned;
        if (r == HTTP_INCOMPLETE)
            break;
        if (r == HTTP_ERROR) {
            conn_http_text(c, req.status, req.reason, NULL, 0);
            return len;
        }
        c->http_scanned = 0;
        request_handle(c, &req);
        used += (size_t)r;
        if (c->state == CONN_HTTP)
            arm_timer(c);   /* the next request gets a full handshake timeout */
    }
    return used;
}

static void deliver(struct conn *c, const struct ws_event *ev)
{
    if (ev->last)
        c->srv->stats.messages_in++;
    if (ev->first && ev->last) {
        c->ep->message(c, ev->opcode, ev->data, ev->len);
        return;
    }
    if (buf_append(&c->msg, ev->data, ev->len) < 0) {
        conn_close(c, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    if (ev->last) {
        c->ep->message(c, ev->opcode, c->msg.data, c->msg.len);
        buf_free(&c->msg);
    }
}

static void handle_control(struct conn *c, const struct ws_event *ev)
{
    if (ev->opcode == WS_OP_PING) {
        if (c->state == CONN_WS)
            send_frame(c, WS_OP_PONG, ev->data, ev->len);
    } else if (ev->opcode == WS_OP_CLOSE) {
        c->flags |= CF_PEER_CLOSED;
        if (c->state == CONN_WS) {
            uint16_t code = ev->len >= 2 ? (uint16_t)((ev->data[0] << 8) | ev->data[1]) : 0;
            conn_close_why(c, code, NULL, STATS_CLOSE_NORMAL);
        }
    }
}

/* Parses WebSocket frames; returns bytes consumed. While closing, it only
 * looks for the peer's close frame. */
static size_t process_ws(struct conn *c, uint8_t *data, size_t len)
{
    size_t used = 0;
    while (used < len) {
        if (c->state == CONN_DEAD || (c->flags & CF_PEER_CLOSED))
            return len;
        if (c->state == CONN_WS && output_blocked(c)) {
            c->flags |= CF_READ_OFF;
            return used;
        }
        struct ws_event ev;
        used += ws_parse(&c->ws, data + used, len - used, &ev);
        switch (ev.type) {
        case WS_EV_NEED_MORE:
            return used;
        case WS_EV_ERROR:
            conn_close(c, ev.close_code, ev.reason);
            return len;
        case WS_EV_DATA:
            if (c->state == CONN_WS)
                deliver(c, &ev);
            break;
        case WS_EV_CONTROL:
            handle_control(c, &ev);
            break;
        }
    }
    return used;
}

/* Runs the parser for the current state over data; returns bytes consumed. */
static size_t process(struct conn *c, uint8_t *data, size_t len)
{
    size_t used = 0;
    for (;;) {
        uint8_t state = c->state;
        size_t n;
        if (state == CONN_HTTP)
            n = process_http(c, data + used, len - used);
        else if (state == CONN_WS || (state == CONN_CLOSING && c->ep && !c->ws.failed))
            n = process_ws(c, data + used, len - used);
        else
            n = len - used;   /* closing after an error: input is discarded */
        used += n;
        if (c->state == state || c->state == CONN_DEAD || used == len)
            return c->state == CONN_DEAD ? len : used;
    }
}

/* Keeps the unparsed tail of data for the next read. */
static void keep_rest(struct conn *c, const uint8_t *rest, size_t n)
{
    c->in.len = 0;
    if (n == 0) {
        buf_free(&c->in);
    } else if (buf_append(&c->in, rest, n) < 0) {
        conn_abort(c);
    }
}

static void on_readable(struct conn *c, uint32_t events)
{
    struct server *srv = c->srv;
    if (c->flags & CF_READ_OFF) {   /* paused: only a dead socket matters */
        if (events & LOOP_ERROR)
            conn_abort(c);
        return;
    }
    size_t prefix = c->in.len;
    if (prefix > SERVER_MAX_HEAD) {   /* cannot happen while reading is allowed */
        conn_abort(c);
        return;
    }
    ssize_t n = recv(c->io.fd, srv->rx + prefix, sizeof(srv->rx) - prefix, 0);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            if (c->state == CONN_WS)
                c->why = STATS_CLOSE_ERROR;
            conn_abort(c);
        }
        return;
    }
    srv->stats.bytes_in += (uint64_t)n;
    if (c->state == CONN_WS)
        c->last_rx_ms = (uint32_t)loop_now(srv->loop);
    if (n == 0) {
        c->flags |= CF_PEER_EOF;
        if (c->state == CONN_WS)
            c->why = STATS_CLOSE_ERROR;   /* gone without a close frame */
        if (c->state == CONN_WS || outq_empty(&c->out)) {
            conn_abort(c);
            return;
        }
        c->flags |= CF_FINISH;
        c->state = CONN_CLOSING;
        update_events(c);
        return;
    }
    if (prefix)
        memcpy(srv->rx, c->in.data, prefix);
    size_t total = prefix + (size_t)n;
    size_t used = process(c, srv->rx, total);
    if (c->state == CONN_DEAD)
        return;
    keep_rest(c, srv->rx + used, total - used);
    if (c->flags & CF_READ_OFF)
        update_events(c);
}

/* Processes input kept while output was blocked, once it has drained. */
static void process_buffered(struct conn *c)
{
    c->flags &= (uint16_t)~CF_READ_OFF;
    if (c->in.len) {
        size_t used = process(c, c->in.data, c->in.len);
        if (c->state == CONN_DEAD)
            return;
        buf_consume(&c->in, used);
        if (c->in.len == 0)
            buf_free(&c->in);
    }
}

void conn_flush(struct conn *c)
{
    if (c->state == CONN_DEAD)
        return;
    if (!outq_empty(&c->out)) {
        ssize_t n = outq_write(&c->out, c->io.fd, FLUSH_BUDGET);
        if (n < 0) {
            if (c->state == CONN_WS)
                c->why = STATS_CLOSE_ERROR;
            conn_abort(c);
            return;
        }
        c->srv->stats.bytes_out += (uint64_t)n;
    }
    if ((c->flags & CF_READ_OFF) && !output_blocked(c)) {
        process_buffered(c);
        if (c->state == CONN_DEAD)
            return;
    }
    if (outq_empty(&c->out) && (c->flags & CF_FINISH)) {
        if (c->flags & CF_PEER_EOF) {
            conn_abort(c);
            return;
        }
        if (!(c->flags & CF_WR_SHUT)) {
            shutdown(c->io.fd, SHUT_WR);
            c->flags |= CF_WR_SHUT;
        }
    }
    update_events(c);
}

static void on_io(struct loop *l, struct loop_io *io, uint32_t events)
{
    (void)l;
    struct conn *c = container_of(io, struct conn, io);
    if (c->state == CONN_DEAD)
        return;
    if (events & LOOP_WRITE)
        conn_flush(c);
    if (c->state != CONN_DEAD && (events & ~(uint32_t)LOOP_WRITE))
        on_readable(c, events);
}

/* WebSocket keepalive: the timer fires at the next ping or idle deadline,
 * computed from when the peer last sent anything. Traffic only stores a
 * timestamp; a quiet connection costs one timer event per ping interval.
 * Timestamps are 32-bit loop milliseconds; differences are taken modulo 2^32,
 * which is right for any interval under 49 days (options stop at one). */
static uint32_t quiet_ms(const struct conn *c, uint32_t now)
{
    return now - c->last_rx_ms;
}

static uint32_t unpinged_ms(const struct conn *c, uint32_t now)
{
    uint32_t since_rx = now - c->last_rx_ms, since_ping = now - c->last_ping_ms;
    return since_rx < since_ping ? since_rx : since_ping;
}

static void arm_keepalive(struct conn *c)
{
    const struct config *cfg = c->srv->cfg;
    uint32_t now = (uint32_t)loop_now(c->srv->loop);
    uint64_t wait = UINT64_MAX;
    if (cfg->idle_timeout) {
        uint64_t idle = cfg->idle_timeout * 1000ull, q = quiet_ms(c, now);
        wait = q >= idle ? 0 : idle - q;
    }
    if (cfg->ping_interval) {
        uint64_t ping = cfg->ping_interval * 1000ull, u = unpinged_ms(c, now);
        uint64_t w = u >= ping ? 0 : ping - u;
        if (w < wait)
            wait = w;
    }
    if (wait == UINT64_MAX)
        loop_timer_cancel(c->srv->loop, &c->timer);
    else
        loop_timer_after(c->srv->loop, &c->timer, wait);
}

static void keepalive(struct conn *c)
{
    const struct config *cfg = c->srv->cfg;
    uint32_t now = (uint32_t)loop_now(c->srv->loop);
    if (cfg->idle_timeout && quiet_ms(c, now) >= cfg->idle_timeout * 1000ull) {
        conn_close_why(c, WS_CLOSE_GOING_AWAY, "idle timeout", STATS_CLOSE_IDLE);
        return;
    }
    if (cfg->ping_interval && unpinged_ms(c, now) >= cfg->ping_interval * 1000ull) {
        send_frame(c, WS_OP_PING, NULL, 0);
        c->last_ping_ms = now;
        c->srv->stats.pings_sent++;
    }
    arm_keepalive(c);
}

/* The HTTP state's timer bounds the wait for a request head; the closing
 * state's bounds the wait for the peer's close. Either is extended while
 * queued output is still making progress (a slow download is not a stall). */
static void arm_timer(struct conn *c)
{
    if (c->state == CONN_WS) {
        arm_keepalive(c);
        return;
    }
    const struct config *cfg = c->srv->cfg;
    unsigned seconds = c->state == CONN_HTTP ? cfg->handshake_timeout : cfg->close_timeout;
    c->timer_mark = c->out.sent;
    if (c->state == CONN_HTTP && seconds == 0)
        loop_timer_cancel(c->srv->loop, &c->timer);
    else
        loop_timer_after(c->srv->loop, &c->timer, seconds * 1000ull);
}

static void on_timer(struct loop *l, struct loop_timer *t)
{
    (void)l;
    struct conn *c = container_of(t, struct conn, timer);
    if (c->state == CONN_WS) {
        keepalive(c);
        return;
    }
    if (!outq_empty(&c->out) && c->out.sent != c->timer_mark) {
        arm_timer(c);
        return;
    }
    if (c->state == CONN_HTTP) {
        log_msg(LOG_DEBUG, "conn timeout fd=%d state=http", c->io.fd);
        c->why = STATS_CLOSE_IDLE;
    }
    conn_abort(c);
}
