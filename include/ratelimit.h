/* ratelimit: token buckets and flood verdicts on an injected clock. Pure: no
 * I/O, no clock reads, no globals; the caller passes the time in milliseconds
 * modulo 2^32, and times are compared by difference, so they work across the
 * wrap as long as calls on one bucket are less than 2^32 ms (49 days) apart. */
#ifndef WSHUB_RATELIMIT_H
#define WSHUB_RATELIMIT_H

#include <stdint.h>

struct ratelimit_rule {
    uint32_t rate;    /* units per second; 0 = unlimited */
    uint32_t burst;   /* units a full bucket holds */
};

/* 8 bytes: every chat member holds a few. Tokens are whole units and refill_ms
 * only moves by whole refill periods (1000 / gcd(rate, 1000) ms, in which a
 * whole number of tokens accrue), so no fraction of a token is ever lost or
 * gained. The tokens of an unfinished period are counted on each call instead
 * of being stored, so `tokens` (the count at refill_ms less what was taken
 * since) may sit below zero, modulo 2^32, by less than one period's worth. */
struct ratelimit_bucket {
    uint32_t tokens;
    uint32_t refill_ms;
};

/* Fills the bucket (burst tokens) as of now_ms. Use it with one rule throughout. */
void ratelimit_bucket_init(struct ratelimit_bucket *b, const struct ratelimit_rule *rule, uint32_t now_ms);

/* Refills for the time since the last call (floor(elapsed * rate / 1000) tokens
 * since the bucket was last full, up to burst) and takes cost tokens if there
 * are that many. Returns 1 when taken (always when rule->rate is 0), 0 when not
 * (nothing taken); a cost above burst never passes. */
int ratelimit_bucket_take(struct ratelimit_bucket *b, const struct ratelimit_rule *rule, uint32_t cost,
                          uint32_t now_ms);

/* Flood state for one sender: when its drops began and when it was last warned. */
struct ratelimit_flood {
    uint32_t since_ms, last_drop_ms, last_warn_ms;
    uint8_t flooding;
};

enum ratelimit_verdict {
    RATELIMIT_PASS,
    RATELIMIT_DROP,
    RATELIMIT_WARN,    /* drop and tell the sender */
    RATELIMIT_CLOSE,   /* flooded too long */
};

#define RATELIMIT_FLOOD_CLOSE_MS 10000   /* drops this long without a quiet gap close the sender */
#define RATELIMIT_WARN_EVERY_MS 1000     /* at most one warning per this */
#define RATELIMIT_QUIET_MS 1000          /* a gap longer than this between drops ends a flood */

/* Starts with no flood, as of now_ms; the first drop may warn at once. */
void ratelimit_flood_init(struct ratelimit_flood *f, uint32_t now_ms);

/* Records whether a message passed and says what to do: PASS when allowed;
 * otherwise DROP, or WARN at most once per RATELIMIT_WARN_EVERY_MS, or CLOSE
 * once drops have gone on for RATELIMIT_FLOOD_CLOSE_MS without a gap of more
 * than RATELIMIT_QUIET_MS between them. */
enum ratelimit_verdict ratelimit_flood_note(struct ratelimit_flood *f, int allowed, uint32_t now_ms);

#endif
