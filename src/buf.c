/* buf: growable byte buffers, size-class free lists of blocks, and shared,
 * reference-counted frames built on them. Pure layer: no I/O; every
 * allocation is handed back through buf_free/buf_block_free/sbuf_unref, and
 * the free lists never hold more than BUF_CACHE_MAX bytes. */
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

#define MIN_CLASS 32u
#define NCLASSES 45   /* 32, then 40..64, 80..128, ..., 40960..65536: four per power of two */

/* The class of n bytes (n <= BUF_CLASS_MAX): class 0 is 32 bytes; for n in
 * (2^p, 2^(p+1)] the class is one of the four steps of 2^(p-2) above 2^p. */
static unsigned class_of(size_t n)
{
    if (n <= MIN_CLASS)
        return 0;
    unsigned p = 63u - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
    unsigned q = (unsigned)((n - 1) >> (p - 2));   /* 4..7 */
    return (p - 5) * 4 + (q - 4) + 1;
}

static const uint32_t class_sizes[NCLASSES] = {
    32, 40, 48, 56, 64, 80, 96, 112, 128,
    160, 192, 224, 256, 320, 384, 448, 512, 640,
    768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072,
    3584, 4096, 5120, 6144, 7168, 8192, 10240, 12288, 14336,
    16384, 20480, 24576, 28672, 32768, 40960, 49152, 57344, 65536,
};

static size_t class_size(unsigned c)
{
    return class_sizes[c];
}

size_t buf_block_size(size_t n)
{
    return n > BUF_CLASS_MAX ? n : class_size(class_of(n));
}

#if defined(__SANITIZE_ADDRESS__)
void *buf_block_alloc(size_t n)
{
    return malloc(buf_block_size(n));
}

void buf_block_free(void *p, size_t n)
{
    (void)n;
    free(p);
}

size_t buf_cache_bytes(void)
{
    return 0;
}

void buf_cache_trim(void)
{
}
#else
struct free_block {
    struct free_block *next;
};

static struct {
    struct free_block *head[NCLASSES];
    size_t held[NCLASSES];   /* bytes on each list */
    size_t low[NCLASSES];    /* the least each list held since the last trim: bytes unused all along */
    size_t total;
} cache;

void *buf_block_alloc(size_t n)
{
    if (n > BUF_CLASS_MAX)
        return malloc(n);
    unsigned c = class_of(n);
    struct free_block *b = cache.head[c];
    if (!b)
        return malloc(class_size(c));
    cache.head[c] = b->next;
    size_t size = class_size(c);
    cache.held[c] -= size;
    cache.total -= size;
    if (cache.held[c] < cache.low[c])
        cache.low[c] = cache.held[c];
    return b;
}

void buf_block_free(void *p, size_t n)
{
    if (!p)
        return;
    if (n > BUF_CLASS_MAX) {
        free(p);
        return;
    }
    unsigned c = class_of(n);
    size_t size = class_size(c);
    if (cache.held[c] + size > BUF_CACHE_CLASS_MAX || cache.total + size > BUF_CACHE_MAX) {
        free(p);
        return;
    }
    struct free_block *b = p;
    b->next = cache.head[c];
    cache.head[c] = b;
    cache.held[c] += size;
    cache.total += size;
}

size_t buf_cache_bytes(void)
{
    return cache.total;
}

void buf_cache_trim(void)
{
    for (unsigned c = 0; c < NCLASSES; c++) {
        size_t size = class_size(c);
        for (; cache.low[c] >= size; cache.low[c] -= size) {
            struct free_block *b = cache.head[c];
            cache.head[c] = b->next;
            cache.held[c] -= size;
            cache.total -= size;
            free(b);
        }
        cache.low[c] = cache.held[c];
    }
}
#endif

struct sbuf *sbuf_new(size_t len)
{
    if (len > UINT32_MAX - sizeof(struct sbuf))
        return NULL;
    size_t size = buf_block_size(sizeof(struct sbuf) + len);
    struct sbuf *s = buf_block_alloc(size);
    if (!s)
        return NULL;
    s->refs = 1;
    s->len = (uint32_t)len;
    s->cap = (uint32_t)(size - sizeof(struct sbuf));
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
        buf_block_free(s, sizeof(*s) + s->cap);
}
