/* chat_priv: the chat endpoint's own state, shared by its four files only:
 * chat.c (the endpoint, lines and commands, relays, deliveries),
 * chat_event.c (building events), chat_presence.c (joins, welcomes, the
 * roster in the room's order, leaves) and chat_user.c (identity and
 * moderation). Nothing outside chat includes it. */
#ifndef WSHUB_CHAT_PRIV_H
#define WSHUB_CHAT_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "broker.h"
#include "chat.h"
#include "command.h"
#include "hub.h"
#include "jwt.h"
#include "pool.h"
#include "ratelimit.h"
#include "ws.h"

#define NICK_QUERY_MAX 256
#define JOINERS_BUCKETS 1024
#define EARLY_MAX (64u << 10)   /* bytes a member may send before its welcome; kept, then handled */

_Static_assert(COMMAND_NICK_MAX <= HUB_NICK_MAX, "a valid nick must fit the hub's nick");
_Static_assert(COMMAND_ROOM_MAX <= HUB_ROOM_MAX, "a valid room name must fit the hub's room name");

struct chat {
    struct endpoint ep;
    struct chat_config cfg;
    struct ratelimit_rule lines, frames, bytes;
    struct hub *hub;
    struct broker broker;     /* every room event goes out through it and comes back in order */
    struct pool clients;      /* where struct chat_client lives */
    struct buf json;          /* scratch for building events, reused */
    struct chat_user *users;  /* authenticated members, newest first */
    struct kick_note *kicks;  /* kicked members not yet closed */
    char refusal[AUTH_HEADER_MAX];   /* headers of the refusal being answered */
    int json_failed;          /* an append to json ran out of memory */
    uint64_t events_failed;   /* events dropped because they could not be built */
    uint64_t binary_dropped;  /* binary relays the broker could not take */
    uint64_t joins;           /* numbers the joins of this node's members */
    struct joining *joiners[JOINERS_BUCKETS];   /* members not yet welcomed, by join id */
};

/* What a reconnecting client says it has seen: ?since=SEQ&epoch=E. */
struct resume {
    int asked;             /* since was given */
    uint64_t since;
    char epoch[HUB_EPOCH_LEN + 1];   /* empty when absent or not one of ours */
};

/* A member not yet welcomed: its join is on its way through the room's
 * order (the member is pending in the hub until it comes back), or the room
 * is not yet in order. */
/* A message a member sent before its welcome. */
struct early {
    struct early *next;
    enum ws_opcode op;
    size_t len;
    uint8_t data[];
};

struct joining {
    struct joining *next;  /* in its chat.joiners chain */
    struct early *early, **early_tail;   /* what it sent meanwhile, oldest first */
    size_t early_bytes;
    struct chat_client *cl;
    struct resume resume;
    uint64_t id;           /* this node's number for the join, to know it when it comes back */
    int sent;              /* the join was published: a leave must follow it */
};

/* One member's state; small, since every idle connection in a room has one.
 * Times are the loop's milliseconds modulo 2^32, compared by difference. */
struct chat_client {
    struct hub_member member;   /* member.sink is the struct conn (first: see client_of) */
    union {                     /* a member not yet welcomed sends no line: one or the other */
        struct joining *waiting;         /* while TAG_JOINING: how it joins (see joining_of) */
        struct ratelimit_bucket lines;   /* once welcomed */
    };
    struct ratelimit_bucket frames, bytes;
    struct ratelimit_flood flood;
};
_Static_assert(offsetof(struct chat_client, member) == 0, "client_of casts a member to its client");

/* Bits of member.tag. */
enum {
    TAG_SEEN = 1u << 0,     /* matched while loading a roster (chat_roster) */
    TAG_USER = 1u << 1,     /* authenticated: the client is a struct chat_user */
    TAG_KICKED = 1u << 2,   /* kicked: its leave says so (see struct kick_note) */
    TAG_JOINING = 1u << 3,  /* not yet welcomed: the client's waiting is set, not its lines */
};

/* How cl joins while it is not yet welcomed, else NULL. */
static inline struct joining *joining_of(const struct chat_client *cl)
{
    return cl->member.tag & TAG_JOINING ? cl->waiting : NULL;
}

/* Why a member was kicked, kept from the kick to its close, where its leave
 * is published. Kicks are rare: a short list. */
struct kick_note {
    struct kick_note *next;
    const struct chat_client *cl;
    char by[HUB_NICK_MAX + 1];      /* the moderator's nick; empty: the application */
    char by_user[JWT_SUB_MAX + 1];
    char reason[];
};

/* An authenticated member: its client, then what its token said. Only these
 * pay for an identity; a guest is a plain chat_client. */
struct chat_user {
    struct chat_client cl;      /* first: a member is its user too */
    struct loop_timer expiry;   /* fires at exp plus the leeway: close 4001 */
    struct chat_user *prev, *next;   /* chat->users */
    uint8_t mod;                /* the token says moderator */
    char sub[];                 /* the user id, NUL-terminated */
};


/* What an upgrade asks for, read from its path and query. */
struct ask {
    char room[COMMAND_ROOM_MAX + 1];
    char nick[NICK_QUERY_MAX];
    long nick_len;      /* > 0 when ?nick= was given */
    struct resume resume;
};

/* ---- chat_event.c: building events in the scratch buffer and sending them ---- */

/* Appends to the event being built, remembering any failure. */
void put_raw(struct chat *chat, const char *raw);

/* Appends n raw bytes (already JSON) to the event being built. */
void put_bytes(struct chat *chat, const void *p, size_t n);

/* Starts an event in the scratch buffer: {"type":T,"room":R */
void event_begin(struct chat *chat, const char *type, const struct hub_room *room);

/* ,"key":"s" (escaped) and ,"key":v. */
void field_string(struct chat *chat, const char *key, const char *s, size_t n);

void field_u64(struct chat *chat, const char *key, uint64_t v);

/* ,"user":SUB for an authenticated member; nothing for a guest. */
void field_user(struct chat *chat, const struct chat_client *cl);

/* ,"count":K,"members":[...] with at most presence_limit nicks. */
void field_members(struct chat *chat, const struct hub_room *room);

/* Counts and logs an event that could not be built whole. */
void event_failed(struct chat *chat);

/* Publishes the message event in the scratch buffer, without its closing
 * brace (the seq goes there on delivery), into room. Returns 0, or -1 when
 * it was not built (counted) or the broker refused it. */
int message_publish(struct chat *chat, struct hub_room *room);

/* Closes the event in the scratch buffer and sends it to cl alone. */
void event_send(struct chat *chat, struct chat_client *cl);

/* Closes the event in the scratch buffer and sends it to room's members here. */
void event_send_all(struct chat *chat, struct hub_room *room);

/* Sends cl {"type":"error","room":R,"code":C,"text":T}. */
void send_error(struct chat *chat, struct chat_client *cl, const char *code, const char *text);

/* Builds {"type":"join"|"leave","room":R,"nick":N[,"user":U],"count":K}
 * (a leave with [,"kicked":true,"kicked_by":M,"kicked_by_user":V][,"reason":W])
 * in the scratch buffer, without its closing brace, and returns 1; returns
 * 0 (nothing built) while the room (before members) is past the presence
 * limit. */
int presence_begin(struct chat *chat, struct hub_room *room, const char *type, const char *nick,
                   const struct broker_presence *p, size_t before);

/* The same, sent to room's members here. */
void presence_event(struct chat *chat, struct hub_room *room, const char *type, const char *nick,
                    const struct broker_presence *p, size_t before);

/* Broadcasts {"type":"nick","room":R,"old":O,"nick":N[,"user":U]} to room's members here. */
void nick_event(struct chat *chat, struct hub_room *room, const char *old, const struct broker_presence *p);

/* Starts a message event: type, room, nick, the user of cl (NULL: from the
 * API), text, ts. */
void message_begin(struct chat *chat, const char *room, const char *nick, const struct chat_client *cl,
                   const char *text, size_t len);

/* A MESSAGE's frame: its JSON, then ,"seq":S} to close it. */
struct sbuf *message_frame(const struct broker_pub *p, uint64_t seq, size_t *payload_off);

/* ---- chat_presence.c: joins, welcomes, roster changes in the room's order, leaves ---- */

/* Keeps a message cl sent before its welcome, within EARLY_MAX bytes (over
 * it the connection closes: a client that does not wait for a welcome it
 * asked for only hurts itself). */
void early_keep(struct chat_client *cl, enum ws_opcode op, const uint8_t *data, size_t len);

/* Publishes cl's join into its room's order; it is welcomed when the join
 * comes back (see chat_presence). */
void chat_open(void *ctx, struct conn *c, const struct http_request *req);

/* The broker has the room in the cluster's order: welcome who waited. A
 * welcome never removes a member (a cut waits for the safe point), so the
 * walk is safe. */
void chat_ready(void *ctx, const char *name);

/* The room's state as the cluster has it. When the numbering started again
 * under members already welcomed (the cluster lost its data), they are told
 * with a resync event before any message of the new epoch. */
void chat_restart(void *ctx, const char *name, const char *epoch, uint64_t seq);

/* A roster change in the room's order: the hub's roster follows it, and
 * this node's members are told. */
void chat_presence(void *ctx, const char *name, const struct broker_presence *p);

/* The room's roster as the cluster has it: entries of other nodes are
 * loaded; this node's members are matched with theirs (a joiner whose join
 * the snapshot already holds is settled, welcomed at ready); an entry of
 * this node with no member here is stale and leaves; a member here the
 * cluster lost (its data, or this node timed out) joins again. */
void chat_roster(void *ctx, const char *name, const struct broker_presence *e, size_t n, size_t total);

/* The member leaves the hub at once; it leaves the roster when its leave
 * comes back in the room's order (at once on a single node). Told even when
 * no member is left here: in a cluster, others may be. */
void chat_close(void *ctx, struct conn *c);

/* ---- chat_user.c: identity (tokens, guests, expiry, /token) and moderation (kicks) ---- */

/* on another node, or gone from here */
struct chat_user *user_of(const struct chat_client *cl);

/* The nick a guest asks for: ?nick=, or NULL for guest-N; with sign-in on,
 * marked (~name, ~guest without ?nick=, cut to fit) in out, so that a guest
 * never holds a signed-in member's nick. */
const char *guest_nick(const struct chat *chat, const struct ask *a, char *out);

/* The checks an upgrade and a check of one share: what it asks for, its
 * token, and whether the cluster takes joins now. Returns 0 or a status. */
int admit(struct chat *chat, const struct http_request *req, struct http_slice rest, struct ask *a,
          struct auth_result *r, char *nick, struct endpoint_answer *ans);

/* A new authenticated client (zeroed) for the verified claims. */
struct chat_user *user_new(const struct jwt_claims *c);

/* Makes the joined member u an authenticated one: tagged, listed, timed. */
void user_start(struct chat *chat, struct chat_user *u, int64_t exp);

/* Takes cl's kick note out of the list (NULL when there is none). */
struct kick_note *kick_take(struct chat *chat, const struct chat_client *cl);

/* /kick NICK [reason]: moderators only; a member on another node is kicked there. */
void kick_command(struct chat *chat, struct chat_client *cl, const struct command *cmd);

/* /token: a fresh token for the same user, valid for this room, replaces the
 * connection's (its expiry and moderator flag). */
void refresh_token(struct chat *chat, struct chat_client *cl, const char *token, size_t len);

/* Another node asks: close this node's members that k names. */
void chat_kick(void *ctx, const struct broker_kick *k);

/* ---- chat.c: the endpoint, lines and commands, relays, deliveries ---- */

/* The client holding member m (the member is its first field). */
struct chat_client *client_of(const struct hub_member *m);

/* The wall clock in milliseconds since 1970 (a message's ts). */
uint64_t epoch_ms(void);

/* Reads since and epoch from the query. Returns 0, or -1 when malformed. */
int resume_from_query(struct http_slice query, struct resume *r);

/* Reads and checks the room, resume and nick of an upgrade. Returns 0, or
 * 400 with the reason. */
int read_ask(const struct http_request *req, struct http_slice rest, struct ask *a, const char **reason);

/* Gives back a member's memory (its user's too) once it left. */
void client_free(struct chat *chat, struct chat_client *cl);

/* A member's message: a line (a command or chat), or a binary relay. */
void chat_message(void *ctx, struct conn *c, enum ws_opcode op, uint8_t *data, size_t len);

#endif
