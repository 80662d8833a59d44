/* conn_ws: the WebSocket session on a connection: the upgrade (with the
 * permessage-deflate negotiation), frames in (whole messages to the endpoint,
 * reassembled when fragmented, inflated when compressed), control frames, the
 * closing handshake, keepalive pings and the idle timeout, and frames out
 * (compressed for a connection that negotiated it). Never calls the endpoint
 * for a connection that has left, and never from inside conn_close (see the
 * re-entrancy rule in conn.h); holds inflate state only while a compressed
 * message is arriving. */
#include "conn_priv.h"

#include <stdio.h>

#include "log.h"
#include "pmd.h"
#include "pmdz.h"

/* Counts text and binary frames as messages sent. */
static void count_out(struct conn *c, unsigned op)
{
    if (op == WS_OP_TEXT || op == WS_OP_BINARY)
        conn_stats(c)->messages_out++;
}

int conn_send_frame(struct conn *c, struct sbuf *frame)
{
    if (c->state != CONN_WS)
        return -1;
    if (c->env->tx && c->env->tx->owner == c && conn_uncork(c) < 0)
        return -1;
    struct sbuf *f = c->deflate_bits ? pmdz_shared(c->env->limits->deflate, c->deflate_bits, frame)
                                     : sbuf_ref(frame);
    int rc = outq_push(&c->out, f, 0);
    if (rc == 0) {
        count_out(c, f->data[0] & 0x0Fu);
        conn_want_flush(c);
    }
    sbuf_unref(f);
    return rc;
}

static int send_frame(struct conn *c, enum ws_opcode op, const void *data, size_t len)
{
    struct sbuf *s = ws_frame_new(op, data, len);
    if (!s)
        return -1;
    count_out(c, op);
    return conn_queue(c, s);
}

int conn_send(struct conn *c, enum ws_opcode op, const void *data, size_t len)
{
    if (c->state != CONN_WS)
        return -1;
    if (!c->deflate_bits) {
        int corked = conn_cork_frame(c, op, data, len);
        if (corked == 0)
            count_out(c, op);
        return corked == 1 ? send_frame(c, op, data, len) : corked;
    }
    struct sbuf *s = pmdz_frame(c->env->limits->deflate, c->deflate_bits, op, data, len);
    if (!s)
        return -1;
    count_out(c, op);
    return conn_queue(c, s);
}

/* Drops the inflate state of a compressed message that will not be finished. */
static void drop_inflating(struct conn *c)
{
    if (c->spill) {
        pmdz_msg_free(c->spill->inflating);
        c->spill->inflating = NULL;
        conn_spill_trim(c);
    }
}

/* Hands the message put together in the spill to the endpoint, then frees it
 * (the endpoint may have ended the connection, and its spill with it). */
static void deliver_assembled(struct conn *c, uint8_t opcode)
{
    c->ep->message(c->ep->ctx, c, opcode, c->spill->msg.data, c->spill->msg.len);
    if (c->spill) {
        buf_free(&c->spill->msg);
        conn_spill_trim(c);
    }
}

int conn_ws_send_close(struct conn *c, uint16_t code, const char *reason, enum conn_close_why why)
{
    uint8_t payload[WS_MAX_CONTROL_PAYLOAD];
    size_t n = ws_encode_close_payload(payload, code, reason);
    c->why = (uint8_t)why;
    drop_inflating(c);   /* no message is delivered from now on */
    if (send_frame(c, WS_OP_CLOSE, payload, n) < 0) {
        conn_abort(c);
        return -1;
    }
    if (why != CONN_CLOSE_NORMAL && why != CONN_CLOSE_SHUTDOWN)
        log_msg(LOG_DEBUG, "conn close fd=%d code=%u reason=\"%s\"", c->io.fd, code, reason ? reason : "");
    conn_finish(c);
    if (c->flags & CF_EP_OPEN)
        c->env->closed(c->env->ctx, c);
    return 0;
}

/* Every connection that upgraded comes here once it has left, so the inflate
 * state of a message cut short by conn_abort is freed here too. */
void conn_detach_endpoint(struct conn *c)
{
    drop_inflating(c);
    if (c->flags & CF_EP_OPEN) {
        c->flags &= (uint8_t)~CF_EP_OPEN;
        if (c->ep->close)
            c->ep->close(c->ep->ctx, c);
    }
}

void conn_ws_settle(struct conn *c)
{
    if (c->state != CONN_WS && c->state != CONN_HTTP)   /* HTTP: a deferred response is still owed */
        conn_detach_endpoint(c);
}

void conn_upgrade(struct conn *c, const struct endpoint *ep, const struct http_request *req,
                  struct http_slice subpath, const char *accept_key)
{
    struct pmd_params offer;
    enum pmd_verdict deflate = c->env->limits->deflate ? pmd_negotiate(req, &offer) : PMD_DECLINE;
    if (deflate == PMD_MALFORMED) {
        conn_http_text(c, 400, "malformed Sec-WebSocket-Extensions header", NULL, 0);
        return;
    }
    struct endpoint_answer ans = {0};
    int status = ep->accept ? ep->accept(ep->ctx, c, req, subpath, &ans) : 0;
    if (status) {
        conn_http_text(c, status, ans.reason ? ans.reason : "refused", ans.headers, 0);
        return;
    }
    c->ep = ep;
    c->flags |= CF_EP_OPEN;
    char headers[224 + PMD_RESPONSE_MAX];
    int n = snprintf(headers, sizeof(headers),
                     "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n", accept_key);
    if (ans.protocol)
        n += snprintf(headers + n, sizeof(headers) - (size_t)n, "Sec-WebSocket-Protocol: %.32s\r\n", ans.protocol);
    if (deflate == PMD_ACCEPT) {
        char extension[PMD_RESPONSE_MAX];
        pmd_response(&offer, extension, sizeof(extension));
        snprintf(headers + n, sizeof(headers) - (size_t)n, "Sec-WebSocket-Extensions: %s\r\n", extension);
    }
    if (conn_http_head(c, 101, headers, 0, NULL, 1) < 0) {
        conn_abort(c);
        return;
    }
    c->state = CONN_WS;
    c->flags |= CF_WAS_WS;
    conn_stats(c)->http--;
    conn_stats(c)->websocket++;
    uint64_t max = c->env->limits->max_message;
    uint64_t text = ep->max_text && ep->max_text < max ? ep->max_text : max;
    uint64_t binary = ep->max_binary && ep->max_binary < max ? ep->max_binary : max;
    ws_parser_init(&c->ws, max);
    ws_parser_set_limits(&c->ws, text, binary);
    if (deflate == PMD_ACCEPT) {
        c->deflate_bits = (uint8_t)pmd_server_window_bits(&offer);
        ws_parser_allow_compressed(&c->ws);
    }
    c->last_rx_ms = c->last_ping_ms = (uint32_t)conn_now_ms(c);
    conn_arm_timer(c);
    if (ep->open)
        ep->open(ep->ctx, c, req);
}

/* Inflates a chunk of a compressed message into the spill's msg (bounded by
 * the message limit) and hands the message up once it is whole. */
static void deliver_compressed(struct conn *c, const struct ws_event *ev)
{
    struct conn_spill *s = conn_spill(c);
    if (!s) {
        conn_close(c, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    int text = ev->opcode == WS_OP_TEXT;
    enum pmdz_status st = pmdz_inflate(c->env->limits->deflate, &s->inflating, ev->data, ev->len, ev->last, text,
                                       text ? c->ws.max_text : c->ws.max_binary, &s->msg);
    if (st != PMDZ_OK) {
        const char *reason;
        uint16_t code = pmdz_close_code(st, &reason);
        buf_free(&s->msg);
        conn_close(c, code, reason);
        conn_spill_trim(c);
        return;
    }
    if (ev->last)
        deliver_assembled(c, ev->opcode);
}

static void deliver(struct conn *c, const struct ws_event *ev)
{
    if (ev->last) {
        conn_stats(c)->messages_in++;
        conn_charge(c, 1);
    }
    if (ev->compressed) {
        deliver_compressed(c, ev);
        return;
    }
    if (ev->first && ev->last) {
        c->ep->message(c->ep->ctx, c, ev->opcode, ev->data, ev->len);
        return;
    }
    struct conn_spill *s = conn_spill(c);
    if (!s || buf_append(&s->msg, ev->data, ev->len) < 0) {
        conn_close(c, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    if (ev->last)
        deliver_assembled(c, ev->opcode);
    else
        conn_spill_trim(c);   /* an empty first fragment holds nothing yet */
}

static void handle_control(struct conn *c, const struct ws_event *ev)
{
    conn_charge(c, 1);
    if (ev->opcode == WS_OP_PING) {
        if (c->state == CONN_WS && send_frame(c, WS_OP_PONG, ev->data, ev->len) < 0)
            conn_close(c, WS_CLOSE_INTERNAL, "out of memory");
    } else if (ev->opcode == WS_OP_CLOSE) {
        c->flags |= CF_PEER_CLOSED;
        if (c->state == CONN_WS) {
            uint16_t code = ev->len >= 2 ? (uint16_t)((ev->data[0] << 8) | ev->data[1]) : 0;
            conn_close_why(c, code, NULL, CONN_CLOSE_NORMAL);
        }
    }
}

size_t conn_ws_input(struct conn *c, uint8_t *data, size_t len)
{
    size_t used = 0;
    while (used < len) {
        if (c->state == CONN_DEAD || (c->flags & CF_PEER_CLOSED))
            return len;
        if (c->state == CONN_WS && conn_output_blocked(c)) {
            c->flags |= CF_READ_OFF;
            return used;
        }
        if (c->work >= CONN_WORK_BUDGET)
            return used;
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

/* Keepalive: the timer fires at the next ping or idle deadline, computed from
 * when the peer last sent anything. Traffic only stores a timestamp; a quiet
 * connection costs one timer event per ping interval. Timestamps are 32-bit
 * loop milliseconds; differences are taken modulo 2^32, which is right for
 * any interval under 49 days (options stop at one). */
static uint32_t quiet_ms(const struct conn *c, uint32_t now)
{
    return now - c->last_rx_ms;
}

static uint32_t unpinged_ms(const struct conn *c, uint32_t now)
{
    uint32_t since_rx = now - c->last_rx_ms, since_ping = now - c->last_ping_ms;
    return since_rx < since_ping ? since_rx : since_ping;
}

void conn_ws_arm_keepalive(struct conn *c)
{
    const struct conn_limits *lim = c->env->limits;
    uint32_t now = (uint32_t)conn_now_ms(c);
    uint64_t wait = UINT64_MAX;
    if (lim->idle_timeout) {
        uint64_t idle = lim->idle_timeout * 1000ull, q = quiet_ms(c, now);
        wait = q >= idle ? 0 : idle - q;
    }
    if (lim->ping_interval) {
        uint64_t ping = lim->ping_interval * 1000ull, u = unpinged_ms(c, now);
        uint64_t w = u >= ping ? 0 : ping - u;
        if (w < wait)
            wait = w;
    }
    if (wait == UINT64_MAX)
        loop_timer_cancel(c->env->loop, &c->timer);
    else
        loop_timer_after(c->env->loop, &c->timer, wait);
}

void conn_ws_keepalive(struct conn *c)
{
    const struct conn_limits *lim = c->env->limits;
    uint32_t now = (uint32_t)conn_now_ms(c);
    if (lim->idle_timeout && quiet_ms(c, now) >= lim->idle_timeout * 1000ull) {
        conn_close_why(c, WS_CLOSE_GOING_AWAY, "idle timeout", CONN_CLOSE_IDLE);
        return;
    }
    if (lim->ping_interval && unpinged_ms(c, now) >= lim->ping_interval * 1000ull) {
        if (send_frame(c, WS_OP_PING, NULL, 0) < 0) {
            conn_close(c, WS_CLOSE_INTERNAL, "out of memory");
            return;
        }
        c->last_ping_ms = now;
        conn_stats(c)->pings_sent++;
    }
    conn_ws_arm_keepalive(c);
}
