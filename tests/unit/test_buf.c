/* test_buf: unit tests for src/buf.c: growable byte buffers (reserve, append,
 * consume, free, geometric growth, failure leaves the buffer unchanged) and
 * reference-counted shared buffers (sbuf_new/ref/unref). Run under
 * -fsanitize=address to prove that the last unref frees and nothing leaks. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define EXPECT(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

START_TEST(test_zeroed_is_empty)
{
    struct buf b = {0};

    ck_assert_uint_eq(b.len, 0);
    buf_free(&b);                       /* freeing an empty buffer is fine */
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    ck_assert_int_eq(buf_append(&b, "x", 0), 0);
    ck_assert_uint_eq(b.len, 0);
    buf_free(&b);
}
END_TEST

START_TEST(test_append_and_free)
{
    struct buf b = {0};

    ck_assert_int_eq(buf_append(&b, "abc", 3), 0);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_uint_ge(b.cap, 3);
    ck_assert_mem_eq(b.data, "abc", 3);
    ck_assert_int_eq(buf_append(&b, "defgh", 5), 0);
    ck_assert_uint_eq(b.len, 8);
    ck_assert_mem_eq(b.data, "abcdefgh", 8);
    buf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    buf_free(&b);                       /* twice is fine */
    /* usable again after free */
    ck_assert_int_eq(buf_append(&b, "z", 1), 0);
    ck_assert_uint_eq(b.len, 1);
    ck_assert_uint_eq(b.data[0], 'z');
    buf_free(&b);
}
END_TEST

/* A large append in one go, then more, across several growth steps. */
START_TEST(test_growth_large)
{
    struct buf b = {0};
    size_t sizes[] = {1, 63, 64, 65, 1000, 4096, 100000, 3};
    size_t total = 0;
    uint8_t *src = malloc(100000);

    for (size_t i = 0; i < 100000; i++)
        src[i] = (uint8_t)(i * 7 + 3);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        ck_assert_int_eq(buf_append(&b, src, sizes[i]), 0);
        total += sizes[i];
        ck_assert_uint_eq(b.len, total);
        ck_assert_uint_ge(b.cap, b.len);
    }
    /* check every chunk */
    {
        size_t at = 0;
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            ck_assert_mem_eq(b.data + at, src, sizes[i]);
            at += sizes[i];
        }
    }
    buf_free(&b);
    free(src);
}
END_TEST

/* 10000 small appends keep every byte, and growth is geometric: the buffer
 * is reallocated O(log n) times, not once per append. */
START_TEST(test_many_small_appends)
{
    struct buf b = {0};
    size_t grows = 0, last_cap = 0, total = 0;

    for (size_t i = 0; i < 10000; i++) {
        uint8_t chunk[7];
        size_t n = i % 7 + 1;
        for (size_t k = 0; k < n; k++)
            chunk[k] = (uint8_t)(i + k);
        EXPECT(buf_append(&b, chunk, n) == 0, "append %zu failed", i);
        total += n;
        EXPECT(b.len == total && b.cap >= b.len, "append %zu: len %zu cap %zu", i, (size_t)b.len, (size_t)b.cap);
        if (b.cap != last_cap) {
            grows++;
            last_cap = b.cap;
        }
    }
    {
        size_t at = 0;
        for (size_t i = 0; i < 10000; i++) {
            size_t n = i % 7 + 1;
            for (size_t k = 0; k < n; k++)
                EXPECT(b.data[at + k] == (uint8_t)(i + k), "byte %zu of append %zu changed", k, i);
            at += n;
        }
        ck_assert_uint_eq(at, total);
    }
    ck_assert_uint_le(grows, 24);
    ck_assert_uint_le(b.cap, 4 * total);   /* not wildly over-allocated */
    buf_free(&b);
}
END_TEST

START_TEST(test_reserve)
{
    struct buf b = {0};
    uint8_t *before;

    ck_assert_int_eq(buf_reserve(&b, 100), 0);
    ck_assert_uint_ge(b.cap - b.len, 100);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(buf_append(&b, "hello", 5), 0);
    ck_assert_int_eq(buf_reserve(&b, 1000), 0);
    ck_assert_uint_ge(b.cap - b.len, 1000);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_mem_eq(b.data, "hello", 5);
    /* reserving what is already there does not move the data */
    before = b.data;
    ck_assert_int_eq(buf_reserve(&b, 10), 0);
    ck_assert_ptr_eq(b.data, before);
    /* the reserved room can be written (ASan checks it really is allocated) */
    memset(b.data + b.len, 'x', b.cap - b.len);
    buf_free(&b);
}
END_TEST

/* An impossible size fails with -1 and leaves the buffer as it was (a buffer
 * holds at most 4 GiB, buf.h). */
START_TEST(test_append_failure_leaves_buffer)
{
    struct buf b = {0};
    uint8_t *data;
    size_t cap;

    ck_assert_int_eq(buf_append(&b, "keep", 4), 0);
    data = b.data;
    cap = b.cap;
    ck_assert_int_eq(buf_reserve(&b, SIZE_MAX), -1);
    ck_assert_int_eq(buf_reserve(&b, SIZE_MAX - 2), -1);
    ck_assert_int_eq(buf_reserve(&b, UINT32_MAX), -1);            /* 4 + 4 GiB - 1: past the 4 GiB limit */
    ck_assert_int_eq(buf_append(&b, "x", (size_t)UINT32_MAX), -1);
    ck_assert_ptr_eq(b.data, data);
    ck_assert_uint_eq(b.cap, cap);
    ck_assert_uint_eq(b.len, 4);
    ck_assert_mem_eq(b.data, "keep", 4);
    buf_free(&b);
}
END_TEST

START_TEST(test_consume)
{
    struct buf b = {0};

    ck_assert_int_eq(buf_append(&b, "0123456789", 10), 0);
    buf_consume(&b, 0);
    ck_assert_uint_eq(b.len, 10);
    ck_assert_mem_eq(b.data, "0123456789", 10);
    buf_consume(&b, 3);
    ck_assert_uint_eq(b.len, 7);
    ck_assert_mem_eq(b.data, "3456789", 7);
    buf_consume(&b, 6);
    ck_assert_uint_eq(b.len, 1);
    ck_assert_uint_eq(b.data[0], '9');
    buf_consume(&b, 1);
    ck_assert_uint_eq(b.len, 0);
    /* appending after consuming everything starts at the front */
    ck_assert_int_eq(buf_append(&b, "ab", 2), 0);
    ck_assert_uint_eq(b.len, 2);
    ck_assert_mem_eq(b.data, "ab", 2);
    buf_free(&b);
}
END_TEST

/* A connection's input pattern: append pieces, consume parsed prefixes; the
 * content is always the unconsumed tail of everything appended. */
START_TEST(test_append_consume_interleaved)
{
    struct buf b = {0};
    uint8_t all[20000];
    size_t appended = 0, consumed = 0;
    unsigned x = 1;

    for (size_t i = 0; i < sizeof all; i++)
        all[i] = (uint8_t)(i ^ (i >> 8));
    while (appended < sizeof all) {
        size_t n, c;
        x = x * 1103515245u + 12345u;
        n = (x >> 16) % 300;
        if (n > sizeof all - appended)
            n = sizeof all - appended;
        EXPECT(buf_append(&b, all + appended, n) == 0, "append failed");
        appended += n;
        x = x * 1103515245u + 12345u;
        c = b.len ? (x >> 16) % (b.len + 1) : 0;
        buf_consume(&b, c);
        consumed += c;
        EXPECT(b.len == appended - consumed, "len %zu, expected %zu", (size_t)b.len, appended - consumed);
        EXPECT(b.len == 0 || memcmp(b.data, all + consumed, b.len) == 0, "content differs after consuming %zu",
               consumed);
    }
    buf_free(&b);
}
END_TEST

START_TEST(test_sbuf_basic)
{
    struct sbuf *s = sbuf_new(100);

    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->refs, 1);
    ck_assert_uint_eq(s->len, 100);
    memset(s->data, 0xab, 100);   /* all 100 bytes are writable (ASan) */
    ck_assert_ptr_eq(sbuf_ref(s), s);
    ck_assert_uint_eq(s->refs, 2);
    sbuf_unref(s);
    ck_assert_uint_eq(s->refs, 1);
    ck_assert_uint_eq(s->data[99], 0xab);
    sbuf_unref(s);                /* freed here: LSan reports a leak otherwise */
    sbuf_unref(NULL);             /* ignored */
}
END_TEST

START_TEST(test_sbuf_empty_and_huge)
{
    struct sbuf *s = sbuf_new(0);

    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->len, 0);
    ck_assert_uint_eq(s->refs, 1);
    sbuf_unref(s);
    /* a length that cannot be represented (len is 32-bit) or allocated */
    ck_assert_ptr_null(sbuf_new(SIZE_MAX));
    ck_assert_ptr_null(sbuf_new(SIZE_MAX - 64));
}
END_TEST

/* One frame shared by 1000 queues: it lives until the last unref. */
START_TEST(test_sbuf_many_refs)
{
    struct sbuf *s = sbuf_new(16);
    struct sbuf *holders[1000];

    ck_assert_ptr_nonnull(s);
    memcpy(s->data, "shared frame 16b", 16);
    for (int i = 0; i < 1000; i++)
        holders[i] = sbuf_ref(s);
    ck_assert_uint_eq(s->refs, 1001);
    sbuf_unref(s);                /* the creator lets go first */
    for (int i = 0; i < 999; i++) {
        sbuf_unref(holders[i]);
        EXPECT(holders[999]->refs == (uint32_t)(999 - i), "refs %u after %d unrefs", holders[999]->refs, i + 2);
        EXPECT(memcmp(holders[999]->data, "shared frame 16b", 16) == 0, "data changed while referenced");
    }
    sbuf_unref(holders[999]);     /* the last one frees it */
}
END_TEST

/* Every size gets a class at least as large, within a quarter of it, and the
 * classes only grow with the size; above BUF_CLASS_MAX a block is exact. */
START_TEST(test_block_classes)
{
    size_t prev = 0;

    for (size_t n = 1; n <= BUF_CLASS_MAX + 100; n++) {
        size_t b = buf_block_size(n);
        EXPECT(b >= n, "size %zu got a %zu-byte block", n, b);
        EXPECT(b >= prev, "size %zu got %zu, below %zu for a smaller size", n, b, prev);
        if (n > 32)
            EXPECT(b - n < n / 4 + 1, "size %zu rounds up to %zu", n, b);
        if (n > BUF_CLASS_MAX)
            EXPECT(b == n, "size %zu above the classes got %zu", n, b);
        prev = b;
    }
    ck_assert_uint_eq(buf_block_size(32), 32);
    ck_assert_uint_eq(buf_block_size(33), 40);
    ck_assert_uint_eq(buf_block_size(1036), 1280);
    ck_assert_uint_eq(buf_block_size(BUF_CLASS_MAX), BUF_CLASS_MAX);
}
END_TEST

/* A block is usable over its whole class size, and an sbuf's cap says so. */
START_TEST(test_block_whole_size_usable)
{
    for (size_t n = 1; n <= 70000; n = n * 3 / 2 + 1) {
        uint8_t *p = buf_block_alloc(n);
        ck_assert_ptr_nonnull(p);
        memset(p, 0xA5, buf_block_size(n));
        buf_block_free(p, n);
        struct sbuf *s = sbuf_new(n);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_ge(s->cap, n);
        ck_assert_uint_eq(s->cap + sizeof(struct sbuf), buf_block_size(n + sizeof(struct sbuf)));
        memset(s->data, 0x5A, s->cap);
        sbuf_unref(s);
    }
}
END_TEST

/* After a burst of frees the lists hold no more than their caps, per class
 * and in all, whatever was freed; taking the blocks again empties them. */
START_TEST(test_cache_bounded_after_burst)
{
    enum { N = 4000 };
    static const size_t sizes[] = {40, 1036, 4096, 20000, 65536};
    static void *blocks[N];

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t before = buf_cache_bytes();
        for (int i = 0; i < N; i++) {
            blocks[i] = buf_block_alloc(sizes[k]);
            ck_assert_ptr_nonnull(blocks[i]);
        }
        for (int i = 0; i < N; i++)
            buf_block_free(blocks[i], sizes[k]);
        size_t held = buf_cache_bytes();
        EXPECT(held <= BUF_CACHE_MAX, "size %zu: %zu bytes held in all", sizes[k], held);
        EXPECT(held <= before + BUF_CACHE_CLASS_MAX, "size %zu: %zu bytes held in its class", sizes[k],
               held - before);
    }
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        for (int i = 0; i < N; i++)
            blocks[i] = buf_block_alloc(sizes[k]);
        for (int i = 0; i < N; i++)
            free(blocks[i]);   /* a cached block is a plain malloc'd block */
    }
    ck_assert_uint_eq(buf_cache_bytes(), 0);
}
END_TEST

/* A trim gives back what stayed on the lists since the previous trim, and
 * keeps a block that is taken and given back in between. */
START_TEST(test_cache_trim)
{
    enum { N = 100 };
    void *blocks[N];

    buf_cache_trim();
    buf_cache_trim();
    ck_assert_uint_eq(buf_cache_bytes(), 0);
    for (int i = 0; i < N; i++)
        blocks[i] = buf_block_alloc(1000);
    for (int i = 0; i < N; i++)
        buf_block_free(blocks[i], 1000);
    size_t burst = buf_cache_bytes();
#if !defined(__SANITIZE_ADDRESS__)
    ck_assert_uint_eq(burst, N * buf_block_size(1000));
#endif
    buf_cache_trim();                         /* they were in use since the last trim */
    ck_assert_uint_eq(buf_cache_bytes(), burst);
    for (int round = 0; round < 3; round++) {  /* one block in steady use */
        void *p = buf_block_alloc(1000);
        ck_assert_ptr_nonnull(p);
        buf_block_free(p, 1000);
        buf_cache_trim();
        EXPECT(buf_cache_bytes() == (burst ? buf_block_size(1000) : 0), "round %d: %zu bytes held", round,
               buf_cache_bytes());
    }
    buf_cache_trim();                         /* unused for a whole period */
    ck_assert_uint_eq(buf_cache_bytes(), 0);
}
END_TEST

static Suite *buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *b = tcase_create("buf");
    TCase *sb = tcase_create("sbuf");

    tcase_add_test(b, test_zeroed_is_empty);
    tcase_add_test(b, test_append_and_free);
    tcase_add_test(b, test_growth_large);
    tcase_add_test(b, test_many_small_appends);
    tcase_add_test(b, test_reserve);
    tcase_add_test(b, test_append_failure_leaves_buffer);
    tcase_add_test(b, test_consume);
    tcase_add_test(b, test_append_consume_interleaved);
    suite_add_tcase(s, b);

    tcase_add_test(sb, test_sbuf_basic);
    tcase_add_test(sb, test_sbuf_empty_and_huge);
    tcase_add_test(sb, test_sbuf_many_refs);
    tcase_add_test(sb, test_block_classes);
    tcase_add_test(sb, test_block_whole_size_usable);
    tcase_add_test(sb, test_cache_bounded_after_burst);
    tcase_add_test(sb, test_cache_trim);
    suite_add_tcase(s, sb);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(buf_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
