/* pmdz: permessage-deflate with zlib: raw deflate streams without context
 * takeover, one compressor per window size, the compressed forms of the last
 * shared frame, bounded incremental inflation with the 0x00 0x00 0xff 0xff
 * tail, and the counters. Every zlib stream it makes it ends. Never does I/O;
 * never inflates past a message's limit plus one byte. */
#define ZLIB_CONST
#include "pmdz.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "utf8.h"

#define WBITS_MIN 9                     /* zlib's smallest raw deflate window */
#define WBITS_MAX 15
#define NWINDOWS (WBITS_MAX - WBITS_MIN + 1)
#define LEVEL Z_DEFAULT_COMPRESSION
#define MEM_LEVEL 8
#define SCRATCH_KEEP (256u * 1024u)     /* a bigger scratch buffer is freed after use */
#define INFLATE_STEP_MIN 1024u          /* output room offered per inflate call */
#define INFLATE_STEP_MAX (256u * 1024u)
#define INPUT_MAX (1u << 30)            /* bytes handed to zlib per call (its counts are 32-bit) */

/* RFC 7692 section 7.2.1: a message's compressed data ends with the empty
 * stored block of a sync flush, which the sender drops and the receiver adds. */
static const uint8_t sync_tail[4] = {0x00, 0x00, 0xff, 0xff};

struct pmdz_msg {
    z_stream zs;
    uint32_t utf8;
};

struct pmdz {
    size_t min_size;
    z_stream def[NWINDOWS];             /* by window bits - WBITS_MIN */
    unsigned def_ready;                 /* bit i: def[i] is initialised */
    z_stream inf;                       /* for messages that arrive whole */
    int inf_ready;
    struct buf scratch;                 /* compressed output before it is framed */
    struct sbuf *cache_src;             /* the last shared frame asked for (a reference) */
    struct sbuf *cache[NWINDOWS];       /* its compressed forms; NULL when not smaller */
    unsigned cache_tried;               /* bit i: cache[i] was made (or found not worth it) */
    uint64_t compressions, bytes_in, bytes_out, sent, received;
};

struct pmdz *pmdz_new(size_t min_size)
{
    struct pmdz *z = calloc(1, sizeof(*z));
    if (z)
        z->min_size = min_size;
    return z;
}

static void cache_clear(struct pmdz *z)
{
    for (unsigned i = 0; i < NWINDOWS; i++) {
        sbuf_unref(z->cache[i]);
        z->cache[i] = NULL;
    }
    sbuf_unref(z->cache_src);
    z->cache_src = NULL;
    z->cache_tried = 0;
}

void pmdz_free(struct pmdz *z)
{
    if (!z)
        return;
    cache_clear(z);
    for (unsigned i = 0; i < NWINDOWS; i++)
        if (z->def_ready & (1u << i))
            deflateEnd(&z->def[i]);
    if (z->inf_ready)
        inflateEnd(&z->inf);
    buf_free(&z->scratch);
    free(z);
}

/* ---- sending ---- */

static int wants(const struct pmdz *z, unsigned op, size_t len)
{
    return (op == WS_OP_TEXT || op == WS_OP_BINARY) && len > 0 && len >= z->min_size && len <= INPUT_MAX;
}

/* The compressor for window wbits (9..15), made when first needed; NULL if out of memory. */
static z_stream *compressor(struct pmdz *z, unsigned wbits)
{
    unsigned i = wbits - WBITS_MIN;
    if (!(z->def_ready & (1u << i))) {
        memset(&z->def[i], 0, sizeof(z->def[i]));
        if (deflateInit2(&z->def[i], LEVEL, Z_DEFLATED, -(int)wbits, MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
            return NULL;
        z->def_ready |= 1u << i;
    }
    return &z->def[i];
}

/* Compresses one message on its own into z->scratch, without the sync
 * flush's tail. Returns the compressed length, or 0 when that is not
 * smaller than len (or memory ran out). */
static size_t compress_message(struct pmdz *z, unsigned wbits, const uint8_t *p, size_t len)
{
    z_stream *d = compressor(z, wbits);
    if (!d)
        return 0;
    size_t bound = deflateBound(d, (uLong)len) + 16;   /* room for the sync flush's empty block */
    z->scratch.len = 0;
    if (buf_reserve(&z->scratch, bound) < 0)
        return 0;
    d->next_in = p;
    d->avail_in = (uInt)len;
    d->next_out = z->scratch.data;
    d->avail_out = (uInt)bound;
    int rc = deflate(d, Z_SYNC_FLUSH);
    size_t n = bound - d->avail_out;
    int whole = rc == Z_OK && d->avail_in == 0 && d->avail_out > 0 && n >= sizeof(sync_tail) &&
                memcmp(z->scratch.data + n - sizeof(sync_tail), sync_tail, sizeof(sync_tail)) == 0;
    deflateReset(d);   /* no context takeover: the next message starts afresh */
    if (!whole)
        return 0;
    n -= sizeof(sync_tail);
    z->compressions++;
    z->bytes_in += len;
    z->bytes_out += n;
    return n < len ? n : 0;
}

static void scratch_trim(struct pmdz *z)
{
    if (z->scratch.cap > SCRATCH_KEEP)
        buf_free(&z->scratch);
}

static unsigned clamp_bits(unsigned wbits)
{
    return wbits < WBITS_MIN ? WBITS_MIN : wbits > WBITS_MAX ? WBITS_MAX : wbits;
}

struct sbuf *pmdz_frame(struct pmdz *z, unsigned wbits, enum ws_opcode op, const void *payload, size_t len)
{
    if (wants(z, op, len)) {
        size_t n = compress_message(z, clamp_bits(wbits), payload, len);
        struct sbuf *f = n ? ws_frame_new_compressed(op, z->scratch.data, n) : NULL;
        scratch_trim(z);
        if (f) {
            z->sent++;
            return f;
        }
    }
    return ws_frame_new(op, payload, len);
}

struct sbuf *pmdz_shared(struct pmdz *z, unsigned wbits, struct sbuf *frame)
{
    size_t h = ws_frame_header_len(frame->data);
    unsigned op = frame->data[0] & 0x0Fu;
    if ((frame->data[0] & WS_RSV1) || !wants(z, op, frame->len - h))
        return sbuf_ref(frame);
    if (z->cache_src != frame) {
        cache_clear(z);
        z->cache_src = sbuf_ref(frame);
    }
    unsigned i = clamp_bits(wbits) - WBITS_MIN;
    if (!(z->cache_tried & (1u << i))) {
        z->cache_tried |= 1u << i;
        size_t n = compress_message(z, i + WBITS_MIN, frame->data + h, frame->len - h);
        z->cache[i] = n ? ws_frame_new_compressed((enum ws_opcode)op, z->scratch.data, n) : NULL;
        scratch_trim(z);
    }
    if (!z->cache[i])
        return sbuf_ref(frame);
    z->sent++;
    return sbuf_ref(z->cache[i]);
}

/* ---- receiving ---- */

/* Inflates in[0..len) into out, checking text as it goes, never letting out
 * pass limit + 1 bytes. */
static enum pmdz_status run_inflate(z_stream *zs, uint32_t *utf8, const uint8_t *in, size_t len, int text,
                                    uint64_t limit, struct buf *out)
{
    zs->avail_in = 0;   /* a failed message may have left input behind */
    for (;;) {
        if (zs->avail_in == 0 && len > 0) {
            size_t piece = len < INPUT_MAX ? len : INPUT_MAX;
            zs->next_in = in;
            zs->avail_in = (uInt)piece;
            in += piece;
            len -= piece;
        }
        size_t room = (size_t)zs->avail_in * 4;
        room = room < INFLATE_STEP_MIN ? INFLATE_STEP_MIN : room > INFLATE_STEP_MAX ? INFLATE_STEP_MAX : room;
        if (limit && room > limit + 1 - out->len)
            room = (size_t)(limit + 1 - out->len);
        if (buf_reserve(out, room) < 0)
            return PMDZ_NO_MEMORY;
        uInt in_before = zs->avail_in;
        zs->next_out = out->data + out->len;
        zs->avail_out = (uInt)room;
        int rc = inflate(zs, Z_SYNC_FLUSH);
        size_t made = room - zs->avail_out;
        if (text && made)
            *utf8 = utf8_validate(*utf8, out->data + out->len, made);
        out->len += (uint32_t)made;
        if (text && *utf8 == UTF8_REJECT)
            return PMDZ_BAD_UTF8;   /* checked first: then the verdict does not depend on the pieces */
        if (limit && out->len > limit)
            return PMDZ_TOO_BIG;
        if (rc == Z_STREAM_END) {   /* a final block: whatever follows starts afresh */
            if (inflateReset(zs) != Z_OK)
                return PMDZ_CORRUPT;
            if (zs->avail_in == 0 && len == 0)
                return PMDZ_OK;
            continue;
        }
        if (rc == Z_MEM_ERROR)
            return PMDZ_NO_MEMORY;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return PMDZ_CORRUPT;
        if (zs->avail_in == 0 && len == 0 && zs->avail_out > 0)
            return PMDZ_OK;      /* all input taken, all output out */
        if (made == 0 && zs->avail_in == in_before)
            return PMDZ_CORRUPT; /* no progress possible */
    }
}

void pmdz_msg_free(struct pmdz_msg *m)
{
    if (!m)
        return;
    inflateEnd(&m->zs);
    free(m);
}

static struct pmdz_msg *msg_new(void)
{
    struct pmdz_msg *m = calloc(1, sizeof(*m));
    if (m && inflateInit2(&m->zs, -WBITS_MAX) != Z_OK) {
        free(m);
        return NULL;
    }
    return m;
}

enum pmdz_status pmdz_inflate(struct pmdz *z, struct pmdz_msg **msg, const uint8_t *data, size_t len, int last,
                              int text, uint64_t limit, struct buf *out)
{
    uint32_t whole_utf8 = UTF8_ACCEPT, *utf8 = &whole_utf8;
    z_stream *zs;
    if (!*msg && last) {
        if (!z->inf_ready && inflateInit2(&z->inf, -WBITS_MAX) != Z_OK)
            return PMDZ_NO_MEMORY;
        z->inf_ready = 1;
        zs = &z->inf;
    } else {
        if (!*msg && !(*msg = msg_new()))
            return PMDZ_NO_MEMORY;
        zs = &(*msg)->zs;
        utf8 = &(*msg)->utf8;
    }
    enum pmdz_status st = run_inflate(zs, utf8, data, len, text, limit, out);
    if (st == PMDZ_OK && last) {
        st = run_inflate(zs, utf8, sync_tail, sizeof(sync_tail), text, limit, out);
        if (st == PMDZ_OK && text && *utf8 != UTF8_ACCEPT)
            st = PMDZ_BAD_UTF8;
        if (st == PMDZ_OK)
            z->received++;
    }
    if (zs == &z->inf) {
        inflateReset(zs);
    } else if (st != PMDZ_OK || last) {
        pmdz_msg_free(*msg);
        *msg = NULL;
    }
    return st;
}

uint16_t pmdz_close_code(enum pmdz_status st, const char **reason)
{
    switch (st) {
    case PMDZ_TOO_BIG:
        *reason = "inflated message larger than the server accepts";
        return WS_CLOSE_TOO_BIG;
    case PMDZ_CORRUPT:
        *reason = "invalid compressed data";
        return WS_CLOSE_INVALID_DATA;
    case PMDZ_BAD_UTF8:
        *reason = "invalid UTF-8 in text message";
        return WS_CLOSE_INVALID_DATA;
    default:
        *reason = "out of memory";
        return WS_CLOSE_INTERNAL;
    }
}

void pmdz_metrics(const struct pmdz *z, struct metrics *m)
{
    metrics_value(m, "deflate_compressions", "wshub_deflate_compressions_total", METRICS_COUNTER,
                  "Messages compressed: a broadcast once per window size, an echo once.", z->compressions);
    metrics_value(m, "deflate_bytes_in", "wshub_deflate_bytes_in_total", METRICS_COUNTER,
                  "Payload bytes compressed.", z->bytes_in);
    metrics_value(m, "deflate_bytes_out", "wshub_deflate_bytes_out_total", METRICS_COUNTER,
                  "Bytes those payloads compressed to.", z->bytes_out);
    metrics_value(m, "messages_out_compressed", "wshub_messages_sent_compressed_total", METRICS_COUNTER,
                  "Compressed messages queued to clients (a broadcast to N members counts N).", z->sent);
    metrics_value(m, "messages_in_compressed", "wshub_messages_received_compressed_total", METRICS_COUNTER,
                  "Compressed messages received and inflated.", z->received);
}
