/* fuzz_close: libFuzzer harness for the close-frame helpers in src/ws.c.
 *  - ws_close_payload_check on the input (as a close payload) agrees with an
 *    independent reference written here from RFC 6455 sections 5.5.1 and 7.4:
 *    empty is fine; 1 byte or more than 125 is 1002; the code must be
 *    1000-1003, 1007-1014 or 3000-4999, else 1002; a reason that is not UTF-8
 *    (checked by a decoder written here, not utf8.c) is 1007;
 *  - ws_close_code_valid agrees with the reference for the input's code;
 *  - ws_encode_close_payload with a code from the first two bytes and a
 *    reason from the rest (up to its first NUL) writes at most 125 bytes
 *    (ASan sees a write past the 125-byte buffer), starts with the code, keeps
 *    the longest prefix of the reason that fits without cutting a code point,
 *    and, when the code is valid and the reason is UTF-8, passes the check;
 *    code 0 writes nothing.
 * Deterministic; no state survives a run. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws.h"
#include "fuzz_ref.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static int ref_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}


static uint16_t ref_check(const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if (n == 1 || n > 125)
        return 1002;
    if (!ref_code_valid(((unsigned)p[0] << 8) | p[1]))
        return 1002;
    if (!ref_utf8(p + 2, n - 2))
        return 1007;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the input as a close payload, in an exact-size buffer */
    uint8_t *p = malloc(size ? size : 1);
    CHECK(p != NULL);
    memcpy(p, data, size);
    uint16_t got = ws_close_payload_check(p, size);
    CHECK(got == ref_check(p, size));
    if (size >= 2) {
        unsigned code = ((unsigned)p[0] << 8) | p[1];
        CHECK(!!ws_close_code_valid(code) == ref_code_valid(code));
    }
    CHECK(memcmp(p, data, size) == 0);   /* the check does not write */
    free(p);

    /* every 16-bit code and a few beyond agree with the reference: cheap, and
     * the input picks which */
    if (size >= 3) {
        unsigned wide = ((unsigned)data[0] << 16) | ((unsigned)data[1] << 8) | data[2];
        CHECK(!!ws_close_code_valid(wide) == ref_code_valid(wide));
    }

    /* encoding: code from the first two bytes, reason from the rest up to a NUL */
    uint16_t code = size >= 2 ? (uint16_t)((data[0] << 8) | data[1]) : (size ? data[0] : 0);
    size_t rl = size > 2 ? size - 2 : 0;
    char *reason = malloc(rl + 1);
    CHECK(reason != NULL);
    memcpy(reason, data + (size > 2 ? 2 : 0), rl);
    reason[rl] = '\0';
    rl = strlen(reason);
    uint8_t *out = malloc(WS_MAX_CONTROL_PAYLOAD);   /* exactly 125 bytes, as documented */
    CHECK(out != NULL);
    size_t n = ws_encode_close_payload(out, code, reason);
    CHECK(n <= WS_MAX_CONTROL_PAYLOAD);
    if (code == 0) {
        CHECK(n == 0);
    } else {
        CHECK(n >= 2 && out[0] == (code >> 8) && out[1] == (code & 0xFF));
        size_t kept = n - 2;
        CHECK(kept <= rl && memcmp(out + 2, reason, kept) == 0);
        if (rl <= WS_MAX_CONTROL_PAYLOAD - 2) {
            CHECK(kept == rl);
        } else {
            /* the longest prefix that does not end before a continuation byte */
            size_t want = WS_MAX_CONTROL_PAYLOAD - 2;
            while (want > 0 && ((uint8_t)reason[want] & 0xC0) == 0x80)
                want--;
            CHECK(kept == want);
            if (ref_utf8((const uint8_t *)reason, rl))
                CHECK(ref_utf8(out + 2, kept) && kept + 4 > WS_MAX_CONTROL_PAYLOAD - 2);
        }
        if (ref_code_valid(code) && ref_utf8((const uint8_t *)reason, rl))
            CHECK(ws_close_payload_check(out, n) == 0);
        CHECK(ws_close_payload_check(out, n) == ref_check(out, n));
    }
    /* a NULL reason is an empty one */
    n = ws_encode_close_payload(out, code, NULL);
    CHECK(n == (code ? 2u : 0u));
    free(out);
    free(reason);
    return 0;
}
