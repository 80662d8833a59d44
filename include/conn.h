/* conn: one client socket and everything attached to it: its state (HTTP,
 * WebSocket, closing), the unparsed input remainder, the message being
 * reassembled, the output queue and its timer. It reads, runs the pure
 * parsers, hands whole messages to its endpoint, and owns the one path by
 * which a connection ends. It never blocks. */
#ifndef WSHUB_CONN_H
#define WSHUB_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"
#include "loop.h"
#include "outq.h"
#include "stats.h"
#include "ws.h"

struct conn;
struct server;

/* What an application plugs into a WebSocket path (echo, chat rooms). */
struct endpoint {
    const char *name;
    void *ctx;           /* the application's state, for its callbacks */
    /* Decides on an upgrade before the 101 goes out: returns 0 to accept, or an
     * HTTP status to refuse with and sets *reason. May be NULL (always accept). */
    int (*accept)(struct conn *c, const struct http_request *req, const char **reason);
    /* The 101 is queued; the connection is open. */
    void (*open)(struct conn *c);
    /* A whole text or binary message. data is only valid during the call. */
    void (*message)(struct conn *c, enum ws_opcode op, uint8_t *data, size_t len);
    /* The connection is leaving (for any reason); nothing may be sent after this. */
    void (*close)(struct conn *c);
};

enum conn_state {
    CONN_HTTP,     /* reading requests */
    CONN_WS,       /* WebSocket open */
    CONN_CLOSING,  /* our final bytes are queued; waiting for them to go and the peer to close */
    CONN_DEAD,     /* fd closed; freed at the end of the loop iteration */
};

/* The one flag the server owns in conn->flags: on its flush list. Bits above
 * it are conn's own. */
#define CONN_F_PENDING 0x01u

struct conn {
    struct loop_io io;
    struct loop_timer timer;
    struct server *srv;
    struct conn *prev, *next;   /* the server's live list, then its dead list */
    struct conn *pending_next;  /* the server's list of connections to flush */
    struct outq out;
    struct buf in;              /* bytes read but not yet parsed */
    struct buf msg;             /* a fragmented or partly received message */
    struct ws_parser ws;
    const struct endpoint *ep;
    void *ep_data;              /* the endpoint's per-connection state */
    uint32_t last_rx_ms;        /* WebSocket: when the peer last sent anything (loop ms, mod 2^32) */
    uint32_t last_ping_ms;      /* WebSocket: when we last pinged (loop ms, mod 2^32) */
    uint32_t http_scanned;
    uint32_t timer_mark;        /* out.sent when the timer was armed */
    uint16_t flags;
    uint8_t state;
    uint8_t why;                /* enum stats_close: why it is ending */
};

/* Takes ownership of an accepted, non-blocking socket. NULL on failure (fd closed). */
struct conn *conn_new(struct server *srv, int fd);

/* Encodes one unfragmented frame (header and payload) into a new shared
 * buffer with one reference, for conn_send_frame; its payload starts at
 * ws_header_len(len). NULL if out of memory. */
struct sbuf *conn_frame_new(enum ws_opcode op, const void *payload, size_t len);

/* Queues a reference to a shared, already encoded frame. Returns 0, or -1 when
 * the connection cannot take output (closing, or out of memory). */
int conn_send_frame(struct conn *c, struct sbuf *frame);

/* Encodes and queues one message or control frame. Returns 0 or -1. */
int conn_send(struct conn *c, enum ws_opcode op, const void *data, size_t len);

/* Bytes queued and not yet written to the socket. */
size_t conn_backlog(const struct conn *c);

/* Starts the closing handshake: sends a close frame with code and reason
 * (code 0: an empty close), tells the endpoint, and drops TCP once the peer
 * answers or close_timeout passes. For an HTTP connection it just closes. */
void conn_close(struct conn *c, uint16_t code, const char *reason);

/* conn_close, recording why the connection ends (for /stats). */
void conn_close_why(struct conn *c, uint16_t code, const char *reason, enum stats_close why);

/* Cuts off a slow consumer: drops the output it has not started to receive,
 * then closes with 1008. */
void conn_cut(struct conn *c, const char *reason);

/* Ends the connection now, without a closing handshake. */
void conn_abort(struct conn *c);

/* Queues an HTTP response head: status line, the extra header lines in
 * `headers` (each ending in CRLF), Content-Length, Connection. When body is
 * not NULL its content_length bytes follow in the same buffer (left out for a
 * HEAD request). With keep_alive 0 the connection closes once it is sent.
 * Returns 0 or -1. */
int conn_http_head(struct conn *c, int status, const char *headers, size_t content_length,
                   const void *body, int keep_alive);

/* Queues a text/plain response whose body is `text` plus a newline. */
int conn_http_text(struct conn *c, int status, const char *text, const char *headers, int keep_alive);

/* Queues len bytes of an open file after a head; takes ownership of fd. */
int conn_http_file(struct conn *c, int fd, size_t len);

/* Marks the request being answered as HEAD (no bodies) or not. */
void conn_http_set_head_only(struct conn *c, int head_only);

/* Completes a checked upgrade request: asks ep->accept (refusing with its
 * status if it says no), queues the 101 with Sec-WebSocket-Accept accept_key,
 * switches to WebSocket and calls ep->open. From a successful accept on,
 * ep->close is guaranteed to run once when the connection ends. */
void conn_upgrade(struct conn *c, const struct endpoint *ep, const struct http_request *req,
                  const char *accept_key);

/* Writes queued output; called by the server before the loop waits. */
void conn_flush(struct conn *c);

/* Server shutdown: a WebSocket gets a 1001 close, an idle HTTP connection
 * closes now, a busy one once its response is sent. The endpoint hears of it
 * only when the connection ends, so no one is told of others leaving. */
void conn_shutdown(struct conn *c);

#endif
