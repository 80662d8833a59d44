/* chat: the chat-room endpoint (/ws/<room>). Turns chat lines into hub
 * actions and hub state into JSON events (protocol version 1): welcome, join,
 * leave, nick, message, members, error. Applies flood control and line
 * limits. Knows nothing of sockets: it talks to conn and the hub. */
#ifndef WSHUB_CHAT_H
#define WSHUB_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "hub.h"
#include "stats.h"

struct chat;

struct chat_config {
    struct hub_config hub;
    uint64_t rate_limit;   /* chat lines per second per connection, 0 = off */
    uint64_t max_line;     /* bytes */
    uint64_t presence_limit; /* above this many members: no join/leave events,
                                member lists cut to this length; 0 = no limit */
};

/* Creates the chat endpoint and its hub. NULL if out of memory. */
struct chat *chat_new(const struct chat_config *cfg);

/* Frees the chat state (after every connection has closed). */
void chat_free(struct chat *chat);

/* Fills in the chat's figures (rooms, frames broadcast); a server_stats_fn. */
void chat_fill_stats(void *chat, struct stats *s);

/* The endpoint to route /ws paths to. */
const struct endpoint *chat_endpoint(const struct chat *chat);

#endif
