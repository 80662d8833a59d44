/* redis_link: a self-healing hiredis async connection on wshub's loop. Owns
 * the hiredis context, its descriptor's place in the loop, the link's two
 * timers (reconnect / connect deadline / reply deadline, and the heartbeat)
 * and a record per command in flight. It must never block (getaddrinfo of a
 * host name aside), never parse RESP itself, never call the owner back from
 * inside the owner's own calls (redis_link_free's NULL replies aside), and
 * never free the hiredis context while hiredis is freeing it.
 *
 * hiredis 0.14 facts this relies on: every callback registered with a
 * command runs exactly once (with NULL when the context goes away); a
 * context that fails frees itself, running the NULL callbacks and then
 * ev.cleanup; redisAsyncFree from inside a callback is deferred until it
 * returns. In subscribed mode it mis-routes PING replies, so the pub/sub
 * heartbeat is a SUBSCRIBE to a private channel, whose confirmation comes
 * back in order like a reply. */
#include "redis_link.h"

#include <fcntl.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "loop.h"

#define HEARTBEAT_CHANNEL "__wshub_redis_link_heartbeat__"

enum link_state { LINK_IDLE, LINK_CONNECTING, LINK_UP };

/* What a command in flight was sent for. */
enum pending_kind {
    PENDING_OWNER,    /* the owner's command: its reply goes to fn */
    PENDING_AUTH,     /* handshake */
    PENDING_SELECT,
    PENDING_READY,    /* the handshake's last PING: its answer brings the link up */
    PENDING_PING,     /* heartbeat */
    PENDING_LOAD,     /* SCRIPT LOAD before an EVALSHA is sent again */
};

/* A command in flight, in send order; hiredis holds it as its callback data
 * until it calls on_reply, which frees it. */
struct pending {
    struct pending *prev, *next;
    struct redis_link *link;
    enum pending_kind kind;
    int waiting;                        /* an owner's command not answered yet */
    redis_reply_fn fn;
    void *privdata;
    uint64_t sent_ms;
    const struct redis_script *script;  /* EVALSHA: the script, and the command to resend */
    char *cmd;
    size_t cmdlen;
    int retried;
};

struct redis_link {
    struct loop *loop;
    struct redis_url url;
    char where[REDIS_URL_HOST_MAX + 48];   /* the URL without credentials */
    struct redis_link_options opt;
    struct redis_link_callbacks cb;
    void *ctx;

    redisAsyncContext *ac;              /* NULL while no connection exists */
    struct loop_io io;
    int registered;                     /* io is in the loop */
    uint32_t want;                      /* events hiredis asked for */
    int paused;                         /* the owner paused reading */
    int closing;                        /* ac is being freed: never free it again */

    enum link_state state;
    int reported;                       /* state last told: -1 none yet, 0 down, 1 up */
    int ever_up;
    unsigned failures;                  /* in a row, for the backoff */
    uint64_t rng;
    struct loop_timer timer;            /* IDLE: reconnect; CONNECTING: connect deadline; UP: reply deadline */
    struct loop_timer ping_timer;

    struct pending *head, *tail;        /* commands in flight, oldest first */
    uint64_t owner_waiting;             /* owner's commands among them */
    int ping_out;                       /* a heartbeat is unanswered */
    uint64_t ping_sent_ms, ping_sent_us;
    uint64_t sub_sent, sub_done;        /* pub/sub commands sent and confirmed */
    uint64_t ping_mark;                 /* sub_sent when the heartbeat left */

    int depth;                          /* loop callbacks of this link running */
    int free_requested;
    struct redis_link_stats st;
    char reason[512];
};

static void on_reply(redisAsyncContext *ac, void *r, void *privdata);
static void on_pubsub(redisAsyncContext *ac, void *r, void *privdata);

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* xorshift64*: jitter only, not cryptography. */
static uint64_t rand_next(struct redis_link *l)
{
    l->rng ^= l->rng >> 12;
    l->rng ^= l->rng << 25;
    l->rng ^= l->rng >> 27;
    return l->rng * 2685821657736338717ull;
}

/* The next reconnect delay: min doubled per failure in a row, capped at max,
 * then a random point in its upper half, so nodes do not reconnect in step. */
static uint64_t next_backoff(struct redis_link *l)
{
    uint64_t d = l->opt.backoff_min_ms;
    for (unsigned i = 0; i < l->failures && d < l->opt.backoff_max_ms; i++)
        d *= 2;
    if (d > l->opt.backoff_max_ms)
        d = l->opt.backoff_max_ms;
    if (l->failures < 64)
        l->failures++;
    return d / 2 + rand_next(l) % (d / 2 + 1);
}

static uint64_t in_flight(const struct redis_link *l)
{
    return l->opt.pubsub ? l->sub_sent - l->sub_done : l->owner_waiting;
}

/* ---- commands in flight ---- */

static void list_append(struct redis_link *l, struct pending *p)
{
    p->next = NULL;
    p->prev = l->tail;
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
}

static void list_unlink(struct redis_link *l, struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        l->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        l->tail = p->prev;
    p->prev = p->next = NULL;
}

static struct pending *pending_new(struct redis_link *l, enum pending_kind kind)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (p) {
        p->link = l;
        p->kind = kind;
    }
    return p;
}

static void pending_free(struct pending *p)
{
    if (p->cmd)
        redisFreeCommand(p->cmd);
    free(p);
}

/* Gives the owner its reply (or NULL), once. */
static void answer(struct redis_link *l, struct pending *p, redisReply *reply)
{
    if (!p->waiting)
        return;
    p->waiting = 0;
    l->owner_waiting--;
    if (reply)
        l->st.replies++;
    else
        l->st.failed++;
    if (p->fn)
        p->fn(l, reply, p->privdata);
}

/* Answers every owner's command in flight with NULL; hiredis still holds
 * the records and frees them through on_reply. */
static void fail_pending(struct redis_link *l)
{
    for (struct pending *p = l->head; p; p = p->next)
        answer(l, p, NULL);
}

/* ---- timers and state ---- */

/* Finds the oldest unanswered request's send time; returns 0 if there is none. */
static int oldest_sent(const struct redis_link *l, uint64_t *ms)
{
    int found = 0;
    if (l->head) {
        *ms = l->head->sent_ms;
        found = 1;
    }
    if (l->opt.pubsub && l->ping_out && (!found || l->ping_sent_ms < *ms)) {
        *ms = l->ping_sent_ms;
        found = 1;
    }
    return found;
}

/* Arms the reply deadline for the oldest request, unless it is armed. */
static void arm_deadline(struct redis_link *l)
{
    uint64_t oldest;
    if (l->state != LINK_UP || l->timer.index || !oldest_sent(l, &oldest))
        return;
    uint64_t due = oldest + l->opt.reply_timeout_ms, now = loop_now(l->loop);
    loop_timer_after(l->loop, &l->timer, due > now ? due - now : 0);
}

static void track(struct redis_link *l, struct pending *p)
{
    p->sent_ms = loop_now(l->loop);
    list_append(l, p);
    arm_deadline(l);
}

static void report(struct redis_link *l, int up, const char *reason)
{
    if (l->reported == up)
        return;
    l->reported = up;
    if (l->cb.state && !l->free_requested)
        l->cb.state(l, up, reason, l->ctx);
}

/* The link is down (the context may live on until hiredis is done with it):
 * schedule the reconnect, tell the owner, then fail what is in flight. */
__attribute__((format(printf, 2, 3)))
static void went_down(struct redis_link *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->reason, sizeof l->reason, fmt, ap);
    va_end(ap);
    l->state = LINK_IDLE;
    l->st.connected = 0;
    l->ping_out = 0;
    l->sub_sent = l->sub_done = 0;
    loop_timer_cancel(l->loop, &l->ping_timer);
    loop_timer_after(l->loop, &l->timer, next_backoff(l));
    report(l, 0, l->reason);
    fail_pending(l);
}

/* Frees the context unless that is under way (hiredis defers it when called
 * from one of its callbacks; the NULL replies and ev_cleanup follow). */
static void close_context(struct redis_link *l)
{
    if (!l->ac || l->closing)
        return;
    l->closing = 1;
    redisAsyncFree(l->ac);
}

#define drop(l, ...) do { went_down((l), __VA_ARGS__); close_context(l); } while (0)

/* hiredis is tearing the context down by itself (an I/O error, EOF). */
static void context_closing(struct redis_link *l)
{
    l->closing = 1;
    if (l->state == LINK_IDLE)
        return;
    const char *why = l->ac && l->ac->c.err ? l->ac->c.errstr : "connection closed";
    if (l->state == LINK_CONNECTING)
        went_down(l, "cannot connect to %s: %s", l->where, why);
    else
        went_down(l, "lost the connection to %s: %s", l->where, why);
}

static void rtt_sample(struct redis_link *l)
{
    uint64_t rtt = now_us() - l->ping_sent_us;
    l->st.rtt_last_us = rtt;
    l->st.rtt_smoothed_us = l->st.rtt_smoothed_us ? (7 * l->st.rtt_smoothed_us + rtt) / 8 : rtt;
}

static void became_up(struct redis_link *l)
{
    l->state = LINK_UP;
    l->failures = 0;
    l->st.connected = 1;
    if (l->ever_up)
        l->st.reconnects++;
    l->ever_up = 1;
    rtt_sample(l);
    loop_timer_cancel(l->loop, &l->timer);
    loop_timer_after(l->loop, &l->ping_timer, l->opt.ping_interval_ms);
    report(l, 1, "connected");
    arm_deadline(l);
}

/* ---- the hiredis event hooks ---- */

static void apply_mask(struct redis_link *l)
{
    if (l->registered)
        loop_io_set(l->loop, &l->io, l->want & ~(l->paused ? LOOP_READ : 0u));
}

static void set_want(void *data, uint32_t bit, int on)
{
    struct redis_link *l = data;
    l->want = on ? l->want | bit : l->want & ~bit;
    apply_mask(l);
}

static void ev_add_read(void *data) { set_want(data, LOOP_READ, 1); }
static void ev_del_read(void *data) { set_want(data, LOOP_READ, 0); }
static void ev_add_write(void *data) { set_want(data, LOOP_WRITE, 1); }
static void ev_del_write(void *data) { set_want(data, LOOP_WRITE, 0); }

/* The context is going away (its descriptor is closed right after). */
static void ev_cleanup(void *data)
{
    struct redis_link *l = data;
    if (l->registered)
        loop_io_del(l->loop, &l->io);
    l->registered = 0;
    context_closing(l);
    l->ac = NULL;
    l->closing = 0;
    l->want = 0;
}

static void enter(struct redis_link *l)
{
    l->depth++;
}

static void destroy(struct redis_link *l);

/* Leaves a loop callback; the link is freed here if the owner asked. */
static void leave(struct redis_link *l)
{
    if (--l->depth == 0 && l->free_requested)
        destroy(l);
}

static void on_io(struct loop *loop, struct loop_io *io, uint32_t events)
{
    struct redis_link *l = container_of(io, struct redis_link, io);
    (void)loop;
    enter(l);
    if (l->ac && events & (LOOP_WRITE | LOOP_ERROR))
        redisAsyncHandleWrite(l->ac);
    if (l->ac && !l->closing && (events & LOOP_ERROR || (events & LOOP_READ && !l->paused)))
        redisAsyncHandleRead(l->ac);
    leave(l);
}

static int attach(struct redis_link *l, redisAsyncContext *ac)
{
    l->ac = ac;
    ac->ev.data = l;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    fcntl(ac->c.fd, F_SETFD, FD_CLOEXEC);
    l->io.fd = ac->c.fd;
    l->io.cb = on_io;
    l->want = 0;
    if (loop_io_add(l->loop, &l->io, 0) < 0)
        return -1;
    l->registered = 1;
    return 0;
}

/* ---- sending ---- */

static int send_internal(struct redis_link *l, enum pending_kind kind, int argc, const char **argv,
                         const size_t *lens)
{
    struct pending *p = pending_new(l, kind);
    if (!p)
        return -1;
    if (redisAsyncCommandArgv(l->ac, on_reply, p, argc, argv, lens) != REDIS_OK) {
        free(p);
        return -1;
    }
    track(l, p);
    return 0;
}

/* SUBSCRIBE to the private channel: the pub/sub handshake and heartbeat. */
static int send_heartbeat_subscribe(struct redis_link *l)
{
    const char *argv[2] = {"SUBSCRIBE", HEARTBEAT_CHANNEL};
    size_t lens[2] = {9, sizeof HEARTBEAT_CHANNEL - 1};
    return redisAsyncCommandArgv(l->ac, on_pubsub, l, 2, argv, lens) == REDIS_OK ? 0 : -1;
}

static int send_ping(struct redis_link *l, enum pending_kind kind)
{
    const char *argv[1] = {"PING"};
    size_t lens[1] = {4};
    return l->opt.pubsub ? send_heartbeat_subscribe(l) : send_internal(l, kind, 1, argv, lens);
}

/* AUTH USER PASSWORD, or AUTH PASSWORD when there is no user. */
static int send_auth(struct redis_link *l)
{
    const struct redis_url *u = &l->url;
    const char *argv[3] = {"AUTH", u->user, u->password};
    size_t lens[3] = {4, strlen(u->user), strlen(u->password)};
    int argc = 3;
    if (!u->user[0]) {
        argv[1] = argv[2];
        lens[1] = lens[2];
        argc = 2;
    }
    return send_internal(l, PENDING_AUTH, argc, argv, lens);
}

static int send_select(struct redis_link *l)
{
    char db[16];
    const char *argv[2] = {"SELECT", db};
    size_t lens[2] = {6, (size_t)snprintf(db, sizeof db, "%d", l->url.db)};
    return send_internal(l, PENDING_SELECT, 2, argv, lens);
}

/* AUTH, SELECT and a PING (or the heartbeat SUBSCRIBE), pipelined. */
static int send_handshake(struct redis_link *l)
{
    if (l->url.password[0] && send_auth(l) < 0)
        return -1;
    if (l->url.db && send_select(l) < 0)
        return -1;
    l->ping_sent_us = now_us();
    return send_ping(l, PENDING_READY);
}

static void start_connect(struct redis_link *l)
{
    const struct redis_url *u = &l->url;
    redisAsyncContext *ac = u->unix_socket ? redisAsyncConnectUnix(u->path)
                                           : redisAsyncConnect(u->host, u->port);
    if (!ac || ac->err) {
        char why[160];
        snprintf(why, sizeof why, "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        went_down(l, "cannot connect to %s: %s", l->where, why);
        return;
    }
    if (attach(l, ac) < 0) {
        close_context(l);
        went_down(l, "cannot connect to %s: cannot watch its socket", l->where);
        return;
    }
    l->state = LINK_CONNECTING;
    loop_timer_after(l->loop, &l->timer, l->opt.connect_timeout_ms);
    if (send_handshake(l) < 0)
        drop(l, "cannot connect to %s: out of memory", l->where);
}

/* ---- replies ---- */

/* The link's own commands: the handshake, the heartbeat, SCRIPT LOAD. */
static void internal_reply(struct redis_link *l, struct pending *p, const redisReply *r)
{
    const char *err = r->type == REDIS_REPLY_ERROR ? r->str : NULL;
    switch (p->kind) {
    case PENDING_AUTH:
        if (err)
            drop(l, "%s refused AUTH: %s", l->where, err);
        break;
    case PENDING_SELECT:
        if (err)
            drop(l, "%s refused SELECT %d: %s", l->where, l->url.db, err);
        break;
    case PENDING_READY:
        if (err)
            drop(l, "%s is not ready: %s", l->where, err);
        else
            became_up(l);
        break;
    case PENDING_PING:
        l->ping_out = 0;
        if (err)
            drop(l, "%s answered PING with: %s", l->where, err);
        else
            rtt_sample(l);
        break;
    case PENDING_LOAD:
    case PENDING_OWNER:
        break;
    }
}

/* EVALSHA answered NOSCRIPT: load the script and send the call once more.
 * Returns 1 when it did (p is in flight again), 0 to answer the owner. */
static int retry_noscript(struct redis_link *l, struct pending *p, const redisReply *r)
{
    if (!p->script || p->retried || l->state != LINK_UP || r->type != REDIS_REPLY_ERROR ||
        strncmp(r->str, "NOSCRIPT", 8) != 0)
        return 0;
    const char *argv[3] = {"SCRIPT", "LOAD", p->script->lua};
    size_t lens[3] = {6, 4, p->script->len};
    if (send_internal(l, PENDING_LOAD, 3, argv, lens) < 0 ||
        redisAsyncFormattedCommand(l->ac, on_reply, p, p->cmd, p->cmdlen) != REDIS_OK)
        return 0;
    p->retried = 1;
    l->st.script_reloads++;
    track(l, p);
    return 1;
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct pending *p = privdata;
    struct redis_link *l = p->link;
    redisReply *reply = r;
    (void)ac;
    list_unlink(l, p);
    if (!reply)
        context_closing(l);
    if (p->kind == PENDING_OWNER) {
        if (reply && retry_noscript(l, p, reply))
            return;
        answer(l, p, reply);
    } else if (reply && l->state != LINK_IDLE) {
        internal_reply(l, p, reply);
    }
    pending_free(p);
}

static void deliver(struct redis_link *l, const struct redis_link_message *m)
{
    if (l->cb.message && !l->free_requested)
        l->cb.message(l, m, l->ctx);
}

static int is_string(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING && r->str;
}

static int is_heartbeat_channel(const char *s, size_t n)
{
    return n == sizeof HEARTBEAT_CHANNEL - 1 && memcmp(s, HEARTBEAT_CHANNEL, n) == 0;
}

/* ["message", channel, payload] or ["pmessage", pattern, channel, payload]. */
static void message_reply(struct redis_link *l, const redisReply *r, int pattern)
{
    redisReply *const *e = r->element + pattern;
    if (r->elements < 3u + (size_t)pattern || !is_string(e[1]) || !is_string(e[2]) ||
        is_heartbeat_channel(e[1]->str, e[1]->len))
        return;
    struct redis_link_message m = {
        .event = REDIS_LINK_MESSAGE,
        .channel = e[1]->str, .channel_len = e[1]->len,
        .pattern = pattern ? r->element[1]->str : NULL,
        .pattern_len = pattern ? r->element[1]->len : 0,
        .payload = e[2]->str, .payload_len = e[2]->len,
    };
    l->st.messages++;
    deliver(l, &m);
}

/* The heartbeat channel's confirmation: the handshake's end, or a heartbeat's
 * answer (everything sent before it has been answered by now). */
static void heartbeat_answered(struct redis_link *l)
{
    if (l->state == LINK_CONNECTING) {
        became_up(l);
        return;
    }
    if (!l->ping_out)
        return;
    l->ping_out = 0;
    rtt_sample(l);
    if (l->sub_done < l->ping_mark)
        l->sub_done = l->ping_mark;
}

/* [(p)(un)subscribe, name, count]. */
static void confirmation_reply(struct redis_link *l, const redisReply *r)
{
    const char *kind = r->element[0]->str;
    int is_pattern = kind[0] == 'p' || kind[0] == 'P';
    int sub = strcasecmp(kind + is_pattern, "subscribe") == 0;
    const redisReply *name = r->element[1], *count = r->element[2];
    if ((!sub && strcasecmp(kind + is_pattern, "unsubscribe") != 0) || !is_string(name) ||
        count->type != REDIS_REPLY_INTEGER)
        return;
    if (!is_pattern && sub && is_heartbeat_channel(name->str, name->len)) {
        heartbeat_answered(l);
        return;
    }
    if (l->sub_done < l->sub_sent)
        l->sub_done++;
    struct redis_link_message m = {
        .event = sub ? REDIS_LINK_SUBSCRIBED : REDIS_LINK_UNSUBSCRIBED,
        .channel = name->str, .channel_len = name->len,
        .is_pattern = is_pattern,
        .count = count->integer > 0 ? count->integer - 1 : 0,   /* less the heartbeat channel */
    };
    deliver(l, &m);
}

static void on_pubsub(redisAsyncContext *ac, void *r, void *privdata)
{
    struct redis_link *l = privdata;
    const redisReply *reply = r;
    (void)ac;
    if (!reply) {
        context_closing(l);
        return;
    }
    if (l->state == LINK_IDLE || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        !is_string(reply->element[0]))
        return;
    const char *kind = reply->element[0]->str;
    if (strcasecmp(kind, "message") == 0)
        message_reply(l, reply, 0);
    else if (strcasecmp(kind, "pmessage") == 0)
        message_reply(l, reply, 1);
    else
        confirmation_reply(l, reply);
}

/* ---- timers ---- */

/* UP: the oldest request is late, or the deadline moves to the next one. */
static void check_deadline(struct redis_link *l)
{
    uint64_t oldest;
    if (!oldest_sent(l, &oldest))
        return;
    if (oldest + l->opt.reply_timeout_ms <= loop_now(l->loop))
        drop(l, "no reply from %s within %u ms", l->where, l->opt.reply_timeout_ms);
    else
        arm_deadline(l);
}

static void on_timer(struct loop *loop, struct loop_timer *t)
{
    struct redis_link *l = container_of(t, struct redis_link, timer);
    (void)loop;
    enter(l);
    if (l->state == LINK_IDLE)
        start_connect(l);
    else if (l->state == LINK_CONNECTING)
        drop(l, "cannot connect to %s: no answer within %u ms", l->where, l->opt.connect_timeout_ms);
    else
        check_deadline(l);
    leave(l);
}

static void on_ping_timer(struct loop *loop, struct loop_timer *t)
{
    struct redis_link *l = container_of(t, struct redis_link, ping_timer);
    (void)loop;
    enter(l);
    if (l->state == LINK_UP && !l->ping_out && send_ping(l, PENDING_PING) == 0) {
        l->ping_out = 1;
        l->ping_sent_ms = loop_now(l->loop);
        l->ping_sent_us = now_us();
        l->ping_mark = l->sub_sent;
        arm_deadline(l);
    }
    if (l->state == LINK_UP)
        loop_timer_after(l->loop, &l->ping_timer, l->opt.ping_interval_ms);
    leave(l);
}

/* ---- the public face ---- */

static void set_defaults(struct redis_link_options *o)
{
    o->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 2000;
    o->reply_timeout_ms = o->reply_timeout_ms ? o->reply_timeout_ms : 2000;
    o->ping_interval_ms = o->ping_interval_ms ? o->ping_interval_ms : 1000;
    o->backoff_min_ms = o->backoff_min_ms ? o->backoff_min_ms : 100;
    o->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 5000;
    if (o->backoff_max_ms < o->backoff_min_ms)
        o->backoff_max_ms = o->backoff_min_ms;
    o->max_in_flight = o->max_in_flight ? o->max_in_flight : 10000;
}

struct redis_link *redis_link_new(struct loop *loop, const struct redis_url *url,
                                  const struct redis_link_options *opt,
                                  const struct redis_link_callbacks *cb, void *ctx)
{
    struct redis_link *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->loop = loop;
    l->url = *url;
    redis_url_describe(url, l->where, sizeof l->where);
    if (opt)
        l->opt = *opt;
    set_defaults(&l->opt);
    if (cb)
        l->cb = *cb;
    l->ctx = ctx;
    l->reported = -1;
    l->rng = (now_us() ^ (uint64_t)(uintptr_t)l) | 1u;
    l->timer.cb = on_timer;
    l->ping_timer.cb = on_ping_timer;
    loop_timer_after(loop, &l->timer, 0);
    return l;
}

static void destroy(struct redis_link *l)
{
    loop_timer_cancel(l->loop, &l->timer);
    loop_timer_cancel(l->loop, &l->ping_timer);
    close_context(l);
    while (l->head) {
        struct pending *p = l->head;
        list_unlink(l, p);
        pending_free(p);
    }
    free(l);
}

void redis_link_free(struct redis_link *l)
{
    if (!l || l->free_requested)
        return;
    l->free_requested = 1;
    l->state = LINK_IDLE;
    l->st.connected = 0;
    loop_timer_cancel(l->loop, &l->timer);
    loop_timer_cancel(l->loop, &l->ping_timer);
    fail_pending(l);
    if (l->depth)
        close_context(l);
    else
        destroy(l);
}

/* Counts a refusal unless the link can take one more command. */
static int accepting(struct redis_link *l)
{
    if (l->state == LINK_UP && !l->free_requested && in_flight(l) < l->opt.max_in_flight)
        return 1;
    l->st.dropped++;
    return 0;
}

/* Commands that would change what the connection's replies mean. */
static int changes_mode(const char *cmd, size_t len)
{
    static const char *const names[] = {"subscribe", "psubscribe", "ssubscribe", "unsubscribe",
                                        "punsubscribe", "sunsubscribe", "monitor", "hello",
                                        "reset", "quit"};
    const char *dollar = memchr(cmd, '$', len);
    const char *nl = dollar ? memchr(dollar, '\n', len - (size_t)(dollar - cmd)) : NULL;
    if (!nl)
        return 1;   /* no command name at all */
    size_t n = strtoul(dollar + 1, NULL, 10);
    const char *name = nl + 1;
    if (n > len - (size_t)(name - cmd))
        return 1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && strncasecmp(name, names[i], n) == 0)
            return 1;
    return 0;
}

/* Sends an owner's command formatted by hiredis (len < 0: formatting
 * failed). cmd is kept for a script's retry, else freed. */
static int send_owner(struct redis_link *l, redis_reply_fn fn, void *privdata, char *cmd, int len,
                      const struct redis_script *script)
{
    if (len < 0)
        return -1;
    struct pending *p = changes_mode(cmd, (size_t)len) ? NULL : pending_new(l, PENDING_OWNER);
    if (!p || redisAsyncFormattedCommand(l->ac, on_reply, p, cmd, (size_t)len) != REDIS_OK) {
        free(p);
        redisFreeCommand(cmd);
        l->st.dropped++;
        return -1;
    }
    p->waiting = 1;
    p->fn = fn;
    p->privdata = privdata;
    if (script) {
        p->script = script;
        p->cmd = cmd;
        p->cmdlen = (size_t)len;
    } else {
        redisFreeCommand(cmd);
    }
    track(l, p);
    l->owner_waiting++;
    l->st.commands++;
    return 0;
}

int redis_link_command(struct redis_link *l, redis_reply_fn fn, void *privdata, const char *fmt, ...)
{
    if (l->opt.pubsub || !accepting(l))
        return -1;
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    return send_owner(l, fn, privdata, cmd, len, NULL);
}

int redis_link_command_argv(struct redis_link *l, redis_reply_fn fn, void *privdata,
                            int argc, const char **argv, const size_t *argvlen)
{
    if (l->opt.pubsub || argc < 1 || !accepting(l))
        return -1;
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    return send_owner(l, fn, privdata, cmd, len, NULL);
}

void redis_script_init(struct redis_script *s, const char *lua)
{
    unsigned char digest[SHA_DIGEST_LENGTH];
    s->lua = lua;
    s->len = strlen(lua);
    SHA1((const unsigned char *)lua, s->len, digest);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(s->sha1 + 2 * i, 3, "%02x", digest[i]);
}

int redis_link_script_load(struct redis_link *l, const struct redis_script *s,
                           redis_reply_fn fn, void *privdata)
{
    const char *argv[3] = {"SCRIPT", "LOAD", s->lua};
    size_t lens[3] = {6, 4, s->len};
    return redis_link_command_argv(l, fn, privdata, 3, argv, lens);
}

int redis_link_evalsha(struct redis_link *l, const struct redis_script *s, redis_reply_fn fn,
                       void *privdata, int nkeys, int argc, const char **argv,
                       const size_t *argvlen)
{
    if (l->opt.pubsub || argc < 0 || nkeys < 0 || nkeys > argc || !accepting(l))
        return -1;
    size_t total = (size_t)argc + 3;
    const char **av = malloc(total * (sizeof(*av) + sizeof(size_t)));
    if (!av)
        return -1;
    size_t *al = (size_t *)(av + total);
    char nk[16];
    const char *head[3] = {"EVALSHA", s->sha1, nk};
    size_t head_len[3] = {7, 40, (size_t)snprintf(nk, sizeof nk, "%d", nkeys)};
    memcpy(av, head, sizeof head);
    memcpy(al, head_len, sizeof head_len);
    if (argc) {
        memcpy(av + 3, argv, (size_t)argc * sizeof(*av));
        memcpy(al + 3, argvlen, (size_t)argc * sizeof(*al));
    }
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, (int)total, av, al);
    free(av);
    return send_owner(l, fn, privdata, cmd, len, s);
}

static int pubsub_command(struct redis_link *l, const char *verb, const char *name, size_t len)
{
    if (!l->opt.pubsub || is_heartbeat_channel(name, len) || !accepting(l))
        return -1;
    const char *argv[2] = {verb, name};
    size_t lens[2] = {strlen(verb), len};
    if (redisAsyncCommandArgv(l->ac, on_pubsub, l, 2, argv, lens) != REDIS_OK) {
        l->st.dropped++;
        return -1;
    }
    l->sub_sent++;
    l->st.commands++;
    return 0;
}

int redis_link_subscribe(struct redis_link *l, const char *channel, size_t len)
{
    return pubsub_command(l, "SUBSCRIBE", channel, len);
}

int redis_link_unsubscribe(struct redis_link *l, const char *channel, size_t len)
{
    return pubsub_command(l, "UNSUBSCRIBE", channel, len);
}

int redis_link_psubscribe(struct redis_link *l, const char *pattern, size_t len)
{
    return pubsub_command(l, "PSUBSCRIBE", pattern, len);
}

int redis_link_punsubscribe(struct redis_link *l, const char *pattern, size_t len)
{
    return pubsub_command(l, "PUNSUBSCRIBE", pattern, len);
}

void redis_link_pause_reading(struct redis_link *l, int paused)
{
    l->paused = paused != 0;
    apply_mask(l);
}

int redis_link_is_up(const struct redis_link *l)
{
    return l->state == LINK_UP;
}

const char *redis_link_reason(const struct redis_link *l)
{
    return l->reason;
}

void redis_link_get_stats(const struct redis_link *l, struct redis_link_stats *out)
{
    *out = l->st;
    out->in_flight = in_flight(l);
}
