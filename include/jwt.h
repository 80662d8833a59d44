/* jwt: verifies and signs JSON Web Tokens (RFC 7519) for wshub's connection
 * tokens. The algorithm is pinned by the configured key (HS256 for a shared
 * secret, RS256 or ES256 for a PEM public key by its type): a token whose
 * header names any other algorithm, or "none", is refused. Signatures are
 * checked with libcrypto, JSON is parsed with jansson; no I/O, no globals.
 * A token over JWT_MAX_TOKEN bytes is refused before any parsing. */
#ifndef WSHUB_JWT_H
#define WSHUB_JWT_H

#include <stddef.h>
#include <stdint.h>

#define JWT_MAX_TOKEN 8192     /* bytes of a whole token */
#define JWT_SUB_MAX 128        /* bytes of sub (the user id) */
#define JWT_NAME_MAX 128       /* bytes of name */
#define JWT_ROOMS_MAX 32       /* entries of rooms */
#define JWT_ROOM_MAX 65        /* bytes of one rooms entry, "prefix*" included */

enum jwt_error {
    JWT_OK,
    JWT_MALFORMED,       /* not three base64url parts of JSON objects */
    JWT_TOO_LONG,        /* over JWT_MAX_TOKEN */
    JWT_BAD_ALG,         /* the header names another algorithm than the key's, or none */
    JWT_BAD_SIGNATURE,
    JWT_EXPIRED,         /* exp has passed (beyond the leeway) */
    JWT_NOT_YET_VALID,   /* nbf is still ahead (beyond the leeway) */
    JWT_BAD_ISSUER,
    JWT_BAD_AUDIENCE,
    JWT_BAD_CLAIMS,      /* sub missing, or a claim of the wrong type or size */
};

struct jwt_key;

/* The claims wshub uses, copied out of a verified token. */
struct jwt_claims {
    char sub[JWT_SUB_MAX + 1];
    char name[JWT_NAME_MAX + 1];                  /* empty when absent */
    char rooms[JWT_ROOMS_MAX][JWT_ROOM_MAX + 1];
    size_t nrooms;
    int all_rooms;                                /* no rooms claim: every room */
    int mod;                                      /* moderator */
    int64_t exp;                                  /* 0 when absent */
    int64_t nbf;
};

/* What a token is checked against besides its signature. */
struct jwt_expect {
    int64_t now;             /* seconds since the epoch */
    int64_t leeway;          /* seconds of clock skew allowed for exp and nbf */
    const char *issuer;      /* iss must equal it; NULL = not checked */
    const char *audience;    /* aud (a string or array) must hold it; NULL = not checked */
};

/* A key for HS256 from a shared secret (len bytes, at least 1). NULL on failure. */
struct jwt_key *jwt_key_secret(const uint8_t *secret, size_t len);

/* A key for RS256 (an RSA public key) or ES256 (an EC P-256 public key) from
 * PEM text. NULL on failure, with the reason in err. */
struct jwt_key *jwt_key_public_pem(const char *pem, size_t len, char *err, size_t errlen);

/* Frees a key. NULL is ignored. */
void jwt_key_free(struct jwt_key *k);

/* The key's algorithm: "HS256", "RS256" or "ES256". */
const char *jwt_key_alg(const struct jwt_key *k);

/* Verifies token[0..len) with key k and the expectations; fills *out on JWT_OK. */
enum jwt_error jwt_verify(const struct jwt_key *k, const char *token, size_t len, const struct jwt_expect *ex,
                          struct jwt_claims *out);

/* A one-line reason for an error ("token expired", ...). */
const char *jwt_error_text(enum jwt_error e);

/* True when room matches pattern: an exact name, or "prefix*" (every room
 * whose name starts with prefix; "*" alone matches every room). */
int jwt_pattern_match(const char *pattern, const char *room);

/* True when the claims let their holder into room: every room, or one of its
 * patterns matches (jwt_pattern_match). */
int jwt_room_allowed(const struct jwt_claims *c, const char *room);

/* Signs an HS256 token over the claims JSON object text (payload_json) into
 * out (outsz bytes, NUL-terminated). Returns its length, or 0 when it does not
 * fit or signing failed. */
size_t jwt_sign_hs256(const struct jwt_key *k, const char *payload_json, char *out, size_t outsz);

#endif
