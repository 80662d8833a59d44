/* conn: a connection's lifecycle and I/O. Reads through its transport into
 * the server's shared receive buffer, keeps only the unparsed remainder, runs
 * the parser of its state (conn_http.c or conn_ws.c) within a work budget per
 * wake-up, writes its output queue, runs its timer, and owns the single path
 * by which a connection ends (conn_abort). Never blocks; never frees itself
 * (the server does, after the safe point); never asks which transport it
 * has, only what the transport's status says it waits for or holds. */
#include "conn_priv.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pmdz.h"

#define FLUSH_BUDGET (1024u * 1024u)     /* bytes written per connection per wake-up */
#define WRITE_IOV 64                      /* iovecs per write call */
#define WS_PAUSE_BACKLOG (1024u * 1024u) /* stop reading a WebSocket with this much unsent */
#define HTTP_PIPELINE_MAX 8              /* queued items before pipelined requests wait */

static const char *const close_names[CONN_CLOSE_COUNT] = {
    "normal", "idle", "protocol_error", "slow_consumer", "rate_limit", "limit_reached", "shutdown", "error",
};

const char *conn_close_name(enum conn_close_why why)
{
    return close_names[why];
}

static void on_io(struct loop *l, struct loop_io *io, uint32_t events);
static void on_timer(struct loop *l, struct loop_timer *t);

_Static_assert(_Alignof(struct conn) <= 8, "the server's slots align a connection to 8 bytes");

size_t conn_size(void)
{
    return sizeof(struct conn);
}

struct conn *conn_init(void *mem, const struct conn_env *env, int fd)
{
    struct conn *c = mem;
    c->env = env;
    c->io.fd = fd;
    c->io.cb = on_io;
    c->timer.cb = on_timer;
    c->state = CONN_HTTP;
    if (env->transport->ops->attach(env->transport->ctx, fd, &c->tp_state) < 0) {
        close(fd);
        return NULL;
    }
    if (loop_io_add(env->loop, &c->io, LOOP_READ) < 0) {
        env->transport->ops->detach(c->tp_state);
        close(fd);
        return NULL;
    }
    env->stats->http++;
    conn_arm_timer(c);
    return c;
}

struct conn_stats *conn_stats(struct conn *c)
{
    return c->env->stats;
}

void *conn_data(const struct conn *c)
{
    return c->ep_data;
}

void conn_set_data(struct conn *c, void *data)
{
    c->ep_data = data;
}

uint64_t conn_now_ms(const struct conn *c)
{
    return loop_now(c->env->loop);
}

int conn_peer(const struct conn *c, struct sockaddr_storage *ss, socklen_t *len)
{
    *len = sizeof(*ss);
    return getpeername(c->io.fd, (struct sockaddr *)ss, len);
}

int conn_is_open(const struct conn *c)
{
    return c->state == CONN_WS;
}

size_t conn_backlog(const struct conn *c)
{
    return outq_cost(&c->out);
}

void conn_charge(struct conn *c, size_t units)
{
    c->work = units >= CONN_WORK_BUDGET - c->work ? CONN_WORK_BUDGET : c->work + (uint32_t)units;
}

struct conn_spill *conn_spill(struct conn *c)
{
    if (!c->spill && (c->spill = buf_block_alloc(sizeof(*c->spill))))
        memset(c->spill, 0, sizeof(*c->spill));
    return c->spill;
}

void conn_spill_trim(struct conn *c)
{
    struct conn_spill *s = c->spill;
    if (s && !s->in.data && !s->msg.data && !s->inflating) {
        buf_block_free(s, sizeof(*s));
        c->spill = NULL;
    }
}

/* Frees the spill whatever it holds. */
static void spill_free(struct conn *c)
{
    struct conn_spill *s = c->spill;
    if (s) {
        buf_free(&s->in);
        buf_free(&s->msg);
        pmdz_msg_free(s->inflating);
        s->inflating = NULL;
        conn_spill_trim(c);
    }
}

/* Bytes read but not yet parsed. */
static size_t in_len(const struct conn *c)
{
    return c->spill ? c->spill->in.len : 0;
}

void conn_want_flush(struct conn *c)
{
    if (c->state != CONN_DEAD)
        c->env->want_flush(c->env->ctx, c);
}

static unsigned tp_status(const struct conn *c)
{
    return c->env->transport->ops->status(c->tp_state);
}

/* Forgets what the cork holds for c: it will never be sent. */
static void drop_cork(struct conn *c)
{
    struct conn_tx *tx = c->env->tx;
    if (tx && tx->owner == c)
        tx->owner = NULL;
}

int conn_cork_frame(struct conn *c, enum ws_opcode op, const void *data, size_t len)
{
    struct conn_tx *tx = c->env->tx;
    if (!tx || tx->owner != c)
        return 1;
    size_t h = ws_header_len(len);
    if (h + len > CONN_TX_SIZE - tx->len)
        return conn_uncork(c) < 0 ? -1 : 1;
    ws_encode_header(tx->buf + tx->len, op, len);
    if (len)
        memcpy(tx->buf + tx->len + h, data, len);
    tx->len += h + len;
    return 0;
}

/* Queues n bytes of the cork from off, for the next flush. Returns 0 or -1 (aborted). */
static int queue_corked(struct conn *c, const struct conn_tx *tx, size_t off)
{
    struct sbuf *s = sbuf_new(tx->len - off);
    if (!s || (memcpy(s->data, tx->buf + off, tx->len - off), outq_push(&c->out, s, 0)) < 0) {
        sbuf_unref(s);
        conn_abort(c);
        return -1;
    }
    sbuf_unref(s);
    conn_want_flush(c);
    return 0;
}

int conn_uncork(struct conn *c)
{
    struct conn_tx *tx = c->env->tx;
    if (!tx || tx->owner != c)
        return 0;
    tx->owner = NULL;
    return tx->len ? queue_corked(c, tx, 0) : 0;
}

/* Lets c use the cork while its input is processed, if nothing waits to go to it. */
static void cork(struct conn *c)
{
    struct conn_tx *tx = c->env->tx;
    if (tx && c->state == CONN_WS && outq_empty(&c->out) && !(tp_status(c) & TRANSPORT_HAS_OUTPUT)) {
        tx->owner = c;
        tx->len = 0;
    }
}

/* Ends c's use of the cork: what it holds is written now, the rest queued. */
static void uncork_write(struct conn *c)
{
    struct conn_tx *tx = c->env->tx;
    if (!tx || tx->owner != c)
        return;
    tx->owner = NULL;
    if (!tx->len)
        return;
    struct iovec iov = {tx->buf, tx->len};
    ssize_t n = c->env->transport->ops->writev(c->tp_state, c->io.fd, &iov, 1);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        c->why = CONN_CLOSE_ERROR;
        conn_abort(c);
        return;
    }
    size_t off = n > 0 ? (size_t)n : 0;
    c->env->stats->bytes_out += off;
    if (off < tx->len)
        queue_corked(c, tx, off);
    else if (tp_status(c) & TRANSPORT_HAS_OUTPUT)
        conn_want_flush(c);
}

/* Queues s (dropping the caller's reference either way). Returns 0 or -1. */
int conn_queue(struct conn *c, struct sbuf *s)
{
    if (conn_uncork(c) < 0) {
        sbuf_unref(s);
        return -1;
    }
    int rc = outq_push(&c->out, s, 0);
    sbuf_unref(s);
    if (rc == 0)
        conn_want_flush(c);
    return rc;
}

void conn_abort(struct conn *c)
{
    if (c->state == CONN_DEAD)
        return;
    const struct conn_env *env = c->env;
    drop_cork(c);
    log_msg(LOG_DEBUG, "conn close fd=%d why=%s", c->io.fd, conn_close_name((enum conn_close_why)c->why));
    env->stats->closed[c->why]++;
    if (c->flags & CF_WAS_WS)
        env->stats->websocket--;
    else
        env->stats->http--;
    loop_io_del(env->loop, &c->io);
    env->transport->ops->detach(c->tp_state);
    close(c->io.fd);
    loop_timer_cancel(env->loop, &c->timer);
    outq_clear(&c->out);
    spill_free(c);
    /* A closing WebSocket told the server when it began to close. */
    int tell = (c->flags & CF_EP_OPEN) && c->state != CONN_CLOSING;
    c->state = CONN_DEAD;
    if (tell)
        env->closed(env->ctx, c);
    env->dead(env->ctx, c);
}

/* From now on no more input is processed; the connection ends once the queue
 * is written (and, for our own FIN, the peer closes or close_timeout passes). */
void conn_finish(struct conn *c)
{
    c->state = CONN_CLOSING;
    c->flags |= CF_FINISH;
    conn_arm_timer(c);
    conn_want_flush(c);
}

void conn_close_why(struct conn *c, uint16_t code, const char *reason, enum conn_close_why why)
{
    if (c->state == CONN_WS) {
        conn_ws_send_close(c, code, reason, why);
    } else if (c->state == CONN_HTTP) {
        c->why = (uint8_t)why;
        if (conn_http_waiting(c))
            conn_abort(c);   /* its endpoint is told, at the safe point */
        else
            conn_finish(c);
    }
}

/* Why a close with this code ends the connection, unless the closer says. */
static enum conn_close_why why_for_code(uint16_t code)
{
    switch (code) {
    case WS_CLOSE_PROTOCOL:
    case WS_CLOSE_UNSUPPORTED:
    case WS_CLOSE_INVALID_DATA: return CONN_CLOSE_PROTOCOL;
    case WS_CLOSE_TOO_BIG: return CONN_CLOSE_LIMIT;
    case WS_CLOSE_INTERNAL: return CONN_CLOSE_ERROR;
    default: return CONN_CLOSE_NORMAL;
    }
}

void conn_close(struct conn *c, uint16_t code, const char *reason)
{
    conn_close_why(c, code, reason, why_for_code(code));
}

void conn_cut(struct conn *c, const char *reason)
{
    if (c->state != CONN_WS)
        return;   /* already closing: its close frame must not be dropped */
    drop_cork(c);
    outq_drop_unsent(&c->out);
    conn_close_why(c, WS_CLOSE_POLICY, reason, CONN_CLOSE_SLOW);
}

/* True once every byte queued has reached the socket (the transport holds none). */
static int output_done(const struct conn *c)
{
    return outq_empty(&c->out) && !(tp_status(c) & TRANSPORT_HAS_OUTPUT);
}

void conn_shutdown(struct conn *c)
{
    if (c->state == CONN_WS) {
        conn_ws_send_close(c, WS_CLOSE_GOING_AWAY, "server shutting down", CONN_CLOSE_SHUTDOWN);
    } else if (c->state == CONN_HTTP) {
        c->why = CONN_CLOSE_SHUTDOWN;
        if ((output_done(c) && in_len(c) == 0) || conn_http_waiting(c))
            conn_abort(c);
        else
            conn_finish(c);
    }
}

int conn_output_blocked(const struct conn *c)
{
    if (c->state == CONN_HTTP)
        return c->out.count >= HTTP_PIPELINE_MAX;
    return c->state == CONN_WS && outq_bytes(&c->out) >= WS_PAUSE_BACKLOG;
}

/* The readiness that lets reading (LOOP_READ) or writing (LOOP_WRITE) go on:
 * the same, unless the transport must first go the other way (a TLS
 * handshake message). */
static uint32_t ready_for(unsigned status, uint32_t what)
{
    if (what == LOOP_READ)
        return status & TRANSPORT_READ_WANTS_WRITE ? LOOP_WRITE : LOOP_READ;
    return status & TRANSPORT_WRITE_WANTS_READ ? LOOP_READ : LOOP_WRITE;
}

static int reading(const struct conn *c)
{
    return !(c->flags & (CF_READ_OFF | CF_PEER_EOF));
}

static void update_events(struct conn *c)
{
    unsigned st = tp_status(c);
    uint32_t mask = 0;
    if (reading(c))
        mask |= ready_for(st, LOOP_READ);
    if (!outq_empty(&c->out) || (st & TRANSPORT_HAS_OUTPUT))
        mask |= ready_for(st, LOOP_WRITE);
    if (loop_io_set(c->env->loop, &c->io, mask) < 0)
        conn_abort(c);
}

/* Runs the parser of the current state over data until it is used up, the
 * state's parser stops, or this wake-up's work budget is spent; returns bytes
 * consumed. */
static size_t process(struct conn *c, uint8_t *data, size_t len)
{
    size_t used = 0;
    for (;;) {
        uint8_t state = c->state;
        size_t n;
        if (state == CONN_HTTP)
            n = conn_http_input(c, data + used, len - used);
        else if (state == CONN_WS || (state == CONN_CLOSING && c->ep && !c->ws.failed))
            n = conn_ws_input(c, data + used, len - used);
        else
            n = len - used;   /* closing after an error: input is discarded */
        used += n;
        if (c->state == CONN_DEAD)
            return len;
        if (c->state == state || used == len)
            return used;
    }
}

/* Keeps the unparsed tail of data for later. Returns 0, or -1 (aborted). */
static int keep_rest(struct conn *c, const uint8_t *rest, size_t n)
{
    if (n == 0) {
        if (c->spill) {
            buf_free(&c->spill->in);
            conn_spill_trim(c);
        }
        return 0;
    }
    struct conn_spill *s = conn_spill(c);
    if (s)
        s->in.len = 0;
    if (!s || buf_append(&s->in, rest, n) < 0) {
        conn_abort(c);
        return -1;
    }
    return 0;
}

/* After processing: input left over because the budget ran out waits, with
 * reading paused, for this connection's next turn in conn_flush. */
static void after_input(struct conn *c)
{
    if (c->work >= CONN_WORK_BUDGET && in_len(c)) {
        c->flags |= CF_READ_OFF;
        conn_want_flush(c);
    }
    c->work = 0;
}

/* After a read: the transport may need the socket writable to read on (a
 * TLS handshake message), or no longer; plain TCP never changes anything. */
static void sync_read_events(struct conn *c)
{
    if ((tp_status(c) & TRANSPORT_READ_WANTS_WRITE) || !(c->io.mask & LOOP_READ))
        update_events(c);
}

static void on_readable(struct conn *c, uint32_t events)
{
    const struct conn_env *env = c->env;
    if (c->flags & CF_READ_OFF) {   /* paused: only a dead socket matters */
        if (events & LOOP_ERROR)
            conn_abort(c);
        return;
    }
    size_t prefix = in_len(c);
    if (prefix > env->limits->max_head + env->limits->max_body) {   /* cannot happen while reading is allowed */
        conn_abort(c);
        return;
    }
    ssize_t n = env->transport->ops->recv(c->tp_state, c->io.fd, env->rx + prefix, env->rx_size - prefix);
    if (n < 0) {
        if (errno == EPROTO) {
            c->why = CONN_CLOSE_PROTOCOL;   /* the transport's own protocol, broken */
            conn_abort(c);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            if (c->state == CONN_WS)
                c->why = CONN_CLOSE_ERROR;
            conn_abort(c);
        } else {
            sync_read_events(c);
        }
        return;
    }
    env->stats->bytes_in += (uint64_t)n;
    if (c->state == CONN_WS)
        c->last_rx_ms = (uint32_t)loop_now(env->loop);
    if (n == 0) {
        c->flags |= CF_PEER_EOF;
        if (c->state == CONN_WS)
            c->why = CONN_CLOSE_ERROR;   /* gone without a close frame */
        if (c->state == CONN_WS || output_done(c) || conn_http_waiting(c)) {
            conn_abort(c);   /* a deferred response has nobody left to read it */
            return;
        }
        c->flags |= CF_FINISH;
        c->state = CONN_CLOSING;
        update_events(c);
        return;
    }
    if (prefix)
        memcpy(env->rx, c->spill->in.data, prefix);
    size_t total = prefix + (size_t)n;
    cork(c);
    size_t used = process(c, env->rx, total);
    if (c->state != CONN_DEAD)
        uncork_write(c);
    if (c->state == CONN_DEAD || keep_rest(c, env->rx + used, total - used) < 0)
        return;
    after_input(c);
    if (c->flags & CF_READ_OFF) {
        update_events(c);
        return;
    }
    sync_read_events(c);
    if (c->state != CONN_DEAD && reading(c) && (tp_status(c) & TRANSPORT_HAS_INPUT))
        conn_want_flush(c);   /* no readiness will report it: read again at the safe point */
}

/* Goes on with input kept while output was blocked or the budget was spent. */
static void process_buffered(struct conn *c)
{
    c->flags &= (uint8_t)~CF_READ_OFF;
    if (in_len(c)) {
        size_t used = process(c, c->spill->in.data, c->spill->in.len);
        if (c->state == CONN_DEAD)
            return;
        buf_consume(&c->spill->in, used);   /* still there: only empty input lets it go */
        if (c->spill->in.len == 0) {
            buf_free(&c->spill->in);
            conn_spill_trim(c);
        }
        after_input(c);
    }
}

/* Writes from the queue until it is empty and the transport holds nothing,
 * the transport would block, or the budget is spent. Returns bytes written,
 * or -1 on a stream error. */
static ssize_t write_queue(struct conn *c)
{
    const struct transport_ops *tp = c->env->transport->ops;
    size_t sent = 0;
    while (sent < FLUSH_BUDGET) {
        struct iovec iov[WRITE_IOV];
        int file_fd;
        off_t off;
        size_t left;
        ssize_t n;
        if (outq_empty(&c->out)) {
            if (!(tp->status(c->tp_state) & TRANSPORT_HAS_OUTPUT))
                break;
            n = tp->writev(c->tp_state, c->io.fd, iov, 0);   /* pushes what the transport holds */
        } else if (outq_file(&c->out, &file_fd, &off, &left)) {
            size_t want = left < FLUSH_BUDGET - sent ? left : FLUSH_BUDGET - sent;
            n = tp->sendfile(c->tp_state, c->io.fd, file_fd, &off, want);
            if (n == 0) {
                errno = EIO;   /* the file shrank under us: the promised length cannot be sent */
                return -1;
            }
        } else {
            int cnt = outq_iov(&c->out, iov, WRITE_IOV, FLUSH_BUDGET - sent);
            n = tp->writev(c->tp_state, c->io.fd, iov, cnt);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        if (n > 0)
            outq_advance(&c->out, (size_t)n);
        sent += (size_t)n;
    }
    return (ssize_t)sent;
}

/* Writes queued output, then goes on with buffered input. */
static void flush(struct conn *c)
{
    if (c->state == CONN_DEAD)
        return;
    if (!output_done(c)) {
        ssize_t n = write_queue(c);
        if (n < 0) {
            if (c->state == CONN_WS)
                c->why = CONN_CLOSE_ERROR;
            conn_abort(c);
            return;
        }
        c->env->stats->bytes_out += (uint64_t)n;
    }
    if ((c->flags & CF_READ_OFF) && !conn_output_blocked(c)) {
        process_buffered(c);
        if (c->state == CONN_DEAD)
            return;
    }
    if (reading(c) && (tp_status(c) & TRANSPORT_HAS_INPUT)) {
        on_readable(c, LOOP_READ);
        if (c->state == CONN_DEAD)
            return;
    }
    if (output_done(c) && (c->flags & CF_FINISH)) {
        if (c->flags & CF_PEER_EOF) {
            conn_abort(c);
            return;
        }
        if (!(c->flags & CF_WR_SHUT)) {
            c->env->transport->ops->shutdown_write(c->tp_state, c->io.fd);
            c->flags |= CF_WR_SHUT;
        }
    }
    update_events(c);
}

void conn_flush(struct conn *c)
{
    flush(c);
    conn_ws_settle(c);
}

static void on_io(struct loop *l, struct loop_io *io, uint32_t events)
{
    (void)l;
    struct conn *c = container_of(io, struct conn, io);
    if (c->state == CONN_DEAD)
        return;
    unsigned st = tp_status(c);
    if (events & ready_for(st, LOOP_WRITE))
        flush(c);
    if (c->state != CONN_DEAD && (events & (ready_for(st, LOOP_READ) | ~(uint32_t)(LOOP_READ | LOOP_WRITE))))
        on_readable(c, events);
    conn_ws_settle(c);
}

/* The HTTP state's timer bounds the wait for a request head; the closing
 * state's bounds the wait for the peer's close; an open WebSocket's runs its
 * keepalive. The first two are extended while queued output is still making
 * progress (a slow download is not a stall). */
void conn_arm_timer(struct conn *c)
{
    if (c->state == CONN_WS) {
        conn_ws_arm_keepalive(c);
        return;
    }
    const struct conn_limits *lim = c->env->limits;
    unsigned seconds = c->state == CONN_HTTP ? lim->handshake_timeout : lim->close_timeout;
    c->timer_mark = outq_sent(&c->out);
    if (c->state == CONN_HTTP && seconds == 0)
        loop_timer_cancel(c->env->loop, &c->timer);
    else
        loop_timer_after(c->env->loop, &c->timer, seconds * 1000ull);
}

static void on_timer(struct loop *l, struct loop_timer *t)
{
    (void)l;
    struct conn *c = container_of(t, struct conn, timer);
    if (c->state == CONN_WS) {
        conn_ws_keepalive(c);
        return;
    }
    if (conn_http_waiting(c)) {
        conn_http_expire(c);
        return;
    }
    if (!outq_empty(&c->out) && outq_sent(&c->out) != c->timer_mark) {
        conn_arm_timer(c);
        return;
    }
    if (c->state == CONN_HTTP) {
        log_msg(LOG_DEBUG, "conn timeout fd=%d state=http", c->io.fd);
        c->why = CONN_CLOSE_IDLE;
    }
    conn_abort(c);
}
