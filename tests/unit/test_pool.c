/* Unit tests for src/pool.c: fixed-size object pool. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

START_TEST(alloc_is_zeroed_aligned_and_distinct)
{
    struct pool p;
    pool_init(&p, 20, 4);
    void *objs[10];
    for (int i = 0; i < 10; i++) {
        objs[i] = pool_alloc(&p);
        ck_assert_ptr_nonnull(objs[i]);
        ck_assert_uint_eq((uintptr_t)objs[i] % 8, 0);
        for (int k = 0; k < 20; k++)
            ck_assert_uint_eq(((unsigned char *)objs[i])[k], 0);
        memset(objs[i], 0xAB, 20);   /* writing a whole object must not touch its neighbours */
        for (int j = 0; j < i; j++)
            ck_assert_ptr_ne(objs[i], objs[j]);
    }
    for (int i = 0; i < 10; i++)
        for (int k = 0; k < 20; k++)
            ck_assert_uint_eq(((unsigned char *)objs[i])[k], 0xAB);
    for (int i = 0; i < 10; i++)
        pool_free(&p, objs[i]);
    pool_destroy(&p);
}
END_TEST

START_TEST(freed_object_comes_back_zeroed)
{
    struct pool p;
    pool_init(&p, 64, 8);
    unsigned char *a = pool_alloc(&p);
    memset(a, 0x5A, 64);
    pool_free(&p, a);
    unsigned char *b = pool_alloc(&p);
    ck_assert_ptr_nonnull(b);
    for (int k = 0; k < 64; k++)
        ck_assert_uint_eq(b[k], 0);
    pool_free(&p, b);
    pool_free(&p, NULL);
    pool_destroy(&p);
}
END_TEST

START_TEST(tiny_objects_still_hold_a_link)
{
    struct pool p;
    pool_init(&p, 1, 3);
    ck_assert_uint_ge(p.size, sizeof(void *));
    void *a = pool_alloc(&p), *b = pool_alloc(&p), *c = pool_alloc(&p), *d = pool_alloc(&p);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_ne(c, d);
    pool_free(&p, a);
    pool_free(&p, b);
    pool_free(&p, c);
    pool_free(&p, d);
    pool_destroy(&p);
}
END_TEST

START_TEST(many_objects_across_chunks)
{
    struct pool p;
    pool_init(&p, 216, 64);
    enum { N = 5000 };
    void **objs = calloc(N, sizeof(*objs));
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            objs[i] = pool_alloc(&p);
            ck_assert_ptr_nonnull(objs[i]);
            memcpy(objs[i], &i, sizeof(i));
        }
        for (int i = 0; i < N; i++) {
            int v;
            memcpy(&v, objs[i], sizeof(v));
            ck_assert_int_eq(v, i);
        }
        for (int i = N; i-- > 0;)
            pool_free(&p, objs[i]);
    }
    free(objs);
    pool_destroy(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_add_test(tc, alloc_is_zeroed_aligned_and_distinct);
    tcase_add_test(tc, freed_object_comes_back_zeroed);
    tcase_add_test(tc, tiny_objects_still_hold_a_link);
    tcase_add_test(tc, many_objects_across_chunks);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
