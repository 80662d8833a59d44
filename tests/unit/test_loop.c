/* test_loop: unit tests for src/loop.c, the epoll reactor: timers fire in
 * deadline order (many, armed in random order), cancel (the heap's top, a
 * middle one, twice, never armed), re-arming earlier and later, zero delays,
 * timers armed from timer callbacks, loop_stop, loop_wake, the before-wait
 * hook, and file events on socketpairs and pipes (read and write readiness,
 * changing masks, unregistering, hangup). Every test runs under a watchdog
 * timer, so none can block for more than about two seconds. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define EXPECT(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

#define WATCHDOG_MS 2000
#define MAX_EVENTS_LOGGED 4096

/* A loop with a watchdog, the hook's iteration count and a log of what fired. */
struct fixture {
    struct loop *loop;
    struct loop_timer watchdog;
    int timed_out;
    int iterations;             /* before-wait hook runs */
    int log[MAX_EVENTS_LOGGED]; /* ids, or -iteration for hook runs when tracing */
    int nlog;
    int trace_hook;
    int stop_after;             /* stop once this many timers have fired (0: never) */
    int fired;
};

struct test_timer {
    struct loop_timer t;
    struct fixture *fx;
    int id;
    int iteration;              /* hook runs before it fired */
    uint64_t fired_at;          /* loop_now() when it fired */
};

static void log_event(struct fixture *fx, int v)
{
    if (fx->nlog < MAX_EVENTS_LOGGED)
        fx->log[fx->nlog++] = v;
}

static void on_watchdog(struct loop *l, struct loop_timer *t)
{
    struct fixture *fx = container_of(t, struct fixture, watchdog);
    fx->timed_out = 1;
    loop_stop(l);
}

static void on_hook(struct loop *l, void *data)
{
    (void)l;
    struct fixture *fx = data;
    fx->iterations++;
    if (fx->trace_hook)
        log_event(fx, -fx->iterations);
}

static void fixture_init(struct fixture *fx)
{
    memset(fx, 0, sizeof(*fx));
    fx->loop = loop_new();
    ck_assert_ptr_nonnull(fx->loop);
    fx->watchdog.cb = on_watchdog;
    loop_timer_after(fx->loop, &fx->watchdog, WATCHDOG_MS);
    loop_set_before_wait(fx->loop, on_hook, fx);
}

/* Runs the loop and checks that it ended by loop_stop, not by the watchdog. */
static void fixture_run(struct fixture *fx)
{
    ck_assert_int_eq(loop_run(fx->loop), 0);
    ck_assert_msg(!fx->timed_out, "the watchdog fired: something never happened");
}

static void fixture_done(struct fixture *fx)
{
    loop_timer_cancel(fx->loop, &fx->watchdog);
    loop_free(fx->loop);
}

static void on_test_timer(struct loop *l, struct loop_timer *t)
{
    struct test_timer *tt = container_of(t, struct test_timer, t);
    struct fixture *fx = tt->fx;
    ck_assert_uint_eq(t->index, 0);   /* disarmed before its callback runs */
    EXPECT((int32_t)((uint32_t)loop_now(l) - t->when) >= 0, "timer %d fired at %llu, before %u", tt->id,
           (unsigned long long)loop_now(l), t->when);
    tt->iteration = fx->iterations;
    tt->fired_at = loop_now(l);
    log_event(fx, tt->id);
    if (++fx->fired == fx->stop_after)
        loop_stop(l);
}

static void timer_init(struct test_timer *tt, struct fixture *fx, int id)
{
    memset(tt, 0, sizeof(*tt));
    tt->t.cb = on_test_timer;
    tt->fx = fx;
    tt->id = id;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A random permutation of 0..n-1. */
static void shuffle(int *v, int n, uint32_t seed)
{
    for (int i = 0; i < n; i++)
        v[i] = i;
    for (int i = n - 1; i > 0; i--) {
        seed = seed * 1103515245u + 12345u;
        int j = (int)((seed >> 16) % (uint32_t)(i + 1)), x = v[i];
        v[i] = v[j];
        v[j] = x;
    }
}

/* Checks that the logged timer ids fired in order of deadline. */
static void check_deadline_order(const struct fixture *fx, const struct test_timer *timers)
{
    for (int i = 1; i < fx->nlog; i++) {
        const struct test_timer *a = &timers[fx->log[i - 1]], *b = &timers[fx->log[i]];
        EXPECT((int32_t)(b->t.when - a->t.when) >= 0, "timer %d (due %u) fired after timer %d (due %u)", b->id,
               b->t.when, a->id, a->t.when);
    }
}

START_TEST(test_deadline_order)
{
    enum { N = 300 };
    struct fixture fx;
    static struct test_timer timers[N];
    int order[N];

    fixture_init(&fx);
    shuffle(order, N, 42);
    for (int i = 0; i < N; i++) {
        struct test_timer *tt = &timers[order[i]];
        timer_init(tt, &fx, order[i]);
        loop_timer_after(fx.loop, &tt->t, (uint64_t)(order[i] * 7919 % 25));   /* 0..24 ms, many ties */
        ck_assert_uint_ne(tt->t.index, 0);
    }
    fx.stop_after = N;
    fixture_run(&fx);
    ck_assert_int_eq(fx.nlog, N);
    check_deadline_order(&fx, timers);
    for (int i = 0; i < N; i++)
        ck_assert_uint_eq(timers[i].t.index, 0);
    /* timers due in the same millisecond fire in the order they were armed */
    int armed_at[N];
    for (int i = 0; i < N; i++)
        armed_at[order[i]] = i;
    for (int i = 1; i < N; i++) {
        const struct test_timer *a = &timers[fx.log[i - 1]], *b = &timers[fx.log[i]];
        EXPECT(a->t.when != b->t.when || armed_at[a->id] < armed_at[b->id], "timers %d and %d due together fired "
               "out of arming order", a->id, b->id);
    }
    fixture_done(&fx);
}
END_TEST

START_TEST(test_cancel)
{
    enum { N = 50 };
    struct fixture fx;
    struct test_timer timers[N], never;
    int order[N];

    fixture_init(&fx);
    shuffle(order, N, 7);
    for (int i = 0; i < N; i++) {
        timer_init(&timers[order[i]], &fx, order[i]);
        loop_timer_after(fx.loop, &timers[order[i]].t, (uint64_t)order[i] + 1);
    }
    loop_timer_cancel(fx.loop, &timers[0].t);    /* the heap's top: due first */
    loop_timer_cancel(fx.loop, &timers[25].t);   /* somewhere in the middle */
    loop_timer_cancel(fx.loop, &timers[25].t);   /* twice: harmless */
    loop_timer_cancel(fx.loop, &timers[N - 1].t);/* due last */
    loop_timer_cancel(fx.loop, &timers[1].t);    /* the new top */
    timer_init(&never, &fx, -1);
    loop_timer_cancel(fx.loop, &never.t);        /* never armed */
    ck_assert_uint_eq(timers[0].t.index, 0);
    ck_assert_uint_eq(timers[25].t.index, 0);
    fx.stop_after = N - 4;
    fixture_run(&fx);
    ck_assert_int_eq(fx.nlog, N - 4);
    check_deadline_order(&fx, timers);
    for (int i = 0; i < fx.nlog; i++)
        EXPECT(fx.log[i] != 0 && fx.log[i] != 1 && fx.log[i] != 25 && fx.log[i] != N - 1, "cancelled timer %d fired",
               fx.log[i]);
    fixture_done(&fx);
}
END_TEST

/* Many timers, half of them cancelled in random order: the heap stays a heap. */
START_TEST(test_cancel_many)
{
    enum { N = 1000 };
    struct fixture fx;
    static struct test_timer timers[N];
    int order[N], cancelled[N] = {0};
    uint32_t x = 99;

    fixture_init(&fx);
    shuffle(order, N, 3);
    for (int i = 0; i < N; i++) {
        timer_init(&timers[order[i]], &fx, order[i]);
        x = x * 1103515245u + 12345u;
        loop_timer_after(fx.loop, &timers[order[i]].t, (x >> 16) % 30);
    }
    shuffle(order, N, 5);
    for (int i = 0; i < N / 2; i++) {
        loop_timer_cancel(fx.loop, &timers[order[i]].t);
        cancelled[order[i]] = 1;
    }
    fx.stop_after = N / 2;
    fixture_run(&fx);
    ck_assert_int_eq(fx.nlog, N / 2);
    check_deadline_order(&fx, timers);
    for (int i = 0; i < fx.nlog; i++)
        EXPECT(!cancelled[fx.log[i]], "cancelled timer %d fired", fx.log[i]);
    fixture_done(&fx);
}
END_TEST

START_TEST(test_rearm)
{
    struct fixture fx;
    struct test_timer a, b, c;

    fixture_init(&fx);
    timer_init(&a, &fx, 0);
    timer_init(&b, &fx, 1);
    timer_init(&c, &fx, 2);
    loop_timer_after(fx.loop, &a.t, 60);
    loop_timer_after(fx.loop, &b.t, 10);
    loop_timer_after(fx.loop, &c.t, 20);
    loop_timer_after(fx.loop, &a.t, 1);    /* earlier: now first */
    loop_timer_after(fx.loop, &b.t, 40);   /* later: now last */
    uint64_t start = loop_now(fx.loop);
    ck_assert_uint_eq(a.t.when, (uint32_t)(start + 1));
    ck_assert_uint_eq(b.t.when, (uint32_t)(start + 40));
    loop_timer_after(fx.loop, &c.t, UINT64_MAX);   /* past the longest wait: that wait */
    ck_assert_uint_eq(c.t.when, (uint32_t)(start + LOOP_TIMER_MAX_MS));
    loop_timer_after(fx.loop, &c.t, 20);
    fx.stop_after = 3;
    fixture_run(&fx);
    ck_assert_int_eq(fx.nlog, 3);
    ck_assert_int_eq(fx.log[0], 0);
    ck_assert_int_eq(fx.log[1], 2);
    ck_assert_int_eq(fx.log[2], 1);
    ck_assert_uint_ge(b.fired_at, start + 40);
    fixture_done(&fx);
}
END_TEST

/* A timer due in 0 ms fires in the first iteration, without the wait blocking. */
START_TEST(test_zero_delay)
{
    struct fixture fx;
    struct test_timer t;

    fixture_init(&fx);
    timer_init(&t, &fx, 0);
    loop_timer_after(fx.loop, &t.t, 0);
    fx.stop_after = 1;
    uint64_t start = mono_ms();
    fixture_run(&fx);
    ck_assert_int_eq(fx.nlog, 1);
    ck_assert_int_eq(t.iteration, 1);   /* after the first before-wait hook, before the second */
    ck_assert_uint_lt(mono_ms() - start, WATCHDOG_MS / 2);
    fixture_done(&fx);
}
END_TEST

struct chain {
    struct test_timer tt;
    int left;                   /* re-arms to go */
    uint64_t delay;
};

static void on_chain(struct loop *l, struct loop_timer *t)
{
    struct chain *c = container_of(t, struct chain, tt.t);
    on_test_timer(l, t);
    if (c->left-- > 0)
        loop_timer_after(l, t, c->delay);
    else
        loop_stop(l);
}

/* A timer that re-arms itself from its callback fires again later. */
START_TEST(test_rearm_from_callback)
{
    struct fixture fx;
    struct chain c;

    fixture_init(&fx);
    timer_init(&c.tt, &fx, 0);
    c.tt.t.cb = on_chain;
    c.left = 5;
    c.delay = 3;
    uint64_t start = loop_now(fx.loop);
    loop_timer_after(fx.loop, &c.tt.t, 3);
    fixture_run(&fx);
    ck_assert_int_eq(fx.nlog, 6);
    ck_assert_uint_ge(c.tt.fired_at, start + 18);
    fixture_done(&fx);
}
END_TEST

/* A zero-delay timer armed from a timer callback fires on the next iteration,
 * after the before-wait hook, not in the same pass: a timer that keeps
 * re-arming itself at 0 must not starve I/O and the hook. */
START_TEST(test_zero_delay_from_callback)
{
    struct fixture fx;
    struct chain c;

    fixture_init(&fx);
    fx.trace_hook = 1;
    timer_init(&c.tt, &fx, 0);
    c.tt.t.cb = on_chain;
    c.left = 5;
    c.delay = 0;
    loop_timer_after(fx.loop, &c.tt.t, 0);
    fixture_run(&fx);
    /* hook, timer, hook, timer, ...: one firing per iteration */
    ck_assert_int_eq(fx.nlog, 12);
    for (int i = 0; i < 12; i++)
        EXPECT(fx.log[i] == (i % 2 ? 0 : -(i / 2 + 1)), "event %d is %d: the timer fired twice in one iteration", i,
               fx.log[i]);
    fixture_done(&fx);
}
END_TEST

struct arming {
    struct test_timer tt;
    struct test_timer *other;
    uint64_t delay;
};

static void on_arm_other(struct loop *l, struct loop_timer *t)
{
    struct arming *a = container_of(t, struct arming, tt.t);
    on_test_timer(l, t);
    loop_timer_after(l, &a->other->t, a->delay);
}

/* A timer armed from another's callback counts from the current loop_now(). */
START_TEST(test_arm_from_callback)
{
    struct fixture fx;
    struct arming a;
    struct test_timer b, c;

    fixture_init(&fx);
    timer_init(&a.tt, &fx, 0);
    timer_init(&b, &fx, 1);
    timer_init(&c, &fx, 2);
    a.tt.t.cb = on_arm_other;
    a.other = &b;
    a.delay = 10;
    loop_timer_after(fx.loop, &a.tt.t, 5);
    loop_timer_after(fx.loop, &c.t, 8);   /* due between the two */
    fx.stop_after = 3;
    fixture_run(&fx);
    ck_assert_int_eq(fx.nlog, 3);
    ck_assert_int_eq(fx.log[0], 0);
    ck_assert_int_eq(fx.log[1], 2);
    ck_assert_int_eq(fx.log[2], 1);
    ck_assert_uint_eq(b.t.when, a.tt.fired_at + 10);
    ck_assert_uint_ge(b.fired_at, a.tt.fired_at + 10);
    fixture_done(&fx);
}
END_TEST

static void on_stop(struct loop *l, struct loop_timer *t)
{
    on_test_timer(l, t);
    loop_stop(l);
}

/* loop_stop from a callback returns from loop_run after that iteration; the
 * loop can be run again, and timers still armed fire then. */
START_TEST(test_stop_from_callback)
{
    struct fixture fx;
    struct test_timer stop, later;

    fixture_init(&fx);
    timer_init(&stop, &fx, 0);
    timer_init(&later, &fx, 1);
    stop.t.cb = on_stop;
    loop_timer_after(fx.loop, &stop.t, 2);
    loop_timer_after(fx.loop, &later.t, 30);
    fixture_run(&fx);
    ck_assert_int_eq(fx.nlog, 1);
    ck_assert_uint_ne(later.t.index, 0);   /* still armed */
    fx.stop_after = 2;
    fixture_run(&fx);
    ck_assert_int_eq(fx.nlog, 2);
    ck_assert_int_eq(fx.log[1], 1);
    fixture_done(&fx);
}
END_TEST

static void hook_stop_at_3(struct loop *l, void *data)
{
    struct fixture *fx = data;
    if (++fx->iterations == 3)
        loop_stop(l);
}

/* loop_stop from the before-wait hook returns without waiting again: the
 * third iteration stops before the timer due at 500 ms. */
START_TEST(test_stop_from_hook)
{
    struct fixture fx;
    struct arming first;
    struct test_timer second, late;

    fixture_init(&fx);
    loop_set_before_wait(fx.loop, hook_stop_at_3, &fx);
    timer_init(&first.tt, &fx, 0);
    timer_init(&second, &fx, 1);
    timer_init(&late, &fx, 2);
    first.tt.t.cb = on_arm_other;   /* iteration 1 arms the second for iteration 2 */
    first.other = &second;
    first.delay = 1;
    loop_timer_after(fx.loop, &first.tt.t, 0);
    loop_timer_after(fx.loop, &late.t, 500);
    uint64_t start = mono_ms();
    fixture_run(&fx);
    ck_assert_int_eq(fx.iterations, 3);
    ck_assert_int_eq(fx.nlog, 2);
    ck_assert_int_eq(first.tt.iteration, 1);
    ck_assert_int_eq(second.iteration, 2);
    ck_assert_uint_ne(late.t.index, 0);
    ck_assert_uint_lt(mono_ms() - start, 500);
    fixture_done(&fx);
}
END_TEST

static void hook_wake(struct loop *l, void *data)
{
    struct fixture *fx = data;
    if (++fx->iterations == 4)
        loop_stop(l);
    else
        loop_wake(l);
}

/* loop_wake makes the next wait return at once: with nothing but the watchdog
 * armed, four iterations take no time. */
START_TEST(test_wake)
{
    struct fixture fx;

    fixture_init(&fx);
    loop_set_before_wait(fx.loop, hook_wake, &fx);
    uint64_t start = mono_ms();
    fixture_run(&fx);
    ck_assert_int_eq(fx.iterations, 4);
    ck_assert_uint_lt(mono_ms() - start, WATCHDOG_MS / 2);
    fixture_done(&fx);
}
END_TEST

static void on_wake_timer(struct loop *l, struct loop_timer *t)
{
    on_test_timer(l, t);
    loop_wake(l);
}

/* loop_wake from a timer callback: the next iteration does not block either. */
START_TEST(test_wake_from_callback)
{
    struct fixture fx;
    struct test_timer t;

    fixture_init(&fx);
    loop_set_before_wait(fx.loop, hook_stop_at_3, &fx);
    timer_init(&t, &fx, 0);
    t.t.cb = on_wake_timer;
    loop_timer_after(fx.loop, &t.t, 0);   /* fires in iteration 1; the wake ends the wait of 2 */
    uint64_t start = mono_ms();
    fixture_run(&fx);
    ck_assert_int_eq(fx.iterations, 3);
    ck_assert_uint_lt(mono_ms() - start, WATCHDOG_MS / 2);
    fixture_done(&fx);
}
END_TEST

/* The hook runs before every wait: between two firings of a timer (one per
 * iteration) there is always a hook run. */
START_TEST(test_hook_every_iteration)
{
    struct fixture fx;
    struct chain c;

    fixture_init(&fx);
    fx.trace_hook = 1;
    timer_init(&c.tt, &fx, 7);
    c.tt.t.cb = on_chain;
    c.left = 4;
    c.delay = 2;
    loop_timer_after(fx.loop, &c.tt.t, 2);
    fixture_run(&fx);
    ck_assert_int_ge(fx.iterations, 5);
    ck_assert_int_lt(fx.log[0], 0);
    int hooks = 0, fired = 0;
    for (int i = 0; i < fx.nlog; i++) {
        if (fx.log[i] < 0) {
            EXPECT(fx.log[i] == -(hooks + 1), "hook runs out of order");
            hooks++;
        } else {
            EXPECT(i > 0 && fx.log[i - 1] < 0, "timer fired twice without a hook run between");
            fired++;
        }
    }
    ck_assert_int_eq(fired, 5);
    ck_assert_int_eq(hooks, fx.iterations);
    fixture_done(&fx);
}
END_TEST

/* File events. */
struct test_io {
    struct loop_io io;
    struct fixture *fx;
    int calls;
    uint32_t events[64];
    char got[64];
    size_t ngot;
    int set_mask_to;            /* on a write event, change the mask to this (-1: leave it) */
    int stop_on_read;
};

static void on_test_io(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct test_io *t = container_of(io, struct test_io, io);
    if (t->calls < 64)
        t->events[t->calls] = events;
    t->calls++;
    if (events & LOOP_READ) {
        ssize_t n = read(io->fd, t->got + t->ngot, sizeof(t->got) - 1 - t->ngot);
        if (n > 0)
            t->ngot += (size_t)n;
        if (t->stop_on_read)
            loop_stop(l);
    }
    if ((events & LOOP_WRITE) && t->set_mask_to >= 0)
        ck_assert_int_eq(loop_io_set(l, io, (uint32_t)t->set_mask_to), 0);
    if (t->calls > 50)
        loop_stop(l);   /* a level-triggered event that never stops */
}

struct writer {
    struct test_timer tt;
    int fd;
    const char *text;
};

static void on_write_later(struct loop *l, struct loop_timer *t)
{
    struct writer *w = container_of(t, struct writer, tt.t);
    on_test_timer(l, t);
    ck_assert_int_eq(write(w->fd, w->text, strlen(w->text)), (ssize_t)strlen(w->text));
}

static void test_io_init(struct test_io *t, struct fixture *fx, int fd)
{
    memset(t, 0, sizeof(*t));
    t->io.fd = fd;
    t->io.cb = on_test_io;
    t->fx = fx;
    t->set_mask_to = -1;
}

START_TEST(test_io_read_ready)
{
    struct fixture fx;
    struct test_io r;
    struct writer w;
    int sv[2];

    fixture_init(&fx);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    test_io_init(&r, &fx, sv[0]);
    r.stop_on_read = 1;
    ck_assert_int_eq(loop_io_add(fx.loop, &r.io, LOOP_READ), 0);
    ck_assert_uint_eq(r.io.mask, LOOP_READ);
    timer_init(&w.tt, &fx, 0);
    w.tt.t.cb = on_write_later;
    w.fd = sv[1];
    w.text = "ping";
    loop_timer_after(fx.loop, &w.tt.t, 5);
    fixture_run(&fx);
    ck_assert_int_eq(r.calls, 1);   /* nothing before the write */
    ck_assert_uint_eq(r.events[0] & LOOP_READ, LOOP_READ);
    ck_assert_uint_eq(r.events[0] & LOOP_WRITE, 0);
    ck_assert_uint_eq(r.ngot, 4);
    ck_assert_mem_eq(r.got, "ping", 4);
    loop_io_del(fx.loop, &r.io);
    close(sv[0]);
    close(sv[1]);
    fixture_done(&fx);
}
END_TEST

static void hook_stop_at(struct loop *l, void *data)
{
    struct fixture *fx = data;
    if (++fx->iterations == fx->stop_after)
        loop_stop(l);
}

/* A writable socket reports LOOP_WRITE at once; after loop_io_set drops
 * LOOP_WRITE it is not reported again, and LOOP_READ still is. */
START_TEST(test_io_write_ready_and_set)
{
    struct fixture fx;
    struct test_io t;
    struct writer w;
    int sv[2];

    fixture_init(&fx);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    test_io_init(&t, &fx, sv[0]);
    t.set_mask_to = LOOP_READ;
    t.stop_on_read = 1;
    ck_assert_int_eq(loop_io_add(fx.loop, &t.io, LOOP_READ | LOOP_WRITE), 0);
    timer_init(&w.tt, &fx, 0);
    w.tt.t.cb = on_write_later;
    w.fd = sv[1];
    w.text = "x";
    loop_timer_after(fx.loop, &w.tt.t, 20);
    fixture_run(&fx);
    ck_assert_int_eq(t.calls, 2);   /* one write event, then the read */
    ck_assert_uint_eq(t.events[0], LOOP_WRITE);
    ck_assert_uint_eq(t.events[1], LOOP_READ);
    ck_assert_uint_eq(t.io.mask, LOOP_READ);
    ck_assert_int_ge(fx.iterations, 2);

    /* an unchanged mask is a no-op; a new one takes effect on the next wait */
    ck_assert_int_eq(loop_io_set(fx.loop, &t.io, LOOP_READ), 0);
    t.set_mask_to = -1;
    t.stop_on_read = 0;
    ck_assert_int_eq(loop_io_set(fx.loop, &t.io, LOOP_WRITE), 0);
    ck_assert_uint_eq(t.io.mask, LOOP_WRITE);
    ck_assert_int_eq(write(sv[1], "y", 1), 1);   /* readable, but not asked for */
    fx.iterations = 0;
    fx.stop_after = 3;
    loop_set_before_wait(fx.loop, hook_stop_at, &fx);
    fixture_run(&fx);
    ck_assert_int_eq(t.calls, 4);   /* LOOP_WRITE in each of the two waits, never LOOP_READ */
    ck_assert_uint_eq(t.events[2], LOOP_WRITE);
    ck_assert_uint_eq(t.events[3], LOOP_WRITE);

    /* mask 0: nothing but errors and hangups */
    ck_assert_int_eq(loop_io_set(fx.loop, &t.io, 0), 0);
    fx.iterations = 0;
    fx.stop_after = 2;
    loop_wake(fx.loop);
    fixture_run(&fx);
    ck_assert_int_eq(t.calls, 4);
    close(sv[1]);
    fx.iterations = 0;
    loop_wake(fx.loop);
    fixture_run(&fx);
    ck_assert_int_ge(t.calls, 5);
    ck_assert_uint_ne(t.events[4] & LOOP_ERROR, 0);   /* hangup is always reported */
    loop_io_del(fx.loop, &t.io);
    close(sv[0]);
    fixture_done(&fx);
}
END_TEST

/* After loop_io_del nothing is reported for the fd, even when it is ready. */
START_TEST(test_io_del)
{
    struct fixture fx;
    struct test_io r;
    struct test_timer t;
    int p[2];

    fixture_init(&fx);
    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    test_io_init(&r, &fx, p[0]);
    ck_assert_int_eq(loop_io_add(fx.loop, &r.io, LOOP_READ), 0);
    ck_assert_int_eq(write(p[1], "abc", 3), 3);
    r.stop_on_read = 1;
    fixture_run(&fx);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_mem_eq(r.got, "abc", 3);

    loop_io_del(fx.loop, &r.io);
    ck_assert_uint_eq(r.io.mask, 0);
    ck_assert_int_eq(write(p[1], "def", 3), 3);
    close(p[1]);   /* and a hangup */
    timer_init(&t, &fx, 0);
    loop_timer_after(fx.loop, &t.t, 10);
    fx.stop_after = 1;
    fixture_run(&fx);
    ck_assert_int_eq(r.calls, 1);
    /* it can be registered again */
    ck_assert_int_eq(loop_io_add(fx.loop, &r.io, LOOP_READ), 0);
    fixture_run(&fx);
    ck_assert_int_eq(r.calls, 2);
    ck_assert_mem_eq(r.got, "abcdef", 6);
    loop_io_del(fx.loop, &r.io);
    close(p[0]);
    fixture_done(&fx);
}
END_TEST

/* A pipe's write end reports LOOP_WRITE; a bad fd cannot be added. */
START_TEST(test_io_pipe_write_and_errors)
{
    struct fixture fx;
    struct test_io wr, bad;
    int p[2];

    fixture_init(&fx);
    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    test_io_init(&wr, &fx, p[1]);
    wr.set_mask_to = 0;
    ck_assert_int_eq(loop_io_add(fx.loop, &wr.io, LOOP_WRITE), 0);
    ck_assert_int_eq(loop_io_add(fx.loop, &wr.io, LOOP_WRITE), -1);   /* already registered */
    ck_assert_int_eq(errno, EEXIST);
    fx.stop_after = 2;
    loop_set_before_wait(fx.loop, hook_stop_at, &fx);
    fixture_run(&fx);
    ck_assert_int_eq(wr.calls, 1);
    ck_assert_uint_eq(wr.events[0], LOOP_WRITE);

    test_io_init(&bad, &fx, -1);
    ck_assert_int_eq(loop_io_add(fx.loop, &bad.io, LOOP_READ), -1);
    ck_assert_int_eq(errno, EBADF);
    ck_assert_uint_eq(bad.io.mask, 0);
    loop_io_del(fx.loop, &wr.io);
    close(p[0]);
    close(p[1]);
    fixture_done(&fx);
}
END_TEST

/* loop_now moves only between iterations and keeps up with the clock. */
START_TEST(test_now)
{
    struct fixture fx;
    struct test_timer t;

    fixture_init(&fx);
    uint64_t before = loop_now(fx.loop), wall = mono_ms();
    ck_assert_uint_le(before, wall);
    timer_init(&t, &fx, 0);
    loop_timer_after(fx.loop, &t.t, 25);
    ck_assert_uint_eq(loop_now(fx.loop), before);
    fx.stop_after = 1;
    fixture_run(&fx);
    ck_assert_uint_ge(t.fired_at, before + 25);
    ck_assert_uint_ge(mono_ms(), before + 25);   /* from the loop's own reading: ms truncation cannot cut it */
    ck_assert_uint_eq(loop_now(fx.loop), t.fired_at);
    fixture_done(&fx);
}
END_TEST

static Suite *loop_suite(void)
{
    Suite *s = suite_create("loop");
    TCase *timers = tcase_create("timers");
    TCase *control = tcase_create("control");
    TCase *io = tcase_create("io");

    tcase_add_test(timers, test_deadline_order);
    tcase_add_test(timers, test_cancel);
    tcase_add_test(timers, test_cancel_many);
    tcase_add_test(timers, test_rearm);
    tcase_add_test(timers, test_zero_delay);
    tcase_add_test(timers, test_rearm_from_callback);
    tcase_add_test(timers, test_zero_delay_from_callback);
    tcase_add_test(timers, test_arm_from_callback);
    tcase_add_test(timers, test_now);
    suite_add_tcase(s, timers);

    tcase_add_test(control, test_stop_from_callback);
    tcase_add_test(control, test_stop_from_hook);
    tcase_add_test(control, test_wake);
    tcase_add_test(control, test_wake_from_callback);
    tcase_add_test(control, test_hook_every_iteration);
    suite_add_tcase(s, control);

    tcase_add_test(io, test_io_read_ready);
    tcase_add_test(io, test_io_write_ready_and_set);
    tcase_add_test(io, test_io_del);
    tcase_add_test(io, test_io_pipe_write_and_errors);
    suite_add_tcase(s, io);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(loop_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
