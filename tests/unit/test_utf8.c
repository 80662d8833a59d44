/* test_utf8: unit tests for src/utf8.c, the incremental UTF-8 validator.
 * Checks Unicode table 3-7 (overlongs, surrogates, > U+10FFFF, F5..FF, lone
 * continuations, truncations), the Markus Kuhn stress cases Autobahn case 6
 * uses, that any split of the input (state carried across calls) ends in the
 * same state as one call, that UTF8_REJECT comes exactly at the first invalid
 * byte (fail fast), and the 8-byte ASCII fast path at every offset and
 * alignment. A small independent reference validator gives expected results. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* ck_assert records a checkpoint (a syscall) even when it passes: loops with
 * millions of checks use EXPECT, which only calls into Check on failure. */
#define EXPECT(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

/* Reference: index of the first invalid byte of s[0..n), or -1 if none; sets
 * *incomplete when the input ends inside a code point. Table 3-7 verbatim. */
static long ref_first_bad(const uint8_t *s, size_t n, int *incomplete)
{
    size_t i = 0;

    *incomplete = 0;
    while (i < n) {
        uint8_t c = s[i], lo = 0x80, hi = 0xBF;
        int need;

        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c == 0xE0) {
            need = 2;
            lo = 0xA0;
        } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
            need = 2;
        } else if (c == 0xED) {
            need = 2;
            hi = 0x9F;
        } else if (c == 0xF0) {
            need = 3;
            lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            need = 3;
        } else if (c == 0xF4) {
            need = 3;
            hi = 0x8F;
        } else {
            return (long)i;
        }
        for (int k = 1; k <= need; k++) {
            uint8_t d;

            if (i + k >= n) {
                *incomplete = 1;
                return -1;
            }
            d = s[i + k];
            if (k == 1 ? (d < lo || d > hi) : (d < 0x80 || d > 0xBF))
                return (long)(i + k);
        }
        i += (size_t)need + 1;
    }
    return -1;
}

enum kind { VALID, INCOMPLETE, BAD };

struct vec {
    const char *name;
    const char *s;
    size_t n;
    enum kind kind;
    long bad;     /* BAD: index of the first invalid byte */
};

#define V(name, lit, kind, bad) { name, lit, sizeof(lit) - 1, kind, bad }

static const struct vec vecs[] = {
    /* plain and Kuhn / Autobahn 6.x valid cases */
    V("empty", "", VALID, 0),
    V("ascii", "Hello-World", VALID, 0),
    V("nul", "\x00", VALID, 0),
    V("6.2 mixed", "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", VALID, 0),
    V("6.3.1 kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", VALID, 0),
    V("6.5 first 2", "\xc2\x80", VALID, 0),
    V("6.5 first 3", "\xe0\xa0\x80", VALID, 0),
    V("6.5 first 4", "\xf0\x90\x80\x80", VALID, 0),
    V("6.6 last 1", "\x7f", VALID, 0),
    V("6.6 last 2", "\xdf\xbf", VALID, 0),
    V("6.6 last 3", "\xef\xbf\xbf", VALID, 0),
    V("6.6 last 4 U+10FFFF", "\xf4\x8f\xbf\xbf", VALID, 0),
    V("6.7 U+D7FF", "\xed\x9f\xbf", VALID, 0),
    V("6.7 U+E000", "\xee\x80\x80", VALID, 0),
    V("6.7 U+FFFD", "\xef\xbf\xbd", VALID, 0),
    V("U+FFFE", "\xef\xbf\xbe", VALID, 0),
    V("U+FFFF", "\xef\xbf\xbf", VALID, 0),
    V("U+FDD0", "\xef\xb7\x90", VALID, 0),
    V("U+FDEF", "\xef\xb7\xaf", VALID, 0),
    V("U+1FFFE", "\xf0\x9f\xbf\xbe", VALID, 0),
    V("U+1FFFF", "\xf0\x9f\xbf\xbf", VALID, 0),
    V("U+10FFFE", "\xf4\x8f\xbf\xbe", VALID, 0),
    V("E1 lowest", "\xe1\x80\x80", VALID, 0),
    V("F1 lowest", "\xf1\x80\x80\x80", VALID, 0),
    V("F3 highest", "\xf3\xbf\xbf\xbf", VALID, 0),
    V("emoji", "\xf0\x9f\x98\x80 ok", VALID, 0),
    /* truncated at the end: neither accepted nor rejected */
    V("trunc 2/1", "\xdf", INCOMPLETE, 0),
    V("trunc 3/1", "\xe2", INCOMPLETE, 0),
    V("trunc 3/2", "\xef\xbf", INCOMPLETE, 0),
    V("trunc 4/1", "\xf0", INCOMPLETE, 0),
    V("trunc 4/2", "\xf0\x9f", INCOMPLETE, 0),
    V("trunc 4/3 U+10FFFF", "\xf4\x8f\xbf", INCOMPLETE, 0),
    V("kosme then trunc", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x8f", INCOMPLETE, 0),
    /* invalid: table 3-7 */
    V("overlong C0 80", "\xc0\x80", BAD, 0),
    V("overlong C1 BF", "\xc1\xbf", BAD, 0),
    V("overlong C0 AF", "\xc0\xaf", BAD, 0),
    V("overlong E0 80 80", "\xe0\x80\x80", BAD, 1),
    V("overlong E0 80 AF", "\xe0\x80\xaf", BAD, 1),
    V("overlong E0 9F BF", "\xe0\x9f\xbf", BAD, 1),
    V("overlong F0 80 80 80", "\xf0\x80\x80\x80", BAD, 1),
    V("overlong F0 80 80 AF", "\xf0\x80\x80\xaf", BAD, 1),
    V("overlong F0 8F BF BF", "\xf0\x8f\xbf\xbf", BAD, 1),
    V("overlong F8 5-byte", "\xf8\x80\x80\x80\xaf", BAD, 0),
    V("overlong FC 6-byte", "\xfc\x80\x80\x80\x80\xaf", BAD, 0),
    V("surrogate ED A0 80", "\xed\xa0\x80", BAD, 1),
    V("surrogate ED AD BF", "\xed\xad\xbf", BAD, 1),
    V("surrogate ED AE 80", "\xed\xae\x80", BAD, 1),
    V("surrogate ED AF BF", "\xed\xaf\xbf", BAD, 1),
    V("surrogate ED B0 80", "\xed\xb0\x80", BAD, 1),
    V("surrogate ED BE 80", "\xed\xbe\x80", BAD, 1),
    V("surrogate ED BF BF", "\xed\xbf\xbf", BAD, 1),
    V("surrogate pair", "\xed\xa0\x80\xed\xb0\x80", BAD, 1),
    V("> U+10FFFF F4 90 80 80", "\xf4\x90\x80\x80", BAD, 1),
    V("> U+10FFFF F4 BF BF BF", "\xf4\xbf\xbf\xbf", BAD, 1),
    V("F5", "\xf5\x80\x80\x80", BAD, 0),
    V("F7 BF BF BF", "\xf7\xbf\xbf\xbf", BAD, 0),
    V("F8", "\xf8", BAD, 0),
    V("FB", "\xfb", BAD, 0),
    V("FC", "\xfc", BAD, 0),
    V("FE", "\xfe", BAD, 0),
    V("FF", "\xff", BAD, 0),
    V("FE FE FF FF", "\xfe\xfe\xff\xff", BAD, 0),
    V("lone 80", "\x80", BAD, 0),
    V("lone BF", "\xbf", BAD, 0),
    V("80 BF", "\x80\xbf", BAD, 0),
    V("ascii then 80", "abc\x80", BAD, 3),
    V("2-byte then extra cont", "\xc2\x80\x80", BAD, 2),
    V("3-byte then extra cont", "\xe2\x82\xac\xbf", BAD, 3),
    V("lonely C0 space", "\xc0 ", BAD, 0),
    V("lonely C2 space", "\xc2 ", BAD, 1),
    V("lonely E0 space", "\xe0 ", BAD, 1),
    V("lonely E1 space", "\xe1 ", BAD, 1),
    V("lonely F0 space", "\xf0 ", BAD, 1),
    V("lonely F1 space", "\xf1 ", BAD, 1),
    V("E2 82 then ascii", "\xe2\x82\x41", BAD, 2),
    V("F0 9F 98 then ascii", "\xf0\x9f\x98\x41", BAD, 3),
    V("start after start", "\xe2\xe2\x82\xac", BAD, 1),
    V("6.3.2 kosme+surrogate", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", BAD, 12),
    V("6.4.1 kosme+F4 90", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64\x69\x74\x65\x64", BAD, 12),
    V("6.4.3 kosme+F4 trunc+ascii", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x8f\x65\x64", BAD, 13),
    V("6.15 concatenated incompletes", "\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf", BAD, 0),
    V("6.14 last byte missing E0 80", "\xe0\x80", BAD, 1),
    V("6.14 last byte missing F0 80 80", "\xf0\x80\x80", BAD, 1),
    V("6.14 last byte missing F7 BF BF", "\xf7\xbf\xbf", BAD, 0),
};

#define NVECS (sizeof(vecs) / sizeof(vecs[0]))

/* The reference agrees with the hand-written expectations (so it can be trusted below). */
START_TEST(test_reference_agrees)
{
    const struct vec *v = &vecs[_i];
    int inc;
    long bad = ref_first_bad((const uint8_t *)v->s, v->n, &inc);

    if (v->kind == BAD)
        EXPECT(bad == v->bad, "%s: reference bad=%ld, table %ld", v->name, bad, v->bad);
    else
        EXPECT(bad == -1 && inc == (v->kind == INCOMPLETE), "%s: reference disagrees", v->name);
}
END_TEST

static void check_state_kind(const struct vec *v, uint32_t st, const char *how)
{
    switch (v->kind) {
    case VALID:
        EXPECT(st == UTF8_ACCEPT, "%s (%s): state %u, expected ACCEPT", v->name, how, st);
        break;
    case INCOMPLETE:
        EXPECT(st != UTF8_ACCEPT && st != UTF8_REJECT,
                      "%s (%s): state %u, expected inside a code point", v->name, how, st);
        break;
    case BAD:
        EXPECT(st == UTF8_REJECT, "%s (%s): state %u, expected REJECT", v->name, how, st);
        break;
    }
}

/* Whole input: the final state and utf8_is_valid. */
START_TEST(test_vector_whole)
{
    const struct vec *v = &vecs[_i];
    const uint8_t *s = (const uint8_t *)v->s;
    uint8_t *copy = malloc(v->n ? v->n : 1);   /* exact size: ASan sees over-reads */
    uint32_t st;

    memcpy(copy, s, v->n);
    st = utf8_validate(UTF8_ACCEPT, copy, v->n);
    check_state_kind(v, st, "whole");
    EXPECT(utf8_is_valid(copy, v->n) == (v->kind == VALID), "%s: utf8_is_valid wrong", v->name);
    free(copy);
}
END_TEST

/* Two calls at every split point end in the same state as one call. */
START_TEST(test_vector_splits)
{
    const struct vec *v = &vecs[_i];
    const uint8_t *s = (const uint8_t *)v->s;
    uint32_t whole = utf8_validate(UTF8_ACCEPT, s, v->n);

    for (size_t k = 0; k <= v->n; k++) {
        uint8_t *a = malloc(k ? k : 1), *b = malloc(v->n - k ? v->n - k : 1);
        uint32_t st;
        char how[32];

        memcpy(a, s, k);
        memcpy(b, s + k, v->n - k);
        st = utf8_validate(UTF8_ACCEPT, a, k);
        st = utf8_validate(st, b, v->n - k);
        snprintf(how, sizeof how, "split at %zu", k);
        EXPECT(st == whole, "%s: %s gives state %u, whole gives %u", v->name, how, st, whole);
        check_state_kind(v, st, how);
        free(a);
        free(b);
    }
}
END_TEST

/* One byte at a time: same final state, and REJECT exactly at the first bad
 * byte: every prefix before it is not rejected, every one from it on is. */
START_TEST(test_vector_bytewise_failfast)
{
    const struct vec *v = &vecs[_i];
    const uint8_t *s = (const uint8_t *)v->s;
    uint32_t st = UTF8_ACCEPT;

    for (size_t k = 0; k < v->n; k++) {
        uint8_t byte = s[k];
        uint32_t whole_prefix;

        st = utf8_validate(st, &byte, 1);
        whole_prefix = utf8_validate(UTF8_ACCEPT, s, k + 1);
        EXPECT(st == whole_prefix, "%s: bytewise state %u after %zu bytes, whole prefix %u",
                      v->name, st, k + 1, whole_prefix);
        if (v->kind == BAD && (long)k >= v->bad)
            EXPECT(st == UTF8_REJECT, "%s: byte %zu fed, not rejected (state %u); first bad is %ld",
                          v->name, k, st, v->bad);
        else
            EXPECT(st != UTF8_REJECT, "%s: rejected at byte %zu, but the first bad byte is %ld",
                          v->name, k, v->kind == BAD ? v->bad : -1L);
    }
    check_state_kind(v, st, "bytewise");
    /* rejection is sticky, even when valid bytes follow */
    if (v->kind == BAD) {
        static const uint8_t more[] = "valid ascii text and more of it";
        ck_assert_uint_eq(utf8_validate(st, more, sizeof more - 1), UTF8_REJECT);
        ck_assert_uint_eq(utf8_validate(UTF8_REJECT, more, 1), UTF8_REJECT);
    }
    /* feeding zero bytes changes nothing */
    ck_assert_uint_eq(utf8_validate(st, s, 0), st);
}
END_TEST

/* Every 2-byte sequence, followed by bytes from a set of interesting ones,
 * checked against the reference for the whole-input state and the exact
 * position of the rejection. */
START_TEST(test_exhaustive_two_bytes)
{
    static const uint8_t tails[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf4, 0xff};
    const size_t nt = sizeof tails;
    unsigned b0 = (unsigned)_i;

    for (unsigned b1 = 0; b1 < 256; b1++) {
        for (size_t t2 = 0; t2 < nt; t2++) {
            for (size_t t3 = 0; t3 < nt; t3++) {
                uint8_t s[4] = {(uint8_t)b0, (uint8_t)b1, tails[t2], tails[t3]};
                int inc;
                long bad = ref_first_bad(s, 4, &inc);
                uint32_t st = utf8_validate(UTF8_ACCEPT, s, 4);
                uint32_t exp_ok = bad < 0 && !inc;

                if (bad >= 0) {
                    EXPECT(st == UTF8_REJECT, "%02x %02x %02x %02x: state %u, expected REJECT",
                                  s[0], s[1], s[2], s[3], st);
                    /* fail fast: the prefix without the bad byte is not rejected */
                    EXPECT(utf8_validate(UTF8_ACCEPT, s, (size_t)bad) != UTF8_REJECT,
                                  "%02x %02x %02x %02x: rejected before byte %ld", s[0], s[1], s[2], s[3], bad);
                    EXPECT(utf8_validate(UTF8_ACCEPT, s, (size_t)bad + 1) == UTF8_REJECT,
                                  "%02x %02x %02x %02x: not rejected at byte %ld", s[0], s[1], s[2], s[3], bad);
                } else if (exp_ok) {
                    EXPECT(st == UTF8_ACCEPT, "%02x %02x %02x %02x: state %u, expected ACCEPT",
                                  s[0], s[1], s[2], s[3], st);
                } else {
                    EXPECT(st != UTF8_ACCEPT && st != UTF8_REJECT,
                                  "%02x %02x %02x %02x: state %u, expected incomplete", s[0], s[1], s[2], s[3], st);
                }
                EXPECT(utf8_is_valid(s, 4) == (int)exp_ok, "%02x %02x %02x %02x: utf8_is_valid wrong", s[0], s[1], s[2], s[3]);
            }
        }
    }
}
END_TEST

/* Long ASCII runs with one bad byte at every offset 0..40 (the 8-byte fast
 * path must stop exactly there), at every buffer alignment. */
START_TEST(test_ascii_run_bad_at_every_offset)
{
    static const uint8_t bads[] = {0x80, 0xbf, 0xc0, 0xc1, 0xf5, 0xff};
    uint8_t *mem = malloc(64 + 8);

    for (size_t b = 0; b < sizeof bads; b++) {
        for (size_t align = 0; align < 8; align++) {
            for (size_t off = 0; off <= 40; off++) {
                uint8_t *s = mem + align;
                const size_t n = 56;

                memset(s, 'a' + (int)(off % 26), n);
                s[off] = bads[b];
                EXPECT(utf8_validate(UTF8_ACCEPT, s, n) == UTF8_REJECT,
                              "bad %02x at %zu (align %zu) not rejected", bads[b], off, align);
                EXPECT(utf8_validate(UTF8_ACCEPT, s, off) == UTF8_ACCEPT,
                              "ascii prefix of %zu bytes before bad %02x not accepted", off, bads[b]);
                EXPECT(utf8_validate(UTF8_ACCEPT, s, off + 1) == UTF8_REJECT,
                              "bad %02x at %zu not rejected when it is the last byte", bads[b], off);
                EXPECT(utf8_is_valid(s, n) == 0, "bad %02x at %zu: utf8_is_valid true", bads[b], off);
                /* same byte, but the run resumes after a split right before it */
                EXPECT(utf8_validate(utf8_validate(UTF8_ACCEPT, s, off), s + off, n - off) == UTF8_REJECT,
                       "bad %02x at %zu: not rejected after a split before it", bads[b], off);
            }
            /* and the clean run is accepted */
            memset(mem + align, 'z', 56);
            ck_assert_uint_eq(utf8_validate(UTF8_ACCEPT, mem + align, 56), UTF8_ACCEPT);
        }
    }
    free(mem);
}
END_TEST

/* A 2/3/4-byte character, and an invalid sequence, placed at every offset
 * inside a long ASCII run: straddles 8-byte words at every position. */
START_TEST(test_multibyte_straddles_words)
{
    static const struct { const char *s; size_t n; long bad; int inc; } pieces[] = {
        {"\xc3\xa9", 2, -1, 0},
        {"\xe2\x82\xac", 3, -1, 0},
        {"\xf0\x9f\x98\x80", 4, -1, 0},
        {"\xef\xbf\xbf", 3, -1, 0},
        {"\xed\xa0\x80", 3, 1, 0},
        {"\xe0\x80\x80", 3, 1, 0},
        {"\xf4\x90\x80\x80", 4, 1, 0},
        {"\xe2\x82", 2, 2, 0},       /* truncated, then ASCII follows: bad at the ASCII */
        {"\xf0\x9f\x98", 3, 3, 0},
    };
    uint8_t *mem = malloc(80);

    for (size_t pi = 0; pi < sizeof pieces / sizeof pieces[0]; pi++) {
        for (size_t align = 0; align < 8; align++) {
            for (size_t off = 0; off <= 40; off++) {
                uint8_t *s = mem + align;
                const size_t n = 64;
                uint32_t st;

                memset(s, 'x', n);
                memcpy(s + off, pieces[pi].s, pieces[pi].n);
                st = utf8_validate(UTF8_ACCEPT, s, n);
                if (pieces[pi].bad < 0) {
                    EXPECT(st == UTF8_ACCEPT, "piece %zu at %zu align %zu: state %u", pi, off, align, st);
                    /* cut inside the character: the first half leaves a middle state */
                    for (size_t c = 1; c < pieces[pi].n; c++) {
                        uint32_t mid = utf8_validate(UTF8_ACCEPT, s, off + c);
                        EXPECT(mid != UTF8_ACCEPT && mid != UTF8_REJECT,
                                      "piece %zu at %zu cut after %zu: state %u", pi, off, c, mid);
                        EXPECT(utf8_validate(mid, s + off + c, n - off - c) == UTF8_ACCEPT,
                               "piece %zu at %zu cut after %zu: rest not accepted", pi, off, c);
                    }
                } else {
                    size_t badpos = off + (size_t)pieces[pi].bad;
                    EXPECT(st == UTF8_REJECT, "piece %zu at %zu align %zu: not rejected", pi, off, align);
                    EXPECT(utf8_validate(UTF8_ACCEPT, s, badpos) != UTF8_REJECT,
                                  "piece %zu at %zu: rejected before byte %zu", pi, off, badpos);
                    EXPECT(utf8_validate(UTF8_ACCEPT, s, badpos + 1) == UTF8_REJECT,
                                  "piece %zu at %zu: not rejected at byte %zu", pi, off, badpos);
                }
            }
        }
    }
    free(mem);
}
END_TEST

/* A state inside a code point carried into a call that starts with an ASCII
 * run: the fast path must not skip over the pending continuation. */
START_TEST(test_pending_state_into_ascii_run)
{
    static const char *starts[] = {"\xc3", "\xe2", "\xe2\x82", "\xf0", "\xf0\x9f", "\xf0\x9f\x98"};
    uint8_t run[40];

    memset(run, 'A', sizeof run);
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        uint32_t st = utf8_validate(UTF8_ACCEPT, (const uint8_t *)starts[i], strlen(starts[i]));
        EXPECT(st != UTF8_ACCEPT && st != UTF8_REJECT, "start %zu: state %u", i, st);
        for (size_t n = 1; n <= sizeof run; n++)
            EXPECT(utf8_validate(st, run, n) == UTF8_REJECT,
                          "start %zu then %zu ASCII bytes: not rejected", i, n);
    }
}
END_TEST

/* A long text of mixed characters (every Unicode scalar class), fed whole,
 * byte by byte, and in pieces of every size 1..17: accepted every time. */
START_TEST(test_long_mixed_text_any_chunking)
{
    static const char *chars[] = {"a", "Z", "\x7f", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf",
                                  "\xee\x80\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf",
                                  "hello world ", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"};
    uint8_t text[4096];
    size_t n = 0;
    unsigned x = 12345;

    while (n + 16 < sizeof text) {
        const char *c;
        x = x * 1103515245u + 12345u;
        c = chars[(x >> 16) % (sizeof chars / sizeof chars[0])];
        memcpy(text + n, c, strlen(c));
        n += strlen(c);
    }
    ck_assert_uint_eq(utf8_validate(UTF8_ACCEPT, text, n), UTF8_ACCEPT);
    ck_assert_int_eq(utf8_is_valid(text, n), 1);
    for (size_t piece = 1; piece <= 17; piece++) {
        uint32_t st = UTF8_ACCEPT;
        for (size_t i = 0; i < n; i += piece) {
            size_t m = n - i < piece ? n - i : piece;
            st = utf8_validate(st, text + i, m);
            EXPECT(st != UTF8_REJECT, "piece size %zu: rejected at %zu", piece, i);
        }
        EXPECT(st == UTF8_ACCEPT, "piece size %zu: final state %u", piece, st);
    }
    /* now corrupt one byte in the middle: the reference says where it fails */
    text[n / 2] = 0xff;
    {
        int inc;
        long bad = ref_first_bad(text, n, &inc);
        ck_assert_int_ge(bad, 0);
        ck_assert_uint_ne(utf8_validate(UTF8_ACCEPT, text, (size_t)bad), UTF8_REJECT);
        ck_assert_uint_eq(utf8_validate(UTF8_ACCEPT, text, (size_t)bad + 1), UTF8_REJECT);
    }
}
END_TEST

/* Pseudo-random byte strings with a bias toward UTF-8 lead and continuation
 * bytes, compared with the reference for state class and reject position,
 * whole and split at every point. */
START_TEST(test_random_against_reference)
{
    static const uint8_t alphabet[] = {0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2,
                                       0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff};
    unsigned x = 777;

    for (int iter = 0; iter < 20000; iter++) {
        uint8_t s[12];
        size_t n;
        int inc;
        long bad;
        uint32_t whole;

        x = x * 1103515245u + 12345u;
        n = (x >> 16) % 12 + 1;
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            s[i] = alphabet[(x >> 16) % sizeof alphabet];
        }
        bad = ref_first_bad(s, n, &inc);
        whole = utf8_validate(UTF8_ACCEPT, s, n);
        if (bad >= 0) {
            EXPECT(whole == UTF8_REJECT, "iter %d: bad byte at %ld not rejected (state %u)", iter, bad, whole);
            EXPECT(utf8_validate(UTF8_ACCEPT, s, (size_t)bad) != UTF8_REJECT,
                   "iter %d: rejected before the first bad byte %ld", iter, bad);
        } else if (inc) {
            EXPECT(whole != UTF8_ACCEPT && whole != UTF8_REJECT, "iter %d: truncated input gives state %u", iter, whole);
        } else {
            EXPECT(whole == UTF8_ACCEPT, "iter %d: valid input gives state %u", iter, whole);
        }
        for (size_t k = 0; k <= n; k++)
            EXPECT(utf8_validate(utf8_validate(UTF8_ACCEPT, s, k), s + k, n - k) == whole,
                   "iter %d: split at %zu differs from whole", iter, k);
    }
}
END_TEST

static Suite *utf8_suite(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("vectors");
    TCase *tc2 = tcase_create("fast path and chunking");

    tcase_add_loop_test(tc, test_reference_agrees, 0, (int)NVECS);
    tcase_add_loop_test(tc, test_vector_whole, 0, (int)NVECS);
    tcase_add_loop_test(tc, test_vector_splits, 0, (int)NVECS);
    tcase_add_loop_test(tc, test_vector_bytewise_failfast, 0, (int)NVECS);
    tcase_add_loop_test(tc, test_exhaustive_two_bytes, 0, 256);
    suite_add_tcase(s, tc);

    tcase_set_timeout(tc2, 60);
    tcase_add_test(tc2, test_ascii_run_bad_at_every_offset);
    tcase_add_test(tc2, test_multibyte_straddles_words);
    tcase_add_test(tc2, test_pending_state_into_ascii_run);
    tcase_add_test(tc2, test_long_mixed_text_any_chunking);
    tcase_add_test(tc2, test_random_against_reference);
    suite_add_tcase(s, tc2);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(utf8_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
