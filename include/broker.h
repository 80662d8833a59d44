/* broker: the seam between this node's hub and the rest of a cluster. Chat
 * publishes every room event through a broker and receives each one back,
 * on every node (this one too), in the room's one order, through the
 * handler it gave the broker; only then does the hub deliver it to local
 * members. The in-memory broker (one node) hands a publication straight back;
 * a cluster broker (Redis) numbers messages, keeps history and fans out
 * between nodes. A broker never touches a socket of a client and never
 * calls back into the publisher's caller except through the handler. */
#ifndef WSHUB_BROKER_H
#define WSHUB_BROKER_H

#include <stddef.h>
#include <stdint.h>

enum broker_kind {
    BROKER_MESSAGE,   /* a chat message: numbered in the room, kept in history */
    BROKER_EVENT,     /* any other event (join, leave, nick): keeps its place in the order */
    BROKER_BINARY,    /* a binary relay: payload bytes as sent */
};

/* One publication. For a MESSAGE, data is the event's JSON up to (without)
 * its seq field and closing brace: the number is known only once the broker
 * has put it in the room's order. */
struct broker_pub {
    enum broker_kind kind;
    uint64_t seq;           /* on delivery of a MESSAGE: its number, or 0 when the hub numbers it */
    const uint8_t *data;
    size_t len;
};

/* How a broker hands publications back; data is valid during the call only. */
struct broker_handler {
    void *ctx;
    void (*deliver)(void *ctx, const char *room, const struct broker_pub *p);
};

struct broker_ops {
    const char *name;
    /* Publishes p into room. Returns 0, or -1 when the broker cannot take it
     * now (the cluster is unreachable or over its queue limit). */
    int (*publish)(void *impl, const char *room, const struct broker_pub *p);
    /* Frees the broker's state. */
    void (*free)(void *impl);
};

struct broker {
    const struct broker_ops *ops;
    void *impl;
};

/* The single-node broker: publish hands the publication straight back to
 * the handler, unnumbered (the hub numbers messages). Returns 0 or -1. */
int broker_memory_init(struct broker *b, const struct broker_handler *h);

/* Publishes through b (see broker_ops.publish). */
int broker_publish(struct broker *b, const char *room, const struct broker_pub *p);

/* Frees b's state (b itself is the caller's). */
void broker_free(struct broker *b);

#endif
