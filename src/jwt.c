/* jwt: JSON Web Token verification and HS256 signing. base64url through
 * libcrypto's EVP_DecodeBlock/EVP_EncodeBlock (after mapping the alphabet),
 * signatures through EVP_MAC (HMAC-SHA256) and EVP_DigestVerify (RSA PKCS#1
 * v1.5 and ECDSA P-256 with the JWS raw R||S form turned into DER), JSON
 * through jansson with duplicate keys refused. Never trusts the header's
 * algorithm: the key decides; never does I/O. */
#include "jwt.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum jwt_alg { ALG_HS256, ALG_RS256, ALG_ES256 };

struct jwt_key {
    enum jwt_alg alg;
    EVP_PKEY *pkey;          /* RS256, ES256 */
    uint8_t *secret;         /* HS256 */
    size_t secret_len;
};

static const char *const alg_names[] = {"HS256", "RS256", "ES256"};

struct jwt_key *jwt_key_secret(const uint8_t *secret, size_t len)
{
    struct jwt_key *k = len ? calloc(1, sizeof(*k)) : NULL;
    if (!k || !(k->secret = malloc(len))) {
        free(k);
        return NULL;
    }
    memcpy(k->secret, secret, len);
    k->secret_len = len;
    k->alg = ALG_HS256;
    return k;
}

struct jwt_key *jwt_key_public_pem(const char *pem, size_t len, char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!pkey) {
        snprintf(err, errlen, "not a PEM public key");
        return NULL;
    }
    enum jwt_alg alg;
    char group[32] = "";
    size_t glen = 0;
    if (EVP_PKEY_is_a(pkey, "RSA") && EVP_PKEY_get_bits(pkey) >= 2048) {
        alg = ALG_RS256;
    } else if (EVP_PKEY_is_a(pkey, "EC") &&
               EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) &&
               strcmp(group, "prime256v1") == 0) {
        alg = ALG_ES256;
    } else {
        snprintf(err, errlen, "the key must be RSA of 2048 bits or more (RS256) or EC P-256 (ES256)");
        EVP_PKEY_free(pkey);
        return NULL;
    }
    struct jwt_key *k = calloc(1, sizeof(*k));
    if (!k) {
        EVP_PKEY_free(pkey);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->alg = alg;
    k->pkey = pkey;
    return k;
}

void jwt_key_free(struct jwt_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    if (k->secret)
        OPENSSL_cleanse(k->secret, k->secret_len);
    free(k->secret);
    free(k);
}

const char *jwt_key_alg(const struct jwt_key *k)
{
    return alg_names[k->alg];
}

const char *jwt_error_text(enum jwt_error e)
{
    switch (e) {
    case JWT_OK: return "valid";
    case JWT_MALFORMED: return "malformed token";
    case JWT_TOO_LONG: return "token too long";
    case JWT_BAD_ALG: return "token signed with another algorithm than the server's key";
    case JWT_BAD_SIGNATURE: return "bad token signature";
    case JWT_EXPIRED: return "token expired";
    case JWT_NOT_YET_VALID: return "token not yet valid";
    case JWT_BAD_ISSUER: return "wrong token issuer";
    case JWT_BAD_AUDIENCE: return "wrong token audience";
    case JWT_BAD_CLAIMS: return "token claims missing or of the wrong type";
    }
    return "invalid token";
}

/* Decodes base64url text (no padding) into out (at least n bytes). Returns
 * the decoded length, or -1 when it is not base64url. */
static long b64url_decode(const char *in, size_t n, uint8_t *out)
{
    if (n % 4 == 1)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)in[i]) && in[i] != '-' && in[i] != '_')
            return -1;
    size_t padded = (n + 3) / 4 * 4;
    unsigned char *tmp = malloc(padded + 1);
    if (!tmp)
        return -1;
    for (size_t i = 0; i < n; i++)
        tmp[i] = (unsigned char)(in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i]);
    for (size_t i = n; i < padded; i++)
        tmp[i] = '=';
    int m = padded ? EVP_DecodeBlock(out, tmp, (int)padded) : 0;
    free(tmp);
    if (m < 0)
        return -1;
    return m - (long)(padded - n);   /* EVP_DecodeBlock counts the padding as zero bytes */
}

/* Encodes n bytes as base64url without padding into out (4 * (n + 2) / 3 + 1
 * bytes); returns the length. */
static size_t b64url_encode(const uint8_t *in, size_t n, char *out)
{
    int m = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (m > 0 && out[m - 1] == '=')
        m--;
    for (int i = 0; i < m; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    out[m] = '\0';
    return (size_t)m;
}

/* Decodes one base64url part holding a JSON object. NULL when it is not one. */
static json_t *decode_object(const char *p, size_t n)
{
    uint8_t *raw = malloc(n + 3);
    long m = raw ? b64url_decode(p, n, raw) : -1;
    json_t *j = m >= 0 ? json_loadb((const char *)raw, (size_t)m, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(raw);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static int hmac_sha256(const struct jwt_key *k, const char *data, size_t n, uint8_t mac[32])
{
    size_t len = 0;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    int ok = ctx && EVP_MAC_init(ctx, k->secret, k->secret_len, params) &&
             EVP_MAC_update(ctx, (const unsigned char *)data, n) && EVP_MAC_final(ctx, mac, &len, 32) && len == 32;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    return ok;
}

/* The JWS ES256 signature (R||S, 32 bytes each) as DER, for EVP_DigestVerify.
 * Returns its length, or 0. */
static int es256_der(const uint8_t *sig, size_t n, unsigned char **der)
{
    if (n != 64)
        return 0;
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *t = BN_bin2bn(sig + 32, 32, NULL);
    int len = 0;
    if (s && r && t && ECDSA_SIG_set0(s, r, t)) {
        r = t = NULL;   /* owned by s now */
        len = i2d_ECDSA_SIG(s, der);
    }
    BN_free(r);
    BN_free(t);
    ECDSA_SIG_free(s);
    return len > 0 ? len : 0;
}

static int check_signature(const struct jwt_key *k, const char *signed_part, size_t n, const uint8_t *sig,
                           size_t sig_len)
{
    if (k->alg == ALG_HS256) {
        uint8_t mac[32];
        return sig_len == 32 && hmac_sha256(k, signed_part, n, mac) && CRYPTO_memcmp(mac, sig, 32) == 0;
    }
    unsigned char *der = NULL;
    const unsigned char *s = sig;
    size_t slen = sig_len;
    if (k->alg == ALG_ES256) {
        int dlen = es256_der(sig, sig_len, &der);
        if (!dlen)
            return 0;
        s = der;
        slen = (size_t)dlen;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
             EVP_DigestVerify(md, s, slen, (const unsigned char *)signed_part, n) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return ok;
}

/* Copies a string claim into out (size bytes with the NUL). Returns 0, or -1
 * when it is not a string or too long; absent is 0 with out empty. */
static int string_claim(json_t *claims, const char *name, char *out, size_t size)
{
    json_t *v = json_object_get(claims, name);
    out[0] = '\0';
    if (!v)
        return 0;
    if (!json_is_string(v) || json_string_length(v) >= size)   /* jansson refuses \u0000 in strings */
        return -1;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* A NumericDate claim (integer or real seconds). Returns 0 (absent: *out 0) or -1. */
static int time_claim(json_t *claims, const char *name, int64_t *out)
{
    json_t *v = json_object_get(claims, name);
    *out = 0;
    if (!v)
        return 0;
    if (json_is_integer(v))
        *out = (int64_t)json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) > -9e15 && json_real_value(v) < 9e15)
        *out = (int64_t)json_real_value(v);
    else
        return -1;
    return 0;
}

static enum jwt_error read_claims(json_t *claims, struct jwt_claims *out)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_string(json_object_get(claims, "sub")) || json_string_length(json_object_get(claims, "sub")) == 0 ||
        string_claim(claims, "sub", out->sub, sizeof(out->sub)) < 0 ||
        string_claim(claims, "name", out->name, sizeof(out->name)) < 0 ||
        time_claim(claims, "exp", &out->exp) < 0 || time_claim(claims, "nbf", &out->nbf) < 0)
        return JWT_BAD_CLAIMS;
    json_t *mod = json_object_get(claims, "mod");
    if (mod && !json_is_boolean(mod))
        return JWT_BAD_CLAIMS;
    out->mod = mod && json_is_true(mod);
    json_t *rooms = json_object_get(claims, "rooms");
    out->all_rooms = rooms == NULL;
    if (rooms) {
        if (!json_is_array(rooms) || json_array_size(rooms) > JWT_ROOMS_MAX)
            return JWT_BAD_CLAIMS;
        for (size_t i = 0; i < json_array_size(rooms); i++) {
            json_t *r = json_array_get(rooms, i);
            if (!json_is_string(r) || json_string_length(r) == 0 || json_string_length(r) > JWT_ROOM_MAX)
                return JWT_BAD_CLAIMS;
            memcpy(out->rooms[out->nrooms++], json_string_value(r), json_string_length(r) + 1);
        }
    }
    return JWT_OK;
}

static int audience_has(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (!json_is_array(aud))
        return 0;
    for (size_t i = 0; i < json_array_size(aud); i++) {
        json_t *a = json_array_get(aud, i);
        if (json_is_string(a) && strcmp(json_string_value(a), want) == 0)
            return 1;
    }
    return 0;
}

static enum jwt_error check_expectations(json_t *claims, const struct jwt_claims *c, const struct jwt_expect *ex)
{
    if (c->exp && ex->now > c->exp + ex->leeway)
        return JWT_EXPIRED;
    if (c->nbf && ex->now + ex->leeway < c->nbf)
        return JWT_NOT_YET_VALID;
    if (ex->issuer) {
        json_t *iss = json_object_get(claims, "iss");
        if (!json_is_string(iss) || strcmp(json_string_value(iss), ex->issuer) != 0)
            return JWT_BAD_ISSUER;
    }
    if (ex->audience && !audience_has(json_object_get(claims, "aud"), ex->audience))
        return JWT_BAD_AUDIENCE;
    return JWT_OK;
}

enum jwt_error jwt_verify(const struct jwt_key *k, const char *token, size_t len, const struct jwt_expect *ex,
                          struct jwt_claims *out)
{
    if (len > JWT_MAX_TOKEN)
        return JWT_TOO_LONG;
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return JWT_MALFORMED;
    json_t *header = decode_object(token, (size_t)(dot1 - token));
    if (!header)
        return JWT_MALFORMED;
    json_t *alg = json_object_get(header, "alg");
    int alg_ok = json_is_string(alg) && strcmp(json_string_value(alg), alg_names[k->alg]) == 0;
    json_t *crit = json_object_get(header, "crit");
    json_decref(header);
    if (!alg_ok)
        return JWT_BAD_ALG;
    if (crit)
        return JWT_MALFORMED;   /* no critical extensions are understood */
    size_t sig_text = len - (size_t)(dot2 + 1 - token);
    uint8_t sig[JWT_MAX_TOKEN];
    long sig_len = b64url_decode(dot2 + 1, sig_text, sig);
    if (sig_len < 0)
        return JWT_MALFORMED;
    if (!check_signature(k, token, (size_t)(dot2 - token), sig, (size_t)sig_len))
        return JWT_BAD_SIGNATURE;
    json_t *claims = decode_object(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!claims)
        return JWT_MALFORMED;
    enum jwt_error e = read_claims(claims, out);
    if (e == JWT_OK)
        e = check_expectations(claims, out, ex);
    json_decref(claims);
    return e;
}

int jwt_pattern_match(const char *pattern, const char *room)
{
    size_t n = strlen(pattern);
    return n && pattern[n - 1] == '*' ? strncmp(room, pattern, n - 1) == 0 : strcmp(room, pattern) == 0;
}

int jwt_room_allowed(const struct jwt_claims *c, const char *room)
{
    if (c->all_rooms)
        return 1;
    for (size_t i = 0; i < c->nrooms; i++)
        if (jwt_pattern_match(c->rooms[i], room))
            return 1;
    return 0;
}

size_t jwt_sign_hs256(const struct jwt_key *k, const char *payload_json, char *out, size_t outsz)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    size_t plen = strlen(payload_json);
    size_t need = (sizeof(header) + 2) / 3 * 4 + 1 + (plen + 2) / 3 * 4 + 1 + 44 + 1;
    if (k->alg != ALG_HS256 || outsz < need)
        return 0;
    size_t n = b64url_encode((const uint8_t *)header, sizeof(header) - 1, out);
    out[n++] = '.';
    n += b64url_encode((const uint8_t *)payload_json, plen, out + n);
    uint8_t mac[32];
    if (!hmac_sha256(k, out, n, mac))
        return 0;
    out[n++] = '.';
    n += b64url_encode(mac, sizeof(mac), out + n);
    return n;
}
