/* fuzz_json: libFuzzer harness for src/json.c (string escaping), with
 * utf8.c's validator cross-checked on the way.
 *  - for input that is valid UTF-8 (what the server escapes), the output of
 *    json_append_string is one strict JSON string literal (RFC 8259 section 7,
 *    checked by a validator written here: quotes at both ends, no raw control
 *    byte, no raw quote or backslash, only the defined escapes, \u with four
 *    hex digits and surrogates paired, the text valid UTF-8) and decodes with
 *    a decoder written here back to exactly the input bytes; appending keeps
 *    what was in the buffer before; json_append_cstring on the input up to
 *    its first NUL gives the same as json_append_string on that prefix;
 *  - any input (valid or not) is escaped without a crash or leak, and the
 *    output starts and ends with a quote;
 *  - utf8_is_valid agrees with a reference decoder, and utf8_validate fed in
 *    two pieces (at every 8th split point) ends in the same state as fed whole;
 *  - json_append_u64 on the first 8 bytes writes the decimal number.
 * Deterministic; no state survives a run. */
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "utf8.h"
#include "fuzz_ref.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)


static int hex4(const uint8_t *p, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        *v = *v * 16 + (uint32_t)d;
    }
    return 0;
}

static size_t put_utf8(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Validates a strict JSON string literal in[0..n) and decodes it into out
 * (room for n bytes). Returns the decoded length, or -1 if not a valid literal. */
static long json_decode_string(const uint8_t *in, size_t n, uint8_t *out)
{
    if (n < 2 || in[0] != '"' || in[n - 1] != '"' || !ref_utf8(in, n))
        return -1;
    size_t o = 0;
    for (size_t i = 1; i < n - 1;) {
        uint8_t c = in[i];
        if (c < 0x20 || c == '"')
            return -1;
        if (c != '\\') {
            out[o++] = c;
            i++;
            continue;
        }
        if (i + 1 >= n - 1)
            return -1;   /* a backslash escaping the closing quote */
        uint8_t e = in[i + 1];
        i += 2;
        switch (e) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (n - 1 - i < 4 || hex4(in + i, &cp) < 0)
                return -1;
            i += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return -1;   /* a lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (n - 1 - i < 6 || in[i] != '\\' || in[i + 1] != 'u' || hex4(in + i + 2, &lo) < 0 ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o += put_utf8(out + o, cp);
            break;
        }
        default:
            return -1;
        }
    }
    return (long)o;
}

static void check_escape(const uint8_t *s, size_t n, int valid)
{
    static const char prefix[] = "{\"text\":";
    struct buf b = {0};
    CHECK(buf_append(&b, prefix, sizeof prefix - 1) == 0);
    CHECK(json_append_string(&b, (const char *)s, n) == 0);
    CHECK(b.len >= sizeof prefix - 1 + 2 && memcmp(b.data, prefix, sizeof prefix - 1) == 0);
    const uint8_t *lit = b.data + sizeof prefix - 1;
    size_t ln = b.len - (sizeof prefix - 1);
    CHECK(lit[0] == '"' && lit[ln - 1] == '"');
    CHECK(ln <= 6 * n + 2);
    for (size_t i = 0; i < ln; i++)
        CHECK(lit[i] >= 0x20);   /* no raw control byte, whatever the input */
    if (valid) {
        uint8_t *dec = malloc(ln);
        CHECK(dec != NULL);
        long dn = json_decode_string(lit, ln, dec);
        CHECK(dn >= 0);
        CHECK((size_t)dn == n && memcmp(dec, s, n) == 0);
        free(dec);
    }
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *s = malloc(size ? size : 1);   /* exact size */
    CHECK(s != NULL);
    memcpy(s, data, size);

    int valid = ref_utf8(s, size);
    CHECK(!!utf8_is_valid(s, size) == valid);
    /* incremental: two pieces agree with whole */
    uint32_t whole = utf8_validate(UTF8_ACCEPT, s, size);
    CHECK((whole == UTF8_ACCEPT) == valid);
    for (size_t k = 0; k <= size; k += 8) {
        size_t cut = k + (size ? data[0] % 8 : 0);
        if (cut > size)
            cut = size;
        uint32_t st = utf8_validate(UTF8_ACCEPT, s, cut);
        if (st != UTF8_REJECT)
            st = utf8_validate(st, s + cut, size - cut);
        CHECK(st == whole);
    }

    check_escape(s, size, valid);

    /* the NUL-terminated form on the prefix before the first NUL */
    char *z = malloc(size + 1);
    CHECK(z != NULL);
    memcpy(z, data, size);
    z[size] = '\0';
    size_t zn = strlen(z);
    struct buf a = {0}, b = {0};
    CHECK(json_append_cstring(&a, z) == 0);
    CHECK(json_append_string(&b, z, zn) == 0);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    buf_free(&a);
    buf_free(&b);
    free(z);

    if (size >= 8) {
        uint64_t v;
        memcpy(&v, data, 8);
        char want[24];
        int wn = snprintf(want, sizeof want, "%llu", (unsigned long long)v);
        struct buf u = {0};
        CHECK(json_append_u64(&u, v) == 0);
        CHECK(u.len == (size_t)wn && memcmp(u.data, want, u.len) == 0);
        buf_free(&u);
    }
    free(s);
    return 0;
}
