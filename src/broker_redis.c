/* broker_redis: rooms in the cluster's order through Redis. Keys of room R
 * (prefix P): P:{R}:seq (the last message number), P:{R}:epoch (changes when
 * the numbering starts again), P:{R}:stream (messages, entry id SEQ-0), and
 * the channel P:ch:R. A publication travels as KIND SEQ ':' EPOCH ':' DATA
 * (KIND M, E or B). A room this node follows is SUBSCRIBING (waiting for its
 * subscription), SYNCING (reading its state and stream) or READY; what
 * arrives while it is not ready is held, bounded, and replayed in order.
 * Owns its links and room table; never touches clients, never blocks. */
#include "broker_redis.h"

#include <hiredis/hiredis.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "redis_link.h"

#define ROOM_MAX 64
#define EPOCH_MAX 16
#define HELD_MAX 10000          /* publications held per room while it catches up */
#define SYNC_MAX 100000         /* stream entries read by one sync */

/* Numbers a message, keeps it, publishes it; creates the epoch when missing. */
static const char PUBLISH_LUA[] =
    "local epoch = redis.call('GET', KEYS[2])\n"
    "if not epoch then\n"
    "  epoch = ARGV[6]\n"
    "  redis.call('SET', KEYS[2], epoch)\n"
    "  redis.call('DEL', KEYS[1], KEYS[3])\n"
    "end\n"
    "local seq = 0\n"
    "if ARGV[2] == 'M' then\n"
    "  seq = redis.call('INCR', KEYS[1])\n"
    "  if tonumber(ARGV[4]) > 0 then\n"
    "    redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[4], seq .. '-0', 'd', ARGV[3])\n"
    "  end\n"
    "end\n"
    "local ttl = tonumber(ARGV[5])\n"
    "if ttl > 0 then\n"
    "  redis.call('EXPIRE', KEYS[1], ttl)\n"
    "  redis.call('EXPIRE', KEYS[2], ttl)\n"
    "  redis.call('EXPIRE', KEYS[3], ttl)\n"
    "end\n"
    "redis.call('PUBLISH', ARGV[1], ARGV[2] .. seq .. ':' .. epoch .. ':' .. ARGV[3])\n"
    "return seq\n";

/* A room's state: {last seq, epoch, newest ARGV[1] stream entries (newest
 * first)}. A counter behind what this node delivered in the same epoch (a
 * Redis that lost its last writes) is moved forward, so numbers are never
 * given twice. */
static const char SYNC_LUA[] =
    "local epoch = redis.call('GET', KEYS[2])\n"
    "if not epoch then\n"
    "  epoch = ARGV[2]\n"
    "  redis.call('SET', KEYS[2], epoch)\n"
    "  redis.call('DEL', KEYS[1], KEYS[3])\n"
    "  if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end\n"
    "end\n"
    "local seq = redis.call('GET', KEYS[1]) or '0'\n"
    "if epoch == ARGV[4] and tonumber(ARGV[5]) > tonumber(seq) then\n"
    "  seq = ARGV[5]\n"
    "  redis.call('SET', KEYS[1], seq)\n"
    "end\n"
    "local entries = {}\n"
    "if tonumber(ARGV[1]) > 0 then\n"
    "  entries = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', ARGV[1])\n"
    "end\n"
    "return {seq, epoch, entries}\n";

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
    char epoch[EPOCH_MAX + 1];
    struct held *held, **held_tail;
    size_t nheld;
};

struct redis_broker {
    struct broker_redis_config cfg;
    char prefix[128];
    char node_id[128];
    struct broker_handler h;
    struct redis_link *cmd, *sub;
    struct redis_script publish, sync;
    struct rroom *buckets[1024];
    char epoch_base[9];          /* random per process: epochs this node creates are unique */
    uint32_t epochs_made;
    int was_down;                /* logged as lost, not yet found again */
    uint64_t pubs_out, pubs_in, gaps, unrepairable, overload, resyncs, refused;
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

/* A fresh epoch for a room whose numbering starts now. */
static void new_epoch(struct redis_broker *rb, char out[EPOCH_MAX + 1])
{
    snprintf(out, EPOCH_MAX + 1, "%s%08x", rb->epoch_base, ++rb->epochs_made);
}

static void start_sync(struct redis_broker *rb, struct rroom *r);

/* ---- delivery ---- */

static void deliver(struct redis_broker *rb, struct rroom *r, char kind, uint64_t seq, const uint8_t *data,
                    size_t len, int history)
{
    struct broker_pub p = {.kind = kind == 'M' ? BROKER_MESSAGE : kind == 'E' ? BROKER_EVENT : BROKER_BINARY,
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
    if (strcmp(epoch, r->epoch) != 0 || (kind == 'M' && seq > r->last + 1)) {
        if (kind == 'M' && strcmp(epoch, r->epoch) == 0)
            rb->gaps++;
        hold(rb, r, kind, seq, epoch, data, len);
        start_sync(rb, r);
        return;
    }
    if (kind == 'M' && seq <= r->last)
        return;   /* already delivered (from the stream) */
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
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 || rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_STRING || rep->element[2]->type != REDIS_REPLY_ARRAY) {
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
    char kseq[200], kepoch[200], kstream[200], count[24], ttl[24], epoch[EPOCH_MAX + 1], last[24];
    size_t n1 = room_key(rb, r->name, "seq", kseq, sizeof(kseq));
    size_t n2 = room_key(rb, r->name, "epoch", kepoch, sizeof(kepoch));
    size_t n3 = room_key(rb, r->name, "stream", kstream, sizeof(kstream));
    uint64_t want = rb->cfg.history < SYNC_MAX ? rb->cfg.history : SYNC_MAX;
    snprintf(count, sizeof(count), "%llu", (unsigned long long)want);
    snprintf(ttl, sizeof(ttl), "%u", rb->cfg.history_ttl);
    new_epoch(rb, epoch);
    snprintf(last, sizeof(last), "%llu", (unsigned long long)r->last);
    const char *known = r->known ? r->epoch : "";
    const char *argv[] = {kseq, kepoch, kstream, count, epoch, ttl, known, last};
    size_t lens[] = {n1, n2, n3, strlen(count), strlen(epoch), strlen(ttl), strlen(known), strlen(last)};
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
    if (redis_link_evalsha(rb->cmd, &rb->sync, on_sync, priv, 3, 8, argv, lens) < 0) {
        free(name);
        free(priv);
        r->state = SUBSCRIBING;   /* the link is down: caught up when it is back */
        return;
    }
    r->syncing = 1;
}

/* ---- links ---- */

/* Subscribes to every room this node follows (after the pub/sub link came up). */
static void subscribe_all(struct redis_broker *rb)
{
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
    if (!c2 || (p[0] != 'M' && p[0] != 'E' && p[0] != 'B') || c2 - c1 - 1 > EPOCH_MAX)
        return -1;
    *kind = p[0];
    *seq = strtoull(p + 1, NULL, 10);
    memcpy(epoch, c1 + 1, (size_t)(c2 - c1 - 1));
    epoch[c2 - c1 - 1] = '\0';
    *data = (const uint8_t *)c2 + 1;
    *len = n - (size_t)(c2 + 1 - p);
    return 0;
}

static void on_message(struct redis_link *l, const struct redis_link_message *m, void *ctx)
{
    (void)l;
    struct redis_broker *rb = ctx;
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

static void on_published(struct redis_link *l, struct redisReply *rep, void *privdata)
{
    (void)l;
    struct redis_broker *rb = privdata;
    if (rep && rep->type == REDIS_REPLY_ERROR)
        log_msg(LOG_WARN, "redis publish failed error=\"%.*s\"", (int)rep->len, rep->str);
    else if (!rep)
        rb->refused++;
}

static int redis_publish(void *impl, const char *room, const struct broker_pub *p)
{
    struct redis_broker *rb = impl;
    char kseq[200], kepoch[200], kstream[200], ch[200], maxlen[24], ttl[24], epoch[EPOCH_MAX + 1];
    const char *kind = p->kind == BROKER_MESSAGE ? "M" : p->kind == BROKER_EVENT ? "E" : "B";
    size_t n1 = room_key(rb, room, "seq", kseq, sizeof(kseq)), n2 = room_key(rb, room, "epoch", kepoch, sizeof(kepoch));
    size_t n3 = room_key(rb, room, "stream", kstream, sizeof(kstream)), n4 = channel_of(rb, room, ch, sizeof(ch));
    snprintf(maxlen, sizeof(maxlen), "%llu", (unsigned long long)rb->cfg.history);
    snprintf(ttl, sizeof(ttl), "%u", rb->cfg.history_ttl);
    new_epoch(rb, epoch);
    const char *argv[] = {kseq, kepoch, kstream, ch, kind, (const char *)p->data, maxlen, ttl, epoch};
    size_t lens[] = {n1, n2, n3, n4, 1, p->len, strlen(maxlen), strlen(ttl), strlen(epoch)};
    if (!n1 || !n2 || !n3 || !n4 || redis_link_evalsha(rb->cmd, &rb->publish, on_published, rb, 3, 9, argv, lens) < 0) {
        rb->refused++;
        return -1;
    }
    rb->pubs_out++;
    return 0;
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
    metrics_value(m, "redis_rtt_us", "wshub_redis_rtt_microseconds", METRICS_GAUGE,
                  "Smoothed round trip to Redis.", cs.rtt_smoothed_us);
    metrics_value(m, "redis_gaps_repaired", "wshub_redis_gaps_repaired_total", METRICS_COUNTER,
                  "Gaps in a room's numbering filled from its stream.", rb->gaps);
    metrics_value(m, "redis_gaps_unrepairable", "wshub_redis_gaps_unrepairable_total", METRICS_COUNTER,
                  "Gaps the stream no longer held.", rb->unrepairable);
    metrics_value(m, "redis_resyncs", "wshub_redis_resyncs_total", METRICS_COUNTER,
                  "Rooms whose numbering started again (an epoch change).", rb->resyncs);
    metrics_value(m, "redis_dropped_overload", "wshub_redis_dropped_overload_total", METRICS_COUNTER,
                  "Times a room's held publications passed the bound and were dropped for a resync.",
                  rb->overload);
    metrics_value(m, "redis_refused", "wshub_redis_refused_total", METRICS_COUNTER,
                  "Publications refused or lost because Redis was unreachable.", rb->refused);
}

static void redis_free(void *impl)
{
    struct redis_broker *rb = impl;
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
    redis_script_init(&rb->publish, PUBLISH_LUA);
    redis_script_init(&rb->sync, SYNC_LUA);
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
    *b = (struct broker){.ops = &redis_ops, .impl = rb};
    return 0;
}
