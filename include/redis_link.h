/* redis_link: one connection to Redis that stays up by itself. A hiredis
 * (0.14) asynchronous context driven by wshub's loop (no thread, no RESP
 * parser of ours), plus what that hiredis lacks: a connect timeout, a reply
 * timeout, a heartbeat that measures the round trip, reconnection with
 * exponential backoff and jitter, AUTH and SELECT before the link counts as
 * up, and a bound on commands in flight.
 *
 * A link is either a command link (commands, replies in order, Lua scripts)
 * or a pub/sub link (SUBSCRIBE and friends only; RESP2 needs a connection of
 * its own for that). Re-subscribing after a reconnect is the owner's job:
 * the state callback says when the link is up again.
 *
 * Callbacks come only from the loop (never from inside a call of the owner
 * into this module, except redis_link_free's, below), and:
 *  - every command accepted (0 returned) gets its reply callback exactly
 *    once: with the reply, or with NULL when the link drops or is freed first;
 *  - the state callback fires when the state changes: the first outcome (up,
 *    or down with the reason) and then each change, never once per message;
 *    when the link goes down, it comes before the NULL replies;
 *  - a callback may send commands (refused while the link is down) and may
 *    call redis_link_free (the link is freed once the callback returns).
 *
 * Reading is bounded per wake-up: hiredis reads at most 16 KiB with one
 * read(2) per readable event, and the loop is level-triggered, so one wake-up
 * delivers only the replies completed by those bytes (and one large reply
 * when its last bytes arrive); the rest waits for the next iteration, after
 * other sockets had their turn. redis_link_pause_reading lets the owner skip
 * a turn when it is over its own budget.
 *
 * The process must ignore SIGPIPE (hiredis writes with write(2)). A host
 * name is resolved with getaddrinfo, which blocks: use a numeric address or a
 * unix socket where a stall at reconnect matters. */
#ifndef WSHUB_REDIS_LINK_H
#define WSHUB_REDIS_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "redis_url.h"

struct loop;
struct redis_link;
struct redisReply;   /* hiredis's reply; include <hiredis/hiredis.h> to read it */

/* A reply to one command: the reply (valid only during the call; hiredis
 * frees it after) or NULL when the link dropped or was freed first. */
typedef void (*redis_reply_fn)(struct redis_link *l, struct redisReply *reply, void *privdata);

enum redis_link_event {
    REDIS_LINK_MESSAGE,        /* a message published on a channel (or matching a pattern) */
    REDIS_LINK_SUBSCRIBED,     /* a SUBSCRIBE or PSUBSCRIBE took effect */
    REDIS_LINK_UNSUBSCRIBED,   /* an UNSUBSCRIBE or PUNSUBSCRIBE took effect */
};

/* One pub/sub event; the bytes are valid only during the callback. */
struct redis_link_message {
    enum redis_link_event event;
    const char *channel;       /* the channel, or the pattern of a (P)(UN)SUBSCRIBED */
    size_t channel_len;
    const char *pattern;       /* MESSAGE through a PSUBSCRIBE: the pattern; else NULL */
    size_t pattern_len;
    const char *payload;       /* MESSAGE: the published bytes; else NULL */
    size_t payload_len;
    int is_pattern;            /* (UN)SUBSCRIBED: it was a pattern */
    long long count;           /* (UN)SUBSCRIBED: channels and patterns now subscribed */
};

struct redis_link_callbacks {
    /* The link came up (reason "connected") or went down (reason says why,
     * e.g. "cannot connect to redis://127.0.0.1:6379: Connection refused"). */
    void (*state)(struct redis_link *l, int up, const char *reason, void *ctx);
    /* A pub/sub event (pub/sub links only; may be NULL on command links). */
    void (*message)(struct redis_link *l, const struct redis_link_message *m, void *ctx);
};

/* Tunables; a field left 0 takes the default in brackets. */
struct redis_link_options {
    int pubsub;                   /* 1: a pub/sub link [0: a command link] */
    uint32_t connect_timeout_ms;  /* connect, AUTH, SELECT and a first PING [2000] */
    uint32_t reply_timeout_ms;    /* a reply or heartbeat later than this drops the link [2000] */
    uint32_t ping_interval_ms;    /* heartbeat period, also while busy [1000] */
    uint32_t backoff_min_ms;      /* first reconnect delay, doubled per failure [100] */
    uint32_t backoff_max_ms;      /* largest reconnect delay [5000] */
    uint32_t max_in_flight;       /* commands awaiting replies before refusing more [10000] */
};

struct redis_link_stats {
    int connected;                /* 1 while up */
    uint64_t reconnects;          /* times the link came up again after being down */
    uint64_t commands;            /* commands accepted (including (UN)SUBSCRIBEs) */
    uint64_t replies;             /* replies delivered to reply callbacks */
    uint64_t failed;              /* accepted commands answered with NULL (link lost) */
    uint64_t in_flight;           /* accepted commands not answered yet */
    uint64_t dropped;             /* commands refused: link down or max_in_flight reached */
    uint64_t messages;            /* pub/sub messages delivered */
    uint64_t script_reloads;      /* EVALSHAs sent again after NOSCRIPT */
    uint64_t rtt_last_us;         /* last heartbeat round trip, microseconds */
    uint64_t rtt_smoothed_us;     /* its moving average (7/8 old + 1/8 new) */
};

/* A Lua script for redis_link_evalsha: the text (not copied: it must outlive
 * every call that uses it) and its SHA1, as Redis names it. */
struct redis_script {
    const char *lua;
    size_t len;
    char sha1[41];
};

/* Creates a link to url (copied) and starts connecting on the loop's next
 * iteration. opt may be NULL (defaults); cb is copied. NULL when out of memory. */
struct redis_link *redis_link_new(struct loop *loop, const struct redis_url *url,
                                  const struct redis_link_options *opt,
                                  const struct redis_link_callbacks *cb, void *ctx);

/* Closes the link: each command still in flight gets its callback with NULL
 * before this returns (no state callback). Called from one of the link's
 * callbacks, the memory goes when that callback returns. Call it outside
 * loop_run, from a timer or the before-wait hook, or from the link's own
 * callbacks, not from another descriptor's callback: the loop may hold an
 * event already fetched for this link's socket. NULL is ignored. */
void redis_link_free(struct redis_link *l);

/* Sends a command, printf-style as hiredis formats it (%s a C string, %b a
 * pointer and a size_t). Returns 0 (fn will be called once), or -1 when the
 * link is down, max_in_flight commands are waiting, it is a pub/sub link, or
 * the command would change the connection's mode ((P|S)(UN)SUBSCRIBE,
 * MONITOR, HELLO, RESET, QUIT). fn may be NULL. */
int redis_link_command(struct redis_link *l, redis_reply_fn fn, void *privdata, const char *fmt, ...);

/* The same with argc arguments of argvlen[i] bytes each (binary-safe). */
int redis_link_command_argv(struct redis_link *l, redis_reply_fn fn, void *privdata,
                            int argc, const char **argv, const size_t *argvlen);

/* Fills s from the script's text (lua must outlive s) and computes its SHA1. */
void redis_script_init(struct redis_script *s, const char *lua);

/* SCRIPT LOAD s: fn gets the SHA1, or the error that compiling it gave.
 * Optional (redis_link_evalsha loads a missing script by itself); useful to
 * find a broken script at start. Same contract as redis_link_command. */
int redis_link_script_load(struct redis_link *l, const struct redis_script *s,
                           redis_reply_fn fn, void *privdata);

/* EVALSHA s with argc arguments, of which the first nkeys are keys. When
 * Redis answers NOSCRIPT (restarted, SCRIPT FLUSH), the script is loaded and
 * the same call sent once more, and fn gets that second reply; the retried
 * call runs after those already sent. Same contract as redis_link_command. */
int redis_link_evalsha(struct redis_link *l, const struct redis_script *s, redis_reply_fn fn,
                       void *privdata, int nkeys, int argc, const char **argv,
                       const size_t *argvlen);

/* SUBSCRIBE to one channel (pub/sub links). Returns 0, or -1 as for
 * redis_link_command (and on a command link). Messages and the confirmation
 * arrive through the message callback. */
int redis_link_subscribe(struct redis_link *l, const char *channel, size_t len);

/* UNSUBSCRIBE from one channel; its UNSUBSCRIBED event follows. */
int redis_link_unsubscribe(struct redis_link *l, const char *channel, size_t len);

/* PSUBSCRIBE to a glob-style pattern; MESSAGE events then carry the pattern. */
int redis_link_psubscribe(struct redis_link *l, const char *pattern, size_t len);

/* PUNSUBSCRIBE from a pattern. */
int redis_link_punsubscribe(struct redis_link *l, const char *pattern, size_t len);

/* Stops (1) or resumes (0) reading replies, for the owner to skip a turn when
 * it has done enough work for this one. Keep pauses short: a reply that
 * cannot be read in time still drops the link after reply_timeout_ms. */
void redis_link_pause_reading(struct redis_link *l, int paused);

/* 1 while the link is up (commands are accepted), else 0. */
int redis_link_is_up(const struct redis_link *l);

/* Why the link last went down ("" if it never did), for /healthz and logs. */
const char *redis_link_reason(const struct redis_link *l);

/* Copies the counters and the round-trip figures into *out. */
void redis_link_get_stats(const struct redis_link *l, struct redis_link_stats *out);

#endif
