/* test_redis_url: unit tests for src/redis_url.c: valid redis:// and unix://
 * forms with their defaults, percent-decoding, IPv6 in brackets; every
 * malformed form refused with its own reason (and never the password in it);
 * every truncation and single-byte mutation of valid URLs parsed without a
 * crash (run under ASan to prove no overrun); the description used in logs;
 * and the password file (one trailing newline dropped, nothing else). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redis_url.h"

#define EXPECT(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

struct valid_case {
    const char *text;
    int unix_socket;
    const char *host;
    int port;
    const char *path;
    const char *user;
    const char *password;
    int db;
};

static const struct valid_case valid[] = {
    {"redis://localhost", 0, "localhost", 6379, "", "", "", 0},
    {"redis://127.0.0.1:6380", 0, "127.0.0.1", 6380, "", "", "", 0},
    {"redis://127.0.0.1:6380/", 0, "127.0.0.1", 6380, "", "", "", 0},
    {"redis://redis.example.com/3", 0, "redis.example.com", 6379, "", "", "", 3},
    {"REDIS://Host_1-a:1/15", 0, "Host_1-a", 1, "", "", "", 15},
    {"redis://:secret@10.0.0.5:7000/2", 0, "10.0.0.5", 7000, "", "", "secret", 2},
    {"redis://secret@h", 0, "h", 6379, "", "", "secret", 0},
    {"redis://alice:s3cret@h:65535/2147483647", 0, "h", 65535, "", "alice", "s3cret", 2147483647},
    {"redis://:p%40ss%3Aw%2Fd%25@h", 0, "h", 6379, "", "", "p@ss:w/d%", 0},
    {"redis://:a@b@h", 0, "h", 6379, "", "", "a@b", 0},
    {"redis://us%20er:pw@h", 0, "h", 6379, "", "us er", "pw", 0},
    {"redis://[::1]", 0, "::1", 6379, "", "", "", 0},
    {"redis://[::1]:6390/1", 0, "::1", 6390, "", "", "", 1},
    {"redis://:pw@[2001:db8::7]:1234", 0, "2001:db8::7", 1234, "", "", "pw", 0},
    {"redis://[::ffff:127.0.0.1]:9", 0, "::ffff:127.0.0.1", 9, "", "", "", 0},
    {"unix:///run/redis/redis.sock", 1, "", 6379, "/run/redis/redis.sock", "", "", 0},
    {"unix:///tmp/r.sock?db=4", 1, "", 6379, "/tmp/r.sock", "", "", 4},
    {"unix:///tmp/a%20b.sock?db=0", 1, "", 6379, "/tmp/a b.sock", "", "", 0},
    {"unix://:pw@/tmp/r.sock", 1, "", 6379, "/tmp/r.sock", "", "pw", 0},
    {"unix://bob:pw@/tmp/r.sock?db=1&db=2", 1, "", 6379, "/tmp/r.sock", "bob", "pw", 2},
};

START_TEST(test_valid_forms)
{
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        const struct valid_case *c = &valid[i];
        struct redis_url u;
        char err[256] = "";
        EXPECT(redis_url_parse(c->text, &u, err, sizeof err) == 0, "%s: refused: %s", c->text, err);
        EXPECT(u.unix_socket == c->unix_socket, "%s: unix_socket %d", c->text, u.unix_socket);
        EXPECT(strcmp(u.host, c->host) == 0, "%s: host '%s'", c->text, u.host);
        EXPECT(u.port == c->port, "%s: port %d", c->text, u.port);
        EXPECT(strcmp(u.path, c->path) == 0, "%s: path '%s'", c->text, u.path);
        EXPECT(strcmp(u.user, c->user) == 0, "%s: user '%s'", c->text, u.user);
        EXPECT(strcmp(u.password, c->password) == 0, "%s: password '%s'", c->text, u.password);
        EXPECT(u.db == c->db, "%s: db %d", c->text, u.db);
    }
}
END_TEST

struct invalid_case {
    const char *text;
    const char *reason;     /* a piece of the expected reason */
};

static const struct invalid_case invalid[] = {
    {"", "empty"},
    {"localhost:6379", "not a Redis URL"},
    {"http://h", "unknown scheme"},
    {"rediss://h", "TLS"},
    {"redis://", "missing host"},
    {"redis:///2", "missing host"},
    {"redis://:pw@", "missing host"},
    {"redis://h:", "empty port"},
    {"redis://h:0", "port must be a number from 1 to 65535"},
    {"redis://h:65536", "port must be"},
    {"redis://h:99999999999999999999", "port must be"},
    {"redis://h:-1", "port must be"},
    {"redis://h:63x", "port must be"},
    {"redis://h/x", "database must be"},
    {"redis://h/-1", "database must be"},
    {"redis://h/2147483648", "database must be"},
    {"redis://h/1/2", "database must be"},
    {"redis://h?db=1", "no query"},
    {"redis://h/1?x", "no query"},
    {"redis://h#frag", "no fragment"},
    {"redis://h o", "space or a control character"},
    {"redis://h\t", "space or a control character"},
    {"redis://h%41", "bad character '%' in the host"},
    {"redis://h!", "bad character '!'"},
    {"redis://::1", "IPv6 address must be in brackets"},
    {"redis://[::1", "unclosed '['"},
    {"redis://[]", "bad IPv6"},
    {"redis://[zz::1]", "bad IPv6"},
    {"redis://[127.0.0.1]", "bad IPv6"},
    {"redis://[::1]x", "after ']'"},
    {"redis://[::1]:", "empty port"},
    {"redis://:@h", "empty password"},
    {"redis://user:@h", "empty password"},
    {"redis://@h", "empty password"},
    {"redis://:pw%4@h", "bad percent-encoding in the password"},
    {"redis://:pw%@h", "bad percent-encoding in the password"},
    {"redis://:pw%zz@h", "bad percent-encoding in the password"},
    {"redis://:p%00w@h", "password contains %00"},
    {"redis://u%4:pw@h", "bad percent-encoding in the user name"},
    {"unix://", "absolute path"},
    {"unix://relative.sock", "absolute path"},
    {"unix://localhost/tmp/r.sock", "absolute path"},
    {"unix:///tmp/r.sock?db=x", "database"},
    {"unix:///tmp/r.sock?db=", "database"},
    {"unix:///tmp/r.sock?password=x", "only db=N"},
    {"unix:///tmp/r.sock?db=1&", "only db=N"},
    {"unix:///tmp/r.sock?", "only db=N"},
    {"unix:///tmp/r.sock#x", "no fragment"},
    {"unix:///tmp/%zz", "bad percent-encoding in the socket path"},
    {"unix:///tmp/%00", "socket path contains %00"},
    {"unix://:@/tmp/r.sock", "empty password"},
};

START_TEST(test_invalid_forms)
{
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        const struct invalid_case *c = &invalid[i];
        struct redis_url u;
        char err[256] = "";
        EXPECT(redis_url_parse(c->text, &u, err, sizeof err) == -1, "%s: accepted", c->text);
        EXPECT(strstr(err, c->reason) != NULL, "%s: reason '%s', expected '%s'", c->text, err, c->reason);
    }
}
END_TEST

/* Overlong parts are refused by length, not by overrunning the struct. */
START_TEST(test_lengths)
{
    char text[2048], err[256];
    struct redis_url u;
    char host[REDIS_URL_HOST_MAX + 1], pw[REDIS_URL_PASSWORD_MAX + 1], path[REDIS_URL_PATH_MAX + 1];

    memset(host, 'h', sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(text, sizeof text, "redis://%s", host);
    ck_assert_int_eq(redis_url_parse(text, &u, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "host name is longer than 255 bytes"));
    host[sizeof host - 2] = '\0';       /* 255 bytes: fits */
    snprintf(text, sizeof text, "redis://%s", host);
    ck_assert_int_eq(redis_url_parse(text, &u, err, sizeof err), 0);
    ck_assert_uint_eq(strlen(u.host), 255);

    memset(pw, 'p', sizeof pw - 1);
    pw[sizeof pw - 1] = '\0';
    snprintf(text, sizeof text, "redis://:%s@h", pw);
    ck_assert_int_eq(redis_url_parse(text, &u, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "password is longer than 511 bytes"));
    ck_assert_ptr_null(strstr(err, "ppp"));
    pw[sizeof pw - 2] = '\0';
    snprintf(text, sizeof text, "redis://:%s@h", pw);
    ck_assert_int_eq(redis_url_parse(text, &u, err, sizeof err), 0);
    ck_assert_uint_eq(strlen(u.password), 511);

    memset(path, 'a', sizeof path - 1);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    snprintf(text, sizeof text, "unix://%s", path);
    ck_assert_int_eq(redis_url_parse(text, &u, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "socket path is longer than 107 bytes"));
}
END_TEST

/* No password, however it is spelled, shows in a reason. */
START_TEST(test_reason_hides_password)
{
    const char *texts[] = {"redis://:hunter2@h:0", "redis://:hunter2@[zz]", "redis://me:hunter2@h/x",
                           "redis://:hunter2@h?x", "unix://:hunter2@/s?q=1"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct redis_url u;
        char err[256] = "";
        ck_assert_int_eq(redis_url_parse(texts[i], &u, err, sizeof err), -1);
        EXPECT(err[0] && !strstr(err, "hunter2"), "%s: reason '%s'", texts[i], err);
    }
}
END_TEST

/* A parse either succeeds or gives a reason; a tiny err buffer is fine. */
static void parse_any(const char *text)
{
    struct redis_url u;
    char err[128] = "";
    char tiny[4];
    int r = redis_url_parse(text, &u, err, sizeof err);
    EXPECT(r == 0 || (r == -1 && err[0]), "'%s': %d with no reason", text, r);
    EXPECT(redis_url_parse(text, &u, tiny, sizeof tiny) == r, "'%s': result depends on the err size", text);
    EXPECT(redis_url_parse(text, &u, NULL, 0) == r, "'%s': result depends on err being there", text);
}

/* Every truncation of every valid form, then every byte of each replaced by
 * each character that means something to the parser. */
START_TEST(test_truncations_and_mutations)
{
    static const char specials[] = ":/@[]?#%&=.0a\x01\xff";
    char text[1024];
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        size_t n = strlen(valid[i].text);
        for (size_t cut = 0; cut <= n; cut++) {
            memcpy(text, valid[i].text, cut);
            text[cut] = '\0';
            parse_any(text);
        }
        for (size_t at = 0; at < n; at++)
            for (size_t k = 0; k < sizeof specials - 1; k++) {
                memcpy(text, valid[i].text, n + 1);
                text[at] = specials[k];
                parse_any(text);
            }
    }
}
END_TEST

START_TEST(test_describe)
{
    struct { const char *text, *want; } cases[] = {
        {"redis://:pw@h:7000", "redis://h:7000"},
        {"redis://u:pw@127.0.0.1/3", "redis://127.0.0.1:6379/3"},
        {"redis://[::1]:6380/1", "redis://[::1]:6380/1"},
        {"unix://:pw@/tmp/r.sock", "unix:///tmp/r.sock"},
        {"unix:///tmp/r.sock?db=9", "unix:///tmp/r.sock?db=9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct redis_url u;
        char out[128];
        ck_assert_int_eq(redis_url_parse(cases[i].text, &u, NULL, 0), 0);
        redis_url_describe(&u, out, sizeof out);
        ck_assert_str_eq(out, cases[i].want);
    }
    struct redis_url u;
    char small[8];
    ck_assert_int_eq(redis_url_parse("redis://a-long-host-name", &u, NULL, 0), 0);
    redis_url_describe(&u, small, sizeof small);
    ck_assert_str_eq(small, "redis:/");
}
END_TEST

/* Writes content to a fresh temporary file; returns its path (static). */
static const char *temp_file(const void *content, size_t n)
{
    static char path[64];
    strcpy(path, "/tmp/wshub-redis-pw-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, content, n), (ssize_t)n);
    close(fd);
    return path;
}

/* Reads content back as a password file: 0 with the password, or -1 with a
 * reason containing `reason`. */
static void check_password_file(const void *content, size_t n, const char *want, const char *reason)
{
    const char *path = temp_file(content, n);
    char out[REDIS_URL_PASSWORD_MAX], err[256] = "";
    int r = redis_password_file_read(path, out, sizeof out, err, sizeof err);
    unlink(path);
    if (want) {
        EXPECT(r == 0, "'%.*s': refused: %s", (int)n, (const char *)content, err);
        ck_assert_str_eq(out, want);
    } else {
        EXPECT(r == -1, "'%.*s': accepted", (int)n, (const char *)content);
        EXPECT(strstr(err, reason) != NULL, "reason '%s', expected '%s'", err, reason);
    }
}

START_TEST(test_password_file)
{
    check_password_file("secret", 6, "secret", NULL);
    check_password_file("secret\n", 7, "secret", NULL);
    check_password_file("secret\r\n", 8, "secret", NULL);
    check_password_file("s e\tc", 5, "s e\tc", NULL);
    check_password_file("secret\n\n", 8, NULL, "more than one line");
    check_password_file("sec\nret", 7, NULL, "more than one line");
    check_password_file("secret\r", 7, NULL, "more than one line");
    check_password_file("", 0, NULL, "is empty");
    check_password_file("\n", 1, NULL, "is empty");
    check_password_file("\r\n", 2, NULL, "is empty");
    check_password_file("se\0ret\n", 7, NULL, "NUL byte");

    char big[5000];
    memset(big, 'x', sizeof big);
    char want[REDIS_URL_PASSWORD_MAX];
    memset(want, 'x', sizeof want - 1);
    want[sizeof want - 1] = '\0';
    check_password_file(big, REDIS_URL_PASSWORD_MAX - 1, want, NULL);
    check_password_file(big, REDIS_URL_PASSWORD_MAX, NULL, "longer than 511 bytes");
    check_password_file(big, sizeof big, NULL, "longer than 4096 bytes");
}
END_TEST

START_TEST(test_password_file_errors)
{
    char out[16], err[256] = "";
    ck_assert_int_eq(redis_password_file_read("/nonexistent/wshub-pw", out, sizeof out, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "cannot read the password file /nonexistent/wshub-pw"));
    ck_assert_int_eq(redis_password_file_read("/tmp", out, sizeof out, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "cannot read"));

    const char *path = temp_file("0123456789abcdef\n", 17);    /* 16 bytes: one too many for out */
    ck_assert_int_eq(redis_password_file_read(path, out, sizeof out, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "longer than 15 bytes"));
    unlink(path);
    path = temp_file("0123456789abcde\n", 16);
    ck_assert_int_eq(redis_password_file_read(path, out, sizeof out, err, sizeof err), 0);
    ck_assert_str_eq(out, "0123456789abcde");
    unlink(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("redis_url");
    TCase *tc = tcase_create("redis_url");
    tcase_add_test(tc, test_valid_forms);
    tcase_add_test(tc, test_invalid_forms);
    tcase_add_test(tc, test_lengths);
    tcase_add_test(tc, test_reason_hides_password);
    tcase_add_test(tc, test_truncations_and_mutations);
    tcase_add_test(tc, test_describe);
    tcase_add_test(tc, test_password_file);
    tcase_add_test(tc, test_password_file_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
