/* api: the /api endpoint. Checks who calls (--api-allow, the key, a bounded
 * per-address table of failures), routes the path, reads query and body, and
 * answers JSON built here (history events go out as the very bytes members
 * got). A post waits for its number from the broker, and in a cluster a read
 * (the room list, a room this node does not follow) for the broker's answer:
 * it may come after the request handler returns (conn_http_defer), and the
 * wait outlives the connection if need be, since the broker reports exactly
 * once. App layer: no sockets, no blocking; never logs the key or the
 * Authorization header. */
#include "api.h"

#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_body.h"
#include "command.h"
#include "hub.h"
#include "json.h"
#include "log.h"
#include "ratelimit.h"

#define AUTH_SETS 256            /* the failure table: sets of AUTH_WAYS addresses, */
#define AUTH_WAYS 4              /* the least recently failed one replaced */
#define LIST_DEFAULT 100         /* rooms or messages in one answer, unless ?limit= */
#define LIST_MAX 1000
#define MEMBERS_MAX 10000        /* members listed for one room */

/* An address that sent a wrong key recently. */
struct auth_entry {
    uint8_t addr[16];            /* IPv4, or the /64 of an IPv6 address */
    uint8_t used;
    uint32_t last_ms;
    struct ratelimit_bucket bucket;
};

struct api {
    struct endpoint ep;
    struct api_config cfg;
    struct chat *chat;
    uint8_t key_hash[32];
    uint64_t seed;               /* random: which set an address falls in */
    struct ratelimit_rule auth_rule;
    struct auth_entry auth[AUTH_SETS][AUTH_WAYS];
    struct buf out;              /* the answer being built */
    int out_failed;
    uint64_t requests, refused, throttled, posts, disconnects;
};

/* A post waiting for its number, or a read for the cluster's answer. Freed
 * when the broker has reported; c is NULL once nobody waits for the answer
 * any more. */
struct api_wait {
    struct api *api;
    struct conn *c;
    uint8_t keep_alive;
    uint8_t handling;            /* still inside the request handler */
    uint8_t reported;            /* the broker has reported */
    uint8_t messages;            /* a read: of the room's messages (else of its members) */
    uint64_t since, limit;       /* a read of messages */
    const char *late;            /* what the 504 says */
    char room[HUB_ROOM_MAX + 1];
};

/* ---- answers ---- */

static void out_raw(struct api *a, const char *s)
{
    a->out_failed |= json_append_raw(&a->out, s) < 0;
}

static void out_string(struct api *a, const char *s, size_t n)
{
    a->out_failed |= json_append_string(&a->out, s, n) < 0;
}

static void out_cstring(struct api *a, const char *s)
{
    out_string(a, s, strlen(s));
}

static void out_u64(struct api *a, uint64_t v)
{
    a->out_failed |= json_append_u64(&a->out, v) < 0;
}

/* A JSON string, or null when s is NULL. */
static void out_nullable(struct api *a, const char *s)
{
    if (s)
        out_cstring(a, s);
    else
        out_raw(a, "null");
}

static void out_begin(struct api *a)
{
    a->out.len = 0;
    a->out_failed = 0;
}

/* Sends what was built as a JSON answer; the status and extra headers are the caller's. */
static void send_json(struct api *a, struct conn *c, int status, const char *headers, int keep_alive)
{
    char hdrs[256];
    if (a->out_failed) {
        status = 503;
        out_begin(a);
        out_raw(a, "{\"error\":{\"code\":\"unavailable\",\"message\":\"out of memory\"}}");
        headers = NULL;
    }
    snprintf(hdrs, sizeof(hdrs), "Content-Type: application/json\r\nCache-Control: no-store\r\n%s",
             headers ? headers : "");
    out_raw(a, "\n");
    conn_http_head(c, status, hdrs, a->out.len, a->out.data, keep_alive);
    if (a->out.len > 64 * 1024)
        buf_free(&a->out);   /* a big list is not kept between answers */
}

static void send_error(struct api *a, struct conn *c, int status, const char *code, const char *message,
                       const char *headers, int keep_alive)
{
    out_begin(a);
    out_raw(a, "{\"error\":{\"code\":");
    out_cstring(a, code);
    out_raw(a, ",\"message\":");
    out_cstring(a, message);
    out_raw(a, "}}");
    log_msg(LOG_DEBUG, "api refuse status=%d code=%s", status, code);
    send_json(a, c, status, headers, keep_alive);
}

/* ---- waiting for the broker ---- */

/* The broker reported on w: the connection still waiting for the answer
 * (taken off w), or NULL. */
static struct conn *wait_reported(struct api_wait *w)
{
    struct conn *c = w->c;
    w->reported = 1;
    w->c = NULL;
    return c;
}

/* Frees w once the broker has reported, unless the request handler that
 * asked is still running (it frees w then, in wait_for_report). */
static void wait_release(struct api_wait *w)
{
    if (!w->handling)
        free(w);
}

/* The request handler is done asking: the answer comes when the broker
 * reports on w, within --api-timeout (else 504), unless it came already. */
static void wait_for_report(struct api *a, struct conn *c, struct api_wait *w)
{
    w->handling = 0;
    if (w->reported)
        free(w);
    else
        conn_http_defer(c, &a->ep, w, a->cfg.wait_ms);
}

/* The cluster could not be read: 503, to be tried again. */
static void send_unreadable(struct api *a, struct conn *c, int keep)
{
    send_error(a, c, 503, "unavailable", "the cluster could not be read now: try again", "Retry-After: 1\r\n", keep);
}

/* A read of the cluster about to ask the broker, or NULL (503 sent) when out of memory. */
static struct api_wait *read_wait(struct api *a, struct conn *c, int keep)
{
    struct api_wait *w = malloc(sizeof(*w));
    if (!w) {
        send_error(a, c, 503, "unavailable", "out of memory", NULL, keep);
        return NULL;
    }
    *w = (struct api_wait){.api = a, .c = c, .keep_alive = (uint8_t)keep, .handling = 1,
                           .late = "the cluster did not answer in time: try again"};
    return w;
}

/* After the broker was asked for read w (rc: 0 asked, 1 the hub holds it
 * all, -1 it cannot now): returns 1 when the answer is sent, now or later,
 * or 0 (w freed) for the caller to answer from the hub. */
static int read_asked(struct api *a, struct conn *c, struct api_wait *w, int rc, int keep)
{
    if (rc == 0) {
        wait_for_report(a, c, w);
        return 1;
    }
    free(w);
    if (rc > 0)
        return 0;
    send_unreadable(a, c, keep);
    return 1;
}

/* ---- who calls ---- */

/* The address a failure is counted against: IPv4, or an IPv6 /64. */
static int peer_key(struct conn *c, struct sockaddr_storage *ss, uint8_t key[16])
{
    socklen_t len;
    memset(key, 0, 16);
    if (conn_peer(c, ss, &len) < 0)
        return -1;
    if (ss->ss_family == AF_INET) {
        memcpy(key, &((struct sockaddr_in *)ss)->sin_addr, 4);
        return 0;
    }
    if (ss->ss_family != AF_INET6)
        return -1;
    const uint8_t *a6 = ((struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a6, mapped, 12) == 0)
        memcpy(key, a6 + 12, 4);
    else {
        memcpy(key, a6, 8);
        key[15] = 6;   /* never equal to an IPv4 key */
    }
    return 0;
}

static struct auth_entry *auth_set(struct api *a, const uint8_t key[16])
{
    uint64_t h = a->seed;
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    return a->auth[(h * 0x9e3779b97f4a7c15ull) >> 56 & (AUTH_SETS - 1)];
}

/* The entry of key, or (create) a new one in place of the least recently
 * failed of its set, or NULL. */
static struct auth_entry *auth_find(struct api *a, const uint8_t key[16], int create, uint32_t now)
{
    struct auth_entry *set = auth_set(a, key), *old = &set[0];
    for (int i = 0; i < AUTH_WAYS; i++) {
        if (set[i].used && memcmp(set[i].addr, key, 16) == 0)
            return &set[i];
        if (!set[i].used || (old->used && (int32_t)(set[i].last_ms - old->last_ms) < 0))
            old = &set[i];
    }
    if (!create)
        return NULL;
    memcpy(old->addr, key, 16);
    old->used = 1;
    ratelimit_bucket_init(&old->bucket, &a->auth_rule, now);
    return old;
}

/* True when the request carries the key: exactly one Authorization header,
 * "Bearer KEY", compared as SHA-256 digests in constant time. */
static int key_ok(const struct api *a, const struct http_request *req)
{
    const struct http_slice *v = http_header_get(req, "Authorization");
    if (!v || http_header_count(req, "Authorization") != 1 || v->n < 7 || strncasecmp(v->p, "Bearer ", 7) != 0)
        return 0;
    size_t i = 7;
    while (i < v->n && v->p[i] == ' ')
        i++;
    uint8_t h[32];
    unsigned hl = 0;
    if (!EVP_Digest(v->p + i, v->n - i, h, &hl, EVP_sha256(), NULL) || hl != sizeof(h))
        return 0;
    return CRYPTO_memcmp(h, a->key_hash, sizeof(h)) == 0;
}

/* Lets the request on, or answers 403, 429 or 401. An address with recent
 * failures spends a token on every request and is refused with 429 (its key
 * not even looked at) while it has none; a right key forgets its failures. */
static int admitted(struct api *a, struct conn *c, const struct http_request *req, int keep_alive)
{
    struct sockaddr_storage ss;
    uint8_t key[16];
    if (peer_key(c, &ss, key) < 0 ||
        (a->cfg.n_allow && !cidr_match_any(a->cfg.allow, a->cfg.n_allow, (struct sockaddr *)&ss))) {
        send_error(a, c, 403, "forbidden", "this address may not use the API (see --api-allow)", NULL, keep_alive);
        return 0;
    }
    uint32_t now = (uint32_t)conn_now_ms(c);
    struct auth_entry *e = auth_find(a, key, 0, now);
    if (e && !ratelimit_bucket_take(&e->bucket, &a->auth_rule, 1, now)) {
        e->last_ms = now;   /* still failing: kept ahead of quieter addresses */
        a->throttled++;
        send_error(a, c, 429, "throttled", "too many wrong API keys from this address: wait and retry",
                   "Retry-After: 1\r\n", keep_alive);
        return 0;
    }
    if (key_ok(a, req)) {
        if (e)
            e->used = 0;
        return 1;
    }
    a->refused++;
    if (!e && (e = auth_find(a, key, 1, now)))
        ratelimit_bucket_take(&e->bucket, &a->auth_rule, 1, now);
    if (e)
        e->last_ms = now;
    send_error(a, c, 401, "unauthorized", "a valid API key is needed: Authorization: Bearer KEY",
               "WWW-Authenticate: Bearer realm=\"wshub\"\r\n", keep_alive);
    return 0;
}

/* ---- query ---- */

/* Reads ?name= as a number from lo to hi, else def. Returns 0, or -1 (malformed). */
static int query_number(const struct http_request *req, const char *name, uint64_t lo, uint64_t hi, uint64_t def,
                        uint64_t *out)
{
    char v[24], *end;
    long n = http_query_get(req->query, name, v, sizeof(v));
    *out = def;
    if (n == -1)
        return 0;
    if (n <= 0 || v[0] < '0' || v[0] > '9')
        return -1;
    errno = 0;
    *out = strtoull(v, &end, 10);
    return errno || *end || *out < lo || *out > hi ? -1 : 0;
}

/* Reads ?name= as a room name or the start of one (empty when absent).
 * Returns 0, or -1 when malformed. */
static int query_room(const struct http_request *req, const char *name, char out[HUB_ROOM_MAX + 1])
{
    long n = http_query_get(req->query, name, out, HUB_ROOM_MAX + 1);
    if (n == -1) {
        out[0] = '\0';
        return 0;
    }
    return n >= 0 && (n == 0 || command_room_valid(out, (size_t)n)) ? 0 : -1;
}

/* ---- GET /api/rooms ---- */

struct room_list {
    const char *prefix, *after;
    size_t plen, n, cap;
    const struct hub_room **v;
    int failed;
};

static void collect_room(void *ctx, const struct hub_room *room)
{
    struct room_list *l = ctx;
    const char *name = hub_room_name(room);
    if (strncmp(name, l->prefix, l->plen) != 0 || strcmp(name, l->after) <= 0)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        const struct hub_room **v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            l->failed = 1;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = room;
}

static int by_name(const void *x, const void *y)
{
    return strcmp(hub_room_name(*(const struct hub_room *const *)x), hub_room_name(*(const struct hub_room *const *)y));
}

/* ,"seq":S,"epoch":"E" */
static void out_seq_epoch(struct api *a, uint64_t seq, const char *epoch)
{
    out_raw(a, ",\"seq\":");
    out_u64(a, seq);
    out_raw(a, ",\"epoch\":");
    out_cstring(a, epoch);
}

/* One room of a list: {"room":R,"count":K,"seq":S,"epoch":"E"}, after a comma unless first. */
static void out_room_entry(struct api *a, int first, const char *room, uint64_t count, uint64_t seq,
                           const char *epoch)
{
    out_raw(a, first ? "{\"room\":" : ",{\"room\":");
    out_cstring(a, room);
    out_raw(a, ",\"count\":");
    out_u64(a, count);
    out_seq_epoch(a, seq, epoch);
    out_raw(a, "}");
}

/* The end of a list: ],"next":N} (null when no room is left). */
static void out_rooms_end(struct api *a, const char *next)
{
    out_raw(a, "],\"next\":");
    out_nullable(a, next);
    out_raw(a, "}");
}

/* The rooms this node's hub keeps (one node: every room there is). */
static void list_hub_rooms(struct api *a, struct conn *c, const char *prefix, const char *after, uint64_t limit,
                           int keep)
{
    struct room_list l = {.prefix = prefix, .after = after, .plen = strlen(prefix)};
    hub_each_room(chat_hub(a->chat), collect_room, &l);
    if (l.failed) {
        free(l.v);
        send_error(a, c, 503, "unavailable", "out of memory", NULL, keep);
        return;
    }
    if (l.n)
        qsort(l.v, l.n, sizeof(*l.v), by_name);
    size_t shown = l.n < limit ? l.n : (size_t)limit;
    out_begin(a);
    out_raw(a, "{\"rooms\":[");
    for (size_t i = 0; i < shown; i++)
        out_room_entry(a, i == 0, hub_room_name(l.v[i]), hub_room_count(l.v[i]), hub_room_seq(l.v[i]),
                       hub_room_epoch(l.v[i]));
    out_rooms_end(a, shown < l.n ? hub_room_name(l.v[shown - 1]) : NULL);
    free(l.v);
    send_json(a, c, 200, NULL, keep);
}

/* The cluster's page l, as list_hub_rooms writes the hub's rooms. */
static void show_list(struct api *a, struct conn *c, const struct broker_room_list *l, int keep)
{
    out_begin(a);
    out_raw(a, "{\"rooms\":[");
    for (size_t i = 0; i < l->n; i++)
        out_room_entry(a, i == 0, l->rooms[i].room, l->rooms[i].count, l->rooms[i].seq, l->rooms[i].epoch);
    out_rooms_end(a, l->next);
    send_json(a, c, 200, NULL, keep);
}

/* The broker's answer to a room list: answers whoever still waits. */
static void list_read(void *arg, int status, const struct broker_room_list *l)
{
    struct api_wait *w = arg;
    struct conn *c = wait_reported(w);
    if (c && status == 0)
        show_list(w->api, c, l, w->keep_alive);
    else if (c)
        send_unreadable(w->api, c, w->keep_alive);
    wait_release(w);
}

static void list_rooms(struct api *a, struct conn *c, const struct http_request *req, int keep)
{
    char prefix[HUB_ROOM_MAX + 1], after[HUB_ROOM_MAX + 1];
    uint64_t limit;
    if (query_room(req, "prefix", prefix) < 0 || query_room(req, "cursor", after) < 0 ||
        query_number(req, "limit", 1, LIST_MAX, LIST_DEFAULT, &limit) < 0) {
        send_error(a, c, 400, "invalid_query", "prefix and cursor are room names (or their starts), limit 1 to 1000",
                   NULL, keep);
        return;
    }
    struct api_wait *w = read_wait(a, c, keep);
    if (w && !read_asked(a, c, w, chat_room_list(a->chat, prefix, after, (size_t)limit, list_read, w), keep))
        list_hub_rooms(a, c, prefix, after, limit, keep);
}

/* ---- GET /api/rooms/ROOM and its messages ---- */

static void show_room(struct api *a, struct conn *c, const struct hub_room *room, int keep)
{
    size_t count = hub_room_count(room), listed = 0;
    out_begin(a);
    out_raw(a, "{\"room\":");
    out_cstring(a, hub_room_name(room));
    out_raw(a, ",\"count\":");
    out_u64(a, count);
    out_seq_epoch(a, hub_room_seq(room), hub_room_epoch(room));
    out_raw(a, ",\"members\":[");
    for (size_t i = 0; i < hub_room_entries(room) && listed < MEMBERS_MAX; i++) {
        const struct hub_member *m = hub_room_member(room, i);
        if (m->pending)
            continue;   /* not in the room's order yet */
        const char *user = chat_member_user(m);
        out_raw(a, listed++ ? ",{\"nick\":" : "{\"nick\":");
        out_cstring(a, m->nick);
        out_raw(a, ",\"user\":");
        out_nullable(a, user);
        out_raw(a, "}");
    }
    out_raw(a, listed < count ? "],\"truncated\":true}" : "]}");
    send_json(a, c, 200, NULL, keep);
}

/* The index of the first history event with seq > since (history seqs rise). */
static size_t history_after(const struct hub_room *room, uint64_t since)
{
    size_t lo = 0, hi = hub_room_history_count(room);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (hub_room_history_seq(room, mid) <= since)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void show_messages(struct api *a, struct conn *c, uint64_t since, uint64_t limit,
                          const struct hub_room *room, int keep)
{
    size_t count = hub_room_history_count(room), first = history_after(room, since);
    size_t end = count - first > limit ? first + (size_t)limit : count;
    /* Messages after since that the history no longer holds: a gap before the first. */
    uint64_t oldest = first < count ? hub_room_history_seq(room, first) : hub_room_seq(room) + 1;
    out_begin(a);
    out_raw(a, "{\"room\":");
    out_cstring(a, hub_room_name(room));
    out_seq_epoch(a, hub_room_seq(room), hub_room_epoch(room));
    out_raw(a, ",\"messages\":[");
    for (size_t i = first; i < end; i++) {
        size_t len;
        const uint8_t *ev = hub_room_history(room, i, &len);
        if (i > first)
            out_raw(a, ",");
        a->out_failed |= buf_append(&a->out, ev, len) < 0;
    }
    out_raw(a, "],\"more\":");
    out_raw(a, end < count ? "true" : "false");
    out_raw(a, ",\"gap\":");
    out_raw(a, since < hub_room_seq(room) && oldest > since + 1 ? "true" : "false");
    out_raw(a, "}");
    send_json(a, c, 200, NULL, keep);
}

/* ---- the same, read from the cluster (a room this node does not follow) ---- */

/* {"room":R,"count":K,"seq":S,"epoch":E,"members":[...]} or the messages
 * after since, from the cluster's state st, as show_room and show_messages. */
static void show_state(struct api *a, struct conn *c, const struct api_wait *w, const struct broker_room_state *st)
{
    out_begin(a);
    out_raw(a, "{\"room\":");
    out_cstring(a, w->room);
    if (!w->messages) {
        out_raw(a, ",\"count\":");
        out_u64(a, st->nmembers);
    }
    out_seq_epoch(a, st->seq, st->epoch);
    if (!w->messages) {
        size_t shown = st->nmembers < MEMBERS_MAX ? st->nmembers : MEMBERS_MAX;
        out_raw(a, ",\"members\":[");
        for (size_t i = 0; i < shown; i++) {
            out_raw(a, i ? ",{\"nick\":" : "{\"nick\":");
            out_cstring(a, st->members[i].nick);
            out_raw(a, ",\"user\":");
            out_nullable(a, st->members[i].user);
            out_raw(a, "}");
        }
        out_raw(a, shown < st->nmembers ? "],\"truncated\":true}" : "]}");
        send_json(a, c, 200, NULL, w->keep_alive);
        return;
    }
    size_t shown = st->nmessages < w->limit ? st->nmessages : (size_t)w->limit;
    char tail[32];
    out_raw(a, ",\"messages\":[");
    for (size_t i = 0; i < shown; i++) {   /* each as members receive it: its JSON, then its seq */
        if (i)
            out_raw(a, ",");
        a->out_failed |= buf_append(&a->out, st->messages[i].data, st->messages[i].len) < 0;
        snprintf(tail, sizeof(tail), ",\"seq\":%llu}", (unsigned long long)st->messages[i].seq);
        out_raw(a, tail);
    }
    out_raw(a, "],\"more\":");
    out_raw(a, shown < st->nmessages ? "true" : "false");
    out_raw(a, ",\"gap\":");
    uint64_t first = st->nmessages ? st->messages[0].seq : st->oldest ? st->oldest : st->seq + 1;
    out_raw(a, w->since < st->seq && first > w->since + 1 ? "true" : "false");
    out_raw(a, "}");
    send_json(a, c, 200, NULL, w->keep_alive);
}

/* The broker's answer to a read: answers whoever still waits. */
static void state_read(void *arg, int status, const struct broker_room_state *st)
{
    struct api_wait *w = arg;
    struct conn *c = wait_reported(w);
    if (c && status == 0)
        show_state(w->api, c, w, st);
    else if (c && status == 404)
        send_error(w->api, c, 404, "room_not_found", "no such room in the cluster", NULL, w->keep_alive);
    else if (c)
        send_unreadable(w->api, c, w->keep_alive);
    wait_release(w);
}

/* Reads room from the cluster when the broker keeps state of its own (a
 * cluster): answers now or later, and returns 1; returns 0 when the hub
 * holds it all (one node) for the caller to answer. */
static int read_cluster(struct api *a, struct conn *c, const char *room, int messages, uint64_t since,
                        uint64_t limit, int keep)
{
    struct api_wait *w = read_wait(a, c, keep);
    if (!w)
        return 1;
    w->messages = (uint8_t)messages;
    w->since = since;
    w->limit = limit;
    snprintf(w->room, sizeof(w->room), "%s", room);
    return read_asked(a, c, w, chat_room_state(a->chat, room, since, messages ? (size_t)limit + 1 : 0, state_read, w),
                      keep);
}

/* ---- POST /api/rooms/ROOM/messages ---- */

/* The broker's report on a post: answers whoever still waits. */
static void post_numbered(void *arg, int status, uint64_t seq, const char *epoch)
{
    struct api_wait *w = arg;
    struct api *a = w->api;
    struct conn *c = wait_reported(w);
    if (c && status == 0) {
        out_begin(a);
        out_raw(a, "{\"seq\":");
        out_u64(a, seq);
        out_raw(a, ",\"epoch\":");
        out_cstring(a, epoch);
        out_raw(a, "}");
        send_json(a, c, 200, NULL, w->keep_alive);
    } else if (c && status == 404) {
        send_error(a, c, 404, "room_not_found", "no such room: it has no members and no history here", NULL,
                   w->keep_alive);
    } else if (c) {
        send_error(a, c, 503, "unavailable", "the message could not be posted now: try again", "Retry-After: 1\r\n",
                   w->keep_alive);
    }
    wait_release(w);
}

/* True when the request says its body is JSON (parameters such as charset allowed). */
static int is_json(const struct http_request *req)
{
    const struct http_slice *v = http_header_get(req, "Content-Type");
    if (!v)
        return 0;
    size_t n = 0;
    while (n < v->n && v->p[n] != ';' && v->p[n] != ' ' && v->p[n] != '\t')
        n++;
    return http_slice_ieq((struct http_slice){v->p, n}, "application/json");
}

/* True when the request's body is here (or it has none); otherwise asks for
 * it to be read, and the request comes back with it. */
static int have_body(struct conn *c, const struct http_request *req)
{
    uint64_t n = 0;
    http_content_length(req, &n);
    if (n && !req->body.p) {
        conn_http_read_body(c, (size_t)n);
        return 0;
    }
    return 1;
}

/* The body as bytes for the JSON parser ("" when there is none). */
static const char *body_of(const struct http_request *req)
{
    return req->body.p ? req->body.p : "";
}

static void post_message(struct api *a, struct conn *c, const struct http_request *req, const char *room, int keep)
{
    struct api_post post;
    struct api_error err;
    if (!have_body(c, req))
        return;
    if (api_body_post(body_of(req), req->body.n, a->cfg.max_text, &post, &err)) {
        send_error(a, c, err.status, err.code, err.message, NULL, keep);
        return;
    }
    struct api_wait *w = malloc(sizeof(*w));
    if (!w) {
        api_post_clear(&post);
        send_error(a, c, 503, "unavailable", "out of memory", NULL, keep);
        return;
    }
    *w = (struct api_wait){.api = a, .c = c, .keep_alive = (uint8_t)keep, .handling = 1,
                           .late = "the message was not numbered in time: it may still appear in the room"};
    int rc = chat_post(a->chat, room, post.nick, post.text, post.text_len, post_numbered, w);
    api_post_clear(&post);
    if (rc < 0) {
        free(w);
        send_error(a, c, 503, "unavailable", "the message could not be posted now: try again", "Retry-After: 1\r\n",
                   keep);
        return;
    }
    a->posts++;
    wait_for_report(a, c, w);
}

/* The connection left before the broker reported on its post or read. */
static void api_gone(void *ctx, struct conn *c)
{
    (void)ctx;
    struct api_wait *w = conn_data(c);
    if (w)
        w->c = NULL;
}

/* The broker did not answer in time (a post may still be numbered later). */
static void api_expired(void *ctx, struct conn *c)
{
    struct api_wait *w = conn_data(c);
    w->c = NULL;
    send_error(ctx, c, 504, "timeout", w->late, NULL, w->keep_alive);
}

/* ---- POST /api/disconnect ---- */

static void disconnect(struct api *a, struct conn *c, const struct http_request *req, int keep)
{
    struct api_disconnect d;
    struct api_error err;
    if (!have_body(c, req))
        return;
    if (api_body_disconnect(body_of(req), req->body.n, &d, &err)) {
        send_error(a, c, err.status, err.code, err.message, NULL, keep);
        return;
    }
    size_t closed = d.by_user ? chat_disconnect_user(a->chat, d.user, d.reason)
                              : chat_disconnect_nick(a->chat, d.room, d.nick, d.reason) == 0;
    a->disconnects += closed;
    log_msg(LOG_INFO, "api disconnect by=%s closed=%zu", d.by_user ? "user" : "nick", closed);
    out_begin(a);
    out_raw(a, "{\"closed\":");
    out_u64(a, closed);
    out_raw(a, "}");
    send_json(a, c, 200, NULL, keep);
}

/* ---- routing ---- */

/* Takes the next "/segment" off *rest into *seg. Returns 0, or -1 when none is left. */
static int next_segment(struct http_slice *rest, struct http_slice *seg)
{
    if (rest->n == 0 || rest->p[0] != '/')
        return -1;
    size_t n = 1;
    while (n < rest->n && rest->p[n] != '/')
        n++;
    *seg = (struct http_slice){rest->p + 1, n - 1};
    *rest = (struct http_slice){rest->p + n, rest->n - n};
    return 0;
}

/* Answers 405 unless the method is one of `allow` ("GET, HEAD" or "POST"
 * or both); HEAD counts as GET. Returns 1 when allowed. */
static int method_allowed(struct api *a, struct conn *c, const struct http_request *req, const char *allow,
                          int keep)
{
    int get = http_slice_eq(req->method, "GET") || http_slice_eq(req->method, "HEAD");
    int post = http_slice_eq(req->method, "POST");
    if ((get && strstr(allow, "GET")) || (post && strstr(allow, "POST")))
        return 1;
    char hdr[64], msg[64];
    snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
    snprintf(msg, sizeof(msg), "this path takes %s", allow);
    send_error(a, c, 405, "method_not_allowed", msg, hdr, keep);
    return 0;
}

/* A POST's body must be JSON. Returns 1 when it says so. */
static int json_body(struct api *a, struct conn *c, const struct http_request *req, int keep)
{
    if (is_json(req))
        return 1;
    send_error(a, c, 415, "unsupported_media_type", "the body must be JSON: Content-Type: application/json", NULL,
               keep);
    return 0;
}

/* /rooms/ROOM[/messages] */
static void room_paths(struct api *a, struct conn *c, const struct http_request *req, struct http_slice name,
                       struct http_slice rest, int keep)
{
    struct http_slice seg = {0};
    int messages = next_segment(&rest, &seg) == 0 && http_slice_eq(seg, "messages");
    if ((seg.p && !messages) || rest.n) {
        send_error(a, c, 404, "not_found", "no such API path", NULL, keep);
        return;
    }
    char room[HUB_ROOM_MAX + 1];
    if (!command_room_valid(name.p, name.n)) {
        send_error(a, c, 404, "room_not_found", "not a room name: 1 to 64 of A-Z a-z 0-9 _ - .", NULL, keep);
        return;
    }
    memcpy(room, name.p, name.n);
    room[name.n] = '\0';
    if (!method_allowed(a, c, req, messages ? "GET, HEAD, POST" : "GET, HEAD", keep))
        return;
    if (http_slice_eq(req->method, "POST")) {
        if (json_body(a, c, req, keep))
            post_message(a, c, req, room, keep);
        return;
    }
    uint64_t since = 0, limit = LIST_DEFAULT;
    if (messages && (query_number(req, "since", 0, UINT64_MAX, 0, &since) < 0 ||
                     query_number(req, "limit", 1, LIST_MAX, LIST_DEFAULT, &limit) < 0)) {
        send_error(a, c, 400, "invalid_query", "since is a message seq, limit 1 to 1000", NULL, keep);
        return;
    }
    const struct hub_room *r = hub_find(chat_hub(a->chat), room);
    int followed = r && hub_room_local(r) > 0;   /* here the hub's roster and history are the cluster's */
    if (!followed && read_cluster(a, c, room, messages, since, limit, keep))
        return;
    if (!r)
        send_error(a, c, 404, "room_not_found", "no such room: it has no members and no history here", NULL, keep);
    else if (messages)
        show_messages(a, c, since, limit, r, keep);
    else
        show_room(a, c, r, keep);
}

static void api_request(void *ctx, struct conn *c, const struct http_request *req, struct http_slice subpath)
{
    struct api *a = ctx;
    uint64_t n;
    const char *why;
    int framing = http_body_length(req, a->cfg.max_body, &n, &why);
    if (!req->body.p)
        a->requests++;   /* not again when it comes back with its body */
    if (framing) {
        send_error(a, c, framing, framing == 413 ? "too_large" : framing == 411 ? "length_required" : "bad_request",
                   why, NULL, 0);
        return;
    }
    int keep = http_keep_alive(req) && (n == 0 || req->body.p);   /* a body left unread ends the connection */
    if (!admitted(a, c, req, keep))
        return;
    struct http_slice rest = subpath, first, name;
    if (next_segment(&rest, &first) < 0) {
        send_error(a, c, 404, "not_found", "no such API path", NULL, keep);
    } else if (http_slice_eq(first, "rooms") && rest.n == 0) {
        if (method_allowed(a, c, req, "GET, HEAD", keep))
            list_rooms(a, c, req, keep);
    } else if (http_slice_eq(first, "rooms") && next_segment(&rest, &name) == 0) {
        room_paths(a, c, req, name, rest, keep);
    } else if (http_slice_eq(first, "disconnect") && rest.n == 0) {
        if (method_allowed(a, c, req, "POST", keep) && json_body(a, c, req, keep))
            disconnect(a, c, req, keep);
    } else {
        send_error(a, c, 404, "not_found", "no such API path", NULL, keep);
    }
}

/* ---- setup ---- */

struct api *api_new(const struct api_config *cfg, struct chat *chat)
{
    struct api *a = calloc(1, sizeof(*a));
    unsigned hl = 0;
    if (!a || RAND_bytes((unsigned char *)&a->seed, sizeof(a->seed)) != 1 ||
        !EVP_Digest(cfg->key, cfg->key_len, a->key_hash, &hl, EVP_sha256(), NULL)) {
        free(a);
        return NULL;
    }
    a->cfg = *cfg;
    a->cfg.key = NULL;   /* only its digest is kept */
    a->chat = chat;
    a->auth_rule = (struct ratelimit_rule){API_AUTH_RATE, API_AUTH_BURST};
    a->ep = (struct endpoint){
        .name = "api",
        .ctx = a,
        .request = api_request,
        .expired = api_expired,
        .close = api_gone,
    };
    return a;
}

void api_free(struct api *a)
{
    if (!a)
        return;
    buf_free(&a->out);
    OPENSSL_cleanse(a->key_hash, sizeof(a->key_hash));
    free(a);
}

const struct endpoint *api_endpoint(const struct api *a)
{
    return &a->ep;
}

void api_metrics(struct api *a, struct metrics *m)
{
    metrics_value(m, "api_requests", "wshub_api_requests_total", METRICS_COUNTER, "Requests to the HTTP API.",
                  a->requests);
    metrics_value(m, "api_refused", "wshub_api_refused_total", METRICS_COUNTER,
                  "API requests refused for a missing or wrong key.", a->refused);
    metrics_value(m, "api_throttled", "wshub_api_throttled_total", METRICS_COUNTER,
                  "API requests refused with 429 after too many wrong keys from their address.", a->throttled);
    metrics_value(m, "api_posts", "wshub_api_posts_total", METRICS_COUNTER, "Messages posted through the API.",
                  a->posts);
    metrics_value(m, "api_disconnects", "wshub_api_disconnects_total", METRICS_COUNTER,
                  "Connections closed through the API.", a->disconnects);
}
