/* broker_redis: the cluster broker on Redis. One Lua script per publication
 * numbers a room's messages (INCR), keeps them in the room's stream with the
 * number as the entry id (trimmed to the history size) and publishes on the
 * room's channel, so live delivery and history share one sequence and any gap
 * is visible and repaired from the stream. A node subscribes to a room's
 * channel while it has members there. Two hiredis links (commands, pub/sub)
 * on wshub's own loop; when Redis is unreachable publications are refused
 * (never queued without bound) and, once it is back, every open room is
 * caught up from its stream before anything newer is delivered. */
#ifndef WSHUB_BROKER_REDIS_H
#define WSHUB_BROKER_REDIS_H

#include <stdint.h>

#include "broker.h"
#include "redis_url.h"

struct loop;

struct broker_redis_config {
    struct loop *loop;
    struct redis_url url;
    const char *prefix;          /* of every key and channel, so clusters can share one Redis */
    const char *node_id;         /* this node's name, for logs */
    uint64_t history;            /* messages kept per room in its stream (0 = none) */
    unsigned history_ttl;        /* seconds an idle room's keys live; 0 = for ever */
    uint64_t roster_max;         /* roster entries a sync reads past which it samples (0: all) */
    uint64_t node_timeout_ms;    /* a node silent this long is dead: its members leave (at least 1000) */
};

/* Sets b up as a Redis broker handing publications to h, and starts
 * connecting. Returns 0, or -1 when out of memory. */
int broker_redis_init(struct broker *b, const struct broker_handler *h, const struct broker_redis_config *cfg);

#endif
