/* test_ratelimit: unit tests for src/ratelimit.c on an injected clock: burst
 * then refuse, refill that is exact to the token at every millisecond (no
 * drift over many small or irregular steps, across the 2^32 ms wrap), rate 0,
 * costs above burst, and the flood verdicts (warn once a second, close after
 * 10 s of flooding, a quiet second ends a flood). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "ratelimit.h"

#define EXPECT(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

static const uint32_t test_rates[] = {1, 3, 20, 1000, 524288, 7, 999, 1001, 123457};
static const uint32_t test_starts[] = {0, 123456789, UINT32_MAX - 500, UINT32_MAX};

/* Tokens a drained bucket must have gained t ms after it was drained. */
static uint64_t exact(uint32_t rate, uint64_t t)
{
    return t * rate / 1000;
}

/* Drains a full bucket at t0, then at each later time (t0 + offsets) takes
 * exactly what should have accrued and checks that not one token more is there. */
static void check_exact(uint32_t rate, uint32_t burst, uint32_t t0, const uint32_t *offsets, size_t n)
{
    struct ratelimit_rule rule = {rate, burst};
    struct ratelimit_bucket b;
    uint64_t got = 0;

    ratelimit_bucket_init(&b, &rule, t0);
    EXPECT(ratelimit_bucket_take(&b, &rule, burst, t0) == 1, "rate %u: draining the full bucket failed", rate);
    EXPECT(ratelimit_bucket_take(&b, &rule, 1, t0) == 0, "rate %u: a drained bucket gave a token", rate);
    for (size_t i = 0; i < n; i++) {
        uint32_t now = t0 + offsets[i];
        uint64_t want = exact(rate, offsets[i]) - got;
        EXPECT(want <= burst, "rate %u: test would overfill (burst %u)", rate, burst);
        EXPECT(ratelimit_bucket_take(&b, &rule, (uint32_t)want, now) == 1,
               "rate %u start %u: at +%u ms, %llu tokens should have accrued", rate, t0, offsets[i],
               (unsigned long long)want);
        got += want;
        EXPECT(ratelimit_bucket_take(&b, &rule, 1, now) == 0, "rate %u start %u: at +%u ms, a token too many", rate,
               t0, offsets[i]);
    }
}

START_TEST(test_burst_then_refuse)
{
    struct ratelimit_rule rule = {20, 40};
    struct ratelimit_bucket b;

    ratelimit_bucket_init(&b, &rule, 5000);
    for (int i = 0; i < 40; i++)
        EXPECT(ratelimit_bucket_take(&b, &rule, 1, 5000) == 1, "burst line %d refused", i);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 5000), 0);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 5049), 0);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 5050), 1);   /* one line per 50 ms */
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 5050), 0);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 2, 5149), 0);   /* 1.98 lines: not 2 */
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 2, 5150), 1);
    /* a refusal takes nothing */
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 3, 5250), 0);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 2, 5250), 1);
    /* a long pause refills only up to burst */
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 40, 900000), 1);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 900000), 0);
    ck_assert_uint_eq(sizeof(struct ratelimit_bucket), 8);
}
END_TEST

/* 1 ms steps for 20 s: the count is exact at every millisecond. */
START_TEST(test_exact_refill_small_steps)
{
    enum { STEPS = 20000 };
    uint32_t *offsets = malloc(STEPS * sizeof(*offsets));

    for (uint32_t i = 0; i < STEPS; i++)
        offsets[i] = i + 1;
    for (size_t r = 0; r < sizeof test_rates / sizeof test_rates[0]; r++) {
        uint32_t rate = test_rates[r];
        uint32_t burst = rate > UINT32_MAX / 2 ? UINT32_MAX : 2 * rate;
        for (size_t s = 0; s < sizeof test_starts / sizeof test_starts[0]; s++)
            check_exact(rate, burst, test_starts[s], offsets, STEPS);
    }
    free(offsets);
}
END_TEST

/* Irregular steps of 1 to 97 ms for about 100 s: still exact at every call. */
START_TEST(test_exact_refill_irregular_steps)
{
    enum { STEPS = 2000 };
    uint32_t offsets[STEPS], t = 0, x = 12345;

    for (size_t i = 0; i < STEPS; i++) {
        x = x * 1103515245u + 12345u;
        t += 1 + (x >> 16) % 97;
        offsets[i] = t;
    }
    for (size_t r = 0; r < sizeof test_rates / sizeof test_rates[0]; r++) {
        uint32_t rate = test_rates[r];
        for (size_t s = 0; s < sizeof test_starts / sizeof test_starts[0]; s++)
            check_exact(rate, 100 * rate, test_starts[s], offsets, STEPS);
    }
}
END_TEST

/* Exactly one second, polled every millisecond, at the lead's rates: exactly
 * rate tokens, the last one arriving at the 1000th millisecond. */
START_TEST(test_one_second_exact)
{
    static const uint32_t rates[] = {1, 3, 20, 1000, 524288};

    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        struct ratelimit_rule rule = {rates[r], rates[r]};
        struct ratelimit_bucket b;
        uint64_t taken = 0;

        ratelimit_bucket_init(&b, &rule, UINT32_MAX - 300);
        ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, rates[r], UINT32_MAX - 300), 1);
        for (uint32_t ms = 1; ms <= 1000; ms++)
            while (ratelimit_bucket_take(&b, &rule, 1, UINT32_MAX - 300 + ms))
                taken++;
        EXPECT(taken == rates[r], "rate %u: %llu tokens in a second", rates[r], (unsigned long long)taken);
    }
}
END_TEST

/* The first token after the bucket was full comes a whole token's time after
 * it was last full, not sooner: idle time beyond full is not banked. */
START_TEST(test_full_bucket_restarts_the_clock)
{
    struct ratelimit_rule rule = {3, 3};
    struct ratelimit_bucket b;

    ratelimit_bucket_init(&b, &rule, 100);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 3, 5100), 1);   /* full since long ago */
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 5433), 0);   /* 333 ms: 0.999 */
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 5434), 1);   /* 334 ms: 1.002 */
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 5766), 0);   /* 666 ms: 1.998 */
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 5767), 1);   /* 667 ms: 2.001 */
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 6099), 0);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 6100), 1);   /* 1000 ms: 3 */

    /* with burst 1 the bucket is full again at 5434 (1.002 capped to 1), so
     * the next token is a whole 334 ms after that */
    rule.burst = 1;
    ratelimit_bucket_init(&b, &rule, 100);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 5100), 1);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 5434), 1);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 5767), 0);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 5768), 1);
}
END_TEST

START_TEST(test_clock_wrap)
{
    struct ratelimit_rule rule = {10, 20};
    struct ratelimit_bucket b;
    uint32_t t0 = UINT32_MAX - 49;   /* wraps 50 ms later */

    ratelimit_bucket_init(&b, &rule, t0);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 20, t0), 1);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, t0 + 99), 0);   /* after the wrap: 0.99 */
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, t0 + 100), 1);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, t0 + 100), 0);
    /* a bucket last touched just before the wrap and left alone refills to burst, no more */
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 20, t0 + 60000), 1);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, t0 + 60000), 0);
    ratelimit_bucket_init(&b, &rule, UINT32_MAX);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 21, 5), 0);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 20, 5), 1);
}
END_TEST

START_TEST(test_rate_zero_is_unlimited)
{
    struct ratelimit_rule rule = {0, 0};
    struct ratelimit_bucket b;

    ratelimit_bucket_init(&b, &rule, 77);
    for (int i = 0; i < 1000; i++)
        EXPECT(ratelimit_bucket_take(&b, &rule, UINT32_MAX, 77) == 1, "take %d refused at rate 0", i);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 0), 1);
}
END_TEST

START_TEST(test_cost_over_burst_never_passes)
{
    struct ratelimit_rule rule = {10, 5};
    struct ratelimit_bucket b;

    ratelimit_bucket_init(&b, &rule, 0);
    for (uint32_t t = 0; t < 100000; t += 997)
        EXPECT(ratelimit_bucket_take(&b, &rule, 6, t) == 0, "cost 6 over burst 5 passed at %u", t);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 5, 100000), 1);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 0, 100000), 1);   /* nothing is always there */

    struct ratelimit_rule none = {10, 0};
    ratelimit_bucket_init(&b, &none, 0);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &none, 1, 0), 0);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &none, 1, 1000000), 0);
}
END_TEST

/* Rates and bursts up to UINT32_MAX: no overflow, never more than accrued. */
START_TEST(test_huge_rates)
{
    struct ratelimit_rule rule = {UINT32_MAX, 1u << 31};
    struct ratelimit_bucket b;
    uint32_t offsets[999];

    for (uint32_t i = 0; i < 999; i++)
        offsets[i] = i / 2 + 1;   /* every millisecond twice */
    check_exact(UINT32_MAX, 1u << 31, UINT32_MAX - 200, offsets, 999);

    /* burst + rate / gcd(rate, 1000) above 2^32: what was taken never exceeds
     * what accrued, and the bucket still fills */
    rule.burst = UINT32_MAX;
    ratelimit_bucket_init(&b, &rule, 10);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, UINT32_MAX, 10), 1);
    uint64_t taken = 0;
    for (uint32_t ms = 1; ms <= 900; ms++) {
        uint32_t chunk = 1u << 20;
        for (int k = 0; k < 4096 && ratelimit_bucket_take(&b, &rule, chunk, 10 + ms); k++)
            taken += chunk;
        EXPECT(taken <= exact(UINT32_MAX, ms), "at %u ms took %llu, more than accrued", ms,
               (unsigned long long)taken);
        EXPECT(taken + 2 * (uint64_t)chunk + 4294967 >= exact(UINT32_MAX, ms), "at %u ms took only %llu", ms,
               (unsigned long long)taken);
    }
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, UINT32_MAX, 3000), 1);
    ck_assert_int_eq(ratelimit_bucket_take(&b, &rule, 1, 3000), 0);
}
END_TEST

START_TEST(test_flood_warns_once_a_second_and_closes_at_10s)
{
    struct ratelimit_flood f;
    uint32_t t0 = UINT32_MAX - 4000;   /* wraps in the middle */
    int warns = 0;

    ratelimit_flood_init(&f, t0);
    ck_assert_int_eq(ratelimit_flood_note(&f, 1, t0), RATELIMIT_PASS);
    for (uint32_t ms = 0; ms < RATELIMIT_FLOOD_CLOSE_MS; ms++) {
        enum ratelimit_verdict v = ratelimit_flood_note(&f, 0, t0 + ms);
        if (ms % 1000 == 0)
            EXPECT(v == RATELIMIT_WARN, "drop at +%u ms: verdict %d, want WARN", ms, v);
        else
            EXPECT(v == RATELIMIT_DROP, "drop at +%u ms: verdict %d, want DROP", ms, v);
        warns += v == RATELIMIT_WARN;
    }
    ck_assert_int_eq(warns, 10);
    ck_assert_int_eq(ratelimit_flood_note(&f, 0, t0 + RATELIMIT_FLOOD_CLOSE_MS), RATELIMIT_CLOSE);
    ck_assert_int_eq(ratelimit_flood_note(&f, 0, t0 + RATELIMIT_FLOOD_CLOSE_MS + 1), RATELIMIT_CLOSE);
}
END_TEST

/* Messages that pass between drops do not end a flood; only a gap of more than
 * RATELIMIT_QUIET_MS since the last drop does. */
START_TEST(test_flood_passes_do_not_reset)
{
    struct ratelimit_flood f;

    ratelimit_flood_init(&f, 0);
    ck_assert_int_eq(ratelimit_flood_note(&f, 0, 100), RATELIMIT_WARN);
    for (uint32_t t = 1100; t < 10100; t += 1000) {
        ck_assert_int_eq(ratelimit_flood_note(&f, 1, t - 500), RATELIMIT_PASS);
        ck_assert_int_eq(ratelimit_flood_note(&f, 0, t), RATELIMIT_WARN);   /* gap of exactly 1000 */
    }
    ck_assert_int_eq(ratelimit_flood_note(&f, 1, 10099), RATELIMIT_PASS);
    ck_assert_int_eq(ratelimit_flood_note(&f, 0, 10100), RATELIMIT_CLOSE);
}
END_TEST

START_TEST(test_flood_quiet_second_resets)
{
    struct ratelimit_flood f;

    ratelimit_flood_init(&f, 1000);
    ck_assert_int_eq(ratelimit_flood_note(&f, 0, 1000), RATELIMIT_WARN);   /* first drop warns at once */
    for (uint32_t t = 1500; t <= 9500; t += 500)
        EXPECT(ratelimit_flood_note(&f, 0, t) != RATELIMIT_CLOSE, "closed at %u", t);
    /* 1001 ms of quiet: a new flood starts at 10501 */
    ck_assert_int_eq(ratelimit_flood_note(&f, 1, 10000), RATELIMIT_PASS);
    ck_assert_int_eq(ratelimit_flood_note(&f, 0, 10501), RATELIMIT_WARN);
    for (uint32_t t = 10600; t < 20501; t += 100)
        EXPECT(ratelimit_flood_note(&f, 0, t) != RATELIMIT_CLOSE, "closed at %u", t);
    ck_assert_int_eq(ratelimit_flood_note(&f, 0, 20501), RATELIMIT_CLOSE);
    /* after a close verdict, quiet still resets (the caller normally closes) */
    ck_assert_int_eq(ratelimit_flood_note(&f, 0, 21502), RATELIMIT_WARN);
}
END_TEST

/* The two together, as chat uses them: 20 lines a second with burst 40 and a
 * client sending 100 a second. */
START_TEST(test_bucket_and_flood_together)
{
    struct ratelimit_rule rule = {20, 40};
    struct ratelimit_bucket b;
    struct ratelimit_flood f;
    int passed = 0, warned = 0, closed_at = -1;

    ratelimit_bucket_init(&b, &rule, 0);
    ratelimit_flood_init(&f, 0);
    for (uint32_t t = 0; t <= 20000 && closed_at < 0; t += 10) {
        enum ratelimit_verdict v = ratelimit_flood_note(&f, ratelimit_bucket_take(&b, &rule, 1, t), t);
        passed += v == RATELIMIT_PASS;
        warned += v == RATELIMIT_WARN;
        if (v == RATELIMIT_CLOSE)
            closed_at = (int)t;
    }
    /* 49 sends at 0..480 ms use the burst and the 9 lines earned meanwhile; the
     * first drop at 490 ms starts the flood, closed 10 s later; meanwhile one
     * line passes every 50 ms and one drop a second is warned */
    ck_assert_int_eq(closed_at, 10490);
    ck_assert_int_eq(passed, 40 + 10480 / 50);
    ck_assert_int_eq(warned, 10);
}
END_TEST

static Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *bucket = tcase_create("bucket");
    TCase *flood = tcase_create("flood");

    tcase_set_timeout(bucket, 30);
    tcase_add_test(bucket, test_burst_then_refuse);
    tcase_add_test(bucket, test_exact_refill_small_steps);
    tcase_add_test(bucket, test_exact_refill_irregular_steps);
    tcase_add_test(bucket, test_one_second_exact);
    tcase_add_test(bucket, test_full_bucket_restarts_the_clock);
    tcase_add_test(bucket, test_clock_wrap);
    tcase_add_test(bucket, test_rate_zero_is_unlimited);
    tcase_add_test(bucket, test_cost_over_burst_never_passes);
    tcase_add_test(bucket, test_huge_rates);
    suite_add_tcase(s, bucket);

    tcase_add_test(flood, test_flood_warns_once_a_second_and_closes_at_10s);
    tcase_add_test(flood, test_flood_passes_do_not_reset);
    tcase_add_test(flood, test_flood_quiet_second_resets);
    tcase_add_test(flood, test_bucket_and_flood_together);
    suite_add_tcase(s, flood);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ratelimit_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
