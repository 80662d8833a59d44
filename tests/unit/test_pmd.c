/* test_pmd: unit tests for src/pmd.c, the permessage-deflate negotiation.
 * Every combination of the four offer parameters (with and without values,
 * every window size) in every order, with the whitespace and quoting RFC 6455
 * section 9.1 allows, must be accepted with exactly those parameters and
 * answered as RFC 7692 section 7 says; every duplicate, unknown parameter and
 * bad value must decline its offer and let the next one be accepted; every
 * break of the header grammar must be malformed, wherever it is. Also the
 * answer, the window the server compresses with, and several headers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "pmd.h"

#define EXPECT(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

static enum pmd_verdict parse(const char *s, struct pmd_params *p)
{
    memset(p, 0x5a, sizeof(*p));
    /* an exact-size copy, so that ASan sees any read past the value */
    size_t n = strlen(s);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, s, n);
    enum pmd_verdict v = pmd_parse(copy, n, p);
    free(copy);
    return v;
}

static int same(const struct pmd_params *a, const struct pmd_params *b)
{
    return a->server_no_context_takeover == b->server_no_context_takeover &&
           a->client_no_context_takeover == b->client_no_context_takeover &&
           a->server_max_window_bits == b->server_max_window_bits &&
           a->client_max_window_bits == b->client_max_window_bits;
}

/* ---- every combination ---- */

/* How a parameter list is written: separators and value quoting. */
struct style {
    const char *sep;    /* between the token and each parameter */
    const char *eq;     /* around '=' */
    int quote;          /* 0 bare, 1 "10", 2 "\1\0" */
};

static const struct style styles[] = {
    {"; ", "=", 0}, {";", "=", 1}, {" ; ", " = ", 2}, {"\t;\t", "\t=\t", 0}, {" ;", "= ", 1},
};

static void put_value(char *out, size_t size, unsigned bits, int quote)
{
    if (quote == 0)
        snprintf(out, size, "%u", bits);
    else if (quote == 1)
        snprintf(out, size, "\"%u\"", bits);
    else if (bits < 10)
        snprintf(out, size, "\"\\%u\"", bits);
    else
        snprintf(out, size, "\"\\1\\%u\"", bits - 10);
}

/* The parameters of p as written in style st, in a list of up to 4. */
static size_t params_of(const struct pmd_params *p, const struct style *st, char items[4][64])
{
    size_t n = 0;
    char v[16];
    if (p->server_no_context_takeover)
        snprintf(items[n++], 64, "server_no_context_takeover");
    if (p->client_no_context_takeover)
        snprintf(items[n++], 64, "client_no_context_takeover");
    if (p->server_max_window_bits) {
        put_value(v, sizeof v, p->server_max_window_bits, st->quote);
        snprintf(items[n++], 64, "server_max_window_bits%s%s", st->eq, v);
    }
    if (p->client_max_window_bits == PMD_BITS_NO_VALUE) {
        snprintf(items[n++], 64, "client_max_window_bits");
    } else if (p->client_max_window_bits) {
        put_value(v, sizeof v, p->client_max_window_bits, st->quote);
        snprintf(items[n++], 64, "client_max_window_bits%s%s", st->eq, v);
    }
    return n;
}

/* Calls fn for every permutation of items[0..n). */
static void permute(char items[4][64], size_t n, size_t k, void (*fn)(char items[4][64], size_t n, void *ctx),
                    void *ctx)
{
    if (k == n) {
        fn(items, n, ctx);
        return;
    }
    for (size_t i = k; i < n; i++) {
        char t[64];
        memcpy(t, items[k], 64);
        memcpy(items[k], items[i], 64);
        memcpy(items[i], t, 64);
        permute(items, n, k + 1, fn, ctx);
        memcpy(t, items[k], 64);
        memcpy(items[k], items[i], 64);
        memcpy(items[i], t, 64);
    }
}

struct combo {
    struct pmd_params want;
    const struct style *st;
    unsigned checked;
};

static void check_offer(char items[4][64], size_t n, void *ctx)
{
    struct combo *c = ctx;
    char offer[512], header[1024], resp[PMD_RESPONSE_MAX], want_resp[PMD_RESPONSE_MAX];
    size_t len = (size_t)snprintf(offer, sizeof offer, "permessage-deflate");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(offer + len, sizeof offer - len, "%s%s", c->st->sep, items[i]);

    /* alone, after another extension, and after an offer that is declined */
    const char *forms[] = {"%s", "x-webkit-deflate-frame, %s", "permessage-deflate; mux, %s",
                           " , %s , ", "permessage-deflate; server_max_window_bits=7,%s"};
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        struct pmd_params got;
        snprintf(header, sizeof header, forms[f], offer);
        enum pmd_verdict v = parse(header, &got);
        EXPECT(v == PMD_ACCEPT, "[%s]: verdict %d, want accept", header, v);
        EXPECT(same(&got, &c->want), "[%s]: got %u %u %u %u", header, got.server_no_context_takeover,
               got.client_no_context_takeover, got.server_max_window_bits, got.client_max_window_bits);
        c->checked++;
    }

    /* the answer: both no_context_takeover, and server_max_window_bits as offered */
    size_t rn = pmd_response(&c->want, resp, sizeof resp);
    if (c->want.server_max_window_bits)
        snprintf(want_resp, sizeof want_resp,
                 "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                 "server_max_window_bits=%u", c->want.server_max_window_bits);
    else
        snprintf(want_resp, sizeof want_resp,
                 "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    EXPECT(rn == strlen(want_resp) && strcmp(resp, want_resp) == 0, "response [%s], want [%s]", resp, want_resp);
    unsigned bits = pmd_server_window_bits(&c->want);
    unsigned want_bits = !c->want.server_max_window_bits ? 15
                         : c->want.server_max_window_bits < 9 ? 9 : c->want.server_max_window_bits;
    EXPECT(bits == want_bits, "window bits %u, want %u", bits, want_bits);

    /* the answer parses as an offer with the same server parameters */
    struct pmd_params back;
    EXPECT(parse(resp, &back) == PMD_ACCEPT, "response [%s] does not parse", resp);
    EXPECT(back.server_no_context_takeover && back.client_no_context_takeover &&
           back.server_max_window_bits == c->want.server_max_window_bits && !back.client_max_window_bits,
           "response [%s] parses to other parameters", resp);
}

START_TEST(test_every_combination)
{
    static const uint8_t client_bits[] = {0, PMD_BITS_NO_VALUE, 8, 9, 10, 11, 12, 13, 14, 15};
    static const uint8_t server_bits[] = {0, 8, 9, 10, 11, 12, 13, 14, 15};
    unsigned combos = 0, checked = 0;
    for (unsigned snct = 0; snct < 2; snct++)
        for (unsigned cnct = 0; cnct < 2; cnct++)
            for (size_t sb = 0; sb < sizeof server_bits; sb++)
                for (size_t cb = 0; cb < sizeof client_bits; cb++) {
                    combos++;
                    for (size_t s = 0; s < sizeof styles / sizeof styles[0]; s++) {
                        struct combo c = {{(uint8_t)snct, (uint8_t)cnct, server_bits[sb], client_bits[cb]},
                                          &styles[s], 0};
                        char items[4][64];
                        size_t n = params_of(&c.want, c.st, items);
                        permute(items, n, 0, check_offer, &c);
                        checked += c.checked;
                    }
                }
    ck_assert_uint_eq(combos, 2 * 2 * 9 * 10);
    ck_assert_uint_gt(checked, 50000);
}
END_TEST

/* ---- declined offers ---- */

/* Each offer here must be declined alone, and the offer after it accepted. */
static const char *const declined[] = {
    /* repeated parameters */
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
    "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
    "permessage-deflate; server_max_window_bits=10; server_max_window_bits=11",
    "permessage-deflate; client_max_window_bits; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=9; client_max_window_bits",
    "permessage-deflate; client_max_window_bits; client_max_window_bits=9",
    "permessage-deflate; client_max_window_bits=15; server_no_context_takeover; client_max_window_bits=15",
    /* unknown parameters (names are case-sensitive) */
    "permessage-deflate; mux",
    "permessage-deflate; x=1",
    "permessage-deflate; server_no_context_takeover; foo=\"bar\"",
    "permessage-deflate; SERVER_NO_CONTEXT_TAKEOVER",
    "permessage-deflate; Client_Max_Window_Bits",
    "permessage-deflate; server_no_context_takeover2",
    "permessage-deflate; client_max_window",
    "permessage-deflate; server_max_window_bits=10; max_window_bits=10",
    /* values where none is allowed */
    "permessage-deflate; server_no_context_takeover=1",
    "permessage-deflate; server_no_context_takeover=true",
    "permessage-deflate; client_no_context_takeover=\"x\"",
    "permessage-deflate; client_no_context_takeover=0",
    /* server_max_window_bits needs a value of 8 to 15 */
    "permessage-deflate; server_max_window_bits",
    "permessage-deflate; server_max_window_bits=0",
    "permessage-deflate; server_max_window_bits=7",
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; server_max_window_bits=08",
    "permessage-deflate; server_max_window_bits=010",
    "permessage-deflate; server_max_window_bits=+9",
    "permessage-deflate; server_max_window_bits=-9",
    "permessage-deflate; server_max_window_bits=9.0",
    "permessage-deflate; server_max_window_bits=0x9",
    "permessage-deflate; server_max_window_bits=1",
    "permessage-deflate; server_max_window_bits=99",
    "permessage-deflate; server_max_window_bits=10a",
    "permessage-deflate; server_max_window_bits=\"7\"",
    "permessage-deflate; server_max_window_bits=\"16\"",
    "permessage-deflate; server_max_window_bits=\"1\\6\"",
    "permessage-deflate; server_max_window_bits=4294967306",
    /* client_max_window_bits, when it has a value, 8 to 15 too */
    "permessage-deflate; client_max_window_bits=0",
    "permessage-deflate; client_max_window_bits=7",
    "permessage-deflate; client_max_window_bits=16",
    "permessage-deflate; client_max_window_bits=09",
    "permessage-deflate; client_max_window_bits=x",
    "permessage-deflate; client_max_window_bits=\"08\"",
};

START_TEST(test_declined)
{
    char header[512];
    struct pmd_params got, none = {0, 0, 0, 0}, ten = {0, 0, 10, 0};
    for (size_t i = 0; i < sizeof declined / sizeof declined[0]; i++) {
        EXPECT(parse(declined[i], &got) == PMD_DECLINE, "[%s] not declined", declined[i]);
        snprintf(header, sizeof header, "%s, permessage-deflate", declined[i]);
        EXPECT(parse(header, &got) == PMD_ACCEPT && same(&got, &none), "[%s]: next offer not accepted", header);
        snprintf(header, sizeof header, "%s,permessage-deflate;server_max_window_bits=10, %s", declined[i],
                 declined[i]);
        EXPECT(parse(header, &got) == PMD_ACCEPT && same(&got, &ten), "[%s]: next offer not accepted", header);
    }
}
END_TEST

/* Well-formed values without an acceptable offer. */
START_TEST(test_nothing_to_accept)
{
    static const char *const values[] = {
        "", " ", ",", " , ,, ", "x-webkit-deflate-frame", "foo; bar=baz, qux; a=\"b\"",
        "permessage-deflate-x", "Permessage-Deflate", "deflate-frame; max_window_bits=10",
        "foo; bar=\"a\\b\"",
    };
    struct pmd_params got;
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        EXPECT(parse(values[i], &got) == PMD_DECLINE, "[%s] not declined", values[i]);
}
END_TEST

/* The first acceptable offer wins; later ones do not change it. */
START_TEST(test_first_acceptable_wins)
{
    struct pmd_params got, want = {0, 0, 10, 0}, cnct = {0, 1, 0, 0};
    ck_assert_int_eq(parse("permessage-deflate; server_max_window_bits=10, permessage-deflate", &got), PMD_ACCEPT);
    ck_assert(same(&got, &want));
    ck_assert_int_eq(parse("permessage-deflate; server_max_window_bits=7, permessage-deflate; "
                           "client_no_context_takeover, permessage-deflate; server_max_window_bits=10", &got),
                     PMD_ACCEPT);
    ck_assert(same(&got, &cnct));
    ck_assert_int_eq(parse(",,permessage-deflate ,", &got), PMD_ACCEPT);
}
END_TEST

/* ---- malformed headers ---- */

static const char *const malformed[] = {
    ";",
    "permessage-deflate;",
    "permessage-deflate; ",
    "permessage-deflate;;server_no_context_takeover",
    "permessage-deflate; ;",
    "permessage-deflate server_no_context_takeover",
    "permessage-deflate; server_max_window_bits=",
    "permessage-deflate; server_max_window_bits= ",
    "permessage-deflate; server_max_window_bits=\"10",
    "permessage-deflate; server_max_window_bits=\"1 0\"",
    "permessage-deflate; server_max_window_bits=\"\"",
    "permessage-deflate; server_max_window_bits=\"1\\",
    "permessage-deflate; server_max_window_bits=10 11",
    "permessage-deflate; =10",
    "permessage-deflate; a=b=c",
    "permessage-deflate; client_max_window_bits=\"\"",
    "permessage-deflate; client_max_window_bits==10",
    "perm@ssage-deflate",
    "\"permessage-deflate\"",
    "permessage-deflate, ;",
    "permessage-deflate; a\x01",
    "permessage-deflate\x7f",
    "permessage-deflate; x=\"a\x01\"",
    "permessage-deflate; x=\"\xc3\xa9\"",
    "permessage-deflate; x=\"a\\\"b\"",
    "permessage-deflate; x=a b",
    "permessage-deflate; x=(a)",
    "permessage-deflate; x=a;",
    "permessage-deflate, foo;",             /* after an acceptable offer: still malformed */
    "permessage-deflate, foo bar",
    "permessage-deflate, \"x\"",
    "permessage-deflate; server_max_window_bits=10, permessage-deflate; =",
    "permessage-deflate\r\n",
    "permessage-deflate; x=\"a\\\x01\"",
    "permessage-deflate/1",
};

START_TEST(test_malformed)
{
    struct pmd_params got;
    char header[512];
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        EXPECT(parse(malformed[i], &got) == PMD_MALFORMED, "[%s] not malformed", malformed[i]);
        snprintf(header, sizeof header, "permessage-deflate, %s", malformed[i]);
        EXPECT(parse(header, &got) == PMD_MALFORMED, "[%s] not malformed", header);
        snprintf(header, sizeof header, "%s, permessage-deflate", malformed[i]);
        EXPECT(parse(header, &got) == PMD_MALFORMED, "[%s] not malformed", header);
    }
}
END_TEST

/* Every prefix of a valid header is itself valid or malformed, never read
 * past its end (ASan), and the whole is accepted. */
START_TEST(test_prefixes)
{
    const char *h = "x; a=\"q\\\"\", permessage-deflate ; server_max_window_bits = \"1\\2\" ;"
                    "client_max_window_bits; client_no_context_takeover";
    struct pmd_params got, want = {0, 1, 12, PMD_BITS_NO_VALUE};
    char prefix[256];
    for (size_t n = 0; n <= strlen(h); n++) {
        memcpy(prefix, h, n);
        prefix[n] = '\0';
        enum pmd_verdict v = parse(prefix, &got);
        EXPECT(v == PMD_MALFORMED || v == PMD_DECLINE || v == PMD_ACCEPT, "prefix %zu: verdict %d", n, v);
    }
    ck_assert_int_eq(parse(h, &got), PMD_MALFORMED);   /* \" unescapes to a quote: not a token */
    h = "x; a=\"q\\z\", permessage-deflate ; server_max_window_bits = \"1\\2\" ;"
        "client_max_window_bits; client_no_context_takeover";
    ck_assert_int_eq(parse(h, &got), PMD_ACCEPT);
    ck_assert(same(&got, &want));
}
END_TEST

/* ---- the answer ---- */

START_TEST(test_response_size)
{
    struct pmd_params p = {1, 1, 15, 15};
    char out[PMD_RESPONSE_MAX];
    size_t n = pmd_response(&p, out, sizeof out);
    ck_assert_uint_gt(n, 0);
    ck_assert_str_eq(out, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                          "server_max_window_bits=15");
    ck_assert_uint_eq(pmd_response(&p, out, n + 1), n);
    ck_assert_uint_eq(pmd_response(&p, out, n), 0);
    ck_assert_uint_eq(pmd_response(&p, out, 10), 0);
    p.server_max_window_bits = 0;
    n = pmd_response(&p, out, sizeof out);
    ck_assert_uint_eq(pmd_response(&p, out, n), 0);
    ck_assert_uint_eq(pmd_response(&p, out, n + 1), n);
}
END_TEST

/* ---- several headers ---- */

static enum pmd_verdict negotiate(const char *head, struct pmd_params *p)
{
    struct http_request req;
    size_t scanned = 0;
    long n = http_parse_request(head, strlen(head), &scanned, 8192, &req);
    ck_assert_int_gt(n, 0);
    return pmd_negotiate(&req, p);
}

START_TEST(test_several_headers)
{
    struct pmd_params got, twelve = {0, 0, 12, 0}, none = {0, 0, 0, 0};
    ck_assert_int_eq(negotiate("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &got), PMD_DECLINE);
    ck_assert_int_eq(negotiate("GET / HTTP/1.1\r\nHost: x\r\n"
                               "Sec-WebSocket-Extensions: permessage-deflate; mux\r\n"
                               "sec-websocket-extensions: permessage-deflate; server_max_window_bits=12\r\n"
                               "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n", &got),
                     PMD_ACCEPT);
    ck_assert(same(&got, &twelve));
    ck_assert_int_eq(negotiate("GET / HTTP/1.1\r\nHost: x\r\n"
                               "Sec-WebSocket-Extensions: x-foo\r\n"
                               "Sec-WebSocket-Extensions:   permessage-deflate  \r\n\r\n", &got),
                     PMD_ACCEPT);
    ck_assert(same(&got, &none));
    ck_assert_int_eq(negotiate("GET / HTTP/1.1\r\nHost: x\r\n"
                               "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                               "Sec-WebSocket-Extensions: permessage-deflate;\r\n\r\n", &got),
                     PMD_MALFORMED);
    ck_assert_int_eq(negotiate("GET / HTTP/1.1\r\nHost: x\r\n"
                               "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n"
                               "Sec-WebSocket-Extensions: x\r\n\r\n", &got),
                     PMD_DECLINE);
    ck_assert_int_eq(negotiate("GET / HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Extensions:\r\n\r\n", &got),
                     PMD_DECLINE);
}
END_TEST

START_TEST(test_server_window_bits)
{
    for (unsigned b = 0; b <= 15; b++) {
        if (b && b < 8)
            continue;
        struct pmd_params p = {1, 1, (uint8_t)b, 0};
        unsigned want = b == 0 ? 15 : b == 8 ? 9 : b;
        ck_assert_uint_eq(pmd_server_window_bits(&p), want);
    }
}
END_TEST

static Suite *pmd_suite(void)
{
    Suite *s = suite_create("pmd");
    TCase *tc = tcase_create("negotiation");
    tcase_add_test(tc, test_every_combination);
    tcase_add_test(tc, test_declined);
    tcase_add_test(tc, test_nothing_to_accept);
    tcase_add_test(tc, test_first_acceptable_wins);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_prefixes);
    tcase_add_test(tc, test_response_size);
    tcase_add_test(tc, test_several_headers);
    tcase_add_test(tc, test_server_window_bits);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pmd_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
