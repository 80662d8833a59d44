/* test_hub: unit tests for src/hub.c, rooms, members, nicks, history and
 * broadcast. A test sink stands in for a connection: it keeps its own
 * reference to every frame queued on it, reports a settable backlog (plus what
 * it was sent and never flushed), can refuse output, and its cut callback only
 * records the cut, as the session layer's does: it never calls into the hub.
 * Covers nick choice (suffix counters, guests, 32-byte limit at code point
 * boundaries) and its cost per join, room limits, shared-frame reference
 * counts, history bounded in events and bytes (per room and across rooms),
 * sequence numbers, LRU eviction of empty rooms and slow-consumer cuts. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "command.h"
#include "hub.h"
#include "utf8.h"

/* chat validates nicks and room names with command.h and stores them in the hub */
_Static_assert(HUB_NICK_MAX == COMMAND_NICK_MAX, "hub and protocol nick limits differ");
_Static_assert(HUB_ROOM_MAX == COMMAND_ROOM_MAX, "hub and protocol room limits differ");

#define MAX_SINKS 1024   /* sinks a test may join */
#define SEEN_MAX 16      /* sinks whose frame counts a cut records */
#define MAX_FRAMES 64

struct tsink {
    struct hub_member m;
    struct sbuf *frames[MAX_FRAMES];   /* one reference each, taken by send */
    size_t nframes;
    size_t queued;                     /* bytes sent to it (never flushed) */
    size_t backlog;                    /* extra backlog it reports */
    size_t sends;                      /* calls of send, refused ones included */
    int refuse;                        /* send returns -1 */
    int cuts;
    struct hub_room *room_at_cut;
    size_t seen_at_cut[SEEN_MAX];      /* the first sinks' nframes when this one was cut */
};

/* The sink operations carry only the sink pointer, so the test state is global
 * (each test starts with hub_setup). */
static struct {
    struct hub *h;
    struct tsink *sinks[MAX_SINKS];
    size_t nsinks;
    struct tsink *cut_log[SEEN_MAX];
    size_t ncut;
} T;

static int t_send(void *sink, struct sbuf *frame)
{
    struct tsink *s = sink;
    s->sends++;
    if (s->refuse)
        return -1;
    ck_assert_msg(s->nframes < MAX_FRAMES, "test sink full");
    s->frames[s->nframes++] = sbuf_ref(frame);
    s->queued += frame->len;
    return 0;
}

static size_t t_backlog(void *sink)
{
    struct tsink *s = sink;
    return s->backlog + s->queued;
}

static struct sbuf *frame_new(size_t len, char fill)
{
    struct sbuf *f = sbuf_new(len);
    ck_assert_ptr_nonnull(f);
    memset(f->data, fill, len);
    return f;
}

/* Records the cut and what every other sink had been sent by then. */
static void t_cut(void *sink)
{
    struct tsink *s = sink;
    s->cuts++;
    s->room_at_cut = s->m.room;
    for (size_t i = 0; i < T.nsinks && i < SEEN_MAX; i++)
        s->seen_at_cut[i] = T.sinks[i]->nframes;
    ck_assert_uint_lt(T.ncut, SEEN_MAX);
    T.cut_log[T.ncut++] = s;
}

static const struct hub_sink_ops t_ops = {t_send, t_backlog, t_cut};

static void hub_setup_cfg(const struct hub_config *cfg)
{
    memset(&T, 0, sizeof(T));
    T.h = hub_new(cfg, &t_ops);
    ck_assert_ptr_nonnull(T.h);
}

static void hub_setup(size_t history, size_t max_rooms, size_t max_members, size_t max_backlog)
{
    struct hub_config cfg = {.history = history, .max_rooms = max_rooms, .max_members = max_members,
                             .max_backlog = max_backlog};
    hub_setup_cfg(&cfg);
}

static void track(struct tsink *s)
{
    for (size_t i = 0; i < T.nsinks; i++)
        if (T.sinks[i] == s)
            return;
    ck_assert_uint_lt(T.nsinks, MAX_SINKS);
    T.sinks[T.nsinks++] = s;
}

/* Joins s to room with nick want (NULL: guest) and asserts success. */
static struct hub_room *join(struct tsink *s, const char *room, const char *want)
{
    const char *reason = NULL;
    track(s);
    int rc = hub_join(T.h, &s->m, room, want, s, &reason);
    ck_assert_msg(rc == 0, "join %s as %s: %d (%s)", room, want ? want : "(guest)", rc,
                  reason ? reason : "");
    ck_assert_ptr_nonnull(s->m.room);
    ck_assert_ptr_eq(s->m.sink, s);
    ck_assert_int_eq(s->m.cut, 0);
    return s->m.room;
}

static void sink_release(struct tsink *s)
{
    for (size_t i = 0; i < s->nframes; i++)
        sbuf_unref(s->frames[i]);
    s->nframes = 0;
}

/* Every tracked member leaves, sinks drop their frames, the hub is freed. */
static void hub_finish(void)
{
    for (size_t i = 0; i < T.nsinks; i++)
        if (T.sinks[i]->m.room)
            hub_leave(T.h, &T.sinks[i]->m);
    for (size_t i = 0; i < T.nsinks; i++)
        sink_release(T.sinks[i]);
    hub_free(T.h);
    T.h = NULL;
}

static int in_room(const struct hub_room *r, const struct tsink *s)
{
    for (size_t i = 0; i < hub_room_count(r); i++)
        if (hub_room_member(r, i) == &s->m)
            return 1;
    return 0;
}

/* Every member's slot matches its index in the room. */
static void assert_slots(const struct hub_room *r)
{
    for (size_t i = 0; i < hub_room_count(r); i++) {
        const struct hub_member *m = hub_room_member(r, i);
        ck_assert_ptr_eq(m->room, r);
        ck_assert_uint_eq(m->slot, i);
    }
}

/* ---- rooms and members ---- */

START_TEST(join_creates_room)
{
    struct tsink a = {0}, b = {0}, c = {0};
    hub_setup(10, 100, 0, 1 << 20);
    ck_assert_uint_eq(hub_room_total(T.h), 0);

    struct hub_room *r = join(&a, "lobby", "alice");
    ck_assert_str_eq(hub_room_name(r), "lobby");
    ck_assert_uint_eq(hub_room_count(r), 1);
    ck_assert_uint_eq(hub_room_total(T.h), 1);
    ck_assert_ptr_eq(hub_room_member(r, 0), &a.m);
    ck_assert_str_eq(a.m.nick, "alice");
    ck_assert_uint_eq(hub_room_history_count(r), 0);

    ck_assert_ptr_eq(join(&b, "lobby", "bob"), r);
    ck_assert_uint_eq(hub_room_count(r), 2);
    ck_assert_uint_eq(hub_room_total(T.h), 1);

    struct hub_room *g = join(&c, "games", "carol");
    ck_assert_ptr_ne(g, r);
    ck_assert_str_eq(hub_room_name(g), "games");
    ck_assert_uint_eq(hub_room_count(g), 1);
    ck_assert_uint_eq(hub_room_count(r), 2);
    ck_assert_uint_eq(hub_room_total(T.h), 2);

    /* nothing is sent by join */
    ck_assert_uint_eq(a.nframes + b.nframes + c.nframes, 0);
    hub_finish();
}
END_TEST

START_TEST(room_names_are_exact)
{
    struct tsink a = {0}, b = {0}, c = {0};
    hub_setup(10, 100, 0, 1 << 20);
    struct hub_room *r1 = join(&a, "Lobby", "a");
    struct hub_room *r2 = join(&b, "lobby", "b");
    struct hub_room *r3 = join(&c, "lobby.", "c");
    ck_assert_ptr_ne(r1, r2);
    ck_assert_ptr_ne(r2, r3);
    ck_assert_uint_eq(hub_room_total(T.h), 3);
    /* the longest valid name (64 bytes) is kept whole */
    struct tsink d = {0};
    char name[HUB_ROOM_MAX + 1];
    memset(name, 'x', HUB_ROOM_MAX);
    name[HUB_ROOM_MAX] = '\0';
    ck_assert_str_eq(hub_room_name(join(&d, name, "d")), name);
    hub_finish();
}
END_TEST

START_TEST(members_and_leave)
{
    struct tsink s[4];
    memset(s, 0, sizeof(s));
    hub_setup(10, 100, 0, 1 << 20);
    const char *nicks[] = {"a", "b", "c", "d"};
    struct hub_room *r = NULL;
    for (int i = 0; i < 4; i++)
        r = join(&s[i], "room", nicks[i]);
    ck_assert_uint_eq(hub_room_count(r), 4);
    for (int i = 0; i < 4; i++)
        ck_assert(in_room(r, &s[i]));
    assert_slots(r);

    hub_leave(T.h, &s[1].m);   /* from the middle */
    ck_assert_ptr_null(s[1].m.room);
    ck_assert_uint_eq(hub_room_count(r), 3);
    ck_assert(!in_room(r, &s[1]));
    ck_assert(in_room(r, &s[0]) && in_room(r, &s[2]) && in_room(r, &s[3]));
    assert_slots(r);

    hub_leave(T.h, &s[1].m);   /* leaving twice is harmless */
    ck_assert_uint_eq(hub_room_count(r), 3);

    hub_leave(T.h, &s[3].m);   /* the last slot */
    hub_leave(T.h, &s[0].m);
    ck_assert_uint_eq(hub_room_count(r), 1);
    ck_assert_ptr_eq(hub_room_member(r, 0), &s[2].m);
    assert_slots(r);

    hub_leave(T.h, &s[2].m);
    ck_assert_uint_eq(hub_room_count(r), 0);
    ck_assert_uint_eq(hub_room_total(T.h), 1);   /* an emptied room is kept */

    /* rejoining finds the same room */
    ck_assert_ptr_eq(join(&s[0], "room", "a"), r);
    ck_assert_uint_eq(hub_room_count(r), 1);
    hub_finish();
}
END_TEST

START_TEST(many_rooms)
{
    /* More rooms than the initial hash table has buckets: all stay findable. */
    enum { N = 600 };
    static struct tsink s[N];
    static struct hub_room *rooms[N];
    memset(s, 0, sizeof(s));
    hub_setup(1, 10000, 0, 1 << 20);
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "room-%d", i);
        rooms[i] = join(&s[i], name, "x");
        hub_leave(T.h, &s[i].m);
    }
    ck_assert_uint_eq(hub_room_total(T.h), N);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "room-%d", i);
        const char *reason;
        int rc = hub_join(T.h, &s[i].m, name, "y", &s[i], &reason);
        if (rc != 0 || s[i].m.room != rooms[i] || strcmp(hub_room_name(rooms[i]), name) != 0)
            ck_abort_msg("room %s not found again", name);
        hub_leave(T.h, &s[i].m);
    }
    ck_assert_uint_eq(hub_room_total(T.h), N);
    hub_free(T.h);
}
END_TEST

/* ---- nicks ---- */

START_TEST(guest_nicks)
{
    struct tsink s[5];
    memset(s, 0, sizeof(s));
    hub_setup(10, 100, 0, 1 << 20);
    join(&s[0], "r", NULL);
    join(&s[1], "r", NULL);
    ck_assert_str_eq(s[0].m.nick, "guest-1");
    ck_assert_str_eq(s[1].m.nick, "guest-2");
    /* a member who chose guest-3 is skipped over */
    join(&s[2], "r", "guest-3");
    ck_assert_str_eq(s[2].m.nick, "guest-3");
    join(&s[3], "r", NULL);
    ck_assert_str_ne(s[3].m.nick, "guest-3");
    ck_assert_str_eq(s[3].m.nick, "guest-4");
    join(&s[4], "other", NULL);
    ck_assert_str_eq(s[4].m.nick, "guest-5");
    hub_finish();
}
END_TEST

START_TEST(guest_skips_a_run_of_taken_nicks)
{
    struct tsink s[6];
    memset(s, 0, sizeof(s));
    hub_setup(10, 100, 0, 1 << 20);
    join(&s[0], "r", "guest-1");
    join(&s[1], "r", "guest-2");
    join(&s[2], "r", "guest-3");
    join(&s[3], "other", "guest-5");   /* taken in another room only */
    join(&s[4], "r", NULL);
    ck_assert_str_eq(s[4].m.nick, "guest-4");
    join(&s[5], "r", NULL);
    ck_assert_str_eq(s[5].m.nick, "guest-5");
    hub_finish();
}
END_TEST

START_TEST(taken_nick_gets_suffix)
{
    struct tsink s[8];
    memset(s, 0, sizeof(s));
    hub_setup(10, 100, 0, 1 << 20);
    join(&s[0], "r", "alice");
    join(&s[1], "r", "alice");
    join(&s[2], "r", "alice");
    ck_assert_str_eq(s[0].m.nick, "alice");
    ck_assert_str_eq(s[1].m.nick, "alice2");
    ck_assert_str_eq(s[2].m.nick, "alice3");
    /* the suffix counter goes on: a freed suffix is not searched for again */
    hub_leave(T.h, &s[1].m);
    join(&s[3], "r", "alice");
    ck_assert_str_eq(s[3].m.nick, "alice4");
    /* but a freed nick asked for by name is given */
    join(&s[4], "r", "alice2");
    ck_assert_str_eq(s[4].m.nick, "alice2");
    /* a nick that is itself suffixed has its own counter */
    join(&s[5], "r", "alice3");
    ck_assert_str_eq(s[5].m.nick, "alice32");
    /* the counter skips suffixes taken by name */
    join(&s[6], "r", "alice5");
    join(&s[7], "r", "alice");
    ck_assert_str_eq(s[6].m.nick, "alice5");
    ck_assert_str_eq(s[7].m.nick, "alice6");
    hub_finish();
}
END_TEST

START_TEST(same_nick_in_other_room_is_free)
{
    struct tsink a = {0}, b = {0}, c = {0};
    hub_setup(10, 100, 0, 1 << 20);
    join(&a, "r", "alice");
    join(&b, "r", "alice");
    join(&c, "elsewhere", "alice");
    ck_assert_str_eq(b.m.nick, "alice2");
    ck_assert_str_eq(c.m.nick, "alice");
    hub_finish();
}
END_TEST

START_TEST(suffix_counters_reset_when_room_empties)
{
    struct tsink s[3];
    memset(s, 0, sizeof(s));
    hub_setup(10, 100, 0, 1 << 20);
    for (int i = 0; i < 3; i++)
        join(&s[i], "r", "bob");
    ck_assert_str_eq(s[2].m.nick, "bob3");
    for (int i = 0; i < 3; i++)
        hub_leave(T.h, &s[i].m);
    join(&s[0], "r", "bob");
    join(&s[1], "r", "bob");
    ck_assert_str_eq(s[0].m.nick, "bob");
    ck_assert_str_eq(s[1].m.nick, "bob2");
    hub_finish();
}
END_TEST

START_TEST(suffix_counters_stay_bounded)
{
    /* One member stays; round i makes n<i> taken, joins n<i> again (a new
     * counter), then both leave. Counters outnumbering twice the members plus
     * 16 are dropped: the early ones are gone, the latest are still there. */
    enum { ROUNDS = 30 };
    struct tsink keep = {0}, x = {0}, y = {0}, p = {0}, q = {0};
    char want[16], exp[16];
    hub_setup(10, 100, 0, 1 << 20);
    join(&keep, "r", "keep");
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(want, sizeof(want), "n%d", i);
        join(&x, "r", want);
        join(&y, "r", want);
        snprintf(exp, sizeof(exp), "n%d2", i);
        ck_assert_str_eq(y.m.nick, exp);
        hub_leave(T.h, &y.m);
        hub_leave(T.h, &x.m);
    }
    join(&x, "r", "n0");
    join(&y, "r", "n0");
    ck_assert_str_eq(y.m.nick, "n02");          /* counter dropped: starts at 2 again */
    snprintf(want, sizeof(want), "n%d", ROUNDS - 1);
    join(&p, "r", want);
    join(&q, "r", want);
    snprintf(exp, sizeof(exp), "n%d3", ROUNDS - 1);
    ck_assert_str_eq(q.m.nick, exp);            /* counter kept: goes on at 3 */
    hub_finish();
}
END_TEST

/* Joins n members (sinks that are never sent to) to room r with nick want. */
static void join_many(struct hub_member *m, size_t n, const char *want)
{
    for (size_t i = 0; i < n; i++) {
        const char *reason = NULL;
        if (hub_join(T.h, &m[i], "r", want, &m[i], &reason) != 0)
            ck_abort_msg("join %zu: %s", i, reason);
    }
}

START_TEST(ten_thousand_same_nick)
{
    /* The 10,001st "a" tries a10001 first: a few probes, not a scan of a2..a10000. */
    enum { N = 10000 };
    static struct hub_member m[N + 1];
    char exp[HUB_NICK_MAX + 1];
    hub_setup(10, 100, 0, 1 << 20);
    uint64_t p0 = hub_nick_probes(T.h);
    join_many(m, N, "a");
    uint64_t probes = hub_nick_probes(T.h) - p0;
    ck_assert_msg(probes <= 10 * (uint64_t)N, "%llu probes for %d joins", (unsigned long long)probes, N);
    ck_assert_str_eq(m[0].nick, "a");
    for (int i = 1; i < N; i++) {
        snprintf(exp, sizeof(exp), "a%d", i + 1);
        if (strcmp(m[i].nick, exp) != 0)
            ck_abort_msg("join %d got %s, want %s", i + 1, m[i].nick, exp);
    }
    p0 = hub_nick_probes(T.h);
    join_many(m + N, 1, "a");
    ck_assert_str_eq(m[N].nick, "a10001");
    ck_assert_uint_le(hub_nick_probes(T.h) - p0, 64);
    ck_assert_uint_eq(hub_room_count(m[0].room), N + 1);
    for (int i = 0; i <= N; i++)
        hub_leave(T.h, &m[i]);
    hub_free(T.h);
}
END_TEST

START_TEST(many_nicks_sharing_a_prefix)
{
    /* Distinct nicks that differ only at the end, then renames among them. */
    enum { N = 10000 };
    static struct hub_member m[N];
    char nick[48];   /* 32 bytes used; room for what the compiler cannot rule out */
    hub_setup(10, 100, 0, 1 << 20);
    uint64_t p0 = hub_nick_probes(T.h);
    for (int i = 0; i < N; i++) {
        const char *reason = NULL;
        snprintf(nick, sizeof(nick), "a-rather-long-common-prefix%05d", i);
        if (hub_join(T.h, &m[i], "r", nick, &m[i], &reason) != 0 || strcmp(m[i].nick, nick) != 0)
            ck_abort_msg("join %s failed or got %s", nick, m[i].nick);
    }
    for (int i = 0; i < N; i++) {
        snprintf(nick, sizeof(nick), "a-rather-long-common-prefix%05d", (i + 1) % N);
        if (hub_rename(T.h, &m[i], nick) != -1)
            ck_abort_msg("rename to the taken %s succeeded", nick);
    }
    for (int i = 0; i < N; i++) {
        snprintf(nick, sizeof(nick), "renamed-common-prefix-%05d", i);
        if (hub_rename(T.h, &m[i], nick) != 0)
            ck_abort_msg("rename to the free %s failed", nick);
    }
    uint64_t probes = hub_nick_probes(T.h) - p0;
    ck_assert_msg(probes <= 10 * (uint64_t)N, "%llu probes for %d joins and %d renames",
                  (unsigned long long)probes, N, 2 * N);
    for (int i = 0; i < N; i++)
        hub_leave(T.h, &m[i]);
    hub_free(T.h);
}
END_TEST

START_TEST(many_same_long_nick)
{
    /* A 32-byte want: every suffix shortens it, at a code point boundary. */
    enum { N = 2000 };
    static struct hub_member m[N];
    char want[64];
    memset(want, 0, sizeof(want));
    for (int i = 0; i < 16; i++)
        memcpy(want + 2 * i, "\xc3\xa9", 2);
    hub_setup(10, 100, 0, 1 << 20);
    uint64_t p0 = hub_nick_probes(T.h);
    join_many(m, N, want);
    ck_assert_uint_le(hub_nick_probes(T.h) - p0, 10 * (uint64_t)N);
    ck_assert_str_eq(m[0].nick, want);
    for (int i = 1; i < N; i++) {
        char digits[16];
        size_t n = strlen(m[i].nick), nd = (size_t)snprintf(digits, sizeof(digits), "%d", i + 1);
        if (n > HUB_NICK_MAX || !command_nick_valid(m[i].nick, n))
            ck_abort_msg("join %d got the invalid nick %s", i, m[i].nick);
        if (n < nd || strcmp(m[i].nick + n - nd, digits) != 0 || memcmp(m[i].nick, want, n - nd) != 0)
            ck_abort_msg("join %d got %s, not a prefix of the want and %s", i, m[i].nick, digits);
    }
    /* all distinct: each is in the index under its own name */
    for (int i = 0; i < N; i++)
        if (hub_rename(T.h, &m[i], m[i].nick) != 0)
            ck_abort_msg("%s is held by another member", m[i].nick);
    for (int i = 0; i < N; i++)
        hub_leave(T.h, &m[i]);
    hub_free(T.h);
}
END_TEST

START_TEST(index_shrinks_and_stays_right)
{
    /* 1000 join, all but 10 leave (the index shrinks), the rest still resolve. */
    enum { N = 1000, KEEP = 10 };
    static struct hub_member m[N];
    static struct hub_member again[KEEP];
    hub_setup(10, 100, 0, 1 << 20);
    join_many(m, N, "z");
    for (int i = KEEP; i < N; i++)
        hub_leave(T.h, &m[i]);
    ck_assert_uint_eq(hub_room_count(m[0].room), KEEP);
    for (int i = 0; i < KEEP; i++) {
        const char *reason;
        /* each kept nick is still taken, each freed one is free */
        ck_assert_int_eq(hub_rename(T.h, &m[i], m[(i + 1) % KEEP].nick), -1);
        ck_assert_int_eq(hub_join(T.h, &again[i], "r", m[i].nick, &again[i], &reason), 0);
        ck_assert_str_ne(again[i].nick, m[i].nick);
    }
    ck_assert_int_eq(hub_rename(T.h, &m[0], "z500"), 0);
    ck_assert_int_eq(hub_rename(T.h, &m[1], "z500"), -1);
    for (int i = 0; i < KEEP; i++) {
        hub_leave(T.h, &m[i]);
        hub_leave(T.h, &again[i]);
    }
    hub_free(T.h);
}
END_TEST

/* Asserts that nick is a valid nick (so at most 32 bytes of valid UTF-8). */
static void assert_nick_ok(const char *nick)
{
    size_t n = strlen(nick);
    ck_assert_msg(n <= HUB_NICK_MAX, "nick is %zu bytes", n);
    ck_assert_msg(utf8_is_valid((const uint8_t *)nick, n), "nick is not valid UTF-8");
    ck_assert_msg(command_nick_valid(nick, n), "nick is not a valid nick");
}

/* n copies of u followed by tail, in out. */
static void build(char *out, size_t cap, const char *u, int n, const char *tail)
{
    size_t o = 0, k = strlen(u), t = strlen(tail);
    ck_assert_uint_le(n * k + t + 1, cap);
    for (int i = 0; i < n; i++, o += k)
        memcpy(out + o, u, k);
    memcpy(out + o, tail, t + 1);
}

START_TEST(suffix_on_long_ascii_nick)
{
    struct tsink s[12];
    memset(s, 0, sizeof(s));
    char want[64], exp[64];
    hub_setup(10, 100, 0, 1 << 20);
    build(want, sizeof(want), "a", 32, "");
    join(&s[0], "r", want);
    ck_assert_str_eq(s[0].m.nick, want);
    for (int i = 1; i < 12; i++) {
        join(&s[i], "r", want);
        assert_nick_ok(s[i].m.nick);
        char suffix[16];
        snprintf(suffix, sizeof(suffix), "%d", i + 1);
        build(exp, sizeof(exp), "a", 32 - (int)strlen(suffix), suffix);
        ck_assert_str_eq(s[i].m.nick, exp);
    }
    hub_finish();
}
END_TEST

START_TEST(suffix_on_long_utf8_nick)
{
    /* 15 x U+00E9 + "ab" is 32 bytes: "2" replaces the 'b', "10" replaces "ab". */
    struct tsink s[11];
    memset(s, 0, sizeof(s));
    char want[64], exp[64];
    hub_setup(10, 100, 0, 1 << 20);
    build(want, sizeof(want), "\xc3\xa9", 15, "ab");
    ck_assert_uint_eq(strlen(want), 32);
    for (int i = 0; i < 11; i++) {
        join(&s[i], "r", want);
        assert_nick_ok(s[i].m.nick);
    }
    ck_assert_str_eq(s[0].m.nick, want);
    build(exp, sizeof(exp), "\xc3\xa9", 15, "a2");
    ck_assert_str_eq(s[1].m.nick, exp);
    build(exp, sizeof(exp), "\xc3\xa9", 15, "a9");
    ck_assert_str_eq(s[8].m.nick, exp);
    build(exp, sizeof(exp), "\xc3\xa9", 15, "10");   /* 'a' dropped, é kept whole */
    ck_assert_str_eq(s[9].m.nick, exp);
    build(exp, sizeof(exp), "\xc3\xa9", 15, "11");
    ck_assert_str_eq(s[10].m.nick, exp);
    for (int i = 0; i < 11; i++)
        for (int j = i + 1; j < 11; j++)
            ck_assert_str_ne(s[i].m.nick, s[j].m.nick);
    hub_finish();
}
END_TEST

START_TEST(suffix_cuts_at_code_point_boundary)
{
    struct tsink s[2];
    memset(s, 0, sizeof(s));
    char want[64], exp[64];
    struct {
        const char *unit, *tail;
        int n;
        const char *exp_unit, *exp_tail;
        int exp_n;
    } cases[] = {
        /* 16 x é (32 bytes): the last é goes whole -> 15 x é + "2" (31 bytes) */
        {"\xc3\xa9", "", 16, "\xc3\xa9", "2", 15},
        /* "ab" + 10 x U+65E5 (32 bytes): the last 3-byte character goes -> 30 bytes */
        {"\xe6\x97\xa5", "", 10, "\xe6\x97\xa5", "2", 9},
        /* 8 x U+1F600 (32 bytes) -> 7 x U+1F600 + "2" (29 bytes) */
        {"\xf0\x9f\x98\x80", "", 8, "\xf0\x9f\x98\x80", "2", 7},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        hub_setup(10, 100, 0, 1 << 20);
        memset(s, 0, sizeof(s));
        if (c == 1) {
            build(want + 2, sizeof(want) - 2, cases[c].unit, cases[c].n, cases[c].tail);
            memcpy(want, "ab", 2);
            build(exp + 2, sizeof(exp) - 2, cases[c].exp_unit, cases[c].exp_n, cases[c].exp_tail);
            memcpy(exp, "ab", 2);
        } else {
            build(want, sizeof(want), cases[c].unit, cases[c].n, cases[c].tail);
            build(exp, sizeof(exp), cases[c].exp_unit, cases[c].exp_n, cases[c].exp_tail);
        }
        ck_assert_uint_eq(strlen(want), 32);
        join(&s[0], "r", want);
        join(&s[1], "r", want);
        ck_assert_str_eq(s[0].m.nick, want);
        assert_nick_ok(s[1].m.nick);
        ck_assert_msg(strcmp(s[1].m.nick, exp) == 0, "case %zu: got %s, want %s", c, s[1].m.nick,
                      exp);
        hub_finish();
    }
}
END_TEST

START_TEST(nick_free_after_leave)
{
    struct tsink a = {0}, b = {0}, c = {0};
    hub_setup(10, 100, 0, 1 << 20);
    join(&a, "r", "alice");
    join(&c, "r", "carol");   /* keeps the room alive */
    hub_leave(T.h, &a.m);
    join(&b, "r", "alice");
    ck_assert_str_eq(b.m.nick, "alice");
    hub_finish();
}
END_TEST

START_TEST(rename_member)
{
    struct tsink a = {0}, b = {0}, c = {0}, d = {0};
    hub_setup(10, 100, 0, 1 << 20);
    join(&a, "r", "alice");
    join(&b, "r", "bob");
    join(&d, "other", "dave");

    ck_assert_int_eq(hub_rename(T.h, &b.m, "alice"), -1);
    ck_assert_str_eq(b.m.nick, "bob");
    ck_assert_str_eq(a.m.nick, "alice");

    ck_assert_int_eq(hub_rename(T.h, &a.m, "alice"), 0);   /* own nick */
    ck_assert_str_eq(a.m.nick, "alice");

    ck_assert_int_eq(hub_rename(T.h, &b.m, "dave"), 0);    /* taken in another room only */
    ck_assert_str_eq(b.m.nick, "dave");

    char longest[HUB_NICK_MAX + 1];
    memset(longest, 'z', HUB_NICK_MAX);
    longest[HUB_NICK_MAX] = '\0';
    ck_assert_int_eq(hub_rename(T.h, &a.m, longest), 0);
    ck_assert_str_eq(a.m.nick, longest);

    /* the old nicks are free again */
    join(&c, "r", "bob");
    ck_assert_str_eq(c.m.nick, "bob");
    ck_assert_int_eq(hub_rename(T.h, &c.m, "alice"), 0);
    ck_assert_str_eq(c.m.nick, "alice");
    /* and the new ones are taken */
    ck_assert_int_eq(hub_rename(T.h, &c.m, "dave"), -1);
    ck_assert_str_eq(c.m.nick, "alice");
    hub_finish();
}
END_TEST

START_TEST(rename_moves_the_nick_in_the_index)
{
    struct tsink a = {0}, b = {0}, c = {0}, d = {0};
    hub_setup(10, 100, 0, 1 << 20);
    join(&a, "r", "alice");
    ck_assert_int_eq(hub_rename(T.h, &a.m, "zed"), 0);
    join(&b, "r", "alice");   /* the old nick is free */
    ck_assert_str_eq(b.m.nick, "alice");
    join(&c, "r", "zed");     /* the new one is taken */
    ck_assert_str_eq(c.m.nick, "zed2");
    ck_assert_int_eq(hub_rename(T.h, &a.m, "alice"), -1);
    ck_assert_int_eq(hub_rename(T.h, &c.m, "zed"), -1);
    ck_assert_str_eq(c.m.nick, "zed2");
    /* renamed twice, the member is found under its latest nick only */
    ck_assert_int_eq(hub_rename(T.h, &a.m, "yan"), 0);
    ck_assert_int_eq(hub_rename(T.h, &c.m, "zed"), 0);
    ck_assert_int_eq(hub_rename(T.h, &b.m, "yan"), -1);
    hub_leave(T.h, &a.m);     /* leaving frees the latest nick */
    join(&d, "r", "yan");
    ck_assert_str_eq(d.m.nick, "yan");
    hub_finish();
}
END_TEST

/* ---- limits ---- */

START_TEST(max_room_members)
{
    struct tsink a = {0}, b = {0}, c = {0}, d = {0};
    hub_setup(10, 100, 2, 1 << 20);
    struct hub_room *r = join(&a, "r", "a");
    join(&b, "r", "b");

    const char *reason = NULL;
    ck_assert_int_eq(hub_can_join(T.h, "r", &reason), 503);
    ck_assert_ptr_nonnull(reason);
    track(&c);
    reason = NULL;
    ck_assert_int_eq(hub_join(T.h, &c.m, "r", "c", &c, &reason), 503);
    ck_assert_ptr_nonnull(reason);
    ck_assert_ptr_null(c.m.room);
    ck_assert_uint_eq(hub_room_count(r), 2);
    ck_assert(!in_room(r, &c));

    /* another room has its own limit */
    ck_assert_int_eq(hub_can_join(T.h, "s", &reason), 0);
    join(&d, "s", "d");

    hub_leave(T.h, &a.m);
    ck_assert_int_eq(hub_can_join(T.h, "r", &reason), 0);
    ck_assert_ptr_eq(join(&c, "r", "c"), r);
    ck_assert_uint_eq(hub_room_count(r), 2);
    hub_finish();
}
END_TEST

START_TEST(unlimited_members)
{
    enum { N = 100 };
    static struct tsink s[N];
    memset(s, 0, sizeof(s));
    hub_setup(10, 100, 0, 1 << 20);
    struct hub_room *r = NULL;
    for (int i = 0; i < N; i++)
        r = join(&s[i], "big", NULL);
    ck_assert_uint_eq(hub_room_count(r), N);
    assert_slots(r);
    for (int i = 0; i < N; i += 2)
        hub_leave(T.h, &s[i].m);
    ck_assert_uint_eq(hub_room_count(r), N / 2);
    assert_slots(r);
    for (int i = 1; i < N; i += 2)
        ck_assert(in_room(r, &s[i]));
    for (int i = 1; i < N; i += 2)
        hub_leave(T.h, &s[i].m);
    ck_assert_uint_eq(hub_room_count(r), 0);
    hub_free(T.h);
}
END_TEST

/* ---- broadcast ---- */

START_TEST(broadcast_shares_one_frame)
{
    struct tsink s[3], o = {0};
    memset(s, 0, sizeof(s));
    hub_setup(10, 100, 0, 1 << 20);
    struct hub_room *r = NULL;
    for (int i = 0; i < 3; i++)
        r = join(&s[i], "r", NULL);
    join(&o, "other", NULL);

    struct sbuf *f1 = frame_new(10, '1'), *f2 = frame_new(12, '2');
    ck_assert_uint_eq(hub_broadcast_total(T.h), 0);
    hub_broadcast(T.h, r, f1);   /* s[0] is the sender: it gets its own message */
    ck_assert_uint_eq(f1->refs, 1 + 3);
    hub_broadcast(T.h, r, f2);
    ck_assert_uint_eq(f2->refs, 1 + 3);
    ck_assert_uint_eq(hub_broadcast_total(T.h), 2);
    hub_send(T.h, &s[0].m, f1);   /* a send to one member is not a broadcast */
    ck_assert_uint_eq(hub_broadcast_total(T.h), 2);
    ck_assert_uint_eq(s[0].nframes, 3);
    sbuf_unref(s[0].frames[2]);
    s[0].nframes = 2;
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(s[i].nframes, 2);
        ck_assert_ptr_eq(s[i].frames[0], f1);   /* the same object, in call order */
        ck_assert_ptr_eq(s[i].frames[1], f2);
        ck_assert_int_eq(s[i].cuts, 0);
    }
    ck_assert_uint_eq(o.nframes, 0);   /* other rooms get nothing */
    ck_assert_uint_eq(f1->refs, 4);

    for (int i = 0; i < 3; i++)
        sink_release(&s[i]);
    ck_assert_uint_eq(f1->refs, 1);
    ck_assert_uint_eq(f2->refs, 1);
    sbuf_unref(f1);
    sbuf_unref(f2);
    hub_finish();
}
END_TEST

START_TEST(broadcast_to_empty_room)
{
    struct tsink a = {0};
    hub_setup(10, 100, 0, 1 << 20);
    struct hub_room *r = join(&a, "r", NULL);
    hub_leave(T.h, &a.m);
    struct sbuf *f = frame_new(5, 'x');
    hub_broadcast(T.h, r, f);
    ck_assert_uint_eq(f->refs, 1);
    ck_assert_uint_eq(a.nframes, 0);
    sbuf_unref(f);
    hub_finish();
}
END_TEST

START_TEST(send_to_one)
{
    struct tsink a = {0}, b = {0};
    hub_setup(10, 100, 0, 1 << 20);
    join(&a, "r", NULL);
    join(&b, "r", NULL);
    struct sbuf *f = frame_new(7, 'x');
    hub_send(T.h, &b.m, f);
    ck_assert_uint_eq(f->refs, 2);
    ck_assert_uint_eq(a.nframes, 0);
    ck_assert_uint_eq(b.nframes, 1);
    ck_assert_ptr_eq(b.frames[0], f);
    sbuf_unref(f);
    hub_finish();
}
END_TEST

/* ---- history and sequence numbers ---- */

#define HDR 4   /* bytes of fake frame header before the event's JSON */

/* A frame "HDR:" + {"n":i} with the event at offset HDR. */
static struct sbuf *event_frame(int i)
{
    char json[32];
    int n = snprintf(json, sizeof(json), "{\"n\":%d}", i);
    struct sbuf *f = sbuf_new(HDR + (size_t)n);
    ck_assert_ptr_nonnull(f);
    memcpy(f->data, "HDR:", HDR);
    memcpy(f->data + HDR, json, (size_t)n);
    return f;
}

static void assert_history_event(struct hub_room *r, size_t i, struct sbuf *f, int n)
{
    char json[32];
    int jn = snprintf(json, sizeof(json), "{\"n\":%d}", n);
    size_t len = 0;
    const uint8_t *ev = hub_room_history(r, i, &len);
    ck_assert_msg(len == (size_t)jn && memcmp(ev, json, len) == 0, "history[%zu] is [%.*s], want %s",
                  i, (int)len, ev, json);
    ck_assert_ptr_eq(ev, f->data + HDR);   /* the shared frame itself, not a copy */
}

START_TEST(history_keeps_last_n)
{
    struct tsink a = {0};
    struct sbuf *f[6];
    hub_setup(3, 100, 0, 1 << 20);
    struct hub_room *r = join(&a, "r", NULL);
    for (int i = 1; i <= 2; i++) {
        f[i] = event_frame(i);
        hub_history_push(T.h, r, f[i], HDR, hub_room_next_seq(r));
        ck_assert_uint_eq(f[i]->refs, 2);
    }
    ck_assert_uint_eq(hub_room_history_count(r), 2);
    assert_history_event(r, 0, f[1], 1);
    assert_history_event(r, 1, f[2], 2);
    for (int i = 3; i <= 5; i++) {
        f[i] = event_frame(i);
        hub_history_push(T.h, r, f[i], HDR, hub_room_next_seq(r));
    }
    ck_assert_uint_eq(hub_room_history_count(r), 3);
    assert_history_event(r, 0, f[3], 3);
    assert_history_event(r, 1, f[4], 4);
    assert_history_event(r, 2, f[5], 5);
    ck_assert_uint_eq(hub_history_bytes(T.h), 3 * (f[3]->len + HUB_HISTORY_ITEM_COST));
    /* the ones that fell off were released; the kept ones hold one reference each */
    ck_assert_uint_eq(f[1]->refs, 1);
    ck_assert_uint_eq(f[2]->refs, 1);
    ck_assert_uint_eq(f[3]->refs, 2);
    ck_assert_uint_eq(f[4]->refs, 2);
    ck_assert_uint_eq(f[5]->refs, 2);
    ck_assert_uint_eq(a.nframes, 0);   /* history is not a send */
    for (int i = 1; i <= 5; i++)
        sbuf_unref(f[i]);
    hub_finish();   /* frees f[3..5] with the room (ASan) */
}
END_TEST

START_TEST(history_wraps_many_times)
{
    struct tsink a = {0};
    hub_setup(3, 100, 0, 1 << 20);
    struct hub_room *r = join(&a, "r", NULL);
    for (int i = 1; i <= 20; i++) {
        struct sbuf *f = event_frame(i);
        hub_history_push(T.h, r, f, HDR, hub_room_next_seq(r));
        ck_assert_uint_eq(f->refs, 2);
        sbuf_unref(f);   /* the hub's reference keeps it alive */
        size_t cnt = hub_room_history_count(r);
        ck_assert_uint_eq(cnt, i < 3 ? (size_t)i : 3);
        for (size_t k = 0; k < cnt; k++) {
            int n = i - (int)cnt + 1 + (int)k;
            char json[32];
            int jn = snprintf(json, sizeof(json), "{\"n\":%d}", n);
            size_t len;
            const uint8_t *ev = hub_room_history(r, k, &len);
            ck_assert_msg(len == (size_t)jn && memcmp(ev, json, len) == 0,
                          "after %d pushes history[%zu] is [%.*s], want %s", i, k, (int)len, ev, json);
        }
    }
    hub_finish();
}
END_TEST

START_TEST(history_zero_keeps_none)
{
    struct tsink a = {0};
    hub_setup(0, 100, 0, 1 << 20);
    struct hub_room *r = join(&a, "r", NULL);
    struct sbuf *f = event_frame(1);
    hub_history_push(T.h, r, f, HDR, hub_room_next_seq(r));
    ck_assert_uint_eq(hub_room_history_count(r), 0);
    ck_assert_uint_eq(f->refs, 1);
    ck_assert_uint_eq(hub_history_bytes(T.h), 0);
    sbuf_unref(f);
    hub_finish();
}
END_TEST

START_TEST(history_survives_empty_room)
{
    struct tsink a = {0}, b = {0};
    hub_setup(5, 100, 0, 1 << 20);
    struct hub_room *r = join(&a, "r", NULL);
    struct sbuf *f = event_frame(7);
    hub_history_push(T.h, r, f, HDR, hub_room_next_seq(r));
    hub_leave(T.h, &a.m);
    ck_assert_uint_eq(f->refs, 2);
    ck_assert_ptr_eq(join(&b, "r", NULL), r);
    ck_assert_uint_eq(hub_room_history_count(r), 1);
    assert_history_event(r, 0, f, 7);
    sbuf_unref(f);
    hub_finish();
}
END_TEST

/* A frame of len bytes (at least 16): "HDR:" then {"n":i} padded with spaces. */
static struct sbuf *sized_event(int i, size_t len)
{
    struct sbuf *f = event_frame(i);
    ck_assert_uint_le(f->len, len);
    struct sbuf *g = sbuf_new(len);
    ck_assert_ptr_nonnull(g);
    memset(g->data, ' ', len);
    memcpy(g->data, f->data, f->len);
    sbuf_unref(f);
    return g;
}

static size_t cost(size_t len)
{
    return len + HUB_HISTORY_ITEM_COST;
}

/* Asserts that r's i-th history event is numbered n. */
static void assert_event_n(const struct hub_room *r, size_t i, int n)
{
    size_t len;
    const uint8_t *ev = hub_room_history(r, i, &len);
    char want[32];
    int wn = snprintf(want, sizeof(want), "{\"n\":%d}", n);
    ck_assert_msg(len >= (size_t)wn && memcmp(ev, want, (size_t)wn) == 0, "history[%zu] is [%.*s], want %s",
                  i, (int)len, ev, want);
}

/* Asserts that r's history holds the events numbered ns[0..k), oldest first. */
static void assert_history(const struct hub_room *r, const int *ns, size_t k)
{
    ck_assert_uint_eq(hub_room_history_count(r), k);
    for (size_t i = 0; i < k; i++)
        assert_event_n(r, i, ns[i]);
}

/* Pushes event n of len bytes to s's room, keeping no reference of the test's. */
static void push(struct tsink *s, int n, size_t len)
{
    struct sbuf *f = sized_event(n, len);
    hub_history_push(T.h, s->m.room, f, HDR, hub_room_next_seq(s->m.room));
    sbuf_unref(f);
}

START_TEST(history_bytes_per_room)
{
    struct tsink a = {0}, b = {0};
    struct hub_config cfg = {.history = 100, .history_bytes = 3 * cost(100), .max_rooms = 100,
                             .max_backlog = 1 << 20};
    hub_setup_cfg(&cfg);
    struct hub_room *r = join(&a, "r", NULL);
    join(&b, "other", NULL);
    push(&b, 99, 50);   /* another room's bound is its own */
    for (int i = 1; i <= 5; i++)
        push(&a, i, 100);
    assert_history(r, (int[]){3, 4, 5}, 3);
    ck_assert_uint_eq(hub_history_bytes(T.h), 3 * cost(100) + cost(50));

    /* a bigger event pushes out as many of the oldest as it needs */
    push(&a, 6, 200);
    assert_history(r, (int[]){5, 6}, 2);
    ck_assert_uint_eq(hub_history_bytes(T.h), cost(100) + cost(200) + cost(50));

    /* one that costs exactly the bound is kept, alone */
    push(&a, 7, 3 * cost(100) - HUB_HISTORY_ITEM_COST);
    assert_history(r, (int[]){7}, 1);
    ck_assert_uint_eq(hub_history_bytes(T.h), 3 * cost(100) + cost(50));
    ck_assert_uint_eq(hub_room_history_count(b.m.room), 1);
    hub_finish();
}
END_TEST

START_TEST(history_event_too_big_is_not_kept)
{
    struct tsink a = {0};
    struct hub_config cfg = {.history = 10, .history_bytes = 1000, .max_rooms = 100, .max_backlog = 1 << 20};
    hub_setup_cfg(&cfg);
    struct hub_room *r = join(&a, "r", NULL);
    push(&a, 1, 100);
    push(&a, 2, 100);
    struct sbuf *big = sized_event(3, 1000 - HUB_HISTORY_ITEM_COST + 1);
    hub_history_push(T.h, r, big, HDR, hub_room_next_seq(r));
    ck_assert_uint_eq(big->refs, 1);
    assert_history(r, (int[]){1, 2}, 2);   /* and the older events stay */
    ck_assert_uint_eq(hub_history_bytes(T.h), 2 * cost(100));
    sbuf_unref(big);
    hub_finish();
}
END_TEST

START_TEST(history_total_evicts_least_recent_room)
{
    /* Room x's event k is numbered 10x + k; rooms a=1, b=2, c=3, d=4. */
    enum { L = 60 };
    struct tsink a = {0}, b = {0}, c = {0}, d = {0};
    struct hub_config cfg = {.history = 100, .history_total_bytes = 5 * cost(L), .max_rooms = 100,
                             .max_backlog = 1 << 20};
    hub_setup_cfg(&cfg);
    struct hub_room *ra = join(&a, "a", NULL), *rb = join(&b, "b", NULL);
    struct hub_room *rc = join(&c, "c", NULL), *rd = join(&d, "d", NULL);
    push(&a, 11, L);
    push(&b, 21, L);
    push(&a, 12, L);
    push(&c, 31, L);
    push(&b, 22, L);
    ck_assert_uint_eq(hub_history_bytes(T.h), 5 * cost(L));
    assert_history(ra, (int[]){11, 12}, 2);

    push(&c, 32, L);    /* a was pushed to least recently: its oldest goes */
    assert_history(ra, (int[]){12}, 1);
    assert_history(rb, (int[]){21, 22}, 2);
    assert_history(rc, (int[]){31, 32}, 2);

    push(&a, 13, L);    /* now b is the least recent */
    assert_history(ra, (int[]){12, 13}, 2);
    assert_history(rb, (int[]){22}, 1);

    push(&d, 41, L);    /* b again: it empties */
    assert_history(rb, NULL, 0);
    push(&d, 42, L);    /* then c, the next least recent */
    assert_history(rc, (int[]){32}, 1);
    assert_history(ra, (int[]){12, 13}, 2);
    assert_history(rd, (int[]){41, 42}, 2);
    ck_assert_uint_eq(hub_history_bytes(T.h), 5 * cost(L));

    push(&b, 23, L);    /* an emptied room takes history again, as the most recent */
    assert_history(rb, (int[]){23}, 1);
    assert_history(rc, NULL, 0);
    ck_assert_uint_eq(hub_history_bytes(T.h), 5 * cost(L));
    hub_finish();
}
END_TEST

START_TEST(history_total_moves_on_to_next_room)
{
    enum { L = 40 };
    struct tsink a = {0}, b = {0}, c = {0};
    struct hub_config cfg = {.history = 100, .history_total_bytes = 4 * cost(L), .max_rooms = 100,
                             .max_backlog = 1 << 20};
    hub_setup_cfg(&cfg);
    struct hub_room *ra = join(&a, "a", NULL), *rb = join(&b, "b", NULL), *rc = join(&c, "c", NULL);
    push(&a, 11, L);
    push(&b, 21, L);
    push(&b, 22, L);
    /* costs three: a's only event, then b's oldest go */
    push(&c, 31, 3 * cost(L) - HUB_HISTORY_ITEM_COST);
    assert_history(ra, NULL, 0);
    assert_history(rb, (int[]){22}, 1);
    assert_history(rc, (int[]){31}, 1);
    ck_assert_uint_eq(hub_history_bytes(T.h), 4 * cost(L));
    /* an event over the hub-wide bound alone is not kept, and evicts nothing */
    push(&a, 12, 4 * cost(L) - HUB_HISTORY_ITEM_COST + 1);
    assert_history(ra, NULL, 0);
    assert_history(rb, (int[]){22}, 1);
    ck_assert_uint_eq(hub_history_bytes(T.h), 4 * cost(L));
    hub_finish();
}
END_TEST

START_TEST(history_bytes_back_to_zero)
{
    struct tsink a = {0}, b = {0}, c = {0}, d = {0};
    hub_setup(5, 2, 0, 1 << 20);
    join(&a, "a", NULL);
    join(&b, "b", NULL);
    push(&a, 1, 30);
    push(&a, 2, 30);
    push(&b, 3, 50);
    ck_assert_uint_eq(hub_history_bytes(T.h), 2 * cost(30) + cost(50));
    hub_leave(T.h, &a.m);
    hub_leave(T.h, &b.m);
    ck_assert_uint_eq(hub_history_bytes(T.h), 2 * cost(30) + cost(50));   /* kept while the rooms are */
    join(&c, "c", NULL);   /* evicts a */
    ck_assert_uint_eq(hub_history_bytes(T.h), cost(50));
    join(&d, "d", NULL);   /* evicts b */
    ck_assert_uint_eq(hub_history_bytes(T.h), 0);
    push(&c, 4, 20);
    ck_assert_uint_eq(hub_history_bytes(T.h), cost(20));
    hub_finish();          /* frees c's history with the hub (ASan) */
}
END_TEST

/* Every room has an epoch of its own, and a room evicted and created again
 * gets a new one, with its sequence starting again at 1; history events keep
 * their sequence numbers. */
START_TEST(epoch_and_seq)
{
    struct tsink a = {0}, b = {0}, c = {0}, d = {0};
    hub_setup(5, 1, 0, 1 << 20);
    struct hub_room *ra = join(&a, "a", NULL);
    char epoch_a[HUB_EPOCH_LEN + 1];
    ck_assert_uint_eq(strlen(hub_room_epoch(ra)), HUB_EPOCH_LEN);
    strcpy(epoch_a, hub_room_epoch(ra));
    ck_assert_uint_eq(hub_room_seq(ra), 0);
    push(&a, 1, 30);
    push(&a, 2, 30);
    ck_assert_uint_eq(hub_room_seq(ra), 2);
    ck_assert_uint_eq(hub_room_history_seq(ra, 0), 1);
    ck_assert_uint_eq(hub_room_history_seq(ra, 1), 2);
    const char *reason = NULL;                   /* max_rooms 1, and a has a member */
    ck_assert_int_eq(hub_join(T.h, &b.m, "b", NULL, &b, &reason), 503);
    hub_leave(T.h, &a.m);
    struct hub_room *rb = join(&c, "b", NULL);   /* evicts a */
    ck_assert_str_ne(hub_room_epoch(rb), epoch_a);
    hub_leave(T.h, &c.m);
    ra = join(&d, "a", NULL);                    /* evicts b, creates a again */
    ck_assert_ptr_nonnull(ra);
    ck_assert_str_ne(hub_room_epoch(ra), epoch_a);
    ck_assert_uint_eq(hub_room_seq(ra), 0);
    ck_assert_uint_eq(hub_room_history_count(ra), 0);
    hub_finish();
}
END_TEST

START_TEST(history_ring_grows_after_wrap)
{
    /* Big events fill a 4-slot ring and wrap it; small ones then fit more
     * events in the byte bound, so the wrapped ring grows. */
    enum { BIG = 100, SMALL = 16 };
    struct tsink a = {0};
    struct hub_config cfg = {.history = 16, .history_bytes = 4 * cost(BIG), .max_rooms = 100,
                             .max_backlog = 1 << 20};
    hub_setup_cfg(&cfg);
    struct hub_room *r = join(&a, "r", NULL);
    for (int i = 1; i <= 6; i++)
        push(&a, i, BIG);
    assert_history(r, (int[]){3, 4, 5, 6}, 4);
    push(&a, 7, SMALL);
    assert_history(r, (int[]){4, 5, 6, 7}, 4);
    push(&a, 8, SMALL);
    assert_history(r, (int[]){4, 5, 6, 7, 8}, 5);
    push(&a, 9, SMALL);
    assert_history(r, (int[]){5, 6, 7, 8, 9}, 5);
    push(&a, 10, SMALL);
    assert_history(r, (int[]){5, 6, 7, 8, 9, 10}, 6);
    ck_assert_uint_eq(hub_history_bytes(T.h), 2 * cost(BIG) + 4 * cost(SMALL));
    hub_finish();
}
END_TEST

START_TEST(history_count_is_not_allocated_up_front)
{
    /* A count bound far beyond memory: the ring grows with what is kept. */
    enum { N = 1000 };
    struct tsink a = {0};
    hub_setup(SIZE_MAX, 100, 0, 1 << 20);
    struct hub_room *r = join(&a, "r", NULL);
    for (int i = 1; i <= N; i++)
        push(&a, i, 16);
    ck_assert_uint_eq(hub_room_history_count(r), N);
    for (int i = 0; i < N; i++)
        assert_event_n(r, (size_t)i, i + 1);
    ck_assert_uint_eq(hub_history_bytes(T.h), N * cost(16));
    hub_finish();
}
END_TEST

START_TEST(seq_per_room)
{
    struct tsink a = {0}, b = {0};
    hub_setup(5, 100, 0, 1 << 20);
    struct hub_room *ra = join(&a, "a", NULL);
    struct hub_room *rb = join(&b, "b", NULL);
    ck_assert_uint_eq(hub_room_next_seq(ra), 1);
    ck_assert_uint_eq(hub_room_next_seq(ra), 2);
    ck_assert_uint_eq(hub_room_next_seq(rb), 1);
    ck_assert_uint_eq(hub_room_next_seq(ra), 3);
    ck_assert_uint_eq(hub_room_next_seq(rb), 2);
    /* an emptied room keeps counting */
    hub_leave(T.h, &a.m);
    ck_assert_ptr_eq(join(&a, "a", NULL), ra);
    ck_assert_uint_eq(hub_room_next_seq(ra), 4);
    hub_finish();
}
END_TEST

/* ---- eviction ---- */

/* Pushes one history event into s's room and returns the frame (caller's ref). */
static struct sbuf *remember(struct tsink *s, int n)
{
    struct sbuf *f = event_frame(n);
    hub_history_push(T.h, s->m.room, f, HDR, hub_room_next_seq(s->m.room));
    return f;
}

START_TEST(evict_least_recently_emptied)
{
    struct tsink a = {0}, b = {0}, c = {0}, x = {0};
    hub_setup(5, 2, 0, 1 << 20);
    struct hub_room *ra = join(&a, "a", NULL);
    struct hub_room *rb = join(&b, "b", NULL);
    struct sbuf *fa = remember(&a, 1), *fb = remember(&b, 2);
    ck_assert_uint_eq(hub_room_next_seq(ra), 2);   /* one message each so far */
    ck_assert_uint_eq(hub_room_next_seq(rb), 2);
    hub_leave(T.h, &a.m);   /* a emptied first */
    hub_leave(T.h, &b.m);
    ck_assert_uint_eq(hub_room_total(T.h), 2);

    const char *reason;
    ck_assert_int_eq(hub_can_join(T.h, "c", &reason), 0);
    join(&c, "c", NULL);
    ck_assert_uint_eq(hub_room_total(T.h), 2);
    ck_assert_uint_eq(fa->refs, 1);   /* a's history was released with a */
    ck_assert_uint_eq(fb->refs, 2);
    ck_assert_uint_eq(hub_history_bytes(T.h), fb->len + HUB_HISTORY_ITEM_COST);

    /* b is still there with its history and sequence */
    ck_assert_ptr_eq(join(&b, "b", NULL), rb);
    ck_assert_uint_eq(hub_room_history_count(rb), 1);
    assert_history_event(rb, 0, fb, 2);
    ck_assert_uint_eq(hub_room_next_seq(rb), 3);   /* after the history event and the check above */

    /* every room has members: a new one is refused */
    reason = NULL;
    ck_assert_int_eq(hub_can_join(T.h, "a", &reason), 503);
    ck_assert_ptr_nonnull(reason);
    track(&x);
    ck_assert_int_eq(hub_join(T.h, &x.m, "a", NULL, &x, &reason), 503);
    ck_assert_ptr_null(x.m.room);
    ck_assert_uint_eq(hub_room_total(T.h), 2);
    /* existing rooms can still be joined */
    ck_assert_int_eq(hub_can_join(T.h, "b", &reason), 0);

    /* c empties: a comes back as a new room (evicting c), without history */
    hub_leave(T.h, &c.m);
    struct hub_room *ra2 = join(&a, "a", NULL);
    ck_assert_uint_eq(hub_room_history_count(ra2), 0);
    ck_assert_uint_eq(hub_room_next_seq(ra2), 1);
    ck_assert_uint_eq(hub_room_total(T.h), 2);
    ck_assert_uint_eq(hub_room_history_count(rb), 1);

    sbuf_unref(fa);
    sbuf_unref(fb);
    hub_finish();
}
END_TEST

START_TEST(evict_by_emptying_order_not_creation)
{
    struct tsink a = {0}, b = {0}, c = {0};
    hub_setup(5, 2, 0, 1 << 20);
    struct hub_room *ra = join(&a, "a", NULL);
    join(&b, "b", NULL);
    struct sbuf *fa = remember(&a, 1), *fb = remember(&b, 2);
    hub_leave(T.h, &b.m);   /* b (created last) emptied first */
    hub_leave(T.h, &a.m);
    join(&c, "c", NULL);
    ck_assert_uint_eq(fb->refs, 1);   /* b evicted */
    ck_assert_uint_eq(fa->refs, 2);
    ck_assert_ptr_eq(join(&a, "a", NULL), ra);
    ck_assert_uint_eq(hub_room_history_count(ra), 1);
    sbuf_unref(fa);
    sbuf_unref(fb);
    hub_finish();
}
END_TEST

START_TEST(rejoined_room_leaves_lru)
{
    /* a empties, then is joined again and emptied after b: b is older. */
    struct tsink a = {0}, b = {0}, c = {0};
    hub_setup(5, 2, 0, 1 << 20);
    join(&a, "a", NULL);
    join(&b, "b", NULL);
    struct sbuf *fa = remember(&a, 1), *fb = remember(&b, 2);
    hub_leave(T.h, &a.m);
    hub_leave(T.h, &b.m);
    join(&a, "a", NULL);
    hub_leave(T.h, &a.m);
    join(&c, "c", NULL);
    ck_assert_uint_eq(fb->refs, 1);
    ck_assert_uint_eq(fa->refs, 2);
    sbuf_unref(fa);
    sbuf_unref(fb);
    hub_finish();
}
END_TEST

START_TEST(evict_many)
{
    enum { N = 300 };
    static struct tsink s[2 * N];
    static struct sbuf *f[2 * N];
    memset(s, 0, sizeof(s));
    hub_setup(2, N, 0, 1 << 20);
    char name[32];
    for (int i = 0; i < 2 * N; i++) {
        snprintf(name, sizeof(name), "room%d", i);
        join(&s[i], name, NULL);
        f[i] = remember(&s[i], i);
        hub_leave(T.h, &s[i].m);
        ck_assert_uint_eq(hub_room_total(T.h), i < N ? (size_t)i + 1 : (size_t)N);
    }
    for (int i = 0; i < 2 * N; i++) {
        if (f[i]->refs != (i < N ? 1u : 2u))
            ck_abort_msg("room%d: frame refs %u", i, f[i]->refs);
        sbuf_unref(f[i]);
    }
    hub_free(T.h);
}
END_TEST

/* ---- slow consumers ---- */

START_TEST(slow_member_is_cut_during_walk)
{
    struct tsink s[4], late = {0};
    memset(s, 0, sizeof(s));
    hub_setup(5, 100, 0, 100);
    struct hub_room *r = NULL;
    for (int i = 0; i < 4; i++)
        r = join(&s[i], "r", NULL);
    /* the slow one sits in slot 1: members before and after it */
    struct tsink *slow = (struct tsink *)hub_room_member(r, 1)->sink;
    ck_assert_ptr_eq(slow, &s[1]);
    slow->backlog = 90;

    struct sbuf *f = frame_new(20, 'm');
    hub_broadcast(T.h, r, f);
    ck_assert_int_eq(slow->cuts, 1);
    ck_assert_uint_eq(T.ncut, 1);
    ck_assert_uint_eq(slow->nframes, 0);
    ck_assert_int_eq(slow->m.cut, 1);
    ck_assert_ptr_eq(slow->room_at_cut, r);
    /* cut where the walk found it: slot 0 had the frame, slots 2 and 3 not yet */
    ck_assert_uint_eq(slow->seen_at_cut[0], 1);
    ck_assert_uint_eq(slow->seen_at_cut[2], 0);
    ck_assert_uint_eq(slow->seen_at_cut[3], 0);
    for (int i = 0; i < 4; i++) {
        if (i == 1)
            continue;
        ck_assert_uint_eq(s[i].nframes, 1);
        ck_assert_ptr_eq(s[i].frames[0], f);
        ck_assert_int_eq(s[i].cuts, 0);
        ck_assert_int_eq(s[i].m.cut, 0);
    }
    ck_assert_uint_eq(f->refs, 1 + 3);
    /* still a member until it leaves: counted, in its slot */
    ck_assert_uint_eq(hub_room_count(r), 4);
    ck_assert(in_room(r, slow));
    assert_slots(r);

    /* later broadcasts skip it, without asking its backlog or cutting again */
    slow->backlog = 0;
    struct sbuf *g = frame_new(20, 'n');
    hub_broadcast(T.h, r, g);
    ck_assert_uint_eq(slow->nframes, 0);
    ck_assert_uint_eq(slow->sends, 0);
    ck_assert_int_eq(slow->cuts, 1);
    ck_assert_uint_eq(g->refs, 1 + 3);

    /* the session layer's safe point: it leaves */
    hub_leave(T.h, &slow->m);
    ck_assert_ptr_null(slow->m.room);
    ck_assert_uint_eq(hub_room_count(r), 3);
    ck_assert(!in_room(r, slow));
    assert_slots(r);
    struct sbuf *k = frame_new(20, 'k');
    hub_broadcast(T.h, r, k);
    ck_assert_uint_eq(k->refs, 1 + 3);
    ck_assert_uint_eq(slow->nframes, 0);
    /* its nick is free again, and a new member is not cut */
    char nick[HUB_NICK_MAX + 1];
    memcpy(nick, slow->m.nick, sizeof(nick));
    join(&late, "r", nick);
    ck_assert_str_eq(late.m.nick, nick);
    sbuf_unref(f);
    sbuf_unref(g);
    sbuf_unref(k);
    hub_finish();
}
END_TEST

START_TEST(backlog_limit_boundary)
{
    /* backlog + frame == max_backlog is not past the limit; one byte more is. */
    struct tsink a = {0}, b = {0};
    hub_setup(5, 100, 0, 100);
    struct hub_room *r = join(&a, "r", NULL);
    join(&b, "r", NULL);
    a.backlog = 80;
    b.backlog = 81;
    struct sbuf *f = frame_new(20, 'm');
    hub_broadcast(T.h, r, f);
    ck_assert_uint_eq(a.nframes, 1);
    ck_assert_int_eq(a.cuts, 0);
    ck_assert_uint_eq(b.nframes, 0);
    ck_assert_int_eq(b.cuts, 1);
    ck_assert_uint_eq(hub_room_count(r), 2);
    hub_leave(T.h, &b.m);
    ck_assert_uint_eq(hub_room_count(r), 1);
    sbuf_unref(f);
    hub_finish();
}
END_TEST

START_TEST(send_to_slow_member_cuts)
{
    struct tsink a = {0}, b = {0};
    hub_setup(5, 100, 0, 100);
    struct hub_room *r = join(&a, "r", NULL);
    join(&b, "r", NULL);
    b.backlog = 90;
    struct sbuf *f = frame_new(20, 'm');
    hub_send(T.h, &b.m, f);
    ck_assert_uint_eq(b.nframes, 0);
    ck_assert_int_eq(b.cuts, 1);
    ck_assert_int_eq(b.m.cut, 1);
    ck_assert_ptr_eq(b.m.room, r);
    ck_assert_uint_eq(hub_room_count(r), 2);
    ck_assert_uint_eq(f->refs, 1);
    hub_send(T.h, &b.m, f);   /* nothing more, no second cut */
    ck_assert_uint_eq(b.nframes, 0);
    ck_assert_int_eq(b.cuts, 1);
    ck_assert_uint_eq(f->refs, 1);
    sbuf_unref(f);
    hub_finish();
}
END_TEST

START_TEST(two_slow_members_both_cut)
{
    struct tsink s[5];
    memset(s, 0, sizeof(s));
    hub_setup(5, 100, 0, 100);
    struct hub_room *r = NULL;
    for (int i = 0; i < 5; i++)
        r = join(&s[i], "r", NULL);
    s[0].backlog = 95;   /* first and last slots */
    s[4].backlog = 90;
    struct sbuf *f = frame_new(20, 'm');
    hub_broadcast(T.h, r, f);
    ck_assert_int_eq(s[0].cuts, 1);
    ck_assert_int_eq(s[4].cuts, 1);
    ck_assert_uint_eq(T.ncut, 2);
    ck_assert_ptr_eq(T.cut_log[0], &s[0]);   /* in walk order */
    ck_assert_ptr_eq(T.cut_log[1], &s[4]);
    ck_assert_uint_eq(s[0].nframes + s[4].nframes, 0);
    for (int i = 1; i < 4; i++) {
        ck_assert_uint_eq(s[i].nframes, 1);
        ck_assert_int_eq(s[i].cuts, 0);
        ck_assert_uint_eq(s[0].seen_at_cut[i], 0);   /* the first cut came before them */
        ck_assert_uint_eq(s[4].seen_at_cut[i], 1);   /* the last after them */
    }
    ck_assert_uint_eq(hub_room_count(r), 5);
    ck_assert_uint_eq(f->refs, 1 + 3);
    hub_leave(T.h, &s[0].m);
    hub_leave(T.h, &s[4].m);
    ck_assert_uint_eq(hub_room_count(r), 3);
    assert_slots(r);
    sbuf_unref(f);
    hub_finish();
}
END_TEST

START_TEST(refused_send_cuts)
{
    struct tsink a = {0}, b = {0};
    hub_setup(5, 100, 0, 1 << 20);
    struct hub_room *r = join(&a, "r", NULL);
    join(&b, "r", NULL);
    b.refuse = 1;
    struct sbuf *f = frame_new(20, 'm');
    hub_broadcast(T.h, r, f);
    hub_broadcast(T.h, r, f);
    ck_assert_uint_eq(b.sends, 1);   /* asked once, then skipped */
    ck_assert_int_eq(b.cuts, 1);
    ck_assert_int_eq(b.m.cut, 1);
    ck_assert_uint_eq(a.nframes, 2);
    ck_assert_uint_eq(f->refs, 1 + 2);
    sbuf_unref(f);
    hub_finish();
}
END_TEST

START_TEST(cut_member_keeps_its_nick_until_it_leaves)
{
    struct tsink a = {0}, b = {0}, c = {0}, d = {0};
    hub_setup(5, 100, 0, 100);
    struct hub_room *r = join(&a, "r", "alice");
    join(&b, "r", "bob");
    a.backlog = 100;
    struct sbuf *f = frame_new(20, 'm');
    hub_broadcast(T.h, r, f);
    ck_assert_int_eq(a.m.cut, 1);
    join(&c, "r", "alice");
    ck_assert_str_eq(c.m.nick, "alice2");
    ck_assert_int_eq(hub_rename(T.h, &b.m, "alice"), -1);
    hub_leave(T.h, &a.m);
    ck_assert_int_eq(hub_rename(T.h, &b.m, "alice"), 0);
    join(&d, "r", NULL);
    ck_assert_int_eq(d.m.cut, 0);
    sbuf_unref(f);
    hub_finish();
}
END_TEST

START_TEST(free_after_everyone_left)
{
    struct tsink s[3];
    memset(s, 0, sizeof(s));
    hub_setup(4, 100, 0, 1 << 20);
    join(&s[0], "a", NULL);
    join(&s[1], "a", NULL);
    join(&s[2], "b", NULL);
    struct sbuf *f = remember(&s[0], 1), *g = remember(&s[2], 2);
    hub_broadcast(T.h, s[0].m.room, f);
    for (int i = 0; i < 3; i++)
        hub_leave(T.h, &s[i].m);
    ck_assert_uint_eq(hub_room_total(T.h), 2);
    for (int i = 0; i < 3; i++)
        sink_release(&s[i]);
    ck_assert_uint_eq(f->refs, 2);
    ck_assert_uint_eq(g->refs, 2);
    hub_free(T.h);   /* releases the histories; ASan reports anything left over */
    T.h = NULL;
    ck_assert_uint_eq(f->refs, 1);
    ck_assert_uint_eq(g->refs, 1);
    sbuf_unref(f);
    sbuf_unref(g);
    hub_free(NULL);
}
END_TEST

/* ---- the roster: entries of other nodes, pending joiners, kept leavers ---- */

START_TEST(roster_entries_count_but_get_nothing)
{
    hub_setup(10, 16, 0, 1 << 20);
    struct tsink a = {0}, b = {0};
    struct hub_room *r = join(&a, "ro", "alice");
    ck_assert_int_eq(hub_roster_add(T.h, r, "remote1", "u-1"), 0);
    ck_assert_int_eq(hub_roster_add(T.h, r, "remote2", NULL), 0);
    join(&b, "ro", "remote1");                   /* a nick held elsewhere gets a suffix */
    ck_assert_str_eq(b.m.nick, "remote12");
    ck_assert_uint_eq(hub_room_count(r), 4);
    ck_assert_uint_eq(hub_room_local(r), 2);
    for (size_t i = 0; i < hub_room_local(r); i++)   /* local members come first */
        ck_assert_ptr_nonnull(hub_room_member(r, i)->sink);
    for (size_t i = hub_room_local(r); i < hub_room_entries(r); i++)
        ck_assert_ptr_null(hub_room_member(r, i)->sink);
    struct sbuf *f = frame_new(8, 'x');
    hub_broadcast(T.h, r, f);
    ck_assert_uint_eq(a.nframes, 1);
    ck_assert_uint_eq(b.nframes, 1);
    ck_assert_int_eq(f->refs, 3);                 /* the two local members and ours */
    sbuf_unref(f);
    for (size_t i = hub_room_local(r); i < hub_room_entries(r); i++) {   /* users kept with the entries */
        const struct hub_member *m = hub_room_member(r, i);
        if (strcmp(m->nick, "remote1") == 0)
            ck_assert_str_eq(hub_roster_user(m), "u-1");
        else
            ck_assert_ptr_null(hub_roster_user(m));
    }
    ck_assert_int_eq(hub_roster_rename(T.h, r, "remote2", "renamed"), 0);
    ck_assert_int_eq(hub_nick_taken(T.h, r, "remote2"), 0);
    ck_assert_int_eq(hub_nick_taken(T.h, r, "renamed"), 1);
    ck_assert_int_eq(hub_roster_remove(T.h, r, "alice"), -1);   /* a local member is not the hub's */
    ck_assert_int_eq(hub_roster_remove(T.h, r, "renamed"), 0);
    ck_assert_uint_eq(hub_room_count(r), 3);
    hub_roster_clear(T.h, r);
    ck_assert_uint_eq(hub_room_count(r), 2);
    ck_assert_int_eq(hub_nick_taken(T.h, r, "remote1"), 0);
    sink_release(&a);
    sink_release(&b);
    hub_leave(T.h, &a.m);
    hub_leave(T.h, &b.m);
    hub_free(T.h);
}
END_TEST

START_TEST(pending_member_is_not_counted_or_sent_to)
{
    hub_setup(10, 16, 0, 1 << 20);
    struct tsink a = {0}, p = {0};
    struct hub_room *r = join(&a, "pe", "alice");
    ck_assert_int_eq(hub_roster_add(T.h, r, "far", NULL), 0);
    join(&p, "pe", "newbie");
    hub_set_pending(&p.m, 1);
    ck_assert_uint_eq(hub_room_count(r), 2);
    ck_assert_uint_eq(hub_room_local(r), 2);
    struct sbuf *f = frame_new(8, 'y');
    hub_broadcast(T.h, r, f);
    ck_assert_uint_eq(p.nframes, 0);
    hub_set_pending(&p.m, 0);
    ck_assert_uint_eq(hub_room_count(r), 3);
    hub_broadcast(T.h, r, f);
    ck_assert_uint_eq(p.nframes, 1);
    sbuf_unref(f);
    /* a pending member's nick gives way to one the cluster gave elsewhere */
    hub_set_pending(&p.m, 1);
    ck_assert_ptr_eq(hub_member_find(T.h, r, "newbie"), &p.m);
    ck_assert_int_eq(hub_repick(T.h, &p.m), 0);
    ck_assert_str_eq(p.m.nick, "newbie2");
    ck_assert_ptr_null(hub_member_find(T.h, r, "newbie"));
    hub_leave(T.h, &p.m);                         /* leaving while pending */
    ck_assert_uint_eq(hub_room_count(r), 2);
    sink_release(&a);
    sink_release(&p);
    hub_leave(T.h, &a.m);
    hub_free(T.h);
}
END_TEST

START_TEST(leave_keep_holds_the_nick_until_removed)
{
    hub_setup(10, 16, 0, 1 << 20);
    struct tsink a = {0}, b = {0}, c = {0};
    struct hub_room *r = join(&a, "lk", "alice");
    join(&b, "lk", "bob");
    ck_assert_int_eq(hub_roster_add(T.h, r, "far", NULL), 0);
    hub_leave_keep(T.h, &a.m, "alice-id");
    ck_assert_ptr_null(a.m.room);
    ck_assert_uint_eq(hub_room_count(r), 3);       /* alice still counts, as the hub's entry */
    ck_assert_uint_eq(hub_room_local(r), 1);
    ck_assert_ptr_eq(hub_room_member(r, 0), &b.m);
    ck_assert_ptr_null(hub_local_find(T.h, r, "alice"));
    ck_assert_str_eq(hub_roster_user(hub_member_find(T.h, r, "alice")), "alice-id");
    join(&c, "lk", "alice");
    ck_assert_str_eq(c.m.nick, "alice2");
    ck_assert_int_eq(hub_roster_remove(T.h, r, "alice"), 0);
    ck_assert_uint_eq(hub_room_count(r), 3);
    hub_set_pending(&c.m, 1);
    hub_leave_keep(T.h, &c.m, NULL);                     /* a pending member keeps nothing */
    ck_assert_uint_eq(hub_room_count(r), 2);
    hub_leave(T.h, &b.m);
    ck_assert_uint_eq(hub_room_count(r), 1);       /* far */
    hub_roster_clear(T.h, r);
    ck_assert_uint_eq(hub_room_entries(r), 0);
    hub_free(T.h);                                 /* and nothing leaks (ASan) */
}
END_TEST

START_TEST(roster_counts_without_entries)
{
    hub_setup(10, 16, 0, 1 << 20);
    struct tsink a = {0};
    struct hub_room *r = join(&a, "ct", "alice");
    ck_assert_int_eq(hub_roster_uncount(r), -1);   /* none counted */
    hub_roster_count(r, 2);
    ck_assert_uint_eq(hub_room_count(r), 3);
    ck_assert_uint_eq(hub_room_entries(r), 1);    /* no entry for them */
    ck_assert_uint_eq(hub_room_unlisted(r), 2);
    ck_assert_int_eq(hub_roster_uncount(r), 0);
    ck_assert_uint_eq(hub_room_count(r), 2);
    hub_roster_clear(T.h, r);
    ck_assert_uint_eq(hub_room_count(r), 1);
    ck_assert_uint_eq(hub_room_unlisted(r), 0);
    hub_leave(T.h, &a.m);
    hub_free(T.h);
}
END_TEST

static Suite *hub_suite(void)
{
    Suite *s = suite_create("hub");
    TCase *m = tcase_create("members");
    tcase_add_test(m, join_creates_room);
    tcase_add_test(m, room_names_are_exact);
    tcase_add_test(m, members_and_leave);
    tcase_add_test(m, many_rooms);
    tcase_add_test(m, max_room_members);
    tcase_add_test(m, unlimited_members);
    suite_add_tcase(s, m);

    TCase *n = tcase_create("nicks");
    tcase_add_test(n, guest_nicks);
    tcase_add_test(n, guest_skips_a_run_of_taken_nicks);
    tcase_add_test(n, taken_nick_gets_suffix);
    tcase_add_test(n, same_nick_in_other_room_is_free);
    tcase_add_test(n, suffix_counters_reset_when_room_empties);
    tcase_add_test(n, suffix_counters_stay_bounded);
    tcase_add_test(n, ten_thousand_same_nick);
    tcase_add_test(n, many_nicks_sharing_a_prefix);
    tcase_add_test(n, many_same_long_nick);
    tcase_add_test(n, index_shrinks_and_stays_right);
    tcase_add_test(n, suffix_on_long_ascii_nick);
    tcase_add_test(n, suffix_on_long_utf8_nick);
    tcase_add_test(n, suffix_cuts_at_code_point_boundary);
    tcase_add_test(n, nick_free_after_leave);
    tcase_add_test(n, rename_member);
    tcase_add_test(n, rename_moves_the_nick_in_the_index);
    suite_add_tcase(s, n);

    TCase *b = tcase_create("broadcast");
    tcase_add_test(b, broadcast_shares_one_frame);
    tcase_add_test(b, broadcast_to_empty_room);
    tcase_add_test(b, send_to_one);
    suite_add_tcase(s, b);

    TCase *h = tcase_create("history");
    tcase_add_test(h, history_keeps_last_n);
    tcase_add_test(h, history_wraps_many_times);
    tcase_add_test(h, history_zero_keeps_none);
    tcase_add_test(h, history_survives_empty_room);
    tcase_add_test(h, history_bytes_per_room);
    tcase_add_test(h, history_event_too_big_is_not_kept);
    tcase_add_test(h, history_total_evicts_least_recent_room);
    tcase_add_test(h, history_total_moves_on_to_next_room);
    tcase_add_test(h, history_bytes_back_to_zero);
    tcase_add_test(h, history_ring_grows_after_wrap);
    tcase_add_test(h, epoch_and_seq);
    tcase_add_test(h, history_count_is_not_allocated_up_front);
    tcase_add_test(h, seq_per_room);
    suite_add_tcase(s, h);

    TCase *e = tcase_create("eviction");
    tcase_add_test(e, evict_least_recently_emptied);
    tcase_add_test(e, evict_by_emptying_order_not_creation);
    tcase_add_test(e, rejoined_room_leaves_lru);
    tcase_add_test(e, evict_many);
    suite_add_tcase(s, e);

    TCase *c = tcase_create("slow");
    tcase_add_test(c, slow_member_is_cut_during_walk);
    tcase_add_test(c, backlog_limit_boundary);
    tcase_add_test(c, send_to_slow_member_cuts);
    tcase_add_test(c, two_slow_members_both_cut);
    tcase_add_test(c, refused_send_cuts);
    tcase_add_test(c, cut_member_keeps_its_nick_until_it_leaves);
    tcase_add_test(c, free_after_everyone_left);
    suite_add_tcase(s, c);

    TCase *ro = tcase_create("roster");
    tcase_add_test(ro, roster_entries_count_but_get_nothing);
    tcase_add_test(ro, pending_member_is_not_counted_or_sent_to);
    tcase_add_test(ro, leave_keep_holds_the_nick_until_removed);
    tcase_add_test(ro, roster_counts_without_entries);
    suite_add_tcase(s, ro);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hub_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
