/* chat_user: who a member is. Reads the token at the upgrade (auth.c
 * checks it), names guests, keeps a signed-in member's user id and token
 * expiry (close 4001 at exp, /token to refresh), and moderation: /kick and
 * the application's disconnects, on this node or, through the broker, on
 * the node that holds the member (close 4003, a leave marked as a kick).
 * Never logs or echoes a token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_priv.h"
#include "log.h"

#define GUEST_MARK '~'   /* with sign-in, every guest's nick starts with it, and no token's nick does */

struct chat_user *user_of(const struct chat_client *cl)
{
    return cl->member.tag & TAG_USER ? (struct chat_user *)(void *)cl : NULL;
}

const char *chat_member_user(const struct hub_member *m)
{
    if (!m->sink)
        return hub_roster_user(m);   /* on another node, or gone from here */
    const struct chat_user *u = user_of(client_of(m));
    return u ? u->sub : NULL;
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

/* The nick a guest asks for: ?nick=, or NULL for guest-N; with sign-in on,
 * marked (~name, ~guest without ?nick=, cut to fit) in out, so that a guest
 * never holds a signed-in member's nick. */
const char *guest_nick(const struct chat *chat, const struct ask *a, char *out)
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
int admit(struct chat *chat, const struct http_request *req, struct http_slice rest, struct ask *a,
                 struct auth_result *r, char *nick, struct endpoint_answer *ans)
{
    int status = read_ask(req, rest, a, &ans->reason);
    if (status || (status = authorize(chat, req, a, r, nick, ans)))
        return status;
    return broker_available(&chat->broker, &ans->reason) ? 0 : 503;
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
struct chat_user *user_new(const struct jwt_claims *c)
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

/* Makes the joined member u an authenticated one: tagged, listed, timed. */
void user_start(struct chat *chat, struct chat_user *u, int64_t exp)
{
    u->cl.member.tag |= TAG_USER;
    u->next = chat->users;
    if (u->next)
        u->next->prev = u;
    chat->users = u;
    arm_expiry(chat, u, exp);
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
struct kick_note *kick_take(struct chat *chat, const struct chat_client *cl)
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
    if (m ? m->sink != NULL : !r || !hub_room_unlisted(r))
        return 0;   /* here, or nobody elsewhere that could be called nick */
    char why[WS_MAX_CONTROL_PAYLOAD];
    snprintf(why, sizeof(why), "%.*s", (int)(reason_len < sizeof(why) ? reason_len : sizeof(why) - 1), reason);
    struct broker_kick k = {.room = room, .nick = nick, .reason = why, .by = by, .by_user = by_user};
    return broker_kick(&chat->broker, &k) == 0;
}

void kick_command(struct chat *chat, struct chat_client *cl, const struct command *cmd)
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
void refresh_token(struct chat *chat, struct chat_client *cl, const char *token, size_t len)
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
void chat_kick(void *ctx, const struct broker_kick *k)
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
