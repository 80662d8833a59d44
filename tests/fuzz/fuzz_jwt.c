/* fuzz_jwt: libFuzzer harness for src/jwt.c. The input is a token (at most
 * JWT_MAX_TOKEN + 16 bytes). Properties:
 *  - verification never crashes, leaks or reads past the input, whatever the
 *    bytes, for an HS256 key;
 *  - a token accepted is one this key signs: re-signing its claims part with
 *    jwt_sign_hs256 is not required to give the same text, but an accepted
 *    token always has a non-empty sub and, with all_rooms 0, at most
 *    JWT_ROOMS_MAX rooms, each NUL-terminated within its buffer;
 *  - every error has a reason text;
 *  - the input's own payload, signed here with the key, verifies when its
 *    claims are a JSON object with a string sub (round trip through the
 *    signer), so the signing path is fuzzed too.
 * Deterministic; no state survives a run. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static const uint8_t SECRET[] = "fuzzing secret";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > JWT_MAX_TOKEN + 16)
        return 0;
    struct jwt_key *k = jwt_key_secret(SECRET, sizeof(SECRET) - 1);
    CHECK(k != NULL);
    char *tok = malloc(size ? size : 1);
    CHECK(tok != NULL);
    memcpy(tok, data, size);
    struct jwt_expect ex = {.now = 1800000000, .leeway = 30};
    struct jwt_claims c;
    enum jwt_error e = jwt_verify(k, tok, size, &ex, &c);
    CHECK(jwt_error_text(e)[0] != '\0');
    if (e == JWT_OK) {
        CHECK(c.sub[0] != '\0');
        CHECK(memchr(c.sub, 0, sizeof(c.sub)) && memchr(c.name, 0, sizeof(c.name)));
        CHECK(c.all_rooms || c.nrooms <= JWT_ROOMS_MAX);
        for (size_t i = 0; i < c.nrooms; i++)
            CHECK(memchr(c.rooms[i], 0, sizeof(c.rooms[i])) != NULL);
    }
    /* the input as a claims object, signed and verified again */
    char *payload = malloc(size + 1);
    CHECK(payload != NULL);
    memcpy(payload, data, size);
    payload[size] = '\0';
    char signed_tok[JWT_MAX_TOKEN + 1];
    size_t n = strlen(payload) < 2048 ? jwt_sign_hs256(k, payload, signed_tok, sizeof(signed_tok)) : 0;
    if (n) {
        struct jwt_claims c2;
        enum jwt_error e2 = jwt_verify(k, signed_tok, n, &ex, &c2);
        CHECK(e2 != JWT_BAD_SIGNATURE && e2 != JWT_BAD_ALG && e2 != JWT_TOO_LONG);
    }
    free(payload);
    free(tok);
    jwt_key_free(k);
    return 0;
}
