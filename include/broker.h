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

#include "metrics.h"

enum broker_kind {
    BROKER_MESSAGE,   /* a chat message: numbered in the room, kept in history */
    BROKER_EVENT,     /* any other event (join, leave, nick): keeps its place in the order */
    BROKER_BINARY,    /* a binary relay: payload bytes as sent */
};

/* How a publisher learns a MESSAGE's place: status 0 with its seq and the
 * room's epoch, or 404 (a single node: the room is not kept here) or 503
 * (the cluster could not take it), seq 0 and epoch NULL. */
typedef void (*broker_numbered_fn)(void *arg, int status, uint64_t seq, const char *epoch);

/* One publication. For a MESSAGE, data is the event's JSON up to (without)
 * its seq field and closing brace: the number is known only once the broker
 * has put it in the room's order. */
struct broker_pub {
    enum broker_kind kind;
    uint64_t seq;           /* on delivery of a MESSAGE: its number, or 0 when the hub numbers it */
    int history;            /* on delivery: a message from the room's history, to keep, not to send */
    const uint8_t *data;
    size_t len;
    /* A MESSAGE whose publisher waits for its number: called exactly once
     * for a publication the broker took, maybe before publish returns. A
     * broker that numbers messages calls it when it has (from the loop); one
     * that leaves the numbering to the hub passes it on with the delivery
     * (seq 0) and the handler calls it. NULL: nobody waits. */
    broker_numbered_fn numbered;
    void *numbered_arg;
};

/* A change in a room's roster, published into the room's order. */
enum broker_presence_kind {
    BROKER_JOIN,     /* a member joined: nick is the one it has in the room */
    BROKER_RENAME,   /* old became nick */
    BROKER_LEAVE,    /* nick left */
};

struct broker_presence {
    enum broker_presence_kind kind;
    uint64_t id;          /* the publishing node's own number for the member */
    const char *nick;     /* join: given (on publish: wanted); rename: the new nick; leave: the nick */
    const char *old;      /* join: the nick the joiner has on its node until then; rename: the old nick */
    const char *why;      /* leave: why, when not by its own choice ("timeout": its node went silent), or NULL */
    int guest;            /* join: no nick was asked for: a cluster broker may pick guest-N */
    int mine;             /* on delivery: about a member of this node */
    int given;            /* on delivery of a JOIN: nick is the one the cluster gave (else the joiner keeps its own) */
    int refused;          /* on delivery, of mine: a rename whose nick was taken, a join that did not reach
                             the cluster, or a leave of an entry no longer this node's; nothing changed */
    const char *user;     /* the member's user id when it signed in, else NULL (carried on one node; a
                             cluster broker may not carry it yet) */
    int kicked;           /* leave: removed by a moderator or the application; why holds the reason */
    const char *kicked_by, *kicked_by_user;   /* leave: the moderator's nick and user id, or NULL */
};

/* Closing members wherever they are: every connection of user, or the
 * member called nick in room. Strings valid during the call only. */
struct broker_kick {
    const char *user;       /* all connections of this user id, or NULL */
    const char *room, *nick;   /* or the member called nick in room */
    const char *reason;     /* the close reason ("" for none) */
    const char *by, *by_user;  /* the moderator's nick and user id, or NULL (the application) */
};

/* A room as the cluster has it, read for the application (see
 * broker_ops.room_state); valid during the callback only. */
struct broker_room_state {
    const char *epoch;
    uint64_t seq;                           /* the room's last message */
    const struct broker_presence *members;  /* nick and user of each */
    size_t nmembers;
    const struct broker_pub *messages;      /* MESSAGEs after since, oldest first, numbered */
    size_t nmessages;
    uint64_t oldest;                        /* the oldest message kept, 0 when none */
};

/* status: 0 (st set), 404 (no such room in the cluster) or 503. */
typedef void (*broker_state_fn)(void *arg, int status, const struct broker_room_state *st);

/* One room of the cluster's list (see broker_ops.room_list). */
struct broker_room_entry {
    const char *room;
    uint64_t count;                         /* its members, on every node */
    uint64_t seq;                           /* its last message, 0 when none */
    const char *epoch;
};

/* A page of the cluster's rooms in name order; valid during the callback
 * only. next: the name to list after for the following page, or NULL when
 * no room is left (it may be set on a page with fewer rooms than asked, even
 * none, when the broker bounded its work). */
struct broker_room_list {
    const struct broker_room_entry *rooms;
    size_t n;
    const char *next;
};

/* status: 0 (l set) or 503. */
typedef void (*broker_list_fn)(void *arg, int status, const struct broker_room_list *l);

/* How a broker hands a room's state and publications back; data is valid
 * during the call only. A room opened with room_open gets: restart (its
 * state as the cluster has it), its history as history deliveries, oldest
 * first, then ready; after that, live deliveries in order. A cluster broker
 * that lost and found its link again, or saw a gap it could not fill, does
 * the same again (restart, history, ready). */
struct broker_handler {
    void *ctx;
    void (*deliver)(void *ctx, const char *room, const struct broker_pub *p);
    /* The room's epoch and last seq in the cluster; history deliveries follow. */
    void (*restart)(void *ctx, const char *room, const char *epoch, uint64_t seq);
    /* The room is in the cluster's order: its joiners may be welcomed. */
    void (*ready)(void *ctx, const char *room);
    /* A roster change in the room's order (one of mine maybe refused: see refused). */
    void (*presence)(void *ctx, const char *room, const struct broker_presence *p);
    /* The room's roster as the cluster has it (after restart, before ready):
     * n entries of total members (the entries may leave some out, never
     * this node's own); a cluster broker only. */
    void (*roster)(void *ctx, const char *room, const struct broker_presence *entries, size_t n, size_t total);
    /* Another node asks this one to close its members that k names. */
    void (*kick)(void *ctx, const struct broker_kick *k);
};

struct broker_ops {
    const char *name;
    /* Publishes p into room. Returns 0, or -1 when the broker cannot take it
     * now (the cluster is unreachable or over its queue limit; p->numbered
     * is then not called). */
    int (*publish)(void *impl, const char *room, const struct broker_pub *p);
    /* Publishes a roster change of a member of this node into room. A JOIN
     * or RENAME comes back with the nick the cluster gave (a RENAME maybe
     * refused). Returns 0, or -1 when the broker cannot take it now. */
    int (*presence)(void *impl, const char *room, const struct broker_presence *p);
    /* Reads room's state from the cluster: its roster, and up to limit
     * messages after since; fn is called once, maybe later. Returns 0, 1
     * when the broker keeps no state of its own (a single node: the hub has
     * it all), or -1 when it cannot now. */
    int (*room_state)(void *impl, const char *room, uint64_t since, size_t limit, broker_state_fn fn, void *arg);
    /* Lists the cluster's rooms whose names start with prefix and come after
     * `after` ("" for both: from the first room), up to limit, in name
     * order; fn is called once, maybe later. Returns 0, 1 when the broker
     * keeps no state of its own (the hub has every room), or -1 when it
     * cannot now. */
    int (*room_list)(void *impl, const char *prefix, const char *after, size_t limit, broker_list_fn fn, void *arg);
    /* Asks every other node to close its members that k names (a single
     * node has none: nothing to do). Returns 0, or -1 when it cannot now. */
    int (*kick)(void *impl, const struct broker_kick *k);
    /* This node has members in room from now on (ready follows, maybe at once). */
    void (*room_open)(void *impl, const char *room);
    /* This node has no member left in room. */
    void (*room_close)(void *impl, const char *room);
    /* 1 while publications can be taken, else 0 with *why set. */
    int (*available)(void *impl, const char **why);
    /* Writes the broker's figures. */
    void (*metrics)(void *impl, struct metrics *m);
    /* Frees the broker's state. */
    void (*free)(void *impl);
};

struct broker {
    const struct broker_ops *ops;
    void *impl;
};

/* The single-node broker: publish hands the publication straight back to
 * the handler, unnumbered (the hub numbers messages), and a roster change
 * too, as asked (the hub's nick index decides); a room is ready as soon as
 * it is opened. Returns 0 or -1. */
int broker_memory_init(struct broker *b, const struct broker_handler *h);

/* Publishes through b (see broker_ops.publish). */
int broker_publish(struct broker *b, const char *room, const struct broker_pub *p);

/* Publishes a roster change through b (see broker_ops.presence). */
int broker_presence(struct broker *b, const char *room, const struct broker_presence *p);

/* See broker_ops.room_state. */
int broker_room_state(struct broker *b, const char *room, uint64_t since, size_t limit, broker_state_fn fn,
                      void *arg);

/* See broker_ops.room_list. */
int broker_room_list(struct broker *b, const char *prefix, const char *after, size_t limit, broker_list_fn fn,
                     void *arg);

/* Asks the other nodes to close the members k names (see broker_ops.kick). */
int broker_kick(struct broker *b, const struct broker_kick *k);

/* See broker_ops.room_open and room_close. */
void broker_room_open(struct broker *b, const char *room);
void broker_room_close(struct broker *b, const char *room);

/* See broker_ops.available: 1, or 0 with *why. */
int broker_available(struct broker *b, const char **why);

/* See broker_ops.metrics. */
void broker_metrics(struct broker *b, struct metrics *m);

/* Frees b's state (b itself is the caller's). */
void broker_free(struct broker *b);

#endif
