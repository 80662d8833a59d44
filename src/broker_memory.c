/* broker_memory: the single-node broker. A publication is handed straight
 * back to the handler, unnumbered, so the hub's own sequence and history
 * serve; the order is the order of publish calls. Holds nothing else and
 * never allocates per publication. */
#include "broker.h"

#include <stdlib.h>

static int memory_publish(void *impl, const char *room, const struct broker_pub *p)
{
    const struct broker_handler *h = impl;
    struct broker_pub copy = *p;
    copy.seq = 0;
    h->deliver(h->ctx, room, &copy);
    return 0;
}

static void memory_free(void *impl)
{
    free(impl);
}

static const struct broker_ops memory_ops = {
    .name = "memory",
    .publish = memory_publish,
    .free = memory_free,
};

int broker_memory_init(struct broker *b, const struct broker_handler *h)
{
    struct broker_handler *copy = malloc(sizeof(*copy));
    if (!copy)
        return -1;
    *copy = *h;
    *b = (struct broker){.ops = &memory_ops, .impl = copy};
    return 0;
}

int broker_publish(struct broker *b, const char *room, const struct broker_pub *p)
{
    return b->ops->publish(b->impl, room, p);
}

void broker_free(struct broker *b)
{
    if (b->ops)
        b->ops->free(b->impl);
    b->ops = NULL;
    b->impl = NULL;
}
