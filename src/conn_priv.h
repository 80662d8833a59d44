/* conn_priv: struct conn and the functions its three files share: conn.c
 * (lifecycle, transport I/O, timers, the close path), conn_http.c (HTTP
 * requests in, responses out) and conn_ws.c (the WebSocket session). Private
 * to those files: nothing else includes it. Every flag has one owner, named
 * beside it. */
#ifndef WSHUB_CONN_PRIV_H
#define WSHUB_CONN_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "outq.h"

enum conn_state {
    CONN_HTTP,     /* reading requests */
    CONN_WS,       /* WebSocket open */
    CONN_CLOSING,  /* our final bytes are queued; waiting for them to go and the peer to close */
    CONN_DEAD,     /* socket closed; freed by the server after the safe point */
};

enum {
    CF_FINISH = 1u << 0,      /* conn.c: close once the queue is written */
    CF_WR_SHUT = 1u << 1,     /* conn.c: our side of the stream is shut down */
    CF_READ_OFF = 1u << 2,    /* conn.c: reading paused; buffered input waits for conn_flush */
    CF_PEER_EOF = 1u << 3,    /* conn.c: the peer shut down its side */
    CF_HEAD_ONLY = 1u << 4,   /* conn_http.c: answering a HEAD request */
    CF_PEER_CLOSED = 1u << 5, /* conn_ws.c: the peer's close frame arrived */
    CF_EP_OPEN = 1u << 6,     /* conn_ws.c: ep->open ran and ep->close has not; conn_http.c: in the
                                 HTTP state, a response deferred to ep (ep->close is owed until it comes) */
    CF_WAS_WS = 1u << 7,      /* conn_ws.c: upgraded, counted as a WebSocket */
};

/* What a connection holds only while input is unfinished: allocated when
 * first needed, freed once all of it is empty, so an idle connection holds
 * none of it. */
struct conn_spill {
    struct buf in;              /* conn.c: bytes read but not yet parsed */
    struct buf msg;             /* conn_ws.c: a fragmented or compressed message being put together */
    struct pmdz_msg *inflating; /* conn_ws.c: a compressed message arriving in pieces, NULL between messages */
};

struct conn {
    struct loop_io io;
    struct loop_timer timer;
    const struct conn_env *env;
    void *tp_state;             /* the transport's per-connection state */
    struct outq out;
    struct conn_spill *spill;   /* NULL while no input is unfinished */
    struct ws_parser ws;
    const struct endpoint *ep;
    void *ep_data;              /* the endpoint's per-connection state */
    union {                     /* an open WebSocket needs only the first pair, the other states the second */
        struct {
            uint32_t last_rx_ms;   /* conn_ws.c: when the peer last sent anything (loop ms, mod 2^32) */
            uint32_t last_ping_ms; /* conn_ws.c: when we last pinged (loop ms, mod 2^32) */
        };
        struct {
            uint32_t http_scanned; /* conn_http.c: how far the head was searched; with CONN_HTTP_BODY set,
                                      the bytes of the head and body the request awaits */
            uint32_t timer_mark;   /* conn.c: outq_sent when the HTTP or closing timer was armed */
        };
    };
    uint32_t work;              /* units of work done on this wake-up's input */
    uint8_t flags;
    uint8_t state;
    uint8_t why;                /* enum conn_close_why: why it is ending */
    uint8_t deflate_bits;       /* conn_ws.c: permessage-deflate negotiated, compressing with this
                                   zlib window (9..15); 0 = not negotiated */
};

/* conn_http.c: http_scanned holds a request's head and body length, not a search position. */
#define CONN_HTTP_BODY 0x80000000u

/* Work units one connection's input may use per wake-up (a message costs 1
 * plus its fan-out) before the rest waits for the next turn. */
#define CONN_WORK_BUDGET 65536u

/* conn.c */
/* The connection's spill, allocated (zeroed) if it had none; NULL when out of memory. */
struct conn_spill *conn_spill(struct conn *c);
/* Frees the spill once its buffers are empty and no message is inflating. */
void conn_spill_trim(struct conn *c);
void conn_want_flush(struct conn *c);
/* Puts a frame into the cork when c may use it and it fits: returns 0; else
 * 1 when the caller must queue it (what the cork held for c is queued first),
 * or -1 when that failed (c was aborted). */
int conn_cork_frame(struct conn *c, enum ws_opcode op, const void *data, size_t len);
/* Moves what the cork holds for c to its queue, ending its use of the cork
 * for this read, so that what is queued next goes after it. 0 or -1 (aborted). */
int conn_uncork(struct conn *c);
void conn_finish(struct conn *c);
void conn_arm_timer(struct conn *c);
int conn_queue(struct conn *c, struct sbuf *s);
struct conn_stats *conn_stats(struct conn *c);

/* conn_http.c: parses requests from data; returns the bytes consumed. */
size_t conn_http_input(struct conn *c, uint8_t *data, size_t len);
/* conn_http.c: an HTTP connection whose response is deferred (see conn_http_defer). */
int conn_http_waiting(const struct conn *c);
/* conn_http.c: the deferred response's time is up: its endpoint answers, or the connection ends. */
void conn_http_expire(struct conn *c);
/* conn_ws.c: parses frames from data; returns the bytes consumed. */
size_t conn_ws_input(struct conn *c, uint8_t *data, size_t len);
/* conn_ws.c: the connection's own I/O path is done for now: a WebSocket
 * that left (its peer closed, broke the protocol or vanished, or its endpoint
 * closed it while handling a message) tells its endpoint now, so that its
 * leave keeps its place among what this iteration still reads. */
void conn_ws_settle(struct conn *c);
/* conn_ws.c: the keepalive timer of an open WebSocket fired. */
void conn_ws_keepalive(struct conn *c);
/* conn_ws.c: arms the keepalive timer. */
void conn_ws_arm_keepalive(struct conn *c);
/* conn_ws.c: queues a close frame and enters CONN_CLOSING; 0 or -1 (aborted). */
int conn_ws_send_close(struct conn *c, uint16_t code, const char *reason, enum conn_close_why why);
/* conn.c: whether input must wait until queued output drains. */
int conn_output_blocked(const struct conn *c);

#endif
