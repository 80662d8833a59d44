/* Unit tests for src/cidr.c: address range parsing and matching. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"

static struct sockaddr_storage v4(const char *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    ck_assert_int_eq(inet_pton(AF_INET, a, &sin->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    ck_assert_int_eq(inet_pton(AF_INET6, a, &sin6->sin6_addr), 1);
    return ss;
}

static int matches(const char *range, struct sockaddr_storage ss)
{
    struct cidr c;
    ck_assert_msg(cidr_parse(range, &c) == 0, "range %s did not parse", range);
    return cidr_match_any(&c, 1, (struct sockaddr *)&ss);
}

START_TEST(parse_accepts_and_rejects)
{
    struct cidr c;
    ck_assert_int_eq(cidr_parse("127.0.0.0/8", &c), 0);
    ck_assert_uint_eq(c.bits, 8);
    ck_assert_uint_eq(c.v6, 0);
    ck_assert_int_eq(cidr_parse("10.1.2.3", &c), 0);
    ck_assert_uint_eq(c.bits, 32);
    ck_assert_int_eq(cidr_parse("::1", &c), 0);
    ck_assert_uint_eq(c.bits, 128);
    ck_assert_uint_eq(c.v6, 1);
    ck_assert_int_eq(cidr_parse("fd00::/8", &c), 0);
    ck_assert_int_eq(cidr_parse("0.0.0.0/0", &c), 0);
    const char *bad[] = {"", "/8", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x",
                         "10.0.0", "example.com", "10.0.0.0/ 8", "1.2.3.4/+8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(cidr_parse(bad[i], &c) == -1, "%s accepted", bad[i]);
}
END_TEST

START_TEST(match_v4_prefixes)
{
    ck_assert(matches("127.0.0.0/8", v4("127.0.0.1")));
    ck_assert(matches("127.0.0.0/8", v4("127.255.1.2")));
    ck_assert(!matches("127.0.0.0/8", v4("128.0.0.1")));
    ck_assert(matches("10.1.2.3", v4("10.1.2.3")));
    ck_assert(!matches("10.1.2.3", v4("10.1.2.4")));
    ck_assert(matches("192.168.4.0/22", v4("192.168.7.255")));
    ck_assert(!matches("192.168.4.0/22", v4("192.168.8.0")));
    ck_assert(matches("0.0.0.0/0", v4("8.8.8.8")));
}
END_TEST

START_TEST(match_v6_and_mapped)
{
    ck_assert(matches("::1", v6("::1")));
    ck_assert(!matches("::1", v6("::2")));
    ck_assert(matches("fd00::/8", v6("fd12:3456::1")));
    ck_assert(!matches("fd00::/8", v6("fe80::1")));
    /* IPv4-mapped IPv6 peers (a socket bound to ::) count as IPv4 */
    ck_assert(matches("127.0.0.0/8", v6("::ffff:127.0.0.1")));
    ck_assert(!matches("::1", v4("127.0.0.1")));
    ck_assert(!matches("127.0.0.0/8", v6("::1")));
}
END_TEST

START_TEST(match_any_of_a_list)
{
    struct cidr list[2];
    ck_assert_int_eq(cidr_parse("10.0.0.0/8", &list[0]), 0);
    ck_assert_int_eq(cidr_parse("::1", &list[1]), 0);
    struct sockaddr_storage a = v4("10.9.9.9"), b = v6("::1"), c = v4("11.0.0.1");
    ck_assert(cidr_match_any(list, 2, (struct sockaddr *)&a));
    ck_assert(cidr_match_any(list, 2, (struct sockaddr *)&b));
    ck_assert(!cidr_match_any(list, 2, (struct sockaddr *)&c));
    ck_assert(!cidr_match_any(list, 0, (struct sockaddr *)&a));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cidr");
    TCase *tc = tcase_create("cidr");
    tcase_add_test(tc, parse_accepts_and_rejects);
    tcase_add_test(tc, match_v4_prefixes);
    tcase_add_test(tc, match_v6_and_mapped);
    tcase_add_test(tc, match_any_of_a_list);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
