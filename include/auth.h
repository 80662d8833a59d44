/* auth: the connection-token policy of chat upgrades. Where a token comes
 * from (Authorization: Bearer, the "bearer.TOKEN" subprotocol, ?token=), the
 * checks (jwt_verify with the configured key, issuer, audience and leeway),
 * private rooms (--private-room patterns) and guests (--allow-anonymous), and
 * the HTTP answer to a refused upgrade (401 with WWW-Authenticate, 403). Reads
 * its key files once, in auth_new; otherwise no I/O. It never copies a token
 * into a reason, a header or a log line. */
#ifndef WSHUB_AUTH_H
#define WSHUB_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "jwt.h"

#define AUTH_PATTERN_MAX 66     /* bytes of a --private-room pattern, with its NUL */
#define AUTH_SECRET_MAX 4096    /* bytes of a secret file */
#define AUTH_PROTOCOL "wshub"   /* the subprotocol the server selects */
#define AUTH_HEADER_MAX 256     /* bytes of the WWW-Authenticate line of a refusal */

struct auth;

struct auth_config {
    const char *secret_file;       /* HS256 shared secret; NULL or "" = none */
    const char *public_key_file;   /* PEM RSA (RS256) or EC P-256 (ES256) public key; NULL or "" = none */
    const char *issuer;            /* iss must equal it; NULL or "" = not checked */
    const char *audience;          /* aud must hold it; NULL or "" = not checked */
    unsigned leeway;               /* seconds of clock skew allowed for exp and nbf */
    int allow_anonymous;           /* clients without a token come in as guests */
    const char (*private_rooms)[AUTH_PATTERN_MAX];   /* guests never enter these ("prefix*" allowed) */
    size_t n_private_rooms;
};

/* The decision on one upgrade (or on a check of one, see chat's check). */
struct auth_result {
    int status;                 /* 0 = let in; 401 (no valid token) or 403 (room not allowed) */
    int authenticated;          /* 1: claims hold the verified token's; 0: a guest */
    struct jwt_claims claims;
    const char *reason;         /* one line for a refusal; never holds the token */
    char header[AUTH_HEADER_MAX];   /* "WWW-Authenticate: ...\r\n" for a refusal, else "" */
};

/* Reads a shared secret from path (one trailing newline, or CRLF, dropped)
 * into out. Returns its length (at least 1), or -1 with the reason in err. */
long auth_read_secret(const char *path, uint8_t *out, size_t size, char *err, size_t errlen);

/* Loads the key named by cfg (exactly one of secret_file and public_key_file)
 * and keeps the rest of cfg (its strings must outlive the auth). NULL with
 * the reason in err when a file cannot be read or holds no usable key. */
struct auth *auth_new(const struct auth_config *cfg, char *err, size_t errlen);

/* Frees it. NULL is ignored. */
void auth_free(struct auth *a);

/* The key's algorithm ("HS256", "RS256", "ES256"), for the log. */
const char *auth_alg(const struct auth *a);

/* Decides on an upgrade (or a check) of req into room, at time now (seconds
 * since the epoch): a token from the first place that has one (Authorization
 * header, subprotocol, query), verified; the room against its rooms claim;
 * no token: a guest if anonymous clients are allowed and the room is not
 * private. Fills *r. */
void auth_decide(const struct auth *a, const struct http_request *req, const char *room, int64_t now,
                 struct auth_result *r);

/* Verifies a token on its own (a /token refresh) at time now. */
enum jwt_error auth_verify(const struct auth *a, const char *token, size_t len, int64_t now, struct jwt_claims *out);

/* The leeway in seconds (a token is closed as expired at exp plus this). */
unsigned auth_leeway(const struct auth *a);

/* True when the request's Sec-WebSocket-Protocol headers offer protocol. */
int auth_protocol_offered(const struct http_request *req, const char *protocol);

#endif
