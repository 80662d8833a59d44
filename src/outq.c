/* outq: ordered output queue of shared-frame references, private coalescing
 * buffers and files, kept in a ring (a block from buf.c's free lists) that is
 * given back whenever it empties. Pure: it offers iovecs and file ranges and
 * is told what was written; it never reads or writes a socket, and closing
 * the files it owns is its only system call. A file is sent by the caller (sendfile), never read into memory here. */
#include "outq.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OUTQ_MIN_CAP 4

struct out_file {
    int fd;
    off_t off;
    size_t left;
};

/* A buffer, or a file when is_file. A coalescing buffer is an sbuf with one
 * reference, this queue's: buf.h's frames are immutable because they are
 * shared, and this one never is, so its len may grow while it is the tail. */
struct outq_item {
    union {
        struct sbuf *buf;
        struct out_file *file;
    };
    uint32_t off;       /* bytes of buf already sent; for a file, nonzero once any was */
    uint32_t is_file;
};

_Static_assert(OUTQ_COALESCE_CAP <= UINT16_MAX && sizeof(struct outq) <= 32, "struct outq is in every connection");

/* Slots in the ring: a power of two, 0 without one. */
static uint32_t ring_cap(const struct outq *q)
{
    return q->items ? 1u << q->cap_log2 : 0;
}

static struct outq_item *slot(const struct outq *q, uint32_t i)
{
    return &q->items[(q->head + i) & (ring_cap(q) - 1)];
}

static int grow(struct outq *q)
{
    uint32_t old = ring_cap(q), cap = old ? old * 2 : OUTQ_MIN_CAP;
    struct outq_item *items = buf_block_alloc(cap * sizeof(*items));
    if (!items)
        return -1;
    for (uint32_t i = 0; i < q->count; i++)
        items[i] = *slot(q, i);
    buf_block_free(q->items, old * sizeof(*items));
    q->items = items;
    q->head = 0;
    q->cap_log2 = (uint8_t)__builtin_ctz(cap);
    return 0;
}

/* The free slot after the tail (not yet counted), or NULL when out of memory. */
static struct outq_item *tail_slot(struct outq *q)
{
    if (q->count == ring_cap(q) && grow(q) < 0)
        return NULL;
    return slot(q, q->count);
}

/* Ends coalescing into the tail. A buffer left less than half full is copied
 * to its exact size, so that memory stays in proportion to the bytes queued
 * when small and large frames alternate. */
static void seal(struct outq *q)
{
    if (q->room >= OUTQ_COALESCE_CAP / 2) {
        struct outq_item *it = slot(q, q->count - 1);
        struct sbuf *s = sbuf_new(it->buf->len);
        if (s) {
            memcpy(s->data, it->buf->data, it->buf->len);
            sbuf_unref(it->buf);
            it->buf = s;
        }
    }
    q->room = 0;
}

/* Appends n bytes to the tail coalescing buffer, starting a new one if they do not fit. */
static int coalesce(struct outq *q, const uint8_t *p, size_t n)
{
    if (q->room < n) {
        struct outq_item *it = tail_slot(q);
        struct sbuf *c = it ? sbuf_new(OUTQ_COALESCE_CAP - sizeof(struct sbuf)) : NULL;
        if (!c)
            return -1;
        seal(q);
        c->len = 0;
        it->buf = c;
        it->off = 0;
        it->is_file = 0;
        q->count++;
        q->room = (uint16_t)c->cap;
    }
    struct sbuf *c = slot(q, q->count - 1)->buf;
    memcpy(c->data + c->len, p, n);
    c->len += (uint32_t)n;
    q->room -= (uint16_t)n;
    q->bytes += n;
    return 0;
}

int outq_push(struct outq *q, struct sbuf *s, size_t off)
{
    if (off >= s->len)
        return 0;
    size_t n = s->len - off;
    if (n <= OUTQ_COALESCE_MAX && q->count)
        return coalesce(q, s->data + off, n);
    struct outq_item *it = tail_slot(q);
    if (!it)
        return -1;
    seal(q);
    it->buf = sbuf_ref(s);
    it->off = (uint32_t)off;
    it->is_file = 0;
    q->count++;
    q->bytes += n;
    return 0;
}

int outq_push_file(struct outq *q, int fd, off_t off, size_t len)
{
    struct out_file *f = len ? malloc(sizeof(*f)) : NULL;
    struct outq_item *it = f ? tail_slot(q) : NULL;
    if (!it) {
        free(f);
        close(fd);
        return len ? -1 : 0;
    }
    seal(q);
    f->fd = fd;
    f->off = off;
    f->left = len;
    it->file = f;
    it->off = 0;
    it->is_file = 1;
    q->count++;
    q->bytes += len;
    return 0;
}

int outq_iov(const struct outq *q, struct iovec *iov, int max, size_t budget)
{
    int n = 0;
    size_t total = 0;
    for (uint32_t i = 0; i < q->count && n < max && (n == 0 || total < budget); i++) {
        const struct outq_item *it = slot(q, i);
        if (it->is_file)
            break;
        iov[n].iov_base = it->buf->data + it->off;
        iov[n].iov_len = it->buf->len - it->off;
        total += iov[n].iov_len;
        n++;
    }
    return n;
}

int outq_file(const struct outq *q, int *fd, off_t *off, size_t *left)
{
    if (!q->count || !q->items[q->head].is_file)
        return 0;
    const struct out_file *f = q->items[q->head].file;
    *fd = f->fd;
    *off = f->off;
    *left = f->left;
    return 1;
}

/* Bytes of the item not yet written. */
static size_t item_left(const struct outq_item *it)
{
    return it->is_file ? it->file->left : it->buf->len - it->off;
}

/* Drops the item's reference, or closes its file. */
static void item_release(struct outq_item *it)
{
    if (it->is_file) {
        close(it->file->fd);
        free(it->file);
    } else {
        sbuf_unref(it->buf);
    }
}

/* An empty queue holds no memory. */
static void free_if_empty(struct outq *q)
{
    if (q->count == 0) {
        buf_block_free(q->items, ring_cap(q) * sizeof(struct outq_item));
        q->items = NULL;
        q->head = 0;
        q->cap_log2 = 0;
        q->room = 0;
    }
}

static void release_head(struct outq *q)
{
    item_release(&q->items[q->head]);
    q->head = (q->head + 1) & (ring_cap(q) - 1);
    q->count--;
    free_if_empty(q);
}

void outq_advance(struct outq *q, size_t n)
{
    q->bytes -= n;
    q->sent += (uint32_t)n;
    while (n > 0) {
        struct outq_item *it = &q->items[q->head];
        size_t left = item_left(it);
        if (n < left) {
            if (it->is_file) {
                it->file->off += (off_t)n;
                it->file->left -= n;
                it->off = 1;
            } else {
                it->off += (uint32_t)n;
            }
            return;
        }
        n -= left;
        release_head(q);
    }
}

size_t outq_bytes(const struct outq *q)
{
    return q->bytes;
}

size_t outq_cost(const struct outq *q)
{
    return q->bytes + q->room + (size_t)q->count * OUTQ_ITEM_COST + (size_t)ring_cap(q) * sizeof(struct outq_item);
}

uint32_t outq_sent(const struct outq *q)
{
    return q->sent;
}

void outq_drop_unsent(struct outq *q)
{
    uint32_t keep = q->count && q->items[q->head].off > 0 ? 1 : 0;
    while (q->count > keep) {
        struct outq_item *it = slot(q, q->count - 1);
        q->bytes -= item_left(it);
        item_release(it);
        q->count--;
    }
    q->room = 0;
    free_if_empty(q);
}

int outq_empty(const struct outq *q)
{
    return q->count == 0;
}

void outq_clear(struct outq *q)
{
    while (q->count)
        release_head(q);
    q->bytes = 0;
}
