/* ws: RFC 6455 frame parser and encoder, sans-I/O. Owns frame validation,
 * fragmentation state, incremental UTF-8 checking of text and close payloads,
 * and which frames may carry RSV1 (permessage-deflate's compressed bit).
 * Never does I/O; the parser never allocates (payloads are unmasked in the
 * caller's buffer); ws_frame_new allocates the shared frame it returns. */
#include "ws.h"

#include <string.h>

#include "utf8.h"

/* A limit as kept: at most 3 GiB, so that with deflate's overhead added a
 * message's length still fits msg_len's 32 bits. */
#define LIMIT_MAX (3u << 30)

static uint32_t limit32(uint64_t max)
{
    return max > LIMIT_MAX ? LIMIT_MAX : (uint32_t)max;
}

void ws_parser_init(struct ws_parser *p, uint64_t max_message)
{
    memset(p, 0, sizeof(*p));
    p->max_text = p->max_binary = limit32(max_message);
}

void ws_parser_set_limits(struct ws_parser *p, uint64_t max_text, uint64_t max_binary)
{
    p->max_text = limit32(max_text);
    p->max_binary = limit32(max_binary);
}

void ws_parser_allow_compressed(struct ws_parser *p)
{
    p->allow_rsv1 = 1;
}

static struct sbuf *frame_new(enum ws_opcode op, uint8_t rsv, const void *payload, size_t len)
{
    struct sbuf *s = sbuf_new(ws_header_len(len) + len);
    if (!s)
        return NULL;
    size_t h = ws_encode_header(s->data, op, len);
    s->data[0] |= rsv;
    if (len)
        memcpy(s->data + h, payload, len);
    return s;
}

struct sbuf *ws_frame_new(enum ws_opcode op, const void *payload, size_t len)
{
    return frame_new(op, 0, payload, len);
}

struct sbuf *ws_frame_new_compressed(enum ws_opcode op, const void *payload, size_t len)
{
    return frame_new(op, WS_RSV1, payload, len);
}

size_t ws_frame_header_len(const uint8_t *frame)
{
    unsigned len7 = frame[1] & 0x7Fu;
    return len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
}

/* Why the stream failed; the parser keeps only this index. */
enum ws_failure {
    F_UTF8,
    F_UTF8_END,
    F_RSV,
    F_RSV1_FRAME,
    F_OPCODE,
    F_UNMASKED,
    F_CONTROL_FRAGMENTED,
    F_CONTROL_LONG,
    F_ORPHAN_CONT,
    F_INTERLEAVED,
    F_LENGTH,
    F_TOO_BIG,
    F_CLOSE_UTF8,
    F_CLOSE_CODE,
};

static const char *const fail_reasons[] = {
    [F_UTF8] = "invalid UTF-8 in text message",
    [F_UTF8_END] = "text message ends inside a UTF-8 sequence",
    [F_RSV] = "reserved bits set without an extension",
    [F_RSV1_FRAME] = "RSV1 set on a continuation or control frame",
    [F_OPCODE] = "reserved opcode",
    [F_UNMASKED] = "client frames must be masked",
    [F_CONTROL_FRAGMENTED] = "fragmented control frame",
    [F_CONTROL_LONG] = "control frame payload over 125 bytes",
    [F_ORPHAN_CONT] = "continuation frame without a message to continue",
    [F_INTERLEAVED] = "new message before the fragmented one ended",
    [F_LENGTH] = "64-bit payload length with the top bit set",
    [F_TOO_BIG] = "message larger than the server accepts",
    [F_CLOSE_UTF8] = "close reason is not valid UTF-8",
    [F_CLOSE_CODE] = "invalid close code or payload",
};

static void report_failure(const struct ws_parser *p, struct ws_event *ev)
{
    ev->type = WS_EV_ERROR;
    ev->close_code = p->fail_code;
    ev->reason = fail_reasons[p->fail_reason];
}

static size_t fail(struct ws_parser *p, struct ws_event *ev, uint16_t code, enum ws_failure why)
{
    p->failed = 1;
    p->fail_code = code;
    p->fail_reason = (uint8_t)why;
    report_failure(p, ev);
    return 0;
}

/* 16 bytes XORed as one (GCC's vector extension: SSE2 on x86-64, NEON on arm64). */
typedef uint8_t mask_vec __attribute__((vector_size(16)));

unsigned ws_mask(uint8_t *data, size_t n, const uint8_t key[4], unsigned pos)
{
    /* The key rotated to start at pos and repeated: the mask then repeats
     * every 4 bytes from data[0], whatever data's alignment. */
    uint8_t k[16] = {key[pos & 3u], key[(pos + 1) & 3u], key[(pos + 2) & 3u], key[(pos + 3) & 3u]};
    memcpy(k + 4, k, 4);
    memcpy(k + 8, k, 8);
    mask_vec kv;
    memcpy(&kv, k, 16);
    size_t i = 0;
    for (; n - i >= 64; i += 64) {
        mask_vec a, b, c, d;
        memcpy(&a, data + i, 16);
        memcpy(&b, data + i + 16, 16);
        memcpy(&c, data + i + 32, 16);
        memcpy(&d, data + i + 48, 16);
        a ^= kv;
        b ^= kv;
        c ^= kv;
        d ^= kv;
        memcpy(data + i, &a, 16);
        memcpy(data + i + 16, &b, 16);
        memcpy(data + i + 32, &c, 16);
        memcpy(data + i + 48, &d, 16);
    }
    for (; n - i >= 16; i += 16) {
        mask_vec w;
        memcpy(&w, data + i, 16);
        w ^= kv;
        memcpy(data + i, &w, 16);
    }
    if (n - i >= 8) {
        uint64_t w, k8;
        memcpy(&w, data + i, 8);
        memcpy(&k8, k, 8);
        w ^= k8;
        memcpy(data + i, &w, 8);
        i += 8;
    }
    for (; i < n; i++)
        data[i] ^= k[i & 3u];
    return (unsigned)((pos + n) & 3u);
}

int ws_close_code_valid(unsigned code)
{
    if (code >= 1000 && code <= 1014)
        return code != 1004 && code != 1005 && code != 1006;
    return code >= 3000 && code <= 4999;
}

uint16_t ws_close_payload_check(const uint8_t *payload, size_t len)
{
    if (len == 0)
        return 0;
    if (len == 1 || len > WS_MAX_CONTROL_PAYLOAD)
        return WS_CLOSE_PROTOCOL;
    if (!ws_close_code_valid(((unsigned)payload[0] << 8) | payload[1]))
        return WS_CLOSE_PROTOCOL;
    if (!utf8_is_valid(payload + 2, len - 2))
        return WS_CLOSE_INVALID_DATA;
    return 0;
}

/* Streams the next chunk of a data frame's payload into *ev. */
static size_t parse_payload(struct ws_parser *p, uint8_t *buf, size_t len, struct ws_event *ev)
{
    size_t n = len < p->remaining ? len : (size_t)p->remaining;
    if (n == 0 && p->remaining > 0)
        return 0;
    p->mask_pos = (uint8_t)ws_mask(buf, n, p->mask, p->mask_pos);
    p->remaining -= n;
    int last = p->remaining == 0 && p->frame_fin;
    if (p->msg_opcode == WS_OP_TEXT && !p->msg_compressed) {
        p->utf8_state = (uint8_t)utf8_validate(p->utf8_state, buf, n);
        if (p->utf8_state == UTF8_REJECT)
            return fail(p, ev, WS_CLOSE_INVALID_DATA, F_UTF8);
        if (last && p->utf8_state != UTF8_ACCEPT)
            return fail(p, ev, WS_CLOSE_INVALID_DATA, F_UTF8_END);
    }
    ev->type = WS_EV_DATA;
    ev->opcode = p->msg_opcode;
    ev->first = p->first_pending;
    ev->last = (uint8_t)last;
    ev->compressed = p->msg_compressed;
    ev->data = buf;
    ev->len = n;
    p->first_pending = 0;
    if (p->remaining == 0) {
        p->in_frame = 0;
        if (last)
            p->msg_opcode = 0;
    }
    return n;
}

/* Parses one frame header at buf. Returns its length, 0 when incomplete, or
 * fails. Consumes control frames whole (filling *ev). */
static size_t parse_header(struct ws_parser *p, uint8_t *buf, size_t len, struct ws_event *ev)
{
    if (len < 2)
        return 0;
    unsigned fin = buf[0] & 0x80u, rsv = buf[0] & 0x70u, opcode = buf[0] & 0x0Fu;
    unsigned masked = buf[1] & 0x80u, len7 = buf[1] & 0x7Fu;
    int control = opcode & 0x8u;
    if (rsv & ~(p->allow_rsv1 ? WS_RSV1 : 0u))
        return fail(p, ev, WS_CLOSE_PROTOCOL, F_RSV);
    if (control ? opcode > WS_OP_PONG : opcode > WS_OP_BINARY)
        return fail(p, ev, WS_CLOSE_PROTOCOL, F_OPCODE);
    if (!masked)
        return fail(p, ev, WS_CLOSE_PROTOCOL, F_UNMASKED);
    if (rsv && (control || opcode == WS_OP_CONT))
        return fail(p, ev, WS_CLOSE_PROTOCOL, F_RSV1_FRAME);
    if (control) {
        if (!fin)
            return fail(p, ev, WS_CLOSE_PROTOCOL, F_CONTROL_FRAGMENTED);
        if (len7 > WS_MAX_CONTROL_PAYLOAD)
            return fail(p, ev, WS_CLOSE_PROTOCOL, F_CONTROL_LONG);
    } else if (opcode == WS_OP_CONT && !p->msg_opcode) {
        return fail(p, ev, WS_CLOSE_PROTOCOL, F_ORPHAN_CONT);
    } else if (opcode != WS_OP_CONT && p->msg_opcode) {
        return fail(p, ev, WS_CLOSE_PROTOCOL, F_INTERLEAVED);
    }

    size_t hdr = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
    if (len < hdr)
        return 0;
    uint64_t plen = len7;
    if (len7 == 126) {
        plen = ((uint64_t)buf[2] << 8) | buf[3];
    } else if (len7 == 127) {
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = (plen << 8) | buf[2 + i];
        if (plen >> 63)
            return fail(p, ev, WS_CLOSE_PROTOCOL, F_LENGTH);
    }
    const uint8_t *key = buf + hdr - 4;

    if (control) {
        if (len - hdr < plen)
            return 0;
        uint8_t *payload = buf + hdr;
        ws_mask(payload, (size_t)plen, key, 0);
        if (opcode == WS_OP_CLOSE) {
            uint16_t code = ws_close_payload_check(payload, (size_t)plen);
            if (code)
                return fail(p, ev, code, code == WS_CLOSE_INVALID_DATA ? F_CLOSE_UTF8 : F_CLOSE_CODE);
        }
        ev->type = WS_EV_CONTROL;
        ev->opcode = (uint8_t)opcode;
        ev->data = payload;
        ev->len = (size_t)plen;
        return hdr + (size_t)plen;
    }

    uint64_t so_far = opcode == WS_OP_CONT ? p->msg_len : 0;
    unsigned msg_op = opcode == WS_OP_CONT ? p->msg_opcode : opcode;
    int compressed = opcode == WS_OP_CONT ? p->msg_compressed : rsv != 0;
    uint64_t max = msg_op == WS_OP_TEXT ? p->max_text : p->max_binary;
    if (max && compressed)
        max += (max >> 10) + 64;   /* deflate's overhead on incompressible data */
    if (max && plen > max - so_far)
        return fail(p, ev, WS_CLOSE_TOO_BIG, F_TOO_BIG);
    if (opcode != WS_OP_CONT) {
        p->msg_opcode = (uint8_t)opcode;
        p->msg_compressed = (uint8_t)compressed;
        p->utf8_state = UTF8_ACCEPT;
        p->first_pending = 1;
    }
    p->msg_len = (uint32_t)(so_far + plen);   /* <= max when there is one */
    memcpy(p->mask, key, 4);
    p->mask_pos = 0;
    p->remaining = plen;
    p->frame_fin = fin ? 1 : 0;
    /* An empty non-final fragment carries nothing to report. */
    p->in_frame = plen > 0 || fin;
    return hdr;
}

size_t ws_parse(struct ws_parser *p, uint8_t *buf, size_t len, struct ws_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    if (p->failed) {
        report_failure(p, ev);
        return 0;
    }
    size_t used = 0;
    while (!p->in_frame) {
        size_t n = parse_header(p, buf + used, len - used, ev);
        if (n == 0 || ev->type != WS_EV_NEED_MORE)
            return ev->type == WS_EV_ERROR ? 0 : used + n;
        used += n;
    }
    size_t n = parse_payload(p, buf + used, len - used, ev);
    return ev->type == WS_EV_ERROR ? 0 : used + n;
}

size_t ws_header_len(uint64_t len)
{
    return len < 126 ? 2 : len <= 0xFFFF ? 4 : 10;
}

size_t ws_encode_header(uint8_t *out, enum ws_opcode opcode, uint64_t len)
{
    out[0] = (uint8_t)(0x80u | (unsigned)opcode);
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

size_t ws_encode_close_payload(uint8_t *out, uint16_t code, const char *reason)
{
    if (code == 0)
        return 0;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    size_t n = reason ? strlen(reason) : 0;
    if (n > WS_MAX_CONTROL_PAYLOAD - 2) {
        n = WS_MAX_CONTROL_PAYLOAD - 2;
        while (n > 0 && ((uint8_t)reason[n] & 0xC0u) == 0x80u)
            n--;   /* never cut a code point in half */
    }
    if (n)
        memcpy(out + 2, reason, n);
    return 2 + n;
}
