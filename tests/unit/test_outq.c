/* test_outq: unit tests for src/outq.c, the pure output queue: byte order
 * through ring wrap and growth (checked against a model of the stream by
 * concatenating iovecs), partial advances, outq_iov's limits, dropping unsent
 * items, files (offered, advanced through, closed), coalescing of small frames,
 * outq_cost, reference counts, and that an empty queue holds no memory. Run
 * under ASan (CK_FORK=no) so leaks and overruns fail. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outq.h"

/* Slots in the queue's ring (0 without one). */
#define RING_CAP(q) ((q).items ? 1u << (q).cap_log2 : 0u)
#define EXPECT(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

#define IOV_MAX_TEST 64

/* Everything pushed, in order, and how much of it was advanced over. */
struct model {
    uint8_t *data;
    size_t len, cap, done;
};

static void model_add(struct model *m, const void *p, size_t n)
{
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->data = realloc(m->data, m->cap);
        ck_assert_ptr_nonnull(m->data);
    }
    memcpy(m->data + m->len, p, n);
    m->len += n;
}

/* A frame of n bytes from a running pattern, with one reference (the caller's). */
static struct sbuf *frame(size_t n, uint32_t *seed)
{
    struct sbuf *s = sbuf_new(n);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        s->data[i] = (uint8_t)(*seed >> 16);
    }
    return s;
}

/* Pushes bytes [off, len) of a new frame, records them, and lets the caller's reference go. */
static void push_frame(struct outq *q, struct model *m, size_t n, size_t off, uint32_t *seed)
{
    struct sbuf *s = frame(n, seed);
    ck_assert_int_eq(outq_push(q, s, off), 0);
    if (off < n)
        model_add(m, s->data + off, n - off);
    sbuf_unref(s);
}

/* Checks what outq_iov offers against the model; returns the bytes offered. */
static size_t check_offer(const struct outq *q, const struct model *m, size_t budget)
{
    struct iovec iov[IOV_MAX_TEST];
    int n = outq_iov(q, iov, IOV_MAX_TEST, budget);
    size_t at = m->done;

    for (int i = 0; i < n; i++) {
        EXPECT(iov[i].iov_len > 0, "iovec %d is empty", i);
        EXPECT(at + iov[i].iov_len <= m->len, "iovec %d runs past the stream", i);
        EXPECT(memcmp(iov[i].iov_base, m->data + at, iov[i].iov_len) == 0, "iovec %d: bytes out of order at %zu",
               i, at);
        at += iov[i].iov_len;
    }
    EXPECT(outq_bytes(q) == m->len - m->done, "bytes %zu, stream has %zu unsent", outq_bytes(q), m->len - m->done);
    return at - m->done;
}

/* Writes everything left, at most chunk bytes at a time, checking every byte. */
static void drain(struct outq *q, struct model *m, size_t chunk)
{
    while (!outq_empty(q)) {
        size_t offered = check_offer(q, m, chunk);
        ck_assert_uint_gt(offered, 0);
        size_t n = offered < chunk ? offered : chunk;
        uint32_t before = outq_sent(q);
        outq_advance(q, n);
        m->done += n;
        ck_assert_uint_eq(outq_sent(q) - before, (uint32_t)n);
    }
    ck_assert_uint_eq(m->done, m->len);
    ck_assert_ptr_null(q->items);
    ck_assert_uint_eq(outq_cost(q), 0);
}

START_TEST(test_empty_queue)
{
    struct outq q = {0};
    struct iovec iov[4];
    int fd;
    off_t off;
    size_t left;

    ck_assert_uint_le(sizeof(struct outq), 40);
    ck_assert(outq_empty(&q));
    ck_assert_int_eq(outq_iov(&q, iov, 4, 1000), 0);
    ck_assert_int_eq(outq_file(&q, &fd, &off, &left), 0);
    ck_assert_uint_eq(outq_bytes(&q), 0);
    ck_assert_uint_eq(outq_cost(&q), 0);
    outq_drop_unsent(&q);
    outq_clear(&q);
    ck_assert_ptr_null(q.items);

    /* an empty frame, or an offset at its end, queues nothing */
    struct sbuf *s = sbuf_new(0);
    ck_assert_int_eq(outq_push(&q, s, 0), 0);
    sbuf_unref(s);
    s = sbuf_new(10);
    ck_assert_int_eq(outq_push(&q, s, 10), 0);
    ck_assert(outq_empty(&q));
    ck_assert_ptr_null(q.items);
    ck_assert_uint_eq(s->refs, 1);

    /* a queue that empties by writing frees its ring */
    memset(s->data, 'x', 10);
    ck_assert_int_eq(outq_push(&q, s, 3), 0);
    ck_assert_uint_eq(s->refs, 2);
    ck_assert_uint_eq(outq_bytes(&q), 7);
    ck_assert_ptr_nonnull(q.items);
    outq_advance(&q, 7);
    ck_assert(outq_empty(&q));
    ck_assert_ptr_null(q.items);
    ck_assert_uint_eq(RING_CAP(q), 0);
    ck_assert_uint_eq(outq_cost(&q), 0);
    ck_assert_uint_eq(outq_sent(&q), 7);
    ck_assert_uint_eq(s->refs, 1);
    sbuf_unref(s);
}
END_TEST

/* Pushes and partial advances interleaved so the ring wraps, and grows while
 * wrapped, many times; the stream stays in order throughout. */
START_TEST(test_ring_wrap_while_growing)
{
    struct outq q = {0};
    struct model m = {0};
    uint32_t seed = 1, x = 7;
    uint32_t caps_seen = 0, last_cap = 0, wrapped_growths = 0;

    for (int round = 0; round < 4000; round++) {
        x = x * 1103515245u + 12345u;
        int pushes = 1 + (int)((x >> 16) % 4);   /* 1 to 4 pushes against about 2 items written */
        if (round > 3000)
            pushes = (int)((x >> 16) % 2);       /* then shrink again */
        for (int k = 0; k < pushes; k++) {
            x = x * 1103515245u + 12345u;
            size_t n = OUTQ_COALESCE_MAX + 1 + (x >> 16) % 300;   /* referenced, not copied */
            uint32_t head = q.head, count = q.count, cap = RING_CAP(q);
            push_frame(&q, &m, n, (x >> 8) % 4, &seed);
            if (RING_CAP(q) != cap) {
                caps_seen++;
                if (cap && head + count > cap)
                    wrapped_growths++;
            }
        }
        size_t offered = check_offer(&q, &m, SIZE_MAX);
        x = x * 1103515245u + 12345u;
        size_t n = offered ? (x >> 8) % (offered + 1) : 0;
        if (n > 700)
            n = 700;
        outq_advance(&q, n);
        m.done += n;
        if (RING_CAP(q) > last_cap)
            last_cap = RING_CAP(q);
    }
    ck_assert_uint_ge(caps_seen, 6);
    ck_assert_uint_ge(wrapped_growths, 1);
    ck_assert_uint_ge(last_cap, 256);
    drain(&q, &m, 5000);
    free(m.data);
}
END_TEST

START_TEST(test_partial_advance)
{
    struct outq q = {0};
    struct sbuf *a = sbuf_new(300), *b = sbuf_new(400), *c = sbuf_new(500);
    struct iovec iov[8];

    memset(a->data, 'a', 300);
    memset(b->data, 'b', 400);
    memset(c->data, 'c', 500);
    ck_assert_int_eq(outq_push(&q, a, 0), 0);
    ck_assert_int_eq(outq_push(&q, b, 0), 0);
    ck_assert_int_eq(outq_push(&q, c, 100), 0);
    ck_assert_uint_eq(outq_bytes(&q), 1100);
    ck_assert_int_eq(outq_iov(&q, iov, 8, SIZE_MAX), 3);

    outq_advance(&q, 100);   /* inside a */
    ck_assert_int_eq(outq_iov(&q, iov, 8, SIZE_MAX), 3);
    ck_assert_ptr_eq(iov[0].iov_base, a->data + 100);
    ck_assert_uint_eq(iov[0].iov_len, 200);
    ck_assert_uint_eq(a->refs, 2);

    outq_advance(&q, 250);   /* the rest of a and 50 of b */
    ck_assert_uint_eq(a->refs, 1);
    ck_assert_int_eq(outq_iov(&q, iov, 8, SIZE_MAX), 2);
    ck_assert_ptr_eq(iov[0].iov_base, b->data + 50);
    ck_assert_uint_eq(iov[0].iov_len, 350);
    ck_assert_ptr_eq(iov[1].iov_base, c->data + 100);
    ck_assert_uint_eq(iov[1].iov_len, 400);

    outq_advance(&q, 350);   /* exactly the end of b */
    ck_assert_uint_eq(b->refs, 1);
    ck_assert_int_eq(outq_iov(&q, iov, 8, SIZE_MAX), 1);
    ck_assert_uint_eq(outq_bytes(&q), 400);

    outq_advance(&q, 399);
    ck_assert_int_eq(outq_iov(&q, iov, 8, SIZE_MAX), 1);
    ck_assert_ptr_eq(iov[0].iov_base, c->data + 499);
    outq_advance(&q, 1);
    ck_assert(outq_empty(&q));
    ck_assert_ptr_null(q.items);
    ck_assert_uint_eq(c->refs, 1);
    ck_assert_uint_eq(outq_sent(&q), 1100);
    sbuf_unref(a);
    sbuf_unref(b);
    sbuf_unref(c);
}
END_TEST

START_TEST(test_iov_limits)
{
    struct outq q = {0};
    struct model m = {0};
    struct iovec iov[IOV_MAX_TEST];
    uint32_t seed = 3;

    for (int i = 0; i < 100; i++)
        push_frame(&q, &m, 300, 0, &seed);
    ck_assert_int_eq(outq_iov(&q, iov, IOV_MAX_TEST, SIZE_MAX), IOV_MAX_TEST);
    ck_assert_int_eq(outq_iov(&q, iov, 2, SIZE_MAX), 2);
    ck_assert_int_eq(outq_iov(&q, iov, 0, SIZE_MAX), 0);
    /* buffers are added while fewer than budget bytes are offered */
    ck_assert_int_eq(outq_iov(&q, iov, IOV_MAX_TEST, 1000), 4);
    ck_assert_int_eq(outq_iov(&q, iov, IOV_MAX_TEST, 900), 3);
    ck_assert_int_eq(outq_iov(&q, iov, IOV_MAX_TEST, 901), 4);
    ck_assert_int_eq(outq_iov(&q, iov, IOV_MAX_TEST, 1), 1);
    ck_assert_int_eq(outq_iov(&q, iov, IOV_MAX_TEST, 0), 1);   /* at least one */
    ck_assert_uint_eq(iov[0].iov_len, 300);
    outq_advance(&q, 150);
    m.done = 150;
    ck_assert_int_eq(outq_iov(&q, iov, IOV_MAX_TEST, 400), 2);
    ck_assert_uint_eq(iov[0].iov_len + iov[1].iov_len, 450);
    drain(&q, &m, 64 * 1024);
    free(m.data);
}
END_TEST

START_TEST(test_drop_unsent)
{
    struct outq q = {0};
    struct sbuf *f[5];
    struct iovec iov[8];

    for (int i = 0; i < 5; i++) {
        f[i] = sbuf_new(1000);
        memset(f[i]->data, 'A' + i, 1000);
        ck_assert_int_eq(outq_push(&q, f[i], 0), 0);
    }
    /* nothing started: everything goes and the memory with it */
    outq_drop_unsent(&q);
    ck_assert(outq_empty(&q));
    ck_assert_ptr_null(q.items);
    ck_assert_uint_eq(outq_bytes(&q), 0);
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(f[i]->refs, 1);

    /* a partly written head stays, whole */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(outq_push(&q, f[i], 0), 0);
    outq_advance(&q, 1010);   /* all of A and 10 bytes of B */
    outq_drop_unsent(&q);
    ck_assert_uint_eq(outq_bytes(&q), 990);
    ck_assert_int_eq(outq_iov(&q, iov, 8, SIZE_MAX), 1);
    ck_assert_ptr_eq(iov[0].iov_base, f[1]->data + 10);
    ck_assert_uint_eq(f[1]->refs, 2);
    for (int i = 2; i < 5; i++)
        ck_assert_uint_eq(f[i]->refs, 1);
    /* what follows the kept head, such as a close frame, goes after it */
    ck_assert_int_eq(outq_push(&q, f[4], 998), 0);
    ck_assert_int_eq(outq_iov(&q, iov, 8, SIZE_MAX), 2);
    ck_assert_uint_eq(iov[1].iov_len, 2);
    ck_assert_uint_eq(((uint8_t *)iov[1].iov_base)[0], 'E');
    outq_advance(&q, 992);
    ck_assert(outq_empty(&q));
    ck_assert_ptr_null(q.items);
    for (int i = 0; i < 5; i++) {
        ck_assert_uint_eq(f[i]->refs, 1);
        sbuf_unref(f[i]);
    }
}
END_TEST

/* Coalesced small frames behind a partly written head: dropping keeps the
 * head's frames whole and the stream stays a sequence of whole frames. */
START_TEST(test_drop_unsent_coalesced)
{
    struct outq q = {0};
    struct model m = {0};
    uint32_t seed = 9;

    push_frame(&q, &m, 1000, 0, &seed);
    for (int i = 0; i < 3000; i++)
        push_frame(&q, &m, 10, 0, &seed);   /* 30,000 bytes in 8 coalescing buffers */
    ck_assert_uint_le(q.count, 1 + 30000 / (OUTQ_COALESCE_CAP - OUTQ_COALESCE_MAX) + 1);
    outq_advance(&q, 1005);   /* the first frame and half of the first small one */
    m.done = 1005;
    outq_drop_unsent(&q);
    /* the head buffer is kept: the rest of its frames, whole */
    ck_assert_uint_eq(q.count, 1);
    size_t left = outq_bytes(&q);
    ck_assert_uint_eq((left + 5) % 10, 0);
    ck_assert_uint_le(left + 5, OUTQ_COALESCE_CAP);
    m.len = m.done + left;
    push_frame(&q, &m, 4, 0, &seed);   /* a close frame after it */
    drain(&q, &m, 1000);
    free(m.data);
}
END_TEST

static int make_file(size_t len, struct model *content)
{
    char path[] = "/tmp/test_outq_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)(i * 31 + 7);
        model_add(content, &c, 1);
    }
    ck_assert_int_eq(write(fd, content->data, len), (ssize_t)len);
    return fd;
}

static int fd_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/* Plays the caller: writes buffers via iovecs and files via pread (as
 * sendfile would), in chunks, and checks the whole stream. */
static void drain_with_files(struct outq *q, struct model *m, size_t chunk)
{
    while (!outq_empty(q)) {
        int fd;
        off_t off;
        size_t left;
        if (outq_file(q, &fd, &off, &left)) {
            struct iovec iov[1];
            ck_assert_int_eq(outq_iov(q, iov, 1, SIZE_MAX), 0);
            size_t n = left < chunk ? left : chunk;
            uint8_t *tmp = malloc(n);
            ck_assert_int_eq(pread(fd, tmp, n, off), (ssize_t)n);
            EXPECT(memcmp(tmp, m->data + m->done, n) == 0, "file bytes out of place at %zu", m->done);
            free(tmp);
            outq_advance(q, n);
            m->done += n;
        } else {
            size_t offered = check_offer(q, m, chunk);
            size_t n = offered < chunk ? offered : chunk;
            outq_advance(q, n);
            m->done += n;
        }
    }
    ck_assert_uint_eq(m->done, m->len);
    ck_assert_ptr_null(q->items);
}

START_TEST(test_files)
{
    struct outq q = {0};
    struct model m = {0}, content = {0};
    uint32_t seed = 5;
    int fd = make_file(5000, &content), got_fd;
    off_t off;
    size_t left;

    push_frame(&q, &m, 500, 0, &seed);   /* a response head */
    ck_assert_int_eq(outq_push_file(&q, fd, 100, 4000), 0);
    model_add(&m, content.data + 100, 4000);
    push_frame(&q, &m, 100, 0, &seed);   /* small frames after the file: a new buffer */
    push_frame(&q, &m, 100, 0, &seed);
    ck_assert_uint_eq(outq_bytes(&q), 4700);
    ck_assert_uint_eq(q.count, 3);

    struct iovec iov[8];
    ck_assert_int_eq(outq_iov(&q, iov, 8, SIZE_MAX), 1);   /* stops at the file */
    ck_assert_int_eq(outq_file(&q, &got_fd, &off, &left), 0);
    outq_advance(&q, 500);
    m.done = 500;
    ck_assert_int_eq(outq_iov(&q, iov, 8, SIZE_MAX), 0);   /* the head is a file */
    ck_assert_int_eq(outq_file(&q, &got_fd, &off, &left), 1);
    ck_assert_int_eq(got_fd, fd);
    ck_assert_int_eq(off, 100);
    ck_assert_uint_eq(left, 4000);
    outq_advance(&q, 1500);
    m.done += 1500;
    ck_assert_int_eq(outq_file(&q, &got_fd, &off, &left), 1);
    ck_assert_int_eq(off, 1600);
    ck_assert_uint_eq(left, 2500);
    ck_assert(fd_open(fd));
    /* a partly sent file is kept by drop_unsent; what follows it goes */
    outq_drop_unsent(&q);
    ck_assert_uint_eq(outq_bytes(&q), 2500);
    m.len = m.done + 2500;
    ck_assert(fd_open(fd));
    push_frame(&q, &m, 50, 0, &seed);
    drain_with_files(&q, &m, 700);
    ck_assert(!fd_open(fd));   /* closed once sent */

    /* cleared before it was sent: closed too */
    content.len = 0;
    fd = make_file(100, &content);
    ck_assert_int_eq(outq_push_file(&q, fd, 0, 100), 0);
    ck_assert(fd_open(fd));
    outq_clear(&q);
    ck_assert(!fd_open(fd));
    ck_assert_ptr_null(q.items);

    /* an unstarted file is dropped (and closed) by drop_unsent */
    fd = make_file(100, &content);
    ck_assert_int_eq(outq_push_file(&q, fd, 0, 100), 0);
    outq_drop_unsent(&q);
    ck_assert(!fd_open(fd));
    ck_assert(outq_empty(&q));

    /* an empty file range queues nothing but still hands over the fd */
    fd = make_file(10, &content);
    ck_assert_int_eq(outq_push_file(&q, fd, 0, 0), 0);
    ck_assert(!fd_open(fd));
    ck_assert(outq_empty(&q));
    ck_assert_ptr_null(q.items);
    free(m.data);
    free(content.data);
}
END_TEST

/* A file between small frames: coalescing stops at the file and starts again
 * after it, and the stream keeps its order. */
START_TEST(test_file_ends_coalescing)
{
    struct outq q = {0};
    struct model m = {0}, content = {0};
    uint32_t seed = 11;
    int fd = make_file(3000, &content);

    for (int i = 0; i < 50; i++)
        push_frame(&q, &m, 7, 0, &seed);
    ck_assert_uint_eq(q.count, 2);   /* the first frame by reference, the rest copied */
    ck_assert_int_eq(outq_push_file(&q, fd, 0, 3000), 0);
    model_add(&m, content.data, 3000);
    ck_assert_uint_eq(q.room, 0);
    for (int i = 0; i < 50; i++)
        push_frame(&q, &m, 7, 0, &seed);
    ck_assert_uint_eq(q.count, 4);
    drain_with_files(&q, &m, 333);
    ck_assert(!fd_open(fd));
    free(m.data);
    free(content.data);
}
END_TEST

START_TEST(test_coalescing)
{
    enum { N = 100000 };
    struct outq q = {0};
    struct model m = {0};
    uint32_t seed = 17;
    struct sbuf *first = frame(2, &seed), *later = frame(2, &seed);

    ck_assert_int_eq(outq_push(&q, first, 0), 0);   /* into an empty queue: a reference */
    model_add(&m, first->data, 2);
    ck_assert_uint_eq(first->refs, 2);
    ck_assert_int_eq(outq_push(&q, later, 0), 0);   /* behind it: a copy */
    model_add(&m, later->data, 2);
    ck_assert_uint_eq(later->refs, 1);
    for (int i = 2; i < N; i++)
        push_frame(&q, &m, 2, 0, &seed);
    ck_assert_uint_eq(outq_bytes(&q), 2 * N);
    ck_assert_uint_le(q.count, 1 + 2 * N / OUTQ_COALESCE_CAP + 1);
    size_t cost = outq_cost(&q);
    ck_assert_uint_ge(cost, 2 * N);
    ck_assert_uint_le(cost, 2 * N + 2 * N / 10);
    /* writes are large: one call offers a full budget */
    ck_assert_uint_ge(check_offer(&q, &m, 64 * 1024), 64 * 1024);

    /* twice the frames, about twice the cost */
    for (int i = 0; i < N; i++)
        push_frame(&q, &m, 2, 0, &seed);
    size_t cost2 = outq_cost(&q);
    ck_assert_uint_ge(cost2, 2 * cost - cost / 10);
    ck_assert_uint_le(cost2, 2 * cost + cost / 10);

    /* frames up to OUTQ_COALESCE_MAX are copied, longer ones referenced */
    struct sbuf *max = frame(OUTQ_COALESCE_MAX, &seed), *over = frame(OUTQ_COALESCE_MAX + 1, &seed);
    ck_assert_int_eq(outq_push(&q, max, 0), 0);
    model_add(&m, max->data, OUTQ_COALESCE_MAX);
    ck_assert_uint_eq(max->refs, 1);
    ck_assert_int_eq(outq_push(&q, over, 0), 0);
    model_add(&m, over->data, OUTQ_COALESCE_MAX + 1);
    ck_assert_uint_eq(over->refs, 2);
    ck_assert_int_eq(outq_push(&q, over, 1), 0);   /* 256 bytes left of it: copied */
    model_add(&m, over->data + 1, OUTQ_COALESCE_MAX);
    ck_assert_uint_eq(over->refs, 2);

    drain(&q, &m, 10000);
    ck_assert_uint_eq(first->refs, 1);
    ck_assert_uint_eq(over->refs, 1);
    sbuf_unref(first);
    sbuf_unref(later);
    sbuf_unref(max);
    sbuf_unref(over);
    free(m.data);
}
END_TEST

/* Small frames written as they come: the coalescing buffer, head and tail at
 * once, keeps filling while it is being written, and is freed once sent. */
START_TEST(test_coalescing_while_writing)
{
    struct outq q = {0};
    struct model m = {0};
    uint32_t seed = 23, x = 1;

    for (int i = 0; i < 20000; i++) {
        x = x * 1103515245u + 12345u;
        push_frame(&q, &m, 1 + (x >> 16) % 40, 0, &seed);
        if (i % 7 == 0) {
            size_t offered = check_offer(&q, &m, SIZE_MAX);
            size_t n = (x >> 8) % (offered + 1);
            outq_advance(&q, n);
            m.done += n;
        }
        EXPECT(q.count <= 4, "%u items for %zu bytes", q.count, outq_bytes(&q));
    }
    drain(&q, &m, 3000);
    free(m.data);
}
END_TEST

/* outq_cost counts items, not just bytes: the same bytes in many items cost
 * more, and every item adds at least OUTQ_ITEM_COST. */
START_TEST(test_cost_counts_items)
{
    struct outq many = {0}, one = {0};
    struct model m = {0}, m1 = {0};
    uint32_t seed = 29;
    size_t n = OUTQ_COALESCE_MAX + 1, last = 0;

    for (int i = 0; i < 1000; i++) {
        push_frame(&many, &m, n, 0, &seed);
        size_t cost = outq_cost(&many);
        EXPECT(cost >= last + n + OUTQ_ITEM_COST, "item %d added %zu to the cost", i, cost - last);
        last = cost;
    }
    push_frame(&one, &m1, 1000 * n, 0, &seed);
    ck_assert_uint_eq(outq_bytes(&many), outq_bytes(&one));
    ck_assert_uint_ge(outq_cost(&many), outq_cost(&one) + 999 * OUTQ_ITEM_COST);
    ck_assert_uint_ge(outq_cost(&many) - outq_bytes(&many), 1000 * (OUTQ_ITEM_COST + 16));
    /* what a sent item cost goes with it */
    outq_advance(&many, 500 * n);
    m.done = 500 * n;
    ck_assert_uint_le(outq_cost(&many), last - 500 * (n + OUTQ_ITEM_COST));
    drain(&many, &m, 100000);
    drain(&one, &m1, 100000);
    free(m.data);
    free(m1.data);
}
END_TEST

/* Small frames between large ones each start a coalescing buffer; one left
 * mostly empty is trimmed, so memory follows the bytes queued. */
START_TEST(test_alternating_sizes_stay_small)
{
    struct outq q = {0};
    struct model m = {0};
    uint32_t seed = 31;
    struct iovec iov[IOV_MAX_TEST];

    push_frame(&q, &m, 1000, 0, &seed);
    for (int i = 0; i < 100; i++) {
        push_frame(&q, &m, 2, 0, &seed);
        push_frame(&q, &m, 1000, 0, &seed);
    }
    int n = outq_iov(&q, iov, IOV_MAX_TEST, SIZE_MAX);
    ck_assert_int_eq(n, IOV_MAX_TEST);
    for (int i = 1; i < n; i += 2) {
        ck_assert_uint_eq(iov[i].iov_len, 2);
        /* the item's sbuf holds its two bytes, not OUTQ_COALESCE_CAP */
        struct sbuf *s = (struct sbuf *)((uint8_t *)iov[i].iov_base - offsetof(struct sbuf, data));
        EXPECT(malloc_usable_size(s) < 256, "a 2-byte buffer holds %zu bytes", malloc_usable_size(s));
        ck_assert_uint_eq(s->refs, 1);
    }
    drain(&q, &m, 4096);
    free(m.data);
}
END_TEST

START_TEST(test_clear_releases_everything)
{
    struct outq q = {0};
    struct sbuf *f[10];
    uint32_t seed = 37;

    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 10; i++) {
            f[i] = frame(i % 2 ? 10 : 1000, &seed);
            ck_assert_int_eq(outq_push(&q, f[i], 0), 0);
            ck_assert_int_eq(outq_push(&q, f[i], 5), 0);
        }
        outq_advance(&q, 3);
        outq_clear(&q);
        ck_assert(outq_empty(&q));
        ck_assert_ptr_null(q.items);
        ck_assert_uint_eq(outq_bytes(&q), 0);
        ck_assert_uint_eq(outq_cost(&q), 0);
        ck_assert_uint_eq(q.room, 0);
        for (int i = 0; i < 10; i++) {
            EXPECT(f[i]->refs == 1, "frame %d has %u references after clear", i, f[i]->refs);
            sbuf_unref(f[i]);
        }
    }
    ck_assert_uint_eq(outq_sent(&q), 9);
}
END_TEST

START_TEST(test_sent_wraps)
{
    struct outq q = {0};
    struct sbuf *s = sbuf_new(1000);

    memset(s->data, 0, 1000);
    q.sent = UINT32_MAX - 99;
    ck_assert_int_eq(outq_push(&q, s, 0), 0);
    outq_advance(&q, 300);
    ck_assert_uint_eq(outq_sent(&q), 200);
    outq_clear(&q);
    sbuf_unref(s);
}
END_TEST

static Suite *outq_suite(void)
{
    Suite *s = suite_create("outq");
    TCase *order = tcase_create("order");
    TCase *files = tcase_create("files");
    TCase *memory = tcase_create("memory");

    tcase_set_timeout(order, 30);
    tcase_add_test(order, test_empty_queue);
    tcase_add_test(order, test_ring_wrap_while_growing);
    tcase_add_test(order, test_partial_advance);
    tcase_add_test(order, test_iov_limits);
    tcase_add_test(order, test_drop_unsent);
    tcase_add_test(order, test_drop_unsent_coalesced);
    tcase_add_test(order, test_sent_wraps);
    suite_add_tcase(s, order);

    tcase_add_test(files, test_files);
    tcase_add_test(files, test_file_ends_coalescing);
    suite_add_tcase(s, files);

    tcase_set_timeout(memory, 30);
    tcase_add_test(memory, test_coalescing);
    tcase_add_test(memory, test_coalescing_while_writing);
    tcase_add_test(memory, test_cost_counts_items);
    tcase_add_test(memory, test_alternating_sizes_stay_small);
    tcase_add_test(memory, test_clear_releases_everything);
    suite_add_tcase(s, memory);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(outq_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
