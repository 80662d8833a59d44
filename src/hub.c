/* hub: rooms in a hash table, members in a per-room array with a nick index
 * and per-nick suffix counters, history in a per-room ring of shared frames
 * bounded in count and bytes, empty rooms on an LRU list for eviction, rooms
 * with history on a list by last push for the hub-wide byte bound. Every
 * table is keyed with a random SipHash key (OpenSSL's), since peers choose
 * the names.
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

#define HIST_LIMIT (UINT32_MAX / 2)   /* cap on cfg.history: ring indexes are 32-bit */

/* A room's nick index starts at this many chains when its first member joins;
 * it doubles past 2 nicks a chain and halves below 1/2, and the suffix
 * counters share its chain count. */
#define NICK_CHAINS_MIN 4

/* A node of a circular doubly linked list; a lone node points at itself. */
struct link {
    struct link *prev, *next;
};

#define ROOM_OF(l, field) ((struct hub_room *)(void *)((char *)(l) - offsetof(struct hub_room, field)))

struct hist_item {
    struct sbuf *frame;
    uint64_t seq;
    size_t off;
};

/* The next suffix to try for a wanted nick that was taken. */
struct suffix {
    struct suffix *next;
    uint32_t k;
    char want[HUB_NICK_MAX + 1];
};

struct hub_room {
    struct hub_room *hash_next;
    struct link empty;                    /* on hub.empty while the room has no members */
    struct link recent;                   /* on hub.recent while it has history */
    struct hub_member **members;          /* local members first, then the roster's other entries */
    uint32_t count, cap, nlocal, npending;
    struct hub_member **nicks;            /* nick index: nick_chains chains, NULL while empty */
    struct suffix **suffixes;             /* nick_chains chains of counters, NULL when none */
    uint32_t nick_chains, nsuffixes;
    struct hist_item *hist;               /* ring of hist_cap slots, grown as needed */
    uint32_t hist_head, hist_count, hist_cap;
    uint32_t hash;
    size_t hist_bytes;
    uint64_t seq;
    char epoch[HUB_EPOCH_LEN + 1];        /* changes whenever seq starts again at 1 */
    uint8_t ready;                        /* in the cluster's order: joiners may be welcomed */
    char name[HUB_ROOM_MAX + 1];
};

struct hub {
    struct hub_config cfg;
    const struct hub_sink_ops *ops;
    EVP_MAC_CTX *sip;                     /* SipHash with a random key per hub */
    uint32_t epoch_prefix;                /* random per hub: epochs differ across restarts */
    uint32_t rooms_created;
    struct hub_room **buckets;
    size_t nbuckets, nrooms;
    struct link empty;                    /* empty rooms, least recently emptied first */
    struct link recent;                   /* rooms with history, least recently pushed first */
    size_t hist_bytes;
    uint64_t guests, broadcasts, probes;
};

static void link_init(struct link *l)
{
    l->prev = l->next = l;
}

/* True for a node on no list, or a list head with nothing on it. */
static int link_alone(const struct link *l)
{
    return l->next == l;
}

static void link_remove(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    link_init(l);
}

static void link_append(struct link *list, struct link *l)
{
    l->prev = list->prev;
    l->next = list;
    list->prev->next = l;
    list->prev = l;
}

/* SipHash-2-4 (OpenSSL's) of the string s under the hub's random key. A
 * failure gives 0: every name in one chain, slower but still correct. */
static uint64_t hash_str(const struct hub *h, const char *s)
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
static void copy_str(char *dst, const char *src, size_t max)
{
    size_t n = strnlen(src, max);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Writes v in decimal with a NUL to out; returns the number of digits. */
static size_t put_decimal(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while (v /= 10);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
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

/* ---- history ---- */

static struct hist_item *hist_at(const struct hub_room *r, size_t i)
{
    return &r->hist[(r->hist_head + i) % r->hist_cap];
}

/* True when limit is a bound (not 0) and bytes passes it. */
static int over(size_t bytes, size_t limit)
{
    return limit && bytes > limit;
}

static size_t event_cost(const struct sbuf *frame)
{
    return frame->len + (size_t)HUB_HISTORY_ITEM_COST;
}

/* Drops r's oldest history event. */
static void hist_drop(struct hub *h, struct hub_room *r)
{
    struct hist_item *it = &r->hist[r->hist_head];
    size_t cost = event_cost(it->frame);
    r->hist_bytes -= cost;
    h->hist_bytes -= cost;
    sbuf_unref(it->frame);
    r->hist_head = (r->hist_head + 1) % r->hist_cap;
    r->hist_count--;
}

/* Drops all of r's history and its ring, and takes r off the recent list. */
static void hist_clear(struct hub *h, struct hub_room *r)
{
    while (r->hist_count)
        hist_drop(h, r);
    free(r->hist);
    r->hist = NULL;
    r->hist_head = r->hist_cap = 0;
    link_remove(&r->recent);
}

/* Makes a free slot in r's ring (not full to cfg.history), doubling it as
 * needed. Returns 0, or -1 if out of memory. */
static int hist_reserve(struct hub *h, struct hub_room *r)
{
    if (r->hist_count < r->hist_cap)
        return 0;
    size_t cap = r->hist_cap ? 2 * (size_t)r->hist_cap : 4;
    if (cap > h->cfg.history)
        cap = h->cfg.history;
    struct hist_item *v = malloc(cap * sizeof(*v));
    if (!v)
        return -1;
    for (uint32_t i = 0; i < r->hist_count; i++)
        v[i] = *hist_at(r, i);
    free(r->hist);
    r->hist = v;
    r->hist_head = 0;
    r->hist_cap = (uint32_t)cap;
    return 0;
}

/* Drops the oldest events of the rooms least recently pushed to until the
 * hub-wide bound holds. */
static void hist_trim_total(struct hub *h)
{
    while (over(h->hist_bytes, h->cfg.history_total_bytes)) {
        struct hub_room *r = ROOM_OF(h->recent.next, recent);
        if (r->hist_count)
            hist_drop(h, r);
        if (!r->hist_count)
            hist_clear(h, r);
    }
}

void hub_history_push(struct hub *h, struct hub_room *r, struct sbuf *frame, size_t payload_off, uint64_t seq)
{
    size_t cost = event_cost(frame);
    if (!h->cfg.history || over(cost, h->cfg.history_bytes) || over(cost, h->cfg.history_total_bytes))
        return;
    while (r->hist_count &&
           (r->hist_count >= h->cfg.history || over(r->hist_bytes + cost, h->cfg.history_bytes)))
        hist_drop(h, r);
    if (hist_reserve(h, r) < 0)
        return;
    struct hist_item *it = hist_at(r, r->hist_count);
    it->frame = sbuf_ref(frame);
    it->seq = seq;
    it->off = payload_off;
    r->hist_count++;
    r->hist_bytes += cost;
    h->hist_bytes += cost;
    link_remove(&r->recent);
    link_append(&h->recent, &r->recent);
    hist_trim_total(h);
}

/* ---- rooms ---- */

static void suffixes_clear(struct hub_room *r)
{
    for (uint32_t b = 0; r->suffixes && b < r->nick_chains; b++) {
        while (r->suffixes[b]) {
            struct suffix *s = r->suffixes[b];
            r->suffixes[b] = s->next;
            free(s);
        }
    }
    free(r->suffixes);
    r->suffixes = NULL;
    r->nsuffixes = 0;
}

static void room_free(struct hub *h, struct hub_room *r)
{
    for (uint32_t i = r->nlocal; i < r->count; i++)
        free(r->members[i]);
    hist_clear(h, r);
    link_remove(&r->empty);
    suffixes_clear(r);
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
    uint32_t hash = (uint32_t)hash_str(h, name);
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
    copy_str(r->name, name, HUB_ROOM_MAX);
    snprintf(r->epoch, sizeof(r->epoch), "%08x%08x", h->epoch_prefix, ++h->rooms_created);
    r->hash = (uint32_t)hash_str(h, r->name);
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

/* ---- nicks ---- */

static size_t chain_of(const struct hub *h, const struct hub_room *r, const char *nick)
{
    return hash_str(h, nick) & (r->nick_chains - 1);
}

/* The member of r called nick, or NULL. */
static struct hub_member *nick_find(struct hub *h, const struct hub_room *r, const char *nick)
{
    if (!r->nicks)
        return NULL;
    for (struct hub_member *m = r->nicks[chain_of(h, r, nick)]; m; m = m->nick_next) {
        h->probes++;
        if (strcmp(m->nick, nick) == 0)
            return m;
    }
    return NULL;
}

static void nick_add(const struct hub *h, struct hub_room *r, struct hub_member *m)
{
    struct hub_member **c = &r->nicks[chain_of(h, r, m->nick)];
    m->nick_next = *c;
    *c = m;
}

static void nick_remove(const struct hub *h, struct hub_room *r, struct hub_member *m)
{
    struct hub_member **p = &r->nicks[chain_of(h, r, m->nick)];
    while (*p != m)
        p = &(*p)->nick_next;
    *p = m->nick_next;
}

/* Rehashes r's nick index and suffix counters into n chains each. Out of
 * memory, it keeps the old ones: longer chains, still correct. */
static void nick_resize(const struct hub *h, struct hub_room *r, uint32_t n)
{
    struct hub_member **nicks = calloc(n, sizeof(*nicks));
    struct suffix **sfx = r->suffixes ? calloc(n, sizeof(*sfx)) : NULL;
    if (!nicks || (r->suffixes && !sfx)) {
        free(nicks);
        free(sfx);
        return;
    }
    for (uint32_t i = 0; i < r->nick_chains; i++) {
        while (r->nicks[i]) {
            struct hub_member *m = r->nicks[i];
            size_t c = hash_str(h, m->nick) & (n - 1);
            r->nicks[i] = m->nick_next;
            m->nick_next = nicks[c];
            nicks[c] = m;
        }
        while (sfx && r->suffixes[i]) {
            struct suffix *s = r->suffixes[i];
            size_t c = hash_str(h, s->want) & (n - 1);
            r->suffixes[i] = s->next;
            s->next = sfx[c];
            sfx[c] = s;
        }
    }
    free(r->nicks);
    free(r->suffixes);
    r->nicks = nicks;
    r->suffixes = sfx;
    r->nick_chains = n;
}

/* want's suffix counter in r (next suffix 2 when new); NULL if out of memory.
 * The counters are all dropped first when they would outnumber twice the
 * members plus 16, so they stay in proportion to the room. */
static struct suffix *suffix_get(struct hub *h, struct hub_room *r, const char *want)
{
    size_t c = chain_of(h, r, want);
    for (struct suffix *s = r->suffixes ? r->suffixes[c] : NULL; s; s = s->next) {
        h->probes++;
        if (strcmp(s->want, want) == 0)
            return s;
    }
    if (r->nsuffixes + 1 > 2 * (size_t)r->count + 16)
        suffixes_clear(r);
    if (!r->suffixes && !(r->suffixes = calloc(r->nick_chains, sizeof(*r->suffixes))))
        return NULL;
    struct suffix *s = malloc(sizeof(*s));
    if (!s)
        return NULL;
    s->k = 2;
    copy_str(s->want, want, HUB_NICK_MAX);
    s->next = r->suffixes[c];
    r->suffixes[c] = s;
    r->nsuffixes++;
    return s;
}

/* want followed by k in decimal, want shortened at a code point boundary so
 * that the result fits HUB_NICK_MAX bytes, in out. */
static void suffixed(const char *want, uint32_t k, char *out)
{
    char digits[12];
    size_t nd = put_decimal(digits, k), base = strlen(want);
    if (base + nd > HUB_NICK_MAX) {
        base = HUB_NICK_MAX - nd;
        while (base > 0 && ((uint8_t)want[base] & 0xC0u) == 0x80u)
            base--;
    }
    memcpy(out, want, base);
    memcpy(out + base, digits, nd + 1);
}

/* Picks a nick free in r into out: want, or want with a suffix from want's
 * counter, or guest-<n> from the hub's counter. Returns 0, or -1 if out of memory. */
static int pick_nick(struct hub *h, struct hub_room *r, const char *want, char *out)
{
    if (!want) {
        do {
            memcpy(out, "guest-", 6);
            put_decimal(out + 6, ++h->guests);
        } while (nick_find(h, r, out));
        return 0;
    }
    if (!nick_find(h, r, want)) {
        copy_str(out, want, HUB_NICK_MAX);
        return 0;
    }
    struct suffix *s = suffix_get(h, r, want);
    if (!s)
        return -1;
    do {
        suffixed(want, s->k, out);
        s->k = s->k == UINT32_MAX ? 2 : s->k + 1;
    } while (nick_find(h, r, out));
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
        nick_resize(h, r, r->nick_chains * 2);
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
    if ((!r && !(r = create(h, name))) || pick_nick(h, r, want, nick) < 0 || members_reserve(h, r) < 0) {
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
    nick_add(h, r, m);
    return 0;
}

/* Gives back what r no longer needs after a member left: all of its member
 * and nick memory when it is empty, else the excess of each table. */
static void room_shrink(struct hub *h, struct hub_room *r)
{
    if (r->nsuffixes > 2 * (size_t)r->count + 16 || r->count == 0)
        suffixes_clear(r);
    if (r->count == 0) {
        free(r->members);
        free(r->nicks);
        r->members = r->nicks = NULL;
        r->cap = r->nick_chains = 0;
        link_append(&h->empty, &r->empty);
        return;
    }
    if (r->nick_chains > NICK_CHAINS_MIN && r->count < r->nick_chains / 2)
        nick_resize(h, r, r->nick_chains / 2);
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
    nick_remove(h, r, m);
    entry_remove(r, m);
    m->room = NULL;
    room_shrink(h, r);
}

/* A roster entry the hub owns (no sink) called nick in r, or NULL. */
static struct hub_member *owned_find(struct hub *h, const struct hub_room *r, const char *nick)
{
    if (!r->nicks)
        return NULL;
    for (struct hub_member *m = r->nicks[chain_of(h, r, nick)]; m; m = m->nick_next) {
        h->probes++;
        if (!m->sink && strcmp(m->nick, nick) == 0)
            return m;
    }
    return NULL;
}

void hub_leave_keep(struct hub *h, struct hub_member *m)
{
    struct hub_room *r = m->room;
    if (!r)
        return;
    int keep = !m->pending;
    char nick[HUB_NICK_MAX + 1];
    memcpy(nick, m->nick, sizeof(nick));
    hub_leave(h, m);
    if (keep)
        hub_roster_add(h, r, nick);
}

int hub_roster_add(struct hub *h, struct hub_room *r, const char *nick)
{
    struct hub_member *m = calloc(1, sizeof(*m));
    if (!m || members_reserve(h, r) < 0) {
        free(m);
        return -1;
    }
    if (r->count == 0)
        link_remove(&r->empty);
    copy_str(m->nick, nick, HUB_NICK_MAX);
    m->room = r;
    entry_insert(r, m);
    nick_add(h, r, m);
    return 0;
}

/* Takes the owned entry m out of r and frees it. */
static void owned_free(struct hub *h, struct hub_room *r, struct hub_member *m)
{
    nick_remove(h, r, m);
    entry_remove(r, m);
    free(m);
}

int hub_roster_remove(struct hub *h, struct hub_room *r, const char *nick)
{
    struct hub_member *m = owned_find(h, r, nick);
    if (!m)
        return -1;
    owned_free(h, r, m);
    room_shrink(h, r);
    return 0;
}

int hub_roster_rename(struct hub *h, struct hub_room *r, const char *old, const char *nick)
{
    struct hub_member *m = owned_find(h, r, old);
    if (!m)
        return -1;
    nick_remove(h, r, m);
    copy_str(m->nick, nick, HUB_NICK_MAX);
    nick_add(h, r, m);
    return 0;
}

void hub_roster_clear(struct hub *h, struct hub_room *r)
{
    if (r->count == r->nlocal)
        return;
    while (r->count > r->nlocal)
        owned_free(h, r, r->members[r->count - 1]);
    room_shrink(h, r);
}

struct hub_member *hub_local_find(struct hub *h, struct hub_room *r, const char *nick)
{
    if (!r->nicks)
        return NULL;
    for (struct hub_member *m = r->nicks[chain_of(h, r, nick)]; m; m = m->nick_next) {
        h->probes++;
        if (m->sink && strcmp(m->nick, nick) == 0)
            return m;
    }
    return NULL;
}

struct hub_member *hub_member_find(struct hub *h, struct hub_room *r, const char *nick)
{
    return nick_find(h, r, nick);
}

int hub_repick(struct hub *h, struct hub_member *m)
{
    char want[HUB_NICK_MAX + 1], nick[HUB_NICK_MAX + 1];
    memcpy(want, m->nick, sizeof(want));
    if (pick_nick(h, m->room, want, nick) < 0)
        return -1;
    nick_remove(h, m->room, m);
    memcpy(m->nick, nick, sizeof(nick));
    nick_add(h, m->room, m);
    return 0;
}

int hub_nick_taken(struct hub *h, const struct hub_room *r, const char *nick)
{
    return nick_find(h, r, nick) != NULL;
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
    struct hub_member *holder = nick_find(h, m->room, nick);
    if (holder)
        return holder == m ? 0 : -1;
    nick_remove(h, m->room, m);
    copy_str(m->nick, nick, HUB_NICK_MAX);
    nick_add(h, m->room, m);
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

size_t hub_history_bytes(const struct hub *h)
{
    return h->hist_bytes;
}

const char *hub_room_name(const struct hub_room *room)
{
    return room->name;
}

size_t hub_room_count(const struct hub_room *room)
{
    return room->count - room->npending;
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

uint64_t hub_nick_probes(const struct hub *h)
{
    return h->probes;
}

uint64_t hub_room_history_seq(const struct hub_room *room, size_t i)
{
    return hist_at(room, i)->seq;
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
        hist_clear(h, room);
    copy_str(room->epoch, epoch, HUB_EPOCH_LEN);
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
