/* chat_event: chat's JSON events, built once into the scratch buffer
 * (jansson-free: the JSON writer in json.c escapes every string) and framed
 * once, sent to one member or broadcast to a room's members here. An event
 * that could not be built whole is never sent: it is dropped and counted.
 * Never touches a socket. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chat_priv.h"
#include "json.h"
#include "log.h"

/* Appends to the event being built, remembering any failure. */
void put_raw(struct chat *chat, const char *raw)
{
    chat->json_failed |= json_append_raw(&chat->json, raw) < 0;
}

static void put_string(struct chat *chat, const char *s, size_t n)
{
    chat->json_failed |= json_append_string(&chat->json, s, n) < 0;
}

void put_bytes(struct chat *chat, const void *p, size_t n)
{
    chat->json_failed |= buf_append(&chat->json, p, n) < 0;
}

/* Starts an event for room `name` in the scratch buffer: {"type":T,"room":R */
static void event_begin_named(struct chat *chat, const char *type, const char *name)
{
    chat->json.len = 0;
    chat->json_failed = 0;
    put_raw(chat, "{\"type\":\"");
    put_raw(chat, type);
    put_raw(chat, "\",\"room\":");
    put_string(chat, name, strlen(name));
}

void event_begin(struct chat *chat, const char *type, const struct hub_room *room)
{
    event_begin_named(chat, type, hub_room_name(room));
}

void field_string(struct chat *chat, const char *key, const char *s, size_t n)
{
    put_raw(chat, ",\"");
    put_raw(chat, key);
    put_raw(chat, "\":");
    put_string(chat, s, n);
}

void field_u64(struct chat *chat, const char *key, uint64_t v)
{
    put_raw(chat, ",\"");
    put_raw(chat, key);
    put_raw(chat, "\":");
    chat->json_failed |= json_append_u64(&chat->json, v) < 0;
}

/* ,"user":SUB for an authenticated member; nothing for a guest. */
void field_user(struct chat *chat, const struct chat_client *cl)
{
    const struct chat_user *u = user_of(cl);
    if (u)
        field_string(chat, "user", u->sub, strlen(u->sub));
}

/* Whether a room of this size still gets join and leave events and whole
 * member lists. Past the presence limit each join would cost a delivery to
 * every member and a list of every member: quadratic for a big room. */
static int presence_on(const struct chat *chat, size_t members)
{
    return chat->cfg.presence_limit == 0 || members <= chat->cfg.presence_limit;
}

/* ,"count":K,"members":[...] with at most presence_limit nicks. */
void field_members(struct chat *chat, const struct hub_room *room)
{
    size_t n = hub_room_count(room), listed = 0;
    if (!presence_on(chat, n))
        n = chat->cfg.presence_limit;
    field_u64(chat, "count", hub_room_count(room));
    put_raw(chat, ",\"members\":[");
    for (size_t i = 0; i < hub_room_entries(room) && listed < n; i++) {
        const struct hub_member *m = hub_room_member(room, i);
        if (m->pending)
            continue;
        if (listed++)
            put_raw(chat, ",");
        put_string(chat, m->nick, strlen(m->nick));
    }
    put_raw(chat, "]");
    if (!chat->cfg.auth)
        return;
    put_raw(chat, ",\"users\":{");   /* nick -> user id, for the authenticated ones listed */
    int any = 0;
    listed = 0;
    for (size_t i = 0; i < hub_room_entries(room) && listed < n; i++) {
        const struct hub_member *m = hub_room_member(room, i);
        if (m->pending)
            continue;
        listed++;
        const char *user = chat_member_user(m);
        if (!user)
            continue;
        if (any++)
            put_raw(chat, ",");
        put_string(chat, m->nick, strlen(m->nick));
        put_raw(chat, ":");
        put_string(chat, user, strlen(user));
    }
    put_raw(chat, "}");
}

/* Counts and logs an event that could not be built whole. */
void event_failed(struct chat *chat)
{
    if (chat->events_failed++ == 0)
        log_msg(LOG_ERROR, "chat event dropped: out of memory (counted in /stats events_failed)");
}

/* Closes the event in the scratch buffer and frames it; NULL (counted and
 * logged) if it could not be built whole. */
static struct sbuf *event_end(struct chat *chat)
{
    put_raw(chat, "}");
    struct sbuf *f = chat->json_failed ? NULL : ws_frame_new(WS_OP_TEXT, chat->json.data, chat->json.len);
    if (!f)
        event_failed(chat);
    return f;
}

/* Publishes the message event in the scratch buffer, without its closing
 * brace (the seq goes there on delivery), into room. Returns 0, or -1 when
 * it was not built (counted) or the broker refused it. */
int message_publish(struct chat *chat, struct hub_room *room)
{
    if (chat->json_failed) {
        event_failed(chat);
        return -1;
    }
    struct broker_pub p = {.kind = BROKER_MESSAGE, .data = chat->json.data, .len = chat->json.len};
    return broker_publish(&chat->broker, hub_room_name(room), &p);
}

void event_send(struct chat *chat, struct chat_client *cl)
{
    struct sbuf *f = event_end(chat);
    if (f) {
        hub_send(chat->hub, &cl->member, f);
        sbuf_unref(f);
    }
}

/* Closes the event in the scratch buffer and sends it to room's members here. */
void event_send_all(struct chat *chat, struct hub_room *room)
{
    struct sbuf *f = event_end(chat);
    if (f) {
        hub_broadcast(chat->hub, room, f);
        sbuf_unref(f);
    }
}

void send_error(struct chat *chat, struct chat_client *cl, const char *code, const char *text)
{
    event_begin(chat, "error", cl->member.room);
    field_string(chat, "code", code, strlen(code));
    field_string(chat, "text", text, strlen(text));
    event_send(chat, cl);
}

/* Builds {"type":"join"|"leave","room":R,"nick":N[,"user":U],"count":K}
 * (a leave with [,"kicked":true,"kicked_by":M,"kicked_by_user":V][,"reason":W])
 * in the scratch buffer, without its closing brace, and returns 1; returns
 * 0 (nothing built) while the room (before members) is past the presence
 * limit. */
int presence_begin(struct chat *chat, struct hub_room *room, const char *type, const char *nick,
                          const struct broker_presence *p, size_t before)
{
    if (!presence_on(chat, before))
        return 0;
    event_begin(chat, type, room);
    field_string(chat, "nick", nick, strlen(nick));
    if (p->user)
        field_string(chat, "user", p->user, strlen(p->user));
    field_u64(chat, "count", hub_room_count(room));
    if (p->kicked)
        put_raw(chat, ",\"kicked\":true");
    if (p->kicked_by)
        field_string(chat, "kicked_by", p->kicked_by, strlen(p->kicked_by));
    if (p->kicked_by_user)
        field_string(chat, "kicked_by_user", p->kicked_by_user, strlen(p->kicked_by_user));
    if (p->why)
        field_string(chat, "reason", p->why, strlen(p->why));
    return 1;
}

void presence_event(struct chat *chat, struct hub_room *room, const char *type, const char *nick,
                           const struct broker_presence *p, size_t before)
{
    if (presence_begin(chat, room, type, nick, p, before))
        event_send_all(chat, room);
}

/* Broadcasts {"type":"nick","room":R,"old":O,"nick":N[,"user":U]} to room's members here. */
void nick_event(struct chat *chat, struct hub_room *room, const char *old, const struct broker_presence *p)
{
    event_begin(chat, "nick", room);
    field_string(chat, "old", old, strlen(old));
    field_string(chat, "nick", p->nick, strlen(p->nick));
    if (p->user)
        field_string(chat, "user", p->user, strlen(p->user));
    event_send_all(chat, room);
}

/* Starts a message event: type, room, nick, the user of cl (NULL: from the
 * API), text, ts. */
void message_begin(struct chat *chat, const char *room, const char *nick, const struct chat_client *cl,
                          const char *text, size_t len)
{
    event_begin_named(chat, "message", room);
    field_string(chat, "nick", nick, strlen(nick));
    if (cl)
        field_user(chat, cl);
    field_string(chat, "text", text, len);
    field_u64(chat, "ts", epoch_ms());
}

/* A MESSAGE's frame: its JSON, then ,"seq":S} to close it. */
struct sbuf *message_frame(const struct broker_pub *p, uint64_t seq, size_t *payload_off)
{
    char tail[32];
    int t = snprintf(tail, sizeof(tail), ",\"seq\":%llu}", (unsigned long long)seq);
    size_t len = p->len + (size_t)t, h = ws_header_len(len);
    struct sbuf *f = sbuf_new(h + len);
    if (!f)
        return NULL;
    ws_encode_header(f->data, WS_OP_TEXT, len);
    memcpy(f->data + h, p->data, p->len);
    memcpy(f->data + h + p->len, tail, (size_t)t);
    *payload_off = h;
    return f;
}
