/* hub: rooms in a hash table, members in a per-room array (local members
 * first, then the roster entries the hub owns), empty rooms on an LRU list
 * for eviction. Nicks are hub_nick.c's, history hub_history.c's. Every table
 * is keyed with a random SipHash key (OpenSSL's), since peers choose the
 * names.
 * Broadcast appends one reference per member and cuts slow consumers during
 * the walk. Must never touch a socket, block, or be re-entered from a sink. */
#include "hub.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub_priv.h"

/* SipHash-2-4 (OpenSSL's) of the string s under the hub's random key. A
 * failure gives 0: every name in one chain, slower but still correct. */
uint64_t hub_hash(const struct hub *h, const char *s)
{
    unsigned char out[8];
    size_t n = 0;
    uint64_t v = 0;
    if (EVP_MAC_init(h->sip, NULL, 0, NULL) && EVP_MAC_update(h->sip, (const unsigned char *)s, strlen(s)) &&
        EVP_MAC_final(h->sip, out, &n, sizeof(out)) && n == sizeof(out))
        memcpy(&v, out, sizeof(v));
    return v;
}

/* A SipHash context with a fresh random key and 8-byte output, or NULL. */
static EVP_MAC_CTX *sip_new(void)
{
    unsigned char key[16];
    size_t size = 8;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end()};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    if (ctx && (RAND_bytes(key, sizeof(key)) != 1 || !EVP_MAC_init(ctx, key, sizeof(key), params))) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    OPENSSL_cleanse(key, sizeof(key));
    return ctx;
}

/* Copies the string src of at most max bytes, with its NUL, to dst. */
void hub_copy_str(char *dst, const char *src, size_t max)
{
    size_t n = strnlen(src, max);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

struct hub *hub_new(const struct hub_config *cfg, const struct hub_sink_ops *ops)
{
    struct hub *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->cfg = *cfg;
    if (h->cfg.history > HIST_LIMIT)
        h->cfg.history = HIST_LIMIT;
    h->ops = ops;
    link_init(&h->empty);
    link_init(&h->recent);
    h->nbuckets = 256;
    h->buckets = calloc(h->nbuckets, sizeof(*h->buckets));
    h->sip = sip_new();
    if (!h->buckets || !h->sip || RAND_bytes((unsigned char *)&h->epoch_prefix, sizeof(h->epoch_prefix)) != 1) {
        EVP_MAC_CTX_free(h->sip);
        free(h->buckets);
        free(h);
        return NULL;
    }
    return h;
}

/* ---- rooms ---- */

static void room_free(struct hub *h, struct hub_room *r)
{
    for (uint32_t i = r->nlocal; i < r->count; i++)
        free(r->members[i]);
    history_clear(h, r);
    link_remove(&r->empty);
    nick_suffixes_clear(r);
    free(r->nicks);
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
            room_free(h, r);
        }
    }
    free(h->buckets);
    EVP_MAC_CTX_free(h->sip);
    free(h);
}

static struct hub_room *find(const struct hub *h, const char *name)
{
    uint32_t hash = (uint32_t)hub_hash(h, name);
    for (struct hub_room *r = h->buckets[hash & (h->nbuckets - 1)]; r; r = r->hash_next)
        if (r->hash == hash && strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

struct hub_room *hub_find(struct hub *h, const char *name)
{
    return find(h, name);
}

static void evict_lru(struct hub *h)
{
    struct hub_room *r = ROOM_OF(h->empty.next, empty);
    struct hub_room **p = &h->buckets[r->hash & (h->nbuckets - 1)];
    while (*p != r)
        p = &(*p)->hash_next;
    *p = r->hash_next;
    h->nrooms--;
    room_free(h, r);
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
    struct hub_room *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (h->nrooms >= h->cfg.max_rooms)
        evict_lru(h);
    hub_copy_str(r->name, name, HUB_ROOM_MAX);
    snprintf(r->epoch, sizeof(r->epoch), "%08x%08x", h->epoch_prefix, ++h->rooms_created);
    r->hash = (uint32_t)hub_hash(h, r->name);
    link_init(&r->recent);
    if (h->nrooms >= h->nbuckets)
        grow_buckets(h);
    struct hub_room **b = &h->buckets[r->hash & (h->nbuckets - 1)];
    r->hash_next = *b;
    *b = r;
    h->nrooms++;
    link_append(&h->empty, &r->empty);   /* empty until its first member joins */
    return r;
}

int hub_can_join(struct hub *h, const char *name, const char **reason)
{
    struct hub_room *r = find(h, name);
    if (r && h->cfg.max_members && r->count >= h->cfg.max_members) {
        *reason = "room is full";
        return 503;
    }
    if (!r && h->nrooms >= h->cfg.max_rooms && link_alone(&h->empty)) {
        *reason = "too many rooms";
        return 503;
    }
    return 0;
}

/* ---- members ---- */

/* Puts m in r's member array: a local member (with a sink) at the end of
 * the local part, moving the first other entry to the end; others at the end. */
static void entry_insert(struct hub_room *r, struct hub_member *m)
{
    if (!m->sink) {
        m->slot = r->count;
        r->members[r->count++] = m;
        return;
    }
    if (r->count > r->nlocal) {
        struct hub_member *o = r->members[r->nlocal];
        o->slot = r->count;
        r->members[r->count] = o;
    }
    m->slot = r->nlocal;
    r->members[r->nlocal++] = m;
    r->count++;
}

/* Moves the entry at slot `from` to slot `to` of r. */
static void entry_move(struct hub_room *r, uint32_t from, uint32_t to)
{
    if (from != to) {
        r->members[to] = r->members[from];
        r->members[to]->slot = to;
    }
}

/* Takes m out of r's member array, keeping local members first. */
static void entry_remove(struct hub_room *r, struct hub_member *m)
{
    uint32_t hole = m->slot;
    if (hole < r->nlocal) {
        entry_move(r, --r->nlocal, hole);
        hole = r->nlocal;
    }
    entry_move(r, --r->count, hole);
    if (m->pending)
        r->npending--;
}

/* Makes room in r for one more member and its nick. Returns 0, or -1 if out of memory. */
static int members_reserve(const struct hub *h, struct hub_room *r)
{
    if (r->count == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 4;
        struct hub_member **mv = realloc(r->members, cap * sizeof(*mv));
        if (!mv)
            return -1;
        r->members = mv;
        r->cap = cap;
    }
    if (!r->nicks) {
        if (!(r->nicks = calloc(NICK_CHAINS_MIN, sizeof(*r->nicks))))
            return -1;
        r->nick_chains = NICK_CHAINS_MIN;
    } else if (r->count + 1 > 2 * (size_t)r->nick_chains) {
        nick_index_resize(h, r, r->nick_chains * 2);
    }
    return 0;
}

int hub_join(struct hub *h, struct hub_member *m, const char *name, const char *want, void *sink,
             const char **reason)
{
    int status = hub_can_join(h, name, reason);
    if (status)
        return status;
    struct hub_room *r = find(h, name);
    char nick[HUB_NICK_MAX + 1];
    if ((!r && !(r = create(h, name))) || nick_pick(h, r, want, nick) < 0 || members_reserve(h, r) < 0) {
        *reason = "out of memory";
        return 503;
    }
    if (r->count == 0)
        link_remove(&r->empty);
    memset(m, 0, sizeof(*m));
    memcpy(m->nick, nick, sizeof(nick));
    m->room = r;
    m->sink = sink;
    entry_insert(r, m);
    nick_index_add(h, r, m);
    return 0;
}

/* Gives back what r no longer needs after a member left: all of its member
 * and nick memory when it is empty, else the excess of each table. */
static void room_shrink(struct hub *h, struct hub_room *r)
{
    if (r->nsuffixes > 2 * (size_t)r->count + 16 || r->count == 0)
        nick_suffixes_clear(r);
    if (r->count == 0) {
        free(r->members);
        free(r->nicks);
        r->members = r->nicks = NULL;
        r->cap = r->nick_chains = 0;
        link_append(&h->empty, &r->empty);
        return;
    }
    if (r->nick_chains > NICK_CHAINS_MIN && r->count < r->nick_chains / 2)
        nick_index_resize(h, r, r->nick_chains / 2);
    if (r->cap > 4 && r->count < r->cap / 4) {
        struct hub_member **mv = realloc(r->members, r->cap / 2 * sizeof(*mv));
        if (mv) {
            r->members = mv;
            r->cap /= 2;
        }
    }
}

void hub_leave(struct hub *h, struct hub_member *m)
{
    struct hub_room *r = m->room;
    if (!r)
        return;
    nick_index_remove(h, r, m);
    entry_remove(r, m);
    m->room = NULL;
    room_shrink(h, r);
}

void hub_leave_keep(struct hub *h, struct hub_member *m, const char *user)
{
    struct hub_room *r = m->room;
    if (!r)
        return;
    int keep = !m->pending;
    char nick[HUB_NICK_MAX + 1];
    memcpy(nick, m->nick, sizeof(nick));
    hub_leave(h, m);
    if (keep)
        hub_roster_add(h, r, nick, user);
}

/* An entry the hub owns: the member, then its user id ("" for a guest). */
struct owned {
    struct hub_member m;   /* first: the entry is freed through it */
    char user[];
};

int hub_roster_add(struct hub *h, struct hub_room *r, const char *nick, const char *user)
{
    size_t ulen = user ? strlen(user) : 0;
    struct owned *o = calloc(1, sizeof(*o) + ulen + 1);
    struct hub_member *m = o ? &o->m : NULL;
    if (!m || members_reserve(h, r) < 0) {
        free(o);
        return -1;
    }
    memcpy(o->user, user ? user : "", ulen + 1);
    if (r->count == 0)
        link_remove(&r->empty);
    hub_copy_str(m->nick, nick, HUB_NICK_MAX);
    m->room = r;
    entry_insert(r, m);
    nick_index_add(h, r, m);
    return 0;
}

/* Takes the owned entry m out of r and frees it. */
static void owned_free(struct hub *h, struct hub_room *r, struct hub_member *m)
{
    nick_index_remove(h, r, m);
    entry_remove(r, m);
    free(m);
}

const char *hub_roster_user(const struct hub_member *m)
{
    const struct owned *o = (const struct owned *)(const void *)m;
    return !m->sink && o->user[0] ? o->user : NULL;
}

int hub_roster_remove(struct hub *h, struct hub_room *r, const char *nick)
{
    struct hub_member *m = nick_index_find_owned(h, r, nick);
    if (!m)
        return -1;
    owned_free(h, r, m);
    room_shrink(h, r);
    return 0;
}

int hub_roster_rename(struct hub *h, struct hub_room *r, const char *old, const char *nick)
{
    struct hub_member *m = nick_index_find_owned(h, r, old);
    if (!m)
        return -1;
    nick_index_remove(h, r, m);
    hub_copy_str(m->nick, nick, HUB_NICK_MAX);
    nick_index_add(h, r, m);
    return 0;
}

void hub_roster_count(struct hub_room *r, size_t n)
{
    r->unlisted += (uint32_t)n;
}

int hub_roster_uncount(struct hub_room *r)
{
    if (!r->unlisted)
        return -1;
    r->unlisted--;
    return 0;
}

size_t hub_room_unlisted(const struct hub_room *r)
{
    return r->unlisted;
}

void hub_roster_clear(struct hub *h, struct hub_room *r)
{
    r->unlisted = 0;
    if (r->count == r->nlocal)
        return;
    while (r->count > r->nlocal)
        owned_free(h, r, r->members[r->count - 1]);
    room_shrink(h, r);
}

void hub_set_pending(struct hub_member *m, int pending)
{
    if (!m->room || m->pending == (pending != 0))
        return;
    m->pending = pending != 0;
    if (pending)
        m->room->npending++;
    else
        m->room->npending--;
}

int hub_rename(struct hub *h, struct hub_member *m, const char *nick)
{
    struct hub_member *holder = nick_index_find(h, m->room, nick);
    if (holder)
        return holder == m ? 0 : -1;
    nick_index_remove(h, m->room, m);
    hub_copy_str(m->nick, nick, HUB_NICK_MAX);
    nick_index_add(h, m->room, m);
    return 0;
}

/* ---- output ---- */

/* Queues frame on m unless it is cut; cuts it when it is too far behind or
 * its sink refuses. ops->cut must not re-enter the hub (see hub.h). */
static void deliver(struct hub *h, struct hub_member *m, struct sbuf *frame)
{
    if (m->cut || m->pending)
        return;
    if (h->ops->backlog(m->sink) + frame->len > h->cfg.max_backlog || h->ops->send(m->sink, frame) < 0) {
        m->cut = 1;
        h->ops->cut(m->sink);
    }
}

void hub_broadcast(struct hub *h, struct hub_room *room, struct sbuf *frame)
{
    h->broadcasts++;
    for (uint32_t i = 0; i < room->nlocal; i++)
        deliver(h, room->members[i], frame);
}

void hub_send(struct hub *h, struct hub_member *m, struct sbuf *frame)
{
    deliver(h, m, frame);
}

/* ---- queries ---- */

const char *hub_room_name(const struct hub_room *room)
{
    return room->name;
}

size_t hub_room_count(const struct hub_room *room)
{
    return room->count - room->npending + room->unlisted;
}

size_t hub_room_entries(const struct hub_room *room)
{
    return room->count;
}

size_t hub_room_local(const struct hub_room *room)
{
    return room->nlocal;
}

const struct hub_member *hub_room_member(const struct hub_room *room, size_t i)
{
    return room->members[i];
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

uint64_t hub_room_seq(const struct hub_room *room)
{
    return room->seq;
}

const char *hub_room_epoch(const struct hub_room *room)
{
    return room->epoch;
}

void hub_room_restart(struct hub *h, struct hub_room *room, const char *epoch, uint64_t seq)
{
    if (room->hist_count)
        history_clear(h, room);
    hub_copy_str(room->epoch, epoch, HUB_EPOCH_LEN);
    room->seq = seq;
}

void hub_room_set_seq(struct hub_room *room, uint64_t seq)
{
    room->seq = seq;
}

int hub_room_ready(const struct hub_room *room)
{
    return room->ready;
}

void hub_room_set_ready(struct hub_room *room, int ready)
{
    room->ready = ready ? 1 : 0;
}

void hub_each_room(const struct hub *h, void (*fn)(void *ctx, const struct hub_room *room), void *ctx)
{
    for (size_t b = 0; b < h->nbuckets; b++)
        for (const struct hub_room *r = h->buckets[b]; r; r = r->hash_next)
            fn(ctx, r);
}
