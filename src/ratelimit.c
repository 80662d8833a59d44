/* ratelimit: token buckets counted in whole units with exact refill, and the
 * flood verdict (pass, drop, warn, close). Pure: never reads a clock, does no
 * I/O and keeps no globals; all state lives in the caller's structs. */
#include "ratelimit.h"

#define TWO_32 4294967296LL

/* gcd(rate, 1000): 1000 / it ms is the shortest time in which a whole number
 * (rate / it) of tokens accrue. */
static uint32_t gcd_1000(uint32_t rate)
{
    uint32_t a = rate, b = 1000;
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

void ratelimit_bucket_init(struct ratelimit_bucket *b, const struct ratelimit_rule *rule, uint32_t now_ms)
{
    b->tokens = rule->burst;
    b->refill_ms = now_ms;
}

int ratelimit_bucket_take(struct ratelimit_bucket *b, const struct ratelimit_rule *rule, uint32_t cost,
                          uint32_t now_ms)
{
    if (!rule->rate)
        return 1;
    uint32_t g = gcd_1000(rule->rate), period = 1000 / g;
    uint64_t per_period = rule->rate / g;
    uint32_t elapsed = now_ms - b->refill_ms, periods = elapsed / period;
    int64_t partial = (int64_t)((uint64_t)(elapsed % period) * rule->rate / 1000);
    /* tokens holds a value in [burst - UINT32_MAX, burst] modulo 2^32 */
    int64_t stored = b->tokens <= rule->burst ? (int64_t)b->tokens : (int64_t)b->tokens - TWO_32;
    int64_t have = stored + (int64_t)(periods * per_period) + partial;
    if (have >= (int64_t)rule->burst) {
        have = rule->burst;
        partial = 0;
        b->refill_ms = now_ms;
    } else {
        b->refill_ms += periods * period;
    }
    int taken = have >= (int64_t)cost;
    if (taken)
        have -= cost;
    stored = have - partial;
    if (stored < (int64_t)rule->burst - UINT32_MAX) {
        /* only when burst + rate / gcd exceeds 2^32: restart the period here,
         * forgoing less than one token's worth of time */
        stored = have;
        b->refill_ms = now_ms;
    }
    b->tokens = (uint32_t)stored;
    return taken;
}

void ratelimit_flood_init(struct ratelimit_flood *f, uint32_t now_ms)
{
    f->since_ms = f->last_drop_ms = now_ms;
    f->last_warn_ms = now_ms - RATELIMIT_WARN_EVERY_MS;
    f->flooding = 0;
}

enum ratelimit_verdict ratelimit_flood_note(struct ratelimit_flood *f, int allowed, uint32_t now_ms)
{
    if (f->flooding && now_ms - f->last_drop_ms > RATELIMIT_QUIET_MS)
        f->flooding = 0;
    if (allowed)
        return RATELIMIT_PASS;
    if (!f->flooding) {
        f->flooding = 1;
        f->since_ms = now_ms;
    }
    f->last_drop_ms = now_ms;
    if (now_ms - f->since_ms >= RATELIMIT_FLOOD_CLOSE_MS)
        return RATELIMIT_CLOSE;
    if (now_ms - f->last_warn_ms >= RATELIMIT_WARN_EVERY_MS) {
        f->last_warn_ms = now_ms;
        return RATELIMIT_WARN;
    }
    return RATELIMIT_DROP;
}
