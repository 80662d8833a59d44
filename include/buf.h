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

/* Blocks from per-size-class free lists: sizes up to BUF_CLASS_MAX are
 * rounded up to one of four classes per power of two and a freed block is
 * kept for the next request of its class, so a message's buffers cost no
 * trip through malloc in steady state. A class keeps at most
 * BUF_CACHE_CLASS_MAX bytes and all classes together BUF_CACHE_MAX; what is
 * freed beyond that goes back to malloc, so a burst leaves little behind.
 * Larger blocks are plain malloc. Under AddressSanitizer nothing is kept,
 * so a use after free is caught. One thread per process: the lists are
 * process-wide and unlocked. */
#define BUF_CLASS_MAX (64u * 1024u)
#define BUF_CACHE_CLASS_MAX (1024u * 1024u)
#define BUF_CACHE_MAX (4u * 1024u * 1024u)

/* The size a request of n bytes really gets (its class, or n above BUF_CLASS_MAX). */
size_t buf_block_size(size_t n);

/* A block of at least n bytes (buf_block_size(n)), or NULL when out of memory. */
void *buf_block_alloc(size_t n);

/* Returns a block; n must be the size it was asked for (or its block size). NULL is ignored. */
void buf_block_free(void *p, size_t n);

/* Bytes the free lists hold now. */
size_t buf_cache_bytes(void);

/* Frees the blocks that stayed on the free lists since the last call (each
 * list's low-water mark): called now and then (the server does, once a
 * second), it gives back what a burst left and keeps what steady traffic
 * reuses. */
void buf_cache_trim(void);

/* A shared buffer: encoded once, queued on many connections, freed by the last
 * unref. `len` bytes of `data` are valid; `cap` bytes are there (its block's
 * rounding), which only the buffer's single owner may fill, before sharing it. */
struct sbuf {
    uint32_t refs;
    uint32_t len;
    uint32_t cap;
    uint8_t data[];
};

/* Allocates a shared buffer of `len` bytes (cap >= len) with one reference,
 * from the free lists. NULL if out of memory. */
struct sbuf *sbuf_new(size_t len);

/* Takes one more reference and returns s. */
struct sbuf *sbuf_ref(struct sbuf *s);

/* Drops one reference; frees s when it was the last. NULL is ignored. */
void sbuf_unref(struct sbuf *s);

#endif
