/* loop: the epoll reactor and a binary min-heap of timers. Knows fds,
 * callbacks and milliseconds only; never reads or writes a socket itself. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256

/* A heap slot: the timer and its arming number, so that timers due in the
 * same millisecond fire in the order they were armed, and a pass of due
 * timers leaves those armed during it for the next iteration. */
struct heap_slot {
    struct loop_timer *t;
    uint64_t seq;
};

struct loop {
    int epfd;
    int running;
    int wake;
    uint64_t now;
    struct heap_slot *heap;     /* heap[1..count] */
    uint32_t count, cap;
    uint64_t seq;               /* timers armed so far */
    loop_hook_fn before_wait;
    void *before_wait_data;
};

static uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    l->now = clock_ms();
    return l;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    close(l->epfd);
    free(l->heap);
    free(l);
}

int loop_io_add(struct loop *l, struct loop_io *io, uint32_t mask)
{
    struct epoll_event ev = {.events = mask, .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0)
        return -1;
    io->mask = mask;
    return 0;
}

int loop_io_set(struct loop *l, struct loop_io *io, uint32_t mask)
{
    if (mask == io->mask)
        return 0;
    struct epoll_event ev = {.events = mask, .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
        return -1;
    io->mask = mask;
    return 0;
}

void loop_io_del(struct loop *l, struct loop_io *io)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->mask = 0;
}

uint64_t loop_now(const struct loop *l)
{
    return l->now;
}

/* How far a 32-bit due time is after b's (negative: before), modulo 2^32. */
static int32_t due_after(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b);
}

static int fires_before(const struct heap_slot *a, const struct heap_slot *b)
{
    int32_t d = due_after(a->t->when, b->t->when);
    return d < 0 || (d == 0 && a->seq < b->seq);
}

static void heap_place(struct loop *l, uint32_t i, struct heap_slot s)
{
    l->heap[i] = s;
    s.t->index = i;
}

static void sift_up(struct loop *l, uint32_t i)
{
    struct heap_slot s = l->heap[i];
    while (i > 1 && fires_before(&s, &l->heap[i / 2])) {
        heap_place(l, i, l->heap[i / 2]);
        i /= 2;
    }
    heap_place(l, i, s);
}

static void sift_down(struct loop *l, uint32_t i)
{
    struct heap_slot s = l->heap[i];
    for (;;) {
        uint32_t c = 2 * i;
        if (c > l->count)
            break;
        if (c + 1 <= l->count && fires_before(&l->heap[c + 1], &l->heap[c]))
            c++;
        if (!fires_before(&l->heap[c], &s))
            break;
        heap_place(l, i, l->heap[c]);
        i = c;
    }
    heap_place(l, i, s);
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
    uint32_t i = t->index;
    if (!i)
        return;
    t->index = 0;
    struct heap_slot last = l->heap[l->count--];
    if (i > l->count)
        return;
    heap_place(l, i, last);
    sift_up(l, i);
    sift_down(l, last.t->index);
}

void loop_timer_after(struct loop *l, struct loop_timer *t, uint64_t ms)
{
    loop_timer_cancel(l, t);
    if (l->count + 1 >= l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 64;
        struct heap_slot *h = realloc(l->heap, cap * sizeof(*h));
        if (!h)
            abort();   /* cannot keep a promise to fire: fail loudly, not silently */
        l->heap = h;
        l->cap = cap;
    }
    t->when = (uint32_t)(l->now + (ms < LOOP_TIMER_MAX_MS ? ms : LOOP_TIMER_MAX_MS));
    heap_place(l, ++l->count, (struct heap_slot){t, l->seq++});
    sift_up(l, l->count);
}

void loop_set_before_wait(struct loop *l, loop_hook_fn fn, void *data)
{
    l->before_wait = fn;
    l->before_wait_data = data;
}

void loop_stop(struct loop *l)
{
    l->running = 0;
}

void loop_wake(struct loop *l)
{
    l->wake = 1;
}

/* Fires the timers that are due and were armed before this pass: one armed
 * from a timer callback with delay 0 waits for the next iteration, so a timer
 * that keeps re-arming itself at 0 cannot starve file events and the hook. */
static void run_timers(struct loop *l)
{
    uint64_t armed_before = l->seq;
    while (l->count && due_after(l->heap[1].t->when, (uint32_t)l->now) <= 0 && l->heap[1].seq < armed_before) {
        struct loop_timer *t = l->heap[1].t;
        loop_timer_cancel(l, t);
        t->cb(l, t);
    }
}

int loop_run(struct loop *l)
{
    struct epoll_event events[MAX_EVENTS];
    l->running = 1;
    while (l->running) {
        if (l->before_wait)
            l->before_wait(l, l->before_wait_data);
        if (!l->running)
            break;
        int timeout = -1;
        if (l->wake) {
            timeout = 0;
        } else if (l->count) {
            int32_t wait = due_after(l->heap[1].t->when, (uint32_t)clock_ms());
            timeout = wait <= 0 ? 0 : wait > 60000 ? 60000 : (int)wait;
        }
        l->wake = 0;
        int n = epoll_wait(l->epfd, events, MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR)
            return -1;
        l->now = clock_ms();
        for (int i = 0; i < n; i++) {
            struct loop_io *io = events[i].data.ptr;
            io->cb(l, io, events[i].events);
        }
        run_timers(l);
    }
    return 0;
}
