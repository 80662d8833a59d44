/* fuzz_pmd: libFuzzer harness for src/pmd.c, the permessage-deflate
 * negotiation. The input is a Sec-WebSocket-Extensions value, in an
 * exact-size heap buffer (ASan sees any read past it). Checks:
 *  - the verdict is malformed, decline or accept, and the same twice;
 *  - an accepted offer has flags of 0 or 1, server_max_window_bits 0 or 8..15,
 *    client_max_window_bits 0, PMD_BITS_NO_VALUE or 8..15; its answer fits
 *    PMD_RESPONSE_MAX and itself parses as an offer with both
 *    no_context_takeover flags and the same server_max_window_bits; the
 *    window the server compresses with is 9..15 and never above the offer's;
 *  - lists compose: "INPUT, permessage-deflate" is malformed when the input
 *    is, accepts the input's offer when it has one, else the bare offer; and
 *    "permessage-deflate, INPUT" is malformed when the input is, else accepts
 *    the bare offer.
 * Deterministic; no state survives a run. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pmd.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static enum pmd_verdict parse(const uint8_t *d, size_t n, struct pmd_params *p)
{
    char *copy = malloc(n ? n : 1);
    CHECK(copy != NULL);
    if (n)
        memcpy(copy, d, n);
    memset(p, 0xA5, sizeof(*p));
    enum pmd_verdict v = pmd_parse(copy, n, p);
    free(copy);
    return v;
}

static int same(const struct pmd_params *a, const struct pmd_params *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

static int bits_ok(unsigned b)
{
    return b >= 8 && b <= 15;
}

static enum pmd_verdict parse_joined(const char *before, const uint8_t *d, size_t n, const char *after,
                                     struct pmd_params *p)
{
    size_t a = strlen(before), z = strlen(after);
    uint8_t *joined = malloc(a + n + z + 1);
    CHECK(joined != NULL);
    memcpy(joined, before, a);
    if (n)
        memcpy(joined + a, d, n);
    memcpy(joined + a + n, after, z);
    enum pmd_verdict v = parse(joined, a + n + z, p);
    free(joined);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pmd_params p, again, bare = {0, 0, 0, 0}, j;
    enum pmd_verdict v = parse(data, size, &p);
    CHECK(v == PMD_MALFORMED || v == PMD_DECLINE || v == PMD_ACCEPT);
    enum pmd_verdict v2 = parse(data, size, &again);
    CHECK(v2 == v);
    if (v == PMD_ACCEPT) {
        CHECK(same(&p, &again));
        CHECK(p.server_no_context_takeover <= 1 && p.client_no_context_takeover <= 1);
        CHECK(p.server_max_window_bits == 0 || bits_ok(p.server_max_window_bits));
        CHECK(p.client_max_window_bits == 0 || p.client_max_window_bits == PMD_BITS_NO_VALUE ||
              bits_ok(p.client_max_window_bits));
        char resp[PMD_RESPONSE_MAX];
        size_t rn = pmd_response(&p, resp, sizeof resp);
        CHECK(rn > 0 && rn < sizeof resp && strlen(resp) == rn);
        struct pmd_params back;
        CHECK(parse((const uint8_t *)resp, rn, &back) == PMD_ACCEPT);
        CHECK(back.server_no_context_takeover == 1 && back.client_no_context_takeover == 1);
        CHECK(back.server_max_window_bits == p.server_max_window_bits && back.client_max_window_bits == 0);
        unsigned w = pmd_server_window_bits(&p);
        CHECK(w >= 9 && w <= 15);
        CHECK(p.server_max_window_bits == 0 || w <= (p.server_max_window_bits < 9 ? 9u : p.server_max_window_bits));
    }

    enum pmd_verdict vj = parse_joined("", data, size, ", permessage-deflate", &j);
    if (v == PMD_MALFORMED)
        CHECK(vj == PMD_MALFORMED);
    else
        CHECK(vj == PMD_ACCEPT && same(&j, v == PMD_ACCEPT ? &p : &bare));
    vj = parse_joined("permessage-deflate, ", data, size, "", &j);
    if (v == PMD_MALFORMED)
        CHECK(vj == PMD_MALFORMED);
    else
        CHECK(vj == PMD_ACCEPT && same(&j, &bare));
    return 0;
}
