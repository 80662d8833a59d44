/* ws: the RFC 6455 frame layer, sans-I/O. The parser takes the bytes a client
 * sent and returns events: data chunks (unmasked in place, UTF-8 checked for
 * text), whole control frames, or a protocol error with its close code. It
 * keeps the fragmentation and UTF-8 state across calls and never allocates.
 * With permessage-deflate allowed it accepts RSV1 on a message's first frame
 * and marks the message's chunks compressed (inflating them, and checking the
 * inflated text, is pmdz's job). The encoder writes server (unmasked) frame
 * headers, close payloads, and frames with RSV1 for compressed payloads. */
#ifndef WSHUB_WS_H
#define WSHUB_WS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

/* Close codes from RFC 6455 section 7.4.1 that the server sends. */
enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005,     /* never sent on the wire */
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
    WS_CLOSE_TRY_AGAIN = 1013,     /* try again later */
};

#define WS_MAX_HEADER 14          /* 2 + 8 (64-bit length) + 4 (mask) */
#define WS_RSV1 0x40u             /* first header byte: a compressed message (RFC 7692) */
#define WS_MAX_CONTROL_PAYLOAD 125

enum ws_event_type {
    WS_EV_NEED_MORE = 0, /* nothing complete yet: keep the unconsumed bytes, add more, call again */
    WS_EV_DATA,          /* a chunk of a text/binary message: data, len, opcode, first, last */
    WS_EV_CONTROL,       /* a whole ping, pong or close frame: opcode, data, len */
    WS_EV_ERROR,         /* protocol error: close_code and reason; the stream is dead */
};

struct ws_event {
    enum ws_event_type type;
    uint8_t opcode;       /* message opcode (TEXT/BINARY) for DATA; frame opcode for CONTROL */
    uint8_t first;        /* DATA: first chunk of a message */
    uint8_t last;         /* DATA: last chunk of a message (FIN frame, payload complete) */
    uint8_t compressed;   /* DATA: the message is compressed (RSV1 on its first frame); on every chunk */
    uint8_t *data;        /* points into the caller's buffer, already unmasked */
    size_t len;
    uint16_t close_code;  /* ERROR: the code to close with */
    const char *reason;   /* ERROR: a short static description */
};

/* 32 bytes: every WebSocket connection holds one. */
struct ws_parser {
    uint64_t remaining;   /* payload bytes left in the current data frame */
    uint32_t msg_len;     /* bytes of the current message so far, kept while a limit applies
                             (a limit is below 4 GiB, so it fits; unused when unlimited) */
    uint32_t max_text;    /* bytes of a text message, 0 = unlimited (32 bits: --max-message stops at 1 GiB) */
    uint32_t max_binary;  /* bytes of a binary message, 0 = unlimited */
    uint8_t mask[4];
    uint16_t fail_code;
    uint8_t utf8_state;
    unsigned mask_pos : 2;       /* offset into mask of the next payload byte */
    unsigned in_frame : 1;       /* inside a data frame's payload */
    unsigned frame_fin : 1;      /* FIN bit of the current data frame */
    unsigned first_pending : 1;  /* the message's first chunk has not been reported yet */
    unsigned failed : 1;         /* an error was returned: every later call returns it again */
    unsigned allow_rsv1 : 1;     /* permessage-deflate negotiated: RSV1 marks a compressed message */
    unsigned msg_compressed : 1; /* the unfinished message is compressed */
    unsigned msg_opcode : 4;     /* TEXT/BINARY of the unfinished message, 0 if none */
    unsigned fail_reason : 4;    /* index of the error's description */
};

/* Prepares a parser for a new connection. max_message bounds a message's total
 * payload (0 = no bound; above 3 GiB it is taken as 3 GiB); a frame
 * that would pass it is an error (1009) as soon as its header is read, before
 * any payload is buffered. */
void ws_parser_init(struct ws_parser *p, uint64_t max_message);

/* Sets separate bounds for text and binary messages (0 = unlimited), with
 * the same 1009 as soon as a header would pass them. Call before parsing. */
void ws_parser_set_limits(struct ws_parser *p, uint64_t max_text, uint64_t max_binary);

/* Allows RSV1 on the first frame of a message, after permessage-deflate was
 * negotiated: the message's chunks are then reported compressed, its UTF-8
 * is not checked here, and its wire length may pass the message limit by
 * deflate's worst-case overhead (1/1024 plus 64 bytes), since what the limit
 * bounds is the inflated size. RSV1 on a continuation or control frame stays
 * an error (1002), as do RSV2 and RSV3. Call before parsing. */
void ws_parser_allow_compressed(struct ws_parser *p);

/* Parses buf[0..len) and fills *ev with the next event. Returns the number of
 * bytes consumed (possibly > 0 with WS_EV_NEED_MORE, when only a header was
 * taken); the caller drops them and calls again with the rest until the event
 * is WS_EV_NEED_MORE, then keeps the leftover and calls again when more arrives. A data frame's payload is consumed
 * as it arrives; a header, and a control frame with its payload, are consumed
 * only when whole, so at most WS_MAX_HEADER + 125 bytes are ever left over.
 * buf is modified: payload bytes are unmasked in place. */
size_t ws_parse(struct ws_parser *p, uint8_t *buf, size_t len, struct ws_event *ev);

/* Validates a close frame's payload (empty, or a 2-byte code plus UTF-8 reason).
 * Returns 0 if valid, else the close code to fail with (1002 or 1007). */
uint16_t ws_close_payload_check(const uint8_t *payload, size_t len);

/* True when a peer may send this code in a close frame (RFC 6455 section 7.4). */
int ws_close_code_valid(unsigned code);

/* Encodes one unfragmented frame (header and payload) into a new shared
 * buffer with one reference, ready to queue on any number of connections;
 * its payload starts at ws_header_len(len). NULL if out of memory. */
struct sbuf *ws_frame_new(enum ws_opcode op, const void *payload, size_t len);

/* ws_frame_new for a payload that is already compressed: RSV1 is set. */
struct sbuf *ws_frame_new_compressed(enum ws_opcode op, const void *payload, size_t len);

/* Length of the header at the start of a frame the encoder wrote. */
size_t ws_frame_header_len(const uint8_t *frame);

/* Writes an unmasked frame header with FIN set for a payload of len bytes.
 * out must hold WS_MAX_HEADER bytes. Returns the header length (2, 4 or 10). */
size_t ws_encode_header(uint8_t *out, enum ws_opcode opcode, uint64_t len);

/* Length of the header ws_encode_header writes for len bytes of payload. */
size_t ws_header_len(uint64_t len);

/* Writes a close payload (code, then reason truncated to fit 125 bytes) into out,
 * which must hold 125 bytes. code 0 writes an empty payload. Returns its length. */
size_t ws_encode_close_payload(uint8_t *out, uint16_t code, const char *reason);

/* Unmasks (or masks) n bytes in place with the 4-byte key, starting at key
 * offset pos; works 64, 16 and 8 bytes at a time at any alignment, with the
 * key rotated to pos. Returns the next key offset. */
unsigned ws_mask(uint8_t *data, size_t n, const uint8_t key[4], unsigned pos);

#endif
