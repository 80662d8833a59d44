/* chat: the chat protocol over the hub. Parses the room from the path and the
 * nick from the query at the handshake (or takes the identity auth verified),
 * turns each text line into a command, builds each JSON event once into a
 * shared frame, and relays binary frames. Owns flood control, token expiry
 * and refresh (/token) and moderation (/kick), with the loop's clock and
 * timers. No sockets: output goes through the hub and conn. An event that
 * could not be built whole (out of memory) is never sent half-built: it is
 * dropped and counted. Never logs or echoes a token. */
#include "chat.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "command.h"
#include "json.h"
#include "jwt.h"
#include "log.h"
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
    struct ratelimit_bucket lines, frames, bytes;
    struct ratelimit_flood flood;
    struct joining *waiting;    /* set until it is welcomed */
};
_Static_assert(offsetof(struct chat_client, member) == 0, "client_of casts a member to its client");

/* Bits of member.tag. */
enum {
    TAG_SEEN = 1u << 0,     /* matched while loading a roster (chat_roster) */
    TAG_USER = 1u << 1,     /* authenticated: the client is a struct chat_user */
    TAG_KICKED = 1u << 2,   /* kicked: its leave says so (see struct kick_note) */
};

/* Why a member was kicked, kept from the kick to its close, where its leave
 * is published. Kicks are rare: a short list. */
struct kick_note {
    struct kick_note *next;
    const struct chat_client *cl;
    char by[HUB_NICK_MAX + 1];      /* the moderator's nick; empty: the application */
    char by_user[JWT_SUB_MAX + 1];
    char reason[];
};
static struct kick_note *kick_take(struct chat *chat, const struct chat_client *cl);

/* An authenticated member: its client, then what its token said. Only these
 * pay for an identity; a guest is a plain chat_client. */
struct chat_user {
    struct chat_client cl;      /* first: a member is its user too */
    struct loop_timer expiry;   /* fires at exp plus the leeway: close 4001 */
    struct chat_user *prev, *next;   /* chat->users */
    uint8_t mod;                /* the token says moderator */
    char sub[];                 /* the user id, NUL-terminated */
};

static struct chat_user *user_of(const struct chat_client *cl)
{
    return cl->member.tag & TAG_USER ? (struct chat_user *)(void *)cl : NULL;
}

/* The client holding member m (the member is its first field). */
static struct chat_client *client_of(const struct hub_member *m)
{
    return (struct chat_client *)(void *)m;
}

const char *chat_member_user(const struct hub_member *m)
{
    if (!m->sink)
        return hub_roster_user(m);   /* on another node, or gone from here */
    const struct chat_user *u = user_of(client_of(m));
    return u ? u->sub : NULL;
}

static uint32_t now_ms(const struct chat_client *cl)
{
    return (uint32_t)conn_now_ms(cl->member.sink);
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

/* Appends to the event being built, remembering any failure. */
static void put_raw(struct chat *chat, const char *raw)
{
    chat->json_failed |= json_append_raw(&chat->json, raw) < 0;
}

static void put_string(struct chat *chat, const char *s, size_t n)
{
    chat->json_failed |= json_append_string(&chat->json, s, n) < 0;
}

static void put_bytes(struct chat *chat, const void *p, size_t n)
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

static void event_begin(struct chat *chat, const char *type, const struct hub_room *room)
{
    event_begin_named(chat, type, hub_room_name(room));
}

static void field_string(struct chat *chat, const char *key, const char *s, size_t n)
{
    put_raw(chat, ",\"");
    put_raw(chat, key);
    put_raw(chat, "\":");
    put_string(chat, s, n);
}

static void field_u64(struct chat *chat, const char *key, uint64_t v)
{
    put_raw(chat, ",\"");
    put_raw(chat, key);
    put_raw(chat, "\":");
    chat->json_failed |= json_append_u64(&chat->json, v) < 0;
}

/* ,"user":SUB for an authenticated member; nothing for a guest. */
static void field_user(struct chat *chat, const struct chat_client *cl)
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
static void field_members(struct chat *chat, const struct hub_room *room)
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
static void event_failed(struct chat *chat)
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
static int message_publish(struct chat *chat, struct hub_room *room)
{
    if (chat->json_failed) {
        event_failed(chat);
        return -1;
    }
    struct broker_pub p = {.kind = BROKER_MESSAGE, .data = chat->json.data, .len = chat->json.len};
    return broker_publish(&chat->broker, hub_room_name(room), &p);
}

static void event_send(struct chat *chat, struct chat_client *cl)
{
    struct sbuf *f = event_end(chat);
    if (f) {
        hub_send(chat->hub, &cl->member, f);
        sbuf_unref(f);
    }
}

/* Closes the event in the scratch buffer and sends it to room's members here. */
static void event_send_all(struct chat *chat, struct hub_room *room)
{
    struct sbuf *f = event_end(chat);
    if (f) {
        hub_broadcast(chat->hub, room, f);
        sbuf_unref(f);
    }
}

static void send_error(struct chat *chat, struct chat_client *cl, const char *code, const char *text)
{
    event_begin(chat, "error", cl->member.room);
    field_string(chat, "code", code, strlen(code));
    field_string(chat, "text", text, strlen(text));
    event_send(chat, cl);
}

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
static int resume_from_query(struct http_slice query, struct resume *r)
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

/* What an upgrade asks for, read from its path and query. */
struct ask {
    char room[COMMAND_ROOM_MAX + 1];
    char nick[NICK_QUERY_MAX];
    long nick_len;      /* > 0 when ?nick= was given */
    struct resume resume;
};

/* Reads and checks the room, resume and nick of an upgrade. Returns 0, or
 * 400 with the reason. */
static int read_ask(const struct http_request *req, struct http_slice rest, struct ask *a, const char **reason)
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

/* The nick a token gives: its name when that is a valid nick not starting
 * with the guests' mark, else its sub (without the mark, cut to 32 bytes at
 * a code point boundary). Returns 0, or -1 when neither makes a valid nick. */
static int token_nick(const struct jwt_claims *c, char *out)
{
    size_t n = strlen(c->name);
    if (n && c->name[0] != '~' && command_nick_valid(c->name, n)) {
        memcpy(out, c->name, n + 1);
        return 0;
    }
    const char *sub = c->sub;
    while (*sub == '~')
        sub++;   /* the guests' mark */
    n = strlen(sub);
    if (n > COMMAND_NICK_MAX) {
        n = COMMAND_NICK_MAX;
        while (n > 0 && ((uint8_t)sub[n] & 0xC0u) == 0x80u)
            n--;
    }
    memcpy(out, sub, n);
    out[n] = '\0';
    return n && command_nick_valid(out, n) ? 0 : -1;
}

#define GUEST_MARK '~'   /* with sign-in, every guest's nick starts with it, and no token's nick does */

/* The nick a guest asks for: ?nick=, or NULL for guest-N; with sign-in on,
 * marked (~name, ~guest without ?nick=, cut to fit) in out, so that a guest
 * never holds a signed-in member's nick. */
static const char *guest_nick(const struct chat *chat, const struct ask *a, char *out)
{
    if (!chat->cfg.auth)
        return a->nick_len > 0 ? a->nick : NULL;
    const char *base = a->nick_len > 0 ? a->nick : "guest";
    size_t n = strlen(base);
    while (n > 0 && base[0] == GUEST_MARK) {
        base++;
        n--;
    }
    if (n > COMMAND_NICK_MAX - 1) {
        n = COMMAND_NICK_MAX - 1;
        while (n > 0 && ((uint8_t)base[n] & 0xC0u) == 0x80u)
            n--;
    }
    out[0] = GUEST_MARK;
    memcpy(out + 1, base, n);
    out[n + 1] = '\0';
    return out;
}

/* Checks the upgrade's token (when auth is on) into *r. Returns 0, or the
 * refusal's status with ans filled (its headers in chat->refusal). */
static int authorize(struct chat *chat, const struct http_request *req, const struct ask *a, struct auth_result *r,
                     char *nick, struct endpoint_answer *ans)
{
    memset(r, 0, sizeof(*r));
    if (chat->cfg.auth)
        auth_decide(chat->cfg.auth, req, a->room, (int64_t)time(NULL), r);
    if (!r->status && r->authenticated && token_nick(&r->claims, nick) < 0) {
        r->status = 401;
        r->reason = "the token's name and sub make no valid nick";
        r->header[0] = '\0';
    }
    if (r->status) {
        ans->reason = r->reason;
        memcpy(chat->refusal, r->header, sizeof(chat->refusal));
        ans->headers = chat->refusal[0] ? chat->refusal : NULL;
    }
    return r->status;
}

/* The checks an upgrade and a check of one share: what it asks for, its
 * token, and whether the cluster takes joins now. Returns 0 or a status. */
static int admit(struct chat *chat, const struct http_request *req, struct http_slice rest, struct ask *a,
                 struct auth_result *r, char *nick, struct endpoint_answer *ans)
{
    int status = read_ask(req, rest, a, &ans->reason);
    if (status || (status = authorize(chat, req, a, r, nick, ans)))
        return status;
    return broker_available(&chat->broker, &ans->reason) ? 0 : 503;
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

/* Closes the member when its token expires (exp plus the leeway). */
static void token_expired(struct loop *l, struct loop_timer *t)
{
    (void)l;
    struct chat_user *u = container_of(t, struct chat_user, expiry);
    conn_close(u->cl.member.sink, CHAT_CLOSE_EXPIRED, "token expired");
}

/* Arms u's expiry timer for a token expiring at exp (0: never). */
static void arm_expiry(struct chat *chat, struct chat_user *u, int64_t exp)
{
    if (!exp) {
        loop_timer_cancel(chat->cfg.loop, &u->expiry);
        return;
    }
    int64_t at = (exp + (int64_t)auth_leeway(chat->cfg.auth)) * 1000, now = (int64_t)epoch_ms();
    loop_timer_after(chat->cfg.loop, &u->expiry, at > now ? (uint64_t)(at - now) : 0);
}

/* A new authenticated client (zeroed) for the verified claims. */
static struct chat_user *user_new(const struct jwt_claims *c)
{
    size_t n = strlen(c->sub);
    struct chat_user *u = calloc(1, sizeof(*u) + n + 1);
    if (!u)
        return NULL;
    memcpy(u->sub, c->sub, n + 1);
    u->mod = (uint8_t)(c->mod != 0);
    u->expiry.cb = token_expired;
    return u;
}

static void client_free(struct chat *chat, struct chat_client *cl)
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

/* Makes the joined member u an authenticated one: tagged, listed, timed. */
static void user_start(struct chat *chat, struct chat_user *u, int64_t exp)
{
    u->cl.member.tag |= TAG_USER;
    u->next = chat->users;
    if (u->next)
        u->next->prev = u;
    chat->users = u;
    arm_expiry(chat, u, exp);
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

/* Sends cl its welcome (with what resume asks for) and announces it. */
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
    struct joining *j = cl->waiting;
    if (!j)
        return NULL;
    struct joining **p = joiner_slot(chat, j->id);
    if (*p == j)
        *p = j->next;
    struct early *e = j->early;
    cl->waiting = NULL;
    free(j);
    return e;
}

/* Keeps a message cl sent before its welcome, within EARLY_MAX bytes (over
 * it the connection closes: a client that does not wait for a welcome it
 * asked for only hurts itself). */
static void early_keep(struct chat_client *cl, enum ws_opcode op, const uint8_t *data, size_t len)
{
    struct joining *j = cl->waiting;
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

static void chat_message(void *ctx, struct conn *c, enum ws_opcode op, uint8_t *data, size_t len);

/* Welcomes cl (settled, in a room in order), forgets how it joined, and
 * handles what it sent before, in order. */
static void welcome_joined(struct chat *chat, struct chat_client *cl)
{
    welcome(chat, cl, &cl->waiting->resume);
    struct early *early = joining_drop(chat, cl);
    for (struct early *e = early; e && conn_is_open(cl->member.sink); e = e->next)
        chat_message(chat, cl->member.sink, e->op, e->data, e->len);
    early_free(early);
}

/* Publishes cl's join into its room's order; it is welcomed when the join
 * comes back (see chat_presence). */
static void chat_open(void *ctx, struct conn *c, const struct http_request *req)
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
    if (cl->waiting)
        cl->waiting->sent = 1;   /* else the join came back at once, and it was welcomed */
}

static int presence_begin(struct chat *chat, struct hub_room *room, const char *type, const char *nick,
                          const struct broker_presence *p, size_t before);

/* The broker has the room in the cluster's order: welcome who waited. A
 * welcome never removes a member (a cut waits for the safe point), so the
 * walk is safe. */
static void chat_ready(void *ctx, const char *name)
{
    struct chat *chat = ctx;
    struct hub_room *room = hub_find(chat->hub, name);
    if (!room)
        return;
    hub_room_set_ready(room, 1);
    for (size_t i = 0; i < hub_room_local(room); i++) {
        struct chat_client *cl = client_of(hub_room_member(room, i));
        if (!cl->waiting || cl->member.pending)
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
static void chat_restart(void *ctx, const char *name, const char *epoch, uint64_t seq)
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

/* Broadcasts {"type":"join"|"leave","room":R,"nick":N[,"user":U],"count":K}
 * (a leave with [,"kicked":true,"kicked_by":M,"kicked_by_user":V][,"reason":W])
 * to room's members here, while its presence is on. */
static int presence_begin(struct chat *chat, struct hub_room *room, const char *type, const char *nick,
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

static void presence_event(struct chat *chat, struct hub_room *room, const char *type, const char *nick,
                           const struct broker_presence *p, size_t before)
{
    if (presence_begin(chat, room, type, nick, p, before))
        event_send_all(chat, room);
}

/* Broadcasts {"type":"nick","room":R,"old":O,"nick":N[,"user":U]} to room's members here. */
static void nick_event(struct chat *chat, struct hub_room *room, const char *old, const struct broker_presence *p)
{
    event_begin(chat, "nick", room);
    field_string(chat, "old", old, strlen(old));
    field_string(chat, "nick", p->nick, strlen(p->nick));
    if (p->user)
        field_string(chat, "user", p->user, strlen(p->user));
    event_send_all(chat, room);
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

static void presence_join(struct chat *chat, struct hub_room *room, const struct broker_presence *p)
{
    struct chat_client *cl = p->mine && p->id ? joiner(chat, room, p->id) : NULL;
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
    } else if (hub_roster_add(chat->hub, room, p->nick, p->user) < 0) {
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
static void chat_presence(void *ctx, const char *name, const struct broker_presence *p)
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
        if (hub_roster_remove(chat->hub, room, p->nick) == 0)
            presence_event(chat, room, "leave", p->nick, p, hub_room_count(room) + 1);
        break;
    }
}

/* The room's roster as the cluster has it: entries of other nodes are
 * loaded; this node's members are matched with theirs (a joiner whose join
 * the snapshot already holds is settled, welcomed at ready); an entry of
 * this node with no member here is stale and leaves; a member here the
 * cluster lost (its data, or this node timed out) joins again. */
static void chat_roster(void *ctx, const char *name, const struct broker_presence *e, size_t n)
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
            if (hub_roster_add(chat->hub, room, e[i].nick, e[i].user) < 0)
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
}

/* The member leaves the hub at once; it leaves the roster when its leave
 * comes back in the room's order (at once on a single node). Told even when
 * no member is left here: in a cluster, others may be. */
static void chat_close(void *ctx, struct conn *c)
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
    int sent = !cl->waiting || cl->waiting->sent;
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

/* Starts a message event: type, room, nick, the user of cl (NULL: from the
 * API), text, ts. */
static void message_begin(struct chat *chat, const char *room, const char *nick, const struct chat_client *cl,
                          const char *text, size_t len)
{
    event_begin_named(chat, "message", room);
    field_string(chat, "nick", nick, strlen(nick));
    if (cl)
        field_user(chat, cl);
    field_string(chat, "text", text, len);
    field_u64(chat, "ts", epoch_ms());
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

/* Closes cl with 4003 and reason, kicked by the moderator called by (user
 * id by_user), on any node, or by the application when by is NULL; its
 * leave, published when it closes, says so. */
static void kick(struct chat *chat, struct chat_client *cl, const char *by, const char *by_user,
                 const char *reason, size_t reason_len)
{
    struct kick_note *k = malloc(sizeof(*k) + reason_len + 1);
    if (k) {   /* out of memory, the leave is still marked as a kick, without who and why */
        k->cl = cl;
        snprintf(k->by, sizeof(k->by), "%s", by ? by : "");
        snprintf(k->by_user, sizeof(k->by_user), "%s", by_user ? by_user : "");
        memcpy(k->reason, reason, reason_len);
        k->reason[reason_len] = '\0';
        k->next = chat->kicks;
        chat->kicks = k;
    }
    cl->member.tag |= TAG_KICKED;
    char why[WS_MAX_CONTROL_PAYLOAD];
    snprintf(why, sizeof(why), "%s%s%s%.*s", by ? "kicked by " : "", by ? by : "",
             by && reason_len ? ": " : "", (int)(reason_len < sizeof(why) ? reason_len : sizeof(why)), reason);
    conn_close(cl->member.sink, CHAT_CLOSE_FORBIDDEN, why);
}

/* Takes cl's kick note out of the list (NULL when there is none). */
static struct kick_note *kick_take(struct chat *chat, const struct chat_client *cl)
{
    for (struct kick_note **p = &chat->kicks; *p; p = &(*p)->next) {
        if ((*p)->cl == cl) {
            struct kick_note *k = *p;
            *p = k->next;
            return k;
        }
    }
    return NULL;
}

/* Whether cl is still in its room and reachable (not kicked or closing). */
static int kickable(const struct chat_client *cl)
{
    return !(cl->member.tag & TAG_KICKED) && conn_is_open(cl->member.sink);
}

/* Asks the node that holds nick in room (in the roster here, on another
 * node) to kick it. Returns 1 when asked, 0 when there is no such member. */
static int kick_elsewhere(struct chat *chat, const char *room, const char *nick, const char *reason,
                          size_t reason_len, const char *by, const char *by_user)
{
    struct hub_room *r = hub_find(chat->hub, room);
    struct hub_member *m = r ? hub_member_find(chat->hub, r, nick) : NULL;
    if (!m || m->sink)
        return 0;
    char why[WS_MAX_CONTROL_PAYLOAD];
    snprintf(why, sizeof(why), "%.*s", (int)(reason_len < sizeof(why) ? reason_len : sizeof(why) - 1), reason);
    struct broker_kick k = {.room = room, .nick = nick, .reason = why, .by = by, .by_user = by_user};
    return broker_kick(&chat->broker, &k) == 0;
}

static void kick_command(struct chat *chat, struct chat_client *cl, const struct command *cmd)
{
    if (!user_of(cl) || !user_of(cl)->mod) {
        send_error(chat, cl, "forbidden", "only moderators (a token with \"mod\":true) may /kick");
        return;
    }
    char nick[HUB_NICK_MAX + 1];
    struct hub_member *m = NULL;
    if (cmd->arg_len <= HUB_NICK_MAX) {
        memcpy(nick, cmd->arg, cmd->arg_len);
        nick[cmd->arg_len] = '\0';
        m = hub_local_find(chat->hub, cl->member.room, nick);
    }
    const char *by_user = user_of(cl)->sub;
    if (m && !m->pending && kickable(client_of(m))) {
        kick(chat, client_of(m), cl->member.nick, by_user, cmd->reason, cmd->reason_len);
    } else if (m || !kick_elsewhere(chat, hub_room_name(cl->member.room), nick, cmd->reason, cmd->reason_len,
                                    cl->member.nick, by_user)) {
        send_error(chat, cl, "no_such_nick", "nobody has that nick in this room");
        return;
    }
    conn_charge(cl->member.sink, hub_room_count(cl->member.room));
}

/* /token: a fresh token for the same user, valid for this room, replaces the
 * connection's (its expiry and moderator flag). */
static void refresh_token(struct chat *chat, struct chat_client *cl, const char *token, size_t len)
{
    struct chat_user *u = user_of(cl);
    struct jwt_claims c;
    enum jwt_error e;
    if (!chat->cfg.auth) {
        send_error(chat, cl, "bad_token", "this server does not use tokens");
    } else if (!u) {
        send_error(chat, cl, "forbidden", "a guest cannot sign in on an open connection: reconnect with a token");
    } else if ((e = auth_verify(chat->cfg.auth, token, len, (int64_t)time(NULL), &c)) != JWT_OK) {
        send_error(chat, cl, "bad_token", jwt_error_text(e));
    } else if (strcmp(c.sub, u->sub) != 0) {
        send_error(chat, cl, "forbidden", "the new token is for another user");
    } else if (!jwt_room_allowed(&c, hub_room_name(cl->member.room))) {
        send_error(chat, cl, "forbidden", "the new token does not allow this room");
    } else {
        u->mod = (uint8_t)(c.mod != 0);
        arm_expiry(chat, u, c.exp);
        event_begin(chat, "token", cl->member.room);
        field_string(chat, "user", u->sub, strlen(u->sub));
        if (c.exp)
            field_u64(chat, "exp", (uint64_t)c.exp);
        event_send(chat, cl);
    }
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

/* A MESSAGE's frame: its JSON, then ,"seq":S} to close it. */
static struct sbuf *message_frame(const struct broker_pub *p, uint64_t seq, size_t *payload_off)
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

static void chat_message(void *ctx, struct conn *c, enum ws_opcode op, uint8_t *data, size_t len)
{
    struct chat *chat = ctx;
    struct chat_client *cl = conn_data(c);
    if (cl->waiting)
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

static void chat_kick(void *ctx, const struct broker_kick *k);

struct chat *chat_new(const struct chat_config *cfg, chat_broker_init_fn init, void *arg)
{
    struct chat *chat = calloc(1, sizeof(*chat));
    if (!chat)
        return NULL;
    chat->cfg = *cfg;
    chat->lines = rule_2x(cfg->rate_limit);
    chat->frames = rule_2x(cfg->binary_rate_limit);
    chat->bytes = rule_2x(cfg->binary_byte_rate);
    pool_init(&chat->clients, sizeof(struct chat_client), 128);
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

/* Closes this node's connections of user, kicked as k says. */
static size_t kick_user_here(struct chat *chat, const char *user, const char *reason, const char *by,
                             const char *by_user)
{
    size_t n = 0;
    for (struct chat_user *u = chat->users; u; u = u->next) {
        if (strcmp(u->sub, user) == 0 && kickable(&u->cl)) {
            kick(chat, &u->cl, by, by_user, reason, strlen(reason));
            n++;
        }
    }
    return n;
}

/* Another node asks: close this node's members that k names. */
static void chat_kick(void *ctx, const struct broker_kick *k)
{
    struct chat *chat = ctx;
    if (k->user) {
        kick_user_here(chat, k->user, k->reason, k->by, k->by_user);
        return;
    }
    struct hub_room *r = hub_find(chat->hub, k->room);
    struct hub_member *m = r ? hub_local_find(chat->hub, r, k->nick) : NULL;
    if (m && !m->pending && kickable(client_of(m)))
        kick(chat, client_of(m), k->by, k->by_user, k->reason, strlen(k->reason));
}

size_t chat_disconnect_user(struct chat *chat, const char *user, const char *reason)
{
    struct broker_kick k = {.user = user, .reason = reason};
    broker_kick(&chat->broker, &k);   /* the other nodes close theirs */
    return kick_user_here(chat, user, reason, NULL, NULL);
}

int chat_disconnect_nick(struct chat *chat, const char *room, const char *nick, const char *reason)
{
    struct hub_room *r = hub_find(chat->hub, room);
    struct hub_member *m = r ? hub_local_find(chat->hub, r, nick) : NULL;
    if (m && !m->pending && kickable(client_of(m))) {
        kick(chat, client_of(m), NULL, NULL, reason, strlen(reason));
        return 0;
    }
    return !m && kick_elsewhere(chat, room, nick, reason, strlen(reason), NULL, NULL) ? 0 : -1;
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

struct hub *chat_hub(const struct chat *chat)
{
    return chat->hub;
}
