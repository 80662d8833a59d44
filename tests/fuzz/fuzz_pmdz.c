/* fuzz_pmdz: libFuzzer harness for src/pmdz.c, permessage-deflate's
 * compression with zlib. Input layout: byte 0 picks the message limit (0 is
 * none, else 1..255 times 64 bytes) and whether the message is text; byte 1
 * picks a split point; the rest is the payload of a compressed message.
 *  - Inflated whole (the shared inflater), in two pieces at the split point,
 *    and in pseudo-random pieces (a stream per message), the verdict is the
 *    same, and so are the bytes when it is PMDZ_OK;
 *  - output never passes the limit by more than one byte, and PMDZ_TOO_BIG
 *    comes with exactly limit + 1 bytes;
 *  - PMDZ_OK text is valid UTF-8 (by the reference decoder of fuzz_ref.h);
 *  - a stream is never left behind (LeakSanitizer) or used after an error;
 *  - the payload as a message: pmdz_frame compresses it (RSV1) or leaves it
 *    plain, and a compressed frame inflates back to the payload; pmdz_shared
 *    gives the same frame to every caller until the next frame.
 * Deterministic; no state survives a run. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_ref.h"
#include "pmdz.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

struct result {
    enum pmdz_status st;
    struct buf out;
};

/* Inflates d[0..n) given in pieces of the sizes that next() yields. */
static struct result inflate_pieces(struct pmdz *z, const uint8_t *d, size_t n, size_t first, unsigned seed,
                                    int text, uint64_t limit)
{
    struct result r = {PMDZ_OK, {0}};
    struct pmdz_msg *m = NULL;
    size_t at = 0;
    for (int i = 0; r.st == PMDZ_OK; i++) {
        size_t k;
        if (i == 0) {
            k = first;
        } else {
            seed = seed * 1103515245u + 12345u;
            k = seed ? (seed >> 16) % 97 : n;
        }
        if (k > n - at)
            k = n - at;
        int last = at + k == n;
        uint8_t *piece = malloc(k ? k : 1);
        CHECK(piece != NULL);
        if (k)
            memcpy(piece, d + at, k);
        r.st = pmdz_inflate(z, &m, piece, k, last, text, limit, &r.out);
        free(piece);
        at += k;
        CHECK(limit == 0 || r.out.len <= limit + 1);
        if (r.st != PMDZ_OK || last) {
            CHECK(m == NULL);
            break;
        }
    }
    if (r.st == PMDZ_TOO_BIG)
        CHECK(r.out.len == limit + 1);
    if (r.st == PMDZ_OK && text)
        CHECK(ref_utf8(r.out.data, r.out.len));
    return r;
}

static void check_same(const struct result *a, const struct result *b)
{
    CHECK(a->st == b->st);
    if (a->st == PMDZ_OK)
        CHECK(a->out.len == b->out.len && (a->out.len == 0 || memcmp(a->out.data, b->out.data, a->out.len) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint64_t limit = (uint64_t)(data[0] >> 1) * 64;
    int text = data[0] & 1;
    size_t split = data[1];
    const uint8_t *d = data + 2;
    size_t n = size - 2;
    struct pmdz *z = pmdz_new(0);
    CHECK(z != NULL);

    struct result whole = inflate_pieces(z, d, n, n, 0, text, limit);
    struct result two = inflate_pieces(z, d, n, split < n ? split : n, 0, text, limit);
    struct result many = inflate_pieces(z, d, n, split % 13, split + 1, text, limit);
    check_same(&whole, &two);
    check_same(&whole, &many);
    buf_free(&whole.out);
    buf_free(&two.out);
    buf_free(&many.out);

    unsigned wbits = 9 + split % 7;
    struct sbuf *f = pmdz_frame(z, wbits, WS_OP_BINARY, d, n);
    CHECK(f != NULL);
    size_t h = ws_frame_header_len(f->data);
    if (f->data[0] & WS_RSV1) {
        CHECK(f->len - h < n);
        struct result back = inflate_pieces(z, f->data + h, f->len - h, split, split, 0, 0);
        CHECK(back.st == PMDZ_OK && back.out.len == n && memcmp(back.out.data, d, n) == 0);
        buf_free(&back.out);
    } else {
        CHECK(f->len - h == n && (n == 0 || memcmp(f->data + h, d, n) == 0));
    }
    sbuf_unref(f);

    struct sbuf *plain = ws_frame_new(WS_OP_TEXT, d, n);
    CHECK(plain != NULL);
    struct sbuf *s1 = pmdz_shared(z, wbits, plain), *s2 = pmdz_shared(z, wbits, plain);
    CHECK(s1 == s2);
    sbuf_unref(s1);
    sbuf_unref(s2);
    sbuf_unref(plain);
    pmdz_free(z);
    return 0;
}
