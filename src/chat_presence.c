/* chat_presence: a member's way into and out of its room in the room's
 * order: its join published through the broker, its welcome when the join
 * comes back (what it sent meanwhile kept and handled after), the roster
 * the broker hands back (members elsewhere, stale entries, members the
 * cluster lost), renames, and its leave. Never touches a socket. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_priv.h"
#include "log.h"

/* The first history event to send a client that asked to resume, or -1
 * when the history cannot fill its gap exactly (another epoch, a gap longer
 * than max_resume, events no longer kept, or a seq from the future). */
static long resume_start(const struct chat *chat, const struct hub_room *room, const struct resume *r)
{
    uint64_t last = hub_room_seq(room), missed = last - r->since;
    if (strcmp(r->epoch, hub_room_epoch(room)) != 0 || r->since > last || missed > chat->cfg.max_resume)
        return -1;
    size_t count = hub_room_history_count(room);
    if (missed > count)
        return -1;
    size_t start = count - (size_t)missed;
    if (missed && hub_room_history_seq(room, start) != r->since + 1)
        return -1;   /* an event was not kept: the gap cannot be filled */
    return (long)start;
}

/* Sends cl its welcome (with what resume asks for); its join is announced by whoever welcomes it. */
static void welcome(struct chat *chat, struct chat_client *cl, const struct resume *resume)
{
    struct hub_room *room = cl->member.room;
    long start = resume->asked ? resume_start(chat, room, resume) : -1;
    size_t first = start < 0 ? 0 : (size_t)start;
    event_begin(chat, "welcome", room);
    field_string(chat, "nick", cl->member.nick, strlen(cl->member.nick));
    field_user(chat, cl);
    if (user_of(cl) && user_of(cl)->mod)
        put_raw(chat, ",\"mod\":true");
    field_members(chat, room);
    put_raw(chat, ",\"history\":[");
    for (size_t i = first; i < hub_room_history_count(room); i++) {
        size_t len;
        const uint8_t *ev = hub_room_history(room, i, &len);
        if (i > first)
            put_raw(chat, ",");
        put_bytes(chat, ev, len);
    }
    put_raw(chat, "]");
    field_u64(chat, "seq", hub_room_seq(room));
    const char *epoch = hub_room_epoch(room);
    field_string(chat, "epoch", epoch, strlen(epoch));
    if (resume->asked)
        put_raw(chat, start >= 0 ? ",\"resumed\":true" : ",\"resumed\":false");
    event_send(chat, cl);
}

/* Where join id is, or would go, in chat.joiners. */
static struct joining **joiner_slot(struct chat *chat, uint64_t id)
{
    struct joining **p = &chat->joiners[id % JOINERS_BUCKETS];
    while (*p && (*p)->id != id)
        p = &(*p)->next;
    return p;
}

static void early_free(struct early *e)
{
    while (e) {
        struct early *next = e->next;
        free(e);
        e = next;
    }
}

/* Forgets cl's join (it was welcomed, or it left); returns what it sent
 * meanwhile, for the caller to handle and free. */
static struct early *joining_drop(struct chat *chat, struct chat_client *cl)
{
    struct joining *j = joining_of(cl);
    if (!j)
        return NULL;
    struct joining **p = joiner_slot(chat, j->id);
    if (*p == j)
        *p = j->next;
    struct early *e = j->early;
    cl->member.tag &= (uint8_t)~TAG_JOINING;
    ratelimit_bucket_init(&cl->lines, &chat->lines, (uint32_t)conn_now_ms(cl->member.sink));   /* in place of waiting */
    free(j);
    return e;
}

/* Keeps a message cl sent before its welcome, within EARLY_MAX bytes (over
 * it the connection closes: a client that does not wait for a welcome it
 * asked for only hurts itself). */
void early_keep(struct chat_client *cl, enum ws_opcode op, const uint8_t *data, size_t len)
{
    struct joining *j = joining_of(cl);
    struct early *e = j->early_bytes + len <= EARLY_MAX ? malloc(sizeof(*e) + len) : NULL;
    if (!e) {
        conn_close(cl->member.sink, WS_CLOSE_POLICY, "too much sent before the welcome");
        return;
    }
    e->next = NULL;
    e->op = op;
    e->len = len;
    memcpy(e->data, data, len);
    if (!j->early)
        j->early_tail = &j->early;
    *j->early_tail = e;
    j->early_tail = &e->next;
    j->early_bytes += len;
}

/* Welcomes cl (settled, in a room in order), forgets how it joined, and
 * handles what it sent before, in order. */
static void welcome_joined(struct chat *chat, struct chat_client *cl)
{
    welcome(chat, cl, &joining_of(cl)->resume);
    struct early *early = joining_drop(chat, cl);
    for (struct early *e = early; e && conn_is_open(cl->member.sink); e = e->next)
        chat_message(chat, cl->member.sink, e->op, e->data, e->len);
    early_free(early);
}

/* Publishes cl's join into its room's order; it is welcomed when the join
 * comes back (see chat_presence). */
void chat_open(void *ctx, struct conn *c, const struct http_request *req)
{
    struct chat *chat = ctx;
    struct chat_client *cl = conn_data(c);
    struct joining *j = calloc(1, sizeof(*j));
    if (!j) {
        conn_close(c, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    if (resume_from_query(req->query, &j->resume) < 0)
        j->resume.asked = 0;   /* accept checked it already */
    j->id = ++chat->joins;
    j->cl = cl;
    j->next = chat->joiners[j->id % JOINERS_BUCKETS];
    chat->joiners[j->id % JOINERS_BUCKETS] = j;
    cl->waiting = j;
    cl->member.tag |= TAG_JOINING;
    struct ask a;
    char guest[COMMAND_NICK_MAX + 1];
    a.nick_len = http_query_get(req->query, "nick", a.nick, sizeof(a.nick));   /* checked by accept */
    const char *want = user_of(cl) ? cl->member.nick : guest_nick(chat, &a, guest);
    struct broker_presence p = {.kind = BROKER_JOIN, .id = j->id, .nick = want ? want : cl->member.nick,
                                .old = cl->member.nick, .guest = want == NULL,
                                .user = user_of(cl) ? user_of(cl)->sub : NULL};
    if (broker_presence(&chat->broker, hub_room_name(cl->member.room), &p) < 0) {
        conn_close(c, WS_CLOSE_TRY_AGAIN, "the cluster is unavailable: try again later");
        return;
    }
    struct joining *still = joining_of(cl);
    if (still)
        still->sent = 1;   /* else the join came back at once, and it was welcomed */
}

/* The broker has the room in the cluster's order: welcome who waited. A
 * welcome never removes a member (a cut waits for the safe point), so the
 * walk is safe. */
void chat_ready(void *ctx, const char *name)
{
    struct chat *chat = ctx;
    struct hub_room *room = hub_find(chat->hub, name);
    if (!room)
        return;
    hub_room_set_ready(room, 1);
    for (size_t i = 0; i < hub_room_local(room); i++) {
        struct chat_client *cl = client_of(hub_room_member(room, i));
        if (!joining_of(cl) || cl->member.pending)
            continue;
        welcome_joined(chat, cl);
        /* its join is in the roster the sync gave, not a live event: it is
         * told of it after its welcome all the same, as a live joiner is */
        struct broker_presence me = {.user = chat_member_user(&cl->member)};
        if (presence_begin(chat, room, "join", cl->member.nick, &me, hub_room_count(room)))
            event_send(chat, cl);
    }
}

/* The room's state as the cluster has it. When the numbering started again
 * under members already welcomed (the cluster lost its data), they are told
 * with a resync event before any message of the new epoch. */
void chat_restart(void *ctx, const char *name, const char *epoch, uint64_t seq)
{
    struct chat *chat = ctx;
    struct hub_room *room = hub_find(chat->hub, name);
    if (!room)
        return;
    int changed = strncmp(epoch, hub_room_epoch(room), HUB_EPOCH_LEN) != 0;
    if (changed && hub_room_ready(room)) {
        event_begin(chat, "resync", room);
        field_string(chat, "epoch", epoch, strlen(epoch));
        field_u64(chat, "seq", seq);
        event_send_all(chat, room);
    }
    hub_room_restart(chat->hub, room, epoch, seq);
    hub_room_set_ready(room, 0);
}

/* Gives local member m the nick the room's order gave it. Whoever else
 * holds it here gives way: an entry the hub owns is stale (the order says
 * so) and goes; a pending member's nick was only its node's guess and
 * changes. */
static void take_nick(struct chat *chat, struct hub_room *room, struct hub_member *m, const char *nick)
{
    struct hub_member *holder = hub_member_find(chat->hub, room, nick);
    if (holder == m)
        return;
    if (holder && !holder->sink)
        hub_roster_remove(chat->hub, room, nick);
    else if (holder && holder->pending)
        hub_repick(chat->hub, holder);
    if (hub_rename(chat->hub, m, nick) < 0)
        log_msg(LOG_WARN, "chat: two members of room %s are called %s here", hub_room_name(room), nick);
}

/* This node's member in room whose join is id and not yet settled, or NULL. */
static struct chat_client *joiner(struct chat *chat, struct hub_room *room, uint64_t id)
{
    struct joining *j = *joiner_slot(chat, id);
    return j && j->cl->member.room == room && j->cl->member.pending ? j->cl : NULL;
}

/* Adds a member elsewhere to room's roster: an entry while the room's
 * entries are within the presence limit (what a welcome can list), past it
 * only counted, so a node's memory follows its own members, not the
 * cluster's. Returns 0, or -1 if out of memory. */
static int roster_add(struct chat *chat, struct hub_room *room, const char *nick, const char *user)
{
    if (chat->cfg.presence_limit && hub_room_entries(room) >= chat->cfg.presence_limit) {
        hub_roster_count(room, 1);
        return 0;
    }
    return hub_roster_add(chat->hub, room, nick, user);
}

static void presence_join(struct chat *chat, struct hub_room *room, const struct broker_presence *p)
{
    struct chat_client *cl = p->mine && p->id ? joiner(chat, room, p->id) : NULL;
    if (p->refused) {   /* the join never reached the cluster: nothing to announce */
        if (cl)
            conn_close(cl->member.sink, WS_CLOSE_TRY_AGAIN, "the cluster is unavailable: try again later");
        return;
    }
    struct hub_member *again = p->mine && !cl ? hub_local_find(chat->hub, room, p->old) : NULL;
    if (again && !again->pending) {
        /* a member of ours joined again after the cluster lost it: only its nick may change */
        if (strcmp(again->nick, p->nick) != 0) {
            take_nick(chat, room, again, p->nick);
            nick_event(chat, room, p->old, p);
        }
        return;
    }
    if (cl) {
        if (p->given)
            take_nick(chat, room, &cl->member, p->nick);
        hub_set_pending(&cl->member, 0);
        if (hub_room_ready(room))
            welcome_joined(chat, cl);
    } else if (roster_add(chat, room, p->nick, p->user) < 0) {
        event_failed(chat);
        return;
    }
    presence_event(chat, room, "join", cl ? cl->member.nick : p->nick, p, hub_room_count(room));
}

static void presence_rename(struct chat *chat, struct hub_room *room, const struct broker_presence *p)
{
    struct hub_member *m = p->mine ? hub_local_find(chat->hub, room, p->old) : NULL;
    if (p->refused) {
        if (m)
            send_error(chat, client_of(m), "nick_taken", "that nick is taken in this room");
        return;
    }
    char old[HUB_NICK_MAX + 1];
    snprintf(old, sizeof(old), "%s", p->old);   /* p->old may be m's nick, which changes */
    if (m)
        take_nick(chat, room, m, p->nick);
    else if (hub_roster_rename(chat->hub, room, old, p->nick) < 0)
        return;   /* not in the roster here: nothing to tell */
    nick_event(chat, room, old, p);
}

/* A roster change in the room's order: the hub's roster follows it, and
 * this node's members are told. */
void chat_presence(void *ctx, const char *name, const struct broker_presence *p)
{
    struct chat *chat = ctx;
    struct hub_room *room = hub_find(chat->hub, name);
    if (!room)
        return;
    switch (p->kind) {
    case BROKER_JOIN:
        presence_join(chat, room, p);
        break;
    case BROKER_RENAME:
        presence_rename(chat, room, p);
        break;
    case BROKER_LEAVE:
        if (hub_roster_remove(chat->hub, room, p->nick) == 0 || (!p->refused && hub_roster_uncount(room) == 0))
            presence_event(chat, room, "leave", p->nick, p, hub_room_count(room) + 1);
        break;
    }
}

/* The room's roster as the cluster has it: entries of other nodes are
 * loaded; this node's members are matched with theirs (a joiner whose join
 * the snapshot already holds is settled, welcomed at ready); an entry of
 * this node with no member here is stale and leaves; a member here the
 * cluster lost (its data, or this node timed out) joins again. */
void chat_roster(void *ctx, const char *name, const struct broker_presence *e, size_t n, size_t total)
{
    struct chat *chat = ctx;
    struct hub_room *room = hub_find(chat->hub, name);
    if (!room)
        return;
    hub_roster_clear(chat->hub, room);
    for (size_t i = 0; i < hub_room_local(room); i++)
        ((struct hub_member *)hub_room_member(room, i))->tag &= (uint8_t)~TAG_SEEN;
    for (size_t i = 0; i < n; i++) {
        if (!e[i].mine) {
            if (roster_add(chat, room, e[i].nick, e[i].user) < 0)
                event_failed(chat);
            continue;
        }
        struct hub_member *m = hub_local_find(chat->hub, room, e[i].nick);
        struct chat_client *cl = joiner(chat, room, e[i].id);
        if (m && !m->pending) {
            m->tag |= TAG_SEEN;
        } else if (cl) {
            take_nick(chat, room, &cl->member, e[i].nick);
            hub_set_pending(&cl->member, 0);
            cl->member.tag |= TAG_SEEN;
        } else {
            struct broker_presence leave = {.kind = BROKER_LEAVE, .nick = e[i].nick};
            broker_presence(&chat->broker, name, &leave);
        }
    }
    for (size_t i = 0; i < hub_room_local(room); i++) {
        struct hub_member *m = (struct hub_member *)hub_room_member(room, i);
        if ((m->tag & TAG_SEEN) || m->pending)
            continue;
        struct broker_presence again = {.kind = BROKER_JOIN, .nick = m->nick, .old = m->nick,
                                        .user = chat_member_user(m)};
        broker_presence(&chat->broker, name, &again);
    }
    if (hub_room_count(room) < total)
        hub_roster_count(room, total - hub_room_count(room));   /* the members the entries left out */
}

/* The member leaves the hub at once; it leaves the roster when its leave
 * comes back in the room's order (at once on a single node). Told even when
 * no member is left here: in a cluster, others may be. */
void chat_close(void *ctx, struct conn *c)
{
    struct chat *chat = ctx;
    struct chat_client *cl = conn_data(c);
    struct hub_room *room = cl->member.room;
    struct broker_presence p = {.kind = BROKER_LEAVE};
    char nick[HUB_NICK_MAX + 1], user[JWT_SUB_MAX + 1] = "";
    memcpy(nick, cl->member.nick, sizeof(nick));
    if (user_of(cl))
        snprintf(user, sizeof(user), "%s", user_of(cl)->sub);
    struct kick_note *k = cl->member.tag & TAG_KICKED ? kick_take(chat, cl) : NULL;
    p.kicked = (cl->member.tag & TAG_KICKED) != 0;
    if (k) {
        p.why = k->reason;
        p.kicked_by = k->by[0] ? k->by : NULL;
        p.kicked_by_user = k->by_user[0] ? k->by_user : NULL;
    }
    const struct joining *j = joining_of(cl);
    int sent = !j || j->sent;
    early_free(joining_drop(chat, cl));
    hub_leave_keep(chat->hub, &cl->member, user[0] ? user : NULL);
    conn_set_data(c, NULL);
    client_free(chat, cl);
    p.nick = nick;
    p.user = user[0] ? user : NULL;
    if (sent && broker_presence(&chat->broker, hub_room_name(room), &p) < 0)
        hub_roster_remove(chat->hub, room, nick);   /* the cluster is unreachable: it catches up later */
    free(k);
    if (hub_room_local(room) == 0) {
        hub_room_set_ready(room, 0);
        broker_room_close(&chat->broker, hub_room_name(room));
        hub_roster_clear(chat->hub, room);   /* not followed from here on */
    }
}
