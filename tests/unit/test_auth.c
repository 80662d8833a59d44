/* test_auth: unit tests for src/auth.c, the token policy, over requests
 * parsed by http_parse_request and HS256 tokens signed with jwt_sign_hs256:
 * where the token is found (Authorization first, then the bearer.
 * subprotocol among others and over several headers, then ?token=), the
 * refusals and their WWW-Authenticate lines, guests and private rooms, the
 * rooms claim, the secret file rules, and that no reason or header ever holds
 * the token. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"

#define SECRET "unit-test-secret"
#define NOW ((int64_t)1800000000)

static char secret_path[64];
static char tok_all[1024], tok_rooms[1024], tok_other_key[1024];
static const char patterns[][AUTH_PATTERN_MAX] = {"staff*", "board"};

static void sign(const char *secret, const char *claims, char *out)
{
    struct jwt_key *k = jwt_key_secret((const uint8_t *)secret, strlen(secret));
    ck_assert_ptr_nonnull(k);
    ck_assert_uint_gt(jwt_sign_hs256(k, claims, out, 1024), 0);
    jwt_key_free(k);
}

static void setup(void)
{
    strcpy(secret_path, "/tmp/wshub-test-auth-XXXXXX");
    int fd = mkstemp(secret_path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, SECRET "\r\n", strlen(SECRET) + 2), (long)strlen(SECRET) + 2);
    close(fd);
    sign(SECRET, "{\"sub\":\"u1\",\"exp\":1800000600}", tok_all);
    sign(SECRET, "{\"sub\":\"u2\",\"rooms\":[\"team-*\",\"lobby\"]}", tok_rooms);
    sign("another", "{\"sub\":\"u3\"}", tok_other_key);
}

static void teardown(void)
{
    unlink(secret_path);
}

static struct auth *make(int anonymous)
{
    struct auth_config cfg = {.secret_file = secret_path, .allow_anonymous = anonymous,
                              .private_rooms = patterns, .n_private_rooms = 2};
    char err[256];
    struct auth *a = auth_new(&cfg, err, sizeof(err));
    ck_assert_msg(a != NULL, "%s", err);
    return a;
}

/* Parses "GET target" with the header lines in headers (CRLF-separated). */
struct parsed {
    char buf[8192];
    struct http_request req;
};

static void parse(struct parsed *p, const char *target, const char *headers)
{
    int n = snprintf(p->buf, sizeof(p->buf), "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", target, headers);
    size_t scanned = 0;
    ck_assert_int_gt(http_parse_request(p->buf, (size_t)n, &scanned, sizeof(p->buf), &p->req), 0);
}

static void decide(struct auth *a, const char *target, const char *headers, const char *room,
                   struct auth_result *r)
{
    struct parsed p;
    parse(&p, target, headers);
    auth_decide(a, &p.req, room, NOW, r);
    ck_assert_ptr_null(strstr(r->header, tok_all));
    if (r->reason)
        ck_assert_ptr_null(strstr(r->reason, "eyJ"));
}

START_TEST(token_from_each_place)
{
    struct auth *a = make(0);
    struct auth_result r;
    char h[4096];
    snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", tok_all);
    decide(a, "/ws/x", h, "x", &r);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(r.authenticated, 1);
    ck_assert_str_eq(r.claims.sub, "u1");
    ck_assert_str_eq(r.header, "");
    snprintf(h, sizeof(h), "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: wshub ,  bearer.%s , x\r\n",
             tok_all);
    decide(a, "/ws/x", h, "x", &r);
    ck_assert_int_eq(r.authenticated, 1);
    char target[1200];
    snprintf(target, sizeof(target), "/ws/x?nick=a&token=%s", tok_all);
    decide(a, target, "", "x", &r);
    ck_assert_int_eq(r.authenticated, 1);
    /* the header wins over the others */
    snprintf(h, sizeof(h), "Authorization: bearer %s\r\nSec-WebSocket-Protocol: bearer.%s\r\n", tok_all,
             tok_other_key);
    decide(a, "/ws/x?token=junk", h, "x", &r);
    ck_assert_int_eq(r.status, 0);
    auth_free(a);
}
END_TEST

START_TEST(refusals_and_their_headers)
{
    struct auth *a = make(0);
    struct auth_result r;
    decide(a, "/ws/x", "", "x", &r);
    ck_assert_int_eq(r.status, 401);
    ck_assert_ptr_nonnull(strstr(r.reason, "missing token"));
    ck_assert_str_eq(r.header, "WWW-Authenticate: Bearer realm=\"wshub\"\r\n");
    char h[4096];
    snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", tok_other_key);
    decide(a, "/ws/x", h, "x", &r);
    ck_assert_int_eq(r.status, 401);
    ck_assert_str_eq(r.reason, "bad token signature");
    ck_assert_str_eq(r.header, "WWW-Authenticate: Bearer realm=\"wshub\", error=\"invalid_token\", "
                               "error_description=\"bad token signature\"\r\n");
    static const char *const malformed[] = {"Authorization: Basic abc\r\n", "Authorization: Bearer\r\n",
                                            "Authorization: Bearerx\r\n",
                                            "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n"};
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        decide(a, "/ws/x", malformed[i], "x", &r);
        ck_assert_msg(r.status == 401 && strstr(r.header, "invalid_request"), "%s", malformed[i]);
    }
    decide(a, "/ws/x?token=", "", "x", &r);
    ck_assert_int_eq(r.status, 401);
    decide(a, "/ws/x?token=%zz", "", "x", &r);
    ck_assert_int_eq(r.status, 401);
    /* expired: exp 1800000600 is before NOW + 1000 */
    snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", tok_all);
    struct parsed p;
    parse(&p, "/ws/x", h);
    auth_decide(a, &p.req, "x", NOW + 1000, &r);
    ck_assert_int_eq(r.status, 401);
    ck_assert_str_eq(r.reason, "token expired");
    auth_free(a);
}
END_TEST

START_TEST(rooms_claim_and_private_rooms)
{
    struct auth *a = make(1);
    struct auth_result r;
    char h[4096];
    snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", tok_rooms);
    static const char *const allowed[] = {"lobby", "team-", "team-a"};
    for (size_t i = 0; i < 3; i++) {
        decide(a, "/ws/r", h, allowed[i], &r);
        ck_assert_msg(r.status == 0 && r.authenticated, "%s", allowed[i]);
    }
    static const char *const refused[] = {"lobby2", "team", "staff-1"};
    for (size_t i = 0; i < 3; i++) {
        decide(a, "/ws/r", h, refused[i], &r);
        ck_assert_msg(r.status == 403 && strstr(r.header, "insufficient_scope"), "%s", refused[i]);
    }
    /* guests: in, except into private rooms */
    decide(a, "/ws/r", "", "lobby", &r);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(r.authenticated, 0);
    static const char *const private_rooms[] = {"staff", "staff-x", "board"};
    for (size_t i = 0; i < 3; i++) {
        decide(a, "/ws/r", "", private_rooms[i], &r);
        ck_assert_msg(r.status == 403, "%s", private_rooms[i]);
    }
    decide(a, "/ws/r", "", "boards", &r);
    ck_assert_int_eq(r.status, 0);
    auth_free(a);
}
END_TEST

START_TEST(protocol_offered)
{
    struct parsed p;
    parse(&p, "/ws/x", "Sec-WebSocket-Protocol: a, wshub2\r\nSec-WebSocket-Protocol: b,wshub\r\n");
    ck_assert_int_eq(auth_protocol_offered(&p.req, "wshub"), 1);
    parse(&p, "/ws/x", "Sec-WebSocket-Protocol: a, wshub2\r\n");
    ck_assert_int_eq(auth_protocol_offered(&p.req, "wshub"), 0);
    parse(&p, "/ws/x", "");
    ck_assert_int_eq(auth_protocol_offered(&p.req, "wshub"), 0);
}
END_TEST

START_TEST(secret_files_and_keys)
{
    uint8_t out[AUTH_SECRET_MAX];
    char err[256];
    ck_assert_int_eq(auth_read_secret(secret_path, out, sizeof(out), err, sizeof(err)), (long)strlen(SECRET));
    ck_assert_int_eq(memcmp(out, SECRET, strlen(SECRET)), 0);
    ck_assert_int_eq(auth_read_secret("/nonexistent/secret", out, sizeof(out), err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/secret"));
    ck_assert_int_eq(auth_read_secret(secret_path, out, 4, err, sizeof(err)), -1);   /* longer than allowed */
    struct auth_config pub = {.public_key_file = secret_path};
    ck_assert_ptr_null(auth_new(&pub, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, secret_path));
    struct auth_config none = {0};
    ck_assert_ptr_null(auth_new(&none, err, sizeof(err)));
    struct auth *a = make(0);
    ck_assert_str_eq(auth_alg(a), "HS256");
    auth_free(a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth");
    TCase *t = tcase_create("policy");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, token_from_each_place);
    tcase_add_test(t, refusals_and_their_headers);
    tcase_add_test(t, rooms_claim_and_private_rooms);
    tcase_add_test(t, protocol_offered);
    tcase_add_test(t, secret_files_and_keys);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
