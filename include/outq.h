/* outq: a connection's output queue. It holds, in order, references to shared
 * frames (struct sbuf) and open files, and tells the caller what to write
 * next (iovecs, or a file range for sendfile); the caller does the writing and
 * reports it back. Pure: it never reads or writes a socket (closing the files
 * it owns is its only system call). Small frames are copied into a private
 * tail buffer, so a flood of tiny frames costs few items and writes stay
 * large. The ring is allocated on first use and freed when the queue empties,
 * so an idle queue holds no memory. */
#ifndef WSHUB_OUTQ_H
#define WSHUB_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "buf.h"

#define OUTQ_COALESCE_MAX 256    /* frames up to this long are copied, not referenced, behind others */
#define OUTQ_COALESCE_CAP 4096   /* size of a buffer that collects them */
#define OUTQ_ITEM_COST 64        /* what an item costs beyond its bytes (headers, allocator, file state) */

struct outq_item;

/* 32 bytes: every connection holds one. */
struct outq {
    struct outq_item *items; /* ring of 2^cap_log2 slots, NULL when empty */
    size_t bytes;            /* unsent payload bytes */
    uint32_t head, count;
    uint32_t sent;           /* bytes ever advanced, modulo 2^32: tells progress from a stall */
    uint16_t room;           /* free bytes in the tail item when it is a coalescing buffer, else 0 */
    uint8_t cap_log2;
};

/* Queues bytes [off, s->len) of s: behind other items, up to OUTQ_COALESCE_MAX
 * bytes are copied into the queue's own tail buffer; otherwise the queue takes
 * a reference of its own. Returns 0 or -1 (no memory; nothing queued). */
int outq_push(struct outq *q, struct sbuf *s, size_t off);

/* Queues len bytes of the open file fd from offset off; the queue owns fd from
 * now on (and closes it even if this fails). Returns 0 or -1. */
int outq_push_file(struct outq *q, int fd, off_t off, size_t len);

/* Fills up to max iovecs from the head, adding buffers while fewer than budget
 * bytes are offered (so the last may go past it; at least one iovec if the head
 * is a buffer), stopping at a file. Returns the count; 0 when empty or when the
 * head is a file. The iovecs stay valid until the queue is next changed. */
int outq_iov(const struct outq *q, struct iovec *iov, int max, size_t budget);

/* When the head item is a file: sets its fd, offset and bytes left, returns 1;
 * else 0. A file that shrank makes sendfile return 0: the caller must treat
 * that as an error, since the promised length can no longer be sent. */
int outq_file(const struct outq *q, int *fd, off_t *off, size_t *left);

/* Marks n bytes (no more than outq_iov or outq_file offered) as written,
 * releasing finished items. */
void outq_advance(struct outq *q, size_t n);

/* Unsent payload bytes. */
size_t outq_bytes(const struct outq *q);

/* What the queue holds on this connection's account: unsent bytes, the free
 * room of its open coalescing buffer, OUTQ_ITEM_COST per item and the ring's
 * slots. A backlog limit must compare this, since a million empty frames cost
 * memory but no payload. */
size_t outq_cost(const struct outq *q);

/* Bytes ever advanced, modulo 2^32: tells progress from a stall. */
uint32_t outq_sent(const struct outq *q);

/* Drops every item not yet started, keeping a partly written head whole so the
 * byte stream stays well formed (a coalescing head keeps the frames after the
 * partly written one too). */
void outq_drop_unsent(struct outq *q);

/* True when nothing is queued. */
int outq_empty(const struct outq *q);

/* Drops everything queued, releasing references and closing files. */
void outq_clear(struct outq *q);

#endif
