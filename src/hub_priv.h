/* hub_priv: the hub's own state, shared by its three files only: hub.c
 * (rooms, members, the roster, broadcast), hub_nick.c (each room's nick
 * index and suffix counters) and hub_history.c (each room's history ring and
 * the hub-wide byte bound). Nothing outside the hub includes it. */
#ifndef WSHUB_HUB_PRIV_H
#define WSHUB_HUB_PRIV_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "hub.h"

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
    uint32_t unlisted;                    /* members elsewhere counted, not kept (past the listing bound) */
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

static inline void link_init(struct link *l)
{
    l->prev = l->next = l;
}

/* True for a node on no list, or a list head with nothing on it. */
static inline int link_alone(const struct link *l)
{
    return l->next == l;
}

static inline void link_remove(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    link_init(l);
}

static inline void link_append(struct link *list, struct link *l)
{
    l->prev = list->prev;
    l->next = list;
    list->prev->next = l;
    list->prev = l;
}


/* hub.c: SipHash of s under the hub's key (0 on failure: one chain, still
 * correct), and a copy of at most max bytes of src with its NUL. */
uint64_t hub_hash(const struct hub *h, const char *s);
void hub_copy_str(char *dst, const char *src, size_t max);

/* hub_nick.c: the member of r called nick (any, or only one the hub owns),
 * adding and removing m, rehashing into n chains, and a free nick for want
 * (NULL: guest-N) into out (0, or -1 if out of memory); dropping every
 * suffix counter. */
struct hub_member *nick_index_find(struct hub *h, const struct hub_room *r, const char *nick);
struct hub_member *nick_index_find_owned(struct hub *h, const struct hub_room *r, const char *nick);
void nick_index_add(const struct hub *h, struct hub_room *r, struct hub_member *m);
void nick_index_remove(const struct hub *h, struct hub_room *r, struct hub_member *m);
void nick_index_resize(const struct hub *h, struct hub_room *r, uint32_t n);
int nick_pick(struct hub *h, struct hub_room *r, const char *want, char *out);
void nick_suffixes_clear(struct hub_room *r);

/* hub_history.c: drops all of r's history and its ring. */
void history_clear(struct hub *h, struct hub_room *r);

#endif
