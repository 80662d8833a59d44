/* conn: one client connection, from accept to close: its transport, the
 * unparsed input, the output queue, its timer and its state (HTTP, WebSocket,
 * closing). It reads, runs the pure parsers, hands requests and messages up
 * through callbacks, and owns the one path by which a connection ends. It
 * never blocks and knows nothing of the server, the router or any endpoint
 * beyond the callbacks it is given.
 *
 * Re-entrancy rule (the same for every layer above): closing never calls back
 * into the code that closed. conn_close, conn_cut and conn_abort only change
 * the connection's state; the endpoint hears of it (endpoint.close) when no
 * code above conn is on the stack: at the end of the connection's own I/O
 * event (a peer that closed, broke the protocol or vanished is heard at once,
 * so its leave keeps its place in the order) or else at the loop iteration's
 * safe point. The memory is freed only after the safe point, so a pointer to
 * a connection stays valid for the whole iteration and no walk of a member
 * list is ever changed under its feet. Sending on a closed connection is a
 * harmless -1. */
#ifndef WSHUB_CONN_H
#define WSHUB_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "http.h"
#include "loop.h"
#include "transport.h"
#include "ws.h"

struct conn;
struct pmdz;
struct response_date;

/* Why a connection ended, as counted in /stats and /metrics. */
enum conn_close_why {
    CONN_CLOSE_NORMAL,
    CONN_CLOSE_IDLE,
    CONN_CLOSE_PROTOCOL,
    CONN_CLOSE_SLOW,       /* a slow consumer, cut off */
    CONN_CLOSE_RATE,       /* over a rate limit for too long */
    CONN_CLOSE_LIMIT,      /* a size or count limit */
    CONN_CLOSE_SHUTDOWN,
    CONN_CLOSE_ERROR,
    CONN_CLOSE_COUNT
};

/* The name of a close reason in /stats and /metrics ("slow_consumer", ...). */
const char *conn_close_name(enum conn_close_why why);

/* What the session layer counts; the server owns one for all its connections. */
struct conn_stats {
    uint64_t http, websocket;        /* open now */
    uint64_t messages_in, messages_out;
    uint64_t bytes_in, bytes_out;
    uint64_t pings_sent;
    uint64_t closed[CONN_CLOSE_COUNT];
};

/* The session layer's limits and settings, filled by main. */
struct conn_limits {
    unsigned handshake_timeout;  /* seconds for a request head (and between keep-alive requests); 0 = none */
    unsigned close_timeout;      /* seconds to wait for the peer's close */
    unsigned ping_interval;      /* seconds, 0 = no pings */
    unsigned idle_timeout;       /* seconds, 0 = never */
    uint64_t max_message;        /* bytes of one WebSocket message (an endpoint may set less) */
    size_t max_head;             /* bytes of an HTTP request head */
    size_t max_body;             /* bytes of the largest request body any endpoint takes (0 = none) */
    struct pmdz *deflate;        /* permessage-deflate offered to clients: the compression state all
                                    connections share (main owns it); NULL = off */
};

/* What the server gives every connection: the loop, the shared receive
 * buffer, limits, counters, and the callbacks by which a connection asks for
 * service. One env serves many connections. */
/* The cork: frames an endpoint sends with conn_send to the WebSocket whose
 * input it is handling are gathered here and written in one call when that
 * input is done, if nothing else waits to go to that connection; anything
 * else sent to it first moves them to its queue, so the order holds. One per
 * server: only one connection's input is handled at a time. */
#define CONN_TX_SIZE (16u * 1024u)
struct conn_tx {
    struct conn *owner;          /* the connection being read, while it may use the cork; else NULL */
    size_t len;
    uint8_t buf[CONN_TX_SIZE];
};

struct conn_env {
    struct loop *loop;
    uint8_t *rx;                 /* reads land here; leftovers are copied to the connection */
    size_t rx_size;              /* at least max_head + the largest read */
    struct conn_tx *tx;          /* the cork; NULL for none */
    const struct conn_limits *limits;
    struct conn_stats *stats;
    const struct transport *transport;
    struct response_date *date;  /* the Date header, formatted once a second */
    void *ctx;                   /* for the callbacks */
    /* A whole request head arrived; answer it with conn_http_* or conn_upgrade. */
    void (*request)(void *ctx, struct conn *c, const struct http_request *req);
    /* c has output (or buffered input) to work on before the loop next waits. */
    void (*want_flush)(void *ctx, struct conn *c);
    /* c left the WebSocket state with its endpoint still attached: call
     * conn_detach_endpoint at the iteration's safe point. */
    void (*closed)(void *ctx, struct conn *c);
    /* c's socket is closed; free it (conn_size bytes) after the safe point. */
    void (*dead)(void *ctx, struct conn *c);
};

/* An endpoint's answer to an upgrade, or to a check of one. */
struct endpoint_answer {
    const char *reason;     /* a refusal: one line for the body */
    const char *headers;    /* a refusal: extra header lines, each ending in CRLF; NULL = none */
    const char *protocol;   /* an acceptance: the subprotocol selected (one the client offered); NULL = none */
};

/* What an application plugs into a path: a WebSocket endpoint (echo, chat
 * rooms), or an HTTP one (the API), which sets `request`. */
struct endpoint {
    const char *name;
    void *ctx;             /* the application's state, passed to every callback */
    uint64_t max_text;     /* bytes of one text message; 0 = the session's max_message */
    uint64_t max_binary;   /* bytes of one binary message; 0 = the session's max_message */
    /* HTTP: a request that is not an upgrade, at or below the mount point,
     * any method. req->body is empty until the endpoint asks for the body
     * (conn_http_read_body) and is called again with it. Answer with
     * conn_http_*, now or, after conn_http_defer, later; an answer given
     * with a body unread must close the connection. NULL for a WebSocket
     * endpoint (such requests then fail the handshake check). */
    void (*request)(void *ctx, struct conn *c, const struct http_request *req, struct http_slice subpath);
    /* HTTP: a deferred response ran out of time: answer it now (if it is not
     * answered, the connection is closed). May be NULL. */
    void (*expired)(void *ctx, struct conn *c);
    /* Decides on an upgrade before the 101 goes out. subpath is the request
     * path below the route's mount point ("" or "/..."). Returns 0 to accept
     * (ans->protocol may name the subprotocol), or an HTTP status to refuse
     * with, and ans->reason (and ans->headers). ans starts zeroed. May be NULL. */
    int (*accept)(void *ctx, struct conn *c, const struct http_request *req, struct http_slice subpath,
                  struct endpoint_answer *ans);
    /* A plain GET (no upgrade) to the endpoint's path: says what an upgrade
     * with the same credentials would get now, changing nothing. Returns 0
     * (answered 200 "ok") or a status with ans->reason and ans->headers.
     * May be NULL (such a GET is then a failed upgrade). */
    int (*check)(void *ctx, const struct http_request *req, struct http_slice subpath, struct endpoint_answer *ans);
    /* The 101 is queued; the connection is open. req is the upgrade request
     * (valid during the call only). */
    void (*open)(void *ctx, struct conn *c, const struct http_request *req);
    /* A whole text or binary message. data is only valid during the call. */
    void (*message)(void *ctx, struct conn *c, enum ws_opcode op, uint8_t *data, size_t len);
    /* The connection has left (for any reason), told at the safe point after
     * it closed; nothing can be sent to it any more. For HTTP: a connection
     * whose response was deferred left before it was answered. */
    void (*close)(void *ctx, struct conn *c);
};

/* Bytes the caller must provide for one connection. */
size_t conn_size(void);

/* Sets up a connection in mem (conn_size bytes, zeroed) for an accepted
 * non-blocking socket, which it now owns. Returns it, or NULL (fd closed). */
struct conn *conn_init(void *mem, const struct conn_env *env, int fd);

/* The endpoint's per-connection state, and setting it (from accept on). */
void *conn_data(const struct conn *c);
void conn_set_data(struct conn *c, void *data);

/* The loop's clock in milliseconds, for endpoints that measure time. */
uint64_t conn_now_ms(const struct conn *c);

/* The peer's address. Returns 0 or -1. */
int conn_peer(const struct conn *c, struct sockaddr_storage *ss, socklen_t *len);

/* True while the connection is an open WebSocket that takes messages. */
int conn_is_open(const struct conn *c);

/* Queues a reference to a shared, already encoded frame (see ws_frame_new),
 * or, on a connection that negotiated permessage-deflate, to its compressed
 * form, made once for every connection it is sent to (see pmdz_shared).
 * Returns 0, or -1 when the connection takes no output (closing, no memory). */
int conn_send_frame(struct conn *c, struct sbuf *frame);

/* Encodes and queues one message or control frame; a message is compressed
 * for this connection when it negotiated permessage-deflate. Returns 0 or -1. */
int conn_send(struct conn *c, enum ws_opcode op, const void *data, size_t len);

/* What the queued output costs: unsent bytes plus a fixed cost per queued
 * item. This is what a backlog limit compares. */
size_t conn_backlog(const struct conn *c);

/* Charges the current message with `units` of fan-out work (deliveries), so
 * that one sender's input is cut into slices per wake-up and others get their
 * turn. */
void conn_charge(struct conn *c, size_t units);

/* Starts the closing handshake: a close frame with code and reason (code 0:
 * an empty close), then TCP is dropped once the peer answers or close_timeout
 * passes. An HTTP connection just closes once its responses are written. */
void conn_close(struct conn *c, uint16_t code, const char *reason);

/* conn_close, recording why the connection ends (for /stats). */
void conn_close_why(struct conn *c, uint16_t code, const char *reason, enum conn_close_why why);

/* Cuts off a slow consumer: drops the output it has not started to receive,
 * then closes with 1008. A no-op unless the WebSocket is open. */
void conn_cut(struct conn *c, const char *reason);

/* Ends the connection now, without a closing handshake. */
void conn_abort(struct conn *c);

/* Server shutdown: a WebSocket gets a 1001 close, an idle HTTP connection
 * closes now, a busy one once its response is sent. */
void conn_shutdown(struct conn *c);

/* Writes queued output and goes on with buffered input; called by the server
 * before the loop waits, for connections that asked with want_flush. */
void conn_flush(struct conn *c);

/* Tells the endpoint that the connection has left (endpoint.close), once; the
 * server calls it at the safe point for connections reported by `closed`. */
void conn_detach_endpoint(struct conn *c);

/* Queues an HTTP response head: status line, the extra header lines in
 * `headers` (each ending in CRLF, may be NULL), Content-Length, Connection.
 * When body is not NULL its content_length bytes follow (left out for a HEAD
 * request). With keep_alive 0 the connection closes once it is sent.
 * Returns 0, or -1 when it could not be queued (logged; the connection ends). */
int conn_http_head(struct conn *c, int status, const char *headers, size_t content_length,
                   const void *body, int keep_alive);

/* Queues a text/plain response whose body is `text` plus a newline. Returns 0 or -1 (as above). */
int conn_http_text(struct conn *c, int status, const char *text, const char *headers, int keep_alive);

/* The request being handled has a body of n bytes (Content-Length, at most
 * the limits' max_body, else 413 and close): it is read without blocking,
 * within the time left for the request head, and the request is handed to
 * the request callback again with req->body set. */
void conn_http_read_body(struct conn *c, size_t n);

/* The request being handled by ep will be answered later, by ep calling
 * conn_http_head or conn_http_text (any status but 101) on c, which also
 * lets the connection go on with its next request. Until then data is
 * conn_data(c), the next requests wait, and the connection ends only by
 * telling ep: ep->expired when timeout_ms pass, ep->close (at the safe point)
 * when the peer goes away or the server shuts down. */
void conn_http_defer(struct conn *c, const struct endpoint *ep, void *data, unsigned timeout_ms);

/* Queues len bytes of an open file after a head; takes ownership of fd.
 * Returns 0 or -1 (as above). */
int conn_http_file(struct conn *c, int fd, size_t len);

/* Completes a checked upgrade: negotiates permessage-deflate when it is on
 * (a malformed Sec-WebSocket-Extensions gets 400), asks ep->accept (refusing
 * with its status if it says no), queues the 101 with Sec-WebSocket-Accept
 * accept_key and the extension accepted, switches to WebSocket and calls
 * ep->open. From a successful accept on, ep->close is guaranteed to run once. */
void conn_upgrade(struct conn *c, const struct endpoint *ep, const struct http_request *req,
                  struct http_slice subpath, const char *accept_key);

#endif
