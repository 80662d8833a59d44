/* test_ws: unit tests for src/ws.c, the RFC 6455 frame layer.
 * The parser is driven like a connection drives it: bytes arrive in pieces,
 * unconsumed bytes are kept and the next piece appended, ws_parse is called
 * until WS_EV_NEED_MORE. Every input is fed whole, in two parts at every split
 * point and one byte at a time, and the normalized event list (whole messages,
 * control frames, the error code) must be the same each time. Covers the RFC
 * 6455 section 5.7 examples, 7/16/64-bit lengths, fragmentation, every
 * protocol error and its close code (1002, 1007, 1009), fail-fast UTF-8,
 * close payloads, the encoder, ws_mask, and encode/mask/parse round trips;
 * and with permessage-deflate allowed, RSV1 (compressed messages, where it
 * may and may not be, the wire limit's slack, the compressed encoder). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "ws.h"

/* ck_assert records a checkpoint (a syscall) even when it passes: loops with
 * many checks use EXPECT, which only calls into Check on failure. */
#define EXPECT(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

/* ---- growable byte strings ---- */

struct bytes {
    uint8_t *p;
    size_t n, cap;
};

static void b_put(struct bytes *b, const void *d, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        ck_assert_ptr_nonnull(b->p);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void b_byte(struct bytes *b, uint8_t c)
{
    b_put(b, &c, 1);
}

static void b_free(struct bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d};   /* RFC 6455 section 5.7 */
static const uint8_t KEY2[4] = {0x9a, 0x01, 0xff, 0x5c};

/* Byte-by-byte reference masking, independent of ws_mask. */
static void ref_mask(uint8_t *d, size_t n, const uint8_t key[4], unsigned pos)
{
    for (size_t i = 0; i < n; i++)
        d[i] ^= key[(pos + i) & 3];
}

/* Appends a frame header: b0 is FIN|RSV|opcode, the length in its minimal
 * encoding, and the mask key when key is not NULL. */
static void put_header(struct bytes *b, uint8_t b0, uint64_t len, const uint8_t *key)
{
    uint8_t m = key ? 0x80 : 0x00;

    b_byte(b, b0);
    if (len < 126) {
        b_byte(b, (uint8_t)(m | len));
    } else if (len <= 0xFFFF) {
        b_byte(b, m | 126);
        b_byte(b, (uint8_t)(len >> 8));
        b_byte(b, (uint8_t)len);
    } else {
        b_byte(b, m | 127);
        for (int i = 7; i >= 0; i--)
            b_byte(b, (uint8_t)(len >> (8 * i)));
    }
    if (key)
        b_put(b, key, 4);
}

/* Appends n payload bytes, masked with key from key offset pos. */
static void put_payload(struct bytes *b, const void *d, size_t n, const uint8_t *key, unsigned pos)
{
    size_t at = b->n;

    b_put(b, d, n);
    if (key)
        ref_mask(b->p + at, n, key, pos);
}

/* Appends a whole client frame (masked with key, or unmasked when key is NULL). */
static void put_frame(struct bytes *b, uint8_t b0, const void *d, size_t n, const uint8_t *key)
{
    put_header(b, b0, n, key);
    put_payload(b, d, n, key, 0);
}

/* ---- the normalized event list ----
 * "M<op>:<len>:<bytes>;"  a whole data message
 * "Z<op>:<len>:<bytes>;"  a whole data message reported compressed
 * "C<op>:<len>:<bytes>;"  a control frame
 * "E<code>;"              an error (nothing is recorded after it)
 * "P<op>:<len>:<bytes>;"  an unfinished message's bytes at the end of input */

static void rec_data(struct bytes *o, char kind, unsigned op, const void *d, size_t n)
{
    char h[48];
    int hn = snprintf(h, sizeof h, "%c%u:%zu:", kind, op, n);

    b_put(o, h, (size_t)hn);
    b_put(o, d, n);
    b_put(o, ";", 1);
}

static void rec_err(struct bytes *o, unsigned code)
{
    char h[16];
    int hn = snprintf(h, sizeof h, "E%u;", code);

    b_put(o, h, (size_t)hn);
}

/* A printable, shortened form of an event list for failure messages. */
static const char *show(const struct bytes *o, char *out, size_t outsz)
{
    size_t j = 0;

    for (size_t i = 0; i < o->n && j + 5 < outsz; i++) {
        uint8_t c = o->p[i];
        if (c >= 0x20 && c < 0x7f) {
            out[j++] = (char)c;
        } else {
            snprintf(out + j, outsz - j, "\\x%02x", c);
            j += 4;
        }
        if (i > 160 && i + 40 < o->n) {   /* keep the head and the tail */
            size_t skip = o->n - 40;
            snprintf(out + j, outsz - j, "...");
            j += 3;
            i = skip - 1;
        }
    }
    out[j < outsz ? j : outsz - 1] = 0;
    return out;
}

/* ---- the driver: a connection's view of the parser ---- */

struct run {
    struct ws_parser p;
    uint8_t *pend;          /* bytes not consumed yet (a partial header or control frame) */
    size_t plen;
    struct bytes msg;       /* the message being reassembled */
    unsigned msg_op;
    int in_msg;
    int msg_compressed;
    struct bytes out;       /* the normalized event list */
    int dead;
    unsigned code;
};

/* Parsers made by run_init allow compressed messages while this is set. */
static int runs_allow_compressed;

static void run_init(struct run *r, uint64_t max_message)
{
    memset(r, 0, sizeof *r);
    ws_parser_init(&r->p, max_message);
    if (runs_allow_compressed)
        ws_parser_allow_compressed(&r->p);
}

static void run_free(struct run *r)
{
    free(r->pend);
    b_free(&r->msg);
    b_free(&r->out);
}

/* One piece of input arrives: append it to the leftover, then call ws_parse
 * until NEED_MORE (or ERROR), dropping consumed bytes as a connection does.
 * The buffer is allocated to the exact size so ASan sees any over-read. */
static void run_feed(struct run *r, const uint8_t *d, size_t n)
{
    size_t total, off = 0, guard = 0;
    uint8_t *buf;

    if (r->dead)
        return;
    total = r->plen + n;
    buf = malloc(total ? total : 1);
    ck_assert_ptr_nonnull(buf);
    if (r->plen)
        memcpy(buf, r->pend, r->plen);
    if (n)
        memcpy(buf + r->plen, d, n);
    free(r->pend);
    r->pend = NULL;
    r->plen = 0;

    for (;;) {
        struct ws_event ev;
        size_t c;

        memset(&ev, 0x5a, sizeof ev);
        c = ws_parse(&r->p, buf + off, total - off, &ev);
        EXPECT(c <= total - off, "ws_parse consumed %zu of %zu bytes", c, total - off);
        EXPECT(++guard < 4 * total + 64, "ws_parse makes no progress (event %d, consumed %zu)", (int)ev.type, c);
        if (ev.type == WS_EV_NEED_MORE) {
            off += c;
            break;
        }
        if (ev.type == WS_EV_ERROR) {
            struct ws_event ev2;
            uint8_t junk[8] = {0x81, 0x82, 1, 2, 3, 4, 5, 6};

            rec_err(&r->out, ev.close_code);
            EXPECT(ev.reason != NULL, "ERROR %u without a reason", ev.close_code);
            r->dead = 1;
            r->code = ev.close_code;
            /* the stream is dead: every later call returns the same error */
            ws_parse(&r->p, buf + off, total - off, &ev2);
            EXPECT(ev2.type == WS_EV_ERROR && ev2.close_code == ev.close_code,
                   "second call after ERROR %u gave event %d code %u", ev.close_code, (int)ev2.type,
                   ev2.close_code);
            ws_parse(&r->p, junk, sizeof junk, &ev2);
            EXPECT(ev2.type == WS_EV_ERROR && ev2.close_code == ev.close_code,
                   "call with new bytes after ERROR gave event %d", (int)ev2.type);
            free(buf);
            return;
        }
        if (ev.len)
            EXPECT(ev.data >= buf + off && ev.data + ev.len <= buf + off + c,
                   "event data outside the consumed bytes");
        if (ev.type == WS_EV_DATA) {
            EXPECT(ev.opcode == WS_OP_TEXT || ev.opcode == WS_OP_BINARY, "DATA with opcode %u", ev.opcode);
            if (ev.first) {
                EXPECT(!r->in_msg, "DATA first=1 while a message is unfinished");
                r->in_msg = 1;
                r->msg_op = ev.opcode;
                r->msg_compressed = ev.compressed;
                r->msg.n = 0;
            } else {
                EXPECT(r->in_msg, "DATA first=0 without a started message");
                EXPECT(ev.opcode == r->msg_op, "DATA opcode changed within a message: %u then %u",
                       r->msg_op, ev.opcode);
                EXPECT(ev.compressed == r->msg_compressed, "DATA compressed changed within a message");
            }
            EXPECT(ev.compressed <= 1 && (runs_allow_compressed || !ev.compressed), "DATA compressed=%u",
                   ev.compressed);
            b_put(&r->msg, ev.data, ev.len);
            if (ev.last) {
                rec_data(&r->out, r->msg_compressed ? 'Z' : 'M', r->msg_op, r->msg.p, r->msg.n);
                r->in_msg = 0;
            }
        } else if (ev.type == WS_EV_CONTROL) {
            EXPECT(ev.opcode == WS_OP_CLOSE || ev.opcode == WS_OP_PING || ev.opcode == WS_OP_PONG,
                   "CONTROL with opcode %u", ev.opcode);
            EXPECT(ev.len <= WS_MAX_CONTROL_PAYLOAD, "CONTROL payload of %zu bytes", ev.len);
            rec_data(&r->out, 'C', ev.opcode, ev.data, ev.len);
        } else {
            ck_abort_msg("ws_parse returned event type %d", (int)ev.type);
        }
        off += c;
    }
    EXPECT(total - off <= WS_MAX_HEADER + WS_MAX_CONTROL_PAYLOAD, "%zu bytes left over", total - off);
    r->plen = total - off;
    if (r->plen) {
        r->pend = malloc(r->plen);
        memcpy(r->pend, buf + off, r->plen);
    }
    free(buf);
}

/* End of input: an unfinished message is recorded with what arrived of it. */
static void run_end(struct run *r)
{
    if (!r->dead && r->in_msg)
        rec_data(&r->out, 'P', r->msg_op, r->msg.p, r->msg.n);
}

static void expect_same(const struct run *r, const struct bytes *exp, const char *how)
{
    char a[600], b[600];

    EXPECT(r->out.n == exp->n && memcmp(r->out.p, exp->p, exp->n) == 0, "%s: got [%s], expected [%s]", how,
           show(&r->out, a, sizeof a), show(exp, b, sizeof b));
}

/* Feeds in whole, at every 2-way split point (including empty pieces), one
 * byte at a time, and in pseudo-random pieces; each must give exp. For inputs
 * above split_limit bytes the 2-way splits are taken at every point of the
 * first and last 300 bytes and at a stride in between (each split copies the
 * whole input). */
static void check_all_splits_lim(const uint8_t *in, size_t n, uint64_t max_message, const struct bytes *exp,
                                 size_t split_limit)
{
    struct run r;
    char how[64];

    run_init(&r, max_message);
    run_feed(&r, in, n);
    run_end(&r);
    expect_same(&r, exp, "whole");
    run_free(&r);

    for (size_t k = 0; k <= n; k++) {
        if (n > split_limit && k > 300 && k + 300 < n && k % 97 != 0)
            continue;
        run_init(&r, max_message);
        run_feed(&r, in, k);
        run_feed(&r, in + k, n - k);
        run_end(&r);
        snprintf(how, sizeof how, "split at %zu of %zu", k, n);
        expect_same(&r, exp, how);
        run_free(&r);
    }

    run_init(&r, max_message);
    for (size_t k = 0; k < n; k++)
        run_feed(&r, in + k, 1);
    run_end(&r);
    expect_same(&r, exp, "byte at a time");
    run_free(&r);

    for (unsigned seed = 1; seed <= 8; seed++) {
        unsigned x = seed;
        run_init(&r, max_message);
        for (size_t k = 0; k < n;) {
            size_t m;
            x = x * 1103515245u + 12345u;
            m = (x >> 16) % 23;           /* pieces of 0..22 bytes */
            if (m > n - k)
                m = n - k;
            run_feed(&r, in + k, m);
            k += m;
        }
        run_end(&r);
        snprintf(how, sizeof how, "random pieces, seed %u", seed);
        expect_same(&r, exp, how);
        run_free(&r);
    }
}

/* The RFC's 64 KiB example is split at all 65547 points in a normal build
 * (seconds); under AddressSanitizer that takes minutes, so there the payload
 * splits are strided like the other large inputs. */
#if defined(__SANITIZE_ADDRESS__)
#define FULL_SPLIT_LIMIT 20000
#else
#define FULL_SPLIT_LIMIT SIZE_MAX
#endif

static void check_all_splits(const uint8_t *in, size_t n, uint64_t max_message, const struct bytes *exp)
{
    check_all_splits_lim(in, n, max_message, exp, 20000);
}

/* ---- RFC 6455 section 5.7 examples ---- */

START_TEST(test_rfc_masked_hello)
{
    static const uint8_t frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct bytes exp = {0}, built = {0};

    rec_data(&exp, 'M', WS_OP_TEXT, "Hello", 5);
    check_all_splits(frame, sizeof frame, 0, &exp);
    /* the frame builder used below produces exactly the RFC bytes */
    put_frame(&built, 0x81, "Hello", 5, KEY);
    ck_assert_uint_eq(built.n, sizeof frame);
    ck_assert_mem_eq(built.p, frame, sizeof frame);
    b_free(&exp);
    b_free(&built);
}
END_TEST

START_TEST(test_rfc_masked_hello_single_event)
{
    uint8_t frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct ws_parser p;
    struct ws_event ev;
    size_t c;

    ws_parser_init(&p, 0);
    c = ws_parse(&p, frame, sizeof frame, &ev);
    ck_assert_uint_eq(c, sizeof frame);
    ck_assert_int_eq(ev.type, WS_EV_DATA);
    ck_assert_uint_eq(ev.opcode, WS_OP_TEXT);
    ck_assert_uint_eq(ev.first, 1);
    ck_assert_uint_eq(ev.last, 1);
    ck_assert_uint_eq(ev.len, 5);
    ck_assert_ptr_eq(ev.data, frame + 6);   /* unmasked in place */
    ck_assert_mem_eq(ev.data, "Hello", 5);
    c = ws_parse(&p, frame + sizeof frame, 0, &ev);
    ck_assert_uint_eq(c, 0);
    ck_assert_int_eq(ev.type, WS_EV_NEED_MORE);
}
END_TEST

/* "Hel" + "lo" (RFC unmasked example, masked here because servers require it). */
START_TEST(test_rfc_fragmented_hello)
{
    struct bytes in = {0}, exp = {0};

    put_frame(&in, 0x01, "Hel", 3, KEY);
    put_frame(&in, 0x80, "lo", 2, KEY2);
    rec_data(&exp, 'M', WS_OP_TEXT, "Hello", 5);
    check_all_splits(in.p, in.n, 0, &exp);
    b_free(&in);
    b_free(&exp);
}
END_TEST

START_TEST(test_rfc_ping_pong_hello)
{
    /* masked pong "Hello" exactly as in the RFC, and a masked ping */
    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct bytes in = {0}, exp = {0};

    put_frame(&in, 0x89, "Hello", 5, KEY);
    b_put(&in, pong, sizeof pong);
    rec_data(&exp, 'C', WS_OP_PING, "Hello", 5);
    rec_data(&exp, 'C', WS_OP_PONG, "Hello", 5);
    check_all_splits(in.p, in.n, 0, &exp);
    b_free(&in);
    b_free(&exp);
}
END_TEST

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *d = calloc(n ? n : 1, 1);

    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        d[i] = (uint8_t)(seed >> 16);
    }
    return d;
}

/* RFC: 256 bytes binary in a single masked message (16-bit length). */
START_TEST(test_rfc_binary_256)
{
    uint8_t *d = pattern(256, 7);
    struct bytes in = {0}, exp = {0};

    put_frame(&in, 0x82, d, 256, KEY);
    ck_assert_uint_eq(in.p[1], 0x80 | 126);
    ck_assert_uint_eq(in.p[2], 0x01);
    ck_assert_uint_eq(in.p[3], 0x00);
    rec_data(&exp, 'M', WS_OP_BINARY, d, 256);
    check_all_splits(in.p, in.n, 0, &exp);
    free(d);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* RFC: 64 KiB binary in a single masked message (64-bit length). */
START_TEST(test_rfc_binary_65536)
{
    uint8_t *d = pattern(65536, 9);
    struct bytes in = {0}, exp = {0};
    static const uint8_t hdr[] = {0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0};

    put_frame(&in, 0x82, d, 65536, KEY);
    ck_assert_mem_eq(in.p, hdr, sizeof hdr);
    rec_data(&exp, 'M', WS_OP_BINARY, d, 65536);
    check_all_splits_lim(in.p, in.n, 0, &exp, FULL_SPLIT_LIMIT);
    free(d);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* ---- lengths ---- */

static const size_t lengths[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 124, 125, 126, 127, 128, 1000, 65535, 65536, 65537};
#define NLENGTHS (sizeof lengths / sizeof lengths[0])

/* Binary payloads of every interesting length (7/16/64-bit length fields). */
START_TEST(test_binary_lengths)
{
    size_t n = lengths[_i];
    uint8_t *d = pattern(n, (unsigned)n + 1);
    struct bytes in = {0}, exp = {0};

    put_frame(&in, 0x82, d, n, KEY2);
    ck_assert_uint_eq(in.n, n + 2 + 4 + (n < 126 ? 0 : n <= 0xFFFF ? 2 : 8));
    rec_data(&exp, 'M', WS_OP_BINARY, d, n);
    check_all_splits_lim(in.p, in.n, 0, &exp, 2000);
    free(d);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* Text payloads of every interesting length, made of 1-4 byte characters, so
 * pieces cut code points at every position. */
static uint8_t *utf8_text(size_t n)
{
    static const char *chars[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", " ", "\xef\xbf\xbf"};
    uint8_t *d = calloc(n ? n : 1, 1);
    size_t i = 0;
    unsigned x = (unsigned)n;

    while (i < n) {
        const char *c;
        size_t cl;
        x = x * 1103515245u + 12345u;
        c = chars[(x >> 16) % 6];
        cl = strlen(c);
        if (cl > n - i)
            c = "z", cl = 1;
        memcpy(d + i, c, cl);
        i += cl;
    }
    return d;
}

START_TEST(test_text_lengths)
{
    size_t n = lengths[_i];
    uint8_t *d = utf8_text(n);
    struct bytes in = {0}, exp = {0};

    ck_assert(utf8_is_valid(d, n));
    put_frame(&in, 0x81, d, n, KEY);
    rec_data(&exp, 'M', WS_OP_TEXT, d, n);
    check_all_splits_lim(in.p, in.n, 0, &exp, 2000);
    free(d);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* Control frames of 0, 1, 124 and 125 bytes. */
START_TEST(test_control_lengths)
{
    static const size_t cl[] = {0, 1, 124, 125};
    struct bytes in = {0}, exp = {0};

    for (size_t i = 0; i < 4; i++) {
        uint8_t *d = pattern(cl[i], 3);
        put_frame(&in, 0x89, d, cl[i], KEY);
        rec_data(&exp, 'C', WS_OP_PING, d, cl[i]);
        put_frame(&in, 0x8a, d, cl[i], KEY2);
        rec_data(&exp, 'C', WS_OP_PONG, d, cl[i]);
        free(d);
    }
    check_all_splits(in.p, in.n, 0, &exp);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* ---- several frames, fragmentation ---- */

START_TEST(test_many_frames_one_buffer)
{
    struct bytes in = {0}, exp = {0};
    uint8_t *big = pattern(300, 5);

    put_frame(&in, 0x81, "first", 5, KEY);
    rec_data(&exp, 'M', WS_OP_TEXT, "first", 5);
    put_frame(&in, 0x82, big, 300, KEY2);
    rec_data(&exp, 'M', WS_OP_BINARY, big, 300);
    put_frame(&in, 0x89, "ping!", 5, KEY);
    rec_data(&exp, 'C', WS_OP_PING, "ping!", 5);
    put_frame(&in, 0x81, "", 0, KEY);
    rec_data(&exp, 'M', WS_OP_TEXT, "", 0);
    put_frame(&in, 0x01, "\xce\xba\xe1", 3, KEY);           /* code point split across frames */
    put_frame(&in, 0x00, "\xbd\xb9\xcf", 3, KEY2);
    put_frame(&in, 0x80, "\x83\xce\xbc\xce\xb5", 5, KEY);
    rec_data(&exp, 'M', WS_OP_TEXT, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11);
    put_frame(&in, 0x8a, "", 0, KEY2);
    rec_data(&exp, 'C', WS_OP_PONG, "", 0);
    put_frame(&in, 0x82, "\xff\xfe", 2, KEY);
    rec_data(&exp, 'M', WS_OP_BINARY, "\xff\xfe", 2);
    put_frame(&in, 0x88, "\x03\xe8" "bye", 5, KEY);
    rec_data(&exp, 'C', WS_OP_CLOSE, "\x03\xe8" "bye", 5);
    check_all_splits(in.p, in.n, 0, &exp);
    free(big);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* Control frames may come between fragments (RFC 6455 section 5.4). */
START_TEST(test_fragmented_with_ping_in_middle)
{
    struct bytes in = {0}, exp = {0};

    put_frame(&in, 0x01, "Hel", 3, KEY);
    put_frame(&in, 0x89, "p", 1, KEY2);
    put_frame(&in, 0x00, "l", 1, KEY);
    put_frame(&in, 0x8a, "", 0, KEY);
    put_frame(&in, 0x89, "second", 6, KEY2);
    put_frame(&in, 0x80, "o", 1, KEY2);
    put_frame(&in, 0x82, "next", 4, KEY);
    rec_data(&exp, 'C', WS_OP_PING, "p", 1);
    rec_data(&exp, 'C', WS_OP_PONG, "", 0);
    rec_data(&exp, 'C', WS_OP_PING, "second", 6);
    rec_data(&exp, 'M', WS_OP_TEXT, "Hello", 5);
    rec_data(&exp, 'M', WS_OP_BINARY, "next", 4);
    check_all_splits(in.p, in.n, 0, &exp);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* Fragmented binary message with many fragments of different sizes. */
START_TEST(test_fragmented_binary_many)
{
    struct bytes in = {0}, exp = {0};
    uint8_t *d = pattern(1000, 11);
    size_t at = 0, sizes[] = {1, 2, 125, 126, 300, 0, 446};

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int final = i + 1 == sizeof sizes / sizeof sizes[0];
        uint8_t b0 = (uint8_t)((i == 0 ? WS_OP_BINARY : WS_OP_CONT) | (final ? 0x80 : 0));
        put_frame(&in, b0, d + at, sizes[i], i & 1 ? KEY : KEY2);
        at += sizes[i];
    }
    ck_assert_uint_eq(at, 1000);
    rec_data(&exp, 'M', WS_OP_BINARY, d, 1000);
    check_all_splits(in.p, in.n, 0, &exp);
    free(d);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* Empty fragments (Autobahn 6.1.2 and 6.1.3): 3 fragments of length 0, and
 * empty first and last fragments around a non-empty one. The whole input
 * arrives in one read; the message must be reported without more bytes. */
START_TEST(test_empty_fragments)
{
    struct bytes in = {0}, exp = {0};

    put_frame(&in, 0x01, "", 0, KEY);
    put_frame(&in, 0x00, "", 0, KEY2);
    put_frame(&in, 0x80, "", 0, KEY);
    rec_data(&exp, 'M', WS_OP_TEXT, "", 0);
    put_frame(&in, 0x01, "", 0, KEY);
    put_frame(&in, 0x00, "middle", 6, KEY2);
    put_frame(&in, 0x80, "", 0, KEY);
    rec_data(&exp, 'M', WS_OP_TEXT, "middle", 6);
    put_frame(&in, 0x02, "", 0, KEY);
    put_frame(&in, 0x89, "", 0, KEY);
    put_frame(&in, 0x80, "x", 1, KEY);
    rec_data(&exp, 'C', WS_OP_PING, "", 0);
    rec_data(&exp, 'M', WS_OP_BINARY, "x", 1);
    check_all_splits(in.p, in.n, 0, &exp);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* The simplest form of the above: one empty non-final fragment and a final one
 * in a single read. */
START_TEST(test_empty_first_fragment_one_read)
{
    struct bytes in = {0}, exp = {0};

    put_frame(&in, 0x01, "", 0, KEY);
    put_frame(&in, 0x80, "ab", 2, KEY2);
    rec_data(&exp, 'M', WS_OP_TEXT, "ab", 2);
    check_all_splits(in.p, in.n, 0, &exp);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* An unfinished message at the end of input: everything that arrived was
 * delivered (payload is consumed as it arrives). */
START_TEST(test_partial_message_delivered)
{
    struct bytes in = {0}, exp = {0};

    put_frame(&in, 0x01, "abc", 3, KEY);
    put_header(&in, 0x80, 10, KEY2);
    put_payload(&in, "defg", 4, KEY2, 0);
    rec_data(&exp, 'P', WS_OP_TEXT, "abcdefg", 7);
    check_all_splits(in.p, in.n, 0, &exp);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* ---- protocol errors: 1002 ---- */

/* Each bad frame is preceded by a good message, which must still be reported. */
static void check_error_after_good(const struct bytes *bad, uint64_t max_message, unsigned code)
{
    struct bytes in = {0}, exp = {0};

    put_frame(&in, 0x81, "ok", 2, KEY);
    rec_data(&exp, 'M', WS_OP_TEXT, "ok", 2);
    b_put(&in, bad->p, bad->n);
    rec_err(&exp, code);
    check_all_splits(in.p, in.n, max_message, &exp);
    /* and alone */
    exp.n = 0;
    rec_err(&exp, code);
    check_all_splits(bad->p, bad->n, max_message, &exp);
    b_free(&in);
    b_free(&exp);
}

START_TEST(test_unmasked_frame)
{
    static const uint8_t rfc_unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    struct bytes bad = {0};

    b_put(&bad, rfc_unmasked, sizeof rfc_unmasked);
    check_error_after_good(&bad, 0, 1002);
    bad.n = 0;
    put_frame(&bad, 0x89, "Hello", 5, NULL);   /* unmasked ping */
    check_error_after_good(&bad, 0, 1002);
    bad.n = 0;
    put_frame(&bad, 0x82, "", 0, NULL);        /* unmasked empty binary */
    check_error_after_good(&bad, 0, 1002);
    b_free(&bad);
}
END_TEST

START_TEST(test_rsv_bits)
{
    static const uint8_t rsv[] = {0x40, 0x20, 0x10, 0x70};
    struct bytes bad = {0};

    for (size_t i = 0; i < sizeof rsv; i++) {
        bad.n = 0;
        put_frame(&bad, (uint8_t)(0x81 | rsv[i]), "Hello", 5, KEY);
        check_error_after_good(&bad, 0, 1002);
        bad.n = 0;
        put_frame(&bad, (uint8_t)(0x89 | rsv[i]), "", 0, KEY);
        check_error_after_good(&bad, 0, 1002);
    }
    b_free(&bad);
}
END_TEST

START_TEST(test_reserved_opcodes)
{
    static const uint8_t ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
    struct bytes bad = {0};

    for (size_t i = 0; i < sizeof ops; i++) {
        bad.n = 0;
        put_frame(&bad, (uint8_t)(0x80 | ops[i]), "", 0, KEY);
        check_error_after_good(&bad, 0, 1002);
        bad.n = 0;
        put_frame(&bad, (uint8_t)(0x80 | ops[i]), "payload", 7, KEY2);
        check_error_after_good(&bad, 0, 1002);
    }
    b_free(&bad);
}
END_TEST

START_TEST(test_control_payload_126)
{
    uint8_t *d = pattern(126, 1);
    struct bytes bad = {0};

    put_frame(&bad, 0x89, d, 126, KEY);     /* 16-bit length 126 */
    check_error_after_good(&bad, 0, 1002);
    bad.n = 0;
    put_frame(&bad, 0x8a, d, 126, KEY);
    check_error_after_good(&bad, 0, 1002);
    bad.n = 0;
    put_frame(&bad, 0x88, d, 126, KEY);
    check_error_after_good(&bad, 0, 1002);
    free(d);
    b_free(&bad);
}
END_TEST

START_TEST(test_fragmented_control)
{
    struct bytes bad = {0};

    put_frame(&bad, 0x09, "Hello", 5, KEY);  /* FIN=0 ping */
    check_error_after_good(&bad, 0, 1002);
    bad.n = 0;
    put_frame(&bad, 0x0a, "", 0, KEY);       /* FIN=0 pong */
    check_error_after_good(&bad, 0, 1002);
    bad.n = 0;
    put_frame(&bad, 0x08, "\x03\xe8", 2, KEY);
    check_error_after_good(&bad, 0, 1002);
    b_free(&bad);
}
END_TEST

START_TEST(test_continuation_without_message)
{
    struct bytes bad = {0};

    put_frame(&bad, 0x80, "lo", 2, KEY);
    check_error_after_good(&bad, 0, 1002);
    bad.n = 0;
    put_frame(&bad, 0x00, "lo", 2, KEY);
    check_error_after_good(&bad, 0, 1002);
    bad.n = 0;
    put_frame(&bad, 0x80, "", 0, KEY);
    check_error_after_good(&bad, 0, 1002);
    b_free(&bad);
}
END_TEST

START_TEST(test_new_message_inside_fragmented)
{
    struct bytes in = {0}, exp = {0};
    static const uint8_t second[] = {0x81, 0x82, 0x01};   /* TEXT, BINARY, TEXT FIN=0 */

    for (size_t i = 0; i < 3; i++) {
        in.n = exp.n = 0;
        put_frame(&in, 0x01, "frag", 4, KEY);
        put_frame(&in, second[i], "x", 1, KEY2);
        rec_err(&exp, 1002);
        check_all_splits(in.p, in.n, 0, &exp);
    }
    /* also after a non-final continuation */
    in.n = exp.n = 0;
    put_frame(&in, 0x02, "frag", 4, KEY);
    put_frame(&in, 0x00, "more", 4, KEY);
    put_frame(&in, 0x82, "x", 1, KEY2);
    rec_err(&exp, 1002);
    check_all_splits(in.p, in.n, 0, &exp);
    b_free(&in);
    b_free(&exp);
}
END_TEST

START_TEST(test_length_top_bit)
{
    static const uint8_t bad1[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    static const uint8_t bad2[] = {0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4};
    struct bytes bad = {0};

    b_put(&bad, bad1, sizeof bad1);
    check_error_after_good(&bad, 0, 1002);
    bad.n = 0;
    b_put(&bad, bad2, sizeof bad2);
    check_error_after_good(&bad, 0, 1002);
    b_free(&bad);
}
END_TEST

/* ---- UTF-8 in text: 1007 ---- */

START_TEST(test_invalid_utf8_text)
{
    static const char *bad_texts[] = {"\xff", "Hello\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ab\x80",
                                      "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"};
    struct bytes bad = {0};

    for (size_t i = 0; i < sizeof bad_texts / sizeof bad_texts[0]; i++) {
        bad.n = 0;
        put_frame(&bad, 0x81, bad_texts[i], strlen(bad_texts[i]), KEY);
        check_error_after_good(&bad, 0, 1007);
    }
    b_free(&bad);
}
END_TEST

/* Fail fast: the header plus the first payload bytes, up to and including the
 * invalid one, give 1007 without the rest of the frame. */
START_TEST(test_invalid_utf8_fail_fast)
{
    static const struct { const char *s; size_t n; } prefixes[] = {
        {"\xff", 1}, {"\xce\xba\xff", 3}, {"abc\xc0", 4}, {"\xed\xa0", 2}, {"\xe2\x82" "A", 3},
    };
    struct bytes in = {0}, exp = {0};

    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        for (uint64_t declared = prefixes[i].n; declared < 70000; declared = declared * 7 + 100) {
            in.n = exp.n = 0;
            put_header(&in, 0x81, declared, KEY);
            put_payload(&in, prefixes[i].s, prefixes[i].n, KEY, 0);
            rec_err(&exp, 1007);
            check_all_splits(in.p, in.n, 0, &exp);
            /* also inside a continuation of a valid first fragment */
            in.n = exp.n = 0;
            put_frame(&in, 0x01, "ok ", 3, KEY2);
            put_header(&in, 0x00, declared, KEY);
            put_payload(&in, prefixes[i].s, prefixes[i].n, KEY, 0);
            rec_err(&exp, 1007);
            check_all_splits(in.p, in.n, 0, &exp);
        }
    }
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* A code point split across fragments: valid when completed, 1007 when the
 * next fragment does not complete it. */
START_TEST(test_utf8_across_fragments)
{
    struct bytes in = {0}, exp = {0};

    put_frame(&in, 0x01, "\xce", 1, KEY);
    put_frame(&in, 0x80, "\xba", 1, KEY2);
    rec_data(&exp, 'M', WS_OP_TEXT, "\xce\xba", 2);
    check_all_splits(in.p, in.n, 0, &exp);

    in.n = exp.n = 0;
    put_frame(&in, 0x01, "\xf0\x9f", 2, KEY);
    put_frame(&in, 0x89, "ping", 4, KEY);
    put_frame(&in, 0x00, "\x98", 1, KEY2);
    put_frame(&in, 0x80, "\x80!", 2, KEY);
    rec_data(&exp, 'C', WS_OP_PING, "ping", 4);
    rec_data(&exp, 'M', WS_OP_TEXT, "\xf0\x9f\x98\x80!", 5);
    check_all_splits(in.p, in.n, 0, &exp);

    in.n = exp.n = 0;
    put_frame(&in, 0x01, "\xce", 1, KEY);
    put_frame(&in, 0x80, "A", 1, KEY2);
    rec_err(&exp, 1007);
    check_all_splits(in.p, in.n, 0, &exp);

    in.n = exp.n = 0;
    put_frame(&in, 0x01, "ok\xed", 3, KEY);
    put_frame(&in, 0x00, "\xa0", 1, KEY2);
    put_frame(&in, 0x80, "\x80", 1, KEY);
    rec_err(&exp, 1007);
    check_all_splits(in.p, in.n, 0, &exp);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* A text message whose final frame ends inside a code point. */
START_TEST(test_text_ends_mid_code_point)
{
    struct bytes bad = {0};

    put_frame(&bad, 0x81, "\xce\xba\xe1", 3, KEY);
    check_error_after_good(&bad, 0, 1007);
    bad.n = 0;
    put_frame(&bad, 0x81, "\xf0\x9f\x98", 3, KEY);
    check_error_after_good(&bad, 0, 1007);
    bad.n = 0;
    put_frame(&bad, 0x01, "abc\xe2", 4, KEY);
    put_frame(&bad, 0x80, "", 0, KEY2);          /* empty final fragment ends it */
    check_error_after_good(&bad, 0, 1007);
    b_free(&bad);
}
END_TEST

/* Binary messages and ping payloads are not UTF-8 checked. */
START_TEST(test_binary_invalid_utf8_ok)
{
    struct bytes in = {0}, exp = {0};

    put_frame(&in, 0x82, "\xff\xfe\xc0\x80\xed\xa0\x80", 7, KEY);
    rec_data(&exp, 'M', WS_OP_BINARY, "\xff\xfe\xc0\x80\xed\xa0\x80", 7);
    put_frame(&in, 0x02, "\xce", 1, KEY);
    put_frame(&in, 0x80, "A", 1, KEY2);
    rec_data(&exp, 'M', WS_OP_BINARY, "\xce" "A", 2);
    put_frame(&in, 0x89, "\xff", 1, KEY);
    rec_data(&exp, 'C', WS_OP_PING, "\xff", 1);
    put_frame(&in, 0x82, "\xe2", 1, KEY2);       /* ends mid code point: fine for binary */
    rec_data(&exp, 'M', WS_OP_BINARY, "\xe2", 1);
    check_all_splits(in.p, in.n, 0, &exp);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* ---- max_message: 1009 ---- */

/* The header alone of a too-large frame fails: nothing of the payload is needed. */
START_TEST(test_max_message_header_only)
{
    static const uint64_t declared[] = {101, 126, 65535, 65536, 1ull << 40, (1ull << 63) - 1};
    struct bytes in = {0}, exp = {0};

    for (size_t i = 0; i < sizeof declared / sizeof declared[0]; i++) {
        in.n = exp.n = 0;
        put_header(&in, 0x82, declared[i], KEY);
        rec_err(&exp, 1009);
        check_all_splits(in.p, in.n, 100, &exp);
        in.n = exp.n = 0;
        put_header(&in, 0x81, declared[i], KEY);
        put_payload(&in, "abc", 3, KEY, 0);
        rec_err(&exp, 1009);
        check_all_splits(in.p, in.n, 100, &exp);
    }
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* The first data or error event in buf (whole), skipping header-only steps. */
static struct ws_event first_event(struct ws_parser *p, uint8_t *buf, size_t n)
{
    struct ws_event ev;
    size_t used = 0;
    do
        used += ws_parse(p, buf + used, n - used, &ev);
    while (ev.type == WS_EV_NEED_MORE && used < n);
    return ev;
}

/* Text and binary messages have limits of their own, each from the header on. */
START_TEST(test_separate_text_and_binary_limits)
{
    uint8_t *d = pattern(100, 3);
    struct bytes in = {0};
    struct ws_parser p;
    struct ws_event ev;

    ws_parser_init(&p, 0);
    ws_parser_set_limits(&p, 10, 100);
    put_frame(&in, 0x82, d, 50, KEY);                /* binary 50: within its 100 */
    ev = first_event(&p, in.p, in.n);
    ck_assert_int_eq(ev.type, WS_EV_DATA);
    ck_assert_uint_eq(ev.len, 50);

    in.n = 0;
    ws_parser_init(&p, 0);
    ws_parser_set_limits(&p, 10, 100);
    put_header(&in, 0x81, 50, KEY);                  /* text 50: over its 10, header alone */
    ev = first_event(&p, in.p, in.n);
    ck_assert_int_eq(ev.type, WS_EV_ERROR);
    ck_assert_uint_eq(ev.close_code, 1009);

    in.n = 0;
    ws_parser_init(&p, 0);
    ws_parser_set_limits(&p, 10, 100);
    put_frame(&in, 0x01, "abcdef", 6, KEY);          /* text fragments: 6, then 6 more */
    put_header(&in, 0x80, 6, KEY);
    ev = first_event(&p, in.p, in.n);
    ck_assert_int_eq(ev.type, WS_EV_DATA);
    size_t first = 2 + 4 + 6;
    ev = first_event(&p, in.p + first, in.n - first);
    ck_assert_int_eq(ev.type, WS_EV_ERROR);
    ck_assert_uint_eq(ev.close_code, 1009);

    in.n = 0;
    ws_parser_init(&p, 0);
    ws_parser_set_limits(&p, 10, 100);
    put_header(&in, 0x82, 101, KEY);                 /* binary 101: over its 100 */
    ev = first_event(&p, in.p, in.n);
    ck_assert_int_eq(ev.type, WS_EV_ERROR);
    ck_assert_uint_eq(ev.close_code, 1009);
    free(d);
    b_free(&in);
}
END_TEST

/* ws_frame_new: header and payload in one shared buffer, payload at ws_header_len. */
START_TEST(test_frame_new)
{
    static const size_t lens[] = {0, 1, 125, 126, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t *d = pattern(lens[i] ? lens[i] : 1, 5);
        struct sbuf *f = ws_frame_new(WS_OP_BINARY, d, lens[i]);
        ck_assert_ptr_nonnull(f);
        size_t h = ws_header_len(lens[i]);
        uint8_t hdr[WS_MAX_HEADER];
        ck_assert_uint_eq(ws_encode_header(hdr, WS_OP_BINARY, lens[i]), h);
        ck_assert_uint_eq(f->len, h + lens[i]);
        ck_assert_uint_eq(f->refs, 1);
        ck_assert_mem_eq(f->data, hdr, h);
        if (lens[i])
            ck_assert_mem_eq(f->data + h, d, lens[i]);
        sbuf_unref(f);
        free(d);
    }
}
END_TEST

START_TEST(test_max_message_exact_ok)
{
    uint8_t *d = pattern(125, 2);
    struct bytes in = {0}, exp = {0};

    put_frame(&in, 0x82, d, 100, KEY);
    rec_data(&exp, 'M', WS_OP_BINARY, d, 100);
    put_frame(&in, 0x02, d, 60, KEY);
    put_frame(&in, 0x89, d, 125, KEY2);          /* control frames do not count */
    put_frame(&in, 0x80, d + 60, 40, KEY);
    rec_data(&exp, 'C', WS_OP_PING, d, 125);
    rec_data(&exp, 'M', WS_OP_BINARY, d, 100);
    put_frame(&in, 0x82, d, 100, KEY2);          /* the count restarts per message */
    rec_data(&exp, 'M', WS_OP_BINARY, d, 100);
    check_all_splits(in.p, in.n, 100, &exp);
    free(d);
    b_free(&in);
    b_free(&exp);
}
END_TEST

START_TEST(test_max_message_fragments_sum)
{
    uint8_t *d = pattern(200, 4);
    struct bytes in = {0}, exp = {0};

    put_frame(&in, 0x81, "ok", 2, KEY);
    rec_data(&exp, 'M', WS_OP_TEXT, "ok", 2);
    put_frame(&in, 0x02, d, 60, KEY);
    put_frame(&in, 0x00, d, 40, KEY2);
    put_header(&in, 0x80, 1, KEY);               /* 101st byte: header alone suffices */
    rec_err(&exp, 1009);
    check_all_splits(in.p, in.n, 100, &exp);

    in.n = exp.n = 0;
    put_frame(&in, 0x01, "abc", 3, KEY);
    put_frame(&in, 0x80, d, 98, KEY2);           /* 3 + 98 = 101 */
    rec_err(&exp, 1009);
    check_all_splits(in.p, in.n, 100, &exp);
    free(d);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* Control frames are not messages: max_message does not bound them. */
START_TEST(test_max_message_ignores_control)
{
    uint8_t *d = pattern(125, 8);
    struct bytes in = {0}, exp = {0};

    put_frame(&in, 0x89, d, 125, KEY);
    rec_data(&exp, 'C', WS_OP_PING, d, 125);
    put_frame(&in, 0x88, "\x03\xe8" "a long enough reason", 22, KEY2);
    rec_data(&exp, 'C', WS_OP_CLOSE, "\x03\xe8" "a long enough reason", 22);
    check_all_splits(in.p, in.n, 10, &exp);
    free(d);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* max_message 0 means no bound: a huge declared length is no error, and what
 * arrives of its payload is delivered. */
START_TEST(test_unlimited_huge_length)
{
    struct bytes in = {0}, exp = {0};

    put_header(&in, 0x82, 1ull << 62, KEY);
    put_payload(&in, "\x00\x01\x02\x03\x04", 5, KEY, 0);
    rec_data(&exp, 'P', WS_OP_BINARY, "\x00\x01\x02\x03\x04", 5);
    check_all_splits(in.p, in.n, 0, &exp);
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* ---- close frames ---- */

START_TEST(test_close_frames_parsed)
{
    struct bytes in = {0}, exp = {0};

    put_frame(&in, 0x88, "", 0, KEY);
    rec_data(&exp, 'C', WS_OP_CLOSE, "", 0);
    check_all_splits(in.p, in.n, 0, &exp);

    in.n = exp.n = 0;
    put_frame(&in, 0x88, "\x03\xe8", 2, KEY);
    rec_data(&exp, 'C', WS_OP_CLOSE, "\x03\xe8", 2);
    check_all_splits(in.p, in.n, 0, &exp);

    in.n = exp.n = 0;
    put_frame(&in, 0x88, "\x0f\xa0\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 13, KEY2);   /* 4000 + kosme */
    rec_data(&exp, 'C', WS_OP_CLOSE, "\x0f\xa0\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 13);
    check_all_splits(in.p, in.n, 0, &exp);
    b_free(&in);
    b_free(&exp);
}
END_TEST

START_TEST(test_close_frames_bad)
{
    struct bytes bad = {0};

    put_frame(&bad, 0x88, "\x03", 1, KEY);                 /* 1-byte payload */
    check_error_after_good(&bad, 0, 1002);
    bad.n = 0;
    put_frame(&bad, 0x88, "\x03\xed", 2, KEY);             /* 1005 */
    check_error_after_good(&bad, 0, 1002);
    bad.n = 0;
    put_frame(&bad, 0x88, "\x03\xe7", 2, KEY);             /* 999 */
    check_error_after_good(&bad, 0, 1002);
    bad.n = 0;
    put_frame(&bad, 0x88, "\x00\x00", 2, KEY);             /* 0 */
    check_error_after_good(&bad, 0, 1002);
    bad.n = 0;
    put_frame(&bad, 0x88, "\x03\xe8\xff", 3, KEY);         /* 1000, bad UTF-8 reason */
    check_error_after_good(&bad, 0, 1007);
    bad.n = 0;
    put_frame(&bad, 0x88, "\x03\xe8" "ab\xce", 5, KEY);    /* reason ends mid code point */
    check_error_after_good(&bad, 0, 1007);
    b_free(&bad);
}
END_TEST

/* After an ERROR, every later call returns ERROR with the same code. */
START_TEST(test_error_is_sticky)
{
    uint8_t bad[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};   /* unmasked */
    uint8_t good[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct ws_parser p;
    struct ws_event ev;

    ws_parser_init(&p, 0);
    ws_parse(&p, bad, sizeof bad, &ev);
    ck_assert_int_eq(ev.type, WS_EV_ERROR);
    ck_assert_uint_eq(ev.close_code, 1002);
    for (int i = 0; i < 3; i++) {
        ws_parse(&p, good, sizeof good, &ev);
        ck_assert_int_eq(ev.type, WS_EV_ERROR);
        ck_assert_uint_eq(ev.close_code, 1002);
        ck_assert_ptr_nonnull(ev.reason);
        ws_parse(&p, good, 0, &ev);
        ck_assert_int_eq(ev.type, WS_EV_ERROR);
        ck_assert_uint_eq(ev.close_code, 1002);
    }
    /* a fresh parser is not affected */
    ws_parser_init(&p, 0);
    ws_parse(&p, good, sizeof good, &ev);
    ck_assert_int_eq(ev.type, WS_EV_DATA);
}
END_TEST

/* ---- ws_close_payload_check / ws_close_code_valid ---- */

START_TEST(test_close_payload_check)
{
    static const unsigned valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                     1012, 1013, 1014, 3000, 3001, 3999, 4000, 4500, 4999};
    static const unsigned invalid[] = {0,    1,    999,  1004, 1005, 1006, 1015, 1016, 1100, 1999,
                                       2000, 2500, 2999, 5000, 5001, 32768, 65535};
    uint8_t p[16] = {0};

    ck_assert_uint_eq(ws_close_payload_check(p, 0), 0);
    p[0] = 0x03;
    ck_assert_uint_eq(ws_close_payload_check(p, 1), 1002);
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        p[0] = (uint8_t)(valid[i] >> 8);
        p[1] = (uint8_t)valid[i];
        EXPECT(ws_close_payload_check(p, 2) == 0, "code %u refused", valid[i]);
        EXPECT(ws_close_code_valid(valid[i]), "ws_close_code_valid(%u) false", valid[i]);
        memcpy(p + 2, "reason", 6);
        EXPECT(ws_close_payload_check(p, 8) == 0, "code %u with reason refused", valid[i]);
        memcpy(p + 2, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11);
        EXPECT(ws_close_payload_check(p, 13) == 0, "code %u with UTF-8 reason refused", valid[i]);
        p[2] = 0xff;
        EXPECT(ws_close_payload_check(p, 3) == 1007, "code %u with reason FF: got %u", valid[i],
               ws_close_payload_check(p, 3));
        memcpy(p + 2, "ab\xed\xa0\x80", 5);
        EXPECT(ws_close_payload_check(p, 7) == 1007, "code %u with surrogate reason accepted", valid[i]);
        memcpy(p + 2, "ab\xce", 3);
        EXPECT(ws_close_payload_check(p, 5) == 1007, "code %u with truncated reason accepted", valid[i]);
    }
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        p[0] = (uint8_t)(invalid[i] >> 8);
        p[1] = (uint8_t)invalid[i];
        EXPECT(ws_close_payload_check(p, 2) == 1002, "code %u: got %u, expected 1002", invalid[i],
               ws_close_payload_check(p, 2));
        EXPECT(!ws_close_code_valid(invalid[i]), "ws_close_code_valid(%u) true", invalid[i]);
        memcpy(p + 2, "ok", 2);
        EXPECT(ws_close_payload_check(p, 4) == 1002, "code %u with reason accepted", invalid[i]);
    }
}
END_TEST

/* ---- encoder ---- */

START_TEST(test_encode_header)
{
    static const struct {
        enum ws_opcode op;
        uint64_t len;
        size_t hlen;
        uint8_t bytes[10];
    } cases[] = {
        {WS_OP_TEXT, 0, 2, {0x81, 0x00}},
        {WS_OP_TEXT, 5, 2, {0x81, 0x05}},
        {WS_OP_TEXT, 125, 2, {0x81, 0x7d}},
        {WS_OP_TEXT, 126, 4, {0x81, 0x7e, 0x00, 0x7e}},
        {WS_OP_BINARY, 256, 4, {0x82, 0x7e, 0x01, 0x00}},
        {WS_OP_BINARY, 65535, 4, {0x82, 0x7e, 0xff, 0xff}},
        {WS_OP_BINARY, 65536, 10, {0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
        {WS_OP_BINARY, 0x0102030405ull, 10, {0x82, 0x7f, 0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x05}},
        {WS_OP_TEXT, 0x7fffffffffffffffull, 10, {0x81, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
        {WS_OP_CLOSE, 2, 2, {0x88, 0x02}},
        {WS_OP_PING, 0, 2, {0x89, 0x00}},
        {WS_OP_PONG, 125, 2, {0x8a, 0x7d}},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t out[WS_MAX_HEADER + 2];
        size_t h;

        memset(out, 0xee, sizeof out);
        h = ws_encode_header(out, cases[i].op, cases[i].len);
        EXPECT(h == cases[i].hlen, "len %llu: header of %zu bytes, expected %zu",
               (unsigned long long)cases[i].len, h, cases[i].hlen);
        EXPECT(memcmp(out, cases[i].bytes, cases[i].hlen) == 0, "len %llu: wrong header bytes",
               (unsigned long long)cases[i].len);
        EXPECT(out[h] == 0xee, "len %llu: wrote past the header", (unsigned long long)cases[i].len);
        EXPECT(ws_header_len(cases[i].len) == h, "ws_header_len(%llu) = %zu, encoder wrote %zu",
               (unsigned long long)cases[i].len, ws_header_len(cases[i].len), h);
        EXPECT(!(out[1] & 0x80), "server frame has the mask bit");
        EXPECT((out[0] & 0xf0) == 0x80, "FIN not set or RSV set");
    }
    for (uint64_t len = 0; len < 70000; len++) {
        uint8_t out[WS_MAX_HEADER];
        size_t h = ws_encode_header(out, WS_OP_BINARY, len);
        EXPECT(h == ws_header_len(len) && h == (len < 126 ? 2u : len < 65536 ? 4u : 10u),
               "len %llu: header length %zu", (unsigned long long)len, h);
    }
}
END_TEST

START_TEST(test_encode_close_payload)
{
    uint8_t out[WS_MAX_CONTROL_PAYLOAD + 16];
    char reason[400];
    size_t n;

    memset(out, 0xee, sizeof out);
    n = ws_encode_close_payload(out, 1000, "bye");
    ck_assert_uint_eq(n, 5);
    ck_assert_mem_eq(out, "\x03\xe8" "bye", 5);
    ck_assert_uint_eq(ws_close_payload_check(out, n), 0);

    n = ws_encode_close_payload(out, 1001, "");
    ck_assert_uint_eq(n, 2);
    ck_assert_mem_eq(out, "\x03\xe9", 2);

    n = ws_encode_close_payload(out, 4999, "x");
    ck_assert_uint_eq(n, 3);
    ck_assert_mem_eq(out, "\x13\x87" "x", 3);

    ck_assert_uint_eq(ws_encode_close_payload(out, 0, ""), 0);
    ck_assert_uint_eq(ws_encode_close_payload(out, 0, "ignored reason"), 0);

    /* ASCII reasons of every length around the limit: truncated to 123 bytes */
    for (size_t rl = 0; rl < 300; rl++) {
        memset(reason, 'a' + (int)(rl % 26), rl);
        reason[rl] = 0;
        memset(out, 0xee, sizeof out);
        n = ws_encode_close_payload(out, 1011, reason);
        EXPECT(n == 2 + (rl < 123 ? rl : 123), "reason of %zu bytes: payload %zu", rl, n);
        EXPECT(out[0] == 0x03 && out[1] == 0xf3, "reason of %zu bytes: wrong code bytes", rl);
        EXPECT(memcmp(out + 2, reason, n - 2) == 0, "reason of %zu bytes: wrong reason bytes", rl);
        EXPECT(out[WS_MAX_CONTROL_PAYLOAD] == 0xee, "wrote past 125 bytes");
    }

    /* multi-byte reasons, shifted by 0..3 ASCII bytes so that the cut falls at
     * every position inside a 2, 3 or 4-byte character: the payload must stay
     * valid, and be the longest valid prefix that fits */
    static const char *chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t c = 0; c < 3; c++) {
        for (size_t shift = 0; shift < 4; shift++) {
            size_t rl = 0, cl = strlen(chars[c]), best = 0;
            memset(reason, 'x', shift);
            rl = shift;
            while (rl + cl < 300) {
                memcpy(reason + rl, chars[c], cl);
                rl += cl;
            }
            reason[rl] = 0;
            /* the longest prefix of at most 123 bytes that ends at a character boundary */
            for (size_t k = 0; k <= 123; k++)
                if (utf8_is_valid((const uint8_t *)reason, k))
                    best = k;
            memset(out, 0xee, sizeof out);
            n = ws_encode_close_payload(out, 1000, reason);
            EXPECT(n <= WS_MAX_CONTROL_PAYLOAD, "char %zu shift %zu: %zu bytes", c, shift, n);
            EXPECT(ws_close_payload_check(out, n) == 0, "char %zu shift %zu: payload of %zu bytes fails check (%u)",
                   c, shift, n, ws_close_payload_check(out, n));
            EXPECT(n == 2 + best, "char %zu shift %zu: payload %zu bytes, expected %zu", c, shift, n, 2 + best);
            EXPECT(memcmp(out + 2, reason, n - 2) == 0, "char %zu shift %zu: reason bytes differ", c, shift);
            EXPECT(out[WS_MAX_CONTROL_PAYLOAD] == 0xee, "wrote past 125 bytes");
        }
    }
}
END_TEST

/* ---- ws_mask ---- */

/* Every length 0..300 (the 32- and 8-byte steps and every tail), then longer
 * ones, at every key offset and 8 start alignments, against a byte loop. */
START_TEST(test_mask_against_reference)
{
    static const uint8_t keys[3][4] = {{0x37, 0xfa, 0x21, 0x3d}, {0xff, 0x00, 0x80, 0x01}, {1, 2, 3, 4}};
    uint8_t *mem = malloc(1200 + 16), *ref = malloc(1200 + 16);
    uint8_t *src = pattern(1200 + 16, 99);

    for (size_t k = 0; k < 3; k++) {
        for (unsigned pos = 0; pos < 4; pos++) {
            for (size_t start = 0; start < 8; start++) {
                for (size_t n = 0; n <= 1100; n = n < 300 ? n + 1 : n * 2 + 3) {
                    unsigned next;
                    memcpy(mem, src, n + 16);
                    memcpy(ref, src, n + 16);
                    ref_mask(ref + start, n, keys[k], pos);
                    next = ws_mask(mem + start, n, keys[k], pos);
                    EXPECT(memcmp(mem, ref, n + 16) == 0, "key %zu pos %u start %zu n %zu: bytes differ", k, pos,
                           start, n);
                    EXPECT(next == (pos + n) % 4, "key %zu pos %u n %zu: returned %u", k, pos, n, next);
                    /* masking twice restores the data */
                    ws_mask(mem + start, n, keys[k], pos);
                    EXPECT(memcmp(mem, src, n + 16) == 0, "key %zu pos %u start %zu n %zu: not an involution", k,
                           pos, start, n);
                }
            }
        }
    }
    free(mem);
    free(ref);
    free(src);
}
END_TEST

/* Masking in pieces, carrying the returned offset, equals masking at once. */
START_TEST(test_mask_in_pieces)
{
    uint8_t *a = pattern(500, 5), *b = pattern(500, 5);

    ref_mask(a, 500, KEY, 0);
    for (size_t piece = 1; piece <= 13; piece++) {
        unsigned pos = 0;
        memcpy(b, a, 500);
        ref_mask(b, 500, KEY, 0);       /* back to the original */
        ref_mask(b, 500, KEY, 0);       /* and masked again: b == a */
        ck_assert_mem_eq(a, b, 500);
        ref_mask(b, 500, KEY, 0);       /* original */
        for (size_t i = 0; i < 500; i += piece)
            pos = ws_mask(b + i, 500 - i < piece ? 500 - i : piece, KEY, pos);
        EXPECT(memcmp(a, b, 500) == 0, "pieces of %zu differ", piece);
    }
    free(a);
    free(b);
}
END_TEST

/* ---- round trips: server encoder -> client masking -> parser ---- */

/* Turns a server frame into a client frame: sets the mask bit, inserts the key
 * after the header and masks the payload with ws_mask. */
static void client_frame(struct bytes *out, enum ws_opcode op, const uint8_t *d, size_t n, const uint8_t key[4])
{
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_encode_header(h, op, n), at;

    h[1] |= 0x80;
    b_put(out, h, hl);
    b_put(out, key, 4);
    at = out->n;
    b_put(out, d, n);
    ck_assert_uint_eq(ws_mask(out->p + at, n, key, 0), n % 4);
}

START_TEST(test_round_trip)
{
    static const size_t rl[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 125, 126, 127, 1000, 65535, 65536, 70001};

    for (size_t i = 0; i < sizeof rl / sizeof rl[0]; i++) {
        uint8_t *d = pattern(rl[i], (unsigned)i), *t = utf8_text(rl[i]);
        struct bytes in = {0}, exp = {0};
        struct run r;

        client_frame(&in, WS_OP_BINARY, d, rl[i], KEY);
        rec_data(&exp, 'M', WS_OP_BINARY, d, rl[i]);
        client_frame(&in, WS_OP_TEXT, t, rl[i], KEY2);
        rec_data(&exp, 'M', WS_OP_TEXT, t, rl[i]);
        if (rl[i] <= 125) {
            client_frame(&in, WS_OP_PING, d, rl[i], KEY);
            rec_data(&exp, 'C', WS_OP_PING, d, rl[i]);
            client_frame(&in, WS_OP_PONG, d, rl[i], KEY2);
            rec_data(&exp, 'C', WS_OP_PONG, d, rl[i]);
        }
        run_init(&r, 0);
        run_feed(&r, in.p, in.n);
        run_end(&r);
        expect_same(&r, &exp, "round trip");
        run_free(&r);
        free(d);
        free(t);
        b_free(&in);
        b_free(&exp);
    }
}
END_TEST

/* A close payload made by the encoder parses back to the same payload. */
START_TEST(test_round_trip_close)
{
    static const struct { uint16_t code; const char *reason; } cases[] = {
        {1000, ""}, {1001, "going away"}, {1011, "internal \xe2\x82\xac error"}, {4000, "\xf0\x9f\x98\x80"},
    };
    char longr[300];

    memset(longr, 'r', sizeof longr - 1);
    longr[sizeof longr - 1] = 0;
    for (size_t i = 0; i <= sizeof cases / sizeof cases[0]; i++) {
        uint8_t pl[WS_MAX_CONTROL_PAYLOAD];
        size_t n = i < 4 ? ws_encode_close_payload(pl, cases[i].code, cases[i].reason)
                         : ws_encode_close_payload(pl, 1009, longr);
        struct bytes in = {0}, exp = {0};

        ck_assert_uint_le(n, WS_MAX_CONTROL_PAYLOAD);
        client_frame(&in, WS_OP_CLOSE, pl, n, KEY);
        rec_data(&exp, 'C', WS_OP_CLOSE, pl, n);
        check_all_splits(in.p, in.n, 0, &exp);
        b_free(&in);
        b_free(&exp);
    }
}
END_TEST

/* ---- permessage-deflate: RSV1 ---- */

/* With deflate allowed, RSV1 on a message's first frame marks every chunk of
 * it compressed, and its bytes are not checked as UTF-8 (they are deflate
 * data); messages without RSV1 are checked as before. */
START_TEST(test_rsv1_compressed_messages)
{
    struct bytes in = {0}, exp = {0};
    static const uint8_t deflated[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};   /* "Hello" */

    runs_allow_compressed = 1;
    put_frame(&in, 0xC1, deflated, sizeof deflated, KEY);     /* FIN RSV1 text */
    rec_data(&exp, 'Z', WS_OP_TEXT, deflated, sizeof deflated);
    put_frame(&in, 0x42, deflated, 3, KEY2);                  /* RSV1 binary, fragmented */
    put_frame(&in, 0x89, "mid", 3, KEY);                      /* a ping between the fragments */
    rec_data(&exp, 'C', WS_OP_PING, "mid", 3);
    put_frame(&in, 0x00, deflated + 3, 2, KEY);
    put_frame(&in, 0x80, deflated + 5, 2, KEY2);
    rec_data(&exp, 'Z', WS_OP_BINARY, deflated, sizeof deflated);
    put_frame(&in, 0x81, "plain", 5, KEY);                    /* no RSV1: a plain message */
    rec_data(&exp, 'M', WS_OP_TEXT, "plain", 5);
    put_frame(&in, 0xC1, "", 0, KEY);                         /* empty compressed */
    rec_data(&exp, 'Z', WS_OP_TEXT, "", 0);
    put_frame(&in, 0x41, "\xff", 1, KEY);                     /* compressed text: bytes not UTF-8 checked */
    put_frame(&in, 0x80, "\xfe\xc0", 2, KEY2);
    rec_data(&exp, 'Z', WS_OP_TEXT, "\xff\xfe\xc0", 3);
    put_frame(&in, 0x81, "\xff", 1, KEY);                     /* plain text still is */
    rec_err(&exp, 1007);
    check_all_splits(in.p, in.n, 0, &exp);
    runs_allow_compressed = 0;
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* RSV1 on a continuation or control frame, and RSV2 or RSV3 on any frame,
 * stay protocol errors with deflate allowed. */
START_TEST(test_rsv1_where_not_allowed)
{
    static const uint8_t control[] = {0xC8, 0xC9, 0xCA};
    static const uint8_t other_rsv[] = {0xA1, 0x91, 0xE1, 0xD1, 0xF1, 0xA2, 0xE9};
    struct bytes bad = {0};

    runs_allow_compressed = 1;
    for (size_t i = 0; i < sizeof control; i++) {
        bad.n = 0;
        put_frame(&bad, control[i], "", 0, KEY);
        check_error_after_good(&bad, 0, 1002);
    }
    for (size_t i = 0; i < sizeof other_rsv; i++) {
        bad.n = 0;
        put_frame(&bad, other_rsv[i], "x", 1, KEY);
        check_error_after_good(&bad, 0, 1002);
    }
    static const uint8_t starts[] = {0x01, 0x41, 0x02, 0x42};   /* plain or compressed first frames */
    for (size_t i = 0; i < sizeof starts; i++) {
        bad.n = 0;
        put_frame(&bad, starts[i], "ab", 2, KEY);
        put_frame(&bad, 0xC0, "cd", 2, KEY2);                   /* continuation with RSV1 */
        check_error_after_good(&bad, 0, 1002);
        bad.n = 0;
        put_frame(&bad, starts[i], "ab", 2, KEY);
        put_frame(&bad, 0x40, "cd", 2, KEY2);                   /* non-final continuation with RSV1 */
        check_error_after_good(&bad, 0, 1002);
    }
    runs_allow_compressed = 0;
    b_free(&bad);
}
END_TEST

/* A compressed message may pass the limit on the wire by deflate's
 * worst-case overhead (limit/1024 + 64), checked from each header on like
 * the limit itself; an uncompressed one may not. */
START_TEST(test_rsv1_wire_limit)
{
    static const uint64_t limits[] = {1, 100, 1024, 5000};
    struct bytes in = {0}, exp = {0};

    runs_allow_compressed = 1;
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        uint64_t lim = limits[i], wire = lim + (lim >> 10) + 64;
        uint8_t *d = pattern((size_t)wire + 1, 9);

        in.n = exp.n = 0;
        put_frame(&in, 0xC2, d, (size_t)wire, KEY);
        rec_data(&exp, 'Z', WS_OP_BINARY, d, (size_t)wire);
        check_all_splits_lim(in.p, in.n, lim, &exp, 2000);

        in.n = exp.n = 0;
        put_header(&in, 0xC2, wire + 1, KEY);
        rec_err(&exp, 1009);
        check_all_splits(in.p, in.n, lim, &exp);

        in.n = exp.n = 0;                             /* fragments add up */
        put_frame(&in, 0x42, d, (size_t)wire - 1, KEY);
        put_header(&in, 0x80, 2, KEY2);
        rec_err(&exp, 1009);
        check_all_splits_lim(in.p, in.n, lim, &exp, 2000);

        in.n = exp.n = 0;                             /* uncompressed: the limit itself */
        put_header(&in, 0x82, lim + 1, KEY);
        rec_err(&exp, 1009);
        check_all_splits(in.p, in.n, lim, &exp);
        free(d);
    }
    runs_allow_compressed = 0;
    b_free(&in);
    b_free(&exp);
}
END_TEST

/* ws_frame_new_compressed: the same frame as ws_frame_new with RSV1 set;
 * ws_frame_header_len finds the payload of either. */
START_TEST(test_frame_new_compressed)
{
    static const size_t lens[] = {0, 1, 125, 126, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t *d = pattern(lens[i] ? lens[i] : 1, 6);
        struct sbuf *f = ws_frame_new_compressed(WS_OP_TEXT, d, lens[i]);
        struct sbuf *g = ws_frame_new(WS_OP_TEXT, d, lens[i]);
        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(g);
        ck_assert_uint_eq(f->len, g->len);
        ck_assert_uint_eq(f->data[0], 0xC1);
        ck_assert_uint_eq(g->data[0], 0x81);
        ck_assert_mem_eq(f->data + 1, g->data + 1, f->len - 1);
        ck_assert_uint_eq(ws_frame_header_len(f->data), ws_header_len(lens[i]));
        ck_assert_uint_eq(ws_frame_header_len(g->data), ws_header_len(lens[i]));
        sbuf_unref(f);
        sbuf_unref(g);
        free(d);
    }
}
END_TEST

static Suite *ws_suite(void)
{
    Suite *s = suite_create("ws");
    TCase *rfc = tcase_create("rfc examples");
    TCase *len = tcase_create("lengths and fragments");
    TCase *err = tcase_create("errors");
    TCase *enc = tcase_create("encoder and mask");

    tcase_add_test(rfc, test_rfc_masked_hello);
    tcase_add_test(rfc, test_rfc_masked_hello_single_event);
    tcase_add_test(rfc, test_rfc_fragmented_hello);
    tcase_add_test(rfc, test_rfc_ping_pong_hello);
    tcase_add_test(rfc, test_rfc_binary_256);
    tcase_add_test(rfc, test_rfc_binary_65536);
    tcase_set_timeout(rfc, 120);
    suite_add_tcase(s, rfc);

    tcase_add_loop_test(len, test_binary_lengths, 0, (int)NLENGTHS);
    tcase_add_loop_test(len, test_text_lengths, 0, (int)NLENGTHS);
    tcase_add_test(len, test_control_lengths);
    tcase_add_test(len, test_many_frames_one_buffer);
    tcase_add_test(len, test_fragmented_with_ping_in_middle);
    tcase_add_test(len, test_fragmented_binary_many);
    tcase_add_test(len, test_empty_fragments);
    tcase_add_test(len, test_empty_first_fragment_one_read);
    tcase_add_test(len, test_partial_message_delivered);
    tcase_set_timeout(len, 120);
    suite_add_tcase(s, len);

    tcase_add_test(err, test_unmasked_frame);
    tcase_add_test(err, test_rsv_bits);
    tcase_add_test(err, test_reserved_opcodes);
    tcase_add_test(err, test_control_payload_126);
    tcase_add_test(err, test_fragmented_control);
    tcase_add_test(err, test_continuation_without_message);
    tcase_add_test(err, test_new_message_inside_fragmented);
    tcase_add_test(err, test_length_top_bit);
    tcase_add_test(err, test_invalid_utf8_text);
    tcase_add_test(err, test_invalid_utf8_fail_fast);
    tcase_add_test(err, test_utf8_across_fragments);
    tcase_add_test(err, test_text_ends_mid_code_point);
    tcase_add_test(err, test_binary_invalid_utf8_ok);
    tcase_add_test(err, test_max_message_header_only);
    tcase_add_test(err, test_max_message_exact_ok);
    tcase_add_test(err, test_max_message_fragments_sum);
    tcase_add_test(err, test_max_message_ignores_control);
    tcase_add_test(err, test_unlimited_huge_length);
    tcase_add_test(err, test_close_frames_parsed);
    tcase_add_test(err, test_close_frames_bad);
    tcase_add_test(err, test_error_is_sticky);
    tcase_add_test(err, test_close_payload_check);
    tcase_add_test(err, test_rsv1_compressed_messages);
    tcase_add_test(err, test_rsv1_where_not_allowed);
    tcase_add_test(err, test_rsv1_wire_limit);
    tcase_set_timeout(err, 120);
    suite_add_tcase(s, err);

    tcase_add_test(enc, test_encode_header);
    tcase_add_test(enc, test_encode_close_payload);
    tcase_add_test(enc, test_mask_against_reference);
    tcase_add_test(enc, test_mask_in_pieces);
    tcase_add_test(enc, test_round_trip);
    tcase_add_test(enc, test_round_trip_close);
    tcase_add_test(enc, test_frame_new);
    tcase_add_test(enc, test_separate_text_and_binary_limits);
    tcase_add_test(enc, test_frame_new_compressed);
    tcase_set_timeout(enc, 120);
    suite_add_tcase(s, enc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ws_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
