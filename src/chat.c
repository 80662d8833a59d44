/* chat: the chat protocol over the hub. Parses the room from the path and the
 * nick from the query at the handshake, turns each text line into a command,
 * builds each JSON event once into a shared frame, and relays binary frames.
 * Owns flood control. No sockets: output goes through the hub and conn. */
#include "chat.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "command.h"
#include "json.h"
#include "pool.h"
#include "ws.h"

#define FLOOD_CLOSE_MS 10000   /* flooding this long closes the connection */
#define RATE_WARN_MS 1000      /* at most one rate_limited error per this */
#define NICK_QUERY_MAX 256

struct chat {
    struct endpoint ep;
    struct chat_config cfg;
    struct hub *hub;
    struct pool clients;      /* where struct chat_client lives */
    struct buf json;          /* scratch for building events, reused */
};

/* One member's state; small, since every idle connection in a room has one.
 * Times are monotonic milliseconds modulo 2^32, compared by difference. */
struct chat_client {
    struct hub_member member;   /* member.sink is the struct conn */
    uint32_t tokens;            /* thousandths of a line */
    uint32_t refill_ms;
    uint32_t flood_since_ms;
    uint32_t last_drop_ms;
    uint32_t last_warn_ms;
    uint8_t flooding;
};

static uint32_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static uint64_t epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Hub sink operations on a conn. */
static int sink_send(void *sink, struct sbuf *frame)
{
    return conn_send_frame(sink, frame);
}

static size_t sink_backlog(void *sink)
{
    return conn_backlog(sink);
}

static void sink_cut(void *sink)
{
    conn_cut(sink, "slow consumer: too much unsent output");
}

static const struct hub_sink_ops sink_ops = {sink_send, sink_backlog, sink_cut};

/* Starts an event in the scratch buffer: {"type":T,"room":R */
static struct buf *event_begin(struct chat *chat, const char *type, const struct hub_room *room)
{
    struct buf *b = &chat->json;
    b->len = 0;
    json_append_raw(b, "{\"type\":\"");
    json_append_raw(b, type);
    json_append_raw(b, "\",\"room\":");
    json_append_cstring(b, hub_room_name(room));
    return b;
}

static void field_string(struct buf *b, const char *key, const char *s, size_t n)
{
    json_append_raw(b, ",\"");
    json_append_raw(b, key);
    json_append_raw(b, "\":");
    json_append_string(b, s, n);
}

static void field_u64(struct buf *b, const char *key, uint64_t v)
{
    json_append_raw(b, ",\"");
    json_append_raw(b, key);
    json_append_raw(b, "\":");
    json_append_u64(b, v);
}

/* Whether a room of this size still gets join and leave events and whole
 * member lists. Past the presence limit each join would cost a delivery to
 * every member and a list of every member: quadratic for a big room. */
static int presence_on(const struct chat *chat, size_t members)
{
    return chat->cfg.presence_limit == 0 || members <= chat->cfg.presence_limit;
}

/* ,"count":K,"members":[...] with at most presence_limit nicks. */
static void field_members(struct chat *chat, struct buf *b, const struct hub_room *room)
{
    size_t n = hub_room_count(room);
    if (!presence_on(chat, n))
        n = chat->cfg.presence_limit;
    field_u64(b, "count", hub_room_count(room));
    json_append_raw(b, ",\"members\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            json_append_raw(b, ",");
        json_append_cstring(b, hub_room_member(room, i)->nick);
    }
    json_append_raw(b, "]");
}

/* Closes the event in the scratch buffer and frames it; NULL if out of memory. */
static struct sbuf *event_end(struct chat *chat, size_t *payload_off)
{
    if (json_append_raw(&chat->json, "}") < 0)
        return NULL;
    if (payload_off)
        *payload_off = ws_header_len(chat->json.len);
    return conn_frame_new(WS_OP_TEXT, chat->json.data, chat->json.len);
}

static void event_broadcast(struct chat *chat, struct hub_room *room)
{
    struct sbuf *f = event_end(chat, NULL);
    if (f) {
        hub_broadcast(chat->hub, room, f);
        sbuf_unref(f);
    }
}

static void event_send(struct chat *chat, struct chat_client *cl)
{
    struct sbuf *f = event_end(chat, NULL);
    if (f) {
        hub_send(chat->hub, &cl->member, f);
        sbuf_unref(f);
    }
}

static void send_error(struct chat *chat, struct chat_client *cl, const char *code, const char *text)
{
    struct buf *b = event_begin(chat, "error", cl->member.room);
    field_string(b, "code", code, strlen(code));
    field_string(b, "text", text, strlen(text));
    event_send(chat, cl);
}

/* Parses /ws, /ws/ or /ws/NAME into room (NUL-terminated). Returns 0 or -1. */
static int room_from_path(struct http_slice path, char *room)
{
    if (path.n == 3 || path.n == 4) {   /* "/ws" or "/ws/" */
        strcpy(room, "lobby");
        return 0;
    }
    const char *name = path.p + 4;
    size_t n = path.n - 4;
    if (!command_room_valid(name, n))
        return -1;
    memcpy(room, name, n);
    room[n] = '\0';
    return 0;
}

static int chat_accept(struct conn *c, const struct http_request *req, const char **reason)
{
    struct chat *chat = c->ep->ctx;
    char room[COMMAND_ROOM_MAX + 1], nick[NICK_QUERY_MAX];
    if (room_from_path(req->path, room) < 0) {
        *reason = "invalid room name: use 1 to 64 of A-Z a-z 0-9 _ - .";
        return 400;
    }
    long n = http_query_get(req->query, "nick", nick, sizeof(nick));
    if (n == -2 || (n > 0 && !command_nick_valid(nick, (size_t)n))) {
        *reason = "invalid nick: use 1 to 32 bytes of printable UTF-8 without spaces";
        return 400;
    }
    struct chat_client *cl = pool_alloc(&chat->clients);
    if (!cl) {
        *reason = "out of memory";
        return 503;
    }
    int status = hub_join(chat->hub, &cl->member, room, n > 0 ? nick : NULL, c, reason);
    if (status) {
        pool_free(&chat->clients, cl);
        return status;
    }
    cl->tokens = (uint32_t)(2 * chat->cfg.rate_limit * 1000 < UINT32_MAX ? 2 * chat->cfg.rate_limit * 1000
                                                                          : UINT32_MAX);
    cl->refill_ms = cl->last_warn_ms = mono_ms() - RATE_WARN_MS;
    c->ep_data = cl;
    return 0;
}

static void chat_open(struct conn *c)
{
    struct chat *chat = c->ep->ctx;
    struct chat_client *cl = c->ep_data;
    struct hub_room *room = cl->member.room;
    struct buf *b = event_begin(chat, "welcome", room);
    field_string(b, "nick", cl->member.nick, strlen(cl->member.nick));
    field_members(chat, b, room);
    json_append_raw(b, ",\"history\":[");
    for (size_t i = 0; i < hub_room_history_count(room); i++) {
        size_t len;
        const uint8_t *ev = hub_room_history(room, i, &len);
        if (i)
            json_append_raw(b, ",");
        buf_append(b, ev, len);
    }
    json_append_raw(b, "]");
    event_send(chat, cl);
    if (c->ep_data != cl)
        return;   /* cut off already: a welcome bigger than --max-backlog */

    if (!presence_on(chat, hub_room_count(room)))
        return;
    b = event_begin(chat, "join", room);
    field_string(b, "nick", cl->member.nick, strlen(cl->member.nick));
    field_u64(b, "count", hub_room_count(room));
    event_broadcast(chat, room);
}

static void chat_close(struct conn *c)
{
    struct chat *chat = c->ep->ctx;
    struct chat_client *cl = c->ep_data;
    struct hub_room *room = cl->member.room;
    char nick[COMMAND_NICK_MAX + 1];
    memcpy(nick, cl->member.nick, sizeof(nick));
    hub_leave(chat->hub, &cl->member);
    c->ep_data = NULL;
    pool_free(&chat->clients, cl);
    if (hub_room_count(room) && presence_on(chat, hub_room_count(room) + 1)) {
        struct buf *b = event_begin(chat, "leave", room);
        field_string(b, "nick", nick, strlen(nick));
        field_u64(b, "count", hub_room_count(room));
        event_broadcast(chat, room);
    }
}

/* Token bucket: rate lines a second, burst 2 x rate. Returns 1 when the line may
 * pass; otherwise answers rate_limited (at most once a second), and closes a
 * client that has flooded for FLOOD_CLOSE_MS. Flooding ends after a quiet second. */
static int rate_allow(struct chat *chat, struct chat_client *cl)
{
    uint64_t rate = chat->cfg.rate_limit;
    if (!rate)
        return 1;
    uint32_t now = mono_ms();
    uint64_t cap = 2 * rate * 1000, tokens = cl->tokens + (uint64_t)(uint32_t)(now - cl->refill_ms) * rate;
    cl->tokens = (uint32_t)(tokens > cap ? cap : tokens > UINT32_MAX ? UINT32_MAX : tokens);
    cl->refill_ms = now;
    if (cl->flooding && now - cl->last_drop_ms > 1000)
        cl->flooding = 0;
    if (cl->tokens >= 1000) {
        cl->tokens -= 1000;
        return 1;
    }
    if (!cl->flooding) {
        cl->flooding = 1;
        cl->flood_since_ms = now;
    }
    cl->last_drop_ms = now;
    if (now - cl->flood_since_ms >= FLOOD_CLOSE_MS) {
        conn_close_why(cl->member.sink, WS_CLOSE_POLICY, "flooding: over the rate limit for 10 seconds",
                       STATS_CLOSE_RATE);
        return 0;
    }
    if (now - cl->last_warn_ms >= RATE_WARN_MS) {
        cl->last_warn_ms = now;
        send_error(chat, cl, "rate_limited", "too many messages: slow down");
    }
    return 0;
}

static void say(struct chat *chat, struct chat_client *cl, const char *text, size_t len, int action)
{
    struct hub_room *room = cl->member.room;
    struct buf *b = event_begin(chat, "message", room);
    field_string(b, "nick", cl->member.nick, strlen(cl->member.nick));
    field_string(b, "text", text, len);
    field_u64(b, "seq", hub_room_next_seq(room));
    field_u64(b, "ts", epoch_ms());
    if (action)
        json_append_raw(b, ",\"action\":true");
    size_t off;
    struct sbuf *f = event_end(chat, &off);
    if (!f)
        return;
    hub_history_push(chat->hub, room, f, off);
    hub_broadcast(chat->hub, room, f);
    sbuf_unref(f);
}

static void rename_member(struct chat *chat, struct chat_client *cl, const char *name, size_t len)
{
    char nick[COMMAND_NICK_MAX + 1];
    if (!command_nick_valid(name, len)) {
        send_error(chat, cl, "bad_nick", "a nick is 1 to 32 bytes of printable UTF-8 without spaces");
        return;
    }
    memcpy(nick, name, len);
    nick[len] = '\0';
    if (strcmp(nick, cl->member.nick) == 0)
        return;
    char old[COMMAND_NICK_MAX + 1];
    memcpy(old, cl->member.nick, sizeof(old));
    if (hub_rename(chat->hub, &cl->member, nick) < 0) {
        send_error(chat, cl, "nick_taken", "that nick is taken in this room");
        return;
    }
    struct buf *b = event_begin(chat, "nick", cl->member.room);
    field_string(b, "old", old, strlen(old));
    field_string(b, "nick", nick, len);
    event_broadcast(chat, cl->member.room);
}

static void chat_line(struct chat *chat, struct chat_client *cl, const char *line, size_t len)
{
    if (!rate_allow(chat, cl))
        return;
    if (len > chat->cfg.max_line) {
        send_error(chat, cl, "too_long", "line is longer than the server accepts");
        return;
    }
    /* A line typed into websocat arrives with its newline: one line ending is not text. */
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    struct command cmd;
    command_parse(line, len, &cmd);
    switch (cmd.kind) {
    case CMD_EMPTY:
        break;
    case CMD_MESSAGE:
    case CMD_ACTION:
        say(chat, cl, cmd.arg, cmd.arg_len, cmd.kind == CMD_ACTION);
        break;
    case CMD_NICK:
        rename_member(chat, cl, cmd.arg, cmd.arg_len);
        break;
    case CMD_WHO: {
        struct buf *b = event_begin(chat, "members", cl->member.room);
        field_members(chat, b, cl->member.room);
        event_send(chat, cl);
        break;
    }
    case CMD_UNKNOWN:
        send_error(chat, cl, "unknown_command",
                   "unknown command; use /nick NAME, /who, /me TEXT, or // to start a line with /");
        break;
    }
}

static void chat_message(struct conn *c, enum ws_opcode op, uint8_t *data, size_t len)
{
    struct chat *chat = c->ep->ctx;
    struct chat_client *cl = c->ep_data;
    if (op == WS_OP_TEXT) {
        chat_line(chat, cl, (const char *)data, len);
        return;
    }
    struct sbuf *f = conn_frame_new(WS_OP_BINARY, data, len);
    if (f) {
        hub_broadcast(chat->hub, cl->member.room, f);
        sbuf_unref(f);
    }
}

struct chat *chat_new(const struct chat_config *cfg)
{
    struct chat *chat = calloc(1, sizeof(*chat));
    if (!chat)
        return NULL;
    chat->cfg = *cfg;
    pool_init(&chat->clients, sizeof(struct chat_client), 128);
    chat->hub = hub_new(&cfg->hub, &sink_ops);
    if (!chat->hub) {
        free(chat);
        return NULL;
    }
    chat->ep = (struct endpoint){
        .name = "chat",
        .ctx = chat,
        .accept = chat_accept,
        .open = chat_open,
        .message = chat_message,
        .close = chat_close,
    };
    return chat;
}

void chat_free(struct chat *chat)
{
    if (!chat)
        return;
    hub_free(chat->hub);
    pool_destroy(&chat->clients);
    buf_free(&chat->json);
    free(chat);
}

void chat_fill_stats(void *ctx, struct stats *s)
{
    struct chat *chat = ctx;
    s->rooms = hub_room_total(chat->hub);
    s->frames_broadcast = hub_broadcast_total(chat->hub);
}

const struct endpoint *chat_endpoint(const struct chat *chat)
{
    return &chat->ep;
}
