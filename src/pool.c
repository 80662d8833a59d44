/* pool: fixed-size object free lists over malloc'd chunks. Pure: no I/O. */
#include "pool.h"

#include <stdlib.h>
#include <string.h>

struct pool_chunk {
    struct pool_chunk *next;
    /* objects follow, 8-byte aligned */
};

#define CHUNK_HEADER 16

void pool_init(struct pool *p, size_t size, size_t per_chunk)
{
    memset(p, 0, sizeof(*p));
    size_t s = size < sizeof(void *) ? sizeof(void *) : size;
    p->size = (s + 7) & ~(size_t)7;
    p->per_chunk = per_chunk ? per_chunk : 1;
}

#if defined(__SANITIZE_ADDRESS__)
/* Under AddressSanitizer every object is its own allocation, so a use after
 * pool_free is caught instead of hidden by reuse. */
void *pool_alloc(struct pool *p)
{
    return calloc(1, p->size);
}

void pool_free(struct pool *p, void *obj)
{
    (void)p;
    free(obj);
}
#else
static int grow(struct pool *p)
{
    struct pool_chunk *c = malloc(CHUNK_HEADER + p->size * p->per_chunk);
    if (!c)
        return -1;
    c->next = p->chunks;
    p->chunks = c;
    char *obj = (char *)c + CHUNK_HEADER;
    for (size_t i = p->per_chunk; i-- > 0;) {
        void **slot = (void **)(obj + i * p->size);
        *slot = p->free_list;
        p->free_list = slot;
    }
    return 0;
}

void *pool_alloc(struct pool *p)
{
    if (!p->free_list && grow(p) < 0)
        return NULL;
    void **obj = p->free_list;
    p->free_list = *obj;
    memset(obj, 0, p->size);
    return obj;
}

void pool_free(struct pool *p, void *obj)
{
    if (!obj)
        return;
    *(void **)obj = p->free_list;
    p->free_list = obj;
}
#endif

void pool_destroy(struct pool *p)
{
    while (p->chunks) {
        struct pool_chunk *c = p->chunks;
        p->chunks = c->next;
        free(c);
    }
    p->free_list = NULL;
}
