/* broker_memory: the single-node broker, and the broker_* calls every broker
 * shares. A publication is handed straight back to the handler, unnumbered
 * (with its numbered callback, for the handler to call once the hub has
 * numbered it), so the hub's own sequence and history serve; the order is
 * the order of publish calls; a roster change comes straight back as it was
 * asked; a room is ready as soon as it is opened. Holds nothing else
 * and never allocates per publication. */
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

static int memory_presence(void *impl, const char *room, const struct broker_presence *p)
{
    const struct broker_handler *h = impl;
    struct broker_presence copy = *p;
    copy.mine = 1;
    h->presence(h->ctx, room, &copy);
    return 0;
}

static int memory_room_state(void *impl, const char *room, uint64_t since, size_t limit, broker_state_fn fn,
                             void *arg)
{
    (void)impl, (void)room, (void)since, (void)limit, (void)fn, (void)arg;
    return 1;   /* the hub holds every room there is */
}

static int memory_room_list(void *impl, const char *prefix, const char *after, size_t limit, broker_list_fn fn,
                            void *arg)
{
    (void)impl, (void)prefix, (void)after, (void)limit, (void)fn, (void)arg;
    return 1;   /* the hub holds every room there is */
}

static int memory_kick(void *impl, const struct broker_kick *k)
{
    (void)impl;
    (void)k;
    return 0;   /* one node: no member elsewhere */
}

static void memory_room_open(void *impl, const char *room)
{
    const struct broker_handler *h = impl;
    h->ready(h->ctx, room);
}

static void memory_room_close(void *impl, const char *room)
{
    (void)impl;
    (void)room;
}

static int memory_available(void *impl, const char **why)
{
    (void)impl;
    (void)why;
    return 1;
}

static void memory_metrics(void *impl, struct metrics *m)
{
    (void)impl;
    (void)m;
}

static void memory_free(void *impl)
{
    free(impl);
}

static const struct broker_ops memory_ops = {
    .name = "memory",
    .publish = memory_publish,
    .presence = memory_presence,
    .kick = memory_kick,
    .room_state = memory_room_state,
    .room_list = memory_room_list,
    .room_open = memory_room_open,
    .room_close = memory_room_close,
    .available = memory_available,
    .metrics = memory_metrics,
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

int broker_presence(struct broker *b, const char *room, const struct broker_presence *p)
{
    return b->ops->presence(b->impl, room, p);
}

int broker_room_state(struct broker *b, const char *room, uint64_t since, size_t limit, broker_state_fn fn,
                      void *arg)
{
    return b->ops->room_state(b->impl, room, since, limit, fn, arg);
}

int broker_room_list(struct broker *b, const char *prefix, const char *after, size_t limit, broker_list_fn fn,
                     void *arg)
{
    return b->ops->room_list(b->impl, prefix, after, limit, fn, arg);
}

int broker_kick(struct broker *b, const struct broker_kick *k)
{
    return b->ops->kick(b->impl, k);
}

void broker_room_open(struct broker *b, const char *room)
{
    b->ops->room_open(b->impl, room);
}

void broker_room_close(struct broker *b, const char *room)
{
    b->ops->room_close(b->impl, room);
}

int broker_available(struct broker *b, const char **why)
{
    return b->ops->available(b->impl, why);
}

void broker_metrics(struct broker *b, struct metrics *m)
{
    b->ops->metrics(b->impl, m);
}

void broker_free(struct broker *b)
{
    if (b->ops)
        b->ops->free(b->impl);
    b->ops = NULL;
    b->impl = NULL;
}
