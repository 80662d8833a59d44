/* hub: chat rooms and their members, history and broadcast. The only place
 * that knows rooms and membership. It never touches a socket: it queues
 * shared frames on members through the sink operations it is given, and cuts
 * slow consumers only after a broadcast has finished walking the member list. */
#ifndef WSHUB_HUB_H
#define WSHUB_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "command.h"

struct hub;
struct hub_room;

/* How the hub reaches a member's connection (its "sink"). */
struct hub_sink_ops {
    /* Queues a reference to frame; returns 0 or -1 if the sink takes no more output. */
    int (*send)(void *sink, struct sbuf *frame);
    /* Bytes queued on the sink and not yet sent. */
    size_t (*backlog)(void *sink);
    /* Cuts off a slow consumer. Called outside any walk of a member list; it
     * is expected to end in hub_leave for this member. */
    void (*cut)(void *sink);
};

struct hub_config {
    size_t history;       /* message events kept per room (0 = none) */
    size_t max_rooms;     /* rooms kept at once (empty ones are evicted, LRU first) */
    size_t max_members;   /* per room, 0 = unlimited */
    size_t max_backlog;   /* unsent bytes after which a member is cut off */
};

/* A member; embedded in the caller's per-connection state. */
struct hub_member {
    struct hub_room *room;
    void *sink;
    uint32_t slot;                /* index in the room's member array */
    uint8_t cut_pending;          /* on the hub's list of members to cut */
    char nick[COMMAND_NICK_MAX + 1];
};

/* Creates an empty hub. NULL if out of memory. */
struct hub *hub_new(const struct hub_config *cfg, const struct hub_sink_ops *ops);

/* Frees the hub, its rooms and histories (members must have left). */
void hub_free(struct hub *h);

/* Checks that a member could join room `name` now. Returns 0, or 503 with *reason. */
int hub_can_join(struct hub *h, const char *name, const char **reason);

/* Adds m (with sink) to room `name`, creating the room if needed. The nick is
 * want (a valid nick, or NULL for guest-<n>), with a numeric suffix when it is
 * taken. Nothing is sent. Returns 0, or 503 with *reason. */
int hub_join(struct hub *h, struct hub_member *m, const char *name, const char *want, void *sink,
             const char **reason);

/* Removes m from its room. Nothing is sent; an emptied room is kept for its history. */
void hub_leave(struct hub *h, struct hub_member *m);

/* Renames m to nick (valid). Returns 0, or -1 when another member has it. */
int hub_rename(struct hub *h, struct hub_member *m, const char *nick);

/* Queues frame on every member of room, then cuts the members whose backlog
 * had passed max_backlog (they get no more frames). */
void hub_broadcast(struct hub *h, struct hub_room *room, struct sbuf *frame);

/* Queues frame on one member, with the same slow-consumer rule. */
void hub_send(struct hub *h, struct hub_member *m, struct sbuf *frame);

/* Keeps a message event in room's history: frame holds a whole encoded frame,
 * the event's JSON starts at payload_off. Older events fall off. */
void hub_history_push(struct hub *h, struct hub_room *room, struct sbuf *frame, size_t payload_off);

/* The room's name. */
const char *hub_room_name(const struct hub_room *room);

/* Number of members in the room. */
size_t hub_room_count(const struct hub_room *room);

/* The i-th member (0 <= i < count), in no particular order. */
const struct hub_member *hub_room_member(const struct hub_room *room, size_t i);

/* Number of message events in the room's history. */
size_t hub_room_history_count(const struct hub_room *room);

/* The i-th history event, oldest first: its JSON text and length. */
const uint8_t *hub_room_history(const struct hub_room *room, size_t i, size_t *len);

/* Takes the room's next message sequence number (1, 2, ...). */
uint64_t hub_room_next_seq(struct hub_room *room);

/* Number of rooms currently kept. */
size_t hub_room_total(const struct hub *h);

/* Number of broadcasts so far (frames fanned out to a room). */
uint64_t hub_broadcast_total(const struct hub *h);

#endif
