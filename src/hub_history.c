/* hub_history: each room's history, a ring of shared frames bounded in
 * events and bytes, and the hub-wide byte bound, kept by dropping the oldest
 * events of the rooms least recently pushed to. A history event is a
 * reference to the frame the broadcast sent, never a copy. */
#include <stdlib.h>

#include "hub_priv.h"

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
void history_clear(struct hub *h, struct hub_room *r)
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
            history_clear(h, r);
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

size_t hub_history_bytes(const struct hub *h)
{
    return h->hist_bytes;
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

uint64_t hub_room_history_seq(const struct hub_room *room, size_t i)
{
    return hist_at(room, i)->seq;
}
