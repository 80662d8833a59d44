/* outq: a connection's output queue. It holds references to shared frames
 * (struct sbuf) and open files, in order, and writes them to a socket with
 * one sendmsg of many iovecs (or sendfile for a file). The array is allocated
 * on first use and freed when the queue empties, so an idle queue holds no memory. */
#ifndef WSHUB_OUTQ_H
#define WSHUB_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

struct out_file;

struct outq_item {
    struct sbuf *buf;        /* a shared frame, or NULL for a file */
    struct out_file *file;
    uint32_t off;            /* bytes of buf already sent */
};

struct outq {
    struct outq_item *items; /* ring of cap slots */
    uint32_t head, count, cap;
    uint32_t sent;           /* bytes ever written, modulo 2^32: tells progress from a stall */
    size_t bytes;            /* unsent bytes in the queue */
};

/* Queues bytes [off, s->len) of s, taking a reference of its own. Returns 0 or -1 (no memory). */
int outq_push(struct outq *q, struct sbuf *s, size_t off);

/* Queues len bytes of the open file fd from offset off; the queue owns fd from
 * now on (and closes it even if this fails). Returns 0 or -1. */
int outq_push_file(struct outq *q, int fd, off_t off, size_t len);

/* Writes from the head of the queue to socket fd until it is empty, the kernel
 * would block, or about `budget` bytes went out. Returns bytes written (>= 0),
 * or -1 on a socket error other than EAGAIN (errno set). */
ssize_t outq_write(struct outq *q, int fd, size_t budget);

/* Drops every item not yet started, keeping a partly written head so the
 * byte stream stays well formed. */
void outq_drop_unsent(struct outq *q);

/* True when nothing is queued. */
int outq_empty(const struct outq *q);

/* Drops everything queued, releasing references and closing files. */
void outq_clear(struct outq *q);

#endif
