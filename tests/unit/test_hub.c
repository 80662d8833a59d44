/* test_hub: unit tests for src/hub.c, rooms, members, history and broadcast.
 * A test sink stands in for a connection: it keeps its own reference to every
 * frame queued on it, reports a settable backlog (plus what it was sent and
 * never flushed), and its cut callback records the cut, calls hub_leave as the
 * chat layer does and may broadcast a "leave" frame, to check re-entrancy.
 * Covers nick choice (suffixes, guests, 32-byte limit at code point
 * boundaries), room limits, shared-frame reference counts, history rings,
 * sequence numbers, LRU eviction of empty rooms and slow-consumer cuts. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "command.h"
#include "hub.h"
#include "utf8.h"

#define MAX_SINKS 1024   /* sinks a test may join */
#define SEEN_MAX 16      /* sinks whose frame counts a cut records */
#define MAX_FRAMES 64

struct tsink {
    struct hub_member m;
    struct sbuf *frames[MAX_FRAMES];   /* one reference each, taken by send */
    size_t nframes;
    size_t queued;                     /* bytes sent to it (never flushed) */
    size_t backlog;                    /* extra backlog it reports */
    int cuts;
    struct hub_room *room_at_cut;
    size_t seen_at_cut[SEEN_MAX];      /* the first sinks' nframes when this one was cut */
    struct tsink *leave_too;           /* also made to leave by this one's cut */
};

/* The sink operations carry only the sink pointer, so the test state is global
 * (each test starts with hub_setup). */
static struct {
    struct hub *h;
    struct tsink *sinks[MAX_SINKS];
    size_t nsinks;
    int leave_broadcast;               /* the cut callback broadcasts a leave frame */
    size_t leave_len;
    int depth, max_depth;              /* nesting of cut callbacks */
    struct tsink *cut_log[SEEN_MAX];
    size_t ncut;
} T;

static int t_send(void *sink, struct sbuf *frame)
{
    struct tsink *s = sink;
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

static void t_cut(void *sink)
{
    struct tsink *s = sink;
    T.depth++;
    if (T.depth > T.max_depth)
        T.max_depth = T.depth;
    s->cuts++;
    s->room_at_cut = s->m.room;
    for (size_t i = 0; i < T.nsinks && i < SEEN_MAX; i++)
        s->seen_at_cut[i] = T.sinks[i]->nframes;
    ck_assert_uint_lt(T.ncut, SEEN_MAX);
    T.cut_log[T.ncut++] = s;

    struct hub_room *room = s->m.room;
    hub_leave(T.h, &s->m);
    if (s->leave_too)
        hub_leave(T.h, &s->leave_too->m);
    if (T.leave_broadcast && room && hub_room_count(room) > 0) {
        struct sbuf *f = frame_new(T.leave_len, 'L');
        hub_broadcast(T.h, room, f);
        sbuf_unref(f);
    }
    T.depth--;
}

static const struct hub_sink_ops t_ops = {t_send, t_backlog, t_cut};

static void hub_setup(size_t history, size_t max_rooms, size_t max_members, size_t max_backlog)
{
    memset(&T, 0, sizeof(T));
    T.leave_len = 20;
    struct hub_config cfg = {history, max_rooms, max_members, max_backlog};
    T.h = hub_new(&cfg, &t_ops);
    ck_assert_ptr_nonnull(T.h);
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
    char name[COMMAND_ROOM_MAX + 1];
    memset(name, 'x', COMMAND_ROOM_MAX);
    name[COMMAND_ROOM_MAX] = '\0';
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

START_TEST(taken_nick_gets_suffix)
{
    struct tsink s[6];
    memset(s, 0, sizeof(s));
    hub_setup(10, 100, 0, 1 << 20);
    join(&s[0], "r", "alice");
    join(&s[1], "r", "alice");
    join(&s[2], "r", "alice");
    ck_assert_str_eq(s[0].m.nick, "alice");
    ck_assert_str_eq(s[1].m.nick, "alice2");
    ck_assert_str_eq(s[2].m.nick, "alice3");
    /* the smallest free suffix is reused */
    hub_leave(T.h, &s[1].m);
    join(&s[3], "r", "alice");
    ck_assert_str_eq(s[3].m.nick, "alice2");
    /* a nick that is itself suffixed */
    join(&s[4], "r", "alice2");
    ck_assert_str_eq(s[4].m.nick, "alice22");
    /* the same nick in another room is not taken */
    join(&s[5], "elsewhere", "alice");
    ck_assert_str_eq(s[5].m.nick, "alice");
    hub_finish();
}
END_TEST

/* Asserts that nick is a valid nick (so at most 32 bytes of valid UTF-8). */
static void assert_nick_ok(const char *nick)
{
    size_t n = strlen(nick);
    ck_assert_msg(n <= COMMAND_NICK_MAX, "nick is %zu bytes", n);
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

    char longest[COMMAND_NICK_MAX + 1];
    memset(longest, 'z', COMMAND_NICK_MAX);
    longest[COMMAND_NICK_MAX] = '\0';
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
        hub_history_push(T.h, r, f[i], HDR);
        ck_assert_uint_eq(f[i]->refs, 2);
    }
    ck_assert_uint_eq(hub_room_history_count(r), 2);
    assert_history_event(r, 0, f[1], 1);
    assert_history_event(r, 1, f[2], 2);
    for (int i = 3; i <= 5; i++) {
        f[i] = event_frame(i);
        hub_history_push(T.h, r, f[i], HDR);
    }
    ck_assert_uint_eq(hub_room_history_count(r), 3);
    assert_history_event(r, 0, f[3], 3);
    assert_history_event(r, 1, f[4], 4);
    assert_history_event(r, 2, f[5], 5);
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
        hub_history_push(T.h, r, f, HDR);
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
    hub_history_push(T.h, r, f, HDR);
    ck_assert_uint_eq(hub_room_history_count(r), 0);
    ck_assert_uint_eq(f->refs, 1);
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
    hub_history_push(T.h, r, f, HDR);
    hub_leave(T.h, &a.m);
    ck_assert_uint_eq(f->refs, 2);
    ck_assert_ptr_eq(join(&b, "r", NULL), r);
    ck_assert_uint_eq(hub_room_history_count(r), 1);
    assert_history_event(r, 0, f, 7);
    sbuf_unref(f);
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
    hub_history_push(T.h, s->m.room, f, HDR);
    return f;
}

START_TEST(evict_least_recently_emptied)
{
    struct tsink a = {0}, b = {0}, c = {0}, x = {0};
    hub_setup(5, 2, 0, 1 << 20);
    struct hub_room *ra = join(&a, "a", NULL);
    struct hub_room *rb = join(&b, "b", NULL);
    struct sbuf *fa = remember(&a, 1), *fb = remember(&b, 2);
    ck_assert_uint_eq(hub_room_next_seq(ra), 1);
    ck_assert_uint_eq(hub_room_next_seq(rb), 1);
    hub_leave(T.h, &a.m);   /* a emptied first */
    hub_leave(T.h, &b.m);
    ck_assert_uint_eq(hub_room_total(T.h), 2);

    const char *reason;
    ck_assert_int_eq(hub_can_join(T.h, "c", &reason), 0);
    join(&c, "c", NULL);
    ck_assert_uint_eq(hub_room_total(T.h), 2);
    ck_assert_uint_eq(fa->refs, 1);   /* a's history was released with a */
    ck_assert_uint_eq(fb->refs, 2);

    /* b is still there with its history and sequence */
    ck_assert_ptr_eq(join(&b, "b", NULL), rb);
    ck_assert_uint_eq(hub_room_history_count(rb), 1);
    assert_history_event(rb, 0, fb, 2);
    ck_assert_uint_eq(hub_room_next_seq(rb), 2);

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

START_TEST(slow_member_is_cut_after_walk)
{
    struct tsink s[4];
    memset(s, 0, sizeof(s));
    hub_setup(5, 100, 0, 100);
    struct hub_room *r = NULL;
    for (int i = 0; i < 4; i++)
        r = join(&s[i], "r", NULL);
    /* the slow one sits in slot 1: members before and after it */
    struct tsink *slow = (struct tsink *)hub_room_member(r, 1)->sink;
    slow->backlog = 90;

    struct sbuf *f = frame_new(20, 'm');
    hub_broadcast(T.h, r, f);
    ck_assert_int_eq(slow->cuts, 1);
    ck_assert_uint_eq(T.ncut, 1);
    ck_assert_uint_eq(slow->nframes, 0);
    ck_assert_ptr_nonnull(slow->room_at_cut);   /* cut before it left */
    ck_assert_ptr_null(slow->m.room);
    for (size_t i = 0; i < T.nsinks; i++) {
        if (T.sinks[i] == slow)
            continue;
        /* when the cut came, every other member already had the frame */
        ck_assert_uint_eq(slow->seen_at_cut[i], 1);
        ck_assert_uint_eq(T.sinks[i]->nframes, 1);
        ck_assert_ptr_eq(T.sinks[i]->frames[0], f);
        ck_assert_int_eq(T.sinks[i]->cuts, 0);
    }
    ck_assert_uint_eq(f->refs, 1 + 3);
    ck_assert_uint_eq(hub_room_count(r), 3);
    ck_assert(!in_room(r, slow));
    assert_slots(r);

    /* nothing more reaches it */
    struct sbuf *g = frame_new(20, 'n');
    hub_broadcast(T.h, r, g);
    ck_assert_uint_eq(slow->nframes, 0);
    ck_assert_int_eq(slow->cuts, 1);
    ck_assert_uint_eq(g->refs, 1 + 3);
    sbuf_unref(f);
    sbuf_unref(g);
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
    ck_assert_ptr_null(b.m.room);
    ck_assert_uint_eq(hub_room_count(r), 1);
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
    ck_assert_uint_eq(s[0].nframes + s[4].nframes, 0);
    for (int i = 1; i < 4; i++) {
        ck_assert_uint_eq(s[i].nframes, 1);
        ck_assert_int_eq(s[i].cuts, 0);
        /* the walk was over before the first cut */
        ck_assert_uint_eq(T.cut_log[0]->seen_at_cut[i], 1);
    }
    ck_assert_uint_eq(hub_room_count(r), 3);
    ck_assert_ptr_null(s[0].m.room);
    ck_assert_ptr_null(s[4].m.room);
    assert_slots(r);
    ck_assert_uint_eq(f->refs, 1 + 3);
    sbuf_unref(f);
    hub_finish();
}
END_TEST

START_TEST(cut_callback_broadcasts_leave)
{
    struct tsink s[4];
    memset(s, 0, sizeof(s));
    hub_setup(5, 100, 0, 1000);
    T.leave_broadcast = 1;
    struct hub_room *r = NULL;
    for (int i = 0; i < 4; i++)
        r = join(&s[i], "r", NULL);
    s[1].backlog = 990;
    s[2].backlog = 995;
    struct sbuf *f = frame_new(20, 'm');
    hub_broadcast(T.h, r, f);

    ck_assert_int_eq(s[1].cuts, 1);
    ck_assert_int_eq(s[2].cuts, 1);
    ck_assert_int_eq(T.max_depth, 1);   /* no cut inside a cut */
    ck_assert_uint_eq(hub_room_count(r), 2);
    /* the survivors got the message, then one leave per cut member */
    for (int i = 0; i < 4; i += 3) {
        ck_assert_uint_eq(s[i].nframes, 3);
        ck_assert_ptr_eq(s[i].frames[0], f);
        ck_assert_int_eq(s[i].frames[1]->data[0], 'L');
        ck_assert_int_eq(s[i].frames[2]->data[0], 'L');
        ck_assert_ptr_ne(s[i].frames[1], s[i].frames[2]);
    }
    /* the same leave frame object went to both survivors */
    ck_assert_ptr_eq(s[0].frames[1], s[3].frames[1]);
    ck_assert_ptr_eq(s[0].frames[2], s[3].frames[2]);
    ck_assert_uint_eq(s[0].frames[1]->refs, 2);
    /* the cut members got nothing, not even the other's leave */
    ck_assert_uint_eq(s[1].nframes, 0);
    ck_assert_uint_eq(s[2].nframes, 0);
    sbuf_unref(f);
    hub_finish();
}
END_TEST

START_TEST(leave_broadcast_finds_another_slow_member)
{
    /* s1 is slow now; s2 takes the message but the leave pushes it over. */
    struct tsink s[3];
    memset(s, 0, sizeof(s));
    hub_setup(5, 100, 0, 100);
    T.leave_broadcast = 1;
    struct hub_room *r = NULL;
    for (int i = 0; i < 3; i++)
        r = join(&s[i], "r", NULL);
    s[1].backlog = 90;
    s[2].backlog = 70;
    struct sbuf *f = frame_new(20, 'm');
    hub_broadcast(T.h, r, f);

    ck_assert_int_eq(s[1].cuts, 1);
    ck_assert_int_eq(s[2].cuts, 1);
    ck_assert_ptr_eq(T.cut_log[0], &s[1]);
    ck_assert_ptr_eq(T.cut_log[1], &s[2]);
    ck_assert_int_eq(T.max_depth, 1);
    ck_assert_uint_eq(s[1].nframes, 0);
    ck_assert_uint_eq(s[2].nframes, 1);          /* the message only */
    ck_assert_ptr_eq(s[2].frames[0], f);
    ck_assert_uint_eq(s[0].nframes, 3);          /* message, leave s1, leave s2 */
    ck_assert_ptr_eq(s[0].frames[0], f);
    ck_assert_int_eq(s[0].frames[1]->data[0], 'L');
    ck_assert_int_eq(s[0].frames[2]->data[0], 'L');
    ck_assert_uint_eq(hub_room_count(r), 1);
    ck_assert_ptr_eq(hub_room_member(r, 0), &s[0].m);
    sbuf_unref(f);
    hub_finish();
}
END_TEST

START_TEST(pending_cut_member_leaves_first)
{
    /* Two members are due to be cut; the first cut also makes the other leave
     * (say its connection closed): that one is not cut afterwards. */
    struct tsink s[3];
    memset(s, 0, sizeof(s));
    hub_setup(5, 100, 0, 100);
    struct hub_room *r = NULL;
    for (int i = 0; i < 3; i++)
        r = join(&s[i], "r", NULL);
    s[0].backlog = s[1].backlog = 90;
    s[0].leave_too = &s[1];
    s[1].leave_too = &s[0];
    struct sbuf *f = frame_new(20, 'm');
    hub_broadcast(T.h, r, f);
    ck_assert_uint_eq(T.ncut, 1);
    ck_assert_int_eq(s[0].cuts + s[1].cuts, 1);
    ck_assert_ptr_null(s[0].m.room);
    ck_assert_ptr_null(s[1].m.room);
    ck_assert_uint_eq(hub_room_count(r), 1);
    ck_assert_uint_eq(s[2].nframes, 1);
    /* the hub still works afterwards */
    struct sbuf *g = frame_new(20, 'n');
    hub_broadcast(T.h, r, g);
    ck_assert_uint_eq(s[2].nframes, 2);
    ck_assert_uint_eq(T.ncut, 1);
    sbuf_unref(f);
    sbuf_unref(g);
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
    tcase_add_test(n, taken_nick_gets_suffix);
    tcase_add_test(n, suffix_on_long_ascii_nick);
    tcase_add_test(n, suffix_on_long_utf8_nick);
    tcase_add_test(n, suffix_cuts_at_code_point_boundary);
    tcase_add_test(n, nick_free_after_leave);
    tcase_add_test(n, rename_member);
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
    tcase_add_test(h, seq_per_room);
    suite_add_tcase(s, h);

    TCase *e = tcase_create("eviction");
    tcase_add_test(e, evict_least_recently_emptied);
    tcase_add_test(e, evict_by_emptying_order_not_creation);
    tcase_add_test(e, rejoined_room_leaves_lru);
    tcase_add_test(e, evict_many);
    suite_add_tcase(s, e);

    TCase *c = tcase_create("slow");
    tcase_add_test(c, slow_member_is_cut_after_walk);
    tcase_add_test(c, backlog_limit_boundary);
    tcase_add_test(c, send_to_slow_member_cuts);
    tcase_add_test(c, two_slow_members_both_cut);
    tcase_add_test(c, cut_callback_broadcasts_leave);
    tcase_add_test(c, leave_broadcast_finds_another_slow_member);
    tcase_add_test(c, pending_cut_member_leaves_first);
    tcase_add_test(c, free_after_everyone_left);
    suite_add_tcase(s, c);
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
