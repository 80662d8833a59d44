/* broker_redis: rooms in the cluster's order through Redis. Keys of room R
 * (prefix P): P:{R}:seq (the last message number), P:{R}:epoch (changes when
 * the numbering starts again), P:{R}:stream (messages, entry id SEQ-0),
 * P:{R}:members (the roster: nick -> NODE US ID US NICK-ON-ITS-NODE US USER,
 * US being byte 31), P:{R}:sfx (nick suffix counters), P:{R}:pseq (numbers roster
 * changes), and the channel P:ch:R. Per node N: P:node:N (R US NICK of each
 * of its members) and the zset P:nodes (N -> last heartbeat, Redis's clock).
 * The room registry P:rooms: a zset of room names, every score 0, holding
 * every room with members or a seq (and rooms gone since, until the list
 * script next passes them and removes them).
 * A publication travels as KIND SEQ ':' EPOCH ':' DATA: KIND M (a message,
 * SEQ its number) or B (binary), or J, N, L (join, rename, leave: SEQ is
 * the roster change's number, DATA NODE US ID US NICK US OLD US WHY US USER
 * US FLAGS US BY US BY-USER, FLAGS "k" for a kick, BY the kicker). The
 * scripts are in broker_redis_lua.c. A room this node follows is
 * SUBSCRIBING (waiting for its subscription), SYNCING (reading its state,
 * stream and roster) or READY; what arrives while it is not ready is held,
 * bounded, and replayed in order. A heartbeat timer keeps this node alive in
 * P:nodes and expires silent ones. Owns its links and room table; never
 * touches clients, never blocks. */
#include "broker_redis.h"

#include <hiredis/hiredis.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_redis_lua.h"
#include "log.h"
#include "loop.h"
#include "redis_link.h"

#define ROOM_MAX 64
#define NICK_BYTES 33      /* a nick and its NUL (hub.h's HUB_NICK_MAX + 1) */
#define EPOCH_MAX 16
#define HELD_MAX 10000          /* publications held per room while it catches up */
#define SYNC_MAX 100000         /* stream entries read by one sync */
#define EXPIRE_BUDGET 1000      /* members of dead nodes removed per heartbeat */
#define LIST_GONE_MAX 256       /* gone rooms one room list removes from the registry */


enum room_state { SUBSCRIBING, SYNCING, READY };

/* A publication held while its room catches up. */
struct held {
    struct held *next;
    char kind;
    uint64_t seq;
    char epoch[EPOCH_MAX + 1];
    size_t len;
    uint8_t data[];
};

struct rroom {
    struct rroom *next;          /* hash chain */
    char name[ROOM_MAX + 1];
    uint8_t state;
    uint8_t syncing;             /* a sync is in flight */
    uint8_t resync;              /* another sync is wanted when it returns */
    uint8_t known;               /* epoch and last are the cluster's (a sync came back) */
    uint64_t last;               /* the last message delivered here */
    uint64_t plast;              /* the last roster change delivered here */
    char epoch[EPOCH_MAX + 1];
    struct held *held, **held_tail;
    size_t nheld;
};

/* A publication whose publisher waits for its number (see broker_pub). */
struct numbering {
    struct redis_broker *rb;
    broker_numbered_fn numbered;
    void *arg;
};

struct redis_broker {
    struct broker_redis_config cfg;
    char prefix[128];
    char node_id[128];
    struct broker_handler h;
    struct redis_link *cmd, *sub;
    struct redis_script publish, sync, presence, node, state, list;
    struct loop_timer heartbeat;
    int registered;              /* a heartbeat of this node reached Redis */
    struct rroom *buckets[1024];
    char epoch_base[9];          /* random per process: epochs this node creates are unique */
    uint32_t epochs_made;
    int was_down;                /* logged as lost, not yet found again */
    struct numbering plain;      /* the reply context of publications nobody waits on */
    uint64_t pubs_out, pubs_in, gaps, unrepairable, overload, resyncs, refused, expired, timed_out;
};

static uint32_t hash_room(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static struct rroom **room_slot(struct redis_broker *rb, const char *name)
{
    struct rroom **p = &rb->buckets[hash_room(name) % (sizeof(rb->buckets) / sizeof(rb->buckets[0]))];
    while (*p && strcmp((*p)->name, name) != 0)
        p = &(*p)->next;
    return p;
}

static struct rroom *room_find(struct redis_broker *rb, const char *name)
{
    return *room_slot(rb, name);
}

static void held_clear(struct rroom *r)
{
    while (r->held) {
        struct held *h = r->held;
        r->held = h->next;
        free(h);
    }
    r->held_tail = &r->held;
    r->nheld = 0;
}

/* Writes key P:{R}:what into out. */
static size_t room_key(const struct redis_broker *rb, const char *room, const char *what, char *out, size_t size)
{
    int n = snprintf(out, size, "%s:{%s}:%s", rb->prefix, room, what);
    return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

static size_t channel_of(const struct redis_broker *rb, const char *room, char *out, size_t size)
{
    int n = snprintf(out, size, "%s:ch:%s", rb->prefix, room);
    return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

/* The room registry's key, P:rooms. */
static size_t registry_key(const struct redis_broker *rb, char *out, size_t size)
{
    int n = snprintf(out, size, "%s:rooms", rb->prefix);
    return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

/* A fresh epoch for a room whose numbering starts now. */
static void new_epoch(struct redis_broker *rb, char out[EPOCH_MAX + 1])
{
    snprintf(out, EPOCH_MAX + 1, "%s%08x", rb->epoch_base, ++rb->epochs_made);
}

static void start_sync(struct redis_broker *rb, struct rroom *r);
static void send_heartbeat(struct redis_broker *rb);

/* ---- delivery ---- */

static int is_presence(char kind)
{
    return kind == 'J' || kind == 'N' || kind == 'L';
}

/* Cuts buf (NUL-terminated) at each US into at most n fields; the missing
 * ones are NULL. */
static void split_fields(char *buf, char **f, int n)
{
    f[0] = buf;
    for (int i = 1; i < n; i++) {
        f[i] = f[i - 1] ? strchr(f[i - 1], '\x1f') : NULL;
        if (f[i])
            *f[i]++ = '\0';
    }
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* Splits a roster change NODE US ID US NICK US OLD [US WHY US USER US FLAGS
 * US BY US BY-USER] (NUL-terminated in buf, cut in place) into e. Returns 0 or -1. */
static int parse_entry(const struct redis_broker *rb, char *buf, struct broker_presence *e)
{
    char *f[9];
    split_fields(buf, f, 9);
    if (!f[3])
        return -1;
    e->mine = strcmp(f[0], rb->node_id) == 0;
    e->given = 1;
    e->id = strtoull(f[1], NULL, 10);
    e->nick = f[2];
    e->old = f[3];
    e->why = nonempty(f[4]);
    e->user = nonempty(f[5]);
    e->kicked = f[6] && strchr(f[6], 'k') != NULL;
    e->kicked_by = nonempty(f[7]);
    e->kicked_by_user = nonempty(f[8]);
    return 0;
}

static void deliver(struct redis_broker *rb, struct rroom *r, char kind, uint64_t seq, const uint8_t *data,
                    size_t len, int history)
{
    if (is_presence(kind)) {
        char buf[2048];   /* node, nicks, reason and user ids, each bounded well below */
        struct broker_presence e = {.kind = kind == 'J' ? BROKER_JOIN : kind == 'N' ? BROKER_RENAME : BROKER_LEAVE};
        r->plast = seq;
        if (len >= sizeof(buf))
            return;
        memcpy(buf, data, len);
        buf[len] = '\0';
        if (parse_entry(rb, buf, &e) == 0)
            rb->h.presence(rb->h.ctx, r->name, &e);
        return;
    }
    struct broker_pub p = {.kind = kind == 'M' ? BROKER_MESSAGE : BROKER_BINARY,
                           .seq = seq, .history = history, .data = data, .len = len};
    if (kind == 'M')
        r->last = seq;
    rb->h.deliver(rb->h.ctx, r->name, &p);
}

static void hold(struct redis_broker *rb, struct rroom *r, char kind, uint64_t seq, const char *epoch,
                 const uint8_t *data, size_t len)
{
    struct held *h = r->nheld < HELD_MAX ? malloc(sizeof(*h) + len) : NULL;
    if (!h) {
        rb->overload++;
        held_clear(r);   /* the stream still has the messages: the next sync takes them from there */
        r->resync = 1;
        return;
    }
    h->next = NULL;
    h->kind = kind;
    h->seq = seq;
    snprintf(h->epoch, sizeof(h->epoch), "%s", epoch);
    h->len = len;
    memcpy(h->data, data, len);
    *r->held_tail = h;
    r->held_tail = &h->next;
    r->nheld++;
}

/* One live publication for a ready room: in order, or it starts a sync. */
static void take(struct redis_broker *rb, struct rroom *r, char kind, uint64_t seq, const char *epoch,
                 const uint8_t *data, size_t len)
{
    if (r->state != READY) {
        hold(rb, r, kind, seq, epoch, data, len);
        return;
    }
    int numbered = kind == 'M' || is_presence(kind);
    uint64_t last = kind == 'M' ? r->last : r->plast;
    if (strcmp(epoch, r->epoch) != 0 || (numbered && seq > last + 1)) {
        if (numbered && strcmp(epoch, r->epoch) == 0)
            rb->gaps++;
        hold(rb, r, kind, seq, epoch, data, len);
        start_sync(rb, r);
        return;
    }
    if (numbered && seq <= last)
        return;   /* already delivered (from the stream), or in the roster a sync gave */
    deliver(rb, r, kind, seq, data, len, 0);
}

/* Replays what was held during a sync, in arrival order. */
static void replay_held(struct redis_broker *rb, struct rroom *r)
{
    struct held *h = r->held;
    r->held = NULL;
    r->held_tail = &r->held;
    r->nheld = 0;
    while (h) {
        struct held *next = h->next;
        take(rb, r, h->kind, h->seq, h->epoch, h->data, h->len);
        free(h);
        h = next;
    }
}

/* ---- sync: the room's state and stream ---- */

static uint64_t entry_seq(const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    return strtoull(e->element[0]->str, NULL, 10);
}

/* The entry's data field, or NULL. */
static const redisReply *entry_data(const redisReply *e)
{
    const redisReply *f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY || f->elements < 2 || f->element[1]->type != REDIS_REPLY_STRING)
        return NULL;
    return f->element[1];
}

/* Hands the roster of a sync reply (HGETALL: nick, value, ...) to the handler. */
static void deliver_roster(struct redis_broker *rb, struct rroom *r, const redisReply *all, size_t total)
{
    size_t n = all->elements / 2, k = 0;
    struct broker_presence *e = calloc(n ? n : 1, sizeof(*e));
    char **bufs = calloc(n ? n : 1, sizeof(*bufs));
    for (size_t i = 0; e && bufs && i < n; i++) {
        const redisReply *nick = all->element[2 * i], *v = all->element[2 * i + 1];
        if (nick->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || nick->len > 64)
            continue;
        /* NICK, then its value NODE US ID US NICK-ON-ITS-NODE US USER */
        if (!(bufs[k] = malloc(v->len + nick->len + 2)))
            break;
        memcpy(bufs[k], nick->str, nick->len);
        bufs[k][nick->len] = '\0';
        char *f[4];
        memcpy(bufs[k] + nick->len + 1, v->str, v->len);
        bufs[k][nick->len + 1 + v->len] = '\0';
        split_fields(bufs[k] + nick->len + 1, f, 4);
        if (!f[2]) {
            free(bufs[k]);
            continue;
        }
        e[k] = (struct broker_presence){.kind = BROKER_JOIN, .mine = strcmp(f[0], rb->node_id) == 0, .given = 1,
                                        .id = strtoull(f[1], NULL, 10), .nick = bufs[k], .old = f[2],
                                        .user = nonempty(f[3])};
        k++;
    }
    if (e && bufs)
        rb->h.roster(rb->h.ctx, r->name, e, k, total);
    for (size_t i = 0; bufs && i < k; i++)
        free(bufs[i]);
    free(bufs);
    free(e);
}

/* Applies a sync reply: a new epoch (or a first sync) restarts the room and
 * loads its history; the same epoch delivers what this node missed. */
static void apply_sync(struct redis_broker *rb, struct rroom *r, const redisReply *rep)
{
    const redisReply *ents = rep->element[2];
    uint64_t seq = strtoull(rep->element[0]->str, NULL, 10);
    const char *epoch = rep->element[1]->str;
    int restart = !r->known || strcmp(epoch, r->epoch) != 0;
    if (restart) {
        if (r->known)
            rb->resyncs++;
        snprintf(r->epoch, sizeof(r->epoch), "%s", epoch);
        rb->h.restart(rb->h.ctx, r->name, r->epoch, seq);
        r->known = 1;
    }
    deliver_roster(rb, r, rep->element[4], (size_t)rep->element[5]->integer);
    r->plast = strtoull(rep->element[3]->str, NULL, 10);
    uint64_t from = restart ? 0 : r->last;
    if (!restart && ents->elements && entry_seq(ents->element[ents->elements - 1]) > from + 1 && seq > from)
        rb->unrepairable++;   /* the stream no longer holds all that was missed */
    for (size_t i = ents->elements; i-- > 0;) {   /* newest first: walk back to oldest */
        uint64_t s = entry_seq(ents->element[i]);
        const redisReply *d = s ? entry_data(ents->element[i]) : NULL;
        if (d && s > from && s <= seq)
            deliver(rb, r, 'M', s, (const uint8_t *)d->str, d->len, restart);
    }
    r->last = seq;
}

static void on_sync(struct redis_link *l, struct redisReply *rep, void *privdata)
{
    (void)l;
    struct redis_broker *rb = ((void **)privdata)[0];
    char *name = ((char **)privdata)[1];
    struct rroom *r = room_find(rb, name);
    free(name);
    free(privdata);
    if (!r)
        return;   /* closed meanwhile */
    r->syncing = 0;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 6 || rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_STRING || rep->element[2]->type != REDIS_REPLY_ARRAY ||
        rep->element[3]->type != REDIS_REPLY_STRING || rep->element[4]->type != REDIS_REPLY_ARRAY ||
        rep->element[5]->type != REDIS_REPLY_INTEGER) {
        if (rep)
            log_msg(LOG_WARN, "redis sync failed room=%s error=\"%.*s\"", r->name,
                    rep->type == REDIS_REPLY_ERROR ? (int)rep->len : 0, rep->type == REDIS_REPLY_ERROR ? rep->str : "");
        r->state = SUBSCRIBING;   /* tried again when the links are up */
        return;
    }
    apply_sync(rb, r, rep);
    r->state = READY;
    if (r->resync) {
        r->resync = 0;
        start_sync(rb, r);
        return;
    }
    rb->h.ready(rb->h.ctx, r->name);
    replay_held(rb, r);
}

static void start_sync(struct redis_broker *rb, struct rroom *r)
{
    if (r->syncing) {
        r->resync = 1;
        return;
    }
    char kseq[200], kepoch[200], kstream[200], kmembers[200], kpseq[200], count[24], ttl[24],
        epoch[EPOCH_MAX + 1], last[24];
    size_t n1 = room_key(rb, r->name, "seq", kseq, sizeof(kseq));
    size_t n2 = room_key(rb, r->name, "epoch", kepoch, sizeof(kepoch));
    size_t n3 = room_key(rb, r->name, "stream", kstream, sizeof(kstream));
    size_t n4 = room_key(rb, r->name, "members", kmembers, sizeof(kmembers));
    size_t n5 = room_key(rb, r->name, "pseq", kpseq, sizeof(kpseq));
    uint64_t want = rb->cfg.history < SYNC_MAX ? rb->cfg.history : SYNC_MAX;
    snprintf(count, sizeof(count), "%llu", (unsigned long long)want);
    snprintf(ttl, sizeof(ttl), "%u", rb->cfg.history_ttl);
    new_epoch(rb, epoch);
    snprintf(last, sizeof(last), "%llu", (unsigned long long)r->last);
    const char *known = r->known ? r->epoch : "";
    char knode[300], krooms[200], rmax[24];
    int n6 = snprintf(knode, sizeof(knode), "%s:node:%s", rb->prefix, rb->node_id);
    snprintf(rmax, sizeof(rmax), "%llu", (unsigned long long)rb->cfg.roster_max);
    const char *argv[] = {kseq, kepoch, kstream, kmembers, kpseq, knode, krooms, count, epoch, ttl, known, last, rmax,
                          r->name};
    size_t lens[] = {n1, n2, n3, n4, n5, n6 > 0 && (size_t)n6 < sizeof(knode) ? (size_t)n6 : 0,
                     registry_key(rb, krooms, sizeof(krooms)), strlen(count), strlen(epoch), strlen(ttl),
                     strlen(known), strlen(last), strlen(rmax), strlen(r->name)};
    void **priv = malloc(2 * sizeof(void *));
    char *name = strdup(r->name);
    r->state = SYNCING;
    if (!priv || !name) {
        free(priv);
        free(name);
        r->state = SUBSCRIBING;
        return;
    }
    priv[0] = rb;
    priv[1] = name;
    if (redis_link_evalsha(rb->cmd, &rb->sync, on_sync, priv, 7, 14, argv, lens) < 0) {
        free(name);
        free(priv);
        r->state = SUBSCRIBING;   /* the link is down: caught up when it is back */
        return;
    }
    r->syncing = 1;
}

/* ---- links ---- */

/* The control channel P:ctl: requests between nodes (closing members). */
static size_t control_channel(const struct redis_broker *rb, char *out, size_t size)
{
    int n = snprintf(out, size, "%s:ctl", rb->prefix);
    return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

/* Subscribes to the control channel and every room this node follows (after
 * the pub/sub link came up). */
static void subscribe_all(struct redis_broker *rb)
{
    char ctl[200];
    size_t cn = control_channel(rb, ctl, sizeof(ctl));
    if (cn)
        redis_link_subscribe(rb->sub, ctl, cn);
    for (size_t b = 0; b < sizeof(rb->buckets) / sizeof(rb->buckets[0]); b++) {
        for (struct rroom *r = rb->buckets[b]; r; r = r->next) {
            char ch[200];
            size_t n = channel_of(rb, r->name, ch, sizeof(ch));
            r->state = SUBSCRIBING;
            if (n)
                redis_link_subscribe(rb->sub, ch, n);
        }
    }
}

static int links_up(const struct redis_broker *rb)
{
    return redis_link_is_up(rb->cmd) && redis_link_is_up(rb->sub);
}

static void on_state(struct redis_link *l, int up, const char *reason, void *ctx)
{
    struct redis_broker *rb = ctx;
    if (l == rb->cmd && up) {
        /* Loaded before any EVALSHA is sent on this connection, so none meets
         * NOSCRIPT: a retried publication would land after later ones. */
        redis_link_script_load(rb->cmd, &rb->publish, NULL, NULL);
        redis_link_script_load(rb->cmd, &rb->sync, NULL, NULL);
        redis_link_script_load(rb->cmd, &rb->presence, NULL, NULL);
        redis_link_script_load(rb->cmd, &rb->node, NULL, NULL);
        redis_link_script_load(rb->cmd, &rb->state, NULL, NULL);
        redis_link_script_load(rb->cmd, &rb->list, NULL, NULL);
        send_heartbeat(rb);
    }
    if (up && links_up(rb))
        subscribe_all(rb);   /* again after any loss: every room is caught up from its stream */
    if (l == rb->sub && !up)
        for (size_t b = 0; b < sizeof(rb->buckets) / sizeof(rb->buckets[0]); b++)
            for (struct rroom *r = rb->buckets[b]; r; r = r->next)
                r->state = SUBSCRIBING;   /* not in order again until resubscribed and caught up */
    if (!up && !rb->was_down) {
        rb->was_down = 1;
        log_msg(LOG_ERROR, "redis lost node=%s reason=\"%s\"", rb->node_id, reason);
    } else if (up && rb->was_down && links_up(rb)) {
        rb->was_down = 0;
        log_msg(LOG_INFO, "redis found again node=%s", rb->node_id);
    }
}

/* Splits a publication "KSEQ:EPOCH:DATA". Returns 0 or -1. */
static int parse_pub(const char *p, size_t n, char *kind, uint64_t *seq, char epoch[EPOCH_MAX + 1],
                     const uint8_t **data, size_t *len)
{
    const char *c1 = n ? memchr(p, ':', n) : NULL;
    const char *c2 = c1 ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - p)) : NULL;
    if (!c2 || (p[0] != 'M' && p[0] != 'B' && !is_presence(p[0])) || c2 - c1 - 1 > EPOCH_MAX)
        return -1;
    *kind = p[0];
    *seq = strtoull(p + 1, NULL, 10);
    memcpy(epoch, c1 + 1, (size_t)(c2 - c1 - 1));
    epoch[c2 - c1 - 1] = '\0';
    *data = (const uint8_t *)c2 + 1;
    *len = n - (size_t)(c2 + 1 - p);
    return 0;
}

/* A request on P:ctl: NODE US USER US ROOM US NICK US REASON US BY US
 * BY-USER, from another node (this node's own are skipped). */
static void on_control(struct redis_broker *rb, const struct redis_link_message *m)
{
    char buf[1024], *f[7];
    if (m->event != REDIS_LINK_MESSAGE || m->payload_len >= sizeof(buf))
        return;
    memcpy(buf, m->payload, m->payload_len);
    buf[m->payload_len] = '\0';
    split_fields(buf, f, 7);
    if (!f[6] || strcmp(f[0], rb->node_id) == 0)
        return;
    struct broker_kick k = {.user = nonempty(f[1]), .room = nonempty(f[2]), .nick = nonempty(f[3]),
                            .reason = f[4], .by = nonempty(f[5]), .by_user = nonempty(f[6])};
    if (k.user || (k.room && k.nick))
        rb->h.kick(rb->h.ctx, &k);
}

static void on_message(struct redis_link *l, const struct redis_link_message *m, void *ctx)
{
    (void)l;
    struct redis_broker *rb = ctx;
    char ctl[200];
    size_t cn = control_channel(rb, ctl, sizeof(ctl));
    if (cn && m->channel_len == cn && memcmp(m->channel, ctl, cn) == 0) {
        on_control(rb, m);
        return;
    }
    size_t plen = strlen(rb->prefix) + 4;   /* "P:ch:" */
    if (m->channel_len <= plen || m->channel_len - plen > ROOM_MAX)
        return;
    char name[ROOM_MAX + 1];
    memcpy(name, m->channel + plen, m->channel_len - plen);
    name[m->channel_len - plen] = '\0';
    struct rroom *r = room_find(rb, name);
    if (!r)
        return;
    if (m->event == REDIS_LINK_SUBSCRIBED) {
        start_sync(rb, r);
        return;
    }
    if (m->event != REDIS_LINK_MESSAGE)
        return;
    char kind, epoch[EPOCH_MAX + 1];
    uint64_t seq;
    const uint8_t *data;
    size_t len;
    if (parse_pub(m->payload, m->payload_len, &kind, &seq, epoch, &data, &len) < 0)
        return;
    rb->pubs_in++;
    take(rb, r, kind, seq, epoch, data, len);
}

/* ---- broker_ops ---- */

/* The publish script's reply {seq, epoch}: tells a waiting publisher. */
static void on_published(struct redis_link *l, struct redisReply *rep, void *privdata)
{
    (void)l;
    struct numbering *w = privdata;
    struct redis_broker *rb = w->rb;
    if (rep && rep->type == REDIS_REPLY_ERROR)
        log_msg(LOG_WARN, "redis publish failed error=\"%.*s\"", (int)rep->len, rep->str);
    else if (!rep)
        rb->refused++;
    if (w->numbered) {
        int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
                 rep->element[0]->type == REDIS_REPLY_INTEGER && rep->element[1]->type == REDIS_REPLY_STRING;
        if (ok)
            w->numbered(w->arg, 0, (uint64_t)rep->element[0]->integer, rep->element[1]->str);
        else
            w->numbered(w->arg, 503, 0, NULL);
    }
    if (w != &rb->plain)
        free(w);
}

static int redis_publish(void *impl, const char *room, const struct broker_pub *p)
{
    struct redis_broker *rb = impl;
    char kseq[200], kepoch[200], kstream[200], krooms[200], ch[200], maxlen[24], ttl[24], epoch[EPOCH_MAX + 1];
    const char *kind = p->kind == BROKER_MESSAGE ? "M" : "B";
    size_t n1 = room_key(rb, room, "seq", kseq, sizeof(kseq)), n2 = room_key(rb, room, "epoch", kepoch, sizeof(kepoch));
    size_t n3 = room_key(rb, room, "stream", kstream, sizeof(kstream)), n4 = channel_of(rb, room, ch, sizeof(ch));
    size_t n5 = registry_key(rb, krooms, sizeof(krooms));
    snprintf(maxlen, sizeof(maxlen), "%llu", (unsigned long long)rb->cfg.history);
    snprintf(ttl, sizeof(ttl), "%u", rb->cfg.history_ttl);
    new_epoch(rb, epoch);
    const char *argv[] = {kseq, kepoch, kstream, krooms, ch, kind, (const char *)p->data, maxlen, ttl, epoch, room};
    size_t lens[] = {n1, n2, n3, n5, n4, 1, p->len, strlen(maxlen), strlen(ttl), strlen(epoch), strlen(room)};
    struct numbering *w = &rb->plain;
    if (p->numbered && (w = malloc(sizeof(*w))))
        *w = (struct numbering){rb, p->numbered, p->numbered_arg};
    if (!w || !n1 || !n2 || !n3 || !n4 || !n5 ||
        redis_link_evalsha(rb->cmd, &rb->publish, on_published, w, 4, 11, argv, lens) < 0) {
        if (w != &rb->plain)
            free(w);
        rb->refused++;
        return -1;
    }
    rb->pubs_out++;
    return 0;
}

/* What a roster change's reply needs: a rename refused, a leave of an
 * entry no longer this node's, or a join that did not reach Redis, is
 * handed back to the handler here (nothing was published). */
struct presence_call {
    struct redis_broker *rb;
    struct broker_presence p;
    char room[ROOM_MAX + 1], nick[NICK_BYTES], old[NICK_BYTES];
};

static void on_presence(struct redis_link *l, struct redisReply *rep, void *privdata)
{
    (void)l;
    struct presence_call *pc = privdata;
    struct broker_presence *p = &pc->p;
    int failed = !rep || rep->type == REDIS_REPLY_ERROR;
    if (rep && rep->type == REDIS_REPLY_ERROR)
        log_msg(LOG_WARN, "redis roster change failed room=%s error=\"%.*s\"", pc->room, (int)rep->len, rep->str);
    int nothing = rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 0;
    if ((p->kind == BROKER_JOIN && failed) || (p->kind != BROKER_JOIN && nothing)) {
        p->refused = 1;
        pc->rb->h.presence(pc->rb->h.ctx, pc->room, p);
    }
    free(pc);
}

static int redis_presence(void *impl, const char *room, const struct broker_presence *p)
{
    struct redis_broker *rb = impl;
    struct presence_call *pc = calloc(1, sizeof(*pc));
    char keys[6][200], krooms[200], ch[200], id[24], ttl[24], epoch[EPOCH_MAX + 1], nodekey[300];
    static const char *const what[] = {"seq", "epoch", "stream", "members", "sfx", "pseq"};
    static const char *const kinds[] = {"J", "N", "L"};
    if (!pc)
        return -1;
    const char *argv[23];
    size_t lens[23];
    for (int i = 0; i < 6; i++) {
        argv[i] = keys[i];
        lens[i] = room_key(rb, room, what[i], keys[i], sizeof(keys[i]));
    }
    int nk = snprintf(nodekey, sizeof(nodekey), "%s:node:%s", rb->prefix, rb->node_id);
    snprintf(id, sizeof(id), "%llu", (unsigned long long)p->id);
    snprintf(ttl, sizeof(ttl), "%u", rb->cfg.history_ttl);
    new_epoch(rb, epoch);
    const char *old = p->old ? p->old : "";
    const char *why = p->why ? p->why : "";
    const char *rest[] = {nodekey, krooms, ch, kinds[p->kind], rb->node_id, id, p->nick, old, p->guest ? "1" : "0",
                          epoch, ttl, room, why, p->user ? p->user : "", p->kicked ? "k" : "",
                          p->kicked_by ? p->kicked_by : "", p->kicked_by_user ? p->kicked_by_user : ""};
    for (int i = 0; i < 17; i++) {
        argv[6 + i] = rest[i];
        lens[6 + i] = strlen(rest[i]);
    }
    lens[6] = nk > 0 && (size_t)nk < sizeof(nodekey) ? (size_t)nk : 0;
    lens[7] = registry_key(rb, krooms, sizeof(krooms));
    lens[8] = channel_of(rb, room, ch, sizeof(ch));
    pc->rb = rb;
    pc->p = *p;
    snprintf(pc->room, sizeof(pc->room), "%s", room);
    snprintf(pc->nick, sizeof(pc->nick), "%s", p->nick);
    snprintf(pc->old, sizeof(pc->old), "%s", old);
    pc->p.nick = pc->nick;
    pc->p.old = pc->old;
    pc->p.why = NULL;
    pc->p.user = pc->p.kicked_by = pc->p.kicked_by_user = NULL;   /* not kept past this call */
    pc->p.mine = 1;
    int ok = lens[6] && lens[7] && lens[8];
    for (int i = 0; i < 6; i++)
        ok = ok && lens[i];
    if (!ok || redis_link_evalsha(rb->cmd, &rb->presence, on_presence, pc, 8, 23, argv, lens) < 0) {
        free(pc);
        rb->refused++;
        return -1;
    }
    rb->pubs_out++;
    return 0;
}

/* ---- reads for the application: a room's state, the room list ---- */

/* Whom a read's reply goes to: the caller's callback and its argument. */
struct read_call {
    union {
        broker_state_fn state;
        broker_list_fn list;
    } fn;
    void *arg;
};

/* EVALSHA s for a read whose reply on_reply hands to call. Returns 0, or -1
 * when it cannot be sent now (call not made). */
static int read_eval(struct redis_broker *rb, const struct redis_script *s, redis_reply_fn on_reply,
                     struct read_call call, int nkeys, int argc, const char **argv, const size_t *lens)
{
    struct read_call *rc = malloc(sizeof(*rc));
    if (!rc)
        return -1;
    *rc = call;
    if (redis_link_evalsha(rb->cmd, s, on_reply, rc, nkeys, argc, argv, lens) < 0) {
        free(rc);
        return -1;
    }
    return 0;
}

/* Hands a STATE reply to its caller: the roster's users split out of their
 * values, the stream entries as numbered messages. */
static void state_reply(const redisReply *rep, struct read_call *sc)
{
    const redisReply *ents = rep->element[2], *all = rep->element[3], *first = rep->element[4];
    size_t nm = all->elements / 2, k = 0, j = 0;
    struct broker_presence *m = calloc(nm ? nm : 1, sizeof(*m));
    struct broker_pub *msgs = calloc(ents->elements ? ents->elements : 1, sizeof(*msgs));
    if (!m || !msgs) {
        free(m);
        free(msgs);
        sc->fn.state(sc->arg, 503, NULL);
        return;
    }
    for (size_t i = 0; i < nm; i++) {
        const redisReply *nick = all->element[2 * i], *v = all->element[2 * i + 1];
        if (nick->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        /* NODE US ID US GUESS US USER: the user is after the third US, in place */
        char *u = v->str;
        for (int f = 0; f < 3 && u; f++) {
            u = memchr(u, '\x1f', v->len - (size_t)(u - v->str));
            u = u ? u + 1 : NULL;
        }
        m[k++] = (struct broker_presence){.kind = BROKER_JOIN, .nick = nick->str, .user = u && *u ? u : NULL};
    }
    for (size_t i = 0; i < ents->elements; i++) {
        uint64_t seq = entry_seq(ents->element[i]);
        const redisReply *d = seq ? entry_data(ents->element[i]) : NULL;
        if (d)
            msgs[j++] = (struct broker_pub){.kind = BROKER_MESSAGE, .seq = seq, .history = 1,
                                            .data = (const uint8_t *)d->str, .len = d->len};
    }
    struct broker_room_state st = {.epoch = rep->element[1]->str, .seq = strtoull(rep->element[0]->str, NULL, 10),
                                   .members = m, .nmembers = k, .messages = msgs, .nmessages = j,
                                   .oldest = first->elements ? entry_seq(first->element[0]) : 0};
    sc->fn.state(sc->arg, 0, &st);
    free(m);
    free(msgs);
}

static void on_room_state(struct redis_link *l, struct redisReply *rep, void *privdata)
{
    (void)l;
    struct read_call *sc = privdata;
    if (rep && rep->type == REDIS_REPLY_INTEGER)
        sc->fn.state(sc->arg, 404, NULL);
    else if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 5 &&
             rep->element[0]->type == REDIS_REPLY_STRING && rep->element[1]->type == REDIS_REPLY_STRING &&
             rep->element[2]->type == REDIS_REPLY_ARRAY && rep->element[3]->type == REDIS_REPLY_ARRAY &&
             rep->element[4]->type == REDIS_REPLY_ARRAY)
        state_reply(rep, sc);
    else
        sc->fn.state(sc->arg, 503, NULL);
    free(sc);
}

static int redis_room_state(void *impl, const char *room, uint64_t since, size_t limit, broker_state_fn fn,
                            void *arg)
{
    struct redis_broker *rb = impl;
    char keys[4][200], from[24], count[24];
    static const char *const what[] = {"seq", "epoch", "stream", "members"};
    const char *argv[6];
    size_t lens[6];
    for (int i = 0; i < 4; i++) {
        argv[i] = keys[i];
        if (!(lens[i] = room_key(rb, room, what[i], keys[i], sizeof(keys[i]))))
            return -1;
    }
    snprintf(from, sizeof(from), "%llu", (unsigned long long)since);
    snprintf(count, sizeof(count), "%zu", limit);
    argv[4] = from;
    argv[5] = count;
    lens[4] = strlen(from);
    lens[5] = strlen(count);
    return read_eval(rb, &rb->state, on_room_state, (struct read_call){.fn.state = fn, .arg = arg}, 4, 6, argv, lens);
}

/* One room of a LIST reply (room, count, seq, epoch) into e. Returns 0 or -1. */
static int list_entry(redisReply *const *f, struct broker_room_entry *e)
{
    if (f[0]->type != REDIS_REPLY_STRING || f[1]->type != REDIS_REPLY_INTEGER || f[2]->type != REDIS_REPLY_STRING ||
        f[3]->type != REDIS_REPLY_STRING)
        return -1;
    *e = (struct broker_room_entry){.room = f[0]->str, .count = (uint64_t)f[1]->integer,
                                    .seq = strtoull(f[2]->str, NULL, 10), .epoch = f[3]->str};
    return 0;
}

/* The LIST reply {{room, count, seq, epoch, ...}, next}: hands the page to its caller. */
static void on_room_list(struct redis_link *l, struct redisReply *rep, void *privdata)
{
    (void)l;
    struct read_call *lc = privdata;
    int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
             rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements % 4 == 0 &&
             rep->element[1]->type == REDIS_REPLY_STRING;
    const redisReply *flat = ok ? rep->element[0] : NULL, *next = ok ? rep->element[1] : NULL;
    size_t n = ok ? flat->elements / 4 : 0;
    struct broker_room_entry *rooms = ok ? calloc(n ? n : 1, sizeof(*rooms)) : NULL;
    ok = rooms != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = list_entry(flat->element + 4 * i, &rooms[i]) == 0;
    if (ok) {
        struct broker_room_list page = {.rooms = rooms, .n = n, .next = nonempty(next->str)};
        lc->fn.list(lc->arg, 0, &page);
    } else {
        if (rep && rep->type == REDIS_REPLY_ERROR)
            log_msg(LOG_WARN, "redis room list failed error=\"%.*s\"", (int)rep->len, rep->str);
        lc->fn.list(lc->arg, 503, NULL);
    }
    free(rooms);
    free(lc);
}

static int redis_room_list(void *impl, const char *prefix, const char *after, size_t limit, broker_list_fn fn,
                           void *arg)
{
    struct redis_broker *rb = impl;
    char key[200], from[ROOM_MAX + 3], to[ROOM_MAX + 3], count[24], gone[24];
    size_t kn = registry_key(rb, key, sizeof(key));
    if (!kn || strlen(prefix) > ROOM_MAX || strlen(after) > ROOM_MAX)
        return -1;
    /* Names after `after` starting with prefix: from the later of the two
     * (Redis compares bytes, as strcmp does), up to prefix and byte 0xff,
     * above every byte a room name may hold (command_room_valid). */
    if (*after && strcmp(after, prefix) >= 0)
        snprintf(from, sizeof(from), "(%s", after);
    else if (*prefix)
        snprintf(from, sizeof(from), "[%s", prefix);
    else
        snprintf(from, sizeof(from), "-");
    if (*prefix)
        snprintf(to, sizeof(to), "[%s\xff", prefix);
    else
        snprintf(to, sizeof(to), "+");
    snprintf(count, sizeof(count), "%zu", limit);
    snprintf(gone, sizeof(gone), "%d", LIST_GONE_MAX);
    const char *argv[] = {key, from, to, count, gone, rb->prefix};
    size_t lens[] = {kn, strlen(from), strlen(to), strlen(count), strlen(gone), strlen(rb->prefix)};
    return read_eval(rb, &rb->list, on_room_list, (struct read_call){.fn.list = fn, .arg = arg}, 1, 6, argv, lens);
}

static int redis_kick(void *impl, const struct broker_kick *k)
{
    struct redis_broker *rb = impl;
    char ctl[200], msg[1024];
    size_t cn = control_channel(rb, ctl, sizeof(ctl));
    int n = snprintf(msg, sizeof(msg), "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", rb->node_id, k->user ? k->user : "",
                     k->room ? k->room : "", k->nick ? k->nick : "", k->reason ? k->reason : "",
                     k->by ? k->by : "", k->by_user ? k->by_user : "");
    if (!cn || n < 0 || (size_t)n >= sizeof(msg))
        return -1;
    const char *argv[] = {"PUBLISH", ctl, msg};
    size_t lens[] = {7, cn, (size_t)n};
    return redis_link_command_argv(rb->cmd, NULL, NULL, 3, argv, lens);
}

/* ---- node liveness ---- */

static void resync_all(struct redis_broker *rb)
{
    for (size_t b = 0; b < sizeof(rb->buckets) / sizeof(rb->buckets[0]); b++)
        for (struct rroom *r = rb->buckets[b]; r; r = r->next)
            if (r->state == READY)
                start_sync(rb, r);
}

static void on_heartbeat(struct redis_link *l, struct redisReply *rep, void *privdata)
{
    (void)l;
    struct redis_broker *rb = privdata;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[1]->type != REDIS_REPLY_INTEGER) {
        if (rep && rep->type == REDIS_REPLY_ERROR)
            log_msg(LOG_WARN, "redis heartbeat failed error=\"%.*s\"", (int)rep->len, rep->str);
        return;
    }
    if (rep->element[1]->integer > 0) {
        rb->expired += (uint64_t)rep->element[1]->integer;
        log_msg(LOG_WARN, "redis: members of silent nodes left their rooms count=%lld", rep->element[1]->integer);
    }
    if (rb->registered && rep->element[0]->integer == 0) {
        /* the others took this node for dead: its members left; they join again */
        rb->timed_out++;
        log_msg(LOG_ERROR, "redis: this node was taken for dead (silent over the node timeout); rejoining node=%s",
                rb->node_id);
        resync_all(rb);
    }
    rb->registered = 1;
}

static void send_heartbeat(struct redis_broker *rb)
{
    char nodes[200], timeout[24], budget[24];
    int n = snprintf(nodes, sizeof(nodes), "%s:nodes", rb->prefix);
    /* silent for three quarters of the timeout, with a check every quarter:
     * a dead node's members are gone within the timeout; a live node misses
     * three heartbeats in a row before it is taken for dead */
    snprintf(timeout, sizeof(timeout), "%llu", (unsigned long long)(rb->cfg.node_timeout_ms * 3 / 4));
    snprintf(budget, sizeof(budget), "%d", EXPIRE_BUDGET);
    const char *argv[] = {nodes, rb->node_id, timeout, rb->prefix, budget};
    size_t lens[] = {(size_t)n, strlen(rb->node_id), strlen(timeout), strlen(rb->prefix), strlen(budget)};
    if (n > 0 && (size_t)n < sizeof(nodes) && redis_link_is_up(rb->cmd))
        redis_link_evalsha(rb->cmd, &rb->node, on_heartbeat, rb, 1, 5, argv, lens);
}

static void on_heartbeat_timer(struct loop *l, struct loop_timer *t)
{
    struct redis_broker *rb = (struct redis_broker *)(void *)((char *)t - offsetof(struct redis_broker, heartbeat));
    send_heartbeat(rb);
    loop_timer_after(l, t, rb->cfg.node_timeout_ms / 4);
}

static void redis_room_open(void *impl, const char *room)
{
    struct redis_broker *rb = impl;
    struct rroom **slot = room_slot(rb, room);
    if (*slot)
        return;
    struct rroom *r = calloc(1, sizeof(*r));
    if (!r)
        return;   /* not followed: its joiners wait, and the log says why */
    snprintf(r->name, sizeof(r->name), "%s", room);
    r->held_tail = &r->held;
    *slot = r;
    char ch[200];
    size_t n = channel_of(rb, room, ch, sizeof(ch));
    if (n && redis_link_is_up(rb->sub))
        redis_link_subscribe(rb->sub, ch, n);
}

static void redis_room_close(void *impl, const char *room)
{
    struct redis_broker *rb = impl;
    struct rroom **slot = room_slot(rb, room);
    struct rroom *r = *slot;
    if (!r)
        return;
    *slot = r->next;
    char ch[200];
    size_t n = channel_of(rb, room, ch, sizeof(ch));
    if (n && redis_link_is_up(rb->sub))
        redis_link_unsubscribe(rb->sub, ch, n);
    held_clear(r);
    free(r);
}

static int redis_available(void *impl, const char **why)
{
    struct redis_broker *rb = impl;
    if (links_up(rb))
        return 1;
    *why = "the cluster is unavailable: this node cannot reach Redis";
    return 0;
}

static void redis_metrics(void *impl, struct metrics *m)
{
    struct redis_broker *rb = impl;
    struct redis_link_stats cs, ss;
    redis_link_get_stats(rb->cmd, &cs);
    redis_link_get_stats(rb->sub, &ss);
    metrics_value(m, "redis_connected", "wshub_redis_connected", METRICS_GAUGE, "1 while Redis is reachable.",
                  (uint64_t)links_up(rb));
    metrics_value(m, "redis_reconnects", "wshub_redis_reconnects_total", METRICS_COUNTER,
                  "Times a Redis link came up again.", cs.reconnects + ss.reconnects);
    metrics_value(m, "redis_publications_out", "wshub_redis_publications_out_total", METRICS_COUNTER,
                  "Publications sent to Redis.", rb->pubs_out);
    metrics_value(m, "redis_publications_in", "wshub_redis_publications_in_total", METRICS_COUNTER,
                  "Publications received from Redis.", rb->pubs_in);
    metrics_value(m, "redis_rtt_us", "wshub_redis_rtt_microseconds", METRICS_LEVEL,
                  "Smoothed round trip to Redis (over workers: the slowest).", cs.rtt_smoothed_us);
    metrics_value(m, "redis_gaps_repaired", "wshub_redis_gaps_repaired_total", METRICS_COUNTER,
                  "Gaps in a room's numbering filled from its stream.", rb->gaps);
    metrics_value(m, "redis_gaps_unrepairable", "wshub_redis_gaps_unrepairable_total", METRICS_COUNTER,
                  "Gaps the stream no longer held.", rb->unrepairable);
    metrics_value(m, "redis_resyncs", "wshub_redis_resyncs_total", METRICS_COUNTER,
                  "Rooms whose numbering started again (an epoch change).", rb->resyncs);
    metrics_value(m, "redis_dropped_overload", "wshub_redis_dropped_overload_total", METRICS_COUNTER,
                  "Times a room's held publications passed the bound and were dropped for a resync.",
                  rb->overload);
    metrics_value(m, "redis_members_expired", "wshub_redis_members_expired_total", METRICS_COUNTER,
                  "Members of silent nodes this node removed from their rooms.", rb->expired);
    metrics_value(m, "redis_node_timed_out", "wshub_redis_node_timed_out_total", METRICS_COUNTER,
                  "Times the other nodes took this node for dead (its members joined again).", rb->timed_out);
    metrics_value(m, "redis_refused", "wshub_redis_refused_total", METRICS_COUNTER,
                  "Publications refused or lost because Redis was unreachable.", rb->refused);
}

static void redis_free(void *impl)
{
    struct redis_broker *rb = impl;
    loop_timer_cancel(rb->cfg.loop, &rb->heartbeat);
    redis_link_free(rb->cmd);
    redis_link_free(rb->sub);
    for (size_t b = 0; b < sizeof(rb->buckets) / sizeof(rb->buckets[0]); b++) {
        while (rb->buckets[b]) {
            struct rroom *r = rb->buckets[b];
            rb->buckets[b] = r->next;
            held_clear(r);
            free(r);
        }
    }
    free(rb);
}

static const struct broker_ops redis_ops = {
    .name = "redis",
    .publish = redis_publish,
    .presence = redis_presence,
    .kick = redis_kick,
    .room_state = redis_room_state,
    .room_list = redis_room_list,
    .room_open = redis_room_open,
    .room_close = redis_room_close,
    .available = redis_available,
    .metrics = redis_metrics,
    .free = redis_free,
};

int broker_redis_init(struct broker *b, const struct broker_handler *h, const struct broker_redis_config *cfg)
{
    struct redis_broker *rb = calloc(1, sizeof(*rb));
    unsigned char rnd[4];
    if (!rb || RAND_bytes(rnd, sizeof(rnd)) != 1) {
        free(rb);
        return -1;
    }
    rb->cfg = *cfg;
    snprintf(rb->prefix, sizeof(rb->prefix), "%s", cfg->prefix);
    snprintf(rb->node_id, sizeof(rb->node_id), "%s", cfg->node_id);
    snprintf(rb->epoch_base, sizeof(rb->epoch_base), "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
    rb->h = *h;
    rb->plain.rb = rb;
    redis_script_init(&rb->publish, BROKER_REDIS_PUBLISH_LUA);
    redis_script_init(&rb->sync, BROKER_REDIS_SYNC_LUA);
    redis_script_init(&rb->presence, BROKER_REDIS_PRESENCE_LUA);
    redis_script_init(&rb->node, BROKER_REDIS_NODE_LUA);
    redis_script_init(&rb->state, BROKER_REDIS_STATE_LUA);
    redis_script_init(&rb->list, BROKER_REDIS_LIST_LUA);
    if (rb->cfg.node_timeout_ms < 1000)
        rb->cfg.node_timeout_ms = 1000;
    struct redis_link_callbacks cbs = {.state = on_state, .message = on_message};
    struct redis_link_options sub_opt = {.pubsub = 1};
    rb->cmd = redis_link_new(cfg->loop, &cfg->url, NULL, &cbs, rb);
    rb->sub = redis_link_new(cfg->loop, &cfg->url, &sub_opt, &cbs, rb);
    if (!rb->cmd || !rb->sub) {
        redis_link_free(rb->cmd);
        redis_link_free(rb->sub);
        free(rb);
        return -1;
    }
    rb->heartbeat.cb = on_heartbeat_timer;
    loop_timer_after(cfg->loop, &rb->heartbeat, rb->cfg.node_timeout_ms / 4);
    *b = (struct broker){.ops = &redis_ops, .impl = rb};
    return 0;
}
