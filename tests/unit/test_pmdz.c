/* test_pmdz: unit tests for src/pmdz.c, permessage-deflate's compression.
 * Sending: what is compressed and what goes plain (size, opcode, gain), that
 * the frames carry RSV1 and inflate (with zlib itself, in the window the
 * client asked for, 8 included) to the message, and that a shared frame is
 * compressed once per window size however many connections it goes to.
 * Receiving: round trips fed whole, split at every point and a byte at a
 * time; the message limit (a 10 MB zip bomb in about 10 KB is refused having
 * inflated no more than the limit plus one byte); corrupt data; UTF-8 of
 * inflated text; final blocks; a message cut short (no leak under ASan). */
#define ZLIB_CONST
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "pmdz.h"
#include "utf8.h"

#define EXPECT(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *d = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        d[i] = (uint8_t)(seed >> 16);
    }
    return d;
}

/* Chat-like text: compresses well, with repeats both near and far. */
static uint8_t *chat_text(size_t n)
{
    static const char *const words[] = {"{\"type\":\"message\",", "\"room\":\"lobby\",", "\"nick\":\"alice\",",
                                        "\"text\":\"h\xc3\xa9llo w\xc3\xb6rld\",", "\"seq\":12345}", " "};
    uint8_t *d = malloc(n + 32);
    size_t k = 0;
    for (unsigned i = 0; k < n; i++) {
        const char *w = words[(i * 7 + i / 5) % 6];
        size_t l = strlen(w);
        memcpy(d + k, w, l);
        k += l;
    }
    if (n > 0 && d[n - 1] >= 0xC0)   /* a two-byte sequence cut in half */
        d[n - 1] = 'x';
    return d;
}

/* A figure from the /stats rendering of z's counters. */
static uint64_t counter(const struct pmdz *z, const char *key)
{
    struct buf out = {0};
    struct metrics m;
    char pat[64];
    metrics_begin(&m, &out, METRICS_JSON);
    pmdz_metrics(z, &m);
    ck_assert_int_eq(metrics_end(&m), 0);
    buf_append(&out, "", 1);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = strstr((const char *)out.data, pat);
    ck_assert_ptr_nonnull(at);
    uint64_t v = strtoull(at + strlen(pat), NULL, 10);
    buf_free(&out);
    return v;
}

/* Inflates a whole raw deflate payload (with the sync tail added) with zlib
 * itself, in a window of wbits (8..15). Returns 0 on success. */
static int zlib_inflate(const uint8_t *p, size_t n, int wbits, struct buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -wbits) != Z_OK)
        return -1;
    uint8_t *in = malloc(n + 4);
    memcpy(in, p, n);
    memcpy(in + n, "\x00\x00\xff\xff", 4);
    zs.next_in = in;
    zs.avail_in = (uInt)(n + 4);
    int rc = Z_OK;
    while (rc == Z_OK && (zs.avail_in || zs.avail_out == 0)) {
        buf_reserve(out, 65536);
        zs.next_out = out->data + out->len;
        zs.avail_out = 65536;
        rc = inflate(&zs, Z_SYNC_FLUSH);
        out->len += 65536 - zs.avail_out;
    }
    inflateEnd(&zs);
    free(in);
    return rc == Z_OK || rc == Z_BUF_ERROR || rc == Z_STREAM_END ? 0 : -1;
}

/* The payload of a frame, and its first header byte. */
static const uint8_t *payload_of(const struct sbuf *f, size_t *n)
{
    size_t h = ws_frame_header_len(f->data);
    *n = f->len - h;
    return f->data + h;
}

/* Compresses a message with raw deflate the way a client does (window
 * wbits, sync flush, tail dropped). */
static uint8_t *client_deflate(const uint8_t *p, size_t n, int wbits, int level, size_t *out_n)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(deflateInit2(&zs, level, Z_DEFLATED, -wbits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, n) + 16;
    uint8_t *out = malloc(cap);
    zs.next_in = p;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&zs, Z_SYNC_FLUSH), Z_OK);
    size_t m = cap - zs.avail_out;
    deflateEnd(&zs);
    ck_assert_uint_ge(m, 4);
    ck_assert_mem_eq(out + m - 4, "\x00\x00\xff\xff", 4);
    *out_n = m - 4;
    return out;
}

/* ---- sending ---- */

START_TEST(test_frame_compresses)
{
    static const size_t sizes[] = {128, 129, 1000, 4096, 65535, 65536, 70000, 1 << 20};
    struct pmdz *z = pmdz_new(128);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *d = chat_text(sizes[i]);
        for (unsigned wbits = 9; wbits <= 15; wbits++) {
            struct sbuf *f = pmdz_frame(z, wbits, WS_OP_TEXT, d, sizes[i]);
            ck_assert_ptr_nonnull(f);
            ck_assert_uint_eq(f->data[0], 0x80 | WS_RSV1 | WS_OP_TEXT);
            size_t n;
            const uint8_t *p = payload_of(f, &n);
            EXPECT(n < (sizes[i] < 1000 ? sizes[i] : sizes[i] / 2), "%zu bytes compressed to %zu", sizes[i], n);
            struct buf out = {0};
            ck_assert_int_eq(zlib_inflate(p, n, (int)wbits, &out), 0);
            EXPECT(out.len == sizes[i] && memcmp(out.data, d, sizes[i]) == 0, "round trip of %zu at %u bits",
                   sizes[i], wbits);
            buf_free(&out);
            sbuf_unref(f);
        }
        free(d);
    }
    ck_assert_uint_eq(counter(z, "deflate_compressions"), 7 * sizeof sizes / sizeof sizes[0]);
    ck_assert_uint_eq(counter(z, "messages_out_compressed"), 7 * sizeof sizes / sizeof sizes[0]);
    pmdz_free(z);
}
END_TEST

/* A client that asked for server_max_window_bits=8 gets frames made with
 * zlib's 9-bit window, which reach back at most 250 bytes: zlib inflates them
 * in an 8-bit window. The data repeats every 200 bytes, then every 300
 * (which a 512-byte window could use, and a 256-byte one could not follow). */
START_TEST(test_window_8)
{
    struct pmdz *z = pmdz_new(0);
    size_t n = 20000;
    uint8_t *d = malloc(n), *block = pattern(300, 4);
    for (size_t k = 0; k < n; k++)
        d[k] = block[k < n / 2 ? k % 200 : k % 300];
    struct sbuf *f = pmdz_frame(z, 9, WS_OP_BINARY, d, n);
    size_t m;
    const uint8_t *p = payload_of(f, &m);
    ck_assert_uint_eq(f->data[0], 0x80 | WS_RSV1 | WS_OP_BINARY);
    ck_assert_uint_lt(m, n * 3 / 4);
    struct buf out = {0};
    ck_assert_int_eq(zlib_inflate(p, m, 8, &out), 0);
    ck_assert_uint_eq(out.len, n);
    ck_assert_mem_eq(out.data, d, n);
    buf_free(&out);
    sbuf_unref(f);
    free(d);
    free(block);
    pmdz_free(z);
}
END_TEST

/* Plain frames: under the minimum size, control frames, empty messages,
 * incompressible data, and already compressed shared frames. */
START_TEST(test_frame_plain)
{
    struct pmdz *z = pmdz_new(128);
    uint8_t *text = chat_text(4096), *noise = pattern(4096, 7);
    struct sbuf *f = pmdz_frame(z, 15, WS_OP_TEXT, text, 127);
    ck_assert_uint_eq(f->data[0], 0x81);
    ck_assert_uint_eq(f->len, ws_header_len(127) + 127);
    sbuf_unref(f);
    f = pmdz_frame(z, 15, WS_OP_PING, text, 125);
    ck_assert_uint_eq(f->data[0], 0x89);
    sbuf_unref(f);
    f = pmdz_frame(z, 15, WS_OP_CLOSE, text, 125);
    ck_assert_uint_eq(f->data[0], 0x88);
    sbuf_unref(f);
    f = pmdz_frame(z, 15, WS_OP_BINARY, noise, 4096);
    ck_assert_uint_eq(f->data[0], 0x82);
    ck_assert_uint_eq(f->len, 4 + 4096);
    ck_assert_mem_eq(f->data + 4, noise, 4096);
    sbuf_unref(f);
    ck_assert_uint_eq(counter(z, "deflate_compressions"), 1);   /* the noise was tried */
    ck_assert_uint_eq(counter(z, "messages_out_compressed"), 0);
    pmdz_free(z);

    z = pmdz_new(0);   /* no minimum: still nothing for an empty message */
    f = pmdz_frame(z, 15, WS_OP_TEXT, "", 0);
    ck_assert_uint_eq(f->len, 2);
    ck_assert_uint_eq(f->data[0], 0x81);
    sbuf_unref(f);
    struct sbuf *c = ws_frame_new_compressed(WS_OP_TEXT, text, 4096);
    struct sbuf *s = pmdz_shared(z, 15, c);
    ck_assert_ptr_eq(s, c);
    ck_assert_uint_eq(c->refs, 2);
    sbuf_unref(s);
    sbuf_unref(c);
    ck_assert_uint_eq(counter(z, "deflate_compressions"), 0);
    pmdz_free(z);
    free(text);
    free(noise);
}
END_TEST

/* A broadcast: the same shared frame asked for by 1000 connections is
 * compressed once per window size; the next frame replaces it. */
START_TEST(test_shared_once)
{
    struct pmdz *z = pmdz_new(128);
    uint8_t *d = chat_text(1024);
    struct sbuf *frame = ws_frame_new(WS_OP_TEXT, d, 1024), *first = NULL;
    for (int i = 0; i < 1000; i++) {
        struct sbuf *s = pmdz_shared(z, 15, frame);
        ck_assert_ptr_ne(s, frame);
        if (!first)
            first = sbuf_ref(s);
        ck_assert_ptr_eq(s, first);
        sbuf_unref(s);
    }
    ck_assert_uint_eq(counter(z, "deflate_compressions"), 1);
    ck_assert_uint_eq(counter(z, "messages_out_compressed"), 1000);
    struct sbuf *s10 = pmdz_shared(z, 10, frame), *s10b = pmdz_shared(z, 10, frame);
    ck_assert_ptr_eq(s10, s10b);
    ck_assert_ptr_ne(s10, first);
    ck_assert_uint_eq(counter(z, "deflate_compressions"), 2);
    size_t n;
    const uint8_t *p = payload_of(s10, &n);
    struct buf out = {0};
    ck_assert_int_eq(zlib_inflate(p, n, 10, &out), 0);
    ck_assert_uint_eq(out.len, 1024);
    ck_assert_mem_eq(out.data, d, 1024);
    buf_free(&out);

    /* a frame under the minimum is shared as it is, and leaves the cache alone */
    struct sbuf *small = ws_frame_new(WS_OP_TEXT, d, 100);
    struct sbuf *ss = pmdz_shared(z, 15, small);
    ck_assert_ptr_eq(ss, small);
    sbuf_unref(ss);
    struct sbuf *again = pmdz_shared(z, 15, frame);
    ck_assert_ptr_eq(again, first);
    ck_assert_uint_eq(counter(z, "deflate_compressions"), 2);

    /* another frame: compressed once more; the old one is let go */
    struct sbuf *next = ws_frame_new(WS_OP_TEXT, d + 1, 1000);
    struct sbuf *sn = pmdz_shared(z, 15, next);
    ck_assert_ptr_ne(sn, next);
    ck_assert_uint_eq(counter(z, "deflate_compressions"), 3);
    ck_assert_uint_eq(frame->refs, 1);   /* the cache dropped its reference */
    sbuf_unref(sn);
    sbuf_unref(next);
    sbuf_unref(again);
    sbuf_unref(small);
    sbuf_unref(s10);
    sbuf_unref(s10b);
    sbuf_unref(first);
    sbuf_unref(frame);
    pmdz_free(z);   /* frees the cached forms (ASan checks) */
    free(d);
}
END_TEST

/* ---- receiving ---- */

/* Inflates msg[0..n) given in pieces cut at cuts[0..ncuts) (ascending);
 * returns the status and leaves the output in out. */
static enum pmdz_status inflate_pieces(struct pmdz *z, const uint8_t *msg, size_t n, const size_t *cuts,
                                       size_t ncuts, int text, uint64_t limit, struct buf *out)
{
    struct pmdz_msg *m = NULL;
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        uint8_t *piece = malloc(end - at + 1);   /* exact copies: ASan sees over-reads */
        if (end > at)
            memcpy(piece, msg + at, end - at);
        enum pmdz_status st = pmdz_inflate(z, &m, piece, end - at, i == ncuts, text, limit, out);
        free(piece);
        if (st != PMDZ_OK) {
            ck_assert_ptr_null(m);
            return st;
        }
        at = end;
    }
    ck_assert_ptr_null(m);
    return PMDZ_OK;
}

static void check_round_trip(struct pmdz *z, const uint8_t *d, size_t n, int text, int wbits, int level)
{
    size_t cn;
    uint8_t *c = client_deflate(d, n, wbits, level, &cn);
    struct buf out = {0};
    ck_assert_int_eq(inflate_pieces(z, c, cn, NULL, 0, text, 0, &out), PMDZ_OK);
    EXPECT(out.len == n && (n == 0 || memcmp(out.data, d, n) == 0), "whole: %u bytes of %zu", out.len, n);
    size_t step = cn > 3000 ? cn / 300 : 1;
    for (size_t k = 0; k <= cn; k += step) {
        out.len = 0;
        ck_assert_int_eq(inflate_pieces(z, c, cn, &k, 1, text, n, &out), PMDZ_OK);
        EXPECT(out.len == n && (n == 0 || memcmp(out.data, d, n) == 0), "split at %zu: %u bytes of %zu", k,
               out.len, n);
    }
    if (cn <= 3000) {
        size_t *cuts = malloc((cn + 1) * sizeof *cuts);
        for (size_t k = 0; k < cn; k++)
            cuts[k] = k;
        out.len = 0;
        ck_assert_int_eq(inflate_pieces(z, c, cn, cuts, cn, text, n, &out), PMDZ_OK);
        EXPECT(out.len == n && (n == 0 || memcmp(out.data, d, n) == 0), "byte at a time");
        free(cuts);
    }
    buf_free(&out);
    free(c);
}

START_TEST(test_inflate_round_trips)
{
    static const size_t sizes[] = {0, 1, 2, 127, 128, 1000, 65536, 300000};
    struct pmdz *z = pmdz_new(128);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *t = chat_text(sizes[i]), *b = pattern(sizes[i], 3);
        for (int wbits = 9; wbits <= 15; wbits += 3) {
            check_round_trip(z, t, sizes[i], 1, wbits, 6);
            check_round_trip(z, b, sizes[i], 0, wbits, 1);
        }
        check_round_trip(z, t, sizes[i], 1, 15, 0);   /* stored blocks */
        free(t);
        free(b);
    }
    ck_assert_uint_gt(counter(z, "messages_in_compressed"), 100);
    pmdz_free(z);
}
END_TEST

/* 10 MB of zeros compress to about 10 KB. With a 64 KiB limit the message is
 * refused having inflated 64 KiB + 1 bytes, whole or in pieces, and the
 * output buffer never grew past twice that. */
START_TEST(test_zip_bomb)
{
    size_t n = 10u << 20, cn;
    uint8_t *zeros = calloc(n, 1);
    uint8_t *bomb = client_deflate(zeros, n, 15, 9, &cn);
    free(zeros);
    ck_assert_uint_lt(cn, 12000);
    struct pmdz *z = pmdz_new(128);
    const uint64_t limit = 64 * 1024;
    struct buf out = {0};
    ck_assert_int_eq(inflate_pieces(z, bomb, cn, NULL, 0, 0, limit, &out), PMDZ_TOO_BIG);
    ck_assert_uint_eq(out.len, limit + 1);
    ck_assert_uint_le(out.cap, 2 * (limit + 1) + 256 * 1024);
    buf_free(&out);
    size_t cuts[] = {1, 100, 5000};
    ck_assert_int_eq(inflate_pieces(z, bomb, cn, cuts, 3, 1, limit, &out), PMDZ_TOO_BIG);
    ck_assert_uint_eq(out.len, limit + 1);
    buf_free(&out);
    /* and the shared inflater works afterwards */
    check_round_trip(z, (const uint8_t *)"after the bomb", 14, 1, 15, 6);
    pmdz_free(z);
    free(bomb);
}
END_TEST

/* A message exactly at the limit passes; one byte more does not. */
START_TEST(test_limit_exact)
{
    struct pmdz *z = pmdz_new(128);
    uint8_t *d = chat_text(5000);
    size_t cn;
    uint8_t *c = client_deflate(d, 5000, 15, 6, &cn);
    struct buf out = {0};
    ck_assert_int_eq(inflate_pieces(z, c, cn, NULL, 0, 1, 5000, &out), PMDZ_OK);
    ck_assert_uint_eq(out.len, 5000);
    out.len = 0;
    ck_assert_int_eq(inflate_pieces(z, c, cn, NULL, 0, 1, 4999, &out), PMDZ_TOO_BIG);
    ck_assert_uint_eq(out.len, 5000);
    for (size_t k = 0; k <= cn; k++) {
        out.len = 0;
        ck_assert_int_eq(inflate_pieces(z, c, cn, &k, 1, 1, 4999, &out), PMDZ_TOO_BIG);
    }
    buf_free(&out);
    free(c);
    free(d);
    pmdz_free(z);
}
END_TEST

/* Invalid deflate data: a reserved block type, a bad stored length, bad
 * Huffman codes, a distance too far back. */
START_TEST(test_corrupt)
{
    static const uint8_t reserved_type[] = {0x07, 0x00};
    static const uint8_t stored_bad_len[] = {0x00, 0x05, 0x00, 0x00, 0x00, 'a'};
    static const uint8_t far_back[] = {0x42, 0x62, 0x02, 0x00};   /* refers back into a dictionary */
    static const uint8_t *const bad[] = {reserved_type, stored_bad_len, far_back};
    static const size_t lens[] = {sizeof reserved_type, sizeof stored_bad_len, sizeof far_back};
    struct pmdz *z = pmdz_new(128);
    struct buf out = {0};
    for (size_t i = 0; i < 3; i++) {
        out.len = 0;
        EXPECT(inflate_pieces(z, bad[i], lens[i], NULL, 0, 0, 0, &out) == PMDZ_CORRUPT, "case %zu", i);
        for (size_t k = 0; k <= lens[i]; k++) {
            out.len = 0;
            EXPECT(inflate_pieces(z, bad[i], lens[i], &k, 1, 0, 0, &out) == PMDZ_CORRUPT, "case %zu split %zu", i,
                   k);
        }
    }
    /* random bytes are almost never valid deflate: whatever comes out, no crash */
    for (unsigned seed = 1; seed < 200; seed++) {
        uint8_t *r = pattern(64, seed);
        out.len = 0;
        enum pmdz_status st = inflate_pieces(z, r, 64, NULL, 0, 1, 1000, &out);
        EXPECT(st == PMDZ_OK || st == PMDZ_CORRUPT || st == PMDZ_BAD_UTF8 || st == PMDZ_TOO_BIG, "seed %u: %d",
               seed, st);
        free(r);
    }
    buf_free(&out);
    check_round_trip(z, (const uint8_t *)"fine again", 10, 1, 15, 6);
    pmdz_free(z);
}
END_TEST

/* Inflated text is UTF-8 checked: an invalid byte fails wherever it is,
 * a text that ends inside a code point fails at the end; binary is not checked. */
START_TEST(test_inflated_utf8)
{
    struct pmdz *z = pmdz_new(128);
    uint8_t *t = chat_text(3000);
    struct buf out = {0};
    size_t cn;
    t[2000] = 0xff;
    uint8_t *c = client_deflate(t, 3000, 15, 6, &cn);
    ck_assert_int_eq(inflate_pieces(z, c, cn, NULL, 0, 1, 0, &out), PMDZ_BAD_UTF8);
    out.len = 0;
    ck_assert_int_eq(inflate_pieces(z, c, cn, NULL, 0, 0, 0, &out), PMDZ_OK);
    free(c);
    t[2000] = 'x';
    t[2999] = 0xC3;   /* the start of a two-byte sequence, at the end */
    c = client_deflate(t, 3000, 15, 6, &cn);
    for (size_t k = 0; k <= cn; k += 7) {
        out.len = 0;
        ck_assert_int_eq(inflate_pieces(z, c, cn, &k, 1, 1, 0, &out), PMDZ_BAD_UTF8);
    }
    free(c);
    buf_free(&out);
    free(t);
    pmdz_free(z);
}
END_TEST

/* Edge forms a sender may use: an empty payload, the one byte of a
 * compressed empty message, a final block (BFINAL) with or without the tail,
 * and two messages' worth of blocks in one. */
START_TEST(test_edge_forms)
{
    struct pmdz *z = pmdz_new(128);
    struct buf out = {0};
    ck_assert_int_eq(inflate_pieces(z, NULL, 0, NULL, 0, 1, 0, &out), PMDZ_OK);
    ck_assert_uint_eq(out.len, 0);
    static const uint8_t empty[] = {0x00};
    ck_assert_int_eq(inflate_pieces(z, empty, 1, NULL, 0, 1, 0, &out), PMDZ_OK);
    ck_assert_uint_eq(out.len, 0);
    static const uint8_t final_hello[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};   /* BFINAL "Hello" */
    ck_assert_int_eq(inflate_pieces(z, final_hello, sizeof final_hello, NULL, 0, 1, 0, &out), PMDZ_OK);
    ck_assert_uint_eq(out.len, 5);
    ck_assert_mem_eq(out.data, "Hello", 5);
    out.len = 0;
    static const uint8_t final_stored[] = {0x01, 0x02, 0x00, 0xfd, 0xff, 'h', 'i'};
    ck_assert_int_eq(inflate_pieces(z, final_stored, sizeof final_stored, NULL, 0, 1, 0, &out), PMDZ_OK);
    ck_assert_uint_eq(out.len, 2);
    ck_assert_mem_eq(out.data, "hi", 2);
    out.len = 0;
    static const uint8_t final_padded[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};   /* RFC 7692 7.2.3.3 */
    ck_assert_int_eq(inflate_pieces(z, final_padded, sizeof final_padded, NULL, 0, 1, 0, &out), PMDZ_OK);
    ck_assert_uint_eq(out.len, 5);
    ck_assert_mem_eq(out.data, "Hello", 5);
    out.len = 0;
    static const uint8_t two[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x00, 0xff, 0xff,
                                  0xf2, 0x00, 0x11, 0x00, 0x00};   /* RFC 7692 7.2.3.2, as one message */
    ck_assert_int_eq(inflate_pieces(z, two, sizeof two, NULL, 0, 1, 0, &out), PMDZ_OK);
    ck_assert_uint_eq(out.len, 10);
    ck_assert_mem_eq(out.data, "HelloHello", 10);
    out.len = 0;
    static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};         /* "Hello", not final */
    ck_assert_int_eq(inflate_pieces(z, hello, sizeof hello, NULL, 0, 1, 0, &out), PMDZ_OK);
    ck_assert_uint_eq(out.len, 5);
    ck_assert_mem_eq(out.data, "Hello", 5);
    buf_free(&out);
    pmdz_free(z);
}
END_TEST

/* A message that never gets its last piece: its stream is freed with
 * pmdz_msg_free (ASan would report a leak). */
START_TEST(test_cut_short)
{
    struct pmdz *z = pmdz_new(128);
    uint8_t *t = chat_text(100000);
    size_t cn;
    uint8_t *c = client_deflate(t, 100000, 15, 6, &cn);
    struct pmdz_msg *m = NULL;
    struct buf out = {0};
    ck_assert_int_eq(pmdz_inflate(z, &m, c, cn / 2, 0, 1, 0, &out), PMDZ_OK);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_gt(out.len, 0);
    pmdz_msg_free(m);
    pmdz_msg_free(NULL);
    buf_free(&out);
    free(c);
    free(t);
    pmdz_free(z);
    pmdz_free(NULL);
}
END_TEST

START_TEST(test_close_codes)
{
    const char *reason = NULL;
    ck_assert_uint_eq(pmdz_close_code(PMDZ_TOO_BIG, &reason), 1009);
    ck_assert_ptr_nonnull(reason);
    ck_assert_uint_eq(pmdz_close_code(PMDZ_CORRUPT, &reason), 1007);
    ck_assert_uint_eq(pmdz_close_code(PMDZ_BAD_UTF8, &reason), 1007);
    ck_assert_uint_eq(pmdz_close_code(PMDZ_NO_MEMORY, &reason), 1011);
    ck_assert(utf8_is_valid((const uint8_t *)reason, strlen(reason)));
}
END_TEST

static Suite *pmdz_suite(void)
{
    Suite *s = suite_create("pmdz");
    TCase *send = tcase_create("sending");
    tcase_add_test(send, test_frame_compresses);
    tcase_add_test(send, test_window_8);
    tcase_add_test(send, test_frame_plain);
    tcase_add_test(send, test_shared_once);
    tcase_set_timeout(send, 120);
    suite_add_tcase(s, send);
    TCase *recv = tcase_create("receiving");
    tcase_add_test(recv, test_inflate_round_trips);
    tcase_add_test(recv, test_zip_bomb);
    tcase_add_test(recv, test_limit_exact);
    tcase_add_test(recv, test_corrupt);
    tcase_add_test(recv, test_inflated_utf8);
    tcase_add_test(recv, test_edge_forms);
    tcase_add_test(recv, test_cut_short);
    tcase_add_test(recv, test_close_codes);
    tcase_set_timeout(recv, 300);
    suite_add_tcase(s, recv);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pmdz_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
