/* pmdz: permessage-deflate's compression (RFC 7692 section 7.2) with zlib.
 * One struct pmdz serves every connection of the server: compressors (one
 * per window size asked for, made when first needed), a cache holding the
 * compressed forms of the last shared frame, an inflater for compressed
 * messages that arrive whole, and counters. Since the server never takes
 * context over between messages (server_no_context_takeover), one compressed
 * frame is right for every connection that negotiated the same window, which
 * is how a broadcast is compressed once for the whole room.
 *
 * Receiving is bounded: a message is inflated as it arrives into the
 * caller's buffer, never past the message limit plus one byte (a zip bomb
 * costs what the limit allows, no more), with text checked as UTF-8 on the
 * way. A message that arrives in pieces keeps a struct pmdz_msg (a zlib
 * stream) only until its last piece; no inflate state outlives a message,
 * since the server always asks for client_no_context_takeover.
 *
 * Knows frames (ws) and buffers (buf); never does I/O and never sees a
 * connection. */
#ifndef WSHUB_PMDZ_H
#define WSHUB_PMDZ_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "metrics.h"
#include "ws.h"

struct pmdz;
struct pmdz_msg;

/* What inflating a chunk came to. On anything but PMDZ_OK the message is
 * over (its pmdz_msg freed) and the connection must close with the code
 * pmdz_close_code gives. */
enum pmdz_status {
    PMDZ_OK,
    PMDZ_TOO_BIG,    /* inflated, it would pass the limit: 1009 */
    PMDZ_CORRUPT,    /* not valid deflate data: 1007 */
    PMDZ_BAD_UTF8,   /* inflated text is not UTF-8: 1007 */
    PMDZ_NO_MEMORY,  /* 1011 */
};

/* Creates the shared state; messages shorter than min_size are sent as they
 * are. NULL if out of memory. */
struct pmdz *pmdz_new(size_t min_size);

/* Frees it with its zlib streams and cached frames. NULL is ignored. */
void pmdz_free(struct pmdz *z);

/* Encodes one message for a connection that negotiated deflate with zlib
 * window wbits (9..15): compressed with RSV1 when it is a text or binary
 * message of at least min_size bytes that compressing makes smaller, else a
 * plain frame (also when compressing runs out of memory). NULL if out of
 * memory. */
struct sbuf *pmdz_frame(struct pmdz *z, unsigned wbits, enum ws_opcode op, const void *payload, size_t len);

/* The frame to queue, on a connection that negotiated window wbits, for the
 * shared frame `frame` (made by ws_frame_new): its compressed form when
 * pmdz_frame would compress it, else frame itself. The compressed form is
 * made once per window size and kept while frame is the last shared frame
 * asked for (with a reference to it), so that a broadcast walking a room
 * compresses once. Returns a new reference; never fails (out of memory, the
 * plain frame goes). */
struct sbuf *pmdz_shared(struct pmdz *z, unsigned wbits, struct sbuf *frame);

/* Inflates the next chunk of a compressed message, appending the output to
 * out. *msg is the message's stream between chunks: NULL before its first
 * chunk and after its last (a message whose one chunk is also its last uses
 * the shared inflater and holds nothing). last: the message ends with this
 * chunk (the 0x00 0x00 0xff 0xff tail is added). text: check the output is
 * UTF-8. limit: bytes the inflated message may have (0 = no limit). */
enum pmdz_status pmdz_inflate(struct pmdz *z, struct pmdz_msg **msg, const uint8_t *data, size_t len, int last,
                              int text, uint64_t limit, struct buf *out);

/* Frees a message's stream (a connection that ends mid-message). NULL is ignored. */
void pmdz_msg_free(struct pmdz_msg *m);

/* The close code for a status other than PMDZ_OK, and a short reason. */
uint16_t pmdz_close_code(enum pmdz_status st, const char **reason);

/* Writes the counters: compressions, bytes before and after, compressed
 * messages sent and received. */
void pmdz_metrics(const struct pmdz *z, struct metrics *m);

#endif
