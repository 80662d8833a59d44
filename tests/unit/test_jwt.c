/* test_jwt: unit tests for src/jwt.c with fixed keys (an RSA 2048 and an EC
 * P-256 key pair made once with the openssl command line and kept here, and
 * HS256 secrets), the RFC 7515 appendix A.1 HS256 example, and tokens signed
 * by the test with OpenSSL: valid tokens of each algorithm, expired and not
 * yet valid, wrong issuer and audience, bad signatures, "none", the RS256
 * public key used as an HS256 secret (algorithm confusion), truncated and
 * oversized tokens, and claims of the wrong types. */
#include <check.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"

static const char RSA_PRIV[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDE9bpjlgwUhjar\n"
    "KXPJzU4UwJC/cB6RSoQLZo5M1q+J12aIYBhRd1xyoIGw+yApQaBJUrd/zVbrySog\n"
    "aQEwZ6ArYaXKi6jq5PZ1xt5p0faweWoQXDE0+ixYfxWVoXoE9WxF2+KZFPsNfKvL\n"
    "ojAYoPUvx4yoyiEwcUErfeMonxzOalmTjchD+P1/EBJ6LHM2b+28dlFHXZRBim92\n"
    "wtcxw8HZzgGB+IH+VOzxP+qX1WKAYyQs07XP1Wid4Vk/8XDhuWXq2fJBxKKlujvb\n"
    "6UhsnDrr9oLeI9WaQ2pLqTIEhDbywkxwZd6ed42A+xs9AMe+ZziGTvjMezW2vNAK\n"
    "MULN5iGvAgMBAAECggEALVH9mXylOvPHEItxQTYkiVHl/Kbn4baru5PVmoiry6Ps\n"
    "y+SQs+4rL5UPQpIGTHf1Uenen2G4ZnjbYKnIxEKT8Gd/pqOMMsCMlX01IFRX1zOY\n"
    "3Drad745BgP4C34kfY+bYle+REs3mVrejPS87G3c/SmFjDE2gdcNj9xfsLEsB7K5\n"
    "ka+ll2wgwu56qGLBiX2e/3a+OAUxO2DPPT4t7+GKbdJCrj1qqFyKE3zl3MApNcq/\n"
    "MnNXx7BdWOobRT77LC9xsyRwEj9nFdz79zH40nWXiNd5/DnBmO/Eq3wcXhASV2lw\n"
    "kIcUMAYw11O6SEkGOEjEiKQysanPIYPLaCKJCzF5wQKBgQDo5zAhBZIavzpE0neA\n"
    "EbzMA2B9gEiK62Ttni7/H3iZ3fmU8WVQ4zWX0Vh07BHJSttI4nCmfDdvuPtQYvsJ\n"
    "tDaQDb3L73GvLB0KI3NS2iZsGAN7jX3NTwuMrZ0brKuDxQUWWEAT5mx52+bB6c/J\n"
    "G3KFsusHkWAEbPOWGiJtM2AzmwKBgQDYfgjI8LCgfZLBLhDcHppFN/gf2gmbdROJ\n"
    "NnciZFTCaM4IVEYsQSmc1NG1ENbrADn0Di4xOjfk6JMevUfhn66aEFdxlQPjOXFu\n"
    "w38O5KbNFsi+dWOoo3iNKcgMqe+CS9MTs4Tp+GBZoO167/6iiStZCDUq2aebBusY\n"
    "U4FNJ3M9fQKBgAgYcR3Uub1gREA8KJc1BqD4xRPXr63UfM+dnfiUOXbvtkstEN58\n"
    "51H9ntuBkSS0C2c/J7dBvhOOFH440o0FzJe5Qo2iJwt1txSxIsMQfiFnvEdBJcxL\n"
    "IRWkuz9JAzUzVffu3VtTuRWLRTwcSnKtF4/6Jh0/Ol0tBFKFWgj9rixdAoGASYk+\n"
    "CKshA9LDp5SzK2HFux9Qy9jvDHwPH7t9ahQ0ajjZSyD9GQklTl1Hwj4vEnHoPYsX\n"
    "i6cf10RcvMNEiFIKJ9DHMxCP2n3nlt0W6oMmWWGU3ITZTi4Aw8peZlbOwS5qSzXe\n"
    "Pu8cIzWzlN+yWZlIPRy5mo2GDfWio4ex0vhEf60CgYBh7CiZdCNV27RNGVqMrFA+\n"
    "vUgrv/0+9a0d/2tQExc2TFcdxjZFRDVYhb1uEDpq9EPyBM5ebGtszwP+tdgBwBkV\n"
    "76Bo8HDWc/90h/fpWKUGebMOKhRzW9ikJN2gPlYmmz407fwrcuHYeLZmJQT9W1oc\n"
    "v9Q35BTdkdSRIogX5BMN/w==\n"
    "-----END PRIVATE KEY-----\n";
static const char RSA_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxPW6Y5YMFIY2qylzyc1O\n"
    "FMCQv3AekUqEC2aOTNaviddmiGAYUXdccqCBsPsgKUGgSVK3f81W68kqIGkBMGeg\n"
    "K2Glyouo6uT2dcbeadH2sHlqEFwxNPosWH8VlaF6BPVsRdvimRT7DXyry6IwGKD1\n"
    "L8eMqMohMHFBK33jKJ8czmpZk43IQ/j9fxASeixzNm/tvHZRR12UQYpvdsLXMcPB\n"
    "2c4BgfiB/lTs8T/ql9VigGMkLNO1z9VoneFZP/Fw4bll6tnyQcSipbo72+lIbJw6\n"
    "6/aC3iPVmkNqS6kyBIQ28sJMcGXenneNgPsbPQDHvmc4hk74zHs1trzQCjFCzeYh\n"
    "rwIDAQAB\n"
    "-----END PUBLIC KEY-----\n";
static const char EC_PRIV[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg0A6nyqvFNzEkuS2s\n"
    "7YhAftkR5QDz5flSLBk+06sqsLehRANCAARLA6i4QLwwxAv/zxt89kraFl2qxLuy\n"
    "onLoRItaZi+LX9kHONc+snD2afHabb9wD1bOl3PEQWu5LeK2ewpqNGV1\n"
    "-----END PRIVATE KEY-----\n";
static const char EC_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAESwOouEC8MMQL/88bfPZK2hZdqsS7\n"
    "sqJy6ESLWmYvi1/ZBzjXPrJw9mnx2m2/cA9WzpdzxEFruS3itnsKajRldQ==\n"
    "-----END PUBLIC KEY-----\n";
static const char RSA1K_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDlNouDqiGfpADT7xGLIFDV7LIf\n"
    "Qqb+MXXKjKzkXjIcwjh4nnadiQGiAplz8uarXaYkwR6Xy63CIyYjtjKOQT9UGCIP\n"
    "HRbtCvUEgf+JsUVYgL6rTrpOkx58OvoTRpDd25rDwEKzb7XzFXzSjvgB+Bq7Pt01\n"
    "z0zT63Y/1Z4oqDvXHQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

#define NOW 1800000000

/* base64url without padding of n bytes into out; returns its length. */
static size_t b64url(const void *in, size_t n, char *out)
{
    int m = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (m > 0 && out[m - 1] == '=')
        m--;
    for (int i = 0; i < m; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    out[m] = 0;
    return (size_t)m;
}

enum signer { SIGN_HS, SIGN_RS, SIGN_ES, SIGN_NONE };

/* header.payload signed as asked; secret for SIGN_HS. Returns a malloc'd token. */
static char *make_token(const char *header, const char *payload, enum signer how, const void *secret,
                        size_t secret_len)
{
    char *tok = malloc(16384);
    if (!tok)
        abort();
    size_t n = b64url(header, strlen(header), tok);
    tok[n++] = '.';
    n += b64url(payload, strlen(payload), tok + n);
    unsigned char sig[512];
    size_t slen = 0;
    if (how == SIGN_HS) {
        unsigned int l = 0;
        HMAC(EVP_sha256(), secret, (int)secret_len, (unsigned char *)tok, n, sig, &l);
        slen = l;
    } else if (how == SIGN_RS || how == SIGN_ES) {
        const char *pem = how == SIGN_RS ? RSA_PRIV : EC_PRIV;
        BIO *bio = BIO_new_mem_buf(pem, -1);
        EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
        ck_assert_ptr_nonnull(k);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char der[512];
        size_t dlen = sizeof(der);
        ck_assert_int_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
        ck_assert_int_eq(EVP_DigestSign(md, der, &dlen, (unsigned char *)tok, n), 1);
        EVP_MD_CTX_free(md);
        EVP_PKEY_free(k);
        if (how == SIGN_RS) {
            memcpy(sig, der, dlen);
            slen = dlen;
        } else {   /* DER ECDSA-Sig-Value to the JWS R||S form */
            const unsigned char *p = der;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
            const BIGNUM *r, *s;
            ECDSA_SIG_get0(es, &r, &s);
            BN_bn2binpad(r, sig, 32);
            BN_bn2binpad(s, sig + 32, 32);
            ECDSA_SIG_free(es);
            slen = 64;
        }
    }
    tok[n++] = '.';
    n += b64url(sig, slen, tok + n);
    return tok;
}

static const char HS[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char RS[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
static const char ES[] = "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";
static const char SECRET[] = "a shared secret of reasonable length";

static struct jwt_expect expect(void)
{
    return (struct jwt_expect){.now = NOW, .leeway = 30};
}

static enum jwt_error verify_with(const struct jwt_key *k, const char *tok, const struct jwt_expect *ex,
                                  struct jwt_claims *c)
{
    return jwt_verify(k, tok, strlen(tok), ex, c);
}

static struct jwt_key *hs_key(void)
{
    return jwt_key_secret((const uint8_t *)SECRET, strlen(SECRET));
}

static struct jwt_key *pem_key(const char *pem)
{
    char err[128];
    struct jwt_key *k = jwt_key_public_pem(pem, strlen(pem), err, sizeof(err));
    ck_assert_msg(k != NULL, "key: %s", err);
    return k;
}

/* One payload through HS256: the result of verifying it. */
static enum jwt_error hs_result(const char *payload, const struct jwt_expect *ex)
{
    struct jwt_key *k = hs_key();
    char *t = make_token(HS, payload, SIGN_HS, SECRET, strlen(SECRET));
    struct jwt_claims c;
    enum jwt_error e = verify_with(k, t, ex, &c);
    free(t);
    jwt_key_free(k);
    return e;
}

START_TEST(test_hs256_valid_claims)
{
    struct jwt_key *k = hs_key();
    ck_assert_str_eq(jwt_key_alg(k), "HS256");
    char *t = make_token(HS, "{\"sub\":\"u42\",\"name\":\"Ann\",\"rooms\":[\"lobby\",\"team-*\"],\"mod\":true,"
                             "\"exp\":1800000100}", SIGN_HS, SECRET, strlen(SECRET));
    struct jwt_claims c;
    struct jwt_expect ex = expect();
    ck_assert_int_eq(verify_with(k, t, &ex, &c), JWT_OK);
    ck_assert_str_eq(c.sub, "u42");
    ck_assert_str_eq(c.name, "Ann");
    ck_assert_int_eq(c.mod, 1);
    ck_assert_uint_eq(c.nrooms, 2);
    ck_assert_int_eq(c.all_rooms, 0);
    ck_assert_int_eq(c.exp, 1800000100);
    ck_assert(jwt_room_allowed(&c, "lobby"));
    ck_assert(jwt_room_allowed(&c, "team-red"));
    ck_assert(jwt_room_allowed(&c, "team-"));
    ck_assert(!jwt_room_allowed(&c, "lobby2"));
    ck_assert(!jwt_room_allowed(&c, "team"));
    free(t);
    jwt_key_free(k);
}
END_TEST

START_TEST(test_rooms_absent_means_all)
{
    struct jwt_key *k = hs_key();
    char *t = make_token(HS, "{\"sub\":\"u\"}", SIGN_HS, SECRET, strlen(SECRET));
    struct jwt_claims c;
    struct jwt_expect ex = expect();
    ck_assert_int_eq(verify_with(k, t, &ex, &c), JWT_OK);
    ck_assert(c.all_rooms && jwt_room_allowed(&c, "anything"));
    ck_assert_str_eq(c.name, "");
    ck_assert_int_eq(c.mod, 0);
    free(t);
    jwt_key_free(k);
}
END_TEST

/* RFC 7515 appendix A.1: an HS256 JWS whose signature must verify; it has
 * no sub, so the verdict after the signature is about the claims. */
START_TEST(test_rfc7515_a1)
{
    static const char tok[] =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    static const char k64[] = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ+EstJQLr/T+1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow==";
    unsigned char key[66];
    int n = EVP_DecodeBlock(key, (const unsigned char *)k64, (int)strlen(k64));
    ck_assert_int_eq(n, 66);
    struct jwt_key *k = jwt_key_secret(key, 64);
    struct jwt_claims c;
    struct jwt_expect ex = {.now = 1300819000};
    ck_assert_int_eq(verify_with(k, tok, &ex, &c), JWT_BAD_CLAIMS);
    char bad[sizeof(tok)];
    memcpy(bad, tok, sizeof(tok));
    bad[sizeof(tok) - 3] = bad[sizeof(tok) - 3] == 'X' ? 'Y' : 'X';
    ck_assert_int_eq(verify_with(k, bad, &ex, &c), JWT_BAD_SIGNATURE);
    jwt_key_free(k);
}
END_TEST

START_TEST(test_times)
{
    struct jwt_expect ex = expect();
    ck_assert_int_eq(hs_result("{\"sub\":\"u\",\"exp\":1799999900}", &ex), JWT_EXPIRED);
    ck_assert_int_eq(hs_result("{\"sub\":\"u\",\"exp\":1799999990}", &ex), JWT_OK);    /* within the leeway */
    ck_assert_int_eq(hs_result("{\"sub\":\"u\",\"nbf\":1800000100}", &ex), JWT_NOT_YET_VALID);
    ck_assert_int_eq(hs_result("{\"sub\":\"u\",\"nbf\":1800000010}", &ex), JWT_OK);
    ck_assert_int_eq(hs_result("{\"sub\":\"u\",\"exp\":1800000000.5}", &ex), JWT_OK);
}
END_TEST

START_TEST(test_issuer_and_audience)
{
    struct jwt_expect ex = expect();
    ex.issuer = "https://app.example";
    ex.audience = "wshub";
    ck_assert_int_eq(hs_result("{\"sub\":\"u\",\"iss\":\"https://app.example\",\"aud\":\"wshub\"}", &ex), JWT_OK);
    ck_assert_int_eq(hs_result("{\"sub\":\"u\",\"iss\":\"https://app.example\",\"aud\":[\"x\",\"wshub\"]}", &ex),
                     JWT_OK);
    ck_assert_int_eq(hs_result("{\"sub\":\"u\",\"iss\":\"https://evil.example\",\"aud\":\"wshub\"}", &ex),
                     JWT_BAD_ISSUER);
    ck_assert_int_eq(hs_result("{\"sub\":\"u\",\"aud\":\"wshub\"}", &ex), JWT_BAD_ISSUER);
    ck_assert_int_eq(hs_result("{\"sub\":\"u\",\"iss\":\"https://app.example\",\"aud\":\"other\"}", &ex),
                     JWT_BAD_AUDIENCE);
    ck_assert_int_eq(hs_result("{\"sub\":\"u\",\"iss\":\"https://app.example\",\"aud\":[\"other\"]}", &ex),
                     JWT_BAD_AUDIENCE);
    ck_assert_int_eq(hs_result("{\"sub\":\"u\",\"iss\":\"https://app.example\"}", &ex), JWT_BAD_AUDIENCE);
}
END_TEST

START_TEST(test_wrong_types)
{
    static const char *const bad[] = {
        "{}", "{\"sub\":\"\"}", "{\"sub\":42}", "{\"sub\":\"u\",\"name\":7}", "{\"sub\":\"u\",\"rooms\":\"lobby\"}",
        "{\"sub\":\"u\",\"rooms\":[1]}", "{\"sub\":\"u\",\"rooms\":[\"\"]}", "{\"sub\":\"u\",\"mod\":\"yes\"}",
        "{\"sub\":\"u\",\"exp\":\"soon\"}", "{\"sub\":\"u\",\"nbf\":null}", "{\"sub\":[\"u\"]}",
    };
    struct jwt_expect ex = expect();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(hs_result(bad[i], &ex) == JWT_BAD_CLAIMS, "%s was accepted", bad[i]);
    ck_assert_int_eq(hs_result("{\"sub\":\"u\",\"sub\":\"v\"}", &ex), JWT_MALFORMED);   /* duplicate key */
    ck_assert_int_eq(hs_result("[\"sub\"]", &ex), JWT_MALFORMED);
    char big[400];
    snprintf(big, sizeof(big), "{\"sub\":\"%0200d\"}", 0);
    ck_assert_int_eq(hs_result(big, &ex), JWT_BAD_CLAIMS);   /* sub over JWT_SUB_MAX */
}
END_TEST

START_TEST(test_bad_signature_and_none)
{
    struct jwt_key *k = hs_key();
    struct jwt_claims c;
    struct jwt_expect ex = expect();
    char *t = make_token(HS, "{\"sub\":\"u\"}", SIGN_HS, "another secret", 14);
    ck_assert_int_eq(verify_with(k, t, &ex, &c), JWT_BAD_SIGNATURE);
    free(t);
    t = make_token("{\"alg\":\"none\"}", "{\"sub\":\"u\"}", SIGN_NONE, NULL, 0);
    ck_assert_int_eq(verify_with(k, t, &ex, &c), JWT_BAD_ALG);
    free(t);
    t = make_token("{\"alg\":\"hs256\"}", "{\"sub\":\"u\"}", SIGN_HS, SECRET, strlen(SECRET));
    ck_assert_int_eq(verify_with(k, t, &ex, &c), JWT_BAD_ALG);
    free(t);
    t = make_token("{\"typ\":\"JWT\"}", "{\"sub\":\"u\"}", SIGN_HS, SECRET, strlen(SECRET));
    ck_assert_int_eq(verify_with(k, t, &ex, &c), JWT_BAD_ALG);
    free(t);
    t = make_token("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{\"sub\":\"u\"}", SIGN_HS, SECRET, strlen(SECRET));
    ck_assert_int_eq(verify_with(k, t, &ex, &c), JWT_MALFORMED);
    free(t);
    jwt_key_free(k);
}
END_TEST

START_TEST(test_rs256_and_es256)
{
    struct jwt_key *rs = pem_key(RSA_PUB), *es = pem_key(EC_PUB);
    ck_assert_str_eq(jwt_key_alg(rs), "RS256");
    ck_assert_str_eq(jwt_key_alg(es), "ES256");
    struct jwt_claims c;
    struct jwt_expect ex = expect();
    char *trs = make_token(RS, "{\"sub\":\"r\"}", SIGN_RS, NULL, 0);
    char *tes = make_token(ES, "{\"sub\":\"e\"}", SIGN_ES, NULL, 0);
    ck_assert_int_eq(verify_with(rs, trs, &ex, &c), JWT_OK);
    ck_assert_str_eq(c.sub, "r");
    ck_assert_int_eq(verify_with(es, tes, &ex, &c), JWT_OK);
    ck_assert_str_eq(c.sub, "e");
    ck_assert_int_eq(verify_with(es, trs, &ex, &c), JWT_BAD_ALG);
    ck_assert_int_eq(verify_with(rs, tes, &ex, &c), JWT_BAD_ALG);
    /* a signature of one claims set does not verify another */
    char *other = make_token(ES, "{\"sub\":\"x\"}", SIGN_ES, NULL, 0);
    char forged[4096];
    const char *dot = strrchr(tes, '.'), *dot_other = strrchr(other, '.');
    ck_assert(dot && dot_other);
    size_t head = (size_t)(dot - tes);
    memcpy(forged, tes, head);
    strcpy(forged + head, dot_other);
    ck_assert_int_eq(verify_with(es, forged, &ex, &c), JWT_BAD_SIGNATURE);
    /* an ES256 signature of the wrong length */
    strcpy(forged + head, ".AAAA");
    ck_assert_int_eq(verify_with(es, forged, &ex, &c), JWT_BAD_SIGNATURE);
    free(trs);
    free(tes);
    free(other);
    jwt_key_free(rs);
    jwt_key_free(es);
}
END_TEST

/* RS256 to HS256 confusion: the attacker signs HS256 with the server's RSA
 * public key as the HMAC secret; the pinned RS256 key refuses the header. */
START_TEST(test_algorithm_confusion)
{
    struct jwt_key *rs = pem_key(RSA_PUB);
    char *t = make_token(HS, "{\"sub\":\"admin\",\"mod\":true}", SIGN_HS, RSA_PUB, strlen(RSA_PUB));
    struct jwt_claims c;
    struct jwt_expect ex = expect();
    ck_assert_int_eq(verify_with(rs, t, &ex, &c), JWT_BAD_ALG);
    free(t);
    jwt_key_free(rs);
}
END_TEST

START_TEST(test_truncated_and_oversized)
{
    struct jwt_key *k = hs_key();
    char *t = make_token(HS, "{\"sub\":\"u\",\"name\":\"n\"}", SIGN_HS, SECRET, strlen(SECRET));
    struct jwt_claims c;
    struct jwt_expect ex = expect();
    size_t n = strlen(t);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(jwt_verify(k, t, i, &ex, &c) != JWT_OK, "a %zu-byte prefix was accepted", i);
    ck_assert_int_eq(jwt_verify(k, t, n, &ex, &c), JWT_OK);
    char *big = malloc(JWT_MAX_TOKEN + 2);
    memset(big, 'a', JWT_MAX_TOKEN + 1);
    big[JWT_MAX_TOKEN + 1] = 0;
    ck_assert_int_eq(verify_with(k, big, &ex, &c), JWT_TOO_LONG);
    ck_assert_int_eq(verify_with(k, "a.b.c.d", &ex, &c), JWT_MALFORMED);
    ck_assert_int_eq(verify_with(k, "..", &ex, &c), JWT_MALFORMED);
    ck_assert_int_eq(verify_with(k, "e30.e30.", &ex, &c), JWT_BAD_ALG);
    ck_assert_int_eq(verify_with(k, "ey J.e30.", &ex, &c), JWT_MALFORMED);
    free(big);
    free(t);
    jwt_key_free(k);
}
END_TEST

START_TEST(test_keys)
{
    char err[128];
    ck_assert_ptr_null(jwt_key_public_pem("not a key", 9, err, sizeof(err)));
    ck_assert_str_eq(err, "not a PEM public key");
    ck_assert_ptr_null(jwt_key_public_pem(RSA1K_PUB, strlen(RSA1K_PUB), err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "2048"));
    ck_assert_ptr_null(jwt_key_secret((const uint8_t *)"", 0));
    for (int i = JWT_OK; i <= JWT_BAD_CLAIMS; i++)      /* every error has its own reason */
        for (int j = i + 1; j <= JWT_BAD_CLAIMS; j++)
            ck_assert_str_ne(jwt_error_text((enum jwt_error)i), jwt_error_text((enum jwt_error)j));
    ck_assert_str_eq(jwt_error_text(JWT_EXPIRED), "token expired");
}
END_TEST

START_TEST(test_sign_round_trip)
{
    struct jwt_key *k = hs_key();
    char tok[1024];
    size_t n = jwt_sign_hs256(k, "{\"sub\":\"bot\",\"rooms\":[\"a*\"]}", tok, sizeof(tok));
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(n, strlen(tok));
    struct jwt_claims c;
    struct jwt_expect ex = expect();
    ck_assert_int_eq(jwt_verify(k, tok, n, &ex, &c), JWT_OK);
    ck_assert_str_eq(c.sub, "bot");
    ck_assert(jwt_room_allowed(&c, "abc") && !jwt_room_allowed(&c, "b"));
    ck_assert_uint_eq(jwt_sign_hs256(k, "{\"sub\":\"bot\"}", tok, 20), 0);   /* does not fit */
    struct jwt_key *rs = pem_key(RSA_PUB);
    ck_assert_uint_eq(jwt_sign_hs256(rs, "{\"sub\":\"bot\"}", tok, sizeof(tok)), 0);
    jwt_key_free(rs);
    jwt_key_free(k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jwt");
    TCase *tc = tcase_create("jwt");
    tcase_add_test(tc, test_hs256_valid_claims);
    tcase_add_test(tc, test_rooms_absent_means_all);
    tcase_add_test(tc, test_rfc7515_a1);
    tcase_add_test(tc, test_times);
    tcase_add_test(tc, test_issuer_and_audience);
    tcase_add_test(tc, test_wrong_types);
    tcase_add_test(tc, test_bad_signature_and_none);
    tcase_add_test(tc, test_rs256_and_es256);
    tcase_add_test(tc, test_algorithm_confusion);
    tcase_add_test(tc, test_truncated_and_oversized);
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_sign_round_trip);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
