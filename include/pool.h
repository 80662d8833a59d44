/* pool: a free list of fixed-size objects carved from large chunks. Long-lived
 * objects (connections, room members) come from here so that they sit side by
 * side instead of between short-lived buffers, which would leave a hole next
 * to every idle connection. Pure: no I/O; memory goes back at pool_destroy.
 * Under AddressSanitizer each object is a plain allocation instead. */
#ifndef WSHUB_POOL_H
#define WSHUB_POOL_H

#include <stddef.h>

struct pool_chunk;

struct pool {
    size_t size;                 /* object size, rounded up to 8 */
    size_t per_chunk;
    void *free_list;
    struct pool_chunk *chunks;
};

/* Prepares a pool of objects of `size` bytes, allocated per_chunk at a time. */
void pool_init(struct pool *p, size_t size, size_t per_chunk);

/* A zeroed object, or NULL when out of memory. */
void *pool_alloc(struct pool *p);

/* Returns an object to the pool. NULL is ignored. */
void pool_free(struct pool *p, void *obj);

/* Frees every chunk (every object must be unused). */
void pool_destroy(struct pool *p);

#endif
