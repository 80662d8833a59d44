/* hub: rooms in a hash table, members in a per-room array, history in a
 * per-room ring of shared frames, empty rooms on an LRU list for eviction.
 * Broadcast appends one reference per member; members over the backlog limit
 * are put on a cut list and cut after the walk, never during it. No sockets. */
#include "hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hist_item {
    struct sbuf *frame;
    size_t off;
};

struct hub_room {
    struct hub_room *hash_next;
    struct hub_room *lru_prev, *lru_next; /* on the empty-room list while empty */
    struct hub_member **members;
    uint32_t count, cap;
    struct hist_item *hist;               /* ring of hist_cap slots, allocated on first use */
    uint32_t hist_head, hist_count, hist_cap;
    uint32_t hash;
    uint64_t seq;
    char name[COMMAND_ROOM_MAX + 1];
};

struct hub {
    struct hub_config cfg;
    const struct hub_sink_ops *ops;
    struct hub_room **buckets;
    size_t nbuckets, nrooms;
    struct hub_room *lru_head, *lru_tail; /* least recently emptied first */
    struct hub_member **cuts;             /* members to cut after the current walk */
    size_t ncuts, cap_cuts;
    int cutting;
    uint64_t guests;
    uint64_t broadcasts;
};

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

struct hub *hub_new(const struct hub_config *cfg, const struct hub_sink_ops *ops)
{
    struct hub *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->cfg = *cfg;
    h->ops = ops;
    h->nbuckets = 256;
    h->buckets = calloc(h->nbuckets, sizeof(*h->buckets));
    if (!h->buckets) {
        free(h);
        return NULL;
    }
    return h;
}

static void lru_remove(struct hub *h, struct hub_room *r)
{
    if (r->lru_prev)
        r->lru_prev->lru_next = r->lru_next;
    else if (h->lru_head == r)
        h->lru_head = r->lru_next;
    if (r->lru_next)
        r->lru_next->lru_prev = r->lru_prev;
    else if (h->lru_tail == r)
        h->lru_tail = r->lru_prev;
    r->lru_prev = r->lru_next = NULL;
}

static void lru_append(struct hub *h, struct hub_room *r)
{
    r->lru_prev = h->lru_tail;
    r->lru_next = NULL;
    if (h->lru_tail)
        h->lru_tail->lru_next = r;
    else
        h->lru_head = r;
    h->lru_tail = r;
}

static struct hist_item *hist_at(const struct hub_room *r, size_t i)
{
    return &r->hist[(r->hist_head + i) % r->hist_cap];
}

static void room_free(struct hub_room *r)
{
    for (uint32_t i = 0; i < r->hist_count; i++)
        sbuf_unref(hist_at(r, i)->frame);
    free(r->hist);
    free(r->members);
    free(r);
}

void hub_free(struct hub *h)
{
    if (!h)
        return;
    for (size_t b = 0; b < h->nbuckets; b++) {
        while (h->buckets[b]) {
            struct hub_room *r = h->buckets[b];
            h->buckets[b] = r->hash_next;
            room_free(r);
        }
    }
    free(h->buckets);
    free(h->cuts);
    free(h);
}

static struct hub_room *find(const struct hub *h, const char *name)
{
    uint32_t hash = hash_name(name);
    for (struct hub_room *r = h->buckets[hash & (h->nbuckets - 1)]; r; r = r->hash_next)
        if (r->hash == hash && strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

static void evict_lru(struct hub *h)
{
    struct hub_room *r = h->lru_head;
    lru_remove(h, r);
    struct hub_room **p = &h->buckets[r->hash & (h->nbuckets - 1)];
    while (*p != r)
        p = &(*p)->hash_next;
    *p = r->hash_next;
    h->nrooms--;
    room_free(r);
}

static void grow_buckets(struct hub *h)
{
    size_t n = h->nbuckets * 2;
    struct hub_room **b = calloc(n, sizeof(*b));
    if (!b)
        return;   /* longer chains, still correct */
    for (size_t i = 0; i < h->nbuckets; i++) {
        while (h->buckets[i]) {
            struct hub_room *r = h->buckets[i];
            h->buckets[i] = r->hash_next;
            r->hash_next = b[r->hash & (n - 1)];
            b[r->hash & (n - 1)] = r;
        }
    }
    free(h->buckets);
    h->buckets = b;
    h->nbuckets = n;
}

static struct hub_room *create(struct hub *h, const char *name)
{
    if (h->nrooms >= h->cfg.max_rooms)
        evict_lru(h);
    struct hub_room *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->hash = hash_name(r->name);
    if (h->nrooms >= h->nbuckets)
        grow_buckets(h);
    struct hub_room **b = &h->buckets[r->hash & (h->nbuckets - 1)];
    r->hash_next = *b;
    *b = r;
    h->nrooms++;
    lru_append(h, r);   /* empty until its first member joins */
    return r;
}

int hub_can_join(struct hub *h, const char *name, const char **reason)
{
    struct hub_room *r = find(h, name);
    if (r && h->cfg.max_members && r->count >= h->cfg.max_members) {
        *reason = "room is full";
        return 503;
    }
    if (!r && h->nrooms >= h->cfg.max_rooms && !h->lru_head) {
        *reason = "too many rooms";
        return 503;
    }
    return 0;
}

static int nick_taken(const struct hub_room *r, const char *nick, const struct hub_member *except)
{
    for (uint32_t i = 0; i < r->count; i++)
        if (r->members[i] != except && strcmp(r->members[i]->nick, nick) == 0)
            return 1;
    return 0;
}

/* Picks a free nick in r: want, or want with the smallest free suffix 2, 3, ...
 * (shortening want at a code point boundary so the result fits), or guest-<n>. */
static void pick_nick(struct hub *h, const struct hub_room *r, const char *want, char *out)
{
    if (!want) {
        do
            snprintf(out, COMMAND_NICK_MAX + 1, "guest-%llu", (unsigned long long)++h->guests);
        while (nick_taken(r, out, NULL));
        return;
    }
    snprintf(out, COMMAND_NICK_MAX + 1, "%s", want);
    for (unsigned k = 2; nick_taken(r, out, NULL); k++) {
        char suffix[16];
        int sn = snprintf(suffix, sizeof(suffix), "%u", k);
        size_t base = strlen(want);
        if (base + (size_t)sn > COMMAND_NICK_MAX) {
            base = COMMAND_NICK_MAX - (size_t)sn;
            while (base > 0 && ((uint8_t)want[base] & 0xC0u) == 0x80u)
                base--;
        }
        snprintf(out, COMMAND_NICK_MAX + 1, "%.*s%s", (int)base, want, suffix);
    }
}

int hub_join(struct hub *h, struct hub_member *m, const char *name, const char *want, void *sink,
             const char **reason)
{
    int status = hub_can_join(h, name, reason);
    if (status)
        return status;
    struct hub_room *r = find(h, name);
    if (!r && !(r = create(h, name))) {
        *reason = "out of memory";
        return 503;
    }
    if (r->count == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 4;
        struct hub_member **mv = realloc(r->members, cap * sizeof(*mv));
        if (!mv) {
            *reason = "out of memory";
            return 503;
        }
        r->members = mv;
        r->cap = cap;
    }
    if (r->count == 0)
        lru_remove(h, r);
    memset(m, 0, sizeof(*m));
    pick_nick(h, r, want, m->nick);
    m->room = r;
    m->sink = sink;
    m->slot = r->count;
    r->members[r->count++] = m;
    return 0;
}

void hub_leave(struct hub *h, struct hub_member *m)
{
    struct hub_room *r = m->room;
    if (!r)
        return;
    if (m->cut_pending) {
        size_t i = 0;
        while (h->cuts[i] != m)
            i++;
        h->cuts[i] = h->cuts[--h->ncuts];
        m->cut_pending = 0;
    }
    struct hub_member *last = r->members[--r->count];
    r->members[m->slot] = last;
    last->slot = m->slot;
    m->room = NULL;
    if (r->count == 0) {
        free(r->members);
        r->members = NULL;
        r->cap = 0;
        lru_append(h, r);
    }
}

int hub_rename(struct hub *h, struct hub_member *m, const char *nick)
{
    (void)h;
    if (nick_taken(m->room, nick, m))
        return -1;
    snprintf(m->nick, sizeof(m->nick), "%s", nick);
    return 0;
}

static void deliver(struct hub *h, struct hub_member *m, struct sbuf *frame)
{
    if (m->cut_pending)
        return;
    if (h->ops->backlog(m->sink) + frame->len > h->cfg.max_backlog) {
        if (h->ncuts == h->cap_cuts) {
            size_t cap = h->cap_cuts ? h->cap_cuts * 2 : 16;
            struct hub_member **v = realloc(h->cuts, cap * sizeof(*v));
            if (!v)
                return;   /* not cut this time, but not fed either */
            h->cuts = v;
            h->cap_cuts = cap;
        }
        m->cut_pending = 1;
        h->cuts[h->ncuts++] = m;
        return;
    }
    h->ops->send(m->sink, frame);
}

/* Cuts the slow consumers found so far; the leave events this causes may find
 * more, which the same loop handles. Re-entry from those broadcasts is a no-op. */
static void run_cuts(struct hub *h)
{
    if (h->cutting)
        return;
    h->cutting = 1;
    while (h->ncuts) {
        struct hub_member *m = h->cuts[--h->ncuts];
        m->cut_pending = 0;
        h->ops->cut(m->sink);
    }
    h->cutting = 0;
}

void hub_broadcast(struct hub *h, struct hub_room *room, struct sbuf *frame)
{
    h->broadcasts++;
    for (uint32_t i = 0; i < room->count; i++)
        deliver(h, room->members[i], frame);
    run_cuts(h);
}

void hub_send(struct hub *h, struct hub_member *m, struct sbuf *frame)
{
    deliver(h, m, frame);
    run_cuts(h);
}

void hub_history_push(struct hub *h, struct hub_room *r, struct sbuf *frame, size_t payload_off)
{
    if (h->cfg.history == 0)
        return;
    if (!r->hist) {
        if (!(r->hist = calloc(h->cfg.history, sizeof(*r->hist))))
            return;
        r->hist_cap = (uint32_t)h->cfg.history;
    }
    if (r->hist_count == r->hist_cap) {
        sbuf_unref(r->hist[r->hist_head].frame);
        r->hist_head = (r->hist_head + 1) % r->hist_cap;
        r->hist_count--;
    }
    struct hist_item *it = hist_at(r, r->hist_count);
    it->frame = sbuf_ref(frame);
    it->off = payload_off;
    r->hist_count++;
}

const char *hub_room_name(const struct hub_room *room)
{
    return room->name;
}

size_t hub_room_count(const struct hub_room *room)
{
    return room->count;
}

const struct hub_member *hub_room_member(const struct hub_room *room, size_t i)
{
    return room->members[i];
}

size_t hub_room_history_count(const struct hub_room *room)
{
    return room->hist_count;
}

const uint8_t *hub_room_history(const struct hub_room *room, size_t i, size_t *len)
{
    const struct hist_item *it = hist_at(room, i);
    *len = it->frame->len - it->off;
    return it->frame->data + it->off;
}

uint64_t hub_room_next_seq(struct hub_room *room)
{
    return ++room->seq;
}

size_t hub_room_total(const struct hub *h)
{
    return h->nrooms;
}

uint64_t hub_broadcast_total(const struct hub *h)
{
    return h->broadcasts;
}
