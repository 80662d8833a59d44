/* hub_nick: each room's nick index (chained, SipHash-keyed, resized with
 * the room) and per-nick suffix counters, so that a join or rename costs
 * constant expected time whatever nicks peers choose. Owns nick choice
 * (want, want<k>, guest-<n>, cut at a code point boundary to fit). Never
 * allocates per lookup; never touches members' output. */
#include <stdlib.h>
#include <string.h>

#include "hub_priv.h"

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

/* ---- nicks ---- */

static size_t chain_of(const struct hub *h, const struct hub_room *r, const char *nick)
{
    return hub_hash(h, nick) & (r->nick_chains - 1);
}

/* The member of r called nick, or NULL. */
struct hub_member *nick_index_find(struct hub *h, const struct hub_room *r, const char *nick)
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

void nick_index_add(const struct hub *h, struct hub_room *r, struct hub_member *m)
{
    struct hub_member **c = &r->nicks[chain_of(h, r, m->nick)];
    m->nick_next = *c;
    *c = m;
}

void nick_index_remove(const struct hub *h, struct hub_room *r, struct hub_member *m)
{
    struct hub_member **p = &r->nicks[chain_of(h, r, m->nick)];
    while (*p != m)
        p = &(*p)->nick_next;
    *p = m->nick_next;
}

/* Rehashes r's nick index and suffix counters into n chains each. Out of
 * memory, it keeps the old ones: longer chains, still correct. */
void nick_index_resize(const struct hub *h, struct hub_room *r, uint32_t n)
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
            size_t c = hub_hash(h, m->nick) & (n - 1);
            r->nicks[i] = m->nick_next;
            m->nick_next = nicks[c];
            nicks[c] = m;
        }
        while (sfx && r->suffixes[i]) {
            struct suffix *s = r->suffixes[i];
            size_t c = hub_hash(h, s->want) & (n - 1);
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
        nick_suffixes_clear(r);
    if (!r->suffixes && !(r->suffixes = calloc(r->nick_chains, sizeof(*r->suffixes))))
        return NULL;
    struct suffix *s = malloc(sizeof(*s));
    if (!s)
        return NULL;
    s->k = 2;
    hub_copy_str(s->want, want, HUB_NICK_MAX);
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
int nick_pick(struct hub *h, struct hub_room *r, const char *want, char *out)
{
    if (!want) {
        do {
            memcpy(out, "guest-", 6);
            put_decimal(out + 6, ++h->guests);
        } while (nick_index_find(h, r, out));
        return 0;
    }
    if (!nick_index_find(h, r, want)) {
        hub_copy_str(out, want, HUB_NICK_MAX);
        return 0;
    }
    struct suffix *s = suffix_get(h, r, want);
    if (!s)
        return -1;
    do {
        suffixed(want, s->k, out);
        s->k = s->k == UINT32_MAX ? 2 : s->k + 1;
    } while (nick_index_find(h, r, out));
    return 0;
}

struct hub_member *hub_member_find(struct hub *h, struct hub_room *r, const char *nick)
{
    return nick_index_find(h, r, nick);
}

int hub_repick(struct hub *h, struct hub_member *m)
{
    char want[HUB_NICK_MAX + 1], nick[HUB_NICK_MAX + 1];
    memcpy(want, m->nick, sizeof(want));
    if (nick_pick(h, m->room, want, nick) < 0)
        return -1;
    nick_index_remove(h, m->room, m);
    memcpy(m->nick, nick, sizeof(nick));
    nick_index_add(h, m->room, m);
    return 0;
}

int hub_nick_taken(struct hub *h, const struct hub_room *r, const char *nick)
{
    return nick_index_find(h, r, nick) != NULL;
}

uint64_t hub_nick_probes(const struct hub *h)
{
    return h->probes;
}

void nick_suffixes_clear(struct hub_room *r)
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

/* A roster entry the hub owns (no sink) called nick in r, or NULL. */
struct hub_member *nick_index_find_owned(struct hub *h, const struct hub_room *r, const char *nick)
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
