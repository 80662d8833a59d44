/* buf: growable byte buffers and shared, reference-counted frames.
 * Pure layer: no I/O. struct buf owns its bytes; struct sbuf is immutable once
 * filled and is shared by every output queue that holds a reference to it. */
#ifndef WSHUB_BUF_H
#define WSHUB_BUF_H

#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer of up to 4 GiB. A zeroed struct is an empty buffer
 * that holds no memory; it is 16 bytes, as every connection holds two. */
struct buf {
    uint8_t *data;
    uint32_t len;
    uint32_t cap;
};

/* Makes room for at least `extra` more bytes, growing geometrically so that n
 * appends cost O(n) copying in total. Returns 0, or -1 when memory ran out. */
int buf_reserve(struct buf *b, size_t extra);

/* Appends n bytes (which must not point into b itself: growing may move it).
 * Returns 0, or -1 when memory ran out (b is unchanged). */
int buf_append(struct buf *b, const void *data, size_t n);

/* Drops the first n bytes (n <= len), moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);

/* Frees the memory and leaves an empty buffer. */
void buf_free(struct buf *b);

/* A shared buffer: encoded once, queued on many connections, freed by the last
 * unref. `len` bytes of `data` are valid. */
struct sbuf {
    uint32_t refs;
    uint32_t len;
    uint8_t data[];
};

/* Allocates a shared buffer of `len` bytes with one reference. NULL if out of memory. */
struct sbuf *sbuf_new(size_t len);

/* Takes one more reference and returns s. */
struct sbuf *sbuf_ref(struct sbuf *s);

/* Drops one reference; frees s when it was the last. NULL is ignored. */
void sbuf_unref(struct sbuf *s);

#endif
