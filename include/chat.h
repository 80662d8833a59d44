/* chat: the chat-room endpoint (mounted at /ws: /ws/<room>). Turns chat lines
 * into hub actions and hub state into JSON events (protocol version 1):
 * welcome, join, leave, nick, message, members, error. Applies flood control
 * (lines, and binary frames and bytes) and its own message limits. Knows
 * nothing of sockets: it talks to conn and the hub. */
#ifndef WSHUB_CHAT_H
#define WSHUB_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "broker.h"
#include "conn.h"
#include "hub.h"
#include "loop.h"
#include "metrics.h"

struct chat;

struct chat_config {
    struct hub_config hub;
    uint32_t rate_limit;         /* chat lines per second per connection, burst 2x; 0 = off */
    uint32_t binary_rate_limit;  /* binary frames per second per connection, burst 2x; 0 = off */
    uint32_t binary_byte_rate;   /* binary bytes per second per connection, burst 2x; 0 = off */
    uint64_t max_line;           /* bytes of a chat line (one trailing line ending not counted) */
    uint64_t max_binary;         /* bytes of a binary message relayed to a room */
    uint64_t presence_limit;     /* above this many members: no join/leave events,
                                    member lists cut to this length; 0 = no limit */
    uint64_t max_resume;         /* messages a resuming client may be sent in its welcome */
    const struct auth *auth;     /* connection tokens; NULL = everyone joins as a guest */
    struct loop *loop;           /* for token expiry timers (needed with auth) */
};

/* Close codes of the chat endpoint. */
#define CHAT_CLOSE_EXPIRED 4001     /* the connection's token expired (and was not refreshed) */
#define CHAT_CLOSE_FORBIDDEN 4003   /* kicked by a moderator, or disconnected by the application */

/* Sets up the broker chat publishes through, handing publications to h. */
typedef int (*chat_broker_init_fn)(struct broker *b, const struct broker_handler *h, void *arg);

/* Creates the chat endpoint, its hub and its broker (made by init with arg).
 * NULL if out of memory or the broker could not be set up. */
struct chat *chat_new(const struct chat_config *cfg, chat_broker_init_fn init, void *arg);

/* 1 while the chat can take messages, else 0 with *why (for /healthz). */
int chat_healthy(struct chat *chat, const char **why);

/* Frees the chat state (after every connection has closed). */
void chat_free(struct chat *chat);

/* Writes the chat's figures: rooms, frames broadcast, history bytes held. */
void chat_metrics(struct chat *chat, struct metrics *m);

/* The user id (the token's sub) of member m, or NULL for a guest. */
const char *chat_member_user(const struct hub_member *m);

/* Closes every connection of user with CHAT_CLOSE_FORBIDDEN and reason (at
 * most 123 bytes are sent); each room gets a leave marked as a kick with the
 * reason. Returns how many connections it closed. */
size_t chat_disconnect_user(struct chat *chat, const char *user, const char *reason);

/* The same for the member called nick in room. Returns 0, or -1 when there is
 * no such member (on this node). */
int chat_disconnect_nick(struct chat *chat, const char *room, const char *nick, const char *reason);

/* Posts a message into room from the application (not a member): the same
 * event as a member's, with nick, numbered and kept the same way, marked
 * "api":true. done(arg, ...) is told its number once it has one (exactly
 * once, maybe before this returns; 404 when a single node keeps no such
 * room). Returns 0, or -1 when it could not be sent now (done not called). */
int chat_post(struct chat *chat, const char *room, const char *nick, const char *text, size_t len,
              broker_numbered_fn done, void *arg);

/* Reads room as the cluster has it (roster, and up to limit messages after
 * since) through the broker; fn is called once, maybe later. Returns 0, 1
 * when this node's hub holds it all (one node: read the hub), or -1 when it
 * cannot now. */
int chat_room_state(struct chat *chat, const char *room, uint64_t since, size_t limit, broker_state_fn fn,
                    void *arg);

/* Lists the cluster's rooms (names starting with prefix, after `after`, up
 * to limit) through the broker; fn is called once, maybe later. Returns 0,
 * 1 when this node's hub holds every room (one node: read the hub), or -1
 * when it cannot now. */
int chat_room_list(struct chat *chat, const char *prefix, const char *after, size_t limit, broker_list_fn fn,
                   void *arg);

/* The hub, for reading rooms, members and history; never to change them. */
struct hub *chat_hub(const struct chat *chat);

/* The endpoint to mount at /ws (it takes the room from the rest of the path). */
const struct endpoint *chat_endpoint(const struct chat *chat);

#endif
