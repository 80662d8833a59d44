/* loop: the reactor. One epoll instance, file events (fd + callback) and
 * timers in a binary heap, so an idle timer costs nothing per tick. It knows
 * file descriptors, callbacks and milliseconds; nothing of HTTP or WebSocket. */
#ifndef WSHUB_LOOP_H
#define WSHUB_LOOP_H

#include <stddef.h>
#include <stdint.h>

/* The struct that embeds a loop_io or loop_timer, from a pointer to it. */
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#define LOOP_READ 0x001u   /* EPOLLIN */
#define LOOP_WRITE 0x004u  /* EPOLLOUT */
#define LOOP_ERROR 0x018u  /* EPOLLERR | EPOLLHUP: always reported */

struct loop;
struct loop_io;
struct loop_timer;

/* Called with the events that fired (LOOP_READ, LOOP_WRITE, or error/hangup bits). */
typedef void (*loop_io_fn)(struct loop *l, struct loop_io *io, uint32_t events);
typedef void (*loop_timer_fn)(struct loop *l, struct loop_timer *t);
typedef void (*loop_hook_fn)(struct loop *l, void *data);

/* A file event, embedded in its owner (recover the owner with container_of). */
struct loop_io {
    int fd;
    uint32_t mask;    /* events currently registered */
    loop_io_fn cb;
};

/* A one-shot timer, embedded in its owner. Inactive while index == 0.
 * 16 bytes: every connection holds one. */
struct loop_timer {
    uint32_t when;    /* loop_now() milliseconds at which it fires, modulo 2^32 */
    uint32_t index;   /* 1-based heap slot, 0 when not armed */
    loop_timer_fn cb;
};

/* The longest wait a timer takes (about 12 days): a longer one fires then.
 * Armed timers are compared by the difference of their 32-bit due times,
 * which is right while they are all due within 2^31 ms of each other. */
#define LOOP_TIMER_MAX_MS (1u << 30)

/* Creates a loop. NULL on failure (errno set). */
struct loop *loop_new(void);

/* Frees the loop; registered fds are not closed. */
void loop_free(struct loop *l);

/* Registers io->fd for the events in mask. Returns 0 or -1 (errno set). */
int loop_io_add(struct loop *l, struct loop_io *io, uint32_t mask);

/* Changes the registered events; a no-op when unchanged. Returns 0 or -1. */
int loop_io_set(struct loop *l, struct loop_io *io, uint32_t mask);

/* Unregisters io->fd (call before closing it). */
void loop_io_del(struct loop *l, struct loop_io *io);

/* Arms (or re-arms) t to fire at loop_now() + ms (ms at most LOOP_TIMER_MAX_MS). */
void loop_timer_after(struct loop *l, struct loop_timer *t, uint64_t ms);

/* Disarms t; harmless when it is not armed. */
void loop_timer_cancel(struct loop *l, struct loop_timer *t);

/* The monotonic clock in milliseconds, read once per iteration. */
uint64_t loop_now(const struct loop *l);

/* Sets the hook run before every wait (flush pending writes, free closed conns). */
void loop_set_before_wait(struct loop *l, loop_hook_fn fn, void *data);

/* Runs until loop_stop(). Returns 0, or -1 if epoll_wait failed (not EINTR). */
int loop_run(struct loop *l);

/* Makes loop_run return after the current iteration. */
void loop_stop(struct loop *l);

/* Makes the current or next epoll_wait return at once (call from a signal-safe
 * context is not supported; use it from callbacks). */
void loop_wake(struct loop *l);

#endif
