/* chat: the chat endpoint. Checks and admits an upgrade (room from the
 * path, nick and resume from the query, the identity chat_user.c reads),
 * turns each text line into a command, relays binary frames, and hands the
 * broker's deliveries to the hub. Owns flood control with the loop's clock.
 * Events are built in chat_event.c, joins and leaves are chat_presence.c's,
 * identity and moderation chat_user.c's; all share chat_priv.h. No sockets:
 * output goes through the hub and conn. Never logs or echoes a token. */
#include "chat.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "chat_priv.h"
#include "command.h"
#include "json.h"
#include "jwt.h"
#include "log.h"
#include "pool.h"
#include "ratelimit.h"
#include "ws.h"

/* The client holding member m (the member is its first field). */
struct chat_client *client_of(const struct hub_member *m)
{
    return (struct chat_client *)(void *)m;
}

static uint32_t now_ms(const struct chat_client *cl)
{
    return (uint32_t)conn_now_ms(cl->member.sink);
}

uint64_t epoch_ms(void)
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

/* Parses the path below the mount point: "" or "/" (the lobby), or "/NAME",
 * into room (NUL-terminated). Returns 0 or -1. */
static int room_from_path(struct http_slice rest, char *room)
{
    if (rest.n <= 1) {
        strcpy(room, "lobby");
        return 0;
    }
    const char *name = rest.p + 1;
    size_t n = rest.n - 1;
    if (!command_room_valid(name, n))
        return -1;
    memcpy(room, name, n);
    room[n] = '\0';
    return 0;
}

/* Reads since and epoch from the query. Returns 0, or -1 when malformed. */
int resume_from_query(struct http_slice query, struct resume *r)
{
    char since[24], epoch[65];
    memset(r, 0, sizeof(*r));
    long n = http_query_get(query, "since", since, sizeof(since));
    if (n == -2 || n == 0)
        return -1;
    if (n > 0) {
        char *end;
        if (since[0] < '0' || since[0] > '9')
            return -1;
        errno = 0;
        r->since = strtoull(since, &end, 10);
        if (errno || *end)
            return -1;
        r->asked = 1;
    }
    long e = http_query_get(query, "epoch", epoch, sizeof(epoch));
    if (e == -2 || e == 0)
        return -1;
    for (long i = 0; i < e; i++)
        if (!isalnum((unsigned char)epoch[i]) && epoch[i] != '-' && epoch[i] != '_')
            return -1;
    if (e > 0 && (size_t)e <= HUB_EPOCH_LEN)
        memcpy(r->epoch, epoch, (size_t)e + 1);
    return 0;
}

/* Reads and checks the room, resume and nick of an upgrade. Returns 0, or
 * 400 with the reason. */
int read_ask(const struct http_request *req, struct http_slice rest, struct ask *a, const char **reason)
{
    if (room_from_path(rest, a->room) < 0) {
        *reason = "invalid room name: use 1 to 64 of A-Z a-z 0-9 _ - .";
        return 400;
    }
    if (resume_from_query(req->query, &a->resume) < 0) {
        *reason = "invalid since or epoch: since is a message seq, epoch the one a welcome gave";
        return 400;
    }
    a->nick_len = http_query_get(req->query, "nick", a->nick, sizeof(a->nick));
    if (a->nick_len == -2 || (a->nick_len > 0 && !command_nick_valid(a->nick, (size_t)a->nick_len))) {
        *reason = "invalid nick: use 1 to 32 bytes of printable UTF-8 without spaces";
        return 400;
    }
    return 0;
}

static int chat_check(void *ctx, const struct http_request *req, struct http_slice rest, struct endpoint_answer *ans)
{
    struct chat *chat = ctx;
    struct ask a;
    struct auth_result r;
    char nick[COMMAND_NICK_MAX + 1];
    int status = admit(chat, req, rest, &a, &r, nick, ans);
    return status ? status : hub_can_join(chat->hub, a.room, &ans->reason);
}

void client_free(struct chat *chat, struct chat_client *cl)
{
    struct chat_user *u = user_of(cl);
    if (!u) {
        pool_free(&chat->clients, cl);
        return;
    }
    loop_timer_cancel(chat->cfg.loop, &u->expiry);
    if (u->prev)
        u->prev->next = u->next;
    else if (chat->users == u)
        chat->users = u->next;
    if (u->next)
        u->next->prev = u->prev;
    free(u);
}

static int chat_accept(void *ctx, struct conn *c, const struct http_request *req, struct http_slice rest,
                       struct endpoint_answer *ans)
{
    struct chat *chat = ctx;
    struct ask a;
    struct auth_result r;
    char token_nick_buf[COMMAND_NICK_MAX + 1];
    int status = admit(chat, req, rest, &a, &r, token_nick_buf, ans);
    if (status)
        return status;
    struct chat_user *u = r.authenticated ? user_new(&r.claims) : NULL;
    struct chat_client *cl = r.authenticated ? (u ? &u->cl : NULL) : pool_alloc(&chat->clients);
    if (!cl) {
        ans->reason = "out of memory";
        return 503;
    }
    char guest[COMMAND_NICK_MAX + 1];
    const char *want = u ? token_nick_buf : guest_nick(chat, &a, guest);   /* a token's name, not ?nick= */
    status = hub_join(chat->hub, &cl->member, a.room, want, c, &ans->reason);
    if (status) {
        if (u)
            free(u);
        else
            pool_free(&chat->clients, cl);
        return status;
    }
    if (u)
        user_start(chat, u, r.claims.exp);
    hub_set_pending(&cl->member, 1);   /* until its join comes back in the room's order */
    if (hub_room_local(cl->member.room) == 1)
        broker_room_open(&chat->broker, a.room);   /* the first member here: follow the room */
    uint32_t now = now_ms(cl);
    ratelimit_bucket_init(&cl->lines, &chat->lines, now);
    ratelimit_bucket_init(&cl->frames, &chat->frames, now);
    ratelimit_bucket_init(&cl->bytes, &chat->bytes, now);
    ratelimit_flood_init(&cl->flood, now);
    conn_set_data(c, cl);
    if (auth_protocol_offered(req, AUTH_PROTOCOL))
        ans->protocol = AUTH_PROTOCOL;
    return 0;
}

/* Applies a bucket's answer to the flood state. Returns 1 when the message
 * may pass; otherwise answers rate_limited (at most once a second), and
 * closes a client that has flooded for RATELIMIT_FLOOD_CLOSE_MS. */
static int flood_check(struct chat *chat, struct chat_client *cl, int allowed, uint32_t now)
{
    switch (ratelimit_flood_note(&cl->flood, allowed, now)) {
    case RATELIMIT_PASS:
        return 1;
    case RATELIMIT_WARN:
        send_error(chat, cl, "rate_limited", "too many messages: slow down");
        return 0;
    case RATELIMIT_CLOSE:
        conn_close_why(cl->member.sink, WS_CLOSE_POLICY, "flooding: over the rate limit for 10 seconds",
                       CONN_CLOSE_RATE);
        return 0;
    case RATELIMIT_DROP:
        break;
    }
    return 0;
}

static void say(struct chat *chat, struct chat_client *cl, const char *text, size_t len, int action)
{
    struct hub_room *room = cl->member.room;
    message_begin(chat, hub_room_name(room), cl->member.nick, cl, text, len);
    if (action)
        put_raw(chat, ",\"action\":true");
    if (message_publish(chat, room) < 0 && !chat->json_failed)
        send_error(chat, cl, "unavailable", "the message could not be sent now: try again");
    conn_charge(cl->member.sink, hub_room_count(room));
}

static void rename_member(struct chat *chat, struct chat_client *cl, const char *name, size_t len)
{
    struct ask a;
    char marked[COMMAND_NICK_MAX + 1];
    if (user_of(cl)) {
        send_error(chat, cl, "forbidden", "your nick is the one your token gives");
        return;
    }
    if (!command_nick_valid(name, len)) {
        send_error(chat, cl, "bad_nick", "a nick is 1 to 32 bytes of printable UTF-8 without spaces");
        return;
    }
    memcpy(a.nick, name, len);
    a.nick[len] = '\0';
    a.nick_len = (long)len;
    const char *nick = guest_nick(chat, &a, marked);   /* marked as a guest's when sign-in is on */
    if (strcmp(nick, cl->member.nick) == 0)
        return;
    if (hub_nick_taken(chat->hub, cl->member.room, nick)) {
        send_error(chat, cl, "nick_taken", "that nick is taken in this room");
        return;
    }
    struct broker_presence p = {.kind = BROKER_RENAME, .nick = nick, .old = cl->member.nick};
    if (broker_presence(&chat->broker, hub_room_name(cl->member.room), &p) < 0)
        send_error(chat, cl, "unavailable", "the nick could not be changed now: try again");
    conn_charge(cl->member.sink, hub_room_count(cl->member.room));
}

static void chat_line(struct chat *chat, struct chat_client *cl, const char *line, size_t len)
{
    uint32_t now = now_ms(cl);
    if (!flood_check(chat, cl, ratelimit_bucket_take(&cl->lines, &chat->lines, 1, now), now))
        return;
    /* A line typed into websocat arrives with its newline: one line ending is not text. */
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len > chat->cfg.max_line) {
        send_error(chat, cl, "too_long", "line is longer than the server accepts");
        return;
    }
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
        event_begin(chat, "members", cl->member.room);
        field_members(chat, cl->member.room);
        event_send(chat, cl);
        conn_charge(cl->member.sink, hub_room_count(cl->member.room));
        break;
    }
    case CMD_TOKEN:
        refresh_token(chat, cl, cmd.arg, cmd.arg_len);
        break;
    case CMD_KICK:
        kick_command(chat, cl, &cmd);
        break;
    case CMD_UNKNOWN:
        send_error(chat, cl, "unknown_command",
                   "unknown command; use /nick NAME, /who, /me TEXT, or // to start a line with /");
        break;
    }
}

/* Relays a binary message to the room, within the sender's frame and byte rates. */
static void relay_binary(struct chat *chat, struct chat_client *cl, const uint8_t *data, size_t len)
{
    uint32_t now = now_ms(cl);
    int allowed = ratelimit_bucket_take(&cl->bytes, &chat->bytes, (uint32_t)len, now) &&
                  ratelimit_bucket_take(&cl->frames, &chat->frames, 1, now);
    if (!flood_check(chat, cl, allowed, now))
        return;
    struct broker_pub p = {.kind = BROKER_BINARY, .data = data, .len = len};
    if (broker_publish(&chat->broker, hub_room_name(cl->member.room), &p) < 0)
        chat->binary_dropped++;
    conn_charge(cl->member.sink, hub_room_count(cl->member.room));
}

/* The broker hands a room's publications back here, in the room's order:
 * number and keep messages, then deliver to this node's members. */
static void chat_deliver(void *ctx, const char *name, const struct broker_pub *p)
{
    struct chat *chat = ctx;
    struct hub_room *room = hub_find(chat->hub, name);
    if (!room) {
        if (p->numbered)
            p->numbered(p->numbered_arg, 404, 0, NULL);
        return;   /* no member here, and no history kept for it here */
    }
    struct sbuf *f;
    size_t off = 0;
    uint64_t seq = 0;
    if (p->kind == BROKER_MESSAGE) {
        seq = p->seq ? p->seq : hub_room_next_seq(room);
        if (p->seq && !p->history)
            hub_room_set_seq(room, seq);
        f = message_frame(p, seq, &off);
    } else {
        f = ws_frame_new(p->kind == BROKER_BINARY ? WS_OP_BINARY : WS_OP_TEXT, p->data, p->len);
    }
    if (p->numbered)   /* the hub numbered it: tell whoever waits */
        p->numbered(p->numbered_arg, f ? 0 : 503, f ? seq : 0, f ? hub_room_epoch(room) : NULL);
    if (!f) {
        event_failed(chat);
        return;
    }
    if (p->kind == BROKER_MESSAGE)
        hub_history_push(chat->hub, room, f, off, seq);
    if (!p->history)
        hub_broadcast(chat->hub, room, f);
    sbuf_unref(f);
}

void chat_message(void *ctx, struct conn *c, enum ws_opcode op, uint8_t *data, size_t len)
{
    struct chat *chat = ctx;
    struct chat_client *cl = conn_data(c);
    if (joining_of(cl))
        early_keep(cl, op, data, len);
    else if (op == WS_OP_TEXT)
        chat_line(chat, cl, (const char *)data, len);
    else
        relay_binary(chat, cl, data, len);
}

/* A rule with burst twice the rate, saturating. */
static struct ratelimit_rule rule_2x(uint32_t rate)
{
    return (struct ratelimit_rule){rate, rate > UINT32_MAX / 2 ? UINT32_MAX : rate * 2};
}

struct chat *chat_new(const struct chat_config *cfg, chat_broker_init_fn init, void *arg)
{
    struct chat *chat = calloc(1, sizeof(*chat));
    if (!chat)
        return NULL;
    chat->cfg = *cfg;
    chat->lines = rule_2x(cfg->rate_limit);
    chat->frames = rule_2x(cfg->binary_rate_limit);
    chat->bytes = rule_2x(cfg->binary_byte_rate);
    pool_init(&chat->clients, sizeof(struct chat_client), 2048);   /* ~200 KiB chunks: see server.c */
    chat->hub = hub_new(&cfg->hub, &sink_ops);
    struct broker_handler handler = {.ctx = chat, .deliver = chat_deliver, .restart = chat_restart,
                                     .ready = chat_ready, .presence = chat_presence, .roster = chat_roster, .kick = chat_kick};
    if (!chat->hub || init(&chat->broker, &handler, arg) < 0) {
        hub_free(chat->hub);
        pool_destroy(&chat->clients);
        free(chat);
        return NULL;
    }
    /* Two bytes more than a line: the one line ending that is not text. */
    uint64_t max_text = cfg->max_line + 2;
    chat->ep = (struct endpoint){
        .name = "chat",
        .ctx = chat,
        .max_text = max_text,
        .max_binary = cfg->max_binary,
        .accept = chat_accept,
        .check = chat_check,
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
    broker_free(&chat->broker);
    hub_free(chat->hub);
    pool_destroy(&chat->clients);
    buf_free(&chat->json);
    free(chat);
}

void chat_metrics(struct chat *chat, struct metrics *m)
{
    metrics_value(m, "rooms", "wshub_rooms", METRICS_GAUGE, "Chat rooms kept, with members or history.",
                  hub_room_total(chat->hub));
    metrics_value(m, "frames_broadcast", "wshub_frames_broadcast_total", METRICS_COUNTER,
                  "Frames encoded once and fanned out to a room.", hub_broadcast_total(chat->hub));
    metrics_value(m, "history_bytes", "wshub_history_bytes", METRICS_GAUGE,
                  "Bytes held by room histories (events plus their fixed cost).", hub_history_bytes(chat->hub));
    metrics_value(m, "events_failed", "wshub_chat_events_failed_total", METRICS_COUNTER,
                  "Chat events dropped because they could not be built (out of memory).", chat->events_failed);
    metrics_value(m, "binary_dropped", "wshub_binary_dropped_total", METRICS_COUNTER,
                  "Binary relays dropped because the broker could not take them.", chat->binary_dropped);
    broker_metrics(&chat->broker, m);
}

int chat_healthy(struct chat *chat, const char **why)
{
    return broker_available(&chat->broker, why);
}

const struct endpoint *chat_endpoint(const struct chat *chat)
{
    return &chat->ep;
}

int chat_post(struct chat *chat, const char *room, const char *nick, const char *text, size_t len,
              broker_numbered_fn done, void *arg)
{
    message_begin(chat, room, nick, NULL, text, len);
    put_raw(chat, ",\"api\":true");
    if (chat->json_failed) {
        event_failed(chat);
        return -1;
    }
    struct broker_pub p = {.kind = BROKER_MESSAGE, .data = chat->json.data, .len = chat->json.len,
                           .numbered = done, .numbered_arg = arg};
    return broker_publish(&chat->broker, room, &p);
}

int chat_room_state(struct chat *chat, const char *room, uint64_t since, size_t limit, broker_state_fn fn,
                    void *arg)
{
    return broker_room_state(&chat->broker, room, since, limit, fn, arg);
}

int chat_room_list(struct chat *chat, const char *prefix, const char *after, size_t limit, broker_list_fn fn,
                   void *arg)
{
    return broker_room_list(&chat->broker, prefix, after, limit, fn, arg);
}

struct hub *chat_hub(const struct chat *chat)
{
    return chat->hub;
}
