/* test_response: unit tests for src/response.c: exact response heads for
 * 200/404/101, keep-alive and close, NULL headers, every too-small buffer
 * (checked by ASan with buffers of exactly cap bytes), the IMF-fixdate for
 * known instants and against gmtime_r for many, and the one-second date cache. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "response.h"

#define EXPECT(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

#define DATE "Thu, 01 Jan 1970 00:00:00 GMT"

/* Builds the head into a buffer of exactly cap bytes and returns a copy of it
 * (NULL when response_head refused). */
static char *head_in(size_t cap, size_t *len, int status, const char *headers, size_t content_length, int keep_alive)
{
    char *out = malloc(cap ? cap : 1);
    *len = response_head(cap ? out : NULL, cap, status, headers, content_length, keep_alive, DATE);
    char *copy = *len ? strndup(out, *len) : NULL;
    free(out);
    return copy;
}

static void check_head(int status, const char *headers, size_t content_length, int keep_alive, const char *want)
{
    size_t want_len = strlen(want), len;
    char *got = head_in(1024, &len, status, headers, content_length, keep_alive);

    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(len, want_len);
    ck_assert_str_eq(got, want);
    free(got);
    /* every buffer too small for the head and its NUL is refused, none overrun */
    for (size_t cap = 0; cap <= want_len; cap++) {
        got = head_in(cap, &len, status, headers, content_length, keep_alive);
        EXPECT(len == 0 && got == NULL, "status %d: cap %zu of %zu returned %zu", status, cap, want_len, len);
    }
    got = head_in(want_len + 1, &len, status, headers, content_length, keep_alive);
    ck_assert_uint_eq(len, want_len);
    ck_assert_str_eq(got, want);
    free(got);
}

START_TEST(test_head_200_keep_alive)
{
    check_head(200, "Content-Type: text/html\r\nLast-Modified: " DATE "\r\n", 1234, 1,
               "HTTP/1.1 200 OK\r\nServer: wshub\r\nDate: " DATE "\r\n"
               "Content-Type: text/html\r\nLast-Modified: " DATE "\r\n"
               "Content-Length: 1234\r\nConnection: keep-alive\r\n\r\n");
}
END_TEST

START_TEST(test_head_404_close)
{
    check_head(404, "Content-Type: text/plain; charset=utf-8\r\n", 10, 0,
               "HTTP/1.1 404 Not Found\r\nServer: wshub\r\nDate: " DATE "\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n"
               "Content-Length: 10\r\nConnection: close\r\n\r\n");
}
END_TEST

START_TEST(test_head_null_and_empty_headers)
{
    const char *want = "HTTP/1.1 503 Service Unavailable\r\nServer: wshub\r\nDate: " DATE "\r\n"
                       "Content-Length: 0\r\nConnection: close\r\n\r\n";
    check_head(503, NULL, 0, 0, want);
    check_head(503, "", 0, 0, want);
    check_head(299, NULL, SIZE_MAX, 1,
               "HTTP/1.1 299 Unknown\r\nServer: wshub\r\nDate: " DATE "\r\n"
               "Content-Length: 18446744073709551615\r\nConnection: keep-alive\r\n\r\n");
}
END_TEST

START_TEST(test_head_101)
{
    check_head(101, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
               0, 1,
               "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
    /* no Date, Server, Content-Length or Connection of its own, whatever the other arguments */
    check_head(101, NULL, 99, 0, "HTTP/1.1 101 Switching Protocols\r\n\r\n");
    size_t len = response_head(NULL, 0, 101, NULL, 0, 1, NULL);
    ck_assert_uint_eq(len, 0);
    char out[64];
    ck_assert_uint_eq(response_head(out, sizeof(out), 101, NULL, 0, 1, NULL), 36);
}
END_TEST

START_TEST(test_date_known_values)
{
    static const struct {
        int64_t t;
        const char *text;
    } cases[] = {
        {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
        {784111777, "Sun, 06 Nov 1994 08:49:37 GMT"},   /* RFC 9110's example */
        {1796589511, "Sun, 06 Dec 2026 20:38:31 GMT"},
        {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
        {951868799, "Tue, 29 Feb 2000 23:59:59 GMT"},
        {2147483647, "Tue, 19 Jan 2038 03:14:07 GMT"},
        {2147483648, "Tue, 19 Jan 2038 03:14:08 GMT"},
        {4294967296, "Sun, 07 Feb 2106 06:28:16 GMT"},
        {-1, "Wed, 31 Dec 1969 23:59:59 GMT"},
        {-86400, "Wed, 31 Dec 1969 00:00:00 GMT"},
        {-2203848000, "Thu, 01 Mar 1900 12:00:00 GMT"},
        {-62135596800, "Mon, 01 Jan 0001 00:00:00 GMT"},
        {253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"},
        {253402300800, "Fri, 31 Dec 9999 23:59:59 GMT"},   /* clamped: IMF-fixdate has 4-digit years */
        {INT64_MAX, "Fri, 31 Dec 9999 23:59:59 GMT"},
        {INT64_MIN, "Sat, 01 Jan 0000 00:00:00 GMT"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct response_date d = {0};
        ck_assert_str_eq(response_date(&d, (time_t)cases[i].t), cases[i].text);
    }
}
END_TEST

/* Agrees with the C library for instants spread over 1970-9999. */
START_TEST(test_date_matches_gmtime)
{
    struct response_date d = {0};
    uint64_t x = 88172645463325252ull;

    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        time_t t = (time_t)(x % 253402300800ull);
        if (i < 1000)
            t = (time_t)(951696000 + i * 86399LL);   /* around a leap day, second by second of the day */
        struct tm tm;
        char want[64];
        gmtime_r(&t, &tm);
        strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        EXPECT(strcmp(response_date(&d, t), want) == 0, "%lld: %s, want %s", (long long)t, d.text, want);
    }
}
END_TEST

START_TEST(test_date_cache)
{
    struct response_date d = {0};

    /* zero-initialised: the first call formats even for second 0 */
    const char *a = response_date(&d, 0);
    ck_assert_str_eq(a, "Thu, 01 Jan 1970 00:00:00 GMT");
    ck_assert_ptr_eq(a, d.text);
    /* the same second is not formatted again: a mark in the cache survives */
    d.text[0] = 'X';
    const char *b = response_date(&d, 0);
    ck_assert_ptr_eq(b, a);
    ck_assert_str_eq(b, "Xhu, 01 Jan 1970 00:00:00 GMT");
    /* a new second is */
    ck_assert_str_eq(response_date(&d, 1), "Thu, 01 Jan 1970 00:00:01 GMT");
    ck_assert_str_eq(response_date(&d, 1), "Thu, 01 Jan 1970 00:00:01 GMT");
    ck_assert_str_eq(response_date(&d, 1796589511), "Sun, 06 Dec 2026 20:38:31 GMT");
    d.text[5] = '?';
    ck_assert_str_eq(response_date(&d, 1796589511), "Sun, ?6 Dec 2026 20:38:31 GMT");
    /* going back a second counts as a change too */
    ck_assert_str_eq(response_date(&d, 1796589510), "Sun, 06 Dec 2026 20:38:30 GMT");
    ck_assert_uint_eq(strlen(d.text), 29);
}
END_TEST

START_TEST(test_head_with_cached_date)
{
    struct response_date d = {0};
    char out[256];
    size_t n = response_head(out, sizeof(out), 200, "Content-Type: text/plain\r\n", 3, 1,
                             response_date(&d, 1796589511));

    ck_assert_uint_eq(n, strlen(out));
    ck_assert_str_eq(out, "HTTP/1.1 200 OK\r\nServer: wshub\r\nDate: Sun, 06 Dec 2026 20:38:31 GMT\r\n"
                          "Content-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n");
}
END_TEST

static Suite *response_suite(void)
{
    Suite *s = suite_create("response");
    TCase *head = tcase_create("head");
    TCase *date = tcase_create("date");

    tcase_add_test(head, test_head_200_keep_alive);
    tcase_add_test(head, test_head_404_close);
    tcase_add_test(head, test_head_null_and_empty_headers);
    tcase_add_test(head, test_head_101);
    tcase_add_test(head, test_head_with_cached_date);
    suite_add_tcase(s, head);

    tcase_set_timeout(date, 30);
    tcase_add_test(date, test_date_known_values);
    tcase_add_test(date, test_date_matches_gmtime);
    tcase_add_test(date, test_date_cache);
    suite_add_tcase(s, date);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(response_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
