/* conn_http: HTTP/1.1 on a connection: request heads in (pipelined, a few at
 * a time), each handed to the env's request callback, a body read when the
 * callback asks for one (Content-Length bytes, kept with its head in the
 * connection's input until whole), and responses out: a head built by the
 * pure response module, an optional body, or a file sent from the queue; a
 * response may be deferred, and the connection then waits for it. Decides
 * nothing about what a request means. */
#include "conn_priv.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "response.h"

/* A response that cannot be queued cannot be answered: the connection ends. */
static int response_failed(struct conn *c, int status)
{
    log_msg(LOG_WARN, "http response dropped fd=%d status=%d error=\"out of memory\"", c->io.fd, status);
    c->why = CONN_CLOSE_ERROR;
    conn_abort(c);
    return -1;
}

int conn_http_waiting(const struct conn *c)
{
    return c->state == CONN_HTTP && (c->flags & CF_EP_OPEN);
}

/* The deferred response is being given: the endpoint is owed nothing more,
 * the next request gets a fresh timeout, and input held meanwhile is read. */
static void deferred_answered(struct conn *c)
{
    c->flags &= (uint8_t)~CF_EP_OPEN;
    c->ep = NULL;
    c->ep_data = NULL;
    conn_arm_timer(c);
    conn_want_flush(c);
}

int conn_http_head(struct conn *c, int status, const char *headers, size_t content_length,
                   const void *body, int keep_alive)
{
    if (c->state == CONN_DEAD)
        return -1;
    if (status != 101 && conn_http_waiting(c))
        deferred_answered(c);
    char head[1024];
    const char *date = status == 101 ? NULL : response_date(c->env->date, time(NULL));
    size_t n = response_head(head, sizeof(head), status, headers, content_length, keep_alive, date);
    size_t blen = (body && !(c->flags & CF_HEAD_ONLY)) ? content_length : 0;
    struct sbuf *s = n ? sbuf_new(n + blen) : NULL;
    if (!s)
        return response_failed(c, status);
    memcpy(s->data, head, n);
    if (blen)
        memcpy(s->data + n, body, blen);
    if (conn_queue(c, s) < 0)
        return response_failed(c, status);
    if (!keep_alive && c->state == CONN_HTTP)
        conn_finish(c);
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
        c->why = (uint8_t)(status == 413 || status == 431 || status == 503 ? CONN_CLOSE_LIMIT
                                                                           : CONN_CLOSE_PROTOCOL);
    return conn_http_head(c, status, hdrs, (size_t)n, body, keep_alive);
}

int conn_http_file(struct conn *c, int fd, size_t len)
{
    if (c->flags & CF_HEAD_ONLY) {
        close(fd);
        return 0;
    }
    if (outq_push_file(&c->out, fd, 0, len) < 0)
        return response_failed(c, 200);
    conn_want_flush(c);
    return 0;
}

void conn_http_read_body(struct conn *c, size_t n)
{
    if (n > c->env->limits->max_body)
        conn_http_text(c, 413, "request body too large", NULL, 0);
    else
        c->http_scanned = CONN_HTTP_BODY | (uint32_t)n;
}

void conn_http_defer(struct conn *c, const struct endpoint *ep, void *data, unsigned timeout_ms)
{
    c->ep = ep;
    c->ep_data = data;
    c->flags |= CF_EP_OPEN;
    loop_timer_after(c->env->loop, &c->timer, timeout_ms);
}

void conn_http_expire(struct conn *c)
{
    if (c->ep->expired)
        c->ep->expired(c->ep->ctx, c);
    if (conn_http_waiting(c)) {
        c->why = CONN_CLOSE_IDLE;
        conn_abort(c);
    }
}

/* Hands one request to the server's callback, with HEAD marked so that no
 * response body is queued. */
static void handle_request(struct conn *c, const struct http_request *req)
{
    if (http_slice_eq(req->method, "HEAD"))
        c->flags |= CF_HEAD_ONLY;
    c->env->request(c->env->ctx, c, req);
    c->flags &= (uint8_t)~CF_HEAD_ONLY;
}

size_t conn_http_input(struct conn *c, uint8_t *data, size_t len)
{
    size_t used = 0;
    while (c->state == CONN_HTTP && used < len) {
        if (conn_http_waiting(c) || conn_output_blocked(c)) {
            c->flags |= CF_READ_OFF;   /* the next request waits for the answer to this one */
            break;
        }
        /* A request whose body is awaited is parsed again only once it is all here. */
        size_t whole = c->http_scanned & CONN_HTTP_BODY ? c->http_scanned & ~CONN_HTTP_BODY : 0;
        if (whole > len - used)
            break;
        struct http_request req;
        size_t scanned = whole ? 0 : c->http_scanned;
        long r = http_parse_request((const char *)data + used, len - used, &scanned,
                                    c->env->limits->max_head, &req);
        if (!whole)
            c->http_scanned = (uint32_t)scanned;
        if (r == HTTP_INCOMPLETE)
            break;
        if (r == HTTP_ERROR) {
            conn_http_text(c, req.status, req.reason, NULL, 0);
            return len;
        }
        if (whole)
            req.body = (struct http_slice){(const char *)data + used + r, whole - (size_t)r};
        c->http_scanned = 0;
        handle_request(c, &req);
        /* Asked for the body: the head waits with it. (Upgraded, the field holds a WebSocket timestamp.) */
        if (c->state == CONN_HTTP && (c->http_scanned & CONN_HTTP_BODY)) {
            c->http_scanned = CONN_HTTP_BODY | (uint32_t)((size_t)r + (c->http_scanned & ~CONN_HTTP_BODY));
            continue;
        }
        used += whole ? whole : (size_t)r;
        if (c->state == CONN_HTTP && !conn_http_waiting(c))
            conn_arm_timer(c);   /* the next request gets a full handshake timeout */
    }
    return used;
}
