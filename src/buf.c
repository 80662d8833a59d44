/* buf: growable byte buffers and shared, reference-counted frames.
 * Pure layer: no I/O; every allocation is handed back through buf_free/sbuf_unref. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

int buf_reserve(struct buf *b, size_t extra)
{
    if (extra <= (size_t)(b->cap - b->len))
        return 0;
    if (extra > UINT32_MAX - b->len)
        return -1;
    uint64_t need = (uint64_t)b->len + extra;
    uint64_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > UINT32_MAX)
        cap = UINT32_MAX;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = (uint32_t)cap;
    return 0;
}

int buf_append(struct buf *b, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, data, n);
    b->len += (uint32_t)n;
    return 0;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= (uint32_t)n;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

struct sbuf *sbuf_new(size_t len)
{
    if (len > UINT32_MAX - sizeof(struct sbuf))
        return NULL;
    struct sbuf *s = malloc(sizeof(*s) + len);
    if (!s)
        return NULL;
    s->refs = 1;
    s->len = (uint32_t)len;
    return s;
}

struct sbuf *sbuf_ref(struct sbuf *s)
{
    s->refs++;
    return s;
}

void sbuf_unref(struct sbuf *s)
{
    if (s && --s->refs == 0)
        free(s);
}
