/* fuzz_ws: libFuzzer harness for src/ws.c, the RFC 6455 frame parser.
 * Input layout: byte 0 picks a split point, byte 1 picks max_message (1..15,
 * then multiples of 17 up to 4080; 0 and 255 mean unlimited), the rest is
 * what a client sent after the handshake. The stream is parsed as a connection does it (keep the unconsumed
 * bytes, append the next piece, call ws_parse until NEED_MORE): whole, in two
 * pieces at the chosen point, a byte at a time, and in pseudo-random chunks.
 * Each run records a normalised event list (whole messages with opcode and
 * bytes, control frames with opcode and payload, the error code, and the
 * unfinished message at the end) and all four must be equal. Per call it
 * checks: consumed <= len; an event's data lies in the consumed bytes; at most
 * WS_MAX_HEADER + 125 bytes are left over at NEED_MORE; after ERROR every call
 * (old bytes or new) returns the same ERROR; DATA first/last/opcode are
 * consistent; every TEXT message is valid UTF-8; control payloads <= 125 and
 * a close payload passes ws_close_payload_check; a message never exceeds
 * max_message. Each piece sits in an exact-size heap buffer, so ASan sees any
 * read past the bytes given.
 * Round trips: the whole input as a payload, framed with ws_encode_header
 * (TEXT and BINARY), masked with ws_mask under a key taken from the input,
 * parsed back: BINARY yields exactly the payload; TEXT yields it iff it is
 * valid UTF-8, else ERROR 1007; the same split into fragments with pings
 * between them; max_message = payload length passes, one less gives 1009.
 * ws_mask agrees with a byte-by-byte reference at any alignment and key
 * offset. Deterministic; no state survives a run. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "ws.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* ---- growable byte strings ---- */

struct bytes {
    uint8_t *p;
    size_t n, cap;
};

static void b_put(struct bytes *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        CHECK(p != NULL);
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void b_byte(struct bytes *b, uint8_t c)
{
    b_put(b, &c, 1);
}

static void b_u64(struct bytes *b, uint64_t v)
{
    b_put(b, &v, sizeof v);
}

static void b_free(struct bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int b_eq(const struct bytes *a, const struct bytes *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
}

/* Log entries: kind, opcode, length, bytes. */
static void log_rec(struct bytes *log, uint8_t kind, uint8_t op, const void *d, size_t n)
{
    b_byte(log, kind);
    b_byte(log, op);
    b_u64(log, n);
    b_put(log, d, n);
}

static void log_err(struct bytes *log, uint16_t code)
{
    b_byte(log, 'E');
    b_put(log, &code, sizeof code);
}

/* ---- a connection's worth of parsing ---- */

struct run {
    struct ws_parser p;
    uint64_t max_message;
    uint8_t *pend;     /* unconsumed bytes kept between pieces */
    size_t plen;
    int dead;
    uint16_t code;
    int in_msg;
    uint8_t msg_op;
    struct bytes msg;  /* the unfinished message */
    struct bytes out;  /* the normalised event list */
};

static void run_init(struct run *r, uint64_t max_message)
{
    memset(r, 0, sizeof *r);
    ws_parser_init(&r->p, max_message);
    r->max_message = max_message;
}

/* One piece arrives: append it to the leftover, call ws_parse until NEED_MORE
 * or ERROR, and keep what was not consumed. */
static void run_feed(struct run *r, const uint8_t *d, size_t n)
{
    if (r->dead)
        return;
    size_t total = r->plen + n;
    uint8_t *buf = malloc(total ? total : 1);
    CHECK(buf != NULL);
    if (r->plen)
        memcpy(buf, r->pend, r->plen);
    if (n)
        memcpy(buf + r->plen, d, n);
    free(r->pend);
    r->pend = NULL;
    r->plen = 0;

    size_t off = 0, guard = 0;
    for (;;) {
        struct ws_event ev;
        memset(&ev, 0x5a, sizeof ev);
        size_t c = ws_parse(&r->p, buf + off, total - off, &ev);
        CHECK(c <= total - off);
        CHECK(++guard <= total + 2);   /* every event but NEED_MORE consumes bytes */
        if (ev.type == WS_EV_NEED_MORE) {
            off += c;
            CHECK(total - off <= WS_MAX_HEADER + WS_MAX_CONTROL_PAYLOAD);
            break;
        }
        if (ev.type == WS_EV_ERROR) {
            CHECK(c == 0);
            CHECK(ev.close_code == WS_CLOSE_PROTOCOL || ev.close_code == WS_CLOSE_INVALID_DATA ||
                  ev.close_code == WS_CLOSE_TOO_BIG);
            CHECK(ev.close_code != WS_CLOSE_TOO_BIG || r->max_message != 0);
            CHECK(ev.reason != NULL && ev.reason[0]);
            log_err(&r->out, ev.close_code);
            r->dead = 1;
            r->code = ev.close_code;
            /* the stream is dead: every later call returns the same error */
            struct ws_event ev2;
            CHECK(ws_parse(&r->p, buf + off, total - off, &ev2) == 0);
            CHECK(ev2.type == WS_EV_ERROR && ev2.close_code == ev.close_code);
            uint8_t fresh[8] = {0x81, 0x82, 1, 2, 3, 4, 5, 6};
            CHECK(ws_parse(&r->p, fresh, sizeof fresh, &ev2) == 0);
            CHECK(ev2.type == WS_EV_ERROR && ev2.close_code == ev.close_code);
            CHECK(ws_parse(&r->p, fresh, 0, &ev2) == 0);
            CHECK(ev2.type == WS_EV_ERROR && ev2.close_code == ev.close_code);
            free(buf);
            return;
        }
        CHECK(c > 0);
        if (ev.len)
            CHECK(ev.data >= buf + off && ev.data + ev.len <= buf + off + c);
        if (ev.type == WS_EV_DATA) {
            CHECK(ev.opcode == WS_OP_TEXT || ev.opcode == WS_OP_BINARY);
            CHECK(ev.first <= 1 && ev.last <= 1);
            CHECK(ev.len > 0 || ev.last);   /* no empty chunk except a message's end */
            if (ev.first) {
                CHECK(!r->in_msg);
                r->in_msg = 1;
                r->msg_op = ev.opcode;
                r->msg.n = 0;
            } else {
                CHECK(r->in_msg && ev.opcode == r->msg_op);
            }
            b_put(&r->msg, ev.data, ev.len);
            CHECK(r->max_message == 0 || r->msg.n <= r->max_message);
            if (ev.last) {
                if (r->msg_op == WS_OP_TEXT)
                    CHECK(utf8_is_valid(r->msg.p, r->msg.n));
                log_rec(&r->out, 'M', r->msg_op, r->msg.p, r->msg.n);
                r->in_msg = 0;
                r->msg.n = 0;
            }
        } else if (ev.type == WS_EV_CONTROL) {
            CHECK(ev.opcode == WS_OP_CLOSE || ev.opcode == WS_OP_PING || ev.opcode == WS_OP_PONG);
            CHECK(ev.len <= WS_MAX_CONTROL_PAYLOAD);
            if (ev.opcode == WS_OP_CLOSE)
                CHECK(ws_close_payload_check(ev.data, ev.len) == 0);
            log_rec(&r->out, 'C', ev.opcode, ev.data, ev.len);
        } else {
            __builtin_trap();   /* unknown event type */
        }
        off += c;
    }
    if (total > off) {
        r->plen = total - off;
        r->pend = malloc(r->plen);
        CHECK(r->pend != NULL);
        memcpy(r->pend, buf + off, r->plen);
    }
    free(buf);
}

/* Ends a run: the unfinished message (all its bytes were delivered however
 * the input was split) is part of the result. */
static void run_finish(struct run *r)
{
    if (!r->dead && r->in_msg)
        log_rec(&r->out, 'P', r->msg_op, r->msg.p, r->msg.n);
    free(r->pend);
    r->pend = NULL;
    r->plen = 0;
    b_free(&r->msg);
}

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

enum { WHOLE, SPLIT, BYTES, CHUNKS };

/* Parses s[0..n) delivered one way; the event list is left in out. */
static void parse_way(int way, const uint8_t *s, size_t n, size_t split, uint64_t max_message, uint64_t seed,
                      struct bytes *out)
{
    struct run r;
    run_init(&r, max_message);
    switch (way) {
    case WHOLE:
        run_feed(&r, s, n);
        break;
    case SPLIT:
        run_feed(&r, s, split);
        run_feed(&r, s + split, n - split);
        break;
    case BYTES:
        for (size_t i = 0; i < n && !r.dead; i++)
            run_feed(&r, s + i, 1);
        break;
    default:
        if (!seed)
            seed = 1;
        for (size_t i = 0; i < n && !r.dead;) {
            size_t k = 1 + (size_t)(next_rand(&seed) % 300);
            if (k > n - i)
                k = n - i;
            run_feed(&r, s + i, k);
            i += k;
        }
        break;
    }
    run_finish(&r);
    *out = r.out;
}

/* ---- masking ---- */

static void ref_mask(uint8_t *d, size_t n, const uint8_t key[4], unsigned pos)
{
    for (size_t i = 0; i < n; i++)
        d[i] ^= key[(pos + i) & 3u];
}

static void check_mask(const uint8_t *data, size_t size, const uint8_t key[4])
{
    unsigned align = size ? data[0] & 7u : 0, pos = size > 1 ? data[1] & 3u : 0;
    uint8_t *a = malloc(size + 8), *b = malloc(size + 8);
    CHECK(a && b);
    memset(a, 0xEE, size + 8);
    memcpy(a + align, data, size);
    memcpy(b, a, size + 8);
    unsigned next = ws_mask(a + align, size, key, pos);
    ref_mask(b + align, size, key, pos);
    CHECK(next == ((pos + size) & 3u));
    CHECK(memcmp(a, b, size + 8) == 0);
    /* masking twice gives the input back, also when done in two pieces */
    size_t cut = size / 3;
    unsigned mid = ws_mask(a + align, cut, key, pos);
    ws_mask(a + align + cut, size - cut, key, mid);
    CHECK(memcmp(a + align, data, size) == 0);
    free(a);
    free(b);
}

/* ---- round trips ---- */

/* Appends one masked client frame. */
static void put_frame(struct bytes *b, uint8_t b0, const uint8_t *payload, size_t n, const uint8_t key[4])
{
    uint8_t hdr[WS_MAX_HEADER];
    size_t h = ws_encode_header(hdr, (enum ws_opcode)(b0 & 0x0F), n);
    CHECK(h == ws_header_len(n));
    CHECK(h == (n < 126 ? 2u : n <= 0xFFFF ? 4u : 10u));
    CHECK((hdr[0] & 0xF0) == 0x80 && (hdr[0] & 0x0F) == (b0 & 0x0F) && !(hdr[1] & 0x80));
    hdr[0] = b0;   /* FIN as asked */
    hdr[1] |= 0x80;
    b_put(b, hdr, h);
    b_put(b, key, 4);
    size_t at = b->n;
    b_put(b, payload, n);
    ws_mask(b->p + at, n, key, 0);
}

static void round_trip(const uint8_t *data, size_t size, const uint8_t key[4], uint64_t seed)
{
    int valid = utf8_is_valid(data, size);
    for (int op = WS_OP_TEXT; op <= WS_OP_BINARY; op++) {
        int ok = op == WS_OP_BINARY || valid;
        struct bytes want = {0};
        if (ok)
            log_rec(&want, 'M', (uint8_t)op, data, size);
        else
            log_err(&want, WS_CLOSE_INVALID_DATA);

        /* one frame */
        struct bytes in = {0}, got;
        put_frame(&in, (uint8_t)(0x80 | op), data, size, key);
        parse_way(WHOLE, in.p, in.n, 0, 0, 0, &got);
        CHECK(b_eq(&got, &want));
        b_free(&got);
        parse_way(CHUNKS, in.p, in.n, 0, 0, seed, &got);
        CHECK(b_eq(&got, &want));
        b_free(&got);
        /* max_message = the payload length is fine; one less is 1009 */
        if (size >= 1) {
            parse_way(WHOLE, in.p, in.n, 0, size, 0, &got);
            CHECK(b_eq(&got, &want));
            b_free(&got);
        }
        if (size >= 2) {
            struct bytes big = {0};
            log_err(&big, WS_CLOSE_TOO_BIG);
            parse_way(WHOLE, in.p, in.n, 0, size - 1, 0, &got);
            CHECK(b_eq(&got, &big));
            b_free(&got);
            b_free(&big);
        }
        b_free(&in);

        /* up to four fragments, a ping after each non-final one */
        size_t cuts[3];
        for (int i = 0; i < 3; i++)
            cuts[i] = size ? (size_t)(next_rand(&seed) % (size + 1)) : 0;
        for (int i = 0; i < 3; i++)   /* sort */
            for (int j = i + 1; j < 3; j++)
                if (cuts[j] < cuts[i]) {
                    size_t t = cuts[i];
                    cuts[i] = cuts[j];
                    cuts[j] = t;
                }
        struct bytes frag = {0}, want2 = {0};
        size_t from = 0;
        for (int i = 0; i <= 3; i++) {
            size_t to = i < 3 ? cuts[i] : size;
            uint8_t b0 = (uint8_t)((i == 0 ? op : WS_OP_CONT) | (i == 3 ? 0x80 : 0));
            put_frame(&frag, b0, data + from, to - from, key);
            if (i < 3) {
                uint8_t ping = (uint8_t)i;
                put_frame(&frag, 0x80 | WS_OP_PING, &ping, 1, key);
                log_rec(&want2, 'C', WS_OP_PING, &ping, 1);
            }
            from = to;
        }
        if (ok)
            log_rec(&want2, 'M', (uint8_t)op, data, size);
        parse_way(WHOLE, frag.p, frag.n, 0, 0, 0, &got);
        if (ok) {
            CHECK(b_eq(&got, &want2));
        } else {   /* some pings, then 1007: a prefix of the pings and the error */
            CHECK(got.n >= 3 && got.p[got.n - 3] == 'E');
            uint16_t code;
            memcpy(&code, got.p + got.n - 2, 2);
            CHECK(code == WS_CLOSE_INVALID_DATA);
            CHECK(got.n - 3 <= want2.n && memcmp(got.p, want2.p, got.n - 3) == 0);
        }
        b_free(&got);
        b_free(&frag);
        b_free(&want2);
        b_free(&want);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *s = size >= 2 ? data + 2 : data;
    size_t n = size >= 2 ? size - 2 : 0;
    size_t split = size ? (size_t)data[0] * n / 255 : 0;
    uint64_t max_message = 0;
    if (size >= 2 && data[1] != 255)
        max_message = data[1] < 16 ? data[1] : (uint64_t)(data[1] - 15) * 17;   /* 0..4080, 0 = unlimited */
    uint64_t seed = 0x9E3779B97F4A7C15ull ^ size;
    for (size_t i = 0; i < size && i < 32; i++)
        seed = seed * 1099511628211ull + data[i];

    struct bytes whole, other;
    parse_way(WHOLE, s, n, 0, max_message, 0, &whole);
    parse_way(SPLIT, s, n, split, max_message, 0, &other);
    CHECK(b_eq(&whole, &other));
    b_free(&other);
    parse_way(BYTES, s, n, 0, max_message, 0, &other);
    CHECK(b_eq(&whole, &other));
    b_free(&other);
    parse_way(CHUNKS, s, n, 0, max_message, seed, &other);
    CHECK(b_eq(&whole, &other));
    b_free(&other);
    b_free(&whole);

    uint8_t key[4];
    for (int i = 0; i < 4; i++)
        key[i] = (uint8_t)(seed >> (8 * i + 3));
    check_mask(data, size, key);
    round_trip(data, size, key, seed);
    return 0;
}
