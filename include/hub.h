/* hub: chat rooms and their members, nicks, history and broadcast. The only
 * place that knows rooms and membership. It never touches a socket and never
 * blocks: it queues shared frames on members through the sink operations it is
 * given. A slow consumer is cut during the walk that finds it: the hub marks
 * it and calls ops->cut, and the member stays in its room (nick taken,
 * counted, sent nothing more) until the caller's hub_leave. Nick lookups,
 * joins and renames take constant expected (amortized) time whatever the room
 * size and whatever nicks peers choose; history is bounded in events and bytes.
 *
 * Re-entrancy rule (the session layer's, see conn.h): nothing the hub calls
 * calls back into it, and no member leaves while a member list is walked; a
 * member leaves only through hub_leave, which the chat layer calls at the
 * loop iteration's safe point. */
#ifndef WSHUB_HUB_H
#define WSHUB_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define HUB_NICK_MAX 32            /* bytes in a nick, without the NUL */
#define HUB_ROOM_MAX 64            /* bytes in a room name, without the NUL */
#define HUB_HISTORY_ITEM_COST 32   /* bytes a history event costs on top of its frame */
#define HUB_EPOCH_LEN 16           /* characters of a room's epoch */

struct hub;
struct hub_room;

/* How the hub reaches a member's connection (its "sink"). None of these may
 * call back into the hub. */
struct hub_sink_ops {
    /* Queues a reference to frame; returns 0, or -1 if the sink takes no more
     * output (the hub then cuts it). */
    int (*send)(void *sink, struct sbuf *frame);
    /* What the sink's queued output costs (unsent bytes plus per-item cost). */
    size_t (*backlog)(void *sink);
    /* Cuts off a slow consumer: marks its connection closing, nothing more.
     * cut is called during a walk of a member list; it must not call back into
     * the hub. The member leaves later, through the caller's hub_leave. */
    void (*cut)(void *sink);
};

/* A history event costs its frame's length plus HUB_HISTORY_ITEM_COST bytes. */
struct hub_config {
    size_t history;             /* message events kept per room (0 = none; at most 2^31) */
    size_t history_bytes;       /* cost of the events kept per room, 0 = no bound */
    size_t history_total_bytes; /* cost of the events kept in all rooms, 0 = no bound */
    size_t max_rooms;           /* rooms kept at once (empty ones are evicted, LRU first) */
    size_t max_members;         /* per room, 0 = unlimited */
    size_t max_backlog;         /* unsent bytes after which a member is cut off */
};

/* A member; embedded in the caller's per-connection state. A room's roster
 * also holds entries the hub owns, with no sink: members on other nodes of a
 * cluster, and local members that left until the cluster's order says so. */
struct hub_member {
    struct hub_room *room;
    void *sink;                   /* NULL for an entry the hub owns */
    struct hub_member *nick_next; /* next in its room's nick index chain */
    uint32_t slot;                /* index in the room's member array */
    uint8_t cut;                  /* cut off by the hub: gets nothing more until it leaves */
    uint8_t pending;              /* joined here, not yet in the room's order: not counted, sent nothing */
    uint8_t tag;                  /* the caller's bits, zeroed by hub_join, never read by the hub (chat:
                                     roster matching, authenticated, kicked) */
    char nick[HUB_NICK_MAX + 1];
};

/* Creates an empty hub. NULL if out of memory or no random hash key. */
struct hub *hub_new(const struct hub_config *cfg, const struct hub_sink_ops *ops);

/* Frees the hub, its rooms and histories (members must have left). */
void hub_free(struct hub *h);

/* The room called name, or NULL when the hub keeps no such room. */
struct hub_room *hub_find(struct hub *h, const char *name);

/* Checks that a member could join room `name` now. Returns 0, or 503 with *reason. */
int hub_can_join(struct hub *h, const char *name, const char **reason);

/* Adds m (with sink) to room `name` (at most HUB_ROOM_MAX bytes), creating the
 * room if needed. The nick is want (a valid nick, or NULL for guest-<n>), or
 * want with a numeric suffix k >= 2 when taken (k from a per-room counter, so
 * not always the smallest free one). Nothing is sent. Returns 0, or 503 with *reason. */
int hub_join(struct hub *h, struct hub_member *m, const char *name, const char *want, void *sink,
             const char **reason);

/* Removes m from its room, cut or not. Nothing is sent; an emptied room is kept for its history. */
void hub_leave(struct hub *h, struct hub_member *m);

/* Removes the local member m as hub_leave does, but keeps an entry the hub
 * owns under its nick (and user, or NULL) in the roster (unless m was
 * pending), until hub_roster_remove: a leave counts when the room's order
 * says so. */
void hub_leave_keep(struct hub *h, struct hub_member *m, const char *user);

/* Marks m pending (joined here, not yet in the room's order: not counted,
 * not listed by callers, sent nothing) or not. */
void hub_set_pending(struct hub_member *m, int pending);

/* Adds an entry the hub owns, called nick, of user (NULL: a guest), to
 * room's roster (a member on another node). Duplicates of a local member's nick are allowed for a
 * moment (a cluster's order settles them). Returns 0, or -1 if out of memory. */
int hub_roster_add(struct hub *h, struct hub_room *room, const char *nick, const char *user);

/* The user id of an entry the hub owns (NULL for a guest, or for a member with a sink: its owner knows). */
const char *hub_roster_user(const struct hub_member *m);

/* Removes or renames the entry the hub owns called nick (old). Returns 0, or -1 when none. */
int hub_roster_remove(struct hub *h, struct hub_room *room, const char *nick);
int hub_roster_rename(struct hub *h, struct hub_room *room, const char *old, const char *nick);

/* Counts n more members elsewhere in room without keeping entries for them
 * (a big room's roster is kept only up to a bound), and one less: 0, or -1
 * when none is counted; how many are counted so. */
void hub_roster_count(struct hub_room *room, size_t n);
int hub_roster_uncount(struct hub_room *room);
size_t hub_room_unlisted(const struct hub_room *room);

/* Removes every entry the hub owns from room's roster, and the counted ones. */
void hub_roster_clear(struct hub *h, struct hub_room *room);

/* The local member of room called nick (pending or not), or NULL. */
struct hub_member *hub_local_find(struct hub *h, struct hub_room *room, const char *nick);

/* The entry of room called nick (local, pending or owned by the hub), or NULL. */
struct hub_member *hub_member_find(struct hub *h, struct hub_room *room, const char *nick);

/* Gives m a free nick made from its own with a numeric suffix. Returns 0, or -1 if out of memory. */
int hub_repick(struct hub *h, struct hub_member *m);

/* Whether any entry of room's roster, local or not, is called nick. */
int hub_nick_taken(struct hub *h, const struct hub_room *room, const char *nick);

/* Renames m to nick (valid). Returns 0, or -1 when another member has it. */
int hub_rename(struct hub *h, struct hub_member *m, const char *nick);

/* Queues frame on every member of room that is not cut; a member whose backlog
 * would pass max_backlog, or whose sink refuses, is cut instead. */
void hub_broadcast(struct hub *h, struct hub_room *room, struct sbuf *frame);

/* Queues frame on one member, with the same rules. */
void hub_send(struct hub *h, struct hub_member *m, struct sbuf *frame);

/* Keeps message event number seq in room's history: frame holds a whole
 * encoded frame, the event's JSON starts at payload_off. The room's oldest events fall off to
 * stay within history and history_bytes, then the oldest events of the rooms
 * least recently pushed to, to stay within history_total_bytes. An event that
 * alone passes a byte bound, or finds no memory, is not kept. */
void hub_history_push(struct hub *h, struct hub_room *room, struct sbuf *frame, size_t payload_off,
                      uint64_t seq);

/* Total cost of the history events kept in all rooms, in bytes. */
size_t hub_history_bytes(const struct hub *h);

/* The room's name. */
const char *hub_room_name(const struct hub_room *room);

/* Number of members in the room's roster (on every node; cut ones
 * included, pending ones not; counted ones too). */
size_t hub_room_count(const struct hub_room *room);

/* Number of entries in the room's member array: the roster and pending members. */
size_t hub_room_entries(const struct hub_room *room);

/* Number of local members (with a sink, pending or not): entries 0 to local - 1. */
size_t hub_room_local(const struct hub_room *room);

/* The i-th entry (0 <= i < entries): local members first, then the entries
 * the hub owns, otherwise in no particular order. */
const struct hub_member *hub_room_member(const struct hub_room *room, size_t i);

/* Number of message events in the room's history. */
size_t hub_room_history_count(const struct hub_room *room);

/* The i-th history event, oldest first: its JSON text and length. */
const uint8_t *hub_room_history(const struct hub_room *room, size_t i, size_t *len);

/* The message sequence number of the i-th history event. */
uint64_t hub_room_history_seq(const struct hub_room *room, size_t i);

/* Takes the room's next message sequence number (1, 2, ...). */
uint64_t hub_room_next_seq(struct hub_room *room);

/* The room's last message sequence number (0 before the first message). */
uint64_t hub_room_seq(const struct hub_room *room);

/* The room's epoch: a string that changes whenever its sequence starts again
 * (a new room, or one evicted and created again). */
const char *hub_room_epoch(const struct hub_room *room);

/* Starts the room's numbering again as a cluster has it: its history is
 * dropped, its epoch and last seq set (epoch cut to HUB_EPOCH_LEN). */
void hub_room_restart(struct hub *h, struct hub_room *room, const char *epoch, uint64_t seq);

/* Sets the room's last seq (a cluster numbered a message). */
void hub_room_set_seq(struct hub_room *room, uint64_t seq);

/* Whether the room is in the cluster's order (its joiners may be welcomed),
 * and setting it; a new room is not. */
int hub_room_ready(const struct hub_room *room);
void hub_room_set_ready(struct hub_room *room, int ready);

/* Calls fn for every room kept, in no particular order; fn must not change the hub. */
void hub_each_room(const struct hub *h, void (*fn)(void *ctx, const struct hub_room *room), void *ctx);

/* Number of rooms currently kept. */
size_t hub_room_total(const struct hub *h);

/* Number of broadcasts so far (frames fanned out to a room). */
uint64_t hub_broadcast_total(const struct hub *h);

/* Entries of nick indexes and suffix counters compared so far: the cost of
 * nick lookups, which stays constant per join or rename on average. */
uint64_t hub_nick_probes(const struct hub *h);

#endif
